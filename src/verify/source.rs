//! Random-access byte sources the header readers work on: an open file (positioned reads, so
//! only the bytes asked for are read) or a buffer (an archive member already in memory), and
//! [`Window`], an owned view of a byte range of either (a partition of a disk image), which the
//! filesystem readers keep.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Something whose bytes can be read at any offset.
pub(crate) trait Source: Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// True when the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (short at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Reads exactly `len` bytes at `offset`, or fails with a message naming what was cut off.
    fn bytes_at(&self, offset: u64, len: usize, what: &str) -> Result<Vec<u8>, String> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > self.len()) {
            return Err(format!(
                "truncated: {what} needs bytes {offset}..{} but the file has {} bytes",
                offset.saturating_add(len as u64),
                self.len()
            ));
        }
        let mut buf = vec![0u8; len];
        let got = self.read_at(offset, &mut buf).map_err(|e| format!("reading {what}: {e}"))?;
        if got < len {
            return Err(format!("truncated: {what} needs {len} bytes at offset {offset}, only {got} could be read"));
        }
        Ok(buf)
    }

    /// An owned view of all of the source (for readers that keep their input).
    fn window(&self) -> Result<Window, String>;
}

/// An open file and its length at the time it was opened.
pub(crate) struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub(crate) fn new(file: File, len: u64) -> Self {
        FileSource { file, len }
    }

    /// The open file, e.g. to read it again as a stream.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        pread(&self.file, offset, buf)
    }

    fn window(&self) -> Result<Window, String> {
        let file = self.file.try_clone().map_err(|e| format!("cannot reopen: {e}"))?;
        Ok(Window { data: Arc::new(Owned::File(file)), base: 0, len: self.len })
    }
}

/// Positioned read of up to `buf.len()` bytes; short only at the end of the file.
fn pread(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

enum Owned {
    File(File),
    Bytes(Vec<u8>),
}

/// An owned, cheaply cloned view of bytes `base..base + len` of a file or buffer.
#[derive(Clone)]
pub(crate) struct Window {
    data: Arc<Owned>,
    base: u64,
    len: u64,
}

impl Window {
    /// The bytes `offset..offset + len` of this window; `None` when they lie outside it.
    pub(crate) fn sub(&self, offset: u64, len: u64) -> Option<Window> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then(|| Window { data: self.data.clone(), base: self.base + offset, len })
    }
}

impl Source for Window {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = usize::try_from(self.len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        let at = self.base + offset;
        match &*self.data {
            Owned::File(f) => pread(f, at, &mut buf[..n]),
            Owned::Bytes(b) => b.as_slice().read_at(at, &mut buf[..n]),
        }
    }

    fn window(&self) -> Result<Window, String> {
        Ok(self.clone())
    }
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= <[u8]>::len(self) {
            return Ok(0);
        }
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&(*self)[start..start + n]);
        Ok(n)
    }

    fn window(&self) -> Result<Window, String> {
        Ok(Window { data: Arc::new(Owned::Bytes(self.to_vec())), base: 0, len: <[u8]>::len(self) as u64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_bounded() {
        let data: &[u8] = b"abcdef";
        let mut buf = [0u8; 4];
        assert_eq!(data.read_at(4, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(data.read_at(u64::MAX, &mut buf).unwrap(), 0);
        assert!(data.bytes_at(3, 4, "x").unwrap_err().contains("truncated"));
        assert!(data.bytes_at(u64::MAX, 4, "x").is_err());
        assert_eq!(data.bytes_at(1, 2, "x").unwrap(), b"bc");
    }
}
