//! The DTMF guard of a G.729 or Opus party on a passthrough call allocates nothing per
//! packet: decoding the party's audio for the in-band detector, replacing a detected digit
//! with the tone encoded in the party's codec, and turning RFC 4733 events into encoded
//! audio all run on state built with the guard. A counting global allocator watches the
//! guard while it takes a steady stream of voice, in-band digits and events. The guard is
//! sans-IO and runs on the test's own thread, so the allocator counts that thread's
//! allocations only (the test harness's threads may allocate at any time).

use ngmedia_codecs::dtmf::ToneGenerator;
use ngmedia_codecs::{Codec, EncoderOptions};
use ngmedia_engine::core::dtmf_security::{DtmfGuard, GuardVerdict, SecurityConfig};
use ngmedia_engine::core::media_control::{BlockDtmf, PayloadKind};
use ngmedia_test_support::{allocations_in, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const AUDIO_PT: u8 = 96;
const EVENT_PT: u8 = 101;

/// 20 ms packets of `codec`: voice (a 300 Hz sine) with an in-band digit in packets
/// 10..22, plus the same again.
fn payloads(codec: &Codec, packets: usize) -> Vec<Vec<u8>> {
    let opts = EncoderOptions {
        pcm_rate: (codec.name() == "opus").then_some(8000),
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let mut gen = ToneGenerator::new(5, 6, 8000).expect("digit");
    (0..packets)
        .map(|k| {
            let mut pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let n = (k * 160 + i) as f64;
                    (3000.0 * (2.0 * std::f64::consts::PI * 300.0 * n / 8000.0).sin()) as i16
                })
                .collect();
            if (10..22).contains(&(k % 40)) {
                gen.fill(&mut pcm);
            }
            let mut out = vec![0u8; enc.max_payload_len()];
            let n = enc.encode(&pcm, &mut out).expect("encode");
            out.truncate(n);
            out
        })
        .collect()
}

fn rtp(buf: &mut [u8], pt: u8, seq: u16, ts: u32, payload: &[u8]) -> usize {
    buf[0] = 0x80;
    buf[1] = pt;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    buf[12..12 + payload.len()].copy_from_slice(payload);
    12 + payload.len()
}

/// Run `rounds` × 40 audio packets and one 8-report event per round through `guard`;
/// returns how many packets it rewrote.
fn run(guard: &mut DtmfGuard, kind: PayloadKind, audio: &[Vec<u8>], step: u32, rounds: u32) -> u32 {
    let kinds = |pt: u8| match pt {
        AUDIO_PT => kind,
        EVENT_PT => PayloadKind::Event,
        _ => PayloadKind::Other,
    };
    let mut buf = [0u8; 1500];
    let (mut seq, mut ts, mut rewritten) = (1000u16, 8000u32, 0u32);
    for round in 0..rounds {
        for p in audio {
            let len = rtp(&mut buf, AUDIO_PT, seq, ts, p);
            match guard.apply(&mut buf, len, kinds, true, true, u64::from(seq)) {
                GuardVerdict::Forward(n) if buf[12..n] != p[..] => rewritten += 1,
                _ => {}
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(step);
        }
        // A digit as events (digit 4 + round, so each is new).
        for n in 0..8u16 {
            let d = (u32::from(n) + 1) * step;
            let ev = [
                (4 + round % 5) as u8,
                if n == 7 { 0x8a } else { 0x0a },
                (d >> 8) as u8,
                d as u8,
            ];
            let len = rtp(&mut buf, EVENT_PT, seq, ts, &ev);
            if let GuardVerdict::Forward(n) = guard.apply(&mut buf, len, kinds, true, true, 0) {
                assert_eq!(buf[1], AUDIO_PT, "an event becomes audio");
                assert!(n > 12);
                rewritten += 1;
            }
            seq = seq.wrapping_add(1);
        }
        ts = ts.wrapping_add(8 * step);
    }
    rewritten
}

#[test]
fn coded_dtmf_replacement_does_not_allocate() {
    let cases = [
        (
            PayloadKind::G729,
            Codec::lookup("G729", 8000, None, Some("annexb=no")).unwrap(),
            160,
        ),
        (
            PayloadKind::Opus,
            Codec::lookup("opus", 48000, Some(2), None).unwrap(),
            960,
        ),
    ];
    for (kind, codec, step) in cases {
        let audio = payloads(&codec, 40);
        let mut guard = DtmfGuard::new(SecurityConfig {
            mode: BlockDtmf::Tone,
            frequencies: vec![1000],
            digit: 0,
            volume: 10,
            trigger: None,
            digit_delay_ms: 2500,
            audio_pt: Some(AUDIO_PT),
            delay_ms: 0,
            dtmf_delay_ms: 0,
            coded: vec![kind],
        });
        // Warm-up: the codecs' first frames.
        run(&mut guard, kind, &audio, step, 1);
        let (allocated, rewritten) = allocations_in(|| run(&mut guard, kind, &audio, step, 5));
        assert_eq!(allocated, 0, "{kind:?}: allocations on the packet path");
        // Per round: the digit after detection (~10 of 12 packets) and the 8 events.
        assert!(
            rewritten >= 5 * 16,
            "{kind:?}: only {rewritten} packets rewritten"
        );
    }
}
