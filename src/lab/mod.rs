//! Exports for the test labs boards live in: a labgrid environment (`labgrid`) and a LAVA job
//! with its device dictionary (`lava`). Both come from the same facts of a board: how
//! `rvbuild flash` is called for it, its U-Boot prompt and boot command, its console speed and
//! the marker its init prints.

pub mod error;
pub mod labgrid;
pub mod lava;

use std::path::{Path, PathBuf};

use crate::Result;
use crate::profile::Board;
use crate::profile::board::FlashMethod;

pub use error::LabError;

/// U-Boot's command that runs the board's default boot (`bootcmd`: distro boot).
pub const BOOT_COMMAND: &str = "boot";
/// What U-Boot prints while counting down to autoboot.
pub const AUTOBOOT: &str = "stop autoboot";
/// The boot timeout of boards without a QEMU section.
const DEFAULT_BOOT_TIMEOUT_S: u64 = 300;

/// One file `rvbuild flash` takes for a board: its option and the flash region it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashImage {
    /// The `rvbuild flash` option without dashes: `image`, `spl` or `fit`.
    pub option: String,
    /// The flash region's name in the board profile.
    pub region: String,
    /// The build's file for the region (`disk.img`, `u-boot.itb`, ...).
    pub file: String,
}

/// What a lab needs to know of a board.
#[derive(Debug, Clone)]
pub struct Facts {
    pub board: String,
    pub baud: u32,
    /// U-Boot's prompt.
    pub prompt: String,
    pub marker: String,
    /// Seconds from the boot command to the marker.
    pub boot_timeout: u64,
    /// Bytes the flash writes at most (the regions' sizes), for the flash's time budget.
    pub flash_bytes: u64,
    pub images: Vec<FlashImage>,
    /// The project directory the board file came from (`--project` of the commands the lab
    /// runs); None for a board shipped with rvbuild.
    pub project: Option<PathBuf>,
}

/// The lab facts of `board` (from `project`, or shipped when None); boards that cannot be
/// flashed over serial are refused.
pub fn facts(board: &Board, project: Option<PathBuf>) -> Result<Facts> {
    let name = board.name.value.clone();
    if board.flash.method == FlashMethod::SdCard {
        return Err(LabError::SdCardOnly { board: name }.into());
    }
    let single = board.flash.regions.len() == 1;
    let mut images = Vec::new();
    for r in &board.flash.regions {
        let region = r.name.value.clone();
        let option = match region.as_str() {
            _ if single => "image",
            "spl" => "spl",
            "fit" => "fit",
            _ => return Err(LabError::UnnamedRegion { board: name, region }.into()),
        };
        images.push(FlashImage { option: option.to_string(), region, file: r.file.value.clone() });
    }
    Ok(Facts {
        board: name,
        baud: board.flash.baud,
        prompt: String::from_utf8_lossy(crate::flash::uboot::PROMPT).into_owned(),
        marker: board.marker.clone(),
        boot_timeout: board.qemu.as_ref().map(|q| q.timeout).unwrap_or(DEFAULT_BOOT_TIMEOUT_S),
        flash_bytes: board.flash.regions.iter().map(|r| r.size.value.0).sum(),
        images,
        project,
    })
}

impl Facts {
    /// `--project DIR ` for the rvbuild commands a lab runs, when the board is the project's.
    pub fn project_arg(&self) -> String {
        self.project.as_ref().map(|d| format!("--project {} ", d.display())).unwrap_or_default()
    }

    /// Seconds a flash of every region may take at the console's speed: 8N1 carries a byte
    /// per 10 bits; twice that for YMODEM's overhead, read-back and retries, plus 5 minutes.
    pub fn flash_timeout(&self) -> u64 {
        let bytes_per_s = (u64::from(self.baud) / 10).max(1);
        2 * self.flash_bytes / bytes_per_s + 300
    }
}

/// `dir/file` as an absolute path (relative to the current directory), for files named in an
/// export that other programs read from elsewhere.
pub fn absolute(dir: &Path, file: &str) -> PathBuf {
    let p = dir.join(file);
    if p.is_absolute() { p } else { std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p) }
}
