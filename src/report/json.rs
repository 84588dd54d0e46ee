//! `--json`: one JSON object per event on stdout, one line each (schema: docs/events.md).
//! Everything meant for people goes to stderr so that stdout stays machine-readable.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// Writes each event as a JSON line on stdout.
pub struct Json {
    out: Mutex<()>,
}

impl Json {
    pub fn new() -> Self {
        Json { out: Mutex::new(()) }
    }
}

impl Default for Json {
    fn default() -> Self {
        Json::new()
    }
}

impl Reporter for Json {
    fn event(&self, e: &Event) {
        // Serialising these plain structs cannot fail; skip rather than panic if it ever did.
        let Ok(line) = serde_json::to_string(e) else { return };
        let _guard = self.out.lock();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
