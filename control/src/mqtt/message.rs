//! The JSON objects published over MQTT, shaped as rtpengine publishes them (its
//! `--mqtt-publish-scope`): a `timestamp` in seconds, the `statistics` figures at the top
//! level, calls as `call_id` and `legs` (rtpengine's monologues) with their `medias`, and per
//! media the `ingress` counters with one entry per SSRC received.
//!
//! ngmedia counts per stream what it receives, so a media carries `ingress` only: what was
//! sent toward a party is the `ingress` of the party it came from. The per-second figures of
//! an SSRC are taken between two publications, as rtpengine takes them.

use std::collections::HashMap;
use std::time::Instant;

use ngmedia_engine::core::snapshot::{CallSnapshot, LegSnapshot, MediaSnapshot};
use serde_json::{json, Map, Value};

use crate::bencode::{self, Value as Bencode};

/// What one publication covers (`--mqtt-publish-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The statistics and every call, in one message.
    #[default]
    Global,
    /// The statistics alone.
    Summary,
    /// The statistics, and one message per call.
    Call,
    /// The statistics, and one message per media of a party.
    Media,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s.trim() {
            "global" => Scope::Global,
            "summary" => Scope::Summary,
            "call" => Scope::Call,
            "media" => Scope::Media,
            _ => return None,
        })
    }

    /// Whether the calls must be read for this scope.
    pub fn needs_calls(self) -> bool {
        self != Scope::Summary
    }
}

/// The previous figures of each SSRC, for its per-second rates.
#[derive(Debug, Default)]
pub struct SsrcRates {
    previous: HashMap<SsrcKey, Sample>,
    /// Keys seen in the current round; the others are forgotten at its end.
    seen: Vec<SsrcKey>,
}

type SsrcKey = (String, String, u32, u32);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    packets: u64,
    bytes: u64,
    lost: i64,
    lost_rtcp: i64,
    duplicates: u64,
}

impl SsrcRates {
    /// Forget SSRCs that were not published in the round that just ended.
    pub(crate) fn end_round(&mut self) {
        let seen: std::collections::HashSet<_> = self.seen.drain(..).collect();
        self.previous.retain(|k, _| seen.contains(k));
    }
}

/// The `statistics` reply (bencode, `{"statistics": {...}, "result": "ok"}`) as the members
/// of a JSON object: integers stay integers, figures rtpengine writes with decimals become
/// numbers, other strings stay strings.
pub fn statistics_members(reply: &[u8]) -> Map<String, Value> {
    let Ok(Bencode::Dict(top)) = bencode::decode(reply) else {
        return Map::new();
    };
    top.iter()
        .find(|(k, _)| *k == b"statistics")
        .and_then(|(_, v)| match to_json(v) {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

/// Members whose text stays text even when it looks like a number.
const TEXT_MEMBERS: [&[u8]; 3] = [b"name", b"address", b"tag"];

fn to_json(v: &Bencode<'_>) -> Value {
    match v {
        Bencode::Int(i) => json!(i),
        Bencode::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            if let Ok(i) = s.parse::<i64>() {
                json!(i)
            } else {
                match s.parse::<f64>() {
                    Ok(f) if s.contains('.') && f.is_finite() => json!(f),
                    _ => Value::String(s.into_owned()),
                }
            }
        }
        Bencode::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Bencode::Dict(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        Bencode::Bytes(b) if TEXT_MEMBERS.contains(k) => {
                            Value::String(String::from_utf8_lossy(b).into_owned())
                        }
                        _ => to_json(v),
                    };
                    (String::from_utf8_lossy(k).into_owned(), value)
                })
                .collect(),
        ),
    }
}

/// A message: `timestamp` and `members`.
pub fn message(timestamp: f64, members: Map<String, Value>) -> Value {
    let mut m = members;
    m.insert("timestamp".into(), json!(timestamp));
    Value::Object(m)
}

/// The summary, with `calls` for the global scope.
pub(crate) fn global(
    timestamp: f64,
    statistics: Map<String, Value>,
    calls: Option<&[CallSnapshot]>,
    rates: &mut SsrcRates,
    now: Instant,
) -> Value {
    let mut members = statistics;
    if let Some(calls) = calls {
        let list = calls
            .iter()
            .map(|c| Value::Object(call(c, rates, now)))
            .collect();
        members.insert("calls".into(), Value::Array(list));
    }
    message(timestamp, members)
}

/// `call_id` and `legs`, each with its `medias` (the call scope, and each call of the global
/// scope).
pub(crate) fn call(c: &CallSnapshot, rates: &mut SsrcRates, now: Instant) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("call_id".into(), json!(c.call_id));
    let legs = c
        .legs
        .iter()
        .map(|leg| {
            let mut l = leg_members(leg);
            let medias = leg
                .medias
                .iter()
                .map(|md| Value::Object(media(&c.call_id, leg, md, rates, now)))
                .collect();
            l.insert("medias".into(), Value::Array(medias));
            Value::Object(l)
        })
        .collect();
    m.insert("legs".into(), Value::Array(legs));
    m
}

/// One message per media of a party (the media scope).
pub(crate) fn media_messages(
    timestamp: f64,
    c: &CallSnapshot,
    rates: &mut SsrcRates,
    now: Instant,
) -> Vec<Value> {
    let mut out = Vec::new();
    for leg in &c.legs {
        for md in &leg.medias {
            let mut m = Map::new();
            m.insert("call_id".into(), json!(c.call_id));
            m.extend(leg_members(leg));
            m.extend(media(&c.call_id, leg, md, rates, now));
            out.push(message(timestamp, m));
        }
    }
    out
}

fn leg_members(leg: &LegSnapshot) -> Map<String, Value> {
    let mut m = Map::new();
    if !leg.tag.is_empty() {
        m.insert("tag".into(), json!(leg.tag));
    }
    if let Some(label) = leg.label.as_deref().filter(|l| !l.is_empty()) {
        m.insert("label".into(), json!(label));
    }
    m
}

fn media(
    call_id: &str,
    leg: &LegSnapshot,
    md: &MediaSnapshot,
    rates: &mut SsrcRates,
    now: Instant,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("media_index".into(), json!(md.index));
    m.insert("type".into(), json!(md.kind));
    m.insert("protocol".into(), json!(md.protocol));
    let has = |f| md.flags.contains(&f);
    let status = match (has("send"), has("recv")) {
        (true, true) => "sendrecv",
        (true, false) => "sendonly",
        (false, true) => "recvonly",
        (false, false) => "inactive",
    };
    m.insert("status".into(), json!(status));
    let rtp = md.streams.iter().find(|s| !s.rtcp);
    let mut ingress = Map::new();
    let mut ssrcs = Vec::new();
    if let Some(s) = rtp {
        ingress.insert("bytes".into(), json!(s.counters.bytes));
        ingress.insert("packets".into(), json!(s.counters.packets));
        ingress.insert("errors".into(), json!(s.counters.errors));
        if let Some(q) = &s.quality {
            if let Some(ssrc) = q.ssrc {
                let key = (call_id.to_owned(), leg.tag.clone(), md.index, ssrc);
                ssrcs.push(Value::Object(ssrc_members(
                    ssrc,
                    md,
                    s.counters.bytes,
                    q,
                    rates,
                    key,
                    now,
                )));
            }
        }
    }
    ingress.insert("SSRC".into(), Value::Array(ssrcs));
    m.insert("ingress".into(), Value::Object(ingress));
    if let Some(s) = rtp {
        m.insert("address".into(), json!(s.local.ip().to_string()));
        m.insert("port".into(), json!(s.local.port()));
        if let Some(ep) = s.endpoint {
            m.insert("endpoint_address".into(), json!(ep.ip().to_string()));
            m.insert("endpoint_port".into(), json!(ep.port()));
        }
    }
    if let Some(srtp) = &md.srtp {
        m.insert("crypto_suite".into(), json!(srtp.suite_out));
    }
    m.insert("transcoding".into(), json!(md.transcode.is_some()));
    m
}

fn ssrc_members(
    ssrc: u32,
    md: &MediaSnapshot,
    bytes: u64,
    q: &ngmedia_engine::core::quality::QualitySnapshot,
    rates: &mut SsrcRates,
    key: SsrcKey,
    now: Instant,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("SSRC".into(), json!(ssrc));
    if let Some(codec) = &md.codec {
        let mut parts = codec.split('/');
        m.insert("codec".into(), json!(parts.next().unwrap_or_default()));
        if let Some(rate) = parts.next().and_then(|r| r.parse::<u32>().ok()) {
            m.insert("clock_rate".into(), json!(rate));
        }
        if let Some(params) = parts.next() {
            m.insert("codec_params".into(), json!(params));
        }
    }
    let sample = Sample {
        at: now,
        packets: q.received,
        bytes,
        lost: q.lost,
        lost_rtcp: q.reported.map_or(0, |r| i64::from(r.cumulative_lost)),
        duplicates: q.duplicates,
    };
    let mut x = Map::new();
    x.insert("packets".into(), json!(sample.packets));
    x.insert("bytes".into(), json!(sample.bytes));
    x.insert("lost".into(), json!(sample.lost));
    x.insert("lost_rtcp".into(), json!(sample.lost_rtcp));
    x.insert("duplicates".into(), json!(sample.duplicates));
    if let Some(prev) = rates.previous.get(&key) {
        let secs = now.saturating_duration_since(prev.at).as_secs_f64();
        if secs > 0.0 {
            let per_sec = |d: f64| d / secs;
            x.insert(
                "packets_per_second".into(),
                json!(per_sec(sample.packets.saturating_sub(prev.packets) as f64)),
            );
            x.insert(
                "bytes_per_second".into(),
                json!(per_sec(sample.bytes.saturating_sub(prev.bytes) as f64)),
            );
            x.insert(
                "lost_per_second".into(),
                json!(per_sec((sample.lost - prev.lost) as f64)),
            );
            x.insert(
                "lost_rtcp_per_second".into(),
                json!(per_sec((sample.lost_rtcp - prev.lost_rtcp) as f64)),
            );
            x.insert(
                "duplicates_per_second".into(),
                json!(per_sec(
                    sample.duplicates.saturating_sub(prev.duplicates) as f64
                )),
            );
        }
    }
    if q.clock_rate > 0 {
        x.insert("jitter".into(), json!(f64::from(q.jitter_us) / 1000.0));
    }
    if let Some(mos) = q.mos.as_ref().filter(|m| m.samples > 0) {
        x.insert("MOS".into(), json!(f64::from(mos.average.mos_x100) / 100.0));
    }
    if let Some(rtt) = q.rtt_us {
        x.insert("RTT".into(), json!(f64::from(rtt) / 1000.0));
    }
    m.insert("metrics".into(), Value::Object(x));
    rates.seen.push(key.clone());
    rates.previous.insert(key, sample);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Encoder;

    #[test]
    fn scopes_parse_as_rtpengine_spells_them() {
        assert_eq!(Scope::parse("global"), Some(Scope::Global));
        assert_eq!(Scope::parse(" media"), Some(Scope::Media));
        assert_eq!(Scope::parse("summary"), Some(Scope::Summary));
        assert_eq!(Scope::parse("call"), Some(Scope::Call));
        assert_eq!(Scope::parse("calls"), None);
        assert!(!Scope::Summary.needs_calls() && Scope::Global.needs_calls());
    }

    #[test]
    fn statistics_become_top_level_members_with_numbers() {
        let mut out = Vec::new();
        Encoder::new(&mut out).dict(|d| {
            d.dict("statistics", |s| {
                s.dict("currentstatistics", |c| {
                    c.uint("sessionsown", 3)
                        .str("avgcallduration", "1.500000")
                        .str("avgofferrequestrate", "12");
                })
                .str("name", "1")
                .str("state", "ok");
            })
            .str("result", "ok");
        });
        let m = statistics_members(&out);
        assert_eq!(
            Value::Object(m.clone()),
            json!({
                "currentstatistics":
                    {"sessionsown": 3, "avgcallduration": 1.5, "avgofferrequestrate": 12},
                "name": "1",
                "state": "ok"
            })
        );
        assert_eq!(message(12.5, m)["timestamp"], 12.5);
        assert!(statistics_members(b"junk").is_empty());
    }
}
