//! Reporting and exit codes of the real binary: `--json` lines checked against the schema
//! documented in docs/events.md, `--junit` reports, plain CI lines, a failed driver build
//! (exit 3) and Ctrl-C during a boot (exit 130, QEMU terminated).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{board_text, built, repo_root, rvbuild, text};

/// Event kind -> (field -> type), read from the tables of docs/events.md.
fn documented_schema() -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = fs::read_to_string(repo_root().join("docs/events.md")).expect("docs/events.md");
    let mut schema: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(name) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
            current = Some(name.to_string());
            schema.insert(name.to_string(), BTreeMap::new());
        } else if line.starts_with("## ") {
            current = None;
        } else if let (Some(kind), Some(row)) = (&current, line.strip_prefix("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let field = cells[0].trim_end_matches('`');
            schema.get_mut(kind).unwrap().insert(field.to_string(), cells[1].to_string());
        }
    }
    schema
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_u64(),
        "number" => v.is_number(),
        "number or null" => v.is_number() || v.is_null(),
        "boolean" => v.is_boolean(),
        "string or null" => v.is_string() || v.is_null(),
        other => panic!("docs/events.md uses an unknown type `{other}`"),
    }
}

/// Checks one JSON line against the documented schema; returns its kind.
fn check_line(schema: &BTreeMap<String, BTreeMap<String, String>>, line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
    let kind = obj.get("event").and_then(Value::as_str).unwrap_or_else(|| panic!("no `event` tag: {line}"));
    let fields = schema.get(kind).unwrap_or_else(|| panic!("event `{kind}` is not documented: {line}"));
    for (field, ty) in fields {
        let value = obj.get(field).unwrap_or_else(|| panic!("`{kind}` lacks documented field `{field}`: {line}"));
        assert!(type_ok(ty, value), "`{kind}`.`{field}` should be {ty}: {line}");
    }
    for key in obj.keys().filter(|k| *k != "event") {
        assert!(fields.contains_key(key), "`{kind}` has undocumented field `{key}`: {line}");
    }
    kind.to_string()
}

#[test]
fn documented_schema_covers_every_event_kind() {
    let schema = documented_schema();
    for kind in [
        "stage",
        "plan",
        "builder",
        "queued",
        "started",
        "copy",
        "forecast",
        "finished",
        "log",
        "output",
        "verify",
        "transfer-started",
        "transfer-progress",
        "transfer-finished",
        "note",
        "flash",
        "boot",
        "summary",
    ] {
        assert!(schema.get(kind).is_some_and(|f| !f.is_empty()), "docs/events.md lacks `{kind}`");
    }
    assert_eq!(schema["summary"]["error"], "string or null");
}

#[test]
fn nixbuild_json_events_match_the_documented_schema() {
    built("qemu-riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = rvbuild()
        .args(["--json", "board", "qemu-riscv64", "--profile", "ci", "--out", out.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let schema = documented_schema();
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let kinds: Vec<String> = lines.iter().map(|l| check_line(&schema, l)).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("queued"), 7, "{stdout}");
    assert_eq!(count("finished"), 7, "{stdout}");
    assert_eq!(count("plan"), 1);
    assert_eq!(count("verify"), 1);
    assert_eq!(kinds.last().map(String::as_str), Some("summary"), "the summary comes last");
    let summary: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(summary["schema"], 1);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["derivations"], 7);
    assert_eq!(summary["built"].as_u64().unwrap() + summary["cached"].as_u64().unwrap(), 7);
    // The lines for people went to stderr.
    assert!(String::from_utf8_lossy(&o.stderr).contains("qemu-riscv64: built 7 components"), "{}", text(&o));
}

#[test]
fn nixbuild_plain_lines_in_ci_have_timestamps_and_no_escape_codes() {
    built("qemu-riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = rvbuild()
        .args(["board", "qemu-riscv64", "--profile", "ci", "--out", out.to_str().unwrap()])
        .env("CI", "true")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(!stderr.contains('\u{1b}'), "escape codes in CI output: {stderr:?}");
    let stamped: Vec<&str> =
        stderr.lines().filter(|l| l.len() > 11 && l.as_bytes()[0] == b'[' && &l[9..11] == "] ").collect();
    assert!(stamped.iter().any(|l| l.contains("kernel: already built")), "{stderr}");
    assert!(stamped.iter().any(|l| l.contains("verify qemu-riscv64: OK")), "{stderr}");
    assert!(stamped.last().is_some_and(|l| l.contains("board: ok in")), "summary line last: {stderr}");
}

/// The `<testcase …>` elements of a JUnit file as (classname, name, failed, skipped).
fn junit_cases(xml: &str) -> Vec<(String, String, bool, bool)> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        let start = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
        tag[start..].split('"').next().unwrap().to_string()
    };
    let mut cases = Vec::new();
    for part in xml.split("<testcase ").skip(1) {
        let head = format!(" {}", part.split('>').next().unwrap());
        let head = head.as_str();
        let body = if head.ends_with('/') { "" } else { part.split("</testcase>").next().unwrap() };
        cases.push((attr(head, "classname"), attr(head, "name"), body.contains("<failure"), body.contains("<skipped")));
    }
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 1, "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    cases
}

#[test]
fn qemu_junit_report_has_a_case_per_derivation_verify_and_boot() {
    built("qemu-riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let junit = tmp.path().join("rvbuild.xml");
    let o = rvbuild()
        .args(["--junit", junit.to_str().unwrap(), "qemu", "qemu-riscv64", "--profile", "ci"])
        .args(["--out", out.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let xml = fs::read_to_string(&junit).unwrap();
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), 9, "7 derivations + verify + boot: {xml}");
    assert_eq!(cases.iter().filter(|c| c.0 == "build").count(), 7, "{xml}");
    assert!(cases.contains(&("verify".into(), "qemu-riscv64".into(), false, false)), "{xml}");
    assert!(cases.contains(&("boot".into(), "qemu-riscv64".into(), false, false)), "{xml}");
    assert!(cases.iter().all(|c| !c.2 && !c.3), "{xml}");
    let suite = xml.split("<testsuite ").nth(1).and_then(|t| t.split('>').next()).unwrap();
    for a in ["name=\"rvbuild qemu\"", " tests=\"9\"", " failures=\"0\""] {
        assert!(suite.contains(a), "testsuite lacks {a}: {xml}");
    }
}

/// A project with board `broken`: qemu-riscv64 with an out-of-tree driver that does not compile.
fn broken_driver_project(dir: &Path) {
    fs::create_dir_all(dir.join("boards")).unwrap();
    fs::create_dir_all(dir.join("drivers/broken")).unwrap();
    let board = board_text("qemu-riscv64")
        .replace("name: qemu-riscv64", "name: broken")
        .replace("name: rvhello\n      source: drivers/rvhello", "name: broken\n      source: drivers/broken");
    assert!(board.contains("source: drivers/broken"));
    fs::write(dir.join("boards/broken.yaml"), board).unwrap();
    fs::write(dir.join("drivers/broken/Kbuild"), "obj-m := broken.o\n").unwrap();
    fs::write(
        dir.join("drivers/broken/broken.c"),
        "#include <linux/module.h>\nstatic int __init broken_init(void) { return rvbuild_no_such_symbol; }\nmodule_init(broken_init);\nMODULE_LICENSE(\"GPL\");\n",
    )
    .unwrap();
}

#[test]
fn nixbuild_failed_driver_build_exits_3_naming_the_component_with_log_tail_and_path() {
    built("qemu-riscv64"); // the kernel this board shares is in the store: only the driver builds
    let tmp = tempfile::tempdir().unwrap();
    broken_driver_project(tmp.path());
    let junit = tmp.path().join("report.xml");
    let o = rvbuild()
        .args(["--junit", junit.to_str().unwrap(), "--json", "board", "broken", "--profile", "ci", "--out", "out"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("component `module-broken` failed to build"), "{stderr}");
    assert!(stderr.contains("rvbuild_no_such_symbol"), "the log's last lines are shown: {stderr}");
    let log = tmp.path().join("out/logs/module-broken.log").canonicalize().unwrap();
    assert!(stderr.contains(&format!("full log: {}", log.display())), "{stderr}");
    assert!(fs::read_to_string(&log).unwrap().contains("rvbuild_no_such_symbol"));

    let stdout = String::from_utf8(o.stdout).unwrap();
    let schema = documented_schema();
    for l in stdout.lines() {
        check_line(&schema, l);
    }
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((summary["ok"].as_bool(), summary["exit_code"].as_u64()), (Some(false), Some(3)), "{summary}");
    assert_eq!(summary["failed"], 1);
    assert!(summary["error"].as_str().unwrap().contains("module-broken"), "{summary}");

    let cases = junit_cases(&fs::read_to_string(&junit).unwrap());
    let failed: Vec<_> = cases.iter().filter(|c| c.2).collect();
    assert_eq!(failed.len(), 1, "{cases:?}");
    assert_eq!((failed[0].0.as_str(), failed[0].1.as_str()), ("build", "module-broken"));
    assert!(cases.iter().any(|c| c.1 == "image" && c.3), "image never started: skipped: {cases:?}");
}

fn pids_with_cmdline(name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(cmd) = fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(name)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn qemu_sigint_during_a_boot_that_never_ends_terminates_qemu_and_exits_130() {
    let built_dir = built("qemu-riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let unique = format!("rvbuild-sigint-test-{}", std::process::id());
    fs::create_dir_all(tmp.path().join("boards")).unwrap();
    // `-S`: QEMU starts with its CPU stopped, so the guest never prints anything.
    let board = board_text("qemu-riscv64").replace("name: qemu-riscv64", "name: hang")
        + &format!("  extra-args: [\"-S\", \"-name\", \"{unique}\"]\n");
    fs::write(tmp.path().join("boards/hang.yaml"), board).unwrap();
    fs::create_dir_all(tmp.path().join("out")).unwrap();
    fs::copy(built_dir.join("manifest.json"), tmp.path().join("out/manifest.json")).unwrap();

    let mut child = rvbuild()
        .args(["--json", "qemu", "hang", "--no-build", "--out", "out"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while pids_with_cmdline(&unique).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "QEMU never started");
        assert!(child.try_wait().unwrap().is_none(), "rvbuild ended before QEMU started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(60), "rvbuild did not stop promptly");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"), "{}", text(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 130, "{stdout}");
    let gone = Instant::now();
    while !pids_with_cmdline(&unique).is_empty() {
        assert!(gone.elapsed() < Duration::from_secs(5), "QEMU still runs after rvbuild exited");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nixbuild_sigint_during_a_build_terminates_nix_store_and_exits_130() {
    built("qemu-riscv64"); // the shared kernel is in the store: the driver build starts at once
    let tmp = tempfile::tempdir().unwrap();
    broken_driver_project(tmp.path());
    let unique = format!("rvbuild-slow-build-{}", std::process::id());
    // Kbuild runs this while the module build starts: a build that would take five minutes.
    fs::write(
        tmp.path().join("drivers/broken/Kbuild"),
        format!("obj-m := broken.o\n$(shell sleep 300; echo {unique})\n"),
    )
    .unwrap();
    let mut child = rvbuild()
        .args(["--json", "board", "broken", "--profile", "ci", "--out", "out"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while pids_with_cmdline(&unique).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the driver build never started");
        assert!(child.try_wait().unwrap().is_none(), "rvbuild ended before the build started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(90), "rvbuild did not stop promptly");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((summary["ok"].as_bool(), summary["exit_code"].as_u64()), (Some(false), Some(130)), "{stdout}");
    let gone = Instant::now();
    while !pids_with_cmdline(&unique).is_empty() {
        assert!(gone.elapsed() < Duration::from_secs(10), "the build still runs after rvbuild exited");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn qemu_flash_json_has_transfer_and_step_events_and_a_junit_case() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let image = tmp.path().join("image.bin");
    fs::write(&image, support::images::kernel_image("aarch64", 24 * 1024 + 5, 3)).unwrap();
    let junit = tmp.path().join("flash.xml");
    let mut vm = support::qemu::Qemu::start_arch("aarch64", Some(&disk));
    let o = rvbuild()
        .args(["--json", "--junit", junit.to_str().unwrap(), "flash", "qemu-aarch64", "--port", &vm.pty])
        .args(["--timeout", "60", "--image", image.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    vm.stop();
    assert!(o.status.success(), "{}", text(&o));
    let schema = documented_schema();
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    let kinds: Vec<String> = stdout.lines().map(|l| check_line(&schema, l)).collect();
    for kind in ["transfer-started", "transfer-finished", "note", "flash", "summary"] {
        assert!(kinds.iter().any(|k| k == kind), "no `{kind}` event: {stdout}");
    }
    let flash: Value =
        serde_json::from_str(stdout.lines().find(|l| l.contains("\"event\":\"flash\"")).unwrap()).unwrap();
    assert_eq!((flash["ok"].as_bool(), flash["bytes"].as_u64()), (Some(true), Some(24 * 1024 + 5)), "{flash}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("written and verified"), "{}", text(&o));
    let cases = junit_cases(&fs::read_to_string(&junit).unwrap());
    // The image is verified before it is sent (a case of its own), then flashed.
    assert_eq!(
        cases,
        vec![
            ("verify".to_string(), "qemu-aarch64".to_string(), false, false),
            ("flash".to_string(), "qemu-aarch64 disk".to_string(), false, false)
        ]
    );
}

#[test]
fn nixbuild_on_a_terminal_draws_progress_bars_instead_of_timestamped_lines() {
    use serialport::SerialPort;
    use std::io::Read;
    built("qemu-riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let (mut master, slave) = support::pty::pair();
    master.set_timeout(Duration::from_millis(100)).unwrap();
    let tty = fs::OpenOptions::new().write(true).open(&slave).unwrap();
    let mut child = rvbuild()
        .args(["board", "qemu-riscv64", "--profile", "ci", "--out", "out"])
        .env_remove("CI")
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(tty)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let exited = child.try_wait().unwrap();
        match master.read(&mut buf) {
            Ok(n) if n > 0 => screen.extend_from_slice(&buf[..n]),
            _ if exited.is_some() => break,
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(60), "rvbuild did not finish");
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.contains("derivations"), "no overall bar: {screen:?}");
    assert!(screen.contains("\u{1b}["), "no terminal control sequences: {screen:?}");
    assert!(screen.contains("kernel: already built"), "events print above the bars: {screen:?}");
    assert!(!screen.contains("] kernel: already built"), "timestamped plain lines on a terminal: {screen:?}");
}
