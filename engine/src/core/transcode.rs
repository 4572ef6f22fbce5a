//! Sans-IO transcoder for one direction of one stream (rtpengine's `codec_handler` with its
//! `decoder`/`encoder` pair and the packetizer of `codec.c`).
//!
//! `handle_rtp(now, packet)` takes one received RTP packet of the input codec (or its
//! telephone-event), `poll_output(buf)` hands out the RTP packets it produced until `None`.
//! The output is a new RTP stream: our own SSRC, a sequence number that counts every packet
//! we send, a timestamp in the output codec's clock that advances by exactly one output
//! frame per packet, and the marker bit on the first packet of every talk spurt.
//!
//! * Audio is decoded to mono PCM at one internal rate (8 kHz unless both sides are Opus):
//!   G.711 and G.729 are 8 kHz codecs, and libopus decodes and encodes at 8 kHz natively,
//!   so no resampler is needed between them (cheaper than a 48 kHz round trip, and the
//!   narrowband side cannot carry more anyway).
//! * PCM collects in a FIFO and leaves it one output frame at a time, so 10 ms G.729
//!   frames become 20 ms Opus packets and 60 ms input becomes three 20 ms packets.
//! * Loss (a sequence gap with a timestamp gap of at most [`MAX_CONCEAL_MS`]) is filled by
//!   the decoder's concealment (Opus PLC, or its in-band FEC for the packet just before the
//!   one that arrived; G.729 erasure frames; silence for G.711), so the output timestamp
//!   line has no hole. A larger timestamp gap, or one without a sequence gap, is silence
//!   suppression: the output timestamp jumps by the same time and the marker bit is set.
//! * telephone-event (RFC 4733) is forwarded with the output side's payload type, its
//!   timestamp placed on the output timeline and its duration scaled to the output clock;
//!   when the output side has no telephone-event the digit is rendered in-band as a DTMF
//!   tone instead.
//! * In-band DTMF detection (`detect DTMF`, [`TranscodeSpec::detect_dtmf`]): toward a side
//!   with telephone-event, every output frame's PCM goes through a Goertzel detector
//!   before it is encoded. While a digit is held, its frames are sent as RFC 4733 event
//!   reports (the other side's payload type, one per output frame, duration growing by a
//!   frame) instead of audio, so the receiver does not see the digit twice; the end is
//!   reported three times and audio resumes with the marker bit. Detection confirms a
//!   digit after two 25.6 ms blocks, so the first ~50 ms of a tone still leave as audio
//!   (too short to count as a digit, ITU-T Q.24 asks for 40 ms of tone).
//!
//! * Opus is encoded at [`OPUS_DEFAULT_BITRATE`] unless the plan gives a bitrate, with the
//!   complexity [`opus_complexity`] picks for it; both were chosen by measuring PESQ against
//!   CPU (README, "Transcoding performance").
//!
//! Everything a packet needs (codec state, PCM FIFO, scratch and the output queue) is
//! allocated in [`Transcoder::new`]; the packet path allocates nothing.

use ngmedia_codecs::dtmf::{DtmfDetector, TelephoneEvent, ToneGenerator};
use ngmedia_codecs::{Codec, CodecError, CodecKind, CodecParams, Decoder, Encoder, EncoderOptions};

use super::rtp::RtpHeader;

/// Longest loss filled by concealment; a longer gap is treated as a new talk spurt.
pub const MAX_CONCEAL_MS: u32 = 100;
/// Output packets queued between `handle_rtp` and `poll_output`: 120 ms of input plus
/// 100 ms of concealment in 10 ms packets, with room to spare.
const QUEUE: usize = 32;
/// Bytes per queued output packet: RTP header plus the largest Opus payload.
const SLOT: usize = super::rtp::RTP_HEADER_LEN + ngmedia_codecs::opus::MAX_PACKET;
/// PCM FIFO capacity in samples: concealment + the largest decoded packet + one frame.
const FIFO: usize = 16_384;
/// Decoder output scratch: 120 ms at 48 kHz, stereo.
const SCRATCH: usize = 5_760 * 2;
/// Opus bitrate when neither `codec: {set: [opus/…/BITRATE]}` nor the receiver's
/// `maxaveragebitrate` gives one: rtpengine's default, and where PESQ stops improving
/// (narrowband speech, complexity 5: 3.04 at libopus' own 11 kbit/s, 3.56 at 16, 3.69 at
/// 24, 3.73 at 32; see the README's transcoding measurements).
pub const OPUS_DEFAULT_BITRATE: u32 = 32_000;

/// Opus encoder complexity for a bitrate, chosen by PESQ against CPU (`bench/pesq.sh
/// --sweep`, `cargo bench -p ngmedia-codecs`): from 24 kbit/s on, complexity 3 scores within
/// 0.01 MOS of 5 (3.72 against 3.73 at 32 kbit/s) for about a quarter less encoder time;
/// below that the extra analysis of 5 is worth it (3.56 against 3.44 at 16 kbit/s).
pub fn opus_complexity(bitrate: u32) -> u8 {
    if bitrate >= 24_000 {
        3
    } else {
        5
    }
}

/// Volume of DTMF tones rendered in-band when the event carries none (-10 dBm0).
const DEFAULT_TONE_VOLUME: u8 = 10;

/// One side of a transcoder: codec, payload types and packetisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecEnd {
    pub codec: Codec,
    /// Payload type of the audio codec on this side.
    pub pt: u8,
    /// Packet duration (output: what we produce; input: informative).
    pub ptime_ms: u32,
    /// This side's telephone-event payload type at the codec's clock rate, if it has one.
    pub event_pt: Option<u8>,
    /// Encoder bitrate from `codec: {set: [...]}` (Opus), `None` for the default.
    pub bitrate: Option<u32>,
}

/// What a transcoder converts: built at negotiation, carried in the stream plan.
/// rtpengine: the pair of `rtp_payload_type`s a `codec_handler` is set up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscodeSpec {
    pub input: CodecEnd,
    pub output: CodecEnd,
    /// Detect DTMF tones in the decoded audio and send them as telephone-event with the
    /// output side's payload type (rtpengine: `pcm_dtmf_detect` of the `detect DTMF`
    /// flag). Takes effect only when the output side has telephone-event.
    pub detect_dtmf: bool,
}

/// Counters of one transcoder (for RTCP and diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeCounters {
    /// Input packets accepted (audio and events).
    pub received: u64,
    /// Input packets that could not be decoded, or had an unknown payload type.
    pub errors: u64,
    /// Input packets too old to use (duplicates, late reordering).
    pub late: u64,
    /// Lost input packets filled by concealment.
    pub concealed: u64,
    /// Output packets dropped because nobody polled the queue.
    pub overflow: u64,
    /// Output RTP packets and payload octets produced (the RTCP SR sender counts).
    pub sent_packets: u32,
    pub sent_octets: u32,
}

/// Reception statistics of the input stream as RTCP reports them (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reception {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24 bits, signed).
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in input clock units.
    pub jitter: u32,
}

#[derive(Debug, Clone, Copy)]
struct InputState {
    ssrc: u32,
    base_seq: u32,
    /// Extended highest sequence number seen.
    max_seq: u32,
    /// Sequence number of the last packet used (extended).
    last_seq: u32,
    /// Timestamp where the next audio packet is expected (last audio ts + its duration).
    next_ts: u32,
    have_audio: bool,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// RFC 3550 jitter estimate, scaled by 16.
    jitter_q4: u32,
    transit: Option<i64>,
}

#[derive(Debug)]
struct EventState {
    /// Input timestamp identifying the event.
    in_ts: u32,
    /// Timestamp of the event on the output timeline.
    out_ts: u32,
    ended: bool,
    /// In-band rendering: the tone and how many PCM samples of it were produced.
    tone: Option<ToneGenerator>,
    rendered: u32,
}

/// A digit found by in-band detection, being reported as telephone-event.
#[derive(Debug, Clone, Copy)]
struct Detected {
    event: u8,
    /// Event timestamp on the output timeline (start of the current segment).
    ts: u32,
    /// Output clock units reported so far in this segment.
    duration: u32,
}

/// Transcoder for one direction of one stream. rtpengine: `codec_handler` + `ssrc_ctx`.
#[derive(Debug)]
pub struct Transcoder {
    spec: TranscodeSpec,
    decoder: Decoder,
    encoder: Encoder,
    /// Internal PCM rate (mono).
    pcm_rate: u32,
    fifo: Box<[i16]>,
    fifo_len: usize,
    scratch: Box<[i16]>,
    queue: Box<[u8]>,
    queue_len: [usize; QUEUE],
    head: usize,
    queued: usize,
    input: Option<InputState>,
    event: Option<EventState>,
    /// In-band DTMF detector on the PCM going to the encoder (`detect_dtmf`).
    detector: Option<DtmfDetector>,
    detected: Option<Detected>,
    /// Output RTP line.
    ssrc: u32,
    seq: u16,
    ts: u32,
    marker: bool,
    counters: TranscodeCounters,
    last_rx_ms: u64,
}

/// Why a transcoder could not be built (negotiation picked something the codecs cannot do).
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("{0} cannot be transcoded")]
    NotAudio(&'static str),
}

/// Opus is run mono inside the transcoder whatever the SDP says (RFC 7587 receivers must
/// accept mono); stereo in the fmtp would only double the work.
fn mono(codec: Codec) -> Codec {
    match codec.params {
        CodecParams::Opus(mut p) => {
            p.stereo = false;
            p.sprop_stereo = false;
            Codec {
                params: CodecParams::Opus(p),
                ..codec
            }
        }
        _ => codec,
    }
}

impl Transcoder {
    /// Build the codec state, buffers and the output RTP line (random SSRC, sequence number
    /// and timestamp base, as RFC 3550 asks).
    pub fn new(spec: TranscodeSpec) -> Result<Transcoder, TranscodeError> {
        for end in [&spec.input, &spec.output] {
            if end.codec.kind() == CodecKind::TelephoneEvent {
                return Err(TranscodeError::NotAudio("telephone-event"));
            }
        }
        let both_opus = spec.input.codec.kind() == CodecKind::Opus
            && spec.output.codec.kind() == CodecKind::Opus;
        let pcm_rate = if both_opus { 48_000 } else { 8_000 };
        let input = mono(spec.input.codec);
        let output = mono(spec.output.codec);
        let decoder = input.decoder_at(if input.kind() == CodecKind::Opus {
            pcm_rate
        } else {
            input.def.pcm_rate
        })?;
        let opus_bitrate = match output.params {
            CodecParams::Opus(p) => spec
                .output
                .bitrate
                .or(p.maxaveragebitrate)
                .unwrap_or(OPUS_DEFAULT_BITRATE)
                .clamp(6_000, 510_000),
            _ => OPUS_DEFAULT_BITRATE,
        };
        let opts = EncoderOptions {
            pcm_rate: (output.kind() == CodecKind::Opus).then_some(pcm_rate),
            opus_bitrate: Some(opus_bitrate as i32),
            opus_complexity: opus_complexity(opus_bitrate),
        };
        let encoder = output.encoder_with(spec.output.ptime_ms, &opts)?;
        let detector = match spec.output.event_pt {
            Some(_) if spec.detect_dtmf => Some(DtmfDetector::new(pcm_rate)?),
            _ => None,
        };
        Ok(Transcoder {
            spec,
            decoder,
            encoder,
            pcm_rate,
            fifo: vec![0; FIFO].into_boxed_slice(),
            fifo_len: 0,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            queue: vec![0; QUEUE * SLOT].into_boxed_slice(),
            queue_len: [0; QUEUE],
            head: 0,
            queued: 0,
            input: None,
            event: None,
            detector,
            detected: None,
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            marker: true,
            counters: TranscodeCounters::default(),
            last_rx_ms: 0,
        })
    }

    pub fn spec(&self) -> &TranscodeSpec {
        &self.spec
    }

    /// Our SSRC on the output side.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn counters(&self) -> TranscodeCounters {
        self.counters
    }

    /// The next output RTP timestamp (for an RTCP SR's RTP time).
    pub fn output_timestamp(&self) -> u32 {
        self.ts
    }

    /// Monotonic milliseconds of the last input packet, 0 before the first.
    pub fn last_received_ms(&self) -> u64 {
        self.last_rx_ms
    }

    /// Take one received RTP packet (already latched and counted). Bad or unexpected
    /// packets are counted and ignored; they never stop the stream.
    pub fn handle_rtp(&mut self, now_ms: u64, packet: &[u8]) {
        let Ok(h) = RtpHeader::parse(packet) else {
            self.counters.errors += 1;
            return;
        };
        let Ok(payload) = h.payload() else {
            self.counters.errors += 1;
            return;
        };
        let pt = h.payload_type();
        let is_event = Some(pt) == self.spec.input.event_pt;
        if pt != self.spec.input.pt && !is_event {
            self.counters.errors += 1;
            return;
        }
        let Some(lost) = self.track_input(now_ms, &h) else {
            self.counters.late += 1;
            return;
        };
        self.counters.received += 1;
        self.last_rx_ms = now_ms;
        if is_event {
            self.handle_event(&h, payload);
        } else {
            self.handle_audio(&h, payload, lost);
        }
    }

    /// Sequence bookkeeping (RFC 3550 A.1, simplified: no probation) and jitter. Returns
    /// the number of packets missing just before this one, `None` for a packet older than
    /// the last one used.
    fn track_input(&mut self, now_ms: u64, h: &RtpHeader<'_>) -> Option<u32> {
        let seq = h.sequence_number();
        let clock = self.spec.input.codec.clock_rate as i64;
        let arrival = now_ms as i64 * clock / 1000;
        let transit = arrival - h.timestamp() as i64;
        let st = match &mut self.input {
            Some(st) if st.ssrc == h.ssrc() => st,
            _ => {
                // First packet, or the sender restarted with a new SSRC: start over.
                self.input = Some(InputState {
                    ssrc: h.ssrc(),
                    base_seq: seq as u32,
                    max_seq: seq as u32,
                    last_seq: (seq as u32).wrapping_sub(1),
                    next_ts: h.timestamp(),
                    have_audio: false,
                    received: 0,
                    expected_prior: 0,
                    received_prior: 0,
                    jitter_q4: 0,
                    transit: None,
                });
                self.input.as_mut().expect("just set")
            }
        };
        // Extend to 32 bits around the highest sequence number seen.
        let delta = seq.wrapping_sub(st.max_seq as u16) as i16 as i32;
        let ext = (st.max_seq as i64 + delta as i64).max(0) as u32;
        if ext <= st.last_seq && st.received > 0 {
            return None;
        }
        let lost = if st.received > 0 {
            ext - st.last_seq - 1
        } else {
            0
        };
        if ext > st.max_seq {
            st.max_seq = ext;
        }
        st.last_seq = ext;
        st.received += 1;
        if let Some(prev) = st.transit {
            let d = (transit - prev).unsigned_abs().min(u32::MAX as u64 / 32) as u32;
            // J += (|D| - J) / 16, kept scaled by 16.
            st.jitter_q4 = st.jitter_q4 + d - ((st.jitter_q4 + 8) >> 4);
        }
        st.transit = Some(transit);
        Some(lost)
    }

    fn handle_audio(&mut self, h: &RtpHeader<'_>, payload: &[u8], lost_packets: u32) {
        if payload.is_empty() {
            return;
        }
        // An active in-band rendering replaces the audio until the event ends.
        if matches!(&self.event, Some(e) if e.tone.is_some() && !e.ended) {
            return;
        }
        let in_clock = self.spec.input.codec.clock_rate;
        let ts = h.timestamp();
        let (have_audio, next_ts) = match &self.input {
            Some(st) => (st.have_audio, st.next_ts),
            None => (false, ts),
        };
        if h.marker() {
            self.marker = true;
        }
        let mut gap = ts.wrapping_sub(next_ts) as i32;
        if !have_audio {
            gap = 0;
        }
        if gap > 0 {
            let max_gap = (in_clock / 1000 * MAX_CONCEAL_MS) as i32;
            if lost_packets > 0 && gap <= max_gap {
                let samples = self.to_pcm(gap as u32);
                self.conceal(samples, payload, lost_packets);
            } else {
                // Silence suppression or a long outage: jump the output clock by the same
                // time and mark the new talk spurt.
                let out_units = (gap as u64 * self.spec.output.codec.clock_rate as u64
                    / in_clock as u64) as u32;
                self.ts = self.ts.wrapping_add(out_units);
                self.marker = true;
            }
        }
        let n = match self.decoder.decode(payload, &mut self.scratch) {
            Ok(n) => n,
            Err(_) => {
                self.counters.errors += 1;
                return;
            }
        };
        let ch = self.decoder.channels() as usize;
        let frames = n / ch.max(1);
        self.push_pcm_from_scratch(frames, ch);
        let units = (frames as u64 * in_clock as u64 / self.pcm_rate as u64) as u32;
        if let Some(st) = &mut self.input {
            st.have_audio = true;
            st.next_ts = ts.wrapping_add(units);
        }
        self.encode_ready();
    }

    /// Input clock units → internal PCM samples.
    fn to_pcm(&self, units: u32) -> usize {
        (units as u64 * self.pcm_rate as u64 / self.spec.input.codec.clock_rate as u64) as usize
    }

    /// Fill `samples` of lost audio; the last lost packet is recovered from `next`'s FEC
    /// where the codec has it.
    fn conceal(&mut self, samples: usize, next: &[u8], lost: u32) {
        let mut samples = samples.min(FIFO / 2);
        if matches!(self.decoder, Decoder::G711(_)) {
            // Silence: cheaper than decoding and what rtpengine does for G.711.
        } else if self.spec.input.codec.kind() == CodecKind::G729 {
            samples -= samples % 80;
        } else {
            // Opus frames are multiples of 2.5 ms.
            let q = (self.pcm_rate / 400) as usize;
            samples -= samples % q;
        }
        if samples == 0 {
            return;
        }
        let ch = self.decoder.channels() as usize;
        let per_packet = (samples / lost.max(1) as usize).max(1);
        let mut done = 0;
        while done < samples {
            let chunk = per_packet.min(samples - done);
            let last = done + chunk >= samples;
            let r = if last && self.spec.input.codec.kind() == CodecKind::Opus {
                self.decoder.decode_fec(next, chunk, &mut self.scratch)
            } else {
                self.decoder.conceal(chunk, &mut self.scratch)
            };
            match r {
                Ok(n) => {
                    let frames = n / ch.max(1);
                    self.push_pcm_from_scratch(frames, ch);
                }
                Err(_) => {
                    // Concealment failed (odd chunk size): fill silence instead.
                    self.scratch[..chunk * ch].fill(0);
                    self.push_pcm_from_scratch(chunk, ch);
                }
            }
            done += chunk;
        }
        self.counters.concealed += lost as u64;
        self.encode_ready();
    }

    /// Append `frames` of the decoder's scratch output (interleaved `ch` channels) to the
    /// FIFO as mono.
    fn push_pcm_from_scratch(&mut self, frames: usize, ch: usize) {
        let room = FIFO - self.fifo_len;
        let frames = if frames > room {
            // Cannot happen with a polled queue; keep the newest audio.
            self.drop_fifo(frames - room);
            frames.min(FIFO - self.fifo_len)
        } else {
            frames
        };
        let dst = &mut self.fifo[self.fifo_len..self.fifo_len + frames];
        if ch <= 1 {
            dst.copy_from_slice(&self.scratch[..frames]);
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                let l = self.scratch[i * ch] as i32;
                let r = self.scratch[i * ch + 1] as i32;
                *d = ((l + r) / 2) as i16;
            }
        }
        self.fifo_len += frames;
    }

    fn drop_fifo(&mut self, n: usize) {
        let n = n.min(self.fifo_len);
        self.fifo.copy_within(n..self.fifo_len, 0);
        self.fifo_len -= n;
    }

    /// Encode every complete output frame in the FIFO.
    fn encode_ready(&mut self) {
        let frame = self.encoder.frame_samples();
        let step = self.encoder.timestamp_step();
        let mut used = 0;
        while self.fifo_len - used >= frame {
            if self.detect_frame(used, frame, step) {
                used += frame;
                continue;
            }
            let slot = self.reserve_slot();
            let out = &mut self.queue[slot * SLOT..(slot + 1) * SLOT];
            let pcm = &self.fifo[used..used + frame];
            used += frame;
            let len = match self
                .encoder
                .encode(pcm, &mut out[super::rtp::RTP_HEADER_LEN..])
            {
                Ok(len) => len,
                Err(_) => {
                    self.counters.errors += 1;
                    self.unreserve_slot();
                    continue;
                }
            };
            if len == 0 {
                // DTX: nothing to send for this frame; the next packet starts a talk spurt.
                self.unreserve_slot();
                self.ts = self.ts.wrapping_add(step);
                self.marker = true;
                continue;
            }
            let marker = std::mem::take(&mut self.marker);
            write_header(
                out,
                marker,
                self.spec.output.pt,
                self.seq,
                self.ts,
                self.ssrc,
            );
            self.queue_len[slot] = super::rtp::RTP_HEADER_LEN + len;
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(step);
            self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
            self.counters.sent_octets = self.counters.sent_octets.wrapping_add(len as u32);
        }
        if used > 0 {
            self.drop_fifo(used);
        }
    }

    /// In-band DTMF detection on the output frame at `fifo[start..start + frame]`. Returns
    /// true when a digit is held and the frame went out as an event report instead.
    fn detect_frame(&mut self, start: usize, frame: usize, step: u32) -> bool {
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
                self.marker = true;
            }
        }
        let Some(event) = held else {
            return false;
        };
        let d = match self.detected {
            // A segment's duration is 16 bits: a long digit continues in a new segment
            // at the current time (RFC 4733 §2.5.1.3).
            Some(d) if d.duration + step > u16::MAX as u32 => Detected {
                ts: self.ts,
                duration: 0,
                ..d
            },
            Some(d) => d,
            None => {
                self.marker = true;
                Detected {
                    event,
                    ts: self.ts,
                    duration: 0,
                }
            }
        };
        let d = Detected {
            duration: d.duration + step,
            ..d
        };
        self.detected = Some(d);
        let marker = std::mem::take(&mut self.marker);
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
        let (seq, ssrc) = (self.seq, self.ssrc);
        self.queue_packet(|out| {
            write_header(out, marker, pt, seq, ts, ssrc);
            match ev.write(&mut out[super::rtp::RTP_HEADER_LEN..]) {
                Ok(n) => super::rtp::RTP_HEADER_LEN + n,
                Err(_) => 0,
            }
        });
        self.seq = self.seq.wrapping_add(1);
        self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
        self.counters.sent_octets = self
            .counters
            .sent_octets
            .wrapping_add(ngmedia_codecs::dtmf::EVENT_LEN as u32);
    }

    /// The next free queue slot (the oldest packet is dropped when the queue is full).
    fn reserve_slot(&mut self) -> usize {
        if self.queued == QUEUE {
            self.head = (self.head + 1) % QUEUE;
            self.queued -= 1;
            self.counters.overflow += 1;
        }
        let slot = (self.head + self.queued) % QUEUE;
        self.queued += 1;
        slot
    }

    fn unreserve_slot(&mut self) {
        self.queued -= 1;
    }

    fn queue_packet(&mut self, build: impl FnOnce(&mut [u8]) -> usize) {
        let slot = self.reserve_slot();
        let len = build(&mut self.queue[slot * SLOT..(slot + 1) * SLOT]);
        if len == 0 {
            self.unreserve_slot();
        } else {
            self.queue_len[slot] = len;
        }
    }

    fn handle_event(&mut self, h: &RtpHeader<'_>, payload: &[u8]) {
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
            self.marker = true;
        }
        let Some(state) = self.event.as_mut() else {
            return;
        };
        let was_ended = state.ended;
        state.ended |= ev.end;
        if let Some(pt) = self.spec.output.event_pt {
            let duration = (ev.duration as u64 * out_clock / in_clock).min(u16::MAX as u64) as u16;
            let out_ev = TelephoneEvent { duration, ..ev };
            let marker = std::mem::take(&mut self.marker);
            let (seq, ts_out, ssrc) = (self.seq, state.out_ts, self.ssrc);
            let end_ts = ts_out.wrapping_add(duration as u32);
            self.queue_packet(|out| {
                write_header(out, marker, pt, seq, ts_out, ssrc);
                match out_ev.write(&mut out[super::rtp::RTP_HEADER_LEN..]) {
                    Ok(n) => super::rtp::RTP_HEADER_LEN + n,
                    Err(_) => 0,
                }
            });
            self.seq = self.seq.wrapping_add(1);
            self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
            self.counters.sent_octets = self.counters.sent_octets.wrapping_add(4);
            if ev.end && !was_ended {
                // Audio resumes after the event on the output timeline.
                if (end_ts.wrapping_sub(self.ts) as i32) > 0 {
                    self.ts = end_ts;
                }
                self.marker = true;
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

    /// Copy the next output RTP packet into `buf`; `None` when the queue is empty or `buf`
    /// is too small for it (the packet is then dropped).
    pub fn poll_output(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.queued == 0 {
            return None;
        }
        let slot = self.head;
        self.head = (self.head + 1) % QUEUE;
        self.queued -= 1;
        let len = self.queue_len[slot];
        let dst = buf.get_mut(..len)?;
        dst.copy_from_slice(&self.queue[slot * SLOT..slot * SLOT + len]);
        Some(len)
    }

    /// Reception statistics since the last call (RFC 3550 A.3); `None` before any input.
    pub fn reception(&mut self) -> Option<Reception> {
        let st = self.input.as_mut()?;
        let expected = st.max_seq.wrapping_sub(st.base_seq).wrapping_add(1);
        let lost = expected as i64 - st.received as i64;
        let expected_interval = expected.wrapping_sub(st.expected_prior);
        let received_interval = st.received.wrapping_sub(st.received_prior);
        st.expected_prior = expected;
        st.received_prior = st.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        Some(Reception {
            ssrc: st.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: st.max_seq,
            jitter: st.jitter_q4 >> 4,
        })
    }
}

fn write_header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    out[0] = 0x80;
    out[1] = (marker as u8) << 7 | (pt & 0x7f);
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// CNAME we put in the SDES of generated RTCP.
const CNAME: &[u8] = b"ngmedia";

/// Write a compound RTCP packet from us as the sender `ssrc`: an SR when `sender` is given
/// (packets, octets, RTP time), else an RR; one report block when `report` is given; then
/// SDES with our CNAME (RFC 3550 §6.1 requires it in every compound packet). `ntp` is the
/// wall clock in NTP 32.32 format. Returns the length, 0 when `out` is too small.
pub fn write_rtcp_report(
    out: &mut [u8],
    ssrc: u32,
    ntp: u64,
    sender: Option<(u32, u32, u32)>,
    report: Option<&Reception>,
) -> usize {
    let blocks = report.is_some() as usize;
    let head = if sender.is_some() { 28 } else { 8 };
    let rr_len = head + 24 * blocks;
    let sdes_items = 2 + CNAME.len() + 1; // type, length, text, end of list
    let sdes_len = (8 + sdes_items).div_ceil(4) * 4;
    let total = rr_len + sdes_len;
    let Some(out) = out.get_mut(..total) else {
        return 0;
    };
    out.fill(0);
    out[0] = 0x80 | blocks as u8;
    out[1] = if sender.is_some() { 200 } else { 201 };
    out[2..4].copy_from_slice(&((rr_len / 4 - 1) as u16).to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = 8;
    if let Some((rtp_ts, packets, octets)) = sender {
        out[8..16].copy_from_slice(&ntp.to_be_bytes());
        out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
        out[20..24].copy_from_slice(&packets.to_be_bytes());
        out[24..28].copy_from_slice(&octets.to_be_bytes());
        at = 28;
    }
    if let Some(r) = report {
        out[at..at + 4].copy_from_slice(&r.ssrc.to_be_bytes());
        out[at + 4] = r.fraction_lost;
        let cum = (r.cumulative_lost as u32 & 0xFF_FFFF).to_be_bytes();
        out[at + 5..at + 8].copy_from_slice(&cum[1..]);
        out[at + 8..at + 12].copy_from_slice(&r.extended_highest_seq.to_be_bytes());
        out[at + 12..at + 16].copy_from_slice(&r.jitter.to_be_bytes());
        // LSR and DLSR stay 0: we do not track the peer's SRs on terminated RTCP.
        at += 24;
    }
    let s = &mut out[at..];
    s[0] = 0x81;
    s[1] = 202;
    s[2..4].copy_from_slice(&((sdes_len / 4 - 1) as u16).to_be_bytes());
    s[4..8].copy_from_slice(&ssrc.to_be_bytes());
    s[8] = 1; // CNAME
    s[9] = CNAME.len() as u8;
    s[10..10 + CNAME.len()].copy_from_slice(CNAME);
    total
}

#[cfg(test)]
mod tests;
