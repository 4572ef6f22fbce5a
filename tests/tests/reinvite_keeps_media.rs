//! A re-INVITE (re-offer/re-answer from inside the dialogue) keeps the engine ports, and
//! media keeps flowing; so does putting the call on hold (a=sendonly) and resuming it.

use std::time::Duration;

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{Daemon, NgClient, TwoPartyCall};

/// Send `n` packets A→B (and B→A when `both`) and check each arrives unchanged.
fn assert_media(call: &mut TwoPartyCall, n: usize, both: bool, what: &str) {
    call.a.drain();
    call.b.drain();
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    for _ in 0..n {
        from_a.push(call.a.send_next(call.a_dest));
        if both {
            from_b.push(call.b.send_next(call.b_dest));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let at_b: Vec<_> = call
        .b
        .recv_many(n, Duration::from_secs(2))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(at_b, from_a, "{what}: A->B");
    if both {
        let at_a: Vec<_> = call
            .a
            .recv_many(n, Duration::from_secs(2))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(at_a, from_b, "{what}: B->A");
    }
}

/// Re-offer from A and re-answer from B with the given directions; returns the directions
/// the engine wrote (towards B, towards A) after checking the ports did not move.
fn renegotiate(
    ng: &NgClient,
    call: &TwoPartyCall,
    version: u32,
    a_dir: &str,
    b_dir: &str,
) -> (Option<String>, Option<String>) {
    let a_sdp = audio_sdp(call.a.addr().ip(), call.a.port(), version, a_dir);
    let offer = parse_reply_sdp(&ng.reoffer(&call.call_id, &call.from_tag, &call.to_tag, &a_sdp));
    assert_eq!(
        offer.audio_addr(),
        call.b_dest,
        "re-offer {a_dir} moved B's engine port"
    );
    let b_sdp = audio_sdp(call.b.addr().ip(), call.b.port(), version, b_dir);
    let answer = parse_reply_sdp(&ng.answer(&call.call_id, &call.from_tag, &call.to_tag, &b_sdp));
    assert_eq!(
        answer.audio_addr(),
        call.a_dest,
        "re-answer {b_dir} moved A's engine port"
    );
    (
        offer.audio().direction().map(String::from),
        answer.audio().direction().map(String::from),
    )
}

#[test]
fn reinvite_then_hold_then_resume_keeps_ports_and_media() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "reinvite-1");
    assert_media(&mut call, 10, true, "initial call");

    renegotiate(&ng, &call, 2, "sendrecv", "sendrecv");
    assert_media(&mut call, 10, true, "after re-INVITE");

    let (to_b, to_a) = renegotiate(&ng, &call, 3, "sendonly", "recvonly");
    assert_eq!(
        to_b.as_deref(),
        Some("sendonly"),
        "hold direction passed to B"
    );
    assert_eq!(to_a.as_deref(), Some("recvonly"), "hold answer passed to A");
    assert_media(&mut call, 10, false, "on hold (A sendonly)");

    let (to_b, to_a) = renegotiate(&ng, &call, 4, "sendrecv", "sendrecv");
    assert_eq!(to_b.as_deref(), Some("sendrecv"));
    assert_eq!(to_a.as_deref(), Some("sendrecv"));
    assert_media(&mut call, 10, true, "after resume");
}

/// A party that moves (a new port in its re-offer) gets its peer new engine ports, as
/// rtpengine does; the peer's packets to the old port keep arriving until it takes the new
/// SDP, and then those to the new one do.
#[test]
fn a_moved_party_gives_the_peer_new_ports_and_the_old_ones_keep_working() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "reinvite-moved");
    assert_media(&mut call, 5, true, "initial call");

    let old_b_dest = call.b_dest;
    call.a = ngmedia_tests::RtpEndpoint::new(0x3000_0001);
    let a_sdp = audio_sdp(call.a.addr().ip(), call.a.port(), 2, "sendrecv");
    let offer = parse_reply_sdp(&ng.reoffer(&call.call_id, &call.from_tag, &call.to_tag, &a_sdp));
    let new_b_dest = offer.audio_addr();
    assert_ne!(new_b_dest, old_b_dest, "B keeps its port although A moved");
    // B has not answered yet: it still sends to the old port.
    assert_media(&mut call, 5, true, "before B takes the new SDP");

    let b_sdp = audio_sdp(call.b.addr().ip(), call.b.port(), 2, "sendrecv");
    let answer = parse_reply_sdp(&ng.answer(&call.call_id, &call.from_tag, &call.to_tag, &b_sdp));
    assert_eq!(answer.audio_addr(), call.a_dest, "A's engine port moved");
    call.b_dest = new_b_dest;
    assert_media(&mut call, 5, true, "after B took the new SDP");
}
