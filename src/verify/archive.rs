//! Archive readers that hand each regular member to a callback: cpio "newc" (070701/070702,
//! several archives back to back as in an initramfs, gzip-compressed segments included) and
//! tar (ustar/GNU, long names, PAX paths). Both read the stream once, front to back.

use std::io::Read;

use std::io::{BufRead, BufReader};

use flate2::bufread::GzDecoder;

/// Archive formats recognised from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Cpio,
    Tar,
    Gzip,
    Xz,
}

/// Bytes needed to recognise any format (the tar magic sits at 257).
pub(crate) const HEAD: usize = 512;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// Largest xz-compressed archive decompressed (xz is decoded into memory).
const MAX_XZ_OUTPUT: u64 = 2 << 30;
/// Longest member name accepted.
const MAX_NAME: usize = 4096;
/// How many gzip segments deep an archive may nest.
const MAX_NESTING: u32 = 4;

/// Recognises an archive from its first bytes.
pub(crate) fn detect(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"070701") || head.starts_with(b"070702") {
        Some(Format::Cpio)
    } else if head.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else if head.starts_with(&GZIP_MAGIC) {
        Some(Format::Gzip)
    } else if head.starts_with(&XZ_MAGIC) {
        Some(Format::Xz)
    } else {
        None
    }
}

/// Largest member read into memory for inspection.
pub(crate) const MAX_MEMBER: u64 = 256 << 20;

/// A regular member's content as handed to the callback.
pub(crate) enum Member {
    Data(Vec<u8>),
    /// Larger than [`MAX_MEMBER`]: not read, only its size is known.
    TooLarge(u64),
}

/// The callback: a member's name inside the archive and its content.
pub(crate) type Visit<'a> = dyn FnMut(&str, Member) + 'a;

/// A reader with push-back, counting its position (cpio alignment is relative to the stream).
struct Stream<'a> {
    inner: &'a mut dyn Read,
    back: Vec<u8>,
    pos: u64,
}

impl<'a> Stream<'a> {
    fn new(inner: &'a mut dyn Read) -> Self {
        Stream { inner, back: Vec::new(), pos: 0 }
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let mut done = 0;
        let from_back = self.back.len().min(buf.len());
        if from_back > 0 {
            buf[..from_back].copy_from_slice(&self.back[..from_back]);
            self.back.drain(..from_back);
            done = from_back;
        }
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the archive: {e}")),
            }
        }
        self.pos += done as u64;
        Ok(done)
    }

    fn exact(&mut self, len: usize, what: &str) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len];
        let got = self.fill(&mut buf)?;
        if got < len {
            return Err(format!(
                "truncated archive: {what} needs {len} bytes at offset {}, the stream ends after {got}",
                self.pos - got as u64
            ));
        }
        Ok(buf)
    }

    /// Reads a member's data without trusting its size for the allocation.
    fn data(&mut self, len: u64, what: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = self.fill(&mut chunk[..want])?;
            if got == 0 {
                return Err(format!(
                    "truncated archive: {what} declares {len} bytes, the stream ends after {}",
                    len - left
                ));
            }
            out.extend_from_slice(&chunk[..got]);
            left -= got as u64;
        }
        Ok(out)
    }

    /// A member's content, or only its size when it is too large to hold.
    fn member(&mut self, len: u64, what: &str) -> Result<Member, String> {
        if len > MAX_MEMBER {
            self.skip(len, what)?;
            return Ok(Member::TooLarge(len));
        }
        self.data(len, what).map(Member::Data)
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        let mut left = len;
        while left > 0 {
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = self.fill(&mut chunk[..want])?;
            if got == 0 {
                return Err(format!("truncated archive: {what} is cut off"));
            }
            left -= got as u64;
        }
        Ok(())
    }

    fn unread(&mut self, bytes: &[u8]) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.back);
        self.back = v;
        self.pos -= bytes.len() as u64;
    }

    fn align(&mut self, to: u64) -> Result<(), String> {
        let pad = (to - self.pos % to) % to;
        // Padding may be missing at the very end of a stream.
        let mut buf = vec![0u8; pad as usize];
        self.fill(&mut buf)?;
        Ok(())
    }
}

/// Reads every member of the archive in `reader`, calling `visit` for each regular file.
/// Returns the number of members visited.
pub(crate) fn for_each_member(reader: &mut dyn Read, visit: &mut Visit<'_>) -> Result<usize, String> {
    read_any(reader, visit, 0)
}

fn read_any(reader: &mut dyn Read, visit: &mut Visit<'_>, depth: u32) -> Result<usize, String> {
    let mut s = Stream::new(reader);
    let mut head = vec![0u8; HEAD];
    let n = s.fill(&mut head)?;
    head.truncate(n);
    s.unread(&head);
    match detect(&head) {
        Some(Format::Cpio) => read_cpio(&mut s, visit, depth),
        Some(Format::Tar) => read_tar(&mut s, visit),
        Some(Format::Gzip) => read_gzip(&mut s, visit, depth),
        Some(Format::Xz) => read_xz(&mut s, visit, depth),
        None => Err("not a cpio (newc) or tar archive".into()),
    }
}

/// Reads gzip members one after the other; between and after them only zero padding may
/// follow (as in an initramfs padded to a block size).
fn read_gzip(s: &mut Stream<'_>, visit: &mut Visit<'_>, depth: u32) -> Result<usize, String> {
    if depth >= MAX_NESTING {
        return Err("archive segments are nested too deeply".into());
    }
    let gz_err = |e: std::io::Error| format!("in gzip data: {e}");
    let mut buffered = BufReader::new(StreamRead(s));
    let mut members = 0;
    loop {
        {
            let mut gz = GzDecoder::new(&mut buffered);
            members += read_any(&mut gz, visit, depth + 1).map_err(|e| format!("in gzip data: {e}"))?;
            // Read the member to its end so that its CRC and length are checked.
            std::io::copy(&mut gz, &mut std::io::sink()).map_err(gz_err)?;
        }
        loop {
            let buf = buffered.fill_buf().map_err(gz_err)?;
            if buf.is_empty() {
                return Ok(members);
            }
            let zeros = buf.iter().take_while(|&&b| b == 0).count();
            if zeros == 0 {
                break;
            }
            buffered.consume(zeros);
        }
        if buffered.fill_buf().map_err(gz_err)?.first() != Some(&GZIP_MAGIC[0]) {
            return Err("unexpected data after the end of the gzip stream".into());
        }
    }
}

fn read_xz(s: &mut Stream<'_>, visit: &mut Visit<'_>, depth: u32) -> Result<usize, String> {
    if depth >= MAX_NESTING {
        return Err("archive segments are nested too deeply".into());
    }
    let data = xz_to_vec(&mut BufReader::new(StreamRead(s)), MAX_XZ_OUTPUT)?;
    read_any(&mut data.as_slice(), visit, depth + 1).map_err(|e| format!("in xz data: {e}"))
}

/// Decompresses a whole xz stream, refusing output beyond `limit` bytes.
pub(crate) fn xz_to_vec(input: &mut dyn BufRead, limit: u64) -> Result<Vec<u8>, String> {
    let mut packed = Vec::new();
    input.take(limit).read_to_end(&mut packed).map_err(|e| format!("reading xz data: {e}"))?;
    // Stream padding (zero bytes) may follow; an xz stream itself ends with the magic "YZ".
    let end = packed.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut out = Limited { buf: Vec::new(), limit };
    // lzma-rs 0.3 can overflow u32 arithmetic on a corrupt stream footer (a panic when
    // overflow checks are on, see fuzz crash regression test): corrupt data, not a crash.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lzma_rs::xz_decompress(&mut &packed[..end], &mut out)
    }));
    match decoded {
        Ok(Ok(())) => Ok(out.buf),
        Ok(Err(e)) => Err(format!("in xz data: {e}")),
        Err(_) => Err("in xz data: corrupt stream (the xz decoder gave up)".into()),
    }
}

/// A `Write` into memory that fails past a size limit (against decompression bombs).
struct Limited {
    buf: Vec<u8>,
    limit: u64,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.limit {
            return Err(std::io::Error::other(format!("decompressed data exceeds {} bytes", self.limit)));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Adapts a `Stream` back to `Read` for the decompressor.
struct StreamRead<'s, 'a>(&'s mut Stream<'a>);

impl Read for StreamRead<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.fill(buf).map_err(std::io::Error::other)
    }
}

fn hex_field(h: &[u8], i: usize) -> Result<u64, String> {
    let at = 6 + 8 * i;
    let s = std::str::from_utf8(&h[at..at + 8]).map_err(|_| "non-ASCII cpio header field")?;
    u64::from_str_radix(s, 16).map_err(|_| format!("bad cpio header field `{s}`"))
}

fn read_cpio(s: &mut Stream<'_>, visit: &mut Visit<'_>, depth: u32) -> Result<usize, String> {
    let mut members = 0;
    loop {
        let h = s.exact(110, "a cpio header")?;
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(format!(
                "bad cpio magic `{}` at offset {} (only newc archives are read)",
                String::from_utf8_lossy(&h[..6]),
                s.pos - 110
            ));
        }
        let mode = hex_field(&h, 1)?;
        let size = hex_field(&h, 6)?;
        let namesize = hex_field(&h, 11)? as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(format!("cpio name size {namesize} is out of range"));
        }
        let name = s.exact(namesize, "a cpio member name")?;
        let name = String::from_utf8_lossy(&name[..namesize - 1]).into_owned();
        s.align(4)?;
        if name == "TRAILER!!!" {
            break;
        }
        if mode & 0o170000 == 0o100000 && size > 0 {
            visit(&name, s.member(size, &format!("cpio member {name}"))?);
            members += 1;
        } else {
            s.skip(size, &format!("cpio member {name}"))?;
        }
        s.align(4)?;
    }
    // An initramfs may hold more archives after the trailer, zero-padded, some compressed.
    loop {
        let mut b = [0u8; 1];
        if s.fill(&mut b)? == 0 {
            return Ok(members);
        }
        if b[0] == 0 {
            continue;
        }
        s.unread(&b);
        let mut head = [0u8; 6];
        let n = s.fill(&mut head)?;
        s.unread(&head[..n]);
        match detect(&head[..n]) {
            Some(Format::Cpio) => {
                members += read_cpio_from(s, visit, depth)?;
                return Ok(members);
            }
            Some(Format::Gzip) => {
                members += read_gzip(s, visit, depth)?;
                return Ok(members);
            }
            _ => {
                return Err(format!("unexpected data after the cpio trailer at offset {}", s.pos));
            }
        }
    }
}

/// A following cpio archive starts its own 4-byte alignment where it begins.
fn read_cpio_from(s: &mut Stream<'_>, visit: &mut Visit<'_>, depth: u32) -> Result<usize, String> {
    let mut inner = StreamRead(s);
    let mut next = Stream::new(&mut inner);
    read_cpio(&mut next, visit, depth)
}

fn tar_number(field: &[u8]) -> Result<u64, String> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        // GNU base-256 for sizes beyond the octal range.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256).and_then(|v| v.checked_add(u64::from(b))).ok_or("tar size field overflows")?;
        }
        return Ok(v);
    }
    let s: String = field.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| format!("bad tar number field `{s}`"))
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn read_tar(s: &mut Stream<'_>, visit: &mut Visit<'_>) -> Result<usize, String> {
    let mut members = 0;
    let mut long_name: Option<String> = None;
    loop {
        let h = s.exact(512, "a tar header")?;
        if h.iter().all(|&b| b == 0) {
            return Ok(members);
        }
        let stored = tar_number(&h[148..156])?;
        let sum: u64 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
        if sum != stored {
            return Err(format!("bad tar header checksum at offset {} (stored {stored}, computed {sum})", s.pos - 512));
        }
        let size = tar_number(&h[124..136])?;
        let kind = h[156];
        let mut name = cstr(&h[..100]);
        let prefix = cstr(&h[345..500]);
        if h.get(257..262) == Some(b"ustar") && !prefix.is_empty() && h[263] == b'0' {
            name = format!("{prefix}/{name}");
        }
        if let Some(n) = long_name.take() {
            name = n;
        }
        let padded = size
            .div_ceil(512)
            .checked_mul(512)
            .ok_or_else(|| format!("tar entry {name} declares an impossible size {size}"))?;
        match kind {
            b'L' | b'x' => {
                if size > MAX_NAME as u64 * 4 {
                    return Err(format!("tar extended header of {size} bytes is too large"));
                }
                let data = s.exact(size as usize, "a tar extended header")?;
                s.skip(padded - size, "tar padding")?;
                long_name = if kind == b'L' { Some(cstr(&data)) } else { pax_path(&data) };
            }
            b'0' | 0 | b'7' => {
                let member = s.member(size, &format!("tar member {name}"))?;
                s.skip(padded - size, "tar padding")?;
                if size > 0 {
                    visit(&name, member);
                    members += 1;
                }
            }
            _ => s.skip(padded, &format!("tar entry {name}"))?,
        }
    }
}

/// The `path` record of a PAX extended header (`LEN path=VALUE\n` records).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|line| {
        let (_, kv) = line.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut add = |name: &str, mode: u32, data: &[u8]| {
            let h = format!(
                "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                1,
                mode,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            );
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            out.extend_from_slice(data);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
        };
        for (n, m, d) in entries {
            add(n, *m, d);
        }
        add("TRAILER!!!", 0, b"");
        out
    }

    fn collect(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut got = Vec::new();
        let mut cursor = bytes;
        for_each_member(&mut cursor, &mut |n: &str, m: Member| {
            if let Member::Data(d) = m {
                got.push((n.to_string(), d))
            }
        })?;
        Ok(got)
    }

    #[test]
    fn cpio_members_and_concatenation() {
        let mut a = newc(&[("bin", 0o040755, b""), ("bin/x", 0o100755, b"hello")]);
        a.extend_from_slice(&[0u8; 7]);
        a.extend_from_slice(&newc(&[("lib/y", 0o100644, b"abc")]));
        let got = collect(&a).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("bin/x".to_string(), b"hello".to_vec()));
        assert_eq!(got[1].0, "lib/y");
    }

    #[test]
    fn truncated_cpio_is_an_error() {
        let a = newc(&[("bin/x", 0o100755, &[7u8; 100])]);
        let err = collect(&a[..150]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let mut lying = newc(&[("bin/x", 0o100755, b"hi")]);
        lying[54..62].copy_from_slice(b"7fffffff");
        assert!(collect(&lying).unwrap_err().contains("truncated"));
    }

    #[test]
    fn tar_size_near_u64_max_is_an_error() {
        let mut h = [0u8; 512];
        h[..5].copy_from_slice(b"huge\0");
        h[124] = 0x80;
        for b in &mut h[128..136] {
            *b = 0xff;
        }
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let err = collect(&h).unwrap_err();
        assert!(err.contains("impossible size"), "{err}");
    }

    #[test]
    fn tar_numbers() {
        assert_eq!(tar_number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(tar_number(b"\x80\0\0\0\0\0\0\x01\0\0\0\0").unwrap(), 1 << 32);
        assert!(tar_number(b"zz\0").is_err());
    }
}
