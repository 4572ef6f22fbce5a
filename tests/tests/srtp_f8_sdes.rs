//! AES-f8 SDES calls through the daemon (RFC 3711 §4.1.2): a plain caller reaches a callee
//! that picks `F8_128_HMAC_SHA1_32` from the engine's offer, and an `F8_128_HMAC_SHA1_80`
//! caller reaches a plain callee. The SDES party's RTP and RTCP decrypt to exactly what the
//! plain party sent and the other way round; the engine's a=crypto lines carry rtpengine's
//! tags (9 and 10 for the f8 suites).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, Daemon, RtpEndpoint, Sdp};

/// Master key + salt of the SDES party ("1234567890123456" + "78901234567890").
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
const WAIT: Duration = Duration::from_secs(2);

/// A party: its RTP endpoint and an RTCP socket announced with `a=rtcp`.
struct Party {
    rtp: RtpEndpoint,
    rtcp: UdpSocket,
}

impl Party {
    fn new(ssrc: u32) -> Party {
        let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtcp.set_read_timeout(Some(WAIT)).unwrap();
        Party {
            rtp: RtpEndpoint::new(ssrc),
            rtcp,
        }
    }

    fn recv_rtcp(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = self.rtcp.recv_from(&mut buf).expect("RTCP arrives");
        buf[..n].to_vec()
    }
}

fn sdp(p: &Party, proto: &str, extra: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:{}\r\n",
        p.rtp.port(),
        p.rtcp.local_addr().unwrap().port()
    );
    for l in extra {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

fn crypto(sdp: &Sdp) -> Vec<CryptoAttr> {
    sdp.audio()
        .attributes
        .iter()
        .filter_map(|a| a.strip_prefix("crypto:"))
        .map(|v| CryptoAttr::parse(v).expect("engine a=crypto parses"))
        .collect()
}

fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160)
        .map(|i| (seq as u8).wrapping_mul(i as u8))
        .collect();
    rtp_packet(0, seq, 160 * seq as u32, ssrc, &payload)
}

fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x42; 20]);
    p
}

/// Where the engine takes RTCP for the media of `sdp`: its `a=rtcp` port, else RTP + 1.
fn rtcp_addr(sdp: &Sdp) -> SocketAddr {
    let rtp = sdp.audio_addr();
    let port = sdp
        .audio()
        .attributes
        .iter()
        .find_map(|a| a.strip_prefix("rtcp:"))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(rtp.port() + 1);
    SocketAddr::new(rtp.ip(), port)
}

/// One f8 call: the SDES party, the plain party, where each sends, and the contexts of
/// the SDES party (`tx` for what it sends, `rx` keyed with the engine's line).
struct F8Call {
    sdes: Party,
    plain: Party,
    /// Engine addresses (RTP, RTCP) the SDES party and the plain party send to.
    sdes_dest: (SocketAddr, SocketAddr),
    plain_dest: (SocketAddr, SocketAddr),
    tx: SrtpContext,
    rx: SrtpContext,
    suite: SrtpSuite,
    _daemon: Daemon,
}

impl F8Call {
    fn rtp_both_ways(&mut self, seqs: std::ops::Range<u16>) {
        for seq in seqs {
            let plain = packet(seq, 0x5a5a_0001);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 16, 0);
            let n = self.tx.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_ne!(buf[12..plain.len()], plain[12..], "f8 encrypts");
            self.sdes
                .rtp
                .sock
                .send_to(&buf[..n], self.sdes_dest.0)
                .unwrap();
            let (got, _) = self
                .plain
                .rtp
                .recv(WAIT)
                .expect("decrypted RTP reaches the plain side");
            assert_eq!(got, plain, "the plain side gets the SDES party's plaintext");

            let back = packet(seq, 0x6b6b_0002);
            self.plain
                .rtp
                .sock
                .send_to(&back, self.plain_dest.0)
                .unwrap();
            let (mut srtp, _) = self
                .sdes
                .rtp
                .recv(WAIT)
                .expect("SRTP reaches the SDES side");
            assert_eq!(srtp.len(), back.len() + self.suite.srtp_tag_len());
            assert_ne!(srtp[12..back.len()], back[12..], "payload is encrypted");
            let n = self
                .rx
                .unprotect_rtp(&mut srtp)
                .expect("the engine's f8 SRTP authenticates");
            assert_eq!(srtp[..n], back[..]);
        }
    }

    fn rtcp_both_ways(&mut self) {
        let sr = sender_report(0x5a5a_0001);
        let mut buf = sr.clone();
        buf.resize(sr.len() + 32, 0);
        let n = self.tx.protect_rtcp(&mut buf, sr.len()).unwrap();
        self.sdes.rtcp.send_to(&buf[..n], self.sdes_dest.1).unwrap();
        let got = self.plain.recv_rtcp();
        assert_eq!(got[..8], sr[..8], "header as sent");
        assert_eq!(got.len(), sr.len());

        let back = sender_report(0x6b6b_0002);
        self.plain.rtcp.send_to(&back, self.plain_dest.1).unwrap();
        let mut srtcp = self.sdes.recv_rtcp();
        assert_eq!(
            srtcp.len(),
            back.len() + 4 + 10,
            "index word and 80-bit tag"
        );
        assert_eq!(srtcp[back.len()] & 0x80, 0x80, "E flag: encrypted");
        let n = self
            .rx
            .unprotect_rtcp(&mut srtcp)
            .expect("the engine's f8 SRTCP authenticates");
        assert_eq!(srtcp[..n], back[..]);
    }
}

#[test]
fn plain_caller_to_f8_32_callee() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (Party::new(0xa1), Party::new(0xb2));
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "f8-32", "from-tag" => "A",
        "sdp" => sdp(&a, "RTP/AVP", &[]), "ICE" => "remove", "transport-protocol" => "RTP/SAVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    let offered = crypto(&offer_sdp);
    let f8: Vec<(u32, SrtpSuite)> = offered
        .iter()
        .filter(|c| c.suite.name().starts_with("F8_"))
        .map(|c| (c.tag, c.suite))
        .collect();
    assert_eq!(
        f8,
        [
            (9, SrtpSuite::F8_128HmacSha1_80),
            (10, SrtpSuite::F8_128HmacSha1_32)
        ]
    );
    let ours = offered.iter().find(|c| c.tag == 10).unwrap();
    let line = format!("a=crypto:10 F8_128_HMAC_SHA1_32 inline:{PEER_KEY}");
    let answer = ng.answer(
        "f8-32",
        "A",
        "B",
        &sdp(&b, "RTP/SAVP", std::slice::from_ref(&line)),
    );
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/AVP");
    let mut call = F8Call {
        sdes_dest: (offer_sdp.audio_addr(), rtcp_addr(&offer_sdp)),
        plain_dest: (answer_sdp.audio_addr(), rtcp_addr(&answer_sdp)),
        sdes: b,
        plain: a,
        tx: CryptoAttr::parse(&line[9..]).unwrap().context().unwrap(),
        rx: ours.context().unwrap(),
        suite: SrtpSuite::F8_128HmacSha1_32,
        _daemon: daemon,
    };
    call.rtp_both_ways(1..30);
    call.rtcp_both_ways();
}

#[test]
fn f8_80_caller_to_plain_callee() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (Party::new(0xa1), Party::new(0xb2));
    let line = format!("a=crypto:3 F8_128_HMAC_SHA1_80 inline:{PEER_KEY}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "f8-80", "from-tag" => "A",
        "sdp" => sdp(&a, "RTP/SAVP", std::slice::from_ref(&line)), "ICE" => "remove",
        "transport-protocol" => "RTP/AVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert!(crypto(&offer_sdp).is_empty(), "plain callee got a=crypto");
    let answer = ng.answer("f8-80", "A", "B", &sdp(&b, "RTP/AVP", &[]));
    let answer_sdp = parse_reply_sdp(&answer);
    let ours = crypto(&answer_sdp);
    assert_eq!(
        ours.iter().map(|c| (c.tag, c.suite)).collect::<Vec<_>>(),
        [(3, SrtpSuite::F8_128HmacSha1_80)]
    );
    let mut call = F8Call {
        sdes_dest: (answer_sdp.audio_addr(), rtcp_addr(&answer_sdp)),
        plain_dest: (offer_sdp.audio_addr(), rtcp_addr(&offer_sdp)),
        sdes: a,
        plain: b,
        tx: CryptoAttr::parse(&line[9..]).unwrap().context().unwrap(),
        rx: ours[0].context().unwrap(),
        suite: SrtpSuite::F8_128HmacSha1_80,
        _daemon: daemon,
    };
    call.rtp_both_ways(1..30);
    call.rtcp_both_ways();
}
