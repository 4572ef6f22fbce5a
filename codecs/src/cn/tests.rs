use super::*;

/// FNV-1a over the little-endian samples: a compact fingerprint of a frame.
fn fnv(samples: &[i16]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for s in samples {
        for b in s.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Frames of 160 samples generated from a sequence of payloads, one payload per frame.
fn generate(payloads: &[&[u8]]) -> Vec<Vec<i16>> {
    let mut g = NoiseGenerator::new();
    payloads
        .iter()
        .map(|p| {
            g.update(&CnPayload::parse(p).unwrap());
            let mut out = vec![0i16; 160];
            g.generate(&mut out);
            out
        })
        .collect()
}

/// Reference frames: libavcodec's `comfortnoise` decoder (what rtpengine runs), asked for
/// 160 samples per packet, on the same payloads: first samples and a fingerprint.
const REFERENCE_SHAPED: [(u64, [i16; 8]); 3] = [
    (
        0xf4a7577a01f308e8,
        [970, -674, -217, 1143, -351, 1273, -324, 827],
    ),
    (
        0x0085d818694216f3,
        [-37, -1033, -1650, -1760, -1721, -2603, -1468, -2351],
    ),
    (
        0x77e2c269d5bc633f,
        [-259, -784, 80, 554, -674, 622, -1051, 142],
    ),
];
const REFERENCE_BLEND: [(u64, [i16; 8]); 3] = [
    (
        0x0c0a0858636a60d4,
        [521, -150, -477, 372, 179, 549, -184, 21],
    ),
    (
        0x537d9f2c03d0ae54,
        [245, 280, -124, -456, -439, -479, -57, -79],
    ),
    (
        0xbf65b243c459f325,
        [180, -175, -41, 35, 219, 578, -72, -246],
    ),
];

#[test]
fn noise_matches_the_reference_decoder_sample_for_sample() {
    // The payload of rtpengine's own CN tests: −18 dBov, four coefficients.
    let p: &[u8] = &[0x12, 0x23, 0x23, 0x34, 0x56];
    let frames = generate(&[p, p, p]);
    for (frame, (hash, head)) in frames.iter().zip(REFERENCE_SHAPED) {
        assert_eq!(&frame[..8], &head);
        assert_eq!(fnv(frame), hash);
    }
    // A flat −32 dBov, then −40 dBov blending in, then twelve coefficients.
    let frames = generate(&[
        &[0x20],
        &[0x28],
        &[
            0x5a, 0x7f, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0xff, 0x00, 0x10,
        ],
    ]);
    for (frame, (hash, head)) in frames.iter().zip(REFERENCE_BLEND) {
        assert_eq!(&frame[..8], &head);
        assert_eq!(fnv(frame), hash);
    }
}

fn rms_dbov(pcm: &[i16]) -> f64 {
    let p = pcm.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / pcm.len() as f64;
    10.0 * (p / (32768.0 * 32768.0)).log10()
}

#[test]
fn noise_level_follows_the_payload() {
    for level in [20u8, 32, 50, 70] {
        let mut g = NoiseGenerator::new();
        g.update(&CnPayload::flat(level));
        let mut out = vec![0i16; 8000];
        g.generate(&mut out);
        let got = rms_dbov(&out);
        // The generator runs 6 dB under the nominal level (white excitation of a quarter
        // of full-scale power at 0 dBov), like the decoder rtpengine uses.
        let want = -(level as f64) - 6.0;
        assert!((got - want).abs() < 1.0, "level {level}: {got:.1} dBov");
    }
}

#[test]
fn new_level_fades_in() {
    let mut g = NoiseGenerator::new();
    g.update(&CnPayload::flat(30));
    let mut frame = [0i16; 160];
    g.generate(&mut frame);
    let loud = rms_dbov(&frame);
    g.update(&CnPayload::flat(60));
    g.generate(&mut frame);
    let halfway = rms_dbov(&frame);
    for _ in 0..20 {
        g.generate(&mut frame);
    }
    let quiet = rms_dbov(&frame);
    // The energy moves halfway per frame: 3 dB down first, not 30.
    assert!(
        halfway < loud - 0.5 && halfway > loud - 6.0,
        "{loud} {halfway}"
    );
    assert!((quiet - (-66.0)).abs() < 2.0, "{quiet}");
}

#[test]
fn payload_parse_and_write() {
    let p = CnPayload::parse(&[0x92, 0x23, 0x7f]).unwrap();
    assert_eq!(p.level, 0x12, "the unused top bit is ignored");
    assert_eq!(p.order, 2);
    assert_eq!(p.reflection(0), (0x23 as f32 - 127.0) / 128.0);
    assert_eq!(p.reflection(1), 0.0);
    assert_eq!(p.reflection(5), 0.0);
    let mut buf = [0u8; 16];
    assert_eq!(p.write(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], &[0x12, 0x23, 0x7f]);
    assert!(p.write(&mut buf[..2]).is_err());
    assert!(CnPayload::parse(&[]).is_err());
    // More coefficients than the generator uses: the rest are ignored.
    let long: Vec<u8> = (0..30).collect();
    assert_eq!(CnPayload::parse(&long).unwrap().order, MAX_COEFFS);
    assert_eq!(CnPayload::flat(0x20).write(&mut buf).unwrap(), 1);
    assert_eq!(buf[0], 0x20);
}

#[test]
fn level_of_pcm() {
    assert_eq!(level_dbov(&[0; 160]), 127);
    assert_eq!(level_dbov(&[]), 127);
    // Full-scale square wave: 0 dBov.
    let square: Vec<i16> = (0..160)
        .map(|i| if i % 2 == 0 { 32767 } else { -32767 })
        .collect();
    assert_eq!(level_dbov(&square), 0);
    // A full-scale sine is 3 dB under the square wave.
    let sine: Vec<i16> = (0..8000)
        .map(|i| (32767.0 * (i as f64 * 0.3).sin()) as i16)
        .collect();
    assert_eq!(level_dbov(&sine), 3);
}

#[test]
fn analysis_round_trips_through_the_generator() {
    // Low-pass noise: the generator's own output for a known spectrum.
    let mut g = NoiseGenerator::new();
    let coloured = CnPayload::parse(&[40, 20, 140, 120, 130]).unwrap();
    g.update(&coloured);
    let mut pcm = vec![0i16; 8000];
    g.generate(&mut pcm);
    let described = CnPayload::analyse(&pcm, 4);
    assert_eq!(described.order, 4);
    // Level: what the PCM measures (the generator runs 6 dB under its payload).
    assert!(
        (described.level as i32 - 46).abs() <= 1,
        "{}",
        described.level
    );
    for i in 0..4 {
        let (want, got) = (coloured.reflection(i), described.reflection(i));
        assert!((want - got).abs() < 0.05, "k{i}: {want} vs {got}");
    }
    // Fed back, the description reproduces the level.
    let mut again = NoiseGenerator::new();
    again.update(&described);
    let mut out = vec![0i16; 8000];
    again.generate(&mut out);
    assert!((rms_dbov(&out) - rms_dbov(&pcm) + 6.0).abs() < 1.5);
    // White noise has a flat envelope: coefficients near 127 (k = 0).
    let mut white = NoiseGenerator::new();
    white.update(&CnPayload::flat(30));
    white.generate(&mut pcm);
    let d = CnPayload::analyse(&pcm, 6);
    assert!(
        d.coeffs[..6].iter().all(|&q| (q as i32 - 127).abs() <= 8),
        "{d:?}"
    );
}
