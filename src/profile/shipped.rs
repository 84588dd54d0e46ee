//! The boards, profiles, Nix library and driver sources shipped inside the rvbuild binary, and
//! their materialisation into a directory when a build needs them as files.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::ProfileStageError;
use crate::Result;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/shipped_files.rs"));
}

/// Every shipped file: (path relative to the repository root, contents).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    generated::FILES
}

/// The contents of one shipped file.
pub fn get(rel: &str) -> Option<&'static [u8]> {
    files().iter().find(|(p, _)| *p == rel).map(|(_, c)| *c)
}

/// Names (file stems) of shipped YAML files in `dir` (`boards` or `profiles`).
pub fn names_in(dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    let mut v: Vec<String> = files()
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&prefix))
        .filter(|rest| !rest.contains('/'))
        .filter_map(|rest| rest.strip_suffix(".yaml"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A hash of all shipped content: a directory named after it never holds stale files.
fn content_id() -> String {
    let mut h = Sha256::new();
    for (p, c) in files() {
        h.update(p.as_bytes());
        h.update([0]);
        h.update((c.len() as u64).to_le_bytes());
        h.update(c);
    }
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Writes the shipped tree below `cache_root/share-<content id>` (once) and returns that path.
pub fn materialize(cache_root: &Path) -> Result<PathBuf> {
    let dir = cache_root.join(format!("share-{}", content_id()));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let tmp = cache_root.join(format!("share-tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    for (rel, contents) in files() {
        let path = tmp.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|source| ProfileStageError::Materialize { path: parent.to_path_buf(), source })?;
        }
        fs::write(&path, contents).map_err(|source| ProfileStageError::Materialize { path: path.clone(), source })?;
    }
    fs::write(tmp.join(".complete"), b"")
        .map_err(|source| ProfileStageError::Materialize { path: tmp.clone(), source })?;
    match fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another rvbuild process won the race: its copy is identical.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(source) => Err(ProfileStageError::Materialize { path: dir, source }.into()),
    }
}
