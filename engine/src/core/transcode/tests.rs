use super::*;
use ngmedia_codecs::dtmf::{TelephoneEvent, ToneGenerator};
use ngmedia_codecs::g711::{alaw_decode, ulaw_decode, ulaw_encode};

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

#[test]
fn telephone_event_gets_the_other_sides_pt_and_clock() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, Some(101)),
        output: end(opus(), 96, 20, Some(97)),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let pk = pcmu_packets(440.0, 2, 160);
    t.handle_rtp(0, &pk[0]);
    t.handle_rtp(20, &pk[1]);
    let audio = drain(&mut t);
    assert_eq!(audio.len(), 2);
    // Digit 5 at input ts 1320, three reports and the end (sent three times).
    let ev_ts = 1320;
    let mut seq = 102;
    for (d, end) in [
        (160, false),
        (320, false),
        (480, false),
        (640, true),
        (640, true),
        (640, true),
    ] {
        t.handle_rtp(
            0,
            &rtp(101, d == 160, seq, ev_ts, 0xabc, &event_payload(5, end, d)),
        );
        seq += 1;
    }
    let ev = drain(&mut t);
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 97 && e.ts == audio[1].ts + 960));
    assert!(ev[0].marker && !ev[1].marker);
    let parsed: Vec<TelephoneEvent> = ev
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap())
        .collect();
    assert_eq!(parsed[0].duration, 960);
    assert_eq!(parsed[3].duration, 3840);
    assert!(parsed[3].end && parsed[0].event == 5);
    for w in ev.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    // Audio after the event continues after its end on the output timeline.
    let payload = vec![0xffu8; 160];
    t.handle_rtp(0, &rtp(0, true, seq, ev_ts + 640, 0xabc, &payload));
    let after = drain(&mut t);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].ts, ev[0].ts + 3840);
    assert_eq!(after[0].seq, ev[5].seq.wrapping_add(1));
    assert_eq!((audio[0].seq, ev[0].seq), (100, 102));
    assert!(!after[0].marker);
}

#[test]
fn telephone_event_rendered_in_band_without_peer_events() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, Some(101)),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    let reports = [
        (160, false),
        (320, false),
        (480, false),
        (800, true),
        (800, true),
    ];
    for (seq, (d, end)) in (1u16..).zip(reports) {
        t.handle_rtp(
            0,
            &rtp(101, d == 160, seq, 5000, 7, &event_payload(1, end, d)),
        );
        out.extend(drain(&mut t));
    }
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|o| o.pt == 8));
    let pcm: Vec<i16> = out
        .iter()
        .flat_map(|o| o.payload.iter().map(|&b| alaw_decode(b)))
        .collect();
    let mut det = ngmedia_codecs::dtmf::DtmfDetector::new(8000).unwrap();
    let mut seen = Vec::new();
    det.process(&pcm, |tr, _| seen.push(tr));
    assert_eq!(
        seen.first(),
        Some(&ngmedia_codecs::dtmf::DtmfTransition::Start(1))
    );
}

#[test]
fn in_band_digit_detected_and_sent_as_events() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, Some(101)),
        detect_dtmf: true,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    // 200 ms of 440 Hz, 200 ms of digit 5 at -10 dBm0, 200 ms of 440 Hz.
    let mut gen = ToneGenerator::new(5, 10, 8000).unwrap();
    let mut out = Vec::new();
    for k in 0..30usize {
        let pcm = if (10..20).contains(&k) {
            let mut f = [0i16; 160];
            gen.fill(&mut f);
            f.to_vec()
        } else {
            sine(440.0, 6000.0, k * 160, 160)
        };
        let payload: Vec<u8> = pcm.iter().map(|&s| ulaw_encode(s)).collect();
        let pkt = rtp(0, k == 0, 10 + k as u16, 4000 + k as u32 * 160, 9, &payload);
        t.handle_rtp(k as u64 * 20, &pkt);
        out.extend(drain(&mut t));
    }
    // One packet per 20 ms frame (the end report replaces one), plus the end report's
    // two retransmissions.
    assert_eq!(out.len(), 32);
    for w in out.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    let first_ev = out.iter().position(|o| o.pt == 101).expect("events sent");
    let events: Vec<&Out> = out.iter().filter(|o| o.pt == 101).collect();
    let last_ev = first_ev + events.len() - 1;
    assert!(out[first_ev..=last_ev].iter().all(|o| o.pt == 101));
    // Confirmed within three frames of the tone's start (two 12.75 ms blocks, sent from
    // the next frame on).
    assert!(
        (11..=13).contains(&first_ev),
        "first event at frame {first_ev}"
    );
    assert!(out[first_ev].marker && !out[first_ev + 1].marker);
    let ev_ts = out[first_ev].ts;
    assert_eq!(ev_ts, out[first_ev - 1].ts + 160);
    assert!(events.iter().all(|e| e.ts == ev_ts && e.payload.len() == 4));
    let reports: Vec<TelephoneEvent> = events
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap())
        .collect();
    // The detector's level of the tone: volume 10, give or take its rounding.
    assert!(reports
        .iter()
        .all(|r| r.event == 5 && (9..=11).contains(&r.volume)));
    let n = reports.len() - 3;
    for (i, r) in reports[..n].iter().enumerate() {
        assert_eq!((r.end, r.duration), (false, 160 * (i as u16 + 1)));
    }
    // The end report covers the frame it replaces too.
    let last = reports[n].duration;
    assert_eq!(last, reports[n - 1].duration + 160);
    assert!(reports[n..].iter().all(|r| r.end && r.duration == last));
    // About the tone's 200 ms, give or take the detector's confirmation delay.
    assert!((1120..=1920).contains(&last), "digit lasted {last}");
    // Audio resumes right after the reported duration (no marker, as rtpengine).
    let resume = &out[last_ev + 1];
    assert_eq!(resume.pt, 8);
    assert!(!resume.marker);
    assert_eq!(resume.ts, ev_ts + last as u32);
    assert!(out[last_ev + 1..].iter().all(|o| o.pt == 8 && !o.marker));
    assert_eq!(t.counters().sent_packets, 32);
}

#[test]
fn no_detection_without_the_option_or_peer_events() {
    for (detect, event_pt) in [(false, Some(101)), (true, None)] {
        let mut t = Transcoder::new(TranscodeSpec {
            input: end(pcmu(), 0, 20, None),
            output: end(pcma(), 8, 20, event_pt),
            detect_dtmf: detect,
            passthrough: PtSet::NONE,
        })
        .unwrap();
        let mut gen = ToneGenerator::new(1, 10, 8000).unwrap();
        let mut out = Vec::new();
        for k in 0..10usize {
            let mut f = [0i16; 160];
            gen.fill(&mut f);
            let payload: Vec<u8> = f.iter().map(|&s| ulaw_encode(s)).collect();
            t.handle_rtp(0, &rtp(0, false, k as u16, k as u32 * 160, 9, &payload));
            out.extend(drain(&mut t));
        }
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|o| o.pt == 8), "{detect} {event_pt:?}");
    }
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

/// Feed `(seq, ts, samples)` PCMU packets of silence and collect `(seq, ts, payload len)`
/// of what comes out after each one.
fn run_line(t: &mut Transcoder, input: &[(u16, u32, usize)]) -> Vec<Vec<(u16, u32, usize)>> {
    input
        .iter()
        .map(|&(seq, ts, n)| {
            t.handle_rtp(0, &rtp(0, false, seq, ts, 0x1234, &vec![0xff; n]));
            drain(t)
                .iter()
                .map(|o| {
                    assert!(!o.marker);
                    (o.seq, o.ts, o.payload.len())
                })
                .collect()
        })
        .collect()
}

#[test]
fn repacketised_output_keeps_the_input_numbering() {
    // rtpengine's "default ptime in, ptime=30 out": 20 ms in, 30 ms out.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcmu(), 0, 30, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let out = run_line(
        &mut t,
        &[
            (1000, 3000, 160),
            (1001, 3160, 160),
            (1002, 3320, 160),
            (1003, 3480, 160),
            (1004, 3640, 160),
            // A sequence and timestamp reset: the output carries on regardless.
            (8000, 500_000, 480),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec![(1000, 3000, 240)],
            vec![(1001, 3240, 240)],
            vec![],
            vec![(1002, 3480, 240)],
            vec![(1003, 3720, 240), (1004, 3960, 240)],
        ]
    );
    // The other direction: 60 ms in as three 20 ms, then 10 ms in with reordering.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let out = run_line(
        &mut t,
        &[
            (4000, 5000, 480),
            (4001, 5480, 480),
            (4002, 5960, 80),
            (4003, 6040, 80),
            (4005, 6200, 80),
            (4004, 6120, 80),
            (4006, 6280, 80),
            (4007, 6360, 80),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![(4000, 5000, 160), (4001, 5160, 160), (4002, 5320, 160)],
            vec![(4003, 5480, 160), (4004, 5640, 160), (4005, 5800, 160)],
            vec![],
            vec![(4006, 5960, 160)],
            vec![],
            vec![(4007, 6120, 160)],
            vec![],
            vec![(4008, 6280, 160)],
        ]
    );
    assert_eq!(t.counters().concealed, 0);
}

#[test]
fn input_sequence_reset_keeps_the_output_numbering() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcma(), 8, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut seqs = Vec::new();
    for (seq, ts) in [
        (2011u16, 5760u32),
        (62011, 5920),
        (62012, 6080),
        (62013, 6240),
    ] {
        t.handle_rtp(0, &rtp(8, false, seq, ts, 0x5678, &[0xd5; 160]));
        seqs.extend(drain(&mut t).iter().map(|o| (o.seq, o.ts)));
    }
    assert_eq!(
        seqs,
        vec![(2011, 5760), (2012, 5920), (2013, 6080), (2014, 6240)]
    );
}

#[test]
fn missing_packet_given_up_after_60_ms_and_concealed_in_its_place() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    // 11 lost; 12 waits for it; 13 is 60 ms past 10: 11 is given up.
    for (i, seq) in [10u16, 12, 13, 14].into_iter().enumerate() {
        let ts = 800 + (seq as u32 - 10) * 160;
        t.handle_rtp(0, &rtp(0, false, seq, ts, 1, &[0xff; 160]));
        let got = drain(&mut t);
        if i == 1 {
            assert!(got.is_empty(), "{seq} held");
        }
        out.extend(got.iter().map(|o| (o.seq, o.ts)));
    }
    assert_eq!(
        out,
        vec![(10, 800), (11, 960), (12, 1120), (13, 1280), (14, 1440)]
    );
    assert_eq!(t.counters().concealed, 1);
}

#[test]
fn new_input_ssrc_starts_a_new_output_stream() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    t.handle_rtp(0, &rtp(0, false, 5, 100, 1, &[0xff; 160]));
    let a = drain(&mut t);
    t.handle_rtp(0, &rtp(0, false, 900, 7000, 2, &[0xff; 160]));
    let b = drain(&mut t);
    assert_eq!((a[0].seq, a[0].ts, b[0].seq, b[0].ts), (5, 100, 900, 7000));
    assert_ne!(a[0].ssrc, b[0].ssrc);
}

/// A shared payload type beside the transcoded one (rtpengine's "one codec with one for
/// transcoding"): relayed packets keep their timestamp, payload and marker, take our SSRC
/// and the shifted sequence number, duplicates included; the transcoded ones follow the
/// same numbering, through a sequence reset of the sender.
#[test]
fn shared_payload_type_is_relayed_on_the_output_line() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcma(), 8, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: [0].into_iter().collect(),
    })
    .unwrap();
    let silence_u = [0u8; 160];
    let mut sent = Vec::new();
    let mut feed = |t: &mut Transcoder, k: u64, pt: u8, seq: u16, ts: u32| {
        t.handle_rtp(k * 20, &rtp(pt, false, seq, ts, 0x5678, &silence_u));
        sent.extend(drain(t));
    };
    feed(&mut t, 0, 0, 2000, 4000);
    feed(&mut t, 1, 0, 2000, 4000);
    feed(&mut t, 2, 0, 2001, 4160);
    feed(&mut t, 3, 0, 2010, 5600);
    feed(&mut t, 4, 8, 2011, 5760);
    feed(&mut t, 5, 8, 62011, 5920);
    feed(&mut t, 6, 8, 62012, 6080);
    feed(&mut t, 7, 0, 62013, 6240);
    let line: Vec<(u8, u16, u32)> = sent.iter().map(|o| (o.pt, o.seq, o.ts)).collect();
    assert_eq!(
        line,
        vec![
            (0, 2000, 4000),
            (0, 2000, 4000),
            (0, 2001, 4160),
            (0, 2010, 5600),
            (0, 2011, 5760),
            (0, 2012, 5920),
            (0, 2013, 6080),
            (0, 2014, 6240),
        ]
    );
    assert!(sent.iter().all(|o| o.ssrc == t.ssrc() && o.ssrc != 0x5678));
    // Relayed payloads are untouched; the A-law ones are re-encoded in µ-law.
    assert_eq!(sent[0].payload, silence_u);
    assert_eq!(sent[7].payload, silence_u);
    let expect: Vec<u8> = [0u8; 160]
        .iter()
        .map(|&c| ulaw_encode(alaw_decode(c)))
        .collect();
    assert_eq!(sent[4].payload, expect);
    assert_eq!(t.counters().sent_packets, 8);
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
