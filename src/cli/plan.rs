//! `rvbuild plan`: each component's strategy (cross, or a target-system build on a native or
//! emulating host) with the numbers behind it, and the predicted schedule of the derivations
//! still to build over the pool: host, estimated start and finish. Instantiates the board's
//! expression but builds nothing. `--simulate` adds the predicted makespan against its lower
//! bound (and Nix's greedy policy on the same work); `--gantt FILE.svg|.html` draws it.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::pipeline::{self, PlanRow, Request};
use crate::profile::build::Strategy;
use crate::report::gantt;
use crate::{Error, ErrorKind, Result};

use super::Context;
use super::board::{ProviderArg, SplitArg};
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
    /// Spread the kernel's compile over the pool (as for `rvbuild board`); the plan shows the
    /// decision and the cost model's estimate.
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Also print the predicted makespan, its lower bound and Nix's greedy policy on the same work.
    #[arg(long)]
    pub simulate: bool,
    /// Draw the predicted schedule: an SVG, or a self-contained HTML page (by the extension).
    #[arg(long, value_name = "FILE.svg|FILE.html")]
    pub gantt: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    board: String,
    derivations_to_build: usize,
    builders: Vec<String>,
    components: &'a [PlanRow],
    makespan: f64,
    lower_bound: f64,
    nix_like_makespan: Option<f64>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let req = Request {
        project: ctx.project_dir(),
        board: args.board.clone(),
        profile: args.profile.clone(),
        provider: args.provider.map(Into::into),
        pool: args.pool.pool_options(),
        strategies: args.strategy.clone(),
        split: args.split.map(Into::into),
        ..Request::default()
    };
    let plan = pipeline::plan(&req, args.simulate, &ctx.runtime)?;
    let (sim, models, tasks) = (&plan.simulation, &plan.models, &plan.tasks);
    if let Some(path) = &args.gantt {
        let text = gantt::render_for(path, &sim.schedule, None);
        std::fs::write(path, text).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))?;
    }
    let mut out = String::new();
    if ctx.json {
        let report = Report {
            board: plan.board.clone(),
            derivations_to_build: tasks.len(),
            builders: models.iter().map(|m| m.name.clone()).collect(),
            components: &plan.rows,
            makespan: sim.makespan,
            lower_bound: sim.lower_bound,
            nix_like_makespan: plan.nix_like.as_ref().map(|n| n.makespan),
        };
        out = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::msg(ErrorKind::Internal, format!("cannot encode the plan: {e}")))?;
        out.push('\n');
    } else {
        out.push_str(&table(&plan.rows));
        out.push_str(&format!(
            "{} derivation(s) to build over {}\n",
            tasks.len(),
            models.iter().map(|m| format!("{} ({} slots)", m.name, m.slots)).collect::<Vec<_>>().join(", ")
        ));
        if let Some(n) = &plan.nix_like {
            out.push_str(&sim.summary(tasks, models));
            out.push('\n');
            // Nix cannot split a derivation: its policy runs on the kernel as one job.
            let unsplit = if plan.split { " (the kernel unsplit)" } else { "" };
            out.push_str(&format!(
                "Nix-like policy (greedy, remote builders first) on the same work{unsplit}: {:.0} s ({:.2}x rvbuild's)\n",
                n.makespan,
                if sim.makespan > 0.0 { n.makespan / sim.makespan } else { 1.0 }
            ));
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).map_err(|e| Error::io(ErrorKind::Internal, "stdout", e))
}

fn table(rows: &[PlanRow]) -> String {
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
        if let Some(split) = &r.split {
            s.push_str(&format!("{:<w$}  {:<8}  split: {split}\n", "", ""));
        }
    }
    s
}
