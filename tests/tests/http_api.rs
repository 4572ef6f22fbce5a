//! The HTTP API of the real daemon: exact Prometheus counters after known RTP, the calls API
//! against a live call, token-protected DELETE, JSON errors, the OpenAPI document, and the
//! startup and shutdown rules of the HTTP listener.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ngmedia_tests::daemon::run_to_exit;
use ngmedia_tests::http::{encode_segment, metric};
use ngmedia_tests::rtp::FRAME;
use ngmedia_tests::{wait_for, Daemon, HttpClient, TwoPartyCall};

const TOKEN: &str = "test-token-7f3a";
const EACH_WAY: usize = 10;
const PACKET_LEN: u64 = 12 + FRAME as u64;

/// A daemon with a token (from the environment, as an operator would set it) and one call
/// that carried `EACH_WAY` packets in each direction.
fn daemon_with_call(call_id: &str) -> (Daemon, TwoPartyCall) {
    let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_HTTP_TOKEN", TOKEN)]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, call_id);
    call.exchange(EACH_WAY, Duration::from_millis(1));
    assert_eq!(
        call.b.recv_many(EACH_WAY, Duration::from_secs(2)).len(),
        EACH_WAY
    );
    assert_eq!(
        call.a.recv_many(EACH_WAY, Duration::from_secs(2)).len(),
        EACH_WAY
    );
    (daemon, call)
}

#[test]
fn metrics_count_exact_packets_calls_and_ng_requests() {
    let (daemon, _call) = daemon_with_call("http-metrics@example.org");
    let http = daemon.http_client();
    // Workers publish counters as they go; the receive above may beat the last increment.
    let mut text = String::new();
    let settled = wait_for(Duration::from_secs(2), || {
        text = http.metrics();
        (metric(&text, "ngmedia_rtp_packets_total") == Some(20.0)).then_some(())
    });
    assert!(settled.is_some(), "rtp packets never reached 20:\n{text}");
    let n = (2 * EACH_WAY) as f64;
    for (series, expected) in [
        ("ngmedia_rtp_packets_total", n),
        ("ngmedia_rtp_bytes_total", n * PACKET_LEN as f64),
        ("ngmedia_relayed_packets_total", n),
        ("ngmedia_rtcp_packets_total", 0.0),
        ("ngmedia_rtcp_bytes_total", 0.0),
        ("ngmedia_calls_active", 1.0),
        ("ngmedia_calls_total", 1.0),
        ("ngmedia_calls_timed_out_total", 0.0),
        // Two parties, an RTP/RTCP pair each.
        ("ngmedia_ports_in_use", 4.0),
        (
            "ngmedia_ports_total",
            (daemon.port_max - daemon.port_min + 1) as f64,
        ),
        // One m= line per party; no transcoding, no recording.
        ("ngmedia_streams_active", 2.0),
        ("ngmedia_streams_total", 2.0),
        ("ngmedia_recordings_active", 0.0),
        ("ngmedia_recordings_total", 0.0),
        ("ngmedia_recording_written_bytes_total", 0.0),
        ("ngmedia_packet_drops_total{reason=\"no_destination\"}", 0.0),
        ("ngmedia_packet_drops_total{reason=\"malformed\"}", 0.0),
        (
            "ngmedia_ng_requests_total{command=\"offer\",result=\"ok\"}",
            1.0,
        ),
        (
            "ngmedia_ng_requests_total{command=\"answer\",result=\"ok\"}",
            1.0,
        ),
        (
            "ngmedia_ng_requests_total{command=\"offer\",result=\"error\"}",
            0.0,
        ),
        (
            "ngmedia_ng_request_duration_seconds_count{command=\"offer\"}",
            1.0,
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"answer\",le=\"+Inf\"}",
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, series), Some(expected), "{series}\n{text}");
    }

    // An ng error is counted under its command and result.
    let ng = daemon.client();
    assert!(ng
        .query("no-such-call")
        .is_ok_and(|r| r.str_at("result") == Some("error")));
    let text = http.metrics();
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"query\",result=\"error\"}"
        ),
        Some(1.0)
    );
    assert!(metric(&text, "ngmedia_uptime_seconds").is_some_and(|s| s >= 0.0));
    // Worker loop utilisation: one series per worker, busy time below wall time.
    assert!(
        !text.contains("ngmedia_transcoders_active{"),
        "no transcoder runs"
    );
    let busy: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("ngmedia_worker_busy_seconds_total{worker=\""))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(!busy.is_empty(), "{text}");
    let uptime = metric(&text, "ngmedia_uptime_seconds").unwrap();
    assert!(
        busy.iter().all(|&b| b > 0.0 && b < uptime),
        "{busy:?} in {uptime} s"
    );
    assert!(metric(&text, "ngmedia_worker_wakeups_total{worker=\"0\"}").is_some_and(|w| w >= 1.0));
    // No per-call label values anywhere.
    assert!(!text.contains("http-metrics"), "{text}");

    let r = http.get("/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let stats = http.get("/statistics").json();
    assert_eq!(stats["calls"]["active"], 1);
    assert_eq!(stats["packets"]["rtp_packets"], 2 * EACH_WAY);
    assert_eq!(stats["ng"]["requests"]["offer"]["ok"], 1);
}

#[test]
fn calls_api_shows_the_live_call_and_delete_needs_the_token() {
    let call_id = "http-calls@example.org";
    let (daemon, call) = daemon_with_call(call_id);
    let open = daemon.http_client();
    let path = format!("/calls/{}", encode_segment(call_id));

    let list = open.get("/calls").json();
    assert_eq!(
        (list["total"].as_u64(), list["count"].as_u64()),
        (Some(1), Some(1))
    );
    let summary = &list["calls"][0];
    assert_eq!(summary["call_id"], call_id);
    assert_eq!(summary["legs"][0]["tag"], call.from_tag.as_str());
    assert_eq!(summary["legs"][1]["tag"], call.to_tag.as_str());

    // Counters settle as above; then the whole snapshot is checked against what we know.
    let mut v = serde_json::Value::Null;
    let settled = wait_for(Duration::from_secs(2), || {
        v = open.get(&path).json();
        (v["totals"]["rtp"]["packets"] == 2 * EACH_WAY).then_some(())
    });
    assert!(settled.is_some(), "{v:#}");
    assert_eq!(v["call_id"], call_id);
    assert_eq!(
        v["totals"]["rtp"]["bytes"],
        2 * EACH_WAY as u64 * PACKET_LEN
    );
    let legs = v["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    for (leg, tag, dest, party, peer) in [
        (
            &legs[0],
            &call.from_tag,
            call.a_dest,
            call.a.addr(),
            &call.to_tag,
        ),
        (
            &legs[1],
            &call.to_tag,
            call.b_dest,
            call.b.addr(),
            &call.from_tag,
        ),
    ] {
        assert_eq!(leg["tag"], tag.as_str());
        assert_eq!(leg["peers"], serde_json::json!([peer]));
        let media = &leg["medias"][0];
        assert_eq!(media["type"], "audio");
        assert_eq!(media["codec"], "PCMU/8000");
        let rtp = &media["streams"][0];
        assert_eq!(rtp["component"], "rtp");
        // The engine socket the party sends to, and the party's latched address.
        assert_eq!(rtp["local"], dest.to_string());
        assert_eq!(rtp["endpoint"], party.to_string());
        assert_eq!(rtp["counters"]["packets"], EACH_WAY);
        assert_eq!(rtp["counters"]["bytes"], EACH_WAY as u64 * PACKET_LEN);
        assert_eq!(rtp["counters"]["errors"], 0);
        assert_eq!(media["streams"][1]["component"], "rtcp");
    }
    // Raw `@` in the path works as well.
    assert_eq!(open.get(&format!("/calls/{call_id}")).status, 200);

    // DELETE: no token, wrong token, then the right one.
    let r = open.delete(&path);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "unauthorized");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Bearer")));
    let r = HttpClient::with_token(daemon.http, "wrong").delete(&path);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "invalid bearer token");
    assert_eq!(daemon.client().list(), vec![call_id.to_string()]);

    let authed = HttpClient::with_token(daemon.http, TOKEN);
    let r = authed.delete(&path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["call_id"], call_id);
    // Gone at once (delete delay 0), not lingering like an ng delete by default.
    assert!(daemon.client().list().is_empty());
    assert_eq!(open.get(&path).status, 404);
    let r = authed.delete(&path);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    assert_eq!(open.get("/calls").json()["total"], 0);
    let text = open.metrics();
    assert_eq!(metric(&text, "ngmedia_calls_active"), Some(0.0));
    assert_eq!(metric(&text, "ngmedia_ports_in_use"), Some(0.0));
}

#[test]
fn errors_are_json_and_openapi_lists_the_routes() {
    let daemon = Daemon::start(&[]);
    let http = daemon.http_client();

    let r = http.get("/no/such/route");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["detail"], "no route for GET /no/such/route");

    let r = http.send("POST", "/metrics");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"], "method_not_allowed");
    let r = http.get("/calls?limit=lots");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request");
    let r = http.get("/calls/unknown-call");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["detail"], "no call with call-id unknown-call");

    let health = http.get("/health").json();
    assert_eq!(health["status"], "ok");
    assert!(health["version"].is_string());

    let r = http.get("/openapi.json");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/calls", "get"),
        ("/calls/{call_id}", "get"),
        ("/calls/{call_id}", "delete"),
        ("/statistics", "get"),
        ("/load-limits", "get"),
        ("/load-limits", "put"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/", "get"),
        ("/ui/status.js", "get"),
        ("/ui/status.css", "get"),
        ("/media", "get"),
        ("/media", "post"),
        ("/media/{media_id}", "get"),
        ("/media/{media_id}", "delete"),
        ("/media/{media_id}/audio", "get"),
    ] {
        assert!(
            paths[path][method]["responses"]["200"].is_object(),
            "{method} {path}"
        );
    }
    assert_eq!(paths.len(), 16);
}

/// `--listen-ng` on a port free right now (the daemon must get past binding ng).
fn free_ng_flag() -> String {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    format!("--listen-ng={}", sock.local_addr().unwrap())
}

#[test]
fn non_loopback_http_without_token_refuses_to_start() {
    let (status, stderr) = run_to_exit(
        &[
            "--config",
            "none",
            "--interface",
            "127.0.0.1",
            &free_ng_flag(),
            "--listen-http",
            "0.0.0.0:18081",
        ],
        Duration::from_secs(5),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "listen-http 0.0.0.0:18081 is not a loopback address and no http-token is set"
        ),
        "{stderr}"
    );
}

#[test]
fn http_port_in_use_exits_1_with_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = run_to_exit(
        &[
            "--config",
            "none",
            "--interface",
            "127.0.0.1",
            &free_ng_flag(),
            "--listen-http",
            &addr,
        ],
        Duration::from_secs(5),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for HTTP on {addr}")),
        "{stderr}"
    );
}

/// An idle keep-alive connection, or one stuck halfway through its request, must not hold
/// the daemon up on SIGTERM.
#[test]
fn sigterm_with_open_http_connections_exits_promptly() {
    let mut daemon = Daemon::start(&[]);
    let r = ngmedia_tests::http::request(daemon.http, "GET", "/health", &[], &[]).unwrap();
    assert_eq!(r.status, 200);
    let mut idle = TcpStream::connect(daemon.http).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut partial = TcpStream::connect(daemon.http).unwrap();
    partial.write_all(b"GET /heal").unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let t0 = Instant::now();
    let status = daemon.terminate(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    // The HTTP drain limit (0.5 s), well under the 2 s grace for both servers.
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        !daemon.log_text().contains("did not stop"),
        "{}",
        daemon.log_text()
    );
}
