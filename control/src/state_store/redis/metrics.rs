//! HA counters, written by the Redis tasks and read by `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Lock-free HA figures shared between the Redis tasks and the HTTP side.
#[derive(Debug, Default)]
pub struct HaMetrics {
    instance: String,
    standby: bool,
    up: AtomicBool,
    writes: AtomicU64,
    write_errors: AtomicU64,
    pending: AtomicU64,
    restored: AtomicU64,
    restore_failed: AtomicU64,
    takeovers: AtomicU64,
}

/// A copy of [`HaMetrics`] for one scrape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HaFigures {
    pub instance: String,
    /// `active` or `standby`.
    pub role: &'static str,
    pub redis_up: bool,
    pub writes: u64,
    pub write_errors: u64,
    pub pending_calls: u64,
    pub restored: u64,
    pub restore_failed: u64,
    pub takeovers: u64,
}

impl HaMetrics {
    pub fn new(instance: &str, standby: bool) -> HaMetrics {
        HaMetrics {
            instance: instance.to_string(),
            standby,
            ..Default::default()
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    pub fn add_writes(&self, n: u64) {
        self.writes.fetch_add(n, Relaxed);
    }

    pub fn add_write_error(&self) {
        self.write_errors.fetch_add(1, Relaxed);
    }

    pub fn set_pending(&self, n: usize) {
        self.pending.store(n as u64, Relaxed);
    }

    pub fn add_restored(&self, restored: usize, failed: usize) {
        self.restored.fetch_add(restored as u64, Relaxed);
        self.restore_failed.fetch_add(failed as u64, Relaxed);
    }

    pub fn add_takeover(&self) {
        self.takeovers.fetch_add(1, Relaxed);
    }

    pub fn figures(&self) -> HaFigures {
        HaFigures {
            instance: self.instance.clone(),
            role: if self.standby { "standby" } else { "active" },
            redis_up: self.up.load(Relaxed),
            writes: self.writes.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            pending_calls: self.pending.load(Relaxed),
            restored: self.restored.load(Relaxed),
            restore_failed: self.restore_failed.load(Relaxed),
            takeovers: self.takeovers.load(Relaxed),
        }
    }
}
