//! JH7110 (VisionFive 2, Star64, Milk-V Mars) recovery over UART: with the boot pins at UART the
//! mask ROM takes the SPL by XMODEM-1K, the SPL then takes the U-Boot FIT by YMODEM, and U-Boot
//! comes up on the console for the normal flash plan. Also the StarFive SPL header check.

use std::path::Path;
use std::time::Duration;

use super::crc::crc32;
use super::error::{FlashError, SplHeaderError};
use super::link::SerialLink;
use super::progress::note;
use super::xmodem::{self, BlockSize, Timing};
use super::ymodem;
use crate::Result;
use crate::vocab::Reporter;

/// Settings of the recovery boot.
#[derive(Debug, Clone)]
pub struct RecoveryOptions {
    /// How long to wait for the ROM (the user may still be flipping switches).
    pub timeout: Duration,
    /// Quiet time that must follow the ROM's `C` before the first block (its banner has a `C`).
    pub settle: Duration,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        RecoveryOptions { timeout: Duration::from_secs(60), settle: Duration::from_millis(50) }
    }
}

/// Checks the 0x400-byte StarFive header of `u-boot-spl.bin.normal.out`: field offset, header
/// size, payload size and the payload's CRC-32 (the header reader verify uses).
pub fn check_spl_header(data: &[u8]) -> std::result::Result<(), SplHeaderError> {
    use crate::verify::spl::Problem;
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    match crate::verify::spl::read(&data) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(Problem::TooShort { len })) => Err(SplHeaderError::TooShort { len: as_usize(len) }),
        Ok(Err(Problem::NoHeader)) | Err(_) => Err(SplHeaderError::NoHeader),
        Ok(Err(Problem::Size { size, holds })) => {
            Err(SplHeaderError::Size { size: as_usize(size), holds: as_usize(holds) })
        }
        Ok(Err(Problem::Crc { got, want })) => Err(SplHeaderError::Crc { got, want }),
    }
}

/// Wraps `payload` in a StarFive SPL header (what `mkimage -T sfspl` does); for tests and tools.
pub fn make_spl_image(payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 0x400];
    let mut put = |off: usize, v: u32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put(0, 0x240);
    put(4, 0x20_0000);
    put(0x284, 0x0101_0101);
    put(0x288, payload.len() as u32);
    put(0x28C, 0x400);
    put(0x290, crc32(payload));
    h.extend_from_slice(payload);
    h
}

/// Sends the SPL to the boot ROM (XMODEM-1K) and the FIT to the SPL (YMODEM). Returns once the
/// FIT is acknowledged; U-Boot then boots on the same console.
pub fn boot_from_rom(
    link: &mut dyn SerialLink,
    spl: &Path,
    fit: &Path,
    opts: &RecoveryOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|source| FlashError::ReadRecoveryFile { file: p.to_path_buf(), source });
    let (spl_data, fit_data) = (read(spl)?, read(fit)?);
    check_spl_header(&spl_data).map_err(|source| FlashError::BadSpl { file: spl.to_path_buf(), source })?;
    note(
        reporter,
        &format!(
            "waiting for the JH7110 boot ROM on {} (boot pins RGPIO1,RGPIO0 = 1,1 i.e. UART; then power on or reset)",
            link.name()
        ),
    );
    let timing = Timing { start: opts.timeout, settle: opts.settle, retries: 20, ..Timing::default() };
    let xopts = xmodem::SendOptions {
        block: BlockSize::B1024,
        small_tail: false,
        pad: 0,
        downshift: false,
        timing: timing.clone(),
    };
    xmodem::send(link, &spl_data, &xopts, reporter).map_err(|e| FlashError::SplNotSent { source: Box::new(e) })?;
    note(reporter, "SPL accepted by the boot ROM; waiting for it to ask for the U-Boot FIT");
    let name = fit.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "u-boot.itb".into());
    let yopts = ymodem::SendOptions {
        timing: Timing { start: Duration::from_secs(30), ..timing },
        ..ymodem::SendOptions::default()
    };
    ymodem::send(link, &[ymodem::Outgoing { name: &name, data: &fit_data }], &yopts, reporter)
        .map_err(|e| FlashError::FitNotSent { source: Box::new(e) })?;
    note(reporter, "U-Boot FIT accepted; waiting for U-Boot");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spl_header_round_trip_and_damage() {
        let img = make_spl_image(b"payload bytes");
        assert!(check_spl_header(&img).is_ok());
        let mut bad = img.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(check_spl_header(&bad).unwrap_err().to_string().contains("damaged"));
        assert!(check_spl_header(&img[0x400..]).is_err());
        assert!(check_spl_header(&vec![0u8; 0x500]).unwrap_err().to_string().contains("no StarFive"));
    }
}
