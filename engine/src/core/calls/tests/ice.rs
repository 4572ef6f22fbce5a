//! ICE candidates on every address of the logical interface and the `ICE-lite` key, against
//! the lines rtpengine 10.5 writes (`t/auto-daemon-tests.pl`, e.g. "ICE with just peer
//! reflexive", "stray ICE reset after hold").

use super::*;
use crate::core::calls::model::candidate_priority;
use crate::core::plan::StreamMode;
use crate::core::request::IceLite;

/// rtpengine's test set-up: `-i 203.0.113.1 -i 2001:db8:4321::1`, one logical interface.
fn dual_stack() -> EngineConfig {
    let iface = |a: &str| Interface {
        name: "default".into(),
        local: a.parse().unwrap(),
        advertised: None,
    };
    EngineConfig {
        interfaces: vec![iface("203.0.113.1"), iface("2001:db8:4321::1")],
        ..Default::default()
    }
}

fn candidates(sdp: &str) -> Vec<Vec<String>> {
    Sdp::parse(sdp).unwrap().media[0]
        .attributes("candidate")
        .map(|v| v.split(' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn priorities_follow_rtpengines_formula() {
    assert_eq!(candidate_priority(126, 0, 1), 2130706431);
    assert_eq!(candidate_priority(126, 0, 2), 2130706430);
    assert_eq!(candidate_priority(126, 1, 1), 2130706175);
    assert_eq!(candidate_priority(126, 1, 2), 2130706174);
}

#[test]
fn one_candidate_per_address_and_component_ipv4_first() {
    let media = FakeMedia::scripted(&[30010, 30020, 30030]);
    let mut calls = calls_with(media.clone(), dual_stack());
    let clock = Clock::new();
    let mut req = offer_req("c1", "A", OFFER_B);
    req.ice = IceMode::Force;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    let c = candidates(&out);
    let lines: Vec<String> = c.iter().map(|f| f[1..].join(" ")).collect();
    assert_eq!(
        lines,
        [
            "1 UDP 2130706431 203.0.113.1 30020 typ host",
            "1 UDP 2130706175 2001:db8:4321::1 30030 typ host",
            "2 UDP 2130706430 203.0.113.1 30021 typ host",
            "2 UDP 2130706174 2001:db8:4321::1 30031 typ host",
        ],
        "{out}"
    );
    // 16 alphanumerics, one foundation per address.
    for f in &c {
        assert!(f[0].len() == 16 && f[0].chars().all(|ch| ch.is_ascii_alphanumeric()));
    }
    assert_eq!(c[0][0], c[2][0]);
    assert_eq!(c[1][0], c[3][0]);
    assert_ne!(c[0][0], c[1][0]);
    // The IPv6 sockets are the streams' alternates in the plan.
    let plan = media.plan(CallKey(1));
    let rtp = plan
        .streams
        .iter()
        .find(|s| !s.alternates.is_empty() && s.rtp_sink.is_some())
        .expect("a stream with alternates");
    assert_eq!(rtp.alternates.len(), 1);
    assert_eq!(
        plan.streams
            .iter()
            .filter(|s| !s.alternates.is_empty())
            .count(),
        2
    );
}

#[test]
fn an_ipv6_party_gets_the_ipv6_address_first() {
    let media = FakeMedia::scripted(&[30010, 30020, 30030]);
    let mut calls = calls_with(media, dual_stack());
    let clock = Clock::new();
    let mut req = offer_req(
        "c1",
        "A",
        &OFFER_B.replace("IN IP4 127.0.0.2", "IN IP6 2001:db8::2"),
    );
    req.ice = IceMode::Force;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    let lines: Vec<String> = candidates(&out).iter().map(|f| f[1..].join(" ")).collect();
    assert_eq!(
        lines,
        [
            "1 UDP 2130706431 2001:db8:4321::1 30020 typ host",
            "1 UDP 2130706175 203.0.113.1 30030 typ host",
            "2 UDP 2130706430 2001:db8:4321::1 30021 typ host",
            "2 UDP 2130706174 203.0.113.1 30031 typ host",
        ],
        "{out}"
    );
}

#[test]
fn without_ice_the_other_addresses_are_neither_bound_nor_kept() {
    let media = FakeMedia::scripted(&[30010, 30020, 30030]);
    let mut calls = calls_with(media.clone(), dual_stack());
    let clock = Clock::new();
    let req = offer_req("c1", "A", OFFER_B);
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(candidates(&out).is_empty());
    assert_eq!(media.live_ports(), 4);
    // ICE on a re-offer binds the IPv6 pair; ICE removed again drops it from the plan.
    let mut ice = offer_req("c1", "A", OFFER_B);
    ice.ice = IceMode::Force;
    let out = calls.offer(&ice, clock.now()).unwrap().sdp;
    assert_eq!(candidates(&out).len(), 4);
    assert_eq!(media.live_ports(), 6);
    calls.offer(&req, clock.now()).unwrap();
    let plan = media.plan(CallKey(1));
    assert!(plan.streams.iter().all(|s| s.alternates.is_empty()));
    assert_eq!(plan.streams.len(), 4);
}

#[test]
fn ice_lite_key_picks_the_side_we_are_lite_toward() {
    let media = FakeMedia::scripted(&[30010, 30020, 30030]);
    let mut calls = calls_with(media, dual_stack());
    let clock = Clock::new();
    // Default toward a plain-RTP party: full agent, no a=ice-lite.
    let mut req = offer_req("c1", "A", OFFER_B);
    req.ice = IceMode::Force;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(!out.contains("a=ice-lite"), "{out}");
    // `backward`: lite toward the offerer, so its answer says so; the receiver still not.
    req.ice_lite = Some(IceLite::Backward);
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(!out.contains("a=ice-lite"), "{out}");
    let mut ans = answer_req("c1", "A", "B", ANSWER_B);
    ans.ice = IceMode::Force;
    let out = calls.answer(&ans, clock.now()).unwrap().sdp;
    assert!(out.contains("a=ice-lite\r\n"), "{out}");
    // `forward`: lite toward the receiver of the offer.
    req.ice_lite = Some(IceLite::Forward);
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(out.contains("a=ice-lite\r\n"), "{out}");
    req.ice_lite = Some(IceLite::Off);
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(!out.contains("a=ice-lite"), "{out}");
}

/// Our candidates in `sdp` after the party's first `theirs`, without the foundation.
fn candidates_after(sdp: &str, theirs: usize) -> Vec<String> {
    candidates(sdp)[theirs..]
        .iter()
        .map(|f| f[1..].join(" "))
        .collect()
}

const ICE_OFFER: &str = "v=0
o=- 1545997027 1 IN IP4 198.51.100.1
s=tester
t=0 0
m=audio 2000 RTP/AVP 0
c=IN IP4 198.51.100.1
a=sendrecv
a=ice-ufrag:asbsdfds
a=ice-pwd:sfhwsrgyergws45ujhsrthsrhH
a=candidate:sfthqw45hdfgdfsb 1 UDP 2130706431 198.51.100.3 2002 typ host
a=candidate:ujksdfghfdfgdfsb 1 UDP 2130706175 2001:db8:abcd::3 2002 typ host
a=candidate:sfthqw45hdfgdfsb 2 UDP 2130706430 198.51.100.3 2003 typ host
a=candidate:ujksdfghfdfgdfsb 2 UDP 2130706174 2001:db8:abcd::3 2003 typ host
";

const PLAIN_ANSWER: &str = "v=0
o=- 1545997027 1 IN IP4 198.51.100.3
s=tester
t=0 0
m=audio 2002 RTP/AVP 0
c=IN IP4 198.51.100.3
a=sendrecv
";

/// rtpengine's "ICE SDP, default ICE option": both parties do ICE, so `optional` leaves it
/// to them: their attributes stay where they were, ours follow as candidates below theirs
/// (with rtpengine's unsigned wrap for the second address), and the media is relayed as it
/// comes, STUN included, with no ICE of ours.
#[test]
fn optional_between_two_ice_parties_passes_through() {
    let media = FakeMedia::scripted(&[30010, 30020, 30030, 30040]);
    let mut calls = calls_with(media.clone(), dual_stack());
    let clock = Clock::new();
    let mut req = offer_req("o1", "A", ICE_OFFER);
    req.ice = IceMode::Optional;
    req.replace.origin = false;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    let sdp = Sdp::parse(&out).unwrap();
    let lines: Vec<&str> = sdp.media[0]
        .lines
        .iter()
        .map(|l| l.value.as_str())
        .collect();
    assert_eq!(lines[1], "ice-ufrag:asbsdfds", "{out}");
    assert_eq!(
        lines[3],
        "candidate:sfthqw45hdfgdfsb 1 UDP 2130706431 198.51.100.3 2002 typ host"
    );
    assert_eq!(
        candidates_after(&out, 4),
        [
            "1 UDP 2097152255 203.0.113.1 30020 typ host",
            "1 UDP 4294967295 2001:db8:4321::1 30030 typ host",
            "2 UDP 2097152254 203.0.113.1 30021 typ host",
            "2 UDP 4294967294 2001:db8:4321::1 30031 typ host",
        ],
        "{out}"
    );
    assert_eq!(sdp.media[0].attributes("ice-ufrag").count(), 1, "{out}");
    let plan = media.plan(CallKey(1));
    assert!(plan
        .streams
        .iter()
        .all(|s| s.mode == StreamMode::Opaque && s.ice.is_none()));

    // The answerer does no ICE: nor does the offerer get any from us.
    let mut answer = answer_req("o1", "A", "B", PLAIN_ANSWER);
    answer.ice = IceMode::Optional;
    let out = calls.answer(&answer, clock.now()).unwrap().sdp;
    assert!(
        !out.contains("a=ice-") && !out.contains("a=candidate"),
        "{out}"
    );
}

/// rtpengine's "plain SDP, add default ICE" and "ICE SDP with ICE force" + "plain SDP, ICE
/// rejected, no ICE option given": without ICE on the other side `optional` is `force`, and
/// an offerer we do ICE with keeps ours when the answerer has none.
#[test]
fn optional_toward_a_party_without_ice_is_ours() {
    let mut calls = calls_with(FakeMedia::scripted(&[]), dual_stack());
    let clock = Clock::new();
    let mut req = offer_req("o2", "A", PLAIN_ANSWER);
    req.ice = IceMode::Optional;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(
        out.contains("a=ice-ufrag:") && out.contains(" 2130706431 203.0.113.1 "),
        "{out}"
    );

    let mut req = offer_req("o3", "A", ICE_OFFER);
    req.ice = IceMode::Force;
    calls.offer(&req, clock.now()).unwrap();
    let mut answer = answer_req("o3", "A", "B", PLAIN_ANSWER);
    answer.ice = IceMode::Optional;
    let out = calls.answer(&answer, clock.now()).unwrap().sdp;
    assert!(
        out.contains("a=ice-ufrag:") && out.contains(" 2130706431 203.0.113.1 "),
        "{out}"
    );
}

/// The subscriber's SDP of rtpengine's "ICE sub" test: a full agent with host candidates.
const ICE_SUB_ANSWER: &str = "v=0
o=- 1545997027 1 IN IP4 198.51.100.1
s=tester
t=0 0
m=audio 6028 RTP/AVP 0
c=IN IP4 198.51.100.14
a=recvonly
a=ice-ufrag:q2758e93
a=ice-pwd:bd5e845657ecb8d6dd8e1bc6
a=candidate:keutydghfbhdcfsb 1 UDP 2130706431 198.51.100.14 6028 typ host
a=candidate:keutydghfbhdcfsb 2 UDP 2130706430 198.51.100.14 6029 typ host
";

/// The full-ICE plan of the stream on local RTP port `port` (on the primary address).
fn full_ice_on(calls: &Calls, media: &FakeMedia, port: u16) -> Option<crate::core::plan::FullIce> {
    let key = calls.calls["c1"]
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .find(|p| p.rtp.addr.port() == port)?
        .rtp
        .key;
    let plan = media.plan(CallKey(1));
    let s = plan.streams.iter().find(|s| s.port == key)?;
    s.ice.as_ref().and_then(|i| i.full.clone())
}

#[test]
fn a_subscriber_gets_every_address_and_a_controlled_full_agent() {
    // rtpengine's "ICE sub": `ICE=force` toward a subscriber of a plain call.
    let media = FakeMedia::scripted(&[30000, 30002, 30010, 30020]);
    let mut calls = calls_with(media.clone(), dual_stack());
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    calls
        .answer(&answer_req("c1", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    let mut req = OfferAnswer {
        call_id: "c1".into(),
        from_tag: "A".into(),
        ice: IceMode::Force,
        ..Default::default()
    };
    let reply = calls.subscribe_request(&req, clock.now()).unwrap();
    let lines: Vec<String> = candidates(&reply.sdp)
        .iter()
        .map(|f| f[1..].join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "1 UDP 2130706431 203.0.113.1 30010 typ host",
            "1 UDP 2130706175 2001:db8:4321::1 30020 typ host",
            "2 UDP 2130706430 203.0.113.1 30011 typ host",
            "2 UDP 2130706174 2001:db8:4321::1 30021 typ host",
        ],
        "{}",
        reply.sdp
    );
    // A full agent, as toward any plain-RTP party.
    assert!(!reply.sdp.contains("a=ice-lite"), "{}", reply.sdp);
    let answer = OfferAnswer {
        call_id: "c1".into(),
        to_tag: Some(reply.to_tag.clone()),
        sdp: crlf(ICE_SUB_ANSWER),
        ..Default::default()
    };
    calls.subscribe_answer(&answer, clock.now()).unwrap();
    let full = full_ice_on(&calls, &media, 30010).expect("a full agent toward the subscriber");
    // rtpengine is controlling only toward the receiver of an offer: the subscriber's
    // checks decide.
    assert!(!full.controlling);
    assert_eq!(full.remote_ufrag, "q2758e93");
    assert_eq!(full.rtp_candidates, ["198.51.100.14:6028".parse().unwrap()]);
    assert_eq!(
        full.rtcp_candidates,
        ["198.51.100.14:6029".parse().unwrap()]
    );
    // The IPv6 sockets receive for the subscriber's streams.
    let plan = media.plan(CallKey(1));
    assert_eq!(
        plan.streams
            .iter()
            .filter(|s| !s.alternates.is_empty())
            .count(),
        2
    );

    // `ICE-lite` forward makes us lite toward it; without ICE the IPv6 sockets go.
    req.ice_lite = Some(IceLite::Forward);
    req.to_tag = Some(reply.to_tag.clone());
    let lite = calls.subscribe_request(&req, clock.now()).unwrap();
    assert!(lite.sdp.contains("a=ice-lite\r\n"), "{}", lite.sdp);
    assert_eq!(candidates(&lite.sdp).len(), 4);
    req.ice = IceMode::Remove;
    req.ice_lite = None;
    let plain = calls.subscribe_request(&req, clock.now()).unwrap();
    assert!(candidates(&plain.sdp).is_empty());
    let plan = media.plan(CallKey(1));
    assert!(plan.streams.iter().all(|s| s.alternates.is_empty()));
}

#[test]
fn a_publisher_that_does_ice_gets_every_address_and_a_full_agent() {
    let media = FakeMedia::scripted(&[30010, 30020]);
    let mut calls = calls_with(media.clone(), dual_stack());
    let clock = Clock::new();
    let req = OfferAnswer {
        call_id: "c1".into(),
        from_tag: "P".into(),
        sdp: crlf(&ICE_SUB_ANSWER.replace("a=recvonly", "a=sendonly")),
        ..Default::default()
    };
    let out = calls.publish(&req, clock.now()).unwrap();
    assert!(!out.contains("a=ice-lite"), "{out}");
    assert_eq!(candidates(&out).len(), 4, "{out}");
    // The publisher offered: it controls.
    let full = full_ice_on(&calls, &media, 30010).expect("a full agent toward the publisher");
    assert!(!full.controlling);
    assert_eq!(full.rtp_candidates, ["198.51.100.14:6028".parse().unwrap()]);
}

/// rtpengine's "gh 850": with `force-relay` the offerer's c=, m=, a=rtcp and a=rtcp-mux
/// stay, its relay candidates give way, and ours are relay candidates below its own (below
/// the 16777215 one it had: type and local preference 0, then rtpengine's unsigned wrap).
#[test]
fn force_relay_keeps_the_partys_transport_and_adds_relay_candidates() {
    let mut calls = calls_with(
        FakeMedia::scripted(&[30010, 30020, 30030, 30040]),
        dual_stack(),
    );
    let clock = Clock::new();
    let offer = ICE_OFFER.replace(
        "a=sendrecv\n",
        "a=sendrecv\na=rtcp:9 IN IP4 0.0.0.0\na=rtcp-mux\n\
         a=candidate:r1 1 UDP 16777215 192.0.2.9 5000 typ relay raddr 198.51.100.3 rport 2002\n",
    );
    let mut req = offer_req("fr1", "A", &offer);
    req.ice = IceMode::ForceRelay;
    req.rtcp_mux.offer = true;
    req.rtcp_mux.accept = true;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    let sdp = Sdp::parse(&out).unwrap();
    let m = &sdp.media[0];
    assert_eq!((m.m.port, m.m.proto.as_str()), (2000, "RTP/AVP"), "{out}");
    assert!(out.contains("c=IN IP4 198.51.100.1\r\n"), "{out}");
    assert!(
        out.contains("o=- 1545997027 1 IN IP4 198.51.100.1\r\n"),
        "{out}"
    );
    assert_eq!(
        m.attributes("rtcp").collect::<Vec<_>>(),
        ["9 IN IP4 0.0.0.0"],
        "{out}"
    );
    assert_eq!(m.attributes("rtcp-mux").count(), 1, "{out}");
    assert!(!out.contains("192.0.2.9"), "{out}");
    assert_eq!(
        candidates_after(&out, 4),
        [
            "1 UDP 255 203.0.113.1 30020 typ relay raddr 203.0.113.1 rport 30020",
            "1 UDP 4294967295 2001:db8:4321::1 30030 typ relay raddr 2001:db8:4321::1 rport 30030",
            "2 UDP 254 203.0.113.1 30021 typ relay raddr 203.0.113.1 rport 30021",
            "2 UDP 4294967294 2001:db8:4321::1 30031 typ relay raddr 2001:db8:4321::1 rport 30031",
        ],
        "{out}"
    );
}
