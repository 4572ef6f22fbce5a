//! Subscriptions on the real daemon: a third party subscribes to one side of a call
//! (`subscribe request` / `subscribe answer`) and receives copies of its RTP, unchanged or
//! transcoded to the codec it took; `unsubscribe` stops the copies; `publish` creates a
//! party without a peer whose media only subscribers get; unknown tags are errors.

mod transcode_common;

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::call::{parse_reply_sdp, TwoPartyCall};
use ngmedia_tests::{dict, NgClient, RtpEndpoint, Value};
use transcode_common::*;

/// The subscriber's answer: receives at `port` with `pts`.
fn recv_sdp(port: u16, pts: &[Pt<'_>]) -> String {
    sdp(port, pts, Some(20)).replace("a=sendrecv", "a=recvonly")
}

fn subscribe(ng: &NgClient, call_id: &str, from_tag: &str) -> (String, SocketAddr, Value) {
    let reply = ng.ok(dict! {
        "command" => "subscribe request", "call-id" => call_id, "from-tag" => from_tag,
    });
    let to_tag = reply.str_at("to-tag").expect("to-tag").to_string();
    assert_eq!(reply.str_at("from-tag"), Some(from_tag));
    let sdp = parse_reply_sdp(&reply);
    assert_eq!(sdp.audio().direction(), Some("sendonly"));
    (to_tag, sdp.audio_addr(), reply)
}

fn error_reason(ng: &NgClient, body: Value) -> String {
    let reply = ng.request(body).expect("a reply");
    assert_eq!(reply.str_at("result"), Some("error"), "{reply:?}");
    reply.str_at("error-reason").unwrap_or_default().to_string()
}

#[test]
fn subscriber_receives_copies_until_it_unsubscribes_io_uring() {
    copies_until_unsubscribe("auto");
}

#[test]
fn subscriber_receives_copies_until_it_unsubscribes_epoll() {
    copies_until_unsubscribe("epoll");
}

fn copies_until_unsubscribe(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "sub-copy");
    // Latch both sides.
    call.exchange(2, Duration::from_millis(5));
    assert_eq!(call.a.recv_many(2, Duration::from_secs(1)).len(), 2);
    assert_eq!(call.b.recv_many(2, Duration::from_secs(1)).len(), 2);

    let mut c = RtpEndpoint::new(0x0c0c_0003);
    let (to_tag, c_src, _) = subscribe(&ng, &call.call_id, &call.from_tag);
    // Nothing flows before the subscriber answers.
    call.a.send_next(call.a_dest);
    assert!(call.b.recv(Duration::from_secs(1)).is_some());
    assert!(c.recv(Duration::from_millis(200)).is_none());
    ng.ok(dict! {
        "command" => "subscribe answer", "call-id" => call.call_id.as_str(),
        "to-tag" => to_tag.as_str(),
        "sdp" => recv_sdp(c.port(), &[(0, "PCMU/8000", None)]),
    });

    // What A sends reaches B and, byte for byte, the subscriber; B's media does not.
    for _ in 0..5 {
        let sent = call.a.send_next(call.a_dest);
        let (to_b, _) = call.b.recv(Duration::from_secs(1)).expect("B receives");
        let (to_c, from) = c.recv(Duration::from_secs(1)).expect("subscriber receives");
        assert_eq!(to_b, sent);
        assert_eq!(to_c, sent);
        assert_eq!(from, c_src, "copies come from the subscriber's own socket");
    }
    call.b.send_next(call.b_dest);
    assert!(call.a.recv(Duration::from_secs(1)).is_some());
    assert!(c.recv(Duration::from_millis(200)).is_none());
    // The subscriber sends nothing anywhere.
    c.send_next(c_src);
    assert!(call.a.recv(Duration::from_millis(200)).is_none());
    assert!(call.b.recv(Duration::from_millis(200)).is_none());

    ng.ok(dict! {
        "command" => "unsubscribe", "call-id" => call.call_id.as_str(), "to-tag" => to_tag.as_str(),
    });
    call.a.send_next(call.a_dest);
    assert!(call.b.recv(Duration::from_secs(1)).is_some());
    assert!(c.recv(Duration::from_millis(300)).is_none());

    // Unknown tags and calls are errors, worded as rtpengine words them.
    let id = call.call_id.as_str();
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "subscribe request", "call-id" => id, "from-tag" => "nobody" }
        ),
        "From-tag given, but no such tag exists"
    );
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "subscribe answer", "call-id" => id, "to-tag" => "nobody", "sdp" => recv_sdp(c.port(), &[(0, "PCMU/8000", None)]) }
        ),
        "To-tag not found"
    );
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "unsubscribe", "call-id" => id, "to-tag" => "nobody" }
        ),
        "To-tag not found"
    );
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "subscribe request", "call-id" => "no-such-call", "from-tag" => "x" }
        ),
        "Unknown call-id"
    );
}

#[test]
fn subscriber_with_its_own_codec_gets_the_source_transcoded() {
    let daemon = start("auto");
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "sub-tc");
    call.exchange(1, Duration::ZERO);
    call.a.drain();
    call.b.drain();
    let c = RtpEndpoint::new(0x0c0c_0004);
    let (to_tag, c_src, _) = subscribe(&ng, &call.call_id, &call.from_tag);
    let answer = recv_sdp(c.port(), &[(8, "PCMA/8000", None)]);
    // Another codec than the source sends needs `allow transcoding`.
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "subscribe answer", "call-id" => call.call_id.as_str(), "to-tag" => to_tag.as_str(), "sdp" => answer.as_str() }
        ),
        "Failed to process subscription answer"
    );
    ng.ok(dict! {
        "command" => "subscribe answer", "call-id" => call.call_id.as_str(),
        "to-tag" => to_tag.as_str(), "sdp" => answer.as_str(), "flags" => vec!["allow transcoding"],
    });

    let pcmu = lookup("PCMU", 8000, None, None);
    let pcma = lookup("PCMA", 8000, None, None);
    let n = 40;
    send(
        &call.a,
        call.a_dest,
        0,
        160,
        &encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    // B gets A's PCMU untouched, the subscriber PCMA carrying the same tone.
    let to_b = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(to_b.len(), n);
    assert!(to_b.iter().all(|r| r.pt == 0));
    let mut to_c = receive(&c, c_src, Duration::from_secs(2));
    assert_eq!(to_c.len(), n, "subscriber packets");
    assert!(to_c.iter().all(|r| r.pt == 8 && r.payload.len() == 160));
    check_line(&to_c, "A→subscriber");
    // B gets A's stream as A sent it, so the subscriber's copy keeps A's SSRC too.
    assert!(
        to_c.iter().all(|r| r.ssrc == call.a.ssrc),
        "SSRC of the copies"
    );
    let pcm = decode(&pcma, &mut to_c);
    let (amp, purity) = tone(&pcm[160..], 440.0);
    assert!(snr_db(purity) > 30.0, "SNR {:.1} dB", snr_db(purity));
    assert!((7000.0..9000.0).contains(&amp), "amplitude {amp}");
}

#[test]
fn published_media_reaches_every_subscriber() {
    let daemon = start("auto");
    let ng = daemon.client();
    let publisher = RtpEndpoint::new(0x0d0d_0001);
    let reply = ng.ok(dict! {
        "command" => "publish", "call-id" => "pub-1", "from-tag" => "pub",
        "sdp" => sdp(publisher.port(), &[(0, "PCMU/8000", None), (8, "PCMA/8000", None)], Some(20))
            .replace("a=sendrecv", "a=sendonly"),
        "ICE" => "remove",
    });
    let answer = parse_reply_sdp(&reply);
    assert_eq!(
        answer.audio().formats,
        ["0"],
        "one codec: the first we support"
    );
    assert_eq!(answer.audio().direction(), Some("recvonly"));
    let pub_dest = answer.audio_addr();

    let subs: Vec<(RtpEndpoint, SocketAddr)> = (0..2)
        .map(|k| {
            let ep = RtpEndpoint::new(0x0e0e_0000 + k);
            let (to_tag, src, reply) = subscribe(&ng, "pub-1", "pub");
            assert_eq!(parse_reply_sdp(&reply).audio().formats, ["0"]);
            ng.ok(dict! {
                "command" => "subscribe answer", "call-id" => "pub-1", "to-tag" => to_tag.as_str(),
                "sdp" => recv_sdp(ep.port(), &[(0, "PCMU/8000", None)]),
            });
            (ep, src)
        })
        .collect();
    let mut publisher = publisher;
    for _ in 0..3 {
        let sent = publisher.send_next(pub_dest);
        for (ep, src) in &subs {
            let (got, from) = ep
                .recv(Duration::from_secs(1))
                .expect("subscriber receives");
            assert_eq!(got, sent);
            assert_eq!(from, *src);
        }
    }
    // The publisher itself gets nothing back.
    assert!(publisher.recv(Duration::from_millis(200)).is_none());
}
