//! The kernel's compile split over the pool with distcc (src/build/split.rs), on loopback sshd
//! builders with their own Nix stores (support/hosts.rs): the qemu-riscv64 kernel builds on host
//! `k` (its compile split over `k` itself and three helpers, each reached only through rvbuild's
//! SSH connections), one helper is killed while it has jobs in flight, and the result must be
//! the unsplit kernel of the local store, NAR hash for NAR hash. A helper with another compiler
//! and one with an unknown host key are left out, with the reason.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvbuild::build::split::{Helper, SplitConfig};
use rvbuild::build::{Member, Options, Prepared};
use rvbuild::builders::{Builder, PoolOptions, Sources, load_pool};
use rvbuild::nix::dag::load_closure;
use rvbuild::profile::build::LocalJobs;
use rvbuild::schedule::{BuilderModel, Scheduler, tasks_from_dag};
use rvbuild::transport::{LocalTransport, SshOptions, SshTransport, Transport};
use rvbuild::{Event, Reporter};
use support::hosts::{self, Fleet, Host, HostSpec};
use support::{built, manifest, rvbuild, text};

/// The pool entry for one machines line, with `home` as the user's home.
fn builder(line: &str, home: &Path) -> Builder {
    let nix = home.join("etc-nix");
    fs::create_dir_all(&nix).expect("mkdir");
    let sources = Sources { nix_conf_dir: nix, home: Some(home.into()), ssh_dir: home.join("etc-ssh"), cores: 1 };
    let opts =
        PoolOptions { builders: Some(line.to_string()), local_jobs: Some(LocalJobs::Count(0)), ..Default::default() };
    let mut pool = load_pool(None, &opts, &sources).expect("pool");
    pool.remove(0)
}

fn ssh(line: &str, home: &Path) -> Arc<dyn Transport> {
    let opts = SshOptions {
        home: Some(home.into()),
        agent_socket: None,
        known_hosts_file: Some(home.join(".ssh/known_hosts")),
        connect_timeout: Duration::from_secs(5),
        ..SshOptions::default()
    };
    Arc::new(SshTransport::new(&builder(line, home), opts).expect("transport"))
}

/// Collects events.
#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Reporter for Events {
    fn event(&self, e: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e.clone());
        }
    }
}

/// A directory put first on a host's PATH: a `distccd` that records each job it starts and
/// ends (the count from the helper's side), and optionally a cross gcc that claims another
/// version.
fn path_dir(root: &Path, name: &str, odd_compiler: bool) -> PathBuf {
    let d = root.join(format!("path-{name}"));
    fs::create_dir_all(&d).expect("mkdir");
    let wrapper = format!(
        "#!/bin/sh\necho start >> {log}/started\n/usr/bin/distccd \"$@\"\nrc=$?\necho done >> {log}/done\nexit $rc\n",
        log = d.display()
    );
    write_exe(&d.join("distccd"), &wrapper);
    if odd_compiler {
        write_exe(
            &d.join("riscv64-linux-gnu-gcc"),
            "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'riscv64-linux-gnu-gcc (Other) 99.1.0'; exit 0; }\nexec /usr/bin/riscv64-linux-gnu-gcc \"$@\"\n",
        );
    }
    d
}

fn write_exe(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(p, text).expect("write");
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn lines(p: &Path) -> usize {
    fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0)
}

/// The qemu-riscv64 kernel's .drv, from the expression `rvbuild board --expr-only` writes.
fn kernel_drv(dir: &Path) -> String {
    let out = dir.join("expr");
    let o = rvbuild()
        .args(["board", "qemu-riscv64", "--profile", "ci", "--expr-only", "--out"])
        .arg(&out)
        .output()
        .expect("run rvbuild board --expr-only");
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new("nix-instantiate")
        .arg(out.join("board.nix"))
        .args(["-A", "kernel"])
        .output()
        .expect("nix-instantiate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn spec(name: &'static str, path: Option<&Path>) -> HostSpec {
    let extra: &'static str = match path {
        Some(p) => Box::leak(format!("SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n", p.display()).into_boxed_str()),
        None => "",
    };
    HostSpec { sshd_extra: extra, ..HostSpec::new(name, "x86_64-linux") }
}

fn nar_hash_here(path: &str) -> String {
    let o = Command::new("nix-store").args(["-q", "--hash", path]).output().expect("nix-store");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn nar_hash_on(host: &Host, path: &str) -> String {
    let o = host.run(&format!("nix-store -q --hash '{path}'"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The files of `path` whose content or mode differs between k's store and the local one, with
/// a diff of the first few text files: what a NAR mismatch comes down to.
fn differing_files(host: &Host, path: &str) -> String {
    let list = format!(
        r#"cd '{path}' && {{ find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l -printf 'link %p %l\n'; find . -printf 'mode %m %p\n'; }} | sort"#
    );
    let there = String::from_utf8_lossy(&host.run(&list).stdout).to_string();
    let here = Command::new("sh").args(["-c", &list]).output().map(|o| String::from_utf8_lossy(&o.stdout).to_string());
    let here = here.unwrap_or_default();
    let (a, b): (BTreeSet<&str>, BTreeSet<&str>) = (there.lines().collect(), here.lines().collect());
    let mut out = String::new();
    for l in a.symmetric_difference(&b).take(40) {
        let side = if a.contains(l) { "split" } else { "unsplit" };
        out.push_str(&format!("  {side}: {l}\n"));
    }
    let files: BTreeSet<&str> = a
        .symmetric_difference(&b)
        .filter(|l| !l.starts_with("link ") && !l.starts_with("mode "))
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    for f in files.iter().take(3) {
        let text = host.run(&format!("cat '{path}/{f}' | head -c 20000"));
        let mine = fs::read(format!("{path}/{f}")).unwrap_or_default();
        if let (Ok(t), Ok(m)) = (std::str::from_utf8(&text.stdout), std::str::from_utf8(&mine)) {
            let (tl, ml): (Vec<&str>, Vec<&str>) = (t.lines().collect(), m.lines().collect());
            for (i, (x, y)) in tl.iter().zip(ml.iter()).enumerate().filter(|(_, (x, y))| x != y).take(5) {
                out.push_str(&format!("  {f}:{}:\n    split:   {x}\n    unsplit: {y}\n", i + 1));
            }
        }
    }
    out
}

/// Kills `victim`'s sshd (and its distccd jobs) once it has finished two jobs and has one
/// running; gives the fleet back when done (or after `limit`).
fn kill_mid_compile(mut fleet: Fleet, victim: &'static str, log: PathBuf, limit: Duration) -> (Fleet, bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let host = fleet.host(victim);
        if lines(&log.join("done")) >= 2 && host.command_lines().iter().any(|c| c.contains("distccd --inetd")) {
            fleet.host_mut(victim).kill_sshd();
            return (fleet, true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (fleet, false)
}

#[test]
fn nixbuild_ssh_kernel_split_over_three_helpers_survives_a_killed_helper_and_equals_the_unsplit_kernel() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The unsplit kernel goes into the local store (the board build shared with the other
    // tests) while the split one builds on k.
    let drv = kernel_drv(dir.path());
    let unsplit = std::thread::spawn(|| built("qemu-riscv64"));
    let paths: BTreeMap<&str, PathBuf> =
        ["a", "b", "c", "odd"].iter().map(|n| (*n, path_dir(dir.path(), n, *n == "odd"))).collect();
    let fleet = hosts::start(&[
        spec("k", None),
        spec("a", Some(&paths["a"])),
        spec("b", Some(&paths["b"])),
        spec("c", Some(&paths["c"])),
        spec("odd", Some(&paths["odd"])),
    ]);
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    let helper = |name: &str| Helper {
        name: name.to_string(),
        transport: ssh(&fleet.host(name).machines_line(&fleet), &home),
        slots: 2,
    };
    // Host a once more, but with nothing known about its host key: refused.
    let a = fleet.host("a");
    let unknown_line = format!("ssh://root@{}:{} x86_64-linux {} 2", a.addr, a.port, fleet.client_key.display());
    let unknown = Helper { name: "a-unknown-key".into(), transport: ssh(&unknown_line, &home), slots: 2 };
    let helpers = vec![helper("a"), helper("b"), helper("c"), helper("odd"), unknown];

    let k = fleet.host("k");
    let k_transport = ssh(&k.machines_line(&fleet), &home);
    let dag = Arc::new(load_closure(std::slice::from_ref(&drv)).expect("dag"));
    let i = dag.index_of(&drv).expect("kernel node");
    // Build the kernel on k even though the local store has it: that is the second store.
    let prepared = Prepared { nodes: vec![i], tasks: tasks_from_dag(&dag, &[i], None), cached: BTreeSet::new() };
    let model = BuilderModel {
        name: "k".into(),
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
    let policy = Box::new(Scheduler::new(prepared.tasks.clone(), vec![model.clone()]).expect("scheduler"));
    let opts = Options {
        log_dir: dir.path().join("logs"),
        split: SplitConfig { drvs: BTreeSet::from([drv.clone()]), helpers },
        ..Options::default()
    };
    let k_out: Vec<String> = ["out", "dev"]
        .iter()
        .map(|o| {
            let d = fs::read_to_string(&drv).expect("read drv");
            let parsed = rvbuild::nix::drv::Derivation::parse(&d).expect("parse drv");
            parsed.outputs[*o].path.clone()
        })
        .collect();

    let c_log = paths["c"].clone();
    let watcher = std::thread::spawn(move || kill_mid_compile(fleet, "c", c_log, Duration::from_secs(1500)));
    let events = Events::default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let members = vec![Member { model, transport: k_transport }];
    let result = rt.block_on(rvbuild::build::run(
        dag.clone(),
        &prepared,
        members,
        policy,
        Arc::new(LocalTransport::new()),
        opts,
        &events,
    ));
    let (fleet, killed) = watcher.join().expect("watcher");
    let notes: Vec<String> = events
        .0
        .lock()
        .map(|v| {
            v.iter()
                .filter_map(|e| match e {
                    Event::Note { text } => Some(text.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let outcome = result.unwrap_or_else(|e| panic!("split build failed: {e}\nnotes: {notes:#?}"));
    let out = unsplit.join().expect("the unsplit board build");
    assert_eq!(manifest(&out)["components"]["kernel"]["drv"], drv.as_str(), "one derivation, split or not");
    assert!(killed, "helper c never had a job in flight after two finished jobs; notes: {notes:#?}");
    let b = &outcome.built[&drv];
    let report = b.split.as_ref().unwrap_or_else(|| panic!("no split report; notes: {notes:#?}"));
    assert_eq!(report.owner, "k");

    // Jobs ran on every helper, counted on the helper (the distccd wrapper) and by distccd's own
    // log lines (the report); c lost the jobs it had when it died.
    for h in ["a", "b", "c"] {
        let done = lines(&paths[h].join("done"));
        assert!(done >= 2, "helper {h} finished {done} jobs; report {report:?}");
        assert!(report.jobs[h] >= 1, "helper {h}: report {report:?}");
        assert!(report.jobs[h] as usize <= lines(&paths[h].join("started")), "{h}: {report:?}");
    }
    assert!(report.failed["c"] >= 1, "the jobs c had in flight failed: {report:?}");
    assert!(notes.iter().any(|n| n.contains("split: a job on c failed")), "{notes:#?}");
    // Left out, with the reason.
    assert!(report.excluded["odd"].contains("99.1.0"), "{report:?}");
    assert!(!report.jobs.contains_key("odd") && lines(&paths["odd"].join("started")) == 0, "{report:?}");
    assert!(report.excluded["a-unknown-key"].contains("host key"), "{report:?}");

    // The same bytes as the unsplit kernel, in two different stores.
    for p in &k_out {
        assert!(fleet.host("k").store_has(p), "{p} was built in k's store");
        let (there, here) = (nar_hash_on(fleet.host("k"), p), nar_hash_here(p));
        if there != here {
            panic!("{p}: split and unsplit differ ({there} vs {here}):\n{}", differing_files(fleet.host("k"), p));
        }
    }
    // Nothing is left of the runtime directory on k.
    let left = fleet.host("k").run("ls /nix/var/rvbuild/split");
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "{left:?}");
    drop(fleet);

    // The board image with this (byte-identical) kernel boots to its marker.
    let o = rvbuild()
        .args(["qemu", "qemu-riscv64", "--no-build", "--out", out.to_str().unwrap_or_default()])
        .current_dir(dir.path())
        .output()
        .expect("run rvbuild qemu");
    assert!(o.status.success(), "boot failed:\n{}", text(&o));
}

/// The local machine as the owner (its Nix builds as the `nixbld` users, who reach the sockets
/// through the group), one SSH helper: jobs run there, and the objects are those of an
/// unsplit build of the same tree.
#[test]
fn ssh_split_with_the_local_machine_as_owner_compiles_on_the_helper_and_matches_unsplit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_dir(dir.path(), "a", false);
    let fleet = hosts::start(&[spec("a", Some(&path))]);
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    let a = fleet.host("a");
    let helper = Helper { name: "a".into(), transport: ssh(&a.machines_line(&fleet), &home), slots: 2 };
    let split_drv = support::tiny_tree::instantiate(dir.path(), 24, &hosts::nonce()).expect("tiny tree");
    let plain_drv = support::tiny_tree::instantiate(dir.path(), 24, &hosts::nonce()).expect("tiny tree");

    let dag = Arc::new(load_closure(std::slice::from_ref(&split_drv)).expect("dag"));
    let i = dag.index_of(&split_drv).expect("node");
    let prepared = Prepared { nodes: vec![i], tasks: tasks_from_dag(&dag, &[i], None), cached: BTreeSet::new() };
    let model = BuilderModel {
        name: "local".into(),
        slots: 1,
        native_systems: vec!["x86_64-linux".into()],
        emulated: BTreeMap::new(),
        speed: 1.0,
        supported_features: Vec::new(),
        mandatory_features: Vec::new(),
        local: true,
        link_bytes_per_s: 1e9,
        dispatch_overhead_s: 0.0,
    };
    let policy = Box::new(Scheduler::new(prepared.tasks.clone(), vec![model.clone()]).expect("scheduler"));
    let opts = Options {
        log_dir: dir.path().join("logs"),
        split: SplitConfig { drvs: BTreeSet::from([split_drv.clone()]), helpers: vec![helper] },
        ..Options::default()
    };
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let members = vec![Member { model, transport: local.clone() }];
    let events = Events::default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let outcome = rt
        .block_on(rvbuild::build::run(dag.clone(), &prepared, members, policy, local, opts, &events))
        .unwrap_or_else(|e| panic!("split build: {e}"));
    let report = outcome.built[&split_drv].split.clone().expect("split report");
    assert_eq!(report.owner, "local");
    let done = lines(&path.join("done"));
    assert!(report.jobs["a"] >= 1 && done >= 1, "jobs on a: {report:?}, wrapper saw {done}");
    assert!(report.jobs["a"] as usize <= done, "{report:?} vs {done}");
    let split_out = &outcome.built[&split_drv].outputs[0];
    let o = Command::new("nix-store").args(["--realise", &plain_drv]).output().expect("nix-store");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plain_out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let read = |p: &str| fs::read_to_string(Path::new(p).join("objects.sha256")).expect("objects.sha256");
    assert_eq!(read(split_out), read(&plain_out), "split and unsplit objects differ");
    assert!(!Path::new("/nix/var/rvbuild/split").join(&split_out[11..43]).exists(), "runtime dir left");
}
