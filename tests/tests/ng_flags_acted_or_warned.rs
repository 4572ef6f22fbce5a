//! Offer/answer/delete flags that used to be accepted silently: `original-sendrecv` and
//! `fast` now act; `new-branch` and `reset` come back in `warning`.

use ngmedia_tests::bencode::Value;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;

fn held_sdp() -> String {
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
     m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n"
        .to_owned()
}

#[test]
fn original_sendrecv_keeps_the_partys_direction() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    // A zero address normally turns sendrecv into sendonly (rtpengine's default)...
    let r = ng.ok(dict! {
        "command" => "offer", "call-id" => "osr-1", "from-tag" => "a", "sdp" => held_sdp().as_str(),
    });
    assert!(r.str_at("sdp").unwrap().contains("a=sendonly"), "{r:?}");
    // ...and with `original-sendrecv` the party's own attribute is passed on.
    let r = ng.ok(dict! {
        "command" => "offer", "call-id" => "osr-2", "from-tag" => "a", "sdp" => held_sdp().as_str(),
        "flags" => vec!["original-sendrecv"],
    });
    let sdp = r.str_at("sdp").unwrap();
    assert!(
        sdp.contains("a=sendrecv") && !sdp.contains("a=sendonly"),
        "{sdp}"
    );
    assert_eq!(r.str_at("warning"), None, "{r:?}");
}

#[test]
fn fast_delete_leaves_out_the_statistics() {
    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let ng = daemon.client();
    for (call, flags, stats) in [("fast-1", vec![], true), ("fast-2", vec!["fast"], false)] {
        ng.ok(dict! {
            "command" => "offer", "call-id" => call, "from-tag" => "a", "sdp" => held_sdp().as_str(),
        });
        let r = ng.ok(dict! {
            "command" => "delete", "call-id" => call, "from-tag" => "a", "flags" => flags,
        });
        assert_eq!(r.str_at("result"), Some("ok"));
        assert_eq!(r.get("totals").is_some(), stats, "{call}: {r:?}");
        assert_eq!(r.get("tags").is_some(), stats, "{call}: {r:?}");
    }
}

#[test]
fn flags_not_acted_on_are_reported() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let r = ng.ok(dict! {
        "command" => "offer", "call-id" => "warned", "from-tag" => "a", "sdp" => held_sdp().as_str(),
        "flags" => vec!["new-branch", "reset"],
    });
    let warning = r.str_at("warning").unwrap_or_default();
    for flag in ["new-branch", "reset"] {
        assert!(warning.contains(flag), "{flag} missing in {r:?}");
    }
    assert!(matches!(r.get("sdp"), Some(Value::Bytes(_))));
}
