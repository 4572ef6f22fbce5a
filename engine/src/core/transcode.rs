//! Sans-IO transcoder for one direction of one stream (rtpengine's `codec_handler` with its
//! `decoder`/`encoder` pair and the packetizer of `codec.c`).
//!
//! `handle_rtp(now, packet)` takes one received RTP packet of the input codec (or its
//! telephone-event), `poll_output(buf)` hands out the RTP packets it produced until `None`.
//! The output follows rtpengine's rules for transcoded streams (`codec.c`), so that a
//! receiver sees the same packets from either engine:
//! * our own SSRC (random);
//! * the input's sequence numbers, shifted by a running difference that grows by one for
//!   every packet we produce and shrinks by one for every input packet we consume
//!   (rtpengine's `seq_diff`): one packet in, one out keeps the number; 60 ms in as three
//!   20 ms packets makes room for the two extra; a sequence reset of the sender is
//!   absorbed, so the output numbering never jumps;
//! * timestamps that start at the first input packet's timestamp and advance by exactly
//!   the audio produced, in the output codec's clock (a 16 kHz input and an 8 kHz output
//!   start on the same number, then step 160 per 20 ms); gaps in the input's timestamps
//!   (silence suppression, a timestamp reset) do not show in the output;
//! * the marker bit only where a telephone-event starts (the sender's marker when it is
//!   forwarded, ours when a digit is detected in-band);
//! * input packets are reordered first ([`sequencer`]): an early packet waits for the
//!   ones before it, a missing one is given up after ten later packets or 60 ms.
//!
//! * Audio is decoded to mono PCM at one internal rate, the encoder's: 8 kHz toward G.711
//!   and G.729, 16 kHz toward G.722, and toward Opus the narrower band of the two sides
//!   (8 kHz from a narrowband codec, 16 kHz from G.722, 48 kHz from Opus). libopus decodes
//!   and encodes at any of these rates natively, so Opus never needs a resampler; the only
//!   one is between G.722's 16 kHz and the 8 kHz codecs ([`RateStage`], 10 ms frames),
//!   because G.722's 8 kHz shortcut (its lower sub-band alone) measured 14 dB SNR against
//!   34 dB through a real resampler.
//! * G.722 counts RTP time at 8000 Hz while its audio is 16 kHz (RFC 3551 §4.5.2,
//!   rtpengine's `clockrate_mult`): input timestamps convert through the clock rate of the
//!   SDP (8000) and the decoder's PCM rate (16000), output timestamps advance by the
//!   codec's clock (160 per 20 ms), never by the sample count.
//! * PCM collects in a FIFO and leaves it one output frame at a time, so 10 ms G.729
//!   frames become 20 ms Opus packets and 60 ms input becomes three 20 ms packets.
//! * Loss (a sequence gap with a timestamp gap of at most [`MAX_CONCEAL_MS`]) is filled by
//!   the decoder's concealment (Opus PLC, or its in-band FEC for the packet just before the
//!   one that arrived; G.729 erasure frames; silence for G.711), each concealed packet
//!   taking the sequence number of the one it replaces. rtpengine drops the lost time
//!   instead; concealing keeps the receiver's playout in step with the sender. A stream
//!   conceals at most [`audio::CONCEAL_PER_SECOND`] lost packets a second (bursts of up to
//!   [`audio::CONCEAL_BURST`]); past that, lost time is dropped as rtpengine drops it, so a
//!   worker whose sockets overflow does not spend more on concealment the further behind
//!   it falls.
//! * telephone-event (RFC 4733) is forwarded with the output side's payload type, its
//!   timestamp placed on the output timeline and its duration scaled to the output clock;
//!   the output timeline moves on by the event's duration, and the sender's audio during
//!   the event is dropped (the event replaces it). When the output side has no
//!   telephone-event the digit is rendered in-band as a DTMF tone instead.
//! * In-band DTMF detection ([`TranscodeSpec::detect_dtmf`]: `detect DTMF`, or DTMF
//!   transcoding toward a side with telephone-event): the decoded PCM goes through a
//!   detector with the timing of rtpengine's (spandsp's, 102-sample blocks at 8 kHz);
//!   each digit start and end is queued with its position on the output timeline. The
//!   first output frame at or after a start goes out as an RFC 4733 report instead of
//!   audio (the other side's payload type, marker, duration one frame), each further frame
//!   as a report with the duration grown by a frame, and the first frame at or after the
//!   end as the end report, three times; audio resumes after it. The receiver does not
//!   see the digit twice, and the packets are the ones rtpengine sends.
//!
//! * Opus is encoded at [`OPUS_DEFAULT_BITRATE`] unless the plan gives a bitrate, with the
//!   complexity [`opus_complexity`] picks for it and the PCM rate (narrowband or wider); both
//!   were chosen by measuring PESQ against CPU (docs/performance.md, "Transcoding
//!   performance").
//!
//! Everything a packet needs (codec state, PCM FIFO, scratch and the output queue) is
//! allocated in [`Transcoder::new`]; the packet path allocates nothing.

mod audio;
mod cn;
mod dtmf;
mod playout;
mod rtcp;
mod sequencer;
mod spec;

pub use playout::PlayoutConfig;
pub use rtcp::{random_cname, write_rtcp_report, Reception, CNAME_LEN};
pub use spec::{
    opus_complexity, CodecEnd, PtSet, SilenceDetect, TranscodeCounters, TranscodeError,
    TranscodeSpec, OPUS_DEFAULT_BITRATE,
};

use dtmf::{Detected, EventState, PendingDtmf, PENDING_DTMF};
use ngmedia_codecs::dtmf::DtmfDetector;
use ngmedia_codecs::{Codec, CodecKind, CodecParams, Decoder, Encoder, EncoderOptions, Resampler};
use sequencer::{Insert, Sequencer, SLOT_BYTES, WAIT_PACKETS};

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
/// Resampler frame between G.722 and the 8 kHz codecs: 10 ms, the shortest the resampler
/// takes, so at most 10 ms of audio waits in [`RateStage`].
const RATE_STAGE_MS: u32 = 10;

/// Converts decoded PCM to the internal rate when the decoder's rate differs (G.722 or
/// G.711 at another clock rate on one side, an 8 kHz codec on the other). rtpengine: the
/// `resample_t` of a codec handler.
///
/// The resampler starts as rtpengine's (libswresample) does: the time before the stream
/// is the stream's start mirrored, not silence, so a steady signal comes out steady from
/// its first sample; and its delay is not passed on (the mirrored frame's output and the
/// delay are dropped), so output sample `n` is input time `n`. The first input packet
/// then yields less than a packet of output and goes out only with the next one.
#[derive(Debug)]
struct RateStage {
    resampler: Resampler,
    /// Mono decoder output waiting for a whole resampler frame.
    pending: Box<[i16]>,
    pending_len: usize,
    /// Output samples still to drop: the resampler's delay at the start of the stream.
    skip: usize,
    /// The mirrored start of the stream, fed once before its first frame.
    prime: Box<[i16]>,
    primed: bool,
}
/// A missing input packet is given up on once the newest one is this far ahead of the
/// last one used (rtpengine's "timestamp difference too large" in `codec.c`).
const FORCE_AFTER_US: u64 = 60_000;
/// Audio this far (input clock units) from a telephone-event's start is not part of it:
/// the event state is stale and audio flows again (rtpengine: `packet_decode`).
const EVENT_STALE_UNITS: u32 = 80_000;

#[derive(Debug, Clone, Copy)]
struct InputState {
    ssrc: u32,
    base_seq: u32,
    /// Extended highest sequence number seen.
    max_seq: u32,
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

/// Transcoder for one direction of one stream. rtpengine: `codec_handler` + `ssrc_ctx`.
#[derive(Debug)]
pub struct Transcoder {
    spec: TranscodeSpec,
    decoder: Decoder,
    encoder: Encoder,
    /// Internal PCM rate (mono): the encoder's.
    pcm_rate: u32,
    /// Decoder rate → internal rate, when they differ.
    rate_stage: Option<RateStage>,
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
    /// Detector results not yet reached by the encoder.
    pending_dtmf: [PendingDtmf; PENDING_DTMF],
    pending_dtmf_len: usize,
    /// The digit the detector holds (event, volume, start), and the last one that ended,
    /// until the worker reports it.
    dtmf_started: Option<(u8, u8, u32)>,
    dtmf_report: Option<crate::core::dtmf_log::DtmfReport>,
    /// Input reordering.
    sequencer: Sequencer,
    /// Timestamp of the last input packet used (rtpengine's `last_ts`), to give up on a
    /// missing packet after [`FORCE_AFTER_US`].
    last_ts: Option<u32>,
    /// Sequence number of the input packet being processed.
    cur_seq: u16,
    /// Output sequence number = input sequence number + this (rtpengine's `seq_diff`).
    seq_diff: u16,
    /// Output RTP line: SSRC, the timestamp of the next output frame (set from the first
    /// input packet), the marker for the next packet.
    /// In-band digits masked while DTMF is blocked (`block DTMF`).
    mask: Option<Box<dtmf::InbandMask>>,
    /// In-band digit starts watched for the party's DTMF triggers.
    watch: Option<Box<dtmf::DigitWatch>>,
    /// Output RTP line.
    ssrc: u32,
    ts: u32,
    ts_based: bool,
    marker: bool,
    counters: TranscodeCounters,
    last_rx_ms: u64,
    conceal_budget: audio::ConcealBudget,
    /// The output carries the input's SSRC (see [`Transcoder::keep_input_ssrc`]).
    ssrc_from_input: bool,
    /// Noise generator for the input's CN packets (when the input side has CN).
    noise: Option<Box<ngmedia_codecs::cn::NoiseGenerator>>,
    /// Silence detection toward an output side with CN.
    silence: Option<SilenceDetect>,
    /// Timed playout (DTX buffer, jitter buffer), when configured.
    playout: Option<Box<playout::Playout>>,
    /// Input timestamp units of audio the last decoded packet gave (the playout clock's
    /// packet time).
    last_units: u32,
    /// The codec mode request (AMR CMR) of the last input payload that carried one, until
    /// [`Transcoder::take_cmr`] hands it to the other direction's encoder.
    cmr_in: Option<u8>,
    /// The AMR decoder's `CMR-interval` / `mode-change-interval` watch, when asked for.
    rate_watch: Option<ngmedia_codecs::amr::RateWatch>,
    /// What the watch asked of the encoder toward the same party, not yet handed over.
    rate_request: ngmedia_codecs::amr::RateRequest,
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

/// AMR requests from the decoder of one direction to the encoder of the other (toward the
/// same party). rtpengine: the `CE_AMR_CMR_RECV` and `CE_AMR_SEND_CMR` decoder events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmrRequests {
    /// The party's CMR: the mode it wants to receive.
    pub mode: Option<u8>,
    /// A mode to ask of the party (`CMR-interval`).
    pub send_cmr: Option<u8>,
    /// Move one mode up (`mode-change-interval` passed without a CMR).
    pub step_up: bool,
}

impl Transcoder {
    /// Build the codec state, buffers and the output RTP line (random SSRC; sequence
    /// numbers and timestamps follow the input, see the module docs).
    pub fn new(spec: TranscodeSpec) -> Result<Transcoder, TranscodeError> {
        for end in [&spec.input, &spec.output] {
            if end.codec.kind() == CodecKind::TelephoneEvent {
                return Err(TranscodeError::NotAudio("telephone-event"));
            }
        }
        let input = mono(spec.input.codec);
        let mut output = mono(spec.output.codec);
        if let (true, CodecParams::Opus(p)) = (spec.output.dtx, &mut output.params) {
            p.usedtx = true;
        }
        let pcm_rate = internal_rate(&input, &output);
        let decoder = input.decoder_at(if input.kind() == CodecKind::Opus {
            pcm_rate
        } else {
            input.pcm_rate()
        })?;
        let rate_stage = if decoder.pcm_rate() != pcm_rate {
            let resampler = Resampler::new(decoder.pcm_rate(), pcm_rate, RATE_STAGE_MS)?;
            Some(RateStage {
                pending: vec![0; SCRATCH + resampler.input_frame_len()].into_boxed_slice(),
                pending_len: 0,
                skip: resampler.latency_samples(),
                prime: vec![0; resampler.input_frame_len()].into_boxed_slice(),
                primed: false,
                resampler,
            })
        } else {
            None
        };
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
            opus_complexity: opus_complexity(opus_bitrate, pcm_rate),
            // `codec-set`'s bitrate picks the AMR or Speex mode (rtpengine: the encoder's
            // bit_rate).
            bitrate: spec.output.bitrate,
            amr_dtx: spec.output.dtx,
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
            rate_stage,
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
            pending_dtmf: [PendingDtmf::default(); PENDING_DTMF],
            pending_dtmf_len: 0,
            dtmf_started: None,
            dtmf_report: None,
            sequencer: Sequencer::new(),
            last_ts: None,
            cur_seq: 0,
            seq_diff: 0,
            mask: None,
            watch: None,
            ssrc: rand::random(),
            ssrc_from_input: false,
            ts: 0,
            ts_based: false,
            marker: false,
            counters: TranscodeCounters::default(),
            last_rx_ms: 0,
            conceal_budget: audio::ConcealBudget::default(),
            noise: spec
                .input
                .cn_pt
                .map(|_| Box::new(ngmedia_codecs::cn::NoiseGenerator::new())),
            silence: None,
            playout: None,
            last_units: 0,
            cmr_in: None,
            rate_watch: (matches!(input.kind(), CodecKind::Amr | CodecKind::AmrWb)
                && (spec.input.cmr_interval_ms > 0 || spec.input.mode_change_interval_ms > 0))
                .then(|| {
                    ngmedia_codecs::amr::RateWatch::new(
                        spec.input.cmr_interval_ms,
                        spec.input.mode_change_interval_ms,
                    )
                }),
            rate_request: Default::default(),
        })
    }

    /// The mode the sender asked for in its last AMR payload with a codec mode request (RFC
    /// 4867 §4.3.1: the mode it wants to receive), once. The worker hands it to the encoder
    /// of the other direction ([`Transcoder::request_mode`]), as rtpengine passes a
    /// decoder's CMR to the encoder toward the same party.
    ///
    /// With it, what the decoder's `CMR-interval` / `mode-change-interval` watch asks of that
    /// encoder: a CMR to send the party, a step up.
    pub fn take_cmr(&mut self) -> Option<AmrRequests> {
        let r = AmrRequests {
            mode: self.cmr_in.take(),
            send_cmr: self.rate_request.send_cmr.take(),
            step_up: std::mem::take(&mut self.rate_request.step_up),
        };
        (r != AmrRequests::default()).then_some(r)
    }

    /// Ask this transcoder's encoder to switch to AMR mode `cmr` (a CMR from the party it
    /// sends to), to ask that party for a mode, or to step one mode up; within the
    /// negotiated `mode-set` and `mode-change-*` rules, ignored for other codecs and modes out
    /// of range.
    pub fn request_mode(&mut self, r: AmrRequests) {
        if let ngmedia_codecs::EncoderKind::Amr(e) = &mut self.encoder.kind {
            if let Some(cmr) = r.mode {
                e.request_mode(cmr);
            }
            if let Some(cmr) = r.send_cmr {
                e.send_cmr(cmr);
            }
            if r.step_up {
                e.step_up();
            }
        }
    }

    pub fn spec(&self) -> &TranscodeSpec {
        &self.spec
    }

    /// Our SSRC on the output side.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Send with the SSRC of the input instead of our own: a subscriber's copy of a stream
    /// its source's peer receives untouched carries the same SSRC as the peer's (rtpengine
    /// gives every sink of a source one output SSRC).
    pub fn keep_input_ssrc(&mut self) {
        self.ssrc_from_input = true;
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
        if h.payload().is_err() {
            self.counters.errors += 1;
            return;
        }
        let pt = h.payload_type();
        if self.spec.passthrough.contains(pt) {
            self.relay(now_ms, packet, &h);
            return;
        }
        let is_event = Some(pt) == self.spec.input.event_pt;
        let is_cn = Some(pt) == self.spec.input.cn_pt;
        if pt != self.spec.input.pt && !is_event && !is_cn {
            self.counters.errors += 1;
            return;
        }
        if self.input.is_some_and(|st| st.ssrc != h.ssrc()) {
            self.restart_output();
        }
        if self.ssrc_from_input && self.input.is_none() {
            self.ssrc = h.ssrc();
        }
        self.track_input(now_ms, &h);
        let seq = h.sequence_number();
        self.last_rx_ms = now_ms;
        if self.playout.is_some() {
            self.hold(now_ms, seq, packet);
            return;
        }
        if self.sequencer.is_next_in_line(seq) {
            // In order with nothing held: no copy.
            self.sequencer.consume_direct(seq);
            self.counters.received += 1;
            self.process(packet, 0);
            return;
        }
        match self.sequencer.insert(seq, packet) {
            Insert::Duplicate => {
                self.counters.late += 1;
                return;
            }
            Insert::TooLarge => {
                self.counters.errors += 1;
                return;
            }
            Insert::Reset { expected } => {
                // The sender restarted its numbering: keep ours continuous.
                self.seq_diff = self.seq_diff.wrapping_sub(seq.wrapping_sub(expected));
            }
            Insert::Queued => {}
        }
        self.counters.received += 1;
        self.drain_sequencer(h.timestamp());
    }

    /// A packet of a payload type both sides share: sent on as it is, on our output line
    /// (our SSRC, the input's sequence number shifted like the transcoded packets', its own
    /// timestamp and marker). rtpengine: `handler_func_passthrough_ssrc`. Duplicates and
    /// reordering pass as they came, as they would without the transcoder.
    fn relay(&mut self, now_ms: u64, packet: &[u8], h: &RtpHeader<'_>) {
        if packet.len() > SLOT {
            self.counters.errors += 1;
            return;
        }
        if self.input.is_some_and(|st| st.ssrc != h.ssrc()) {
            self.restart_output();
        }
        if self.ssrc_from_input && self.input.is_none() {
            self.ssrc = h.ssrc();
        }
        self.track_input(now_ms, h);
        self.last_rx_ms = now_ms;
        self.counters.received += 1;
        let seq = h.sequence_number();
        if self.sequencer.held() == 0 {
            // The transcoded packets that follow continue from here, without a gap to
            // conceal.
            self.sequencer.consume_direct(seq);
        }
        // The next transcoded packet starts the output timeline on its own timestamp again,
        // as the relayed ones carry the sender's.
        self.ts_based = false;
        self.last_ts = Some(h.timestamp());
        let out_seq = seq.wrapping_add(self.seq_diff);
        let ssrc = self.ssrc;
        let header_len = packet.len() - h.payload().map_or(0, <[u8]>::len);
        self.queue_packet(|out| {
            let out = &mut out[..packet.len()];
            out.copy_from_slice(packet);
            out[2..4].copy_from_slice(&out_seq.to_be_bytes());
            out[8..12].copy_from_slice(&ssrc.to_be_bytes());
            out.len()
        });
        self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
        self.counters.sent_octets = self
            .counters
            .sent_octets
            .wrapping_add((packet.len() - header_len) as u32);
    }

    /// Process every packet the sequencer releases. `newest_ts` is the timestamp of the
    /// packet just received: once it is [`FORCE_AFTER_US`] past the last packet used, a
    /// missing packet is given up on.
    fn drain_sequencer(&mut self, newest_ts: u32) {
        // Measured in the input's clock (rtpengine divides by the output's, which only
        // differs between codecs of different clock rates, and then waits too long or not
        // long enough).
        let in_clock = self.spec.input.codec.clock_rate.max(1) as u64;
        loop {
            let released = match self.sequencer.pop(WAIT_PACKETS) {
                Some(r) => Some(r),
                None if self.sequencer.held() == 0 => None,
                None => {
                    let diff = newest_ts.wrapping_sub(self.last_ts.unwrap_or(newest_ts));
                    let overdue = diff != 0
                        && diff < 0x8000_0000
                        && diff as u64 * 1_000_000 / in_clock >= FORCE_AFTER_US;
                    overdue.then(|| self.sequencer.pop(0)).flatten()
                }
            };
            let Some(r) = released else {
                break;
            };
            // Borrow the held packet while `self` is updated (an empty box allocates nothing).
            let held = std::mem::take(&mut self.sequencer.buf);
            let start = r.slot * SLOT_BYTES;
            self.process(&held[start..start + r.len], r.lost as u32);
            self.sequencer.buf = held;
        }
    }

    /// Decode (or forward) one input packet in sequence order; `lost` packets are missing
    /// just before it.
    fn process(&mut self, packet: &[u8], lost: u32) {
        let Ok(h) = RtpHeader::parse(packet) else {
            return;
        };
        let Ok(payload) = h.payload() else {
            return;
        };
        let is_event = Some(h.payload_type()) == self.spec.input.event_pt;
        let ts = h.timestamp();
        self.last_ts = Some(match self.last_ts {
            // Several packets on one timestamp (a telephone-event's updates): count the
            // event's packet time, so the next audio is not taken for overdue.
            Some(last) if last.wrapping_sub(ts) < 0x8000_0000 => {
                if is_event {
                    let ptime = self.spec.input.ptime_ms.max(1);
                    last.wrapping_add(self.spec.input.codec.clock_rate * ptime / 1000)
                } else {
                    last
                }
            }
            _ => ts,
        });
        if !self.ts_based {
            self.ts = ts;
            self.ts_based = true;
        }
        self.cur_seq = h.sequence_number();
        if is_event {
            self.handle_event(&h, payload);
        } else if Some(h.payload_type()) == self.spec.input.cn_pt {
            self.handle_cn(&h, payload);
        } else {
            self.handle_audio(&h, payload, lost);
        }
        // One input packet consumed.
        self.seq_diff = self.seq_diff.wrapping_sub(1);
    }

    /// The sequence number for the next output packet.
    fn next_seq(&mut self) -> u16 {
        let seq = self.cur_seq.wrapping_add(self.seq_diff);
        self.seq_diff = self.seq_diff.wrapping_add(1);
        seq
    }

    /// The sender changed its SSRC: a new input stream, so a new output stream (rtpengine
    /// maps every input SSRC to its own output SSRC).
    fn restart_output(&mut self) {
        self.input = None;
        self.sequencer.reset();
        self.last_ts = None;
        self.seq_diff = 0;
        self.ssrc = rand::random();
        self.ts_based = false;
        self.event = None;
        self.marker = false;
        self.reset_playout();
    }

    /// Reception statistics (RFC 3550 A.1, simplified: no probation) and jitter, on
    /// arrival; ordering is the sequencer's business.
    fn track_input(&mut self, now_ms: u64, h: &RtpHeader<'_>) {
        let seq = h.sequence_number();
        let clock = self.spec.input.codec.clock_rate as i64;
        let arrival = now_ms as i64 * clock / 1000;
        let transit = arrival - h.timestamp() as i64;
        let st = self.input.get_or_insert(InputState {
            ssrc: h.ssrc(),
            base_seq: seq as u32,
            max_seq: seq as u32,
            next_ts: h.timestamp(),
            have_audio: false,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            transit: None,
        });
        // Extend to 32 bits around the highest sequence number seen.
        let delta = seq.wrapping_sub(st.max_seq as u16) as i16 as i32;
        let ext = (st.max_seq as i64 + delta as i64).max(0) as u32;
        if ext > st.max_seq {
            st.max_seq = ext;
        }
        st.received += 1;
        if let Some(prev) = st.transit {
            let d = (transit - prev).unsigned_abs().min(u32::MAX as u64 / 32) as u32;
            // J += (|D| - J) / 16, kept scaled by 16.
            st.jitter_q4 = st.jitter_q4 + d - ((st.jitter_q4 + 8) >> 4);
        }
        st.transit = Some(transit);
    }

    /// The next free queue slot (the oldest packet is dropped when the queue is full).
    fn reserve_slot(&mut self) -> usize {
        if self.queued == 0 {
            // An empty queue starts over at its first slot: a packet per input packet then
            // always lands in the same, cache-warm, slot rather than walking the whole queue.
            self.head = 0;
        }
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
            // The sender's SRs end at our RTCP socket, not here.
            lsr: 0,
            dlsr: 0,
        })
    }
}

/// The internal PCM rate of a transcoder from `input` to `output`: the encoder's rate, and
/// toward Opus the band the input can carry (nothing is gained by encoding 48 kHz Opus from
/// 8 kHz G.711, and libopus takes 8 and 16 kHz directly).
fn internal_rate(input: &Codec, output: &Codec) -> u32 {
    let band = |c: &Codec| match c.kind() {
        CodecKind::Opus => 48_000,
        _ => c.pcm_rate(),
    };
    match output.kind() {
        CodecKind::Opus => band(input),
        _ => output.pcm_rate(),
    }
}

fn write_header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    out[0] = 0x80;
    out[1] = (marker as u8) << 7 | (pt & 0x7f);
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests;
