//! Numeric values of profiles: addresses and sizes written as integers, hex strings
//! (`0x84000000`) or sizes with a binary unit (`64MiB`, `512K`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Unexpected, Visitor};

/// A byte address or offset (`0x100000`, `1048576`, `1MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Addr(pub u64);

/// A byte size (`16MiB`, `0xf00000`, `4096`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v != 0 && v.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", v >> 20)
        } else if v != 0 && v.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", v >> 10)
        } else {
            write!(f, "{v}")
        }
    }
}

/// Parses `0x…` hex, decimal, or a number with a K/KiB/M/MiB/G/GiB suffix (binary units).
pub fn parse_number(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim() {
        "" => 0,
        "K" | "KiB" | "k" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

struct NumVisitor(&'static str);

impl Visitor<'_> for NumVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_number(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor("an address such as 0x84000000 or 1MiB")).map(Addr)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor("a size such as 64MiB, 0xf00000 or 4096")).map(Size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x100000"), Some(0x100000));
        assert_eq!(parse_number("4096"), Some(4096));
        assert_eq!(parse_number("64MiB"), Some(64 << 20));
        assert_eq!(parse_number("1M"), Some(1 << 20));
        assert_eq!(parse_number("2 GiB"), Some(2 << 30));
        assert_eq!(parse_number("0xZZ"), None);
        assert_eq!(parse_number("12XB"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("99999999999999999999G"), None);
        assert_eq!(Size(64 << 20).to_string(), "64MiB");
        assert_eq!(Addr(0x100000).to_string(), "0x100000");
    }
}
