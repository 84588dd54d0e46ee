//! The terminal display: an indicatif MultiProgress with one spinner line per running
//! component (strategy, host, elapsed) and an overall bar (done/total derivations, ETA), and a
//! bar for a serial transfer (bytes, rate, ETA). Other events print as lines above the bars
//! without breaking them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Reporter, plain};

struct Bars {
    overall: Option<ProgressBar>,
    running: BTreeMap<String, ProgressBar>,
    queued: u64,
    transfer: Option<ProgressBar>,
}

/// Progress bars on stderr.
pub struct Tty {
    verbose: bool,
    multi: MultiProgress,
    bars: Mutex<Bars>,
}

impl Tty {
    pub fn new(verbose: bool) -> Self {
        Tty {
            verbose,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(Bars { overall: None, running: BTreeMap::new(), queued: 0, transfer: None }),
        }
    }

    fn println(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    fn overall(&self, bars: &mut Bars, total: u64) -> ProgressBar {
        if let Some(b) = &bars.overall {
            if b.length().unwrap_or(0) < total {
                b.set_length(total);
            }
            return b.clone();
        }
        let style =
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} derivations, {elapsed} (ETA {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let b = self.multi.add(ProgressBar::new(total).with_style(style).with_prefix("build"));
        bars.overall = Some(b.clone());
        b
    }

    fn started(&self, bars: &mut Bars, component: &str, strategy: &str, host: &str) {
        let style = ProgressStyle::with_template("{spinner} {prefix:<20} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner().with_style(style).with_prefix(component.to_string());
        bar.set_message(format!("({strategy}) on {host}"));
        // Running lines go above the overall bar, which stays last.
        let bar = match &bars.overall {
            Some(o) => self.multi.insert_before(o, bar),
            None => self.multi.add(bar),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        bars.running.insert(component.to_string(), bar);
    }

    fn transfer_started(&self, bars: &mut Bars, label: &str, total: u64) {
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(total).with_style(style).with_prefix(label.to_string()));
        if let Some(old) = bars.transfer.replace(bar) {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
    }

    /// The bar goes; its last state stays as a line above the others.
    fn transfer_finished(&self, bars: &mut Bars, e: &Event) {
        if let Some(b) = bars.transfer.take() {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
        if let Some(l) = plain::line(e, self.verbose) {
            self.println(&l);
        }
    }
}

impl Reporter for Tty {
    fn event(&self, e: &Event) {
        let Ok(mut bars) = self.bars.lock() else { return };
        match e {
            Event::Plan { derivations, .. } => {
                self.overall(&mut bars, *derivations as u64);
            }
            Event::Queued { .. } => {
                bars.queued += 1;
                let total = bars.queued;
                self.overall(&mut bars, total);
            }
            Event::Started { component, host, strategy, .. } => self.started(&mut bars, component, strategy, host),
            Event::TransferStarted { label, total } => self.transfer_started(&mut bars, label, *total),
            Event::TransferProgress { done, .. } => {
                if let Some(b) = &bars.transfer {
                    b.set_position(*done);
                }
            }
            Event::TransferFinished { .. } => self.transfer_finished(&mut bars, e),
            Event::Finished { component, .. } => {
                if let Some(b) = bars.running.remove(component) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
                if let Some(o) = &bars.overall {
                    o.inc(1);
                    if o.length().is_some_and(|len| o.position() >= len) && bars.running.is_empty() {
                        o.finish_and_clear();
                    }
                }
                if let Some(l) = plain::line(e, self.verbose) {
                    self.println(&l);
                }
            }
            Event::Summary { .. } => {
                for (_, b) in std::mem::take(&mut bars.running) {
                    b.finish_and_clear();
                }
                if let Some(b) = bars.transfer.take() {
                    b.finish_and_clear();
                }
                if let Some(o) = bars.overall.take() {
                    o.finish_and_clear();
                }
                if let Some(l) = plain::line(e, self.verbose) {
                    self.println(&l);
                }
            }
            _ => {
                if let Some(l) = plain::line(e, self.verbose) {
                    self.println(&l);
                }
            }
        }
    }

    fn finish(&self) -> crate::Result<()> {
        let _ = self.multi.clear();
        Ok(())
    }
}
