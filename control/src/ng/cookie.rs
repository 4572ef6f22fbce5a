//! Retransmission cache (rtpengine `cookie_cache.c`).
//!
//! Kamailio resends a request with the same cookie when a reply is slow or lost. Executing it
//! twice would allocate a second set of ports for the same offer, so the reply to every cookie
//! is kept and a repeated cookie gets the stored bytes verbatim, without executing anything,
//! whatever the new body says (rtpengine keys on the cookie alone, and so do we).
//!
//! Two generations rotated every [`GENERATION`]: an entry lives 30–60 s. Memory is bounded by
//! entry count and byte total per generation; when the current generation fills up it is
//! rotated early, which only shortens how long old replies stay available.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lifetime of one generation (rtpengine uses 30 s; Kamailio retries for 5 × 1 s by default).
pub(crate) const GENERATION: Duration = Duration::from_secs(30);

/// Entries per generation. Far above any real request rate × 30 s, small enough to bound RAM.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// Bytes (cookies + replies) per generation: 64 MiB, so the cache never exceeds 128 MiB even
/// when fed maximal replies.
pub(crate) const MAX_BYTES: usize = 64 << 20;

/// Per-entry overhead counted towards [`MAX_BYTES`] (map slot, allocation headers).
const ENTRY_OVERHEAD: usize = 64;

#[derive(Default)]
struct Generation {
    replies: HashMap<Box<[u8]>, Box<[u8]>>,
    bytes: usize,
}

/// Cookie → complete reply datagram.
pub(crate) struct CookieCache {
    current: Generation,
    previous: Generation,
    rotated_at: Option<Instant>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for CookieCache {
    fn default() -> Self {
        CookieCache::new(MAX_ENTRIES, MAX_BYTES)
    }
}

impl CookieCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        CookieCache {
            current: Generation::default(),
            previous: Generation::default(),
            rotated_at: None,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// The stored reply for `cookie`, if it was answered in the last 30–60 s.
    pub(crate) fn get(&mut self, cookie: &[u8], now: Instant) -> Option<&[u8]> {
        self.expire(now);
        self.current
            .replies
            .get(cookie)
            .or_else(|| self.previous.replies.get(cookie))
            .map(|r| &r[..])
    }

    /// Remember the reply sent for `cookie`. A reply larger than the whole byte budget is not
    /// kept (the request would simply run again on a retransmission).
    pub(crate) fn insert(&mut self, cookie: &[u8], reply: &[u8], now: Instant) {
        self.expire(now);
        let size = cookie.len() + reply.len() + ENTRY_OVERHEAD;
        if size > self.max_bytes {
            return;
        }
        if self.current.replies.len() >= self.max_entries
            || self.current.bytes + size > self.max_bytes
        {
            self.rotate(now);
        }
        if let Some(old) = self.current.replies.insert(cookie.into(), reply.into()) {
            self.current.bytes -= cookie.len() + old.len() + ENTRY_OVERHEAD;
        }
        self.current.bytes += size;
    }

    /// Number of cached replies (both generations).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.current.replies.len() + self.previous.replies.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes accounted to cached replies (both generations).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.current.bytes + self.previous.bytes
    }

    fn expire(&mut self, now: Instant) {
        let Some(at) = self.rotated_at else {
            self.rotated_at = Some(now);
            return;
        };
        let age = now.saturating_duration_since(at);
        if age >= 2 * GENERATION {
            self.current = Generation::default();
            self.previous = Generation::default();
            self.rotated_at = Some(now);
        } else if age >= GENERATION {
            self.rotate(now);
        }
    }

    fn rotate(&mut self, now: Instant) {
        self.previous = std::mem::take(&mut self.current);
        self.rotated_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_by_cookie_only() {
        let t0 = Instant::now();
        let mut c = CookieCache::default();
        assert_eq!(c.get(b"8f1a2b_3", t0), None);
        c.insert(b"8f1a2b_3", b"8f1a2b_3 d6:result2:oke", t0);
        assert_eq!(
            c.get(b"8f1a2b_3", t0),
            Some(&b"8f1a2b_3 d6:result2:oke"[..])
        );
        assert_eq!(c.get(b"8f1a2b_4", t0), None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn entries_live_30_to_60_seconds() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = CookieCache::default();
        c.get(b"x", t0); // starts the clock
        c.insert(b"early", b"r1", t0 + s(1));
        c.insert(b"late", b"r2", t0 + s(29));
        // Rotation at 30 s keeps both in the previous generation.
        assert!(c.get(b"early", t0 + s(31)).is_some());
        assert!(c.get(b"late", t0 + s(59)).is_some());
        // The next rotation, 30 s later, drops them: `early` lived 60 s, `late` 32 s.
        assert_eq!(c.get(b"late", t0 + s(61)), None);
        assert_eq!(c.get(b"early", t0 + s(61)), None);
        assert!(c.is_empty());
    }

    #[test]
    fn long_idle_clears_everything() {
        let t0 = Instant::now();
        let mut c = CookieCache::default();
        c.insert(b"a", b"r", t0);
        assert_eq!(c.get(b"a", t0 + Duration::from_secs(3600)), None);
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }

    #[test]
    fn bounded_by_entries_and_bytes() {
        let t0 = Instant::now();
        let mut c = CookieCache::new(3, 1 << 20);
        for i in 0..10u8 {
            c.insert(&[i], b"r", t0);
            assert!(c.len() <= 6);
        }
        // Full generations rotate early: 9 is current, 6..=8 previous, older ones are gone.
        assert!(c.get(&[9], t0).is_some() && c.get(&[6], t0).is_some());
        assert_eq!(c.get(&[5], t0), None);

        let mut c = CookieCache::new(1000, 1000);
        let big = vec![b'x'; 400];
        for i in 0..10u8 {
            c.insert(&[i], &big, t0);
            assert!(c.bytes() <= 2000, "{}", c.bytes());
        }
        // Larger than the whole budget: not cached.
        c.insert(b"huge", &vec![0u8; 2000], t0);
        assert_eq!(c.get(b"huge", t0), None);
    }

    #[test]
    fn reinserting_a_cookie_keeps_accounting_exact() {
        let t0 = Instant::now();
        let mut c = CookieCache::default();
        c.insert(b"k", b"first", t0);
        c.insert(b"k", b"second!", t0);
        assert_eq!(c.get(b"k", t0), Some(&b"second!"[..]));
        assert_eq!(c.bytes(), 1 + 7 + ENTRY_OVERHEAD);
    }
}
