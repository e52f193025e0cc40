//! The proxy's own SSH client to the real host: dial, check the pinned host key, log in
//! with keyring keys, and accept the channels the host opens back (-R, -A).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use russh::client::ChannelOpenHandle;
use russh::client::{self, Msg};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{server, Channel};
use tokio::net::TcpStream;

use crate::keyring::KeyEntry;
use crate::pins::{self, PinCheck};
use crate::proxy::{Proxy, CHANNEL_BUFFER, MAX_PACKET, WINDOW};
use crate::relay::refusal::UpstreamError;
use crate::relay::{algorithms, bridge};
use crate::target::Target;

/// As OpenSSH's ConnectTimeout: a host that does not answer fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub type Upstream = client::Handle<UpstreamHandler>;

pub struct UpstreamHandler {
    proxy: Arc<Proxy>,
    target: Target,
    /// Why the host key was not accepted, for the refusal text (russh only says "unknown key").
    key_problem: Arc<Mutex<Option<UpstreamError>>>,
    /// The client-facing session, where channels opened by the host (-R, -A) are relayed.
    inner: Arc<OnceLock<server::Handle>>,
}

impl client::Handler for UpstreamHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        let pins = &self.proxy.pins;
        let verdict = match pins.check(&self.target.pin_id, &presented) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("{e:#}");
                return Ok(false);
            }
        };
        match verdict {
            PinCheck::Match => Ok(true),
            PinCheck::New => {
                tracing::info!(host = %self.target.host, pin = %self.target.pin_id, key = %pins::fingerprint(&presented), "pinning the host key on first contact");
                if let Err(e) = pins.record(&self.target.pin_id, &presented) {
                    tracing::warn!("cannot pin the host key: {e:#}");
                }
                Ok(true)
            }
            PinCheck::Changed { pinned } => {
                let problem = UpstreamError::HostKeyChanged {
                    host: self.target.host.clone(),
                    pin_id: self.target.pin_id.clone(),
                    pinned,
                    presented: pins::fingerprint(&presented),
                    file: pins.path().display().to_string(),
                };
                tracing::warn!("{problem}");
                if let Ok(mut slot) = self.key_problem.lock() {
                    *slot = Some(problem);
                }
                Ok(false)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(inner) = self.inner.get().cloned() else {
            return Ok(()); // dropping `reply` refuses the channel
        };
        let (address, originator) = (
            connected_address.to_string(),
            originator_address.to_string(),
        );
        // Opening the client-side channel waits for the client: never inside this callback,
        // which would stall the upstream session (DESIGN.md).
        tokio::spawn(async move {
            match inner
                .channel_open_forwarded_tcpip(address, connected_port, originator, originator_port)
                .await
            {
                Ok(client_side) => {
                    reply.accept().await;
                    bridge::splice(client_side, channel).await;
                }
                Err(e) => tracing::debug!("client refused a forwarded-tcpip channel: {e}"),
            }
        });
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(inner) = self.inner.get().cloned() else {
            return Ok(());
        };
        tokio::spawn(async move {
            match inner.channel_open_agent().await {
                Ok(client_side) => {
                    reply.accept().await;
                    bridge::splice(client_side, channel).await;
                }
                Err(e) => tracing::debug!("client refused an agent channel: {e}"),
            }
        });
        Ok(())
    }
}

fn client_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        window_size: WINDOW,
        maximum_packet_size: MAX_PACKET,
        channel_buffer_size: CHANNEL_BUFFER,
        nodelay: true,
        preferred: algorithms::preferred(),
        ..Default::default()
    })
}

/// Dials the target and completes the key exchange and the host key check.
pub async fn connect(
    proxy: Arc<Proxy>,
    target: Target,
    inner: Arc<OnceLock<server::Handle>>,
) -> Result<Upstream, UpstreamError> {
    let addr = format!("{}:{}", target.dial.host, target.dial.port);
    let dial = (target.dial.host.as_str(), target.dial.port);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dial)).await {
        Err(_) => {
            return Err(UpstreamError::Timeout {
                host: target.host.clone(),
                addr,
                secs: CONNECT_TIMEOUT.as_secs(),
            })
        }
        Ok(Err(error)) => {
            return Err(UpstreamError::Connect {
                host: target.host.clone(),
                addr,
                error: error.to_string(),
            })
        }
        Ok(Ok(stream)) => stream,
    };
    // connect_stream leaves the socket as it is; Nagle would delay each small packet.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    let key_problem = Arc::new(Mutex::new(None));
    let handler = UpstreamHandler {
        proxy,
        target: target.clone(),
        key_problem: key_problem.clone(),
        inner,
    };
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        client::connect_stream(client_config(), crate::proxy::buffered(stream), handler),
    )
    .await
    {
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(error)) => {
            let known = key_problem.lock().ok().and_then(|mut slot| slot.take());
            Err(known.unwrap_or(UpstreamError::Handshake {
                host: target.host.clone(),
                addr,
                error: error.to_string(),
            }))
        }
        Err(_) => Err(UpstreamError::Timeout {
            host: target.host.clone(),
            addr,
            secs: CONNECT_TIMEOUT.as_secs(),
        }),
    }
}

/// The RSA signature hash the server prefers (RFC 8332), when it says.
pub async fn rsa_hash(upstream: &Upstream) -> Option<russh::keys::HashAlg> {
    upstream
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// One signed login attempt as `user` with `key` (its private half, or ssh-agent when the
/// keyring holds only the public half): Ok(true) logged in, Ok(false) refused.
pub async fn sign_in(
    upstream: &mut Upstream,
    user: &str,
    key: &KeyEntry,
    rsa_hash: Option<russh::keys::HashAlg>,
) -> Result<bool, String> {
    let attempt = async {
        match &key.private {
            Some(private) => upstream
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(private.clone(), rsa_hash))
                .await
                .map_err(|e| e.to_string()),
            None => match AgentClient::connect_env().await {
                Ok(mut agent) => upstream
                    .authenticate_publickey_with(user, key.public.clone(), rsa_hash, &mut agent)
                    .await
                    .map_err(|e| e.to_string()),
                Err(_) => Err("ssh-agent is not reachable ($SSH_AUTH_SOCK)".to_string()),
            },
        }
    };
    // A host that stops answering mid-login must not hold the client forever.
    let result = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())));
    let accepted = matches!(result, Ok(russh::client::AuthResult::Success));
    tracing::debug!(user, key = %key.fingerprint(), source = %key.label(), accepted, "upstream login attempt");
    result.map(|_| accepted)
}
