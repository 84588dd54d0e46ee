//! `rvbuild lab` against the real tools, without a lab: every board that flashes over serial
//! gets a LAVA job that LAVA's own schema accepts and a device dictionary that renders through
//! lava-server's base-uboot.jinja2 into a valid device; the labgrid environment loads in
//! labgrid and binds the strategy; an SD-card-only board is refused with exit 2.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where scripts/setup-host.sh puts labgrid's venv and lava-server's device types.
fn lab_root() -> PathBuf {
    std::env::var_os("RVBUILD_LAB_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/rvbuild/lab"))
}

fn need(path: &Path) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup-host.sh` (it installs the lab tools)",
        path.display()
    );
    path.to_path_buf()
}

/// The shipped boards and their flash methods, from `rvbuild boards --json`.
fn boards(dir: &Path) -> Vec<(String, String)> {
    let o = support::run(&["boards", "--json"], dir);
    assert!(o.status.success(), "{}", support::text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("boards --json");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|b| {
            (b["name"].as_str().unwrap_or_default().to_string(), b["flash"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn lab_lava_jobs_and_device_dictionaries_pass_lavas_own_checks() {
    let dir = tempfile::tempdir().unwrap();
    let device_types = need(&lab_root().join("lava-device-types"));
    let mut jobs = Vec::new();
    for (board, method) in boards(dir.path()) {
        if method == "sd-card" {
            continue;
        }
        let job = dir.path().join(format!("{board}.yaml"));
        let o =
            support::run(&["lab", "lava", &board, "--port", "/dev/ttyUSB3", "-o", job.to_str().unwrap()], dir.path());
        assert!(o.status.success(), "{board}: {}", support::text(&o));
        assert!(dir.path().join(format!("{board}.device.jinja2")).is_file(), "{board}: no device dictionary");
        jobs.push((board, job));
    }
    assert!(jobs.len() >= 5, "only {} flashable boards: {jobs:?}", jobs.len());
    let script = support::repo_root().join("tests/lab/lava_check.py");
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&device_types)
        .args(jobs.iter().map(|(_, j)| j))
        .output()
        .expect("run /usr/bin/python3 (lava-common)");
    assert!(o.status.success(), "LAVA's checks failed:\n{}", support::text(&o));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), jobs.len(), "{}", support::text(&o));
    for ((board, _), seen) in jobs.iter().zip(&lines) {
        let flasher = seen["flasher"][0].as_str().unwrap_or_default();
        assert!(flasher.starts_with(&format!("rvbuild flash {board} --port /dev/ttyUSB3 ")), "{board}: {seen}");
        // Every image the job deploys is handed to rvbuild flash by LAVA's {NAME} substitution.
        for image in seen["images"].as_array().unwrap() {
            let key = image.as_str().unwrap();
            assert!(flasher.contains(&format!("--{key} {{{}}}", key.to_uppercase())), "{board}: {seen}");
        }
        assert_eq!(seen["connect"], format!("rvbuild monitor {board} --port /dev/ttyUSB3"), "{board}");
        assert_eq!(seen["prompt"], "=>", "{board}");
        assert_eq!(seen["end"], "RVBUILD-BOOT-OK", "{board}");
    }
    let jh = lines.iter().find(|l| l["job"].as_str().unwrap_or_default().ends_with("visionfive2.yaml")).unwrap();
    assert_eq!(jh["images"], serde_json::json!(["fit", "spl"]));
}

#[test]
fn lab_labgrid_environment_loads_in_labgrid_and_binds_the_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let python = need(&lab_root().join("labgrid-venv/bin/python"));
    let env = dir.path().join("env.yaml");
    let o = support::run(
        &["lab", "labgrid", "visionfive2", "--port", "/dev/ttyUSB3", "--out", "/srv/vf2", "-o", env.to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success(), "{}", support::text(&o));
    let strategy = dir.path().join("rvbuild_labgrid.py");
    assert_eq!(
        std::fs::read_to_string(&strategy).unwrap(),
        std::fs::read_to_string(support::repo_root().join("contrib/labgrid/rvbuild_labgrid.py")).unwrap()
    );
    let probe = r#"
import sys
from labgrid import Environment
t = Environment(sys.argv[1]).get_target("main")
s = t.get_driver("Strategy")
u = t.get_driver("UBootDriver", activate=False)
p = t.get_resource("RawSerialPort")
print(type(s).__name__, s.board, s.marker, repr(u.prompt), p.port, p.speed)
for option, name in sorted(s.flash_images.items()):
    print(option, t.env.config.get_image_path(name))
"#;
    let o = Command::new(&python).arg("-c").arg(probe).arg(&env).output().expect("run labgrid's python");
    let text = support::text(&o);
    assert!(o.status.success(), "labgrid could not load the environment:\n{text}");
    assert!(text.contains("RvbuildStrategy visionfive2 RVBUILD-BOOT-OK '=> ' /dev/ttyUSB3 115200"), "{text}");
    assert!(text.contains("fit /srv/vf2/u-boot.itb"), "{text}");
    assert!(text.contains("spl /srv/vf2/u-boot-spl.bin.normal.out"), "{text}");
}

#[test]
fn lab_exports_refuse_an_sd_card_board() {
    let dir = tempfile::tempdir().unwrap();
    for args in
        [["lab", "lava", "rpi4", "--port", "/dev/ttyUSB0"], ["lab", "labgrid", "rpi4", "--port", "/dev/ttyUSB0"]]
    {
        let o = support::run(&args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{}", support::text(&o));
        assert!(support::text(&o).contains("rpi4 boots from an SD card only"), "{}", support::text(&o));
    }
}

#[test]
fn lab_exports_of_a_project_board_run_rvbuild_in_that_project() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("lab-project");
    std::fs::create_dir_all(project.join("boards")).unwrap();
    let text = support::board_text("qemu-riscv64").replace("name: qemu-riscv64", "name: lab-board");
    std::fs::write(project.join("boards/lab-board.yaml"), text).unwrap();
    let project = project.canonicalize().unwrap();
    let o = support::run(&["lab", "lava", "lab-board", "--port", "/dev/ttyUSB3"], &project);
    let out = support::text(&o);
    assert!(o.status.success(), "{out}");
    let flag = format!("rvbuild --project {} ", project.display());
    assert!(out.contains(&format!("{flag}flash lab-board --port /dev/ttyUSB3 --image {{IMAGE}}")), "{out}");
    assert!(out.contains(&format!("{flag}monitor lab-board --port /dev/ttyUSB3")), "{out}");
    let o = support::run(&["lab", "labgrid", "lab-board", "--port", "/dev/ttyUSB3"], &project);
    let out = support::text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains(&format!("project: {}", project.display())), "{out}");
}
