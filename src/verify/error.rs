//! The errors of the verify stage that end a command (bad `--arch`, a board verify cannot
//! check, a refusal to flash), typed, with a diagnostic code per variant. Problems with one
//! file are findings of the report, not errors.

use std::io;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// Something went wrong in the verify stage.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum VerifyError {
    #[error("--arch: unknown architecture `{name}`")]
    #[diagnostic(code(rvbuild::verify::unknown_arch), help("known architectures: {known}"))]
    UnknownArch { name: String, known: String },

    #[error("--arch: `{value}` is not an ABI of {arch}")]
    #[diagnostic(code(rvbuild::verify::unknown_abi))]
    UnknownAbi {
        value: String,
        arch: &'static str,
        /// The ABIs of the architecture.
        #[help]
        abis: String,
    },

    #[error("--arch: rvc must be yes or no, not `{value}`")]
    #[diagnostic(code(rvbuild::verify::bad_rvc))]
    BadRvc { value: String },

    #[error("--arch: unknown option `{part}` in `{spec}`")]
    #[diagnostic(code(rvbuild::verify::unknown_option), help("options are abi=ABI and, for RISC-V, rvc=yes|no"))]
    UnknownOption { part: String, spec: String },

    #[error("board {board}: ABI `{abi}` is not known to verify")]
    #[diagnostic(code(rvbuild::verify::board_abi))]
    BoardAbi { board: String, abi: String },

    #[error("{path}: {source}")]
    #[diagnostic(code(rvbuild::verify::kernel_config))]
    KernelConfig { path: String, source: io::Error },

    #[error(
        "refusing to flash: {mismatched} output file(s) do not match {arch} {abi}, {unreadable} could not be read:\n{}",
        findings.join("\n")
    )]
    #[diagnostic(
        code(rvbuild::verify::refused),
        help("rebuild the listed files for the board, or run `rvbuild verify --board BOARD PATH` for the full report")
    )]
    Refused { mismatched: usize, arch: &'static str, abi: String, unreadable: usize, findings: Vec<String> },
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Error {
        use VerifyError::*;
        let kind = match &e {
            UnknownArch { .. } | UnknownAbi { .. } | BadRvc { .. } | UnknownOption { .. } | BoardAbi { .. } => {
                ErrorKind::Config
            }
            KernelConfig { .. } | Refused { .. } => ErrorKind::Verify,
        };
        Error::new(kind, e)
    }
}
