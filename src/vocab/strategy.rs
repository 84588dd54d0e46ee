//! Build strategies: how a component's derivation is made (cross, or a target-system
//! derivation run natively or emulated). The planner picks one per component; the engine,
//! the schedule and the manifest label with it what actually ran. Also `--split`: whether one
//! derivation's compile may be spread over the pool.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Cross compile on an x86_64 builder.
    Cross,
    /// Build as a target-system derivation on a native target host.
    Native,
    /// Build as a target-system derivation on a host emulating the target (binfmt qemu-user).
    Emulated,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Cross => "cross",
            Strategy::Native => "native",
            Strategy::Emulated => "emulated",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--split`: let the cost model decide, never split, or split whenever there are helpers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMode {
    #[default]
    Auto,
    Never,
    Always,
}

impl SplitMode {
    pub fn parse(s: &str) -> Option<SplitMode> {
        match s {
            "auto" => Some(SplitMode::Auto),
            "never" => Some(SplitMode::Never),
            "always" => Some(SplitMode::Always),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SplitMode::Auto => "auto",
            SplitMode::Never => "never",
            SplitMode::Always => "always",
        }
    }
}
