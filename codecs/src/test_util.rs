//! Helpers shared by the unit tests: a minimal WAV reader for the `samples/` fixtures and
//! signal measurements (SNR after delay alignment, tone power).

use std::f64::consts::PI;

/// Reads a 16-bit PCM mono WAV from the workspace `samples/` folder: (rate, samples).
pub(crate) fn read_wav(name: &str) -> (u32, Vec<i16>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/").to_string() + name;
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&data[0..4], b"RIFF");
    assert_eq!(&data[8..12], b"WAVE");
    let mut pos = 12;
    let (mut rate, mut channels, mut bits) = (0u32, 0u16, 0u16);
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &data[pos + 8..(pos + 8 + len).min(data.len())];
        match id {
            b"fmt " => {
                assert_eq!(u16::from_le_bytes([body[0], body[1]]), 1, "PCM only");
                channels = u16::from_le_bytes([body[2], body[3]]);
                rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                bits = u16::from_le_bytes([body[14], body[15]]);
            }
            b"data" => {
                assert_eq!((channels, bits), (1, 16), "mono 16-bit only");
                let pcm = body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return (rate, pcm);
            }
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    panic!("{path}: no data chunk");
}

/// A sine of `freq` Hz at `rate`, peak `amp`.
pub(crate) fn sine(freq: f64, rate: u32, len: usize, amp: f64) -> Vec<i16> {
    (0..len)
        .map(|n| (amp * (2.0 * PI * freq * n as f64 / rate as f64).sin()).round() as i16)
        .collect()
}

/// SNR in dB of `test` against `reference` (same length).
pub(crate) fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
    let (mut sig, mut noise) = (0f64, 0f64);
    for (&r, &t) in reference.iter().zip(test) {
        sig += (r as f64).powi(2);
        noise += (r as f64 - t as f64).powi(2);
    }
    10.0 * (sig / noise.max(1e-9)).log10()
}

/// Normalised cross-correlation of `a` and `b` (same length).
pub(crate) fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-9)
}

/// The delay (0..=max_lag samples) of `output` behind `input` that maximises correlation,
/// with that correlation.
pub(crate) fn align(input: &[i16], output: &[i16], max_lag: usize) -> (usize, f64) {
    let n = input.len().min(output.len()) - max_lag;
    (0..=max_lag)
        .map(|lag| (lag, correlation(&input[..n], &output[lag..lag + n])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

/// Power of `pcm` at `freq` (Goertzel), normalised by length.
pub(crate) fn tone_power(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    for &x in pcm {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (pcm.len() as f64).powi(2)
}

/// RMS of `pcm`.
pub(crate) fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// The frequency (step `step` Hz, from `lo` to `hi`) with most power.
pub(crate) fn dominant_frequency(pcm: &[i16], rate: u32, lo: f64, hi: f64, step: f64) -> f64 {
    let mut best = (lo, 0.0);
    let mut f = lo;
    while f <= hi {
        let p = tone_power(pcm, rate, f);
        if p > best.1 {
            best = (f, p);
        }
        f += step;
    }
    best.0
}
