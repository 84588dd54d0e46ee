//! Store paths and NAR hashes: validation of every `/nix/store/<hash>-<name>` that comes from a
//! builder, a file or a command's output before rvbuild uses it, and the `sha256` hash strings
//! Nix prints (`sha256:<nix32>`) and accepts (lowercase base16).

use std::fmt;

use super::nix32;

/// The store directory. Chroot stores (`local?root=…`) keep this logical directory.
pub const STORE_DIR: &str = "/nix/store";

/// Characters in the hash part of a store path (20 bytes in nix32).
pub const HASH_LEN: usize = 32;

/// Longest name Nix accepts.
pub const MAX_NAME_LEN: usize = 211;

/// Why a string is not a store path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[diagnostic(code(rvbuild::nix::store_path))]
pub enum StorePathError {
    #[error("store path {0:?} is not in {STORE_DIR}")]
    NotInStore(String),
    #[error("store path {0:?} has a hash part that is not 32 nix32 characters")]
    BadHash(String),
    #[error("store path {0:?} has no '-' between its hash and its name")]
    NoDash(String),
    #[error("store path {0:?} has an empty name")]
    EmptyName(String),
    #[error("store path {0:?} has a name longer than {MAX_NAME_LEN} characters")]
    NameTooLong(String),
    #[error("store path {0:?} has a name starting with '.'")]
    DotName(String),
    #[error("store path {path:?} has the character {ch:?} in its name (allowed: A-Z a-z 0-9 + - . _ ? =)")]
    BadChar { path: String, ch: char },
    #[error("{0:?} is not a derivation path (a store path ending in .drv)")]
    NotDrv(String),
}

/// A validated store path such as `/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath(String);

impl StorePath {
    /// Validates a full store path.
    pub fn parse(path: &str) -> Result<StorePath, StorePathError> {
        let base = path
            .strip_prefix(STORE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore(path.to_string()))?;
        Self::check_base_name(path, base)?;
        Ok(StorePath(path.to_string()))
    }

    /// Builds a store path from its base name (`<hash>-<name>`), as in the JSON `outPath` of
    /// a BuildResult.
    pub fn from_base_name(base: &str) -> Result<StorePath, StorePathError> {
        let full = format!("{STORE_DIR}/{base}");
        Self::check_base_name(&full, base)?;
        Ok(StorePath(full))
    }

    /// Validates a derivation path: a store path whose name ends in `.drv`.
    pub fn parse_drv(path: &str) -> Result<StorePath, StorePathError> {
        let p = Self::parse(path)?;
        if p.name().ends_with(".drv") { Ok(p) } else { Err(StorePathError::NotDrv(path.to_string())) }
    }

    fn check_base_name(full: &str, base: &str) -> Result<(), StorePathError> {
        let bytes = base.as_bytes();
        if bytes.len() < HASH_LEN || !bytes[..HASH_LEN].iter().all(|&c| nix32::digit(c).is_some()) {
            return Err(StorePathError::BadHash(full.to_string()));
        }
        if bytes.get(HASH_LEN) != Some(&b'-') {
            return Err(StorePathError::NoDash(full.to_string()));
        }
        let name = &base[HASH_LEN + 1..];
        if name.is_empty() {
            return Err(StorePathError::EmptyName(full.to_string()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(StorePathError::NameTooLong(full.to_string()));
        }
        if name.starts_with('.') {
            return Err(StorePathError::DotName(full.to_string()));
        }
        if let Some(ch) = name.chars().find(|&c| !is_name_char(c)) {
            return Err(StorePathError::BadChar { path: full.to_string(), ch });
        }
        Ok(())
    }

    /// The full path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<hash>-<name>`.
    pub fn base_name(&self) -> &str {
        &self.0[STORE_DIR.len() + 1..]
    }

    /// The 32-character hash part.
    pub fn hash_part(&self) -> &str {
        &self.base_name()[..HASH_LEN]
    }

    /// The name after the hash (for a derivation, it ends in `.drv`).
    pub fn name(&self) -> &str {
        &self.base_name()[HASH_LEN + 1..]
    }

    /// Whether this is a derivation path.
    pub fn is_drv(&self) -> bool {
        self.name().ends_with(".drv")
    }

    /// The derivation name: the name without `.drv`.
    pub fn drv_name(&self) -> &str {
        self.name().strip_suffix(".drv").unwrap_or(self.name())
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StorePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for StorePath {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | '?' | '=')
}

/// A SHA-256 digest of a NAR (or any content), with Nix's textual forms.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NarHash(pub [u8; 32]);

/// Why a hash string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[diagnostic(code(rvbuild::nix::nar_hash))]
#[error("{0:?} is not a sha256 hash (expected sha256:<52 nix32 chars>, sha256:<64 hex> or <64 hex>)")]
pub struct HashParseError(pub String);

impl NarHash {
    /// Parses `sha256:<nix32>`, `sha256:<base16>` or bare lowercase/uppercase base16.
    pub fn parse(s: &str) -> Result<NarHash, HashParseError> {
        let err = || HashParseError(s.to_string());
        let body = s.strip_prefix("sha256:").unwrap_or(s);
        let bytes = if body.len() == 64 {
            decode_hex(body).ok_or_else(err)?
        } else if body.len() == 52 && s.starts_with("sha256:") {
            nix32::decode(body, 32).ok_or_else(err)?
        } else {
            return Err(err());
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(NarHash(out))
    }

    /// `sha256:<nix32>`, the form `nix-store --query --hash` prints and PathInfo carries.
    pub fn to_nix32_string(&self) -> String {
        format!("sha256:{}", nix32::encode(&self.0))
    }

    /// Lowercase base16 without prefix, the form Nix's own client sends in AddToStoreNar.
    pub fn to_base16(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nix32_string())
    }
}

impl fmt::Display for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nix32_string())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a";

    #[test]
    fn accepts_valid_paths() {
        let p = StorePath::parse(OK).expect("valid");
        assert_eq!(p.hash_part(), "7sqpqjj28pjaqp6b2yf385gnhgbq09lz");
        assert_eq!(p.name(), "a");
        assert!(!p.is_drv());
        let d = StorePath::parse_drv("/nix/store/dhwzz7y2jypm2q2zdl0f3wbrqfw0yml2-a.drv").expect("drv");
        assert_eq!(d.drv_name(), "a");
        StorePath::parse("/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-A+b-c._?=1").expect("all chars");
        assert_eq!(StorePath::from_base_name(p.base_name()), Ok(p));
    }

    #[test]
    fn rejects_invalid_paths() {
        let h = "7sqpqjj28pjaqp6b2yf385gnhgbq09lz";
        let cases = [
            ("/tmp/x".to_string(), "not in"),
            (format!("/nix/store/{h}"), "no '-'"),
            (format!("/nix/store/{h}-"), "empty name"),
            (format!("/nix/store/{h}-.hidden"), "starting with '.'"),
            (format!("/nix/store/{h}-a/b"), "'/'"),
            (format!("/nix/store/{h}-a b"), "' '"),
            (format!("/nix/store/{h}-a;rm"), "';'"),
            (format!("/nix/store/{h}-{}", "x".repeat(212)), "longer"),
            ("/nix/store/esqpqjj28pjaqp6b2yf385gnhgbq09lz-a".to_string(), "hash"),
            ("/nix/store/short-a".to_string(), "hash"),
            ("/nix/storex/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a".to_string(), "not in"),
        ];
        for (path, why) in cases {
            let err = StorePath::parse(&path).expect_err(&path).to_string();
            assert!(err.contains(why), "{path}: {err}");
        }
        StorePath::parse(&format!("/nix/store/{h}-{}", "x".repeat(211))).expect("211 is the limit");
        assert!(StorePath::parse_drv(OK).is_err());
    }

    #[test]
    fn nar_hash_forms() {
        let h = NarHash::parse("sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h").expect("nix32");
        let hex = h.to_base16();
        assert_eq!(hex.len(), 64);
        assert_eq!(NarHash::parse(&hex), Ok(h));
        assert_eq!(NarHash::parse(&format!("sha256:{hex}")), Ok(h));
        assert_eq!(h.to_nix32_string(), "sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h");
        assert!(NarHash::parse("md5:abc").is_err());
        assert!(NarHash::parse("1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h").is_err());
        assert!(NarHash::parse(&"g".repeat(64)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = StorePath::parse(&s);
            let _ = NarHash::parse(&s);
        }
    }
}
