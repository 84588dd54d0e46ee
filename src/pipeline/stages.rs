//! The first stages every board command shares, in data-flow order: load the board and the
//! profile, gather the pool, plan each component's strategy, write the provider's expression.

use std::path::{Path, PathBuf};

use crate::builders::Builder;
use crate::builders::history::History;
use crate::builders::inventory::{self, Sources};
use crate::nix::{host_expr, nixpkgs_expr};
use crate::plan::board::BoardPlan;
use crate::profile::{self, Board, BuildProfile, Loaded, Provider, resolve};
use crate::vocab::BuilderModel;
use crate::{Error, ErrorKind, Result};

use super::Request;

/// The board and profile files of a request, loaded and validated.
pub(crate) struct Inputs {
    pub board: Loaded<Board>,
    pub prof: Loaded<BuildProfile>,
    pub provider: Provider,
}

/// Loads the board and the profile; the provider is the request's, else the profile's.
pub(crate) fn load(req: &Request) -> Result<Inputs> {
    let board = profile::load_board(&req.project, &req.board)?;
    let prof = profile::load_profile(&req.project, &req.profile)?;
    let provider = req.provider.unwrap_or(prof.value.provider);
    Ok(Inputs { board, prof, provider })
}

/// The builder pool of the request over the profile's (`--jobs` fills in `--local-jobs`).
pub(crate) fn pool(req: &Request, inputs: &Inputs) -> Result<Vec<Builder>> {
    let mut pool_opts = req.pool.clone();
    if req.jobs > 0 && pool_opts.local_jobs.is_none() {
        pool_opts.local_jobs = Some(crate::builders::LocalJobs::Count(u32::try_from(req.jobs).unwrap_or(u32::MAX)));
    }
    let prof = &inputs.prof;
    inventory::load_pool(Some((&prof.value.builders, prof.source.name.as_str())), &pool_opts, &Sources::from_env())
}

/// Each component's strategy over the pool's builders, and the build spec resolved with them.
pub(crate) fn plan(req: &Request, inputs: &Inputs, models: &[BuilderModel], history: &History) -> Result<BoardPlan> {
    crate::plan::board::plan_board(&inputs.board, &inputs.prof, inputs.provider, &req.strategies, models, Some(history))
}

/// Writes the provider's Nix expression for `spec` to `dir/board.nix`.
pub(crate) fn write_expression(spec: &resolve::BuildSpec, provider: Provider, dir: &Path) -> Result<PathBuf> {
    let share = profile::shipped::materialize(&crate::vocab::cache_dir())?;
    let nix_lib = share.join("nix");
    let expr = match provider {
        Provider::Host => host_expr::render(spec, &nix_lib),
        Provider::Nixpkgs => nixpkgs_expr::render(spec, &nix_lib),
    };
    let expr_path = dir.join("board.nix");
    std::fs::write(&expr_path, &expr).map_err(|e| Error::io(ErrorKind::Config, expr_path.display(), e))?;
    Ok(expr_path)
}
