//! Transfer progress as events: [`Progress`] turns a protocol's start / advance / retransmit /
//! finish into `transfer-started`, `transfer-progress` (at most every 500 ms) and
//! `transfer-finished` events on a `Reporter`, and [`note`] sends a status line as a `note`
//! event. The flash layer never prints: the renderers in `report` draw bars or lines.

use std::time::{Duration, Instant};

use crate::vocab::{Event, Reporter};

/// Progress events at most this often per transfer (plus the start and the end).
const EVERY: Duration = Duration::from_millis(500);

/// Sends a status line (a console command, a check result) as a `note` event.
pub fn note(reporter: &dyn Reporter, text: &str) {
    reporter.event(&Event::Note { text: text.to_string() });
}

/// The counters of the current transfer, reported as events.
pub struct Progress<'r> {
    reporter: &'r dyn Reporter,
    label: String,
    total: u64,
    done: u64,
    retransmits: u64,
    started: Option<Instant>,
    last: Option<Instant>,
}

impl<'r> Progress<'r> {
    pub fn new(reporter: &'r dyn Reporter) -> Self {
        Progress { reporter, label: String::new(), total: 0, done: 0, retransmits: 0, started: None, last: None }
    }

    /// A transfer of `total` bytes (0 when unknown) begins.
    pub fn start(&mut self, label: &str, total: u64) {
        self.label = label.to_string();
        (self.total, self.done, self.retransmits) = (total, 0, 0);
        self.started = Some(Instant::now());
        self.last = None;
        self.reporter.event(&Event::TransferStarted { label: self.label.clone(), total });
    }

    /// `done` bytes of the current transfer are through.
    pub fn advance(&mut self, done: u64) {
        self.done = done;
        if self.last.is_none_or(|l| l.elapsed() >= EVERY) {
            self.last = Some(Instant::now());
            self.reporter.event(&Event::TransferProgress { label: self.label.clone(), done, total: self.total });
        }
    }

    /// A block had to be sent or requested again.
    pub fn retransmit(&mut self) {
        self.retransmits += 1;
    }

    /// The current transfer ended.
    pub fn finish(&mut self) {
        self.reporter.event(&Event::TransferFinished {
            label: self.label.clone(),
            bytes: self.done,
            retransmits: self.retransmits,
            seconds: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<Event>>);

    impl Reporter for Record {
        fn event(&self, e: &Event) {
            if let Ok(mut v) = self.0.lock() {
                v.push(e.clone());
            }
        }
    }

    #[test]
    fn a_transfer_becomes_start_throttled_progress_and_finish_events() {
        let rec = Record::default();
        let mut p = Progress::new(&rec);
        p.start("disk.img", 1000);
        for done in (0..=1000).step_by(100) {
            p.advance(done);
        }
        p.retransmit();
        p.finish();
        note(&rec, "=> crc32 ok");
        let events = rec.0.into_inner().unwrap_or_default();
        assert!(matches!(&events[0], Event::TransferStarted { total: 1000, .. }));
        let progress = events.iter().filter(|e| matches!(e, Event::TransferProgress { .. })).count();
        assert_eq!(progress, 1, "the first advance is reported, the rest within 500 ms are not: {events:?}");
        assert!(matches!(&events[events.len() - 2], Event::TransferFinished { bytes: 1000, retransmits: 1, .. }));
        assert!(matches!(events.last(), Some(Event::Note { text }) if text == "=> crc32 ok"));
    }
}
