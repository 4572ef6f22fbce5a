//! DTLS-SRTP through the daemon, against a DTLS peer of our own written directly on OpenSSL
//! (not the engine's DTLS code): the handshake on the media port in both roles, SRTP keys
//! derived by the peer from RFC 5764 §4.2 and checked by decrypting what the engine sends,
//! SDES ↔ DTLS, a certificate that does not match its fingerprint (no media, counted), and
//! a handshake flight lost on the way (retransmitted).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint, Sdp};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::{X509NameBuilder, X509};

const WAIT: Duration = Duration::from_secs(2);
/// Bound on one handshake, retransmissions included.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// A self-signed EC certificate as a browser makes one.
fn certificate() -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "peer").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref())
        .unwrap();
    b.set_not_after(Asn1Time::days_from_now(1).unwrap().as_ref())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn fingerprint(cert: &X509) -> String {
    let d = cert.digest(MessageDigest::sha256()).unwrap();
    let hex: Vec<String> = d.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

/// The peer's media socket seen by OpenSSL: one datagram per read, from the engine only,
/// DTLS records only (RTP that arrives early is left out), and the first `lose` records
/// from the engine thrown away to simulate loss.
struct PeerIo {
    sock: UdpSocket,
    engine: SocketAddr,
    lose: usize,
    lost: usize,
}

impl Read for PeerIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.sock.recv_from(buf) {
                Ok((n, from)) if from == self.engine && n > 0 && (20..64).contains(&buf[0]) => {
                    if self.lost < self.lose {
                        self.lost += 1;
                        continue;
                    }
                    return Ok(n);
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for PeerIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_to(buf, self.engine)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A DTLS-SRTP party: an RTP endpoint with a certificate.
struct DtlsPeer {
    ep: RtpEndpoint,
    cert: X509,
    key: PKey<Private>,
}

/// The result of a handshake: SRTP contexts for both directions.
struct Keyed {
    /// Protects what the peer sends.
    tx: SrtpContext,
    /// Unprotects what the engine sends the peer.
    rx: SrtpContext,
    suite: SrtpSuite,
}

impl DtlsPeer {
    fn new(ssrc: u32) -> DtlsPeer {
        let (cert, key) = certificate();
        DtlsPeer {
            ep: RtpEndpoint::new(ssrc),
            cert,
            key,
        }
    }

    fn fingerprint_line(&self) -> String {
        format!("a=fingerprint:{}", fingerprint(&self.cert))
    }

    /// Run the handshake with the engine at `engine` (as client when `client`), offering
    /// `profiles`; check the engine's certificate against `engine_fp` (its SDP fingerprint)
    /// and derive the SRTP keys. `lose` engine records are dropped first.
    fn handshake(
        &self,
        engine: SocketAddr,
        client: bool,
        profiles: &str,
        engine_fp: &str,
        lose: usize,
    ) -> Result<Keyed, String> {
        let mut b = SslContext::builder(SslMethod::dtls()).unwrap();
        b.set_certificate(&self.cert).unwrap();
        b.set_private_key(&self.key).unwrap();
        b.set_tlsext_use_srtp(profiles).unwrap();
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        let mut ssl = Ssl::new(&b.build()).unwrap();
        ssl.set_mtu(1200).unwrap();
        if client {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        let sock = self.ep.sock.try_clone().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let io = PeerIo {
            sock,
            engine,
            lose,
            lost: 0,
        };
        let mut stream = SslStream::new(ssl, io).unwrap();
        let deadline = Instant::now() + HANDSHAKE_LIMIT;
        loop {
            match stream.do_handshake() {
                Ok(()) => break,
                Err(e) if e.code() == ErrorCode::WANT_READ && Instant::now() < deadline => {}
                Err(e) => return Err(format!("handshake: {e:?}")),
            }
        }
        self.ep.sock.set_read_timeout(None).unwrap();
        let cert = stream
            .ssl()
            .peer_certificate()
            .ok_or("no engine certificate")?;
        assert_eq!(
            fingerprint(&cert),
            engine_fp,
            "engine's certificate matches its a=fingerprint"
        );
        let profile = stream.ssl().selected_srtp_profile().ok_or("no use_srtp")?;
        let suite = match profile.name() {
            "SRTP_AES128_CM_SHA1_80" => SrtpSuite::AesCm128HmacSha1_80,
            "SRTP_AES128_CM_SHA1_32" => SrtpSuite::AesCm128HmacSha1_32,
            "SRTP_AEAD_AES_128_GCM" => SrtpSuite::AeadAes128Gcm,
            other => return Err(format!("unexpected profile {other}")),
        };
        let (k, s) = (suite.master_key_len(), suite.master_salt_len());
        let mut m = vec![0u8; 2 * (k + s)];
        stream
            .ssl()
            .export_keying_material(&mut m, "EXTRACTOR-dtls_srtp", None)
            .unwrap();
        // RFC 5764 §4.2: client key | server key | client salt | server salt.
        let client_ks = [&m[..k], &m[2 * k..2 * k + s]].concat();
        let server_ks = [&m[k..2 * k], &m[2 * k + s..]].concat();
        let (mine, theirs) = if client {
            (client_ks, server_ks)
        } else {
            (server_ks, client_ks)
        };
        Ok(Keyed {
            tx: SrtpContext::from_key_salt(suite, &mine).unwrap(),
            rx: SrtpContext::from_key_salt(suite, &theirs).unwrap(),
            suite,
        })
    }
}

fn sdp(port: u16, proto: &str, extra: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    for l in extra {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

fn attr<'a>(sdp: &'a Sdp, name: &str) -> Option<&'a str> {
    sdp.audio()
        .attributes
        .iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix(':'))
}

fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect();
    rtp_packet(0, seq, 160 * seq as u32, ssrc, &payload)
}

fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 32, 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Vec<u8> {
    let mut buf = srtp.to_vec();
    let n = ctx
        .unprotect_rtp(&mut buf)
        .expect("SRTP from the engine authenticates with the exported keys");
    buf.truncate(n);
    buf
}

/// A packet that is not DTLS (the peer's socket also sees the engine's handshake).
fn recv_media(ep: &RtpEndpoint) -> Option<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let (p, _) = ep.recv(deadline - Instant::now())?;
        if !(20..64).contains(&p[0]) {
            return Some(p);
        }
    }
    None
}

/// SRTP from the DTLS peer reaches the other side as `plain_out` (plain RTP, or SRTP that
/// `other_rx` unprotects), and the other side's media reaches the peer encrypted.
fn check_both_ways(
    peer: &RtpEndpoint,
    keys: &mut Keyed,
    peer_dest: SocketAddr,
    other: &RtpEndpoint,
    other_dest: SocketAddr,
    mut other_srtp: Option<(&mut SrtpContext, &mut SrtpContext)>,
    seqs: std::ops::Range<u16>,
) {
    for seq in seqs {
        let plain = packet(seq, 0x5a5a);
        peer.sock
            .send_to(&protect(&mut keys.tx, &plain), peer_dest)
            .unwrap();
        let got = recv_media(other).expect("the peer's media reaches the other side");
        let got = match other_srtp.as_mut() {
            Some((_, rx)) => unprotect(rx, &got),
            None => got,
        };
        assert_eq!(got, plain, "the other side gets the peer's plaintext");

        let back = packet(seq, 0x6b6b);
        let wire = match other_srtp.as_mut() {
            Some((tx, _)) => protect(tx, &back),
            None => back.clone(),
        };
        other.sock.send_to(&wire, other_dest).unwrap();
        let srtp = recv_media(peer).expect("media reaches the DTLS peer");
        assert_eq!(srtp.len(), back.len() + keys.suite.srtp_tag_len());
        assert_ne!(srtp[12..back.len()], back[12..], "payload is encrypted");
        assert_eq!(unprotect(&mut keys.rx, &srtp), back);
    }
}

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
