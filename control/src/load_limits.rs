//! Load limits (rtpengine `--max-sessions`, `--max-load`, `--max-cpu`, `--max-bandwidth`;
//! `call_offer_session_limit` in `call_interfaces.c`, sampling in `load.c`).
//!
//! When one of them is reached, an offer that would create a new call is refused; re-offers
//! and answers of calls that already exist go on, so established calls are never hurt. The
//! refusal is what makes Kamailio's `rtpengine` module try the next engine of its set: with
//! `supports: ["load limit"]` in the request (the module always sends it) the reply is
//! `result: "load limit"` with the reason in `message`; without it, rtpengine's legacy
//! `result: "error"` / `error-reason: "Parallel session limit reached"`, which the module also
//! recognises.
//!
//! One limit is ngmedia's own: `--max-transcoding-load`. Transcoding runs on the media
//! workers, inline with relaying; a worker that is busy all the time cannot keep up, and its
//! transcoders would fill the gaps with concealment. So while the busiest worker is busy at
//! least that share of the time, an offer of a new call that asks for transcoding is refused
//! the same way (`Transcoding load limit exceeded`); plain calls, re-offers and answers go
//! on, and the transcoded calls in progress are untouched.
//!
//! Checking is sans IO ([`LoadLimits::check`] over a [`LoadGauge`]); the gauge is fed by
//! [`CpuSampler`], [`BandwidthSampler`] and [`WorkerLoadSampler`] from a timer task in the
//! daemon, so an offer reads a few atomics and never touches `/proc`. The ng dispatch applies
//! the limits; the HTTP API shows and changes them (`/load-limits`) and exports the refusals.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often load average and CPU usage are sampled: rtpengine's load thread runs every
/// 0.5 s, and a shorter period only makes the CPU figure noisier.
pub const LOAD_SAMPLE_PERIOD: Duration = Duration::from_millis(500);
/// Bandwidth is averaged over one second, like rtpengine's per-second rates.
pub const BANDWIDTH_SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// Which limit refused a new call (rtpengine's `enum load_limit_reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadLimit {
    Sessions = 0,
    Cpu = 1,
    Load = 2,
    Bandwidth = 3,
    /// ngmedia's own: the media workers are too busy for another transcoded call.
    Transcoding = 4,
}

impl LoadLimit {
    pub const ALL: [LoadLimit; 5] = [
        LoadLimit::Sessions,
        LoadLimit::Cpu,
        LoadLimit::Load,
        LoadLimit::Bandwidth,
        LoadLimit::Transcoding,
    ];

    /// The `message` of a `load limit` reply, worded as rtpengine words it.
    pub fn message(self) -> &'static str {
        match self {
            LoadLimit::Sessions => "Parallel session limit reached",
            LoadLimit::Cpu => "CPU usage limit exceeded",
            LoadLimit::Load => "Load limit exceeded",
            LoadLimit::Bandwidth => "Bandwidth limit exceeded",
            LoadLimit::Transcoding => "Transcoding load limit exceeded",
        }
    }

    /// The `reason` label of `ngmedia_ng_offers_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            LoadLimit::Sessions => "sessions",
            LoadLimit::Cpu => "cpu",
            LoadLimit::Load => "load",
            LoadLimit::Bandwidth => "bandwidth",
            LoadLimit::Transcoding => "transcoding",
        }
    }
}

/// The configured limits. `None` (or rtpengine's "disabled" values: -1 sessions, 0 for the
/// others) means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadLimitConfig {
    /// Calls at once, deleted calls still in their delete delay included (they hold ports).
    /// 0 refuses every new call: draining an engine before maintenance.
    pub max_sessions: Option<u64>,
    /// 1-minute load average.
    pub max_load: Option<f64>,
    /// CPU usage of the whole machine, in percent.
    pub max_cpu: Option<f64>,
    /// Media received, in bytes per second.
    pub max_bandwidth: Option<u64>,
    /// Busy time of the busiest media worker, in percent of the time: at or above it, new
    /// calls that ask for transcoding are refused.
    pub max_transcoding_load: Option<f64>,
}

/// The limits in force and the latest samples, shared between the ng server (reads) and
/// the sampler task (writes). `max_sessions` can change at run time (draining).
#[derive(Debug)]
pub struct LoadLimits {
    /// Negative: no limit.
    max_sessions: AtomicI64,
    /// Hundredths; 0: no limit.
    max_load_x100: u64,
    /// Hundredths of a percent; 0: no limit.
    max_cpu_x100: u64,
    /// 0: no limit.
    max_bandwidth: u64,
    /// Hundredths of a percent; 0: no limit.
    max_transcoding_x100: u64,
    pub gauge: LoadGauge,
}

/// Latest samples (rtpengine's `load_average`, `cpu_usage`, received-bytes rate).
#[derive(Debug, Default)]
pub struct LoadGauge {
    /// 1-minute load average times 100.
    pub load_x100: AtomicU64,
    /// CPU usage in hundredths of a percent (0–10000).
    pub cpu_x100: AtomicU64,
    /// Bytes of media received per second.
    pub bandwidth: AtomicU64,
    /// Busy time of the busiest media worker over the last sampling period, in hundredths
    /// of a percent (0–10000).
    pub worker_busy_x100: AtomicU64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits::new(LoadLimitConfig::default())
    }
}

impl LoadLimits {
    pub fn new(config: LoadLimitConfig) -> LoadLimits {
        let hundredths = |v: Option<f64>| {
            v.filter(|v| v.is_finite() && *v > 0.0)
                .map_or(0, |v| (v * 100.0).round().max(1.0) as u64)
        };
        LoadLimits {
            max_sessions: AtomicI64::new(
                config
                    .max_sessions
                    .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            ),
            max_load_x100: hundredths(config.max_load),
            max_cpu_x100: hundredths(config.max_cpu),
            max_bandwidth: config.max_bandwidth.unwrap_or(0),
            max_transcoding_x100: hundredths(config.max_transcoding_load),
            gauge: LoadGauge::default(),
        }
    }

    /// The limits in force (the session limit as it is now).
    pub fn config(&self) -> LoadLimitConfig {
        let from_hundredths = |v: u64| (v > 0).then(|| v as f64 / 100.0);
        LoadLimitConfig {
            max_sessions: self.max_sessions(),
            max_load: from_hundredths(self.max_load_x100),
            max_cpu: from_hundredths(self.max_cpu_x100),
            max_bandwidth: (self.max_bandwidth > 0).then_some(self.max_bandwidth),
            max_transcoding_load: from_hundredths(self.max_transcoding_x100),
        }
    }

    /// The session limit in force (`None`: none).
    pub fn max_sessions(&self) -> Option<u64> {
        u64::try_from(self.max_sessions.load(Relaxed)).ok()
    }

    /// Change the session limit while running (`None` lifts it; `Some(0)` drains).
    pub fn set_max_sessions(&self, max: Option<u64>) {
        let v = max.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.max_sessions.store(v, Relaxed);
    }

    /// Whether a new call may be created with `sessions` calls open; the first limit
    /// reached otherwise, in rtpengine's order (sessions, load, CPU, bandwidth). Each limit
    /// is reached at equality, as in rtpengine.
    pub fn check(&self, sessions: usize) -> Option<LoadLimit> {
        if let Some(max) = self.max_sessions() {
            if sessions as u64 >= max {
                return Some(LoadLimit::Sessions);
            }
        }
        let g = &self.gauge;
        if self.max_load_x100 > 0 && g.load_x100.load(Relaxed) >= self.max_load_x100 {
            return Some(LoadLimit::Load);
        }
        if self.max_cpu_x100 > 0 && g.cpu_x100.load(Relaxed) >= self.max_cpu_x100 {
            return Some(LoadLimit::Cpu);
        }
        if self.max_bandwidth > 0 && g.bandwidth.load(Relaxed) >= self.max_bandwidth {
            return Some(LoadLimit::Bandwidth);
        }
        None
    }

    /// Whether a new call that asks for transcoding may be created (after [`Self::check`]
    /// let it through): [`LoadLimit::Transcoding`] while the busiest media worker is busy at
    /// least `--max-transcoding-load` of the time.
    pub fn check_transcoding(&self) -> Option<LoadLimit> {
        (self.max_transcoding_x100 > 0
            && self.gauge.worker_busy_x100.load(Relaxed) >= self.max_transcoding_x100)
            .then_some(LoadLimit::Transcoding)
    }

    /// Whether the media workers' busy time must be sampled.
    pub fn samples_workers(&self) -> bool {
        self.max_transcoding_x100 > 0
    }

    /// Whether the load average or CPU usage must be sampled.
    pub fn samples_system(&self) -> bool {
        self.max_load_x100 > 0 || self.max_cpu_x100 > 0
    }

    pub fn samples_load(&self) -> bool {
        self.max_load_x100 > 0
    }

    pub fn samples_cpu(&self) -> bool {
        self.max_cpu_x100 > 0
    }

    /// Whether the received-bytes rate must be sampled.
    pub fn samples_bandwidth(&self) -> bool {
        self.max_bandwidth > 0
    }
}

/// The 1-minute load average from the text of `/proc/loadavg`, times 100.
pub fn parse_loadavg(text: &str) -> Option<u64> {
    let first: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    (first.is_finite() && first >= 0.0).then(|| (first * 100.0).round() as u64)
}

/// CPU usage between two readings of `/proc/stat`'s `cpu` line (user + nice + system over
/// those plus idle, as rtpengine counts it).
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
}

impl CpuSampler {
    /// Feed the text of `/proc/stat`; the usage since the previous reading in hundredths of
    /// a percent, `None` on the first reading, when no time passed, or on unreadable text.
    pub fn sample(&mut self, proc_stat: &str) -> Option<u64> {
        let line = proc_stat.lines().next()?;
        let mut fields = line.split_ascii_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let mut n = [0u64; 4];
        for slot in &mut n {
            *slot = fields.next()?.parse().ok()?;
        }
        let [user, nice, system, idle] = n;
        let used = user.saturating_add(nice).saturating_add(system);
        let previous = self.last.replace((used, idle));
        let (used_last, idle_last) = previous?;
        let used_d = used.checked_sub(used_last)?;
        let idle_d = idle.checked_sub(idle_last)?;
        let total = used_d + idle_d;
        (total > 0).then(|| used_d * 10_000 / total)
    }
}

/// Received-bytes rate from the engine's running byte total.
#[derive(Debug, Default)]
pub struct BandwidthSampler {
    last: Option<(Instant, u64)>,
}

impl BandwidthSampler {
    /// Feed the total bytes received so far at `at`; bytes per second since the previous
    /// reading (`None` on the first one or when no time passed).
    pub fn sample(&mut self, at: Instant, total_bytes: u64) -> Option<u64> {
        let (then, before) = self.last.replace((at, total_bytes))?;
        let ms = u64::try_from(at.saturating_duration_since(then).as_millis()).ok()?;
        if ms == 0 {
            return None;
        }
        Some(total_bytes.saturating_sub(before).saturating_mul(1000) / ms)
    }
}

/// Busy share of the busiest media worker, from the workers' running busy-time totals
/// (`MediaWorkers::loads`: nanoseconds from each wake-up to the next wait).
#[derive(Debug, Default)]
pub struct WorkerLoadSampler {
    at: Option<Instant>,
    busy_ns: Vec<u64>,
}

impl WorkerLoadSampler {
    /// Feed each worker's busy nanoseconds so far, read at `at`; the largest share of the
    /// time since the previous reading that one worker spent busy, in hundredths of a
    /// percent (`None` on the first reading, when no time passed or the workers changed).
    pub fn sample(
        &mut self,
        at: Instant,
        busy_ns: impl ExactSizeIterator<Item = u64>,
    ) -> Option<u64> {
        let then = self.at.replace(at);
        let same_workers = self.busy_ns.len() == busy_ns.len();
        let mut busiest = 0;
        self.busy_ns.resize(busy_ns.len(), 0);
        for (before, now) in self.busy_ns.iter_mut().zip(busy_ns) {
            busiest = busiest.max(now.saturating_sub(*before));
            *before = now;
        }
        let wall = u64::try_from(at.saturating_duration_since(then?).as_nanos()).ok()?;
        (same_workers && wall > 0).then(|| (busiest.saturating_mul(10_000) / wall).min(10_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(config: LoadLimitConfig) -> LoadLimits {
        LoadLimits::new(config)
    }

    #[test]
    fn no_limits_never_refuse() {
        let l = LoadLimits::default();
        l.gauge.load_x100.store(10_000, Relaxed);
        l.gauge.cpu_x100.store(10_000, Relaxed);
        l.gauge.bandwidth.store(u64::MAX, Relaxed);
        assert_eq!(l.check(1_000_000), None);
        assert!(!l.samples_system() && !l.samples_bandwidth());
    }

    #[test]
    fn session_limit_is_reached_at_equality_and_zero_drains() {
        let l = limits(LoadLimitConfig {
            max_sessions: Some(2),
            ..Default::default()
        });
        assert_eq!(l.check(1), None);
        assert_eq!(l.check(2), Some(LoadLimit::Sessions));
        l.set_max_sessions(Some(0));
        assert_eq!(l.check(0), Some(LoadLimit::Sessions));
        l.set_max_sessions(None);
        assert_eq!(l.check(5), None);
    }

    #[test]
    fn system_limits_in_rtpengine_order() {
        let l = limits(LoadLimitConfig {
            max_sessions: Some(10),
            max_load: Some(1.5),
            max_cpu: Some(80.0),
            max_bandwidth: Some(1_000),
            max_transcoding_load: None,
        });
        assert!(l.samples_system() && l.samples_bandwidth());
        assert_eq!(l.check(0), None);
        l.gauge.bandwidth.store(1_000, Relaxed);
        assert_eq!(l.check(0), Some(LoadLimit::Bandwidth));
        l.gauge.cpu_x100.store(8_000, Relaxed);
        assert_eq!(l.check(0), Some(LoadLimit::Cpu));
        l.gauge.load_x100.store(149, Relaxed);
        assert_eq!(l.check(0), Some(LoadLimit::Cpu));
        l.gauge.load_x100.store(150, Relaxed);
        assert_eq!(l.check(0), Some(LoadLimit::Load));
        assert_eq!(l.check(10), Some(LoadLimit::Sessions));
    }

    #[test]
    fn messages_are_rtpengines() {
        assert_eq!(
            LoadLimit::Sessions.message(),
            "Parallel session limit reached"
        );
        assert_eq!(LoadLimit::Cpu.message(), "CPU usage limit exceeded");
        assert_eq!(LoadLimit::Load.message(), "Load limit exceeded");
        assert_eq!(LoadLimit::Bandwidth.message(), "Bandwidth limit exceeded");
    }

    #[test]
    fn loadavg_and_cpu_parse_proc_text() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/467 12345\n"), Some(52));
        assert_eq!(parse_loadavg("12.00 1 1"), Some(1200));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x"), None);

        let mut cpu = CpuSampler::default();
        assert_eq!(
            cpu.sample("cpu  100 0 100 800 5 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            None
        );
        // +75 used, +25 idle: 75 %.
        assert_eq!(cpu.sample("cpu  150 5 120 825 0 0\n"), Some(7_500));
        // No time passed.
        assert_eq!(cpu.sample("cpu  150 5 120 825\n"), None);
        assert_eq!(cpu.sample("intr 1 2 3\n"), None);
        assert_eq!(cpu.sample("cpu 1 2"), None);
    }

    #[test]
    fn bandwidth_is_bytes_per_second() {
        let mut bw = BandwidthSampler::default();
        let t0 = Instant::now();
        assert_eq!(bw.sample(t0, 1_000), None);
        assert_eq!(
            bw.sample(t0 + Duration::from_millis(500), 6_000),
            Some(10_000)
        );
        assert_eq!(bw.sample(t0 + Duration::from_millis(500), 9_000), None);
    }

    #[test]
    fn transcoding_limit_reads_the_busiest_worker_and_only_refuses_transcoding() {
        let l = limits(LoadLimitConfig {
            max_transcoding_load: Some(80.0),
            ..Default::default()
        });
        assert!(l.samples_workers() && !l.samples_system());
        l.gauge.worker_busy_x100.store(7_999, Relaxed);
        assert_eq!(l.check_transcoding(), None);
        l.gauge.worker_busy_x100.store(8_000, Relaxed);
        assert_eq!(l.check_transcoding(), Some(LoadLimit::Transcoding));
        assert_eq!(l.check(1_000), None, "plain calls are not refused");
        assert_eq!(l.config().max_transcoding_load, Some(80.0));
        let off = LoadLimits::default();
        off.gauge.worker_busy_x100.store(10_000, Relaxed);
        assert_eq!(off.check_transcoding(), None);
        assert!(!off.samples_workers());
    }

    #[test]
    fn worker_load_is_the_busiest_workers_share_of_the_period() {
        let mut s = WorkerLoadSampler::default();
        let t0 = Instant::now();
        assert_eq!(s.sample(t0, [0u64, 0].into_iter()), None, "first reading");
        let t1 = t0 + Duration::from_millis(500);
        // 100 ms and 400 ms busy in 500 ms: the busier worker, 80 %.
        let busy = [100_000_000u64, 400_000_000];
        assert_eq!(s.sample(t1, busy.into_iter()), Some(8_000));
        assert_eq!(s.sample(t1, busy.into_iter()), None, "no time passed");
        let t2 = t1 + Duration::from_millis(500);
        assert_eq!(s.sample(t2, busy.into_iter()), Some(0), "idle");
        let t3 = t2 + Duration::from_millis(500);
        assert_eq!(
            s.sample(t3, [0u64, 0, 0].into_iter()),
            None,
            "workers changed"
        );
        let t4 = t3 + Duration::from_millis(100);
        assert_eq!(
            s.sample(t4, [u64::MAX, 0, 0].into_iter()),
            Some(10_000),
            "capped"
        );
    }
}
