//! Pty pairs whose far end is handed to a peer process (lrzsz) as stdin and stdout.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

/// A pty pair: `master` stays in the test, `slave_path` is the far end's device.
pub fn pair() -> (TTYPort, String) {
    let (master, slave) = TTYPort::pair().expect("pty pair");
    let path = slave.name().expect("pty name");
    // Keep the slave open in the peer only; the master reads EIO once the peer closes it.
    std::mem::forget(slave);
    (master, path)
}

/// Starts `cmd args` in `dir`, talking to the pty `slave` through socat.
///
/// socat gives the peer a pipe instead of the pty itself: lrzsz flushes its tty (TCIOFLUSH)
/// when it exits, which on a pty would discard its own last ACK before the other side reads it.
pub fn spawn_on(slave: &str, dir: &Path, cmd: &str, args: &[&str]) -> Child {
    let line = std::iter::once(cmd).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    Command::new("socat")
        .arg("-b65536")
        .arg(format!("FILE:{slave},rawer"))
        .arg(format!("EXEC:{line},pipes"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start socat for {cmd}: {e} (are socat and lrzsz installed?)"))
}

/// Waits for `child` at most `limit`, killing it when it overstays. Returns its exit status
/// and stderr.
pub fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (st.success(), err);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return (false, "killed: time limit".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic test data of `len` bytes (every byte value, no long runs).
pub fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}
