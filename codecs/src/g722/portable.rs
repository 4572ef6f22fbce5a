//! The vector parts of the coder in plain Rust: the reference for `sse2.rs` (a unit test
//! checks they agree) and the code other architectures run.

use super::{sat16, Q6X16};

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
