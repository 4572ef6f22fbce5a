//! RFC 3389 comfort noise: the payload (noise level and reflection coefficients), a noise
//! generator that turns it into PCM, and the analysis that describes a frame of PCM as one.
//!
//! rtpengine decodes CN with libavcodec's `comfortnoise` decoder, asked for one packet time
//! of audio per CN packet. Receivers compare the exact samples (rtpengine's own tests check
//! the G.711 bytes a CN packet turns into), so [`NoiseGenerator`] produces the same numbers:
//! white excitation from a lagged Fibonacci generator (x[n] = x[n-24] + x[n-55] mod 2^32,
//! libavutil's `AVLFG` seeded with 0, its initial state in [`LFG_SEED0`]), scaled to the
//! energy the noise level asks for (−L dBov ↦ 1081109975 · 10^(−L/10) · 0.75, corrected by
//! the prediction gain Π(1 − k²) of the reflection coefficients), shaped by the all-pole
//! synthesis filter of those coefficients (order 12), and truncated toward zero to 16 bits.
//! Between updates the generator moves halfway toward the new energy and 40 % toward the
//! new coefficients per frame, so a new level fades in instead of stepping. The float
//! arithmetic follows the same order and precision (f32 state, f64 intermediates where the
//! reference computes in double), which is what makes the samples identical. The one
//! difference: the synthesis filter sums in the plain direct form, where libavcodec sums
//! four samples at a time in another order; the float results then differ in the last
//! bit now and then, which moves perhaps one sample in a thousand by one LSB (never for
//! the payloads of rtpengine's tests, checked in the unit tests).
//!
//! Nothing here allocates: the generator's state is a few fixed arrays.

use crate::CodecError;

/// Static RTP payload type of CN at 8000 Hz (RFC 3551 §6, RFC 3389 §5.1).
pub const STATIC_PT: u8 = 13;
/// Order of the synthesis filter: the reflection coefficients the generator uses (later
/// ones in a payload are ignored, missing ones are 0 = flat spectrum).
pub const ORDER: usize = 12;
/// Most reflection coefficients a payload built by [`CnPayload::analyse`] carries, and kept
/// by [`CnPayload::parse`] (RFC 3389 leaves the order open; 12 is what the generator uses).
pub const MAX_COEFFS: usize = ORDER;
/// Energy scale of the generator: 10^(L/10) of this is the energy of −L dBov
/// (libavcodec's constant, kept for sample-exact output).
const ENERGY_REF: i32 = 1_081_109_975;

/// The state of libavutil's lagged Fibonacci generator after `av_lfg_init(.., 0)`: the
/// first eight words are zero, the rest come from MD5 over the seed. Data, not code: the
/// generator must start here for the noise to match rtpengine's sample for sample.
const LFG_SEED0: [u32; 64] = [
    0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
    0x3b376b5e, 0xf56be763, 0xcba2a7fc, 0x9751b2c7, 0x5b1fe69a, 0x860b05af, 0x2b2650ca, 0x92a97fb0,
    0x7315e8eb, 0x8b6287a3, 0x2ddbd8b3, 0x1d098ca2, 0x6a65b478, 0xc9b22db4, 0x9637fbcf, 0xd4427934,
    0xb390e2b5, 0x92a84d32, 0x2110b086, 0x25a9182f, 0x239295f1, 0xc6f846f7, 0x5c5b3a51, 0xe6a7ba34,
    0xd6597325, 0xa537e3df, 0xcb80e534, 0xeaecf2dc, 0x9bbb6bd1, 0x2ea8bd11, 0x8c06ce60, 0x6859af1d,
    0xf159f64e, 0xc213bd06, 0x2a5d7785, 0xe621dc54, 0xb8cb9a8e, 0xe6a491f8, 0x85d7df25, 0x917d9aee,
    0xb156c513, 0x5bd929dd, 0xf6a9dab1, 0xc3ec5f2a, 0x5215230d, 0xe2b677d7, 0x701e36e7, 0x5405e2c7,
    0xddcb3ae2, 0x95b866ea, 0x1eb13c9a, 0x346646c2, 0x8ba48526, 0xb325e9bf, 0x29f07d49, 0xc986cf38,
];

/// One CN payload (RFC 3389 §3): the noise level in −dBov and the quantised reflection
/// coefficients of the noise's spectral envelope. rtpengine passes the bytes through or
/// feeds them to libavcodec; here they are a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnPayload {
    /// Noise level, 0..=127: the noise is −`level` dBov (RFC 3389 §3.1).
    pub level: u8,
    /// Quantised reflection coefficients, `coeffs[..order]` used: k = (q − 127) / 128
    /// (RFC 3389 §3.2).
    pub coeffs: [u8; MAX_COEFFS],
    pub order: usize,
}

impl CnPayload {
    /// A flat-spectrum payload of `level` −dBov (what rtpengine's `--cn-payload` default,
    /// one byte 32, means).
    pub fn flat(level: u8) -> CnPayload {
        CnPayload {
            level: level & 0x7f,
            coeffs: [0; MAX_COEFFS],
            order: 0,
        }
    }

    /// Parse a CN payload: one level byte (its unused top bit ignored), then any number of
    /// coefficient bytes, of which the first [`MAX_COEFFS`] are kept.
    pub fn parse(payload: &[u8]) -> Result<CnPayload, CodecError> {
        let (&level, rest) = payload.split_first().ok_or(CodecError::PayloadLength {
            codec: "CN",
            len: 0,
        })?;
        let order = rest.len().min(MAX_COEFFS);
        let mut coeffs = [0; MAX_COEFFS];
        coeffs[..order].copy_from_slice(&rest[..order]);
        Ok(CnPayload {
            level: level & 0x7f,
            coeffs,
            order,
        })
    }

    /// Write the payload into `out`; returns its length (1 + order).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        let len = 1 + self.order;
        let out = crate::take_out(out, len)?;
        out[0] = self.level & 0x7f;
        out[1..].copy_from_slice(&self.coeffs[..self.order]);
        Ok(len)
    }

    /// Reflection coefficient `i` (0 beyond the payload's order).
    pub fn reflection(&self, i: usize) -> f32 {
        if i < self.order {
            ((self.coeffs[i] as i32 - 127) as f64 / 128.0) as f32
        } else {
            0.0
        }
    }

    /// Describe a frame of 16-bit PCM as comfort noise (RFC 3389 §3, the encoder side):
    /// its level in −dBov (full-scale square wave = 0 dBov, clamped to 0..=127; digital
    /// silence is 127) and `order` reflection coefficients of its spectral envelope, from
    /// the autocorrelation by the Levinson-Durbin recursion.
    pub fn analyse(pcm: &[i16], order: usize) -> CnPayload {
        let order = order.min(MAX_COEFFS);
        let mut payload = CnPayload {
            level: level_dbov(pcm),
            coeffs: [127; MAX_COEFFS],
            order,
        };
        if order == 0 || pcm.is_empty() {
            return payload;
        }
        let mut r = [0f64; MAX_COEFFS + 1];
        for (lag, slot) in r.iter_mut().enumerate().take(order + 1) {
            *slot = pcm
                .iter()
                .zip(pcm.iter().skip(lag))
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
        }
        if r[0] <= 0.0 {
            return payload;
        }
        // Levinson-Durbin on A(z) = 1 + Σ a_i z^-i, the predictor the generator's synthesis
        // filter inverts: its reflection coefficients are the generator's k_i.
        let mut a = [0f64; MAX_COEFFS + 1];
        let mut err = r[0];
        for m in 0..order {
            let mut acc = r[m + 1];
            for i in 0..m {
                acc += a[i] * r[m - i];
            }
            let k = (-acc / err).clamp(-0.999, 0.999);
            let prev = a;
            a[m] = k;
            for i in 0..m {
                a[i] = prev[i] + k * prev[m - 1 - i];
            }
            err *= 1.0 - k * k;
            payload.coeffs[m] = quantise(k);
        }
        payload
    }
}

/// Quantise a reflection coefficient to the RFC 3389 byte: q = k · 128 + 127, rounded.
fn quantise(k: f64) -> u8 {
    (k * 128.0 + 127.0).round().clamp(0.0, 254.0) as u8
}

/// Level of a PCM frame in −dBov (0 = full-scale square wave, 127 = silence or below).
pub fn level_dbov(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let power = pcm.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / pcm.len() as f64;
    if power <= 0.0 {
        return 127;
    }
    let dbov = 10.0 * (power / (32768.0 * 32768.0)).log10();
    (-dbov).round().clamp(0.0, 127.0) as u8
}

/// Comfort noise generator for one stream: CN payloads in, PCM at 8 kHz out.
/// rtpengine: a `decoder_t` of its CN `codec_def_t` (libavcodec's `comfortnoise`).
#[derive(Debug, Clone)]
pub struct NoiseGenerator {
    refl: [f32; ORDER],
    target_refl: [f32; ORDER],
    energy: i32,
    target_energy: i32,
    /// Has a payload been applied yet (the first one is taken as is, later ones blend in).
    started: bool,
    /// The last [`ORDER`] output samples before rounding, oldest first.
    history: [f32; ORDER],
    lfg: [u32; 64],
    lfg_index: u32,
}

impl Default for NoiseGenerator {
    fn default() -> Self {
        NoiseGenerator::new()
    }
}

impl NoiseGenerator {
    /// PCM rate of the generated noise (RFC 3389 CN runs at the 8000 Hz clock here; wider
    /// codecs resample it like any 8 kHz audio).
    pub const PCM_RATE: u32 = 8000;

    pub fn new() -> NoiseGenerator {
        NoiseGenerator {
            refl: [0.0; ORDER],
            target_refl: [0.0; ORDER],
            energy: 0,
            target_energy: 0,
            started: false,
            history: [0.0; ORDER],
            lfg: LFG_SEED0,
            lfg_index: 0,
        }
    }

    /// Take a new noise description; it applies from the next [`generate`](Self::generate).
    pub fn update(&mut self, payload: &CnPayload) {
        let dbov = -(payload.level as i32);
        self.target_energy = (ENERGY_REF as f64 * 10f64.powf(dbov as f64 / 10.0) * 0.75) as i32;
        for (i, t) in self.target_refl.iter_mut().enumerate() {
            *t = payload.reflection(i);
        }
    }

    fn next_random(&mut self) -> u32 {
        let i = self.lfg_index;
        let v = self.lfg[(i.wrapping_sub(24) & 63) as usize]
            .wrapping_add(self.lfg[(i.wrapping_sub(55) & 63) as usize]);
        self.lfg[(i & 63) as usize] = v;
        self.lfg_index = i.wrapping_add(1);
        v
    }

    /// Fill `out` with noise (one call per received CN packet or per frame of silence).
    pub fn generate(&mut self, out: &mut [i16]) {
        if self.started {
            self.energy = self.energy / 2 + self.target_energy / 2;
            for (r, &t) in self.refl.iter_mut().zip(&self.target_refl) {
                *r = (0.6 * *r as f64 + 0.4 * t as f64) as f32;
            }
        } else {
            self.energy = self.target_energy;
            self.refl = self.target_refl;
            self.started = true;
        }
        let lpc = lpc_from_reflection(&self.refl);
        let mut e = 1.0f32;
        for &r in &self.refl {
            e = (e as f64 * (1.0 - (r * r) as f64)) as f32;
        }
        let scaling = (((e * self.energy as f32) / ENERGY_REF as f32) as f64).sqrt() as f32;
        for o in out.iter_mut() {
            let r = (self.next_random() & 0xffff) as i32 - 0x8000;
            let excitation = scaling * r as f32;
            // All-pole synthesis: y[n] = x[n] − Σ lpc[i] · y[n−1−i].
            let mut y = excitation;
            for (i, &c) in lpc.iter().enumerate() {
                y -= c * self.history[ORDER - 1 - i];
            }
            self.history.copy_within(1.., 0);
            self.history[ORDER - 1] = y;
            // Truncation toward zero (saturating), as the reference converts.
            *o = y as i16;
        }
    }
}

/// Direct-form predictor coefficients from reflection coefficients (the step-up
/// recursion): a_m^(m) = k_m, a_i^(m) = a_i^(m−1) + k_m · a_(m−1−i)^(m−1).
fn lpc_from_reflection(refl: &[f32; ORDER]) -> [f32; ORDER] {
    let mut cur = [0f32; ORDER];
    for m in 0..ORDER {
        let mut next = cur;
        next[m] = refl[m];
        for i in 0..m {
            next[i] = cur[i] + refl[m] * cur[m - i - 1];
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests;
