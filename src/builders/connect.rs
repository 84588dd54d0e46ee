//! From the pool to the engine: each [`Builder`] becomes an engine member, a transport to
//! reach it (the local child process, or SSH) and the scheduler's model of it (slots,
//! systems run natively or emulated, speed, features).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::inventory::{Builder, native_system};
use super::machines::Scheme;
use crate::engine::Member;
use crate::schedule::BuilderModel;
use crate::transport::{LocalTransport, Transport};
use crate::{Error, ErrorKind, Result};

/// Emulation slowdown assumed for a system no probe has measured (compilers under qemu-user
/// run roughly 5–25× slower; `rvbuild builders probe` replaces this with a measurement).
pub const ASSUMED_SLOWDOWN: f64 = 15.0;

/// Choices that affect how builders are reached.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Record unknown host keys in known_hosts instead of refusing them.
    pub accept_new_host_keys: bool,
}

/// The transport for one builder.
pub fn transport_for(b: &Builder, opts: &ConnectOptions) -> Result<Arc<dyn Transport>> {
    match b.scheme {
        Scheme::Local => Ok(Arc::new(LocalTransport::new())),
        Scheme::Ssh | Scheme::SshNg => {
            let _ = opts;
            Err(Error::msg(
                ErrorKind::NotImplemented,
                format!("builder {}: the SSH transport has not landed yet", b.name),
            ))
        }
    }
}

/// The scheduler's view of a builder from what the machines line says: the first system is
/// taken as native and the others as emulated (extra-platforms), as the local machine's
/// nix.conf `system` / `extra-platforms` say for `local`.
pub fn model_for(b: &Builder) -> BuilderModel {
    let local = b.scheme == Scheme::Local;
    let native: Vec<String> = if local {
        let sys = b.systems.first().cloned().unwrap_or_else(native_system);
        vec![sys]
    } else {
        b.systems.first().cloned().into_iter().collect()
    };
    let emulated: BTreeMap<String, f64> =
        b.systems.iter().filter(|s| !native.contains(s)).map(|s| (s.clone(), ASSUMED_SLOWDOWN)).collect();
    BuilderModel {
        name: b.name.clone(),
        slots: b.max_jobs,
        native_systems: native,
        emulated,
        speed: if b.speed > 0.0 { b.speed } else { 1.0 },
        supported_features: b.supported_features.clone(),
        mandatory_features: b.mandatory_features.clone(),
        local,
        link_bytes_per_s: if local { f64::INFINITY } else { 100e6 },
        dispatch_overhead_s: if local { 0.01 } else { 0.05 },
    }
}

/// Engine members for the whole pool.
pub fn members(pool: &[Builder], opts: &ConnectOptions) -> Result<Vec<Member>> {
    pool.iter().map(|b| Ok(Member { model: model_for(b), transport: transport_for(b, opts)? })).collect()
}
