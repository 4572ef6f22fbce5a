use super::*;
use ngmedia_codecs::dtmf::TelephoneEvent;
use ngmedia_codecs::g711::{alaw_decode, ulaw_decode, ulaw_encode};

mod events;
mod g722;
mod sequencing;

fn codec(name: &str, rate: u32, ch: Option<u8>, fmtp: Option<&str>) -> Codec {
    Codec::lookup(name, rate, ch, fmtp).unwrap()
}

fn end(c: Codec, pt: u8, ptime: u32, event_pt: Option<u8>) -> CodecEnd {
    CodecEnd {
        codec: c,
        pt,
        ptime_ms: ptime,
        event_pt,
        bitrate: None,
        cn_pt: None,
        dtx: false,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
    }
}

fn pcmu() -> Codec {
    codec("PCMU", 8000, None, None)
}
fn pcma() -> Codec {
    codec("PCMA", 8000, None, None)
}
fn opus() -> Codec {
    codec("opus", 48000, Some(2), None)
}
fn g729() -> Codec {
    codec("G729", 8000, None, Some("annexb=no"))
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    write_header(&mut p, marker, pt, seq, ts, ssrc);
    p.extend_from_slice(payload);
    p
}

/// `n` samples of a sine at 8 kHz starting at sample `start`.
fn sine(freq: f64, amp: f64, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

fn pcmu_packets(freq: f64, count: usize, samples: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| {
            let pcm = sine(freq, 8000.0, k * samples, samples);
            let payload: Vec<u8> = pcm.iter().map(|&s| ulaw_encode(s)).collect();
            rtp(
                0,
                k == 0,
                100 + k as u16,
                1000 + (k * samples) as u32,
                0xabc,
                &payload,
            )
        })
        .collect()
}

struct Out {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn drain(t: &mut Transcoder) -> Vec<Out> {
    let mut buf = [0u8; 2048];
    let mut v = Vec::new();
    while let Some(n) = t.poll_output(&mut buf) {
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        v.push(Out {
            pt: h.payload_type(),
            marker: h.marker(),
            seq: h.sequence_number(),
            ts: h.timestamp(),
            ssrc: h.ssrc(),
            payload: h.payload().unwrap().to_vec(),
        });
    }
    v
}

/// Amplitude of `freq` relative to the signal's RMS: ~1.0 for a pure tone.
fn tone_purity(pcm: &[f64], freq: f64, rate: f64) -> (f64, f64) {
    let n = pcm.len() as f64;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in pcm.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate;
        re += s * w.cos();
        im += s * w.sin();
    }
    let amp = 2.0 * (re * re + im * im).sqrt() / n;
    let rms = (pcm.iter().map(|s| s * s).sum::<f64>() / n).sqrt();
    (amp, amp / (rms * std::f64::consts::SQRT_2))
}

fn check_continuity(out: &[Out], step: u32) {
    for w in out.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(step));
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
}

fn event_payload(event: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut b = [0u8; 4];
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .write(&mut b)
    .unwrap();
    b.to_vec()
}

/// The complexity of the Opus encoder a transcoder toward Opus runs.
fn opus_encoder_complexity(input: Codec, bitrate: Option<u32>) -> u8 {
    let mut output = end(opus(), 111, 20, None);
    output.bitrate = bitrate;
    let t = Transcoder::new(TranscodeSpec {
        input: end(input, 96, 20, None),
        output,
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    match &t.encoder.kind {
        ngmedia_codecs::EncoderKind::Opus(enc) => enc.config().complexity,
        _ => panic!("not an Opus encoder"),
    }
}

#[test]
fn opus_complexity_follows_the_other_sides_pcm_rate() {
    // Narrowband PCM: the narrowband rule.
    assert_eq!(opus_encoder_complexity(pcmu(), None), 0);
    assert_eq!(opus_encoder_complexity(pcmu(), Some(24_000)), 3);
    assert_eq!(opus_encoder_complexity(pcmu(), Some(16_000)), 5);
    // 16 kHz PCM (G.722, AMR-WB): the wideband rule, at the default bitrate and set ones.
    let g722 = codec("G722", 8000, None, None);
    let amr_wb = codec("AMR-WB", 16000, None, Some("octet-align=1"));
    assert_eq!(opus_encoder_complexity(g722, None), 4);
    assert_eq!(opus_encoder_complexity(amr_wb, None), 4);
    assert_eq!(opus_encoder_complexity(g722, Some(24_000)), 6);
    assert_eq!(opus_encoder_complexity(g722, Some(16_000)), 8);
    assert_eq!(opus_encoder_complexity(amr_wb, Some(64_000)), 4);
}

#[test]
fn pcmu_to_pcma_keeps_the_sine() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    for (k, p) in pcmu_packets(440.0, 25, 160).iter().enumerate() {
        t.handle_rtp(k as u64 * 20, p);
        out.extend(drain(&mut t));
    }
    assert_eq!(out.len(), 25);
    // rtpengine's output line: the input's sequence numbers and timestamps, no marker.
    assert!(out.iter().all(|o| !o.marker));
    for (k, o) in out.iter().enumerate() {
        assert_eq!((o.seq, o.ts), (100 + k as u16, 1000 + 160 * k as u32));
    }
    assert!(out.iter().all(|o| o.pt == 8 && o.payload.len() == 160));
    assert_eq!(out[0].ssrc, t.ssrc());
    assert_ne!(out[0].ssrc, 0xabc);
    check_continuity(&out, 160);
    let pcm: Vec<f64> = out
        .iter()
        .flat_map(|o| o.payload.iter().map(|&b| alaw_decode(b) as f64))
        .collect();
    let (amp, purity) = tone_purity(&pcm, 440.0, 8000.0);
    assert!((7000.0..9000.0).contains(&amp), "amplitude {amp}");
    assert!(purity > 0.99, "purity {purity}");
    assert_eq!(t.counters().sent_packets, 25);
    assert_eq!(t.counters().sent_octets, 25 * 160);
}

#[test]
fn pcmu_opus_pcmu_round_trip_keeps_440_hz() {
    let mut to_opus = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(opus(), 96, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut back = Transcoder::new(TranscodeSpec {
        input: end(opus(), 96, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut pcm = Vec::new();
    let mut opus_out = Vec::new();
    for (k, p) in pcmu_packets(440.0, 50, 160).iter().enumerate() {
        to_opus.handle_rtp(k as u64 * 20, p);
        for o in drain(&mut to_opus) {
            let pkt = rtp(o.pt, o.marker, o.seq, o.ts, o.ssrc, &o.payload);
            opus_out.push(o);
            back.handle_rtp(k as u64 * 20, &pkt);
            for b in drain(&mut back) {
                assert_eq!((b.pt, b.payload.len()), (0, 160));
                pcm.extend(b.payload.iter().map(|&x| ulaw_decode(x) as f64));
            }
        }
    }
    assert_eq!(opus_out.len(), 50);
    check_continuity(&opus_out, 960);
    assert!(opus_out.iter().all(|o| o.pt == 96 && o.payload.len() >= 8));
    // Skip the codec's start-up (first 200 ms).
    let (amp, purity) = tone_purity(&pcm[1600..], 440.0, 8000.0);
    assert!(purity > 0.9, "purity {purity}");
    assert!((5000.0..11000.0).contains(&amp), "amplitude {amp}");
}

#[test]
fn g729_10ms_frames_to_20ms_opus_and_back() {
    // PCMU 20 ms → G.729 10 ms packets (two per input packet).
    let mut to_g729 = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(g729(), 18, 10, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut g729_to_opus = Transcoder::new(TranscodeSpec {
        input: end(g729(), 18, 10, None),
        output: end(opus(), 111, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut opus_to_pcmu = Transcoder::new(TranscodeSpec {
        input: end(opus(), 111, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let (mut n729, mut nopus) = (0, 0);
    let mut pcm = Vec::new();
    for (k, p) in pcmu_packets(600.0, 50, 160).iter().enumerate() {
        to_g729.handle_rtp(k as u64 * 20, p);
        for g in drain(&mut to_g729) {
            assert_eq!((g.pt, g.payload.len()), (18, 10));
            n729 += 1;
            g729_to_opus.handle_rtp(0, &rtp(g.pt, g.marker, g.seq, g.ts, g.ssrc, &g.payload));
            for o in drain(&mut g729_to_opus) {
                nopus += 1;
                opus_to_pcmu.handle_rtp(0, &rtp(o.pt, o.marker, o.seq, o.ts, o.ssrc, &o.payload));
                for b in drain(&mut opus_to_pcmu) {
                    pcm.extend(b.payload.iter().map(|&x| ulaw_decode(x) as f64));
                }
            }
        }
    }
    assert_eq!((n729, nopus), (100, 50));
    let (_, purity) = tone_purity(&pcm[2400..], 600.0, 8000.0);
    assert!(purity > 0.8, "purity {purity}");
}

#[test]
fn repacketization_counts() {
    // 60 ms PCMU in → 20 ms PCMA out: three per input packet.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 60, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut total = 0;
    for (k, p) in pcmu_packets(300.0, 4, 480).iter().enumerate() {
        t.handle_rtp(k as u64 * 60, p);
        let out = drain(&mut t);
        assert_eq!(out.len(), 3);
        total += out.len();
    }
    assert_eq!(total, 12);
    // 10 ms in → 30 ms out: one packet every third input.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 10, None),
        output: end(pcma(), 8, 30, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let counts: Vec<usize> = pcmu_packets(300.0, 6, 80)
        .iter()
        .enumerate()
        .map(|(k, p)| {
            t.handle_rtp(k as u64 * 10, p);
            drain(&mut t).len()
        })
        .collect();
    assert_eq!(counts, vec![0, 0, 1, 0, 0, 1]);
}

#[test]
fn loss_is_concealed_without_timestamp_jump() {
    for (out_codec, pt, step) in [(pcma(), 8, 160u32), (opus(), 96, 960)] {
        let mut t = Transcoder::new(TranscodeSpec {
            input: end(pcmu(), 0, 20, None),
            output: end(out_codec, pt, 20, None),
            detect_dtmf: false,
            passthrough: PtSet::NONE,
        })
        .unwrap();
        let mut out = Vec::new();
        for (k, p) in pcmu_packets(440.0, 20, 160).iter().enumerate() {
            if k == 7 || k == 8 {
                continue; // lost
            }
            t.handle_rtp(k as u64 * 20, p);
            out.extend(drain(&mut t));
        }
        assert_eq!(out.len(), 20, "{pt}: lost packets are filled");
        check_continuity(&out, step);
        assert!(!out[9].marker);
        assert_eq!(t.counters().concealed, 2);
        let r = t.reception().unwrap();
        assert_eq!((r.cumulative_lost, r.extended_highest_seq), (2, 119));
        assert_eq!(r.fraction_lost, (2 * 256 / 20) as u8);
    }
}

#[test]
fn concealment_is_bounded_per_stream() {
    // 4 s of 20 ms packets, losing one in `every`.
    let run = |every: usize| {
        let mut t = Transcoder::new(TranscodeSpec {
            input: end(pcmu(), 0, 20, None),
            output: end(pcma(), 8, 20, None),
            detect_dtmf: false,
            passthrough: PtSet::NONE,
        })
        .unwrap();
        let mut out = 0;
        let mut received = 0;
        for (k, p) in pcmu_packets(440.0, 200, 160).iter().enumerate() {
            if k % every == every - 1 {
                continue;
            }
            t.handle_rtp(k as u64 * 20, p);
            received += 1;
            out += drain(&mut t).len();
        }
        let c = t.counters();
        // One packet out per packet in or concealed; the sequencer may still hold the last
        // one, waiting for the lost one before it.
        let expected = received + c.concealed;
        assert!(
            out as u64 == expected || out as u64 + 1 == expected,
            "{out} out, {expected} expected"
        );
        (c.concealed, c.unconcealed)
    };
    // 5 % loss: every lost packet is concealed (the last one has no successor to show it).
    assert_eq!(run(20), (9, 0));
    // 50 % loss (a worker whose sockets overflow): the burst, then 5 a second.
    let (concealed, unconcealed) = run(2);
    // 100 lost; the last has no successor, and the sequencer still waits for the one before
    // it when the input ends.
    assert_eq!(concealed + unconcealed, 98);
    assert!((25..=31).contains(&concealed), "{concealed} concealed");
}

#[test]
fn duplicates_dropped_and_silence_gap_closed() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let pk = pcmu_packets(440.0, 4, 160);
    t.handle_rtp(0, &pk[0]);
    t.handle_rtp(20, &pk[1]);
    t.handle_rtp(21, &pk[1]);
    assert_eq!(t.counters().late, 1);
    let first = drain(&mut t);
    assert_eq!(first.len(), 2);
    // Next packet continues the sequence but 1 s later in timestamp: silence suppressed.
    let payload = vec![0xffu8; 160];
    t.handle_rtp(1000, &rtp(0, true, 102, 1000 + 320 + 8000, 0xabc, &payload));
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    // As rtpengine: the output timestamps count the audio sent, no marker.
    assert!(!out[0].marker);
    assert_eq!(out[0].seq, first[1].seq.wrapping_add(1));
    assert_eq!(out[0].ts, first[1].ts.wrapping_add(160));
    assert_eq!(t.counters().concealed, 0);
}

#[test]
fn unknown_payload_types_and_garbage_are_counted() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    t.handle_rtp(0, &[0x80, 0, 1]);
    t.handle_rtp(0, &rtp(9, false, 1, 1, 1, &[1, 2, 3]));
    assert_eq!(t.counters().errors, 2);
    assert!(t.poll_output(&mut [0u8; 2048]).is_none());
}

/// One second of digital silence (then one tone packet) from PCMU into a transcoder toward
/// `output`: the packets it sends.
fn silence_then_tone(output: CodecEnd) -> Vec<Out> {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output,
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    for k in 0..50u16 {
        t.handle_rtp(
            k as u64 * 20,
            &rtp(0, false, k, k as u32 * 160, 7, &[0xff; 160]),
        );
        out.extend(drain(&mut t));
    }
    let tone = &pcmu_packets(440.0, 51, 160)[50];
    let mut pkt = tone.clone();
    pkt[2..4].copy_from_slice(&50u16.to_be_bytes());
    pkt[4..8].copy_from_slice(&8000u32.to_be_bytes());
    pkt[8..12].copy_from_slice(&7u32.to_be_bytes());
    pkt[1] &= 0x7f;
    t.handle_rtp(1000, &pkt);
    out.extend(drain(&mut t));
    out
}

#[test]
fn dtx_codec_option_lets_the_encoder_suppress_silence() {
    // AMR (`/dtx--1`): SID frames during the silence, nothing between them.
    let amr = codec("AMR", 8000, None, None);
    let plain = silence_then_tone(end(amr, 97, 20, None));
    assert_eq!(plain.len(), 51, "without DTX every frame is sent");
    let out = silence_then_tone(CodecEnd {
        dtx: true,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
        ..end(amr, 97, 20, None)
    });
    assert!(out.len() < 20, "{} packets for 1 s of silence", out.len());
    let params = amr.amr_params();
    let fts: Vec<u8> = out
        .iter()
        .map(|o| {
            let mut ft = 15;
            ngmedia_codecs::amr::unpack(
                ngmedia_codecs::amr::AmrBand::Narrow,
                &params,
                &o.payload,
                |f| {
                    ft = ngmedia_codecs::amr::toc_ft(f[0]);
                    Ok(())
                },
            )
            .unwrap();
            ft
        })
        .collect();
    assert!(fts.contains(&8), "SID frames describe the silence: {fts:?}");
    // The talk spurt after it: speech again, timestamps counting the time that passed.
    let last = out.last().unwrap();
    assert_ne!(fts[fts.len() - 1], 8);
    assert_eq!(last.ts, 50 * 160);
    // Opus (`/dtx--1`): silence leaves as nothing (or the odd DTX frame), the next talk
    // spurt carries the marker.
    let plain = silence_then_tone(end(opus(), 96, 20, None));
    assert_eq!(plain.len(), 51);
    let out = silence_then_tone(CodecEnd {
        dtx: true,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
        ..end(opus(), 96, 20, None)
    });
    assert!(
        out.len() < 20,
        "{} Opus packets for 1 s of silence",
        out.len()
    );
    let last = out.last().unwrap();
    assert!(
        last.marker && last.payload.len() > 3,
        "talk spurt after DTX"
    );
}

#[test]
fn pcmu_16khz_to_pcma_drops_the_resampler_delay() {
    // rtpengine's "DTMF scaling" section: G.711 at a 16 kHz clock into 8 kHz PCMA. The
    // resampler's start-up delay is not sent: the first 20 ms packet yields less than a
    // packet and goes out with the second, every sample of it settled.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(codec("PCMU", 16000, None, None), 100, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let silence = [0u8; 320];
    t.handle_rtp(0, &rtp(100, false, 1000, 3000, 0x1234, &silence));
    assert!(drain(&mut t).is_empty());
    let mut out = Vec::new();
    for k in 1..4u16 {
        t.handle_rtp(
            u64::from(k) * 20,
            &rtp(
                100,
                false,
                1000 + k,
                3000 + 320 * u32::from(k),
                0x1234,
                &silence,
            ),
        );
        let got = drain(&mut t);
        assert_eq!(got.len(), 1, "packet {k}");
        out.extend(got);
    }
    for (k, o) in out.iter().enumerate() {
        assert_eq!(
            (o.pt, o.seq, o.ts),
            (8, 1000 + k as u16, 3000 + 160 * k as u32)
        );
        assert_eq!(o.payload, vec![0x2a; 160], "packet {k}");
    }
}
