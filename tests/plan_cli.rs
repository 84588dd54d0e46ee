//! `rvbuild plan`: strategies with their reasons in numbers, the predicted schedule,
//! `--simulate` against the lower bound and Nix's policy, the Gantt chart, and bad input.
//! Plans instantiate the board's expression but never build; hosts are never contacted.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{rvbuild, text};

/// rvbuild with a private HOME (no probes, no history, no ssh config) and a nix.conf of its
/// own: the pool is `--builders` plus the local machine running x86_64-linux natively and
/// riscv64/aarch64 through binfmt, as scripts/setup-host.sh configures it.
fn plan(dir: &Path, args: &[&str]) -> Output {
    let conf = dir.join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), "extra-platforms = riscv64-linux aarch64-linux\n").expect("nix.conf");
    let mut c: Command = rvbuild();
    c.env("HOME", dir).env("RVBUILD_NIX_CONF_DIR", &conf).env_remove("XDG_CACHE_HOME").current_dir(dir);
    c.arg("plan").args(args).output().expect("run rvbuild plan")
}

/// A probe cache entry saying `name` runs riscv64-linux natively and has this machine's
/// riscv64 userland (what `rvbuild builders probe` records).
fn write_probe(home: &Path, name: &str, uri: &str) {
    let id = rvbuild::builders::userland::find(rvbuild::profile::Arch::Riscv64)
        .expect("riscv64 userland (setup-host.sh)")
        .id;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let entry = serde_json::json!({
        "builder": name, "uri": uri, "probed_at": now, "duration_s": 0.1, "nix_version": "2.8.0",
        "system": "riscv64-linux", "extra_platforms": [], "system_features": [], "emulated": {},
        "cores": 4, "load1": 0.0, "free_disk_bytes": 1u64 << 34, "speed": null, "bench_ns_per_round": null,
        "errors": {}, "userlands": { "riscv64-linux": id }
    });
    let cache = serde_json::json!({ "version": 1, "probes": { format!("{name} {uri}"): entry } });
    let dir = home.join(".cache/rvbuild");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("probes.json"), cache.to_string()).expect("probe cache");
}

#[test]
fn plan_prints_every_component_with_its_strategy_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = plan(dir.path(), &["qemu-riscv64", "--simulate"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("COMPONENT"), "{out}");
    for c in ["kernel", "module-rvhello", "init", "initramfs", "bootfiles", "firmware", "image"] {
        let line = out.lines().find(|l| l.starts_with(&format!("{c} "))).unwrap_or_else(|| panic!("no row {c}: {out}"));
        assert!(line.contains(" cross "), "{c} is cross with only the local x86_64 machine: {line}");
    }
    let init = out.lines().find(|l| l.starts_with("init ")).unwrap_or_default();
    assert!(init.contains("cross on local: 5 s") && init.contains("emulated on local:"), "reason in numbers: {init}");
    assert!(init.contains("no native riscv64-linux host"), "{init}");
    let kernel = out.lines().find(|l| l.starts_with("kernel ")).unwrap_or_default();
    assert!(kernel.contains("only as cross"), "the provider's limit is the reason: {kernel}");
    assert!(out.contains("predicted makespan") && out.contains("lower bound"), "{out}");
    assert!(out.contains("Nix-like policy"), "{out}");
}

#[test]
fn plan_puts_userland_on_a_faster_native_host_and_honours_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Never contacted: plans only read the machines line and the probe cache.
    let builders = "ssh://root@192.0.2.1:2222 riscv64-linux - 4 2";
    // Until a probe says the host has this machine's riscv64 userland, it cannot take the
    // target-system userland.
    let o = plan(dir.path(), &["qemu-riscv64", "--builders", builders]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    let init = out.lines().find(|l| l.starts_with("init ")).unwrap_or_default();
    assert!(init.contains(" cross ") && init.contains("no native riscv64-linux host with the userland"), "{out}");
    write_probe(dir.path(), "192.0.2.1:2222", "ssh://root@192.0.2.1:2222");
    let o = plan(dir.path(), &["qemu-riscv64", "--builders", builders]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    let init = out.lines().find(|l| l.starts_with("init ")).unwrap_or_default();
    assert!(init.contains(" native ") && init.contains("native on 192.0.2.1:2222"), "{out}");
    let kernel = out.lines().find(|l| l.starts_with("kernel ")).unwrap_or_default();
    assert!(kernel.contains(" cross "), "{kernel}");

    // Forced cross, as JSON.
    let o = Command::new(env!("CARGO_BIN_EXE_rvbuild"))
        .args(["--json", "plan", "qemu-riscv64", "--builders", builders, "--strategy", "userland=cross"])
        .env("HOME", dir.path())
        .env("RVBUILD_NIX_CONF_DIR", dir.path().join("nixconf"))
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let rows = v["components"].as_array().expect("components");
    assert_eq!(rows.len(), 7);
    let init = rows.iter().find(|r| r["component"] == "init").expect("init row");
    assert_eq!(init["strategy"], "cross", "{init}");
    assert!(init["reason"].as_str().unwrap_or_default().contains("forced cross by override"), "{init}");
    assert!(v["lower_bound"].as_f64().is_some() && v["makespan"].as_f64().is_some(), "{v}");
    assert_eq!(v["builders"].as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn plan_draws_the_schedule_as_svg_and_html() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("plan.svg");
    let html = dir.path().join("plan.html");
    // An emulated userland is a new derivation here, so the chart has at least one bar.
    for f in [&svg, &html] {
        let o = plan(dir.path(), &["qemu-riscv64", "--strategy", "userland=emulated", "--gantt", &f.to_string_lossy()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let s = fs::read_to_string(&svg).expect("svg written");
    assert!(s.starts_with("<svg") || s.contains("<svg "), "{s}");
    let h = fs::read_to_string(&html).expect("html written");
    assert!(h.contains("<html") && h.contains("<svg"), "self-contained page with the chart");
}

#[test]
fn plan_bad_input_is_named_before_anything_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = plan(dir.path(), &["qemu-riscv64", "--strategy", "kernel=native"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("only as cross"), "{}", text(&o));

    let o = plan(dir.path(), &["qemu-riscv64", "--strategy", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let o = plan(dir.path(), &["qemu-riscv64", "--local-jobs", "0"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("local") || t.contains("pool is empty") || t.contains("no builder"), "{t}");

    let o = plan(dir.path(), &["no-such-board"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn plan_shows_the_kernel_split_decision_and_simulates_the_split_makespan() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A kernel nobody built (its own log buffer size), split by the profile's strategy.split.
    fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    fs::write(
        dir.path().join("profiles/split.yaml"),
        "name: split\nprovider: host\nbuilders:\n  use-nix-machines: false\n  local-jobs: 2\nstrategy:\n  split: always\n\
         overlays:\n  kernel-config:\n    LOG_BUF_SHIFT: \"13\"\n",
    )
    .expect("profile");
    // Never contacted: plans only read the machines lines.
    let builders = "ssh://root@192.0.2.1:2222 x86_64-linux - 2 1 ; ssh://root@192.0.2.2:2222 x86_64-linux - 2 1 ; \
                    ssh://root@192.0.2.3:2222 x86_64-linux - 2 1";
    let run = |extra: &[&str]| -> Value {
        let mut args = vec!["qemu-riscv64", "--profile", "split", "--builders", builders, "--simulate"];
        args.extend_from_slice(extra);
        let mut c = rvbuild();
        let conf = dir.path().join("nixconf");
        fs::create_dir_all(&conf).expect("mkdir");
        fs::write(conf.join("nix.conf"), "").expect("nix.conf");
        let o = c
            .env("HOME", dir.path())
            .env("RVBUILD_NIX_CONF_DIR", &conf)
            .env_remove("XDG_CACHE_HOME")
            .current_dir(dir.path())
            .arg("--json")
            .arg("plan")
            .args(&args)
            .output()
            .expect("run rvbuild plan");
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    };
    let kernel_row = |v: &Value| -> Value {
        v["components"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["component"] == "kernel"))
            .cloned()
            .unwrap_or_default()
    };
    let split = run(&[]);
    let row = kernel_row(&split);
    assert_eq!(row["cached"], false, "{row}");
    let text_split = row["split"].as_str().unwrap_or_default();
    assert!(
        text_split.starts_with("local + 192.0.2.1:2222,192.0.2.2:2222,192.0.2.3:2222 (distcc, 6 slots)  est. "),
        "{row}"
    );
    assert!(text_split.contains("(one host: "), "{row}");
    let never = run(&["--split", "never"]);
    assert_eq!(kernel_row(&never)["split"], "one host (--split never)", "{never}");
    let (a, b) = (split["makespan"].as_f64().unwrap_or(0.0), never["makespan"].as_f64().unwrap_or(0.0));
    assert!(a > 0.0 && a < b, "the split kernel shortens the predicted makespan: {a} vs {b}");

    // A probe found another cross compiler on the third host: the plan leaves it out and says why.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (name, uri) = ("192.0.2.3:2222", "ssh://root@192.0.2.3:2222");
    let entry = serde_json::json!({
        "builder": name, "uri": uri, "probed_at": now, "duration_s": 0.1, "nix_version": "2.8.0",
        "system": "x86_64-linux", "extra_platforms": [], "system_features": [], "emulated": {},
        "cores": 2, "load1": 0.0, "free_disk_bytes": 1u64 << 34, "speed": null, "bench_ns_per_round": null,
        "errors": {}, "userlands": {},
        "cross_compilers": { "riscv64-linux-gnu-gcc": "riscv64-linux-gnu-gcc (Other) 99.1.0\naaa\nbbb" }
    });
    let cache = serde_json::json!({ "version": 1, "probes": { format!("{name} {uri}"): entry } });
    fs::create_dir_all(dir.path().join(".cache/rvbuild")).expect("mkdir");
    fs::write(dir.path().join(".cache/rvbuild/probes.json"), cache.to_string()).expect("probe cache");
    let odd = run(&[]);
    let row = kernel_row(&odd);
    let t = row["split"].as_str().unwrap_or_default();
    assert!(t.starts_with("local + 192.0.2.1:2222,192.0.2.2:2222 (distcc, 4 slots)"), "{row}");
    assert!(
        t.contains("192.0.2.3:2222 left out: different riscv64-linux-gnu-gcc: `riscv64-linux-gnu-gcc (Other) 99.1.0`"),
        "{row}"
    );
}
