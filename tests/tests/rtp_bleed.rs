//! RTP Bleed, black box: a stranger sending datagrams to a party's media port on the engine
//! must not get the other party's media, whether it sends while the engine still learns the
//! party's address, after the party fell silent, against SRTP or against ICE. The cases that
//! must keep working: a party behind NAT (its source port or address differs from its SDP),
//! a NAT rebinding with `media-handover` or authenticated SRTP, a re-INVITE to a new address,
//! `port latching`, `strict-source` and `asymmetric`. The stranger sends from 127.0.0.2 (any
//! 127/8 address is loopback on Linux); the learning window is rtpengine's 3 s.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::SrtpContext;
use ngmedia_engine::core::stun::{
    write_binding_request, BindingRequestParams, IceRole, StunClass, StunMessage,
};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::http::metric;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, NgClient, RtpEndpoint, Value};

const WAIT: Duration = Duration::from_millis(600);
/// Past rtpengine's 3 s learning window.
const AFTER_WINDOW: Duration = Duration::from_millis(3600);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Someone who is not in the call, on another loopback address.
fn stranger() -> RtpEndpoint {
    let mut s = RtpEndpoint::new(0x0bad_0bad);
    s.sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    s
}

/// A two-party call where B's SDP names `b_sdp` (B's real socket when it equals it, else an
/// address as a NAT would leave it), with `flags` on both offer and answer.
struct Call {
    ng: NgClient,
    id: String,
    a: RtpEndpoint,
    b: RtpEndpoint,
    a_dest: SocketAddr,
    b_dest: SocketAddr,
}

impl Call {
    fn setup(daemon: &Daemon, id: &str, b_sdp: Option<SocketAddr>, flags: &[&str]) -> Call {
        let ng = daemon.client();
        let (a, b) = (RtpEndpoint::new(0xa0a0_0001), RtpEndpoint::new(0xb0b0_0002));
        let flags: Vec<Value> = flags.iter().map(|f| Value::from(*f)).collect();
        let offer = ng.ok(dict! {
            "command" => "offer", "call-id" => id, "from-tag" => "A",
            "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"),
            "flags" => Value::List(flags.clone()),
        });
        let b_sdp = b_sdp.unwrap_or(b.addr());
        let answer = ng.ok(dict! {
            "command" => "answer", "call-id" => id, "from-tag" => "A", "to-tag" => "B",
            "sdp" => audio_sdp(b_sdp.ip(), b_sdp.port(), 1, "sendrecv"),
            "flags" => Value::List(flags),
        });
        Call {
            a_dest: parse_reply_sdp(&answer).audio_addr(),
            b_dest: parse_reply_sdp(&offer).audio_addr(),
            ng,
            id: id.into(),
            a,
            b,
        }
    }
}

/// `from` sends `n` packets to `dest`: how many reach `to`, and how many reach `other`.
fn relay(
    from: &mut RtpEndpoint,
    dest: SocketAddr,
    n: usize,
    to: &RtpEndpoint,
    other: &RtpEndpoint,
) -> (usize, usize) {
    to.drain();
    other.drain();
    for _ in 0..n {
        from.send_next(dest);
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = to.recv_many(n, WAIT).len();
    let stolen = other.drain();
    (got, stolen)
}

/// `n` packets from `who` to `dest`, 5 ms apart.
fn spray(who: &mut RtpEndpoint, dest: SocketAddr, n: usize) {
    for _ in 0..n {
        who.send_next(dest);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn source_mismatch_drops(daemon: &Daemon) -> f64 {
    let text = daemon.http_client().metrics();
    metric(
        &text,
        "ngmedia_packet_drops_total{reason=\"source_mismatch\"}",
    )
    .unwrap_or(0.0)
}

/// The address the engine reports for `tag`'s RTP stream (`query`).
fn endpoint(ng: &NgClient, call: &str, tag: &str) -> Option<String> {
    let reply = ng.query(call).ok()?;
    let medias = reply.path(&["tags", tag, "medias"])?.as_list()?;
    let stream = medias.first()?.get("streams")?.as_list()?.first()?;
    let addr = stream.path(&["endpoint", "address"])?.as_str()?.to_owned();
    let port = stream.path(&["endpoint", "port"])?.as_int()?;
    Some(format!("{addr}:{port}"))
}

#[test]
fn a_stranger_cannot_take_the_media_of_a_silent_party() {
    // B is behind a NAT that rewrote both its address and its port: its SDP names an
    // address it is never seen from, so the engine must learn B from its packets.
    let daemon = Daemon::start(&[]);
    let behind_nat: SocketAddr = "192.168.77.9:40002".parse().unwrap();
    let mut call = Call::setup(&daemon, "bleed-silent", Some(behind_nat), &[]);
    let mut s = stranger();
    // Media flows both ways at the start of the call...
    spray(&mut call.b, call.b_dest, 5);
    let (got, _) = relay(&mut call.a, call.a_dest, 10, &call.b, &s);
    assert_eq!(got, 10, "A's media reaches B's real address");
    // ...then B only listens; after the learning window a stranger sends to B's port.
    std::thread::sleep(AFTER_WINDOW);
    spray(&mut s, call.b_dest, 40);
    let (got, stolen) = relay(&mut call.a, call.a_dest, 20, &call.b, &s);
    assert_eq!(stolen, 0, "A's media went to the stranger");
    assert_eq!(got, 20, "A's media still reaches B");
    assert_eq!(
        endpoint(&call.ng, &call.id, "B").as_deref(),
        Some(call.b.addr().to_string().as_str())
    );
    // Without strict-source the stranger's packets are relayed to A (as by rtpengine), but
    // they are not a reason to send anything its way.
    assert_eq!(source_mismatch_drops(&daemon), 0.0);
}

#[test]
fn strict_source_drops_the_stranger_counts_and_logs_once() {
    let daemon = Daemon::start(&[]);
    let behind_nat: SocketAddr = "192.168.77.9:40002".parse().unwrap();
    let mut call = Call::setup(
        &daemon,
        "bleed-strict",
        Some(behind_nat),
        &["strict-source"],
    );
    let mut s = stranger();
    spray(&mut call.b, call.b_dest, 5);
    std::thread::sleep(AFTER_WINDOW);
    call.a.drain();
    spray(&mut s, call.b_dest, 50);
    assert_eq!(call.a.drain(), 0, "the stranger's packets reached A");
    let (got, stolen) = relay(&mut call.a, call.a_dest, 10, &call.b, &s);
    assert_eq!((got, stolen), (10, 0));
    assert!(
        ngmedia_tests::wait_for(WAIT, || (source_mismatch_drops(&daemon) >= 50.0)
            .then_some(()))
        .is_some(),
        "source_mismatch drops: {}",
        source_mismatch_drops(&daemon)
    );
    // B itself still gets through.
    call.a.drain();
    spray(&mut call.b, call.b_dest, 5);
    assert_eq!(call.a.recv_many(5, WAIT).len(), 5);
    let log = daemon.log_text();
    assert_eq!(
        log.matches("(source_mismatch)").count(),
        1,
        "one log line per stream per minute:\n{log}"
    );
}

#[test]
fn a_stranger_during_learning_loses_to_the_party() {
    // B's NAT kept its address but not its port: B is ranked above any other address.
    let daemon = Daemon::start(&[]);
    let decoy: SocketAddr = SocketAddr::new(LOOPBACK, 9);
    let mut call = Call::setup(&daemon, "bleed-learning", Some(decoy), &[]);
    let mut s = stranger();
    // B's first packet, then the stranger keeps sending through the window.
    spray(&mut call.b, call.b_dest, 1);
    for round in 0..8 {
        spray(&mut s, call.b_dest, 5);
        let (got, stolen) = relay(&mut call.a, call.a_dest, 5, &call.b, &s);
        assert_eq!((got, stolen), (5, 0), "round {round}: A's media left B");
    }
    std::thread::sleep(AFTER_WINDOW);
    spray(&mut s, call.b_dest, 20);
    let (got, stolen) = relay(&mut call.a, call.a_dest, 10, &call.b, &s);
    assert_eq!((got, stolen), (10, 0), "after the window");
}

#[test]
fn the_party_at_its_sdp_address_is_confirmed_at_once() {
    let daemon = Daemon::start(&[]);
    let mut call = Call::setup(&daemon, "bleed-exact", None, &[]);
    let mut s = stranger();
    spray(&mut call.b, call.b_dest, 1);
    spray(&mut s, call.b_dest, 20);
    let (got, stolen) = relay(&mut call.a, call.a_dest, 10, &call.b, &s);
    assert_eq!((got, stolen), (10, 0));
}

// --- SRTP ---

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";

fn savp_sdp(port: u16, crypto: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n{crypto}\r\n"
    )
}

fn srtp(ctx: &mut SrtpContext, seq: u16) -> Vec<u8> {
    let plain = rtp_packet(0, seq, 160 * u32::from(seq), 0x5a5a, &[0xd5; 160]);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn srtp_strangers_are_refused_and_the_party_moves_with_authenticated_media() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    // A speaks SDES-SRTP behind a NAT (SDP port 9, never its source); B plain RTP.
    let (a, mut b) = (RtpEndpoint::new(0xa1), RtpEndpoint::new(0xb2));
    let line = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "bleed-srtp", "from-tag" => "A",
        "sdp" => savp_sdp(9, &line), "ICE" => "remove", "transport-protocol" => "RTP/AVP",
    });
    let b_dest = parse_reply_sdp(&offer).audio_addr();
    let answer = ng.answer(
        "bleed-srtp",
        "A",
        "B",
        &audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"),
    );
    let a_dest = parse_reply_sdp(&answer).audio_addr();
    let mut tx = CryptoAttr::parse(&line[9..]).unwrap().context().unwrap();
    a.sock.send_to(&srtp(&mut tx, 1), a_dest).unwrap();
    assert!(b.recv(WAIT).is_some(), "A's SRTP reaches B decrypted");
    let mut s = stranger();
    // The stranger: plain RTP, garbage and a replay of A's packet, after the window.
    std::thread::sleep(AFTER_WINDOW);
    spray(&mut s, a_dest, 10);
    s.sock.send_to(&[0x80; 40], a_dest).unwrap();
    let replay = srtp(&mut tx, 2);
    a.sock.send_to(&replay, a_dest).unwrap();
    s.sock.send_to(&replay, a_dest).unwrap();
    assert_eq!(relay(&mut b, b_dest, 5, &a, &s), (5, 0));
    // A's NAT rebinds: its authenticated SRTP from the new address moves the media there,
    // no signalling, no media-handover.
    let moved = RtpEndpoint::new(0xa1);
    moved.sock.send_to(&srtp(&mut tx, 3), a_dest).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(relay(&mut b, b_dest, 5, &moved, &a), (5, 0));
}

// --- ICE ---

fn stun_check(sock: &UdpSocket, to: SocketAddr, user: &str, key: &str, tid: u8) -> StunClass {
    let mut buf = [0u8; 256];
    let params = BindingRequestParams {
        username: user.as_bytes(),
        key: key.as_bytes(),
        priority: 0x6e00_01ff,
        role: IceRole::Controlling(0x1234_5678_9abc_def0),
        use_candidate: true,
        software: None,
    };
    let n = write_binding_request(&mut buf, &[tid; 12], &params, 0).unwrap();
    sock.send_to(&buf[..n], to).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut resp = [0u8; 512];
    let (m, _) = sock.recv_from(&mut resp).expect("STUN response");
    StunMessage::parse(&resp[..m]).unwrap().class
}

#[test]
fn ice_nominated_address_holds_against_a_stranger() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (mut a, b) = (RtpEndpoint::new(0xa), RtpEndpoint::new(0xb));
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "bleed-ice", "from-tag" => "A",
        "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"), "ICE" => "force",
    });
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
    // B's SDP names port 9: only ICE tells where B is.
    let answer = ng.answer(
        "bleed-ice",
        "A",
        "B",
        &audio_sdp(b.addr().ip(), 9, 1, "sendrecv"),
    );
    let a_dest = parse_reply_sdp(&answer).audio_addr();
    let b_dest = offer_sdp.audio_addr();
    let user = format!("{ufrag}:peer");
    assert_eq!(
        stun_check(&b.sock, b_dest, &user, &pwd, 1),
        StunClass::Success
    );
    let mut s = stranger();
    std::thread::sleep(AFTER_WINDOW);
    // The stranger's RTP and a nomination signed with a guessed password.
    spray(&mut s, b_dest, 20);
    assert_eq!(
        stun_check(&s.sock, b_dest, &user, "guessed-password-xxxxxx", 2),
        StunClass::Error
    );
    s.drain();
    b.drain();
    for _ in 0..10 {
        a.send_next(a_dest);
    }
    assert_eq!(
        b.recv_many(10, WAIT).len(),
        10,
        "media stays on the nominated pair"
    );
    assert_eq!(s.drain(), 0, "the stranger got A's media");
}

// --- what must keep working ---

#[test]
fn media_handover_follows_a_nat_rebinding() {
    let daemon = Daemon::start(&[]);
    let behind_nat: SocketAddr = "192.168.77.9:40002".parse().unwrap();
    let mut call = Call::setup(
        &daemon,
        "bleed-handover",
        Some(behind_nat),
        &["media-handover"],
    );
    spray(&mut call.b, call.b_dest, 5);
    std::thread::sleep(AFTER_WINDOW);
    let mut rebound = RtpEndpoint::new(0xb0b0_0002);
    spray(&mut rebound, call.b_dest, 2);
    let (got, old) = relay(&mut call.a, call.a_dest, 10, &rebound, &call.b);
    assert_eq!((got, old), (10, 0), "media follows B to its new address");
}

#[test]
fn a_reinvite_to_a_new_address_moves_the_media_and_port_latching_keeps_it() {
    let daemon = Daemon::start(&[]);
    for (id, flags, follows) in [
        ("bleed-reinvite", &[][..], true),
        ("bleed-port-latching", &["port-latching"][..], false),
    ] {
        let mut call = Call::setup(&daemon, id, None, flags);
        spray(&mut call.b, call.b_dest, 3);
        std::thread::sleep(AFTER_WINDOW);
        // B re-INVITEs from another address (a new socket); it has sent nothing from there.
        let moved = RtpEndpoint::new(0xb0b0_0003);
        let fl: Vec<Value> = flags.iter().map(|f| Value::from(*f)).collect();
        let reoffer = call.ng.ok(dict! {
            "command" => "offer", "call-id" => id, "from-tag" => "A", "to-tag" => "B",
            "sdp" => audio_sdp(call.a.addr().ip(), call.a.port(), 2, "sendrecv"),
            "flags" => Value::List(fl.clone()),
        });
        assert_eq!(parse_reply_sdp(&reoffer).audio_addr(), call.b_dest);
        let reanswer = call.ng.ok(dict! {
            "command" => "answer", "call-id" => id, "from-tag" => "A", "to-tag" => "B",
            "sdp" => audio_sdp(moved.addr().ip(), moved.port(), 2, "sendrecv"),
            "flags" => Value::List(fl),
        });
        // B moved: A gets new ports, as rtpengine's endpoint maps give (the old ones keep
        // receiving until A takes the new SDP); `port-latching` keeps them.
        let a_dest = parse_reply_sdp(&reanswer).audio_addr();
        assert_eq!(a_dest == call.a_dest, !follows, "{id}: A's ports");
        let (to_new, to_old) = relay(&mut call.a, a_dest, 10, &moved, &call.b);
        if follows {
            assert_eq!(
                (to_new, to_old),
                (10, 0),
                "{id}: media follows the re-INVITE"
            );
        } else {
            assert_eq!((to_new, to_old), (0, 10), "{id}: the latch stays");
        }
    }
}

#[test]
fn asymmetric_sends_to_the_sdp_address_whoever_sends() {
    let daemon = Daemon::start(&[]);
    let listener = RtpEndpoint::new(0xb0b0_0004);
    let mut call = Call::setup(
        &daemon,
        "bleed-asymmetric",
        Some(listener.addr()),
        &["asymmetric"],
    );
    let mut s = stranger();
    spray(&mut call.b, call.b_dest, 3);
    spray(&mut s, call.b_dest, 3);
    std::thread::sleep(AFTER_WINDOW);
    spray(&mut s, call.b_dest, 3);
    let (got, other) = relay(&mut call.a, call.a_dest, 10, &listener, &call.b);
    assert_eq!((got, other), (10, 0));
    assert_eq!(s.drain(), 0);
}
