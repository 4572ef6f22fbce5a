//! Structured logs: `--log-format json` writes one JSON object per line, and `--log-redact`
//! keeps call-ids, tags and addresses of parties out of the log text while the lines of one
//! call still carry the same stable hash.

use std::time::Duration;

use ngmedia_tests::{Daemon, TwoPartyCall};

#[test]
fn json_lines_with_redacted_call_ids() {
    let mut daemon = Daemon::start(&["--log-format", "json", "--log-redact"]);
    let ng = daemon.client();
    let http = daemon.http_client();
    let call_id = "secret-call-4711@pbx.example";
    let mut call = TwoPartyCall::setup(&ng, call_id);
    call.exchange(3, Duration::from_millis(2));
    assert_eq!(http.get(&format!("/calls/{call_id}")).status, 200);
    ng.ok(ngmedia_tests::dict! {
        "command" => "delete", "call-id" => call_id, "from-tag" => call.from_tag.as_str(),
    });
    // Deleted calls linger for delete-delay; an unknown one is a 404, logged with its path.
    assert_eq!(http.get("/calls/secret-call-4712@pbx.example").status, 404);
    daemon
        .terminate(Duration::from_secs(5))
        .expect("daemon stops");
    let log = daemon.log_text();

    let mut call_hashes = Vec::new();
    let mut messages = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&v["level"].as_str().unwrap()));
        let fields = &v["fields"];
        messages.push(fields["message"].as_str().unwrap_or_default().to_owned());
        if let Some(h) = fields["call_id"].as_str() {
            call_hashes.push(h.to_owned());
        }
    }
    for wanted in [
        "new call",
        "answer",
        "call deleted, lingering",
        "http request",
    ] {
        assert!(
            messages.iter().any(|m| m == wanted),
            "no {wanted:?} line in\n{log}"
        );
    }
    // Redacted: neither the call-id (nor its parts), the tags nor the parties' ports appear.
    for secret in [
        call_id,
        "secret-call-471",
        "pbx.example",
        &call.from_tag,
        &call.to_tag,
        &format!("127.0.0.1:{}", call.a.port()),
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the log:\n{log}"
        );
    }
    // One call, one stable hash on every line that names it.
    assert!(call_hashes.len() >= 3, "{call_hashes:?}");
    assert!(
        call_hashes.iter().all(|h| h == &call_hashes[0]),
        "{call_hashes:?}"
    );
    assert!(call_hashes[0].starts_with('~') && call_hashes[0].len() == 9);
}

#[test]
fn text_logs_show_call_ids_without_redaction() {
    let mut daemon = Daemon::start(&["--log-format", "text"]);
    let ng = daemon.client();
    TwoPartyCall::setup(&ng, "plain-call-id-42");
    daemon
        .terminate(Duration::from_secs(5))
        .expect("daemon stops");
    let log = daemon.log_text();
    assert!(log.contains("plain-call-id-42"), "{log}");
    assert!(serde_json::from_str::<serde_json::Value>(log.lines().next().unwrap()).is_err());
}
