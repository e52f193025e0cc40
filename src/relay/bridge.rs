//! Moving channel traffic between the client-facing and the upstream side. Each direction
//! is its own task that owns one reader and one writer; waiting on the writer's SSH window
//! is the back-pressure that keeps a slow reader from making the proxy buffer without bound.

use std::sync::Arc;

use russh::{
    client, server, Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect,
};
use tokio::sync::mpsc;

/// Relays a plain byte channel (direct-tcpip, forwarded-tcpip, agent) both ways until
/// both sides are closed.
pub async fn splice<A, B>(a: Channel<A>, b: Channel<B>)
where
    A: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
    B: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let (a_read, a_write) = a.split();
    let (b_read, b_write) = b.split();
    tokio::join!(forward_bytes(a_read, &b_write), forward_bytes(b_read, &a_write));
}

/// Data, stderr and EOF from `from` to `to`; on close (or a dead session) closes `to`.
/// Channel requests are not bytes: the session handler forwards those itself.
async fn forward_bytes<S>(mut from: ChannelReadHalf, to: &ChannelWriteHalf<S>)
where
    S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    while let Some(msg) = from.wait().await {
        let sent = match msg {
            ChannelMsg::Data { data } => to.data_bytes(data).await,
            ChannelMsg::ExtendedData { data, ext } => to.extended_data_bytes(ext, data).await,
            ChannelMsg::Eof => to.eof().await,
            ChannelMsg::Close => break,
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = to.close().await;
}

/// The two halves of a relayed session channel that the session handler keeps: where to
/// send the client's requests, and where the upstream's answers to them arrive (in order,
/// RFC 4254 section 5.4).
pub struct SessionLink {
    pub upstream: Arc<ChannelWriteHalf<client::Msg>>,
    pub replies: mpsc::UnboundedReceiver<bool>,
}

/// Starts relaying a session channel: client bytes go up; upstream bytes, exit status or
/// signal, EOF and close come down in the order the host sent them.
pub fn spawn_session(
    client_side: Channel<server::Msg>,
    upstream: Channel<client::Msg>,
    inner: server::Handle,
    lost: String,
) -> SessionLink {
    let (client_read, client_write) = client_side.split();
    let (up_read, up_write) = upstream.split();
    let up_write = Arc::new(up_write);
    let (replies_tx, replies) = mpsc::unbounded_channel();
    let up = up_write.clone();
    tokio::spawn(async move { forward_bytes(client_read, &up).await });
    tokio::spawn(async move { forward_session_down(up_read, client_write, inner, replies_tx, lost).await });
    SessionLink {
        upstream: up_write,
        replies,
    }
}

async fn forward_session_down(
    mut from: ChannelReadHalf,
    to: ChannelWriteHalf<server::Msg>,
    inner: server::Handle,
    replies: mpsc::UnboundedSender<bool>,
    lost: String,
) {
    let id = to.id();
    let mut closed = false;
    while let Some(msg) = from.wait().await {
        let sent = match msg {
            ChannelMsg::Data { data } => to.data_bytes(data).await,
            ChannelMsg::ExtendedData { data, ext } => to.extended_data_bytes(ext, data).await,
            ChannelMsg::Eof => to.eof().await,
            ChannelMsg::ExitStatus { exit_status } => to.exit_status(exit_status).await,
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => inner
                .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                .await
                .map_err(|()| russh::Error::SendError),
            ChannelMsg::XonXoff { client_can_do } => inner
                .xon_xoff_request(id, client_can_do)
                .await
                .map_err(|()| russh::Error::SendError),
            ChannelMsg::Success => {
                let _ = replies.send(true);
                Ok(())
            }
            ChannelMsg::Failure => {
                let _ = replies.send(false);
                Ok(())
            }
            ChannelMsg::Close => {
                closed = true;
                break;
            }
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
    if closed {
        let _ = to.close().await;
    } else {
        // The upstream session died under us. Say so before anything else reaches the
        // client: a bare channel close would end ssh with 255 and no word of why.
        let _ = inner
            .disconnect(Disconnect::ConnectionLost, lost, "en".into())
            .await;
    }
}
