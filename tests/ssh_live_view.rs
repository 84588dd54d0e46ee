//! The live view in a real terminal: `rvbuild build --keep-going` runs in a tmux pane of 80x24
//! over loopback SSH builders (tests/support/hosts.rs) and the local machine, and the pane is
//! read with `capture-pane` while the build runs and after it ended.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::hosts::{self, Fleet};

/// A private tmux server (its own socket in `dir`), killed on drop.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    /// A detached 80x24 session running `script` with sh.
    fn start(dir: &Path, script: &Path) -> Tmux {
        let t = Tmux { socket: dir.join("tmux.sock") };
        let o = t
            .cmd()
            .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", "live", "sh"])
            .arg(script)
            .env_remove("TMUX")
            .output()
            .expect("run tmux (scripts/setup-host.sh installs it)");
        assert!(o.status.success(), "tmux: {}", String::from_utf8_lossy(&o.stderr));
        t
    }

    /// The visible pane (`history`: also the lines scrolled above it).
    fn capture(&self, history: bool) -> String {
        let mut c = self.cmd();
        c.args(["capture-pane", "-p", "-t", "live"]);
        if history {
            c.args(["-S", "-300"]);
        }
        let o: Output = c.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// Four x86_64 and two riscv64 derivations of a few seconds, one that needs the first,
/// `bad`, which prints a few lines and fails after a second, and one that needs `bad`.
fn write_dag(dir: &Path) -> std::path::PathBuf {
    let nonce = hosts::nonce();
    let node = |name: &str, system: &str, secs: u32, deps: &str, fail: bool| {
        let end = if fail {
            format!("echo {name}: error: this derivation fails on purpose; exit 1")
        } else {
            "mkdir -p $out; echo ok > $out/done".to_string()
        };
        format!(
            "  {name} = derivation {{ name = \"{name}\"; system = \"{system}\"; builder = \"/bin/sh\"; \
             PATH = \"/usr/bin:/bin\"; nonce = \"{nonce}\"; deps = [ {deps} ]; \
             args = [ \"-c\" \"echo {name}: compiling; echo {name}: linking; sleep {secs}; {end}\" ]; }};\n"
        )
    };
    let mut s = String::from("rec {\n");
    for i in 0..4 {
        s += &node(&format!("x{i}"), "x86_64-linux", 7, "", false);
    }
    for i in 0..2 {
        s += &node(&format!("r{i}"), "riscv64-linux", 7, "", false);
    }
    s += &node("late", "x86_64-linux", 2, "x0", false);
    s += &node("bad", "x86_64-linux", 1, "", true);
    s += &node("needs_bad", "x86_64-linux", 1, "bad", false);
    s += "  all = [ x0 x1 x2 x3 r0 r1 late bad needs_bad ];\n}\n";
    let p = dir.join("dag.nix");
    fs::write(&p, s).expect("write dag.nix");
    p
}

/// The pane, polled until `ok` holds or `secs` pass; all snapshots seen are returned on failure.
fn wait_for(t: &Tmux, secs: u64, ok: impl Fn(&str) -> bool) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let pane = t.capture(false);
        if ok(&pane) {
            return Ok(pane);
        }
        if seen.last() != Some(&pane) {
            seen.push(pane);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    Err(seen)
}

fn lines(pane: &str) -> Vec<&str> {
    pane.lines().collect()
}

/// A running line of the view: `> NAME STRATEGY on HOST m:ss / ~m:ss`.
fn running_on(pane: &str, host: &str) -> bool {
    lines(pane).iter().any(|l| l.starts_with("> ") && l.contains(&format!(" on {host}")) && l.contains(" / ~"))
}

fn has_eta(pane: &str) -> bool {
    lines(pane).iter().any(|l| {
        l.starts_with('[')
            && l.split("ETA ")
                .nth(1)
                .is_some_and(|eta| eta.split(':').count() == 2 && eta.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[test]
fn ssh_live_view_in_tmux_shows_hosts_builders_eta_and_a_failure_with_its_tail() {
    let fleet: Fleet = hosts::start(hosts::STANDARD);
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nixconf");
    fs::create_dir_all(&conf).expect("mkdir");
    fs::write(conf.join("nix.conf"), "").expect("nix.conf");
    let file = write_dag(dir.path());
    let machines = fleet.machines_file();
    let script = dir.path().join("run.sh");
    // A terminal, not CI: the TTY view is chosen by stderr being a terminal outside CI.
    fs::write(
        &script,
        format!(
            "cd '{dir}'\nunset CI SSH_AUTH_SOCK\nexport HOME='{dir}' RVBUILD_NIX_CONF_DIR='{conf}'\n\
             '{bin}' build '{file}' -A all --keep-going --no-out-link --no-history --local-jobs 1 \
             --log-dir logs '--builders=@{machines}'\necho EXIT=$?\nsleep 600\n",
            dir = dir.path().display(),
            conf = conf.display(),
            bin = env!("CARGO_BIN_EXE_rvbuild"),
            file = file.display(),
            machines = machines.display(),
        ),
    )
    .expect("run.sh");
    let tmux = Tmux::start(dir.path(), &script);
    let emu = fleet.host("emu");
    let rv = fleet.host("rv");

    // Mid-build: running lines on both SSH builders, a line per builder with its busy slots,
    // and the scheduler's ETA in the last line.
    let mid = wait_for(&tmux, 90, |p| {
        running_on(p, &emu.addr)
            && running_on(p, &rv.addr)
            && lines(p).iter().any(|l| l.contains(&rv.addr) && l.contains("busy") && !l.starts_with('>'))
            && lines(p).iter().any(|l| l.contains("local") && l.contains("busy") && !l.starts_with('>'))
            && has_eta(p)
    })
    .unwrap_or_else(|seen| {
        panic!("no mid-build view with hosts, builders and an ETA; panes seen:\n{}", seen.join("\n-----\n"))
    });
    eprintln!("mid-build:\n{mid}");
    assert!(mid.lines().count() <= 24 && mid.lines().all(|l| l.chars().count() <= 80), "{mid}");

    // `bad` failed: it stays with its log's tail while the others still run.
    let failed = wait_for(&tmux, 60, |p| {
        p.contains("FAILED bad on")
            && p.contains("  | bad: error: this derivation fails on purpose")
            && lines(p).iter().any(|l| l.starts_with("> "))
    })
    .unwrap_or_else(|seen| panic!("no failure shown beside running builds; panes seen:\n{}", seen.join("\n-----\n")));
    eprintln!("after the failure:\n{failed}");
    assert!(!lines(&failed).iter().any(|l| l.starts_with("> bad ")), "a failed build is not running: {failed}");

    // After the run: exit code 3, nothing shown as running, the failure with its tail kept,
    // and the rest built (keep-going).
    wait_for(&tmux, 90, |p| p.contains("EXIT="))
        .unwrap_or_else(|seen| panic!("the build never ended:\n{}", seen.join("\n-----\n")));
    let after = tmux.capture(true);
    eprintln!("after the run:\n{after}");
    assert!(after.contains("EXIT=3"), "{after}");
    let end = after.rfind("EXIT=").unwrap_or(after.len());
    let summary_at = after.rfind("] 7 built, 1 failed").unwrap_or_else(|| panic!("no final counts: {after}"));
    let last_view = &after[..summary_at];
    let last_view = &last_view[last_view.rfind("FAILED bad on").unwrap_or_else(|| panic!("{after}"))..];
    assert!(last_view.contains("  | bad: error: this derivation fails on purpose"), "{after}");
    assert!(!last_view.lines().any(|l| l.starts_with("> ")), "nothing is shown as running once the run ended: {after}");
    assert!(after[summary_at..end].contains("failed after"), "{after}");
    assert!(after.contains("needs_bad is not built: it needs bad, which failed"), "{after}");
    // Each SSH builder's line counts the outputs fetched back from it.
    for h in [&emu.addr, &rv.addr] {
        assert!(last_view.lines().any(|l| l.contains(h.as_str()) && l.contains(" down ")), "{h}: {after}");
    }
    // The screen's last lines show no running build either.
    let screen = tmux.capture(false);
    assert!(!screen.lines().any(|l| l.starts_with("> ")), "{screen}");
    assert!(dir.path().join("logs/bad.log").is_file());
}
