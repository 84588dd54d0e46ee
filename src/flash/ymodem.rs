//! YMODEM batch transfers over a [`SerialLink`]: block 0 with the file name and size, data
//! blocks through the XMODEM block layer, and the null block 0 that ends the batch. Both the
//! sender (rvbuild to lrzsz `rb`, U-Boot `loady`, U-Boot SPL) and the receiver (from `sb`).

use std::time::{Duration, Instant};

use super::error::FlashError;
use super::link::{SerialLink, read_byte};
use super::progress::Progress;
use super::xmodem::{self, ACK, BlockSize, CRC_REQUEST, Check, NAK, Packet, Receiver, Sender, Stats, Timing};
use crate::vocab::Reporter;
use crate::{Error, Result};

/// One file of a batch to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// One file of a received batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The name the sender gave, without any directory part.
    pub name: String,
    pub data: Vec<u8>,
}

/// Options of a YMODEM send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Data block size; 1024 unless a receiver needs 128.
    pub block: BlockSize,
    pub timing: Timing,
    /// How long to wait for the receiver's `C` after block 0 before sending block 1 anyway.
    /// lrzsz sends it at once; U-Boot only after its own 2 s header timeout, which this skips.
    pub after_header: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { block: BlockSize::B1024, timing: Timing::default(), after_header: Duration::from_millis(500) }
    }
}

/// Builds block 0: `name NUL size NUL…`, 128 bytes, or 1024 if the name needs it.
pub fn header_block(name: &str, size: u64) -> Result<Vec<u8>> {
    let mut h = Vec::with_capacity(128);
    h.extend_from_slice(name.as_bytes());
    h.push(0);
    h.extend_from_slice(size.to_string().as_bytes());
    let len = match h.len() {
        0..=128 => 128,
        129..=1024 => 1024,
        _ => {
            return Err(FlashError::NameTooLong { name: name.to_string() }.into());
        }
    };
    h.resize(len, 0);
    Ok(h)
}

/// Parses block 0: `None` for the end-of-batch block (first byte NUL), else name and size.
pub fn parse_header(block: &[u8]) -> Option<(String, Option<u64>)> {
    if block.first().copied().unwrap_or(0) == 0 {
        return None;
    }
    let name_end = block.iter().position(|&b| b == 0).unwrap_or(block.len());
    let raw = String::from_utf8_lossy(&block[..name_end]).to_string();
    let base = raw.rsplit('/').next().unwrap_or(&raw);
    let name = match base {
        "" | "." | ".." => "file".to_string(),
        b => b.to_string(),
    };
    let rest = block.get(name_end + 1..).unwrap_or(&[]);
    let field: String = rest.iter().take_while(|&&b| b != 0 && b != b' ').map(|&b| b as char).collect();
    let size = match field.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => field.parse().ok(),
    };
    Some((name, size))
}

/// Sends a batch of files and the end-of-batch block.
pub fn send(
    link: &mut dyn SerialLink,
    files: &[Outgoing<'_>],
    opts: &SendOptions,
    reporter: &dyn Reporter,
) -> Result<Stats> {
    let mut s = Sender::wait_start(link, opts.timing.clone())?;
    let mut progress = Progress::new(reporter);
    let xopts = xmodem::SendOptions {
        block: opts.block,
        small_tail: true,
        pad: xmodem::SUB,
        downshift: true,
        timing: opts.timing.clone(),
    };
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            wait_next_request(&mut s, opts.timing.reply)?;
        }
        let header = header_block(f.name, f.data.len() as u64)?;
        s.send_block(0, &header, &mut progress)?;
        wait_after_header(&mut s, opts.after_header)?;
        progress.start(f.name, f.data.len() as u64);
        let r = s.send_data(f.data, &xopts, &mut progress).and_then(|()| s.send_eot());
        progress.finish();
        r?;
    }
    wait_next_request(&mut s, opts.timing.reply)?;
    send_end_of_batch(&mut s)?;
    Ok(s.stats)
}

/// Sends the null block 0. U-Boot ACKs it; lrzsz ends without a word. A NAK resends it, silence
/// for a second counts as accepted (the data itself was already acknowledged).
fn send_end_of_batch(s: &mut Sender<'_>) -> Result<()> {
    let mut frame = vec![xmodem::SOH, 0, 0xFF];
    frame.extend_from_slice(&[0u8; 128]);
    frame.extend_from_slice(&[0, 0]);
    if s.check == Check::Sum {
        frame.pop();
    }
    for _ in 0..=s.timing.retries {
        s.link.write_all(&frame).map_err(|e| line_err(s, e))?;
        match read_byte(s.link, Duration::from_secs(1)).map_err(|e| line_err(s, e))? {
            Some(NAK) => {}
            _ => return Ok(()),
        }
    }
    Err(FlashError::EndOfBatchRefused { link: s.link.name().to_string() }.into())
}

/// After block 0's ACK: a `C` (or NAK) may follow; wait briefly for it so that it is not taken
/// for an answer to block 1.
fn wait_after_header(s: &mut Sender<'_>, wait: Duration) -> Result<()> {
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        match read_byte(s.link, left).map_err(|e| line_err(s, e))? {
            None | Some(CRC_REQUEST) | Some(NAK) => return Ok(()),
            Some(_) => {}
        }
    }
}

/// After an EOT: receivers send stray ACKs, then `C` for the next block 0.
fn wait_next_request(s: &mut Sender<'_>, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Some receivers never ask; the block is sent anyway and resent until ACKed.
            return Ok(());
        }
        match read_byte(s.link, left).map_err(|e| line_err(s, e))? {
            None | Some(CRC_REQUEST) => return Ok(()),
            Some(NAK) => {
                s.check = Check::Sum;
                return Ok(());
            }
            Some(_) => {}
        }
    }
}

fn line_err(s: &Sender<'_>, source: std::io::Error) -> Error {
    FlashError::SerialLine { link: s.link.name().to_string(), source }.into()
}

/// Options of a YMODEM receive.
#[derive(Debug, Clone, Default)]
pub struct ReceiveOptions {
    pub timing: Timing,
}

/// Receives a batch until the end-of-batch block.
pub fn receive(link: &mut dyn SerialLink, opts: &ReceiveOptions, reporter: &dyn Reporter) -> Result<Vec<Incoming>> {
    let mut r = Receiver::new(link, Check::Crc, opts.timing.clone());
    let mut progress = Progress::new(reporter);
    let mut files = Vec::new();
    loop {
        let packet = r.start(true)?;
        match packet {
            Packet::Timeout => {
                return Err(r.abort(&format!("no YMODEM header within {}s", opts.timing.start.as_secs())));
            }
            Packet::Cancel => {
                return Err(FlashError::SenderCancelled { link: r.link.name().to_string() }.into());
            }
            // A repeated EOT of the previous file: our ACK was lost.
            Packet::Eot => r.send(ACK)?,
            Packet::Bad => r.reject()?,
            Packet::Block { num: 0, data } => {
                let Some((name, size)) = parse_header(&data) else {
                    r.send(ACK)?;
                    return Ok(files);
                };
                r.send(ACK)?;
                r.send(r.request_byte())?;
                progress.start(&name, size.unwrap_or(0));
                let got = r.receive_data(None, &mut progress);
                progress.finish();
                let mut data = got?;
                if let Some(size) = size
                    && size as usize <= data.len()
                {
                    data.truncate(size as usize);
                }
                files.push(Incoming { name, data });
            }
            Packet::Block { num, .. } => {
                return Err(r.abort(&format!("expected a YMODEM header, got block {num}")));
            }
        }
    }
}
