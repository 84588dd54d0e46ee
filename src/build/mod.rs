//! The build engine: builds the needed part of a derivation DAG over a pool of builders
//! (the local machine among them), each reached through a [`Transport`] speaking Nix's serve
//! protocol. A [`Policy`] decides what runs where; the engine uploads each derivation's input
//! closure, runs BuildDerivation, fetches the outputs back into the local store, streams
//! logs, and handles faults: a builder whose connection fails is marked down and its work
//! goes elsewhere (it is tried again with backoff), a real build failure stops the build
//! with the log's last lines and the host it ran on, Ctrl-C closes every session (which ends
//! the remote builds) and returns exit code 130.

pub mod components;
mod conn;
pub mod connect;
pub mod policy;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinSet;

use crate::builders::history::{History, Record};
use crate::nix::copy::copy_closure;
use crate::nix::dag::{Dag, DagNode};
use crate::nix::serve::{BuildOptions, BuildResult, BuildStatus, ServeClient};
use crate::nix::store_path::StorePath;
use crate::schedule::{BuilderId, BuilderModel, Task, TaskId};
use crate::transport::Transport;
use crate::vocab::{Event, Reporter, Strategy};
use crate::{Error, ErrorKind, Result};

use conn::{Conn, Idle};
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
    /// Reconnection attempts of a builder that went down, with doubling delays from 1 s.
    pub reconnect_attempts: u32,
    /// Also simulate the schedule on the estimates, to compare with the measured one
    /// ([`Outcome::schedules`]).
    pub predict: bool,
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

async fn job(shared: Arc<Shared>, node_index: usize, builder: BuilderId) -> std::result::Result<JobOk, JobError> {
    let dag = &shared.dag;
    let node = dag.node(node_index);
    let member = &shared.members[builder];
    let label = label_of(&shared, node);
    let log = shared.opts.log_dir.join(format!("{label}.log"));
    let outputs: Vec<StorePath> = node.drv.outputs.values().filter_map(|o| StorePath::parse(&o.path).ok()).collect();
    if outputs.len() != node.drv.outputs.len() {
        return Err(JobError::Fatal(Error::msg(
            ErrorKind::Build,
            format!(
                "{} has outputs without fixed paths (content-addressed derivations are not supported yet)",
                node.drv_path
            ),
        )));
    }
    let basic = dag.basic_derivation(node_index).map_err(JobError::Fatal)?;
    let events = &shared.events;
    let mut remote = shared.idle[builder].take(member.transport.as_ref(), events).await.map_err(JobError::Builder)?;
    let (result, bytes, transfers) = if member.model.local {
        remote.log_to(&label, &log).map_err(JobError::Fatal)?;
        let r = remote.client.build_derivation(&node.drv_path, &basic, &shared.opts.build).await;
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
        shared.idle[builder].give_back(remote);
        shared.local_idle.give_back(local);
        r?
    };
    if result.is_success() {
        return Ok(JobOk { outputs: outputs.iter().map(|p| p.as_str().to_string()).collect(), bytes, transfers });
    }
    // Late stderr lines may still be on their way to the log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(JobError::Build { result, log_tail: log_tail(&log, 25) })
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
    {
        let _guard = shared.upload[builder].lock().await;
        if shared.opts.builders_use_substitutes && !inputs.is_empty() {
            // Ask the builder to substitute what it can before we upload the rest.
            let _ = remote.client.query_valid_paths(&inputs, true, true).await.map_err(JobError::Builder)?;
        }
        let t0 = Instant::now();
        let up = copy_closure(&mut local.client, &mut remote.client, &inputs).await.map_err(JobError::Builder)?;
        transfers.push((up.bytes, t0.elapsed().as_secs_f64()));
    }
    remote.log_to(label, log).map_err(JobError::Fatal)?;
    let result =
        remote.client.build_derivation(&node.drv_path, basic, &shared.opts.build).await.map_err(JobError::Builder)?;
    remote.log_off();
    let mut bytes = 0;
    if result.is_success() {
        let _guard = shared.import.lock().await;
        let t0 = Instant::now();
        bytes = copy_closure(&mut remote.client, &mut local.client, outputs).await.map_err(JobError::Builder)?.bytes;
        transfers.push((bytes, t0.elapsed().as_secs_f64()));
    }
    Ok((result, bytes, transfers))
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
    Err(Error::with_help(
        ErrorKind::Builder,
        problems.join("\n"),
        "add a builder for that system (--builders 'ssh://host SYSTEM ...'), enable emulation (extra-platforms + binfmt), or drop --only/--exclude/--local-jobs 0",
    ))
}

/// A builder that went down and is being retried.
struct Down {
    tries: u32,
    next_try: f64,
    in_flight: bool,
}

/// Builds the prepared tasks. Returns when every task is built, a build fails, no capable
/// builder is left, or Ctrl-C arrives.
pub async fn run(
    dag: Arc<Dag>,
    prepared: &Prepared,
    members: Vec<Member>,
    mut policy: Box<dyn Policy>,
    local: Arc<dyn Transport>,
    opts: Options,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    std::fs::create_dir_all(&opts.log_dir).map_err(|e| Error::io(ErrorKind::Build, opts.log_dir.display(), e))?;
    let n = prepared.tasks.len();
    let (etx, mut erx) = mpsc::unbounded_channel::<Event>();
    let nb = members.len();
    let shared = Arc::new(Shared {
        dag: dag.clone(),
        idle: (0..nb).map(|_| Idle::default()).collect(),
        upload: (0..nb).map(|_| AsyncMutex::new(())).collect(),
        members,
        local,
        local_idle: Idle::default(),
        import: AsyncMutex::new(()),
        events: etx.clone(),
        opts,
    });
    let mut outcome = Outcome {
        cached: prepared.cached.iter().map(|&i| dag.node(i).drv_path.as_str().to_string()).collect(),
        ..Outcome::default()
    };
    let slots: u32 = shared.members.iter().map(|m| m.model.slots).sum();
    reporter.event(&Event::Plan { derivations: n + prepared.cached.len(), slots: slots as usize });
    for &i in &prepared.nodes {
        let node = dag.node(i);
        reporter.event(&Event::Queued { component: label_of(&shared, node), drv: node.drv_path.as_str().to_string() });
    }
    let start = Instant::now();
    let mut jobs: JoinSet<JobDone> = JoinSet::new();
    let mut reconnects: JoinSet<(BuilderId, Result<Conn>)> = JoinSet::new();
    let mut down: BTreeMap<BuilderId, Down> = BTreeMap::new();
    let mut attempts = vec![0u32; n];
    let mut remaining = n;
    // Set when a lost builder left some task with nowhere to run; cleared if it comes back.
    let mut stranded: Option<Error> = None;
    let result = loop {
        if remaining == 0 {
            break Ok(());
        }
        if crate::vocab::cancel::interrupted() {
            break Err(Error::msg(ErrorKind::Interrupted, "interrupted: every builder session was closed"));
        }
        let now = start.elapsed().as_secs_f64();
        if stranded.is_none() {
            for a in policy.dispatch(now) {
                let Some(&node_index) = prepared.nodes.get(a.task) else { continue };
                let Some(member) = shared.members.get(a.builder) else { continue };
                let node = dag.node(node_index);
                reporter.event(&Event::Started {
                    component: label_of(&shared, node),
                    drv: node.drv_path.as_str().to_string(),
                    host: member.model.name.clone(),
                    strategy: strategy_of(&shared, node, &member.model).as_str().to_string(),
                });
                let shared = shared.clone();
                jobs.spawn(async move {
                    let t0 = Instant::now();
                    let started = start.elapsed().as_secs_f64();
                    let result = job(shared, node_index, a.builder).await;
                    JobDone { task: a.task, builder: a.builder, started, elapsed: t0.elapsed().as_secs_f64(), result }
                });
            }
        }
        for (&b, d) in down.iter_mut() {
            if !d.in_flight && d.tries < shared.opts.reconnect_attempts && d.next_try <= now {
                d.in_flight = true;
                let shared = shared.clone();
                reconnects.spawn(async move {
                    let member = &shared.members[b];
                    (b, Conn::open(member.transport.as_ref(), shared.events.clone()).await)
                });
            }
        }
        if jobs.is_empty() && reconnects.is_empty() {
            let retrying = down.values().any(|d| d.tries < shared.opts.reconnect_attempts);
            if !retrying {
                break Err(stranded.take().unwrap_or_else(|| {
                    Error::msg(
                        ErrorKind::Internal,
                        format!("{remaining} derivation(s) could not be placed on any builder"),
                    )
                }));
            }
        }
        tokio::select! {
            Some(joined) = jobs.join_next() => {
                let done = match joined {
                    Ok(d) => d,
                    Err(e) => break Err(Error::msg(ErrorKind::Internal, format!("a build task failed: {e}"))),
                };
                let now = start.elapsed().as_secs_f64();
                let node = dag.node(prepared.nodes[done.task]);
                let member = &shared.members[done.builder];
                let label = label_of(&shared, node);
                let host = member.model.name.clone();
                let finished = |ok: bool| Event::Finished {
                    component: label.clone(),
                    drv: node.drv_path.as_str().to_string(),
                    host: host.clone(),
                    seconds: done.elapsed,
                    ok,
                    cached: false,
                };
                match done.result {
                    Ok(JobOk { outputs, bytes, transfers }) => {
                        reporter.event(&finished(true));
                        for (b, secs) in transfers {
                            policy.link_measured(done.builder, b, secs);
                        }
                        policy.output_measured(done.task, bytes);
                        outcome.runs.push(crate::schedule::simulate::Run {
                            task: done.task,
                            builder: done.builder,
                            start: done.started,
                            finish: done.started + done.elapsed,
                        });
                        if let Some(r) = policy.history_record(done.task, done.builder, done.elapsed, bytes) {
                            outcome.records.push(r);
                        }
                        for p in &outputs {
                            reporter.event(&Event::Output { component: label.clone(), path: p.clone() });
                        }
                        policy.finished(done.task, done.builder, now, done.elapsed);
                        remaining -= 1;
                        outcome.built.insert(node.drv_path.as_str().to_string(), Built {
                            drv: node.drv_path.as_str().to_string(),
                            label: label.clone(),
                            outputs,
                            host,
                            strategy: strategy_of(&shared, node, &member.model),
                            seconds: done.elapsed,
                            started: done.started,
                            log: shared.opts.log_dir.join(format!("{label}.log")),
                        });
                    }
                    Err(JobError::Fatal(e)) => {
                        reporter.event(&finished(false));
                        break Err(e);
                    }
                    Err(JobError::Build { result, log_tail }) => {
                        reporter.event(&finished(false));
                        attempts[done.task] += 1;
                        if result.status == BuildStatus::TransientFailure && attempts[done.task] < shared.opts.max_attempts {
                            reporter.event(&Event::Note { text: format!("{label}: transient failure on {host}, trying again: {}", result.error_msg) });
                            policy.failed(done.task, done.builder, now);
                            continue;
                        }
                        let log = shared.opts.log_dir.join(format!("{label}.log"));
                        let what = if shared.opts.labels.contains_key(node.drv_path.as_str()) {
                            format!("component `{label}`")
                        } else {
                            label.clone()
                        };
                        break Err(Error::with_help(
                            ErrorKind::Build,
                            format!(
                                "{what} failed to build on {host} ({}): {:?}: {}\n{log_tail}",
                                node.drv_path, result.status, strip_ansi(result.error_msg.trim())
                            ),
                            format!("full log: {}", log.display()),
                        ));
                    }
                    Err(JobError::Builder(e)) => {
                        reporter.event(&finished(false));
                        attempts[done.task] += 1;
                        policy.failed(done.task, done.builder, now);
                        if let std::collections::btree_map::Entry::Vacant(v) = down.entry(done.builder) {
                            shared.idle[done.builder].clear();
                            // A builder set up wrong (host key, login, Nix) stays down: retrying
                            // cannot help. One that dropped off the network is tried again.
                            let setup = crate::transport::failure_class(&e) == Some(crate::transport::FailureClass::Setup);
                            let tries = if setup { shared.opts.reconnect_attempts } else { 0 };
                            v.insert(Down { tries, next_try: now + 1.0, in_flight: false });
                            outcome.lost.push((host.clone(), e.to_string()));
                            reporter.event(&Event::Note {
                                text: format!("builder {host} is down ({e}); its work goes to the other builders"),
                            });
                            if let Err(no_one) = policy.builder_down(done.builder, now) {
                                stranded = Some(if setup {
                                    // The builder's own error says what to fix (e.g. the host key).
                                    e
                                } else {
                                    Error::with_help(
                                        ErrorKind::Builder,
                                        format!("{no_one}\nlast error from {host}: {e}"),
                                        "bring the builder back, or add one that can build this system (--builders)",
                                    )
                                });
                                continue;
                            }
                        }
                        if attempts[done.task] >= shared.opts.max_attempts {
                            break Err(Error::with_help(
                                ErrorKind::Builder,
                                format!("{label}: gave up after {} attempts; last on {host}: {e}", attempts[done.task]),
                                "check the builders with `rvbuild builders probe`",
                            ));
                        }
                    }
                }
            }
            Some(joined) = reconnects.join_next() => {
                let now = start.elapsed().as_secs_f64();
                let Ok((b, r)) = joined else { continue };
                let host = shared.members[b].model.name.clone();
                match r {
                    Ok(conn) => {
                        down.remove(&b);
                        shared.idle[b].give_back(conn);
                        policy.builder_up(b, now);
                        stranded = None;
                        reporter.event(&Event::Note { text: format!("builder {host} is back") });
                    }
                    Err(e) => {
                        if let Some(d) = down.get_mut(&b) {
                            d.tries += 1;
                            d.in_flight = false;
                            d.next_try = now + f64::from(1u32 << d.tries.min(6));
                            if d.tries >= shared.opts.reconnect_attempts {
                                reporter.event(&Event::Note { text: format!("builder {host} stays down: {e}") });
                            }
                        }
                    }
                }
            }
            Some(ev) = erx.recv() => reporter.event(&ev),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    jobs.abort_all();
    reconnects.abort_all();
    while jobs.join_next().await.is_some() {}
    drop(shared);
    // Sessions are closed now; give local nix-store processes the moment they need to stop
    // their builds (killing them outright would leave the builder processes running).
    let deadline = Instant::now() + Duration::from_secs(5);
    while crate::vocab::cancel::running_children() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(etx);
    while let Ok(ev) = erx.try_recv() {
        reporter.event(&ev);
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    result.map(|()| outcome)
}

/// The whole flow for a set of root derivations: what is missing locally, estimates from the
/// build history, the list scheduler over `members` and the build. The measured durations
/// come back in [`Outcome::records`] for the caller to keep in its history.
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
    let prepared = prepare(&dag, local.as_ref(), Some(hist)).await?;
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
