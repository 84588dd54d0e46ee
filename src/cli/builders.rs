//! `rvbuild builders`: list the merged builder pool, probe its builders (table or JSON, cached
//! for later builds), import Nix's machines into a build profile.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::builders::Builder;
use crate::builders::inventory::Sources;
use crate::profile::import;
use crate::{Error, ErrorKind, Result};

use super::Context;
use super::pool_args::ListArgs;

const FILES_HELP: &str = "\
Files read:
  $RVBUILD_NIX_CONF_DIR (else $NIX_CONF_DIR, else /etc/nix): nix.conf and machines
  $HOME/.ssh/config, $RVBUILD_SSH_DIR (else /etc/ssh)/ssh_config: host aliases
  $HOME/.ssh/known_hosts, $RVBUILD_SSH_DIR/ssh_known_hosts: host keys (checked strictly)";

#[derive(Debug, clap::Args)]
#[command(after_help = FILES_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Show the merged pool: profile builders, Nix's machines (or --builders), the local machine.
    List(ListArgs),
    /// Measure builders: Nix version, systems, emulated systems with their measured slowdown,
    /// cores, load, free store space and speed (1.0 = the reference machine). Results are cached
    /// for later builds.
    Probe(super::builders_probe::ProbeArgs),
    /// Turn /etc/nix/machines and nix.conf `builders` into a build profile.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Machines file to read (default: NIX_CONF_DIR/machines, i.e. /etc/nix/machines).
    #[arg(long, value_name = "FILE")]
    pub machines: Option<PathBuf>,
    /// nix.conf whose `builders` to read (default: NIX_CONF_DIR/nix.conf).
    #[arg(long, value_name = "FILE")]
    pub nix_conf: Option<PathBuf>,
    /// Profile name (default: the output file's stem, else `imported`).
    #[arg(long)]
    pub name: Option<String>,
    /// Write the profile here (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.action.unwrap_or(Action::List(ListArgs::default())) {
        Action::List(a) => list(ctx, a),
        Action::Probe(a) => super::builders_probe::run(ctx, a),
        Action::Import(a) => import_cmd(a),
    }
}

fn list(ctx: &Context, a: ListArgs) -> Result<()> {
    let pool = super::pool_args::load_pool(ctx, &a.pool, a.profile.as_deref())?;
    let out = if a.json {
        let mut s = serde_json::to_string_pretty(&pool)
            .map_err(|e| Error::msg(ErrorKind::Internal, format!("cannot encode the pool as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        table(&pool)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).map_err(|e| Error::io(ErrorKind::Internal, "stdout", e))
}

/// The pool as an aligned table.
pub fn table(pool: &[Builder]) -> String {
    let head = ["NAME", "URI", "SYSTEMS", "JOBS", "SPEED", "FEATURES", "HOST KEY"];
    let rows: Vec<[String; 7]> = pool
        .iter()
        .map(|b| {
            let mut feats = b.supported_features.join(",");
            if !b.mandatory_features.is_empty() {
                let m: Vec<String> = b.mandatory_features.iter().map(|f| format!("{f}!")).collect();
                if !feats.is_empty() {
                    feats.push(',');
                }
                feats.push_str(&m.join(","));
            }
            let uri = if b.port != 0 && b.port != 22 && !b.uri.ends_with(&format!(":{}", b.port)) {
                format!("{} (port {})", b.uri, b.port)
            } else {
                b.uri.clone()
            };
            [
                b.name.clone(),
                uri,
                b.systems.join(","),
                b.max_jobs.to_string(),
                b.speed.to_string(),
                if feats.is_empty() { "-".into() } else { feats },
                b.host_key.summary(),
            ]
        })
        .collect();
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(head.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    if pool.iter().any(|b| !b.mandatory_features.is_empty()) {
        s.push_str("(FEATURE! = mandatory: only builds that need it go there)\n");
    }
    if pool.is_empty() {
        s.push_str(
            "(no builders: add machines to the profile, /etc/nix/machines or --builders, or allow --local-jobs)\n",
        );
    }
    s
}

fn import_cmd(a: ImportArgs) -> Result<()> {
    let src = Sources::from_env();
    let machines_file = a.machines.unwrap_or_else(|| src.nix_conf_dir.join("machines"));
    let nix_conf = a.nix_conf.unwrap_or_else(|| src.nix_conf_dir.join("nix.conf"));
    let name = a
        .name
        .or_else(|| a.output.as_ref().and_then(|o| o.file_stem()).map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "imported".into());
    let machines = import::read_machines(&machines_file, &nix_conf)?;
    if machines.is_empty() {
        return Err(Error::with_help(
            ErrorKind::Config,
            format!("no remote builders in {} or the `builders` of {}", machines_file.display(), nix_conf.display()),
            "give the machines file with --machines FILE",
        ));
    }
    let from = format!("{} and {}", machines_file.display(), nix_conf.display());
    let yaml = import::profile_yaml(&name, &machines, &from)?;
    if let Err(errs) = crate::profile::check_profile_text("imported profile", &name, &yaml) {
        return Err(crate::profile::errors_to_error("imported profile", errs));
    }
    match a.output {
        Some(o) => {
            std::fs::write(&o, &yaml).map_err(|e| Error::io(ErrorKind::Config, o.display(), e))?;
            eprintln!("wrote {} ({} builders); use it with --profile {}", o.display(), machines.len(), o.display());
            Ok(())
        }
        None => {
            std::io::stdout().lock().write_all(yaml.as_bytes()).map_err(|e| Error::io(ErrorKind::Internal, "stdout", e))
        }
    }
}
