//! Control-plane counters for the `statistics` reply (rtpengine's `controlstatistics` and
//! `intervalstatistics`) and the metrics: requests, errors and timings, in total, per proxy
//! and since the previous `statistics` request. Plain values fed with the time; the dispatch
//! (`dispatch`) and the transport loop (`server`) count into them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::request::CommandKind;

/// Distinct proxies tracked in `controlstatistics`; later ones are counted only in totals,
/// so a spoofed-source flood cannot grow the table without bound.
const MAX_PROXIES: usize = 256;

/// Requests and errors of one proxy (one source address).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCounters {
    pub address: IpAddr,
    /// Indexed by [`CommandKind::index`].
    pub commands: [u64; CommandKind::ALL.len()],
    /// Seconds spent executing each command (rtpengine's `<cmd>duration`).
    pub seconds: [f64; CommandKind::ALL.len()],
    pub errors: u64,
}

/// Command delays and request rates since the previous `statistics` request (rtpengine's
/// `intervalstatistics`, which it takes over its graphite interval).
#[derive(Debug, Clone)]
pub struct IntervalCounters {
    pub delay_min: [Option<Duration>; CommandKind::ALL.len()],
    pub delay_max: [Duration; CommandKind::ALL.len()],
    pub delay_sum: [Duration; CommandKind::ALL.len()],
    pub requests: [u64; CommandKind::ALL.len()],
    /// Lowest and highest requests in one whole second of the interval.
    pub rate_min: [Option<u64>; CommandKind::ALL.len()],
    pub rate_max: [u64; CommandKind::ALL.len()],
    /// Start of the second being counted, and its counts.
    second: Option<Instant>,
    this_second: [u64; CommandKind::ALL.len()],
    /// When the interval began.
    pub since: Option<Instant>,
}

impl Default for IntervalCounters {
    fn default() -> Self {
        IntervalCounters {
            delay_min: [None; CommandKind::ALL.len()],
            delay_max: [Duration::ZERO; CommandKind::ALL.len()],
            delay_sum: [Duration::ZERO; CommandKind::ALL.len()],
            requests: [0; CommandKind::ALL.len()],
            rate_min: [None; CommandKind::ALL.len()],
            rate_max: [0; CommandKind::ALL.len()],
            second: None,
            this_second: [0; CommandKind::ALL.len()],
            since: None,
        }
    }
}

impl IntervalCounters {
    /// Close the seconds that ended before `at` into the per-second minimum and maximum.
    fn roll(&mut self, at: Instant) {
        let start = *self.second.get_or_insert(at);
        let whole = at.saturating_duration_since(start).as_secs();
        if whole == 0 {
            return;
        }
        for i in 0..CommandKind::ALL.len() {
            // The second just ended, then (when more passed) a second with no requests.
            let mut lowest = self.this_second[i];
            if whole > 1 {
                lowest = 0;
            }
            let min = self.rate_min[i].get_or_insert(lowest);
            *min = (*min).min(lowest);
            self.rate_max[i] = self.rate_max[i].max(self.this_second[i]);
        }
        self.this_second = [0; CommandKind::ALL.len()];
        self.second = Some(start + Duration::from_secs(whole));
    }

    fn record(&mut self, kind: CommandKind, took: Duration, at: Instant) {
        self.since.get_or_insert(at);
        self.roll(at);
        let i = kind.index();
        self.this_second[i] += 1;
        self.requests[i] += 1;
        self.delay_sum[i] += took;
        self.delay_max[i] = self.delay_max[i].max(took);
        let min = self.delay_min[i].get_or_insert(took);
        *min = (*min).min(took);
    }
}

/// Control-plane counters for `statistics` (rtpengine's `controlstatistics`) and metrics.
#[derive(Debug, Clone, Default)]
pub struct ControlCounters {
    commands: [u64; CommandKind::ALL.len()],
    errors: u64,
    /// Datagrams dropped without a reply (no cookie).
    dropped: u64,
    /// Retransmissions answered from the cookie cache.
    replayed: u64,
    proxies: BTreeMap<IpAddr, ProxyCounters>,
    interval: IntervalCounters,
}

impl ControlCounters {
    /// Count one executed request of a known command.
    pub fn count(&mut self, from: Option<IpAddr>, kind: CommandKind) {
        self.commands[kind.index()] += 1;
        if let Some(p) = self.proxy(from) {
            p.commands[kind.index()] += 1;
        }
    }

    /// Time one executed request: per-proxy durations and the interval figures.
    pub fn time(&mut self, from: Option<IpAddr>, kind: CommandKind, took: Duration, at: Instant) {
        if let Some(p) = self.proxy(from) {
            p.seconds[kind.index()] += took.as_secs_f64();
        }
        self.interval.record(kind, took, at);
    }

    /// The interval figures so far, the interval going on.
    pub fn peek_interval(&self, at: Instant) -> IntervalCounters {
        let mut so_far = self.interval.clone();
        so_far.roll(at);
        so_far.since.get_or_insert(at);
        so_far
    }

    /// The interval figures so far, and a new interval from `at`.
    pub fn take_interval(&mut self, at: Instant) -> IntervalCounters {
        self.interval.roll(at);
        let mut done = std::mem::take(&mut self.interval);
        done.since.get_or_insert(at);
        self.interval.since = Some(at);
        done
    }

    /// Count one message dropped without a reply (no cookie, or a reply that cannot fit).
    pub(crate) fn count_dropped(&mut self) {
        self.dropped += 1;
    }

    /// Count one retransmission answered from the cookie cache.
    pub(crate) fn count_replayed(&mut self) {
        self.replayed += 1;
    }

    /// Count one error reply.
    pub fn count_error(&mut self, from: Option<IpAddr>) {
        self.errors += 1;
        if let Some(p) = self.proxy(from) {
            p.errors += 1;
        }
    }

    fn proxy(&mut self, from: Option<IpAddr>) -> Option<&mut ProxyCounters> {
        let address = from?;
        if !self.proxies.contains_key(&address) && self.proxies.len() >= MAX_PROXIES {
            return None;
        }
        Some(
            self.proxies
                .entry(address)
                .or_insert_with(|| ProxyCounters {
                    address,
                    commands: [0; CommandKind::ALL.len()],
                    seconds: [0.0; CommandKind::ALL.len()],
                    errors: 0,
                }),
        )
    }

    pub fn command_count(&self, kind: CommandKind) -> u64 {
        self.commands[kind.index()]
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    pub fn proxies(&self) -> impl Iterator<Item = &ProxyCounters> {
        self.proxies.values()
    }

    /// The counters of the proxy at `address`, if it is tracked.
    pub(crate) fn proxy_at(&self, address: IpAddr) -> Option<&ProxyCounters> {
        self.proxies.get(&address)
    }
}
