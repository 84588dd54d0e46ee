//! Checksums used on the serial line: XMODEM's 8-bit sum and CRC-16, and the zlib CRC-32 that
//! U-Boot's `crc32` command prints (used to prove an image landed).

use crc::{CRC_16_XMODEM, CRC_32_ISO_HDLC, Crc};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// CRC-16/XMODEM (poly 0x1021, init 0): the block check of XMODEM-CRC and YMODEM.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// The 8-bit arithmetic sum of XMODEM's checksum mode.
pub fn sum8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

/// CRC-32 as zlib and U-Boot's `crc32` compute it.
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_match_the_catalogue() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn block_of_a_has_known_checks() {
        let block = [b'A'; 128];
        assert_eq!(sum8(&block), 0x80);
        assert_eq!(crc16(&block), 0x1CCE);
    }
}
