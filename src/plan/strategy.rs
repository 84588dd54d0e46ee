//! The strategy planner: per board component, cross or target-system (expected to run on a
//! native host or emulated), chosen from the cost model with the numbers behind the choice.
//! Components of one group (a kernel and its modules) get one choice; overrides from the build
//! profile and `--strategy COMPONENT=…` win over the cost model. Pure: no I/O.

use std::collections::BTreeMap;

use serde::Serialize;

use super::cost::{ComponentKind, fmt_seconds};
use super::error::PlanError;
use crate::builders::history::History;
use crate::profile::build::{Strategy, StrategyPolicy};
use crate::vocab::model::{BuilderModel, Placement, Task};
use crate::{Error, Result};

/// One board component to plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Component {
    /// Component name as in profiles and `--strategy` (`kernel`, `module-hello`, `init`, ...).
    pub name: String,
    pub kind: ComponentKind,
    /// Components sharing a group get one strategy (a kernel and its modules: `kernel`).
    pub group: Option<String>,
    /// The target system (`riscv64-linux`, `aarch64-linux`).
    pub system: String,
    /// A cross toolchain for this component exists on the build side.
    pub cross_available: bool,
    /// Derivation name (without hash) to look up in the history, when known.
    pub derivation: Option<String>,
    /// Why the provider cannot build this component as a target-system derivation (None: it can).
    pub target_refusal: Option<String>,
    /// Features a builder needs for the target-system derivation (the userland it runs).
    pub target_features: Vec<String>,
}

impl Component {
    /// A component with its kind from its name; modules join the `kernel` group.
    pub(crate) fn new(name: &str, system: &str, cross_available: bool) -> Component {
        let kind = ComponentKind::of_component(name);
        let group = match kind {
            ComponentKind::Kernel | ComponentKind::Module => Some("kernel".to_string()),
            _ => None,
        };
        Component {
            name: name.to_string(),
            kind,
            group,
            system: system.to_string(),
            cross_available,
            derivation: None,
            target_refusal: None,
            target_features: Vec::new(),
        }
    }
}

/// What the planner works from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanRequest<'a> {
    pub components: &'a [Component],
    pub builders: &'a [BuilderModel],
    pub history: Option<&'a History>,
    /// Forced strategies by component or group name (profile overrides merged with
    /// `--strategy`, the command line last).
    pub overrides: &'a BTreeMap<String, Strategy>,
    pub policy: StrategyPolicy,
    /// The system cross derivations have (the build host's, `x86_64-linux`).
    pub build_system: &'a str,
}

/// One option the planner weighed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Costed {
    pub strategy: Strategy,
    pub host: String,
    pub seconds: f64,
}

/// The plan of one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ComponentPlan {
    pub component: String,
    pub group: Option<String>,
    /// `Cross`, or a target-system build expected `Native` or `Emulated`.
    pub strategy: Strategy,
    /// The host expected to build it (the scheduler makes the final placement).
    pub host: Option<String>,
    /// Estimated seconds for the chosen option.
    pub seconds: f64,
    /// Set by an override rather than the cost model.
    pub forced: bool,
    /// Every strategy's best option, cheapest first.
    pub options: Vec<Costed>,
    /// The numbers behind the choice, e.g. `cross on x1: 150 s; emulated on x1: 1,900 s; no
    /// native riscv64-linux host`.
    pub reason: String,
}

/// The board's components (names as `BuildSpec::components()` gives them) for the planner,
/// all compiled for `system`.
pub(crate) fn board_components(names: &[String], system: &str, cross_available: bool) -> Vec<Component> {
    names.iter().map(|n| Component::new(n, system, cross_available)).collect()
}

/// Best host and seconds for one component under one strategy, or why there is none.
fn best_for(
    c: &Component,
    strategy: Strategy,
    req: &PlanRequest,
    corrections: &BTreeMap<String, f64>,
) -> std::result::Result<Costed, String> {
    let (system, want) = match strategy {
        Strategy::Cross => (req.build_system, None),
        Strategy::Native => (c.system.as_str(), Some(Placement::Native)),
        Strategy::Emulated => (c.system.as_str(), Some(Placement::Emulated)),
    };
    if strategy == Strategy::Cross && !c.cross_available {
        return Err(format!("no cross toolchain for {}", c.name));
    }
    let work = c
        .derivation
        .as_deref()
        .and_then(|d| req.history.and_then(|h| h.work(d)))
        .unwrap_or_else(|| c.kind.default_work());
    let probe = Task {
        name: c.name.clone(),
        system: system.to_string(),
        required_features: if strategy == Strategy::Cross { Vec::new() } else { c.target_features.clone() },
        inputs: vec![],
        work,
        output_bytes: 0,
        helpers: Vec::new(),
    };
    let mut best: Option<Costed> = None;
    for b in req.builders {
        if b.refusal(&probe).is_some() {
            continue;
        }
        let Some((placement, _)) = b.placement(system) else { continue };
        if want.is_some_and(|w| w != placement) {
            continue;
        }
        let Some(exec) = b.exec_seconds(&probe) else { continue };
        let corr = corrections.get(&b.name).copied().unwrap_or(1.0);
        let overhead = if b.local { 0.0 } else { b.dispatch_overhead_s.max(0.0) };
        let seconds = exec * corr + overhead;
        if best.as_ref().is_none_or(|x| seconds < x.seconds) {
            best = Some(Costed { strategy, host: b.name.clone(), seconds });
        }
    }
    best.ok_or_else(|| {
        let with = if probe.required_features.is_empty() || strategy == Strategy::Cross {
            String::new()
        } else {
            " with the userland (scripts/setup-host.sh there, then `rvbuild builders probe`)".to_string()
        };
        match strategy {
            Strategy::Cross => format!("no host runs {system}"),
            Strategy::Native => format!("no native {system} host{with}"),
            Strategy::Emulated => format!("no host emulates {system}{with}"),
        }
    })
}

const ALL: [Strategy; 3] = [Strategy::Cross, Strategy::Native, Strategy::Emulated];

/// Plans every component. Fails when an override cannot be honoured (no cross toolchain, no
/// host for the forced strategy, conflicting overrides within a group) or when a component has
/// no way to be built at all; the error names the component, the system and the hosts.
pub(crate) fn plan(req: &PlanRequest) -> Result<Vec<ComponentPlan>> {
    let corrections = req.history.map(History::host_corrections).unwrap_or_default();
    // Group the components: a named group, or the component alone.
    let mut groups: Vec<(String, Vec<&Component>)> = Vec::new();
    for c in req.components {
        let key = c.group.clone().unwrap_or_else(|| c.name.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    let mut out = Vec::new();
    for (key, members) in &groups {
        let forced = forced_strategy(key, members, req.overrides)?;
        let compiles = members.iter().all(|c| c.kind.compiles());
        // Per strategy: each member's best option, or the first reason it is impossible.
        let mut per: BTreeMap<usize, std::result::Result<Vec<Costed>, String>> = BTreeMap::new();
        for (si, s) in ALL.iter().enumerate() {
            if !compiles && *s != Strategy::Cross {
                per.insert(si, Err("assembled on the build host".to_string()));
                continue;
            }
            if *s != Strategy::Cross
                && let Some(why) = members.iter().find_map(|c| c.target_refusal.clone())
            {
                per.insert(si, Err(why));
                continue;
            }
            let opts: std::result::Result<Vec<Costed>, String> =
                members.iter().map(|c| best_for(c, *s, req, &corrections)).collect();
            per.insert(si, opts);
        }
        let total = |si: usize| per[&si].as_ref().ok().map(|v| v.iter().map(|c| c.seconds).sum::<f64>());
        let chosen: usize = match forced {
            Some(s) => {
                let si = ALL.iter().position(|x| *x == s).unwrap_or(0);
                if let Err(why) = &per[&si] {
                    return Err(impossible_override(key, members, s, why, req));
                }
                si
            }
            None => choose(req.policy, &total).ok_or_else(|| unbuildable(key, members, &per, req))?,
        };
        for (mi, c) in members.iter().enumerate() {
            let mut options: Vec<Costed> =
                per.values().filter_map(|r| r.as_ref().ok().and_then(|v| v.get(mi).cloned())).collect();
            options.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let mine = per[&chosen].as_ref().ok().and_then(|v| v.get(mi).cloned());
            let mut reason_parts: Vec<String> = Vec::new();
            if let Some(m) = &mine {
                reason_parts.push(format!("{} on {}: {}", m.strategy.as_str(), m.host, fmt_seconds(m.seconds)));
            }
            for o in &options {
                if Some(o.strategy) != mine.as_ref().map(|m| m.strategy) {
                    reason_parts.push(format!("{} on {}: {}", o.strategy.as_str(), o.host, fmt_seconds(o.seconds)));
                }
            }
            for (si, r) in &per {
                if let Err(why) = r
                    && *si != chosen
                    && compiles
                {
                    reason_parts.push(why.clone());
                }
            }
            if !compiles {
                reason_parts.push("assembled on the build host".to_string());
            }
            if let Some(s) = forced {
                reason_parts.push(format!("forced {} by override", s.as_str()));
            } else if members.len() > 1 {
                let t = total(chosen).unwrap_or(0.0);
                reason_parts.push(format!("group {key} ({} components) agrees: {}", members.len(), fmt_seconds(t)));
            }
            out.push(ComponentPlan {
                component: c.name.clone(),
                group: c.group.clone(),
                strategy: ALL[chosen],
                host: mine.as_ref().map(|m| m.host.clone()),
                seconds: mine.as_ref().map(|m| m.seconds).unwrap_or(0.0),
                forced: forced.is_some(),
                options,
                reason: {
                    let mut seen = std::collections::BTreeSet::new();
                    reason_parts.retain(|r| seen.insert(r.clone()));
                    reason_parts.join("; ")
                },
            });
        }
    }
    Ok(out)
}

/// Index into `ALL` by policy, among strategies with a total.
fn choose(policy: StrategyPolicy, total: &dyn Fn(usize) -> Option<f64>) -> Option<usize> {
    let cheapest = |idx: &[usize]| {
        idx.iter()
            .filter_map(|&i| total(i).map(|t| (i, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .map(|(i, _)| i)
    };
    match policy {
        StrategyPolicy::Auto => cheapest(&[0, 1, 2]),
        StrategyPolicy::PreferCross => cheapest(&[0]).or_else(|| cheapest(&[1, 2])),
        StrategyPolicy::PreferNative => cheapest(&[1]).or_else(|| cheapest(&[0, 2])),
    }
}

/// The override for a group: by group name or by any member's name; members must agree.
fn forced_strategy(
    key: &str,
    members: &[&Component],
    overrides: &BTreeMap<String, Strategy>,
) -> Result<Option<Strategy>> {
    let mut found: Option<(String, Strategy)> = overrides.get(key).map(|s| (key.to_string(), *s));
    for c in members {
        if let Some(&s) = overrides.get(&c.name) {
            match &found {
                Some((by, prev)) if *prev != s => {
                    return Err(PlanError::ConflictingGroup {
                        group: key.to_string(),
                        by: by.clone(),
                        first: *prev,
                        component: c.name.clone(),
                        second: s,
                    }
                    .into());
                }
                Some(_) => {}
                None => found = Some((c.name.clone(), s)),
            }
        }
    }
    Ok(found.map(|(_, s)| s))
}

fn hosts_considered(req: &PlanRequest) -> String {
    if req.builders.is_empty() {
        return " (the builder pool is empty)".to_string();
    }
    let mut s = String::from("; hosts considered:");
    for b in req.builders {
        let mut runs: Vec<String> = b.native_systems.clone();
        runs.extend(b.emulated.iter().map(|(sys, f)| format!("{sys} (emulated, {f}x)")));
        let runs = if runs.is_empty() { "nothing".to_string() } else { runs.join(", ") };
        let slots = if b.slots == 0 { ", no slots" } else { "" };
        s.push_str(&format!("\n  - {}: runs {runs}{slots}", b.name));
    }
    s
}

fn impossible_override(key: &str, members: &[&Component], s: Strategy, why: &str, req: &PlanRequest) -> Error {
    let system = members.first().map(|c| c.system.as_str()).unwrap_or("?");
    PlanError::ImpossibleOverride {
        key: key.to_string(),
        strategy: s,
        system: system.to_string(),
        why: why.to_string(),
        hosts: hosts_considered(req),
        needs_toolchain: why.starts_with("no cross toolchain") || why.starts_with("assembled"),
    }
    .into()
}

fn unbuildable(
    key: &str,
    members: &[&Component],
    per: &BTreeMap<usize, std::result::Result<Vec<Costed>, String>>,
    req: &PlanRequest,
) -> Error {
    let system = members.first().map(|c| c.system.as_str()).unwrap_or("?");
    let why: Vec<String> = per.values().filter_map(|r| r.as_ref().err().cloned()).collect();
    PlanError::Unbuildable {
        key: key.to_string(),
        system: system.to_string(),
        why: why.join("; "),
        hosts: hosts_considered(req),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::builders::history::Record;

    fn x86(name: &str, speed: f64, local: bool, emulates: Option<f64>) -> BuilderModel {
        BuilderModel {
            name: name.into(),
            slots: 4,
            native_systems: vec!["x86_64-linux".into()],
            emulated: emulates.map(|f| BTreeMap::from([("riscv64-linux".to_string(), f)])).unwrap_or_default(),
            speed,
            supported_features: vec![],
            mandatory_features: vec![],
            local,
            link_bytes_per_s: 1e8,
            dispatch_overhead_s: 0.0,
        }
    }

    fn rv(name: &str, speed: f64) -> BuilderModel {
        let mut b = x86(name, speed, false, None);
        b.native_systems = vec!["riscv64-linux".into()];
        b
    }

    fn board(cross: bool) -> Vec<Component> {
        ["kernel", "module-hello", "init", "initramfs", "image"]
            .iter()
            .map(|n| Component::new(n, "riscv64-linux", cross))
            .collect()
    }

    fn run(
        components: &[Component],
        builders: &[BuilderModel],
        overrides: &BTreeMap<String, Strategy>,
    ) -> Result<Vec<ComponentPlan>> {
        plan(&PlanRequest {
            components,
            builders,
            history: None,
            overrides,
            policy: StrategyPolicy::Auto,
            build_system: "x86_64-linux",
        })
    }

    fn get<'a>(plans: &'a [ComponentPlan], name: &str) -> &'a ComponentPlan {
        plans.iter().find(|p| p.component == name).unwrap_or_else(|| panic!("no plan for {name}"))
    }

    #[test]
    fn cross_wins_over_emulation_with_the_numbers() {
        let pool = vec![x86("x1", 2.0, false, Some(12.0))];
        let plans = run(&board(true), &pool, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let k = get(&plans, "kernel");
        assert_eq!(k.strategy, Strategy::Cross);
        assert_eq!(k.host.as_deref(), Some("x1"));
        assert_eq!(k.seconds, 150.0);
        assert_eq!(
            k.reason.split("; ").take(3).collect::<Vec<_>>(),
            vec!["cross on x1: 150 s", "emulated on x1: 1,800 s", "no native riscv64-linux host"]
        );
        assert_eq!(get(&plans, "image").strategy, Strategy::Cross);
        assert!(get(&plans, "image").reason.contains("assembled on the build host"));
    }

    #[test]
    fn fast_native_host_wins_and_the_group_agrees() {
        // A native riscv64 host twice as fast as the x86 one: the kernel goes native, and the
        // modules follow the kernel even though alone each would be a toss-up.
        let mut rv1 = rv("rv1", 2.0);
        rv1.dispatch_overhead_s = 10.0;
        let pool = vec![x86("local", 1.0, true, None), rv1];
        let plans = run(&board(true), &pool, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(get(&plans, "kernel").strategy, Strategy::Native);
        let module = get(&plans, "module-hello");
        assert_eq!(module.strategy, Strategy::Native);
        // Alone, the module would have gone cross (10 s locally vs 5 s + 10 s overhead).
        assert_eq!(module.options.first().map(|o| (o.strategy, o.seconds)), Some((Strategy::Cross, 10.0)));
        assert_eq!(module.seconds, 15.0);
        assert_eq!(get(&plans, "kernel").host.as_deref(), Some("rv1"));
        assert!(get(&plans, "kernel").reason.contains("group kernel"));
    }

    #[test]
    fn overrides_force_the_group_and_conflicts_are_errors() {
        let pool = vec![x86("local", 1.0, true, Some(10.0)), rv("rv1", 2.0)];
        let o = BTreeMap::from([("kernel".to_string(), Strategy::Emulated)]);
        let plans = run(&board(true), &pool, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(get(&plans, "module-hello").strategy, Strategy::Emulated);
        assert!(get(&plans, "kernel").forced);
        assert!(get(&plans, "kernel").reason.contains("forced emulated"));
        let o =
            BTreeMap::from([("kernel".to_string(), Strategy::Cross), ("module-hello".to_string(), Strategy::Native)]);
        let err = run(&board(true), &pool, &o).err().map(|e| (e.kind(), e.to_string()));
        assert!(err.as_ref().is_some_and(|(k, t)| *k == ErrorKind::Config && t.contains("conflicting")), "{err:?}");
    }

    #[test]
    fn impossible_override_names_system_and_hosts() {
        let pool = vec![x86("local", 1.0, true, None)];
        let o = BTreeMap::from([("init".to_string(), Strategy::Native)]);
        let err = run(&board(true), &pool, &o).err().map(|e| (e.kind(), e.to_string()));
        let (kind, text) = err.unwrap_or((ErrorKind::Internal, String::new()));
        assert_eq!(kind, ErrorKind::Builder);
        assert!(
            text.contains("init") && text.contains("riscv64-linux") && text.contains("local: runs x86_64-linux"),
            "{text}"
        );
        let o = BTreeMap::from([("kernel".to_string(), Strategy::Cross)]);
        let err = run(&board(false), &[x86("l", 1.0, true, Some(5.0))], &o).err().map(|e| e.kind());
        assert_eq!(err, Some(ErrorKind::Config));
    }

    #[test]
    fn nothing_can_build_it() {
        let err = run(&board(false), &[x86("local", 1.0, true, None)], &BTreeMap::new()).err().map(|e| e.to_string());
        let text = err.unwrap_or_default();
        assert!(text.contains("kernel (system riscv64-linux) cannot be built"), "{text}");
        assert!(text.contains("no cross toolchain"), "{text}");
    }

    #[test]
    fn policies_and_history() {
        let pool = vec![x86("local", 1.0, true, Some(10.0)), rv("rv1", 0.5)];
        let comps = vec![Component::new("init", "riscv64-linux", true)];
        let mk = |policy, history| {
            plan(&PlanRequest {
                components: &comps,
                builders: &pool,
                history,
                overrides: &BTreeMap::new(),
                policy,
                build_system: "x86_64-linux",
            })
            .map(|p| p[0].strategy)
            .ok()
        };
        assert_eq!(mk(StrategyPolicy::Auto, None), Some(Strategy::Cross));
        assert_eq!(mk(StrategyPolicy::PreferNative, None), Some(Strategy::Native));
        assert_eq!(mk(StrategyPolicy::PreferCross, None), Some(Strategy::Cross));
        // History says "local" is 30x slower than declared compared with rv1: native wins.
        let mut h = History::in_memory();
        for (i, n) in ["a", "b"].iter().enumerate() {
            let rec = |host: &str, seconds: f64, speed: f64| Record {
                name: n.to_string(),
                host: host.into(),
                strategy: "cross".into(),
                seconds,
                host_speed: speed,
                slowdown: 1.0,
                output_bytes: 0,
                at: i as u64,
            };
            h.record(rec("local", 300.0, 1.0));
            h.record(rec("rv1", 20.0, 0.5));
        }
        assert_eq!(mk(StrategyPolicy::Auto, Some(&h)), Some(Strategy::Native));
    }

    #[test]
    fn board_components_of_a_board() {
        let names: Vec<String> = ["kernel", "module-a", "init", "image"].map(String::from).to_vec();
        let comps = board_components(&names, "aarch64-linux", true);
        assert_eq!(comps.len(), 4);
        assert_eq!(comps[1].group.as_deref(), Some("kernel"));
        assert_eq!(comps[2].kind, ComponentKind::Userland);
        assert!(comps.iter().all(|c| c.system == "aarch64-linux"));
    }
}
