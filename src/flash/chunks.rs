//! Cutting a block-device image into chunks for the compressed path: each chunk is compressed on
//! its own (gzip, for U-Boot's `gzwrite`), sent as nothing when it is all zeros, or raw when
//! compressing does not pay (or the board has no `gzwrite`). Pure logic: the console work is in
//! `plan`.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::crc::crc32;

/// Block size of the devices written (`virtio`, `mmc`): chunk offsets are multiples of it.
pub const SECTOR: u64 = 512;

/// How a chunk crosses the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// All zeros: nothing is sent; the board zeroes RAM and writes that.
    Zero,
    /// A gzip member that `gzwrite` inflates onto the device.
    Gzip(Vec<u8>),
    /// The bytes themselves (`loady`, then a block write).
    Raw,
}

/// One piece of the image with its place and proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    /// Byte offset within the image.
    pub offset: u64,
    pub len: u64,
    /// CRC-32 of the chunk's bytes: what the board's read-back must show.
    pub crc32: u32,
    pub payload: Payload,
}

impl Chunk {
    /// The chunk's bytes within the image.
    pub fn bytes<'d>(&self, image: &'d [u8]) -> &'d [u8] {
        &image[self.offset as usize..(self.offset + self.len) as usize]
    }

    /// Bytes this chunk puts on the line (protocol framing aside).
    pub fn sent_len(&self) -> u64 {
        match &self.payload {
            Payload::Zero => 0,
            Payload::Gzip(g) => g.len() as u64,
            Payload::Raw => self.len,
        }
    }
}

/// Cuts `image` into chunks of `chunk` bytes (rounded down to whole sectors, at least one).
/// With `gzip`, each non-zero chunk is compressed and kept compressed when that is smaller.
/// With `tail_apart` (block devices), a tail shorter than a sector is its own raw chunk (a block
/// write of a compressed chunk would overwrite the device's bytes after the image); without
/// (SPI NOR, where `sf update` takes any length but wants erase-sector-aligned offsets), the
/// last chunk simply ends with the image.
pub fn cut(image: &[u8], chunk: u64, gzip: bool, tail_apart: bool) -> Vec<Chunk> {
    let chunk = (chunk / SECTOR).max(1) * SECTOR;
    let aligned = if tail_apart { image.len() as u64 / SECTOR * SECTOR } else { image.len() as u64 };
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < image.len() as u64 {
        let len = if offset < aligned { chunk.min(aligned - offset) } else { image.len() as u64 - offset };
        let bytes = &image[offset as usize..(offset + len) as usize];
        let payload = if tail_apart && !len.is_multiple_of(SECTOR) {
            Payload::Raw
        } else if bytes.iter().all(|&b| b == 0) {
            Payload::Zero
        } else if gzip {
            match compress(bytes) {
                Some(g) if (g.len() as u64) < len => Payload::Gzip(g),
                _ => Payload::Raw,
            }
        } else {
            Payload::Raw
        };
        out.push(Chunk { index: out.len(), offset, len, crc32: crc32(bytes), payload });
        offset += len;
    }
    out
}

/// Where one chunk of a cut lies: its number (1-based) of how many, and its byte range within
/// the image. For messages about a chunk before (or without) cutting the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub number: usize,
    pub count: usize,
    pub offset: u64,
    pub end: u64,
}

/// The chunk of `cut(image, chunk, _, tail_apart)` that holds byte `at` of an image of `len`
/// bytes (`at` < `len`), computed from the sizes alone.
pub fn span_at(len: u64, chunk: u64, tail_apart: bool, at: u64) -> Span {
    let chunk = (chunk / SECTOR).max(1) * SECTOR;
    let aligned = if tail_apart { len / SECTOR * SECTOR } else { len };
    let full = aligned.div_ceil(chunk);
    let count = (full + u64::from(aligned < len)) as usize;
    if at < aligned {
        let i = at / chunk;
        Span { number: i as usize + 1, count, offset: i * chunk, end: (i * chunk + chunk).min(aligned) }
    } else {
        Span { number: count, count, offset: aligned, end: len }
    }
}

fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::best());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// A `gzwrite` write-buffer size for a chunk of `len` output bytes: a multiple of the sector
/// size that does **not** divide `len`. U-Boot 2023.01's gzwrite, when the output is an exact
/// multiple of its buffer, asks inflate once more, gets nothing and issues a zero-block write,
/// which never returns on virtio.
pub fn wbuf_for(len: u64) -> u64 {
    // Odd multiples of 512 just under 256 KiB: large writes, and few of them divide anything.
    (1..=511u64).rev().step_by(2).map(|k| k * SECTOR).find(|w| !len.is_multiple_of(*w)).unwrap_or(3 * SECTOR)
}

/// A byte to clear the read-back RAM with that the chunk cannot consist of: after a read that
/// silently did not happen, the CRC of the cleared RAM cannot match.
pub fn fill_byte(bytes: &[u8]) -> u8 {
    match bytes.first() {
        Some(&b) if bytes.iter().all(|&x| x == b) => !b,
        _ => 0xA5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn zero_chunks_send_nothing_text_compresses_noise_goes_raw_and_the_tail_is_raw() {
        let mut img = vec![0u8; 4096];
        img.extend(b"hello hello hello ".repeat(2048 / 18 + 1).into_iter().take(2048));
        img.extend(noise(2048));
        img.extend([7u8; 100]);
        let c = cut(&img, 2048, true, true);
        let kinds: Vec<&str> = c
            .iter()
            .map(|c| match c.payload {
                Payload::Zero => "zero",
                Payload::Gzip(_) => "gzip",
                Payload::Raw => "raw",
            })
            .collect();
        assert_eq!(kinds, ["zero", "zero", "gzip", "raw", "raw"]);
        assert_eq!(c[4].offset, 8192);
        assert_eq!(c[4].len, 100);
        assert_eq!(c.iter().map(|c| c.len).sum::<u64>(), img.len() as u64);
        assert_eq!(c[2].crc32, crc32(&img[4096..6144]));
        assert_eq!(c[0].sent_len(), 0);
        assert!(c[2].sent_len() < 200, "{}", c[2].sent_len());
        // Without gzip every non-zero chunk is raw.
        assert!(matches!(cut(&img, 2048, false, true)[2].payload, Payload::Raw));
        // SPI NOR: the short last chunk starts at a chunk boundary and may be compressed.
        let nor = cut(&img, 2048, true, false);
        assert_eq!(nor.len(), 5);
        assert_eq!((nor[4].offset, nor[4].len), (8192, 100));
        assert!(matches!(nor[4].payload, Payload::Gzip(_)), "{:?}", nor[4].payload);
    }

    #[test]
    fn span_at_agrees_with_cut() {
        for (len, chunk, tail_apart) in
            [(8292u64, 2048u64, true), (8292, 2048, false), (8192, 2048, true), (700, 4096, true)]
        {
            let img = vec![1u8; len as usize];
            let cuts = cut(&img, chunk, false, tail_apart);
            for at in [0, 1, 2047, 2048, 5000, 8191, len - 1] {
                if at >= len {
                    continue;
                }
                let s = span_at(len, chunk, tail_apart, at);
                let c = cuts.iter().find(|c| c.offset <= at && at < c.offset + c.len).unwrap();
                assert_eq!(
                    (s.number, s.count, s.offset, s.end),
                    (c.index + 1, cuts.len(), c.offset, c.offset + c.len),
                    "len {len} chunk {chunk} tail_apart {tail_apart} at {at}"
                );
            }
        }
    }

    #[test]
    fn the_gzip_member_inflates_to_the_chunk() {
        let img: Vec<u8> = (0..8192u32).map(|i| (i / 64) as u8).collect();
        let c = cut(&img, 8192, true, true);
        let Payload::Gzip(g) = &c[0].payload else { panic!("not compressed: {:?}", c[0].payload) };
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&g[..]), &mut back).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn wbuf_never_divides_the_output() {
        for len in [512u64, 4096, 1 << 20, 4 << 20, 16 << 20, 261_632, 261_632 * 3, 130_816 * 7 * 511] {
            let w = wbuf_for(len);
            assert!(w.is_multiple_of(SECTOR) && !len.is_multiple_of(w), "len {len}: wbuf {w}");
        }
    }

    #[test]
    fn the_fill_byte_differs_from_uniform_chunks() {
        assert_eq!(fill_byte(&[0, 0, 0]), 0xFF);
        assert_eq!(fill_byte(&[0xA5; 4]), 0x5A);
        assert_eq!(fill_byte(&[1, 2, 3]), 0xA5);
    }
}
