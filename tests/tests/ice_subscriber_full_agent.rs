//! ICE toward a subscriber (`subscribe request` with `ICE=force`), as rtpengine does it:
//! the offer to the subscriber has no `a=ice-lite`, and once the subscriber answers with
//! its own ICE the daemon checks the subscriber's candidate itself, as the controlled agent
//! (rtpengine takes the controlling role only toward the receiver of an offer), while the
//! copies already flow to the address of its SDP. The subscriber verifies the checks with
//! the engine's sans-IO STUN module. A subscriber that answers as the controlled agent too
//! meets RFC 8445's role-conflict rule, as with rtpengine: the larger tie-breaker controls.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_engine::core::stun::{
    attr, write_binding_request, BindingRequestParams, IceRole, StunClass, StunMessage,
};
use ngmedia_tests::call::{parse_reply_sdp, TwoPartyCall};
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon};

const WAIT: Duration = Duration::from_secs(2);
const SUB_UFRAG: &str = "q2758e93";
const SUB_PWD: &str = "bd5e845657ecb8d6dd8e1bc6";

/// A datagram and where it came from.
type Datagram = (Vec<u8>, SocketAddr);

/// The next STUN message on `sock` (RTP copies are skipped).
fn next_stun(sock: &UdpSocket) -> Vec<u8> {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 1500];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a STUN message");
        if n >= 20 && buf[0] < 2 && buf[4..8] == [0x21, 0x12, 0xa4, 0x42] {
            return buf[..n].to_vec();
        }
    }
}

/// The next STUN request and the next RTP packet on `sock`, within [`WAIT`].
fn check_and_copy(sock: &UdpSocket) -> (Option<Vec<u8>>, Option<Datagram>) {
    let deadline = Instant::now() + WAIT;
    let (mut check, mut copy) = (None, None);
    let mut buf = [0u8; 1500];
    while check.is_none() || copy.is_none() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            break;
        };
        if n >= 20 && buf[0] < 2 && buf[4..8] == [0x21, 0x12, 0xa4, 0x42] {
            check.get_or_insert_with(|| buf[..n].to_vec());
        } else if n >= 12 && buf[0] >> 6 == 2 {
            copy.get_or_insert_with(|| (buf[..n].to_vec(), from));
        }
    }
    (check, copy)
}

#[test]
fn the_daemon_checks_an_ice_subscriber_as_the_controlled_agent() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "ice-sub");
    call.exchange(1, Duration::from_millis(5));
    call.a.recv_many(1, Duration::from_secs(1));
    call.b.recv_many(1, Duration::from_secs(1));

    let reply = ng.ok(dict! {
        "command" => "subscribe request", "call-id" => "ice-sub",
        "from-tag" => call.from_tag.as_str(), "ICE" => "force",
    });
    let text = reply.str_at("sdp").unwrap().to_owned();
    assert!(!text.contains("a=ice-lite"), "a full agent: {text}");
    let offer = parse_reply_sdp(&reply);
    let c_src = offer.audio_addr();
    let our_ufrag = offer
        .audio()
        .attributes
        .iter()
        .find_map(|x| x.strip_prefix("ice-ufrag:"))
        .expect("our ICE credentials")
        .to_owned();
    let to_tag = reply.str_at("to-tag").unwrap().to_owned();

    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c_addr = c.local_addr().unwrap();
    let sdp = format!(
        "{}a=ice-ufrag:{SUB_UFRAG}\r\na=ice-pwd:{SUB_PWD}\r\n\
         a=candidate:1 1 UDP 2130706431 {} {} typ host\r\n",
        audio_sdp(c_addr.ip(), c_addr.port(), 1, "recvonly"),
        c_addr.ip(),
        c_addr.port()
    );
    ng.ok(dict! {
        "command" => "subscribe answer", "call-id" => "ice-sub",
        "to-tag" => to_tag.as_str(), "sdp" => sdp,
    });
    let sent = call.a.send_next(call.a_dest);
    let (check, copy) = check_and_copy(&c);

    let pkt = check.expect("a connectivity check toward the subscriber");
    let msg = StunMessage::parse(&pkt).unwrap();
    assert_eq!(msg.class, StunClass::Request);
    let user = format!("{SUB_UFRAG}:{our_ufrag}");
    assert_eq!(msg.username, Some(user.as_bytes()));
    msg.verify_integrity(SUB_PWD.as_bytes()).unwrap();
    assert!(
        matches!(msg.role, Some(IceRole::Controlled(_))),
        "{:?}",
        msg.role
    );
    // rtpengine's attribute order: SOFTWARE, USERNAME, the role, PRIORITY.
    assert_eq!(u16::from_be_bytes([pkt[20], pkt[21]]), attr::SOFTWARE);
    let (copy, from) = copy.expect("the copy before ICE completes");
    assert_eq!(copy, sent);
    assert_eq!(from, c_src);

    // The subscriber claims the controlled role as well, with a larger tie-breaker: 487,
    // and it is the one to switch.
    let our_pwd = offer
        .audio()
        .attributes
        .iter()
        .find_map(|x| x.strip_prefix("ice-pwd:"))
        .unwrap()
        .to_owned();
    let user = format!("{our_ufrag}:{SUB_UFRAG}");
    let mut buf = [0u8; 512];
    let check = |tid: [u8; 12], role: IceRole, buf: &mut [u8]| {
        let params = BindingRequestParams {
            username: user.as_bytes(),
            key: our_pwd.as_bytes(),
            priority: 0x6e00_ffff,
            role,
            use_candidate: false,
            software: None,
        };
        let n = write_binding_request(buf, &tid, &params, 0).unwrap();
        c.send_to(&buf[..n], c_src).unwrap();
    };
    let reply_to = |tid: [u8; 12]| loop {
        let bytes = next_stun(&c);
        let msg = StunMessage::parse(&bytes).unwrap();
        if msg.class != StunClass::Request && msg.transaction_id == tid {
            return (msg.class, msg.error_code.map(|e| e.0));
        }
    };
    check([1; 12], IceRole::Controlled(u64::MAX), &mut buf);
    assert_eq!(reply_to([1; 12]), (StunClass::Error, Some(487)));
    // With a smaller one, the daemon takes control: success, and its checks say so.
    check([2; 12], IceRole::Controlled(0), &mut buf);
    assert_eq!(reply_to([2; 12]), (StunClass::Success, None));
    let next = loop {
        let bytes = next_stun(&c);
        let msg = StunMessage::parse(&bytes).unwrap();
        if msg.class == StunClass::Request {
            break msg.role;
        }
    };
    assert!(matches!(next, Some(IceRole::Controlling(_))), "{next:?}");
}
