//! Board and build profiles: model, loading with source locations, validation, merging.
//!
//! Files are looked up in `boards/` and `profiles/` of the project directory first (users keep
//! their own boards in their own repositories), then among those shipped inside rvbuild.

pub mod board;
pub mod build;
pub mod diag;
pub mod error;
pub mod host_facts;
pub mod import;
pub mod resolve;
pub mod shipped;
pub mod strategy;
pub mod units;
pub mod validate;

use std::path::{Path, PathBuf};

pub use board::{Arch, Board};
pub use build::{BuildProfile, Provider, Strategy};
pub use diag::{ProfileError, ProfileErrors, SourceText};

use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind, Result};
use error::ProfileStageError;

/// Where a board or profile file came from; relative paths inside it resolve against `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file in the user's project directory (or given by path).
    Project(PathBuf),
    /// A file shipped inside rvbuild.
    Shipped,
}

/// A loaded, validated file with its source text (for later diagnostics) and origin.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub value: T,
    pub source: SourceText,
    pub origin: Origin,
}

impl<T> Loaded<T> {
    /// The directory relative paths in the file resolve against; shipped files use the
    /// materialised share directory.
    pub fn base_dir(&self) -> Result<PathBuf> {
        match &self.origin {
            // Absolute: these paths end up in generated Nix expressions, which need absolute ones.
            Origin::Project(dir) => {
                dir.canonicalize().map_err(|source| ProfileStageError::ProjectDir { dir: dir.clone(), source }.into())
            }
            Origin::Shipped => shipped::materialize(&crate::vocab::cache_dir()),
        }
    }
}

/// The hex SHA-256 of `parts`, each ended by a NUL: stable identifiers and cache keys.
fn hex_digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds `kind/name.yaml` (kind = boards | profiles): a path if `name` looks like one, else the
/// project directory, else the shipped files.
fn find(project: &Path, kind: &str, name: &str) -> Result<(SourceText, Origin, String)> {
    let looks_like_path = name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml");
    if looks_like_path {
        let p = PathBuf::from(name);
        let text = std::fs::read_to_string(&p).map_err(|source| ProfileStageError::CannotRead {
            path: p.clone(),
            kind: kind.to_string(),
            source,
        })?;
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        // A file in `<dir>/boards/` resolves relative paths against `<dir>`, like a project.
        let parent = p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let base = if parent.file_name().is_some_and(|n| n == kind) {
            parent.parent().map(Path::to_path_buf).unwrap_or(parent)
        } else {
            parent
        };
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        return Ok((SourceText { name: p.display().to_string(), text }, Origin::Project(base), stem));
    }
    if !validate::is_safe_name(name) {
        return Err(ProfileStageError::InvalidName { kind: kind.to_string(), name: name.to_string() }.into());
    }
    let local = project.join(kind).join(format!("{name}.yaml"));
    if local.is_file() {
        let text = std::fs::read_to_string(&local)
            .map_err(|source| ProfileStageError::ReadProjectFile { path: local.clone(), source })?;
        return Ok((
            SourceText { name: local.display().to_string(), text },
            Origin::Project(project.to_path_buf()),
            name.to_string(),
        ));
    }
    let rel = format!("{kind}/{name}.yaml");
    if let Some(bytes) = shipped::get(&rel) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        return Ok((SourceText { name: format!("<rvbuild>/{rel}"), text }, Origin::Shipped, name.to_string()));
    }
    let mut known = list_names(project, kind);
    known.dedup();
    Err(ProfileStageError::NotFound {
        kind: kind.to_string(),
        name: name.to_string(),
        dir: project.join(kind),
        known: known.join(", "),
    }
    .into())
}

/// Names available in `kind` (project first, then shipped), sorted and unique.
pub fn list_names(project: &Path, kind: &str) -> Vec<String> {
    let mut names = shipped::names_in(kind);
    if let Ok(rd) = std::fs::read_dir(project.join(kind)) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml")
                && let Some(s) = p.file_stem()
            {
                names.push(s.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn parse<T: serde::de::DeserializeOwned>(
    src: &SourceText,
    stem: &str,
    check: fn(&T, &str, &SourceText) -> Vec<ProfileError>,
) -> std::result::Result<T, Vec<ProfileError>> {
    let value: T = serde_saphyr::from_str(&src.text).map_err(|e| vec![src.from_yaml(&e)])?;
    let errs = check(&value, stem, src);
    if errs.is_empty() { Ok(value) } else { Err(errs) }
}

/// Turns a list of problems into one error (exit code 2).
pub fn errors_to_error(file: &str, mut errs: Vec<ProfileError>) -> Error {
    if errs.len() == 1
        && let Some(e) = errs.pop()
    {
        return Error::new(ErrorKind::Config, e);
    }
    Error::new(ErrorKind::Config, ProfileErrors { summary: format!("{file}: {} problems", errs.len()), errors: errs })
}

fn load<T: serde::de::DeserializeOwned>(
    project: &Path,
    kind: &str,
    name: &str,
    check: fn(&T, &str, &SourceText) -> Vec<ProfileError>,
) -> Result<Loaded<T>> {
    let (source, origin, stem) = find(project, kind, name)?;
    match parse(&source, &stem, check) {
        Ok(value) => Ok(Loaded { value, source, origin }),
        Err(errs) => Err(errors_to_error(&source.name, errs)),
    }
}

/// Loads and validates a board by name or path.
pub fn load_board(project: &Path, name: &str) -> Result<Loaded<Board>> {
    load(project, "boards", name, validate::board)
}

/// Loads and validates a build profile by name or path.
pub fn load_profile(project: &Path, name: &str) -> Result<Loaded<BuildProfile>> {
    load(project, "profiles", name, validate::profile)
}

/// Parses and validates board text (for tests and `--check`): all problems, or the board.
pub fn check_board_text(name: &str, stem: &str, text: &str) -> std::result::Result<Board, Vec<ProfileError>> {
    parse(&SourceText { name: name.to_string(), text: text.to_string() }, stem, validate::board)
}

/// Parses and validates build-profile text: all problems, or the profile.
pub fn check_profile_text(name: &str, stem: &str, text: &str) -> std::result::Result<BuildProfile, Vec<ProfileError>> {
    parse(&SourceText { name: name.to_string(), text: text.to_string() }, stem, validate::profile)
}

/// Validates every board and profile visible from `project` (project files and shipped ones).
/// Returns (files checked, problems).
pub fn check_all(project: &Path) -> (usize, Vec<ProfileError>) {
    let mut n = 0;
    let mut problems = Vec::new();
    for (kind, is_board) in [("boards", true), ("profiles", false)] {
        for name in list_names(project, kind) {
            n += 1;
            let found = find(project, kind, &name);
            let (src, _, stem) = match found {
                Ok(x) => x,
                Err(e) => {
                    problems.push(SourceText { name: format!("{kind}/{name}.yaml"), text: String::new() }.error_at(
                        0,
                        0,
                        e.to_string(),
                        None,
                    ));
                    continue;
                }
            };
            let errs = if is_board {
                parse(&src, &stem, validate::board).err()
            } else {
                parse(&src, &stem, validate::profile).err()
            };
            problems.extend(errs.unwrap_or_default());
        }
    }
    (n, problems)
}
