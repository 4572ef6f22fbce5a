//! `block media`, `block DTMF`, `silence media` (and their `un…` forms) and `play DTMF` on
//! the real binary: what the peer receives (nothing, events or not, silence bytes, the
//! injected event sequence or tone), the counters, replies and rtpengine's error texts.

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::bencode::Value;
use ngmedia_tests::call::{parse_reply_sdp, TwoPartyCall};
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::{rtp_packet, RtpEndpoint};

const WAIT: Duration = Duration::from_millis(300);

fn control(ng: &NgClient, command: &str, call: &TwoPartyCall, party: Option<&str>) -> Value {
    let body = match party {
        Some(tag) => {
            dict! { "command" => command, "call-id" => call.call_id.as_str(), "from-tag" => tag }
        }
        None => dict! { "command" => command, "call-id" => call.call_id.as_str() },
    };
    ng.ok(body)
}

fn error_reason(ng: &NgClient, body: Value) -> String {
    let r = ng.request(body).unwrap();
    assert_eq!(r.str_at("result"), Some("error"), "{r:?}");
    r.str_at("error-reason").unwrap().to_owned()
}

/// Send `payload` as PT `pt` from `from` with its own numbering.
fn send(from: &RtpEndpoint, to: SocketAddr, pt: u8, seq: u16, ts: u32, payload: &[u8]) {
    let p = rtp_packet(pt, seq, ts, from.ssrc, payload);
    from.sock.send_to(&p, to).unwrap();
}

fn a_party_packets(ng: &NgClient, call: &TwoPartyCall) -> i64 {
    let reply = ng.query(&call.call_id).unwrap();
    let medias = reply
        .path(&["tags", call.from_tag.as_str(), "medias"])
        .and_then(Value::as_list)
        .unwrap();
    medias[0].get("streams").and_then(Value::as_list).unwrap()[0]
        .path(&["stats", "packets"])
        .and_then(Value::as_int)
        .unwrap()
}

#[test]
fn block_media_stops_one_direction_and_keeps_counting() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "block-media");
    call.exchange(3, Duration::from_millis(2));
    assert_eq!(call.b.recv_many(3, WAIT).len(), 3);
    assert_eq!(call.a.recv_many(3, WAIT).len(), 3);

    let from = call.from_tag.clone();
    let r = control(&ng, "block media", &call, Some(&from));
    assert_eq!(r.str_at("result"), Some("ok"));
    call.exchange(5, Duration::from_millis(2));
    assert!(
        call.b.recv(WAIT).is_none(),
        "A's media reached B while blocked"
    );
    assert_eq!(call.a.recv_many(5, WAIT).len(), 5, "B's media still flows");
    // Latched and counted: 3 before + 5 while blocked.
    let counted = ngmedia_tests::wait_for(Duration::from_secs(2), || {
        (a_party_packets(&ng, &call) == 8).then_some(())
    });
    assert!(counted.is_some(), "blocked packets are counted");

    control(&ng, "unblock media", &call, Some(&from));
    call.exchange(2, Duration::from_millis(2));
    assert_eq!(call.b.recv_many(2, WAIT).len(), 2);

    // Whole call, then `all` clears both the call's and each party's setting.
    control(&ng, "block media", &call, None);
    call.a.drain();
    call.exchange(2, Duration::from_millis(2));
    assert!(call.b.recv(WAIT).is_none() && call.a.recv(WAIT).is_none());
    control(&ng, "block media", &call, Some(&from));
    ng.ok(dict! { "command" => "unblock media", "call-id" => "block-media", "all" => "all" });
    call.exchange(2, Duration::from_millis(2));
    assert_eq!(call.b.recv_many(2, WAIT).len(), 2);
    assert_eq!(call.a.recv_many(2, WAIT).len(), 2);
}

#[test]
fn block_dtmf_drops_events_but_not_audio() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "block-dtmf");
    let from = call.from_tag.clone();
    control(&ng, "block DTMF", &call, Some(&from));
    send(&call.a, call.a_dest, 0, 10, 1600, &[0x55; 160]);
    send(&call.a, call.a_dest, 101, 11, 1760, &[5, 10, 0, 160]);
    send(&call.a, call.a_dest, 101, 12, 1760, &[5, 0x8a, 1, 64]);
    send(&call.a, call.a_dest, 0, 13, 1920, &[0x55; 160]);
    let got = call.b.recv_many(4, WAIT);
    let pts: Vec<u8> = got.iter().map(|(p, _)| p[1] & 0x7f).collect();
    assert_eq!(pts, vec![0, 0], "events dropped, audio passed");
    // B's events to A are not blocked (directional).
    send(&call.b, call.b_dest, 101, 20, 800, &[1, 10, 0, 160]);
    assert_eq!(call.a.recv(WAIT).unwrap().0[1] & 0x7f, 101);

    control(&ng, "unblock DTMF", &call, Some(&from));
    send(&call.a, call.a_dest, 101, 14, 2080, &[7, 10, 0, 160]);
    assert_eq!(call.b.recv(WAIT).unwrap().0[1] & 0x7f, 101);

    // A whole-call block with a DTMF-security mode: the event becomes silence in B's
    // first codec (see dtmf_security_passthrough.rs for every mode).
    ng.ok(dict! { "command" => "block DTMF", "call-id" => "block-dtmf", "DTMF-security" => "silence" });
    send(&call.b, call.b_dest, 101, 21, 960, &[1, 10, 0, 160]);
    let (p, _) = call.a.recv(WAIT).unwrap();
    assert_eq!((p[1] & 0x7f, p.len()), (0, 172));
    assert!(p[12..].iter().all(|&b| b == 0xff));
}

#[test]
fn silence_media_rewrites_payloads_in_the_partys_codec() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "silence-media");
    let from = call.from_tag.clone();
    control(&ng, "silence media", &call, Some(&from));
    send(&call.a, call.a_dest, 0, 1, 160, &[0x12; 160]);
    send(&call.a, call.a_dest, 8, 2, 320, &[0x34; 160]);
    send(&call.a, call.a_dest, 101, 3, 320, &[1, 10, 0, 160]);
    let got = call.b.recv_many(3, WAIT);
    assert_eq!(got.len(), 2, "a silenced party's events are dropped");
    let (pcmu, pcma) = (&got[0].0, &got[1].0);
    assert_eq!((pcmu[1] & 0x7f, pcmu.len()), (0, 172));
    assert!(pcmu[12..].iter().all(|&b| b == 0xFF), "PCMU silence");
    assert_eq!((pcma[1] & 0x7f, pcma.len()), (8, 172));
    assert!(pcma[12..].iter().all(|&b| b == 0xD5), "PCMA silence");
    // Sequence numbers and timestamps are the sender's.
    assert_eq!(&pcmu[2..8], &[0, 1, 0, 0, 0, 160]);
    // B is not silenced.
    send(&call.b, call.b_dest, 0, 1, 160, &[0x12; 160]);
    assert_eq!(call.a.recv(WAIT).unwrap().0[12], 0x12);

    control(&ng, "unsilence media", &call, Some(&from));
    send(&call.a, call.a_dest, 0, 4, 480, &[0x12; 160]);
    assert_eq!(call.b.recv(WAIT).unwrap().0[12], 0x12);
}

#[test]
fn errors_are_rtpengines() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let _call = TwoPartyCall::setup(&ng, "ctl-errors");
    for cmd in [
        "block DTMF",
        "unblock DTMF",
        "block media",
        "unblock media",
        "silence media",
        "unsilence media",
        "play DTMF",
    ] {
        assert_eq!(
            error_reason(
                &ng,
                dict! { "command" => cmd, "call-id" => "nope", "from-tag" => "x" }
            ),
            "Unknown call-ID",
            "{cmd}"
        );
        assert_eq!(
            error_reason(&ng, dict! { "command" => cmd, "from-tag" => "x" }),
            "No call-id in message"
        );
        assert_eq!(
            error_reason(
                &ng,
                dict! { "command" => cmd, "call-id" => "ctl-errors", "from-tag" => "x", "code" => "1" }
            ),
            "From-tag given, but no such tag exists"
        );
        assert_eq!(
            error_reason(
                &ng,
                dict! { "command" => cmd, "call-id" => "ctl-errors", "label" => "x", "code" => "1" }
            ),
            "No monologue matching the given label"
        );
        assert_eq!(
            error_reason(
                &ng,
                dict! { "command" => cmd, "call-id" => "ctl-errors", "address" => "nonsense", "code" => "1" }
            ),
            "Failed to parse network address"
        );
    }
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "play DTMF", "call-id" => "ctl-errors", "code" => "1" }
        ),
        "No participant party specified"
    );
    for code in [Value::from("X"), Value::from(16i64), Value::from(-1i64)] {
        let body = Value::Dict(vec![
            (b"command".to_vec(), Value::from("play DTMF")),
            (b"call-id".to_vec(), Value::from("ctl-errors")),
            (b"from-tag".to_vec(), Value::from("ctl-errors-a")),
            (b"code".to_vec(), code),
        ]);
        assert_eq!(error_reason(&ng, body), "Out of range 'code' specified");
    }
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "play DTMF", "call-id" => "ctl-errors", "from-tag" => "ctl-errors-a" }
        ),
        "Out of range 'code' specified",
        "no code at all"
    );
}

struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn parse(p: &[u8]) -> Rtp {
    Rtp {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload: p[12..].to_vec(),
    }
}

/// A sends 20 ms PCMU packets one by one; B's view of each step.
fn step(call: &TwoPartyCall, seq: u16, ts: u32, expect: usize) -> Vec<Rtp> {
    send(&call.a, call.a_dest, 0, seq, ts, &[0x00; 160]);
    call.b
        .recv_many(expect, WAIT)
        .iter()
        .map(|(p, _)| parse(p))
        .collect()
}

#[test]
fn play_dtmf_on_a_passthrough_call_sends_rfc4733_events() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "play-dtmf-rfc");
    let before = step(&call, 1000, 3000, 1);
    assert_eq!((before[0].pt, before[0].seq), (0, 1000));
    step(&call, 1001, 3160, 1);
    let r = ng.ok(dict! {
        "command" => "play DTMF", "call-id" => "play-dtmf-rfc",
        "from-tag" => call.from_tag.as_str(), "code" => "#", "volume" => 10i64, "duration" => 100i64,
    });
    assert_eq!(r.str_at("result"), Some("ok"));
    let mut out = Vec::new();
    for k in 0..6u16 {
        let expect = if k == 5 { 3 } else { 1 };
        out.extend(step(&call, 1002 + k, 3320 + 160 * u32::from(k), expect));
    }
    assert_eq!(out.len(), 8);
    for (i, p) in out.iter().enumerate() {
        assert_eq!(
            (p.pt, p.seq, p.ts),
            (101, 1002 + i as u16, 3320),
            "packet {i}"
        );
        assert_eq!(p.marker, i == 0);
        assert_eq!(p.ssrc, call.a.ssrc);
        let duration = u16::from_be_bytes([p.payload[2], p.payload[3]]);
        let end = p.payload[1] & 0x80 != 0;
        assert_eq!(p.payload[0], 11, "event #");
        assert_eq!(p.payload[1] & 0x3f, 10, "volume");
        if i < 5 {
            assert_eq!((end, duration), (false, 160 * (i as u16 + 1)));
        } else {
            assert_eq!((end, duration), (true, 960));
        }
    }
    // The line continues without a gap: seq moved up by the two repeats.
    let after = step(&call, 1008, 4280, 1);
    assert_eq!((after[0].pt, after[0].seq, after[0].ts), (0, 1010, 4280));
    let after = step(&call, 1009, 4440, 1);
    assert_eq!(after[0].seq, 1011);
}

#[test]
fn play_dtmf_without_telephone_event_plays_an_inband_tone() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x1234);
    let b = RtpEndpoint::new(0x5678);
    let sdp = |ep: &RtpEndpoint| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 8\r\na=sendrecv\r\n",
            ep.port()
        )
    };
    let offer = ng.offer("play-dtmf-tone", "ta", &sdp(&a));
    let answer = ng.answer("play-dtmf-tone", "ta", "tb", &sdp(&b));
    let a_dest = parse_reply_sdp(&answer).audio_addr();
    let _b_dest = parse_reply_sdp(&offer).audio_addr();
    send(&a, a_dest, 0, 1, 3000, &[0x00; 160]);
    assert!(b.recv(WAIT).is_some());
    ng.ok(dict! {
        "command" => "play DTMF", "call-id" => "play-dtmf-tone", "from-tag" => "ta",
        "code" => "C", "volume" => 5i64, "duration" => 120i64, "pause" => 110i64,
    });
    let mut got = Vec::new();
    for k in 0..13u16 {
        send(
            &a,
            a_dest,
            0,
            2 + k,
            3160 + 160 * u32::from(k),
            &[0x00; 160],
        );
        got.push(parse(&b.recv(WAIT).expect("packet").0));
    }
    // rtpengine's own bytes for this digit (its test suite), then the pause's silence.
    assert_eq!(&got[0].payload[..6], &[0xff, 0x93, 0x94, 0xbc, 0x2e, 0x56]);
    assert!(got[..6]
        .iter()
        .all(|p| p.payload.iter().any(|&b| b != 0xff)));
    assert!(got[6..11]
        .iter()
        .all(|p| p.payload.iter().all(|&b| b == 0xff)));
    assert!(got[11].payload[..80].iter().all(|&b| b == 0xff));
    assert!(got[11].payload[80..].iter().all(|&b| b == 0x00));
    assert!(got[12].payload.iter().all(|&b| b == 0x00));
    for (k, p) in got.iter().enumerate() {
        assert_eq!((p.pt, p.seq, p.payload.len()), (0, 2 + k as u16, 160));
    }
}
