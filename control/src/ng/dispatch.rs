//! The ng command dispatch, sans IO (rtpengine `control_ng.c`, `control_ng_process`, and
//! `call_interfaces.c`): one request body in, one reply body out. It decodes the body
//! (bencode or JSON), parses the command, applies the load limits, runs it on the call
//! registry ([`CallControl`]), writes rtpengine's reply shape in the request's encoding and
//! bounds it to one datagram, counting and timing each command on the way. Framing, the
//! cookie cache and the sockets are the transport loop's (`server`).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ngmedia_engine::core::calls::{Now, OfferAnswerReply};
use ngmedia_engine::core::snapshot::EngineStatistics;
use ngmedia_engine::sync::lock;
use tracing::{debug, info, warn};

use super::counters::ControlCounters;
use super::metrics::{NgMetrics, NgResult};
use super::reply::{self, Rates};
use super::request::{self, Command, CommandKind, Encoding, NgRequest};
use super::{NgError, Pii};
use crate::bencode::Value;
use crate::call_control::CallControl;
use crate::load_limits::{LoadLimit, LoadLimits};

/// Largest reply we send. An IPv4 UDP datagram carries at most 65507 bytes; staying below
/// 65000 leaves room for IPv6 extension headers, and Kamailio reads replies into 256 KiB.
pub(crate) const MAX_REPLY: usize = 65_000;

/// Distinct "not supported yet" names logged once per process; beyond this they are not logged.
const MAX_LOGGED_UNSUPPORTED: usize = 1024;

/// Packet totals at the previous `statistics` request, to report per-second rates.
struct RateSample {
    at: Instant,
    packets: u64,
    bytes: u64,
    errors: u64,
    call_seconds: f64,
    sessions: u64,
}

/// Executes ng requests on the call registry; the server's half that knows the commands.
pub(crate) struct Dispatcher<E: CallControl> {
    calls: Arc<Mutex<E>>,
    counters: ControlCounters,
    rate_sample: Option<RateSample>,
    /// The rates' previous sample of [`NgHandle::statistics`](super::NgHandle::statistics).
    published_rate_sample: Option<RateSample>,
    logged_unsupported: HashSet<String>,
    metrics: Arc<NgMetrics>,
    limits: Arc<LoadLimits>,
    /// `--webhook-url`: call started/answered/ended.
    events: Option<Arc<crate::events::Events>>,
}

impl<E: CallControl> Dispatcher<E> {
    pub(crate) fn new(calls: Arc<Mutex<E>>) -> Dispatcher<E> {
        Dispatcher {
            calls,
            counters: ControlCounters::default(),
            rate_sample: None,
            published_rate_sample: None,
            logged_unsupported: HashSet::new(),
            metrics: Arc::default(),
            limits: Arc::default(),
            events: None,
        }
    }

    /// Report call starts, answers and ends to the webhook (`--webhook-url`).
    pub(crate) fn set_events(&mut self, events: Option<Arc<crate::events::Events>>) {
        self.events = events;
    }

    /// Refuse offers of new calls beyond these limits (default: none).
    pub(crate) fn set_load_limits(&mut self, limits: Arc<LoadLimits>) {
        self.limits = limits;
    }

    /// Request counters and latencies, shared with the transport loop and the HTTP API.
    pub(crate) fn metrics(&self) -> &Arc<NgMetrics> {
        &self.metrics
    }

    pub(crate) fn counters(&self) -> &ControlCounters {
        &self.counters
    }

    pub(crate) fn counters_mut(&mut self) -> &mut ControlCounters {
        &mut self.counters
    }

    /// Execute `body` and append the reply to `out` (empty, or the cookie and a space).
    pub(crate) fn respond(
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
                self.counters.count_dropped();
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
        if let Some(proxy) = from.and_then(|a| self.counters.proxy_at(a)) {
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
    pub(crate) fn published_statistics(&mut self, now: Now) -> Vec<u8> {
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
