//! The Nix formats and the serve protocol against the real Nix on this machine: .drv files
//! from nix-instantiate, NARs from nix-store --dump, and a `nix-store --serve --write` child
//! (on the local store and on a separate chroot store) for every opcode rvbuild uses.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use rvbuild::nix::copy::{CopyMethod, add_path_from_fs, build_remote, copy_closure, copy_closure_with, fetch_outputs};
use rvbuild::nix::dag::load_closure;
use rvbuild::nix::drv::Derivation;
use rvbuild::nix::nar;
use rvbuild::nix::serve::{BuildOptions, BuildStatus, FsNarSource, NarSource, NarStream, PathInfo, ServeClient};
use rvbuild::nix::store_path::{NarHash, StorePath};
use rvbuild::transport::BoxFuture;
use rvbuild::transport::{LocalTransport, Transport};

/// NARs from memory, for ImportPaths.
struct MemNar(Vec<u8>);

impl NarSource for MemNar {
    fn open_nar<'s>(&'s mut self, _: &'s PathInfo) -> BoxFuture<'s, rvbuild::Result<NarStream<'s>>> {
        Box::pin(async move {
            let s: NarStream<'s> = Box::pin(self.0.as_slice());
            Ok(s)
        })
    }
}

/// A string that makes every test run's derivations new to the store.
fn nonce() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{t}-{}", std::process::id())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed");
    out.stdout
}

/// Instantiates `expr` (which must evaluate to one derivation) and returns its .drv path.
fn instantiate(expr: &str) -> String {
    let out = run(Command::new("nix-instantiate").arg("--expr").arg(expr));
    out.trim().to_string()
}

/// The number lines of a chain output (without the trailing reference line).
fn numbers(path: &str) -> String {
    let text = fs::read_to_string(path).expect("read output");
    text.lines().filter(|l| !l.starts_with('/')).map(|l| format!("{l}\n")).collect()
}

fn realise(drv: &str) -> String {
    run(Command::new("nix-store").arg("--realise").arg(drv)).trim().to_string()
}

fn sp(s: &str) -> StorePath {
    StorePath::parse(s).expect("store path")
}

/// `let mk = ...;` helper: a derivation running a shell command.
fn mk_prelude(nonce: &str) -> String {
    format!(
        r#"let mk = name: cmd: extra: derivation ({{ inherit name; system = builtins.currentSystem;
             builder = "/bin/sh"; args = [ "-c" cmd ]; nonce = "{nonce}"; }} // extra); in "#
    )
}

/// A chain of `n` derivations; link k copies the numbers of link k-1's file, appends its own
/// and then the path of link k-1 (so each output references the one before).
fn chain_expr(nonce: &str, n: usize) -> String {
    let mut e = mk_prelude(nonce);
    e.push_str("let l0 = mk \"link0\" \"echo 0 > $out\" {}; ");
    for k in 1..n {
        e.push_str(&format!(
            "l{k} = mk \"link{k}\" \"{{ while read -r l; do case $l in /*) ;; *) echo $l;; esac; done < $prev; echo {k}; echo $prev; }} > $out\" {{ prev = l{}; }}; ",
            k - 1
        ));
    }
    e.push_str(&format!("in l{}", n - 1));
    e
}

async fn local_client() -> ServeClient {
    let ch = LocalTransport::new().open_serve().await.expect("spawn nix-store --serve");
    ServeClient::connect(ch, None).await.expect("handshake")
}

// ------------------------------------------------------------------ .drv and DAG

#[test]
fn nix_drv_round_trips_real_files() {
    let n = nonce();
    let mut e = mk_prelude(&n);
    e.push_str(
        r#"let
          src = builtins.toFile "input.txt" "some input";
          a = mk "a" "mkdir $out $dev $lib" { outputs = [ "out" "dev" "lib" ];
                weird = "quote\" backslash\\ newline\n tab\t cr\r dollar\${x} unicode é";
                multi = ''
                  line one
                    line "two" \ three
                ''; };
          b = mk "b" "cat ${a.dev} ${src} > $out" { inherit src; };
          c = mk "c" "echo ${b} ${a.lib} > $out" { list = [ "x" 1 true ]; };
        in c"#,
    );
    let drv = instantiate(&e);
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    assert_eq!(dag.len(), 3);
    let mut saw_escapes = false;
    let mut saw_multi_output = false;
    for node in dag.nodes() {
        let text = fs::read_to_string(node.drv_path.as_str()).expect("read drv");
        assert_eq!(node.drv.to_aterm(), text, "round trip of {}", node.drv_path);
        assert_eq!(Derivation::parse(&text).expect("parse"), node.drv);
        saw_escapes |=
            node.drv.env.get("weird").is_some_and(|v| v.contains("quote\" backslash\\ newline\n tab\t cr\r"));
        saw_multi_output |= node.drv.outputs.len() == 3;
    }
    assert!(saw_escapes && saw_multi_output);
    let b = dag.nodes().iter().find(|n| n.drv.name() == Some("b")).expect("b");
    assert_eq!(b.drv.input_drvs.values().next().expect("a").iter().collect::<Vec<_>>(), ["dev"]);
    assert_eq!(b.drv.input_srcs.len(), 1);
}

#[test]
fn nix_dag_of_30_generated_derivations() {
    let n = nonce();
    let mut e = mk_prelude(&n);
    e.push_str("let n0 = mk \"n0\" \"touch $out\" {}; ");
    for k in 1..30 {
        let extra = if k > 1 { format!("d = n{};", k / 2) } else { String::new() };
        e.push_str(&format!("n{k} = mk \"n{k}\" \"touch $out\" {{ p = n{}; {extra} }}; ", k - 1));
    }
    e.push_str("in n29");
    let drv = instantiate(&e);
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    assert_eq!(dag.len(), 30);
    assert_eq!(dag.roots(), &[dag.index_of(&drv).expect("root")]);
    let order = dag.topo_order();
    assert_eq!(order.len(), 30);
    let pos: Vec<usize> = (0..30).map(|i| order.iter().position(|&x| x == i).expect("in order")).collect();
    for (i, node) in dag.nodes().iter().enumerate() {
        for &j in &node.inputs {
            assert!(pos[j] < pos[i], "{} before {}", dag.node(j).drv_path, node.drv_path);
        }
    }
    let rank = dag.upward_rank(|_| 1.0);
    let by_name = |name: &str| {
        let i = dag.nodes().iter().position(|n| n.drv.name() == Some(name)).expect("node");
        rank[i]
    };
    assert_eq!(by_name("n29"), 1.0);
    assert_eq!(by_name("n0"), 30.0);
    assert_eq!(by_name("n15"), 15.0);
}

#[test]
fn nix_dag_reports_missing_drv() {
    let n = nonce();
    let mut e = mk_prelude(&n);
    e.push_str("let a = mk \"gone\" \"touch $out\" {}; in mk \"top\" \"touch $out\" { inherit a; }");
    let drv = instantiate(&e);
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    let input = dag.nodes().iter().find(|n| n.drv.name() == Some("gone")).expect("input").drv_path.clone();
    // Nix will not delete a .drv another one references, so move the file aside and back.
    let aside = format!("{input}.aside");
    fs::rename(input.as_str(), &aside).expect("move aside");
    let res = load_closure(std::slice::from_ref(&drv));
    fs::rename(&aside, input.as_str()).expect("move back");
    let err = res.expect_err("missing").to_string();
    assert!(err.contains(input.as_str()) && err.contains(&drv), "{err}");
}

// ------------------------------------------------------------------ NAR

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    fs::create_dir(root.join("empty-dir")).expect("mkdir");
    fs::write(root.join("file"), b"hello\n").expect("write");
    fs::write(root.join("empty"), b"").expect("write");
    fs::write(root.join("seven b"), b"1234567").expect("write");
    fs::write(root.join("unicodé"), b"x").expect("write");
    fs::write(root.join("sub/deeper/data"), vec![0xa5u8; 300_001]).expect("write");
    fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("sub/deeper/data", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", root.join("Dangling")).expect("symlink");
}

#[test]
fn nix_nar_dump_equals_nix_store_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    make_tree(&root);
    let ours = {
        let mut v = Vec::new();
        nar::dump_path(&root, &mut v).expect("dump");
        v
    };
    let theirs = run_bytes(Command::new("nix-store").arg("--dump").arg(&root));
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "NAR bytes differ from nix-store --dump");

    let (hash, size) = nar::hash_path(&root).expect("hash");
    assert_eq!(size, theirs.len() as u64);
    let nix_hash = run(Command::new("nix-hash").args(["--type", "sha256", "--base32"]).arg(&root));
    assert_eq!(hash.to_nix32_string(), format!("sha256:{}", nix_hash.trim()));

    // Restore and dump again: the same bytes.
    let restored = dir.path().join("restored");
    assert_eq!(nar::restore(&mut ours.as_slice(), &restored).expect("restore"), size);
    let mut again = Vec::new();
    nar::dump_path(&restored, &mut again).expect("dump");
    assert!(again == theirs);
    assert!(fs::metadata(restored.join("run.sh")).expect("meta").permissions().mode() & 0o100 != 0);
    assert_eq!(fs::read_link(restored.join("link")).expect("link"), Path::new("sub/deeper/data"));

    // Restoring over an existing path is refused.
    assert!(nar::restore(&mut ours.as_slice(), &restored).is_err());
}

#[test]
fn nix_nar_hash_equals_store_registration() {
    let n = nonce();
    let drv = instantiate(&format!("{}mk \"hashme\" \"true\" {{}}", mk_prelude(&n)));
    let (hash, size) = nar::hash_path(Path::new(&drv)).expect("hash");
    let q = run(Command::new("nix-store").args(["--query", "--hash"]).arg(&drv));
    assert_eq!(hash, NarHash::parse(q.trim()).expect("hash"));
    let s = run(Command::new("nix-store").args(["--query", "--size"]).arg(&drv));
    assert_eq!(size.to_string(), s.trim());
}

// ------------------------------------------------------------------ serve protocol

#[tokio::test]
async fn nixbuild_serve_queries_and_dump() {
    let n = nonce();
    let drv = instantiate(&format!("{}mk \"q\" \"true\" {{ v = \"\\n\"; }}", mk_prelude(&n)));
    let mut c = local_client().await;
    assert_eq!(c.protocol_version(), (2, 7));
    let fake = sp("/nix/store/00000000000000000000000000000000-not-there");
    let valid = c.query_valid_paths(&[sp(&drv), fake.clone()], false, false).await.expect("query");
    assert_eq!(valid, BTreeSet::from([sp(&drv)]));

    let infos = c.query_path_infos(&[sp(&drv), fake]).await.expect("infos");
    assert_eq!(infos.len(), 1);
    let info = &infos[&sp(&drv)];
    let q = run(Command::new("nix-store").args(["--query", "--hash"]).arg(&drv));
    assert_eq!(info.nar_hash, Some(NarHash::parse(q.trim()).expect("hash")));
    assert!(info.deriver.is_none());

    let mut nar_bytes = Vec::new();
    let hash = c.dump_store_path(&info.path, info.nar_size, &mut nar_bytes).await.expect("dump");
    assert_eq!(Some(hash), info.nar_hash);
    let theirs = run_bytes(Command::new("nix-store").arg("--dump").arg(&drv));
    assert!(nar_bytes == theirs, "DumpStorePath differs from nix-store --dump");

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("copy.drv");
    c.dump_store_path_to_dir(info, &dest).await.expect("restore");
    assert_eq!(fs::read(&dest).expect("read"), fs::read(&drv).expect("read"));
    // The session is still in step after all that.
    assert_eq!(c.query_valid_paths(&[sp(&drv)], false, false).await.expect("query").len(), 1);
}

#[tokio::test]
async fn nixbuild_serve_add_to_store_nar_and_import_paths_after_delete() {
    let n = nonce();
    let e = format!(
        "{}let a = mk \"dep\" \"echo dep > $out\" {{}}; in mk \"top\" \"echo ${{a}} > $out\" {{}}",
        mk_prelude(&n)
    );
    let out = realise(&instantiate(&e));
    let mut c = local_client().await;
    let infos = c.query_path_infos(&[sp(&out)]).await.expect("infos");
    let info = infos[&sp(&out)].clone();
    assert_eq!(info.references.len(), 1);
    assert!(info.deriver.is_some());
    let mut nar_bytes = Vec::new();
    c.dump_store_path(&info.path, info.nar_size, &mut nar_bytes).await.expect("dump");

    for use_import in [false, true] {
        run(Command::new("nix-store").arg("--delete").arg(&out));
        // A serve process caches path infos, so ask a fresh one after the deletion.
        let mut c = local_client().await;
        assert!(c.query_valid_paths(&[sp(&out)], false, false).await.expect("query").is_empty());
        if use_import {
            c.import_paths(std::slice::from_ref(&info), &mut MemNar(nar_bytes.clone())).await.expect("ImportPaths");
        } else {
            c.add_to_store_nar(&info, &mut nar_bytes.as_slice()).await.expect("AddToStoreNar");
        }
        assert_eq!(c.query_valid_paths(&[sp(&out)], false, false).await.expect("query").len(), 1);
        run(Command::new("nix-store").arg("--verify-path").arg(&out));
        let again = c.query_path_infos(&[sp(&out)]).await.expect("infos");
        assert_eq!(again[&sp(&out)].references, info.references);
        assert_eq!(again[&sp(&out)].deriver, info.deriver);
        assert_eq!(
            fs::read_to_string(&out).expect("read").trim(),
            info.references.iter().next().expect("ref").as_str()
        );
    }
}

#[tokio::test]
async fn nixbuild_serve_build_derivation_chain_of_5() {
    let n = nonce();
    let drv = instantiate(&chain_expr(&n, 5));
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    assert_eq!(dag.len(), 5);
    let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let ch = LocalTransport::new().open_serve().await.expect("spawn");
    let mut c = ServeClient::connect(ch, Some(tx)).await.expect("handshake");
    let opts =
        BuildOptions { max_silent_time_secs: 60, build_timeout_secs: 120, max_log_size: 1 << 20, keep_failed: false };
    for &i in dag.topo_order() {
        let node = dag.node(i);
        let basic = dag.basic_derivation(i).expect("basic");
        let res = c.build_derivation(&node.drv_path, &basic, &opts).await.expect("build");
        assert_eq!(res.status, BuildStatus::Built, "{}: {}", node.drv_path, res.error_msg);
        assert_eq!(res.built_outputs.get("out").map(StorePath::as_str), Some(node.drv.outputs["out"].path.as_str()));
        assert!(res.stop_time >= res.start_time && res.start_time > 0);
    }
    let outs: Vec<StorePath> = dag.nodes().iter().map(|n| sp(&n.drv.outputs["out"].path)).collect();
    assert_eq!(c.query_valid_paths(&outs, false, false).await.expect("query").len(), 5);
    let last = &dag.node(dag.roots()[0]).drv.outputs["out"].path;
    assert_eq!(numbers(last), "0\n1\n2\n3\n4\n");
    // Building again: already valid, still a success.
    let root = dag.roots()[0];
    let res = c
        .build_derivation(&dag.node(root).drv_path, &dag.basic_derivation(root).expect("basic"), &opts)
        .await
        .expect("rebuild");
    assert!(res.is_success(), "{res:?}");
    drop(c);
    logs.close();
    while logs.recv().await.is_some() {}
}

#[tokio::test]
async fn nixbuild_serve_failed_build_is_a_result_with_logs() {
    let n = nonce();
    let drv = instantiate(&format!("{}mk \"fails\" \"echo marker-{n} >&2; exit 3\" {{}}", mk_prelude(&n)));
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let ch = LocalTransport::new().open_serve().await.expect("spawn");
    let mut c = ServeClient::connect(ch, Some(tx)).await.expect("handshake");
    let res = c
        .build_derivation(&sp(&drv), &dag.basic_derivation(0).expect("basic"), &BuildOptions::default())
        .await
        .expect("a failed build is still a reply");
    assert!(!res.is_success());
    assert_eq!(res.status, BuildStatus::PermanentFailure, "{res:?}");
    assert!(res.error_msg.contains("exit code 3") || res.error_msg.contains("failed"), "{}", res.error_msg);
    // The session is still usable.
    assert!(c.query_valid_paths(&[sp(&drv)], false, false).await.is_ok());
    drop(c);
    let mut all = String::new();
    while let Some(l) = logs.recv().await {
        all.push_str(&l);
        all.push('\n');
    }
    assert!(all.contains(&format!("marker-{n}")), "log: {all}");
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[tokio::test]
async fn nixbuild_serve_errors_name_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A login banner before nix-store: the magic check shows the text.
    let banner = script(dir.path(), "banner", "echo 'Welcome to builder-7'; exec nix-store \"$@\"");
    let ch = LocalTransport::new().with_program(&banner).open_serve().await.expect("spawn");
    let err = ServeClient::connect(ch, None).await.err().expect("mismatch").to_string();
    assert!(err.contains("protocol mismatch") && err.contains("Welcome to builder-7"), "{err}");

    // A short banner, then the peer exits: still shown as a mismatch.
    let short = script(dir.path(), "short", "printf 'hi'");
    let ch = LocalTransport::new().with_program(&short).open_serve().await.expect("spawn");
    let err = ServeClient::connect(ch, None).await.err().expect("mismatch").to_string();
    assert!(err.contains("protocol mismatch") && err.contains("\"hi\""), "{err}");

    // The peer dies: EOF, with its stderr in the message.
    let dies = script(dir.path(), "dies", "echo 'error: no store here' >&2; exit 1");
    let ch = LocalTransport::new().with_program(&dies).open_serve().await.expect("spawn");
    let err = ServeClient::connect(ch, None).await.err().expect("eof").to_string();
    assert!(err.contains("closed the connection") && err.contains("error: no store here"), "{err}");

    // A path the server rejects mid-session (DumpStorePath of an invalid path): EOF + stderr.
    let mut c = local_client().await;
    let bogus = sp("/nix/store/00000000000000000000000000000000-bogus");
    let err = c.dump_store_path(&bogus, 8, &mut Vec::new()).await.expect_err("fails").to_string();
    assert!(err.contains("closed the connection") && err.contains("bogus"), "{err}");
    assert!(!c.is_usable());
    assert!(c.query_valid_paths(&[], false, false).await.is_err(), "a broken session is not reused");

    // A missing program is a prerequisite error.
    let err =
        LocalTransport::new().with_program(dir.path().join("nope")).open_serve().await.err().expect("spawn fails");
    assert_eq!(err.kind(), rvbuild::ErrorKind::Prerequisite);
}

#[tokio::test]
async fn nixbuild_serve_copy_closure_to_separate_store_and_back() {
    let n = nonce();
    let drv = instantiate(&chain_expr(&n, 3));
    let out = realise(&drv);
    let root = tempfile::tempdir().expect("tempdir");
    let store = format!("local?root={}", root.path().display());
    let mut local = local_client().await;
    let ch = LocalTransport::with_store(&store).open_serve().await.expect("spawn");
    let mut other = ServeClient::connect(ch, None).await.expect("handshake");

    let stats = copy_closure(&mut local, &mut other, &[sp(&out)]).await.expect("copy");
    assert_eq!(stats.copied.len(), 3, "{stats:?}");
    assert_eq!(stats.copied.last().map(StorePath::as_str), Some(out.as_str()));
    let real = root.path().join(out.trim_start_matches('/'));
    assert_eq!(numbers(&real.to_string_lossy()), "0\n1\n2\n");
    // Again: nothing to do.
    let again = copy_closure(&mut local, &mut other, &[sp(&out)]).await.expect("copy");
    assert!(again.copied.is_empty() && again.already_valid == 3);

    // Back: delete the top output locally, fetch it from the other store (with a fresh
    // local session: a serve process caches path infos).
    run(Command::new("nix-store").arg("--delete").arg(&out));
    let mut local = local_client().await;
    let back = copy_closure(&mut other, &mut local, &[sp(&out)]).await.expect("fetch back");
    assert_eq!(back.copied, vec![sp(&out)]);
    run(Command::new("nix-store").arg("--verify-path").arg(&out));
    assert_eq!(numbers(&out), "0\n1\n2\n");
}

/// Fetching outputs back from a builder imports only those outputs: a reference that is
/// neither an output nor in the local store is refused (a real Nix store plays the builder).
#[tokio::test]
async fn nixbuild_serve_fetch_outputs_imports_only_the_outputs() {
    let n = nonce();
    let drv = instantiate(&chain_expr(&n, 3));
    let out = realise(&drv);
    let root = tempfile::tempdir().expect("tempdir");
    let mut local = local_client().await;
    let ch =
        LocalTransport::with_store(format!("local?root={}", root.path().display())).open_serve().await.expect("spawn");
    let mut builder = ServeClient::connect(ch, None).await.expect("handshake");
    copy_closure(&mut local, &mut builder, &[sp(&out)]).await.expect("copy");
    let infos = local.query_path_infos(&[sp(&out)]).await.expect("infos");
    let middle = infos[&sp(&out)].references.iter().find(|r| r.as_str() != out).expect("link1").clone();
    run(Command::new("nix-store").arg("--delete").arg(&out));
    run(Command::new("nix-store").arg("--delete").arg(middle.as_str()));

    let mut local = local_client().await;
    let err = fetch_outputs(&mut builder, &mut local, &[sp(&out)]).await.expect_err("refused").to_string();
    assert!(err.contains("refers to") && err.contains(middle.as_str()), "{err}");
    assert!(local.query_valid_paths(&[sp(&out), middle.clone()], false, false).await.expect("query").is_empty());

    // Once the middle link is back (as the output it is), the top output comes alone.
    let mut builder = ServeClient::connect(
        LocalTransport::with_store(format!("local?root={}", root.path().display())).open_serve().await.expect("spawn"),
        None,
    )
    .await
    .expect("handshake");
    let got = fetch_outputs(&mut builder, &mut local, std::slice::from_ref(&middle)).await.expect("middle");
    assert_eq!(got.copied, vec![middle.clone()]);
    let got = fetch_outputs(&mut builder, &mut local, &[sp(&out)]).await.expect("top");
    assert_eq!(got.copied, vec![sp(&out)]);
    run(Command::new("nix-store").arg("--verify-path").arg(&out));
    assert_eq!(numbers(&out), "0\n1\n2\n");
}

#[tokio::test]
async fn nixbuild_serve_build_remote_step() {
    // Local store as both sides: the copies find everything valid, the build runs.
    let n = nonce();
    let drv = instantiate(&chain_expr(&n, 2));
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    let mut local = local_client().await;
    let mut builder = local_client().await;
    for &i in dag.topo_order() {
        let res = build_remote(&mut local, &mut builder, &dag, i, &BuildOptions::default()).await.expect("step");
        assert!(res.is_success(), "{res:?}");
    }
    let last = &dag.node(dag.roots()[0]).drv.outputs["out"].path;
    assert_eq!(numbers(last), "0\n1\n");
}

#[tokio::test]
async fn nixbuild_serve_upload_from_filesystem_nar() {
    let n = nonce();
    let out = realise(&instantiate(&chain_expr(&n, 1)));
    let root = tempfile::tempdir().expect("tempdir");
    let ch =
        LocalTransport::with_store(format!("local?root={}", root.path().display())).open_serve().await.expect("spawn");
    let mut other = ServeClient::connect(ch, None).await.expect("handshake");
    let info = add_path_from_fs(&mut other, &sp(&out), None, BTreeSet::new()).await.expect("upload");
    let there = other.query_path_infos(&[sp(&out)]).await.expect("infos");
    assert_eq!(there[&sp(&out)].nar_hash, info.nar_hash);
    let mut local = local_client().await;
    let here = local.query_path_infos(&[sp(&out)]).await.expect("infos");
    assert_eq!(here[&sp(&out)].nar_hash, info.nar_hash);
    assert_eq!(here[&sp(&out)].nar_size, info.nar_size);

    // The same NAR through ImportPaths into a third store.
    let root2 = tempfile::tempdir().expect("tempdir");
    let ch =
        LocalTransport::with_store(format!("local?root={}", root2.path().display())).open_serve().await.expect("spawn");
    let mut third = ServeClient::connect(ch, None).await.expect("handshake");
    third.import_paths(std::slice::from_ref(&info), &mut FsNarSource).await.expect("import");
    let got = third.query_path_infos(&[sp(&out)]).await.expect("infos");
    assert_eq!(got[&sp(&out)].nar_hash, info.nar_hash);
}

/// Whether a process whose command line contains `marker` is running.
fn process_running(marker: &str) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        fs::read(e.path().join("cmdline")).map(|c| String::from_utf8_lossy(&c).contains(marker)).unwrap_or(false)
    })
}

#[tokio::test]
async fn nixbuild_serve_dropping_the_session_stops_the_build() {
    let n = nonce();
    // A sleep with a unique duration, so its process can be found.
    let secs = format!("60.{}", n.replace('-', ""));
    let drv = instantiate(&format!("{}mk \"sleeper\" \"/bin/sleep {secs}\" {{}}", mk_prelude(&n)));
    let dag = load_closure(std::slice::from_ref(&drv)).expect("load");
    let mut c = local_client().await;
    let basic = dag.basic_derivation(0).expect("basic");
    let (path, opts) = (sp(&drv), BuildOptions::default());
    let build = c.build_derivation(&path, &basic, &opts);
    // Let the build start, then abandon it.
    let started = tokio::time::timeout(std::time::Duration::from_secs(3), build).await;
    assert!(started.is_err(), "the build should still be running");
    assert!(process_running(&secs), "the builder process should be running");
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while process_running(&secs) {
        assert!(std::time::Instant::now() < deadline, "the build kept running after the session was dropped");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn nixbuild_serve_copy_with_import_paths() {
    let n = nonce();
    let out = realise(&instantiate(&chain_expr(&n, 3)));
    let root = tempfile::tempdir().expect("tempdir");
    let ch =
        LocalTransport::with_store(format!("local?root={}", root.path().display())).open_serve().await.expect("spawn");
    let mut other = ServeClient::connect(ch, None).await.expect("handshake");
    let mut local = local_client().await;
    let stats = copy_closure_with(&mut local, &mut other, &[sp(&out)], CopyMethod::ImportPaths).await.expect("import");
    assert_eq!(stats.copied.len(), 3);
    let there = other.query_path_infos(&[sp(&out)]).await.expect("infos");
    let here = local.query_path_infos(&[sp(&out)]).await.expect("infos");
    assert_eq!(there[&sp(&out)].nar_hash, here[&sp(&out)].nar_hash);
    assert_eq!(there[&sp(&out)].references, here[&sp(&out)].references);
    // Both sessions are still in step.
    assert_eq!(local.query_valid_paths(&[sp(&out)], false, false).await.expect("q").len(), 1);
}

/// Materializes generated entries under `root`: (dir components, name, kind, contents).
fn build_random_tree(root: &Path, entries: &[(Vec<String>, String, u8, Vec<u8>)]) {
    fs::create_dir(root).expect("mkdir root");
    'entries: for (dirs, name, kind, contents) in entries {
        let mut dir = root.to_path_buf();
        for d in dirs {
            dir.push(d);
            match dir.symlink_metadata() {
                Err(_) => fs::create_dir(&dir).expect("mkdir"),
                // An earlier entry made this path a file or symlink: nothing can go below it.
                Ok(m) if !m.is_dir() => continue 'entries,
                Ok(_) => {}
            }
        }
        if !dir.is_dir() || dir.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(true) {
            continue;
        }
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            continue;
        }
        match kind % 4 {
            0 => fs::write(&p, contents).expect("write"),
            1 => {
                fs::write(&p, contents).expect("write");
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            2 => std::os::unix::fs::symlink(String::from_utf8_lossy(contents).replace('\0', "") + "t", &p)
                .expect("symlink"),
            _ => fs::create_dir(&p).expect("mkdir"),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Random trees (names mixing case, dots, spaces, non-ASCII): our NAR equals
    /// nix-store --dump, and restoring it gives a tree that dumps the same again.
    #[test]
    fn nix_nar_random_trees_match_nix_store(
        entries in proptest::collection::vec(
            (
                proptest::collection::vec("[a-cA-C]{1,2}", 0..3),
                "[a-cA-C._ é-]{1,6}",
                0u8..4,
                proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            ),
            1..12,
        )
    ) {
        let entries: Vec<_> = entries.into_iter().filter(|(_, n, _, _)| n != "." && n != "..").collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("t");
        build_random_tree(&root, &entries);
        let mut ours = Vec::new();
        nar::dump_path(&root, &mut ours).expect("dump");
        let theirs = run_bytes(Command::new("nix-store").arg("--dump").arg(&root));
        proptest::prop_assert!(ours == theirs, "NAR differs from nix-store --dump");
        let back = dir.path().join("back");
        nar::restore(&mut ours.as_slice(), &back).expect("restore");
        let mut again = Vec::new();
        nar::dump_path(&back, &mut again).expect("dump");
        proptest::prop_assert!(again == ours);
    }
}

#[tokio::test]
async fn nixbuild_serve_copy_fails_cleanly_when_the_destination_dies() {
    // A path bigger than every pipe buffer on the way.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join(format!("big-{}", nonce()));
    fs::write(&big, vec![0x33u8; 2 << 20]).expect("write");
    let path = run(Command::new("nix-store").arg("--add").arg(&big)).trim().to_string();
    // A fake builder: handshake, "nothing is valid", then it reads a little and dies.
    let fake = script(
        dir.path(),
        "fake",
        r"printf '\313\356\122\124\0\0\0\0\7\2\0\0\0\0\0\0'; printf '\0\0\0\0\0\0\0\0'; head -c 4096 >/dev/null; echo 'error: disk full' >&2; exit 1",
    );
    let ch = LocalTransport::new().with_program(&fake).open_serve().await.expect("spawn");
    let mut dst = ServeClient::connect(ch, None).await.expect("handshake");
    let mut src = local_client().await;
    let res = tokio::time::timeout(std::time::Duration::from_secs(20), copy_closure(&mut src, &mut dst, &[sp(&path)]))
        .await
        .expect("no deadlock");
    let err = res.expect_err("the destination died").to_string();
    assert!(err.contains("disk full"), "{err}");
    // Best-effort cleanup: the source session may still hold a temporary GC root.
    drop(src);
    let _ = Command::new("nix-store").arg("--delete").arg(&path).output();
}

#[tokio::test]
async fn nixbuild_serve_build_options_reach_the_builder() {
    let n = nonce();
    let prelude = mk_prelude(&n);
    let slow = instantiate(&format!("{prelude}mk \"slow\" \"/bin/sleep 30\" {{}}"));
    let chatty = instantiate(&format!(
        "{prelude}mk \"chatty\" \"i=0; while [ $i -lt 2000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done; echo > $out\" {{}}"
    ));
    let mut c = local_client().await;
    let cases = [
        (&slow, BuildOptions { build_timeout_secs: 1, ..BuildOptions::default() }, BuildStatus::TimedOut),
        (&slow, BuildOptions { max_silent_time_secs: 1, ..BuildOptions::default() }, BuildStatus::TimedOut),
        (&chatty, BuildOptions { max_log_size: 1000, ..BuildOptions::default() }, BuildStatus::LogLimitExceeded),
    ];
    for (drv, opts, want) in cases {
        let dag = load_closure(std::slice::from_ref(drv)).expect("load");
        let started = std::time::Instant::now();
        let res = c.build_derivation(&sp(drv), &dag.basic_derivation(0).expect("basic"), &opts).await.expect("reply");
        assert_eq!(res.status, want, "{opts:?}: {}", res.error_msg);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the limit stopped the build");
    }
}
