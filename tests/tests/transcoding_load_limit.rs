//! `--max-transcoding-load` on the real daemon: while the media worker is busier than the
//! limit, offers of new calls that ask for transcoding get rtpengine's `load limit` reply
//! (`Transcoding load limit exceeded`) and are counted; plain offers are still taken, and the
//! transcoded call in progress keeps transcoding. When the load goes, transcoding offers are
//! taken again.

mod transcode_common;

use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, Daemon, NgClient, TwoPartyCall, Value};
use transcode_common::{pt_of, receive, sdp, setup};

const PCMU: (u8, &str, Option<&str>) = (0, "PCMU/8000", None);

/// An offer of a new call, with `codec: {transcode: [PCMA]}` or without codec options, as
/// Kamailio sends it (`supports: ["load limit"]`). Returns (result, message).
fn offer(ng: &NgClient, call_id: &str, transcode: bool) -> (String, String) {
    let mut d = dict! {
        "command" => "offer",
        "call-id" => call_id,
        "from-tag" => "caller",
        "sdp" => sdp(4000, &[PCMU], None).as_str(),
        "supports" => vec!["load limit"],
    };
    if transcode {
        if let Value::Dict(pairs) = &mut d {
            pairs.push((b"codec".to_vec(), dict! { "transcode" => vec!["PCMA"] }));
        }
    }
    let r = ng.request(d).expect("a reply");
    let text = |k: &str| r.str_at(k).unwrap_or("").to_owned();
    (text("result"), text("message"))
}

/// Keep the media worker busy: bursts of RTP from both parties of a plain call, for
/// `for_how_long`. Returns how many packets were sent.
fn load_worker(call: &mut TwoPartyCall, for_how_long: Duration) -> usize {
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < for_how_long {
        for _ in 0..50 {
            call.a.send_next(call.a_dest);
            call.b.send_next(call.b_dest);
            sent += 2;
        }
        call.a.drain();
        call.b.drain();
        std::thread::sleep(Duration::from_millis(2));
    }
    sent
}

#[test]
fn busy_workers_refuse_new_transcoded_calls_and_keep_the_ones_they_have() {
    // One worker, and a limit low enough for a relay flood from this test to reach it on
    // any machine, high enough for an idle worker (a few wake-ups a second) to stay below.
    let daemon = Daemon::start(&[
        "--num-threads",
        "1",
        "--max-transcoding-load",
        "0.5",
        "--delete-delay",
        "0",
    ]);
    let ng = daemon.client();
    let http = daemon.http_client();

    // Idle: a transcoded call is taken and transcodes (PCMU from the caller arrives as
    // PCMA at the callee).
    std::thread::sleep(Duration::from_millis(1200));
    let tc = setup(
        &ng,
        "tc-held",
        &[PCMU],
        &["PCMA"],
        |offer| {
            vec![(
                pt_of(offer, "PCMA", 8000).unwrap(),
                "PCMA/8000".into(),
                None,
            )]
        },
        None,
    );
    let send_tc = |seq: u16| {
        let pkt = rtp_packet(0, seq, u32::from(seq) * 160, 0x0a0a_0001, &[0xff; 160]);
        tc.a.sock.send_to(&pkt, tc.a_dest).expect("send");
    };
    for seq in 0..5 {
        send_tc(seq);
        std::thread::sleep(Duration::from_millis(20));
    }
    let rx = receive(&tc.b, tc.b_dest, Duration::from_secs(2));
    assert!(
        rx.iter().any(|r| r.pt == 8),
        "the transcoded call transcodes: {} packets\n{}",
        rx.len(),
        daemon.log_text()
    );

    // A flood on a plain call makes the worker busy: new transcoded calls are refused,
    // plain ones are taken, within a few sampling periods.
    let mut plain = TwoPartyCall::setup(&ng, "plain-load");
    let mut n = 0;
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.is_none() && Instant::now() < deadline {
        load_worker(&mut plain, Duration::from_millis(300));
        n += 1;
        let r = offer(&ng, &format!("tc-new-{n}"), true);
        if r.0 == "load limit" {
            refused = Some(r);
        }
    }
    let refused = refused.unwrap_or_else(|| {
        panic!(
            "no transcoded offer refused under load; /load-limits: {}\n{}",
            http.get("/load-limits").text(),
            daemon.log_text()
        )
    });
    assert_eq!(refused.1, "Transcoding load limit exceeded");
    load_worker(&mut plain, Duration::from_millis(100));
    assert_eq!(
        offer(&ng, "plain-new", false).0,
        "ok",
        "plain calls are taken"
    );
    let limits = http.get("/load-limits").json();
    assert_eq!(limits["max_transcoding_load"], 0.5);
    assert_eq!(limits["refusing"], serde_json::Value::Null);
    assert!(limits["transcoding_load_percent"].as_f64().unwrap() >= 0.0);

    // The transcoded call held goes on transcoding, and its re-offer is not refused.
    tc.b.drain();
    for seq in 5..10 {
        send_tc(seq);
        std::thread::sleep(Duration::from_millis(20));
    }
    let rx = receive(&tc.b, tc.b_dest, Duration::from_secs(2));
    assert!(rx.iter().any(|r| r.pt == 8), "still transcoding under load");

    let text = http.metrics();
    let counted = metric(
        &text,
        "ngmedia_ng_offers_refused_total{reason=\"transcoding\"}",
    )
    .unwrap_or(0.0);
    assert!(counted >= 1.0, "refusals counted: {counted}");

    // The load goes: transcoded offers are taken again.
    let taken = ngmedia_tests::wait_for(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(500));
        n += 1;
        (offer(&ng, &format!("tc-after-{n}"), true).0 == "ok").then_some(())
    });
    assert!(
        taken.is_some(),
        "transcoded offers taken again once idle; /load-limits: {}",
        http.get("/load-limits").text()
    );
}
