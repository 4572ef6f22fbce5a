//! The ng UDP server (rtpengine `control_ng.c`, `control_ng_process`).
//!
//! [`NgServer::handle_datagram`] is the whole protocol, sans IO: framing → cookie cache →
//! decode → dispatch to the engine → encode → cache. [`NgServer::run`] is a thin loop around
//! it. Requests are handled one at a time, so a retransmission arriving while the original
//! is being executed is read afterwards and finds its reply in the cache.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::calls::{CallError, Calls, DeleteReply, Now, OfferAnswerReply};
use ngmedia_engine::core::request::{Delete, List, OfferAnswer, Query, Recording};
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use super::cookie::CookieCache;
use super::metrics::{NgMetrics, NgResult};
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
    /// `start forwarding` / `stop forwarding`.
    fn forwarding(&mut self, _req: &Forwarding) -> Result<(), CallError> {
        Err(CallError::Invalid("Forwarding is not enabled".into()))
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
    fn forwarding(&mut self, req: &Forwarding) -> Result<(), CallError> {
        Calls::forwarding(
            self,
            &req.call_id,
            [req.from_tag.as_deref(), req.to_tag.as_deref()],
            req.start,
        )
    }
}

/// Requests and errors of one proxy (one source address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCounters {
    pub address: IpAddr,
    /// Indexed by [`CommandKind::index`].
    pub commands: [u64; CommandKind::ALL.len()],
    pub errors: u64,
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
}

impl ControlCounters {
    /// Count one executed request of a known command.
    pub fn count(&mut self, from: Option<IpAddr>, kind: CommandKind) {
        self.commands[kind.index()] += 1;
        if let Some(p) = self.proxy(from) {
            p.commands[kind.index()] += 1;
        }
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
}

/// The ng control server (rtpengine's `control_ng`).
pub struct NgServer<E: CallControl = Calls> {
    calls: Arc<Mutex<E>>,
    cache: CookieCache,
    counters: ControlCounters,
    rate_sample: Option<RateSample>,
    logged_unsupported: HashSet<String>,
    metrics: Arc<NgMetrics>,
}

impl<E: CallControl> NgServer<E> {
    pub fn new(calls: Arc<Mutex<E>>) -> NgServer<E> {
        NgServer {
            calls,
            cache: CookieCache::default(),
            counters: ControlCounters::default(),
            rate_sample: None,
            logged_unsupported: HashSet::new(),
            metrics: Arc::default(),
        }
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
        loop {
            let (len, from) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
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
            if let Some(reply) = self.handle_datagram_from(&buf[..len], Some(from.ip()), now) {
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

        let mut out = Vec::with_capacity(cookie.len() + 1 + 256);
        out.extend_from_slice(cookie);
        out.push(b' ');
        let header = out.len();

        let encoding = request::detect_encoding(body).unwrap_or(Encoding::Bencode);
        let started = Instant::now();
        let mut kind = None;
        let mut result = match self.execute(body, from, now, &mut out, &mut kind) {
            Ok(()) => NgResult::Ok,
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
        self.metrics.record(kind, result, started.elapsed());
        self.cache.insert(cookie, &out, now.mono);
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
    ) -> Result<(), NgError> {
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

        if let Command::Ping = req.command {
            // Answered without touching the engine, so a busy registry cannot delay it.
            reply::write_pong(out);
            return Ok(());
        }
        let calls = Arc::clone(&self.calls);
        // A panic inside the engine while it held the lock leaves the mutex poisoned; the
        // registry is still the best state we have, so keep serving rather than fail forever.
        let mut calls = calls.lock().unwrap_or_else(|e| e.into_inner());
        match &req.command {
            Command::Ping => reply::write_pong(out),
            Command::Offer(oa) => reply::write_offer_answer(out, &calls.offer(oa, now)?),
            Command::Answer(oa) => reply::write_offer_answer(out, &calls.answer(oa, now)?),
            Command::Delete(d) => reply::write_delete(out, &calls.delete(d, now)?),
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
            Command::Forwarding(f) => {
                calls.forwarding(f)?;
                reply::write_ok(out);
            }
            Command::Statistics => {
                let engine = calls.statistics(now);
                drop(calls);
                let rates = self.rates(&engine, now.mono);
                reply::write_statistics(out, &engine, &self.counters, rates);
            }
        }
        Ok(())
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

    /// Per-second rates since the previous `statistics` request (zero on the first one).
    fn rates(&mut self, engine: &EngineStatistics, at: Instant) -> Rates {
        let p = &engine.packets;
        let sample = RateSample {
            at,
            packets: p.rtp_packets.saturating_add(p.rtcp_packets),
            bytes: p.rtp_bytes.saturating_add(p.rtcp_bytes),
            errors: p.drops.iter().sum(),
        };
        let rates = match &self.rate_sample {
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
                }
            }
            None => Rates::default(),
        };
        self.rate_sample = Some(sample);
        rates
    }
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
mod tests {
    use super::*;
    use crate::bencode::{self, Encoder};
    use crate::ng::reply::tests::{ex2_snapshot, EX2_QUERY};
    use ngmedia_engine::core::config::{EngineConfig, Interface};
    use ngmedia_engine::core::plan::{CallKey, CallPlan, MediaPlane, PortError, PortKey, PortPair};
    use ngmedia_engine::core::stats::PacketTotals;

    /// An engine that knows one call, `call-plain-2`, and records what it was asked.
    #[derive(Default)]
    struct FakeCalls {
        offers: usize,
        answers: usize,
        deletes: usize,
        list: Vec<String>,
        sdp_size: usize,
        stats: EngineStatistics,
    }

    const KNOWN: &str = "call-plain-2";

    impl CallControl for FakeCalls {
        fn offer(&mut self, req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
            if req.call_id == "no-ports" {
                return Err(PortError::Exhausted.into());
            }
            self.offers += 1;
            let mut sdp = format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", 30000 + 2 * self.offers);
            sdp.extend(std::iter::repeat_n('x', self.sdp_size));
            Ok(OfferAnswerReply {
                sdp,
                warnings: vec![],
            })
        }
        fn answer(&mut self, req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
            self.answers += 1;
            if req.call_id != KNOWN {
                return Err(CallError::UnknownCall);
            }
            Ok(OfferAnswerReply {
                sdp: "v=0\r\n".into(),
                warnings: vec!["careful".into()],
            })
        }
        fn delete(&mut self, req: &Delete, _now: Now) -> Result<DeleteReply, CallError> {
            self.deletes += 1;
            match (req.call_id == KNOWN, req.flags.fatal) {
                (true, _) => Ok(DeleteReply {
                    snapshot: Some(ex2_snapshot()),
                    warning: None,
                }),
                (false, true) => Err(CallError::NotFound),
                (false, false) => Ok(DeleteReply {
                    snapshot: None,
                    warning: Some(CallError::NotFound.to_string()),
                }),
            }
        }
        fn query(&self, req: &Query, _now: Now) -> Result<CallSnapshot, CallError> {
            if req.call_id == KNOWN {
                Ok(ex2_snapshot())
            } else {
                Err(CallError::UnknownCall)
            }
        }
        fn list(&self, req: &List) -> Vec<String> {
            self.list.iter().take(req.limit).cloned().collect()
        }
        fn statistics(&self, _now: Now) -> EngineStatistics {
            self.stats.clone()
        }
    }

    fn server() -> (NgServer<FakeCalls>, Arc<Mutex<FakeCalls>>) {
        let calls = Arc::new(Mutex::new(FakeCalls::default()));
        (NgServer::new(Arc::clone(&calls)), calls)
    }

    fn at(t0: Instant, secs: u64) -> Now {
        Now {
            mono: t0 + Duration::from_secs(secs),
            unix_us: 1_795_300_564_000_000 + secs * 1_000_000,
        }
    }

    fn ask(s: &mut NgServer<FakeCalls>, datagram: &[u8]) -> Vec<u8> {
        s.handle_datagram(datagram, at(Instant::now(), 0))
            .expect("a reply")
    }

    fn body(reply: &[u8]) -> Value<'_> {
        let (_, b) = request::split_datagram(reply).unwrap();
        bencode::decode(b).unwrap()
    }

    #[test]
    fn fixed_replies_match_captures() {
        let (mut s, _) = server();
        assert_eq!(
            ask(&mut s, b"5323_1 d7:command4:pinge"),
            b"5323_1 d6:result4:ponge"
        );
        assert_eq!(
            ask(&mut s, b"8f1a2b_7 d7:call-id1:xe"),
            b"8f1a2b_7 d6:result5:error12:error-reason36:Dictionary contains no key \"command\"e"
                .to_vec()
        );
        assert_eq!(
            ask(&mut s, b"e2 d7:command3:fooe"),
            b"e2 d6:result5:error12:error-reason20:Unrecognized commande".to_vec()
        );
        assert_eq!(
            ask(&mut s, b"e3 d7:command4:pin"),
            b"e3 d6:result5:error12:error-reason35:Could not decode bencode dictionarye".to_vec()
        );
        assert_eq!(
            ask(&mut s, b"e4 \xff\xfe garbage {json?}"),
            b"e4 d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
        );
        assert_eq!(
            ask(&mut s, b"e5 "),
            b"e5 d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
        );
        assert_eq!(
            s.handle_datagram(b"nocookiehere", at(Instant::now(), 0)),
            None
        );
        assert_eq!(s.handle_datagram(&[0u8; 64], at(Instant::now(), 0)), None);
        assert_eq!(
            s.handle_datagram(b" d7:command4:pinge", at(Instant::now(), 0)),
            None
        );
        assert_eq!(s.control_counters().dropped(), 3);
    }

    /// captures/ex3.out and ex2.out, through the whole pipeline.
    #[test]
    fn delete_and_query_replies_match_captures() {
        let (mut s, _) = server();
        assert_eq!(
            ask(
                &mut s,
                b"c3_1 d7:command6:delete7:call-id12:no-such-call8:from-tag1:xe"
            ),
            b"c3_1 d7:warning38:Call-ID not found or tags didn't match6:result2:oke".to_vec()
        );
        assert_eq!(
            ask(
                &mut s,
                b"c3_2 d7:command6:delete7:call-id12:no-such-call8:from-tag1:x5:flagsl5:fatalee"
            ),
            b"c3_2 d6:result5:error12:error-reason38:Call-ID not found or tags didn't matche"
                .to_vec()
        );
        assert_eq!(
            ask(&mut s, b"c3_4 d7:command5:query7:call-id12:call-plain-1e"),
            b"c3_4 d6:result5:error12:error-reason15:Unknown call-ide".to_vec()
        );
        let reply = ask(
            &mut s,
            b"8f1a2b_3 d7:command5:query7:call-id12:call-plain-2e",
        );
        assert_eq!(reply, [&b"8f1a2b_3 "[..], EX2_QUERY].concat());
        let reply = ask(
            &mut s,
            b"8f1a2b_4 d7:command6:delete7:call-id12:call-plain-28:from-tag4:tagAe",
        );
        assert_eq!(reply, [&b"8f1a2b_4 "[..], EX2_QUERY].concat());
    }

    #[test]
    fn offer_answer_and_engine_errors() {
        let (mut s, calls) = server();
        let r = ask(
            &mut s,
            b"o1 d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
        );
        assert_eq!(
            r,
            b"o1 d3:sdp30:v=0\r\nm=audio 30002 RTP/AVP 0\r\n6:result2:oke".to_vec()
        );
        let r = ask(
            &mut s,
            b"o2 d7:command6:answer3:sdp3:v=07:call-id12:call-plain-28:from-tag1:f6:to-tag1:te",
        );
        assert_eq!(
            r,
            b"o2 d3:sdp5:v=0\r\n7:warning7:careful6:result2:oke".to_vec()
        );
        let r = ask(
            &mut s,
            b"o3 d7:command5:offer3:sdp3:v=07:call-id8:no-ports8:from-tag1:fe",
        );
        assert_eq!(
            r,
            b"o3 d6:result5:error12:error-reason16:Ran out of portse".to_vec()
        );
        let r = ask(
            &mut s,
            b"o4 d7:command6:answer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
        );
        assert_eq!(
            r,
            b"o4 d6:result5:error12:error-reason20:No to-tag in messagee".to_vec()
        );
        let r = ask(&mut s, b"o5 d7:command10:block DTMF7:call-id1:ce");
        assert_eq!(body(&r).get(b"result"), Some(&Value::Bytes(b"error")));
        let c = calls.lock().unwrap();
        assert_eq!((c.offers, c.answers), (1, 1));
    }

    #[test]
    fn duplicate_cookie_replays_without_executing() {
        let (mut s, calls) = server();
        let t0 = Instant::now();
        let offer = b"dup_1 d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe";
        let first = s.handle_datagram(offer, at(t0, 0)).unwrap();
        let again = s.handle_datagram(offer, at(t0, 1)).unwrap();
        assert_eq!(first, again);
        // Same cookie, different body: still the cached offer reply (rtpengine behaviour).
        let ping = s
            .handle_datagram(b"dup_1 d7:command4:pinge", at(t0, 2))
            .unwrap();
        assert_eq!(first, ping);
        assert_eq!(calls.lock().unwrap().offers, 1);
        assert_eq!(s.control_counters().replayed(), 2);
        assert_eq!(s.control_counters().command_count(CommandKind::Offer), 1);

        // Error replies are cached too.
        let e1 = s
            .handle_datagram(b"dup_2 d7:command3:fooe", at(t0, 3))
            .unwrap();
        let e2 = s
            .handle_datagram(b"dup_2 d7:command4:pinge", at(t0, 4))
            .unwrap();
        assert_eq!(e1, e2);

        // After 60 s the cookie is forgotten and the request runs again.
        let later = s.handle_datagram(offer, at(t0, 61)).unwrap();
        assert_ne!(first, later);
        assert_eq!(calls.lock().unwrap().offers, 2);

        // The shared metrics saw the same: executed requests by result, replays apart.
        let m = s.metrics();
        assert_eq!(m.requests(CommandKind::Offer, NgResult::Ok), 2);
        assert_eq!(m.requests(CommandKind::Offer, NgResult::Error), 0);
        assert_eq!(m.invalid(NgResult::Error), 1);
        assert_eq!(m.replayed(), 3);
        assert_eq!(m.latency(CommandKind::Offer).count(), 2);
        assert!(s.handle_datagram(b"nocookie", at(t0, 62)).is_none());
        assert_eq!(m.dropped(), 1);
    }

    #[test]
    fn json_requests_get_json_replies() {
        let (mut s, _) = server();
        assert_eq!(
            ask(&mut s, br#"x {"command":"ping"}"#),
            br#"x {"result":"pong"}"#.to_vec()
        );
        assert_eq!(
            ask(&mut s, br#"y {"command":"query","call-id":"nope"}"#),
            br#"y {"result":"error","error-reason":"Unknown call-id"}"#.to_vec()
        );
        assert_eq!(
            ask(&mut s, br#"z {"command":"#),
            br#"z {"result":"error","error-reason":"Could not decode JSON object"}"#.to_vec()
        );
        let r = ask(&mut s, br#"q {"command":"query","call-id":"call-plain-2"}"#);
        let (_, b) = request::split_datagram(&r).unwrap();
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["tags"]["tagA"]["medias"][0]["codec"], "PCMU/8000");
        assert_eq!(v["result"], "ok");
    }

    #[test]
    fn oversized_replies_are_bounded() {
        let (mut s, calls) = server();
        calls.lock().unwrap().list = (0..5000).map(|i| format!("call-{i:036}")).collect();
        let r = ask(&mut s, b"l1 d7:command4:list5:limiti5000ee");
        assert!(r.len() <= MAX_REPLY, "{}", r.len());
        let v = body(&r);
        let n = v.get(b"calls").and_then(Value::as_list).unwrap().len();
        assert!(n > 1000 && n < 5000, "{n}");
        assert_eq!(v.get(b"result"), Some(&Value::Bytes(b"ok")));
        // Default limit of 32.
        let v = ask(&mut s, b"l2 d7:command4:liste");
        assert_eq!(
            body(&v)
                .get(b"calls")
                .and_then(Value::as_list)
                .unwrap()
                .len(),
            32
        );

        // A cookie so long that even an error reply would not fit: dropped.
        let mut huge = vec![b'k'; 65_000];
        huge.extend_from_slice(b" d7:command4:pinge");
        assert_eq!(s.handle_datagram(&huge, at(Instant::now(), 0)), None);

        calls.lock().unwrap().sdp_size = 70_000;
        let r = ask(
            &mut s,
            b"big d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
        );
        assert_eq!(
            r,
            b"big d6:result5:error12:error-reason34:Reply too large for a UDP datagrame".to_vec()
        );
    }

    #[test]
    fn statistics_counts_commands_per_proxy() {
        let (mut s, calls) = server();
        calls.lock().unwrap().stats = EngineStatistics {
            uptime_secs: 5,
            calls_current: 1,
            packets: PacketTotals {
                rtp_packets: 100,
                rtp_bytes: 10_000,
                ..Default::default()
            },
            ..Default::default()
        };
        let t0 = Instant::now();
        let kam: IpAddr = "127.0.0.1".parse().unwrap();
        s.handle_datagram_from(b"a d7:command4:pinge", Some(kam), at(t0, 0));
        s.handle_datagram_from(
            b"b d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
            Some(kam),
            at(t0, 0),
        );
        s.handle_datagram_from(b"c d7:command5:offere", Some(kam), at(t0, 0));
        s.handle_datagram_from(b"d d7:command10:statisticse", Some(kam), at(t0, 0));
        calls.lock().unwrap().stats.packets.rtp_packets = 300;
        let r = s
            .handle_datagram_from(b"e d7:command10:statisticse", Some(kam), at(t0, 2))
            .unwrap();
        let v = body(&r);
        let st = v.get(b"statistics").unwrap();
        assert_eq!(
            st.get(b"currentstatistics")
                .and_then(|c| c.get(b"packetrate")),
            Some(&Value::Int(100))
        );
        let ctl = st.get(b"controlstatistics").unwrap();
        assert_eq!(ctl.get(b"totaloffercount"), Some(&Value::Int(2)));
        assert_eq!(ctl.get(b"totalpingcount"), Some(&Value::Int(1)));
        assert_eq!(ctl.get(b"totalstatistics"), Some(&Value::Int(2)));
        assert_eq!(ctl.get(b"totalerrorcount"), Some(&Value::Int(1)));
        let proxy = &ctl.get(b"proxies").and_then(Value::as_list).unwrap()[0];
        assert_eq!(proxy.get(b"proxy"), Some(&Value::Bytes(b"127.0.0.1")));
        assert_eq!(proxy.get(b"offercount"), Some(&Value::Int(2)));
    }

    /// A tiny deterministic PRNG (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Thousands of random and mutated datagrams: never a panic, and every reply is
    /// `cookie SP dictionary-with-result`.
    #[test]
    fn survives_random_and_mutated_input() {
        let mut seeds: Vec<Vec<u8>> = vec![
            b"c d7:command4:pinge".to_vec(),
            b"c d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:f5:flagsl13:trust-addresse7:replacel6:origine13:received-froml3:IP49:127.0.0.1e3:ICE6:removee".to_vec(),
            b"c d7:command6:answer3:sdp3:v=07:call-id12:call-plain-28:from-tag1:f6:to-tag1:t3:ICEl5:forceee".to_vec(),
            b"c d7:command6:delete7:call-id12:call-plain-25:flagsl5:fatal4:faste12:delete delayi0ee".to_vec(),
            b"c d7:command5:query7:call-id12:call-plain-2e".to_vec(),
            b"c d7:command4:list5:limit2:10e".to_vec(),
            b"c d7:command10:statisticse".to_vec(),
            br#"c {"command":"offer","sdp":"v=0","call-id":"c","from-tag":"f","flags":["SDES-off"],"ICE":"remove"}"#.to_vec(),
        ];
        let mut body = Vec::new();
        Encoder::new(&mut body).dict(|d| {
            d.str("command", "offer")
                .str("sdp", "v=0")
                .str("call-id", "k")
                .str("from-tag", "f");
            d.dict("codec", |c| {
                c.list("transcode", |l| {
                    l.str("PCMA").int(-1).dict(|_| {});
                });
            });
        });
        seeds.push([&b"c "[..], &body].concat());

        let (mut s, calls) = server();
        calls.lock().unwrap().list = vec!["a".into(), "b".into()];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let t0 = Instant::now();
        let alphabet = b"dlie0123456789:-_ {}[]\",ab";
        for i in 0..6000u64 {
            let mut d = if rng.below(5) == 0 {
                (0..rng.below(200))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<u8>>()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..=rng.below(4) {
                if d.is_empty() {
                    break;
                }
                let pos = rng.below(d.len());
                match rng.below(5) {
                    0 => d[pos] = rng.next() as u8,
                    1 => d[pos] = alphabet[rng.below(alphabet.len())],
                    2 => d.truncate(pos),
                    3 => d.insert(pos, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        let end = (pos + rng.below(8)).min(d.len());
                        d.drain(pos..end);
                    }
                }
            }
            // A fresh cookie each time so every datagram is really handled.
            let cookie = format!("f{i}");
            let datagram = match d.iter().position(|&b| b == b' ') {
                Some(sp) if rng.below(10) != 0 => [cookie.as_bytes(), &d[sp..]].concat(),
                _ => d,
            };
            let Some(reply) = s.handle_datagram(&datagram, at(t0, i / 100)) else {
                continue;
            };
            assert!(reply.len() <= MAX_REPLY);
            let (rc, rb) = request::split_datagram(&reply).expect("reply has a cookie");
            let (dc, _) = request::split_datagram(&datagram).unwrap();
            assert_eq!(rc, dc);
            if rb.first() == Some(&b'{') {
                let v: serde_json::Value = serde_json::from_slice(rb).expect("valid JSON reply");
                assert!(v.get("result").is_some());
            } else {
                let v = bencode::decode(rb).expect("valid bencode reply");
                assert!(
                    v.get(b"result").is_some(),
                    "{}",
                    String::from_utf8_lossy(rb)
                );
            }
        }
    }

    /// A media plane with no ports: enough to build the real `Calls` for type checks and for
    /// commands that do not reach it.
    struct NoPorts;
    impl MediaPlane for NoPorts {
        fn allocate_pair(&self, _interface: &Interface) -> Result<PortPair, PortError> {
            Err(PortError::Exhausted)
        }
        fn apply(&self, _plan: CallPlan) {}
        fn remove(&self, _call: CallKey) {}
        fn release(&self, _ports: &[PortKey]) {}
        fn totals(&self) -> PacketTotals {
            PacketTotals::default()
        }
    }

    fn real_server() -> NgServer {
        let calls = Calls::new(Arc::new(EngineConfig::default()), Arc::new(NoPorts));
        NgServer::new(Arc::new(Mutex::new(calls)))
    }

    #[test]
    fn works_with_the_real_calls_type() {
        let mut s = real_server();
        let r = s.handle_datagram(b"p d7:command4:pinge", now()).unwrap();
        assert_eq!(r, b"p d6:result4:ponge");
        let r = s.handle_datagram(b"q d7:command5:querye", now()).unwrap();
        assert_eq!(
            r,
            b"q d6:result5:error12:error-reason21:No call-id in messagee".to_vec()
        );
    }

    #[tokio::test]
    async fn udp_loop_answers_and_stops_on_shutdown() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(real_server().run(socket, async {
            let _ = stop_rx.await;
        }));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A cookie-less datagram gets no reply; the following ping still does.
        client.send_to(b"nocookiehere", addr).await.unwrap();
        client
            .send_to(b"5323_1 d7:command4:pinge", addr)
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert_eq!(&buf[..n], b"5323_1 d6:result4:ponge");
        stop_tx.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("loop stops")
            .unwrap();
        assert!(result.is_ok());
    }
}
