//! `rvbuild plan`: each component's strategy (cross, or a target-system build on a native or
//! emulating host) with the numbers behind it, and the predicted schedule of the derivations
//! still to build over the pool: host, estimated start and finish. Instantiates the board's
//! expression but builds nothing. `--simulate` adds the predicted makespan against its lower
//! bound (and Nix's greedy policy on the same work); `--gantt FILE.svg|.html` draws it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::build::connect;
use crate::builders::history::History;
use crate::builders::inventory::{self, Sources};
use crate::nix::{dag, instantiate};
use crate::profile::Provider;
use crate::profile::build::Strategy;
use crate::report::gantt;
use crate::schedule::BuilderModel;
use crate::schedule::simulate::{SimPolicy, Simulation, simulate};
use crate::transport::{LocalTransport, Transport};
use crate::{Error, ErrorKind, Result};

use super::Context;
use super::board::ProviderArg;
use super::pool_args::PoolArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The board to plan.
    pub board: String,
    /// Build profile: a name from profiles/ or a path.
    #[arg(long, default_value = "dev")]
    pub profile: String,
    /// Toolchain provider (default: the profile's).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Force a component's or group's strategy (as for `rvbuild board`).
    #[arg(long = "strategy", value_name = "COMPONENT=STRATEGY", value_parser = crate::profile::strategy::parse_flag)]
    pub strategy: Vec<(String, Strategy)>,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Also print the predicted makespan, its lower bound and Nix's greedy policy on the same work.
    #[arg(long)]
    pub simulate: bool,
    /// Draw the predicted schedule: an SVG, or a self-contained HTML page (by the extension).
    #[arg(long, value_name = "FILE.svg|FILE.html")]
    pub gantt: Option<PathBuf>,
}

/// One row of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub component: String,
    pub strategy: String,
    /// Where the schedule puts it; None when it is already built.
    pub host: Option<String>,
    pub start: Option<f64>,
    pub finish: Option<f64>,
    pub cached: bool,
    pub reason: String,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    board: String,
    derivations_to_build: usize,
    builders: Vec<String>,
    components: &'a [Row],
    makespan: f64,
    lower_bound: f64,
    nix_like_makespan: Option<f64>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let project = ctx.project_dir();
    let board = crate::profile::load_board(&project, &args.board)?;
    let prof = crate::profile::load_profile(&project, &args.profile)?;
    let provider: Provider = args.provider.map(Into::into).unwrap_or(prof.value.provider);
    let pool = inventory::load_pool(
        Some((&prof.value.builders, prof.source.name.as_str())),
        &args.pool.pool_options(),
        &Sources::from_env(),
    )?;
    let models = connect::models(&pool);
    let history = History::load(&History::default_path());
    let planned = crate::plan::board::plan_board(&board, &prof, provider, &args.strategy, &models, Some(&history))?;

    // Instantiate (no build) in a scratch directory to get the derivation graph.
    let scratch = crate::profile::cache_dir().join("plan").join(&board.value.name.value);
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(ErrorKind::Config, scratch.display(), e))?;
    let expr = crate::pipeline::board::write_expression(&planned.spec, provider, &scratch)?;
    let components = planned.spec.components();
    let inst = instantiate::instantiate(&expr, &components)?;
    let roots: Vec<String> = inst.drvs.values().cloned().collect();
    let graph = Arc::new(dag::load_closure(&roots)?);
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let prepared =
        crate::build::components::runtime()?.block_on(crate::build::prepare(&graph, local.as_ref(), Some(&history)))?;
    crate::build::check_capable(&prepared.tasks, &models)?;
    let sim = simulate(&prepared.tasks, &models, SimPolicy::Rvbuild)?;
    let nix = if args.simulate { Some(simulate(&prepared.tasks, &models, SimPolicy::NixLike)?) } else { None };

    let rows = rows(&planned.plans, &inst.drvs, &graph, &prepared, &sim, &models);
    if let Some(path) = &args.gantt {
        let text = gantt::render_for(path, &sim.schedule, None);
        std::fs::write(path, text).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))?;
    }
    let mut out = String::new();
    if ctx.json {
        let report = Report {
            board: board.value.name.value.clone(),
            derivations_to_build: prepared.tasks.len(),
            builders: models.iter().map(|m| m.name.clone()).collect(),
            components: &rows,
            makespan: sim.makespan,
            lower_bound: sim.lower_bound,
            nix_like_makespan: nix.as_ref().map(|n| n.makespan),
        };
        out = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::msg(ErrorKind::Internal, format!("cannot encode the plan: {e}")))?;
        out.push('\n');
    } else {
        out.push_str(&table(&rows));
        out.push_str(&format!(
            "{} derivation(s) to build over {}\n",
            prepared.tasks.len(),
            models.iter().map(|m| format!("{} ({} slots)", m.name, m.slots)).collect::<Vec<_>>().join(", ")
        ));
        if let Some(n) = &nix {
            out.push_str(&sim.summary(&prepared.tasks, &models));
            out.push('\n');
            out.push_str(&format!(
                "Nix-like policy (greedy, remote builders first) on the same work: {:.0} s ({:.2}x rvbuild's)\n",
                n.makespan,
                if sim.makespan > 0.0 { n.makespan / sim.makespan } else { 1.0 }
            ));
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).map_err(|e| Error::io(ErrorKind::Internal, "stdout", e))
}

fn rows(
    plans: &[crate::plan::ComponentPlan],
    drvs: &BTreeMap<String, String>,
    graph: &dag::Dag,
    prepared: &crate::build::Prepared,
    sim: &Simulation,
    models: &[BuilderModel],
) -> Vec<Row> {
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
            Row {
                component: p.component.clone(),
                strategy,
                host: entry.and_then(|e| models.get(e.builder)).map(|m| m.name.clone()),
                start: entry.map(|e| e.start),
                finish: entry.map(|e| e.finish),
                cached: task.is_none(),
                reason: p.reason.clone(),
            }
        })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.component.len()).max().unwrap_or(9).max(9);
    let hw = rows.iter().filter_map(|r| r.host.as_ref().map(String::len)).max().unwrap_or(4).max(6);
    let mut s =
        format!("{:<w$}  {:<8}  {:<hw$}  {:>7}  {:>7}  REASON\n", "COMPONENT", "STRATEGY", "HOST", "START", "FINISH");
    for r in rows {
        let (host, start, finish) = match (&r.host, r.start, r.finish) {
            (Some(h), Some(a), Some(b)) => (h.clone(), format!("{a:.0} s"), format!("{b:.0} s")),
            _ => ("(built)".to_string(), "-".to_string(), "-".to_string()),
        };
        s.push_str(&format!(
            "{:<w$}  {:<8}  {:<hw$}  {:>7}  {:>7}  {}\n",
            r.component, r.strategy, host, start, finish, r.reason
        ));
    }
    s
}
