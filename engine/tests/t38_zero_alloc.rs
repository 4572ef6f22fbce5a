//! A T.38 gateway allocates nothing per packet: a counting global allocator watches it,
//! first while a whole fax session runs through a `FaxGateway` in memory
//! (spandsp's analogue machine on G.711, its T.38 terminal on UDPTL with FEC one way and
//! redundancy the other, a datagram lost now and then), then while a media worker runs a
//! gateway between two sockets on each IO backend.
//!
//! The measured sections use stack buffers only. The in-memory session counts the test's
//! own thread; the worker section counts the media worker and the test's thread, after a
//! warm-up (the test harness's threads are never counted). spandsp's own memory comes from the C
//! allocator, which this does not see: it allocates its state when the gateway starts.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ngmedia_codecs::g711::Law;
use ngmedia_codecs::t38::terminal::{write_test_page, FaxTerminal};
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::plan::{
    CallKey, CallPlan, FaxPlan, LatchPolicy, MediaPlane, PortKey, StreamMode, StreamPlan,
};
use ngmedia_engine::core::stats::StreamStats;
use ngmedia_engine::core::t38::gateway::{FaxGateway, GatewaySpec};
use ngmedia_engine::core::t38::udptl::{ErrorCorrection, UdptlPacket, UdptlReceiver, UdptlSender};
use ngmedia_engine::core::t38::{T38Flags, T38Options};
use ngmedia_engine::io::{Backend, IoOptions, MediaWorkers};

use ngmedia_test_support::{
    allocations_in, allocations_in_threads, CountingAllocator, MEDIA_WORKERS,
};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const PCMA: u8 = 8;

#[test]
fn a_t38_gateway_does_not_allocate_per_packet() {
    fax_session_in_memory();
    measure_worker(Backend::Epoll, 47900);
    match ngmedia_engine::io::io_uring_available() {
        Ok(()) => measure_worker(Backend::IoUring, 48000),
        Err(e) => eprintln!("io_uring unavailable here ({e}); only epoll measured"),
    }
}

fn spec(fec: bool) -> GatewaySpec {
    let flags = T38Flags {
        fec,
        ..T38Flags::default()
    };
    GatewaySpec::new(T38Options::ours(&flags), "PCMA", PCMA).unwrap()
}

/// `pcm` as one A-law RTP packet into `out`; returns its length.
fn rtp(seq: u16, pcm: &[i16; 160], out: &mut [u8; 172]) -> usize {
    out[..12].fill(0);
    out[0] = 0x80;
    out[1] = PCMA;
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    out[8..12].copy_from_slice(&0x5ca1_ab1eu32.to_be_bytes());
    Law::Alaw.encode(pcm, &mut out[12..]).unwrap();
    172
}

/// A page from the analogue machine to the T.38 terminal, 20 ms steps on a fake clock.
/// The gateway frames with FEC over three packets, the terminal's side with three
/// redundancy entries; every 37th datagram to the terminal and every 7th to the gateway (the terminal sends
/// far fewer) is lost and recovered.
fn fax_session_in_memory() {
    let dir = std::env::temp_dir().join(format!("ngmedia-t38-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (page, received) = (dir.join("page.tif"), dir.join("received.tif"));
    write_test_page(&page, 200, 3).unwrap();
    let mut sender = FaxTerminal::audio(true).unwrap();
    sender.send_file(&page).unwrap();
    let mut receiver = FaxTerminal::t38(false).unwrap();
    receiver.receive_file(&received).unwrap();
    let mut gw = FaxGateway::new(spec(true), 0, 0xfa7, 0, 0).unwrap();
    let mut to_gw = UdptlSender::new(ErrorCorrection::Redundancy { entries: 3 }, 300);
    let mut from_gw = UdptlReceiver::new();

    let (mut pcm, mut back) = ([0i16; 160], [0i16; 160]);
    let mut pkt = [0u8; 172];
    let mut out = [0u8; 1500];
    let (mut lost_to_gw, mut lost_from_gw) = (0u32, 0u32);
    let mut datagrams = 0u32;
    let mut ticks = 0;
    let (allocated, ()) = allocations_in(|| {
        // 120 s of fax time at most.
        while ticks < 6000 && (sender.outcome().is_none() || receiver.outcome().is_none()) {
            let now_us = ticks * 20_000;
            let n = sender.tx_audio(&mut pcm);
            pcm[n..].fill(0);
            let len = rtp(ticks as u16, &pcm, &mut pkt);
            gw.handle_audio(&pkt[..len]);
            if let Some(n) = gw.poll_audio(now_us, &mut out) {
                Law::Alaw.decode(&out[12..n], &mut back).unwrap();
                sender.rx_audio(&mut back);
            }
            while let Some(n) = gw.poll_udptl(&mut out) {
                datagrams += 1;
                if datagrams.is_multiple_of(37) {
                    lost_from_gw += 1;
                    continue;
                }
                let p = UdptlPacket::parse(&out[..n]).unwrap();
                from_gw.handle(&p, |seq, ifp| receiver.rx_ifp(ifp, seq));
            }
            receiver.advance(160);
            while let Some((ifp, count)) = receiver.poll_ifp() {
                let n = to_gw.write(ifp, &mut out).unwrap();
                if to_gw.next_seq().is_multiple_of(7) {
                    lost_to_gw += 1;
                    continue;
                }
                for _ in 0..count {
                    gw.handle_udptl(&out[..n]).unwrap();
                }
            }
            ticks += 1;
        }
    });
    let (sent, got) = (sender.outcome(), receiver.outcome());
    drop((sender, receiver));
    let _ = std::fs::remove_dir_all(&dir);
    let (sent, got) = (
        sent.expect("sender finished"),
        got.expect("receiver finished"),
    );
    assert!(sent.ok() && got.ok(), "{sent:?} {got:?}");
    assert_eq!((sent.pages_tx, got.pages_rx), (1, 1));
    assert!(
        lost_to_gw > 0 && lost_from_gw > 0,
        "lost {lost_to_gw} to the gateway, {lost_from_gw} from it"
    );
    assert_eq!(
        allocated, 0,
        "{allocated} allocations in a fax session of {ticks} ticks and {datagrams} datagrams"
    );
}

fn stream(port: PortKey, expected: SocketAddr, sink: PortKey, fax: FaxPlan) -> StreamPlan {
    let mode = match fax {
        FaxPlan::Gateway(_) => StreamMode::Opaque,
        FaxPlan::Audio => StreamMode::Rtp,
    };
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
        mode,
        fax: Some(fax),
    }
}

/// A worker runs a gateway between a T.38 party (UDPTL, no-signal indicators) and an
/// audio party (A-law silence); each round the audio party sends one packet and waits for
/// the gateway's, the T.38 party sends one datagram and takes what came back.
fn measure_worker(backend: Backend, port_min: u16) {
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
    let lo = Interface {
        name: "default".into(),
        local: IpAddr::from([127, 0, 0, 1]),
        advertised: None,
    };
    let (t38_port, audio_port) = (
        media.allocate_pair(&lo).unwrap(),
        media.allocate_pair(&lo).unwrap(),
    );
    let (t38, phone) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    phone
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    t38.set_nonblocking(true).unwrap();
    media.apply(CallPlan {
        call: CallKey(1),
        call_id: "fax".into(),
        streams: vec![
            stream(
                t38_port.rtp.key,
                t38.local_addr().unwrap(),
                audio_port.rtp.key,
                FaxPlan::Gateway(spec(false)),
            ),
            stream(
                audio_port.rtp.key,
                phone.local_addr().unwrap(),
                t38_port.rtp.key,
                FaxPlan::Audio,
            ),
        ],
        tos: 0,
    });

    let mut udptl = UdptlSender::new(ErrorCorrection::Redundancy { entries: 3 }, 300);
    let silence = [0i16; 160];
    let mut pkt = [0u8; 172];
    let mut datagram = [0u8; 300];
    let mut buf = [0u8; 2048];
    let mut round = |seq: u16| {
        let n = udptl.write(&[0x00], &mut datagram).unwrap();
        t38.send_to(&datagram[..n], t38_port.rtp.addr).unwrap();
        let len = rtp(seq, &silence, &mut pkt);
        phone.send_to(&pkt[..len], audio_port.rtp.addr).unwrap();
        let (n, _) = phone
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{backend:?} round {seq}: no gateway audio: {e}"));
        assert_eq!((n, buf[1] & 0x7f), (172, PCMA), "{backend:?} round {seq}");
        while let Ok((n, _)) = t38.recv_from(&mut buf) {
            UdptlPacket::parse(&buf[..n]).expect("the gateway sends UDPTL");
        }
    };
    // Warm-up: latching, the gateway's start, lazily initialised runtime state.
    for seq in 0..25 {
        round(seq);
    }
    let (allocated, ()) = allocations_in_threads(MEDIA_WORKERS, || {
        for seq in 25..125 {
            round(seq);
        }
    });
    assert_eq!(
        allocated, 0,
        "{backend:?}: {allocated} allocations in 100 gateway rounds"
    );
    media.shutdown();
}
