use ngmedia_test_support::sdp_fixture;

use super::super::model::Codec;
use super::*;

mod captures;

use captures::EX2_OFFER;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// SDP written inline with bare newlines, in the wire form (CRLF).
fn crlf(text: &str) -> String {
    text.lines().map(|l| format!("{l}\r\n")).collect()
}

fn engine() -> IpAddr {
    ip("127.0.0.1")
}

/// What the captured requests asked for: `replace: [origin]` or not, ICE removed,
/// one audio stream on the ports rtpengine chose.
fn rewrite_for(replace_origin: bool, port: u16) -> SdpRewrite {
    SdpRewrite {
        origin: OriginRewrite {
            address: replace_origin.then(engine),
            ..OriginRewrite::default()
        },
        session_name: None,
        connection: engine(),
        media: vec![MediaRewrite::new(engine(), port)],
        loop_protect: false,
        strip_extmap: false,
        session_connection: false,
    }
}

fn rewrite_text(input: &str, rw: &SdpRewrite) -> String {
    Sdp::parse(&crlf(input)).unwrap().rewrite(rw).write()
}

// ---- captures: reference/captures/ex2.out (ng-protocol.md example B) ----

const MULTI: &str = sdp_fixture!("audio-video-unknown-lines");

fn two_media(a: MediaRewrite, v: MediaRewrite) -> SdpRewrite {
    SdpRewrite {
        origin: OriginRewrite {
            address: Some(ip("203.0.113.1")),
            ..OriginRewrite::default()
        },
        session_name: None,
        connection: ip("203.0.113.1"),
        media: vec![a, v],
        loop_protect: false,
        strip_extmap: false,
        session_connection: false,
    }
}

#[test]
fn several_media_sections_keep_unknown_lines_in_place() {
    let e = ip("203.0.113.1");
    let out = rewrite_text(
        MULTI,
        &two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002)),
    );
    assert_eq!(out, sdp_fixture!("audio-video-unknown-lines.rewritten"));
}

#[test]
fn media_level_connection_is_rewritten_per_section() {
    let input = "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
m=audio 5000 RTP/AVP 8
c=IN IP4 192.0.2.2
m=audio 5002 RTP/AVP 8
c=IN IP4 192.0.2.3
";
    let rw = two_media(
        MediaRewrite::new(ip("203.0.113.1"), 30000),
        MediaRewrite::new(ip("203.0.113.2"), 30010),
    );
    let sdp = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
    assert_eq!(sdp.media[0].lines[0], Line::new(b'c', "IN IP4 203.0.113.1"));
    assert_eq!(sdp.media[1].lines[0], Line::new(b'c', "IN IP4 203.0.113.2"));
    assert_eq!(sdp.connection_address(), None, "no session c= is invented");
    assert_eq!(sdp.media_connection(1), Some(ip("203.0.113.2")));
}

#[test]
fn ipv6_bridging() {
    let e6 = ip("2001:db8::1");
    let rw = SdpRewrite {
        origin: OriginRewrite {
            address: Some(e6),
            ..OriginRewrite::default()
        },
        session_name: None,
        connection: e6,
        media: vec![MediaRewrite {
            full_rtcp_attribute: true,
            ..MediaRewrite::new(e6, 30000)
        }],
        loop_protect: false,
        strip_extmap: false,
        session_connection: false,
    };
    let out = rewrite_text(EX2_OFFER, &rw);
    assert_eq!(out, sdp_fixture!("rtpengine-ex2-offer.rewritten-ipv6"));
    // and back: an IPv6 party bridged to IPv4
    let v6_input = "v=0\no=- 1 1 IN IP6 2001:db8::9\ns=-\nc=IN IP6 2001:db8::9\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    let out = Sdp::parse(v6_input)
        .unwrap()
        .rewrite(&rewrite_for(true, 30000));
    assert_eq!(out.origin().unwrap().addr_type, "IP4");
    assert_eq!(out.connection_address(), Some(engine()));
}

#[test]
fn hold_with_zero_address_and_sendonly() {
    let input = "v=0
o=alice 1 2 IN IP4 192.0.2.5
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 4000 RTP/AVP 8
c=IN IP4 0.0.0.0
a=sendonly
";
    let kept = rewrite_text(input, &rewrite_for(true, 30000));
    assert_eq!(
        kept,
        crlf(
            "v=0
o=alice 1 2 IN IP4 127.0.0.1
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 30000 RTP/AVP 8
c=IN IP4 0.0.0.0
a=rtpmap:8 PCMA/8000
a=sendonly
a=rtcp:30001
"
        )
    );
    // replace zero-address: the engine address goes in (the session c= only with
    // replace session-connection, since the one section has its own c=)
    let mut rw = rewrite_for(true, 30000);
    rw.media[0].zero_address = false;
    let replaced = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
    assert_eq!(replaced.connection_address(), Some(ip("0.0.0.0")));
    assert_eq!(replaced.media_connection(0), Some(engine()));
    rw.session_connection = true;
    let replaced = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
    assert_eq!(replaced.connection_address(), Some(engine()));
    // zero kept across families: written as the engine family's zero
    let mut rw6 = rewrite_for(false, 30000);
    rw6.session_connection = true;
    rw6.connection = ip("::1");
    rw6.media[0].address = ip("::1");
    let bridged = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw6);
    assert_eq!(bridged.session[3], Line::new(b'c', "IN IP6 ::"));
}

const WEBRTC: &str = sdp_fixture!("webrtc-offer");

#[test]
fn ice_remove() {
    let mut rw = rewrite_for(true, 30000);
    rw.media[0].protocol = Some("RTP/AVP".into());
    let mut sdp = Sdp::parse(WEBRTC).unwrap();
    // Plain RTP towards the receiver: the call model drops the DTLS role.
    sdp.media[0].remove_attributes("setup");
    let out = sdp.rewrite(&rw).write();
    assert_eq!(out, sdp_fixture!("webrtc-offer.ice-removed"));
    let sdp = Sdp::parse(&out).unwrap();
    assert!(!sdp.media[0].has_ice());
    for name in [
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "candidate",
        "remote-candidates",
    ] {
        assert!(!sdp.has_attribute(name), "{name} left over");
    }
}

#[test]
fn ice_replace_and_rtcp_mux() {
    let e = engine();
    let mut rw = rewrite_for(false, 30000);
    rw.media[0] = MediaRewrite {
        rtcp_port: Some(30000),
        rtcp_mux: true,
        ice: IceRewrite::Replace {
            trickle: false,
            ufrag: "Ab12".into(),
            pwd: "0123456789abcdefghijkl".into(),
            candidates: vec![IceCandidate {
                foundation: "f1".into(),
                component: 1,
                priority: 2130706431,
                address: e,
                port: 30000,
                relay: false,
            }],
        },
        ..MediaRewrite::new(e, 30000)
    };
    let sdp = Sdp::parse(WEBRTC).unwrap();
    let mut sdp_in = sdp.clone();
    sdp_in.media[0].set_attributes("fingerprint", &["sha-256 CC:DD"]);
    let out = sdp_in.rewrite(&rw);
    let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        media,
        vec![
            "c=IN IP4 127.0.0.1",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=msid:s1 t1",
            "a=ssrc:1001 cname:xyz",
            "a=mid:0",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtcp-fb:111 transport-cc",
            "a=rtpmap:0 PCMU/8000",
            "a=sendrecv",
            "a=rtcp:30000",
            "a=rtcp-mux",
            "a=setup:actpass",
            "a=fingerprint:sha-256 CC:DD",
            "a=ice-ufrag:Ab12",
            "a=ice-pwd:0123456789abcdefghijkl",
            "a=candidate:f1 1 UDP 2130706431 127.0.0.1 30000 typ host",
            "a=end-of-candidates",
        ]
    );
    assert_eq!(
        out.media[0].m.to_string(),
        "audio 30000 UDP/TLS/RTP/SAVPF 111 0"
    );
    assert!(out.media[0].has_ice());
    // session-level ICE, BUNDLE and fingerprint are gone, the rest stays
    let session: Vec<String> = out.session.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        session,
        vec![
            "v=0",
            "o=- 4611 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=msid-semantic: WMS"
        ]
    );
}

#[test]
fn ice_keep_leaves_candidates() {
    let mut rw = rewrite_for(false, 30000);
    rw.media[0].ice = IceRewrite::Keep;
    let out = Sdp::parse(WEBRTC).unwrap().rewrite(&rw);
    assert!(out.media[0].has_ice());
    assert_eq!(out.media[0].attributes("candidate").count(), 2);
    assert_eq!(out.session_attribute("ice-options"), Some("trickle"));
}

#[test]
fn rejected_media_gets_port_zero_and_no_engine_lines() {
    let e = ip("203.0.113.1");
    let out = rewrite_text(
        MULTI,
        &two_media(MediaRewrite::new(e, 30000), MediaRewrite::rejected(e)),
    );
    let sdp = Sdp::parse(&out).unwrap();
    assert_eq!(sdp.media[1].m.to_string(), "video 0 RTP/AVPF 97");
    let video: Vec<String> = sdp.media[1].lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        video,
        vec![
            "b=TIAS:512000",
            "a=rtcp-fb:* ccm fir",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:toffset",
            "a=content:main"
        ]
    );
    // a section the rewrite has no entry for is rejected too
    let one = SdpRewrite {
        media: vec![MediaRewrite::new(e, 30000)],
        ..two_media(MediaRewrite::new(e, 1), MediaRewrite::new(e, 1))
    };
    let sdp = Sdp::parse(MULTI).unwrap().rewrite(&one);
    assert_eq!(sdp.media[1].m.port, 0);
    assert!(sdp.media[1].rtcp().is_none());
}

#[test]
fn static_payload_types_get_rtpmap_and_session_direction_moves_to_media() {
    let input = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=inactive\nm=audio 4000 RTP/AVP 18 0 13 99\na=fmtp:18 annexb=no\n";
    let out = Sdp::parse(input)
        .unwrap()
        .rewrite(&rewrite_for(false, 30000));
    assert!(!out.session.iter().any(|l| l.is_attribute("inactive")));
    let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        media,
        vec![
            "a=rtpmap:18 G729/8000",
            "a=fmtp:18 annexb=no",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:13 CN/8000",
            "a=inactive",
            "a=rtcp:30001"
        ]
    );
    // explicit direction wins
    let mut rw = rewrite_for(false, 30000);
    rw.media[0].direction = Some(Direction::RecvOnly);
    assert_eq!(
        Sdp::parse(input).unwrap().rewrite(&rw).media[0].direction(),
        Some(Direction::RecvOnly)
    );
}

#[test]
fn non_rtp_media_keeps_its_format_lines_and_gets_no_rtcp() {
    let input = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=image 4000 udptl t38\na=T38FaxVersion:0\na=T38FaxMaxDatagram:316\na=sendrecv\n";
    let out = Sdp::parse(input)
        .unwrap()
        .rewrite(&rewrite_for(false, 30000));
    let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        media,
        vec!["a=T38FaxVersion:0", "a=T38FaxMaxDatagram:316", "a=sendrecv"]
    );
    assert_eq!(out.media[0].m.to_string(), "image 30000 udptl t38");
}

#[test]
fn origin_session_name_and_loop_marker() {
    let rw = SdpRewrite {
        origin: OriginRewrite {
            address: Some(engine()),
            username: Some("ngmedia".into()),
            session_id: Some("42".into()),
            bump_version: true,
        },
        session_name: Some("relayed".into()),
        connection: engine(),
        media: vec![MediaRewrite::new(engine(), 30030)],
        loop_protect: true,
        strip_extmap: false,
        session_connection: false,
    };
    let sdp = Sdp::parse(EX2_OFFER).unwrap();
    let out = sdp.rewrite(&rw);
    assert_eq!(
        out.session[1],
        Line::new(b'o', "ngmedia 42 2890844527 IN IP4 127.0.0.1")
    );
    assert_eq!(out.session_name(), Some("relayed"));
    let marker = loop_marker(engine());
    assert_eq!(marker.len(), 12);
    assert!(marker.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        out.session.last(),
        Some(&Line::attribute(format!("rtpengine:{marker}")))
    );
    assert!(out.has_loop_marker(&marker));
    assert!(!sdp.has_loop_marker(&marker));
    assert_ne!(marker, loop_marker(ip("127.0.0.2")));
    // the marker survives a second pass through a parse/write
    assert!(Sdp::parse(&out.write()).unwrap().has_loop_marker(&marker));
    let explicit = sdp.rewrite_with_marker(&rw, "0123456789ab");
    assert!(explicit.has_loop_marker("0123456789ab"));
    // version that cannot be bumped stays as it is
    assert_eq!(
        rewrite_origin(
            "- 1 18446744073709551615 IN IP4 192.0.2.1",
            &OriginRewrite {
                bump_version: true,
                ..OriginRewrite::default()
            }
        ),
        "- 1 18446744073709551615 IN IP4 192.0.2.1"
    );
}

#[test]
fn rewrite_output_round_trips() {
    let e = ip("203.0.113.1");
    let out = rewrite_text(
        MULTI,
        &two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002)),
    );
    assert_eq!(Sdp::parse(&out).unwrap().write(), out);
}

/// Cheap deterministic fuzzing: mutated bodies never panic, and whatever parses can be
/// rewritten into SDP that parses again.
#[test]
fn mutated_input_never_panics_and_rewrites_reparse() {
    const ALPHABET: &[u8] = b"am=:/ 0123456789\nIPc.-*xv";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let e = ip("203.0.113.1");
    let rw = two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002));
    let mut parsed = 0;
    for base in [MULTI, WEBRTC, EX2_OFFER] {
        for _ in 0..3000 {
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
            }
            let text = String::from_utf8(bytes).expect("ASCII mutations keep UTF-8");
            if let Ok(sdp) = Sdp::parse(&text) {
                parsed += 1;
                let out = sdp.rewrite(&rw).write();
                assert!(
                    Sdp::parse(&out).is_ok(),
                    "rewrite of {text:?} gave unparsable {out:?}"
                );
            }
        }
    }
    assert!(
        parsed > 1000,
        "mutations too destructive to test anything ({parsed})"
    );
}

// ---- MSRP: `m=message` passes untouched (rtpengine's GH 959 tests) ----

#[test]
fn msrp_section_keeps_its_port_and_gets_the_session_connection() {
    let input = sdp_fixture!("msrp-beside-audio");
    let mut rw = rewrite_for(false, 30000);
    // Whatever the call model asks for the section, it is passed on as received.
    rw.media.push(MediaRewrite::rejected(engine()));
    assert_eq!(
        rewrite_text(input, &rw),
        sdp_fixture!("msrp-beside-audio.rewritten")
    );
}

/// rtpengine's test "SDP version multi session": each session's lines are rewritten as the
/// first's (o=, c=), the media of all sessions are one list.
#[test]
fn several_sessions_each_rewritten() {
    let input = sdp_fixture!("two-sessions");
    let mut rw = rewrite_for(false, 30000);
    rw.media.push(MediaRewrite::new(engine(), 30002));
    rw.loop_protect = true;
    let out = Sdp::parse(input)
        .unwrap()
        .rewrite_with_marker(&rw, "m")
        .write();
    assert_eq!(out, sdp_fixture!("two-sessions.rewritten"));
}

#[test]
fn msrp_section_with_its_own_connection_is_copied_as_is() {
    let input = "v=0
o=- 1 1 IN IP4 1.2.3.4
s=-
t=0 0
m=audio 27998 RTP/AVP 0
c=IN IP4 1.2.3.4
m=message 28000 TCP/MSRP *
c=IN IP4 1.2.3.5
";
    let mut rw = rewrite_for(false, 30000);
    rw.media.push(MediaRewrite::new(engine(), 30002));
    let out = rewrite_text(input, &rw);
    assert!(
        out.ends_with("m=message 28000 TCP/MSRP *\r\nc=IN IP4 1.2.3.5\r\n"),
        "{out}"
    );
    // No session c= and none in the section: nothing to copy, nothing invented.
    let bare = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=message 28000 TCP/MSRP *\n";
    let out = rewrite_text(bare, &rewrite_for(false, 30000));
    assert!(out.ends_with("m=message 28000 TCP/MSRP *\r\n"), "{out}");
}

/// rtpengine 10.5 rewrites a session c= only when a section of that session has no c= of
/// its own (its test "missing codec in re-invite"), or with `replace: session-connection`.
#[test]
fn session_connection_only_when_used() {
    let input = "v=0
o=dev 5418 9648 IN IP4 8.8.8.60
s=SIP Call
c=IN IP4 8.8.8.60
t=0 0
m=audio 6004 RTP/AVP 0
c=IN IP4 8.8.8.60
";
    let mut rw = rewrite_for(false, 30000);
    let out = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
    assert_eq!(out.session[3], Line::new(b'c', "IN IP4 8.8.8.60"));
    assert_eq!(out.media_connection(0), Some(engine()));
    rw.session_connection = true;
    let out = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
    assert_eq!(out.session[3], Line::new(b'c', "IN IP4 127.0.0.1"));
    // A section without c= uses the session's: rewritten.
    let input = format!("{input}m=video 0 RTP/AVP 96\n");
    let out = Sdp::parse(&crlf(&input))
        .unwrap()
        .rewrite(&rewrite_for(false, 30000));
    assert_eq!(out.session[3], Line::new(b'c', "IN IP4 127.0.0.1"));
}

/// rtpengine's test "GH #1461": rejected sections without formats pass untouched, a space
/// after the protocol included.
#[test]
fn rejected_sections_without_formats() {
    let input = "v=0\r\no=- 1545997027 1 IN IP4 198.51.100.1\r\ns=tester\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
m=audio 2000 RTP/AVP 0\r\nc=IN IP4 198.51.100.1\r\nm=application 0 RTP/AVP 124\r\nm=application 0 * \r\n";
    let out = Sdp::parse(input)
        .unwrap()
        .rewrite(&rewrite_for(false, 30000))
        .write();
    assert_eq!(
        out,
        "v=0\r\no=- 1545997027 1 IN IP4 198.51.100.1\r\ns=tester\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:30001\r\n\
m=application 0 RTP/AVP 124\r\nm=application 0 * \r\n"
    );
}
