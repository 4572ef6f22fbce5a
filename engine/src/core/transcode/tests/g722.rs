//! G.722 through the transcoder: 16 kHz audio on an 8 kHz RTP clock.

use super::*;

fn g722() -> Codec {
    codec("G722", 8000, None, None)
}

/// 16 kHz PCM of a G.722 payload stream.
fn g722_decode_all(out: &[Out]) -> Vec<f64> {
    let mut dec = g722().decoder().unwrap();
    assert_eq!(dec.pcm_rate(), 16_000);
    let mut buf = [0i16; 4096];
    let mut pcm = Vec::new();
    for o in out {
        let n = dec.decode(&o.payload, &mut buf).unwrap();
        pcm.extend(buf[..n].iter().map(|&s| s as f64));
    }
    pcm
}

/// G.722 packets of a 16 kHz sine: `ms` per packet, timestamps in the 8000 Hz RTP clock.
fn g722_packets(freq: f64, count: usize, ms: usize) -> Vec<Vec<u8>> {
    let mut enc = g722().encoder(ms as u32).unwrap();
    let samples = ms * 16;
    (0..count)
        .map(|k| {
            let pcm: Vec<i16> = (k * samples..(k + 1) * samples)
                .map(|i| {
                    (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
                })
                .collect();
            let mut payload = vec![0u8; enc.max_payload_len()];
            let n = enc.encode(&pcm, &mut payload).unwrap();
            assert_eq!(n, samples / 2);
            rtp(
                9,
                k == 0,
                500 + k as u16,
                7000 + (k * ms * 8) as u32,
                0x722,
                &payload[..n],
            )
        })
        .collect()
}

#[test]
fn pcmu_to_g722_runs_16khz_audio_on_an_8khz_clock() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(g722(), 9, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    for (k, p) in pcmu_packets(440.0, 50, 160).iter().enumerate() {
        t.handle_rtp(k as u64 * 20, p);
        out.extend(drain(&mut t));
    }
    // The resampler's delay is not sent: the first packet goes out with the second, then
    // one out per one in.
    assert_eq!(out.len(), 49);
    assert!(out.iter().all(|o| o.pt == 9 && o.payload.len() == 160));
    // 20 ms = 320 samples = 160 bytes = 160 timestamp units (RFC 3551 §4.5.2).
    check_continuity(&out, 160);
    let pcm = g722_decode_all(&out);
    assert_eq!(pcm.len(), 49 * 320);
    let (amp, purity) = tone_purity(&pcm[3200..], 440.0, 16000.0);
    assert!(purity > 0.98, "purity {purity}");
    assert!((6500.0..9500.0).contains(&amp), "amplitude {amp}");
}

#[test]
fn g722_to_pcma_and_30ms_repacketisation() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(g722(), 9, 20, None),
        output: end(pcma(), 8, 30, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    for (k, p) in g722_packets(1000.0, 60, 20).iter().enumerate() {
        t.handle_rtp(k as u64 * 20, p);
        out.extend(drain(&mut t));
    }
    // 1200 ms in less the resampler's delay, 30 ms packets out.
    assert_eq!(out.len(), 39);
    assert!(out.iter().all(|o| o.pt == 8 && o.payload.len() == 240));
    check_continuity(&out, 240);
    let pcm: Vec<f64> = out
        .iter()
        .flat_map(|o| o.payload.iter().map(|&b| alaw_decode(b) as f64))
        .collect();
    let (amp, purity) = tone_purity(&pcm[1600..], 1000.0, 8000.0);
    assert!(purity > 0.98, "purity {purity}");
    assert!((6500.0..9500.0).contains(&amp), "amplitude {amp}");
}

#[test]
fn g722_opus_both_ways_at_16khz() {
    let mut to_opus = Transcoder::new(TranscodeSpec {
        input: end(g722(), 9, 20, None),
        output: end(opus(), 96, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    // No resampler: libopus encodes the 16 kHz G.722 audio directly.
    assert_eq!(to_opus.pcm_rate, 16_000);
    assert!(to_opus.rate_stage.is_none());
    let mut back = Transcoder::new(TranscodeSpec {
        input: end(opus(), 96, 20, None),
        output: end(g722(), 9, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    assert_eq!(back.pcm_rate, 16_000);
    assert!(back.rate_stage.is_none());
    let mut opus_out = Vec::new();
    let mut g722_out = Vec::new();
    // 6 kHz is above what any 8 kHz codec carries: it survives only a wideband path.
    for (k, p) in g722_packets(6000.0, 50, 20).iter().enumerate() {
        to_opus.handle_rtp(k as u64 * 20, p);
        for o in drain(&mut to_opus) {
            back.handle_rtp(
                k as u64 * 20,
                &rtp(o.pt, o.marker, o.seq, o.ts, o.ssrc, &o.payload),
            );
            opus_out.push(o);
            g722_out.extend(drain(&mut back));
        }
    }
    assert_eq!((opus_out.len(), g722_out.len()), (50, 50));
    check_continuity(&opus_out, 960);
    check_continuity(&g722_out, 160);
    let pcm = g722_decode_all(&g722_out);
    let (_, purity) = tone_purity(&pcm[3200..], 6000.0, 16000.0);
    assert!(purity > 0.9, "6 kHz purity {purity}");
}

#[test]
fn g722_loss_is_filled_and_events_keep_the_8khz_clock() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(g722(), 9, 20, Some(101)),
        output: end(opus(), 96, 20, Some(97)),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let pk = g722_packets(440.0, 6, 20);
    // Packet 2 is lost: its 20 ms are filled, so the output timestamps stay contiguous.
    let mut out = Vec::new();
    for (k, p) in pk.iter().enumerate().filter(|(k, _)| *k != 2) {
        t.handle_rtp(k as u64 * 20, p);
        out.extend(drain(&mut t));
    }
    assert_eq!(out.len(), 6);
    check_continuity(&out, 960);
    assert_eq!(t.counters().concealed, 1);
    // A digit at the G.722 side's telephone-event/8000: 400 units are 50 ms, 2400 at 48 kHz.
    let ev_ts = 7000 + 6 * 160;
    for (seq, (d, end_)) in [(400u16, false), (800, true)].into_iter().enumerate() {
        t.handle_rtp(
            200,
            &rtp(
                101,
                seq == 0,
                506 + seq as u16,
                ev_ts,
                0x722,
                &event_payload(3, end_, d),
            ),
        );
    }
    let ev = drain(&mut t);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e.pt == 97 && e.ts == out[5].ts + 960));
    let d: Vec<u16> = ev
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap().duration)
        .collect();
    assert_eq!(d, [2400, 4800]);
}
