//! Passthrough and transcoding in one call (rtpengine's "add some other codec, accept second
//! PT"): the caller offers PCMA and PCMU, the engine adds G.722, the callee answers PCMU and
//! G.722. The caller's answer lists PCMU, then its own PCMA standing for G.722. Each side may
//! send either of its codecs: PCMU passes through untouched but for SSRC and sequence number,
//! PCMA (caller) and G.722 (callee) are transcoded into the other side's first codec, and
//! both kinds leave on one output line (one SSRC, sequence numbers that follow the input's).

mod transcode_common;

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::RtpEndpoint;
use transcode_common::*;

#[test]
fn shared_codec_relayed_beside_transcoded_ones_io_uring() {
    run("auto");
}

#[test]
fn shared_codec_relayed_beside_transcoded_ones_epoll() {
    run("epoll");
}

/// Send `payloads` with PT `pt`, numbered from `seq` and timestamped from `ts` by `step`.
fn send_from(
    ep: &RtpEndpoint,
    dest: SocketAddr,
    pt: u8,
    seq: u16,
    ts: u32,
    step: u32,
    payloads: &[Vec<u8>],
) {
    for (k, p) in payloads.iter().enumerate() {
        let pkt = rtp_packet(pt, seq + k as u16, ts + k as u32 * step, ep.ssrc, p);
        ep.sock.send_to(&pkt, dest).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `packets` × 20 ms sine at 16 kHz, encoded as G.722.
fn g722_sine(freq: f64, amp: f64, packets: usize) -> Vec<Vec<u8>> {
    let mut enc = lookup("G722", 8000, None, None).encoder(20).unwrap();
    (0..packets)
        .map(|k| {
            let f: Vec<i16> = (k * 320..(k + 1) * 320)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
                })
                .collect();
            let mut out = vec![0u8; enc.max_payload_len()];
            let len = enc.encode(&f, &mut out).unwrap();
            out.truncate(len);
            out
        })
        .collect()
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-mixed",
        &[(8, "PCMA/8000", None), (0, "PCMU/8000", None)],
        &["G722"],
        |offer| {
            assert_eq!(pt_of(offer, "G722", 8000), Some(9), "engine offers G.722");
            vec![(0, "PCMU/8000".into(), None), (9, "G722/8000".into(), None)]
        },
        None,
    );
    assert_eq!(call.offer.audio().formats, ["8", "0", "9"]);
    assert_eq!(call.answer.audio().formats, ["0", "8"]);

    let pcmu = lookup("PCMU", 8000, None, None);
    let pcma = lookup("PCMA", 8000, None, None);
    let n = 25;
    let wait = Duration::from_secs(2);

    // A → B: PCMU relayed as it is, then PCMA transcoded to PCMU, one line.
    let shared = encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n));
    send_from(&call.a, call.a_dest, 0, 1000, 50_000, 160, &shared);
    let relayed = receive(&call.b, call.b_dest, wait);
    assert_eq!(relayed.len(), n, "A→B relayed packets");
    for (k, r) in relayed.iter().enumerate() {
        assert_eq!(
            (r.pt, r.seq, r.ts),
            (0, 1000 + k as u16, 50_000 + k as u32 * 160)
        );
        assert_eq!(r.payload, shared[k], "relayed payload untouched");
    }
    let line = relayed[0].ssrc;
    assert_ne!(
        line, call.a.ssrc,
        "the caller's codecs leave on our own SSRC"
    );
    let own = encode(&pcma, 20, &sine_frames(440.0, 8000.0, 160, n));
    send_from(&call.a, call.a_dest, 8, 1000 + n as u16, 54_000, 160, &own);
    let mut rx = receive(&call.b, call.b_dest, wait);
    assert_eq!(rx.len(), n, "A→B transcoded packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.ssrc == line));
    assert_eq!((rx[0].seq, rx[0].ts), (1000 + n as u16, 54_000));
    check_line(&rx, "A→B");
    let pcm = decode(&pcmu, &mut rx);
    let (amp, purity) = tone(&pcm[160..], 440.0);
    assert!(snr_db(purity) > 30.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((7000.0..9000.0).contains(&amp), "A→B amplitude {amp}");

    // B → A: G.722 transcoded into the caller's first codec (PCMU), then PCMU relayed.
    send_from(
        &call.b,
        call.b_dest,
        9,
        3000,
        70_000,
        160,
        &g722_sine(1000.0, 6000.0, n),
    );
    let mut rx = receive(&call.a, call.a_dest, wait);
    // 16 kHz to 8 kHz through the resampler, whose delay is not sent: the first packet goes
    // out with the second, the last 20 ms stay in the resampler.
    assert_eq!(rx.len(), n - 1, "B→A transcoded packets");
    assert!(rx.iter().all(|r| r.pt == 0));
    let line = rx[0].ssrc;
    assert_ne!(line, call.b.ssrc);
    assert_eq!((rx[0].seq, rx[0].ts), (3000, 70_000));
    check_line(&rx, "B→A");
    let pcm = decode(&pcmu, &mut rx);
    let (_, purity) = tone(&pcm[320..], 1000.0);
    assert!(snr_db(purity) > 20.0, "B→A SNR {:.1} dB", snr_db(purity));
    let shared = encode(&pcmu, 20, &sine_frames(600.0, 8000.0, 160, n));
    send_from(
        &call.b,
        call.b_dest,
        0,
        3000 + n as u16,
        74_000,
        160,
        &shared,
    );
    let relayed = receive(&call.a, call.a_dest, wait);
    assert_eq!(relayed.len(), n, "B→A relayed packets");
    // Relayed on the transcoded line, its numbers carry the line's running difference
    // (rtpengine's `seq_diff`): one packet fewer went out than came in.
    for (k, r) in relayed.iter().enumerate() {
        assert_eq!(
            (r.pt, r.seq, r.ts, r.ssrc),
            (0, 3000 + (n + k - 1) as u16, 74_000 + k as u32 * 160, line)
        );
        assert_eq!(r.payload, shared[k], "relayed payload untouched");
    }
}
