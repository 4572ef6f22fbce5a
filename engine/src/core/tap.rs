//! Copies of media for sinks off the packet path (recording, lawful interception, RTCP for
//! Homer), and
//! the control-plane events those sinks need (rtpengine: the `recording` hooks of `call.c`
//! and the metadata `recording.c` writes).
//!
//! The packet path must never wait for a sink and must not allocate per packet. So a tapped
//! stream owns a small pool of boxed, fixed-size packet buffers: the worker takes a free one,
//! copies the packet in, and `try_send`s it on the bounded [`TapQueue`]; the sink hands the box
//! back to the pool it came from ([`TapPacket::recycle`]) once it has used it. When either the
//! pool or the queue is empty/full the copy is skipped and counted
//! ([`super::stats::DropReason::TapFull`]); the packet itself is relayed as always.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::plan::CallKey;
use super::rtp::RtpHeader;

/// Largest packet copied: an Ethernet MTU. RTP over UDP in SIP deployments stays below it.
pub const MAX_TAP_PACKET: usize = 1500;

/// Buffers one tapped stream may have in flight. 64 packets are 1.28 s of 20 ms audio, which
/// covers a recorder stalled on a slow disk write; memory stays at ~100 KiB per stream.
pub const STREAM_POOL: usize = 64;

/// Which stream of a call a copy belongs to: the party that sent it (leg index in the call,
/// 0 = the caller who sent the first offer) and the m= line (0-based).
/// rtpengine: a `packet_stream` seen by the recording code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapStream {
    pub leg: u16,
    pub media: u16,
}

/// One copied RTP packet, exactly as received (after SRTP unprotect once that exists).
pub struct TapPacket {
    pub call: CallKey,
    /// The call's Call-ID, on copies of a tap made [`StreamTap::with_call_id`] (sinks outside
    /// the call registry correlate by it); `None` otherwise.
    pub call_id: Option<Arc<str>>,
    pub stream: TapStream,
    /// Where the party sent it from.
    pub src: SocketAddr,
    /// The local socket that received it.
    pub local: SocketAddr,
    /// Unix time of arrival in milliseconds (the worker's coarse clock).
    pub arrival_ms: u64,
    len: u16,
    data: [u8; MAX_TAP_PACKET],
    /// The pool this buffer returns to.
    home: Option<SyncSender<Box<TapPacket>>>,
}

impl std::fmt::Debug for TapPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPacket")
            .field("call", &self.call)
            .field("stream", &self.stream)
            .field("arrival_ms", &self.arrival_ms)
            .field("len", &self.len)
            .finish()
    }
}

impl TapPacket {
    /// An empty buffer outside any pool (tests, sinks that build packets themselves).
    pub fn new_boxed() -> Box<TapPacket> {
        Box::new(TapPacket {
            call: CallKey(0),
            call_id: None,
            stream: TapStream { leg: 0, media: 0 },
            src: SocketAddr::from(([0, 0, 0, 0], 0)),
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            arrival_ms: 0,
            len: 0,
            data: [0; MAX_TAP_PACKET],
            home: None,
        })
    }

    /// Fill the buffer; false (buffer unchanged) when `pkt` is longer than [`MAX_TAP_PACKET`].
    pub fn fill(&mut self, pkt: &[u8]) -> bool {
        let Some(dst) = self.data.get_mut(..pkt.len()) else {
            return false;
        };
        dst.copy_from_slice(pkt);
        self.len = pkt.len() as u16;
        true
    }

    /// The packet bytes, RTP header included.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    /// The parsed RTP header (ssrc, seq, timestamp, payload type, payload).
    pub fn rtp(&self) -> Option<RtpHeader<'_>> {
        RtpHeader::parse(self.bytes()).ok()
    }

    /// Give the buffer back to the stream pool it came from (dropped if that stream is gone).
    pub fn recycle(mut self: Box<Self>) {
        if let Some(home) = self.home.take() {
            let back = home.clone();
            self.home = Some(home);
            // Full cannot happen (the pool never holds more than it handed out); Disconnected
            // means the stream is gone, and the box is simply freed.
            let _ = back.try_send(self);
        }
    }
}

/// The sending half of the tap queue, cloned into every media worker.
#[derive(Clone)]
pub struct TapSender {
    tx: SyncSender<Box<TapPacket>>,
    /// Copies refused (pool empty, queue full, sink gone), summed over every stream. The
    /// recording sink's are also in the workers' `TapFull` drops; the interception sink's are
    /// counted only here, so they never show in the engine's ordinary counters.
    refused: Arc<AtomicU64>,
}

impl TapSender {
    /// Copies refused so far on this queue.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
}

/// The receiving half, owned by the sink's thread.
pub struct TapReceiver {
    rx: Receiver<Box<TapPacket>>,
}

/// A bounded queue of packet copies from the media workers to one sink.
pub fn tap_queue(capacity: usize) -> (TapSender, TapReceiver) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    (
        TapSender {
            tx,
            refused: Arc::default(),
        },
        TapReceiver { rx },
    )
}

impl TapReceiver {
    /// The next copy, waiting at most `wait`. `Err(true)` when every sender is gone.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Box<TapPacket>, bool> {
        self.rx
            .recv_timeout(wait)
            .map_err(|e| e == RecvTimeoutError::Disconnected)
    }

    /// The next copy if one is queued.
    pub fn try_recv(&self) -> Option<Box<TapPacket>> {
        self.rx.try_recv().ok()
    }
}

/// Per-stream tap state inside a media worker: ids, the queue and the buffer pool.
pub struct StreamTap {
    call: CallKey,
    call_id: Option<Arc<str>>,
    stream: TapStream,
    tx: SyncSender<Box<TapPacket>>,
    free: Receiver<Box<TapPacket>>,
    home: SyncSender<Box<TapPacket>>,
    allocated: usize,
    refused: Arc<AtomicU64>,
}

impl StreamTap {
    pub fn new(call: CallKey, stream: TapStream, queue: &TapSender) -> StreamTap {
        let (home, free) = mpsc::sync_channel(STREAM_POOL);
        StreamTap {
            call,
            call_id: None,
            stream,
            tx: queue.tx.clone(),
            free,
            home,
            allocated: 0,
            refused: queue.refused.clone(),
        }
    }

    /// Copies carry the call's Call-ID (an `Arc` shared, nothing allocated per copy).
    pub fn with_call_id(mut self, call_id: Arc<str>) -> StreamTap {
        self.call_id = Some(call_id);
        self
    }

    pub fn stream(&self) -> TapStream {
        self.stream
    }

    /// Queue a copy of `pkt`. False when no buffer is free, the queue is full, the sink is
    /// gone or the packet is too long: the caller counts a drop. Allocates only while the
    /// pool grows to [`STREAM_POOL`] buffers, never in steady state.
    #[inline]
    pub fn copy(
        &mut self,
        pkt: &[u8],
        src: SocketAddr,
        local: SocketAddr,
        arrival_ms: u64,
    ) -> bool {
        let queued = self.try_copy(pkt, src, local, arrival_ms);
        if !queued {
            self.refused.fetch_add(1, Relaxed);
        }
        queued
    }

    #[inline]
    fn try_copy(
        &mut self,
        pkt: &[u8],
        src: SocketAddr,
        local: SocketAddr,
        arrival_ms: u64,
    ) -> bool {
        if pkt.len() > MAX_TAP_PACKET {
            return false;
        }
        let mut buf = match self.free.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < STREAM_POOL => {
                self.allocated += 1;
                let mut b = TapPacket::new_boxed();
                b.home = Some(self.home.clone());
                b
            }
            Err(_) => return false,
        };
        buf.call = self.call;
        buf.call_id.clone_from(&self.call_id);
        buf.stream = self.stream;
        buf.src = src;
        buf.local = local;
        buf.arrival_ms = arrival_ms;
        buf.fill(pkt);
        match self.tx.try_send(buf) {
            Ok(()) => true,
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                // Straight back into our own pool.
                let _ = self.home.try_send(b);
                false
            }
        }
    }
}

/// Every copy a stream makes of what it receives: the recorder's and the interceptor's
/// (lawful interception and `start forwarding`) of its RTP, and Homer's of its RTCP, each to
/// its own queue so a slow consumer of one never costs the others their copies.
#[derive(Default)]
pub struct StreamTaps {
    pub record: Option<StreamTap>,
    pub intercept: Option<StreamTap>,
    /// Received RTCP (decrypted) for the Homer sender (`--homer`).
    pub rtcp: Option<StreamTap>,
}

impl StreamTaps {
    /// No recording and no interception copies of RTP (RTCP copies aside).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.record.is_none() && self.intercept.is_none()
    }

    /// Copy received RTCP to Homer's queue, if the stream has one. A refused copy is counted
    /// on that queue only ([`TapSender::refused`]).
    #[inline]
    pub fn copy_rtcp(&mut self, pkt: &[u8], src: SocketAddr, local: SocketAddr, arrival_ms: u64) {
        if let Some(tap) = self.rtcp.as_mut() {
            tap.copy(pkt, src, local, arrival_ms);
        }
    }

    /// Copy `pkt` to every sink the stream has. False when the recorder's copy was refused
    /// (the caller counts a `TapFull` drop); a refused interception copy is counted only on
    /// the interception queue ([`TapSender::refused`]), never in the engine's counters.
    #[inline]
    pub fn copy(
        &mut self,
        pkt: &[u8],
        src: SocketAddr,
        local: SocketAddr,
        arrival_ms: u64,
    ) -> bool {
        if let Some(tap) = self.intercept.as_mut() {
            tap.copy(pkt, src, local, arrival_ms);
        }
        match self.record.as_mut() {
            Some(tap) => tap.copy(pkt, src, local, arrival_ms),
            None => true,
        }
    }
}

/// One party of a call as the interception sink matches it against its targets
/// (rtpengine: a `call_monologue` with its tags, label and media endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterceptLeg {
    /// The party's SIP tag and further tags that answered for it (forks); empty when the
    /// party has not answered yet.
    pub tags: Vec<String>,
    pub label: Option<String>,
    /// The ng `metadata` the party's last offer/answer carried.
    pub metadata: Option<String>,
    /// Index of the leg this one exchanges media with.
    pub peer: Option<u16>,
    /// Where the party sends and receives media: SDP addresses and learned sources.
    pub addresses: Vec<SocketAddr>,
}

/// A call as the interception sink sees it, after every offer/answer and on re-evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptCall {
    pub call: CallKey,
    pub call_id: String,
    /// Index = leg index in the call (the `leg` of [`TapStream`]).
    pub legs: Vec<InterceptLeg>,
    /// `start forwarding` is on for the call: every stream is copied to the forwarding
    /// destination.
    pub forwarding: bool,
}

/// Legs whose streams are copied to the interception queue: bit `i` = leg `i`. Legs beyond
/// 63 are never copied.
pub type LegMask = u64;

/// Where the call registry asks which streams to copy for interception. Implemented by the
/// daemon's lawful-interception module; must not block (the registry lock is held) and must
/// not log anything about the call (interception is invisible).
pub trait InterceptSink: Send + Sync {
    /// Which legs' streams to copy now. Both directions of a target leg need the target's
    /// own streams and its peer's.
    fn update(&self, call: &InterceptCall) -> LegMask;
    /// The call is gone (deleted, timed out, shut down).
    fn ended(&self, call: CallKey);
    /// Whether `start forwarding` can be honoured (a forwarding destination is configured).
    fn forwarding_enabled(&self) -> bool {
        false
    }
}

/// Codec of one payload type as the party's SDP declared it (`a=rtpmap`/`a=fmtp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapCodec {
    pub pt: u8,
    pub name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub fmtp: Option<String>,
}

/// What a sink knows about one party of a recorded call (rtpengine: `call_monologue`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TapLeg {
    pub tag: String,
    pub label: Option<String>,
    /// Codecs per m= line, in SDP order.
    pub medias: Vec<Vec<TapCodec>>,
}

/// A call's description for a sink: refreshed on every offer/answer of a recorded call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TapCall {
    pub call_id: String,
    /// Index 0 is the caller (left channel), 1 the callee.
    pub legs: Vec<TapLeg>,
    /// The ng `metadata` value(s), most recent last.
    pub metadata: Vec<String>,
    /// `output-destination` from the ng request: a file name stem asked for by the proxy.
    pub output_destination: Option<String>,
}

/// Control-plane events for a recording sink, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingEvent {
    /// Start (or resume after a pause) recording `call`, or refresh its description while it
    /// records. `at_us` is Unix time in microseconds.
    Start {
        call: CallKey,
        info: TapCall,
        at_us: u64,
    },
    /// Keep the timeline running but write silence until the next `Start`.
    Pause { call: CallKey, at_us: u64 },
    /// Finalize the recording (stop recording, delete, timeout, shutdown).
    Stop { call: CallKey, at_us: u64 },
}

/// Where the call registry reports recording events. Implemented by `ngmedia-recordings`;
/// must not block (the registry lock is held).
pub trait RecordingSink: Send + Sync {
    fn event(&self, event: RecordingEvent);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn copies_queue_and_recycle_without_growing_the_pool() {
        let (tx, rx) = tap_queue(4);
        let stream = TapStream { leg: 1, media: 0 };
        let mut tap = StreamTap::new(CallKey(7), stream, &tx);
        let pkt = [0x80u8, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xfe];
        for _ in 0..100 {
            assert!(tap.copy(&pkt, addr(), addr(), 1234));
            let got = rx.try_recv().expect("queued");
            assert_eq!(got.bytes(), &pkt);
            assert_eq!(
                (got.call, got.stream, got.arrival_ms),
                (CallKey(7), stream, 1234)
            );
            let h = got.rtp().unwrap();
            assert_eq!((h.sequence_number(), h.timestamp(), h.ssrc()), (1, 160, 9));
            got.recycle();
        }
        assert_eq!(tap.allocated, 1, "steady state reuses one buffer");
    }

    #[test]
    fn full_queue_drops_and_keeps_the_buffer() {
        let (tx, rx) = tap_queue(2);
        let mut tap = StreamTap::new(CallKey(1), TapStream { leg: 0, media: 0 }, &tx);
        let pkt = [0x80u8; 20];
        assert!(tap.copy(&pkt, addr(), addr(), 0));
        assert!(tap.copy(&pkt, addr(), addr(), 0));
        assert!(!tap.copy(&pkt, addr(), addr(), 0), "queue full");
        assert_eq!(tap.allocated, 3);
        // The refused buffer went back to the pool: the next copy reuses it.
        rx.try_recv().unwrap().recycle();
        assert!(tap.copy(&pkt, addr(), addr(), 0));
        assert_eq!(tap.allocated, 3);
        assert!(!tap.copy(&[0u8; MAX_TAP_PACKET + 1], addr(), addr(), 0));
    }

    #[test]
    fn refused_copies_are_counted_on_the_queue() {
        let (rec_tx, _rec_rx) = tap_queue(8);
        let (li_tx, li_rx) = tap_queue(1);
        let stream = TapStream { leg: 0, media: 0 };
        let mut taps = StreamTaps {
            record: Some(StreamTap::new(CallKey(1), stream, &rec_tx)),
            intercept: Some(StreamTap::new(CallKey(1), stream, &li_tx)),
            rtcp: None,
        };
        let pkt = [0x80u8; 20];
        assert!(taps.copy(&pkt, addr(), addr(), 0));
        // The interception queue is full now; the recorder still gets its copy and the
        // refusal is counted on the interception queue only.
        assert!(taps.copy(&pkt, addr(), addr(), 0));
        assert_eq!((li_tx.refused(), rec_tx.refused()), (1, 0));
        assert_eq!(li_rx.try_recv().unwrap().bytes(), &pkt);
        let mut only_li = StreamTaps {
            record: None,
            intercept: taps.intercept.take(),
            rtcp: None,
        };
        assert!(
            only_li.copy(&pkt, addr(), addr(), 0),
            "no recorder: nothing to count"
        );
    }

    #[test]
    fn pool_is_bounded() {
        let (tx, _rx) = tap_queue(STREAM_POOL * 2);
        let mut tap = StreamTap::new(CallKey(1), TapStream { leg: 0, media: 0 }, &tx);
        for _ in 0..STREAM_POOL {
            assert!(tap.copy(&[0x80; 12], addr(), addr(), 0));
        }
        assert!(
            !tap.copy(&[0x80; 12], addr(), addr(), 0),
            "every buffer in flight"
        );
    }
}
