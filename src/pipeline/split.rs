//! The split decision of a board (`--split`): whether the kernel's compile is spread over the
//! pool, with the cost model's numbers, shared by `board` (which builds with it) and `plan`
//! (which shows it).

use crate::build::Member;
use crate::build::split::{Helper, SplitConfig};
use crate::builders::history::History;
use crate::nix::instantiate::Instantiated;
use crate::plan::split::{HelperModel, SplitEstimate, SplitMode, decide, describe, estimate};
use crate::profile::Provider;
use crate::vocab::BuilderModel;

/// The component whose compile may be split (the host provider's kernel builder reads the
/// helper list at run time; no other builder does).
pub(crate) const SPLIT_COMPONENT: &str = "kernel";

/// What the planner decided for the kernel.
#[derive(Debug, Clone)]
pub(crate) struct SplitDecision {
    pub drv: String,
    pub split: bool,
    pub estimate: SplitEstimate,
    /// The plan's text: `local + a,b (distcc, 4 slots)  est. 95 s  (one host: 330 s)`, or why not.
    pub text: String,
}

/// The kernel's split decision over `models` (the owner is taken to be the local machine when
/// it builds, else the fastest builder). None when nothing can be split.
pub(crate) fn decide_split(
    mode: SplitMode,
    provider: Provider,
    inst: &Instantiated,
    models: &[BuilderModel],
    history: &History,
) -> Option<SplitDecision> {
    if provider != Provider::Host {
        return None;
    }
    let drv = inst.drvs.get(SPLIT_COMPONENT)?;
    decide_for(mode, drv, &inst.dag, models, history)
}

/// The split decision for one derivation of `dag` (one that reads the helper list: its
/// environment has `splitHook`).
pub(crate) fn decide_for(
    mode: SplitMode,
    drv: &str,
    dag: &crate::nix::dag::Dag,
    models: &[BuilderModel],
    history: &History,
) -> Option<SplitDecision> {
    let i = dag.index_of(drv)?;
    if !dag.node(i).drv.env.contains_key(crate::build::split::HOOK_ATTR) {
        return None;
    }
    let drv = drv.to_string();
    let task = crate::schedule::tasks_from_dag(dag, &[i], Some(history)).pop()?;
    let capable: Vec<&BuilderModel> = models.iter().filter(|m| m.slots > 0).collect();
    let owner =
        capable.iter().find(|m| m.local).or_else(|| capable.iter().max_by(|a, b| a.speed.total_cmp(&b.speed)))?;
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let helpers: Vec<HelperModel> = capable
        .iter()
        .filter(|m| m.name != owner.name)
        .map(|m| HelperModel {
            name: m.name.clone(),
            slots: m.slots,
            relative_speed: if owner.speed > 0.0 { m.speed / owner.speed } else { 1.0 },
        })
        .collect();
    let one_host = task.work / owner.speed.max(1e-6);
    let est = estimate(one_host, owner.slots.min(cores).max(1), &helpers);
    let split = decide(mode, &est);
    let text = if split {
        describe(&owner.name, &est)
    } else if est.helpers.is_empty() {
        "one host (no other builder to help)".to_string()
    } else if mode == SplitMode::Never {
        "one host (--split never)".to_string()
    } else {
        format!("one host: {:.0} s; split would take {:.0} s, too little gain", est.one_host_s, est.split_s)
    };
    Some(SplitDecision { drv, split, estimate: est, text })
}

/// The engine's split configuration for decisions: every member may help (the engine leaves
/// out the owner and hosts with another compiler).
pub(crate) fn config<'a>(decisions: impl IntoIterator<Item = &'a SplitDecision>, members: &[Member]) -> SplitConfig {
    let drvs: std::collections::BTreeSet<String> =
        decisions.into_iter().filter(|d| d.split).map(|d| d.drv.clone()).collect();
    match drvs.is_empty() {
        true => SplitConfig::default(),
        false => SplitConfig {
            drvs,
            helpers: members
                .iter()
                .filter(|m| m.model.slots > 0)
                .map(|m| Helper { name: m.model.name.clone(), transport: m.transport.clone(), slots: m.model.slots })
                .collect(),
        },
    }
}
