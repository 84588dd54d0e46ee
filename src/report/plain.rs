//! Plain timestamped lines on stderr, no escape codes: for CI logs, pipes and `CI=true`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Event, Reporter};

/// A serial transfer's progress lines at most this often (plus one at the start and the end).
const TRANSFER_EVERY: Duration = Duration::from_secs(2);

/// Plain timestamped lines on stderr. Log lines and outputs only with verbose; a serial
/// transfer as a line at its start, one every two seconds and one at its end.
pub struct Plain {
    verbose: bool,
    out: Mutex<Option<Transfer>>,
}

/// The transfer under way, for its rate and how often it is shown.
struct Transfer {
    started: Instant,
    shown: Instant,
}

impl Plain {
    pub fn new(verbose: bool) -> Self {
        Plain { verbose, out: Mutex::new(None) }
    }
}

/// `label: done/total bytes, rate KiB/s, ETA`, the line of a transfer under way.
fn transfer_line(label: &str, done: u64, total: u64, seconds: f64) -> String {
    let rate = if seconds > 0.0 { done as f64 / seconds } else { 0.0 };
    let eta =
        if rate > 0.0 && total > done { format!(", ETA {:.0}s", (total - done) as f64 / rate) } else { String::new() };
    format!("{label}: {done}/{total} bytes, {:.1} KiB/s{eta}", rate / 1024.0)
}

/// `HH:MM:SS` (UTC) of now.
pub(super) fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (h, m, s) = ((now / 3600) % 24, (now / 60) % 60, now % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

/// The one-line text of an event, or None for events this rendering leaves out.
pub(super) fn line(e: &Event, verbose: bool) -> Option<String> {
    Some(match e {
        Event::Stage { name, detail } => format!("{name}: {detail}"),
        // The plan, the pool and the forecast are for the live view; a copy is a line only
        // when it is done, and only with verbose.
        Event::Plan { .. } | Event::Queued { .. } | Event::Builder { .. } | Event::Forecast { .. } => return None,
        Event::Copy { component, host, direction, bytes, seconds, done: true, .. } if verbose => {
            let rate = if *seconds > 0.0 { *bytes as f64 / seconds } else { 0.0 };
            format!("{component}: {direction} {bytes} bytes with {host} in {seconds:.1}s, {:.1} KiB/s", rate / 1024.0)
        }
        Event::Copy { .. } => return None,
        Event::Started { component, host, strategy, .. } => format!("building {component} ({strategy}) on {host}"),
        Event::Finished { component, seconds, ok, cached, .. } => {
            if *cached {
                format!("{component}: already built")
            } else if *ok {
                format!("{component}: built in {seconds:.1} s")
            } else {
                format!("{component}: FAILED after {seconds:.1} s")
            }
        }
        Event::Log { source, line } if verbose => format!("[{source}] {line}"),
        Event::Output { component, path } if verbose => format!("{component} -> {path}"),
        Event::Log { .. } | Event::Output { .. } => return None,
        Event::Verify { target, ok, detail, .. } => {
            format!("verify {target}: {} ({detail})", if *ok { "OK" } else { "FAILED" })
        }
        Event::TransferStarted { label, total } => format!("{label}: {total} bytes to transfer"),
        // Progress needs the transfer's start: [`Plain`] and the TTY bar handle it.
        Event::TransferProgress { .. } => return None,
        Event::TransferFinished { label, bytes, retransmits, seconds } => {
            let rate = if *seconds > 0.0 { *bytes as f64 / seconds } else { 0.0 };
            format!(
                "{label}: {bytes} bytes in {seconds:.1}s, {:.1} KiB/s, {retransmits} retransmitted (done)",
                rate / 1024.0
            )
        }
        Event::Note { text } => text.clone(),
        Event::Flash { board, step, ok, bytes, detail, .. } => {
            if *ok {
                format!("flash {board} {step}: {bytes} bytes written and read back")
            } else {
                format!("flash {board} {step}: FAILED ({detail})")
            }
        }
        Event::Boot { board, ok, seconds, detail } => {
            format!("boot {board}: {} in {seconds:.1} s ({detail})", if *ok { "OK" } else { "FAILED" })
        }
        Event::Summary { command, ok, exit_code, seconds, derivations, built, cached, failed, .. } => {
            let counts = if *derivations > 0 {
                format!(" ({derivations} derivations: {built} built, {cached} already built, {failed} failed)")
            } else {
                String::new()
            };
            let verdict = if *ok { "ok".to_string() } else { format!("failed, exit code {exit_code}") };
            format!("{command}: {verdict} in {seconds:.1} s{counts}")
        }
    })
}

impl Reporter for Plain {
    fn event(&self, e: &Event) {
        let Ok(mut transfer) = self.out.lock() else { return };
        let line = match e {
            Event::TransferStarted { .. } => {
                let now = Instant::now();
                *transfer = Some(Transfer { started: now, shown: now });
                line(e, self.verbose)
            }
            Event::TransferProgress { label, done, total } => match transfer.as_mut() {
                Some(t) if t.shown.elapsed() >= TRANSFER_EVERY => {
                    t.shown = Instant::now();
                    Some(transfer_line(label, *done, *total, t.started.elapsed().as_secs_f64()))
                }
                _ => None,
            },
            Event::TransferFinished { .. } => {
                *transfer = None;
                line(e, self.verbose)
            }
            _ => line(e, self.verbose),
        };
        let Some(line) = line else { return };
        let _ = writeln!(std::io::stderr(), "[{}] {line}", timestamp());
    }
}
