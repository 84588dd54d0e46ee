//! Building one board end to end: load and validate the board and profile, plan, generate the
//! provider's Nix expression, instantiate it, build the components, write the output directory
//! (expression, per-component links and logs, manifest.json) and verify the outputs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::build::components;
use crate::build::connect;
use crate::builders::history::History;
use crate::nix::instantiate;
use crate::profile::{Board, Loaded, Provider};
use crate::vocab::manifest::{ComponentRecord, Manifest};
use crate::vocab::{BuilderModel, Event, Reporter, Strategy};
use crate::{Error, ErrorKind, Result};

use super::error::PipelineError;
use super::{Request, default_out_dir, manifest, stages};

/// A finished board build: the board it built, where it is, its manifest, and the schedules
/// when asked for.
pub struct BoardBuild {
    pub board: Loaded<Board>,
    pub out_dir: PathBuf,
    pub manifest: Manifest,
    pub schedules: Option<crate::build::Schedules>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))
}

fn link(target: &str, at: &Path) {
    let _ = fs::remove_file(at);
    let _ = std::os::unix::fs::symlink(target, at);
}

/// Runs the whole board build. Returns the manifest (also written to the output directory).
/// The build engine runs on `rt`, the process's runtime; call this from synchronous code.
// Long on purpose: the stages in order (resolve, plan, generate, instantiate, build, manifest, verify).
pub fn build(req: &Request, rt: &tokio::runtime::Handle, reporter: &dyn Reporter) -> Result<BoardBuild> {
    let inputs = stages::load(req)?;
    let (board, prof, provider) = (&inputs.board, &inputs.prof, inputs.provider);
    let name = board.value.name.value.clone();
    reporter.event(&Event::Stage {
        name: "resolve".into(),
        detail: format!("board {name}, profile {}, provider {}", prof.value.name.value, provider.as_str()),
    });
    // The pool first: the strategy plan weighs its builders.
    let pool = stages::pool(req, &inputs)?;
    let members = connect::members(&pool, &req.connect)?;
    let models: Vec<BuilderModel> = members.iter().map(|m| m.model.clone()).collect();
    let mut history = History::load(&History::default_path());
    let planned = stages::plan(req, &inputs, &models, &history)?;
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
    let expr_path = stages::write_expression(&spec, provider, &out_dir)?;
    reporter.event(&Event::Stage {
        name: "generate".into(),
        detail: format!("{} ({} components)", expr_path.display(), spec.components().len()),
    });
    instantiate::parse_check(&expr_path)?;
    if req.expr_only {
        let manifest = manifest::skeleton(&spec, provider, &expr_path);
        return Ok(BoardBuild { board: inputs.board, out_dir, manifest, schedules: None });
    }
    if provider == Provider::Nixpkgs && !nixpkgs_available() {
        return Err(PipelineError::NoNixpkgs { expr: expr_path }.into());
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
        components.iter().map(|c| (c.clone(), manifest::placed_locally(spec.strategy(c), spec.arch))).collect();
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
    let mode = req.split.unwrap_or(prof.value.strategy.split);
    let compilers = super::split::probed(&pool);
    let decision = super::split::decide_split(mode, provider, &inst, &models, &compilers, &history, None);
    if let Some(d) = &decision {
        reporter.event(&Event::Stage { name: "plan".into(), detail: format!("kernel compile: {}", d.text) });
    }
    let split = super::split::config(decision.as_ref(), &members);
    let built = components::build(rt, &inst, members, &out_dir, &cross, req.predict, &history, split, reporter)?;
    history.keep(&built.records, reporter);

    let mut manifest = manifest::skeleton(&spec, provider, &expr_path);
    for (c, b) in &built.components {
        manifest.components.insert(
            c.clone(),
            ComponentRecord {
                drv: b.drv.clone(),
                outputs: b.outputs.clone(),
                strategy: b.strategy.unwrap_or_else(|| manifest::placed_locally(spec.strategy(c), spec.arch)),
                host: b.host.clone(),
                seconds: b.seconds,
                cached: b.cached,
                log: b.log.to_string_lossy().into_owned(),
                split: b.split.clone(),
            },
        );
        for (i, o) in b.outputs.iter().enumerate() {
            let link_name = if i == 0 { c.clone() } else { format!("{c}-{}", o.rsplit('-').next().unwrap_or("out")) };
            link(o, &out_dir.join(link_name));
        }
    }
    manifest::collect_artifacts(&mut manifest);
    manifest.flash = Some(manifest::flash_plan(&board.value, Some(&manifest)));
    write(
        &out_dir.join("manifest.json"),
        &serde_json::to_string_pretty(&manifest).map_err(PipelineError::ManifestEncoding)?,
    )?;
    // Every output that reaches the board is checked (ELF arch/ABI/loader, module vermagic,
    // Image and DTB headers) before anything can be flashed.
    reporter.event(&Event::Stage {
        name: "verify".into(),
        detail: "outputs against the board's arch, ABI and kernel".into(),
    });
    super::verify::verify_outputs(&board.value, &manifest, reporter)?;
    Ok(BoardBuild { board: inputs.board, out_dir, manifest, schedules: built.schedules })
}

fn nixpkgs_available() -> bool {
    std::process::Command::new("nix-instantiate")
        .args(["--eval", "-E", "builtins.pathExists <nixpkgs>"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true")
        .unwrap_or(false)
}
