//! The vector parts of the coder with SSE2 (every x86_64 CPU has it): the zero section of a
//! band is one 8 × 16-bit register, the lower-band threshold search four. `portable.rs` is
//! the same arithmetic in plain Rust, and a unit test checks both agree.

use std::arch::x86_64::*;

use super::Q6X16;

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
        // UPZERO: ±128 by the signs of DLT(n) and DLT(n-i) (0 counts as positive; nothing
        // when DLT(n) is 0, nor in lanes 6 and 7), and B + (-B >> 8) as B plus the high half
        // of B × -256.
        let d = _mm_set1_epi16(d as i16);
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
        _mm_cvtsi128_si32(sums)
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
