//! The manifest of a board build, filled in from the build: each component's record, the
//! artefacts later stages use by file name, and the flash plan with each region's file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::profile::{self, Provider, resolve};
use crate::verify::walk::files_below;
use crate::vocab::Strategy;
use crate::vocab::manifest::{FlashPlan, FlashRegionRecord, Manifest};

/// What a strategy becomes on this machine: cross stays cross; a target-system derivation runs
/// natively on a machine of the target's architecture and emulated anywhere else.
pub(crate) fn placed_locally(strategy: Strategy, arch: profile::Arch) -> Strategy {
    match strategy {
        Strategy::Cross => Strategy::Cross,
        _ if arch.nix_system() == format!("{}-linux", std::env::consts::ARCH) => Strategy::Native,
        _ => Strategy::Emulated,
    }
}

pub(crate) fn skeleton(spec: &resolve::BuildSpec, provider: Provider, expr: &Path) -> Manifest {
    Manifest {
        rvbuild: env!("CARGO_PKG_VERSION").to_string(),
        board: spec.board.clone(),
        profile: spec.profile.clone(),
        provider,
        arch: spec.arch,
        abi: spec.abi.clone(),
        marker: spec.marker.clone(),
        kernel_release: None,
        expression: expr.to_string_lossy().into_owned(),
        components: BTreeMap::new(),
        artifacts: BTreeMap::new(),
        flash: None,
    }
}

/// The board's flash plan with each region's file resolved to the build's artefact (none
/// without a build).
pub(crate) fn flash_plan(b: &crate::profile::Board, m: Option<&Manifest>) -> FlashPlan {
    FlashPlan {
        method: b.flash.method,
        baud: b.flash.baud,
        recovery: b.flash.recovery.clone(),
        device_size: b.flash.device_size.as_ref().map(|s| s.value.0),
        regions: b
            .flash
            .regions
            .iter()
            .map(|r| FlashRegionRecord {
                name: r.name.value.clone(),
                offset: r.offset.value.0,
                size: r.size.value.0,
                file: r.file.value.clone(),
                path: m.and_then(|m| m.artifacts.get(&r.file.value).cloned()),
            })
            .collect(),
    }
}

/// Names the artefacts later stages use: the disk image, boot files, firmware files, modules.
pub(crate) fn collect_artifacts(m: &mut Manifest) {
    let pick = |m: &Manifest, comp: &str| m.components.get(comp).and_then(|c| c.outputs.first()).map(PathBuf::from);
    let mut arts = BTreeMap::new();
    for comp in ["image", "bootfiles", "firmware"] {
        if let Some(root) = pick(m, comp) {
            for (rel, abs) in files_below(&root) {
                arts.insert(rel, abs.to_string_lossy().into_owned());
            }
        }
    }
    for (c, rec) in &m.components {
        if c.starts_with("module-")
            && let Some(root) = rec.outputs.first()
        {
            for (rel, abs) in files_below(Path::new(root)) {
                if rel.ends_with(".ko") {
                    arts.insert(rel, abs.to_string_lossy().into_owned());
                }
            }
        }
    }
    if let Some(k) = pick(m, "kernel") {
        m.kernel_release = fs::read_to_string(k.join("kernel.release")).ok().map(|s| s.trim().to_string());
        for f in ["Image", "Image.gz", "config", "System.map"] {
            arts.insert(format!("kernel/{f}"), k.join(f).to_string_lossy().into_owned());
        }
    }
    m.artifacts = arts;
}
