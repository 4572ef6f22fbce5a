//! Subscriptions: `subscribe request`/`answer`, `unsubscribe` and `publish` against the
//! in-memory media plane.

use super::persist::MemoryStore;
use super::*;
use crate::core::plan::{CopySink, StreamPlan};

const SUB_ANSWER: &str = "v=0
o=rec 1 1 IN IP4 127.0.0.5
s=-
c=IN IP4 127.0.0.5
t=0 0
m=audio 40020 RTP/AVP 0
a=recvonly
";

const SUB_ANSWER_PCMA: &str = "v=0
o=rec 1 1 IN IP4 127.0.0.5
s=-
c=IN IP4 127.0.0.5
t=0 0
m=audio 40020 RTP/AVP 8
a=recvonly
";

/// A plain A/B call on 30000 (facing A) and 30002 (facing B).
fn call(calls: &mut Calls, clock: &Clock) {
    calls
        .offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    calls
        .answer(&answer_req("c1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
}

fn sub_req(from: &str) -> OfferAnswer {
    OfferAnswer {
        call_id: "c1".into(),
        from_tag: from.into(),
        ..Default::default()
    }
}

fn sub_answer(to: &str, sdp: &str) -> OfferAnswer {
    OfferAnswer {
        call_id: "c1".into(),
        to_tag: Some(to.into()),
        sdp: crlf(sdp),
        ..Default::default()
    }
}

fn stream(plan: &CallPlan, calls: &Calls, port: u16) -> StreamPlan {
    let key = calls.calls["c1"]
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .find(|p| p.rtp.addr.port() == port)
        .unwrap()
        .rtp
        .key;
    plan.streams.iter().find(|s| s.port == key).unwrap().clone()
}

fn port_key(calls: &Calls, port: u16) -> PortKey {
    calls.calls["c1"]
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .find(|p| p.rtp.addr.port() == port)
        .unwrap()
        .rtp
        .key
}

#[test]
fn subscriber_gets_an_offer_mirroring_the_source_and_copies_after_its_answer() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    call(&mut calls, &clock);

    let reply = calls
        .subscribe_request(&sub_req("tagA"), clock.now())
        .unwrap();
    assert_eq!(reply.from_tag.as_deref(), Some("tagA"));
    assert_eq!(reply.from_tags, ["tagA"]);
    assert!(reply.tag_medias.is_none());
    assert_eq!(
        reply.sdp,
        crlf(
            "v=0
o=alice 2890844526 2890844526 IN IP4 198.51.100.7
s=call
c=IN IP4 127.0.0.1
t=0 0
m=audio 30004 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendonly
a=rtcp:30005
a=ptime:20
"
        )
    );
    // No copies before the answer.
    let key = calls.calls["c1"].key;
    assert!(stream(&media.plan(key), &calls, 30000).copies.is_empty());

    calls
        .subscribe_answer(&sub_answer(&reply.to_tag, SUB_ANSWER), clock.now())
        .unwrap();
    let plan = media.plan(key);
    // What A sends (arriving on 30000) is copied to the subscriber's socket too; B's media
    // is not.
    let a = stream(&plan, &calls, 30000);
    assert_eq!(
        a.copies,
        [CopySink {
            port: port_key(&calls, 30004),
            egress: false,
            block: false,
            silence: false,
        }]
    );
    assert!(a.rtp_sink.is_some());
    assert!(stream(&plan, &calls, 30002).copies.is_empty());
    // The subscriber sends nothing on and takes PCMU as A sends it: no transcoder.
    let sub = stream(&plan, &calls, 30004);
    assert_eq!(sub.rtp_sink, None);
    assert_eq!(sub.rtcp_sink, None);
    assert_eq!(sub.feed, None);
    assert_eq!(sub.expected, Some("127.0.0.5:40020".parse().unwrap()));

    // unsubscribe: the copies stop and the subscriber's ports are given back.
    calls
        .unsubscribe(&sub_answer(&reply.to_tag, ""), clock.now())
        .unwrap();
    let plan = media.plan(key);
    assert!(plan.streams.iter().all(|s| s.copies.is_empty()));
    assert_eq!(plan.streams.len(), 4);
}

#[test]
fn a_subscriber_that_takes_another_codec_gets_a_transcoder_only_when_allowed() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    call(&mut calls, &clock);
    let reply = calls
        .subscribe_request(&sub_req("tagA"), clock.now())
        .unwrap();
    let err = calls
        .subscribe_answer(&sub_answer(&reply.to_tag, SUB_ANSWER_PCMA), clock.now())
        .unwrap_err();
    assert_eq!(err.to_string(), "Failed to process subscription answer");
    let mut req = sub_answer(&reply.to_tag, SUB_ANSWER_PCMA);
    req.flags.allow_transcoding = true;
    calls.subscribe_answer(&req, clock.now()).unwrap();
    let sub = stream(&media.plan(calls.calls["c1"].key), &calls, 30004);
    let feed = sub.feed.expect("a transcoder for the copies");
    assert_eq!((feed.input.pt, feed.output.pt), (0, 8));
}

#[test]
fn several_sources_siprec_and_errors() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004, 30006]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    call(&mut calls, &clock);
    let mut req = sub_req("");
    req.flags.all = true;
    req.flags.siprec = true;
    let reply = calls.subscribe_request(&req, clock.now()).unwrap();
    assert_eq!(reply.from_tag, None);
    assert_eq!(reply.from_tags, ["tagA", "tagB"]);
    let medias = reply.tag_medias.unwrap();
    assert_eq!(medias[0].medias[0].label, "1");
    assert_eq!(medias[1].medias[0].label, "0");
    assert!(reply.sdp.contains("a=label:1\r\n"));
    assert!(reply.sdp.contains("s=rtpengine-ngmedia-"));
    assert_eq!(reply.sdp.matches("m=audio 3000").count(), 2);

    let unknown = |r: Result<SubscribeReply, CallError>| r.unwrap_err().to_string();
    assert_eq!(
        unknown(calls.subscribe_request(&sub_req("nope"), clock.now())),
        "From-tag given, but no such tag exists"
    );
    assert_eq!(
        unknown(calls.subscribe_request(&sub_req(""), clock.now())),
        "No call participant specified"
    );
    let mut tags = sub_req("");
    tags.from_tags = vec!["x".into(), "y".into()];
    assert_eq!(
        unknown(calls.subscribe_request(&tags, clock.now())),
        "No monologues matched"
    );
    assert_eq!(
        calls
            .subscribe_answer(&sub_answer("nope", SUB_ANSWER), clock.now())
            .unwrap_err()
            .to_string(),
        "To-tag not found"
    );
    assert_eq!(
        calls
            .unsubscribe(&sub_answer("nope", ""), clock.now())
            .unwrap_err()
            .to_string(),
        "To-tag not found"
    );
}

#[test]
fn publish_answers_with_one_codec_and_subscribers_mirror_it() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("c1", "pub", OFFER_B);
    req.codec.accept = vec!["PCMA".into()];
    let sdp = calls.publish(&req, clock.now()).unwrap();
    assert!(sdp.contains("m=audio 30000 RTP/AVP 8\r\n"), "{sdp}");
    assert!(sdp.contains("a=recvonly\r\n"));
    assert!(!sdp.contains("PCMU"));
    let reply = calls
        .subscribe_request(&sub_req("pub"), clock.now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30002 RTP/AVP 8\r\n"),
        "{}",
        reply.sdp
    );
    calls
        .subscribe_answer(&sub_answer(&reply.to_tag, SUB_ANSWER_PCMA), clock.now())
        .unwrap();
    let publisher = stream(&media.plan(calls.calls["c1"].key), &calls, 30000);
    assert_eq!(publisher.rtp_sink, None);
    assert_eq!(publisher.copies.len(), 1);
}

#[test]
fn subscriptions_survive_a_takeover() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let store = Arc::new(MemoryStore::default());
    calls.set_store(store.clone());
    let clock = Clock::new();
    call(&mut calls, &clock);
    let reply = calls
        .subscribe_request(&sub_req("tagA"), clock.now())
        .unwrap();
    let mut req = sub_answer(&reply.to_tag, SUB_ANSWER_PCMA);
    req.flags.allow_transcoding = true;
    calls.subscribe_answer(&req, clock.now()).unwrap();
    let state = store.get("c1").unwrap();

    let media_b = FakeMedia::scripted(&[]);
    let mut b = calls_with(media_b.clone(), EngineConfig::default());
    assert_eq!(b.restore(vec![state], clock.now()).restored, ["c1"]);
    let plan = media_b.plan(b.calls["c1"].key);
    let a = stream(&plan, &b, 30000);
    assert_eq!(a.copies.len(), 1);
    assert_eq!(a.copies[0].port, port_key(&b, 30004));
    assert!(stream(&plan, &b, 30004).feed.is_some());
    // The restored subscription can be renewed and ended like any other.
    let mut again = sub_req("tagA");
    again.to_tag = Some(reply.to_tag.clone());
    let renewed = b.subscribe_request(&again, clock.now()).unwrap();
    assert_eq!(renewed.to_tag, reply.to_tag);
    assert!(renewed.sdp.contains("m=audio 30004 "));
}
