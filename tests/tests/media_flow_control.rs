//! `block media` / `silence media` of one media flow (`to-tag`, `to-label`, `all` with
//! `offer-answer`, `except-offer-answer`, `flows`) on the real binary: a caller's media
//! reaches its peer and a subscriber, and each flow is blocked or silenced on its own;
//! rtpengine's error texts when the flow does not exist.

mod transcode_common;

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::call::{parse_reply_sdp, TwoPartyCall};
use ngmedia_tests::{dict, NgClient, RtpEndpoint, Value};
use transcode_common::*;

const WAIT: Duration = Duration::from_millis(400);
const SHORT: Duration = Duration::from_millis(150);

fn error_reason(ng: &NgClient, body: Value) -> String {
    let reply = ng.request(body).expect("a reply");
    assert_eq!(reply.str_at("result"), Some("error"), "{reply:?}");
    reply.str_at("error-reason").unwrap_or_default().to_string()
}

/// A call A→B with C subscribed to A (PCMU), everything latched.
fn setup(ng: &NgClient, id: &str) -> (TwoPartyCall, RtpEndpoint, String, SocketAddr) {
    let mut call = TwoPartyCall::setup(ng, id);
    call.exchange(2, Duration::from_millis(5));
    call.a.recv_many(2, WAIT);
    call.b.recv_many(2, WAIT);
    let c = RtpEndpoint::new(0x0c0c_0042);
    let reply = ng.ok(dict! {
        "command" => "subscribe request", "call-id" => id, "from-tag" => call.from_tag.as_str(),
    });
    let to_tag = reply.str_at("to-tag").unwrap().to_string();
    let c_src = parse_reply_sdp(&reply).audio_addr();
    ng.ok(dict! {
        "command" => "subscribe answer", "call-id" => id, "to-tag" => to_tag.as_str(),
        "sdp" => sdp(c.port(), &[(0, "PCMU/8000", None)], Some(20)).replace("a=sendrecv", "a=recvonly"),
    });
    (call, c, to_tag, c_src)
}

/// A sends one packet; what B and C receive (payloads).
fn step(call: &mut TwoPartyCall, c: &RtpEndpoint) -> (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>) {
    let sent = call.a.send_next(call.a_dest);
    let b = call.b.recv(WAIT).map(|(p, _)| p);
    let c = c
        .recv(if b.is_some() { SHORT } else { WAIT })
        .map(|(p, _)| p);
    (sent, b, c)
}

fn media(ng: &NgClient, command: &str, call: &TwoPartyCall, extra: (&str, &str)) {
    let mut body = dict! {
        "command" => command, "call-id" => call.call_id.as_str(),
        "from-tag" => call.from_tag.as_str(),
    };
    if let Value::Dict(d) = &mut body {
        d.push((extra.0.as_bytes().to_vec(), Value::from(extra.1)));
    }
    let r = ng.ok(body);
    assert_eq!(r.str_at("result"), Some("ok"), "{r:?}");
    assert!(r.str_at("warning").is_none(), "{r:?}");
}

#[test]
fn one_flow_is_blocked_or_silenced_and_the_others_keep_flowing() {
    let daemon = start("auto");
    let ng = daemon.client();
    let (mut call, c, c_tag, c_src) = setup(&ng, "flow-ctl");
    let (sent, b, to_c) = step(&mut call, &c);
    assert_eq!((b.as_ref(), to_c.as_ref()), (Some(&sent), Some(&sent)));
    let b_tag = call.to_tag.clone();

    // A → C blocked: B still gets A's media, C nothing.
    media(&ng, "block media", &call, ("to-tag", c_tag.as_str()));
    let (sent, b, to_c) = step(&mut call, &c);
    assert_eq!(b, Some(sent));
    assert!(to_c.is_none(), "the blocked flow carries nothing");
    media(&ng, "unblock media", &call, ("to-tag", c_tag.as_str()));
    let (sent, _, to_c) = step(&mut call, &c);
    assert_eq!(to_c, Some(sent));

    // A → B silenced: B gets silence with A's numbering, C what A sent.
    media(&ng, "silence media", &call, ("to-tag", b_tag.as_str()));
    let (sent, b, to_c) = step(&mut call, &c);
    let b = b.expect("B still receives");
    assert_eq!(&b[..12], &sent[..12]);
    assert!(b[12..].iter().all(|&x| x == 0xff), "PCMU silence toward B");
    assert_eq!(to_c, Some(sent), "the subscriber's flow is untouched");
    media(&ng, "unsilence media", &call, ("to-tag", b_tag.as_str()));

    // A → C silenced by `all=except-offer-answer`.
    media(&ng, "silence media", &call, ("all", "except-offer-answer"));
    let (sent, b, to_c) = step(&mut call, &c);
    assert_eq!(b, Some(sent.clone()));
    let to_c = to_c.expect("C still receives");
    assert!(
        to_c[12..].iter().all(|&x| x == 0xff),
        "PCMU silence toward C"
    );
    assert_eq!(&to_c[2..8], &sent[2..8]);
    media(
        &ng,
        "unsilence media",
        &call,
        ("all", "except-offer-answer"),
    );

    // A → B blocked by `all=offer-answer`: only C gets A's media.
    media(&ng, "block media", &call, ("all", "offer-answer"));
    let (sent, b, to_c) = step(&mut call, &c);
    assert!(b.is_none());
    assert_eq!(to_c, Some(sent));
    // `all=flows` unblocks both flows.
    media(&ng, "unblock media", &call, ("all", "flows"));
    let (sent, b, to_c) = step(&mut call, &c);
    assert_eq!((b, to_c), (Some(sent.clone()), Some(sent)));
    let _ = c_src;

    // rtpengine's errors.
    let body = |to: (&str, &str)| {
        let mut d = dict! {
            "command" => "block media", "call-id" => "flow-ctl", "from-tag" => call.from_tag.as_str(),
        };
        if let Value::Dict(v) = &mut d {
            v.push((to.0.as_bytes().to_vec(), Value::from(to.1)));
        }
        d
    };
    assert_eq!(
        error_reason(&ng, body(("to-tag", "nobody"))),
        "Media flow not found (to-tag not found)"
    );
    assert_eq!(
        error_reason(&ng, body(("to-label", "nobody"))),
        "Media flow not found (to-label not found)"
    );
    assert_eq!(
        error_reason(&ng, body(("to-tag", call.from_tag.as_str()))),
        "Media flow not found (to-tag not subscribed)"
    );
    // B has no subscriber: nothing for `except-offer-answer` to name.
    let r = ng
        .request(dict! {
            "command" => "block media", "call-id" => "flow-ctl", "from-tag" => b_tag.as_str(),
            "all" => "except-offer-answer",
        })
        .unwrap();
    assert_eq!(
        r.str_at("error-reason"),
        Some("No eligible media subscriptions found")
    );
}
