//! Lawful interception, black box: X3 PDUs reach a loopback collector for tapped calls
//! (plain and SDES-SRTP legs, decrypted), in both directions with the right direction codes,
//! every header field checked; tasks created mid-call start delivery, deleted tasks stop it;
//! untapped calls deliver nothing; a stalled collector never slows the call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::SrtpContext;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::li::{self, uuid_bytes, x3_task, Collector, X3Pdu};
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, wait_for, RtpEndpoint, TwoPartyCall};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(3);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every fixed header field and the two attributes of one X3 PDU.
fn check_header(p: &X3Pdu, xid: &str, correlation: u64) {
    assert_eq!(p.version, 5, "version");
    assert_eq!(p.pdu_type, 2, "X3");
    assert_eq!(
        p.header_length, 60,
        "40 fixed + sequence TLV (8) + timestamp TLV (12)"
    );
    assert_eq!(p.payload_length as usize, p.payload.len());
    assert_eq!(p.payload_format, 8, "RTP packet");
    assert!(
        matches!(p.payload_direction, 2 | 3),
        "direction {}",
        p.payload_direction
    );
    assert_eq!(p.xid, uuid_bytes(xid));
    assert_eq!(p.correlation_id, correlation);
    assert_eq!(
        p.attributes
            .iter()
            .map(|(k, v)| (*k, v.len()))
            .collect::<Vec<_>>(),
        vec![(8, 4), (9, 8)]
    );
    let (secs, nanos) = p.timestamp().unwrap();
    assert!(
        u64::from(secs).abs_diff(unix_now()) < 30,
        "timestamp {secs}"
    );
    assert!(nanos < 1_000_000_000);
}

fn wait_x3(c: &Collector, n: usize) -> Vec<X3Pdu> {
    wait_for(WAIT, || {
        let got = c.x3();
        (got.len() >= n).then_some(got)
    })
    .unwrap_or_else(|| panic!("expected {n} X3 PDUs, got {}", c.x3().len()))
}

#[test]
fn x3_for_a_tapped_plain_call_both_directions() {
    let dir = li::li_dir("plain");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::start();
    let xid = "6f1c9a1e-0c1b-4a55-9d7e-0a1b2c3d4e5f";
    let correlation = 0x1122_3344_5566_7788;
    // The target is the callee (its to-tag); the task exists before the call.
    api.create(&x3_task(
        xid,
        json!({"tag": "li-plain-b"}),
        collector.addr,
        correlation,
    ));
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "li-plain");
    let (from_a, from_b) = call.exchange(10, Duration::from_millis(5));
    // The relay itself is untouched.
    assert_eq!(call.b.recv_many(10, WAIT).len(), 10);
    assert_eq!(call.a.recv_many(10, WAIT).len(), 10);
    let pdus = wait_x3(&collector, 20);
    assert_eq!(pdus.len(), 20);
    for p in &pdus {
        check_header(p, xid, correlation);
    }
    // From the target (B) = direction 3, to the target (what A sent) = direction 2.
    let from_target: Vec<&[u8]> = pdus
        .iter()
        .filter(|p| p.payload_direction == 3)
        .map(|p| p.payload.as_slice())
        .collect();
    let to_target: Vec<&[u8]> = pdus
        .iter()
        .filter(|p| p.payload_direction == 2)
        .map(|p| p.payload.as_slice())
        .collect();
    assert_eq!(
        from_target,
        from_b.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    assert_eq!(
        to_target,
        from_a.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    // One sequence per XID, consecutive from 0.
    let mut seqs: Vec<u32> = pdus.iter().map(|p| p.sequence().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..20).collect::<Vec<u32>>());
    let status = api.send("GET", &format!("/li/tasks/{xid}"), "").json();
    assert_eq!(status["status"]["delivered"], 20);
    assert_eq!(status["status"]["matched_calls"], 1);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn task_mid_call_starts_delivery_and_delete_stops_it_untapped_calls_deliver_nothing() {
    let dir = li::li_dir("midcall");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::start();
    let ng = daemon.client();
    let mut tapped = TwoPartyCall::setup(&ng, "li-mid");
    let mut other = TwoPartyCall::setup(&ng, "li-other");
    tapped.exchange(3, Duration::ZERO);
    other.exchange(3, Duration::ZERO);
    assert_eq!(tapped.b.recv_many(3, WAIT).len(), 3);
    let xid = "0b8f5a2c-3d4e-4f60-8a71-92a3b4c5d6e7";
    let before = ng.query("li-mid").unwrap().encode();
    api.create(&x3_task(
        xid,
        json!({"call_id": "li-mid"}),
        collector.addr,
        7,
    ));
    // The call goes on as before: same ports, packets keep flowing.
    let (a_sent, b_sent) = tapped.exchange(5, Duration::from_millis(5));
    let got_b: Vec<Vec<u8>> = tapped
        .b
        .recv_many(5, WAIT)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(got_b, a_sent, "relay continues unchanged");
    other.exchange(5, Duration::from_millis(5));
    let pdus = wait_x3(&collector, 10);
    std::thread::sleep(Duration::from_millis(300));
    let pdus_now = collector.x3();
    assert_eq!(pdus_now.len(), 10, "only the tapped call: {pdus:?}");
    // call_id targets both legs: every packet is its sender's own (from target).
    assert!(pdus_now.iter().all(|p| p.payload_direction == 3));
    let payloads: Vec<&Vec<u8>> = pdus_now.iter().map(|p| &p.payload).collect();
    for p in a_sent.iter().chain(&b_sent) {
        assert!(payloads.contains(&p));
    }
    // The ng view of the call is the same apart from counters.
    let after = ng.query("li-mid").unwrap();
    assert_eq!(
        after.path(&["tags"]).map(|t| t.as_dict().unwrap().len()),
        ngmedia_tests::Value::decode(&before)
            .unwrap()
            .path(&["tags"])
            .map(|t| t.as_dict().unwrap().len())
    );

    let r = api.send("DELETE", &format!("/li/tasks/{xid}"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    tapped.exchange(5, Duration::from_millis(5));
    assert_eq!(tapped.b.recv_many(5, WAIT).len(), 5, "relay still works");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.x3().len(), 10, "nothing after the task is gone");
    assert_eq!(api.send("GET", &format!("/li/tasks/{xid}"), "").status, 404);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";

fn srtp_sdp(ep: &RtpEndpoint, proto: &str, crypto: Option<&str>) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ep.port()
    );
    if let Some(c) = crypto {
        s.push_str(c);
        s.push_str("\r\n");
    }
    s
}

#[test]
fn x3_payloads_of_an_sdes_srtp_leg_are_decrypted() {
    let dir = li::li_dir("srtp");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::start();
    let xid = "a0a1a2a3-b4b5-4c6c-8d7d-e8e9eaebeced";
    api.create(&x3_task(xid, json!({"tag": "SA"}), collector.addr, 99));
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), RtpEndpoint::new(0xb2));
    let line = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "li-srtp", "from-tag" => "SA",
        "sdp" => srtp_sdp(&a, "RTP/SAVP", Some(&line)), "ICE" => "remove",
        "transport-protocol" => "RTP/AVP",
    });
    let b_dest = parse_reply_sdp(&offer).audio_addr();
    let answer = ng.answer("li-srtp", "SA", "SB", &srtp_sdp(&b, "RTP/AVP", None));
    let answer_sdp = parse_reply_sdp(&answer);
    let a_dest = answer_sdp.audio_addr();
    let mut tx: SrtpContext = CryptoAttr::parse(&line[9..]).unwrap().context().unwrap();
    let mut sent_a = Vec::new();
    let mut sent_b = Vec::new();
    for seq in 1..=8u16 {
        let plain = rtp_packet(0, seq, 160 * u32::from(seq), 0x5a5a, &[seq as u8; 160]);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        a.sock.send_to(&buf[..n], a_dest).unwrap();
        assert_eq!(b.recv(WAIT).unwrap().0, plain, "B gets A's plaintext");
        sent_a.push(plain);
        let back = rtp_packet(
            0,
            seq,
            160 * u32::from(seq),
            0x6b6b,
            &[0xf0 | seq as u8; 160],
        );
        b.sock.send_to(&back, b_dest).unwrap();
        assert!(a.recv(WAIT).is_some());
        sent_b.push(back);
    }
    let pdus = wait_x3(&collector, 16);
    for p in &pdus {
        check_header(p, xid, 99);
    }
    let by_dir = |d: u16| -> Vec<Vec<u8>> {
        pdus.iter()
            .filter(|p| p.payload_direction == d)
            .map(|p| p.payload.clone())
            .collect()
    };
    assert_eq!(by_dir(3), sent_a, "what the SRTP target sent, decrypted");
    assert_eq!(
        by_dir(2),
        sent_b,
        "what the target received, before protection"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stalled_collector_does_not_slow_the_call_and_drops_are_counted() {
    let dir = li::li_dir("stalled");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::stalled();
    let xid = "11111111-2222-4333-8444-555555555555";
    api.create(&x3_task(
        xid,
        json!({"call_id": "li-stall"}),
        collector.addr,
        1,
    ));
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "li-stall");
    assert!(wait_for(WAIT, || (collector.connections_held() > 0).then_some(())).is_some());
    // Far more PDUs than the link's queue and the socket buffers hold.
    let mut worst = Duration::ZERO;
    let mut received = 0;
    for round in 0..60 {
        for _ in 0..50 {
            call.a.send_next(call.a_dest);
            call.b.send_next(call.b_dest);
        }
        let sent_at = Instant::now();
        let probe = call.a.send_next(call.a_dest);
        // Drain B until the probe arrives; its latency is the relay's.
        let got = call.b.recv_many(51, WAIT);
        received += got.len();
        assert!(
            got.iter().any(|(p, _)| *p == probe),
            "round {round}: probe lost"
        );
        worst = worst.max(sent_at.elapsed());
        call.a.recv_many(50, WAIT);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(received, 60 * 51, "every packet relayed");
    assert!(
        worst < Duration::from_millis(200),
        "relay latency {worst:?}"
    );
    let dropped = wait_for(WAIT, || {
        let t = api.send("GET", &format!("/li/tasks/{xid}"), "").json();
        let d = t["status"]["dropped"].as_u64().unwrap();
        (d > 0).then_some(d)
    })
    .expect("drops counted on the task");
    assert!(dropped > 0);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
