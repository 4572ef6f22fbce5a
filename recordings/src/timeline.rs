//! Where each decoded packet goes on a call's recording timeline (rtpengine: the
//! `mix_buffer`/`ssrc` timestamp handling of the recording daemon).
//!
//! A recording is one sample clock at the output rate, starting at 0 when recording starts.
//! A stream is anchored there by the wall-clock arrival of its first packet (a party that
//! joins late starts at the right offset); after that its own RTP timestamps place every
//! packet, so network jitter does not move audio and lost packets leave holes that stay
//! silent. A new SSRC or clock rate (re-INVITE, codec change) re-anchors the stream at its
//! arrival time, never before what it already wrote, so the timeline stays true.

/// If RTP timestamps and arrival time disagree by more than this, the sender reset its
/// timestamps without changing SSRC; re-anchor rather than write far in the future or past.
pub const RESYNC_MS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    ssrc: u32,
    clock_rate: u32,
    /// Extended timestamp of the anchor packet.
    ts: i64,
    /// Output sample position of the anchor packet.
    pos: i64,
}

/// The mapping from one stream's RTP timestamps to output sample positions.
#[derive(Debug, Clone)]
pub struct StreamTimeline {
    rate: u32,
    anchor: Option<Anchor>,
    /// Last extended timestamp seen, to unwrap the 32-bit RTP timestamp.
    last_ts: i64,
    /// End of the audio this stream placed so far (output samples).
    end: i64,
    /// Times the stream was re-anchored (SSRC/codec change, timestamp jump).
    pub resyncs: u32,
}

impl StreamTimeline {
    /// A stream of a recording whose output rate is `rate` Hz.
    pub fn new(rate: u32) -> StreamTimeline {
        StreamTimeline {
            rate,
            anchor: None,
            last_ts: 0,
            end: 0,
            resyncs: 0,
        }
    }

    /// Output position of a packet: `ts` at `clock_rate` from `ssrc`, which arrived at
    /// `arrival_pos` (its wall-clock arrival on the timeline, output samples).
    pub fn place(&mut self, ssrc: u32, ts: u32, clock_rate: u32, arrival_pos: i64) -> i64 {
        let clock_rate = clock_rate.max(1);
        let reanchor = match self.anchor {
            None => true,
            Some(a) => a.ssrc != ssrc || a.clock_rate != clock_rate,
        };
        if !reanchor {
            let a = self.anchor.expect("anchored");
            let ext = self.last_ts + i64::from(ts.wrapping_sub(self.last_ts as u32) as i32);
            let pos = a.pos + (ext - a.ts) * i64::from(self.rate) / i64::from(clock_rate);
            let limit = RESYNC_MS * i64::from(self.rate) / 1000;
            if (pos - arrival_pos).abs() <= limit {
                self.last_ts = self.last_ts.max(ext);
                return pos;
            }
        }
        if self.anchor.is_some() {
            self.resyncs += 1;
        }
        let pos = arrival_pos.max(self.end).max(0);
        self.anchor = Some(Anchor {
            ssrc,
            clock_rate,
            ts: i64::from(ts),
            pos,
        });
        self.last_ts = i64::from(ts);
        pos
    }

    /// Note that `len` output samples were written at `pos`.
    pub fn wrote(&mut self, pos: i64, len: usize) {
        self.end = self.end.max(pos + len as i64);
    }

    pub fn end(&self) -> i64 {
        self.end
    }
}

/// Sequence-number bookkeeping of one SSRC, for the packet and loss counts of the metadata
/// (RFC 3550 A.3 in its simplest form: expected minus received).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqCounter {
    first: Option<i64>,
    highest: i64,
    pub received: u64,
}

impl SeqCounter {
    pub fn count(&mut self, seq: u16) {
        self.received += 1;
        match self.first {
            None => {
                self.first = Some(i64::from(seq));
                self.highest = i64::from(seq);
            }
            Some(_) => {
                let ext = self.highest + i64::from(seq.wrapping_sub(self.highest as u16) as i16);
                self.highest = self.highest.max(ext);
            }
        }
    }

    /// Packets expected from the sequence numbers but never received.
    pub fn lost(&self) -> u64 {
        match self.first {
            None => 0,
            Some(first) => {
                let expected = (self.highest - first + 1).max(0) as u64;
                expected.saturating_sub(self.received)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_place_packets_and_loss_leaves_a_hole_of_the_right_length() {
        let mut t = StreamTimeline::new(8000);
        // First packet arrives 1 s into the recording: late start at 8000 samples.
        assert_eq!(t.place(1, 1000, 8000, 8000), 8000);
        t.wrote(8000, 160);
        // Arrival jitter does not move audio: timestamps decide.
        assert_eq!(t.place(1, 1160, 8000, 8190), 8160);
        t.wrote(8160, 160);
        // Packets 3..=5 lost: the next one lands 4 frames after the previous, leaving 480
        // samples (60 ms) unwritten, i.e. silence.
        assert_eq!(t.place(1, 1800, 8000, 8800), 8800);
        assert_eq!(8800 - t.end(), 480);
    }

    #[test]
    fn wideband_output_scales_positions() {
        let mut t = StreamTimeline::new(48000);
        assert_eq!(t.place(9, 0, 8000, 0), 0);
        assert_eq!(t.place(9, 160, 8000, 960), 960);
        // Opus at 48 kHz after a codec change: re-anchored at arrival, after the written end.
        t.wrote(960, 960);
        assert_eq!(t.place(9, 5_000_000, 48000, 1900), 1920);
        assert_eq!(t.resyncs, 1);
        assert_eq!(t.place(9, 5_000_960, 48000, 2900), 2880);
    }

    #[test]
    fn ssrc_change_keeps_the_timeline() {
        let mut t = StreamTimeline::new(8000);
        assert_eq!(t.place(1, 500, 8000, 0), 0);
        t.wrote(0, 160);
        // New SSRC with an unrelated timestamp arrives 2 s later: starts at its arrival.
        assert_eq!(t.place(2, 123_456, 8000, 16_000), 16_000);
        assert_eq!(t.place(2, 123_616, 8000, 16_170), 16_160);
        // An SSRC change arriving "before" what was written (clock coarse) never overlaps.
        t.wrote(16_160, 160);
        assert_eq!(t.place(3, 0, 8000, 16_100), 16_320);
        assert_eq!(t.resyncs, 2);
    }

    #[test]
    fn timestamp_wrap_and_jump() {
        let mut t = StreamTimeline::new(8000);
        assert_eq!(t.place(1, u32::MAX - 79, 8000, 0), 0);
        assert_eq!(t.place(1, 80, 8000, 160), 160);
        // A reordered (earlier) packet is placed before, not after, the wrap.
        assert_eq!(t.place(1, (u32::MAX - 79).wrapping_add(80), 8000, 170), 80);
        // Timestamp reset by the sender, same SSRC: re-anchored at arrival.
        t.wrote(160, 160);
        assert_eq!(t.place(1, 1_000_000_000, 8000, 400), 400);
        assert_eq!(t.resyncs, 1);
    }

    #[test]
    fn sequence_loss_counting() {
        let mut s = SeqCounter::default();
        for seq in [65534u16, 65535, 0, 3, 4, 2] {
            s.count(seq);
        }
        // 65534..=4 is 7 packets, 6 received (1 missing), reordered 2 still counted once.
        assert_eq!((s.received, s.lost()), (6, 1));
    }
}
