//! `.drv` files: the ATerm text Nix writes for a derivation, parsed into [`Derivation`] and
//! written back byte for byte (`Derive([outputs],[inputDrvs],[inputSrcs],platform,builder,[args],[env])`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::store_path::StorePath;

/// One output as the `.drv` file lists it. For input-addressed outputs only `path` is set;
/// fixed-output and content-addressed outputs carry `hash_algo` and `hash` (see the reference).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DerivationOutput {
    pub path: String,
    pub hash_algo: String,
    pub hash: String,
}

/// A parsed derivation. Maps and sets keep Nix's sort order, so writing is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derivation {
    pub outputs: BTreeMap<String, DerivationOutput>,
    /// Input derivation path → the output names used from it.
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    pub input_srcs: BTreeSet<String>,
    pub platform: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Why a `.drv` text was rejected: where (byte offset) and what the parser expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvParseError {
    pub offset: usize,
    pub expected: String,
    /// Up to 20 characters of the input at `offset` (empty at the end of the input).
    pub found: String,
}

impl fmt::Display for DrvParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found.is_empty() {
            write!(f, "at byte {}: expected {}, found the end of the file", self.offset, self.expected)
        } else {
            write!(f, "at byte {}: expected {}, found {:?}", self.offset, self.expected, self.found)
        }
    }
}

impl std::error::Error for DrvParseError {}

impl DrvParseError {
    /// A diagnostic that shows the spot in the file.
    pub fn into_diagnostic(self, file: &str, text: String) -> DrvDiagnostic {
        let at = self.offset.min(text.len());
        DrvDiagnostic {
            message: format!("derivation {file} is malformed: {self}"),
            expected: format!("expected {}", self.expected),
            span: (at, usize::from(at < text.len())).into(),
            src: miette::NamedSource::new(file, text),
        }
    }
}

/// A `.drv` parse error with the file's text, for rendering with a pointer.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(rvbuild::nix::malformed_drv))]
pub struct DrvDiagnostic {
    message: String,
    expected: String,
    #[label("{expected}")]
    span: miette::SourceSpan,
    #[source_code]
    src: miette::NamedSource<String>,
}

impl Derivation {
    /// Parses the text of a `.drv` file.
    pub fn parse(text: &str) -> Result<Derivation, DrvParseError> {
        let mut p = Parser { s: text.as_bytes(), text, pos: 0 };
        let drv = p.derivation()?;
        if p.pos != p.s.len() {
            return Err(p.error("the end of the file after the closing ')'"));
        }
        Ok(drv)
    }

    /// The ATerm text exactly as Nix writes it.
    pub fn to_aterm(&self) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str("Derive([");
        for (i, (name, out)) in self.outputs.iter().enumerate() {
            comma(&mut s, i);
            s.push('(');
            raw(&mut s, name);
            s.push(',');
            raw(&mut s, &out.path);
            s.push(',');
            raw(&mut s, &out.hash_algo);
            s.push(',');
            raw(&mut s, &out.hash);
            s.push(')');
        }
        s.push_str("],[");
        for (i, (path, outs)) in self.input_drvs.iter().enumerate() {
            comma(&mut s, i);
            s.push('(');
            raw(&mut s, path);
            s.push_str(",[");
            for (j, o) in outs.iter().enumerate() {
                comma(&mut s, j);
                raw(&mut s, o);
            }
            s.push_str("])");
        }
        s.push_str("],[");
        for (i, src) in self.input_srcs.iter().enumerate() {
            comma(&mut s, i);
            raw(&mut s, src);
        }
        s.push_str("],");
        raw(&mut s, &self.platform);
        s.push(',');
        escaped(&mut s, &self.builder);
        s.push_str(",[");
        for (i, a) in self.args.iter().enumerate() {
            comma(&mut s, i);
            escaped(&mut s, a);
        }
        s.push_str("],[");
        for (i, (k, v)) in self.env.iter().enumerate() {
            comma(&mut s, i);
            s.push('(');
            escaped(&mut s, k);
            s.push(',');
            escaped(&mut s, v);
            s.push(')');
        }
        s.push_str("])");
        s
    }

    /// The derivation's `name` attribute, if set.
    pub fn name(&self) -> Option<&str> {
        self.env.get("name").map(String::as_str)
    }
}

/// A derivation as BuildDerivation sends it: no input derivations, and input sources that
/// already include the outputs the derivation uses from its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicDerivation {
    pub outputs: BTreeMap<String, DerivationOutput>,
    pub input_srcs: BTreeSet<StorePath>,
    pub platform: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl BasicDerivation {
    /// `input_srcs` replaces the derivation's own: its sources plus the input outputs.
    pub fn new(drv: &Derivation, input_srcs: BTreeSet<StorePath>) -> Self {
        BasicDerivation {
            outputs: drv.outputs.clone(),
            input_srcs,
            platform: drv.platform.clone(),
            builder: drv.builder.clone(),
            args: drv.args.clone(),
            env: drv.env.clone(),
        }
    }
}

fn comma(s: &mut String, i: usize) {
    if i > 0 {
        s.push(',');
    }
}

/// Names, paths and the platform: Nix writes them without escaping. The parser rejects
/// escapes there, so only a hand-built value can need them; escape it rather than write a
/// file that does not parse.
fn raw(s: &mut String, v: &str) {
    if v.contains(['"', '\\', '\n', '\r', '\t']) {
        escaped(s, v);
    } else {
        s.push('"');
        s.push_str(v);
        s.push('"');
    }
}

/// Builder, args and env: `"` `\` newline CR tab are escaped.
fn escaped(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> DrvParseError {
        let rest = self.text.get(self.pos..).unwrap_or("");
        DrvParseError { offset: self.pos, expected: expected.to_string(), found: rest.chars().take(20).collect() }
    }

    fn expect(&mut self, token: &str) -> Result<(), DrvParseError> {
        if self.s[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.error(&format!("{token:?}")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn derivation(&mut self) -> Result<Derivation, DrvParseError> {
        if self.s.starts_with(b"DrvWithVersion(") {
            return Err(self.error("\"Derive(\" (dynamic-derivation .drv files, DrvWithVersion, are not supported)"));
        }
        self.expect("Derive(")?;
        let mut drv = Derivation::default();

        self.list(|p| {
            p.expect("(")?;
            let start = p.pos;
            let name = p.raw_string()?;
            p.expect(",")?;
            let path_at = p.pos;
            let path = p.raw_string()?;
            if !path.is_empty() {
                p.store_path(&path, path_at, false)?;
            }
            p.expect(",")?;
            let hash_algo = p.raw_string()?;
            p.expect(",")?;
            let hash = p.raw_string()?;
            p.expect(")")?;
            let out = DerivationOutput { path, hash_algo, hash };
            p.insert_sorted(&mut drv.outputs, name, out, start, "outputs sorted by name")
        })?;
        self.expect(",")?;

        self.list(|p| {
            p.expect("(")?;
            let start = p.pos;
            let path = p.raw_string()?;
            p.store_path(&path, start, true)?;
            p.expect(",")?;
            let mut outs = BTreeSet::new();
            p.list(|p| {
                let at = p.pos;
                let o = p.raw_string()?;
                p.insert_set(&mut outs, o, at, "output names sorted and unique")
            })?;
            p.expect(")")?;
            p.insert_sorted(&mut drv.input_drvs, path, outs, start, "input derivations sorted by path")
        })?;
        self.expect(",")?;

        self.list(|p| {
            let at = p.pos;
            let path = p.raw_string()?;
            p.store_path(&path, at, false)?;
            p.insert_set(&mut drv.input_srcs, path, at, "input sources sorted by path")
        })?;
        self.expect(",")?;
        drv.platform = self.raw_string()?;
        self.expect(",")?;
        drv.builder = self.string()?;
        self.expect(",")?;
        self.list(|p| {
            let a = p.string()?;
            drv.args.push(a);
            Ok(())
        })?;
        self.expect(",")?;
        self.list(|p| {
            p.expect("(")?;
            let start = p.pos;
            let k = p.string()?;
            p.expect(",")?;
            let v = p.string()?;
            p.expect(")")?;
            p.insert_sorted(&mut drv.env, k, v, start, "environment sorted by key")
        })?;
        self.expect(")")?;
        Ok(drv)
    }

    /// `[item,item,…]`.
    fn list(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), DrvParseError>) -> Result<(), DrvParseError> {
        self.expect("[")?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }

    /// A quoted string with `\n` `\r` `\t` mapped to control characters and `\c` to `c`.
    fn string(&mut self) -> Result<String, DrvParseError> {
        self.expect("\"")?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("the closing '\"' of a string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("an escaped character after '\\'"));
                    };
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8, so this cannot fail; map it anyway.
        String::from_utf8(out).map_err(|_| self.error("a UTF-8 string"))
    }

    /// A string in a field Nix writes without escaping (names, paths, platform).
    fn raw_string(&mut self) -> Result<String, DrvParseError> {
        let at = self.pos;
        let v = self.string()?;
        if v.contains(['"', '\\', '\n', '\r', '\t']) {
            self.pos = at;
            return Err(self.error("a string without escapes (names, paths and the platform are never escaped)"));
        }
        Ok(v)
    }

    fn store_path(&self, path: &str, at: usize, drv: bool) -> Result<(), DrvParseError> {
        let res = if drv { StorePath::parse_drv(path) } else { StorePath::parse(path) };
        res.map(|_| ()).map_err(|e| DrvParseError {
            offset: at,
            expected: format!("a valid store path ({e})"),
            found: path.to_string(),
        })
    }

    fn insert_sorted<V>(
        &self,
        map: &mut BTreeMap<String, V>,
        key: String,
        value: V,
        at: usize,
        what: &str,
    ) -> Result<(), DrvParseError> {
        if map.last_key_value().is_some_and(|(last, _)| *last >= key) {
            return Err(DrvParseError { offset: at, expected: what.to_string(), found: key });
        }
        map.insert(key, value);
        Ok(())
    }

    fn insert_set(
        &self,
        set: &mut BTreeSet<String>,
        value: String,
        at: usize,
        what: &str,
    ) -> Result<(), DrvParseError> {
        if set.last().is_some_and(|last| *last >= value) {
            return Err(DrvParseError { offset: at, expected: what.to_string(), found: value });
        }
        set.insert(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"Derive([("out","/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a","","")],[("/nix/store/dhwzz7y2jypm2q2zdl0f3wbrqfw0yml2-a.drv",["dev","out"])],["/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-b.sh"],"x86_64-linux","/bin/sh",["-c","echo \"hi\\there\"\n\t\r"],[("builder","/bin/sh"),("v","q\"b\\s\nn\tt\rr")])"#;

    #[test]
    fn parses_and_writes_back() {
        let drv = Derivation::parse(MINIMAL).expect("parse");
        assert_eq!(drv.platform, "x86_64-linux");
        assert_eq!(drv.args[1], "echo \"hi\\there\"\n\t\r");
        assert_eq!(drv.env["v"], "q\"b\\s\nn\tt\rr");
        assert_eq!(drv.input_drvs["/nix/store/dhwzz7y2jypm2q2zdl0f3wbrqfw0yml2-a.drv"].len(), 2);
        assert_eq!(drv.to_aterm(), MINIMAL);
    }

    #[test]
    fn escapes_only_in_builder_args_env() {
        let mut drv = Derivation {
            platform: "x86_64-linux".into(),
            builder: "a\"b".into(),
            args: vec!["\\".into(), "x\ty".into()],
            ..Default::default()
        };
        drv.env.insert("k\n".into(), "\r".into());
        assert_eq!(drv.to_aterm(), r#"Derive([],[],[],"x86_64-linux","a\"b",["\\","x\ty"],[("k\n","\r")])"#);
    }

    #[test]
    fn unknown_escape_maps_to_char() {
        let drv = Derivation::parse(r#"Derive([],[],[],"p","\a\$",[],[])"#).expect("parse");
        assert_eq!(drv.builder, "a$");
    }

    #[test]
    fn malformed_inputs_report_offset_and_expectation() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "\"Derive(\""),
            ("Derive([],[],[],\"p\",\"b\",[],[]", 29, "\")\""),
            ("Derive([],[],[],\"p\",\"b\",[],[]) ", 30, "end of the file"),
            ("Derive([],[],[],\"p,\"b\",[],[])", 20, "expected \",\""),
            ("Derive([],[],[],\"p\",\"b\",[\"x\" ],[])", 28, "',' or ']'"),
            ("Derive([],[],[\"/tmp/x\"],\"p\",\"b\",[],[])", 14, "valid store path"),
            ("Derive([],[],[],\"p\",\"b\",[],[(\"b\",\"\"),(\"a\",\"\")])", 38, "sorted"),
            ("Derive([],[],[],\"p\",\"b\\", 23, "escaped character"),
            ("DrvWithVersion(\"xp-dyn-drv\",[])", 0, "not supported"),
        ];
        for (text, offset, expected) in cases {
            let err = Derivation::parse(text).expect_err(text);
            assert_eq!(err.offset, *offset, "{text}: {err}");
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn diagnostic_points_at_the_offset() {
        let text = "Derive([],[],[],\"p\",\"b\",[\"x\" ],[])";
        let err = Derivation::parse(text).expect_err("bad");
        let d = err.into_diagnostic("/nix/store/x.drv", text.to_string());
        let labels: Vec<_> = miette::Diagnostic::labels(&d).expect("labels").collect();
        assert_eq!(labels[0].offset(), 28);
        assert!(d.to_string().contains("/nix/store/x.drv"));
    }

    #[test]
    fn rejects_duplicate_output() {
        let text = r#"Derive([("out","","",""),("out","","","")],[],[],"p","b",[],[])"#;
        assert!(Derivation::parse(text).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_text(s in "\\PC{0,200}") {
            let _ = Derivation::parse(&s);
        }

        #[test]
        fn never_panics_on_mutations(pos in 0usize..400, len in 0usize..5, ins in "[\\[\\](),\"\\\\a-z/]{0,4}") {
            let mut t = MINIMAL.to_string();
            let p = pos.min(t.len());
            let e = (p + len).min(t.len());
            if t.is_char_boundary(p) && t.is_char_boundary(e) {
                t.replace_range(p..e, &ins);
            }
            if let Ok(d) = Derivation::parse(&t) {
                // Anything accepted writes back to something that parses to the same value.
                proptest::prop_assert_eq!(Derivation::parse(&d.to_aterm()), Ok(d));
            }
        }

        #[test]
        fn escaped_fields_round_trip(builder in "\\PC{0,30}", arg in "[\"\\\\\n\r\ta-z]{0,30}", v in "\\PC{0,30}") {
            let mut drv = Derivation { platform: "x86_64-linux".into(), builder, args: vec![arg], ..Default::default() };
            drv.env.insert("k".into(), v);
            proptest::prop_assert_eq!(Derivation::parse(&drv.to_aterm()), Ok(drv));
        }
    }
}
