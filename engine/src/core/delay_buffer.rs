//! The delay buffer of a party's RTP (rtpengine's `delay_buffer` of `codec.c`, the
//! `delay-buffer` key of `block DTMF`): every packet the party sends is held for a fixed
//! time before it goes on toward the peer. DTMF is recognised as packets arrive, but
//! what replaces it is decided when each packet leaves, so the audio shortly *before* a
//! digit (which arrived before the digit could be recognised) is masked too: an in-band
//! digit needs ~40 ms of audio to be detected, and without the delay its first packets
//! would already be gone.
//!
//! A fixed ring of packet slots, allocated when the buffer is configured; the packet path
//! copies a packet in and, when due, out again. Packets leave in arrival order, each
//! `delay` after it arrived. A full ring releases its oldest packet early rather than
//! drop one.

/// Packets held at most, whatever the delay: 5 s of 10 ms packets (rtpengine's own tests
/// delay by up to 2 s).
pub const MAX_DELAY_SLOTS: usize = 512;
/// Slots beyond one per 10 ms of delay: room for bursts and jitter.
const SPARE_SLOTS: usize = 8;
/// Largest packet held (bytes); larger ones are not delayed. An RTP packet of 60 ms of
/// G.711 is 492 bytes; event packets grown into audio stay below 1200 + header.
pub const DELAY_SLOT_BYTES: usize = 1280;

/// Slots for `delay_ms`: one per 10 ms packet the delay spans, plus spare ones.
fn slots_for(delay_ms: u32) -> usize {
    (delay_ms as usize / 10 + SPARE_SLOTS).min(MAX_DELAY_SLOTS)
}

/// One party's delay buffer.
#[derive(Debug)]
pub struct DelayBuffer {
    delay_us: u64,
    slots: usize,
    /// Packet bytes, slot after slot.
    data: Box<[u8]>,
    /// Length and due time (monotonic µs) of each slot's packet.
    meta: Box<[(usize, u64)]>,
    /// Index of the oldest packet and how many are held.
    head: usize,
    len: usize,
}

impl DelayBuffer {
    /// An empty buffer holding each packet `delay_ms`.
    pub fn new(delay_ms: u32) -> DelayBuffer {
        let slots = slots_for(delay_ms);
        DelayBuffer {
            delay_us: u64::from(delay_ms) * 1000,
            slots,
            data: vec![0; slots * DELAY_SLOT_BYTES].into_boxed_slice(),
            meta: vec![(0, 0); slots].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// The delay of packets pushed from now on; held packets keep their due time. A
    /// longer delay than the ring was sized for needs a new buffer ([`Self::fits`]).
    pub fn set_delay(&mut self, delay_ms: u32) {
        self.delay_us = u64::from(delay_ms) * 1000;
    }

    /// The ring is large enough for `delay_ms`.
    pub fn fits(&self, delay_ms: u32) -> bool {
        self.slots >= slots_for(delay_ms)
    }

    pub fn delay_ms(&self) -> u32 {
        (self.delay_us / 1000) as u32
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// When the oldest packet is due (monotonic µs).
    pub fn next_due_us(&self) -> Option<u64> {
        (self.len > 0).then(|| self.meta[self.head].1)
    }

    /// Hold `pkt`, received at `now_us`. `false` when it cannot be held (too large, or the
    /// ring is full: the caller releases the oldest and tries again, or sends it on).
    pub fn push(&mut self, now_us: u64, pkt: &[u8]) -> bool {
        if pkt.len() > DELAY_SLOT_BYTES || self.len == self.slots {
            return false;
        }
        let slot = (self.head + self.len) % self.slots;
        let at = slot * DELAY_SLOT_BYTES;
        self.data[at..at + pkt.len()].copy_from_slice(pkt);
        self.meta[slot] = (pkt.len(), now_us + self.delay_us);
        self.len += 1;
        true
    }

    /// Everything held is due now (the settings changed: it goes on at once).
    pub fn expedite(&mut self) {
        for i in 0..self.len {
            self.meta[(self.head + i) % self.slots].1 = 0;
        }
    }

    /// The ring is full.
    pub fn is_full(&self) -> bool {
        self.len == self.slots
    }

    /// Move the oldest packet into `out` if it is due at `now_us` (`None`: nothing due),
    /// returning its length. A packet larger than `out` is discarded (`Some(0)`).
    pub fn pop_due(&mut self, now_us: u64, out: &mut [u8]) -> Option<usize> {
        match self.next_due_us() {
            Some(due) if due <= now_us => self.pop(out),
            _ => None,
        }
    }

    /// Move the oldest packet into `out`, due or not (flushing).
    pub fn pop(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let slot = self.head;
        let (n, _) = self.meta[slot];
        self.head = (self.head + 1) % self.slots;
        self.len -= 1;
        if n > out.len() {
            return Some(0);
        }
        let at = slot * DELAY_SLOT_BYTES;
        out[..n].copy_from_slice(&self.data[at..at + n]);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_leave_in_order_after_the_delay() {
        let mut b = DelayBuffer::new(100);
        assert!(b.push(1_000, &[1, 2, 3]));
        assert!(b.push(21_000, &[4]));
        let mut out = [0u8; 16];
        assert_eq!(b.pop_due(100_999, &mut out), None);
        assert_eq!(b.next_due_us(), Some(101_000));
        assert_eq!(b.pop_due(101_000, &mut out), Some(3));
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(b.pop_due(101_000, &mut out), None);
        assert_eq!(b.pop(&mut out), Some(1));
        assert_eq!(out[0], 4);
        assert!(b.is_empty());
        assert_eq!(b.pop(&mut out), None);
    }

    #[test]
    fn a_full_ring_refuses_and_wraps() {
        let mut b = DelayBuffer::new(10);
        let slots = slots_for(10);
        assert_eq!(b.slots, slots);
        assert!(b.fits(10) && !b.fits(200));
        for i in 0..slots {
            assert!(b.push(i as u64, &[i as u8]));
        }
        assert!(b.is_full());
        assert!(!b.push(99, &[0xff]));
        let mut out = [0u8; 4];
        assert_eq!(b.pop(&mut out), Some(1));
        assert_eq!(out[0], 0);
        assert!(b.push(99, &[0xee]));
        for i in 1..slots {
            assert_eq!(b.pop(&mut out), Some(1));
            assert_eq!(out[0], i as u8);
        }
        assert_eq!(b.pop(&mut out), Some(1));
        assert_eq!(out[0], 0xee);
        assert!(!b.push(0, &[0; DELAY_SLOT_BYTES + 1]));
    }
}
