//! `rvbuild lab`: exports a board to a test lab: a labgrid environment (with the strategy file
//! beside it) or a LAVA job (with its device dictionary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lab::{self, labgrid, lava};
use crate::profile::Origin;
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// A labgrid environment: RawSerialPort, SerialDriver, UBootDriver with the board's prompt
    /// and RvbuildStrategy (states off, uboot, flashed, booted), which runs `rvbuild flash` and
    /// `rvbuild monitor --until` the board's marker. With -o, the strategy file
    /// (rvbuild_labgrid.py) is written beside the environment.
    Labgrid {
        /// The board (one that flashes over its serial console).
        board: String,
        /// The board's serial port, or `auto` for the single USB serial adapter.
        #[arg(long, env = "RVBUILD_PORT")]
        port: String,
        /// Write the environment here (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Build output directory whose files the strategy flashes (default: ./result-BOARD).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The image to flash instead of the build's (boards with one flash region).
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
    },
    /// A LAVA job (deploy to: flasher, boot method: u-boot, a test that waits for the marker)
    /// and the device dictionary it needs (flasher_deploy_commands running `rvbuild flash`,
    /// `rvbuild monitor` as the connection). With -o FILE.yaml the dictionary goes to
    /// FILE.device.jinja2; on stdout it follows the job as comment lines.
    Lava {
        /// The board (one that flashes over its serial console).
        board: String,
        /// The board's serial port on the LAVA worker.
        #[arg(long, default_value = "/dev/ttyUSB0")]
        port: String,
        /// Write the job here (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// LAVA device type (default: rvbuild-BOARD).
        #[arg(long)]
        device_type: Option<String>,
        /// Base URL of the build's files (default: file:// of ./result-BOARD).
        #[arg(long, value_name = "URL")]
        artifacts: Option<String>,
    },
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.action {
        Action::Labgrid { board, port, output, out, image } => {
            let facts = facts(ctx, &board)?;
            // `auto` becomes the adapter's device path: the environment must name a port.
            let port = crate::flash::port::resolve(Some(&port), &crate::flash::port::list())?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("result-{}", facts.board)));
            let mut images: BTreeMap<String, PathBuf> =
                facts.images.iter().map(|i| (i.option.clone(), lab::absolute(&out, &i.file))).collect();
            if let Some(img) = image {
                if !images.contains_key("image") {
                    return Err(Error::with_help(
                        ErrorKind::Config,
                        format!("{} has several flash regions: --image does not say which", facts.board),
                        "pass the build's output directory with --out",
                    ));
                }
                let dir = img.parent().map(Path::to_path_buf).unwrap_or_default();
                let name = img.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                images.insert("image".into(), lab::absolute(&dir, &name));
            }
            let rvbuild = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "rvbuild".into());
            let text = labgrid::environment(&facts, &labgrid::Request { port, rvbuild, images })?;
            match output {
                Some(path) => {
                    write(&path, &text)?;
                    let strategy = path.parent().unwrap_or(Path::new("")).join(labgrid::STRATEGY_FILE);
                    write(&strategy, labgrid::STRATEGY)?;
                    ctx.say(&format!("wrote {} and {}", path.display(), strategy.display()));
                }
                None => {
                    out!("{text}");
                    eprintln!(
                        "note: the environment imports {}: write it beside the environment with -o FILE",
                        labgrid::STRATEGY_FILE
                    );
                }
            }
            Ok(())
        }
        Action::Lava { board, port, output, device_type, artifacts } => {
            let facts = facts(ctx, &board)?;
            let base = match artifacts {
                Some(url) => url.trim_end_matches('/').to_string(),
                None => {
                    format!("file://{}", lab::absolute(Path::new(""), &format!("result-{}", facts.board)).display())
                }
            };
            let urls = facts.images.iter().map(|i| (i.option.clone(), format!("{base}/{}", i.file))).collect();
            let device_type = device_type.unwrap_or_else(|| format!("rvbuild-{}", facts.board));
            let req = lava::Request { device_type, urls, port };
            let job = lava::job(&facts, &req)?;
            let dict = lava::device_dictionary(&facts, &req);
            match output {
                Some(path) => {
                    let dict_path = path.with_extension("device.jinja2");
                    write(&path, &job)?;
                    write(&dict_path, &dict)?;
                    ctx.say(&format!("wrote {} and {}", path.display(), dict_path.display()));
                }
                None => {
                    out!("{job}");
                    outln!("# The device dictionary this job needs:");
                    for line in dict.lines() {
                        outln!("#   {line}");
                    }
                }
            }
            Ok(())
        }
    }
}

fn facts(ctx: &Context, board: &str) -> Result<lab::Facts> {
    let loaded = crate::profile::load_board(&ctx.project_dir(), board)?;
    let project = match &loaded.origin {
        Origin::Project(dir) => Some(dir.canonicalize().map_err(|e| Error::io(ErrorKind::Config, dir.display(), e))?),
        Origin::Shipped => None,
    };
    lab::facts(&loaded.value, project)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(ErrorKind::Config, path.display(), e))
}
