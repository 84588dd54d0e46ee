//! Why a board cannot be exported to a test lab.

use miette::Diagnostic;

use crate::{Error, ErrorKind};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LabError {
    #[error(
        "{board} boots from an SD card only: rvbuild cannot flash it over a serial console, so a lab has no flash step to run"
    )]
    #[diagnostic(
        code(rvbuild::lab::sd_card_only),
        help(
            "write disk.img of `rvbuild board {board}` to the card (dd, bmaptool or an SD mux), and use `rvbuild monitor {board} --until` as the lab's console check"
        )
    )]
    SdCardOnly { board: String },

    #[error(
        "{board}: flash region `{region}` has no command-line option of `rvbuild flash` (only a single region, `spl` and `fit` have one)"
    )]
    #[diagnostic(code(rvbuild::lab::unnamed_region), help("flash this board with `rvbuild flash` directly"))]
    UnnamedRegion { board: String, region: String },

    #[error("cannot write the {what}: {source}")]
    #[diagnostic(code(rvbuild::lab::serialize))]
    Serialize { what: &'static str, source: serde_saphyr::SerializeError },
}

impl From<LabError> for Error {
    fn from(e: LabError) -> Error {
        let kind = match &e {
            LabError::SdCardOnly { .. } | LabError::UnnamedRegion { .. } => ErrorKind::Config,
            LabError::Serialize { .. } => ErrorKind::Internal,
        };
        Error::new(kind, e)
    }
}
