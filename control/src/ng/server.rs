//! The ng server's transport loop (rtpengine `control_ng.c`, `control_ng_process`).
//!
//! [`NgServer::handle_datagram`] is the whole protocol, sans IO: framing → cookie cache
//! (retransmissions answered without executing again) → rate limit → the command dispatch
//! (`dispatch`) → cache. [`NgServer::run`] is a thin loop around it that reads the UDP socket
//! and, through an [`NgHandle`], the requests of the stream transports (TCP, HTTP,
//! WebSocket: see `handle`): every transport shares this one dispatch, cookie cache and set
//! of counters. Requests are handled one at a time, so a retransmission arriving while the
//! original is being executed is read afterwards and finds its reply in the cache.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngmedia_engine::core::calls::{Calls, Now};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::cookie::CookieCache;
use super::counters::ControlCounters;
use super::dispatch::Dispatcher;
use super::handle::{Framing, NgHandle, NgJob};
use super::metrics::NgMetrics;
use super::rate::{Admission, SourceLimiter};
use super::request;
use super::Pii;
use crate::call_control::{now, CallControl};
use crate::load_limits::LoadLimits;

/// The ng control server (rtpengine's `control_ng`).
pub struct NgServer<E: CallControl = Calls> {
    dispatch: Dispatcher<E>,
    cache: CookieCache,
    /// `--ng-rate-limit`: requests a second per client address; None: no limit.
    rate_limit: Option<SourceLimiter>,
    /// `--homer-enable-ng`: UDP requests and replies are traced here.
    homer: Option<Arc<crate::homer::Homer>>,
    handle: NgHandle,
    jobs: mpsc::Receiver<NgJob>,
}

impl<E: CallControl> NgServer<E> {
    pub fn new(calls: Arc<Mutex<E>>) -> NgServer<E> {
        let (handle, jobs) = NgHandle::channel();
        NgServer {
            dispatch: Dispatcher::new(calls),
            cache: CookieCache::default(),
            rate_limit: None,
            homer: None,
            handle,
            jobs,
        }
    }

    /// The handle the stream transports send their requests through; they are answered by
    /// [`run`](Self::run) between UDP datagrams.
    pub fn handle(&self) -> NgHandle {
        self.handle.clone()
    }

    /// Trace every UDP request and its reply to Homer (`--homer-enable-ng`).
    pub fn set_homer(&mut self, homer: Option<Arc<crate::homer::Homer>>) {
        self.homer = homer;
    }

    /// Report call starts, answers and ends to the webhook (`--webhook-url`).
    pub fn set_events(&mut self, events: Option<Arc<crate::events::Events>>) {
        self.dispatch.set_events(events);
    }

    /// At most `per_second` requests a second from one client address (default: no limit);
    /// what is over it gets no reply, so the client retries or fails over.
    pub fn set_rate_limit(&mut self, per_second: Option<u32>) {
        self.rate_limit = per_second.map(SourceLimiter::new);
    }

    /// Whether a request from `from` is within the rate limit; counts and logs refusals.
    fn admit(&mut self, from: Option<IpAddr>, now: Instant) -> bool {
        let (Some(limiter), Some(source)) = (self.rate_limit.as_mut(), from) else {
            return true;
        };
        match limiter.admit(source, now) {
            Admission::Allowed => true,
            Admission::Refused { log } => {
                self.dispatch.metrics().count_rate_limited();
                if log {
                    warn!(%source, "ng requests over --ng-rate-limit: dropped without reply (logged once a minute per source)");
                }
                false
            }
        }
    }

    /// Refuse offers of new calls beyond these limits (default: none).
    pub fn set_load_limits(&mut self, limits: Arc<LoadLimits>) {
        self.dispatch.set_load_limits(limits);
    }

    /// Request counters and latencies, readable from another task while the server runs.
    pub fn metrics(&self) -> Arc<NgMetrics> {
        Arc::clone(self.dispatch.metrics())
    }

    /// Counters of handled requests, for `statistics` and metrics.
    pub fn control_counters(&self) -> &ControlCounters {
        self.dispatch.counters()
    }

    /// Receive and answer requests until `shutdown` resolves.
    pub async fn run(
        mut self,
        socket: UdpSocket,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        // Largest UDP payload plus one, so an oversized datagram cannot be silently truncated
        // into something that parses.
        let mut buf = vec![0u8; 65_536];
        let local = socket.local_addr()?;
        loop {
            let (len, from) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                job = self.jobs.recv() => {
                    // The connection or publisher may have gone meanwhile; nothing to do then.
                    match job {
                        Some(NgJob::Request { message, framing, from, reply }) => {
                            let _ = reply.send(self.handle_message(&message, framing, from, now()));
                        }
                        Some(NgJob::Statistics { reply }) => {
                            let _ = reply.send(self.dispatch.published_statistics(now()));
                        }
                        // The server holds a sender itself: the channel never closes.
                        None => {}
                    }
                    continue;
                }
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here (ECONNREFUSED); none of
                        // them make the socket unusable. Pause briefly so a persistent error
                        // cannot spin the loop.
                        warn!(error = %e, "ng socket receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let now = now();
            let reply = self.handle_datagram_from(&buf[..len], Some(from.ip()), now);
            if let Some(homer) = &self.homer {
                homer.trace_ng(&buf[..len], reply.as_deref(), from, local);
            }
            if let Some(reply) = reply {
                if let Err(e) = socket.send_to(&reply, from).await {
                    warn!(error = %e, to = %Pii(from), "ng reply not sent");
                }
            }
        }
    }

    /// Handle one datagram; the reply datagram to send back, if any.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Now) -> Option<Vec<u8>> {
        self.handle_datagram_from(datagram, None, now)
    }

    /// Handle one message of any transport, framed as `framing`; the reply, if any.
    pub fn handle_message(
        &mut self,
        message: &[u8],
        framing: Framing,
        from: Option<IpAddr>,
        now: Now,
    ) -> Option<Vec<u8>> {
        match framing {
            Framing::Cookie => self.handle_datagram_from(message, from, now),
            Framing::Plain => {
                if !self.admit(from, now.mono) {
                    return None;
                }
                let mut body = message;
                while let [rest @ .., b'\r' | b'\n'] = body {
                    body = rest;
                }
                self.dispatch.respond(Vec::new(), body, from, now)
            }
        }
    }

    /// As [`handle_datagram`](Self::handle_datagram), attributing counters to the sender.
    pub fn handle_datagram_from(
        &mut self,
        datagram: &[u8],
        from: Option<IpAddr>,
        now: Now,
    ) -> Option<Vec<u8>> {
        let Some((cookie, body)) = request::split_datagram(datagram) else {
            self.dispatch.counters_mut().count_dropped();
            self.dispatch.metrics().count_dropped();
            debug!(len = datagram.len(), "ng datagram without cookie dropped");
            return None;
        };
        if let Some(cached) = self.cache.get(cookie, now.mono) {
            self.dispatch.counters_mut().count_replayed();
            self.dispatch.metrics().count_replayed();
            debug!(cookie = %String::from_utf8_lossy(cookie), "ng retransmission answered from cache");
            return Some(cached.to_vec());
        }
        if !self.admit(from, now.mono) {
            return None;
        }

        let mut out = Vec::with_capacity(cookie.len() + 1 + 256);
        out.extend_from_slice(cookie);
        out.push(b' ');
        let out = self.dispatch.respond(out, body, from, now)?;
        self.cache.insert(cookie, &out, now.mono);
        Some(out)
    }
}

#[cfg(test)]
mod tests;
