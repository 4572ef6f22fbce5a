//! A per-source rate limit for ng requests (`--ng-rate-limit`): one token bucket per client
//! address, refilled at the limit per second and holding one second's worth, so a proxy's
//! bursts pass while a source that floods is cut to the limit. Retransmissions answered from
//! the cookie cache are not counted: they cost nothing and a proxy needs their answers.
//!
//! The table is bounded: when it is full, buckets that have refilled (sources idle for a
//! second) are forgotten; if none has, a new source is let through untracked rather than
//! refused, so spoofed sources can never lock a real proxy out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most sources tracked at once.
const MAX_SOURCES: usize = 4096;
/// A refused source is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the limiter says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Allowed,
    /// Over the limit; `log` is true at most once a minute per source.
    Refused {
        log: bool,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    logged: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct SourceLimiter {
    per_second: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl SourceLimiter {
    /// At most `per_second` requests a second from one address (at least 1).
    pub(crate) fn new(per_second: u32) -> SourceLimiter {
        SourceLimiter {
            per_second: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
        }
    }

    pub(crate) fn admit(&mut self, source: IpAddr, now: Instant) -> Admission {
        let full = self.per_second;
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            let refill = Duration::from_secs(1);
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.at) < refill);
            if self.buckets.len() >= MAX_SOURCES {
                return Admission::Allowed;
            }
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: full,
            at: now,
            logged: None,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * full).min(full);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Admission::Allowed;
        }
        let log = bucket
            .logged
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        if log {
            bucket.logged = Some(now);
        }
        Admission::Refused { log }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_of_one_second_passes_then_the_rate_holds() {
        let mut l = SourceLimiter::new(10);
        let t0 = Instant::now();
        let allowed = (0..25)
            .filter(|_| l.admit(ip(1), t0) == Admission::Allowed)
            .count();
        assert_eq!(allowed, 10);
        // Half a second refills five.
        let t1 = t0 + Duration::from_millis(500);
        let allowed = (0..25)
            .filter(|_| l.admit(ip(1), t1) == Admission::Allowed)
            .count();
        assert_eq!(allowed, 5);
        // Another source has its own bucket.
        assert_eq!(l.admit(ip(2), t1), Admission::Allowed);
    }

    #[test]
    fn refusals_are_logged_once_a_minute() {
        let mut l = SourceLimiter::new(1);
        let t0 = Instant::now();
        assert_eq!(l.admit(ip(1), t0), Admission::Allowed);
        assert_eq!(l.admit(ip(1), t0), Admission::Refused { log: true });
        assert_eq!(l.admit(ip(1), t0), Admission::Refused { log: false });
        let later = t0 + Duration::from_secs(30);
        assert_eq!(l.admit(ip(1), later), Admission::Allowed);
        assert_eq!(l.admit(ip(1), later), Admission::Refused { log: false });
        let minute = t0 + Duration::from_secs(61);
        assert_eq!(l.admit(ip(1), minute), Admission::Allowed);
        assert_eq!(l.admit(ip(1), minute), Admission::Refused { log: true });
    }

    #[test]
    fn a_full_table_forgets_idle_sources_and_never_refuses_a_new_one() {
        let mut l = SourceLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            l.admit(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(l.tracked(), MAX_SOURCES);
        // All busy: a new source passes untracked.
        assert_eq!(l.admit(ip(1), t0), Admission::Allowed);
        assert_eq!(l.admit(ip(1), t0), Admission::Allowed);
        assert_eq!(l.tracked(), MAX_SOURCES);
        // A second later the idle ones are forgotten and the new source is tracked.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(l.admit(ip(1), t1), Admission::Allowed);
        assert_eq!(l.admit(ip(1), t1), Admission::Refused { log: true });
        assert_eq!(l.tracked(), 1);
    }
}
