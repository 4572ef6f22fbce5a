//! Opaque protocols (`m=image … udptl t38`): relayed byte for byte.

use super::*;

/// Both parties' sockets carry an opaque protocol (`m=image … udptl t38`).
fn opaque(call: &mut Call) {
    for slot in [TO_A, TO_B] {
        call.stream(slot).mode = StreamMode::Opaque;
    }
}

/// A UDPTL datagram: sequence number `seq`, a short IFP (the primary), no redundancy.
fn udptl(seq: u16) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x02, 0x00, 0x00, 0x00]);
    p
}

#[test]
fn opaque_datagrams_that_look_like_stun_rtp_or_dtls_are_relayed_byte_for_byte() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    // Sequence numbers 0..3 start like STUN, 20..63 (×256) like DTLS, 0x80xx like RTP;
    // a 2-byte datagram is shorter than any of them.
    let mut bytes = 0;
    for (n, pkt) in [
        udptl(0),
        udptl(1),
        udptl(0x1400),
        udptl(0x8000),
        udptl(0x80c8),
        vec![0, 7],
    ]
    .into_iter()
    .enumerate()
    {
        let (v, out) = call.recv(TO_A, A_SDP, &pkt);
        // B is heard behind its NAT from its first datagram on.
        let b_at = if n == 0 { B_SDP } else { B_NAT };
        assert!(forward_to(TO_B, b_at)(&v), "datagram {n}: {v:?}");
        assert_eq!(out, pkt);
        bytes += pkt.len() as u64;
        let (v, out) = call.recv(TO_B, B_NAT, &pkt);
        assert!(forward_to(TO_A, A_SDP)(&v), "datagram {n} back: {v:?}");
        assert_eq!(out, pkt);
    }
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 6);
    assert_eq!(call.stream(TO_A).stats.bytes.load(Relaxed), bytes);
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_NAT)));
    assert_eq!(call.counters.opaque_packets.load(Relaxed), 12);
    assert_eq!(call.counters.opaque_bytes.load(Relaxed), 2 * bytes);
    assert_eq!(call.counters.rtp_packets.load(Relaxed), 0);
    assert_eq!(call.counters.rtcp_packets.load(Relaxed), 0);
    assert_eq!(call.errors(TO_A) + call.errors(TO_B), 0);
}

#[test]
fn opaque_streams_answer_stun_only_with_ice_and_are_never_offloaded() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    let user = format!("{UFRAG}:theirs");
    let check = binding_request(1, &user, PWD, false);
    // Without ICE a STUN-shaped datagram is the party's data like any other.
    let (v, out) = call.recv(TO_A, A_SDP, &check);
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(out, check);
    with_ice(&mut call);
    let (v, reply) = call.recv(TO_A, A_SDP, &check);
    assert!(
        matches!(v, Verdict::Reply { to, .. } if to == a(A_SDP)),
        "{v:?}"
    );
    assert_eq!(
        StunMessage::parse(&reply).unwrap().class,
        StunClass::Success
    );
    // Past the learning window every datagram is a plain forward, yet one that happens
    // to look like RTP must not reach the kernel fast path.
    call.advance_ms(LEARNING_DELAY_MS + 1);
    let pkt = rtp(0, 1, 0xa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    let Verdict::Forward { via, to, .. } = v else {
        panic!("{v:?}");
    };
    assert!(!offloadable(
        &call.slab,
        TO_A,
        TO_A,
        via,
        to,
        a(A_SDP),
        &out
    ));
    for slot in [TO_A, TO_B] {
        call.stream(slot).mode = StreamMode::Rtp;
    }
    call.stream(TO_A).ice = None;
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    let Verdict::Forward { via, to, .. } = v else {
        panic!("{v:?}");
    };
    assert!(offloadable(&call.slab, TO_A, TO_A, via, to, a(A_SDP), &out));
}

#[test]
fn block_media_absorbs_opaque_datagrams_but_still_counts_them() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    call.stream(TO_A).control.block_media = true;
    let (v, _) = call.recv(TO_A, A_SDP, &udptl(3));
    assert_eq!(v, Verdict::Absorbed(Absorbed::Blocked));
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
}
