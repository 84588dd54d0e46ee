//! The builder-pool options shared by `build`, `board`, `plan` and `builders`: which
//! machines, which of them, how many local slots, host key policy.

use crate::Result;
use crate::builders::Builder;
use crate::builders::inventory::{self, PoolOptions, Sources};

use super::Context;
use crate::profile::build::LocalJobs;

#[derive(Debug, Default, Clone, clap::Args)]
pub struct PoolArgs {
    /// Machines lines replacing the profile's and Nix's (`'ssh://host sys key jobs speed feats mand hostkey ; ...'`
    /// or `@FILE`), same syntax as Nix.
    #[arg(long, value_name = "SPEC")]
    pub builders: Option<String>,
    /// Use only these builders: names, hosts or `tag:T` (comma-separated or repeated).
    #[arg(long, value_name = "HOST|tag:T,...")]
    pub only: Vec<String>,
    /// Leave these builders out: names, hosts or `tag:T`.
    #[arg(long, value_name = "HOST|tag:T,...")]
    pub exclude: Vec<String>,
    /// Build slots on this machine: a number (0 = the local machine does not build) or `auto` (= cores).
    #[arg(long, value_name = "N|auto", value_parser = parse_local_jobs)]
    pub local_jobs: Option<LocalJobs>,
    /// Record the host keys of builders not in known_hosts (never replaces a known key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

impl PoolArgs {
    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            builders: self.builders.clone(),
            only: inventory::split_selectors(&self.only),
            exclude: inventory::split_selectors(&self.exclude),
            local_jobs: self.local_jobs,
        }
    }
}

pub fn parse_local_jobs(s: &str) -> std::result::Result<LocalJobs, String> {
    if s == "auto" {
        return Ok(LocalJobs::Auto);
    }
    s.parse::<u32>().map(LocalJobs::Count).map_err(|_| format!("`{s}` is neither `auto` nor a number of build slots"))
}

/// The pool the options select.
pub fn load_pool(ctx: &Context, a: &PoolArgs, profile: Option<&str>) -> Result<Vec<Builder>> {
    let loaded = match profile {
        Some(p) => Some(crate::profile::load_profile(&ctx.project_dir(), p)?),
        None => None,
    };
    let opts = a.pool_options();
    let profile = loaded.as_ref().map(|l| (&l.value.builders, l.source.name.as_str()));
    inventory::load_pool(profile, &opts, &Sources::from_env())
}

/// The pool and the output form of `builders list` and `builders probe`.
#[derive(Debug, Default, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Build profile whose builders to use (default: Nix's machines and the local machine).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// One JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}
