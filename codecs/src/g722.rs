//! G.722 (ITU-T G.722, 64 kbit/s sub-band ADPCM), ngmedia's own implementation.
//!
//! Written from the Recommendation's description of the coder: the 24-tap quadrature mirror
//! filter (QMF) splits 16 kHz audio into two 8 kHz sub-bands; the lower band is coded by a
//! 6-bit ADPCM (60 thresholds, 4-bit inverse quantiser in the predictor loop), the higher band
//! by a 2-bit ADPCM; both bands adapt their scale factor in the log domain (blocks 3L/3H) and
//! predict with a two-pole, six-zero filter whose coefficients follow the sign algorithm of
//! blocks 4L/4H. Every step is the Recommendation's fixed-point arithmetic, so the coder is
//! bit-exact: the same bytes as libspandsp's encoder, and the same samples as its decoder but
//! for one difference on purpose (a differential unit test drives both over minutes of speech,
//! noise, square waves, clipping, silence and random bitstreams).
//!
//! That difference is where libspandsp and libavcodec, rtpengine's G.722, part: the receive
//! QMF's output is 2^-11 of a sum that can exceed 16 bits (both bands near full scale with
//! opposite phase, as a repeated frame or random bytes produce), and libspandsp 0.0.6 keeps
//! its low 16 bits, so such a sample wraps to the other sign (32768 comes out as -32768),
//! where libavcodec 5.1 saturates it to ±32767/-32768. Everything before the output stage
//! (the predictors, scale factors and the limited reconstructed signals) is the same in both,
//! so they differ only in those samples. ngmedia saturates, as rtpengine's decoder does
//! (rtpengine's `auto-daemon-tests-dtx-cn.pl` sends one G.722 frame over and over and expects
//! libavcodec's samples); a test pins libavcodec's output for such a stream
//! (`samples/g722-saturation.g722` and `-libavcodec.wav`). The difference was found by
//! decoding random bytes, every single-byte stream and repeated frames with both libraries:
//! every sample that differs is such an overflow.
//!
//! Why not a library: G.722 dominated the cost of a transcoded G.722 call through libspandsp
//! (11.1 µs to encode and 6.0 µs to decode a 20 ms frame, docs/transcoding.md "G.722"). The
//! coder's state is small and fixed, so it runs here without FFI and without allocating after
//! construction, and it is shaped for speed: the QMF is not in the ADPCM feedback loop, so it
//! runs over a whole packet first (encoder) or last (decoder) as 16-bit dot products; the
//! scale factor comes from a table; the lower band's quantiser compares the difference with
//! all 29 thresholds at once; each band's six-tap zero section is one 8 × 16-bit vector
//! (`sse2.rs` on x86_64, `portable.rs` elsewhere, a unit test checks they agree); the
//! Recommendation's multiplications by 1 - 2^-7 and 1 - 2^-8 are shifts; limits are selects,
//! not branches (a scale factor or coefficient at its limit is common and unpredictable: that
//! alone took the decoder from 3.1 to 2.6 µs per frame). The `unsafe` blocks are the calls
//! into the SSE2 pass: the intrinsics need the `target_feature` attribute although SSE2 is
//! part of the x86_64 baseline, and the AVX2 loop, which runs where `Simd::detect` found
//! AVX2 when the coder was made. It took the encoder from 5.0 to 3.6 µs per frame.
//!
//! The decoder's loop is bound by how many instructions it issues, not by the recurrence
//! (whose longest chain, through the pole coefficients, is about a dozen cycles a sample),
//! so it runs blocks 4, 5 and 6 of both bands in the lanes of one register: on x86_64
//! `sse2::Predictors` holds each predictor variable as a vector whose lane 0 is the lower
//! band and lane 1 the higher one, so one instruction stream adapts both pole sections, and
//! with AVX2 both bands' zero sections are one 16-lane register. The inverse quantisers and
//! scale factors (blocks 2, 3 and 5's table look-ups) stay scalar in the same loop, where
//! they use the integer units while the vector ones run the predictors. Both coders' passes
//! are also compiled a second time with AVX2 enabled (`with_avx2!`), where the compiler
//! widens the QMF to 256-bit registers and gives every vector instruction three operands;
//! `Simd::detect` chooses once, when a coder is made, and a test checks that every variant
//! gives the same bytes and samples. That took the decoder from 2.4 to 1.5 µs per frame
//! (AVX2; the SSE2 loop, the same code but two 8-lane zero sections and two-operand
//! instructions, 1.9) and the encoder from 3.1 to 3.0.
//!
//! The encoder is bound by its recurrence instead, each sample's code needing the prediction
//! the previous code gave: on the x86_64 this was measured on, a vector instruction costs two
//! cycles of latency and a move between the general and the vector registers four to five,
//! so the chain through the SSE2 quantiser, INVQAL and the pole section is about 60 cycles a
//! sample and the zero section adds some 15 (without either zero section the loop still
//! takes 2.4 of its 2.75 µs). Running the encoder's predictors in `Predictors` (4.4 µs),
//! adapting the zero section to DLT's sign before DLT is known (3.2 to 3.5) and taking the
//! 4-bit decision from scalar comparisons did not shorten it: a faster encoder needs the
//! whole chain (quantiser, zero and pole sections) in scalar registers.
//!
//! Framing (RFC 3551 §4.5.2): G.722 carries 16 kHz audio, one byte per two samples (64
//! kbit/s), but its RTP clock is 8000 Hz "for historical reasons": SDP says `G722/8000` and a
//! 20 ms packet holds 320 samples in 160 bytes and advances the timestamp by 160. Any number
//! of bytes is a valid payload; there is no frame boundary, no comfort noise and no
//! concealment in the codec (a lost packet is played as silence, as rtpengine does).

use crate::CodecError;

/// PCM rate of G.722 audio.
pub const PCM_RATE: u32 = 16_000;
/// PCM samples per payload byte.
pub const SAMPLES_PER_BYTE: usize = 2;
/// The payload byte digital silence encodes to (rtpengine's `silence_pattern` for G.722).
pub const SILENCE: u8 = 0xFA;

/// Payload bytes (sample pairs) one pass handles: the QMF runs over a whole pass apart from
/// the ADPCM loop, in scratch on the stack, so any payload length is processed in passes of
/// at most this many bytes without allocating. 160 is one 20 ms packet, in a single pass.
const PASS: usize = 160;
/// Samples of history the 24-tap QMF needs before the current pair.
const HIST: usize = 22;

/// The even-indexed QMF coefficients h(0), h(2) .. h(22), in units of 2^-13 (Recommendation
/// Table 4). The filter is symmetric, h(i) = h(23 - i), so the odd ones are these reversed.
const QMF_EVEN: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower-band quantiser decision levels (Table 6), in the unit the scale factor multiplies
/// (threshold = level × DETL / 2^12); index 0 and 30 bound the search.
const Q6: [i32; 31] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0,
];
/// 6-bit code of lower-band interval i for a negative difference (Table 6, ILN).
const ILN: [i32; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4,
];
/// 6-bit code of lower-band interval i for a positive difference (Table 6, ILP).
const ILP: [i32; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32,
];
/// 6-bit inverse quantiser output for each lower-band code (Table 7, QL6 × 2^3), the decoder's
/// reconstruction at 64 kbit/s.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// 4-bit inverse quantiser output for the code's four most significant bits (Table 7, QL4),
/// used in the predictor loop of both encoder and decoder.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Lower-band log scale factor multiplier WL for each 4-bit code (Table 8, through RIL → IL4).
const WL4: [i32; 16] = {
    const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
    const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
    let mut t = [0; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = WL[RL42[i]];
        i += 1;
    }
    t
};
/// Higher-band decision level (Table 5, × DETH / 2^12).
const Q2: i32 = 564;
/// 2-bit higher-band code for a negative / positive difference, by magnitude interval 1..2.
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
/// Higher-band inverse quantiser output for each 2-bit code (Table 5, QH2 × 2^3).
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Higher-band log scale factor multiplier WH for each 2-bit code (Table 9, through IH2).
const WH2: [i32; 4] = [798, -214, 798, -214];
/// Table of 2^(i/32) in units of 2^-11 (block 3L SCALEL, ILB): the log-to-linear conversion
/// of the scale factor.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Upper bound of the lower / higher band log scale factor (blocks 3L / 3H).
const NB_MAX_LOW: i32 = 18_432;
const NB_MAX_HIGH: i32 = 22_528;
/// Offset of the log scale factor of each band (SCALEL adds 8, SCALEH 10) in steps of 2^11.
const NB_SHIFT_LOW: i32 = 8;
const NB_SHIFT_HIGH: i32 = 10;
/// Initial scale factors (DETL, DETH after reset).
const DET_INIT_LOW: i32 = 32;
const DET_INIT_HIGH: i32 = 8;

/// The 24 QMF coefficients h(0) .. h(23).
const QMF: [i32; 24] = {
    let mut h = [0; 24];
    let mut i = 0;
    while i < 12 {
        h[2 * i] = QMF_EVEN[i];
        h[2 * i + 1] = QMF_EVEN[11 - i];
        i += 1;
    }
    h
};
/// `h` as 16-bit taps, the even-indexed ones negated when `negate_even`, in reverse order
/// when `reverse`.
const fn taps<const N: usize>(h: [i32; N], negate_even: bool, reverse: bool) -> [i16; N] {
    let mut t = [0; N];
    let mut i = 0;
    while i < N {
        let x = h[if reverse { N - 1 - i } else { i }];
        t[i] = if negate_even && i % 2 == 0 { -x } else { x } as i16;
        i += 1;
    }
    t
}
/// The transmit QMF over a window of 24 input samples, oldest first (w[23] = x(j)): the lower
/// band is the sum of h(k)·x(j - k), the higher band the same with the odd k subtracted. As
/// h is symmetric, w[m] meets h(m) in both, the higher band negating even m.
const QMF_LOW: [i16; 24] = taps(QMF, false, false);
const QMF_HIGH: [i16; 24] = taps(QMF, true, false);
/// The receive QMF over 12 pairs, oldest first: the first output sample of a pair weighs the
/// differences RL - RH of pair n - i by h(2i), the second the sums RL + RH by h(2i + 1).
const QMF_FIRST: [i16; 12] = taps(QMF_EVEN, false, true);
const QMF_SECOND: [i16; 12] = taps(QMF_EVEN, false, false);

/// The lower-band decision levels 1 .. 29 scaled by 2^4, so that a 16 × 16-bit product's
/// high half is the threshold: (level × 2^4 × DETL) >> 16 = (level × DETL) >> 12. The first
/// three lanes are 0 (a threshold every magnitude passes), which keeps the search 32 wide.
const Q6X16: [u16; 32] = {
    let mut t = [0; 32];
    let mut i = 0;
    while i < 29 {
        t[i + Q6_PAD] = (Q6[i + 1] * 16) as u16;
        i += 1;
    }
    t
};
/// Lanes of `Q6X16` every magnitude passes.
const Q6_PAD: usize = 3;

/// Per lower-band quantiser interval i (1 .. 30), plus 32 for a negative difference: the
/// 6-bit code, its 4-bit inverse quantiser output and its log scale factor step.
const LOW_CODE: [u8; 64] = {
    let mut t = [0; 64];
    let mut i = 0;
    while i < 31 {
        t[i] = ILP[i] as u8;
        t[i + 32] = ILN[i] as u8;
        i += 1;
    }
    t
};
/// `table` looked up with the 4-bit code of each lower-band interval (`LOW_CODE`).
const fn by_interval(table: [i32; 16]) -> [i32; 64] {
    let mut t = [0; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = table[(LOW_CODE[i] >> 2) as usize];
        i += 1;
    }
    t
}
const LOW_QM4: [i32; 64] = by_interval(QM4);
const LOW_WL: [i32; 64] = by_interval(WL4);
/// The 2-bit higher-band code by magnitude interval (0, 1) plus 2 for a negative difference.
const HIGH_CODE: [usize; 4] = [
    IHP[1] as usize,
    IHP[2] as usize,
    IHN[1] as usize,
    IHN[2] as usize,
];

/// Linear scale factor from the log one (SCALEL / SCALEH): 2^(nb / 2^11 - shift) with
/// 5 bits of mantissa from `ILB`, then × 4. It depends on nb >> 6 only.
const fn scale(nb: i32, shift: i32) -> i32 {
    let mantissa = ILB[((nb >> 6) & 31) as usize];
    let exp = shift - (nb >> 11);
    let wd = if exp < 0 {
        mantissa << -exp
    } else {
        mantissa >> exp
    };
    wd << 2
}

/// `scale` for every nb >> 6 up to a band's limit (512 entries: indexing with a 9-bit mask
/// needs no bounds check).
const fn scale_table(nb_max: i32, shift: i32) -> [i32; 512] {
    let mut t = [0; 512];
    let mut i = 0;
    while i <= (nb_max >> 6) as usize {
        t[i] = scale((i as i32) << 6, shift);
        i += 1;
    }
    t
}
static DET_LOW: [i32; 512] = scale_table(NB_MAX_LOW, NB_SHIFT_LOW);
static DET_HIGH: [i32; 512] = scale_table(NB_MAX_HIGH, NB_SHIFT_HIGH);

#[inline(always)]
fn sat16(x: i32) -> i32 {
    clamp(x, i16::MIN as i32, i16::MAX as i32)
}

/// `x.clamp(lo, hi)` without branches: the limits of the scale factors and predictor
/// coefficients are hit often and in no pattern a branch predictor learns (speech pauses,
/// tones), so selects beat the compiler's branches there.
#[inline(always)]
fn clamp(x: i32, lo: i32, hi: i32) -> i32 {
    let x = lo + ((x - lo) & !((x - lo) >> 31));
    hi + ((x - hi) & ((x - hi) >> 31))
}

/// A 16-bit dot product into 32 bits (exact: |sum| < 2^31 for the QMF's coefficients).
#[inline(always)]
fn dot<const N: usize>(h: &[i16; N], x: &[i16; N]) -> i32 {
    h.iter().zip(x).map(|(&h, &x)| h as i32 * x as i32).sum()
}

/// Adaptive state of one sub-band (blocks 3 and 4 of the Recommendation; the same for both
/// bands but for the scale factor limits). rtpengine (libavcodec): `struct G722Band`.
///
/// The Recommendation's multiplications by 1 - 2^-7 and 1 - 2^-8 (LOGSCL, UPPOL1/2, UPZERO)
/// are done as x + (-x >> 7) and x + (-x >> 8), which floor the same; signals the filters
/// only ever use doubled and saturated (DLT and RLT) are kept that way.
#[derive(Clone, Copy, Debug)]
struct Band {
    /// Predictor output SL / SH.
    s: i32,
    /// Zero-section output SZL / SZH.
    sz: i32,
    /// Quantiser scale factor DETL / DETH.
    det: i32,
    /// Log scale factor NBL / NBH.
    nb: i32,
    /// Pole coefficients A1, A2.
    a1: i32,
    a2: i32,
    /// Zero coefficients B1 .. B6, and two lanes that stay 0 so that the six-tap zero
    /// section is one 8 × 16-bit vector.
    b: [i16; 8],
    /// Quantised differences DLT(n-1) .. DLT(n-6), doubled and saturated as FILTEZ uses them
    /// (the sign, which UPZERO uses, is the same); lanes 6 and 7 are don't-cares (their
    /// coefficients are 0).
    dd: [i16; 8],
    /// Signs (0 or -1) of the partially reconstructed signal PLT(n-1), PLT(n-2).
    sg: [i32; 2],
    /// Reconstructed signal RLT(n-1), doubled and saturated as FILTEP uses it.
    rr: i32,
}

impl Band {
    const fn new(det: i32) -> Self {
        Band {
            s: 0,
            sz: 0,
            det,
            nb: 0,
            a1: 0,
            a2: 0,
            b: [0; 8],
            dd: [0; 8],
            sg: [0; 2],
            rr: 0,
        }
    }

    /// LOGSCL / LOGSCH and SCALEL / SCALEH: adapts the scale factor to the code just sent.
    #[inline(always)]
    fn adapt_scale(&mut self, step: i32, nb_max: i32, det: &[i32; 512]) {
        self.nb = clamp(self.nb + (-self.nb >> 7) + step, 0, nb_max);
        self.det = det[(self.nb >> 6) as usize & 511];
    }

    /// Block 4 but for the zero section: reconstructs with the quantised difference `d`,
    /// adapts the pole section and predicts the next sample from `sz`, the zero section's
    /// sum (`Zeros::update`) (RECONS, PARREC, UPPOL2, UPPOL1, FILTEP, PREDIC).
    #[inline(always)]
    fn predict(&mut self, d: i32, sz: i32) {
        // RECONS and PARREC: only 2·RLT (saturated) and the sign of PLT are used.
        let rr0 = sat16((self.s + d) << 1);
        let sg0 = (self.sz + d) >> 31;
        let same1 = sg0 == self.sg[0];
        let same2 = sg0 == self.sg[1];
        // UPPOL2: the Recommendation's saturated 4·A1 >> 7 is A1 >> 5 with A1 limited to
        // ±8191.
        let c = clamp(self.a1, -8191, 8191);
        let a2 = clamp(
            (if same1 { -c } else { c } >> 5)
                + if same2 { 128 } else { -128 }
                + self.a2
                + (-self.a2 >> 7),
            -12288,
            12288,
        );
        // UPPOL1
        let lim = 15360 - a2;
        let a1 = clamp(
            self.a1 + (-self.a1 >> 8) + if same1 { 192 } else { -192 },
            -lim,
            lim,
        );
        self.sg = [sg0, self.sg[0]];
        // FILTEP, PREDIC.
        let sp = sat16(((a1 * rr0) >> 15) + ((a2 * self.rr) >> 15));
        self.a1 = a1;
        self.a2 = a2;
        self.rr = rr0;
        self.sz = sat16(sz);
        self.s = sat16(sp + self.sz);
    }
}

#[cfg(any(not(target_arch = "x86_64"), test))]
mod portable;
#[cfg(target_arch = "x86_64")]
mod sse2;
#[cfg(not(target_arch = "x86_64"))]
use portable::{quantise_low, Predictors, Simd, Zeros};
#[cfg(target_arch = "x86_64")]
use sse2::{quantise_low, Predictors, Simd, Zeros};

/// Two 16-bit values in one `i32`, `low` in the low half: a sample pair's values for the
/// two bands, as `Predictors` takes them.
#[inline(always)]
fn pack(low: i32, high: i32) -> i32 {
    (low as u16 as u32 | (high as u32) << 16) as i32
}

#[inline(always)]
fn unpack(x: i32) -> (i32, i32) {
    (x as i16 as i32, x >> 16)
}

/// Writes a coder's pass twice on x86_64: `$base` with SSE2 enabled (every x86_64 CPU has it;
/// the intrinsics need the attribute) and `$avx2` with AVX2 enabled, where the compiler
/// vectorises the QMF over 256-bit registers and encodes every vector instruction with three
/// operands (the coder calls the one `Simd::detect` chose). Elsewhere only `$base`, plain.
macro_rules! with_avx2 {
    ($base:ident, $avx2:ident, [$($generics:tt)*] ($($args:tt)*) $body:block) => {
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse2"))]
        fn $base<$($generics)*>($($args)*) $body

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2<$($generics)*>($($args)*) $body
    };
}

/// A G.722 encoder (64 kbit/s, 16 kHz input). rtpengine: the G.722 `encoder_t`
/// (libavcodec's `G722Context`).
#[derive(Debug, Clone)]
pub struct G722Encoder {
    low: Band,
    high: Band,
    /// The last 22 input samples, the QMF's delay line.
    hist: [i16; HIST],
    simd: Simd,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> Self {
        G722Encoder {
            low: Band::new(DET_INIT_LOW),
            high: Band::new(DET_INIT_HIGH),
            hist: [0; HIST],
            simd: Simd::detect(),
        }
    }

    /// An encoder that runs its passes with `simd` (tests compare every variant).
    #[cfg(test)]
    fn with_simd(simd: Simd) -> Self {
        G722Encoder {
            simd,
            ..Self::new()
        }
    }

    /// Encodes 16 kHz PCM (an even number of samples) into `pcm.len() / 2` bytes of `out`;
    /// returns that length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if !pcm.len().is_multiple_of(SAMPLES_PER_BYTE) {
            return Err(CodecError::PcmLength {
                expected: pcm.len() & !1,
                got: pcm.len(),
            });
        }
        let n = pcm.len() / SAMPLES_PER_BYTE;
        let out = crate::take_out(out, n)?;
        for (pcm, out) in pcm.chunks(2 * PASS).zip(out.chunks_mut(PASS)) {
            #[cfg(target_arch = "x86_64")]
            match self.simd {
                // SAFETY: the pass only needs SSE2, which every x86_64 CPU has (it is part of
                // the architecture's baseline); the attribute merely lets it use the
                // intrinsics.
                Simd::Sse2 => unsafe { self.encode_pass(pcm, out) },
                // SAFETY: `Simd::detect` found AVX2 on this CPU.
                Simd::Avx2 => unsafe { self.encode_pass_avx2(pcm, out) },
            }
            #[cfg(not(target_arch = "x86_64"))]
            self.encode_pass(pcm, out);
        }
        Ok(n)
    }

    with_avx2!(encode_pass, encode_pass_avx2, [] (&mut self, pcm: &[i16], out: &mut [u8]) {
        let pairs = out.len().min(PASS);
        // Transmit QMF over the whole pass (it is outside the ADPCM feedback loop).
        let mut x = [0i16; HIST + 2 * PASS];
        x[..HIST].copy_from_slice(&self.hist);
        x[HIST..HIST + 2 * pairs].copy_from_slice(&pcm[..2 * pairs]);
        self.hist.copy_from_slice(&x[2 * pairs..2 * pairs + HIST]);
        let mut xl = [0i32; PASS];
        let mut xh = [0i32; PASS];
        for k in 0..pairs {
            let w: &[i16; 24] = x[2 * k..2 * k + 24].try_into().unwrap();
            xl[k] = dot(&QMF_LOW, w) >> 14;
            xh[k] = dot(&QMF_HIGH, w) >> 14;
        }
        let (mut low, mut high) = (self.low, self.high);
        let mut low_zeros = Zeros::load(&low.b, &low.dd);
        let mut high_zeros = Zeros::load(&high.b, &high.dd);
        for ((&xl, &xh), out) in xl.iter().zip(&xh).zip(out.iter_mut()) {
            // Block 1L: SUBTRA, QUANTL (the interval is the count of thresholds passed).
            let el = sat16(xl - low.s);
            let wd = el ^ (el >> 31);
            let passed = quantise_low(wd, low.det);
            let interval = (passed + 1 - Q6_PAD) | ((el >> 31) as usize & 32);
            // Block 2L: INVQAL; blocks 3L, 4L.
            let dl = (low.det * LOW_QM4[interval & 63]) >> 15;
            low.adapt_scale(LOW_WL[interval & 63], NB_MAX_LOW, &DET_LOW);
            low.predict(dl, low_zeros.update(dl));
            // Block 1H: SUBTRA, QUANTH.
            let eh = sat16(xh - high.s);
            let wd = eh ^ (eh >> 31);
            let outer = (wd >= (Q2 * high.det) >> 12) as usize;
            let ih = HIGH_CODE[(outer | ((eh >> 31) as usize & 2)) & 3];
            // Block 2H: INVQAH; blocks 3H, 4H.
            let dh = (high.det * QM2[ih]) >> 15;
            high.adapt_scale(WH2[ih], NB_MAX_HIGH, &DET_HIGH);
            high.predict(dh, high_zeros.update(dh));
            *out = (ih << 6) as u8 | LOW_CODE[interval & 63];
        }
        low_zeros.store(&mut low.b, &mut low.dd);
        high_zeros.store(&mut high.b, &mut high.dd);
        (self.low, self.high) = (low, high);
    });
}

/// The decoder's blocks 2L, 5L (INVQAL, INVQBL), 2H, 3L and 3H for one code: the quantised
/// differences the predictors take (DLT, DHT) and those the output is reconstructed with
/// (the lower band's from all six bits, DHT), each `pack`ed; the scale factors adapt.
#[inline(always)]
fn inverse(low: &mut Band, high: &mut Band, code: u8) -> (i32, i32) {
    let il = (code & 0x3f) as usize;
    let ih = (code >> 6) as usize;
    let el = (low.det * QM6[il]) >> 15;
    let dl = (low.det * QM4[il >> 2]) >> 15;
    low.adapt_scale(WL4[il >> 2], NB_MAX_LOW, &DET_LOW);
    let dh = (high.det * QM2[ih]) >> 15;
    high.adapt_scale(WH2[ih], NB_MAX_HIGH, &DET_HIGH);
    (pack(dl, dh), pack(el, dh))
}

/// A G.722 decoder (64 kbit/s, 16 kHz output). rtpengine: the G.722 `decoder_t`
/// (libavcodec's `G722Context`).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// The QMF's delay line: RL - RH and RL + RH of the last 11 pairs.
    diff: [i16; HIST / 2],
    sum: [i16; HIST / 2],
    simd: Simd,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        G722Decoder {
            low: Band::new(DET_INIT_LOW),
            high: Band::new(DET_INIT_HIGH),
            diff: [0; HIST / 2],
            sum: [0; HIST / 2],
            simd: Simd::detect(),
        }
    }

    /// A decoder that runs its predictors with `simd` (tests compare every variant).
    #[cfg(test)]
    fn with_simd(simd: Simd) -> Self {
        G722Decoder {
            simd,
            ..Self::new()
        }
    }

    /// Decodes a payload into `2 * payload.len()` samples of 16 kHz PCM; returns that count.
    /// The output saturates, as libavcodec's (rtpengine's) does; see the module doc.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        self.decode_with::<true>(payload, out)
    }

    /// `decode` with libspandsp's output: truncated to 16 bits where a sample overflows.
    #[cfg(test)]
    fn decode_wrapping(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        self.decode_with::<false>(payload, out)
    }

    fn decode_with<const SATURATE: bool>(
        &mut self,
        payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::PayloadLength {
                codec: "G722",
                len: payload.len(),
            });
        }
        let n = payload.len() * SAMPLES_PER_BYTE;
        let out = crate::take_out(out, n)?;
        for (bytes, out) in payload.chunks(PASS).zip(out.chunks_mut(2 * PASS)) {
            #[cfg(target_arch = "x86_64")]
            match self.simd {
                // SAFETY: as in `G722Encoder::encode`: SSE2 is part of the x86_64 baseline.
                Simd::Sse2 => unsafe { self.decode_pass::<SATURATE>(bytes, out) },
                // SAFETY: `Simd::detect` found AVX2 on this CPU.
                Simd::Avx2 => unsafe { self.decode_pass_avx2::<SATURATE>(bytes, out) },
            }
            #[cfg(not(target_arch = "x86_64"))]
            self.decode_pass::<SATURATE>(bytes, out);
        }
        Ok(n)
    }

    with_avx2!(decode_pass, decode_pass_avx2, [const SATURATE: bool] (&mut self, bytes: &[u8], out: &mut [i16]) {
        const H: usize = HIST / 2;
        let pairs = bytes.len().min(PASS);
        // Blocks 2L, 5L (INVQAL, INVQBL), 2H and 3L, 3H: the quantised differences and the
        // scale factors follow from the codes alone, apart from the predictors; then blocks
        // 5L/5H (RECONS), 6L/6H (LIMIT) and 4L/4H of both bands at once.
        let mut predictors = Predictors::load(&self.low, &self.high);
        let (mut low, mut high) = (self.low, self.high);
        let mut r = [0i32; PASS];
        predictors.decode(self.simd, &bytes[..pairs], &mut r, |code| {
            inverse(&mut low, &mut high, code)
        });
        predictors.store(&mut low, &mut high);
        (self.low, self.high) = (low, high);
        // RL - RH and RL + RH (both within 16 bits: each band is limited to 15).
        let mut diff = [0i16; H + PASS];
        let mut sum = [0i16; H + PASS];
        diff[..H].copy_from_slice(&self.diff);
        sum[..H].copy_from_slice(&self.sum);
        for ((&r, diff), sum) in r[..pairs].iter().zip(&mut diff[H..]).zip(&mut sum[H..]) {
            let (rl, rh) = unpack(r);
            *diff = (rl - rh) as i16;
            *sum = (rl + rh) as i16;
        }
        self.diff.copy_from_slice(&diff[pairs..pairs + H]);
        self.sum.copy_from_slice(&sum[pairs..pairs + H]);
        // Receive QMF over the whole pass (outside the feedback loop).
        for (k, out) in out.chunks_exact_mut(2).take(pairs).enumerate() {
            let first = dot(&QMF_FIRST, diff[k..k + 12].try_into().unwrap());
            let second = dot(&QMF_SECOND, sum[k..k + 12].try_into().unwrap());
            if SATURATE {
                out[0] = sat16(first >> 11) as i16;
                out[1] = sat16(second >> 11) as i16;
            } else {
                out[0] = (first >> 11) as i16;
                out[1] = (second >> 11) as i16;
            }
        }
    });
}

#[cfg(test)]
mod tests;
