//! Nix: expression generation, instantiation, .drv (ATerm) parsing, the derivation DAG, store paths, NAR and the serve protocol.
