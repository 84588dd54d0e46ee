//! Component strategies as the user names them: a key is a component (`init`, `module-NAME`, ...)
//! or a group (`kernel` = the kernel and its modules, `userland` = the userland programs); what
//! each provider can build target-system; the `COMPONENT=STRATEGY` command-line form; and the
//! per-component result (command line over profile, a component over its group).

use std::collections::BTreeMap;

use miette::Diagnostic;

use super::build::{Provider, Strategy};

/// Components that only move bytes (cpio, copies, partition tables): their output does not
/// depend on the system they run on, so they always run on the build machine's system.
pub const ARCH_NEUTRAL: [&str; 4] = ["initramfs", "bootfiles", "firmware", "image"];

/// Userland programs (the `userland` group).
pub const USERLAND: [&str; 1] = ["init"];

/// Why a `--strategy COMPONENT=STRATEGY` flag or a strategy name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum StrategyFlagError {
    #[error("`{flag}` is not COMPONENT=STRATEGY (e.g. userland=emulated)")]
    #[diagnostic(code(rvbuild::profile::strategy::not_component_strategy))]
    NotComponentStrategy { flag: String },

    #[error("unknown strategy `{name}`: use cross, native or emulated")]
    #[diagnostic(code(rvbuild::profile::strategy::unknown_strategy))]
    UnknownStrategy { name: String },

    #[error("unknown component `{key}`: {}", KEYS_HELP)]
    #[diagnostic(code(rvbuild::profile::strategy::unknown_component))]
    UnknownComponent { key: String },
}

/// Parses `--strategy COMPONENT=STRATEGY`.
pub fn parse_flag(s: &str) -> Result<(String, Strategy), StrategyFlagError> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(StrategyFlagError::NotComponentStrategy { flag: s.to_string() });
    };
    let strategy = parse(value.trim())?;
    let key = key.trim();
    if !is_known_key(key) {
        return Err(StrategyFlagError::UnknownComponent { key: key.to_string() });
    }
    Ok((key.to_string(), strategy))
}

/// A strategy name.
pub fn parse(s: &str) -> Result<Strategy, StrategyFlagError> {
    match s {
        "cross" => Ok(Strategy::Cross),
        "native" => Ok(Strategy::Native),
        "emulated" => Ok(Strategy::Emulated),
        _ => Err(StrategyFlagError::UnknownStrategy { name: s.to_string() }),
    }
}

/// What the keys may be, for help texts.
pub const KEYS_HELP: &str =
    "components: kernel (with its modules), module-NAME, userland (or init), initramfs, bootfiles, firmware, image";

fn safe_module_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True for a component or group name.
pub fn is_known_key(key: &str) -> bool {
    key == "kernel"
        || key == "userland"
        || USERLAND.contains(&key)
        || ARCH_NEUTRAL.contains(&key)
        || key.strip_prefix("module-").is_some_and(safe_module_name)
}

fn is_target_system(s: Strategy) -> bool {
    s != Strategy::Cross
}

/// Why `key` cannot have `strategy` with `provider`, as (message, help); `None` when it can.
pub fn unsupported(provider: Provider, key: &str, strategy: Strategy) -> Option<(String, String)> {
    if !is_target_system(strategy) {
        return None;
    }
    if ARCH_NEUTRAL.contains(&key) {
        return Some((
            format!("`{key}` is arch-neutral and always runs on the build machine's system, not {}", strategy.as_str()),
            "its output does not depend on where it runs; give native/emulated to kernel, module-NAME or userland"
                .into(),
        ));
    }
    let kernel_group = key == "kernel" || key.starts_with("module-");
    if provider == Provider::Host && kernel_group {
        return Some((
            format!("the host provider builds `{key}` (the kernel group) only as cross, not {}", strategy.as_str()),
            "a kernel compiled under qemu-user takes ~20x as long; use cross, or the nixpkgs provider".into(),
        ));
    }
    None
}

/// Each component's strategy: components not named stay cross. `layers` are applied in order
/// (profile first, then the command line); within a layer a group comes before its members.
/// Fails when a module would differ from its kernel in being cross or target-system.
pub fn resolve(components: &[String], layers: &[&[(String, Strategy)]]) -> Result<BTreeMap<String, Strategy>, String> {
    let mut out: BTreeMap<String, Strategy> = components.iter().map(|c| (c.clone(), Strategy::Cross)).collect();
    for layer in layers {
        let mut ordered: Vec<&(String, Strategy)> = layer.iter().collect();
        // groups (and `kernel`, which names the whole kernel group) first
        ordered.sort_by_key(|(k, _)| !(k == "kernel" || k == "userland"));
        for (key, s) in ordered {
            let members: Vec<&String> = components
                .iter()
                .filter(|c| match key.as_str() {
                    "kernel" => *c == "kernel" || c.starts_with("module-"),
                    "userland" => USERLAND.contains(&c.as_str()),
                    k => *c == k,
                })
                .collect();
            if members.is_empty() {
                return Err(format!("strategy for `{key}`: this board has no such component ({KEYS_HELP})"));
            }
            for c in members {
                out.insert(c.clone(), *s);
            }
        }
    }
    if let Some(k) = out.get("kernel") {
        for (c, s) in &out {
            if c.starts_with("module-") && is_target_system(*s) != is_target_system(*k) {
                return Err(format!(
                    "`{c}` is {} but the kernel is {}: a kernel and its modules are built with one compiler (set `kernel` for both)",
                    s.as_str(),
                    k.as_str()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps() -> Vec<String> {
        ["kernel", "module-rvhello", "init", "initramfs", "bootfiles", "firmware", "image"].map(String::from).to_vec()
    }

    #[test]
    fn flags_parse_and_name_what_is_wrong() {
        assert_eq!(parse_flag("userland=emulated"), Ok(("userland".into(), Strategy::Emulated)));
        assert_eq!(parse_flag("module-rvhello=native"), Ok(("module-rvhello".into(), Strategy::Native)));
        assert!(parse_flag("userland").is_err_and(|e| e.to_string().contains("COMPONENT=STRATEGY")));
        assert!(parse_flag("userland=fast").is_err_and(|e| e.to_string().contains("unknown strategy `fast`")));
        assert!(parse_flag("kernal=cross").is_err_and(|e| e.to_string().contains("unknown component `kernal`")));
        assert!(parse_flag("module-../x=cross").is_err());
    }

    #[test]
    fn groups_expand_and_the_command_line_wins() {
        let profile = [("userland".to_string(), Strategy::Native)];
        let cli = [("init".to_string(), Strategy::Emulated)];
        let r = resolve(&comps(), &[&profile, &[]]).expect("resolve");
        assert_eq!(r["init"], Strategy::Native);
        assert_eq!(r["kernel"], Strategy::Cross);
        let r = resolve(&comps(), &[&profile, &cli]).expect("resolve");
        assert_eq!(r["init"], Strategy::Emulated);
        // a component beats its group within one layer, whatever the order given
        let both = [("init".to_string(), Strategy::Cross), ("userland".to_string(), Strategy::Native)];
        assert_eq!(resolve(&comps(), &[&both]).expect("resolve")["init"], Strategy::Cross);
        let kernel = [("kernel".to_string(), Strategy::Native)];
        let r = resolve(&comps(), &[&kernel]).expect("resolve");
        assert_eq!(r["module-rvhello"], Strategy::Native);
    }

    #[test]
    fn a_module_must_agree_with_its_kernel() {
        let m = [("module-rvhello".to_string(), Strategy::Emulated)];
        assert!(resolve(&comps(), &[&m]).is_err_and(|e| e.contains("one compiler")));
        let missing = [("module-nope".to_string(), Strategy::Cross)];
        assert!(resolve(&comps(), &[&missing]).is_err_and(|e| e.contains("no such component")));
    }

    #[test]
    fn providers_refuse_what_they_cannot_build() {
        assert!(unsupported(Provider::Host, "userland", Strategy::Emulated).is_none());
        assert!(unsupported(Provider::Host, "init", Strategy::Native).is_none());
        assert!(unsupported(Provider::Host, "kernel", Strategy::Emulated).is_some());
        assert!(unsupported(Provider::Host, "module-x", Strategy::Native).is_some());
        assert!(unsupported(Provider::Nixpkgs, "kernel", Strategy::Native).is_none());
        assert!(unsupported(Provider::Nixpkgs, "image", Strategy::Native).is_some());
        assert!(unsupported(Provider::Host, "image", Strategy::Cross).is_none());
    }
}
