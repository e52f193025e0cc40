//! The jump-host daemon (`serve`): an SSH server on loopback that authenticates clients
//! against `client_keys` and turns each allowed `direct-tcpip` channel into an inner session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::HashAlg;
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;

use crate::diaglog;
use crate::diagnosis;
use crate::front::channel_io::ChannelIo;
use crate::front::run_inner;
use crate::front::workers::{Job, Workers};
use crate::proxy::Proxy;

/// Connections served at once; more are turned away rather than starving the others.
const MAX_CONNECTIONS: usize = 512;
/// RFC 4254 section 5.1 reason code for refusals by policy.
const ADMINISTRATIVELY_PROHIBITED: u32 = 1;

pub async fn serve(proxy: Arc<Proxy>, listen: SocketAddr) -> Result<()> {
    if !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "listening on a non-loopback address: anyone who can reach it and holds a client key can use the keyring's keys"
        );
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let principals = jump_principals(local);
    // A line for scripts and people alike; the tests wait for it.
    eprintln!("ec2-ssh-proxy: listening on {local}");
    raise_open_file_limit();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let workers = Workers::per_cpu()?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        };
        // run_stream leaves the socket as it is: without TCP_NODELAY, Nagle and delayed ACKs
        // stall every handshake round trip.
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections ({MAX_CONNECTIONS}); refusing");
            continue;
        };
        // Certificates are short-lived, so each connection gets a fresh one.
        let config = match proxy.server_config(&principals) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!("{e:#}");
                continue;
            }
        };
        let handler = OuterHandler {
            proxy: proxy.clone(),
            peer,
            user: String::new(),
            logged_in: Arc::new(AtomicBool::new(false)),
        };
        // Each connection runs on one worker thread, with every task it spawns.
        let socket = match socket.into_std() {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!(%peer, "cannot hand the connection to a worker: {e}");
                continue;
            }
        };
        let grace = proxy.config.login_grace_time;
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _permit = permit;
                serve_client(config, socket, handler, grace).await;
            })
        });
        workers.run(job)?;
    }
    tracing::info!("shutting down");
    Ok(())
}

/// One client of the jump host, on its worker thread: its SSH session, dropped if it has not
/// logged in within `grace` (as sshd's LoginGraceTime), so that connections that never
/// authenticate cannot use up the connection limit.
async fn serve_client(
    config: Arc<server::Config>,
    socket: std::net::TcpStream,
    handler: OuterHandler,
    grace: Option<Duration>,
) {
    let (peer, logged_in) = (handler.peer, handler.logged_in.clone());
    // To end the session from here: russh takes no requests in the middle of a key exchange,
    // but a shut-down socket ends any session.
    let Ok(kill_switch) = socket.try_clone() else {
        tracing::warn!(%peer, "cannot duplicate the connection's socket");
        return;
    };
    let socket = match TcpStream::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(%peer, "cannot adopt the connection: {e}");
            return;
        }
    };
    let grace_over = async {
        match grace {
            Some(grace) => tokio::time::sleep(grace).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(grace_over);
    let too_slow = || {
        let secs = grace.map_or(0, |g| g.as_secs());
        tracing::info!(%peer, "dropped a client that did not log in within {secs} s");
    };
    let mut session = tokio::select! {
        started = server::run_stream(config, crate::proxy::buffered(socket), handler) => {
            match started {
                Ok(session) => session,
                Err(e) => {
                    tracing::debug!(%peer, "jump handshake failed: {e}");
                    return;
                }
            }
        }
        () = &mut grace_over => return too_slow(),
    };
    let ended = tokio::select! {
        ended = &mut session => ended,
        () = &mut grace_over => {
            if !logged_in.load(Ordering::Relaxed) {
                too_slow();
                let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                let _ = session.await;
                return;
            }
            drop(kill_switch);
            session.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, "jump session ended: {e}");
    }
}

/// Each connection holds a few descriptors (the client's socket, the host's, for a while a
/// duplicate): the usual soft limit of 1024 would run out before MAX_CONNECTIONS. Raise it
/// to the hard limit, as servers commonly do; if that fails the old limit stays, and
/// accept errors back off (see `serve`).
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(before, after = limit.rlim_cur, "raised the open file limit");
        }
    }
}

/// Names a client may use for the jump host itself (OpenSSH checks certificate principals
/// against the host name without the port).
fn jump_principals(local: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = local.ip().to_string();
    if !names.contains(&ip) {
        names.push(ip);
    }
    names
}

struct OuterHandler {
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    /// The user the client authenticated as on the jump hop (for the diagnostic log).
    user: String,
    /// Set once the client has logged in (see `serve_client`).
    logged_in: Arc<AtomicBool>,
}

impl OuterHandler {
    fn allowed(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        let allowed = self.proxy.client_keys.contains(key);
        if !allowed {
            tracing::info!(peer = %self.peer, user, key = %key.fingerprint(HashAlg::Sha256), "client key not in client_keys");
        }
        allowed
    }
}

impl server::Handler for OuterHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.allowed(user, key.public_key) {
            return Ok(Auth::reject());
        }
        tracing::info!(peer = %self.peer, user, key = %key.public_key.fingerprint(HashAlg::Sha256), "client authenticated");
        self.user = user.to_string();
        self.logged_in.store(true, Ordering::Relaxed);
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::Other {
                code: ADMINISTRATIVELY_PROHIBITED,
                reason: "ec2-ssh-proxy is a jump host and has no shell: use `ssh -J HOST:PORT USER@TARGET`".into(),
            })
            .await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let port = u16::try_from(port_to_connect).unwrap_or(0);
        let (proxy, peer, host) = (self.proxy.clone(), self.peer, host_to_connect.to_string());
        let user = self.user.clone();
        // Resolving may ask the EC2 API: do it off this session's event loop.
        tokio::spawn(async move {
            match proxy
                .resolver
                .resolve(&proxy.config, &host, port, false)
                .await
            {
                Ok(target) => {
                    tracing::info!(%peer, host = %target.host, dial = %target.dial, instance = ?target.instance, "relaying");
                    reply.accept().await;
                    let host = target.host.clone();
                    if let Err(e) = run_inner(
                        proxy,
                        target,
                        Some(peer.to_string()),
                        ChannelIo::new(channel),
                    )
                    .await
                    {
                        tracing::debug!(%host, "{e:#}");
                    }
                }
                Err(refusal) => {
                    tracing::warn!(%peer, "{refusal}");
                    // The jump hop's user: the inner login has not happened yet.
                    diagnosis::record_refusal(
                        &proxy,
                        &host,
                        &user,
                        &refusal,
                        diaglog::Mode::Jump,
                        Some(&peer.to_string()),
                    );
                    reply
                        .reject(ChannelOpenFailure::Other {
                            code: ADMINISTRATIVELY_PROHIBITED,
                            reason: refusal.to_string(),
                        })
                        .await;
                }
            }
        });
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(peer = %self.peer, address, port = *port, "refused remote forwarding on the jump host itself");
        Ok(false)
    }
}
