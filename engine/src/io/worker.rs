//! One media worker thread (rtpengine's poller thread): the state and packet logic both IO
//! backends share.
//!
//! [`Core`] holds the worker's sockets with their stream state and applies control-plane
//! commands; [`inspect`] is the per-packet logic (classify, latch, count, route) and
//! [`target`] resolves where a route goes. The backends only move bytes:
//! `super::epoll::EpollWorker` (epoll + `recvmmsg`/`sendmmsg`) and
//! `super::uring::UringWorker` (io_uring). A backend tells the core how to start and stop
//! receiving on a socket through [`Watch`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use tracing::{debug, warn};

use super::ports::{BoundPort, Role};
use super::sys;
use crate::core::latch::{EndpointLearning, Latch, LatchVerdict};
use crate::core::plan::{CallKey, CallPlan, PortKey};
use crate::core::rtp::{classify, PacketKind, RtpHeader};
use crate::core::stats::{DropReason, StreamStats, WorkerCounters};

/// Work handed to a worker by the control plane.
pub(crate) enum Command {
    /// Install or replace a call's plan; `ports` are the call's sockets not yet on a worker.
    Apply {
        plan: CallPlan,
        ports: Vec<BoundPort>,
    },
    Remove(CallKey),
    Release(Vec<PortKey>),
    /// Reply once every earlier command has been handled.
    Barrier(SyncSender<()>),
    Shutdown,
}

/// A socket with its stream state (rtpengine's `stream_fd` + `packet_stream`).
pub(crate) struct Entry {
    pub port: BoundPort,
    call: CallKey,
    latch: Latch,
    pub stats: Arc<StreamStats>,
    forward: bool,
    rtp_sink_key: Option<PortKey>,
    rtcp_sink_key: Option<PortKey>,
    /// Slab indices of the sinks, resolved whenever the call's ports change.
    rtp_sink: Option<usize>,
    rtcp_sink: Option<usize>,
}

impl Entry {
    /// Slab index of the sink for `route`.
    #[inline]
    fn sink(&self, route: Route) -> Option<usize> {
        match route {
            Route::None => None,
            Route::Rtp => self.rtp_sink,
            Route::Rtcp => self.rtcp_sink,
        }
    }
}

/// Where one received packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    None,
    Rtp,
    Rtcp,
}

/// Clock readings shared by every packet of one wake-up.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    /// Unix time, for `last_packet_ms`.
    wall_ms: u64,
    /// Monotonic time, for the latch's learning window.
    mono_ms: u64,
    /// Fine monotonic time, for jitter and RTT (the coarse clocks tick every few ms).
    mono_us: u64,
}

impl Now {
    pub fn read() -> Now {
        Now {
            wall_ms: sys::clock_ms(libc::CLOCK_REALTIME_COARSE),
            mono_ms: sys::clock_ms(libc::CLOCK_MONOTONIC_COARSE),
            mono_us: sys::clock_us(libc::CLOCK_MONOTONIC),
        }
    }
}

/// Classify, latch-check and count one received packet (rtpengine's `stream_packet`), and
/// say on which route it is to be relayed (`Route::None`: not relayed, already counted).
/// `src` is `None` when the kernel reported an address family we do not handle.
#[inline]
pub(crate) fn inspect(
    entry: &mut Entry,
    counters: &WorkerCounters,
    pkt: &[u8],
    src: Option<SocketAddr>,
    truncated: bool,
    now: Now,
) -> Route {
    let len = pkt.len();
    if truncated {
        drop_packet(counters, &entry.stats, DropReason::Malformed);
        return Route::None;
    }
    let route = match (classify(pkt), entry.port.role) {
        (PacketKind::Rtp, Role::Rtp) => Route::Rtp,
        (PacketKind::Rtcp, _) => Route::Rtcp,
        // STUN and DTLS are not handled yet; RTP on an RTCP port is nonsense.
        _ => {
            drop_packet(counters, &entry.stats, DropReason::Malformed);
            return Route::None;
        }
    };
    let ssrc = if route == Route::Rtp {
        match RtpHeader::parse(pkt) {
            Ok(h) => h.ssrc(),
            Err(_) => {
                drop_packet(counters, &entry.stats, DropReason::Malformed);
                return Route::None;
            }
        }
    } else {
        0
    };
    let Some(src) = src else {
        drop_packet(counters, &entry.stats, DropReason::Malformed);
        return Route::None;
    };
    match entry.latch.on_packet(src, now.mono_ms) {
        LatchVerdict::Accept => {}
        LatchVerdict::AcceptAndLatched(addr) => entry.stats.set_endpoint(Some(addr)),
        LatchVerdict::Drop(reason) => {
            drop_packet(counters, &entry.stats, reason);
            return Route::None;
        }
    }
    let rtp = route == Route::Rtp;
    (entry.stats.quality).record(counters, pkt, rtp, now.mono_us, now.wall_ms);
    match (route, entry.port.role) {
        (Route::Rtp, _) => {
            counters.count_rtp(len);
            entry.stats.count_rx(len, now.wall_ms);
            entry.stats.last_ssrc.store(ssrc, Relaxed);
        }
        (_, Role::Rtp) => {
            // RTCP muxed on the RTP port.
            counters.count_rtcp(len);
            entry.stats.count_rtcp_rx(len, now.wall_ms);
        }
        _ => {
            counters.count_rtcp(len);
            entry.stats.count_rx(len, now.wall_ms);
        }
    }
    if entry.forward {
        route
    } else {
        Route::None
    }
}

/// Where packets of `route` received on slot `idx` go: the sink's slot and the address to
/// send to. `None` when the stream has no sink or the sink no destination yet.
#[inline]
pub(crate) fn target(
    slab: &[Option<Entry>],
    idx: usize,
    route: Route,
) -> Option<(usize, SocketAddr)> {
    let sink = slab.get(idx)?.as_ref()?.sink(route)?;
    let dest = slab.get(sink)?.as_ref()?.latch.destination()?;
    Some((sink, dest))
}

#[inline]
pub(crate) fn drop_packet(counters: &WorkerCounters, stats: &StreamStats, reason: DropReason) {
    counters.count_drop(reason);
    stats.count_error();
}

pub(crate) fn drop_many(
    counters: &WorkerCounters,
    stats: &StreamStats,
    reason: DropReason,
    n: u64,
) {
    for _ in 0..n {
        drop_packet(counters, stats, reason);
    }
}

/// How a backend starts and stops receiving on a socket.
pub(crate) trait Watch {
    /// Start receiving on `fd`, which goes into slab slot `idx`.
    fn watch(&mut self, idx: usize, fd: RawFd) -> io::Result<()>;
    /// Stop receiving on slot `idx`, whose entry was taken out of the slab. Returns the
    /// entry back when the slot may be reused at once (the core drops it, which closes the
    /// socket and frees the port), or `None` when the backend keeps it until operations
    /// still in flight on the socket are done and then calls [`Core::free_slot`].
    fn unwatch(&mut self, idx: usize, entry: Entry) -> Option<Entry>;
    /// False while closed sockets are still being torn down; barrier replies wait for it,
    /// so that after [`super::MediaWorkers::flush`] closed ports are free again.
    fn settled(&self) -> bool {
        true
    }
}

/// A worker's sockets and stream state.
pub(crate) struct Core {
    commands: Receiver<Command>,
    pub counters: Arc<WorkerCounters>,
    learning: EndpointLearning,
    pub slab: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_key: HashMap<PortKey, usize>,
    calls: HashMap<CallKey, Vec<PortKey>>,
    /// Barrier replies held back until the backend is settled.
    acks: Vec<SyncSender<()>>,
}

impl Core {
    pub fn new(
        commands: Receiver<Command>,
        counters: Arc<WorkerCounters>,
        learning: EndpointLearning,
    ) -> Core {
        Core {
            commands,
            counters,
            learning,
            slab: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            calls: HashMap::new(),
            acks: Vec::new(),
        }
    }

    /// Send the barrier replies held back while the backend was not settled.
    pub fn settle(&mut self) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
    }

    /// Barrier replies are waiting for the backend to settle.
    pub fn awaiting_settle(&self) -> bool {
        !self.acks.is_empty()
    }

    /// Make slot `idx` reusable (after [`Watch::unwatch`] deferred it).
    pub fn free_slot(&mut self, idx: usize) {
        self.free.push(idx);
    }

    /// Handle every queued command. Returns false when the worker must stop.
    pub fn handle_commands(&mut self, w: &mut impl Watch) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Apply { plan, ports } => self.apply(plan, ports, w),
                Command::Remove(call) => {
                    for key in self.calls.remove(&call).unwrap_or_default() {
                        self.close(key, w);
                    }
                }
                Command::Release(keys) => self.release(&keys, w),
                Command::Barrier(ack) => {
                    if w.settled() && self.acks.is_empty() {
                        let _ = ack.send(());
                    } else {
                        self.acks.push(ack);
                    }
                }
                Command::Shutdown => return false,
            }
        }
    }

    fn apply(&mut self, plan: CallPlan, mut ports: Vec<BoundPort>, w: &mut impl Watch) {
        let now = Now::read();
        let call = plan.call;
        // Ports the call had that the new plan no longer mentions.
        let old = self.calls.remove(&call).unwrap_or_default();
        for key in old {
            if !plan.streams.iter().any(|s| s.port == key) {
                self.close(key, w);
            }
        }
        let mut keys = Vec::with_capacity(plan.streams.len());
        for sp in plan.streams {
            if let Some(&idx) = self.by_key.get(&sp.port) {
                let Some(e) = self.slab[idx].as_mut() else {
                    continue;
                };
                if e.call != call {
                    warn!(
                        port = sp.port.0,
                        "plan names a port owned by another call; ignored"
                    );
                    continue;
                }
                if e.latch
                    .update(sp.expected, sp.latch, sp.relatch, now.mono_ms)
                {
                    sp.stats.set_endpoint(None);
                } else if !Arc::ptr_eq(&e.stats, &sp.stats) && sp.latch.learn {
                    if let Some(learned) = e.latch.learned() {
                        sp.stats.set_endpoint(Some(learned));
                    }
                }
                e.stats = sp.stats;
                e.forward = sp.forward;
                e.rtp_sink_key = sp.rtp_sink;
                e.rtcp_sink_key = sp.rtcp_sink;
            } else if let Some(pos) = ports.iter().position(|p| p.key == sp.port) {
                let port = ports.swap_remove(pos);
                let entry = Entry {
                    call,
                    latch: Latch::new(sp.expected, sp.latch, now.mono_ms)
                        .with_learning(self.learning),
                    stats: sp.stats,
                    forward: sp.forward,
                    rtp_sink_key: sp.rtp_sink,
                    rtcp_sink_key: sp.rtcp_sink,
                    rtp_sink: None,
                    rtcp_sink: None,
                    port,
                };
                let idx = self.free.pop().unwrap_or(self.slab.len());
                if let Err(e) = w.watch(idx, entry.port.raw_fd()) {
                    warn!(port = sp.port.0, error = %e, "cannot watch media socket; port closed");
                    if idx < self.slab.len() {
                        self.free.push(idx);
                    }
                    continue;
                }
                if idx == self.slab.len() {
                    self.slab.push(Some(entry));
                } else {
                    self.slab[idx] = Some(entry);
                }
                self.by_key.insert(sp.port, idx);
            } else {
                warn!(
                    port = sp.port.0,
                    "plan names a port that was never allocated; ignored"
                );
                continue;
            }
            if !keys.contains(&sp.port) {
                keys.push(sp.port);
            }
        }
        // `ports` is empty unless the plan named a port twice; leftovers are closed on drop.
        drop(ports);
        self.calls.insert(call, keys);
        self.resolve_sinks(call);
        debug!(call = call.0, "media plan applied");
    }

    fn release(&mut self, keys: &[PortKey], w: &mut impl Watch) {
        for key in keys {
            let Some(&idx) = self.by_key.get(key) else {
                continue;
            };
            let Some(call) = self.slab[idx].as_ref().map(|e| e.call) else {
                continue;
            };
            self.close(*key, w);
            if let Some(list) = self.calls.get_mut(&call) {
                list.retain(|k| k != key);
            }
            self.resolve_sinks(call);
        }
    }

    /// Point each port of the call at the slab slots of its sinks (within the same call).
    fn resolve_sinks(&mut self, call: CallKey) {
        let Some(keys) = self.calls.get(&call) else {
            return;
        };
        for key in keys {
            let Some(&idx) = self.by_key.get(key) else {
                continue;
            };
            let (rtp_key, rtcp_key) = match &self.slab[idx] {
                Some(e) => (e.rtp_sink_key, e.rtcp_sink_key),
                None => continue,
            };
            let resolve = |k: Option<PortKey>| {
                let k = k?;
                keys.contains(&k)
                    .then(|| self.by_key.get(&k).copied())
                    .flatten()
            };
            let (rtp, rtcp) = (resolve(rtp_key), resolve(rtcp_key));
            if let Some(e) = self.slab[idx].as_mut() {
                e.rtp_sink = rtp;
                e.rtcp_sink = rtcp;
            }
        }
    }

    fn close(&mut self, key: PortKey, w: &mut impl Watch) {
        let Some(idx) = self.by_key.remove(&key) else {
            return;
        };
        if let Some(entry) = self.slab[idx].take() {
            if let Some(entry) = w.unwatch(idx, entry) {
                self.free.push(idx);
                // Dropping the entry closes the socket and returns the port to the pool.
                drop(entry);
            }
        }
    }
}
