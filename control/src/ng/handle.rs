//! How the stream transports (TCP, HTTP, WebSocket) and the MQTT publisher reach the one ng
//! server: an [`NgHandle`] queues a request with its [`Framing`] and awaits the reply, which
//! the server's loop (`server`) answers between UDP datagrams. Every transport thereby
//! shares one dispatch, cookie cache and set of counters.

use std::net::IpAddr;

use tokio::sync::{mpsc, oneshot};

/// Requests of the stream transports waiting for the server. Each connection has at most one
/// request in flight, so this is reached only with more than this many busy connections;
/// they then wait (back-pressure) instead of queueing without bound.
const JOB_QUEUE: usize = 1024;

/// How a transport frames its messages (rtpengine `control_ng_process` and
/// `control_ng_process_plain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `COOKIE SP BODY`, the reply carrying the same cookie; retransmissions are answered
    /// from the cookie cache. UDP, TCP, WebSocket `ng.rtpengine.com`, HTTP `/ng`.
    Cookie,
    /// The body alone, no cookie and no cache: WebSocket `ng-plain.rtpengine.com`, HTTP
    /// `/ng-plain`.
    Plain,
}

/// What the server is asked through an [`NgHandle`].
pub(super) enum NgJob {
    /// One request of a stream transport and where its reply goes.
    Request {
        message: Vec<u8>,
        framing: Framing,
        from: Option<IpAddr>,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// The `statistics` figures for a publisher (`--mqtt-*`); see
    /// [`NgHandle::statistics`].
    Statistics { reply: oneshot::Sender<Vec<u8>> },
}

/// How the stream transports (TCP, HTTP, WebSocket) hand requests to the one
/// [`NgServer`](super::NgServer):
/// cheap to clone, one per connection.
#[derive(Clone)]
pub struct NgHandle {
    jobs: mpsc::Sender<NgJob>,
}

impl NgHandle {
    /// A handle and the queue its requests arrive on, for the server to read.
    pub(super) fn channel() -> (NgHandle, mpsc::Receiver<NgJob>) {
        let (jobs, queue) = mpsc::channel(JOB_QUEUE);
        (NgHandle { jobs }, queue)
    }

    /// Have the server answer `message`; the reply (`None`: no reply, as for a UDP datagram
    /// without a cookie, or the server has stopped).
    pub async fn request(
        &self,
        message: Vec<u8>,
        framing: Framing,
        from: Option<IpAddr>,
    ) -> Option<Vec<u8>> {
        let (reply, answer) = oneshot::channel();
        let job = NgJob::Request {
            message,
            framing,
            from,
            reply,
        };
        self.jobs.send(job).await.ok()?;
        answer.await.ok().flatten()
    }

    /// The reply a `statistics` request would get now (bencode), for a publisher that sends
    /// it elsewhere (MQTT): it is not counted as a request, its per-second rates are taken
    /// since the publisher's previous call, and the interval figures the proxies' own
    /// `statistics` requests read are left running. `None` once the server has stopped.
    pub async fn statistics(&self) -> Option<Vec<u8>> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(NgJob::Statistics { reply }).await.ok()?;
        answer.await.ok()
    }
}
