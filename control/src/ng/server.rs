//! The ng server (rtpengine `control_ng.c`, `control_ng_process`).
//!
//! [`NgServer::handle_datagram`] is the whole protocol, sans IO: framing → cookie cache →
//! decode → dispatch to the engine → encode → cache. [`NgServer::run`] is a thin loop around
//! it that reads the UDP socket and, through an [`NgHandle`], the requests of the stream
//! transports (TCP, HTTP, WebSocket: see `ng::transport`): every transport shares this one
//! dispatch, cookie cache and set of counters. Requests are handled one at a time, so a
//! retransmission arriving while the original is being executed is read afterwards and finds
//! its reply in the cache.

use ngmedia_engine::sync::lock;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::calls::{
    CallError, Calls, DeleteReply, Now, OfferAnswerReply, PlayReply, StopReply, SubscribeReply,
};
use ngmedia_engine::core::request::{
    Delete, List, MediaControlRequest, OfferAnswer, PlayDtmf, PlayMedia, Query, Recording,
    StopMedia,
};
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::cookie::CookieCache;
use super::load::{LoadLimit, LoadLimits};
use super::metrics::{NgMetrics, NgResult};
use super::rate::{Admission, SourceLimiter};
use super::reply::{self, Rates};
use super::request::{self, Command, CommandKind, Encoding, Forwarding, NgRequest};
use super::{NgError, Pii};
use crate::bencode::Value;

/// Largest reply we send. An IPv4 UDP datagram carries at most 65507 bytes; staying below
/// 65000 leaves room for IPv6 extension headers, and Kamailio reads replies into 256 KiB.
pub const MAX_REPLY: usize = 65_000;

/// Distinct proxies tracked in `controlstatistics`; later ones are counted only in totals,
/// so a spoofed-source flood cannot grow the table without bound.
const MAX_PROXIES: usize = 256;

/// Distinct "not supported yet" names logged once per process; beyond this they are not logged.
const MAX_LOGGED_UNSUPPORTED: usize = 1024;

/// Requests of the stream transports waiting for the server. Each connection has at most one
/// request in flight, so this is reached only with more than this many busy connections;
/// they then wait (back-pressure) instead of queueing without bound.
const JOB_QUEUE: usize = 1024;

/// What the ng server needs from the engine: the `Calls` registry, or a fake in tests.
pub trait CallControl: Send + 'static {
    fn offer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError>;
    fn answer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError>;
    fn delete(&mut self, req: &Delete, now: Now) -> Result<DeleteReply, CallError>;
    fn query(&self, req: &Query, now: Now) -> Result<CallSnapshot, CallError>;
    fn list(&self, req: &List) -> Vec<String>;
    fn statistics(&self, now: Now) -> EngineStatistics;
    /// `start recording` / `stop recording` / `pause recording`.
    fn recording(&mut self, _req: &Recording, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Recording is not enabled".into()))
    }
    /// `play media`.
    fn play_media(&mut self, _req: &PlayMedia, _now: Now) -> Result<PlayReply, CallError> {
        Err(CallError::Invalid("Media playback is not enabled".into()))
    }
    /// `stop media`.
    fn stop_media(&mut self, _req: &StopMedia, _now: Now) -> Result<StopReply, CallError> {
        Err(CallError::Invalid("Media playback is not enabled".into()))
    }
    /// `start forwarding` / `stop forwarding`.
    fn forwarding(&mut self, _req: &Forwarding, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Forwarding is not enabled".into()))
    }
    /// `publish`: the answer SDP for the publisher.
    fn publish(&mut self, _req: &OfferAnswer, _now: Now) -> Result<String, CallError> {
        Err(CallError::Invalid("Subscriptions are not enabled".into()))
    }
    /// `subscribe request`.
    fn subscribe_request(
        &mut self,
        _req: &OfferAnswer,
        _now: Now,
    ) -> Result<SubscribeReply, CallError> {
        Err(CallError::Invalid("Subscriptions are not enabled".into()))
    }
    /// `subscribe answer`.
    fn subscribe_answer(&mut self, _req: &OfferAnswer, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Subscriptions are not enabled".into()))
    }
    /// `unsubscribe`.
    fn unsubscribe(&mut self, _req: &OfferAnswer, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Subscriptions are not enabled".into()))
    }
    /// Calls held (deleted ones in their delete delay included), for `--max-sessions`.
    fn sessions(&self) -> usize {
        0
    }
    /// Whether `call_id` is held here: a re-offer of an existing call is never refused by a
    /// load limit.
    fn has_call(&self, _call_id: &str) -> bool {
        false
    }
    /// `block DTMF`, `block media`, `silence media` and their `un…` counterparts.
    fn media_control(&mut self, _req: &MediaControlRequest, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Unknown call-ID".into()))
    }
    /// `play DTMF`.
    fn play_dtmf(&mut self, _req: &PlayDtmf, _now: Now) -> Result<(), CallError> {
        Err(CallError::Invalid("Unknown call-ID".into()))
    }
}

impl CallControl for Calls {
    fn offer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        Calls::offer(self, req, now)
    }
    fn answer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        Calls::answer(self, req, now)
    }
    fn delete(&mut self, req: &Delete, now: Now) -> Result<DeleteReply, CallError> {
        Calls::delete(self, req, now)
    }
    fn query(&self, req: &Query, now: Now) -> Result<CallSnapshot, CallError> {
        Calls::query(self, req, now)
    }
    fn list(&self, req: &List) -> Vec<String> {
        Calls::list(self, req)
    }
    fn statistics(&self, now: Now) -> EngineStatistics {
        Calls::statistics(self, now)
    }
    fn recording(&mut self, req: &Recording, now: Now) -> Result<(), CallError> {
        Calls::recording(self, req, now)
    }
    fn play_media(&mut self, req: &PlayMedia, now: Now) -> Result<PlayReply, CallError> {
        Calls::play_media(self, req, now)
    }
    fn stop_media(&mut self, req: &StopMedia, now: Now) -> Result<StopReply, CallError> {
        Calls::stop_media(self, req, now)
    }
    fn media_control(&mut self, req: &MediaControlRequest, now: Now) -> Result<(), CallError> {
        Calls::media_control(self, req, now)
    }
    fn play_dtmf(&mut self, req: &PlayDtmf, now: Now) -> Result<(), CallError> {
        Calls::play_dtmf(self, req, now)
    }
    fn forwarding(&mut self, req: &Forwarding, now: Now) -> Result<(), CallError> {
        Calls::forwarding(
            self,
            &req.call_id,
            [req.from_tag.as_deref(), req.to_tag.as_deref()],
            req.start,
            now,
        )
    }
    fn publish(&mut self, req: &OfferAnswer, now: Now) -> Result<String, CallError> {
        Calls::publish(self, req, now)
    }
    fn subscribe_request(
        &mut self,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<SubscribeReply, CallError> {
        Calls::subscribe_request(self, req, now)
    }
    fn subscribe_answer(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        Calls::subscribe_answer(self, req, now)
    }
    fn unsubscribe(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        Calls::unsubscribe(self, req, now)
    }
    fn sessions(&self) -> usize {
        Calls::len(self)
    }
    fn has_call(&self, call_id: &str) -> bool {
        Calls::contains(self, call_id)
    }
}

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
enum NgJob {
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

/// How the stream transports (TCP, HTTP, WebSocket) hand requests to the one [`NgServer`]:
/// cheap to clone, one per connection.
#[derive(Clone)]
pub struct NgHandle {
    jobs: mpsc::Sender<NgJob>,
}

impl NgHandle {
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

/// Requests and errors of one proxy (one source address).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCounters {
    pub address: IpAddr,
    /// Indexed by [`CommandKind::index`].
    pub commands: [u64; CommandKind::ALL.len()],
    /// Seconds spent executing each command (rtpengine's `<cmd>duration`).
    pub seconds: [f64; CommandKind::ALL.len()],
    pub errors: u64,
}

/// Command delays and request rates since the previous `statistics` request (rtpengine's
/// `intervalstatistics`, which it takes over its graphite interval).
#[derive(Debug, Clone)]
pub struct IntervalCounters {
    pub delay_min: [Option<Duration>; CommandKind::ALL.len()],
    pub delay_max: [Duration; CommandKind::ALL.len()],
    pub delay_sum: [Duration; CommandKind::ALL.len()],
    pub requests: [u64; CommandKind::ALL.len()],
    /// Lowest and highest requests in one whole second of the interval.
    pub rate_min: [Option<u64>; CommandKind::ALL.len()],
    pub rate_max: [u64; CommandKind::ALL.len()],
    /// Start of the second being counted, and its counts.
    second: Option<Instant>,
    this_second: [u64; CommandKind::ALL.len()],
    /// When the interval began.
    pub since: Option<Instant>,
}

impl Default for IntervalCounters {
    fn default() -> Self {
        IntervalCounters {
            delay_min: [None; CommandKind::ALL.len()],
            delay_max: [Duration::ZERO; CommandKind::ALL.len()],
            delay_sum: [Duration::ZERO; CommandKind::ALL.len()],
            requests: [0; CommandKind::ALL.len()],
            rate_min: [None; CommandKind::ALL.len()],
            rate_max: [0; CommandKind::ALL.len()],
            second: None,
            this_second: [0; CommandKind::ALL.len()],
            since: None,
        }
    }
}

impl IntervalCounters {
    /// Close the seconds that ended before `at` into the per-second minimum and maximum.
    fn roll(&mut self, at: Instant) {
        let start = *self.second.get_or_insert(at);
        let whole = at.saturating_duration_since(start).as_secs();
        if whole == 0 {
            return;
        }
        for i in 0..CommandKind::ALL.len() {
            // The second just ended, then (when more passed) a second with no requests.
            let mut lowest = self.this_second[i];
            if whole > 1 {
                lowest = 0;
            }
            let min = self.rate_min[i].get_or_insert(lowest);
            *min = (*min).min(lowest);
            self.rate_max[i] = self.rate_max[i].max(self.this_second[i]);
        }
        self.this_second = [0; CommandKind::ALL.len()];
        self.second = Some(start + Duration::from_secs(whole));
    }

    fn record(&mut self, kind: CommandKind, took: Duration, at: Instant) {
        self.since.get_or_insert(at);
        self.roll(at);
        let i = kind.index();
        self.this_second[i] += 1;
        self.requests[i] += 1;
        self.delay_sum[i] += took;
        self.delay_max[i] = self.delay_max[i].max(took);
        let min = self.delay_min[i].get_or_insert(took);
        *min = (*min).min(took);
    }
}

/// Control-plane counters for `statistics` (rtpengine's `controlstatistics`) and metrics.
#[derive(Debug, Clone, Default)]
pub struct ControlCounters {
    commands: [u64; CommandKind::ALL.len()],
    errors: u64,
    /// Datagrams dropped without a reply (no cookie).
    dropped: u64,
    /// Retransmissions answered from the cookie cache.
    replayed: u64,
    proxies: BTreeMap<IpAddr, ProxyCounters>,
    interval: IntervalCounters,
}

impl ControlCounters {
    /// Count one executed request of a known command.
    pub fn count(&mut self, from: Option<IpAddr>, kind: CommandKind) {
        self.commands[kind.index()] += 1;
        if let Some(p) = self.proxy(from) {
            p.commands[kind.index()] += 1;
        }
    }

    /// Time one executed request: per-proxy durations and the interval figures.
    pub fn time(&mut self, from: Option<IpAddr>, kind: CommandKind, took: Duration, at: Instant) {
        if let Some(p) = self.proxy(from) {
            p.seconds[kind.index()] += took.as_secs_f64();
        }
        self.interval.record(kind, took, at);
    }

    /// The interval figures so far, the interval going on.
    pub fn peek_interval(&self, at: Instant) -> IntervalCounters {
        let mut so_far = self.interval.clone();
        so_far.roll(at);
        so_far.since.get_or_insert(at);
        so_far
    }

    /// The interval figures so far, and a new interval from `at`.
    pub fn take_interval(&mut self, at: Instant) -> IntervalCounters {
        self.interval.roll(at);
        let mut done = std::mem::take(&mut self.interval);
        done.since.get_or_insert(at);
        self.interval.since = Some(at);
        done
    }

    /// Count one error reply.
    pub fn count_error(&mut self, from: Option<IpAddr>) {
        self.errors += 1;
        if let Some(p) = self.proxy(from) {
            p.errors += 1;
        }
    }

    fn proxy(&mut self, from: Option<IpAddr>) -> Option<&mut ProxyCounters> {
        let address = from?;
        if !self.proxies.contains_key(&address) && self.proxies.len() >= MAX_PROXIES {
            return None;
        }
        Some(
            self.proxies
                .entry(address)
                .or_insert_with(|| ProxyCounters {
                    address,
                    commands: [0; CommandKind::ALL.len()],
                    seconds: [0.0; CommandKind::ALL.len()],
                    errors: 0,
                }),
        )
    }

    pub fn command_count(&self, kind: CommandKind) -> u64 {
        self.commands[kind.index()]
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    pub fn proxies(&self) -> impl Iterator<Item = &ProxyCounters> {
        self.proxies.values()
    }
}

/// Packet totals at the previous `statistics` request, to report per-second rates.
struct RateSample {
    at: Instant,
    packets: u64,
    bytes: u64,
    errors: u64,
    call_seconds: f64,
    sessions: u64,
}

/// The ng control server (rtpengine's `control_ng`).
pub struct NgServer<E: CallControl = Calls> {
    calls: Arc<Mutex<E>>,
    cache: CookieCache,
    counters: ControlCounters,
    rate_sample: Option<RateSample>,
    /// The rates' previous sample of [`NgHandle::statistics`].
    published_rate_sample: Option<RateSample>,
    logged_unsupported: HashSet<String>,
    metrics: Arc<NgMetrics>,
    limits: Arc<LoadLimits>,
    /// `--ng-rate-limit`: requests a second per client address; None: no limit.
    rate_limit: Option<SourceLimiter>,
    /// `--homer-enable-ng`: UDP requests and replies are traced here.
    homer: Option<Arc<crate::homer::Homer>>,
    /// `--webhook-url`: call started/answered/ended.
    events: Option<Arc<crate::events::Events>>,
    jobs_tx: mpsc::Sender<NgJob>,
    jobs: mpsc::Receiver<NgJob>,
}

impl<E: CallControl> NgServer<E> {
    pub fn new(calls: Arc<Mutex<E>>) -> NgServer<E> {
        let (jobs_tx, jobs) = mpsc::channel(JOB_QUEUE);
        NgServer {
            calls,
            cache: CookieCache::default(),
            counters: ControlCounters::default(),
            rate_sample: None,
            published_rate_sample: None,
            logged_unsupported: HashSet::new(),
            metrics: Arc::default(),
            limits: Arc::default(),
            rate_limit: None,
            homer: None,
            events: None,
            jobs_tx,
            jobs,
        }
    }

    /// The handle the stream transports send their requests through; they are answered by
    /// [`run`](Self::run) between UDP datagrams.
    pub fn handle(&self) -> NgHandle {
        NgHandle {
            jobs: self.jobs_tx.clone(),
        }
    }

    /// At most `per_second` requests a second from one client address (default: no limit);
    /// what is over it gets no reply, so the client retries or fails over.
    /// Trace every UDP request and its reply to Homer (`--homer-enable-ng`).
    pub fn set_homer(&mut self, homer: Option<Arc<crate::homer::Homer>>) {
        self.homer = homer;
    }

    /// Report call starts, answers and ends to the webhook (`--webhook-url`).
    pub fn set_events(&mut self, events: Option<Arc<crate::events::Events>>) {
        self.events = events;
    }

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
                self.metrics.count_rate_limited();
                if log {
                    warn!(%source, "ng requests over --ng-rate-limit: dropped without reply (logged once a minute per source)");
                }
                false
            }
        }
    }

    /// Refuse offers of new calls beyond these limits (default: none).
    pub fn set_load_limits(&mut self, limits: Arc<LoadLimits>) {
        self.limits = limits;
    }

    /// Request counters and latencies, readable from another task while the server runs.
    pub fn metrics(&self) -> Arc<NgMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Counters of handled requests, for `statistics` and metrics.
    pub fn control_counters(&self) -> &ControlCounters {
        &self.counters
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
                            let _ = reply.send(self.published_statistics(now()));
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
                self.respond(Vec::new(), body, from, now)
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
            self.counters.dropped += 1;
            self.metrics.count_dropped();
            debug!(len = datagram.len(), "ng datagram without cookie dropped");
            return None;
        };
        if let Some(cached) = self.cache.get(cookie, now.mono) {
            self.counters.replayed += 1;
            self.metrics.count_replayed();
            debug!(cookie = %String::from_utf8_lossy(cookie), "ng retransmission answered from cache");
            return Some(cached.to_vec());
        }
        if !self.admit(from, now.mono) {
            return None;
        }

        let mut out = Vec::with_capacity(cookie.len() + 1 + 256);
        out.extend_from_slice(cookie);
        out.push(b' ');
        let out = self.respond(out, body, from, now)?;
        self.cache.insert(cookie, &out, now.mono);
        Some(out)
    }

    /// Execute `body` and append the reply to `out` (empty, or the cookie and a space).
    fn respond(
        &mut self,
        mut out: Vec<u8>,
        body: &[u8],
        from: Option<IpAddr>,
        now: Now,
    ) -> Option<Vec<u8>> {
        let header = out.len();

        let encoding = request::detect_encoding(body).unwrap_or(Encoding::Bencode);
        let started = Instant::now();
        let mut kind = None;
        let mut result = match self.execute(body, from, now, &mut out, &mut kind) {
            Ok(result) => result,
            Err(e) => {
                out.truncate(header);
                self.fail(&e, from, &mut out);
                NgResult::Error
            }
        };
        to_encoding(&mut out, header, encoding);
        if out.len() > MAX_REPLY {
            // `list` already shrinks to fit; anything else still too large becomes an error
            // rather than a datagram the kernel would refuse.
            result = NgResult::Error;
            out.truncate(header);
            self.fail(&NgError::ReplyTooLarge, from, &mut out);
            to_encoding(&mut out, header, encoding);
            if out.len() > MAX_REPLY {
                // Only a cookie of tens of kilobytes gets here: no real client, no reply.
                self.counters.dropped += 1;
                self.metrics.count_dropped();
                self.metrics.record(kind, result, started.elapsed());
                return None;
            }
        }
        let took = started.elapsed();
        if let Some(kind) = kind {
            self.counters.time(from, kind, took, now.mono);
        }
        self.metrics.record(kind, result, took);
        if let Some(proxy) = from.and_then(|a| self.counters.proxies.get(&a)) {
            self.metrics.publish_proxy(proxy);
        }
        Some(out)
    }

    fn fail(&mut self, e: &NgError, from: Option<IpAddr>, out: &mut Vec<u8>) {
        self.counters.count_error(from);
        info!(error = %e, "ng request failed");
        reply::write_error(out, &e.to_string());
    }

    /// Decode, run and encode one request, appending the reply body to `out`.
    fn execute(
        &mut self,
        body: &[u8],
        from: Option<IpAddr>,
        now: Now,
        out: &mut Vec<u8>,
        kind_out: &mut Option<CommandKind>,
    ) -> Result<NgResult, NgError> {
        let json;
        let dict: Value<'_> = match request::detect_encoding(body)? {
            Encoding::Bencode => request::decode_bencode(body)?,
            Encoding::Json => {
                json = request::parse_json(body)?;
                request::json_to_value(&json)?
            }
        };
        let kind = request::command_kind(&dict)?;
        *kind_out = Some(kind);
        self.counters.count(from, kind);
        let req = request::parse_request(&dict)?;
        self.log_request(&req);
        // What the request asked for but was not acted on goes into the reply's `warning`:
        // never a silent `ok`.
        let ignored = req.ignored_summary();
        let reply_start = out.len();

        if let Command::Ping = req.command {
            // Answered without touching the engine, so a busy registry cannot delay it.
            reply::write_pong(out);
            return Ok(NgResult::Ok);
        }
        let calls = Arc::clone(&self.calls);
        // A panic inside the engine while it held the lock leaves the mutex poisoned; the
        // registry is still the best state we have, so keep serving rather than fail forever.
        let mut calls = lock(&calls);
        match &req.command {
            Command::Ping => reply::write_pong(out),
            Command::Offer(oa) => {
                // rtpengine `call_offer_get_call`: a limit refuses new calls only; a re-offer
                // of a call held here goes on.
                let refused = self
                    .limits
                    .check(calls.sessions())
                    .or_else(|| {
                        oa.codec
                            .asks_for_transcoding()
                            .then(|| self.limits.check_transcoding())
                            .flatten()
                    })
                    .filter(|_| !calls.has_call(&oa.call_id));
                if let Some(limit) = refused {
                    drop(calls);
                    self.metrics.count_refused(limit);
                    info!(
                        call_id = %Pii(&oa.call_id),
                        reason = limit.message(),
                        "new call refused by a load limit"
                    );
                    if !req.supports_load_limit {
                        return Err(NgError::LoadLimit(limit));
                    }
                    reply::write_load_limit(out, limit.message());
                    return Ok(NgResult::LoadLimit);
                }
                reply::write_offer_answer(out, &calls.offer(oa, now)?);
                if let Some(events) = &self.events {
                    events.offered(&oa.call_id, &oa.from_tag);
                }
            }
            Command::Answer(oa) => {
                reply::write_offer_answer(out, &calls.answer(oa, now)?);
                if let (Some(events), Some(to_tag)) = (&self.events, &oa.to_tag) {
                    events.answered(&oa.call_id, to_tag);
                }
            }
            Command::Delete(d) => {
                let mut r = calls.delete(d, now)?;
                // A delayed delete ends the call when it is purged (the timer reports it).
                if let Some(events) = self.events.as_ref().filter(|_| !calls.has_call(&d.call_id)) {
                    events.ended(&d.call_id, crate::events::EndReason::Deleted);
                }
                // `fast`: the caller does not want the final statistics.
                if d.flags.fast {
                    r.snapshot = None;
                }
                reply::write_delete(out, &r)
            }
            Command::Query(q) => reply::write_query(out, &calls.query(q, now)?),
            Command::List(l) => {
                let ids = calls.list(l);
                drop(calls);
                write_list_bounded(out, &ids);
            }
            Command::Recording(_, r) => {
                calls.recording(r, now)?;
                reply::write_ok(out);
            }
            Command::PlayMedia(p) => {
                let r = calls.play_media(p, now)?;
                reply::write_play_media(out, r.duration_ms);
            }
            Command::StopMedia(p) => {
                let r = calls.stop_media(p, now)?;
                reply::write_stop_media(out, r.last_frame_pos_ms);
            }
            Command::Forwarding(f) => {
                calls.forwarding(f, now)?;
                reply::write_ok(out);
            }
            Command::Publish(oa) => {
                let sdp = calls.publish(oa, now)?;
                reply::write_offer_answer(
                    out,
                    &OfferAnswerReply {
                        sdp,
                        warnings: Vec::new(),
                    },
                );
            }
            Command::SubscribeRequest(oa) => {
                reply::write_subscribe_request(out, &calls.subscribe_request(oa, now)?);
            }
            Command::SubscribeAnswer(oa) => {
                calls.subscribe_answer(oa, now)?;
                reply::write_ok(out);
            }
            Command::Unsubscribe(oa) => {
                calls.unsubscribe(oa, now)?;
                reply::write_ok(out);
            }
            Command::MediaControl(_, m) => {
                calls.media_control(m, now)?;
                reply::write_ok(out);
            }
            Command::PlayDtmf(p) => {
                calls.play_dtmf(p, now)?;
                reply::write_ok(out);
            }
            Command::Statistics => {
                let engine = calls.statistics(now);
                drop(calls);
                let rates = self.rates(&engine, now.mono, Reader::Proxy);
                let interval = self.counters.take_interval(now.mono);
                reply::write_statistics(out, &engine, &self.counters, rates, &interval, now.mono);
            }
        }
        if let Some(text) = ignored {
            reply::add_warning(out, reply_start, &text);
        }
        Ok(NgResult::Ok)
    }

    fn log_request(&mut self, req: &NgRequest) {
        let kind = req.command.kind().name();
        match req.command.call_id() {
            Some(id) => debug!(command = kind, call_id = %Pii(id), "ng request"),
            None => debug!(command = kind, "ng request"),
        }
        if !req.unknown_keys.is_empty() || !req.unknown_flags.is_empty() {
            warn!(
                command = kind,
                keys = ?req.unknown_keys,
                flags = ?req.unknown_flags,
                "ignoring unknown ng keys: {}",
                req.unknown_keys.iter().chain(&req.unknown_flags).cloned().collect::<Vec<_>>().join(", ")
            );
        }
        if !req.invalid.is_empty() {
            warn!(
                command = kind,
                "ignoring invalid ng values: {}",
                req.invalid.join(", ")
            );
        }
        let fresh: Vec<&String> = req
            .unsupported
            .iter()
            .filter(|u| !self.logged_unsupported.contains(*u))
            .collect();
        if !fresh.is_empty() {
            info!(
                command = kind,
                "ng options not supported yet (logged once): {}",
                fresh
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for u in fresh {
                if self.logged_unsupported.len() < MAX_LOGGED_UNSUPPORTED {
                    self.logged_unsupported.insert(u.clone());
                }
            }
        }
    }

    /// [`NgHandle::statistics`]: the `statistics` reply without a request.
    fn published_statistics(&mut self, now: Now) -> Vec<u8> {
        let engine = lock(&self.calls).statistics(now);
        let rates = self.rates(&engine, now.mono, Reader::Publisher);
        let interval = self.counters.peek_interval(now.mono);
        let mut out = Vec::new();
        reply::write_statistics(
            &mut out,
            &engine,
            &self.counters,
            rates,
            &interval,
            now.mono,
        );
        out
    }

    /// Per-second rates since this reader's previous `statistics` (zero on the first one),
    /// and the new calls refused by a load limit since start.
    fn rates(&mut self, engine: &EngineStatistics, at: Instant, reader: Reader) -> Rates {
        let previous = match reader {
            Reader::Proxy => &mut self.rate_sample,
            Reader::Publisher => &mut self.published_rate_sample,
        };
        let mut rates = rates_since(previous, engine, at);
        rates.rejected_sessions = LoadLimit::ALL
            .iter()
            .map(|l| self.metrics.refused(*l))
            .sum();
        rates
    }
}

/// Who reads the `statistics` figures: each has its own previous sample for the rates.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// A `statistics` request.
    Proxy,
    /// [`NgHandle::statistics`].
    Publisher,
}

/// Per-second rates between `previous` and now; `previous` becomes now.
fn rates_since(previous: &mut Option<RateSample>, engine: &EngineStatistics, at: Instant) -> Rates {
    let p = &engine.packets;
    let sample = RateSample {
        at,
        packets: p.rtp_packets.saturating_add(p.rtcp_packets),
        bytes: p.rtp_bytes.saturating_add(p.rtcp_bytes),
        errors: p.drops.iter().sum(),
        call_seconds: engine.call_seconds,
        sessions: engine.calls_current,
    };
    let rates = match &*previous {
        Some(prev) => {
            let ms = u64::try_from(sample.at.saturating_duration_since(prev.at).as_millis())
                .unwrap_or(u64::MAX);
            let per_sec = |now: u64, then: u64| {
                now.saturating_sub(then)
                    .saturating_mul(1000)
                    .checked_div(ms)
                    .unwrap_or(0)
            };
            Rates {
                packets: per_sec(sample.packets, prev.packets),
                bytes: per_sec(sample.bytes, prev.bytes),
                errors: per_sec(sample.errors, prev.errors),
                call_seconds: (sample.call_seconds - prev.call_seconds).max(0.0),
                sessions_min: sample.sessions.min(prev.sessions),
                sessions_max: sample.sessions.max(prev.sessions),
                rejected_sessions: 0,
            }
        }
        None => Rates {
            call_seconds: sample.call_seconds,
            sessions_min: sample.sessions,
            sessions_max: sample.sessions,
            ..Rates::default()
        },
    };
    *previous = Some(sample);
    rates
}

/// `list` with as many call-ids as fit in one datagram (newest first, as the engine orders
/// them); the cut is silent, as `limit` is a maximum anyway.
fn write_list_bounded(out: &mut Vec<u8>, ids: &[String]) {
    // `d5:callsl` + `e6:result2:oke` around the entries.
    const FRAME: usize = 9 + 14;
    let budget = MAX_REPLY.saturating_sub(out.len() + FRAME);
    let mut used = 0;
    let mut n = 0;
    for id in ids {
        let entry = id.len().to_string().len() + 1 + id.len();
        if used + entry > budget {
            break;
        }
        used += entry;
        n += 1;
    }
    reply::write_list(out, &ids[..n]);
}

/// Convert the bencode reply after `header` to the request's encoding.
fn to_encoding(out: &mut Vec<u8>, header: usize, encoding: Encoding) {
    if encoding == Encoding::Json {
        if let Some(json) = reply::bencode_to_json(&out[header..]) {
            out.truncate(header);
            out.extend_from_slice(&json);
        }
    }
}

/// The current time for a request.
pub fn now() -> Now {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Now {
        mono: Instant::now(),
        unix_us,
    }
}

#[cfg(test)]
mod tests;
