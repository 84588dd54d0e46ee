//! Nix: expression generation, instantiation, .drv (ATerm) parsing, the derivation DAG, store paths, NAR and the serve protocol.

pub mod dag;
pub mod drv;
pub mod nar;
pub mod nix32;
pub mod store_path;
