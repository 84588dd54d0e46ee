//! A console proxy between rvbuild and a board's pty that counts the bytes in each direction
//! and can rewrite what rvbuild types: a rule replaces a word on its way to the board (every
//! time, or only its n-th occurrence) and maps the board's echo back, so rvbuild's echo check
//! still sees what it typed. Used to hide `gzwrite` ("Unknown command"), to swallow one write
//! or read (`#` makes U-Boot's shell treat the line as a comment), and, by dropping the proxy,
//! to close the line under rvbuild like an unplugged adapter. On the way back, [`Answer`] rules
//! rewrite whole lines of the board's output (a `gzwrite` that reports another size or CRC), and
//! [`Proxy::garble`] turns everything the board says into junk from then on (a board that
//! answers garbage).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rvbuild::flash::SerialLink;
use serialport::TTYPort;

/// Replace `from` with `to` (same length) on the way to the board; `nth` = only that
/// occurrence (1-based), `None` = all.
#[derive(Clone)]
pub struct Rule {
    pub from: &'static str,
    pub to: &'static str,
    pub nth: Option<usize>,
}

/// Every line from the board containing `contains` is replaced by `rewrite(line)` (the line
/// without its `\n`, with its `\r`).
#[derive(Clone, Copy)]
pub struct Answer {
    pub contains: &'static str,
    pub rewrite: fn(&str) -> String,
}

/// Holds the board's output back line by line (a partial line goes on when the line is quiet)
/// so that [`Answer`] rules see whole lines.
struct Lines {
    answers: Vec<Answer>,
    held: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        if self.answers.is_empty() {
            return data.to_vec();
        }
        let mut out = Vec::new();
        for &b in data {
            if b != b'\n' {
                self.held.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.held).into_owned();
            match self.answers.iter().find(|a| line.contains(a.contains)) {
                Some(a) => out.extend((a.rewrite)(&line).into_bytes()),
                None => out.append(&mut self.held),
            }
            self.held.clear();
            out.push(b'\n');
        }
        out
    }

    fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

pub struct Proxy {
    /// The pty rvbuild opens.
    pub port: String,
    /// Bytes rvbuild sent to the board.
    pub to_board: Arc<AtomicU64>,
    pub from_board: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    garbled: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Streaming replacement: holds back a tail that may be the start of a pattern.
struct Rewriter {
    rules: Vec<(Vec<u8>, Vec<u8>, Option<usize>)>,
    seen: Vec<usize>,
    held: Vec<u8>,
}

impl Rewriter {
    fn new(rules: Vec<(Vec<u8>, Vec<u8>, Option<usize>)>) -> Self {
        let seen = vec![0; rules.len()];
        Rewriter { rules, seen, held: Vec::new() }
    }

    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(data);
        let mut out = Vec::new();
        let mut i = 0;
        'scan: while i < self.held.len() {
            for (r, (from, to, nth)) in self.rules.iter().enumerate() {
                let rest = &self.held[i..];
                if rest.starts_with(from) {
                    self.seen[r] += 1;
                    let hit = nth.is_none_or(|n| n == self.seen[r]);
                    out.extend_from_slice(if hit { to } else { from });
                    i += from.len();
                    continue 'scan;
                }
                if from.starts_with(rest) {
                    // Maybe a pattern split across reads: wait for more.
                    self.held.drain(..i);
                    return out;
                }
            }
            out.push(self.held[i]);
            i += 1;
        }
        self.held.clear();
        out
    }

    fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// What one direction does to the bytes passing: the rewriting of typed words, the answer
/// lines, and (when `garbled` is set) junk instead of every byte.
struct Filters {
    words: Rewriter,
    lines: Lines,
    garbled: Option<Arc<AtomicBool>>,
}

fn pump(mut from: TTYPort, mut to: TTYPort, mut f: Filters, count: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let n = match from.read_timeout(&mut buf, Duration::from_millis(50)) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        count.fetch_add(n as u64, Ordering::Relaxed);
        let mut out = if n == 0 {
            let mut held = f.words.flush();
            held = f.lines.feed(&held);
            held.extend(f.lines.flush());
            held
        } else {
            let words = f.words.feed(&buf[..n]);
            f.lines.feed(&words)
        };
        if f.garbled.as_ref().is_some_and(|g| g.load(Ordering::Relaxed)) {
            // High-bit bytes: never a prompt, an echo, an ACK or a digit.
            out.iter_mut().for_each(|b| *b = 0x80 | (b.wrapping_mul(37) ^ 0x2A));
        }
        if !out.is_empty() && to.write_all(&out).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Proxy {
    /// Proxies between a new pty and `device` with `rules` applied to what rvbuild types.
    pub fn new(device: &str, rules: &[Rule]) -> Proxy {
        Proxy::answering(device, rules, &[])
    }

    /// Like [`Proxy::new`], with `answers` rewriting the board's output lines.
    pub fn answering(device: &str, rules: &[Rule], answers: &[Answer]) -> Proxy {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let port = serialport::SerialPort::name(&slave).expect("pty name");
        // The slave stays open until the proxy is dropped, so the master sees no hang-up
        // between rvbuild's opens; dropping the proxy closes both ends.
        let dev = serialport::new(device, 115_200).open_native().expect("open device pty");
        // Not inherited by rvbuild: a child holding the master would keep the line up after
        // the proxy closes it.
        for fd in [&master as &dyn AsRawFd, &slave, &dev] {
            // SAFETY: fcntl on a descriptor this process owns.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let stop = Arc::new(AtomicBool::new(false));
        let garbled = Arc::new(AtomicBool::new(false));
        let (to_board, from_board) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let down = rules.iter().map(|r| (r.from.as_bytes().to_vec(), r.to.as_bytes().to_vec(), r.nth)).collect();
        let up = rules.iter().map(|r| (r.to.as_bytes().to_vec(), r.from.as_bytes().to_vec(), None)).collect();
        let (m2, d2) = (master.try_clone_native().expect("clone"), dev.try_clone_native().expect("clone"));
        for fd in [&m2, &d2] {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let threads = vec![
            {
                let (s, c) = (stop.clone(), to_board.clone());
                let f = Filters {
                    words: Rewriter::new(down),
                    lines: Lines { answers: vec![], held: vec![] },
                    garbled: None,
                };
                std::thread::spawn(move || pump(master, dev, f, c, s))
            },
            {
                let (s, c) = (stop.clone(), from_board.clone());
                let lines = Lines { answers: answers.to_vec(), held: vec![] };
                let f = Filters { words: Rewriter::new(up), lines, garbled: Some(garbled.clone()) };
                std::thread::spawn(move || {
                    let _slave = slave;
                    pump(d2, m2, f, c, s)
                })
            },
        ];
        Proxy { port, to_board, from_board, stop, garbled, threads }
    }

    pub fn sent(&self) -> u64 {
        self.to_board.load(Ordering::Relaxed)
    }

    /// From now on, everything the board says reaches rvbuild as junk.
    pub fn garble(&self) {
        self.garbled.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
