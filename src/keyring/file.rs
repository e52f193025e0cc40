//! Reading one private key file as OpenSSH would: permissions first, then the contents.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use russh::keys::{decode_secret_key, PrivateKey, PublicKey};

use super::{Found, KeyEntry, KeySource};

/// True when the file's first line is a PEM/OpenSSH private key header. Reads only that much,
/// so a file that is not a key is never read in full.
pub(super) fn looks_like_private_key(path: &Path) -> bool {
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
pub(super) fn read_key(path: &Path) -> Result<Found> {
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
pub(super) fn sidecar_public_key(path: &Path) -> Option<PublicKey> {
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
