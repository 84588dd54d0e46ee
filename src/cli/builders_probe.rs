//! `rvbuild builders probe [HOST…]`: probes the selected builders concurrently, prints a table
//! (or JSON), and stores the results in the probe cache. Exit code 4 when a builder could not
//! be probed (its row says why).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde::Serialize;

use super::Context;
use super::pool_args::{ListArgs, load_pool};
use crate::build::connect::{ConnectOptions, transport_for};
use crate::builders::Builder;
use crate::builders::inventory;
use crate::builders::model::{DEFAULT_MAX_AGE_S, human_age};
use crate::builders::probe_cache as cache;
use crate::probe::{self, ProbeOptions, ProbeResult};
use crate::{Error, ErrorKind, Result};

/// One line of output: a builder and its probe, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub builder: String,
    pub uri: String,
    pub ok: bool,
    /// Seconds since the probe (0 for a fresh one).
    pub age_s: Option<u64>,
    pub error: Option<String>,
    pub result: Option<ProbeResult>,
}

#[derive(Debug, Default, clap::Args)]
pub struct ProbeArgs {
    /// Builders to probe: names, hosts or `tag:T` (default: the whole pool).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    /// The pool, as for `builders list`.
    #[command(flatten)]
    pub select: ListArgs,
    /// Skip the benchmark (no speed or slowdown): one quick command per host.
    #[arg(long)]
    pub no_benchmark: bool,
    /// Show the cached results without connecting.
    #[arg(long, conflicts_with_all = ["no_benchmark"])]
    pub cached: bool,
}

pub fn run(ctx: &Context, a: ProbeArgs) -> Result<()> {
    let pool = load_pool(ctx, &a.select.pool, a.select.profile.as_deref())?;
    let hosts = inventory::split_selectors(&a.hosts);
    let pool = inventory::filter(pool, &hosts, &[])?;
    if pool.is_empty() {
        return Err(Error::with_help(
            ErrorKind::Config,
            "no builders to probe",
            "add machines to the profile, /etc/nix/machines or --builders, or allow --local-jobs",
        ));
    }
    let mut cache = cache::load_cache();
    if let Some(w) = &cache.warning {
        eprintln!("warning: {w}");
    }
    let now = probe::now_unix();
    let rows: Vec<Row> = if a.cached {
        pool.iter()
            .map(|b| match cache.get(b) {
                Some(r) => row_ok(b, r.clone(), now),
                None => row_err(b, "never probed".into(), None),
            })
            .collect()
    } else {
        let mut opts = ProbeOptions::default();
        opts.measure = !a.no_benchmark;
        let connect = ConnectOptions { accept_new_host_keys: a.select.pool.accept_new_host_keys };
        if std::io::stderr().is_terminal() {
            let names: Vec<&str> = pool.iter().map(|b| b.name.as_str()).collect();
            let what = if opts.measure { " (the benchmark takes a few seconds per host)" } else { "" };
            eprintln!("probing {}{what}…", names.join(", "));
        }
        let rows = probe_all(&ctx.runtime, &pool, &opts, &connect)?;
        for r in rows.iter().filter_map(|r| r.result.clone()) {
            cache.insert(r);
        }
        if rows.iter().any(|r| r.ok)
            && let Err(e) = cache.save()
        {
            eprintln!("warning: the probe results were not cached: {e}");
        }
        rows
    };

    let out = if a.select.json || ctx.json {
        let mut s = serde_json::to_string_pretty(&rows)
            .map_err(|e| Error::msg(ErrorKind::Internal, format!("cannot encode the probe results as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        table(&rows)
    };
    std::io::stdout().lock().write_all(out.as_bytes()).map_err(|e| Error::io(ErrorKind::Internal, "stdout", e))?;

    let failed: Vec<&str> = rows.iter().filter(|r| !r.ok && !a.cached).map(|r| r.builder.as_str()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(
            ErrorKind::Builder,
            format!("{} of {} builders could not be probed: {}", failed.len(), rows.len(), failed.join(", ")),
        ))
    }
}

fn row_ok(b: &Builder, r: ProbeResult, now: u64) -> Row {
    Row {
        builder: b.name.clone(),
        uri: b.uri.clone(),
        ok: true,
        age_s: Some(now.saturating_sub(r.probed_at)),
        error: None,
        result: Some(r),
    }
}

fn row_err(b: &Builder, error: String, age_s: Option<u64>) -> Row {
    Row { builder: b.name.clone(), uri: b.uri.clone(), ok: false, age_s, error: Some(error), result: None }
}

/// Probes every builder concurrently (each through its own transport), in pool order.
/// Blocks on `rt` (the process's runtime) from this synchronous caller.
pub fn probe_all(
    rt: &tokio::runtime::Handle,
    pool: &[Builder],
    opts: &ProbeOptions,
    connect: &ConnectOptions,
) -> Result<Vec<Row>> {
    rt.block_on(async {
        let mut tasks = Vec::new();
        for b in pool {
            let b = b.clone();
            let opts = opts.clone();
            let transport = transport_for(&b, connect);
            tasks.push(tokio::spawn(async move {
                let result = match transport {
                    Ok(t) => probe_one(&b, t, &opts).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(r) => row_ok(&b, r, probe::now_unix()),
                    Err(e) => row_err(&b, e.to_string(), None),
                }
            }));
        }
        let mut rows = Vec::new();
        for (t, b) in tasks.into_iter().zip(pool) {
            rows.push(t.await.unwrap_or_else(|e| row_err(b, format!("probe task failed: {e}"), None)));
        }
        Ok(rows)
    })
}

async fn probe_one(b: &Builder, t: Arc<dyn crate::transport::Transport>, opts: &ProbeOptions) -> Result<ProbeResult> {
    probe::probe(b, t.as_ref(), opts).await
}

fn short(system: &str) -> &str {
    system.strip_suffix("-linux").unwrap_or(system)
}

fn emulated_cell(r: &ProbeResult) -> (String, bool) {
    let mut undeclared = false;
    let cells: Vec<String> = r
        .emulated
        .iter()
        .map(|(s, e)| {
            let mark = if e.declared {
                ""
            } else {
                undeclared = true;
                "*"
            };
            match e.slowdown {
                Some(d) => format!("{}{mark} {d:.1}x", short(s)),
                None if r.errors.contains_key(&format!("emulated {s}")) => format!("{}{mark} failed", short(s)),
                None => format!("{}{mark} ?", short(s)),
            }
        })
        .collect();
    (if cells.is_empty() { "-".into() } else { cells.join(", ") }, undeclared)
}

fn age_cell(age_s: u64) -> String {
    if age_s > DEFAULT_MAX_AGE_S { format!("{} (stale)", human_age(age_s)) } else { human_age(age_s) }
}

fn gib(bytes: u64) -> String {
    format!("{:.1}G", bytes as f64 / (1u64 << 30) as f64)
}

/// The rows as an aligned table, then the per-part errors.
pub fn table(rows: &[Row]) -> String {
    let head = ["NAME", "NIX", "SYSTEM", "EMULATED (slowdown)", "CORES", "LOAD", "FREE", "SPEED", "AGE"];
    let mut undeclared = false;
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| match &row.result {
            Some(r) => {
                let (emu, u) = emulated_cell(r);
                undeclared |= u;
                vec![
                    row.builder.clone(),
                    r.nix_version.clone().unwrap_or_else(dash),
                    r.system.clone().unwrap_or_else(dash),
                    emu,
                    r.cores.map(|c| c.to_string()).unwrap_or_else(dash),
                    r.load1.map(|l| format!("{l:.2}")).unwrap_or_else(dash),
                    r.free_disk_bytes.map(gib).unwrap_or_else(dash),
                    r.speed.map(|s| format!("{s:.2}")).unwrap_or_else(dash),
                    row.age_s.map(age_cell).unwrap_or_else(dash),
                ]
            }
            None => vec![row.builder.clone(), format!("error: {}", row.error.as_deref().unwrap_or("unknown"))],
        })
        .collect();
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in cells.iter().filter(|r| r.len() == head.len()) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in std::iter::once(head.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(cells) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    if undeclared {
        s.push_str("(* runs through binfmt there but is not in Nix's extra-platforms: Nix will not build it there)\n");
    }
    for row in rows {
        if let Some(r) = &row.result
            && !r.cross_compilers.is_empty()
        {
            let list: Vec<String> =
                r.cross_compilers.iter().map(|(c, id)| format!("{c} ({})", id.lines().next().unwrap_or("?"))).collect();
            s.push_str(&format!("{}: cross compilers: {}\n", row.builder, list.join(", ")));
        }
    }
    for row in rows {
        if let Some(r) = &row.result {
            for (part, e) in &r.errors {
                s.push_str(&format!("{}: {part}: {e}\n", row.builder));
            }
        }
    }
    if rows.iter().any(|r| r.result.as_ref().is_some_and(|r| r.speed.is_some())) {
        s.push_str(&format!(
            "(SPEED 1.0 = the reference machine, {:.0} ms per benchmark round; slowdown = emulated / native time there)\n",
            probe::REFERENCE_NS_PER_ROUND / 1e6
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::EmulatedSystem;
    use std::collections::BTreeMap;

    #[test]
    fn table_shows_results_errors_and_marks() {
        let r = ProbeResult {
            builder: "local".into(),
            uri: "local".into(),
            probed_at: 0,
            measured_at: Some(0),
            duration_s: 1.0,
            nix_version: Some("2.8.0".into()),
            system: Some("x86_64-linux".into()),
            extra_platforms: vec!["aarch64-linux".into()],
            system_features: None,
            emulated: BTreeMap::from([
                ("aarch64-linux".into(), EmulatedSystem { declared: true, binfmt: None, slowdown: None }),
                ("riscv64-linux".into(), EmulatedSystem { declared: false, binfmt: None, slowdown: Some(6.25) }),
            ]),
            cores: Some(2),
            load1: Some(0.5),
            free_disk_bytes: Some(3 << 30),
            speed: Some(1.02),
            bench_ns_per_round: None,
            errors: BTreeMap::from([("emulated aarch64-linux".into(), "exit 1: boom".into())]),
            userlands: Default::default(),
            cross_compilers: Default::default(),
        };
        let rows = vec![
            Row {
                builder: "local".into(),
                uri: "local".into(),
                ok: true,
                age_s: Some(0),
                error: None,
                result: Some(r),
            },
            Row {
                builder: "ruby".into(),
                uri: "ssh://ruby".into(),
                ok: false,
                age_s: None,
                error: Some("ruby: SSH transport not available yet".into()),
                result: None,
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME   NIX    SYSTEM"), "{t}");
        assert!(lines[1].contains("aarch64 failed, riscv64* 6.2x"), "{t}");
        assert!(lines[1].contains("3.0G") && lines[1].contains("1.02") && lines[1].ends_with("0s"), "{t}");
        assert_eq!(lines[2], "ruby   error: ruby: SSH transport not available yet");
        assert!(t.contains("(* runs through binfmt"), "{t}");
        assert!(t.contains("local: emulated aarch64-linux: exit 1: boom"), "{t}");
        assert_eq!(age_cell(30), "30s");
        assert_eq!(age_cell(DEFAULT_MAX_AGE_S + 86400), "8d (stale)");
    }
}
