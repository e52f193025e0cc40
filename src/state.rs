//! The state directory: the proxy's own host key and local CA key (created on first use,
//! mode 0600) and the file of pinned upstream host keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating, mode 0700) the state directory.
    pub fn open(root: &Path) -> Result<StateDir> {
        fs::create_dir_all(root)
            .with_context(|| format!("cannot create the state directory {}", root.display()))?;
        // Private keys live here: keep the directory to its owner, as ~/.ssh is.
        let mode = fs::metadata(root)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(root, fs::Permissions::from_mode(0o700)).with_context(|| {
                format!(
                    "cannot restrict {} to its owner (chmod 700)",
                    root.display()
                )
            })?;
        }
        // Absolute, so messages that name files here can be acted on from anywhere.
        let root = std::path::absolute(root)
            .with_context(|| format!("cannot resolve the state directory {}", root.display()))?;
        Ok(StateDir { root })
    }

    /// The key the proxy proves itself with: the jump server's host key, and the key the
    /// per-host certificates are issued for.
    pub fn host_key(&self) -> Result<PrivateKey> {
        load_or_create(&self.root.join("host_ed25519"))
    }

    /// The local certificate authority that signs host certificates.
    pub fn ca_key(&self) -> Result<PrivateKey> {
        load_or_create(&self.root.join("ca_ed25519"))
    }

    /// The key that last worked per (host, user) (see winners.rs).
    pub fn winners_path(&self) -> PathBuf {
        self.root.join("last_working_keys.json")
    }

    /// Recent host lookups, for `connect` processes (see inventory/cache.rs).
    pub fn lookup_cache_path(&self) -> PathBuf {
        self.root.join("lookup_cache.json")
    }

    /// Upstream host keys seen on first contact, one `ID KEYTYPE BASE64` line each.
    pub fn pins_path(&self) -> PathBuf {
        self.root.join("pinned_host_keys")
    }
}

/// Loads an ed25519 key, generating it on first use. Creation goes through a temporary
/// file and a hard link so that concurrent `connect` processes never see a half-written
/// key and agree on one winner.
fn load_or_create(path: &Path) -> Result<PrivateKey> {
    if !path.exists() {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .context("cannot generate an ed25519 key")?;
        let text = key
            .to_openssh(LineEnding::LF)
            .context("cannot encode the new key")?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => tracing::info!(path = %path.display(), "generated a new key"),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{}: permissions {:04o} are too open; the proxy's private key must be readable by its owner only (chmod 600 {})",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    PrivateKey::read_openssh_file(path)
        .with_context(|| format!("{}: not a valid OpenSSH private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let first = state.host_key().unwrap();
        let again = state.host_key().unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert_ne!(state.ca_key().unwrap().public_key(), first.public_key());
        let mode = fs::metadata(dir.path().join("state/host_ed25519"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_key_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.ca_key().unwrap();
        let path = dir.path().join("ca_ed25519");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", state.ca_key().unwrap_err());
        assert!(
            err.contains("too open") && err.contains("chmod 600"),
            "{err}"
        );
    }
}
