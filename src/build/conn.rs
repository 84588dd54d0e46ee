//! Serve sessions to the builders, kept open and reused: one idle list per builder (a
//! session runs one request at a time, so a build slot holds one), each session with a log
//! route that sends its builder's stderr to the log file of the derivation it is building.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::error::BuildError;
use crate::Result;
use crate::nix::serve::ServeClient;
use crate::transport::Transport;
use crate::vocab::Event;

/// Where a session's stderr lines go while it builds one derivation.
struct LogTarget {
    source: String,
    file: File,
}

/// One open serve session and its log route.
pub(crate) struct Conn {
    pub client: ServeClient,
    route: Arc<Mutex<Option<LogTarget>>>,
}

impl Conn {
    /// Opens a session on `transport`; its stderr lines go to the current log target and,
    /// as `Log` events, to `events`.
    pub(crate) async fn open(transport: &dyn Transport, events: mpsc::UnboundedSender<Event>) -> Result<Conn> {
        let channel = transport.open_serve().await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let route: Arc<Mutex<Option<LogTarget>>> = Arc::new(Mutex::new(None));
        let r = route.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let source = match r.lock() {
                    Ok(mut guard) => match guard.as_mut() {
                        Some(t) => {
                            let _ = writeln!(t.file, "{line}");
                            Some(t.source.clone())
                        }
                        None => None,
                    },
                    Err(_) => None,
                };
                if let Some(source) = source {
                    let _ = events.send(Event::Log { source, line });
                }
            }
        });
        let client = ServeClient::connect(channel, Some(tx)).await?;
        Ok(Conn { client, route })
    }

    /// Sends this session's stderr to `log` (created fresh) as lines of `source`.
    pub(crate) fn log_to(&self, source: &str, log: &Path) -> Result<()> {
        let file = File::create(log).map_err(|source| BuildError::Log { path: log.to_path_buf(), source })?;
        if let Ok(mut guard) = self.route.lock() {
            *guard = Some(LogTarget { source: source.to_string(), file });
        }
        Ok(())
    }

    /// Stops routing stderr lines to a log (between builds: transfers print nothing useful).
    pub(crate) fn log_off(&self) {
        if let Ok(mut guard) = self.route.lock() {
            *guard = None;
        }
    }
}

/// Idle sessions of one builder.
#[derive(Default)]
pub(crate) struct Idle(Mutex<Vec<Conn>>);

impl Idle {
    /// An idle session, or a new one.
    pub(crate) async fn take(&self, transport: &dyn Transport, events: &mpsc::UnboundedSender<Event>) -> Result<Conn> {
        let pooled = match self.0.lock() {
            Ok(mut v) => v.pop(),
            Err(_) => None,
        };
        match pooled {
            Some(c) if c.client.is_usable() => Ok(c),
            _ => Conn::open(transport, events.clone()).await,
        }
    }

    /// Returns a session after use; a session left out of step is dropped (closing it).
    pub(crate) fn give_back(&self, conn: Conn) {
        conn.log_off();
        if conn.client.is_usable()
            && let Ok(mut v) = self.0.lock()
        {
            v.push(conn);
        }
    }

    /// Closes every idle session (a builder that went down).
    pub(crate) fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}
