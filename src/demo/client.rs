//! The user's side of the demo: an SSH client that trusts only the proxy's CA (as the
//! `@cert-authority` line from `ec2-ssh-proxy ca` makes OpenSSH do), logs in with the key
//! AWS says the instance was launched with, and runs one command.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use russh::client::{self, AuthResult};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Algorithm, Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Preferred};
use tokio::io::{AsyncRead, AsyncWrite};

/// What the command did on the far side.
#[derive(Debug, Default)]
pub struct Outcome {
    /// None when the channel closed without an exit status.
    pub exit_status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Whether `cert` is a host certificate the proxy's CA issued for `host`: the check
/// OpenSSH makes against an `@cert-authority` line. Returns why not, for the demo output.
pub fn check_host_certificate(
    cert: &Certificate,
    ca: &PublicKey,
    host: &str,
) -> Result<(), String> {
    if cert.cert_type() != CertType::Host {
        return Err("the certificate is not a host certificate".into());
    }
    if cert.signature_key() != ca.key_data() {
        return Err("the certificate was not signed by the proxy's CA".into());
    }
    // Signature and validity period, against the CA's fingerprint.
    let ca_fingerprint = ca.fingerprint(HashAlg::Sha256);
    cert.validate(&[ca_fingerprint])
        .map_err(|e| format!("the certificate does not verify: {e}"))?;
    if !cert.valid_principals().iter().any(|p| p == host) {
        return Err(format!(
            "the certificate is for {:?}, not {host}",
            cert.valid_principals()
        ));
    }
    Ok(())
}

struct UserHandler {
    ca: PublicKey,
    host: String,
    /// Why the host key was refused; russh itself only reports "unknown key".
    problem: Arc<Mutex<Option<String>>>,
}

impl client::Handler for UserHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                check_host_certificate(cert, &self.ca, &self.host)
            }
            // A bare key is what an unproxied (or impostor) host shows: not trusted.
            russh::keys::PublicKeyOrCertificate::PublicKey { .. } => Err(
                "the server showed a bare host key, not a certificate from the proxy's CA".into(),
            ),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => {
                if let Ok(mut slot) = self.problem.lock() {
                    *slot = Some(why);
                }
                Ok(false)
            }
        }
    }
}

/// Connects over `stream` (the proxy's client-facing side), checks the host certificate
/// for `host`, logs in as `user` with `key` and runs `command`.
pub async fn run_command<S>(
    stream: S,
    ca: PublicKey,
    host: &str,
    user: &str,
    key: PrivateKey,
    command: &str,
) -> Result<Outcome>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = Arc::new(client::Config {
        // Ask for the certificate variant first, as OpenSSH does when known_hosts has an
        // @cert-authority line; otherwise the proxy would show its bare host key.
        preferred: Preferred {
            host_key_certificates: Cow::Borrowed(&[Algorithm::Ed25519]),
            ..Preferred::default()
        },
        ..Default::default()
    });
    let problem = Arc::new(Mutex::new(None));
    let handler = UserHandler {
        ca,
        host: host.to_string(),
        problem: problem.clone(),
    };
    let mut session = match client::connect_stream(config, stream, handler).await {
        Ok(session) => session,
        Err(e) => {
            let why = problem.lock().ok().and_then(|mut p| p.take());
            return Err(match why {
                Some(why) => anyhow!("host {host} not trusted: {why}"),
                None => anyhow!("SSH handshake with the proxy failed: {e}"),
            });
        }
    };
    let auth = session
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .context("public-key authentication failed")?;
    if !matches!(auth, AuthResult::Success) {
        bail!("the proxy refused {user}'s key");
    }
    let mut channel = session
        .channel_open_session()
        .await
        .context("cannot open a session channel")?;
    channel
        .exec(true, command)
        .await
        .context("cannot send the command")?;
    let mut outcome = Outcome::default();
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => outcome.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, .. } => outcome.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => outcome.exit_status = Some(exit_status),
            ChannelMsg::Failure => bail!("the host refused to run the command"),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    // The session is over either way; a failed goodbye changes nothing for the user.
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::host_certificate;

    fn key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn accepts_a_certificate_from_the_ca_for_the_host() {
        let (ca, host) = (key(), key());
        let cert = host_certificate(&ca, host.public_key(), &["i-1".into()]).unwrap();
        assert_eq!(
            check_host_certificate(&cert, ca.public_key(), "i-1"),
            Ok(())
        );
    }

    #[test]
    fn refuses_another_ca_or_another_host() {
        let (ca, other, host) = (key(), key(), key());
        let cert = host_certificate(&other, host.public_key(), &["i-1".into()]).unwrap();
        let err = check_host_certificate(&cert, ca.public_key(), "i-1").unwrap_err();
        assert!(err.contains("not signed by the proxy's CA"), "{err}");
        let cert = host_certificate(&ca, host.public_key(), &["i-2".into()]).unwrap();
        let err = check_host_certificate(&cert, ca.public_key(), "i-1").unwrap_err();
        assert!(err.contains("not i-1"), "{err}");
    }
}
