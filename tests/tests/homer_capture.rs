//! `--homer`: RTCP a party sends, and with `--homer-enable-ng` every ng request and reply,
//! reach a HEP version 3 collector (here a socket of the test) with the call's Call-ID as
//! correlation id, the capture id, addresses and ports of the original packet and Homer's
//! RTCP JSON; over UDP and over TCP.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_tests::call::TwoPartyCall;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::http::metric;
use ngmedia_tests::rtp::rtp_packet;

/// One decoded HEP3 frame: the chunks the test looks at.
#[derive(Debug, Default)]
struct Frame {
    src: Option<SocketAddr>,
    dst: Option<SocketAddr>,
    proto: u8,
    capture_id: u32,
    time_sec: u32,
    correlation: String,
    payload: Vec<u8>,
}

/// Parse one frame, checking every length (panics on a malformed frame: a test failure).
fn parse(frame: &[u8]) -> Frame {
    assert_eq!(&frame[..4], b"HEP3", "HEP3 magic");
    let total = u16::from_be_bytes([frame[4], frame[5]]) as usize;
    assert_eq!(total, frame.len(), "frame length");
    let (mut src_ip, mut dst_ip, mut sport, mut dport) = (None, None, 0u16, 0u16);
    let mut f = Frame::default();
    let mut at = 6;
    while at < frame.len() {
        assert_eq!(&frame[at..at + 2], &[0, 0], "vendor 0");
        let kind = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        let len = u16::from_be_bytes([frame[at + 4], frame[at + 5]]) as usize;
        assert!(len >= 6 && at + len <= frame.len(), "chunk length");
        let v = &frame[at + 6..at + len];
        let be32 = || u32::from_be_bytes(v.try_into().unwrap());
        match kind {
            1 => assert!(v == [2] || v == [10], "IP family"),
            2 => assert_eq!(v, [17], "UDP"),
            3 | 4 => {
                let ip = IpAddr::from(<[u8; 4]>::try_from(v).unwrap());
                *if kind == 3 { &mut src_ip } else { &mut dst_ip } = Some(ip);
            }
            5 | 6 => {
                let ip = IpAddr::from(<[u8; 16]>::try_from(v).unwrap());
                *if kind == 5 { &mut src_ip } else { &mut dst_ip } = Some(ip);
            }
            7 => sport = u16::from_be_bytes(v.try_into().unwrap()),
            8 => dport = u16::from_be_bytes(v.try_into().unwrap()),
            9 => f.time_sec = be32(),
            10 => assert!(be32() < 1_000_000, "microseconds"),
            11 => f.proto = v[0],
            12 => f.capture_id = be32(),
            15 => f.payload = v.to_vec(),
            17 => f.correlation = String::from_utf8(v.to_vec()).unwrap(),
            other => panic!("unexpected chunk {other}"),
        }
        at += len;
    }
    f.src = src_ip.map(|ip| SocketAddr::new(ip, sport));
    f.dst = dst_ip.map(|ip| SocketAddr::new(ip, dport));
    f
}

/// An RTCP SR from `ssrc` (500 packets, 80000 octets) with one report block, and SDES CNAME.
fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    for v in [ssrc, 3_900_000_000, 0x4000_0000, 48_000, 500, 80_000] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    for v in [0x0bad_cafe_u32, 0x0a00_0003, 1234, 17, 0, 0] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 5]);
    p.extend_from_slice(b"alice");
    p.push(0);
    p
}

fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Set up a call, send RTP and then an SR from A (muxed on its RTP port).
fn call_with_rtcp(daemon: &Daemon, call_id: &str) -> TwoPartyCall {
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, call_id);
    let rtp = rtp_packet(0, 1, 160, call.a.ssrc, &[0xff; 160]);
    call.a.sock.send_to(&rtp, call.a_dest).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    call.a
        .sock
        .send_to(&sender_report(call.a.ssrc), call.a_dest)
        .unwrap();
    call
}

fn check_ng_pair(frames: &[Frame], daemon: &Daemon, call_id: &str, capture_id: u32, proto: u8) {
    let offer = frames
        .iter()
        .find(|f| f.proto == proto && f.payload.windows(13).any(|w| w == b"command5:offe"))
        .expect("the offer request traced");
    assert_eq!(offer.correlation, call_id);
    assert_eq!(offer.capture_id, capture_id);
    assert_eq!(offer.dst, Some(daemon.ng), "request: client → ng socket");
    assert!(offer.time_sec.abs_diff(now_secs()) <= 5);
    let cookie = offer.payload.split(|&b| b == b' ').next().unwrap().to_vec();
    let reply = frames
        .iter()
        .find(|f| f.proto == proto && f.src == Some(daemon.ng) && f.payload.starts_with(&cookie))
        .expect("the offer's reply traced under the same cookie");
    assert_eq!(reply.dst, offer.src, "reply: ng socket → client");
    assert_eq!(reply.correlation, call_id);
    assert!(
        reply.payload.windows(10).any(|w| w == b"result2:ok"),
        "{}",
        String::from_utf8_lossy(&reply.payload)
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.payload.windows(12).any(|w| w == b"command4:pin")),
        "pings are not traced"
    );
}

#[test]
fn rtcp_and_ng_reach_a_udp_collector() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let target = collector.local_addr().unwrap().to_string();
    let daemon = Daemon::start(&["--homer", &target, "--homer-id", "77", "--homer-enable-ng"]);
    let call = call_with_rtcp(&daemon, "homer-udp");

    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline && !frames.iter().any(|f: &Frame| f.proto == 5) {
        if let Ok(n) = collector.recv(&mut buf) {
            frames.push(parse(&buf[..n]));
        }
    }
    check_ng_pair(&frames, &daemon, "homer-udp", 77, 0x3d);
    let rtcp = frames
        .iter()
        .find(|f| f.proto == 5)
        .expect("the SR reached Homer");
    assert_eq!(rtcp.correlation, "homer-udp");
    assert_eq!(rtcp.capture_id, 77);
    assert_eq!(rtcp.src, Some(call.a.sock.local_addr().unwrap()));
    assert_eq!(rtcp.dst, Some(call.a_dest));
    let json: serde_json::Value = serde_json::from_slice(&rtcp.payload).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "sender_information": {
                "ntp_timestamp_sec": 3_900_000_000u32,
                "ntp_timestamp_usec": 0x4000_0000,
                "octets": 80_000,
                "rtp_timestamp": 48_000,
                "packets": 500,
            },
            "ssrc": call.a.ssrc,
            "type": 200,
            "report_count": 1,
            "report_blocks": [{
                "source_ssrc": 0x0bad_cafe,
                "highest_seq_no": 1234,
                "fraction_lost": 10,
                "ia_jitter": 17,
                "packets_lost": 3,
                "lsr": 0,
                "dlsr": 0,
            }],
            "sdes_report_count": 1,
            "sdes_information": [{"sdes_chunk_ssrc": call.a.ssrc, "type": 1, "text": "alice"}],
        })
    );
    let text = daemon.http_client().metrics();
    let sent = metric(&text, "ngmedia_homer_frames_total{result=\"sent\"}").unwrap();
    assert!(
        sent >= frames.len() as f64,
        "{sent} sent, {} seen",
        frames.len()
    );
    assert_eq!(
        metric(&text, "ngmedia_homer_frames_total{result=\"dropped\"}"),
        Some(0.0)
    );
}

#[test]
fn ng_alone_reaches_a_tcp_collector() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let daemon = Daemon::start(&[
        "--homer",
        &target,
        "--homer-protocol",
        "tcp",
        "--homer-enable-ng",
        "--homer-disable-rtcp-stats",
        "--homer-ng-capture-proto",
        "100",
    ]);
    call_with_rtcp(&daemon, "homer-tcp");
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Frames back to back on the stream, each sized by its own header.
    let mut stream = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => stream.extend_from_slice(&buf[..n]),
            Err(_) if !stream.is_empty() => break,
            Err(_) => {}
        }
    }
    let mut frames = Vec::new();
    let mut rest = &stream[..];
    while rest.len() >= 6 {
        let len = u16::from_be_bytes([rest[4], rest[5]]) as usize;
        frames.push(parse(&rest[..len]));
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "whole frames only");
    assert!(frames.iter().all(|f| f.proto == 100), "no RTCP, ng only");
    check_ng_pair(&frames, &daemon, "homer-tcp", 2001, 100);
}
