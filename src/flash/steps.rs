//! The vocabulary of a flash plan: where an image goes ([`Target`]), one image's step, the
//! options of a run and what it reports.

use std::path::PathBuf;

use super::boot::{BootCheck, BootOutcome};
use super::uboot::ConsoleOptions;

/// Where an image goes on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// SPI NOR flash through `sf`: byte offset and the size of the region reserved for it.
    SpiNor { offset: u64, size_limit: u64 },
    /// An MMC/SD device through `mmc`, at a byte offset (a multiple of 512).
    Mmc { dev: u32, byte_offset: u64 },
    /// A virtio block device through `virtio` (the QEMU boards), at a byte offset.
    Virtio { dev: u32, byte_offset: u64 },
}

/// One image to put on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashStep {
    /// A short name for messages, e.g. `spl` or `disk`.
    pub name: String,
    pub file: PathBuf,
    pub target: Target,
}

/// How to drive the board.
#[derive(Debug, Clone)]
pub struct FlashOptions {
    pub console: ConsoleOptions,
    /// Bytes loaded and written per round; must fit the board's RAM twice (load + read-back).
    pub chunk: u64,
    /// Load address; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    pub load_addr: Option<u64>,
    /// Read-back address; default: load address + chunk.
    pub scratch_addr: Option<u64>,
    /// Run `loady` at this speed, switching back to `console_baud` after each transfer.
    pub transfer_baud: Option<u32>,
    pub console_baud: u32,
    /// Skip the chunks an earlier run proved (block devices; see `resume`).
    pub resume: bool,
    /// Start the board after the last step and watch for its marker.
    pub boot: Option<BootCheck>,
    /// U-Boot commands run once at the prompt before anything else (the board's
    /// `flash.console-setup`).
    pub setup: Vec<String>,
}

impl Default for FlashOptions {
    fn default() -> Self {
        FlashOptions {
            console: ConsoleOptions::default(),
            chunk: 4 << 20,
            load_addr: None,
            scratch_addr: None,
            transfer_baud: None,
            console_baud: 115_200,
            resume: false,
            boot: None,
            setup: Vec::new(),
        }
    }
}

/// What was written and proven.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepReport {
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
    pub chunks: u32,
    /// Payload bytes this run sent for the step (compressed where gzwrite took them).
    pub sent_bytes: u64,
    /// Chunks that were all zeros (nothing sent).
    pub zero_chunks: u32,
    /// Chunks an earlier run proved, re-proven by read-back and not sent again.
    pub resumed_chunks: u32,
    /// The progress file `--resume` reads.
    pub progress_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlashReport {
    pub steps: Vec<StepReport>,
    /// Seconds from attaching to the last proof (the boot check excluded).
    pub seconds: f64,
    /// Bytes sent to the board on the line, commands and protocol framing included.
    pub wire_bytes: u64,
    /// The boot check, when asked for.
    pub boot: Option<BootOutcome>,
}
