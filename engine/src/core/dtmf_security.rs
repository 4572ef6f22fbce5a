//! `DTMF-security` on the packet path of a party that is not transcoded, and DTMF
//! triggers (rtpengine's DTMF replacement modes of `codec.c` and the trigger state machine
//! of `dtmf.c`).
//!
//! rtpengine forces a stream through its transcoding engine when a replacement mode is
//! set; ngmedia keeps the stream a passthrough and rewrites the party's packets in place,
//! one for one, so sequence numbers and timestamps stay the sender's:
//!
//! * **RFC 4733 events** — `drop`: not forwarded. `zero` and `DTMF`: forwarded with the
//!   event code replaced by `0` or the `digit` given. `silence`, `tone` and `random`: every
//!   event packet becomes an audio packet of the party's audio codec (the payload type it
//!   last sent audio with) at the timestamp of its place in the stream (last audio
//!   timestamp + packets since × packet length), carrying silence, a plain tone (the
//!   `frequencies`, one per digit in turn, default 400 Hz) or a random digit 0–9; the
//!   repeated end packets are not forwarded.
//! * **audio during an event** (its timestamp within the event's start and end) is
//!   replaced the same way (silence for `zero`/`DTMF` when the party has
//!   telephone-event, the replacement digit's tone otherwise), as rtpengine's frame
//!   manipulation does.
//! * **in-band digits** (G.711, and G.729 and Opus decoded by the guard, see `coded`; a
//!   transcoded party is masked by its transcoder): the audio goes through a DTMF detector
//!   and, while it holds a digit, is replaced (G.729 and Opus: re-encoded). The detector
//!   confirms a digit after about 40 ms, which pass, as with rtpengine.
//!
//! Tones are rtpengine's: a plain tone at `32767 / 1.122018^volume`, a digit as two sines
//! at half that each, phase from the packet's timestamp; `volume` defaults to 10 (-dBm0).
//!
//! **Triggers** (`trigger`, `trigger-end`, `trigger-end-time`, `trigger-end-digits`,
//! `DTMF-security-trigger`, `DTMF-security-trigger-end`): every digit the party sends (event
//! or in-band) advances a match of the `trigger` digits; a pause longer than
//! `--dtmf-digit-delay` (default 2500 ms) between two digits starts the match over. Once
//! matched, the mode becomes `DTMF-security-trigger` until the `trigger-end` digits are
//! matched, `trigger-end-digits` further digits were sent, or `trigger-end-time` ms passed;
//! then it becomes `DTMF-security-trigger-end` (default `off`). The digit completing a
//! trigger is handled in the mode it started in.
//!
//! Everything is built when the plan is applied; the packet path allocates nothing.

use ngmedia_codecs::dtmf::{DtmfDetector, DtmfTransition, TelephoneEvent};
use ngmedia_codecs::g711;
use serde::{Deserialize, Serialize};

use super::dtmf_inject::tone_sample;
use super::media_control::{silence_payload, BlockDtmf, PayloadKind};
use super::rtp::RtpHeader;

mod coded;
mod delayed;
pub use delayed::Released;

/// Default pause between two digits of a trigger (`--dtmf-digit-delay`, rtpengine's 2500).
pub const DEFAULT_DIGIT_DELAY_MS: u32 = 2500;
/// Replacement tone when no `frequencies` are given (rtpengine's).
const DEFAULT_TONE_HZ: u32 = 400;
/// Level of replacement tones when no `volume` is given (rtpengine's `tone_vol` default).
pub const DEFAULT_TONE_VOLUME: u8 = 10;
/// Largest audio packet rewritten (samples): 150 ms at 8 kHz, beyond any usual ptime.
const MAX_SAMPLES: usize = 1200;
/// Largest timestamp step learned between two packets: 60 ms of Opus' 48 kHz clock, the
/// longest Opus packet of one frame.
const MAX_STEP: u32 = 2880;

/// The trigger settings of a party (`block DTMF` with `trigger`; rtpengine's
/// `dtmf_trigger*` and `block_dtmf_trigger*` of `call_monologue`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DtmfTrigger {
    /// Digits (`0`–`9`, `*`, `#`, `A`–`D`) that switch blocking on.
    pub trigger: String,
    /// Digits that switch it off again once on (`trigger-end`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// Mode once triggered (`DTMF-security-trigger`; default `drop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BlockDtmf>,
    /// Mode once ended (`DTMF-security-trigger-end`; default `off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_mode: Option<BlockDtmf>,
    /// `trigger-end-time` (ms, 0 = none).
    #[serde(default)]
    pub end_ms: u32,
    /// `trigger-end-digits` (0 = none).
    #[serde(default)]
    pub end_digits: u32,
}

/// The settings a stream's guard is built from (plan data; compared to decide whether a
/// new plan keeps the running state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// The mode before any trigger.
    pub mode: BlockDtmf,
    pub frequencies: Vec<u32>,
    /// Replacement digit of `DTMF` (`zero`: 0).
    pub digit: u8,
    /// Level of replacement tones (-dBm0).
    pub volume: u8,
    pub trigger: Option<DtmfTrigger>,
    /// `--dtmf-digit-delay`.
    pub digit_delay_ms: u32,
    /// The party's first audio payload type in its SDP: what an event becomes before any
    /// audio was seen.
    pub audio_pt: Option<u8>,
    /// `delay-buffer` (ms): the party's packets are held this long, and digits are
    /// replaced when they leave (see `delayed`).
    pub delay_ms: u32,
    /// `DTMF-delay` (ms): digits are silenced where received and played this much later.
    pub dtmf_delay_ms: u32,
    /// The coded kinds (G.729, Opus) among the party's codecs: the guard encodes their
    /// replacement audio (see `coded`).
    pub coded: Vec<PayloadKind>,
}

impl SecurityConfig {
    /// Whether a stream with DTMF blocked in `mode` (and maybe a trigger) needs a guard:
    /// a replacement mode or a trigger; plain `drop` is done by `StreamControl`.
    pub fn needed(
        mode: BlockDtmf,
        trigger: Option<&DtmfTrigger>,
        delay_ms: u32,
        dtmf_delay_ms: u32,
    ) -> bool {
        is_replace(mode)
            || trigger.is_some_and(|t| !t.trigger.is_empty())
            || delay_ms > 0
            || dtmf_delay_ms > 0
    }

    /// Packets go through a delay buffer and digits are replaced as they leave it
    /// (rtpengine's manipulation of delayed frames), rather than in place on arrival.
    pub fn delayed(&self) -> bool {
        self.delay_ms > 0 || self.dtmf_delay_ms > 0
    }

    /// Whether audio may be replaced by something other than silence in some mode these
    /// settings can reach (then coded payloads need encoders).
    fn may_render(&self) -> bool {
        let renders = |m: BlockDtmf| is_replace(m) && m != BlockDtmf::Silence;
        renders(self.mode)
            || self
                .trigger
                .as_ref()
                .is_some_and(|t| t.mode.is_some_and(renders) || t.end_mode.is_some_and(renders))
    }
}

/// Modes that replace rather than drop.
fn is_replace(mode: BlockDtmf) -> bool {
    !matches!(mode, BlockDtmf::Off | BlockDtmf::Drop)
}

/// What the guard does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardVerdict {
    /// Forward it, now `len` bytes long.
    Forward(usize),
    /// Do not forward it.
    Block,
}

/// An event code of a trigger character.
fn code_of(c: char) -> Option<u8> {
    ngmedia_codecs::dtmf::char_to_event(c.to_ascii_uppercase())
}

/// Digits of a trigger string; characters that are not digits are left out.
fn codes(s: &str) -> Vec<u8> {
    s.chars().filter_map(code_of).collect()
}

/// Matching of a digit sequence, with restart at the longest prefix that is also a suffix
/// of what was matched (rtpengine's "partial match": trigger `1213`, digits `1212 13`).
#[derive(Debug, Clone, Default)]
struct Matcher {
    digits: Vec<u8>,
    matched: usize,
}

impl Matcher {
    fn new(digits: Vec<u8>) -> Matcher {
        Matcher { digits, matched: 0 }
    }

    /// Feed one digit; true when the sequence is complete (matching starts over).
    fn push(&mut self, d: u8) -> bool {
        if self.digits.is_empty() {
            return false;
        }
        let mut m = self.matched;
        loop {
            if self.digits[m] == d {
                m += 1;
                break;
            }
            if m == 0 {
                break;
            }
            // Longest proper prefix of digits[..m] that is also its suffix.
            m = (1..m)
                .rev()
                .find(|&k| self.digits[..k] == self.digits[m - k..m])
                .unwrap_or(0);
        }
        if m == self.digits.len() {
            self.matched = 0;
            return true;
        }
        self.matched = m;
        false
    }
}

/// Where the trigger is.
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for the trigger digits.
    Armed(Matcher),
    /// Triggered: waiting for the end digits, the digit count or the time.
    Active {
        end: Matcher,
        digits_left: Option<u32>,
        until_ms: Option<u64>,
    },
    /// Ended (or no trigger).
    Idle,
}

/// The RFC 4733 event being received.
#[derive(Debug, Clone, Copy)]
struct Event {
    ts: u32,
    /// Longest duration seen (clock units).
    duration: u32,
    ended: bool,
    /// The mode it is handled in (the mode when it started).
    mode: BlockDtmf,
    /// Digit of its replacement (`random`), and the tone frequency (`tone`).
    digit: u8,
    freq: u32,
}

/// The per-stream state: mode, trigger, the event being received, the audio line it sits
/// in and the in-band detector (rtpengine: the `dtmf_recv` list and trigger state of a
/// `call_media`/`call_monologue`).
#[derive(Debug)]
pub struct DtmfGuard {
    config: SecurityConfig,
    mode: BlockDtmf,
    mode_changed: bool,
    phase: Phase,
    /// Monotonic ms of the party's last digit (for `--dtmf-digit-delay`).
    last_digit_ms: Option<u64>,
    /// Digits seen so far (picks the tone frequency).
    count: u32,
    event: Option<Event>,
    /// Payload type, timestamp and sequence number of the last audio packet.
    last_audio: Option<(u8, u32, u16)>,
    /// Timestamp units per audio packet, learned from consecutive packets.
    step: u32,
    detector: Option<DtmfDetector>,
    /// The in-band digit being replaced: its replacement digit and tone frequency.
    inband: Option<(u8, u32)>,
    pcm: Box<[i16]>,
    /// Encoders of the party's G.729 and Opus payloads.
    coded: coded::CodedAudio,
    /// Digits logged for the delayed handling.
    delayed: delayed::DelayState,
}

/// Packet length until learned: 20 ms at 8 kHz.
const DEFAULT_STEP: u32 = 160;

impl DtmfGuard {
    pub fn new(config: SecurityConfig) -> DtmfGuard {
        let phase = match &config.trigger {
            Some(t) if !t.trigger.is_empty() => Phase::Armed(Matcher::new(codes(&t.trigger))),
            _ => Phase::Idle,
        };
        let coded = if config.may_render() {
            coded::CodedAudio::new(&config.coded)
        } else {
            coded::CodedAudio::none()
        };
        // In-band digits in G.729 and Opus audio matter to a replacing mode and to a
        // trigger (behind a delay buffer, detection is G.711 only).
        let detect = !config.delayed()
            && (is_replace(config.mode)
                || config
                    .trigger
                    .as_ref()
                    .is_some_and(|t| !t.trigger.is_empty()));
        let coded = if detect {
            coded.with_decoders(&config.coded)
        } else {
            coded
        };
        DtmfGuard {
            coded,
            mode: config.mode,
            mode_changed: false,
            phase,
            last_digit_ms: None,
            count: 0,
            event: None,
            last_audio: None,
            step: DEFAULT_STEP,
            detector: DtmfDetector::new(8000).ok(),
            inband: None,
            pcm: vec![0; MAX_SAMPLES].into_boxed_slice(),
            delayed: Default::default(),
            config,
        }
    }

    /// New settings: mode and trigger start over, what was learned of the party's RTP line
    /// (its audio payload type, timestamps, packet length) stays.
    pub fn reconfigure(&mut self, config: SecurityConfig) {
        let mut fresh = DtmfGuard::new(config);
        fresh.last_audio = self.last_audio;
        fresh.step = self.step;
        fresh.mode_changed = fresh.mode != self.mode;
        fresh.delayed = self.take_delay_state();
        *self = fresh;
    }

    pub fn config(&self) -> &SecurityConfig {
        &self.config
    }

    /// The mode in force now.
    pub fn mode(&self) -> BlockDtmf {
        self.mode
    }

    /// True once after a trigger changed the mode (the transcoder's mask follows it).
    pub fn take_mode_change(&mut self) -> bool {
        std::mem::take(&mut self.mode_changed)
    }

    fn set_mode(&mut self, mode: BlockDtmf) {
        if mode != self.mode {
            self.mode = mode;
            self.mode_changed = true;
        }
    }

    /// A digit the party started sending (event or in-band), at `now_ms`.
    fn on_digit(&mut self, digit: u8, now_ms: u64) {
        self.count = self.count.wrapping_add(1);
        let pause = self
            .last_digit_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > u64::from(self.config.digit_delay_ms));
        self.last_digit_ms = Some(now_ms);
        let Some(t) = self.config.trigger.as_ref() else {
            return;
        };
        match &mut self.phase {
            Phase::Armed(m) => {
                if pause {
                    m.matched = 0;
                }
                if m.push(digit) {
                    let mode = t.mode.unwrap_or(BlockDtmf::Drop);
                    self.phase = Phase::Active {
                        end: Matcher::new(codes(&t.end)),
                        digits_left: (t.end_digits > 0).then_some(t.end_digits),
                        until_ms: (t.end_ms > 0).then(|| now_ms + u64::from(t.end_ms)),
                    };
                    self.set_mode(mode);
                }
            }
            Phase::Active {
                end, digits_left, ..
            } => {
                if pause {
                    end.matched = 0;
                }
                let counted_out = match digits_left {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n == 0
                    }
                    None => false,
                };
                if end.push(digit) || counted_out {
                    self.end_trigger();
                }
            }
            Phase::Idle => {}
        }
    }

    fn end_trigger(&mut self) {
        let mode = self
            .config
            .trigger
            .as_ref()
            .and_then(|t| t.end_mode)
            .unwrap_or(BlockDtmf::Off);
        self.phase = Phase::Idle;
        self.set_mode(mode);
    }

    /// An in-band digit that started in the party's decoded audio (a transcoded stream:
    /// its transcoder watches for digits, see `Transcoder::watch_digits`), at `now_ms`:
    /// it drives the trigger as an RFC 4733 event does. Whether the mode changed shows
    /// in [`take_mode_change`](Self::take_mode_change).
    pub fn on_inband_digit(&mut self, digit: u8, now_ms: u64) {
        self.tick(now_ms);
        self.on_digit(digit, now_ms);
    }

    /// Whether in-band digits are to be fed to [`on_inband_digit`](Self::on_inband_digit):
    /// the party has a trigger that is not used up, and no delay buffer (which detects
    /// digits itself).
    pub fn wants_inband_digits(&self) -> bool {
        !self.config.delayed() && !matches!(self.phase, Phase::Idle)
    }

    /// `trigger-end-time`: checked on every packet (blocking only matters when one comes).
    fn tick(&mut self, now_ms: u64) {
        if let Phase::Active {
            until_ms: Some(t), ..
        } = self.phase
        {
            if now_ms >= t {
                self.end_trigger();
            }
        }
    }

    /// An audio packet of the party: its line (payload type, timestamp, sequence number)
    /// and the timestamp step between consecutive packets.
    fn learn_line(&mut self, pt: u8, ts: u32, seq: u16) {
        if let Some((lpt, lts, lseq)) = self.last_audio {
            let dts = ts.wrapping_sub(lts);
            if lpt == pt && seq.wrapping_sub(lseq) == 1 && dts > 0 && dts <= MAX_STEP {
                self.step = dts;
            }
        }
        self.last_audio = Some((pt, ts, seq));
    }

    /// The replacement of a digit starting now in `mode`: (digit, tone frequency).
    fn replacement(&self, mode: BlockDtmf) -> (u8, u32) {
        let digit = match mode {
            BlockDtmf::Random => rand::random::<u8>() % 10,
            BlockDtmf::Zero => 0,
            _ => self.config.digit,
        };
        let freqs = &self.config.frequencies;
        let freq = if freqs.is_empty() {
            DEFAULT_TONE_HZ
        } else {
            freqs[(self.count.wrapping_sub(1) as usize) % freqs.len()]
        };
        (digit, freq)
    }

    /// Apply the guard to the plain RTP packet `buf[..len]` (`buf` may extend past it:
    /// an event packet can grow into an audio packet, up to `buf.len()`). `kind` gives
    /// what each payload type carries; `inband`: detect and replace in-band digits (the
    /// stream is not transcoded).
    pub fn apply(
        &mut self,
        buf: &mut [u8],
        len: usize,
        kind: impl Fn(u8) -> PayloadKind,
        has_events: bool,
        inband: bool,
        now_ms: u64,
    ) -> GuardVerdict {
        if self.config.delayed() {
            return self.apply_delayed(buf, len, kind, has_events, now_ms);
        }
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
            return self.on_event(buf, len, start, plen, ts, seq, kind, now_ms);
        }
        // Audio: learn the line's step, then see whether it falls into a digit.
        self.learn_line(pt, ts, seq);
        let law = match k {
            PayloadKind::Pcmu => Some(g711::Law::Ulaw),
            PayloadKind::Pcma => Some(g711::Law::Alaw),
            _ => None,
        };
        // In-band digits (G.711, and G.729 and Opus where the guard has their decoders):
        // detection runs whenever a digit could matter.
        let mut inband_replace = None;
        if inband {
            let payload = &buf[start..start + plen];
            let decoded = match law {
                Some(law) if plen <= MAX_SAMPLES => {
                    decode_g711(law, payload, &mut self.pcm[..plen]);
                    Some(plen)
                }
                Some(_) => None,
                None => self.coded.decode(k, payload, &mut self.pcm),
            };
            if let (Some(n), Some(det)) = (decoded, self.detector.as_mut()) {
                let pcm = &self.pcm[..n];
                let mut started = None;
                det.process(pcm, |t, _| {
                    if let DtmfTransition::Start(e) = t {
                        started = Some(e);
                    }
                });
                let held = det.current();
                if let Some(e) = started {
                    self.on_digit(e, now_ms);
                    let mode = self.mode;
                    self.inband = Some(self.replacement(mode));
                }
                if held.is_none() {
                    self.inband = None;
                } else if is_replace(self.mode) {
                    inband_replace = self.inband;
                }
            }
        }
        // Audio within an event's time span.
        let in_event = self.event.filter(|e| {
            let off = ts.wrapping_sub(e.ts);
            is_replace(e.mode)
                && (off as i32) >= 0
                && off < 80_000
                && (off <= e.duration || !e.ended)
        });
        let (mode, digit, freq) = match (in_event, inband_replace) {
            (Some(e), _) => (e.mode, e.digit, e.freq),
            (None, Some((d, f))) => (self.mode, d, f),
            (None, None) => return GuardVerdict::Forward(len),
        };
        let end = self.fill(buf, start, plen, k, ts, mode, digit, freq, has_events);
        // Padding, if any, is gone with the payload rewritten.
        buf[0] &= !0x20;
        GuardVerdict::Forward(end)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_event(
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
        let new = !matches!(self.event, Some(e) if e.ts == ts);
        if new {
            let mode = self.mode;
            self.on_digit(ev.event, now_ms);
            let (digit, freq) = self.replacement(mode);
            self.event = Some(Event {
                ts,
                duration: 0,
                ended: false,
                mode,
                digit,
                freq,
            });
        }
        let Some(e) = self.event.as_mut() else {
            return GuardVerdict::Forward(len);
        };
        let repeat = e.ended && ev.end;
        e.ended |= ev.end;
        e.duration = e.duration.max(u32::from(ev.duration));
        let e = *e;
        match e.mode {
            BlockDtmf::Off => GuardVerdict::Forward(len),
            BlockDtmf::Drop => GuardVerdict::Block,
            BlockDtmf::Zero | BlockDtmf::Dtmf => {
                buf[start] = if e.mode == BlockDtmf::Zero {
                    0
                } else {
                    e.digit
                };
                GuardVerdict::Forward(len)
            }
            _ if repeat => GuardVerdict::Block,
            mode => {
                // The event packet becomes an audio packet at its place in the line.
                let (apt, lts, lseq) = match (self.last_audio, self.config.audio_pt) {
                    (Some(line), _) => line,
                    // No audio yet: the event's own place.
                    (None, Some(pt)) => (pt, ts, seq),
                    (None, None) => return GuardVerdict::Block,
                };
                let k = kind(apt);
                let samples = coded::CodedAudio::samples_per_step(k, self.step);
                let payload = match k {
                    PayloadKind::Pcmu | PayloadKind::Pcma => samples,
                    PayloadKind::G729 => samples / 80 * 10,
                    // Room for an Opus silence packet (a few bytes).
                    PayloadKind::Opus => 64,
                    _ => return GuardVerdict::Block,
                };
                if payload == 0 || start + payload > buf.len() || samples > MAX_SAMPLES {
                    return GuardVerdict::Block;
                }
                let ts =
                    lts.wrapping_add(u32::from(seq.wrapping_sub(lseq)).wrapping_mul(self.step));
                buf[0] &= !0x20; // no padding
                buf[1] = apt; // marker cleared
                buf[4..8].copy_from_slice(&ts.to_be_bytes());
                let rendered = self.coded.can(k)
                    && mode != BlockDtmf::Silence
                    && start + coded::CodedAudio::room_for(k, samples) <= buf.len();
                let end = match k {
                    PayloadKind::Opus | PayloadKind::G729 if rendered => {
                        self.render(samples, k, ts, mode, e.digit, e.freq, false);
                        match self
                            .coded
                            .encode(k, &self.pcm[..samples], &mut buf[start..])
                        {
                            Some(n) => start + n,
                            None => return GuardVerdict::Block,
                        }
                    }
                    PayloadKind::Opus | PayloadKind::G729 => {
                        // The TOC tells the silence packet's length in time.
                        buf[start] = opus_toc_for(self.step);
                        silence_payload(&mut buf[..start + payload], k)
                    }
                    _ => {
                        self.fill(buf, start, payload, k, ts, mode, e.digit, e.freq, false);
                        start + payload
                    }
                };
                if end <= start {
                    return GuardVerdict::Block;
                }
                GuardVerdict::Forward(end)
            }
        }
    }

    /// Write the replacement of `mode` over the payload `buf[start..start + plen]`, audio
    /// of kind `k` at timestamp `ts`; where the payload now ends (a coded payload may change
    /// its length; one that cannot be rendered becomes encoded silence).
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        buf: &mut [u8],
        start: usize,
        plen: usize,
        k: PayloadKind,
        ts: u32,
        mode: BlockDtmf,
        digit: u8,
        freq: u32,
        has_events: bool,
    ) -> usize {
        let law = match k {
            PayloadKind::Pcmu => g711::Law::Ulaw,
            PayloadKind::Pcma => g711::Law::Alaw,
            PayloadKind::G729 | PayloadKind::Opus => {
                let samples = coded::CodedAudio::samples_of(k, &buf[start..start + plen]);
                let rendered = mode != BlockDtmf::Silence
                    && samples > 0
                    && samples <= MAX_SAMPLES
                    && self.coded.can(k)
                    && start + coded::CodedAudio::room_for(k, samples) <= buf.len();
                if rendered {
                    self.render(samples, k, ts, mode, digit, freq, has_events);
                    if let Some(n) = self
                        .coded
                        .encode(k, &self.pcm[..samples], &mut buf[start..])
                    {
                        return start + n;
                    }
                }
                return silence_payload(&mut buf[..start + plen], k);
            }
            _ => return start + plen,
        };
        let n = plen.min(MAX_SAMPLES);
        self.render(n, k, ts, mode, digit, freq, has_events);
        for (b, &s) in buf[start..start + n].iter_mut().zip(self.pcm[..n].iter()) {
            *b = match law {
                g711::Law::Ulaw => g711::ulaw_encode(s),
                g711::Law::Alaw => g711::alaw_encode(s),
            };
        }
        start + plen
    }

    /// Render the replacement of `mode` as `samples` of 8 kHz PCM into the start of the
    /// scratch buffer, for a packet of kind `k` at timestamp `ts` (the tone's phase).
    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        samples: usize,
        k: PayloadKind,
        ts: u32,
        mode: BlockDtmf,
        digit: u8,
        freq: u32,
        has_events: bool,
    ) {
        let volume = self.config.volume;
        let ts = coded::CodedAudio::phase_of(k, ts);
        let pcm = &mut self.pcm[..samples.min(MAX_SAMPLES)];
        match mode {
            BlockDtmf::Tone => fill_tone(pcm, freq, volume, ts),
            BlockDtmf::Random => {
                for (i, s) in pcm.iter_mut().enumerate() {
                    *s = tone_sample(digit, DEFAULT_TONE_VOLUME, 8000, ts.wrapping_add(i as u32));
                }
            }
            BlockDtmf::Zero | BlockDtmf::Dtmf if !has_events => {
                let digit = if mode == BlockDtmf::Zero { 0 } else { digit };
                for (i, s) in pcm.iter_mut().enumerate() {
                    *s = tone_sample(digit, volume, 8000, ts.wrapping_add(i as u32));
                }
            }
            _ => pcm.fill(0),
        }
    }
}

/// What the guard reads of a plain RTP packet.
struct RtpParts {
    pt: u8,
    ts: u32,
    seq: u16,
    /// Where the payload starts, and its length.
    start: usize,
    plen: usize,
}

impl RtpParts {
    fn of(pkt: &[u8]) -> Option<RtpParts> {
        let h = RtpHeader::parse(pkt).ok()?;
        let plen = h.payload().ok()?.len();
        Some(RtpParts {
            pt: h.payload_type(),
            ts: h.timestamp(),
            seq: h.sequence_number(),
            start: h.header_len(),
            plen,
        })
    }
}

/// G.711 `payload` into `pcm` (as long as `payload`).
fn decode_g711(law: g711::Law, payload: &[u8], pcm: &mut [i16]) {
    for (s, &b) in pcm.iter_mut().zip(payload) {
        *s = match law {
            g711::Law::Ulaw => g711::ulaw_decode(b),
            g711::Law::Alaw => g711::alaw_decode(b),
        };
    }
}

/// A plain tone as rtpengine writes it (`freq_samples` with one frequency): each sample
/// `sin(2π·f/8000·(ts + i)) · 32767 / 1.122018^volume`, truncated.
fn fill_tone(pcm: &mut [i16], freq: u32, volume: u8, ts: u32) {
    let div = 1.122018f64.powi(i32::from(volume));
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0;
    for (i, s) in pcm.iter_mut().enumerate() {
        let n = f64::from(ts.wrapping_add(i as u32));
        *s = ((w * n).sin() / div * 32767.0) as i16;
    }
}

/// A one-frame Opus TOC (CELT fullband) of `samples` at 8 kHz timestamp units scaled to
/// Opus' 48 kHz clock: 10 or 20 ms frames (longer steps use 20 ms; the silence packet
/// stands for the step either way).
fn opus_toc_for(samples: u32) -> u8 {
    // Opus RTP timestamps run at 48 kHz: 480 = 10 ms.
    if samples <= 480 {
        30 << 3
    } else {
        31 << 3
    }
}

#[cfg(test)]
mod tests;
