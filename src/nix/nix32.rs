//! Nix's base-32 encoding ("nix32"): the alphabet and bit order used in store path hashes and
//! in `sha256:<nix32>` hash strings. It is not RFC 4648 base32.

/// The 32 characters, without `e`, `o`, `u` and `t`.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The number of characters that encode `bytes` bytes (20 → 32, 32 → 52).
pub fn encoded_len(bytes: usize) -> usize {
    if bytes == 0 { 0 } else { (bytes * 8 - 1) / 5 + 1 }
}

/// Encodes bytes: the input is a little-endian bit string and the *last* character holds bits 0..5.
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let i = bit / 8;
        let j = bit % 8;
        let low = u16::from(bytes[i]) >> j;
        let high = match bytes.get(i + 1) {
            Some(&b) => u16::from(b) << (8 - j),
            None => 0,
        };
        out.push(char::from(ALPHABET[usize::from((low | high) & 0x1f)]));
    }
    out
}

/// The value of one nix32 character, or `None` if it is not in the alphabet.
pub fn digit(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).and_then(|p| u8::try_from(p).ok())
}

/// Decodes a string that must encode exactly `bytes` bytes. `None` on a wrong length, a
/// character outside the alphabet, or bits set beyond the last byte.
pub fn decode(s: &str, bytes: usize) -> Option<Vec<u8>> {
    let chars = s.as_bytes();
    if chars.len() != encoded_len(bytes) {
        return None;
    }
    let mut out = vec![0u8; bytes];
    for (n, &c) in chars.iter().rev().enumerate() {
        let d = u16::from(digit(c)?);
        let bit = n * 5;
        let i = bit / 8;
        let j = bit % 8;
        let shifted = d << j;
        out[i] |= (shifted & 0xff) as u8;
        let carry = (shifted >> 8) as u8;
        match out.get_mut(i + 1) {
            Some(b) => *b |= carry,
            None if carry != 0 => return None,
            None => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_sha256() {
        // sha256 of the NAR of a regular file containing "hi\n" (checked with nix-store 2.8).
        let nix32 = "1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h";
        let bytes = decode(nix32, 32).expect("valid");
        assert_eq!(encode(&bytes), nix32);
    }

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(20), 32);
        assert_eq!(encoded_len(32), 52);
        assert_eq!(encoded_len(0), 0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(decode("e", 1).is_none());
        assert!(decode("00", 2).is_none());
        // 52 chars of 'z' set bits above 256.
        assert!(decode(&"z".repeat(52), 32).is_none());
    }

    proptest::proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let s = encode(&bytes);
            proptest::prop_assert_eq!(decode(&s, bytes.len()), Some(bytes));
        }

        #[test]
        fn decode_never_panics(s in "[0-9a-z]{0,60}", n in 0usize..40) {
            let _ = decode(&s, n);
        }
    }
}
