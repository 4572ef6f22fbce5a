//! Sample-rate conversion between the telephony rates, frame by frame.
//!
//! rtpengine: `resample_audio()` in `resample.c` (libswresample). Here rubato's synchronous
//! FFT resampler runs with both sides fixed to one frame (10 or 20 ms), so each call turns one
//! input frame into exactly one output frame; its `process_into_buffer` and our i16↔f32
//! scratch buffers allocate nothing after construction.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler as _, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::CodecError;

/// Rates a `Resampler` converts between.
pub const RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

/// A streaming mono resampler for fixed frames. rtpengine: the `resample_t` of a codec
/// handler.
pub struct Resampler {
    /// `None` when both rates are equal: frames are copied.
    fft: Option<Fft<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
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

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` (each one of [`RATES`]) for frames of
    /// `frame_ms` (10 or 20) milliseconds.
    pub fn new(in_rate: u32, out_rate: u32, frame_ms: u32) -> Result<Self, CodecError> {
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
        let fft = if in_rate == out_rate {
            None
        } else {
            let fft = Fft::new(
                in_rate as usize,
                out_rate as usize,
                in_frame,
                1,
                FixedSync::Both,
            )?;
            // Every rate pair here divides 10 ms evenly, so rubato keeps the frame sizes.
            debug_assert_eq!(
                (fft.input_frames_next(), fft.output_frames_next()),
                (in_frame, out_frame)
            );
            Some(fft)
        };
        Ok(Resampler {
            fft,
            input: vec![0.0; in_frame],
            output: vec![0.0; out_frame],
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

    /// Delay the resampler adds, in output samples (half an FFT block: half a frame).
    pub fn latency_samples(&self) -> usize {
        self.fft.as_ref().map_or(0, |f| f.output_delay())
    }

    /// Delay the resampler adds, in microseconds.
    pub fn latency_us(&self) -> u64 {
        self.latency_samples() as u64 * 1_000_000 / self.out_rate as u64
    }

    /// Forgets the stream history (e.g. after a long gap or a new talker).
    pub fn reset(&mut self) {
        if let Some(fft) = &mut self.fft {
            fft.reset();
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
        let Some(fft) = &mut self.fft else {
            output.copy_from_slice(input);
            return Ok(self.out_frame);
        };
        const SCALE: f32 = 32768.0;
        for (f, &s) in self.input.iter_mut().zip(input) {
            *f = s as f32 / SCALE;
        }
        // Sizes match by construction; rubato only checks them.
        let buf_in = InterleavedSlice::new(&self.input[..], 1, self.in_frame).map_err(|_| {
            CodecError::PcmLength {
                expected: self.in_frame,
                got: self.input.len(),
            }
        })?;
        let mut buf_out = InterleavedSlice::new_mut(&mut self.output[..], 1, self.out_frame)
            .map_err(|_| CodecError::OutputTooSmall {
                needed: self.out_frame,
                got: 0,
            })?;
        fft.process_into_buffer(&buf_in, &mut buf_out, None)?;
        for (o, &f) in output.iter_mut().zip(&self.output) {
            *o = (f * SCALE).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
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
        let delay = up.latency_samples() / 6 + down.latency_samples();
        assert_eq!(delay, 160, "10 ms each way");
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
        let n = out.len() - 160;
        let snr = snr_db(&input[..n], &out[160..160 + n]);
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
                    assert_eq!(r.latency_us(), if a == b { 0 } else { ms as u64 * 500 });
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
