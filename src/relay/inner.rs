//! The SSH server the user's ssh really talks to (over stdin/stdout, or inside the jump
//! server's direct-tcpip channel): it learns the login user and the offered key, logs in
//! upstream, and forwards every channel and request to the host with the host's answers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, Pty, Sig};
use tokio::task::JoinHandle;

use crate::diagnosis;
use crate::proxy::{Mode, Proxy};
use crate::relay::bridge::{self, SessionLink};
use crate::relay::refusal::UpstreamError;
use crate::relay::upstream::{self, Upstream};
use crate::target::Target;

/// How long a refused client has to open a session and read the whole explanation before
/// the connection is closed with the shortened one.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);

/// How long a channel request may wait for the host's answer before we answer "failure".
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct InnerHandler {
    proxy: Arc<Proxy>,
    target: Target,
    /// This session's own handle, set once it runs: channels the host opens back are
    /// relayed through it.
    inner: Arc<OnceLock<server::Handle>>,
    /// Dial and key exchange start as soon as the client connects, in parallel with the
    /// client's own handshake, so only the login waits.
    pending: Option<JoinHandle<Result<Upstream, UpstreamError>>>,
    upstream: Option<Arc<Upstream>>,
    /// Why the upstream login failed: told to the client right after its own login.
    refusal: Option<String>,
    /// The same, whole: written to the first session's stderr, where nothing cuts it.
    refusal_full: Option<String>,
    /// The client's address and local user, for the diagnostic log ("jump" peer, or None
    /// for `connect`, where the client is this machine's user).
    client: Option<String>,
    /// One line for the terminal of the first pty session, after a login that needed a
    /// different key than expected.
    notice: Option<String>,
    sessions: HashMap<ChannelId, SessionLink>,
}

impl InnerHandler {
    pub fn new(
        proxy: Arc<Proxy>,
        target: Target,
        client: Option<String>,
    ) -> (InnerHandler, Arc<OnceLock<server::Handle>>) {
        let inner = Arc::new(OnceLock::new());
        let pending = tokio::spawn(upstream::connect(
            proxy.clone(),
            target.clone(),
            inner.clone(),
        ));
        let handler = InnerHandler {
            proxy,
            target,
            inner: inner.clone(),
            pending: Some(pending),
            upstream: None,
            refusal: None,
            refusal_full: None,
            notice: None,
            client,
            sessions: HashMap::new(),
        };
        (handler, inner)
    }

    /// In jump mode the client already proved a `client_keys` key to the outer server;
    /// the inner hop asks for the same again, so a stolen channel is worth nothing.
    fn client_allowed(&self, key: &PublicKey) -> bool {
        self.proxy.mode == Mode::Connect || self.proxy.client_keys.contains(key)
    }

    /// Logs in upstream through the diagnosis (expected key, then what the host really
    /// accepts) and keeps what the client must be told.
    async fn log_in_upstream(&mut self, user: &str, offered: &PublicKey) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let first = pending.await.unwrap_or_else(|e| {
            Err(UpstreamError::Handshake {
                host: self.target.host.clone(),
                addr: self.target.dial.to_string(),
                error: e.to_string(),
            })
        });
        let login = diagnosis::log_in(
            &self.proxy,
            &self.target,
            &self.inner,
            user,
            Some(offered),
            first,
        )
        .await;
        diagnosis::record(
            &self.proxy,
            &login,
            self.proxy.mode.into(),
            self.client.as_deref(),
        );
        if diagnosis::needs_notice(&login) {
            self.notice = login.explanation.notice.clone();
        }
        match login.upstream {
            Some(upstream) => self.upstream = Some(Arc::new(upstream)),
            None => {
                let text = diagnosis::refusal_text(&login);
                tracing::info!("{text}");
                self.refusal = Some(text);
                self.refusal_full = Some(diagnosis::refusal_paragraph(&login));
            }
        }
    }

    /// After a refused upstream login, the first request on a session channel (exec,
    /// shell, pty, subsystem) is answered with the whole explanation on stderr and exit
    /// status 255, so ssh, scp and sftp print it in full; then the channel closes. True
    /// when it did so.
    fn tell_refusal(
        &mut self,
        channel: ChannelId,
        pty: bool,
        session: &mut Session,
    ) -> Result<bool, russh::Error> {
        let Some(text) = self.refusal_full.take() else {
            return Ok(false);
        };
        let end = if pty { "\r\n" } else { "\n" };
        session.channel_success(channel)?;
        session.extended_data(channel, 1, format!("{text}{end}").into_bytes())?;
        session.exit_status_request(channel, 255)?;
        session.eof(channel)?;
        session.close(channel)?;
        Ok(true)
    }

    fn link(&self, id: ChannelId) -> Option<Arc<russh::ChannelWriteHalf<russh::client::Msg>>> {
        self.sessions.get(&id).map(|link| link.upstream.clone())
    }

    /// Answers the client's request with the host's real answer (RFC 4254 section 5.4);
    /// true when the host said yes.
    async fn answer(
        &mut self,
        id: ChannelId,
        sent: Result<(), russh::Error>,
        session: &mut Session,
    ) -> Result<bool, russh::Error> {
        let ok = match (sent, self.sessions.get_mut(&id)) {
            (Ok(()), Some(link)) => matches!(
                tokio::time::timeout(REPLY_TIMEOUT, link.replies.recv()).await,
                Ok(Some(true))
            ),
            _ => false,
        };
        if ok {
            session.channel_success(id)?;
        } else {
            session.channel_failure(id)?;
        }
        Ok(ok)
    }
}

impl server::Handler for InnerHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.client_allowed(offer.public_key) {
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
        if !self.client_allowed(key.public_key) {
            return Ok(Auth::reject());
        }
        if self.upstream.is_none() && self.refusal.is_none() {
            self.log_in_upstream(user, key.public_key).await;
        }
        // A refused upstream login is reported right after this one succeeds: SSH has no
        // other way to show the client a reason (a banner is only sent before the user is
        // known), and OpenSSH prints disconnect messages.
        Ok(Auth::Accept)
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        if let (Some(refusal), Some(inner)) = (self.refusal.clone(), self.inner.get().cloned()) {
            // A client that opens a session hears the whole explanation there (see
            // tell_refusal). One that does not (ssh -N, a jump to elsewhere) gets it as the
            // disconnect message, which OpenSSH prints, cut at 400 characters.
            tokio::spawn(async move {
                tokio::time::sleep(REFUSAL_GRACE).await;
                let _ = inner
                    .disconnect(Disconnect::NoMoreAuthMethodsAvailable, refusal, "en".into())
                    .await;
            });
        } else if let Some(refusal) = &self.refusal {
            session.disconnect(Disconnect::NoMoreAuthMethodsAvailable, refusal, "en")?;
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refusal_full.is_some() {
            // Only to say why there is no session: see tell_refusal.
            reply.accept().await;
            return Ok(());
        }
        let (Some(upstream), Some(inner)) = (self.upstream.clone(), self.inner.get().cloned())
        else {
            return Ok(());
        };
        match upstream.channel_open_session().await {
            Ok(up) => {
                let id = channel.id();
                reply.accept().await;
                let lost = format!(
                    "ec2-ssh-proxy: the connection to {} was lost",
                    self.target.host
                );
                self.sessions
                    .insert(id, bridge::spawn_session(channel, up, inner, lost));
            }
            Err(e) => {
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 2,
                        reason: format!(
                            "ec2-ssh-proxy: {} refused a session channel: {e}",
                            self.target.host
                        ),
                    })
                    .await
            }
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(upstream) = self.upstream.clone() else {
            return Ok(());
        };
        let (host, originator) = (host_to_connect.to_string(), originator_address.to_string());
        // The host's answer can take a while (it connects first): do not hold up this session.
        tokio::spawn(async move {
            match upstream
                .channel_open_direct_tcpip(host, port_to_connect, originator, originator_port)
                .await
            {
                Ok(up) => {
                    reply.accept().await;
                    bridge::splice(channel, up).await;
                }
                Err(e) => {
                    reply
                        .reject(ChannelOpenFailure::Other {
                            code: 2,
                            reason: format!("the host could not open it: {e}"),
                        })
                        .await
                }
            }
        });
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.sessions.remove(&channel);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.tell_refusal(channel, true, session)? {
            return Ok(());
        }
        let sent = match self.link(channel) {
            Some(up) => {
                up.request_pty(
                    true, term, col_width, row_height, pix_width, pix_height, modes,
                )
                .await
            }
            None => Err(russh::Error::WrongChannel),
        };
        if self.answer(channel, sent, session).await? {
            // The one line a person sees before their shell when the proxy had to work
            // around a refused key; exec, scp and sftp never get it (byte-clean output).
            if let Some(notice) = self.notice.take() {
                session.data(channel, format!("{notice}\r\n").into_bytes())?;
            }
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refusal_full.is_some() {
            return session.channel_failure(channel);
        }
        let sent = match self.link(channel) {
            Some(up) => up.set_env(true, name, value).await,
            None => Err(russh::Error::WrongChannel),
        };
        self.answer(channel, sent, session).await.map(|_| ())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.tell_refusal(channel, false, session)? {
            return Ok(());
        }
        let sent = match self.link(channel) {
            Some(up) => up.request_shell(true).await,
            None => Err(russh::Error::WrongChannel),
        };
        self.answer(channel, sent, session).await.map(|_| ())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.tell_refusal(channel, false, session)? {
            return Ok(());
        }
        let sent = match self.link(channel) {
            Some(up) => up.exec(true, data.to_vec()).await,
            None => Err(russh::Error::WrongChannel),
        };
        self.answer(channel, sent, session).await.map(|_| ())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.tell_refusal(channel, false, session)? {
            return Ok(());
        }
        let sent = match self.link(channel) {
            Some(up) => up.request_subsystem(true, name).await,
            None => Err(russh::Error::WrongChannel),
        };
        self.answer(channel, sent, session).await.map(|_| ())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // X11 forwarding is not relayed; say so rather than leave the client waiting.
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(up) = self.link(channel) else {
            return Ok(false);
        };
        if up.agent_forward(true).await.is_err() {
            return Ok(false);
        }
        let Some(link) = self.sessions.get_mut(&channel) else {
            return Ok(false);
        };
        Ok(matches!(
            tokio::time::timeout(REPLY_TIMEOUT, link.replies.recv()).await,
            Ok(Some(true))
        ))
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(up) = self.link(channel) {
            let _ = up
                .window_change(col_width, row_height, pix_width, pix_height)
                .await;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(up) = self.link(channel) {
            let _ = up.signal(signal).await;
        }
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(upstream) = self.upstream.clone() else {
            return Ok(false);
        };
        match upstream.tcpip_forward(address, *port).await {
            Ok(bound) => {
                if *port == 0 {
                    *port = bound;
                }
                Ok(true)
            }
            Err(e) => {
                tracing::debug!("the host refused tcpip-forward {address}:{port}: {e}");
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(upstream) = self.upstream.clone() else {
            return Ok(false);
        };
        Ok(upstream.cancel_tcpip_forward(address, port).await.is_ok())
    }
}
