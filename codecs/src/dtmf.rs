//! telephone-event (RFC 4733) payloads, DTMF tone generation and in-band DTMF detection.
//!
//! rtpengine: `dtmf.c` (event parsing, `dtmf_inject`) and `dtmflib.c` (tone synthesis). Tones
//! are needed when one side has no telephone-event and a digit must be rendered in-band;
//! the Goertzel detector serves the reverse direction (in-band audio to events).

use std::f64::consts::PI;

use crate::CodecError;

/// Payload length of one telephone-event report.
pub const EVENT_LEN: usize = 4;

/// Peak amplitude (16-bit linear) of a 0 dBm0 sine: G.711's maximum sine is +3.17 dBm0.
const DBM0_PEAK: f64 = 32768.0 * 0.694_542; // 10^(-3.17/20)

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

/// Synthesises one DTMF digit as PCM, phase-continuous across calls. rtpengine: the tone
/// generator of `dtmflib.c`.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Per-sample phase increments of the two components.
    step: (f64, f64),
    phase: (f64, f64),
    amplitude: f64,
}

impl ToneGenerator {
    /// A generator for `event` (0-15) at `volume_dbm0` below 0 dBm0 (the RFC 4733 volume)
    /// and `sample_rate`. The power is split equally between the two frequencies.
    pub fn new(event: u8, volume_dbm0: u8, sample_rate: u32) -> Result<Self, CodecError> {
        let (low, high) = dtmf_frequencies(event).ok_or(CodecError::NotDtmf(event))?;
        if sample_rate < 4000 {
            return Err(CodecError::UnsupportedRate(sample_rate));
        }
        let rate = sample_rate as f64;
        let amplitude =
            DBM0_PEAK * 10f64.powf(-(volume_dbm0.min(63) as f64) / 20.0) / std::f64::consts::SQRT_2;
        Ok(ToneGenerator {
            step: (2.0 * PI * low / rate, 2.0 * PI * high / rate),
            phase: (0.0, 0.0),
            amplitude,
        })
    }

    /// Fills `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            let v = self.amplitude * (self.phase.0.sin() + self.phase.1.sin());
            *s = v.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16;
            self.phase.0 = (self.phase.0 + self.step.0) % (2.0 * PI);
            self.phase.1 = (self.phase.1 + self.step.1) % (2.0 * PI);
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

/// Goertzel DTMF detector over fixed blocks of 25.6 ms (205 samples at 8 kHz, the classic
/// size that separates the eight DTMF frequencies). rtpengine: the in-band detector of
/// `dtmf.c` (spandsp there).
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    coeff: [f64; 8],
    state: [(f64, f64); 8],
    energy: f64,
    filled: usize,
    block: usize,
    /// Digit seen in the last block, and the one reported as started.
    last: Option<u8>,
    current: Option<u8>,
}

/// Minimum level per component: -36 dBm0, as mean square.
const MIN_TONE_POWER: f64 = (DBM0_PEAK * 0.015_848_9) * (DBM0_PEAK * 0.015_848_9) / 2.0;
/// A row/column peak must beat the others in its group by 6 dB.
const PEAK_RATIO: f64 = 4.0;
/// Allowed difference between the row and column power (twist): 8 dB.
const MAX_TWIST: f64 = 6.31;
/// The two tones must carry this share of the block's energy (rejects speech and noise).
const MIN_TONE_SHARE: f64 = 0.7;

impl DtmfDetector {
    /// A detector for PCM at `sample_rate`.
    pub fn new(sample_rate: u32) -> Result<Self, CodecError> {
        if !(8000..=48000).contains(&sample_rate) {
            return Err(CodecError::UnsupportedRate(sample_rate));
        }
        let mut coeff = [0.0; 8];
        for (i, c) in coeff.iter_mut().enumerate() {
            let (row, col) = dtmf_frequencies([1, 4, 7, 10, 1, 2, 3, 12][i]).unwrap_or((0.0, 0.0));
            let f = if i < 4 { row } else { col };
            *c = 2.0 * (2.0 * PI * f / sample_rate as f64).cos();
        }
        Ok(DtmfDetector {
            coeff,
            state: [(0.0, 0.0); 8],
            energy: 0.0,
            filled: 0,
            block: (sample_rate as usize * 205).div_ceil(8000),
            last: None,
            current: None,
        })
    }

    /// The digit currently held down, if any.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Feeds PCM; calls `on_transition(transition, index)` for each digit start or end,
    /// where `index` is the position in `pcm` of the block end that decided it.
    pub fn process(&mut self, pcm: &[i16], mut on_transition: impl FnMut(DtmfTransition, usize)) {
        for (i, &x) in pcm.iter().enumerate() {
            let x = x as f64;
            self.energy += x * x;
            for (s, &c) in self.state.iter_mut().zip(&self.coeff) {
                let s0 = x + c * s.0 - s.1;
                *s = (s0, s.0);
            }
            self.filled += 1;
            if self.filled == self.block {
                let digit = self.evaluate();
                self.state = [(0.0, 0.0); 8];
                self.energy = 0.0;
                self.filled = 0;
                // Two equal blocks in a row confirm a change (rejects single-block blips).
                if digit == self.last && digit != self.current {
                    if let Some(old) = self.current {
                        on_transition(DtmfTransition::End(old), i);
                    }
                    if let Some(new) = digit {
                        on_transition(DtmfTransition::Start(new), i);
                    }
                    self.current = digit;
                }
                self.last = digit;
            }
        }
    }

    /// The digit in the block just completed, if it passes all checks.
    fn evaluate(&self) -> Option<u8> {
        let n = self.block as f64;
        let mut power = [0.0; 8];
        for (p, (&(s1, s2), &c)) in power.iter_mut().zip(self.state.iter().zip(&self.coeff)) {
            // |X(f)|^2 scaled to the mean square of a sine at f.
            *p = 2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2) / (n * n);
        }
        let peak = |group: &[f64]| {
            let (idx, &max) = group.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
            let clear = group
                .iter()
                .enumerate()
                .all(|(j, &p)| j == idx || p * PEAK_RATIO < max);
            clear.then_some((idx, max))
        };
        let (row, row_p) = peak(&power[..4])?;
        let (col, col_p) = peak(&power[4..])?;
        let mean_square = self.energy / n;
        if row_p < MIN_TONE_POWER
            || col_p < MIN_TONE_POWER
            || row_p > col_p * MAX_TWIST
            || col_p > row_p * MAX_TWIST
            || row_p + col_p < MIN_TONE_SHARE * mean_square
        {
            return None;
        }
        const EVENTS: [[u8; 4]; 4] = [[1, 2, 3, 12], [4, 5, 6, 13], [7, 8, 9, 14], [10, 0, 11, 15]];
        Some(EVENTS[row][col])
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
        // Two components of equal power summing to 0 dBm0: rms = peak(0 dBm0) / sqrt(2).
        let expected = DBM0_PEAK / std::f64::consts::SQRT_2;
        assert!((rms(&pcm) / expected - 1.0).abs() < 0.01, "{}", rms(&pcm));
        let mut quiet = ToneGenerator::new(5, 20, 8000).unwrap();
        quiet.fill(&mut pcm);
        assert!((rms(&pcm) / (expected / 10.0) - 1.0).abs() < 0.01);
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
