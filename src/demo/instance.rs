//! A throwaway SSH server on 127.0.0.1 playing the EC2 instance: its "authorized_keys"
//! hold only the key baked into the AMI, exactly as sshd on the moved instance would, and
//! it runs `exec` commands for real with `sh -c`, so the demo's output is genuine. It also
//! notes every key it is asked about, so the demo can show what the proxy tried from the
//! instance's side.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One public-key request the instance answered, in arrival order.
#[derive(Debug, Clone)]
pub struct AuthEvent {
    pub user: String,
    pub key: PublicKey,
    /// False for a query ("would you accept this key?"), true once a signature proved
    /// the client holds the private half.
    pub signed: bool,
    pub accepted: bool,
}

pub type Events = Arc<Mutex<Vec<AuthEvent>>>;

/// The running server; dropping it stops accepting connections.
pub struct Instance {
    pub port: u16,
    pub events: Events,
    accept_loop: JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Instance {
    /// Listens on 127.0.0.1 (a free port) accepting `authorized` for `user` only.
    pub async fn start(authorized: PublicKey, user: &str) -> Result<Instance> {
        let host_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .context("cannot generate the demo instance's host key")?;
        let config = Arc::new(server::Config {
            keys: vec![host_key],
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            // sshd answers refusals at once; russh's 1 s default would only slow the demo.
            auth_rejection_time: Duration::ZERO,
            auth_rejection_time_initial: Some(Duration::ZERO),
            ..Default::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1 for the demo instance")?;
        let port = listener.local_addr()?.port();
        let events = Events::default();
        let handler = InstanceHandler {
            authorized,
            user: user.to_string(),
            events: events.clone(),
            channels: HashMap::new(),
        };
        let accept_loop = tokio::spawn(accept(listener, config, handler));
        Ok(Instance {
            port,
            events,
            accept_loop,
        })
    }

    pub fn events(&self) -> Vec<AuthEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// One session per connection: the proxy may open several (probing across MaxAuthTries).
async fn accept(listener: TcpListener, config: Arc<server::Config>, template: InstanceHandler) {
    while let Ok((stream, _)) = listener.accept().await {
        let handler = InstanceHandler {
            authorized: template.authorized.clone(),
            user: template.user.clone(),
            events: template.events.clone(),
            channels: HashMap::new(),
        };
        let config = config.clone();
        tokio::spawn(async move {
            match server::run_stream(config, stream, handler).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!("demo instance: session ended: {e}");
                    }
                }
                Err(e) => tracing::debug!("demo instance: handshake failed: {e}"),
            }
        });
    }
}

struct InstanceHandler {
    authorized: PublicKey,
    user: String,
    events: Events,
    /// Session channels waiting for their `exec`.
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl InstanceHandler {
    /// sshd's AuthorizedKeysFile check, for the single baked-in key.
    fn decide(&self, user: &str, key: &PublicKey, signed: bool) -> Auth {
        let accepted = user == self.user && key.key_data() == self.authorized.key_data();
        if let Ok(mut events) = self.events.lock() {
            events.push(AuthEvent {
                user: user.to_string(),
                key: key.clone(),
                signed,
                accepted,
            });
        }
        if accepted {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl server::Handler for InstanceHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.decide(user, offer.public_key, false))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.decide(user, key.public_key, true))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(channel) = self.channels.remove(&id) else {
            return session.channel_failure(id);
        };
        session.channel_success(id)?;
        let command = String::from_utf8_lossy(data).into_owned();
        tokio::spawn(run_exec(channel, command));
        Ok(())
    }

    // The demo only runs a command; the rest is refused, but always answered, so a client
    // waiting for a reply never hangs.
    async fn pty_request(
        &mut self,
        id: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)
    }

    async fn x11_request(
        &mut self,
        id: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)
    }
}

/// Runs `sh -c COMMAND` as the current user, as sshd would run it as the login user:
/// stdout as channel data, stderr as extended data, then exit-status, EOF and close.
/// The demo's commands are short, so output is collected whole on a blocking thread
/// (tokio's `process` feature would rebuild tokio and everything above it for this alone).
async fn run_exec(channel: Channel<Msg>, command: String) {
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .output()
    })
    .await;
    let status = match run {
        Ok(Ok(output)) => {
            let _ = channel.data(&output.stdout[..]).await;
            let _ = channel.extended_data(1, &output.stderr[..]).await;
            // As a shell reports it: a signal shows as 128 + its number.
            output
                .status
                .code()
                .or_else(|| output.status.signal().map(|s| 128 + s))
                .unwrap_or(1) as u32
        }
        Ok(Err(e)) => {
            let message = format!("demo instance: cannot run sh: {e}\n");
            let _ = channel.extended_data(1, message.as_bytes()).await;
            127
        }
        Err(e) => {
            let message = format!("demo instance: the command task failed: {e}\n");
            let _ = channel.extended_data(1, message.as_bytes()).await;
            1
        }
    };
    let _ = channel.exit_status(status).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}
