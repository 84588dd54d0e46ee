//! The errors of the flash stage (choosing and opening the serial port, reading and placing
//! images, the flash plan on U-Boot, JH7110 ROM recovery), typed, with a diagnostic code per
//! variant.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// Something went wrong in the flash stage.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum FlashError {
    // ------------------------------------------------------------ the serial port
    #[error("no serial port given")]
    #[diagnostic(
        code(rvbuild::flash::no_port),
        help("pass --port /dev/ttyUSB0 (or --port auto), or set RVBUILD_PORT; `rvbuild serial list` shows the ports")
    )]
    NoPort,

    #[error("--port auto: no USB serial adapter is connected")]
    #[diagnostic(
        code(rvbuild::flash::no_adapter),
        help("plug in the board's USB serial adapter, or name the port with --port")
    )]
    NoAdapter,

    #[error("--port auto: {} USB serial adapters found ({}); refusing to guess", ports.len(), ports.join(", "))]
    #[diagnostic(code(rvbuild::flash::many_adapters), help("name the port with --port (see `rvbuild serial list`)"))]
    ManyAdapters { ports: Vec<String> },

    #[error("serial port {path} does not exist")]
    #[diagnostic(
        code(rvbuild::flash::no_such_port),
        help("check the cable and the port name; `rvbuild serial list` shows the ports present")
    )]
    NoSuchPort { path: String },

    #[error("serial port {path} is busy: another program holds it ({source})")]
    #[diagnostic(
        code(rvbuild::flash::port_busy),
        help("close the other program using it (screen, minicom, tio, picocom, ModemManager) and try again")
    )]
    PortBusy { path: String, source: serialport::Error },

    #[error("no permission to open serial port {path}")]
    #[diagnostic(
        code(rvbuild::flash::port_permission),
        help("add your user to the `dialout` group (`sudo usermod -aG dialout $USER`), then log out and in again")
    )]
    PortPermission { path: String, source: serialport::Error },

    #[error("cannot open serial port {path}: {source}")]
    #[diagnostic(code(rvbuild::flash::open_port))]
    OpenPort { path: String, source: serialport::Error },

    #[error("serial line {link}: {source}")]
    #[diagnostic(code(rvbuild::flash::serial_line))]
    SerialLine { link: String, source: io::Error },

    // ------------------------------------------------------------ images and the plan
    #[error("cannot read image {} for `{name}`: {source}", file.display())]
    #[diagnostic(code(rvbuild::flash::read_image), help("build the board first, or pass the file with --image"))]
    ReadImage { file: PathBuf, name: String, source: io::Error },

    #[error("image {} ({size} bytes) is larger than its SPI NOR region `{name}` ({limit} bytes)", file.display())]
    #[diagnostic(code(rvbuild::flash::image_too_large))]
    ImageTooLarge { file: PathBuf, size: usize, name: String, limit: u64 },

    #[error("`{name}`: offset {offset:#x} is not a multiple of {sector} bytes")]
    #[diagnostic(code(rvbuild::flash::misaligned_offset))]
    MisalignedOffset { name: String, offset: u64, sector: u64 },

    #[error("image {} is empty", file.display())]
    #[diagnostic(code(rvbuild::flash::empty_image))]
    EmptyImage { file: PathBuf },

    #[error("U-Boot has neither `loadaddr` nor `kernel_addr_r` set: no load address known")]
    #[diagnostic(code(rvbuild::flash::no_load_address), help("give the address in RAM to load to with --load-addr"))]
    NoLoadAddress,

    #[error("U-Boot answered `{cmd}` with an error: {line}")]
    #[diagnostic(
        code(rvbuild::flash::uboot_command),
        help("check that the board's U-Boot has this command and the device exists (full answer above in --verbose)")
    )]
    UbootCommand { cmd: String, line: String },

    #[error("`sf probe` found no SPI NOR flash: {answer}")]
    #[diagnostic(code(rvbuild::flash::no_spi_nor))]
    NoSpiNor { answer: String },

    #[error("`{name}` ends at {end:#x}, past the end of the {total}-byte SPI NOR")]
    #[diagnostic(code(rvbuild::flash::past_spi_nor))]
    PastSpiNor { name: String, end: u64, total: u64 },

    #[error(
        "image {} ({len} bytes at offset {offset:#x}) does not fit virtio device {dev} ({capacity} bytes)",
        file.display()
    )]
    #[diagnostic(code(rvbuild::flash::does_not_fit))]
    DoesNotFit { file: PathBuf, len: u64, offset: u64, dev: u32, capacity: u64 },

    #[error("{label}: the data loaded into RAM has crc32 {got:08x}, expected {want:08x}; nothing was written")]
    #[diagnostic(code(rvbuild::flash::ram_crc))]
    RamCrc { label: String, got: u32, want: u32 },

    #[error("{label}: read-back crc32 {back:08x} differs from the image's {want:08x}: the write did not land")]
    #[diagnostic(code(rvbuild::flash::read_back_crc))]
    ReadBackCrc { label: String, back: u32, want: u32 },

    // ------------------------------------------------------------ JH7110 ROM recovery
    #[error("{}: {source}", file.display())]
    #[diagnostic(code(rvbuild::flash::read_recovery_file))]
    ReadRecoveryFile { file: PathBuf, source: io::Error },

    #[error("{}: {source}", file.display())]
    #[diagnostic(code(rvbuild::flash::bad_spl))]
    BadSpl { file: PathBuf, source: SplHeaderError },

    #[error("sending the SPL to the boot ROM failed: {source}")]
    #[diagnostic(
        code(rvbuild::flash::spl_not_sent),
        help("check that the boot pins select UART (RGPIO1,RGPIO0 = 1,1) and reset the board")
    )]
    SplNotSent { source: Box<Error> },

    #[error("sending the U-Boot FIT to the SPL failed: {source}")]
    #[diagnostic(
        code(rvbuild::flash::fit_not_sent),
        help("the SPL must be built with CONFIG_SPL_YMODEM_SUPPORT=y to load U-Boot over UART")
    )]
    FitNotSent { source: Box<Error> },
}

impl From<FlashError> for Error {
    fn from(e: FlashError) -> Error {
        use FlashError::*;
        let kind = match &e {
            NoPort
            | NoAdapter
            | ManyAdapters { .. }
            | NoSuchPort { .. }
            | ReadImage { .. }
            | ImageTooLarge { .. }
            | MisalignedOffset { .. }
            | EmptyImage { .. }
            | PastSpiNor { .. }
            | DoesNotFit { .. }
            | ReadRecoveryFile { .. }
            | BadSpl { .. } => ErrorKind::Config,
            PortPermission { .. } => ErrorKind::Prerequisite,
            PortBusy { .. }
            | OpenPort { .. }
            | SerialLine { .. }
            | NoLoadAddress
            | UbootCommand { .. }
            | NoSpiNor { .. }
            | RamCrc { .. }
            | ReadBackCrc { .. }
            | SplNotSent { .. }
            | FitNotSent { .. } => ErrorKind::Flash,
        };
        Error::new(kind, e)
    }
}

/// Why a file is not a StarFive SPL image (`u-boot-spl.bin.normal.out`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum SplHeaderError {
    #[error("{len} bytes is too short for a StarFive SPL (0x400-byte header); use u-boot-spl.bin.normal.out")]
    #[diagnostic(code(rvbuild::flash::spl::too_short))]
    TooShort { len: usize },

    #[error("no StarFive SPL header (expected u-boot-spl.bin.normal.out, not u-boot-spl.bin)")]
    #[diagnostic(code(rvbuild::flash::spl::no_header))]
    NoHeader,

    #[error("the header says {size} payload bytes but the file holds {holds}")]
    #[diagnostic(code(rvbuild::flash::spl::size))]
    Size { size: usize, holds: usize },

    #[error("payload crc32 {got:08x} differs from the header's {want:08x}: the file is damaged")]
    #[diagnostic(code(rvbuild::flash::spl::crc))]
    Crc { got: u32, want: u32 },
}
