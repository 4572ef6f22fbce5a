//! `play DTMF`: digits inserted into the RTP line a party sends toward its peer
//! (rtpengine's `dtmf_inject`).
//!
//! The injector sits on the packets the party sends, after transcoding if any, and
//! replaces them one for one, so the receiver sees one stream without a sequence or
//! timestamp break:
//!
//! * **RFC 4733 events** where the receiver negotiated telephone-event: a digit starts at
//!   the first audio packet after the command (or after the previous digit and its pause);
//!   each audio packet of the digit becomes an event report with the digit's start
//!   timestamp, the marker bit on the first, and a duration that grows by the packet's
//!   length. The first packet at or after the digit's end carries the end bit and is sent
//!   three times (RFC 4733 §2.5.1.4) with consecutive sequence numbers; the two extra
//!   packets shift the sequence numbers of everything that follows (the worker's
//!   `OutLine` keeps that shift, so a plain passthrough stream stays gap-free).
//! * **In-band** otherwise: the audio of the digit's time span is replaced by the DTMF tone
//!   (rtpengine's level: two sines, each at `32767 / (2 · 1.122018^volume)`), its pause by
//!   silence, sample-exact for G.711 and packet by packet for the other codecs (encoded
//!   with an encoder built when the digit is queued).
//!
//! Like rtpengine, nothing is injected while the party sends nothing; queued digits wait.
//! Everything a packet needs is allocated when digits are queued; the packet path
//! allocates nothing.

use std::collections::VecDeque;

use ngmedia_codecs::dtmf::{dtmf_frequencies, TelephoneEvent};
use ngmedia_codecs::g711::Law;
use ngmedia_codecs::{Codec, CodecKind, EncoderOptions};

use super::rtp::{RtpHeader, RTP_HEADER_LEN};

/// Digits a stream holds in its queue; more are refused (a proxy would have to send
/// hundreds of `play DTMF` per second to get there).
pub(crate) const MAX_QUEUED: usize = 32;
/// Largest PCM frame an in-band encoder takes (60 ms at 48 kHz).
const MAX_FRAME: usize = 2880;

/// One digit to play (ng `play DTMF`: `code`, `volume`, `duration`, `pause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// Event code 0–15 (`0`–`9`, `*`, `#`, `A`–`D`).
    pub event: u8,
    /// Level in -dBm0 (0–63), the RFC 4733 volume.
    pub volume: u8,
    pub duration_ms: u32,
    /// Time after the digit before the next one may start.
    pub pause_ms: u32,
}

/// What the receiver of the line understands (built by the control plane).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectTarget {
    /// The receiver's telephone-event payload type at the audio's clock rate: digits go as
    /// RFC 4733 events. `None`: in-band tones.
    pub event_pt: Option<u8>,
    /// Audio payload types of the line and their codecs.
    pub audio: Vec<(u8, Codec)>,
}

/// The digit being played.
#[derive(Debug, Clone, Copy)]
struct Active {
    digit: DtmfDigit,
    /// RTP timestamp where it started.
    start: u32,
    /// Its duration and pause, in clock units of the line.
    duration: u32,
    pause: u32,
    /// Event reports sent so far.
    reports: u32,
}

/// The end report as first sent, for its repeats.
#[derive(Debug, Clone, Copy)]
struct EndReport {
    pt: u8,
    ts: u32,
    ssrc: u32,
    seq: u16,
    event: TelephoneEvent,
}

/// Injects queued digits into one RTP line (rtpengine: the `dtmf_injector` codec handler
/// and the DTMF event queue of a `codec_ssrc_handler`).
pub(crate) struct DtmfInjector {
    target: InjectTarget,
    queue: VecDeque<DtmfDigit>,
    active: Option<Active>,
    /// Earliest timestamp the next digit may start at (end of the last one + its pause).
    next_start: Option<u32>,
    /// Timestamp and sequence number of the last audio packet, and the learned step.
    last: Option<(u32, u16)>,
    step: Option<u32>,
    end: Option<EndReport>,
    /// In-band encoder for a codec that is not G.711, with its payload type.
    encoder: Option<(u8, Box<ngmedia_codecs::Encoder>)>,
    pcm: Box<[i16]>,
}

impl std::fmt::Debug for DtmfInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtmfInjector")
            .field("target", &self.target)
            .field("queued", &self.queue.len())
            .field("active", &self.active.map(|a| a.digit))
            .finish_non_exhaustive()
    }
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Injected {
    /// Length of the packet now in the buffer.
    pub len: usize,
    /// Further copies of it to send (the end report's repeats): call
    /// [`DtmfInjector::write_repeat`] for each.
    pub repeats: u8,
}

/// rtpengine's tone level: each sine at full scale divided by `2 · 1.122018^volume`.
fn tone_divisor(volume: u8) -> f64 {
    let mut v = 1.0f64;
    for _ in 0..volume {
        v *= 1.122018;
    }
    v * 2.0
}

/// One sample (index `i` from the digit's start, at `rate`) of the DTMF tone for `event`.
pub(crate) fn tone_sample(event: u8, volume: u8, rate: u32, i: u32) -> i16 {
    let Some((low, high)) = dtmf_frequencies(event) else {
        return 0;
    };
    let div = tone_divisor(volume);
    let step = |hz: f64| hz * 2.0 * std::f64::consts::PI / f64::from(rate);
    let a = (step(low) * f64::from(i)).sin() / div;
    let b = (step(high) * f64::from(i)).sin() / div;
    // Truncation toward zero, as a C conversion does.
    (a * 32767.0 + b * 32767.0) as i16
}

/// Signed distance `a - b` of two RTP timestamps.
#[inline]
fn ts_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl DtmfInjector {
    pub(crate) fn new(target: InjectTarget) -> DtmfInjector {
        DtmfInjector {
            target,
            queue: VecDeque::with_capacity(MAX_QUEUED),
            active: None,
            next_start: None,
            last: None,
            step: None,
            end: None,
            encoder: None,
            pcm: vec![0; MAX_FRAME].into_boxed_slice(),
        }
    }

    /// Replace what the line's receiver understands (a re-INVITE changed it); queued
    /// digits stay.
    pub(crate) fn set_target(&mut self, target: InjectTarget) {
        if self.target != target {
            self.target = target;
            self.encoder = None;
        }
    }

    /// Queue a digit. False when the queue is full. Builds the in-band encoder the line
    /// needs (control-plane time, not per packet).
    pub(crate) fn push(&mut self, digit: DtmfDigit, ptime_ms: u32) -> bool {
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        if self.target.event_pt.is_none() && self.encoder.is_none() {
            let coded = self
                .target
                .audio
                .iter()
                .find(|(_, c)| !matches!(c.kind(), CodecKind::Pcmu | CodecKind::Pcma));
            if let Some((pt, codec)) = coded {
                let opts = EncoderOptions {
                    pcm_rate: (codec.kind() == CodecKind::Opus).then_some(48_000),
                    ..EncoderOptions::default()
                };
                if let Ok(mut enc) = codec.encoder_with(ptime_ms.max(10), &opts) {
                    // Spliced into the party's own Opus stream: CELT frames, which do not
                    // run on the receiver's SILK prediction state.
                    if let ngmedia_codecs::EncoderKind::Opus(o) = &mut enc.kind {
                        let _ = o.celt_only();
                    }
                    if enc.frame_samples() <= MAX_FRAME {
                        self.encoder = Some((*pt, Box::new(enc)));
                    }
                }
            }
        }
        self.queue.push_back(digit);
        true
    }

    /// A digit is playing or waiting: packets of the line must pass through
    /// [`on_packet`](Self::on_packet).
    #[inline]
    pub(crate) fn busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    fn clock_of(&self, pt: u8) -> Option<&Codec> {
        self.target
            .audio
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| c)
    }

    /// Take one plain RTP packet of the line (`buf[..len]`, `buf` may be longer: room for
    /// a larger in-band payload) and rewrite it in place if a digit covers it.
    pub(crate) fn on_packet(&mut self, buf: &mut [u8], len: usize) -> Injected {
        let pass = Injected { len, repeats: 0 };
        let Some(pkt) = buf.get(..len) else {
            return pass;
        };
        let Ok(h) = RtpHeader::parse(pkt) else {
            return pass;
        };
        let pt = h.payload_type();
        if Some(pt) == self.target.event_pt {
            // The party's own events pass.
            return pass;
        }
        let Some(codec) = self.clock_of(pt).copied() else {
            return pass;
        };
        let (ts, seq, ssrc) = (h.timestamp(), h.sequence_number(), h.ssrc());
        let (hdr, payload_len) = match h.payload() {
            Ok(p) => (h.header_len(), p.len()),
            Err(_) => return pass,
        };
        let law = match codec.kind() {
            CodecKind::Pcmu => Some(Law::Ulaw),
            CodecKind::Pcma => Some(Law::Alaw),
            _ => None,
        };
        // Packet duration in clock units.
        if let Some((lts, lseq)) = self.last {
            let d = ts.wrapping_sub(lts);
            if seq == lseq.wrapping_add(1) && d > 0 && d <= codec.clock_rate {
                self.step = Some(d);
            }
        }
        self.last = Some((ts, seq));
        let step = match law {
            Some(_) => payload_len as u32,
            None => self
                .step
                .unwrap_or(codec.clock_rate * crate::core::player::PLAYER_PTIME_MS / 1000),
        };
        if self.active.is_none() {
            let may_start = self.next_start.is_none_or(|n| ts_diff(ts, n) >= 0);
            if !may_start || self.queue.is_empty() {
                return pass;
            }
            let Some(digit) = self.queue.pop_front() else {
                return pass;
            };
            let rate = u64::from(codec.clock_rate);
            self.active = Some(Active {
                digit,
                start: ts,
                duration: (u64::from(digit.duration_ms) * rate / 1000) as u32,
                pause: (u64::from(digit.pause_ms) * rate / 1000) as u32,
                reports: 0,
            });
        }
        let Some(mut a) = self.active else {
            return pass;
        };
        let into = ts.wrapping_sub(a.start);
        match self.target.event_pt {
            Some(ev_pt) => {
                let ended = into >= a.duration;
                let duration = (into + step).min(u32::from(u16::MAX)) as u16;
                let marker = a.reports == 0;
                let report = TelephoneEvent {
                    event: a.digit.event,
                    end: ended,
                    volume: a.digit.volume.min(63),
                    duration,
                };
                let n = write_event(buf, marker, ev_pt, seq, a.start, ssrc, report);
                a.reports += 1;
                if ended {
                    self.end = Some(EndReport {
                        pt: ev_pt,
                        ts: a.start,
                        ssrc,
                        seq,
                        event: report,
                    });
                    self.active = None;
                    self.next_start = Some(a.start.wrapping_add(a.duration + a.pause));
                    return Injected { len: n, repeats: 2 };
                }
                self.active = Some(a);
                Injected { len: n, repeats: 0 }
            }
            None => {
                let len = self.inband(buf, len, hdr, payload_len, law, &a, ts, pt);
                let span = a.duration + a.pause;
                if into.saturating_add(step) >= span {
                    self.active = None;
                    self.next_start = Some(a.start.wrapping_add(span));
                } else {
                    self.active = Some(a);
                }
                Injected { len, repeats: 0 }
            }
        }
    }

    /// Write repeat `k` (1, 2) of the end report just returned by
    /// [`on_packet`](Self::on_packet) into `buf`; its length.
    pub(crate) fn write_repeat(&self, buf: &mut [u8], k: u8) -> usize {
        match self.end {
            Some(e) => write_event(
                buf,
                false,
                e.pt,
                e.seq.wrapping_add(u16::from(k)),
                e.ts,
                e.ssrc,
                e.event,
            ),
            None => 0,
        }
    }

    /// Render the in-band tone (and the pause's silence) over the packet's time span.
    #[allow(clippy::too_many_arguments)]
    fn inband(
        &mut self,
        buf: &mut [u8],
        len: usize,
        hdr: usize,
        payload_len: usize,
        law: Option<Law>,
        a: &Active,
        ts: u32,
        pt: u8,
    ) -> usize {
        let d = &a.digit;
        let into = ts.wrapping_sub(a.start);
        if let Some(law) = law {
            let rate = 8000;
            for i in 0..payload_len as u32 {
                let pos = into + i;
                let byte = if pos < a.duration {
                    let s = tone_sample(d.event, d.volume, rate, pos);
                    match law {
                        Law::Ulaw => ngmedia_codecs::g711::ulaw_encode(s),
                        Law::Alaw => ngmedia_codecs::g711::alaw_encode(s),
                    }
                } else if pos < a.duration + a.pause {
                    law.silence()
                } else {
                    continue;
                };
                buf[hdr + i as usize] = byte;
            }
            // Padding stays as it was: the payload length did not change.
            return len;
        }
        let Some((enc_pt, enc)) = self.encoder.as_mut() else {
            return len;
        };
        if *enc_pt != pt {
            return len;
        }
        let frame = enc.frame_samples();
        let rate = enc.pcm_rate();
        let clock = self
            .target
            .audio
            .iter()
            .find(|(p, _)| *p == pt)
            .map_or(rate, |(_, c)| c.clock_rate);
        // Positions in PCM samples (the clock and the PCM rate are equal for G.729 and
        // Opus at 48 kHz; scaled otherwise).
        let scale = |v: u32| (u64::from(v) * u64::from(rate) / u64::from(clock)) as u32;
        let (start, dur, pause) = (scale(into), scale(a.duration), scale(a.pause));
        // Interleaved: every channel carries the tone (Opus with `stereo=1`).
        let channels = usize::from(enc.channels().max(1));
        for (i, s) in self.pcm[..frame].iter_mut().enumerate() {
            let pos = start + (i / channels) as u32;
            *s = if pos < dur {
                tone_sample(d.event, d.volume, rate, pos)
            } else {
                0
            };
        }
        let _ = pause;
        let room = buf.len().saturating_sub(hdr);
        let mut out_len = 0;
        if room > 0 {
            if let Ok(n) = enc.encode(&self.pcm[..frame], &mut buf[hdr..]) {
                out_len = n;
            }
        }
        if out_len == 0 {
            return len;
        }
        buf[0] &= !0x20;
        hdr + out_len
    }
}

fn write_event(
    buf: &mut [u8],
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    ev: TelephoneEvent,
) -> usize {
    buf[0] = 0x80;
    buf[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    match ev.write(&mut buf[RTP_HEADER_LEN..]) {
        Ok(n) => RTP_HEADER_LEN + n,
        Err(_) => RTP_HEADER_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcmu() -> Codec {
        Codec::from_static_pt(0).unwrap()
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(payload);
        p.resize(p.len() + 64, 0);
        p
    }

    fn digit(event: u8, volume: u8, duration_ms: u32, pause_ms: u32) -> DtmfDigit {
        DtmfDigit {
            event,
            volume,
            duration_ms,
            pause_ms,
        }
    }

    /// The packets of the line for input packets `from..from+n` of 20 ms PCMU.
    fn run(inj: &mut DtmfInjector, seq: u16, ts: u32, n: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in 0..n {
            let mut p = rtp(0, seq + k, ts + 160 * k as u32, &[0; 160]);
            let r = inj.on_packet(&mut p, 172);
            out.push(p[..r.len].to_vec());
            for c in 1..=r.repeats {
                let mut b = [0u8; 64];
                let l = inj.write_repeat(&mut b, c);
                out.push(b[..l].to_vec());
            }
        }
        out
    }

    #[test]
    fn rfc_event_sequence_replaces_audio_packets() {
        let mut inj = DtmfInjector::new(InjectTarget {
            event_pt: Some(96),
            audio: vec![(0, pcmu()), (8, Codec::from_static_pt(8).unwrap())],
        });
        assert!(!inj.busy());
        assert!(inj.push(digit(0, 10, 100, 100), 20));
        assert!(inj.push(digit(1, 6, 100, 100), 20));
        let out = run(&mut inj, 1002, 3320, 16);
        // (marker|pt, seq, ts, payload) as rtpengine's own test expects them, except that
        // the sequence shift after the end repeats is the line's (`OutLine`) job.
        let h = |p: &Vec<u8>| {
            (
                p[1],
                u16::from_be_bytes([p[2], p[3]]),
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                p[12..].to_vec(),
            )
        };
        let ev = |e: u8, v: u8, d: u16| vec![e, v, (d >> 8) as u8, d as u8];
        assert_eq!(h(&out[0]), (96 | 0x80, 1002, 3320, ev(0, 0x0a, 160)));
        for (i, d) in [(1, 320), (2, 480), (3, 640), (4, 800)] {
            assert_eq!(h(&out[i]), (96, 1002 + i as u16, 3320, ev(0, 0x0a, d)));
        }
        for (i, seq) in [(5, 1007), (6, 1008), (7, 1009)] {
            assert_eq!(h(&out[i]), (96, seq, 3320, ev(0, 0x8a, 960)));
        }
        // Pause: audio passes until 200 ms after the first digit's start.
        for packet in &out[8..12] {
            assert_eq!(packet[1], 0, "audio during the pause");
            assert_eq!(packet.len(), 172);
        }
        let second = &out[12];
        assert_eq!(h(second), (96 | 0x80, 1012, 4920, ev(1, 0x06, 160)));
        assert_eq!(h(&out[17]), (96, 1017, 4920, ev(1, 0x86, 960)));
        assert_eq!(out.len(), 20);
        assert!(!inj.busy());
    }

    #[test]
    fn inband_tone_then_pause_silence_sample_exact() {
        let mut inj = DtmfInjector::new(InjectTarget {
            event_pt: None,
            audio: vec![(0, pcmu())],
        });
        // 'C', volume 5, 120 ms, pause 110 ms.
        inj.push(digit(14, 5, 120, 110), 20);
        let out = run(&mut inj, 1002, 3320, 13);
        // rtpengine's bytes for the start of this digit (t/auto-daemon-tests.pl).
        assert_eq!(
            &out[0][12..20],
            &[0xff, 0x93, 0x94, 0xbc, 0x2e, 0x56, 0xbf, 0x2b]
        );
        assert_eq!(&out[1][12..16], &[0x2a, 0xdf, 0x96, 0x90]);
        for p in &out[6..11] {
            assert!(p[12..172].iter().all(|&b| b == 0xff), "pause is silence");
        }
        assert!(out[11][12..92].iter().all(|&b| b == 0xff));
        assert!(
            out[11][92..172].iter().all(|&b| b == 0),
            "audio after the pause"
        );
        assert!(out[12][12..172].iter().all(|&b| b == 0));
        assert!(out.iter().all(|p| p.len() == 172 && p[1] == 0));
    }

    #[test]
    fn waits_for_audio_and_ignores_the_partys_own_events() {
        let mut inj = DtmfInjector::new(InjectTarget {
            event_pt: Some(101),
            audio: vec![(0, pcmu())],
        });
        inj.push(digit(5, 10, 100, 100), 20);
        let mut p = rtp(101, 7, 800, &[1, 10, 0, 160]);
        assert_eq!(inj.on_packet(&mut p, 16).len, 16);
        assert_eq!(p[12], 1, "untouched");
        assert!(inj.busy());
        let mut p = rtp(0, 8, 960, &[0; 160]);
        assert_eq!(inj.on_packet(&mut p, 172).len, 16);
        assert_eq!((p[1], p[12]), (101 | 0x80, 5));
    }

    #[test]
    fn queue_is_bounded() {
        let mut inj = DtmfInjector::new(InjectTarget {
            event_pt: Some(101),
            audio: vec![(0, pcmu())],
        });
        for _ in 0..MAX_QUEUED {
            assert!(inj.push(digit(1, 10, 100, 100), 20));
        }
        assert!(!inj.push(digit(1, 10, 100, 100), 20));
    }

    #[test]
    fn inband_opus_packets_are_reencoded() {
        let opus = Codec::lookup("opus", 48000, Some(2), None).unwrap();
        let mut inj = DtmfInjector::new(InjectTarget {
            event_pt: None,
            audio: vec![(96, opus)],
        });
        inj.push(digit(1, 10, 100, 100), 20);
        let mut p = rtp(96, 1, 0, &[0xf8, 0xff, 0xfe]);
        let r = inj.on_packet(&mut p, 15);
        assert!(r.len > 15, "an encoded tone frame: {}", r.len);
        let mut dec = opus.decoder_at(48_000).unwrap();
        let mut pcm = vec![0i16; 5760 * 2];
        let n = dec.decode(&p[12..r.len], &mut pcm).unwrap();
        assert!(n >= 960);
        assert!(pcm[..n].iter().any(|s| s.unsigned_abs() > 1000), "audible");
    }
}
