//! Black-box tests of the coder, and the differential test against libspandsp.

use super::*;
use crate::test_util::{align, read_wav, rms, sine, snr_db};
use ngmedia_test_support::Rng;

/// Samples of delay through encoder and decoder: the 24-tap analysis and synthesis QMF.
const QMF_DELAY: usize = 22;

fn round_trip(pcm: &[i16], frame: usize) -> (Vec<u8>, Vec<i16>) {
    let mut enc = G722Encoder::new();
    let mut dec = G722Decoder::new();
    let mut bits = vec![0u8; pcm.len() / 2];
    let mut out = vec![0i16; pcm.len() / frame * frame];
    for (i, chunk) in pcm.chunks_exact(frame).enumerate() {
        let b = &mut bits[i * frame / 2..(i + 1) * frame / 2];
        assert_eq!(enc.encode(chunk, b).unwrap(), frame / 2);
        let n = dec.decode(b, &mut out[i * frame..(i + 1) * frame]).unwrap();
        assert_eq!(n, frame);
    }
    (bits, out)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn tone_round_trip_snr() {
    // 1 kHz and 6 kHz (upper sub-band) tones at 16 kHz, half scale, 1 s each.
    for freq in [1000.0, 6000.0] {
        let pcm = sine(freq, PCM_RATE, 16_000, 16_000.0);
        let (_, out) = round_trip(&pcm, 320);
        // A tone is periodic, so alignment would be ambiguous: use the codec's delay
        // (measured on speech below).
        let lag = QMF_DELAY;
        let n = out.len() - lag - 1600;
        let snr = snr_db(&pcm[1600..1600 + n], &out[1600 + lag..1600 + lag + n]);
        eprintln!("G.722 {freq} Hz: SNR {snr:.2} dB");
        // Measured with spandsp 0.0.6: 47.6 dB at 1 kHz, 27.5 dB at 6 kHz (2 bits per
        // sample in the upper band).
        let floor = if freq < 4000.0 { 40.0 } else { 20.0 };
        assert!(snr > floor, "{freq} Hz SNR {snr}");
    }
}

#[test]
fn speech_round_trip_snr_and_frame_independence() {
    let (rate, speech) = read_wav("speech-8k.wav");
    assert_eq!(rate, 8000);
    // The coder has no frame structure: 10 ms, 20 ms and 30 ms chunks give the same
    // bitstream as one call over everything.
    let pcm: Vec<i16> = speech.iter().flat_map(|&s| [s, s]).collect();
    let pcm = &pcm[..pcm.len() / 960 * 960];
    let (whole, _) = round_trip(pcm, pcm.len());
    for frame in [160, 320, 480] {
        assert_eq!(round_trip(pcm, frame).0, whole, "{frame}-sample chunks");
    }
    let (_, out) = round_trip(pcm, 320);
    let (lag, _) = align(pcm, &out, 64);
    let n = out.len() - lag;
    let snr = snr_db(&pcm[..n], &out[lag..lag + n]);
    eprintln!("G.722 speech: delay {lag}, SNR {snr:.2} dB");
    // Measured with spandsp 0.0.6: 22.1 dB.
    assert_eq!(lag, QMF_DELAY, "analysis + synthesis QMF delay");
    assert!(snr > 20.0, "speech SNR {snr}");
}

/// A known bitstream: G.722 is specified bit-exactly, so any correct coder turns the
/// same input into the same bytes. These were produced by spandsp 0.0.6 and checked
/// byte for byte against libavcodec 5.1's encoder (and its decoder's samples against
/// spandsp's) over the committed speech fixture.
#[test]
fn known_bitstream() {
    // Digital silence starts as the silence byte (the adaptive quantisers then settle
    // into their idle pattern).
    let mut enc = G722Encoder::new();
    let mut bits = [0u8; 160];
    enc.encode(&[0; 320], &mut bits).unwrap();
    assert!(bits[..40].iter().all(|&b| b == SILENCE), "{bits:x?}");
    // The first 16 bytes of a 1 kHz tone at 16 kHz, amplitude 8000, and a digest of
    // one second of it.
    let pcm = sine(1000.0, PCM_RATE, 16_000, 8000.0);
    let (bits, out) = round_trip(&pcm, 320);
    assert_eq!(&bits[..16], &KNOWN_1K_HEAD, "{:02x?}", &bits[..16]);
    assert_eq!(fnv1a(&bits), KNOWN_1K_FNV, "{:#x}", fnv1a(&bits));
    let pcm_bytes: Vec<u8> = out.iter().flat_map(|s| s.to_le_bytes()).collect();
    assert_eq!(
        fnv1a(&pcm_bytes),
        KNOWN_1K_DECODED_FNV,
        "{:#x}",
        fnv1a(&pcm_bytes)
    );
    assert!(rms(&out[1000..]) > 5000.0);
}

const KNOWN_1K_HEAD: [u8; 16] = [
    0xfa, 0x94, 0x25, 0x88, 0x21, 0x91, 0xa0, 0xa0, 0x60, 0xaf, 0xc8, 0xc6, 0xd1, 0xde, 0xf0, 0xeb,
];
const KNOWN_1K_FNV: u64 = 0x2721_942d_c185_1f23;
const KNOWN_1K_DECODED_FNV: u64 = 0x1844_6d12_e9fb_27ae;

#[test]
fn bad_lengths() {
    let mut enc = G722Encoder::new();
    let mut dec = G722Decoder::new();
    assert!(matches!(
        enc.encode(&[0; 3], &mut [0; 8]),
        Err(CodecError::PcmLength { .. })
    ));
    assert!(matches!(
        enc.encode(&[0; 320], &mut [0; 100]),
        Err(CodecError::OutputTooSmall {
            needed: 160,
            got: 100
        })
    ));
    assert!(matches!(
        dec.decode(&[], &mut [0; 8]),
        Err(CodecError::PayloadLength { .. })
    ));
    assert!(matches!(
        dec.decode(&[0; 160], &mut [0; 319]),
        Err(CodecError::OutputTooSmall {
            needed: 320,
            got: 319
        })
    ));
}

#[test]
fn wrappers_are_send() {
    fn is_send<T: Send>() {}
    is_send::<G722Encoder>();
    is_send::<G722Decoder>();
}

/// A noise sample, uniform in [-amp, amp].
fn noise(rng: &mut Rng, amp: i32) -> i16 {
    (rng.below(2 * amp as usize + 1) as i32 - amp) as i16
}

/// libspandsp's G.722 coder, the reference of the differential test. The codecs crate links
/// libspandsp for T.38, so the test binds its G.722 entry points directly.
#[cfg(feature = "t38")]
mod spandsp {
    use std::ptr::NonNull;

    #[repr(C)]
    struct EncodeState {
        _private: [u8; 0],
    }
    #[repr(C)]
    struct DecodeState {
        _private: [u8; 0],
    }

    // /usr/include/spandsp/g722.h (spandsp 0.0.6). A NULL state asks the library to allocate
    // one; `*_free` releases it.
    extern "C" {
        fn g722_encode_init(s: *mut EncodeState, rate: i32, options: i32) -> *mut EncodeState;
        fn g722_encode_free(s: *mut EncodeState) -> i32;
        fn g722_encode(s: *mut EncodeState, g722_data: *mut u8, amp: *const i16, len: i32) -> i32;
        fn g722_decode_init(s: *mut DecodeState, rate: i32, options: i32) -> *mut DecodeState;
        fn g722_decode_free(s: *mut DecodeState) -> i32;
        fn g722_decode(s: *mut DecodeState, amp: *mut i16, g722_data: *const u8, len: i32) -> i32;
    }

    pub(super) struct Encoder(NonNull<EncodeState>);
    pub(super) struct Decoder(NonNull<DecodeState>);

    impl Encoder {
        pub(super) fn new() -> Self {
            // SAFETY: a NULL state makes spandsp allocate one (64 kbit/s, no options).
            Encoder(
                NonNull::new(unsafe { g722_encode_init(std::ptr::null_mut(), 64_000, 0) }).unwrap(),
            )
        }

        pub(super) fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
            let mut out = vec![0; pcm.len() / 2];
            // SAFETY: the state is live; spandsp reads `len` samples and writes len / 2 bytes.
            let n = unsafe {
                g722_encode(
                    self.0.as_ptr(),
                    out.as_mut_ptr(),
                    pcm.as_ptr(),
                    pcm.len() as i32,
                )
            };
            assert_eq!(n as usize, out.len());
            out
        }
    }

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: allocated by g722_encode_init(NULL, ..), freed once.
            unsafe { g722_encode_free(self.0.as_ptr()) };
        }
    }

    impl Decoder {
        pub(super) fn new() -> Self {
            // SAFETY: as for the encoder.
            Decoder(
                NonNull::new(unsafe { g722_decode_init(std::ptr::null_mut(), 64_000, 0) }).unwrap(),
            )
        }

        pub(super) fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
            let mut out = vec![0; bytes.len() * 2];
            // SAFETY: the state is live; spandsp reads `len` bytes and writes 2 * len samples.
            let n = unsafe {
                g722_decode(
                    self.0.as_ptr(),
                    out.as_mut_ptr(),
                    bytes.as_ptr(),
                    bytes.len() as i32,
                )
            };
            assert_eq!(n as usize, out.len());
            out
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: allocated by g722_decode_init(NULL, ..), freed once.
            unsafe { g722_decode_free(self.0.as_ptr()) };
        }
    }
}

/// The inputs of the differential test, each a few seconds of 16 kHz audio: speech, noise at
/// several levels, full-scale square waves, a clipped sine, silence and DC.
fn test_signals() -> Vec<(String, Vec<i16>)> {
    let mut signals = Vec::new();
    for name in ["speech-8k.wav", "speech-8k-long.wav"] {
        let (_, speech) = read_wav(name);
        // 8 kHz doubled to 16 kHz: mostly lower band.
        signals.push((
            name.to_string(),
            speech.iter().flat_map(|&s| [s, s]).collect(),
        ));
    }
    let (rate, speech48) = read_wav("speech-48k.wav");
    assert_eq!(rate, 48_000);
    // Every third sample: 16 kHz with aliasing, so both bands carry energy.
    signals.push((
        "speech-48k/3".into(),
        speech48.iter().step_by(3).copied().collect(),
    ));
    // Speech at +12 dB, clipped.
    signals.push((
        "speech loud".into(),
        speech48
            .iter()
            .step_by(3)
            .map(|&s| (s as i32 * 4).clamp(-32768, 32767) as i16)
            .collect(),
    ));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for amp in [1, 30, 1000, 8000, 20_000, 32_767] {
        let noise = (0..48_000).map(|_| noise(&mut rng, amp)).collect();
        signals.push((format!("noise ±{amp}"), noise));
    }
    // Noise whose level jumps every 100 ms, so the scale factors swing both ways.
    let bursts = (0..48_000)
        .map(|n| {
            let amp = [32_767, 10, 5000, 0, 32_767, 300][n / 1600 % 6];
            noise(&mut rng, amp)
        })
        .collect();
    signals.push(("noise bursts".into(), bursts));
    for period in [2, 4, 16, 40, 160, 1000] {
        let square = (0..48_000)
            .map(|n| {
                if n % period < period / 2 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        signals.push((format!("square /{period}"), square));
    }
    signals.push((
        "alternating extremes".into(),
        (0..32_000)
            .map(|n| [i16::MIN, i16::MAX, i16::MAX, i16::MIN][n % 4])
            .collect(),
    ));
    for freq in [300.0, 3000.0, 7000.0] {
        let clipped = sine(freq, PCM_RATE, 48_000, 80_000.0);
        signals.push((format!("clipped sine {freq} Hz"), clipped));
    }
    signals.push(("silence".into(), vec![0; 32_000]));
    for dc in [i16::MAX, i16::MIN, 1000, -1] {
        signals.push((format!("DC {dc}"), vec![dc; 32_000]));
    }
    signals
}

/// Our decoder twice over one stream: as ngmedia runs it (saturating, like libavcodec) and
/// with libspandsp's wrapping output.
#[derive(Default)]
struct Decoders {
    saturating: G722Decoder,
    wrapping: G722Decoder,
}

impl Decoders {
    /// Decodes `bytes` both ways: the wrapping output must be libspandsp's sample for sample,
    /// the saturating one the same but where a sample sits at a rail.
    #[cfg(feature = "t38")]
    fn check(&mut self, bytes: &[u8], spandsp: &mut spandsp::Decoder, what: &str) {
        let mut saturated = vec![0i16; 2 * bytes.len()];
        let mut wrapped = vec![0i16; 2 * bytes.len()];
        self.saturating.decode(bytes, &mut saturated).unwrap();
        self.wrapping.decode_wrapping(bytes, &mut wrapped).unwrap();
        assert_eq!(wrapped, spandsp.decode(bytes), "{what}: decoder");
        for (i, (&s, &w)) in saturated.iter().zip(&wrapped).enumerate() {
            assert!(
                s == w || s == i16::MAX || s == i16::MIN,
                "{what}: sample {i} saturated {s}, wrapped {w}"
            );
        }
    }
}

/// Our coder against libspandsp's, byte for byte and sample for sample, over every test
/// signal and random bitstreams, in frames of several sizes (odd byte counts included). The
/// decoder's output is compared as libspandsp's (wrapping) and as ngmedia's (saturating).
#[cfg(feature = "t38")]
#[test]
fn bit_exact_with_spandsp() {
    let mut total = 0;
    for (name, pcm) in test_signals() {
        // PCM frames in samples (even); the byte counts include odd ones (161, 1, 7).
        for frame in [320, 322, 2, 14, 640, 960] {
            let mut ours = G722Encoder::new();
            let mut theirs = spandsp::Encoder::new();
            let mut ours_dec = Decoders::default();
            let mut theirs_dec = spandsp::Decoder::new();
            let mut bytes = [0u8; 480];
            for (i, chunk) in pcm.chunks_exact(frame).enumerate() {
                let n = ours.encode(chunk, &mut bytes).unwrap();
                let want = theirs.encode(chunk);
                assert_eq!(
                    &bytes[..n],
                    &want[..],
                    "{name}: encoder, frame {frame}, chunk {i}"
                );
                ours_dec.check(
                    &want,
                    &mut theirs_dec,
                    &format!("{name}, frame {frame}, chunk {i}"),
                );
                total += chunk.len();
            }
        }
    }
    // Random bitstreams, and bitstreams that repeat one random packet (as a jitter buffer or
    // a DTX sender might), into the decoder.
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..20 {
        let mut ours = Decoders::default();
        let mut theirs = spandsp::Decoder::new();
        let packet: Vec<u8> = (0..160).map(|_| rng.next_u64() as u8).collect();
        for i in 0..100 {
            let len = [160, 1, 7, 161, 333][(i + round) % 5];
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                packet.iter().cycle().take(len).copied().collect()
            };
            ours.check(
                &bytes,
                &mut theirs,
                &format!("random bytes, round {round}, packet {i}"),
            );
            total += 2 * len;
        }
    }
    eprintln!("{:.1} s of audio compared", total as f64 / PCM_RATE as f64);
}

/// The SSE2 zero section and threshold search against the plain-Rust ones, over random
/// states (any coefficient, any difference a band can produce) and every scale factor.
#[cfg(target_arch = "x86_64")]
#[test]
fn sse2_kernels_match_portable() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..20_000 {
        let mut b = [0i16; 8];
        let mut dd = [0i16; 8];
        for i in 0..6 {
            b[i] = rng.next_u64() as i16;
            dd[i] = rng.next_u64() as i16;
        }
        dd[6] = rng.next_u64() as i16;
        dd[7] = rng.next_u64() as i16;
        if round % 7 == 0 {
            b[..6].fill(i16::MIN);
            dd[..6].fill(i16::MIN);
        }
        let mut portable = super::portable::Zeros::load(&b, &dd);
        // SAFETY: SSE2 is part of the x86_64 baseline.
        let mut sse2 = unsafe { super::sse2::Zeros::load(&b, &dd) };
        for _ in 0..4 {
            let d = match rng.below(4) {
                0 => 0,
                1 => [-20_017, 20_016, -16_384, 16_383, -1, 1][rng.below(6)],
                _ => rng.below(40_034) as i32 - 20_017,
            };
            let want = portable.update(d);
            // SAFETY: as above.
            let got = unsafe { sse2.update(d) };
            assert_eq!(got, want, "sum, d {d}, b {b:?}, dd {dd:?}");
            let (mut b_portable, mut dd_portable) = ([0; 8], [0; 8]);
            portable.store(&mut b_portable, &mut dd_portable);
            let (mut b_sse2, mut dd_sse2) = ([0; 8], [0; 8]);
            // SAFETY: as above.
            unsafe { sse2.store(&mut b_sse2, &mut dd_sse2) };
            assert_eq!(b_sse2, b_portable, "coefficients");
            // Lane 7 is a don't-care that only the SSE2 shift keeps.
            assert_eq!(dd_sse2[..7], dd_portable[..7], "differences");
        }
    }
    for nb in (0..=NB_MAX_HIGH).step_by(64) {
        for det in [DET_LOW[(nb >> 6) as usize], DET_HIGH[(nb >> 6) as usize]] {
            for wd in (0..=32_767).step_by(7).chain([32_767]) {
                // SAFETY: as above.
                let got = unsafe { super::sse2::quantise_low(wd, det) };
                assert_eq!(
                    got,
                    super::portable::quantise_low(wd, det),
                    "wd {wd} det {det}"
                );
            }
        }
    }
}

/// Where libspandsp and libavcodec part (see the module doc), ngmedia decodes as libavcodec
/// does: the G.722 frame rtpengine's `auto-daemon-tests-dtx-cn.pl` repeats, eight times, then
/// 1600 random bytes, against libavcodec 5.1's samples for the same bytes (1183 of the 5760
/// differ from libspandsp's).
#[test]
fn saturates_like_libavcodec() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/g722-saturation.g722"
    );
    let input = std::fs::read(path).unwrap();
    let (rate, want) = read_wav("g722-saturation-libavcodec.wav");
    assert_eq!((rate, want.len()), (PCM_RATE, 2 * input.len()));
    for packet in [160, 1, 333] {
        let mut dec = G722Decoder::new();
        let mut got = vec![0i16; want.len()];
        for (bytes, out) in input.chunks(packet).zip(got.chunks_mut(2 * packet)) {
            dec.decode(bytes, out).unwrap();
        }
        assert_eq!(got, want, "{packet}-byte packets");
    }
    let mut wrapping = vec![0i16; want.len()];
    G722Decoder::new()
        .decode_wrapping(&input, &mut wrapping)
        .unwrap();
    let differ = wrapping.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        differ, 1183,
        "libspandsp's output differs in that many samples"
    );
}

/// Every pass this CPU can run (SSE2, and AVX2 where present) encodes to the same bytes and
/// decodes to the same samples, over the test signals and random bitstreams.
#[cfg(target_arch = "x86_64")]
#[test]
fn simd_variants_agree() {
    let mut rng = Rng(0x7a11_ba5e_0fc0_de01);
    let mut streams = Vec::new();
    for (name, pcm) in test_signals() {
        let encode = |simd| {
            let mut enc = G722Encoder::with_simd(simd);
            let mut bytes = vec![0u8; pcm.len() / 2];
            for (pcm, bytes) in pcm.chunks_exact(322).zip(bytes.chunks_mut(161)) {
                enc.encode(pcm, bytes).unwrap();
            }
            bytes
        };
        let want = encode(sse2::Simd::Sse2);
        for simd in sse2::Simd::available() {
            assert!(encode(simd) == want, "{name}: {simd:?}");
        }
        streams.push(want);
    }
    streams.push((0..48_000).map(|_| rng.next_u64() as u8).collect());
    for stream in &streams {
        let decode = |simd| {
            let mut dec = G722Decoder::with_simd(simd);
            let mut out = vec![0i16; 2 * stream.len()];
            for (bytes, out) in stream.chunks(161).zip(out.chunks_mut(322)) {
                dec.decode(bytes, out).unwrap();
            }
            out
        };
        let want = decode(sse2::Simd::Sse2);
        for simd in sse2::Simd::available() {
            assert!(decode(simd) == want, "{simd:?}");
        }
    }
}

/// The x86_64 predictor loops (both bands in the lanes of one register) against the
/// plain-Rust one, state for state, from reset through random codes.
#[cfg(target_arch = "x86_64")]
#[test]
fn predictors_match_portable() {
    let mut rng = Rng(0x0ddb_a115_eed0_0001);
    for simd in sse2::Simd::available() {
        let (mut low, mut high) = (Band::new(DET_INIT_LOW), Band::new(DET_INIT_HIGH));
        let (mut low_portable, mut high_portable) = (low, high);
        for packet in 0..400 {
            // Random codes, a repeated code (the predictors run into their limits) or the
            // silence pattern.
            let codes: Vec<u8> = match packet % 4 {
                0 | 1 => (0..160).map(|_| rng.next_u64() as u8).collect(),
                2 => vec![rng.next_u64() as u8; 160],
                _ => vec![SILENCE; 160],
            };
            let mut want = [0i32; 160];
            let mut p = portable::Predictors::load(&low_portable, &high_portable);
            let (mut l, mut h) = (low_portable, high_portable);
            p.decode(portable::Simd::detect(), &codes, &mut want, |c| {
                inverse(&mut l, &mut h, c)
            });
            p.store(&mut l, &mut h);
            (low_portable, high_portable) = (l, h);
            let mut got = [0i32; 160];
            // SAFETY: SSE2 is part of the x86_64 baseline; `available` lists AVX2 only
            // where the CPU has it.
            let mut p = unsafe { sse2::Predictors::load(&low, &high) };
            let (mut l, mut h) = (low, high);
            // SAFETY: as above.
            unsafe { p.decode(simd, &codes, &mut got, |c| inverse(&mut l, &mut h, c)) };
            // SAFETY: as above.
            unsafe { p.store(&mut l, &mut h) };
            (low, high) = (l, h);
            assert_eq!(got, want, "{simd:?}, packet {packet}");
            assert_eq!(
                format!("{low:?} {high:?}"),
                format!("{low_portable:?} {high_portable:?}")
            );
        }
    }
}
