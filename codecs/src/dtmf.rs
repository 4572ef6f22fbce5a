//! telephone-event (RFC 4733) payloads, DTMF tone generation and in-band DTMF detection.
//!
//! rtpengine: `dtmf.c` (event parsing, `dtmf_inject`) and `dtmflib.c` (tone synthesis). Tones
//! are needed when one side has no telephone-event and a digit must be rendered in-band;
//! the Goertzel detector serves the reverse direction (in-band audio to events).

use std::f64::consts::PI;

use crate::CodecError;

/// Payload length of one telephone-event report.
pub const EVENT_LEN: usize = 4;

/// One RFC 4733 §2.3 event report. rtpengine: `struct telephone_event_payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 `*`, 11 `#`, 12-15 `A`-`D` for DTMF; other codes are passed on.
    pub event: u8,
    /// E bit: the last report(s) of this event.
    pub end: bool,
    /// Power level of the tone, 0 to 63 meaning 0 to -63 dBm0.
    pub volume: u8,
    /// Duration so far in RTP clock units, from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first report of a payload (a payload may carry more only through RFC 2198
    /// redundancy, which is unwrapped before this).
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let b: [u8; EVENT_LEN] = payload
            .get(..EVENT_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(CodecError::PayloadLength {
                codec: "telephone-event",
                len: payload.len(),
            })?;
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            // The R bit (0x40) is reserved: ignored on receipt.
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the report into `out[..4]`; returns 4. Volumes above 63 are an error.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        if self.volume > 63 {
            return Err(CodecError::EventVolume(self.volume));
        }
        let out = crate::take_out(out, EVENT_LEN)?;
        out[0] = self.event;
        out[1] = (self.end as u8) << 7 | self.volume;
        out[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Ok(EVENT_LEN)
    }
}

/// Low (row) and high (column) frequency of a DTMF event, per ITU-T Q.23.
pub fn dtmf_frequencies(event: u8) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    // (row, column) of events 0..=15: 0-9, *, #, A-D.
    const GRID: [(usize, usize); 16] = [
        (3, 1),
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
        (3, 0),
        (3, 2),
        (0, 3),
        (1, 3),
        (2, 3),
        (3, 3),
    ];
    GRID.get(event as usize).map(|&(r, c)| (ROWS[r], COLS[c]))
}

/// The key of a DTMF event code (`0`-`9`, `*`, `#`, `A`-`D`).
pub fn event_to_char(event: u8) -> Option<char> {
    b"0123456789*#ABCD".get(event as usize).map(|&c| c as char)
}

/// The event code of a DTMF key (case-insensitive letters).
pub fn char_to_event(key: char) -> Option<u8> {
    b"0123456789*#ABCD"
        .iter()
        .position(|&c| c as char == key.to_ascii_uppercase())
        .map(|p| p as u8)
}

/// Synthesises one DTMF digit as PCM, phase-continuous across calls, exactly as rtpengine
/// renders an RFC 4733 event in-band (`dtmflib.c`): sample `n` of the digit is
/// `trunc(32767 · (sin(2π·f_low·n/rate) + sin(2π·f_high·n/rate)) / (2 · 1.122018^volume))`,
/// so the two components together peak at full scale for volume 0 and every 1 of volume
/// takes 1 dB off. A receiver (and rtpengine's own tests) sees the same bytes from either
/// engine.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    event: u8,
    volume: u8,
    rate: u32,
    /// Samples produced since the digit started.
    offset: u32,
}

/// One sample (number `n` since the digit's start, at `rate`) of rtpengine's DTMF tone for
/// `event` at `volume` (-dBm0 as in RFC 4733); 0 for a code that is not a digit.
pub fn tone_sample(event: u8, volume: u8, rate: u32, n: u32) -> i16 {
    let Some((low, high)) = dtmf_frequencies(event) else {
        return 0;
    };
    // 1.122018 = 10^(1/20): the level falls by 1 dB per step of volume. Halved: two tones.
    let div = 1.122018f64.powf(f64::from(volume)) * 2.0;
    let step = |hz: f64| hz * 2.0 * PI / f64::from(rate.max(1));
    let a = (step(low) * f64::from(n)).sin() / div;
    let b = (step(high) * f64::from(n)).sin() / div;
    // Truncation toward zero, as C's conversion does.
    (a * 32767.0 + b * 32767.0) as i16
}

impl ToneGenerator {
    /// A generator for `event` (0-15) at `volume` (0-63, the RFC 4733 volume) and
    /// `sample_rate`.
    pub fn new(event: u8, volume: u8, sample_rate: u32) -> Result<Self, CodecError> {
        dtmf_frequencies(event).ok_or(CodecError::NotDtmf(event))?;
        if sample_rate < 4000 {
            return Err(CodecError::UnsupportedRate(sample_rate));
        }
        Ok(ToneGenerator {
            event,
            volume: volume.min(63),
            rate: sample_rate,
            offset: 0,
        })
    }

    /// Fills `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = tone_sample(self.event, self.volume, self.rate, self.offset);
            self.offset = self.offset.wrapping_add(1);
        }
    }
}

/// A digit appearing or disappearing in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfTransition {
    /// The tone of this event started (confirmed over two analysis blocks).
    Start(u8),
    /// The tone of this event stopped.
    End(u8),
}

/// Samples per analysis block at 8 kHz: 12.75 ms, the block of spandsp's DTMF receiver
/// that rtpengine runs. Short enough that the shortest valid digit (40 ms, ITU-T Q.24)
/// covers two whole blocks, long enough to separate the eight frequencies.
const BLOCK: usize = 102;
/// Block power of the strongest row and column must reach this (a -42 dBm0 sine).
const MIN_TONE_POWER: f32 = 171_029_200.0;
/// The row (low) tone may be up to 8 dB stronger than the column tone...
const NORMAL_TWIST: f32 = 6.309;
/// ...and the column tone up to 4 dB stronger than the row tone.
const REVERSE_TWIST: f32 = 2.512;
/// Every other row/column must be 8 dB below the strongest of its group.
const RELATIVE_PEAK: f32 = 6.309;
/// The two tones must carry nearly all of the block's energy (-0.85 dB), which rejects
/// speech and music ("talk-off").
const TO_TOTAL_ENERGY: f32 = 83.868;
/// Block energy (sum of squares) of a 0 dBm0 signal, in dB: the reported level is the
/// block's energy relative to it.
const ENERGY_DB_AT_0DBM0: f32 = 103.77;

/// In-band DTMF detector with the timing of the one rtpengine uses (spandsp's receiver):
/// eight Goertzel filters over 102-sample blocks at 8 kHz, single precision; a digit
/// starts at the end of the second block in a row that holds it and ends at the end of
/// the second block in a row without it, so the reported positions (and hence the
/// telephone-event timestamps built from them) are the same as rtpengine's. Other rates
/// that are multiples of 8 kHz are averaged down to 8 kHz first (the DTMF band ends at
/// 1633 Hz, far below any alias).
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    coeff: [f32; 8],
    v2: [f32; 8],
    v3: [f32; 8],
    energy: f32,
    filled: usize,
    /// Input samples per 8 kHz sample, and the running sum of the current group.
    decimate: u32,
    sum: i32,
    summed: u32,
    /// Digit (event + 1, 0 = none) of the last block, and the one reported as held.
    last_hit: u8,
    in_digit: u8,
    /// Level of the digit held, -dBm0 (the RFC 4733 volume).
    volume: u8,
}

impl DtmfDetector {
    /// A detector for PCM at `sample_rate` (8000 or a multiple of it up to 48000).
    pub fn new(sample_rate: u32) -> Result<Self, CodecError> {
        if !(8000..=48000).contains(&sample_rate) || !sample_rate.is_multiple_of(8000) {
            return Err(CodecError::UnsupportedRate(sample_rate));
        }
        const FREQS: [f64; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];
        let coeff = FREQS.map(|f| (2.0 * (2.0 * PI * f / 8000.0).cos()) as f32);
        Ok(DtmfDetector {
            coeff,
            v2: [0.0; 8],
            v3: [0.0; 8],
            energy: 0.0,
            filled: 0,
            decimate: sample_rate / 8000,
            sum: 0,
            summed: 0,
            last_hit: 0,
            in_digit: 0,
            volume: 0,
        })
    }

    /// The digit currently held down, if any.
    pub fn current(&self) -> Option<u8> {
        self.in_digit.checked_sub(1)
    }

    /// Level of the digit held (or last held) as an RFC 4733 volume (0-63, -dBm0).
    pub fn volume(&self) -> u8 {
        self.volume
    }

    /// Feeds PCM; calls `on_transition(transition, index)` for each digit start or end,
    /// where `index` is the position in `pcm` of the sample that completed the block
    /// deciding it.
    pub fn process(&mut self, pcm: &[i16], mut on_transition: impl FnMut(DtmfTransition, usize)) {
        for (i, &x) in pcm.iter().enumerate() {
            let x = if self.decimate > 1 {
                self.sum += i32::from(x);
                self.summed += 1;
                if self.summed < self.decimate {
                    continue;
                }
                let avg = self.sum / self.decimate as i32;
                self.sum = 0;
                self.summed = 0;
                avg as f32
            } else {
                f32::from(x)
            };
            self.energy += x * x;
            for k in 0..8 {
                let v1 = self.v2[k];
                self.v2[k] = self.v3[k];
                self.v3[k] = self.coeff[k] * self.v2[k] - v1 + x;
            }
            self.filled += 1;
            if self.filled < BLOCK {
                continue;
            }
            let hit = self.evaluate();
            if hit != self.in_digit && self.last_hit != self.in_digit {
                // Two blocks in a row disagree with the digit held: a change. A new digit
                // needs both blocks to agree; anything else ends the held one.
                let new = if hit != 0 && hit == self.last_hit {
                    hit
                } else {
                    0
                };
                if let Some(old) = self.in_digit.checked_sub(1) {
                    on_transition(DtmfTransition::End(old), i);
                }
                if let Some(d) = new.checked_sub(1) {
                    let db = 10.0 * self.energy.max(1.0).log10() - ENERGY_DB_AT_0DBM0;
                    self.volume = (-db.round()).clamp(0.0, 63.0) as u8;
                    on_transition(DtmfTransition::Start(d), i);
                }
                self.in_digit = new;
            }
            self.last_hit = hit;
            self.energy = 0.0;
            self.filled = 0;
        }
    }

    /// Finishes the block's filters and returns the digit it holds (event + 1), or 0.
    fn evaluate(&mut self) -> u8 {
        let mut power = [0f32; 8];
        for (k, p) in power.iter_mut().enumerate() {
            let c = self.coeff[k];
            // One more step with zero input, then the squared magnitude.
            let v2 = self.v3[k];
            let v3 = c * v2 - self.v2[k];
            *p = (v3 * v3 + v2 * v2 - v2 * v3 * c) * 2.0;
            self.v2[k] = 0.0;
            self.v3[k] = 0.0;
        }
        let best = |group: &[f32]| {
            let mut b = 0;
            for j in 1..4 {
                if group[j] > group[b] {
                    b = j;
                }
            }
            b
        };
        let (rows, cols) = power.split_at(4);
        let (r, c) = (best(rows), best(cols));
        let (rp, cp) = (rows[r], cols[c]);
        if rp < MIN_TONE_POWER || cp < MIN_TONE_POWER {
            return 0;
        }
        if !(cp < rp * REVERSE_TWIST && cp * NORMAL_TWIST > rp) {
            return 0;
        }
        for j in 0..4 {
            if (j != c && cols[j] * RELATIVE_PEAK > cp) || (j != r && rows[j] * RELATIVE_PEAK > rp)
            {
                return 0;
            }
        }
        if rp + cp <= TO_TOTAL_ENERGY * self.energy {
            return 0;
        }
        const EVENTS: [[u8; 4]; 4] = [[1, 2, 3, 12], [4, 5, 6, 13], [7, 8, 9, 14], [10, 0, 11, 15]];
        EVENTS[r][c] + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{read_wav, rms};

    #[test]
    fn event_bytes_round_trip() {
        // Digit 5 at -10 dBm0, 50 ms into the event at 8 kHz; then its end report at 100 ms.
        let start = TelephoneEvent {
            event: 5,
            end: false,
            volume: 10,
            duration: 400,
        };
        let end = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        let mut buf = [0u8; 4];
        assert_eq!(start.write(&mut buf), Ok(4));
        assert_eq!(buf, [0x05, 0x0A, 0x01, 0x90]);
        assert_eq!(end.write(&mut buf), Ok(4));
        assert_eq!(buf, [0x05, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&buf), Ok(end));
        // Flash (event 16) with the reserved bit set by a sloppy sender: R is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[16, 0xC0 | 63, 0xFF, 0xFF, 0xAA]),
            Ok(TelephoneEvent {
                event: 16,
                end: true,
                volume: 63,
                duration: 65535
            })
        );
        assert!(TelephoneEvent::parse(&[1, 2, 3]).is_err());
        let loud = TelephoneEvent {
            volume: 64,
            ..start
        };
        assert!(loud.write(&mut buf).is_err());
        assert!(start.write(&mut buf[..3]).is_err());
    }

    #[test]
    fn keys_and_frequencies() {
        assert_eq!(dtmf_frequencies(1), Some((697.0, 1209.0)));
        assert_eq!(dtmf_frequencies(0), Some((941.0, 1336.0)));
        assert_eq!(dtmf_frequencies(11), Some((941.0, 1477.0)));
        assert_eq!(dtmf_frequencies(15), Some((941.0, 1633.0)));
        assert_eq!(dtmf_frequencies(16), None);
        assert_eq!(event_to_char(10), Some('*'));
        assert_eq!(char_to_event('d'), Some(15));
        assert_eq!(char_to_event('x'), None);
        assert!(matches!(
            ToneGenerator::new(16, 10, 8000),
            Err(CodecError::NotDtmf(16))
        ));
    }

    #[test]
    fn tone_level_follows_volume() {
        let mut gen = ToneGenerator::new(5, 0, 8000).unwrap();
        let mut pcm = [0i16; 8000];
        gen.fill(&mut pcm);
        // Two sines of amplitude 32767/2 each: rms 32767/2.
        assert!((rms(&pcm) / 16383.5 - 1.0).abs() < 0.01, "{}", rms(&pcm));
        let mut quiet = ToneGenerator::new(5, 20, 8000).unwrap();
        quiet.fill(&mut pcm);
        assert!((rms(&pcm) / 1638.35 - 1.0).abs() < 0.01, "{}", rms(&pcm));
        // rtpengine's first samples of digit 8 at volume 16 (its tests' PCMU bytes
        // ff b0 ac bc are these, rounded to the nearest µ-law level).
        let mut eight = ToneGenerator::new(8, 16, 8000).unwrap();
        let mut first = [0i16; 4];
        eight.fill(&mut first);
        assert_eq!(first, [0, 3862, 4770, 2336]);
    }

    #[test]
    fn detection_timing_is_rtpengines() {
        // rtpengine's "PCM to RFC DTMF transcoding" test: 40 ms of PCMU 0x00 (a strong DC
        // level), 60 ms of digit 8 at volume 16, PCMU 0x00 again. Its detector confirms the
        // digit at sample 612 (the second whole 102-sample block of tone) and its end at
        // 918, with level -15.
        let mut pcm = [crate::g711::ulaw_decode(0); 1280];
        ToneGenerator::new(8, 16, 8000)
            .unwrap()
            .fill(&mut pcm[320..800]);
        // As rtpengine's test sends it: each sample at the nearest µ-law level. The
        // blocks straddling the tone's edges are borderline, so the quantisation counts.
        let levels: Vec<i16> = (0..=255u8).map(crate::g711::ulaw_decode).collect();
        for s in pcm.iter_mut() {
            let x = *s;
            *s = *levels
                .iter()
                .min_by_key(|&&l| (i32::from(l) - i32::from(x)).abs())
                .unwrap_or(&0);
        }
        let mut det = DtmfDetector::new(8000).unwrap();
        let mut seen = Vec::new();
        let mut offset = 0;
        for frame in pcm.chunks(160) {
            det.process(frame, |t, i| seen.push((t, offset + i + 1)));
            offset += frame.len();
        }
        assert_eq!(
            seen,
            [
                (DtmfTransition::Start(8), 612),
                (DtmfTransition::End(8), 918)
            ]
        );
        assert!((15..=16).contains(&det.volume()), "{}", det.volume());
    }

    #[test]
    fn generated_digits_are_detected() {
        for rate in [8000, 16000, 48000] {
            let mut det = DtmfDetector::new(rate).unwrap();
            let mut seen = Vec::new();
            let ms = rate as usize / 1000;
            let mut frame = vec![0i16; 20 * ms];
            let mut offset = 0;
            for event in 0..16 {
                // 60 ms tone, 60 ms pause, fed in 20 ms frames.
                let mut gen = ToneGenerator::new(event, 10, rate).unwrap();
                for k in 0..6 {
                    if k < 3 {
                        gen.fill(&mut frame);
                    } else {
                        frame.fill(0);
                    }
                    det.process(&frame, |t, i| seen.push((t, offset + i)));
                    offset += frame.len();
                }
            }
            let starts: Vec<u8> = seen
                .iter()
                .filter_map(|(t, _)| match t {
                    DtmfTransition::Start(e) => Some(*e),
                    _ => None,
                })
                .collect();
            assert_eq!(starts, (0..16).collect::<Vec<_>>(), "{rate} Hz: {seen:?}");
            assert_eq!(seen.len(), 32, "{rate} Hz: every start has an end");
            assert_eq!(det.current(), None);
        }
    }

    #[test]
    fn quiet_tones_and_speech_are_ignored() {
        let mut det = DtmfDetector::new(8000).unwrap();
        let mut gen = ToneGenerator::new(1, 45, 8000).unwrap();
        let mut pcm = [0i16; 1600];
        gen.fill(&mut pcm);
        let mut hits = 0;
        det.process(&pcm, |_, _| hits += 1);
        assert_eq!(hits, 0, "-45 dBm0 is below the threshold");
        let (_, speech) = read_wav("speech-8k.wav");
        det.process(&speech, |t, _| panic!("talk-off: {t:?}"));
    }
}
