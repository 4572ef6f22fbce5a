//! Daemon-side flag strings (`rtpp-flags`), `sdp-attr` edits and the `warning` of replies,
//! on the real binary: what the SDP sent on looks like, and that nothing the engine ignores
//! comes back as a silent `ok`.

use ngmedia_tests::{dict, Daemon, Value};

const OFFER: &str = ngmedia_test_support::sdp_fixture!("sdp-attr-audio");

fn offer(extra: Vec<(&str, Value)>, call_id: &str) -> Value {
    let mut d = vec![
        ("command", Value::from("offer")),
        ("call-id", Value::from(call_id)),
        ("from-tag", Value::from("a")),
        ("sdp", Value::from(OFFER)),
    ];
    d.extend(extra);
    Value::Dict(
        d.into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn media_part(sdp: &str) -> &str {
    &sdp[sdp.find("m=audio").expect("m=audio")..]
}

fn session_part(sdp: &str) -> &str {
    &sdp[..sdp.find("m=audio").expect("m=audio")]
}

#[test]
fn sdp_attr_dictionary_edits_session_and_media() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let attr = dict! {
        "audio" => Value::Dict(vec![
            (b"remove".to_vec(), Value::from(vec!["test", "fmtp:101"])),
            (b"add".to_vec(), Value::from(vec!["foo", "bar:1 2"])),
            (b"substitute".to_vec(), Value::List(vec![Value::from(vec!["quux", "quuz"])])),
        ]),
        "none" => Value::Dict(vec![
            (b"remove".to_vec(), Value::from(vec!["quux"])),
            (b"add".to_vec(), Value::from(vec!["session-added"])),
        ]),
    };
    let reply = ng.ok(offer(vec![("sdp-attr", attr)], "sdpattr-1"));
    assert_eq!(reply.str_at("warning"), None, "{reply:?}");
    let sdp = reply.str_at("sdp").unwrap();
    let (session, media) = (session_part(sdp), media_part(sdp));
    assert!(!session.contains("a=quux"), "{sdp}");
    assert!(session.contains("a=test1\r\n"), "{sdp}");
    assert!(session.ends_with("a=session-added\r\n"), "{sdp}");
    assert!(!media.contains("a=test\r\n"), "{sdp}");
    assert!(!media.contains("a=fmtp:101"), "{sdp}");
    assert!(
        media.contains("a=quuz\r\n") && !media.contains("a=quux"),
        "{sdp}"
    );
    assert!(media.ends_with("a=foo\r\na=bar:1 2\r\n"), "{sdp}");
    // Our own attributes are still there.
    assert!(media.contains("a=rtpmap:0 PCMU/8000\r\n"), "{sdp}");
}

#[test]
fn sdp_attr_flags_and_rtpp_flags_give_the_same_sdp() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let by_flags = ng.ok(offer(
        vec![(
            "flags",
            Value::from(vec![
                "sdp-attr-remove-audio-test",
                "sdp-attr-add-audio-foo",
                "sdp-attr-substitute-audio-fmtp:101..0-16>fmtp:101..0-15",
                "sdp-attr-remove-global-quux",
            ]),
        )],
        "sdpattr-2",
    ));
    let by_rtpp = ng.ok(offer(
        vec![(
            "rtpp-flags",
            Value::from(
                "SDP-attr=[audio=[remove=[test] add=[foo] substitute=[fmtp:101..0-16>fmtp:101..0-15]] global=[remove=[quux]]]",
            ),
        )],
        "sdpattr-3",
    ));
    let strip_ports = |v: &Value| {
        let sdp = v.str_at("sdp").unwrap();
        sdp.lines()
            .filter(|l| !l.starts_with("m=") && !l.starts_with("a=rtcp:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_ports(&by_flags), strip_ports(&by_rtpp));
    let sdp = by_flags.str_at("sdp").unwrap();
    assert!(sdp.contains("a=fmtp:101 0-15\r\n"), "{sdp}");
    assert!(media_part(sdp).ends_with("a=foo\r\n"), "{sdp}");
    assert!(!session_part(sdp).contains("a=quux"), "{sdp}");
}

#[test]
fn rtpp_flags_are_applied_not_dropped() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    // rtpengine's test: replace-origin and rtcp-mux-offer from the flag string.
    let reply = ng.ok(offer(
        vec![(
            "rtpp-flags",
            Value::from("replace-origin ICE=remove rtcp-mux-offer label=caller trust-address"),
        )],
        "rtpp-1",
    ));
    assert_eq!(reply.str_at("warning"), None, "{reply:?}");
    let sdp = reply.str_at("sdp").unwrap();
    assert!(
        sdp.contains("o=- 1545997027 1 IN IP4 127.0.0.1\r\n"),
        "{sdp}"
    );
    assert!(sdp.contains("a=rtcp-mux\r\n"), "{sdp}");
    let q = ng.query("rtpp-1").unwrap();
    let tags = q.get("tags").unwrap();
    assert_eq!(
        tags.get("a").and_then(|t| t.str_at("label")),
        Some("caller"),
        "{q:?}"
    );
}

#[test]
fn ignored_keys_and_flags_come_back_in_warning() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let reply = ng.ok(offer(
        vec![
            ("flags", Value::from(vec!["no-jitter-buffer", "frobnicate"])),
            ("xmlrpc-callback", Value::from("192.0.2.1")),
            ("whatever-key", Value::from("x")),
        ],
        "warn-1",
    ));
    assert_eq!(reply.str_at("result"), Some("ok"));
    let warning = reply.str_at("warning").expect("warning");
    for word in [
        "no-jitter-buffer",
        "xmlrpc-callback",
        "frobnicate",
        "whatever-key",
    ] {
        assert!(warning.contains(word), "{word} missing in {warning}");
    }
    // The same through rtpp-flags, and on a command without SDP.
    let reply = ng.ok(dict! {
        "command" => "query", "call-id" => "warn-1", "rtpp-flags" => "no-jitter-buffer",
    });
    assert!(
        reply
            .str_at("warning")
            .is_some_and(|w| w.contains("no-jitter-buffer")),
        "{reply:?}"
    );
    // A clean request has no warning.
    let reply = ng.ok(dict! { "command" => "query", "call-id" => "warn-1" });
    assert_eq!(reply.str_at("warning"), None);
    // JSON requests get the same warning.
    let json = ng
        .exchange(
            &ngmedia_tests::ng::new_cookie(),
            br#"{"command":"list","flags":["frobnicate"]}"#,
        )
        .expect("reply");
    let text = String::from_utf8_lossy(&json);
    assert!(
        text.contains("\"warning\"") && text.contains("frobnicate"),
        "{text}"
    );
}
