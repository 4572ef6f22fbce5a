//! Bad ng requests get clear error replies and never disturb the daemon; a retransmitted
//! cookie gets the cached reply without the command running again.

use std::time::Duration;

use ngmedia_tests::ng::new_cookie;
use ngmedia_tests::{dict, Daemon, NgClient, TwoPartyCall, Value};

fn assert_error(reply: &Value, reason: Option<&str>) {
    assert_eq!(reply.str_at("result"), Some("error"), "{reply:?}");
    let got = reply
        .str_at("error-reason")
        .unwrap_or_else(|| panic!("no error-reason: {reply:?}"));
    assert!(!got.is_empty());
    if let Some(reason) = reason {
        assert_eq!(got, reason);
    }
}

fn assert_alive(ng: &NgClient) {
    assert_eq!(
        ng.ok(dict! { "command" => "ping" }).str_at("result"),
        Some("pong")
    );
}

#[test]
fn unknown_command_is_an_error() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    assert_error(
        &ng.request(dict! { "command" => "frobnicate" }).unwrap(),
        Some("Unrecognized command"),
    );
    assert_error(
        &ng.request(dict! { "call-id" => "x" }).unwrap(),
        Some("Dictionary contains no key \"command\""),
    );
    assert_alive(&ng);
}

#[test]
fn missing_call_id_and_unknown_call_are_errors() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let sdp = ngmedia_tests::sdp::audio_sdp("127.0.0.1".parse().unwrap(), 4000, 1, "sendrecv");
    let r = ng
        .request(dict! { "command" => "offer", "from-tag" => "a", "sdp" => sdp.as_str() })
        .unwrap();
    assert_error(&r, None);
    let r = ng
        .request(dict! { "command" => "answer", "call-id" => "nope", "from-tag" => "a", "to-tag" => "b", "sdp" => sdp.as_str() })
        .unwrap();
    assert_error(&r, Some("Unknown call-id"));
    assert_error(&ng.query("nope").unwrap(), None);
    assert_alive(&ng);
}

#[test]
fn garbage_gets_an_error_or_nothing_and_the_daemon_keeps_answering() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    for body in [
        &b"this is not bencode"[..],
        b"d7:command",
        b"l4:pinge",
        b"i42e",
        b"99999:x",
        b"",
    ] {
        let cookie = new_cookie();
        let mut datagram = format!("{cookie} ").into_bytes();
        datagram.extend_from_slice(body);
        if let Some(reply) = ng.send_raw(&datagram, Duration::from_millis(300)) {
            let text = String::from_utf8_lossy(&reply);
            let rest = reply
                .strip_prefix(format!("{cookie} ").as_bytes())
                .unwrap_or_else(|| {
                    panic!(
                        "reply to {:?} lacks the cookie: {text}",
                        String::from_utf8_lossy(body)
                    )
                });
            let decoded =
                Value::decode(rest).unwrap_or_else(|e| panic!("undecodable reply {text}: {e}"));
            assert_eq!(
                decoded.str_at("result"),
                Some("error"),
                "reply to {:?}: {decoded:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
    // No cookie at all: must be ignored, not crash anything.
    let _ = ng.send_raw(b"nocookie", Duration::from_millis(100));
    assert_alive(&ng);
}

#[test]
fn duplicate_cookie_gets_identical_reply_without_second_execution() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "dup-cookie");
    let cookie = new_cookie();
    let delete = dict! {
        "command" => "delete", "call-id" => "dup-cookie", "from-tag" => call.from_tag.as_str(),
        "delete-delay" => 0i64,
    }
    .encode();
    let first = ng.exchange(&cookie, &delete).expect("reply to delete");
    assert_eq!(Value::decode(&first).unwrap().str_at("result"), Some("ok"));
    assert_eq!(
        ng.query("dup-cookie").unwrap().str_at("result"),
        Some("error")
    );

    // The same call-id is set up again; a retransmission of the old delete must not end it.
    drop(call);
    let _again = TwoPartyCall::setup(&ng, "dup-cookie");
    let second = ng
        .exchange(&cookie, &delete)
        .expect("reply to retransmitted delete");
    assert_eq!(
        second, first,
        "retransmission must get the byte-identical reply"
    );
    assert_eq!(
        ng.query("dup-cookie").unwrap().str_at("result"),
        Some("ok"),
        "delete ran twice"
    );
}
