//! `flash` through the pipeline: the steps come from the flash plan the build recorded in the
//! manifest (each region with the artefact it takes), files given on the command line replace
//! a region's artefact; the build's outputs are verified before the port opens; JH7110 boards
//! may come up from the boot ROM first; every region is written and read back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::Result;
use crate::flash::boot::BootCheck;
use crate::flash::error::FlashError;
use crate::flash::plan::{FlashOptions, FlashReport, FlashStep, Target};
use crate::flash::{port, recovery};
use crate::profile::board::FlashMethod;
use crate::profile::{self, Board};
use crate::vocab::manifest::{FlashPlan, FlashRegionRecord};
use crate::vocab::{Event, Manifest, Reporter};

use super::default_out_dir;
use super::error::PipelineError;

/// Seconds to wait for the U-Boot prompt (or the boot ROM) unless asked otherwise.
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 60;
/// Bytes per load/write/verify round unless asked otherwise (must fit the board's RAM twice).
pub(crate) const DEFAULT_CHUNK: u64 = 4 << 20;
/// Seconds `--boot` waits for the marker on boards without a qemu timeout.
pub(crate) const DEFAULT_BOOT_TIMEOUT_S: u64 = 300;

/// What to flash, where and how. [`FlashRequest::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct FlashRequest {
    pub project: PathBuf,
    pub board: String,
    /// Build output directory whose manifest says what goes where (default: ./result-BOARD).
    pub out_dir: Option<PathBuf>,
    /// Serial port, `auto`, or None for the single USB serial adapter.
    pub port: Option<String>,
    /// Files for regions by region name (`spl`, `fit`, `disk`), over the build's artefacts.
    pub files: Vec<(String, PathBuf)>,
    /// The image for the board's only region (or its `disk.img` region, or its `fit`).
    pub image: Option<PathBuf>,
    /// Console baud rate (default: the board's).
    pub baud: Option<u32>,
    /// Switch to this baud rate for each `loady` transfer (and back afterwards).
    pub transfer_baud: Option<u32>,
    /// JH7110: boot from the ROM's UART mode first.
    pub recovery: bool,
    /// How long to wait for the U-Boot prompt (or the boot ROM).
    pub timeout: Duration,
    /// Bytes per load/write/verify round.
    pub chunk: u64,
    /// RAM address to load to; default: U-Boot's `loadaddr`, else `kernel_addr_r`.
    pub load_addr: Option<u64>,
    /// The caller has just verified these outputs (`rvbuild board --flash`).
    pub already_verified: bool,
    /// Skip the chunks an earlier, interrupted flash of the same image proved.
    pub resume: bool,
    /// After the last chunk, run this U-Boot command (`boot`, `reset`) and wait for the marker.
    pub boot: Option<String>,
    /// How long to wait for the marker (default: the board's qemu timeout, else 300 s).
    pub boot_timeout: Option<Duration>,
}

impl FlashRequest {
    /// Flash `board` from its default output directory with the default settings.
    pub fn new(project: PathBuf, board: impl Into<String>) -> Self {
        FlashRequest {
            project,
            board: board.into(),
            out_dir: None,
            port: None,
            files: Vec::new(),
            image: None,
            baud: None,
            transfer_baud: None,
            recovery: false,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
            chunk: DEFAULT_CHUNK,
            load_addr: None,
            already_verified: false,
            resume: false,
            boot: None,
            boot_timeout: None,
        }
    }
}

/// The flash plan to follow: the manifest's when the board was built, else the board's own
/// (every region's file must then come from the request).
fn flash_plan(board: &Board, manifest: Option<&Manifest>) -> FlashPlan {
    match manifest.and_then(|m| m.flash.clone()) {
        Some(plan) => plan,
        None => super::manifest::flash_plan(board, None),
    }
}

/// The file for one region: the request's, else the build's artefact.
fn region_file(r: &FlashRegionRecord, single: bool, req: &FlashRequest) -> Option<PathBuf> {
    let named = req.files.iter().find(|(name, _)| *name == r.name).map(|(_, p)| p.clone());
    let image = req.image.clone().filter(|_| single || r.file == "disk.img" || r.name == "fit");
    named.or(image).or_else(|| r.path.as_ref().map(PathBuf::from))
}

/// A board's flash steps from its flash plan: each region's file, checked to fit the region.
pub(crate) fn flash_steps(board: &Board, manifest: Option<&Manifest>, req: &FlashRequest) -> Result<Vec<FlashStep>> {
    let name = &board.name.value;
    let plan = flash_plan(board, manifest);
    let method = plan.method;
    if method == FlashMethod::SdCard {
        return Err(PipelineError::SdCardBoard { board: name.clone() }.into());
    }
    let single = plan.regions.len() == 1;
    let mut steps = Vec::new();
    for r in &plan.regions {
        let path = region_file(r, single, req).ok_or_else(|| PipelineError::NoRegionFile {
            board: name.clone(),
            region: r.name.clone(),
            file: r.file.clone(),
        })?;
        let len = std::fs::metadata(&path)
            .map_err(|source| PipelineError::UnreadableImage { path: path.clone(), source })?
            .len();
        if len > r.size {
            let offset = crate::profile::units::Addr(r.offset);
            return Err(
                PipelineError::RegionTooSmall { path, len, region: r.name.clone(), size: r.size, offset }.into()
            );
        }
        let target = match method {
            FlashMethod::UbootVirtio => Target::Virtio { dev: 0, byte_offset: r.offset },
            FlashMethod::UbootMmc => Target::Mmc { dev: 0, byte_offset: r.offset },
            FlashMethod::UbootSpiNor => Target::SpiNor { offset: r.offset, size_limit: r.size },
            FlashMethod::SdCard => return Err(PipelineError::SdCardBoard { board: name.clone() }.into()),
        };
        steps.push(FlashStep { name: r.name.clone(), file: path, target });
    }
    Ok(steps)
}

/// Verifies the files the steps send (disk images, FITs and SPLs opened) against the board;
/// refuses on any finding, or when none of them carries code that could be checked.
fn verify_sent(board: &Board, manifest: Option<&Manifest>, steps: &[FlashStep], reporter: &dyn Reporter) -> Result<()> {
    let exp = crate::verify::board::expectation(board, manifest)?;
    let files: Vec<PathBuf> = steps.iter().map(|s| s.file.clone()).collect();
    let result = crate::verify::check_before_flash(&files, &exp);
    let names = steps.iter().map(|s| format!("{} ({})", s.name, s.file.display())).collect::<Vec<_>>().join(", ");
    reporter.event(&Event::Verify {
        target: board.name.value.clone(),
        ok: result.is_ok(),
        checked: result.as_ref().map_or(0, |r| r.checked),
        mismatched: result.as_ref().map_or(0, |r| r.mismatched),
        skipped: result.as_ref().map_or(0, |r| r.skipped),
        detail: match &result {
            Ok(r) => format!("files to flash: {names}: {} checked inside them, all match", r.checked),
            Err(e) => e.to_string(),
        },
    });
    result.map(|_| ())
}

/// A finished flash: the board and what was written.
pub struct Flashed {
    pub board: String,
    pub report: FlashReport,
    /// The console's baud rate (the line's raw rate is a tenth of it in bytes per second).
    pub line_baud: u32,
}

/// Flashes the board: plan, verify, preflight, optional ROM recovery, then each region with
/// CRC read-back. Every step is reported as a `flash` event.
pub fn flash(req: &FlashRequest, reporter: &dyn Reporter) -> Result<Flashed> {
    let loaded = profile::load_board(&req.project, &req.board)?;
    let board = &loaded.value;
    let out_dir = req.out_dir.clone().unwrap_or_else(|| default_out_dir(&board.name.value));
    let manifest = if out_dir.join("manifest.json").is_file() { Some(Manifest::load(&out_dir)?) } else { None };
    let steps = flash_steps(board, manifest.as_ref(), req)?;
    // Nothing is written when the build's outputs fail verification: checked before the port opens.
    if let Some(m) = manifest.as_ref().filter(|_| !req.already_verified) {
        super::verify_outputs(board, m, reporter)?;
    }
    let rom_recovery = board.flash.recovery.as_deref() == Some("jh7110-uart");
    if req.recovery && !rom_recovery {
        return Err(PipelineError::NoRecovery { board: req.board.clone() }.into());
    }
    // Preflight before touching the port: files readable, sizes fit, SPL header valid.
    crate::flash::plan::read_images(&steps)?;
    let jh7110_files = match steps.as_slice() {
        [spl, fit] if rom_recovery => Some((spl.file.clone(), fit.file.clone())),
        _ => None,
    };
    if let Some((spl, _)) = &jh7110_files {
        let data = std::fs::read(spl).map_err(|source| PipelineError::UnreadableImage { path: spl.clone(), source })?;
        recovery::check_spl_header(&data)
            .map_err(|source| crate::flash::error::FlashError::BadSpl { file: spl.clone(), source })?;
    }
    // And the exact bytes that cross the wire: each region's file, those given by hand too.
    if !req.already_verified || req.image.is_some() || !req.files.is_empty() {
        verify_sent(board, manifest.as_ref(), &steps, reporter)?;
    }
    let baud = req.baud.unwrap_or(board.flash.baud);
    let path = port::resolve(req.port.as_deref(), &port::list())?;
    let mut link = port::open(&path, baud)?;
    let mut opts = FlashOptions {
        chunk: req.chunk,
        load_addr: req.load_addr,
        transfer_baud: req.transfer_baud,
        console_baud: baud,
        resume: req.resume,
        setup: board.flash.console_setup.clone(),
        boot: req.boot.as_ref().map(|command| BootCheck {
            command: command.clone(),
            marker: manifest.as_ref().map_or_else(|| board.marker.clone(), |m| m.marker.clone()),
            timeout: req.boot_timeout.unwrap_or_else(|| {
                Duration::from_secs(board.qemu.as_ref().map_or(DEFAULT_BOOT_TIMEOUT_S, |q| q.timeout))
            }),
        }),
        ..FlashOptions::default()
    };
    opts.console.attach_timeout = req.timeout;
    let started = Instant::now();
    let result = (|| {
        if let (true, Some((spl, fit))) = (req.recovery, &jh7110_files) {
            let rec = recovery::RecoveryOptions { timeout: req.timeout, ..recovery::RecoveryOptions::default() };
            recovery::boot_from_rom(&mut link, spl, fit, &rec, reporter)?;
        }
        crate::flash::flash(&mut link, &steps, &opts, reporter)
    })();
    let board_name = board.name.value.clone();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            reporter.event(&Event::Flash {
                board: board_name,
                step: "flash".into(),
                ok: false,
                bytes: 0,
                seconds: started.elapsed().as_secs_f64(),
                detail: e.to_string(),
            });
            return Err(e);
        }
    };
    for s in &report.steps {
        reporter.event(&Event::Flash {
            board: board_name.clone(),
            step: s.name.clone(),
            ok: true,
            bytes: s.bytes,
            seconds: report.seconds,
            detail: format!(
                "crc32 {:08x}, {} chunk(s) ({} zero, {} proven earlier), {} payload bytes sent, read back",
                s.crc32, s.chunks, s.zero_chunks, s.resumed_chunks, s.sent_bytes
            ),
        });
    }
    if let Some(b) = &report.boot {
        reporter.event(&Event::Boot {
            board: board_name.clone(),
            ok: b.ok,
            seconds: b.seconds,
            detail: b.detail.clone(),
        });
        if !b.ok {
            return Err(FlashError::BootFailed { detail: b.detail.clone(), tail: b.tail.join("\n") }.into());
        }
    }
    Ok(Flashed { board: board_name, report, line_baud: baud })
}
