//! The errors of the flash stage (choosing and opening the serial port, reading and placing
//! images, the flash plan on U-Boot, JH7110 ROM recovery), typed, with a diagnostic code per
//! variant.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use super::chunks::Span;

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

    #[error(
        "`{name}` ends at {end:#x}, past the end of the {total}-byte SPI NOR: chunk {}/{} (image bytes {:#x}..{:#x}) would not fit; nothing was written",
        chunk.number, chunk.count, chunk.offset, chunk.end
    )]
    #[diagnostic(
        code(rvbuild::flash::past_spi_nor),
        help("check the board's flash regions against its SPI NOR, or flash a smaller image")
    )]
    PastSpiNor { name: String, end: u64, total: u64, chunk: Span },

    #[error(
        "image {} ({len} bytes at offset {offset:#x}) does not fit virtio device {dev} ({capacity} bytes): chunk {}/{} (image bytes {:#x}..{:#x}) would pass the device's end; nothing was written",
        file.display(), chunk.number, chunk.count, chunk.offset, chunk.end
    )]
    #[diagnostic(
        code(rvbuild::flash::does_not_fit),
        help(
            "give the board a larger disk, or flash a smaller image; nothing was written, so there is nothing to --resume"
        )
    )]
    DoesNotFit { file: PathBuf, len: u64, offset: u64, dev: u32, capacity: u64, chunk: Span },

    #[error("{label}: the data loaded into RAM has crc32 {got:08x}, expected {want:08x}; nothing was written")]
    #[diagnostic(code(rvbuild::flash::ram_crc))]
    RamCrc { label: String, got: u32, want: u32 },

    #[error("{label}: read-back crc32 {back:08x} differs from the image's {want:08x}: the write did not land")]
    #[diagnostic(code(rvbuild::flash::read_back_crc))]
    ReadBackCrc { label: String, back: u32, want: u32 },

    #[error("{step}: chunk {index}/{count} (image bytes {offset:#x}..{end:#x}) failed: {source}")]
    #[diagnostic(
        code(rvbuild::flash::chunk_failed),
        help(
            "the chunks before it were written and proven by read-back; fix the cause and run again with --resume to continue from this chunk"
        )
    )]
    ChunkFailed { step: String, index: usize, count: usize, offset: u64, end: u64, source: Box<Error> },

    #[error("{label}: `{cmd}` failed on the board: {answer}")]
    #[diagnostic(
        code(rvbuild::flash::gzwrite_failed),
        help("U-Boot could not inflate the chunk onto the device; nothing of this chunk is claimed as written")
    )]
    GzwriteFailed { label: String, cmd: String, answer: String },

    #[error(
        "{step}: chunk {}/{} (image bytes {:#x}..{:#x}) does not fit the board's free RAM: load area at {load:#x} plus read-back area, {chunk} bytes each, end at {need_end:#x}, past the free RAM's end at {window_end:#x} (it would overwrite what U-Boot reserved); nothing was written",
        first.number, first.count, first.offset, first.end
    )]
    #[diagnostic(
        code(rvbuild::flash::ram_window),
        help(
            "choose a smaller --chunk (each round needs it twice, for the load and the read-back) or a lower --load-addr"
        )
    )]
    RamWindow { step: String, first: Span, chunk: u64, load: u64, need_end: u64, window_end: u64 },

    #[error(
        "{label}: `{cmd}` reported {reported} bytes with crc {crc:08x}, twice, but the chunk is {len} bytes with crc {want:08x}; not claimed as written"
    )]
    #[diagnostic(
        code(rvbuild::flash::gzwrite_reported),
        help(
            "the board inflated something other than the chunk it was sent (its RAM copy was checked); run again with --resume to rewrite from this chunk, and suspect the board's RAM if it repeats"
        )
    )]
    GzwriteReported { label: String, cmd: String, reported: u64, crc: u32, len: u64, want: u32 },

    #[error("the board did not boot from what was written: {detail}\nlast console lines:\n{tail}")]
    #[diagnostic(
        code(rvbuild::flash::boot_failed),
        help("the image was written and proven; the boot itself failed (see the console lines)")
    )]
    BootFailed { detail: String, tail: String },

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

    // ------------------------------------------------------------ the U-Boot console
    #[error("no U-Boot prompt on {link} within {secs}s (received: {received})")]
    #[diagnostic(
        code(rvbuild::flash::uboot::no_prompt),
        help(
            "reset or power-cycle the board; check the baud rate (--baud), that TX/RX are crossed, and that the board boots U-Boot"
        )
    )]
    NoPrompt { link: String, secs: u64, received: String },

    #[error(
        "U-Boot on {link} did not echo `{cmd}` correctly after {attempts} attempts (last echo: {last_echo}): the line is too noisy"
    )]
    #[diagnostic(code(rvbuild::flash::uboot::noisy_echo))]
    NoisyEcho { link: String, cmd: String, attempts: u32, last_echo: String },

    #[error("U-Boot on {link} does not return to its prompt (received after Ctrl-C: {received})")]
    #[diagnostic(
        code(rvbuild::flash::uboot::no_return_to_prompt),
        help(
            "the board answers something that is not U-Boot's console: check the baud rate (--baud) and the cable, or reset the board"
        )
    )]
    NoReturnToPrompt { link: String, received: String },

    #[error("U-Boot on {link} did not finish `{cmd}` within {secs}s (received: {received})")]
    #[diagnostic(code(rvbuild::flash::uboot::command_timeout))]
    CommandTimeout { link: String, cmd: String, secs: u64, received: String },

    #[error("cannot read the answer of `{cmd}` from U-Boot on {link}: {answer:?}")]
    #[diagnostic(code(rvbuild::flash::uboot::unreadable_answer))]
    UnreadableAnswer { cmd: String, link: String, answer: String },

    #[error("loady failed")]
    #[diagnostic(code(rvbuild::flash::uboot::loady_failed))]
    LoadyFailed,

    #[error("U-Boot on {link} did not start `{cmd}` (received: {received})")]
    #[diagnostic(code(rvbuild::flash::uboot::loady_not_started))]
    LoadyNotStarted { link: String, cmd: String, received: String },

    #[error("U-Boot aborted the transfer: {answer}")]
    #[diagnostic(code(rvbuild::flash::uboot::transfer_aborted))]
    TransferAborted { answer: String },

    #[error("U-Boot received {received} bytes instead of {sent}")]
    #[diagnostic(code(rvbuild::flash::uboot::wrong_size))]
    WrongSize { received: u64, sent: usize },

    // ------------------------------------------------------------ XMODEM / YMODEM
    #[error("block {num} was not accepted after {attempts} attempts on {link}")]
    #[diagnostic(code(rvbuild::flash::xmodem::block_not_accepted))]
    BlockNotAccepted { num: u8, attempts: u32, link: String },

    #[error("the receiver on {link} cancelled the transfer at block {num}")]
    #[diagnostic(code(rvbuild::flash::xmodem::cancelled_at_block))]
    CancelledAtBlock { link: String, num: u8 },

    #[error("the receiver on {link} cancelled at the end of the file")]
    #[diagnostic(code(rvbuild::flash::xmodem::cancelled_at_end))]
    CancelledAtEnd { link: String },

    #[error("the end of the file (EOT) was never acknowledged on {link}")]
    #[diagnostic(code(rvbuild::flash::xmodem::eot_not_acknowledged))]
    EotNotAcknowledged { link: String },

    #[error("no receiver asked for the transfer on {link} within {secs}s (received: {received})")]
    #[diagnostic(
        code(rvbuild::flash::xmodem::no_receiver),
        help("start the receiver (e.g. `rx`, `rb`, U-Boot's `loady`) before or right after the sender")
    )]
    NoReceiver { link: String, secs: u64, received: String },

    #[error("the receiver on {link} cancelled before the transfer began")]
    #[diagnostic(code(rvbuild::flash::xmodem::cancelled_before_start))]
    CancelledBeforeStart { link: String },

    #[error("receiving on {link} failed: {why}")]
    #[diagnostic(code(rvbuild::flash::xmodem::receive_failed))]
    ReceiveFailed { link: String, why: String },

    #[error("the sender on {link} cancelled the transfer")]
    #[diagnostic(code(rvbuild::flash::xmodem::sender_cancelled))]
    SenderCancelled { link: String },

    #[error("the receiver on {link} refused the end-of-batch block")]
    #[diagnostic(code(rvbuild::flash::ymodem::end_of_batch_refused))]
    EndOfBatchRefused { link: String },

    #[error("file name `{name}` is too long for a YMODEM header")]
    #[diagnostic(code(rvbuild::flash::ymodem::name_too_long))]
    NameTooLong { name: String },
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
            | ReadRecoveryFile { .. }
            | BadSpl { .. }
            | NameTooLong { .. } => ErrorKind::Config,
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
            | FitNotSent { .. }
            | NoPrompt { .. }
            | NoisyEcho { .. }
            | NoReturnToPrompt { .. }
            | CommandTimeout { .. }
            | UnreadableAnswer { .. }
            | LoadyFailed
            | LoadyNotStarted { .. }
            | TransferAborted { .. }
            | WrongSize { .. }
            | BlockNotAccepted { .. }
            | CancelledAtBlock { .. }
            | CancelledAtEnd { .. }
            | EotNotAcknowledged { .. }
            | NoReceiver { .. }
            | CancelledBeforeStart { .. }
            | ReceiveFailed { .. }
            | SenderCancelled { .. }
            | EndOfBatchRefused { .. }
            | ChunkFailed { .. }
            | GzwriteFailed { .. }
            | GzwriteReported { .. }
            | PastSpiNor { .. }
            | DoesNotFit { .. }
            | RamWindow { .. } => ErrorKind::Flash,
            BootFailed { .. } => ErrorKind::Boot,
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
