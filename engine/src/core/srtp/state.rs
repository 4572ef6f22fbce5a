//! Per-SSRC SRTP state: rollover counter and index estimation (RFC 3711 §3.3.1 and
//! appendix A), the 128-packet replay window (§3.3.2), and a small LRU table that holds
//! them for the SSRCs one context sees. rtpengine keeps the same per `ssrc_ctx`
//! (`srtp_index`, the kernel module's replay bitmap).

use super::SrtpError;

/// Replay window width in packets. RFC 3711 §3.3.2 requires at least 64; 128 is what
/// libsrtp and browsers use and tolerates the reordering seen behind jittery links.
pub const REPLAY_WINDOW: u64 = 128;

/// How many SSRCs one context tracks per direction. A call leg normally carries one or two
/// (audio plus RTX, or a re-INVITE that changes SSRC); 16 leaves ample room. When a 17th
/// SSRC is authenticated, the least recently used entry is evicted, so a peer that
/// cycles SSRCs keeps working and memory stays bounded.
pub const MAX_SSRCS: usize = 16;

/// Largest 48-bit SRTP packet index (ROC || SEQ).
const MAX_INDEX: u64 = (1 << 48) - 1;

/// The highest RTP packet index seen for one SSRC, from which the index of the next packet
/// is estimated.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RtpIndex {
    roc: u32,
    /// Highest sequence number seen, valid once `has_seq`.
    s_l: u16,
    has_seq: bool,
}

impl RtpIndex {
    /// State with a known rollover counter but no packet yet (restored state).
    pub(crate) fn with_roc(roc: u32) -> Self {
        RtpIndex {
            roc,
            s_l: 0,
            has_seq: false,
        }
    }

    /// State after the packet with 48-bit `index` (restored state).
    pub(crate) fn at(index: u64) -> Self {
        RtpIndex {
            roc: (index >> 16) as u32,
            s_l: index as u16,
            has_seq: true,
        }
    }

    pub(crate) fn roc(&self) -> u32 {
        self.roc
    }

    /// Estimate the 48-bit index of a packet with sequence number `seq` (RFC 3711
    /// appendix A). A packet that would precede index 0 or pass 2^48 - 1 is `TooOld` /
    /// `KeyExhausted`: no valid packet can carry it.
    pub(crate) fn estimate(&self, seq: u16) -> Result<u64, SrtpError> {
        if !self.has_seq {
            return Ok(((self.roc as u64) << 16) | seq as u64);
        }
        let (seq_i, s_l) = (seq as i64, self.s_l as i64);
        let roc = self.roc as i64;
        let v = if s_l < 0x8000 {
            if seq_i - s_l > 0x8000 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq_i {
            roc + 1
        } else {
            roc
        };
        if v < 0 {
            return Err(SrtpError::TooOld);
        }
        let index = ((v as u64) << 16) | seq as u64;
        if index > MAX_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        Ok(index)
    }

    /// The sender's variant: a sequence number that appears to precede the stream start
    /// (the source jumped back by more than half the sequence space) stays in the
    /// current ROC epoch instead of failing, so protecting never stalls a stream.
    pub(crate) fn estimate_outbound(&self, seq: u16) -> Result<u64, SrtpError> {
        match self.estimate(seq) {
            Err(SrtpError::TooOld) => Ok(((self.roc as u64) << 16) | seq as u64),
            other => other,
        }
    }

    /// Record that `index` was sent or authenticated.
    pub(crate) fn update(&mut self, index: u64) {
        let current = ((self.roc as u64) << 16) | self.s_l as u64;
        if !self.has_seq || index > current {
            self.roc = (index >> 16) as u32;
            self.s_l = index as u16;
            self.has_seq = true;
        }
    }
}

/// Sliding replay window over packet indices (RTP 48-bit or SRTCP 31-bit).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted.
    top: u64,
    /// Bit `n` set = index `top - n` was accepted.
    bits: u128,
    init: bool,
}

impl ReplayWindow {
    /// Would `index` be accepted? Does not change the window.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if !self.init || index > self.top {
            return Ok(());
        }
        let delta = self.top - index;
        if delta >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld);
        }
        if self.bits >> delta & 1 == 1 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    /// Mark `index` as received; call only after the packet authenticated.
    pub(crate) fn accept(&mut self, index: u64) {
        if !self.init {
            self.init = true;
            self.top = index;
            self.bits = 1;
        } else if index > self.top {
            let shift = index - self.top;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.top = index;
        } else {
            let delta = self.top - index;
            if delta < REPLAY_WINDOW {
                self.bits |= 1 << delta;
            }
        }
    }
}

/// Fixed-capacity SSRC → state map with least-recently-used eviction. Linear search over at
/// most [`MAX_SSRCS`] entries beats hashing at this size; the Vec is allocated once with
/// its full capacity, so inserting never reallocates.
#[derive(Debug, Clone)]
pub(crate) struct SsrcTable<T> {
    entries: Vec<Entry<T>>,
    clock: u64,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    ssrc: u32,
    last_used: u64,
    state: T,
}

impl<T> SsrcTable<T> {
    pub(crate) fn new() -> Self {
        SsrcTable {
            entries: Vec::with_capacity(MAX_SSRCS),
            clock: 0,
        }
    }

    pub(crate) fn get(&self, ssrc: u32) -> Option<&T> {
        self.entries
            .iter()
            .find(|e| e.ssrc == ssrc)
            .map(|e| &e.state)
    }

    /// The state for `ssrc`, created with `init` if absent (evicting the least recently
    /// used entry when full).
    pub(crate) fn get_or_insert_with(&mut self, ssrc: u32, init: impl FnOnce() -> T) -> &mut T {
        self.clock += 1;
        let clock = self.clock;
        let pos = match self.entries.iter().position(|e| e.ssrc == ssrc) {
            Some(pos) => pos,
            None => {
                let entry = Entry {
                    ssrc,
                    last_used: clock,
                    state: init(),
                };
                if self.entries.len() < MAX_SSRCS {
                    self.entries.push(entry);
                    self.entries.len() - 1
                } else {
                    let lru = self
                        .entries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.last_used)
                        .map_or(0, |(i, _)| i);
                    self.entries[lru] = entry;
                    lru
                }
            }
        };
        let entry = &mut self.entries[pos];
        entry.last_used = clock;
        &mut entry.state
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_estimation_follows_rfc3711_appendix_a() {
        let mut ix = RtpIndex::default();
        assert_eq!(ix.estimate(65530).unwrap(), 65530);
        ix.update(65530);
        // Forward across the wrap: ROC + 1.
        assert_eq!(ix.estimate(3).unwrap(), (1 << 16) | 3);
        ix.update((1 << 16) | 3);
        // A late packet from before the wrap: ROC - 1.
        assert_eq!(ix.estimate(65534).unwrap(), 65534);
        // Updating with an older index keeps the highest.
        ix.update(65534);
        assert_eq!(ix.roc(), 1);
        assert_eq!(ix.estimate(4).unwrap(), (1 << 16) | 4);
        // Below index 0 is impossible.
        let mut fresh = RtpIndex::default();
        fresh.update(10);
        assert_eq!(fresh.estimate(60000), Err(SrtpError::TooOld));
        assert_eq!(fresh.estimate_outbound(60000), Ok(60000));
        // Restored ROC with no sequence yet.
        assert_eq!(RtpIndex::with_roc(7).estimate(9).unwrap(), (7 << 16) | 9);
    }

    #[test]
    fn replay_window_rejects_replays_and_old_packets() {
        let mut w = ReplayWindow::default();
        assert!(w.check(1000).is_ok());
        w.accept(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replay));
        assert!(w.check(999).is_ok());
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replay));
        assert!(w.check(1000 - 127).is_ok());
        assert_eq!(w.check(1000 - 128), Err(SrtpError::TooOld));
        w.accept(1200);
        assert_eq!(w.check(1000), Err(SrtpError::TooOld));
        assert!(w.check(1199).is_ok());
        assert_eq!(w.check(1200), Err(SrtpError::Replay));
        // A jump past the whole window clears it.
        w.accept(5000);
        assert!(w.check(4999).is_ok());
        assert!(w.check(5000 - 127).is_ok());
    }

    #[test]
    fn ssrc_table_evicts_least_recently_used() {
        let mut t: SsrcTable<u32> = SsrcTable::new();
        for ssrc in 0..MAX_SSRCS as u32 {
            *t.get_or_insert_with(ssrc, || 0) = ssrc * 10;
        }
        // Touch 0 so that 1 becomes the least recently used.
        assert_eq!(*t.get_or_insert_with(0, || 99), 0);
        t.get_or_insert_with(100, || 1000);
        assert_eq!(t.len(), MAX_SSRCS);
        assert!(t.get(1).is_none());
        assert_eq!(t.get(0), Some(&0));
        assert_eq!(t.get(100), Some(&1000));
        assert_eq!(t.get(2), Some(&20));
    }
}
