//! The errors of the builders layer (nix.conf, ssh_config, machines syntax, the pool's
//! selectors, the build history, the probe cache, target-system userlands), as one typed enum
//! with a diagnostic code per variant. Each variant picks its [`ErrorKind`] in the conversion
//! into the crate-wide [`Error`].

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// Something went wrong reading or writing what is known of the builder pool.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum BuildersError {
    // ------------------------------------------------------------ nix.conf and ssh_config
    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::builders::read_nix_conf))]
    ReadNixConf { path: PathBuf, source: io::Error },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::builders::read_ssh_config))]
    ReadSshConfig { path: PathBuf, source: io::Error },

    #[error("{at}: ssh_config includes nested deeper than {limit}")]
    #[diagnostic(
        code(rvbuild::builders::ssh_config_include_depth),
        help("an Include probably includes itself; remove the loop")
    )]
    SshConfigIncludeDepth { at: String, limit: usize },

    #[error("{at}: `{value}` is not a valid {what} for host `{alias}`")]
    #[diagnostic(code(rvbuild::builders::ssh_config_value), help("fix the ssh_config entry"))]
    SshConfigValue { at: String, value: String, what: &'static str, alias: String },

    #[error("{at}: {source}")]
    #[diagnostic(code(rvbuild::builders::ssh_config_entry), help("fix the ssh_config entry for this host"))]
    SshConfigEntry { at: String, source: Box<Error> },

    // ------------------------------------------------------------ machines syntax
    #[error("{from}: machines include cycle: {}", chain.join(" -> "))]
    #[diagnostic(
        code(rvbuild::builders::machines_include_cycle),
        help("remove the `@FILE` line that includes a file already being read")
    )]
    MachinesIncludeCycle { from: String, chain: Vec<String> },

    #[error("{from}: machines includes nested deeper than {limit} at {}", path.display())]
    #[diagnostic(code(rvbuild::builders::machines_include_depth), help("flatten the `@FILE` includes"))]
    MachinesIncludeDepth { from: String, limit: usize, path: PathBuf },

    #[error("{from}: cannot read machines file {}: {source}", path.display())]
    #[diagnostic(
        code(rvbuild::builders::read_machines_file),
        help("fix the path of the `@FILE` entry or create the file")
    )]
    ReadMachinesFile { from: String, path: PathBuf, source: io::Error },

    #[error("{at}: `@` without a file")]
    #[diagnostic(code(rvbuild::builders::include_without_file), help("write `@/path/to/machines`"))]
    IncludeWithoutFile { at: String },

    #[error("{at}: column {column} ({name}): {problem}")]
    #[diagnostic(code(rvbuild::builders::machines_column))]
    MachinesColumn {
        at: String,
        /// 1-based.
        column: usize,
        name: &'static str,
        problem: String,
        /// What the column should hold.
        #[help]
        help: String,
    },

    // ------------------------------------------------------------ the pool
    #[error("{flag} {selector}: no builder in the pool matches")]
    #[diagnostic(code(rvbuild::builders::no_match), help("builders: {builders}; tags: {tags}"))]
    NoMatch { flag: &'static str, selector: String, builders: String, tags: String },

    // ------------------------------------------------------------ history and probe cache
    #[error("cannot {what} the build history {}: {source}", path.display())]
    #[diagnostic(
        code(rvbuild::builders::write_history),
        help("check that rvbuild's cache directory is writable (XDG_CACHE_HOME or ~/.cache/rvbuild)")
    )]
    WriteHistory { what: &'static str, path: PathBuf, source: io::Error },

    #[error("cannot encode the build history: {source}")]
    #[diagnostic(code(rvbuild::builders::encode_history))]
    EncodeHistory { source: serde_json::Error },

    #[error("cannot encode the probe cache: {source}")]
    #[diagnostic(code(rvbuild::builders::encode_probe_cache))]
    EncodeProbeCache { source: serde_json::Error },

    #[error("{}: {source}", path.display())]
    #[diagnostic(code(rvbuild::builders::write_probe_cache))]
    WriteProbeCache { path: PathBuf, source: io::Error },

    // ------------------------------------------------------------ userlands and emulation
    #[error("the {arch} userland for target-system builds is missing ({}: {source})", stamp.display())]
    #[diagnostic(code(rvbuild::builders::userland_missing), help("{}", USERLAND_HELP))]
    UserlandMissing { arch: &'static str, stamp: PathBuf, source: io::Error },

    #[error("the {arch} userland for target-system builds is incomplete ({} has no {tool})", dir.display())]
    #[diagnostic(code(rvbuild::builders::userland_incomplete), help("{}", USERLAND_HELP))]
    UserlandIncomplete { arch: &'static str, dir: PathBuf, tool: &'static str },

    #[error("nix show-config: {source}")]
    #[diagnostic(code(rvbuild::builders::nix_show_config))]
    NixShowConfig { source: io::Error },

    #[error("the local Nix does not build {system} derivations (not in extra-platforms)")]
    #[diagnostic(
        code(rvbuild::builders::not_in_extra_platforms),
        help("add `extra-platforms = {system}` to nix.conf (scripts/setup-host.sh does), or build cross")
    )]
    NotInExtraPlatforms { system: String },

    #[error("no enabled binfmt handler for {system} ({} is missing or disabled)", handler.display())]
    #[diagnostic(
        code(rvbuild::builders::no_binfmt),
        help("install qemu-user-static and binfmt-support and enable it (scripts/setup-host.sh does)")
    )]
    NoBinfmt { system: String, handler: PathBuf },
}

/// What to do when a target-system userland is missing or incomplete.
const USERLAND_HELP: &str = "run scripts/setup-host.sh (it creates it with mmdebstrap), or build the component cross (`--strategy userland=cross`)";

impl From<BuildersError> for Error {
    fn from(e: BuildersError) -> Error {
        use BuildersError::*;
        let kind = match &e {
            ReadNixConf { .. }
            | ReadSshConfig { .. }
            | SshConfigIncludeDepth { .. }
            | SshConfigValue { .. }
            | SshConfigEntry { .. }
            | MachinesIncludeCycle { .. }
            | MachinesIncludeDepth { .. }
            | ReadMachinesFile { .. }
            | IncludeWithoutFile { .. }
            | MachinesColumn { .. }
            | NoMatch { .. }
            | WriteProbeCache { .. } => ErrorKind::Config,
            WriteHistory { .. }
            | UserlandMissing { .. }
            | UserlandIncomplete { .. }
            | NixShowConfig { .. }
            | NotInExtraPlatforms { .. }
            | NoBinfmt { .. } => ErrorKind::Prerequisite,
            EncodeHistory { .. } | EncodeProbeCache { .. } => ErrorKind::Internal,
        };
        Error::new(kind, e)
    }
}

/// Why a store URI (column 1 of a machines line) is not a builder rvbuild can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum UriError {
    #[error("`{uri}`: store parameters after `?` are not supported")]
    #[diagnostic(code(rvbuild::builders::uri::local_parameters))]
    LocalParameters { uri: String },

    #[error("scheme `{scheme}://` is not a builder rvbuild can use (only ssh://, ssh-ng:// and local)")]
    #[diagnostic(code(rvbuild::builders::uri::scheme))]
    Scheme { scheme: String },

    #[error("`{uri}`: local stores at another path are not supported as builders")]
    #[diagnostic(code(rvbuild::builders::uri::local_path))]
    LocalPath { uri: String },

    #[error("`{uri}`: paths and `?` store parameters are not supported")]
    #[diagnostic(code(rvbuild::builders::uri::path_or_parameters))]
    PathOrParameters { uri: String },

    #[error("`{user}` is not a valid user name (letters, digits, `.`, `_`, `-`; not starting with `-`)")]
    #[diagnostic(code(rvbuild::builders::uri::user))]
    User { user: String },

    #[error(
        "`{host}` is not a valid host name (letters, digits, `.`, `-`, `_`, or an [IPv6] address; not starting with `-`)"
    )]
    #[diagnostic(code(rvbuild::builders::uri::host))]
    Host { host: String },

    #[error("`{hostport}`: `[` without `]`")]
    #[diagnostic(code(rvbuild::builders::uri::unclosed_bracket))]
    UnclosedBracket { hostport: String },

    #[error("`{hostport}`: expected `:PORT` after `]`")]
    #[diagnostic(code(rvbuild::builders::uri::after_bracket))]
    AfterBracket { hostport: String },

    #[error("`{port}` is not a port (1-65535)")]
    #[diagnostic(code(rvbuild::builders::uri::port))]
    Port { port: String },
}

/// Why the host key column (column 8 of a machines line) is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum HostKeyError {
    #[error("`{shortened}` is not valid base64")]
    #[diagnostic(code(rvbuild::builders::host_key::not_base64))]
    NotBase64 { shortened: String },

    #[error("the decoded host key is not text")]
    #[diagnostic(code(rvbuild::builders::host_key::not_text))]
    NotText,

    #[error("the decoded key line holds `{shortened}`, which is not valid base64")]
    #[diagnostic(code(rvbuild::builders::host_key::key_not_base64))]
    KeyNotBase64 { shortened: String },

    #[error("the decoded value is not a public key line (`ssh-ed25519 AAAA...`)")]
    #[diagnostic(code(rvbuild::builders::host_key::not_a_key_line))]
    NotAKeyLine,
}

/// Why a known_hosts line is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum KnownHostsLineError {
    #[error("unknown marker `{marker}`")]
    #[diagnostic(code(rvbuild::builders::known_hosts::unknown_marker))]
    UnknownMarker { marker: String },

    #[error("marker without host patterns")]
    #[diagnostic(code(rvbuild::builders::known_hosts::no_patterns))]
    NoPatterns,

    #[error("no key type")]
    #[diagnostic(code(rvbuild::builders::known_hosts::no_key_type))]
    NoKeyType,

    #[error("no key")]
    #[diagnostic(code(rvbuild::builders::known_hosts::no_key))]
    NoKey,

    #[error("the key is not valid base64")]
    #[diagnostic(code(rvbuild::builders::known_hosts::key_not_base64))]
    KeyNotBase64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_column_error_keeps_its_text_help_class_and_code() {
        let e = crate::builders::machines::parse_line("ftp://h", "m:3").expect_err("bad scheme");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            e.to_string(),
            "m:3: column 1 (store URI): scheme `ftp://` is not a builder rvbuild can use (only ssh://, ssh-ng:// and local)"
        );
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some("write `host`, `user@host`, `ssh://user@host:port`, `ssh-ng://host` or `local`")
        );
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("rvbuild::builders::machines_column"));
    }

    #[test]
    fn an_unmatched_selector_lists_the_pool_in_its_help() {
        let e: Error = BuildersError::NoMatch {
            flag: "--only",
            selector: "fast".into(),
            builders: "local, b1".into(),
            tags: "arm".into(),
        }
        .into();
        assert_eq!(e.to_string(), "--only fast: no builder in the pool matches");
        assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some("builders: local, b1; tags: arm"));
    }
}
