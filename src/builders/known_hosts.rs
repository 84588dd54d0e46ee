//! OpenSSH `known_hosts` files: host patterns (comma lists, `[host]:port`, wildcards, `!`
//! negation, hashed `|1|salt|hash` entries), the `@cert-authority` and `@revoked` markers, and
//! lookup of a host's keys by name and port; appending a newly accepted key.

use std::path::{Path, PathBuf};

use hmac::{KeyInit, Mac};
use serde::Serialize;

use super::error::KnownHostsLineError;
use super::machines::{HostKey, base64_decode};
use super::ssh_config::host_matches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Marker {
    None,
    CertAuthority,
    Revoked,
}

/// One known_hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub marker: Marker,
    pub patterns: Vec<String>,
    pub key: HostKey,
    /// `FILE:LINE`
    pub at: String,
}

/// What the known_hosts files say about a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lookup {
    /// Plain host keys for it.
    pub keys: Vec<(HostKey, String)>,
    /// Certificate authorities trusted for it.
    pub cert_authorities: Vec<(HostKey, String)>,
    /// Revoked keys (a host presenting one is refused).
    pub revoked: Vec<(HostKey, String)>,
}

/// The parsed lines of some known_hosts files, plus lines that could not be parsed.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    pub entries: Vec<Entry>,
    /// `FILE:LINE: problem` for lines skipped (OpenSSH skips them too).
    pub skipped: Vec<String>,
}

impl KnownHosts {
    /// Reads the files that exist among `files`.
    pub fn load(files: &[PathBuf]) -> KnownHosts {
        let mut kh = KnownHosts::default();
        for f in files {
            match std::fs::read_to_string(f) {
                Ok(t) => kh.add_text(&t, &f.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => kh.skipped.push(format!("{}: {e}", f.display())),
            }
        }
        kh
    }

    /// Adds the lines of one file.
    pub fn add_text(&mut self, text: &str, name: &str) {
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line, &at) {
                Ok(e) => self.entries.push(e),
                Err(m) => self.skipped.push(format!("{at}: {m}")),
            }
        }
    }

    /// Keys for `host` on `port` (22 = the plain name, else `[host]:port`).
    pub fn lookup(&self, host: &str, port: u16) -> Lookup {
        let name = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
        let mut r = Lookup::default();
        for e in &self.entries {
            if !entry_matches(&e.patterns, &name) {
                continue;
            }
            let item = (e.key.clone(), e.at.clone());
            match e.marker {
                Marker::None => r.keys.push(item),
                Marker::CertAuthority => r.cert_authorities.push(item),
                Marker::Revoked => r.revoked.push(item),
            }
        }
        r
    }

    /// Whether `key` is revoked in these files (whatever host it is for).
    pub fn is_revoked(&self, key: &HostKey) -> bool {
        self.entries.iter().any(|e| e.marker == Marker::Revoked && &e.key == key)
    }
}

fn parse_line(line: &str, at: &str) -> std::result::Result<Entry, KnownHostsLineError> {
    let mut words = line.split_whitespace();
    let mut first = words.next().unwrap_or("");
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        m if m.starts_with('@') => return Err(KnownHostsLineError::UnknownMarker { marker: m.to_string() }),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = words.next().ok_or(KnownHostsLineError::NoPatterns)?;
    }
    let key_type = words.next().ok_or(KnownHostsLineError::NoKeyType)?;
    let key = words.next().ok_or(KnownHostsLineError::NoKey)?;
    if base64_decode(key).is_none() {
        return Err(KnownHostsLineError::KeyNotBase64);
    }
    Ok(Entry {
        marker,
        patterns: first.split(',').map(str::to_string).collect(),
        key: HostKey { key_type: key_type.to_string(), key: key.to_string() },
        at: at.to_string(),
    })
}

fn entry_matches(patterns: &[String], name: &str) -> bool {
    if let [p] = patterns
        && let Some(h) = p.strip_prefix("|1|")
    {
        return hashed_matches(h, name);
    }
    host_matches(patterns, name)
}

/// `salt|hash` (both base64): HMAC-SHA1 of the name keyed with the salt.
fn hashed_matches(salt_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_hash.split_once('|') else { return false };
    let (Some(salt), Some(hash)) = (base64_decode(salt), base64_decode(hash)) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else { return false };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// The default files: the user's and the system's.
pub fn default_files(home: Option<&Path>, ssh_dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = home {
        v.push(h.join(".ssh/known_hosts"));
        v.push(h.join(".ssh/known_hosts2"));
    }
    v.push(ssh_dir.join("ssh_known_hosts"));
    v.push(ssh_dir.join("ssh_known_hosts2"));
    v
}

/// The known_hosts name of `host` on `port`: the plain name for 22, else `[host]:port`.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

/// Appends `host`'s `key` as a new line of `file`, creating the file (and its directory, mode
/// 0700 like `~/.ssh`) when missing. Returns where it was written as `FILE:LINE`.
///
/// The write is atomic: the new contents go to a temporary file in the same directory (with
/// the old file's mode, 0600 for a new one), which is synced and renamed over the file, so a
/// crash or a full disk never leaves a truncated known_hosts. A symlinked file (a dotfile
/// manager's) is updated at its target. Appends within this process are serialised.
pub fn append(file: &Path, host: &str, port: u16, key: &HostKey) -> std::io::Result<String> {
    use std::os::unix::fs::DirBuilderExt;
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = WRITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let real = match std::fs::canonicalize(file) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => file.to_path_buf(),
        Err(e) => return Err(e),
    };
    let (old, mode) = match std::fs::read(&real) {
        Ok(b) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&real)?.permissions().mode() & 0o7777;
            (b, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0o600),
        Err(e) => return Err(e),
    };
    let mut new = old.clone();
    if !new.is_empty() && !new.ends_with(b"\n") {
        new.push(b'\n');
    }
    new.extend_from_slice(format!("{} {} {}\n", host_name(host, port), key.key_type, key.key).as_bytes());
    replace_atomically(&real, &new, mode)?;
    let lineno =
        old.iter().filter(|b| **b == b'\n').count() + if old.is_empty() || old.ends_with(b"\n") { 1 } else { 2 };
    Ok(format!("{}:{lineno}", file.display()))
}

/// Writes `contents` to `path` through a synced temporary file in the same directory and a
/// rename, then syncs the directory so the rename itself is durable.
fn replace_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut last = None;
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.rvbuild-{}-{attempt}", std::process::id()));
        let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = (|| {
            // The umask may have narrowed the mode given to open.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            f.write_all(contents)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        return std::fs::File::open(dir)?.sync_all();
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary file name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDnCQXlllHoLX5EvU+t6yP/npsmuxKt0skHVeJashizE";

    fn kh(text: &str) -> KnownHosts {
        let mut k = KnownHosts::default();
        k.add_text(text, "kh");
        k
    }

    #[test]
    fn plain_lists_ports_and_markers() {
        let k = kh(&format!(
            "# c\naquamarine,192.168.5.101 ssh-ed25519 {KEY}\n[gw.example]:2222 ssh-ed25519 {KEY} c\n\
             @cert-authority *.lan ssh-ed25519 {KEY}\n@revoked bad ssh-ed25519 {KEY}\nbroken\n"
        ));
        assert_eq!(k.skipped, ["kh:6: no key type"]);
        assert_eq!(k.lookup("aquamarine", 22).keys.len(), 1);
        assert_eq!(k.lookup("192.168.5.101", 22).keys[0].1, "kh:2");
        assert!(k.lookup("aquamarine", 2222).keys.is_empty(), "port 2222 is a different entry");
        assert_eq!(k.lookup("gw.example", 2222).keys.len(), 1);
        assert!(k.lookup("gw.example", 22).keys.is_empty());
        assert_eq!(k.lookup("x.lan", 22).cert_authorities.len(), 1);
        assert_eq!(k.lookup("bad", 22).revoked.len(), 1);
        assert!(k.is_revoked(&HostKey { key_type: "ssh-ed25519".into(), key: KEY.into() }));
    }

    #[test]
    fn hashed_entries_match_by_hmac_sha1() {
        // The way `ssh-keygen -H` hashes the name `kana`.
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).expect("key");
        mac.update(b"kana");
        let hash = mac.finalize().into_bytes();
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let line = format!("|1|{}|{} ssh-ed25519 {KEY}\n", b64(&salt), b64(&hash));
        let k = kh(&line);
        assert_eq!(k.lookup("kana", 22).keys.len(), 1);
        assert!(k.lookup("ruby", 22).keys.is_empty());
        assert!(k.lookup("kana", 2222).keys.is_empty());
    }

    #[test]
    fn append_adds_a_line_lookup_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("new/.ssh/known_hosts");
        let key = HostKey { key_type: "ssh-ed25519".into(), key: KEY.into() };
        assert_eq!(append(&f, "10.0.0.2", 2222, &key).expect("append"), format!("{}:1", f.display()));
        std::fs::write(&f, format!("a ssh-ed25519 {KEY}")).expect("write");
        assert_eq!(append(&f, "b", 22, &key).expect("append"), format!("{}:2", f.display()));
        let k = KnownHosts::load(std::slice::from_ref(&f));
        assert!(k.skipped.is_empty(), "{:?}", k.skipped);
        assert_eq!(k.lookup("b", 22).keys, [(key, format!("{}:2", f.display()))]);
    }

    #[test]
    fn append_is_atomic_keeps_the_mode_and_writes_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = HostKey { key_type: "ssh-ed25519".into(), key: KEY.into() };
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        // A new file is private.
        let fresh = dir.path().join("fresh");
        append(&fresh, "a", 22, &key).expect("append");
        assert_eq!(mode(&fresh), 0o600);
        // An existing file keeps its mode, and is replaced (a new inode), never rewritten in place.
        let f = dir.path().join("known_hosts");
        std::fs::write(&f, format!("old ssh-ed25519 {KEY}\n")).expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let reader = std::fs::File::open(&f).expect("open");
        append(&f, "b", 22, &key).expect("append");
        assert_eq!(mode(&f), 0o644);
        let mut before = String::new();
        std::io::Read::read_to_string(&mut &reader, &mut before).expect("read");
        assert_eq!(before, format!("old ssh-ed25519 {KEY}\n"), "a reader of the old file sees it whole");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), format!("old ssh-ed25519 {KEY}\nb ssh-ed25519 {KEY}\n"));
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A symlinked known_hosts stays a symlink; its target gets the line.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert_eq!(append(&link, "c", 22, &key).expect("append"), format!("{}:3", link.display()));
        assert!(std::fs::symlink_metadata(&link).expect("meta").file_type().is_symlink());
        assert!(std::fs::read_to_string(&f).expect("read").ends_with(&format!("c ssh-ed25519 {KEY}\n")));
    }

    #[test]
    fn append_from_many_threads_loses_no_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("known_hosts");
        let key = HostKey { key_type: "ssh-ed25519".into(), key: KEY.into() };
        std::thread::scope(|s| {
            for i in 0..8 {
                let (f, key) = (&f, &key);
                s.spawn(move || append(f, &format!("h{i}"), 22, key).expect("append"));
            }
        });
        let k = KnownHosts::load(std::slice::from_ref(&f));
        assert_eq!(k.entries.len(), 8);
        assert!((0..8).all(|i| k.lookup(&format!("h{i}"), 22).keys.len() == 1));
    }

    #[test]
    fn bad_lines_are_skipped_with_reason() {
        let k = kh("@foo h ssh-ed25519 AAAA\nh ssh-ed25519 !!!\n");
        assert_eq!(k.skipped, ["kh:1: unknown marker `@foo`", "kh:2: the key is not valid base64"]);
        assert!(k.entries.is_empty());
    }
}
