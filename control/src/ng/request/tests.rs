use std::net::IpAddr;

use ngmedia_engine::core::request::{DtlsMode, Family, IceMode};

use super::values::int_lenient;
use super::*;
use crate::bencode::decode;

fn parse(body: &[u8]) -> Result<NgRequest, NgError> {
    parse_request(&decode_bencode(body)?)
}

fn build(f: impl FnOnce(&mut crate::bencode::DictWriter<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    crate::bencode::Encoder::new(&mut out).dict(f);
    out
}

fn offer(body: &[u8]) -> OfferAnswer {
    match parse(body).unwrap().command {
        Command::Offer(oa) => *oa,
        other => panic!("not an offer: {other:?}"),
    }
}

#[test]
fn framing() {
    assert_eq!(
        split_datagram(b"5323_1 d7:command4:pinge"),
        Some((&b"5323_1"[..], &b"d7:command4:pinge"[..]))
    );
    assert_eq!(split_datagram(b"nocookiehere"), None);
    assert_eq!(split_datagram(b" d7:command4:pinge"), None);
    assert_eq!(split_datagram(&[0u8; 64]), None);
    assert_eq!(split_datagram(b"c "), Some((&b"c"[..], &b""[..])));
    // Only the first space splits; the body may contain more.
    assert_eq!(
        split_datagram(b"c d1:a1: e"),
        Some((&b"c"[..], &b"d1:a1: e"[..]))
    );
    assert_eq!(split_datagram(b"c de\r\n"), Some((&b"c"[..], &b"de"[..])));

    assert_eq!(detect_encoding(b"de"), Ok(Encoding::Bencode));
    assert_eq!(detect_encoding(b"{}"), Ok(Encoding::Json));
    assert_eq!(detect_encoding(b""), Err(NgError::InvalidFormat));
    assert_eq!(detect_encoding(b"i42e"), Err(NgError::InvalidFormat));
    assert_eq!(
        detect_encoding(b"\xff\xfe garbage"),
        Err(NgError::InvalidFormat)
    );
}

#[test]
fn error_texts_are_rtpengines() {
    assert_eq!(
        NgError::NoCommand.to_string(),
        "Dictionary contains no key \"command\""
    );
    assert_eq!(NgError::UnknownCommand.to_string(), "Unrecognized command");
    assert_eq!(
        NgError::BadBencode.to_string(),
        "Could not decode bencode dictionary"
    );
    assert_eq!(NgError::InvalidFormat.to_string(), "Invalid NG data format");

    assert_eq!(parse(b"d7:call-id1:xe").unwrap_err(), NgError::NoCommand);
    assert_eq!(parse(b"d7:commandi5ee").unwrap_err(), NgError::NoCommand);
    assert_eq!(parse(b"d4:fooo3:bare").unwrap_err(), NgError::NoCommand);
    assert_eq!(
        parse(b"d7:command3:fooe").unwrap_err(),
        NgError::UnknownCommand
    );
    assert_eq!(parse(b"d7:command4:pin").unwrap_err(), NgError::BadBencode);
    assert_eq!(
        parse(b"d7:command999999:pinge").unwrap_err(),
        NgError::BadBencode
    );
    assert_eq!(parse(b"d7:command4:ping").unwrap_err(), NgError::BadBencode);

    assert_eq!(parse(b"d7:command5:offere").unwrap_err(), NgError::NoSdp);
    assert_eq!(
        parse(b"d7:command5:offer3:sdp0:e").unwrap_err(),
        NgError::NoSdp
    );
    assert_eq!(
        parse(b"d7:command5:offer3:sdp3:v=0e").unwrap_err(),
        NgError::NoCallId
    );
    assert_eq!(
        parse(b"d7:command5:offer3:sdp3:v=07:call-id1:ce").unwrap_err(),
        NgError::NoFromTag
    );
    assert_eq!(
        parse(b"d7:command6:answer3:sdp3:v=07:call-id1:c8:from-tag1:fe").unwrap_err(),
        NgError::NoToTag
    );
    assert_eq!(
        parse(b"d7:command6:deletee").unwrap_err(),
        NgError::NoCallId
    );
    assert_eq!(parse(b"d7:command5:querye").unwrap_err(), NgError::NoCallId);
    assert_eq!(
        parse(b"d7:command10:block DTMF8:from-tag1:fe").unwrap_err(),
        NgError::NoCallId
    );
    assert_eq!(
        parse(b"d7:command9:subscribe7:call-id1:ce").unwrap_err(),
        NgError::UnknownCommand
    );
}

#[test]
fn media_control_commands() {
    use ngmedia_engine::core::media_control::BlockDtmf;
    use ngmedia_engine::core::request::{BlockDtmfOptions, ControlAction};
    let ctl = |body: &[u8]| match parse(body).unwrap().command {
        Command::MediaControl(kind, r) => (kind, r),
        other => panic!("not a media control command: {other:?}"),
    };
    let (kind, r) = ctl(b"d7:command10:block DTMF7:call-id1:c8:from-tag1:a13:DTMF-security7:silence9:frequency3:5006:volumei-20ee");
    assert_eq!(kind, CommandKind::BlockDtmf);
    assert_eq!(r.target.from_tag.as_deref(), Some("a"));
    assert_eq!(
        r.action,
        ControlAction::BlockDtmf(BlockDtmfOptions {
            mode: Some(BlockDtmf::Silence),
            frequency: Some(500),
            frequencies: vec![500],
            digit: None,
            volume: Some(20),
            trigger: None,
            delay_buffer: None,
            dtmf_delay: None,
        })
    );
    // `delay-buffer` and `DTMF-delay` (rtpengine's spellings, with spaces too).
    let (_, r) = ctl(b"d7:command10:block DTMF7:call-id1:c12:delay-bufferi100e10:DTMF delay2:60e");
    match r.action {
        ControlAction::BlockDtmf(o) => {
            assert_eq!((o.delay_buffer, o.dtmf_delay), (Some(100), Some(60)));
        }
        other => panic!("{other:?}"),
    }
    let (_, r) = ctl(b"d7:command12:unblock DTMF7:call-id1:c12:delay bufferi0ee");
    assert_eq!(
        r.action,
        ControlAction::UnblockDtmf {
            delay_buffer: Some(0)
        }
    );
    assert!(
        parse(b"d7:command12:unblock DTMF7:call-id1:c12:delay bufferi-5ee")
            .unwrap()
            .invalid
            .iter()
            .any(|i| i == "delay buffer=-5")
    );
    // The `block-DTMF` flag of an offer takes the same replacement keys.
    let r = parse(b"d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:a5:flagsl10:block-DTMFe13:DTMF-security4:DTMF4:code1:76:volumei5e18:output-destination3:rece")
        .unwrap();
    let Command::Offer(oa) = r.command else {
        panic!("not an offer")
    };
    assert_eq!(
        oa.block_dtmf,
        Some(BlockDtmfOptions {
            mode: Some(BlockDtmf::Dtmf),
            frequency: None,
            frequencies: Vec::new(),
            digit: Some(7),
            volume: Some(5),
            trigger: None,
            delay_buffer: None,
            dtmf_delay: None,
        })
    );
    assert_eq!(oa.output_destination.as_deref(), Some("rec"));
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    let (kind, r) = ctl(b"d7:command13:unblock_media7:call-id1:c3:all3:alle");
    assert_eq!(
        (kind, r.action, r.target.all),
        (CommandKind::UnblockMedia, ControlAction::UnblockMedia, true)
    );
    let (_, r) = ctl(b"d7:command13:silence media7:call-id1:c5:label6:caller7:address9:192.0.2.1e");
    assert_eq!(r.target.label.as_deref(), Some("caller"));
    assert_eq!(r.target.address.as_deref(), Some("192.0.2.1"));
    // to-tag selects no party for these commands (rtpengine): it names the receiving end
    // of one media flow.
    let (_, r) = ctl(b"d7:command15:unsilence media7:call-id1:c6:to-tag1:be");
    assert_eq!(
        (r.target.from_tag, r.target.to_tag.as_deref()),
        (None, Some("b"))
    );
    let (_, r) = ctl(b"d7:command11:block media7:call-id1:c3:all19:except-offer-answere");
    assert_eq!(
        (r.target.all, r.target.flows),
        (
            false,
            Some(ngmedia_engine::core::request::FlowSet::ExceptOfferAnswer)
        )
    );
    assert!(
        parse(b"d7:command11:block media7:call-id1:c5:flagsl11:directionalee")
            .unwrap()
            .unsupported
            .is_empty()
    );
}

#[test]
fn play_dtmf_keys() {
    let play = |body: &[u8]| match parse(body).unwrap().command {
        Command::PlayDtmf(p) => p,
        other => panic!("not play DTMF: {other:?}"),
    };
    let p = play(b"d7:command9:play DTMF7:call-id1:c8:from-tag1:a4:code1:#6:volumei-8e8:duration3:1205:pausei300ee");
    assert_eq!(p.code, Some(i64::from(b'#')));
    assert_eq!(
        (p.volume, p.duration_ms, p.pause_ms),
        (Some(-8), Some(120), Some(300))
    );
    assert_eq!(p.target.from_tag.as_deref(), Some("a"));
    // A multi-digit string is a number; `digit` is the same key.
    assert_eq!(
        play(b"d7:command9:play DTMF7:call-id1:c5:digit2:12e").code,
        Some(12)
    );
    assert_eq!(play(b"d7:command9:play DTMF7:call-id1:ce").code, None);
    // The `pause` flag of stop recording is still a flag.
    let req = parse(b"d7:command14:stop recording7:call-id1:c5:flagsl5:pauseee").unwrap();
    assert!(matches!(
        req.command,
        Command::Recording(_, ref r) if r.action == RecordingAction::Pause
    ));
}

#[test]
fn block_dtmf_and_inject_dtmf_flags_of_an_offer() {
    use ngmedia_engine::core::media_control::BlockDtmf;
    let req = parse(b"d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:a5:flagsl10:block-DTMF11:inject-DTMFe13:DTMF-security4:zeroe").unwrap();
    assert!(req.unsupported.is_empty(), "{:?}", req.unsupported);
    let Command::Offer(oa) = req.command else {
        panic!("offer")
    };
    assert!(oa.inject_dtmf);
    assert_eq!(oa.block_dtmf.unwrap().mode, Some(BlockDtmf::Zero));
}

#[test]
fn recording_commands() {
    let rec = |body: &[u8]| match parse(body).unwrap().command {
        Command::Recording(kind, r) => (kind, r),
        other => panic!("not a recording command: {other:?}"),
    };
    let (kind, r) = rec(b"d7:command15:start recording7:call-id2:c18:from-tag1:a8:metadata5:k=v;x18:output-destination4:neate");
    assert_eq!(kind, CommandKind::StartRecording);
    assert_eq!(r.action, RecordingAction::Start);
    assert_eq!(
        (r.call_id.as_str(), r.from_tag.as_deref()),
        ("c1", Some("a"))
    );
    assert_eq!(r.metadata.as_deref(), Some("k=v;x"));
    assert_eq!(r.output_destination.as_deref(), Some("neat"));
    let (_, r) = rec(b"d7:command14:stop recording7:call-id2:c1e");
    assert_eq!(r.action, RecordingAction::Stop);
    let (kind, r) = rec(b"d7:command14:stop recording7:call-id2:c15:flagsl5:pauseee");
    assert_eq!(
        (kind, r.action),
        (CommandKind::StopRecording, RecordingAction::Pause)
    );
    let (_, r) = rec(b"d7:command15:pause_recording7:call-id2:c1e");
    assert_eq!(r.action, RecordingAction::Pause);
    assert_eq!(
        parse(b"d7:command15:start recordinge").unwrap_err(),
        NgError::NoCallId
    );
}

#[test]
fn forwarding_commands() {
    let fwd = |body: &[u8]| match parse(body).unwrap().command {
        Command::Forwarding(f) => f,
        other => panic!("not a forwarding command: {other:?}"),
    };
    let f = fwd(b"d7:command16:start forwarding7:call-id2:c18:from-tag1:ae");
    assert_eq!(
        f,
        Forwarding {
            call_id: "c1".into(),
            from_tag: Some("a".into()),
            to_tag: None,
            start: true
        }
    );
    assert!(!fwd(b"d7:command15:stop forwarding7:call-id2:c1e").start);
    assert_eq!(
        parse(b"d7:command16:start forwardinge").unwrap_err(),
        NgError::NoCallId
    );
}

#[test]
fn command_spellings() {
    assert_eq!(
        CommandKind::from_name(b"block DTMF"),
        Some(CommandKind::BlockDtmf)
    );
    assert_eq!(
        CommandKind::from_name(b"block_DTMF"),
        Some(CommandKind::BlockDtmf)
    );
    assert_eq!(
        CommandKind::from_name(b"start-recording"),
        Some(CommandKind::StartRecording)
    );
    assert_eq!(CommandKind::from_name(b"OFFER"), Some(CommandKind::Offer));
    assert_eq!(CommandKind::from_name(b"frobnicate"), None);
    for (i, c) in CommandKind::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
    }
    assert!(matches!(
        parse(b"d7:command4:pinge").unwrap().command,
        Command::Ping
    ));
    assert!(matches!(
        parse(b"d7:command10:statisticse").unwrap().command,
        Command::Statistics
    ));
}

/// §5: the exact offer Kamailio 5.6.3 sent (SDP shortened).
#[test]
fn kamailio_offer() {
    let body = b"d8:supportsl10:load limite3:sdp4:v=0\n3:ICE6:remove5:label6:caller11:record-call3:yes9:directionl8:internale5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione5:codecd9:transcodel4:PCMAe4:maskl4:PCMUee18:transport-protocol7:RTP/AVP7:call-id19:kamcall-1@127.0.0.110:via-branch18:z9hG4bK-kam-INVITE13:received-froml3:IP49:127.0.0.1e8:from-tag8:fromtag17:command5:offere";
    let req = parse(body).unwrap();
    assert!(req.unknown_keys.is_empty(), "{:?}", req.unknown_keys);
    assert!(req.unknown_flags.is_empty(), "{:?}", req.unknown_flags);
    assert!(req.unsupported.is_empty(), "{:?}", req.unsupported);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    assert_eq!(oa.codec.transcode, vec!["PCMA"]);
    assert_eq!(oa.codec.mask, vec!["PCMU"]);
    assert_eq!(oa.call_id, "kamcall-1@127.0.0.1");
    assert_eq!(oa.from_tag, "fromtag1");
    assert_eq!(oa.to_tag, None);
    assert_eq!(oa.via_branch.as_deref(), Some("z9hG4bK-kam-INVITE"));
    assert_eq!(oa.sdp, "v=0\n");
    assert_eq!(oa.ice, IceMode::Remove);
    assert_eq!(oa.label.as_deref(), Some("caller"));
    assert_eq!(oa.record_call, Some(true));
    assert_eq!(oa.direction, vec!["internal".to_string()]);
    assert!(oa.flags.trust_address);
    assert!(oa.replace.origin && oa.replace.session_connection);
    assert_eq!(oa.transport_protocol.as_deref(), Some("RTP/AVP"));
    assert_eq!(oa.received_from, Some(IpAddr::from([127, 0, 0, 1])));
}

/// §7 B / captures/ex1.out: space-separated flag spelling and CRLF SDP.
#[test]
fn captured_offer_and_answer() {
    let sdp = ngmedia_test_support::sdp_fixture!("rtpengine-ex1-answer");
    assert_eq!(sdp.len(), 180);
    let body = format!("d7:command6:answer7:call-id12:call-plain-18:from-tag4:tagA6:to-tag4:tagB10:via-branch9:z9hG4bK-13:sdp180:{sdp}5:flagsl13:trust addresse7:replacel6:origine13:received-froml3:IP49:127.0.0.1e3:ICE6:removee");
    let req = parse(body.as_bytes()).unwrap();
    assert!(
        req.unknown_keys.is_empty() && req.unknown_flags.is_empty() && req.unsupported.is_empty()
    );
    let Command::Answer(oa) = req.command else {
        panic!()
    };
    assert_eq!(
        (oa.call_id.as_str(), oa.from_tag.as_str()),
        ("call-plain-1", "tagA")
    );
    assert_eq!(oa.to_tag.as_deref(), Some("tagB"));
    assert_eq!(oa.sdp, sdp);
    assert!(oa.flags.trust_address && oa.replace.origin);
}

#[test]
fn key_spellings_are_equivalent() {
    for key in ["call-id", "call id", "call_id", "Call-ID"] {
        let body = format!("d7:command5:query{}:{}1:xe", key.len(), key);
        let Command::Query(q) = parse(body.as_bytes()).unwrap().command else {
            panic!()
        };
        assert_eq!(q.call_id, "x", "{key}");
    }
    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call id", "c")
            .str("from tag", "f");
        d.str("to_tag", "t")
            .str("address family", "IP6")
            .str("media address", "2001:db8::1");
        d.int("delete delay", 0)
            .int("TOS", 184)
            .str("ptime", "30")
            .str("record call", "no");
        d.str("transport_protocol", "RTP/SAVP")
            .list("received from", |l| {
                l.str("IP6").str("::1");
            });
    });
    let oa = offer(&body);
    assert_eq!(oa.to_tag.as_deref(), Some("t"));
    assert_eq!(oa.address_family, Some(Family::Ip6));
    assert_eq!(
        oa.media_address,
        Some("2001:db8::1".parse::<IpAddr>().unwrap())
    );
    assert_eq!(oa.received_from, Some("::1".parse::<IpAddr>().unwrap()));
    assert_eq!(oa.delete_delay, Some(Duration::ZERO));
    assert_eq!(oa.tos, Some(184));
    assert_eq!(oa.ptime, Some(30));
    assert_eq!(oa.record_call, Some(false));
    assert_eq!(oa.transport_protocol.as_deref(), Some("RTP/SAVP"));
}

#[test]
fn values_and_invalid_values() {
    let req = parse(b"d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:f13:media address5:bogus3:TOSi300e13:received-froml3:IP41:xe5:ptime1:x12:delete delayi-1ee").unwrap();
    assert_eq!(
        req.invalid,
        vec![
            "media address=bogus",
            "TOS=300",
            "received-from=<list>",
            "ptime=x",
            "delete delay=-1"
        ]
    );
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    assert_eq!(
        (
            oa.media_address,
            oa.tos,
            oa.received_from,
            oa.ptime,
            oa.delete_delay
        ),
        (None, None, None, None, None)
    );

    let oa = offer(b"d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:f13:media address9:192.0.2.112:delete delay2:109:interface3:pub5:label1:L9:set-label1:S8:to-label1:T8:metadata3:a:be");
    assert_eq!(oa.media_address, Some(IpAddr::from([192, 0, 2, 1])));
    assert_eq!(oa.delete_delay, Some(Duration::from_secs(10)));
    assert_eq!(
        (oa.from_interface.as_deref(), oa.to_interface.as_deref()),
        (Some("pub"), Some("pub"))
    );
    assert_eq!(
        (
            oa.label.as_deref(),
            oa.set_label.as_deref(),
            oa.to_label.as_deref()
        ),
        (Some("L"), Some("S"), Some("T"))
    );
    assert_eq!(oa.metadata.as_deref(), Some("a:b"));
}

#[test]
fn flags_in_every_spelling() {
    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "c")
            .str("from-tag", "f");
        d.list("flags", |l| {
            for f in [
                "trust-address",
                "SIP-source-address",
                "port_latching",
                "no-port-latching",
                "strict source",
                "media-handover",
                "record-call",
                "loop-protect",
                "new-branch",
                "original-sendrecv",
                "full-rtcp-attribute",
                "no-rtcp-attribute",
                "generate-mid",
                "strip-extmap",
                "fatal",
                "fast",
                "all",
                "reset",
                "asymmetric",
                "symmetric",
            ] {
                l.str(f);
            }
        });
    });
    let req = parse(&body).unwrap();
    assert!(req.unknown_flags.is_empty(), "{:?}", req.unknown_flags);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    let f = &oa.flags;
    assert!(f.trust_address && f.sip_source_address && f.port_latching && f.no_port_latching);
    assert!(f.strict_source && f.media_handover && f.record_call && f.loop_protect && f.new_branch);
    assert!(f.original_sendrecv && f.full_rtcp_attribute && f.no_rtcp_attribute && f.generate_mid);
    assert!(f.strip_extmap && f.fatal && f.fast && f.all && f.reset && f.asymmetric);
    assert!(f.other.is_empty());
}

#[test]
fn prefix_flags_and_unknowns() {
    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "c")
            .str("from-tag", "f");
        d.list("flags", |l| {
            for f in [
                "replace-origin",
                "replace-SDP-version",
                "rtcp-mux-offer",
                "rtcp-mux-require",
                "codec-strip-PCMU",
                "SDES-no-AES_CM_128_HMAC_SHA1_80",
                "ICE=remove",
                "RTP/AVP",
                "external",
                "inject-DTMF",
                "frobnicate",
                "replace-what",
                "TOS=5",
            ] {
                l.str(f);
            }
        });
        d.list("ICE", |l| {
            l.str("force-relay")
                .str("trickle")
                .str("force")
                .str("weird");
        });
        d.int("foo", 1).str("DTLS-revers", "");
    });
    let req = parse(&body).unwrap();
    assert_eq!(
        req.unknown_flags,
        vec!["frobnicate", "replace-what", "ICE=weird"]
    );
    assert_eq!(req.unknown_keys, vec!["foo", "DTLS-revers"]);
    assert_eq!(req.unsupported, vec!["ICE=trickle"]);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    assert!(oa.replace.origin && oa.replace.sdp_version);
    assert!(oa.rtcp_mux.offer && oa.rtcp_mux.require && !oa.rtcp_mux.demux);
    // The `ICE` list comes after the `ICE=remove` flag: force wins, as the last one given.
    assert_eq!(oa.ice, IceMode::Force);
    assert_eq!(oa.transport_protocol.as_deref(), Some("RTP/AVP"));
    assert_eq!(oa.direction, vec!["external"]);
    assert_eq!(oa.tos, Some(5));
    assert_eq!(oa.codec.strip, vec!["PCMU"]);
    assert_eq!(oa.flags.other, vec!["frobnicate", "ICE=trickle"]);
    assert!(oa.inject_dtmf);
    assert_eq!(oa.sdes.no, vec!["AES_CM_128_HMAC_SHA1_80"]);
}

#[test]
fn srtp_keys_and_flags() {
    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "c")
            .str("from-tag", "f")
            .str("DTLS", "passive")
            .str("DTLS-reverse", "passive")
            .str("DTLS-fingerprint", "sha-256");
        d.list("SDES", |l| {
            l.str("only-AES_CM_128_HMAC_SHA1_80")
                .str("lifetime")
                .str("unencrypted_srtp")
                .str("bogus");
        });
        d.list("OSRTP", |l| {
            l.str("accept-RFC");
        });
        d.list("flags", |l| {
            l.str("SDES-order:AEAD_AES_128_GCM;AES_CM_128_HMAC_SHA1_32")
                .str("SDES-offerer_pref:AES_CM_128_HMAC_SHA1_32")
                .str("SDES-nonew")
                .str("pad crypto")
                .str("SDES-off")
                .str("OSRTP-offer");
        });
    });
    let req = parse(&body).unwrap();
    assert_eq!(req.unknown_flags, vec!["SDES-bogus"]);
    assert_eq!(req.unsupported, vec!["SDES-unencrypted_srtp"]);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    assert_eq!(oa.dtls, DtlsMode::Passive);
    assert!(oa.dtls_reverse_passive);
    assert_eq!(oa.dtls_fingerprint.as_deref(), Some("sha-256"));
    assert_eq!(oa.sdes.only, vec!["AES_CM_128_HMAC_SHA1_80"]);
    assert_eq!(
        oa.sdes.order,
        vec!["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_32"]
    );
    assert_eq!(oa.sdes.offerer_pref, vec!["AES_CM_128_HMAC_SHA1_32"]);
    assert!(oa.sdes.nonew && oa.sdes.pad && oa.sdes.lifetime && oa.sdes_off);
    assert!(oa.osrtp.accept && oa.osrtp.offer);

    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "c")
            .str("from-tag", "f");
        d.list("flags", |l| {
            l.str("WebRTC");
        });
        d.str("DTLS", "sideways");
        d.str("DTLS-reverse", "sideways");
    });
    let req = parse(&body).unwrap();
    assert_eq!(req.invalid, vec!["DTLS=sideways", "DTLS-reverse=sideways"]);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    assert_eq!(oa.transport_protocol.as_deref(), Some("UDP/TLS/RTP/SAVPF"));
    assert_eq!(oa.ice, IceMode::Force);
    assert!(oa.rtcp_mux.offer && oa.rtcp_mux.require && oa.sdes_off);
    assert!(oa.flags.no_rtcp_attribute && oa.flags.generate_mid);
}

/// Kamailio's codec flags and the `codec` dictionary land in the same typed options.
#[test]
fn codec_flags_and_dictionary() {
    let body = build(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "c")
            .str("from-tag", "f")
            .str("ptime-reverse", "30")
            .int("ptime", 20);
        d.list("flags", |l| {
            for f in [
                "codec-mask-PCMU",
                "codec-transcode-PCMA",
                "transcode-G729",
                "codec-strip-all",
                "codec-offer-opus/48000/2",
                "codec-except-telephone-event",
                "codec-accept-PCMA",
                "codec-consume-G722",
                "codec-set-opus/48000/2/32000",
                "codec-ignore-iLBC",
                "codec-strip=GSM",
                "always-transcode",
                "single codec",
                "detect-DTMF",
                "codec-frobnicate-X",
            ] {
                l.str(f);
            }
        });
        d.dict("codec", |c| {
            c.list("transcode", |l| {
                l.str("opus");
            });
            c.str("strip", "speex");
            c.list("bogus", |_| {});
        });
    });
    let req = parse(&body).unwrap();
    assert!(req.unsupported.is_empty(), "{:?}", req.unsupported);
    assert_eq!(req.unknown_flags, vec!["codec-frobnicate-X"]);
    assert_eq!(req.unknown_keys, vec!["codec.bogus"]);
    let Command::Offer(oa) = req.command else {
        panic!()
    };
    let c = &oa.codec;
    assert_eq!(c.mask, vec!["PCMU"]);
    assert_eq!(c.transcode, vec!["PCMA", "G729", "opus"]);
    assert_eq!(c.strip, vec!["all", "GSM", "speex"]);
    assert_eq!(c.offer, vec!["opus/48000/2"]);
    assert_eq!(c.except, vec!["telephone-event"]);
    assert_eq!(
        (c.accept.as_slice(), c.consume.as_slice()),
        (&["PCMA".to_string()][..], &["G722".to_string()][..])
    );
    assert_eq!(c.set, vec!["opus/48000/2/32000"]);
    assert_eq!(c.ignore, vec!["iLBC"]);
    assert!(c.always_transcode && c.single_codec && c.detect_dtmf);
    assert_eq!((oa.ptime, oa.ptime_reverse), (Some(20), Some(30)));
}

/// captures/ex3.out: delete requests.
#[test]
fn delete_requests() {
    let Command::Delete(d) =
        parse(b"d7:command6:delete7:call-id12:no-such-call8:from-tag1:x5:flagsl5:fatalee")
            .unwrap()
            .command
    else {
        panic!()
    };
    assert_eq!(
        (d.call_id.as_str(), d.from_tag.as_deref()),
        ("no-such-call", Some("x"))
    );
    assert!(d.flags.fatal && !d.flags.fast);
    assert_eq!(d.delete_delay, None);

    let Command::Delete(d) = parse(b"d7:command6:delete7:call-id12:call-plain-18:from-tag4:tagA5:flagsl4:faste12:delete delayi0ee").unwrap().command else { panic!() };
    assert!(d.flags.fast);
    assert_eq!(d.delete_delay, Some(Duration::ZERO));

    // Kamailio's rtpengine_delete(): call-id + from-tag, no to-tag.
    let Command::Delete(d) = parse(b"d8:supportsl10:load limite7:call-id19:kamcall-1@127.0.0.113:received-froml3:IP49:127.0.0.1e8:from-tag8:fromtag17:command6:deletee").unwrap().command else { panic!() };
    assert_eq!((d.to_tag, d.via_branch), (None, None));
    // Numeric string for delete delay.
    let Command::Delete(d) = parse(b"d7:command6:delete7:call-id1:c12:delete-delay2:15e")
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!(d.delete_delay, Some(Duration::from_secs(15)));
}

#[test]
fn list_limit() {
    let Command::List(l) = parse(b"d7:command4:liste").unwrap().command else {
        panic!()
    };
    assert_eq!(l.limit, 32);
    let Command::List(l) = parse(b"d7:command4:list5:limiti5ee").unwrap().command else {
        panic!()
    };
    assert_eq!(l.limit, 5);
    let Command::List(l) = parse(b"d7:command4:list5:limit3:100e").unwrap().command else {
        panic!()
    };
    assert_eq!(l.limit, 100);
}

#[test]
fn json_bodies() {
    let json = parse_json(
        br#"{"command":"query","call-id":"abc","from-tag":7,"x":null,"flags":["fatal",true]}"#,
    )
    .unwrap();
    let v = json_to_value(&json).unwrap();
    let Command::Query(q) = parse_request(&v).unwrap().command else {
        panic!()
    };
    assert_eq!(
        (q.call_id.as_str(), q.from_tag.as_deref()),
        ("abc", Some("7"))
    );
    assert_eq!(parse_json(b"{nope").unwrap_err(), NgError::BadJson);
    assert_eq!(parse_json(b"[1]").unwrap_err(), NgError::BadJson);
    let float = parse_json(br#"{"command":"ping","x":1.5}"#).unwrap();
    assert_eq!(json_to_value(&float).unwrap_err(), NgError::BadJson);
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
    let deep = parse_json(deep.as_bytes()).unwrap();
    assert_eq!(json_to_value(&deep).unwrap_err(), NgError::BadJson);
}

#[test]
fn normalizer_keeps_length() {
    assert_eq!(
        normalize(b"SIP-source_Address"),
        b"sip source address".to_vec()
    );
    assert_eq!(normalize(b"\xff-A"), b"\xff a".to_vec());
    let v = decode(b"d3:abci1ee").unwrap();
    assert_eq!(int_lenient(v.get(b"abc").unwrap()), Some(1));
    assert_eq!(int_lenient(&Value::Bytes(b" 42 ")), Some(42));
    assert_eq!(int_lenient(&Value::Bytes(b"4x")), None);
}

#[test]
fn ice_lite_key_names_the_side() {
    use ngmedia_engine::core::request::IceLite;
    for (value, want) in [
        ("forward", Some(IceLite::Forward)),
        ("backward", Some(IceLite::Backward)),
        ("both", Some(IceLite::Both)),
        ("off", Some(IceLite::Off)),
        ("sideways", None),
    ] {
        let body = build(|d| {
            d.str("command", "offer")
                .str("sdp", "v=0")
                .str("call-id", "c")
                .str("from-tag", "f")
                .str("ICE-lite", value);
        });
        let req = parse(&body).unwrap();
        let Command::Offer(oa) = req.command else {
            panic!()
        };
        assert_eq!(oa.ice_lite, want, "{value}");
    }
}

#[test]
fn block_dtmf_trigger_and_frequency_list() {
    use ngmedia_engine::core::dtmf_security::DtmfTrigger;
    use ngmedia_engine::core::media_control::BlockDtmf;
    use ngmedia_engine::core::request::ControlAction;
    let r = parse(b"d7:command10:block DTMF7:call-id1:c7:trigger2:##11:trigger-end1:#16:trigger-end-timei500e18:trigger-end-digits1:421:DTMF-security-trigger4:tone25:DTMF-security-trigger-end4:zero11:frequencies7:400,800e").unwrap();
    assert!(r.ignored_summary().is_none(), "{:?}", r.ignored_summary());
    let Command::MediaControl(_, m) = r.command else {
        panic!("not media control")
    };
    let ControlAction::BlockDtmf(o) = m.action else {
        panic!("not block DTMF")
    };
    assert_eq!(o.frequencies, vec![400, 800]);
    assert_eq!(
        o.trigger,
        Some(DtmfTrigger {
            trigger: "##".into(),
            end: "#".into(),
            mode: Some(BlockDtmf::Tone),
            end_mode: Some(BlockDtmf::Zero),
            end_ms: 500,
            end_digits: 4,
        })
    );
    let r = parse(b"d7:command10:block DTMF7:call-id1:c11:frequenciesli300ei500eee").unwrap();
    let Command::MediaControl(_, m) = r.command else {
        panic!()
    };
    let ControlAction::BlockDtmf(o) = m.action else {
        panic!()
    };
    assert_eq!((o.frequency, o.frequencies), (Some(300), vec![300, 500]));
}

#[test]
fn endpoint_learning_key_and_flags() {
    use ngmedia_engine::core::latch::EndpointLearning;
    let with = |f: &dyn Fn(&mut crate::bencode::DictWriter<'_>)| {
        let body = build(|d| {
            d.str("command", "offer")
                .str("sdp", "v=0")
                .str("call-id", "c")
                .str("from-tag", "f");
            f(d);
        });
        parse(&body).unwrap()
    };
    let learning = |req: &NgRequest| match &req.command {
        Command::Offer(oa) => oa.flags.endpoint_learning,
        other => panic!("not an offer: {other:?}"),
    };
    let req = with(&|d| {
        d.str("endpoint-learning", "immediate");
    });
    assert_eq!(learning(&req), Some(EndpointLearning::Immediate));
    for (flag, want) in [
        ("endpoint-learning-off", EndpointLearning::Off),
        ("endpoint-learning-no-learning", EndpointLearning::Off),
        ("endpoint_learning_heuristic", EndpointLearning::Heuristic),
        ("endpoint-learning=delayed", EndpointLearning::Delayed),
    ] {
        let req = with(&|d| {
            d.list("flags", |l| {
                l.str(flag);
            });
        });
        assert_eq!(learning(&req), Some(want), "{flag}");
        assert!(req.unknown_flags.is_empty() && req.invalid.is_empty());
    }
    let req = with(&|d| {
        d.str("endpoint-learning", "sometimes");
    });
    assert_eq!(learning(&req), None);
    assert_eq!(req.invalid, vec!["endpoint-learning=sometimes"]);
    let req = with(&|d| {
        d.list("flags", |l| {
            l.str("endpoint-learning-sometimes");
        });
    });
    assert_eq!(req.unknown_flags, vec!["endpoint-learning-sometimes"]);
}
