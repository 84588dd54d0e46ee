//! Embeds the data rvbuild ships (boards/, profiles/, nix/, drivers/) into the binary so that an
//! installed rvbuild works from any directory: the list of files is generated here.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let mut files = Vec::new();
    for d in ["boards", "profiles", "nix", "drivers"] {
        println!("cargo:rerun-if-changed={d}");
        walk(&root.join(d), &mut files);
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let mut f = match fs::File::create(out_dir.join("shipped_files.rs")) {
        Ok(f) => f,
        Err(e) => panic!("cannot write shipped_files.rs: {e}"),
    };
    let mut text = String::from("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for p in &files {
        let rel = p.strip_prefix(&root).unwrap_or(p).to_string_lossy().replace('\\', "/");
        text.push_str(&format!("    ({rel:?}, include_bytes!({:?})),\n", p.to_string_lossy()));
    }
    text.push_str("];\n");
    if let Err(e) = f.write_all(text.as_bytes()) {
        panic!("cannot write shipped_files.rs: {e}");
    }
}
