//! Call quality of one received stream: RTP sequence and jitter statistics (RFC 3550 A.1,
//! A.3, A.8), what the parties say in RTCP SR/RR/XR, and a MOS estimate (rtpengine's
//! `ssrc_ctx` / `ssrc_stats_block` and `mos_calc`).
//!
//! [`QualityStats`] lives next to [`super::stats::StreamStats`] and follows the same rule:
//! the media worker that owns the socket is the only writer of the packet-path fields, so
//! each update is a relaxed load and store, O(1), without allocation or locks. The control
//! plane only reads them, except for the few "configuration" fields it writes itself
//! (codec, clock rate, the RTT hint), which the worker only reads.
//!
//! Time comes in from the caller (sans-IO): a monotonic microsecond reading for jitter and
//! RTT, and the wall clock in milliseconds for "reported at".
//!
//! # MOS estimate: a simplified ITU-T G.107 E-model
//!
//! ```text
//! R   = R0 − Id(d) − Ie_eff(Ppl, codec)          R0 = 93.2 (default Ro − Is)
//! d   = RTT/2 + 2·J + 20 ms                      one-way delay: half the round trip, a
//!                                                jitter buffer of twice the jitter, and
//!                                                one 20 ms frame of packetisation
//! Id  = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)   (Cole & Rosenbluth's fit of G.107 Id)
//! Ie_eff = Ie + (95 − Ie) · Ppl / (Ppl + Bpl)     (G.107 with BurstR = 1, random loss)
//! MOS = 1                                         R ≤ 0
//!     = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R) 0 < R < 100
//!     = 4.5                                       R ≥ 100
//! ```
//! `Ppl` is the loss in percent over the sample interval, `J` the RFC 3550 interarrival
//! jitter in ms, `RTT` the round trip from RTCP (0 when unknown). `Ie`/`Bpl` per codec come
//! from ITU-T G.113 Appendix I: G.711 with packet loss concealment Ie 0, Bpl 25.1; G.729A
//! Ie 11, Bpl 19; codecs G.113 does not list (Opus, G.722, …) use the G.711 values. Echo,
//! noise and the advantage factor are ignored. A clean G.711 stream scores 4.40; 10 %
//! random loss scores 3.39.
//!
//! MOS samples are taken every [`SAMPLE_INTERVAL_MS`] of received media from the loss in
//! that interval, like rtpengine samples on every RTCP report; `query` reports their average,
//! lowest and highest. RTT needs the other side's SR, which arrives on another stream: the
//! control plane matches SR and RR observations ([`round_trip_us`]) and hands the result
//! back through [`QualityStats::set_rtt_hint`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use super::stats::WorkerCounters;
use super::transcode::Reception;

/// Clock rate assumed when the codec does not say (static payload types are 8 kHz audio).
pub const DEFAULT_CLOCK_RATE: u32 = 8000;
/// RFC 3550 A.1: a jump forward of more than this many sequence numbers is a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a packet this far behind the highest seen is a restart, not a late one.
const MAX_MISORDER: u16 = 100;
/// One MOS sample per this much received media: at 20 ms packetisation 100 packets, so the
/// loss of an interval has 1 % resolution, and calls of a few seconds already get samples.
pub const SAMPLE_INTERVAL_MS: u64 = 2000;
/// Upper bounds of the MOS histogram buckets (MOS × 100), for `/metrics`.
pub const MOS_BUCKETS: [u32; 8] = [100, 200, 300, 350, 400, 420, 440, 450];
/// SR observations kept per stream: receivers often answer the SR before the latest one.
const SR_RING: usize = 4;

/// Codec impairment for the E-model (ITU-T G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor Ie.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl.
    pub bpl: f64,
}

impl CodecImpairment {
    pub const G711: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };
    pub const G729: CodecImpairment = CodecImpairment {
        ie: 11.0,
        bpl: 19.0,
    };

    /// By encoding name (`PCMU`, `G729`, …), case-insensitive.
    pub fn for_codec(name: &str) -> CodecImpairment {
        if name.eq_ignore_ascii_case("G729") || name.eq_ignore_ascii_case("G729a") {
            CodecImpairment::G729
        } else {
            CodecImpairment::G711
        }
    }
}

/// The E-model rating factor R for `loss_pct` percent random loss, `jitter_ms` interarrival
/// jitter and `rtt_ms` round-trip time (see the module docs).
pub fn r_factor(loss_pct: f64, jitter_ms: f64, rtt_ms: f64, codec: CodecImpairment) -> f64 {
    let loss = loss_pct.clamp(0.0, 100.0);
    let d = rtt_ms.max(0.0) / 2.0 + 2.0 * jitter_ms.max(0.0) + 20.0;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = codec.ie + (95.0 - codec.ie) * loss / (loss + codec.bpl);
    93.2 - id - ie_eff
}

/// MOS-CQE from the rating factor (ITU-T G.107 Annex B).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// MOS estimate, see the module docs.
pub fn mos(loss_pct: f64, jitter_ms: f64, rtt_ms: f64, codec: CodecImpairment) -> f64 {
    mos_from_r(r_factor(loss_pct, jitter_ms, rtt_ms, codec))
}

/// Clock rate from an SDP codec string (`PCMU/8000`, `opus/48000/2`); the default when
/// absent or unreadable.
pub fn clock_rate_of(codec: Option<&str>) -> u32 {
    codec
        .and_then(|c| c.split('/').nth(1))
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_CLOCK_RATE)
}

/// Our monotonic clock in NTP short format (RFC 3550 §4: 16.16 fixed-point seconds, wraps
/// every 18 h), so SR arrival, RR arrival and DLSR subtract in one unit.
#[inline]
fn ntp_short(mono_us: u64) -> u32 {
    let secs = mono_us / 1_000_000;
    let frac = ((mono_us % 1_000_000) << 16) / 1_000_000;
    ((secs << 16) | frac) as u32
}

/// Round trip between us and the party that sent an RR (RFC 3550 §6.4.1): the RR arrived at
/// `rr_at` (NTP short, our clock) saying the party held our relayed SR `lsr` for `dlsr`;
/// `srs` are `(lsr, arrival)` pairs of SRs we relayed to it. Microseconds, `None` when the
/// SR is unknown or the result is not plausible (negative, over 60 s).
pub fn round_trip_us(
    rr_lsr: u32,
    rr_dlsr: u32,
    rr_at: u32,
    srs: impl IntoIterator<Item = (u32, u32)>,
) -> Option<u32> {
    if rr_lsr == 0 {
        return None;
    }
    let (_, sr_at) = srs.into_iter().find(|(lsr, _)| *lsr == rr_lsr)?;
    let rtt = rr_at.wrapping_sub(sr_at).wrapping_sub(rr_dlsr);
    // Above 60 s it is a wrapped negative value or a stale match.
    if rtt > 60 << 16 {
        return None;
    }
    Some(((u64::from(rtt) * 1_000_000) >> 16) as u32)
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

/// One MOS sample's figures, stored field by field so readers need no lock.
#[derive(Debug, Default)]
struct SampleCell {
    /// MOS × 100; 0 = no sample yet.
    mos: AtomicU32,
    /// Loss in the interval, percent × 100.
    loss: AtomicU32,
    jitter_us: AtomicU32,
    rtt_us: AtomicU32,
    /// Unix seconds.
    at: AtomicU64,
}

impl SampleCell {
    fn store(&self, s: &MosSample) {
        self.mos.store(s.mos_x100, Relaxed);
        self.loss.store(s.loss_x100, Relaxed);
        self.jitter_us.store(s.jitter_us, Relaxed);
        self.rtt_us.store(s.rtt_us, Relaxed);
        self.at.store(s.reported_at, Relaxed);
    }

    fn load(&self) -> Option<MosSample> {
        let mos = self.mos.load(Relaxed);
        (mos != 0).then(|| MosSample {
            mos_x100: mos,
            loss_x100: self.loss.load(Relaxed),
            jitter_us: self.jitter_us.load(Relaxed),
            rtt_us: self.rtt_us.load(Relaxed),
            reported_at: self.at.load(Relaxed),
        })
    }
}

/// Quality counters of the media received on one socket (rtpengine's `ssrc_ctx` of the
/// sender's SSRC plus its `ssrc_stats_block` list, reduced to average/lowest/highest).
#[derive(Debug, Default)]
pub struct QualityStats {
    // Written by the control plane, read by the worker.
    clock_rate: AtomicU32,
    /// `CodecImpairment::G729` when set; G.711 values otherwise.
    codec_g729: AtomicBool,
    rtt_hint_us: AtomicU32,

    // RFC 3550 A.1 sequence state of the current SSRC.
    started: AtomicBool,
    ssrc: AtomicU32,
    base_seq: AtomicU32,
    max_seq: AtomicU32,
    /// Sequence number wraps, shifted left by 16 (RFC 3550 `cycles`).
    cycles: AtomicU64,
    /// Candidate restart point after a big jump; above `u16::MAX` = none.
    bad_seq: AtomicU32,
    /// Bit i set: sequence number `max_seq - i` was received (duplicate detection).
    window: AtomicU64,
    /// Distinct packets received (duplicates are counted apart).
    received: AtomicU64,
    duplicates: AtomicU64,
    /// Packets that arrived after a higher sequence number (late, not duplicate).
    reordered: AtomicU64,
    /// Expected and received of earlier SSRCs and sequence restarts, folded in.
    prior_expected: AtomicU64,
    prior_received: AtomicU64,

    // RFC 3550 A.8 jitter.
    have_transit: AtomicBool,
    transit: AtomicU32,
    /// Interarrival jitter in timestamp units × 16 (A.8's scaled form).
    jitter_x16: AtomicU32,

    // MOS sampling.
    interval_start_ms: AtomicU64,
    interval_expected: AtomicU64,
    interval_received: AtomicU64,
    samples: AtomicU64,
    sum_mos: AtomicU64,
    sum_loss: AtomicU64,
    sum_jitter_us: AtomicU64,
    sum_rtt_us: AtomicU64,
    lowest: SampleCell,
    highest: SampleCell,

    // RTCP from the party.
    sr_count: AtomicU64,
    rr_count: AtomicU64,
    xr_count: AtomicU64,
    /// `(middle 32 bits of the SR's NTP time) << 32 | arrival in NTP short`, a ring.
    srs: [AtomicU64; SR_RING],
    sr_next: AtomicU8,
    /// First report block of the latest SR/RR: what the party says about what it receives.
    rr_seen: AtomicBool,
    rr_ssrc: AtomicU32,
    rr_fraction: AtomicU8,
    rr_cum_lost: AtomicU32,
    rr_jitter: AtomicU32,
    rr_lsr: AtomicU32,
    rr_dlsr: AtomicU32,
    rr_at: AtomicU32,
    /// XR VoIP metrics (RFC 3611 §4.7) of the latest XR: loss rate /256, RTT ms, MOS-CQ × 10.
    xr_voip: AtomicBool,
    xr_loss: AtomicU8,
    xr_rtt_ms: AtomicU32,
    xr_mos_cq: AtomicU8,
}

/// What one packet did to the stream, for the worker's engine-wide counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Sequence numbers skipped by this packet (counted when the gap is seen).
    pub gap: u64,
    pub duplicate: bool,
    pub reordered: bool,
}

impl QualityStats {
    /// Set by the control plane whenever the negotiated codec may have changed.
    pub fn configure(&self, codec: Option<&str>) {
        self.clock_rate.store(clock_rate_of(codec), Relaxed);
        let name = codec.and_then(|c| c.split('/').next()).unwrap_or("");
        self.codec_g729.store(
            CodecImpairment::for_codec(name) == CodecImpairment::G729,
            Relaxed,
        );
    }

    /// Latest round trip the control plane worked out for this stream (µs).
    pub fn set_rtt_hint(&self, rtt_us: u32) {
        self.rtt_hint_us.store(rtt_us, Relaxed);
    }

    fn codec(&self) -> CodecImpairment {
        if self.codec_g729.load(Relaxed) {
            CodecImpairment::G729
        } else {
            CodecImpairment::G711
        }
    }

    fn clock_rate(&self) -> u32 {
        match self.clock_rate.load(Relaxed) {
            0 => DEFAULT_CLOCK_RATE,
            r => r,
        }
    }

    /// The packet path's single entry point: record one accepted RTP (`rtp`) or RTCP packet
    /// and add what it showed to the worker's counters. `pkt` has passed `classify` (and, for
    /// RTP, `RtpHeader::parse`) and is plain: SRTP/SRTCP already unprotected.
    #[inline]
    pub fn record(
        &self,
        counters: &WorkerCounters,
        pkt: &[u8],
        rtp: bool,
        mono_us: u64,
        wall_ms: u64,
    ) {
        if rtp {
            if pkt.len() >= 12 {
                let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
                let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
                let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
                let o = self.on_rtp(ssrc, seq, ts, mono_us, wall_ms, counters);
                counters.count_quality(o);
            }
        } else {
            self.on_rtcp(pkt, mono_us);
        }
    }

    /// RFC 3550 A.1 `update_seq` (without probation: a relay counts from the first packet)
    /// plus duplicate detection over the last 64 sequence numbers, A.8 jitter and MOS
    /// sampling.
    pub fn on_rtp(
        &self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        mono_us: u64,
        wall_ms: u64,
        counters: &WorkerCounters,
    ) -> Observed {
        let mut o = Observed::default();
        if !self.started.load(Relaxed) || self.ssrc.load(Relaxed) != ssrc {
            if self.started.load(Relaxed) {
                self.fold_current();
            }
            self.ssrc.store(ssrc, Relaxed);
            self.restart(seq);
            self.started.store(true, Relaxed);
            self.have_transit.store(false, Relaxed);
        } else {
            let max = self.max_seq.load(Relaxed) as u16;
            let delta = seq.wrapping_sub(max);
            if delta == 0 {
                o.duplicate = true;
            } else if delta < MAX_DROPOUT {
                // In order, possibly with a gap.
                if seq < max {
                    bump(&self.cycles, 1 << 16);
                }
                o.gap = u64::from(delta - 1);
                let w = self.window.load(Relaxed);
                let w = if delta >= 64 { 0 } else { w << delta };
                self.window.store(w | 1, Relaxed);
                self.max_seq.store(u32::from(seq), Relaxed);
                self.bad_seq.store(u32::MAX, Relaxed);
            } else if delta <= u16::MAX - MAX_MISORDER {
                // A big jump: restart once two packets agree on the new place.
                if u32::from(seq) == self.bad_seq.load(Relaxed) {
                    self.fold_current();
                    self.restart(seq);
                    self.have_transit.store(false, Relaxed);
                } else {
                    self.bad_seq.store(u32::from(seq.wrapping_add(1)), Relaxed);
                    return o;
                }
            } else {
                // Late: behind max by at most MAX_MISORDER.
                let behind = max.wrapping_sub(seq);
                let w = self.window.load(Relaxed);
                if behind < 64 && w & (1 << behind) != 0 {
                    o.duplicate = true;
                } else {
                    if behind < 64 {
                        self.window.store(w | (1 << behind), Relaxed);
                    }
                    o.reordered = true;
                }
            }
        }
        if o.duplicate {
            bump(&self.duplicates, 1);
            return o;
        }
        if o.reordered {
            bump(&self.reordered, 1);
        }
        bump(&self.received, 1);
        self.update_jitter(ts, mono_us);
        self.sample(mono_us, wall_ms, counters);
        o
    }

    /// RTP of `ssrc` the kernel fast path relayed since the last call: `received` packets,
    /// the highest sequence number now `max_seq`, `advance` ahead of where the previous call
    /// (or this stream's last packet in user space, when `advance` is `None`) left it.
    /// Loss is what the sequence advanced beyond the packets received; jitter is not
    /// measured there (the party's RTCP reports still arrive here).
    #[allow(clippy::too_many_arguments)]
    pub fn on_offloaded(
        &self,
        ssrc: u32,
        max_seq: u16,
        advance: Option<u32>,
        received: u64,
        mono_us: u64,
        wall_ms: u64,
        counters: &WorkerCounters,
    ) -> Observed {
        let mut o = Observed::default();
        if received == 0 {
            return o;
        }
        let advance = if !self.started.load(Relaxed) || self.ssrc.load(Relaxed) != ssrc {
            if self.started.load(Relaxed) {
                self.fold_current();
            }
            self.ssrc.store(ssrc, Relaxed);
            let first = max_seq.wrapping_sub((received - 1).min(u64::from(u16::MAX)) as u16);
            self.restart(first);
            self.started.store(true, Relaxed);
            self.have_transit.store(false, Relaxed);
            u32::from(max_seq.wrapping_sub(first))
        } else {
            match advance {
                Some(a) => a,
                None => {
                    let d = max_seq.wrapping_sub(self.max_seq.load(Relaxed) as u16);
                    if d < MAX_DROPOUT {
                        u32::from(d)
                    } else {
                        0
                    }
                }
            }
        };
        let max = self.max_seq.load(Relaxed);
        let next = u64::from(max) + u64::from(advance);
        bump(&self.cycles, (next >> 16) << 16);
        self.max_seq.store((next & 0xffff) as u32, Relaxed);
        self.window.store(1, Relaxed);
        self.bad_seq.store(u32::MAX, Relaxed);
        bump(&self.received, received);
        o.gap = u64::from(advance).saturating_sub(received);
        self.sample(mono_us, wall_ms, counters);
        o
    }

    fn restart(&self, seq: u16) {
        self.base_seq.store(u32::from(seq), Relaxed);
        self.max_seq.store(u32::from(seq), Relaxed);
        self.cycles.store(0, Relaxed);
        self.bad_seq.store(u32::MAX, Relaxed);
        self.window.store(1, Relaxed);
    }

    /// Move the current sequence run's expected/received into the prior totals.
    fn fold_current(&self) {
        let (expected, received) = self.current_run();
        bump(&self.prior_expected, expected);
        bump(&self.prior_received, received);
        self.received.store(0, Relaxed);
    }

    /// RFC 3550 A.3: expected and received of the current sequence run.
    fn current_run(&self) -> (u64, u64) {
        if !self.started.load(Relaxed) {
            return (0, 0);
        }
        let extended_max = self.cycles.load(Relaxed) + u64::from(self.max_seq.load(Relaxed));
        let expected = (extended_max + 1).saturating_sub(u64::from(self.base_seq.load(Relaxed)));
        (expected, self.received.load(Relaxed))
    }

    /// Expected and received over the stream's whole life.
    fn totals(&self) -> (u64, u64) {
        let (e, r) = self.current_run();
        (
            e + self.prior_expected.load(Relaxed),
            r + self.prior_received.load(Relaxed),
        )
    }

    /// RFC 3550 A.8, with arrival time converted to the stream's timestamp units.
    fn update_jitter(&self, ts: u32, mono_us: u64) {
        let arrival = (u128::from(mono_us) * u128::from(self.clock_rate()) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(ts);
        if self.have_transit.load(Relaxed) {
            let d = (transit.wrapping_sub(self.transit.load(Relaxed)) as i32).unsigned_abs();
            let j = self.jitter_x16.load(Relaxed);
            // J += (|D| - J) / 16, in the scaled form: J16 += |D| - (J16 + 8) / 16.
            let j = j
                .wrapping_add(d.min(u32::MAX >> 5))
                .wrapping_sub((j + 8) >> 4);
            self.jitter_x16.store(j, Relaxed);
        }
        self.transit.store(transit, Relaxed);
        self.have_transit.store(true, Relaxed);
    }

    /// Current interarrival jitter in microseconds.
    fn jitter_us(&self) -> u32 {
        let units = u64::from(self.jitter_x16.load(Relaxed) >> 4);
        (units * 1_000_000 / u64::from(self.clock_rate())).min(u64::from(u32::MAX)) as u32
    }

    /// Close the MOS interval when it is over.
    fn sample(&self, mono_us: u64, wall_ms: u64, counters: &WorkerCounters) {
        let now_ms = mono_us / 1000;
        let start = self.interval_start_ms.load(Relaxed);
        let (expected, received) = self.totals();
        if start == 0 {
            self.interval_start_ms.store(now_ms.max(1), Relaxed);
            // The interval includes this first packet.
            self.interval_expected
                .store(expected.saturating_sub(1), Relaxed);
            self.interval_received
                .store(received.saturating_sub(1), Relaxed);
            return;
        }
        if now_ms.saturating_sub(start) < SAMPLE_INTERVAL_MS {
            return;
        }
        let exp = expected.saturating_sub(self.interval_expected.load(Relaxed));
        let rec = received.saturating_sub(self.interval_received.load(Relaxed));
        self.interval_start_ms.store(now_ms.max(1), Relaxed);
        self.interval_expected.store(expected, Relaxed);
        self.interval_received.store(received, Relaxed);
        let s = self.make_sample(exp, rec, wall_ms / 1000);
        self.add_sample(&s);
        counters.count_mos(s.mos_x100);
    }

    fn make_sample(&self, expected: u64, received: u64, reported_at: u64) -> MosSample {
        let loss = if expected == 0 {
            0.0
        } else {
            expected.saturating_sub(received) as f64 * 100.0 / expected as f64
        };
        let jitter_us = self.jitter_us();
        let rtt_us = self.rtt_hint_us.load(Relaxed);
        let m = mos(
            loss,
            f64::from(jitter_us) / 1000.0,
            f64::from(rtt_us) / 1000.0,
            self.codec(),
        );
        MosSample {
            mos_x100: ((m * 100.0).round() as u32).clamp(100, 450),
            loss_x100: (loss * 100.0).round() as u32,
            jitter_us,
            rtt_us,
            reported_at,
        }
    }

    fn add_sample(&self, s: &MosSample) {
        bump(&self.samples, 1);
        bump(&self.sum_mos, u64::from(s.mos_x100));
        bump(&self.sum_loss, u64::from(s.loss_x100));
        bump(&self.sum_jitter_us, u64::from(s.jitter_us));
        bump(&self.sum_rtt_us, u64::from(s.rtt_us));
        match self.lowest.load() {
            Some(l) if l.mos_x100 <= s.mos_x100 => {}
            _ => self.lowest.store(s),
        }
        match self.highest.load() {
            Some(h) if h.mos_x100 >= s.mos_x100 => {}
            _ => self.highest.store(s),
        }
    }

    /// Walk an RTCP compound packet (RFC 3550 §6.1) and keep what SR, RR and XR say.
    pub fn on_rtcp(&self, pkt: &[u8], mono_us: u64) {
        let at = ntp_short(mono_us);
        let mut off = 0;
        // A compound of 8-byte packets in a 64 KiB datagram is at most 8192 packets.
        while let Some(hdr) = pkt.get(off..off + 8) {
            if hdr[0] >> 6 != 2 {
                return;
            }
            let len = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
            let Some(body) = pkt.get(off..off + len) else {
                return;
            };
            let count = usize::from(hdr[0] & 0x1f);
            match hdr[1] {
                200 if body.len() >= 28 => {
                    bump(&self.sr_count, 1);
                    let mid = u32::from_be_bytes([body[10], body[11], body[12], body[13]]);
                    let i = usize::from(self.sr_next.load(Relaxed)) % SR_RING;
                    self.srs[i].store(u64::from(mid) << 32 | u64::from(at), Relaxed);
                    self.sr_next.store(((i + 1) % SR_RING) as u8, Relaxed);
                    if count > 0 {
                        self.report_block(body.get(28..52), at);
                    }
                }
                201 => {
                    bump(&self.rr_count, 1);
                    if count > 0 {
                        self.report_block(body.get(8..32), at);
                    }
                }
                207 => {
                    bump(&self.xr_count, 1);
                    self.xr(body.get(8..).unwrap_or_default());
                }
                _ => {}
            }
            off += len;
        }
    }

    fn report_block(&self, block: Option<&[u8]>, at: u32) {
        let Some(b) = block else { return };
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        self.rr_ssrc.store(word(0), Relaxed);
        self.rr_fraction.store(b[4], Relaxed);
        self.rr_cum_lost.store(word(4) & 0x00ff_ffff, Relaxed);
        self.rr_jitter.store(word(12), Relaxed);
        self.rr_lsr.store(word(16), Relaxed);
        self.rr_dlsr.store(word(20), Relaxed);
        self.rr_at.store(at, Relaxed);
        self.rr_seen.store(true, Relaxed);
    }

    /// RFC 3611 report blocks; only VoIP Metrics (BT 7) is kept.
    fn xr(&self, mut blocks: &[u8]) {
        while blocks.len() >= 4 {
            let len = 4 + 4 * usize::from(u16::from_be_bytes([blocks[2], blocks[3]]));
            let Some(block) = blocks.get(..len) else {
                return;
            };
            if block[0] == 7 && block.len() >= 36 {
                let v = &block[4..];
                self.xr_loss.store(v[4], Relaxed);
                self.xr_rtt_ms
                    .store(u32::from(u16::from_be_bytes([v[12], v[13]])), Relaxed);
                self.xr_mos_cq.store(v[23], Relaxed);
                self.xr_voip.store(true, Relaxed);
            }
            blocks = &blocks[len..];
        }
    }

    /// What an RTCP report block says about the RTP received here (RFC 3550 §6.4.1), with
    /// the LSR and DLSR of the latest SR that arrived on `rtcp` (the stats of the socket the
    /// party's RTCP comes to; this one under rtcp-mux). `None` before the first packet.
    /// The fraction lost is over the stream's life: these reports are not periodic enough
    /// to keep an interval.
    pub fn reception(&self, rtcp: &QualityStats, mono_us: u64) -> Option<Reception> {
        if !self.started.load(Relaxed) {
            return None;
        }
        let (expected, received) = self.totals();
        let lost = expected as i64 - received as i64;
        let fraction_lost = if expected == 0 || lost <= 0 {
            0
        } else {
            ((lost << 8) / expected as i64).min(255) as u8
        };
        let extended_highest_seq =
            (self.cycles.load(Relaxed) + u64::from(self.max_seq.load(Relaxed))) as u32;
        let (lsr, dlsr) = if rtcp.sr_count.load(Relaxed) == 0 {
            (0, 0)
        } else {
            let last = (usize::from(rtcp.sr_next.load(Relaxed)) + SR_RING - 1) % SR_RING;
            let v = rtcp.srs[last].load(Relaxed);
            ((v >> 32) as u32, ntp_short(mono_us).wrapping_sub(v as u32))
        };
        Some(Reception {
            ssrc: self.ssrc.load(Relaxed),
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq,
            jitter: self.jitter_x16.load(Relaxed) >> 4,
            lsr,
            dlsr,
        })
    }

    /// `(lsr, arrival)` of the SRs seen most recently, for [`round_trip_us`].
    pub fn sr_observations(&self) -> [(u32, u32); SR_RING] {
        let mut out = [(0, 0); SR_RING];
        for (o, s) in out.iter_mut().zip(&self.srs) {
            let v = s.load(Relaxed);
            *o = ((v >> 32) as u32, v as u32);
        }
        out
    }

    /// The latest report block's `(lsr, dlsr, arrival)`, if any.
    pub fn rr_timing(&self) -> Option<(u32, u32, u32)> {
        self.rr_seen.load(Relaxed).then(|| {
            (
                self.rr_lsr.load(Relaxed),
                self.rr_dlsr.load(Relaxed),
                self.rr_at.load(Relaxed),
            )
        })
    }

    /// A copy for reports. `rtcp` is the stats of the socket the party's RTCP arrives on
    /// (this one with rtcp-mux). `wall_ms` dates the live sample used when no interval has
    /// completed yet.
    pub fn snapshot(&self, rtcp: &QualityStats, wall_ms: u64) -> QualitySnapshot {
        let (expected, received) = self.totals();
        let samples = self.samples.load(Relaxed);
        let jitter_us = self.jitter_us();
        let rtt_us = self.rtt_hint_us.load(Relaxed);
        let mos = if samples > 0 {
            let avg = |s: &AtomicU64| (s.load(Relaxed) / samples) as u32;
            Some(MosSummary {
                samples,
                average: MosSample {
                    mos_x100: avg(&self.sum_mos),
                    loss_x100: avg(&self.sum_loss),
                    jitter_us: avg(&self.sum_jitter_us),
                    rtt_us: avg(&self.sum_rtt_us),
                    reported_at: wall_ms / 1000,
                },
                lowest: self.lowest.load().unwrap_or_default(),
                highest: self.highest.load().unwrap_or_default(),
            })
        } else if received > 0 {
            // No interval completed yet: one sample over the whole stream so far.
            let s = self.make_sample(expected, received, wall_ms / 1000);
            Some(MosSummary {
                samples: 1,
                average: s,
                lowest: s,
                highest: s,
            })
        } else {
            None
        };
        let clock_rate = self.clock_rate();
        let reported = rtcp.rr_seen.load(Relaxed).then(|| {
            let jitter = u64::from(rtcp.rr_jitter.load(Relaxed));
            let cum = rtcp.rr_cum_lost.load(Relaxed);
            PeerReport {
                ssrc: rtcp.rr_ssrc.load(Relaxed),
                fraction_lost: rtcp.rr_fraction.load(Relaxed),
                // 24-bit two's complement (RFC 3550 §6.4.1).
                cumulative_lost: ((cum << 8) as i32) >> 8,
                jitter_us: (jitter * 1_000_000 / u64::from(clock_rate)) as u32,
            }
        });
        let xr = rtcp.xr_voip.load(Relaxed).then(|| XrVoip {
            loss_rate: rtcp.xr_loss.load(Relaxed),
            rtt_ms: rtcp.xr_rtt_ms.load(Relaxed),
            mos_cq_x10: rtcp.xr_mos_cq.load(Relaxed),
        });
        QualitySnapshot {
            ssrc: self.started.load(Relaxed).then(|| self.ssrc.load(Relaxed)),
            clock_rate,
            expected,
            received,
            lost: expected as i64 - received as i64,
            duplicates: self.duplicates.load(Relaxed),
            reordered: self.reordered.load(Relaxed),
            jitter_us,
            rtt_us: (rtt_us > 0).then_some(rtt_us),
            mos,
            sr_count: rtcp.sr_count.load(Relaxed),
            rr_count: rtcp.rr_count.load(Relaxed),
            xr_count: rtcp.xr_count.load(Relaxed),
            reported,
            xr,
        }
    }
}

/// One MOS sample (rtpengine `ssrc_stats_block`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MosSample {
    pub mos_x100: u32,
    /// Loss in percent × 100.
    pub loss_x100: u32,
    pub jitter_us: u32,
    pub rtt_us: u32,
    /// Unix seconds (for the average: when it was read).
    pub reported_at: u64,
}

/// Average, lowest and highest MOS samples (rtpengine's `average MOS`, `lowest MOS`,
/// `highest MOS`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MosSummary {
    pub samples: u64,
    pub average: MosSample,
    pub lowest: MosSample,
    pub highest: MosSample,
}

/// The first report block of the party's latest SR/RR: its view of what it receives.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeerReport {
    /// SSRC the block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, /256.
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub jitter_us: u32,
}

/// RFC 3611 VoIP metrics of the party's latest XR.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XrVoip {
    /// Fraction lost, /256.
    pub loss_rate: u8,
    pub rtt_ms: u32,
    /// MOS-CQ × 10; 127 = unavailable.
    pub mos_cq_x10: u8,
}

/// Quality of one received stream at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QualitySnapshot {
    /// SSRC of the current source, `None` before the first RTP packet.
    pub ssrc: Option<u32>,
    pub clock_rate: u32,
    /// RFC 3550 A.3 expected and received (distinct) packets.
    pub expected: u64,
    pub received: u64,
    /// `expected - received`; negative only through duplicates across a restart.
    pub lost: i64,
    pub duplicates: u64,
    pub reordered: u64,
    pub jitter_us: u32,
    pub rtt_us: Option<u32>,
    pub mos: Option<MosSummary>,
    pub sr_count: u64,
    pub rr_count: u64,
    pub xr_count: u64,
    pub reported: Option<PeerReport>,
    pub xr: Option<XrVoip>,
}

impl QualitySnapshot {
    /// Cumulative loss in percent.
    pub fn loss_percent(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost.max(0) as f64 * 100.0 / self.expected as f64
        }
    }
}

#[cfg(test)]
mod tests;
