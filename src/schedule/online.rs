//! The online list scheduler (HEFT family): the build engine, and the simulator with a
//! simulated clock, ask it which tasks to start now and tell it when they finish, fail or lose
//! their builder. Ready tasks go in upward-rank order to the builder with the earliest
//! estimated finish; a task waits for a busy builder when no free one would finish it as early.
//! Measured durations correct each builder's effective speed during the run. A task whose
//! compile is split over helpers (`--split`, [`Task::helpers`]) holds every slot of its
//! helpers while it runs: nothing else is placed on them until it ends.

use std::collections::BTreeSet;

use super::error::ScheduleError;
use crate::Result;
use crate::builders::history::{Record, unix_now};
use crate::vocab::model::strategy_label;
use crate::vocab::model::{Assignment, BuilderId, BuilderModel, Placement, Task, TaskId};

/// Weight of the newest measurement in the per-builder speed correction (log-space EWMA).
const LEARN_WEIGHT: f64 = 0.5;
/// Measured/predicted ratios are clamped to this range so one odd build cannot wreck estimates.
const RATIO_RANGE: (f64, f64) = (0.02, 50.0);
/// Tolerance when comparing estimated finish times (seconds).
const EPS: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Some inputs are not built yet.
    Waiting,
    Ready,
    Running(BuilderId),
    Done,
    /// Given up: it failed to build, or something it needs did (keep-going).
    Failed,
}

#[derive(Debug, Clone)]
struct Running {
    task: TaskId,
    start: f64,
    /// Predicted seconds from start to finish (transfers, execution, dispatch overhead).
    predicted: f64,
    /// The non-execution part of `predicted` (transfers and overhead).
    staging: f64,
}

/// The scheduler's state for one build. Times are seconds on the caller's clock.
#[derive(Debug, Clone)]
pub struct Scheduler {
    tasks: Vec<Task>,
    builders: Vec<BuilderModel>,
    rank: Vec<f64>,
    state: Vec<State>,
    missing_inputs: Vec<usize>,
    dependents: Vec<Vec<TaskId>>,
    alive: Vec<bool>,
    running: Vec<Vec<Running>>,
    /// Where each finished task's outputs are (builder ids).
    present: Vec<BTreeSet<BuilderId>>,
    /// Per builder, per placement (native, emulated): log of measured/declared time ratio.
    learned_log: Vec<[f64; 2]>,
    samples: Vec<[u32; 2]>,
    /// The same over the whole pool, per placement: how far the work estimates themselves are
    /// off. A builder nothing has finished on yet is assumed to be as far off as the pool, so
    /// the first measured host does not look faster than the others only because every
    /// estimate was too long (or slower because every estimate was too short).
    pool_log: [f64; 2],
    pool_samples: [u32; 2],
    /// Transfers measured per builder (the first replaces the declared link throughput).
    link_samples: Vec<u32>,
    learning: bool,
    /// The latest time the caller reported (for builds running past their prediction).
    now: f64,
    /// Per task, the builders whose slots it holds while it runs ([`Task::helpers`] by id).
    holds: Vec<Vec<BuilderId>>,
}

fn pidx(p: Placement) -> usize {
    match p {
        Placement::Native => 0,
        Placement::Emulated => 1,
    }
}

/// Topological order of `tasks` (inputs first), or an error naming a bad input or a cycle.
pub(crate) fn topo_order(tasks: &[Task]) -> Result<Vec<TaskId>> {
    let n = tasks.len();
    let mut indeg = vec![0usize; n];
    let mut dependents = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for &inp in &t.inputs {
            if inp >= n || inp == i {
                return Err(ScheduleError::BadInput { task: i, name: t.name.clone(), input: inp }.into());
            }
            indeg[i] += 1;
            dependents[inp].push(i);
        }
    }
    let mut order: Vec<TaskId> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut k = 0;
    while k < order.len() {
        let i = order[k];
        k += 1;
        for &d in &dependents[i] {
            indeg[d] -= 1;
            if indeg[d] == 0 {
                order.push(d);
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n).find(|&i| indeg[i] > 0).map(|i| tasks[i].name.clone()).unwrap_or_default();
        return Err(ScheduleError::Cycle { through: stuck }.into());
    }
    Ok(order)
}

/// Checks that every task has at least one usable builder among `usable`; the error names the
/// derivation, its system and features, and why each host considered cannot take it.
pub(crate) fn check_capable(tasks: &[Task], builders: &[BuilderModel], usable: &[bool]) -> Result<()> {
    let orphans: Vec<&Task> =
        tasks.iter().filter(|t| !builders.iter().zip(usable).any(|(b, &u)| u && b.refusal(t).is_none())).collect();
    let Some(first) = orphans.first() else { return Ok(()) };
    let hosts = (!builders.is_empty()).then(|| {
        builders
            .iter()
            .zip(usable)
            .map(|(b, &u)| {
                let why = if u { b.refusal(first).unwrap_or_default() } else { "is down".to_string() };
                (b.name.clone(), why)
            })
            .collect()
    });
    let also: Vec<String> = orphans.iter().skip(1).take(5).map(|t| t.name.clone()).collect();
    let more = orphans.len().saturating_sub(1 + also.len());
    Err(ScheduleError::NoCapableBuilder {
        task: first.name.clone(),
        system: first.system.clone(),
        features: first.required_features.clone(),
        hosts,
        also,
        more,
    }
    .into())
}

impl Scheduler {
    /// A scheduler for `tasks` (inputs refer to other tasks by index) over `builders`. Fails
    /// before anything builds when a task has no capable builder.
    pub fn new(mut tasks: Vec<Task>, builders: Vec<BuilderModel>) -> Result<Scheduler> {
        for t in &mut tasks {
            // A broken estimate must not stall the schedule: treat it as no work.
            if !(t.work.is_finite() && t.work >= 0.0) {
                t.work = 0.0;
            }
        }
        let order = topo_order(&tasks)?;
        let alive = vec![true; builders.len()];
        check_capable(&tasks, &builders, &alive)?;
        let n = tasks.len();
        let mut dependents = vec![Vec::new(); n];
        for (i, t) in tasks.iter().enumerate() {
            for &inp in &t.inputs {
                dependents[inp].push(i);
            }
        }
        // Rank by the mean execution time over capable builders (HEFT's upward rank).
        let mut rank = vec![0.0; n];
        for &i in order.iter().rev() {
            let times: Vec<f64> = builders.iter().filter_map(|b| b.exec_seconds(&tasks[i])).collect();
            let w = times.iter().sum::<f64>() / times.len().max(1) as f64;
            let after = dependents[i].iter().map(|&d| rank[d]).fold(0.0, f64::max);
            rank[i] = w + after;
        }
        let missing_inputs: Vec<usize> = tasks.iter().map(|t| t.inputs.len()).collect();
        let state = missing_inputs.iter().map(|&m| if m == 0 { State::Ready } else { State::Waiting }).collect();
        let nb = builders.len();
        let holds = tasks
            .iter()
            .map(|t| t.helpers.iter().filter_map(|h| builders.iter().position(|b| &b.name == h)).collect())
            .collect();
        Ok(Scheduler {
            holds,
            rank,
            state,
            missing_inputs,
            dependents,
            alive,
            running: vec![Vec::new(); nb],
            present: vec![BTreeSet::new(); n],
            learned_log: vec![[0.0; 2]; nb],
            samples: vec![[0; 2]; nb],
            pool_log: [0.0; 2],
            pool_samples: [0; 2],
            link_samples: vec![0; nb],
            learning: true,
            now: 0.0,
            tasks,
            builders,
        })
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    pub fn builders(&self) -> &[BuilderModel] {
        &self.builders
    }

    /// Upward rank of each task: the estimated longest path from its start to the build's end.
    pub fn ranks(&self) -> &[f64] {
        &self.rank
    }

    /// Every task has finished (or was given up).
    pub fn is_done(&self) -> bool {
        self.state.iter().all(|s| matches!(s, State::Done | State::Failed))
    }

    /// How `builder` would run `task` (native or emulated), or `None` when it cannot.
    pub fn placement(&self, task: TaskId, builder: BuilderId) -> Option<Placement> {
        let (t, b) = (self.tasks.get(task)?, self.builders.get(builder)?);
        if b.refusal(t).is_some() {
            return None;
        }
        b.placement(&t.system).map(|(p, _)| p)
    }

    /// The measured correction of `builder`'s declared speed for `placement`: estimated
    /// execution times are multiplied by it (1.0 until something has finished there).
    ///
    /// Builds still running past their prediction count too: one that has run `k` times its
    /// declared time shows the builder is at least `k` times slower, before it even finishes.
    pub fn speed_correction(&self, builder: BuilderId, placement: Placement) -> f64 {
        let k = pidx(placement);
        let measured_here = self.samples.get(builder).is_some_and(|n| n[k] > 0);
        let learned = if measured_here {
            self.learned_log.get(builder).map(|l| l[k].exp()).unwrap_or(1.0)
        } else if self.pool_samples[k] > 0 {
            self.pool_log[k].exp()
        } else {
            1.0
        };
        if !self.learning {
            return learned;
        }
        let Some(b) = self.builders.get(builder) else { return learned };
        let overdue = self.running[builder]
            .iter()
            .filter_map(|r| {
                let t = &self.tasks[r.task];
                let (p, _) = b.placement(&t.system)?;
                let declared = b.exec_seconds(t)?;
                (p == placement && declared > 0.0).then(|| (self.now - r.start - r.staging) / declared)
            })
            .fold(0.0, f64::max);
        learned.max(overdue.min(RATIO_RANGE.1))
    }

    /// Estimated execution seconds of `task` on `builder` (declared speed, slowdown and what
    /// was measured so far; no transfers); infinity when the builder cannot run it.
    pub fn estimate(&self, task: TaskId, builder: BuilderId) -> f64 {
        let (Some(t), Some(b)) = (self.tasks.get(task), self.builders.get(builder)) else { return f64::INFINITY };
        match (b.exec_seconds(t), b.placement(&t.system)) {
            (Some(s), Some((p, _))) => s * self.speed_correction(builder, p),
            _ => f64::INFINITY,
        }
    }

    /// The measured size of `task`'s outputs (NAR bytes), replacing the estimate in the
    /// transfer costs of its dependents.
    pub fn output_measured(&mut self, task: TaskId, bytes: u64) {
        if let Some(t) = self.tasks.get_mut(task) {
            t.output_bytes = bytes;
        }
    }

    /// A transfer of `bytes` between this machine and `builder` took `seconds`: its link
    /// throughput becomes the measured one (a running average; transfers under 1 MiB say more
    /// about round trips than throughput and are ignored).
    pub fn link_measured(&mut self, builder: BuilderId, bytes: u64, seconds: f64) {
        let Some(b) = self.builders.get_mut(builder) else { return };
        if b.local || bytes < (1 << 20) || !(seconds.is_finite() && seconds > 0.0) {
            return;
        }
        let rate = bytes as f64 / seconds;
        let n = &mut self.link_samples[builder];
        b.link_bytes_per_s = if *n == 0 {
            rate
        } else {
            ((1.0 - LEARN_WEIGHT) * b.link_bytes_per_s.max(1.0).ln() + LEARN_WEIGHT * rate.ln()).exp()
        };
        *n += 1;
    }

    /// Estimated seconds to bring `task`'s inputs to `builder`: outputs travel through this
    /// machine's store, each remote leg at that builder's link throughput.
    pub fn transfer_seconds(&self, task: TaskId, builder: BuilderId) -> f64 {
        let Some(t) = self.tasks.get(task) else { return 0.0 };
        let Some(dst) = self.builders.get(builder) else { return 0.0 };
        let mut secs = 0.0;
        for &i in &t.inputs {
            let here = &self.present[i];
            if here.contains(&builder) {
                continue;
            }
            let bytes = self.tasks[i].output_bytes as f64;
            let on_local = here.iter().any(|&b| self.builders[b].local);
            if !on_local && let Some(&src) = here.iter().next() {
                secs += bytes / self.builders[src].link_bytes_per_s.max(1.0);
            }
            if !dst.local {
                secs += bytes / dst.link_bytes_per_s.max(1.0);
            }
        }
        secs
    }

    fn overhead(&self, builder: BuilderId) -> f64 {
        let b = &self.builders[builder];
        if b.local { 0.0 } else { b.dispatch_overhead_s.max(0.0) }
    }

    /// Predicted seconds from start to finish of `task` on `builder` if started now.
    pub fn predicted_duration(&self, task: TaskId, builder: BuilderId) -> f64 {
        self.transfer_seconds(task, builder) + self.estimate(task, builder) + self.overhead(builder)
    }

    /// Turns the correction of builder speeds from measured durations on or off (on by
    /// default; off only to compare).
    pub fn set_learning(&mut self, on: bool) {
        self.learning = on;
    }

    /// The running task's predicted transfer and dispatch seconds, if it is running.
    pub fn staging_of(&self, task: TaskId) -> Option<f64> {
        let State::Running(b) = *self.state.get(task)? else { return None };
        self.running[b].iter().find(|r| r.task == task).map(|r| r.staging)
    }

    /// The running task's predicted finish time, if it is running.
    pub fn predicted_finish(&self, task: TaskId) -> Option<f64> {
        let State::Running(b) = *self.state.get(task)? else { return None };
        self.running[b].iter().find(|r| r.task == task).map(|r| r.start + r.predicted)
    }

    /// The predicted end of the whole build on the caller's clock: the running tasks end when
    /// now expected (overdue ones included) and the rest is played out on a copy of this
    /// scheduler with the speeds it has learned so far. `None` when what is left cannot all be
    /// placed (no capable builder is up).
    pub fn forecast(&self, now: f64) -> Option<f64> {
        let mut sim = self.clone();
        sim.advance(now);
        let mut clock = sim.now;
        let mut pending: Vec<(f64, TaskId, BuilderId)> = Vec::new();
        for (b, list) in sim.running.iter().enumerate() {
            for r in list {
                pending.push((sim.running_finish_estimate(b, r, clock), r.task, b));
            }
        }
        // The overdue builds count in the finishes above; the replay itself learns nothing.
        sim.set_learning(false);
        let mut end = clock;
        for _ in 0..=(2 * sim.tasks.len() + 1) {
            for a in sim.dispatch(clock) {
                pending.push((sim.predicted_finish(a.task)?, a.task, a.builder));
            }
            let Some(next) = pending.iter().enumerate().min_by(|x, y| x.1.0.total_cmp(&y.1.0)).map(|(i, _)| i) else {
                break;
            };
            let (finish, task, builder) = pending.swap_remove(next);
            clock = clock.max(finish);
            end = end.max(finish);
            sim.finished(task, builder, clock, 0.0);
        }
        sim.is_done().then_some(end)
    }

    /// The earliest predicted finish still ahead among running tasks: when to call
    /// [`dispatch`](Scheduler::dispatch) again if nothing happens before. `None` when nothing
    /// runs or every running build is past its prediction (then poll every few seconds, so a
    /// task waiting for a builder that is slower than expected moves on).
    pub fn next_event_hint(&self) -> Option<f64> {
        self.running.iter().flatten().map(|r| r.start + r.predicted).filter(|&t| t > self.now).min_by(f64::total_cmp)
    }

    /// The split task running on another builder that holds `builder`'s slots, with its
    /// expected end (the latest, if several do). None when `builder` is not held.
    pub fn held_by(&self, builder: BuilderId, now: f64) -> Option<(TaskId, f64)> {
        self.running
            .iter()
            .enumerate()
            .filter(|&(owner, _)| owner != builder)
            .flat_map(|(owner, list)| list.iter().map(move |r| (owner, r)))
            .filter(|(_, r)| self.holds.get(r.task).is_some_and(|h| h.contains(&builder)))
            .map(|(owner, r)| (r.task, self.running_finish_estimate(owner, r, now)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Tasks running on `builder`.
    pub fn running_on(&self, builder: BuilderId) -> Vec<TaskId> {
        self.running.get(builder).map(|v| v.iter().map(|r| r.task).collect()).unwrap_or_default()
    }

    /// Tasks ready to start (all inputs built), not running.
    pub fn ready(&self) -> Vec<TaskId> {
        (0..self.tasks.len()).filter(|&i| self.state[i] == State::Ready).collect()
    }

    /// The tasks to start now, each with its builder. Ready tasks are taken in upward-rank
    /// order; each goes to the builder that finishes it earliest. When that builder has no
    /// free slot the task waits for it (its slot is reserved for this round) unless a free
    /// builder would finish it no later. A builder held by a split task elsewhere has no free
    /// slot, and none frees before that task's expected end.
    pub fn dispatch(&mut self, now: f64) -> Vec<Assignment> {
        self.advance(now);
        let mut ready = self.ready();
        ready.sort_by(|&a, &b| self.rank[b].total_cmp(&self.rank[a]).then(a.cmp(&b)));
        // Per builder: estimated time each slot frees up, and how many are free now.
        let mut slot_free: Vec<Vec<f64>> = Vec::with_capacity(self.builders.len());
        let mut free_now: Vec<u32> = Vec::with_capacity(self.builders.len());
        for (b, model) in self.builders.iter().enumerate() {
            if !self.alive[b] {
                slot_free.push(Vec::new());
                free_now.push(0);
                continue;
            }
            let busy = self.running[b].len() as u32;
            let idle = model.slots.saturating_sub(busy);
            let held = self.held_by(b, now).map(|(_, end)| end);
            let after = held.unwrap_or(now);
            let mut times: Vec<f64> = vec![after; idle as usize];
            times.extend(self.running[b].iter().map(|r| self.running_finish_estimate(b, r, now).max(after)));
            times.sort_by(f64::total_cmp);
            slot_free.push(times);
            free_now.push(if held.is_some() { 0 } else { idle });
        }
        let mut out = Vec::new();
        for t in ready {
            // With no free slot left nothing more can start; the reservations the rest would
            // make are dropped at the end of this call anyway.
            if free_now.iter().all(|&f| f == 0) {
                break;
            }
            let mut best: Option<(f64, BuilderId)> = None;
            let mut best_free: Option<(f64, BuilderId)> = None;
            for b in 0..self.builders.len() {
                let Some(&first) = slot_free[b].first() else { continue };
                if self.builders[b].refusal(&self.tasks[t]).is_some() {
                    continue;
                }
                let dur = self.predicted_duration(t, b);
                let eft = first + dur;
                if best.is_none_or(|(e, _)| eft < e - EPS) {
                    best = Some((eft, b));
                }
                if free_now[b] > 0 {
                    let eft_now = now + dur;
                    if best_free.is_none_or(|(e, _)| eft_now < e - EPS) {
                        best_free = Some((eft_now, b));
                    }
                }
            }
            let Some((eft_best, b_best)) = best else { continue };
            let chosen = match best_free {
                Some((_, b)) if b == b_best => Some(b),
                Some((eft, b)) if eft <= eft_best + EPS => Some(b),
                _ => None,
            };
            match chosen {
                Some(b) => {
                    let predicted = self.predicted_duration(t, b);
                    let staging = predicted - self.estimate(t, b);
                    free_now[b] -= 1;
                    slot_free[b][0] = now + predicted;
                    slot_free[b].sort_by(f64::total_cmp);
                    self.start(t, b, now, predicted, staging);
                    out.push(Assignment { task: t, builder: b });
                    // Its helpers are held from now on, for the rest of this round too.
                    for &h in self.holds[t].iter().filter(|&&h| h != b) {
                        free_now[h] = 0;
                        for f in &mut slot_free[h] {
                            *f = f.max(now + predicted);
                        }
                    }
                }
                None => {
                    // Reserve the best builder's earliest slot for this task.
                    slot_free[b_best][0] = eft_best;
                    slot_free[b_best].sort_by(f64::total_cmp);
                }
            }
        }
        out
    }

    /// Nix's own policy, for comparison (`plan --simulate`, the benchmark): ready tasks in
    /// task order, each to the free capable remote builder with the lowest load per speed;
    /// the local machine only when no remote has a free slot; no ranking, no waiting.
    pub fn dispatch_nix_like(&mut self, now: f64) -> Vec<Assignment> {
        let mut out = Vec::new();
        for t in self.ready() {
            let mut best: Option<(f64, f64, BuilderId)> = None;
            let mut local: Option<BuilderId> = None;
            for (b, model) in self.builders.iter().enumerate() {
                let busy = self.running[b].len() as u32;
                if !self.alive[b] || busy >= model.slots || model.refusal(&self.tasks[t]).is_some() {
                    continue;
                }
                if model.local {
                    local = local.or(Some(b));
                    continue;
                }
                let load = f64::from(busy) / model.speed;
                let better = match best {
                    None => true,
                    Some((l, sp, _)) => load < l - EPS || ((load - l).abs() <= EPS && model.speed > sp),
                };
                if better {
                    best = Some((load, model.speed, b));
                }
            }
            if let Some(b) = best.map(|(_, _, b)| b).or(local) {
                let predicted = self.predicted_duration(t, b);
                let staging = predicted - self.estimate(t, b);
                self.start(t, b, now, predicted, staging);
                out.push(Assignment { task: t, builder: b });
            }
        }
        out
    }

    /// When a running task is expected to free its slot, with the speed learned since it started.
    fn running_finish_estimate(&self, b: BuilderId, r: &Running, now: f64) -> f64 {
        (r.start + r.staging + self.estimate(r.task, b)).max(now)
    }

    fn start(&mut self, t: TaskId, b: BuilderId, now: f64, predicted: f64, staging: f64) {
        self.state[t] = State::Running(b);
        self.running[b].push(Running { task: t, start: now, predicted, staging });
        let locals: Vec<BuilderId> = (0..self.builders.len()).filter(|&i| self.builders[i].local).collect();
        let inputs = self.tasks[t].inputs.clone();
        for i in inputs {
            self.present[i].insert(b);
            self.present[i].extend(locals.iter().copied());
        }
    }

    fn stop(&mut self, task: TaskId, builder: BuilderId) -> Option<Running> {
        if self.state.get(task) != Some(&State::Running(builder)) {
            return None;
        }
        let list = &mut self.running[builder];
        let pos = list.iter().position(|r| r.task == task)?;
        Some(list.swap_remove(pos))
    }

    /// `task` finished on `builder` at `now` after `elapsed_s` seconds (measured). Its
    /// dependents may become ready; the builder's speed correction learns from the duration.
    /// Returns false (and changes nothing) when the task was not running there.
    pub fn finished(&mut self, task: TaskId, builder: BuilderId, now: f64, elapsed_s: f64) -> bool {
        self.advance(now);
        let Some(r) = self.stop(task, builder) else { return false };
        self.state[task] = State::Done;
        self.present[task].insert(builder);
        // Outputs are copied back to this machine's store after a remote build.
        for (i, b) in self.builders.iter().enumerate() {
            if b.local {
                self.present[task].insert(i);
            }
        }
        self.learn(task, builder, &r, elapsed_s);
        let deps = self.dependents[task].clone();
        for d in deps {
            self.missing_inputs[d] = self.missing_inputs[d].saturating_sub(1);
            if self.missing_inputs[d] == 0 && self.state[d] == State::Waiting {
                self.state[d] = State::Ready;
            }
        }
        true
    }

    fn advance(&mut self, now: f64) {
        if now.is_finite() && now > self.now {
            self.now = now;
        }
    }

    fn learn(&mut self, task: TaskId, builder: BuilderId, r: &Running, elapsed_s: f64) {
        if !self.learning {
            return;
        }
        let b = &self.builders[builder];
        let (Some(declared), Some((p, _))) = (b.exec_seconds(&self.tasks[task]), b.placement(&self.tasks[task].system))
        else {
            return;
        };
        if !(elapsed_s.is_finite() && declared > 0.0) {
            return;
        }
        let exec = (elapsed_s - r.staging).max(elapsed_s * 0.1);
        let ratio = (exec / declared).clamp(RATIO_RANGE.0, RATIO_RANGE.1);
        let k = pidx(p);
        let slot = &mut self.learned_log[builder][k];
        *slot = if self.samples[builder][k] == 0 {
            ratio.ln()
        } else {
            (1.0 - LEARN_WEIGHT) * *slot + LEARN_WEIGHT * ratio.ln()
        };
        self.samples[builder][k] += 1;
        self.pool_log[k] = if self.pool_samples[k] == 0 {
            ratio.ln()
        } else {
            (1.0 - LEARN_WEIGHT) * self.pool_log[k] + LEARN_WEIGHT * ratio.ln()
        };
        self.pool_samples[k] += 1;
    }

    /// `task` failed on `builder`: it goes back to the ready queue (the engine decides how
    /// often to retry). Returns false when the task was not running there.
    pub fn failed(&mut self, task: TaskId, builder: BuilderId, now: f64) -> bool {
        self.advance(now);
        if self.stop(task, builder).is_none() {
            return false;
        }
        self.state[task] = State::Ready;
        true
    }

    /// `task` failed for good on `builder` (a build failure when the build keeps going): it
    /// and every task that needs it, directly or not, are given up. Returns those dependents.
    pub fn abandon(&mut self, task: TaskId, builder: BuilderId, now: f64) -> Vec<TaskId> {
        self.advance(now);
        self.stop(task, builder);
        if !matches!(self.state.get(task), Some(State::Running(_) | State::Ready | State::Waiting)) {
            return Vec::new();
        }
        self.state[task] = State::Failed;
        let mut skipped = Vec::new();
        let mut stack = self.dependents[task].clone();
        while let Some(d) = stack.pop() {
            if matches!(self.state[d], State::Waiting | State::Ready) {
                self.state[d] = State::Failed;
                skipped.push(d);
                stack.extend(self.dependents[d].iter().copied());
            }
        }
        skipped.sort_unstable();
        skipped
    }

    /// `builder` is reachable again and takes work from the next dispatch on.
    pub fn builder_up(&mut self, builder: BuilderId) {
        if let Some(a) = self.alive.get_mut(builder) {
            *a = true;
        }
    }

    /// The history record of a finished run of `task` on `builder` that took `seconds`.
    pub fn history_record(&self, task: TaskId, builder: BuilderId, seconds: f64, output_bytes: u64) -> Option<Record> {
        let (t, b) = (self.tasks.get(task)?, self.builders.get(builder)?);
        let (_, slowdown) = b.placement(&t.system)?;
        Some(Record {
            name: t.name.clone(),
            host: b.name.clone(),
            strategy: strategy_label(t, b).as_str().to_string(),
            seconds,
            host_speed: b.speed,
            slowdown,
            output_bytes,
            at: unix_now(),
        })
    }

    /// `builder` is gone: its running tasks go back to the ready queue and are returned. Fails
    /// when some unfinished task has no capable builder left.
    pub fn builder_down(&mut self, builder: BuilderId, now: f64) -> Result<Vec<TaskId>> {
        self.advance(now);
        let Some(alive) = self.alive.get_mut(builder) else {
            return Err(ScheduleError::UnknownBuilder { builder }.into());
        };
        *alive = false;
        let requeued: Vec<TaskId> = self.running[builder].drain(..).map(|r| r.task).collect();
        for &t in &requeued {
            self.state[t] = State::Ready;
        }
        for p in &mut self.present {
            p.remove(&builder);
        }
        let open: Vec<Task> = self
            .tasks
            .iter()
            .zip(&self.state)
            .filter(|(_, s)| **s == State::Waiting || **s == State::Ready)
            .map(|(t, _)| t.clone())
            .collect();
        check_capable(&open, &self.builders, &self.alive)?;
        Ok(requeued)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ErrorKind;

    pub(crate) fn task(name: &str, work: f64, inputs: &[TaskId]) -> Task {
        Task {
            name: name.into(),
            system: "x86_64-linux".into(),
            required_features: vec![],
            inputs: inputs.to_vec(),
            work,
            output_bytes: 0,
            helpers: vec![],
        }
    }

    pub(crate) fn builder(name: &str, slots: u32, speed: f64, local: bool) -> BuilderModel {
        BuilderModel {
            name: name.into(),
            slots,
            native_systems: vec!["x86_64-linux".into()],
            emulated: BTreeMap::new(),
            speed,
            supported_features: vec![],
            mandatory_features: vec![],
            local,
            link_bytes_per_s: 1e8,
            dispatch_overhead_s: 0.0,
        }
    }

    #[test]
    fn no_capable_builder_names_task_system_and_hosts() {
        let mut t = task("rvbuild-linux-riscv64", 300.0, &[]);
        t.system = "riscv64-linux".into();
        let err = Scheduler::new(vec![t], vec![builder("localhost", 2, 1.0, true), builder("x1", 4, 2.0, false)])
            .err()
            .map(|e| (e.kind(), e.to_string()));
        let (kind, text) = err.unwrap_or((ErrorKind::Internal, String::new()));
        assert_eq!(kind, ErrorKind::Builder);
        assert!(text.contains("rvbuild-linux-riscv64"), "{text}");
        assert!(text.contains("riscv64-linux"), "{text}");
        assert!(text.contains("localhost: does not run riscv64-linux"), "{text}");
        assert!(text.contains("x1: does not run riscv64-linux"), "{text}");
    }

    #[test]
    fn missing_feature_and_zero_slots_are_reasons() {
        let mut t = task("big", 10.0, &[]);
        t.required_features = vec!["kvm".into()];
        let text = Scheduler::new(vec![t], vec![builder("a", 0, 1.0, true), builder("b", 2, 1.0, false)])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(text.contains("a: has no build slots"), "{text}");
        assert!(text.contains("b: lacks the required feature(s) kvm"), "{text}");
    }

    #[test]
    fn cycle_is_an_error() {
        let tasks = vec![task("a", 1.0, &[1]), task("b", 1.0, &[0])];
        assert!(Scheduler::new(tasks, vec![builder("l", 1, 1.0, true)]).is_err());
    }

    #[test]
    fn kernel_waits_for_the_fast_host_while_local_takes_short_jobs() {
        // x1 (fast, 1 slot) is busy with a short job; the kernel should wait for it rather
        // than start on the slow local machine, and the local machine takes the small jobs.
        let tasks = vec![task("warmup", 10.0, &[]), task("kernel", 1000.0, &[]), task("small", 5.0, &[])];
        let pool = vec![builder("local", 1, 1.0, true), builder("x1", 1, 4.0, false)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        // Occupy x1 with warmup first by dispatching only it.
        s.state[1] = State::Waiting;
        s.state[2] = State::Waiting;
        let first = s.dispatch(0.0);
        assert_eq!(first, vec![Assignment { task: 0, builder: 1 }]);
        s.state[1] = State::Ready;
        s.state[2] = State::Ready;
        let second = s.dispatch(0.0);
        assert_eq!(second, vec![Assignment { task: 2, builder: 0 }], "kernel must wait for x1");
        assert!(s.finished(0, 1, 2.5, 2.5));
        let third = s.dispatch(2.5);
        assert_eq!(third, vec![Assignment { task: 1, builder: 1 }]);
    }

    /// A split kernel on one of three builders and three short jobs, dispatched at 0.
    fn split_kernel(helpers: &[&str]) -> (Scheduler, Vec<Assignment>) {
        let mut kernel = task("kernel", 100.0, &[]);
        kernel.helpers = helpers.iter().map(|h| h.to_string()).collect();
        let tasks = vec![kernel, task("s1", 5.0, &[]), task("s2", 5.0, &[]), task("s3", 5.0, &[])];
        let pool = vec![builder("own", 2, 1.0, true), builder("a", 2, 1.0, false), builder("b", 2, 1.0, false)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        let first = s.dispatch(0.0);
        (s, first)
    }

    #[test]
    fn a_split_task_holds_its_helpers_slots_while_it_runs() {
        let (mut s, first) = split_kernel(&["a", "b"]);
        let owner = first.iter().find(|a| a.task == 0).map(|a| a.builder);
        assert_eq!(owner, Some(0), "{first:?}");
        // Only the owner's second slot takes a short job; a and b help the kernel.
        assert_eq!(first, vec![Assignment { task: 0, builder: 0 }, Assignment { task: 1, builder: 0 }]);
        assert_eq!(s.held_by(1, 0.0), Some((0, 100.0)));
        assert_eq!(s.held_by(2, 0.0), Some((0, 100.0)));
        assert_eq!(s.held_by(0, 0.0), None, "the owner is not its own helper");
        // The short job done, the next waits on the owner rather than taking a held helper.
        assert!(s.finished(1, 0, 5.0, 5.0));
        assert_eq!(s.dispatch(5.0), vec![Assignment { task: 2, builder: 0 }]);
        // The kernel done, the helpers are free again.
        assert!(s.finished(0, 0, 60.0, 60.0));
        assert_eq!(s.held_by(1, 60.0), None);
        assert_eq!(s.dispatch(60.0), vec![Assignment { task: 3, builder: 1 }]);
    }

    #[test]
    fn without_helpers_the_short_jobs_spread_at_once() {
        let (_, first) = split_kernel(&[]);
        let others: BTreeSet<BuilderId> = first.iter().filter(|a| a.task != 0).map(|a| a.builder).collect();
        assert_eq!(first.len(), 4, "{first:?}");
        assert!(others.contains(&1) || others.contains(&2), "{first:?}");
    }

    #[test]
    fn local_gets_work_when_it_finishes_earlier() {
        // A remote with a large dispatch overhead loses short jobs to the local machine.
        let tasks = (0..4).map(|i| task(&format!("p{i}"), 2.0, &[])).collect();
        let mut remote = builder("r", 8, 2.0, false);
        remote.dispatch_overhead_s = 5.0;
        let mut s =
            Scheduler::new(tasks, vec![builder("local", 4, 1.0, true), remote]).unwrap_or_else(|e| panic!("{e}"));
        let a = s.dispatch(0.0);
        assert_eq!(a.len(), 4);
        assert!(a.iter().all(|x| x.builder == 0), "{a:?}");
    }

    #[test]
    fn builder_down_requeues_and_errors_when_nobody_is_left() {
        let tasks = vec![task("a", 10.0, &[]), task("b", 10.0, &[0])];
        let mut s = Scheduler::new(tasks.clone(), vec![builder("l", 1, 1.0, true), builder("r", 1, 10.0, false)])
            .unwrap_or_else(|e| panic!("{e}"));
        let a = s.dispatch(0.0);
        assert_eq!(a, vec![Assignment { task: 0, builder: 1 }]);
        let back = s.builder_down(1, 0.5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, vec![0]);
        assert_eq!(s.dispatch(0.5), vec![Assignment { task: 0, builder: 0 }]);
        assert!(s.builder_down(0, 1.0).is_err_and(|e| e.kind() == ErrorKind::Builder));

        let mut s = Scheduler::new(tasks, vec![builder("r", 1, 1.0, false)]).unwrap_or_else(|e| panic!("{e}"));
        s.dispatch(0.0);
        let err = s.builder_down(0, 1.0).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("r: is down"), "{err}");
    }

    #[test]
    fn builder_up_again_takes_work_and_records_carry_the_host() {
        let mut s =
            Scheduler::new(vec![task("a", 10.0, &[]), task("b", f64::NAN, &[])], vec![builder("r", 2, 2.0, false)])
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.builder_down(0, 0.0).is_err());
        assert!(s.dispatch(0.0).is_empty());
        s.builder_up(0);
        assert_eq!(s.dispatch(1.0).len(), 2);
        assert_eq!(s.estimate(1, 0), 0.0);
        let r = s.history_record(0, 0, 5.0, 42).unwrap_or_else(|| panic!("no record"));
        assert_eq!((r.name.as_str(), r.host.as_str(), r.strategy.as_str()), ("a", "r", "cross"));
        assert_eq!((r.seconds, r.host_speed, r.slowdown, r.output_bytes), (5.0, 2.0, 1.0, 42));
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random DAGs and random engine events (finishes with any duration, failures, builders
        /// going down and up): no panic, no task started twice at once, slots respected, and
        /// with the pool back every task finishes.
        #[test]
        fn random_events_keep_the_state_consistent(
            works in prop::collection::vec((0.0f64..100.0, 0usize..3), 1..25),
            events in prop::collection::vec((0u8..4, 0usize..1000, 0.0f64..300.0), 0..80),
        ) {
            let tasks: Vec<Task> = works
                .iter()
                .enumerate()
                .map(|(i, (w, k))| {
                    let inputs: Vec<TaskId> = if i == 0 { vec![] } else { vec![(i * 7 + k) % i] };
                    task(&format!("t{i}"), *w, &inputs)
                })
                .collect();
            let pool = vec![builder("l", 2, 1.0, true), builder("r1", 3, 2.0, false), builder("r2", 1, 0.5, false)];
            let mut s = Scheduler::new(tasks.clone(), pool.clone()).unwrap_or_else(|e| panic!("{e}"));
            let mut now = 0.0;
            let mut running: Vec<Assignment> = Vec::new();
            let mut down = [false; 3];
            for (kind, pick, dt) in events {
                now += dt / 10.0;
                running.extend(s.dispatch(now));
                for b in 0..3 {
                    prop_assert!(s.running_on(b).len() <= pool[b].slots as usize);
                    prop_assert!(!down[b] || s.running_on(b).is_empty());
                }
                match kind {
                    0 | 1 if !running.is_empty() => {
                        let a = running.swap_remove(pick % running.len());
                        if kind == 0 {
                            prop_assert!(s.finished(a.task, a.builder, now, dt));
                        } else {
                            prop_assert!(s.failed(a.task, a.builder, now));
                        }
                    }
                    2 => {
                        let b = pick % 3;
                        if !down[b] && down.iter().filter(|d| !**d).count() > 1 {
                            let back = s.builder_down(b, now);
                            prop_assert!(back.is_ok());
                            down[b] = true;
                            running.retain(|a| a.builder != b);
                        }
                    }
                    3 => {
                        let b = pick % 3;
                        s.builder_up(b);
                        down[b] = false;
                    }
                    _ => {}
                }
                let mut ids: Vec<TaskId> = running.iter().map(|a| a.task).collect();
                ids.sort_unstable();
                ids.dedup();
                prop_assert_eq!(ids.len(), running.len());
            }
            for b in 0..3 {
                s.builder_up(b);
            }
            for _ in 0..(4 * tasks.len() + 4) {
                if s.is_done() {
                    break;
                }
                running.extend(s.dispatch(now));
                let Some(a) = running.pop() else { break };
                now += 1.0;
                prop_assert!(s.finished(a.task, a.builder, now, 1.0));
            }
            prop_assert!(s.is_done());
        }
    }

    #[test]
    fn failed_task_is_requeued() {
        let mut s = Scheduler::new(vec![task("a", 1.0, &[])], vec![builder("l", 1, 1.0, true)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.dispatch(0.0).len(), 1);
        assert!(s.failed(0, 0, 1.0));
        assert!(!s.failed(0, 0, 1.0));
        assert_eq!(s.dispatch(1.0), vec![Assignment { task: 0, builder: 0 }]);
        assert!(s.finished(0, 0, 2.0, 1.0));
        assert!(s.is_done());
    }

    #[test]
    fn learning_moves_work_off_a_host_slower_than_declared() {
        // Both hosts are declared at speed 1; "slow" really takes 3.5x as long. Once one of its
        // builds has been measured, the kernel waits for "good" instead of taking the free "slow".
        let tasks =
            vec![task("s0", 10.0, &[]), task("s1", 10.0, &[]), task("s2", 30.0, &[]), task("kernel", 500.0, &[])];
        let pool = vec![builder("good", 1, 1.0, false), builder("slow", 1, 1.0, false)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        s.state[2] = State::Waiting;
        s.state[3] = State::Waiting;
        assert_eq!(s.dispatch(0.0), vec![Assignment { task: 0, builder: 0 }, Assignment { task: 1, builder: 1 }]);
        assert!(s.finished(0, 0, 10.0, 10.0));
        s.state[2] = State::Ready;
        assert_eq!(s.dispatch(10.0), vec![Assignment { task: 2, builder: 0 }]);
        assert!(s.finished(1, 1, 35.0, 35.0));
        assert!((s.speed_correction(1, Placement::Native) - 3.5).abs() < 1e-9);
        assert_eq!(s.speed_correction(0, Placement::Native), 1.0);
        assert_eq!(s.estimate(3, 1), 1750.0);
        s.state[3] = State::Ready;
        assert_eq!(s.dispatch(35.0), vec![], "the kernel must wait for the measured-faster host");
        assert!(s.finished(2, 0, 40.0, 30.0));
        assert_eq!(s.dispatch(40.0), vec![Assignment { task: 3, builder: 0 }]);
    }

    #[test]
    fn measured_transfers_replace_the_declared_link_throughput() {
        let mut t1 = task("big", 1.0, &[]);
        t1.output_bytes = 50_000_000;
        let tasks = vec![t1, task("user", 1.0, &[0])];
        let pool = vec![builder("local", 1, 1.0, true), builder("remote", 1, 1.0, false)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        // Declared 100 MB/s: 0.5 s to send task 0's 50 MB output to the remote.
        assert!((s.transfer_seconds(1, 1) - 0.5).abs() < 1e-9);
        s.link_measured(1, 10_000_000, 10.0); // measured 1 MB/s
        assert!((s.transfer_seconds(1, 1) - 50.0).abs() < 1e-6);
        s.link_measured(1, 1000, 100.0); // too small to say anything
        assert!((s.transfer_seconds(1, 1) - 50.0).abs() < 1e-6);
        s.link_measured(0, 10_000_000, 10.0); // the local machine has no link
        assert_eq!(s.transfer_seconds(1, 0), 0.0);
    }

    #[test]
    fn an_unmeasured_builder_is_assumed_as_far_off_as_the_pool() {
        // Every estimate is 5x too long. After one build on "a", "b" (nothing measured yet)
        // must not look 5x slower than "a": the next ready task goes to the free "b" instead of
        // waiting for "a".
        let tasks = vec![task("p0", 10.0, &[]), task("p1", 10.0, &[]), task("p2", 10.0, &[])];
        let pool = vec![builder("a", 1, 1.0, false), builder("b", 1, 1.0, false)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        s.state[1] = State::Waiting;
        s.state[2] = State::Waiting;
        assert_eq!(s.dispatch(0.0), vec![Assignment { task: 0, builder: 0 }]);
        assert!(s.finished(0, 0, 2.0, 2.0));
        assert!((s.speed_correction(1, Placement::Native) - 0.2).abs() < 1e-9);
        s.state[1] = State::Ready;
        s.state[2] = State::Ready;
        let d = s.dispatch(2.0);
        assert_eq!(d.len(), 2, "both builders get work: {d:?}");
    }

    #[test]
    fn learning_is_an_average_not_the_last_sample() {
        let tasks = (0..3).map(|i| task(&format!("p{i}"), 10.0, &[])).collect();
        let mut s = Scheduler::new(tasks, vec![builder("b", 2, 1.0, false)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.dispatch(0.0).len(), 2);
        assert!(s.finished(0, 0, 20.0, 20.0));
        // Task 1 still runs at twice its prediction: that alone shows a factor of 2.
        assert_eq!(s.speed_correction(0, Placement::Native), 2.0);
        assert!(s.finished(1, 0, 20.0, 10.0));
        let c = s.speed_correction(0, Placement::Native);
        assert!((c - 2f64.sqrt()).abs() < 1e-9, "{c}");
        // An absurd measurement is clamped.
        assert_eq!(s.dispatch(20.0).len(), 1);
        assert!(s.finished(2, 0, 1e9, 1e9));
        assert!(s.speed_correction(0, Placement::Native) <= 50.0);
    }

    #[test]
    fn emulated_placement_uses_the_slowdown() {
        let mut t = task("hello-riscv64", 10.0, &[]);
        t.system = "riscv64-linux".into();
        let mut emu = builder("x86", 4, 2.0, true);
        emu.emulated.insert("riscv64-linux".into(), 10.0);
        let mut native = builder("rv", 1, 0.5, false);
        native.native_systems = vec!["riscv64-linux".into()];
        let mut s = Scheduler::new(vec![t], vec![emu, native]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.estimate(0, 0), 50.0);
        assert_eq!(s.estimate(0, 1), 20.0);
        assert_eq!(s.placement(0, 0), Some(Placement::Emulated));
        assert_eq!(s.dispatch(0.0), vec![Assignment { task: 0, builder: 1 }]);
    }

    #[test]
    fn transfers_count_for_remote_inputs() {
        let mut a = task("toolchain", 10.0, &[]);
        a.output_bytes = 1_000_000_000;
        let b = task("user", 10.0, &[0]);
        let mut r = builder("r", 1, 1.0, false);
        r.link_bytes_per_s = 1e8;
        let mut s = Scheduler::new(vec![a, b], vec![builder("l", 1, 1.0, true), r]).unwrap_or_else(|e| panic!("{e}"));
        s.dispatch(0.0);
        assert!(s.finished(0, 0, 10.0, 10.0));
        assert_eq!(s.transfer_seconds(1, 1), 10.0);
        assert_eq!(s.transfer_seconds(1, 0), 0.0);
    }

    #[test]
    fn forecast_replays_the_rest_and_learns_from_completions() {
        // a, b independent (10 s each), c needs both (10 s); two single-slot builders.
        let tasks = vec![task("a", 10.0, &[]), task("b", 10.0, &[]), task("c", 10.0, &[0, 1])];
        let pool = vec![builder("l", 1, 1.0, true), builder("r", 1, 1.0, true)];
        let mut s = Scheduler::new(tasks, pool).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.forecast(0.0), Some(20.0), "before anything starts");
        let started = s.dispatch(0.0);
        assert_eq!(started.len(), 2);
        assert_eq!(s.forecast(0.0), Some(20.0));
        // a took twice its estimate: the pool is learned to be slower, so c will be too, and
        // b (still running) is predicted with the learned speed.
        let on = |t: TaskId| started.iter().find(|x| x.task == t).map(|x| x.builder).unwrap_or(0);
        assert!(s.finished(0, on(0), 20.0, 20.0));
        let f = s.forecast(20.0).unwrap_or(0.0);
        assert!(f >= 20.0 + 19.9, "c should be predicted at about 20 s now, ends at {f}");
        // The replay changed nothing in the scheduler itself.
        assert_eq!(s.running_on(on(1)), vec![1]);
        assert!(!s.is_done());
    }

    #[test]
    fn forecast_counts_overdue_builds_and_is_none_without_builders() {
        let tasks = vec![task("a", 10.0, &[]), task("b", 5.0, &[0])];
        let mut s = Scheduler::new(tasks, vec![builder("l", 1, 1.0, true)]).unwrap_or_else(|e| panic!("{e}"));
        s.dispatch(0.0);
        // 30 s in, a is still running: it ends no earlier than now, b after it.
        let f = s.forecast(30.0).unwrap_or(0.0);
        assert!(f >= 35.0, "{f}");
        assert!(s.builder_down(0, 31.0).is_err());
        assert_eq!(s.forecast(31.0), None);
    }

    #[test]
    fn abandon_gives_up_the_task_and_what_needs_it_and_the_rest_goes_on() {
        // a -> c -> d, b independent.
        let tasks = vec![task("a", 1.0, &[]), task("b", 1.0, &[]), task("c", 1.0, &[0]), task("d", 1.0, &[2])];
        let mut s = Scheduler::new(tasks, vec![builder("l", 2, 1.0, true)]).unwrap_or_else(|e| panic!("{e}"));
        let started = s.dispatch(0.0);
        assert_eq!(started.len(), 2);
        assert_eq!(s.abandon(0, 0, 1.0), vec![2, 3]);
        assert!(!s.is_done(), "b still runs");
        assert_eq!(s.forecast(1.0).map(|f| f >= 1.0), Some(true));
        assert!(s.finished(1, 0, 1.0, 1.0));
        assert!(s.dispatch(1.0).is_empty(), "c and d are never started");
        assert!(s.is_done());
        assert!(s.abandon(0, 0, 2.0).is_empty(), "a second time changes nothing");
    }
}
