//! The build history file (`build-history.json` in rvbuild's cache directory): measured
//! durations per derivation name, host and strategy, behind the estimates of later builds.
//! Durations are normalised by host speed and emulation slowdown so one host's history informs
//! the others. Loading never fails: a missing file is an empty history, a corrupt one is
//! reported as a warning and replaced on the next save.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::BuildersError;
use crate::Result;
use crate::vocab::model::BuilderModel;

/// File format version; another version is read as an empty history.
const VERSION: u32 = 1;
/// Records kept per (name, host, strategy): the newest win.
const KEEP_PER_KEY: usize = 10;
/// Records used for one estimate (the newest).
const RECENT: usize = 5;

/// One measured build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Derivation name without the hash.
    pub name: String,
    pub host: String,
    /// `cross`, `native` or `emulated`.
    pub strategy: String,
    /// Measured seconds of the build step.
    pub seconds: f64,
    /// The host's speed factor when it ran (declared or probed).
    pub host_speed: f64,
    /// The emulation slowdown applied (1.0 natively).
    pub slowdown: f64,
    pub output_bytes: u64,
    /// Unix time of the finish.
    pub at: u64,
}

impl Record {
    /// Seconds at speed 1.0 running natively.
    fn work(&self) -> Option<f64> {
        let w = self.seconds * self.host_speed / self.slowdown.max(1.0);
        (w.is_finite() && w >= 0.0 && self.host_speed > 0.0).then_some(w)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    records: Vec<Record>,
}

/// The history of measured builds.
#[derive(Debug, Clone, Default)]
pub struct History {
    path: Option<PathBuf>,
    records: Vec<Record>,
    warning: Option<String>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

impl History {
    /// The default history file: `build-history.json` in rvbuild's cache directory.
    pub fn default_path() -> PathBuf {
        crate::vocab::cache_dir().join("build-history.json")
    }

    /// An empty history not backed by a file (nothing is saved).
    pub fn in_memory() -> History {
        History::default()
    }

    /// Reads `path`. A missing file gives an empty history; an unreadable or corrupt one an
    /// empty history with a [`warning`](History::warning).
    pub fn load(path: &Path) -> History {
        let mut h = History { path: Some(path.to_path_buf()), ..History::default() };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return h,
            Err(e) => {
                h.warning =
                    Some(format!("cannot read the build history {}: {e}; starting a fresh one", path.display()));
                return h;
            }
        };
        match serde_json::from_str::<File>(&text) {
            Ok(f) if f.version == VERSION => {
                h.records = f.records.into_iter().filter(|r| r.work().is_some()).collect();
            }
            Ok(f) => {
                h.warning = Some(format!(
                    "the build history {} has format version {} (this rvbuild writes {VERSION}); starting a fresh one",
                    path.display(),
                    f.version
                ));
            }
            Err(e) => {
                h.warning =
                    Some(format!("the build history {} is corrupt ({e}); starting a fresh one", path.display()));
            }
        }
        h
    }

    /// What went wrong while loading, if anything (for the reporter to show).
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Keeps a build's measured durations (see [`History::record`]) and saves the history; a
    /// history that cannot be saved is reported as a note, not an error (the build succeeded).
    pub fn keep(&mut self, records: &[Record], reporter: &dyn crate::vocab::Reporter) {
        if records.is_empty() {
            return;
        }
        for r in records {
            self.record(r.clone());
        }
        if let Err(e) = self.save() {
            reporter.event(&crate::vocab::Event::Note { text: format!("build history not saved: {e}") });
        }
    }

    /// Adds a measurement, dropping the oldest beyond the per-key limit. Nonsense values
    /// (negative or non-finite seconds, speed <= 0) are ignored.
    pub fn record(&mut self, r: Record) {
        if r.work().is_none() {
            return;
        }
        self.records.push(r);
        let last = &self.records[self.records.len() - 1];
        let key = (last.name.clone(), last.host.clone(), last.strategy.clone());
        let same: Vec<usize> = (0..self.records.len())
            .filter(|&i| {
                let x = &self.records[i];
                x.name == key.0 && x.host == key.1 && x.strategy == key.2
            })
            .collect();
        if same.len() > KEEP_PER_KEY {
            let mut by_age = same;
            by_age.sort_by_key(|&i| (self.records[i].at, i));
            let drop: Vec<usize> = by_age[..by_age.len() - KEEP_PER_KEY].to_vec();
            let mut i = 0;
            self.records.retain(|_| {
                let keep = !drop.contains(&i);
                i += 1;
                keep
            });
        }
    }

    /// Writes the history atomically (a temporary file renamed over the old one).
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let fail = |what: &'static str, source: std::io::Error| BuildersError::WriteHistory {
            what,
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
        }
        let file = File { version: VERSION, records: self.records.clone() };
        let text = serde_json::to_string_pretty(&file).map_err(|source| BuildersError::EncodeHistory { source })?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail("write", e).into());
        }
        Ok(())
    }

    /// Estimated work of derivation `name` in seconds at speed 1.0 natively (the scheduler's
    /// `Task::work`): the median of its newest normalised measurements on any host.
    pub fn work(&self, name: &str) -> Option<f64> {
        let mut mine: Vec<&Record> = self.records.iter().filter(|r| r.name == name).collect();
        mine.sort_by_key(|r| std::cmp::Reverse(r.at));
        median(mine.iter().take(RECENT * 2).filter_map(|r| r.work()).collect())
    }

    /// Estimated seconds of `name` on `builder` for a derivation of `system`: that host's own
    /// newest measurements when it has built it the same way, else the normalised work scaled
    /// by the builder's speed and slowdown.
    pub fn estimate(&self, name: &str, builder: &BuilderModel, system: &str) -> Option<f64> {
        let (placement, slowdown) = builder.placement(system)?;
        let strategy = match placement {
            crate::vocab::model::Placement::Emulated => "emulated",
            crate::vocab::model::Placement::Native => "",
        };
        let mut own: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.name == name && r.host == builder.name && (strategy.is_empty() || r.strategy == strategy))
            .filter(|r| strategy == "emulated" || r.strategy != "emulated")
            .collect();
        own.sort_by_key(|r| std::cmp::Reverse(r.at));
        if let Some(s) = median(own.iter().take(RECENT).map(|r| r.seconds).collect()) {
            return Some(s);
        }
        let speed = if builder.speed > 0.0 { builder.speed } else { 1.0 };
        self.work(name).map(|w| w * slowdown / speed)
    }

    /// Per host: the median ratio of its measured seconds to what its declared speed predicted
    /// from the other hosts' work (above 1: slower than declared). Hosts without comparable
    /// records are absent.
    pub fn host_corrections(&self) -> BTreeMap<String, f64> {
        let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &self.records {
            let others: Vec<f64> =
                self.records.iter().filter(|o| o.name == r.name && o.host != r.host).filter_map(|o| o.work()).collect();
            if let (Some(w), Some(mine)) = (median(others), r.work())
                && w > 0.0
            {
                ratios.entry(r.host.clone()).or_default().push(mine / w);
            }
        }
        ratios.into_iter().filter_map(|(h, v)| median(v).map(|m| (h, m))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::online::tests::builder;

    fn rec(name: &str, host: &str, strategy: &str, seconds: f64, speed: f64, slowdown: f64, at: u64) -> Record {
        Record {
            name: name.into(),
            host: host.into(),
            strategy: strategy.into(),
            seconds,
            host_speed: speed,
            slowdown,
            output_bytes: 1000,
            at,
        }
    }

    #[test]
    fn save_load_round_trip_and_estimates() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub").join("build-history.json");
        let mut h = History::load(&path);
        assert!(h.warning().is_none());
        assert!(h.records().is_empty());
        h.record(rec("linux", "x1", "cross", 100.0, 2.0, 1.0, 1));
        h.record(rec("hello", "x1", "emulated", 80.0, 2.0, 8.0, 2));
        h.record(rec("bad", "x1", "cross", f64::NAN, 2.0, 1.0, 3));
        h.save().unwrap_or_else(|e| panic!("{e}"));
        let h = History::load(&path);
        assert!(h.warning().is_none());
        assert_eq!(h.records().len(), 2);
        assert_eq!(h.work("linux"), Some(200.0));
        assert_eq!(h.work("hello"), Some(20.0));
        assert_eq!(h.work("nothing"), None);
        // Own history on x1; another host of speed 4 gets the normalised work.
        let mut x1 = builder("x1", 4, 2.0, false);
        assert_eq!(h.estimate("linux", &x1, "x86_64-linux"), Some(100.0));
        let other = builder("other", 4, 4.0, false);
        assert_eq!(h.estimate("linux", &other, "x86_64-linux"), Some(50.0));
        x1.emulated.insert("riscv64-linux".into(), 8.0);
        assert_eq!(h.estimate("hello", &x1, "riscv64-linux"), Some(80.0));
        assert_eq!(h.estimate("hello", &other, "riscv64-linux"), None);
        // No temporary file left behind.
        let leftovers = std::fs::read_dir(path.parent().unwrap_or(dir.path())).map(|d| d.count()).unwrap_or_default();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn corrupt_file_warns_and_starts_fresh() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("build-history.json");
        std::fs::write(&path, "{\"version\": 1, \"records\": [ {\"name\": ").unwrap_or_else(|e| panic!("{e}"));
        let mut h = History::load(&path);
        let w = h.warning().unwrap_or_default().to_string();
        assert!(w.contains("corrupt") && w.contains("build-history.json"), "{w}");
        assert!(h.records().is_empty());
        h.record(rec("a", "h", "cross", 1.0, 1.0, 1.0, 1));
        h.save().unwrap_or_else(|e| panic!("{e}"));
        let h = History::load(&path);
        assert!(h.warning().is_none());
        assert_eq!(h.records().len(), 1);

        std::fs::write(&path, "{\"version\": 99, \"records\": []}").unwrap_or_else(|e| panic!("{e}"));
        assert!(History::load(&path).warning().is_some_and(|w| w.contains("version 99")));
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
        assert!(History::load(&path).warning().is_some());
    }

    #[test]
    fn save_into_unwritable_place_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap_or_else(|e| panic!("{e}"));
        let mut h = History::load(&blocker.join("build-history.json"));
        h.record(rec("a", "h", "cross", 1.0, 1.0, 1.0, 1));
        let err = h.save().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("build-history.json"), "{err}");
    }

    #[test]
    fn keeps_only_the_newest_per_key_and_uses_the_median() {
        let mut h = History::in_memory();
        for i in 0..30 {
            h.record(rec("pkg", "h", "cross", if i < 20 { 1000.0 } else { 10.0 }, 1.0, 1.0, i));
        }
        assert_eq!(h.records().len(), KEEP_PER_KEY);
        assert_eq!(h.work("pkg"), Some(10.0));
        assert!(h.save().is_ok());
    }

    #[test]
    fn host_corrections_find_a_slow_host() {
        let mut h = History::in_memory();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            h.record(rec(name, "fast", "cross", 10.0, 1.0, 1.0, i as u64));
            h.record(rec(name, "slow", "cross", 30.0, 1.0, 1.0, i as u64));
        }
        let c = h.host_corrections();
        assert_eq!(c.get("slow"), Some(&3.0));
        assert!(c.get("fast").is_some_and(|&x| (x - 1.0 / 3.0).abs() < 1e-9));
    }
}
