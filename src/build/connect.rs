//! From the pool to the engine: each [`Builder`] becomes an engine member, a transport to
//! reach it (the local child process, or SSH) and the scheduler's model of it (slots,
//! systems run natively or emulated, speed, features).

use std::sync::Arc;

use crate::Result;
use crate::build::Member;
use crate::builders::inventory::Builder;
use crate::builders::machines::Scheme;
use crate::builders::model::{ModelPolicy, builder_model};
use crate::profile::Arch;
use crate::schedule::BuilderModel;
use crate::transport::Transport;
use crate::transport::ssh::SshOptions;

/// Choices that affect how builders are reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Record unknown host keys in known_hosts instead of refusing them.
    pub accept_new_host_keys: bool,
}

/// The transport for one builder: the local child process, or SSH.
pub fn transport_for(b: &Builder, opts: &ConnectOptions) -> Result<Arc<dyn Transport>> {
    let ssh = SshOptions { accept_new_host_keys: opts.accept_new_host_keys, ..SshOptions::default() };
    crate::transport::for_builder(b, &ssh)
}

/// Engine members for the whole pool.
/// The scheduler's models of the pool: each builder's machines line and its cached probe
/// (`rvbuild builders probe`), if any.
pub fn models(pool: &[Builder]) -> Vec<BuilderModel> {
    let cache = crate::builders::probe_cache::load_cache();
    let now = crate::builders::probe_cache::now_unix();
    let policy = ModelPolicy::default();
    let local_userlands: Vec<String> = Arch::BOARD
        .iter()
        .copied()
        .filter_map(|a| crate::builders::userland::find(a).ok())
        .map(|u| crate::builders::userland::feature(&u.id))
        .collect();
    pool.iter()
        .map(|b| {
            let probe = cache.get(b);
            let mut model = builder_model(b, probe, &policy, now).model;
            // Which target-system userlands it has: the local machine's own, a remote's as probed.
            let userlands: Vec<String> = match (b.scheme, probe) {
                (Scheme::Local, _) => local_userlands.clone(),
                (_, Some(p)) => p.userlands.values().map(|id| crate::builders::userland::feature(id)).collect(),
                (_, None) => Vec::new(),
            };
            for f in userlands {
                if !model.supported_features.contains(&f) {
                    model.supported_features.push(f);
                }
            }
            model
        })
        .collect()
}

/// Engine members for the whole pool: models and transports.
pub fn members(pool: &[Builder], opts: &ConnectOptions) -> Result<Vec<Member>> {
    pool.iter().zip(models(pool)).map(|(b, model)| Ok(Member { model, transport: transport_for(b, opts)? })).collect()
}
