//! The model and layout of the live view, apart from the terminal: what is running where (with
//! the scheduler's estimate), each builder's busy slots and transfers, failed derivations with
//! their log tails, and the scheduler's forecast of the end. [`View::frame`] lays it out in a
//! given width and height; finished work collapses into the counts of the last line.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::Event;

/// Log lines kept per derivation (shown under a failed one).
const TAIL: usize = 6;
/// Longest component and host columns.
const NAME_COLS: usize = 24;

/// A derivation being built.
#[derive(Debug, Clone)]
struct Running {
    component: String,
    drv: String,
    host: String,
    strategy: String,
    since: Instant,
    estimate: Option<f64>,
}

/// A derivation that failed to build.
#[derive(Debug, Clone)]
struct Failed {
    component: String,
    drv: String,
    host: String,
    seconds: f64,
}

/// One direction of a builder's transfers: bytes moved by finished copies, the copies under
/// way (by component), and the rate of the latest one.
#[derive(Debug, Clone, Default)]
struct Traffic {
    bytes: u64,
    active: BTreeMap<String, (u64, f64)>,
    rate: Option<f64>,
}

impl Traffic {
    fn copy(&mut self, component: &str, bytes: u64, seconds: f64, done: bool) {
        if seconds > 0.05 && bytes > 0 {
            self.rate = Some(bytes as f64 / seconds);
        }
        if done {
            self.active.remove(component);
            self.bytes += bytes;
        } else {
            self.active.insert(component.to_string(), (bytes, seconds));
        }
    }

    fn moved(&self) -> u64 {
        self.bytes + self.active.values().map(|(b, _)| b).sum::<u64>()
    }
}

#[derive(Debug, Clone)]
struct Builder {
    host: String,
    slots: u32,
    local: bool,
    up: Traffic,
    down: Traffic,
}

/// A serial transfer under way (flashing).
#[derive(Debug, Clone)]
struct Serial {
    label: String,
    done: u64,
    total: u64,
    since: Instant,
}

/// Everything the live view shows, built from events.
#[derive(Debug, Clone)]
pub(super) struct View {
    start: Instant,
    total: usize,
    queued: usize,
    built: usize,
    cached: usize,
    running: Vec<Running>,
    failed: Vec<Failed>,
    builders: Vec<Builder>,
    tails: BTreeMap<String, VecDeque<String>>,
    /// The scheduler's seconds to go, and when it said so.
    forecast: Option<(Instant, f64)>,
    serial: Option<Serial>,
    /// Set by the summary: whether the run succeeded, and how long it took.
    ended: Option<(bool, f64)>,
    /// Builds that were running when the run stopped.
    stopped: usize,
}

/// Printable text of one line: control characters and escape sequences dropped, tabs as spaces.
fn clean(s: &str) -> String {
    crate::build::strip_ansi(s).replace('\t', "    ").chars().filter(|c| !c.is_control()).collect()
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub(super) fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() { seconds.max(0.0).round() as u64 } else { 0 };
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `s` cut to `width` columns (display width), with `…` when cut.
fn fit(s: &str, width: usize) -> String {
    console::truncate_str(s, width, "…").into_owned()
}

/// `s` padded or cut to exactly `width` columns.
fn column(s: &str, width: usize) -> String {
    console::pad_str(s, width, console::Alignment::Left, Some("…")).into_owned()
}

impl View {
    pub(super) fn new(start: Instant) -> View {
        View {
            start,
            total: 0,
            queued: 0,
            built: 0,
            cached: 0,
            running: Vec::new(),
            failed: Vec::new(),
            builders: Vec::new(),
            tails: BTreeMap::new(),
            forecast: None,
            serial: None,
            ended: None,
            stopped: 0,
        }
    }

    /// Whether there is something under way to draw: a derivation building, derivations
    /// waiting while none has failed (a failure stops the build), or a serial transfer.
    pub(super) fn live(&self) -> bool {
        let waiting = self.built + self.cached < self.queued && self.failed.is_empty();
        self.ended.is_none() && (!self.running.is_empty() || waiting || self.serial.is_some())
    }

    /// Whether derivations were part of this run.
    pub(super) fn had_build(&self) -> bool {
        self.queued > 0
    }

    fn builder(&mut self, host: &str) -> &mut Builder {
        let i = match self.builders.iter().position(|b| b.host == host) {
            Some(i) => i,
            None => {
                self.builders.push(Builder {
                    host: host.to_string(),
                    slots: 0,
                    local: false,
                    up: Traffic::default(),
                    down: Traffic::default(),
                });
                self.builders.len() - 1
            }
        };
        &mut self.builders[i]
    }

    /// Takes one event in, seen at `now`.
    pub(super) fn apply(&mut self, e: &Event, now: Instant) {
        match e {
            Event::Plan { derivations, .. } => self.total = self.total.max(*derivations),
            Event::Queued { .. } => self.queued += 1,
            Event::Builder { host, slots, local } => {
                let b = self.builder(host);
                b.slots = *slots;
                b.local = *local;
            }
            Event::Started { component, drv, host, strategy, estimate } => {
                // A derivation tried again is no longer shown as failed.
                self.failed.retain(|f| f.drv != *drv);
                self.running.retain(|r| r.drv != *drv);
                self.tails.remove(component);
                self.builder(host);
                self.running.push(Running {
                    component: component.clone(),
                    drv: drv.clone(),
                    host: host.clone(),
                    strategy: strategy.clone(),
                    since: now,
                    estimate: *estimate,
                });
            }
            Event::Finished { component, drv, host, seconds, ok, cached } => {
                self.running.retain(|r| r.drv != *drv);
                match (ok, cached) {
                    (true, true) => self.cached += 1,
                    (true, false) => self.built += 1,
                    (false, _) => self.failed.push(Failed {
                        component: component.clone(),
                        drv: drv.clone(),
                        host: host.clone(),
                        seconds: *seconds,
                    }),
                }
                let b = self.builder(host);
                b.up.active.remove(component);
                b.down.active.remove(component);
            }
            Event::Log { source, line } => {
                let tail = self.tails.entry(source.clone()).or_default();
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(clean(line));
            }
            Event::Copy { component, host, direction, bytes, seconds, done, .. } => {
                let b = self.builder(host);
                let t = if direction == "upload" { &mut b.up } else { &mut b.down };
                t.copy(component, *bytes, *seconds, *done);
            }
            Event::Forecast { remaining, .. } => self.forecast = Some((now, *remaining)),
            Event::TransferStarted { label, total } => {
                self.serial = Some(Serial { label: clean(label), done: 0, total: *total, since: now });
            }
            Event::TransferProgress { done, total, .. } => {
                if let Some(s) = &mut self.serial {
                    s.done = *done;
                    s.total = *total;
                }
            }
            Event::TransferFinished { .. } => self.serial = None,
            Event::Summary { ok, seconds, .. } => {
                self.stopped = self.running.len();
                self.running.clear();
                self.serial = None;
                for b in &mut self.builders {
                    b.up.active.clear();
                    b.down.active.clear();
                }
                self.ended = Some((*ok, *seconds));
            }
            Event::Stage { .. }
            | Event::Output { .. }
            | Event::Verify { .. }
            | Event::Note { .. }
            | Event::Flash { .. }
            | Event::Boot { .. } => {}
        }
    }

    fn eta(&self, now: Instant) -> String {
        match self.forecast {
            Some((at, remaining)) => {
                let left = remaining - now.saturating_duration_since(at).as_secs_f64();
                if left >= 0.0 { format!("ETA {}", clock(left)) } else { format!("ETA overdue {}", clock(-left)) }
            }
            None => "ETA ?".to_string(),
        }
    }

    /// The last line: counts, elapsed time and the forecast (or the verdict once ended).
    fn footer(&self, now: Instant) -> String {
        let done = self.built + self.cached;
        let total = self.queued.max(done);
        if total == 0 && self.failed.is_empty() {
            return format!("elapsed {}", clock(now.saturating_duration_since(self.start).as_secs_f64()));
        }
        let mut parts = vec![format!("[{done}/{total}] {} built", self.built)];
        if self.cached > 0 {
            parts.push(format!("{} cached", self.cached));
        }
        if !self.failed.is_empty() {
            parts.push(format!("{} failed", self.failed.len()));
        }
        match self.ended {
            None => {
                parts.push(format!("{} running", self.running.len()));
                let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
                let eta = if self.running.is_empty() && done >= total { "built".to_string() } else { self.eta(now) };
                format!("{} | {} | {eta}", parts.join(", "), clock(elapsed))
            }
            Some((ok, seconds)) => {
                if self.stopped > 0 {
                    parts.push(format!("{} stopped", self.stopped));
                }
                let verdict = if ok { "done" } else { "failed" };
                format!("{} | {verdict} after {}", parts.join(", "), clock(seconds))
            }
        }
    }

    fn running_line(&self, r: &Running, now: Instant, name_w: usize, host_w: usize) -> String {
        let elapsed = now.saturating_duration_since(r.since).as_secs_f64();
        let est = match r.estimate {
            Some(e) if elapsed > e + 0.5 => format!(" / ~{} (over)", clock(e)),
            Some(e) => format!(" / ~{}", clock(e)),
            None => String::new(),
        };
        format!(
            "> {} {} on {} {}{est}",
            column(&r.component, name_w),
            column(&r.strategy, 8),
            column(&r.host, host_w),
            clock(elapsed)
        )
    }

    fn traffic(label: &str, t: &Traffic) -> Option<String> {
        let moved = t.moved();
        if moved == 0 && t.active.is_empty() {
            return None;
        }
        let rate = t.rate.map(|r| format!(" @ {}/s", bytes(r as u64))).unwrap_or_default();
        let now = if t.active.is_empty() { "" } else { "*" };
        Some(format!("{label}{now} {}{rate}", bytes(moved)))
    }

    fn builder_line(&self, b: &Builder, host_w: usize) -> String {
        let busy = self.running.iter().filter(|r| r.host == b.host).count();
        let mut line = format!("  {} {busy}/{} busy", column(&b.host, host_w), b.slots);
        for t in [Self::traffic("up", &b.up), Self::traffic("down", &b.down)].into_iter().flatten() {
            line.push_str("  ");
            line.push_str(&t);
        }
        if b.local {
            line.push_str("  (this machine)");
        }
        line
    }

    fn builders_collapsed(&self) -> String {
        let slots: u32 = self.builders.iter().map(|b| b.slots).sum();
        let up: u64 = self.builders.iter().map(|b| b.up.moved()).sum();
        let down: u64 = self.builders.iter().map(|b| b.down.moved()).sum();
        format!(
            "  {} builders: {}/{slots} busy  up {}  down {}",
            self.builders.len(),
            self.running.len(),
            bytes(up),
            bytes(down)
        )
    }

    fn serial_line(&self, s: &Serial, now: Instant) -> String {
        let secs = now.saturating_duration_since(s.since).as_secs_f64();
        let rate = if secs > 0.0 { s.done as f64 / secs } else { 0.0 };
        let pct = s.done.saturating_mul(100).checked_div(s.total).unwrap_or(0);
        let eta = match rate > 0.0 && s.total > s.done {
            true => format!(", ETA {}", clock((s.total - s.done) as f64 / rate)),
            false => String::new(),
        };
        format!("{}: {pct}% {}/{} @ {}/s{eta}", s.label, bytes(s.done), bytes(s.total), bytes(rate as u64))
    }

    /// The view in at most `height` lines of at most `width` columns (`width` >= 1): failed
    /// derivations (their log tails as room allows), one line per running derivation, one per
    /// builder, the serial transfer, and the counts with the forecast last. When lines do not
    /// fit, tails go first, then builders collapse into one line, then running builds beyond
    /// the room are counted in one line; the last line always stays.
    pub(super) fn frame(&self, now: Instant, width: usize, height: usize) -> Vec<String> {
        if height == 0 || width == 0 {
            return Vec::new();
        }
        let serial = self.serial.as_ref().filter(|_| height >= 2).map(|s| self.serial_line(s, now));
        let mut room = height - 1 - usize::from(serial.is_some());
        let name_w = self.running.iter().map(|r| console::measure_text_width(&r.component)).max().unwrap_or(0);
        let name_w = name_w.min(NAME_COLS);
        let host_w = self.builders.iter().map(|b| console::measure_text_width(&b.host)).max().unwrap_or(0);
        let host_w = host_w.min(NAME_COLS);
        // Minimums: one line each for running, builders and failures when there are any.
        let want_run = self.running.len();
        let want_bld = self.builders.len();
        let want_fail = self.failed.len();
        let min = |n: usize| usize::from(n > 0);
        let mut run = min(want_run).min(room);
        room -= run;
        let mut fail = min(want_fail).min(room);
        room -= fail;
        let mut bld = min(want_bld).min(room);
        room -= bld;
        let grow = |have: &mut usize, want: usize, room: &mut usize| {
            let more = want.saturating_sub(*have).min(*room);
            *have += more;
            *room -= more;
        };
        // Running builds first (up to half the height), then failures, then builders; a
        // section that cannot be shown whole collapses into one line and gives the rest back.
        grow(&mut run, want_run.min(height / 2), &mut room);
        grow(&mut fail, want_fail, &mut room);
        grow(&mut bld, want_bld, &mut room);
        for (have, want) in [(&mut bld, want_bld), (&mut fail, want_fail)] {
            if *have < want && *have > 1 {
                room += *have - 1;
                *have = 1;
            }
        }
        grow(&mut run, want_run, &mut room);
        // What is left goes to the failures' tails, round robin, newest failure first.
        let mut tail_lines = vec![0usize; fail.min(want_fail)];
        if fail == want_fail {
            let avail: Vec<usize> =
                self.failed.iter().map(|f| self.tails.get(&f.component).map_or(0, |t| t.len())).collect();
            loop {
                let mut gave = false;
                for (i, n) in tail_lines.iter_mut().enumerate().rev() {
                    if room > 0 && *n < avail[i] {
                        *n += 1;
                        room -= 1;
                        gave = true;
                    }
                }
                if !gave {
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(height);
        if fail == want_fail {
            for (f, n) in self.failed.iter().zip(&tail_lines) {
                out.push(format!("FAILED {} on {} after {}", f.component, f.host, clock(f.seconds)));
                if let Some(t) = self.tails.get(&f.component) {
                    out.extend(t.iter().skip(t.len() - n).map(|l| format!("  | {l}")));
                }
            }
        } else if fail > 0 {
            let names: Vec<&str> = self.failed.iter().map(|f| f.component.as_str()).collect();
            out.push(format!("FAILED ({}): {}", names.len(), names.join(", ")));
        }
        if run == want_run {
            out.extend(self.running.iter().map(|r| self.running_line(r, now, name_w, host_w)));
        } else if run > 0 {
            let shown = run - 1;
            out.extend(self.running.iter().take(shown).map(|r| self.running_line(r, now, name_w, host_w)));
            out.push(format!("> … and {} more running", want_run - shown));
        }
        if bld == want_bld {
            out.extend(self.builders.iter().map(|b| self.builder_line(b, host_w)));
        } else if bld > 0 {
            out.push(self.builders_collapsed());
        }
        out.extend(serial);
        out.push(self.footer(now));
        out.iter().map(|l| fit(l, width)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn started(c: &str, host: &str, est: f64) -> Event {
        Event::Started {
            component: c.into(),
            drv: format!("/nix/store/x-{c}.drv"),
            host: host.into(),
            strategy: "native".into(),
            estimate: Some(est),
        }
    }

    fn finished(c: &str, host: &str, ok: bool) -> Event {
        Event::Finished {
            component: c.into(),
            drv: format!("/nix/store/x-{c}.drv"),
            host: host.into(),
            seconds: 2.0,
            ok,
            cached: false,
        }
    }

    /// A view of a build with `n` derivations over `hosts`, all queued.
    fn view(n: usize, hosts: &[&str], t0: Instant) -> View {
        let mut v = View::new(t0);
        v.apply(&Event::Plan { derivations: n, slots: 4 }, t0);
        for (i, h) in hosts.iter().enumerate() {
            v.apply(&Event::Builder { host: (*h).into(), slots: 2, local: i == 0 }, t0);
        }
        for i in 0..n {
            v.apply(&Event::Queued { component: format!("d{i}"), drv: format!("/nix/store/x-d{i}.drv") }, t0);
        }
        v
    }

    fn fits(frame: &[String], width: usize, height: usize) {
        assert!(frame.len() <= height, "{} lines > {height}:\n{}", frame.len(), frame.join("\n"));
        for l in frame {
            assert!(console::measure_text_width(l) <= width, "wider than {width}: {l:?}");
        }
    }

    #[test]
    fn running_lines_show_host_strategy_elapsed_estimate_and_the_forecast() {
        let t0 = Instant::now();
        let mut v = view(4, &["local", "emu"], t0);
        v.apply(&started("d0", "emu", 5.0), t0);
        v.apply(&started("d1", "local", 65.0), t0);
        v.apply(&Event::Forecast { remaining: 90.0, elapsed: 0.0, finished: 0, total: 4 }, t0);
        let f = v.frame(t0 + Duration::from_secs(3), 80, 24);
        fits(&f, 80, 24);
        let text = f.join("\n");
        assert!(f.iter().any(|l| l.starts_with("> d0") && l.contains("native") && l.contains("on emu")), "{text}");
        assert!(text.contains("0:03 / ~0:05"), "{text}");
        assert!(text.contains("0:03 / ~1:05"), "{text}");
        assert!(f.iter().any(|l| l.contains("emu") && l.contains("1/2 busy")), "{text}");
        let last = f.last().cloned().unwrap_or_default();
        assert!(last.contains("[0/4]") && last.contains("2 running") && last.contains("ETA 1:27"), "{last}");
    }

    #[test]
    fn a_build_past_its_estimate_is_marked_and_the_eta_says_overdue() {
        let t0 = Instant::now();
        let mut v = view(1, &["local"], t0);
        v.apply(&started("d0", "local", 2.0), t0);
        v.apply(&Event::Forecast { remaining: 2.0, elapsed: 0.0, finished: 0, total: 1 }, t0);
        let f = v.frame(t0 + Duration::from_secs(10), 80, 24);
        assert!(f.iter().any(|l| l.contains("(over)")), "{f:?}");
        assert!(f.last().is_some_and(|l| l.contains("ETA overdue 0:08")), "{f:?}");
    }

    #[test]
    fn finished_builds_leave_the_running_lines_and_count_in_the_footer() {
        let t0 = Instant::now();
        let mut v = view(3, &["local", "emu"], t0);
        v.apply(&started("d0", "emu", 1.0), t0);
        v.apply(&started("d1", "emu", 1.0), t0);
        v.apply(&finished("d0", "emu", true), t0);
        let f = v.frame(t0, 80, 24);
        assert!(!f.iter().any(|l| l.starts_with("> d0")), "{f:?}");
        assert!(f.iter().any(|l| l.starts_with("> d1")), "{f:?}");
        assert!(f.last().is_some_and(|l| l.contains("[1/3] 1 built") && l.contains("1 running")), "{f:?}");
        // The run ends with d1 still under way: nothing is shown as running any more.
        let summary = Event::Summary {
            schema: 1,
            command: "build".into(),
            ok: false,
            exit_code: 130,
            seconds: 4.0,
            derivations: 3,
            built: 1,
            cached: 0,
            failed: 0,
            error: None,
        };
        v.apply(&summary, t0);
        let f = v.frame(t0, 80, 24);
        assert!(!f.iter().any(|l| l.starts_with('>')), "{f:?}");
        assert!(!f.iter().any(|l| l.contains("running")), "{f:?}");
        assert!(f.last().is_some_and(|l| l.contains("1 stopped") && l.contains("failed after 0:04")), "{f:?}");
        assert!(!v.live());
    }

    #[test]
    fn a_failure_keeps_its_log_tail_while_others_run() {
        let t0 = Instant::now();
        let mut v = view(3, &["local", "emu", "rv"], t0);
        v.apply(&started("bad", "rv", 1.0), t0);
        v.apply(&started("d1", "emu", 9.0), t0);
        for i in 0..10 {
            v.apply(&Event::Log { source: "bad".into(), line: format!("\x1b[31mline {i}\x1b[0m\tx") }, t0);
        }
        v.apply(&finished("bad", "rv", false), t0);
        let f = v.frame(t0 + Duration::from_secs(1), 80, 24);
        let text = f.join("\n");
        assert!(text.contains("FAILED bad on rv"), "{text}");
        assert!(text.contains("  | line 9    x"), "escapes and tabs are cleaned: {text}");
        assert!(text.contains("  | line 4"), "six lines of tail: {text}");
        assert!(!text.contains("line 3"), "{text}");
        assert!(f.iter().any(|l| l.starts_with("> d1")), "{text}");
        assert!(!f.iter().any(|l| l.starts_with("> bad")), "{text}");
        // Tried again: no longer failed.
        v.apply(&started("bad", "emu", 1.0), t0);
        assert!(!v.frame(t0, 80, 24).join("\n").contains("FAILED"));
    }

    #[test]
    fn a_crowded_build_fits_80x24_and_keeps_the_last_line() {
        let t0 = Instant::now();
        let hosts: Vec<String> = (0..12).map(|i| format!("builder-with-a-rather-long-name-{i}.example.org")).collect();
        let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let mut v = view(200, &host_refs, t0);
        for i in 0..40 {
            let name = format!("some-derivation-with-a-very-long-name-{i}-1.2.3");
            v.apply(&started(&name, &hosts[i % hosts.len()], 100.0), t0);
        }
        for i in 0..3 {
            let name = format!("broken-{i}");
            v.apply(&started(&name, &hosts[0], 1.0), t0);
            for k in 0..8 {
                v.apply(&Event::Log { source: name.clone(), line: format!("error {k}: {}", "x".repeat(200)) }, t0);
            }
            v.apply(&finished(&name, &hosts[0], false), t0);
        }
        v.apply(&Event::TransferStarted { label: "u-boot.itb".into(), total: 1 << 20 }, t0);
        for (w, h) in [(80, 24), (80, 10), (40, 6), (20, 2), (200, 60), (1, 1)] {
            let f = v.frame(t0 + Duration::from_secs(5), w, h);
            fits(&f, w, h);
            let last = f.last().cloned().unwrap_or_default();
            assert!(last.starts_with('[') || w < 2, "the counts stay last at {w}x{h}: {f:?}");
        }
        v.apply(&Event::TransferProgress { label: "u-boot.itb".into(), done: 1 << 18, total: 1 << 20 }, t0);
        let f = v.frame(t0 + Duration::from_secs(2), 80, 24);
        assert!(f.contains(&"u-boot.itb: 25% 256.0 KiB/1.0 MiB @ 128.0 KiB/s, ETA 0:06".to_string()), "{f:?}");
        let f = v.frame(t0, 80, 24);
        assert_eq!(f.len(), 24, "{}", f.join("\n"));
        let text = f.join("\n");
        assert!(text.contains("more running"), "{text}");
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("  12 builders: 40/24 busy"), "{text}");
        assert_eq!(f.iter().filter(|l| l.starts_with("> ")).count(), 18, "{text}");
        assert!(text.contains("u-boot.itb: 25%"), "{text}");
        assert!(v.frame(t0, 80, 0).is_empty());
    }

    #[test]
    fn builder_lines_show_transfers_with_bytes_and_rate() {
        let t0 = Instant::now();
        let mut v = view(2, &["local", "emu"], t0);
        v.apply(&started("d0", "emu", 1.0), t0);
        let copy = |bytes: u64, done: bool| Event::Copy {
            component: "d0".into(),
            host: "emu".into(),
            direction: "upload".into(),
            bytes,
            total: 4 << 20,
            seconds: 2.0,
            done,
        };
        v.apply(&copy(2 << 20, false), t0);
        let f = v.frame(t0, 80, 24);
        assert!(f.iter().any(|l| l.contains("emu") && l.contains("up* 2.0 MiB @ 1.0 MiB/s")), "{f:?}");
        v.apply(&copy(4 << 20, true), t0);
        let f = v.frame(t0, 80, 24);
        assert!(f.iter().any(|l| l.contains("emu") && l.contains("up 4.0 MiB @ 2.0 MiB/s")), "{f:?}");
    }

    #[test]
    fn clock_and_bytes_read_well() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(65.4), "1:05");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(f64::NAN), "0:00");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
    }
}
