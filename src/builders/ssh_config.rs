//! A reader for the part of OpenSSH's client configuration (`~/.ssh/config`,
//! `/etc/ssh/ssh_config`) that says where a host alias leads: `Host` blocks with `*`/`?`
//! wildcards and `!` negation, `HostName`, `Port`, `User`, `IdentityFile` and `Include`.
//! Like OpenSSH, the first value obtained for an option wins (identity files accumulate).
//! `Match` blocks are not evaluated: their options are skipped.

use std::path::{Path, PathBuf};

use super::error::BuildersError;
use super::machines::{is_host, is_user};
use crate::Result;

const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Directive {
    /// `Host` patterns; `None` for a `Match` block (never applies here).
    Block(Option<Vec<String>>),
    Set {
        key: String,
        value: String,
        at: String,
    },
}

/// The directives of the config files in the order OpenSSH reads them.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    directives: Vec<Directive>,
}

/// Where an alias leads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    pub hostname: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_files: Vec<PathBuf>,
}

impl SshConfig {
    /// Reads the given files in order (missing files are skipped); `home` expands `~`.
    pub fn load(files: &[PathBuf], home: Option<&Path>) -> Result<SshConfig> {
        let mut cfg = SshConfig::default();
        for f in files {
            if !f.is_file() {
                continue;
            }
            // Relative includes resolve in the file's own directory: `~/.ssh` for the user's
            // config, `/etc/ssh` for the system's.
            let base = f.parent().map(Path::to_path_buf).unwrap_or_default();
            cfg.read(f, &base, home, 0)?;
            // A new file starts outside any Host block, like OpenSSH.
            cfg.directives.push(Directive::Block(Some(vec!["*".into()])));
        }
        Ok(cfg)
    }

    /// Parses config text (for tests); includes resolve against `base`.
    pub fn parse(text: &str, name: &str, base: &Path, home: Option<&Path>) -> Result<SshConfig> {
        let mut cfg = SshConfig::default();
        cfg.parse_text(text, name, base, home, 0)?;
        Ok(cfg)
    }

    fn read(&mut self, path: &Path, base: &Path, home: Option<&Path>, depth: usize) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BuildersError::ReadSshConfig { path: path.to_path_buf(), source })?;
        self.parse_text(&text, &path.display().to_string(), base, home, depth)
    }

    fn parse_text(&mut self, text: &str, name: &str, base: &Path, home: Option<&Path>, depth: usize) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = split_keyword(line);
            let args = split_args(rest);
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "host" => self.directives.push(Directive::Block(Some(args))),
                "match" => self.directives.push(Directive::Block(None)),
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(BuildersError::SshConfigIncludeDepth { at, limit: MAX_INCLUDE_DEPTH }.into());
                    }
                    for pat in args {
                        let p = expand_tilde(&pat, home);
                        let p = if p.is_absolute() { p } else { base.join(p) };
                        for f in glob(&p) {
                            self.read(&f, base, home, depth + 1)?;
                        }
                    }
                }
                "hostname" | "port" | "user" | "identityfile" => {
                    if let Some(v) = args.into_iter().next() {
                        self.directives.push(Directive::Set { key, value: v, at });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Resolves an alias: HostName (default the alias), Port, User, IdentityFile list.
    /// Values are validated: a bad one is an error naming the file and line.
    pub fn resolve(&self, alias: &str, home: Option<&Path>) -> Result<Resolved> {
        let mut r = Resolved::default();
        let mut hostname = None;
        let mut active = true;
        for d in &self.directives {
            match d {
                Directive::Block(Some(pats)) => active = host_matches(pats, alias),
                Directive::Block(None) => active = false,
                Directive::Set { key, value, at } if active => {
                    let bad = |what: &'static str| BuildersError::SshConfigValue {
                        at: at.clone(),
                        value: value.clone(),
                        what,
                        alias: alias.to_string(),
                    };
                    match key.as_str() {
                        "hostname" if hostname.is_none() => {
                            let h = value.replace("%h", alias).replace("%%", "%");
                            if !is_host(&h) {
                                return Err(bad("HostName").into());
                            }
                            hostname = Some(h);
                        }
                        "port" if r.port.is_none() => {
                            r.port = Some(value.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("Port"))?);
                        }
                        "user" if r.user.is_none() => {
                            if !is_user(value) {
                                return Err(bad("User").into());
                            }
                            r.user = Some(value.clone());
                        }
                        "identityfile" if !value.eq_ignore_ascii_case("none") => {
                            let v = value.replace("%d", &home.map(|h| h.display().to_string()).unwrap_or_default());
                            let v = v.replace("%h", alias).replace("%%", "%");
                            let p = expand_tilde(&v, home);
                            if !r.identity_files.contains(&p) {
                                r.identity_files.push(p);
                            }
                        }
                        _ => {}
                    }
                }
                Directive::Set { .. } => {}
            }
        }
        r.hostname = hostname.unwrap_or_else(|| alias.to_string());
        Ok(r)
    }
}

fn split_keyword(line: &str) -> (&str, &str) {
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let (k, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (k, rest)
}

/// Splits arguments on whitespace, honouring double quotes.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn expand_tilde(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if p == "~" => home.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(p)),
        _ => PathBuf::from(p),
    }
}

/// Files matching a path whose last component may hold `*`/`?` (sorted, like glob(3)).
fn glob(p: &Path) -> Vec<PathBuf> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if p.is_file() { vec![p.to_path_buf()] } else { Vec::new() };
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()) && e.path().is_file())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// OpenSSH pattern-list matching: some positive pattern matches and no `!` pattern does.
pub fn host_matches(patterns: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut hit = false;
    for p in patterns {
        let p = p.to_ascii_lowercase();
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, &host) {
                return false;
            }
        } else if wildcard(&p, &host) {
            hit = true;
        }
    }
    hit
}

/// `*` matches any run of characters, `?` exactly one.
pub fn wildcard(pat: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_negation() {
        assert!(wildcard("*.lan", "a.lan"));
        assert!(wildcard("b?x", "box"));
        assert!(!wildcard("b?x", "bx"));
        assert!(wildcard("*", ""));
        let pats: Vec<String> = ["*.lan", "!secret.lan"].map(String::from).into();
        assert!(host_matches(&pats, "Build.LAN"));
        assert!(!host_matches(&pats, "secret.lan"));
        assert!(!host_matches(&pats, "other"));
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let home = Path::new("/home/u");
        let text = "\
# comment
Host build
  HostName 10.0.0.5
  Port=2222
  IdentityFile ~/.ssh/one
Host *.lan !x.lan
  User lanuser
Host *
  User fallback
  Port 22
  HostName ignored
  IdentityFile \"%d/.ssh/two\"
Match host build
  User never
";
        let c = SshConfig::parse(text, "cfg", home, Some(home)).expect("parse");
        let r = c.resolve("build", Some(home)).expect("resolve");
        assert_eq!(r.hostname, "10.0.0.5");
        assert_eq!(r.port, Some(2222));
        assert_eq!(r.user.as_deref(), Some("fallback"));
        assert_eq!(r.identity_files, [PathBuf::from("/home/u/.ssh/one"), PathBuf::from("/home/u/.ssh/two")]);
        let r = c.resolve("a.lan", Some(home)).expect("resolve");
        assert_eq!((r.hostname.as_str(), r.user.as_deref(), r.port), ("ignored", Some("lanuser"), Some(22)));
        let r = c.resolve("x.lan", Some(home)).expect("resolve");
        assert_eq!(r.user.as_deref(), Some("fallback"));
    }

    #[test]
    fn bad_values_name_the_line() {
        let c = SshConfig::parse("Host h\n  HostName -oProxyCommand=x\n", "cfg", Path::new("/"), None).expect("parse");
        let e = c.resolve("h", None).expect_err("bad").to_string();
        assert!(e.starts_with("cfg:2:") && e.contains("HostName"), "{e}");
        let c = SshConfig::parse("Host h\n  Port http\n", "cfg", Path::new("/"), None).expect("parse");
        assert!(c.resolve("h", None).is_err());
    }

    #[test]
    fn includes_are_relative_glob_and_bounded() {
        let d = tempfile::tempdir().expect("tempdir");
        let ssh = d.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
        std::fs::write(ssh.join("conf.d/a.conf"), "Host a\n  HostName 10.1.1.1\n").expect("write");
        std::fs::write(ssh.join("conf.d/b.conf"), "Host b\n  Port 2200\n").expect("write");
        std::fs::write(ssh.join("config"), "Include conf.d/*.conf\nHost a\n  HostName later\n").expect("write");
        let c = SshConfig::load(&[ssh.join("config")], Some(d.path())).expect("load");
        assert_eq!(c.resolve("a", Some(d.path())).expect("a").hostname, "10.1.1.1");
        assert_eq!(c.resolve("b", Some(d.path())).expect("b").port, Some(2200));
        std::fs::write(ssh.join("loop"), "Include loop\n").expect("write");
        let e = SshConfig::load(&[ssh.join("loop")], Some(d.path())).expect_err("loop").to_string();
        assert!(e.contains("nested deeper"), "{e}");
    }
}
