//! The private keys the proxy may offer upstream: key files and ssh-agent identities.
//! Loading follows OpenSSH's rules (permissions, passphrases) and says why a key was left out.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{EcdsaCurve, HashAlg, PrivateKey, PublicKey};

mod agent;
mod file;
#[cfg(test)]
mod tests;

use agent::agent_identities;
use file::{looks_like_private_key, read_key};

/// The label of agent-related entries in `skipped`, as users know the variable.
const AGENT_LABEL: &str = "$SSH_AUTH_SOCK";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Agent,
}

/// One key usable for upstream logins.
#[derive(Clone)]
pub struct KeyEntry {
    pub source: KeySource,
    pub public: PublicKey,
    /// Some for a usable unencrypted file key; None when signing goes through ssh-agent.
    pub private: Option<Arc<PrivateKey>>,
    pub comment: String,
}

impl KeyEntry {
    /// "SHA256:..." as printed by `ssh-keygen -l` and by sshd's auth log.
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The type name `ssh-keygen -l` prints: "ED25519", "RSA", "ECDSA", ...
    pub fn algorithm_name(&self) -> String {
        match self.public.key_data() {
            KeyData::Ed25519(_) => "ED25519".into(),
            KeyData::Rsa(_) => "RSA".into(),
            KeyData::Ecdsa(_) => "ECDSA".into(),
            KeyData::Dsa(_) => "DSA".into(),
            KeyData::SkEd25519(_) => "ED25519-SK".into(),
            KeyData::SkEcdsaSha2NistP256(_) => "ECDSA-SK".into(),
            other => other.algorithm().as_str().to_uppercase(),
        }
    }

    /// Key size as `ssh-keygen -l` prints it; 0 when unknown.
    pub fn bits(&self) -> u32 {
        match self.public.key_data() {
            KeyData::Ed25519(_) | KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_) => 256,
            KeyData::Rsa(rsa) => rsa.key_size(),
            KeyData::Ecdsa(ec) => match ec.curve() {
                EcdsaCurve::NistP256 => 256,
                EcdsaCurve::NistP384 => 384,
                EcdsaCurve::NistP521 => 521,
            },
            _ => 0,
        }
    }

    /// The path as configured, or "agent".
    pub fn label(&self) -> String {
        match &self.source {
            KeySource::File(path) => path.display().to_string(),
            KeySource::Agent => "agent".into(),
        }
    }
}

/// By hand so that a stray `{:?}` in a log line can never print private key material.
impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint())
            .field("has_private", &self.private.is_some())
            .field("comment", &self.comment)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug)]
pub struct Keyring {
    /// In priority order: files in the order configured, then agent-only identities.
    pub keys: Vec<KeyEntry>,
    /// Keys that exist but cannot be used, with the fix, for `keyring list` and `diagnose`.
    pub skipped: Vec<Skipped>,
}

/// What reading one key file produced, before the agent is consulted.
enum Found {
    Usable(KeyEntry),
    /// Passphrase-protected: usable only if the agent holds it; `public` None when unknown
    /// (an encrypted PEM file without a .pub beside it).
    Encrypted {
        path: PathBuf,
        public: Option<PublicKey>,
        comment: String,
    },
}

/// Key files read from disk, waiting for the agent's identities to be merged in.
struct Scan {
    found: Vec<Found>,
    skipped: Vec<Skipped>,
}

impl Keyring {
    /// Formats: OpenSSH, PEM PKCS#1 RSA (AWS .pem downloads), PEM SEC1 EC, and PKCS#8.
    /// `paths`: files or directories (a directory is scanned one level deep, sorted by name, for
    /// files that look like private keys; .pub, known_hosts, config, ... are ignored silently).
    /// `use_agent`: also take the identities of the agent at $SSH_AUTH_SOCK, if set.
    pub async fn load(paths: &[PathBuf], use_agent: bool) -> Keyring {
        let socket = use_agent
            .then(|| std::env::var_os("SSH_AUTH_SOCK"))
            .flatten()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        Keyring::load_with_agent(paths, socket.as_deref()).await
    }

    /// As `load`, with the agent socket given rather than read from the environment.
    pub async fn load_with_agent(paths: &[PathBuf], agent_socket: Option<&Path>) -> Keyring {
        // Plain blocking reads: a handful of small files, read at startup or per CLI command.
        let scan = Scan::read(paths);
        let agent = match agent_socket {
            None => Vec::new(),
            Some(socket) => match agent_identities(socket).await {
                Ok(ids) => ids,
                Err(e) => {
                    let mut ring = scan.assemble(Vec::new());
                    ring.skipped.push(Skipped {
                        path: PathBuf::from(AGENT_LABEL),
                        reason: format!("{e:#}"),
                    });
                    return ring;
                }
            },
        };
        scan.assemble(agent)
    }

    /// The table printed by `ec2-ssh-proxy keyring list`.
    pub fn render_list(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .keys
            .iter()
            .map(|k| {
                let via_agent = match (&k.source, &k.private) {
                    (KeySource::File(_), None) => " (signs via ssh-agent)",
                    _ => "",
                };
                [
                    k.label(),
                    format!("{} {}", k.algorithm_name(), k.bits()),
                    k.fingerprint(),
                    format!("{}{via_agent}", k.comment),
                ]
            })
            .collect();
        let width = |col: usize| rows.iter().map(|r| r[col].len()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        let mut out = String::new();
        if rows.is_empty() {
            out.push_str("no usable keys\n");
        }
        for [source, kind, fingerprint, comment] in &rows {
            let line = format!("{source:w0$}  {kind:w1$}  {fingerprint:w2$}  {comment}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if !self.skipped.is_empty() {
            out.push_str("skipped:\n");
            for s in &self.skipped {
                out.push_str(&format!("  {}: {}\n", s.path.display(), s.reason));
            }
        }
        out
    }
}

impl Scan {
    fn read(paths: &[PathBuf]) -> Scan {
        let mut scan = Scan {
            found: Vec::new(),
            skipped: Vec::new(),
        };
        for path in paths {
            if path.is_dir() {
                scan.read_dir(path);
            } else if path.exists() {
                scan.read_key_file(path);
            } else {
                scan.skip(path, "no such file or directory".into());
            }
        }
        scan
    }

    fn skip(&mut self, path: &Path, reason: String) {
        self.skipped.push(Skipped {
            path: path.to_path_buf(),
            reason,
        });
    }

    fn read_dir(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.skip(dir, format!("cannot list directory: {e}")),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            // A directory like ~/.ssh holds much besides keys; only files that open like a
            // private key are candidates, so known_hosts or config never show up as "skipped".
            if looks_like_private_key(&file) {
                self.read_key_file(&file);
            }
        }
    }

    fn read_key_file(&mut self, path: &Path) {
        match read_key(path) {
            Ok(found) => self.found.push(found),
            Err(e) => self.skip(path, format!("{e:#}")),
        }
    }

    /// Merge in the agent's identities: encrypted files the agent holds become usable (the
    /// agent signs), the rest are skipped; agent keys no file provided are appended.
    fn assemble(self, agent: Vec<(PublicKey, String)>) -> Keyring {
        let mut ring = Keyring {
            keys: Vec::new(),
            skipped: self.skipped,
        };
        // Where each key material was first seen, to name it in duplicate reasons.
        let mut first_seen: HashMap<KeyData, String> = HashMap::new();
        let agent_comment = |public: &PublicKey| {
            agent
                .iter()
                .find(|(k, _)| k.key_data() == public.key_data())
                .map(|(_, comment)| comment.clone())
        };
        for found in self.found {
            let entry = match found {
                Found::Usable(entry) => entry,
                Found::Encrypted {
                    path,
                    public: Some(public),
                    comment,
                } if agent_comment(&public).is_some() => KeyEntry {
                    source: KeySource::File(path),
                    comment: if comment.is_empty() {
                        agent_comment(&public).unwrap_or_default()
                    } else {
                        comment
                    },
                    public,
                    private: None,
                },
                Found::Encrypted { path, public, .. } => {
                    let reason = match public {
                        Some(_) => format!(
                            "encrypted with a passphrase and not loaded in ssh-agent (ssh-add {})",
                            path.display()
                        ),
                        None => format!(
                            "encrypted with a passphrase and its public key is unknown (no {}.pub beside it); load it with ssh-add {}",
                            path.display(),
                            path.display()
                        ),
                    };
                    ring.skipped.push(Skipped { path, reason });
                    continue;
                }
            };
            let label = entry.label();
            if let Some(first) = first_seen.get(entry.public.key_data()) {
                ring.skipped.push(Skipped {
                    path: PathBuf::from(&label),
                    reason: format!("same key as {first}"),
                });
                continue;
            }
            first_seen.insert(entry.public.key_data().clone(), label);
            ring.keys.push(entry);
        }
        for (public, comment) in agent {
            if first_seen.contains_key(public.key_data()) {
                continue;
            }
            first_seen.insert(public.key_data().clone(), "agent".into());
            ring.keys.push(KeyEntry {
                source: KeySource::Agent,
                public,
                private: None,
                comment,
            });
        }
        ring
    }
}
