//! Comfort noise (RFC 3389) across a call, on the real binary started with rtpengine's
//! `--silence-detect=1`:
//! * `codec: {transcode: [PCMA, CN]}`: a PCMU caller without CN and a PCMA callee with CN.
//!   The callee's CN packets reach the caller as PCMU noise of the level they describe; the
//!   caller's silence reaches the callee as CN packets (rtpengine's `--cn-payload` default,
//!   −32 dBov), on the same sequence and timestamp line as the audio around them.
//! * `codec: {consume: [CN]}`: the caller's CN is hidden from a callee without CN, the
//!   answer still gives the caller CN; the caller's CN becomes noise for the callee, the
//!   callee's silence becomes CN toward the caller, with one codec on both sides.
//! * CN above 8 kHz: each codec goes with the CN of its own clock rate, as rtpengine adds
//!   them (`CN/48000` beside Opus, `CN/16000` beside AMR-WB). Toward an Opus callee the
//!   caller's silence leaves as CN on the 48 kHz timestamp line and the callee's CN/48000
//!   becomes noise for the caller; between a PCMA caller with CN/8000 and an AMR-WB callee
//!   with CN/16000, CN packets pass under the other side's payload type and clock.
//! * `codec: {consume: [CN], transcode: [PCMU]}` for an Opus caller with CN/48000 and a PCMU
//!   callee without CN: the caller keeps its CN/48000, which becomes noise for the callee;
//!   the callee's silence reaches the caller as CN/48000 on the Opus timestamp line.

mod transcode_common;

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_codecs::cn::CnPayload;
use ngmedia_codecs::g711;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, Daemon, NgClient, RtpEndpoint, Sdp, Value};
use transcode_common::*;

/// Send each payload with its PT from `ep`, sequence numbers and timestamps (160 per packet)
/// continuing from `seq`/`ts`, 2 ms apart.
fn send_mixed(ep: &RtpEndpoint, dest: SocketAddr, seq: u16, ts: u32, packets: &[(u8, Vec<u8>)]) {
    send_stepped(ep, dest, seq, ts, 160, packets);
}

/// [`send_mixed`] with timestamps `step` apart.
fn send_stepped(
    ep: &RtpEndpoint,
    dest: SocketAddr,
    seq: u16,
    ts: u32,
    step: u32,
    packets: &[(u8, Vec<u8>)],
) {
    for (k, (pt, p)) in packets.iter().enumerate() {
        let pkt = rtp_packet(*pt, seq + k as u16, ts + step * k as u32, ep.ssrc, p);
        ep.sock.send_to(&pkt, dest).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Level of PCM in dBov (0: full-scale square wave).
fn dbov(pcm: &[i16]) -> f64 {
    let p = pcm.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / pcm.len() as f64;
    10.0 * (p / (32768.0 * 32768.0)).log10()
}

fn tone_packets(law: g711::Law, n: usize) -> Vec<Vec<u8>> {
    sine_frames(440.0, 8000.0, 160, n)
        .iter()
        .map(|f| {
            let mut out = vec![0u8; f.len()];
            law.encode(f, &mut out).unwrap();
            out
        })
        .collect()
}

/// Ten PCMU tone packets, then ten of digital silence, from A (sequence 5000, timestamp
/// 10000): what B receives.
fn tone_then_silence_to_b(call: &TcCall) -> Vec<Rx> {
    let mut packets: Vec<(u8, Vec<u8>)> = tone_packets(g711::Law::Ulaw, 10)
        .into_iter()
        .map(|p| (0, p))
        .collect();
    packets.extend((0..10).map(|_| (0, vec![g711::ULAW_SILENCE; 160])));
    send_mixed(&call.a, call.a_dest, 5000, 10_000, &packets);
    let rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 20, "A→B packets");
    rx
}

/// Offer (A's payload types, `key` = `options` added to the request) and answer (B's
/// PCMU) of call `id`: the SDPs the engine gave B and A.
fn offer_answer(
    ng: &NgClient,
    id: &str,
    (a, b): (&RtpEndpoint, &RtpEndpoint),
    a_pts: &[transcode_common::Pt<'_>],
    (key, options): (&str, Value),
) -> (Sdp, Sdp) {
    let a_sdp = transcode_common::sdp(a.port(), a_pts, Some(20));
    let mut offer = dict! {
        "command" => "offer", "call-id" => id, "from-tag" => "ta", "sdp" => a_sdp,
        "ICE" => "remove", "replace" => vec!["origin"],
    };
    if let Value::Dict(d) = &mut offer {
        d.push((key.as_bytes().to_vec(), options));
    }
    let offer = parse_reply_sdp(&ng.ok(offer));
    let b_sdp = transcode_common::sdp(b.port(), &[(0, "PCMU/8000", None)], Some(20));
    let answer = parse_reply_sdp(&ng.ok(dict! {
        "command" => "answer", "call-id" => id, "from-tag" => "ta", "to-tag" => "tb",
        "sdp" => b_sdp, "ICE" => "remove", "replace" => vec!["origin"],
    }));
    (offer, answer)
}

fn start_silence_detect(backend: &str) -> Daemon {
    Daemon::start_with_env(&["--silence-detect=1"], &[("NGMEDIA_IO_BACKEND", backend)])
}

#[test]
fn transcode_cn_toward_pcma_callee_epoll() {
    transcode_cn("epoll");
}

#[test]
fn transcode_cn_toward_pcma_callee_io_uring() {
    transcode_cn("auto");
}

fn transcode_cn(backend: &str) {
    let daemon = start_silence_detect(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "cn-transcode",
        &[(0, "PCMU/8000", None)],
        &["PCMA", "CN"],
        |offer| {
            assert_eq!(pt_of(offer, "CN", 8000), Some(13), "CN added under PT 13");
            vec![(8, "PCMA/8000".into(), None), (13, "CN/8000".into(), None)]
        },
        None,
    );
    assert_eq!(call.offer.audio().formats, ["0", "8", "13"]);
    // The caller never offered CN: its answer has none.
    assert_eq!(call.answer.audio().formats, ["0"]);

    // B → A: ten PCMA tone packets, then ten CN packets describing −40 dBov noise.
    let mut packets: Vec<(u8, Vec<u8>)> = tone_packets(g711::Law::Alaw, 10)
        .into_iter()
        .map(|p| (8, p))
        .collect();
    packets.extend((0..10).map(|_| (13, vec![40u8])));
    send_mixed(&call.b, call.b_dest, 3000, 90_000, &packets);
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 20, "B→A packets");
    assert!(
        rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160),
        "all PCMU"
    );
    assert_eq!(check_line(&rx, "B→A"), 160);
    assert_eq!((rx[0].seq, rx[0].ts), (3000, 90_000));
    let pcm = decode(&lookup("PCMU", 8000, None, None), &mut rx);
    let (amp, purity) = tone(&pcm[160..1600], 440.0);
    assert!(snr_db(purity) > 30.0 && (7000.0..9000.0).contains(&amp));
    // The noise: the level the payload asked for (the generator runs 6 dB under it), and
    // noise rather than a tone or silence.
    let noise = &pcm[1600..];
    let level = dbov(noise);
    assert!((-48.0..-44.0).contains(&level), "noise at {level:.1} dBov");
    assert!(tone(noise, 440.0).1 < 0.01, "noise is not the tone");

    // A → B: ten PCMU tone packets, then ten packets of digital silence.
    let rx = tone_then_silence_to_b(&call);
    assert_eq!(check_line(&rx, "A→B"), 160);
    assert!(rx[..10].iter().all(|r| r.pt == 8 && r.payload.len() == 160));
    for r in &rx[10..] {
        assert_eq!(
            (r.pt, r.payload.as_slice()),
            (13, &[32u8][..]),
            "CN for silence"
        );
        let cn = CnPayload::parse(&r.payload).unwrap();
        assert_eq!((cn.level, cn.order), (32, 0));
    }
}

#[test]
fn consume_cn_same_codec_both_sides() {
    let daemon = start_silence_detect("epoll");
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x0a0a_0011);
    let b = RtpEndpoint::new(0x0b0b_0012);
    let (offer, answer) = offer_answer(
        &ng,
        "cn-consume",
        (&a, &b),
        &[(0, "PCMU/8000", None), (13, "CN/8000", None)],
        ("flags", vec!["codec-consume-CN"].into()),
    );
    // Consumed: the callee is not offered CN.
    assert_eq!(offer.audio().formats, ["0"]);
    // The caller keeps its CN: we take it.
    assert_eq!(answer.audio().formats, ["0", "13"]);
    let (a_dest, b_dest) = (answer.audio_addr(), offer.audio_addr());

    // A: audio, then CN (−30 dBov, a spectral tilt), then audio again.
    let tones = tone_packets(g711::Law::Ulaw, 4);
    let mut packets: Vec<(u8, Vec<u8>)> = tones[..2].iter().map(|p| (0, p.clone())).collect();
    packets.extend((0..6).map(|_| (13, vec![30u8, 40, 140])));
    packets.extend(tones[2..].iter().map(|p| (0, p.clone())));
    send_mixed(&a, a_dest, 100, 1000, &packets);
    let mut rx = receive(&b, b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 10, "A→B packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "A→B"), 160);
    let pcm = decode(&lookup("PCMU", 8000, None, None), &mut rx);
    let level = dbov(&pcm[320..1280]);
    assert!((-38.0..-34.0).contains(&level), "noise at {level:.1} dBov");
    // The tone around the noise passes intact.
    assert_eq!(&rx[0].payload, &tones[0]);
    assert_eq!(&rx[9].payload, &tones[3]);

    // B: audio, then silence: A gets CN for the silence.
    let mut packets: Vec<(u8, Vec<u8>)> = tones.iter().map(|p| (0, p.clone())).collect();
    packets.extend((0..4).map(|_| (0, vec![g711::ULAW_SILENCE; 160])));
    send_mixed(&b, b_dest, 700, 7000, &packets);
    let rx = receive(&a, a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 8, "B→A packets");
    assert_eq!(check_line(&rx, "B→A"), 160);
    assert!(rx[..4]
        .iter()
        .zip(&tones)
        .all(|(r, t)| r.pt == 0 && &r.payload == t));
    assert!(rx[4..].iter().all(|r| r.pt == 13 && r.payload == [32]));
}

#[test]
fn cn_at_48khz_beside_opus() {
    let daemon = start_silence_detect("epoll");
    let call = setup(
        &daemon.client(),
        "cn-opus",
        &[(0, "PCMU/8000", None)],
        &["opus", "CN"],
        |_| {
            vec![
                (96, "opus/48000/2".into(), None),
                (97, "CN/48000".into(), None),
            ]
        },
        None,
    );
    // rtpengine's order: the added codec, then the CN of its rate before the one asked for.
    assert_eq!(call.offer.audio().formats, ["0", "96", "97", "13"]);
    assert_eq!(pt_of(&call.offer, "CN", 48000), Some(97));
    assert_eq!(pt_of(&call.offer, "CN", 8000), Some(13));
    assert_eq!(call.answer.audio().formats, ["0"]);

    // B → A: Opus tone, then CN/48000 describing −40 dBov noise, on the 48 kHz clock.
    let opus = lookup("opus", 48000, Some(2), None);
    let mut packets: Vec<(u8, Vec<u8>)> = encode(&opus, 20, &sine_frames(440.0, 8000.0, 160, 10))
        .into_iter()
        .map(|p| (96, p))
        .collect();
    packets.extend((0..10).map(|_| (97, vec![40u8])));
    send_stepped(&call.b, call.b_dest, 3000, 90_000, 960, &packets);
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 20, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "B→A"), 160);
    let pcm = decode(&lookup("PCMU", 8000, None, None), &mut rx);
    let (_, purity) = tone(&pcm[480..1600], 440.0);
    assert!(snr_db(purity) > 15.0, "tone through Opus");
    let level = dbov(&pcm[1600..]);
    assert!((-48.0..-44.0).contains(&level), "noise at {level:.1} dBov");
    assert!(tone(&pcm[1600..], 440.0).1 < 0.01, "noise is not the tone");

    // A → B: PCMU tone, then digital silence: Opus, then CN/48000 on the Opus line.
    let rx = tone_then_silence_to_b(&call);
    assert_eq!(check_line(&rx, "A→B"), 960);
    assert!(rx[..10].iter().all(|r| r.pt == 96));
    assert!(
        rx[10..].iter().all(|r| r.pt == 97 && r.payload == [32]),
        "CN/48000 for silence"
    );
}

#[test]
fn cn_at_16khz_beside_amr_wb_is_forwarded() {
    let daemon = start_silence_detect("epoll");
    let call = setup(
        &daemon.client(),
        "cn-amr-wb",
        &[(8, "PCMA/8000", None), (13, "CN/8000", None)],
        &["AMR-WB"],
        |offer| {
            let amr = pt_of(offer, "AMR-WB", 16000).expect("AMR-WB offered");
            let cn = pt_of(offer, "CN", 16000).expect("CN/16000 offered");
            vec![
                (amr, "AMR-WB/16000".into(), Some("octet-align=1".into())),
                (cn, "CN/16000".into(), None),
            ]
        },
        None,
    );
    // The caller's CN stays after the added codec and the CN of its rate.
    assert_eq!(call.offer.audio().formats, ["8", "96", "97", "13"]);
    assert_eq!(call.answer.audio().formats, ["8", "13"]);

    // A → B: PCMA tone, then CN/8000: AMR-WB, then the same CN under PT 97, all on the
    // 16 kHz line.
    let mut packets: Vec<(u8, Vec<u8>)> = tone_packets(g711::Law::Alaw, 5)
        .into_iter()
        .map(|p| (8, p))
        .collect();
    packets.extend((0..5).map(|_| (13, vec![45u8, 60, 150])));
    send_mixed(&call.a, call.a_dest, 100, 1000, &packets);
    // (The 8 → 16 kHz resampler may hold back the first packet time, as rtpengine's does.)
    let rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert!((9..=10).contains(&rx.len()), "A→B packets: {}", rx.len());
    assert_eq!(check_line(&rx, "A→B"), 320);
    let (speech, cn) = rx.split_at(rx.len() - 5);
    assert!(speech.iter().all(|r| r.pt == 96), "AMR-WB for the tone");
    assert!(cn.iter().all(|r| r.pt == 97 && r.payload == [45, 60, 150]));

    // B → A: CN/16000 reaches the caller as its CN/8000, on the 8 kHz line.
    let packets: Vec<(u8, Vec<u8>)> = (0..5).map(|_| (97, vec![50u8])).collect();
    send_stepped(&call.b, call.b_dest, 700, 7000, 320, &packets);
    let rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 5, "B→A packets");
    assert_eq!(check_line(&rx, "B→A"), 160);
    assert!(rx.iter().all(|r| r.pt == 13 && r.payload == [50]));
}

#[test]
fn consumed_cn_at_48khz_becomes_noise_for_a_pcmu_callee() {
    let daemon = start_silence_detect("epoll");
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x0a0a_0031);
    let b = RtpEndpoint::new(0x0b0b_0032);
    let (offer, answer) = offer_answer(
        &ng,
        "cn48-consume",
        (&a, &b),
        &[(96, "opus/48000/2", None), (97, "CN/48000", None)],
        (
            "codec",
            dict! { "consume" => vec!["CN"], "transcode" => vec!["PCMU"] },
        ),
    );
    assert_eq!(
        offer.audio().formats,
        ["96", "0"],
        "CN hidden from the callee"
    );
    assert_eq!(
        answer.audio().formats,
        ["96", "97"],
        "the caller keeps its CN/48000"
    );
    let (a_dest, b_dest) = (answer.audio_addr(), offer.audio_addr());

    // A: Opus tone, then CN/48000 of −40 dBov: B hears the tone, then that noise.
    let opus = lookup("opus", 48000, Some(2), None);
    let mut packets: Vec<(u8, Vec<u8>)> = encode(&opus, 20, &sine_frames(440.0, 8000.0, 160, 10))
        .into_iter()
        .map(|p| (96, p))
        .collect();
    packets.extend((0..10).map(|_| (97, vec![40u8])));
    send_stepped(&a, a_dest, 100, 1000, 960, &packets);
    let mut rx = receive(&b, b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 20, "A→B packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "A→B"), 160);
    let pcm = decode(&lookup("PCMU", 8000, None, None), &mut rx);
    assert!(
        snr_db(tone(&pcm[480..1600], 440.0).1) > 15.0,
        "tone through Opus"
    );
    let level = dbov(&pcm[1600..]);
    assert!((-48.0..-44.0).contains(&level), "noise at {level:.1} dBov");

    // B: PCMU tone, then digital silence: Opus, then CN/48000 toward A.
    let mut packets: Vec<(u8, Vec<u8>)> = tone_packets(g711::Law::Ulaw, 4)
        .into_iter()
        .map(|p| (0, p))
        .collect();
    packets.extend((0..4).map(|_| (0, vec![g711::ULAW_SILENCE; 160])));
    send_mixed(&b, b_dest, 700, 7000, &packets);
    let rx = receive(&a, a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 8, "B→A packets");
    assert_eq!(check_line(&rx, "B→A"), 960);
    assert!(rx[..4].iter().all(|r| r.pt == 96));
    assert!(rx[4..].iter().all(|r| r.pt == 97 && r.payload == [32]));
}
