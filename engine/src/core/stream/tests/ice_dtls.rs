//! ICE connectivity checks and DTLS on a party's socket.

use super::*;

#[test]
fn stun_check_is_answered_to_its_source_and_a_nomination_moves_the_party() {
    let mut call = Call::new(LatchPolicy::default());
    with_ice(&mut call);
    let user = format!("{UFRAG}:theirs");
    let a_host = "192.0.2.10:5002";
    let (v, reply) = call.recv(TO_A, a_host, &binding_request(1, &user, PWD, false));
    assert!(
        matches!(v, Verdict::Reply { to, .. } if to == a(a_host)),
        "{v:?}"
    );
    let msg = StunMessage::parse(&reply).unwrap();
    assert_eq!(msg.class, StunClass::Success);
    assert_eq!(msg.transaction_id, [1; 12]);
    assert_eq!(msg.xor_mapped_address, Some(a(a_host)));
    // Checked but not nominated: media still goes to the signalled address.
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0
    ));
    // The nominated pair decides where A's media goes.
    call.recv(TO_A, a_host, &binding_request(2, &user, PWD, true));
    assert!(forward_to(TO_A, a_host)(
        &call.recv(TO_B, B_SDP, &rtp(0, 2, 0xb)).0
    ));
    assert_eq!(call.drops(DropReason::Stun), 0);
}

#[test]
fn stun_with_the_wrong_password_gets_an_error_answer_and_counts_as_a_drop() {
    let mut call = Call::new(LatchPolicy::default());
    with_ice(&mut call);
    let (v, reply) = call.recv(
        TO_A,
        A_SDP,
        &binding_request(3, &format!("{UFRAG}:theirs"), "wrong-password", true),
    );
    assert!(matches!(v, Verdict::Reply { .. }), "{v:?}");
    let msg = StunMessage::parse(&reply).unwrap();
    assert_eq!(msg.class, StunClass::Error);
    assert_eq!(msg.error_code.map(|(code, _)| code), Some(401));
    assert_eq!(call.drops(DropReason::Stun), 1);
    assert_eq!(call.stream(TO_A).latch.learned(), None);
    // Without ICE on the socket STUN is dropped unanswered.
    let (v, _) = call.recv(TO_B, B_SDP, &binding_request(4, "x:y", PWD, false));
    assert_eq!(v, Verdict::Drop(DropReason::Stun));
}

/// Drain every datagram `link` queued into `peer`; the keys `peer` ends up with, if any.
fn deliver_to_peer(link: &mut DtlsLink, peer: &mut DtlsSession) -> Option<DtlsKeys> {
    let mut keys = None;
    while let Some((_, d)) = link.poll_datagram(None) {
        if let Some(k) = peer.handle_datagram(&d).unwrap() {
            keys = Some(k);
        }
    }
    keys
}

#[test]
fn dtls_records_go_to_the_association_whose_keys_then_carry_srtp() {
    let mut call = Call::new(LatchPolicy::default());
    let ours = Arc::new(DtlsIdentity::generate().unwrap());
    let theirs = DtlsIdentity::generate().unwrap();
    let params = DtlsParams {
        role: DtlsRole::Server,
        remote: theirs.fingerprint().clone(),
        identity: ours.clone(),
    };
    call.stream(TO_A).dtls = DtlsLink::new(params, PortKey(1));
    // Before the handshake: no media either way.
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0,
        Verdict::Drop(DropReason::Dtls)
    );
    assert_eq!(
        call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0,
        Verdict::Drop(DropReason::Dtls),
        "plain RTP must not reach a DTLS-SRTP party before its keys"
    );
    let mut client =
        DtlsSession::new(&theirs, DtlsRole::Client, ours.fingerprint().clone()).unwrap();
    client.start().unwrap();
    let mut client_keys = None;
    for _ in 0..10 {
        let mut fed = false;
        while let Some(d) = client.poll_datagram() {
            fed = true;
            let (v, _) = call.recv(TO_A, A_SDP, &d);
            assert_eq!(v, Verdict::Absorbed(Absorbed::Dtls));
        }
        let link = call.stream(TO_A).dtls.as_deref_mut().unwrap();
        if let Some(k) = deliver_to_peer(link, &mut client) {
            client_keys = Some(k);
        }
        if !fed {
            break;
        }
    }
    let client_keys = client_keys.expect("handshake finished");
    assert!(call.stream(TO_A).srtp_in.is_some() && call.stream(TO_A).srtp_out.is_some());
    // A now sends SRTP with its exported key; B gets plain RTP.
    let mut from_a = SrtpContext::from_key_salt(client_keys.suite, &client_keys.local).unwrap();
    let plain = rtp(0, 2, 0xa);
    let mut wire = plain.clone();
    wire.resize(plain.len() + 32, 0);
    let n = from_a.protect_rtp(&mut wire, plain.len()).unwrap();
    let (v, out) = call.recv(TO_A, A_SDP, &wire[..n]);
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(out, plain);
    // A DTLS record on a socket without DTLS is dropped.
    let (v, _) = call.recv(TO_B, B_SDP, &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(v, Verdict::Drop(DropReason::Dtls));
}
