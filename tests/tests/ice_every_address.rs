//! ICE on every address of the interface, as rtpengine does: started with two addresses of
//! one logical interface (`--interface 127.0.0.1 --interface ::1`), the daemon offers a host
//! candidate per address and component (IPv4 first for an IPv4 party, priorities counting
//! down per address, one 16-character foundation per address), with a socket really bound
//! on each. A party that checks and nominates the IPv6 candidate gets its STUN answers and
//! its media through the IPv6 socket, in both directions.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_engine::core::stun::{
    write_binding_request, BindingRequestParams, IceRole, StunClass, StunMessage,
};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, RtpEndpoint};

const WAIT: Duration = Duration::from_secs(2);

/// `a=candidate:` values of the audio section, split into fields.
fn candidates(sdp: &ngmedia_tests::sdp::Sdp) -> Vec<Vec<String>> {
    sdp.audio()
        .attributes
        .iter()
        .filter_map(|a| a.strip_prefix("candidate:"))
        .map(|v| v.split(' ').map(str::to_owned).collect())
        .collect()
}

/// The next datagram on `sock` that satisfies `want`.
fn recv_where(sock: &UdpSocket, want: impl Fn(&[u8]) -> bool) -> (Vec<u8>, SocketAddr) {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = sock
            .recv_from(&mut buf)
            .expect("a datagram from the daemon");
        if want(&buf[..n]) {
            return (buf[..n].to_vec(), from);
        }
    }
}

#[test]
fn candidates_on_both_addresses_and_the_ipv6_one_carries_checks_and_media() {
    for backend in ["auto", "epoll"] {
        let daemon =
            Daemon::start_with_env(&["--interface", "::1"], &[("NGMEDIA_IO_BACKEND", backend)]);
        let ng = daemon.client();
        let mut a = RtpEndpoint::new(0xa1);
        let b4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b6 = UdpSocket::bind("[::1]:0").unwrap();
        let call = format!("every-address-{backend}");
        let offer = ng.ok(dict! {
            "command" => "offer", "call-id" => call.as_str(), "from-tag" => "A",
            "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"), "ICE" => "force",
        });
        let to_b = parse_reply_sdp(&offer);
        let c = candidates(&to_b);
        let shape: Vec<String> = c
            .iter()
            .map(|f| format!("{} {} {} {}", f[1], f[2], f[3], f[4]))
            .collect();
        assert_eq!(
            shape,
            [
                "1 UDP 2130706431 127.0.0.1",
                "1 UDP 2130706175 ::1",
                "2 UDP 2130706430 127.0.0.1",
                "2 UDP 2130706174 ::1",
            ],
            "{backend}"
        );
        for f in &c {
            assert!(f[0].len() == 16 && f[0].bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_eq!(c[0][0], c[2][0], "{backend}: one foundation per address");
        assert_ne!(
            c[0][0], c[1][0],
            "{backend}: addresses differ in foundation"
        );
        // The IPv4 candidate is the m= line's port; the IPv6 one is a socket of its own.
        assert_eq!(c[0][5].parse::<u16>().unwrap(), to_b.audio_addr().port());
        let v6_rtp: SocketAddr = format!("[::1]:{}", c[1][5]).parse().unwrap();
        let ufrag = to_b
            .audio()
            .attributes
            .iter()
            .find_map(|x| x.strip_prefix("ice-ufrag:"))
            .unwrap()
            .to_owned();
        let pwd = to_b
            .audio()
            .attributes
            .iter()
            .find_map(|x| x.strip_prefix("ice-pwd:"))
            .unwrap()
            .to_owned();

        // B answers without ICE of its own (we are then only answering its checks).
        let b4_addr = b4.local_addr().unwrap();
        let answer = ng.ok(dict! {
            "command" => "answer", "call-id" => call.as_str(), "from-tag" => "A", "to-tag" => "B",
            "sdp" => audio_sdp(b4_addr.ip(), b4_addr.port(), 1, "sendrecv"),
        });
        let a_dest = parse_reply_sdp(&answer).audio_addr();

        // B checks the IPv6 candidate and nominates it: answered from that socket.
        let user = format!("{ufrag}:peer");
        let params = BindingRequestParams {
            username: user.as_bytes(),
            key: pwd.as_bytes(),
            priority: 0x6e00_ffff,
            role: IceRole::Controlling(9),
            use_candidate: true,
            software: None,
        };
        let mut buf = [0u8; 512];
        let n = write_binding_request(&mut buf, &[6; 12], &params, 0).unwrap();
        b6.send_to(&buf[..n], v6_rtp).unwrap();
        let (resp, from) = recv_where(&b6, |p| p.len() >= 20 && p[0] == 0x01);
        assert_eq!(
            from, v6_rtp,
            "{backend}: the answer comes from the IPv6 socket"
        );
        let msg = StunMessage::parse(&resp).unwrap();
        assert_eq!(msg.class, StunClass::Success, "{backend}");
        assert_eq!(msg.transaction_id, [6; 12]);
        msg.verify_integrity(pwd.as_bytes()).unwrap();

        // A's media now reaches B over IPv6, out of the IPv6 socket.
        let sent = a.send_next(a_dest);
        let (got, from) = recv_where(&b6, |p| p.first().is_some_and(|b| *b >= 0x80));
        assert_eq!(got, sent, "{backend}");
        assert_eq!(from, v6_rtp, "{backend}");
        // And B's media sent to the IPv6 address reaches A.
        let pkt = rtp_packet(0, 7, 160, 0xb6, &[0x55; 160]);
        b6.send_to(&pkt, v6_rtp).unwrap();
        let (got, _) = a.recv(WAIT).expect("B's media over IPv6 reaches A");
        assert_eq!(got, pkt, "{backend}");
    }
}
