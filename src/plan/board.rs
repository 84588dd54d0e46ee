//! The strategy plan of a board: its components (from the resolved build spec), what the
//! provider can build as a target-system derivation, the profile's and the command line's
//! overrides, and the pool's builders, given to the planner. `rvbuild board` builds with the
//! result; `rvbuild plan` prints it.

use std::collections::BTreeMap;

use crate::Result;
use crate::builders::history::History;
use crate::builders::inventory::native_system;
use crate::profile::build::Strategy;
use crate::profile::resolve::{self, BuildSpec};
use crate::profile::{Board, BuildProfile, Loaded, Provider};
use crate::vocab::BuilderModel;

use super::error::PlanError;
use super::strategy::{ComponentPlan, PlanRequest, board_components, plan};

/// Whether an override key (`kernel`, `userland`, or a component name) names `component`.
fn names_component(key: &str, component: &str) -> bool {
    key == component
        || (key == "kernel" && component.starts_with("module-"))
        || (key == "userland" && crate::profile::strategy::USERLAND.contains(&component))
}

/// The components an override names, with their strategy as the provider's rules resolve
/// the profile's and the command line's overrides (the command line wins, a component over
/// its group). Native and emulated are one derivation: a forced target-system build is
/// planned where the pool can run it, the asked-for placement first.
fn forced(
    names: &[String],
    profile: &Loaded<BuildProfile>,
    cli: &[(String, Strategy)],
    builders: &[BuilderModel],
    system: &str,
) -> Result<BTreeMap<String, Strategy>> {
    let from_profile: Vec<(String, Strategy)> =
        profile.value.strategy.overrides.iter().map(|(k, v)| (k.clone(), v.value)).collect();
    let resolved = crate::profile::strategy::resolve(names, &[&from_profile, cli]).map_err(PlanError::BadOverride)?;
    let has_native = builders.iter().any(|b| b.slots > 0 && b.native_systems.iter().any(|s| s == system));
    let has_emulated = builders.iter().any(|b| b.slots > 0 && b.emulated.contains_key(system));
    let mut out = BTreeMap::new();
    for c in names {
        if !from_profile.iter().chain(cli).any(|(k, _)| names_component(k, c)) {
            continue;
        }
        let Some(&s) = resolved.get(c) else { continue };
        let s = match s {
            Strategy::Native if !has_native && has_emulated => Strategy::Emulated,
            Strategy::Emulated if !has_emulated && has_native => Strategy::Native,
            other => other,
        };
        out.insert(c.clone(), s);
    }
    Ok(out)
}

/// The planned strategies and the build spec resolved with them.
pub(crate) struct BoardPlan {
    pub plans: Vec<ComponentPlan>,
    pub spec: BuildSpec,
}

/// Plans every component of `board`: `cli` (`--strategy`) over the profile's overrides, the
/// cost model for the rest.
pub(crate) fn plan_board(
    board: &Loaded<Board>,
    profile: &Loaded<BuildProfile>,
    provider: Provider,
    cli: &[(String, Strategy)],
    builders: &[BuilderModel],
    history: Option<&History>,
) -> Result<BoardPlan> {
    // The spec with only the explicit overrides validates them and names the components.
    let base = resolve::resolve_with_strategies(board, profile, provider, cli)?;
    let names = base.components();
    let system = base.arch.nix_system();
    let mut components = board_components(&names, system, true);
    for c in &mut components {
        if crate::profile::strategy::USERLAND.contains(&c.name.as_str()) {
            c.group = Some("userland".into());
            if provider == Provider::Host {
                match crate::builders::userland::find(base.arch) {
                    Ok(u) => c.target_features = vec![crate::builders::userland::feature(&u.id)],
                    Err(e) => c.target_refusal = Some(e.to_string()),
                }
            }
        }
        let key = c.group.clone().unwrap_or_else(|| c.name.clone());
        for k in [c.name.as_str(), key.as_str()] {
            if let Some((why, _)) = crate::profile::strategy::unsupported(provider, k, Strategy::Native) {
                c.target_refusal = Some(why);
                break;
            }
        }
    }
    let overrides = forced(&names, profile, cli, builders, system)?;
    let build_system = native_system();
    let plans = plan(&PlanRequest {
        components: &components,
        builders,
        history,
        overrides: &overrides,
        policy: profile.value.strategy.policy,
        build_system: &build_system,
    })?;
    // Every component explicitly, as the command line would give it.
    let chosen: Vec<(String, Strategy)> = plans.iter().map(|p| (p.component.clone(), p.strategy)).collect();
    let spec = resolve::with_strategies(base, board, profile, &chosen)
        .map_err(|e| PlanError::RefusedByProvider(Box::new(e)))?;
    Ok(BoardPlan { plans, spec })
}
