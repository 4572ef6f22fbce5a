//! The worker's side of the kernel fast path (`io::fastpath`): offer a stream to the kernel
//! when its verdict is a plain forward (`core::stream::offloadable`), take it back before
//! anything changes, and fold the kernel's counters into the stream's own so that `query`,
//! `/calls`, `/metrics`, HA state, MOS and the idle timeout see every packet.
//!
//! The map is a cache of one verdict: an entry exists only while user space would forward
//! the same packet the same way. Every command that can change a verdict withdraws the
//! affected entries first (see `Core::handle_commands`); withdrawal is one atomic
//! lookup-and-delete, so each packet is either relayed by the kernel (and counted there) or
//! reaches the socket, never both and never neither.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{Core, Entry, Now};
use crate::core::plan::CallKey;
use crate::core::rtp::{classify, PacketKind};
use crate::core::stats::WorkerCounters;
use crate::core::stream;
use crate::io::fastpath::{self, FastPath, FpCounters, FpKey, Route, SYNC_INTERVAL_MS};

/// How long a stream whose entry could not be installed (map full, no route) waits before
/// it is offered again: installing costs a netlink round trip, never per packet.
const RETRY_MS: u64 = 2000;

/// A stream's entry in the kernel (see [`Entry::offload`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offload {
    key: FpKey,
    src: SocketAddr,
    via: usize,
    to: SocketAddr,
    /// The kernel's counters already folded into the stream's.
    seen: FpCounters,
}

/// The fast-path state of one worker.
pub(crate) struct FastState {
    pub fp: std::sync::Arc<FastPath>,
    /// Slots with an entry (may hold stale slots; cleaned up on every sync).
    offloaded: Vec<usize>,
    next_sync_ms: u64,
}

impl FastState {
    pub(super) fn new(fp: std::sync::Arc<FastPath>) -> FastState {
        FastState {
            fp,
            offloaded: Vec::new(),
            next_sync_ms: 0,
        }
    }

    /// After a `Forward { via, to }` verdict for what arrived on slot `arrived` (handled by
    /// slot `idx`) from `src`: install an entry when the stream qualifies, or replace one
    /// that no longer fits (the party moved, the sink relatched). Cheap when nothing is to
    /// be done: a few field checks.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn consider(
        &mut self,
        slab: &mut [Option<Entry>],
        counters: &WorkerCounters,
        idx: usize,
        arrived: usize,
        via: usize,
        to: SocketAddr,
        src: Option<SocketAddr>,
        pkt: &[u8],
        now: Now,
    ) {
        let Some(src) = src else { return };
        // RTCP (muxed) stays in user space by design: it never moves an entry.
        if classify(pkt) != PacketKind::Rtp {
            return;
        }
        let Some(Some(e)) = slab.get(idx) else { return };
        if let Some(o) = e.offload {
            if o.src == src && o.via == via && o.to == to {
                // Queued in the socket before the entry existed.
                return;
            }
            self.withdraw(slab, counters, idx, now);
        }
        let Some(Some(e)) = slab.get(idx) else { return };
        if now.mono_ms < e.fast_retry_ms
            || !stream::offloadable(slab, idx, arrived, via, to, src, pkt)
        {
            return;
        }
        let (Some(Some(e)), Some(Some(sink))) = (slab.get(idx), slab.get(via)) else {
            return;
        };
        let Some(key) = FpKey::new(src, e.local) else {
            return;
        };
        let route = Route {
            key,
            from: sink.local,
            to,
            tos: sink.tos,
        };
        let installed = self.fp.install(&route);
        let Some(Some(e)) = slab.get_mut(idx) else {
            return;
        };
        if !installed {
            e.fast_retry_ms = now.mono_ms + RETRY_MS;
            return;
        }
        e.offload = Some(Offload {
            key,
            src,
            via,
            to,
            seen: FpCounters::default(),
        });
        e.stats.offloaded.store(true, Relaxed);
        if !self.offloaded.contains(&idx) {
            self.offloaded.push(idx);
        }
        counters.fast_entries.fetch_add(1, Relaxed);
    }

    /// Take slot `idx`'s entry out of the kernel and fold its last counters in.
    pub(super) fn withdraw(
        &mut self,
        slab: &mut [Option<Entry>],
        counters: &WorkerCounters,
        idx: usize,
        now: Now,
    ) {
        let Some(Some(e)) = slab.get_mut(idx) else {
            return;
        };
        let Some(mut o) = e.offload.take() else {
            return;
        };
        e.stats.offloaded.store(false, Relaxed);
        counters.fast_entries.fetch_sub(1, Relaxed);
        if let Some(c) = self.fp.withdraw(&o.key) {
            fold(e, counters, &mut o.seen, c, now);
            // A player that starts on the sink's line continues after what the kernel sent.
            if c.seq_packets > 0 {
                if let Some(Some(sink)) = slab.get_mut(o.via) {
                    sink.line
                        .sent_elsewhere(c.ssrc, c.ext_seq as u16, c.last_ts);
                }
            }
        }
    }

    /// Withdraw every entry of `call` (and entries whose sink belongs to it).
    pub(super) fn withdraw_call(
        &mut self,
        slab: &mut [Option<Entry>],
        counters: &WorkerCounters,
        call: CallKey,
    ) {
        let now = Now::read();
        for i in 0..self.offloaded.len() {
            let idx = self.offloaded[i];
            if matches!(slab.get(idx), Some(Some(e)) if e.call == call) {
                self.withdraw(slab, counters, idx, now);
            }
        }
        self.offloaded
            .retain(|&i| matches!(slab.get(i), Some(Some(e)) if e.offload.is_some()));
    }

    /// Withdraw every entry of this worker.
    pub(super) fn withdraw_all(&mut self, slab: &mut [Option<Entry>], counters: &WorkerCounters) {
        let now = Now::read();
        for idx in std::mem::take(&mut self.offloaded) {
            self.withdraw(slab, counters, idx, now);
        }
    }

    /// Every [`SYNC_INTERVAL_MS`]: fold the kernel's counters into the streams', withdraw
    /// entries whose sink moved meanwhile, and keep the program's heartbeat fresh. Returns
    /// how long until the next sync (`None`: nothing is offloaded).
    pub(super) fn poll(
        &mut self,
        slab: &mut [Option<Entry>],
        counters: &WorkerCounters,
    ) -> Option<Duration> {
        if self.offloaded.is_empty() {
            return None;
        }
        let now = Now::read();
        if now.mono_ms < self.next_sync_ms {
            return Some(Duration::from_millis(self.next_sync_ms - now.mono_ms));
        }
        self.next_sync_ms = now.mono_ms + SYNC_INTERVAL_MS;
        self.fp.heartbeat();
        let mut i = 0;
        while i < self.offloaded.len() {
            let idx = self.offloaded[i];
            let Some(Some(e)) = slab.get(idx) else {
                self.offloaded.swap_remove(i);
                continue;
            };
            let Some(o) = e.offload else {
                self.offloaded.swap_remove(i);
                continue;
            };
            // The sink's party relatched (its packets reached user space from a new
            // address): the entry points at the old one.
            let moved =
                !matches!(slab.get(o.via), Some(Some(s)) if s.latch.destination() == Some(o.to));
            if moved {
                self.withdraw(slab, counters, idx, now);
                self.offloaded.swap_remove(i);
                continue;
            }
            if let Some(c) = self.fp.read(&o.key) {
                if let Some(Some(e)) = slab.get_mut(idx) {
                    let mut seen = o.seen;
                    fold(e, counters, &mut seen, c, now);
                    if let Some(off) = e.offload.as_mut() {
                        off.seen = seen;
                    }
                }
            }
            i += 1;
        }
        Some(Duration::from_millis(SYNC_INTERVAL_MS))
    }
}

/// Add what the kernel counted since `seen` to the stream's counters, the worker's and the
/// stream's quality figures.
fn fold(e: &mut Entry, counters: &WorkerCounters, seen: &mut FpCounters, c: FpCounters, now: Now) {
    let packets = c.packets.wrapping_sub(seen.packets);
    if packets == 0 {
        return;
    }
    let bytes = c.bytes.wrapping_sub(seen.bytes);
    // The kernel's monotonic nanoseconds as Unix milliseconds.
    let ago_ms = fastpath::mono_ns().saturating_sub(c.last_ns) / 1_000_000;
    e.stats
        .count_rx_many(packets, bytes, now.wall_ms.saturating_sub(ago_ms));
    e.stats.last_ssrc.store(c.ssrc, Relaxed);
    counters.count_rtp_many(packets, bytes);
    let same_run = seen.seq_packets > 0 && seen.ssrc == c.ssrc;
    let received = if same_run {
        u64::from(c.seq_packets.wrapping_sub(seen.seq_packets))
    } else {
        u64::from(c.seq_packets)
    };
    let advance = same_run.then(|| c.ext_seq.wrapping_sub(seen.ext_seq));
    let o = e.stats.quality.on_offloaded(
        c.ssrc,
        c.ext_seq as u16,
        advance,
        received,
        now.mono_us,
        now.wall_ms,
        counters,
    );
    counters.count_quality(o);
    *seen = c;
}

impl Core {
    /// Withdraw the entries of `call` before a command changes it.
    pub(super) fn withdraw_fast_call(&mut self, call: CallKey) {
        if let Some(f) = self.fast.as_mut() {
            f.withdraw_call(&mut self.slab, &self.counters, call);
        }
    }

    pub(super) fn withdraw_fast_all(&mut self) {
        if let Some(f) = self.fast.as_mut() {
            f.withdraw_all(&mut self.slab, &self.counters);
        }
    }

    /// The call that owns the socket `key`.
    pub(super) fn call_of(&self, key: crate::core::plan::PortKey) -> Option<CallKey> {
        let idx = *self.by_key.get(&key)?;
        self.slab.get(idx)?.as_ref().map(|e| e.call)
    }
}
