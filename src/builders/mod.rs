//! Builder inventory: Nix machines syntax, ssh_config aliases, known_hosts, the merged pool
//! with its filters, turning Nix's machines into a build profile, probing builders (with the
//! probe cache) and the scheduler's model of each builder. Build history lands later.

pub mod connect;
pub mod emulation_probe;
pub mod import;
pub mod inventory;
pub mod known_hosts;
pub mod machines;
pub mod model;
pub mod probe;
pub mod ssh_config;

pub use inventory::{Builder, HostKeyStatus, PoolOptions, Sources, load_pool};
pub use machines::{HostKey, Machine, Scheme};
