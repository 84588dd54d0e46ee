//! Profile diagnostics: every problem names `file:line:col`, what was expected, and a help line,
//! and carries the source so miette can show the offending line.

use miette::{Diagnostic, NamedSource, SourceSpan};

use super::board::Sp;

/// One problem in a board or profile file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{col}: {message}")]
#[diagnostic(code(rvbuild::profile))]
pub struct ProfileError {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// Several problems found in one pass (`rvbuild boards --check`, or a file with many mistakes).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{summary}")]
#[diagnostic(code(rvbuild::profile))]
pub struct ProfileErrors {
    pub summary: String,
    #[related]
    pub errors: Vec<ProfileError>,
}

/// A loaded YAML file: its display name and text, for making diagnostics.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub name: String,
    pub text: String,
}

impl SourceText {
    /// Byte offset of a 1-based line and column. The YAML parser counts columns in
    /// characters, so the offset always falls on a character boundary.
    fn offset(&self, line: u64, col: u64) -> Option<usize> {
        if line == 0 {
            return None;
        }
        let mut off = 0usize;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == line {
                let c = usize::try_from(col.saturating_sub(1)).ok()?;
                return Some(off + l.char_indices().nth(c).map_or(l.len(), |(b, _)| b));
            }
            off += l.len();
        }
        None
    }

    /// A diagnostic at a line and column (0 = unknown).
    pub fn error_at(&self, line: u64, col: u64, message: impl Into<String>, help: Option<String>) -> ProfileError {
        let span = self.offset(line, col).map(|o| {
            let rest = &self.text[o..];
            let len = rest.find(['\n', '#']).unwrap_or(rest.len()).max(1).min(rest.len().max(1));
            SourceSpan::new(o.into(), len.min(self.text.len().saturating_sub(o)))
        });
        ProfileError {
            file: self.name.clone(),
            line,
            col,
            message: message.into(),
            help,
            src: NamedSource::new(self.name.clone(), self.text.clone()),
            span,
        }
    }

    /// A diagnostic at a spanned value.
    pub fn error<T>(&self, at: &Sp<T>, message: impl Into<String>, help: impl Into<String>) -> ProfileError {
        let help = help.into();
        self.error_at(
            at.referenced.line(),
            at.referenced.column(),
            message,
            if help.is_empty() { None } else { Some(help) },
        )
    }

    /// Converts a YAML/serde error into a diagnostic, keeping its location and its core message.
    pub fn from_yaml(&self, err: &serde_saphyr::Error) -> ProfileError {
        let (line, col) = err.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        let text = err.to_string();
        let first = text.lines().next().unwrap_or("invalid YAML").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        // serde-saphyr prefixes "line N column M: "; the file:line:col prefix replaces it.
        let core = match first.find(": ") {
            Some(i) if first.starts_with("line ") => &first[i + 2..],
            _ => first,
        };
        let help = if core.contains("unknown field") {
            Some("remove the key or fix its spelling; the keys this section accepts are listed above".to_string())
        } else if core.contains("missing field") {
            Some("add the field; docs/profiles.md in the README describes every field".to_string())
        } else {
            Some("see the board/profile format in the README".to_string())
        };
        self.error_at(line, col, core.to_string(), help)
    }
}
