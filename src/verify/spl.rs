//! The StarFive JH7110 SPL header (`u-boot-spl.bin.normal.out`, and the SPL partition of the
//! boards' SD images): the 0x400-byte header the boot ROM reads, with the payload size and the
//! payload's CRC-32. Only the declared payload is read, and only when the source holds it.

use super::report::Mismatch;
use super::source::Source;

const HEADER: u64 = 0x400;
/// Largest SPL payload read (the JH7110's SRAM holds far less).
const MAX_PAYLOAD: u64 = 4 << 20;

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// True when `head` (at least 0x290 bytes) starts with a StarFive SPL header.
pub(crate) fn is_spl(head: &[u8]) -> bool {
    head.len() >= 0x294 && le32(head, 0) == 0x240 && le32(head, 0x28c) == 0x400
}

/// What is wrong with an SPL header (the flash stage turns these into its own errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    TooShort { len: u64 },
    NoHeader,
    Size { size: u64, holds: u64 },
    Crc { got: u32, want: u32 },
}

/// A valid header: payload size and CRC-32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub size: u64,
    pub crc: u32,
}

/// Reads and checks the header and payload. The outer error is an I/O failure.
pub(crate) fn read(src: &dyn Source) -> Result<Result<Header, Problem>, String> {
    if src.len() < HEADER {
        return Ok(Err(Problem::TooShort { len: src.len() }));
    }
    let head = src.bytes_at(0, 0x294, "the SPL header")?;
    if !is_spl(&head) {
        return Ok(Err(Problem::NoHeader));
    }
    let size = u64::from(le32(&head, 0x288));
    let holds = src.len() - HEADER;
    if size > holds || size > MAX_PAYLOAD {
        return Ok(Err(Problem::Size { size, holds }));
    }
    let payload = src.bytes_at(HEADER, size as usize, "the SPL payload")?;
    let got = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&payload);
    let want = le32(&head, 0x290);
    if got != want {
        return Ok(Err(Problem::Crc { got, want }));
    }
    Ok(Ok(Header { size, crc: got }))
}

/// Checks the payload size and CRC; `Ok` carries a one-line description.
pub(crate) fn check(src: &dyn Source) -> Result<Result<String, Mismatch>, String> {
    Ok(match read(src)? {
        Ok(h) => Ok(format!("StarFive SPL, {} payload bytes, crc32 {:08x}", h.size, h.crc)),
        Err(Problem::Size { size, holds }) => Err(Mismatch::new(
            "spl-size",
            format!("a payload that fits the file (at most {} bytes)", holds.min(MAX_PAYLOAD)),
            format!("{size} bytes declared"),
        )),
        Err(Problem::Crc { got, want }) => {
            Err(Mismatch::new("spl-crc", format!("crc32 {want:08x} (the header's)"), format!("{got:08x}")))
        }
        Err(Problem::TooShort { len }) => {
            Err(Mismatch::new("spl", "a 0x400-byte StarFive header", format!("{len} bytes")))
        }
        Err(Problem::NoHeader) => Err(Mismatch::new("spl", "a StarFive SPL header", "none")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spl(payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 0x400];
        let mut put = |off: usize, v: u32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put(0, 0x240);
        put(0x288, payload.len() as u32);
        put(0x28c, 0x400);
        put(0x290, crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(payload));
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn size_and_crc() {
        let mut s = spl(b"payload bytes");
        assert!(is_spl(&s));
        assert!(check(&s.as_slice()).unwrap().is_ok());
        s.extend_from_slice(&[0u8; 100]);
        assert!(check(&s.as_slice()).unwrap().is_ok(), "zero padding after the payload is fine");
        let n = s.len();
        s[n - 101] ^= 1;
        assert_eq!(check(&s.as_slice()).unwrap().unwrap_err().check, "spl-crc");
        s[0x288..0x28c].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check(&s.as_slice()).unwrap().unwrap_err().check, "spl-size");
    }
}
