//! The vector parts of the coder with SSE2 (every x86_64 CPU has it): the zero section of a
//! band is one 8 × 16-bit register, the lower-band threshold search four. `portable.rs` is
//! the same arithmetic in plain Rust, and a unit test checks both agree.

use std::arch::x86_64::*;

use super::{pack, Band, Q6X16};

/// The six-tap zero section of one band: coefficients B1 .. B6 and the doubled, saturated
/// differences DLT(n-1) .. DLT(n-6), in 8 lanes (see `Band`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Zeros {
    b: __m128i,
    dd: __m128i,
}

#[target_feature(enable = "sse2")]
#[inline]
fn to_vec(x: &[i16; 8]) -> __m128i {
    _mm_set_epi16(x[7], x[6], x[5], x[4], x[3], x[2], x[1], x[0])
}

#[target_feature(enable = "sse2")]
#[inline]
fn to_array(v: __m128i) -> [i16; 8] {
    [
        _mm_extract_epi16::<0>(v) as i16,
        _mm_extract_epi16::<1>(v) as i16,
        _mm_extract_epi16::<2>(v) as i16,
        _mm_extract_epi16::<3>(v) as i16,
        _mm_extract_epi16::<4>(v) as i16,
        _mm_extract_epi16::<5>(v) as i16,
        _mm_extract_epi16::<6>(v) as i16,
        _mm_extract_epi16::<7>(v) as i16,
    ]
}

impl Zeros {
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn load(b: &[i16; 8], dd: &[i16; 8]) -> Self {
        Zeros {
            b: to_vec(b),
            dd: to_vec(dd),
        }
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn store(self, b: &mut [i16; 8], dd: &mut [i16; 8]) {
        (*b, *dd) = (to_array(self.b), to_array(self.dd));
    }

    /// UPZERO, DELAYA and FILTEZ for the quantised difference `d`: adapts the coefficients,
    /// shifts `d` in and returns the section's output before saturation.
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn update(&mut self, d: i32) -> i32 {
        _mm_cvtsi128_si32(self.update_with(_mm_set1_epi16(d as i16)))
    }

    /// `update` with the difference in every lane; the sum is in the first 32-bit lane (the
    /// others hold it too).
    #[target_feature(enable = "sse2")]
    #[inline]
    fn update_with(&mut self, d: __m128i) -> __m128i {
        // UPZERO: ±128 by the signs of DLT(n) and DLT(n-i) (0 counts as positive; nothing
        // when DLT(n) is 0, nor in lanes 6 and 7), and B + (-B >> 8) as B plus the high half
        // of B × -256.
        let step = _mm_andnot_si128(
            _mm_cmpeq_epi16(d, _mm_setzero_si128()),
            _mm_set_epi16(0, 0, 128, 128, 128, 128, 128, 128),
        );
        let differ = _mm_srai_epi16::<15>(_mm_xor_si128(self.dd, d));
        let g = _mm_sub_epi16(_mm_xor_si128(step, differ), differ);
        let b = _mm_add_epi16(
            _mm_add_epi16(self.b, _mm_mulhi_epi16(self.b, _mm_set1_epi16(-256))),
            g,
        );
        // DELAYA: shift 2·DLT(n), saturated, in.
        let dd = _mm_or_si128(
            _mm_slli_si128::<2>(self.dd),
            _mm_and_si128(_mm_adds_epi16(d, d), _mm_set_epi16(0, 0, 0, 0, 0, 0, 0, -1)),
        );
        // FILTEZ: each lane's B × DLT >> 15 is twice the product's high half plus bit 15 of
        // its low half; the lanes are summed in 32 bits.
        let high = _mm_mulhi_epi16(b, dd);
        let bit = _mm_srli_epi16::<15>(_mm_mullo_epi16(b, dd));
        let sums = _mm_add_epi32(
            _mm_madd_epi16(high, _mm_set1_epi16(2)),
            _mm_madd_epi16(bit, _mm_set1_epi16(1)),
        );
        let sums = _mm_add_epi32(sums, _mm_shuffle_epi32::<0b01_00_11_10>(sums));
        let sums = _mm_add_epi32(sums, _mm_shuffle_epi32::<0b10_11_00_01>(sums));
        (self.b, self.dd) = (b, dd);
        sums
    }
}

/// QUANTL's search: how many lanes of `Q6X16` (scaled by `det`) the magnitude `wd` reaches.
/// The thresholds rise lane by lane, so those above `wd` are the top lanes and the count is
/// the number of trailing zeros of their mask.
#[target_feature(enable = "sse2")]
#[inline]
pub(super) fn quantise_low(wd: i32, det: i32) -> usize {
    let det = _mm_set1_epi16(det as i16);
    let wd = _mm_set1_epi16(wd as i16);
    let above = |lanes: &[u16]| {
        let q = _mm_set_epi16(
            lanes[7] as i16,
            lanes[6] as i16,
            lanes[5] as i16,
            lanes[4] as i16,
            lanes[3] as i16,
            lanes[2] as i16,
            lanes[1] as i16,
            lanes[0] as i16,
        );
        // The unsigned high half of level × 2^4 × det is the threshold (< 2^15).
        _mm_cmpgt_epi16(_mm_mulhi_epu16(q, det), wd)
    };
    let low = _mm_packs_epi16(above(&Q6X16[0..8]), above(&Q6X16[8..16]));
    let high = _mm_packs_epi16(above(&Q6X16[16..24]), above(&Q6X16[24..32]));
    let mask = _mm_movemask_epi8(low) as u32 | (_mm_movemask_epi8(high) as u32) << 16;
    mask.trailing_zeros() as usize
}

/// The lanes of a two-band vector: lane 0 holds the lower band, lane 1 the higher one (the
/// other six lanes carry don't-cares).
#[target_feature(enable = "sse2")]
#[inline]
fn pair(low: i32, high: i32) -> __m128i {
    _mm_cvtsi32_si128(pack(low, high))
}

#[target_feature(enable = "sse2")]
#[inline]
fn lanes(v: __m128i) -> (i32, i32) {
    (
        _mm_extract_epi16::<0>(v) as i16 as i32,
        _mm_extract_epi16::<1>(v) as i16 as i32,
    )
}

/// (a × b) >> 15 in each 16-bit lane, exact when the result fits 16 bits: twice the
/// product's high half plus bit 15 of its low half.
#[target_feature(enable = "sse2")]
#[inline]
fn mul15(a: __m128i, b: __m128i) -> __m128i {
    _mm_or_si128(
        _mm_slli_epi16::<1>(_mm_mulhi_epi16(a, b)),
        _mm_srli_epi16::<15>(_mm_mullo_epi16(a, b)),
    )
}

/// `x` where `mask` is 0, -x where it is -1.
#[target_feature(enable = "sse2")]
#[inline]
fn negate_where(x: __m128i, mask: __m128i) -> __m128i {
    _mm_sub_epi16(_mm_xor_si128(x, mask), mask)
}

/// Which vector extension the coder's passes use: checked once, when a coder is
/// made. SSE2 is part of the x86_64 baseline; with AVX2 both bands' zero sections are one
/// 16-lane register and every instruction has three operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Simd {
    Sse2,
    Avx2,
}

impl Simd {
    pub(super) fn detect() -> Self {
        if is_x86_feature_detected!("avx2") {
            Simd::Avx2
        } else {
            Simd::Sse2
        }
    }

    /// Every variant this CPU runs (for tests).
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        let mut all = vec![Simd::Sse2];
        if Self::detect() == Simd::Avx2 {
            all.push(Simd::Avx2);
        }
        all
    }
}

/// Blocks 4L and 4H of both bands at once, one band per lane (see `pair`): the predictor
/// state of `Band` but for the scale factor, with both zero sections.
#[derive(Clone, Copy, Debug)]
pub(super) struct Predictors {
    s: __m128i,
    sz: __m128i,
    a1: __m128i,
    a2: __m128i,
    sg0: __m128i,
    sg1: __m128i,
    rr: __m128i,
    low: Zeros,
    high: Zeros,
}

impl Predictors {
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn load(low: &Band, high: &Band) -> Self {
        Predictors {
            s: pair(low.s, high.s),
            sz: pair(low.sz, high.sz),
            a1: pair(low.a1, high.a1),
            a2: pair(low.a2, high.a2),
            sg0: pair(low.sg[0], high.sg[0]),
            sg1: pair(low.sg[1], high.sg[1]),
            rr: pair(low.rr, high.rr),
            low: Zeros::load(&low.b, &low.dd),
            high: Zeros::load(&high.b, &high.dd),
        }
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn store(self, low: &mut Band, high: &mut Band) {
        (low.s, high.s) = lanes(self.s);
        (low.sz, high.sz) = lanes(self.sz);
        (low.a1, high.a1) = lanes(self.a1);
        (low.a2, high.a2) = lanes(self.a2);
        (low.sg[0], high.sg[0]) = lanes(self.sg0);
        (low.sg[1], high.sg[1]) = lanes(self.sg1);
        (low.rr, high.rr) = lanes(self.rr);
        self.low.store(&mut low.b, &mut low.dd);
        self.high.store(&mut high.b, &mut high.dd);
    }

    /// The decoder's loop: for each code, `inverse` gives the quantised differences
    /// (`pack`ed) the predictors take (DLT, DHT) and those the output is reconstructed with
    /// (the lower band's from all six bits, DHT); blocks 5 and 6 (`reconstruct`) write the
    /// reconstructed signals into `r`, then blocks 4L and 4H (`predict`) run.
    #[target_feature(enable = "sse2")]
    pub(super) fn decode(
        &mut self,
        simd: Simd,
        codes: &[u8],
        r: &mut [i32],
        inverse: impl FnMut(u8) -> (i32, i32),
    ) {
        match simd {
            Simd::Sse2 => self.decode_sse2(codes, r, inverse),
            // SAFETY: `Simd::detect` found AVX2 on this CPU.
            Simd::Avx2 => unsafe { self.decode_avx2(codes, r, inverse) },
        }
    }

    #[target_feature(enable = "sse2")]
    fn decode_sse2(
        &mut self,
        codes: &[u8],
        r: &mut [i32],
        mut inverse: impl FnMut(u8) -> (i32, i32),
    ) {
        for (&code, r) in codes.iter().zip(r) {
            let (d, e) = inverse(code);
            *r = self.reconstruct(e);
            self.predict(d);
        }
    }

    /// `decode_sse2` with both zero sections in one AVX2 register.
    #[target_feature(enable = "avx2")]
    fn decode_avx2(
        &mut self,
        codes: &[u8],
        r: &mut [i32],
        mut inverse: impl FnMut(u8) -> (i32, i32),
    ) {
        let mut zeros = BothZeros::load(self.low, self.high);
        for (&code, r) in codes.iter().zip(r) {
            let (d, e) = inverse(code);
            *r = self.reconstruct(e);
            let d = _mm_cvtsi32_si128(d);
            let sz = zeros.update(d);
            self.poles(d, sz);
        }
        (self.low, self.high) = zeros.store();
    }

    /// Blocks 5 and 6 (RECONS, LIMIT) of both bands: the predicted signals plus `e`, the
    /// quantised differences (`pack`ed), limited to 15 bits.
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn reconstruct(&self, e: i32) -> i32 {
        let r = _mm_adds_epi16(self.s, _mm_cvtsi32_si128(e));
        _mm_cvtsi128_si32(_mm_min_epi16(
            _mm_max_epi16(r, _mm_set1_epi16(-16384)),
            _mm_set1_epi16(16383),
        ))
    }

    /// `Band::predict` for both bands: `d` holds the quantised differences DLT, DHT
    /// (`pack`ed).
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn predict(&mut self, d: i32) {
        let d = _mm_cvtsi32_si128(d);
        // The zero sections, each on its difference in every lane; their sums back into one
        // lane per band.
        let low = self
            .low
            .update_with(_mm_shuffle_epi32::<0>(_mm_shufflelo_epi16::<0>(d)));
        let high =
            self.high.update_with(_mm_shuffle_epi32::<0>(
                _mm_shufflelo_epi16::<0b01_01_01_01>(d),
            ));
        self.poles(d, _mm_unpacklo_epi32(low, high));
    }

    /// `Band::predict` but for the zero sections, whose sums `sz` (32 bits a band) are
    /// given: both bands at once.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn poles(&mut self, d: __m128i, sz: __m128i) {
        let sz = _mm_packs_epi32(sz, sz);
        // RECONS and PARREC: only 2·RLT (saturated) and the sign of PLT are used.
        let t = _mm_adds_epi16(self.s, d);
        let rr0 = _mm_adds_epi16(t, t);
        let sg0 = _mm_srai_epi16::<15>(_mm_adds_epi16(self.sz, d));
        let same1 = _mm_cmpeq_epi16(sg0, self.sg0);
        let same2 = _mm_cmpeq_epi16(sg0, self.sg1);
        // UPPOL2: the Recommendation's saturated 4·A1 >> 7 is A1 >> 5 with A1 limited to
        // ±8191; A2 - A2 >> 7 as A2 plus the high half of A2 × -512.
        let c = _mm_min_epi16(
            _mm_max_epi16(self.a1, _mm_set1_epi16(-8191)),
            _mm_set1_epi16(8191),
        );
        let a2 = _mm_add_epi16(
            _mm_add_epi16(self.a2, _mm_mulhi_epi16(self.a2, _mm_set1_epi16(-512))),
            _mm_add_epi16(
                _mm_srai_epi16::<5>(negate_where(c, same1)),
                negate_where(_mm_set1_epi16(-128), same2),
            ),
        );
        let a2 = _mm_min_epi16(
            _mm_max_epi16(a2, _mm_set1_epi16(-12288)),
            _mm_set1_epi16(12288),
        );
        // UPPOL1
        let a1 = _mm_add_epi16(
            _mm_add_epi16(self.a1, _mm_mulhi_epi16(self.a1, _mm_set1_epi16(-256))),
            negate_where(_mm_set1_epi16(-192), same1),
        );
        let a1 = _mm_min_epi16(
            _mm_max_epi16(a1, _mm_sub_epi16(a2, _mm_set1_epi16(15360))),
            _mm_sub_epi16(_mm_set1_epi16(15360), a2),
        );
        // FILTEP, PREDIC.
        let sp = _mm_adds_epi16(mul15(a1, rr0), mul15(a2, self.rr));
        self.sg1 = self.sg0;
        self.sg0 = sg0;
        self.a1 = a1;
        self.a2 = a2;
        self.rr = rr0;
        self.sz = sz;
        self.s = _mm_adds_epi16(sp, sz);
    }
}

/// Both bands' zero sections in one AVX2 register, the lower band in the low 128 bits:
/// `Zeros::update_with` on 16 lanes (AVX2 shifts and shuffles stay within 128-bit halves).
struct BothZeros {
    b: __m256i,
    dd: __m256i,
}

impl BothZeros {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn load(low: Zeros, high: Zeros) -> Self {
        BothZeros {
            b: _mm256_set_m128i(high.b, low.b),
            dd: _mm256_set_m128i(high.dd, low.dd),
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store(self) -> (Zeros, Zeros) {
        let half = |v: __m256i| (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let ((low_b, high_b), (low_dd, high_dd)) = (half(self.b), half(self.dd));
        (
            Zeros {
                b: low_b,
                dd: low_dd,
            },
            Zeros {
                b: high_b,
                dd: high_dd,
            },
        )
    }

    /// `Zeros::update` of both bands for the differences DLT, DHT in lanes 0 and 1 of `d`;
    /// returns the sums in the first two 32-bit lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn update(&mut self, d: __m128i) -> __m128i {
        // DLT in every lane of the low half, DHT in every lane of the high half.
        let d = _mm256_shuffle_epi8(
            _mm256_broadcastd_epi32(d),
            _mm256_set_epi8(
                3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0,
                1, 0, 1, 0,
            ),
        );
        let step = _mm256_andnot_si256(
            _mm256_cmpeq_epi16(d, _mm256_setzero_si256()),
            _mm256_set_epi16(
                0, 0, 128, 128, 128, 128, 128, 128, 0, 0, 128, 128, 128, 128, 128, 128,
            ),
        );
        let differ = _mm256_srai_epi16::<15>(_mm256_xor_si256(self.dd, d));
        let g = _mm256_sub_epi16(_mm256_xor_si256(step, differ), differ);
        let b = _mm256_add_epi16(
            _mm256_add_epi16(self.b, _mm256_mulhi_epi16(self.b, _mm256_set1_epi16(-256))),
            g,
        );
        let dd = _mm256_or_si256(
            _mm256_slli_si256::<2>(self.dd),
            _mm256_and_si256(
                _mm256_adds_epi16(d, d),
                _mm256_set_epi16(0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, -1),
            ),
        );
        let high = _mm256_mulhi_epi16(b, dd);
        let bit = _mm256_srli_epi16::<15>(_mm256_mullo_epi16(b, dd));
        let sums = _mm256_add_epi32(
            _mm256_madd_epi16(high, _mm256_set1_epi16(2)),
            _mm256_madd_epi16(bit, _mm256_set1_epi16(1)),
        );
        let sums = _mm256_add_epi32(sums, _mm256_shuffle_epi32::<0b01_00_11_10>(sums));
        let sums = _mm256_add_epi32(sums, _mm256_shuffle_epi32::<0b10_11_00_01>(sums));
        (self.b, self.dd) = (b, dd);
        _mm_unpacklo_epi32(
            _mm256_castsi256_si128(sums),
            _mm256_extracti128_si256::<1>(sums),
        )
    }
}
