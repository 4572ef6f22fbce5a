//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table driven.
//!
//! rtpengine uses ffmpeg's `pcm_mulaw`/`pcm_alaw` codecs for this. Tables are built at compile
//! time from the G.711 segment rules (the same arithmetic as the ITU-T G.191 reference
//! `g711.c`), so the encoder is one load per sample: µ-law quantises the 14 most significant
//! bits of a 16-bit sample (16 Ki table), A-law the 13 most significant (8 Ki table). The
//! truncation of the low bits, with negative values taken in one's complement, is what G.191
//! does and what makes the output bit-exact with the ITU reference.

/// µ-law code of digital silence (+0).
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law code of digital silence (the smallest positive level).
pub const ALAW_SILENCE: u8 = 0xD5;

/// µ-law encoding of a 14-bit sample (`lin` = 16-bit sample >> 2), per G.191 `ulaw_compress`.
const fn ulaw_compress14(lin: i32) -> u8 {
    // Magnitude in one's complement for negative values, biased by 33 (G.711 Table 2a).
    let mut absno = if lin < 0 { (!lin) + 33 } else { lin + 33 };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 8 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let mut out = (high << 4) | low;
    if lin >= 0 {
        out |= 0x80;
    }
    out as u8
}

/// A-law encoding of a 13-bit sample (`lin` = 16-bit sample >> 3), per G.191 `alaw_compress`.
const fn alaw_compress13(lin: i32) -> u8 {
    // 12-bit magnitude, one's complement for negative values.
    let mut ix = if lin < 0 { (!lin) >> 1 } else { lin >> 1 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if lin >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
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

/// Encoder table indexed by `(sample >> 2) + 8192`.
static ULAW_ENCODE: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_compress14(i as i32 - 8192);
        i += 1;
    }
    t
};

/// Encoder table indexed by `(sample >> 3) + 4096`.
static ALAW_ENCODE: [u8; 8192] = {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_compress13(i as i32 - 4096);
        i += 1;
    }
    t
};

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
    ALAW_ENCODE[((sample >> 3) as i32 + 4096) as usize]
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

    /// Expected µ-law code for a 16-bit sample, found by searching the G.711 Table 2a decision
    /// intervals (a different route from the bit arithmetic under test).
    fn ulaw_by_decision_search(x: i16) -> u8 {
        let m = if x >= 0 {
            (x >> 2) as i32
        } else {
            (!(x >> 2)) as i32
        };
        // Interval (s, q) covers m in [((32 + 2q) << s) - 33, ((34 + 2q) << s) - 33).
        let mut code = None;
        'outer: for s in 0..8 {
            for q in 0..16 {
                let hi = ((34 + 2 * q) << s) - 33;
                if m < hi {
                    code = Some((s << 4 | q) as u8);
                    break 'outer;
                }
            }
        }
        let v = code.unwrap_or(0x7F); // overload: last interval
        let v = if x >= 0 { v } else { v | 0x80 }; // inverted: sign bit set = negative
        v ^ 0xFF
    }

    fn alaw_by_decision_search(x: i16) -> u8 {
        // 11-bit magnitude (G.711 Table 1a decision values in units of 16).
        let m = if x >= 0 {
            (x >> 4) as i32
        } else {
            (!(x >> 4)) as i32
        };
        // Interval (s, q) covers m in [q, q + 1) for s = 0, [(16 + q) << (s - 1), ...) above.
        let mut code = 0x7F;
        'outer: for s in 0..8 {
            for q in 0..16 {
                let hi = if s == 0 { q + 1 } else { (17 + q) << (s - 1) };
                if m < hi {
                    code = (s << 4 | q) as u8;
                    break 'outer;
                }
            }
        }
        let v = if x >= 0 { code | 0x80 } else { code };
        v ^ 0x55
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
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), ALAW_SILENCE);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // Segment boundaries: 14-bit decision value 31 opens µ-law segment 1, 11-bit value 32
        // opens A-law segment 2.
        assert_eq!(ulaw_encode(30 * 4 + 3), 0xF0);
        assert_eq!(ulaw_encode(31 * 4), 0xEF);
        assert_eq!(alaw_encode(31 * 16 + 15), (0x80 | 0x1F) ^ 0x55);
        assert_eq!(alaw_encode(32 * 16), (0x80 | 0x20) ^ 0x55);
    }

    #[test]
    fn encode_is_bit_exact_over_all_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), ulaw_by_decision_search(x), "µ-law {x}");
            assert_eq!(alaw_encode(x), alaw_by_decision_search(x), "A-law {x}");
        }
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
