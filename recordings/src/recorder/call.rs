//! A recorded call's audio path: count each packet, decode it, place it on the call's
//! timeline and mix it into the pending output (and copy it to the pcap).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufWriter;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ngmedia_codecs::{Codec, CodecKind, Decoder};
use ngmedia_engine::core::tap::{TapCall, TapCodec, TapPacket, TapStream};
use tracing::warn;

use super::files::{create_new, part};
use super::{CallRec, RecorderConfig, RecorderStats, StreamRec};
use crate::pcap::PcapWriter;
use crate::rate::StreamRate;
use crate::store::{RecordingStore, PCAP_SUFFIX};
use crate::timeline::StreamTimeline;
use crate::RecordingError;

/// A packet placed this far beyond the written position is bogus (a stream timestamp jump
/// the timeline did not catch); it is dropped instead of allocating a huge buffer.
const MAX_AHEAD_MS: u64 = 10_000;
/// Bytes a pcap record adds to the packet: record header, IPv4 and UDP headers (IPv6 adds
/// 20 more; the byte counter is an operator's estimate, not an audit).
const PCAP_RECORD_OVERHEAD: u64 = 16 + 20 + 8;

impl CallRec {
    pub(super) fn new(
        id: String,
        info: TapCall,
        start_ms: u64,
        stats: Arc<RecorderStats>,
    ) -> CallRec {
        CallRec {
            id,
            info,
            start_ms,
            rate: None,
            paused_since: None,
            pauses: Vec::new(),
            stop_ms: None,
            close_at: None,
            streams: BTreeMap::new(),
            pending: [Vec::new(), Vec::new()],
            written: 0,
            files: None,
            pcap: None,
            pcap_failed: false,
            failed: None,
            stats,
        }
    }

    pub(super) fn fail(&mut self, e: RecordingError, stats: &RecorderStats) {
        if self.failed.is_none() {
            warn!(call_id = %self.info.call_id, id = %self.id, error = %e, "recording failed; the call goes on");
            stats.failed.fetch_add(1, Relaxed);
            self.failed = Some(e.to_string());
            self.files = None;
            self.pcap = None;
            self.pending = [Vec::new(), Vec::new()];
        }
    }

    /// The output rate: the highest PCM rate of the codec each party uses (its first codec
    /// the other party also has), so 8 kHz for G.711/G.729 calls and 48 kHz once a party
    /// uses Opus (decoded natively at 48 kHz). A 16 kHz codec (G.722, L16/16000) would give a
    /// 16 kHz recording through the same rule, but the codecs registry has none yet, so
    /// wideband recordings are 48 kHz today. Unknown codecs count as 8 kHz.
    pub(super) fn choose_rate(&self) -> u32 {
        // Events and comfort noise say nothing about the audio's rate.
        let audio = |c: &&TapCodec| {
            !c.name.eq_ignore_ascii_case("telephone-event") && !c.name.eq_ignore_ascii_case("CN")
        };
        // The party's first codec its peer also has (an offer lists several); in a
        // transcoded call the lists do not meet, and the party's first audio codec is used.
        let used = |leg: usize| -> Option<&TapCodec> {
            let list = self.info.legs.get(leg)?.medias.first()?;
            let peer: Vec<String> = self
                .info
                .legs
                .get(1 - leg.min(1))
                .and_then(|o| o.medias.first())
                .map(|m| {
                    m.iter()
                        .filter(audio)
                        .map(|c| c.name.to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            list.iter()
                .filter(audio)
                .find(|c| peer.contains(&c.name.to_ascii_lowercase()))
                .or_else(|| list.iter().find(audio))
        };
        let pcm_rate = |c: &TapCodec| {
            Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref())
                .ok()
                .filter(|k| k.kind() != CodecKind::TelephoneEvent)
                .map_or(8_000, |k| k.pcm_rate())
        };
        let best = (0..self.info.legs.len().min(2))
            .filter_map(used)
            .map(pcm_rate)
            .max()
            .unwrap_or(8_000);
        // Snap to a rate the resampler and WAV players handle.
        match best {
            0..=8_000 => 8_000,
            8_001..=16_000 => 16_000,
            _ => 48_000,
        }
    }

    pub(super) fn rate(&mut self) -> u32 {
        let r = match self.rate {
            Some(r) => r,
            None => self.choose_rate(),
        };
        self.rate = Some(r);
        r
    }

    /// Output position of a wall-clock time.
    pub(super) fn pos_of_ms(&self, ms: u64, rate: u32) -> i64 {
        (ms.saturating_sub(self.start_ms) as i64) * i64::from(rate) / 1000
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn take(
        &mut self,
        p: &TapPacket,
        config: &RecorderConfig,
        store: &RecordingStore,
        scratch: &mut [i16],
        mono: &mut Vec<i16>,
        out: &mut Vec<i16>,
        stats: &RecorderStats,
    ) -> Result<(), RecordingError> {
        if config.format.pcap() && !self.pcap_failed {
            if self.pcap.is_none() {
                let path = part(store, &self.id, PCAP_SUFFIX);
                let file = create_new(&path)?;
                self.pcap = Some(
                    PcapWriter::new(BufWriter::new(file))
                        .map_err(|e| RecordingError::Io(path, e))?,
                );
            }
            if let Some(w) = &mut self.pcap {
                self.stats
                    .bytes
                    .fetch_add(PCAP_RECORD_OVERHEAD + p.bytes().len() as u64, Relaxed);
                w.write_packet(p.arrival_ms, p.src, p.local, p.bytes())
                    .map_err(|e| RecordingError::Io(part(store, &self.id, PCAP_SUFFIX), e))?;
            }
        }
        let Some(rtp) = p.rtp() else {
            return Ok(());
        };
        let rate = self.rate();
        let arrival_pos = self.pos_of_ms(p.arrival_ms, rate);
        let info = &self.info;
        let Some(s) = self.streams.get_mut(&p.stream) else {
            return Ok(());
        };
        if !config.format.wav() {
            return Ok(());
        }
        let pt = rtp.payload_type();
        let idx = match s.decoders.iter().position(|(t, _)| *t == pt) {
            Some(i) => i,
            None => {
                s.decoders
                    .push((pt, build_decoder(info, p.stream, pt, rate)));
                s.decoders.len() - 1
            }
        };
        let Some((decoder, name)) = &mut s.decoders[idx].1 else {
            s.discarded += 1;
            stats.discarded.fetch_add(1, Relaxed);
            return Ok(());
        };
        s.codecs.insert(name.clone());
        let clock = match decoder {
            Decoder::Opus(_) => 48_000,
            _ => 8_000,
        };
        let payload = rtp.payload().unwrap_or(&[]);
        let n = match decoder.decode(payload, scratch) {
            Ok(n) => n,
            Err(_) => {
                s.discarded += 1;
                stats.discarded.fetch_add(1, Relaxed);
                return Ok(());
            }
        };
        let channels = usize::from(decoder.channels().max(1));
        let dec_rate = decoder.pcm_rate();
        mono.clear();
        mono.extend(
            scratch[..n]
                .chunks(channels)
                .map(|f| (f.iter().map(|&x| i32::from(x)).sum::<i32>() / channels as i32) as i16),
        );
        let pos = s
            .timeline
            .place(rtp.ssrc(), rtp.timestamp(), clock, arrival_pos);
        s.timeline
            .wrote(pos, mono.len() * rate as usize / dec_rate.max(1) as usize);
        if s.rate.as_ref().is_none_or(|r| r.input_rate() != dec_rate) {
            if let Some(old) = s.rate.as_mut() {
                old.end_run();
            }
            let old = s.rate.replace(StreamRate::new(dec_rate, rate));
            s.old_rate = old;
        }
        let conv = s.rate.as_mut().expect("set above");
        let out_pos = conv.convert(mono, pos, out);
        let channel = usize::from(p.stream.leg.min(1));
        self.mix_tails(p.stream, channel, rate, mono);
        if !self.mix_in(channel, out_pos, out, rate) {
            if let Some(s) = self.streams.get_mut(&p.stream) {
                s.discarded += 1;
            }
            stats.discarded.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Mix in the last samples of a stream's finished resampler run (see [`StreamRate`]);
    /// `buf` is scratch.
    pub(super) fn mix_tails(
        &mut self,
        stream: TapStream,
        channel: usize,
        rate: u32,
        buf: &mut Vec<i16>,
    ) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let mut pieces: [Option<i64>; 2] = [None, None];
        let mut bufs = [Vec::new(), std::mem::take(buf)];
        if let Some(old) = s.old_rate.as_mut() {
            old.end_run();
            pieces[0] = old.take_tail(&mut bufs[0]);
            s.old_rate = None;
        }
        if let Some(r) = s.rate.as_mut() {
            pieces[1] = r.take_tail(&mut bufs[1]);
        }
        for (at, samples) in pieces.iter().zip(&bufs) {
            if let Some(at) = at {
                // Too late for the window: nothing to do, the run's body was written.
                let _ = self.mix_in(channel, *at, samples, rate);
            }
        }
        *buf = std::mem::take(&mut bufs[1]);
    }

    /// Count a packet of a stream in the metadata (packets, SSRCs, loss).
    pub(super) fn count(&mut self, p: &TapPacket) {
        let Some(rtp) = p.rtp() else { return };
        let rate = self.rate();
        let s = self.streams.entry(p.stream).or_insert_with(|| StreamRec {
            timeline: StreamTimeline::new(rate),
            decoders: Vec::new(),
            ssrcs: BTreeMap::new(),
            codecs: BTreeSet::new(),
            packets: 0,
            discarded: 0,
            rate: None,
            old_rate: None,
        });
        s.packets += 1;
        s.ssrcs
            .entry(rtp.ssrc())
            .or_default()
            .count(rtp.sequence_number());
    }

    /// Add samples at `pos` into a channel; false when they are too late or absurdly early.
    fn mix_in(&mut self, channel: usize, pos: i64, samples: &[i16], rate: u32) -> bool {
        let mut pos = pos;
        let mut samples = samples;
        if pos < self.written {
            let skip = (self.written - pos) as usize;
            if skip >= samples.len() {
                return false;
            }
            samples = &samples[skip..];
            pos = self.written;
        }
        let at = (pos - self.written) as usize;
        if at as u64 > MAX_AHEAD_MS * u64::from(rate) / 1000 {
            return false;
        }
        let buf = &mut self.pending[channel];
        if buf.len() < at + samples.len() {
            buf.resize(at + samples.len(), 0);
        }
        for (d, &s) in buf[at..].iter_mut().zip(samples) {
            *d = d.saturating_add(s);
        }
        true
    }
}

/// The decoder for `pt` of a stream: the party's own SDP, then its peer's, then static PTs.
fn build_decoder(
    info: &TapCall,
    stream: TapStream,
    pt: u8,
    rate: u32,
) -> Option<(Decoder, String)> {
    let leg = usize::from(stream.leg);
    let media = usize::from(stream.media);
    let declared = [leg, 1 - leg.min(1)].into_iter().find_map(|l| {
        info.legs
            .get(l)?
            .medias
            .get(media)?
            .iter()
            .find(|c| c.pt == pt)
            .cloned()
    });
    let codec = match declared {
        Some(c) => Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref()).ok()?,
        None => Codec::from_static_pt(pt)?,
    };
    let decoder = match codec.kind() {
        CodecKind::TelephoneEvent => return None,
        CodecKind::Opus if [8000, 12000, 16000, 24000, 48000].contains(&rate) => {
            codec.decoder_at(rate).ok()?
        }
        _ => codec.decoder().ok()?,
    };
    Some((decoder, format!("{}/{}", codec.name(), codec.clock_rate)))
}
