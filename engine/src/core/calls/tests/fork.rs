//! Forked calls: parallel branches of one offer, told apart by `via-branch` as rtpengine does.

use super::*;
use crate::core::calls::model::LegId;

fn branch_offer(call: &str, from: &str, branch: &str, sdp: &str) -> OfferAnswer {
    let mut r = offer_req(call, from, sdp);
    r.via_branch = Some(branch.into());
    r
}

fn branch_answer(call: &str, from: &str, to: &str, branch: &str, sdp: &str) -> OfferAnswer {
    let mut r = answer_req(call, from, to, sdp);
    r.via_branch = Some(branch.into());
    r
}

fn media_port(sdp: &str) -> u16 {
    let m = sdp.lines().find(|l| l.starts_with("m=")).unwrap();
    m.split(' ').nth(1).unwrap().parse().unwrap()
}

fn delete_branch(call: &str, from: &str, branch: &str, delay: Option<Duration>) -> Delete {
    Delete {
        call_id: call.into(),
        from_tag: Some(from.into()),
        via_branch: Some(branch.into()),
        delete_delay: delay,
        ..Default::default()
    }
}

#[test]
fn parallel_branches_get_their_own_legs_and_ports() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let o1 = calls
        .offer(
            &branch_offer("fork", "A", "z9hG4bK.0", OFFER_B),
            clock.now(),
        )
        .unwrap();
    let o2 = calls
        .offer(
            &branch_offer("fork", "A", "z9hG4bK.1", OFFER_B),
            clock.now(),
        )
        .unwrap();
    assert_ne!(
        media_port(&o1.sdp),
        media_port(&o2.sdp),
        "one port per branch"
    );
    // The same branch offered again (retransmission, re-sent offer) keeps its ports.
    let o1b = calls
        .offer(
            &branch_offer("fork", "A", "z9hG4bK.0", OFFER_B),
            clock.now(),
        )
        .unwrap();
    assert_eq!(media_port(&o1.sdp), media_port(&o1b.sdp));
    let call = &calls.calls["fork"];
    assert_eq!(call.legs.len(), 3, "caller and two branches");
    assert_eq!(call.legs[1].via_branch.as_deref(), Some("z9hG4bK.0"));
    assert_eq!(call.legs[2].via_branch.as_deref(), Some("z9hG4bK.1"));
    assert_eq!(call.legs[0].via_branch, None);

    // The second branch answers: it is the caller's peer, with its own tag.
    let a = calls
        .answer(
            &branch_answer("fork", "A", "B1", "z9hG4bK.1", ANSWER_B),
            clock.now(),
        )
        .unwrap();
    let call = &calls.calls["fork"];
    assert_eq!(call.legs[2].tag, "B1");
    assert_eq!(call.legs[0].peer, Some(LegId(2)));
    assert_eq!(call.legs[2].peer, Some(LegId(0)));
    assert!(
        call.legs[1].tag.is_empty(),
        "the other branch did not answer"
    );
    // The caller's ports are the same whichever branch answers.
    assert_eq!(
        media_port(&a.sdp),
        call.legs[0].medias[0].ports.unwrap().rtp.addr.port()
    );
}

#[test]
fn deleting_one_branch_keeps_the_call_and_the_other_branch() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let mut clock = Clock::new();
    calls
        .offer(&branch_offer("fork", "A", "foo.0", OFFER_B), clock.now())
        .unwrap();
    let o2 = calls
        .offer(&branch_offer("fork", "A", "foo.1", OFFER_B), clock.now())
        .unwrap();
    let gone_port = media_port(&o2.sdp);
    let reply = calls
        .delete(
            &delete_branch("fork", "A", "foo.1", Some(Duration::ZERO)),
            clock.now(),
        )
        .unwrap();
    assert!(reply.snapshot.is_some());
    let call = &calls.calls["fork"];
    assert_eq!(call.legs.len(), 2);
    assert_eq!(call.leg_by_branch("foo.1"), None);
    // The caller falls back to the remaining branch; the deleted one's ports leave the plan.
    assert_eq!(call.legs[0].peer, Some(LegId(1)));
    let plan = media.plan(call.key);
    let ports: Vec<u16> = call
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .flat_map(|p| [p.rtp.addr.port(), p.rtcp.addr.port()])
        .collect();
    assert_eq!(plan.streams.len(), 4);
    assert!(!ports.contains(&gone_port));

    // The remaining branch answers normally.
    calls
        .answer(
            &branch_answer("fork", "A", "B0", "foo.0", ANSWER_B),
            clock.now(),
        )
        .unwrap();
    assert_eq!(calls.calls["fork"].legs[1].tag, "B0");

    // With a delay the branch lingers, then the timer removes it.
    calls
        .offer(&branch_offer("fork2", "A", "x.0", OFFER_B), clock.now())
        .unwrap();
    calls
        .offer(&branch_offer("fork2", "A", "x.1", OFFER_B), clock.now())
        .unwrap();
    calls
        .delete(
            &delete_branch("fork2", "A", "x.0", Some(Duration::from_secs(5))),
            clock.now(),
        )
        .unwrap();
    assert_eq!(calls.calls["fork2"].legs.len(), 3);
    clock.advance(Duration::from_secs(6));
    calls.tick(clock.now());
    let call = &calls.calls["fork2"];
    assert_eq!(call.legs.len(), 2);
    assert_eq!(call.legs[1].via_branch.as_deref(), Some("x.1"));
    assert_eq!(call.legs[0].peer, Some(LegId(1)));
    assert_eq!(call.legs[1].peer, Some(LegId(0)));
}

#[test]
fn deleting_the_last_branch_deletes_the_call() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&branch_offer("one", "A", "only", OFFER_B), clock.now())
        .unwrap();
    calls
        .delete(
            &delete_branch("one", "A", "only", Some(Duration::ZERO)),
            clock.now(),
        )
        .unwrap();
    assert!(!calls.calls.contains_key("one"));
    // A branch that does not exist: an ordinary delete of the whole call.
    calls
        .offer(&branch_offer("two", "A", "b.0", OFFER_B), clock.now())
        .unwrap();
    calls
        .offer(&branch_offer("two", "A", "b.1", OFFER_B), clock.now())
        .unwrap();
    calls
        .delete(
            &delete_branch("two", "A", "nope", Some(Duration::ZERO)),
            clock.now(),
        )
        .unwrap();
    assert!(!calls.calls.contains_key("two"));
}

#[test]
fn offers_without_branch_keep_one_callee_leg() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let o1 = calls
        .offer(&offer_req("plain", "A", OFFER_B), clock.now())
        .unwrap();
    let o2 = calls
        .offer(&offer_req("plain", "A", OFFER_B), clock.now())
        .unwrap();
    assert_eq!(media_port(&o1.sdp), media_port(&o2.sdp));
    assert_eq!(calls.calls["plain"].legs.len(), 2);
    // A first offer without a branch, then one with: the existing callee leg takes it.
    calls
        .offer(&branch_offer("plain", "A", "late", OFFER_B), clock.now())
        .unwrap();
    let call = &calls.calls["plain"];
    assert_eq!(call.legs.len(), 2);
    assert_eq!(call.legs[1].via_branch.as_deref(), Some("late"));
}

/// `rtcp-mux` options are per branch: the caller multiplexes; one branch is offered
/// `demux` (no rtcp-mux toward it, the caller keeps its own), the other `offer`. The
/// `demux` branch answers without rtcp-mux, and the caller still gets it.
#[test]
fn rtcp_mux_demux_of_the_answering_branch_holds() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let muxed = format!("{OFFER_B}a=rtcp-mux\n");
    let mut b1 = branch_offer("mux", "A", "x123", &muxed);
    b1.rtcp_mux.demux = true;
    let o1 = calls.offer(&b1, clock.now()).unwrap().sdp;
    assert!(!o1.contains("a=rtcp-mux"), "{o1}");
    let mut b2 = branch_offer("mux", "A", "x456", &muxed);
    b2.rtcp_mux.offer = true;
    let o2 = calls.offer(&b2, clock.now()).unwrap().sdp;
    assert!(o2.contains("a=rtcp-mux"), "{o2}");
    let a = calls
        .answer(
            &branch_answer("mux", "A", "B1", "x123", ANSWER_B),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert!(a.contains("a=rtcp-mux"), "{a}");
    let call = &calls.calls["mux"];
    assert!(call.legs[0].medias[0].rtcp_mux);
    assert!(!call.legs[1].medias[0].rtcp_mux);
}
