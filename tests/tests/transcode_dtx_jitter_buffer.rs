//! Decoded streams played out on a clock, on the real binary:
//! * `--dtx-delay=40 --dtx-cn-params=40`: a PCMU caller that pauses for 300 ms between two
//!   talk spurts (DTX) reaches a PCMA callee as one unbroken stream: the tone, comfort
//!   noise of the configured level for the pause, the tone again, on one sequence and
//!   timestamp line.
//! * `AMR/8000/1////dtx--1` (the codec option): the AMR encoder toward the callee sends SID
//!   frames for the caller's silence and nothing between them.
//! * `--jitter-buffer=3`: packets that arrive out of order are put back in order, a packet
//!   missing when its time comes is concealed (its sequence number and time kept), and
//!   when it comes after all it is dropped.

mod transcode_common;

use std::time::{Duration, Instant};

use ngmedia_codecs::g711;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::Daemon;
use transcode_common::*;

/// Level of PCM in dBov (0: full-scale square wave).
fn dbov(pcm: &[i16]) -> f64 {
    let p = pcm.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / pcm.len() as f64;
    10.0 * (p / (32768.0 * 32768.0)).log10()
}

/// `n` 20 ms PCMU packets of a continuous 440 Hz tone.
fn tone_packets(n: usize) -> Vec<Vec<u8>> {
    sine_frames(440.0, 8000.0, 160, n)
        .iter()
        .map(|f| {
            let mut out = vec![0u8; f.len()];
            g711::Law::Ulaw.encode(f, &mut out).unwrap();
            out
        })
        .collect()
}

/// Sleep until packet `slot` is due (20 ms per slot from `start`): a sender on its own
/// clock, whose packets do not drift however late the test thread wakes.
fn pace(start: Instant, slot: usize) {
    let due = start + Duration::from_millis(20 * slot as u64);
    if let Some(left) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

fn pcmu_to_pcma(daemon: &Daemon, call_id: &str) -> TcCall {
    setup(
        &daemon.client(),
        call_id,
        &[(0, "PCMU/8000", None)],
        &["PCMA"],
        |_| vec![(8, "PCMA/8000".into(), None)],
        Some(20),
    )
}

#[test]
fn dtx_pause_filled_with_comfort_noise_epoll() {
    dtx_pause_filled("epoll");
}

#[test]
fn dtx_pause_filled_with_comfort_noise_io_uring() {
    dtx_pause_filled("auto");
}

fn dtx_pause_filled(backend: &str) {
    let daemon = Daemon::start_with_env(
        &["--dtx-delay=40", "--dtx-cn-params=40"],
        &[("NGMEDIA_IO_BACKEND", backend)],
    );
    let call = pcmu_to_pcma(&daemon, "dtx-cn");
    let packets = tone_packets(20);
    // Ten packets in real time, 300 ms of DTX (the timestamps run on), ten more.
    let start = Instant::now();
    for (k, p) in packets.iter().enumerate() {
        let slot = if k < 10 { k } else { k + 15 };
        pace(start, slot);
        let pkt = rtp_packet(0, 100 + k as u16, 8000 + 160 * slot as u32, call.a.ssrc, p);
        call.a.sock.send_to(&pkt, call.a_dest).expect("send");
    }
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert!(
        rx.iter().all(|r| r.pt == 8 && r.payload.len() == 160),
        "PCMA"
    );
    // One line through the spurts and the pauses (the one between them, and the one after
    // the second, which lasts until --max-dtx).
    assert_eq!(check_line(&rx, "A→B"), 160);
    assert_eq!((rx[0].seq, rx[0].ts), (100, 8000));
    let pcm = decode(&lookup("PCMA", 8000, None, None), &mut rx);
    let is_tone: Vec<bool> = pcm.chunks(160).map(|p| tone(p, 440.0).1 > 0.5).collect();
    // Tone, fill, tone, fill: the pause between the spurts is there as packets of its own.
    let resumed = (10..is_tone.len())
        .find(|&k| is_tone[k])
        .expect("second spurt");
    let ended = (resumed..is_tone.len())
        .find(|&k| !is_tone[k])
        .unwrap_or(is_tone.len());
    assert!(is_tone[..10].iter().all(|&t| t), "first spurt");
    assert_eq!(ended - resumed, 10, "second spurt");
    let fill = resumed - 10;
    assert!((13..=17).contains(&fill), "{fill} packets for 300 ms");
    assert!(
        ended < rx.len(),
        "the pause after the second spurt is filled too"
    );
    let (amp, purity) = tone(&pcm[160..1600], 440.0);
    assert!(snr_db(purity) > 30.0 && (7000.0..9000.0).contains(&amp));
    let (_, purity) = tone(&pcm[(resumed + 1) * 160..ended * 160], 440.0);
    assert!(snr_db(purity) > 30.0);
    // The pause: comfort noise at the level of the payload (the generator runs about 6 dB
    // under it, as rtpengine's does), not silence and not the tone.
    let noise = &pcm[11 * 160..(resumed - 1) * 160];
    let level = dbov(noise);
    assert!((-50.0..-42.0).contains(&level), "noise at {level:.1} dBov");
    assert!(tone(noise, 440.0).1 < 0.01, "noise is not the tone");
}

#[test]
fn jitter_buffer_reorders_and_conceals() {
    let daemon = Daemon::start_with_env(&["--jitter-buffer=3"], &[("NGMEDIA_IO_BACKEND", "epoll")]);
    let call = pcmu_to_pcma(&daemon, "jitter-buffer");
    let packets = tone_packets(20);
    // Sent in real time with 4 and 5 swapped, 9 and 10 swapped, 14 missing.
    let mut order: Vec<usize> = (0..20).filter(|&k| k != 14).collect();
    order.swap(4, 5);
    order.swap(9, 10);
    let start = Instant::now();
    for (slot, &k) in order.iter().enumerate() {
        pace(start, slot);
        let pkt = rtp_packet(
            0,
            500 + k as u16,
            1600 + 160 * k as u32,
            call.a.ssrc,
            &packets[k],
        );
        call.a.sock.send_to(&pkt, call.a_dest).expect("send");
    }
    pace(start, order.len() + 10);
    // 14 after all, far too late.
    let pkt = rtp_packet(0, 514, 1600 + 160 * 14, call.a.ssrc, &packets[14]);
    call.a.sock.send_to(&pkt, call.a_dest).expect("send");
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert_eq!(
        rx.len(),
        20,
        "one packet per input packet, none for the late one"
    );
    // In order, on one line: the reordered packets put back, 14 filled in.
    for w in rx.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "arrival order is sequence order"
        );
    }
    assert_eq!(check_line(&rx, "A→B"), 160);
    assert_eq!((rx[0].seq, rx[0].ts), (500, 1600));
    let pcm = decode(&lookup("PCMA", 8000, None, None), &mut rx);
    // PCMU's concealment is silence (as in rtpengine); every other packet is the tone, so
    // the reordered ones are continuous with their neighbours.
    assert!(
        pcm[14 * 160..15 * 160].iter().all(|&s| s.abs() <= 8),
        "14 concealed"
    );
    for range in [160..14 * 160, 15 * 160..20 * 160] {
        let (_, purity) = tone(&pcm[range.clone()], 440.0);
        assert!(snr_db(purity) > 30.0, "tone over {range:?}");
    }
}

#[test]
fn dtx_codec_option_sends_amr_sid_for_silence() {
    // rtpengine's codec option in the seventh field: `AMR/8000/1////dtx--1`.
    let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", "epoll")]);
    let call = setup(
        &daemon.client(),
        "amr-dtx",
        &[(0, "PCMU/8000", None)],
        &["AMR/8000/1////dtx--1"],
        |offer| {
            let pt = pt_of(offer, "AMR", 8000).expect("AMR offered");
            assert!(
                !offer.audio().attributes.iter().any(|a| a.contains("dtx")),
                "an encoder option, not SDP"
            );
            vec![(pt, "AMR/8000".into(), Some("octet-align=1".into()))]
        },
        Some(20),
    );
    let pt = pt_of(&call.offer, "AMR", 8000).unwrap();
    // One second of digital silence, then a second of tone.
    let mut payloads = vec![vec![g711::ULAW_SILENCE; 160]; 50];
    payloads.extend(tone_packets(50));
    send(&call.a, call.a_dest, 0, 160, &payloads);
    let rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    let amr = lookup("AMR", 8000, None, Some("octet-align=1"));
    let fts: Vec<u8> = rx
        .iter()
        .map(|r| {
            assert_eq!(r.pt, pt);
            let mut ft = 15;
            ngmedia_codecs::amr::unpack(
                ngmedia_codecs::amr::AmrBand::Narrow,
                &amr.amr_params(),
                &r.payload,
                |f| {
                    ft = ngmedia_codecs::amr::toc_ft(f[0]);
                    Ok(())
                },
            )
            .expect("AMR payload");
            ft
        })
        .collect();
    // The silence: a few speech frames of hangover and SID frames, nothing between them;
    // the tone: every frame.
    let silence = fts.len() - 50;
    assert!(
        silence < 20,
        "{silence} packets for 1 s of silence: {fts:?}"
    );
    assert!(fts[..silence].contains(&8), "SID frames: {fts:?}");
    assert!(
        fts[silence..].iter().all(|&ft| ft < 8),
        "speech frames: {fts:?}"
    );
}
