//! One media worker thread (rtpengine's poller thread): the state and packet logic both IO
//! backends share.
//!
//! [`Core`] holds the worker's sockets with their stream state and applies control-plane
//! commands; [`inspect`] is the per-packet logic (classify, latch, count, route) and
//! [`target`] resolves where a route goes. The backends only move bytes:
//! `super::epoll::EpollWorker` (epoll + `recvmmsg`/`sendmmsg`) and
//! `super::uring::UringWorker` (io_uring). A backend tells the core how to start and stop
//! receiving on a socket through [`Watch`].
//!
//! Beside the hot path kept here (receive → route → send), submodules hold the rest of the
//! core's work: `plan` (applying a call's plan, closing its ports), `transcode` (transcoded
//! streams and the RTCP reports we send for them), `player`, and the `srtp`, `dtls` and
//! `stun` handling of a socket.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

mod dtls;
mod ice;
mod plan;
mod player;
mod srtp;
mod stun;
mod transcode;

use dtls::{after_dtls_step, handle_dtls, kick_dtls, DtlsLink};
use srtp::{srtp_protect, Srtp};
use stun::answer_stun;
pub(crate) use transcode::transcode;

use super::ports::{BoundPort, Role};
use super::sys;
use crate::core::dtls::DtlsState;
use crate::core::dtmf_inject::{DtmfDigit, DtmfInjector, InjectTarget};
use crate::core::latch::{EndpointLearning, Latch, LatchVerdict};
use crate::core::media_control::{ControlVerdict, StreamControl};
use crate::core::plan::{CallKey, CallPlan, IceCredentials, PortKey};
use crate::core::player::{OutLine, PlaySpec, Player};
use crate::core::rtp::{classify, strip_rtcp_feedback, PacketKind, RtpHeader};
use crate::core::stats::{DropReason, StreamStats, WorkerCounters};
use crate::core::tap::{StreamTaps, TapSender};
use crate::core::transcode::Transcoder;

/// Bytes every receive buffer keeps free after the largest datagram it accepts, so a packet
/// can be SRTP-protected in place: the largest overhead is 20 bytes (SRTCP with a 16-byte
/// GCM tag and the 4-byte index); 32 keeps the arithmetic obvious.
pub(crate) const SRTP_TAIL_ROOM: usize = 32;

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

/// A socket with its stream state (rtpengine's `stream_fd` + `packet_stream`).
pub(crate) struct Entry {
    pub port: BoundPort,
    call: CallKey,
    latch: Latch,
    pub stats: Arc<StreamStats>,
    forward: bool,
    /// The party takes RTCP feedback (AVPF); otherwise feedback is stripped on the way out.
    rtcp_feedback: bool,
    rtp_sink_key: Option<PortKey>,
    rtcp_sink_key: Option<PortKey>,
    /// Slab indices of the sinks, resolved whenever the call's ports change.
    rtp_sink: Option<usize>,
    rtcp_sink: Option<usize>,
    /// RTP from this party is transcoded (RTP port only); built when the plan asks.
    transcoder: Option<Box<Transcoder>>,
    /// The stream is transcoded: its RTCP is counted but not relayed (we report ourselves).
    terminate_rtcp: bool,
    /// Monotonic ms when our next RTCP report for the transcoder's output is due.
    rtcp_due_ms: u64,
    /// Unprotects what the party sends (`None`: it sends plain RTP).
    srtp_in: Option<Box<Srtp>>,
    /// Protects what leaves through this socket towards the party.
    srtp_out: Option<Box<Srtp>>,
    /// Our ICE credentials when we answer STUN checks on this socket.
    ice: Option<Box<IceCredentials>>,
    /// Full ICE agent checking the party's candidates from this socket.
    agent: Option<Box<crate::core::stun::agent::IceAgent>>,
    /// DTLS-SRTP with the party; its handshake keys `srtp_in`/`srtp_out`.
    dtls: Option<Box<DtlsLink>>,
    /// Copies of accepted RTP go to the recorder and/or the interceptor.
    taps: StreamTaps,
    /// The RTP line leaving this socket toward its party (RTP port only).
    line: OutLine,
    /// Media played toward this socket's party; what the other party sends it is dropped
    /// meanwhile (replaced, not mixed).
    player: Option<Box<Player>>,
    /// Subscriber sockets that get a copy of what this socket relays (see [`fan_out`]).
    copies: Vec<CopyTarget>,
    /// On a subscriber's RTP socket: transcodes the RTP copied to it (subscriber codec).
    feed: Option<Box<Transcoder>>,
    /// TOS byte set on the socket (0: never set, the kernel's default).
    tos: u8,
    /// `block media`, `block DTMF`, `silence media` of what this socket's party sends.
    control: StreamControl,
    /// DTMF digits played into what this socket's party sends (`play DTMF`); kept once
    /// built, idle when its queue is empty.
    inject: Option<Box<DtmfInjector>>,
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
    /// Where DTMF reports go (`--dtmf-log-dest`), and the events of the party seen so far.
    dtmf_sock: Option<Arc<std::net::UdpSocket>>,
    dtmf_watch: crate::core::dtmf_log::EventWatch,
}

/// A live alternate socket of a stream (see [`Entry::alts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AltSocket {
    slot: usize,
    fd: RawFd,
    v6: bool,
}

/// Send one DTMF report of `entry`'s party (from `source`) to the log destination.
pub(crate) fn report_dtmf(
    entry: &Entry,
    report: &crate::core::dtmf_log::DtmfReport,
    source: std::net::IpAddr,
    unix_secs: u64,
) {
    let (Some(sock), Some(who)) = (
        entry.dtmf_sock.as_deref(),
        entry.control.dtmf_log.as_deref(),
    ) else {
        return;
    };
    let mut buf = [0u8; crate::core::dtmf_log::MAX_REPORT];
    if let Some(n) = who.write_json(&mut buf, report, source, unix_secs) {
        // Best effort, never blocking: a report that cannot leave now is lost.
        let _ = sock.send(&buf[..n]);
    }
}

/// A subscriber socket of [`Entry::copies`], with its slab slot once resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyTarget {
    key: PortKey,
    slot: Option<usize>,
    egress: bool,
}

/// Which copies [`fan_out`] makes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyKind {
    /// What the party sent (before any transcoding toward its peer).
    Ingress,
    /// What leaves toward the peer, for `egress` subscriptions.
    Egress,
    /// Both: the packet leaves unchanged, so ingress and egress are the same bytes.
    All,
}

/// Send copies of `pkt` (plain RTP or RTCP of `route`, as received on slot `idx` or as its
/// transcoder produced it) to the subscribers of that slot: each copy goes through the
/// subscriber's own transcoder when it has one (RTP only), is protected for the
/// subscriber's party in `scratch` and handed to `send(fd, slot, dest, bytes)`. Nothing is
/// allocated: the copy list and the transcoders were built when the plan was applied.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fan_out(
    slab: &mut [Option<Entry>],
    counters: &WorkerCounters,
    idx: usize,
    route: Route,
    kind: CopyKind,
    pkt: &[u8],
    now: Now,
    scratch: &mut [u8],
    mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
) {
    let route = match route {
        Route::Transcode => Route::Rtp,
        Route::Rtp | Route::Rtcp => route,
        Route::None | Route::Reply => return,
    };
    let count = match slab.get(idx) {
        Some(Some(e)) => e.copies.len(),
        _ => return,
    };
    let room = scratch.len().saturating_sub(SRTP_TAIL_ROOM);
    if pkt.len() > room {
        return;
    }
    for j in 0..count {
        let Some(Some(source)) = slab.get(idx) else {
            return;
        };
        let Some(copy) = source.copies.get(j).copied() else {
            return;
        };
        let wanted = match kind {
            CopyKind::All => true,
            CopyKind::Ingress => !copy.egress,
            CopyKind::Egress => copy.egress,
        };
        let Some(slot) = copy.slot.filter(|_| wanted) else {
            continue;
        };
        let Some(Some(sink)) = slab.get_mut(slot) else {
            continue;
        };
        let Some(dest) = sink.latch.destination() else {
            continue;
        };
        let (out, fd) = sink.out_for(slot, dest);
        let mut failed = 0u64;
        match sink.feed.as_mut() {
            Some(t) if route == Route::Rtp && !copy.egress => {
                t.handle_rtp(now.mono_ms, pkt);
                while let Some(n) = sink
                    .feed
                    .as_mut()
                    .and_then(|t| t.poll_output(&mut scratch[..room]))
                {
                    match protect(sink, route, scratch, n) {
                        Ok(len) if send(fd, out, dest, &scratch[..len]) => {
                            counters.count_relayed(1)
                        }
                        _ => failed += 1,
                    }
                }
            }
            _ => {
                scratch[..pkt.len()].copy_from_slice(pkt);
                match protect(sink, route, scratch, pkt.len()) {
                    Ok(len) if send(fd, out, dest, &scratch[..len]) => counters.count_relayed(1),
                    _ => failed += 1,
                }
            }
        }
        if failed > 0 {
            if let Some(Some(source)) = slab.get(idx) {
                drop_many(counters, &source.stats, DropReason::SendFailed, failed);
            }
        }
    }
}

impl Entry {
    /// The slot and socket out of which packets toward this entry's party at `dest` leave
    /// (`own` is the entry's slot): the socket the party was last heard on when its address
    /// family fits, else this one when it fits, else an alternate of that family.
    #[inline]
    pub(crate) fn out_for(&self, own: usize, dest: SocketAddr) -> (usize, RawFd) {
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

    /// Subscribers get copies of what this socket relays.
    #[inline]
    pub(crate) fn has_copies(&self) -> bool {
        !self.copies.is_empty()
    }

    /// Slab index of the sink for `route`.
    #[inline]
    fn sink(&self, route: Route) -> Option<usize> {
        match route {
            Route::None | Route::Reply => None,
            Route::Rtp | Route::Transcode => self.rtp_sink,
            Route::Rtcp => self.rtcp_sink,
        }
    }
}

/// The slot whose stream handles a packet received on slot `idx`: `idx` itself, or the
/// primary socket when `idx` is an alternate on another address.
#[inline]
pub(crate) fn stream_slot(slab: &[Option<Entry>], idx: usize) -> usize {
    match slab.get(idx) {
        Some(Some(e)) => e.alias_of.and_then(|(_, slot)| slot).unwrap_or(idx),
        _ => idx,
    }
}

/// The stream at slot `idx` accepted a packet of `route` that arrived on slot `arrived`
/// (itself or one of its alternates): its party is now heard there, and what goes to the
/// party leaves from there.
#[inline]
pub(crate) fn heard_on(slab: &mut [Option<Entry>], idx: usize, arrived: usize, route: Route) {
    if !matches!(route, Route::Rtp | Route::Rtcp | Route::Transcode) {
        return;
    }
    if let Some(Some(e)) = slab.get_mut(idx) {
        if !e.alts.is_empty() {
            e.via = e.alts.iter().position(|a| a.slot == arrived);
        }
    }
}

/// Where one received packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    None,
    Rtp,
    Rtcp,
    /// RTP for the stream's transcoder: [`transcode()`] feeds it and sends what it produces.
    Transcode,
    /// The buffer now holds a reply (a STUN response) to send back to the packet's source
    /// out of the socket it arrived on.
    Reply,
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

/// Classify, authenticate, latch-check and count one received packet (rtpengine's
/// `stream_packet`), and say on which route it is to be relayed (`Route::None`: not
/// relayed, already counted) with its length after SRTP unprotection, which happens in
/// place in `buf[..len]`. `src` is `None` when the kernel reported an address family we do
/// not handle.
///
/// SRTP is authenticated before the latch sees the packet, so forged packets can neither
/// move a latch nor count as traffic; counters record the bytes received on the wire.
#[inline]
pub(crate) fn inspect(
    entry: &mut Entry,
    counters: &WorkerCounters,
    buf: &mut [u8],
    len: usize,
    src: Option<SocketAddr>,
    truncated: bool,
    now: Now,
) -> (Route, usize) {
    if truncated || len > buf.len() {
        drop_packet(counters, &entry.stats, DropReason::Malformed);
        return (Route::None, 0);
    }
    let route = match (classify(&buf[..len]), entry.port.role) {
        (PacketKind::Rtp, Role::Rtp) => Route::Rtp,
        (PacketKind::Rtcp, _) => Route::Rtcp,
        (PacketKind::Stun, _) => return answer_stun(entry, counters, buf, len, src, now.mono_ms),
        (PacketKind::Dtls, _) => {
            handle_dtls(entry, counters, &buf[..len], src);
            return (Route::None, 0);
        }
        // RTP on an RTCP port is nonsense.
        _ => {
            drop_packet(counters, &entry.stats, DropReason::Malformed);
            return (Route::None, 0);
        }
    };
    let pkt = &mut buf[..len];
    let ssrc = if route == Route::Rtp {
        match RtpHeader::parse(pkt) {
            Ok(h) => h.ssrc(),
            Err(_) => {
                drop_packet(counters, &entry.stats, DropReason::Malformed);
                return (Route::None, 0);
            }
        }
    } else {
        0
    };
    let Some(src) = src else {
        drop_packet(counters, &entry.stats, DropReason::Malformed);
        return (Route::None, 0);
    };
    let mut plain_len = match entry.srtp_in.as_deref_mut() {
        // A DTLS-SRTP party sends nothing we can use before its keys are settled.
        None if entry.dtls.is_some() => {
            drop_packet(counters, &entry.stats, DropReason::Dtls);
            return (Route::None, 0);
        }
        None => len,
        Some(srtp) => {
            let r = if route == Route::Rtp {
                srtp.ctx.unprotect_rtp(pkt)
            } else {
                srtp.ctx.unprotect_rtcp(pkt)
            };
            match r {
                Ok(n) => {
                    let position = srtp.ctx.position().rx_rtp;
                    entry.stats.srtp_in.store(position, Relaxed);
                    n
                }
                Err(e) => {
                    drop_packet(counters, &entry.stats, DropReason::from_srtp(e));
                    return (Route::None, 0);
                }
            }
        }
    };
    match entry.latch.on_packet(src, now.mono_ms) {
        LatchVerdict::Accept => {}
        LatchVerdict::AcceptAndLatched(addr) => entry.stats.set_endpoint(Some(addr)),
        LatchVerdict::Drop(reason) => {
            drop_packet(counters, &entry.stats, reason);
            return (Route::None, 0);
        }
    }
    let rtp = route == Route::Rtp;
    (entry.stats.quality).record(counters, &pkt[..plain_len], rtp, now.mono_us, now.wall_ms);
    if rtp && entry.dtmf_sock.is_some() {
        // Reported before any blocking: a blocked digit was still received.
        if let Some(who) = entry.control.dtmf_log.as_deref() {
            if let Some(r) = entry.dtmf_watch.on_rtp(who, &pkt[..plain_len]) {
                report_dtmf(entry, &r, src.ip(), now.wall_ms / 1000);
            }
        }
    }
    match (route, entry.port.role) {
        (Route::Rtp, _) => {
            counters.count_rtp(len);
            entry.stats.count_rx(len, now.wall_ms);
            entry.stats.last_ssrc.store(ssrc, Relaxed);
            // The copy is what the party sent, decrypted (SRTP was unprotected above). A
            // skipped copy never affects relaying; only the recorder's count as drops.
            if !entry
                .taps
                .copy(&pkt[..plain_len], src, entry.port.addr, now.wall_ms)
            {
                counters.count_drop(DropReason::TapFull);
            }
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
    if !entry.forward {
        return (Route::None, 0);
    }
    if entry.control.active() {
        match route {
            Route::Rtp => match entry.control.apply_rtp(&mut pkt[..plain_len]) {
                ControlVerdict::Forward(n) => plain_len = n,
                ControlVerdict::Block => return (Route::None, 0),
            },
            Route::Rtcp if entry.control.block_media => return (Route::None, 0),
            _ => {}
        }
    }
    match route {
        Route::Rtp
            if entry.transcoder.is_some() || entry.inject.as_ref().is_some_and(|i| i.busy()) =>
        {
            (Route::Transcode, plain_len)
        }
        // Transcoded streams: the peer's reports describe a stream we replaced; we send our own.
        Route::Rtcp if entry.terminate_rtcp => (Route::None, 0),
        r => (r, plain_len),
    }
}

/// A player is sending toward `sink`'s party: RTP relayed or transcoded to it is dropped.
#[inline]
pub(crate) fn replaced(slab: &[Option<Entry>], sink: usize) -> bool {
    matches!(slab.get(sink), Some(Some(e)) if e.player.is_some())
}

/// Prepare `buf[..len]` (a packet of `route`) for leaving through `sink` towards its party:
/// keep RTP on the party's line (see `core::player::OutLine`), strip RTCP feedback the party
/// did not negotiate, then SRTP-protect it in place when that party gets SRTP. Returns the
/// length to send; `buf` must extend to the end of the packet's buffer (tail room, see
/// [`SRTP_TAIL_ROOM`]).
#[inline]
pub(crate) fn protect(
    sink: &mut Entry,
    route: Route,
    buf: &mut [u8],
    mut len: usize,
) -> Result<usize, DropReason> {
    if matches!(route, Route::Rtp | Route::Transcode) && len <= buf.len() {
        sink.line.on_egress(&mut buf[..len]);
    }
    if route == Route::Rtcp && !sink.rtcp_feedback {
        len = strip_rtcp_feedback(buf, len);
        if len == 0 {
            return Err(DropReason::RtcpFeedback);
        }
    }
    srtp_protect(sink, route, buf, len)
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
    /// Scratch for one generated packet (transcoder output, RTCP report).
    pub out_buf: Box<[u8]>,
    /// Scratch for one copy of a packet for a subscriber (see [`fan_out`]).
    pub copy_buf: Box<[u8]>,
    /// The recorder's queue, for streams whose plan asks for a tap.
    tap: Option<TapSender>,
    /// The interceptor's queue, for streams whose plan asks for interception copies.
    intercept: Option<TapSender>,
    /// Slots with a player (may hold stale slots; `poll_players` cleans them up).
    players: Vec<usize>,
    /// When the earliest player packet is due (monotonic µs).
    next_player_us: Option<u64>,
}

impl Core {
    pub fn new(
        commands: Receiver<Command>,
        counters: Arc<WorkerCounters>,
        learning: EndpointLearning,
        silence_detect: Option<crate::core::transcode::SilenceDetect>,
        dtmf_sock: Option<Arc<std::net::UdpSocket>>,
    ) -> Core {
        Core {
            commands,
            counters,
            learning,
            silence_detect,
            dtmf_sock,
            slab: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            calls: HashMap::new(),
            acks: Vec::new(),
            handshaking: Vec::new(),
            ice_agents: Vec::new(),
            tap: None,
            intercept: None,
            next_rtcp_scan_ms: 0,
            players: Vec::new(),
            next_player_us: None,
            out_buf: vec![0; OUT_BUF].into_boxed_slice(),
            copy_buf: vec![0; OUT_BUF].into_boxed_slice(),
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
                Command::SetTap(tap) => self.tap = tap,
                Command::Play(port, spec) => self.play(port, spec),
                Command::PlayDtmf {
                    port,
                    digit,
                    target,
                    ptime_ms,
                } => self.play_dtmf(port, digit, target, ptime_ms),
                Command::SetInterceptTap(tap) => self.intercept = tap,
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

    /// Drive DTLS handshakes: start clients that can start, retransmit flights whose timer
    /// expired, forget associations that are done. Returns how long the backend may sleep
    /// before calling again (`None`: no timer running). Cheap when nothing is handshaking,
    /// so backends call it on every wake-up.
    pub fn handle_timers(&mut self) -> Option<Duration> {
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
            if !kick_dtls(entry) {
                self.handshaking.swap_remove(i);
                continue;
            }
            if let Some(link) = entry.dtls.as_deref_mut() {
                let step = link.session.handle_timeout().map(|()| None);
                if !after_dtls_step(entry, step) {
                    self.counters.count_drop(DropReason::Dtls);
                }
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
