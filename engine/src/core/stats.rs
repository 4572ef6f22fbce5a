//! Per-stream counters shared between the media worker that owns a socket (single writer)
//! and the control plane that reports them (readers).
//!
//! The worker is the only writer, so counters are bumped with a relaxed load + store rather
//! than a locked read-modify-write: on x86 that is two plain moves per packet.

use crate::sync::lock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::dtls::DtlsKeys;
use super::quality::{Observed, QualityStats, MOS_BUCKETS};

/// Counters of one local socket facing one party (rtpengine's `packet_stream` stats).
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Packets received from the party (RTP, or RTCP on the RTCP stream).
    pub packets: AtomicU64,
    /// Bytes received, RTP header included (as rtpengine counts them).
    pub bytes: AtomicU64,
    /// Packets received but not relayed (bad source, malformed, no destination yet).
    pub errors: AtomicU64,
    /// RTCP packets received on this socket when it carries muxed RTCP.
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
    /// Unix time in milliseconds of the last packet received, 0 = never.
    pub last_packet_ms: AtomicU64,
    /// SSRC of the last RTP packet received.
    pub last_ssrc: AtomicU32,
    /// Set once a packet from the party fixed the return address (rtpengine `confirmed`).
    pub confirmed: AtomicBool,
    /// The kernel fast path forwards what the party sends right now (rtpengine's
    /// `kernelized`).
    pub offloaded: AtomicBool,
    /// Sequence, jitter, RTCP and MOS figures of what the party sends.
    pub quality: QualityStats,
    /// Where media for this party is sent; written only when the latch changes.
    endpoint: Mutex<Option<SocketAddr>>,
    /// SRTP position of the stream for persistence (`srtp::SrtpPosition`, packed): last
    /// packet authenticated from the party, last RTP and SRTCP packet protected towards it.
    pub srtp_in: AtomicU64,
    pub srtp_out: AtomicU64,
    pub srtcp_out: AtomicU64,
    /// Keys of the stream's finished DTLS-SRTP handshake, for persistence; written once
    /// per handshake.
    dtls_keys: Mutex<Option<DtlsKeys>>,
}

impl StreamStats {
    /// Count one received packet. Single writer: the worker that owns the socket.
    #[inline]
    pub fn count_rx(&self, len: usize, now_ms: u64) {
        bump(&self.packets, 1);
        bump(&self.bytes, len as u64);
        self.last_packet_ms.store(now_ms, Relaxed);
    }

    /// Count `packets` received packets of `bytes` in all, the last at `last_ms` (what the
    /// kernel fast path relayed since the last look).
    pub fn count_rx_many(&self, packets: u64, bytes: u64, last_ms: u64) {
        bump(&self.packets, packets);
        bump(&self.bytes, bytes);
        if last_ms > self.last_packet_ms.load(Relaxed) {
            self.last_packet_ms.store(last_ms, Relaxed);
        }
    }

    #[inline]
    pub fn count_rtcp_rx(&self, len: usize, now_ms: u64) {
        bump(&self.rtcp_packets, 1);
        bump(&self.rtcp_bytes, len as u64);
        self.last_packet_ms.store(now_ms, Relaxed);
    }

    #[inline]
    pub fn count_error(&self) {
        bump(&self.errors, 1);
    }

    /// Record the latched return address (called on latch changes only, never per packet).
    pub fn set_endpoint(&self, addr: Option<SocketAddr>) {
        *lock(&self.endpoint) = addr;
        self.confirmed.store(addr.is_some(), Relaxed);
    }

    /// Record the keys of a finished DTLS-SRTP handshake (never per packet).
    pub fn set_dtls_keys(&self, keys: Option<DtlsKeys>) {
        *lock(&self.dtls_keys) = keys;
    }

    pub fn dtls_keys(&self) -> Option<DtlsKeys> {
        lock(&self.dtls_keys).clone()
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        *lock(&self.endpoint)
    }

    /// Continue the counters of a stream taken over from stored state.
    pub fn restore(&self, counters: &StreamCounters, endpoint: Option<SocketAddr>) {
        self.packets.store(counters.packets, Relaxed);
        self.bytes.store(counters.bytes, Relaxed);
        self.errors.store(counters.errors, Relaxed);
        self.rtcp_packets.store(counters.rtcp_packets, Relaxed);
        self.rtcp_bytes.store(counters.rtcp_bytes, Relaxed);
        self.last_packet_ms.store(counters.last_packet_ms, Relaxed);
        self.set_endpoint(endpoint);
    }

    pub fn snapshot(&self) -> StreamCounters {
        StreamCounters {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rtcp_packets: self.rtcp_packets.load(Relaxed),
            rtcp_bytes: self.rtcp_bytes.load(Relaxed),
            last_packet_ms: self.last_packet_ms.load(Relaxed),
        }
    }
}

/// A copy of a stream's counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCounters {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    pub last_packet_ms: u64,
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Why the packet path dropped a packet: small and `Copy`, counted, never logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Source address does not match the latched one under `strict-source`.
    SourceMismatch = 0,
    /// Too short or not RTP/RTCP at all.
    Malformed = 1,
    /// The other side has no known address yet (no answer, no packet, `c=0.0.0.0`).
    NoDestination = 2,
    /// The kernel refused the send (buffer full, unreachable).
    SendFailed = 3,
    /// Arrived on a socket whose call is being torn down.
    NoStream = 4,
    /// SRTP/SRTCP authentication failed (wrong key, tampered packet, or plain RTP where
    /// SRTP was negotiated).
    SrtpAuth = 5,
    /// SRTP/SRTCP replay, or older than the replay window.
    SrtpReplay = 6,
    /// Any other SRTP failure: too short to carry a tag, no tail room, index exhausted.
    SrtpFailed = 7,
    /// STUN that is not an ICE check for us (no ICE on the stream, bad credentials or
    /// integrity, not a Binding request). Refused checks still get their error response.
    Stun = 8,
    /// Relayed, but the copy for a recording/tap sink was skipped: its queue or buffer pool
    /// was full (the sink is behind). The stream's error counter is not touched.
    TapFull = 9,
    /// DTLS: a record on a stream without DTLS, a failed handshake (bad fingerprint, alert,
    /// timeout), or media to or from a DTLS-SRTP party before its keys are established.
    Dtls = 10,
    /// RTCP that held only RFC 4585 feedback, on its way to a party without an AVPF
    /// profile (feedback inside a compound with other reports is removed, the rest goes on).
    RtcpFeedback = 11,
}

impl DropReason {
    pub const ALL: [DropReason; 12] = [
        DropReason::SourceMismatch,
        DropReason::Malformed,
        DropReason::NoDestination,
        DropReason::SendFailed,
        DropReason::NoStream,
        DropReason::SrtpAuth,
        DropReason::SrtpReplay,
        DropReason::SrtpFailed,
        DropReason::Stun,
        DropReason::TapFull,
        DropReason::Dtls,
        DropReason::RtcpFeedback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::SourceMismatch => "source_mismatch",
            DropReason::Malformed => "malformed",
            DropReason::NoDestination => "no_destination",
            DropReason::SendFailed => "send_failed",
            DropReason::NoStream => "no_stream",
            DropReason::SrtpAuth => "srtp_auth",
            DropReason::SrtpReplay => "srtp_replay",
            DropReason::SrtpFailed => "srtp_failed",
            DropReason::Stun => "stun",
            DropReason::TapFull => "tap_full",
            DropReason::Dtls => "dtls",
            DropReason::RtcpFeedback => "rtcp_feedback",
        }
    }

    /// The drop reason for an SRTP error.
    pub fn from_srtp(e: crate::core::srtp::SrtpError) -> DropReason {
        use crate::core::srtp::SrtpError;
        match e {
            SrtpError::AuthFailed => DropReason::SrtpAuth,
            SrtpError::Replay | SrtpError::TooOld => DropReason::SrtpReplay,
            _ => DropReason::SrtpFailed,
        }
    }
}

/// Engine-wide packet counters, one instance per media worker (no shared cache line on the
/// packet path); readers sum them.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    pub rtp_packets: AtomicU64,
    pub rtp_bytes: AtomicU64,
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
    /// Datagrams of opaque streams (UDPTL, unknown UDP protocols) received.
    pub opaque_packets: AtomicU64,
    pub opaque_bytes: AtomicU64,
    pub relayed_packets: AtomicU64,
    pub drops: [AtomicU64; DropReason::ALL.len()],
    /// RTP sequence numbers skipped when a gap was seen (late arrivals are not subtracted:
    /// a counter only goes up; see `rtp_reordered`).
    pub rtp_lost: AtomicU64,
    pub rtp_duplicates: AtomicU64,
    pub rtp_reordered: AtomicU64,
    /// MOS samples per bucket of `MOS_BUCKETS` (not cumulative), plus one above the last.
    pub mos_buckets: [AtomicU64; MOS_BUCKETS.len() + 1],
    /// Sum of the MOS samples × 100.
    pub mos_sum: AtomicU64,
    /// Nanoseconds the worker spent working: from each wake-up to its next wait (loop
    /// utilisation = busy time / wall time).
    pub busy_ns: AtomicU64,
    /// Wake-ups of the worker's IO loop.
    pub wakeups: AtomicU64,
    /// Media players sending on this worker right now (a gauge, set by the worker).
    pub players: AtomicU64,
    /// RTP packets the kernel fast path relayed for this worker's streams (also counted in
    /// `rtp_packets` and `relayed_packets`).
    pub fast_packets: AtomicU64,
    /// Kernel fast-path entries of this worker's streams right now (a gauge).
    pub fast_entries: AtomicU64,
}

impl WorkerCounters {
    /// Account one pass of the IO loop that woke at `woke` (called just before waiting again).
    #[inline]
    pub fn count_busy(&self, woke: std::time::Instant) {
        bump(&self.busy_ns, woke.elapsed().as_nanos() as u64);
        bump(&self.wakeups, 1);
    }

    /// Add what one RTP packet showed about its stream.
    #[inline]
    pub fn count_quality(&self, o: Observed) {
        if o.gap > 0 {
            bump(&self.rtp_lost, o.gap);
        }
        if o.duplicate {
            bump(&self.rtp_duplicates, 1);
        }
        if o.reordered {
            bump(&self.rtp_reordered, 1);
        }
    }

    /// Add one MOS sample (× 100) to the histogram.
    pub fn count_mos(&self, mos_x100: u32) {
        let i = MOS_BUCKETS
            .iter()
            .position(|b| mos_x100 <= *b)
            .unwrap_or(MOS_BUCKETS.len());
        bump(&self.mos_buckets[i], 1);
        bump(&self.mos_sum, u64::from(mos_x100));
    }

    /// `(lost, duplicates, reordered)`.
    pub fn quality_totals(&self) -> (u64, u64, u64) {
        (
            self.rtp_lost.load(Relaxed),
            self.rtp_duplicates.load(Relaxed),
            self.rtp_reordered.load(Relaxed),
        )
    }

    /// `(per-bucket counts, sample count, sum × 100)`.
    pub fn mos_histogram(&self) -> ([u64; MOS_BUCKETS.len() + 1], u64, u64) {
        let buckets = std::array::from_fn(|i| self.mos_buckets[i].load(Relaxed));
        (buckets, buckets.iter().sum(), self.mos_sum.load(Relaxed))
    }

    #[inline]
    pub fn count_rtp(&self, len: usize) {
        bump(&self.rtp_packets, 1);
        bump(&self.rtp_bytes, len as u64);
    }

    /// Count `packets` RTP packets of `bytes` in all, relayed by the kernel fast path.
    pub fn count_rtp_many(&self, packets: u64, bytes: u64) {
        bump(&self.rtp_packets, packets);
        bump(&self.rtp_bytes, bytes);
        bump(&self.relayed_packets, packets);
        bump(&self.fast_packets, packets);
    }

    #[inline]
    pub fn count_rtcp(&self, len: usize) {
        bump(&self.rtcp_packets, 1);
        bump(&self.rtcp_bytes, len as u64);
    }

    #[inline]
    pub fn count_opaque(&self, len: usize) {
        bump(&self.opaque_packets, 1);
        bump(&self.opaque_bytes, len as u64);
    }

    #[inline]
    pub fn count_relayed(&self, n: u64) {
        bump(&self.relayed_packets, n);
    }

    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        bump(&self.drops[reason as usize], 1);
    }
}

/// Sum of all workers' counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PacketTotals {
    pub rtp_packets: u64,
    pub rtp_bytes: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    /// Datagrams of opaque streams (UDPTL, unknown UDP protocols) received.
    pub opaque_packets: u64,
    pub opaque_bytes: u64,
    pub relayed_packets: u64,
    pub drops: [u64; DropReason::ALL.len()],
    pub rtp_lost: u64,
    pub rtp_duplicates: u64,
    pub rtp_reordered: u64,
    /// MOS samples per bucket of `quality::MOS_BUCKETS` (not cumulative), plus one above.
    pub mos_buckets: [u64; MOS_BUCKETS.len() + 1],
    /// Sum of the MOS samples × 100.
    pub mos_sum: u64,
    /// Media players sending right now (music on hold, `play media`).
    pub players_active: u64,
    /// RTP packets relayed by the kernel fast path.
    pub fast_path_packets: u64,
    /// Kernel fast-path entries in use.
    pub fast_path_entries: u64,
    /// Of `fast_path_packets`, those forwarded at XDP (in the driver) rather than at TC.
    pub fast_path_xdp_packets: u64,
}

impl PacketTotals {
    pub fn add(&mut self, c: &WorkerCounters) {
        self.rtp_packets += c.rtp_packets.load(Relaxed);
        self.rtp_bytes += c.rtp_bytes.load(Relaxed);
        self.rtcp_packets += c.rtcp_packets.load(Relaxed);
        self.rtcp_bytes += c.rtcp_bytes.load(Relaxed);
        self.opaque_packets += c.opaque_packets.load(Relaxed);
        self.opaque_bytes += c.opaque_bytes.load(Relaxed);
        self.relayed_packets += c.relayed_packets.load(Relaxed);
        for (d, s) in self.drops.iter_mut().zip(c.drops.iter()) {
            *d += s.load(Relaxed);
        }
        let (lost, dups, reordered) = c.quality_totals();
        self.rtp_lost += lost;
        self.rtp_duplicates += dups;
        self.rtp_reordered += reordered;
        let (buckets, _, sum) = c.mos_histogram();
        for (t, b) in self.mos_buckets.iter_mut().zip(buckets) {
            *t += b;
        }
        self.mos_sum += sum;
        self.players_active += c.players.load(Relaxed);
        self.fast_path_packets += c.fast_packets.load(Relaxed);
        self.fast_path_entries += c.fast_entries.load(Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_index_their_counters() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{}", r.as_str());
        }
        use crate::core::srtp::SrtpError;
        assert_eq!(
            DropReason::from_srtp(SrtpError::AuthFailed).as_str(),
            "srtp_auth"
        );
        assert_eq!(
            DropReason::from_srtp(SrtpError::TooOld),
            DropReason::SrtpReplay
        );
        assert_eq!(
            DropReason::from_srtp(SrtpError::NoTailRoom),
            DropReason::SrtpFailed
        );
    }

    #[test]
    fn counts_and_snapshots() {
        let s = StreamStats::default();
        s.count_rx(172, 5);
        s.count_rx(172, 9);
        s.count_error();
        let c = s.snapshot();
        assert_eq!(
            (c.packets, c.bytes, c.errors, c.last_packet_ms),
            (2, 344, 1, 9)
        );
        assert_eq!(s.endpoint(), None);
        s.set_endpoint(Some("127.0.0.2:4000".parse().unwrap()));
        assert!(s.confirmed.load(Relaxed));
    }
}
