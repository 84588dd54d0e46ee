//! The split decision of a board (`--split`): whether the kernel's compile is spread over the
//! pool, with the cost model's numbers, shared by `board` (which builds with it) and `plan`
//! (which shows it).

use std::collections::BTreeMap;

use crate::build::Member;
use crate::build::split::{Helper, SplitConfig};
use crate::builders::Builder;
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
    /// Hosts left out before the build (their probed cross compiler differs), with the reason.
    pub excluded: BTreeMap<String, String>,
}

/// Each builder's cross compilers as `rvbuild builders probe` found them: builder name ->
/// compiler -> identity (`build::split::identity_command`'s output).
pub(crate) type Compilers = BTreeMap<String, BTreeMap<String, String>>;

/// The probed cross compilers of the pool's builders.
pub(crate) fn probed(pool: &[Builder]) -> Compilers {
    let cache = crate::builders::probe_cache::load_cache();
    pool.iter().filter_map(|b| cache.get(b).map(|p| (b.name.clone(), p.cross_compilers.clone()))).collect()
}

/// The identity of `compiler` on this machine, None when it is not there.
fn local_identity(compiler: &str) -> Option<String> {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(crate::build::split::identity_command(compiler))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The kernel's split decision over `models` (the owner is taken to be the local machine when
/// it builds, else the fastest builder). None when nothing can be split.
pub(crate) fn decide_split(
    mode: SplitMode,
    provider: Provider,
    inst: &Instantiated,
    models: &[BuilderModel],
    compilers: &Compilers,
    history: &History,
) -> Option<SplitDecision> {
    if provider != Provider::Host {
        return None;
    }
    let drv = inst.drvs.get(SPLIT_COMPONENT)?;
    decide_for(mode, drv, &inst.dag, models, compilers, history)
}

/// The split decision for one derivation of `dag` (one that reads the helper list: its
/// environment has `splitHook`).
pub(crate) fn decide_for(
    mode: SplitMode,
    drv: &str,
    dag: &crate::nix::dag::Dag,
    models: &[BuilderModel],
    compilers: &Compilers,
    history: &History,
) -> Option<SplitDecision> {
    let i = dag.index_of(drv)?;
    let env = &dag.node(i).drv.env;
    if !env.contains_key(crate::build::split::HOOK_ATTR) {
        return None;
    }
    let compiler = format!("{}gcc", env.get("crossPrefix").map(String::as_str).unwrap_or(""));
    let drv = drv.to_string();
    let task = crate::schedule::tasks_from_dag(dag, &[i], Some(history)).pop()?;
    let capable: Vec<&BuilderModel> = models.iter().filter(|m| m.slots > 0).collect();
    let owner =
        capable.iter().find(|m| m.local).or_else(|| capable.iter().max_by(|a, b| a.speed.total_cmp(&b.speed)))?;
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    // A host whose probed compiler differs from the owner's is left out here already (the
    // build checks every helper again before it takes jobs).
    let ours = match owner.local {
        true => local_identity(&compiler),
        false => compilers.get(&owner.name).and_then(|c| c.get(&compiler)).cloned(),
    };
    let mut excluded = BTreeMap::new();
    for m in capable.iter().filter(|m| m.name != owner.name) {
        let theirs = compilers.get(&m.name).and_then(|c| c.get(&compiler));
        if let (Some(ours), Some(theirs)) = (&ours, theirs)
            && let Some(why) = crate::build::split::identity_mismatch(&compiler, ours, theirs)
        {
            excluded.insert(m.name.clone(), why);
        }
    }
    let helpers: Vec<HelperModel> = capable
        .iter()
        .filter(|m| m.name != owner.name && !excluded.contains_key(&m.name))
        .map(|m| HelperModel {
            name: m.name.clone(),
            slots: m.slots,
            relative_speed: if owner.speed > 0.0 { m.speed / owner.speed } else { 1.0 },
        })
        .collect();
    let one_host = task.work / owner.speed.max(1e-6);
    let est = estimate(one_host, owner.slots.min(cores).max(1), &helpers);
    let split = decide(mode, &est);
    let mut text = if split {
        describe(&owner.name, &est)
    } else if est.helpers.is_empty() {
        "one host (no other builder to help)".to_string()
    } else if mode == SplitMode::Never {
        "one host (--split never)".to_string()
    } else {
        format!("one host: {:.0} s; split would take {:.0} s, too little gain", est.one_host_s, est.split_s)
    };
    for (h, why) in &excluded {
        text.push_str(&format!("; {h} left out: {why}"));
    }
    Some(SplitDecision { drv, split, estimate: est, text, excluded })
}

/// The engine's split configuration for decisions: every member may help (the engine leaves
/// out the owner and hosts with another compiler).
pub(crate) fn config<'a>(decisions: impl IntoIterator<Item = &'a SplitDecision>, members: &[Member]) -> SplitConfig {
    let decisions: Vec<&SplitDecision> = decisions.into_iter().filter(|d| d.split).collect();
    let drvs: std::collections::BTreeSet<String> = decisions.iter().map(|d| d.drv.clone()).collect();
    let left_out = |name: &str| decisions.iter().any(|d| d.excluded.contains_key(name));
    match drvs.is_empty() {
        true => SplitConfig::default(),
        false => SplitConfig {
            drvs,
            helpers: members
                .iter()
                .filter(|m| m.model.slots > 0 && !left_out(&m.model.name))
                .map(|m| Helper { name: m.model.name.clone(), transport: m.transport.clone(), slots: m.model.slots })
                .collect(),
        },
    }
}
