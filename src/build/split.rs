//! One derivation's compile spread over the pool with distcc (`--split`). While the derivation
//! builds on its owner, rvbuild gives the build a runtime directory outside the derivation,
//! `/nix/var/rvbuild/split/<hash of its `out` output>/`, holding a `hosts` file and one Unix
//! socket per helper (`hN.sock`). The kernel's builder (`nix/host/builders/split.sh`) finds it
//! and puts a wrapper named like the cross gcc in front of it on PATH (so every command line
//! the build records stays the same) that hands each compile to distcc, with distcc's SSH mode pointed at a wrapper that connects
//! to those sockets, and rvbuild bridges each connection to one `distccd --inetd` exec channel on the
//! helper over the SSH connection it already holds. For a remote owner the sockets are SSH
//! remote forwards back to rvbuild. Nothing listens on a network address, there is no second
//! way in, and the `.drv` is the same with and without helpers.
//!
//! A host helps only when it runs the same cross compiler as the owner (version line and the
//! sha256 of the driver and of `cc1`); its host key is checked like every SSH connection's.
//! A helper that fails a job costs only that job: the bridge closes the socket and distcc
//! compiles it on the owner (its fallback), so the output is the same.

use std::collections::BTreeSet;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::transport::{Duplex, Listening, ServeChannel, Transport};
use crate::vocab::Event;
pub use crate::vocab::manifest::SplitReport;

/// The derivation attribute naming the hook its builder sources (`nix/host/builders/split.sh`):
/// only a derivation that has it reads the helper list, so only such a one is split.
pub const HOOK_ATTR: &str = "splitHook";

/// Where the runtime directories live on the owner (its Nix state directory: per store,
/// root-owned, not in any derivation).
pub const RUNTIME_ROOT: &str = "/nix/var/rvbuild/split";

/// What one compile job runs on a helper: distccd on the channel's stdin/stdout, logging each
/// job to stderr (rvbuild counts the `COMPILE_OK` lines). Without `--enable-tcp-insecure`
/// (which distcc's own SSH mode passes), distccd runs only compilers in its whitelist
/// (`/usr/lib/distcc`, kept by Debian's `update-distcc-symlinks` for every installed gcc, the
/// cross ones included): whoever reaches a helper's socket can compile, nothing more. The
/// builder's distcc names the compiler without a path.
///
/// In pump mode distccd writes every header of a job (about 900 for a kernel file) into its
/// temporary directory and deletes them after the compile. On ext4 that churn cost a helper
/// 0.18 CPU seconds per job in the kernel's inode allocator (`kernel_split` bench, profiled
/// with `perf`: a third of the helper's CPU), so distccd works in `/dev/shm` (tmpfs) where it
/// is writable.
pub const HELPER_COMMAND: &str = "if [ -d /dev/shm ] && [ -w /dev/shm ]; then TMPDIR=/dev/shm; export TMPDIR; fi; \
     exec distccd --inetd --log-stderr --log-level=info";

/// distccd's compiler whitelist.
const WHITELIST: &str = "/usr/lib/distcc";

/// How long a helper may take to answer the compiler-identity probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long opening a helper's exec channel may take before the job goes back to the owner.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// After one direction of a bridged job ended, how long the other may still take.
const GRACE: Duration = Duration::from_secs(5);

/// A host that may take compile jobs.
#[derive(Clone)]
pub struct Helper {
    pub name: String,
    pub transport: Arc<dyn Transport>,
    /// Concurrent jobs it takes (distcc's `/LIMIT`).
    pub slots: u32,
}

/// Which derivations are split, and over whom (the owner of a derivation is left out of its
/// own helpers by name).
#[derive(Clone, Default)]
pub struct SplitConfig {
    /// .drv paths to split.
    pub drvs: BTreeSet<String>,
    pub helpers: Vec<Helper>,
}

impl std::fmt::Debug for SplitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let helpers: Vec<String> = self.helpers.iter().map(|h| format!("{}/{}", h.name, h.slots)).collect();
        f.debug_struct("SplitConfig").field("drvs", &self.drvs).field("helpers", &helpers).finish()
    }
}

/// A split under way on one owner.
pub(crate) struct Session {
    owner: Arc<dyn Transport>,
    dir: String,
    serving: Vec<JoinHandle<()>>,
    counts: Vec<(String, Arc<AtomicU32>, Arc<AtomicU32>)>,
    report: SplitReport,
}

/// Whether `s` may be put on a shell command line as it is.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// The shell command printing a compiler's identity: its version line, then the sha256 of the
/// driver (links resolved) and of `cc1`, which do the work on a helper.
pub fn identity_command(compiler: &str) -> String {
    format!(
        "c=$(command -v {compiler}) || {{ echo no {compiler} >&2; exit 3; }}; {compiler} --version | head -n1 && \
         sha256sum \"$(readlink -f \"$c\")\" \"$({compiler} -print-prog-name=cc1)\" | cut -d' ' -f1"
    )
}

/// The identity of the compiler on a helper, failing when distccd is missing or would refuse it.
fn helper_command(compiler: &str) -> String {
    format!(
        "command -v distccd >/dev/null || {{ echo no distccd >&2; exit 3; }}; \
         [ -e {WHITELIST}/{compiler} ] || {{ echo {compiler} is not in the distccd whitelist {WHITELIST}, run update-distcc-symlinks >&2; exit 3; }}; \
         {}",
        identity_command(compiler)
    )
}

/// The identity of the compiler on the owner, failing when the builder could not use helpers.
fn owner_command(compiler: &str) -> String {
    format!(
        "command -v distcc >/dev/null && command -v socat >/dev/null || {{ echo no distcc or no socat >&2; exit 3; }}; {}",
        identity_command(compiler)
    )
}

/// Why a helper with identity `theirs` cannot help an owner with `ours`, or None when it can.
pub fn identity_mismatch(compiler: &str, ours: &str, theirs: &str) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let first = |s: &str| s.lines().next().unwrap_or("").trim().to_string();
    Some(if first(ours) != first(theirs) {
        format!("different {compiler}: `{}` here, `{}` on the owner", first(theirs), first(ours))
    } else {
        format!("same {compiler} version, different binaries (sha256 of the driver or cc1 differs)")
    })
}

async fn identity(t: &dyn Transport, command: &str) -> Result<String, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, t.exec(command)).await {
        Err(_) => Err(format!("no answer to the compiler probe within {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(o)) if o.status == Some(0) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(Ok(o)) => {
            Err(String::from_utf8_lossy(&o.stderr).trim().lines().last().unwrap_or("the probe failed").to_string())
        }
    }
}

/// The directory key of a derivation: the hash part of its first output path.
pub fn key_of(output: &str) -> Option<String> {
    let base = output.rsplit('/').next()?;
    let (hash, _) = base.split_once('-')?;
    (hash.len() == 32 && hash.chars().all(|c| c.is_ascii_alphanumeric())).then(|| hash.to_string())
}

/// The `hosts` file the builder reads: one `hN SLOTS` line per helper socket, with twice the
/// helper's build slots as distcc's limit: a job holds its helper slot while the owner
/// prepares and sends it and while its object comes back, and with one slot per core the
/// helpers sat half idle (`kernel_split` bench: 72 of 147 CPU seconds each). It writes no
/// `local SLOTS` line (split.sh would take it as the owner's own compile slots): the owner
/// compiles after its helpers' slots are full, on all of its `$jobs` in plain mode and on half
/// of them in pump mode (split.sh).
pub fn hosts_file(slots: &[u32]) -> String {
    slots.iter().enumerate().map(|(i, s)| format!("h{i} {}\n", s.saturating_mul(2).min(MAX_DISTCC_SLOTS))).collect()
}

/// The largest per-host limit split.sh reads (two digits).
const MAX_DISTCC_SLOTS: u32 = 99;

/// Starts a split of the derivation with output key `key` on `owner`: probes compilers,
/// makes the runtime directory, listens on one socket per helper and writes the hosts file.
/// An `Err` says why the derivation builds unsplit.
pub(crate) async fn start(
    owner: Arc<dyn Transport>,
    owner_name: &str,
    key: &str,
    compiler: &str,
    helpers: &[Helper],
    events: &mpsc::UnboundedSender<Event>,
) -> Result<Session, String> {
    if !is_plain(key) || !is_plain(compiler) {
        return Err(format!("unexpected key `{key}` or compiler `{compiler}`"));
    }
    let ours =
        identity(owner.as_ref(), &owner_command(compiler)).await.map_err(|e| format!("the owner {owner_name}: {e}"))?;
    let mut report = SplitReport { owner: owner_name.to_string(), ..SplitReport::default() };
    let candidates: Vec<&Helper> = helpers.iter().filter(|h| h.name != owner_name && h.slots > 0).collect();
    let mut probes = JoinSet::new();
    for (i, h) in candidates.iter().enumerate() {
        let (t, c) = (h.transport.clone(), helper_command(compiler));
        probes.spawn(async move { (i, identity(t.as_ref(), &c).await) });
    }
    let mut found: Vec<Result<String, String>> = vec![Err("the probe did not finish".to_string()); candidates.len()];
    while let Some(r) = probes.join_next().await {
        if let Ok((i, id)) = r {
            found[i] = id;
        }
    }
    let mut chosen = Vec::new();
    for (h, id) in candidates.into_iter().zip(found) {
        let why = match id {
            Ok(theirs) => identity_mismatch(compiler, &ours, &theirs),
            Err(e) => Some(e),
        };
        match why {
            Some(why) => {
                let _ = events.send(Event::Note { text: format!("split: {} does not help: {why}", h.name) });
                report.excluded.insert(h.name.clone(), why);
            }
            None => chosen.push(h.clone()),
        }
    }
    if chosen.is_empty() {
        return Err("no helper runs the same cross compiler".to_string());
    }
    let dir = format!("{RUNTIME_ROOT}/{key}");
    let mk = format!(
        "mkdir -p {RUNTIME_ROOT} && chmod 0755 {root} {RUNTIME_ROOT} && rm -rf {dir} && mkdir -m 0700 {dir}",
        root = RUNTIME_ROOT.rsplit_once('/').map(|(r, _)| r).unwrap_or(RUNTIME_ROOT)
    );
    run_ok(owner.as_ref(), &mk).await?;
    let mut session =
        Session { owner: owner.clone(), dir: dir.clone(), serving: Vec::new(), counts: Vec::new(), report };
    for (i, h) in chosen.iter().enumerate() {
        let path = format!("{dir}/h{i}.sock");
        let listening = match owner.listen_unix(&path).await {
            Ok(l) => l,
            Err(e) => {
                session.finish().await;
                return Err(format!("cannot listen on {path}: {e}"));
            }
        };
        let (jobs, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        session.counts.push((h.name.clone(), jobs.clone(), failed.clone()));
        let task = tokio::spawn(serve(h.clone(), listening, jobs, failed, events.clone()));
        session.serving.push(task);
    }
    // Only the build users (group nixbld, when there is one) and root may connect.
    let slots: Vec<u32> = chosen.iter().map(|h| h.slots).collect();
    let publish = format!(
        "cd {dir} && if getent group nixbld >/dev/null; then chgrp nixbld . h*.sock && chmod 0750 . && chmod 0660 h*.sock; fi \
         && printf '%s' '{hosts}' > hosts.tmp && chmod 0644 hosts.tmp && mv hosts.tmp hosts",
        hosts = hosts_file(&slots)
    );
    if let Err(e) = run_ok(owner.as_ref(), &publish).await {
        session.finish().await;
        return Err(e);
    }
    let names: Vec<&str> = chosen.iter().map(|h| h.name.as_str()).collect();
    let total: u32 = slots.iter().sum();
    let _ = events.send(Event::Note {
        text: format!("split: {owner_name} + {} (distcc, {total} remote slots)", names.join(",")),
    });
    Ok(session)
}

async fn run_ok(t: &dyn Transport, cmd: &str) -> Result<(), String> {
    match t.exec(cmd).await {
        Ok(o) if o.status == Some(0) => Ok(()),
        Ok(o) => Err(format!("`{cmd}` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(e.to_string()),
    }
}

impl Session {
    /// Ends the split: stops taking jobs, removes the runtime directory, reports the counts.
    pub(crate) async fn finish(self) -> SplitReport {
        let Session { owner, dir, serving, counts, mut report } = self;
        for task in &serving {
            task.abort();
        }
        for task in serving {
            let _ = task.await;
        }
        let _ = owner.exec(&format!("rm -rf {dir}")).await;
        for (name, jobs, failed) in counts {
            report.jobs.insert(name.clone(), jobs.load(Ordering::SeqCst));
            report.failed.insert(name, failed.load(Ordering::SeqCst));
        }
        report
    }
}

/// Accepts the owner's connections to one helper's socket and bridges each to a job there.
async fn serve(
    helper: Helper,
    mut listening: Listening,
    jobs: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut running = JoinSet::new();
    let mut told = false;
    loop {
        tokio::select! {
            c = listening.incoming.recv() => match c {
                Some(conn) => {
                    let t = helper.transport.clone();
                    running.spawn(async move { bridge(conn, t.as_ref()).await });
                }
                None => break,
            },
            Some(done) = running.join_next() => match done {
                Ok(Ok(n)) => { jobs.fetch_add(n, Ordering::SeqCst); }
                Ok(Err(why)) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    if !told {
                        told = true;
                        let _ = events.send(Event::Note {
                            text: format!("split: a job on {} failed ({why}); distcc compiles it on the owner", helper.name),
                        });
                    }
                }
                Err(_) => { failed.fetch_add(1, Ordering::SeqCst); }
            },
        }
    }
}

/// One compile job: the owner's connection to `distccd --inetd` on the helper. Returns how
/// many jobs distccd reported done, or why it did not.
async fn bridge(conn: Box<dyn Duplex>, helper: &dyn Transport) -> Result<u32, String> {
    let ch = match tokio::time::timeout(OPEN_TIMEOUT, helper.open_stream(HELPER_COMMAND)).await {
        Ok(Ok(ch)) => ch,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no exec channel within {OPEN_TIMEOUT:?}")),
    };
    let ServeChannel { mut from_builder, mut to_builder, mut stderr, keepalive, .. } = ch;
    let log = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).matches("COMPILE_OK").count() as u32
    });
    let (mut cr, mut cw) = tokio::io::split(conn);
    let mut up = pin!(async {
        let r = tokio::io::copy(&mut cr, &mut to_builder).await;
        let _ = to_builder.shutdown().await;
        r.map(|_| ())
    });
    let mut down = pin!(async {
        let r = tokio::io::copy(&mut from_builder, &mut cw).await;
        let _ = cw.shutdown().await;
        r.map(|_| ())
    });
    let (first, second) = tokio::select! {
        r = &mut down => (r, tokio::time::timeout(GRACE, &mut up).await),
        r = &mut up => (r, tokio::time::timeout(GRACE, &mut down).await),
    };
    drop(keepalive);
    let done = tokio::time::timeout(GRACE, log).await.ok().and_then(|r| r.ok()).unwrap_or(0);
    match (first, second) {
        _ if done > 0 => Ok(done),
        (Err(e), _) | (_, Ok(Err(e))) => Err(e.to_string()),
        _ => Err("distccd reported no finished compile".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_output_hashes() {
        assert_eq!(
            key_of("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-rvbuild-linux-6.12-riscv64").as_deref(),
            Some("0123456789abcdfghijklmnpqrsvwxyz")
        );
        assert_eq!(key_of("/nix/store/short-x"), None);
        assert_eq!(key_of("/nix/store/../../etc-passwdxxxxxxxxxxxxxxxxxxxxxxx-x"), None);
    }

    #[test]
    fn hosts_file_names_each_socket() {
        assert_eq!(hosts_file(&[2, 3, 60]), "h0 4\nh1 6\nh2 99\n");
    }

    #[test]
    fn compiler_identity_mismatch_says_what_differs() {
        let ours = "riscv64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\naaa\nbbb";
        assert_eq!(identity_mismatch("gcc", ours, ours), None);
        let other = identity_mismatch("gcc", ours, "riscv64-linux-gnu-gcc (GCC) 13.1.0\naaa\nbbb").unwrap_or_default();
        assert!(other.contains("13.1.0") && other.contains("12.2.0"), "{other}");
        let binary = identity_mismatch("gcc", ours, "riscv64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\nccc\nbbb")
            .unwrap_or_default();
        assert!(binary.contains("different binaries"), "{binary}");
    }
}
