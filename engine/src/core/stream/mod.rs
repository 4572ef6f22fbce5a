//! The per-packet pipeline of one media socket (rtpengine's `packet_stream` and
//! `stream_packet`), sans IO: [`handle`] takes a datagram, its source address and the time
//! and returns a [`Verdict`] (forward these bytes there out of that socket, reply to the
//! source, hand to the transcoder, absorbed, or dropped for a [`DropReason`]). The IO layer
//! (`io::worker::Core::dispatch`, shared by both backends) only performs the verdict.
//!
//! A worker keeps its streams in a slab indexed by slot; a stream's sinks are slots of the
//! same slab, so routing, SRTP protection for the sink's party and subscriber copies are
//! decided here too. The slab holds the IO layer's own slot type ([`Slot`]), which derefs
//! to the [`Stream`] and hands back an opaque socket handle the IO layer uses to send.
//!
//! Packets the stream makes besides the verdict (copies to subscribers, a transcoder's
//! output) go through a `send(socket, slot, dest, bytes) -> bool` callback that returns
//! whether the bytes were sent or queued; tests pass one that records them.
//!
//! Order of work on a received packet, as in rtpengine's `stream_packet`: classify (RTP,
//! RTCP, STUN, DTLS) → STUN answer / DTLS record → SRTP unprotect (forged packets neither
//! move a latch nor count) → latch → count, quality, taps (recording/LI) → media control
//! (block/silence) → copies to subscribers → transcoder, or sink lookup → player on the
//! sink (replaced) → sink's out line, RTCP feedback filter, SRTP protect → forward.

use std::net::{IpAddr, SocketAddr};
use std::ops::DerefMut;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

mod delayed;
mod dtls;
mod fax;
#[doc(hidden)]
pub mod fuzz;
mod srtp;
mod stun;
#[cfg(test)]
mod tests;
mod transcode;

pub(crate) use delayed::{release_delayed, DelayScratch};
pub(crate) use dtls::{after_dtls_step, key_from_dtls, kick_dtls, DtlsLink};
pub(crate) use fax::{feed_gateway, poll_gateway};
pub(crate) use srtp::{rekey, resume, srtp_protect_parts, Srtp};
pub(crate) use transcode::{transcode, transcode_tick};

use dtls::handle_dtls;
use srtp::srtp_protect;
use stun::answer_stun;

use crate::core::delay_buffer::DelayBuffer;
use crate::core::dtmf_inject::DtmfInjector;
use crate::core::dtmf_security::{DtmfGuard, GuardVerdict};
use crate::core::latch::{Latch, LatchVerdict, Proof};
use crate::core::media_control::{ControlVerdict, PayloadKind, StreamControl};
use crate::core::pii::Pii;
use crate::core::plan::{IceCredentials, PortKey, StreamMode};
use crate::core::player::{OutLine, Player};
use crate::core::rtp::{classify, strip_rtcp_feedback, PacketKind, RtpHeader};
use crate::core::stats::{DropReason, StreamStats, WorkerCounters};
use crate::core::stun::agent::IceAgent;
use crate::core::t38::gateway::FaxGateway;
use crate::core::tap::StreamTaps;
use crate::core::transcode::Transcoder;

/// Bytes every receive buffer keeps free after the largest datagram it accepts, so a packet
/// can be SRTP-protected in place: the largest overhead is 20 bytes (SRTCP with a 16-byte
/// GCM tag and the 4-byte index); 32 keeps the arithmetic obvious.
pub(crate) const SRTP_TAIL_ROOM: usize = 32;

/// Which half of a pair a socket is (rtpengine's RTP and RTCP `packet_stream`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Rtp,
    Rtcp,
}

/// Clock readings shared by every packet of one wake-up (read by the IO layer, passed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    /// Unix time, for `last_packet_ms`.
    pub wall_ms: u64,
    /// Monotonic time, for the latch's learning window.
    pub mono_ms: u64,
    /// Fine monotonic time, for jitter and RTT (the coarse clocks tick every few ms).
    pub mono_us: u64,
}

/// The per-packet state of one media socket (rtpengine's `packet_stream` with its
/// `stream_fd`'s crypto and ICE state): where its party is, how its packets are
/// authenticated and protected, where they go and what else gets a copy.
pub(crate) struct Stream {
    /// The port's identity, for logs.
    pub key: PortKey,
    pub role: Role,
    /// RTP, or datagrams relayed as they are (see [`StreamMode`]).
    pub mode: StreamMode,
    /// The socket's local address (taps record it as the destination).
    pub local: SocketAddr,
    pub latch: Latch,
    pub stats: Arc<StreamStats>,
    pub forward: bool,
    /// The party takes RTCP feedback (AVPF); otherwise feedback is stripped on the way out.
    pub rtcp_feedback: bool,
    pub rtp_sink_key: Option<PortKey>,
    pub rtcp_sink_key: Option<PortKey>,
    /// Slab indices of the sinks, resolved whenever the call's ports change.
    pub rtp_sink: Option<usize>,
    pub rtcp_sink: Option<usize>,
    /// RTP from this party is transcoded (RTP port only); built when the plan asks.
    pub transcoder: Option<Box<Transcoder>>,
    /// The stream is transcoded: its RTCP is counted but not relayed (we report ourselves).
    pub terminate_rtcp: bool,
    /// Monotonic ms when our next RTCP report for the transcoder's output is due.
    pub rtcp_due_ms: u64,
    /// Unprotects what the party sends (`None`: it sends plain RTP).
    pub srtp_in: Option<Box<Srtp>>,
    /// Protects what leaves through this socket towards the party.
    pub srtp_out: Option<Box<Srtp>>,
    /// Our ICE credentials when we answer STUN checks on this socket.
    pub ice: Option<Box<IceCredentials>>,
    /// Full ICE agent checking the party's candidates from this socket.
    pub agent: Option<Box<IceAgent>>,
    /// DTLS-SRTP with the party; its handshake keys `srtp_in`/`srtp_out`.
    pub dtls: Option<Box<DtlsLink>>,
    /// Copies of accepted RTP go to the recorder and/or the interceptor.
    pub taps: StreamTaps,
    /// The RTP line leaving this socket toward its party (RTP port only).
    pub line: OutLine,
    /// Media played toward this socket's party; what the other party sends it is dropped
    /// meanwhile (replaced, not mixed).
    pub player: Option<Box<Player>>,
    /// Subscriber sockets that get a copy of what this socket relays (see [`fan_out`]).
    pub copies: Vec<CopyTarget>,
    /// On a subscriber's RTP socket: transcodes the RTP copied to it (subscriber codec).
    pub feed: Option<Box<Transcoder>>,
    /// `block media`, `block DTMF`, `silence media` of what this socket's party sends.
    pub control: StreamControl,
    /// DTMF digits played into what this socket's party sends (`play DTMF`); kept once
    /// built, idle when its queue is empty.
    pub inject: Option<Box<DtmfInjector>>,
    /// Where DTMF reports go (`--dtmf-log-dest`), and the events of the party seen so far.
    /// The report is sent from here, best effort and never blocking (a side effect still to
    /// be lifted into the verdict).
    pub dtmf_sock: Option<Arc<std::net::UdpSocket>>,
    pub dtmf_watch: crate::core::dtmf_log::EventWatch,
    /// `DTMF-security` replacement and DTMF triggers of what this socket's party sends
    /// (RTP port only), built from `control.security`.
    pub guard: Option<Box<DtmfGuard>>,
    /// The party's delay buffer (`delay-buffer`, RTP port only): what it sends is held
    /// and goes on when due, through [`release_delayed`].
    pub delay: Option<Box<DelayBuffer>>,
    /// The T.38 gateway, on the T.38 party's RTP socket (see `plan::FaxPlan`).
    pub gateway: Option<Box<FaxGateway>>,
    /// The party faxes over audio: its RTP goes to the gateway on `rtp_sink`.
    pub feeds_gateway: bool,
}

/// Send one DTMF report of `entry`'s party (from `source`) to the log destination.
pub(crate) fn report_dtmf(
    entry: &Stream,
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

impl Stream {
    /// A stream that relays nothing yet: no sinks, no keys, no ICE, no taps.
    pub(crate) fn new(
        key: PortKey,
        role: Role,
        local: SocketAddr,
        latch: Latch,
        stats: Arc<StreamStats>,
    ) -> Stream {
        Stream {
            key,
            role,
            mode: StreamMode::Rtp,
            local,
            latch,
            stats,
            forward: false,
            rtcp_feedback: false,
            rtp_sink_key: None,
            rtcp_sink_key: None,
            rtp_sink: None,
            rtcp_sink: None,
            transcoder: None,
            terminate_rtcp: false,
            rtcp_due_ms: 0,
            srtp_in: None,
            srtp_out: None,
            ice: None,
            agent: None,
            dtls: None,
            taps: StreamTaps::default(),
            line: OutLine::default(),
            player: None,
            copies: Vec::new(),
            feed: None,
            control: StreamControl::default(),
            inject: None,
            dtmf_sock: None,
            dtmf_watch: Default::default(),
            guard: None,
            delay: None,
            gateway: None,
            feeds_gateway: false,
        }
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
            Route::Reply => None,
            Route::Rtp | Route::Transcode | Route::Gateway => self.rtp_sink,
            Route::Rtcp => self.rtcp_sink,
            // The datagram goes to the peer's socket of the same kind.
            Route::Opaque => match self.role {
                Role::Rtp => self.rtp_sink,
                Role::Rtcp => self.rtcp_sink,
            },
        }
    }
}

/// A slab entry as the IO layer keeps it: the [`Stream`] plus the socket it belongs to,
/// of which the pipeline only passes an opaque handle back to the IO layer's `send`.
pub(crate) trait Slot: DerefMut<Target = Stream> {
    type Socket: Copy;
    fn socket(&self) -> Self::Socket;

    /// On a socket bound on another address of a stream's interface (an alternate): the
    /// slot of the stream's primary socket, whose state handles what it receives.
    fn primary(&self) -> Option<usize> {
        None
    }

    /// The stream accepted a packet that arrived on slot `arrived` (its own or an
    /// alternate's): its party is now heard there.
    fn heard_on(&mut self, _arrived: usize) {}

    /// The slot and socket out of which packets toward this stream's party at `dest` leave
    /// (`own`: this entry's slot).
    fn out_for(&self, own: usize, _dest: SocketAddr) -> (usize, Self::Socket) {
        (own, self.socket())
    }
}

/// The slot whose stream handles a packet received on slot `arrived`: `arrived` itself, or
/// the primary socket when it is an alternate on another address.
#[inline]
pub(crate) fn stream_slot<S: Slot>(slab: &[Option<S>], arrived: usize) -> usize {
    match slab.get(arrived) {
        Some(Some(e)) => e.primary().unwrap_or(arrived),
        _ => arrived,
    }
}

/// A subscriber socket of [`Stream::copies`], with its slab slot once resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyTarget {
    pub key: PortKey,
    pub slot: Option<usize>,
    pub egress: bool,
    /// This flow is blocked, or silenced (`block`/`silence media` with `to-tag`).
    pub block: bool,
    pub silence: bool,
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

/// What becomes of one received datagram. The bytes a verdict names are in the datagram's
/// own buffer (`buf[..len]`), changed in place (SRTP removed and added, the out line's
/// SSRC/sequence/timestamp, a STUN response written over the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Relay `buf[..len]` to `to` out of the socket in slot `via` (the sink's, or the
    /// alternate of it its party was last heard on).
    Forward {
        via: usize,
        to: SocketAddr,
        len: usize,
    },
    /// Send `buf[..len]` back to `to` (the source) out of the receiving socket: a STUN
    /// response. Not counted as relayed.
    Reply { to: SocketAddr, len: usize },
    /// `buf[..len]` is plain RTP for the stream's transcoder or DTMF injector
    /// ([`transcode()`] feeds it and sends what comes out).
    Transcode { len: usize },
    /// `buf[..len]` is for a T.38 gateway: UDPTL from the T.38 party or plain RTP from the
    /// audio party ([`feed_gateway`] hands it over).
    Gateway { len: usize },
    /// Taken on purpose, nothing to send and nothing wrong.
    Absorbed(Absorbed),
    /// Not relayed for a reason counted in `ngmedia_packet_drops_total{reason}` and the
    /// stream's error count (see [`count_drop`]).
    Drop(DropReason),
}

/// Why a packet was taken without being relayed (not a drop: nothing went wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Absorbed {
    /// A DTLS record the stream's association took (handshake, alert); its own datagrams
    /// wait in the association (see [`DtlsLink::poll_datagram`]).
    Dtls,
    /// A STUN response to one of our own ICE checks.
    StunResponse,
    /// A STUN request refused without an answer we could write (already counted as a
    /// `stun` drop when it was refused).
    StunRefused,
    /// Counted, but the plan does not forward this stream (no peer yet, or a one-way
    /// subscription).
    NotForwarding,
    /// `block media` (RTP and RTCP) or a blocked DTMF event.
    Blocked,
    /// RTCP of a transcoded stream: the peer's reports describe a stream we replaced; we
    /// send our own.
    RtcpTerminated,
    /// A player is sending toward the sink's party: its RTP replaces what this party sends.
    Replaced,
    /// Held in the party's delay buffer (`delay-buffer`), sent on when due.
    Delayed,
}

/// Where one received packet goes, once classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Rtp,
    Rtcp,
    /// RTP for the stream's transcoder.
    Transcode,
    /// A reply (a STUN response) back to the packet's source out of the socket it arrived
    /// on.
    Reply,
    /// A datagram of an opaque stream ([`StreamMode::Opaque`]), relayed byte for byte.
    Opaque,
    /// UDPTL or plain RTP for a T.38 gateway.
    Gateway,
}

/// The pipeline for one datagram `buf[..len]` received on slot `arrived` (a stream's
/// socket, or an alternate of it, see [`stream_slot`]) from `src` (`None`
/// when the kernel reported an address family we do not handle), `truncated` when it did
/// not fit the buffer. `buf` extends to the end of the datagram's buffer (tail room, see
/// [`SRTP_TAIL_ROOM`]). Counters record what was received; a [`Verdict::Drop`] is left to
/// the caller to count ([`count_drop`]), as is the outcome of sending what the verdict
/// names. Copies for subscribers are made here (before the packet is protected for its
/// sink) and handed to `send`, with `copy_buf` as scratch.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn handle<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    arrived: usize,
    buf: &mut [u8],
    len: usize,
    src: Option<SocketAddr>,
    truncated: bool,
    now: Now,
    copy_buf: &mut [u8],
    send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) -> Verdict {
    let idx = stream_slot(slab, arrived);
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return Verdict::Drop(DropReason::NoStream);
    };
    let (route, len) = match inspect(entry, counters, buf, len, src, truncated, now) {
        Ok(r) => r,
        Err(verdict) => return verdict,
    };
    if route == Route::Reply {
        return match src {
            Some(to) => Verdict::Reply { to, len },
            None => Verdict::Drop(DropReason::Malformed),
        };
    }
    // What goes to the party leaves from where it was last heard (the party: a stranger's
    // packet relayed without moving the latch does not choose our socket either).
    if src.is_some() && src == entry.latch.learned() {
        entry.heard_on(arrived);
    }
    if route == Route::Gateway {
        return Verdict::Gateway { len };
    }
    // A party behind a delay buffer: its RTP goes on when due (`release_delayed`).
    if matches!(route, Route::Rtp | Route::Transcode) {
        if let Some(d) = entry.delay.as_deref_mut() {
            if d.push(now.mono_us, &buf[..len]) {
                return Verdict::Absorbed(Absorbed::Delayed);
            }
        }
    }
    relay(slab, counters, idx, route, buf, len, now, copy_buf, send)
}

/// The way on of a packet of slot `idx` accepted on `route` (`buf[..len]`, plain): copies
/// to subscribers, the flow toward the peer, the transcoder or the sink.
#[allow(clippy::too_many_arguments)]
#[inline]
fn relay<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    route: Route,
    buf: &mut [u8],
    len: usize,
    now: Now,
    copy_buf: &mut [u8],
    send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) -> Verdict {
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return Verdict::Drop(DropReason::NoStream);
    };
    if entry.has_copies() && route != Route::Opaque {
        let kind = if route == Route::Transcode {
            CopyKind::Ingress
        } else {
            CopyKind::All
        };
        fan_out(
            slab,
            counters,
            idx,
            route,
            kind,
            &buf[..len],
            now,
            copy_buf,
            send,
        );
    }
    let mut len = len;
    if let Some(Some(entry)) = slab.get_mut(idx) {
        // `block`/`silence media` of the flow toward the peer only: subscribers had theirs.
        let rtp = matches!(route, Route::Rtp | Route::Transcode);
        match entry.control.peer_flow(&mut buf[..len], rtp) {
            Some(0) => return Verdict::Absorbed(Absorbed::Blocked),
            Some(n) => len = n,
            None => {}
        }
    }
    if route == Route::Transcode {
        return Verdict::Transcode { len };
    }
    let Some((sink, to)) = target(slab, idx, route) else {
        return Verdict::Drop(DropReason::NoDestination);
    };
    if route == Route::Rtp && replaced(slab, sink) {
        return Verdict::Absorbed(Absorbed::Replaced);
    }
    let Some(Some(sink_entry)) = slab.get_mut(sink) else {
        return Verdict::Drop(DropReason::NoDestination);
    };
    let (via, _) = sink_entry.out_for(sink, to);
    match protect(sink_entry, route, buf, len) {
        Ok(len) => Verdict::Forward { via, to, len },
        Err(reason) => Verdict::Drop(reason),
    }
}

/// RTP from a source other than the confirmed party, on a stream whose transcoder decodes
/// the party's audio. A plain stream relays such packets as they are (as rtpengine does);
/// a transcoder would decode them into the party's stream, whose sequence numbers and
/// timestamps it carries over, and the party's own packets would be lost or concealed.
#[inline]
fn foreign_to_transcoder(entry: &Stream, src: SocketAddr) -> bool {
    entry.transcoder.is_some() && entry.latch.confirmed() && entry.latch.learned() != Some(src)
}

/// A packet from a source the latch refuses (strict source, or a stranger's RTP toward a
/// transcoder): one line per stream per minute at most, with how many were refused since
/// the last one.
#[cold]
fn log_refusal(entry: &mut Stream, src: SocketAddr, now_ms: u64) {
    if let Some(refused) = entry.latch.note_refusal(now_ms) {
        tracing::info!(
            port = entry.key.0,
            local = %entry.local,
            source = %Pii(src),
            party = %Pii(OptAddr(entry.latch.learned())),
            refused,
            "media from a source other than the party's dropped (source_mismatch)"
        );
    }
}

/// A confirmed latch moved: the party proved itself from a new address (SRTP) or
/// `media-handover` follows it. Rate-limited like refusals (a handover flip-flop must not
/// flood the log).
#[cold]
fn log_move(entry: &mut Stream, to: SocketAddr, proof: Proof, now_ms: u64) {
    if entry.latch.note_move(now_ms) {
        let why = match proof {
            Proof::Authenticated => "authenticated SRTP",
            Proof::None => "media-handover",
        };
        tracing::info!(
            port = entry.key.0,
            local = %entry.local,
            party = %Pii(to),
            why,
            "party's media address moved"
        );
    }
}

/// An address or `-` for logs.
struct OptAddr(Option<SocketAddr>);

impl std::fmt::Display for OptAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Count a dropped packet of `stream`: the engine-wide counter by reason, and the stream's
/// error count.
#[inline]
pub(crate) fn count_drop(counters: &WorkerCounters, stream: &Stream, reason: DropReason) {
    drop_packet(counters, &stream.stats, reason);
}

/// Classify, authenticate, latch-check and count one received packet, and say on which
/// route it is to be relayed with its length after SRTP unprotection, which happens in
/// place in `buf[..len]`; `Err` is the verdict when it goes no further.
///
/// SRTP is authenticated before the latch sees the packet, so forged packets can neither
/// move a latch nor count as traffic; counters record the bytes received on the wire.
#[inline]
fn inspect(
    entry: &mut Stream,
    counters: &WorkerCounters,
    buf: &mut [u8],
    len: usize,
    src: Option<SocketAddr>,
    truncated: bool,
    now: Now,
) -> Result<(Route, usize), Verdict> {
    use Verdict::Drop;
    if truncated || len > buf.len() {
        return Err(Drop(DropReason::Malformed));
    }
    if entry.mode == StreamMode::Opaque {
        return inspect_opaque(entry, counters, buf, len, src, now);
    }
    let route = match (classify(&buf[..len]), entry.role) {
        (PacketKind::Rtp, Role::Rtp) => Route::Rtp,
        (PacketKind::Rtcp, _) => Route::Rtcp,
        (PacketKind::Stun, _) => {
            return answer_stun(entry, counters, buf, len, src, now.mono_ms);
        }
        (PacketKind::Dtls, _) => {
            return Err(match handle_dtls(entry, &buf[..len], src) {
                Ok(()) => Verdict::Absorbed(Absorbed::Dtls),
                Err(reason) => Drop(reason),
            });
        }
        // RTP on an RTCP port is nonsense.
        _ => return Err(Drop(DropReason::Malformed)),
    };
    let pkt = &mut buf[..len];
    let ssrc = if route == Route::Rtp {
        match RtpHeader::parse(pkt) {
            Ok(h) => h.ssrc(),
            Err(_) => return Err(Drop(DropReason::Malformed)),
        }
    } else {
        0
    };
    let Some(src) = src else {
        return Err(Drop(DropReason::Malformed));
    };
    let mut plain_len = match entry.srtp_in.as_deref_mut() {
        // A DTLS-SRTP party sends nothing we can use before its keys are settled.
        None if entry.dtls.is_some() => return Err(Drop(DropReason::Dtls)),
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
                Err(e) => return Err(Drop(DropReason::from_srtp(e))),
            }
        }
    };
    // Only the party can produce SRTP that authenticates: such a packet may move the latch.
    let proof = if entry.srtp_in.is_some() {
        Proof::Authenticated
    } else {
        Proof::None
    };
    let was_confirmed = entry.latch.confirmed();
    match entry.latch.on_packet(src, now.mono_ms, proof) {
        LatchVerdict::Accept if route == Route::Rtp && foreign_to_transcoder(entry, src) => {
            log_refusal(entry, src, now.mono_ms);
            return Err(Drop(DropReason::SourceMismatch));
        }
        LatchVerdict::Accept => {}
        LatchVerdict::AcceptAndLatched(addr) => {
            entry.stats.set_endpoint(Some(addr));
            if was_confirmed {
                log_move(entry, addr, proof, now.mono_ms);
            }
        }
        LatchVerdict::Drop(reason) => {
            log_refusal(entry, src, now.mono_ms);
            return Err(Drop(reason));
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
    match (route, entry.role) {
        (Route::Rtp, _) => {
            counters.count_rtp(len);
            entry.stats.count_rx(len, now.wall_ms);
            entry.stats.last_ssrc.store(ssrc, Relaxed);
            // The copy is what the party sent, decrypted (SRTP was unprotected above). A
            // skipped copy never affects relaying; only the recorder's count as drops.
            if !entry
                .taps
                .copy(&pkt[..plain_len], src, entry.local, now.wall_ms)
            {
                counters.count_drop(DropReason::TapFull);
            }
        }
        (_, Role::Rtp) => {
            // RTCP muxed on the RTP port.
            counters.count_rtcp(len);
            entry.stats.count_rtcp_rx(len, now.wall_ms);
            (entry.taps).copy_rtcp(&pkt[..plain_len], src, entry.local, now.wall_ms);
        }
        _ => {
            counters.count_rtcp(len);
            entry.stats.count_rx(len, now.wall_ms);
            (entry.taps).copy_rtcp(&pkt[..plain_len], src, entry.local, now.wall_ms);
        }
    }
    if !entry.forward {
        return Err(Verdict::Absorbed(Absorbed::NotForwarding));
    }
    if entry.control.active() {
        if route == Route::Rtp && !entry.control.block_media {
            if let Some(g) = entry.guard.as_deref_mut() {
                // In-band digits of a transcoded party are its transcoder's to mask.
                let inband = entry.transcoder.is_none();
                let control = &entry.control;
                let has_events = control.payloads.iter().any(|p| p.1 == PayloadKind::Event);
                // Room to grow an event into audio, keeping SRTP's tail room.
                let room = buf.len().saturating_sub(SRTP_TAIL_ROOM).max(plain_len);
                match g.apply(
                    &mut buf[..room],
                    plain_len,
                    |pt| control.kind(pt),
                    has_events,
                    inband,
                    now.mono_ms,
                ) {
                    GuardVerdict::Forward(n) => plain_len = n,
                    GuardVerdict::Block => return Err(Verdict::Absorbed(Absorbed::Blocked)),
                }
                if g.take_mode_change() && !g.config().delayed() {
                    let mode = g.mode();
                    if let Some(t) = entry.transcoder.as_mut() {
                        let c = &entry.control;
                        t.set_block_dtmf(mode, c.tone_freq, c.digit, c.volume);
                    }
                }
            }
        }
        let pkt = &mut buf[..plain_len.max(len)];
        match route {
            Route::Rtp => match entry.control.apply_rtp(&mut pkt[..plain_len]) {
                ControlVerdict::Forward(n) => plain_len = n,
                ControlVerdict::Block => return Err(Verdict::Absorbed(Absorbed::Blocked)),
            },
            Route::Rtcp if entry.control.block_media => {
                return Err(Verdict::Absorbed(Absorbed::Blocked))
            }
            _ => {}
        }
    }
    match route {
        Route::Rtp if entry.feeds_gateway => Ok((Route::Gateway, plain_len)),
        Route::Rtp
            if entry.transcoder.is_some() || entry.inject.as_ref().is_some_and(|i| i.busy()) =>
        {
            Ok((Route::Transcode, plain_len))
        }
        Route::Rtcp if entry.terminate_rtcp => Err(Verdict::Absorbed(Absorbed::RtcpTerminated)),
        r => Ok((r, plain_len)),
    }
}

/// [`inspect`] for an opaque stream: STUN answered where ICE was negotiated, everything
/// else latched onto, counted and relayed as it is.
#[inline]
fn inspect_opaque(
    entry: &mut Stream,
    counters: &WorkerCounters,
    buf: &mut [u8],
    len: usize,
    src: Option<SocketAddr>,
    now: Now,
) -> Result<(Route, usize), Verdict> {
    use Verdict::Drop;
    if entry.ice.is_some() && classify(&buf[..len]) == PacketKind::Stun {
        return answer_stun(entry, counters, buf, len, src, now.mono_ms);
    }
    let Some(src) = src else {
        return Err(Drop(DropReason::Malformed));
    };
    let was_confirmed = entry.latch.confirmed();
    match entry.latch.on_packet(src, now.mono_ms, Proof::None) {
        LatchVerdict::Accept => {}
        LatchVerdict::AcceptAndLatched(addr) => {
            entry.stats.set_endpoint(Some(addr));
            if was_confirmed {
                log_move(entry, addr, Proof::None, now.mono_ms);
            }
        }
        LatchVerdict::Drop(reason) => {
            log_refusal(entry, src, now.mono_ms);
            return Err(Drop(reason));
        }
    }
    entry.stats.count_rx(len, now.wall_ms);
    counters.count_opaque(len);
    if !entry.forward {
        return Err(Verdict::Absorbed(Absorbed::NotForwarding));
    }
    if entry.control.block_media {
        return Err(Verdict::Absorbed(Absorbed::Blocked));
    }
    if entry.gateway.is_some() {
        return Ok((Route::Gateway, len));
    }
    Ok((Route::Opaque, len))
}

/// Send copies of `pkt` (plain RTP or RTCP of `route`, as received on slot `idx` or as its
/// transcoder produced it) to the subscribers of that slot: each copy goes through the
/// subscriber's own transcoder when it has one (RTP only), is protected for the
/// subscriber's party in `scratch` and handed to `send(socket, slot, dest, bytes)`. Nothing
/// is allocated: the copy list and the transcoders were built when the plan was applied.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fan_out<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    route: Route,
    kind: CopyKind,
    pkt: &[u8],
    now: Now,
    scratch: &mut [u8],
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    let route = match route {
        Route::Transcode => Route::Rtp,
        Route::Rtp | Route::Rtcp => route,
        Route::Reply | Route::Opaque | Route::Gateway => return,
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
        let Some(slot) = copy.slot.filter(|_| wanted && !copy.block) else {
            continue;
        };
        // A silenced flow gets silence in the source's codec, its events not at all.
        let silenced_kind = (copy.silence && route == Route::Rtp).then(|| {
            crate::core::rtp::RtpHeader::parse(pkt).map_or(PayloadKind::Other, |h| {
                source.control.kind(h.payload_type())
            })
        });
        if silenced_kind == Some(PayloadKind::Event) {
            continue;
        }
        let Some(Some(sink)) = slab.get_mut(slot) else {
            continue;
        };
        let Some(dest) = sink.latch.destination() else {
            continue;
        };
        let (out, socket) = sink.out_for(slot, dest);
        let sink: &mut Stream = sink;
        let mut failed = 0u64;
        // The silenced copy is written into `scratch` (the copy's own buffer).
        let silenced_len = silenced_kind.map(|kind| {
            scratch[..pkt.len()].copy_from_slice(pkt);
            crate::core::media_control::silence_payload(&mut scratch[..pkt.len()], kind)
        });
        match sink.feed.as_mut() {
            Some(t) if route == Route::Rtp && !copy.egress => {
                match silenced_len {
                    Some(n) => t.handle_rtp(now.mono_ms, &scratch[..n]),
                    None => t.handle_rtp(now.mono_ms, pkt),
                }
                while let Some(n) = sink
                    .feed
                    .as_mut()
                    .and_then(|t| t.poll_output(&mut scratch[..room]))
                {
                    match protect(sink, route, scratch, n) {
                        Ok(len) if send(socket, out, dest, &scratch[..len]) => {
                            counters.count_relayed(1)
                        }
                        _ => failed += 1,
                    }
                }
            }
            _ => {
                let n = match silenced_len {
                    Some(n) => n,
                    None => {
                        scratch[..pkt.len()].copy_from_slice(pkt);
                        pkt.len()
                    }
                };
                match protect(sink, route, scratch, n) {
                    Ok(len) if send(socket, out, dest, &scratch[..len]) => {
                        counters.count_relayed(1)
                    }
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

/// A player is sending toward `sink`'s party: RTP relayed or transcoded to it is dropped.
#[inline]
pub(crate) fn replaced<S: Slot>(slab: &[Option<S>], sink: usize) -> bool {
    matches!(slab.get(sink), Some(Some(e)) if e.player.is_some())
}

/// Prepare `buf[..len]` (a packet of `route`) for leaving through `sink` towards its party:
/// keep RTP on the party's line (see `core::player::OutLine`), strip RTCP feedback the party
/// did not negotiate, then SRTP-protect it in place when that party gets SRTP. Returns the
/// length to send; `buf` must extend to the end of the packet's buffer (tail room, see
/// [`SRTP_TAIL_ROOM`]).
#[inline]
pub(crate) fn protect(
    sink: &mut Stream,
    route: Route,
    buf: &mut [u8],
    mut len: usize,
) -> Result<usize, DropReason> {
    if matches!(route, Route::Opaque | Route::Gateway) {
        // Relayed as it is: no RTP line, no RTCP filter, no SRTP.
        return Ok(len);
    }
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
pub(crate) fn target<S: Slot>(
    slab: &[Option<S>],
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

/// Whether the kernel fast path may carry what the party of slot `idx` sends from `src`,
/// given that this packet (`pkt`, as it leaves) got `Verdict::Forward { via, to, .. }`: true
/// only when every such packet would get the same plain forward with no per-packet work
/// here — RTP on a confirmed latch from that very source, no SRTP/DTLS to remove or add (SRTP
/// passed through unchanged is fine), no transcoder, DTMF injection or blocking, no taps
/// (recording, LI), no subscriber copies, no player toward the sink, no ICE agent still
/// checking, the sink's line not rewriting, one IP family in and out (the program rewrites
/// addresses, it cannot change a packet's family), both streams carrying RTP (an opaque
/// stream's datagram can look like RTP by chance, see [`StreamMode::Opaque`]). Everything else the program leaves to
/// user space on its own: RTCP, STUN, DTLS and other sources.
pub(crate) fn offloadable<S: Slot>(
    slab: &[Option<S>],
    idx: usize,
    arrived: usize,
    via: usize,
    to: SocketAddr,
    src: SocketAddr,
    pkt: &[u8],
) -> bool {
    let (Some(Some(e)), Some(Some(sink))) = (slab.get(idx), slab.get(via)) else {
        return false;
    };
    arrived == idx
        && e.role == Role::Rtp
        && e.mode == StreamMode::Rtp
        && sink.mode == StreamMode::Rtp
        && classify(pkt) == PacketKind::Rtp
        && e.latch.confirmed()
        && e.latch.learned() == Some(src)
        && e.forward
        && e.srtp_in.is_none()
        && e.dtls.is_none()
        && e.agent.is_none()
        && e.transcoder.is_none()
        && !e.feeds_gateway
        && e.gateway.is_none()
        && e.inject.is_none()
        && e.taps.is_empty()
        && e.copies.is_empty()
        && !e.control.active()
        && (e.dtmf_sock.is_none() || e.control.dtmf_log.is_none())
        && sink.player.is_none()
        && sink.srtp_out.is_none()
        && sink.dtls.is_none()
        && sink.line.is_plain()
        && same_family(src.ip(), to.ip())
        && same_family(src.ip(), e.local.ip())
        && same_family(to.ip(), sink.local.ip())
        && !sink.local.ip().is_unspecified()
        && !e.local.ip().is_unspecified()
}

/// Whether packets between `a` and `b` are of one IP family on the wire (an IPv4-mapped IPv6
/// address, a dual-stack socket's view of an IPv4 peer, is IPv4).
fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical().is_ipv4() == b.to_canonical().is_ipv4()
}
