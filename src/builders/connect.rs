//! Picking the transport for a builder: the local child process, or SSH for remote hosts.

use std::sync::Arc;

use super::Builder;
use super::machines::Scheme;
use crate::transport::{LocalTransport, Transport};
use crate::{Error, ErrorKind, Result};

/// How to connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Accept (and remember) the host key of a host with none known, instead of refusing it.
    pub accept_new_host_keys: bool,
}

/// The transport that reaches `builder`.
pub fn transport_for(builder: &Builder, opts: &ConnectOptions) -> Result<Arc<dyn Transport>> {
    let _ = opts;
    match builder.scheme {
        Scheme::Local => Ok(Arc::new(LocalTransport::new())),
        _ => Err(Error::with_help(
            ErrorKind::Builder,
            format!("{}: SSH transport not available yet", builder.name),
            "probe the local machine only for now (`rvbuild builders probe local`)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::probe::test_builder;

    #[test]
    fn local_builder_gets_the_local_transport() {
        let mut b = test_builder("local", Scheme::Local);
        assert!(transport_for(&b, &ConnectOptions::default()).is_ok_and(|t| t.label() == "local"));
        b.scheme = Scheme::Ssh;
        let e = transport_for(&b, &ConnectOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("SSH transport not available yet"), "{e}");
    }
}
