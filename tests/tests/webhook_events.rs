//! `--webhook-url`: call.started, call.answered and call.ended reach an HTTP receiver (here a
//! listener of the test) as JSON POSTs, in order, with the bearer token; a receiver that
//! fails once gets the event again; a call that times out ends with reason `timeout`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use ngmedia_tests::http::metric;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, TwoPartyCall};

/// One request as the receiver saw it.
#[derive(Debug)]
struct Post {
    request_line: String,
    headers: Vec<String>,
    body: serde_json::Value,
}

/// Accept POSTs on `listener`, answering the first `fail_first` with 503 (not reported) and
/// the rest with 204 (reported on the channel).
fn receiver(listener: TcpListener, fail_first: usize) -> mpsc::Receiver<Post> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(conn);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                headers.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut conn = reader.into_inner();
            seen += 1;
            if seen <= fail_first {
                let _ = conn.write_all(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            let post = Post {
                request_line: request_line.trim_end().to_string(),
                headers,
                body: serde_json::from_slice(&body).unwrap(),
            };
            if tx.send(post).is_err() {
                return;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<Post>) -> Post {
    rx.recv_timeout(Duration::from_secs(8))
        .expect("an event within 8 s")
}

#[test]
fn a_call_is_reported_from_start_to_end_with_a_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/calls", listener.local_addr().unwrap());
    let events = receiver(listener, 1);
    let daemon = Daemon::start(&["--webhook-url", &url, "--webhook-token", "s3cret"]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "hook-call");
    // A re-offer of a live call is no new call.
    let sdp = audio_sdp(call.a.addr().ip(), call.a.port(), 2, "sendrecv");
    ng.reoffer("hook-call", &call.from_tag, &call.to_tag, &sdp);
    ng.ok(dict! { "command" => "delete", "call-id" => "hook-call", "delete-delay" => 0i64 });

    let started = next(&events);
    assert_eq!(started.request_line, "POST /hooks/calls HTTP/1.1");
    assert!(started
        .headers
        .iter()
        .any(|h| h == "Authorization: Bearer s3cret"));
    assert!(started
        .headers
        .iter()
        .any(|h| h == "Content-Type: application/json"));
    assert_eq!(
        started.body["event"], "call.started",
        "delivered after the 503"
    );
    assert_eq!(started.body["call_id"], "hook-call");
    assert_eq!(started.body["from_tag"], call.from_tag);
    let answered = next(&events);
    assert_eq!(answered.body["event"], "call.answered");
    assert_eq!(answered.body["to_tag"], call.to_tag);
    assert!(answered.body["setup_ms"].as_u64().is_some());
    let ended = next(&events);
    assert_eq!(ended.body["event"], "call.ended");
    assert_eq!(ended.body["reason"], "deleted");
    assert_eq!(ended.body["from_tag"], call.from_tag);
    assert_eq!(ended.body["to_tag"], call.to_tag);
    assert!(
        ended.body["timestamp"].as_u64().unwrap() >= started.body["timestamp"].as_u64().unwrap()
    );
    assert!(
        events.recv_timeout(Duration::from_millis(500)).is_err(),
        "one event each"
    );
    let text = daemon.http_client().metrics();
    let series = |r: &str| {
        metric(
            &text,
            &format!("ngmedia_webhook_events_total{{result=\"{r}\"}}"),
        )
    };
    assert_eq!(
        (series("delivered"), series("failed"), series("dropped")),
        (Some(3.0), Some(0.0), Some(0.0))
    );
}

#[test]
fn a_timed_out_call_ends_with_reason_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let events = receiver(listener, 0);
    let daemon = Daemon::start(&["--webhook-url", &url, "--timeout", "1"]);
    let _call = TwoPartyCall::setup(&daemon.client(), "hook-idle");
    assert_eq!(next(&events).body["event"], "call.started");
    assert_eq!(next(&events).body["event"], "call.answered");
    let ended = next(&events);
    assert_eq!(ended.body["event"], "call.ended");
    assert_eq!(ended.body["reason"], "timeout");
    assert!(ended.body["duration_ms"].as_u64().unwrap() >= 900);
}

#[test]
fn an_https_url_is_refused_at_start() {
    let out = std::process::Command::new(ngmedia_tests::daemon::binary())
        .args(["--config", "none", "--webhook-url", "https://192.0.2.1/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https webhooks are not supported"), "{err}");
}
