//! DTLS-SRTP through the daemon, against a DTLS peer of our own written directly on OpenSSL
//! (not the engine's DTLS code): the handshake on the media port in both roles, SRTP keys
//! derived by the peer from RFC 5764 §4.2 and checked by decrypting what the engine sends,
//! SDES ↔ DTLS, a certificate that does not match its fingerprint (no media, counted), and
//! a handshake flight lost on the way (retransmitted).

use std::time::{Duration, Instant};

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::SrtpSuite;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::dtls::{attr, check_both_ways, packet, protect, sdp, DtlsPeer, WAIT};
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint};

fn drops(daemon: &Daemon, reason: &str) -> f64 {
    let metrics = daemon.http_client().metrics();
    ngmedia_tests::http::metric(
        &metrics,
        &format!("ngmedia_packet_drops_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// The DTLS peer calls (offer: UDP/TLS/RTP/SAVP, actpass); the callee is plain RTP. We
/// answer `active`, so the engine is the DTLS client and the peer the server.
fn dtls_caller_to_plain(backend: &str, lose: usize) {
    let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)]);
    let ng: NgClient = daemon.client();
    let (a, b) = (DtlsPeer::new(0xa1), RtpEndpoint::new(0xb2));
    let call = format!("dtls-to-plain-{backend}-{lose}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => call.as_str(), "from-tag" => "A",
        "sdp" => sdp(a.ep.port(), "UDP/TLS/RTP/SAVP", &["a=setup:actpass".into(), a.fingerprint_line()]),
        "ICE" => "remove", "transport-protocol" => "RTP/AVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert_eq!(offer_sdp.audio().proto, "RTP/AVP");
    assert_eq!(attr(&offer_sdp, "fingerprint"), None);
    assert_eq!(attr(&offer_sdp, "setup"), None);
    let answer = ng.answer(&call, "A", "B", &sdp(b.port(), "RTP/AVP", &[]));
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "UDP/TLS/RTP/SAVP");
    assert_eq!(attr(&answer_sdp, "setup"), Some("active"));
    let engine_fp = attr(&answer_sdp, "fingerprint")
        .expect("our fingerprint")
        .to_owned();
    let started = Instant::now();
    let mut keys = a
        .handshake(
            answer_sdp.audio_addr(),
            false,
            "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32",
            &engine_fp,
            lose,
        )
        .expect("handshake with the engine");
    if lose > 0 {
        // The first ClientHello was lost: only the engine's retransmission timer (500 ms)
        // could have brought the handshake on.
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_80);
    check_both_ways(
        &a.ep,
        &mut keys,
        answer_sdp.audio_addr(),
        &b,
        offer_sdp.audio_addr(),
        None,
        1..10,
    );
    assert_eq!(drops(&daemon, "dtls"), 0.0);
}

#[test]
fn dtls_caller_to_plain_callee_engine_connects() {
    dtls_caller_to_plain("auto", 0);
}

#[test]
fn dtls_caller_to_plain_callee_on_epoll() {
    dtls_caller_to_plain("epoll", 0);
}

#[test]
fn lost_client_hello_is_retransmitted() {
    dtls_caller_to_plain("auto", 1);
}

/// A plain caller; the callee speaks DTLS-SRTP and answers `active`: the engine is the
/// server. GCM is the profile the peer asks for.
#[test]
fn plain_caller_to_dtls_callee_engine_accepts() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), DtlsPeer::new(0xb2));
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "plain-to-dtls", "from-tag" => "A",
        "sdp" => sdp(a.port(), "RTP/AVP", &[]), "ICE" => "remove",
        "transport-protocol" => "UDP/TLS/RTP/SAVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert_eq!(offer_sdp.audio().proto, "UDP/TLS/RTP/SAVP");
    assert_eq!(attr(&offer_sdp, "setup"), Some("actpass"));
    assert_eq!(
        attr(&offer_sdp, "crypto"),
        None,
        "a DTLS profile gets no SDES"
    );
    let engine_fp = attr(&offer_sdp, "fingerprint").unwrap().to_owned();
    let answer = ng.answer(
        "plain-to-dtls",
        "A",
        "B",
        &sdp(
            b.ep.port(),
            "UDP/TLS/RTP/SAVP",
            &["a=setup:active".into(), b.fingerprint_line()],
        ),
    );
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/AVP");
    let mut keys = b
        .handshake(
            offer_sdp.audio_addr(),
            true,
            "SRTP_AEAD_AES_128_GCM",
            &engine_fp,
            0,
        )
        .expect("handshake with the engine");
    assert_eq!(keys.suite, SrtpSuite::AeadAes128Gcm);
    check_both_ways(
        &b.ep,
        &mut keys,
        offer_sdp.audio_addr(),
        &a,
        answer_sdp.audio_addr(),
        None,
        1..10,
    );
}

/// SDES-SRTP caller, DTLS-SRTP callee: the engine decrypts with one and encrypts with the
/// other.
#[test]
fn sdes_caller_to_dtls_callee_both_ways() {
    const KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), DtlsPeer::new(0xb2));
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "sdes-to-dtls", "from-tag" => "A",
        "sdp" => sdp(a.port(), "RTP/SAVP", std::slice::from_ref(&line)), "ICE" => "remove",
        "transport-protocol" => "UDP/TLS/RTP/SAVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert_eq!(attr(&offer_sdp, "setup"), Some("actpass"));
    let engine_fp = attr(&offer_sdp, "fingerprint").unwrap().to_owned();
    let answer = ng.answer(
        "sdes-to-dtls",
        "A",
        "B",
        &sdp(
            b.ep.port(),
            "UDP/TLS/RTP/SAVP",
            &["a=setup:active".into(), b.fingerprint_line()],
        ),
    );
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/SAVP");
    let ours = CryptoAttr::parse(attr(&answer_sdp, "crypto").expect("SDES answer to A")).unwrap();
    let mut a_tx = CryptoAttr::parse(&line[9..]).unwrap().context().unwrap();
    let mut a_rx = ours.context().unwrap();
    let mut keys = b
        .handshake(
            offer_sdp.audio_addr(),
            true,
            "SRTP_AES128_CM_SHA1_80",
            &engine_fp,
            0,
        )
        .expect("handshake with the engine");
    check_both_ways(
        &b.ep,
        &mut keys,
        offer_sdp.audio_addr(),
        &a,
        answer_sdp.audio_addr(),
        Some((&mut a_tx, &mut a_rx)),
        1..10,
    );
}

/// The callee's certificate is not the one its SDP names: the engine refuses the
/// association, relays nothing either way, counts the drops and logs the failure once.
#[test]
fn wrong_fingerprint_means_no_media_and_is_counted() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), DtlsPeer::new(0xb2));
    let impostor = DtlsPeer::new(0xcc);
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "dtls-bad-fp", "from-tag" => "A",
        "sdp" => sdp(a.port(), "RTP/AVP", &[]), "ICE" => "remove",
        "transport-protocol" => "UDP/TLS/RTP/SAVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    let engine_fp = attr(&offer_sdp, "fingerprint").unwrap().to_owned();
    // B signals the impostor's fingerprint but holds its own certificate.
    let answer = ng.answer(
        "dtls-bad-fp",
        "A",
        "B",
        &sdp(
            b.ep.port(),
            "UDP/TLS/RTP/SAVP",
            &["a=setup:active".into(), impostor.fingerprint_line()],
        ),
    );
    let answer_sdp = parse_reply_sdp(&answer);
    // The peer's OpenSSL may or may not see the handshake finish (the engine checks the
    // fingerprint at its end); either way it ends up with keys the engine does not use.
    if let Ok(mut keys) = b.handshake(
        offer_sdp.audio_addr(),
        true,
        "SRTP_AES128_CM_SHA1_80",
        &engine_fp,
        0,
    ) {
        for seq in 1..4 {
            b.ep.sock
                .send_to(
                    &protect(&mut keys.tx, &packet(seq, 0x5a5a)),
                    offer_sdp.audio_addr(),
                )
                .unwrap();
        }
    }
    for seq in 1..4 {
        a.sock
            .send_to(&packet(seq, 0x6b6b), answer_sdp.audio_addr())
            .unwrap();
    }
    assert!(
        a.recv(Duration::from_millis(300)).is_none(),
        "media relayed to A"
    );
    assert!(
        b.ep.recv(Duration::from_millis(300))
            .is_none_or(|(p, _)| (20..64).contains(&p[0])),
        "media relayed to B"
    );
    let counted = wait_for(WAIT, || (drops(&daemon, "dtls") >= 4.0).then_some(()));
    assert!(counted.is_some(), "dtls drops = {}", drops(&daemon, "dtls"));
    let log = daemon.log_text();
    assert_eq!(
        log.matches("DTLS handshake failed").count(),
        1,
        "logged once: {log}"
    );
    assert!(log.contains("does not match"), "{log}");
}
