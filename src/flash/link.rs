//! The byte pipe every protocol runs over: [`SerialLink`], implemented by real serial ports and
//! by ptys alike, plus the timed read helpers the protocols and the console driver share.

use std::io;
use std::time::{Duration, Instant};

/// A bidirectional byte line with timed reads and a settable speed.
pub trait SerialLink {
    /// Reads what is available into `buf`, waiting at most `timeout` for the first byte.
    /// Returns `Ok(0)` when nothing arrived in time.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Writes every byte of `data`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Changes the line speed (a no-op on ptys).
    fn set_baud(&mut self, baud: u32) -> io::Result<()>;
    /// A name for messages, e.g. the device path.
    fn name(&self) -> String;
}

/// Reads one byte, or `None` after `timeout` without one.
pub fn read_byte(link: &mut dyn SerialLink, timeout: Duration) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match link.read_timeout(&mut b, timeout)? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// Fills `buf`; each byte may take up to `gap`. Returns how many bytes arrived before the line
/// went quiet (`buf.len()` when complete).
pub fn read_full(link: &mut dyn SerialLink, buf: &mut [u8], gap: Duration) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = match link.read_timeout(&mut buf[got..], gap) {
            Ok(n) => n,
            // Return what arrived (it may end in a cancel); the next read reports the error.
            Err(_) if got > 0 => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Reads and returns everything until the line has been quiet for `quiet`, or `max` has passed.
pub fn drain(link: &mut dyn SerialLink, quiet: Duration, max: Duration) -> io::Result<Vec<u8>> {
    let end = Instant::now() + max;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(out);
        }
        let n = link.read_timeout(&mut buf, quiet.min(left))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

impl SerialLink for serialport::TTYPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        self.set_timeout(timeout).map_err(io::Error::from)?;
        match io::Read::read(self, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        use serialport::SerialPort;
        self.set_timeout(Duration::from_secs(10)).map_err(io::Error::from)?;
        io::Write::write_all(self, data)
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        use serialport::SerialPort;
        self.set_baud_rate(baud).map_err(io::Error::from)
    }

    fn name(&self) -> String {
        use serialport::SerialPort;
        SerialPort::name(self).unwrap_or_else(|| "pty".to_string())
    }
}

/// A link that counts the bytes written to and read from the line underneath (the report's
/// "bytes on the wire").
pub struct Counting<'a> {
    inner: &'a mut dyn SerialLink,
    /// Bytes sent to the board.
    pub sent: u64,
    /// Bytes received from the board.
    pub received: u64,
}

impl<'a> Counting<'a> {
    pub fn new(inner: &'a mut dyn SerialLink) -> Self {
        Counting { inner, sent: 0, received: 0 }
    }
}

impl SerialLink for Counting<'_> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let n = self.inner.read_timeout(buf, timeout)?;
        self.received += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        self.sent += data.len() as u64;
        Ok(())
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.inner.set_baud(baud)
    }

    fn name(&self) -> String {
        self.inner.name()
    }
}
