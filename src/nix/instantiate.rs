//! Running `nix-instantiate` on a generated expression: one `.drv` per component, and the
//! component-level dependency graph, from the derivation DAG parsed out of the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::Result;

use super::error::NixError;

use super::dag;
use super::store_path_ok;

/// Instantiated components: name -> .drv path, and name -> names it depends on.
#[derive(Debug, Clone, Default)]
pub struct Instantiated {
    pub drvs: BTreeMap<String, String>,
    pub deps: BTreeMap<String, Vec<String>>,
    /// The closure of every component's .drv, parsed once here and reused by the build.
    pub dag: std::sync::Arc<dag::Dag>,
}

fn nix_missing(tool: &'static str, source: std::io::Error) -> NixError {
    NixError::ToolMissing { tool, source }
}

/// Checks that an expression parses (`nix-instantiate --parse`), for providers that cannot be
/// evaluated here.
pub fn parse_check(file: &Path) -> Result<()> {
    let out = Command::new("nix-instantiate")
        .arg("--parse")
        .arg(file)
        .output()
        .map_err(|e| nix_missing("nix-instantiate", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NixError::ExpressionDoesNotParse {
            file: file.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into())
    }
}

/// Instantiates the listed attributes of `file` and reads each .drv's references to find which
/// components depend on which.
pub fn instantiate(file: &Path, components: &[String]) -> Result<Instantiated> {
    let mut cmd = Command::new("nix-instantiate");
    cmd.arg(file);
    for c in components {
        cmd.arg("-A").arg(c);
    }
    let out = cmd.output().map_err(|e| nix_missing("nix-instantiate", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let msg: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("warning:")).collect();
        return Err(NixError::InstantiateFailed { file: file.to_path_buf(), message: msg.join("\n") }.into());
    }
    let paths: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if paths.len() != components.len() {
        return Err(NixError::PathCount { printed: paths.len(), attributes: components.len() }.into());
    }
    let mut inst = Instantiated::default();
    for (c, p) in components.iter().zip(paths) {
        if !store_path_ok(&p) || !p.ends_with(".drv") {
            return Err(NixError::NotADrvPath { printed: p }.into());
        }
        inst.drvs.insert(c.clone(), p);
    }
    let roots: Vec<String> = inst.drvs.values().cloned().collect();
    let graph = dag::load_closure(&roots)?;
    inst.deps = component_deps(&inst.drvs, &graph)?;
    inst.dag = std::sync::Arc::new(graph);
    Ok(inst)
}

/// The .drv paths to build: given directly, or from `nix-instantiate FILE [-A ATTR]...`.
pub fn targets(targets: &[String], attrs: &[String]) -> Result<Vec<String>> {
    let mut drvs = Vec::new();
    for t in targets {
        if t.ends_with(".drv") && super::store_path::StorePath::parse_drv(t).is_ok() {
            drvs.push(t.clone());
            continue;
        }
        if !std::path::Path::new(t).exists() {
            return Err(NixError::NoSuchTarget { target: t.clone() }.into());
        }
        let mut cmd = Command::new("nix-instantiate");
        cmd.arg(t);
        for a in attrs {
            cmd.arg("-A").arg(a);
        }
        let out = cmd
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| nix_missing("nix-instantiate", e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(NixError::TargetFailed { target: t.clone(), message: stderr.trim().to_string() }.into());
        }
        for line in String::from_utf8_lossy(&out.stdout).lines().map(str::trim).filter(|l| !l.is_empty()) {
            // `drv!out` selects an output; the whole derivation is built.
            let drv = line.split('!').next().unwrap_or(line);
            super::store_path::StorePath::parse_drv(drv)
                .map_err(|source| NixError::NotADerivation { line: line.to_string(), source })?;
            drvs.push(drv.to_string());
        }
    }
    if drvs.is_empty() {
        return Err(NixError::NothingToBuild.into());
    }
    Ok(drvs)
}

/// Which components each component needs: walks the parsed derivation graph from each
/// component's `.drv`, through derivations that are not components (nixpkgs' toolchains), and
/// stops at the first component on every path. Cycles and missing `.drv` files are errors.
pub fn component_deps(drvs: &BTreeMap<String, String>, graph: &dag::Dag) -> Result<BTreeMap<String, Vec<String>>> {
    let comp_of: BTreeMap<usize, &String> =
        drvs.iter().filter_map(|(c, d)| graph.index_of(d).map(|i| (i, c))).collect();
    let mut deps = BTreeMap::new();
    for (c, d) in drvs {
        let Some(start) = graph.index_of(d) else {
            return Err(NixError::MissingFromGraph { drv: d.clone() }.into());
        };
        let mut found = std::collections::BTreeSet::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<usize> = graph.node(start).inputs.clone();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            match comp_of.get(&i) {
                Some(name) => {
                    found.insert((*name).clone());
                }
                None => stack.extend(graph.node(i).inputs.iter().copied()),
            }
        }
        deps.insert(c.clone(), found.into_iter().collect());
    }
    Ok(deps)
}
