//! The media workers relaying real UDP on loopback: plans, latching policies, rtcp-mux,
//! counters, teardown and port exhaustion. Each test uses its own port range so the tests
//! can run in parallel. Every test runs once per backend (modules `epoll` and `io_uring` at
//! the end); the io_uring runs shift their port ranges by [`URING_PORT_SHIFT`].

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::latch::EndpointLearning;
use ngmedia_engine::core::plan::{
    CallKey, CallPlan, LatchPolicy, MediaPlane, PortError, PortPair, StreamPlan, StreamResume,
};
use ngmedia_engine::core::stats::{DropReason, StreamStats};
use ngmedia_engine::io::{Backend, IoOptions, MediaWorkers};

const WAIT: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(200);

fn config(port_min: u16, port_max: u16, workers: usize) -> EngineConfig {
    EngineConfig {
        port_min,
        port_max,
        workers,
        ..EngineConfig::default()
    }
}

/// Port offset of the io_uring runs, so they can run in parallel with the epoll runs.
const URING_PORT_SHIFT: u16 = 2000;

fn shift(backend: Backend, port: u16) -> u16 {
    match backend {
        Backend::IoUring => port + URING_PORT_SHIFT,
        _ => port,
    }
}

fn start_cfg(
    backend: Backend,
    config: &EngineConfig,
    learning: EndpointLearning,
) -> Arc<MediaWorkers> {
    let options = IoOptions {
        learning,
        backend,
        ..IoOptions::default()
    };
    let media = MediaWorkers::start_with(config, options).unwrap();
    assert_eq!(media.backend(), backend);
    media
}

fn start(backend: Backend, port_min: u16, workers: usize) -> Arc<MediaWorkers> {
    let port_min = shift(backend, port_min);
    start_cfg(
        backend,
        &config(port_min, port_min + 99, workers),
        EndpointLearning::Delayed,
    )
}

fn start_immediate(backend: Backend, port_min: u16) -> Arc<MediaWorkers> {
    let port_min = shift(backend, port_min);
    start_cfg(
        backend,
        &config(port_min, port_min + 99, 1),
        EndpointLearning::Immediate,
    )
}

fn lo() -> Interface {
    Interface {
        name: "default".into(),
        local: IpAddr::from([127, 0, 0, 1]),
        advertised: None,
    }
}

fn sock() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().unwrap()
}

/// Receive one datagram within [`WAIT`].
fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("expected a relayed packet");
    (buf[..n].to_vec(), from)
}

/// Assert nothing arrives within [`QUIET`].
fn quiet(s: &UdpSocket) {
    s.set_read_timeout(Some(QUIET)).unwrap();
    let mut buf = [0u8; 2048];
    let r = s.recv_from(&mut buf);
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert!(r.is_err(), "unexpected packet of {} bytes", r.unwrap().0);
}

/// A PCMU packet: 12-byte header + 160 bytes.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A 28-byte RTCP sender report.
fn rtcp_sr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0xc8, 0x00, 0x06];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xe9, 0x4a, 0x3b, 0x19, 0x8b, 0x43, 0x95, 0x81]);
    p.extend_from_slice(&[0, 1, 0x5f, 0x90, 0, 0, 0, 0x32, 0, 0, 0x1f, 0x40]);
    p
}

/// One side of the call as seen by the engine: the local pair facing a party.
struct Side {
    pair: PortPair,
    rtp_expected: Option<SocketAddr>,
    rtcp_expected: Option<SocketAddr>,
    /// The party sends and expects RTCP on its RTP port.
    mux: bool,
    policy: LatchPolicy,
    forward: bool,
    relatch: bool,
    rtp_stats: Arc<StreamStats>,
    rtcp_stats: Arc<StreamStats>,
}

impl Side {
    fn new(pair: PortPair, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) -> Side {
        Side {
            pair,
            rtp_expected: rtp,
            rtcp_expected: rtcp,
            mux: false,
            policy: LatchPolicy::default(),
            forward: true,
            relatch: false,
            rtp_stats: Arc::default(),
            rtcp_stats: Arc::default(),
        }
    }

    fn streams(&self, peer: &Side) -> [StreamPlan; 2] {
        let rtcp_sink = if peer.mux {
            peer.pair.rtp.key
        } else {
            peer.pair.rtcp.key
        };
        let stream = |port, expected, rtp_sink, stats: &Arc<StreamStats>| StreamPlan {
            alternates: Vec::new(),
            port,
            expected,
            latch: self.policy,
            relatch: self.relatch,
            rtp_sink,
            rtcp_sink: Some(rtcp_sink),
            forward: self.forward,
            stats: stats.clone(),
            transcode: None,
            srtp_in: None,
            srtp_out: None,
            ice: None,
            dtls: None,
            stream: ngmedia_engine::core::tap::TapStream { leg: 0, media: 0 },
            tap: None,
            intercept: None,
            rtcp_feedback: false,
            resume: None,
            copies: Vec::new(),
            feed: None,
            control: Default::default(),
            mode: Default::default(),
            fax: None,
        };
        [
            stream(
                self.pair.rtp.key,
                self.rtp_expected,
                Some(peer.pair.rtp.key),
                &self.rtp_stats,
            ),
            stream(
                self.pair.rtcp.key,
                self.rtcp_expected,
                None,
                &self.rtcp_stats,
            ),
        ]
    }
}

fn plan(call: u64, a: &Side, b: &Side) -> CallPlan {
    let mut streams = a.streams(b).to_vec();
    streams.extend(b.streams(a));
    CallPlan {
        call: CallKey(call),
        call_id: "call".into(),
        streams,
        tos: 0,
    }
}

/// Caller and callee with RTP and RTCP sockets each, and the engine sides facing them.
struct Call {
    caller_rtp: UdpSocket,
    caller_rtcp: UdpSocket,
    callee_rtp: UdpSocket,
    callee_rtcp: UdpSocket,
    a: Side,
    b: Side,
}

fn call(media: &MediaWorkers) -> Call {
    let (caller_rtp, caller_rtcp, callee_rtp, callee_rtcp) = (sock(), sock(), sock(), sock());
    let a = Side::new(
        media.allocate_pair(&lo()).unwrap(),
        Some(addr(&caller_rtp)),
        Some(addr(&caller_rtcp)),
    );
    let b = Side::new(
        media.allocate_pair(&lo()).unwrap(),
        Some(addr(&callee_rtp)),
        Some(addr(&callee_rtcp)),
    );
    Call {
        caller_rtp,
        caller_rtcp,
        callee_rtp,
        callee_rtcp,
        a,
        b,
    }
}

fn send(from: &UdpSocket, pkt: &[u8], to: SocketAddr) {
    assert_eq!(from.send_to(pkt, to).unwrap(), pkt.len());
}

/// Send `pkt` from `from` to `to` and assert it arrives unchanged at `at` from `via`.
fn relay(from: &UdpSocket, to: SocketAddr, pkt: &[u8], at: &UdpSocket, via: SocketAddr) {
    send(from, pkt, to);
    let (got, src) = recv(at);
    assert_eq!(got, pkt);
    assert_eq!(src, via);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn relays_rtp_and_rtcp_unchanged_both_ways_with_exact_counters(backend: Backend) {
    let media = start(backend, 46000, 1);
    let c = call(&media);
    media.apply(plan(1, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);

    for seq in 0..3 {
        relay(
            &c.caller_rtp,
            a.rtp.addr,
            &rtp(seq, 0x1111),
            &c.callee_rtp,
            b.rtp.addr,
        );
    }
    for seq in 0..2 {
        relay(
            &c.callee_rtp,
            b.rtp.addr,
            &rtp(seq, 0x2222),
            &c.caller_rtp,
            a.rtp.addr,
        );
    }
    relay(
        &c.caller_rtcp,
        a.rtcp.addr,
        &rtcp_sr(0x1111),
        &c.callee_rtcp,
        b.rtcp.addr,
    );
    relay(
        &c.callee_rtcp,
        b.rtcp.addr,
        &rtcp_sr(0x2222),
        &c.caller_rtcp,
        a.rtcp.addr,
    );
    assert!(media.flush());

    let s = c.a.rtp_stats.snapshot();
    assert_eq!(
        (s.packets, s.bytes, s.errors, s.rtcp_packets),
        (3, 3 * 172, 0, 0)
    );
    assert!(
        s.last_packet_ms.abs_diff(now_ms()) < 10_000,
        "{}",
        s.last_packet_ms
    );
    assert_eq!(c.a.rtp_stats.last_ssrc.load(Relaxed), 0x1111);
    assert_eq!(c.a.rtp_stats.endpoint(), Some(addr(&c.caller_rtp)));
    assert!(c.a.rtp_stats.confirmed.load(Relaxed));
    let s = c.b.rtp_stats.snapshot();
    assert_eq!((s.packets, s.bytes, s.errors), (2, 2 * 172, 0));
    assert_eq!(c.b.rtp_stats.last_ssrc.load(Relaxed), 0x2222);
    // RTCP on the RTCP port counts as that stream's packets.
    let s = c.a.rtcp_stats.snapshot();
    assert_eq!((s.packets, s.bytes, s.rtcp_packets), (1, 28, 0));
    assert_eq!(c.b.rtcp_stats.snapshot().bytes, 28);

    let t = media.totals();
    assert_eq!((t.rtp_packets, t.rtp_bytes), (5, 5 * 172));
    assert_eq!((t.rtcp_packets, t.rtcp_bytes), (2, 56));
    assert_eq!(t.relayed_packets, 7);
    assert_eq!(t.drops, [0; DropReason::ALL.len()]);
    media.shutdown();
}

fn latches_to_the_real_source_instead_of_the_sdp_address(backend: Backend) {
    let media = start(backend, 46100, 1);
    let mut c = call(&media);
    // The callee's SDP names `decoy` (think private address behind NAT); media comes from
    // `real`.
    let (decoy, real) = (sock(), sock());
    c.b.rtp_expected = Some(addr(&decoy));
    media.apply(plan(2, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);

    // Before the callee sends, media goes to the SDP address.
    relay(&c.caller_rtp, a.rtp.addr, &rtp(1, 0x1), &decoy, b.rtp.addr);
    relay(&real, b.rtp.addr, &rtp(1, 0x2), &c.caller_rtp, a.rtp.addr);
    relay(&c.caller_rtp, a.rtp.addr, &rtp(2, 0x1), &real, b.rtp.addr);
    quiet(&decoy);
    assert!(media.flush());
    assert_eq!(c.b.rtp_stats.endpoint(), Some(addr(&real)));

    // Re-applying the same plan (re-INVITE) keeps the learned address.
    media.apply(plan(2, &c.a, &c.b));
    relay(&c.caller_rtp, a.rtp.addr, &rtp(3, 0x1), &real, b.rtp.addr);

    // `relatch` forgets it: back to the SDP address until the callee sends again.
    c.b.relatch = true;
    media.apply(plan(2, &c.a, &c.b));
    assert!(media.flush());
    assert_eq!(c.b.rtp_stats.endpoint(), None);
    relay(&c.caller_rtp, a.rtp.addr, &rtp(4, 0x1), &decoy, b.rtp.addr);
    quiet(&real);
    media.shutdown();
}

fn confirmed_latch_relays_other_sources_without_moving(backend: Backend) {
    let media = start_immediate(backend, 46200);
    let c = call(&media);
    media.apply(plan(3, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);
    let other = sock();
    relay(
        &c.callee_rtp,
        b.rtp.addr,
        &rtp(1, 0x2),
        &c.caller_rtp,
        a.rtp.addr,
    );
    // Not strict: relayed, but the callee keeps receiving at its confirmed address.
    relay(&other, b.rtp.addr, &rtp(2, 0x3), &c.caller_rtp, a.rtp.addr);
    relay(
        &c.caller_rtp,
        a.rtp.addr,
        &rtp(1, 0x1),
        &c.callee_rtp,
        b.rtp.addr,
    );
    quiet(&other);
    media.shutdown();
}

fn strict_source_drops_packets_from_other_sources(backend: Backend) {
    let media = start_immediate(backend, 46300);
    let mut c = call(&media);
    c.b.policy.strict_source = true;
    media.apply(plan(4, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);
    let intruder = sock();

    relay(
        &c.callee_rtp,
        b.rtp.addr,
        &rtp(1, 0x2),
        &c.caller_rtp,
        a.rtp.addr,
    );
    send(&intruder, &rtp(2, 0x666), b.rtp.addr);
    quiet(&c.caller_rtp);
    relay(
        &c.callee_rtp,
        b.rtp.addr,
        &rtp(3, 0x2),
        &c.caller_rtp,
        a.rtp.addr,
    );
    assert!(media.flush());

    let s = c.b.rtp_stats.snapshot();
    assert_eq!((s.packets, s.errors), (2, 1));
    assert_eq!(c.b.rtp_stats.last_ssrc.load(Relaxed), 0x2);
    let t = media.totals();
    assert_eq!(t.drops[DropReason::SourceMismatch as usize], 1);
    assert_eq!((t.rtp_packets, t.relayed_packets), (2, 2));
    media.shutdown();
}

fn media_handover_moves_to_the_new_source(backend: Backend) {
    let media = start_immediate(backend, 47500);
    let mut c = call(&media);
    c.b.policy.handover = true;
    c.b.policy.strict_source = true;
    media.apply(plan(5, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);
    let moved = sock();
    relay(
        &c.callee_rtp,
        b.rtp.addr,
        &rtp(1, 0x2),
        &c.caller_rtp,
        a.rtp.addr,
    );
    relay(&moved, b.rtp.addr, &rtp(2, 0x2), &c.caller_rtp, a.rtp.addr);
    relay(&c.caller_rtp, a.rtp.addr, &rtp(1, 0x1), &moved, b.rtp.addr);
    quiet(&c.callee_rtp);
    assert!(media.flush());
    assert_eq!(c.b.rtp_stats.endpoint(), Some(addr(&moved)));
    media.shutdown();
}

fn asymmetric_always_sends_to_the_sdp_address(backend: Backend) {
    let media = start(backend, 46400, 1);
    let mut c = call(&media);
    c.b.policy.learn = false;
    media.apply(plan(6, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);
    let other = sock();
    // Media from anywhere is relayed...
    relay(&other, b.rtp.addr, &rtp(1, 0x2), &c.caller_rtp, a.rtp.addr);
    // ...but media for the callee goes to its SDP address, not where it came from.
    relay(
        &c.caller_rtp,
        a.rtp.addr,
        &rtp(1, 0x1),
        &c.callee_rtp,
        b.rtp.addr,
    );
    quiet(&other);
    assert!(media.flush());
    assert_eq!(c.b.rtp_stats.endpoint(), None);
    assert_eq!(c.b.rtp_stats.snapshot().packets, 1);
    media.shutdown();
}

fn rtcp_mux_is_relayed_between_rtp_port_and_rtcp_port(backend: Backend) {
    let media = start(backend, 46500, 1);
    let mut c = call(&media);
    c.a.mux = true;
    media.apply(plan(7, &c.a, &c.b));
    let (a, b) = (&c.a.pair, &c.b.pair);

    // Caller muxes RTCP on its RTP port; the callee gets it on its RTCP port.
    relay(
        &c.caller_rtp,
        a.rtp.addr,
        &rtcp_sr(0x1),
        &c.callee_rtcp,
        b.rtcp.addr,
    );
    // Callee's RTCP goes to the caller's RTP port, from the engine's RTP port.
    relay(
        &c.callee_rtcp,
        b.rtcp.addr,
        &rtcp_sr(0x2),
        &c.caller_rtp,
        a.rtp.addr,
    );
    // RTP on the same port still goes the RTP way.
    relay(
        &c.caller_rtp,
        a.rtp.addr,
        &rtp(1, 0x1),
        &c.callee_rtp,
        b.rtp.addr,
    );
    quiet(&c.caller_rtcp);
    assert!(media.flush());

    let s = c.a.rtp_stats.snapshot();
    assert_eq!(
        (s.packets, s.bytes, s.rtcp_packets, s.rtcp_bytes),
        (1, 172, 1, 28)
    );
    let t = media.totals();
    assert_eq!(
        (t.rtp_packets, t.rtcp_packets, t.relayed_packets),
        (1, 2, 3)
    );
    media.shutdown();
}

fn malformed_unforwarded_and_undeliverable_packets_are_counted_not_relayed(backend: Backend) {
    let media = start(backend, 46600, 1);
    let mut c = call(&media);
    c.b.rtp_expected = None;
    media.apply(plan(8, &c.a, &c.b));
    let a = &c.a.pair;

    // Garbage, a STUN binding request, RTP with a CSRC list past the end, RTP on RTCP port.
    let stun = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let mut bad_cc = rtp(9, 0x1);
    bad_cc.truncate(20);
    bad_cc[0] = 0x8f;
    send(&c.caller_rtp, b"hello, world!", a.rtp.addr);
    send(&c.caller_rtp, &stun, a.rtp.addr);
    send(&c.caller_rtp, &bad_cc, a.rtp.addr);
    send(&c.caller_rtcp, &rtp(1, 0x1), a.rtcp.addr);
    // Valid RTP, but the callee has no address yet.
    send(&c.caller_rtp, &rtp(1, 0x1), a.rtp.addr);
    quiet(&c.callee_rtp);
    quiet(&c.callee_rtcp);
    assert!(media.flush());
    let s = c.a.rtp_stats.snapshot();
    assert_eq!((s.packets, s.errors), (1, 4));
    assert_eq!(c.a.rtcp_stats.snapshot().errors, 1);
    let t = media.totals();
    // STUN on a stream without ICE is its own drop reason.
    assert_eq!(t.drops[DropReason::Malformed as usize], 3);
    assert_eq!(t.drops[DropReason::Stun as usize], 1);
    assert_eq!(t.drops[DropReason::NoDestination as usize], 1);
    assert_eq!((t.rtp_packets, t.relayed_packets), (1, 0));

    // forward == false (blocked media): counted, not relayed, not an error.
    c.b.rtp_expected = Some(addr(&c.callee_rtp));
    c.a.forward = false;
    media.apply(plan(8, &c.a, &c.b));
    send(&c.caller_rtp, &rtp(2, 0x1), a.rtp.addr);
    quiet(&c.callee_rtp);
    assert!(media.flush());
    let s = c.a.rtp_stats.snapshot();
    assert_eq!((s.packets, s.errors), (2, 4));
    media.shutdown();
}

fn remove_stops_relaying_and_frees_the_ports(backend: Backend) {
    let media = start(backend, 46700, 1);
    let c = call(&media);
    media.apply(plan(9, &c.a, &c.b));
    let (a, b) = (c.a.pair, c.b.pair);
    relay(
        &c.caller_rtp,
        a.rtp.addr,
        &rtp(1, 0x1),
        &c.callee_rtp,
        b.rtp.addr,
    );

    media.remove(CallKey(9));
    assert!(media.flush());
    let before = media.totals();
    let _ = c.caller_rtp.send_to(&rtp(2, 0x1), a.rtp.addr);
    quiet(&c.callee_rtp);
    assert_eq!(media.totals(), before);
    // Every port is closed: we can bind them ourselves.
    for p in [a.rtp, a.rtcp, b.rtp, b.rtcp] {
        drop(UdpSocket::bind(p.addr).expect("port still bound after remove"));
    }
    media.shutdown();
}

fn ports_dropped_from_a_plan_are_closed(backend: Backend) {
    let media = start(backend, 46800, 1);
    let c = call(&media);
    let video = media.allocate_pair(&lo()).unwrap();
    let mut with_video = plan(10, &c.a, &c.b);
    let mut v = Side::new(video, None, None);
    v.forward = false;
    with_video.streams.extend(v.streams(&c.a));
    media.apply(with_video);
    assert!(media.flush());
    assert!(
        UdpSocket::bind(video.rtp.addr).is_err(),
        "port must be in use while planned"
    );
    media.apply(plan(10, &c.a, &c.b));
    assert!(media.flush());
    drop(UdpSocket::bind(video.rtp.addr).unwrap());
    drop(UdpSocket::bind(video.rtcp.addr).unwrap());
    // The ports that stayed still relay.
    relay(
        &c.caller_rtp,
        c.a.pair.rtp.addr,
        &rtp(1, 0x1),
        &c.callee_rtp,
        c.b.pair.rtp.addr,
    );
    media.shutdown();
}

fn exhausted_range_fails_fast_and_recovers(backend: Backend) {
    // Four ports: two pairs.
    let media = start_cfg(
        backend,
        &config(shift(backend, 46900), shift(backend, 46903), 1),
        EndpointLearning::Delayed,
    );
    let p1 = media.allocate_pair(&lo()).unwrap();
    let p2 = media.allocate_pair(&lo()).unwrap();
    assert_ne!(p1.rtp.addr, p2.rtp.addr);
    for p in [p1, p2] {
        assert_eq!(p.rtp.addr.port() % 2, 0);
        assert_eq!(p.rtcp.addr.port(), p.rtp.addr.port() + 1);
        assert!((shift(backend, 46900)..=shift(backend, 46903)).contains(&p.rtp.addr.port()));
    }
    let err = media.allocate_pair(&lo()).unwrap_err();
    assert_eq!(err, PortError::Exhausted);
    assert_eq!(err.to_string(), "Ran out of ports");

    // Releasing a never-planned pair gives it back at once.
    media.release(&[p1.rtp.key, p1.rtcp.key]);
    let p3 = media.allocate_pair(&lo()).unwrap();
    assert_eq!(p3.rtp.addr, p1.rtp.addr);

    // Ports of a removed call come back once the worker closed them.
    let (x, y) = (sock(), sock());
    let a = Side::new(p2, Some(addr(&x)), None);
    let b = Side::new(p3, Some(addr(&y)), None);
    media.apply(plan(11, &a, &b));
    assert!(media.flush());
    assert_eq!(
        media.allocate_pair(&lo()).unwrap_err(),
        PortError::Exhausted
    );
    media.remove(CallKey(11));
    assert!(media.flush());
    media.allocate_pair(&lo()).unwrap();
    media.allocate_pair(&lo()).unwrap();
    media.shutdown();
}

fn bad_configuration_and_foreign_interface_are_errors(backend: Backend) {
    let err = MediaWorkers::start_with(
        &config(40000, 30000, 1),
        IoOptions {
            backend,
            ..IoOptions::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let media = start(backend, 47000, 1);
    let foreign = Interface {
        name: "x".into(),
        local: IpAddr::from([203, 0, 113, 1]),
        advertised: None,
    };
    assert!(matches!(
        media.allocate_pair(&foreign),
        Err(PortError::Bind { .. })
    ));
}

fn relays_over_ipv6(backend: Backend) {
    let media = start(backend, 47200, 1);
    let v6 = Interface {
        name: "v6".into(),
        local: "::1".parse().unwrap(),
        advertised: None,
    };
    let (Ok(x), Ok(y)) = (UdpSocket::bind("[::1]:0"), UdpSocket::bind("[::1]:0")) else {
        eprintln!("no IPv6 loopback; skipped");
        return;
    };
    y.set_read_timeout(Some(WAIT)).unwrap();
    let a = Side::new(media.allocate_pair(&v6).unwrap(), Some(addr(&x)), None);
    let b = Side::new(media.allocate_pair(&v6).unwrap(), Some(addr(&y)), None);
    media.apply(plan(12, &a, &b));
    relay(&x, a.pair.rtp.addr, &rtp(1, 0x6), &y, b.pair.rtp.addr);
}

fn many_calls_on_two_workers_concurrently(backend: Backend) {
    const CALLS: u64 = 6;
    const PACKETS: u16 = 50;
    let media = start(backend, 47300, 2);
    assert_eq!(media.workers(), 2);
    let calls: Vec<Call> = (0..CALLS).map(|_| call(&media)).collect();
    for (i, c) in calls.iter().enumerate() {
        media.apply(plan(100 + i as u64, &c.a, &c.b));
    }
    std::thread::scope(|s| {
        for (i, c) in calls.iter().enumerate() {
            s.spawn(move || {
                let ssrc = i as u32;
                for seq in 0..PACKETS {
                    send(&c.caller_rtp, &rtp(seq, ssrc), c.a.pair.rtp.addr);
                    send(&c.callee_rtp, &rtp(seq, ssrc | 0x100), c.b.pair.rtp.addr);
                }
                for seq in 0..PACKETS {
                    let (got, from) = recv(&c.callee_rtp);
                    assert_eq!((got, from), (rtp(seq, ssrc), c.b.pair.rtp.addr));
                    let (got, from) = recv(&c.caller_rtp);
                    assert_eq!((got, from), (rtp(seq, ssrc | 0x100), c.a.pair.rtp.addr));
                }
            });
        }
    });
    assert!(media.flush());
    for c in &calls {
        assert_eq!(c.a.rtp_stats.snapshot().packets, PACKETS as u64);
        assert_eq!(c.b.rtp_stats.snapshot().packets, PACKETS as u64);
    }
    let t = media.totals();
    let total = CALLS * 2 * PACKETS as u64;
    assert_eq!(
        (t.rtp_packets, t.relayed_packets, t.rtp_bytes),
        (total, total, total * 172)
    );
    assert_eq!(t.drops, [0; DropReason::ALL.len()]);
}

fn shutdown_is_idempotent_and_later_calls_are_harmless(backend: Backend) {
    let media = start(backend, 47400, 2);
    let c = call(&media);
    media.apply(plan(13, &c.a, &c.b));
    media.shutdown();
    media.shutdown();
    media.apply(plan(13, &c.a, &c.b));
    media.remove(CallKey(13));
    assert!(!media.flush());
    // Worker threads are gone and closed the sockets.
    drop(UdpSocket::bind(c.a.pair.rtp.addr).unwrap());
}

/// Run each test above once per backend.
/// A stream taken over from stored state (restart, standby) sends to the address the
/// previous engine had latched at once, on the ports the parties know, without waiting for
/// the party to send first.
fn resumed_stream_sends_to_the_latched_address_at_once(backend: Backend) {
    let media = start(backend, 47800, 1);
    let base = shift(backend, 47800);
    let (caller_rtp, caller_rtcp, decoy, real) = (sock(), sock(), sock(), sock());
    let a_pair = media.allocate_pair_at(&lo(), base + 10).unwrap();
    let b_pair = media.allocate_pair_at(&lo(), base + 20).unwrap();
    assert_eq!(
        (a_pair.rtp.addr.port(), a_pair.rtcp.addr.port()),
        (base + 10, base + 11)
    );
    // The pair is held: neither a second take-over nor random allocation gets it.
    assert!(matches!(
        media.allocate_pair_at(&lo(), base + 10),
        Err(PortError::Bind { .. })
    ));
    let a = Side::new(a_pair, Some(addr(&caller_rtp)), Some(addr(&caller_rtcp)));
    let b = Side::new(b_pair, Some(addr(&decoy)), None);
    let mut p = plan(7, &a, &b);
    for s in p.streams.iter_mut().filter(|s| s.port == b.pair.rtp.key) {
        s.resume = Some(StreamResume {
            latched: Some(addr(&real)),
            ..StreamResume::default()
        });
    }
    media.apply(p);
    relay(
        &caller_rtp,
        a.pair.rtp.addr,
        &rtp(1, 0x1),
        &real,
        b.pair.rtp.addr,
    );
    quiet(&decoy);
    // Confirmed: a packet from another source does not move it (default policy).
    send(&decoy, &rtp(9, 0x9), b.pair.rtp.addr);
    let _ = recv(&caller_rtp);
    relay(
        &caller_rtp,
        a.pair.rtp.addr,
        &rtp(2, 0x1),
        &real,
        b.pair.rtp.addr,
    );
    media.shutdown();
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod epoll {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Epoll);
                }
            )*
        }

        mod io_uring {
            $(
                #[test]
                fn $name() {
                    if let Err(e) = ngmedia_engine::io::io_uring_available() {
                        eprintln!("io_uring unavailable here ({e}); test skipped");
                        return;
                    }
                    super::$name(super::Backend::IoUring);
                }
            )*
        }
    };
}

per_backend!(
    relays_rtp_and_rtcp_unchanged_both_ways_with_exact_counters,
    latches_to_the_real_source_instead_of_the_sdp_address,
    confirmed_latch_relays_other_sources_without_moving,
    strict_source_drops_packets_from_other_sources,
    media_handover_moves_to_the_new_source,
    asymmetric_always_sends_to_the_sdp_address,
    rtcp_mux_is_relayed_between_rtp_port_and_rtcp_port,
    malformed_unforwarded_and_undeliverable_packets_are_counted_not_relayed,
    remove_stops_relaying_and_frees_the_ports,
    ports_dropped_from_a_plan_are_closed,
    exhausted_range_fails_fast_and_recovers,
    bad_configuration_and_foreign_interface_are_errors,
    relays_over_ipv6,
    many_calls_on_two_workers_concurrently,
    shutdown_is_idempotent_and_later_calls_are_harmless,
    resumed_stream_sends_to_the_latched_address_at_once
);
