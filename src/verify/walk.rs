//! Expands the paths given to verify into the list of files to inspect: directories are walked
//! recursively without following symbolic links (so links cannot loop), and anything that is
//! not a regular file is recorded as skipped, never opened (a FIFO would block the reader).

use std::fs;
use std::path::{Path, PathBuf};

use super::report::FileResult;

/// One unit of work: a file to inspect, or a result already known from the walk.
pub enum Item {
    File(PathBuf),
    Done(Box<FileResult>),
}

/// Expands `paths` in order; each directory's entries sorted by name.
pub fn expand(paths: &[PathBuf]) -> Vec<Item> {
    let mut out = Vec::new();
    for p in paths {
        // Paths named on the command line are followed when they are links.
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut out),
            Ok(m) if m.is_file() => out.push(Item::File(p.clone())),
            Ok(_) => out.push(done(FileResult::skipped(shown(p), "not a regular file (device, FIFO or socket)"))),
            Err(e) => out.push(done(FileResult::error(shown(p), None, format!("cannot stat: {e}")))),
        }
    }
    out
}

/// The regular files below `root`, recursively and in path order, as (path relative to `root`,
/// path); symbolic links and special files are left out, as in [`expand`].
pub fn files_below(root: &Path) -> Vec<(String, PathBuf)> {
    expand(&[root.to_path_buf()])
        .into_iter()
        .filter_map(|item| match item {
            Item::File(p) => p.strip_prefix(root).ok().map(|rel| (rel.to_string_lossy().into_owned(), p.clone())),
            Item::Done(_) => None,
        })
        .collect()
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Depth-first, entries in name order, so the output order is the sorted path order.
fn walk_dir(root: &Path, out: &mut Vec<Item>) {
    // Pending entries, last to visit first.
    let mut stack: Vec<(PathBuf, std::io::Result<fs::FileType>)> = Vec::new();
    list_dir(root, &mut stack, out);
    while let Some((path, ty)) = stack.pop() {
        match ty {
            Ok(t) if t.is_dir() => list_dir(&path, &mut stack, out),
            Ok(t) if t.is_file() => out.push(Item::File(path)),
            Ok(t) if t.is_symlink() => out.push(done(FileResult::skipped(
                shown(&path),
                "symbolic link (not followed; its target is checked where it lives)",
            ))),
            Ok(_) => out.push(done(FileResult::skipped(shown(&path), "not a regular file (device, FIFO or socket)"))),
            Err(e) => out.push(done(FileResult::error(shown(&path), None, format!("cannot stat: {e}")))),
        }
    }
}

fn list_dir(dir: &Path, stack: &mut Vec<(PathBuf, std::io::Result<fs::FileType>)>, out: &mut Vec<Item>) {
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
            Ok(e) => listed.push((e.path(), e.file_type())),
            Err(e) => out.push(done(FileResult::error(shown(dir), None, format!("cannot read directory entry: {e}")))),
        }
    }
    listed.sort_by(|a, b| b.0.cmp(&a.0));
    stack.extend(listed);
}

fn done(r: FileResult) -> Item {
    Item::Done(Box::new(r))
}
