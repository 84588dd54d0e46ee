//! The merged builder pool: the build profile's machines, `/etc/nix/machines` and nix.conf
//! `builders` (when the profile asks for them), or `--builders` (which replaces both, like Nix),
//! plus the local machine; each remote host resolved through ssh_config and given its host key
//! from the machines line or known_hosts. Then the `--only` / `--exclude` filters.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::BuildersError;
use super::known_hosts::{self, KnownHosts};
use super::machines::{self, HostKey, Machine, Scheme};
use super::section::{LocalJobs, ProfileBuilders};
use super::ssh_config::SshConfig;
use crate::Result;

/// Where the system files are. Tests point these at temp files; the CLI uses [`Sources::from_env`].
#[derive(Debug, Clone)]
pub struct Sources {
    /// Directory of nix.conf and machines (`/etc/nix`).
    pub nix_conf_dir: PathBuf,
    /// The user's home (for `~/.ssh`).
    pub home: Option<PathBuf>,
    /// The system SSH directory (`/etc/ssh`).
    pub ssh_dir: PathBuf,
    /// Cores of this machine (for `local-jobs: auto`).
    pub cores: u32,
}

impl Sources {
    /// The real locations: `RVBUILD_NIX_CONF_DIR`, else `NIX_CONF_DIR`, else `/etc/nix`;
    /// `HOME`; `RVBUILD_SSH_DIR`, else `/etc/ssh`.
    pub fn from_env() -> Sources {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Sources {
            nix_conf_dir: var("RVBUILD_NIX_CONF_DIR")
                .or_else(|| var("NIX_CONF_DIR"))
                .unwrap_or_else(|| "/etc/nix".into()),
            home: var("HOME"),
            ssh_dir: var("RVBUILD_SSH_DIR").unwrap_or_else(|| "/etc/ssh".into()),
            cores: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        }
    }
}

/// Choices from the command line.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// `--builders SPEC` (replaces the profile's and Nix's machines).
    pub builders: Option<String>,
    /// `--only HOST|tag:T,...`
    pub only: Vec<String>,
    /// `--exclude HOST|tag:T,...`
    pub exclude: Vec<String>,
    /// `--local-jobs N` (overrides the profile; 0 = the local machine does not build).
    pub local_jobs: Option<LocalJobs>,
}

/// What is known about a builder's host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum HostKeyStatus {
    /// The local machine: no SSH.
    NotNeeded,
    /// From the machines line's host-key column.
    Machines { key: HostKey },
    /// From known_hosts (`at` = FILE:LINE).
    KnownHosts { keys: Vec<HostKey>, at: Vec<String> },
    /// Only a certificate authority is trusted for the host.
    CertAuthority { at: Vec<String> },
    /// The key in the machines line is marked `@revoked`: the host is refused.
    Revoked { at: String },
    /// Nothing known: refused unless `--accept-new-host-keys`.
    Unknown,
}

impl HostKeyStatus {
    /// Short text for tables.
    pub fn summary(&self) -> String {
        match self {
            HostKeyStatus::NotNeeded => "-".into(),
            HostKeyStatus::Machines { key } => format!("{} (machines line)", key.key_type),
            HostKeyStatus::KnownHosts { keys, at } => {
                let types: Vec<&str> = keys.iter().map(|k| k.key_type.as_str()).collect();
                format!("{} ({})", types.join(","), at.join(", "))
            }
            HostKeyStatus::CertAuthority { at } => format!("certificate authority ({})", at.join(", ")),
            HostKeyStatus::Revoked { at } => format!("REVOKED ({at}): refused"),
            HostKeyStatus::Unknown => "unknown: will be refused unless --accept-new-host-keys".into(),
        }
    }
}

/// One member of the pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Builder {
    /// Unique name used by `--only`/`--exclude` (the alias in the URI, `local` for this machine).
    pub name: String,
    pub uri: String,
    pub scheme: Scheme,
    /// Resolved SSH user (URI, then ssh_config); None = ssh's default.
    pub user: Option<String>,
    /// Resolved host name or address (ssh_config `HostName`); empty for local.
    pub host: String,
    /// Resolved port (URI, then ssh_config, then 22); 0 for local.
    pub port: u16,
    pub systems: Vec<String>,
    /// Identity files: the machines column, else ssh_config's `IdentityFile`s.
    pub identity: Vec<PathBuf>,
    pub max_jobs: u32,
    pub speed: f64,
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
    pub host_key: HostKeyStatus,
    /// `tag:SYSTEM`, `tag:FEATURE`, `tag:local` / `tag:remote`.
    pub tags: Vec<String>,
    /// Where it came from (`FILE:LINE`, `--builders entry N`, `profile P`, `--local-jobs`).
    pub source: String,
}

/// This machine's Nix system (`x86_64-linux`, `riscv64-linux`, ...).
pub fn native_system() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// nix.conf settings rvbuild reads (`extra-` variants appended).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NixConf {
    pub builders: Option<String>,
    pub system: Option<String>,
    pub extra_platforms: Vec<String>,
    pub system_features: Option<Vec<String>>,
}

/// Reads nix.conf (missing file = all defaults). `include` lines are not followed.
pub fn read_nix_conf(path: &Path) -> Result<NixConf> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NixConf::default()),
        Err(source) => return Err(BuildersError::ReadNixConf { path: path.to_path_buf(), source }.into()),
    };
    let mut c = NixConf::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((k, v)) = line.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        let words = || v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match k {
            "builders" => c.builders = Some(v.to_string()),
            "extra-builders" => {
                c.builders = Some(match c.builders.take() {
                    Some(b) if !b.trim().is_empty() => format!("{b} ; {v}"),
                    _ => v.to_string(),
                })
            }
            "system" => c.system = Some(v.to_string()),
            "extra-platforms" => c.extra_platforms = words(),
            "extra-extra-platforms" => c.extra_platforms.extend(words()),
            "system-features" => c.system_features = Some(words()),
            "extra-system-features" => c.system_features.get_or_insert_with(Vec::new).extend(words()),
            _ => {}
        }
    }
    Ok(c)
}

/// The machines Nix itself would use: nix.conf `builders`, default `@NIX_CONF_DIR/machines`.
pub fn nix_machines(sources: &Sources) -> Result<Vec<Machine>> {
    let conf_path = sources.nix_conf_dir.join("nix.conf");
    let conf = read_nix_conf(&conf_path)?;
    match conf.builders {
        Some(spec) => machines::parse_spec(&spec, &format!("{} `builders`", conf_path.display())),
        None => {
            let m = sources.nix_conf_dir.join("machines");
            if m.is_file() { machines::parse_file(&m) } else { Ok(Vec::new()) }
        }
    }
}

/// Builds the merged, filtered pool.
pub fn load_pool(
    profile: Option<(&ProfileBuilders, &str)>,
    opts: &PoolOptions,
    sources: &Sources,
) -> Result<Vec<Builder>> {
    let mut entries: Vec<Machine> = Vec::new();
    if let Some(spec) = &opts.builders {
        entries.extend(machines::parse_spec(spec, "--builders")?);
    } else {
        let use_nix = match profile {
            Some((p, file)) => {
                for (i, m) in p.machines.iter().enumerate() {
                    let at = format!("{file}:{} (builders.machines[{i}])", m.referenced.line());
                    entries.extend(machines::parse_spec(&m.value, &at)?);
                }
                p.use_nix_machines
            }
            None => true,
        };
        if use_nix {
            entries.extend(nix_machines(sources)?);
        }
    }

    let conf = read_nix_conf(&sources.nix_conf_dir.join("nix.conf"))?;
    let local_system = conf.system.clone().unwrap_or_else(native_system);
    let ssh_cfg = SshConfig::load(
        &[sources.home.as_ref().map(|h| h.join(".ssh/config")).unwrap_or_default(), sources.ssh_dir.join("ssh_config")],
        sources.home.as_deref(),
    )?;
    let kh = KnownHosts::load(&known_hosts::default_files(sources.home.as_deref(), &sources.ssh_dir));

    let mut pool: Vec<Builder> = Vec::new();
    let local_jobs = opts.local_jobs.or_else(|| profile.and_then(|(p, _)| p.local_jobs.as_ref().map(|l| l.value)));
    let local_jobs = match local_jobs.unwrap_or(LocalJobs::Auto) {
        LocalJobs::Auto => sources.cores.max(1),
        LocalJobs::Count(n) => n,
    };
    if local_jobs > 0 {
        let mut systems = vec![local_system.clone()];
        for s in &conf.extra_platforms {
            if machines::is_system(s) && !systems.contains(s) {
                systems.push(s.clone());
            }
        }
        let features: Vec<String> =
            conf.system_features.clone().unwrap_or_default().into_iter().filter(|f| machines::is_feature(f)).collect();
        pool.push(finish(Builder {
            name: "local".into(),
            uri: "local".into(),
            scheme: Scheme::Local,
            user: None,
            host: String::new(),
            port: 0,
            systems,
            identity: Vec::new(),
            max_jobs: local_jobs,
            speed: 1.0,
            supported_features: features,
            mandatory_features: Vec::new(),
            host_key: HostKeyStatus::NotNeeded,
            tags: Vec::new(),
            source: if opts.local_jobs.is_some() { "--local-jobs".into() } else { "local machine".into() },
        }));
    }

    for m in entries {
        if m.scheme == Scheme::Local {
            // `local`/`auto`/`daemon` in a machines list is this machine; its slots come from local-jobs.
            continue;
        }
        if pool.iter().any(|b| b.uri == m.uri) {
            continue;
        }
        let b = remote(m, &local_system, &ssh_cfg, &kh, sources.home.as_deref())?;
        let mut b = b;
        let base = b.name.clone();
        let mut n = 2;
        while pool.iter().any(|x| x.name == b.name) {
            b.name = format!("{base}#{n}");
            n += 1;
        }
        pool.push(b);
    }
    filter(pool, &opts.only, &opts.exclude)
}

fn remote(m: Machine, local_system: &str, ssh: &SshConfig, kh: &KnownHosts, home: Option<&Path>) -> Result<Builder> {
    let r = ssh
        .resolve(&m.host, home)
        .map_err(|e| BuildersError::SshConfigEntry { at: m.source.clone(), source: Box::new(e) })?;
    let port = m.port.or(r.port).unwrap_or(22);
    let host_key = match &m.host_key {
        Some(k) => match kh.entries.iter().find(|e| e.marker == known_hosts::Marker::Revoked && &e.key == k) {
            Some(e) => HostKeyStatus::Revoked { at: e.at.clone() },
            None => HostKeyStatus::Machines { key: k.clone() },
        },
        None => {
            let mut found = kh.lookup(&r.hostname, port);
            if found.keys.is_empty() && found.cert_authorities.is_empty() && r.hostname != m.host {
                found = kh.lookup(&m.host, port);
            }
            let keys: Vec<_> = found.keys.into_iter().filter(|(k, _)| !kh.is_revoked(k)).collect();
            if !keys.is_empty() {
                HostKeyStatus::KnownHosts {
                    keys: keys.iter().map(|(k, _)| k.clone()).collect(),
                    at: keys.into_iter().map(|(_, a)| a).collect(),
                }
            } else if !found.cert_authorities.is_empty() {
                HostKeyStatus::CertAuthority { at: found.cert_authorities.into_iter().map(|(_, a)| a).collect() }
            } else if let Some((_, at)) = found.revoked.into_iter().next() {
                HostKeyStatus::Revoked { at }
            } else {
                HostKeyStatus::Unknown
            }
        }
    };
    let name = match m.port {
        Some(p) if p != 22 => format!("{}:{p}", m.host),
        _ => m.host.clone(),
    };
    Ok(finish(Builder {
        name,
        uri: m.uri,
        scheme: m.scheme,
        user: m.user.or(r.user),
        host: r.hostname,
        port,
        systems: if m.systems.is_empty() { vec![local_system.to_string()] } else { m.systems },
        identity: match m.identity {
            Some(p) => vec![p],
            None => r.identity_files,
        },
        max_jobs: m.max_jobs,
        speed: m.speed,
        supported_features: m.supported_features,
        mandatory_features: m.mandatory_features,
        host_key,
        tags: Vec::new(),
        source: m.source,
    }))
}

fn finish(mut b: Builder) -> Builder {
    let mut tags = vec![if b.scheme == Scheme::Local { "tag:local".to_string() } else { "tag:remote".to_string() }];
    for t in b.systems.iter().chain(&b.supported_features).chain(&b.mandatory_features) {
        let t = format!("tag:{t}");
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    b.tags = tags;
    b
}

fn selects(b: &Builder, sel: &str) -> bool {
    if sel.starts_with("tag:") {
        b.tags.iter().any(|t| t == sel)
    } else {
        b.name == sel || (!b.host.is_empty() && b.host == sel) || b.uri == sel
    }
}

/// Applies `--only` (keep builders any selector names) and `--exclude` (drop them). A selector
/// that names nothing in the pool is an error, so a typo does not silently change the pool.
pub fn filter(pool: Vec<Builder>, only: &[String], exclude: &[String]) -> Result<Vec<Builder>> {
    for (flag, sels) in [("--only", only), ("--exclude", exclude)] {
        for s in sels {
            if !pool.iter().any(|b| selects(b, s)) {
                let names: Vec<&str> = pool.iter().map(|b| b.name.as_str()).collect();
                let mut tags: Vec<&str> = pool.iter().flat_map(|b| b.tags.iter().map(String::as_str)).collect();
                tags.sort();
                tags.dedup();
                return Err(BuildersError::NoMatch {
                    flag,
                    selector: s.clone(),
                    builders: names.join(", "),
                    tags: tags.join(", "),
                }
                .into());
            }
        }
    }
    Ok(pool
        .into_iter()
        .filter(|b| only.is_empty() || only.iter().any(|s| selects(b, s)))
        .filter(|b| !exclude.iter().any(|s| selects(b, s)))
        .collect())
}

/// Splits `a,b , c` into selectors.
pub fn split_selectors(v: &[String]) -> Vec<String> {
    v.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
