//! Load limits make Kamailio fail over: two engines in one `rtpengine` set (weights 1:1),
//! the first with `--max-sessions 2`. SIPp places calls through Kamailio; the module sends
//! each offer to the engine its Call-ID hash picks (`hash_algo 0`, pinned so the split is
//! known), and when that engine answers rtpengine's `result: load limit` it tries the next
//! one. The test checks that
//! - the first engine keeps exactly the first two calls hashed to it, and its answers and
//!   deletes go on while it is at its limit;
//! - every call it refused is on the second engine, with the ones hashed there;
//! - the first engine counted each refusal (`ngmedia_ng_offers_refused_total`) and Kamailio
//!   logged the failover;
//! - after the BYEs no call is left on either engine.
//!
//! Needs the Debian packages `kamailio` and `sip-tester` (`.ci/run` installs them).

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_config, start_kamailio, tail, uac_scenario,
    wait_listening, Guard,
};
use ngmedia_tests::{wait_for, Daemon, NgClient};

/// Calls SIPp places, one after the other, all up at once.
const CALLS: usize = 8;
const RATE: usize = 8;
/// How long each call stays up after its ACK: longer than it takes to place all of them.
const HOLD_MS: u64 = 4000;
/// `--max-sessions` of the first engine.
const LIMIT: usize = 2;
const CID_FORMAT: &str = "load-limit-%u";

/// The node the module picks first for a Call-ID (`hash_algo` 0): the byte sum of the
/// Call-ID cut to 8 bits, modulo the total weight, walked over the nodes in set order.
fn module_pick(call_id: &str, weights: &[u32]) -> usize {
    let sum = call_id.bytes().map(u32::from).sum::<u32>() & 0xff;
    let mut cut = sum % weights.iter().sum::<u32>();
    for (i, &w) in weights.iter().enumerate() {
        if cut < w {
            return i;
        }
        cut -= w;
    }
    unreachable!("cut is below the total weight")
}

fn engine_set(a: SocketAddr, b: SocketAddr) -> String {
    format!(
        "modparam(\"rtpengine\", \"rtpengine_sock\", \"1 == udp:{a}=1 udp:{b}=1\")\n\
         modparam(\"rtpengine\", \"hash_table_size\", 64)\n\
         modparam(\"rtpengine\", \"hash_algo\", 0)"
    )
}

fn listed(ng: &NgClient) -> BTreeSet<String> {
    ng.list().into_iter().collect()
}

#[test]
fn kamailio_fails_over_to_the_next_engine_at_the_load_limit() {
    let started = Instant::now();
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    let dir = std::env::temp_dir().join(format!("ngmedia-load-limit-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();

    let limit = LIMIT.to_string();
    let first = Daemon::start(&["--delete-delay", "0", "--max-sessions", &limit]);
    let second = Daemon::start(&["--delete-delay", "0"]);
    let ng = [first.client(), second.client()];

    let ids: Vec<String> = (1..=CALLS)
        .map(|n| CID_FORMAT.replace("%u", &n.to_string()))
        .collect();
    let hashed_first: Vec<&String> = ids
        .iter()
        .filter(|id| module_pick(id, &[1, 1]) == 0)
        .collect();
    assert!(
        hashed_first.len() > LIMIT,
        "the test needs more calls hashed to the first engine than its limit"
    );
    // SIPp places calls in order, so the first ones hashed there are the ones it keeps.
    let want_first: BTreeSet<String> = hashed_first
        .iter()
        .take(LIMIT)
        .map(|s| s.to_string())
        .collect();
    let want_second: BTreeSet<String> = ids
        .iter()
        .filter(|id| !want_first.contains(*id))
        .cloned()
        .collect();
    let refused = hashed_first.len() - LIMIT;

    let (sip_port, uas_port, uas_media, uac_port) =
        (free_port(), free_port(), free_media_port(), free_port());
    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_config(
            sip_port,
            uas_port,
            &engine_set(first.ng, second.ng),
            Some(1),
        ),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, &dir, sip_port);
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &uas_port.to_string()])
        .args(["-rtp_echo", "-mp", &uas_media.to_string(), "-nostdin"]);
    let uas = Guard::spawn(cmd, "sipp uas", &dir.join("uas.log"));
    assert!(
        wait_listening(uas_port, Duration::from_secs(10)),
        "sipp uas does not listen on {uas_port}:\n{}",
        uas.log_tail()
    );
    // Each caller offers a media port of its own (unused: this test is about signalling).
    let scenario = dir.join("uac.xml");
    fs::write(&scenario, uac_scenario("[field0]", HOLD_MS)).unwrap();
    let inject = dir.join("calls.csv");
    let mut lines = String::from("SEQUENTIAL\n");
    for n in 0..CALLS {
        lines.push_str(&format!("{};\n", 16000 + 2 * n));
    }
    fs::write(&inject, lines).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-inf", inject.to_str().unwrap(), "-cid_str", CID_FORMAT])
        .args(["-i", "127.0.0.1", "-p", &uac_port.to_string()])
        .args([
            "-m",
            &CALLS.to_string(),
            "-r",
            &RATE.to_string(),
            "-rp",
            "1000",
        ])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));
    let logs = || {
        format!(
            "---- first ----\n{}\n---- second ----\n{}\n---- kamailio ----\n{}\n---- sipp uac \
             ----\n{}",
            first.log_text(),
            second.log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log"))
        )
    };

    // All calls up, each answered (to-tag known) on the engine it belongs to.
    let answered = |ng: &NgClient, id: &str| {
        ng.query(id)
            .ok()
            .and_then(|q| Some(q.get("tags")?.as_dict()?.len() == 2))
            .unwrap_or(false)
    };
    let all_up = wait_for(Duration::from_secs(10), || {
        let ok = want_first.iter().all(|id| answered(&ng[0], id))
            && want_second.iter().all(|id| answered(&ng[1], id));
        ok.then_some(())
    });
    assert!(
        all_up.is_some(),
        "calls not answered where expected: first {:?} (want {want_first:?}), second {:?} \
         (want {want_second:?})\n{}",
        listed(&ng[0]),
        listed(&ng[1]),
        logs()
    );
    assert_eq!(listed(&ng[0]), want_first, "first engine holds its limit");
    assert_eq!(listed(&ng[1]), want_second, "second engine takes the rest");

    let text = first.http_client().metrics();
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_offers_refused_total{reason=\"sessions\"}"
        ),
        Some(refused as f64),
        "{}",
        logs()
    );
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"offer\",result=\"load_limit\"}"
        ),
        Some(refused as f64)
    );
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"answer\",result=\"ok\"}"
        ),
        Some(LIMIT as f64),
        "answers at the limit go on"
    );
    let kamailio_log = fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
    assert_eq!(
        kamailio_log.matches("has reached its load limit").count(),
        refused,
        "Kamailio tried the next engine for each refusal\n{}",
        logs()
    );

    // The BYEs end every call on its engine; the first engine's deletes at its limit work.
    let status = wait_for(
        Duration::from_millis(HOLD_MS) + Duration::from_secs(15),
        || uac.exited(),
    )
    .expect("caller scenario did not finish");
    assert!(
        status.success(),
        "SIPp callers failed: {status}\n{}",
        logs()
    );
    for (e, ng) in ng.iter().enumerate() {
        let empty = wait_for(Duration::from_secs(3), || {
            ng.list().is_empty().then_some(())
        });
        assert!(
            empty.is_some(),
            "engine {e} still holds {:?} after the BYEs\n{}",
            ng.list(),
            logs()
        );
    }
    eprintln!(
        "load limit: {CALLS} calls, {} kept by the first engine, {refused} failed over, test \
         took {:?}",
        want_first.len(),
        started.elapsed()
    );
    let _ = fs::remove_dir_all(&dir);
}
