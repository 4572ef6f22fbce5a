//! Rate conversion of one recorded stream to the recording's output rate (rtpengine: the
//! recording daemon's `resample_audio()` in its mix path).
//!
//! The codecs crate's resampler works on fixed 10 ms frames and delays its output by
//! [`Resampler::latency_samples`]. To keep the timeline exact, a *run* of contiguous packets
//! goes through one resampler: output sample `j` of a run that starts at output position `R`
//! belongs at `R + j - delay`. The first `delay` samples of a run (the response to the
//! silence before it) are dropped, and when the run ends (a gap, a resync, the end of the
//! recording) one frame of zeros pushes out the last `delay` samples. So audio lands where
//! its RTP timestamps say, and lost packets stay silent holes instead of smeared edges.
//!
//! Packets that are not a whole number of 10 ms frames (a 5 ms or 25 ms G.711 ptime) go
//! through linear interpolation instead: rare, stateless, and still time-exact.

use ngmedia_codecs::resample::{Resampler, RATES};

/// Frame length the resampler runs at: every ptime ngmedia negotiates for transcoding is a
/// multiple of it.
const FRAME_MS: u32 = 10;

/// The resampler state of one stream at one input rate.
pub(crate) struct StreamRate {
    from: u32,
    to: u32,
    /// `None`: the pair is not one the FFT resampler supports; linear interpolation only.
    fft: Option<Resampler>,
    delay: usize,
    in_frame: usize,
    /// Output position of the next resampler output sample (delay included).
    place_next: i64,
    /// Output samples still to drop at the start of the current run.
    skip: usize,
    /// Where the next packet goes if it continues the run; `None`: no run open.
    next: Option<i64>,
    frame: Vec<i16>,
    zeros: Vec<i16>,
    /// The last samples of a run that ended, with their position (see [`Self::take_tail`]).
    tail: Vec<i16>,
    tail_pos: i64,
}

impl StreamRate {
    /// A converter from `from` Hz (what the decoder produces) to `to` Hz (the recording).
    pub(crate) fn new(from: u32, to: u32) -> StreamRate {
        let fft = (from != to && RATES.contains(&from) && RATES.contains(&to))
            .then(|| Resampler::new(from, to, FRAME_MS).ok())
            .flatten();
        let in_frame = (from * FRAME_MS / 1000) as usize;
        let out_frame = (to * FRAME_MS / 1000) as usize;
        StreamRate {
            from,
            to,
            delay: fft.as_ref().map_or(0, Resampler::latency_samples),
            fft,
            in_frame,
            place_next: 0,
            skip: 0,
            next: None,
            frame: vec![0; out_frame],
            zeros: vec![0; in_frame],
            tail: Vec::with_capacity(out_frame),
            tail_pos: 0,
        }
    }

    pub(crate) fn input_rate(&self) -> u32 {
        self.from
    }

    /// Convert one decoded packet placed at output position `pos` into `out`; returns the
    /// output position of `out[0]`. If the packet does not continue the previous run, that
    /// run's last samples become the tail ([`Self::take_tail`]).
    pub(crate) fn convert(&mut self, input: &[i16], pos: i64, out: &mut Vec<i16>) -> i64 {
        out.clear();
        let whole_frames = self.in_frame > 0 && input.len().is_multiple_of(self.in_frame);
        let Some(fft) = self
            .fft
            .as_mut()
            .filter(|_| whole_frames && !input.is_empty())
        else {
            self.end_run();
            resample_linear(input, self.from, self.to, out);
            return pos;
        };
        if self.next != Some(pos) {
            // A new run: the previous one (if any) is finished first.
            if self.next.is_some() {
                Self::push_tail(
                    fft,
                    &self.zeros,
                    &mut self.frame,
                    self.delay,
                    &mut self.tail,
                );
                self.tail_pos = self.place_next;
            }
            fft.reset();
            self.place_next = pos - self.delay as i64;
            self.skip = self.delay;
        }
        let start = self.place_next + self.skip as i64;
        for chunk in input.chunks_exact(self.in_frame) {
            // Sizes are fixed at construction, so this cannot fail; a failure would only
            // leave silence in the recording.
            let n = fft.process(chunk, &mut self.frame).unwrap_or(0);
            let drop = self.skip.min(n);
            out.extend_from_slice(&self.frame[drop..n]);
            self.skip -= drop;
            self.place_next += n as i64;
        }
        self.next = Some(pos + (input.len() as i64) * i64::from(self.to) / i64::from(self.from));
        start
    }

    /// Close the open run (end of the recording, or linear fallback): its last samples
    /// become the tail.
    pub(crate) fn end_run(&mut self) {
        if self.next.take().is_none() {
            return;
        }
        if let Some(fft) = self.fft.as_mut() {
            if self.skip == 0 {
                Self::push_tail(
                    fft,
                    &self.zeros,
                    &mut self.frame,
                    self.delay,
                    &mut self.tail,
                );
                self.tail_pos = self.place_next;
            }
            fft.reset();
        }
    }

    fn push_tail(
        fft: &mut Resampler,
        zeros: &[i16],
        frame: &mut [i16],
        delay: usize,
        tail: &mut Vec<i16>,
    ) {
        let n = fft.process(zeros, frame).unwrap_or(0);
        tail.clear();
        tail.extend_from_slice(&frame[..delay.min(n)]);
    }

    /// The last samples of a finished run and their output position, once. The caller mixes
    /// them in (they belong just before where the run ended).
    pub(crate) fn take_tail(&mut self, into: &mut Vec<i16>) -> Option<i64> {
        if self.tail.is_empty() {
            return None;
        }
        into.clear();
        into.extend_from_slice(&self.tail);
        self.tail.clear();
        Some(self.tail_pos)
    }
}

/// Linear-interpolation resampling of one packet (`from` Hz to `to` Hz) into `out`:
/// stateless, for packet lengths the frame-based resampler cannot take.
pub(crate) fn resample_linear(input: &[i16], from: u32, to: u32, out: &mut Vec<i16>) {
    out.clear();
    if from == to || input.is_empty() {
        out.extend_from_slice(input);
        return;
    }
    let n = input.len() * to as usize / from as usize;
    for i in 0..n {
        let x = i as f64 * f64::from(from) / f64::from(to);
        let j = x as usize;
        let f = x - j as f64;
        let a = f64::from(input[j.min(input.len() - 1)]);
        let b = f64::from(input[(j + 1).min(input.len() - 1)]);
        out.push((a + (b - a) * f).round() as i16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, from: usize, n: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16
            })
            .collect()
    }

    /// Mix `(pos, samples)` pieces into one buffer.
    fn lay(pieces: &[(i64, Vec<i16>)], len: usize) -> Vec<i32> {
        let mut buf = vec![0i32; len];
        for (pos, s) in pieces {
            for (i, &v) in s.iter().enumerate() {
                let at = *pos + i as i64;
                if (0..len as i64).contains(&at) {
                    buf[at as usize] += i32::from(v);
                }
            }
        }
        buf
    }

    #[test]
    fn runs_land_where_their_timestamps_say_and_gaps_stay_silent() {
        let mut r = StreamRate::new(8000, 48000);
        let d = r.delay;
        assert_eq!(d, 96, "2 ms at 48 kHz");
        let mut pieces = Vec::new();
        let mut out = Vec::new();
        let mut tail = Vec::new();
        // Packets 0..5 and 8..10 of a 20 ms stream (6 and 7 lost).
        for k in (0..5).chain(8..10) {
            let pos = k as i64 * 960;
            let start = r.convert(&sine(440.0, k * 160, 160), pos, &mut out);
            if let Some(p) = r.take_tail(&mut tail) {
                pieces.push((p, tail.clone()));
            }
            pieces.push((start, out.clone()));
        }
        r.end_run();
        let p = r.take_tail(&mut tail).expect("the last run's tail");
        assert_eq!(p, 10 * 960 - d as i64);
        pieces.push((p, tail.clone()));
        // The first run starts exactly at 0 and the tail ends exactly at the loss.
        assert_eq!(pieces[0].0, 0);
        assert_eq!(pieces[0].1.len(), 960 - d);
        let buf = lay(&pieces, 10 * 960);
        // The whole first run is audio, and continuous with the input (the reference is the
        // same sine at 48 kHz).
        let want =
            |i: usize| 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48000.0).sin();
        let err = (200..5 * 960 - 200)
            .map(|i| (f64::from(buf[i]) - want(i)).abs())
            .fold(0.0, f64::max);
        assert!(err < 300.0, "max error {err}");
        // The hole of packets 6 and 7 is (nearly) silent: only the resampler's ringing at
        // the edges, never audio from the neighbouring packets.
        let hole = &buf[5 * 960 + 48..8 * 960 - 48];
        assert!(
            hole.iter().all(|v| v.abs() < 400),
            "{:?}",
            hole.iter().max()
        );
        let rms_hole =
            (hole.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / hole.len() as f64).sqrt();
        assert!(rms_hole < 30.0, "rms {rms_hole}");
        assert!(buf[8 * 960 + 200..10 * 960 - 200]
            .iter()
            .any(|v| v.abs() > 4000));
    }

    #[test]
    fn odd_packet_lengths_fall_back_to_linear() {
        let mut r = StreamRate::new(8000, 48000);
        let mut out = Vec::new();
        assert_eq!(r.convert(&sine(440.0, 0, 40), 0, &mut out), 0);
        assert_eq!(out.len(), 240);
        // Same rate: a copy.
        let mut same = StreamRate::new(48000, 48000);
        let x = sine(440.0, 0, 480);
        assert_eq!(same.convert(&x, 7, &mut out), 7);
        assert_eq!(out, x);
    }
}
