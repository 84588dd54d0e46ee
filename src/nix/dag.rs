//! The derivation graph: the `.drv` closure of some root derivations read from the store,
//! with each node's inputs and dependents, a topological order (inputs first), cycle and
//! missing-file detection, and the upward rank (longest weighted path to a sink) that list
//! scheduling orders work by.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;

use super::drv::{BasicDerivation, Derivation};
use super::error::NixError;
use super::store_path::StorePath;
use crate::Result;

/// One derivation in the graph.
#[derive(Debug, Clone)]
pub struct DagNode {
    pub drv_path: StorePath,
    pub drv: Derivation,
    /// Nodes this one needs (its input derivations).
    pub inputs: Vec<usize>,
    /// Nodes that need this one.
    pub dependents: Vec<usize>,
}

/// The closure of some derivations. Node indices are stable for the life of the graph.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    nodes: Vec<DagNode>,
    index: HashMap<StorePath, usize>,
    topo: Vec<usize>,
    roots: Vec<usize>,
}

/// Reads the closure of `roots` (derivation paths) from the local store.
pub fn load_closure(roots: &[String]) -> Result<Dag> {
    load_closure_with(roots, |p| std::fs::read_to_string(p.as_str()))
}

/// Like [`load_closure`], with the `.drv` text coming from `read` (a test store, a remote).
pub fn load_closure_with(roots: &[String], mut read: impl FnMut(&StorePath) -> io::Result<String>) -> Result<Dag> {
    let mut dag = Dag::default();
    // (path, the derivation that referenced it) for error messages.
    let mut queue: VecDeque<(StorePath, Option<usize>)> = VecDeque::new();
    for r in roots {
        let p = StorePath::parse_drv(r).map_err(|source| NixError::BadRoot { source })?;
        if !dag.index.contains_key(&p) {
            let i = dag.add_node(p.clone(), &mut read, None)?;
            dag.roots.push(i);
            queue.push_back((p, None));
        }
    }
    while let Some((path, _)) = queue.pop_front() {
        let i = dag.index[&path];
        let inputs: Vec<String> = dag.nodes[i].drv.input_drvs.keys().cloned().collect();
        for input in inputs {
            // The parser validated these as .drv store paths; parse again for the typed form.
            let ip =
                StorePath::parse_drv(&input).map_err(|source| NixError::BadInputDrv { drv: path.clone(), source })?;
            let j = match dag.index.get(&ip) {
                Some(&j) => j,
                None => {
                    let j = dag.add_node(ip.clone(), &mut read, Some(i))?;
                    queue.push_back((ip, Some(i)));
                    j
                }
            };
            dag.nodes[i].inputs.push(j);
            dag.nodes[j].dependents.push(i);
        }
    }
    dag.topo = dag.sort()?;
    Ok(dag)
}

impl Dag {
    fn add_node(
        &mut self,
        path: StorePath,
        read: &mut impl FnMut(&StorePath) -> io::Result<String>,
        parent: Option<usize>,
    ) -> Result<usize> {
        let text = read(&path).map_err(|source| NixError::UnreadableDrv {
            path: path.clone(),
            needed_by: parent.map(|p| self.nodes[p].drv_path.clone()),
            source,
        })?;
        let drv = Derivation::parse(&text)
            .map_err(|e| NixError::MalformedDrv(Box::new(e.into_diagnostic(path.as_str(), text))))?;
        let i = self.nodes.len();
        self.nodes.push(DagNode { drv_path: path.clone(), drv, inputs: Vec::new(), dependents: Vec::new() });
        self.index.insert(path, i);
        Ok(i)
    }

    /// Kahn's algorithm; a leftover node means a cycle, which is reported by its paths.
    fn sort(&self) -> Result<Vec<usize>> {
        let mut missing: Vec<usize> = self.nodes.iter().map(|n| n.inputs.len()).collect();
        let mut ready: VecDeque<usize> = (0..self.nodes.len()).filter(|&i| missing[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_front() {
            order.push(i);
            for &d in &self.nodes[i].dependents {
                missing[d] -= 1;
                if missing[d] == 0 {
                    ready.push_back(d);
                }
            }
        }
        if order.len() == self.nodes.len() {
            return Ok(order);
        }
        // Walk inputs among the unsorted nodes until one repeats: that is a cycle.
        let mut seen: Vec<Option<usize>> = vec![None; self.nodes.len()];
        let mut path = Vec::new();
        let mut cur = (0..self.nodes.len()).find(|&i| missing[i] > 0).unwrap_or(0);
        while seen[cur].is_none() {
            seen[cur] = Some(path.len());
            path.push(cur);
            cur = self.nodes[cur].inputs.iter().copied().find(|&j| missing[j] > 0).unwrap_or(cur);
        }
        let start = seen[cur].unwrap_or(0);
        let mut cycle: Vec<String> = path[start..].iter().map(|&i| self.nodes[i].drv_path.to_string()).collect();
        cycle.push(self.nodes[cur].drv_path.to_string());
        Err(NixError::DrvCycle { cycle }.into())
    }

    pub fn nodes(&self) -> &[DagNode] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> &DagNode {
        &self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node of a derivation path.
    pub fn index_of(&self, drv_path: &str) -> Option<usize> {
        StorePath::parse(drv_path).ok().and_then(|p| self.index.get(&p).copied())
    }

    /// Every node, each after all its inputs.
    pub fn topo_order(&self) -> &[usize] {
        &self.topo
    }

    /// The nodes `load_closure` was asked for.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// For each node: its weight plus the largest rank among its dependents (0 for sinks),
    /// i.e. the longest weighted path from the node to the end of the build.
    pub fn upward_rank(&self, weight: impl Fn(usize) -> f64) -> Vec<f64> {
        let mut rank = vec![0.0; self.nodes.len()];
        for &i in self.topo.iter().rev() {
            let after = self.nodes[i].dependents.iter().map(|&d| rank[d]).fold(0.0, f64::max);
            rank[i] = weight(i) + after;
        }
        rank
    }

    /// The store paths a node needs on the builder: its input sources and the outputs it
    /// uses from its input derivations (the builder computes their closure).
    pub fn input_paths(&self, i: usize) -> Result<BTreeSet<StorePath>> {
        let node = &self.nodes[i];
        let mut paths = BTreeSet::new();
        for src in &node.drv.input_srcs {
            paths.insert(StorePath::parse(src).map_err(|source| NixError::BadInputSrc { source })?);
        }
        for (&j, (input, outs)) in node.inputs.iter().zip(node.drv.input_drvs.iter()) {
            let dep = &self.nodes[j].drv;
            for o in outs {
                let out = dep.outputs.get(o).ok_or_else(|| NixError::NoSuchOutput {
                    drv: node.drv_path.clone(),
                    output: o.clone(),
                    input: input.clone(),
                })?;
                let p = StorePath::parse(&out.path)
                    .map_err(|_| NixError::FloatingOutput { output: o.clone(), drv: input.clone() })?;
                paths.insert(p);
            }
        }
        Ok(paths)
    }

    /// The BasicDerivation that BuildDerivation sends for node `i`.
    pub fn basic_derivation(&self, i: usize) -> Result<BasicDerivation> {
        Ok(BasicDerivation::new(&self.nodes[i].drv, self.input_paths(i)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::BTreeMap;

    fn drv_path(i: usize) -> String {
        format!("/nix/store/{i:032}-n{i}.drv")
    }

    fn out_path(i: usize) -> String {
        format!("/nix/store/a{i:031}-n{i}")
    }

    /// A fake store: node i has the given inputs.
    fn store(edges: &[&[usize]]) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (i, inputs) in edges.iter().enumerate() {
            let mut d = Derivation { platform: "x86_64-linux".into(), builder: "/bin/sh".into(), ..Default::default() };
            d.outputs
                .insert("out".into(), crate::nix::drv::DerivationOutput { path: out_path(i), ..Default::default() });
            for &j in *inputs {
                d.input_drvs.insert(drv_path(j), ["out".to_string()].into());
            }
            m.insert(drv_path(i), d.to_aterm());
        }
        m
    }

    fn load(m: &BTreeMap<String, String>, roots: &[usize]) -> Result<Dag> {
        let roots: Vec<String> = roots.iter().map(|&i| drv_path(i)).collect();
        load_closure_with(&roots, |p| {
            m.get(p.as_str())
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
        })
    }

    #[test]
    fn diamond_order_rank_and_inputs() {
        // 0 needs 1 and 2, both need 3.
        let m = store(&[&[1, 2], &[3], &[3], &[]]);
        let dag = load(&m, &[0]).expect("load");
        assert_eq!(dag.len(), 4);
        let pos = |p: usize| {
            let i = dag.index_of(&drv_path(p)).expect("node");
            dag.topo_order().iter().position(|&x| x == i).expect("in order")
        };
        assert!(pos(3) < pos(1) && pos(3) < pos(2) && pos(1) < pos(0) && pos(2) < pos(0));
        let w = |i: usize| {
            if dag.node(i).drv_path.as_str() == drv_path(2) { 10.0 } else { 1.0 }
        };
        let rank = dag.upward_rank(w);
        let r = |p: usize| rank[dag.index_of(&drv_path(p)).expect("node")];
        assert_eq!(r(0), 1.0);
        assert_eq!(r(2), 11.0);
        assert_eq!(r(1), 2.0);
        assert_eq!(r(3), 12.0);
        let inputs = dag.input_paths(dag.index_of(&drv_path(0)).expect("node")).expect("inputs");
        let want: BTreeSet<StorePath> = [1, 2].iter().map(|&i| StorePath::parse(&out_path(i)).expect("p")).collect();
        assert_eq!(inputs, want);
    }

    #[test]
    fn cycle_is_named() {
        let m = store(&[&[1], &[2], &[0]]);
        let err = load(&m, &[0]).expect_err("cycle").to_string();
        assert!(err.contains("cycle"), "{err}");
        for i in 0..3 {
            assert!(err.contains(&drv_path(i)), "{err}");
        }
    }

    #[test]
    fn missing_input_names_both_paths() {
        let mut m = store(&[&[1], &[]]);
        m.remove(&drv_path(1));
        let err = load(&m, &[0]).expect_err("missing").to_string();
        assert!(err.contains(&drv_path(1)) && err.contains(&format!("an input of {}", drv_path(0))), "{err}");
    }

    #[test]
    fn bad_root_is_a_config_error() {
        let err = load_closure(&["/tmp/x.drv".to_string()]).expect_err("bad");
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
