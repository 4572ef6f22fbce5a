//! `query` reports exact per-party packet and byte counts (bytes include the 12-byte RTP
//! header, as rtpengine counts them) and call totals.

use std::time::Duration;

use ngmedia_tests::rtp::FRAME;
use ngmedia_tests::{wait_for, Daemon, TwoPartyCall, Value};

const FROM_A: u64 = 50;
const FROM_B: u64 = 40;
const PACKET_LEN: u64 = 12 + FRAME as u64;

/// (packets, bytes) summed over every stream of the party `tag`.
fn party_counts(reply: &Value, tag: &str) -> Option<(u64, u64)> {
    let medias = reply.path(&["tags", tag, "medias"])?.as_list()?;
    let mut sum = (0, 0);
    for media in medias {
        for stream in media.get("streams")?.as_list()? {
            sum.0 += stream.path(&["stats", "packets"])?.as_int()? as u64;
            sum.1 += stream.path(&["stats", "bytes"])?.as_int()? as u64;
        }
    }
    Some(sum)
}

#[test]
fn query_counts_exact_packets_and_bytes_per_party() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "query-counters");
    for i in 0..FROM_A {
        call.a.send_next(call.a_dest);
        if i < FROM_B {
            call.b.send_next(call.b_dest);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        call.b
            .recv_many(FROM_A as usize, Duration::from_secs(2))
            .len() as u64,
        FROM_A
    );
    assert_eq!(
        call.a
            .recv_many(FROM_B as usize, Duration::from_secs(2))
            .len() as u64,
        FROM_B
    );

    let expected_a = (FROM_A, FROM_A * PACKET_LEN);
    let expected_b = (FROM_B, FROM_B * PACKET_LEN);
    let mut last = None;
    let settled = wait_for(Duration::from_secs(2), || {
        let reply = ng.query("query-counters").unwrap();
        let counts = (
            party_counts(&reply, &call.from_tag),
            party_counts(&reply, &call.to_tag),
        );
        last = Some(reply.clone());
        (counts == (Some(expected_a), Some(expected_b))).then_some(reply)
    });
    let reply = settled.unwrap_or_else(|| {
        panic!("counters never reached A={expected_a:?} B={expected_b:?}: {last:?}")
    });
    assert_eq!(reply.str_at("result"), Some("ok"));
    let rtp = |k: &str| reply.path(&["totals", "RTP", k]).and_then(Value::as_int);
    assert_eq!(rtp("packets"), Some((FROM_A + FROM_B) as i64));
    assert_eq!(rtp("bytes"), Some(((FROM_A + FROM_B) * PACKET_LEN) as i64));
    assert_eq!(
        reply
            .path(&["totals", "RTCP", "packets"])
            .and_then(Value::as_int),
        Some(0)
    );
}
