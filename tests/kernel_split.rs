//! The kernel's compile split over the pool with distcc (src/build/split.rs), on loopback sshd
//! builders with their own Nix stores (support/hosts.rs), through the CLI:
//! `rvbuild board qemu-riscv64 --split always --builders @machines --json`, run with a Nix
//! store of its own. The scheduler puts the kernel on host `k` (the fastest), whose compile is
//! split over `k` itself and its helpers (the local machine and three loopback hosts, each
//! reached only through rvbuild's connections); one helper is killed while it has jobs in
//! flight, and the result must be the unsplit kernel of the local store, NAR hash for NAR hash,
//! and boot. A helper with another compiler and one with an unknown host key are left out, with
//! the reason, in manifest.json and the JSON events.

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

/// A command run in a private mount namespace whose `/nix` is `root` (a store of its own,
/// empty at first) and whose `/etc/nix` is `etc`: rvbuild's "local machine" there has nothing
/// built yet, so the kernel the local store already has is built once more, split.
fn in_own_store(root: &Path, etc: &Path, program: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "set -e; mount --bind '{}' /nix; mount --bind '{}' /etc/nix; exec \"$@\"",
            root.display(),
            etc.display()
        ))
        .arg("sh")
        .arg(program)
        .current_dir(support::repo_root())
        .env_remove("RVBUILD_PROJECT")
        .env_remove("RVBUILD_PORT")
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// A machines line with its speed column replaced, or without the host key column.
fn machines_line(line: &str, speed: Option<&str>, keep_host_key: bool) -> String {
    let mut f: Vec<&str> = line.split_whitespace().collect();
    if let Some(s) = speed {
        f[4] = s;
    }
    if !keep_host_key {
        f.truncate(7);
    }
    f.join(" ")
}

/// The fleet's name of an rvbuild builder name (`ADDR:PORT`), `local` for this machine.
fn fleet_name(fleet: &Fleet, builder: &str) -> String {
    fleet
        .hosts
        .iter()
        .find(|h| builder == format!("{}:{}", h.addr, h.port))
        .map(|h| h.name.clone())
        .unwrap_or_else(|| builder.to_string())
}

/// A map of the split report (builder name -> value) by fleet names.
fn by_fleet_name(fleet: &Fleet, v: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (fleet_name(fleet, k), v.clone())).collect()).unwrap_or_default()
}

#[test]
fn nixbuild_ssh_kernel_split_over_three_helpers_survives_a_killed_helper_and_equals_the_unsplit_kernel() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The unsplit kernel goes into the local store (the board build shared with the other
    // tests) while the split one builds for a store of its own.
    let drv = kernel_drv(dir.path());
    let unsplit = std::thread::spawn(|| built("qemu-riscv64"));
    let paths: BTreeMap<&str, PathBuf> =
        ["local", "a", "b", "c", "odd"].iter().map(|n| (*n, path_dir(dir.path(), n, *n == "odd"))).collect();
    let fleet = hosts::start(&[
        spec("k", None),
        spec("a", Some(&paths["a"])),
        spec("b", Some(&paths["b"])),
        spec("c", Some(&paths["c"])),
        spec("odd", Some(&paths["odd"])),
        spec("u", None),
    ]);
    // k is the fastest (speed 4), so the scheduler puts the kernel there: a remote owner, whose
    // helpers are the rest of the pool, the local machine included. u's host key is unknown.
    let machines: String = fleet
        .hosts
        .iter()
        .map(|h| {
            let line = h.machines_line(&fleet);
            match h.name.as_str() {
                "k" => machines_line(&line, Some("4"), true),
                "u" => machines_line(&line, None, false),
                _ => line,
            }
        })
        .map(|l| l + "\n")
        .collect();
    let machines_file = dir.path().join("machines");
    fs::write(&machines_file, machines).expect("machines");
    let home = dir.path().join("home");
    let (root, etc, conf) = (dir.path().join("own-nix"), dir.path().join("own-etc-nix"), dir.path().join("conf"));
    for d in [&home.join(".ssh"), &root, &etc, &conf] {
        fs::create_dir_all(d).expect("mkdir");
    }
    fs::write(
        etc.join("nix.conf"),
        "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n",
    )
    .expect("nix.conf");
    fs::write(conf.join("nix.conf"), "").expect("nix.conf");
    let out = dir.path().join("result");
    let path = format!("{}:{}", paths["local"].display(), std::env::var("PATH").unwrap_or_default());

    let c_log = paths["c"].clone();
    let watcher = std::thread::spawn(move || kill_mid_compile(fleet, "c", c_log, Duration::from_secs(1500)));
    let o = in_own_store(&root, &etc, Path::new(env!("CARGO_BIN_EXE_rvbuild")))
        .args(["--json", "board", "qemu-riscv64", "--profile", "ci", "--split", "always", "--local-jobs", "2"])
        .arg(format!("--builders=@{}", machines_file.display()))
        .arg("--out")
        .arg(&out)
        .env("HOME", &home)
        .env("RVBUILD_NIX_CONF_DIR", &conf)
        .env("CI", "true")
        .env("PATH", &path)
        .output()
        .expect("run rvbuild board");
    let (fleet, killed) = watcher.join().expect("watcher");
    let t = text(&o);
    assert!(o.status.success(), "split board build failed:\n{t}");
    assert!(t.contains("distcc pump mode: @h0/"), "the helpers preprocessed too (pump mode):\n{t}");
    let notes: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["text"].as_str().map(|s| s.to_string()))
        .collect();
    let unsplit_out = unsplit.join().expect("the unsplit board build");
    let m = manifest(&out);
    let kernel = &m["components"]["kernel"];
    assert_eq!(kernel["drv"], drv.as_str(), "one derivation, split or not");
    assert_eq!(manifest(&unsplit_out)["components"]["kernel"]["drv"], drv.as_str());
    assert!(killed, "helper c never had a job in flight after two finished jobs; notes: {notes:#?}");
    let report = &kernel["split"];
    assert_eq!(fleet_name(&fleet, report["owner"].as_str().unwrap_or_default()), "k", "{report}");
    assert_eq!(fleet_name(&fleet, kernel["host"].as_str().unwrap_or_default()), "k", "{kernel}");
    let jobs = by_fleet_name(&fleet, &report["jobs"]);
    let failed = by_fleet_name(&fleet, &report["failed"]);
    let excluded = by_fleet_name(&fleet, &report["excluded"]);

    // Jobs ran on every helper, the local machine included, counted on the helper (the
    // distccd wrapper) and by distccd's own log lines (the manifest); c lost the jobs it had
    // when it died.
    for h in ["local", "a", "b", "c"] {
        let done = lines(&paths[h].join("done"));
        let n = jobs.get(h).and_then(|v| v.as_u64()).unwrap_or(0);
        assert!(done >= 2, "helper {h} finished {done} jobs; report {report}");
        assert!(n >= 1, "helper {h}: report {report}");
        assert!(n as usize <= lines(&paths[h].join("started")), "{h}: {report}");
    }
    assert!(failed.get("c").and_then(|v| v.as_u64()).unwrap_or(0) >= 1, "the jobs c had in flight failed: {report}");
    let c_name = format!("{}:{}", fleet.host("c").addr, fleet.host("c").port);
    assert!(notes.iter().any(|n| n.contains(&format!("split: a job on {c_name} failed"))), "{notes:#?}");
    // Left out, with the reason.
    let why = |h: &str| excluded.get(h).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    assert!(why("odd").contains("99.1.0"), "{report}");
    assert!(!jobs.contains_key("odd") && lines(&paths["odd"].join("started")) == 0, "{report}");
    assert!(why("u").contains("host key"), "{report}");
    assert!(notes.iter().any(|n| n.contains("does not help") && n.contains("99.1.0")), "{notes:#?}");

    // The same bytes as the unsplit kernel, in three different stores: k's, where it was built,
    // the one of this build, and the local one.
    let k_out: Vec<String> = {
        let d = fs::read_to_string(&drv).expect("read drv");
        let parsed = rvbuild::nix::drv::Derivation::parse(&d).expect("parse drv");
        ["out", "dev"].iter().map(|o| parsed.outputs[*o].path.clone()).collect()
    };
    for p in &k_out {
        assert!(fleet.host("k").store_has(p), "{p} was built in k's store");
        let (there, here) = (nar_hash_on(fleet.host("k"), p), nar_hash_here(p));
        if there != here {
            panic!("{p}: split and unsplit differ ({there} vs {here}):\n{}", differing_files(fleet.host("k"), p));
        }
        let q =
            in_own_store(&root, &etc, Path::new("nix-store")).args(["-q", "--hash", p]).output().expect("nix-store");
        assert_eq!(
            String::from_utf8_lossy(&q.stdout).trim(),
            here,
            "{p} fetched into this build's store: {}",
            text(&q)
        );
    }
    // Nothing is left of the runtime directory on k.
    let left = fleet.host("k").run("ls /nix/var/rvbuild/split");
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "{left:?}");
    drop(fleet);

    // The board image with the split kernel boots to its marker.
    let o = in_own_store(&root, &etc, Path::new(env!("CARGO_BIN_EXE_rvbuild")))
        .args(["qemu", "qemu-riscv64", "--no-build", "--out"])
        .arg(&out)
        .env("HOME", &home)
        .env("RVBUILD_NIX_CONF_DIR", &conf)
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
    let logs: String = fs::read_dir(dir.path().join("logs"))
        .expect("logs")
        .filter_map(|e| e.ok().and_then(|e| fs::read_to_string(e.path()).ok()))
        .collect();
    assert!(logs.contains("distcc pump mode: @h0/4,cpp,lzo"), "the helper preprocessed too:\n{logs}");
    assert!(!Path::new("/nix/var/rvbuild/split").join(&split_out[11..43]).exists(), "runtime dir left");
}
