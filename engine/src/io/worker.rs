//! One media worker thread (rtpengine's poller thread): the state both IO backends share
//! and the one dispatch they call for every received datagram.
//!
//! [`Core`] holds the worker's sockets ([`Entry`]: a socket with its `core::stream::Stream`)
//! and applies control-plane commands. [`Core::dispatch`] runs a datagram through the
//! sans-IO pipeline (`core::stream::handle`, which decides latching, SRTP, STUN, DTLS, taps
//! and the route and returns a `Verdict`) and performs the verdict through the backend's
//! [`Transmit`]. The backends only move bytes: `super::epoll::EpollWorker` (epoll +
//! `recvmmsg`/`sendmmsg`) and `super::uring::UringWorker` (io_uring). A backend tells the
//! core how to start and stop receiving on a socket through [`Watch`].
//!
//! Submodules hold the rest of the worker's work: `plan` (applying a call's plan, closing
//! its ports), `transcode` (building transcoders and the RTCP reports we send for them),
//! `player` and `ice` (packets we originate on timers).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

mod delay;
mod fast;
mod fax;
mod ice;
mod plan;
mod player;
mod transcode;

use super::ports::BoundPort;
use super::sys;
use crate::core::dtls::DtlsState;
use crate::core::dtmf_inject::{DtmfDigit, InjectTarget};
use crate::core::latch::EndpointLearning;
use crate::core::plan::{CallKey, CallPlan, PortKey};
use crate::core::player::PlaySpec;
use crate::core::stats::{DropReason, WorkerCounters};
pub(crate) use crate::core::stream::Now;
pub(crate) use crate::core::stream::SRTP_TAIL_ROOM;
use crate::core::stream::{self, after_dtls_step, kick_dtls, Slot, Stream, Verdict};
use crate::core::tap::TapSender;

/// Work handed to a worker by the control plane.
pub(crate) enum Command {
    /// Install or replace a call's plan; `ports` are the call's sockets not yet on a worker.
    Apply {
        plan: CallPlan,
        ports: Vec<BoundPort>,
    },
    Remove(CallKey),
    Release(Vec<PortKey>),
    /// Where streams whose plan asks for a tap send their copies (`None`: nowhere).
    SetTap(Option<TapSender>),
    /// Where streams whose plan asks for interception copies send them (`None`: nowhere).
    SetInterceptTap(Option<TapSender>),
    /// Where every stream sends copies of the RTCP it receives (`None`: nowhere).
    SetRtcpTap(Option<TapSender>),
    /// Start (`Some`) or stop (`None`) playing media toward the party of this port.
    Play(PortKey, Option<PlaySpec>),
    /// Queue a DTMF digit into what the party of this port sends (`play DTMF`).
    PlayDtmf {
        port: PortKey,
        digit: DtmfDigit,
        target: InjectTarget,
        ptime_ms: u32,
    },
    /// Reply once every earlier command has been handled.
    Barrier(SyncSender<()>),
    Shutdown,
}

/// A socket with its stream (rtpengine's `stream_fd` + `packet_stream`): the packet logic
/// lives in [`Stream`] (`core::stream`), which this derefs to.
pub(crate) struct Entry {
    pub port: BoundPort,
    call: CallKey,
    /// TOS byte set on the socket (0: never set, the kernel's default).
    tos: u8,
    stream: Stream,
    /// On a socket bound on another address of the stream's interface (a plan's
    /// `alternates`): the stream's primary socket, and its slot once resolved. What this
    /// socket receives is handled by the primary's state; the rest of this entry is idle.
    alias_of: Option<(PortKey, Option<usize>)>,
    /// On a primary socket: the keys of its alternates, and those resolved to live sockets.
    alt_keys: Vec<PortKey>,
    alts: Vec<AltSocket>,
    /// The party was last heard on `alts[i]` rather than on this socket (rtpengine's
    /// `selected_sfd`): replies to it prefer that socket.
    via: Option<usize>,
    /// The kernel fast path forwards what this socket's party sends (see `fast`).
    offload: Option<fast::Offload>,
    /// Monotonic ms before which the stream is not offered to the fast path again.
    fast_retry_ms: u64,
}

/// A live alternate socket of a stream (see [`Entry::alts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AltSocket {
    slot: usize,
    fd: RawFd,
    v6: bool,
}

impl Entry {
    /// A socket with its stream, on no other address.
    fn new(port: BoundPort, call: CallKey, stream: Stream) -> Entry {
        Entry {
            port,
            call,
            tos: 0,
            stream,
            alias_of: None,
            alt_keys: Vec::new(),
            alts: Vec::new(),
            via: None,
            offload: None,
            fast_retry_ms: 0,
        }
    }
}

impl Deref for Entry {
    type Target = Stream;
    #[inline]
    fn deref(&self) -> &Stream {
        &self.stream
    }
}

impl DerefMut for Entry {
    #[inline]
    fn deref_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl Slot for Entry {
    type Socket = RawFd;
    #[inline]
    fn socket(&self) -> RawFd {
        self.port.raw_fd()
    }

    #[inline]
    fn primary(&self) -> Option<usize> {
        self.alias_of.and_then(|(_, slot)| slot)
    }

    #[inline]
    fn heard_on(&mut self, arrived: usize) {
        if !self.alts.is_empty() {
            self.via = self.alts.iter().position(|a| a.slot == arrived);
        }
    }

    /// The socket the party was last heard on when its address family fits, else this one
    /// when it fits, else an alternate of that family.
    #[inline]
    fn out_for(&self, own: usize, dest: SocketAddr) -> (usize, RawFd) {
        let mine = (own, self.port.raw_fd());
        if self.alts.is_empty() {
            return mine;
        }
        let v6 = dest.is_ipv6();
        if let Some(a) = self
            .via
            .and_then(|i| self.alts.get(i))
            .filter(|a| a.v6 == v6)
        {
            return (a.slot, a.fd);
        }
        if self.port.addr.is_ipv6() == v6 {
            return mine;
        }
        self.alts
            .iter()
            .find(|a| a.v6 == v6)
            .map_or(mine, |a| (a.slot, a.fd))
    }
}

impl Now {
    /// Read the clocks (once per wake-up).
    pub(crate) fn read() -> Now {
        Now {
            wall_ms: sys::clock_ms(libc::CLOCK_REALTIME_COARSE),
            mono_ms: sys::clock_ms(libc::CLOCK_MONOTONIC_COARSE),
            mono_us: sys::clock_us(libc::CLOCK_MONOTONIC),
        }
    }
}

/// How a backend performs what a [`Verdict`] names.
pub(crate) trait Transmit {
    /// Send `len` bytes of the received datagram's own buffer (changed in place by the
    /// pipeline) to `dest` out of the socket `fd` in slot `via`. `source` is the receiving
    /// slot, for error accounting; `via == source` is a reply (not counted as relayed).
    fn send_received(&mut self, source: usize, via: usize, fd: RawFd, dest: SocketAddr, len: usize);
    /// Send packets the pipeline made (subscriber copies, transcoder output) to `dest` out
    /// of the socket `fd` in slot `slot`; true when sent or queued.
    fn send_made(&mut self, fd: RawFd, slot: usize, dest: SocketAddr, bytes: &[u8]) -> bool;
}

/// Send every datagram the stream's DTLS association queued (rare: handshake flights,
/// alerts), one `sendto` each, out of the stream's socket toward the party.
pub(crate) fn flush_dtls(entry: &mut Entry) {
    let fallback = entry.latch.destination();
    let dest = entry.dtls.as_deref().and_then(|l| l.peer).or(fallback);
    // Out of the socket that fits the party's address (see `Entry::out_for`).
    let fd = dest.map_or(entry.port.raw_fd(), |d| entry.out_for(0, d).1);
    let Some(link) = entry.dtls.as_deref_mut() else {
        return;
    };
    while let Some((dest, d)) = link.poll_datagram(fallback) {
        if let Some(dest) = dest {
            sys::send_to(fd, &d, &dest);
        }
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

/// Size of [`Core::out_buf`]: any RTP packet we generate fits (Opus' largest payload).
const OUT_BUF: usize = 2048;

/// A worker's sockets and stream state.
pub(crate) struct Core {
    commands: Receiver<Command>,
    pub counters: Arc<WorkerCounters>,
    learning: EndpointLearning,
    /// Silence detection for transcoders toward parties with comfort noise.
    silence_detect: Option<crate::core::transcode::SilenceDetect>,
    /// DTMF reports leave through this socket (`--dtmf-log-dest`).
    dtmf_sock: Option<Arc<std::net::UdpSocket>>,
    /// `--dtmf-digit-delay` for the DTMF triggers of this worker's streams.
    pub dtmf_digit_delay_ms: u32,
    /// How transcoders play decoded input out (`None`: on arrival, the default).
    pub playout: Option<crate::core::transcode::PlayoutConfig>,
    /// Slots whose transcoder plays out on a clock (may hold stale slots;
    /// `poll_playouts` cleans them up).
    playouts: Vec<usize>,
    pub slab: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_key: HashMap<PortKey, usize>,
    calls: HashMap<CallKey, Vec<PortKey>>,
    /// Barrier replies held back until the backend is settled.
    acks: Vec<SyncSender<()>>,
    /// Slots whose DTLS association is not established yet (handshake timers).
    handshaking: Vec<usize>,
    /// Slots with a full ICE agent (may hold stale slots; `poll_ice` cleans them up).
    ice_agents: Vec<usize>,
    /// Next time to look for due RTCP reports of transcoded streams.
    next_rtcp_scan_ms: u64,
    /// The CNAME of the RTCP reports this worker writes (random, 12 hex digits).
    rtcp_cname: [u8; crate::core::transcode::CNAME_LEN],
    /// Scratch for one generated packet (transcoder output, RTCP report).
    pub out_buf: Box<[u8]>,
    /// Scratch for one copy of a packet for a subscriber (see [`fan_out`]).
    pub copy_buf: Box<[u8]>,
    /// The recorder's queue, for streams whose plan asks for a tap.
    tap: Option<TapSender>,
    /// The interceptor's queue, for streams whose plan asks for interception copies.
    intercept: Option<TapSender>,
    /// Homer's queue, for the RTCP every stream receives.
    rtcp_tap: Option<TapSender>,
    /// Slots with a player (may hold stale slots; `poll_players` cleans them up).
    players: Vec<usize>,
    /// When the earliest player packet is due (monotonic µs).
    next_player_us: Option<u64>,
    /// Slots with a delay buffer (`delay-buffer`; may hold stale slots, `poll_delayed`
    /// cleans them up), when the earliest held packet is due, and the scratch for
    /// packets leaving a buffer.
    delayed: Vec<usize>,
    next_delay_us: Option<u64>,
    delay_held: Box<[u8]>,
    delay_pkt: Box<[u8]>,
    /// Slots with a T.38 gateway (may hold stale slots; `poll_gateways` cleans them up).
    gateways: Vec<usize>,
    /// When the earliest gateway wants to run (monotonic µs).
    next_gateway_us: Option<u64>,
    /// The kernel fast path, when in use.
    fast: Option<fast::FastState>,
}

impl Core {
    pub(super) fn new(
        commands: Receiver<Command>,
        counters: Arc<WorkerCounters>,
        learning: EndpointLearning,
        silence_detect: Option<crate::core::transcode::SilenceDetect>,
        dtmf_sock: Option<Arc<std::net::UdpSocket>>,
        fast: Option<Arc<crate::io::fastpath::FastPath>>,
    ) -> Core {
        Core {
            commands,
            counters,
            learning,
            silence_detect,
            dtmf_sock,
            dtmf_digit_delay_ms: crate::core::dtmf_security::DEFAULT_DIGIT_DELAY_MS,
            playout: None,
            playouts: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            calls: HashMap::new(),
            acks: Vec::new(),
            handshaking: Vec::new(),
            ice_agents: Vec::new(),
            tap: None,
            intercept: None,
            rtcp_tap: None,
            next_rtcp_scan_ms: 0,
            rtcp_cname: crate::core::transcode::random_cname(rand::random()),
            players: Vec::new(),
            next_player_us: None,
            delayed: Vec::new(),
            next_delay_us: None,
            delay_held: vec![0; OUT_BUF].into_boxed_slice(),
            delay_pkt: vec![0; OUT_BUF].into_boxed_slice(),
            gateways: Vec::new(),
            next_gateway_us: None,
            fast: fast.map(fast::FastState::new),
            out_buf: vec![0; OUT_BUF].into_boxed_slice(),
            copy_buf: vec![0; OUT_BUF].into_boxed_slice(),
        }
    }

    /// Send the barrier replies held back while the backend was not settled.
    pub(super) fn settle(&mut self) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
    }

    /// Barrier replies are waiting for the backend to settle.
    pub(super) fn awaiting_settle(&self) -> bool {
        !self.acks.is_empty()
    }

    /// Make slot `idx` reusable (after [`Watch::unwatch`] deferred it).
    pub(super) fn free_slot(&mut self, idx: usize) {
        self.free.push(idx);
    }

    /// The one dispatch both backends share: run the datagram `buf[..len]` received on slot
    /// `idx` through its stream's pipeline ([`stream::handle`]) and perform the verdict
    /// through `tx`: forward or reply out of the datagram's own buffer, feed the
    /// transcoder, count a drop. Returns true when `tx` was handed the buffer
    /// ([`Transmit::send_received`]); otherwise the backend may reuse it at once.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn dispatch(
        &mut self,
        arrived: usize,
        buf: &mut [u8],
        len: usize,
        src: Option<SocketAddr>,
        truncated: bool,
        now: Now,
        tx: &mut impl Transmit,
    ) -> bool {
        let Core {
            slab,
            counters,
            out_buf,
            copy_buf,
            fast,
            next_delay_us,
            ..
        } = self;
        let counters: &WorkerCounters = counters;
        // A socket on another address of a stream is handled by the stream's primary.
        let idx = stream::stream_slot(slab, arrived);
        let verdict = stream::handle(
            slab,
            counters,
            arrived,
            buf,
            len,
            src,
            truncated,
            now,
            copy_buf,
            |fd, slot, dest, out| tx.send_made(fd, slot, dest, out),
        );
        match verdict {
            Verdict::Forward { via, to, len } => {
                let Some(Some(sink)) = slab.get(via) else {
                    return false;
                };
                tx.send_received(idx, via, sink.socket(), to, len);
                if let Some(fast) = fast.as_mut() {
                    fast.consider(slab, counters, idx, arrived, via, to, src, &buf[..len], now);
                }
                true
            }
            Verdict::Reply { to, len } => {
                // Out of the socket the check came in on.
                let Some(Some(socket)) = slab.get(arrived) else {
                    return false;
                };
                tx.send_received(arrived, arrived, socket.socket(), to, len);
                // The answer to a check may let a DTLS client start: its flight follows.
                if let Some(Some(entry)) = slab.get_mut(idx) {
                    flush_dtls(entry);
                }
                true
            }
            Verdict::Transcode { len } => {
                stream::transcode(
                    slab,
                    counters,
                    idx,
                    &buf[..len],
                    now,
                    out_buf,
                    copy_buf,
                    |fd, slot, dest, out| tx.send_made(fd, slot, dest, out),
                );
                false
            }
            Verdict::Gateway { len } => {
                stream::feed_gateway(
                    slab,
                    counters,
                    idx,
                    &buf[..len],
                    out_buf,
                    |fd, slot, dest, out| tx.send_made(fd, slot, dest, out),
                );
                false
            }
            Verdict::Absorbed(stream::Absorbed::Dtls) => {
                if let Some(Some(entry)) = slab.get_mut(idx) {
                    flush_dtls(entry);
                }
                false
            }
            Verdict::Absorbed(stream::Absorbed::Delayed) => {
                // The packet held may be due before anything held so far.
                let due = slab
                    .get(idx)
                    .and_then(|e| e.as_ref())
                    .and_then(|e| e.delay.as_ref())
                    .and_then(|d| d.next_due_us());
                if let Some(d) = due {
                    *next_delay_us = Some(next_delay_us.map_or(d, |t| t.min(d)));
                }
                false
            }
            Verdict::Absorbed(_) => false,
            Verdict::Drop(reason) => {
                match slab.get_mut(idx) {
                    Some(Some(entry)) => {
                        stream::count_drop(counters, entry, reason);
                        if reason == DropReason::Dtls {
                            // A failed handshake may have an alert to send.
                            flush_dtls(entry);
                        }
                    }
                    _ => counters.count_drop(reason),
                }
                false
            }
        }
    }

    /// Handle every queued command. Returns false when the worker must stop.
    pub(super) fn handle_commands(&mut self, w: &mut impl Watch) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Apply { plan, ports } => {
                    // A re-INVITE, a recording or tap starting, new keys: the kernel stops
                    // forwarding before the new plan governs the stream.
                    self.withdraw_fast_call(plan.call);
                    self.apply(plan, ports, w)
                }
                Command::Remove(call) => {
                    self.withdraw_fast_call(call);
                    for key in self.calls.remove(&call).unwrap_or_default() {
                        self.close(key, w);
                    }
                }
                Command::Release(keys) => {
                    for key in &keys {
                        if let Some(call) = self.call_of(*key) {
                            self.withdraw_fast_call(call);
                        }
                    }
                    self.release(&keys, w)
                }
                Command::SetTap(tap) => {
                    self.withdraw_fast_all();
                    self.tap = tap
                }
                Command::Play(port, spec) => {
                    if let Some(call) = self.call_of(port) {
                        self.withdraw_fast_call(call);
                    }
                    self.play(port, spec)
                }
                Command::PlayDtmf {
                    port,
                    digit,
                    target,
                    ptime_ms,
                } => {
                    if let Some(call) = self.call_of(port) {
                        self.withdraw_fast_call(call);
                    }
                    self.play_dtmf(port, digit, target, ptime_ms)
                }
                Command::SetInterceptTap(tap) => {
                    self.withdraw_fast_all();
                    self.intercept = tap
                }
                // The fast path relays no RTCP: nothing to withdraw.
                Command::SetRtcpTap(tap) => self.rtcp_tap = tap,
                Command::Barrier(ack) => {
                    if w.settled() && self.acks.is_empty() {
                        let _ = ack.send(());
                    } else {
                        self.acks.push(ack);
                    }
                }
                Command::Shutdown => {
                    self.withdraw_fast_all();
                    return false;
                }
            }
        }
    }

    /// Drive DTLS handshakes: start clients that can start, retransmit flights whose timer
    /// expired, forget associations that are done. Returns how long the backend may sleep
    /// before calling again (`None`: no timer running). Cheap when nothing is handshaking,
    /// so backends call it on every wake-up.
    pub(super) fn handle_timers(&mut self) -> Option<Duration> {
        let fast = match self.fast.as_mut() {
            Some(f) => f.poll(&mut self.slab, &self.counters),
            None => None,
        };
        match (fast, self.handle_dtls_timers()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The DTLS part of [`Core::handle_timers`].
    fn handle_dtls_timers(&mut self) -> Option<Duration> {
        if self.handshaking.is_empty() {
            return None;
        }
        let mut next: Option<Duration> = None;
        let mut i = 0;
        while i < self.handshaking.len() {
            let idx = self.handshaking[i];
            let Some(Some(entry)) = self.slab.get_mut(idx) else {
                self.handshaking.swap_remove(i);
                continue;
            };
            let handshaking = kick_dtls(entry);
            flush_dtls(entry);
            if !handshaking {
                self.handshaking.swap_remove(i);
                continue;
            }
            if let Some(link) = entry.dtls.as_deref_mut() {
                let step = link.session.handle_timeout().map(|()| None);
                if !after_dtls_step(entry, step) {
                    self.counters.count_drop(DropReason::Dtls);
                }
                flush_dtls(entry);
            }
            match entry.dtls.as_deref().and_then(|l| l.session.timeout()) {
                Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                None if entry.dtls.as_deref().is_some_and(|l| {
                    matches!(l.session.state(), DtlsState::New | DtlsState::Handshaking)
                }) => {}
                None => {
                    self.handshaking.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
        next
    }
}
