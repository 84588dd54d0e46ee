//! The errors of the schedule stage (a malformed task graph, a task no builder can take, a
//! simulation that did not finish), as one typed enum with a diagnostic code per variant. Each
//! variant picks its [`ErrorKind`] in the conversion into the crate-wide [`Error`].

use miette::Diagnostic;

use crate::vocab::model::BuilderId;
use crate::{Error, ErrorKind};

/// ", requiredSystemFeatures a b" when a task requires features.
fn required(features: &[String]) -> String {
    if features.is_empty() { String::new() } else { format!(", requiredSystemFeatures {}", features.join(" ")) }
}

/// Why each host considered cannot take the task, or that there was none.
fn considered(hosts: &Option<Vec<(String, String)>>) -> String {
    match hosts {
        None => ": the builder pool is empty".to_string(),
        Some(hosts) => {
            let mut s = "; hosts considered:".to_string();
            for (name, why) in hosts {
                s.push_str(&format!("\n  - {name}: {why}"));
            }
            s
        }
    }
}

/// The other tasks without a builder (the first few by name, then how many more).
fn also_without(names: &[String], more: usize) -> String {
    let mut s = String::new();
    if !names.is_empty() {
        s.push_str(&format!("\nalso without a builder: {}", names.join(", ")));
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
    }
    s
}

/// Something went wrong scheduling the tasks of a build.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ScheduleError {
    #[error("task {task} ({name}) names input {input}, which is not another task of this build")]
    #[diagnostic(code(rvbuild::schedule::bad_input))]
    BadInput { task: usize, name: String, input: usize },

    #[error("the task graph has a cycle through {through}")]
    #[diagnostic(code(rvbuild::schedule::cycle))]
    Cycle { through: String },

    #[error(
        "no builder can build {task} (system {system}{}){}{}",
        required(.features),
        considered(.hosts),
        also_without(.also, *.more)
    )]
    #[diagnostic(
        code(rvbuild::schedule::no_capable_builder),
        help(
            "add a builder that runs {system} natively or through binfmt emulation (extra-platforms in its machines line), or build the component cross (--strategy COMPONENT=cross)"
        )
    )]
    NoCapableBuilder {
        task: String,
        system: String,
        features: Vec<String>,
        /// Each host considered with why it refuses the task; None when the pool is empty.
        hosts: Option<Vec<(String, String)>>,
        /// Other tasks without a builder (the first five).
        also: Vec<String>,
        /// How many more beyond `also`.
        more: usize,
    },

    #[error("builder {builder} is not in the pool")]
    #[diagnostic(code(rvbuild::schedule::unknown_builder))]
    UnknownBuilder { builder: BuilderId },

    #[error("the simulated schedule stalled with tasks left")]
    #[diagnostic(code(rvbuild::schedule::simulation_stalled))]
    SimulationStalled,

    #[error("the simulated schedule did not finish")]
    #[diagnostic(code(rvbuild::schedule::simulation_unfinished))]
    SimulationUnfinished,
}

impl From<ScheduleError> for Error {
    fn from(e: ScheduleError) -> Error {
        use ScheduleError::*;
        let kind = match &e {
            NoCapableBuilder { .. } => ErrorKind::Builder,
            BadInput { .. } | Cycle { .. } | UnknownBuilder { .. } | SimulationStalled | SimulationUnfinished => {
                ErrorKind::Internal
            }
        };
        Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_capable_builder_keeps_its_text_help_class_and_code() {
        let e: Error = ScheduleError::NoCapableBuilder {
            task: "hello.drv".into(),
            system: "riscv64-linux".into(),
            features: vec!["kvm".into()],
            hosts: Some(vec![("local".into(), "runs x86_64-linux".into()), ("b1".into(), "is down".into())]),
            also: vec!["a.drv".into()],
            more: 2,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Builder);
        assert_eq!(
            e.to_string(),
            "no builder can build hello.drv (system riscv64-linux, requiredSystemFeatures kvm); hosts considered:\n  \
             - local: runs x86_64-linux\n  - b1: is down\nalso without a builder: a.drv and 2 more"
        );
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some(
                "add a builder that runs riscv64-linux natively or through binfmt emulation (extra-platforms in its \
                 machines line), or build the component cross (--strategy COMPONENT=cross)"
            )
        );
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::schedule::no_capable_builder"));
        let empty: Error = ScheduleError::NoCapableBuilder {
            task: "x.drv".into(),
            system: "aarch64-linux".into(),
            features: vec![],
            hosts: None,
            also: vec![],
            more: 0,
        }
        .into();
        assert_eq!(empty.to_string(), "no builder can build x.drv (system aarch64-linux): the builder pool is empty");
    }
}
