//! ICE candidates on every address of the logical interface and the `ICE-lite` key, against
//! the lines rtpengine 10.5 writes (`t/auto-daemon-tests.pl`, e.g. "ICE with just peer
//! reflexive", "stray ICE reset after hold").

use super::*;
use crate::core::calls::model::candidate_priority;
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
