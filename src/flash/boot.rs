//! The boot check after a flash: starts the board from what was written (U-Boot's `boot`, or
//! `reset`) on the same console and watches it for the board's marker line, like the QEMU boot
//! test does on QEMU's console. Every console line becomes a `log` event.

use std::time::{Duration, Instant};

use super::link::read_byte;
use super::uboot::Console;
use crate::Result;
use crate::vocab::{Event, Reporter};

/// What to run and what to wait for.
#[derive(Debug, Clone)]
pub struct BootCheck {
    /// The U-Boot command that starts the board: `boot` (bootcmd) or `reset`.
    pub command: String,
    /// The line init prints when the board is up.
    pub marker: String,
    pub timeout: Duration,
}

/// How the boot went.
#[derive(Debug, Clone, PartialEq)]
pub struct BootOutcome {
    pub ok: bool,
    pub seconds: f64,
    /// What was seen (the marker) or why it failed.
    pub detail: String,
    /// The last console lines.
    pub tail: Vec<String>,
}

/// Lines that mean the boot failed, without waiting for the timeout.
fn failure(line: &str) -> bool {
    line.contains("Kernel panic") || line.contains("failed to load, no marker")
}

/// Runs `check.command` at the prompt and reads the console until the marker, a failure line,
/// U-Boot's prompt coming back, or the timeout.
pub fn boot_and_watch(con: &mut Console<'_>, check: &BootCheck, reporter: &dyn Reporter) -> Result<BootOutcome> {
    let start = Instant::now();
    con.enter(&check.command)?;
    let link = con.link();
    let mut lines: Vec<String> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut outcome = None;
    while outcome.is_none() {
        let left = check.timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            outcome = Some((false, format!("no marker `{}` within {} s", check.marker, check.timeout.as_secs())));
            break;
        }
        let b = match read_byte(link, left.min(Duration::from_millis(500))) {
            Ok(Some(b)) => b,
            Ok(None) => {
                // U-Boot's prompt back without a newline after it: the boot command gave up.
                if cur.ends_with(b"=> ") && start.elapsed() > Duration::from_secs(1) {
                    let line = String::from_utf8_lossy(&cur).to_string();
                    lines.push(line);
                    outcome = Some((false, format!("U-Boot came back to its prompt after `{}`", check.command)));
                }
                continue;
            }
            Err(e) => {
                outcome = Some((false, format!("the console failed: {e}")));
                break;
            }
        };
        if b != b'\n' {
            if b != b'\r' {
                cur.push(b);
            }
            continue;
        }
        let line = String::from_utf8_lossy(&cur).to_string();
        cur.clear();
        reporter.event(&Event::Log { source: "console".into(), line: line.clone() });
        if line.trim() == check.marker {
            outcome = Some((true, format!("marker `{}` seen on the console", check.marker)));
        } else if failure(&line) {
            outcome = Some((false, line.trim().to_string()));
        }
        lines.push(line);
    }
    let (ok, detail) = outcome.unwrap_or((false, "no outcome".into()));
    let tail = lines[lines.len().saturating_sub(30)..].to_vec();
    Ok(BootOutcome { ok, seconds: start.elapsed().as_secs_f64(), detail, tail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_end_the_watch() {
        assert!(failure("[    1.2] Kernel panic - not syncing: VFS"));
        assert!(failure("rvbuild-init: rvhello.ko failed to load, no marker"));
        assert!(!failure("Starting kernel ..."));
    }
}
