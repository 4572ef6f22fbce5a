use super::*;

fn section(formats: &[&str], attrs: &[&str]) -> MediaSection {
    MediaSection {
        m: MediaLine {
            kind: "audio".into(),
            port: 4000,
            port_count: None,
            proto: "RTP/AVP".into(),
            formats: formats.iter().map(|f| f.to_string()).collect(),
            trailing_space: false,
        },
        lines: attrs.iter().map(|a| Line::attribute(*a)).collect(),
    }
}

#[test]
fn codecs_merge_rtpmap_fmtp_and_static_table() {
    let s = section(
        &["0", "18", "96", "101", "99", "webrtc-datachannel"],
        &[
            "rtpmap:96 opus/48000/2",
            "rtpmap:101 telephone-event/8000",
            "fmtp:101 0-16",
            "fmtp:18 annexb=no",
        ],
    );
    let c = s.codecs();
    assert_eq!(c.len(), 5);
    assert_eq!(
        c[0],
        Codec {
            pt: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: None,
            fmtp: None
        }
    );
    assert_eq!(c[1].name, "G729");
    assert_eq!(c[1].fmtp.as_deref(), Some("annexb=no"));
    assert_eq!(
        c[2],
        Codec {
            pt: 96,
            name: "opus".into(),
            clock_rate: 48000,
            channels: Some(2),
            fmtp: None
        }
    );
    assert_eq!(c[3].fmtp.as_deref(), Some("0-16"));
    // dynamic PT without rtpmap: kept, unnamed
    assert_eq!(c[4].pt, 99);
    assert_eq!(c[4].name, "");
    assert_eq!(c[4].rtpmap_value(), None);
}

#[test]
fn static_table_matches_rfc3551() {
    let name = |pt| Codec::from_static(pt).map(|c| format!("{}/{}", c.name, c.clock_rate));
    assert_eq!(name(0).as_deref(), Some("PCMU/8000"));
    assert_eq!(name(3).as_deref(), Some("GSM/8000"));
    assert_eq!(name(4).as_deref(), Some("G723/8000"));
    assert_eq!(name(8).as_deref(), Some("PCMA/8000"));
    assert_eq!(name(9).as_deref(), Some("G722/8000"));
    assert_eq!(name(13).as_deref(), Some("CN/8000"));
    assert_eq!(name(18).as_deref(), Some("G729/8000"));
    assert_eq!(name(34).as_deref(), Some("H263/90000"));
    assert_eq!(name(2), None);
    assert_eq!(name(96), None);
}

#[test]
fn attribute_lookup() {
    let s = section(
        &["0"],
        &[
            "sendonly",
            "rtcp:4001 IN IP4 192.0.2.1",
            "ptime:30",
            "rtcp-mux",
            "x-foo:a:b",
        ],
    );
    assert_eq!(s.attribute("sendonly"), Some(""));
    assert_eq!(s.attribute("x-foo"), Some("a:b"));
    assert_eq!(s.direction(), Some(Direction::SendOnly));
    assert_eq!(s.rtcp(), Some((4001, Some("192.0.2.1".parse().unwrap()))));
    assert_eq!(s.ptime(), Some(30));
    assert!(s.rtcp_mux());
    assert!(!s.has_ice());
    assert_eq!(section(&["0"], &["rtcp:0"]).rtcp(), None);
    assert_eq!(section(&["0"], &["rtcp:5000"]).rtcp(), Some((5000, None)));
    assert!(section(&["0"], &["candidate:1 1 UDP 1 192.0.2.1 4000 typ host"]).has_ice());
}

#[test]
fn set_codecs_rewrites_formats_and_codec_lines() {
    let mut s = section(
        &["0", "8", "101"],
        &[
            "rtpmap:0 PCMU/8000",
            "rtpmap:8 PCMA/8000",
            "rtcp-fb:0 nack",
            "rtcp-fb:* ccm",
            "x-keep",
            "rtpmap:101 telephone-event/8000",
        ],
    );
    let codecs: Vec<Codec> = s.codecs().into_iter().filter(|c| c.pt != 0).collect();
    s.set_codecs(&codecs);
    assert_eq!(s.m.formats, vec!["8", "101"]);
    let values: Vec<&str> = s.lines.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(
        values,
        vec![
            "rtpmap:8 PCMA/8000",
            "rtpmap:101 telephone-event/8000",
            "rtcp-fb:* ccm",
            "x-keep"
        ]
    );
}

#[test]
fn set_attributes_and_ptime() {
    let mut s = section(&["0"], &["a1", "ptime:20", "a2"]);
    s.set_ptime(Some(30));
    assert_eq!(s.lines[1].value, "ptime:30");
    s.set_ptime(None);
    assert_eq!(s.lines.len(), 2);
    s.set_attributes(
        "crypto",
        &[
            "1 AES_CM_128_HMAC_SHA1_80 inline:x",
            "2 AES_CM_128_HMAC_SHA1_32 inline:y",
        ],
    );
    assert_eq!(
        s.lines[2].value,
        "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x"
    );
    assert_eq!(
        s.lines[3].value,
        "crypto:2 AES_CM_128_HMAC_SHA1_32 inline:y"
    );
    s.remove_attributes("crypto");
    assert_eq!(s.lines.len(), 2);
}

#[test]
fn connection_parsing() {
    assert_eq!(
        parse_connection("IN IP4 192.0.2.1"),
        Some("192.0.2.1".parse().unwrap())
    );
    assert_eq!(
        parse_connection("IN IP6 2001:db8::1"),
        Some("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        parse_connection("IN IP4 224.2.1.1/127"),
        Some("224.2.1.1".parse().unwrap())
    );
    assert_eq!(parse_connection("IN IP6 192.0.2.1"), None);
    assert_eq!(parse_connection("IN IP4 host.example"), None);
    assert_eq!(parse_connection("ATM IP4 192.0.2.1"), None);
}

#[test]
fn direction_helpers() {
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    assert_eq!(Direction::Inactive.as_str(), "inactive");
    assert!(Direction::RecvOnly.receives() && !Direction::RecvOnly.sends());
}
