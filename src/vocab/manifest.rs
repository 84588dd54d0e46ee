//! The manifest: `manifest.json` in a board's output directory, the contract from the build
//! stage to verify, flash and qemu. It names every component's store paths and the artefacts
//! later stages use, by file name, and the board's flash plan with each region's file resolved.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
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
    /// How its compile was spread over the pool (`--split`), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitReport>,
}

/// How a split went: recorded in the manifest per component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitReport {
    /// The host the derivation ran on (it compiles too, as distcc's `localhost`).
    pub owner: String,
    /// Compile jobs each helper's distccd reported done (`COMPILE_OK`), by host.
    pub jobs: BTreeMap<String, u32>,
    /// Jobs per helper that did not complete there (helper lost, timed out): distcc compiled
    /// them on the owner.
    pub failed: BTreeMap<String, u32>,
    /// Hosts left out, with the reason.
    pub excluded: BTreeMap<String, String>,
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

/// A manifest that cannot be read, or an artefact it does not name or that is gone.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(code(rvbuild::manifest::cannot_read), help("build the board first with `rvbuild board BOARD`"))]
    CannotRead { path: PathBuf, source: std::io::Error },

    #[error("{}: not an rvbuild manifest: {source}", path.display())]
    #[diagnostic(code(rvbuild::manifest::not_a_manifest))]
    NotAManifest { path: PathBuf, source: serde_json::Error },

    #[error("the build of {board} has no artefact `{name}`")]
    #[diagnostic(code(rvbuild::manifest::no_such_artifact))]
    NoSuchArtifact { board: String, name: String },

    #[error("artefact {} is gone (garbage-collected?)", path.display())]
    #[diagnostic(code(rvbuild::manifest::artifact_gone), help("rebuild with `rvbuild board`"))]
    ArtifactGone { path: PathBuf },
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Error {
        // Each is a problem with the output directory the user pointed at.
        Error::new(ErrorKind::Config, e)
    }
}

impl Manifest {
    pub fn load(out_dir: &Path) -> Result<Manifest> {
        let p = out_dir.join("manifest.json");
        let text = fs::read_to_string(&p).map_err(|source| ManifestError::CannotRead { path: p.clone(), source })?;
        Ok(serde_json::from_str(&text).map_err(|source| ManifestError::NotAManifest { path: p, source })?)
    }

    /// The store path of an artefact, checked to exist.
    pub fn artifact(&self, name: &str) -> Result<PathBuf> {
        let p = self
            .artifacts
            .get(name)
            .map(PathBuf::from)
            .ok_or_else(|| ManifestError::NoSuchArtifact { board: self.board.clone(), name: name.to_string() })?;
        if !p.exists() {
            return Err(ManifestError::ArtifactGone { path: p }.into());
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

    #[test]
    fn a_missing_manifest_keeps_its_text_help_class_and_code() {
        let dir = std::env::temp_dir().join(format!("rvbuild-no-manifest-{}", std::process::id()));
        let e = Manifest::load(&dir).expect_err("no manifest there");
        assert_eq!(e.kind(), ErrorKind::Config);
        let text = e.to_string();
        assert!(text.starts_with(&format!("cannot read {}: ", dir.join("manifest.json").display())), "{text}");
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some("build the board first with `rvbuild board BOARD`")
        );
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::manifest::cannot_read"));
    }
}
