//! The private keys the proxy may offer upstream: key files and ssh-agent identities.
//! Loading follows OpenSSH's rules (permissions, passphrases) and says why a key was left out.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{decode_secret_key, EcdsaCurve, HashAlg, PrivateKey, PublicKey};

/// The label of agent-related entries in `skipped`, as users know the variable.
const AGENT_LABEL: &str = "$SSH_AUTH_SOCK";

/// A hung agent must not stall startup or a login.
const AGENT_TIMEOUT: Duration = Duration::from_secs(3);

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

/// True when the file's first line is a PEM/OpenSSH private key header. Reads only that much,
/// so a file that is not a key is never read in full.
fn looks_like_private_key(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let n = file.read(&mut head).unwrap_or(0);
    let first_line = head[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
    first_line.starts_with(b"-----BEGIN")
        && first_line.trim_ascii_end().ends_with(b"PRIVATE KEY-----")
}

/// Read one key file, applying OpenSSH's checks in its order: permissions, then contents.
fn read_key(path: &Path) -> Result<Found> {
    check_permissions(path)?;
    let text = std::fs::read_to_string(path).context("cannot read")?;
    let first_line = text.lines().next().unwrap_or("").trim_end();
    if !first_line.starts_with("-----BEGIN") || !first_line.ends_with("PRIVATE KEY-----") {
        anyhow::bail!(
            "not a private key (expected an OpenSSH, PEM RSA, or PKCS#8 private key file)"
        );
    }
    if first_line == "-----BEGIN OPENSSH PRIVATE KEY-----" {
        // ssh-key parses the OpenSSH container without the passphrase; the public half is
        // stored unencrypted, which is what lets us match an encrypted file to the agent.
        let key = PrivateKey::from_openssh(&text).context("malformed OpenSSH private key")?;
        if key.is_encrypted() {
            // The comment is inside the encrypted part; the .pub usually has it.
            let public = key.public_key().clone();
            return Ok(Found::Encrypted {
                path: path.to_path_buf(),
                comment: sidecar_comment(path, &public),
                public: Some(public),
            });
        }
        let comment = key.comment().to_string();
        return Ok(usable(path, key, comment));
    }
    // PEM encryption: PKCS#1 marks it with a Proc-Type header (RFC 1421), PKCS#8 with its own label.
    if text.contains("Proc-Type: 4,ENCRYPTED") || first_line.contains("ENCRYPTED PRIVATE KEY") {
        let public = sidecar_public_key(path);
        let comment = public
            .as_ref()
            .map(|p| p.comment().to_string())
            .unwrap_or_default();
        return Ok(Found::Encrypted {
            path: path.to_path_buf(),
            public,
            comment,
        });
    }
    let key = decode_secret_key(&text, None).map_err(|e| {
        anyhow::anyhow!(
            "unsupported or malformed private key ({}): {e}",
            first_line.trim_matches('-')
        )
    })?;
    // PEM files carry no comment; ssh-keygen -l shows the one from the .pub beside them.
    let comment = sidecar_comment(path, key.public_key());
    Ok(usable(path, key, comment))
}

/// The comment of FILE.pub when it holds the same key, else "".
fn sidecar_comment(path: &Path, public: &PublicKey) -> String {
    sidecar_public_key(path)
        .filter(|p| p.key_data() == public.key_data())
        .map(|p| p.comment().to_string())
        .unwrap_or_default()
}

fn usable(path: &Path, key: PrivateKey, comment: String) -> Found {
    Found::Usable(KeyEntry {
        source: KeySource::File(path.to_path_buf()),
        public: key.public_key().clone(),
        private: Some(Arc::new(key)),
        comment,
    })
}

/// FILE.pub, as ssh-keygen writes it next to FILE.
fn sidecar_public_key(path: &Path) -> Option<PublicKey> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    PublicKey::read_openssh_file(Path::new(&pub_path)).ok()
}

/// OpenSSH refuses private keys that group or others can access (sshkey_perm_ok in authfile.c);
/// doing the same means a key that works here also works with plain `ssh -i`.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .context("cannot read")?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "permissions {mode:04o} are too open; private keys must not be readable by others (chmod 600 {}), as OpenSSH requires",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

/// The agent's plain-key identities with their comments. Certificates are left out: EC2
/// instances authorize keys through authorized_keys, and the plain key is listed separately.
async fn agent_identities(socket: &Path) -> Result<Vec<(PublicKey, String)>> {
    let query = async {
        let mut agent = AgentClient::connect_uds(socket).await?;
        agent.request_identities().await
    };
    let ids = tokio::time::timeout(AGENT_TIMEOUT, query)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "ssh-agent at {} did not answer within {}s",
                socket.display(),
                AGENT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("ssh-agent at {} is unreachable", socket.display()))?;
    Ok(ids
        .into_iter()
        .filter_map(|id| match id {
            AgentIdentity::PublicKey { key, comment } => Some((key, comment)),
            AgentIdentity::Certificate { .. } => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Child, Command, Stdio};

    /// Generate `dir/name` with ssh-keygen; `args` pick type, format and passphrase.
    fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
        let path = dir.join(name);
        let output = Command::new("ssh-keygen")
            .args(["-q", "-C", name])
            .args(args)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        path
    }

    fn pub_of(path: &Path) -> PublicKey {
        sidecar_public_key(path).unwrap()
    }

    async fn load(paths: &[PathBuf]) -> Keyring {
        Keyring::load_with_agent(paths, None).await
    }

    #[tokio::test]
    async fn every_supported_format_loads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let files = [
            keygen(d, "ed25519", &["-t", "ed25519", "-N", ""]),
            keygen(d, "rsa_openssh", &["-t", "rsa", "-b", "2048", "-N", ""]),
            keygen(
                d,
                "rsa_pem.pem",
                &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            ),
            keygen(
                d,
                "rsa_pkcs8",
                &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""],
            ),
            keygen(d, "ecdsa_pkcs8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
            keygen(d, "ecdsa384", &["-t", "ecdsa", "-b", "384", "-N", ""]),
            keygen(d, "ecdsa_sec1", &["-t", "ecdsa", "-m", "PEM", "-N", ""]),
            keygen(
                d,
                "ecdsa384_pkcs8",
                &["-t", "ecdsa", "-b", "384", "-m", "PKCS8", "-N", ""],
            ),
        ];
        let ring = load(&files).await;
        assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
        assert_eq!(ring.keys.len(), files.len());
        for (key, file) in ring.keys.iter().zip(&files) {
            assert_eq!(key.source, KeySource::File(file.clone()));
            assert_eq!(key.public.key_data(), pub_of(file).key_data(), "{file:?}");
            assert!(key.private.is_some());
            // PEM files have no comment of their own; it comes from the .pub beside them.
            assert_eq!(key.comment, file.file_name().unwrap().to_str().unwrap());
        }
        let kinds: Vec<String> = ring
            .keys
            .iter()
            .map(|k| format!("{} {}", k.algorithm_name(), k.bits()))
            .collect();
        assert_eq!(
            kinds,
            [
                "ED25519 256",
                "RSA 2048",
                "RSA 2048",
                "RSA 2048",
                "ECDSA 256",
                "ECDSA 384",
                "ECDSA 256",
                "ECDSA 384"
            ]
        );
    }

    #[tokio::test]
    async fn fingerprint_matches_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let file = keygen(dir.path(), "k", &["-t", "ed25519", "-N", ""]);
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&file)
            .output()
            .unwrap();
        let listed = String::from_utf8(out.stdout).unwrap();
        let ring = load(&[file]).await;
        // "256 SHA256:... k (ED25519)"
        assert_eq!(
            listed.trim(),
            format!(
                "{} {} {} ({})",
                ring.keys[0].bits(),
                ring.keys[0].fingerprint(),
                ring.keys[0].comment,
                ring.keys[0].algorithm_name()
            )
        );
    }

    #[tokio::test]
    async fn too_open_permissions_are_refused_like_openssh() {
        let dir = tempfile::tempdir().unwrap();
        let file = keygen(dir.path(), "open", &["-t", "ed25519", "-N", ""]);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ring = load(std::slice::from_ref(&file)).await;
        assert!(ring.keys.is_empty());
        assert_eq!(ring.skipped.len(), 1);
        assert_eq!(ring.skipped[0].path, file);
        assert_eq!(
            ring.skipped[0].reason,
            format!(
                "permissions 0644 are too open; private keys must not be readable by others (chmod 600 {}), as OpenSSH requires",
                file.display()
            )
        );
    }

    #[tokio::test]
    async fn encrypted_keys_without_agent_are_skipped_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssh = keygen(d, "enc", &["-t", "ed25519", "-N", "secret"]);
        let pem = keygen(
            d,
            "enc.pem",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "secret"],
        );
        std::fs::remove_file(d.join("enc.pem.pub")).unwrap();
        let ring = load(&[openssh.clone(), pem.clone()]).await;
        assert!(ring.keys.is_empty());
        let reasons: Vec<&str> = ring.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                format!(
                    "encrypted with a passphrase and not loaded in ssh-agent (ssh-add {})",
                    openssh.display()
                ),
                format!(
                    "encrypted with a passphrase and its public key is unknown (no {}.pub beside it); load it with ssh-add {}",
                    pem.display(),
                    pem.display()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn directory_scan_takes_only_private_keys_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(d, "id_rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
        keygen(d, "id_ed25519", &["-t", "ed25519", "-N", ""]);
        std::fs::write(d.join("known_hosts"), "host ssh-ed25519 AAAA\n").unwrap();
        std::fs::write(d.join("config"), "Host *\n").unwrap();
        std::fs::write(d.join("authorized_keys"), "").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        keygen(&d.join("sub"), "nested", &["-t", "ed25519", "-N", ""]);
        // Not readable as a key, but also not a key: must not be reported.
        std::fs::write(d.join("notes"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::set_permissions(d.join("notes"), std::fs::Permissions::from_mode(0o644)).unwrap();

        let ring = load(&[d.to_path_buf()]).await;
        assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
        let labels: Vec<String> = ring.keys.iter().map(KeyEntry::label).collect();
        assert_eq!(
            labels,
            [
                d.join("id_ed25519").display().to_string(),
                d.join("id_rsa").display().to_string()
            ]
        );
    }

    #[tokio::test]
    async fn duplicates_keep_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = keygen(dir.path(), "first", &["-t", "ed25519", "-N", ""]);
        let copy = dir.path().join("copy");
        std::fs::copy(&first, &copy).unwrap();
        let ring = load(&[first.clone(), copy.clone()]).await;
        assert_eq!(ring.keys.len(), 1);
        assert_eq!(ring.keys[0].source, KeySource::File(first.clone()));
        assert_eq!(ring.skipped[0].path, copy);
        assert_eq!(
            ring.skipped[0].reason,
            format!("same key as {}", first.display())
        );
    }

    #[tokio::test]
    async fn explicit_non_key_and_missing_paths_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("readme");
        std::fs::write(&text, "hello").unwrap();
        std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o600)).unwrap();
        let missing = dir.path().join("missing.pem");
        let ring = load(&[text, missing]).await;
        let reasons: Vec<&str> = ring.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "not a private key (expected an OpenSSH, PEM RSA, or PKCS#8 private key file)",
                "no such file or directory"
            ]
        );
    }

    #[tokio::test]
    async fn render_list_shows_keys_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = keygen(dir.path(), "good", &["-t", "ed25519", "-N", ""]);
        let open = keygen(dir.path(), "open", &["-t", "ed25519", "-N", ""]);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o640)).unwrap();
        let ring = load(&[good.clone(), open.clone()]).await;
        let text = ring.render_list();
        let fingerprint = ring.keys[0].fingerprint();
        assert_eq!(
            text,
            format!(
                "{}  ED25519 256  {fingerprint}  good\nskipped:\n  {}: permissions 0640 are too open; private keys must not be readable by others (chmod 600 {}), as OpenSSH requires\n",
                good.display(),
                open.display(),
                open.display()
            )
        );
        assert_eq!(load(&[]).await.render_list(), "no usable keys\n");
    }

    #[tokio::test]
    async fn debug_never_shows_private_material() {
        let dir = tempfile::tempdir().unwrap();
        let file = keygen(dir.path(), "k", &["-t", "ed25519", "-N", ""]);
        let ring = load(&[file]).await;
        let shown = format!("{:?}", ring);
        assert!(shown.contains(&ring.keys[0].fingerprint()));
        let private = ring.keys[0].private.as_ref().unwrap();
        let secret = private.key_data().ed25519().unwrap().private.as_ref();
        let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let secret_dec = format!("{secret:?}");
        assert!(!shown.contains(&secret_hex) && !shown.contains(&secret_dec[1..20]));
    }

    /// An ssh-agent of our own on a socket in `dir`, killed on drop.
    struct Agent {
        child: Child,
        socket: PathBuf,
    }

    impl Agent {
        fn start(dir: &Path) -> Agent {
            let socket = dir.join("agent.sock");
            let child = Command::new("ssh-agent")
                .arg("-D")
                .arg("-a")
                .arg(&socket)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            for _ in 0..100 {
                if socket.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Agent { child, socket }
        }

        fn add(&self, key: &Path) {
            let status = Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", &self.socket)
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    impl Drop for Agent {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn agent_signs_for_encrypted_files_and_adds_its_own_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let agent = Agent::start(d);
        // The agent gets the unencrypted original; the keyring sees a passphrase-protected copy.
        let plain = keygen(d, "plain", &["-t", "ed25519", "-N", ""]);
        agent.add(&plain);
        let keys = d.join("keys");
        std::fs::create_dir(&keys).unwrap();
        let encrypted = keys.join("encrypted");
        std::fs::copy(&plain, &encrypted).unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "secret", "-f"])
            .arg(&encrypted)
            .status()
            .unwrap();
        assert!(status.success());
        let agent_only = keygen(d, "agent_only", &["-t", "ed25519", "-N", ""]);
        agent.add(&agent_only);
        let usable = keygen(&keys, "usable", &["-t", "ed25519", "-N", ""]);
        agent.add(&usable);

        let ring = Keyring::load_with_agent(std::slice::from_ref(&keys), Some(&agent.socket)).await;
        assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
        let summary: Vec<(KeySource, bool, String)> = ring
            .keys
            .iter()
            .map(|k| (k.source.clone(), k.private.is_some(), k.comment.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (KeySource::File(encrypted), false, "plain".to_string()),
                (KeySource::File(usable), true, "usable".to_string()),
                (KeySource::Agent, false, "agent_only".to_string()),
            ]
        );
        assert_eq!(
            ring.keys[2].public.key_data(),
            pub_of(&agent_only).key_data()
        );
        assert!(ring.render_list().contains("plain (signs via ssh-agent)"));
    }

    #[tokio::test]
    async fn unreachable_agent_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("no-agent.sock");
        let ring = Keyring::load_with_agent(&[], Some(&socket)).await;
        assert_eq!(ring.skipped.len(), 1);
        assert_eq!(ring.skipped[0].path, PathBuf::from("$SSH_AUTH_SOCK"));
        assert!(
            ring.skipped[0].reason.starts_with(&format!(
                "ssh-agent at {} is unreachable: ",
                socket.display()
            )),
            "{}",
            ring.skipped[0].reason
        );
    }
}
