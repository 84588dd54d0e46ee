//! Events emitted by the core (stages, derivations, logs, outputs, boot results) and the
//! renderers that print them. Core code never prints: it calls a `Reporter`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Something that happened, in the order it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A pipeline stage began (resolve, generate, instantiate, build, boot ...).
    Stage { name: String, detail: String },
    /// A component's derivation is waiting for its inputs.
    Queued { component: String, drv: String },
    /// A component's derivation started building.
    Started { component: String, drv: String, host: String, strategy: String },
    /// A component's derivation finished (or was already valid).
    Finished { component: String, drv: String, host: String, seconds: f64, ok: bool, cached: bool },
    /// A line of a build or boot log.
    Log { source: String, line: String },
    /// A component's output in the store.
    Output { component: String, path: String },
    /// The boot test's result.
    Boot { board: String, ok: bool, seconds: f64, detail: String },
}

/// Receives events. Implementations must be cheap: events come from build threads.
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// Drops every event.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _e: &Event) {}
}

/// Plain timestamped lines on stderr: for CI logs and non-TTY use. Log lines only with verbose.
pub struct Plain {
    verbose: bool,
    out: Mutex<()>,
}

impl Plain {
    pub fn new(verbose: bool) -> Self {
        Plain { verbose, out: Mutex::new(()) }
    }
}

fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (h, m, s) = ((now / 3600) % 24, (now / 60) % 60, now % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

impl Reporter for Plain {
    fn event(&self, e: &Event) {
        let line = match e {
            Event::Stage { name, detail } => format!("{name}: {detail}"),
            Event::Queued { .. } => return,
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
            Event::Log { source, line } => {
                if !self.verbose {
                    return;
                }
                format!("[{source}] {line}")
            }
            Event::Output { component, path } => {
                if !self.verbose {
                    return;
                }
                format!("{component} -> {path}")
            }
            Event::Boot { board, ok, seconds, detail } => {
                format!("boot {board}: {} in {seconds:.1} s ({detail})", if *ok { "OK" } else { "FAILED" })
            }
        };
        let _guard = self.out.lock();
        let _ = writeln!(std::io::stderr(), "[{}] {line}", timestamp());
    }
}
