//! `rvbuild build` on the local machine only (the SSH builders are in ssh_build.rs): a real
//! DAG of Nix derivations built through the serve protocol, result links, a real build
//! failure with its log and host, a derivation no builder can run, bad targets.

mod support;

use std::fs;
use std::path::Path;

use support::{rvbuild, text};

/// A DAG file: `a` ← `b`, `c` ← `d`, plus `fail` when asked, and a riscv64 node `rv`.
fn write_dag(dir: &Path) -> String {
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let nix = format!(
        r#"let
  mk = name: system: deps: cmd: derivation {{
    inherit name system;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "echo building ${{name}} >&2; ${{cmd}}; echo {nonce} ${{name}} ${{builtins.concatStringsSep " " deps}} > $out" ];
  }};
  a = mk "a" "x86_64-linux" [] "true";
  b = mk "b" "x86_64-linux" [ "${{a}}" ] "true";
  c = mk "c" "x86_64-linux" [ "${{a}}" ] "true";
  d = mk "d" "x86_64-linux" [ "${{b}}" "${{c}}" ] "true";
in {{
  inherit d;
  fail = mk "fails" "x86_64-linux" [ "${{a}}" ] "echo the compiler said no >&2; exit 3";
  rv = mk "rv" "riscv64-linux" [ "${{a}}" ] "true";
}}
"#
    );
    let p = dir.join("dag.nix");
    fs::write(&p, nix).expect("write dag.nix");
    p.to_string_lossy().into_owned()
}

fn local_only(cmd: &mut std::process::Command, home: &Path) {
    // No machines file, no ~/.ssh: the pool is the local machine.
    cmd.env("HOME", home).env("RVBUILD_NIX_CONF_DIR", home).env("CI", "true");
    let _ = fs::write(home.join("nix.conf"), "");
}

#[test]
fn build_local_dag_makes_result_links_and_valid_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_dag(dir.path());
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd
        .args(["build", &file, "-A", "d", "--log-dir", "logs", "--gantt", "schedule.svg"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(out.starts_with("/nix/store/") && out.ends_with("-d"), "stdout is the output path: {out:?}");
    let link = fs::read_link(dir.path().join("result")).expect("result link");
    assert_eq!(link.to_string_lossy(), out);
    let content = fs::read_to_string(&out).expect("read output");
    assert!(content.contains(" d /nix/store/") && content.contains("-b ") && content.ends_with("-c\n"), "{content}");
    for name in ["a", "b", "c", "d"] {
        assert!(t.contains(&format!("building {name} (native) on local")), "{t}");
        let log = fs::read_to_string(dir.path().join("logs").join(format!("{name}.log"))).expect("log");
        assert!(log.contains(&format!("building {name}")), "log of {name}: {log}");
    }
    assert!(t.contains("built 4 derivation(s)"), "{t}");
    // The chart has each derivation twice: predicted and measured.
    let svg = fs::read_to_string(dir.path().join("schedule.svg")).expect("gantt written");
    for name in ["a", "b", "c", "d"] {
        assert_eq!(svg.matches(&format!("<title>{name} (")).count(), 2, "{name} predicted and measured: {svg}");
    }
    // The GC root is registered: Nix lists the link among its roots.
    let roots = std::process::Command::new("nix-store").args(["--gc", "--print-roots"]).output().expect("roots");
    assert!(String::from_utf8_lossy(&roots.stdout).contains(&*dir.path().join("result").to_string_lossy()));

    // Again: nothing to build.
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd.args(["build", &file, "-A", "d", "--no-out-link"]).current_dir(dir.path()).output().expect("run");
    assert!(
        o.status.success() && text(&o).contains("built 0 derivation(s) (0 remote, 1 already valid)"),
        "{}",
        text(&o)
    );
}

#[test]
fn build_failure_names_the_derivation_host_and_log_and_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_dag(dir.path());
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o =
        cmd.args(["build", &file, "-A", "fail", "--log-dir", "logs"]).current_dir(dir.path()).output().expect("run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("fails failed to build on local"), "{t}");
    assert!(t.contains("the compiler said no"), "the log's last lines are shown: {t}");
    assert!(t.contains("full log:") && t.contains("fails.log"), "{t}");
    assert!(!t.contains('\x1b'), "no terminal escapes in the message: {t:?}");
    assert!(!dir.path().join("result").exists());
}

#[test]
fn build_refuses_a_system_no_builder_runs_before_building_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_dag(dir.path());
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd.args(["build", &file, "-A", "rv", "--log-dir", "logs"]).current_dir(dir.path()).output().expect("run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("rv (system riscv64-linux) can be built by none of the builders"), "{t}");
    assert!(t.contains("local: does not run riscv64-linux (runs x86_64-linux)"), "each host considered is named: {t}");
    assert!(!t.contains("building a"), "nothing was built: {t}");

    // No builders at all.
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd.args(["build", &file, "-A", "d", "--local-jobs", "0"]).current_dir(dir.path()).output().expect("run");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("the pool is empty"), "{}", text(&o));
}

#[test]
fn build_bad_targets_are_config_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd.args(["build", "missing.nix"]).current_dir(dir.path()).output().expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("missing.nix: no such file"), "{}", text(&o));

    fs::write(dir.path().join("broken.nix"), "let in {").expect("write");
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd.args(["build", "broken.nix"]).current_dir(dir.path()).output().expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nix-instantiate broken.nix failed"), "{}", text(&o));

    // A .drv path that is not in the store.
    let mut cmd = rvbuild();
    local_only(&mut cmd, dir.path());
    let o = cmd
        .args(["build", "/nix/store/00000000000000000000000000000000-nope.drv"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("nope.drv"), "{}", text(&o));
}
