//! Nix: expression generation per toolchain provider, instantiation, local builds, and (as the
//! distributed engine lands) .drv parsing, the derivation DAG, NAR and the serve protocol.

pub mod host_expr;
pub mod instantiate;
pub mod local_build;
pub mod nixpkgs_expr;
pub mod render;
pub mod spec;

/// A plausible store path: `/nix/store/<32 nix32 chars>-<name>` with Nix's name characters.
/// Checked before any path from Nix's output or a file reaches a command line.
pub fn store_path_ok(p: &str) -> bool {
    let Some(rest) = p.strip_prefix("/nix/store/") else {
        return false;
    };
    let (hash, name) = match rest.split_at_checked(32) {
        Some((h, n)) => (h, n),
        None => return false,
    };
    let Some(name) = name.strip_prefix('-') else {
        return false;
    };
    hash.bytes()
        .all(|b| b"0123456789abcdfghijklmnpqrsvwxyz".contains(&b))
        && !name.is_empty()
        && name.len() <= 211
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_paths() {
        assert!(super::store_path_ok(
            "/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-rvbuild-qemu-riscv64-init.drv"
        ));
        assert!(!super::store_path_ok(
            "/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-a b"
        ));
        assert!(!super::store_path_ok(
            "/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14e-x"
        )); // 'e' is not nix32
        assert!(!super::store_path_ok("/nix/store/short-x"));
        assert!(!super::store_path_ok(
            "/tmp/37ghb7f3rd8m7imwwhkzja95q5w6h14p-x"
        ));
        assert!(!super::store_path_ok(
            "/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-;rm"
        ));
    }
}
