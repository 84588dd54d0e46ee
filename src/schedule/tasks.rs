//! Turns the derivation graph into scheduler tasks: for the derivations still to build, their
//! name, system, required features, inputs among themselves, and estimated work and output
//! size (history first, else the cost model's defaults by kind).

use std::collections::BTreeMap;

use crate::builders::history::History;
use crate::nix::dag::Dag;
use crate::plan::cost::{derivation_output_bytes, derivation_work};
use crate::vocab::model::Task;

/// Tasks for the DAG nodes in `to_build` (node indices), in that order: task `i` is node
/// `to_build[i]`. Inputs that are not being built (already valid) are left out.
pub fn tasks_from_dag(dag: &Dag, to_build: &[usize], history: Option<&History>) -> Vec<Task> {
    let task_of: BTreeMap<usize, usize> = to_build.iter().enumerate().map(|(t, &n)| (n, t)).collect();
    to_build
        .iter()
        .filter(|&&n| n < dag.len())
        .map(|&n| {
            let node = dag.node(n);
            let name = node.drv.name().map(str::to_string).unwrap_or_else(|| node.drv_path.drv_name().to_string());
            let mut required_features: Vec<String> = node
                .drv
                .env
                .get("requiredSystemFeatures")
                .map(|f| f.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            // A target-system derivation of the host provider runs the userland's compiler: only
            // builders with that very userland can take it.
            if let Some(id) = node.drv.env.get("userlandId") {
                required_features.push(crate::builders::userland::feature(id));
            }
            let mut inputs: Vec<usize> = node.inputs.iter().filter_map(|i| task_of.get(i).copied()).collect();
            inputs.sort_unstable();
            inputs.dedup();
            Task {
                work: derivation_work(&name, history),
                output_bytes: derivation_output_bytes(&name, history),
                system: node.drv.platform.clone(),
                required_features,
                inputs,
                name,
                helpers: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io;

    use super::*;
    use crate::nix::dag::load_closure_with;
    use crate::nix::drv::{Derivation, DerivationOutput};

    fn drv_path(i: usize, name: &str) -> String {
        format!("/nix/store/{i:032}-{name}.drv")
    }

    #[test]
    fn tasks_keep_only_unbuilt_inputs_and_carry_system_and_features() {
        // image(0) needs kernel(1) and init(2); kernel needs config(3).
        let names = ["rvbuild-image", "rvbuild-linux-6.12", "rvbuild-init", "rvbuild-linux-config"];
        let edges: [&[usize]; 4] = [&[1, 2], &[3], &[], &[]];
        let mut store = BTreeMap::new();
        for (i, inputs) in edges.iter().enumerate() {
            let mut d = Derivation { platform: "x86_64-linux".into(), builder: "/bin/sh".into(), ..Default::default() };
            d.outputs.insert(
                "out".into(),
                DerivationOutput { path: format!("/nix/store/a{i:031}-{}", names[i]), ..Default::default() },
            );
            d.env.insert("name".into(), names[i].into());
            if i == 1 {
                d.env.insert("requiredSystemFeatures".into(), "big-parallel  kvm".into());
                d.platform = "riscv64-linux".into();
            }
            for &j in *inputs {
                d.input_drvs.insert(drv_path(j, names[j]), ["out".to_string()].into());
            }
            store.insert(drv_path(i, names[i]), d.to_aterm());
        }
        let dag = load_closure_with(&[drv_path(0, names[0])], |p| {
            store.get(p.as_str()).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "missing"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let node = |name: &str| {
            (0..dag.len()).find(|&i| dag.node(i).drv.name() == Some(name)).unwrap_or_else(|| panic!("{name}"))
        };
        // config is already built: only image, kernel, init are tasks.
        let to_build = [node("rvbuild-image"), node("rvbuild-linux-6.12"), node("rvbuild-init")];
        let tasks = tasks_from_dag(&dag, &to_build, None);
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].inputs, vec![1, 2]);
        assert!(tasks[1].inputs.is_empty());
        assert_eq!(tasks[1].system, "riscv64-linux");
        assert_eq!(tasks[1].required_features, vec!["big-parallel", "kvm"]);
        assert_eq!(tasks[1].work, 300.0);
        assert_eq!(tasks[0].output_bytes, 256_000_000);
        assert_eq!(tasks[2].name, "rvbuild-init");
    }
}
