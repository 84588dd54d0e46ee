//! Builder inventory: Nix machines syntax, ssh_config aliases, known_hosts, the merged pool
//! with its filters, and turning Nix's machines into a build profile. Probing and build history
//! land later.

pub mod emulation_probe;
pub mod import;
pub mod inventory;
pub mod known_hosts;
pub mod machines;
pub mod ssh_config;

pub use inventory::{Builder, HostKeyStatus, PoolOptions, Sources, load_pool};
pub use machines::{HostKey, Machine, Scheme};
