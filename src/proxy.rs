//! Everything one proxy process holds for all its connections: config, keys, keyring,
//! pins, and the SSH settings of each hop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use russh::keys::PrivateKey;
use russh::{server, MethodKind, MethodSet};

use crate::ca;
use crate::cli::Globals;
use crate::client_keys::ClientKeys;
use crate::config::Config;
use crate::diaglog::{DiagLog, DEFAULT_MAX_BYTES};
use crate::inventory::cache::Cache;
use crate::keyring::Keyring;
use crate::pins::Pins;
use crate::relay::algorithms;
use crate::resolve::Resolver;
use crate::state::StateDir;
use crate::winners::Winners;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `serve`: clients come over the network and must hold a key in `client_keys`.
    Jump,
    /// `connect`: the client is the user's own ssh on our stdin/stdout.
    Connect,
}

pub struct Proxy {
    pub config: Config,
    pub mode: Mode,
    /// Proves the proxy's identity: the jump server's key, and the key that the per-host
    /// certificates certify.
    pub host_key: PrivateKey,
    /// Signs host certificates; users trust it once with the `ca` line.
    pub ca: PrivateKey,
    /// The keys the proxy logs in upstream with.
    pub keyring: Keyring,
    /// Who may use the jump host (empty in connect mode, where it is not consulted).
    pub client_keys: ClientKeys,
    pub pins: Pins,
    /// Host names to targets: [[hosts]], then the inventory, cached.
    pub resolver: Resolver,
    /// The key that last worked per (host, user), tried first next time.
    pub winners: Winners,
    /// Where each connection's diagnosis is recorded (`ec2-ssh-proxy log`).
    pub diaglog: DiagLog,
}

/// Bulk-transfer settings for both hops (DESIGN.md, "Lessons from peers"): 64 KiB packets
/// and TCP_NODELAY (russh's defaults are 32 KiB and Nagle on).
pub const MAX_PACKET: u32 = 65535;
/// The channel window, as OpenSSH's own (CHAN_SES_WINDOW_DEFAULT). Not larger: ssh reads
/// up to a window of stdin ahead into its own buffers whenever its output backs up, and
/// then spends its time moving and reallocating them. With 8 MiB here ssh used about 60%
/// more CPU per byte and uploads through `-J` ran a third slower (bench/relay.sh).
pub const WINDOW: u32 = 2 * 1024 * 1024;
/// Messages buffered per channel before russh stops reading the socket: this bounds what a
/// slow reader can make the proxy hold (about 64 x 64 KiB per channel).
pub const CHANNEL_BUFFER: usize = 64;

/// Messages queued to a client-facing session loop: room for several full client windows.
pub const EVENT_BUFFER: usize = 2048;

impl Proxy {
    /// `refresh`: ignore cached lookups (they are still stored).
    pub async fn load(globals: &Globals, mode: Mode, refresh: bool) -> Result<Arc<Proxy>> {
        let config = globals.load_config()?;
        match &config.source {
            Some(path) => tracing::debug!(config = %path.display(), "loaded the config"),
            None => tracing::debug!("no config file: built-in defaults"),
        }
        Proxy::from_parts(config, &globals.state_dir(), mode, refresh, true).await
    }

    /// The proxy for an already-loaded config and a state directory, without CLI globals:
    /// `demo` builds one over a temporary directory. `use_agent`: also take the identities
    /// of $SSH_AUTH_SOCK (the demo does not, so the user's agent cannot change its story).
    pub async fn from_parts(
        config: Config,
        state_dir: &Path,
        mode: Mode,
        refresh: bool,
        use_agent: bool,
    ) -> Result<Arc<Proxy>> {
        let state = StateDir::open(state_dir)?;
        let keyring = Keyring::load(&config.keyring, use_agent).await;
        for skipped in &keyring.skipped {
            tracing::debug!(path = %skipped.path.display(), reason = %skipped.reason, "keyring: skipped");
        }
        if keyring.keys.is_empty() {
            tracing::warn!("the keyring is empty: no upstream login can succeed (see `ec2-ssh-proxy keyring list`)");
        }
        let client_keys = match mode {
            Mode::Jump => {
                let keys = ClientKeys::load(&config.client_keys);
                for (path, reason) in &keys.skipped {
                    tracing::warn!(path = %path.display(), %reason, "client_keys: skipped");
                }
                if keys.is_empty() {
                    tracing::warn!("no client keys loaded: every client will be refused (config key `client_keys`)");
                } else {
                    tracing::info!("{} client keys may use the jump host", keys.len());
                }
                keys
            }
            Mode::Connect => ClientKeys::from_keys(Vec::new()),
        };
        let ttl = if refresh {
            Duration::ZERO
        } else {
            config.cache_ttl
        };
        let cache = match mode {
            Mode::Jump => Cache::in_memory(ttl),
            // A new process per connection: only a file outlives it.
            Mode::Connect => Cache::on_disk(ttl, state.lookup_cache_path()),
        };
        let resolver = Resolver::new(&config, cache).await?;
        Ok(Arc::new(Proxy {
            resolver,
            winners: Winners::new(state.winners_path()),
            diaglog: DiagLog::new(config.diagnostic_log_path(state_dir), DEFAULT_MAX_BYTES),
            host_key: state.host_key()?,
            ca: state.ca_key()?,
            pins: Pins::new(state.pins_path()),
            config,
            mode,
            keyring,
            client_keys,
        }))
    }

    /// Server settings presenting our host key with a certificate for `principals`.
    pub fn server_config(&self, principals: &[String]) -> Result<Arc<server::Config>> {
        let cert = ca::host_certificate(&self.ca, self.host_key.public_key(), principals)?;
        Ok(Arc::new(server::Config {
            keys: vec![self.host_key.clone()],
            certificates: vec![cert],
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            // The first `none` probe is answered at once; real refusals keep a small
            // constant delay.
            auth_rejection_time: Duration::from_millis(200),
            auth_rejection_time_initial: Some(Duration::ZERO),
            // OpenSSH's sshd does not drop idle sessions; neither do we.
            inactivity_timeout: None,
            window_size: WINDOW,
            maximum_packet_size: MAX_PACKET,
            channel_buffer_size: CHANNEL_BUFFER,
            preferred: algorithms::preferred(),
            // Relay tasks send the client data only within the client's window, so this
            // queue never has to make them wait; a wait here could close a cycle with the
            // upstream session (see front/channel_io.rs).
            event_buffer_size: EVENT_BUFFER,
            nodelay: true,
            // Windows refill as the relay consumes, not as data arrives (relay/bridge.rs).
            manual_window_adjust: true,
            ..Default::default()
        }))
    }
}

/// russh reads each packet with two exact reads straight from the stream: two system calls
/// per packet. Through a read buffer one call takes in many packets.
pub fn buffered<S>(stream: S) -> tokio::io::BufReader<S>
where
    S: tokio::io::AsyncRead,
{
    tokio::io::BufReader::with_capacity(READ_BUFFER, stream)
}

/// Bytes one read from a peer may take in.
const READ_BUFFER: usize = 64 * 1024;
