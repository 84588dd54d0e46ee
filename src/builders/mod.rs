//! The builder pool and what is known of each builder: Nix machines syntax, ssh_config
//! aliases, known_hosts, the build profile's `builders:` section, the merged pool with its
//! filters, the probe cache, the build history, target-system userlands and the scheduler's
//! model of each builder. Nothing here connects to a builder (that is `transport`/`probe`).

pub mod error;
pub mod history;
pub mod inventory;
pub mod known_hosts;
pub mod machines;
pub mod model;
pub mod probe_cache;
pub mod section;
pub mod ssh_config;
pub mod systems;
pub mod userland;

pub use inventory::{Builder, HostKeyStatus, PoolOptions, Sources, load_pool};
pub use machines::{HostKey, Machine, Scheme};
pub use section::{LocalJobs, ProfileBuilders};
