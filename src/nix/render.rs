//! Rendering Rust values as Nix source: string literals with the escapes Nix needs, lists and
//! attribute names.

/// A Nix double-quoted string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Nix list of string literals.
pub fn string_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[ {} ]", inner.join(" "))
}

/// An attribute name, quoted (always valid, whatever the characters).
pub fn attr(name: &str) -> String {
    string(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b"), r#""a\"b""#);
        assert_eq!(string("x${y}"), r#""x\${y}""#);
        assert_eq!(string("$HOME"), r#""$HOME""#);
        assert_eq!(string("a\\b\n"), r#""a\\b\n""#);
        assert_eq!(string_list(&["a", "b"]), r#"[ "a" "b" ]"#);
    }
}
