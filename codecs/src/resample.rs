//! Sample-rate conversion between the telephony rates, frame by frame.
//!
//! rtpengine: `resample_audio()` in `resample.c`, libswresample with its default options.
//! The same packets must leave both engines (rtpengine's tests compare payload bytes after
//! resampling, e.g. comfort noise encoded as G.722), so [`Resampler`] computes what
//! libswresample computes for 16-bit mono PCM at these rates, sample for sample:
//! * a windowed-sinc polyphase FIR with one phase per output position inside an input
//!   period (`out_rate / gcd` phases: exact, no interpolation between phases);
//! * cutoff 0.97 of the lower Nyquist frequency (none when upsampling: the sinc is the plain
//!   interpolator), 32 taps at the input rate, i.e. `ceil(32 / factor)` taps rounded up to
//!   even, Kaiser window with β = 9;
//! * coefficients scaled so that phase 0 sums to 32768 (every phase shares that divisor),
//!   rounded to 16 bits; each output is `(Σ x·h + 2^14) >> 15`, saturated;
//! * output `k` lies at input time `k · in_rate / out_rate`, the filter centred on it
//!   (`(taps - 1) / 2` taps before); before the stream's first sample the stream is mirrored
//!   (`x[-n] = x[n]`, the transcoder feeds that itself, see `RateStage` in the engine).
//!
//! These were established against libswresample 4.7 (FFmpeg 5.1, what Debian 12's rtpengine
//! links) by comparing its output on random PCM for every rate pair here; the unit test
//! `matches_libswresample` keeps reference outputs from that comparison. The filter runs in
//! fixed frames (10 or 20 ms) with a fixed delay, so each call turns one input frame into
//! exactly one output frame and allocates nothing after construction. The sums are integers,
//! so the filter is free to vectorise them (AVX2 multiply-adds where the CPU has them).
//!
//! [`resample_clip`] (whole files, for music on hold) uses rubato's FFT resampler instead.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler as _, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::CodecError;

/// Rates a `Resampler` converts between.
pub const RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

/// Filter length at the lower of the two rates (libswresample's `filter_size`).
const FILTER_SIZE: f64 = 32.0;
/// Passband edge as a fraction of the lower Nyquist frequency (libswresample's `cutoff`).
const CUTOFF: f64 = 0.97;
/// Kaiser window β (libswresample's `kaiser_beta`).
const KAISER_BETA: f64 = 9.0;
/// Coefficients are fixed point with this many fraction bits (sum of phase 0 = 1 << 15).
const COEF_SHIFT: u32 = 15;

/// A streaming mono resampler for fixed frames. rtpengine: the `resample_t` of a codec
/// handler.
pub struct Resampler {
    /// `None` when both rates are equal: frames are copied.
    fir: Option<Polyphase>,
    in_rate: u32,
    out_rate: u32,
    in_frame: usize,
    out_frame: usize,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("in_rate", &self.in_rate)
            .field("out_rate", &self.out_rate)
            .field("in_frame", &self.in_frame)
            .field("out_frame", &self.out_frame)
            .finish()
    }
}

/// Coefficient rows are padded with zeros to a multiple of this many taps, so that each
/// output is a fixed-length dot product the compiler turns into packed multiply-adds (zero
/// taps add nothing: the integer sums are those of the unpadded filter).
const LANES: usize = 16;

/// The polyphase FIR and its input history.
struct Polyphase {
    /// `phases` filters of `stride` coefficients each, phase-major: `taps` coefficients then
    /// zeros up to `stride`.
    bank: Box<[i16]>,
    /// `taps` rounded up to a multiple of [`LANES`].
    stride: usize,
    /// Output samples the filter runs behind its input, so that a frame's outputs only
    /// need the samples received so far.
    delay: u64,
    /// History index of the first tap of a frame's first output (a frame advances the
    /// input by `in_frame` samples and the history drops as many, so it is the same each
    /// frame).
    start: usize,
    /// Where the taps of the outputs of one cycle read: (first tap relative to the cycle's,
    /// offset of the phase's row in `bank`). Phases repeat every `phases` outputs; a cycle
    /// is a multiple of that and of 4 (the AVX2 path's group), at most 12 outputs.
    cycle: [(u16, u16); MAX_CYCLE],
    cycle_len: usize,
    /// Input samples from one cycle to the next.
    cycle_step: usize,
    /// Input history: the last `keep` samples before the current frame, the frame, then
    /// `stride` samples of slack that only zero taps reach.
    hist: Box<[i16]>,
    /// Samples kept from one call to the next (all that the next outputs can reach).
    keep: usize,
    /// The CPU has AVX2: the filter runs in its AVX2 build.
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

/// Longest cycle of output positions: the least common multiple of 4 and the phase count
/// (1, 2, 3, 4 or 6 between the rates here).
const MAX_CYCLE: usize = 12;

/// Modified Bessel function of the first kind, order 0 (power series; β ≤ 9 converges in
/// some 30 terms to full double precision).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 1.0f64);
    loop {
        let t = x / (2.0 * k);
        term *= t * t;
        sum += term;
        if term < 1e-21 * sum {
            return sum;
        }
        k += 1.0;
    }
}

impl Polyphase {
    fn new(in_rate: u32, out_rate: u32, in_frame: usize, filter_size: f64) -> Polyphase {
        let g = gcd(in_rate, out_rate);
        let (phases, step) = (u64::from(out_rate / g), u64::from(in_rate / g));
        let factor = (f64::from(out_rate) * CUTOFF / f64::from(in_rate)).min(1.0);
        let mut taps = ((filter_size / factor).ceil() as usize).max(1);
        if taps > 1 {
            taps += taps % 2;
        }
        let center = (taps - 1) / 2;
        let mut bank = vec![0i16; phases as usize * taps].into_boxed_slice();
        let mut window = vec![0f64; taps];
        let mut norm = 0.0;
        let phases_n = phases as usize;
        for ph in 0..phases_n {
            if phases_n.is_multiple_of(2) && ph > phases_n / 2 {
                // The second half of an even phase count is the first half reversed
                // (libswresample's shortcut, which matters for a single tap).
                for i in 0..taps {
                    bank[ph * taps + i] = bank[(phases_n - ph) * taps + taps - 1 - i];
                }
                continue;
            }
            for (i, w) in window.iter_mut().enumerate() {
                let x = std::f64::consts::PI
                    * ((i as f64 - center as f64) - ph as f64 / phases as f64)
                    * factor;
                let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
                let r = 2.0 * x / (factor * taps as f64 * std::f64::consts::PI);
                *w = sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt());
            }
            if ph == 0 {
                norm = window.iter().sum();
            }
            let scale = f64::from(1u32 << COEF_SHIFT) / norm;
            for (c, w) in bank[ph * taps..(ph + 1) * taps].iter_mut().zip(&window) {
                *c = (w * scale)
                    .round_ties_even()
                    .clamp(i16::MIN as f64, i16::MAX as f64) as i16;
            }
        }
        // The last output of a frame must not reach past the frame's last input sample; the
        // smallest such delay is also where libswresample stands after each call (it
        // returns every output whose taps it has), so the two give out the same samples.
        let after = (taps - center) as u64;
        let delay = (after - 1) * phases / step;
        let keep = taps + step.div_ceil(phases) as usize + 2;
        let stride = taps.next_multiple_of(LANES);
        let mut padded = vec![0i16; phases_n * stride].into_boxed_slice();
        for (row, coefs) in padded.chunks_exact_mut(stride).zip(bank.chunks_exact(taps)) {
            row[..taps].copy_from_slice(coefs);
        }
        // Output j of every frame sits at input time (j - delay) · step / phases, counted
        // from the frame's first sample, which is history index `keep`.
        let out_frame = in_frame * phases_n / step as usize;
        assert!(out_frame.is_multiple_of(4));
        let tap = |j: i64| {
            let pos = (j - delay as i64) * step as i64;
            let first = pos.div_euclid(phases as i64) - center as i64 + keep as i64;
            let phase = pos.rem_euclid(phases as i64) as usize;
            assert!(first >= 0 && first as usize + taps <= keep + in_frame);
            (first as usize, phase * stride)
        };
        let cycle_len = if phases_n.is_multiple_of(4) {
            phases_n
        } else if phases_n.is_multiple_of(2) {
            phases_n * 2
        } else {
            phases_n * 4
        };
        assert!(cycle_len <= MAX_CYCLE && out_frame.is_multiple_of(cycle_len));
        let cycle_step = cycle_len * step as usize / phases_n;
        let start = tap(0).0;
        let mut cycle = [(0u16, 0u16); MAX_CYCLE];
        for (j, c) in cycle[..cycle_len].iter_mut().enumerate() {
            let (first, row) = tap(j as i64);
            *c = ((first - start) as u16, row as u16);
        }
        for j in 0..out_frame {
            let (first, row) = tap(j as i64);
            let (off, r) = cycle[j % cycle_len];
            assert_eq!(
                (first, row),
                (
                    start + j / cycle_len * cycle_step + off as usize,
                    r as usize
                )
            );
        }
        Polyphase {
            bank: padded,
            stride,
            delay,
            start,
            cycle,
            cycle_len,
            cycle_step,
            hist: vec![0; keep + in_frame + stride].into_boxed_slice(),
            keep,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
        }
    }

    fn reset(&mut self) {
        self.hist.fill(0);
    }

    fn process(&mut self, input: &[i16], output: &mut [i16]) {
        let keep = self.keep;
        self.hist[keep..keep + input.len()].copy_from_slice(input);
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU has AVX2.
            unsafe { self.filter_avx2(output) };
        } else {
            self.filter(output);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.filter(output);
        self.hist.copy_within(input.len()..input.len() + keep, 0);
    }

    /// The outputs of the frame in `hist`, each a dot product the compiler vectorises.
    fn filter(&mut self, output: &mut [i16]) {
        let stride = self.stride;
        let cycle = &self.cycle[..self.cycle_len];
        for (k, out) in output.chunks_exact_mut(self.cycle_len).enumerate() {
            let base = self.start + k * self.cycle_step;
            for (o, &(off, row)) in out.iter_mut().zip(cycle) {
                let (first, row) = (base + off as usize, row as usize);
                *o = round(dot(
                    &self.hist[first..first + stride],
                    &self.bank[row..row + stride],
                ));
            }
        }
    }

    /// [`Polyphase::filter`] with AVX2 multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn filter_avx2(&mut self, output: &mut [i16]) {
        // Row lengths of the rate pairs get a loop of known length.
        match self.stride / LANES {
            1 => self.filter_avx2_rows::<1>(output),
            2 => self.filter_avx2_rows::<2>(output),
            3 => self.filter_avx2_rows::<3>(output),
            5 => self.filter_avx2_rows::<5>(output),
            7 => self.filter_avx2_rows::<7>(output),
            13 => self.filter_avx2_rows::<13>(output),
            _ => self.filter_avx2_rows::<0>(output),
        }
    }

    /// Four outputs at a time, so that one horizontal reduction serves four sums, and
    /// their rounding and saturation in one go; rows of `N` × [`LANES`] taps (0: `stride`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn filter_avx2_rows<const N: usize>(&mut self, output: &mut [i16]) {
        use std::arch::x86_64::{
            __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_extracti128_si256,
            _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_setzero_si256,
            _mm_add_epi32, _mm_packs_epi32, _mm_set1_epi32, _mm_srai_epi32, _mm_storel_epi64,
        };
        const { assert!(LANES == 16 && COEF_SHIFT == 15) };
        let stride = if N == 0 { self.stride } else { N * LANES };
        let cycle = &self.cycle[..self.cycle_len];
        // A cycle is a multiple of four outputs: groups of four cover it.
        for (k, out) in output.chunks_exact_mut(self.cycle_len).enumerate() {
            let base = self.start + k * self.cycle_step;
            for (out, group) in out.chunks_exact_mut(4).zip(cycle.chunks_exact(4)) {
                let mut acc = [_mm256_setzero_si256(); 4];
                for (acc, &(off, row)) in acc.iter_mut().zip(group) {
                    let (first, row) = (base + off as usize, row as usize);
                    let x = self.hist[first..first + stride].chunks_exact(LANES);
                    let h = self.bank[row..row + stride].chunks_exact(LANES);
                    for (x, h) in x.zip(h) {
                        // SAFETY: each chunk holds 16 i16, the 32 bytes an unaligned load reads.
                        let (x, h): (__m256i, __m256i) = unsafe {
                            (
                                _mm256_loadu_si256(x.as_ptr().cast()),
                                _mm256_loadu_si256(h.as_ptr().cast()),
                            )
                        };
                        *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, h));
                    }
                }
                // [a, b, c, d] with each lane's sums halved three times, then the 128-bit halves.
                let ab = _mm256_hadd_epi32(acc[0], acc[1]);
                let cd = _mm256_hadd_epi32(acc[2], acc[3]);
                let abcd = _mm256_hadd_epi32(ab, cd);
                let sums = _mm_add_epi32(
                    _mm256_castsi256_si128(abcd),
                    _mm256_extracti128_si256::<1>(abcd),
                );
                // `round` for four: (sum + 2^14) >> 15, packed to i16 with saturation.
                let y = _mm_srai_epi32::<15>(_mm_add_epi32(sums, _mm_set1_epi32(1 << 14)));
                // SAFETY: `out` is a chunk of four i16, the 8 bytes the store writes.
                unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), _mm_packs_epi32(y, y)) };
            }
        }
    }
}

/// An output sample from its sum: `(sum + 2^14) >> 15`, saturated.
#[inline(always)]
fn round(sum: i32) -> i16 {
    let y = sum.wrapping_add(1 << (COEF_SHIFT - 1)) >> COEF_SHIFT;
    y.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// Σ x·h with wrapping i32 sums over slices of equal length, a multiple of [`LANES`].
#[inline(always)]
fn dot(x: &[i16], h: &[i16]) -> i32 {
    let mut acc = [0i32; LANES];
    for (x, h) in x.chunks_exact(LANES).zip(h.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] = acc[i].wrapping_add(i32::from(x[i]) * i32::from(h[i]));
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` (each one of [`RATES`]) for frames of
    /// `frame_ms` (10 or 20) milliseconds.
    pub fn new(in_rate: u32, out_rate: u32, frame_ms: u32) -> Result<Self, CodecError> {
        Self::build(in_rate, out_rate, frame_ms, FILTER_SIZE)
    }

    /// The same without a low-pass filter: one tap per phase (libswresample with
    /// `filter_size` 0, which rtpengine uses for its comfort noise generator's output).
    /// Upsampling keeps each input sample and puts a near-zero sample between (images of
    /// the noise above the input's Nyquist frequency remain, as in rtpengine).
    pub fn unfiltered(in_rate: u32, out_rate: u32, frame_ms: u32) -> Result<Self, CodecError> {
        Self::build(in_rate, out_rate, frame_ms, 0.0)
    }

    fn build(
        in_rate: u32,
        out_rate: u32,
        frame_ms: u32,
        filter_size: f64,
    ) -> Result<Self, CodecError> {
        for rate in [in_rate, out_rate] {
            if !RATES.contains(&rate) {
                return Err(CodecError::UnsupportedRate(rate));
            }
        }
        if frame_ms != 10 && frame_ms != 20 {
            return Err(CodecError::UnsupportedFrameDuration {
                codec: "resampler",
                ms: frame_ms,
            });
        }
        let in_frame = (in_rate * frame_ms / 1000) as usize;
        let out_frame = (out_rate * frame_ms / 1000) as usize;
        let fir =
            (in_rate != out_rate).then(|| Polyphase::new(in_rate, out_rate, in_frame, filter_size));
        Ok(Resampler {
            fir,
            in_rate,
            out_rate,
            in_frame,
            out_frame,
        })
    }

    /// Input samples per call.
    pub fn input_frame_len(&self) -> usize {
        self.in_frame
    }

    /// Output samples per call.
    pub fn output_frame_len(&self) -> usize {
        self.out_frame
    }

    /// (input rate, output rate).
    pub fn rates(&self) -> (u32, u32) {
        (self.in_rate, self.out_rate)
    }

    /// Delay the resampler adds, in output samples: output `n` is input time `n - delay`
    /// (0.7–2.2 ms, about half the filter).
    pub fn latency_samples(&self) -> usize {
        self.fir.as_ref().map_or(0, |f| f.delay as usize)
    }

    /// Delay the resampler adds, in microseconds (rounded down).
    pub fn latency_us(&self) -> u64 {
        self.latency_samples() as u64 * 1_000_000 / self.out_rate as u64
    }

    /// Forgets the stream history (e.g. after a long gap or a new talker).
    pub fn reset(&mut self) {
        if let Some(fir) = &mut self.fir {
            fir.reset();
        }
    }

    /// Converts one frame: `input.len()` must be `input_frame_len()`; writes
    /// `output_frame_len()` samples into `output` and returns that count.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<usize, CodecError> {
        if input.len() != self.in_frame {
            return Err(CodecError::PcmLength {
                expected: self.in_frame,
                got: input.len(),
            });
        }
        let output = crate::take_out(output, self.out_frame)?;
        match &mut self.fir {
            Some(fir) => fir.process(input, output),
            None => output.copy_from_slice(input),
        }
        Ok(self.out_frame)
    }
}

/// Largest block, in frames, of the FFT resampler for a clip: its blocks are `rate / gcd`
/// frames of each side, at most a few hundred between common rates (44.1 to 8 kHz: 441).
/// A rate with no large common divisor (an upload claiming 191,999 Hz) would need one FFT of
/// ~190,000 points per block: seconds of CPU for a file of a few bytes. Such rates go through
/// a windowed-sinc resampler, whose cost does not depend on the rates' divisors.
const MAX_CLIP_FFT_BLOCK: u32 = 2048;

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resample a whole clip of mono PCM (floats in -1..1) from `in_rate` to `out_rate`, any
/// integer rates, returning 16-bit PCM with the resampler's delay trimmed. For audio files
/// decoded once (music on hold), not for the packet path: it allocates.
pub fn resample_clip(input: &[f32], in_rate: u32, out_rate: u32) -> Result<Vec<i16>, CodecError> {
    const SCALE: f32 = 32768.0;
    let to_i16 = |f: f32| (f * SCALE).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
    if in_rate == 0 || out_rate == 0 {
        return Err(CodecError::UnsupportedRate(0));
    }
    if in_rate == out_rate || input.is_empty() {
        return Ok(input.iter().map(|&f| to_i16(f)).collect());
    }
    let buf_in =
        InterleavedSlice::new(input, 1, input.len()).map_err(|_| CodecError::PcmLength {
            expected: input.len(),
            got: input.len(),
        })?;
    // 1024-frame chunks: a few ms of delay, trimmed by `process_all` anyway.
    let out = if in_rate.max(out_rate) / gcd(in_rate, out_rate) <= MAX_CLIP_FFT_BLOCK {
        Fft::<f32>::new(
            in_rate as usize,
            out_rate as usize,
            1024,
            1,
            FixedSync::Input,
        )?
        .process_all(&buf_in, input.len(), None)?
    } else {
        let sinc = SincInterpolationParameters {
            sinc_len: 128,
            f_cutoff: None,
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Linear,
            window: WindowFunction::BlackmanHarris2,
        };
        Async::<f32>::new_sinc(
            f64::from(out_rate) / f64::from(in_rate),
            1.0,
            &sinc,
            1024,
            1,
            FixedAsync::Input,
        )?
        .process_all(&buf_in, input.len(), None)?
    };
    Ok(out.take_data().into_iter().map(to_i16).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dominant_frequency, read_wav, rms, sine, snr_db};

    fn run(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
        let mut out = vec![0i16; input.len() / r.input_frame_len() * r.output_frame_len()];
        for (i, o) in input
            .chunks_exact(r.input_frame_len())
            .zip(out.chunks_exact_mut(r.output_frame_len()))
        {
            assert_eq!(r.process(i, o).unwrap(), r.output_frame_len());
        }
        out
    }

    /// Rates without a large common divisor take the sinc resampler (the FFT one would
    /// need blocks of ~44,000 frames): same length and tone.
    #[test]
    fn clip_between_odd_rates_keeps_length_and_tone() {
        for (in_rate, out_rate) in [(44_101u32, 8_000u32), (7_993, 48_000)] {
            let input: Vec<f32> = (0..in_rate)
                .map(|i| {
                    (2.0 * std::f32::consts::PI * 440.0 * i as f32 / in_rate as f32).sin() * 0.5
                })
                .collect();
            let out = resample_clip(&input, in_rate, out_rate).unwrap();
            let n = out_rate as usize;
            assert!(
                (out.len() as i64 - n as i64).abs() <= 2,
                "len {}",
                out.len()
            );
            let f = dominant_frequency(&out[n / 10..n * 9 / 10], out_rate, 300.0, 600.0, 5.0);
            assert!(
                (f - 440.0).abs() <= 5.0,
                "{in_rate} -> {out_rate}: dominant {f}"
            );
        }
    }

    #[test]
    fn clip_44k1_to_8k_keeps_length_and_tone() {
        let input: Vec<f32> = (0..44_100)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin() * 0.5)
            .collect();
        let out = resample_clip(&input, 44_100, 8_000).unwrap();
        assert!((out.len() as i64 - 8_000).abs() <= 2, "len {}", out.len());
        let f = dominant_frequency(&out[800..7200], 8000, 300.0, 600.0, 5.0);
        assert!((f - 440.0).abs() <= 5.0, "dominant {f}");
        assert_eq!(
            resample_clip(&[0.5, -0.5], 8000, 8000).unwrap(),
            vec![16384, -16384]
        );
    }

    #[test]
    fn tone_survives_8k_48k_8k() {
        let input = sine(1000.0, 8000, 8000, 16000.0);
        let mut up = Resampler::new(8000, 48000, 20).unwrap();
        let mut down = Resampler::new(48000, 8000, 20).unwrap();
        let mid = run(&mut up, &input);
        assert_eq!(
            dominant_frequency(&mid[4800..], 48000, 500.0, 1500.0, 5.0),
            1000.0
        );
        let out = run(&mut down, &mid);
        let delay = (up.latency_samples() as f64 / 6.0 + down.latency_samples() as f64).round();
        let delay = delay as usize;
        assert_eq!(delay, 32, "16 samples at 8 kHz each way");
        assert_eq!(
            dominant_frequency(&out[1600..], 8000, 500.0, 1500.0, 5.0),
            1000.0
        );
        let n = out.len() - delay - 1600;
        let snr = snr_db(&input[1600..1600 + n], &out[1600 + delay..1600 + delay + n]);
        eprintln!("resampler 8k->48k->8k 1 kHz: SNR {snr:.1} dB");
        // Measured: the output rounds back to the input sample for sample (SNR > 200 dB).
        assert!(snr > 40.0, "SNR {snr}");
    }

    #[test]
    fn speech_survives_8k_48k_8k() {
        let (_, input) = read_wav("speech-8k.wav");
        let mut up = Resampler::new(8000, 48000, 20).unwrap();
        let mut down = Resampler::new(48000, 8000, 20).unwrap();
        let out = run(&mut down, &run(&mut up, &input));
        let delay = 32;
        let n = out.len() - delay;
        let snr = snr_db(&input[..n], &out[delay..delay + n]);
        eprintln!("resampler 8k->48k->8k speech: SNR {snr:.1} dB");
        // Measured: 26.3 dB; what is lost is the band next to 4 kHz that the anti-alias
        // filter's transition band removes.
        assert!(snr > 20.0, "SNR {snr}");
    }

    #[test]
    fn no_aliasing_above_target_nyquist() {
        // 6 kHz cannot exist at 8 kHz; it must be filtered, not folded to 2 kHz. 5.1 kHz is not
        // periodic in the 20 ms block, so it also exercises the filter's leakage.
        for freq in [6000.0, 5100.0] {
            let input = sine(freq, 48000, 48000, 16000.0);
            let mut down = Resampler::new(48000, 8000, 20).unwrap();
            let out = run(&mut down, &input);
            let attenuation = 20.0 * (rms(&input) / rms(&out[1600..]).max(1e-3)).log10();
            eprintln!("resampler {freq} Hz at 48k->8k: attenuated {attenuation:.1} dB");
            // Measured: every output sample rounds to 0 (> 140 dB).
            assert!(attenuation > 40.0, "{freq} Hz: attenuation {attenuation}");
        }
    }

    #[test]
    fn every_rate_pair_and_frame_size() {
        for &a in &RATES {
            for &b in &RATES {
                for ms in [10, 20] {
                    let mut r = Resampler::new(a, b, ms).unwrap();
                    assert_eq!(r.input_frame_len(), (a * ms / 1000) as usize);
                    assert_eq!(r.output_frame_len(), (b * ms / 1000) as usize);
                    let tone = sine(440.0, a, r.input_frame_len() * 20, 8000.0);
                    let out = run(&mut r, &tone);
                    let f = dominant_frequency(&out[out.len() / 2..], b, 300.0, 600.0, 5.0);
                    assert!((f - 440.0).abs() <= 5.0, "{a}->{b} {ms} ms: {f} Hz");
                    let latency = r.latency_us();
                    assert!(if a == b {
                        latency == 0
                    } else {
                        (500..2500).contains(&latency)
                    });
                }
            }
        }
    }

    /// Input `n` of the reference stream: a 32-bit LCG's high half, halved (±16384).
    fn lcg(n: usize) -> Vec<i16> {
        let mut s = 1u32;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 16) as u16 as i16) >> 1
            })
            .collect()
    }

    #[test]
    fn matches_libswresample() {
        // libswresample 4.7 (FFmpeg 5.1), swr_alloc_set_opts(mono S16 at each rate, defaults),
        // fed six 20 ms frames of `lcg` through swr_convert: its first six output samples and
        // Σ (i + 1)·y[i] over its first 100 ms of output.
        const REFERENCE: [(u32, u32, [i16; 6], i64); 11] = [
            (
                8000,
                16000,
                [7748, 11254, 12100, -392, -16245, -18865],
                289239929,
            ),
            (
                16000,
                8000,
                [14499, -10472, 1652, -1371, -11383, 7445],
                16966752,
            ),
            (
                8000,
                48000,
                [7748, 8245, 9568, 11254, 12658, 13112],
                2675360533,
            ),
            (48000, 8000, [-457, -2366, -1299, 17, -265, 3164], 24397289),
            (
                16000,
                48000,
                [7748, 9568, 12658, 12100, 5066, -6295],
                577463832,
            ),
            (48000, 16000, [938, -705, -4958, -1507, -56, 816], 94097374),
            (
                24000,
                32000,
                [7748, 13041, -392, -19656, -9671, 52],
                -790457126,
            ),
            (
                32000,
                24000,
                [13405, 1184, -16564, 5313, 5069, -13187],
                -11830730,
            ),
            // `filter_size` 0: Resampler::unfiltered.
            (8000, 16000, [7748, 4, 12100, 7, -16245, -9], 137965785),
            (
                16000,
                8000,
                [7748, -16245, 1656, -7381, 540, 8206],
                225600763,
            ),
            (8000, 48000, [7748, 4559, 755, 4, 755, 4559], 981142379),
        ];
        for (k, (a, b, first, weighted)) in REFERENCE.into_iter().enumerate() {
            for ms in [10, 20] {
                let mut r = if k < 8 {
                    Resampler::new(a, b, ms).unwrap()
                } else {
                    Resampler::unfiltered(a, b, ms).unwrap()
                };
                let x = lcg(a as usize / 50 * 6);
                // libswresample's start: x[-n] = x[n]. The mirrored frame's output and the
                // delay are dropped, as the transcoder's RateStage does.
                let n = r.input_frame_len();
                let mut stream: Vec<i16> = (1..=n).rev().map(|i| x[i]).collect();
                stream.extend_from_slice(&x);
                let out = run(&mut r, &stream);
                let y = &out[r.output_frame_len() + r.latency_samples()..];
                assert_eq!(y[..6], first, "{a} -> {b}, {ms} ms");
                let sum: i64 = y[..b as usize / 10]
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as i64 + 1) * i64::from(v))
                    .sum();
                assert_eq!(sum, weighted, "{a} -> {b}, {ms} ms");
            }
        }
    }

    /// The portable filter (CPUs without AVX2, other architectures) gives the same samples
    /// as the AVX2 one, for every rate pair, filtered and not.
    #[test]
    fn portable_filter_matches_avx2() {
        let x = lcg(48 * 20 * 12);
        for &a in &RATES {
            for &b in &RATES {
                for filtered in [true, false] {
                    let make = || {
                        if filtered {
                            Resampler::new(a, b, 10).unwrap()
                        } else {
                            Resampler::unfiltered(a, b, 10).unwrap()
                        }
                    };
                    let (mut fast, mut portable) = (make(), make());
                    #[cfg(target_arch = "x86_64")]
                    if let Some(fir) = &mut portable.fir {
                        fir.avx2 = false;
                    }
                    let input = &x[..a as usize / 100 * 12];
                    assert_eq!(
                        run(&mut fast, input),
                        run(&mut portable, input),
                        "{a} -> {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_input() {
        assert!(matches!(
            Resampler::new(44100, 8000, 20),
            Err(CodecError::UnsupportedRate(44100))
        ));
        assert!(matches!(
            Resampler::new(8000, 16000, 30),
            Err(CodecError::UnsupportedFrameDuration { ms: 30, .. })
        ));
        let mut r = Resampler::new(8000, 16000, 20).unwrap();
        let mut out = [0i16; 320];
        assert!(matches!(
            r.process(&[0; 100], &mut out),
            Err(CodecError::PcmLength { .. })
        ));
        assert!(matches!(
            r.process(&[0; 160], &mut out[..10]),
            Err(CodecError::OutputTooSmall {
                needed: 320,
                got: 10
            })
        ));
    }
}
