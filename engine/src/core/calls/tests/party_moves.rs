//! New ports toward a party when the other party moves (rtpengine's endpoint maps), against
//! rtpengine 10.5's `t/auto-daemon-tests.pl` ("SDP version simple increments", "ICE
//! re-invite port change no port latching").

use super::*;

fn offer_at(call: &str, addr: &str, port: u16) -> OfferAnswer {
    offer_req(
        call,
        "A",
        &format!(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\nm=audio {port} RTP/AVP 0\nc=IN IP4 {addr}\n"
        ),
    )
}

fn port_and_ufrag(sdp: &str) -> (u16, Option<String>) {
    let sdp = Sdp::parse(sdp).unwrap();
    let m = &sdp.media[0];
    (m.m.port, m.attribute("ice-ufrag").map(str::to_owned))
}

#[test]
fn a_moved_offerer_gives_the_receiver_new_ports_and_the_old_ones_back() {
    let media = FakeMedia::scripted(&[30000, 30010, 30020, 30030]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut offer = |addr: &str, port: u16| {
        port_and_ufrag(
            &calls
                .offer(&offer_at("m1", addr, port), clock.now())
                .unwrap()
                .sdp,
        )
        .0
    };
    // The offerer's ports are 30000, the receiver's 30010.
    assert_eq!(offer("198.51.100.1", 2000), 30010);
    assert_eq!(offer("198.51.100.1", 2000), 30010);
    // New port, then new address: new ports each time.
    assert_eq!(offer("198.51.100.1", 2002), 30020);
    assert_eq!(offer("198.51.100.1", 2002), 30020);
    assert_eq!(offer("198.51.100.9", 2002), 30030);
    // Back where it was: the ports it had there.
    assert_eq!(offer("198.51.100.1", 2002), 30020);
    // The earlier pairs (30010, 30030) still receive for the receiver's two streams.
    let plan = media.plan(CallKey(1));
    let with_old: Vec<usize> = plan
        .streams
        .iter()
        .map(|s| s.alternates.len())
        .filter(|&n| n > 0)
        .collect();
    assert_eq!(with_old, [2, 2]);
    assert_eq!(media.live_ports(), 8);
}

#[test]
fn port_latching_keeps_the_ports() {
    let mut calls = calls_with(FakeMedia::scripted(&[]), EngineConfig::default());
    let clock = Clock::new();
    let first = calls
        .offer(&offer_at("m2", "198.51.100.1", 2000), clock.now())
        .unwrap();
    let mut req = offer_at("m2", "198.51.100.1", 2004);
    req.flags.port_latching = true;
    let again = calls.offer(&req, clock.now()).unwrap();
    assert_eq!(port_and_ufrag(&first.sdp).0, port_and_ufrag(&again.sdp).0);
}

#[test]
fn a_zero_address_compares_by_port_only() {
    let mut calls = calls_with(FakeMedia::scripted(&[]), EngineConfig::default());
    let clock = Clock::new();
    let first = calls
        .offer(&offer_at("m3", "198.51.100.1", 2000), clock.now())
        .unwrap();
    let held = calls
        .offer(&offer_at("m3", "0.0.0.0", 2000), clock.now())
        .unwrap();
    assert_eq!(port_and_ufrag(&first.sdp).0, port_and_ufrag(&held.sdp).0);
    let moved = calls
        .offer(&offer_at("m3", "0.0.0.0", 2002), clock.now())
        .unwrap();
    assert_ne!(port_and_ufrag(&first.sdp).0, port_and_ufrag(&moved.sdp).0);
}

#[test]
fn toward_ice_the_ports_stay_unless_no_port_latching_which_restarts_ice() {
    let mut calls = calls_with(FakeMedia::scripted(&[]), EngineConfig::default());
    let clock = Clock::new();
    let mut offer = |port: u16, no_port_latching: bool| {
        let mut req = offer_at("m4", "198.51.100.1", port);
        req.ice = IceMode::Force;
        req.flags.no_port_latching = no_port_latching;
        port_and_ufrag(&calls.offer(&req, clock.now()).unwrap().sdp)
    };
    let (port, ufrag) = offer(2000, false);
    assert!(ufrag.is_some());
    assert_eq!(offer(2002, false), (port, ufrag.clone()));
    // Latched ports stay with the address they were opened for (2000): 2002 is a move.
    let (moved_port, moved_ufrag) = offer(2002, true);
    assert_ne!(moved_port, port);
    assert_ne!(moved_ufrag, ufrag);
    assert_eq!(offer(2002, true), (moved_port, moved_ufrag));
}

/// rtpengine's "SDP version simple increments": with `replace: SDP-version` the version
/// follows what the receiver gets, whatever the offerer's own version says.
#[test]
fn the_sdp_version_goes_up_once_per_changed_body() {
    let mut calls = calls_with(FakeMedia::scripted(&[]), EngineConfig::default());
    let clock = Clock::new();
    let mut versions = Vec::new();
    for (own, port) in [
        (1, 2000),
        (1, 2000),
        (2, 2000),
        (3, 2000),
        (1, 2002),
        (4, 2002),
    ] {
        let mut req = offer_at("m5", "198.51.100.1", port);
        req.sdp = req.sdp.replace("o=- 1 1 ", &format!("o=- 1 {own} "));
        req.replace.sdp_version = true;
        let out = calls.offer(&req, clock.now()).unwrap().sdp;
        versions.push(Sdp::parse(&out).unwrap().origin().unwrap().version);
    }
    assert_eq!(versions, ["1", "1", "1", "1", "2", "2"]);
}
