//! Helpers for the verify integration tests: real compilers and tools from PATH (a missing one
//! fails the test with the package to install), running the rvbuild binary, reading readelf.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Asserts that `tool` is on PATH; the panic names the Debian package that provides it.
pub fn require(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(found, "`{tool}` is not on PATH: install the Debian package {package} (scripts/setup-host.sh does)");
}

/// Runs a command and asserts that it succeeded.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub const RISCV_CC: &str = "riscv64-linux-gnu-gcc";
pub const AARCH64_CC: &str = "aarch64-linux-gnu-gcc";

/// Compiles C source `src` with `cc` and `flags` into `dir/name`.
pub fn compile(dir: &Path, cc: &str, flags: &[&str], src: &str, name: &str) -> PathBuf {
    let package = match cc {
        RISCV_CC => "gcc-riscv64-linux-gnu",
        AARCH64_CC => "gcc-aarch64-linux-gnu",
        _ => "gcc",
    };
    require(cc, package);
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    run(Command::new(cc).args(flags).arg(&c).arg("-o").arg(&out));
    std::fs::remove_file(&c).unwrap();
    out
}

pub const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n";
pub const FLOATY: &str = "double scale(double x) { return x * 2.5; }\n";

/// The outcome of one `rvbuild verify` run.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.stdout))
    }
}

pub fn rvbuild(args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_rvbuild")).args(args).output().expect("running rvbuild");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn verify(args: &[&str], paths: &[&Path]) -> Outcome {
    let mut all: Vec<String> = vec!["verify".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(paths.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    rvbuild(&refs)
}

/// The JSON entry of the file whose path ends with `suffix`.
pub fn entry<'a>(report: &'a serde_json::Value, suffix: &str) -> &'a serde_json::Value {
    report["files"]
        .as_array()
        .expect("files array")
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no entry for {suffix} in {report:#}"))
}

/// `readelf -h` fields of a file, keyed by their label (Class, Data, Machine, Flags, ...).
pub fn readelf_header(path: &Path) -> std::collections::BTreeMap<String, String> {
    require("readelf", "binutils");
    let out = Command::new("readelf").arg("-h").arg(path).output().expect("running readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
