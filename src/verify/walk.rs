//! Expands the paths given to verify into the list of files to inspect. Directories are walked
//! recursively. Symbolic links in the user's own directories that point out of them are
//! followed (a result folder's links into the store), each target once (so `.gcroots/`, walked
//! last, does not repeat the result links); any other link is listed as skipped: one within the
//! walked tree or store path is checked where its target lives, one out of the store path is
//! not followed, so links cannot loop. A result folder (with `manifest.json`) stands for the
//! outputs its manifest names, the files `rvbuild board` checks. Anything that is not a regular
//! file is recorded as skipped, never opened (a FIFO would block the reader).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::report::FileResult;
use crate::vocab::Manifest;

/// One unit of work: a file to inspect, or a result already known from the walk.
pub enum Item {
    File(PathBuf),
    Done(Box<FileResult>),
}

/// The outputs of a build that reach the board: the disk image, boot files (kernel, initramfs
/// with its init and modules, the board's DTBs, extlinux), firmware, and the module outputs.
/// Not the kernel's `dev` tree (host tools) nor the DTBs of other boards of the SoC family.
pub fn board_outputs(m: &Manifest) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for (c, rec) in &m.components {
        if matches!(c.as_str(), "image" | "bootfiles" | "firmware" | "init") || c.starts_with("module-") {
            v.extend(rec.outputs.first().map(PathBuf::from));
        }
    }
    v
}

/// Directories and files already visited, by canonical path.
#[derive(Default)]
struct Seen(HashSet<PathBuf>);

impl Seen {
    /// True the first time `p` (canonical) is offered.
    fn first(&mut self, p: &Path) -> bool {
        self.0.insert(p.to_path_buf())
    }
}

/// Expands `paths` in order; each directory's entries sorted by name (`.gcroots` last).
pub fn expand(paths: &[PathBuf]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut seen = Seen::default();
    for p in paths {
        // Paths named on the command line are followed when they are links.
        let canonical = fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => match Manifest::load(p) {
                Ok(manifest) if p.join("manifest.json").is_file() => {
                    for o in board_outputs(&manifest) {
                        let root = fs::canonicalize(&o).unwrap_or_else(|_| o.clone());
                        if o.is_dir() && seen.first(&root) {
                            walk_dir(&o, Some(&root), &mut seen, &mut out);
                        } else if o.is_file() && seen.first(&root) {
                            out.push(Item::File(o));
                        }
                    }
                }
                _ if seen.first(&canonical) => walk_dir(p, None, &mut seen, &mut out),
                _ => {}
            },
            Ok(m) if m.is_file() => {
                if seen.first(&canonical) {
                    out.push(Item::File(p.clone()));
                }
            }
            Ok(_) => out.push(done(FileResult::skipped(shown(p), "not a regular file (device, FIFO or socket)"))),
            Err(e) => out.push(done(FileResult::error(shown(p), None, format!("cannot stat: {e}")))),
        }
    }
    out
}

/// The regular files below `root`, recursively and in path order, as (path relative to `root`,
/// path); symbolic links and special files are left out.
pub fn files_below(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut listed: Vec<(PathBuf, fs::FileType)> =
            rd.flatten().filter_map(|e| e.file_type().ok().map(|t| (e.path(), t))).collect();
        listed.sort_by(|a, b| b.0.cmp(&a.0));
        for (p, t) in listed {
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file()
                && let Ok(rel) = p.strip_prefix(root)
            {
                out.push((rel.to_string_lossy().into_owned(), p.clone()));
            }
        }
    }
    out.sort();
    out
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Depth-first, entries in name order. `root` is the canonical store path (or other target) a
/// followed link led into, `None` in the user's own directories. Only links in the user's own
/// directories that point out of them are followed (a result folder's links into the store);
/// every other link is listed as skipped: its target is checked where it lives, or lies outside
/// the store path the walk was led into.
fn walk_dir(dir: &Path, root: Option<&Path>, seen: &mut Seen, out: &mut Vec<Item>) {
    let base = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // Pending entries, last to visit first, each with the root it lies in.
    let mut stack: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    list_dir(dir, root, &mut stack, out);
    while let Some((path, root)) = stack.pop() {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                out.push(done(FileResult::error(shown(&path), None, format!("cannot stat: {e}"))));
                continue;
            }
        };
        if meta.is_dir() {
            list_dir(&path, root.as_deref(), &mut stack, out);
        } else if meta.is_file() {
            out.push(Item::File(path));
        } else if meta.file_type().is_symlink() {
            follow(path, root.as_deref(), &base, seen, &mut stack, out);
        } else {
            out.push(done(FileResult::skipped(shown(&path), "not a regular file (device, FIFO or socket)")));
        }
    }
}

/// A symbolic link met in a walk: followed, or listed as skipped with the reason.
fn follow(
    path: PathBuf,
    root: Option<&Path>,
    base: &Path,
    seen: &mut Seen,
    stack: &mut Vec<(PathBuf, Option<PathBuf>)>,
    out: &mut Vec<Item>,
) {
    let skip = |why: String| done(FileResult::skipped(shown(&path), why));
    let target = match fs::canonicalize(&path) {
        Ok(t) => t,
        Err(e) => {
            out.push(skip(format!("symbolic link that does not resolve (dangling or a loop: {e})")));
            return;
        }
    };
    let within = root.unwrap_or(base);
    if target.starts_with(within) {
        out.push(skip(format!("symbolic link within {} (its target is checked where it lives)", within.display())));
        return;
    }
    if let Some(r) = root {
        out.push(skip(format!("symbolic link out of {} (not followed)", r.display())));
        return;
    }
    if !seen.first(&target) {
        // Reached before through another link (`.gcroots/` repeats the result links).
        out.push(skip(format!("symbolic link to {}, already walked", target.display())));
        return;
    }
    match fs::metadata(&target) {
        Ok(m) if m.is_dir() => list_dir(&path, Some(&target), stack, out),
        Ok(m) if m.is_file() => out.push(Item::File(path)),
        _ => out.push(skip("not a regular file (device, FIFO or socket)".into())),
    }
}

fn list_dir(dir: &Path, root: Option<&Path>, stack: &mut Vec<(PathBuf, Option<PathBuf>)>, out: &mut Vec<Item>) {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(done(FileResult::error(shown(dir), None, format!("cannot read directory: {e}"))));
            return;
        }
    };
    let mut listed = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => listed.push(e.path()),
            Err(e) => out.push(done(FileResult::error(shown(dir), None, format!("cannot read directory entry: {e}")))),
        }
    }
    // Popped from the end: reverse name order, with `.gcroots` (GC roots of a result folder,
    // the same store paths as its links) visited last.
    let gcroots = |p: &Path| p.file_name().is_some_and(|n| n == ".gcroots");
    listed.sort_by(|a, b| gcroots(b).cmp(&gcroots(a)).then(b.cmp(a)));
    stack.extend(listed.into_iter().map(|p| (p, root.map(Path::to_path_buf))));
}

fn done(r: FileResult) -> Item {
    Item::Done(Box::new(r))
}
