//! Call quality end to end: two calls run side by side for 3 s of 20 ms media, one clean and
//! one whose caller loses every 10th packet and sends every other packet 10 ms late. `query`,
//! `GET /calls/{id}` and `/metrics` must report the loss exactly, the jitter within tolerance,
//! and a lower MOS for the lossy stream.

use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::{Daemon, TwoPartyCall, Value};

const PACKETS: u32 = 150;
const PTIME: Duration = Duration::from_millis(20);

/// The entry of the ng reply's `SSRC` dictionary for `ssrc`.
fn ssrc_entry(reply: &Value, ssrc: u32) -> Value {
    reply
        .get("SSRC")
        .and_then(|d| d.get(&ssrc.to_string()))
        .unwrap_or_else(|| panic!("no SSRC {ssrc} in {reply:?}"))
        .clone()
}

fn int(v: &Value, path: &[&str]) -> i64 {
    v.path(path)
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no integer at {path:?} in {v:?}"))
}

#[test]
fn induced_loss_and_jitter_are_reported_in_query_calls_and_metrics() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let http = daemon.http_client();
    let mut clean = TwoPartyCall::setup(&ng, "quality-clean");
    let mut lossy = TwoPartyCall::setup(&ng, "quality-lossy");

    // Absolute schedule so sleeps do not drift: packet k of every stream is due at k × 20 ms;
    // the lossy caller's odd packets go out 10 ms late.
    let start = Instant::now();
    let mut lost = 0;
    for k in 0..PACKETS {
        let due = start + PTIME * k;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        clean.a.send_next(clean.a_dest);
        clean.b.send_next(clean.b_dest);
        lossy.b.send_next(lossy.b_dest);
        if k % 2 == 1 {
            std::thread::sleep(
                (due + Duration::from_millis(10)).saturating_duration_since(Instant::now()),
            );
        }
        if k % 10 == 5 {
            lossy.a.skip();
            lost += 1;
        } else {
            lossy.a.send_next(lossy.a_dest);
        }
    }
    // Let the last packets land.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(lost, 15);

    // ng query: rtpengine's SSRC dictionary.
    let q_lossy = ng.query(&lossy.call_id).unwrap();
    let q_clean = ng.query(&clean.call_id).unwrap();
    let bad = ssrc_entry(&q_lossy, lossy.a.ssrc);
    let good = ssrc_entry(&q_clean, clean.a.ssrc);
    assert_eq!(int(&bad, &["cumulative loss"]), 15);
    assert_eq!(int(&good, &["cumulative loss"]), 0);
    assert_eq!(int(&bad, &["average MOS", "packet loss"]), 10, "{bad:?}");
    assert_eq!(int(&good, &["average MOS", "packet loss"]), 0);
    let (mos_bad, mos_good) = (
        int(&bad, &["average MOS", "MOS"]),
        int(&good, &["average MOS", "MOS"]),
    );
    // MOS × 10 as rtpengine: ~4.4 clean, ~3.4 with 10 % loss.
    assert!((42..=45).contains(&mos_good), "clean MOS {mos_good}");
    assert!((30..=37).contains(&mos_bad), "lossy MOS {mos_bad}");
    assert!(int(&bad, &["lowest MOS", "reported at"]) > 1_600_000_000);
    // The callee of the lossy call sent cleanly.
    assert_eq!(
        int(&ssrc_entry(&q_lossy, lossy.b.ssrc), &["cumulative loss"]),
        0
    );

    // HTTP: the same figures with units in the names.
    let call = http.get(&format!("/calls/{}", lossy.call_id)).json();
    let stream = &call["legs"][0]["medias"][0]["streams"][0];
    let q = &stream["quality"];
    assert_eq!(q["ssrc"], lossy.a.ssrc);
    assert_eq!(q["clock_rate"], 8000);
    assert_eq!(q["packets_expected"], PACKETS);
    assert_eq!(q["packets_received"], PACKETS - 15);
    assert_eq!(q["packets_lost"], 15);
    assert_eq!(q["loss_percent"], 10.0);
    // Arrivals alternate 10 ms early/late: RFC 3550 jitter converges towards 10 ms.
    let jitter = q["jitter_ms"].as_f64().unwrap();
    assert!((5.0..=15.0).contains(&jitter), "lossy jitter {jitter} ms");
    let clean_call = http.get(&format!("/calls/{}", clean.call_id)).json();
    let cq = &clean_call["legs"][0]["medias"][0]["streams"][0]["quality"];
    assert_eq!(cq["packets_lost"], 0);
    let clean_jitter = cq["jitter_ms"].as_f64().unwrap();
    // Scheduling noise on a loaded 2-core machine adds a few ms to the clean stream too;
    // the induced ±10 ms still dominates.
    assert!(
        clean_jitter < jitter,
        "clean {clean_jitter} ms vs {jitter} ms"
    );
    let (m_bad, m_good) = (
        q["mos"]["average"]["mos"].as_f64().unwrap(),
        cq["mos"]["average"]["mos"].as_f64().unwrap(),
    );
    assert!(m_bad < m_good - 0.5, "MOS {m_bad} vs {m_good}");
    // The list view carries the per-stream summary the status page shows.
    let list = http.get("/calls").json();
    let summary = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == lossy.call_id)
        .unwrap();
    assert_eq!(summary["legs"][0]["streams"][0]["loss_percent"], 10.0);

    // Metrics: exact counters, no call-ids.
    let text = http.metrics();
    assert_eq!(
        metric(&text, "ngmedia_rtp_packets_total"),
        Some(f64::from(4 * PACKETS - 15))
    );
    assert_eq!(metric(&text, "ngmedia_rtp_packets_lost_total"), Some(15.0));
    assert_eq!(
        metric(&text, "ngmedia_rtp_packets_duplicate_total"),
        Some(0.0)
    );
    // 3 s of media: at least one 2 s MOS sample per stream, and the lossy one is below 3.5.
    let samples = metric(&text, "ngmedia_stream_mos_count").unwrap();
    assert!(samples >= 4.0, "{samples} MOS samples");
    assert!(metric(&text, "ngmedia_stream_mos_bucket{le=\"3.50\"}").unwrap() >= 1.0);
    assert!(!text.contains("quality-lossy"));
}

/// RTCP SR from one side and the RR answering it from the other give the round trip, which
/// `/calls` and `query` report for the RR sender's stream.
#[test]
fn round_trip_from_relayed_sr_and_rr() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let http = daemon.http_client();
    let mut call = TwoPartyCall::setup(&ng, "quality-rtt");
    // Media first so both sides are latched and RTCP is relayed.
    call.exchange(5, Duration::from_millis(5));
    let rtcp = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port + 1));
    let (a_rtcp_dest, b_rtcp_dest) = (rtcp(call.a_dest.port()), rtcp(call.b_dest.port()));
    let a_rtcp = std::net::UdpSocket::bind(rtcp(call.a.port())).unwrap();
    let b_rtcp = std::net::UdpSocket::bind(rtcp(call.b.port())).unwrap();
    // A's SR (NTP 0x0000_1234_5678_0000: middle 32 bits 0x1234_5678), no report blocks.
    let mut sr = vec![0x80, 200, 0x00, 0x06];
    sr.extend(call.a.ssrc.to_be_bytes());
    sr.extend([
        0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    a_rtcp.send_to(&sr, a_rtcp_dest).unwrap();
    // B receives it, holds it 100 ms by its own account, and answers 150 ms after it left A:
    // the relay sees a round trip of about 50 ms to B.
    b_rtcp
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = b_rtcp.recv(&mut buf).expect("SR relayed to B");
    assert_eq!(&buf[..n], &sr[..]);
    std::thread::sleep(Duration::from_millis(150));
    let mut rr = vec![0x81, 201, 0x00, 0x07];
    rr.extend(call.b.ssrc.to_be_bytes());
    rr.extend(call.a.ssrc.to_be_bytes());
    rr.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40]); // nothing lost, jitter 40 units
    rr.extend([0x12, 0x34, 0x56, 0x78]); // LSR
    rr.extend(((100u32 << 16) / 1000).to_be_bytes()); // DLSR 100 ms
    b_rtcp.send_to(&rr, b_rtcp_dest).unwrap();
    let rtt = ngmedia_tests::wait_for(Duration::from_secs(2), || {
        let v = http.get(&format!("/calls/{}", call.call_id)).json();
        v["legs"][1]["medias"][0]["streams"][0]["quality"]["rtt_ms"].as_f64()
    })
    .expect("RTT reported");
    assert!((40.0..=120.0).contains(&rtt), "RTT {rtt} ms");
    let v = http.get(&format!("/calls/{}", call.call_id)).json();
    let reported = &v["legs"][1]["medias"][0]["streams"][0]["quality"]["rtcp"];
    assert_eq!(reported["receiver_reports"], 1);
    assert_eq!(reported["reported"]["ssrc"], call.a.ssrc);
    assert_eq!(reported["reported"]["jitter_ms"], 5.0);
    assert_eq!(
        v["legs"][0]["medias"][0]["streams"][0]["quality"]["rtcp"]["sender_reports"],
        1
    );
    let q = ng.query(&call.call_id).unwrap();
    let rtt_us = int(
        &ssrc_entry(&q, call.b.ssrc),
        &["average MOS", "round-trip time"],
    );
    assert!((40_000..=120_000).contains(&rtt_us), "{rtt_us} µs");
}
