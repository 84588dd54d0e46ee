//! Parser for Nix's machines syntax (`/etc/nix/machines`, nix.conf `builders`, `--builders`):
//! whitespace-separated columns, `-` or a missing column for the default, entries split by
//! newlines or `;`, `#` comments and `@FILE` includes. Every value that later reaches a command
//! line (host, user, systems, features, identity path) is validated here.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::Serialize;

use super::error::{BuildersError, HostKeyError, UriError};
use crate::{Error, Result};

/// Nested `@file` includes deeper than this are refused (Nix has no limit; a cycle would loop).
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// How rvbuild reaches a builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// `ssh://`: `nix-store --serve --write` over SSH.
    Ssh,
    /// `ssh-ng://`: Nix speaks the daemon protocol there; rvbuild speaks the serve protocol to it too.
    SshNg,
    /// `local`, `auto`, `daemon`: this machine.
    Local,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ssh => "ssh",
            Scheme::SshNg => "ssh-ng",
            Scheme::Local => "local",
        }
    }
}

/// A builder's public host key: key type and base64 key blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostKey {
    pub key_type: String,
    pub key: String,
}

/// One parsed machines entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// The store URI as written (scheme added when missing).
    pub uri: String,
    pub scheme: Scheme,
    pub user: Option<String>,
    /// Host name or ssh_config alias (empty for the local machine).
    pub host: String,
    pub port: Option<u16>,
    /// Systems it builds; empty = the default (this machine's system).
    pub systems: Vec<String>,
    pub identity: Option<PathBuf>,
    pub max_jobs: u32,
    pub speed: f64,
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
    pub host_key: Option<HostKey>,
    /// Where the entry came from (`FILE:LINE` or `--builders`).
    pub source: String,
}

impl Machine {
    /// The entry as one machines line with `-` for defaults (what `builders import` writes).
    pub fn to_line(&self) -> String {
        fn list(v: &[String]) -> String {
            if v.is_empty() { "-".into() } else { v.join(",") }
        }
        let identity = self.identity.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into());
        let key = match &self.host_key {
            Some(k) => STANDARD.encode(format!("{} {}", k.key_type, k.key)),
            None => "-".into(),
        };
        format!(
            "{} {} {} {} {} {} {} {}",
            self.uri,
            list(&self.systems),
            identity,
            self.max_jobs,
            self.speed,
            list(&self.supported_features),
            list(&self.mandatory_features),
            key
        )
    }
}

/// Parses a machines specification (the value of `--builders` or nix.conf `builders`).
/// `origin` names it in errors; `@file` entries are read from disk.
pub fn parse_spec(spec: &str, origin: &str) -> Result<Vec<Machine>> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    parse_into(spec, origin, false, Some(&mut stack), &mut out)?;
    Ok(out)
}

/// Checks a specification without reading its `@file` includes (for profile validation, where
/// the files belong to the machine that will build).
pub fn check_spec(spec: &str, origin: &str) -> Result<()> {
    parse_into(spec, origin, false, None, &mut Vec::new())
}

/// Parses a machines file.
pub fn parse_file(path: &Path) -> Result<Vec<Machine>> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    include(path, "command line", &mut stack, &mut out)?;
    Ok(out)
}

fn include(path: &Path, from: &str, stack: &mut Vec<PathBuf>, out: &mut Vec<Machine>) -> Result<()> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&key) {
        let chain: Vec<String> = stack.iter().chain([&key]).map(|p| p.display().to_string()).collect();
        return Err(BuildersError::MachinesIncludeCycle { from: from.to_string(), chain }.into());
    }
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(BuildersError::MachinesIncludeDepth {
            from: from.to_string(),
            limit: MAX_INCLUDE_DEPTH,
            path: path.to_path_buf(),
        }
        .into());
    }
    let text = std::fs::read_to_string(path).map_err(|source| BuildersError::ReadMachinesFile {
        from: from.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    stack.push(key);
    let r = parse_into(&text, &path.display().to_string(), true, Some(&mut *stack), out);
    stack.pop();
    r
}

/// `stack` holds the files being read; None = don't follow includes.
fn parse_into(
    text: &str,
    origin: &str,
    is_file: bool,
    mut stack: Option<&mut Vec<PathBuf>>,
    out: &mut Vec<Machine>,
) -> Result<()> {
    let mut n = 0;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for entry in line.split(';') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            n += 1;
            let at = if is_file { format!("{origin}:{}", lineno + 1) } else { format!("{origin} entry {n}") };
            if let Some(file) = entry.strip_prefix('@') {
                let file = file.trim();
                if file.is_empty() {
                    return Err(BuildersError::IncludeWithoutFile { at }.into());
                }
                if let Some(stack) = stack.as_deref_mut() {
                    include(Path::new(file), &at, stack, out)?;
                }
            } else {
                out.push(parse_line(entry, &at)?);
            }
        }
    }
    Ok(())
}

const COLUMNS: [&str; 8] = [
    "store URI",
    "systems",
    "SSH identity file",
    "maxJobs",
    "speedFactor",
    "supportedFeatures",
    "mandatoryFeatures",
    "host key",
];

fn col_err(at: &str, col: usize, msg: impl std::fmt::Display, help: impl Into<String>) -> Error {
    let name = COLUMNS.get(col).copied().unwrap_or("extra");
    BuildersError::MachinesColumn {
        at: at.to_string(),
        column: col + 1,
        name,
        problem: msg.to_string(),
        help: help.into(),
    }
    .into()
}

/// Parses one machines line (no `;`, no comment). `at` names it in errors.
pub fn parse_line(line: &str, at: &str) -> Result<Machine> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() > COLUMNS.len() {
        return Err(col_err(
            at,
            COLUMNS.len(),
            format!("{} columns, at most 8 allowed (`{}` is extra)", cols.len(), cols[COLUMNS.len()]),
            "columns: URI systems identity maxJobs speedFactor supportedFeatures mandatoryFeatures hostKey",
        ));
    }
    let get = |i: usize| cols.get(i).copied().filter(|c| *c != "-");
    let Some(uri) = cols.first().copied() else {
        return Err(col_err(at, 0, "empty entry", "write at least the host"));
    };
    let (scheme, user, host, port, uri) = parse_uri(uri).map_err(|m| col_err(at, 0, m, URI_HELP))?;
    let systems = list(get(1), at, 1, is_system, "a system like x86_64-linux or riscv64-linux")?;
    let identity = match get(2) {
        None => None,
        Some(p) if p.starts_with('-') || p.chars().any(|c| c.is_control() || "'\"`$;&|<>\\".contains(c)) => {
            return Err(col_err(at, 2, format!("`{p}` is not a usable file path"), "give the path of the private key"));
        }
        Some(p) => Some(PathBuf::from(p)),
    };
    let max_jobs = match get(3) {
        None => 1,
        Some(s) => s.parse::<u32>().map_err(|_| {
            col_err(at, 3, format!("`{s}` is not an unsigned number"), "the number of builds the host runs at once")
        })?,
    };
    let speed = match get(4) {
        None => 1.0,
        Some(s) => {
            let v: f64 =
                s.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                    col_err(at, 4, format!("`{s}` is not a number"), "a positive number like 1 or 2.5")
                })?;
            if v < 0.0 {
                return Err(col_err(at, 4, format!("{s} is negative"), "a positive number like 1 or 2.5 (0 means 1)"));
            }
            if v == 0.0 { 1.0 } else { v }
        }
    };
    let feature_help = "feature names like big-parallel, kvm, benchmark";
    let supported_features = list(get(5), at, 5, is_feature, feature_help)?;
    let mandatory_features = list(get(6), at, 6, is_feature, feature_help)?;
    let host_key = match get(7) {
        None => None,
        Some(b) => Some(parse_host_key_column(b).map_err(|m| {
            col_err(
                at,
                7,
                m,
                "the base64 of the host's public key line: `base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub`",
            )
        })?),
    };
    Ok(Machine {
        uri,
        scheme,
        user,
        host,
        port,
        systems,
        identity,
        max_jobs,
        speed,
        supported_features,
        mandatory_features,
        host_key,
        source: at.to_string(),
    })
}

const URI_HELP: &str = "write `host`, `user@host`, `ssh://user@host:port`, `ssh-ng://host` or `local`";

type ParsedUri = (Scheme, Option<String>, String, Option<u16>, String);

fn parse_uri(uri: &str) -> std::result::Result<ParsedUri, UriError> {
    let bare = uri.split('?').next().unwrap_or(uri);
    if matches!(bare, "local" | "auto" | "daemon") {
        if bare != uri {
            return Err(UriError::LocalParameters { uri: uri.to_string() });
        }
        return Ok((Scheme::Local, None, String::new(), None, uri.to_string()));
    }
    let (scheme, rest, full) = if let Some(r) = uri.strip_prefix("ssh://") {
        (Scheme::Ssh, r, uri.to_string())
    } else if let Some(r) = uri.strip_prefix("ssh-ng://") {
        (Scheme::SshNg, r, uri.to_string())
    } else if let Some((s, _)) = uri.split_once("://") {
        return Err(UriError::Scheme { scheme: s.to_string() });
    } else if uri.starts_with('/') {
        return Err(UriError::LocalPath { uri: uri.to_string() });
    } else {
        (Scheme::Ssh, uri, format!("ssh://{uri}"))
    };
    if rest.contains(['?', '/']) {
        return Err(UriError::PathOrParameters { uri: uri.to_string() });
    }
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if let Some(u) = user
        && !is_user(u)
    {
        return Err(UriError::User { user: u.to_string() });
    }
    let (host, port) = split_host_port(hostport)?;
    if !is_host(host) {
        return Err(UriError::Host { host: host.to_string() });
    }
    Ok((scheme, user.map(str::to_string), host.to_string(), port, full))
}

fn split_host_port(s: &str) -> std::result::Result<(&str, Option<u16>), UriError> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| UriError::UnclosedBracket { hostport: s.to_string() })?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(|| UriError::AfterBracket { hostport: s.to_string() })?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| UriError::Port { port: p.to_string() })?)
        }
    };
    Ok((host, port))
}

fn list(col: Option<&str>, at: &str, i: usize, ok: fn(&str) -> bool, help: &str) -> Result<Vec<String>> {
    let Some(col) = col else { return Ok(Vec::new()) };
    let mut v = Vec::new();
    for item in col.split(',') {
        if !ok(item) {
            return Err(col_err(at, i, format!("`{item}` is not valid"), help));
        }
        if !v.iter().any(|x| x == item) {
            v.push(item.to_string());
        }
    }
    Ok(v)
}

fn word(s: &str, extra: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// A user name safe on an ssh command line.
pub fn is_user(s: &str) -> bool {
    word(s, "._-")
}

/// A host name, IPv4 or IPv6 address safe on an ssh command line.
pub fn is_host(s: &str) -> bool {
    word(s, ".-_") || (s.contains(':') && s.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'))
}

/// A Nix system name (`x86_64-linux`, `builtin`).
pub fn is_system(s: &str) -> bool {
    word(s, "_-")
}

/// A Nix system feature (`big-parallel`, `gccarch-armv8-a`, `nixos-test`).
pub fn is_feature(s: &str) -> bool {
    word(s, "_-.")
}

fn parse_host_key_column(b: &str) -> std::result::Result<HostKey, HostKeyError> {
    let bytes = base64_decode(b).ok_or_else(|| HostKeyError::NotBase64 { shortened: shorten(b) })?;
    let text = String::from_utf8(bytes).map_err(|_| HostKeyError::NotText)?;
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(t), Some(k)) if t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-") => {
            if base64_decode(k).is_none() {
                return Err(HostKeyError::KeyNotBase64 { shortened: shorten(k) });
            }
            Ok(HostKey { key_type: t.to_string(), key: k.to_string() })
        }
        _ => Err(HostKeyError::NotAKeyLine),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 24 { format!("{}...", s.chars().take(24).collect::<String>()) } else { s.to_string() }
}

/// Decoding engine: the standard alphabet, no padding (`base64_decode` strips any `=` first) and
/// unused bits of the last character ignored, so every key column accepted so far still is.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with `=` padding optional; None when empty or not valid.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.is_empty() {
        return None;
    }
    LENIENT.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        match parse_line(line, "m:1") {
            Ok(m) => panic!("`{line}` parsed: {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "abcd", "ssh-ed25519 AAAAC3Nz"] {
            let e = STANDARD.encode(s.as_bytes());
            if s.is_empty() {
                assert_eq!(base64_decode(&e), None);
            } else {
                assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()), "{s}");
                assert_eq!(base64_decode(e.trim_end_matches('=')).as_deref(), Some(s.as_bytes()), "unpadded {s}");
            }
        }
        assert_eq!(STANDARD.encode(b"ab"), "YWI=");
        assert_eq!(base64_decode("YWI==").as_deref(), Some(&b"ab"[..]), "extra padding is ignored");
        assert_eq!(base64_decode("YWJ").as_deref(), Some(&b"ab"[..]), "unused trailing bits are ignored");
        assert_eq!(base64_decode("YW!="), None);
        assert_eq!(base64_decode("YWJjZ"), None, "a lone last character");
        assert_eq!(base64_decode("YW=I"), None);
        assert_eq!(base64_decode("===="), None);
    }

    #[test]
    fn defaults_and_dashes() {
        let m = parse_line("builder", "m:1").expect("parse");
        assert_eq!(m.uri, "ssh://builder");
        assert_eq!((m.scheme, m.user.as_deref(), m.host.as_str(), m.port), (Scheme::Ssh, None, "builder", None));
        assert!(m.systems.is_empty() && m.identity.is_none() && m.host_key.is_none());
        assert_eq!((m.max_jobs, m.speed), (1, 1.0));
        let m = parse_line("ssh://u@h - - - 0 - big-parallel", "m:1").expect("parse");
        assert_eq!(m.speed, 1.0, "speed 0 means 1");
        assert_eq!(m.mandatory_features, ["big-parallel"]);
        assert!(m.supported_features.is_empty());
    }

    #[test]
    fn uris() {
        let m = parse_line("ssh://bob@host.example:2222 riscv64-linux", "x").expect("parse");
        assert_eq!((m.user.as_deref(), m.host.as_str(), m.port), (Some("bob"), "host.example", Some(2222)));
        let m = parse_line("ssh-ng://h", "x").expect("parse");
        assert_eq!(m.scheme, Scheme::SshNg);
        let m = parse_line("[fe80::1]:22", "x").expect("parse");
        assert_eq!((m.host.as_str(), m.port), ("fe80::1", Some(22)));
        for l in ["local", "auto", "daemon"] {
            assert_eq!(parse_line(l, "x").expect("parse").scheme, Scheme::Local);
        }
    }

    #[test]
    fn malformed_lines_say_where_and_what() {
        let cases = [
            ("ssh://-oProxyCommand=x", "column 1 (store URI)"),
            ("ssh://a;b@h", "not a valid"),
            ("ssh://h$(id)", "not a valid host"),
            ("http://cache", "scheme `http://`"),
            ("/some/store", "local stores"),
            ("ssh://h:99999", "not a port"),
            ("ssh://h:0", "not a port"),
            ("ssh://h?remote-store=x", "not supported"),
            ("h x86_64-linux,`id`", "column 2 (systems)"),
            ("h - -i", "column 3 (SSH identity file)"),
            ("h - - many", "column 4 (maxJobs): `many` is not an unsigned number"),
            ("h - - -3", "column 4 (maxJobs)"),
            ("h - - 1 -2", "column 5 (speedFactor): -2 is negative"),
            ("h - - 1 fast", "column 5 (speedFactor): `fast` is not a number"),
            ("h - - 1 NaN", "column 5"),
            ("h - - 1 1 kvm,$x", "column 6 (supportedFeatures)"),
            ("h - - 1 1 - a,,b", "column 7 (mandatoryFeatures)"),
            ("h - - 1 1 - - !!notbase64", "column 8 (host key): `!!notbase64` is not valid base64"),
            ("h - - 1 1 - - aGVsbG8gd29ybGQ=", "not a public key line"),
            ("h - - 1 1 - - - extra", "9 columns"),
        ];
        for (line, want) in cases {
            let e = err(line);
            assert!(e.starts_with("m:1: "), "{line}: {e}");
            assert!(e.contains(want), "{line}: `{e}` lacks `{want}`");
        }
    }

    #[test]
    fn semicolons_comments_and_entry_numbers() {
        let ms = parse_spec("a x86_64-linux ; b - - 2 # c - - x\n\n; c", "--builders").expect("parse");
        let hosts: Vec<&str> = ms.iter().map(|m| m.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert_eq!(ms[1].max_jobs, 2);
        assert_eq!(ms[2].source, "--builders entry 3");
        let e = parse_spec("a ; b - - x", "--builders").expect_err("bad");
        assert!(e.to_string().starts_with("--builders entry 2: column 4"), "{e}");
    }

    #[test]
    fn host_key_column_round_trips_through_to_line() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3dDLOZERP1nZfRz3zIeVDm1q2Trer+fWFVvVXrgXM1 root@kana\n";
        let line = format!("ssh://k x86_64-linux /k 2 1.5 kvm - {}", STANDARD.encode(key));
        let m = parse_line(&line, "x").expect("parse");
        let k = m.host_key.clone().expect("key");
        assert_eq!(k.key_type, "ssh-ed25519");
        assert!(k.key.starts_with("AAAAC3"));
        let again = parse_line(&m.to_line(), "y").expect("reparse");
        assert_eq!(Machine { source: "x".into(), ..again }, m);
    }
}
