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
use std::time::Duration;

use tracing::{debug, warn};

mod dtls;
mod srtp;
mod stun;

use dtls::{after_dtls_step, handle_dtls, key_from_dtls, kick_dtls, DtlsLink};
use srtp::{rekey, srtp_protect, srtp_protect_parts, Srtp};
use stun::answer_stun;

use super::ports::{BoundPort, Role};
use super::sys;
use crate::core::dtls::DtlsState;
use crate::core::latch::{EndpointLearning, Latch, LatchVerdict};
use crate::core::plan::{CallKey, CallPlan, IceCredentials, PortKey};
use crate::core::player::{OutLine, PlaySpec, Player};
use crate::core::rtp::{classify, strip_rtcp_feedback, PacketKind, RtpHeader};
use crate::core::stats::{DropReason, StreamStats, WorkerCounters};
use crate::core::tap::{StreamTap, StreamTaps, TapSender};
use crate::core::transcode::{write_rtcp_report, TranscodeSpec, Transcoder};

/// Bytes every receive buffer keeps free after the largest datagram it accepts, so a packet
/// can be SRTP-protected in place: the largest overhead is 20 bytes (SRTCP with a 16-byte
/// GCM tag and the 4-byte index); 32 keeps the arithmetic obvious.
pub(crate) const SRTP_TAIL_ROOM: usize = 32;

/// Granularity of the players' timer (µs): 2 ms of added jitter at most, well inside any
/// receiver's jitter buffer, for 1/40th of the wake-ups of per-frame timing at 20 ms ptime.
const PLAYER_TICK_US: u64 = 2000;

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
    /// DTLS-SRTP with the party; its handshake keys `srtp_in`/`srtp_out`.
    dtls: Option<Box<DtlsLink>>,
    /// Copies of accepted RTP go to the recorder and/or the interceptor.
    taps: StreamTaps,
    /// The RTP line leaving this socket toward its party (RTP port only).
    line: OutLine,
    /// Media played toward this socket's party; what the other party sends it is dropped
    /// meanwhile (replaced, not mixed).
    player: Option<Box<Player>>,
}

impl Entry {
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

/// Where one received packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    None,
    Rtp,
    Rtcp,
    /// RTP for the stream's transcoder: [`transcode`] feeds it and sends what it produces.
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
        (PacketKind::Stun, _) => return answer_stun(entry, counters, buf, len, src),
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
    let plain_len = match entry.srtp_in.as_deref_mut() {
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
    match route {
        Route::Rtp if entry.transcoder.is_some() => (Route::Transcode, plain_len),
        // Transcoded streams: the peer's reports describe a stream we replaced; we send our own.
        Route::Rtcp if entry.terminate_rtcp => (Route::None, 0),
        r => (r, plain_len),
    }
}

/// Interval of the RTCP reports we send for transcoded streams (RFC 3550's 5 s minimum).
pub(crate) const RTCP_INTERVAL_MS: u64 = 5_000;
/// How often the worker looks for due RTCP reports. The check runs on the worker's
/// wake-ups (a transcoded stream has packets every 10-60 ms), so no timer is needed.
const RTCP_SCAN_MS: u64 = 500;

/// Feed a packet routed [`Route::Transcode`] (plain RTP, SRTP already removed) to slot
/// `idx`'s transcoder and hand every packet it produces, SRTP-protected for the sink's
/// party where it gets SRTP, to `send(sink_fd, sink_slot, dest, bytes)`, which returns
/// whether the packet was sent or queued (counted as relayed) or failed (counted as a
/// drop). `buf` is the worker's scratch for one output packet (with SRTP tail room).
pub(crate) fn transcode(
    slab: &mut [Option<Entry>],
    counters: &WorkerCounters,
    idx: usize,
    pkt: &[u8],
    now: Now,
    buf: &mut [u8],
    mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
) {
    let dest = target(slab, idx, Route::Rtp)
        .and_then(|(sink, dest)| Some((slab[sink].as_ref()?.port.raw_fd(), sink, dest)));
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return;
    };
    let Some(t) = entry.transcoder.as_mut() else {
        return;
    };
    t.handle_rtp(now.mono_ms, pkt);
    let room = buf.len().saturating_sub(SRTP_TAIL_ROOM);
    let (mut failed, mut undeliverable) = (0, false);
    loop {
        let Some(Some(entry)) = slab.get_mut(idx) else {
            return;
        };
        let Some(n) = entry
            .transcoder
            .as_mut()
            .and_then(|t| t.poll_output(&mut buf[..room]))
        else {
            break;
        };
        let Some((fd, sink, addr)) = dest else {
            undeliverable = true;
            continue;
        };
        if replaced(slab, sink) {
            continue;
        }
        let len = match slab.get_mut(sink) {
            Some(Some(s)) => protect(s, Route::Rtp, buf, n),
            _ => Err(DropReason::NoDestination),
        };
        match len {
            Ok(len) if send(fd, sink, addr, &buf[..len]) => counters.count_relayed(1),
            _ => failed += 1,
        }
    }
    if let Some(Some(entry)) = slab.get(idx) {
        drop_many(counters, &entry.stats, DropReason::SendFailed, failed);
        if undeliverable {
            drop_packet(counters, &entry.stats, DropReason::NoDestination);
        }
    }
}

/// NTP timestamp (RFC 3550 §4) of a Unix time in milliseconds.
fn ntp_from_unix_ms(ms: u64) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = ms / 1000 + NTP_UNIX_OFFSET;
    let frac = ((ms % 1000) << 32) / 1000;
    (secs << 32) | frac
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

/// Tap state for a stream whose plan asks for copies, when a sink is attached.
fn stream_tap(
    queue: Option<&TapSender>,
    call: CallKey,
    stream: Option<crate::core::tap::TapStream>,
) -> Option<StreamTap> {
    Some(StreamTap::new(call, stream?, queue?))
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

/// Build, replace or remove the entry's transcoder as the plan says. Building happens here,
/// on the worker, once per stream: codec state never crosses threads.
fn set_transcoder(e: &mut Entry, spec: Option<TranscodeSpec>, now: Now) {
    e.terminate_rtcp = spec.is_some();
    let wanted = match spec {
        Some(s) if e.port.role == Role::Rtp => s,
        _ => {
            e.transcoder = None;
            return;
        }
    };
    if e.transcoder.as_ref().is_some_and(|t| *t.spec() == wanted) {
        return;
    }
    match Transcoder::new(wanted) {
        Ok(t) => {
            e.transcoder = Some(Box::new(t));
            e.rtcp_due_ms = now.mono_ms + RTCP_INTERVAL_MS;
        }
        Err(err) => {
            // Negotiation only plans what the codecs support; relay rather than go silent.
            warn!(error = %err, "cannot build transcoder; relaying unchanged");
            e.transcoder = None;
        }
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
    /// Slots whose DTLS association is not established yet (handshake timers).
    handshaking: Vec<usize>,
    /// Next time to look for due RTCP reports of transcoded streams.
    next_rtcp_scan_ms: u64,
    /// Scratch for one generated packet (transcoder output, RTCP report).
    pub out_buf: Box<[u8]>,
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
            handshaking: Vec::new(),
            tap: None,
            intercept: None,
            next_rtcp_scan_ms: 0,
            players: Vec::new(),
            next_player_us: None,
            out_buf: vec![0; OUT_BUF].into_boxed_slice(),
        }
    }

    /// Send the RTCP reports of transcoded streams that are due (checked every
    /// [`RTCP_SCAN_MS`] at most). Toward each party that receives transcoded RTP we send an
    /// SR from our output SSRC with the transcoder's packet and octet counts, plus a report
    /// block about the RTP that party sends us (its own transcoder's input). Sent from the
    /// sink's RTCP socket (its RTP socket under rtcp-mux) to the latched RTCP address.
    pub fn send_rtcp_reports(
        &mut self,
        now: Now,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        if now.mono_ms < self.next_rtcp_scan_ms {
            return;
        }
        self.next_rtcp_scan_ms = now.mono_ms + RTCP_SCAN_MS;
        for idx in 0..self.slab.len() {
            let due = match &self.slab[idx] {
                Some(e) => e.transcoder.is_some() && e.rtcp_due_ms <= now.mono_ms,
                None => false,
            };
            if !due {
                continue;
            }
            let Some(e) = self.slab[idx].as_mut() else {
                continue;
            };
            e.rtcp_due_ms = now.mono_ms + RTCP_INTERVAL_MS;
            let rtp_sink = e.rtp_sink;
            // What the peer (the sink's party) sends us, as our transcoder there sees it.
            let report = rtp_sink.and_then(|s| {
                self.slab
                    .get_mut(s)?
                    .as_mut()?
                    .transcoder
                    .as_mut()?
                    .reception()
            });
            let Some(Some(e)) = self.slab.get(idx) else {
                continue;
            };
            let Some(t) = e.transcoder.as_ref() else {
                continue;
            };
            let c = t.counters();
            let sender = (c.sent_packets > 0).then_some((
                t.output_timestamp(),
                c.sent_packets,
                c.sent_octets,
            ));
            let len = write_rtcp_report(
                &mut self.out_buf,
                t.ssrc(),
                ntp_from_unix_ms(now.wall_ms),
                sender,
                report.as_ref(),
            );
            let Some((sink, dest)) = target(&self.slab, idx, Route::Rtcp) else {
                continue;
            };
            let Some(s) = self.slab[sink].as_mut() else {
                continue;
            };
            let fd = s.port.raw_fd();
            // SRTCP toward a party that gets SRTP.
            let Ok(len) = protect(s, Route::Rtcp, &mut self.out_buf, len) else {
                self.counters.count_drop(DropReason::SendFailed);
                continue;
            };
            if len > 0 && !send(fd, sink, dest, &self.out_buf[..len]) {
                self.counters.count_drop(DropReason::SendFailed);
            }
        }
    }

    /// Start or stop the player toward the party of `port`.
    fn play(&mut self, port: PortKey, spec: Option<PlaySpec>) {
        let Some(&idx) = self.by_key.get(&port) else {
            debug!(port = port.0, "play: port not on this worker");
            return;
        };
        let Some(e) = self.slab[idx].as_mut() else {
            return;
        };
        match spec {
            Some(spec) if e.port.role == Role::Rtp => {
                let now_us = Now::read().mono_us;
                let random = (rand::random(), rand::random(), rand::random());
                let p = Player::new(&spec, &e.line, now_us, random);
                if e.player.replace(Box::new(p)).is_some() {
                    e.line.end_play();
                }
                if !self.players.contains(&idx) {
                    self.players.push(idx);
                }
                self.next_player_us = Some(self.next_player_us.map_or(now_us, |t| t.min(now_us)));
            }
            Some(_) => warn!(port = port.0, "play: not an RTP port"),
            None => {
                if e.player.take().is_some() {
                    e.line.end_play();
                }
            }
        }
        self.count_players();
    }

    /// Publish how many players are sending (the list may hold slots closed since; those
    /// do not count).
    fn count_players(&self) {
        let live = self
            .players
            .iter()
            .filter(|&&i| matches!(self.slab.get(i), Some(Some(e)) if e.player.is_some()))
            .count();
        self.counters.players.store(live as u64, Relaxed);
    }

    /// How long the backend may sleep before a player packet is due: `None` = no player
    /// (sleep until IO), else at most that many µs (0: due now).
    pub fn player_timeout_us(&self) -> Option<u64> {
        // Wake on a coarse tick, not at every player's own due time: hundreds of players with
        // scattered phases then share one wake-up (and one send batch) per tick instead of
        // waking the thread for each frame. A frame leaves at most one tick late.
        let due = self.next_player_us?.div_ceil(PLAYER_TICK_US) * PLAYER_TICK_US;
        Some(due.saturating_sub(sys::clock_us(libc::CLOCK_MONOTONIC)))
    }

    /// Send every player packet due at `now`, at most `budget` of them (the rest stay due
    /// and go on the next loop iteration), through `send(fd, slot, dest, bytes)`, which
    /// returns whether it was sent or queued. Updates the next due time.
    pub fn poll_players(
        &mut self,
        now: Now,
        mut budget: usize,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        if self.players.is_empty() {
            self.next_player_us = None;
            self.counters.players.store(0, Relaxed);
            return;
        }
        let Core {
            slab,
            players,
            out_buf,
            counters,
            ..
        } = self;
        let room = out_buf.len().saturating_sub(SRTP_TAIL_ROOM);
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < players.len() {
            let idx = players[i];
            let Some(Some(e)) = slab.get_mut(idx) else {
                players.swap_remove(i);
                continue;
            };
            let Some(p) = e.player.as_mut() else {
                players.swap_remove(i);
                continue;
            };
            let dest = e.latch.destination();
            let fd = e.port.raw_fd();
            while budget > 0 {
                let Some(n) = p.write_next(now.mono_us, &mut out_buf[..room]) else {
                    break;
                };
                budget -= 1;
                let (ssrc, seq, ts, step) = p.line();
                e.line.on_player(ssrc, seq, ts, step);
                // No address for the party yet: time passes, nothing is sent.
                let Some(dest) = dest else { continue };
                let dtls = e.dtls.is_some();
                let sent = match srtp_protect_parts(&mut e.srtp_out, dtls, out_buf, n) {
                    Ok(len) => send(fd, idx, dest, &out_buf[..len]),
                    Err(_) => false,
                };
                if !sent {
                    counters.count_drop(DropReason::SendFailed);
                }
            }
            match p.next_due_us() {
                Some(due) => {
                    next = Some(next.map_or(due, |t| t.min(due)));
                    i += 1;
                }
                None => {
                    // End of file: the relay takes the line back.
                    e.player = None;
                    e.line.end_play();
                    players.swap_remove(i);
                }
            }
        }
        self.next_player_us = next;
        self.count_players();
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
                match sp.dtls {
                    Some(p) if e.dtls.as_ref().is_some_and(|l| l.params == p) => {}
                    Some(p) => {
                        // New or changed association: keys come from its handshake.
                        e.dtls = DtlsLink::new(p, sp.port);
                        e.srtp_in = None;
                        e.srtp_out = None;
                        if !self.handshaking.contains(&idx) {
                            self.handshaking.push(idx);
                        }
                    }
                    None => {
                        if e.dtls.take().is_some() {
                            e.srtp_in = None;
                            e.srtp_out = None;
                        }
                        rekey(&mut e.srtp_in, sp.srtp_in, sp.port);
                        rekey(&mut e.srtp_out, sp.srtp_out, sp.port);
                    }
                }
                e.ice = sp.ice.map(Box::new);
                e.forward = sp.forward;
                e.rtcp_feedback = sp.rtcp_feedback;
                e.rtp_sink_key = sp.rtp_sink;
                e.rtcp_sink_key = sp.rtcp_sink;
                set_transcoder(e, sp.transcode, now);
                if e.taps.record.as_ref().map(StreamTap::stream) != sp.tap {
                    e.taps.record = stream_tap(self.tap.as_ref(), call, sp.tap);
                }
                if e.taps.intercept.as_ref().map(StreamTap::stream) != sp.intercept {
                    e.taps.intercept = stream_tap(self.intercept.as_ref(), call, sp.intercept);
                }
            } else if let Some(pos) = ports.iter().position(|p| p.key == sp.port) {
                let port = ports.swap_remove(pos);
                let (mut srtp_in, mut srtp_out) = (None, None);
                let dtls = match sp.dtls {
                    Some(p) => DtlsLink::new(p, sp.port),
                    None => {
                        rekey(&mut srtp_in, sp.srtp_in, sp.port);
                        rekey(&mut srtp_out, sp.srtp_out, sp.port);
                        None
                    }
                };
                let has_dtls = dtls.is_some();
                let mut entry = Entry {
                    srtp_in,
                    srtp_out,
                    dtls,
                    ice: sp.ice.map(Box::new),
                    call,
                    latch: Latch::new(sp.expected, sp.latch, now.mono_ms)
                        .with_learning(self.learning),
                    stats: sp.stats,
                    forward: sp.forward,
                    rtcp_feedback: sp.rtcp_feedback,
                    rtp_sink_key: sp.rtp_sink,
                    rtcp_sink_key: sp.rtcp_sink,
                    rtp_sink: None,
                    rtcp_sink: None,
                    transcoder: None,
                    terminate_rtcp: false,
                    rtcp_due_ms: 0,
                    taps: StreamTaps {
                        record: stream_tap(self.tap.as_ref(), call, sp.tap),
                        intercept: stream_tap(self.intercept.as_ref(), call, sp.intercept),
                    },
                    line: OutLine::default(),
                    player: None,
                    port,
                };
                // A stream taken over from stored state continues where it was; its DTLS
                // association is keyed already, so no handshake is started.
                let mut handshake = has_dtls;
                if let Some(from) = sp.resume {
                    if let (true, Some(keys)) = (has_dtls, from.dtls_keys.clone()) {
                        key_from_dtls(&mut entry, keys);
                        handshake = false;
                    }
                    srtp::resume(&mut entry.srtp_in, &mut entry.srtp_out, &from);
                    if let Some(addr) = from.latched {
                        entry.latch.resume(addr);
                    }
                }
                set_transcoder(&mut entry, sp.transcode, now);
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
                if handshake && !self.handshaking.contains(&idx) {
                    self.handshaking.push(idx);
                }
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
        // Clients with a known party start their handshake now.
        self.handle_timers();
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
