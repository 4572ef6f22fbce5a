//! `--dtmf-log-dest`: every digit a party sends reaches a UDP listener as rtpengine's JSON
//! (what Kamailio's `dtmf_event_sock` reads), once per digit, on its first end packet.

use std::net::UdpSocket;
use std::time::Duration;

use ngmedia_tests::call::TwoPartyCall;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::rtp::rtp_packet;

#[test]
fn rfc4733_digits_are_reported_as_rtpengines_json() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let dest = listener.local_addr().unwrap().to_string();
    let daemon = Daemon::start(&["--dtmf-log-dest", &dest]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "dtmf-log");
    // Digit 8 at -15 dBm0 for 60 ms: two updates, the end report three times, then audio.
    let send = |seq: u16, payload: &[u8], pt: u8, ts: u32| {
        let p = rtp_packet(pt, seq, ts, call.a.ssrc, payload);
        call.a.sock.send_to(&p, call.a_dest).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    };
    send(1, &[0; 160], 0, 1000);
    send(2, &[8, 15, 0, 160], 101, 1160);
    send(3, &[8, 15, 1, 64], 101, 1160);
    for seq in 4..7 {
        send(seq, &[8, 0x80 | 15, 1, 224], 101, 1160);
    }
    send(7, &[0; 160], 0, 1640);
    let mut buf = [0u8; 4096];
    let n = listener.recv(&mut buf).expect("a DTMF report");
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).expect("JSON");
    assert_eq!(v["callid"], "dtmf-log");
    assert_eq!(v["source_tag"], "dtmf-log-a");
    assert_eq!(v["type"], "DTMF");
    assert_eq!(v["source_ip"], "127.0.0.1");
    assert_eq!(v["event"], 8);
    assert_eq!(v["duration"], 60, "480 units at 8 kHz");
    assert_eq!(v["volume"], 15);
    let tags: Vec<&str> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["dtmf-log-a", "dtmf-log-b"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(v["timestamp"].as_u64().unwrap().abs_diff(now) <= 5);
    // The repeats of the end report are not reported again.
    assert!(listener.recv(&mut buf).is_err(), "one report per digit");
    // The digit itself still reaches B.
    let got = call.b.recv_many(6, Duration::from_millis(300));
    assert_eq!(got.iter().filter(|(p, _)| p.len() == 16).count(), 5);
}
