//! Reply dictionaries in rtpengine's shape (rtpengine `control_ng.c`, `call_interfaces.c`
//! `ng_call_stats`), checked byte for byte against captures of rtpengine 10.5.
//!
//! Replies are written as bencode straight after the cookie. A JSON request gets the same
//! dictionary converted by [`bencode_to_json`], so both encodings share one writer and keep
//! rtpengine's key order (`sdp` before `result`, `result` last).

use std::net::SocketAddr;

use ngmedia_engine::core::calls::{DeleteReply, OfferAnswerReply};
use ngmedia_engine::core::quality::MosSample;
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics, LegSnapshot, StreamSnapshot};
use ngmedia_engine::core::stats::StreamCounters;

use super::request::CommandKind;
use super::server::ControlCounters;
use crate::bencode::{self, DictWriter, Encoder, Value};

/// `{result: error, error-reason}`: nothing else, as rtpengine.
pub fn write_error(out: &mut Vec<u8>, reason: &str) {
    Encoder::new(out).dict(|d| {
        d.str("result", "error").str("error-reason", reason);
    });
}

/// `{result: ok}`: commands that only report success (recording control).
pub fn write_ok(out: &mut Vec<u8>) {
    Encoder::new(out).dict(|d| {
        d.str("result", "ok");
    });
}

pub fn write_pong(out: &mut Vec<u8>) {
    Encoder::new(out).dict(|d| {
        d.str("result", "pong");
    });
}

/// `offer`/`answer`: `sdp`, then `warning` when there is one, then `result`.
pub fn write_offer_answer(out: &mut Vec<u8>, reply: &OfferAnswerReply) {
    Encoder::new(out).dict(|d| {
        d.str("sdp", &reply.sdp);
        if !reply.warnings.is_empty() {
            d.str("warning", &reply.warnings.join("; "));
        }
        d.str("result", "ok");
    });
}

/// `query`: the call's statistics, then `result`.
pub fn write_query(out: &mut Vec<u8>, call: &CallSnapshot) {
    Encoder::new(out).dict(|d| {
        write_call_stats(d, call);
        d.str("result", "ok");
    });
}

/// `delete`: the final statistics when the call was found; `warning` when it was not.
pub fn write_delete(out: &mut Vec<u8>, reply: &DeleteReply) {
    Encoder::new(out).dict(|d| {
        if let Some(call) = &reply.snapshot {
            write_call_stats(d, call);
        }
        if let Some(w) = &reply.warning {
            d.str("warning", w);
        }
        d.str("result", "ok");
    });
}

/// `list`: `calls` then `result`.
pub fn write_list(out: &mut Vec<u8>, calls: &[String]) {
    Encoder::new(out).dict(|d| {
        d.list("calls", |l| {
            for c in calls {
                l.str(c);
            }
        });
        d.str("result", "ok");
    });
}

/// Per-second rates for `currentstatistics`, measured by the caller between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// rtpengine's per-proxy counter name for a command (`statistics` → `controlstatistics`).
/// Commands rtpengine has no counter for return `None` and are only counted internally.
pub fn stat_name(kind: CommandKind) -> Option<&'static str> {
    Some(match kind {
        CommandKind::Ping => "pingcount",
        CommandKind::Offer => "offercount",
        CommandKind::Answer => "answercount",
        CommandKind::Delete => "deletecount",
        CommandKind::Query => "querycount",
        CommandKind::List => "listcount",
        CommandKind::StartRecording => "startreccount",
        CommandKind::StopRecording => "stopreccount",
        CommandKind::StartForwarding => "startfwdcount",
        CommandKind::StopForwarding => "stopfwdcount",
        CommandKind::BlockDtmf => "blkdtmfcount",
        CommandKind::UnblockDtmf => "unblkdtmfcount",
        CommandKind::BlockMedia => "blkmedia",
        CommandKind::UnblockMedia => "unblkmedia",
        CommandKind::PlayMedia => "playmedia",
        CommandKind::StopMedia => "stopmedia",
        CommandKind::PlayDtmf => "playdtmf",
        CommandKind::Statistics => "statistics",
        _ => return None,
    })
}

/// `statistics` (rtpengine's `list jsonstats` content). Only figures the engine really has
/// are reported: keys for things it cannot know yet (transcoded media, per-kind timeouts,
/// interval statistics, average call duration) are left out rather than filled with zeros;
/// foreign and rejected sessions are reported as the zero they truly are (no Redis peers, no
/// load limits).
pub fn write_statistics(
    out: &mut Vec<u8>,
    engine: &EngineStatistics,
    control: &ControlCounters,
    rates: Rates,
) {
    let p = &engine.packets;
    let drops: u64 = p.drops.iter().sum();
    Encoder::new(out).dict(|d| {
        d.dict("statistics", |s| {
            s.dict("currentstatistics", |c| {
                c.uint("sessionsown", engine.calls_current)
                    .uint("sessionsforeign", 0)
                    .uint("sessionstotal", engine.calls_current)
                    .uint("packetrate", rates.packets)
                    .uint("byterate", rates.bytes)
                    .uint("errorrate", rates.errors);
            });
            s.dict("totalstatistics", |t| {
                // rtpengine sends uptime as a string.
                t.str("uptime", &engine.uptime_secs.to_string())
                    .uint("managedsessions", engine.calls_total)
                    .uint("rejectedsessions", 0)
                    .uint("timeoutsessions", engine.calls_timed_out)
                    .uint("regularterminatedsessions", engine.calls_deleted)
                    .uint("relayedpackets", p.relayed_packets)
                    .uint("relayedpacketerrors", drops)
                    // Bytes received on relayed streams, RTP and RTCP.
                    .uint("relayedbytes", p.rtp_bytes.saturating_add(p.rtcp_bytes));
            });
            s.dict("controlstatistics", |c| {
                c.list("proxies", |l| {
                    for proxy in control.proxies() {
                        l.dict(|pd| {
                            pd.str("proxy", &proxy.address.to_string());
                            for kind in CommandKind::ALL {
                                if let Some(name) = stat_name(kind) {
                                    pd.uint(name, proxy.commands[kind.index()]);
                                }
                            }
                            pd.uint("errorcount", proxy.errors);
                        });
                    }
                });
                for kind in CommandKind::ALL {
                    if let Some(name) = stat_name(kind) {
                        c.uint(&format!("total{name}"), control.command_count(kind));
                    }
                }
                c.uint("totalerrorcount", control.errors());
            });
        });
        d.str("result", "ok");
    });
}

fn family(addr: &SocketAddr) -> &'static str {
    match addr {
        SocketAddr::V4(_) => "IPv4",
        SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => "IPv4",
        SocketAddr::V6(_) => "IPv6",
    }
}

fn ip_string(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => a.ip().to_string(),
        },
        SocketAddr::V4(a) => a.ip().to_string(),
    }
}

/// `{family, address, port}`, or an empty dictionary when unknown (as rtpengine).
fn write_endpoint(d: &mut DictWriter<'_>, key: &str, addr: Option<&SocketAddr>) {
    d.dict(key, |e| {
        if let Some(a) = addr {
            e.str("family", family(a))
                .str("address", &ip_string(a))
                .uint("port", u64::from(a.port()));
        }
    });
}

fn write_counters(d: &mut DictWriter<'_>, key: &str, packets: u64, bytes: u64, errors: u64) {
    d.dict(key, |s| {
        s.uint("packets", packets)
            .uint("bytes", bytes)
            .uint("errors", errors);
    });
}

/// The body of `query` and `delete` replies (rtpengine `ng_call_stats`), before `result`.
pub fn write_call_stats(d: &mut DictWriter<'_>, call: &CallSnapshot) {
    let created = call.created_us / 1_000_000;
    d.uint("created", created)
        .uint("created_us", call.created_us % 1_000_000)
        .uint("last signal", call.last_signal)
        .dict("SSRC", |d| write_ssrcs(d, call));
    d.dict("tags", |tags| {
        for leg in &call.legs {
            tags.dict(&leg.key, |l| write_leg(l, leg, created));
        }
    });
    d.dict("totals", |t| {
        let (r, c): (&StreamCounters, &StreamCounters) = (&call.totals_rtp, &call.totals_rtcp);
        write_counters(t, "RTP", r.packets, r.bytes, r.errors);
        write_counters(t, "RTCP", c.packets, c.bytes, c.errors);
    });
}

/// rtpengine's per-SSRC statistics (`ng_stats_ssrc`): keyed by the SSRC in decimal, with
/// MOS × 10, round-trip time in µs, jitter in ms and packet loss in percent. One entry per
/// source we receive; a source without MOS samples gets an empty dictionary, as there.
fn write_ssrcs(d: &mut DictWriter<'_>, call: &CallSnapshot) {
    let mut seen: Vec<u32> = Vec::new();
    let streams = call
        .legs
        .iter()
        .flat_map(|l| l.medias.iter())
        .flat_map(|m| m.streams.iter());
    for s in streams {
        let Some(q) = &s.quality else { continue };
        let Some(ssrc) = q.ssrc else { continue };
        if seen.contains(&ssrc) {
            continue;
        }
        seen.push(ssrc);
        d.dict(&ssrc.to_string(), |e| {
            let Some(mos) = &q.mos else { return };
            e.int("cumulative loss", q.lost);
            let entry = |e: &mut DictWriter<'_>, key: &str, m: &MosSample, last: Option<u64>| {
                e.dict(key, |x| {
                    x.uint("MOS", u64::from((m.mos_x100 + 5) / 10))
                        .uint("round-trip time", u64::from(m.rtt_us))
                        .uint("round-trip time leg", u64::from(m.rtt_us))
                        .uint("jitter", u64::from(m.jitter_us / 1000))
                        .uint("packet loss", u64::from((m.loss_x100 + 50) / 100));
                    match last {
                        Some(samples) => x.uint("samples", samples),
                        None => x.uint("reported at", m.reported_at),
                    };
                });
            };
            entry(e, "average MOS", &mos.average, Some(mos.samples));
            entry(e, "lowest MOS", &mos.lowest, None);
            entry(e, "highest MOS", &mos.highest, None);
        });
    }
}

fn write_leg(l: &mut DictWriter<'_>, leg: &LegSnapshot, call_created: u64) {
    l.str("tag", &leg.tag);
    if let Some(label) = &leg.label {
        l.str("label", label);
    }
    if let Some(branch) = &leg.via_branch {
        l.str("via-branch", branch);
    }
    l.uint("created", leg.created);
    // Plain offer/answer legs subscribe to each other both ways.
    for key in ["subscriptions", "subscribers"] {
        l.list(key, |s| {
            for peer in &leg.peers {
                s.dict(|p| {
                    p.str("tag", peer).str("type", "offer/answer");
                });
            }
        });
    }
    l.list("medias", |ms| {
        for media in &leg.medias {
            ms.dict(|m| {
                m.uint("index", u64::from(media.index))
                    .str("type", &media.kind)
                    .str("protocol", &media.protocol);
                if let Some(codec) = &media.codec {
                    m.str("codec", codec);
                }
                let suite = media.srtp.as_ref().map(|s| s.suite_out);
                m.list("streams", |ss| {
                    for stream in &media.streams {
                        ss.dict(|s| write_stream(s, stream, suite, call_created));
                    }
                });
                m.list("flags", |f| {
                    for flag in &media.flags {
                        f.str(flag);
                    }
                });
            });
        }
    });
}

fn write_stream(
    s: &mut DictWriter<'_>,
    stream: &StreamSnapshot,
    crypto_suite: Option<&str>,
    call_created: u64,
) {
    let c = &stream.counters;
    // rtpengine starts `last packet` at the stream's creation; we report the call's.
    let last_packet = if c.last_packet_ms == 0 {
        call_created
    } else {
        c.last_packet_ms / 1000
    };
    s.uint("local port", u64::from(stream.local.port()))
        .str("local address", &ip_string(&stream.local))
        .str("family", family(&stream.local));
    write_endpoint(s, "endpoint", stream.endpoint.as_ref());
    write_endpoint(s, "advertised endpoint", stream.advertised.as_ref());
    if let Some(suite) = crypto_suite {
        s.str("crypto suite", suite);
    }
    s.uint("last packet", last_packet);
    s.list("flags", |f| {
        for flag in &stream.flags {
            f.str(flag);
        }
    });
    if let Some(ssrc) = stream.last_ssrc {
        s.uint("SSRC", u64::from(ssrc));
    }
    write_counters(s, "stats", c.packets, c.bytes, c.errors);
}

/// Re-encode a bencode reply as a JSON object, keeping key order. Byte strings that are not
/// UTF-8 are converted lossily (JSON strings cannot carry raw bytes).
pub fn bencode_to_json(reply: &[u8]) -> Option<Vec<u8>> {
    let value = bencode::decode(reply).ok()?;
    let mut out = Vec::with_capacity(reply.len() + reply.len() / 8);
    write_json(&mut out, &value);
    Some(out)
}

fn write_json(out: &mut Vec<u8>, v: &Value<'_>) {
    fn string(out: &mut Vec<u8>, b: &[u8]) {
        // Serialising a &str to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b));
    }
    match v {
        Value::Bytes(b) => string(out, b),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::List(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Dict(entries) => {
            out.push(b'{');
            for (n, (k, item)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                string(out, k);
                out.push(b':');
                write_json(out, item);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ngmedia_engine::core::snapshot::MediaSnapshot;
    use ngmedia_engine::core::stats::PacketTotals;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn stream(
        local: &str,
        ep: Option<&str>,
        rtcp: bool,
        flags: Vec<&'static str>,
        ssrc: Option<u32>,
        packets: u64,
        bytes: u64,
        last_ms: u64,
    ) -> StreamSnapshot {
        StreamSnapshot {
            local: sa(local),
            endpoint: ep.map(sa),
            advertised: ep.map(sa),
            rtcp,
            flags,
            last_ssrc: ssrc,
            counters: StreamCounters {
                packets,
                bytes,
                last_packet_ms: last_ms,
                ..Default::default()
            },
            quality: None,
        }
    }

    fn leg(
        tag: &str,
        branch: Option<&str>,
        peer: &str,
        codec: Option<&str>,
        streams: Vec<StreamSnapshot>,
        flags: Vec<&'static str>,
        created: u64,
    ) -> LegSnapshot {
        LegSnapshot {
            tag: tag.into(),
            key: if tag.is_empty() {
                "<untagged 1>".into()
            } else {
                tag.into()
            },
            label: None,
            via_branch: branch.map(Into::into),
            created,
            peers: vec![peer.into()],
            medias: vec![MediaSnapshot {
                index: 1,
                kind: "audio".into(),
                protocol: "RTP/AVP".into(),
                codec: codec.map(Into::into),
                flags,
                streams,
                codecs: codec.map(|c| vec![c.to_owned()]).unwrap_or_default(),
                transcode: None,
                srtp: None,
                ice: None,
            }],
        }
    }

    /// The call of captures/ex2.out after 10 packets each way.
    pub(crate) fn ex2_snapshot() -> CallSnapshot {
        let t = 1795300564;
        let ms = t * 1000 + 500;
        let f = |rtcp| {
            if rtcp {
                vec!["RTCP", "filled"]
            } else {
                vec!["RTP", "filled"]
            }
        };
        CallSnapshot {
            call_id: "call-plain-2".into(),
            created_us: t * 1_000_000 + 312128,
            last_signal: t,
            legs: vec![
                leg(
                    "tagA",
                    None,
                    "tagB",
                    Some("PCMU/8000"),
                    vec![
                        stream(
                            "127.0.0.1:30046",
                            Some("127.0.0.2:40000"),
                            false,
                            f(false),
                            Some(286331153),
                            10,
                            1720,
                            ms,
                        ),
                        stream(
                            "127.0.0.1:30047",
                            Some("127.0.0.2:40001"),
                            true,
                            f(true),
                            None,
                            0,
                            0,
                            0,
                        ),
                    ],
                    vec!["initialized", "send", "recv"],
                    t,
                ),
                leg(
                    "tagB",
                    Some("z9hG4bK-2"),
                    "tagA",
                    Some("PCMU/8000"),
                    vec![
                        stream(
                            "127.0.0.1:30030",
                            Some("127.0.0.3:40010"),
                            false,
                            f(false),
                            Some(572662306),
                            10,
                            1720,
                            ms,
                        ),
                        stream(
                            "127.0.0.1:30031",
                            Some("127.0.0.3:40011"),
                            true,
                            f(true),
                            None,
                            0,
                            0,
                            0,
                        ),
                    ],
                    vec!["initialized", "send", "recv", "ICE controlling"],
                    t,
                ),
            ],
            totals_rtp: StreamCounters {
                packets: 20,
                bytes: 3440,
                ..Default::default()
            },
            totals_rtcp: StreamCounters::default(),
        }
    }

    /// captures/ex2.out, `8f1a2b_3` query reply body, byte for byte.
    pub(crate) const EX2_QUERY: &[u8] = b"d7:createdi1795300564e10:created_usi312128e11:last signali1795300564e4:SSRCde4:tagsd4:tagAd3:tag4:tagA7:createdi1795300564e13:subscriptionsld3:tag4:tagB4:type12:offer/answeree11:subscribersld3:tag4:tagB4:type12:offer/answeree6:mediasld5:indexi1e4:type5:audio8:protocol7:RTP/AVP5:codec9:PCMU/80007:streamsld10:local porti30046e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.24:porti40000ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.24:porti40000ee11:last packeti1795300564e5:flagsl3:RTP6:fillede4:SSRCi286331153e5:statsd7:packetsi10e5:bytesi1720e6:errorsi0eeed10:local porti30047e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.24:porti40001ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.24:porti40001ee11:last packeti1795300564e5:flagsl4:RTCP6:fillede5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeee5:flagsl11:initialized4:send4:recveeee4:tagBd3:tag4:tagB10:via-branch9:z9hG4bK-27:createdi1795300564e13:subscriptionsld3:tag4:tagA4:type12:offer/answeree11:subscribersld3:tag4:tagA4:type12:offer/answeree6:mediasld5:indexi1e4:type5:audio8:protocol7:RTP/AVP5:codec9:PCMU/80007:streamsld10:local porti30030e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.34:porti40010ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.34:porti40010ee11:last packeti1795300564e5:flagsl3:RTP6:fillede4:SSRCi572662306e5:statsd7:packetsi10e5:bytesi1720e6:errorsi0eeed10:local porti30031e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.34:porti40011ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.34:porti40011ee11:last packeti1795300564e5:flagsl4:RTCP6:fillede5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeee5:flagsl11:initialized4:send4:recv15:ICE controllingeeeee6:totalsd3:RTPd7:packetsi20e5:bytesi3440e6:errorsi0ee4:RTCPd7:packetsi0e5:bytesi0e6:errorsi0eee6:result2:oke";

    #[test]
    fn query_reply_matches_capture() {
        let mut out = Vec::new();
        write_query(&mut out, &ex2_snapshot());
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(EX2_QUERY)
        );
    }

    #[test]
    fn ssrc_dict_in_rtpengine_units() {
        use ngmedia_engine::core::quality::{MosSummary, QualitySnapshot};
        let mut call = ex2_snapshot();
        let sample = |mos_x100, loss_x100, at| MosSample {
            mos_x100,
            loss_x100,
            jitter_us: 2_600,
            rtt_us: 40_000,
            reported_at: at,
        };
        call.legs[0].medias[0].streams[0].quality = Some(QualitySnapshot {
            ssrc: Some(286331153),
            expected: 100,
            received: 90,
            lost: 10,
            mos: Some(MosSummary {
                samples: 3,
                average: sample(366, 640, 7),
                lowest: sample(339, 1000, 1795300566),
                highest: sample(441, 0, 1795300568),
            }),
            ..Default::default()
        });
        // The peer's stream has a source but no samples yet: an empty dictionary.
        call.legs[1].medias[0].streams[0].quality = Some(QualitySnapshot {
            ssrc: Some(572662306),
            ..Default::default()
        });
        let mut out = Vec::new();
        write_query(&mut out, &call);
        let text = String::from_utf8_lossy(&out);
        let want = "4:SSRCd9:286331153d15:cumulative lossi10e11:average MOSd3:MOSi37e\
            15:round-trip timei40000e19:round-trip time legi40000e6:jitteri2e\
            11:packet lossi6e7:samplesi3ee10:lowest MOSd3:MOSi34e15:round-trip timei40000e\
            19:round-trip time legi40000e6:jitteri2e11:packet lossi10e11:reported at\
            i1795300566ee11:highest MOSd3:MOSi44e15:round-trip timei40000e\
            19:round-trip time legi40000e6:jitteri2e11:packet lossi0e11:reported at\
            i1795300568eee9:572662306dee4:tags";
        assert!(text.contains(want), "{text}");
    }

    /// captures/kamailio-5.6-to-rtpengine.log, `0_14610_5`: delete of an offered-only call with
    /// a label and an untagged peer whose endpoint is not known yet.
    #[test]
    fn delete_reply_matches_kamailio_capture() {
        const EXPECTED: &[u8] = b"d7:createdi1795300597e10:created_usi41874e11:last signali1795300597e4:SSRCde4:tagsd8:fromtag1d3:tag8:fromtag15:label6:caller7:createdi1795300597e13:subscriptionsld3:tag0:4:type12:offer/answeree11:subscribersld3:tag0:4:type12:offer/answeree6:mediasld5:indexi1e4:type5:audio8:protocol7:RTP/AVP7:streamsld10:local porti30264e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.24:porti41000ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.24:porti41000ee11:last packeti1795300597e5:flagsl3:RTP6:fillede5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeed10:local porti30265e13:local address9:127.0.0.16:family4:IPv48:endpointd6:family4:IPv47:address9:127.0.0.24:porti41001ee19:advertised endpointd6:family4:IPv47:address9:127.0.0.24:porti41001ee11:last packeti1795300597e5:flagsl4:RTCP6:fillede5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeee5:flagsl11:initialized4:send4:recveeee12:<untagged 1>d3:tag0:10:via-branch18:z9hG4bK-kam-INVITE7:createdi1795300597e13:subscriptionsld3:tag8:fromtag14:type12:offer/answeree11:subscribersld3:tag8:fromtag14:type12:offer/answeree6:mediasld5:indexi1e4:type5:audio8:protocol7:RTP/AVP7:streamsld10:local porti30244e13:local address9:127.0.0.16:family4:IPv48:endpointde19:advertised endpointde11:last packeti1795300597e5:flagsl3:RTPe5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeed10:local porti30245e13:local address9:127.0.0.16:family4:IPv48:endpointde19:advertised endpointde11:last packeti1795300597e5:flagsl4:RTCPe5:statsd7:packetsi0e5:bytesi0e6:errorsi0eeee5:flagsl4:send4:recv15:ICE controllingeeeee6:totalsd3:RTPd7:packetsi0e5:bytesi0e6:errorsi0ee4:RTCPd7:packetsi0e5:bytesi0e6:errorsi0eee6:result2:oke";
        let t = 1795300597;
        let mut caller = leg(
            "fromtag1",
            None,
            "",
            None,
            vec![
                stream(
                    "127.0.0.1:30264",
                    Some("127.0.0.2:41000"),
                    false,
                    vec!["RTP", "filled"],
                    None,
                    0,
                    0,
                    0,
                ),
                stream(
                    "127.0.0.1:30265",
                    Some("127.0.0.2:41001"),
                    true,
                    vec!["RTCP", "filled"],
                    None,
                    0,
                    0,
                    0,
                ),
            ],
            vec!["initialized", "send", "recv"],
            t,
        );
        caller.label = Some("caller".into());
        let callee = leg(
            "",
            Some("z9hG4bK-kam-INVITE"),
            "fromtag1",
            None,
            vec![
                stream("127.0.0.1:30244", None, false, vec!["RTP"], None, 0, 0, 0),
                stream("127.0.0.1:30245", None, true, vec!["RTCP"], None, 0, 0, 0),
            ],
            vec!["send", "recv", "ICE controlling"],
            t,
        );
        let call = CallSnapshot {
            call_id: "kamcall-1@127.0.0.1".into(),
            created_us: t * 1_000_000 + 41874,
            last_signal: t,
            legs: vec![caller, callee],
            totals_rtp: StreamCounters::default(),
            totals_rtcp: StreamCounters::default(),
        };
        let mut out = Vec::new();
        write_delete(
            &mut out,
            &DeleteReply {
                snapshot: Some(call),
                warning: None,
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(EXPECTED)
        );
    }

    /// captures/ex3.out and ex1.out: fixed replies.
    #[test]
    fn simple_replies_match_captures() {
        let mut out = Vec::new();
        write_delete(
            &mut out,
            &DeleteReply {
                snapshot: None,
                warning: Some("Call-ID not found or tags didn't match".into()),
            },
        );
        assert_eq!(
            out,
            b"d7:warning38:Call-ID not found or tags didn't match6:result2:oke"
        );

        out.clear();
        write_error(&mut out, "Call-ID not found or tags didn't match");
        assert_eq!(
            out,
            b"d6:result5:error12:error-reason38:Call-ID not found or tags didn't matche"
        );

        out.clear();
        write_error(&mut out, "Unknown call-id");
        assert_eq!(out, b"d6:result5:error12:error-reason15:Unknown call-ide");

        out.clear();
        write_pong(&mut out);
        assert_eq!(out, b"d6:result4:ponge");

        out.clear();
        let sdp = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30012 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=rtcp:30013\r\n";
        write_offer_answer(
            &mut out,
            &OfferAnswerReply {
                sdp: sdp.into(),
                warnings: vec![],
            },
        );
        assert_eq!(out, format!("d3:sdp194:{sdp}6:result2:oke").into_bytes());

        out.clear();
        write_offer_answer(
            &mut out,
            &OfferAnswerReply {
                sdp: "v=0\r\n".into(),
                warnings: vec!["a".into(), "b".into()],
            },
        );
        assert_eq!(out, b"d3:sdp5:v=0\r\n7:warning4:a; b6:result2:oke");

        out.clear();
        write_list(&mut out, &["call-plain-2".into(), "call-plain-1".into()]);
        assert_eq!(
            out,
            b"d5:callsl12:call-plain-212:call-plain-1e6:result2:oke"
        );
    }

    #[test]
    fn ipv6_and_mapped_endpoints() {
        let mut out = Vec::new();
        Encoder::new(&mut out).dict(|d| {
            write_stream(
                d,
                &stream(
                    "[::1]:30000",
                    Some("[::ffff:192.0.2.1]:5004"),
                    false,
                    vec![],
                    None,
                    0,
                    0,
                    1_234_567,
                ),
                None,
                0,
            );
        });
        let v = bencode::decode(&out).unwrap();
        assert_eq!(v.get(b"family").and_then(Value::as_str), Some("IPv6"));
        assert_eq!(v.get(b"local address").and_then(Value::as_str), Some("::1"));
        let ep = v.get(b"endpoint").unwrap();
        assert_eq!(ep.get(b"family").and_then(Value::as_str), Some("IPv4"));
        assert_eq!(
            ep.get(b"address").and_then(Value::as_str),
            Some("192.0.2.1")
        );
        assert_eq!(v.get(b"last packet"), Some(&Value::Int(1234)));
    }

    #[test]
    fn statistics_shape() {
        let engine = EngineStatistics {
            uptime_secs: 18,
            calls_current: 2,
            calls_total: 7,
            calls_timed_out: 1,
            calls_deleted: 4,
            ports_in_use: 8,
            ports_total: 5000,
            packets: PacketTotals {
                rtp_packets: 100,
                rtp_bytes: 17200,
                rtcp_packets: 2,
                rtcp_bytes: 112,
                relayed_packets: 99,
                drops: [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut control = ControlCounters::default();
        let proxy = "127.0.0.1".parse().unwrap();
        control.count(Some(proxy), CommandKind::Offer);
        control.count(Some(proxy), CommandKind::Offer);
        control.count(Some(proxy), CommandKind::Ping);
        control.count_error(Some(proxy));
        let mut out = Vec::new();
        write_statistics(
            &mut out,
            &engine,
            &control,
            Rates {
                packets: 50,
                bytes: 8600,
                errors: 0,
            },
        );
        let v = bencode::decode(&out).unwrap();
        assert_eq!(v.get(b"result").and_then(Value::as_str), Some("ok"));
        let s = v.get(b"statistics").unwrap();
        let cur = s.get(b"currentstatistics").unwrap();
        assert_eq!(cur.get(b"sessionsown"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"sessionstotal"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"packetrate"), Some(&Value::Int(50)));
        let tot = s.get(b"totalstatistics").unwrap();
        assert_eq!(tot.get(b"uptime"), Some(&Value::Bytes(b"18")));
        assert_eq!(tot.get(b"managedsessions"), Some(&Value::Int(7)));
        assert_eq!(tot.get(b"timeoutsessions"), Some(&Value::Int(1)));
        assert_eq!(tot.get(b"regularterminatedsessions"), Some(&Value::Int(4)));
        assert_eq!(tot.get(b"relayedpackets"), Some(&Value::Int(99)));
        assert_eq!(tot.get(b"relayedpacketerrors"), Some(&Value::Int(3)));
        let ctl = s.get(b"controlstatistics").unwrap();
        assert_eq!(ctl.get(b"totaloffercount"), Some(&Value::Int(2)));
        assert_eq!(ctl.get(b"totalpingcount"), Some(&Value::Int(1)));
        assert_eq!(ctl.get(b"totalerrorcount"), Some(&Value::Int(1)));
        let proxies = ctl.get(b"proxies").and_then(Value::as_list).unwrap();
        assert_eq!(proxies.len(), 1);
        assert_eq!(
            proxies[0].get(b"proxy").and_then(Value::as_str),
            Some("127.0.0.1")
        );
        assert_eq!(proxies[0].get(b"offercount"), Some(&Value::Int(2)));
        assert_eq!(proxies[0].get(b"errorcount"), Some(&Value::Int(1)));
        // rtpengine's order inside a proxy entry.
        let keys: Vec<&[u8]> = proxies[0]
            .as_dict()
            .unwrap()
            .iter()
            .map(|(k, _)| *k)
            .take(4)
            .collect();
        assert_eq!(
            keys,
            vec![&b"proxy"[..], b"pingcount", b"offercount", b"answercount"]
        );
    }

    #[test]
    fn json_conversion_keeps_order() {
        let mut out = Vec::new();
        write_offer_answer(
            &mut out,
            &OfferAnswerReply {
                sdp: "v=0\r\n\"x\"".into(),
                warnings: vec![],
            },
        );
        assert_eq!(
            bencode_to_json(&out).unwrap(),
            br#"{"sdp":"v=0\r\n\"x\"","result":"ok"}"#.to_vec()
        );
        out.clear();
        write_pong(&mut out);
        assert_eq!(
            bencode_to_json(&out).unwrap(),
            br#"{"result":"pong"}"#.to_vec()
        );
        let ex2 = bencode_to_json(EX2_QUERY).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&ex2).unwrap();
        assert_eq!(
            parsed["tags"]["tagB"]["medias"][0]["streams"][0]["SSRC"],
            572662306
        );
        assert_eq!(parsed["totals"]["RTP"]["bytes"], 3440);
        assert!(String::from_utf8(ex2)
            .unwrap()
            .starts_with(r#"{"created":1795300564,"created_us":312128,"#));
    }
}
