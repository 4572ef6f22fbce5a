//! Reply fixtures shared with the server and HTTP tests (the call of captures/ex2.out), and
//! the short replies checked against captures.

use std::net::SocketAddr;

use ngmedia_engine::core::snapshot::{LegSnapshot, MediaSnapshot, StreamSnapshot};
use ngmedia_engine::core::stats::StreamCounters;

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn stream(
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

pub(crate) fn leg(
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
    let sdp = ngmedia_test_support::sdp_fixture!("rtpengine-ex1-answer.rewritten");
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
