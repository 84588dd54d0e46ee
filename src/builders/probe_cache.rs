//! The probe cache, `probes.json` in rvbuild's cache directory: the last probe of each builder
//! (keyed by name and URI, each with its time), read by later builds. A corrupt or foreign file
//! is never fatal: it gives a warning and an empty cache. Saving merges with what is on disk
//! (the newer probe of a builder wins) and replaces the file atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::BuildersError;
use crate::Result;
use crate::builders::Builder;

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    probes: BTreeMap<String, ProbeResult>,
}

/// The cache's key of a builder: `NAME URI`.
pub fn key(name: &str, uri: &str) -> String {
    format!("{name} {uri}")
}

/// Probe results by builder, and where they live.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeCache {
    pub path: PathBuf,
    pub probes: BTreeMap<String, ProbeResult>,
    /// Why the file on disk was ignored (corrupt, another version), for the caller to show.
    pub warning: Option<String>,
}

/// `probes.json` in [`crate::vocab::cache_dir`].
pub fn default_path() -> PathBuf {
    crate::vocab::cache_dir().join("probes.json")
}

/// Loads the cache from its default place.
pub fn load_cache() -> ProbeCache {
    ProbeCache::load_from(&default_path())
}

fn read(path: &Path) -> std::result::Result<BTreeMap<String, ProbeResult>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: File =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a valid probe cache ({e})", path.display()))?;
    if file.version != VERSION {
        return Err(format!("{} has format version {}, this rvbuild reads {VERSION}", path.display(), file.version));
    }
    Ok(file.probes)
}

impl ProbeCache {
    /// Loads `path`; a missing file is an empty cache, an unreadable one an empty cache with a
    /// warning (it is replaced on the next save).
    pub fn load_from(path: &Path) -> ProbeCache {
        let (probes, warning) = match read(path) {
            Ok(p) => (p, None),
            Err(e) => (BTreeMap::new(), Some(format!("{e}; starting with an empty probe cache"))),
        };
        ProbeCache { path: path.to_path_buf(), probes, warning }
    }

    /// The last probe of this builder.
    pub fn get(&self, builder: &Builder) -> Option<&ProbeResult> {
        self.probes.get(&key(&builder.name, &builder.uri))
    }

    /// Records a probe, replacing the builder's previous one. A probe without the benchmark
    /// keeps the previous probe's speed and slowdowns (with their `measured_at`).
    pub fn insert(&mut self, mut result: ProbeResult) {
        let k = key(&result.builder, &result.uri);
        if result.measured_at.is_none()
            && let Some(old) = self.probes.get(&k).filter(|o| o.measured_at.is_some())
        {
            result.measured_at = old.measured_at;
            result.speed = old.speed;
            result.bench_ns_per_round = old.bench_ns_per_round;
            for (sys, e) in result.emulated.iter_mut() {
                if let Some(d) = old.emulated.get(sys).and_then(|o| o.slowdown) {
                    e.slowdown = Some(d);
                }
            }
        }
        self.probes.insert(k, result);
    }

    /// Writes the cache: merged with the file's current entries (the newer probe of a builder
    /// wins), to a temporary file in the same directory, then renamed over the old one.
    pub fn save(&self) -> Result<()> {
        let mut merged = read(&self.path).unwrap_or_default();
        for (k, r) in &self.probes {
            if merged.get(k).is_none_or(|old| old.probed_at <= r.probed_at) {
                merged.insert(k.clone(), r.clone());
            }
        }
        let text = serde_json::to_string_pretty(&File { version: VERSION, probes: merged })
            .map_err(|source| BuildersError::EncodeProbeCache { source })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|source| BuildersError::WriteProbeCache { path: dir.to_path_buf(), source })?;
        let file_name = self.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, text.as_bytes())
            .map_err(|source| BuildersError::WriteProbeCache { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &self.path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            BuildersError::WriteProbeCache { path: self.path.clone(), source }.into()
        })
    }
}

/// What a builder reported. Serialised into the probe cache and `builders probe --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The builder's name in the pool, and its URI (together the cache key).
    pub builder: String,
    pub uri: String,
    /// When it was probed (unix seconds, at the end of the probe).
    pub probed_at: u64,
    /// When `speed` and the slowdowns were measured: `probed_at`, or an earlier probe's time
    /// when this one skipped the benchmark and the cache kept the earlier figures.
    #[serde(default)]
    pub measured_at: Option<u64>,
    /// How long the probe took (seconds, including the upload of the benchmark).
    pub duration_s: f64,
    /// `2.8.0`.
    pub nix_version: Option<String>,
    /// Nix's `system` on the builder (else from `uname -m`).
    pub system: Option<String>,
    /// Nix's `extra-platforms` there, as declared.
    #[serde(default)]
    pub extra_platforms: Vec<String>,
    /// Nix's `system-features` there.
    #[serde(default)]
    pub system_features: Option<Vec<String>>,
    /// Systems of another CPU family the builder declares or has a binfmt handler for.
    #[serde(default)]
    pub emulated: BTreeMap<String, EmulatedSystem>,
    pub cores: Option<u32>,
    /// One-minute load average.
    pub load1: Option<f64>,
    /// Free space on the filesystem of the Nix store.
    pub free_disk_bytes: Option<u64>,
    /// Measured speed (1.0 = the reference machine; see [`bench`]).
    pub speed: Option<f64>,
    /// Native benchmark time per round (ns), what `speed` comes from.
    pub bench_ns_per_round: Option<f64>,
    /// Part (`nix`, `system`, `cores`, `load`, `disk`, `speed`, `upload`, `emulated SYSTEM`,
    /// `benchmark SYSTEM`) -> what went wrong.
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
    /// Target-system userlands on the builder: Nix system -> id (sha256 of the stamp file).
    #[serde(default)]
    pub userlands: BTreeMap<String, String>,
    /// Cross compilers (`riscv64-linux-gnu-gcc`, …) -> identity: `--version` line, sha256 of
    /// the driver and of `cc1` (a split compile uses only hosts with the owner's).
    #[serde(default)]
    pub cross_compilers: BTreeMap<String, String>,
}

/// A system the builder may run through emulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatedSystem {
    /// Listed in Nix's `extra-platforms` (Nix only builds such derivations there if it is).
    pub declared: bool,
    /// Name of the enabled binfmt_misc handler for its ELF files.
    pub binfmt: Option<String>,
    /// Measured time emulated / time native; None when it did not run or was not measured.
    pub slowdown: Option<f64>,
}

impl EmulatedSystem {
    /// A binary of this system really ran there.
    pub fn working(&self) -> bool {
        self.slowdown.is_some()
    }
}

impl ProbeResult {
    /// Systems whose benchmark really ran under emulation, with their slowdown.
    pub fn working_emulated(&self) -> BTreeMap<String, f64> {
        self.emulated.iter().filter_map(|(s, e)| e.slowdown.map(|d| (s.clone(), d))).collect()
    }
}

/// Seconds since the epoch now.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, at: u64, speed: f64) -> ProbeResult {
        ProbeResult {
            builder: name.into(),
            uri: format!("ssh://{name}"),
            probed_at: at,
            measured_at: Some(at),
            duration_s: 1.0,
            nix_version: Some("2.8.0".into()),
            system: Some("x86_64-linux".into()),
            extra_platforms: Vec::new(),
            system_features: None,
            emulated: BTreeMap::new(),
            cores: Some(2),
            load1: Some(0.5),
            free_disk_bytes: Some(1 << 30),
            speed: Some(speed),
            bench_ns_per_round: None,
            errors: BTreeMap::new(),
            userlands: Default::default(),
            cross_compilers: Default::default(),
        }
    }

    #[test]
    fn round_trip_merge_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("probes.json");
        let fresh = ProbeCache::load_from(&path);
        assert!(fresh.probes.is_empty() && fresh.warning.is_none());

        let mut a = fresh.clone();
        a.insert(result("ruby", 100, 2.0));
        a.save().expect("save");
        let mut b = ProbeCache::load_from(&path);
        assert_eq!(b.probes, a.probes);
        // Another process saved a newer probe of ruby and a new builder meanwhile.
        let mut other = ProbeCache::load_from(&path);
        other.insert(result("ruby", 200, 3.0));
        other.insert(result("kana", 150, 1.0));
        other.save().expect("save");
        b.insert(result("local", 120, 1.0));
        b.save().expect("save");
        let merged = ProbeCache::load_from(&path);
        assert_eq!(merged.probes.len(), 3);
        assert_eq!(merged.probes[&key("ruby", "ssh://ruby")].speed, Some(3.0), "the newer probe wins");

        for bad in ["{not json", "{\"version\": 99, \"probes\": {}}", "", "[1,2]"] {
            std::fs::write(&path, bad).expect("write");
            let c = ProbeCache::load_from(&path);
            assert!(c.probes.is_empty());
            let w = c.warning.clone().expect("a warning");
            assert!(w.contains("probes.json") && w.contains("empty probe cache"), "{w}");
            // Saving replaces the corrupt file.
            let mut c = c;
            c.insert(result("ruby", 1, 1.0));
            c.save().expect("save over a corrupt file");
            assert!(ProbeCache::load_from(&path).warning.is_none());
        }
        assert_eq!(std::fs::read_dir(path.parent().expect("dir")).expect("ls").count(), 1, "no temp files left");
    }

    #[test]
    fn a_probe_without_benchmark_keeps_the_measured_figures() {
        let mut c = ProbeCache::default();
        let mut first = result("ruby", 100, 2.0);
        first.emulated.insert(
            "riscv64-linux".into(),
            super::EmulatedSystem { declared: true, binfmt: None, slowdown: Some(6.0) },
        );
        c.insert(first.clone());
        let mut quick = first.clone();
        quick.probed_at = 500;
        quick.measured_at = None;
        quick.speed = None;
        quick.load1 = Some(3.0);
        quick.emulated.values_mut().for_each(|e| e.slowdown = None);
        c.insert(quick);
        let got = &c.probes[&key("ruby", "ssh://ruby")];
        assert_eq!((got.probed_at, got.measured_at, got.speed, got.load1), (500, Some(100), Some(2.0), Some(3.0)));
        assert_eq!(got.emulated["riscv64-linux"].slowdown, Some(6.0));
    }
}
