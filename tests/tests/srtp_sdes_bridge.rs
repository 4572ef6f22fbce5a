//! SDES-SRTP ↔ plain RTP through the daemon, with a test peer doing real SRTP (the engine's
//! own SRTP module builds and checks the packets; the daemon runs as a separate process).
//! Tampered and replayed SRTP is dropped and counted as stream errors.

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint, Sdp, Value};

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key + salt of the SRTP party ("1234567890123456" + "78901234567890").
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
const WAIT: Duration = Duration::from_secs(2);

fn sdp(ep: &RtpEndpoint, proto: &str, extra: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ep.port()
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

fn peer_ctx() -> SrtpContext {
    CryptoAttr::parse(&format!("1 {SUITE} inline:{PEER_KEY}"))
        .unwrap()
        .context()
        .unwrap()
}

fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect();
    rtp_packet(0, seq, 160 * seq as u32, ssrc, &payload)
}

fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 16, 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Vec<u8> {
    let mut buf = srtp.to_vec();
    let n = ctx
        .unprotect_rtp(&mut buf)
        .expect("SRTP from the engine authenticates");
    buf.truncate(n);
    buf
}

/// Errors counted on the streams facing `tag`.
fn errors(ng: &NgClient, call: &str, tag: &str) -> i64 {
    let reply = ng.query(call).unwrap();
    let medias = reply
        .path(&["tags", tag, "medias"])
        .and_then(Value::as_list)
        .unwrap();
    medias
        .iter()
        .flat_map(|m| m.get("streams").and_then(Value::as_list).unwrap())
        .map(|s| {
            s.path(&["stats", "errors"])
                .and_then(Value::as_int)
                .unwrap()
        })
        .sum()
}

struct Bridge {
    ng: NgClient,
    _daemon: Daemon,
    call: String,
    /// The SRTP party and the plain party.
    srtp: RtpEndpoint,
    plain: RtpEndpoint,
    srtp_dest: SocketAddr,
    plain_dest: SocketAddr,
    /// Our context for what the SRTP party sends, and one to check what the engine sends it.
    tx: SrtpContext,
    rx: SrtpContext,
    srtp_tag: String,
    /// Our key towards the SRTP party, as first signalled.
    our_key: Vec<u8>,
}

/// Caller offers RTP/SAVP with one a=crypto line; the callee is plain RTP/AVP.
fn sdes_caller_plain_callee(call: &str) -> Bridge {
    sdes_caller_plain_callee_on(call, "auto")
}

/// The same on a chosen IO backend (`NGMEDIA_IO_BACKEND`: `auto` is io_uring where the kernel
/// has it, `epoll` the fallback).
fn sdes_caller_plain_callee_on(call: &str, backend: &str) -> Bridge {
    let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), RtpEndpoint::new(0xb2));
    let line = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "A",
        "sdp" => sdp(&a, "RTP/SAVP", std::slice::from_ref(&line)), "ICE" => "remove",
        "transport-protocol" => "RTP/AVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert_eq!(offer_sdp.audio().proto, "RTP/AVP");
    assert!(crypto(&offer_sdp).is_empty(), "plain callee got a=crypto");
    let answer = ng.answer(call, "A", "B", &sdp(&b, "RTP/AVP", &[]));
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/SAVP");
    let ours = crypto(&answer_sdp);
    assert_eq!(
        ours.len(),
        1,
        "one a=crypto line in the answer to the SDES caller"
    );
    assert_eq!(
        (ours[0].tag, ours[0].suite),
        (1, SrtpSuite::AesCm128HmacSha1_80)
    );
    assert_ne!(
        ours[0].key_salt,
        CryptoAttr::parse(&line[9..]).unwrap().key_salt
    );
    Bridge {
        call: call.into(),
        srtp_dest: answer_sdp.audio_addr(),
        plain_dest: offer_sdp.audio_addr(),
        srtp: a,
        plain: b,
        tx: peer_ctx(),
        rx: ours[0].context().unwrap(),
        our_key: ours[0].key_salt.clone(),
        srtp_tag: "A".into(),
        ng,
        _daemon: daemon,
    }
}

/// Both directions carry the same plaintext end to end.
fn check_both_ways(br: &mut Bridge, seqs: std::ops::Range<u16>) {
    for seq in seqs {
        let plain = packet(seq, 0x5a5a);
        br.srtp
            .sock
            .send_to(&protect(&mut br.tx, &plain), br.srtp_dest)
            .unwrap();
        let (got, _) = br
            .plain
            .recv(WAIT)
            .expect("decrypted RTP reaches the plain side");
        assert_eq!(
            got, plain,
            "plain side gets exactly the SRTP party's plaintext"
        );

        let back = packet(seq, 0x6b6b);
        br.plain.sock.send_to(&back, br.plain_dest).unwrap();
        let (srtp, _) = br.srtp.recv(WAIT).expect("SRTP reaches the SRTP side");
        assert_eq!(srtp.len(), back.len() + 10, "80-bit tag appended");
        assert_ne!(srtp[12..back.len()], back[12..], "payload is encrypted");
        assert_eq!(unprotect(&mut br.rx, &srtp), back);
    }
}

#[test]
fn sdes_caller_to_plain_callee_both_ways() {
    let mut br = sdes_caller_plain_callee("sdes-to-plain");
    check_both_ways(&mut br, 1..20);
    // SRTCP from the SRTP party authenticates (counted as RTCP, no error).
    let rtcp_plain = {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&0x5a5au32.to_be_bytes());
        p.extend_from_slice(&[7u8; 20]);
        p
    };
    let mut buf = rtcp_plain.clone();
    buf.resize(rtcp_plain.len() + 14, 0);
    let n = br.tx.protect_rtcp(&mut buf, rtcp_plain.len()).unwrap();
    let rtcp_dest = SocketAddr::new(br.srtp_dest.ip(), br.srtp_dest.port() + 1);
    br.srtp.sock.send_to(&buf[..n], rtcp_dest).unwrap();
    let rtcp = wait_for(WAIT, || {
        let reply = br.ng.query(&br.call).ok()?;
        let medias = reply.path(&["tags", "A", "medias"])?.as_list()?;
        let streams = medias[0].get("streams")?.as_list()?;
        // The second stream is the RTCP socket.
        let p = streams.get(1)?.path(&["stats", "packets"])?.as_int()?;
        (p == 1).then_some(())
    });
    assert!(
        rtcp.is_some(),
        "SRTCP packet not counted: {:?}",
        br.ng
            .query(&br.call)
            .unwrap()
            .path(&["tags", "A", "medias"])
    );
    assert_eq!(errors(&br.ng, &br.call, &br.srtp_tag), 0);
}

#[test]
fn plain_caller_to_sdes_callee_both_ways() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1), RtpEndpoint::new(0xb2));
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "plain-to-sdes", "from-tag" => "A",
        "sdp" => sdp(&a, "RTP/AVP", &[]), "ICE" => "remove", "transport-protocol" => "RTP/SAVP",
    });
    let offer_sdp = parse_reply_sdp(&offer);
    assert_eq!(offer_sdp.audio().proto, "RTP/SAVP");
    let offered = crypto(&offer_sdp);
    let suites: Vec<SrtpSuite> = offered.iter().map(|c| c.suite).collect();
    assert_eq!(suites, SrtpSuite::ALL);
    let ours = offered
        .iter()
        .find(|c| c.suite == SrtpSuite::AesCm128HmacSha1_80)
        .unwrap();
    let line = format!("a=crypto:{} {SUITE} inline:{PEER_KEY}", ours.tag);
    let answer = ng.answer("plain-to-sdes", "A", "B", &sdp(&b, "RTP/SAVP", &[line]));
    let answer_sdp = parse_reply_sdp(&answer);
    assert_eq!(answer_sdp.audio().proto, "RTP/AVP");
    assert!(crypto(&answer_sdp).is_empty());
    let mut br = Bridge {
        call: "plain-to-sdes".into(),
        srtp_dest: offer_sdp.audio_addr(),
        plain_dest: answer_sdp.audio_addr(),
        srtp: b,
        plain: a,
        tx: peer_ctx(),
        rx: ours.context().unwrap(),
        our_key: ours.key_salt.clone(),
        srtp_tag: "B".into(),
        ng,
        _daemon: daemon,
    };
    check_both_ways(&mut br, 100..120);
}

#[test]
fn tampered_and_replayed_srtp_is_dropped_and_counted() {
    tamper_and_replay("auto");
}

#[test]
fn tampered_and_replayed_srtp_is_dropped_and_counted_on_epoll() {
    tamper_and_replay("epoll");
}

#[test]
fn sdes_to_plain_on_epoll() {
    let mut br = sdes_caller_plain_callee_on("sdes-epoll", "epoll");
    check_both_ways(&mut br, 1..20);
}

fn tamper_and_replay(backend: &str) {
    let mut br = sdes_caller_plain_callee_on("sdes-tamper", backend);
    check_both_ways(&mut br, 1..5);
    assert_eq!(errors(&br.ng, &br.call, "A"), 0);

    // A replay of a packet already relayed, and three packets with a flipped tag bit,
    // a flipped payload bit and plain RTP instead of SRTP.
    let fresh = protect(&mut br.tx, &packet(5, 0x5a5a));
    br.srtp.sock.send_to(&fresh, br.srtp_dest).unwrap();
    assert!(br.plain.recv(WAIT).is_some());
    br.srtp.sock.send_to(&fresh, br.srtp_dest).unwrap();
    let mut bad_tag = protect(&mut br.tx, &packet(6, 0x5a5a));
    let last = bad_tag.len() - 1;
    bad_tag[last] ^= 0x01;
    br.srtp.sock.send_to(&bad_tag, br.srtp_dest).unwrap();
    let mut bad_body = protect(&mut br.tx, &packet(7, 0x5a5a));
    bad_body[40] ^= 0x80;
    br.srtp.sock.send_to(&bad_body, br.srtp_dest).unwrap();
    br.srtp
        .sock
        .send_to(&packet(8, 0x5a5a), br.srtp_dest)
        .unwrap();
    assert!(
        br.plain.recv(Duration::from_millis(300)).is_none(),
        "a bad packet was relayed"
    );
    let counted = wait_for(WAIT, || (errors(&br.ng, &br.call, "A") == 4).then_some(()));
    assert!(
        counted.is_some(),
        "errors = {}",
        errors(&br.ng, &br.call, "A")
    );

    // The stream is unharmed: the next genuine packet still goes through.
    let plain = packet(9, 0x5a5a);
    br.srtp
        .sock
        .send_to(&protect(&mut br.tx, &plain), br.srtp_dest)
        .unwrap();
    assert_eq!(br.plain.recv(WAIT).map(|p| p.0), Some(plain));

    // The daemon-wide counters name the reasons.
    let http = br._daemon.http_client();
    let metrics = http.metrics();
    let drops = |reason: &str| {
        ngmedia_tests::http::metric(
            &metrics,
            &format!("ngmedia_packet_drops_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(drops("srtp_replay"), Some(1.0), "{metrics}");
    assert_eq!(drops("srtp_auth"), Some(3.0), "{metrics}");
}

#[test]
fn unchanged_reinvite_keeps_keys_and_media_flows() {
    let mut br = sdes_caller_plain_callee("sdes-reinvite");
    check_both_ways(&mut br, 1..5);
    let line = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}");
    let reoffer = br.ng.ok(dict! {
        "command" => "offer", "call-id" => "sdes-reinvite", "from-tag" => "A", "to-tag" => "B",
        "sdp" => sdp(&br.srtp, "RTP/SAVP", &[line]), "ICE" => "remove",
        "transport-protocol" => "RTP/AVP",
    });
    assert!(crypto(&parse_reply_sdp(&reoffer)).is_empty());
    let answer = br
        .ng
        .answer("sdes-reinvite", "A", "B", &sdp(&br.plain, "RTP/AVP", &[]));
    let ours = crypto(&parse_reply_sdp(&answer));
    assert_eq!(ours.len(), 1);
    assert_eq!(
        ours[0].key_salt, br.our_key,
        "our key changed on an unchanged re-INVITE"
    );
    // The engine's SRTP state (ROC, replay window) survived: the stream continues.
    check_both_ways(&mut br, 5..10);
}
