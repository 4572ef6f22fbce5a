//! The media player (rtpengine's `media_player`): plays pre-encoded audio into a stream, for
//! `play media` and music on hold.
//!
//! * [`MediaFrames`] is one audio file encoded once per codec at 20 ms per packet and shared
//!   (`Arc`) by every call playing it, so a thousand held calls cost one encoding and, per
//!   packet, a header write and a memcpy.
//! * [`Player`] is sans-IO: `next_due_us()` says when the next packet is due, the worker's
//!   timer wakes it then, and `write_next(now, buf)` writes the packet. Packets are due at
//!   `start + n × 20 ms` (no drift); a worker that falls more than [`MAX_LATE_US`] behind
//!   skips ahead instead of bursting.
//! * [`OutLine`] is the RTP line leaving a socket towards its party: SSRC, sequence number and
//!   timestamp of the last packet sent. The player **takes the line over**: same SSRC,
//!   sequence number + 1, timestamp + one frame, marker bit on its first packet; when it
//!   stops (stop media, end of file, un-hold) the relayed packets that follow are rewritten to
//!   continue the line (same SSRC, seq + 1, ts + one frame, marker bit), and keep being
//!   rewritten with those offsets. The receiving endpoint therefore sees one RTP stream with
//!   no sequence gap across either switch, as if the media had always come from one source.
//!   (rtpengine's player has its own SSRC context; a receiver that ties jitter-buffer state to
//!   the SSRC handles a continuous line better than an SSRC change mid-call.) A line that
//!   never carried a packet starts with a random SSRC, sequence number and timestamp.
//!
//! The player plays toward one party and replaces what the other party sends it for as long
//! as it plays (no mixing); the worker drops the relayed packets.

use std::sync::Arc;

use ngmedia_codecs::{Codec, CodecError, CodecKind, CodecParams, EncoderOptions};

use super::rtp::RTP_HEADER_LEN;

/// Packet duration of every pre-encoded frame list.
pub const PLAYER_PTIME_MS: u32 = 20;
const FRAME_US: u64 = PLAYER_PTIME_MS as u64 * 1000;
/// How far behind schedule the player may fall before it skips ahead rather than catching
/// up with a burst (a receiver's jitter buffer absorbs a few frames, not a burst of many).
pub const MAX_LATE_US: u64 = 100_000;

/// One audio file encoded in one codec, 20 ms per frame (rtpengine: a media player cache
/// entry's list of encoded packets).
#[derive(Debug)]
pub struct MediaFrames {
    kind: CodecKind,
    clock_rate: u32,
    ts_step: u32,
    /// All payloads back to back; frame `i` ends at `ends[i]`.
    data: Vec<u8>,
    ends: Vec<u32>,
}

/// PCM rate the player encodes `codec` from: 48 kHz for Opus (full band), the codec's own
/// rate otherwise.
pub fn pcm_rate_for(codec: &Codec) -> u32 {
    match codec.kind() {
        CodecKind::Opus => 48_000,
        _ => codec.pcm_rate(),
    }
}

impl MediaFrames {
    /// Encode mono PCM at `pcm_rate` (see [`pcm_rate_for`]) into 20 ms frames of `codec`.
    /// The last partial frame is padded with silence. Opus runs mono without DTX and G.729
    /// without VAD, so every frame carries audio.
    pub fn encode(codec: &Codec, pcm: &[i16], pcm_rate: u32) -> Result<MediaFrames, CodecError> {
        let mut codec = *codec;
        match &mut codec.params {
            CodecParams::Opus(p) => {
                p.stereo = false;
                p.sprop_stereo = false;
                p.usedtx = false;
            }
            CodecParams::G729 { annexb } => *annexb = false,
            _ => {}
        }
        let opts = EncoderOptions {
            pcm_rate: (codec.kind() == CodecKind::Opus).then_some(pcm_rate),
            ..EncoderOptions::default()
        };
        let mut enc = codec.encoder_with(PLAYER_PTIME_MS, &opts)?;
        if enc.pcm_rate() != pcm_rate {
            return Err(CodecError::UnsupportedRate(pcm_rate));
        }
        let step = enc.frame_samples();
        let count = pcm.len().div_ceil(step);
        let mut data = Vec::with_capacity(count * enc.max_payload_len().min(200));
        let mut ends = Vec::with_capacity(count);
        let mut frame = vec![0i16; step];
        let mut out = vec![0u8; enc.max_payload_len()];
        for chunk in pcm.chunks(step) {
            frame[..chunk.len()].copy_from_slice(chunk);
            frame[chunk.len()..].fill(0);
            let n = enc.encode(&frame, &mut out)?;
            data.extend_from_slice(&out[..n]);
            ends.push(data.len() as u32);
        }
        Ok(MediaFrames {
            kind: codec.kind(),
            clock_rate: codec.clock_rate,
            ts_step: enc.timestamp_step(),
            data,
            ends,
        })
    }

    /// Frames from ready-made payloads (tests, and callers with their own packetiser).
    pub fn from_payloads(kind: CodecKind, clock_rate: u32, payloads: &[&[u8]]) -> MediaFrames {
        let mut data = Vec::new();
        let mut ends = Vec::with_capacity(payloads.len());
        for p in payloads {
            data.extend_from_slice(p);
            ends.push(data.len() as u32);
        }
        MediaFrames {
            kind,
            clock_rate,
            ts_step: clock_rate * PLAYER_PTIME_MS / 1000,
            data,
            ends,
        }
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// RTP timestamp advance per frame.
    pub fn ts_step(&self) -> u32 {
        self.ts_step
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn duration_ms(&self) -> u64 {
        self.ends.len() as u64 * u64::from(PLAYER_PTIME_MS)
    }

    /// Payload of frame `i`.
    pub fn frame(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// Bytes held (for cache accounting).
    pub fn size(&self) -> usize {
        self.data.len() + self.ends.len() * 4
    }
}

/// How to play (ng `play media` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayOptions {
    /// Times to play the file (`repeat-times`); `None`: until stopped (music on hold).
    pub repeat: Option<u32>,
    /// Where the first pass starts, in ms (`start-pos`).
    pub start_ms: u64,
    /// Stop after this much audio, in ms (`repeat-duration`).
    pub max_ms: Option<u64>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            repeat: Some(1),
            start_ms: 0,
            max_ms: None,
        }
    }
}

/// What the control plane hands a worker to start playing toward a party.
#[derive(Debug, Clone)]
pub struct PlaySpec {
    pub frames: Arc<MediaFrames>,
    /// Payload type of the codec in the party's numbering.
    pub pt: u8,
    pub options: PlayOptions,
}

/// Turns a media source into frames for a codec: implemented by the daemon's media library
/// (files, blobs, library ids), which decodes once and caches the encodings.
pub trait MediaLoader: Send + Sync {
    /// The audio of `source` as 20 ms frames of `codec`, and the file's duration in ms. The
    /// error text becomes the ng `error-reason`.
    fn frames(
        &self,
        source: &super::request::MediaSource,
        codec: &Codec,
    ) -> Result<(Arc<MediaFrames>, u64), String>;
}

/// The RTP line leaving one socket towards its party (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutLine {
    /// SSRC, sequence number and timestamp of the last packet sent on the line.
    last: Option<(u32, u16, u32)>,
    /// Timestamp advance of one packet on the line (for the first rewritten packet).
    step: u32,
    /// The next relayed packet continues the line after a player.
    resync: bool,
    rewrite: Option<Rewrite>,
}

#[derive(Debug, Clone, Copy)]
struct Rewrite {
    /// SSRC of the relayed stream the offsets were computed for.
    in_ssrc: u32,
    ssrc: u32,
    seq_off: u16,
    ts_off: u32,
}

impl OutLine {
    /// Relayed packets leave unchanged (no player has sent on the line, or none rebased it).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.rewrite.is_none() && !self.resync
    }

    /// Packets up to `(ssrc, seq, ts)` left on the line without passing through
    /// [`OutLine::on_egress`] (the kernel fast path relayed them): a player that starts next
    /// continues from there.
    pub fn sent_elsewhere(&mut self, ssrc: u32, seq: u16, ts: u32) {
        self.last = Some((ssrc, seq, ts));
    }

    /// A relayed or transcoded RTP packet (`pkt`, plain RTP) is about to leave toward the
    /// party: after a player it is moved onto the line; either way the line remembers it.
    #[inline]
    pub fn on_egress(&mut self, pkt: &mut [u8]) {
        if pkt.len() < RTP_HEADER_LEN {
            return;
        }
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
        let rebase = self.resync || self.rewrite.is_some_and(|r| r.in_ssrc != ssrc);
        if rebase {
            self.resync = false;
            if let Some((l_ssrc, l_seq, l_ts)) = self.last {
                self.rewrite = Some(Rewrite {
                    in_ssrc: ssrc,
                    ssrc: l_ssrc,
                    seq_off: l_seq.wrapping_add(1).wrapping_sub(seq),
                    ts_off: l_ts.wrapping_add(self.step).wrapping_sub(ts),
                });
                // A new talk spurt as far as the receiver's playout is concerned.
                pkt[1] |= 0x80;
            }
        }
        let (ssrc, seq, ts) = match self.rewrite {
            None => (ssrc, seq, ts),
            Some(r) => {
                let out = (
                    r.ssrc,
                    seq.wrapping_add(r.seq_off),
                    ts.wrapping_add(r.ts_off),
                );
                pkt[2..4].copy_from_slice(&out.1.to_be_bytes());
                pkt[4..8].copy_from_slice(&out.2.to_be_bytes());
                pkt[8..12].copy_from_slice(&out.0.to_be_bytes());
                out
            }
        };
        if let Some((_, l_seq, l_ts)) = self.last {
            // Learn the relayed stream's packet step for the next hand-over.
            let d = ts.wrapping_sub(l_ts);
            if seq == l_seq.wrapping_add(1) && d > 0 && d <= 48_000 {
                self.step = d;
            }
        }
        self.last = Some((ssrc, seq, ts));
    }

    /// The player sent a packet on the line.
    pub fn on_player(&mut self, ssrc: u32, seq: u16, ts: u32, step: u32) {
        self.last = Some((ssrc, seq, ts));
        self.step = step;
    }

    /// A player stopped: the next relayed packet continues the line.
    pub fn end_play(&mut self) {
        self.resync = true;
    }

    /// `extra` packets were inserted into the line (DTMF end-report repeats) right after
    /// the last one sent: the relayed packets that follow are moved up by as many
    /// sequence numbers, now and from then on.
    pub fn shift_seq(&mut self, extra: u16) {
        let Some((ssrc, seq, ts)) = self.last else {
            return;
        };
        self.last = Some((ssrc, seq.wrapping_add(extra), ts));
        match &mut self.rewrite {
            Some(r) => r.seq_off = r.seq_off.wrapping_add(extra),
            None => {
                self.rewrite = Some(Rewrite {
                    in_ssrc: ssrc,
                    ssrc,
                    seq_off: extra,
                    ts_off: 0,
                })
            }
        }
    }

    /// SSRC, sequence number and timestamp of the last packet sent.
    pub fn last(&self) -> Option<(u32, u16, u32)> {
        self.last
    }
}

/// Plays a [`MediaFrames`] list toward one party (rtpengine's `media_player`).
#[derive(Debug)]
pub struct Player {
    frames: Arc<MediaFrames>,
    pt: u8,
    ssrc: u32,
    /// Sequence number and timestamp of the next packet.
    seq: u16,
    ts: u32,
    /// Next frame to send.
    pos: usize,
    /// Passes left including the current one; `None`: forever.
    passes_left: Option<u32>,
    /// Frames still allowed by `repeat-duration`.
    frames_left: Option<u64>,
    marker: bool,
    next_due_us: u64,
    sent: u64,
    /// Bytes of the packets sent, headers included (what rtpengine's SR counts).
    octets: u64,
    /// When the next RTCP sender report is due (monotonic µs): at the first packet, then
    /// every interval.
    report_due_us: u64,
    done: bool,
}

/// What a sender report says about a player's line (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// RTP timestamp of the last packet sent.
    pub ts: u32,
    pub packets: u32,
    pub octets: u32,
}

impl Player {
    /// A player continuing `line` (or a fresh line from `random` = (ssrc, seq, ts) when the
    /// line never carried a packet), with its first packet due at `now_us`.
    pub fn new(spec: &PlaySpec, line: &OutLine, now_us: u64, random: (u32, u16, u32)) -> Player {
        let frames = spec.frames.clone();
        let step = frames.ts_step();
        let (ssrc, seq, ts) = match line.last() {
            Some((ssrc, seq, ts)) => (ssrc, seq.wrapping_add(1), ts.wrapping_add(step)),
            None => random,
        };
        let count = frames.len();
        let start = (spec.options.start_ms / u64::from(PLAYER_PTIME_MS)) as usize;
        let passes = spec.options.repeat.map(|r| r.max(1));
        Player {
            pos: if count == 0 { 0 } else { start.min(count) },
            done: count == 0 || start >= count && passes == Some(1),
            frames,
            pt: spec.pt & 0x7f,
            ssrc,
            seq,
            ts,
            passes_left: passes,
            frames_left: spec
                .options
                .max_ms
                .map(|ms| ms.div_ceil(u64::from(PLAYER_PTIME_MS))),
            marker: true,
            next_due_us: now_us,
            sent: 0,
            octets: 0,
            report_due_us: 0,
        }
    }

    /// The sender report due at `now_us`, if one is: right after the first packet (as
    /// rtpengine's player sends one), then every `interval_us`.
    pub fn report_due(&mut self, now_us: u64, interval_us: u64) -> Option<SenderInfo> {
        if self.sent == 0 || now_us < self.report_due_us {
            return None;
        }
        self.report_due_us = now_us + interval_us;
        let (ssrc, _, ts, _) = self.line();
        Some(SenderInfo {
            ssrc,
            ts,
            packets: self.sent as u32,
            octets: self.octets as u32,
        })
    }

    /// When the next packet is due (monotonic µs); `None` once the player has finished.
    pub fn next_due_us(&self) -> Option<u64> {
        (!self.done).then_some(self.next_due_us)
    }

    pub fn finished(&self) -> bool {
        self.done
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Position in the file of the next frame, ms (ng `last-frame-pos`).
    pub fn position_ms(&self) -> u64 {
        self.pos as u64 * u64::from(PLAYER_PTIME_MS)
    }

    /// SSRC, sequence number and timestamp of the last packet written, and the line step.
    pub fn line(&self) -> (u32, u16, u32, u32) {
        let step = self.frames.ts_step();
        (
            self.ssrc,
            self.seq.wrapping_sub(1),
            self.ts.wrapping_sub(step),
            step,
        )
    }

    /// If a packet is due at `now_us`, write it (RTP header + payload) into `buf` and return
    /// its length. The caller loops while this returns `Some` to catch up after a late wake.
    pub fn write_next(&mut self, now_us: u64, buf: &mut [u8]) -> Option<usize> {
        if self.done || now_us < self.next_due_us {
            return None;
        }
        if now_us - self.next_due_us > MAX_LATE_US {
            // Skip ahead: the receiver cannot use a burst of stale audio.
            self.next_due_us = now_us;
        }
        if self.pos >= self.frames.len() {
            self.pos = 0;
        }
        let payload = self.frames.frame(self.pos);
        let len = RTP_HEADER_LEN + payload.len();
        if buf.len() < len {
            self.done = true;
            return None;
        }
        buf[0] = 0x80;
        buf[1] = self.pt | if self.marker { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[RTP_HEADER_LEN..len].copy_from_slice(payload);
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.frames.ts_step());
        self.next_due_us += FRAME_US;
        self.sent += 1;
        self.octets += len as u64;
        self.pos += 1;
        if let Some(left) = &mut self.frames_left {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.done = true;
            }
        }
        if self.pos >= self.frames.len() {
            match &mut self.passes_left {
                None => self.pos = 0,
                Some(n) if *n > 1 => {
                    *n -= 1;
                    self.pos = 0;
                }
                Some(_) => self.done = true,
            }
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: u8) -> Arc<MediaFrames> {
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| vec![i; 160]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        Arc::new(MediaFrames::from_payloads(CodecKind::Pcmu, 8000, &refs))
    }

    fn spec(n: u8, options: PlayOptions) -> PlaySpec {
        PlaySpec {
            frames: frames(n),
            pt: 0,
            options,
        }
    }

    fn hdr(p: &[u8]) -> (bool, u8, u16, u32, u32, u8) {
        (
            p[1] & 0x80 != 0,
            p[1] & 0x7f,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            p[12],
        )
    }

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0u8; 172];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    /// Drain every packet due up to `until_us`, stepping the clock by 1 ms.
    fn run(p: &mut Player, from_us: u64, until_us: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        let mut now = from_us;
        while now <= until_us {
            while let Some(n) = p.write_next(now, &mut buf) {
                out.push((now, buf[..n].to_vec()));
            }
            now += 1000;
        }
        out
    }

    #[test]
    fn takes_over_the_line_and_hands_it_back() {
        let mut line = OutLine::default();
        // Relayed stream: seq 100.., ts 1000.. step 160, SSRC 0xaaaa.
        for i in 0..3u16 {
            let mut p = rtp(100 + i, 1000 + 160 * i as u32, 0xaaaa);
            line.on_egress(&mut p);
            assert_eq!(hdr(&p).2, 100 + i, "untouched before any play");
        }
        let mut player = Player::new(&spec(4, PlayOptions::default()), &line, 0, (1, 2, 3));
        let sent = run(&mut player, 0, 200_000);
        assert_eq!(sent.len(), 4);
        let mut prev = (102u16, 1320u32);
        for (i, (_, p)) in sent.iter().enumerate() {
            let (m, pt, seq, ts, ssrc, first) = hdr(p);
            assert_eq!((m, pt, ssrc, first), (i == 0, 0, 0xaaaa, i as u8));
            assert_eq!((seq, ts), (prev.0 + 1, prev.1 + 160));
            prev = (seq, ts);
            let (s, q, t, step) = player.line();
            if i == sent.len() - 1 {
                line.on_player(s, q, t, step);
            }
        }
        assert!(player.finished());
        line.end_play();
        // The relayed stream resumes from its own numbering; it is moved onto the line.
        let mut p = rtp(500, 90_000, 0xbbbb);
        line.on_egress(&mut p);
        assert_eq!(hdr(&p), (true, 0, 107, 1320 + 5 * 160, 0xaaaa, 0));
        let mut p = rtp(501, 90_160, 0xbbbb);
        line.on_egress(&mut p);
        assert_eq!(hdr(&p), (false, 0, 108, 1320 + 6 * 160, 0xaaaa, 0));
    }

    #[test]
    fn shifted_line_moves_the_relayed_sequence_numbers() {
        let mut line = OutLine::default();
        let mut p = rtp(10, 1600, 0xaaaa);
        line.on_egress(&mut p);
        line.shift_seq(2);
        let mut p = rtp(11, 1760, 0xaaaa);
        line.on_egress(&mut p);
        assert_eq!(hdr(&p), (false, 0, 13, 1760, 0xaaaa, 0));
        line.shift_seq(2);
        let mut p = rtp(12, 1920, 0xaaaa);
        line.on_egress(&mut p);
        assert_eq!(hdr(&p), (false, 0, 16, 1920, 0xaaaa, 0));
    }

    #[test]
    fn fresh_line_uses_the_random_start() {
        let line = OutLine::default();
        let mut p = Player::new(
            &spec(2, PlayOptions::default()),
            &line,
            0,
            (7, 65535, u32::MAX - 100),
        );
        let sent = run(&mut p, 0, 100_000);
        let h = hdr(&sent[0].1);
        assert_eq!((h.2, h.3, h.4), (65535, u32::MAX - 100, 7));
        assert_eq!((hdr(&sent[1].1).2, hdr(&sent[1].1).3), (0, 59), "wraps");
    }

    #[test]
    fn sender_report_after_the_first_packet_then_each_interval() {
        let mut p = Player::new(
            &spec(100, PlayOptions::default()),
            &OutLine::default(),
            0,
            (9, 100, 4000),
        );
        assert_eq!(p.report_due(0, 5_000_000), None, "nothing sent yet");
        let mut buf = [0u8; 512];
        assert!(p.write_next(0, &mut buf).is_some());
        let first = SenderInfo {
            ssrc: 9,
            ts: 4000,
            packets: 1,
            octets: 12 + 160,
        };
        assert_eq!(p.report_due(0, 5_000_000), Some(first));
        assert!(p.write_next(20_000, &mut buf).is_some());
        assert_eq!(p.report_due(20_000, 5_000_000), None);
        let later = p.report_due(5_000_000, 5_000_000).unwrap();
        assert_eq!((later.ts, later.packets, later.octets), (4160, 2, 344));
    }

    #[test]
    fn paces_at_20ms_without_drift_and_skips_when_late() {
        let mut p = Player::new(
            &spec(100, PlayOptions::default()),
            &OutLine::default(),
            1_000_000,
            (1, 0, 0),
        );
        let sent = run(&mut p, 1_000_000, 1_200_000);
        let times: Vec<u64> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            times,
            (0..=10).map(|i| 1_000_000 + i * 20_000).collect::<Vec<_>>()
        );
        assert_eq!(p.next_due_us(), Some(1_220_000));
        // 50 ms late: catch up with the 3 due frames at once.
        let mut buf = [0u8; 512];
        let mut n = 0;
        while p.write_next(1_270_000, &mut buf).is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        // 1 s late: one frame, then back on a 20 ms grid from now.
        assert!(p.write_next(2_500_000, &mut buf).is_some());
        assert!(p.write_next(2_500_000, &mut buf).is_none());
        assert_eq!(p.next_due_us(), Some(2_520_000));
    }

    #[test]
    fn repeat_times_and_start_pos() {
        let opts = PlayOptions {
            repeat: Some(3),
            start_ms: 40,
            max_ms: None,
        };
        let mut p = Player::new(&spec(4, opts), &OutLine::default(), 0, (1, 0, 0));
        let order: Vec<u8> = run(&mut p, 0, 1_000_000)
            .iter()
            .map(|(_, b)| b[12])
            .collect();
        // First pass from frame 2, then two full passes.
        assert_eq!(order, vec![2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
        assert!(p.finished());
        assert_eq!(p.next_due_us(), None);

        let forever = PlayOptions {
            repeat: None,
            start_ms: 0,
            max_ms: Some(200),
        };
        let mut p = Player::new(&spec(3, forever), &OutLine::default(), 0, (1, 0, 0));
        assert_eq!(
            run(&mut p, 0, 10_000_000).len(),
            10,
            "repeat-duration ends it"
        );

        // start-pos beyond the end of a single pass: nothing to play.
        let past = PlayOptions {
            start_ms: 1000,
            ..PlayOptions::default()
        };
        assert!(Player::new(&spec(3, past), &OutLine::default(), 0, (1, 0, 0)).finished());
    }

    #[test]
    fn relayed_ssrc_change_after_play_stays_on_the_line() {
        let mut line = OutLine::default();
        line.on_player(0x1111, 10, 8000, 160);
        line.end_play();
        let mut p = rtp(1, 1, 0x2);
        line.on_egress(&mut p);
        let h = hdr(&p);
        assert_eq!((h.0, h.2, h.3, h.4), (true, 11, 8160, 0x1111));
        let mut p = rtp(900, 5, 0x3);
        line.on_egress(&mut p);
        let h = hdr(&p);
        assert_eq!((h.0, h.2, h.3, h.4), (true, 12, 8000 + 320, 0x1111));
    }

    #[test]
    fn encodes_pcmu_frames_of_20ms() {
        let codec = Codec::from_static_pt(0).unwrap();
        let pcm: Vec<i16> = (0..8000 + 80).map(|i| (i % 100) as i16 * 100).collect();
        let f = MediaFrames::encode(&codec, &pcm, 8000).unwrap();
        assert_eq!((f.len(), f.ts_step(), f.duration_ms()), (51, 160, 1020));
        assert_eq!(f.frame(0).len(), 160);
        assert_eq!(
            f.frame(50)[79],
            ngmedia_codecs::g711::ulaw_encode(pcm[8079])
        );
        assert_eq!(
            f.frame(50)[80],
            ngmedia_codecs::g711::ulaw_encode(0),
            "padded"
        );
        assert!(MediaFrames::encode(&codec, &pcm, 16000).is_err());
    }
}
