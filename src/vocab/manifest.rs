//! The manifest: `manifest.json` in a board's output directory, the contract from the build
//! stage to verify, flash and qemu. It names every component's store paths and the artefacts
//! later stages use, by file name, and the board's flash plan with each region's file resolved.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Arch, Strategy};
use crate::{Error, ErrorKind, Result};

/// Where a board's toolchains and sources come from (`provider` of a build profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Debian's cross toolchains and sources on the build host (works offline).
    Host,
    /// nixpkgs' cross and native package sets (needs nixpkgs on NIX_PATH).
    Nixpkgs,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Host => "host",
            Provider::Nixpkgs => "nixpkgs",
        }
    }
}

/// How a board is flashed (`flash.method` of a board profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlashMethod {
    /// U-Boot `virtio write` (QEMU boards).
    UbootVirtio,
    /// U-Boot `sf` commands to SPI NOR.
    UbootSpiNor,
    /// U-Boot `mmc write` to an SD card or eMMC.
    UbootMmc,
    /// Nothing to flash over serial: copy the image to an SD card.
    SdCard,
}

impl FlashMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FlashMethod::UbootVirtio => "uboot-virtio",
            FlashMethod::UbootSpiNor => "uboot-spi-nor",
            FlashMethod::UbootMmc => "uboot-mmc",
            FlashMethod::SdCard => "sd-card",
        }
    }
}

/// One component in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub drv: String,
    pub outputs: Vec<String>,
    pub strategy: Strategy,
    pub host: String,
    pub seconds: f64,
    pub cached: bool,
    pub log: String,
}

/// `manifest.json` in the output directory: every component's store paths and the artefacts
/// later stages (verify, flash, qemu) use, by file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub rvbuild: String,
    pub board: String,
    pub profile: String,
    pub provider: Provider,
    pub arch: Arch,
    pub abi: String,
    pub marker: String,
    pub kernel_release: Option<String>,
    pub expression: String,
    pub components: BTreeMap<String, ComponentRecord>,
    pub artifacts: BTreeMap<String, String>,
    /// What `rvbuild flash` writes where, from the board's flash plan.
    #[serde(default)]
    pub flash: Option<FlashPlan>,
}

/// The board's flash plan with each region's file resolved to its artefact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlashPlan {
    pub method: FlashMethod,
    pub baud: u32,
    pub recovery: Option<String>,
    pub device_size: Option<u64>,
    pub regions: Vec<FlashRegionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlashRegionRecord {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub file: String,
    /// The artefact's path, when the build produced it.
    pub path: Option<String>,
}

impl Manifest {
    pub fn load(out_dir: &Path) -> Result<Manifest> {
        let p = out_dir.join("manifest.json");
        let text = fs::read_to_string(&p).map_err(|e| {
            Error::with_help(
                ErrorKind::Config,
                format!("cannot read {}: {e}", p.display()),
                "build the board first with `rvbuild board BOARD`",
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::msg(ErrorKind::Config, format!("{}: not an rvbuild manifest: {e}", p.display())))
    }

    /// The store path of an artefact, checked to exist.
    pub fn artifact(&self, name: &str) -> Result<PathBuf> {
        let p = self.artifacts.get(name).map(PathBuf::from).ok_or_else(|| {
            Error::msg(ErrorKind::Config, format!("the build of {} has no artefact `{name}`", self.board))
        })?;
        if !p.exists() {
            return Err(Error::with_help(
                ErrorKind::Config,
                format!("artefact {} is gone (garbage-collected?)", p.display()),
                "rebuild with `rvbuild board`",
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_serialise_as_the_strings_of_before() {
        let plan =
            FlashPlan { method: FlashMethod::UbootSpiNor, baud: 1, recovery: None, device_size: None, regions: vec![] };
        let v = serde_json::to_value(&plan).expect("json");
        assert_eq!(v["method"], "uboot-spi-nor");
        for m in [FlashMethod::UbootVirtio, FlashMethod::UbootSpiNor, FlashMethod::UbootMmc, FlashMethod::SdCard] {
            assert_eq!(serde_json::to_value(m).expect("json"), m.as_str());
        }
        for p in [Provider::Host, Provider::Nixpkgs] {
            assert_eq!(serde_json::to_value(p).expect("json"), p.as_str());
        }
        for s in [Strategy::Cross, Strategy::Native, Strategy::Emulated] {
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
        let rec: ComponentRecord = serde_json::from_str(
            r#"{"drv":"d","outputs":[],"strategy":"emulated","host":"h","seconds":1.0,"cached":false,"log":"l"}"#,
        )
        .expect("record");
        assert_eq!(rec.strategy, Strategy::Emulated);
    }
}
