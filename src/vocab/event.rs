//! Events: what core code reports instead of printing (stages, derivations, logs, outputs,
//! verify, transfers, flash, boot, summary), and the `Reporter` that receives them. The
//! renderers live in `report`; the JSON form of every event is documented in docs/events.md.

use serde::Serialize;

/// Version of the JSON event schema (docs/events.md), carried by the `summary` event.
pub const SCHEMA: u32 = 1;

/// Something that happened, in the order it happened. The `event` tag and field names are a
/// stable interface (`--json`): add fields and variants, never rename them.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A pipeline stage began (resolve, generate, instantiate, build, boot ...).
    Stage { name: String, detail: String },
    /// The build plan is made: how many derivations, on how many local slots.
    Plan { derivations: usize, slots: usize },
    /// A component's derivation is waiting for its inputs.
    Queued { component: String, drv: String },
    /// A builder of the pool, with its build slots (one per builder when a build begins).
    Builder { host: String, slots: u32, local: bool },
    /// A component's derivation started building; `estimate` is the scheduler's predicted
    /// seconds from start to finish on that host (build history, learned speeds, transfers).
    Started { component: String, drv: String, host: String, strategy: String, estimate: Option<f64> },
    /// Store paths moving between this machine and a builder for a derivation: `upload`
    /// (its inputs) or `download` (its outputs). Sent when it starts, as paths arrive, and
    /// with `done` when it ends.
    Copy { component: String, host: String, direction: String, bytes: u64, total: u64, seconds: f64, done: bool },
    /// The scheduler's prediction of the build's end: seconds still to go, replayed on what it
    /// has learned so far (sent when work starts or ends, and every few seconds).
    Forecast { remaining: f64, elapsed: f64, finished: usize, total: usize },
    /// A component's derivation finished (or was already valid).
    Finished { component: String, drv: String, host: String, seconds: f64, ok: bool, cached: bool },
    /// A line of a build or boot log.
    Log { source: String, line: String },
    /// A component's output in the store.
    Output { component: String, path: String },
    /// The outputs' check against the board (ELF arch/ABI/loader, vermagic, image headers).
    Verify { target: String, ok: bool, checked: usize, mismatched: usize, skipped: usize, detail: String },
    /// A serial transfer began (`total` bytes, 0 when unknown).
    TransferStarted { label: String, total: u64 },
    /// Bytes of the current transfer are through (at most a few per second).
    TransferProgress { label: String, done: u64, total: u64 },
    /// The current transfer ended.
    TransferFinished { label: String, bytes: u64, retransmits: u64, seconds: f64 },
    /// A status line of the flash driver (a console command, a check result).
    Note { text: String },
    /// A flash step (one region) finished: written and read back, or failed.
    Flash { board: String, step: String, ok: bool, bytes: u64, seconds: f64, detail: String },
    /// The boot test's result.
    Boot { board: String, ok: bool, seconds: f64, detail: String },
    /// The last event of a run.
    Summary {
        schema: u32,
        command: String,
        ok: bool,
        exit_code: u8,
        seconds: f64,
        derivations: usize,
        built: usize,
        cached: usize,
        failed: usize,
        error: Option<String>,
    },
}

/// Receives events. Implementations must be cheap: events come from build threads.
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);

    /// Called once after the summary: write files, clear progress bars.
    fn finish(&self) -> crate::Result<()> {
        Ok(())
    }
}

/// Drops every event.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _e: &Event) {}
}
