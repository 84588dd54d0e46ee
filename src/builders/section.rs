//! The `builders:` section of a build profile: machines lines, whether Nix's own machines are
//! used too, and the local machine's build slots. The pool is merged from it in `inventory`.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfileBuilders {
    /// Use /etc/nix/machines and nix.conf `builders` as well.
    #[serde(default)]
    pub use_nix_machines: bool,
    /// Machines-file lines (`ssh://host system key maxJobs speed features mandatory hostkey`).
    #[serde(default)]
    pub machines: Vec<Spanned<String>>,
    /// Build slots on the local machine; `auto` = number of cores, 0 = none.
    #[serde(default)]
    pub local_jobs: Option<Spanned<LocalJobs>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LocalJobs {
    Auto,
    Count(u32),
}

impl<'de> Deserialize<'de> for LocalJobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LocalJobs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`auto` or a number of build slots")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LocalJobs, E> {
                u32::try_from(v)
                    .map(LocalJobs::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LocalJobs, E> {
                Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LocalJobs, E> {
                if v == "auto" {
                    Ok(LocalJobs::Auto)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}
