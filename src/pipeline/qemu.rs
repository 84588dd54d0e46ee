//! `qemu` through the pipeline: the board's build (a no-op when nothing changed) or its last
//! manifest, then the QEMU boot smoke test.

use std::path::PathBuf;
use std::time::Duration;

use crate::profile::{self, Board, Loaded};
use crate::qemu::{self, BootOutcome};
use crate::vocab::{Event, Manifest, Reporter};
use crate::{Error, Result};

use super::error::PipelineError;
use super::{Request, default_out_dir};

/// A boot test: the build request of the board, and how to boot.
#[derive(Debug, Clone, Default)]
pub struct BootRequest {
    pub build: Request,
    /// Boot the last build's outputs without building.
    pub no_build: bool,
    /// Seconds before the boot test gives up (default: the board's `qemu.timeout`).
    pub timeout: Option<Duration>,
}

/// A finished boot test with the manifest it booted.
pub struct Booted {
    pub manifest: Manifest,
    pub outcome: BootOutcome,
}

/// The board, its output directory and its manifest (built first unless `no_build`).
fn built(
    req: &BootRequest,
    rt: &tokio::runtime::Handle,
    reporter: &dyn Reporter,
) -> Result<(Loaded<Board>, PathBuf, Manifest)> {
    let (board, out_dir, manifest) = if req.no_build {
        let board = profile::load_board(&req.build.project, &req.build.board)?;
        let out_dir = req.build.out_dir.clone().unwrap_or_else(|| default_out_dir(&board.value.name.value));
        let manifest = Manifest::load(&out_dir)?;
        (board, out_dir, manifest)
    } else {
        let done = super::build(&req.build, rt, reporter)?;
        (done.board, done.out_dir, done.manifest)
    };
    let name = board.value.name.value.clone();
    if let Some(q) = &board.value.qemu
        && q.boot == crate::profile::board::QemuBoot::Direct
    {
        reporter.event(&Event::Stage {
            name: "note".into(),
            detail: format!("{name}: QEMU has no model of this SoC; booting the board's kernel and initramfs on QEMU `{}` directly. This smoke-tests the kernel, drivers and userland, not the board's firmware path.", q.machine),
        });
    }
    Ok((board, out_dir, manifest))
}

/// The QEMU command line that would boot the board, as words.
pub fn qemu_command(req: &BootRequest, rt: &tokio::runtime::Handle, reporter: &dyn Reporter) -> Result<Vec<String>> {
    let (board, _, manifest) = built(req, rt, reporter)?;
    let q = board.value.qemu.as_ref().ok_or_else(|| no_qemu(&manifest.board))?;
    let cmd = qemu::command(&board.value, q, &manifest)?;
    Ok(std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect())
}

/// Builds (unless `no_build`) and boots the board to its marker.
pub fn boot(req: &BootRequest, rt: &tokio::runtime::Handle, reporter: &dyn Reporter) -> Result<Booted> {
    let (board, out_dir, manifest) = built(req, rt, reporter)?;
    let outcome = qemu::boot(&board.value, &manifest, &out_dir.join("logs"), req.timeout, reporter)?;
    Ok(Booted { manifest, outcome })
}

fn no_qemu(board: &str) -> Error {
    PipelineError::NoQemuSection { board: board.to_string() }.into()
}
