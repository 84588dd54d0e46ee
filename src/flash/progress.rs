//! Transfer progress: the [`Progress`] callback the protocols and the flash plan report to, and
//! its renderers (an indicatif bar on a terminal, plain lines in CI or pipes, nothing at all).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Receives progress of transfers and steps. Core code never prints; it calls this.
pub trait Progress {
    /// A transfer of `total` bytes (0 when unknown) begins.
    fn start(&mut self, label: &str, total: u64);
    /// `done` bytes of the current transfer are through.
    fn advance(&mut self, done: u64);
    /// A block had to be sent or requested again.
    fn retransmit(&mut self);
    /// The current transfer ended.
    fn finish(&mut self);
    /// A status line (a console command, a check result).
    fn note(&mut self, text: &str);
}

/// Discards every report.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn retransmit(&mut self) {}
    fn finish(&mut self) {}
    fn note(&mut self, _: &str) {}
}

/// Picks the renderer for stderr: a bar on a terminal unless `CI` is set, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    if std::io::stderr().is_terminal() && !ci { Box::new(Bar::default()) } else { Box::new(Lines::default()) }
}

/// Counters for one transfer, shared by the renderers.
#[derive(Debug, Default)]
struct Transfer {
    label: String,
    total: u64,
    done: u64,
    retransmits: u64,
    started: Option<Instant>,
}

impl Transfer {
    fn rate(&self) -> f64 {
        let secs = self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        if secs > 0.0 { self.done as f64 / secs } else { 0.0 }
    }

    fn summary(&self) -> String {
        let rate = self.rate();
        let eta = if rate > 0.0 && self.total > self.done {
            format!(", ETA {:.0}s", (self.total - self.done) as f64 / rate)
        } else {
            String::new()
        };
        format!(
            "{}: {}/{} bytes, {:.1} KiB/s{}, {} retransmitted",
            self.label,
            self.done,
            self.total,
            rate / 1024.0,
            eta,
            self.retransmits
        )
    }
}

/// Plain lines on stderr, at most one every two seconds per transfer plus one at the end.
#[derive(Debug, Default)]
pub struct Lines {
    t: Transfer,
    last: Option<Instant>,
}

impl Progress for Lines {
    fn start(&mut self, label: &str, total: u64) {
        self.t = Transfer { label: label.to_string(), total, started: Some(Instant::now()), ..Transfer::default() };
        self.last = Some(Instant::now());
        eprintln!("{label}: {total} bytes to transfer");
    }
    fn advance(&mut self, done: u64) {
        self.t.done = done;
        if self.last.is_none_or(|l| l.elapsed() >= Duration::from_secs(2)) {
            self.last = Some(Instant::now());
            eprintln!("{}", self.t.summary());
        }
    }
    fn retransmit(&mut self) {
        self.t.retransmits += 1;
    }
    fn finish(&mut self) {
        eprintln!("{} (done)", self.t.summary());
    }
    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// An indicatif bar with bytes, rate, ETA and the retransmission count.
#[derive(Default)]
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    retransmits: u64,
}

impl Progress for Bar {
    fn start(&mut self, label: &str, total: u64) {
        let bar = indicatif::ProgressBar::new(total);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        self.retransmits = 0;
        self.bar = Some(bar);
    }
    fn advance(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn retransmit(&mut self) {
        self.retransmits += 1;
        if let Some(b) = &self.bar {
            b.set_message(format!("{} retransmitted", self.retransmits));
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
    fn note(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}
