//! The errors of the profile stage outside validation (finding and reading board and profile
//! files, resolving a board into a build spec, the build host's facts, importing Nix's machines,
//! materialising the shipped files), as one typed enum with a diagnostic code per variant; and
//! the typed error of a partition's content (`--strategy` has its own in `strategy`). Validation
//! reports its findings as [`super::diag::ProfileError`]s instead.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// "board" for "boards", "profile" for "profiles" (the kind without its last letter).
fn singular(kind: &str) -> &str {
    let mut chars = kind.chars();
    chars.next_back();
    chars.as_str()
}

/// The help for a missing firmware file: the package that provides it, how else to get it,
/// and where to put it.
fn firmware_help(provides: &Option<(String, String)>, how_to_get: &Option<String>, put_at: &std::path::Path) -> String {
    let mut help = String::new();
    if let Some((pkg, path)) = provides {
        help.push_str(&format!("install the Debian package {pkg} (it provides {path}); "));
    }
    if let Some(how) = how_to_get {
        help.push_str(&format!("{how}; "));
    }
    help.push_str(&format!("or put the file at {}", put_at.display()));
    help
}

/// Something went wrong loading or resolving a board and build profile (other than a finding
/// of validation).
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ProfileStageError {
    // ------------------------------------------------------------ finding and reading files
    #[error("project directory {}: {source}", dir.display())]
    #[diagnostic(code(rvbuild::profile::project_dir))]
    ProjectDir { dir: PathBuf, source: io::Error },

    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(code(rvbuild::profile::cannot_read), help("give an existing file or a name from `rvbuild {kind}`"))]
    CannotRead { path: PathBuf, kind: String, source: io::Error },

    #[error("`{name}` is not a valid {} name", singular(kind))]
    #[diagnostic(code(rvbuild::profile::invalid_name), help("see `rvbuild {kind}`"))]
    InvalidName { kind: String, name: String },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::profile::read_project_file))]
    ReadProjectFile { path: PathBuf, source: io::Error },

    #[error("no {} named `{name}` (looked in {} and among rvbuild's own)", singular(kind), dir.display())]
    #[diagnostic(code(rvbuild::profile::not_found), help("known: {known}"))]
    NotFound { kind: String, name: String, dir: PathBuf, known: String },

    // ------------------------------------------------------------ resolving a board
    #[error("firmware file `{name}` is missing (looked at {})", looked_at.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    #[diagnostic(code(rvbuild::profile::firmware_missing), help("{}", firmware_help(provides, how_to_get, put_at)))]
    FirmwareMissing {
        name: String,
        looked_at: Vec<PathBuf>,
        /// The Debian package that provides the file, and the file's path in it.
        provides: Option<(String, String)>,
        how_to_get: Option<String>,
        put_at: PathBuf,
    },

    #[error("{board}: kernel fragment {}: {source}", path.display())]
    #[diagnostic(code(rvbuild::profile::kernel_fragment), help("fix the path in kernel.fragments"))]
    KernelFragment { board: String, path: PathBuf, source: io::Error },

    #[error("{}: `{line}` is not a CONFIG_X=value line", path.display())]
    #[diagnostic(code(rvbuild::profile::fragment_line), help("fragments hold lines like CONFIG_SERIAL_8250=y"))]
    FragmentLine { path: PathBuf, line: String },

    #[error("{board}: kernel.patches are not applied by the host provider yet")]
    #[diagnostic(code(rvbuild::profile::kernel_patches), help("remove the patches or use the nixpkgs provider"))]
    KernelPatches { board: String },

    #[error("kernel source {} is missing", tarball.display())]
    #[diagnostic(
        code(rvbuild::profile::kernel_source_missing),
        help("install Debian's linux-source-6.12 package (scripts/setup-host.sh does)")
    )]
    KernelSourceMissing { tarball: PathBuf },

    #[error("{board}: kernel.source.tarball is needed by the host provider")]
    #[diagnostic(
        code(rvbuild::profile::no_kernel_tarball),
        help("set kernel.source.tarball or use the nixpkgs provider")
    )]
    NoKernelTarball { board: String },

    #[error("{origin}: {message}")]
    #[diagnostic(code(rvbuild::profile::unsupported_strategy))]
    UnsupportedStrategy {
        /// `--strategy` or the profile's name.
        origin: String,
        message: String,
        #[help]
        help: String,
    },

    #[error("board {board}: {message}")]
    #[diagnostic(
        code(rvbuild::profile::strategies),
        help("fix strategy.overrides in the profile or the --strategy flags")
    )]
    Strategies { board: String, message: String },

    // ------------------------------------------------------------ facts of the build host
    #[error("the cross compiler {gcc} is not installed")]
    #[diagnostic(
        code(rvbuild::profile::no_cross_compiler),
        help("install the Debian package {package} (scripts/setup-host.sh does), or use the nixpkgs provider")
    )]
    NoCrossCompiler { gcc: String, package: String },

    #[error("{}: {source}", tarball.display())]
    #[diagnostic(code(rvbuild::profile::tarball))]
    Tarball { tarball: PathBuf, source: io::Error },

    #[error("tar: {source}")]
    #[diagnostic(code(rvbuild::profile::tar_cannot_run))]
    TarCannotRun { source: io::Error },

    #[error("cannot list {}: {stderr}", tarball.display())]
    #[diagnostic(code(rvbuild::profile::tar_failed))]
    TarFailed { tarball: PathBuf, stderr: String },

    // ------------------------------------------------------------ import, shipped files
    #[error("`{name}` is not a valid profile name")]
    #[diagnostic(
        code(rvbuild::profile::invalid_profile_name),
        help("letters, digits, `.`, `_`, `+`, `-`; not starting with `.` or `-`")
    )]
    InvalidProfileName { name: String },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::profile::materialize))]
    Materialize { path: PathBuf, source: io::Error },
}

impl From<ProfileStageError> for Error {
    fn from(e: ProfileStageError) -> Error {
        use ProfileStageError::*;
        let kind = match &e {
            ProjectDir { .. }
            | CannotRead { .. }
            | InvalidName { .. }
            | ReadProjectFile { .. }
            | NotFound { .. }
            | KernelFragment { .. }
            | FragmentLine { .. }
            | KernelPatches { .. }
            | NoKernelTarball { .. }
            | UnsupportedStrategy { .. }
            | Strategies { .. }
            | InvalidProfileName { .. } => ErrorKind::Config,
            FirmwareMissing { .. }
            | KernelSourceMissing { .. }
            | NoCrossCompiler { .. }
            | Tarball { .. }
            | TarCannotRun { .. }
            | TarFailed { .. } => ErrorKind::Prerequisite,
            Materialize { .. } => ErrorKind::Internal,
        };
        Error::new(kind, e)
    }
}

/// A partition's `content` that is none of bootfiles, firmware:<file> or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
#[error("unknown partition content `{value}`, expected bootfiles, firmware:<file> or empty")]
#[diagnostic(code(rvbuild::profile::unknown_part_content))]
pub struct UnknownPartContent {
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_firmware_file_keeps_its_text_help_class_and_code() {
        let e: Error = ProfileStageError::FirmwareMissing {
            name: "fw.bin".into(),
            looked_at: vec![PathBuf::from("/lib/firmware/fw.bin"), PathBuf::from("/p/firmware/fw.bin")],
            provides: Some(("firmware-misc".into(), "/lib/firmware/fw.bin".into())),
            how_to_get: Some("download it from the vendor".into()),
            put_at: PathBuf::from("/p/firmware/fw.bin"),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Prerequisite);
        assert_eq!(
            e.to_string(),
            "firmware file `fw.bin` is missing (looked at /lib/firmware/fw.bin, /p/firmware/fw.bin)"
        );
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some(
                "install the Debian package firmware-misc (it provides /lib/firmware/fw.bin); download it from the \
                 vendor; or put the file at /p/firmware/fw.bin"
            )
        );
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::profile::firmware_missing"));
    }

    #[test]
    fn not_found_names_the_kind_in_the_singular() {
        let e: Error = ProfileStageError::NotFound {
            kind: "boards".into(),
            name: "nope".into(),
            dir: PathBuf::from("/p/boards"),
            known: "a, b".into(),
        }
        .into();
        assert_eq!(e.to_string(), "no board named `nope` (looked in /p/boards and among rvbuild's own)");
        assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some("known: a, b"));
    }
}
