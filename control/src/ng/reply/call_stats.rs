//! The body of `query` and `delete` replies (rtpengine `ng_call_stats`): per-SSRC quality,
//! legs, medias, streams and totals.

use std::net::SocketAddr;

use ngmedia_engine::core::quality::MosSample;
use ngmedia_engine::core::snapshot::{CallSnapshot, LegSnapshot, StreamSnapshot};
use ngmedia_engine::core::stats::StreamCounters;

use crate::bencode::DictWriter;

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
pub(crate) fn write_call_stats(d: &mut DictWriter<'_>, call: &CallSnapshot) {
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

#[cfg(test)]
mod tests {
    use ngmedia_engine::core::calls::DeleteReply;

    use super::*;
    use crate::bencode::{self, Encoder, Value};
    use crate::ng::reply::tests::{ex2_snapshot, leg, stream, EX2_QUERY};
    use crate::ng::reply::{write_delete, write_query};

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
}
