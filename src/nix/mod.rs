//! Nix: expression generation, instantiation, .drv (ATerm) parsing, the derivation DAG, store paths, NAR and the serve protocol.

pub mod copy;
pub mod dag;
pub mod drv;
pub mod nar;
pub mod nar_stream;
pub mod nix32;
pub mod serve;
pub mod store_path;
pub mod wire;
