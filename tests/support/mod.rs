//! Helpers shared by the integration tests: running the rvbuild binary, loopback SSH builder
//! hosts with their own Nix stores (`hosts`), board builds shared between tests (a kernel build
//! takes minutes, so each board is built once per test run, under a file lock, in the cargo
//! target directory); and for the serial and QEMU flash tests: pty pairs with a real peer process
//! on the far end, QEMU running U-Boot, a noisy pty proxy, and a JH7110 boot-ROM simulator.
#![allow(dead_code)]

pub mod hosts;
pub mod images;
pub mod noisy;
pub mod proxy;
pub mod pty;
pub mod qemu;
pub mod rom;
pub mod tiny_tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn rvbuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvbuild"));
    c.env_remove("RVBUILD_PROJECT").env_remove("RVBUILD_PORT");
    c
}

pub fn run(args: &[&str], cwd: &Path) -> Output {
    match rvbuild().args(args).current_dir(cwd).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run rvbuild {args:?}: {e}"),
    }
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of a shipped board file.
pub fn board_text(name: &str) -> String {
    let p = repo_root().join("boards").join(format!("{name}.yaml"));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Where shared builds live: one directory per board below the target directory.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rvbuild-shared")
}

/// Builds `board` once per test run (other tests wait on the lock and reuse it); returns the
/// output directory with manifest.json.
pub fn built(board: &str) -> PathBuf {
    let dir = shared_dir();
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let lock_path = dir.join(format!("{board}.lock"));
    let lock = fs::File::create(&lock_path).unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    lock.lock().unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    let out = dir.join(board);
    let o = run(&["board", board, "--profile", "ci", "--out", out.to_str().unwrap_or_default()], &dir);
    assert!(o.status.success(), "rvbuild board {board} failed:\n{}", text(&o));
    assert!(out.join("manifest.json").is_file());
    out
}

pub fn manifest(out: &Path) -> serde_json::Value {
    let p = out.join("manifest.json");
    let t = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
