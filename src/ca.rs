//! The local certificate authority: host certificates for the names the user typed, and
//! the one `@cert-authority` line that makes OpenSSH trust them.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey, PublicKey};

/// Certificates are issued per connection; a short validity keeps a leaked one useless.
/// The backdating tolerates clock skew between processes (PROTOCOL.certkeys).
const VALID_BEFORE_NOW_SECS: u64 = 300;
const VALID_FOR_SECS: u64 = 24 * 3600;

/// Issues a host certificate for `host_key` valid for `principals` (host names as the user
/// typed them; OpenSSH matches the name without the port).
pub fn host_certificate(
    ca: &PrivateKey,
    host_key: &PublicKey,
    principals: &[String],
) -> Result<Certificate> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut builder = Builder::new_with_random_nonce(
        &mut rand::rng(),
        host_key.key_data().clone(),
        now.saturating_sub(VALID_BEFORE_NOW_SECS),
        now + VALID_FOR_SECS,
    )
    .context("cannot start a host certificate")?;
    builder.cert_type(CertType::Host)?;
    builder.key_id(format!("ec2-ssh-proxy:{}", principals.join(",")))?;
    for principal in principals {
        builder.valid_principal(principal.clone())?;
    }
    builder.sign(ca).context("cannot sign the host certificate")
}

/// The known_hosts line: `@cert-authority PATTERNS KEYTYPE BASE64 ec2-ssh-proxy`.
pub fn authority_line(patterns: &str, ca: &PublicKey) -> String {
    let key = PublicKey::new(ca.key_data().clone(), "ec2-ssh-proxy-ca");
    let openssh = key.to_openssh().unwrap_or_default();
    format!("@cert-authority {patterns} {openssh}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::Algorithm;

    fn key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn certificate_names_the_host_and_verifies_against_the_ca() {
        let (ca, host) = (key(), key());
        let cert = host_certificate(&ca, host.public_key(), &["web-1".into()]).unwrap();
        assert_eq!(cert.cert_type(), CertType::Host);
        assert_eq!(cert.valid_principals(), ["web-1".to_string()]);
        let fp = ca.public_key().fingerprint(Default::default());
        cert.validate(&[fp]).unwrap();
    }

    #[test]
    fn authority_line_has_marker_patterns_and_key() {
        let ca = key();
        let line = authority_line("*.internal,web-*", ca.public_key());
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            &parts[..3],
            ["@cert-authority", "*.internal,web-*", "ssh-ed25519"]
        );
        let parsed = PublicKey::from_openssh(&parts[2..].join(" ")).unwrap();
        assert_eq!(parsed.key_data(), ca.public_key().key_data());
    }
}
