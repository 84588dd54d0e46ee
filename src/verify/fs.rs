//! Filesystems inside disk images, read without mounting and without root: FAT (boot
//! partitions) with the `fatfs` crate and ext2/3/4 (root partitions) with `ext4-view`, both over
//! a [`Window`] of the image. The walk is bounded (depth, entries) so that directory loops and
//! absurd sizes in a corrupt filesystem end in an error, and the crates' own panics on corrupt
//! input are caught and reported as errors.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::disk::Content;
use super::source::{Source, Window};

/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 32;
/// Most directory entries walked in one filesystem.
const MAX_ENTRIES: usize = 100_000;

/// What a directory entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File {
        size: u64,
    },
    Symlink,
    /// Device, FIFO or socket.
    Special,
}

/// One entry of the walk: its absolute path inside the filesystem (`/extlinux/extlinux.conf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

/// An open filesystem.
pub(crate) enum Fs {
    Fat(Box<fatfs::FileSystem<FatIo>>),
    Ext4(ext4_view::Ext4),
}

/// Runs a crate's reader, turning its panic on corrupt data into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("{what}: corrupt filesystem (the reader gave up)")))
}

impl Fs {
    /// Opens the filesystem in `w`.
    pub(crate) fn open(w: Window, kind: Content) -> Result<Fs, String> {
        match kind {
            Content::Fat => guarded("FAT", || {
                let io = FatIo { w, pos: 0 };
                fatfs::FileSystem::new(io, fatfs::FsOptions::new())
                    .map(|fs| Fs::Fat(Box::new(fs)))
                    .map_err(|e| format!("not a readable FAT filesystem: {e}"))
            }),
            Content::Ext4 => guarded("ext4", || {
                ext4_view::Ext4::load(Box::new(ExtIo(w)))
                    .map(Fs::Ext4)
                    .map_err(|e| format!("not a readable ext2/3/4 filesystem: {e}"))
            }),
            Content::Mbr | Content::Gpt => Err("a partition table is not a filesystem".into()),
        }
    }

    /// Every entry below the root, in path order; an error ends the walk (with what was found).
    pub(crate) fn entries(&self) -> (Vec<Entry>, Option<String>) {
        let mut out = Vec::new();
        let res = guarded("walk", || match self {
            Fs::Fat(fs) => walk_fat(fs, &mut out),
            Fs::Ext4(fs) => walk_ext4(fs, &mut out),
        });
        out.sort_by(|a, b| a.path.cmp(&b.path));
        (out, res.err())
    }

    /// The first `max` bytes (or fewer, at the end) of the file at `path`.
    pub(crate) fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, String> {
        guarded(path, || {
            let mut data = Vec::new();
            match self {
                Fs::Fat(fs) => {
                    let f = fs.root_dir().open_file(path.trim_start_matches('/')).map_err(|e| e.to_string())?;
                    f.take(max).read_to_end(&mut data).map_err(|e| e.to_string())?;
                }
                Fs::Ext4(fs) => {
                    let f = fs.open(path).map_err(|e| e.to_string())?;
                    f.take(max).read_to_end(&mut data).map_err(|e| e.to_string())?;
                }
            }
            Ok(data)
        })
    }
}

fn walk_fat(fs: &fatfs::FileSystem<FatIo>, out: &mut Vec<Entry>) -> Result<(), String> {
    let mut stack = vec![(String::new(), fs.root_dir(), 0usize)];
    let mut seen = 0usize;
    while let Some((dir_path, dir, depth)) = stack.pop() {
        let mut names = HashSet::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| format!("reading directory {dir_path}/: {e}"))?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} directory entries: a loop or a corrupt FAT"));
            }
            let path = format!("{dir_path}/{name}");
            if !names.insert(name) {
                return Err(format!(
                    "{path} is listed twice in its directory: a loop in the FAT or a corrupt directory"
                ));
            }
            if entry.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(format!("{path}: directories nested deeper than {MAX_DEPTH}"));
                }
                stack.push((path, entry.to_dir(), depth + 1));
            } else {
                out.push(Entry { path, kind: EntryKind::File { size: entry.len() } });
            }
        }
    }
    Ok(())
}

fn walk_ext4(fs: &ext4_view::Ext4, out: &mut Vec<Entry>) -> Result<(), String> {
    let mut stack = vec![("/".to_string(), 0usize)];
    let mut seen = 0usize;
    while let Some((dir_path, depth)) = stack.pop() {
        let rd = fs.read_dir(dir_path.as_str()).map_err(|e| format!("reading directory {dir_path}: {e}"))?;
        let mut names = HashSet::new();
        for entry in rd {
            let entry = entry.map_err(|e| format!("reading directory {dir_path}: {e}"))?;
            let name = entry.file_name();
            let name = name.as_str().map_err(|_| format!("{dir_path}: a file name that is not UTF-8"))?;
            if name == "." || name == ".." {
                continue;
            }
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} directory entries: a loop or a corrupt filesystem"));
            }
            let path = if dir_path == "/" { format!("/{name}") } else { format!("{dir_path}/{name}") };
            if !names.insert(name.to_string()) {
                return Err(format!("{path} is listed twice in its directory: a corrupt directory"));
            }
            let ty = entry.file_type().map_err(|e| format!("{path}: {e}"))?;
            if ty.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(format!("{path}: directories nested deeper than {MAX_DEPTH}"));
                }
                stack.push((path, depth + 1));
            } else if ty.is_regular_file() {
                let size = entry.metadata().map_err(|e| format!("{path}: {e}"))?.len();
                out.push(Entry { path, kind: EntryKind::File { size } });
            } else if ty.is_symlink() {
                out.push(Entry { path, kind: EntryKind::Symlink });
            } else {
                out.push(Entry { path, kind: EntryKind::Special });
            }
        }
    }
    Ok(())
}

/// `fatfs` wants read, write and seek: reads come from the window, writes are refused.
pub(crate) struct FatIo {
    w: Window,
    pos: u64,
}

impl Read for FatIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.w.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for FatIo {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "verify reads images, it never writes them"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FatIo {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let bad = || io::Error::new(io::ErrorKind::InvalidInput, "seek outside the partition");
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.w.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(bad)?;
        Ok(self.pos)
    }
}

/// `ext4-view` reads exact ranges; short reads are errors.
struct ExtIo(Window);

impl ext4_view::Ext4Read for ExtIo {
    fn read(&mut self, start: u64, dst: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let n = self.0.read_at(start, dst)?;
        if n < dst.len() {
            return Err(format!("read of {} bytes at {start} past the end of the partition", dst.len()).into());
        }
        Ok(())
    }
}
