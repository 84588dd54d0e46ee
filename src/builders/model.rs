//! The scheduler's view of a builder ([`BuilderModel`]) from the pool entry and its last probe:
//! what the probe measured where there is one (stale probes are still used, and flagged),
//! the machines file and stated assumptions where there is not.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Builder;
use super::machines::Scheme;
use super::probe_cache::ProbeResult;
use super::systems;
use crate::vocab::BuilderModel;

/// Assumed slowdown of a system run through qemu-user emulation when it was never measured:
/// compilers typically run 5-20x slower under qemu-user; 15 errs on the slow side so that an
/// unmeasured emulated host is not preferred over a native one.
pub const DEFAULT_EMULATION_SLOWDOWN: f64 = 15.0;

/// Probes older than this are flagged stale (still used): one week.
pub const DEFAULT_MAX_AGE_S: u64 = 7 * 24 * 3600;

/// Choices and assumptions for building the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPolicy {
    /// Age (seconds) after which a probe is stale.
    pub max_age_s: u64,
    /// Slowdown assumed for an emulated system that was not measured.
    pub default_slowdown: f64,
    /// Also schedule systems that run through binfmt there but are not in the builder's Nix
    /// `extra-platforms` (only useful when rvbuild passes `extra-platforms` to that Nix itself:
    /// Nix refuses to build a system it does not declare).
    pub undeclared_emulation: bool,
    /// Link throughput assumed between this machine and a remote builder (bytes/s): 100 Mbit/s.
    pub remote_link_bytes_per_s: f64,
    /// Fixed cost assumed per remote build step (seconds).
    pub remote_dispatch_s: f64,
}

impl Default for ModelPolicy {
    fn default() -> Self {
        ModelPolicy {
            max_age_s: DEFAULT_MAX_AGE_S,
            default_slowdown: DEFAULT_EMULATION_SLOWDOWN,
            undeclared_emulation: false,
            remote_link_bytes_per_s: 12.5e6,
            remote_dispatch_s: 0.2,
        }
    }
}

/// How old the probe behind a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProbeAge {
    pub probed_at: u64,
    pub age_s: u64,
    /// Older than [`ModelPolicy::max_age_s`]: used, but worth probing again.
    pub stale: bool,
}

/// A builder model with where its numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelledBuilder {
    pub model: BuilderModel,
    /// None = never probed: everything comes from the pool entry and assumptions.
    pub probe: Option<ProbeAge>,
    /// Which figures are assumed rather than measured, in words.
    pub assumptions: Vec<String>,
}

/// The model of `builder` given its last probe (if any) at time `now` (unix seconds).
///
/// - slots: the pool entry's maxJobs;
/// - native systems: the probed `system` plus declared extra platforms of the same CPU family
///   (i686 on x86_64); unprobed: the entry's first system and those of its family;
/// - emulated: other declared systems (and, with [`ModelPolicy::undeclared_emulation`],
///   working binfmt systems) with the measured slowdown, else [`ModelPolicy::default_slowdown`];
///   an emulated system whose benchmark failed there is left out;
/// - speed: measured, else the machines file's speedFactor;
/// - features: the entry's, else the probed `system-features`.
pub fn builder_model(
    builder: &Builder,
    probe: Option<&ProbeResult>,
    policy: &ModelPolicy,
    now: u64,
) -> ModelledBuilder {
    let mut assumptions = Vec::new();
    let local = builder.scheme == Scheme::Local;
    let mut native_systems: Vec<String> = Vec::new();
    let mut emulated: BTreeMap<String, f64> = BTreeMap::new();
    let push = |v: &mut Vec<String>, s: &str| {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    };
    let probed_system = probe.and_then(|p| p.system.as_deref());
    match (probe, probed_system) {
        (Some(p), Some(native)) => {
            push(&mut native_systems, native);
            let mut consider: Vec<&str> = p.extra_platforms.iter().map(String::as_str).collect();
            if policy.undeclared_emulation {
                consider.extend(p.emulated.iter().filter(|(_, e)| e.working()).map(|(s, _)| s.as_str()));
            }
            for s in consider {
                if systems::runs_natively(native, s) {
                    push(&mut native_systems, s);
                    continue;
                }
                match p.emulated.get(s) {
                    Some(e) if e.slowdown.is_some() => {
                        emulated.insert(s.to_string(), e.slowdown.unwrap_or(policy.default_slowdown));
                    }
                    Some(_) if p.errors.contains_key(&format!("emulated {s}")) => {
                        assumptions.push(format!("{s} left out: its benchmark failed there"));
                    }
                    _ => {
                        emulated.insert(s.to_string(), policy.default_slowdown);
                        assumptions.push(format!("{s} slowdown {}x assumed (not measured)", policy.default_slowdown));
                    }
                }
            }
        }
        _ => {
            let first = builder.systems.first().map(String::as_str).unwrap_or_default();
            for s in &builder.systems {
                if first.is_empty() || systems::runs_natively(first, s) {
                    push(&mut native_systems, s);
                } else {
                    emulated.insert(s.clone(), policy.default_slowdown);
                }
            }
            assumptions.push(format!(
                "not probed: {} taken as native{}",
                if first.is_empty() { "nothing" } else { first },
                if emulated.is_empty() {
                    String::new()
                } else {
                    format!(", other CPU families emulated at {}x", policy.default_slowdown)
                }
            ));
        }
    }
    let speed = match probe.and_then(|p| p.speed).filter(|s| s.is_finite() && *s > 0.0) {
        Some(s) => s,
        None => {
            assumptions.push(format!("speed {} from the machines file (not measured)", builder.speed));
            if builder.speed.is_finite() && builder.speed > 0.0 { builder.speed } else { 1.0 }
        }
    };
    let supported_features = if builder.supported_features.is_empty() {
        probe.and_then(|p| p.system_features.clone()).unwrap_or_default()
    } else {
        builder.supported_features.clone()
    };
    let age = probe.map(|p| {
        let age_s = now.saturating_sub(p.probed_at);
        ProbeAge { probed_at: p.probed_at, age_s, stale: age_s > policy.max_age_s }
    });
    if let Some(a) = age.filter(|a| a.stale) {
        assumptions.push(format!(
            "probe is {} old (stale): run `rvbuild builders probe {}`",
            human_age(a.age_s),
            builder.name
        ));
    }
    ModelledBuilder {
        model: BuilderModel {
            name: builder.name.clone(),
            slots: builder.max_jobs,
            native_systems,
            emulated,
            speed,
            supported_features,
            mandatory_features: builder.mandatory_features.clone(),
            local,
            link_bytes_per_s: if local { f64::MAX } else { policy.remote_link_bytes_per_s },
            dispatch_overhead_s: if local { 0.0 } else { policy.remote_dispatch_s },
        },
        probe: age,
        assumptions,
    }
}

/// `42s`, `5m`, `3h`, `2d`.
pub fn human_age(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::HostKeyStatus;
    use crate::probe::EmulatedSystem;

    fn builder(systems: &[&str], speed: f64) -> Builder {
        Builder {
            name: "ruby".into(),
            uri: "ssh://ruby".into(),
            scheme: Scheme::Ssh,
            user: None,
            host: "ruby".into(),
            port: 22,
            systems: systems.iter().map(|s| s.to_string()).collect(),
            identity: Vec::new(),
            max_jobs: 6,
            speed,
            supported_features: Vec::new(),
            mandatory_features: vec!["big".into()],
            host_key: HostKeyStatus::Unknown,
            tags: Vec::new(),
            source: "test".into(),
        }
    }

    fn emu(declared: bool, slowdown: Option<f64>) -> EmulatedSystem {
        EmulatedSystem { declared, binfmt: Some("qemu".into()), slowdown }
    }

    fn probe() -> ProbeResult {
        ProbeResult {
            builder: "ruby".into(),
            uri: "ssh://ruby".into(),
            probed_at: 1_000,
            measured_at: Some(1_000),
            duration_s: 2.0,
            nix_version: Some("2.8.0".into()),
            system: Some("x86_64-linux".into()),
            extra_platforms: vec![
                "i686-linux".into(),
                "aarch64-linux".into(),
                "armv7l-linux".into(),
                "mips-linux".into(),
            ],
            system_features: Some(vec!["kvm".into()]),
            emulated: BTreeMap::from([
                ("aarch64-linux".into(), emu(true, Some(9.5))),
                ("riscv64-linux".into(), emu(false, Some(6.0))),
                ("armv7l-linux".into(), emu(true, None)),
            ]),
            cores: Some(8),
            load1: Some(0.1),
            free_disk_bytes: Some(1),
            speed: Some(1.7),
            bench_ns_per_round: Some(1.0),
            errors: BTreeMap::from([("emulated armv7l-linux".into(), "exit 126".into())]),
            userlands: Default::default(),
            cross_compilers: Default::default(),
        }
    }

    #[test]
    fn probed_builder_uses_measurements() {
        let p = probe();
        let m = builder_model(&builder(&["x86_64-linux"], 3.0), Some(&p), &ModelPolicy::default(), 1_060);
        assert_eq!(m.model.slots, 6);
        assert_eq!(m.model.native_systems, vec!["x86_64-linux", "i686-linux"]);
        // aarch64 measured; riscv64 works but is not declared (Nix would refuse it); armv7l's
        // benchmark failed; mips declared, never measured: assumed.
        assert_eq!(
            m.model.emulated,
            BTreeMap::from([
                ("aarch64-linux".to_string(), 9.5),
                ("mips-linux".to_string(), DEFAULT_EMULATION_SLOWDOWN)
            ])
        );
        assert_eq!(m.model.speed, 1.7);
        assert_eq!(m.model.supported_features, vec!["kvm"]);
        assert_eq!(m.model.mandatory_features, vec!["big"]);
        assert!(!m.model.local && m.model.dispatch_overhead_s > 0.0);
        assert_eq!(m.probe, Some(ProbeAge { probed_at: 1_000, age_s: 60, stale: false }));
        assert!(m.assumptions.iter().any(|a| a.contains("armv7l-linux left out")), "{:?}", m.assumptions);

        let with_binfmt = ModelPolicy { undeclared_emulation: true, ..ModelPolicy::default() };
        let m = builder_model(&builder(&[], 1.0), Some(&p), &with_binfmt, 1_000 + DEFAULT_MAX_AGE_S + 1);
        assert_eq!(m.model.emulated.get("riscv64-linux"), Some(&6.0));
        assert!(m.probe.is_some_and(|a| a.stale));
        assert!(m.assumptions.iter().any(|a| a.contains("stale") && a.contains("builders probe ruby")));
    }

    #[test]
    fn unprobed_builder_uses_the_machines_file_and_assumptions() {
        let b = builder(&["x86_64-linux", "i686-linux", "riscv64-linux"], 2.5);
        let m = builder_model(&b, None, &ModelPolicy::default(), 0);
        assert_eq!(m.model.native_systems, vec!["x86_64-linux", "i686-linux"]);
        assert_eq!(m.model.emulated, BTreeMap::from([("riscv64-linux".to_string(), 15.0)]));
        assert_eq!(m.model.speed, 2.5);
        assert!(m.model.supported_features.is_empty());
        assert_eq!(m.probe, None);
        assert!(m.assumptions.iter().any(|a| a.contains("not probed")));
        // A probe that could not read the system counts as no probe for systems, but its speed is used.
        let mut p = probe();
        p.system = None;
        let m = builder_model(&b, Some(&p), &ModelPolicy::default(), 1_000);
        assert_eq!(m.model.native_systems, vec!["x86_64-linux", "i686-linux"]);
        assert_eq!(m.model.speed, 1.7);
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(125), "2m");
        assert_eq!(human_age(7300), "2h");
        assert_eq!(human_age(3 * 86400), "3d");
    }
}
