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
use crate::vocab::{BuilderModel, Task};

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

/// The kernel's split decision over `models`, with the kernel on `owner` (where the schedule
/// puts it; None: where the scheduler would start it on an idle pool). None when nothing can be
/// split.
pub(crate) fn decide_split(
    mode: SplitMode,
    provider: Provider,
    inst: &Instantiated,
    models: &[BuilderModel],
    compilers: &Compilers,
    history: &History,
    owner: Option<&str>,
) -> Option<SplitDecision> {
    if provider != Provider::Host {
        return None;
    }
    let drv = inst.drvs.get(SPLIT_COMPONENT)?;
    decide_for(mode, drv, &inst.dag, models, compilers, history, owner)
}

/// The split decision for one derivation of `dag` (one that reads the helper list: its
/// environment has `splitHook`), on `owner` (None: see [`pick_owner`]).
pub(crate) fn decide_for(
    mode: SplitMode,
    drv: &str,
    dag: &crate::nix::dag::Dag,
    models: &[BuilderModel],
    compilers: &Compilers,
    history: &History,
    owner: Option<&str>,
) -> Option<SplitDecision> {
    let i = dag.index_of(drv)?;
    let env = &dag.node(i).drv.env;
    if !env.contains_key(crate::build::split::HOOK_ATTR) {
        return None;
    }
    let compiler = format!("{}gcc", env.get("crossPrefix").map(String::as_str).unwrap_or(""));
    let task = crate::schedule::tasks_from_dag(dag, &[i], Some(history)).pop()?;
    let owner = pick_owner(&task, models, owner)?;
    let identity = |m: &BuilderModel| match m.local {
        true => local_identity(&compiler),
        false => compilers.get(&m.name).and_then(|c| c.get(&compiler)).cloned(),
    };
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    Some(decide_on(mode, drv, &task, owner, models, &compiler, cores, identity))
}

/// The builder that owns the split derivation: `named` when it can build it, else the one the
/// scheduler would start it on in an idle pool (the earliest finish: execution time, plus the
/// dispatch overhead of a remote; the local machine first on a tie).
pub(crate) fn pick_owner<'a>(task: &Task, models: &'a [BuilderModel], named: Option<&str>) -> Option<&'a BuilderModel> {
    let capable = || models.iter().filter(|m| m.exec_seconds(task).is_some());
    if let Some(m) = named.and_then(|n| capable().find(|m| m.name == n)) {
        return Some(m);
    }
    let finish = |m: &BuilderModel| {
        m.exec_seconds(task).unwrap_or(f64::INFINITY) + if m.local { 0.0 } else { m.dispatch_overhead_s.max(0.0) }
    };
    capable().min_by(|a, b| finish(a).total_cmp(&finish(b)).then(b.local.cmp(&a.local)))
}

/// The decision for `task` on `owner` with every other capable builder of `models` as a
/// possible helper, the local machine included when the owner is remote (its jobs come back
/// through the owner's remote forwards). `identity` gives a builder's `compiler` identity
/// (None: unknown, checked again when the build starts); `cores` bounds a local owner's slots.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide_on(
    mode: SplitMode,
    drv: &str,
    task: &Task,
    owner: &BuilderModel,
    models: &[BuilderModel],
    compiler: &str,
    cores: u32,
    identity: impl Fn(&BuilderModel) -> Option<String>,
) -> SplitDecision {
    let others: Vec<&BuilderModel> = models.iter().filter(|m| m.slots > 0 && m.name != owner.name).collect();
    // A host whose probed compiler differs from the owner's is left out here already (the
    // build checks every helper again before it takes jobs).
    let ours = identity(owner);
    let mut excluded = BTreeMap::new();
    for m in &others {
        if let (Some(ours), Some(theirs)) = (&ours, identity(m))
            && let Some(why) = crate::build::split::identity_mismatch(compiler, ours, &theirs)
        {
            excluded.insert(m.name.clone(), why);
        }
    }
    let helpers: Vec<HelperModel> = others
        .iter()
        .filter(|m| !excluded.contains_key(&m.name))
        .map(|m| HelperModel {
            name: m.name.clone(),
            slots: m.slots,
            relative_speed: if owner.speed > 0.0 { m.speed / owner.speed } else { 1.0 },
        })
        .collect();
    let one_host = owner.exec_seconds(task).unwrap_or(task.work / owner.speed.max(1e-6));
    let slots = if owner.local { owner.slots.min(cores) } else { owner.slots };
    let est = estimate(one_host, slots.max(1), &helpers);
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
    SplitDecision { drv: drv.to_string(), split, estimate: est, text, excluded }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::online::tests::{builder, task};

    const GCC: &str = "riscv64-linux-gnu-gcc";

    fn id(version: &str) -> Option<String> {
        Some(format!("{GCC} (Debian {version}) {version}\naaa\nbbb"))
    }

    /// A slow local machine, a fast remote x1 and two more remotes, one with another compiler.
    fn pool() -> Vec<BuilderModel> {
        let mut x1 = builder("x1", 4, 2.0, false);
        x1.dispatch_overhead_s = 1.0;
        vec![builder("local", 2, 1.0, true), x1, builder("x2", 2, 1.0, false), builder("x3", 2, 1.0, false)]
    }

    fn identity(m: &BuilderModel) -> Option<String> {
        match m.name.as_str() {
            "x3" => id("13.1.0"),
            _ => id("12.2.0"),
        }
    }

    #[test]
    fn the_owner_is_where_the_scheduler_starts_the_kernel_not_always_local() {
        let kernel = task("kernel", 340.0, &[]);
        let models = pool();
        assert_eq!(pick_owner(&kernel, &models, None).map(|m| m.name.as_str()), Some("x1"));
        assert_eq!(pick_owner(&kernel, &models, Some("x2")).map(|m| m.name.as_str()), Some("x2"));
        // A named host that cannot build it (no slots) does not own it.
        let mut none = pool();
        none[2].slots = 0;
        assert_eq!(pick_owner(&kernel, &none, Some("x2")).map(|m| m.name.as_str()), Some("x1"));
        // Equal finish: the local machine.
        let even = vec![builder("r", 2, 1.0, false), builder("local", 2, 1.0, true)];
        assert_eq!(pick_owner(&kernel, &even, None).map(|m| m.name.as_str()), Some("local"));
    }

    #[test]
    fn a_remote_owner_is_helped_by_the_local_machine_and_its_compiler_decides() {
        let kernel = task("kernel", 340.0, &[]);
        let models = pool();
        let owner = pick_owner(&kernel, &models, None).unwrap_or_else(|| panic!("no owner"));
        // Two half-speed helper slots beside x1's 4 save 19 % (170 -> 137 s): auto declines,
        // below its 20 %; always splits.
        let auto = decide_on(SplitMode::Auto, "k.drv", &kernel, owner, &models, GCC, 1, identity);
        assert!(!auto.split && auto.text.contains("too little gain"), "{auto:?}");
        let d = decide_on(SplitMode::Always, "k.drv", &kernel, owner, &models, GCC, 1, identity);
        assert!(d.split, "{d:?}");
        // x1 keeps its 4 slots (the local core count bounds only a local owner); the local
        // machine and x2 help at half x1's speed; x3 runs another gcc.
        assert_eq!(d.estimate.helpers, vec!["local".to_string(), "x2".to_string()]);
        assert_eq!(d.estimate.helper_slots, 2.0);
        assert_eq!(d.estimate.one_host_s, 170.0);
        let expected = estimate(
            170.0,
            4,
            &[
                HelperModel { name: "local".into(), slots: 2, relative_speed: 0.5 },
                HelperModel { name: "x2".into(), slots: 2, relative_speed: 0.5 },
            ],
        );
        assert_eq!(d.estimate, expected);
        assert!(d.text.starts_with("x1 + local,x2 (distcc, 2 slots)"), "{}", d.text);
        assert!(d.excluded.get("x3").is_some_and(|why| why.contains("13.1.0")), "{:?}", d.excluded);
        // Seen from a local owner, x1 is a helper and the local core count bounds the owner.
        let local = &models[0];
        let l = decide_on(SplitMode::Auto, "k.drv", &kernel, local, &models, GCC, 1, identity);
        assert_eq!(l.estimate.helpers, vec!["x1".to_string(), "x2".to_string()]);
        assert_eq!(
            l.estimate,
            estimate(
                340.0,
                1,
                &[
                    HelperModel { name: "x1".into(), slots: 4, relative_speed: 2.0 },
                    HelperModel { name: "x2".into(), slots: 2, relative_speed: 1.0 },
                ]
            )
        );
    }

    #[test]
    fn an_unknown_compiler_is_not_a_reason_to_leave_a_host_out() {
        let kernel = task("kernel", 340.0, &[]);
        let models = pool();
        let d = decide_on(SplitMode::Always, "k.drv", &kernel, &models[1], &models, GCC, 1, |_| None);
        assert!(d.excluded.is_empty());
        assert_eq!(d.estimate.helpers.len(), 3);
        let never = decide_on(SplitMode::Never, "k.drv", &kernel, &models[1], &models, GCC, 1, identity);
        assert!(!never.split && never.text.starts_with("one host (--split never)"), "{}", never.text);
    }
}
