//! Public-key authentication for the SSH transport, in OpenSSH's order: the builder's identity
//! files, then the keys of ssh-agent, then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`. Messages
//! name key files and fingerprints only, never key material. Encrypted key files are used only
//! through the agent (rvbuild never asks for passphrases).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::ssh_hostkey::fingerprint;
use super::{FailureClass, TransportFailure};

/// Where keys come from.
pub(crate) struct KeySources<'a> {
    pub identity_files: &'a [PathBuf],
    pub agent_socket: Option<&'a Path>,
    pub home: Option<&'a Path>,
}

enum Loaded {
    Key(Arc<PrivateKey>),
    /// Encrypted: its public half, when readable.
    Encrypted(Option<PublicKey>),
    Unusable(String),
}

fn load(path: &Path) -> Loaded {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Loaded::Unusable(e.kind().to_string()),
    };
    match russh::keys::decode_secret_key(&text, None) {
        Ok(k) => Loaded::Key(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let public = PrivateKey::from_openssh(&text)
                .map(|k| k.public_key().clone())
                .ok()
                .or_else(|| russh::keys::load_public_key(path.with_extension("pub")).ok());
            Loaded::Encrypted(public)
        }
        // The error may quote parts of the file: keep only its class.
        Err(_) => Loaded::Unusable("not a private key rvbuild can read".into()),
    }
}

fn same(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// Tries every key until one is accepted.
pub(crate) async fn authenticate<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    user: &str,
    sources: &KeySources<'_>,
    who: &str,
) -> Result<(), TransportFailure> {
    let mut tried: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut encrypted: Vec<PathBuf> = Vec::new();
    let mut done: Vec<PublicKey> = Vec::new();
    let lost = |e: russh::Error| {
        TransportFailure::new(
            FailureClass::Unreachable,
            format!("{who}: the connection failed during authentication: {e}"),
            None,
        )
    };

    let (mut agent, agent_keys) = agent_and_keys(sources.agent_socket, &mut notes).await;
    let rsa_hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();

    let mut files: Vec<(PathBuf, bool)> = sources.identity_files.iter().map(|p| (p.clone(), true)).collect();
    let defaults: Vec<PathBuf> = match sources.home {
        Some(h) => ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|n| h.join(".ssh").join(n)).collect(),
        None => Vec::new(),
    };

    // 1. identity files (an encrypted one through the agent, if the agent holds it).
    for (path, explicit) in files.drain(..) {
        match load(&path) {
            Loaded::Key(key) => {
                if offer_file_key(handle, user, key, &path, rsa_hash, &mut done, &mut tried).await.map_err(lost)? {
                    return Ok(());
                }
            }
            Loaded::Encrypted(public) => {
                let in_agent = public.as_ref().and_then(|p| agent_keys.iter().find(|k| same(k, p)).cloned());
                match (in_agent, agent.as_mut()) {
                    (Some(k), Some(a)) => {
                        tried.push(format!("{} via ssh-agent ({})", path.display(), fingerprint(&k)));
                        done.push(k.clone());
                        if try_agent(handle, user, k, rsa_hash, a).await.map_err(lost)? {
                            return Ok(());
                        }
                    }
                    _ => encrypted.push(path),
                }
            }
            Loaded::Unusable(why) if explicit => notes.push(format!("identity file {}: {why}", path.display())),
            Loaded::Unusable(_) => {}
        }
    }
    // 2. the agent's keys.
    if let Some(a) = agent.as_mut() {
        for k in &agent_keys {
            if done.iter().any(|d| same(d, k)) {
                continue;
            }
            tried.push(format!("ssh-agent key {}", fingerprint(k)));
            done.push(k.clone());
            if try_agent(handle, user, k.clone(), rsa_hash, a).await.map_err(lost)? {
                return Ok(());
            }
        }
    }
    // 3. the default files.
    for path in defaults {
        if !path.exists() {
            continue;
        }
        match load(&path) {
            Loaded::Key(key) => {
                if offer_file_key(handle, user, key, &path, rsa_hash, &mut done, &mut tried).await.map_err(lost)? {
                    return Ok(());
                }
            }
            Loaded::Encrypted(_) => encrypted.push(path),
            Loaded::Unusable(_) => {}
        }
    }

    Err(rejected(who, user, &tried, &notes, &encrypted))
}

/// The ssh-agent at `socket` and the public keys it holds; what went wrong goes to `notes`.
async fn agent_and_keys(
    socket: Option<&Path>,
    notes: &mut Vec<String>,
) -> (Option<AgentClient<tokio::net::UnixStream>>, Vec<PublicKey>) {
    let mut agent = match socket {
        Some(sock) => match AgentClient::connect_uds(sock).await {
            Ok(a) => Some(a),
            Err(_) => {
                notes.push(format!("ssh-agent at {} did not answer", sock.display()));
                None
            }
        },
        None => None,
    };
    let agent_keys: Vec<PublicKey> = match agent.as_mut() {
        Some(a) => match a.request_identities().await {
            Ok(ids) => ids
                .into_iter()
                .filter_map(|id| match id {
                    AgentIdentity::PublicKey { key, .. } => Some(key),
                    AgentIdentity::Certificate { .. } => None,
                })
                .collect(),
            Err(_) => {
                notes.push("ssh-agent refused to list its keys".into());
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    (agent, agent_keys)
}

/// The failure after every key was refused: what was tried, what could not be used, and how
/// to fix it (a passphrase-protected key goes through ssh-agent).
fn rejected(who: &str, user: &str, tried: &[String], notes: &[String], encrypted: &[PathBuf]) -> TransportFailure {
    let mut message = format!("{who}: authentication as `{user}` was rejected");
    if tried.is_empty() {
        message = format!("{who}: no usable SSH key to log in as `{user}`");
    } else {
        message.push_str(&format!("; tried: {}", tried.join(", ")));
    }
    if !notes.is_empty() {
        message.push_str(&format!(" ({})", notes.join("; ")));
    }
    let help = if !encrypted.is_empty() {
        let list: Vec<String> = encrypted.iter().map(|p| p.display().to_string()).collect();
        message.push_str(&format!("; encrypted key files not used: {}", list.join(", ")));
        format!(
            "rvbuild does not ask for passphrases: load the key into ssh-agent (`ssh-add {}`) and make sure SSH_AUTH_SOCK is set",
            list[0]
        )
    } else {
        format!(
            "add one of these public keys to ~{user}/.ssh/authorized_keys on the builder, or name the right private key \
             in the machines line (column 3) or as IdentityFile in ~/.ssh/config"
        )
    };
    TransportFailure::new(FailureClass::Setup, message, Some(help))
}

/// Offers a key read from `path`, unless the same key was offered already; true when the
/// server accepted it.
async fn offer_file_key<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    user: &str,
    key: Arc<PrivateKey>,
    path: &Path,
    rsa_hash: Option<russh::keys::HashAlg>,
    done: &mut Vec<PublicKey>,
    tried: &mut Vec<String>,
) -> Result<bool, russh::Error> {
    let public = key.public_key().clone();
    if done.iter().any(|k| same(k, &public)) {
        return Ok(false);
    }
    tried.push(format!("{} ({})", path.display(), fingerprint(&public)));
    done.push(public);
    let r = handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, rsa_hash)).await?;
    Ok(r.success())
}

async fn try_agent<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    user: &str,
    key: PublicKey,
    rsa_hash: Option<russh::keys::HashAlg>,
    agent: &mut AgentClient<tokio::net::UnixStream>,
) -> Result<bool, russh::Error> {
    let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
    match handle.authenticate_publickey_with(user, key, hash, agent).await {
        Ok(r) => Ok(r.success()),
        // The agent declined to sign (locked, confirmation refused): try the next key.
        Err(russh::AgentAuthError::Key(_)) => Ok(false),
        Err(russh::AgentAuthError::Send(_)) => Err(russh::Error::SendError),
    }
}
