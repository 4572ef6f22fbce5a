//! The transcoding path allocates nothing per packet in steady state: a counting global
//! allocator watches the media worker and the test's thread while PCMU↔PCMA, PCMU↔Opus and PCMU↔G.722 (with its
//! 8↔16 kHz resampling) calls run through [`MediaWorkers`] (decode, encode, re-packetise,
//! RTCP accounting), on each backend, and a PCMU↔PCMA call where the PCMU side has comfort
//! noise: its CN packets decoded into noise, its silence sent back to it as CN. Before every
//! packet from A goes one of a payload type both sides share, relayed beside the transcoded
//! ones (only SSRC and sequence number rewritten). Last, a PCMU→PCMA call played out on a
//! clock (`--dtx-delay`, `--dtx-cn-params`): its packets held and decoded on timer ticks,
//! the pauses between its talk spurts filled with comfort noise.
//!
//! The test thread only calls `send_to`/`recv_from` with stack buffers in the measured section.
//! Transcoders are built when the plan is applied and on the first packets (warm-up).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ngmedia_codecs::Codec;
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::plan::{
    CallKey, CallPlan, LatchPolicy, MediaPlane, PortPair, StreamPlan,
};
use ngmedia_engine::core::stats::StreamStats;
use ngmedia_engine::core::transcode::{CodecEnd, PtSet, TranscodeSpec};
use ngmedia_engine::io::{Backend, IoOptions, MediaWorkers};

use ngmedia_test_support::{allocations_in_threads, CountingAllocator, MEDIA_WORKERS};

/// A payload type both sides share in the measured call (any number the codecs leave free).
const RELAYED_PT: u8 = 3;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn stream(
    port: ngmedia_engine::core::plan::PortKey,
    expected: SocketAddr,
    sink: ngmedia_engine::core::plan::PortKey,
    transcode: TranscodeSpec,
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
        transcode: Some(transcode),
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

fn end(name: &str, rate: u32, ch: Option<u8>, pt: u8) -> CodecEnd {
    CodecEnd {
        codec: Codec::lookup(name, rate, ch, None).unwrap(),
        pt,
        ptime_ms: 20,
        event_pt: None,
        bitrate: None,
        cn_pt: None,
        dtx: false,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
    }
}

#[test]
fn steady_state_transcoding_does_not_allocate() {
    let pcmu = end("PCMU", 8000, None, 0);
    let pairs = [
        ("PCMU<->PCMA", pcmu, end("PCMA", 8000, None, 8)),
        ("PCMU<->Opus", pcmu, end("opus", 48000, Some(2), 96)),
        ("PCMU<->G722", pcmu, end("G722", 8000, None, 9)),
        ("PCMU<->AMR", pcmu, end("AMR", 8000, None, 97)),
        // Several frames per packet are covered by the codecs crate's allocation test (this
        // loop answers every packet with one).
        (
            "PCMU<->AMR-WB (octet-aligned)",
            pcmu,
            CodecEnd {
                codec: Codec::lookup("AMR-WB", 16000, None, Some("octet-align=1")).unwrap(),
                ..end("AMR-WB", 16000, None, 98)
            },
        ),
        (
            "PCMU+CN<->PCMA",
            CodecEnd {
                cn_pt: Some(13),
                ..pcmu
            },
            end("PCMA", 8000, None, 8),
        ),
    ];
    let mut port = 48100;
    for (what, a, b) in pairs {
        measure(Backend::Epoll, port, what, a, b);
        port += 100;
        match ngmedia_engine::io::io_uring_available() {
            Ok(()) => measure(Backend::IoUring, port, what, a, b),
            Err(e) => eprintln!("io_uring unavailable here ({e}); only epoll measured"),
        }
        port += 100;
    }
    measure_playout(Backend::Epoll, port);
    if ngmedia_engine::io::io_uring_available().is_ok() {
        measure_playout(Backend::IoUring, port + 100);
    }
}

/// A sends 20 ms PCMU packets in real time, with a 100 ms pause every 25 packets, to a
/// transcoder that holds them 10 ms and fills pauses with comfort noise; B receives PCMA
/// from the clock's ticks.
fn measure_playout(backend: Backend, port_min: u16) {
    let config = EngineConfig {
        port_min,
        port_max: port_min + 99,
        workers: 1,
        playout: ngmedia_engine::core::transcode::PlayoutConfig {
            dtx_delay_ms: 10,
            cn: Some(ngmedia_codecs::cn::CnPayload::flat(40)),
            ..Default::default()
        },
        ..Default::default()
    };
    let (media, a, b, caller, callee) = start(&config, backend);
    callee.set_nonblocking(true).unwrap();
    let (pcmu, pcma) = (end("PCMU", 8000, None, 0), end("PCMA", 8000, None, 8));
    let spec = |input, output| TranscodeSpec {
        input,
        output,
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    };
    media.apply(CallPlan {
        call: CallKey(1),
        call_id: "call".into(),
        streams: vec![
            stream(
                a.rtp.key,
                caller.local_addr().unwrap(),
                b.rtp.key,
                spec(pcmu, pcma),
            ),
            stream(
                b.rtp.key,
                callee.local_addr().unwrap(),
                a.rtp.key,
                spec(pcma, pcmu),
            ),
        ],
        tos: 0,
    });
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    pkt[12..].fill(0x40);
    let mut buf = [0u8; 2048];
    let mut received = 0usize;
    let mut ts = 0u32;
    let mut round = |k: u16, received: &mut usize| {
        if k.is_multiple_of(25) {
            // A pause: five ticks of comfort noise.
            std::thread::sleep(Duration::from_millis(100));
            ts = ts.wrapping_add(800);
        }
        pkt[2..4].copy_from_slice(&k.to_be_bytes());
        pkt[4..8].copy_from_slice(&ts.to_be_bytes());
        ts = ts.wrapping_add(160);
        caller.send_to(&pkt, a.rtp.addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        while let Ok((n, _)) = callee.recv_from(&mut buf) {
            assert_eq!((n, buf[1] & 0x7f), (172, 8), "{backend:?}: B receives PCMA");
            *received += 1;
        }
    };
    for k in 0..50 {
        round(k, &mut received);
    }
    let (allocated, ()) = allocations_in_threads(MEDIA_WORKERS, || {
        for k in 50..200 {
            round(k, &mut received);
        }
    });
    assert_eq!(
        allocated, 0,
        "{backend:?}: {allocated} allocations while playing out 150 packets and their pauses"
    );
    // 200 packets and the 7 pauses after the first packet, 5 ticks each (give or take the
    // last tick).
    assert!(
        received >= 200 + 7 * 5 - 2,
        "{backend:?}: the pauses were filled ({received} packets)"
    );
    media.shutdown();
}

/// Media workers on `config` and `backend`, a port pair for each party, and the two
/// parties' sockets (caller, callee).
fn start(
    config: &EngineConfig,
    backend: Backend,
) -> (Arc<MediaWorkers>, PortPair, PortPair, UdpSocket, UdpSocket) {
    let options = IoOptions {
        backend,
        ..IoOptions::default()
    };
    let media = MediaWorkers::start_with(config, options).unwrap();
    let lo = Interface {
        name: "default".into(),
        local: IpAddr::from([127, 0, 0, 1]),
        advertised: None,
    };
    let a = media.allocate_pair(&lo).unwrap();
    let b = media.allocate_pair(&lo).unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
    (media, a, b, caller, callee)
}

/// A sends PCMU (a 440 Hz sine), B receives codec `b` and echoes each packet back; A
/// receives PCMU again. Both directions run a transcoder.
fn measure(backend: Backend, port_min: u16, what: &str, a_end: CodecEnd, b_end: CodecEnd) {
    let config = EngineConfig {
        port_min,
        port_max: port_min + 99,
        workers: 1,
        // `--silence-detect=1`: silence toward a side with CN leaves as CN.
        silence_detect: ngmedia_engine::core::transcode::SilenceDetect::from_options(1.0, &[]),
        ..Default::default()
    };
    let (media, a, b, caller, callee) = start(&config, backend);
    for s in [&caller, &callee] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let a_to_b = TranscodeSpec {
        input: a_end,
        output: b_end,
        detect_dtmf: false,
        passthrough: [RELAYED_PT].into_iter().collect(),
    };
    let b_to_a = TranscodeSpec {
        input: b_end,
        output: a_end,
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    };
    media.apply(CallPlan {
        call: CallKey(1),
        call_id: "call".into(),
        streams: vec![
            stream(a.rtp.key, caller.local_addr().unwrap(), b.rtp.key, a_to_b),
            stream(b.rtp.key, callee.local_addr().unwrap(), a.rtp.key, b_to_a),
        ],
        tos: 0,
    });

    // One second of 440 Hz in µ-law, sent in a loop (made before measuring).
    let sine: Vec<u8> = (0..8000)
        .map(|i| {
            let x = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin();
            ngmedia_codecs::g711::ulaw_encode(x as i16)
        })
        .collect();
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let mut buf = [0u8; 2048];
    // With CN on A's side, every third packet is CN and every third silence.
    let cn = a_end.cn_pt;
    // `warm`: a transcoded packet may not come out yet (a resampler holds back its first
    // frame, as rtpengine's does); later every packet in gives one out.
    let mut round = |k: u16, warm: bool| {
        // A relayed packet first, one sequence number before the transcoded one.
        let seq = k.wrapping_mul(2);
        pkt[1] = RELAYED_PT;
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&(seq as u32 * 160).to_be_bytes());
        caller.send_to(&pkt, a.rtp.addr).unwrap();
        let (n, _) = callee
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{what} {backend:?} seq {seq} relayed: {e}"));
        assert_eq!(
            (n, buf[1] & 0x7f),
            (172, RELAYED_PT),
            "{what}: relayed as it is"
        );
        let seq = seq.wrapping_add(1);
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&(seq as u32 * 160).to_be_bytes());
        let at = (seq as usize % 50) * 160;
        let kind = if cn.is_some() { k % 3 } else { 0 };
        pkt[1] = 0;
        let len = match kind {
            1 => {
                pkt[1] = 13;
                pkt[12..17].copy_from_slice(&[0x12, 0x23, 0x23, 0x34, 0x56]);
                17
            }
            2 => {
                pkt[12..].fill(ngmedia_codecs::g711::ULAW_SILENCE);
                172
            }
            _ => {
                pkt[12..].copy_from_slice(&sine[at..at + 160]);
                172
            }
        };
        caller.send_to(&pkt[..len], a.rtp.addr).unwrap();
        let (n, _) = match callee.recv_from(&mut buf) {
            Ok(got) => got,
            Err(_) if warm => return,
            Err(e) => panic!("{what} {backend:?} seq {seq}: {e}"),
        };
        assert_eq!(buf[1] & 0x7f, b_end.pt, "{what}: B receives its codec");
        // Echo B's codec back, numbered as B's own stream: B → A is transcoded to PCMU.
        buf[2..4].copy_from_slice(&k.to_be_bytes());
        buf[4..8].copy_from_slice(&(k as u32 * 160).to_be_bytes());
        callee.send_to(&buf[..n], b.rtp.addr).unwrap();
        let (n, _) = match caller.recv_from(&mut buf) {
            Ok(got) => got,
            Err(_) if warm => return,
            Err(e) => panic!("{what} {backend:?} seq {seq} back: {e}"),
        };
        // Silence comes back to a side with CN as a one-byte CN packet.
        let want = if kind == 2 { (13, 13) } else { (172, 0) };
        assert_eq!(
            (n, buf[1] & 0x7f),
            want,
            "{what}: A receives PCMU (seq {seq})"
        );
    };
    // Warm-up: latching, transcoder construction, codec start-up, lazy runtime state.
    for seq in 0..50 {
        round(seq, true);
    }
    let (allocated, ()) = allocations_in_threads(MEDIA_WORKERS, || {
        for seq in 50..1050 {
            round(seq, false);
        }
    });
    assert_eq!(
        allocated, 0,
        "{what} {backend:?}: {allocated} allocations while transcoding 2000 packets and relaying 1000"
    );
    media.shutdown();
}
