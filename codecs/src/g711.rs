//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table driven.
//!
//! Decoding follows G.711 Tables 1a/2a exactly. Encoding picks, for the 14 most significant
//! bits of a 16-bit sample, the code word whose decoded level is nearest (the boundary between
//! two neighbouring levels is their midpoint, rounded to the 14-bit grid, and both signs use the
//! same boundaries on the magnitude). That is how rtpengine encodes (it uses ffmpeg's
//! `pcm_mulaw`/`pcm_alaw`), so a stream we transcode, play or inject DTMF into carries the same
//! bytes as rtpengine's. It differs from the G.191 reference encoder, which truncates to its
//! decision intervals, by one code step for about 2 % of samples, all within half a
//! quantisation step of the input. Both tables are built at compile time; the encoder is one
//! load per sample.

/// µ-law code of digital silence (+0).
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law code of digital silence (the smallest positive level).
pub const ALAW_SILENCE: u8 = 0xD5;

/// Code word of the smallest positive level: µ-law `0xFF` (0), A-law `0xD5` (+8). XOR with a
/// magnitude index 0..=127 gives the positive code word of that magnitude, XOR with this and
/// `0x80` the negative one.
const fn positive_base(ulaw: bool) -> u8 {
    if ulaw {
        0xFF
    } else {
        0xD5
    }
}

/// Decoded magnitude (16-bit scale) of magnitude index `i` (0 = the smallest level).
const fn level(ulaw: bool, i: u8) -> i32 {
    let code = i ^ positive_base(ulaw);
    if ulaw {
        ulaw_expand(code) as i32
    } else {
        alaw_expand(code) as i32
    }
}

/// Encoder table indexed by `(sample >> 2) + 8192`.
const fn encode_table(ulaw: bool) -> [u8; 16384] {
    let base = positive_base(ulaw);
    let mut t = [0u8; 16384];
    t[8192] = base;
    // Magnitude index of the 14-bit magnitude `m`: how many midpoints lie at or below it.
    let mut i: u8 = 0;
    let mut m = 1;
    while m < 8192 {
        while i < 127 && (m as i32) >= (level(ulaw, i) + level(ulaw, i + 1) + 4) >> 3 {
            i += 1;
        }
        t[8192 + m] = i ^ base;
        t[8192 - m] = i ^ base ^ 0x80;
        m += 1;
    }
    // The most negative sample has a magnitude one beyond the grid: it takes the last step.
    t[0] = t[1];
    t
}

const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    if code < 0x80 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = (code ^ 0x55) & 0x7F;
    let exponent = (ix >> 4) as i32;
    let mut mantissa = (ix & 0x0F) as i32;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x08;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    if code > 127 {
        mantissa as i16
    } else {
        -mantissa as i16
    }
}

static ULAW_ENCODE: [u8; 16384] = encode_table(true);
static ALAW_ENCODE: [u8; 16384] = encode_table(false);

static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};

static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as i32 + 8192) as usize]
}

/// Decodes one µ-law code word to 16-bit linear.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 2) as i32 + 8192) as usize]
}

/// Decodes one A-law code word to 16-bit linear.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// G.711 companding law. rtpengine: the `PCMU` / `PCMA` codec definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload type 0.
    Ulaw,
    /// A-law, RTP payload type 8.
    Alaw,
}

impl Law {
    /// Code word of silence, used to fill lost packets.
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => ULAW_SILENCE,
            Law::Alaw => ALAW_SILENCE,
        }
    }

    /// Encodes `pcm` into `out[..pcm.len()]`; returns the number of bytes written.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> Result<usize, crate::CodecError> {
        let out = crate::take_out(out, pcm.len())?;
        match self {
            Law::Ulaw => out
                .iter_mut()
                .zip(pcm)
                .for_each(|(o, &s)| *o = ulaw_encode(s)),
            Law::Alaw => out
                .iter_mut()
                .zip(pcm)
                .for_each(|(o, &s)| *o = alaw_encode(s)),
        }
        Ok(pcm.len())
    }

    /// Decodes `payload` into `out[..payload.len()]`; returns the number of samples written.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> Result<usize, crate::CodecError> {
        let out = crate::take_out(out, payload.len())?;
        let table = match self {
            Law::Ulaw => &ULAW_DECODE,
            Law::Alaw => &ALAW_DECODE,
        };
        out.iter_mut()
            .zip(payload)
            .for_each(|(o, &c)| *o = table[c as usize]);
        Ok(payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 Table 2a decoder output for µ-law code words 0x00..=0xFF, scaled by 4 to 16 bits.
    const ITU_ULAW: [i16; 256] = [
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884,
        -20860, -19836, -18812, -17788, -16764, -15996, -15484, -14972, -14460, -13948, -13436,
        -12924, -12412, -11900, -11388, -10876, -10364, -9852, -9340, -8828, -8316, -7932, -7676,
        -7420, -7164, -6908, -6652, -6396, -6140, -5884, -5628, -5372, -5116, -4860, -4604, -4348,
        -4092, -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004, -2876, -2748, -2620, -2492,
        -2364, -2236, -2108, -1980, -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436, -1372,
        -1308, -1244, -1180, -1116, -1052, -988, -924, -876, -844, -812, -780, -748, -716, -684,
        -652, -620, -588, -556, -524, -492, -460, -428, -396, -372, -356, -340, -324, -308, -292,
        -276, -260, -244, -228, -212, -196, -180, -164, -148, -132, -120, -112, -104, -96, -88,
        -80, -72, -64, -56, -48, -40, -32, -24, -16, -8, 0, 32124, 31100, 30076, 29052, 28028,
        27004, 25980, 24956, 23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764, 15996, 15484,
        14972, 14460, 13948, 13436, 12924, 12412, 11900, 11388, 10876, 10364, 9852, 9340, 8828,
        8316, 7932, 7676, 7420, 7164, 6908, 6652, 6396, 6140, 5884, 5628, 5372, 5116, 4860, 4604,
        4348, 4092, 3900, 3772, 3644, 3516, 3388, 3260, 3132, 3004, 2876, 2748, 2620, 2492, 2364,
        2236, 2108, 1980, 1884, 1820, 1756, 1692, 1628, 1564, 1500, 1436, 1372, 1308, 1244, 1180,
        1116, 1052, 988, 924, 876, 844, 812, 780, 748, 716, 684, 652, 620, 588, 556, 524, 492, 460,
        428, 396, 372, 356, 340, 324, 308, 292, 276, 260, 244, 228, 212, 196, 180, 164, 148, 132,
        120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16, 8, 0,
    ];
    /// G.711 Table 1a decoder output for A-law code words 0x00..=0xFF, scaled by 8 to 16 bits.
    const ITU_ALAW: [i16; 256] = [
        -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, -7552, -7296, -8064, -7808, -6528,
        -6272, -7040, -6784, -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368, -3776, -3648,
        -4032, -3904, -3264, -3136, -3520, -3392, -22016, -20992, -24064, -23040, -17920, -16896,
        -19968, -18944, -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136, -11008,
        -10496, -12032, -11520, -8960, -8448, -9984, -9472, -15104, -14592, -16128, -15616, -13056,
        -12544, -14080, -13568, -344, -328, -376, -360, -280, -264, -312, -296, -472, -456, -504,
        -488, -408, -392, -440, -424, -88, -72, -120, -104, -24, -8, -56, -40, -216, -200, -248,
        -232, -152, -136, -184, -168, -1376, -1312, -1504, -1440, -1120, -1056, -1248, -1184,
        -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696, -688, -656, -752, -720, -560, -528,
        -624, -592, -944, -912, -1008, -976, -816, -784, -880, -848, 5504, 5248, 6016, 5760, 4480,
        4224, 4992, 4736, 7552, 7296, 8064, 7808, 6528, 6272, 7040, 6784, 2752, 2624, 3008, 2880,
        2240, 2112, 2496, 2368, 3776, 3648, 4032, 3904, 3264, 3136, 3520, 3392, 22016, 20992,
        24064, 23040, 17920, 16896, 19968, 18944, 30208, 29184, 32256, 31232, 26112, 25088, 28160,
        27136, 11008, 10496, 12032, 11520, 8960, 8448, 9984, 9472, 15104, 14592, 16128, 15616,
        13056, 12544, 14080, 13568, 344, 328, 376, 360, 280, 264, 312, 296, 472, 456, 504, 488,
        408, 392, 440, 424, 88, 72, 120, 104, 24, 8, 56, 40, 216, 200, 248, 232, 152, 136, 184,
        168, 1376, 1312, 1504, 1440, 1120, 1056, 1248, 1184, 1888, 1824, 2016, 1952, 1632, 1568,
        1760, 1696, 688, 656, 752, 720, 560, 528, 624, 592, 944, 912, 1008, 976, 816, 784, 880,
        848,
    ];

    /// Expected code for a 16-bit sample, by a different route from the table under test:
    /// among the 128 levels of the sample's sign, the one the 14-bit magnitude is nearest to,
    /// comparing on the 14-bit grid with the midpoint rounded as the encoder rounds it.
    fn nearest_by_search(ulaw: bool, x: i16) -> u8 {
        let q = (x >> 2) as i32;
        let m = q.unsigned_abs().min(8191) as i32;
        let levels: Vec<i32> = (0..128u8).map(|i| level(ulaw, i)).collect();
        let mut best = 0usize;
        for i in 1..128 {
            // Level i is taken once the magnitude reaches the midpoint below it.
            if 8 * m >= levels[i - 1] + levels[i] + 4 - ((levels[i - 1] + levels[i] + 4) & 7) {
                best = i;
            }
        }
        let base = positive_base(ulaw);
        if q >= 0 {
            best as u8 ^ base
        } else {
            best as u8 ^ base ^ 0x80
        }
    }

    #[test]
    fn decode_matches_itu_tables_for_every_code_word() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), ITU_ULAW[c as usize], "µ-law {c:#04x}");
            assert_eq!(alaw_decode(c), ITU_ALAW[c as usize], "A-law {c:#04x}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_encode(0), ULAW_SILENCE);
        assert_eq!(ulaw_encode(3), ULAW_SILENCE);
        // Nearer to the first level (8) than to 0.
        assert_eq!(ulaw_encode(4), 0xFE);
        // A tiny negative sample is nearer to -8 than to (positive) 0.
        assert_eq!(ulaw_encode(-1), 0x7E);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), ALAW_SILENCE);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // Where the nearest level and G.191's truncating intervals disagree.
        assert_eq!(ulaw_encode(123), 0xF0);
        assert_eq!(ulaw_encode(-125), 0x6F);
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_encode(-5000), 0x2B);
        assert_eq!(alaw_encode(123), 0xD2);
        assert_eq!(alaw_encode(512), 0xCA);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_encode(-5000), 0x06);
    }

    #[test]
    fn encode_picks_the_nearest_level_over_all_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), nearest_by_search(true, x), "µ-law {x}");
            assert_eq!(alaw_encode(x), nearest_by_search(false, x), "A-law {x}");
        }
    }

    /// FNV-1a over the code words of every 16-bit input, -32768 upward.
    fn fingerprint(encode: fn(i16) -> u8) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for x in i16::MIN..=i16::MAX {
            h ^= encode(x) as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    #[test]
    fn encode_matches_libavcodec_over_all_inputs() {
        // libavcodec 59 (Debian bookworm, what rtpengine 10.5 links) encoding all 65536
        // inputs with `pcm_mulaw` and `pcm_alaw`.
        assert_eq!(fingerprint(ulaw_encode), 0xa733_78df_9212_a731);
        assert_eq!(fingerprint(alaw_encode), 0xb692_762f_b973_cb11);
    }

    #[test]
    fn round_trip_properties() {
        for c in 0..=255u8 {
            // Every code word is a fixed point, except µ-law negative zero which folds to +0.
            let back = ulaw_encode(ulaw_decode(c));
            assert_eq!(back, if c == 0x7F { 0xFF } else { c });
            assert_eq!(alaw_encode(alaw_decode(c)), c);
        }
        // Quantisation error never exceeds half the largest step (plus truncated low bits).
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let eu = (ulaw_decode(ulaw_encode(x)) as i32 - x as i32).abs();
            let ea = (alaw_decode(alaw_encode(x)) as i32 - x as i32).abs();
            assert!(eu <= 1024 + 4, "µ-law error {eu} at {x}");
            assert!(ea <= 1024 + 16, "A-law error {ea} at {x}");
        }
        // Monotone: a larger input never decodes smaller.
        let mut prev = (i16::MIN, i16::MIN);
        for x in i16::MIN..=i16::MAX {
            let d = (ulaw_decode(ulaw_encode(x)), alaw_decode(alaw_encode(x)));
            assert!(d.0 >= prev.0 && d.1 >= prev.1, "not monotone at {x}");
            prev = d;
        }
    }

    #[test]
    fn slices_and_errors() {
        let pcm = [0i16, 1000, -1000, 32767];
        let mut enc = [0u8; 4];
        assert_eq!(Law::Ulaw.encode(&pcm, &mut enc), Ok(4));
        let mut dec = [0i16; 4];
        assert_eq!(Law::Ulaw.decode(&enc, &mut dec), Ok(4));
        assert_eq!(dec, [0, 988, -988, 32124]);
        assert_eq!(
            Law::Alaw.encode(&pcm, &mut enc[..2]),
            Err(crate::CodecError::OutputTooSmall { needed: 4, got: 2 })
        );
    }
}
