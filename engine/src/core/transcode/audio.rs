//! The audio path of a [`Transcoder`]: decode, conceal loss, collect PCM in the FIFO and
//! encode it one output frame at a time.

use ngmedia_codecs::{CodecKind, Decoder, Resampler};

use super::{write_header, Transcoder, EVENT_STALE_UNITS, FIFO, MAX_CONCEAL_MS, SLOT};
use crate::core::rtp::RtpHeader;

/// Lost packets a stream conceals per second on average (10 % loss of 20 ms packets)...
pub(super) const CONCEAL_PER_SECOND: u64 = 5;
/// ...and at once: twice the longest gap concealed ([`MAX_CONCEAL_MS`]) in 20 ms packets.
pub(super) const CONCEAL_BURST: u64 = 10;

/// A token bucket over lost packets. Concealing a lost packet costs a decode and an encode;
/// when a worker falls behind and its sockets drop packets, unbounded concealment would
/// spend more of its time the further behind it is. Lost time beyond the budget is dropped
/// from the output, as rtpengine drops it.
#[derive(Debug)]
pub(super) struct ConcealBudget {
    /// Thousandths of a packet.
    milli: u64,
    last_ms: u64,
}

impl Default for ConcealBudget {
    fn default() -> Self {
        ConcealBudget {
            milli: CONCEAL_BURST * 1000,
            last_ms: 0,
        }
    }
}

impl ConcealBudget {
    /// Whether `lost` packets may be concealed at `now_ms`; takes them from the budget if so.
    pub(super) fn take(&mut self, now_ms: u64, lost: u32) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli = (self.milli + elapsed * CONCEAL_PER_SECOND).min(CONCEAL_BURST * 1000);
        let need = u64::from(lost) * 1000;
        if self.milli < need {
            return false;
        }
        self.milli -= need;
        true
    }
}

impl Transcoder {
    pub(super) fn handle_audio(&mut self, h: &RtpHeader<'_>, payload: &[u8], lost_packets: u32) {
        if payload.is_empty() {
            return;
        }
        let ts = h.timestamp();
        // A telephone-event in progress replaces the audio (rtpengine drops the sender's
        // audio while a DTMF event runs), unless the event is long stale.
        if let Some(e) = &self.event {
            if !e.ended {
                if ts.wrapping_sub(e.in_ts) as i32 as i64 >= EVENT_STALE_UNITS as i64
                    || e.in_ts.wrapping_sub(ts) as i32 as i64 >= EVENT_STALE_UNITS as i64
                {
                    self.event = None;
                } else {
                    return;
                }
            }
        }
        let in_clock = self.spec.input.codec.clock_rate;
        let (have_audio, next_ts) = match &self.input {
            Some(st) => (st.have_audio, st.next_ts),
            None => (false, ts),
        };
        let gap = if have_audio {
            ts.wrapping_sub(next_ts) as i32
        } else {
            0
        };
        let max_gap = (in_clock / 1000 * MAX_CONCEAL_MS) as i32;
        if lost_packets > 0 && gap > 0 && gap <= max_gap {
            if self.conceal_budget.take(self.last_rx_ms, lost_packets) {
                let samples = self.to_decoder_samples(gap as u32);
                self.conceal(samples, payload, lost_packets);
            } else {
                self.counters.unconcealed += u64::from(lost_packets);
            }
        }
        // Any other timestamp gap (silence suppression, a reset) does not show in the
        // output: its timestamps count the audio produced.
        let n = match self.decoder.decode(payload, &mut self.scratch) {
            Ok(n) => n,
            Err(_) => {
                self.counters.errors += 1;
                return;
            }
        };
        if let Decoder::Amr(d) = &self.decoder {
            if d.last_cmr() != ngmedia_codecs::amr::NO_CMR {
                self.cmr_in = Some(d.last_cmr());
            }
            if let Some(w) = &mut self.rate_watch {
                let mode_set = self.spec.input.codec.amr_params().mode_set;
                let r = w.handle_payload(
                    self.last_rx_ms,
                    d.band(),
                    mode_set,
                    d.last_cmr(),
                    d.last_frame_types(),
                );
                self.rate_request.send_cmr = r.send_cmr.or(self.rate_request.send_cmr);
                self.rate_request.step_up |= r.step_up;
            }
        }
        let ch = self.decoder.channels() as usize;
        let frames = n / ch.max(1);
        let before = self.fifo_len;
        self.push_pcm_from_scratch(frames, ch);
        self.detect_pcm(before, self.fifo_len - before);
        self.watch_pcm(before, self.fifo_len - before);
        // Input clock units from decoder samples (G.722: 320 samples are 160 units).
        let units = (frames as u64 * in_clock as u64 / self.decoder.pcm_rate() as u64) as u32;
        self.last_units = units;
        if let Some(st) = &mut self.input {
            st.have_audio = true;
            st.next_ts = ts.wrapping_add(units);
        }
        self.encode_ready();
    }

    /// Input clock units → samples at the decoder's rate.
    pub(super) fn to_decoder_samples(&self, units: u32) -> usize {
        (units as u64 * self.decoder.pcm_rate() as u64 / self.spec.input.codec.clock_rate as u64)
            as usize
    }

    /// Fill `samples` of lost audio; the last lost packet is recovered from `next`'s FEC
    /// where the codec has it.
    fn conceal(&mut self, samples: usize, next: &[u8], lost: u32) {
        let samples = self.conceal_len(samples);
        if samples == 0 {
            return;
        }
        let ch = self.decoder.channels() as usize;
        let lost = lost.max(1);
        let per_packet = (samples / lost as usize).max(1);
        // Each concealed packet stands for one lost input packet and takes its sequence
        // number; the packet that arrived comes after them.
        let arrived = self.cur_seq;
        self.cur_seq = arrived.wrapping_sub(lost as u16);
        let mut done = 0;
        let mut packet = 0;
        while done < samples {
            packet += 1;
            let last = packet >= lost;
            let chunk = if last {
                samples - done
            } else {
                per_packet.min(samples - done)
            };
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
            self.encode_ready();
            self.seq_diff = self.seq_diff.wrapping_sub(1);
            self.cur_seq = self.cur_seq.wrapping_add(1);
        }
        // Fewer chunks than lost packets (very short gap): the rest are skipped numbers.
        self.cur_seq = arrived;
        self.counters.concealed += lost as u64;
    }

    /// The most samples (at the decoder's rate, at most `samples`) the decoder conceals in
    /// one go: whole frames of the codec.
    pub(super) fn conceal_len(&self, samples: usize) -> usize {
        let samples = samples.min(FIFO / 2);
        let quantum = match self.spec.input.codec.kind() {
            // Silence: cheaper than decoding and what rtpengine does for G.711 and G.722.
            _ if matches!(self.decoder, Decoder::G711(..)) => 1,
            CodecKind::G722 => 1,
            CodecKind::G729 => 80,
            // Whole 20 ms frames: the decoder conceals (or continues comfort noise) per frame.
            CodecKind::Amr | CodecKind::AmrWb | CodecKind::Speex => {
                (self.decoder.pcm_rate() / 50) as usize
            }
            // Opus frames are multiples of 2.5 ms.
            _ => (self.decoder.pcm_rate() / 400) as usize,
        };
        samples - samples % quantum.max(1)
    }

    /// Append `frames` of the decoder's scratch output (interleaved `ch` channels) to the
    /// FIFO as mono, through the rate stage when the decoder runs at another rate.
    pub(super) fn push_pcm_from_scratch(&mut self, frames: usize, ch: usize) {
        if self.rate_stage.is_some() {
            self.push_resampled(frames, ch);
            return;
        }
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

    /// Mono decoder output into the rate stage, and every whole resampler frame on to the
    /// FIFO at the internal rate. Whole frames of mono output with nothing pending go from
    /// the decoder's scratch straight through the resampler; only a remainder is kept.
    fn push_resampled(&mut self, frames: usize, ch: usize) {
        let Some(stage) = self.rate_stage.as_mut() else {
            return;
        };
        let in_frame = stage.resampler.input_frame_len();
        if ch <= 1 && stage.primed && stage.pending_len == 0 {
            let whole = frames - frames % in_frame;
            for input in self.scratch[..whole].chunks_exact(in_frame) {
                resample_frame(
                    &mut stage.resampler,
                    &mut stage.skip,
                    input,
                    &mut self.fifo,
                    &mut self.fifo_len,
                    &mut self.counters.errors,
                );
            }
            let rest = &self.scratch[whole..frames.min(whole + stage.pending.len())];
            stage.pending[..rest.len()].copy_from_slice(rest);
            stage.pending_len = rest.len();
            return;
        }
        let room = stage.pending.len() - stage.pending_len;
        let frames = frames.min(room);
        let dst = &mut stage.pending[stage.pending_len..stage.pending_len + frames];
        if ch <= 1 {
            dst.copy_from_slice(&self.scratch[..frames]);
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                let l = self.scratch[i * ch] as i32;
                let r = self.scratch[i * ch + 1] as i32;
                *d = ((l + r) / 2) as i16;
            }
        }
        stage.pending_len += frames;
        let out_frame = stage.resampler.output_frame_len();
        if !stage.primed && stage.pending_len > 0 {
            // The first frame's samples mirrored around the first one: x[n], …, x[1].
            let last = stage.pending_len - 1;
            for (i, p) in stage.prime.iter_mut().enumerate() {
                *p = stage.pending[(in_frame - i).min(last)];
            }
            stage.primed = true;
            // Its output only primes the resampler: written past the FIFO's end, not kept
            // (the FIFO is all but empty at the start of a stream).
            if let Some(spare) = self.fifo.get_mut(self.fifo_len..self.fifo_len + out_frame) {
                if stage.resampler.process(&stage.prime, spare).is_err() {
                    self.counters.errors += 1;
                }
            }
        }
        let mut used = 0;
        while stage.pending_len - used >= in_frame {
            resample_frame(
                &mut stage.resampler,
                &mut stage.skip,
                &stage.pending[used..used + in_frame],
                &mut self.fifo,
                &mut self.fifo_len,
                &mut self.counters.errors,
            );
            used += in_frame;
        }
        if used > 0 {
            stage.pending.copy_within(used..stage.pending_len, 0);
            stage.pending_len -= used;
        }
    }

    fn drop_fifo(&mut self, n: usize) {
        let n = n.min(self.fifo_len);
        if n < self.fifo_len {
            self.fifo.copy_within(n..self.fifo_len, 0);
        }
        self.fifo_len -= n;
    }

    /// Encode every complete output frame in the FIFO.
    pub(super) fn encode_ready(&mut self) {
        let frame = self.encoder.frame_samples();
        let step = self.encoder.timestamp_step();
        let mut used = 0;
        while self.fifo_len - used >= frame {
            self.mask_frame(used, frame);
            if self.detect_frame(step) {
                used += frame;
                continue;
            }
            let slot = self.reserve_slot();
            let out = &mut self.queue[slot * SLOT..(slot + 1) * SLOT];
            let pcm = &self.fifo[used..used + frame];
            used += frame;
            let len = match self
                .encoder
                .encode(pcm, &mut out[crate::core::rtp::RTP_HEADER_LEN..])
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
            // A silent frame toward a side with CN leaves as comfort noise.
            let pcm = &self.fifo[used - frame..used];
            let (pt, len) = super::cn::silence_payload(
                self.silence.as_ref(),
                self.spec.output.cn_pt,
                pcm,
                &mut out[crate::core::rtp::RTP_HEADER_LEN..],
            )
            .unwrap_or((self.spec.output.pt, len));
            let marker = std::mem::take(&mut self.marker);
            let seq = self.cur_seq.wrapping_add(self.seq_diff);
            self.seq_diff = self.seq_diff.wrapping_add(1);
            let out = &mut self.queue[slot * SLOT..(slot + 1) * SLOT];
            write_header(out, marker, pt, seq, self.ts, self.ssrc);
            self.queue_len[slot] = crate::core::rtp::RTP_HEADER_LEN + len;
            self.ts = self.ts.wrapping_add(step);
            self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
            self.counters.sent_octets = self.counters.sent_octets.wrapping_add(len as u32);
        }
        if used > 0 {
            self.drop_fifo(used);
        }
    }
}

/// One resampler frame from `input` appended to the FIFO (`fifo[..*fifo_len]`), less the
/// `skip` samples left of the resampler's start-up delay (see `RateStage`).
fn resample_frame(
    resampler: &mut Resampler,
    skip: &mut usize,
    input: &[i16],
    fifo: &mut [i16],
    fifo_len: &mut usize,
    errors: &mut u64,
) {
    let out_frame = resampler.output_frame_len();
    if fifo.len() - *fifo_len < out_frame {
        // Cannot happen with a polled queue; keep the newest audio.
        let n = out_frame.min(*fifo_len);
        fifo.copy_within(n..*fifo_len, 0);
        *fifo_len -= n;
    }
    let at = *fifo_len;
    match resampler.process(input, &mut fifo[at..at + out_frame]) {
        Ok(n) => {
            let dropped = (*skip).min(n);
            if dropped > 0 {
                fifo.copy_within(at + dropped..at + n, at);
                *skip -= dropped;
            }
            *fifo_len += n - dropped;
        }
        Err(_) => *errors += 1,
    }
}
