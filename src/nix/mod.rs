//! Nix: expression generation per toolchain provider, instantiation, `.drv` (ATerm) parsing,
//! the derivation DAG, store paths, NAR and the serve protocol client.

pub mod copy;
pub mod dag;
pub mod drv;
pub mod error;
pub mod host_expr;
pub mod instantiate;
pub mod nar;
pub mod nar_stream;
pub mod nix32;
pub mod nixpkgs_expr;
pub mod render;
pub mod serve;
pub mod store_path;
pub mod wire;

/// True when `p` is a valid store path. Checked before any path printed by Nix or read from a
/// file reaches a command line.
pub fn store_path_ok(p: &str) -> bool {
    store_path::StorePath::parse(p).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_paths() {
        assert!(super::store_path_ok("/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-rvbuild-qemu-riscv64-init.drv"));
        assert!(!super::store_path_ok("/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-a b"));
        assert!(!super::store_path_ok("/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14e-x"));
        assert!(!super::store_path_ok("/nix/store/short-x"));
        assert!(!super::store_path_ok("/tmp/37ghb7f3rd8m7imwwhkzja95q5w6h14p-x"));
        assert!(!super::store_path_ok("/nix/store/37ghb7f3rd8m7imwwhkzja95q5w6h14p-;rm"));
    }
}
