//! `rvbuild builders import`: Nix's machines (a machines file and nix.conf `builders`) written
//! out as a build profile whose `builders.machines` lists every entry, includes expanded.

use std::path::Path;

use crate::Result;
use crate::builders::inventory::read_nix_conf;
use crate::builders::machines::{self, Machine, Scheme};
use crate::profile::error::ProfileStageError;
use crate::profile::validate::is_safe_name;

/// Reads the machines file (if it exists) and nix.conf `builders` (if set), in that order,
/// dropping repeated URIs and the local machine.
pub fn read_machines(machines_file: &Path, nix_conf: &Path) -> Result<Vec<Machine>> {
    let mut all = Vec::new();
    if machines_file.is_file() {
        all.extend(machines::parse_file(machines_file)?);
    }
    let conf = read_nix_conf(nix_conf)?;
    if let Some(spec) = conf.builders {
        let default_ref = format!("@{}", machines_file.display());
        // nix.conf usually points at the same machines file; don't read it twice.
        if spec.trim() != default_ref {
            all.extend(machines::parse_spec(&spec, &format!("{} `builders`", nix_conf.display()))?);
        }
    }
    let mut out: Vec<Machine> = Vec::new();
    for m in all {
        if m.scheme != Scheme::Local && !out.iter().any(|o| o.uri == m.uri) {
            out.push(m);
        }
    }
    Ok(out)
}

/// The build profile YAML for `machines` (validated by the caller with `check_profile_text`).
pub fn profile_yaml(name: &str, machines: &[Machine], from: &str) -> Result<String> {
    if !is_safe_name(name) {
        return Err(ProfileStageError::InvalidProfileName { name: name.to_string() }.into());
    }
    let mut y = format!("# Imported by `rvbuild builders import` from {from}.\n");
    y.push_str(&format!("name: {name}\n"));
    y.push_str(&format!("description: {}\n", json(&format!("builders imported from {from}"))));
    y.push_str("provider: host\nbuilders:\n  use-nix-machines: false\n");
    if machines.is_empty() {
        y.push_str("  machines: []\n");
    } else {
        y.push_str("  machines:\n");
        for m in machines {
            y.push_str(&format!("    - {}\n", json(&m.to_line())));
        }
    }
    y.push_str("  local-jobs: auto\nstrategy:\n  policy: auto\n");
    Ok(y)
}

/// A double-quoted YAML scalar (JSON strings are valid YAML).
fn json(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
