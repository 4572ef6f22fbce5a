//! Interception: the sink's decision becomes `intercept` flags in the plan, and nothing
//! else about the call (SDP, stats, recording) changes.

use super::*;
use crate::core::tap::{InterceptCall, InterceptSink, LegMask, TapStream};

/// Copies the legs whose tag is in `targets`, plus their peers, like the daemon's sink.
#[derive(Default)]
struct FakeSink {
    targets: Mutex<Vec<String>>,
    seen: Mutex<Vec<InterceptCall>>,
    ended: Mutex<Vec<CallKey>>,
}

impl InterceptSink for FakeSink {
    fn update(&self, call: &InterceptCall) -> LegMask {
        self.seen.lock().unwrap().push(call.clone());
        let targets = self.targets.lock().unwrap();
        let mut mask = 0;
        for (i, leg) in call.legs.iter().enumerate() {
            if leg.tags.iter().any(|t| targets.contains(t)) || call.forwarding {
                mask |= 1 << i;
                if let Some(p) = leg.peer {
                    mask |= 1 << p;
                }
            }
        }
        mask
    }
    fn ended(&self, call: CallKey) {
        self.ended.lock().unwrap().push(call);
    }
    fn forwarding_enabled(&self) -> bool {
        true
    }
}

fn intercepted(plan: &CallPlan) -> Vec<Option<TapStream>> {
    plan.streams.iter().map(|s| s.intercept).collect()
}

#[test]
fn intercept_flags_follow_the_sink_without_changing_the_call() {
    let media = FakeMedia::scripted(&[30046, 30030]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let sink = Arc::new(FakeSink::default());
    calls.set_interceptor(sink.clone());
    let clock = Clock::new();
    let offer = calls
        .offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    calls
        .answer(&answer_req("c1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
    let key = calls.calls["c1"].key;
    assert_eq!(intercepted(&media.plan(key)), vec![None; 4]);
    let seen = sink.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.call_id, "c1");
    assert_eq!(seen.legs[0].tags, vec!["tagA".to_owned()]);
    assert_eq!(seen.legs[0].peer, Some(1));
    assert_eq!(
        seen.legs[1].addresses,
        vec![
            "127.0.0.3:40010".parse().unwrap(),
            "127.0.0.3:40011".parse().unwrap()
        ]
    );

    // A task for B arrives mid-call: both parties' RTP sockets copy, RTCP never does.
    sink.targets.lock().unwrap().push("tagB".into());
    let before = media.plan(key);
    calls.refresh_intercepts();
    let after = media.plan(key);
    assert_eq!(
        intercepted(&after),
        vec![
            Some(TapStream { leg: 0, media: 0 }),
            None,
            Some(TapStream { leg: 1, media: 0 }),
            None
        ]
    );
    for (a, b) in before.streams.iter().zip(&after.streams) {
        assert_eq!(
            (a.port, a.expected, a.rtp_sink, a.tap),
            (b.port, b.expected, b.rtp_sink, b.tap)
        );
        assert!(!b.relatch);
    }
    // Same decision again: no new plan.
    let applied = calls.calls.get_mut("c1").map(|c| c.intercept).unwrap();
    assert_eq!(applied, 0b11);

    // A re-offer produces the same SDP as without interception.
    let again = calls
        .offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    assert_eq!(again.sdp, offer.sdp);

    sink.targets.lock().unwrap().clear();
    calls.refresh_intercepts();
    assert_eq!(intercepted(&media.plan(key)), vec![None; 4]);

    calls
        .delete(
            &Delete {
                call_id: "c1".into(),
                delete_delay: Some(Duration::ZERO),
                ..Default::default()
            },
            clock.now(),
        )
        .unwrap();
    assert_eq!(*sink.ended.lock().unwrap(), vec![key]);
}

#[test]
fn forwarding_copies_every_leg_and_needs_a_sink() {
    let media = FakeMedia::scripted(&[30046, 30030]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&offer_req("f1", "tagA", OFFER_B), clock.now())
        .unwrap();
    calls
        .answer(&answer_req("f1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
    assert_eq!(
        calls.forwarding("f1", [None, None], true, clock.now()),
        Err(CallError::ForwardingDisabled)
    );
    calls.set_interceptor(Arc::new(FakeSink::default()));
    assert_eq!(
        calls.forwarding("nope", [None, None], true, clock.now()),
        Err(CallError::UnknownCall)
    );
    assert_eq!(
        calls.forwarding("f1", [Some("zzz"), None], true, clock.now()),
        Err(CallError::NotFound)
    );
    calls
        .forwarding("f1", [Some("tagA"), None], true, clock.now())
        .unwrap();
    let key = calls.calls["f1"].key;
    assert_eq!(
        intercepted(&media.plan(key))
            .iter()
            .filter(|s| s.is_some())
            .count(),
        2
    );
    calls
        .forwarding("f1", [None, None], false, clock.now())
        .unwrap();
    assert_eq!(intercepted(&media.plan(key)), vec![None; 4]);
}
