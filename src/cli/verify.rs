//! `rvbuild verify`: checks ELF architecture and ABI, dynamic loader, module vermagic, kernel
//! image and DTB headers of files, directories, cpio/tar archives, disk images (partitions,
//! FAT and ext4 filesystems, extlinux.conf), FIT images and SPLs against a board or arch.

use std::path::PathBuf;

use crate::verify::{self, Expectation};
use crate::{Error, ErrorKind, Result};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check: directories recursively (following the links of a result
    /// folder into the store), archive members, disk images, filesystems and FIT images inside.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Check against this board's arch, ABI and dynamic loader.
    #[arg(long, value_name = "BOARD", conflicts_with = "arch", required_unless_present = "arch")]
    pub board: Option<String>,
    /// Check against an arch: ARCH[,abi=ABI][,rvc=yes|no], e.g. riscv64,abi=lp64d or aarch64.
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<String>,
    /// The dynamic loader every dynamically linked file must use (default: glibc's for the ABI).
    #[arg(long, value_name = "PATH")]
    pub interp: Option<String>,
    /// The vermagic every kernel module must carry, e.g. "6.12.0 SMP mod_unload riscv".
    #[arg(long, value_name = "STRING")]
    pub vermagic: Option<String>,
    /// A compatible string every DTB's root node must list.
    #[arg(long, value_name = "STRING")]
    pub compatible: Option<String>,
    /// Do not check paths matching this pattern (`*` matches anything, `/` included); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// With --board: the board's build output directory, for the kernel's vermagic
    /// (default: ./result-BOARD when it exists).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The same directory, through links or not.
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let mut board = None;
    let mut exp = match (&args.board, &args.arch) {
        (Some(name), _) => {
            // The board's profile gives arch, ABI and loader; its build (if there is one) the
            // modules' vermagic.
            let b = crate::profile::load_board(&ctx.project_dir(), name)?.value;
            let out = match (&args.out, args.paths.as_slice()) {
                (Some(o), _) => o.clone(),
                (None, [dir]) if dir.join("manifest.json").is_file() => dir.clone(),
                (None, _) => crate::pipeline::default_out_dir(&b.name.value),
            };
            let manifest = crate::vocab::Manifest::load(&out).ok();
            let exp = verify::board::expectation(&b, manifest.as_ref())?;
            board = Some((b, manifest.map(|m| (out, m))));
            exp
        }
        (None, Some(spec)) => Expectation::parse_arch(spec)?,
        (None, None) => {
            return Err(Error::msg(ErrorKind::Config, "give --board BOARD or --arch SPEC"));
        }
    };
    if let Some(i) = args.interp {
        exp.interp = Some(i);
    }
    if let Some(v) = args.vermagic {
        exp.vermagic = Some(v);
    }
    if let Some(c) = args.compatible {
        exp.dtb_compatible = Some(c);
    }
    exp.ignore.extend(args.ignore);
    for p in &args.paths {
        if std::fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            return Err(Error::with_help(
                ErrorKind::Config,
                format!("{}: no such file or directory", p.display()),
                "give the build output files or directories to check",
            ));
        }
    }
    // A board's result folder: exactly the files `rvbuild board` checks.
    let report = match (&board, args.paths.as_slice()) {
        (Some((b, Some(m))), [dir]) if dir.join("manifest.json").is_file() && same_dir(dir, &m.0) => {
            verify::board::check_build(b, &m.1)?
        }
        _ => verify::verify_paths(&args.paths, &exp),
    };
    if ctx.json {
        outln!("{}", report.to_json());
    } else {
        out!("{}", report.render_human(ctx.verbose));
    }
    if report.is_clean() {
        Ok(())
    } else if let (0, 0, Some(why)) = (report.mismatched, report.errors, report.nothing_checked()) {
        Err(Error::with_help(
            ErrorKind::Verify,
            format!("verify: {why}"),
            "give the files that reach the board (disk image, result folder, kernel, initramfs); -v lists each skipped file with its reason",
        ))
    } else {
        Err(Error::with_help(
            ErrorKind::Verify,
            format!(
                "verify: {} file(s) do not match {} {}, {} could not be read",
                report.mismatched,
                exp.arch.as_str(),
                exp.abi_name(),
                report.errors
            ),
            "each MISMATCH line names the file, what was expected and what was found",
        ))
    }
}
