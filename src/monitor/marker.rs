//! Finding a marker in a byte stream that arrives in pieces (a marker may straddle two reads),
//! and keeping the console's last bytes for an error message.

use std::collections::VecDeque;

/// A streaming matcher for one byte string (Knuth-Morris-Pratt: every byte is looked at once).
#[derive(Debug, Clone)]
pub struct Finder {
    pattern: Vec<u8>,
    /// `fail[i]`: length of the longest proper border of `pattern[..=i]`.
    fail: Vec<usize>,
    matched: usize,
}

impl Finder {
    /// A finder for `pattern`; an empty pattern never matches.
    pub fn new(pattern: &[u8]) -> Self {
        let mut fail = vec![0; pattern.len()];
        let mut k = 0;
        for i in 1..pattern.len() {
            while k > 0 && pattern[i] != pattern[k] {
                k = fail[k - 1];
            }
            if pattern[i] == pattern[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Finder { pattern: pattern.to_vec(), fail, matched: 0 }
    }

    /// Feeds the next bytes; true once the pattern has been seen (in these or earlier bytes).
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if self.pattern.is_empty() {
            return false;
        }
        if self.matched == self.pattern.len() {
            return true;
        }
        for &b in data {
            while self.matched > 0 && b != self.pattern[self.matched] {
                self.matched = self.fail[self.matched - 1];
            }
            if b == self.pattern[self.matched] {
                self.matched += 1;
                if self.matched == self.pattern.len() {
                    return true;
                }
            }
        }
        false
    }
}

/// The last `cap` bytes of the console.
#[derive(Debug, Clone)]
pub struct Tail {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Tail { bytes: VecDeque::with_capacity(cap), cap }
    }

    pub fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let over = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..over);
        self.bytes.extend(data);
    }

    /// The last `lines` lines as text: invalid UTF-8 and control bytes shown escaped, so an
    /// error message never carries terminal escapes.
    pub fn text(&self, lines: usize) -> String {
        let raw: Vec<u8> = self.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&raw);
        let mut out: Vec<String> = text
            .split('\n')
            .map(|l| {
                l.trim_end_matches('\r')
                    .chars()
                    .map(|c| if c.is_control() && c != '\t' { format!("\\x{:02x}", c as u32) } else { c.to_string() })
                    .collect()
            })
            .collect();
        while out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        if out.is_empty() {
            return "  (nothing was received)".to_string();
        }
        let start = out.len().saturating_sub(lines);
        out[start..].iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_marker_split_across_reads_and_not_a_near_miss() {
        let mut f = Finder::new(b"RVBUILD-BOOT-OK");
        assert!(!f.feed(b"noise RVBUILD-BOOT-O"));
        assert!(!f.feed(b"X RVBUILD-BO"));
        assert!(f.feed(b"OT-OK\r\n"));
        assert!(f.feed(b""), "stays found");
        // Overlapping prefixes: "aab" inside "aaab".
        let mut g = Finder::new(b"aab");
        assert!(!g.feed(b"aa"));
        assert!(g.feed(b"ab"));
        let mut h = Finder::new(b"aab");
        assert!(!h.feed(b"a"));
        assert!(h.feed(b"aab"));
        assert!(!Finder::new(b"").feed(b"anything"));
    }

    #[test]
    fn finds_a_marker_fed_byte_by_byte() {
        let stream = b"xxabcabcabdxx";
        let mut f = Finder::new(b"abcabd");
        let hit = stream.iter().position(|b| f.feed(&[*b]));
        assert_eq!(hit, Some(10));
    }

    #[test]
    fn tail_keeps_the_last_bytes_and_escapes_control_bytes() {
        let mut t = Tail::new(17);
        t.push(b"first line\r\n");
        t.push(b"second\x1b[0m line\r\n");
        let text = t.text(5);
        assert!(!text.contains("first"), "{text}");
        assert!(text.contains("\\x1b[0m line"), "{text}");
        assert!(!text.contains('\x1b'));
        assert_eq!(Tail::new(8).text(3), "  (nothing was received)");
    }
}
