//! DTLS-SRTP negotiation: the SDP lines each side gets (setup, fingerprint, ICE, rtcp-mux,
//! mid, profile) and the DTLS parameters the plan hands to the workers.

use super::*;
use crate::core::dtls::{DtlsIdentity, DtlsRole, Fingerprint};
use crate::core::plan::DtlsParams;
use crate::core::request::{DtlsMode, IceMode};

/// A browser's certificate, for its a=fingerprint.
fn browser_fp() -> Fingerprint {
    DtlsIdentity::generate().unwrap().fingerprint().clone()
}

fn webrtc_sdp(port: u16, setup: &str, fp: &Fingerprint) -> String {
    format!(
        "v=0\no=- 46117 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\n\
         m=audio {port} UDP/TLS/RTP/SAVPF 111\nc=IN IP4 127.0.0.2\n\
         a=ice-ufrag:brws\na=ice-pwd:browserpasswordbrowserpass\n\
         a=candidate:1 1 udp 2122260223 127.0.0.2 {port} typ host\n\
         a=fingerprint:{}\na=setup:{setup}\na=mid:0\na=sendrecv\na=rtcp-mux\n\
         a=rtpmap:111 opus/48000/2\na=rtcp-fb:111 transport-cc\n",
        fp.to_value()
    )
}

fn plain_sdp(addr: &str, port: u16) -> String {
    format!(
        "v=0\no=x 1 1 IN IP4 {addr}\ns=-\nc=IN IP4 {addr}\nt=0 0\n\
         m=audio {port} RTP/AVP 111\na=rtpmap:111 opus/48000/2\na=sendrecv\n"
    )
}

fn attrs<'a>(sdp: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("a={name}");
    sdp.lines()
        .filter(|l| *l == prefix || l.starts_with(&format!("{prefix}:")))
        .map(|l| l.split_once(':').map_or("", |(_, v)| v))
        .collect()
}

fn m_line(sdp: &str) -> &str {
    sdp.lines().find(|l| l.starts_with("m=")).unwrap()
}

/// DTLS parameters of the RTP stream on local port `port`.
fn dtls_at(calls: &Calls, media: &FakeMedia, call: &str, port: u16) -> Option<DtlsParams> {
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
    assert_eq!(
        (&s.srtp_in, &s.srtp_out),
        (&None, &None),
        "DTLS streams carry no SDES keys"
    );
    s.dtls.clone()
}

#[test]
fn webrtc_offer_to_plain_rtp_and_back() {
    // A (browser) faces 30000, B (plain phone) faces 30002.
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let fp = browser_fp();
    let mut req = offer_req("w1", "A", &webrtc_sdp(50000, "actpass", &fp));
    req.transport_protocol = Some("RTP/AVP".into());
    req.rtcp_mux.demux = true;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    // The plain side sees clean RTP/AVP.
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/AVP 111");
    for gone in [
        "setup",
        "fingerprint",
        "ice-ufrag",
        "candidate",
        "crypto",
        "rtcp-mux",
        "group",
    ] {
        assert!(attrs(&offer, gone).is_empty(), "{gone} in {offer}");
    }
    assert_eq!(attrs(&offer, "rtcp"), ["30003"]);
    // No association before the answer: the browser waits for our setup role.
    assert_eq!(dtls_at(&calls, &media, "w1", 30000), None);

    let mut ans = answer_req("w1", "A", "B", &plain_sdp("127.0.0.3", 40010));
    ans.ice = IceMode::Default;
    let answer = calls.answer(&ans, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 UDP/TLS/RTP/SAVPF 111");
    let ours = calls.dtls_identity().unwrap().clone();
    // We answer `active` to actpass (RFC 5763 §5, as rtpengine does), with our fingerprint,
    // our ICE-lite credentials and candidate, rtcp-mux and the browser's mid.
    assert_eq!(attrs(&answer, "setup"), ["active"]);
    assert_eq!(
        attrs(&answer, "fingerprint"),
        [ours.fingerprint().to_value().as_str()]
    );
    assert_eq!(attrs(&answer, "mid"), ["0"]);
    assert_eq!(attrs(&answer, "rtcp-mux"), [""]);
    assert_eq!(attrs(&answer, "ice-lite"), [""]);
    assert_eq!(attrs(&answer, "ice-ufrag").len(), 1);
    let cands = attrs(&answer, "candidate");
    assert_eq!(cands.len(), 1, "rtcp-mux: one component");
    assert!(cands[0].ends_with("127.0.0.1 30000 typ host"), "{cands:?}");
    assert!(attrs(&answer, "crypto").is_empty());
    let p = dtls_at(&calls, &media, "w1", 30000).expect("association after the answer");
    assert_eq!((p.role, &p.remote), (DtlsRole::Client, &fp));
    assert!(Arc::ptr_eq(&p.identity, &ours));
    assert_eq!(dtls_at(&calls, &media, "w1", 30002), None);

    // A re-INVITE with the same fingerprint keeps the association as it is.
    let again = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&again), "m=audio 30002 RTP/AVP 111");
    assert_eq!(dtls_at(&calls, &media, "w1", 30000), Some(p.clone()));
    calls.answer(&ans, clock.now()).unwrap();
    assert_eq!(dtls_at(&calls, &media, "w1", 30000), Some(p));
}

#[test]
fn webrtc_flag_offers_dtls_to_the_browser_and_its_answer_sets_our_role() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    // What the WebRTC flag expands to (control/src/ng/request.rs).
    let mut req = offer_req("w2", "A", &plain_sdp("127.0.0.2", 40000));
    req.transport_protocol = Some("UDP/TLS/RTP/SAVPF".into());
    req.ice = IceMode::Force;
    req.rtcp_mux.offer = true;
    req.rtcp_mux.require = true;
    req.flags.no_rtcp_attribute = true;
    req.sdes_off = true;
    req.flags.generate_mid = true;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 UDP/TLS/RTP/SAVPF 111");
    let ours = calls.dtls_identity().unwrap().fingerprint().to_value();
    assert_eq!(attrs(&offer, "setup"), ["actpass"]);
    assert_eq!(attrs(&offer, "fingerprint"), [ours.as_str()]);
    assert_eq!(attrs(&offer, "mid"), ["0"]);
    assert_eq!(attrs(&offer, "rtcp-mux"), [""]);
    assert!(attrs(&offer, "rtcp").is_empty());
    assert!(attrs(&offer, "crypto").is_empty());
    assert_eq!(attrs(&offer, "candidate").len(), 1);
    // Engine block order: mid first, then codecs, direction, rtcp-mux, setup, fingerprint.
    let order: Vec<&str> = offer
        .lines()
        .skip_while(|l| !l.starts_with("m="))
        .filter_map(|l| l.strip_prefix("a="))
        .map(|a| a.split(':').next().unwrap())
        .collect();
    assert_eq!(
        order[..7],
        [
            "mid",
            "rtpmap",
            "sendrecv",
            "rtcp-mux",
            "setup",
            "fingerprint",
            "ice-ufrag"
        ]
    );

    // Browsers answer active: we are the DTLS server.
    let fp = browser_fp();
    let mut ans = answer_req("w2", "A", "B", &webrtc_sdp(50010, "active", &fp));
    ans.ice = IceMode::Remove;
    let answer = calls.answer(&ans, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 RTP/AVP 111");
    for gone in ["setup", "fingerprint", "ice-ufrag", "candidate", "rtcp-mux"] {
        assert!(attrs(&answer, gone).is_empty(), "{gone} in {answer}");
    }
    let p = dtls_at(&calls, &media, "w2", 30002).unwrap();
    assert_eq!((p.role, p.remote), (DtlsRole::Server, fp));
    assert_eq!(dtls_at(&calls, &media, "w2", 30000), None);
}

#[test]
fn dtls_key_picks_passive_or_removes_dtls() {
    let media = FakeMedia::scripted(&[30000, 30002, 30010, 30012]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let fp = browser_fp();
    let mut req = offer_req("w3", "A", &webrtc_sdp(50000, "actpass", &fp));
    req.transport_protocol = Some("RTP/AVP".into());
    req.dtls = DtlsMode::Passive;
    calls.offer(&req, clock.now()).unwrap();
    let answer = calls
        .answer(
            &answer_req("w3", "A", "B", &plain_sdp("127.0.0.3", 40010)),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(attrs(&answer, "setup"), ["passive"]);
    assert_eq!(
        dtls_at(&calls, &media, "w3", 30000).unwrap().role,
        DtlsRole::Server
    );

    // DTLS=off: an SRTP target gets SDES only.
    let mut req = offer_req("w4", "A", &plain_sdp("127.0.0.2", 40000));
    req.transport_protocol = Some("RTP/SAVP".into());
    req.dtls = DtlsMode::Off;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(attrs(&offer, "setup").is_empty() && attrs(&offer, "fingerprint").is_empty());
    assert!(!attrs(&offer, "crypto").is_empty());
}

#[test]
fn savp_target_answered_with_dtls_uses_dtls_not_sdes() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("w5", "A", &plain_sdp("127.0.0.2", 40000));
    req.transport_protocol = Some("RTP/SAVP".into());
    req.dtls_fingerprint = Some("sha-1".into());
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    // Both alternatives, the fingerprint with the hash asked for.
    assert_eq!(attrs(&offer, "crypto").len(), 12);
    assert_eq!(attrs(&offer, "setup"), ["actpass"]);
    let ours = calls.dtls_identity().unwrap().clone();
    assert_eq!(
        attrs(&offer, "fingerprint"),
        [ours
            .fingerprint_with(crate::core::dtls::HashFunction::Sha1)
            .to_value()
            .as_str()]
    );
    // The answerer picks DTLS and is passive: we connect.
    let fp = browser_fp();
    let body = format!(
        "v=0\no=x 1 1 IN IP4 127.0.0.3\ns=-\nc=IN IP4 127.0.0.3\nt=0 0\n\
         m=audio 40010 RTP/SAVP 111\na=rtpmap:111 opus/48000/2\na=setup:passive\na=fingerprint:{}\n",
        fp.to_value()
    );
    let answer = calls
        .answer(&answer_req("w5", "A", "B", &body), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 RTP/AVP 111");
    assert!(attrs(&answer, "crypto").is_empty() && attrs(&answer, "fingerprint").is_empty());
    let p = dtls_at(&calls, &media, "w5", 30002).unwrap();
    assert_eq!((p.role, p.remote), (DtlsRole::Client, fp));
}

/// Issue: a browser calls an SDES desk phone with `transport-protocol: RTP/SAVP`, `ICE:
/// remove`, `DTLS: off`, `rtcp-mux: [demux]`. `DTLS=off` names the side the offer goes to
/// (rtpengine's `__generate_crypto` for the receiving media): the phone is offered SDES only,
/// while the browser's own DTLS is still answered with our fingerprint and `a=setup`, ICE and
/// rtcp-mux, exactly as rtpengine 10.5 answers (checked side by side).
#[test]
fn dtls_off_names_the_offer_receiver_and_the_browser_still_gets_dtls() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let fp = browser_fp();
    let mut req = offer_req("w-sdes", "A", &webrtc_sdp(50000, "actpass", &fp));
    req.transport_protocol = Some("RTP/SAVP".into());
    req.ice = IceMode::Remove;
    req.dtls = DtlsMode::Off;
    req.rtcp_mux.demux = true;
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/SAVP 111");
    for gone in ["setup", "fingerprint", "ice-ufrag", "candidate", "rtcp-mux"] {
        assert!(attrs(&offer, gone).is_empty(), "{gone} in {offer}");
    }
    let crypto = attrs(&offer, "crypto");
    let ours = crypto
        .iter()
        .find(|c| c.contains(" AES_CM_128_HMAC_SHA1_80 "))
        .expect("SDES offered to the phone");
    let tag = ours.split(' ').next().unwrap();

    // The phone answers SDES; the answer request repeats the flags, as Kamailio configs do.
    let phone = format!(
        "v=0\no=phone 1 1 IN IP4 127.0.0.3\ns=-\nc=IN IP4 127.0.0.3\nt=0 0\n\
         m=audio 40010 RTP/SAVP 111\na=rtpmap:111 opus/48000/2\na=sendrecv\n\
         a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:zC6Ea9EK/7YmDM79CK+TAnNXTI1pVmZuCMjUPMph\n"
    );
    let mut ans = answer_req("w-sdes", "A", "B", &phone);
    ans.ice = IceMode::Default;
    ans.dtls = DtlsMode::Off;
    ans.rtcp_mux.demux = true;
    let answer = calls.answer(&ans, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 UDP/TLS/RTP/SAVPF 111");
    let identity = calls.dtls_identity().unwrap().clone();
    assert_eq!(attrs(&answer, "setup"), ["active"]);
    assert_eq!(
        attrs(&answer, "fingerprint"),
        [identity.fingerprint().to_value().as_str()]
    );
    assert_eq!(attrs(&answer, "rtcp-mux"), [""]);
    assert_eq!(attrs(&answer, "ice-ufrag").len(), 1);
    assert!(attrs(&answer, "crypto").is_empty());
    let p = dtls_at(&calls, &media, "w-sdes", 30000).expect("DTLS with the browser");
    assert_eq!((p.role, &p.remote), (DtlsRole::Client, &fp));

    // The phone's side is SDES both ways.
    let c = &calls.calls["w-sdes"];
    let phone_key = c.legs[1].medias[0].ports.unwrap().rtp.key;
    let plan = media.plan(c.key);
    let s = plan.streams.iter().find(|s| s.port == phone_key).unwrap();
    assert!(s.srtp_in.is_some() && s.srtp_out.is_some() && s.dtls.is_none());
}

/// `DTLS-reverse: passive` in the offer: toward an offerer that leaves the role to us
/// (`actpass`) we take the passive role, and say so in the answer.
#[test]
fn dtls_reverse_passive_answers_passive_to_actpass() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let fp = browser_fp();
    let mut req = offer_req("rev", "A", &webrtc_sdp(50000, "actpass", &fp));
    req.transport_protocol = Some("RTP/AVP".into());
    req.dtls_reverse_passive = true;
    calls.offer(&req, clock.now()).unwrap();
    // The answer request does not repeat the flag: the offer decided.
    let answer = calls
        .answer(
            &answer_req("rev", "A", "B", &plain_sdp("127.0.0.3", 40010)),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 UDP/TLS/RTP/SAVPF 111");
    assert_eq!(attrs(&answer, "setup"), ["passive"]);
    let p = dtls_at(&calls, &media, "rev", 30000).unwrap();
    assert_eq!((p.role, p.remote), (DtlsRole::Server, fp));

    // An offerer that names its own role keeps it: `active` makes us passive anyway,
    // `passive` makes us active whatever the flag says.
    let fp = browser_fp();
    let mut req = offer_req("rev2", "A", &webrtc_sdp(50000, "passive", &fp));
    req.transport_protocol = Some("RTP/AVP".into());
    req.dtls_reverse_passive = true;
    let media = FakeMedia::scripted(&[30010, 30012]);
    let mut calls = calls_with(media, EngineConfig::default());
    calls.offer(&req, clock.now()).unwrap();
    let answer = calls
        .answer(
            &answer_req("rev2", "A", "B", &plain_sdp("127.0.0.3", 40010)),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(attrs(&answer, "setup"), ["active"]);
}

/// A re-offer without flags keeps what the first offer chose toward the answerer: the
/// SRTP profile (`transport-protocol` is not repeated), no SDES when the first said
/// `SDES=off`, and the fingerprint hash (`DTLS-fingerprint`), whatever hash the answerer's
/// own fingerprint used.
#[test]
fn reoffer_keeps_profile_keying_and_fingerprint_hash() {
    use crate::core::dtls::HashFunction;
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let ours = calls.dtls_identity().unwrap().clone();
    let sha1 = ours.fingerprint_with(HashFunction::Sha1).to_value();
    let plain = plain_sdp("127.0.0.2", 40000);
    let mut req = offer_req("keep", "A", &plain);
    req.transport_protocol = Some("RTP/SAVP".into());
    req.sdes_off = true;
    req.dtls_fingerprint = Some("sha-1".into());
    let offer = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(m_line(&offer), "m=audio 30002 RTP/SAVP 111");
    assert!(attrs(&offer, "crypto").is_empty());
    assert_eq!(attrs(&offer, "setup"), ["actpass"]);
    assert_eq!(attrs(&offer, "fingerprint"), [sha1.as_str()]);

    // The answerer picks DTLS with a SHA-256 fingerprint.
    let fp = browser_fp();
    let body = format!(
        "v=0\no=x 1 1 IN IP4 127.0.0.3\ns=-\nc=IN IP4 127.0.0.3\nt=0 0\n\
         m=audio 40010 RTP/SAVP 111\na=rtpmap:111 opus/48000/2\na=setup:actpass\na=fingerprint:{}\n",
        fp.to_value()
    );
    let answer = calls
        .answer(&answer_req("keep", "A", "B", &body), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(m_line(&answer), "m=audio 30000 RTP/AVP 111");

    // The same plain offer again, without any flag.
    let again = calls
        .offer(&offer_req("keep", "A", &plain), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(m_line(&again), "m=audio 30002 RTP/SAVP 111");
    assert!(attrs(&again, "crypto").is_empty(), "{again}");
    assert_eq!(attrs(&again, "setup"), ["actpass"]);
    assert_eq!(attrs(&again, "fingerprint"), [sha1.as_str()]);

    // A new profile from the offerer is passed on as it is.
    let avpf = plain.replace("RTP/AVP", "RTP/AVPF");
    let changed = calls
        .offer(&offer_req("keep", "A", &avpf), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(m_line(&changed), "m=audio 30002 RTP/AVPF 111");
    assert!(attrs(&changed, "fingerprint").is_empty());
}

/// The answer carries the offerer's a=mid, not the answerer's: none when the offerer
/// wrote none. A rejected section keeps its a=mid.
#[test]
fn answer_mid_is_the_offerers_and_rejected_sections_keep_theirs() {
    let media = FakeMedia::scripted(&[30000, 30002]);
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let offer_body = "v=0\no=x 1 1 IN IP4 127.0.0.2\ns=-\nt=0 0\n\
         m=audio 40000 RTP/AVP 0\nc=IN IP4 127.0.0.2\na=sendrecv\na=mid:0\n\
         m=audio 0 RTP/AVP 0\nc=IN IP4 127.0.0.2\na=sendrecv\na=mid:1\n";
    let offer = calls
        .offer(&offer_req("mid", "A", offer_body), clock.now())
        .unwrap()
        .sdp;
    let second: Vec<&str> = offer
        .split("m=")
        .nth(2)
        .unwrap()
        .lines()
        .map(str::trim_end)
        .collect();
    assert_eq!(
        second,
        ["audio 0 RTP/AVP 0", "c=IN IP4 127.0.0.1", "a=mid:1"],
        "{offer}"
    );

    let media = FakeMedia::scripted(&[30010, 30012]);
    let mut calls = calls_with(media, EngineConfig::default());
    calls
        .offer(
            &offer_req("mid2", "A", &plain_sdp("127.0.0.2", 40000)),
            clock.now(),
        )
        .unwrap();
    let answer_body = plain_sdp("127.0.0.3", 40010) + "a=mid:audio\n";
    let answer = calls
        .answer(&answer_req("mid2", "A", "B", &answer_body), clock.now())
        .unwrap()
        .sdp;
    assert!(attrs(&answer, "mid").is_empty(), "{answer}");
}
