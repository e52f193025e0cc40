//! The jump server's direct-tcpip channel as a byte stream for the inner SSH server.
//!
//! The client may send only what the inner server has read (window granted on
//! consumption, see relay/bridge.rs), so the read side never stalls the jump session. The
//! write side never waits either: what the inner server writes is bounded by the client's
//! own windows on the inner channels, and a write that waited on the jump session while
//! that session waited for the inner server to read would deadlock.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Window is granted back in chunks of this size, not per read or per packet: each grant
/// is a packet of its own that both ends encrypt, send and process. The client never waits
/// on a chunk building up, since the window (2 MiB) is four chunks wide.
const GRANT_CHUNK: usize = 512 * 1024;

/// What the writer task sends on the channel, in order.
enum Out {
    Data(Bytes),
    /// Bytes the inner server has read: the client may send that much more.
    Grant(u32),
}

pub struct ChannelIo {
    incoming: mpsc::UnboundedReceiver<Bytes>,
    /// The rest of a packet the last read could not take.
    partial: Bytes,
    /// Bytes read but not yet granted back.
    consumed: usize,
    outgoing: mpsc::UnboundedSender<Out>,
    /// Set once the inner server shut its side down.
    shut: bool,
}

impl ChannelIo {
    pub fn new(channel: Channel<Msg>) -> ChannelIo {
        let (mut read, write) = channel.split();
        let (in_tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(msg) = read.wait().await {
                let delivered = match msg {
                    ChannelMsg::Data { data } => in_tx.send(data).is_ok(),
                    ChannelMsg::Eof | ChannelMsg::Close => false,
                    _ => true,
                };
                if !delivered {
                    break;
                }
            }
        });
        let (outgoing, mut out_rx) = mpsc::unbounded_channel::<Out>();
        tokio::spawn(async move {
            while let Some(out) = out_rx.recv().await {
                let sent = match out {
                    Out::Data(data) => write.data_bytes(data).await,
                    Out::Grant(bytes) => write.grant_window(bytes).await,
                };
                if sent.is_err() {
                    return;
                }
            }
            let _ = write.eof().await;
            let _ = write.close().await;
        });
        ChannelIo {
            incoming,
            partial: Bytes::new(),
            consumed: 0,
            outgoing,
            shut: false,
        }
    }
}

impl AsyncRead for ChannelIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.partial.is_empty() {
            match self.incoming.poll_recv(cx) {
                Poll::Ready(Some(data)) => self.partial = data,
                // End of stream: the channel is closed.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.partial.len().min(buf.remaining());
        let chunk = self.partial.split_to(n);
        buf.put_slice(&chunk);
        self.consumed += n;
        if self.consumed >= GRANT_CHUNK {
            let bytes = std::mem::take(&mut self.consumed) as u32;
            let _ = self.outgoing.send(Out::Grant(bytes));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ChannelIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut
            || self
                .outgoing
                .send(Out::Data(Bytes::copy_from_slice(buf)))
                .is_err()
        {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer task sends EOF and close once this stream (the last sender) is dropped.
        self.shut = true;
        Poll::Ready(Ok(()))
    }
}
