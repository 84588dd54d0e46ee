//! What a board command asks of the pipeline: the board, the profile, the provider, the pool
//! and the overrides, and where the output goes.

use std::path::PathBuf;

use crate::build::connect::ConnectOptions;
use crate::builders::inventory::PoolOptions;
use crate::profile::{self, Provider};

/// What a board build was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub project: PathBuf,
    pub board: String,
    pub profile: String,
    pub provider: Option<Provider>,
    pub out_dir: Option<PathBuf>,
    /// Write and check the expression, build nothing.
    pub expr_only: bool,
    /// Local build slots (0 = the pool's `local-jobs`, by default one per CPU).
    pub jobs: usize,
    /// Which builders (`--builders`, `--only`, `--exclude`, `--local-jobs`).
    pub pool: PoolOptions,
    pub connect: ConnectOptions,
    /// `--strategy COMPONENT=STRATEGY` overrides (component or group name), over the profile's.
    pub strategies: Vec<(String, profile::Strategy)>,
    /// Also predict the schedule, to compare with the measured one (`--gantt`).
    pub predict: bool,
    /// `--split`: spread the kernel's compile over the pool (auto: when the cost model
    /// predicts a gain); None = the profile's `strategy.split`, else auto.
    pub split: Option<crate::vocab::SplitMode>,
}

/// The default output directory of a board: `./result-<board>`.
pub(crate) fn default_out_dir(board: &str) -> PathBuf {
    PathBuf::from(format!("result-{board}"))
}
