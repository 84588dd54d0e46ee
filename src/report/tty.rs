//! The terminal display: the live view of `live` drawn at the bottom of stderr and redrawn a
//! few times a second (running derivations with host, strategy, elapsed time and estimate;
//! builders with busy slots and transfers; failed derivations with their log tails; a serial
//! transfer with its rate and ETA; the scheduler's ETA), with finished work and notes printed
//! as lines above it. The view never
//! takes more than three quarters of the terminal's height and no line is wider than it. When
//! the run ends, the view's last state stays on the screen without any running line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::live::View;
use super::{Event, Reporter, plain};

/// How often the view is redrawn (elapsed times and the ETA move on their own) and the lines
/// for above it are printed while a build runs: a flood of log lines (`-v`) costs one redraw
/// per tick, not one per line.
const TICK: Duration = Duration::from_millis(200);

struct State {
    view: View,
    /// Lines of the view now on the screen, below the printed lines.
    drawn: usize,
    /// Lines to print above the view at the next redraw.
    above: Vec<String>,
    /// Whether the view has been drawn at least once.
    shown: bool,
    stop: bool,
}

/// The live view on stderr.
pub struct Tty {
    verbose: bool,
    state: Arc<Mutex<State>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

/// (rows, columns) of the terminal on stderr; 24x80 when it cannot be told.
fn size() -> (usize, usize) {
    console::Term::stderr().size_checked().map_or((24, 80), |(r, c)| (usize::from(r), usize::from(c)))
}

/// Lines the view may take in a terminal of `rows`: three quarters, at least one.
fn view_height(rows: usize) -> usize {
    (rows * 3 / 4).max(1)
}

impl State {
    /// Removes the view from the screen, leaving the cursor where it began. Line by line:
    /// erasing to the end of the screen from its top-left corner would make tmux scroll the
    /// whole screen into its history.
    fn clear(&mut self, out: &mut String) {
        if self.drawn == 0 {
            return;
        }
        out.push_str(&format!("\x1b[{}A\r", self.drawn));
        for i in 0..self.drawn {
            out.push_str("\x1b[2K");
            if i + 1 < self.drawn {
                out.push_str("\x1b[1B");
            }
        }
        if self.drawn > 1 {
            out.push_str(&format!("\x1b[{}A", self.drawn - 1));
        }
        self.drawn = 0;
    }

    /// Prints the lines waiting to go above the view, then draws the view.
    fn flush(&mut self, out: &mut String, now: Instant) {
        if !self.above.is_empty() {
            self.clear(out);
            for l in std::mem::take(&mut self.above) {
                out.push_str(&l);
                out.push('\n');
            }
        }
        self.draw(out, now);
    }

    /// Draws the view over the one on the screen (each line overwritten, leftovers erased).
    fn draw(&mut self, out: &mut String, now: Instant) {
        if !self.view.live() {
            self.clear(out);
            return;
        }
        let (rows, cols) = size();
        // One column less than the width: a line that fills the last column would wrap.
        let lines = self.view.frame(now, cols.saturating_sub(1).max(1), view_height(rows));
        if lines.is_empty() {
            self.clear(out);
            return;
        }
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A\r", self.drawn));
        }
        for line in &lines {
            out.push_str(line);
            out.push_str("\x1b[K\n");
        }
        if lines.len() < self.drawn {
            out.push_str("\x1b[J");
        }
        self.drawn = lines.len();
    }
}

fn write(out: &str) {
    if out.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
}

impl Tty {
    pub fn new(verbose: bool) -> Self {
        let state = State { view: View::new(Instant::now()), drawn: 0, above: Vec::new(), shown: false, stop: false };
        Tty { verbose, state: Arc::new(Mutex::new(state)), ticker: Mutex::new(None) }
    }

    /// Starts the thread that redraws the view, once.
    fn start_ticker(&self) {
        let Ok(mut t) = self.ticker.lock() else { return };
        if t.is_some() {
            return;
        }
        let state = self.state.clone();
        *t = std::thread::Builder::new()
            .name("rvbuild-tty".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    let Ok(mut s) = state.lock() else { return };
                    if s.stop {
                        return;
                    }
                    let mut out = String::new();
                    s.flush(&mut out, Instant::now());
                    write(&out);
                }
            })
            .ok();
    }

    fn stop_ticker(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.stop = true;
        }
        let handle = self.ticker.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Reporter for Tty {
    fn event(&self, e: &Event) {
        let now = Instant::now();
        let above = match e {
            // Shown live, not as lines.
            Event::Started { .. } | Event::TransferStarted { .. } | Event::TransferProgress { .. } => None,
            _ => plain::line(e, self.verbose),
        };
        let mut out = String::new();
        let live = {
            let Ok(mut s) = self.state.lock() else { return };
            s.view.apply(e, now);
            let summary = matches!(e, Event::Summary { .. });
            if summary {
                // The last state stays (failures with their tails, builders, the counts), above
                // the summary line.
                s.flush(&mut out, now);
                if s.view.had_build() {
                    let (rows, cols) = size();
                    for line in s.view.frame(now, cols.saturating_sub(1).max(1), view_height(rows)) {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
            }
            s.above.extend(above);
            if summary || !s.view.live() || (s.drawn == 0 && !s.shown) {
                // Nothing runs: print now (the CLI may write its own lines next). The first
                // live state is drawn at once too, not a tick later: a run that ends within
                // a tick still shows it was live.
                s.flush(&mut out, now);
                s.shown |= s.drawn > 0;
            }
            s.view.live()
        };
        write(&out);
        if live {
            self.start_ticker();
        }
    }

    fn finish(&self) -> crate::Result<()> {
        self.stop_ticker();
        let mut out = String::new();
        if let Ok(mut s) = self.state.lock() {
            s.clear(&mut out);
        }
        write(&out);
        Ok(())
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lines: usize) -> State {
        let t0 = Instant::now();
        let mut view = View::new(t0);
        view.apply(&Event::Builder { host: "local".into(), slots: lines as u32, local: true }, t0);
        for i in 0..lines {
            let (component, drv) = (format!("d{i}"), format!("/nix/store/x-d{i}.drv"));
            view.apply(&Event::Queued { component: component.clone(), drv: drv.clone() }, t0);
            view.apply(
                &Event::Started { component, drv, host: "local".into(), strategy: "native".into(), estimate: None },
                t0,
            );
        }
        State { view, drawn: 0, above: Vec::new(), shown: false, stop: false }
    }

    #[test]
    fn redraws_overwrite_in_place_and_clearing_erases_line_by_line() {
        let mut s = state(2);
        let mut out = String::new();
        s.draw(&mut out, Instant::now());
        // Two running lines, the builder, the counts.
        assert_eq!(s.drawn, 4, "{out:?}");
        assert!(!out.contains("\x1b[J") && !out.contains("A\r"), "the first draw moves nothing: {out:?}");
        let mut again = String::new();
        s.draw(&mut again, Instant::now());
        assert!(again.starts_with("\x1b[4A\r"), "{again:?}");
        assert_eq!(again.matches("\x1b[K\n").count(), 4, "{again:?}");
        let mut gone = String::new();
        s.clear(&mut gone);
        assert_eq!(gone, "\x1b[4A\r\x1b[2K\x1b[1B\x1b[2K\x1b[1B\x1b[2K\x1b[1B\x1b[2K\x1b[3A");
        assert!(!gone.contains("\x1b[J"), "no erase-below from the top-left corner (tmux would scroll)");
        assert_eq!(s.drawn, 0);
        let mut nothing = String::new();
        s.clear(&mut nothing);
        assert!(nothing.is_empty());
        // Lines for above the view wait for the next redraw, and go before it.
        s.draw(&mut String::new(), Instant::now());
        s.above = vec!["one".into(), "two".into()];
        let mut out = String::new();
        s.flush(&mut out, Instant::now());
        assert!(out.contains("\x1b[2K\x1b[3A") && out.contains("one\ntwo\n> d0"), "{out:?}");
        assert!(s.above.is_empty() && s.drawn == 4);
    }
}
