//! What a builder fault means for the run, and what it leaves behind: the failure class of a
//! build that failed for want of disk space, and the removal of a download that broke off
//! (Nix restores a NAR straight into its final store path and leaves the half-written, never
//! registered directory there when the stream ends early or its hash is wrong).

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use super::error::BuildError;
use crate::Error;
use crate::nix::error::says_out_of_space;
use crate::nix::serve::BuildResult;
use crate::nix::store_path::StorePath;
use crate::transport::Transport;
use crate::vocab::Event;
use crate::vocab::error::FailureClass;

/// A failed build that failed because the builder's disk is full, as a builder fault of
/// class [`FailureClass::StoreFull`] (the work may succeed elsewhere); `None` for a build
/// that failed on its own.
pub(crate) fn disk_full(what: &str, host: &str, result: &BuildResult, log_tail: &str) -> Option<Error> {
    if !says_out_of_space(&result.error_msg) && !says_out_of_space(log_tail) {
        return None;
    }
    let e: Error = BuildError::BuilderDiskFull {
        what: what.to_string(),
        host: host.to_string(),
        status: result.status,
        message: super::strip_ansi(result.error_msg.trim()),
        log_tail: log_tail.to_string(),
    }
    .into();
    debug_assert_eq!(e.failure_class(), Some(FailureClass::StoreFull));
    Some(e)
}

/// How long to wait for the local `nix-store` that received a broken download to exit (it
/// holds a temporary GC root on the path until then).
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Removes what a broken-off download left in the local store: each of `paths` that exists
/// on disk but is not valid is deleted with `nix-store --delete`, which refuses paths another
/// process still holds (a concurrent import of the same path). A path it cannot remove is
/// reported as a note; the next import or garbage collection removes it.
pub(crate) async fn discard_partial(local: &dyn Transport, paths: &[StorePath], events: &mpsc::UnboundedSender<Event>) {
    for p in paths {
        if !Path::new(p.as_str()).exists() {
            continue;
        }
        // Store paths are validated: no quote can occur in one.
        let cmd = format!(
            "p='{p}'; if nix-store --check-validity \"$p\" 2>/dev/null; then exit 0; fi; nix-store --delete \"$p\" 2>&1",
            p = p.as_str()
        );
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        loop {
            let last = match local.exec(&cmd).await {
                Ok(out) if out.status == Some(0) => break,
                Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                let _ = events.send(Event::Note {
                    text: format!("could not remove the broken-off download {p}: {last}; `nix-store --gc` will"),
                });
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::serve::BuildStatus;

    fn result(msg: &str) -> BuildResult {
        BuildResult {
            status: BuildStatus::PermanentFailure,
            error_msg: msg.to_string(),
            times_built: 0,
            is_non_deterministic: false,
            start_time: 0,
            stop_time: 0,
            built_outputs: Default::default(),
        }
    }

    #[test]
    fn a_build_that_ran_out_of_space_is_a_builder_fault_naming_the_host() {
        let log = "head: error writing 'standard output': No space left on device";
        let e = disk_full("n0", "10.0.0.2:22", &result("builder for 'x.drv' failed with exit code 1"), log)
            .unwrap_or_else(|| panic!("not classified"));
        assert_eq!(e.failure_class(), Some(FailureClass::StoreFull));
        assert_eq!(e.kind(), crate::ErrorKind::Builder);
        assert!(e.to_string().contains("n0 could not be built on 10.0.0.2:22: its disk is full"), "{e}");
        assert!(disk_full("n0", "h", &result("error: database or disk is full"), "").is_some());
    }

    #[test]
    fn a_build_that_failed_on_its_own_is_not_a_builder_fault() {
        assert!(
            disk_full("n0", "h", &result("builder for 'x.drv' failed with exit code 2"), "make: *** [all] Error 1")
                .is_none()
        );
    }
}
