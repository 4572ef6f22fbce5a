//! DTMF handling of a party whose RTP goes through a delay buffer (`delay-buffer`) or
//! whose digits are played late (`DTMF-delay`): rtpengine's `dtmf_recv`/`dtmf_send` event
//! lists of `dtmf.c` and its `delay_frame_manipulate`/`delay_packet_manipulate` of
//! `codec.c`.
//!
//! Digits are recognised when packets arrive ([`DtmfGuard::apply_delayed`]): RFC 4733
//! events and, from a party without telephone-event, in-band G.711 digits. Each digit is
//! logged twice with its RTP timestamps (start, and end = start + duration − 1): as
//! received, and shifted by the DTMF delay. What replaces it is decided when a packet
//! leaves the delay buffer ([`DtmfGuard::release`]):
//!
//! * audio whose timestamp lies within a received digit, widened by the buffer delay on
//!   both sides, is replaced as the mode says (silence, a tone, a digit); so the audio
//!   just before a digit, which left no trace the detector could see yet, is masked too;
//! * with a DTMF delay and no blocking (`DTMF-security` `off`), the received digit's span
//!   is silence and the digit is played again at its shifted place: as RFC 4733 events
//!   when the party has telephone-event (marker on the first, growing duration, the end
//!   report three times), else as an in-band tone at the digit's level;
//! * in modes `zero` and `DTMF`, events within a received digit get the replacement code.
//!
//! Event packets of a party whose digits turn into audio (modes `silence`, `tone`,
//! `random`, or a DTMF delay) become audio packets at their place in the party's line
//! (as rtpengine decodes them into its transcoder); the repeats of an end report are not
//! sent, nor is the party's audio while an event is under way.

use ngmedia_codecs::dtmf::{DtmfTransition, TelephoneEvent};
use ngmedia_codecs::g711;

use super::{is_replace, DtmfGuard, GuardVerdict, RtpParts, DEFAULT_TONE_VOLUME, MAX_SAMPLES};
use crate::core::dtmf_inject::tone_sample;
use crate::core::media_control::{silence_payload, BlockDtmf, PayloadKind};

/// Digits remembered per list; older ones are forgotten (rtpengine keeps them all, but
/// only the last few can lie within reach of a packet leaving the buffer).
const LOG_LEN: usize = 16;
/// The clock of G.711 and of the timestamps logged.
const CLOCK: u32 = 8000;
/// rtpengine's reach of an event: 10 s ahead, 100 s back.
const CUTOFF: u32 = CLOCK * 10;
const NEG: u32 = !(CLOCK * 100);

/// One start or end of a digit in a list (rtpengine's `struct dtmf_event`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Logged {
    /// Event code + 1 of a start, 0 for an end.
    code: u8,
    ts: u32,
    volume: u8,
    /// The mode when the digit started (what the shifted copy is handled in).
    mode: BlockDtmf,
    /// The digit of mode `random`.
    random: u8,
}

/// A list of digit starts and ends, oldest first.
#[derive(Debug, Clone, Default)]
struct EventLog {
    items: [Logged; LOG_LEN],
    len: usize,
}

impl EventLog {
    fn push(&mut self, e: Logged) {
        if self.len == LOG_LEN {
            self.items.copy_within(1.., 0);
            self.len -= 1;
        }
        self.items[self.len] = e;
        self.len += 1;
    }

    fn last(&self) -> Option<&Logged> {
        self.items[..self.len].last()
    }

    /// The digit whose span (widened by `head` before and `trail` after, in clock units)
    /// holds `ts`, if any (rtpengine's `is_in_dtmf_event`).
    fn holding(&self, ts: u32, head: u32, trail: u32) -> Option<Logged> {
        let start_ts = ts.wrapping_add(head);
        let end_ts = ts.wrapping_sub(trail);
        for e in self.items[..self.len].iter().rev() {
            if e.code != 0 {
                let d = start_ts.wrapping_sub(e.ts);
                if d >= NEG {
                    continue;
                }
                if d <= CUTOFF {
                    return Some(*e);
                }
                break;
            }
            let d = end_ts.wrapping_sub(e.ts);
            if d >= NEG || d == 0 {
                continue;
            }
            if d <= CUTOFF {
                return None;
            }
            break;
        }
        None
    }
}

/// What the delayed handling keeps per stream.
#[derive(Debug, Clone, Default)]
pub(super) struct DelayState {
    /// Digits as received, and as shifted by the DTMF delay.
    recv: EventLog,
    send: EventLog,
    /// The event being received: its timestamp, code, duration so far, ended.
    current: Option<(u32, u8, u16, bool)>,
    /// The digit played as events (DTMF delay): code, volume, start timestamp.
    playing: Option<(u8, u8, u32)>,
}

/// A packet leaving the delay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Its length now.
    pub len: usize,
    /// It is a DTMF end report: send it this many more times, each with the next
    /// sequence number (the packets after it move up as many).
    pub repeats: u8,
}

impl DtmfGuard {
    /// rtpengine converts events into audio (its "PCM DTMF blocking"): a mode replacing
    /// digits by audio, or a DTMF delay.
    fn events_to_audio(&self) -> bool {
        matches!(
            self.mode,
            BlockDtmf::Silence | BlockDtmf::Tone | BlockDtmf::Random
        ) || self.config.dtmf_delay_ms > 0
    }

    /// A digit starts at `ts`; `mode` is the mode before it (a trigger it completes
    /// switches the mode after it, as rtpengine's does asynchronously).
    fn log_start(&mut self, code: u8, ts: u32, volume: u8, mode: BlockDtmf) {
        let shifted = ts.wrapping_add(self.config.dtmf_delay_ms.wrapping_mul(CLOCK / 1000));
        let random = rand::random::<u8>() % 10;
        let d = &mut self.delayed;
        if d.recv.last().is_some_and(|l| l.code == code + 1) {
            return;
        }
        let e = Logged {
            code: code + 1,
            ts,
            volume,
            mode,
            random,
        };
        d.recv.push(e);
        d.send.push(Logged { ts: shifted, ..e });
    }

    fn log_end(&mut self, ts: u32) {
        let shifted = ts.wrapping_add(self.config.dtmf_delay_ms.wrapping_mul(CLOCK / 1000));
        let e = Logged {
            ts,
            mode: self.mode,
            ..Logged::default()
        };
        self.delayed.recv.push(e);
        self.delayed.send.push(Logged { ts: shifted, ..e });
    }

    /// The arrival side with a delay buffer or DTMF delay: log digits, turn events into
    /// audio where rtpengine does; the replacement itself waits for [`DtmfGuard::release`].
    pub(super) fn apply_delayed(
        &mut self,
        buf: &mut [u8],
        len: usize,
        kind: impl Fn(u8) -> PayloadKind,
        has_events: bool,
        now_ms: u64,
    ) -> GuardVerdict {
        self.tick(now_ms);
        let Some(RtpParts {
            pt,
            ts,
            seq,
            start,
            plen,
        }) = RtpParts::of(&buf[..len])
        else {
            return GuardVerdict::Forward(len);
        };
        let k = kind(pt);
        if k == PayloadKind::Event {
            return self.event_arrived(buf, len, start, plen, ts, seq, kind, now_ms);
        }
        self.learn_line(pt, ts, seq);
        // An event under way: the party's audio meanwhile is not decoded (rtpengine).
        let converting = self.events_to_audio() || is_replace(self.mode);
        if converting && matches!(self.delayed.current, Some((_, _, _, false))) {
            return GuardVerdict::Block;
        }
        let law = match k {
            PayloadKind::Pcmu => g711::Law::Ulaw,
            PayloadKind::Pcma => g711::Law::Alaw,
            _ => return GuardVerdict::Forward(len),
        };
        // In-band digits of a party without telephone-event.
        if !has_events && plen <= MAX_SAMPLES {
            let Some(det) = self.detector.as_mut() else {
                return GuardVerdict::Forward(len);
            };
            let pcm = &mut self.pcm[..plen];
            super::decode_g711(law, &buf[start..start + plen], pcm);
            // At most two transitions per packet: an end and a start.
            let mut seen = [None; 2];
            let mut n = 0;
            det.process(pcm, |t, i| {
                if n < seen.len() {
                    seen[n] = Some((t, i));
                    n += 1;
                }
            });
            let volume = det.volume();
            for (t, i) in seen.into_iter().flatten() {
                let at = ts.wrapping_add(i as u32 + 1);
                match t {
                    DtmfTransition::Start(e) => {
                        let mode = self.mode;
                        self.on_digit(e, now_ms);
                        self.log_start(e, at, volume, mode);
                    }
                    DtmfTransition::End(_) => self.log_end(at),
                }
            }
        }
        GuardVerdict::Forward(len)
    }

    #[allow(clippy::too_many_arguments)]
    fn event_arrived(
        &mut self,
        buf: &mut [u8],
        len: usize,
        start: usize,
        plen: usize,
        ts: u32,
        seq: u16,
        kind: impl Fn(u8) -> PayloadKind,
        now_ms: u64,
    ) -> GuardVerdict {
        let Ok(ev) = TelephoneEvent::parse(&buf[start..start + plen]) else {
            return GuardVerdict::Forward(len);
        };
        let new = !matches!(self.delayed.current, Some((t, c, _, _)) if t == ts && c == ev.event);
        if new {
            let mode = self.mode;
            self.on_digit(ev.event, now_ms);
            self.delayed.current = Some((ts, ev.event, 0, false));
            self.log_start(ev.event, ts, ev.volume, mode);
        }
        let Some((_, _, before, ended)) = self.delayed.current else {
            return GuardVerdict::Forward(len);
        };
        if ended {
            // A repeated end report: nothing new.
            return if self.events_to_audio() || self.mode == BlockDtmf::Drop {
                GuardVerdict::Block
            } else {
                GuardVerdict::Forward(len)
            };
        }
        if ev.end {
            self.log_end(ts.wrapping_add(u32::from(ev.duration)).wrapping_sub(1));
        }
        self.delayed.current = Some((ts, ev.event, before.max(ev.duration), ev.end));
        if self.mode == BlockDtmf::Drop && !self.events_to_audio() {
            return GuardVerdict::Block;
        }
        if !self.events_to_audio() {
            return GuardVerdict::Forward(len);
        }
        if ev.duration <= before {
            return GuardVerdict::Block;
        }
        // The event becomes one audio packet at its place in the party's line, carrying
        // the digit's tone (replaced when it leaves the buffer).
        let (apt, lts, lseq) = match (self.last_audio, self.config.audio_pt) {
            (Some(line), _) => line,
            (None, Some(pt)) => (pt, ts, seq),
            (None, None) => return GuardVerdict::Block,
        };
        let law = match kind(apt) {
            PayloadKind::Pcmu => g711::Law::Ulaw,
            PayloadKind::Pcma => g711::Law::Alaw,
            k => {
                let samples = self.step as usize;
                let payload = if k == PayloadKind::G729 {
                    samples / 80 * 10
                } else {
                    64
                };
                if start + payload > buf.len() {
                    return GuardVerdict::Block;
                }
                buf[1] = apt;
                let n = silence_payload(&mut buf[..start + payload], k);
                return if n > start {
                    GuardVerdict::Forward(n)
                } else {
                    GuardVerdict::Block
                };
            }
        };
        let samples = self.step as usize;
        if samples > MAX_SAMPLES || start + samples > buf.len() {
            return GuardVerdict::Block;
        }
        let line_ts = lts.wrapping_add(u32::from(seq.wrapping_sub(lseq)).wrapping_mul(self.step));
        buf[0] &= !0x20;
        buf[1] = apt;
        buf[4..8].copy_from_slice(&line_ts.to_be_bytes());
        let offset = u32::from(before);
        for (i, b) in buf[start..start + samples].iter_mut().enumerate() {
            let s = tone_sample(ev.event, ev.volume, CLOCK, offset + i as u32);
            *b = encode(law, s);
        }
        GuardVerdict::Forward(start + samples)
    }

    /// A packet leaving the delay buffer: replace what lies within a digit (see the module
    /// docs). `buf[..len]` is the plain RTP packet, `buf` may be longer (room to write an
    /// event report); `te_pt` is the telephone-event payload type digits are played as,
    /// if the party has one.
    pub fn release(
        &mut self,
        buf: &mut [u8],
        len: usize,
        kind: impl Fn(u8) -> PayloadKind,
        te_pt: Option<u8>,
    ) -> Released {
        let same = Released { len, repeats: 0 };
        let Some(RtpParts {
            pt,
            ts,
            start,
            plen,
            ..
        }) = RtpParts::of(&buf[..len])
        else {
            return same;
        };
        let head = self.config.delay_ms.wrapping_mul(CLOCK / 1000);
        let k = kind(pt);
        let mode = self.mode;
        if k == PayloadKind::Event {
            if matches!(mode, BlockDtmf::Zero | BlockDtmf::Dtmf)
                && self.delayed.recv.holding(ts, head, head).is_some()
            {
                buf[start] = if mode == BlockDtmf::Zero {
                    0
                } else {
                    self.config.digit
                };
            }
            return same;
        }
        if !matches!(
            k,
            PayloadKind::Pcmu | PayloadKind::Pcma | PayloadKind::G729 | PayloadKind::Opus
        ) {
            return same;
        }
        if mode == BlockDtmf::Off && self.config.dtmf_delay_ms == 0 {
            return same;
        }
        let recv = self.delayed.recv.holding(ts, head, head);
        let send = self.delayed.send.holding(ts, 0, 0);
        let mut end_playing = false;
        let effective = if mode == BlockDtmf::Off {
            match send {
                None => {
                    end_playing = self.delayed.playing.is_some();
                    if recv.is_none() && !end_playing {
                        return same;
                    }
                    recv.map(|_| BlockDtmf::Silence)
                }
                Some(s) => Some(s.mode),
            }
        } else if recv.is_none() {
            return same;
        } else {
            Some(mode)
        };
        let mut out_len = len;
        match effective {
            Some(BlockDtmf::Off) => {
                // DTMF delay: the digit again, at its shifted place.
                let s = send.unwrap_or_default();
                let code = s.code.saturating_sub(1);
                match te_pt {
                    Some(_) => {
                        if self.delayed.playing.map(|p| p.0) != Some(code) {
                            self.delayed.playing = Some((code, s.volume, ts));
                        }
                    }
                    None => {
                        if let Some(law) = law_of(k) {
                            for (i, b) in buf[start..start + plen].iter_mut().enumerate() {
                                let v =
                                    tone_sample(code, s.volume, CLOCK, ts.wrapping_add(i as u32));
                                *b = encode(law, v);
                            }
                        }
                    }
                }
            }
            Some(
                m @ (BlockDtmf::Silence
                | BlockDtmf::Tone
                | BlockDtmf::Zero
                | BlockDtmf::Dtmf
                | BlockDtmf::Random),
            ) => {
                let (digit, freq) = match m {
                    BlockDtmf::Random => (recv.or(send).map_or(0, |e| e.random), 0),
                    BlockDtmf::Zero => (0, 0),
                    _ => (self.config.digit, self.tone_freq()),
                };
                if let Some(law) = law_of(k) {
                    if m == BlockDtmf::Random {
                        for (i, b) in buf[start..start + plen].iter_mut().enumerate() {
                            let v = tone_sample(
                                digit,
                                DEFAULT_TONE_VOLUME,
                                CLOCK,
                                ts.wrapping_add(i as u32),
                            );
                            *b = encode(law, v);
                        }
                    } else {
                        self.fill(buf, start, plen, k, ts, m, digit, freq, te_pt.is_some());
                    }
                    buf[0] &= !0x20;
                    out_len = start + plen;
                } else {
                    // G.729 and Opus: the replacement encoded in the party's codec.
                    out_len = self.fill(buf, start, plen, k, ts, m, digit, freq, te_pt.is_some());
                    buf[0] &= !0x20;
                }
            }
            _ => {}
        }
        // Digits played as events replace the audio packet with a report.
        let Some((code, volume, from)) = self.delayed.playing else {
            return Released {
                len: out_len,
                repeats: 0,
            };
        };
        let Some(te) = te_pt else {
            self.delayed.playing = None;
            return Released {
                len: out_len,
                repeats: 0,
            };
        };
        if start + 4 > buf.len() {
            return Released {
                len: out_len,
                repeats: 0,
            };
        }
        let duration = ts.wrapping_sub(from).wrapping_add(self.step).min(0xffff) as u16;
        let report = TelephoneEvent {
            event: code,
            end: end_playing,
            volume,
            duration,
        };
        if report.write(&mut buf[start..start + 4]).is_err() {
            return Released {
                len: out_len,
                repeats: 0,
            };
        }
        buf[0] &= !0x20;
        buf[1] = te | if ts == from { 0x80 } else { 0 };
        buf[4..8].copy_from_slice(&from.to_be_bytes());
        if end_playing {
            self.delayed.playing = None;
        }
        Released {
            len: start + 4,
            repeats: if end_playing { 2 } else { 0 },
        }
    }

    /// The replacement tone's frequency for the digit being replaced.
    fn tone_freq(&self) -> u32 {
        let freqs = &self.config.frequencies;
        if freqs.is_empty() {
            super::DEFAULT_TONE_HZ
        } else {
            freqs[(self.count.wrapping_sub(1) as usize) % freqs.len()]
        }
    }

    /// Keep what was logged across new settings (rtpengine keeps its lists per media).
    pub(super) fn take_delay_state(&mut self) -> DelayState {
        std::mem::take(&mut self.delayed)
    }
}

fn law_of(k: PayloadKind) -> Option<g711::Law> {
    match k {
        PayloadKind::Pcmu => Some(g711::Law::Ulaw),
        PayloadKind::Pcma => Some(g711::Law::Alaw),
        _ => None,
    }
}

fn encode(law: g711::Law, s: i16) -> u8 {
    match law {
        g711::Law::Ulaw => g711::ulaw_encode(s),
        g711::Law::Alaw => g711::alaw_encode(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(code: u8, ts: u32) -> Logged {
        Logged {
            code: code + 1,
            ts,
            ..Logged::default()
        }
    }

    fn end(ts: u32) -> Logged {
        Logged {
            ts,
            ..Logged::default()
        }
    }

    #[test]
    fn a_digit_holds_the_timestamps_of_its_span_widened() {
        let mut log = EventLog::default();
        log.push(start(5, 1000));
        log.push(end(1959));
        // Before the start, within the head.
        assert!(log.holding(992, 8, 8).is_some());
        assert!(log.holding(991, 8, 8).is_none());
        assert!(log.holding(1000, 0, 0).is_some());
        assert!(log.holding(1959, 0, 0).is_some());
        // The end's own timestamp still counts; one after it does not.
        assert!(log.holding(1960, 0, 0).is_none());
        assert!(log.holding(1967, 8, 8).is_some());
        assert!(log.holding(1968, 8, 8).is_none());
        // A digit not ended yet holds everything after its start.
        log.push(start(7, 5000));
        assert_eq!(log.holding(9000, 0, 0).map(|e| e.code), Some(8));
    }

    #[test]
    fn the_log_forgets_its_oldest_entries() {
        let mut log = EventLog::default();
        for i in 0..(LOG_LEN as u32 + 4) {
            log.push(start(1, i * 1000));
            log.push(end(i * 1000 + 100));
        }
        assert_eq!(log.len, LOG_LEN);
        assert!(log
            .holding((LOG_LEN as u32 + 3) * 1000 + 50, 0, 0)
            .is_some());
    }
}
