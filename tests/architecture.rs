//! The layering of docs/architecture.md, enforced: every `crate::…` reference in `src/` goes to
//! a module of a lower rank (or stays in its own module), files of one module form no circle,
//! and every top-level module is in the table.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Names at the crate root that are re-exports of `vocab` items.
const ROOT_REEXPORTS: &[&str] = &["Error", "ErrorKind", "Result"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module -> rank` from the table in docs/architecture.md.
fn layers() -> BTreeMap<String, usize> {
    let doc = fs::read_to_string(repo().join("docs/architecture.md")).expect("docs/architecture.md is readable");
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 4 {
            continue;
        }
        let (Ok(rank), Some(name)) =
            (cols[1].parse::<usize>(), cols[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')))
        else {
            continue;
        };
        out.insert(name.to_string(), rank);
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string literals and the trailing unit-test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // a char literal ('"', '\n'); lifetimes have no closing quote
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Every `crate::a::b…` path in `code`, as `(a, b)` (b empty when the path stops at `a`),
/// with `use crate::{x, y::z}` groups expanded.
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top(&group[..end]) {
                let first = ident_at(item.trim());
                let second = item.trim()[first.len()..].strip_prefix("::").map(ident_at).unwrap_or("");
                if !first.is_empty() {
                    out.push((first.to_string(), second.to_string()));
                }
            }
            continue;
        }
        let first = ident_at(rest);
        let second = rest[first.len()..].strip_prefix("::").map(ident_at).unwrap_or("");
        out.push((first.to_string(), second.to_string()));
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `src/a/b/c.rs` -> ("a", "b"); `src/a/b.rs` -> ("a", "b"); `src/a/mod.rs` -> ("a", "");
/// `src/a.rs` -> ("a", "").
fn place(src: &Path, file: &Path) -> (String, String) {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    let top = parts.first().cloned().unwrap_or_default();
    let sub = match parts.get(1) {
        Some(s) if s != "mod" => s.clone(),
        _ => String::new(),
    };
    (top, sub)
}

/// Sibling references inside a module: `super::x` from a file one level down.
fn super_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "super::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            out.extend(split_top(&group[..end]).into_iter().map(|s| ident_at(s.trim()).to_string()));
        } else {
            out.push(ident_at(rest).to_string());
        }
    }
    out
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[from..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn every_import_goes_down_the_layers_of_docs_architecture_md() {
    let layers = layers();
    assert!(layers.len() >= 10, "docs/architecture.md lists only {} layers: is the table intact?", layers.len());
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();

    let mut problems = Vec::new();
    let tops: BTreeSet<String> = files.iter().map(|f| place(&src, f).0).filter(|t| t != "lib" && t != "main").collect();
    for t in &tops {
        if !layers.contains_key(t) {
            problems.push(format!("src/{t} is not in the layer table of docs/architecture.md"));
        }
    }
    for l in layers.keys() {
        if !tops.contains(l) {
            problems.push(format!("docs/architecture.md lists `{l}`, which is not a module in src/"));
        }
    }

    let mut siblings: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut checked = 0usize;
    for f in &files {
        let (top, sub) = place(&src, f);
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(&rank) = layers.get(&top) else { continue };
        let text = fs::read_to_string(f).expect("source file is readable");
        let code = code_of(&text);
        let shown = f.strip_prefix(repo()).unwrap_or(f).display().to_string();
        for (target, second) in crate_paths(&code) {
            checked += 1;
            let target = if ROOT_REEXPORTS.contains(&target.as_str()) { "vocab".to_string() } else { target };
            if target == top {
                if !sub.is_empty() && !second.is_empty() && second != sub {
                    siblings.entry(top.clone()).or_default().entry(sub.clone()).or_default().insert(second);
                }
                continue;
            }
            let target_rank = if let Some(&r) = layers.get(&target) {
                r
            } else {
                problems.push(format!("{shown}: `crate::{target}` is neither a layer nor a vocab re-export"));
                continue;
            };
            if target_rank >= rank {
                problems.push(format!(
                    "{shown}: `{top}` (rank {rank}) uses `crate::{target}` (rank {target_rank}): imports go to lower ranks only"
                ));
            }
        }
        // `super::x` from a file directly inside a module names a sibling file.
        let depth = f.strip_prefix(&src).map(|r| r.iter().count()).unwrap_or(0);
        let is_mod = f.file_name().is_some_and(|n| n == "mod.rs");
        if depth == 2 && !is_mod && !sub.is_empty() {
            for s in super_paths(&code) {
                if !s.is_empty() && s != sub && s.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    siblings.entry(top.clone()).or_default().entry(sub.clone()).or_default().insert(s);
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} `crate::` references found: the scanner is broken");
    for (top, graph) in &siblings {
        if let Some(cycle) = find_cycle(graph) {
            problems.push(format!("src/{top}: files import each other in a circle: {}", cycle.join(" -> ")));
        }
    }
    assert!(problems.is_empty(), "{} layering problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn the_scanner_finds_grouped_and_inline_paths_and_ignores_comments_and_tests() {
    let code = code_of(
        "use crate::{a::X, b, c::{d, e}};\n// crate::hidden\nfn f() { crate::g::h(); let s = \"crate::str\"; }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let found: Vec<String> = crate_paths(&code).into_iter().map(|(a, b)| format!("{a}:{b}")).collect();
    assert_eq!(found, ["a:X", "b:", "c:", "g:h"]);
    let mut g = BTreeMap::new();
    g.insert("x".to_string(), BTreeSet::from(["y".to_string()]));
    g.insert("y".to_string(), BTreeSet::from(["x".to_string()]));
    assert!(find_cycle(&g).is_some());
    g.remove("y");
    assert!(find_cycle(&g).is_none());
}

/// What only `cli`, `report` and `main.rs` may do: print, exit the process, start a runtime.
const LOUD: &[&str] = &[
    "println!",
    "eprintln!",
    "print!(",
    "eprint!(",
    "process::exit",
    "runtime::Builder",
    "Runtime::new",
    "new_multi_thread",
    "new_current_thread",
];

/// The entries of [`LOUD`] that `code` (comments, strings and tests already removed) contains
/// as whole tokens.
fn loud_calls(code: &str) -> Vec<&'static str> {
    LOUD.iter()
        .copied()
        .filter(|pat| {
            code.match_indices(pat)
                .any(|(i, _)| !code[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'))
        })
        .collect()
}

#[test]
fn core_never_prints_exits_or_starts_a_runtime() {
    let sample = code_of(
        "fn f() { eprintln!(\"x\"); let s = \"println!\"; }\n// std::process::exit(1)\nfn g() { sprint!(); }\n#[cfg(test)]\nmod tests { fn t() { tokio::runtime::Builder::new_current_thread(); } }\n",
    );
    assert_eq!(loud_calls(&sample), ["eprintln!"], "the scanner is broken");

    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for f in &files {
        let (top, _) = place(&src, f);
        if matches!(top.as_str(), "cli" | "report" | "main") {
            continue;
        }
        let text = fs::read_to_string(f).expect("source file is readable");
        let found = loud_calls(&code_of(&text));
        if !found.is_empty() {
            let shown = f.strip_prefix(repo()).unwrap_or(f).display().to_string();
            problems.push(format!("{shown}: {}", found.join(", ")));
        }
    }
    assert!(
        problems.is_empty(),
        "core never prints and never exits, and `main` owns the one tokio runtime (docs/architecture.md): \
         report through vocab::event::Reporter or return data to `cli`; take a runtime Handle:\n  {}",
        problems.join("\n  ")
    );
}
