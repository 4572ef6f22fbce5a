//! One media worker thread (rtpengine's poller thread): an epoll loop over the sockets of
//! the calls it owns, receiving and sending in batches.
//!
//! Per wake-up the worker first applies queued commands (so a plan applied before a packet
//! was sent governs that packet), then reads the clocks once and drains each readable socket
//! for at most [`MAX_BATCHES_PER_WAKE`] batches.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use tracing::{debug, warn};

use super::ports::{BoundPort, Role};
use super::sys::{self, Epoll, EventFd};
use crate::core::latch::{EndpointLearning, Latch, LatchVerdict};
use crate::core::plan::{CallKey, CallPlan, PortKey};
use crate::core::rtp::{classify, PacketKind, RtpHeader};
use crate::core::stats::{DropReason, StreamStats, WorkerCounters};

/// Packets per recvmmsg/sendmmsg call: 32 amortises the syscall well (rtpengine and quinn
/// use similar batch sizes) while the buffers stay in L2 (64 KiB).
pub(crate) const BATCH: usize = 32;
/// Receive buffer per packet. Media datagrams stay below the 1500-byte MTU; anything larger
/// is truncated by the kernel and dropped as malformed.
pub(crate) const BUF_SIZE: usize = 2048;
/// Batches read from one socket per wake-up, so one flooded socket cannot starve the others
/// (level-triggered epoll reports it again on the next wait).
pub(crate) const MAX_BATCHES_PER_WAKE: usize = 4;
/// epoll events fetched per wait.
const EVENTS: usize = 64;
/// epoll token of the worker's eventfd; sockets use their slab index.
const WAKE_TOKEN: u64 = u64::MAX;

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
struct Entry {
    port: BoundPort,
    call: CallKey,
    latch: Latch,
    stats: Arc<StreamStats>,
    forward: bool,
    rtp_sink_key: Option<PortKey>,
    rtcp_sink_key: Option<PortKey>,
    /// Slab indices of the sinks, resolved whenever the call's ports change.
    rtp_sink: Option<usize>,
    rtcp_sink: Option<usize>,
}

/// Where one received packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    None,
    Rtp,
    Rtcp,
}

/// Receive and send buffers with their mmsghdr/iovec arrays, allocated once per worker.
/// The headers point into the boxed slices, whose heap storage never moves.
struct Batch {
    bufs: Box<[u8]>,
    recv_addrs: Box<[libc::sockaddr_storage]>,
    recv_iov: Box<[libc::iovec]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    send_iov: Box<[libc::iovec]>,
    send_hdrs: Box<[libc::mmsghdr]>,
    dest: Box<libc::sockaddr_storage>,
    lens: [usize; BATCH],
    route: [Route; BATCH],
    /// Receive headers the kernel wrote into by the last `recv` (only those need resetting;
    /// most calls return one packet).
    dirty: usize,
}

// SAFETY: the raw pointers in the headers only point into the Batch's own boxes; the Batch
// is created on and used by a single worker thread at a time.
unsafe impl Send for Batch {}

impl Batch {
    fn new() -> Batch {
        // SAFETY (all zeroed() below): iovec, mmsghdr and sockaddr_storage are plain C data
        // for which all-zero (null pointers, zero lengths) is a valid value.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        let mut b = Batch {
            bufs: vec![0u8; BATCH * BUF_SIZE].into_boxed_slice(),
            recv_addrs: vec![sys::empty_sockaddr(); BATCH].into_boxed_slice(),
            recv_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            recv_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            send_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            send_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            dest: Box::new(sys::empty_sockaddr()),
            lens: [0; BATCH],
            route: [Route::None; BATCH],
            dirty: 0,
        };
        for i in 0..BATCH {
            b.recv_iov[i] = libc::iovec {
                iov_base: b.bufs[i * BUF_SIZE..].as_mut_ptr().cast(),
                iov_len: BUF_SIZE,
            };
            let h = &mut b.recv_hdrs[i].msg_hdr;
            h.msg_name = (&mut b.recv_addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut b.recv_iov[i];
            h.msg_iovlen = 1;
            let s = &mut b.send_hdrs[i].msg_hdr;
            s.msg_name = (&mut *b.dest as *mut libc::sockaddr_storage).cast();
            s.msg_iov = &mut b.send_iov[i];
            s.msg_iovlen = 1;
        }
        b
    }

    /// Receive up to BATCH datagrams; `Ok(0)` when the socket is drained.
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        for h in self.recv_hdrs[..self.dirty].iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: the headers point at BATCH live buffers/addresses owned by `self`, set up
        // in `new()`; the kernel writes at most iov_len/msg_namelen bytes into each.
        let r = unsafe { sys::recvmmsg_raw(fd, self.recv_hdrs.as_mut_ptr(), BATCH) };
        // Headers past a short count are untouched; on error none are.
        self.dirty = r.max(0) as usize;
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize)
    }

    /// Send every packet routed `route` to `dest` out of `fd`. Returns (sent, failed).
    fn send(&mut self, fd: i32, n: usize, route: Route, dest: SocketAddr) -> (u64, u64) {
        let namelen = sys::write_sockaddr(&dest, &mut self.dest);
        let mut m = 0;
        for k in 0..n {
            if self.route[k] != route {
                continue;
            }
            self.send_iov[m] = libc::iovec {
                iov_base: self.bufs[k * BUF_SIZE..].as_mut_ptr().cast(),
                iov_len: self.lens[k],
            };
            self.send_hdrs[m].msg_hdr.msg_namelen = namelen;
            m += 1;
        }
        let (mut off, mut sent, mut failed) = (0, 0u64, 0u64);
        // Each pass either sends something or skips a packet, so at most m + a few passes.
        let mut passes = 0;
        while off < m && passes <= m + 4 {
            passes += 1;
            // SAFETY: send_hdrs[off..m] point at `dest` and iovecs describing initialised
            // bytes of `bufs`, all owned by `self` and alive for the call.
            let r = unsafe { sys::sendmmsg_raw(fd, self.send_hdrs[off..].as_mut_ptr(), m - off) };
            if r > 0 {
                sent += r as u64;
                off += r as usize;
                continue;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    // Send buffer full: the rest would fail the same way.
                    failed += (m - off) as u64;
                    off = m;
                }
                _ => {
                    // Refused/unreachable is about the first packet; carry on with the rest.
                    failed += 1;
                    off += 1;
                }
            }
        }
        failed += (m - off) as u64;
        (sent, failed)
    }
}

/// Clock readings shared by every packet of one wake-up.
#[derive(Clone, Copy)]
struct Now {
    /// Unix time, for `last_packet_ms`.
    wall_ms: u64,
    /// Monotonic time, for the latch's learning window.
    mono_ms: u64,
}

impl Now {
    fn read() -> Now {
        Now {
            wall_ms: sys::clock_ms(libc::CLOCK_REALTIME_COARSE),
            mono_ms: sys::clock_ms(libc::CLOCK_MONOTONIC_COARSE),
        }
    }
}

pub(crate) struct Worker {
    epoll: Epoll,
    wake: Arc<EventFd>,
    commands: Receiver<Command>,
    counters: Arc<WorkerCounters>,
    learning: EndpointLearning,
    slab: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_key: HashMap<PortKey, usize>,
    calls: HashMap<CallKey, Vec<PortKey>>,
    batch: Batch,
}

impl Worker {
    pub fn new(
        wake: Arc<EventFd>,
        commands: Receiver<Command>,
        counters: Arc<WorkerCounters>,
        learning: EndpointLearning,
    ) -> io::Result<Worker> {
        let epoll = Epoll::new()?;
        epoll.add(wake.fd(), WAKE_TOKEN)?;
        Ok(Worker {
            epoll,
            wake,
            commands,
            counters,
            learning,
            slab: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            calls: HashMap::new(),
            batch: Batch::new(),
        })
    }

    /// Run until a `Shutdown` command arrives or the control side goes away.
    pub fn run(mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            let n = match self.epoll.wait(&mut events, -1) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "media worker: epoll_wait failed, stopping");
                    return;
                }
            };
            // Commands first: a plan applied before a packet was sent must govern it.
            if events[..n].iter().any(|ev| ev.u64 == WAKE_TOKEN) {
                self.wake.drain();
                if !self.handle_commands() {
                    return;
                }
            }
            let now = Now::read();
            for ev in &events[..n] {
                let token = ev.u64;
                if token != WAKE_TOKEN {
                    // A command may have closed this slot (then it is skipped) or reused it
                    // for a new socket (then the read finds nothing or real packets): both
                    // harmless, the read is non-blocking.
                    self.drain_socket(token as usize, now);
                }
            }
        }
    }

    /// Returns false when the worker must stop.
    fn handle_commands(&mut self) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Apply { plan, ports } => self.apply(plan, ports),
                Command::Remove(call) => {
                    for key in self.calls.remove(&call).unwrap_or_default() {
                        self.close(key);
                    }
                }
                Command::Release(keys) => self.release(&keys),
                Command::Barrier(ack) => {
                    let _ = ack.send(());
                }
                Command::Shutdown => return false,
            }
        }
    }

    fn apply(&mut self, plan: CallPlan, mut ports: Vec<BoundPort>) {
        let now = Now::read();
        let call = plan.call;
        // Ports the call had that the new plan no longer mentions.
        let old = self.calls.remove(&call).unwrap_or_default();
        for key in old {
            if !plan.streams.iter().any(|s| s.port == key) {
                self.close(key);
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
                if let Err(e) = self.epoll.add(entry.port.raw_fd(), idx as u64) {
                    warn!(port = sp.port.0, error = %e, "cannot watch media socket; port closed");
                    self.free.push(idx);
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

    fn release(&mut self, keys: &[PortKey]) {
        for key in keys {
            let Some(&idx) = self.by_key.get(key) else {
                continue;
            };
            let Some(call) = self.slab[idx].as_ref().map(|e| e.call) else {
                continue;
            };
            self.close(*key);
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

    fn close(&mut self, key: PortKey) {
        let Some(idx) = self.by_key.remove(&key) else {
            return;
        };
        if let Some(entry) = self.slab[idx].take() {
            let _ = self.epoll.delete(entry.port.raw_fd());
            self.free.push(idx);
            // Dropping the entry closes the socket and returns the port to the pool.
        }
    }

    /// Read what the socket has, up to the per-wake-up cap.
    fn drain_socket(&mut self, idx: usize, now: Now) {
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let fd = match self.slab.get(idx) {
                Some(Some(e)) => e.port.raw_fd(),
                _ => return,
            };
            let n = match self.batch.recv(fd) {
                Ok(n) => n,
                Err(_) => return,
            };
            if n == 0 {
                return;
            }
            self.handle_batch(idx, n, now);
            if n < BATCH {
                return;
            }
        }
    }

    /// Classify, latch-check and count a received batch, then forward it per sink.
    fn handle_batch(&mut self, idx: usize, n: usize, now: Now) {
        let Worker {
            slab,
            batch,
            counters,
            ..
        } = self;
        let counters: &WorkerCounters = counters;
        let (rtp_sink, rtcp_sink) = {
            let Some(entry) = slab[idx].as_mut() else {
                return;
            };
            for k in 0..n {
                batch.route[k] = Route::None;
                let hdr = &batch.recv_hdrs[k];
                let len = hdr.msg_len as usize;
                batch.lens[k] = len;
                if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > BUF_SIZE {
                    drop_packet(counters, &entry.stats, DropReason::Malformed);
                    continue;
                }
                let pkt = &batch.bufs[k * BUF_SIZE..k * BUF_SIZE + len];
                let route = match (classify(pkt), entry.port.role) {
                    (PacketKind::Rtp, Role::Rtp) => Route::Rtp,
                    (PacketKind::Rtcp, _) => Route::Rtcp,
                    // STUN and DTLS are not handled yet; RTP on an RTCP port is nonsense.
                    _ => {
                        drop_packet(counters, &entry.stats, DropReason::Malformed);
                        continue;
                    }
                };
                let ssrc = if route == Route::Rtp {
                    match RtpHeader::parse(pkt) {
                        Ok(h) => h.ssrc(),
                        Err(_) => {
                            drop_packet(counters, &entry.stats, DropReason::Malformed);
                            continue;
                        }
                    }
                } else {
                    0
                };
                let Some(src) = sys::read_sockaddr(&batch.recv_addrs[k], hdr.msg_hdr.msg_namelen)
                else {
                    drop_packet(counters, &entry.stats, DropReason::Malformed);
                    continue;
                };
                match entry.latch.on_packet(src, now.mono_ms) {
                    LatchVerdict::Accept => {}
                    LatchVerdict::AcceptAndLatched(addr) => entry.stats.set_endpoint(Some(addr)),
                    LatchVerdict::Drop(reason) => {
                        drop_packet(counters, &entry.stats, reason);
                        continue;
                    }
                }
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
                    batch.route[k] = route;
                }
            }
            (entry.rtp_sink, entry.rtcp_sink)
        };
        let Some(Some(source)) = slab.get(idx) else {
            return;
        };
        for (route, sink) in [(Route::Rtp, rtp_sink), (Route::Rtcp, rtcp_sink)] {
            let queued = batch.route[..n].iter().filter(|r| **r == route).count() as u64;
            if queued == 0 {
                continue;
            }
            let target = sink
                .and_then(|s| slab.get(s)?.as_ref())
                .and_then(|e| Some((e.port.raw_fd(), e.latch.destination()?)));
            let Some((fd, dest)) = target else {
                drop_many(counters, &source.stats, DropReason::NoDestination, queued);
                continue;
            };
            let (sent, failed) = batch.send(fd, n, route, dest);
            counters.count_relayed(sent);
            drop_many(counters, &source.stats, DropReason::SendFailed, failed);
        }
    }
}

#[inline]
fn drop_packet(counters: &WorkerCounters, stats: &StreamStats, reason: DropReason) {
    counters.count_drop(reason);
    stats.count_error();
}

fn drop_many(counters: &WorkerCounters, stats: &StreamStats, reason: DropReason, n: u64) {
    for _ in 0..n {
        drop_packet(counters, stats, reason);
    }
}
