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
            Ok(_) => out.push(done(FileResult::skipped(
                shown(p),
                "not a regular file (device, FIFO or socket)",
            ))),
            Err(e) => out.push(done(FileResult::error(
                shown(p),
                None,
                format!("cannot stat: {e}"),
            ))),
        }
    }
    out
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

fn walk_dir(root: &Path, out: &mut Vec<Item>) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                out.push(done(FileResult::error(
                    shown(&dir),
                    None,
                    format!("cannot read directory: {e}"),
                )));
                continue;
            }
        };
        let mut listed = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => listed.push((e.path(), e.file_type())),
                Err(e) => out.push(done(FileResult::error(
                    shown(&dir),
                    None,
                    format!("cannot read directory entry: {e}"),
                ))),
            }
        }
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (path, ty) in listed {
            match ty {
                Ok(t) if t.is_dir() => subdirs.push(path),
                Ok(t) if t.is_file() => out.push(Item::File(path)),
                Ok(t) if t.is_symlink() => out.push(done(FileResult::skipped(
                    shown(&path),
                    "symbolic link (not followed; its target is checked where it lives)",
                ))),
                Ok(_) => out.push(done(FileResult::skipped(
                    shown(&path),
                    "not a regular file (device, FIFO or socket)",
                ))),
                Err(e) => out.push(done(FileResult::error(
                    shown(&path),
                    None,
                    format!("cannot stat: {e}"),
                ))),
            }
        }
        // Depth-first in name order: push in reverse so the first name is walked first.
        stack.extend(subdirs.into_iter().rev());
    }
}

fn done(r: FileResult) -> Item {
    Item::Done(Box::new(r))
}
