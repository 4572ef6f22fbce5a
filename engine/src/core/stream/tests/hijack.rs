//! RTP Bleed: a stranger sending to a party's media port must not get the other party's
//! media, nor move the party's latch.

use super::*;

/// A stranger who sprays the engine's media ports.
const STRANGER: &str = "192.0.2.66:40000";
/// B behind a NAT that kept its address but not its port (the SDP names B's address).
const B_SAME_IP: &str = "198.51.100.20:61000";

/// A sends one packet; where does it go?
fn a_media_goes_to(call: &mut Call, seq: u16) -> Verdict {
    call.recv(TO_A, A_SDP, &rtp(0, seq, 0xa)).0
}

#[test]
fn hijack_during_learning_loses_to_the_sdp_address() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    // The stranger is first: media follows it for now (nothing better is known)...
    call.recv(TO_B, STRANGER, &rtp(0, 1, 0x5));
    assert!(forward_to(TO_B, STRANGER)(&a_media_goes_to(&mut call, 1)));
    // ...until B's own packet: it comes from the SDP's address, so B is confirmed at once.
    call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb));
    assert!(call.stream(TO_B).latch.confirmed());
    for seq in 2..20 {
        call.advance_ms(20);
        call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert!(forward_to(TO_B, B_SDP)(&a_media_goes_to(&mut call, seq)));
    }
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_SDP)));
}

#[test]
fn hijack_during_learning_loses_to_the_sdp_ip_behind_nat() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    call.recv(TO_B, B_SAME_IP, &rtp(0, 1, 0xb));
    // The stranger keeps sending through the rest of the window, after B's last packet.
    for seq in 1..50 {
        call.advance_ms(20);
        call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert!(forward_to(TO_B, B_SAME_IP)(&a_media_goes_to(
            &mut call, seq
        )));
    }
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, STRANGER, &rtp(0, 60, 0x5));
    assert!(call.stream(TO_B).latch.confirmed());
    assert!(forward_to(TO_B, B_SAME_IP)(&a_media_goes_to(&mut call, 60)));
}

#[test]
fn hijack_of_a_silent_side_after_the_window_is_refused() {
    // Media flowed both ways inside the learning window, then B only listens (hold music,
    // a one-way announcement, a muted phone). Seconds later a stranger sends to B's port.
    for learning in [EndpointLearning::Heuristic, EndpointLearning::Delayed] {
        let mut call = Call::learning(LatchPolicy::default(), learning);
        for seq in 1..=10 {
            call.recv(TO_B, B_NAT, &rtp(0, seq, 0xb));
            assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, seq)));
            call.advance_ms(20);
        }
        call.advance_ms(4000);
        for seq in 1..=50 {
            let (v, _) = call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
            assert!(
                forward_to(TO_A, A_SDP)(&v),
                "without strict-source a stranger's packets are relayed, as by rtpengine"
            );
            call.advance_ms(20);
        }
        assert!(
            forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 11)),
            "{learning:?}: A's media went to the stranger"
        );
        assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_NAT)));
        assert!(call.stream(TO_B).latch.confirmed());
    }
}

#[test]
fn strict_source_refusals_are_counted_per_packet() {
    let mut call = Call::learning(
        LatchPolicy {
            strict_source: true,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS + 1000);
    for seq in 1..=100 {
        let (v, _) = call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert_eq!(v, Verdict::Drop(DropReason::SourceMismatch));
    }
    assert_eq!(call.drops(DropReason::SourceMismatch), 100);
    assert_eq!(call.errors(TO_B), 100);
    assert_eq!(call.stream(TO_B).stats.packets.load(Relaxed), 1);
    // One log line was due at the first refusal; the next one only a minute later, with
    // the 99 refusals since, this one and the one probed here.
    let now = call.now.mono_ms;
    assert_eq!(call.stream(TO_B).latch.note_refusal(now), None);
    assert_eq!(
        call.stream(TO_B).latch.note_refusal(now + LOG_INTERVAL_MS),
        Some(101)
    );
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
}

#[test]
fn srtp_stranger_is_refused_and_the_party_may_move_with_authenticated_packets() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    rekey(&mut call.stream(TO_B).srtp_in, keys(&KEY_B), PortKey(2));
    let mut from_b = srtp_ctx(&KEY_B);
    let mut protect = |seq: u16| {
        let plain = rtp(0, seq, 0xb);
        let mut wire = plain.clone();
        wire.resize(plain.len() + 32, 0);
        let n = from_b.protect_rtp(&mut wire, plain.len()).unwrap();
        wire.truncate(n);
        wire
    };
    // B's first authenticated packet confirms its source at once.
    call.recv(TO_B, B_NAT, &protect(1));
    assert!(call.stream(TO_B).latch.confirmed());
    // A stranger can neither forge nor replay its way in.
    let replay = protect(2);
    call.recv(TO_B, B_NAT, &replay);
    assert_eq!(
        call.recv(TO_B, STRANGER, &replay).0,
        Verdict::Drop(DropReason::SrtpReplay)
    );
    assert_eq!(
        call.recv(TO_B, STRANGER, &rtp(0, 3, 0xb)).0,
        Verdict::Drop(DropReason::SrtpAuth)
    );
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
    // B's NAT rebinds mid-call: its next authenticated packet moves the latch, no
    // signalling and no media-handover needed.
    call.advance_ms(60_000);
    let (v, _) = call.recv(TO_B, B_MOVED, &protect(3));
    assert!(forward_to(TO_A, A_SDP)(&v), "{v:?}");
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 2)));
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_MOVED)));
}

#[test]
fn ice_nomination_decides_and_plain_rtp_cannot_move_it() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    with_ice(&mut call);
    let user = format!("{UFRAG}:theirs");
    let a_host = "192.0.2.10:5002";
    call.recv(TO_A, a_host, &binding_request(1, &user, PWD, true));
    assert!(call.stream(TO_A).latch.nominated());
    // A stranger's RTP, and a check signed with a wrong password, move nothing.
    call.advance_ms(5000);
    call.recv(TO_A, STRANGER, &rtp(0, 1, 0x5));
    let (v, _) = call.recv(
        TO_A,
        STRANGER,
        &binding_request(2, &user, "not-the-password-at-all", true),
    );
    assert!(matches!(v, Verdict::Reply { .. }), "an error answer: {v:?}");
    assert!(forward_to(TO_A, a_host)(
        &call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0
    ));
    // A new valid nomination does (the party's path changed).
    call.recv(TO_A, A_SDP, &binding_request(3, &user, PWD, true));
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_SDP, &rtp(0, 2, 0xb)).0
    ));
}

#[test]
fn nat_rebinding_with_media_handover_moves_a_confirmed_latch() {
    let mut call = Call::learning(
        LatchPolicy {
            handover: true,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, B_NAT, &rtp(0, 2, 0xb));
    assert!(call.stream(TO_B).latch.confirmed());
    call.advance_ms(30_000);
    call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 1)));
}

#[test]
fn a_reinvite_to_a_new_address_learns_again() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS + 10_000);
    call.recv(TO_B, B_MOVED, &rtp(0, 2, 0xb));
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
    // B re-INVITEs from another network: a new SDP address, so the plan relatches.
    let moved_sdp = a("203.0.113.50:7000");
    let now = call.now.mono_ms;
    let latch = &mut call.stream(TO_B).latch;
    assert!(latch.update(Some(moved_sdp), LatchPolicy::default(), true, now));
    assert!(forward_to(TO_B, "203.0.113.50:7000")(&a_media_goes_to(
        &mut call, 2
    )));
    call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 3)));
}

#[test]
fn asymmetric_ignores_every_source_for_the_destination() {
    let mut call = Call::learning(
        LatchPolicy {
            learn: false,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS * 2);
    call.recv(TO_B, STRANGER, &rtp(0, 2, 0xb));
    assert!(forward_to(TO_B, B_SDP)(&a_media_goes_to(&mut call, 1)));
}
