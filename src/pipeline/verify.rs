//! The verify stage of the pipeline: a build's outputs against its board, reported as a
//! `verify` event, before anything can be flashed.

use crate::Result;
use crate::profile;
use crate::vocab::{Event, Manifest, Reporter};

/// Verifies a build's outputs against the board and reports the result as a `verify` event;
/// any finding is an error (exit 5) naming the files.
pub fn verify_outputs(board: &profile::Board, manifest: &Manifest, reporter: &dyn Reporter) -> Result<()> {
    let report = crate::verify::board::check_build(board, manifest)?;
    let refused = (!report.is_clean()).then(|| crate::verify::refusal(&report));
    reporter.event(&Event::Verify {
        target: manifest.board.clone(),
        ok: refused.is_none(),
        checked: report.checked,
        mismatched: report.mismatched,
        skipped: report.skipped,
        detail: match &refused {
            None => {
                format!("{} files checked, {} skipped (not ELF/Image/DTB), all match", report.checked, report.skipped)
            }
            Some(e) => e.to_string(),
        },
    });
    match refused {
        None => Ok(()),
        Some(e) => Err(e),
    }
}
