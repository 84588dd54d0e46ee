//! `plan` through the pipeline: the board's first stages as for a build (load, pool, plan,
//! generate), then instantiation and the scheduler on estimates, so the plan shows where each
//! derivation would go and when. Nothing is built.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::build::connect;
use crate::builders::history::History;
use crate::nix::{dag, instantiate};
use crate::plan::ComponentPlan;
use crate::schedule::simulate::{SimPolicy, Simulation, simulate};
use crate::transport::{LocalTransport, Transport};
use crate::vocab::{BuilderModel, Strategy, Task};
use crate::{Error, ErrorKind, Result};

use super::{Request, stages};

/// One component of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub component: String,
    pub strategy: String,
    /// Where the schedule puts it; None when it is already built.
    pub host: Option<String>,
    pub start: Option<f64>,
    pub finish: Option<f64>,
    pub cached: bool,
    pub reason: String,
    /// The kernel's compile split decision with the cost model's numbers (`--split`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// The plan of a board: each component's row, the derivations still to build, the pool, the
/// predicted schedule and (when asked for) Nix's greedy policy on the same work.
pub struct PlanReport {
    pub board: String,
    pub rows: Vec<PlanRow>,
    pub tasks: Vec<Task>,
    pub models: Vec<BuilderModel>,
    pub simulation: Simulation,
    pub nix_like: Option<Simulation>,
    /// The kernel's compile is split (its simulation takes the cost model's time and holds the
    /// helpers; Nix's policy runs it unsplit).
    pub split: bool,
}

/// Plans `req`'s board over its pool; `nix_like` also simulates Nix's policy.
/// The scheduler's preparation runs on `rt`; call this from synchronous code.
pub fn plan(req: &Request, nix_like: bool, rt: &tokio::runtime::Handle) -> Result<PlanReport> {
    let inputs = stages::load(req)?;
    let pool = stages::pool(req, &inputs)?;
    let models = connect::models(&pool);
    let history = History::load(&History::default_path());
    let planned = stages::plan(req, &inputs, &models, &history)?;

    // Instantiate (no build) in a scratch directory to get the derivation graph.
    let name = inputs.board.value.name.value.clone();
    let scratch = crate::vocab::cache_dir().join("plan").join(&name);
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(ErrorKind::Config, scratch.display(), e))?;
    let expr = stages::write_expression(&planned.spec, inputs.provider, &scratch)?;
    let inst = instantiate::instantiate(&expr, &planned.spec.components())?;
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let mut prepared = rt.block_on(crate::build::prepare(&inst.dag, local.as_ref(), Some(&history)))?;
    crate::build::check_capable(&prepared.tasks, &models)?;
    let mode = req.split.unwrap_or(inputs.prof.value.strategy.split);
    let compilers = super::split::probed(&pool);
    // The kernel's owner is where the schedule puts it unsplit; the split decision is made for
    // that host, local or remote (then the local machine is one of its helpers).
    let kernel_task = inst
        .drvs
        .get(super::split::SPLIT_COMPONENT)
        .and_then(|d| inst.dag.index_of(d))
        .and_then(|n| prepared.nodes.iter().position(|&x| x == n));
    let unsplit = simulate(&prepared.tasks, &models, SimPolicy::Rvbuild)?;
    // Nix cannot split a derivation: its policy runs on the work as it is.
    let nix_like = if nix_like { Some(simulate(&prepared.tasks, &models, SimPolicy::NixLike)?) } else { None };
    let owner = kernel_task
        .and_then(|t| unsplit.schedule.entries.iter().find(|e| e.task == t))
        .and_then(|e| models.get(e.builder))
        .map(|m| m.name.clone());
    let decision =
        super::split::decide_split(mode, inputs.provider, &inst, &models, &compilers, &history, owner.as_deref());
    // A split kernel takes the cost model's time and holds its helpers' slots while it runs.
    let (simulation, split) = match (decision.as_ref().filter(|d| d.split && d.estimate.one_host_s > 0.0), kernel_task)
    {
        (Some(d), Some(t)) => {
            prepared.tasks[t].work *= d.estimate.split_s / d.estimate.one_host_s;
            prepared.tasks[t].helpers = d.estimate.helpers.clone();
            (simulate(&prepared.tasks, &models, SimPolicy::Rvbuild)?, true)
        }
        _ => (unsplit, false),
    };
    let mut rows = rows(&planned.plans, &inst.drvs, &inst.dag, &prepared, &simulation, &models);
    if let Some(d) = decision
        && let Some(r) = rows.iter_mut().find(|r| r.component == super::split::SPLIT_COMPONENT)
    {
        r.split = Some(d.text);
    }
    Ok(PlanReport { board: name, rows, tasks: prepared.tasks, models, simulation, nix_like, split })
}

fn rows(
    plans: &[ComponentPlan],
    drvs: &BTreeMap<String, String>,
    graph: &dag::Dag,
    prepared: &crate::build::Prepared,
    sim: &Simulation,
    models: &[BuilderModel],
) -> Vec<PlanRow> {
    plans
        .iter()
        .map(|p| {
            let node = drvs.get(&p.component).and_then(|d| graph.index_of(d));
            let task = node.and_then(|n| prepared.nodes.iter().position(|&x| x == n));
            let entry = task.and_then(|t| sim.schedule.entries.iter().find(|e| e.task == t));
            let strategy = match (p.strategy, entry) {
                (Strategy::Cross, _) => "cross".to_string(),
                (_, Some(e)) => e.strategy.to_string(),
                (s, None) => s.as_str().to_string(),
            };
            PlanRow {
                component: p.component.clone(),
                strategy,
                host: entry.and_then(|e| models.get(e.builder)).map(|m| m.name.clone()),
                start: entry.map(|e| e.start),
                finish: entry.map(|e| e.finish),
                cached: task.is_none(),
                reason: p.reason.clone(),
                split: None,
            }
        })
        .collect()
}
