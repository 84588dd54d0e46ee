//! The build engine: builds the needed part of a derivation DAG over a pool of builders
//! (the local machine among them), each reached through a [`Transport`] speaking Nix's serve
//! protocol. A [`Policy`] decides what runs where; the engine uploads each derivation's input
//! closure, runs BuildDerivation, fetches the outputs back into the local store, streams
//! logs, and handles faults: a builder whose connection fails is marked down and its work
//! goes elsewhere (it is tried again with backoff for as long as the run goes on, and rejoins
//! the pool when it answers); one that sends an output not matching its hash, or whose disk
//! is full, is left out for the rest of the run, and a download that broke off leaves nothing
//! in the local store; a real build failure stops the build with the log's last lines and the
//! host it ran on; Ctrl-C closes every session (which ends the remote builds) and returns
//! exit code 130.

pub mod components;
mod conn;
pub mod connect;
pub mod error;
mod faults;
pub mod policy;
pub mod split;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinSet;

use crate::builders::history::{History, Record};
use crate::nix::copy::{CopyMethod, copy_closure_observed, fetch_outputs_observed};
use crate::nix::dag::{Dag, DagNode};
use crate::nix::serve::{BuildOptions, BuildResult, BuildStatus, ServeClient};
use crate::nix::store_path::StorePath;
use crate::schedule::{BuilderId, BuilderModel, Task, TaskId};
use crate::transport::{FailureClass, Transport};
use crate::vocab::{Event, Reporter, Strategy};
use crate::{Error, Result};

use conn::{Conn, Idle};
use error::BuildError;
pub use policy::Policy;

/// A builder of the pool: how the scheduler sees it and how to reach it.
pub struct Member {
    pub model: BuilderModel,
    pub transport: Arc<dyn Transport>,
}

/// What to build: the DAG nodes whose outputs are missing locally and are needed for the
/// roots, as scheduler tasks (task `k` is node `nodes[k]`).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub nodes: Vec<usize>,
    pub tasks: Vec<Task>,
    /// Nodes whose outputs are all valid locally already.
    pub cached: BTreeSet<usize>,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-derivation build logs go here (`NAME.log`).
    pub log_dir: PathBuf,
    /// max-silent-time, timeout, log size: sent with each BuildDerivation.
    pub build: BuildOptions,
    /// Attempts per derivation when builders fail (not the build itself).
    pub max_attempts: u32,
    /// Labels for events and logs, by .drv path (board components); else the derivation name.
    pub labels: BTreeMap<String, String>,
    /// Strategy label per .drv path for events (`cross`, `native`, `emulated`); else by placement.
    pub strategies: BTreeMap<String, Strategy>,
    /// Let builders substitute missing inputs from their own caches (builders-use-substitutes).
    pub builders_use_substitutes: bool,
    /// Reconnection attempts (doubling delays from 1 s) that work only a lost builder can do
    /// waits for before the run gives up. While other work runs, a lost builder keeps being
    /// tried (every 10 s at most) and rejoins the pool when it answers.
    pub reconnect_attempts: u32,
    /// Also simulate the schedule on the estimates, to compare with the measured one
    /// ([`Outcome::schedules`]).
    pub predict: bool,
    /// A failed build does not stop the run: what does not need it goes on, and the run
    /// fails at the end with the first failure (`nix-build --keep-going`).
    pub keep_going: bool,
    /// Derivations whose compile is spread over helpers with distcc, and the helpers.
    pub split: split::SplitConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_dir: PathBuf::from("logs"),
            build: BuildOptions::default(),
            max_attempts: 3,
            labels: BTreeMap::new(),
            strategies: BTreeMap::new(),
            builders_use_substitutes: false,
            reconnect_attempts: 4,
            predict: false,
            keep_going: false,
            split: split::SplitConfig::default(),
        }
    }
}

/// One derivation built in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub drv: String,
    pub label: String,
    pub outputs: Vec<String>,
    pub host: String,
    /// `native` or `emulated` (by placement) unless the caller gave a strategy.
    pub strategy: Strategy,
    pub seconds: f64,
    /// Seconds since the run started.
    pub started: f64,
    pub log: PathBuf,
    /// How its compile was split over helpers, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<split::SplitReport>,
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Built derivations by .drv path.
    pub built: BTreeMap<String, Built>,
    pub cached: BTreeSet<String>,
    pub seconds: f64,
    /// Builders that went down during the run, with the reason.
    pub lost: Vec<(String, String)>,
    /// Measured durations for the build history.
    pub records: Vec<Record>,
    /// When each task ran where (seconds since the start), for the Gantt chart.
    pub runs: Vec<crate::schedule::simulate::Run>,
    /// The predicted and the measured schedule, when [`Options::predict`] asked for them.
    pub schedules: Option<Schedules>,
}

/// The schedule predicted before the build and the one measured during it.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub predicted: crate::schedule::simulate::Schedule,
    pub predicted_makespan: f64,
    pub measured: crate::schedule::simulate::Schedule,
}

/// Finds what must be built for the outputs of the DAG's roots, as scheduler tasks with
/// estimated work and output sizes (from `history` when it knows the derivation).
pub async fn prepare(dag: &Dag, local: &dyn Transport, history: Option<&History>) -> Result<Prepared> {
    let mut client = ServeClient::connect(local.open_serve().await?, None).await?;
    let mut outputs: Vec<StorePath> = Vec::new();
    for node in dag.nodes() {
        for o in node.drv.outputs.values() {
            if let Ok(p) = StorePath::parse(&o.path) {
                outputs.push(p);
            }
        }
    }
    let valid = client.query_valid_paths(&outputs, false, false).await?;
    let is_cached = |i: usize| {
        let node = dag.node(i);
        !node.drv.outputs.is_empty()
            && node.drv.outputs.values().all(|o| StorePath::parse(&o.path).is_ok_and(|p| valid.contains(&p)))
    };
    let mut cached = BTreeSet::new();
    let mut needed = BTreeSet::new();
    let mut stack: Vec<usize> = dag.roots().to_vec();
    while let Some(i) = stack.pop() {
        if needed.contains(&i) || cached.contains(&i) {
            continue;
        }
        if is_cached(i) {
            cached.insert(i);
            continue;
        }
        needed.insert(i);
        stack.extend(dag.node(i).inputs.iter().copied());
    }
    let nodes: Vec<usize> = dag.topo_order().iter().copied().filter(|i| needed.contains(i)).collect();
    let tasks = crate::schedule::tasks_from_dag(dag, &nodes, history);
    Ok(Prepared { nodes, tasks, cached })
}

/// Everything the jobs share.
struct Shared {
    dag: Arc<Dag>,
    members: Vec<Member>,
    idle: Vec<Idle>,
    /// Serialises uploads to one builder: Nix's AddToStoreNar does not read the NAR when the
    /// path became valid meanwhile, which would put the session out of step.
    upload: Vec<AsyncMutex<()>>,
    local: Arc<dyn Transport>,
    local_idle: Idle,
    /// The same for imports into the local store.
    import: AsyncMutex<()>,
    events: mpsc::UnboundedSender<Event>,
    opts: Options,
}

/// Why a job did not produce its outputs.
enum JobError {
    /// The builder failed (connection, protocol, transfer): try elsewhere.
    Builder(Error),
    /// The build ran and failed.
    Build { result: BuildResult, log_tail: String },
    /// Nothing another builder could fix (a derivation rvbuild cannot send, a log file it cannot write).
    Fatal(Error),
}

struct JobDone {
    task: TaskId,
    builder: BuilderId,
    started: f64,
    elapsed: f64,
    result: std::result::Result<JobOk, JobError>,
}

/// A derivation built: its output paths, their NAR size, and the transfers it took (bytes,
/// seconds) to and from a remote builder.
struct JobOk {
    outputs: Vec<String>,
    bytes: u64,
    transfers: Vec<(u64, f64)>,
    split: Option<split::SplitReport>,
}

fn label_of(shared: &Shared, node: &DagNode) -> String {
    shared.opts.labels.get(node.drv_path.as_str()).cloned().unwrap_or_else(|| node.drv_path.drv_name().to_string())
}

fn strategy_of(shared: &Shared, node: &DagNode, b: &BuilderModel) -> Strategy {
    if let Some(&s) = shared.opts.strategies.get(node.drv_path.as_str()) {
        return s;
    }
    if b.native_systems.contains(&node.drv.platform) || node.drv.platform == "builtin" {
        Strategy::Native
    } else {
        Strategy::Emulated
    }
}

/// Drops terminal escape sequences (Nix colours its error messages).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: parameters and intermediates, then one final byte in @..~
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC (hyperlinks): up to BEL or ESC \
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                        if c == '\x1b' {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    strip_ansi(&lines[lines.len().saturating_sub(n)..].join("\n"))
}

/// Starts splitting the node's compile over the helpers when it is to be split; a split that
/// cannot start is reported and the derivation builds as it is (the output is the same).
async fn start_split(shared: &Shared, node: &DagNode, builder: BuilderId) -> Option<split::Session> {
    let cfg = &shared.opts.split;
    if !cfg.drvs.contains(node.drv_path.as_str()) {
        return None;
    }
    let member = &shared.members[builder];
    let label = label_of(shared, node);
    let note = |why: String| {
        let _ = shared
            .events
            .send(Event::Note { text: format!("{label}: builds unsplit on {}: {why}", member.model.name) });
    };
    if !node.drv.env.contains_key(split::HOOK_ATTR) {
        note(format!("its builder does not read the helper list (no `{}`)", split::HOOK_ATTR));
        return None;
    }
    let Some(key) = node.drv.outputs.get("out").and_then(|o| split::key_of(&o.path)) else {
        note("it has no `out` output with a store path".into());
        return None;
    };
    let Some(prefix) = node.drv.env.get("crossPrefix") else {
        note("it names no cross compiler (crossPrefix)".into());
        return None;
    };
    let compiler = format!("{prefix}gcc");
    let owner = &member.model.name;
    match split::start(member.transport.clone(), owner, &key, &compiler, &cfg.helpers, &shared.events).await {
        Ok(s) => Some(s),
        Err(why) => {
            note(why);
            None
        }
    }
}

async fn job(shared: Arc<Shared>, node_index: usize, builder: BuilderId) -> std::result::Result<JobOk, JobError> {
    let session = start_split(&shared, shared.dag.node(node_index), builder).await;
    let r = job_steps(shared, node_index, builder).await;
    let report = match session {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    r.map(|ok| JobOk { split: report, ..ok })
}

/// How long a failed build's session keeps writing to its log before the log's tail is read:
/// sshd forwards a command's stderr and stdout independently, so the last lines Nix wrote
/// before the result may arrive after it.
const LATE_LINES: Duration = Duration::from_millis(200);

/// Waits [`LATE_LINES`] after a build that ran and failed, before its session goes back (which
/// switches its log off).
async fn let_late_lines_in(result: Option<&BuildResult>) {
    if result.is_some_and(|r| !r.is_success()) {
        tokio::time::sleep(LATE_LINES).await;
    }
}

async fn job_steps(shared: Arc<Shared>, node_index: usize, builder: BuilderId) -> std::result::Result<JobOk, JobError> {
    let dag = &shared.dag;
    let node = dag.node(node_index);
    let member = &shared.members[builder];
    let label = label_of(&shared, node);
    let log = shared.opts.log_dir.join(format!("{label}.log"));
    let outputs: Vec<StorePath> = node.drv.outputs.values().filter_map(|o| StorePath::parse(&o.path).ok()).collect();
    if outputs.len() != node.drv.outputs.len() {
        return Err(JobError::Fatal(BuildError::FloatingOutputs { drv: node.drv_path.clone() }.into()));
    }
    let basic = dag.basic_derivation(node_index).map_err(JobError::Fatal)?;
    let events = &shared.events;
    let mut remote = shared.idle[builder].take(member.transport.as_ref(), events).await.map_err(JobError::Builder)?;
    let (result, bytes, transfers) = if member.model.local {
        remote.log_to(&label, &log).map_err(JobError::Fatal)?;
        let r = remote.client.build_derivation(&node.drv_path, &basic, &shared.opts.build).await;
        let_late_lines_in(r.as_ref().ok()).await;
        let mut bytes = 0;
        if r.as_ref().is_ok_and(|r| r.is_success())
            && let Ok(infos) = remote.client.query_path_infos(&outputs).await
        {
            bytes = infos.values().map(|i| i.nar_size).sum();
        }
        shared.idle[builder].give_back(remote);
        (r.map_err(JobError::Builder)?, bytes, Vec::new())
    } else {
        let mut local = match shared.local_idle.take(shared.local.as_ref(), events).await {
            Ok(c) => c,
            Err(e) => {
                shared.idle[builder].give_back(remote);
                return Err(JobError::Builder(e));
            }
        };
        let r =
            remote_steps(&shared, &mut local, &mut remote, builder, node_index, &basic, &outputs, &label, &log).await;
        let_late_lines_in(r.as_ref().ok().map(|(r, _, _)| r)).await;
        shared.idle[builder].give_back(remote);
        if r.is_ok() {
            shared.local_idle.give_back(local);
        } else {
            // A download that broke off (or was refused) may have left a half-written output
            // in the local store; the local session must end before it can be removed.
            drop(local);
            faults::discard_partial(shared.local.as_ref(), &outputs, events).await;
        }
        r?
    };
    if result.is_success() {
        return Ok(JobOk {
            outputs: outputs.iter().map(|p| p.as_str().to_string()).collect(),
            bytes,
            transfers,
            split: None,
        });
    }
    let log_tail = log_tail(&log, 25);
    // A build that failed for want of disk space is the builder's fault: try elsewhere.
    if let Some(e) = faults::disk_full(&label, &member.model.name, &result, &log_tail) {
        return Err(JobError::Builder(e));
    }
    Err(JobError::Build { result, log_tail })
}

#[allow(clippy::too_many_arguments)]
async fn remote_steps(
    shared: &Shared,
    local: &mut Conn,
    remote: &mut Conn,
    builder: BuilderId,
    node_index: usize,
    basic: &crate::nix::drv::BasicDerivation,
    outputs: &[StorePath],
    label: &str,
    log: &std::path::Path,
) -> std::result::Result<(BuildResult, u64, Vec<(u64, f64)>), JobError> {
    let node = shared.dag.node(node_index);
    let inputs: Vec<StorePath> = shared.dag.input_paths(node_index).map_err(JobError::Fatal)?.into_iter().collect();
    let mut transfers = Vec::new();
    let host = &shared.members[builder].model.name;
    {
        let _guard = shared.upload[builder].lock().await;
        if shared.opts.builders_use_substitutes && !inputs.is_empty() {
            // Ask the builder to substitute what it can before we upload the rest.
            let _ = remote.client.query_valid_paths(&inputs, true, true).await.map_err(JobError::Builder)?;
        }
        let mut copy = CopyEvents::new(&shared.events, label, host, "upload");
        // A NAR of the local store that does not match its own hash is not the builder's fault.
        let up =
            copy_closure_observed(&mut local.client, &mut remote.client, &inputs, CopyMethod::Auto, &mut |d, t| {
                copy.progress(d, t)
            })
            .await
            .map_err(|e| fault_of(e, FailureClass::WrongOutput))?;
        transfers.push((up.bytes, copy.done(up.bytes)));
    }
    remote.log_to(label, log).map_err(JobError::Fatal)?;
    let result =
        remote.client.build_derivation(&node.drv_path, basic, &shared.opts.build).await.map_err(JobError::Builder)?;
    let mut bytes = 0;
    // A failed build's session keeps its log on: its last lines may still be on their way.
    if result.is_success() {
        remote.log_off();
        let _guard = shared.import.lock().await;
        let mut copy = CopyEvents::new(&shared.events, label, host, "download");
        // A full local store is not the builder's fault either.
        bytes = fetch_outputs_observed(&mut remote.client, &mut local.client, outputs, &mut |d, t| copy.progress(d, t))
            .await
            .map_err(|e| fault_of(e, FailureClass::StoreFull))?
            .bytes;
        transfers.push((bytes, copy.done(bytes)));
    }
    Ok((result, bytes, transfers))
}

/// A failed transfer: the builder's fault, unless its class is `local_class`, which in this
/// direction means the local store is at fault and no other builder would help.
fn fault_of(e: Error, local_class: FailureClass) -> JobError {
    if e.failure_class() == Some(local_class) { JobError::Fatal(e) } else { JobError::Builder(e) }
}

/// The `copy` events of one transfer: its start, progress at most every half second, its end.
struct CopyEvents<'a> {
    events: &'a mpsc::UnboundedSender<Event>,
    component: &'a str,
    host: &'a str,
    direction: &'static str,
    t0: Instant,
    shown: Option<Instant>,
    total: u64,
}

impl<'a> CopyEvents<'a> {
    fn new(
        events: &'a mpsc::UnboundedSender<Event>,
        component: &'a str,
        host: &'a str,
        direction: &'static str,
    ) -> Self {
        CopyEvents { events, component, host, direction, t0: Instant::now(), shown: None, total: 0 }
    }

    fn send(&self, bytes: u64, done: bool) {
        let _ = self.events.send(Event::Copy {
            component: self.component.to_string(),
            host: self.host.to_string(),
            direction: self.direction.to_string(),
            bytes,
            total: self.total.max(bytes),
            seconds: self.t0.elapsed().as_secs_f64(),
            done,
        });
    }

    fn progress(&mut self, bytes: u64, total: u64) {
        self.total = total;
        if self.shown.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            self.shown = Some(Instant::now());
            self.send(bytes, false);
        }
    }

    /// Sends the last event; returns the transfer's seconds.
    fn done(&self, bytes: u64) -> f64 {
        self.send(bytes, true);
        self.t0.elapsed().as_secs_f64()
    }
}

/// Fails before anything builds when some derivation has no builder that can run it, naming
/// the derivation, its system and features, and why each builder was ruled out.
pub fn check_capable(tasks: &[Task], members: &[BuilderModel]) -> Result<()> {
    let mut problems = Vec::new();
    for t in tasks {
        if members.iter().any(|m| m.refusal(t).is_none()) {
            continue;
        }
        let features = if t.required_features.is_empty() {
            String::new()
        } else {
            format!(", needs {}", t.required_features.join(" "))
        };
        let mut text = format!("{} (system {}{features}) can be built by none of the builders:", t.name, t.system);
        if members.is_empty() {
            text.push_str(" the pool is empty");
        }
        for m in members {
            let why = m.refusal(t).unwrap_or_default();
            text.push_str(&format!("\n  {}: {why}", m.name));
        }
        problems.push(text);
        if problems.len() == 5 {
            break;
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    if problems.iter().any(|p| p.contains("rvbuild-userland-")) {
        problems.push(
            "(rvbuild-userland-*: a target-system derivation runs the Debian userland of scripts/setup-host.sh; a \
             builder offers it when it has the same userland at the same path, which `rvbuild builders probe` records)"
                .to_string(),
        );
    }
    Err(BuildError::NoCapableBuilder { problems }.into())
}

/// A builder that went down and is being retried.
struct Down {
    /// Failed reconnections so far; a builder that cannot come back starts at the limit.
    tries: u32,
    next_try: f64,
    in_flight: bool,
    /// It dropped off the network ([`FailureClass::may_come_back`]): keep trying it.
    may_come_back: bool,
}

/// The longest wait between two reconnection attempts of a lost builder, in seconds.
const RECONNECT_EVERY_MAX: f64 = 10.0;

/// Builds the prepared tasks. Returns when every task is built, a build fails, no capable
/// builder is left, or Ctrl-C arrives.
pub async fn run(
    dag: Arc<Dag>,
    prepared: &Prepared,
    members: Vec<Member>,
    policy: Box<dyn Policy>,
    local: Arc<dyn Transport>,
    opts: Options,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    std::fs::create_dir_all(&opts.log_dir).map_err(|source| BuildError::Log { path: opts.log_dir.clone(), source })?;
    let (etx, mut erx) = mpsc::unbounded_channel::<Event>();
    let nb = members.len();
    let shared = Arc::new(Shared {
        dag,
        idle: (0..nb).map(|_| Idle::default()).collect(),
        upload: (0..nb).map(|_| AsyncMutex::new(())).collect(),
        members,
        local,
        local_idle: Idle::default(),
        import: AsyncMutex::new(()),
        events: etx.clone(),
        opts,
    });
    let mut engine = Engine::new(shared, prepared, policy, reporter);
    let result = engine.pump(&mut erx).await;
    let outcome = engine.shut_down(etx, erx).await;
    result.map(|()| outcome)
}

/// The state of one [`run`]: the jobs and reconnections under way, the builders that are
/// down, and what has been built so far.
struct Engine<'a> {
    shared: Arc<Shared>,
    prepared: &'a Prepared,
    policy: Box<dyn Policy>,
    reporter: &'a dyn Reporter,
    start: Instant,
    jobs: JoinSet<JobDone>,
    reconnects: JoinSet<(BuilderId, Result<Conn>)>,
    down: BTreeMap<BuilderId, Down>,
    attempts: Vec<u32>,
    remaining: usize,
    /// Set when a lost builder left some task with nowhere to run; cleared if it comes back.
    stranded: Option<Error>,
    outcome: Outcome,
    forecast: Forecast,
    /// Build failures the run went on after (keep-going), first one first.
    failures: Vec<Error>,
}

/// When the scheduler's forecast was last sent, whether the schedule changed since, and how
/// long the last one took to compute (a large build's replay is not free: the engine spends at
/// most a tenth of its time on it).
#[derive(Default)]
struct Forecast {
    sent: Option<Instant>,
    changed: bool,
    cost: Duration,
}

/// A job that ended: its task, where and when it ran, and the names its events carry.
struct Ended {
    task: TaskId,
    builder: BuilderId,
    node_index: usize,
    started: f64,
    elapsed: f64,
    /// Seconds since the start of the run when the job was seen to end.
    now: f64,
    label: String,
    host: String,
}

impl<'a> Engine<'a> {
    /// Announces the plan and the queued derivations, and starts the clock.
    fn new(shared: Arc<Shared>, prepared: &'a Prepared, policy: Box<dyn Policy>, reporter: &'a dyn Reporter) -> Self {
        let n = prepared.tasks.len();
        let outcome = Outcome {
            cached: prepared.cached.iter().map(|&i| shared.dag.node(i).drv_path.as_str().to_string()).collect(),
            ..Outcome::default()
        };
        let slots: u32 = shared.members.iter().map(|m| m.model.slots).sum();
        reporter.event(&Event::Plan { derivations: n + prepared.cached.len(), slots: slots as usize });
        for m in &shared.members {
            reporter.event(&Event::Builder { host: m.model.name.clone(), slots: m.model.slots, local: m.model.local });
        }
        for &i in &prepared.nodes {
            let node = shared.dag.node(i);
            reporter
                .event(&Event::Queued { component: label_of(&shared, node), drv: node.drv_path.as_str().to_string() });
        }
        Engine {
            shared,
            prepared,
            policy,
            reporter,
            start: Instant::now(),
            jobs: JoinSet::new(),
            reconnects: JoinSet::new(),
            down: BTreeMap::new(),
            attempts: vec![0u32; n],
            remaining: n,
            stranded: None,
            outcome,
            forecast: Forecast::default(),
            failures: Vec::new(),
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The dispatch loop: starts what the policy assigns and what builders to retry, then
    /// waits for a job, a reconnection, a log event or a tick. Ends when all is built
    /// (`Ok`) or the run must stop (the error says why).
    async fn pump(&mut self, erx: &mut mpsc::UnboundedReceiver<Event>) -> Result<()> {
        loop {
            if self.remaining == 0 {
                return match self.failures.is_empty() {
                    true => Ok(()),
                    false => Err(self.failures.swap_remove(0)),
                };
            }
            if crate::vocab::cancel::interrupted() {
                return Err(BuildError::Interrupted.into());
            }
            let now = self.now();
            // Work with somewhere to go goes on while work stranded on a lost builder waits.
            self.dispatch(now);
            self.retry_down_builders(now);
            self.send_forecast(now);
            self.check_progress()?;
            tokio::select! {
                Some(joined) = self.jobs.join_next() => {
                    let done = joined.map_err(|source| BuildError::TaskFailed { source })?;
                    self.job_done(done)?;
                }
                Some(joined) = self.reconnects.join_next() => {
                    if let Ok((b, r)) = joined {
                        self.reconnected(b, r);
                    }
                }
                Some(ev) = erx.recv() => self.reporter.event(&ev),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Starts a job for each assignment the policy makes now: upload, BuildDerivation, fetch.
    fn dispatch(&mut self, now: f64) {
        for a in self.policy.dispatch(now) {
            let Some(&node_index) = self.prepared.nodes.get(a.task) else { continue };
            let Some(member) = self.shared.members.get(a.builder) else { continue };
            let node = self.shared.dag.node(node_index);
            self.reporter.event(&Event::Started {
                component: label_of(&self.shared, node),
                drv: node.drv_path.as_str().to_string(),
                host: member.model.name.clone(),
                strategy: strategy_of(&self.shared, node, &member.model).as_str().to_string(),
                estimate: self.policy.predicted_finish(a.task).map(|f| (f - now).max(0.0)),
            });
            self.forecast.changed = true;
            let shared = self.shared.clone();
            let start = self.start;
            self.jobs.spawn(async move {
                let t0 = Instant::now();
                let started = start.elapsed().as_secs_f64();
                let result = job(shared, node_index, a.builder).await;
                JobDone { task: a.task, builder: a.builder, started, elapsed: t0.elapsed().as_secs_f64(), result }
            });
        }
    }

    /// Sends the scheduler's forecast of the build's end when the schedule changed (at most
    /// once a second) and every few seconds anyway, so a build running late moves it.
    fn send_forecast(&mut self, now: f64) {
        let since = self.forecast.sent.map(|t| t.elapsed());
        let gap = |d: Duration| d.max(self.forecast.cost * 10);
        let due = match since {
            None => true,
            Some(d) => (self.forecast.changed && d >= gap(Duration::from_secs(1))) || d >= gap(Duration::from_secs(3)),
        };
        if !due {
            return;
        }
        let t0 = Instant::now();
        let end = self.policy.forecast(now);
        self.forecast = Forecast { sent: Some(Instant::now()), changed: false, cost: t0.elapsed() };
        let Some(end) = end else { return };
        let total = self.prepared.tasks.len();
        self.reporter.event(&Event::Forecast {
            remaining: (end - now).max(0.0),
            elapsed: now,
            finished: total - self.remaining,
            total,
        });
    }

    /// Tries to reconnect each lost builder whose backoff has passed. A builder that may come
    /// back is tried for as long as the run goes on (every [`RECONNECT_EVERY_MAX`] seconds at
    /// most), so a restarted builder rejoins the pool; [`Options::reconnect_attempts`] bounds
    /// only how long work that nobody else can do waits for it ([`Engine::check_progress`]).
    fn retry_down_builders(&mut self, now: f64) {
        for (&b, d) in self.down.iter_mut() {
            if !d.in_flight && d.may_come_back && d.next_try <= now {
                d.in_flight = true;
                let shared = self.shared.clone();
                self.reconnects.spawn(async move {
                    let member = &shared.members[b];
                    (b, Conn::open(member.transport.as_ref(), shared.events.clone()).await)
                });
            }
        }
    }

    /// Fails when nothing runs, nothing reconnects and no down builder is left to retry:
    /// the remaining tasks can never be placed.
    fn check_progress(&mut self) -> Result<()> {
        if self.jobs.is_empty() && self.reconnects.is_empty() {
            let retrying = self.down.values().any(|d| d.may_come_back && d.tries < self.shared.opts.reconnect_attempts);
            if !retrying {
                return Err(self
                    .stranded
                    .take()
                    .unwrap_or_else(|| BuildError::Unplaced { remaining: self.remaining }.into()));
            }
        }
        Ok(())
    }

    /// Handles a finished job; an error stops the run.
    fn job_done(&mut self, done: JobDone) -> Result<()> {
        let node_index = self.prepared.nodes[done.task];
        self.forecast.changed = true;
        let ended = Ended {
            task: done.task,
            builder: done.builder,
            node_index,
            started: done.started,
            elapsed: done.elapsed,
            now: self.now(),
            label: label_of(&self.shared, self.shared.dag.node(node_index)),
            host: self.shared.members[done.builder].model.name.clone(),
        };
        match done.result {
            Ok(ok) => {
                self.succeeded(&ended, ok);
                Ok(())
            }
            Err(JobError::Fatal(e)) => {
                self.report_finished(&ended, false);
                Err(e)
            }
            Err(JobError::Build { result, log_tail }) => self.build_failed(&ended, result, log_tail),
            Err(JobError::Builder(e)) => self.builder_failed(&ended, e),
        }
    }

    fn report_finished(&self, ended: &Ended, ok: bool) {
        self.reporter.event(&Event::Finished {
            component: ended.label.clone(),
            drv: self.shared.dag.node(ended.node_index).drv_path.as_str().to_string(),
            host: ended.host.clone(),
            seconds: ended.elapsed,
            ok,
            cached: false,
        });
    }

    /// Records a built derivation: events, measurements for the policy and the history, the
    /// run for the Gantt chart, and its [`Built`] entry.
    fn succeeded(&mut self, ended: &Ended, ok: JobOk) {
        let JobOk { outputs, bytes, transfers, split } = ok;
        let (task, builder) = (ended.task, ended.builder);
        self.report_finished(ended, true);
        for (b, secs) in transfers {
            self.policy.link_measured(builder, b, secs);
        }
        self.policy.output_measured(task, bytes);
        self.outcome.runs.push(crate::schedule::simulate::Run {
            task,
            builder,
            start: ended.started,
            finish: ended.started + ended.elapsed,
        });
        if let Some(r) = self.policy.history_record(task, builder, ended.elapsed, bytes) {
            self.outcome.records.push(r);
        }
        for p in &outputs {
            self.reporter.event(&Event::Output { component: ended.label.clone(), path: p.clone() });
        }
        self.policy.finished(task, builder, ended.now, ended.elapsed);
        self.remaining -= 1;
        let node = self.shared.dag.node(ended.node_index);
        let member = &self.shared.members[builder];
        self.outcome.built.insert(
            node.drv_path.as_str().to_string(),
            Built {
                drv: node.drv_path.as_str().to_string(),
                label: ended.label.clone(),
                outputs,
                host: ended.host.clone(),
                strategy: strategy_of(&self.shared, node, &member.model),
                seconds: ended.elapsed,
                started: ended.started,
                log: self.shared.opts.log_dir.join(format!("{}.log", ended.label)),
                split,
            },
        );
    }

    /// A build ran and failed: a transient failure is tried again while attempts are left,
    /// anything else stops the run with the log's last lines.
    fn build_failed(&mut self, ended: &Ended, result: BuildResult, log_tail: String) -> Result<()> {
        let (label, host) = (&ended.label, &ended.host);
        self.report_finished(ended, false);
        self.attempts[ended.task] += 1;
        if result.status == BuildStatus::TransientFailure && self.attempts[ended.task] < self.shared.opts.max_attempts {
            self.reporter.event(&Event::Note {
                text: format!("{label}: transient failure on {host}, trying again: {}", result.error_msg),
            });
            self.policy.failed(ended.task, ended.builder, ended.now);
            return Ok(());
        }
        let node = self.shared.dag.node(ended.node_index);
        let log = self.shared.opts.log_dir.join(format!("{label}.log"));
        let what = if self.shared.opts.labels.contains_key(node.drv_path.as_str()) {
            format!("component `{label}`")
        } else {
            label.clone()
        };
        let e: Error = BuildError::Failed {
            what,
            host: host.clone(),
            drv: node.drv_path.clone(),
            status: result.status,
            message: strip_ansi(result.error_msg.trim()),
            log_tail,
            log,
        }
        .into();
        if !self.shared.opts.keep_going {
            return Err(e);
        }
        self.failures.push(e);
        let skipped = self.policy.abandon(ended.task, ended.builder, ended.now);
        self.remaining -= 1 + skipped.len();
        for t in skipped {
            let node = self.shared.dag.node(self.prepared.nodes[t]);
            self.reporter.event(&Event::Note {
                text: format!("{} is not built: it needs {label}, which failed", label_of(&self.shared, node)),
            });
        }
        Ok(())
    }

    /// The builder failed a job (connection, protocol, transfer): the task goes elsewhere,
    /// the builder is marked down the first time, and the run stops when the task has used
    /// up its attempts.
    fn builder_failed(&mut self, ended: &Ended, e: Error) -> Result<()> {
        self.report_finished(ended, false);
        self.attempts[ended.task] += 1;
        self.policy.failed(ended.task, ended.builder, ended.now);
        let e = if self.down.contains_key(&ended.builder) {
            e
        } else {
            let Some(e) = self.mark_down(ended, e) else { return Ok(()) };
            e
        };
        if self.attempts[ended.task] >= self.shared.opts.max_attempts {
            return Err(BuildError::GaveUp {
                label: ended.label.clone(),
                attempts: self.attempts[ended.task],
                host: ended.host.clone(),
                last: Box::new(e),
            }
            .into());
        }
        Ok(())
    }

    /// Marks the job's builder down after `e`: its idle sessions are dropped, it is tried
    /// again with backoff if it only dropped off the network, and the policy moves its work.
    /// Gives `e` back, or `None` when that left some task with no builder: then `e` went
    /// into [`Engine::stranded`].
    fn mark_down(&mut self, ended: &Ended, e: Error) -> Option<Error> {
        let host = &ended.host;
        self.shared.idle[ended.builder].clear();
        // A builder set up wrong (host key, login, Nix), one that sent a wrong output and one
        // whose disk is full stay down: retrying cannot help. One that dropped off the
        // network (or failed in a way nobody classified) is tried again.
        let class = e.failure_class();
        let may_come_back = class.is_none_or(FailureClass::may_come_back);
        let tries = if may_come_back { 0 } else { self.shared.opts.reconnect_attempts };
        self.down.insert(ended.builder, Down { tries, next_try: ended.now + 1.0, in_flight: false, may_come_back });
        self.outcome.lost.push((host.clone(), e.to_string()));
        let why = match class {
            Some(FailureClass::WrongOutput) => "sent an output that does not match its hash; nothing of it was kept",
            Some(FailureClass::StoreFull) => "has no space left on its disk",
            Some(FailureClass::Setup) => "cannot be used as set up",
            Some(FailureClass::Unreachable) | None => "is down",
        };
        let then = if may_come_back { "" } else { " and is not used again in this run" };
        self.reporter.event(&Event::Note {
            text: format!("builder {host} {why} ({e}); its work goes to the other builders{then}"),
        });
        let Err(no_one) = self.policy.builder_down(ended.builder, ended.now) else { return Some(e) };
        self.stranded = Some(if class == Some(FailureClass::Setup) {
            // The builder's own error says what to fix (e.g. the host key).
            e
        } else {
            BuildError::Stranded { reason: Box::new(no_one), host: host.clone(), last: Box::new(e) }.into()
        });
        None
    }

    /// A reconnection ended: the builder is back (its session joins the idle ones), or its
    /// next try waits twice as long.
    fn reconnected(&mut self, b: BuilderId, r: Result<Conn>) {
        let now = self.now();
        let host = self.shared.members[b].model.name.clone();
        match r {
            Ok(conn) => {
                self.down.remove(&b);
                self.shared.idle[b].give_back(conn);
                self.policy.builder_up(b, now);
                self.stranded = None;
                self.reporter.event(&Event::Note { text: format!("builder {host} is back") });
            }
            Err(e) => {
                if let Some(d) = self.down.get_mut(&b) {
                    d.tries += 1;
                    d.in_flight = false;
                    d.next_try = now + f64::from(1u32 << d.tries.min(6)).min(RECONNECT_EVERY_MAX);
                    if d.tries == self.shared.opts.reconnect_attempts {
                        self.reporter.event(&Event::Note {
                            text: format!(
                                "builder {host} still does not answer ({e}); trying it every {RECONNECT_EVERY_MAX} s while \
                                 the other builders work"
                            ),
                        });
                    }
                }
            }
        }
    }

    /// Ends the run (done, failed or Ctrl-C): stops the jobs, closes every session (which
    /// ends the remote builds), lets local nix-store processes stop, removes what a stopped
    /// download left in the local store, reports the last events.
    async fn shut_down(self, etx: mpsc::UnboundedSender<Event>, mut erx: mpsc::UnboundedReceiver<Event>) -> Outcome {
        let Engine { shared, prepared, mut jobs, mut reconnects, reporter, start, mut outcome, .. } = self;
        jobs.abort_all();
        reconnects.abort_all();
        while jobs.join_next().await.is_some() {}
        // Outputs of what did not finish: a download stopped here may have left one half-written.
        let unfinished: Vec<StorePath> = prepared
            .nodes
            .iter()
            .map(|&i| shared.dag.node(i))
            .filter(|node| !outcome.built.contains_key(node.drv_path.as_str()))
            .flat_map(|node| node.drv.outputs.values().filter_map(|o| StorePath::parse(&o.path).ok()))
            .collect();
        let local = shared.local.clone();
        drop(shared);
        // Sessions are closed now; give local nix-store processes the moment they need to stop
        // their builds (killing them outright would leave the builder processes running).
        let deadline = Instant::now() + Duration::from_secs(5);
        while crate::vocab::cancel::running_children() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        faults::discard_partial(local.as_ref(), &unfinished, &etx).await;
        drop(etx);
        while let Ok(ev) = erx.try_recv() {
            reporter.event(&ev);
        }
        outcome.seconds = start.elapsed().as_secs_f64();
        outcome
    }
}

/// The whole flow for a set of root derivations: what is missing locally, estimates from the
/// build history, the list scheduler over `members` and the build. The measured durations
/// come back in [`Outcome::records`] for the caller to keep in its history.
/// Gives each task to be split its helpers, so the scheduler holds their slots while it runs.
pub fn mark_split(prepared: &mut Prepared, dag: &Dag, split: &split::SplitConfig) {
    let names: Vec<String> = split.helpers.iter().map(|h| h.name.clone()).collect();
    for (task, &node) in prepared.tasks.iter_mut().zip(&prepared.nodes) {
        if split.drvs.contains(dag.node(node).drv_path.as_str()) {
            task.helpers = names.clone();
        }
    }
}

pub async fn build_roots(
    dag: Arc<Dag>,
    members: Vec<Member>,
    local: Arc<dyn Transport>,
    hist: &History,
    opts: Options,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    if let Some(w) = hist.warning() {
        reporter.event(&Event::Note { text: w.to_string() });
    }
    let mut prepared = prepare(&dag, local.as_ref(), Some(hist)).await?;
    mark_split(&mut prepared, &dag, &opts.split);
    let models: Vec<BuilderModel> = members.iter().map(|m| m.model.clone()).collect();
    check_capable(&prepared.tasks, &models)?;
    let policy: Box<dyn Policy> =
        Box::new(crate::schedule::online::Scheduler::new(prepared.tasks.clone(), models.clone())?);
    let predicted = match opts.predict {
        true => Some(crate::schedule::simulate::simulate(
            &prepared.tasks,
            &models,
            crate::schedule::simulate::SimPolicy::Rvbuild,
        )?),
        false => None,
    };
    let mut outcome = run(dag, &prepared, members, policy, local, opts, reporter).await?;
    if let Some(pred) = predicted {
        let measured = crate::schedule::simulate::Schedule::from_runs(&prepared.tasks, &models, &outcome.runs);
        outcome.schedules = Some(Schedules { predicted: pred.schedule, predicted_makespan: pred.makespan, measured });
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn strip_ansi_drops_colours_and_hyperlinks() {
        assert_eq!(
            strip_ansi("\x1b[0mbuilder for '\x1b[35;1m/nix/store/x\x1b[0m' failed"),
            "builder for '/nix/store/x' failed"
        );
        assert_eq!(strip_ansi("a \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ b"), "a link b");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("cut \x1b["), "cut ");
    }
}
