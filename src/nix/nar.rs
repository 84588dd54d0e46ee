//! NAR ("Nix ARchive"): the streaming writer of a filesystem path, the streaming parser and
//! restorer (constant memory: file contents move in chunks), and the hashing sink that gives a
//! NAR's `narHash` and `narSize` while it streams.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use sha2::{Digest, Sha256};

use super::store_path::NarHash;

const MAGIC: &[u8] = b"nix-archive-1";
const CHUNK: usize = 64 * 1024;
/// Deeper trees are rejected instead of recursing without bound.
const MAX_DEPTH: usize = 512;
const MAX_NAME: usize = 255;
const MAX_TARGET: usize = 4096;

/// A NAR could not be written, read or restored.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NarError {
    /// A file or directory on this machine could not be read or created.
    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::nix::nar::fs))]
    Fs { path: PathBuf, source: io::Error },
    /// The stream the NAR comes from or goes to failed.
    #[error("NAR stream at byte {offset}: {source}")]
    #[diagnostic(code(rvbuild::nix::nar::stream))]
    Stream { offset: u64, source: io::Error },
    /// The bytes are not a valid NAR.
    #[error("invalid NAR at byte {offset}: {msg}")]
    #[diagnostic(code(rvbuild::nix::nar::format))]
    Format { offset: u64, msg: String },
}

fn fs_err(path: &Path) -> impl FnOnce(io::Error) -> NarError + '_ {
    move |source| NarError::Fs { path: path.to_path_buf(), source }
}

// ---------------------------------------------------------------- writer

/// Writes the NAR of `path` (file, directory or symlink, not followed) to `out`.
pub fn dump_path(path: &Path, out: &mut impl Write) -> Result<(), NarError> {
    let mut w = TokenWriter { out, offset: 0 };
    w.bytes(MAGIC)?;
    dump_node(&mut w, path, 0)
}

struct TokenWriter<'a, W: Write> {
    out: &'a mut W,
    offset: u64,
}

impl<W: Write> TokenWriter<'_, W> {
    fn raw(&mut self, b: &[u8]) -> Result<(), NarError> {
        let offset = self.offset;
        self.out.write_all(b).map_err(|source| NarError::Stream { offset, source })?;
        self.offset += b.len() as u64;
        Ok(())
    }

    fn u64(&mut self, v: u64) -> Result<(), NarError> {
        self.raw(&v.to_le_bytes())
    }

    fn pad(&mut self, len: u64) -> Result<(), NarError> {
        let pad = padding(len);
        self.raw(&[0u8; 8][..pad])
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), NarError> {
        self.u64(b.len() as u64)?;
        self.raw(b)?;
        self.pad(b.len() as u64)
    }
}

fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}

fn dump_node<W: Write>(w: &mut TokenWriter<'_, W>, path: &Path, depth: usize) -> Result<(), NarError> {
    if depth > MAX_DEPTH {
        return Err(NarError::Fs {
            path: path.to_path_buf(),
            source: io::Error::other(format!("directory tree deeper than {MAX_DEPTH} levels")),
        });
    }
    let meta = fs::symlink_metadata(path).map_err(fs_err(path))?;
    w.bytes(b"(")?;
    w.bytes(b"type")?;
    let ft = meta.file_type();
    if ft.is_file() {
        w.bytes(b"regular")?;
        if meta.permissions().mode() & 0o100 != 0 {
            w.bytes(b"executable")?;
            w.bytes(b"")?;
        }
        w.bytes(b"contents")?;
        let len = meta.len();
        w.u64(len)?;
        let file = fs::File::open(path).map_err(fs_err(path))?;
        let mut limited = file.take(len);
        let mut buf = vec![0u8; CHUNK];
        let mut copied = 0u64;
        loop {
            let n = limited.read(&mut buf).map_err(fs_err(path))?;
            if n == 0 {
                break;
            }
            w.raw(&buf[..n])?;
            copied += n as u64;
        }
        if copied != len {
            return Err(NarError::Fs {
                path: path.to_path_buf(),
                source: io::Error::other(format!("file shrank from {len} to {copied} bytes while it was archived")),
            });
        }
        w.pad(len)?;
    } else if ft.is_symlink() {
        w.bytes(b"symlink")?;
        w.bytes(b"target")?;
        let target = fs::read_link(path).map_err(fs_err(path))?;
        w.bytes(target.as_os_str().as_bytes())?;
    } else if ft.is_dir() {
        w.bytes(b"directory")?;
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(fs_err(path))? {
            names.push(entry.map_err(fs_err(path))?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            w.bytes(b"entry")?;
            w.bytes(b"(")?;
            w.bytes(b"name")?;
            w.bytes(name.as_bytes())?;
            w.bytes(b"node")?;
            dump_node(w, &path.join(&name), depth + 1)?;
            w.bytes(b")")?;
        }
    } else {
        return Err(NarError::Fs {
            path: path.to_path_buf(),
            source: io::Error::other("not a regular file, directory or symlink; a NAR cannot hold it"),
        });
    }
    w.bytes(b")")
}

// ---------------------------------------------------------------- hashing

/// A `Write` that hashes (SHA-256) and counts everything passing through to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), size: 0 }
    }

    /// The inner writer, the hash and the byte count.
    pub fn finish(self) -> (W, NarHash, u64) {
        let digest = self.hasher.finalize();
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&digest);
        (self.inner, NarHash(hash), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `narHash` and `narSize` of a filesystem path, without keeping the NAR.
pub fn hash_path(path: &Path) -> Result<(NarHash, u64), NarError> {
    let mut sink = HashingWriter::new(io::sink());
    dump_path(path, &mut sink)?;
    let (_, hash, size) = sink.finish();
    Ok((hash, size))
}

// ---------------------------------------------------------------- parser

/// Receives the parts of a NAR in order. Paths are relative to the root; the root itself is
/// the empty path. Names have been validated (no `/`, `.`, `..`, NUL, strictly sorted).
pub trait NarVisitor {
    fn directory(&mut self, rel: &Path) -> Result<(), NarError>;
    fn file_start(&mut self, rel: &Path, executable: bool, size: u64) -> Result<(), NarError>;
    fn file_chunk(&mut self, data: &[u8]) -> Result<(), NarError>;
    fn file_end(&mut self) -> Result<(), NarError>;
    fn symlink(&mut self, rel: &Path, target: &[u8]) -> Result<(), NarError>;
}

/// Parses one NAR from `input`, reading exactly its bytes and nothing after it, and returns
/// its size.
pub fn parse(input: &mut impl Read, visitor: &mut impl NarVisitor) -> Result<u64, NarError> {
    let mut r = TokenReader { input, offset: 0 };
    r.expect(MAGIC, "the NAR magic \"nix-archive-1\"")?;
    let mut rel = PathBuf::new();
    parse_node(&mut r, visitor, &mut rel, 0)?;
    Ok(r.offset)
}

/// Parses one NAR and checks its structure without keeping anything. Returns its size.
pub fn validate(input: &mut impl Read) -> Result<u64, NarError> {
    struct Nothing;
    impl NarVisitor for Nothing {
        fn directory(&mut self, _: &Path) -> Result<(), NarError> {
            Ok(())
        }
        fn file_start(&mut self, _: &Path, _: bool, _: u64) -> Result<(), NarError> {
            Ok(())
        }
        fn file_chunk(&mut self, _: &[u8]) -> Result<(), NarError> {
            Ok(())
        }
        fn file_end(&mut self) -> Result<(), NarError> {
            Ok(())
        }
        fn symlink(&mut self, _: &Path, _: &[u8]) -> Result<(), NarError> {
            Ok(())
        }
    }
    parse(input, &mut Nothing)
}

struct TokenReader<'a, R: Read> {
    input: &'a mut R,
    offset: u64,
}

impl<R: Read> TokenReader<'_, R> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NarError> {
        let offset = self.offset;
        self.input.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                NarError::Format { offset, msg: "the stream ended in the middle of the NAR".into() }
            } else {
                NarError::Stream { offset, source }
            }
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn format(&self, msg: impl Into<String>) -> NarError {
        NarError::Format { offset: self.offset, msg: msg.into() }
    }

    fn u64(&mut self) -> Result<u64, NarError> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn pad(&mut self, len: u64) -> Result<(), NarError> {
        let n = padding(len);
        let mut b = [0u8; 8];
        self.fill(&mut b[..n])?;
        if b.iter().any(|&x| x != 0) {
            return Err(self.format("non-zero padding"));
        }
        Ok(())
    }

    /// A string of at most `max` bytes.
    fn bytes(&mut self, max: usize, what: &str) -> Result<Vec<u8>, NarError> {
        let at = self.offset;
        let len = self.u64()?;
        if len > max as u64 {
            return Err(NarError::Format {
                offset: at,
                msg: format!("{what} is {len} bytes long, more than the limit of {max}"),
            });
        }
        let mut v = vec![0u8; len as usize];
        self.fill(&mut v)?;
        self.pad(len)?;
        Ok(v)
    }

    fn token(&mut self) -> Result<Vec<u8>, NarError> {
        self.bytes(16, "a NAR keyword")
    }

    fn expect(&mut self, token: &[u8], what: &str) -> Result<(), NarError> {
        let at = self.offset;
        let got = self.bytes(MAX_NAME.max(token.len()), what)?;
        if got != token {
            return Err(NarError::Format {
                offset: at,
                msg: format!("expected {what}, found {:?}", String::from_utf8_lossy(&got)),
            });
        }
        Ok(())
    }
}

fn parse_node<R: Read>(
    r: &mut TokenReader<'_, R>,
    v: &mut impl NarVisitor,
    rel: &mut PathBuf,
    depth: usize,
) -> Result<(), NarError> {
    if depth > MAX_DEPTH {
        return Err(r.format(format!("directories nested deeper than {MAX_DEPTH} levels")));
    }
    r.expect(b"(", "\"(\"")?;
    r.expect(b"type", "\"type\"")?;
    let at = r.offset;
    let kind = r.token()?;
    match kind.as_slice() {
        b"regular" => {
            let mut tok = r.token()?;
            let mut executable = false;
            if tok == b"executable" {
                executable = true;
                r.expect(b"", "an empty string after \"executable\"")?;
                tok = r.token()?;
            }
            if tok != b"contents" {
                return Err(r.format("expected \"contents\" (or \"executable\") in a regular file"));
            }
            let size = r.u64()?;
            v.file_start(rel, executable, size)?;
            let mut buf = vec![0u8; CHUNK];
            let mut left = size;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                r.fill(&mut buf[..n])?;
                v.file_chunk(&buf[..n])?;
                left -= n as u64;
            }
            r.pad(size)?;
            v.file_end()?;
            r.expect(b")", "\")\" after the file contents")?;
        }
        b"symlink" => {
            r.expect(b"target", "\"target\"")?;
            let target_at = r.offset;
            let target = r.bytes(MAX_TARGET, "a symlink target")?;
            if target.is_empty() || target.contains(&0) {
                return Err(NarError::Format {
                    offset: target_at,
                    msg: "a symlink target is empty or contains NUL".into(),
                });
            }
            v.symlink(rel, &target)?;
            r.expect(b")", "\")\" after the symlink target")?;
        }
        b"directory" => {
            v.directory(rel)?;
            let mut prev: Option<Vec<u8>> = None;
            loop {
                let at = r.offset;
                let tok = r.token()?;
                if tok == b")" {
                    break;
                }
                if tok != b"entry" {
                    return Err(NarError::Format {
                        offset: at,
                        msg: "expected \"entry\" or \")\" in a directory".into(),
                    });
                }
                r.expect(b"(", "\"(\" after \"entry\"")?;
                r.expect(b"name", "\"name\"")?;
                let name_at = r.offset;
                let name = r.bytes(MAX_NAME, "an entry name")?;
                check_name(&name, name_at)?;
                if prev.as_ref().is_some_and(|p| *p >= name) {
                    return Err(NarError::Format {
                        offset: name_at,
                        msg: format!(
                            "entry {:?} is not sorted after the previous one (duplicate or out of order)",
                            String::from_utf8_lossy(&name)
                        ),
                    });
                }
                r.expect(b"node", "\"node\"")?;
                rel.push(OsStr::from_bytes(&name));
                parse_node(r, v, rel, depth + 1)?;
                rel.pop();
                r.expect(b")", "\")\" after a directory entry")?;
                prev = Some(name);
            }
        }
        other => {
            return Err(NarError::Format {
                offset: at,
                msg: format!("unknown node type {:?}", String::from_utf8_lossy(other)),
            });
        }
    }
    Ok(())
}

/// Rejects a directory entry name (at byte `offset`) that could escape or confuse the tree.
fn check_name(name: &[u8], offset: u64) -> Result<(), NarError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(NarError::Format {
            offset,
            msg: format!(
                "entry name {:?} is not allowed (empty, '.', '..', or containing '/' or NUL)",
                String::from_utf8_lossy(name)
            ),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- restorer

/// Restores one NAR from `input` at `dest`, which must not exist yet. Returns the NAR size.
///
/// The NAR comes from a builder and is not trusted. Besides the checks of [`parse`] (names
/// without `/`, `.`, `..`, NUL; strictly sorted, so no duplicates), every entry is created
/// relative to a descriptor of its parent directory, exclusively (`O_EXCL`, `mkdirat`,
/// `symlinkat` fail on anything already there) and never through a symlink (`O_NOFOLLOW` on
/// every directory opened): nothing is written outside `dest`, even if something else swaps
/// a directory for a symlink while the restore runs.
///
/// On failure what was restored so far is removed again: `dest` holds the whole NAR or does
/// not exist.
pub fn restore(input: &mut impl Read, dest: &Path) -> Result<u64, NarError> {
    let mut sink = Restorer::new(dest)?;
    let res = parse(input, &mut sink);
    if res.is_err() && sink.created_root {
        drop(sink);
        // Best effort: the restore error is what the caller needs to see.
        let _ = match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(dest),
            Ok(_) => fs::remove_file(dest),
            Err(e) => Err(e),
        };
    }
    res
}

/// Creates the entries a NAR describes below one directory descriptor per open directory.
pub(crate) struct Restorer {
    root: PathBuf,
    /// The directory that holds `root` (opened following symlinks: `dest` is the caller's).
    parent: OwnedFd,
    /// The root's file name inside `parent`.
    root_name: PathBuf,
    /// Open directories of the tree, outermost first, with their path relative to the root.
    dirs: Vec<(PathBuf, OwnedFd)>,
    file: Option<(io::BufWriter<fs::File>, PathBuf)>,
    /// Whether `root` was created (and is this restore's to remove on failure).
    created_root: bool,
}

impl Restorer {
    pub(crate) fn new(dest: &Path) -> Result<Restorer, NarError> {
        let (parent_path, name) = match (dest.parent(), dest.file_name()) {
            (Some(p), Some(n)) => (if p.as_os_str().is_empty() { Path::new(".") } else { p }, n),
            _ => {
                return Err(NarError::Fs {
                    path: dest.to_path_buf(),
                    source: io::Error::other("a NAR is restored to a new path that names a file in a directory"),
                });
            }
        };
        let parent = rfs::open(parent_path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| NarError::Fs { path: parent_path.to_path_buf(), source: e.into() })?;
        Ok(Restorer {
            root: dest.to_path_buf(),
            parent,
            root_name: PathBuf::from(name),
            dirs: Vec::new(),
            file: None,
            created_root: false,
        })
    }

    fn target(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() { self.root.clone() } else { self.root.join(rel) }
    }

    /// The descriptor of the directory that holds `rel`, and `rel`'s name in it. Directories
    /// deeper than `rel`'s parent are closed: the parser visits the tree depth first.
    fn parent_of(&mut self, rel: &Path) -> Result<(BorrowedFd<'_>, PathBuf), NarError> {
        let Some(name) = rel.file_name() else {
            self.created_root = true;
            return Ok((self.parent.as_fd(), self.root_name.clone()));
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        while self.dirs.last().is_some_and(|(d, _)| d != parent_rel) {
            self.dirs.pop();
        }
        match self.dirs.last() {
            Some((_, fd)) => Ok((fd.as_fd(), PathBuf::from(name))),
            None => Err(NarError::Fs {
                path: self.target(rel),
                source: io::Error::other("its directory was not created by this restore"),
            }),
        }
    }
}

impl NarVisitor for Restorer {
    fn directory(&mut self, rel: &Path) -> Result<(), NarError> {
        let p = self.target(rel);
        let err = |e: rustix::io::Errno| NarError::Fs { path: p.clone(), source: e.into() };
        let (at, name) = self.parent_of(rel)?;
        rfs::mkdirat(at, &name, Mode::from_raw_mode(0o755)).map_err(err)?;
        let fd = rfs::openat(
            at,
            &name,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        self.dirs.push((rel.to_path_buf(), fd));
        Ok(())
    }

    fn file_start(&mut self, rel: &Path, executable: bool, _size: u64) -> Result<(), NarError> {
        let p = self.target(rel);
        let (at, name) = self.parent_of(rel)?;
        let mode = Mode::from_raw_mode(if executable { 0o755 } else { 0o644 });
        let fd = rfs::openat(
            at,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|e| NarError::Fs { path: p.clone(), source: e.into() })?;
        self.file = Some((io::BufWriter::with_capacity(CHUNK, fs::File::from(fd)), p));
        Ok(())
    }

    fn file_chunk(&mut self, data: &[u8]) -> Result<(), NarError> {
        if let Some((f, p)) = self.file.as_mut() {
            f.write_all(data).map_err(fs_err(p))?;
        }
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), NarError> {
        if let Some((mut f, p)) = self.file.take() {
            f.flush().map_err(fs_err(&p))?;
        }
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, target: &[u8]) -> Result<(), NarError> {
        let p = self.target(rel);
        let (at, name) = self.parent_of(rel)?;
        rfs::symlinkat(OsStr::from_bytes(target), at, &name).map_err(|e| NarError::Fs { path: p, source: e.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nar_of_file(contents: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        fs::write(&f, contents).expect("write");
        let mut out = Vec::new();
        dump_path(&f, &mut out).expect("dump");
        out
    }

    #[test]
    fn regular_file_matches_reference_bytes_and_hash() {
        let nar = nar_of_file(b"hi\n");
        assert_eq!(nar.len(), 120);
        let mut h = HashingWriter::new(io::sink());
        h.write_all(&nar).expect("hash");
        let (_, hash, size) = h.finish();
        assert_eq!(size, 120);
        assert_eq!(hash.to_nix32_string(), "sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h");
    }

    fn tok(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
        out.extend(std::iter::repeat_n(0u8, padding(s.len() as u64)));
    }

    fn dir_nar(names: &[&[u8]]) -> Vec<u8> {
        let mut n = Vec::new();
        for t in [MAGIC, b"(", b"type", b"directory"] {
            tok(&mut n, t);
        }
        for name in names {
            for t in [
                b"entry".as_slice(),
                b"(",
                b"name",
                name,
                b"node",
                b"(",
                b"type",
                b"symlink",
                b"target",
                b"x",
                b")",
                b")",
            ] {
                tok(&mut n, t);
            }
        }
        tok(&mut n, b")");
        n
    }

    #[test]
    fn rejects_bad_names_and_order() {
        assert!(validate(&mut dir_nar(&[b"a", b"b"]).as_slice()).is_ok());
        for names in [
            vec![b"b".as_slice(), b"a"],
            vec![b"a", b"a"],
            vec![b"."],
            vec![b".."],
            vec![b""],
            vec![b"a/b"],
            vec![b"a\0"],
        ] {
            let err = validate(&mut dir_nar(&names).as_slice()).expect_err("must fail");
            assert!(matches!(err, NarError::Format { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_truncation_padding_and_garbage() {
        let nar = nar_of_file(b"hello");
        for cut in [0, 7, 20, nar.len() - 1] {
            assert!(validate(&mut &nar[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_pad = nar.clone();
        // The contents "hello" sit at bytes 96..101 of 120; bytes 101..104 are padding.
        bad_pad[101] = 1;
        assert!(validate(&mut bad_pad.as_slice()).unwrap_err().to_string().contains("padding"));
        let mut bad_magic = nar.clone();
        bad_magic[8] = b'X';
        assert!(validate(&mut bad_magic.as_slice()).is_err());
        // A huge length prefix is rejected before any allocation.
        let mut huge = Vec::new();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(validate(&mut huge.as_slice()).is_err());
    }

    #[test]
    fn parse_reads_exactly_one_nar() {
        let mut nar = nar_of_file(b"abc");
        let len = nar.len() as u64;
        nar.extend_from_slice(b"TRAILER");
        let mut r = nar.as_slice();
        assert_eq!(validate(&mut r).expect("valid"), len);
        assert_eq!(r, b"TRAILER");
    }

    /// A 1 GiB file streams through in bounded chunks: the parser never holds it.
    #[test]
    fn one_gib_file_streams_in_chunks() {
        const SIZE: u64 = 1 << 30;
        let mut head = Vec::new();
        for t in [MAGIC, b"(", b"type", b"regular", b"contents"] {
            tok(&mut head, t);
        }
        head.extend_from_slice(&SIZE.to_le_bytes());
        let mut tail = Vec::new();
        tok(&mut tail, b")");
        let mut input = head.as_slice().chain(io::repeat(0x5a).take(SIZE)).chain(tail.as_slice());

        struct Count {
            max_chunk: usize,
            total: u64,
        }
        impl NarVisitor for Count {
            fn directory(&mut self, _: &Path) -> Result<(), NarError> {
                Ok(())
            }
            fn file_start(&mut self, _: &Path, _: bool, size: u64) -> Result<(), NarError> {
                assert_eq!(size, SIZE);
                Ok(())
            }
            fn file_chunk(&mut self, data: &[u8]) -> Result<(), NarError> {
                self.max_chunk = self.max_chunk.max(data.len());
                self.total += data.len() as u64;
                Ok(())
            }
            fn file_end(&mut self) -> Result<(), NarError> {
                Ok(())
            }
            fn symlink(&mut self, _: &Path, _: &[u8]) -> Result<(), NarError> {
                Ok(())
            }
        }
        let mut count = Count { max_chunk: 0, total: 0 };
        let size = parse(&mut input, &mut count).expect("parse");
        assert_eq!(count.total, SIZE);
        assert!(count.max_chunk <= CHUNK);
        assert_eq!(size, head.len() as u64 + SIZE + tail.len() as u64);
    }

    /// A NAR put together token by token, as a malicious builder would send it.
    fn crafted(tokens: &[&[u8]]) -> Vec<u8> {
        let mut n = Vec::new();
        tok(&mut n, MAGIC);
        for t in tokens {
            tok(&mut n, t);
        }
        n
    }

    /// A directory NAR with one entry per (name, node tokens).
    fn crafted_dir(entries: &[(&[u8], &[&[u8]])]) -> Vec<u8> {
        let mut t: Vec<&[u8]> = vec![b"(", b"type", b"directory"];
        for (name, node) in entries {
            t.extend_from_slice(&[b"entry", b"(", b"name", name, b"node"]);
            t.extend_from_slice(node);
            t.push(b")");
        }
        t.push(b")");
        crafted(&t)
    }

    const FILE_NODE: &[&[u8]] = &[b"(", b"type", b"regular", b"contents", b"x", b")"];

    /// Everything below `dir`, as sorted relative paths.
    fn tree(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).map(|r| r.display().to_string()).unwrap_or_default());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn malicious_nars_are_refused_and_write_nothing_outside() {
        let link: &[&[u8]] = &[b"(", b"type", b"symlink", b"target", b"/tmp", b")"];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dot-dot", crafted_dir(&[(b"..", FILE_NODE)])),
            ("dot", crafted_dir(&[(b".", FILE_NODE)])),
            ("slash", crafted_dir(&[(b"/", FILE_NODE)])),
            ("escaping path", crafted_dir(&[(b"../escaped", FILE_NODE)])),
            ("absolute path", crafted_dir(&[(b"/tmp/escaped", FILE_NODE)])),
            ("inner slash", crafted_dir(&[(b"a/b", FILE_NODE)])),
            ("empty", crafted_dir(&[(b"", FILE_NODE)])),
            ("nul", crafted_dir(&[(b"a\0b", FILE_NODE)])),
            ("duplicate", crafted_dir(&[(b"a", FILE_NODE), (b"a", FILE_NODE)])),
            ("unsorted", crafted_dir(&[(b"b", FILE_NODE), (b"a", FILE_NODE)])),
            // A symlink `a` and then a directory `a` whose file would land behind the link.
            ("link then dir", crafted_dir(&[(b"a", link), (b"a", &[b"(", b"type", b"directory", b")"])])),
        ];
        for (what, nar) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let dest = dir.path().join("out");
            let err = restore(&mut nar.as_slice(), &dest).expect_err(what);
            assert!(matches!(err, NarError::Format { .. }), "{what}: {err}");
            // Nothing outside, and what was restored before the bad entry is gone again.
            assert!(tree(dir.path()).is_empty(), "{what}: {:?}", tree(dir.path()));
        }
    }

    #[test]
    fn restore_never_follows_a_symlink_it_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let dest = dir.path().join("out");
        let mut r = Restorer::new(&dest).expect("restorer");
        r.directory(Path::new("")).expect("root");
        r.symlink(Path::new("a"), outside.as_os_str().as_bytes()).expect("symlink");
        // The parser never produces these calls (names are unique and sorted); the restorer
        // refuses them anyway instead of writing through the link.
        assert!(r.directory(Path::new("a")).is_err(), "mkdir over the symlink");
        assert!(r.file_start(Path::new("a/x"), false, 1).is_err(), "a file behind the symlink");
        assert!(r.symlink(Path::new("a/y"), b"z").is_err(), "a link behind the symlink");
        assert!(r.file_start(Path::new("a"), false, 1).is_err(), "a file replacing the symlink");
        assert!(tree(&outside).is_empty(), "{:?}", tree(&outside));
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_mid_restore_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let dest = dir.path().join("out");
        let mut r = Restorer::new(&dest).expect("restorer");
        r.directory(Path::new("")).expect("root");
        r.directory(Path::new("d")).expect("d");
        // Another process replaces `d` by a symlink to `outside` while the restore runs.
        fs::rename(dest.join("d"), dir.path().join("moved")).expect("rename");
        std::os::unix::fs::symlink(&outside, dest.join("d")).expect("symlink");
        r.file_start(Path::new("d/f"), false, 1).expect("file in the directory already open");
        r.file_chunk(b"x").expect("chunk");
        r.file_end().expect("end");
        assert!(tree(&outside).is_empty(), "{:?}", tree(&outside));
        assert_eq!(fs::read(dir.path().join("moved/f")).expect("moved/f"), b"x");
    }

    #[test]
    fn restore_handles_a_tree_deeper_than_path_max() {
        let name = [b'n'; 200];
        // 30 levels of 200-byte names: 6000 bytes of path, more than PATH_MAX (4096).
        let mut t: Vec<&[u8]> = Vec::new();
        for _ in 0..30 {
            t.extend_from_slice(&[b"(", b"type", b"directory", b"entry", b"(", b"name", &name, b"node"]);
        }
        t.extend_from_slice(FILE_NODE);
        for _ in 0..30 {
            t.extend_from_slice(&[b")", b")"]);
        }
        let nar = crafted(&t);
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out");
        assert_eq!(restore(&mut nar.as_slice(), &dest).expect("restore"), nar.len() as u64);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_mutated_nars(pos in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut nar = dir_nar(&[b"a", b"bc"]);
            let p = pos % nar.len();
            nar[p] = byte;
            let _ = validate(&mut nar.as_slice());
            let dir = tempfile::tempdir().expect("tempdir");
            let _ = restore(&mut nar.as_slice(), &dir.path().join("out"));
        }
    }
}
