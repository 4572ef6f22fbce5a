//! Offer/answer flags act on the side they name, as in rtpengine: a WebRTC-style DTLS-SRTP
//! caller reaches an SDES-SRTP desk phone through an offer with `transport-protocol:
//! RTP/SAVP`, `ICE: remove`, `DTLS: off` and `rtcp-mux: [demux]`. `DTLS=off` is for the phone
//! (offered SDES only); the caller's own DTLS is still answered with our fingerprint and
//! `a=setup`, the handshake runs, and media flows both ways (DTLS-SRTP <-> SDES-SRTP).

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::SrtpSuite;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::dtls::{attr, check_both_ways, sdp, DtlsPeer};
use ngmedia_tests::{dict, Daemon, RtpEndpoint};

/// The phone's own key (RFC 4568 inline key||salt, 30 bytes).
const PHONE_KEY: &str = "zC6Ea9EK/7YmDM79CK+TAnNXTI1pVmZuCMjUPMph";

#[test]
fn dtls_off_in_the_offer_still_answers_the_dtls_caller() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (DtlsPeer::new(0xa1), RtpEndpoint::new(0xb2));
    let call = "dtls-off-direction";
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "A",
        "sdp" => sdp(a.ep.port(), "UDP/TLS/RTP/SAVP", &["a=setup:actpass".into(), a.fingerprint_line()]),
        "transport-protocol" => "RTP/SAVP", "ICE" => "remove", "DTLS" => "off",
        "rtcp-mux" => vec!["demux"],
    });
    let offer = parse_reply_sdp(&offer);
    assert_eq!(offer.audio().proto, "RTP/SAVP");
    assert_eq!(
        attr(&offer, "fingerprint"),
        None,
        "DTLS=off: none to the phone"
    );
    assert_eq!(attr(&offer, "setup"), None);
    let ours = offer
        .audio()
        .attributes
        .iter()
        .filter_map(|l| l.strip_prefix("crypto:"))
        .map(|v| CryptoAttr::parse(v).unwrap())
        .find(|c| c.suite == SrtpSuite::AesCm128HmacSha1_80)
        .expect("SDES offered to the phone");

    let phone_line = format!("{} AES_CM_128_HMAC_SHA1_80 inline:{PHONE_KEY}", ours.tag);
    // The answer repeats the flags, as Kamailio configurations often do.
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => call, "from-tag" => "A", "to-tag" => "B",
        "sdp" => sdp(b.port(), "RTP/SAVP", &[format!("a=crypto:{phone_line}")]),
        "ICE" => "remove", "DTLS" => "off", "rtcp-mux" => vec!["demux"],
    });
    let answer = parse_reply_sdp(&answer);
    assert_eq!(answer.audio().proto, "UDP/TLS/RTP/SAVP");
    assert_eq!(attr(&answer, "setup"), Some("active"));
    assert_eq!(attr(&answer, "crypto"), None);
    let engine_fp = attr(&answer, "fingerprint")
        .expect("the DTLS caller gets our fingerprint")
        .to_owned();

    let mut keys = a
        .handshake(
            answer.audio_addr(),
            false,
            "SRTP_AES128_CM_SHA1_80",
            &engine_fp,
            0,
        )
        .expect("handshake with the engine");
    let mut b_tx = CryptoAttr::parse(&phone_line).unwrap().context().unwrap();
    let mut b_rx = ours.context().unwrap();
    check_both_ways(
        &a.ep,
        &mut keys,
        answer.audio_addr(),
        &b,
        offer.audio_addr(),
        Some((&mut b_tx, &mut b_rx)),
        1..10,
    );
}
