//! Full ICE toward a full-ICE peer that is not a browser (rtpengine's default): the daemon
//! writes no `a=ice-lite`, checks the peer's candidates itself, answers a check from an
//! address it never heard of (the peer behind a NAT) with a triggered check back to it,
//! and moves media to that address once the controlling peer nominates it. The test peer
//! builds and verifies STUN with the engine's sans-IO STUN module.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_engine::core::stun::{
    attr, write_binding_request, write_binding_success, BindingRequestParams, IceRole, StunClass,
    StunMessage,
};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, RtpEndpoint};

const WAIT: Duration = Duration::from_secs(2);
const PEER_UFRAG: &str = "q27e93";
const PEER_PWD: &str = "bd5e8b8d6dd8e1bc6";

/// Next STUN message on `sock` (RTP/RTCP from the relay is skipped).
fn next_stun(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = sock.recv_from(&mut buf).expect("a STUN message");
        if n >= 20 && buf[0] < 2 && buf[4..8] == [0x21, 0x12, 0xa4, 0x42] {
            return (buf[..n].to_vec(), from);
        }
    }
}

fn assert_our_check(pkt: &[u8], our_ufrag: &str) -> [u8; 12] {
    let msg = StunMessage::parse(pkt).unwrap();
    assert_eq!(msg.class, StunClass::Request);
    // SOFTWARE first, as rtpengine sends it.
    assert_eq!(u16::from_be_bytes([pkt[20], pkt[21]]), attr::SOFTWARE);
    assert!(pkt[24..].starts_with(b"rtpengine"));
    let user = format!("{PEER_UFRAG}:{our_ufrag}");
    assert_eq!(msg.username, Some(user.as_bytes()));
    msg.verify_integrity(PEER_PWD.as_bytes()).unwrap();
    msg.transaction_id
}

#[test]
fn triggered_check_reaches_a_peer_behind_nat() {
    for backend in ["auto", "epoll"] {
        let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)]);
        let ng = daemon.client();
        let (host, mut b) = (RtpEndpoint::new(0xa), RtpEndpoint::new(0xb));
        let nat = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A does full ICE (no a=ice-lite) and offers one host candidate.
        let ip = host.addr().ip();
        let a_sdp = format!(
            "{}a=ice-ufrag:{PEER_UFRAG}\r\na=ice-pwd:{PEER_PWD}\r\n\
             a=candidate:1 1 UDP 2130706303 {ip} {} typ host\r\n",
            audio_sdp(ip, host.port(), 1, "sendrecv"),
            host.port()
        );
        let offer = ng.ok(dict! {
            "command" => "offer", "call-id" => "full-ice", "from-tag" => "A",
            "sdp" => a_sdp, "ICE" => "remove",
        });
        let b_dest = parse_reply_sdp(&offer).audio_addr();
        let answer = ng.ok(dict! {
            "command" => "answer", "call-id" => "full-ice", "from-tag" => "A", "to-tag" => "B",
            "sdp" => audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"),
        });
        let text = answer.str_at("sdp").unwrap().to_owned();
        assert!(
            !text.contains("a=ice-lite"),
            "{backend}: full agent: {text}"
        );
        let sdp = parse_reply_sdp(&answer);
        let a_dest = sdp.audio_addr();
        let attr_of = |name: &str| {
            sdp.audio()
                .attributes
                .iter()
                .find_map(|x| x.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let (ufrag, pwd) = (attr_of("ice-ufrag:"), attr_of("ice-pwd:"));

        // The daemon checks A's host candidate on its own (nobody answers it).
        let (pkt, from) = next_stun(&host.sock);
        assert_eq!(from, a_dest, "{backend}: checks leave from the media port");
        assert_our_check(&pkt, &ufrag);

        // A's check arrives from its NAT binding instead: success, and a triggered check
        // back to that address.
        let mut buf = [0u8; 512];
        let user = format!("{ufrag}:{PEER_UFRAG}");
        let params = BindingRequestParams {
            username: user.as_bytes(),
            key: pwd.as_bytes(),
            priority: 0x6e00_ffff,
            role: IceRole::Controlling(7),
            use_candidate: false,
            software: None,
        };
        let n = write_binding_request(&mut buf, &[1; 12], &params, 0).unwrap();
        nat.send_to(&buf[..n], a_dest).unwrap();
        let (mut got_success, mut trig) = (false, None);
        while !(got_success && trig.is_some()) {
            let (pkt, from) = next_stun(&nat);
            assert_eq!(from, a_dest);
            let msg = StunMessage::parse(&pkt).unwrap();
            match msg.class {
                StunClass::Success => {
                    assert_eq!(msg.transaction_id, [1; 12]);
                    got_success = true;
                }
                StunClass::Request => trig = Some(assert_our_check(&pkt, &ufrag)),
                other => panic!("{backend}: unexpected {other:?}"),
            }
        }
        // The triggered check succeeds; A nominates the pair.
        let n =
            write_binding_success(&mut buf, &trig.unwrap(), a_dest, PEER_PWD.as_bytes()).unwrap();
        nat.send_to(&buf[..n], a_dest).unwrap();
        let params = BindingRequestParams {
            use_candidate: true,
            ..params
        };
        let n = write_binding_request(&mut buf, &[2; 12], &params, 0).unwrap();
        nat.send_to(&buf[..n], a_dest).unwrap();
        loop {
            let (pkt, _) = next_stun(&nat);
            let msg = StunMessage::parse(&pkt).unwrap();
            if msg.class == StunClass::Success && msg.transaction_id == [2; 12] {
                break;
            }
        }
        // Media from B now goes to the NAT address.
        let sent = b.send_next(b_dest);
        nat.set_read_timeout(Some(WAIT)).unwrap();
        let mut rx = [0u8; 2048];
        loop {
            let (n, _) = nat
                .recv_from(&mut rx)
                .expect("media follows the selected pair");
            if rx[0] >= 0x80 {
                assert_eq!(&rx[..n], &sent[..], "{backend}");
                break;
            }
        }
    }
}
