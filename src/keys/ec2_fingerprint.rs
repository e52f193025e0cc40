//! The fingerprints EC2 shows for key pairs, computed for local keys so that a key file can be
//! matched to an AWS key pair whatever way the pair was made (created, imported, ed25519).

use std::fmt;
use std::path::Path;

use rsa::pkcs8::EncodePublicKey;
use russh::keys::ssh_key::private::KeypairData;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// Which EC2 rule produced a fingerprint; the explanation names it ("created by AWS", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ec2FingerprintKind {
    /// RSA pair made by `CreateKeyPair`: SHA-1 of the PKCS#8 DER private key. Only the holder of
    /// the private half can compute it, so a `.pub` alone never matches a created pair.
    CreatedRsa,
    /// RSA pair made by `ImportKeyPair`: MD5 of the DER SubjectPublicKeyInfo. This is not
    /// `ssh-keygen -E md5`, which hashes the SSH wire blob instead.
    ImportedRsa,
    /// Any ED25519 pair: SHA-256 of the OpenSSH public key blob, base64 (as `ssh-keygen -l`).
    Ed25519,
}

/// One fingerprint in the exact text form EC2 prints, so it can be shown next to the console's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Fingerprint {
    pub kind: Ec2FingerprintKind,
    pub value: String,
}

impl fmt::Display for Ec2Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            Ec2FingerprintKind::CreatedRsa => "if created by AWS",
            Ec2FingerprintKind::ImportedRsa => "if imported",
            Ec2FingerprintKind::Ed25519 => "ed25519",
        };
        write!(f, "{} ({how})", self.value)
    }
}

/// Every fingerprint EC2 could show for this key, per the "Verify your key pair's fingerprint"
/// page of the EC2 user guide. Key types EC2 does not accept (ECDSA, DSA, ...) yield none.
/// The private half, when known and RSA, adds the CreateKeyPair form.
pub fn ec2_fingerprints(private: Option<&PrivateKey>, public: &PublicKey) -> Vec<Ec2Fingerprint> {
    let mut out = Vec::new();
    match public.key_data() {
        KeyData::Rsa(rsa_public) => {
            if let Some(value) = private.and_then(created_rsa_fingerprint) {
                out.push(Ec2Fingerprint {
                    kind: Ec2FingerprintKind::CreatedRsa,
                    value,
                });
            }
            let spki = rsa::RsaPublicKey::try_from(rsa_public)
                .ok()
                .and_then(|k| k.to_public_key_der().ok());
            if let Some(der) = spki {
                out.push(Ec2Fingerprint {
                    kind: Ec2FingerprintKind::ImportedRsa,
                    value: colon_hex(&md5::compute(der.as_bytes()).0),
                });
            }
        }
        KeyData::Ed25519(_) => {
            let sha256 = public.fingerprint(HashAlg::Sha256).to_string();
            out.push(Ec2Fingerprint {
                kind: Ec2FingerprintKind::Ed25519,
                value: strip_sha256_prefix(&sha256).to_string(),
            });
        }
        _ => {}
    }
    out
}

/// SHA-1 over the PKCS#8 DER encoding, as `openssl pkcs8 -topk8 -nocrypt -outform DER | openssl
/// sha1 -c`. russh's encoder goes through the `rsa`/`pkcs8` crates, so no ASN.1 is written here.
fn created_rsa_fingerprint(private: &PrivateKey) -> Option<String> {
    if private.is_encrypted() || !matches!(private.key_data(), KeypairData::Rsa(_)) {
        return None;
    }
    let der = russh::keys::pkcs8::encode_pkcs8(private).ok()?;
    Some(colon_hex(&Sha1::digest(&der)))
}

/// True when the fingerprint AWS reports is one of ours. Hex forms compare without regard to
/// case; the ed25519 form compares without `=` padding (EC2 adds it, ssh-keygen does not) and
/// without a `SHA256:` prefix (in case the value was pasted from ssh-keygen).
pub fn matches(aws_fp: &str, ours: &[Ec2Fingerprint]) -> bool {
    let aws = aws_fp.trim();
    ours.iter().any(|fp| match fp.kind {
        Ec2FingerprintKind::CreatedRsa | Ec2FingerprintKind::ImportedRsa => {
            aws.eq_ignore_ascii_case(&fp.value)
        }
        Ec2FingerprintKind::Ed25519 => {
            let theirs = strip_sha256_prefix(aws).trim_end_matches('=');
            !theirs.is_empty() && theirs == fp.value.trim_end_matches('=')
        }
    })
}

/// The key pair name a downloaded key file stands for: AWS saves the private key of pair
/// `old-key` as `old-key.pem` (or `old-key.ppk` for PuTTY users).
pub fn link_by_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file
        .strip_suffix(".pem")
        .or_else(|| file.strip_suffix(".ppk"))?;
    (!name.is_empty()).then(|| name.to_string())
}

fn strip_sha256_prefix(fp: &str) -> &str {
    fp.strip_prefix("SHA256:").unwrap_or(fp)
}

/// `1f:51:ae:...`, the form `openssl sha1 -c` prints and EC2 shows for RSA pairs.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    /// A fresh key from ssh-keygen: RSA in the PEM (PKCS#1) form AWS hands out for downloads.
    fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
        let path = dir.join(name);
        let mut args = vec!["-q", "-N", "", "-C", name, "-t", kind];
        if kind == "rsa" {
            args.extend(["-b", "2048", "-m", "PEM"]);
        }
        let status = Command::new("ssh-keygen")
            .args(&args)
            .arg("-f")
            .arg(&path)
            .status()
            .expect("run ssh-keygen");
        assert!(status.success());
        path
    }

    /// Runs `sh -c script` and returns its stdout, as the AWS docs' openssl pipelines print it.
    fn shell(script: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{script}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `openssl sha1 -c` prints `SHA1(stdin)= 1f:51:...` (or `(stdin)= ...`): keep the digest.
    fn openssl_digest(line: &str) -> String {
        line.rsplit("= ").next().unwrap_or("").trim().to_string()
    }

    fn load(path: &Path) -> (PrivateKey, PublicKey) {
        let text = std::fs::read_to_string(path).expect("read key");
        let private = russh::keys::decode_secret_key(&text, None).expect("decode key");
        let public = private.public_key().clone();
        (private, public)
    }

    fn of_kind(fps: &[Ec2Fingerprint], kind: Ec2FingerprintKind) -> String {
        fps.iter()
            .find(|fp| fp.kind == kind)
            .map(|fp| fp.value.clone())
            .unwrap_or_default()
    }

    #[test]
    fn rsa_fingerprints_match_the_openssl_commands_from_the_aws_docs() {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "old-key.pem", "rsa");
        let k = key.display();
        let created = openssl_digest(&shell(&format!(
            "openssl pkcs8 -in '{k}' -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c"
        )));
        let imported = openssl_digest(&shell(&format!(
            "openssl rsa -in '{k}' -pubout -outform DER 2>/dev/null | openssl md5 -c"
        )));
        assert_eq!(created.len(), 59, "{created}");

        let (private, public) = load(&key);
        let fps = ec2_fingerprints(Some(&private), &public);
        assert_eq!(of_kind(&fps, Ec2FingerprintKind::CreatedRsa), created);
        assert_eq!(of_kind(&fps, Ec2FingerprintKind::ImportedRsa), imported);
        assert!(matches(&created.to_uppercase(), &fps));
        assert!(matches(&imported, &fps));

        // From the public half alone only the import form can be known.
        let public_only = ec2_fingerprints(None, &public);
        assert_eq!(public_only.len(), 1);
        assert!(!matches(&created, &public_only));
        assert!(matches(&imported, &public_only));
    }

    #[test]
    fn import_form_is_not_ssh_keygens_md5() {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "k", "rsa");
        let ssh_md5 = shell(&format!("ssh-keygen -E md5 -lf '{}.pub'", key.display()));
        let ssh_md5 = ssh_md5.split_whitespace().nth(1).unwrap_or("");
        let ssh_md5 = ssh_md5.trim_start_matches("MD5:");
        let (_, public) = load(&key);
        let fps = ec2_fingerprints(None, &public);
        assert!(!ssh_md5.is_empty());
        assert!(!matches(ssh_md5, &fps));
    }

    #[test]
    fn ed25519_fingerprint_matches_ssh_keygen_with_or_without_padding() {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "new-key", "ed25519");
        let listed = shell(&format!("ssh-keygen -lf '{}.pub'", key.display()));
        let sha256 = listed.split_whitespace().nth(1).unwrap_or("");
        let expected = sha256.strip_prefix("SHA256:").expect("SHA256: prefix");

        let (private, public) = load(&key);
        let fps = ec2_fingerprints(Some(&private), &public);
        assert_eq!(fps.len(), 1);
        assert_eq!(of_kind(&fps, Ec2FingerprintKind::Ed25519), expected);
        assert!(matches(expected, &fps));
        assert!(matches(&format!("{expected}="), &fps));
        assert!(matches(sha256, &fps));
        assert!(!matches(&expected.to_lowercase(), &fps));
        assert!(!matches("", &fps));
    }

    #[test]
    fn ecdsa_keys_have_no_ec2_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "ec", "ecdsa");
        let (private, public) = load(&key);
        assert!(ec2_fingerprints(Some(&private), &public).is_empty());
    }

    #[test]
    fn download_names_link_to_key_pairs() {
        assert_eq!(
            link_by_name(Path::new("/home/u/Downloads/old-key.pem")),
            Some("old-key".to_string())
        );
        assert_eq!(
            link_by_name(Path::new("prod.eu.ppk")),
            Some("prod.eu".to_string())
        );
        assert_eq!(link_by_name(Path::new("id_ed25519")), None);
        assert_eq!(link_by_name(Path::new(".pem")), None);
    }
}
