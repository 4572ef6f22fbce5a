//! ng request counters and latency, shared with the HTTP `/metrics` endpoint.
//!
//! The ng server is the only writer and the HTTP side only reads, so plain relaxed atomics
//! are enough: a scrape may see one request counted and its latency not yet, never a torn
//! value. [`ControlCounters`](super::ControlCounters) stays the ng `statistics` source; this
//! is the lock-free copy another task can read while the server runs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use ngmedia_engine::sync::lock;

use super::counters::ProxyCounters;
use super::request::CommandKind;
use crate::load_limits::LoadLimit;

/// Upper bounds of the ng latency histogram, in microseconds. ng commands are handled in
/// tens to hundreds of microseconds (no I/O, one registry lock); the upper buckets catch a
/// starved control thread, and Kamailio's default `rtpengine_tout_ms` is 1 s.
pub(crate) const LATENCY_BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];

/// Outcome of one ng request, the `result` label of `ngmedia_ng_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NgResult {
    /// Any non-error reply (`ok`, `pong`, `ok` with a warning).
    Ok = 0,
    /// `result: error`.
    Error = 1,
    /// `result: load limit`: an offer refused by a load limit (only `offer` gets it).
    LoadLimit = 2,
}

impl NgResult {
    pub const ALL: [NgResult; 3] = [NgResult::Ok, NgResult::Error, NgResult::LoadLimit];

    pub fn as_str(self) -> &'static str {
        match self {
            NgResult::Ok => "ok",
            NgResult::Error => "error",
            NgResult::LoadLimit => "load_limit",
        }
    }
}

/// Latency histogram of one command: per-bucket counts (not cumulative; the last slot is
/// `+Inf`), the sum in microseconds.
#[derive(Debug, Default)]
struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// ng request counters by command and result, with a latency histogram per command.
/// Requests whose command could not be read (bad encoding, no `command`, unknown name) are
/// counted under `command = None`.
#[derive(Debug, Default)]
pub struct NgMetrics {
    requests: [[AtomicU64; NgResult::ALL.len()]; CommandKind::ALL.len()],
    latency: [Latency; CommandKind::ALL.len()],
    invalid: [AtomicU64; NgResult::ALL.len()],
    /// Retransmissions answered from the cookie cache (not executed, not in `requests`).
    replayed: AtomicU64,
    /// Datagrams without a cookie, or whose reply could not be sent in one datagram.
    dropped: AtomicU64,
    /// Requests dropped by `--ng-rate-limit`.
    rate_limited: AtomicU64,
    /// New calls refused by a load limit, by [`LoadLimit`] (whatever the reply's shape).
    refused: [AtomicU64; LoadLimit::ALL.len()],
    /// The per-proxy counters as the server last published them (at most `MAX_PROXIES`
    /// entries, one copy per request: the ng path, never the packet path).
    proxies: Mutex<BTreeMap<IpAddr, ProxyCounters>>,
}

/// A histogram read at one moment: cumulative counts per bucket of [`LATENCY_BUCKETS_US`]
/// then `+Inf`, and the sum in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    pub cumulative: [u64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_secs: f64,
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative[LATENCY_BUCKETS_US.len()]
    }
}

impl NgMetrics {
    /// Count one executed request and how long it took.
    pub fn record(&self, kind: Option<CommandKind>, result: NgResult, took: Duration) {
        let Some(kind) = kind else {
            self.invalid[result as usize].fetch_add(1, Relaxed);
            return;
        };
        self.requests[kind.index()][result as usize].fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let latency = &self.latency[kind.index()];
        let slot = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        latency.buckets[slot].fetch_add(1, Relaxed);
        latency.sum_us.fetch_add(us, Relaxed);
    }

    pub fn count_replayed(&self) {
        self.replayed.fetch_add(1, Relaxed);
    }

    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Count one new call refused by a load limit.
    pub fn count_refused(&self, limit: LoadLimit) {
        self.refused[limit as usize].fetch_add(1, Relaxed);
    }

    pub fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }

    /// Requests dropped by `--ng-rate-limit`.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Relaxed)
    }

    /// Publish one proxy's counters after a request of its.
    pub fn publish_proxy(&self, proxy: &ProxyCounters) {
        let mut proxies = lock(&self.proxies);
        match proxies.get_mut(&proxy.address) {
            Some(p) => p.clone_from(proxy),
            None => {
                proxies.insert(proxy.address, proxy.clone());
            }
        }
    }

    /// The per-proxy counters, by address.
    pub fn proxies(&self) -> Vec<ProxyCounters> {
        let proxies = lock(&self.proxies);
        proxies.values().cloned().collect()
    }

    /// New calls refused by `limit`.
    pub fn refused(&self, limit: LoadLimit) -> u64 {
        self.refused[limit as usize].load(Relaxed)
    }

    pub fn requests(&self, kind: CommandKind, result: NgResult) -> u64 {
        self.requests[kind.index()][result as usize].load(Relaxed)
    }

    /// Requests whose command could not be determined.
    pub fn invalid(&self, result: NgResult) -> u64 {
        self.invalid[result as usize].load(Relaxed)
    }

    pub fn replayed(&self) -> u64 {
        self.replayed.load(Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    pub fn latency(&self, kind: CommandKind) -> LatencySnapshot {
        let l = &self.latency[kind.index()];
        let mut cumulative = [0; LATENCY_BUCKETS_US.len() + 1];
        let mut running = 0u64;
        for (c, b) in cumulative.iter_mut().zip(&l.buckets) {
            running = running.saturating_add(b.load(Relaxed));
            *c = running;
        }
        LatencySnapshot {
            cumulative,
            sum_secs: l.sum_us.load(Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_command_and_result_with_cumulative_buckets() {
        let m = NgMetrics::default();
        m.record(
            Some(CommandKind::Offer),
            NgResult::Ok,
            Duration::from_micros(50),
        );
        m.record(
            Some(CommandKind::Offer),
            NgResult::Ok,
            Duration::from_micros(51),
        );
        m.record(
            Some(CommandKind::Offer),
            NgResult::Error,
            Duration::from_secs(3),
        );
        m.record(None, NgResult::Error, Duration::from_micros(10));
        assert_eq!(m.requests(CommandKind::Offer, NgResult::Ok), 2);
        assert_eq!(m.requests(CommandKind::Offer, NgResult::Error), 1);
        assert_eq!(m.requests(CommandKind::Answer, NgResult::Ok), 0);
        assert_eq!(m.invalid(NgResult::Error), 1);
        let l = m.latency(CommandKind::Offer);
        // 50 µs lands in the 50 µs bucket (le is inclusive), 51 µs in 100 µs, 3 s in +Inf.
        assert_eq!(l.cumulative, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
        assert_eq!(l.count(), 3);
        assert!((l.sum_secs - 3.000101).abs() < 1e-9);
        assert_eq!(m.latency(CommandKind::Ping).count(), 0);
    }
}
