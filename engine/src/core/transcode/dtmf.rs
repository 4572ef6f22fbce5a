//! DTMF in a [`Transcoder`]: telephone-event (RFC 4733) forwarded on the output clock or
//! rendered in-band as a tone, and in-band digits detected and sent as events.

use ngmedia_codecs::dtmf::{DtmfDetector, TelephoneEvent, ToneGenerator};

use crate::core::dtmf_inject::tone_sample;
use crate::core::media_control::BlockDtmf;

use super::{write_header, Transcoder, FIFO};
use crate::core::rtp::RtpHeader;

/// Volume of DTMF tones rendered in-band when the event carries none (-10 dBm0).
const DEFAULT_TONE_VOLUME: u8 = 10;

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
    /// Event timestamp on the output timeline (start of the current segment).
    ts: u32,
    /// Output clock units reported so far in this segment.
    duration: u32,
}

/// Masking of in-band digits in the decoded audio (rtpengine's PCM DTMF replacement of the
/// `DTMF-security` modes): a detector on the PCM going to the encoder; while it holds a
/// digit, the frame is replaced.
#[derive(Debug)]
pub(crate) struct InbandMask {
    mode: BlockDtmf,
    detector: DtmfDetector,
    tone_freq: u32,
    digit: u8,
    /// The digit a masked tone is being replaced with (`random` picks one per tone).
    replacing: Option<u8>,
    /// Samples of replacement produced (the replacement's phase).
    pos: u32,
}

/// Replacement tone frequency when `frequency` is not given (rtpengine's default).
const DEFAULT_MASK_TONE_HZ: u32 = 400;
/// Level of replacement tones (-dBm0).
const MASK_TONE_VOLUME: u8 = 10;

impl Transcoder {
    /// Block DTMF in the audio (`mode` other than `Off`): in-band digits detected in the
    /// decoded PCM are replaced by silence (`drop`, `silence`), a plain tone (`tone`,
    /// `frequency`) or another digit (`zero`, `DTMF` with `digit`, `random`). Detection
    /// confirms a digit after about 50 ms, which still pass.
    pub fn set_block_dtmf(&mut self, mode: BlockDtmf, tone_freq: Option<u32>, digit: Option<u8>) {
        if !mode.is_on() {
            self.mask = None;
            return;
        }
        let tone_freq = tone_freq.unwrap_or(DEFAULT_MASK_TONE_HZ);
        let digit = digit.unwrap_or(0);
        if let Some(m) = self.mask.as_mut() {
            m.mode = mode;
            m.tone_freq = tone_freq;
            m.digit = digit;
            return;
        }
        if let Ok(detector) = DtmfDetector::new(self.pcm_rate) {
            self.mask = Some(Box::new(InbandMask {
                mode,
                detector,
                tone_freq,
                digit,
                replacing: None,
                pos: 0,
            }));
        }
    }

    /// Replace the frame at `fifo[start..start + frame]` if it carries a digit.
    pub(super) fn mask_frame(&mut self, start: usize, frame: usize) {
        let Some(m) = self.mask.as_mut() else {
            return;
        };
        let pcm = &mut self.fifo[start..start + frame];
        m.detector.process(pcm, |_, _| {});
        if m.detector.current().is_none() {
            m.replacing = None;
            return;
        }
        let rate = self.pcm_rate;
        let digit = *m.replacing.get_or_insert_with(|| match m.mode {
            BlockDtmf::Random => rand::random::<u8>() % 16,
            BlockDtmf::Dtmf => m.digit,
            _ => 0,
        });
        for s in pcm.iter_mut() {
            *s = match m.mode {
                BlockDtmf::Tone => {
                    let w = 2.0 * std::f64::consts::PI * f64::from(m.tone_freq) / f64::from(rate);
                    ((w * f64::from(m.pos)).sin() * 32767.0 / 2.0 / 3.162) as i16
                }
                BlockDtmf::Zero | BlockDtmf::Dtmf | BlockDtmf::Random => {
                    tone_sample(digit, MASK_TONE_VOLUME, rate, m.pos)
                }
                _ => 0,
            };
            m.pos = m.pos.wrapping_add(1);
        }
    }

    /// In-band DTMF detection on the output frame at `fifo[start..start + frame]`. Returns
    /// true when a digit is held and the frame went out as an event report instead.
    pub(super) fn detect_frame(&mut self, start: usize, frame: usize, step: u32) -> bool {
        let (Some(det), Some(pt)) = (self.detector.as_mut(), self.spec.output.event_pt) else {
            return false;
        };
        det.process(&self.fifo[start..start + frame], |_, _| {});
        let held = det.current();
        if let Some(d) = self.detected {
            if held != Some(d.event) {
                // Digit released (or replaced): the end report, sent three times
                // (RFC 4733 §2.5.1.4), then audio resumes as a new talk spurt.
                let end = TelephoneEvent {
                    event: d.event,
                    end: true,
                    volume: DEFAULT_TONE_VOLUME,
                    duration: d.duration.min(u16::MAX as u32) as u16,
                };
                for _ in 0..3 {
                    self.queue_event(pt, false, d.ts, end);
                }
                self.detected = None;
            }
        }
        let Some(event) = held else {
            return false;
        };
        // The first report of a digit carries the marker (RFC 4733 §2.5.1.2).
        let marker = self.detected.is_none();
        let d = match self.detected {
            // A segment's duration is 16 bits: a long digit continues in a new segment
            // at the current time (RFC 4733 §2.5.1.3).
            Some(d) if d.duration + step > u16::MAX as u32 => Detected {
                ts: self.ts,
                duration: 0,
                ..d
            },
            Some(d) => d,
            None => Detected {
                event,
                ts: self.ts,
                duration: 0,
            },
        };
        let d = Detected {
            duration: d.duration + step,
            ..d
        };
        self.detected = Some(d);
        let report = TelephoneEvent {
            event,
            end: false,
            volume: DEFAULT_TONE_VOLUME,
            duration: d.duration as u16,
        };
        self.queue_event(pt, marker, d.ts, report);
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
                let volume = if ev.volume == 0 {
                    DEFAULT_TONE_VOLUME
                } else {
                    ev.volume
                };
                ToneGenerator::new(ev.event, volume, self.pcm_rate).ok()
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
