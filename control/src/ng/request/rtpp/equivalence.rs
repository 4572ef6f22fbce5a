//! `rtpp-flags` strings read into exactly what their bencoded forms give: the strings of
//! rtpengine's `t/auto-daemon-tests-rtpp-flags.pl`, Kamailio's module documentation and the
//! flag capture in the ng reference, each next to the dictionary Kamailio 5.6 would send.

use crate::bencode::{DictWriter, Encoder};
use crate::ng::request::{decode_bencode, parse_request, Command, NgRequest};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 2000 RTP/AVP 0\r\n";

fn request(command: &str, f: impl FnOnce(&mut DictWriter<'_>)) -> NgRequest {
    let mut out = Vec::new();
    Encoder::new(&mut out).dict(|d| {
        d.str("command", command)
            .str("call-id", "c1")
            .str("from-tag", "t1")
            .str("sdp", SDP);
        if command == "answer" {
            d.str("to-tag", "t2");
        }
        f(d);
    });
    parse_request(&decode_bencode(&out).unwrap()).unwrap()
}

/// Everything a parsed request carries, as text, for comparison.
fn seen(req: &NgRequest) -> String {
    let command = match &req.command {
        Command::Offer(oa) | Command::Answer(oa) => format!("{oa:?}"),
        other => format!("{other:?}"),
    };
    format!(
        "{command}\nunknown keys {:?}\nunknown flags {:?}\nunsupported {:?}\ninvalid {:?}",
        req.unknown_keys, req.unknown_flags, req.unsupported, req.invalid
    )
}

#[track_caller]
fn same(command: &str, rtpp: &str, bencoded: impl FnOnce(&mut DictWriter<'_>)) {
    let a = request(command, |d| {
        d.str("rtpp-flags", rtpp);
    });
    let b = request(command, bencoded);
    assert_eq!(seen(&a), seen(&b), "rtpp-flags: {rtpp}");
}

fn list<'a>(d: &mut DictWriter<'_>, key: &str, items: &'a [&'a str]) {
    d.list(key, |l| {
        for i in items {
            l.str(i);
        }
    });
}

#[test]
fn rtpengine_test_strings() {
    const BASE: &str =
        "replace-origin strict-source label=caller OSRTP-accept address-family=IP4 transport-protocol=RTP/AVP";
    let base = |d: &mut DictWriter<'_>| {
        list(d, "replace", &["origin"]);
        list(d, "flags", &["strict-source"]);
        d.str("label", "caller");
        list(d, "OSRTP", &["accept"]);
        d.str("address-family", "IP4");
        d.str("transport-protocol", "RTP/AVP");
    };
    same("offer", BASE, base);
    same("answer", &BASE.replace("caller", "callee"), |d| {
        list(d, "replace", &["origin"]);
        list(d, "flags", &["strict-source"]);
        d.str("label", "callee");
        list(d, "OSRTP", &["accept"]);
        d.str("address-family", "IP4");
        d.str("transport-protocol", "RTP/AVP");
    });
    same("offer", &format!("ICE=remove {BASE}"), |d| {
        d.str("ICE", "remove");
        base(d);
    });
    same(
        "offer",
        "replace-zero-address strict-source label=caller OSRTP-accept address-family=IP4 transport-protocol=RTP/AVP",
        |d| {
            list(d, "replace", &["zero-address"]);
            list(d, "flags", &["strict-source"]);
            d.str("label", "caller");
            list(d, "OSRTP", &["accept"]);
            d.str("address-family", "IP4");
            d.str("transport-protocol", "RTP/AVP");
        },
    );
    let accept = |d: &mut DictWriter<'_>| {
        d.dict("codec", |c| {
            c.list("accept", |l| {
                l.str("PCMU");
            });
        });
        base(d);
    };
    same("offer", &format!("codec-accept=PCMU {BASE}"), accept);
    same("offer", &format!("codec=[accept=[PCMU]] {BASE}"), accept);
    same("offer", &format!("{BASE} codec=[accept=[PCMU]] "), |d| {
        base(d);
        d.dict("codec", |c| {
            c.list("accept", |l| {
                l.str("PCMU");
            });
        });
    });
    same(
        "offer",
        "rtcp-mux-demux replace-origin strict-source label=caller",
        |d| {
            list(d, "rtcp-mux", &["demux"]);
            list(d, "replace", &["origin"]);
            list(d, "flags", &["strict-source"]);
            d.str("label", "caller");
        },
    );
    same(
        "offer",
        "rtcp-mux=[demux] replace=[origin] strict-source label=caller",
        |d| {
            list(d, "rtcp-mux", &["demux"]);
            list(d, "replace", &["origin"]);
            list(d, "flags", &["strict-source"]);
            d.str("label", "caller");
        },
    );
    same(
        "offer",
        "SDES-only-AES_CM_128_HMAC_SHA1_80 ICE=remove DTLS=off replace-origin transport-protocol=RTP/SAVP",
        |d| {
            list(d, "SDES", &["only-AES_CM_128_HMAC_SHA1_80"]);
            d.str("ICE", "remove");
            d.str("DTLS", "off");
            list(d, "replace", &["origin"]);
            d.str("transport-protocol", "RTP/SAVP");
        },
    );
    same("offer", "T.38-decode ICE=remove DTLS=off", |d| {
        list(d, "flags", &["T.38-decode"]);
        d.str("ICE", "remove");
        d.str("DTLS", "off");
    });
    let foo_bar = |d: &mut DictWriter<'_>| list(d, "direction", &["foo", "bar"]);
    same("offer", "direction=foo direction=bar", foo_bar);
    same("offer", "direction=[foo bar]", foo_bar);
    same("offer", "internal external", |d| {
        list(d, "direction", &["internal", "external"])
    });
    same("offer", "SDP-attr=[audio=[remove=[test]]]", |d| {
        d.dict("sdp-attr", |a| {
            a.dict("audio", |m| {
                m.list("remove", |l| {
                    l.str("test");
                });
            });
        });
    });
    let combination = |d: &mut DictWriter<'_>| {
        list(d, "replace", &["origin"]);
        d.dict("sdp-attr", |a| {
            a.dict("audio", |m| {
                m.list("remove", |l| {
                    l.str("test");
                });
                m.list("add", |l| {
                    l.str("foo").str("bar");
                });
            });
            a.dict("global", |m| {
                m.list("remove", |l| {
                    l.str("quux");
                });
            });
        });
        list(d, "rtcp-mux", &["offer"]);
    };
    same(
        "offer",
        "replace=[origin] SDP-attr=[audio=[remove=[test] add=[foo bar]] global=[remove=[quux]]] rtcp-mux=[offer]",
        combination,
    );
}

#[test]
fn malformed_strings_keep_what_is_readable() {
    // rtpengine's "malformed syntax" test: `SDP-attr=` followed by spaces is no dictionary,
    // the rest still applies.
    let req = request("offer", |d| {
        d.str(
            "rtpp-flags",
            "replace=[ origin ]  SDP-attr=  [audio=[  remove = [   test   ]  add =  [foo bar]] global=[remove=[quux]]] rtcp-mux=[offer]",
        );
    });
    let Command::Offer(oa) = &req.command else {
        panic!()
    };
    assert!(oa.replace.origin);
    assert!(oa.rtcp_mux.offer);
    assert!(oa.sdp_attr.is_empty(), "{:?}", oa.sdp_attr);
    assert!(!req.unknown_keys.is_empty() || !req.unknown_flags.is_empty());
}

#[test]
fn kamailio_strings() {
    // The flag string of the capture in the ng reference (§5), as Kamailio 5.6 encodes it.
    same(
        "offer",
        "replace-origin replace-session-connection ICE=remove RTP/AVP codec-transcode-PCMA codec-mask-PCMU label=caller direction=internal record-call=yes trust-address",
        |d| {
            d.str("ICE", "remove");
            d.str("label", "caller");
            d.str("record-call", "yes");
            list(d, "direction", &["internal"]);
            list(d, "flags", &["trust-address"]);
            list(d, "replace", &["origin", "session-connection"]);
            d.dict("codec", |c| {
                c.list("transcode", |l| {
                    l.str("PCMA");
                });
                c.list("mask", |l| {
                    l.str("PCMU");
                });
            });
            d.str("transport-protocol", "RTP/AVP");
        },
    );
    // Kamailio module documentation examples.
    same(
        "offer",
        "replace-origin replace-session-connection ICE=force RTP/SAVPF",
        |d| {
            list(d, "replace", &["origin", "session-connection"]);
            d.str("ICE", "force");
            d.str("transport-protocol", "RTP/SAVPF");
        },
    );
    same(
        "offer",
        "trust-address replace-origin replace-session-connection address-family=IP6",
        |d| {
            list(d, "flags", &["trust-address"]);
            list(d, "replace", &["origin", "session-connection"]);
            d.str("address-family", "IP6");
        },
    );
    same("offer", "SRTP AVPF ICE=force", |d| {
        d.str("ICE", "force");
        d.str("transport-protocol", "RTP/SAVPF");
    });
    same("offer", "DTLS AVPF rtcp-mux-offer rtcp-mux-require", |d| {
        list(d, "rtcp-mux", &["offer", "require"]);
        d.str("transport-protocol", "UDP/TLS/RTP/SAVPF");
    });
    same("offer", "RTP AVP SIP-source-address", |d| {
        list(d, "flags", &["SIP-source-address"]);
        d.str("transport-protocol", "RTP/AVP");
    });
    same(
        "offer",
        "codec-strip-all codec-offer-opus codec-offer-PCMU transcode-G722 codec-set=opus/48000/2/32000",
        |d| {
            d.dict("codec", |c| {
                c.list("strip", |l| {
                    l.str("all");
                });
                c.list("offer", |l| {
                    l.str("opus").str("PCMU");
                });
                c.list("transcode", |l| {
                    l.str("G722");
                });
                c.list("set", |l| {
                    l.str("opus/48000/2/32000");
                });
            });
        },
    );
    same(
        "offer",
        "transcode=PCMA codec-strip=PCMU codec-except=G722",
        |d| {
            d.dict("codec", |c| {
                c.list("transcode", |l| {
                    l.str("PCMA");
                });
                c.list("strip", |l| {
                    l.str("PCMU");
                });
                c.list("except", |l| {
                    l.str("G722");
                });
            });
        },
    );
    same(
        "offer",
        "TOS=184 media-echo=both delete-delay=5 ptime=30",
        |d| {
            d.int("TOS", 184);
            d.str("media-echo", "both");
            d.int("delete-delay", 5);
            d.int("ptime", 30);
        },
    );
    same(
        "offer",
        "SDES-no-AES_256_CM_HMAC_SHA1_80 SDES-pad OSRTP-offer",
        |d| {
            list(d, "SDES", &["no-AES_256_CM_HMAC_SHA1_80", "pad"]);
            list(d, "OSRTP", &["offer"]);
        },
    );
    same(
        "offer",
        "sdp-attr-add-audio-foo sdp-attr-remove-none-quux sdp-attr-substitute-audio-fmtp:101>fmtp:101..0-15",
        |d| {
            list(
                d,
                "flags",
                &[
                    "sdp-attr-add-audio-foo",
                    "sdp-attr-remove-none-quux",
                    "sdp-attr-substitute-audio-fmtp:101>fmtp:101..0-15",
                ],
            );
        },
    );
    same("offer", "to-tag=t9 via-branch=z9hG4bK1 loop-protect", |d| {
        d.str("to-tag", "t9");
        d.str("via-branch", "z9hG4bK1");
        list(d, "flags", &["loop-protect"]);
    });
    same("offer", "set-label=moh metadata=a:b|c:d", |d| {
        d.str("set-label", "moh");
        d.str("metadata", "a:b|c:d");
    });
    // `key=` alone is the flag `key`.
    same("offer", "trust-address= generate-mid", |d| {
        list(d, "flags", &["trust-address", "generate-mid"]);
    });
    // A later explicit key overrides what the string said, as with any repeated key.
    let a = request("offer", |d| {
        d.str("rtpp-flags", "ICE=remove label=one");
        d.str("label", "two");
    });
    let Command::Offer(oa) = &a.command else {
        panic!()
    };
    assert_eq!(oa.label.as_deref(), Some("two"));
}

#[test]
fn delete_strings() {
    let a = request("delete", |d| {
        d.str("rtpp-flags", "to-tag=t2 delete-delay=0 fatal");
    });
    let b = request("delete", |d| {
        d.str("to-tag", "t2");
        d.int("delete-delay", 0);
        list(d, "flags", &["fatal"]);
    });
    assert_eq!(seen(&a), seen(&b));
}

#[test]
fn nested_rtpp_flags_are_not_read_again() {
    let req = request("offer", |d| {
        d.str("rtpp-flags", "rtpp-flags=rtpp-flags=trust-address");
    });
    assert_eq!(req.invalid.len(), 1, "{:?}", req.invalid);
}
