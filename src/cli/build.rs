//! `rvbuild build`: build any Nix derivation graph over the builder pool (the local machine
//! included), with hosts chosen at build time; `result` links like nix-build.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::vocab::Reporter as _;

use crate::Result;
use crate::build::Options;
use crate::build::connect::{self, ConnectOptions};
use crate::builders::history::History;
use crate::builders::inventory::{self, Sources};
use crate::nix::dag;
use crate::nix::serve::BuildOptions;
use crate::pipeline::split;
use crate::transport::LocalTransport;

use super::Context;
use super::pool_args::PoolArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .nix file, or /nix/store/...drv paths.
    #[arg(required = true, value_name = "FILE.nix|DRV")]
    pub targets: Vec<String>,
    /// Attribute to build from the .nix file (repeatable).
    #[arg(short = 'A', long)]
    pub attr: Vec<String>,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Build profile whose builders to use (default: Nix's machines and the local machine).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Name of the result links (`result`, `result-2`, `result-dev`, ... as nix-build).
    #[arg(short, long, default_value = "result", value_name = "NAME")]
    pub out_link: PathBuf,
    /// Make no result links (outputs may then be garbage-collected).
    #[arg(long)]
    pub no_out_link: bool,
    /// Per-derivation build logs go here (default: ~/.cache/rvbuild/logs/build-<time>).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Stop a build that prints nothing for this many seconds (0 = no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub max_silent_time: u32,
    /// Stop a build that runs longer than this many seconds (0 = no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u32,
    /// Let builders fetch missing inputs from their own substituters before rvbuild uploads.
    #[arg(long)]
    pub builders_use_substitutes: bool,
    /// Neither read nor update the build history (~/.cache/rvbuild/build-history.json) that
    /// estimates come from.
    #[arg(long)]
    pub no_history: bool,
    /// Go on building what does not need a failed derivation (as nix-build's --keep-going); the
    /// run still fails at the end, naming the first failure.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Draw the schedule, predicted and measured side by side (`.svg`, or `.html`).
    #[arg(long, value_name = "FILE.svg|FILE.html")]
    pub gantt: Option<PathBuf>,
    /// Spread the compile of derivations that read rvbuild's helper list (the host provider's
    /// kernel) over the pool with distcc: auto (when the cost model predicts a gain), never, always.
    #[arg(long, value_enum, default_value = "auto")]
    pub split: super::board::SplitArg,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let roots = crate::nix::instantiate::targets(&args.targets, &args.attr)?;
    let dag = Arc::new(dag::load_closure(&roots)?);
    let loaded = match &args.profile {
        Some(p) => Some(crate::profile::load_profile(&ctx.project_dir(), p)?),
        None => None,
    };
    let profile = loaded.as_ref().map(|l| (&l.value.builders, l.source.name.as_str()));
    let pool = inventory::load_pool(profile, &args.pool.pool_options(), &Sources::from_env())?;
    let members = connect::members(&pool, &ConnectOptions { accept_new_host_keys: args.pool.accept_new_host_keys })?;
    let mut history = if args.no_history { History::in_memory() } else { History::load(&History::default_path()) };
    let models: Vec<_> = members.iter().map(|m| m.model.clone()).collect();
    let compilers = split::probed(&pool);
    let decisions: Vec<_> = dag
        .nodes()
        .iter()
        .filter_map(|n| {
            split::decide_for(args.split.into(), n.drv_path.as_str(), &dag, &models, &compilers, &history, None)
        })
        .collect();
    for d in &decisions {
        ctx.reporter.event(&crate::vocab::Event::Note { text: format!("{}: {}", d.drv, d.text) });
    }
    let split = split::config(&decisions, &members);
    let log_dir = args.log_dir.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        crate::vocab::cache_dir().join("logs").join(format!("build-{t}"))
    });
    let opts = Options {
        log_dir,
        build: BuildOptions {
            max_silent_time_secs: args.max_silent_time,
            build_timeout_secs: args.timeout,
            ..BuildOptions::default()
        },
        builders_use_substitutes: args.builders_use_substitutes,
        predict: args.gantt.is_some(),
        keep_going: args.keep_going,
        split,
        ..Options::default()
    };
    let reporter = ctx.reporter.as_ref();
    let local: Arc<dyn crate::transport::Transport> = Arc::new(LocalTransport::new());
    let outcome =
        ctx.runtime.block_on(crate::build::build_roots(dag.clone(), members, local, &history, opts, reporter))?;
    if let (Some(path), Some(s)) = (&args.gantt, &outcome.schedules) {
        let text = crate::report::gantt::write_schedules(path, s)?;
        reporter.event(&crate::vocab::Event::Note { text });
    }
    history.keep(&outcome.records, reporter);
    for (k, &root) in dag.roots().iter().enumerate() {
        let node = dag.node(root);
        for (name, out) in &node.drv.outputs {
            if !args.no_out_link {
                let mut link = args.out_link.as_os_str().to_owned();
                if k > 0 {
                    link.push(format!("-{}", k + 1));
                }
                if name != "out" {
                    link.push(format!("-{name}"));
                }
                crate::build::components::add_root(&out.path, Path::new(&link))?;
            }
            ctx.say(&out.path);
        }
    }
    let remote = outcome.built.values().filter(|b| b.host != "local").count();
    let lost = if outcome.lost.is_empty() {
        String::new()
    } else {
        format!("; lost {}", outcome.lost.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", "))
    };
    eprintln!(
        "built {} derivation(s) ({remote} remote, {} already valid) in {:.1} s{lost}",
        outcome.built.len(),
        outcome.cached.len(),
        outcome.seconds
    );
    Ok(())
}
