//! The cost model's defaults: what kind of component or derivation something is, and how much
//! work (seconds on a builder of speed 1.0 running natively) it takes when no history says
//! otherwise. One table holds every default.

use serde::Serialize;

use crate::builders::history::History;

/// What a component (or derivation) is, for its default work and its strategy options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ComponentKind {
    Kernel,
    Module,
    /// A compiled userland program (C), such as the init.
    Userland,
    Initramfs,
    Bootfiles,
    Firmware,
    Image,
    /// Anything else (toolchain pieces, source fetches, unknown derivations).
    Other,
}

/// Default work per kind: seconds at speed 1.0, natively or cross (a cross compiler runs at
/// the build host's native speed).
pub(crate) const DEFAULT_WORK: &[(ComponentKind, f64)] = &[
    (ComponentKind::Kernel, 300.0),
    (ComponentKind::Module, 10.0),
    (ComponentKind::Userland, 5.0),
    (ComponentKind::Initramfs, 5.0),
    (ComponentKind::Bootfiles, 2.0),
    (ComponentKind::Firmware, 3.0),
    (ComponentKind::Image, 5.0),
    (ComponentKind::Other, 10.0),
];

const MB: u64 = 1_000_000;

/// Default output size per kind (NAR bytes), until the history knows better.
pub(crate) const DEFAULT_OUTPUT_BYTES: &[(ComponentKind, u64)] = &[
    (ComponentKind::Kernel, 30 * MB),
    (ComponentKind::Module, MB),
    (ComponentKind::Userland, MB),
    (ComponentKind::Initramfs, 10 * MB),
    (ComponentKind::Bootfiles, 30 * MB),
    (ComponentKind::Firmware, 2 * MB),
    (ComponentKind::Image, 256 * MB),
    (ComponentKind::Other, 20 * MB),
];

impl ComponentKind {
    /// Default work in seconds at speed 1.0.
    pub(crate) fn default_work(self) -> f64 {
        DEFAULT_WORK.iter().find(|(k, _)| *k == self).map(|(_, w)| *w).unwrap_or(10.0)
    }

    /// Default size of the outputs (NAR bytes), for transfer estimates.
    pub(crate) fn default_output_bytes(self) -> u64 {
        DEFAULT_OUTPUT_BYTES.iter().find(|(k, _)| *k == self).map(|(_, b)| *b).unwrap_or(20 * MB)
    }

    /// Compiled for the target: it can be built cross or as a target-system derivation
    /// (native or emulated). The other kinds are assembled on the build host.
    pub(crate) fn compiles(self) -> bool {
        matches!(self, ComponentKind::Kernel | ComponentKind::Module | ComponentKind::Userland | ComponentKind::Other)
    }

    /// The kind of a board component by its name (`kernel`, `module-NAME`, `init`, ...).
    pub(crate) fn of_component(name: &str) -> ComponentKind {
        match name {
            "kernel" => ComponentKind::Kernel,
            "init" => ComponentKind::Userland,
            "initramfs" => ComponentKind::Initramfs,
            "bootfiles" => ComponentKind::Bootfiles,
            "firmware" => ComponentKind::Firmware,
            "image" => ComponentKind::Image,
            n if n.starts_with("module-") => ComponentKind::Module,
            _ => ComponentKind::Other,
        }
    }

    /// A guess from a derivation name (without hash), for derivations of the DAG that have no
    /// history yet.
    pub(crate) fn of_derivation(name: &str) -> ComponentKind {
        let n = name.to_ascii_lowercase();
        let has = |w: &str| n.contains(w);
        if has("module") {
            ComponentKind::Module
        } else if has("initramfs") || has("initrd") {
            ComponentKind::Initramfs
        } else if has("linux") || has("kernel") {
            ComponentKind::Kernel
        } else if has("image") || n.ends_with(".img") || has("sdcard") {
            ComponentKind::Image
        } else if has("firmware") || has("opensbi") || has("u-boot") || has("uboot") {
            ComponentKind::Firmware
        } else if has("bootfiles") || has("boot-files") {
            ComponentKind::Bootfiles
        } else if has("init") {
            ComponentKind::Userland
        } else {
            ComponentKind::Other
        }
    }
}

/// Estimated work of a derivation for the scheduler's `Task::work`: its history (normalised
/// to speed 1.0) when there is one, else the default of its guessed kind.
pub(crate) fn derivation_work(name: &str, history: Option<&History>) -> f64 {
    history.and_then(|h| h.work(name)).unwrap_or_else(|| ComponentKind::of_derivation(name).default_work())
}

/// Estimated output size of a derivation: the newest recorded size, else its kind's default.
pub(crate) fn derivation_output_bytes(name: &str, history: Option<&History>) -> u64 {
    history
        .and_then(|h| h.records().iter().filter(|r| r.name == name).max_by_key(|r| r.at).map(|r| r.output_bytes))
        .unwrap_or_else(|| ComponentKind::of_derivation(name).default_output_bytes())
}

/// Seconds with thousands separators (`1,900 s`), for the plan's reasons.
pub(crate) fn fmt_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "unknown".to_string();
    }
    let whole = s.round().max(0.0) as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::history::Record;

    #[test]
    fn kinds_from_component_and_derivation_names() {
        assert_eq!(ComponentKind::of_component("kernel"), ComponentKind::Kernel);
        assert_eq!(ComponentKind::of_component("module-hello"), ComponentKind::Module);
        assert_eq!(ComponentKind::of_component("init"), ComponentKind::Userland);
        assert_eq!(ComponentKind::of_component("image"), ComponentKind::Image);
        assert_eq!(ComponentKind::of_derivation("rvbuild-linux-6.1-riscv64"), ComponentKind::Kernel);
        assert_eq!(ComponentKind::of_derivation("rvbuild-module-hello"), ComponentKind::Module);
        assert_eq!(ComponentKind::of_derivation("rvbuild-initramfs"), ComponentKind::Initramfs);
        assert_eq!(ComponentKind::of_derivation("rvbuild-qemu-virt-image"), ComponentKind::Image);
        assert_eq!(ComponentKind::of_derivation("opensbi-1.5"), ComponentKind::Firmware);
        assert_eq!(ComponentKind::of_derivation("hello-2.12"), ComponentKind::Other);
        assert!(ComponentKind::Kernel.compiles());
        assert!(!ComponentKind::Image.compiles());
    }

    #[test]
    fn every_kind_has_a_default_and_history_wins() {
        for k in [
            ComponentKind::Kernel,
            ComponentKind::Module,
            ComponentKind::Userland,
            ComponentKind::Initramfs,
            ComponentKind::Bootfiles,
            ComponentKind::Firmware,
            ComponentKind::Image,
            ComponentKind::Other,
        ] {
            assert!(DEFAULT_WORK.iter().any(|(x, w)| *x == k && *w > 0.0), "{k:?}");
            assert!(DEFAULT_OUTPUT_BYTES.iter().any(|(x, b)| *x == k && *b > 0), "{k:?}");
        }
        assert_eq!(derivation_work("rvbuild-linux-x", None), 300.0);
        let mut h = History::in_memory();
        h.record(Record {
            name: "rvbuild-linux-x".into(),
            host: "x1".into(),
            strategy: "cross".into(),
            seconds: 50.0,
            host_speed: 4.0,
            slowdown: 1.0,
            output_bytes: 0,
            at: 1,
        });
        assert_eq!(derivation_work("rvbuild-linux-x", Some(&h)), 200.0);
        assert_eq!(derivation_output_bytes("rvbuild-linux-x", None), 30 * MB);
        assert_eq!(derivation_output_bytes("rvbuild-linux-x", Some(&h)), 0);
    }

    #[test]
    fn seconds_format() {
        assert_eq!(fmt_seconds(1900.2), "1,900 s");
        assert_eq!(fmt_seconds(150.0), "150 s");
        assert_eq!(fmt_seconds(1234567.0), "1,234,567 s");
        assert_eq!(fmt_seconds(f64::NAN), "unknown");
    }
}
