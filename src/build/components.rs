//! Board builds on the engine: the instantiated components' derivation graph built over the
//! pool, then each component's outputs rooted in the output directory (`.gcroots/`) and
//! reported the way the manifest records them (host, strategy, seconds, cached, log).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::Result;
use crate::nix::instantiate::Instantiated;
use crate::transport::{LocalTransport, Transport};
use crate::vocab::{Event, Reporter, Strategy};

use super::error::BuildError;
use super::{Member, Options};

/// What one component produced: unlike the engine's [`super::Built`] (one derivation built
/// in this run), a component may have been in the store already (`cached`, no strategy).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentBuilt {
    pub drv: String,
    /// Output store paths, `out` first.
    pub outputs: Vec<String>,
    pub seconds: f64,
    pub cached: bool,
    pub host: String,
    /// Where it ran as the engine labelled it (`cross`, `native`, `emulated`); None if cached.
    pub strategy: Option<Strategy>,
    pub log: PathBuf,
    /// How its compile was split over the pool, when it was.
    pub split: Option<super::split::SplitReport>,
}

/// Registers `path` as an indirect GC root at `link`.
pub fn add_root(path: &str, link: &Path) -> Result<()> {
    let status = Command::new("nix-store")
        .args(["--realise", path, "--add-root"])
        .arg(link)
        .arg("--indirect")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| BuildError::AddRootCannotRun { source })?;
    if !status.success() {
        return Err(BuildError::AddRootFailed { link: link.to_path_buf(), path: path.to_string() }.into());
    }
    Ok(())
}

/// Builds every component of `inst` over `members`. `strategies` labels components (cross,
/// native, emulated) in events and the manifest. The engine runs on `rt` (the process's
/// runtime), blocked on from this synchronous caller.
#[allow(clippy::too_many_arguments)]
pub fn build(
    rt: &tokio::runtime::Handle,
    inst: &Instantiated,
    members: Vec<Member>,
    out_dir: &Path,
    strategies: &BTreeMap<String, Strategy>,
    predict: bool,
    history: &crate::builders::history::History,
    split: super::split::SplitConfig,
    reporter: &dyn Reporter,
) -> Result<ComponentsBuilt> {
    let dag = inst.dag.clone();
    let labels: BTreeMap<String, String> = inst.drvs.iter().map(|(c, d)| (d.clone(), c.clone())).collect();
    let by_drv: BTreeMap<String, Strategy> =
        inst.drvs.iter().filter_map(|(c, d)| strategies.get(c).map(|&s| (d.clone(), s))).collect();
    let log_dir = out_dir.join("logs");
    let opts = Options { log_dir: log_dir.clone(), labels, strategies: by_drv, predict, split, ..Options::default() };
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let outcome = rt.block_on(super::build_roots(dag.clone(), members, local, history, opts, reporter))?;
    let roots_dir = out_dir.join(".gcroots");
    std::fs::create_dir_all(&roots_dir).map_err(|source| BuildError::GcRootsDir { path: roots_dir.clone(), source })?;
    let mut result = BTreeMap::new();
    for (component, drv) in &inst.drvs {
        let Some(i) = dag.index_of(drv) else { continue };
        let node = dag.node(i);
        // `out` first, as nix-store printed them before.
        let mut outputs: Vec<String> = node.drv.outputs.get("out").map(|o| o.path.clone()).into_iter().collect();
        outputs.extend(node.drv.outputs.iter().filter(|(n, _)| *n != "out").map(|(_, o)| o.path.clone()));
        for (k, o) in outputs.iter().enumerate() {
            let link = if k == 0 { roots_dir.join(component) } else { roots_dir.join(format!("{component}-{k}")) };
            add_root(o, &link)?;
        }
        let built = match outcome.built.get(drv) {
            Some(b) => ComponentBuilt {
                drv: drv.clone(),
                outputs,
                seconds: b.seconds,
                cached: false,
                host: b.host.clone(),
                strategy: Some(b.strategy),
                log: b.log.clone(),
                split: b.split.clone(),
            },
            None => {
                // The manifest names a log for every component; a cached one says so.
                let log = log_dir.join(format!("{component}.log"));
                let text = format!("{component}: already valid in the store, not built\n{}\n", outputs.join("\n"));
                std::fs::create_dir_all(&log_dir)
                    .and_then(|()| std::fs::write(&log, text))
                    .map_err(|source| BuildError::Log { path: log.clone(), source })?;
                reporter.event(&Event::Queued { component: component.clone(), drv: drv.clone() });
                reporter.event(&Event::Finished {
                    component: component.clone(),
                    drv: drv.clone(),
                    host: "local".into(),
                    seconds: 0.0,
                    ok: true,
                    cached: true,
                });
                for p in &outputs {
                    reporter.event(&Event::Output { component: component.clone(), path: p.clone() });
                }
                ComponentBuilt {
                    drv: drv.clone(),
                    outputs,
                    seconds: 0.0,
                    cached: true,
                    host: "local".into(),
                    strategy: None,
                    log,
                    split: None,
                }
            }
        };
        result.insert(component.clone(), built);
    }
    Ok(ComponentsBuilt { components: result, records: outcome.records, schedules: outcome.schedules })
}

/// What a component build produced: each component's record, the measured durations for the
/// build history, and the schedules when they were asked for.
pub struct ComponentsBuilt {
    pub components: BTreeMap<String, ComponentBuilt>,
    pub records: Vec<crate::builders::history::Record>,
    pub schedules: Option<super::Schedules>,
}
