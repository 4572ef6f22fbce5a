//! Scenarios on fake time: the agent against a scripted peer, no sockets.

use super::*;
use crate::core::stun::{attr, write_binding_success};

const PEER_PWD: &str = "bd5e8b8d6dd8e1bc6";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Drain everything the agent sends at `now`: (destination, transaction id, USE-CANDIDATE).
fn sent(agent: &mut IceAgent, now: u64) -> Vec<(SocketAddr, TransactionId, bool)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some((dest, len)) = agent.poll_transmit(now, &mut buf) {
        let msg = StunMessage::parse(&buf[..len]).unwrap();
        assert_eq!(msg.class, StunClass::Request);
        msg.verify_integrity(PEER_PWD.as_bytes()).unwrap();
        assert_eq!(msg.username, Some(&b"peer:ours"[..]));
        // SOFTWARE is the first attribute, starting with "rtpengine".
        assert_eq!(u16::from_be_bytes([buf[20], buf[21]]), attr::SOFTWARE);
        assert!(buf[24..].starts_with(b"rtpengine"));
        out.push((dest, msg.transaction_id, msg.use_candidate));
        assert!(out.len() < 50, "runaway");
    }
    out
}

/// The peer's success response to `tid`, as seen from `from`.
fn success(tid: &TransactionId, key: &str) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n =
        write_binding_success(&mut buf, tid, addr("203.0.113.1:30000"), key.as_bytes()).unwrap();
    buf[..n].to_vec()
}

fn respond(
    agent: &mut IceAgent,
    now: u64,
    from: SocketAddr,
    tid: &TransactionId,
) -> ResponseOutcome {
    let pkt = success(tid, PEER_PWD);
    let msg = StunMessage::parse(&pkt).unwrap();
    agent.handle_response(now, from, &msg).unwrap()
}

#[test]
fn controlled_agent_reaches_a_peer_behind_nat_through_a_triggered_check() {
    let host = addr("198.51.100.4:2412");
    let nat = addr("198.51.100.8:3412");
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, false, 1, &[host], 0);
    // The host candidate is checked at once; nobody answers.
    let first = sent(&mut a, 0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, host);
    assert_eq!(a.poll_timeout(), Some(RTO_MS));
    // The peer's check arrives from its NAT binding: a triggered check goes back there
    // before any retransmission.
    a.handle_request(30, nat, false, None);
    assert_eq!(a.poll_timeout(), Some(0));
    let trig = sent(&mut a, 30);
    assert_eq!(trig.len(), 1);
    assert_eq!((trig[0].0, trig[0].2), (nat, false));
    assert_eq!(
        respond(&mut a, 40, nat, &trig[0].1),
        ResponseOutcome::Succeeded { selected: false }
    );
    assert_eq!(a.selected(), None, "controlled: the peer nominates");
    a.handle_request(60, nat, true, None);
    assert_eq!(a.selected(), Some(nat));
    // The unanswered host check is still retransmitted until it fails.
    assert_eq!(a.pair_state(host), Some(PairState::InProgress));
}

#[test]
fn controlling_agent_nominates_an_ice_lite_peer() {
    let c1 = addr("198.51.100.4:2436");
    let c2 = addr("198.51.100.4:2440");
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, true, 1, &[c1, c2], 0);
    let at0 = sent(&mut a, 0);
    assert_eq!(at0.iter().map(|s| s.0).collect::<Vec<_>>(), [c1]);
    // Paced: the second candidate after Ta.
    assert!(sent(&mut a, TA_MS - 1).is_empty());
    let at_ta = sent(&mut a, TA_MS);
    assert_eq!(at_ta.iter().map(|s| s.0).collect::<Vec<_>>(), [c2]);
    // The lite peer answers the first: we nominate it with a triggered check.
    assert_eq!(
        respond(&mut a, 25, c1, &at0[0].1),
        ResponseOutcome::Succeeded { selected: false }
    );
    let nom = sent(&mut a, 25);
    assert_eq!(nom.len(), 1);
    assert_eq!((nom[0].0, nom[0].2), (c1, true));
    assert_ne!(nom[0].1, at0[0].1, "a new transaction");
    assert_eq!(
        respond(&mut a, 30, c1, &nom[0].1),
        ResponseOutcome::Succeeded { selected: true }
    );
    assert_eq!(a.selected(), Some(c1));
    // A late success for the other pair changes nothing.
    respond(&mut a, 35, c2, &at_ta[0].1);
    assert_eq!(a.selected(), Some(c1));
}

#[test]
fn checks_are_retransmitted_doubling_then_fail() {
    let c = addr("198.51.100.4:2000");
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, true, 2, &[c], 0);
    let first = sent(&mut a, 0);
    let mut now = 0;
    let mut rto = RTO_MS;
    for _ in 0..MAX_RETRANSMITS {
        assert!(sent(&mut a, now + rto - 1).is_empty());
        now += rto;
        let again = sent(&mut a, now);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, first[0].1, "same transaction");
        rto *= 2;
    }
    assert!(sent(&mut a, now + rto).is_empty());
    assert_eq!(a.pair_state(c), Some(PairState::Failed));
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn responses_need_the_peers_integrity_and_our_transaction() {
    let c = addr("198.51.100.4:2000");
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, true, 1, &[c], 0);
    let first = sent(&mut a, 0);
    let forged = success(&first[0].1, "not-the-password");
    let msg = StunMessage::parse(&forged).unwrap();
    assert!(a.handle_response(5, c, &msg).is_err());
    let other = success(&[7; 12], PEER_PWD);
    let msg = StunMessage::parse(&other).unwrap();
    assert_eq!(
        a.handle_response(5, c, &msg).unwrap(),
        ResponseOutcome::Unknown
    );
    assert_eq!(a.pair_state(c), Some(PairState::InProgress));
}

#[test]
fn peer_reflexive_pairs_are_bounded() {
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, false, 1, &[], 0);
    for port in 0..(MAX_PAIRS as u16 + 5) {
        a.handle_request(
            0,
            SocketAddr::from(([198, 51, 100, 9], 4000 + port)),
            false,
            None,
        );
    }
    assert_eq!(sent(&mut a, 0).len(), MAX_PAIRS);
}

#[test]
fn a_role_conflict_goes_to_the_larger_tie_breaker() {
    let peer = addr("198.51.100.4:2412");
    // Both controlled (rtpengine's role toward a subscriber that answers as controlled).
    let mut a = IceAgent::new("ours", "peer", PEER_PWD, false, 1, &[peer], 0);
    a.tie_breaker = 10;
    assert_eq!(
        a.handle_request(0, peer, false, Some(IceRole::Controlled(20))),
        RequestOutcome::RoleConflict
    );
    assert!(!a.is_controlling(), "the peer's is larger: it switches");
    let first = sent(&mut a, 0);
    assert_eq!(
        respond(&mut a, 10, peer, &first[0].1),
        ResponseOutcome::Succeeded { selected: false }
    );
    // Ours is larger: we control, and nominate the pair that already succeeded.
    assert_eq!(
        a.handle_request(20, peer, false, Some(IceRole::Controlled(5))),
        RequestOutcome::Accepted
    );
    assert!(a.is_controlling());
    let nomination = sent(&mut a, 20);
    assert_eq!((nomination[0].0, nomination[0].2), (peer, true));
    assert_eq!(
        respond(&mut a, 30, peer, &nomination[0].1),
        ResponseOutcome::Succeeded { selected: true }
    );
    assert_eq!(a.selected(), Some(peer));

    // Both controlling: the larger keeps control, the other gives it up.
    let mut b = IceAgent::new("ours", "peer", PEER_PWD, true, 1, &[peer], 0);
    b.tie_breaker = 10;
    assert_eq!(
        b.handle_request(0, peer, false, Some(IceRole::Controlling(5))),
        RequestOutcome::RoleConflict
    );
    assert!(b.is_controlling());
    assert_eq!(
        b.handle_request(0, peer, false, Some(IceRole::Controlling(20))),
        RequestOutcome::Accepted
    );
    assert!(!b.is_controlling());
    // No conflict: roles stay.
    assert_eq!(
        b.handle_request(0, peer, false, Some(IceRole::Controlling(1))),
        RequestOutcome::Accepted
    );
    assert!(!b.is_controlling());
}
