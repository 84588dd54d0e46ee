//! Schedules on estimates only (`rvbuild plan --simulate`): drives the online scheduler with a
//! simulated clock, or Nix's greedy remote-first policy for comparison, and computes the lower
//! bound any schedule of the same tasks and pool must respect. `Schedule` is also what a
//! finished build's measured runs turn into, for the Gantt chart.

use serde::Serialize;

use super::error::ScheduleError;
use super::online::{Scheduler, topo_order};
use crate::Result;
use crate::vocab::model::{BuilderId, BuilderModel, Placement, Task, TaskId, strategy_label};

/// Tolerance when matching finish and start times (seconds).
const EPS: f64 = 1e-6;

/// One run of a task: where and when (seconds from the build's start).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Run {
    pub task: TaskId,
    pub builder: BuilderId,
    pub start: f64,
    pub finish: f64,
}

/// A task placed in a schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledTask {
    pub task: TaskId,
    pub name: String,
    pub builder: BuilderId,
    /// Build slot on that builder (0-based; the Gantt chart's lane).
    pub slot: u32,
    pub start: f64,
    pub finish: f64,
    pub placement: Placement,
    /// `cross`, `native` or `emulated` (see [`strategy_label`]).
    pub strategy: crate::vocab::Strategy,
    /// On the path that decided the makespan.
    pub critical: bool,
}

/// A builder's slots held by a split task running on another builder (`--split`): its lanes
/// in the Gantt chart show whose compile they help, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hold {
    pub builder: BuilderId,
    /// The split task and its name.
    pub task: TaskId,
    pub name: String,
    /// Where that task runs.
    pub owner: BuilderId,
    pub start: f64,
    pub finish: f64,
}

/// A complete schedule: predicted (simulated) or measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// Builder names, indexed by `BuilderId`.
    pub builders: Vec<String>,
    /// Lanes per builder (its slots, more if the runs overlapped more than that).
    pub lanes: Vec<u32>,
    /// One entry per run, in start order.
    pub entries: Vec<ScheduledTask>,
    /// Helpers' slots held by split tasks, in start order.
    pub holds: Vec<Hold>,
    pub makespan: f64,
}

/// A simulated schedule with its lower bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub schedule: Schedule,
    pub makespan: f64,
    pub lower_bound: f64,
}

impl Simulation {
    /// One line for `rvbuild plan --simulate`.
    pub fn summary(&self, tasks: &[Task], builders: &[BuilderModel]) -> String {
        let b = bounds(tasks, builders);
        format!(
            "predicted makespan {:.0} s; lower bound {:.0} s = max(critical path on the fastest builder {:.0} s, \
             total work / total capacity {:.0} s); ratio {:.3}",
            self.makespan,
            self.lower_bound,
            b.critical_path,
            b.work_over_capacity,
            self.ratio()
        )
    }

    /// makespan / lower bound (1.0 is optimal; 1.0 when the bound is 0).
    pub fn ratio(&self) -> f64 {
        if self.lower_bound > 0.0 { self.makespan / self.lower_bound } else { 1.0 }
    }
}

/// Which scheduling policy a simulation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    /// rvbuild's scheduler.
    Rvbuild,
    /// Nix's build-remote: greedy, remote first, no ranking.
    NixLike,
}

/// The two terms of [`lower_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    /// Longest path with every task on its fastest capable builder.
    pub critical_path: f64,
    /// Total work (times the smallest slowdown) / total capacity (Σ slots × speed).
    pub work_over_capacity: f64,
}

impl Bounds {
    pub fn max(&self) -> f64 {
        self.critical_path.max(self.work_over_capacity)
    }
}

/// `max(critical path with every task on its fastest capable builder, total work / total
/// capacity)`: no schedule of `tasks` on `builders` can finish earlier (transfers and dispatch
/// overheads only add to it). Tasks no builder can run are left out.
pub fn lower_bound(tasks: &[Task], builders: &[BuilderModel]) -> f64 {
    bounds(tasks, builders).max()
}

/// Both terms of the lower bound.
pub fn bounds(tasks: &[Task], builders: &[BuilderModel]) -> Bounds {
    let Ok(order) = topo_order(tasks) else { return Bounds { critical_path: 0.0, work_over_capacity: 0.0 } };
    let fastest: Vec<f64> = tasks
        .iter()
        .map(|t| builders.iter().filter_map(|b| b.exec_seconds(t)).fold(f64::INFINITY, f64::min))
        .map(|x| if x.is_finite() { x } else { 0.0 })
        .collect();
    let mut path = vec![0.0f64; tasks.len()];
    for &i in &order {
        let before = tasks[i].inputs.iter().map(|&j| path[j]).fold(0.0, f64::max);
        path[i] = before + fastest[i];
    }
    let critical = path.iter().copied().fold(0.0, f64::max);
    // Capacity-time: a task costs work * slowdown on whichever builder runs it.
    let work: f64 = tasks.iter().map(|t| area_work(t, builders)).sum();
    let capacity: f64 =
        builders.iter().filter(|b| b.speed.is_finite() && b.speed > 0.0).map(|b| f64::from(b.slots) * b.speed).sum();
    let area = if capacity > 0.0 { work / capacity } else { 0.0 };
    Bounds { critical_path: critical, work_over_capacity: area }
}

/// A tighter bound that is still valid for every schedule: besides [`lower_bound`]'s two terms,
/// for each task `v` (times on the fastest capable builder): nothing that depends on `v` can
/// start before `v` can have finished, so `head(v) + time(v) + work(descendants of v) /
/// capacity`; and everything `v` depends on must be done before `v` starts and its longest path
/// to the end runs, so `work(ancestors of v) / capacity + time(v) + tail(v)`. It sees the serial
/// toolchain prefix that the simple bound ignores (the pool idles while it builds).
pub fn lower_bound_tight(tasks: &[Task], builders: &[BuilderModel]) -> f64 {
    let simple = lower_bound(tasks, builders);
    let Ok(order) = topo_order(tasks) else { return simple };
    let n = tasks.len();
    let capacity: f64 =
        builders.iter().filter(|b| b.speed.is_finite() && b.speed > 0.0).map(|b| f64::from(b.slots) * b.speed).sum();
    if n == 0 || capacity <= 0.0 {
        return simple;
    }
    let fastest: Vec<f64> = tasks
        .iter()
        .map(|t| builders.iter().filter_map(|b| b.exec_seconds(t)).fold(f64::INFINITY, f64::min))
        .map(|x| if x.is_finite() { x } else { 0.0 })
        .collect();
    let area: Vec<f64> = tasks.iter().map(|t| area_work(t, builders) / capacity).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for &j in &t.inputs {
            dependents[j].push(i);
        }
    }
    let mut head = vec![0.0f64; n];
    for &i in &order {
        head[i] = tasks[i].inputs.iter().map(|&j| head[j] + fastest[j]).fold(0.0, f64::max);
    }
    let mut tail = vec![0.0f64; n];
    for &i in order.iter().rev() {
        tail[i] = dependents[i].iter().map(|&d| tail[d] + fastest[d]).fold(0.0, f64::max);
    }
    let words = n.div_ceil(64);
    let set_area = |bits: &[u64]| -> f64 {
        let mut sum = 0.0;
        for (w, &word) in bits.iter().enumerate() {
            let mut x = word;
            while x != 0 {
                let b = x.trailing_zeros() as usize;
                sum += area[w * 64 + b];
                x &= x - 1;
            }
        }
        sum
    };
    let mut best = simple;
    let mut desc = vec![0u64; n * words];
    // desc[i]: strict descendants of i.
    for &i in order.iter().rev() {
        for &d in &dependents[i] {
            desc[i * words + d / 64] |= 1 << (d % 64);
            for w in 0..words {
                desc[i * words + w] |= desc[d * words + w];
            }
        }
        best = best.max(head[i] + fastest[i] + set_area(&desc[i * words..(i + 1) * words]));
    }
    let mut anc = desc;
    anc.iter_mut().for_each(|x| *x = 0);
    // anc[i]: strict ancestors of i.
    for &i in &order {
        for &j in &tasks[i].inputs {
            anc[i * words + j / 64] |= 1 << (j % 64);
            for w in 0..words {
                anc[i * words + w] |= anc[j * words + w];
            }
        }
        best = best.max(set_area(&anc[i * words..(i + 1) * words]) + fastest[i] + tail[i]);
    }
    best
}

/// Capacity-time a task needs wherever it runs: work times its smallest slowdown.
fn area_work(t: &Task, builders: &[BuilderModel]) -> f64 {
    let sd = builders
        .iter()
        .filter(|b| b.refusal(t).is_none())
        .filter_map(|b| b.placement(&t.system).map(|(_, sd)| sd))
        .fold(f64::INFINITY, f64::min);
    if sd.is_finite() { t.work.max(0.0) * sd } else { 0.0 }
}

/// How a simulation runs.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions<'a> {
    pub policy: SimPolicy,
    /// The builders as they really are (same order as the declared ones): tasks take their
    /// execution time on these while the scheduler only knows the declared models and what it
    /// measures. `None`: every task takes exactly its predicted duration.
    pub actual: Option<&'a [BuilderModel]>,
    /// Let the scheduler correct builder speeds from measured durations.
    pub learning: bool,
}

/// Runs `policy` on estimates only (every task takes exactly its predicted duration).
pub fn simulate(tasks: &[Task], builders: &[BuilderModel], policy: SimPolicy) -> Result<Simulation> {
    simulate_with(tasks, builders, &SimOptions { policy, actual: None, learning: true })
}

/// Runs a simulation; with `actual` builders the makespan and lower bound are the real ones.
pub fn simulate_with(tasks: &[Task], builders: &[BuilderModel], opts: &SimOptions) -> Result<Simulation> {
    let policy = opts.policy;
    let mut sched = Scheduler::new(tasks.to_vec(), builders.to_vec())?;
    sched.set_learning(opts.learning);
    let mut now = 0.0;
    let mut pending: Vec<Run> = Vec::new();
    let mut runs: Vec<Run> = Vec::with_capacity(tasks.len());
    // Each task starts once and each event finishes one: this bounds the loop.
    for _ in 0..=(2 * tasks.len() + 1) {
        if sched.is_done() {
            break;
        }
        let started = match policy {
            SimPolicy::Rvbuild => sched.dispatch(now),
            SimPolicy::NixLike => sched.dispatch_nix_like(now),
        };
        for a in started {
            let predicted = sched.predicted_finish(a.task).unwrap_or(now);
            let real = opts.actual.and_then(|act| act.get(a.builder)).and_then(|b| b.exec_seconds(&tasks[a.task]));
            let finish = match (real, sched.staging_of(a.task)) {
                (Some(exec), Some(staging)) => now + staging + exec,
                _ => predicted,
            };
            pending.push(Run { task: a.task, builder: a.builder, start: now, finish });
        }
        let Some(next) = pending.iter().enumerate().min_by(|a, b| a.1.finish.total_cmp(&b.1.finish)).map(|(i, _)| i)
        else {
            return Err(ScheduleError::SimulationStalled.into());
        };
        let run = pending.swap_remove(next);
        now = run.finish;
        sched.finished(run.task, run.builder, now, run.finish - run.start);
        runs.push(run);
    }
    if !sched.is_done() {
        return Err(ScheduleError::SimulationUnfinished.into());
    }
    let schedule = Schedule::from_runs(tasks, builders, &runs);
    let truth = opts.actual.filter(|a| a.len() == builders.len()).unwrap_or(builders);
    Ok(Simulation { makespan: schedule.makespan, lower_bound: lower_bound(tasks, truth), schedule })
}

impl Schedule {
    /// A schedule from runs (simulated, or measured by the build engine): lanes assigned per
    /// builder slot, the critical path marked. Runs naming unknown tasks or builders are skipped.
    pub fn from_runs(tasks: &[Task], builders: &[BuilderModel], runs: &[Run]) -> Schedule {
        let mut runs: Vec<Run> =
            runs.iter().copied().filter(|r| r.task < tasks.len() && r.builder < builders.len()).collect();
        runs.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.task.cmp(&b.task)));
        let mut lane_free: Vec<Vec<f64>> = builders.iter().map(|b| vec![f64::NEG_INFINITY; b.slots as usize]).collect();
        let mut entries = Vec::with_capacity(runs.len());
        let mut holds = Vec::new();
        for r in &runs {
            for h in &tasks[r.task].helpers {
                if let Some(b) = builders.iter().position(|m| &m.name == h).filter(|&b| b != r.builder) {
                    let name = tasks[r.task].name.clone();
                    holds.push(Hold {
                        builder: b,
                        task: r.task,
                        name,
                        owner: r.builder,
                        start: r.start,
                        finish: r.finish,
                    });
                }
            }
            let lanes = &mut lane_free[r.builder];
            let slot = match lanes.iter().position(|&f| f <= r.start + EPS) {
                Some(s) => s,
                None => {
                    lanes.push(f64::NEG_INFINITY);
                    lanes.len() - 1
                }
            };
            lanes[slot] = r.finish;
            let (t, b) = (&tasks[r.task], &builders[r.builder]);
            entries.push(ScheduledTask {
                task: r.task,
                name: t.name.clone(),
                builder: r.builder,
                slot: slot as u32,
                start: r.start,
                finish: r.finish,
                placement: b.placement(&t.system).map(|(p, _)| p).unwrap_or(Placement::Native),
                strategy: strategy_label(t, b),
                critical: false,
            });
        }
        let makespan = entries.iter().map(|e| e.finish).fold(0.0, f64::max);
        let mut schedule = Schedule {
            builders: builders.iter().map(|b| b.name.clone()).collect(),
            lanes: lane_free.iter().map(|l| l.len() as u32).collect(),
            entries,
            holds,
            makespan,
        };
        schedule.mark_critical_path(tasks);
        schedule
    }

    /// Walks back from the last finish: each step goes to whatever the run waited for last,
    /// an input or the run before it in the same lane.
    fn mark_critical_path(&mut self, tasks: &[Task]) {
        let e = &self.entries;
        let Some(mut cur) = (0..e.len()).max_by(|&a, &b| e[a].finish.total_cmp(&e[b].finish)) else { return };
        let mut marked = vec![false; e.len()];
        loop {
            marked[cur] = true;
            let start = e[cur].start;
            let inputs = &tasks[e[cur].task].inputs;
            let pred = (0..e.len())
                .filter(|&j| !marked[j] && e[j].finish <= start + EPS)
                .filter(|&j| {
                    inputs.contains(&e[j].task) || (e[j].builder == e[cur].builder && e[j].slot == e[cur].slot)
                })
                .max_by(|&a, &b| e[a].finish.total_cmp(&e[b].finish));
            match pred {
                Some(p) => cur = p,
                None => break,
            }
        }
        for (entry, m) in self.entries.iter_mut().zip(marked) {
            entry.critical = m;
        }
    }

    /// Task ids on the critical path, first to last.
    pub fn critical_path(&self) -> Vec<TaskId> {
        let mut v: Vec<&ScheduledTask> = self.entries.iter().filter(|e| e.critical).collect();
        v.sort_by(|a, b| a.start.total_cmp(&b.start));
        v.iter().map(|e| e.task).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::schedule::online::tests::{builder, task};

    #[test]
    fn chain_and_fanout_schedule_and_bound() {
        // toolchain -> kernel, toolchain -> 4 packages; fast x1 and a slower local machine.
        let mut tasks = vec![task("toolchain", 100.0, &[]), task("kernel", 400.0, &[0])];
        tasks.extend((0..4).map(|i| task(&format!("pkg{i}"), 20.0, &[0])));
        let pool = vec![builder("local", 2, 1.0, true), builder("x1", 2, 2.0, false)];
        let sim = simulate(&tasks, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
        // Critical path on x1: 50 + 200.
        assert_eq!(sim.lower_bound, 250.0);
        assert_eq!(bounds(&tasks, &pool), Bounds { critical_path: 250.0, work_over_capacity: 580.0 / 6.0 });
        let line = sim.summary(&tasks, &pool);
        assert!(line.contains("predicted makespan 250 s") && line.contains("ratio 1.000"), "{line}");
        assert_eq!(sim.makespan, 250.0);
        assert_eq!(sim.schedule.critical_path(), vec![0, 1]);
        let kernel = sim.schedule.entries.iter().find(|e| e.task == 1).map(|e| e.builder);
        assert_eq!(kernel, Some(1));
        assert!(sim.schedule.entries.iter().all(|e| e.strategy == crate::vocab::Strategy::Cross));
        let nix = simulate(&tasks, &pool, SimPolicy::NixLike).unwrap_or_else(|e| panic!("{e}"));
        assert!(nix.makespan >= sim.makespan);
    }

    #[test]
    fn measured_speed_beats_a_wrong_declaration() {
        // "liar" declares speed 4 but really runs at 0.5: with learning (from finished and from
        // overdue builds) the scheduler gives it only the share it can really take; without, it
        // keeps queueing work for it (benchmark 2 in small).
        let tasks: Vec<Task> = (0..60).map(|i| task(&format!("p{i}"), 20.0 + (i % 7) as f64 * 10.0, &[])).collect();
        let declared = vec![builder("local", 4, 1.0, true), builder("liar", 4, 4.0, false)];
        let mut actual = declared.clone();
        actual[1].speed = 0.5;
        let run = |learning| {
            simulate_with(
                &tasks,
                &declared,
                &SimOptions { policy: SimPolicy::Rvbuild, actual: Some(&actual), learning },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let (with, without) = (run(true), run(false));
        // The bound is the true one (work / true capacity): learning gets close to it.
        assert!(with.makespan <= 1.05 * with.lower_bound, "{} vs bound {}", with.makespan, with.lower_bound);
        assert!(without.makespan >= 1.25 * without.lower_bound, "{} vs {}", without.makespan, without.lower_bound);
        assert!(with.lower_bound <= with.makespan);
    }

    #[test]
    fn from_runs_assigns_lanes_and_overflows_safely() {
        let tasks = vec![task("a", 1.0, &[]), task("b", 1.0, &[]), task("c", 1.0, &[0, 1])];
        let pool = vec![builder("l", 1, 1.0, true)];
        let runs = [
            Run { task: 0, builder: 0, start: 0.0, finish: 2.0 },
            Run { task: 1, builder: 0, start: 1.0, finish: 3.0 },
            Run { task: 2, builder: 0, start: 3.0, finish: 4.0 },
            Run { task: 9, builder: 0, start: 0.0, finish: 1.0 },
        ];
        let s = Schedule::from_runs(&tasks, &pool, &runs);
        assert_eq!(s.entries.len(), 3);
        assert_eq!(s.lanes, vec![2]);
        assert_eq!(s.entries.iter().map(|e| e.slot).collect::<Vec<_>>(), vec![0, 1, 0]);
        assert_eq!(s.critical_path(), vec![1, 2]);
        assert_eq!(s.makespan, 4.0);
    }

    #[test]
    fn a_split_task_holds_its_helpers_lanes_in_the_schedule() {
        let mut kernel = task("kernel", 100.0, &[]);
        kernel.helpers = vec!["a".into(), "b".into()];
        let tasks =
            vec![kernel, task("s1", 5.0, &[]), task("s2", 5.0, &[]), task("s3", 5.0, &[]), task("s4", 5.0, &[])];
        let pool = vec![builder("own", 2, 1.0, true), builder("a", 1, 1.0, false), builder("b", 1, 1.0, false)];
        let sim = simulate(&tasks, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
        let k = sim.schedule.entries.iter().find(|e| e.task == 0).cloned().unwrap_or_else(|| panic!("no kernel"));
        let held: Vec<(BuilderId, f64, f64)> =
            sim.schedule.holds.iter().map(|h| (h.builder, h.start, h.finish)).collect();
        assert_eq!(k.builder, 0);
        assert_eq!(held, vec![(1, k.start, k.finish), (2, k.start, k.finish)]);
        // Nothing else runs on a held helper meanwhile: the short jobs share the owner's
        // second slot.
        for e in sim.schedule.entries.iter().filter(|e| e.task != 0) {
            assert!(e.builder == 0 || e.start >= k.finish - EPS, "{e:?} overlaps the split kernel");
        }
        assert!((sim.makespan - 100.0).abs() < 1e-6, "{}", sim.makespan);
    }

    #[test]
    fn strategy_labels() {
        let mut emu = builder("x86", 1, 1.0, true);
        emu.emulated.insert("riscv64-linux".into(), 8.0);
        let mut rv = builder("rv", 1, 1.0, false);
        rv.native_systems = vec!["riscv64-linux".into()];
        let mut t = task("k", 1.0, &[]);
        assert_eq!(strategy_label(&t, &emu), crate::vocab::Strategy::Cross);
        t.system = "riscv64-linux".into();
        assert_eq!(strategy_label(&t, &emu), crate::vocab::Strategy::Emulated);
        assert_eq!(strategy_label(&t, &rv), crate::vocab::Strategy::Native);
    }

    #[test]
    fn impossible_task_fails_before_simulating() {
        let mut t = task("k", 1.0, &[]);
        t.system = "aarch64-linux".into();
        assert!(simulate(&[t], &[builder("l", 1, 1.0, true)], SimPolicy::Rvbuild).is_err());
    }

    fn arb_case() -> impl Strategy<Value = (Vec<Task>, Vec<BuilderModel>)> {
        let tasks = prop::collection::vec(
            (
                1.0f64..200.0,
                prop::collection::vec(any::<prop::sample::Index>(), 0..3),
                0u64..2_000_000_000,
                any::<bool>(),
            ),
            1..40,
        );
        let pool = prop::collection::vec((1u32..4, 0.3f64..4.0, any::<bool>(), 0.0f64..3.0, any::<bool>()), 1..5);
        (tasks, pool).prop_map(|(ts, bs)| {
            let tasks = ts
                .iter()
                .enumerate()
                .map(|(i, (w, ins, bytes, rv))| {
                    let mut inputs: Vec<TaskId> =
                        if i == 0 { vec![] } else { ins.iter().map(|x| x.index(i)).collect() };
                    inputs.sort();
                    inputs.dedup();
                    let mut t = task(&format!("t{i}"), *w, &inputs);
                    t.output_bytes = *bytes;
                    if *rv {
                        t.system = "riscv64-linux".into();
                    }
                    t
                })
                .collect();
            let mut builders: Vec<BuilderModel> = bs
                .iter()
                .enumerate()
                .map(|(i, (slots, speed, local, overhead, rv))| {
                    let mut b = builder(&format!("b{i}"), *slots, *speed, *local);
                    b.dispatch_overhead_s = *overhead;
                    b.link_bytes_per_s = 5e7;
                    if *rv {
                        b.native_systems.push("riscv64-linux".into());
                    } else {
                        b.emulated.insert("riscv64-linux".into(), 6.0);
                    }
                    b
                })
                .collect();
            if let Some(b) = builders.first_mut() {
                b.local = true;
            }
            (tasks, builders)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn lower_bound_never_exceeds_makespan((tasks, pool) in arb_case()) {
            for policy in [SimPolicy::Rvbuild, SimPolicy::NixLike] {
                let sim = simulate(&tasks, &pool, policy);
                prop_assert!(sim.is_ok());
                let sim = sim.unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(sim.schedule.entries.len(), tasks.len());
                prop_assert!(sim.lower_bound <= sim.makespan * (1.0 + 1e-9), "{} > {}", sim.lower_bound, sim.makespan);
                let tight = lower_bound_tight(&tasks, &pool);
                prop_assert!(tight >= sim.lower_bound - 1e-9);
                prop_assert!(tight <= sim.makespan * (1.0 + 1e-9), "tight {} > {}", tight, sim.makespan);
                // Every task starts after its inputs finish and slots never overlap.
                let end: std::collections::BTreeMap<TaskId, f64> = sim.schedule.entries.iter().map(|e| (e.task, e.finish)).collect();
                for e in &sim.schedule.entries {
                    for i in &tasks[e.task].inputs {
                        prop_assert!(end[i] <= e.start + 1e-6);
                    }
                    prop_assert!(e.slot < pool[e.builder].slots);
                }
                prop_assert!(!sim.schedule.critical_path().is_empty());
            }
        }
    }
}
