//! Building one board end to end: load and validate the board and profile, resolve them into a
//! build spec, generate the provider's Nix expression, instantiate it, build the components and
//! write the output directory (expression, per-component links and logs, manifest.json).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::build::components;
use crate::build::connect::{self, ConnectOptions};
use crate::builders::inventory::{self, PoolOptions, Sources};
use crate::nix::{host_expr, instantiate, nixpkgs_expr};
use crate::profile::resolve;
use crate::profile::{self, Provider};
use crate::vocab::manifest::{ComponentRecord, FlashPlan, FlashRegionRecord, Manifest};
use crate::vocab::{Event, Reporter, Strategy};
use crate::{Error, ErrorKind, Result};

/// What a board build was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub project: PathBuf,
    pub board: String,
    pub profile: String,
    pub provider: Option<Provider>,
    pub out_dir: Option<PathBuf>,
    /// Write and check the expression, build nothing.
    pub expr_only: bool,
    /// Local build slots (0 = the pool's `local-jobs`, by default one per CPU).
    pub jobs: usize,
    /// Which builders (`--builders`, `--only`, `--exclude`, `--local-jobs`).
    pub pool: PoolOptions,
    pub connect: ConnectOptions,
    /// `--strategy COMPONENT=STRATEGY` overrides (component or group name), over the profile's.
    pub strategies: Vec<(String, profile::Strategy)>,
    /// Also predict the schedule, to compare with the measured one (`--gantt`).
    pub predict: bool,
}

/// A finished board build: where it is, its manifest, and the schedules when asked for.
pub struct BoardBuild {
    pub out_dir: PathBuf,
    pub manifest: Manifest,
    pub schedules: Option<crate::build::Schedules>,
}

/// The default output directory of a board: `./result-<board>`.
pub fn default_out_dir(board: &str) -> PathBuf {
    PathBuf::from(format!("result-{board}"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))
}

fn link(target: &str, at: &Path) {
    let _ = fs::remove_file(at);
    let _ = std::os::unix::fs::symlink(target, at);
}

/// Files of an output directory, recursively, as (relative name, absolute path).
fn files_below(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => {
                    if let Ok(rel) = p.strip_prefix(root) {
                        out.push((rel.to_string_lossy().into_owned(), p.clone()));
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Runs the whole board build. Returns the manifest (also written to the output directory).
pub fn build(req: &Request, reporter: &dyn Reporter) -> Result<BoardBuild> {
    let board = profile::load_board(&req.project, &req.board)?;
    let prof = profile::load_profile(&req.project, &req.profile)?;
    let provider = req.provider.unwrap_or(prof.value.provider);
    let name = board.value.name.value.clone();
    reporter.event(&Event::Stage {
        name: "resolve".into(),
        detail: format!("board {name}, profile {}, provider {}", prof.value.name.value, provider.as_str()),
    });
    // The pool first: the strategy plan weighs its builders.
    let mut pool_opts = req.pool.clone();
    if req.jobs > 0 && pool_opts.local_jobs.is_none() {
        pool_opts.local_jobs = Some(crate::profile::build::LocalJobs::Count(req.jobs as u32));
    }
    let pool = inventory::load_pool(
        Some((&prof.value.builders, prof.source.name.as_str())),
        &pool_opts,
        &Sources::from_env(),
    )?;
    let members = connect::members(&pool, &req.connect)?;
    let models: Vec<crate::schedule::BuilderModel> = members.iter().map(|m| m.model.clone()).collect();
    let mut history = crate::builders::history::History::load(&crate::builders::history::History::default_path());
    let planned = crate::plan::board::plan_board(&board, &prof, provider, &req.strategies, &models, Some(&history))?;
    for p in &planned.plans {
        reporter.event(&Event::Stage {
            name: "plan".into(),
            detail: format!("{}: {} ({})", p.component, p.strategy.as_str(), p.reason),
        });
    }
    let spec = planned.spec;

    let out_dir = req.out_dir.clone().unwrap_or_else(|| default_out_dir(&name));
    fs::create_dir_all(&out_dir).map_err(|e| Error::io(ErrorKind::Config, out_dir.display(), e))?;
    let out_dir = out_dir.canonicalize().map_err(|e| Error::io(ErrorKind::Config, out_dir.display(), e))?;
    let expr_path = write_expression(&spec, provider, &out_dir)?;
    reporter.event(&Event::Stage {
        name: "generate".into(),
        detail: format!("{} ({} components)", expr_path.display(), spec.components().len()),
    });
    instantiate::parse_check(&expr_path)?;
    if req.expr_only {
        let manifest = manifest_skeleton(&spec, provider, &expr_path);
        return Ok(BoardBuild { out_dir, manifest, schedules: None });
    }
    if provider == Provider::Nixpkgs && !nixpkgs_available() {
        return Err(Error::with_help(
            ErrorKind::Prerequisite,
            format!(
                "the nixpkgs provider needs nixpkgs, and <nixpkgs> is not on NIX_PATH here; the expression was written to {} and parses",
                expr_path.display()
            ),
            "set NIX_PATH=nixpkgs=/path/to/nixpkgs, or use `--provider host`",
        ));
    }

    let components = spec.components();
    reporter.event(&Event::Stage {
        name: "instantiate".into(),
        detail: format!("nix-instantiate {}", expr_path.display()),
    });
    let inst = instantiate::instantiate(&expr_path, &components)?;
    // Target-system derivations built on this machine need the local Nix to accept their
    // system (natively or through binfmt qemu-user): checked before anything builds when the
    // local machine is the only builder.
    if let Some(u) = &spec.userland
        && members.iter().all(|m| m.model.local)
    {
        crate::builders::userland::check_local_support(&u.system)?;
    }
    let strategies: BTreeMap<String, Strategy> =
        components.iter().map(|c| (c.clone(), placed_locally(spec.strategy(c), spec.arch))).collect();
    let slots: u32 = members.iter().map(|m| m.model.slots).sum();
    reporter.event(&Event::Stage {
        name: "build".into(),
        detail: format!(
            "{} components on {} builder(s), {slots} slots: {}",
            inst.drvs.len(),
            members.len(),
            members.iter().map(|m| m.model.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    });
    // Cross components are labelled `cross`; target-system ones by where they run (a native
    // or an emulating builder), which the engine knows once it placed them.
    let cross: BTreeMap<String, Strategy> =
        strategies.iter().filter(|(_, v)| **v == Strategy::Cross).map(|(k, &v)| (k.clone(), v)).collect();
    let built = components::build(&inst, members, &out_dir, &cross, req.predict, &history, reporter)?;
    if !built.records.is_empty() {
        history.record_all(&built.records);
        if let Err(e) = history.save() {
            reporter.event(&Event::Note { text: format!("build history not saved: {e}") });
        }
    }

    let mut manifest = manifest_skeleton(&spec, provider, &expr_path);
    for (c, b) in &built.components {
        manifest.components.insert(
            c.clone(),
            ComponentRecord {
                drv: b.drv.clone(),
                outputs: b.outputs.clone(),
                strategy: b.strategy.unwrap_or_else(|| placed_locally(spec.strategy(c), spec.arch)),
                host: b.host.clone(),
                seconds: b.seconds,
                cached: b.cached,
                log: b.log.to_string_lossy().into_owned(),
            },
        );
        for (i, o) in b.outputs.iter().enumerate() {
            let link_name = if i == 0 { c.clone() } else { format!("{c}-{}", o.rsplit('-').next().unwrap_or("out")) };
            link(o, &out_dir.join(link_name));
        }
    }
    collect_artifacts(&mut manifest);
    manifest.flash = Some(flash_plan(&board.value, &manifest));
    write(
        &out_dir.join("manifest.json"),
        &serde_json::to_string_pretty(&manifest).map_err(|e| Error::msg(ErrorKind::Internal, e.to_string()))?,
    )?;
    // Every output that reaches the board is checked (ELF arch/ABI/loader, module vermagic,
    // Image and DTB headers) before anything can be flashed.
    reporter.event(&Event::Stage {
        name: "verify".into(),
        detail: "outputs against the board's arch, ABI and kernel".into(),
    });
    verify_outputs(&board.value, &manifest, reporter)?;
    Ok(BoardBuild { out_dir, manifest, schedules: built.schedules })
}

/// What a strategy becomes on this machine: cross stays cross; a target-system derivation runs
/// natively on a machine of the target's architecture and emulated anywhere else.
pub fn placed_locally(strategy: Strategy, arch: profile::Arch) -> Strategy {
    match strategy {
        Strategy::Cross => Strategy::Cross,
        _ if arch.nix_system() == format!("{}-linux", std::env::consts::ARCH) => Strategy::Native,
        _ => Strategy::Emulated,
    }
}

/// Writes the provider's Nix expression for `spec` to `dir/board.nix`.
pub fn write_expression(spec: &resolve::BuildSpec, provider: Provider, dir: &Path) -> Result<PathBuf> {
    let share = profile::shipped::materialize(&profile::cache_dir())?;
    let nix_lib = share.join("nix");
    let expr = match provider {
        Provider::Host => host_expr::render(spec, &nix_lib),
        Provider::Nixpkgs => nixpkgs_expr::render(spec, &nix_lib),
    };
    let expr_path = dir.join("board.nix");
    write(&expr_path, &expr)?;
    Ok(expr_path)
}

/// Verifies a build's outputs against the board and reports the result as a `verify` event;
/// any finding is an error (exit 5) naming the files.
pub fn verify_outputs(board: &profile::Board, manifest: &Manifest, reporter: &dyn Reporter) -> Result<()> {
    let report = crate::verify::board::check_build(board, manifest)?;
    let refused = (!report.is_clean()).then(|| crate::verify::refusal(&report));
    reporter.event(&Event::Verify {
        target: manifest.board.clone(),
        ok: refused.is_none(),
        checked: report.checked,
        mismatched: report.mismatched,
        skipped: report.skipped,
        detail: match &refused {
            None => {
                format!("{} files checked, {} skipped (not ELF/Image/DTB), all match", report.checked, report.skipped)
            }
            Some(e) => e.to_string(),
        },
    });
    match refused {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn manifest_skeleton(spec: &resolve::BuildSpec, provider: Provider, expr: &Path) -> Manifest {
    Manifest {
        rvbuild: env!("CARGO_PKG_VERSION").to_string(),
        board: spec.board.clone(),
        profile: spec.profile.clone(),
        provider,
        arch: spec.arch,
        abi: spec.abi.clone(),
        marker: spec.marker.clone(),
        kernel_release: None,
        expression: expr.to_string_lossy().into_owned(),
        components: BTreeMap::new(),
        artifacts: BTreeMap::new(),
        flash: None,
    }
}

fn flash_plan(b: &crate::profile::Board, m: &Manifest) -> FlashPlan {
    FlashPlan {
        method: b.flash.method,
        baud: b.flash.baud,
        recovery: b.flash.recovery.clone(),
        device_size: b.flash.device_size.as_ref().map(|s| s.value.0),
        regions: b
            .flash
            .regions
            .iter()
            .map(|r| FlashRegionRecord {
                name: r.name.value.clone(),
                offset: r.offset.value.0,
                size: r.size.value.0,
                file: r.file.value.clone(),
                path: m.artifacts.get(&r.file.value).cloned(),
            })
            .collect(),
    }
}

/// Names the artefacts later stages use: the disk image, boot files, firmware files, modules.
fn collect_artifacts(m: &mut Manifest) {
    let pick = |m: &Manifest, comp: &str| m.components.get(comp).and_then(|c| c.outputs.first()).map(PathBuf::from);
    let mut arts = BTreeMap::new();
    for comp in ["image", "bootfiles", "firmware"] {
        if let Some(root) = pick(m, comp) {
            for (rel, abs) in files_below(&root) {
                arts.insert(rel, abs.to_string_lossy().into_owned());
            }
        }
    }
    for (c, rec) in &m.components {
        if c.starts_with("module-")
            && let Some(root) = rec.outputs.first()
        {
            for (rel, abs) in files_below(Path::new(root)) {
                if rel.ends_with(".ko") {
                    arts.insert(rel, abs.to_string_lossy().into_owned());
                }
            }
        }
    }
    if let Some(k) = pick(m, "kernel") {
        m.kernel_release = fs::read_to_string(k.join("kernel.release")).ok().map(|s| s.trim().to_string());
        for f in ["Image", "Image.gz", "config", "System.map"] {
            arts.insert(format!("kernel/{f}"), k.join(f).to_string_lossy().into_owned());
        }
    }
    m.artifacts = arts;
}

fn nixpkgs_available() -> bool {
    std::process::Command::new("nix-instantiate")
        .args(["--eval", "-E", "builtins.pathExists <nixpkgs>"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true")
        .unwrap_or(false)
}
