//! What can go wrong while assembling a board's stages: a board whose flash plan cannot be
//! followed, a missing nixpkgs, a board without a QEMU section, a manifest that cannot be
//! written.

use std::path::PathBuf;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PipelineError {
    #[error("{board} boots from an SD card: there is nothing to write over its serial console")]
    #[diagnostic(
        code(rvbuild::pipeline::sd_card_board),
        help("write disk.img of `rvbuild board` to the card (dd or bmaptool)")
    )]
    SdCardBoard { board: String },

    #[error("no file for flash region `{region}` ({file}) of {board}")]
    #[diagnostic(
        code(rvbuild::pipeline::no_region_file),
        help("build the board first (`rvbuild board {board}`), or pass the file (--image / --spl / --fit)")
    )]
    NoRegionFile { board: String, region: String, file: String },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::pipeline::unreadable_image))]
    UnreadableImage { path: PathBuf, source: std::io::Error },

    #[error("{} is {len} bytes, larger than flash region `{region}` ({size} bytes at {offset})", path.display())]
    #[diagnostic(
        code(rvbuild::pipeline::region_too_small),
        help("nothing was written; shrink the image or fix the region in the board profile")
    )]
    RegionTooSmall { path: PathBuf, len: u64, region: String, size: u64, offset: crate::profile::units::Addr },

    #[error("--recovery is for JH7110 boards; `{board}` has no ROM recovery path")]
    #[diagnostic(code(rvbuild::pipeline::no_recovery))]
    NoRecovery { board: String },

    #[error(
        "the nixpkgs provider needs nixpkgs, and <nixpkgs> is not on NIX_PATH here; the expression was written to {} and parses",
        expr.display()
    )]
    #[diagnostic(
        code(rvbuild::pipeline::no_nixpkgs),
        help("set NIX_PATH=nixpkgs=/path/to/nixpkgs, or use `--provider host`")
    )]
    NoNixpkgs { expr: PathBuf },

    #[error("board {board} has no qemu section")]
    #[diagnostic(
        code(rvbuild::pipeline::no_qemu_section),
        help("only boards with a `qemu:` section can be booted in QEMU")
    )]
    NoQemuSection { board: String },

    #[error("cannot encode the manifest: {0}")]
    #[diagnostic(code(rvbuild::pipeline::manifest_encoding))]
    ManifestEncoding(serde_json::Error),
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Error {
        let kind = match &e {
            PipelineError::NoNixpkgs { .. } => ErrorKind::Prerequisite,
            PipelineError::ManifestEncoding(_) => ErrorKind::Internal,
            _ => ErrorKind::Config,
        };
        Error::new(kind, e)
    }
}
