//! Every fuzz target (fuzz/src/lib.rs, included here as it is) replayed over its checked-in
//! seeds (fuzz/seeds/TARGET) and the inputs that once crashed it (fuzz/regressions/TARGET):
//! CI runs each parser of outside input on them on every change, cheaply, without libFuzzer.
//! A crash found by fuzzing is fixed and its input added to fuzz/regressions/TARGET.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod harness;

use std::path::PathBuf;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_target_has_seeds_and_survives_them_and_its_regressions() {
    let mut replayed = 0;
    for (name, body) in harness::TARGETS {
        let seeds = inputs("seeds", name);
        assert!(!seeds.is_empty(), "fuzz/seeds/{name} is empty: a target without seeds is not exercised");
        for f in seeds.iter().chain(inputs("regressions", name).iter()) {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(run.is_ok(), "fuzz target {name} crashed on {}", f.display());
            replayed += 1;
        }
    }
    assert!(replayed >= harness::TARGETS.len());
}

/// Every target binary in fuzz/Cargo.toml has its body in the harness, and the other way round.
#[test]
fn fuzz_cargo_toml_lists_every_target() {
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    for (name, _) in harness::TARGETS {
        assert!(toml.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(src.is_file(), "{} is missing", src.display());
    }
}
