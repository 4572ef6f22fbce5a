//! G.722 (ITU-T G.722, 64 kbit/s sub-band ADPCM), ngmedia's own implementation.
//!
//! Written from the Recommendation's description of the coder: the 24-tap quadrature mirror
//! filter (QMF) splits 16 kHz audio into two 8 kHz sub-bands; the lower band is coded by a
//! 6-bit ADPCM (60 thresholds, 4-bit inverse quantiser in the predictor loop), the higher band
//! by a 2-bit ADPCM; both bands adapt their scale factor in the log domain (blocks 3L/3H) and
//! predict with a two-pole, six-zero filter whose coefficients follow the sign algorithm of
//! blocks 4L/4H. Every step is the Recommendation's fixed-point arithmetic, so the coder is
//! bit-exact: the same bytes as libspandsp's encoder and the same samples as its decoder (a
//! differential unit test drives both over seconds of speech, noise, square waves, clipping,
//! silence and random bitstreams).
//!
//! Why not a library: G.722 dominated the cost of a transcoded G.722 call through libspandsp
//! (11.1 µs to encode and 6.0 µs to decode a 20 ms frame, docs/transcoding.md "G.722"). The
//! coder's state is small and fixed, so it runs here without FFI and without allocating after
//! construction.
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

/// Payload bytes (sample pairs) one pass of the QMF handles: its scratch lives in the coder,
/// so any payload length is processed in passes of at most this many bytes without
/// allocating. 160 is one 20 ms packet, the common case, in a single pass.
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

#[inline(always)]
fn sat16(x: i32) -> i32 {
    x.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// Linear scale factor from the log one (SCALEL / SCALEH): 2^(nb / 2^11 - shift) with
/// 5 bits of mantissa from `ILB`.
#[inline(always)]
fn scale(nb: i32, shift: i32) -> i32 {
    let mantissa = ILB[((nb >> 6) & 31) as usize];
    let exp = shift - (nb >> 11);
    let wd = if exp < 0 {
        mantissa << -exp
    } else {
        mantissa >> exp
    };
    wd << 2
}

/// Adaptive state of one sub-band (blocks 3 and 4 of the Recommendation; the same for both
/// bands but for the scale factor limits). rtpengine (libavcodec): `struct G722Band`.
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
    a: [i32; 2],
    /// Zero coefficients B1 .. B6.
    b: [i32; 6],
    /// Quantised differences DLT(n-1) .. DLT(n-6).
    d: [i32; 6],
    /// Partially reconstructed signal PLT(n-1), PLT(n-2).
    p: [i32; 2],
    /// Reconstructed signal RLT(n-1), RLT(n-2).
    r: [i32; 2],
}

impl Band {
    const fn new(det: i32) -> Self {
        Band {
            s: 0,
            sz: 0,
            det,
            nb: 0,
            a: [0; 2],
            b: [0; 6],
            d: [0; 6],
            p: [0; 2],
            r: [0; 2],
        }
    }

    /// LOGSCL / LOGSCH and SCALEL / SCALEH: adapts the scale factor to the code just sent.
    #[inline(always)]
    fn adapt_scale(&mut self, step: i32, nb_max: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + step).clamp(0, nb_max);
        self.det = scale(self.nb, shift);
    }

    /// Block 4: reconstructs with the quantised difference `d` and adapts the predictor
    /// (RECONS, PARREC, UPPOL2, UPPOL1, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC).
    #[inline(always)]
    fn predict(&mut self, d: i32) {
        let r0 = sat16(self.s + d);
        let p0 = sat16(self.sz + d);
        // Signs as the Recommendation takes them: 0 counts as positive.
        let sg0 = p0 >> 15;
        let sg1 = self.p[0] >> 15;
        let sg2 = self.p[1] >> 15;
        // UPPOL2
        let wd1 = sat16(self.a[0] << 2);
        let wd2 = if sg0 == sg1 { (-wd1).min(32767) } else { wd1 };
        let a2 = ((wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 } + ((self.a[1] * 32512) >> 15))
            .clamp(-12288, 12288);
        // UPPOL1
        let a1 = sat16(if sg0 == sg1 { 192 } else { -192 } + ((self.a[0] * 32640) >> 15));
        let lim = 15360 - a2;
        let a1 = a1.clamp(-lim, lim);
        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        let dsg = d >> 15;
        for i in 0..6 {
            let g = if self.d[i] >> 15 == dsg { step } else { -step };
            self.b[i] = sat16(g + ((self.b[i] * 32640) >> 15));
        }
        // DELAYA
        self.d.copy_within(0..5, 1);
        self.d[0] = d;
        self.p = [p0, self.p[0]];
        self.r = [r0, self.r[0]];
        self.a = [a1, a2];
        // FILTEP
        let sp = sat16(((a1 * sat16(r0 << 1)) >> 15) + ((a2 * sat16(self.r[1] << 1)) >> 15));
        // FILTEZ
        let mut sz = 0;
        for i in 0..6 {
            sz += (self.b[i] * sat16(self.d[i] << 1)) >> 15;
        }
        self.sz = sat16(sz);
        // PREDIC
        self.s = sat16(sp + self.sz);
    }
}

/// A G.722 encoder (64 kbit/s, 16 kHz input). rtpengine: the G.722 `encoder_t`
/// (libavcodec's `G722Context`).
#[derive(Debug, Clone)]
pub struct G722Encoder {
    low: Band,
    high: Band,
    /// The last 22 input samples, the QMF's delay line.
    hist: [i32; HIST],
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
            self.encode_pass(pcm, out);
        }
        Ok(n)
    }

    fn encode_pass(&mut self, pcm: &[i16], out: &mut [u8]) {
        let pairs = out.len();
        // The QMF is not in the ADPCM feedback loop: it runs over the whole pass first.
        let mut x = [0i32; HIST + 2 * PASS];
        x[..HIST].copy_from_slice(&self.hist);
        for (x, &s) in x[HIST..].iter_mut().zip(pcm) {
            *x = s as i32;
        }
        self.hist.copy_from_slice(&x[2 * pairs..2 * pairs + HIST]);
        let mut bands = [(0i32, 0i32); PASS];
        // Transmit QMF: x(j) is the newer sample of the pair, x(j - 1) the older.
        for (k, band) in bands[..pairs].iter_mut().enumerate() {
            let w = &x[2 * k..2 * k + HIST + 2];
            let (mut even, mut odd) = (0, 0);
            for i in 0..12 {
                even += QMF_EVEN[i] * w[HIST + 1 - 2 * i];
                odd += QMF_EVEN[11 - i] * w[HIST - 2 * i];
            }
            *band = ((even + odd) >> 14, (even - odd) >> 14);
        }
        for (&(xl, xh), out) in bands.iter().zip(out.iter_mut()) {
            // Block 1L: SUBTRA, QUANTL.
            let low = &mut self.low;
            let el = sat16(xl - low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let mut i = 1;
            while i < 30 && wd >= (Q6[i] * low.det) >> 12 {
                i += 1;
            }
            let il = if el < 0 { ILN[i] } else { ILP[i] };
            // Block 2L: INVQAL; blocks 3L, 4L.
            let ilr = (il >> 2) as usize;
            let dl = (low.det * QM4[ilr]) >> 15;
            low.adapt_scale(WL4[ilr], NB_MAX_LOW, NB_SHIFT_LOW);
            low.predict(dl);
            // Block 1H: SUBTRA, QUANTH.
            let high = &mut self.high;
            let eh = sat16(xh - high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (Q2 * high.det) >> 12 { 2 } else { 1 };
            let ih = if eh < 0 { IHN[mih] } else { IHP[mih] } as usize;
            // Block 2H: INVQAH; blocks 3H, 4H.
            let dh = (high.det * QM2[ih]) >> 15;
            high.adapt_scale(WH2[ih], NB_MAX_HIGH, NB_SHIFT_HIGH);
            high.predict(dh);
            *out = ((ih as i32) << 6 | il) as u8;
        }
    }
}

/// A G.722 decoder (64 kbit/s, 16 kHz output). rtpengine: the G.722 `decoder_t`
/// (libavcodec's `G722Context`).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// The QMF's delay line: the last 11 pairs (RL - RH, RL + RH).
    hist: [i32; HIST],
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
            hist: [0; HIST],
        }
    }

    /// Decodes a payload into `2 * payload.len()` samples of 16 kHz PCM; returns that count.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::PayloadLength {
                codec: "G722",
                len: payload.len(),
            });
        }
        let n = payload.len() * SAMPLES_PER_BYTE;
        let out = crate::take_out(out, n)?;
        for (bytes, out) in payload.chunks(PASS).zip(out.chunks_mut(2 * PASS)) {
            self.decode_pass(bytes, out);
        }
        Ok(n)
    }

    fn decode_pass(&mut self, bytes: &[u8], out: &mut [i16]) {
        let pairs = bytes.len();
        let mut x = [0i32; HIST + 2 * PASS];
        x[..HIST].copy_from_slice(&self.hist);
        for (&code, x) in bytes.iter().zip(x[HIST..].chunks_exact_mut(2)) {
            let il = (code & 0x3f) as usize;
            let ih = (code >> 6) as usize;
            // Block 5L: INVQBL, RECONS; block 6L: LIMIT.
            let low = &mut self.low;
            let rl = (low.s + ((low.det * QM6[il]) >> 15)).clamp(-16384, 16383);
            // Blocks 2L, 3L, 4L.
            let dl = (low.det * QM4[il >> 2]) >> 15;
            low.adapt_scale(WL4[il >> 2], NB_MAX_LOW, NB_SHIFT_LOW);
            low.predict(dl);
            // Blocks 2H, 5H, 6H, 3H, 4H.
            let high = &mut self.high;
            let dh = (high.det * QM2[ih]) >> 15;
            let rh = (high.s + dh).clamp(-16384, 16383);
            high.adapt_scale(WH2[ih], NB_MAX_HIGH, NB_SHIFT_HIGH);
            high.predict(dh);
            x[0] = rl - rh;
            x[1] = rl + rh;
        }
        self.hist.copy_from_slice(&x[2 * pairs..2 * pairs + HIST]);
        // Receive QMF (not in the feedback loop, so over the whole pass): the first sample of
        // each pair from the even coefficients and the differences, the second from the odd
        // ones and the sums.
        for (k, out) in out.chunks_exact_mut(2).take(pairs).enumerate() {
            let w = &x[2 * k..2 * k + HIST + 2];
            let (mut first, mut second) = (0, 0);
            for i in 0..12 {
                first += QMF_EVEN[i] * w[HIST - 2 * i];
                second += QMF_EVEN[11 - i] * w[HIST + 1 - 2 * i];
            }
            // Truncated to 16 bits, as libspandsp does.
            out[0] = (first >> 11) as i16;
            out[1] = (second >> 11) as i16;
        }
    }
}

#[cfg(test)]
mod tests;
