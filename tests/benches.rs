//! Every benchmark stays runnable by CI: each `benches/*.rs` has its `[[bench]]` entry in
//! Cargo.toml (scripts/test.sh runs exactly those, in quick mode), with `harness = false`, and
//! honours quick mode (`RVBUILD_BENCH_QUICK`, directly or through `benches/common/quick.rs`).

use std::collections::BTreeMap;
use std::path::Path;

/// `[[bench]]` entries of Cargo.toml: name → harness value as written (if any).
fn bench_entries(manifest: &str) -> BTreeMap<String, Option<String>> {
    let mut entries = BTreeMap::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    let mut flush = |c: &mut Option<(Option<String>, Option<String>)>| {
        if let Some((Some(name), harness)) = c.take() {
            entries.insert(name, harness);
        }
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut current);
            if line == "[[bench]]" {
                current = Some((None, None));
            }
            continue;
        }
        let Some(entry) = current.as_mut() else { continue };
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim() {
                "name" => entry.0 = Some(value),
                "harness" => entry.1 = Some(value),
                _ => {}
            }
        }
    }
    flush(&mut current);
    entries
}

#[test]
fn every_bench_file_is_listed_and_has_a_quick_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    let entries = bench_entries(&manifest);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("benches")).expect("read benches/") {
        let path = entry.expect("benches/ entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    assert!(!files.is_empty(), "no benches/*.rs found");
    for path in &files {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let harness = entries.get(name).unwrap_or_else(|| {
            panic!("benches/{name}.rs has no [[bench]] entry in Cargo.toml, so CI would never run it")
        });
        assert_eq!(harness.as_deref(), Some("false"), "[[bench]] {name}: set `harness = false`");
        let text = std::fs::read_to_string(path).expect("read bench");
        assert!(
            text.contains("RVBUILD_BENCH_QUICK") || text.contains("quick::"),
            "benches/{name}.rs has no quick mode (RVBUILD_BENCH_QUICK=1; see docs/benchmarks.md)"
        );
    }
    for name in entries.keys() {
        assert!(root.join("benches").join(format!("{name}.rs")).is_file(), "[[bench]] {name} has no benches/{name}.rs");
    }
}

#[test]
fn bench_entries_are_parsed_whatever_the_key_order() {
    let m = "[package]\nname = \"x\"\n\n[[bench]]\nharness = false\nname = \"a\"\n\n[[bench]]\nname = \"b\"\n\n[profile.dev]\nopt-level = 1\n";
    let e = bench_entries(m);
    assert_eq!(e.len(), 2);
    assert_eq!(e["a"].as_deref(), Some("false"));
    assert_eq!(e["b"], None);
}
