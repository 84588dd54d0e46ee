//! The errors of a monitor session: a missing port, a marker that never came, a port that went
//! away mid-run, a log that cannot be written.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum MonitorError {
    #[error("serial port {path} does not exist")]
    #[diagnostic(
        code(rvbuild::monitor::no_such_port),
        help(
            "plug in the board's serial adapter or check the port name; `rvbuild serial list` shows the ports present"
        )
    )]
    NoSuchPort { path: String },

    #[error(
        "`{marker}` did not appear on {port} within {secs} s ({bytes} bytes received); the console's last lines:\n{tail}"
    )]
    #[diagnostic(
        code(rvbuild::monitor::no_marker),
        help("the board did not get there: read the console above (and --log), or give it more time with --timeout")
    )]
    NoMarker { marker: String, port: String, secs: u64, bytes: u64, tail: String },

    #[error("serial port {port} vanished after {bytes} bytes ({source}); the console's last lines:\n{tail}")]
    #[diagnostic(
        code(rvbuild::monitor::port_vanished),
        help("the adapter was unplugged or the other end closed the line; everything received is in the --log file")
    )]
    Vanished { port: String, bytes: u64, tail: String, source: io::Error },

    #[error("cannot write the console log {}: {source}", path.display())]
    #[diagnostic(code(rvbuild::monitor::log), help("check that the log's directory exists and is writable"))]
    Log { path: PathBuf, source: io::Error },

    #[error("cannot write the console to the terminal: {source}")]
    #[diagnostic(code(rvbuild::monitor::output))]
    Output { source: io::Error },
}

impl From<MonitorError> for Error {
    fn from(e: MonitorError) -> Error {
        let kind = match &e {
            MonitorError::NoSuchPort { .. } => ErrorKind::Prerequisite,
            MonitorError::NoMarker { .. } => ErrorKind::Boot,
            MonitorError::Vanished { .. } => ErrorKind::SerialLine,
            MonitorError::Log { .. } => ErrorKind::Config,
            MonitorError::Output { .. } => ErrorKind::Internal,
        };
        Error::new(kind, e)
    }
}
