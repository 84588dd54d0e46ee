//! Builds instantiated components with the local Nix: each component's derivation is realised by
//! its own `nix-store --realise` as soon as the components it depends on are done, up to `slots`
//! at once. Per-component logs, start/finish events, GC roots in the output directory, and on
//! failure the failed component, its log's last lines and the log's path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::report::{Event, Reporter};
use crate::{Error, ErrorKind, Result};

use super::instantiate::Instantiated;
use super::store_path_ok;

/// What one component produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub drv: String,
    /// Output store paths, in the order Nix printed them (out first).
    pub outputs: Vec<String>,
    pub seconds: f64,
    pub cached: bool,
    pub host: String,
    pub log: PathBuf,
}

/// Options of a local build.
pub struct Options<'a> {
    pub out_dir: &'a Path,
    pub slots: usize,
    /// Extra `--option NAME VALUE` pairs for nix-store.
    pub nix_options: Vec<(String, String)>,
    pub strategies: BTreeMap<String, String>,
}

/// True when every path is valid in the local store (one `nix-store` call for all of them).
fn all_valid(paths: &[String]) -> bool {
    !paths.is_empty()
        && Command::new("nix-store")
            .arg("--check-validity")
            .args(paths)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

fn outputs_of(drv: &str) -> Vec<String> {
    Command::new("nix-store")
        .args(["--query", "--outputs", drv])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| store_path_ok(l))
                .collect()
        })
        .unwrap_or_default()
}

struct Done {
    component: String,
    result: Result<Built>,
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn realise_one(
    component: &str,
    drv: &str,
    strategy: &str,
    opts_nix: &[(String, String)],
    log_path: &Path,
    roots: &Path,
    reporter: &dyn Reporter,
) -> Result<(Vec<String>, bool)> {
    let existing = outputs_of(drv);
    let cached = all_valid(&existing);
    if !cached {
        reporter.event(&Event::Started {
            component: component.to_string(),
            drv: drv.to_string(),
            host: "local".into(),
            strategy: strategy.to_string(),
        });
    }
    let mut cmd = Command::new("nix-store");
    cmd.arg("--realise").arg(drv).arg("--add-root").arg(roots.join(component)).arg("--indirect");
    for (k, v) in opts_nix {
        cmd.arg("--option").arg(k).arg(v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::with_help(
            ErrorKind::Prerequisite,
            format!("cannot run nix-store: {e}"),
            "install Nix (scripts/setup-host.sh)",
        )
    })?;
    let registered = crate::signals::register(&child);
    let mut log = fs::File::create(log_path).map_err(|e| Error::io(ErrorKind::Build, log_path.display(), e))?;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            reporter.event(&Event::Log { source: component.to_string(), line });
        }
    }
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    let status = child.wait().map_err(|e| Error::io(ErrorKind::Build, "nix-store", e))?;
    drop(registered);
    if !status.success() {
        return Err(Error::with_help(
            ErrorKind::Build,
            format!("component `{component}` failed to build ({drv}) on local:\n{}", tail(log_path, 25)),
            format!("full log: {}", log_path.display()),
        ));
    }
    // With --add-root, nix-store prints the root symlinks; resolve them to store paths.
    let mut outputs = Vec::new();
    for l in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let p = fs::read_link(l).map(|t| t.to_string_lossy().into_owned()).unwrap_or_else(|_| l.to_string());
        if store_path_ok(&p) {
            outputs.push(p);
        }
    }
    if outputs.is_empty() {
        outputs = existing;
    }
    Ok((outputs, cached))
}

/// Builds every component of `inst`, respecting dependencies, `slots` at a time.
pub fn build(inst: &Instantiated, opts: &Options, reporter: &dyn Reporter) -> Result<BTreeMap<String, Built>> {
    let logs = opts.out_dir.join("logs");
    let roots = opts.out_dir.join(".gcroots");
    for d in [&logs, &roots] {
        fs::create_dir_all(d).map_err(|e| Error::io(ErrorKind::Config, d.display(), e))?;
    }
    let mut pending: BTreeSet<String> = inst.drvs.keys().cloned().collect();
    let mut done: BTreeMap<String, Built> = BTreeMap::new();
    let mut running = 0usize;
    let mut failure: Option<Error> = None;
    let (tx, rx) = mpsc::channel::<Done>();
    reporter.event(&Event::Plan { derivations: inst.drvs.len(), slots: opts.slots.max(1) });
    for (c, d) in &inst.drvs {
        reporter.event(&Event::Queued { component: c.clone(), drv: d.clone() });
    }
    std::thread::scope(|scope| {
        loop {
            if failure.is_none() && crate::signals::interrupted() {
                failure = Some(Error::msg(ErrorKind::Interrupted, "interrupted"));
            }
            if failure.is_none() {
                let ready: Vec<String> = pending
                    .iter()
                    .filter(|c| inst.deps.get(*c).is_none_or(|ds| ds.iter().all(|d| done.contains_key(d))))
                    .cloned()
                    .collect();
                for c in ready {
                    if running >= opts.slots.max(1) {
                        break;
                    }
                    pending.remove(&c);
                    running += 1;
                    let drv = inst.drvs.get(&c).cloned().unwrap_or_default();
                    let tx = tx.clone();
                    let log_path = logs.join(format!("{c}.log"));
                    let roots = roots.clone();
                    let nix_opts = opts.nix_options.clone();
                    let strategy = opts.strategies.get(&c).cloned().unwrap_or_else(|| "cross".into());
                    scope.spawn(move || {
                        let start = Instant::now();
                        let result = realise_one(&c, &drv, &strategy, &nix_opts, &log_path, &roots, reporter).map(
                            |(outputs, cached)| Built {
                                drv: drv.clone(),
                                outputs,
                                seconds: start.elapsed().as_secs_f64(),
                                cached,
                                host: "local".into(),
                                log: log_path.clone(),
                            },
                        );
                        reporter.event(&Event::Finished {
                            component: c.clone(),
                            drv,
                            host: "local".into(),
                            seconds: start.elapsed().as_secs_f64(),
                            ok: result.is_ok(),
                            cached: result.as_ref().map(|b| b.cached).unwrap_or(false),
                        });
                        let _ = tx.send(Done { component: c, result });
                    });
                }
            }
            if running == 0 {
                break;
            }
            let Ok(msg) = rx.recv() else { break };
            running -= 1;
            match msg.result {
                Ok(b) => {
                    for p in &b.outputs {
                        reporter.event(&Event::Output { component: msg.component.clone(), path: p.clone() });
                    }
                    done.insert(msg.component, b);
                }
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if !pending.is_empty() {
        return Err(Error::msg(
            ErrorKind::Internal,
            format!(
                "components never became ready (dependency cycle?): {}",
                pending.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(done)
}
