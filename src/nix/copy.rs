//! Moving store paths between two serve sessions, and one remote build step.
//!
//! Copying is the same in both directions: "upload inputs to a builder" copies from a session
//! on the local store (`nix-store --serve --write`, [`crate::transport::LocalTransport`]) to
//! the builder's; "fetch outputs back" copies from the builder to the local one. Each NAR
//! streams from the source's DumpStorePath straight into the destination's AddToStoreNar, so
//! nothing is held in memory or on disk, and the receiving Nix checks narHash and registers
//! references and deriver itself.

use std::collections::{BTreeMap, BTreeSet};

use super::dag::Dag;
use super::error::NixError;
use super::serve::{BuildOptions, BuildResult, PathInfo, ServeClient, check_hash};
use super::store_path::StorePath;
use crate::Result;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Paths copied, in the order they were sent (dependencies first).
    pub copied: Vec<StorePath>,
    /// Paths of the closure the destination already had.
    pub already_valid: usize,
    /// NAR bytes sent.
    pub bytes: u64,
}

/// The closure of `paths` on `src`, with path infos.
pub async fn closure_infos(src: &mut ServeClient, paths: &[StorePath]) -> Result<BTreeMap<StorePath, PathInfo>> {
    let mut infos: BTreeMap<StorePath, PathInfo> = BTreeMap::new();
    let mut todo: BTreeSet<StorePath> = paths.iter().cloned().collect();
    while !todo.is_empty() {
        let batch: Vec<StorePath> = std::mem::take(&mut todo).into_iter().collect();
        let got = src.query_path_infos(&batch).await?;
        for p in &batch {
            let info = got.get(p).ok_or_else(|| NixError::NotValid { path: p.clone(), on: src.label().to_string() })?;
            for r in &info.references {
                if !infos.contains_key(r) && !got.contains_key(r) && !batch.contains(r) {
                    todo.insert(r.clone());
                }
            }
        }
        infos.extend(got);
    }
    Ok(infos)
}

/// Orders `paths` so that each comes after the references it has within the set.
fn dependency_order(paths: &BTreeSet<StorePath>, infos: &BTreeMap<StorePath, PathInfo>) -> Result<Vec<StorePath>> {
    let mut done: BTreeSet<StorePath> = BTreeSet::new();
    let mut order = Vec::with_capacity(paths.len());
    while order.len() < paths.len() {
        let before = order.len();
        for p in paths {
            if done.contains(p) {
                continue;
            }
            let ready = infos
                .get(p)
                .is_none_or(|i| i.references.iter().all(|r| r == p || !paths.contains(r) || done.contains(r)));
            if ready {
                done.insert(p.clone());
                order.push(p.clone());
            }
        }
        if order.len() == before {
            return Err(NixError::ReferenceCycle.into());
        }
    }
    Ok(order)
}

/// How NARs are sent to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// AddToStoreNar when the destination speaks 2.5, else ImportPaths.
    Auto,
    /// One AddToStoreNar per path; narHash checked by both sides.
    AddToStoreNar,
    /// One ImportPaths export stream for all paths (servers below 2.5).
    ImportPaths,
}

/// Copies `paths` and everything they reference from `src` to `dst`, skipping paths `dst`
/// already has. Each NAR's hash is checked against the one `src` announced.
pub async fn copy_closure(src: &mut ServeClient, dst: &mut ServeClient, paths: &[StorePath]) -> Result<CopyStats> {
    copy_closure_with(src, dst, paths, CopyMethod::Auto).await
}

/// [`copy_closure`] with a chosen upload method.
pub async fn copy_closure_with(
    src: &mut ServeClient,
    dst: &mut ServeClient,
    paths: &[StorePath],
    method: CopyMethod,
) -> Result<CopyStats> {
    copy_closure_observed(src, dst, paths, method, &mut |_, _| {}).await
}

/// [`copy_closure_with`] telling `progress` how far it is, as `(NAR bytes sent, NAR bytes to
/// send)`: once when the missing paths are known, then after each path.
pub async fn copy_closure_observed(
    src: &mut ServeClient,
    dst: &mut ServeClient,
    paths: &[StorePath],
    method: CopyMethod,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<CopyStats> {
    let use_import = match method {
        CopyMethod::Auto => !dst.supports_add_to_store_nar(),
        CopyMethod::AddToStoreNar => false,
        CopyMethod::ImportPaths => true,
    };
    let infos = closure_infos(src, paths).await?;
    send_missing(src, dst, &infos, use_import, progress).await
}

/// Sends the paths of `infos` that `dst` lacks, references first.
async fn send_missing(
    src: &mut ServeClient,
    dst: &mut ServeClient,
    infos: &BTreeMap<StorePath, PathInfo>,
    use_import: bool,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<CopyStats> {
    let all: Vec<StorePath> = infos.keys().cloned().collect();
    let valid = dst.query_valid_paths(&all, false, false).await?;
    let missing: BTreeSet<StorePath> = all.iter().filter(|p| !valid.contains(*p)).cloned().collect();
    let mut stats = CopyStats { already_valid: valid.len(), ..CopyStats::default() };
    let order = dependency_order(&missing, infos)?;
    let total: u64 = order.iter().filter_map(|p| infos.get(p)).map(|i| i.nar_size).sum();
    progress(0, total);
    if use_import {
        let ordered: Vec<PathInfo> = order.iter().filter_map(|p| infos.get(p).cloned()).collect();
        if !ordered.is_empty() {
            dst.import_paths(&ordered, src).await?;
        }
        stats.bytes = ordered.iter().map(|i| i.nar_size).sum();
        stats.copied = order;
        progress(stats.bytes, total);
        return Ok(stats);
    }
    for path in order {
        let Some(info) = infos.get(&path) else {
            continue;
        };
        copy_one(src, dst, info).await?;
        stats.bytes += info.nar_size;
        stats.copied.push(path);
        progress(stats.bytes, total);
    }
    Ok(stats)
}

/// Fetches a derivation's `outputs` from the `builder` that built them into `local`: only
/// those paths are imported. The builder's word on each output is checked first: it must
/// describe exactly the outputs asked for, and every reference must be one of them or already
/// valid in `local` (the inputs' closure was uploaded from there), so a builder cannot slip
/// other store paths in as references.
pub async fn fetch_outputs(
    builder: &mut ServeClient,
    local: &mut ServeClient,
    outputs: &[StorePath],
) -> Result<CopyStats> {
    fetch_outputs_observed(builder, local, outputs, &mut |_, _| {}).await
}

/// [`fetch_outputs`] telling `progress` how far it is, as [`copy_closure_observed`] does.
pub async fn fetch_outputs_observed(
    builder: &mut ServeClient,
    local: &mut ServeClient,
    outputs: &[StorePath],
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<CopyStats> {
    let infos = builder.query_path_infos(outputs).await?;
    for p in outputs {
        if !infos.contains_key(p) {
            return Err(NixError::NotValid { path: p.clone(), on: builder.label().to_string() }.into());
        }
    }
    let wanted: BTreeSet<&StorePath> = outputs.iter().collect();
    let others: Vec<StorePath> =
        infos.values().flat_map(|i| &i.references).filter(|r| !wanted.contains(r)).cloned().collect();
    let known = local.query_valid_paths(&others, false, false).await?;
    if let Some((output, reference)) = foreign_reference(&infos, &wanted, &known) {
        return Err(NixError::ForeignReference { label: builder.label().to_string(), output, reference }.into());
    }
    let use_import = !local.supports_add_to_store_nar();
    send_missing(builder, local, &infos, use_import, progress).await
}

/// The first (output, reference) whose reference is neither an output nor `known`.
fn foreign_reference(
    infos: &BTreeMap<StorePath, PathInfo>,
    outputs: &BTreeSet<&StorePath>,
    known: &BTreeSet<StorePath>,
) -> Option<(StorePath, StorePath)> {
    infos.values().find_map(|i| {
        i.references.iter().find(|r| !outputs.contains(r) && !known.contains(*r)).map(|r| (i.path.clone(), r.clone()))
    })
}

/// Streams one NAR from `src` into `dst` through an in-memory pipe.
async fn copy_one(src: &mut ServeClient, dst: &mut ServeClient, info: &PathInfo) -> Result<()> {
    let (mut pipe_in, mut pipe_out) = tokio::io::duplex(64 * 1024);
    // Each side drops its pipe end when it stops, so the other side sees EOF or a broken
    // pipe instead of waiting forever.
    let dump = async move {
        let r = src.dump_store_path(&info.path, info.nar_size, &mut pipe_in).await;
        drop(pipe_in);
        r.map(|hash| (hash, src.label().to_string()))
    };
    let add = async move {
        let r = dst.add_to_store_nar(info, &mut pipe_out).await;
        drop(pipe_out);
        r
    };
    match tokio::join!(dump, add) {
        (Ok((hash, from)), Ok(())) => check_hash(info, hash, &from),
        // A NAR that does not match its announced hash explains why the destination refused
        // it (Nix checks it too): the source is at fault, not the destination.
        (Ok((hash, from)), Err(e)) => check_hash(info, hash, &from).and(Err(e)),
        (Err(e), Ok(())) => Err(e),
        // One failure causes the other; show both, the reader can tell which came first. The
        // class of the one that has one (a full store, a lost builder) says whose fault it is.
        (Err(d), Err(a)) => {
            let class = a.failure_class().or(d.failure_class());
            let e: crate::Error =
                NixError::CopyFailed { path: info.path.clone(), dump: Box::new(d), add: Box::new(a) }.into();
            Err(match class {
                Some(c) => e.with_failure_class(c),
                None => e,
            })
        }
    }
}

/// One remote build step for node `i` of `dag`: uploads its inputs' closure from `local` to
/// `builder`, runs BuildDerivation there and, on success, fetches the outputs back into
/// `local`. Returns the build result (a failed build is a result, not an error).
pub async fn build_remote(
    local: &mut ServeClient,
    builder: &mut ServeClient,
    dag: &Dag,
    i: usize,
    opts: &BuildOptions,
) -> Result<BuildResult> {
    let node = dag.node(i);
    let inputs: Vec<StorePath> = dag.input_paths(i)?.into_iter().collect();
    copy_closure(local, builder, &inputs).await?;
    let basic = dag.basic_derivation(i)?;
    let result = builder.build_derivation(&node.drv_path, &basic, opts).await?;
    if result.is_success() {
        let mut outputs = Vec::new();
        for (name, out) in &node.drv.outputs {
            let p = StorePath::parse(&out.path)
                .map_err(|_| NixError::FloatingOutput { output: name.clone(), drv: node.drv_path.to_string() })?;
            outputs.push(p);
        }
        fetch_outputs(builder, local, &outputs).await?;
    }
    Ok(result)
}

/// Uploads a path from this machine's filesystem: the NAR is written by rvbuild, narHash and
/// narSize come from a first hashing pass. For when no serve session on the source store is
/// at hand; `references` must already be valid on `dst`.
pub async fn add_path_from_fs(
    dst: &mut ServeClient,
    path: &StorePath,
    deriver: Option<StorePath>,
    references: BTreeSet<StorePath>,
) -> Result<PathInfo> {
    let fs_path = std::path::PathBuf::from(path.as_str());
    let hashed = {
        let p = fs_path.clone();
        tokio::task::spawn_blocking(move || super::nar::hash_path(&p))
            .await
            .map_err(|source| NixError::ThreadFailed { what: "NAR hashing", source })?
    };
    let (hash, size) = hashed.map_err(|source| NixError::ReadLocal { path: path.clone(), source })?;
    let info = PathInfo {
        path: path.clone(),
        deriver,
        references,
        nar_size: size,
        nar_hash: Some(hash),
        ca: String::new(),
        sigs: Vec::new(),
    };
    let mut nar = super::nar_stream::spawn_dump(fs_path);
    dst.add_to_store_nar(&info, &mut nar).await?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduler runs these on spawned tasks, so their futures must be Send.
    #[test]
    fn futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        #[allow(dead_code)]
        fn check(a: &mut ServeClient, b: &mut ServeClient, dag: &Dag, p: &[StorePath]) {
            is_send(&build_remote(a, b, dag, 0, &BuildOptions::default()));
            is_send(&copy_closure(a, b, p));
        }
        fn client_is_send<T: Send + 'static>() {}
        client_is_send::<ServeClient>();
    }

    fn info(path: &StorePath, refs: &[&StorePath]) -> PathInfo {
        PathInfo {
            path: path.clone(),
            deriver: None,
            references: refs.iter().map(|r| (*r).clone()).collect(),
            nar_size: 8,
            nar_hash: None,
            ca: String::new(),
            sigs: Vec::new(),
        }
    }

    #[test]
    fn references_outside_outputs_and_local_store_are_foreign() {
        let p = |i: usize| StorePath::parse(&format!("/nix/store/{i:032}-p{i}")).expect("path");
        let (out, dev, input, evil) = (p(1), p(2), p(3), p(4));
        let outputs: BTreeSet<&StorePath> = [&out, &dev].into();
        let known: BTreeSet<StorePath> = [input.clone()].into();
        // Self reference, sibling output, an input the local store has: fine.
        let ok: BTreeMap<StorePath, PathInfo> =
            [(out.clone(), info(&out, &[&out, &dev, &input])), (dev.clone(), info(&dev, &[]))].into();
        assert_eq!(foreign_reference(&ok, &outputs, &known), None);
        let bad: BTreeMap<StorePath, PathInfo> =
            [(out.clone(), info(&out, &[&input])), (dev.clone(), info(&dev, &[&out, &evil]))].into();
        assert_eq!(foreign_reference(&bad, &outputs, &known), Some((dev.clone(), evil.clone())));
    }

    #[test]
    fn dependency_order_puts_references_first() {
        let p = |i: usize| StorePath::parse(&format!("/nix/store/{i:032}-p{i}")).expect("path");
        let (a, b, c) = (p(1), p(2), p(3));
        // c → b → a, and c → a; a refers to itself (allowed in Nix).
        let infos: BTreeMap<StorePath, PathInfo> =
            [(a.clone(), info(&a, &[&a])), (b.clone(), info(&b, &[&a])), (c.clone(), info(&c, &[&b, &a]))].into();
        let all: BTreeSet<StorePath> = infos.keys().cloned().collect();
        assert_eq!(dependency_order(&all, &infos).expect("order"), vec![a.clone(), b.clone(), c.clone()]);
        // Only b and c missing: a is not in the set and does not block.
        let some: BTreeSet<StorePath> = [b.clone(), c.clone()].into();
        assert_eq!(dependency_order(&some, &infos).expect("order"), vec![b.clone(), c.clone()]);
        // A cycle between distinct paths is an error, not a hang.
        let cyc: BTreeMap<StorePath, PathInfo> = [(a.clone(), info(&a, &[&b])), (b.clone(), info(&b, &[&a]))].into();
        let set: BTreeSet<StorePath> = cyc.keys().cloned().collect();
        assert!(dependency_order(&set, &cyc).is_err());
    }
}
