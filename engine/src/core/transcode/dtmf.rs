//! DTMF in a [`Transcoder`]: telephone-event (RFC 4733) forwarded on the output clock or
//! rendered in-band as a tone, and in-band digits detected and sent as events.

use ngmedia_codecs::dtmf::{DtmfDetector, DtmfTransition, TelephoneEvent, ToneGenerator};

use crate::core::dtmf_inject::tone_sample;
use crate::core::dtmf_log::DtmfReport;
use crate::core::media_control::BlockDtmf;

use super::{write_header, Transcoder, FIFO};
use crate::core::rtp::RtpHeader;

#[derive(Debug)]
pub(super) struct EventState {
    /// Input timestamp identifying the event.
    pub(super) in_ts: u32,
    /// Timestamp of the event on the output timeline.
    out_ts: u32,
    pub(super) ended: bool,
    /// In-band rendering: the tone and how many PCM samples of it were produced.
    pub(super) tone: Option<ToneGenerator>,
    rendered: u32,
}

/// A digit found by in-band detection, being reported as telephone-event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Detected {
    event: u8,
    volume: u8,
    /// Event timestamp on the output timeline: the first output frame at or after the
    /// detection (rtpengine canonicalises the start to the frame it replaces).
    ts: u32,
}

/// A start or end the detector found, waiting for the output frame it falls into.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PendingDtmf {
    /// The digit that starts, `None` for the end of the one held.
    event: Option<u8>,
    volume: u8,
    /// Output timeline position of the detector's block end that decided it.
    ts: u32,
}

/// Detector results waiting for their output frame: at most a start and an end per
/// frame in practice; a burst beyond this drops the oldest.
pub(super) const PENDING_DTMF: usize = 8;

/// Masking of in-band digits in the decoded audio (rtpengine's PCM DTMF replacement of the
/// `DTMF-security` modes): a detector on the PCM going to the encoder; while it holds a
/// digit, the frame is replaced.
#[derive(Debug)]
pub(crate) struct InbandMask {
    mode: BlockDtmf,
    detector: DtmfDetector,
    tone_freq: u32,
    digit: u8,
    /// Level of the replacement, -dBm0.
    volume: u8,
    /// The digit a masked tone is being replaced with (`random` picks one per tone).
    replacing: Option<u8>,
    /// Samples of replacement produced (the replacement's phase).
    pos: u32,
    /// Blocking was switched off while a digit was being replaced: the digit is replaced
    /// to its end (in the mode it started in), then the mask goes.
    ending: bool,
    /// Blocking was switched on in the middle of a digit (the one that completed a
    /// trigger): that digit passes (in the mode it started in), masking starts with the
    /// next.
    skip_current: bool,
}

/// In-band digit starts found in a party's decoded audio, for its DTMF triggers
/// (`trigger`, `trigger-end`, `trigger-end-digits`): the stream polls them after each
/// packet and hands them to its `DtmfGuard`, as RFC 4733 events are (rtpengine's DSP
/// DTMF events reaching `dtmf_trigger_set`).
#[derive(Debug)]
pub(crate) struct DigitWatch {
    detector: DtmfDetector,
    starts: [u8; WATCHED],
    len: usize,
}

/// Digit starts one packet can hold before they are polled (a 60 ms packet holds one at
/// most; a burst beyond this drops the newest).
const WATCHED: usize = 4;

/// Replacement tone frequency when `frequency` is not given (rtpengine's default).
const DEFAULT_MASK_TONE_HZ: u32 = 400;
/// Level of replacement tones (-dBm0).
const MASK_TONE_VOLUME: u8 = 10;

impl Transcoder {
    /// Block DTMF in the audio (`mode` other than `Off`): in-band digits detected in the
    /// decoded PCM are replaced by silence (`drop`, `silence`), a plain tone (`tone`,
    /// `frequency`) or another digit (`zero`, `DTMF` with `digit`, `random`). Detection
    /// confirms a digit after about 50 ms, which still pass.
    pub fn set_block_dtmf(
        &mut self,
        mode: BlockDtmf,
        tone_freq: Option<u32>,
        digit: Option<u8>,
        volume: Option<u8>,
    ) {
        if !mode.is_on() {
            match self.mask.as_mut() {
                Some(m) if m.replacing.is_some() => m.ending = true,
                _ => self.mask = None,
            }
            return;
        }
        let tone_freq = tone_freq.unwrap_or(DEFAULT_MASK_TONE_HZ);
        let digit = digit.unwrap_or(0);
        let volume = volume.unwrap_or(MASK_TONE_VOLUME).min(63);
        if let Some(m) = self.mask.as_mut() {
            m.ending = false;
            m.mode = mode;
            m.tone_freq = tone_freq;
            m.digit = digit;
            m.volume = volume;
            return;
        }
        // A digit under way (the one completing a trigger) is not masked halfway.
        let skip_current = self
            .watch
            .as_ref()
            .is_some_and(|w| w.detector.current().is_some());
        if let Ok(detector) = DtmfDetector::new(self.pcm_rate) {
            self.mask = Some(Box::new(InbandMask {
                mode,
                detector,
                tone_freq,
                digit,
                volume,
                replacing: None,
                pos: 0,
                ending: false,
                skip_current,
            }));
        }
    }

    /// Watch the decoded audio for in-band digits (the party has DTMF triggers); see
    /// [`poll_digit`](Self::poll_digit).
    pub fn watch_digits(&mut self, on: bool) {
        if !on {
            self.watch = None;
        } else if self.watch.is_none() {
            if let Ok(detector) = DtmfDetector::new(self.pcm_rate) {
                self.watch = Some(Box::new(DigitWatch {
                    detector,
                    starts: [0; WATCHED],
                    len: 0,
                }));
            }
        }
    }

    /// The next in-band digit that started in the audio handled so far, oldest first.
    pub fn poll_digit(&mut self) -> Option<u8> {
        let w = self.watch.as_mut()?;
        if w.len == 0 {
            return None;
        }
        let d = w.starts[0];
        w.starts.copy_within(1..w.len, 0);
        w.len -= 1;
        Some(d)
    }

    /// Run the digit watch over PCM just decoded into `fifo[start..start + len]`.
    pub(super) fn watch_pcm(&mut self, start: usize, len: usize) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        let DigitWatch {
            detector,
            starts,
            len: n,
        } = &mut **w;
        detector.process(&self.fifo[start..start + len], |t, _| {
            if let DtmfTransition::Start(e) = t {
                if *n < WATCHED {
                    starts[*n] = e;
                    *n += 1;
                }
            }
        });
    }

    /// Replace the frame at `fifo[start..start + frame]` if it carries a digit.
    pub(super) fn mask_frame(&mut self, start: usize, frame: usize) {
        let watch_holds = (self.watch.as_ref()).is_some_and(|w| w.detector.current().is_some());
        let Some(m) = self.mask.as_mut() else {
            return;
        };
        let pcm = &mut self.fifo[start..start + frame];
        m.detector.process(pcm, |_, _| {});
        if m.skip_current {
            // Until neither detector holds the digit any more.
            if watch_holds || m.detector.current().is_some() {
                return;
            }
            m.skip_current = false;
        }
        if m.detector.current().is_none() {
            m.replacing = None;
            if m.ending {
                self.mask = None;
            }
            return;
        }
        let rate = self.pcm_rate;
        // The plain tone's amplitude at the default level, scaled by the level asked for.
        let amplitude = 32767.0 / 2.0 / 3.162 * 10f64.powf(f64::from(MASK_TONE_VOLUME) / 20.0)
            / 10f64.powf(f64::from(m.volume) / 20.0);
        let digit = *m.replacing.get_or_insert_with(|| match m.mode {
            BlockDtmf::Random => rand::random::<u8>() % 16,
            BlockDtmf::Dtmf => m.digit,
            _ => 0,
        });
        for s in pcm.iter_mut() {
            *s = match m.mode {
                BlockDtmf::Tone => {
                    let w = 2.0 * std::f64::consts::PI * f64::from(m.tone_freq) / f64::from(rate);
                    ((w * f64::from(m.pos)).sin() * amplitude) as i16
                }
                BlockDtmf::Zero | BlockDtmf::Dtmf | BlockDtmf::Random => {
                    tone_sample(digit, m.volume, rate, m.pos)
                }
                _ => 0,
            };
            m.pos = m.pos.wrapping_add(1);
        }
    }

    /// In-band DTMF detection on PCM just decoded into `fifo[start..start + len]` (the
    /// FIFO starts at the next output frame, whose timestamp is `self.ts`). Digit starts
    /// and ends are queued with their position on the output timeline, as rtpengine's
    /// DSP callback queues them for its encoder.
    pub(super) fn detect_pcm(&mut self, start: usize, len: usize) {
        let Some(det) = self.detector.as_mut() else {
            return;
        };
        let out_clock = u64::from(self.spec.output.codec.clock_rate);
        let pcm_rate = u64::from(self.pcm_rate.max(1));
        let base = self.ts;
        let before = self.pending_dtmf_len;
        let pending = &mut self.pending_dtmf;
        let pending_len = &mut self.pending_dtmf_len;
        let pcm = &self.fifo[start..start + len];
        det.process(pcm, |t, i| {
            let pos = (start + i + 1) as u64 * out_clock / pcm_rate;
            let item = PendingDtmf {
                event: match t {
                    DtmfTransition::Start(e) => Some(e),
                    DtmfTransition::End(_) => None,
                },
                volume: 0,
                ts: base.wrapping_add(pos as u32),
            };
            if *pending_len == PENDING_DTMF {
                pending.copy_within(1.., 0);
                *pending_len -= 1;
            }
            pending[*pending_len] = item;
            *pending_len += 1;
        });
        // The level is known once the block is evaluated: give it to the starts just
        // queued.
        let volume = det.volume();
        for p in &mut self.pending_dtmf[..self.pending_dtmf_len] {
            if p.event.is_some() && p.volume == 0 {
                p.volume = volume;
            }
        }
        // A digit that ended is reported (`--dtmf-log-dest`) with the time between the
        // detector's start and end, as rtpengine's DSP events are.
        let clock = self.spec.output.codec.clock_rate;
        for i in before.min(self.pending_dtmf_len)..self.pending_dtmf_len {
            let p = self.pending_dtmf[i];
            match (p.event, self.dtmf_started) {
                (Some(e), _) => self.dtmf_started = Some((e, p.volume, p.ts)),
                (None, Some((event, volume, start))) => {
                    self.dtmf_started = None;
                    self.dtmf_report = Some(DtmfReport {
                        event,
                        volume,
                        duration: p.ts.wrapping_sub(start),
                        clock,
                    });
                }
                (None, None) => {}
            }
        }
    }

    /// A digit detected in-band that has ended, for DTMF reports.
    pub fn poll_dtmf_report(&mut self) -> Option<DtmfReport> {
        self.dtmf_report.take()
    }

    /// The output frame about to be encoded (timestamp `self.ts`, `step` long) in the
    /// light of the detected digits: returns true when it went out as telephone-event
    /// reports instead of audio. As rtpengine's encoder does (`dtmf_event_payload`): a
    /// digit starts in the first frame at or after its detection (marker set, duration
    /// one frame), each further frame raises the duration, and the first frame at or
    /// after its end carries the end bit, sent three times; audio resumes after that.
    pub(super) fn detect_frame(&mut self, step: u32) -> bool {
        let Some(pt) = self.spec.output.event_pt else {
            return false;
        };
        if self.detector.is_none() {
            return false;
        }
        let now = self.ts;
        let prev = self.detected;
        let mut cur = prev;
        let mut taken = 0;
        for p in &self.pending_dtmf[..self.pending_dtmf_len] {
            if (now.wrapping_sub(p.ts) as i32) < 0 {
                break; // a later frame's
            }
            cur = p.event.map(|event| Detected {
                event,
                volume: p.volume,
                ts: now,
            });
            taken += 1;
        }
        if taken > 0 {
            self.pending_dtmf
                .copy_within(taken..self.pending_dtmf_len, 0);
            self.pending_dtmf_len -= taken;
        }
        self.detected = cur;
        let (d, end, marker) = match (prev, cur) {
            (None, None) => return false,
            (Some(p), None) => (p, true, false),
            (None, Some(c)) => (c, false, true),
            (Some(_), Some(c)) => (c, false, false),
        };
        let report = TelephoneEvent {
            event: d.event,
            end,
            volume: d.volume.min(63),
            duration: now.wrapping_sub(d.ts).wrapping_add(step) as u16,
        };
        // The end report goes out three times (RFC 4733 §2.5.1.4).
        for _ in 0..if end { 3 } else { 1 } {
            self.queue_event(pt, marker, d.ts, report);
        }
        // The frame's time passes on the output timeline although no audio is sent.
        self.ts = self.ts.wrapping_add(step);
        true
    }

    /// Queue one telephone-event report on the output line.
    fn queue_event(&mut self, pt: u8, marker: bool, ts: u32, ev: TelephoneEvent) {
        let (seq, ssrc) = (self.next_seq(), self.ssrc);
        self.queue_packet(|out| {
            write_header(out, marker, pt, seq, ts, ssrc);
            match ev.write(&mut out[crate::core::rtp::RTP_HEADER_LEN..]) {
                Ok(n) => crate::core::rtp::RTP_HEADER_LEN + n,
                Err(_) => 0,
            }
        });
        self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
        self.counters.sent_octets = self
            .counters
            .sent_octets
            .wrapping_add(ngmedia_codecs::dtmf::EVENT_LEN as u32);
    }
    pub(super) fn handle_event(&mut self, h: &RtpHeader<'_>, payload: &[u8]) {
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            self.counters.errors += 1;
            return;
        };
        let ts = h.timestamp();
        let in_clock = self.spec.input.codec.clock_rate as u64;
        let out_clock = self.spec.output.codec.clock_rate as u64;
        let new_event = !matches!(&self.event, Some(e) if e.in_ts == ts);
        if new_event {
            // Flush buffered audio so the event starts where the audio stopped.
            self.encode_ready();
            let tone = if self.spec.output.event_pt.is_none() {
                // The event's own level, as rtpengine renders it (0 is 0 dBm0).
                ToneGenerator::new(ev.event, ev.volume, self.pcm_rate).ok()
            } else {
                None
            };
            if self.spec.output.event_pt.is_none() && tone.is_none() {
                // Not a DTMF digit and nowhere to send it as an event.
                self.event = Some(EventState {
                    in_ts: ts,
                    out_ts: self.ts,
                    ended: true,
                    tone: None,
                    rendered: 0,
                });
                return;
            }
            self.event = Some(EventState {
                in_ts: ts,
                out_ts: self.ts,
                ended: false,
                tone,
                rendered: 0,
            });
        }
        let Some(state) = self.event.as_mut() else {
            return;
        };
        let was_ended = state.ended;
        state.ended |= ev.end;
        if let Some(pt) = self.spec.output.event_pt {
            let duration = (ev.duration as u64 * out_clock / in_clock).min(u16::MAX as u64) as u16;
            let out_ev = TelephoneEvent { duration, ..ev };
            // The sender's marker: set on the first packet of the event.
            let marker = h.marker();
            let ts_out = state.out_ts;
            let (seq, ssrc) = (self.next_seq(), self.ssrc);
            self.queue_packet(|out| {
                write_header(out, marker, pt, seq, ts_out, ssrc);
                match out_ev.write(&mut out[crate::core::rtp::RTP_HEADER_LEN..]) {
                    Ok(n) => crate::core::rtp::RTP_HEADER_LEN + n,
                    Err(_) => 0,
                }
            });
            self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
            self.counters.sent_octets = self.counters.sent_octets.wrapping_add(4);
            // The event replaces audio: the output timeline continues after the time it
            // has covered so far (rtpengine moves its encoder's clock the same way).
            self.ts = ts_out.wrapping_add(duration as u32);
            if ev.end && !was_ended {
                self.resync_input_after_event(h, ev.duration);
            }
            return;
        }
        // In-band: render the tone up to the reported duration.
        let target = (ev.duration as u64 * self.pcm_rate as u64 / in_clock) as u32;
        let Some(tone) = state.tone.as_mut() else {
            return;
        };
        if target > state.rendered && !was_ended {
            let n = ((target - state.rendered) as usize).min(FIFO - self.fifo_len);
            tone.fill(&mut self.fifo[self.fifo_len..self.fifo_len + n]);
            self.fifo_len += n;
            state.rendered += n as u32;
            self.encode_ready();
        }
        if ev.end && !was_ended {
            self.resync_input_after_event(h, ev.duration);
        }
    }

    /// After an event, the sender's audio continues at event timestamp + duration.
    fn resync_input_after_event(&mut self, h: &RtpHeader<'_>, duration: u16) {
        if let Some(st) = &mut self.input {
            st.next_ts = h.timestamp().wrapping_add(duration as u32);
            st.have_audio = false;
        }
    }
}
