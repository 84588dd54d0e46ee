//! Plain timestamped lines on stderr, no escape codes: for CI logs, pipes and `CI=true`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Event, Reporter};

/// Plain timestamped lines on stderr. Log lines and outputs only with verbose; transfers are
/// left to the flash driver's own progress lines.
pub struct Plain {
    verbose: bool,
    out: Mutex<()>,
}

impl Plain {
    pub fn new(verbose: bool) -> Self {
        Plain { verbose, out: Mutex::new(()) }
    }
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
        Event::Plan { .. } | Event::Queued { .. } => return None,
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
        Event::TransferStarted { .. }
        | Event::TransferProgress { .. }
        | Event::TransferFinished { .. }
        | Event::Note { .. } => return None,
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
        let Some(line) = line(e, self.verbose) else { return };
        let _guard = self.out.lock();
        let _ = writeln!(std::io::stderr(), "[{}] {line}", timestamp());
    }
}
