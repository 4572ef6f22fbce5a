//! Lawful interception administration, black box: credentials (401/403) with audit lines,
//! nothing about tasks on the ng port, in query/list/statistics replies, on /metrics beyond
//! the anonymous gauge, or in the ordinary log; tasks survive a restart; `start forwarding`.

use std::net::UdpSocket;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use ngmedia_tests::http::metric;
use ngmedia_tests::li::{self, x3_task, Collector, LiClient};
use ngmedia_tests::{dict, wait_for, TwoPartyCall};
use serde_json::json;

const XID: &str = "c0ffee00-1234-4abc-9def-00112233aabb";
const CORRELATION: u64 = 987_654_321_012;

fn audit(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("audit.log")).unwrap_or_default()
}

#[test]
fn credentials_are_checked_and_every_request_is_audited() {
    let dir = li::li_dir("auth");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let body = x3_task(XID, json!({"tag": "x"}), "127.0.0.1:9".parse().unwrap(), 1).to_string();
    let none = LiClient {
        addr: api.addr,
        token: None,
    };
    let r = none.send("POST", "/li/tasks", &body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "unauthorized");
    let wrong = LiClient {
        addr: api.addr,
        token: Some("li-test-token-7f3b".into()),
    };
    assert_eq!(wrong.send("GET", "/li/tasks", "").status, 403);
    assert_eq!(
        wrong.send("DELETE", &format!("/li/tasks/{XID}"), "").status,
        403
    );
    // Nothing was created.
    let list = api.send("GET", "/li/tasks", "").json();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(api.send("POST", "/li/tasks", "{not json").status, 400);
    api.create(&serde_json::from_str(&body).unwrap());
    assert_eq!(api.send("POST", "/li/tasks", &body).status, 409);
    let log = audit(&dir);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 7, "{log}");
    assert!(
        lines[0].contains(" action=create xid=- outcome=401_refused:_missing_credential"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(" client=127.0.0.1:"));
    assert!(lines[1].contains(" action=list xid=- outcome=403_refused:_wrong_credential"));
    assert!(lines[2].contains(&format!(" action=delete xid={XID} outcome=403_refused")));
    assert!(lines[3].ends_with(" action=list xid=- outcome=200"));
    assert!(lines[4].ends_with(" action=create xid=- outcome=400"));
    assert!(lines[5].ends_with(&format!(" action=create xid={XID} outcome=201")));
    assert!(lines[6].ends_with(&format!(" action=create xid={XID} outcome=409")));
    let mode = std::fs::metadata(dir.join("audit.log")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The ordinary log knows nothing of it.
    let text = daemon.log_text();
    assert!(!text.contains(XID) && !text.contains("/li/"), "{text}");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nothing_about_tasks_leaks_outside_the_li_listener() {
    let dir = li::li_dir("leak");
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::start();
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "li-leak");
    api.create(&x3_task(
        XID,
        json!({"call_id": "li-leak"}),
        collector.addr,
        CORRELATION,
    ));
    call.exchange(5, Duration::from_millis(5));
    assert!(
        wait_for(Duration::from_secs(3), || (collector.x3().len() >= 10)
            .then_some(()))
        .is_some()
    );
    // A re-offer: the SDP is what it would be without interception.
    let secrets = [
        XID.to_owned(),
        XID.replace('-', ""),
        CORRELATION.to_string(),
        format!("{:x}", CORRELATION),
        collector.addr.to_string(),
        collector.addr.port().to_string(),
    ];
    let mut raw = Vec::new();
    for cmd in ["query", "list", "statistics"] {
        let cookie = format!("leak{cmd}");
        let body = dict! { "command" => cmd, "call-id" => "li-leak" }.encode();
        raw.push(ng.exchange(&cookie, &body).expect("ng reply"));
    }
    let http = daemon.http_client();
    raw.push(http.get("/calls").body);
    raw.push(http.get("/calls/li-leak").body);
    raw.push(http.get("/statistics").body);
    let metrics = http.metrics();
    raw.push(daemon.log_text().into_bytes());
    for bytes in raw.iter().chain([&metrics.clone().into_bytes()]) {
        let text = String::from_utf8_lossy(bytes);
        for s in &secrets {
            // Port numbers are short; only look for them as a whole `:port`.
            let needle = if s.len() <= 5 {
                format!(":{s}")
            } else {
                s.clone()
            };
            assert!(!text.contains(&needle), "`{needle}` leaked in: {text}");
        }
    }
    for bytes in &raw {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        assert!(
            !text.contains("intercept") && !text.contains("x3"),
            "{text}"
        );
    }
    assert_eq!(metric(&metrics, "ngmedia_li_tasks_active"), Some(1.0));
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("ngmedia_li") && l.contains('{')),
        "no labels"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restart_restores_tasks() {
    let dir = li::li_dir("restart");
    let (mut daemon, api) = li::start_daemon(&dir, &[]);
    let collector = Collector::start();
    let mut body = x3_task(
        XID,
        json!({"label": "caller", "metadata": {"key": "case", "value": "42"}}),
        collector.addr,
        5,
    );
    body["valid_until"] = json!(4_000_000_000u64);
    api.create(&body);
    assert!(daemon
        .terminate(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
    let file = dir.join("tasks.json");
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    drop(daemon);
    let (daemon, api) = li::start_daemon(&dir, &[]);
    let t = api.send("GET", &format!("/li/tasks/{XID}"), "").json();
    assert_eq!(t["xid"], XID);
    assert_eq!(t["target"]["metadata"]["value"], "42");
    assert_eq!(t["valid_until"], 4_000_000_000u64);
    assert_eq!(t["status"]["state"], "active");
    assert_eq!(
        metric(&daemon.http_client().metrics(), "ngmedia_li_tasks_active"),
        Some(1.0)
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_and_stop_forwarding_send_raw_rtp_to_the_forward_destination() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let fwd = format!("--forward-to={}", sink.local_addr().unwrap());
    let daemon = ngmedia_tests::Daemon::start(&[&fwd]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "fwd-1");
    let reply = ng
        .request(dict! { "command" => "start forwarding", "call-id" => "fwd-1" })
        .unwrap();
    assert_eq!(reply.str_at("result"), Some("ok"), "{reply:?}");
    let (a, b) = call.exchange(4, Duration::from_millis(5));
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sink.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got.len(), 8);
    for p in a.iter().chain(&b) {
        assert!(got.contains(p));
    }
    let reply = ng
        .request(dict! { "command" => "stop forwarding", "call-id" => "fwd-1" })
        .unwrap();
    assert_eq!(reply.str_at("result"), Some("ok"));
    call.exchange(4, Duration::from_millis(5));
    assert!(
        sink.recv(&mut buf).is_err(),
        "nothing after stop forwarding"
    );
    let reply = ng
        .request(dict! { "command" => "start forwarding", "call-id" => "nope" })
        .unwrap();
    assert_eq!(reply.str_at("result"), Some("error"));
    drop(daemon);
    // Without --forward-to the command is refused.
    let daemon = ngmedia_tests::Daemon::start(&[]);
    let ng = daemon.client();
    TwoPartyCall::setup(&ng, "fwd-2");
    let reply = ng
        .request(dict! { "command" => "start forwarding", "call-id" => "fwd-2" })
        .unwrap();
    assert_eq!(
        reply.str_at("error-reason"),
        Some("Forwarding is not enabled")
    );
}
