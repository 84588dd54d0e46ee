//! One run's reporting: picks the renderers (`--json`, TTY, plain, plus `--junit`), passes every
//! event to each of them, counts derivations and ends with the `summary` event.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::{Event, Json, Junit, Plain, Reporter, SCHEMA, Tty};
use crate::{Error, Result};

/// How the user asked for output.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--json`: JSON lines on stdout instead of text on stderr.
    pub json: bool,
    /// `--junit FILE`: also write a JUnit report.
    pub junit: Option<PathBuf>,
    /// `-v`: log lines on the console.
    pub verbose: bool,
}

#[derive(Default)]
struct Counts {
    derivations: usize,
    built: usize,
    cached: usize,
    failed: usize,
}

/// The reporter of one run: a tee over the chosen renderers.
pub struct Session {
    renderers: Vec<Box<dyn Reporter>>,
    names: Vec<&'static str>,
    started: Instant,
    counts: Mutex<Counts>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("renderers", &self.names).finish()
    }
}

/// True when `CI` says we run in a CI job (`CI=true`, `CI=1`, any value but empty/0/false).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

impl Session {
    /// `--json` -> JSON lines; else a TTY display when stderr is a terminal outside CI; else
    /// plain lines. `--junit` adds the JUnit collector to either.
    pub fn new(opts: &Options) -> Session {
        let (main, name): (Box<dyn Reporter>, &'static str) = if opts.json {
            (Box::new(Json::new()), "json")
        } else if std::io::stderr().is_terminal() && !in_ci() {
            (Box::new(Tty::new(opts.verbose)), "tty")
        } else {
            (Box::new(Plain::new(opts.verbose)), "plain")
        };
        let mut s = Session::with(vec![main]);
        s.names = vec![name];
        if let Some(p) = &opts.junit {
            s.renderers.push(Box::new(Junit::new(p.clone())));
            s.names.push("junit");
        }
        s
    }

    /// A session over the given renderers.
    pub fn with(renderers: Vec<Box<dyn Reporter>>) -> Session {
        Session { names: vec!["custom"; renderers.len()], renderers, started: Instant::now(), counts: Mutex::default() }
    }

    /// Sends the `summary` event for `result` and lets every renderer finish (the JUnit file
    /// is written here). An error writing a report is returned; the run's own error comes first.
    pub fn finish(&self, command: &str, result: &Result<()>) -> Result<()> {
        let (derivations, built, cached, failed) = match self.counts.lock() {
            Ok(c) => (c.derivations, c.built, c.cached, c.failed),
            Err(_) => (0, 0, 0, 0),
        };
        let (ok, exit_code, error) = match result {
            Ok(()) => (true, 0, None),
            Err(e) => (false, e.kind().exit_code(), Some(message(e))),
        };
        self.event(&Event::Summary {
            schema: SCHEMA,
            command: command.to_string(),
            ok,
            exit_code,
            seconds: self.started.elapsed().as_secs_f64(),
            derivations,
            built,
            cached,
            failed,
            error,
        });
        let mut first = None;
        for r in &self.renderers {
            if let Err(e) = r.finish() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The error's message with its help line, as one text.
fn message(e: &Error) -> String {
    match miette::Diagnostic::help(e) {
        Some(h) => format!("{e}\nhelp: {h}"),
        None => e.to_string(),
    }
}

impl Reporter for Session {
    fn event(&self, e: &Event) {
        if let Ok(mut c) = self.counts.lock() {
            match e {
                Event::Queued { .. } => c.derivations += 1,
                Event::Finished { ok: false, .. } => c.failed += 1,
                Event::Finished { cached: true, .. } => c.cached += 1,
                Event::Finished { .. } => c.built += 1,
                _ => {}
            }
        }
        for r in &self.renderers {
            r.event(e);
        }
    }
}
