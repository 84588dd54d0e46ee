//! A serial console session (`rvbuild monitor`): every byte from the port goes unchanged to the
//! output and the log, input bytes go unchanged to the port; the session ends on the escape
//! byte (interactive), on a marker (CI), on a timeout, or when the port vanishes.
//!
//! Reading the port runs on its own thread that only moves bytes into a channel, so a slow
//! terminal or log never makes the port's receive buffer overflow.

pub mod error;
pub mod marker;

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serialport::TTYPort;

use crate::flash::SerialLink;
use crate::flash::port;
use crate::vocab::cancel;
use crate::{Error, Result};

pub use error::MonitorError;
use marker::{Finder, Tail};

/// Ctrl-], the byte that ends an interactive session (as in telnet, espflash and tio).
pub const ESCAPE: u8 = 0x1d;

/// How a session is run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// End with success as soon as these bytes were received.
    pub until: Option<String>,
    /// Give up after this long (an error when a marker was awaited).
    pub timeout: Option<Duration>,
    /// An input byte that ends the session instead of being sent (interactive input only).
    pub escape: Option<u8>,
}

/// Why a session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The marker was received.
    Marker,
    /// The escape byte was typed.
    Left,
    /// The output was closed (e.g. a pipe into `head`).
    OutputClosed,
    /// The timeout passed without a marker being asked for.
    TimedOut,
}

/// What a session did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub ending: Ending,
    /// Bytes received from the port.
    pub received: u64,
    /// Bytes sent to the port.
    pub sent: u64,
    pub seconds: f64,
}

/// Opens `path` for a session at `baud`: exclusive (another rvbuild, picocom or tio holding it
/// makes it busy: exit 6, as for every command that opens a port), 8N1, no flow control.
pub fn open(path: &str, baud: u32) -> Result<TTYPort> {
    if !Path::new(path).exists() {
        return Err(MonitorError::NoSuchPort { path: path.to_string() }.into());
    }
    // A busy port keeps the port module's class (exit 6), as for `rvbuild flash` and `serial`.
    port::open(path, baud)
}

enum Msg {
    Rx(Vec<u8>),
    RxGone(io::Error),
    In(Vec<u8>),
    InClosed,
}

/// Runs a session on `link` until it ends. `input`, when given, is read on a thread of its own
/// (it may block forever: the thread is left behind when the session ends); `log` receives
/// exactly the bytes `out` does.
pub fn run<'l>(
    link: TTYPort,
    input: Option<Box<dyn Read + Send>>,
    out: &mut dyn Write,
    log: Option<(&'l Path, &'l mut dyn Write)>,
    opts: &Options,
) -> Result<Summary> {
    let name = SerialLink::name(&link);
    let reader = link.try_clone_native().map_err(|e| MonitorError::Vanished {
        port: name.clone(),
        bytes: 0,
        tail: String::new(),
        source: io::Error::from(e),
    })?;
    let mut writer = link;
    let (tx, rx) = mpsc::channel::<Msg>();
    let stop = Arc::new(AtomicBool::new(false));
    let read_thread = spawn_reader(reader, tx.clone(), stop.clone());
    if let Some(input) = input {
        spawn_input(input, tx.clone());
    }
    drop(tx);

    let started = Instant::now();
    let deadline = opts.timeout.map(|t| started + t);
    let mut console = Console {
        out,
        log,
        finder: opts.until.as_deref().map(|m| Finder::new(m.as_bytes())),
        tail: Tail::new(4096),
        received: 0,
    };
    let mut sent = 0u64;
    let summary = |ending, received, sent| Summary { ending, received, sent, seconds: started.elapsed().as_secs_f64() };
    let vanished = |console: &Console, source| -> Error {
        MonitorError::Vanished { port: name.clone(), bytes: console.received, tail: console.tail.text(20), source }
            .into()
    };
    let result = loop {
        if cancel::interrupted() {
            break Err(Error::from(cancel::Interrupted));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            // What already arrived counts: the marker may be in it.
            let mut ended = None;
            while let Ok(Msg::Rx(data)) = rx.try_recv() {
                if let Some(e) = console.take(&data) {
                    ended = Some(e);
                    break;
                }
            }
            break match (ended, &opts.until) {
                (Some(e), _) => e.map(|ending| summary(ending, console.received, sent)),
                (None, Some(m)) => Err(MonitorError::NoMarker {
                    marker: m.clone(),
                    port: name.clone(),
                    secs: opts.timeout.map(|t| t.as_secs()).unwrap_or(0),
                    bytes: console.received,
                    tail: console.tail.text(20),
                }
                .into()),
                (None, None) => Ok(summary(Ending::TimedOut, console.received, sent)),
            };
        }
        let wait =
            deadline.map(|d| d.saturating_duration_since(now)).unwrap_or(Duration::MAX).min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(Msg::Rx(data)) => {
                if let Some(e) = console.take(&data) {
                    break e.map(|ending| summary(ending, console.received, sent));
                }
            }
            Ok(Msg::RxGone(source)) => break Err(vanished(&console, source)),
            Ok(Msg::In(data)) => {
                let (send, leave) = match opts.escape.and_then(|e| data.iter().position(|&b| b == e)) {
                    Some(i) => (&data[..i], true),
                    None => (&data[..], false),
                };
                if !send.is_empty() {
                    if let Err(source) = SerialLink::write_all(&mut writer, send) {
                        break Err(vanished(&console, source));
                    }
                    sent += send.len() as u64;
                }
                if leave {
                    break Ok(summary(Ending::Left, console.received, sent));
                }
            }
            // Input at its end (a pipe, /dev/null): keep showing the console.
            Ok(Msg::InClosed) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(vanished(&console, io::Error::other("the reading thread stopped")));
            }
        }
    };
    stop.store(true, Ordering::SeqCst);
    let _ = read_thread.join();
    result
}

/// Where received bytes go: the output, the log, the marker finder and the tail.
struct Console<'a, 'l> {
    out: &'a mut dyn Write,
    log: Option<(&'l Path, &'l mut dyn Write)>,
    finder: Option<Finder>,
    tail: Tail,
    received: u64,
}

impl Console<'_, '_> {
    /// Passes `data` on; `Some` when the session ends with it (marker, closed output, error).
    fn take(&mut self, data: &[u8]) -> Option<Result<Ending>> {
        self.received += data.len() as u64;
        self.tail.push(data);
        if let Some((path, log)) = self.log.as_mut()
            && let Err(source) = log.write_all(data).and_then(|_| log.flush())
        {
            return Some(Err(MonitorError::Log { path: path.to_path_buf(), source }.into()));
        }
        if let Err(e) = self.out.write_all(data).and_then(|_| self.out.flush()) {
            return Some(match e.kind() {
                io::ErrorKind::BrokenPipe => Ok(Ending::OutputClosed),
                _ => Err(MonitorError::Output { source: e }.into()),
            });
        }
        self.finder.as_mut().is_some_and(|f| f.feed(data)).then_some(Ok(Ending::Marker))
    }
}

/// Moves the port's bytes into the channel until the port fails or `stop` is set.
fn spawn_reader(mut port: TTYPort, tx: mpsc::Sender<Msg>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::SeqCst) {
            match port.read_timeout(&mut buf, Duration::from_millis(50)) {
                Ok(0) => {}
                Ok(n) => {
                    if tx.send(Msg::Rx(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Msg::RxGone(e));
                    return;
                }
            }
        }
    })
}

fn spawn_input(mut input: Box<dyn Read + Send>, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match input.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Msg::InClosed);
                    return;
                }
                Ok(n) => {
                    if tx.send(Msg::In(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    let _ = tx.send(Msg::InClosed);
                    return;
                }
            }
        }
    });
}
