//! The vector parts of the coder in plain Rust: the reference for `sse2.rs` (a unit test
//! checks they agree) and the code other architectures run.

use super::{clamp, pack, sat16, unpack, Band, Q6X16};

/// The lanes of the zero section that hold coefficients B1 .. B6.
const ZERO_LANES: [i16; 8] = [-1, -1, -1, -1, -1, -1, 0, 0];

/// The six-tap zero section of one band: coefficients B1 .. B6 and the doubled, saturated
/// differences DLT(n-1) .. DLT(n-6), in 8 lanes (see `Band`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Zeros {
    b: [i16; 8],
    dd: [i16; 8],
}

impl Zeros {
    pub(super) fn load(b: &[i16; 8], dd: &[i16; 8]) -> Self {
        Zeros { b: *b, dd: *dd }
    }

    pub(super) fn store(self, b: &mut [i16; 8], dd: &mut [i16; 8]) {
        (*b, *dd) = (self.b, self.dd);
    }

    /// UPZERO, DELAYA and FILTEZ for the quantised difference `d`: adapts the coefficients,
    /// shifts `d` in and returns the section's output before saturation.
    #[inline(always)]
    pub(super) fn update(&mut self, d: i32) -> i32 {
        // UPZERO (0 counts as positive): B + (-B >> 8) is B plus the high half of B × -256.
        let step = if d == 0 { 0 } else { 128 };
        let d16 = d as i16;
        for ((b, &dd), lane) in self.b.iter_mut().zip(&self.dd).zip(ZERO_LANES) {
            let differ = (dd ^ d16) >> 15;
            let g = ((step & lane) ^ differ) - differ;
            *b += ((*b as i32 * -256) >> 16) as i16 + g;
        }
        // DELAYA, FILTEZ.
        self.dd.copy_within(0..7, 1);
        self.dd[0] = sat16(d << 1) as i16;
        (0..8)
            .map(|i| (self.b[i] as i32 * self.dd[i] as i32) >> 15)
            .sum()
    }
}

/// QUANTL's search: how many lanes of `Q6X16` (scaled by `det`) the magnitude `wd` reaches.
#[inline(always)]
pub(super) fn quantise_low(wd: i32, det: i32) -> usize {
    let det = det as u32;
    Q6X16
        .iter()
        .map(|&q| (((q as u32 * det) >> 16) as i32 <= wd) as usize)
        .sum()
}

/// Blocks 4L and 4H of both bands (`Band` but for the scale factor, and both zero sections),
/// with the interface of the SSE2 version, which runs them in the lanes of one register.
#[derive(Clone, Copy, Debug)]
pub(super) struct Predictors {
    low: Band,
    high: Band,
    low_zeros: Zeros,
    high_zeros: Zeros,
}

/// The one way other architectures run the coder (the x86_64 version chooses between SSE2
/// and AVX2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Simd;

impl Simd {
    pub(super) fn detect() -> Self {
        Simd
    }
}

impl Predictors {
    /// The decoder's loop: for each code, `inverse` gives the quantised differences
    /// (`pack`ed) the predictors take (DLT, DHT) and those the output is reconstructed with
    /// (the lower band's from all six bits, DHT); blocks 5 and 6 (`reconstruct`) write the
    /// reconstructed signals into `r`, then blocks 4L and 4H (`predict`) run.
    pub(super) fn decode(
        &mut self,
        _: Simd,
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

    pub(super) fn load(low: &Band, high: &Band) -> Self {
        Predictors {
            low: *low,
            high: *high,
            low_zeros: Zeros::load(&low.b, &low.dd),
            high_zeros: Zeros::load(&high.b, &high.dd),
        }
    }

    /// Writes the predictor state back (not the scale factors, which the caller keeps).
    pub(super) fn store(self, low: &mut Band, high: &mut Band) {
        let keep_scale = |band: &mut Band, mine: Band| {
            *band = Band {
                det: band.det,
                nb: band.nb,
                ..mine
            }
        };
        keep_scale(low, self.low);
        keep_scale(high, self.high);
        self.low_zeros.store(&mut low.b, &mut low.dd);
        self.high_zeros.store(&mut high.b, &mut high.dd);
    }

    /// Blocks 5 and 6 (RECONS, LIMIT) of both bands: the predicted signals plus `e`, the
    /// quantised differences (`pack`ed), limited to 15 bits.
    #[inline(always)]
    pub(super) fn reconstruct(&self, e: i32) -> i32 {
        let (low, high) = unpack(e);
        pack(
            clamp(self.low.s + low, -16384, 16383),
            clamp(self.high.s + high, -16384, 16383),
        )
    }

    /// `Band::predict` for both bands: `d` holds the quantised differences DLT, DHT
    /// (`pack`ed).
    #[inline(always)]
    pub(super) fn predict(&mut self, d: i32) {
        let (low, high) = unpack(d);
        self.low.predict(low, self.low_zeros.update(low));
        self.high.predict(high, self.high_zeros.update(high));
    }
}
