//! AMR-NB and AMR-WB (RFC 4867) on the real binary: a PCMU caller and an AMR-NB mobile leg
//! (bandwidth-efficient, `mode-set=7`), a PCMA caller and an AMR-WB leg (octet-aligned, 40 ms
//! packets of two frames). Tones cross both ways and are decoded and checked by SNR; the
//! payloads' CMR and table of contents, the timestamps and the offered fmtp are checked too,
//! and a codec mode request from the AMR-WB leg switches the mode it receives.
//! `silence media` on an AMR-WB party relayed to an AMR-WB callee: the callee gets the same
//! packets (size, CMR, frame types, numbering) carrying encoded silence. A recording of an
//! AMR-WB call is a 16 kHz WAV holding each party's tone on its own channel.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::amr::{self, AmrBand};
use ngmedia_codecs::{Codec, EncoderOptions};
use transcode_common::*;

#[test]
fn pcmu_caller_amr_nb_callee_bandwidth_efficient() {
    let daemon = start("auto");
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-amr-nb",
        &[(0, "PCMU/8000", None)],
        &["AMR/8000/1///mode-set--7"],
        |offer| {
            let pt = pt_of(offer, "AMR", 8000).expect("engine offers AMR/8000");
            assert!(pt >= 96, "dynamic payload type {pt}");
            assert!(
                offer.audio().has_attr(&format!("fmtp:{pt} mode-set=7")),
                "{offer:?}"
            );
            vec![(pt, "AMR/8000".into(), Some("mode-set=7; max-red=0".into()))]
        },
        Some(20),
    );
    let pt_b = pt_of(&call.offer, "AMR", 8000).unwrap();
    assert_eq!(call.answer.audio().formats, ["0"], "the caller keeps PCMU");
    let nb = lookup("AMR", 8000, None, Some("mode-set=7"));
    let n = 60;

    // Caller → mobile: PCMU in, one 12.2 kbit/s frame per packet out, no CMR.
    let pcmu = lookup("PCMU", 8000, None, None);
    send(
        &call.a,
        call.a_dest,
        0,
        160,
        &encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "A→B packets");
    assert_eq!(check_line(&rx, "A→B"), 160);
    for r in &rx {
        assert_eq!(r.pt, pt_b);
        // 4 + 6 + 244 bits.
        assert_eq!(r.payload.len(), 32);
        let (cmr, fts) = toc(AmrBand::Narrow, &nb, &r.payload);
        assert_eq!((cmr, fts.as_slice()), (amr::NO_CMR, &[7u8][..]));
    }
    let pcm = decode_amr(&nb, &mut rx);
    assert_eq!(pcm.len(), n * 160);
    let (amp, purity) = tone(&pcm[1600..], 440.0);
    eprintln!("PCMU→AMR: SNR {:.1} dB, amplitude {amp:.0}", snr_db(purity));
    assert!(snr_db(purity) > 15.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((5000.0..10000.0).contains(&amp), "A→B amplitude {amp}");

    // Mobile → caller: AMR 12.2 with a CMR in, PCMU out.
    let payloads = encode_amr(&nb, 20, 12_200, &sine_frames(1000.0, 6000.0, 160, n));
    send(&call.b, call.b_dest, pt_b, 160, &payloads);
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "B→A"), 160);
    let pcm = decode(&pcmu, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 1000.0);
    eprintln!("AMR→PCMU: SNR {:.1} dB, amplitude {amp:.0}", snr_db(purity));
    assert!(snr_db(purity) > 15.0, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((4000.0..8000.0).contains(&amp), "B→A amplitude {amp}");
}

#[test]
fn pcma_caller_amr_wb_callee_octet_aligned_two_frames() {
    let daemon = start("epoll");
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-amr-wb",
        &[(8, "PCMA/8000", None)],
        &["AMR-WB"],
        |offer| {
            let pt = pt_of(offer, "AMR-WB", 16000).expect("engine offers AMR-WB/16000");
            // rtpengine's default fmtp for an AMR codec the option adds without one.
            assert!(
                offer
                    .audio()
                    .has_attr(&format!("fmtp:{pt} octet-align=1;mode-change-capability=2")),
                "{offer:?}"
            );
            vec![(
                pt,
                "AMR-WB/16000".into(),
                Some("octet-align=1; mode-change-capability=2".into()),
            )]
        },
        Some(40),
    );
    let pt_b = pt_of(&call.offer, "AMR-WB", 16000).unwrap();
    assert_eq!(call.answer.audio().formats, ["8"], "the caller keeps PCMA");
    let wb = lookup("AMR-WB", 16000, None, Some("octet-align=1"));
    let n = 60;

    // Caller → mobile: 20 ms PCMA in, 40 ms AMR-WB out (two frames of 14.25 kbit/s, the
    // default mode), the timestamp advancing 640 on the 16 kHz clock.
    let pcma = lookup("PCMA", 8000, None, None);
    send(
        &call.a,
        call.a_dest,
        8,
        160,
        &encode(&pcma, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    // 8 kHz to 16 kHz through the resampler, whose delay is not sent: one packet less.
    assert_eq!(rx.len(), n / 2 - 1, "A→B packets");
    assert_eq!(check_line(&rx, "A→B"), 640);
    for r in &rx {
        assert_eq!(r.pt, pt_b);
        // CMR octet, two ToC octets, two 285-bit frames padded to 36 octets.
        assert_eq!(r.payload.len(), 1 + 2 + 2 * 36);
        let (cmr, fts) = toc(AmrBand::Wide, &wb, &r.payload);
        assert_eq!((cmr, fts.as_slice()), (amr::NO_CMR, &[3u8, 3][..]));
    }
    let pcm = decode_amr(&wb, &mut rx);
    assert_eq!(pcm.len(), (n / 2 - 1) * 640);
    // At 16 kHz a tone looks like half its frequency to the 8 kHz detector.
    let (amp, purity) = tone(&pcm[3200..], 220.0);
    eprintln!(
        "PCMA→AMR-WB: SNR {:.1} dB, amplitude {amp:.0}",
        snr_db(purity)
    );
    assert!(snr_db(purity) > 15.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((5000.0..10000.0).contains(&amp), "A→B amplitude {amp}");

    // Mobile → caller: 40 ms AMR-WB at 23.85 kbit/s in, 20 ms PCMA out.
    let frames16: Vec<Vec<i16>> = sine16(1000.0, 6000.0, 40, n / 2);
    let payloads = encode_amr(&wb, 40, 23_850, &frames16);
    send(&call.b, call.b_dest, pt_b, 640, &payloads);
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n - 1, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 8 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "B→A"), 160);
    let pcm = decode(&pcma, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 1000.0);
    eprintln!(
        "AMR-WB→PCMA: SNR {:.1} dB, amplitude {amp:.0}",
        snr_db(purity)
    );
    assert!(snr_db(purity) > 15.0, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((4000.0..8000.0).contains(&amp), "B→A amplitude {amp}");

    // The mobile's packets asked for mode 5 (CMR): what it receives from now on is 18.25
    // kbit/s (the engine's decoder of B→A hands the request to its encoder of A→B). As in
    // rtpengine, the mode changes once a frame is encoded: the first frame still has mode 3.
    let pkts = encode(&pcma, 20, &sine_frames(440.0, 8000.0, 160, 10));
    for (k, p) in pkts.iter().enumerate() {
        let pkt = ngmedia_tests::rtp::rtp_packet(
            8,
            2000 + k as u16,
            90_000 + 160 * k as u32,
            call.a.ssrc,
            p,
        );
        call.a.sock.send_to(&pkt, call.a_dest).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 5, "A→B packets after the CMR");
    for (k, r) in rx.iter().enumerate() {
        let (cmr, fts) = toc(AmrBand::Wide, &wb, &r.payload);
        let want: &[u8] = if k == 0 { &[3, 5] } else { &[5, 5] };
        assert_eq!(
            (cmr, fts.as_slice()),
            (amr::NO_CMR, want),
            "mode 5 as asked"
        );
    }
}

#[test]
fn silence_media_toward_an_amr_wb_callee() {
    let daemon = start("auto");
    let ng = daemon.client();
    let fmtp = "octet-align=1";
    let call = setup(
        &ng,
        "amr-silence",
        &[(96, "AMR-WB/16000", Some(fmtp))],
        &[],
        |_| vec![(96, "AMR-WB/16000".into(), Some(fmtp.into()))],
        Some(40),
    );
    let wb = lookup("AMR-WB", 16000, None, Some(fmtp));
    let tone = encode_amr(&wb, 40, 12650, &sine16(500.0, 8000.0, 40, 20));
    let level =
        |pcm: &[i16]| pcm.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / pcm.len() as f64;

    // Relayed as it is first.
    send(&call.a, call.a_dest, 96, 640, &tone[..10]);
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 10);
    assert!(
        rx.iter().zip(&tone).all(|(r, t)| &r.payload == t),
        "relayed untouched"
    );
    let loud = level(&decode_amr(&wb, &mut rx)[3200..]);

    ng.ok(ngmedia_tests::dict! {
        "command" => "silence media", "call-id" => call.call_id.as_str(), "from-tag" => "ta",
    });
    send(&call.a, call.a_dest, 96, 640, &tone[10..]);
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 10);
    for (r, t) in rx.iter().zip(&tone[10..]) {
        assert_eq!(r.payload.len(), t.len(), "same size");
        assert_ne!(&r.payload, t, "rewritten");
        assert_eq!(
            toc(AmrBand::Wide, &wb, &r.payload),
            toc(AmrBand::Wide, &wb, t),
            "CMR and frame types kept"
        );
    }
    let quiet = level(&decode_amr(&wb, &mut rx)[3200..]);
    assert!(
        loud > 1e6 && quiet < loud / 1000.0,
        "tone {loud:.0}, silenced {quiet:.0}"
    );
}

#[test]
fn recording_of_an_amr_wb_call_is_wideband() {
    let dir = std::env::temp_dir().join(format!("ngmedia-rec-amr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let daemon = ngmedia_tests::Daemon::start(&[&format!("--recording-dir={}", dir.display())]);
    let fmtp = "octet-align=1";
    let call = setup(
        &daemon.client(),
        "rec-amr-wb",
        &[(96, "AMR-WB/16000", Some(fmtp))],
        &[],
        |_| vec![(96, "AMR-WB/16000".into(), Some(fmtp.into()))],
        Some(20),
    );
    let wb = lookup("AMR-WB", 16000, None, Some(fmtp));
    let a_tone = encode_amr(&wb, 20, 23850, &sine16(3000.0, 8000.0, 20, 75));
    let b_tone = encode_amr(&wb, 20, 23850, &sine16(1000.0, 8000.0, 20, 75));
    let rec = record_both_ways(&daemon, &call, 96, 320, &a_tone, &b_tone);
    assert_eq!(rec.meta["streams"][0]["codecs"][0], "AMR-WB/16000");
    assert_eq!(rec.rate, 16000, "wideband WAV");
    // Caller's 3 kHz left (above what an 8 kHz recording could hold), callee's 1 kHz right
    // (tone() assumes 8 kHz: halve the frequency).
    let mid = |x: &[i16]| x[4000..20000.min(x.len())].to_vec();
    // Each channel holds its party's tone (AMR-WB renders a pure tone with much of its
    // power spread around it: half of it stays on the tone) and none of the other's.
    let (left, right) = (mid(&rec.left), mid(&rec.right));
    for (name, ch, own, other) in [
        ("left", &left, 1500.0, 500.0),
        ("right", &right, 500.0, 1500.0),
    ] {
        let (amp, purity) = tone(ch, own);
        assert!(
            amp > 2000.0 && purity > 0.3,
            "{name}: own tone {amp:.0}, {purity:.2}"
        );
        assert!(tone(ch, other).1 < 0.01, "{name}: the other party's tone");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `ms` × `packets` sine at 16 kHz.
fn sine16(freq: f64, amp: f64, ms: usize, packets: usize) -> Vec<Vec<i16>> {
    let n = ms * 16;
    (0..packets)
        .map(|k| {
            (k * n..(k + 1) * n)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
                })
                .collect()
        })
        .collect()
}

/// CMR and frame types of a payload.
fn toc(band: AmrBand, codec: &Codec, payload: &[u8]) -> (u8, Vec<u8>) {
    let mut fts = Vec::new();
    let cmr = amr::unpack(band, &codec.amr_params(), payload, |f| {
        fts.push(amr::toc_ft(f[0]));
        Ok(())
    })
    .expect("a well-formed AMR payload");
    (cmr, fts)
}

/// Encode PCM frames at `bitrate`, each packet asking the engine for mode 5 by CMR.
fn encode_amr(codec: &Codec, ptime: u32, bitrate: u32, frames: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let opts = EncoderOptions {
        bitrate: Some(bitrate),
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(ptime, &opts).expect("AMR encoder");
    if let ngmedia_codecs::EncoderKind::Amr(e) = &mut enc.kind {
        e.set_cmr_out(5);
    }
    frames
        .iter()
        .map(|f| {
            let mut out = vec![0u8; enc.max_payload_len()];
            let n = enc.encode(f, &mut out).expect("encode");
            out.truncate(n);
            out
        })
        .collect()
}

/// Decode AMR payloads (in sequence order) at the codec's own rate.
fn decode_amr(codec: &Codec, rx: &mut [Rx]) -> Vec<i16> {
    let base = rx.first().map_or(0, |r| r.seq);
    rx.sort_by_key(|r| r.seq.wrapping_sub(base));
    let mut dec = codec.decoder().expect("AMR decoder");
    let mut pcm = Vec::new();
    let mut buf = vec![0i16; 4096];
    for r in rx.iter() {
        let n = dec.decode(&r.payload, &mut buf).expect("AMR payload");
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}
