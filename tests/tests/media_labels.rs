//! Labels, as rtpengine has them: `label` names the party of an offer or answer, and the
//! media commands select a party by `label` (or `from-label`), label it with `set-label`,
//! and `play media` also takes `to-label`. What the peer receives shows which party was hit.

use std::path::Path;
use std::time::Duration;

use ngmedia_tests::bencode::Value;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::RtpEndpoint;
use ngmedia_tests::sdp::audio_sdp;

const WAIT: Duration = Duration::from_millis(300);

struct Call {
    a: RtpEndpoint,
    b: RtpEndpoint,
    a_dest: std::net::SocketAddr,
    b_dest: std::net::SocketAddr,
}

/// Offer from `a` labelled `caller`, answer from `b` labelled `callee`.
fn labelled_call(ng: &NgClient, call_id: &str) -> Call {
    let a = RtpEndpoint::new(0x1abe_1001);
    let b = RtpEndpoint::new(0x1abe_2002);
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => call_id, "from-tag" => "ta", "label" => "caller",
        "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv").as_str(),
    });
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => call_id, "from-tag" => "ta", "to-tag" => "tb",
        "label" => "callee",
        "sdp" => audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv").as_str(),
    });
    Call {
        a_dest: parse_reply_sdp(&answer).audio_addr(),
        b_dest: parse_reply_sdp(&offer).audio_addr(),
        a,
        b,
    }
}

/// One packet each way; whether A's reached B and B's reached A.
fn exchange(call: &mut Call) -> (bool, bool) {
    call.a.drain();
    call.b.drain();
    call.a.send_next(call.a_dest);
    call.b.send_next(call.b_dest);
    (call.b.recv(WAIT).is_some(), call.a.recv(WAIT).is_some())
}

fn label_of(ng: &NgClient, call_id: &str, tag: &str) -> Option<String> {
    let q = ng.query(call_id).unwrap();
    q.path(&["tags", tag, "label"])
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn error_reason(ng: &NgClient, body: Value) -> String {
    let r = ng.request(body).unwrap();
    assert_eq!(r.str_at("result"), Some("error"), "{r:?}");
    r.str_at("error-reason").unwrap().to_owned()
}

#[test]
fn media_commands_select_by_label_and_set_labels() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = labelled_call(&ng, "labels");
    assert_eq!(exchange(&mut call), (true, true));
    assert_eq!(label_of(&ng, "labels", "ta").as_deref(), Some("caller"));
    assert_eq!(label_of(&ng, "labels", "tb").as_deref(), Some("callee"));

    // `label` selects: what the callee sends is blocked, the caller's still flows.
    ng.ok(dict! { "command" => "block media", "call-id" => "labels", "label" => "callee" });
    assert_eq!(exchange(&mut call), (true, false));
    // `from-label` is the same key.
    ng.ok(dict! { "command" => "unblock media", "call-id" => "labels", "from-label" => "callee" });
    assert_eq!(exchange(&mut call), (true, true));

    // `set-label` relabels the party selected by from-tag, in the same request.
    ng.ok(dict! {
        "command" => "silence media", "call-id" => "labels", "from-tag" => "ta",
        "set-label" => "agent",
    });
    assert_eq!(label_of(&ng, "labels", "ta").as_deref(), Some("agent"));
    call.b.drain();
    call.a.send_next(call.a_dest);
    let (p, _) = call.b.recv(WAIT).expect("silenced packet");
    assert!(p[12..].iter().all(|&b| b == 0xFF), "PCMU silence");
    // The new label selects the party; the old one is gone.
    ng.ok(dict! { "command" => "unsilence media", "call-id" => "labels", "label" => "agent" });
    call.b.drain();
    call.a.send_next(call.a_dest);
    let (p, _) = call.b.recv(WAIT).expect("packet");
    assert!(p[12..].iter().any(|&b| b != 0xFF), "no longer silenced");
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "block media", "call-id" => "labels", "label" => "caller" }
        ),
        "No monologue matching the given label"
    );

    // A label given to a second party moves: it names one party only.
    ng.ok(dict! {
        "command" => "block DTMF", "call-id" => "labels", "label" => "callee",
        "set-label" => "agent",
    });
    assert_eq!(label_of(&ng, "labels", "tb").as_deref(), Some("agent"));
    assert_eq!(label_of(&ng, "labels", "ta"), None);
    ng.ok(dict! { "command" => "block media", "call-id" => "labels", "label" => "agent" });
    assert_eq!(
        exchange(&mut call),
        (true, false),
        "agent is now the callee"
    );

    // `play DTMF` by label: the callee "presses" 7; the caller receives the events.
    ng.ok(dict! { "command" => "unblock media", "call-id" => "labels", "all" => "all" });
    ng.ok(dict! { "command" => "unblock DTMF", "call-id" => "labels", "all" => "all" });
    ng.ok(dict! {
        "command" => "play DTMF", "call-id" => "labels", "label" => "agent", "code" => "7",
    });
    call.a.drain();
    call.b.send_next(call.b_dest);
    let (p, _) = call.a.recv(WAIT).expect("event");
    assert_eq!((p[1] & 0x7f, p[12]), (101, 7), "RFC 4733 event for 7");
}

#[test]
fn play_media_selects_the_receiving_party_by_label() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/media");
    let daemon = Daemon::start(&[&format!("--media-play-dirs={}", media.display())]);
    let ng = daemon.client();
    let mut call = labelled_call(&ng, "play-label");
    assert_eq!(exchange(&mut call), (true, true));
    let file = media.join("announcement.wav");
    let file = file.to_str().unwrap();

    for (key, label, hears, other) in [
        ("label", "caller", &call.a, &call.b),
        ("from-label", "callee", &call.b, &call.a),
        ("to-label", "caller", &call.a, &call.b),
    ] {
        hears.drain();
        other.drain();
        let r = ng.ok(Value::Dict(vec![
            (b"command".to_vec(), Value::from("play media")),
            (b"call-id".to_vec(), Value::from("play-label")),
            (key.as_bytes().to_vec(), Value::from(label)),
            (b"file".to_vec(), Value::from(file)),
        ]));
        assert!(
            r.get("duration").and_then(Value::as_int).unwrap() > 0,
            "{r:?}"
        );
        let got = hears.recv_many(5, Duration::from_secs(2));
        assert_eq!(got.len(), 5, "{key}={label}: the party hears the file");
        assert!(
            other.recv(Duration::from_millis(100)).is_none(),
            "{key}={label}: only that party"
        );
        ng.ok(Value::Dict(vec![
            (b"command".to_vec(), Value::from("stop media")),
            (b"call-id".to_vec(), Value::from("play-label")),
            (key.as_bytes().to_vec(), Value::from(label)),
        ]));
    }

    // `set-label` on play media labels the receiving party.
    ng.ok(dict! {
        "command" => "play media", "call-id" => "play-label", "from-tag" => "tb",
        "set-label" => "listener", "file" => file,
    });
    assert_eq!(
        label_of(&ng, "play-label", "tb").as_deref(),
        Some("listener")
    );
    ng.ok(dict! { "command" => "stop media", "call-id" => "play-label", "label" => "listener" });

    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "play media", "call-id" => "play-label", "label" => "nobody", "file" => file }
        ),
        "No monologue matching the given label"
    );
    assert_eq!(
        error_reason(
            &ng,
            dict! { "command" => "play media", "call-id" => "play-label", "file" => file }
        ),
        "No participant party specified"
    );
}

#[test]
fn block_media_with_to_label_blocks_the_flow_toward_that_party() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = labelled_call(&ng, "label-flow");
    assert_eq!(exchange(&mut call), (true, true));
    let r = ng.ok(dict! {
        "command" => "block media", "call-id" => "label-flow", "label" => "caller",
        "to-label" => "callee",
    });
    assert!(r.str_at("warning").is_none(), "{r:?}");
    // Caller → callee blocked, callee → caller flows.
    assert_eq!(exchange(&mut call), (false, true));
    ng.ok(dict! {
        "command" => "unblock media", "call-id" => "label-flow", "label" => "caller",
        "to-label" => "callee",
    });
    assert_eq!(exchange(&mut call), (true, true));
}
