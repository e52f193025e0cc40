//! Moving channel traffic between the client-facing and the upstream side, with flow
//! control end to end.
//!
//! russh refills a window when data arrives, not when it is consumed, and a full channel
//! queue stops the whole session loop, window adjusts included. A relay built on that
//! deadlocks bulk transfers running both ways (`cat`): the client loop waits for the
//! upstream, the upstream loop waits for a client window adjust queued behind data in the
//! client loop. So:
//! - client-facing channels run with manual window grants (our vendored russh patch): the
//!   client may send only what the upstream has taken, and the reader here never stalls
//!   the client loop;
//! - upstream channels keep russh's refill-on-arrival, so each is read ahead into a byte
//!   budget: a slow client holds at most BUDGET bytes per channel in the proxy.

use std::sync::Arc;

use russh::{
    client, server, Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Bytes one upstream channel may hold in the proxy for a slow client.
const BUDGET: usize = 8 * 1024 * 1024;

/// Window granted back to the client at once, at most; a quarter of the window, so
/// the client never runs dry while a batch builds up.
const GRANT_BATCH: u32 = 512 * 1024;

type ReadAhead = mpsc::UnboundedReceiver<(ChannelMsg, Option<OwnedSemaphorePermit>)>;

/// Reads `from` in a task of its own so that its session loop never waits for us. With a
/// budget, holds at most that many bytes not yet written; each message carries the permit
/// that returns its bytes once written. Without one, the peer's window is the bound.
fn read_ahead(mut from: ChannelReadHalf, budget: Option<usize>) -> ReadAhead {
    let budget = budget.map(|bytes| Arc::new(Semaphore::new(bytes)));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(msg) = from.wait().await {
            let size = data_len(&msg);
            let permit = match &budget {
                Some(budget) if size > 0 => {
                    let Ok(permit) = budget
                        .clone()
                        .acquire_many_owned(size.min(BUDGET) as u32)
                        .await
                    else {
                        break;
                    };
                    Some(permit)
                }
                _ => None,
            };
            if tx.send((msg, permit)).is_err() {
                break;
            }
        }
    });
    rx
}

fn data_len(msg: &ChannelMsg) -> usize {
    match msg {
        ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => data.len(),
        _ => 0,
    }
}

/// Relays a plain byte channel (direct-tcpip, forwarded-tcpip, agent) both ways until both
/// sides are closed.
pub async fn splice(client_side: Channel<server::Msg>, upstream: Channel<client::Msg>) {
    let (c_read, c_write) = client_side.split();
    let (u_read, u_write) = upstream.split();
    tokio::join!(
        forward_up(c_read, &u_write, &c_write),
        forward_bytes(read_ahead(u_read, Some(BUDGET)), &c_write),
    );
}

/// Client to upstream: data, stderr and EOF; each chunk the upstream took is granted back
/// to the client as window. On close, closes the upstream side.
async fn forward_up(
    from: ChannelReadHalf,
    to: &ChannelWriteHalf<client::Msg>,
    grant: &ChannelWriteHalf<server::Msg>,
) {
    let mut from = read_ahead(from, None);
    let mut owed: u32 = 0;
    while let Some((msg, _)) = from.recv().await {
        let size = data_len(&msg) as u32;
        if !matches!(pass_bytes(msg, to).await, Passed::Sent | Passed::Other(_)) {
            break;
        }
        // Grant in batches: a window adjust per packet would double the packet count. The
        // client never waits on a batch: the window (2 MiB) is four batches wide.
        owed += size;
        if owed >= GRANT_BATCH {
            let _ = grant.grant_window(std::mem::take(&mut owed)).await;
        }
    }
    let _ = to.close().await;
}

/// Upstream to client for plain byte channels.
async fn forward_bytes(mut from: ReadAhead, to: &ChannelWriteHalf<server::Msg>) {
    while let Some((msg, _permit)) = from.recv().await {
        if !matches!(pass_bytes(msg, to).await, Passed::Sent | Passed::Other(_)) {
            break;
        }
    }
    let _ = to.close().await;
}

/// What became of one message handed to `pass_bytes`.
enum Passed {
    Sent,
    /// The sender closed the channel.
    Closed,
    /// The receiving side is gone.
    Failed,
    /// Not data, stderr or EOF: the caller's to handle (exit status, replies, ...).
    Other(ChannelMsg),
}

/// Passes the byte-stream part of a channel (data, stderr, EOF) on to `to`; the part
/// every direction of every relayed channel shares.
async fn pass_bytes<S>(msg: ChannelMsg, to: &ChannelWriteHalf<S>) -> Passed
where
    S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let sent = match msg {
        ChannelMsg::Data { data } => to.data_bytes(data).await,
        ChannelMsg::ExtendedData { data, ext } => to.extended_data_bytes(ext, data).await,
        ChannelMsg::Eof => to.eof().await,
        ChannelMsg::Close => return Passed::Closed,
        other => return Passed::Other(other),
    };
    match sent {
        Ok(()) => Passed::Sent,
        Err(_) => Passed::Failed,
    }
}

/// The two halves of a relayed session channel that the session handler keeps: where to
/// send the client's requests, and where the upstream's answers to them arrive (in order,
/// RFC 4254 section 5.4).
pub struct SessionLink {
    pub upstream: Arc<ChannelWriteHalf<client::Msg>>,
    pub replies: mpsc::UnboundedReceiver<bool>,
}

/// Starts relaying a session channel: client bytes go up; upstream bytes, exit status or
/// signal, EOF and close come down in the order the host sent them. `lost` is what the
/// client is told if the upstream connection dies under the session.
pub fn spawn_session(
    client_side: Channel<server::Msg>,
    upstream: Channel<client::Msg>,
    inner: server::Handle,
    lost: String,
) -> SessionLink {
    let (client_read, client_write) = client_side.split();
    let (up_read, up_write) = upstream.split();
    let up_write = Arc::new(up_write);
    let client_write = Arc::new(client_write);
    let (replies_tx, replies) = mpsc::unbounded_channel();
    let (up, grant) = (up_write.clone(), client_write.clone());
    tokio::spawn(async move { forward_up(client_read, &up, &grant).await });
    let down = read_ahead(up_read, Some(BUDGET));
    tokio::spawn(async move {
        forward_session_down(down, &client_write, inner, replies_tx, lost).await
    });
    SessionLink {
        upstream: up_write,
        replies,
    }
}

async fn forward_session_down(
    mut from: ReadAhead,
    to: &ChannelWriteHalf<server::Msg>,
    inner: server::Handle,
    replies: mpsc::UnboundedSender<bool>,
    lost: String,
) {
    let id: ChannelId = to.id();
    let mut closed = false;
    while let Some((msg, _permit)) = from.recv().await {
        let msg = match pass_bytes(msg, to).await {
            Passed::Sent => continue,
            Passed::Failed => break,
            Passed::Closed => {
                closed = true;
                break;
            }
            Passed::Other(msg) => msg,
        };
        let sent = match msg {
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
