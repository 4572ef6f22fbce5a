//! SDES-SRTP bridging: the SDP each side gets and the keys the plan hands to the workers.

use super::*;
use crate::core::plan::SrtpKeys;
use crate::core::request::{DtlsMode, IceMode};
use crate::core::sdes::{CryptoAttr, WriteOptions};
use crate::core::srtp::SrtpSuite;

/// Key of B's answer line (30 bytes, "1234567890123456" + "78901234567890").
const B_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
/// Another 30-byte key ("abcdefghijklmnopqrstuvwxyzABCD").
const A_KEY: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXpBQkNE";
const A_KEY2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn sdp(addr: &str, port: u16, proto: &str, extra: &[&str]) -> String {
    let mut s = format!(
        "v=0\no=x 1 1 IN IP4 {addr}\ns=-\nc=IN IP4 {addr}\nt=0 0\nm=audio {port} {proto} 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n"
    );
    for line in extra {
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn crypto_lines(sdp: &str) -> Vec<CryptoAttr> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| CryptoAttr::parse(v).unwrap())
        .collect()
}

fn m_line(sdp: &str) -> &str {
    sdp.lines().find(|l| l.starts_with("m=")).unwrap()
}

/// (srtp_in, srtp_out) of the RTP stream on local port `port`.
fn keys_at(
    calls: &Calls,
    media: &FakeMedia,
    call: &str,
    port: u16,
) -> (Option<SrtpKeys>, Option<SrtpKeys>) {
    let c = &calls.calls[call];
    let key = c
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .find(|p| p.rtp.addr.port() == port)
        .unwrap()
        .rtp
        .key;
    let plan = media.plan(c.key);
    let s = plan.streams.iter().find(|s| s.port == key).unwrap();
    (s.srtp_in.clone(), s.srtp_out.clone())
}

fn keys(attr: &CryptoAttr) -> SrtpKeys {
    SrtpKeys {
        suite: attr.suite,
        key_salt: attr.key_salt.clone(),
        mki: attr.mki.map(|m| m.bytes()).unwrap_or_default(),
    }
}

#[test]
fn plain_offer_to_savp_gets_every_suite_and_answer_selects_keys() {
    // A-facing 30000, B-facing 30002.
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("c1", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
    req.transport_protocol = Some("RTP/SAVP".into());
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/SAVP 0");
    let offered = crypto_lines(&offer);
    let shape: Vec<(u32, SrtpSuite)> = offered.iter().map(|a| (a.tag, a.suite)).collect();
    let expected: Vec<(u32, SrtpSuite)> = (1..).zip(SrtpSuite::ALL).collect();
    assert_eq!(shape, expected);
    // Unpadded keys, no lifetime; crypto right after a=rtcp; then DTLS as the alternative
    // (ng-protocol.md example C): setup:actpass and our sha-256 fingerprint.
    assert!(offer.contains("a=rtcp:30003\r\na=crypto:1 AEAD_AES_256_GCM inline:"));
    assert!(!offer
        .lines()
        .any(|l| l.starts_with("a=crypto") && l.ends_with('=')));
    let fp = calls.dtls_identity().unwrap().fingerprint().to_value();
    let tail: Vec<&str> = offer
        .lines()
        .skip_while(|l| !l.starts_with("a=crypto:12 "))
        .collect();
    assert_eq!(
        tail[1..],
        ["a=setup:actpass", &format!("a=fingerprint:{fp}")]
    );
    // Fresh keys per line.
    for (i, a) in offered.iter().enumerate() {
        assert!(offered[i + 1..].iter().all(|b| b.key_salt != a.key_salt));
    }
    // Nothing to decrypt or encrypt before the answer.
    assert_eq!(keys_at(&calls, &media, "c1", 30002), (None, None));

    let answer_line = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{B_KEY}");
    let ans = calls
        .answer(
            &answer_req(
                "c1",
                "tagA",
                "tagB",
                &sdp("127.0.0.3", 40010, "RTP/SAVP", &[&answer_line]),
            ),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(m_line(&ans), "m=audio 30000 RTP/AVP 0");
    assert!(!ans.contains("a=crypto"));
    let theirs = CryptoAttr::parse(answer_line.strip_prefix("a=crypto:").unwrap()).unwrap();
    assert_eq!(
        keys_at(&calls, &media, "c1", 30002),
        (Some(keys(&theirs)), Some(keys(&offered[6])))
    );
    assert_eq!(keys_at(&calls, &media, "c1", 30000), (None, None));

    // An unchanged re-offer repeats the accepted line with its key first, then fresh keys
    // for the other suites tagged after it (rtpengine prunes its offer to the accepted
    // line: auto-daemon-tests "RTP to SRTP switch (and SRTP re-invite)").
    let again = crypto_lines(&calls.offer(&req, clock.now()).unwrap().sdp);
    assert_eq!(again[0], offered[6]);
    assert_eq!(
        again.iter().map(|a| a.tag).collect::<Vec<_>>(),
        (7..19).collect::<Vec<_>>()
    );
    assert!(again[1..].iter().all(|a| a.suite != offered[6].suite));
    assert!(again[1..].iter().all(|a| !offered.contains(a)));
}

#[test]
fn savp_offer_to_plain_side_is_answered_with_one_line_of_our_own() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let a_lines = [
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{A_KEY}|2^31"),
        format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{A_KEY}"),
    ];
    let a_refs: Vec<&str> = a_lines.iter().map(String::as_str).collect();
    let mut req = offer_req(
        "c2",
        "tagA",
        &sdp(
            "127.0.0.2",
            40000,
            "RTP/SAVP",
            &[
                &a_refs[..],
                &["a=fingerprint:sha-256 AA:BB", "a=setup:actpass"],
            ]
            .concat(),
        ),
    );
    req.transport_protocol = Some("RTP/AVP".into());
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/AVP 0");
    assert!(
        !offer.contains("a=crypto")
            && !offer.contains("a=setup")
            && !offer.contains("a=fingerprint")
    );

    let ans_req = answer_req(
        "c2",
        "tagA",
        "tagB",
        &sdp("127.0.0.3", 40010, "RTP/AVP", &[]),
    );
    let ans = calls.answer(&ans_req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&ans), "m=audio 30000 RTP/SAVP 0");
    let ours = crypto_lines(&ans);
    assert_eq!(ours.len(), 1);
    assert_eq!(
        (ours[0].tag, ours[0].suite),
        (1, SrtpSuite::AesCm128HmacSha1_32)
    );
    assert_ne!(
        ours[0].key_salt,
        CryptoAttr::parse(&a_lines[0][9..]).unwrap().key_salt
    );
    assert!(ans.contains(&format!(
        "a=crypto:{}\r\n",
        ours[0].write(WriteOptions::default())
    )));
    let theirs = CryptoAttr::parse(&a_lines[0][9..]).unwrap();
    assert_eq!(
        keys_at(&calls, &media, "c2", 30000),
        (Some(keys(&theirs)), Some(keys(&ours[0])))
    );
    assert_eq!(keys_at(&calls, &media, "c2", 30002), (None, None));

    // Unchanged re-INVITE: our key stays.
    calls.offer(&req, clock.now()).unwrap();
    let ans2 = calls.answer(&ans_req, clock.now()).unwrap().sdp;
    assert_eq!(crypto_lines(&ans2), ours);

    // The caller re-keys: inbound follows, our key stays (same tag and suite).
    let rekeyed = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{A_KEY2}");
    let mut req2 = offer_req(
        "c2",
        "tagA",
        &sdp("127.0.0.2", 40000, "RTP/SAVP", &[&rekeyed]),
    );
    req2.transport_protocol = Some("RTP/AVP".into());
    calls.offer(&req2, clock.now()).unwrap();
    let ans3 = calls.answer(&ans_req, clock.now()).unwrap().sdp;
    assert_eq!(crypto_lines(&ans3), ours);
    let new_theirs = CryptoAttr::parse(&rekeyed[9..]).unwrap();
    assert_eq!(
        keys_at(&calls, &media, "c2", 30000),
        (Some(keys(&new_theirs)), Some(keys(&ours[0])))
    );
}

#[test]
fn savp_on_both_sides_passes_each_partys_key_on() {
    // rtpengine's `__generate_crypto`: the callee is offered the caller's own line (and
    // key), the caller is answered with the callee's key under its own tag; each side is
    // still decrypted and encrypted with the keys it negotiated.
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let a_line = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{A_KEY}");
    let req = offer_req(
        "c3",
        "tagA",
        &sdp("127.0.0.2", 40000, "RTP/SAVP", &[&a_line]),
    );
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/SAVP 0");
    let offered = crypto_lines(&offer);
    // The offerer's line first, key and all, then the rest with fresh keys.
    assert_eq!(offered[0], CryptoAttr::parse(&a_line[9..]).unwrap());
    assert_eq!(
        offered.iter().map(|a| a.tag).collect::<Vec<_>>(),
        (3..15).collect::<Vec<_>>()
    );
    assert_eq!(offered.len(), SrtpSuite::ALL.len());

    let b_line = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{B_KEY}");
    let ans = calls
        .answer(
            &answer_req(
                "c3",
                "tagA",
                "tagB",
                &sdp("127.0.0.3", 40010, "RTP/SAVP", &[&b_line]),
            ),
            clock.now(),
        )
        .unwrap()
        .sdp;
    let ours_a = crypto_lines(&ans);
    assert_eq!(ours_a, [CryptoAttr::parse(&b_line[9..]).unwrap()]);
    assert_eq!(m_line(&ans), "m=audio 30000 RTP/SAVP 0");
    // Each party now has the key the other sends with: SRTP passes through untouched, as
    // in rtpengine (no `must_recrypt`).
    assert!(calls.calls["c3"].srtp_passthrough(0, 0));
    for port in [30000, 30002] {
        assert_eq!(keys_at(&calls, &media, "c3", port), (None, None));
    }
    // Recording needs the plain payload: each side is decrypted and encrypted again.
    let call = calls.calls.get_mut("c3").unwrap();
    call.record = true;
    assert!(!call.srtp_passthrough(0, 0));
    let plan = call.plan();
    media.apply(plan);
    let (a_in, a_out) = keys_at(&calls, &media, "c3", 30000);
    let (b_in, b_out) = keys_at(&calls, &media, "c3", 30002);
    assert_eq!(
        a_in.unwrap().key_salt,
        CryptoAttr::parse(&a_line[9..]).unwrap().key_salt
    );
    assert_eq!(a_out.unwrap().key_salt, ours_a[0].key_salt);
    assert_eq!(
        b_in.unwrap().key_salt,
        CryptoAttr::parse(&b_line[9..]).unwrap().key_salt
    );
    assert_eq!(b_out.unwrap().key_salt, offered[0].key_salt);
}

#[test]
fn sdes_flags_shape_the_offer() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004, 30006, 30008, 30010]);
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("c4", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
    req.transport_protocol = Some("RTP/SAVP".into());
    req.sdes.only = vec!["AES_CM_128_HMAC_SHA1_80".into(), "AEAD_AES_128_GCM".into()];
    req.sdes.order = vec!["AES_CM_128_HMAC_SHA1_80".into()];
    req.sdes.pad = true;
    req.sdes.lifetime = true;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    let lines: Vec<&str> = offer
        .lines()
        .filter(|l| l.starts_with("a=crypto"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("a=crypto:1 AEAD_AES_128_GCM inline:"));
    // 28-byte GCM key+salt: padded base64 ends in '=' and the lifetime follows.
    assert!(lines[1].ends_with("=|2^31"), "{}", lines[1]);
    assert!(lines[0].ends_with("|2^31"));

    let mut off = offer_req("c5", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
    off.transport_protocol = Some("RTP/SAVP".into());
    off.sdes_off = true;
    let offer = calls.offer(&off, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30006 RTP/SAVP 0");
    assert!(!offer.contains("a=crypto"));
}

#[test]
fn osrtp_offer_and_accept() {
    let media = FakeMedia::scripted(&[30000, 30002, 30004, 30006, 30008, 30010]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    // OSRTP offer towards B: RTP/AVP with our crypto lines; B's answer with a=crypto keys it.
    let mut req = offer_req("o1", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
    req.osrtp.offer = true;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/AVP 0");
    let offered = crypto_lines(&offer);
    assert_eq!(offered.len(), SrtpSuite::ALL.len());
    let b_line = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{B_KEY}");
    calls
        .answer(
            &answer_req(
                "o1",
                "tagA",
                "tagB",
                &sdp("127.0.0.3", 40010, "RTP/AVP", &[&b_line]),
            ),
            clock.now(),
        )
        .unwrap();
    let (b_in, b_out) = keys_at(&calls, &media, "o1", 30002);
    assert_eq!(
        b_in.unwrap().key_salt,
        CryptoAttr::parse(&b_line[9..]).unwrap().key_salt
    );
    assert_eq!(b_out.unwrap().key_salt, offered[6].key_salt);

    // An RTP/AVP offer with a=crypto is OSRTP (RFC 8643) whatever the flags, as rtpengine
    // reads it: its line goes on first with its key, fresh keys follow. A plain answer
    // makes the answer to the offerer plain, unless the answer says `OSRTP: accept`.
    let a_line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{A_KEY}");
    for (call_id, accept) in [("o2", false), ("o3", true)] {
        let req = offer_req(
            call_id,
            "tagA",
            &sdp("127.0.0.2", 40000, "RTP/AVP", &[&a_line]),
        );
        let offer = calls.offer(&req, clock.now()).unwrap().sdp;
        assert!(offer.starts_with("v=0"));
        assert!(m_line(&offer).ends_with(" RTP/AVP 0"), "{offer}");
        let offered = crypto_lines(&offer);
        assert_eq!(offered.len(), SrtpSuite::ALL.len());
        assert_eq!(offered[0], CryptoAttr::parse(&a_line[9..]).unwrap());
        let mut ans = answer_req(
            call_id,
            "tagA",
            "tagB",
            &sdp("127.0.0.3", 40010, "RTP/AVP", &[]),
        );
        ans.osrtp.accept = accept;
        let ans = calls.answer(&ans, clock.now()).unwrap().sdp;
        assert!(m_line(&ans).ends_with(" RTP/AVP 0"), "{ans}");
        let a_port: u16 = m_line(&ans).split(' ').nth(1).unwrap().parse().unwrap();
        let (a_in, a_out) = keys_at(&calls, &media, call_id, a_port);
        if accept {
            let answered = crypto_lines(&ans);
            assert_eq!(answered.len(), 1);
            assert_eq!(
                (answered[0].tag, answered[0].suite),
                (1, SrtpSuite::AesCm128HmacSha1_80)
            );
            assert_eq!(a_in.unwrap().key_salt, offered[0].key_salt);
            assert_eq!(a_out.unwrap().key_salt, answered[0].key_salt);
        } else {
            assert!(!ans.contains("a=crypto"), "{ans}");
            assert!(a_in.is_none() && a_out.is_none());
        }
    }
}

#[test]
fn ice_towards_a_plain_side_makes_us_a_full_agent_and_arms_stun_answers() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("i1", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
    req.ice = IceMode::Force;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    // Toward plain RTP we are a full agent, as rtpengine: no a=ice-lite (only toward
    // WebRTC, see the DTLS tests).
    assert!(!offer.contains("a=ice-lite"), "{offer}");
    let ufrag = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap();
    let pwd = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .unwrap();
    let call_key = calls.calls["i1"].key;
    let plan = media.plan(call_key);
    let b_ports = calls.calls["i1"].legs[1].medias[0].ports.unwrap();
    for key in [b_ports.rtp.key, b_ports.rtcp.key] {
        let s = plan.streams.iter().find(|s| s.port == key).unwrap();
        let ice = s.ice.as_ref().expect("B-facing sockets answer STUN");
        assert_eq!((ice.ufrag.as_str(), ice.pwd.as_str()), (ufrag, pwd));
    }
    // A got no ICE from us (its answer comes with ICE=remove): no STUN answers there.
    let ans = calls
        .answer(
            &answer_req(
                "i1",
                "tagA",
                "tagB",
                &sdp("127.0.0.3", 40010, "RTP/AVP", &[]),
            ),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert!(!ans.contains("a=ice-lite") && !ans.contains("a=ice-ufrag"));
    let plan = media.plan(call_key);
    let a_ports = calls.calls["i1"].legs[0].medias[0].ports.unwrap();
    assert!(plan
        .streams
        .iter()
        .find(|s| s.port == a_ports.rtp.key)
        .unwrap()
        .ice
        .is_none());
}

/// rtpengine's "stray answer protocol changes": the answerer changes the profile it was
/// offered. `transport-protocol: accept` in the answer passes the change on to the
/// offerer, a profile there overrides it, and without the key the offerer keeps its own.
#[test]
fn answer_transport_protocol_accept_and_override() {
    let answer_with = |flag: Option<&str>| {
        let media = FakeMedia::scripted(&[30000, 30002]);
        let mut calls = calls_with(media.clone(), EngineConfig::default());
        let clock = Clock::new();
        let mut req = offer_req("c1", "tagA", &sdp("127.0.0.2", 40000, "RTP/AVP", &[]));
        req.transport_protocol = Some("RTP/SAVP".into());
        req.dtls = DtlsMode::Off;
        let offer = calls.offer(&req, clock.now()).unwrap().sdp;
        assert_eq!(m_line(&offer), "m=audio 30002 RTP/SAVP 0");
        // B accepts the AES_CM_128_HMAC_SHA1_80 line (tag 7) with its own key.
        let tag = crypto_lines(&offer)
            .iter()
            .find(|a| a.suite == SrtpSuite::AesCm128HmacSha1_80)
            .unwrap()
            .tag;
        let b_line = format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{B_KEY}");
        let mut ans = answer_req(
            "c1",
            "tagA",
            "tagB",
            &sdp("127.0.0.3", 40010, "RTP/SAVPF", &[&b_line]),
        );
        ans.transport_protocol = flag.map(Into::into);
        let answer = calls.answer(&ans, clock.now()).unwrap().sdp;
        m_line(&answer).to_owned()
    };
    assert_eq!(answer_with(Some("accept")), "m=audio 30000 RTP/SAVPF 0");
    assert_eq!(answer_with(Some("RTP/AVPF")), "m=audio 30000 RTP/AVPF 0");
    assert_eq!(answer_with(None), "m=audio 30000 RTP/AVP 0");
}
