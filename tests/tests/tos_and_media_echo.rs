//! `TOS` / `--tos` mark what the engine sends (read on the receiving socket with
//! `IP_RECVTOS`), and `media echo` reflects or drops real RTP as rtpengine does.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::{rtp_packet, RtpEndpoint};
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{Daemon, NgClient, Value};

fn request(pairs: Vec<(&str, Value)>) -> Value {
    Value::Dict(
        pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// Offer from A (with `extra` keys) and answer from B; the engine addresses A and B send to.
fn call(
    ng: &NgClient,
    id: &str,
    a: SocketAddr,
    b: SocketAddr,
    extra: Vec<(&str, Value)>,
) -> (SocketAddr, SocketAddr) {
    let mut offer = vec![
        ("command", Value::from("offer")),
        ("call-id", Value::from(id)),
        ("from-tag", Value::from("a")),
        (
            "sdp",
            Value::from(audio_sdp(a.ip(), a.port(), 1, "sendrecv")),
        ),
        ("ICE", Value::from("remove")),
    ];
    offer.extend(extra);
    let to_b = parse_reply_sdp(&ng.ok(request(offer))).audio_addr();
    let to_a =
        parse_reply_sdp(&ng.answer(id, "a", "b", &audio_sdp(b.ip(), b.port(), 1, "sendrecv")))
            .audio_addr();
    (to_a, to_b)
}

/// A UDP socket that reports the TOS byte of what it receives.
struct TosReceiver {
    sock: UdpSocket,
}

impl TosReceiver {
    fn new() -> TosReceiver {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let on: libc::c_int = 1;
        // SAFETY: plain setsockopt on a live socket with a c_int option value.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVTOS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "IP_RECVTOS");
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        TosReceiver { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// The TOS byte of the next datagram, `None` when none arrives.
    fn recv_tos(&self) -> Option<u8> {
        let mut buf = [0u8; 2048];
        let mut cmsg = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr is a valid "empty" value; we fill the pointers below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg);
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(self.sock.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return None;
        }
        // SAFETY: walking the control buffer the kernel filled, with libc's macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TOS {
                    return Some(*libc::CMSG_DATA(c));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Some(0)
    }
}

fn packet(seq: u16) -> Vec<u8> {
    rtp_packet(0, seq, u32::from(seq) * 160, 0x1234_5678, &[0xff; 160])
}

#[test]
fn tos_key_and_option_mark_media() {
    let daemon = Daemon::start(&["--tos", "40"]);
    let ng = daemon.client();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = TosReceiver::new();

    // The TOS of the offer (184 = EF), for the whole call.
    let (to_a, _) = call(
        &ng,
        "tos-1",
        a.local_addr().unwrap(),
        b.addr(),
        vec![("TOS", Value::from(184i64))],
    );
    // A's packets reach B through the socket facing B, marked.
    a.send_to(&packet(1), to_a).unwrap();
    assert_eq!(b.recv_tos(), Some(184));

    // A re-offer without TOS goes back to `--tos`.
    let reoffer = request(vec![
        ("command", Value::from("offer")),
        ("call-id", Value::from("tos-1")),
        ("from-tag", Value::from("a")),
        ("to-tag", Value::from("b")),
        (
            "sdp",
            Value::from(audio_sdp(
                a.local_addr().unwrap().ip(),
                a.local_addr().unwrap().port(),
                2,
                "sendrecv",
            )),
        ),
        ("ICE", Value::from("remove")),
    ]);
    ng.ok(reoffer);
    a.send_to(&packet(2), to_a).unwrap();
    assert_eq!(b.recv_tos(), Some(40));

    // The key through rtpp-flags works the same.
    let a2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b2 = TosReceiver::new();
    let (to_a2, _) = call(
        &ng,
        "tos-2",
        a2.local_addr().unwrap(),
        b2.addr(),
        vec![("rtpp-flags", Value::from("TOS=104"))],
    );
    a2.send_to(&packet(1), to_a2).unwrap();
    assert_eq!(b2.recv_tos(), Some(104));
}

/// Offer with `media-echo: mode`, then one packet from each side; what each side got back.
fn echo_case(ng: &NgClient, id: &str, mode: Option<&str>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut a = RtpEndpoint::new(0xa000_0001);
    let mut b = RtpEndpoint::new(0xb000_0002);
    let extra = mode
        .map(|m| vec![("media-echo", Value::from(m))])
        .unwrap_or_default();
    let (to_a, to_b) = call(ng, id, a.addr(), b.addr(), extra);
    let sent_a = a.send_next(to_a);
    let sent_b = b.send_next(to_b);
    let wait = Duration::from_millis(400);
    let got_a = a.recv(wait).map(|(p, _)| p);
    let got_b = b.recv(wait).map(|(p, _)| p);
    // Whatever came back: was it the side's own packet or the other's?
    let classify = |got: Option<Vec<u8>>| {
        got.map(|p| {
            if p[12..] == sent_a[12..] {
                b"A".to_vec()
            } else if p[12..] == sent_b[12..] {
                b"B".to_vec()
            } else {
                p
            }
        })
    };
    (classify(got_a), classify(got_b))
}

#[test]
fn media_echo_modes() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    // Without the key, media crosses as usual.
    assert_eq!(
        echo_case(&ng, "echo-none", None),
        (Some(b"B".to_vec()), Some(b"A".to_vec()))
    );
    // forward: the answerer hears itself, the offerer's media is dropped.
    assert_eq!(
        echo_case(&ng, "echo-fw", Some("fw")),
        (None, Some(b"B".to_vec()))
    );
    // backward: the offerer hears itself.
    assert_eq!(
        echo_case(&ng, "echo-bk", Some("backwards")),
        (Some(b"A".to_vec()), None)
    );
    assert_eq!(
        echo_case(&ng, "echo-both", Some("both")),
        (Some(b"A".to_vec()), Some(b"B".to_vec()))
    );
    assert_eq!(echo_case(&ng, "echo-bh", Some("blackhole")), (None, None));
    // Dropped packets are still counted.
    let q = ng.query("echo-bh").unwrap();
    let rtp = q.get("totals").and_then(|t| t.get("RTP")).unwrap();
    assert!(
        matches!(rtp.get("packets"), Some(Value::Int(n)) if *n >= 2),
        "{q:?}"
    );
}

#[test]
fn media_echo_value_is_checked() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = request(vec![
        ("command", Value::from("offer")),
        ("call-id", Value::from("echo-bad")),
        ("from-tag", Value::from("a")),
        (
            "sdp",
            Value::from(audio_sdp(
                a.local_addr().unwrap().ip(),
                a.local_addr().unwrap().port(),
                1,
                "sendrecv",
            )),
        ),
        ("media-echo", Value::from("sideways")),
    ]);
    let reply = ng.ok(offer);
    assert!(
        reply
            .str_at("warning")
            .is_some_and(|w| w.contains("sideways")),
        "{reply:?}"
    );
    let _ = b;
}
