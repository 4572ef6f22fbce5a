//! Input reordering for a [`Transcoder`](super::Transcoder): rtpengine's `packet_sequencer`
//! (`codeclib.c`), which every transcoded packet goes through before it is decoded.
//!
//! Packets leave in sequence-number order. A packet that arrives early is held until the
//! ones before it come in; a missing packet is given up on once [`WAIT_PACKETS`] later
//! ones are held, or (decided by the caller) once the newest held packet is 60 ms past the
//! last one used. Sequence numbers shortly behind the expected one are duplicates; one far
//! away in either direction is a sequence reset (the sender restarted its numbering), after
//! which the new numbering is followed at once.
//!
//! The held packets live in one buffer allocated with the transcoder: nothing is
//! allocated per packet.

/// Packets that can be held at once. More than [`WAIT_PACKETS`], so the slot for the
/// packet that triggers a forced release is always free.
pub(super) const SLOTS: usize = 16;
/// Largest packet held: a full Ethernet payload; larger RTP never reaches a transcoder.
pub(super) const SLOT_BYTES: usize = 1500;
/// How many later packets are held before a missing one is declared lost (rtpengine's
/// "arbitrary value" in `packet_sequencer_next_packet`).
pub(super) const WAIT_PACKETS: usize = 10;
/// Sequence numbers up to this far behind the expected one are duplicates, and up to this
/// far ahead are early packets; anything further is a sequence reset
/// (`PACKET_SEQ_DUPE_THRES`).
const DUPE_WINDOW: i32 = 100;

/// What [`Sequencer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Insert {
    /// Held (or next in line).
    Queued,
    /// The numbering restarted: everything held was dropped, this packet is next.
    Reset { expected: u16 },
    /// Already used or already held.
    Duplicate,
    /// Larger than a slot: not held.
    TooLarge,
}

/// A packet released by [`Sequencer::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Released {
    pub slot: usize,
    pub len: usize,
    /// Sequence numbers skipped just before it (declared lost).
    pub lost: u16,
}

/// The packet next in line, as [`Sequencer::peek`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peeked {
    /// Its RTP timestamp.
    pub ts: u32,
    /// When it was received (monotonic ms).
    pub at_ms: u64,
    /// Sequence numbers missing before it (0: it is the expected one).
    pub missing: u16,
}

/// rtpengine: `packet_sequencer_t`.
#[derive(Debug)]
pub(super) struct Sequencer {
    /// `SLOTS * SLOT_BYTES` bytes of held packets. Taken out by the transcoder while it
    /// decodes a released packet (see `Transcoder::drain_sequencer`).
    pub(super) buf: Box<[u8]>,
    len: [u16; SLOTS],
    seq: [u16; SLOTS],
    /// Arrival time (monotonic ms) of each held packet, for the playout timer's drift
    /// checks (see `playout`).
    at_ms: [u64; SLOTS],
    used: u32,
    /// The sequence number to release next; `None` before the first packet.
    next: Option<u16>,
}

impl Sequencer {
    pub(super) fn new() -> Sequencer {
        Sequencer {
            buf: vec![0; SLOTS * SLOT_BYTES].into_boxed_slice(),
            len: [0; SLOTS],
            seq: [0; SLOTS],
            at_ms: [0; SLOTS],
            used: 0,
            next: None,
        }
    }

    /// Forget everything (new SSRC).
    pub(super) fn reset(&mut self) {
        self.used = 0;
        self.next = None;
    }

    /// Packets held.
    pub(super) fn held(&self) -> usize {
        self.used.count_ones() as usize
    }

    fn find(&self, seq: u16) -> Option<usize> {
        (0..SLOTS).find(|&i| self.used & (1 << i) != 0 && self.seq[i] == seq)
    }

    /// Classify `seq` against the expected sequence number without holding anything.
    /// `Queued` means: new and in the window; `Reset` means the numbering restarted.
    pub(super) fn classify(&self, seq: u16) -> Insert {
        let Some(next) = self.next else {
            return Insert::Queued;
        };
        // Plain integer arithmetic on the 16-bit values, as rtpengine does.
        let diff = seq as i32 - next as i32;
        let ok = (0..DUPE_WINDOW).contains(&diff) || diff < -0xffff + DUPE_WINDOW;
        let dupe = (diff < 0 && diff > -DUPE_WINDOW) || diff > 0xffff - DUPE_WINDOW;
        if ok {
            if self.find(seq).is_some() {
                Insert::Duplicate
            } else {
                Insert::Queued
            }
        } else if dupe {
            Insert::Duplicate
        } else {
            Insert::Reset { expected: next }
        }
    }

    /// Whether `seq` can skip the queue: nothing is held and it is the one expected.
    pub(super) fn is_next_in_line(&self, seq: u16) -> bool {
        self.used == 0 && self.next.is_none_or(|n| n == seq)
    }

    /// Record that `seq` was used without being held (the in-order fast path, or right
    /// after a reset).
    pub(super) fn consume_direct(&mut self, seq: u16) {
        self.used = 0;
        self.next = Some(seq.wrapping_add(1));
    }

    /// Hold `packet` under `seq`.
    pub(super) fn insert(&mut self, seq: u16, packet: &[u8]) -> Insert {
        self.insert_at(seq, packet, 0)
    }

    /// Hold `packet` under `seq`, received at `at_ms`.
    pub(super) fn insert_at(&mut self, seq: u16, packet: &[u8], at_ms: u64) -> Insert {
        let class = self.classify(seq);
        match class {
            Insert::Duplicate | Insert::TooLarge => return class,
            Insert::Reset { .. } => {
                self.used = 0;
                self.next = Some(seq);
            }
            Insert::Queued => {
                if self.next.is_none() {
                    self.next = Some(seq);
                }
            }
        }
        if packet.len() > SLOT_BYTES {
            return Insert::TooLarge;
        }
        let Some(slot) = (0..SLOTS).find(|&i| self.used & (1 << i) == 0) else {
            // Cannot happen while the caller releases at WAIT_PACKETS; treat as loss.
            return Insert::TooLarge;
        };
        self.buf[slot * SLOT_BYTES..slot * SLOT_BYTES + packet.len()].copy_from_slice(packet);
        self.len[slot] = packet.len() as u16;
        self.seq[slot] = seq;
        self.at_ms[slot] = at_ms;
        self.used |= 1 << slot;
        class
    }

    /// The packet [`Sequencer::pop`] with `wait` 0 would release, without releasing it.
    pub(super) fn peek(&self) -> Option<Peeked> {
        let next = self.next?;
        let slot = match self.find(next) {
            Some(s) => s,
            None => (0..SLOTS)
                .filter(|&i| self.used & (1 << i) != 0)
                .min_by_key(|&i| self.seq[i].wrapping_sub(next))?,
        };
        Some(Peeked {
            ts: self.timestamp(slot),
            at_ms: self.at_ms[slot],
            missing: self.seq[slot].wrapping_sub(next),
        })
    }

    /// RTP timestamp of the held packet furthest ahead in sequence.
    pub(super) fn newest_timestamp(&self) -> Option<u32> {
        let next = self.next?;
        (0..SLOTS)
            .filter(|&i| self.used & (1 << i) != 0)
            .max_by_key(|&i| self.seq[i].wrapping_sub(next))
            .map(|i| self.timestamp(i))
    }

    /// Give up on the expected sequence number (its time has passed): it counts as used,
    /// so it is a duplicate if it still comes.
    pub(super) fn skip(&mut self) {
        if let Some(n) = self.next {
            self.next = Some(n.wrapping_add(1));
        }
    }

    /// RTP timestamp of the packet in `slot` (0 for one too short to have one, or while
    /// the buffer is lent out).
    fn timestamp(&self, slot: usize) -> u32 {
        let start = slot * SLOT_BYTES;
        match self.buf.get(start + 4..start + 8) {
            Some(b) if self.len[slot] >= 8 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            _ => 0,
        }
    }

    /// Release the next packet: the expected one when held; otherwise, when at least
    /// `wait` packets are held (0 forces), the closest one after it, skipping the missing.
    pub(super) fn pop(&mut self, wait: usize) -> Option<Released> {
        let next = self.next?;
        let slot = match self.find(next) {
            Some(s) => s,
            None => {
                let held = self.held();
                if held == 0 || held < wait {
                    return None;
                }
                (0..SLOTS)
                    .filter(|&i| self.used & (1 << i) != 0)
                    .min_by_key(|&i| self.seq[i].wrapping_sub(next))?
            }
        };
        let seq = self.seq[slot];
        self.used &= !(1 << slot);
        self.next = Some(seq.wrapping_add(1));
        Some(Released {
            slot,
            len: self.len[slot] as usize,
            lost: seq.wrapping_sub(next),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(ops: &[u16], wait: usize) -> Vec<(u16, u16)> {
        let mut s = Sequencer::new();
        let mut out = Vec::new();
        for &seq in ops {
            s.insert(seq, &seq.to_be_bytes());
            while let Some(r) = s.pop(wait) {
                let b = &s.buf[r.slot * SLOT_BYTES..r.slot * SLOT_BYTES + r.len];
                out.push((u16::from_be_bytes([b[0], b[1]]), r.lost));
            }
        }
        out
    }

    #[test]
    fn early_packet_waits_for_the_missing_one() {
        assert_eq!(
            order(&[1, 2, 4, 3, 5], WAIT_PACKETS),
            vec![(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]
        );
    }

    #[test]
    fn a_missing_packet_is_given_up_after_ten_later_ones() {
        let seqs: Vec<u16> = std::iter::once(1).chain(3..13).collect();
        let out = order(&seqs, WAIT_PACKETS);
        assert_eq!(out[0], (1, 0));
        assert_eq!(out[1], (3, 1), "2 declared lost");
        assert_eq!(out.len(), 11);
    }

    #[test]
    fn forced_release_skips_to_the_closest_across_the_wrap() {
        let mut s = Sequencer::new();
        s.insert(65534, &[0]);
        assert!(s.pop(WAIT_PACKETS).is_some());
        s.insert(1, &[1]);
        s.insert(0, &[2]);
        assert_eq!(s.pop(WAIT_PACKETS), None, "65535 still awaited");
        let r = s.pop(0).unwrap();
        assert_eq!((s.buf[r.slot * SLOT_BYTES], r.lost), (2, 1));
        assert_eq!(s.pop(WAIT_PACKETS).map(|r| r.lost), Some(0));
    }

    #[test]
    fn duplicates_and_resets() {
        let mut s = Sequencer::new();
        s.insert(1000, &[0]);
        s.pop(WAIT_PACKETS).unwrap();
        assert_eq!(s.insert(1000, &[0]), Insert::Duplicate);
        assert_eq!(s.insert(950, &[0]), Insert::Duplicate);
        assert_eq!(s.insert(1050, &[0]), Insert::Queued);
        assert_eq!(s.insert(1050, &[0]), Insert::Duplicate);
        assert_eq!(s.insert(8000, &[7]), Insert::Reset { expected: 1001 });
        let r = s.pop(WAIT_PACKETS).unwrap();
        assert_eq!((s.buf[r.slot * SLOT_BYTES], r.lost, s.held()), (7, 0, 0));
        // Wrapped neighbours are early packets and duplicates, not resets.
        let mut s = Sequencer::new();
        s.insert(65530, &[0]);
        s.pop(WAIT_PACKETS).unwrap();
        assert_eq!(s.classify(20), Insert::Queued);
        let mut s = Sequencer::new();
        s.insert(10, &[0]);
        s.pop(WAIT_PACKETS).unwrap();
        assert_eq!(s.classify(65530), Insert::Duplicate);
    }
}
