//! The U-Boot console driver: reaches a prompt (interrupting autoboot), runs commands with their
//! echo checked before Enter is pressed (so a corrupted command is never executed), collects
//! their output up to the next prompt, loads data with `loady` and parses `crc32`.

use std::time::{Duration, Instant};

use super::error::FlashError;
use super::link::{SerialLink, drain, read_byte};
use super::progress::note;
use super::xmodem::{Timing, show_bytes};
use super::ymodem;
use crate::vocab::Reporter;
use crate::{Error, Result};

/// U-Boot's command prompt.
pub const PROMPT: &[u8] = b"=> ";
const CTRL_C: u8 = 0x03;
const ESC: u8 = 0x1B;

/// Settings of the console driver.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// How long to wait for a prompt after attaching (power-on and autoboot included).
    pub attach_timeout: Duration,
    /// Default time a command may take.
    pub command_timeout: Duration,
    /// Attempts for a command whose echo came back wrong.
    pub retries: u32,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions { attach_timeout: Duration::from_secs(60), command_timeout: Duration::from_secs(30), retries: 8 }
    }
}

/// A U-Boot console at its prompt.
pub struct Console<'a> {
    link: &'a mut dyn SerialLink,
    opts: ConsoleOptions,
}

fn ends_with_prompt(buf: &[u8]) -> bool {
    buf.ends_with(b"\n=> ") || buf == PROMPT
}

impl<'a> Console<'a> {
    /// Waits for U-Boot's prompt: stops autoboot when it counts down, and presses Ctrl-C when
    /// the line is quiet without a prompt.
    pub fn attach(link: &'a mut dyn SerialLink, opts: ConsoleOptions) -> Result<Self> {
        let deadline = Instant::now() + opts.attach_timeout;
        let mut seen: Vec<u8> = Vec::new();
        let mut stopped_autoboot = false;
        let mut quiet_since = Instant::now();
        loop {
            if Instant::now() >= deadline {
                return Err(FlashError::NoPrompt {
                    link: link.name().to_string(),
                    secs: opts.attach_timeout.as_secs(),
                    received: show_bytes(&seen),
                }
                .into());
            }
            let b = read_byte(link, Duration::from_millis(100)).map_err(|e| line_err(link, e))?;
            match b {
                Some(b) => {
                    seen.push(b);
                    quiet_since = Instant::now();
                    if !stopped_autoboot && seen.ends_with(b"autoboot") {
                        link.write_all(b" ").map_err(|e| line_err(link, e))?;
                        stopped_autoboot = true;
                    }
                }
                None => {
                    if ends_with_prompt(&seen) && quiet_since.elapsed() >= Duration::from_millis(200) {
                        return Ok(Console { link, opts });
                    }
                    if quiet_since.elapsed() >= Duration::from_millis(700) {
                        link.write_all(&[CTRL_C]).map_err(|e| line_err(link, e))?;
                        quiet_since = Instant::now();
                    }
                }
            }
        }
    }

    /// A console whose caller already brought the line to the prompt (a previous session left
    /// it there, or another driver attached): no attach, the next command is typed at once.
    pub fn at_prompt(link: &'a mut dyn SerialLink, opts: ConsoleOptions) -> Self {
        Console { link, opts }
    }

    /// The line underneath (for protocol transfers).
    pub fn link(&mut self) -> &mut dyn SerialLink {
        self.link
    }

    /// Runs `cmd` and returns its output (between the echoed command line and the next prompt),
    /// with `\r` removed.
    pub fn run(&mut self, cmd: &str) -> Result<String> {
        let t = self.opts.command_timeout;
        self.run_with(cmd, t)
    }

    /// Like [`Console::run`] with its own time limit.
    pub fn run_with(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.enter(cmd)?;
        let out = self.until_prompt(timeout, cmd)?;
        Ok(clean(&out))
    }

    /// Types `cmd`, checks the echo and presses Enter; retries (Ctrl-C first) on a bad echo.
    pub fn enter(&mut self, cmd: &str) -> Result<()> {
        let mut last = Vec::new();
        for _ in 0..=self.opts.retries {
            drain(self.link, Duration::ZERO, Duration::from_millis(50)).map_err(|e| line_err(self.link, e))?;
            self.link.write_all(cmd.as_bytes()).map_err(|e| line_err(self.link, e))?;
            let echo = self.read_n(cmd.len(), Duration::from_secs(1))?;
            if echo == cmd.as_bytes() {
                self.link.write_all(b"\r").map_err(|e| line_err(self.link, e))?;
                match read_byte(self.link, Duration::from_secs(2)).map_err(|e| line_err(self.link, e))? {
                    Some(b'\r') | Some(b'\n') => return Ok(()),
                    _ => {}
                }
            } else {
                last = echo;
            }
            self.cancel_line()?;
        }
        Err(FlashError::NoisyEcho {
            link: self.link.name().to_string(),
            cmd: cmd.to_string(),
            attempts: self.opts.retries + 1,
            last_echo: show_bytes(&last),
        }
        .into())
    }

    /// Ctrl-C, then waits for a fresh prompt.
    fn cancel_line(&mut self) -> Result<()> {
        let mut got = Vec::new();
        for _ in 0..5 {
            self.link.write_all(&[CTRL_C]).map_err(|e| line_err(self.link, e))?;
            got = drain(self.link, Duration::from_millis(300), Duration::from_secs(3))
                .map_err(|e| line_err(self.link, e))?;
            if ends_with_prompt(&got) || got.ends_with(PROMPT) {
                return Ok(());
            }
        }
        let received = show_bytes(&got[got.len().saturating_sub(48)..]);
        Err(FlashError::NoReturnToPrompt { link: self.link.name().to_string(), received }.into())
    }

    fn read_n(&mut self, n: usize, gap: Duration) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match read_byte(self.link, gap).map_err(|e| line_err(self.link, e))? {
                Some(b) => out.push(b),
                None => break,
            }
        }
        Ok(out)
    }

    /// Collects output until the prompt. A prompt with one damaged byte counts once the line
    /// has been quiet for a while (a noisy line must not hide the end of a command).
    fn until_prompt(&mut self, timeout: Duration, cmd: &str) -> Result<Vec<u8>> {
        self.until_prompt_after(Vec::new(), timeout, cmd)
    }

    /// [`Console::until_prompt`] with output already read.
    fn until_prompt_after(&mut self, seen: Vec<u8>, timeout: Duration, cmd: &str) -> Result<Vec<u8>> {
        let end = Instant::now() + timeout;
        let quiet = Duration::from_millis(400);
        let mut out = seen;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FlashError::CommandTimeout {
                    link: self.link.name().to_string(),
                    cmd: cmd.to_string(),
                    secs: timeout.as_secs(),
                    received: show_bytes(&out),
                }
                .into());
            }
            match read_byte(self.link, left.min(quiet)).map_err(|e| line_err(self.link, e))? {
                Some(b) => {
                    out.push(b);
                    if out.ends_with(b"\n=> ") {
                        out.truncate(out.len() - PROMPT.len());
                        return Ok(out);
                    }
                }
                None if out.len() >= 4 && near_prompt(&out[out.len() - 4..]) => {
                    out.truncate(out.len() - PROMPT.len());
                    return Ok(out);
                }
                None => {}
            }
        }
    }

    /// Waits for the prompt after something else drove the line (e.g. an external sender).
    pub fn wait_prompt(&mut self, timeout: Duration) -> Result<String> {
        self.until_prompt(timeout, "(waiting for the prompt)").map(|o| clean(&o))
    }

    /// Reads an environment variable (`None` when unset).
    pub fn getenv(&mut self, name: &str) -> Result<Option<String>> {
        let out = self.run(&format!("printenv {name}"))?;
        let prefix = format!("{name}=");
        Ok(out.lines().find_map(|l| l.trim().strip_prefix(&prefix).map(str::to_string)))
    }

    /// `crc32 addr len` on the board, retried when the answer is garbled.
    pub fn crc32(&mut self, addr: u64, len: u64) -> Result<u32> {
        let cmd = format!("crc32 {addr:x} {len:x}");
        let mut last = String::new();
        for _ in 0..3 {
            let out = self.run(&cmd)?;
            if let Some(v) = parse_crc32(&out) {
                return Ok(v);
            }
            last = out;
        }
        Err(FlashError::UnreadableAnswer { cmd, link: self.link.name().to_string(), answer: last }.into())
    }

    /// Checks that the board computes `want` over `addr..addr+len`. A differing answer is asked
    /// again: only two equal answers that differ from `want` count as a mismatch (a noisy line
    /// can garble the digits). Returns the board's value.
    pub fn crc32_is(&mut self, addr: u64, len: u64, want: u32) -> Result<u32> {
        let mut answers: Vec<u32> = Vec::new();
        let mut last = !want;
        for _ in 0..4 {
            let got = self.crc32(addr, len)?;
            if got == want || answers.contains(&got) {
                return Ok(got);
            }
            answers.push(got);
            last = got;
        }
        Ok(last)
    }

    /// Loads `data` to `addr` with `loady` (optionally at `baud` for the transfer) and checks
    /// the size U-Boot reports. Retries a failed transfer twice.
    pub fn loady(
        &mut self,
        addr: u64,
        name: &str,
        data: &[u8],
        baud: Option<(u32, u32)>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let mut last: Option<Error> = None;
        for _ in 0..3 {
            match self.loady_once(addr, name, data, baud, reporter) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    note(reporter, &format!("loady failed, retrying: {e}"));
                    last = Some(e);
                    // Let U-Boot give up on its side and come back to the prompt.
                    let _ = self.link.write_all(&[0x18; 5]);
                    let _ = drain(self.link, Duration::from_millis(500), Duration::from_secs(10));
                    self.cancel_line()?;
                }
            }
        }
        Err(last.unwrap_or_else(|| FlashError::LoadyFailed.into()))
    }

    fn loady_once(
        &mut self,
        addr: u64,
        name: &str,
        data: &[u8],
        baud: Option<(u32, u32)>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let cmd = match baud {
            Some((fast, _)) => format!("loady {addr:x} {fast}"),
            None => format!("loady {addr:x}"),
        };
        self.enter(&cmd)?;
        let mut head = Vec::new();
        let end = Instant::now() + Duration::from_secs(5);
        while !contains(&head, b"## Ready for binary") {
            if Instant::now() >= end || ends_with_prompt(&head) {
                return Err(FlashError::LoadyNotStarted {
                    link: self.link.name().to_string(),
                    cmd: cmd.to_string(),
                    received: show_bytes(&head),
                }
                .into());
            }
            if let Some(b) = read_byte(self.link, Duration::from_millis(200)).map_err(|e| line_err(self.link, e))? {
                head.push(b);
                if let Some((fast, _)) = baud
                    && contains(&head, b"press ENTER")
                {
                    std::thread::sleep(Duration::from_millis(100));
                    self.link.set_baud(fast).map_err(|e| line_err(self.link, e))?;
                    self.link.write_all(b"\r").map_err(|e| line_err(self.link, e))?;
                    head.clear();
                }
            }
        }
        let opts = ymodem::SendOptions {
            timing: Timing {
                start: Duration::from_secs(15),
                reply: Duration::from_secs(5),
                retries: 20,
                ..Timing::default()
            },
            ..ymodem::SendOptions::default()
        };
        let sent = ymodem::send(self.link, &[ymodem::Outgoing { name, data }], &opts, reporter);
        let mut before = Vec::new();
        if let Some((_, slow)) = baud {
            // U-Boot asks for ESC at the old speed after the transfer.
            before = drain(self.link, Duration::from_millis(300), Duration::from_secs(5))
                .map_err(|e| line_err(self.link, e))?;
            self.link.set_baud(slow).map_err(|e| line_err(self.link, e))?;
            std::thread::sleep(Duration::from_millis(100));
            self.link.write_all(&[ESC]).map_err(|e| line_err(self.link, e))?;
        }
        let stats = sent?;
        let out = clean(&self.until_prompt_after(before, Duration::from_secs(20), &cmd)?);
        if out.contains("aborted") {
            return Err(FlashError::TransferAborted { answer: out.trim().to_string() }.into());
        }
        if let Some(size) = parse_total_size(&out)
            && size != data.len() as u64
        {
            return Err(FlashError::WrongSize { received: size, sent: data.len() }.into());
        }
        if stats.retransmits > 0 {
            note(reporter, &format!("{} blocks retransmitted", stats.retransmits));
        }
        Ok(())
    }
}

fn line_err(link: &dyn SerialLink, source: std::io::Error) -> Error {
    FlashError::SerialLine { link: link.name().to_string(), source }.into()
}

/// Four bytes that differ from `\n=> ` in at most one place.
fn near_prompt(tail: &[u8]) -> bool {
    tail.iter().zip(b"\n=> ").filter(|(a, b)| a != b).count() <= 1
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn clean(out: &[u8]) -> String {
    String::from_utf8_lossy(out).replace('\r', "")
}

/// Parses `crc32 for 80200000 ... 8020000f ==> b1fb5457`.
pub fn parse_crc32(out: &str) -> Option<u32> {
    let line = out.lines().find(|l| l.to_ascii_lowercase().starts_with("crc32 for "))?;
    let hex = line.rsplit("==> ").next()?.trim();
    if hex.len() != 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Parses `## Total Size      = 0x00024eb7 = 151223 Bytes`.
pub fn parse_total_size(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.starts_with("## Total Size"))?;
    let dec = line.split('=').nth(2)?.trim().strip_suffix("Bytes")?.trim();
    dec.parse().ok()
}

/// Parses `virtio write: device 0 block # 2048, count 8 ... 8 blocks written: OK` (and the
/// `mmc`/`read` forms): the block count reported done.
pub fn parse_blocks_done(out: &str, verb: &str) -> Option<u64> {
    let tail = format!("blocks {verb}: OK");
    let line = out.lines().find(|l| l.trim_end().ends_with(&tail))?;
    let before = line.trim_end().strip_suffix(&tail)?.trim_end();
    before.rsplit(' ').next()?.parse().ok()
}

/// Words in U-Boot output that mean a command failed.
pub fn board_error(out: &str) -> Option<&str> {
    out.lines().map(str::trim).find(|l| {
        let low = l.to_ascii_lowercase();
        low.contains("error")
            || low.starts_with("unknown command")
            || low.starts_with("usage:")
            || low.contains("failed")
            || low.contains("not found")
            || low.starts_with("no ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_console_answers() {
        assert_eq!(parse_crc32("crc32 for 80200000 ... 8020000f ==> b1fb5457\n"), Some(0xb1fb5457));
        assert_eq!(parse_crc32("crc32 for 80200000 ... 8020000f ==> b1fb54\n"), None);
        assert_eq!(parse_total_size("## Total Size      = 0x00024eb7 = 151223 Bytes\n## Start Addr"), Some(151223));
        assert_eq!(
            parse_blocks_done("virtio write: device 0 block # 2048, count 8 ... 8 blocks written: OK\n", "written"),
            Some(8)
        );
        assert_eq!(parse_blocks_done("MMC read: dev # 0, block # 0, count 3 ... 3 blocks read: OK", "read"), Some(3));
        assert!(board_error("Unknown command 'virtio' - try 'help'").is_some());
        assert!(board_error("SF: 65536 bytes @ 0x0 Erased: OK").is_none());
    }
}
