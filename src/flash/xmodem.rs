//! XMODEM over a [`SerialLink`]: the sender and the receiver, checksum and CRC-16 modes, 128-byte
//! and 1024-byte (XMODEM-1K) blocks. YMODEM ([`super::ymodem`]) reuses the block layer here.
//!
//! Only an ACK moves the sender on; a NAK, a `C`, any other byte or a timeout resends the block,
//! after the line has gone quiet (this is what gets past receivers that send extra NAKs).
//! Two CANs in a row cancel.

use std::time::{Duration, Instant};

use super::crc::{crc16, sum8};
use super::error::FlashError;
use super::link::{SerialLink, drain, read_byte, read_full};
use super::progress::Progress;
use crate::vocab::Reporter;
use crate::{Error, Result};

pub const SOH: u8 = 0x01;
pub const STX: u8 = 0x02;
pub const EOT: u8 = 0x04;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
pub const CAN: u8 = 0x18;
pub const SUB: u8 = 0x1A;
pub const CRC_REQUEST: u8 = b'C';

/// How a block is checked: XMODEM's 8-bit sum, or CRC-16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Sum,
    Crc,
}

impl Check {
    fn len(self) -> usize {
        match self {
            Check::Sum => 1,
            Check::Crc => 2,
        }
    }
}

/// The data size of a block: 128 (SOH) or 1024 (STX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSize {
    B128,
    B1024,
}

impl BlockSize {
    pub fn bytes(self) -> usize {
        match self {
            BlockSize::B128 => 128,
            BlockSize::B1024 => 1024,
        }
    }
}

/// Timeouts and retry limits. The defaults follow lrzsz's classic values.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long the sender waits for the receiver's first `C`/NAK, and the receiver for the
    /// first block.
    pub start: Duration,
    /// How long the sender waits for the answer to a block.
    pub reply: Duration,
    /// Longest gap between two bytes of one block.
    pub char_gap: Duration,
    /// Quiet time that ends a burst of line noise (before the start, after a bad answer).
    pub settle: Duration,
    /// Errors tolerated for one block before giving up.
    pub retries: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            start: Duration::from_secs(60),
            reply: Duration::from_secs(10),
            char_gap: Duration::from_secs(1),
            settle: Duration::from_millis(50),
            retries: 10,
        }
    }
}

/// Options of an XMODEM send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    pub block: BlockSize,
    /// In 1K mode, finish with 128-byte blocks once at most 896 bytes remain (as lrzsz does).
    pub small_tail: bool,
    /// The byte that fills the last block.
    pub pad: u8,
    /// In 1K mode, go on with 128-byte blocks after a 1K block failed four times (a noisy line
    /// damages long blocks more often).
    pub downshift: bool,
    pub timing: Timing,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { block: BlockSize::B128, small_tail: true, pad: SUB, downshift: true, timing: Timing::default() }
    }
}

/// What a transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes: u64,
    pub blocks: u64,
    pub retransmits: u64,
}

fn line_err(link: &dyn SerialLink, source: std::io::Error) -> Error {
    FlashError::SerialLine { link: link.name().to_string(), source }.into()
}

/// Shows received bytes for an error message: printable ASCII as is, the rest as `\xNN`.
pub fn show_bytes(bytes: &[u8]) -> String {
    let tail = &bytes[bytes.len().saturating_sub(300)..];
    let mut s = String::new();
    for &b in tail {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if s.is_empty() { "nothing".to_string() } else { format!("\"{s}\"") }
}

/// The sending side of the block layer.
pub struct Sender<'a> {
    pub link: &'a mut dyn SerialLink,
    pub check: Check,
    pub timing: Timing,
    pub stats: Stats,
}

enum Reply {
    Ack,
    Cancel,
    Other,
}

impl<'a> Sender<'a> {
    /// Waits until the receiver asks for the transfer: the line is quiet for `settle` and the
    /// last byte was `C` (CRC mode) or NAK (checksum mode). Banners that contain a `C` are
    /// skipped this way.
    pub fn wait_start(link: &'a mut dyn SerialLink, timing: Timing) -> Result<Self> {
        let check = wait_for_request(link, &timing)?;
        Ok(Sender { link, check, timing, stats: Stats::default() })
    }

    /// Sends one block until it is ACKed. `payload` is exactly 128 or 1024 bytes.
    pub fn send_block(&mut self, num: u8, payload: &[u8], progress: &mut Progress<'_>) -> Result<()> {
        let limit = self.timing.retries;
        if self.send_block_upto(num, payload, progress, limit)? {
            Ok(())
        } else {
            self.cancel();
            Err(FlashError::BlockNotAccepted { num, attempts: limit + 1, link: self.link.name().to_string() }.into())
        }
    }

    /// Sends one block; false when it was still not ACKed after `limit` resends.
    fn send_block_upto(&mut self, num: u8, payload: &[u8], progress: &mut Progress<'_>, limit: u32) -> Result<bool> {
        let mut frame = Vec::with_capacity(payload.len() + 5);
        frame.push(if payload.len() == 1024 { STX } else { SOH });
        frame.push(num);
        frame.push(!num);
        frame.extend_from_slice(payload);
        match self.check {
            Check::Crc => frame.extend_from_slice(&crc16(payload).to_be_bytes()),
            Check::Sum => frame.push(sum8(payload)),
        }
        let mut failures = 0;
        loop {
            self.discard_pending()?;
            self.link.write_all(&frame).map_err(|e| line_err(self.link, e))?;
            match self.reply()? {
                Reply::Ack => {
                    self.stats.blocks += 1;
                    return Ok(true);
                }
                Reply::Cancel => {
                    return Err(FlashError::CancelledAtBlock { link: self.link.name().to_string(), num }.into());
                }
                Reply::Other => {
                    failures += 1;
                    self.stats.retransmits += 1;
                    progress.retransmit();
                    if failures > limit {
                        return Ok(false);
                    }
                    drain(self.link, self.timing.settle, self.timing.reply).map_err(|e| line_err(self.link, e))?;
                }
            }
        }
    }

    /// Sends `data` as blocks numbered from 1.
    pub fn send_data(&mut self, data: &[u8], opts: &SendOptions, progress: &mut Progress<'_>) -> Result<()> {
        let mut num: u8 = 1;
        let mut off = 0;
        let mut block = vec![0u8; 1024];
        let mut small = false;
        while off < data.len() {
            let left = data.len() - off;
            let tail = opts.small_tail && left <= 896;
            let size = match opts.block {
                BlockSize::B1024 if !small && !tail => 1024,
                _ => 128,
            };
            let n = left.min(size);
            block[..n].copy_from_slice(&data[off..off + n]);
            block[n..size].fill(opts.pad);
            if size == 1024 && opts.downshift {
                if !self.send_block_upto(num, &block[..size], progress, 3)? {
                    small = true;
                    continue;
                }
            } else {
                self.send_block(num, &block[..size], progress)?;
            }
            off += n;
            self.stats.bytes += n as u64;
            num = num.wrapping_add(1);
            progress.advance(off as u64);
        }
        Ok(())
    }

    /// Sends EOT until it is ACKed (NAKs and timeouts resend it).
    pub fn send_eot(&mut self) -> Result<()> {
        for _ in 0..=self.timing.retries {
            self.discard_pending()?;
            self.link.write_all(&[EOT]).map_err(|e| line_err(self.link, e))?;
            match self.reply()? {
                Reply::Ack => return Ok(()),
                Reply::Cancel => {
                    return Err(FlashError::CancelledAtEnd { link: self.link.name().to_string() }.into());
                }
                Reply::Other => {}
            }
        }
        Err(FlashError::EotNotAcknowledged { link: self.link.name().to_string() }.into())
    }

    /// Tells the receiver to give up (CAN CAN CAN CAN CAN). Best effort.
    pub fn cancel(&mut self) {
        let _ = self.link.write_all(&[CAN; 5]);
    }

    fn discard_pending(&mut self) -> Result<()> {
        let mut buf = [0u8; 256];
        while self.link.read_timeout(&mut buf, Duration::ZERO).map_err(|e| line_err(self.link, e))? > 0 {}
        Ok(())
    }

    fn reply(&mut self) -> Result<Reply> {
        let to = self.timing.reply;
        match read_byte(self.link, to).map_err(|e| line_err(self.link, e))? {
            Some(ACK) => Ok(Reply::Ack),
            Some(CAN) => {
                let next = read_byte(self.link, Duration::from_secs(1)).map_err(|e| line_err(self.link, e))?;
                Ok(if next == Some(CAN) { Reply::Cancel } else { Reply::Other })
            }
            _ => Ok(Reply::Other),
        }
    }
}

/// Waits for a quiet line whose last byte is `C` or NAK.
fn wait_for_request(link: &mut dyn SerialLink, timing: &Timing) -> Result<Check> {
    let deadline = Instant::now() + timing.start;
    let mut seen: Vec<u8> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FlashError::NoReceiver {
                link: link.name().to_string(),
                secs: timing.start.as_secs(),
                received: show_bytes(&seen),
            }
            .into());
        }
        let last = seen.last().copied();
        let wait = match last {
            Some(CRC_REQUEST) | Some(NAK) => timing.settle.min(left),
            _ => left,
        };
        match read_byte(link, wait).map_err(|e| line_err(link, e))? {
            Some(b) => {
                if b == CAN && last == Some(CAN) {
                    return Err(FlashError::CancelledBeforeStart { link: link.name().to_string() }.into());
                }
                seen.push(b);
                if seen.len() > 4096 {
                    seen.drain(..2048);
                }
            }
            None => match last {
                Some(CRC_REQUEST) => return Ok(Check::Crc),
                Some(NAK) => return Ok(Check::Sum),
                _ => {}
            },
        }
    }
}

/// Sends `data` with XMODEM (or XMODEM-1K when `opts.block` is 1024).
pub fn send(link: &mut dyn SerialLink, data: &[u8], opts: &SendOptions, reporter: &dyn Reporter) -> Result<Stats> {
    let mut s = Sender::wait_start(link, opts.timing.clone())?;
    let mut progress = Progress::new(reporter);
    progress.start("xmodem", data.len() as u64);
    let r = s.send_data(data, opts, &mut progress).and_then(|()| s.send_eot());
    progress.finish();
    r.map(|()| s.stats)
}

/// One packet as the receiver saw it.
pub enum Packet {
    Block {
        num: u8,
        data: Vec<u8>,
    },
    Eot,
    Cancel,
    /// A damaged block (bad complement, bad check, cut short).
    Bad,
    /// Nothing arrived in time.
    Timeout,
}

/// The receiving side of the block layer.
pub struct Receiver<'a> {
    pub link: &'a mut dyn SerialLink,
    pub check: Check,
    pub timing: Timing,
    pub stats: Stats,
}

impl<'a> Receiver<'a> {
    pub fn new(link: &'a mut dyn SerialLink, check: Check, timing: Timing) -> Self {
        Receiver { link, check, timing, stats: Stats::default() }
    }

    pub fn send(&mut self, byte: u8) -> Result<()> {
        self.link.write_all(&[byte]).map_err(|e| line_err(self.link, e))
    }

    /// The byte that asks for (more of) a transfer in the current mode.
    pub fn request_byte(&self) -> u8 {
        match self.check {
            Check::Crc => CRC_REQUEST,
            Check::Sum => NAK,
        }
    }

    /// Reads the next packet; skips noise before a header byte.
    pub fn read_packet(&mut self, first: Duration) -> Result<Packet> {
        let deadline = Instant::now() + first;
        let head = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match read_byte(self.link, left).map_err(|e| line_err(self.link, e))? {
                None => return Ok(Packet::Timeout),
                Some(b @ (SOH | STX | EOT)) => break b,
                Some(CAN) => {
                    let next = read_byte(self.link, self.timing.char_gap).map_err(|e| line_err(self.link, e))?;
                    if next == Some(CAN) {
                        return Ok(Packet::Cancel);
                    }
                }
                Some(_) => {}
            }
        };
        let size = match head {
            EOT => return Ok(Packet::Eot),
            STX => 1024,
            _ => 128,
        };
        let mut buf = vec![0u8; 2 + size + self.check.len()];
        let got = read_full(self.link, &mut buf, self.timing.char_gap).map_err(|e| line_err(self.link, e))?;
        if got < buf.len() {
            // A sender that gives up mid-block ends the block with CANs (and lrzsz with BSs).
            return Ok(if ends_in_cancel(&buf[..got]) { Packet::Cancel } else { Packet::Bad });
        }
        let (num, inv) = (buf[0], buf[1]);
        let data = &buf[2..2 + size];
        let ok_check = match self.check {
            Check::Crc => crc16(data).to_be_bytes() == buf[2 + size..],
            Check::Sum => sum8(data) == buf[2 + size],
        };
        if num ^ inv != 0xFF || !ok_check {
            return Ok(Packet::Bad);
        }
        Ok(Packet::Block { num, data: data.to_vec() })
    }

    /// Answers a damaged packet: waits for the line to go quiet, then sends NAK.
    pub fn reject(&mut self) -> Result<()> {
        self.stats.retransmits += 1;
        drain(self.link, self.timing.settle.max(Duration::from_millis(100)), self.timing.char_gap * 5)
            .map_err(|e| line_err(self.link, e))?;
        self.send(NAK)
    }

    /// Gives up: CANs to the sender and an error naming `why`.
    pub fn abort(&mut self, why: &str) -> Error {
        let _ = self.link.write_all(&[CAN; 5]);
        FlashError::ReceiveFailed { link: self.link.name().to_string(), why: why.to_string() }.into()
    }

    /// Asks for the first packet (`C`, or NAK after four unanswered `C`s when `fallback`) and
    /// returns it.
    pub fn start(&mut self, fallback: bool) -> Result<Packet> {
        let deadline = Instant::now() + self.timing.start;
        let mut asks = 0;
        loop {
            if Instant::now() >= deadline {
                return Ok(Packet::Timeout);
            }
            if fallback && asks == 4 && self.check == Check::Crc {
                self.check = Check::Sum;
            }
            self.send(self.request_byte())?;
            asks += 1;
            match self.read_packet(Duration::from_secs(3))? {
                Packet::Timeout => {}
                Packet::Bad => self.reject()?,
                p => return Ok(p),
            }
        }
    }

    /// Receives data blocks numbered from 1 up to the EOT; `first` is a packet already read.
    /// Returns the payload including the padding of the last block.
    pub fn receive_data(&mut self, first: Option<Packet>, progress: &mut Progress<'_>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut expected: u8 = 1;
        let mut errors = 0;
        let mut eot_seen = false;
        let mut pending = first;
        loop {
            let packet = match pending.take() {
                Some(p) => p,
                None => self.read_packet(self.timing.reply)?,
            };
            match packet {
                Packet::Block { num, data } if num == expected => {
                    out.extend_from_slice(&data);
                    self.stats.blocks += 1;
                    self.stats.bytes = out.len() as u64;
                    progress.advance(out.len() as u64);
                    expected = expected.wrapping_add(1);
                    errors = 0;
                    eot_seen = false;
                    self.send(ACK)?;
                }
                Packet::Block { num, .. } if num == expected.wrapping_sub(1) => {
                    // Our ACK was lost: the sender repeats the block we already have.
                    self.send(ACK)?;
                }
                Packet::Block { num, .. } => {
                    return Err(self.abort(&format!("block {num} arrived while block {expected} was expected")));
                }
                Packet::Eot => {
                    // The first EOT is NAKed and only a repeated one ends the file: a single
                    // byte of noise must not end it.
                    if eot_seen {
                        self.send(ACK)?;
                        return Ok(out);
                    }
                    eot_seen = true;
                    self.send(NAK)?;
                }
                Packet::Cancel => {
                    return Err(FlashError::SenderCancelled { link: self.link.name().to_string() }.into());
                }
                Packet::Bad | Packet::Timeout => {
                    errors += 1;
                    if errors > self.timing.retries {
                        return Err(self.abort(&format!("{errors} bad or missing blocks in a row at block {expected}")));
                    }
                    self.reject()?;
                }
            }
        }
    }
}

/// True when `bytes` end with at least two CANs, optionally followed by backspaces.
fn ends_in_cancel(bytes: &[u8]) -> bool {
    let trimmed = match bytes.iter().rposition(|&b| b != 0x08) {
        Some(i) => &bytes[..=i],
        None => return false,
    };
    trimmed.iter().rev().take_while(|&&b| b == CAN).count() >= 2
}

/// Options of an XMODEM receive.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Ask for CRC-16 (`C`) first; fall back to checksums after four unanswered requests.
    pub check: Check,
    pub timing: Timing,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions { check: Check::Crc, timing: Timing::default() }
    }
}

/// Receives one XMODEM file. XMODEM carries no length, so the result keeps the last block's
/// padding.
pub fn receive(link: &mut dyn SerialLink, opts: &ReceiveOptions, reporter: &dyn Reporter) -> Result<Vec<u8>> {
    let mut r = Receiver::new(link, opts.check, opts.timing.clone());
    let first = r.start(true)?;
    if let Packet::Timeout = first {
        return Err(r.abort(&format!("no sender started within {}s", opts.timing.start.as_secs())));
    }
    let mut progress = Progress::new(reporter);
    progress.start("xmodem", 0);
    let out = r.receive_data(Some(first), &mut progress);
    progress.finish();
    out
}
