//! The serve protocol's message bodies: path infos, build options, the BasicDerivation sent
//! with BuildDerivation and the BuildResult that comes back, per protocol version.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::nix::drv::BasicDerivation;
use crate::nix::error::BuildResultError;
use crate::nix::store_path::{NarHash, StorePath};
use crate::nix::wire::{self, MAX_PATH, MAX_STRING};

/// What a builder knows about a valid store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub path: StorePath,
    pub deriver: Option<StorePath>,
    pub references: BTreeSet<StorePath>,
    pub nar_size: u64,
    /// Absent only from servers below protocol 2.4.
    pub nar_hash: Option<NarHash>,
    /// Content address (`fixed:r:sha256:…`, `text:sha256:…`) or empty.
    pub ca: String,
    pub sigs: Vec<String>,
}

/// Limits for one build. 0 means "no limit" (Nix rejects larger-than-u32 values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub max_silent_time_secs: u32,
    pub build_timeout_secs: u32,
    pub max_log_size: u64,
    pub keep_failed: bool,
}

/// BuildResult status codes (table 6 of the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Built,
    Substituted,
    AlreadyValid,
    PermanentFailure,
    InputRejected,
    OutputRejected,
    TransientFailure,
    CachedFailure,
    TimedOut,
    MiscFailure,
    DependencyFailed,
    LogLimitExceeded,
    NotDeterministic,
    ResolvesToAlreadyValid,
    NoSubstituters,
    /// A code this client does not know; treated as a failure.
    Unknown(u64),
}

impl BuildStatus {
    pub fn from_code(code: u64) -> Self {
        use BuildStatus::*;
        match code {
            0 => Built,
            1 => Substituted,
            2 => AlreadyValid,
            3 => PermanentFailure,
            4 => InputRejected,
            5 => OutputRejected,
            6 => TransientFailure,
            7 => CachedFailure,
            8 => TimedOut,
            9 => MiscFailure,
            10 => DependencyFailed,
            11 => LogLimitExceeded,
            12 => NotDeterministic,
            13 => ResolvesToAlreadyValid,
            14 => NoSubstituters,
            n => Unknown(n),
        }
    }

    /// Whether the outputs are valid on the builder afterwards.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            BuildStatus::Built
                | BuildStatus::Substituted
                | BuildStatus::AlreadyValid
                | BuildStatus::ResolvesToAlreadyValid
        )
    }
}

/// The reply to BuildDerivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    pub status: BuildStatus,
    pub error_msg: String,
    pub times_built: u64,
    pub is_non_deterministic: bool,
    /// Unix seconds, 0 when the server does not send them.
    pub start_time: u64,
    pub stop_time: u64,
    /// Output name → path, from protocol 2.6 on (empty before). Newer Nix servers may send
    /// an empty map to 2.7 clients, so callers take output paths from the derivation.
    pub built_outputs: BTreeMap<String, StorePath>,
}

impl BuildResult {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

pub(super) async fn write_build_options<W: AsyncWrite + Unpin>(
    w: &mut W,
    opts: &BuildOptions,
    minor: u64,
) -> io::Result<()> {
    wire::write_u64(w, u64::from(opts.max_silent_time_secs)).await?;
    wire::write_u64(w, u64::from(opts.build_timeout_secs)).await?;
    if minor >= 2 {
        wire::write_u64(w, opts.max_log_size).await?;
    }
    if minor >= 3 {
        wire::write_u64(w, 0).await?; // nrRepeats: servers reject anything else
        wire::write_bool(w, false).await?; // enforceDeterminism
    }
    if minor >= 7 {
        wire::write_bool(w, opts.keep_failed).await?;
    }
    Ok(())
}

pub(super) async fn write_basic_derivation<W: AsyncWrite + Unpin>(w: &mut W, drv: &BasicDerivation) -> io::Result<()> {
    wire::write_u64(w, drv.outputs.len() as u64).await?;
    for (name, out) in &drv.outputs {
        wire::write_bytes(w, name.as_bytes()).await?;
        wire::write_bytes(w, out.path.as_bytes()).await?;
        wire::write_bytes(w, out.hash_algo.as_bytes()).await?;
        wire::write_bytes(w, out.hash.as_bytes()).await?;
    }
    wire::write_strings(w, drv.input_srcs.iter().map(StorePath::as_str)).await?;
    wire::write_bytes(w, drv.platform.as_bytes()).await?;
    wire::write_bytes(w, drv.builder.as_bytes()).await?;
    wire::write_strings(w, &drv.args).await?;
    wire::write_u64(w, drv.env.len() as u64).await?;
    for (k, v) in &drv.env {
        wire::write_bytes(w, k.as_bytes()).await?;
        wire::write_bytes(w, v.as_bytes()).await?;
    }
    Ok(())
}

/// Reads a BuildResult. The outer error is I/O; the inner one a semantic problem (bad path).
pub(super) async fn read_build_result<R: AsyncRead + Unpin>(
    r: &mut R,
    minor: u64,
) -> io::Result<std::result::Result<BuildResult, BuildResultError>> {
    let status = BuildStatus::from_code(wire::read_u64(r).await?);
    let error_msg = wire::read_string(r, MAX_STRING).await?;
    let mut res = BuildResult {
        status,
        error_msg,
        times_built: 0,
        is_non_deterministic: false,
        start_time: 0,
        stop_time: 0,
        built_outputs: BTreeMap::new(),
    };
    if minor >= 3 {
        res.times_built = wire::read_u64(r).await?;
        res.is_non_deterministic = wire::read_bool(r).await?;
        res.start_time = wire::read_u64(r).await?;
        res.stop_time = wire::read_u64(r).await?;
    }
    if minor >= 8 {
        // Output name → (full store path, signatures).
        let n = wire::read_u64(r).await?;
        if n > wire::MAX_LIST {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{n} built outputs")));
        }
        for _ in 0..n {
            let name = wire::read_string(r, MAX_PATH).await?;
            let path = wire::read_string(r, MAX_PATH).await?;
            let _sigs = wire::read_strings(r, MAX_PATH).await?;
            match StorePath::parse(&path) {
                Ok(p) => {
                    res.built_outputs.insert(name, p);
                }
                Err(source) => return Ok(Err(BuildResultError::OutputPath { name, source })),
            }
        }
    } else if minor >= 6 {
        let n = wire::read_u64(r).await?;
        if n > wire::MAX_LIST {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{n} built outputs")));
        }
        for _ in 0..n {
            let key = wire::read_string(r, MAX_PATH).await?;
            let json = wire::read_string(r, MAX_STRING).await?;
            match parse_realisation(&key, &json) {
                Ok((name, path)) => {
                    res.built_outputs.insert(name, path);
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }
    Ok(Ok(res))
}

/// Checks the outputs a builder reports against the derivation's: when it reports any, they
/// must be exactly the derivation's outputs, each at its path (servers that send none are
/// fine: the outputs fetched are always the derivation's).
pub(super) fn check_built_outputs(
    res: &BuildResult,
    drv: &BasicDerivation,
) -> std::result::Result<(), BuildResultError> {
    if res.built_outputs.is_empty() {
        return Ok(());
    }
    let same = res.built_outputs.len() == drv.outputs.len()
        && res.built_outputs.iter().all(|(name, path)| drv.outputs.get(name).is_some_and(|o| o.path == path.as_str()));
    if same {
        return Ok(());
    }
    let show = |it: &mut dyn Iterator<Item = (&String, &str)>| {
        let v: Vec<String> = it.map(|(n, p)| format!("{n}={p}")).collect();
        if v.is_empty() { "none".to_string() } else { v.join(", ") }
    };
    Err(BuildResultError::OutputsDiffer {
        got: show(&mut res.built_outputs.iter().map(|(n, p)| (n, p.as_str()))),
        want: show(&mut drv.outputs.iter().map(|(n, o)| (n, o.path.as_str()))),
    })
}

/// One 2.6/2.7 `builtOutputs` entry: key `sha256:<hash>!<output>`, value a JSON realisation
/// whose `outPath` is a base name.
fn parse_realisation(key: &str, json: &str) -> std::result::Result<(String, StorePath), BuildResultError> {
    let name = key
        .rsplit_once('!')
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| BuildResultError::OutputKey { key: key.to_string() })?;
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|source| BuildResultError::NotJson { name: name.to_string(), source })?;
    let out = v
        .get("outPath")
        .and_then(|p| p.as_str())
        .ok_or_else(|| BuildResultError::NoOutPath { name: name.to_string() })?;
    let path = if out.starts_with('/') { StorePath::parse(out) } else { StorePath::from_base_name(out) }
        .map_err(|source| BuildResultError::OutputPath { name: name.to_string(), source })?;
    Ok((name.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::wire;

    const OUT: &str = "/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a";

    async fn result_bytes(minor: u64, outputs: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::write_u64(&mut b, 0).await.expect("w");
        wire::write_bytes(&mut b, b"").await.expect("w");
        if minor >= 3 {
            for v in [1, 0, 100, 105] {
                wire::write_u64(&mut b, v).await.expect("w");
            }
        }
        if minor >= 6 {
            wire::write_u64(&mut b, outputs.len() as u64).await.expect("w");
            for (k, v) in outputs {
                wire::write_bytes(&mut b, k.as_bytes()).await.expect("w");
                if minor >= 8 {
                    wire::write_bytes(&mut b, v.as_bytes()).await.expect("w");
                    wire::write_strings(&mut b, ["sig:1"]).await.expect("w");
                } else {
                    wire::write_bytes(&mut b, v.as_bytes()).await.expect("w");
                }
            }
        }
        b
    }

    #[tokio::test]
    async fn build_result_encodings() {
        let json = r#"{"dependentRealisations":{},"id":"sha256:00!out","outPath":"7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a","signatures":[]}"#;
        for (minor, outputs) in
            [(2u64, vec![]), (5, vec![]), (7, vec![("sha256:abcd!out", json)]), (8, vec![("out", OUT)])]
        {
            let bytes = result_bytes(minor, &outputs).await;
            let mut r = bytes.as_slice();
            let res = read_build_result(&mut r, minor).await.expect("io").expect("valid");
            assert!(r.is_empty(), "2.{minor}: all bytes consumed");
            assert_eq!(res.status, BuildStatus::Built);
            assert_eq!(res.times_built, if minor >= 3 { 1 } else { 0 });
            assert_eq!(res.stop_time, if minor >= 3 { 105 } else { 0 });
            assert_eq!(res.built_outputs.get("out").map(StorePath::as_str), (minor >= 6).then_some(OUT));
        }
    }

    #[tokio::test]
    async fn bad_built_outputs_are_rejected() {
        for (k, v) in [
            ("no-bang", r#"{"outPath":"7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a"}"#),
            ("x!out", "not json"),
            ("x!out", r#"{"outPath":"../../etc/passwd"}"#),
            ("x!out", r#"{"id":"x"}"#),
        ] {
            let bytes = result_bytes(7, &[(k, v)]).await;
            let res = read_build_result(&mut bytes.as_slice(), 7).await.expect("io");
            assert!(res.is_err(), "{k} {v}");
        }
        let bytes = result_bytes(8, &[("out", "/tmp/evil")]).await;
        assert!(read_build_result(&mut bytes.as_slice(), 8).await.expect("io").is_err());
    }

    fn drv_with(outputs: &[(&str, &str)]) -> BasicDerivation {
        BasicDerivation {
            outputs: outputs
                .iter()
                .map(|(n, p)| {
                    let o = crate::nix::drv::DerivationOutput {
                        path: p.to_string(),
                        hash_algo: String::new(),
                        hash: String::new(),
                    };
                    (n.to_string(), o)
                })
                .collect(),
            input_srcs: BTreeSet::new(),
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    fn result_with(outputs: &[(&str, &str)]) -> BuildResult {
        BuildResult {
            status: BuildStatus::Built,
            error_msg: String::new(),
            times_built: 1,
            is_non_deterministic: false,
            start_time: 0,
            stop_time: 0,
            built_outputs: outputs.iter().map(|(n, p)| (n.to_string(), StorePath::parse(p).expect("path"))).collect(),
        }
    }

    #[test]
    fn built_outputs_must_be_exactly_the_derivations() {
        const DEV: &str = "/nix/store/00000000000000000000000000000000-a-dev";
        const EVIL: &str = "/nix/store/11111111111111111111111111111111-evil";
        let drv = drv_with(&[("out", OUT), ("dev", DEV)]);
        // None reported (older servers, 2.7 clients of newer ones): fine.
        assert!(check_built_outputs(&result_with(&[]), &drv).is_ok());
        assert!(check_built_outputs(&result_with(&[("out", OUT), ("dev", DEV)]), &drv).is_ok());
        for bad in [
            vec![("out", EVIL), ("dev", DEV)],
            vec![("out", OUT)],
            vec![("out", OUT), ("dev", DEV), ("bin", EVIL)],
            vec![("out", DEV), ("dev", OUT)],
            vec![("out", OUT), ("doc", DEV)],
        ] {
            let err = check_built_outputs(&result_with(&bad), &drv).expect_err("must be refused");
            assert!(err.to_string().contains(&format!("dev={DEV}")), "{err}");
        }
    }

    #[test]
    fn statuses() {
        assert!(BuildStatus::from_code(0).is_success());
        assert!(BuildStatus::from_code(13).is_success());
        assert_eq!(BuildStatus::from_code(8), BuildStatus::TimedOut);
        assert!(!BuildStatus::from_code(14).is_success());
        assert_eq!(BuildStatus::from_code(99), BuildStatus::Unknown(99));
        assert!(!BuildStatus::Unknown(99).is_success());
    }

    #[tokio::test]
    async fn build_options_at_2_7_are_six_words() {
        let opts = BuildOptions { max_silent_time_secs: 5, build_timeout_secs: 7, max_log_size: 9, keep_failed: true };
        let mut b = Vec::new();
        write_build_options(&mut b, &opts, 7).await.expect("w");
        let words: Vec<u64> = b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
        assert_eq!(words, [5, 7, 9, 0, 0, 1]);
        let mut old = Vec::new();
        write_build_options(&mut old, &opts, 1).await.expect("w");
        assert_eq!(old.len(), 16);
    }

    proptest::proptest! {
        #[test]
        fn build_result_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), minor in 0u64..10) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let _ = rt.block_on(read_build_result(&mut bytes.as_slice(), minor));
        }
    }
}
