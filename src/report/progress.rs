//! Bridge from the flash driver's `Progress` callback to events: the driver's own renderer
//! (bar or lines) keeps drawing, and every transfer and note also becomes an event for
//! `--json` and `--junit`.

use std::time::{Duration, Instant};

use crate::flash::progress::Progress;

use super::{Event, Reporter};

/// Progress events at most this often per transfer (plus the start and the end).
const EVERY: Duration = Duration::from_millis(500);

/// Forwards to `inner` and emits `transfer-*` and `note` events.
pub struct FlashEvents<'a> {
    inner: Box<dyn Progress + 'a>,
    reporter: &'a dyn Reporter,
    label: String,
    total: u64,
    done: u64,
    retransmits: u64,
    started: Option<Instant>,
    last: Option<Instant>,
}

impl<'a> FlashEvents<'a> {
    pub fn new(inner: Box<dyn Progress + 'a>, reporter: &'a dyn Reporter) -> Self {
        FlashEvents {
            inner,
            reporter,
            label: String::new(),
            total: 0,
            done: 0,
            retransmits: 0,
            started: None,
            last: None,
        }
    }
}

impl Progress for FlashEvents<'_> {
    fn start(&mut self, label: &str, total: u64) {
        self.inner.start(label, total);
        self.label = label.to_string();
        (self.total, self.done, self.retransmits) = (total, 0, 0);
        self.started = Some(Instant::now());
        self.last = None;
        self.reporter.event(&Event::TransferStarted { label: self.label.clone(), total });
    }

    fn advance(&mut self, done: u64) {
        self.inner.advance(done);
        self.done = done;
        if self.last.is_none_or(|l| l.elapsed() >= EVERY) {
            self.last = Some(Instant::now());
            self.reporter.event(&Event::TransferProgress { label: self.label.clone(), done, total: self.total });
        }
    }

    fn retransmit(&mut self) {
        self.inner.retransmit();
        self.retransmits += 1;
    }

    fn finish(&mut self) {
        self.inner.finish();
        self.reporter.event(&Event::TransferFinished {
            label: self.label.clone(),
            bytes: self.done,
            retransmits: self.retransmits,
            seconds: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
        });
    }

    fn note(&mut self, text: &str) {
        self.inner.note(text);
        self.reporter.event(&Event::Note { text: text.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::flash::progress::Silent;

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
        let mut p = FlashEvents::new(Box::new(Silent), &rec);
        p.start("disk.img", 1000);
        for done in (0..=1000).step_by(100) {
            p.advance(done);
        }
        p.retransmit();
        p.finish();
        p.note("=> crc32 ok");
        drop(p);
        let events = rec.0.into_inner().unwrap_or_default();
        assert!(matches!(&events[0], Event::TransferStarted { total: 1000, .. }));
        let progress = events.iter().filter(|e| matches!(e, Event::TransferProgress { .. })).count();
        assert_eq!(progress, 1, "the first advance is reported, the rest within 500 ms are not: {events:?}");
        assert!(matches!(&events[events.len() - 2], Event::TransferFinished { bytes: 1000, retransmits: 1, .. }));
        assert!(matches!(events.last(), Some(Event::Note { text }) if text == "=> crc32 ok"));
    }
}
