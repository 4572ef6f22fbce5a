//! ng over TCP (rtpengine `--listen-tcp-ng`): the UDP protocol's messages back to back on a
//! stream, answered in order on the same connection.
//!
//! Each connection is a task that frames messages ([`StreamDecoder`]) and hands each one to
//! the ng server through an [`NgHandle`], so TCP shares UDP's dispatch, cookie cache and
//! counters. A stream that cannot be framed (no cookie, a body that is neither bencode nor
//! JSON, a message beyond [`MAX_MESSAGE`](super::stream::MAX_MESSAGE)) is answered once —
//! the server turns what was read into its usual error reply when there is a cookie — and
//! closed, because the start of the next message cannot be known.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::handle::{Framing, NgHandle};
use super::stream::StreamDecoder;
use super::Pii;

/// Connections served at once; further clients wait in the listen backlog. A SIP proxy keeps
/// one or a few.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a started message may take to arrive completely: a client that stops halfway
/// cannot hold a connection slot forever. Idle connections between messages have no limit
/// (clients keep them open, as with rtpengine).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read per system call.
const READ_CHUNK: usize = 16 * 1024;
/// Pause after a failed accept (EMFILE and friends), so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accept ng connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    ng: NgHandle,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "ng TCP accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let ng = ng.clone();
        tokio::spawn(async move {
            info!(peer = %Pii(peer), "ng TCP connection opened");
            match connection(stream, peer, &ng).await {
                Ok(()) => info!(peer = %Pii(peer), "ng TCP connection closed"),
                Err(e) => info!(peer = %Pii(peer), error = %e, "ng TCP connection closed"),
            }
            drop(slot);
        });
    }
}

/// Answer one connection's messages in order until it closes or cannot be framed.
async fn connection(mut stream: TcpStream, peer: SocketAddr, ng: &NgHandle) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut decoder = StreamDecoder::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if let Some(reply) = ng.request(message, Framing::Cookie, Some(peer.ip())).await
                    {
                        stream.write_all(&reply).await?;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(peer = %Pii(peer), error = %e, "ng TCP stream cannot be framed");
                    // The server answers what it can (an error with the cookie, or nothing
                    // and a `dropped` count), like a bad datagram.
                    let rest = decoder.take_rest();
                    if let Some(reply) = ng.request(rest, Framing::Cookie, Some(peer.ip())).await {
                        stream.write_all(&reply).await?;
                    }
                    stream.shutdown().await?;
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            }
        }
        let read = if decoder.buffered() == 0 {
            stream.read(&mut buf).await?
        } else {
            match tokio::time::timeout(MESSAGE_TIMEOUT, stream.read(&mut buf)).await {
                Ok(read) => read?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "message incomplete for too long",
                    ))
                }
            }
        };
        if read == 0 {
            return Ok(());
        }
        decoder.push(&buf[..read]);
    }
}
