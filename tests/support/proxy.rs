//! A console proxy between rvbuild and a board's pty that counts the bytes in each direction
//! and can rewrite what rvbuild types: a rule replaces a word on its way to the board (every
//! time, or only its n-th occurrence) and maps the board's echo back, so rvbuild's echo check
//! still sees what it typed. Used to hide `gzwrite` ("Unknown command"), to swallow one write
//! or read (`#` makes U-Boot's shell treat the line as a comment), and, by dropping the proxy,
//! to close the line under rvbuild like an unplugged adapter.

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

pub struct Proxy {
    /// The pty rvbuild opens.
    pub port: String,
    /// Bytes rvbuild sent to the board.
    pub to_board: Arc<AtomicU64>,
    pub from_board: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
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

fn pump(mut from: TTYPort, mut to: TTYPort, mut rw: Rewriter, count: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
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
        let out = if n == 0 { rw.flush() } else { rw.feed(&buf[..n]) };
        if !out.is_empty() && to.write_all(&out).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Proxy {
    /// Proxies between a new pty and `device` with `rules` applied to what rvbuild types.
    pub fn new(device: &str, rules: &[Rule]) -> Proxy {
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
                std::thread::spawn(move || pump(master, dev, Rewriter::new(down), c, s))
            },
            {
                let (s, c) = (stop.clone(), from_board.clone());
                std::thread::spawn(move || {
                    let _slave = slave;
                    pump(d2, m2, Rewriter::new(up), c, s)
                })
            },
        ];
        Proxy { port, to_board, from_board, stop, threads }
    }

    pub fn sent(&self) -> u64 {
        self.to_board.load(Ordering::Relaxed)
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
