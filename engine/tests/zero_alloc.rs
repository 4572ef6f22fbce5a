//! Steady-state relaying allocates nothing: a counting global allocator watches the media
//! worker and the test's thread while packets flow through an applied plan; the test thread
//! only calls `send_to`/`recv_from` with stack buffers in the measured section. It measures each backend in turn (io_uring only where the kernel allows it).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::plan::{CallKey, CallPlan, LatchPolicy, MediaPlane, StreamPlan};
use ngmedia_engine::core::stats::StreamStats;
use ngmedia_engine::io::{Backend, IoOptions, MediaWorkers};

use ngmedia_test_support::{allocations_in_threads, CountingAllocator, MEDIA_WORKERS};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn stream(
    port: ngmedia_engine::core::plan::PortKey,
    expected: SocketAddr,
    sink: ngmedia_engine::core::plan::PortKey,
) -> StreamPlan {
    StreamPlan {
        alternates: Vec::new(),
        port,
        expected: Some(expected),
        latch: LatchPolicy::default(),
        relatch: false,
        rtp_sink: Some(sink),
        rtcp_sink: None,
        forward: true,
        stats: Arc::new(StreamStats::default()),
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
    }
}

#[test]
fn steady_state_relay_does_not_allocate() {
    measure(Backend::Epoll, 47600);
    match ngmedia_engine::io::io_uring_available() {
        Ok(()) => measure(Backend::IoUring, 47700),
        Err(e) => eprintln!("io_uring unavailable here ({e}); only epoll measured"),
    }
}

fn measure(backend: Backend, port_min: u16) {
    let config = EngineConfig {
        port_min,
        port_max: port_min + 99,
        workers: 1,
        ..Default::default()
    };
    let options = IoOptions {
        backend,
        ..IoOptions::default()
    };
    let media = MediaWorkers::start_with(&config, options).unwrap();
    assert_eq!(media.backend(), backend);
    let lo = Interface {
        name: "default".into(),
        local: IpAddr::from([127, 0, 0, 1]),
        advertised: None,
    };
    let a = media.allocate_pair(&lo).unwrap();
    let b = media.allocate_pair(&lo).unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&caller, &callee] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    media.apply(CallPlan {
        call: CallKey(1),
        call_id: "call".into(),
        streams: vec![
            stream(a.rtp.key, caller.local_addr().unwrap(), b.rtp.key),
            stream(b.rtp.key, callee.local_addr().unwrap(), a.rtp.key),
        ],
        tos: 0,
    });

    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let mut buf = [0u8; 2048];
    let mut round = |seq: u16| {
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        caller.send_to(&pkt, a.rtp.addr).unwrap();
        let (n, _) = callee
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{backend:?} seq {seq}: {e}"));
        assert_eq!(n, 172);
        callee.send_to(&pkt, b.rtp.addr).unwrap();
        let (n, _) = caller
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{backend:?} seq {seq} back: {e}"));
        assert_eq!(n, 172);
    };
    // Warm-up: latching (first packets) and lazily initialised runtime state.
    for seq in 0..50 {
        round(seq);
    }
    let (allocated, ()) = allocations_in_threads(MEDIA_WORKERS, || {
        for seq in 50..1050 {
            round(seq);
        }
    });
    assert_eq!(
        allocated, 0,
        "{backend:?}: {allocated} allocations while relaying 2000 packets"
    );
    assert!(media.flush());
    assert_eq!(media.totals().relayed_packets, 2100);
    media.shutdown();
}
