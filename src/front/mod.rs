//! The two ways a client reaches the inner server: the jump-host daemon (`serve`) and
//! stdin/stdout (`connect`). Both end in `run_inner`.

mod channel_io;
pub mod jump;
pub mod stdio;
pub mod workers;

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::proxy::Proxy;
use crate::relay::inner::InnerHandler;
use crate::target::Target;

/// Runs the client-facing SSH server for one connection to `target` over `stream`,
/// presenting a host certificate for the name the user typed.
pub async fn run_inner<S>(
    proxy: Arc<Proxy>,
    target: Target,
    client: Option<String>,
    stream: S,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = proxy.server_config(std::slice::from_ref(&target.host))?;
    let host = target.host.clone();
    let (handler, slot) = InnerHandler::new(proxy, target, client);
    let session = russh::server::run_stream(config, stream, handler)
        .await
        .with_context(|| format!("SSH handshake with the client for {host} failed"))?;
    let _ = slot.set(session.handle());
    session
        .await
        .with_context(|| format!("session for {host} ended with an error"))
}
