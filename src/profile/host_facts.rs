//! Facts about the build host that go into a board's build spec (host provider): the identity
//! of the cross compiler and of the Debian packages the build uses, the firmware roots, and the
//! device trees in the kernel source tarball. Unlike the rest of `profile`, this runs programs
//! on the build host: `gcc --version`, `dpkg-query` and `tar -tf` (the tarball's listing is
//! cached below the cache directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;
use crate::profile::error::ProfileStageError;
use crate::profile::{Arch, hex_digest};

/// Directories searched as prefixes of firmware paths: packages of other architectures or
/// suites are unpacked there by scripts/setup-host.sh (`RVBUILD_FIRMWARE_ROOTS`, colon-separated).
pub fn firmware_roots() -> Vec<PathBuf> {
    match std::env::var_os("RVBUILD_FIRMWARE_ROOTS") {
        Some(v) => std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect(),
        None => vec![PathBuf::from("/var/lib/rvbuild/firmware-root")],
    }
}

fn run_text(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn package_versions(pkgs: &[&str]) -> String {
    let mut pkgs = pkgs.to_vec();
    pkgs.sort();
    pkgs.dedup();
    let mut id = String::new();
    for p in pkgs {
        if let Some(v) = run_text("dpkg-query", &["-W", "-f", "${Version}", p]) {
            id.push_str(&format!("{p} {v}; "));
        }
    }
    id
}

/// The identity of the host packages firmware and image steps use.
pub fn host_tools_id(firmware_packages: &[String]) -> String {
    let mut pkgs: Vec<&str> = firmware_packages.iter().map(String::as_str).collect();
    pkgs.extend(["e2fsprogs", "fdisk", "dosfstools", "mtools"]);
    let mut id = package_versions(&pkgs);
    // Packages unpacked by the setup script are not in dpkg's database: they list themselves.
    for root in firmware_roots() {
        if let Ok(t) = std::fs::read_to_string(root.join(".rvbuild-packages")) {
            id.push_str(&t.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    id
}

/// The identity of the build host's compiler for this arch, checked to exist (host provider).
pub fn host_toolchain_id(arch: Arch) -> Result<String> {
    let gcc = format!("{}gcc", arch.cross_prefix());
    let Some(version) = run_text(&gcc, &["--version"]) else {
        let package = format!("gcc-{}", arch.cross_prefix().trim_end_matches('-'));
        return Err(ProfileStageError::NoCrossCompiler { gcc, package }.into());
    };
    let first = version.lines().next().unwrap_or_default();
    Ok(format!("{first}; {}", package_versions(&["linux-source-6.12"])))
}

/// The `.dts` files of a kernel source tarball, listed once and cached by path, size and mtime
/// (listing a compressed kernel tarball takes seconds; a wrong DT name must fail before the
/// kernel build, not after it).
pub fn dts_index(tarball: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(tarball)
        .map_err(|source| ProfileStageError::Tarball { tarball: tarball.to_path_buf(), source })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let key = hex_digest(&[&tarball.to_string_lossy(), &meta.len().to_string(), &mtime.to_string()]);
    let cache = crate::vocab::cache_dir().join("dts-index");
    let file = cache.join(&key[..16]);
    if let Ok(text) = std::fs::read_to_string(&file) {
        return Ok(text.lines().map(str::to_string).collect());
    }
    let out = Command::new("tar")
        .arg("-tf")
        .arg(tarball)
        .output()
        .map_err(|source| ProfileStageError::TarCannotRun { source })?;
    if !out.status.success() {
        return Err(ProfileStageError::TarFailed {
            tarball: tarball.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    let list: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.ends_with(".dts")).map(str::to_string).collect();
    if std::fs::create_dir_all(&cache).is_ok() {
        let tmp = cache.join(format!("{}.tmp{}", &key[..16], std::process::id()));
        if std::fs::write(&tmp, list.join("\n")).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    Ok(list)
}
