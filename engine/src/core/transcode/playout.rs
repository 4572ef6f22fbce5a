//! Timed playout of a [`Transcoder`]'s input: rtpengine's DTX buffer (`--dtx-delay` and its
//! companions, `codec.c`) and a jitter buffer for decoded streams (`--jitter-buffer`).
//!
//! Without it a transcoder decodes each packet the moment it arrives (after reordering),
//! so what it sends follows the sender's timing: a pause in the input is a pause in the
//! output, and a packet that comes too late is lost. With it, every packet is held for a
//! fixed delay and a clock decodes one packet time per tick:
//! * the first packet starts the clock, which ticks `delay` later and then once per
//!   packet time (the output's ptime until a packet has been decoded, then the duration of
//!   the last decoded packet, in the input's timestamps: `tspp`);
//! * at a tick the next packet in sequence is decoded when its timestamp is due: at most
//!   one packet time after the last one decoded (`2 * tspp` is not yet due), or far
//!   enough away to be a timestamp reset (behind, or more than `max(20 * delay, 200 ms)`
//!   ahead);
//! * when the packet due is missing but later ones are held, the time is filled by the
//!   decoder's concealment (Opus PLC, G.729 erasure, AMR's no-data frame) and its sequence
//!   number is given up on; reordering within the delay is invisible to the receiver;
//! * when nothing is held, the sender paused (DTX, or silence suppression). With
//!   `--dtx-delay` the tick makes a packet time of audio anyway, as rtpengine does:
//!   silence, comfort noise from the `--dtx-cn-params` payload, or for AMR the codec's
//!   own DTX (a no-data frame continues the noise its last SID described) unless
//!   `--amr-dtx=CN`. After `--max-dtx` seconds without input the clock stops, to start
//!   again with the next packet. With the jitter buffer alone the clock stops at once.
//! * The clock follows the sender's (rtpengine's `__dtx_handle_drift`): with
//!   `--dtx-shift` set, a packet decoded sooner than `delay` after it arrived, or one
//!   whose timestamp has fallen behind the clock, moves the clock later by the shift (the
//!   second one is dropped), and a buffer holding more than `--dtx-buffer` packets that
//!   span `--dtx-lag` moves it earlier; with a shift of 0, such a packet is dropped or the
//!   clock's timestamp moved back instead.
//!
//! Output packets made at a tick have sequence numbers and timestamps on the same line as
//! the others (see the module docs of [`Transcoder`]): filled time takes numbers after the
//! last packet sent, and the next real packet continues after them.
//!
//! Nothing here allocates: held packets stay in the sequencer's buffer, the noise
//! generator is built with the playout state.

use ngmedia_codecs::cn::{CnPayload, NoiseGenerator};
use ngmedia_codecs::CodecKind;

use ngmedia_codecs::Resampler;

use super::{Transcoder, FIFO};
use crate::core::rtp::RtpHeader;

/// Ticks run in one call to [`Transcoder::handle_timeout`] at most; a worker further
/// behind than this restarts the clock from now rather than bursting (a receiver's jitter
/// buffer would drop a burst anyway).
const MAX_CATCH_UP: u32 = 10;
/// Packets held at most before one is decoded at once, whatever the clock says: the
/// sequencer's capacity, less room for the packet being inserted.
const HOLD_LIMIT: usize = super::sequencer::SLOTS - 2;
/// Smallest gap (µs) that counts as a timestamp reset rather than a pause (rtpengine's
/// `MAX(20 * dtx_delay, 200000)`).
const RESET_MIN_US: i64 = 200_000;

/// How decoded streams are played out (rtpengine's `--dtx-*`, `--amr-dtx` and
/// `--jitter-buffer` options). Off unless one of the delays is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// `--dtx-delay`: ms each packet is held; transmission pauses are filled (0: off).
    pub dtx_delay_ms: u32,
    /// `--jitter-buffer`: packet times each packet is held (0: off). Pauses are not
    /// filled unless `dtx_delay_ms` is set too; the longer delay of the two applies.
    pub jitter_packets: u32,
    /// `--max-dtx`: stop filling this many seconds after the last packet (`None`: never).
    pub max_dtx_s: Option<u32>,
    /// `--dtx-buffer`: packets held before the clock counts as behind.
    pub buffer_packets: u32,
    /// `--dtx-lag`: ms of audio held before the clock counts as behind.
    pub lag_ms: u32,
    /// `--dtx-shift`: ms the clock moves when it is behind or ahead (0: drop instead).
    pub shift_ms: u32,
    /// `--dtx-cn-params`: pauses are filled with this comfort noise instead of silence.
    pub cn: Option<CnPayload>,
    /// `--amr-dtx=CN`: AMR pauses are filled like other codecs' rather than by the codec.
    pub amr_cn: bool,
}

impl Default for PlayoutConfig {
    /// rtpengine's defaults: everything off, 30 s of DTX, 10 packets or 100 ms of lag,
    /// 5 ms shift.
    fn default() -> PlayoutConfig {
        PlayoutConfig {
            dtx_delay_ms: 0,
            jitter_packets: 0,
            max_dtx_s: Some(30),
            buffer_packets: 10,
            lag_ms: 100,
            shift_ms: 5,
            cn: None,
            amr_cn: false,
        }
    }
}

impl PlayoutConfig {
    /// Whether decoded streams are played out on a clock at all.
    pub fn enabled(&self) -> bool {
        self.dtx_delay_ms > 0 || self.jitter_packets > 0
    }

    fn delay_ms(&self, ptime_ms: u32) -> u32 {
        self.dtx_delay_ms
            .max(self.jitter_packets.saturating_mul(ptime_ms))
    }
}

/// The playout clock of one transcoder (rtpengine: `dtx_buffer`).
#[derive(Debug)]
pub(super) struct Playout {
    cfg: PlayoutConfig,
    /// When the next tick is due (monotonic ms); `None` while the clock is stopped.
    next_tick_ms: Option<u64>,
    /// Packet time of a tick, and the same in input timestamp units.
    ptime_ms: u32,
    tspp: u32,
    /// Input timestamp of the last tick (`None` until the first packet is decoded).
    head_ts: Option<u32>,
    /// When the last packet arrived, for `--max-dtx`.
    last_rx_ms: u64,
    /// Comfort noise for pauses (`--dtx-cn-params`).
    noise: Option<NoiseGenerator>,
    /// The noise's way from 8 kHz to the internal rate, when that is faster.
    noise_up: Option<Resampler>,
    /// The last packet decoded was a telephone-event: its duration already moved the
    /// output timeline, so the pause until audio resumes is not filled.
    in_event: bool,
}

/// What fills the time of a tick with no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// The decoder's concealment (a lost packet, or AMR's own DTX).
    Conceal,
    Silence,
    Noise,
}

impl Transcoder {
    /// Play decoded input out on a clock (see the module docs); `None` or a config with
    /// no delay decodes each packet on arrival (the default).
    pub fn set_playout(&mut self, cfg: Option<PlayoutConfig>) {
        let cfg = cfg.filter(PlayoutConfig::enabled);
        if cfg == self.playout.as_ref().map(|p| p.cfg) {
            return;
        }
        self.playout = cfg.map(|cfg| {
            let ptime_ms = self.spec.output.ptime_ms.clamp(1, 200);
            let (mut noise, mut noise_up) = (None, None);
            if let Some(payload) = cfg.cn {
                let mut g = NoiseGenerator::new();
                g.update(&payload);
                noise = Some(g);
                if self.pcm_rate != NoiseGenerator::PCM_RATE {
                    noise_up =
                        Resampler::unfiltered(NoiseGenerator::PCM_RATE, self.pcm_rate, 10).ok();
                }
            }
            Box::new(Playout {
                cfg,
                next_tick_ms: None,
                ptime_ms,
                tspp: self.spec.input.codec.clock_rate / 1000 * ptime_ms,
                head_ts: None,
                last_rx_ms: 0,
                noise,
                noise_up,
                in_event: false,
            })
        });
    }

    /// When [`Transcoder::handle_timeout`] is next due (monotonic ms); `None` when no
    /// clock runs.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.playout.as_ref()?.next_tick_ms
    }

    /// Run the ticks due at `now_ms`; their output is queued for
    /// [`Transcoder::poll_output`].
    pub fn handle_timeout(&mut self, now_ms: u64) {
        for _ in 0..MAX_CATCH_UP {
            if self.poll_timeout().is_none_or(|t| t > now_ms) {
                return;
            }
            self.tick(now_ms);
            if let Some(p) = self.playout.as_mut() {
                if let Some(t) = p.next_tick_ms.as_mut() {
                    // Still `due`, or moved by the drift checks: the next tick is a packet
                    // time on (the last decoded packet's duration).
                    *t += p.ptime_ms as u64;
                }
            }
        }
        if let Some(p) = self.playout.as_mut() {
            if let Some(t) = p.next_tick_ms.as_mut() {
                if *t <= now_ms {
                    *t = now_ms + p.ptime_ms as u64;
                }
            }
        }
    }

    /// Hold an input packet for the clock (in place of decoding it now); duplicates and
    /// oversized packets are counted and dropped.
    pub(super) fn hold(&mut self, now_ms: u64, seq: u16, packet: &[u8]) {
        match self.sequencer.insert_at(seq, packet, now_ms) {
            super::sequencer::Insert::Duplicate => {
                self.counters.late += 1;
                return;
            }
            super::sequencer::Insert::TooLarge => {
                self.counters.errors += 1;
                return;
            }
            super::sequencer::Insert::Reset { expected } => {
                self.seq_diff = self.seq_diff.wrapping_sub(seq.wrapping_sub(expected));
            }
            super::sequencer::Insert::Queued => {}
        }
        self.counters.received += 1;
        let Some(p) = self.playout.as_mut() else {
            return;
        };
        p.last_rx_ms = now_ms;
        if p.next_tick_ms.is_none() {
            p.next_tick_ms = Some(now_ms + p.cfg.delay_ms(p.ptime_ms) as u64);
        }
        if self.sequencer.held() >= HOLD_LIMIT {
            // Far more than the clock can use: decode one now rather than lose one.
            self.tick(now_ms);
        }
    }

    /// The clock was stopped or restarted (new SSRC).
    pub(super) fn reset_playout(&mut self) {
        if let Some(p) = self.playout.as_mut() {
            p.next_tick_ms = None;
            p.head_ts = None;
            p.in_event = false;
        }
    }

    /// One tick: decode the packet due, or fill its time.
    fn tick(&mut self, now_ms: u64) {
        let clock = self.spec.input.codec.clock_rate.max(1) as i64;
        loop {
            let Some(p) = self.playout.as_deref() else {
                return;
            };
            let (tspp, head) = (p.tspp as i64, p.head_ts);
            let reset_us = (20 * p.cfg.dtx_delay_ms as i64 * 1000).max(RESET_MIN_US);
            let peeked = self.sequencer.peek();
            let due = peeked.filter(|pk| match head {
                None => true,
                Some(h) => {
                    let d = pk.ts.wrapping_sub(h) as i32 as i64;
                    d < 0 || d * 1_000_000 / clock > reset_us || d < 2 * tspp
                }
            });
            let Some(pk) = due else {
                self.fill_tick(now_ms, peeked.map(|pk| pk.missing > 0));
                return;
            };
            let Some(r) = self.sequencer.pop(0) else {
                return;
            };
            let ts_diff = head.map_or(tspp, |h| pk.ts.wrapping_sub(h) as i32 as i64);
            let tv_diff = now_ms.saturating_sub(pk.at_ms);
            let start = r.slot * super::sequencer::SLOT_BYTES;
            let is_event = self
                .sequencer
                .buf
                .get(start..start + r.len)
                .and_then(|p| RtpHeader::parse(p).ok())
                .is_some_and(|h| Some(h.payload_type()) == self.spec.input.event_pt);
            if let Some(p) = self.playout.as_mut() {
                p.head_ts = Some(pk.ts);
            }
            if self.drift(pk.ts, tv_diff, ts_diff, is_event) {
                // Dropped: the input packet is used up all the same.
                self.seq_diff = self.seq_diff.wrapping_sub(1);
                self.counters.late += 1;
                continue;
            }
            // Borrow the held packet while `self` is updated (an empty box allocates nothing).
            let held = std::mem::take(&mut self.sequencer.buf);
            let packet = &held[start..start + r.len];
            self.last_units = 0;
            self.process(packet, r.lost as u32);
            self.sequencer.buf = held;
            let units = self.last_units;
            let in_clock = self.spec.input.codec.clock_rate.max(1);
            if let Some(p) = self.playout.as_mut() {
                p.in_event = is_event;
                if units > 0 {
                    p.tspp = units;
                    p.ptime_ms = (units as u64 * 1000 / in_clock as u64).clamp(1, 200) as u32;
                }
            }
            return;
        }
    }

    /// rtpengine's `__dtx_handle_drift`: move the clock toward the sender's, or say to
    /// drop the packet.
    fn drift(&mut self, ts: u32, tv_diff: u64, ts_diff: i64, is_event: bool) -> bool {
        let newest = self.sequencer.newest_timestamp();
        let held = self.sequencer.held() as u32;
        let clock = self.spec.input.codec.clock_rate.max(1) as i64;
        let Some(p) = self.playout.as_mut() else {
            return false;
        };
        let shift = p.cfg.shift_ms as u64;
        let overflow = held >= p.cfg.buffer_packets
            && newest.is_some_and(|n| {
                let d = n.wrapping_sub(ts) as i32 as i64;
                d * 1000 / clock >= p.cfg.lag_ms as i64
            });
        // A telephone-event's packets share one timestamp.
        let static_event = ts_diff == 0 && is_event;
        if shift > 0 {
            if tv_diff < p.cfg.delay_ms(p.ptime_ms) as u64 {
                // Decoded too soon after arrival: the sender is slower than the clock.
                p.next_tick_ms = p.next_tick_ms.map(|t| t + shift);
                false
            } else if ts_diff < p.tspp as i64 && !static_event {
                p.next_tick_ms = p.next_tick_ms.map(|t| t + shift);
                true
            } else {
                if overflow {
                    p.next_tick_ms = p.next_tick_ms.map(|t| t.saturating_sub(shift));
                }
                false
            }
        } else if ts_diff < p.tspp as i64 && !static_event {
            p.head_ts = p.head_ts.map(|h| h.wrapping_sub(p.tspp));
            false
        } else {
            overflow
        }
    }

    /// A tick with no packet due: `lost` says whether later packets are held (`Some(true)`:
    /// the one due was lost) or not (`None`: nothing held, a pause; `Some(false)`: the next
    /// packet's timestamp is ahead of the clock, a pause too).
    fn fill_tick(&mut self, now_ms: u64, lost: Option<bool>) {
        let kind = self.spec.input.codec.kind();
        let is_amr = matches!(kind, CodecKind::Amr | CodecKind::AmrWb);
        let Some(p) = self.playout.as_mut() else {
            return;
        };
        let Some(head) = p.head_ts else {
            // Nothing decoded yet and nothing held: wait for the first packet.
            p.next_tick_ms = None;
            return;
        };
        p.head_ts = Some(head.wrapping_add(p.tspp));
        let units = p.tspp;
        let expired = p
            .cfg
            .max_dtx_s
            .is_some_and(|s| now_ms.saturating_sub(p.last_rx_ms) >= s as u64 * 1000);
        let fill = if is_amr && !p.cfg.amr_cn {
            Fill::Conceal
        } else if p.noise.is_some() {
            Fill::Noise
        } else {
            Fill::Silence
        };
        let (fills_pauses, in_event) = (p.cfg.dtx_delay_ms > 0, p.in_event);
        if lost == Some(true) {
            self.sequencer.skip();
            self.fill(Fill::Conceal, units, true);
        } else if !fills_pauses || expired {
            if lost.is_none() {
                // Nothing held: the clock stops until the next packet.
                self.reset_playout();
            }
        } else if !in_event {
            // (After a telephone-event its duration covers this time already.)
            self.fill(fill, units, false);
        }
    }

    /// Make `units` (input timestamp units) of audio without a packet and encode it. A
    /// `lost` packet takes the next input sequence number; a pause takes none (the output
    /// numbering moves on, the next input packet's continues after it).
    fn fill(&mut self, fill: Fill, units: u32, lost: bool) {
        let in_clock = self.spec.input.codec.clock_rate.max(1);
        if lost {
            self.cur_seq = self.cur_seq.wrapping_add(1);
            self.counters.concealed += 1;
        } else {
            self.seq_diff = self.seq_diff.wrapping_add(1);
        }
        match fill {
            Fill::Conceal => {
                let samples = self.conceal_len(self.to_decoder_samples(units));
                let ch = self.decoder.channels() as usize;
                if samples > 0 {
                    let n = match self.decoder.conceal(samples, &mut self.scratch) {
                        Ok(n) => n / ch.max(1),
                        Err(_) => {
                            self.scratch[..samples * ch].fill(0);
                            samples
                        }
                    };
                    self.push_pcm_from_scratch(n, ch);
                }
            }
            Fill::Silence | Fill::Noise => {
                let n = (units as u64 * self.pcm_rate as u64 / in_clock as u64) as usize;
                let n = n.min(FIFO - self.fifo_len);
                let start = self.fifo_len;
                self.fifo[start..start + n].fill(0);
                if fill == Fill::Noise {
                    self.noise_into_fifo(start, n);
                }
                self.fifo_len += n;
            }
        }
        if let Some(st) = self.input.as_mut() {
            st.next_ts = st.next_ts.wrapping_add(units);
        }
        self.encode_ready();
        self.seq_diff = self.seq_diff.wrapping_sub(1);
    }

    /// Comfort noise from the playout's generator over `fifo[start..start + n]` at the
    /// internal rate. As in rtpengine, the generator runs at 8 kHz (its CN decoder) and
    /// a faster rate takes its output through a resampler without a filter (rtpengine's
    /// `no_filter`), straight to the encoder: not through the rate stage of the audio,
    /// whose last samples wait there for the next packet.
    fn noise_into_fifo(&mut self, start: usize, n: usize) {
        let Some(p) = self.playout.as_mut() else {
            return;
        };
        let (Some(g), up) = (p.noise.as_mut(), p.noise_up.as_mut()) else {
            return;
        };
        let Some(up) = up else {
            let n = n.min(self.scratch.len());
            g.generate(&mut self.scratch[..n]);
            self.fifo[start..start + n].copy_from_slice(&self.scratch[..n]);
            return;
        };
        let (in_frame, out_frame) = (up.input_frame_len(), up.output_frame_len());
        let frames = (n / out_frame).min(self.scratch.len() / in_frame);
        g.generate(&mut self.scratch[..frames * in_frame]);
        for (k, chunk) in self.scratch[..frames * in_frame]
            .chunks_exact(in_frame)
            .enumerate()
        {
            let at = start + k * out_frame;
            // Sizes hold by construction (10 ms frames of a rate in RATES).
            let _ = up.process(chunk, &mut self.fifo[at..at + out_frame]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rtp::RTP_HEADER_LEN;
    use crate::core::transcode::{write_header, CodecEnd, PtSet, TranscodeSpec};
    use ngmedia_codecs::g711::{alaw_decode, ulaw_encode};
    use ngmedia_codecs::Codec;

    fn end(name: &str, rate: u32, pt: u8) -> CodecEnd {
        CodecEnd {
            codec: Codec::lookup(name, rate, None, None).unwrap(),
            pt,
            ptime_ms: 20,
            event_pt: None,
            bitrate: None,
            cn_pt: None,
            dtx: false,
            cmr_interval_ms: 0,
            mode_change_interval_ms: 0,
        }
    }

    fn transcoder(input: CodecEnd, output: CodecEnd, cfg: PlayoutConfig) -> Transcoder {
        let mut t = Transcoder::new(TranscodeSpec {
            input,
            output,
            detect_dtmf: false,
            passthrough: PtSet::NONE,
        })
        .unwrap();
        t.set_playout(Some(cfg));
        t
    }

    fn dtx(delay_ms: u32) -> PlayoutConfig {
        PlayoutConfig {
            dtx_delay_ms: delay_ms,
            ..PlayoutConfig::default()
        }
    }

    fn jitter(packets: u32) -> PlayoutConfig {
        PlayoutConfig {
            jitter_packets: packets,
            ..PlayoutConfig::default()
        }
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; RTP_HEADER_LEN];
        write_header(&mut p, false, pt, seq, ts, 0x5678);
        p.extend_from_slice(payload);
        p
    }

    /// A 20 ms PCMU packet of a 400 Hz tone.
    fn tone(seq: u16, ts: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..160u32)
            .map(|i| {
                let n = (ts.wrapping_add(i)) as f64;
                ulaw_encode(
                    (6000.0 * (2.0 * std::f64::consts::PI * 400.0 * n / 8000.0).sin()) as i16,
                )
            })
            .collect();
        rtp(0, seq, ts, &payload)
    }

    /// (seq, ts, payload) of every packet queued.
    fn drain(t: &mut Transcoder) -> Vec<(u16, u32, Vec<u8>)> {
        let mut buf = [0u8; 2048];
        let mut v = Vec::new();
        while let Some(n) = t.poll_output(&mut buf) {
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            v.push((
                h.sequence_number(),
                h.timestamp(),
                h.payload().unwrap().to_vec(),
            ));
        }
        v
    }

    /// Run the clock from `from` to `to` ms in 1 ms steps, as a worker would, collecting
    /// the output.
    fn run(t: &mut Transcoder, from: u64, to: u64, out: &mut Vec<(u16, u32, Vec<u8>)>) {
        for now in from..=to {
            t.handle_timeout(now);
            out.extend(drain(t));
        }
    }

    fn line(out: &[(u16, u32, Vec<u8>)]) -> Vec<(u16, u32)> {
        out.iter().map(|o| (o.0, o.1)).collect()
    }

    #[test]
    fn a_pause_is_filled_with_silence_on_the_output_line() {
        // rtpengine's "G.711 DTX" (auto-daemon-tests-dtx.pl), --dtx-delay=10.
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), dtx(10));
        t.handle_rtp(0, &rtp(0, 2000, 4000, &[0x40; 160]));
        assert!(drain(&mut t).is_empty(), "held for the delay");
        let mut out = Vec::new();
        assert_eq!(t.poll_timeout(), Some(10));
        run(&mut t, 0, 15, &mut out);
        t.handle_rtp(16, &rtp(0, 2001, 4160, &[0x40; 160]));
        run(&mut t, 16, 75, &mut out);
        t.handle_rtp(76, &rtp(0, 2002, 4640, &[0x40; 160]));
        run(&mut t, 76, 95, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(
            line(&out),
            [
                (2000, 4000),
                (2001, 4160),
                (2002, 4320),
                (2003, 4480),
                (2004, 4640)
            ]
        );
        assert_eq!(out[0].2, [0x68; 160]);
        assert_eq!(out[2].2, [0xd5; 160], "silence in PCMA");
        assert_eq!(out[3].2, [0xd5; 160]);
        assert_eq!(out[4].2, [0x68; 160]);
        assert_eq!(t.counters().concealed, 0);
    }

    #[test]
    fn dtx_cn_params_fill_a_pause_with_rtpengines_noise() {
        // auto-daemon-tests-dtx-cn.pl, --dtx-cn-params=10: the first bytes of the noise.
        let mut cfg = dtx(10);
        cfg.cn = Some(CnPayload::flat(10));
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), cfg);
        let mut out = Vec::new();
        t.handle_rtp(0, &rtp(0, 2000, 4000, &[0x40; 160]));
        run(&mut t, 0, 55, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(line(&out), [(2000, 4000), (2001, 4160), (2002, 4320)]);
        assert_eq!(&out[1].2[..4], &[0x8c, 0x68, 0x02, 0x87]);
        assert_eq!(&out[2].2[..4], &[0x9a, 0x87, 0x6a, 0x08]);
    }

    #[test]
    fn dtx_noise_toward_g722_is_rtpengines() {
        // auto-daemon-tests-dtx-cn.pl, "G.722 DTX" (--dtx-delay=10 --dtx-cn-params=10):
        // PCMU in, G.722 out; after the third input packet the clock fills the pause with
        // comfort noise, taken to 16 kHz without a filter and encoded after the audio the
        // rate stage has given out so far; the rest of that audio follows the noise.
        const EXPECTED: [&str; 5] = [
            "3a9624862184048c4dd0d1d294d5d5d6d7d898d8d8d8d8d8d8d8d9d9dadadadbdc9adadb9cdada9cdadadbdcdadbdddbdbdcdadbdbdddadbdcdadadadcd9d9dbdcd8d8dadbdcd8d9dadbdbdbdedadbdbdbdbdbdedadadbdbdbdbdedadbdbdbdbdbdedadbdcd6dcd7ffd8d8dadadbd9dcd9dbdcd6ddd8d9dcd7fcd7ddd9d9dbdcd9d9dbded9d8dbdfdadaddd9d9dadedadbdfdcd5dbffd6dedcd9d9d8ddd9dafe",
            "d7fed5dddadcddd7f9d6dcd7f9dbd9ffd7fcd6fcded8ddd9ded9defed7fcdbddd9ddffd7f9d9dbffd8deddfed9dafcdddbfcfddadafbd9dcdcfedadbf8dadddafbd6fedcd9fed6f9d9dcdbffdbdcdadffed5dedfdfdbdedfdbdcd9dddafed7fed8d7f9d7fad5dffed3f8dadedadddcd6fcdcd7fddaded8d8dedcd9dbfad5d8dcdadfdedfdcd3fad6ffd9deded7ffd6fed7fad8d6ffd8d9dbf9dad7ffd9d8dafa",
            "d8d6ffd9d8dafad8d6fcdadadcdbfbd3fcdcd5ddddded8dafed5dafddbddd8dbddd8dafed8d8d9dcdadddedcd6dcd9dadfffd7ded9d7fed9dedcd8d6dbfcdadddcd7ddd5dedffed7dcd6ddd9defbd4d7ffd7fed9fcd9d5dcd8dcdcdcd9d7ffd5dbf9dbddd5dcd8d7f5dbded8d7ffd6f8dedcd5d8dcd7f5ddd9d7dedcd5fafed6dcd6ffd6f9dfdcd6dbfed5fededed8d49b2c84228620129025153c93aa988da6",
            "949a3f2f1753b2b2371491b15a2ed9bdf858368b6694379a367b8a736d7a7cd93787eaf22e963392119c7624be563a89d727f0787bd6883fb826982a90ca2fd7f36ff3d28f2f79902cf07b8c35955d71f69c7c7d378d77fc7130d7fdd2dabe2730d7d95d9036ef76785f8ed67671fb72fe3ecfde7497f271fa90382f8cde2addd6fc749235bd7134dc8f73df7c7377958f70ff2edc7f34d392dfbb70742ddc5c",
            "d0d7972bfa94fc72335d36d6d5d99929d87234da8d74dc986e71d5dafe7630d59470dbdc952cdd74328f743679dbdf9932725d32d3d834fdda2d9378912ad5797092dd966f7595fe787892742cd731db9030fd73752ed037d9d97bd9792cd88e70df34769774da8f7273de94997479fe94fc2cd97f2e3137cd7ad2d9732b7a375c38ce37757c317e2cd079d47a94752b7691d79379fddefffedcd9dadb5b5cdd",
        ];
        let mut cfg = dtx(10);
        cfg.cn = Some(CnPayload::flat(10));
        let mut t = transcoder(end("PCMU", 8000, 0), end("G722", 8000, 9), cfg);
        let mut out = Vec::new();
        t.handle_rtp(0, &rtp(0, 2000, 4000, &[0x40; 160]));
        run(&mut t, 0, 10, &mut out);
        t.handle_rtp(10, &rtp(0, 2001, 4160, &[0x40; 160]));
        run(&mut t, 10, 30, &mut out);
        t.handle_rtp(30, &rtp(0, 2002, 4320, &[0x40; 160]));
        run(&mut t, 30, 100, &mut out);
        t.handle_rtp(100, &rtp(0, 2003, 4800, &[0x40; 160]));
        run(&mut t, 100, 130, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(hex_payloads(&out, EXPECTED.len()), EXPECTED);
    }

    /// The first `n` payloads of `out` in hex, to compare with rtpengine's test strings.
    fn hex_payloads(out: &[(u16, u32, Vec<u8>)], n: usize) -> Vec<String> {
        out.iter()
            .take(n)
            .map(|o| o.2.iter().map(|b| format!("{b:02x}")).collect())
            .collect()
    }

    #[test]
    fn dtx_noise_from_g722_is_rtpengines() {
        // auto-daemon-tests-dtx-cn.pl, "G.722 reverse DTX": G.722 in (one payload, sent
        // five times), PCMU out; the third input packet is followed by a pause of 60 ms.
        const INPUT: &str = "3a9624862184048c4dd0d1d294d5d5d6d7d898d8d8d8d8d8d8d8d9d9dadadadbdc9adadb9cdada9cdadadbdcdadbdddbdbdcdadbdbdddadbdcdadadadcd9d9dbdcd8d8dadbdcd8d9dadbdbdbdedadbdbdbdbdbdedadadbdbdbdbdedadbdbdbdbdbdedadbdcd6dcd7ffd8d8dadadbd9dcd9dbdcd6ddd8d9dcd7fcd7ddd9d9dbdcd9d9dbded9d8dbdfdadaddd9d9dadedadbdfdcd5dbffd6dedcd9d9d8ddd9dafe";
        const EXPECTED: [&str; 6] = [
            "7eff7efe7dfd7cfd7d7ef04f44414041404040403f4040404040404040403f404040414040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040",
            "40404040413f45425943bd17000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000101020203040404050506060607070808080909090a0a0a0b0b0c0c0c0d0d0d0e0e0e0e0f0f0f",
            "0f101011111213141719220c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010101020203030404050506a54028adbda43ce6321e42213550b4ac",
            "da2237a6aa262b2ead3124293bb4205e1f5e2eb5a43631d4b3a0b29e2f3a236b27dc3fb23029a5384abb1f33acb3a9a7b239ab34b01fa51e2da62eff47412523b0ad2bb757ae30a429bf552a1f3746b02acc2eacacfdbf2e2d26a2a0babfbc34a8bbac9faf262e47d238cb64a93dbcf02341443c1faeaf1fc7a74c4b644a25c127aaacde27ab39b2b7b92826d3399e30afad3e2123204e49aacbae2e321fac2d",
            "1e2bb89fa29e6e3f2528ad24a8ab611eba1e28aeaf293d43a99e2924b1372a20ac39a3b728acadaf433f2ea7abbdaa2a3db04d44ad234d219e1ea6c6272e27a6c9263db7c924a9a63da42925a05ca7a59f299f316b532bbca11f1fa738a5d52eac261ea1cc2f202db3bc3c1fc4a32fbda1a4bd1ec01f41a8a2e3b571b622a3bdc6a9f19e20ae26c224a7a26f202d1faea0cddda7d3be2740afa849d237aa4131",
            "ae2b9f229fe8b8b6a829db4dca1e9e332defa12b46b21fa5cfb0a026b1b72eabb6231ef4aa20af2eaa1fadad1fa648c13d266861ed20d2daa320235935b144229ecc2a3620a7afa7a421b2a32b224722be9e2d289e9f2aad22c6b22524c89eb9a2a856a121e51f54ac68afb41feaafb926b42852a99e21bb601fab9ea22da538a729bda326a1a92f26a03a4cab29a8b0070708080809090a0a0a0b0b0b0c0c0c",
        ];
        let input: Vec<u8> = (0..INPUT.len() / 2)
            .map(|i| u8::from_str_radix(&INPUT[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut cfg = dtx(10);
        cfg.cn = Some(CnPayload::flat(10));
        let mut t = transcoder(end("G722", 8000, 9), end("PCMU", 8000, 0), cfg);
        let mut out = Vec::new();
        t.handle_rtp(0, &rtp(9, 2000, 4000, &input));
        run(&mut t, 0, 10, &mut out);
        t.handle_rtp(10, &rtp(9, 2001, 4160, &input));
        run(&mut t, 10, 30, &mut out);
        t.handle_rtp(30, &rtp(9, 2002, 4320, &input));
        run(&mut t, 30, 100, &mut out);
        t.handle_rtp(100, &rtp(9, 2003, 4960, &input));
        run(&mut t, 100, 130, &mut out);
        out.extend(drain(&mut t));
        let got = hex_payloads(&out, EXPECTED.len());
        // Decoding the same G.722 frame again drives the decoder into saturation (the long
        // runs of 0x00 in packets 1 and 2): ngmedia's decoder saturates as libavcodec's,
        // rtpengine's, does, so every packet is rtpengine's.
        assert_eq!(got, EXPECTED);
    }

    #[test]
    fn the_tick_follows_the_packet_time_of_the_input() {
        // 30 ms packets: the clock ticks every 30 ms and fills 30 ms, which the 20 ms
        // encoder sends as 1.5 packets per tick.
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), dtx(10));
        let mut out = Vec::new();
        t.handle_rtp(0, &rtp(0, 2000, 4000, &[0x40; 240]));
        run(&mut t, 0, 10, &mut out);
        assert_eq!(t.poll_timeout(), Some(40));
        run(&mut t, 11, 70, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(
            line(&out),
            [(2000, 4000), (2001, 4160), (2002, 4320), (2003, 4480)]
        );
        assert_eq!(out[1].2[..80], [0x68; 80]);
        assert_eq!(out[1].2[80..], [0xd5; 80]);
    }

    #[test]
    fn reordering_within_the_jitter_buffer_is_undone() {
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), jitter(3));
        let mut out = Vec::new();
        // 60 ms of delay: packet 3 overtakes packet 2 by 15 ms.
        t.handle_rtp(0, &tone(1, 160));
        t.handle_rtp(20, &tone(3, 480));
        t.handle_rtp(35, &tone(2, 320));
        t.handle_rtp(60, &tone(4, 640));
        run(&mut t, 0, 130, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(line(&out), [(1, 160), (2, 320), (3, 480), (4, 640)]);
        let c = t.counters();
        assert_eq!((c.concealed, c.late, c.received), (0, 0, 4));
        // The decoded tone is continuous across the reordered packets (a 400 Hz sine at
        // 6000 steps by 1900 at most).
        let pcm: Vec<i16> = out
            .iter()
            .flat_map(|o| o.2.iter().map(|&b| alaw_decode(b)))
            .collect();
        let jumps = pcm
            .windows(2)
            .filter(|w| (w[1] as i32 - w[0] as i32).abs() > 2500)
            .count();
        assert_eq!(jumps, 0, "no discontinuity");
    }

    #[test]
    fn a_packet_missing_at_its_time_is_concealed_and_a_late_one_dropped() {
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), jitter(2));
        let mut out = Vec::new();
        t.handle_rtp(0, &tone(1, 160));
        t.handle_rtp(20, &tone(3, 480));
        t.handle_rtp(40, &tone(4, 640));
        run(&mut t, 0, 75, &mut out);
        // Packet 2's time (tick at 60) has passed when it comes.
        t.handle_rtp(76, &tone(2, 320));
        run(&mut t, 76, 110, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(line(&out), [(1, 160), (2, 320), (3, 480), (4, 640)]);
        assert_eq!(out[1].2, [0xd5; 160], "G.711 conceals with silence");
        let c = t.counters();
        assert_eq!((c.concealed, c.late), (1, 1));
    }

    #[test]
    fn without_dtx_delay_a_pause_stops_the_clock() {
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), jitter(1));
        let mut out = Vec::new();
        t.handle_rtp(0, &tone(1, 160));
        run(&mut t, 0, 45, &mut out);
        assert_eq!(t.poll_timeout(), None, "nothing held, nothing filled");
        // A new talk spurt after a pause continues the output line without a gap.
        t.handle_rtp(500, &tone(2, 4160));
        run(&mut t, 500, 525, &mut out);
        out.extend(drain(&mut t));
        assert_eq!(line(&out), [(1, 160), (2, 320)]);
    }

    #[test]
    fn max_dtx_ends_the_filling() {
        let mut cfg = dtx(10);
        cfg.max_dtx_s = Some(1);
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), cfg);
        let mut out = Vec::new();
        t.handle_rtp(0, &tone(1, 160));
        run(&mut t, 0, 1200, &mut out);
        out.extend(drain(&mut t));
        // One packet and fill until 1 s after it (ticks at 30..=990 ms), then the clock
        // stops.
        assert_eq!(out.len(), 1 + 49);
        assert_eq!(t.poll_timeout(), None);
        let last = out.last().unwrap();
        assert_eq!((last.0, last.1), (50, 160 + 49 * 160));
    }

    #[test]
    fn packets_faster_than_the_clock_speed_it_up() {
        // A burst of 12 packets (240 ms) at once: more than --dtx-buffer packets spanning
        // more than --dtx-lag, so each tick moves the clock 5 ms earlier.
        let mut t = transcoder(end("PCMU", 8000, 0), end("PCMA", 8000, 8), dtx(10));
        let mut out = Vec::new();
        for k in 0..12u16 {
            t.handle_rtp(0, &tone(k + 1, 160 * (k as u32 + 1)));
        }
        run(&mut t, 0, 10, &mut out);
        assert_eq!(
            t.poll_timeout(),
            Some(25),
            "20 ms packet time less the 5 ms shift"
        );
    }
}
