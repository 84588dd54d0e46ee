//! The kernel's compile split over the pool (`--split`) against the same derivation on one
//! host, side by side in one run. Loopback sshd builders with their own Nix stores
//! (tests/support/hosts.rs); every participant is held to 0.5 CPU by the cgroup v1 `cpu`
//! controller (`cpu.cfs_quota_us`), so the 2 cores of this machine act as four equal builders:
//!
//! - baseline: host `one` builds the qemu-riscv64 kernel derivation alone, `-j` as today;
//! - split: host `own` builds the same derivation with helpers `a`, `b`, `c` (2 slots each),
//!   reached only through rvbuild's SSH connections.
//!
//! Prints both wall times, the ratio split / baseline, and the ideal ratio from the measured
//! serial part (everything before `make` starts and after it ends, from the build log's
//! timestamps; linking inside `make` counts as parallel, so the ideal is optimistic), and the
//! make phase of both runs on its own, each participant's CPU seconds and each run's timeline.
//! Every host builds in a fresh directory on tmpfs (see `BuildDirs`).
//! `RVBUILD_BENCH_QUICK=1`: the same on a tiny C tree (48 files) instead of the kernel.
//! `RVBUILD_BENCH_SPLIT_ONLY=1`: the split run alone, for `perf record -a -G <group>` on a
//! participant's cgroup v2 group (the bench prints the owner's).
//! `RVBUILD_BENCH_CFS_PERIOD_US`: the CFS period of the 0.5 CPU groups (default 100 ms).
//! Run as root: `cargo bench --bench kernel_split`.

mod common;
#[path = "../tests/support/tiny_tree.rs"]
mod tiny_tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::hosts::{self, Fleet, HostSpec};
use rvbuild::build::split::{Helper, SplitConfig};
use rvbuild::build::{Member, Options, Prepared};
use rvbuild::builders::{PoolOptions, Sources, load_pool};
use rvbuild::nix::dag::load_closure;
use rvbuild::profile::build::LocalJobs;
use rvbuild::schedule::{BuilderModel, Scheduler, tasks_from_dag};
use rvbuild::transport::{LocalTransport, SshOptions, SshTransport, Transport};
use rvbuild::{Event, Reporter};

const CPU: &str = "/sys/fs/cgroup/cpu";
/// The cgroup v1 `cpuacct` hierarchy: where each participant's CPU time is counted.
const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";
/// The cgroup v2 hierarchy beside them (hybrid mode), where `perf record -G` finds a group: a
/// participant's processes join a group of the same name there too, to profile one of them.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn die(msg: String) -> ! {
    eprintln!("kernel_split: {msg}");
    std::process::exit(1)
}

/// The CFS bandwidth period: 100 ms, the kernel's default, unless `RVBUILD_BENCH_CFS_PERIOD_US`
/// says otherwise (1000 to 1000000).
fn period_us() -> u32 {
    std::env::var("RVBUILD_BENCH_CFS_PERIOD_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|p| (1000..=1_000_000).contains(p))
        .unwrap_or(100_000)
}

/// A cgroup of 0.5 CPU, with a `cpuacct` group of the same processes (when that hierarchy is
/// mounted) to count the CPU time they use; removed on drop (its processes are gone by then).
struct Cgroup {
    name: String,
    cpu: PathBuf,
    acct: Option<PathBuf>,
    unified: Option<PathBuf>,
}

impl Cgroup {
    fn half_cpu(name: &str) -> Cgroup {
        let dir = format!("rvbuild-split-{}-{name}", std::process::id());
        let p = Path::new(CPU).join(&dir);
        fs::create_dir_all(&p)
            .unwrap_or_else(|e| die(format!("{}: {e} (needs root and the cgroup v1 cpu controller)", p.display())));
        let period = period_us();
        fs::write(p.join("cpu.cfs_period_us"), period.to_string())
            .unwrap_or_else(|e| die(format!("cpu.cfs_period_us: {e}")));
        fs::write(p.join("cpu.cfs_quota_us"), (period / 2).to_string())
            .unwrap_or_else(|e| die(format!("cpu.cfs_quota_us: {e}")));
        let acct = Path::new(CPUACCT).join(&dir);
        let acct = fs::create_dir_all(&acct).is_ok().then_some(acct);
        let unified = Path::new(UNIFIED).join(&dir);
        let unified = fs::create_dir_all(&unified).is_ok().then_some(unified);
        Cgroup { name: name.to_string(), cpu: p, acct, unified }
    }

    fn add(&self, pids: &[u32]) {
        for pid in pids {
            let _ = fs::write(self.cpu.join("cgroup.procs"), pid.to_string());
            for g in [&self.acct, &self.unified].into_iter().flatten() {
                let _ = fs::write(g.join("cgroup.procs"), pid.to_string());
            }
        }
    }

    /// CPU seconds its processes have used so far.
    fn used(&self) -> Option<f64> {
        let a = self.acct.as_ref()?;
        let ns: u64 = fs::read_to_string(a.join("cpuacct.usage")).ok()?.trim().parse().ok()?;
        Some(ns as f64 / 1e9)
    }
}

/// Each participant's CPU seconds between two readings, e.g. `own 110.2, a 101.5`.
fn cpu_between(groups: &[Cgroup], before: &[Option<f64>], names: &[&str]) -> String {
    groups
        .iter()
        .zip(before)
        .filter(|(g, _)| names.contains(&g.name.as_str()))
        .map(|(g, b)| match (g.used(), b) {
            (Some(now), Some(b)) => format!("{} {:.1}", g.name, now - b),
            _ => format!("{} ?", g.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Move what is left to the root group first: a cgroup with tasks cannot be removed.
        for (dir, root) in [(Some(&self.cpu), CPU), (self.acct.as_ref(), CPUACCT), (self.unified.as_ref(), UNIFIED)] {
            let Some(dir) = dir else { continue };
            if let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in t.lines() {
                    let _ = fs::write(Path::new(root).join("cgroup.procs"), pid);
                }
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

/// One build directory per host on tmpfs (`/dev/shm`), removed on drop.
struct BuildDirs {
    dirs: Vec<(&'static str, PathBuf)>,
}

impl BuildDirs {
    /// Without a writable `/dev/shm` the hosts build where they always do, and it says so.
    fn new(names: &[&'static str]) -> BuildDirs {
        let mut dirs = Vec::new();
        for n in names {
            let d = PathBuf::from(format!("/dev/shm/rvbuild-split-bench-{}-{n}", std::process::id()));
            if let Err(e) = fs::create_dir_all(&d) {
                println!("  (no build directories on tmpfs: {}: {e})", d.display());
                drop(BuildDirs { dirs });
                return BuildDirs { dirs: Vec::new() };
            }
            dirs.push((*n, d));
        }
        BuildDirs { dirs }
    }

    /// The sshd_config line that puts `name`'s builds in its directory, if it has one.
    fn sshd_line(&self, name: &str) -> &'static str {
        match self.dirs.iter().find(|(n, _)| *n == name) {
            Some((_, d)) => Box::leak(format!("SetEnv TMPDIR={}", d.display()).into_boxed_str()),
            None => "",
        }
    }
}

impl Drop for BuildDirs {
    fn drop(&mut self) {
        for (_, d) in &self.dirs {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// Log lines with the second they arrived.
#[derive(Default)]
struct Timed {
    start: Mutex<Option<Instant>>,
    lines: Mutex<Vec<(f64, String)>>,
}

impl Reporter for Timed {
    fn event(&self, e: &Event) {
        let Ok(mut s) = self.start.lock() else { return };
        let t0 = *s.get_or_insert_with(Instant::now);
        let line = match e {
            Event::Log { line, .. } => line.clone(),
            Event::Note { text } => text.clone(),
            _ => return,
        };
        if let Ok(mut v) = self.lines.lock() {
            v.push((t0.elapsed().as_secs_f64(), line));
        }
    }
}

fn ssh(fleet: &Fleet, name: &str, home: &Path) -> Arc<dyn Transport> {
    let h = fleet.host(name);
    let nix = home.join("etc-nix");
    fs::create_dir_all(&nix).unwrap_or_else(|e| die(format!("{e}")));
    let sources = Sources { nix_conf_dir: nix, home: Some(home.into()), ssh_dir: home.join("etc-ssh"), cores: 1 };
    let opts = PoolOptions {
        builders: Some(h.machines_line(fleet)),
        local_jobs: Some(LocalJobs::Count(0)),
        ..Default::default()
    };
    let b = load_pool(None, &opts, &sources).unwrap_or_else(|e| die(format!("pool: {e}"))).remove(0);
    let opts = SshOptions { home: Some(home.into()), agent_socket: None, ..SshOptions::default() };
    Arc::new(SshTransport::new(&b, opts).unwrap_or_else(|e| die(format!("transport: {e}"))))
}

/// Builds `drv` on `owner` (split over `helpers` when there are any); returns the wall time
/// and the timed log.
fn build_on(drv: &str, owner: &str, transport: Arc<dyn Transport>, helpers: Vec<Helper>, logs: &Path) -> (f64, Timed) {
    let dag = Arc::new(load_closure(&[drv.to_string()]).unwrap_or_else(|e| die(format!("{drv}: {e}"))));
    let i = dag.index_of(drv).unwrap_or_else(|| die(format!("{drv} not in its DAG")));
    let prepared = Prepared { nodes: vec![i], tasks: tasks_from_dag(&dag, &[i], None), cached: BTreeSet::new() };
    let model = BuilderModel {
        name: owner.into(),
        slots: 1,
        native_systems: vec!["x86_64-linux".into()],
        emulated: BTreeMap::new(),
        speed: 1.0,
        supported_features: Vec::new(),
        mandatory_features: Vec::new(),
        local: false,
        link_bytes_per_s: 1e8,
        dispatch_overhead_s: 0.1,
    };
    let policy =
        Box::new(Scheduler::new(prepared.tasks.clone(), vec![model.clone()]).unwrap_or_else(|e| die(format!("{e}"))));
    let split = if helpers.is_empty() {
        SplitConfig::default()
    } else {
        SplitConfig { drvs: BTreeSet::from([drv.to_string()]), helpers }
    };
    let opts = Options { log_dir: logs.join(owner), split, ..Options::default() };
    let timed = Timed::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(format!("{e}")));
    let t0 = Instant::now();
    if let Ok(mut s) = timed.start.lock() {
        *s = Some(t0);
    }
    let members = vec![Member { model, transport }];
    let r = rt.block_on(rvbuild::build::run(
        dag,
        &prepared,
        members,
        policy,
        Arc::new(LocalTransport::new()),
        opts,
        &timed,
    ));
    let wall = t0.elapsed().as_secs_f64();
    match r {
        Ok(o) => {
            if let Some(s) = o.built.get(drv).and_then(|b| b.split.as_ref()) {
                println!(
                    "  split on {owner}: jobs per helper {:?}, failed {:?}, excluded {:?}",
                    s.jobs, s.failed, s.excluded
                );
            }
        }
        Err(e) => die(format!("building {drv} on {owner}: {e}")),
    }
    (wall, timed)
}

/// The builder's own log lines and rvbuild's notes, with the second each arrived: where the
/// wall time went.
fn timeline(t: &Timed) {
    let Ok(lines) = t.lines.lock() else { return };
    for (at, l) in lines.iter().filter(|(_, l)| l.starts_with("rvbuild:") || l.starts_with("split")) {
        println!("    {at:7.1} s  {l}");
    }
}

/// Seconds before `make` starts and after it ends, from the builder's log lines.
fn serial_part(t: &Timed, wall: f64) -> Option<f64> {
    let lines = t.lines.lock().ok()?;
    // `building` starts make in both builders (the kernel says `compiling with distcc` before
    // its config, so that line does not mark make's start).
    let start = lines.iter().find(|(_, l)| l.contains("rvbuild: building"))?.0;
    let end = lines.iter().find(|(_, l)| l.contains("rvbuild: saving") || l.contains("rvbuild: linked"))?.0;
    Some(start + (wall - end))
}

fn instantiate(expr: &Path, attr: Option<&str>) -> String {
    let mut c = Command::new("nix-instantiate");
    c.arg(expr);
    if let Some(a) = attr {
        c.args(["-A", a]);
    }
    let o = c.output().unwrap_or_else(|e| die(format!("nix-instantiate: {e}")));
    if !o.status.success() {
        die(format!("nix-instantiate {}: {}", expr.display(), String::from_utf8_lossy(&o.stderr)));
    }
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The qemu-riscv64 kernel derivation, from the expression `rvbuild board --expr-only` writes.
fn kernel_drv(dir: &Path) -> String {
    let out = dir.join("expr");
    let o = Command::new(env!("CARGO_BIN_EXE_rvbuild"))
        .args(["board", "qemu-riscv64", "--profile", "ci", "--expr-only", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| die(format!("rvbuild: {e}")));
    if !o.status.success() {
        die(format!("rvbuild board --expr-only: {}", String::from_utf8_lossy(&o.stderr)));
    }
    instantiate(&out.join("board.nix"), Some("kernel"))
}

fn main() {
    let quick = std::env::var("RVBUILD_BENCH_QUICK").is_ok_and(|v| v == "1");
    let split_only = std::env::var("RVBUILD_BENCH_SPLIT_ONLY").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap_or_else(|e| die(format!("{e}")));
    let (what, drv) = if quick {
        let drv = tiny_tree::instantiate(dir.path(), 48, &hosts::nonce()).unwrap_or_else(|e| die(e));
        ("a tiny C tree (48 files)", drv)
    } else {
        ("the qemu-riscv64 kernel", kernel_drv(dir.path()))
    };
    println!(
        "kernel_split: {what}, every participant at 0.5 CPU (cgroup v1 cpu.cfs_quota_us, period {} ms)",
        f64::from(period_us()) / 1000.0
    );
    // Every host builds in a fresh directory on tmpfs. On this machine's ext4 the unpack of
    // the run that came second took 40 s instead of 24 s: the inode allocator skips inodes
    // deleted in the last minutes, and the first run had just deleted a kernel tree.
    let names = ["one", "own", "a", "b", "c"];
    let scratch = BuildDirs::new(&names);
    let specs: Vec<HostSpec> = names
        .iter()
        .map(|n| HostSpec { sshd_extra: scratch.sshd_line(n), ..HostSpec::new(n, "x86_64-linux") })
        .collect();
    let fleet = hosts::start(&specs);
    let groups: Vec<Cgroup> = fleet
        .hosts
        .iter()
        .map(|h| {
            let g = Cgroup::half_cpu(&h.name);
            g.add(&h.processes());
            g
        })
        .collect();
    let home = dir.path().join("home");
    let helpers: Vec<Helper> = ["a", "b", "c"]
        .iter()
        .map(|n| Helper { name: n.to_string(), transport: ssh(&fleet, n, &home), slots: 2 })
        .collect();
    let logs = dir.path().join("logs");

    if split_only {
        println!(
            "  (RVBUILD_BENCH_SPLIT_ONLY: no baseline; profile the owner with `perf record -a -G {}`)",
            groups
                .iter()
                .find(|g| g.name == "own")
                .map(|g| g.cpu.file_name().unwrap_or_default().to_string_lossy().to_string())
                .unwrap_or_default()
        );
    }
    let before: Vec<Option<f64>> = groups.iter().map(Cgroup::used).collect();
    let (base, base_log) = if split_only {
        (f64::NAN, Timed::default())
    } else {
        let (base, log) = build_on(&drv, "one", ssh(&fleet, "one", &home), Vec::new(), &logs);
        println!("  baseline (one host, -j as today): {base:.1} s");
        println!("    CPU seconds used: {}", cpu_between(&groups, &before, &["one"]));
        timeline(&log);
        (base, log)
    };
    let before: Vec<Option<f64>> = groups.iter().map(Cgroup::used).collect();
    let (split, split_log) = build_on(&drv, "own", ssh(&fleet, "own", &home), helpers, &logs);
    println!("  split (owner + 3 helpers):        {split:.1} s");
    println!(
        "    CPU seconds used (at most {:.1} each): {}",
        split * 0.5,
        cpu_between(&groups, &before, &["own", "a", "b", "c"])
    );
    let mode = split_log.lines.lock().ok().and_then(|l| {
        l.iter()
            .find(|(_, t)| t.contains("distcc pump mode") || t.contains("distcc plain mode"))
            .map(|(_, t)| t.clone())
    });
    println!("    {}", mode.as_deref().unwrap_or("distcc mode: not in the build log"));
    timeline(&split_log);
    if split_only {
        return;
    }
    let ratio = split / base;
    match (serial_part(&base_log, base), serial_part(&split_log, split)) {
        (Some(serial), split_serial) => {
            let ideal = (serial + (base - serial) / 4.0) / base;
            println!("  serial part of the baseline: {serial:.1} s; ideal ratio with 4 equal participants: {ideal:.2}");
            // The make phase alone: how well the compile itself spreads, apart from the serial part.
            if let Some(s) = split_serial {
                let (mb, ms) = (base - serial, split - s);
                println!(
                    "  make phase: baseline {mb:.1} s, split {ms:.1} s (ratio {:.2}, ideal 0.25); serial part of the split run {s:.1} s",
                    ms / mb.max(1e-9)
                );
            }
        }
        (None, _) => println!("  serial part: not found in the build log"),
    }
    println!("kernel_split: split / baseline = {ratio:.2} (goal <= 0.5 for the kernel)");
    drop(fleet);
    drop(groups);
    drop(scratch);
}
