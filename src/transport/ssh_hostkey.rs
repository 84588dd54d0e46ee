//! Strict host-key checking for the SSH transport: the key a server presents is compared with
//! the builder's known key (machines-line column or known_hosts); unknown keys are refused
//! unless the user asked to accept new ones (then recorded in known_hosts), a changed key is
//! always refused, and revoked keys never connect.

use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey, PublicKeyBase64};

use super::{FailureClass, TransportFailure};
use crate::builders::known_hosts;
use crate::builders::{HostKey, HostKeyStatus};

/// Who is being checked, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// `builder NAME (USER@HOST:PORT)`
    pub who: String,
    pub host: String,
    pub port: u16,
    /// Where the builder was configured (`FILE:LINE`), for machines-line keys.
    pub source: String,
}

/// The outcome of a check.
#[derive(Debug)]
pub(crate) enum Verdict {
    Trusted,
    /// Unknown key accepted and recorded at `FILE:LINE`.
    Recorded {
        key: HostKey,
        at: String,
    },
    Refused(TransportFailure),
}

/// `SHA256:…` fingerprint of a public key.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn fingerprint_of(known: &HostKey) -> String {
    match russh::keys::parse_public_key_base64(&known.key) {
        Ok(k) => fingerprint(&k),
        Err(_) => "(unparsable key)".to_string(),
    }
}

/// The presented key as a [`HostKey`] (type and base64 blob).
pub(crate) fn host_key_of(key: &PublicKey) -> HostKey {
    HostKey { key_type: key.algorithm().as_str().to_string(), key: key.public_key_base64() }
}

fn same_key(known: &HostKey, presented: &PublicKey) -> bool {
    russh::keys::parse_public_key_base64(&known.key).map(|k| k.key_data() == presented.key_data()).unwrap_or(false)
}

/// Refusals that need no key from the server (checked before connecting).
pub(crate) fn refuse_early(status: &HostKeyStatus, peer: &Peer) -> Option<TransportFailure> {
    match status {
        HostKeyStatus::Revoked { at } => Some(TransportFailure::new(
            FailureClass::Setup,
            format!("{}: the host key is revoked ({at}); refusing to connect", peer.who),
            Some("the host was marked compromised with `@revoked`: give it a new host key and record that one".into()),
        )),
        HostKeyStatus::NotNeeded => Some(TransportFailure::new(
            FailureClass::Setup,
            format!("{}: the local machine is not reached over SSH", peer.who),
            None,
        )),
        _ => None,
    }
}

/// Judges the key `presented` by the server against what is known about the builder.
pub(crate) fn check(
    status: &HostKeyStatus,
    presented: &PublicKey,
    peer: &Peer,
    accept_new: bool,
    record_in: &std::path::Path,
) -> Verdict {
    let fp = fingerprint(presented);
    let ktype = presented.algorithm().as_str().to_string();
    let known: Vec<(HostKey, String)> = match status {
        HostKeyStatus::Machines { key } => {
            vec![(key.clone(), format!("the machines line ({}, host-key column)", peer.source))]
        }
        HostKeyStatus::KnownHosts { keys, at } => keys.iter().cloned().zip(at.iter().cloned()).collect(),
        HostKeyStatus::Revoked { .. } | HostKeyStatus::NotNeeded => {
            return Verdict::Refused(refuse_early(status, peer).unwrap_or_else(|| {
                TransportFailure::new(FailureClass::Setup, format!("{}: host key refused", peer.who), None)
            }));
        }
        HostKeyStatus::CertAuthority { at } => {
            return Verdict::Refused(TransportFailure::new(
                FailureClass::Setup,
                format!(
                    "{}: only a certificate authority is trusted for this host ({}), and rvbuild does not check host certificates; the host presented {ktype} {fp}",
                    peer.who,
                    at.join(", ")
                ),
                Some(format!(
                    "add the host's plain key to {}: `{} {ktype} {}`",
                    record_in.display(),
                    known_hosts::host_name(&peer.host, peer.port),
                    presented.public_key_base64()
                )),
            ));
        }
        HostKeyStatus::Unknown => Vec::new(),
    };
    if known.iter().any(|(k, _)| same_key(k, presented)) {
        return Verdict::Trusted;
    }
    if !known.is_empty() {
        let was: Vec<String> =
            known.iter().map(|(k, at)| format!("{} {} at {at}", k.key_type, fingerprint_of(k))).collect();
        return Verdict::Refused(TransportFailure::new(
            FailureClass::Setup,
            format!(
                "{}: HOST KEY MISMATCH: the host presented {ktype} {fp}, but the recorded key is {}. \
                 Someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled",
                peer.who,
                was.join("; ")
            ),
            Some(format!(
                "refused always (--accept-new-host-keys never replaces a known key). If the host key really changed, \
                 remove the old entry (`ssh-keygen -R '{}'` or edit the file at the line named) and connect again",
                known_hosts::host_name(&peer.host, peer.port)
            )),
        ));
    }
    let line = format!("{} {ktype} {}", known_hosts::host_name(&peer.host, peer.port), presented.public_key_base64());
    if accept_new {
        let key = host_key_of(presented);
        return match known_hosts::append(record_in, &peer.host, peer.port, &key) {
            Ok(at) => Verdict::Recorded { key, at },
            Err(e) => Verdict::Refused(TransportFailure::new(
                FailureClass::Setup,
                format!("{}: cannot record the new host key {ktype} {fp} in {}: {e}", peer.who, record_in.display()),
                Some(format!("add this line to a known_hosts file by hand: {line}")),
            )),
        };
    }
    Verdict::Refused(TransportFailure::new(
        FailureClass::Setup,
        format!("{}: unknown host key {ktype} {fp}; refusing to connect (strict host-key checking)", peer.who),
        Some(format!(
            "if that fingerprint is the host's (check with `ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub` there), \
             run again with --accept-new-host-keys to record it in {}, or add this line there yourself: {line}",
            short_type(&ktype),
            record_in.display()
        )),
    ))
}

fn short_type(ktype: &str) -> &str {
    match ktype {
        "ssh-ed25519" => "ed25519",
        "ssh-rsa" => "rsa",
        t if t.starts_with("ecdsa-") => "ecdsa",
        t => t,
    }
}

/// The default file new keys are recorded in: `~/.ssh/known_hosts`.
pub(crate) fn default_record_file(home: Option<&std::path::Path>) -> PathBuf {
    match home {
        Some(h) => h.join(".ssh/known_hosts"),
        None => PathBuf::from(".ssh/known_hosts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDnCQXlllHoLX5EvU+t6yP/npsmuxKt0skHVeJashizE";
    const B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn peer() -> Peer {
        Peer { who: "builder b (root@h:2222)".into(), host: "h".into(), port: 2222, source: "m:1".into() }
    }

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("key")
    }

    fn hk(b64: &str) -> HostKey {
        HostKey { key_type: "ssh-ed25519".into(), key: b64.into() }
    }

    #[test]
    fn known_matching_key_is_trusted_other_key_is_a_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = dir.path().join("kh");
        let st = HostKeyStatus::KnownHosts { keys: vec![hk(A)], at: vec!["kh:3".into()] };
        assert!(matches!(check(&st, &key(A), &peer(), false, &rec), Verdict::Trusted));
        let Verdict::Refused(f) = check(&st, &key(B), &peer(), true, &rec) else { panic!("B must be refused") };
        assert!(f.message.contains("MISMATCH") && f.message.contains("kh:3"), "{}", f.message);
        assert!(f.message.contains(&fingerprint(&key(A))) && f.message.contains(&fingerprint(&key(B))));
        assert!(!rec.exists(), "a changed key is never recorded");
    }

    #[test]
    fn unknown_key_refused_with_fingerprint_or_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = dir.path().join("kh");
        let Verdict::Refused(f) = check(&HostKeyStatus::Unknown, &key(A), &peer(), false, &rec) else {
            panic!("must be refused")
        };
        assert!(f.message.contains(&fingerprint(&key(A))) && f.message.contains("h:2222"), "{}", f.message);
        let help = f.help.unwrap_or_default();
        assert!(help.contains("--accept-new-host-keys") && help.contains(&format!("[h]:2222 ssh-ed25519 {A}")));
        let Verdict::Recorded { at, .. } = check(&HostKeyStatus::Unknown, &key(A), &peer(), true, &rec) else {
            panic!("must be recorded")
        };
        assert_eq!(at, format!("{}:1", rec.display()));
        assert_eq!(std::fs::read_to_string(&rec).expect("kh"), format!("[h]:2222 ssh-ed25519 {A}\n"));
    }

    #[test]
    fn revoked_is_refused_early() {
        let st = HostKeyStatus::Revoked { at: "kh:9".into() };
        assert!(refuse_early(&st, &peer()).is_some_and(|f| f.message.contains("revoked (kh:9)")));
    }
}
