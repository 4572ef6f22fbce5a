//! A forked INVITE: a plain desk-phone caller rings a WebRTC browser and a desk phone at once.
//! Each branch is offered with its own `via-branch` and its own flags (the browser gets
//! DTLS-SRTP with ICE and rtcp-mux, the phone plain RTP), so each gets its own ports and SDP;
//! the branch that answers carries the media, and a `delete` with the other branch's
//! `via-branch` removes only that branch.

use std::net::SocketAddr;

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::dtls::{attr, check_both_ways, sdp, DtlsPeer};
use ngmedia_tests::sdp::Sdp;
use ngmedia_tests::{dict, Daemon, NgClient, RtpEndpoint, Value};

const BROWSER: &str = "z9hG4bKfork.0";
const PHONE: &str = "z9hG4bKfork.1";

/// The caller's offer, sent once per branch with that branch's flags; returns the SDP each
/// branch gets.
fn offer_both(ng: &NgClient, call: &str, caller: &RtpEndpoint) -> (Sdp, Sdp) {
    let body = sdp(caller.port(), "RTP/AVP", &[]);
    let browser = parse_reply_sdp(&ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "caller",
        "via-branch" => BROWSER, "sdp" => body.as_str(),
        "transport-protocol" => "UDP/TLS/RTP/SAVPF", "ICE" => "force",
        "rtcp-mux" => vec!["offer"], "SDES" => vec!["off"],
    }));
    let phone = parse_reply_sdp(&ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "caller",
        "via-branch" => PHONE, "sdp" => body.as_str(),
        "transport-protocol" => "RTP/AVP", "ICE" => "remove",
    }));
    (browser, phone)
}

fn tags(ng: &NgClient, call: &str) -> Vec<(String, Option<String>)> {
    let q = ng.query(call).expect("query");
    q.get("tags")
        .and_then(Value::as_dict)
        .map(|d| {
            d.iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        v.str_at("via-branch").map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn relay_plain(from: &mut RtpEndpoint, to: SocketAddr, rx: &RtpEndpoint) -> usize {
    let mut got = 0;
    for _ in 0..5 {
        let sent = from.send_next(to);
        if let Some((p, _)) = rx.recv(std::time::Duration::from_millis(500)) {
            if p == sent {
                got += 1;
            }
        }
    }
    got
}

#[test]
fn each_branch_gets_its_own_transport_and_the_browser_wins() {
    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let ng = daemon.client();
    let caller = RtpEndpoint::new(0xca11);
    let (browser_sdp, phone_sdp) = offer_both(&ng, "fork-webrtc", &caller);

    // Two branches, two transports, two sets of ports.
    assert_eq!(browser_sdp.audio().proto, "UDP/TLS/RTP/SAVPF");
    assert_eq!(attr(&browser_sdp, "setup"), Some("actpass"));
    assert!(attr(&browser_sdp, "fingerprint").is_some());
    assert!(attr(&browser_sdp, "ice-ufrag").is_some());
    assert!(browser_sdp.audio().has_attr("rtcp-mux"));
    assert_eq!(phone_sdp.audio().proto, "RTP/AVP");
    assert_eq!(attr(&phone_sdp, "fingerprint"), None);
    assert_eq!(attr(&phone_sdp, "ice-ufrag"), None);
    assert_ne!(browser_sdp.audio().port, phone_sdp.audio().port);
    let t = tags(&ng, "fork-webrtc");
    assert_eq!(t.len(), 3, "caller and one leg per branch: {t:?}");

    // The browser answers (DTLS active: it is the client).
    let browser = DtlsPeer::new(0xb0);
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => "fork-webrtc", "from-tag" => "caller",
        "to-tag" => "browser", "via-branch" => BROWSER,
        "sdp" => sdp(browser.ep.port(), "UDP/TLS/RTP/SAVPF",
            &["a=setup:active".into(), browser.fingerprint_line(), "a=rtcp-mux".into()]),
        "ICE" => "remove", "transport-protocol" => "RTP/AVP",
    });
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/AVP");
    assert_eq!(attr(&answer_sdp, "fingerprint"), None);

    // The phone's branch is cancelled: only that branch goes.
    ng.ok(dict! {
        "command" => "delete", "call-id" => "fork-webrtc", "from-tag" => "caller",
        "via-branch" => PHONE,
    });
    let t = tags(&ng, "fork-webrtc");
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t
        .iter()
        .any(|(tag, b)| tag == "browser" && b.as_deref() == Some(BROWSER)));

    // DTLS-SRTP between the browser and the engine, plain RTP to the caller.
    let engine_fp = attr(&browser_sdp, "fingerprint").unwrap().to_owned();
    let mut keys = browser
        .handshake(
            browser_sdp.audio_addr(),
            true,
            "SRTP_AES128_CM_SHA1_80",
            &engine_fp,
            0,
        )
        .expect("DTLS handshake on the browser branch's port");
    check_both_ways(
        &browser.ep,
        &mut keys,
        browser_sdp.audio_addr(),
        &caller,
        answer_sdp.audio_addr(),
        None,
        1..10,
    );

    // The whole call ends with the last delete.
    ng.ok(dict! {
        "command" => "delete", "call-id" => "fork-webrtc", "from-tag" => "caller",
    });
    assert!(ng.query("fork-webrtc").is_err() || tags(&ng, "fork-webrtc").is_empty());
}

#[test]
fn the_desk_phone_wins_and_the_browser_branch_is_removed() {
    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let ng = daemon.client();
    let mut caller = RtpEndpoint::new(0xca12);
    let (browser_sdp, phone_sdp) = offer_both(&ng, "fork-phone", &caller);
    assert_ne!(browser_sdp.audio().port, phone_sdp.audio().port);

    let mut phone = RtpEndpoint::new(0xde5c);
    let answer = parse_reply_sdp(&ng.ok(dict! {
        "command" => "answer", "call-id" => "fork-phone", "from-tag" => "caller",
        "to-tag" => "phone", "via-branch" => PHONE,
        "sdp" => sdp(phone.port(), "RTP/AVP", &[]), "ICE" => "remove",
    }));
    assert_eq!(answer.audio().proto, "RTP/AVP");
    ng.ok(dict! {
        "command" => "delete", "call-id" => "fork-phone", "from-tag" => "caller",
        "via-branch" => BROWSER,
    });
    let t = tags(&ng, "fork-phone");
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t
        .iter()
        .any(|(tag, b)| tag == "phone" && b.as_deref() == Some(PHONE)));

    // Plain RTP both ways through the phone branch's ports.
    assert_eq!(relay_plain(&mut caller, answer.audio_addr(), &phone), 5);
    assert_eq!(relay_plain(&mut phone, phone_sdp.audio_addr(), &caller), 5);
    // The removed browser branch's port relays nothing any more.
    let stray = RtpEndpoint::new(0x5757);
    let mut stray = stray;
    stray.send_next(browser_sdp.audio_addr());
    assert!(caller.recv(std::time::Duration::from_millis(300)).is_none());
}
