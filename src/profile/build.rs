//! The build profile model (profiles/*.yaml): toolchain provider, builder pool, strategy policy,
//! parallelism and config overlays applied on top of a board.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::board::Sp;

pub use crate::vocab::manifest::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyPolicy {
    Auto,
    PreferCross,
    PreferNative,
}

pub use crate::vocab::Strategy;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildProfile {
    pub name: Sp<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_provider")]
    pub provider: Provider,
    #[serde(default)]
    pub builders: Builders,
    #[serde(default)]
    pub strategy: StrategyConfig,
    #[serde(default)]
    pub parallelism: Parallelism,
    #[serde(default)]
    pub overlays: Overlays,
    /// Keep build logs of every derivation in the output directory.
    #[serde(default = "yes")]
    pub keep_logs: bool,
}

fn default_provider() -> Provider {
    Provider::Host
}
fn yes() -> bool {
    true
}

pub use crate::builders::{LocalJobs, ProfileBuilders as Builders};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StrategyConfig {
    #[serde(default = "default_policy")]
    pub policy: StrategyPolicy,
    /// Per-component overrides: component name (kernel, init, module-NAME, ...) -> strategy.
    #[serde(default)]
    pub overrides: BTreeMap<String, Sp<Strategy>>,
    /// Spread the kernel's compile over the pool with distcc: auto (when the cost model
    /// predicts a gain), never, always. `--split` wins.
    #[serde(default)]
    pub split: crate::vocab::SplitMode,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig { policy: default_policy(), overrides: BTreeMap::new(), split: Default::default() }
    }
}

fn default_policy() -> StrategyPolicy {
    StrategyPolicy::Auto
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Parallelism {
    /// Derivations built at once locally (Nix max-jobs); 0 = Nix's default.
    #[serde(default)]
    pub max_jobs: u32,
    /// Cores per derivation (Nix `cores`); 0 = all.
    #[serde(default)]
    pub cores: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Overlays {
    /// Extra kernel options applied to every board built with this profile.
    #[serde(default)]
    pub kernel_config: BTreeMap<String, Sp<String>>,
    /// Extra kernel command line words.
    #[serde(default)]
    pub cmdline: Option<String>,
}
