//! A pty proxy that damages the line: every byte passing in either direction has its own
//! chance (1 in `rate`) of one flipped bit, and (1 in `drop_rate`) of being lost. rvbuild talks to `port`; the far end is a device
//! (QEMU's console pty).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rvbuild::flash::SerialLink;
use serialport::TTYPort;

pub struct NoisyLine {
    /// The pty rvbuild opens.
    pub port: String,
    stop: Arc<AtomicBool>,
    /// Bytes damaged or lost so far (both directions).
    pub flips: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn pump(
    mut from: TTYPort,
    mut to: TTYPort,
    (rate, drop_rate): (u64, u64),
    seed: u64,
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
) {
    let mut rng = Rng(seed);
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let n = match from.read_timeout(&mut buf, Duration::from_millis(50)) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if drop_rate > 0 && rng.next().is_multiple_of(drop_rate) {
                flips.fetch_add(1, Ordering::Relaxed);
            } else if rng.next().is_multiple_of(rate) {
                out.push(b ^ (1 << (rng.next() % 8)));
                flips.fetch_add(1, Ordering::Relaxed);
            } else {
                out.push(b);
            }
        }
        if to.write_all(&out).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl NoisyLine {
    /// Proxies between a new pty and `device`, damaging 1 byte in `rate` and losing 1 in
    /// `drop_rate` (0: none lost).
    pub fn new(device: &str, rate: u64, drop_rate: u64) -> NoisyLine {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let port = serialport::SerialPort::name(&slave).expect("pty name");
        // Keep the slave open so the master does not see a hang-up between rvbuild's opens.
        std::mem::forget(slave);
        let dev = serialport::new(device, 115_200).open_native().expect("open device pty");
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let (m2, d2) = (master.try_clone_native().expect("clone"), dev.try_clone_native().expect("clone"));
        let threads = vec![
            {
                let (s, f) = (stop.clone(), flips.clone());
                std::thread::spawn(move || pump(master, dev, (rate, drop_rate), 0x9E37_79B9_7F4A_7C15, s, f))
            },
            {
                let (s, f) = (stop.clone(), flips.clone());
                std::thread::spawn(move || pump(d2, m2, (rate, drop_rate), 0xD1B5_4A32_D192_ED03, s, f))
            },
        ];
        NoisyLine { port, stop, flips, threads }
    }
}

impl Drop for NoisyLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
