//! ICE answers: with `ICE: force` the daemon writes its ufrag/pwd (toward plain RTP without
//! `a=ice-lite`, as rtpengine: it is a full agent there, see `full_ice_triggered_checks`), answers
//! STUN Binding checks on the media port (checked with its password, answered from the same
//! socket), refuses checks with the wrong credentials, and moves media to the source of a
//! nominating (USE-CANDIDATE) check. The test peer builds and verifies STUN with the
//! engine's sans-IO STUN module.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_engine::core::stun::{
    write_binding_request, BindingRequestParams, IceRole, StunClass, StunMessage,
};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, RtpEndpoint};

const WAIT: Duration = Duration::from_secs(2);

fn check(
    sock: &UdpSocket,
    to: SocketAddr,
    username: &str,
    key: &str,
    nominate: bool,
    tid: u8,
) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let params = BindingRequestParams {
        username: username.as_bytes(),
        key: key.as_bytes(),
        priority: 0x6e00_01ff,
        role: IceRole::Controlling(0x1234_5678_9abc_def0),
        use_candidate: nominate,
        software: None,
    };
    let n = write_binding_request(&mut buf, &[tid; 12], &params, 0).unwrap();
    sock.send_to(&buf[..n], to).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut resp = [0u8; 512];
    let (m, from) = sock.recv_from(&mut resp).expect("STUN response");
    assert_eq!(
        from, to,
        "response comes from the media port the check went to"
    );
    resp[..m].to_vec()
}

#[test]
fn ice_lite_answers_checks_and_follows_nomination() {
    for backend in ["auto", "epoll"] {
        let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)]);
        let ng = daemon.client();
        let (mut a, b) = (RtpEndpoint::new(0xa), RtpEndpoint::new(0xb));
        let offer = ng.ok(dict! {
            "command" => "offer", "call-id" => "ice", "from-tag" => "A",
            "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"), "ICE" => "force",
        });
        let text = offer.str_at("sdp").unwrap().to_owned();
        let head = &text[..text.find("m=").unwrap()];
        assert!(!head.contains("a=ice-lite"), "{text}");
        let offer_sdp = parse_reply_sdp(&offer);
        let attr = |name: &str| {
            offer_sdp
                .audio()
                .attributes
                .iter()
                .find_map(|x| x.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let (ufrag, pwd) = (attr("ice-ufrag:"), attr("ice-pwd:"));
        let answer = ng.answer(
            "ice",
            "A",
            "B",
            &audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"),
        );
        let a_dest = parse_reply_sdp(&answer).audio_addr();
        let b_dest = offer_sdp.audio_addr();

        // A good check: success with our address, integrity keyed with the daemon's pwd.
        let user = format!("{ufrag}:peer");
        let resp = check(&b.sock, b_dest, &user, &pwd, false, 1);
        let msg = StunMessage::parse(&resp).unwrap();
        assert_eq!(msg.class, StunClass::Success);
        assert_eq!(msg.transaction_id, [1; 12]);
        assert_eq!(msg.xor_mapped_address, Some(b.addr()));
        assert!(msg.has_fingerprint);
        msg.verify_integrity(pwd.as_bytes()).unwrap();

        // Wrong password: 401, not authenticated.
        let resp = check(&b.sock, b_dest, &user, "not-the-password", false, 2);
        let msg = StunMessage::parse(&resp).unwrap();
        assert_eq!(msg.class, StunClass::Error);
        assert_eq!(msg.error_code.map(|e| e.0), Some(401));

        // Media from A reaches B at its signalled address...
        a.send_next(a_dest);
        assert!(b.recv(WAIT).is_some(), "{backend}: relay before nomination");
        // ...until a check from another address nominates that one.
        let moved = UdpSocket::bind("127.0.0.1:0").unwrap();
        let resp = check(&moved, b_dest, &user, &pwd, true, 3);
        assert_eq!(StunMessage::parse(&resp).unwrap().class, StunClass::Success);
        let sent = a.send_next(a_dest);
        moved.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = moved
            .recv_from(&mut buf)
            .expect("media follows the nominated pair");
        assert_eq!(&buf[..n], &sent[..], "{backend}");
    }
}
