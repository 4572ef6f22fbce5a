//! Transcoded streams on the worker: feeding a stream's transcoder and sending what it
//! produces, building transcoders from the plan, and the RTCP reports we send for them.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use tracing::warn;

use super::{
    drop_many, drop_packet, fan_out, protect, replaced, target, CopyKind, Core, Entry, Now, Route,
    SRTP_TAIL_ROOM,
};
use crate::core::dtmf_inject::Injected;
use crate::core::media_control::StreamControl;
use crate::core::stats::{DropReason, WorkerCounters};
use crate::core::transcode::{write_rtcp_report, TranscodeSpec, Transcoder};
use crate::io::ports::Role;

/// Interval of the RTCP reports we send for transcoded streams (RFC 3550's 5 s minimum).
pub(crate) const RTCP_INTERVAL_MS: u64 = 5_000;
/// How often the worker looks for due RTCP reports. The check runs on the worker's
/// wake-ups (a transcoded stream has packets every 10-60 ms), so no timer is needed.
const RTCP_SCAN_MS: u64 = 500;

/// Feed a packet routed [`Route::Transcode`] (plain RTP, SRTP already removed) to slot
/// `idx`'s transcoder (or, on a stream that is not transcoded but has DTMF to inject, take
/// it as it is) and hand every packet that results, through the DTMF injector when the
/// stream has one and SRTP-protected for the sink's party where it gets SRTP, to
/// `send(sink_fd, sink_slot, dest, bytes)`, which returns whether the packet was sent or
/// queued (counted as relayed) or failed (counted as a drop). `buf` is the worker's
/// scratch for one output packet (with SRTP tail room); `copy_buf` the one for copies of
/// it to `egress` subscribers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transcode(
    slab: &mut [Option<Entry>],
    counters: &WorkerCounters,
    idx: usize,
    pkt: &[u8],
    now: Now,
    buf: &mut [u8],
    copy_buf: &mut [u8],
    mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
) {
    let has_copies = matches!(slab.get(idx), Some(Some(e)) if !e.copies.is_empty());
    let dest = target(slab, idx, Route::Rtp).and_then(|(sink, dest)| {
        let (out, fd) = slab[sink].as_ref()?.out_for(sink, dest);
        Some((fd, out, sink, dest))
    });
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return;
    };
    let room = buf.len().saturating_sub(SRTP_TAIL_ROOM);
    let (mut failed, mut undeliverable) = (0, false);
    match entry.transcoder.as_mut() {
        Some(t) => {
            t.handle_rtp(now.mono_ms, pkt);
            if let Some(report) = t.poll_dtmf_report() {
                // In-band digit: reported from the party's address (rtpengine uses the
                // stream's endpoint, there being no packet of its own).
                if let Some(addr) = entry.latch.destination() {
                    super::report_dtmf(entry, &report, addr.ip(), now.wall_ms / 1000);
                }
            }
        }
        None => {
            // Passthrough with DTMF to inject: the packet itself is the output (the
            // backend made the ingress copies already).
            if has_copies {
                fan_out(
                    slab,
                    counters,
                    idx,
                    Route::Rtp,
                    CopyKind::Egress,
                    pkt,
                    now,
                    copy_buf,
                    &mut send,
                );
            }
            if pkt.len() <= room {
                buf[..pkt.len()].copy_from_slice(pkt);
                emit(slab, idx, dest, buf, room, pkt.len(), &mut send, counters)
                    .tally(&mut failed, &mut undeliverable);
            }
            finish(slab, counters, idx, failed, undeliverable);
            return;
        }
    }
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
        if has_copies {
            fan_out(
                slab,
                counters,
                idx,
                Route::Rtp,
                CopyKind::Egress,
                &buf[..n],
                now,
                copy_buf,
                &mut send,
            );
        }
        emit(slab, idx, dest, buf, room, n, &mut send, counters)
            .tally(&mut failed, &mut undeliverable);
    }
    finish(slab, counters, idx, failed, undeliverable);
}

/// What became of one output packet.
enum Emitted {
    Sent { failed: u64 },
    Undeliverable,
    Replaced,
}

impl Emitted {
    fn tally(self, failed: &mut u64, undeliverable: &mut bool) {
        match self {
            Emitted::Sent { failed: f } => *failed += f,
            Emitted::Undeliverable => *undeliverable = true,
            Emitted::Replaced => {}
        }
    }
}

/// Send the output packet `buf[..n]` of slot `idx` toward its sink: through the stream's
/// DTMF injector if it has one (which may turn it into an event report to be sent three
/// times), protected for the sink.
#[allow(clippy::too_many_arguments)]
fn emit(
    slab: &mut [Option<Entry>],
    idx: usize,
    dest: Option<(RawFd, usize, usize, SocketAddr)>,
    buf: &mut [u8],
    room: usize,
    n: usize,
    send: &mut impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    counters: &WorkerCounters,
) -> Emitted {
    // `out` is the slot the packet leaves through, `sink` the stream it is for.
    let Some((fd, out, sink, addr)) = dest else {
        return Emitted::Undeliverable;
    };
    if replaced(slab, sink) {
        return Emitted::Replaced;
    }
    let injected = match slab.get_mut(idx) {
        Some(Some(e)) => match e.inject.as_deref_mut() {
            Some(inj) => inj.on_packet(&mut buf[..room], n),
            None => Injected { len: n, repeats: 0 },
        },
        _ => return Emitted::Undeliverable,
    };
    let mut failed = 0;
    let mut one = |slab: &mut [Option<Entry>], buf: &mut [u8], len: usize| {
        let len = match slab.get_mut(sink) {
            Some(Some(s)) => protect(s, Route::Rtp, buf, len),
            _ => Err(DropReason::NoDestination),
        };
        match len {
            Ok(len) if send(fd, out, addr, &buf[..len]) => counters.count_relayed(1),
            _ => failed += 1,
        }
    };
    one(slab, buf, injected.len);
    for k in 1..=injected.repeats {
        let len = match slab.get(idx) {
            Some(Some(e)) => e
                .inject
                .as_deref()
                .map_or(0, |i| i.write_repeat(&mut buf[..room], k)),
            _ => 0,
        };
        if len > 0 {
            one(slab, buf, len);
        }
    }
    if injected.repeats > 0 {
        // The repeats took sequence numbers: what follows on the line moves up.
        if let Some(Some(s)) = slab.get_mut(sink) {
            s.line.shift_seq(u16::from(injected.repeats));
        }
    }
    Emitted::Sent { failed }
}

fn finish(
    slab: &[Option<Entry>],
    counters: &WorkerCounters,
    idx: usize,
    failed: u64,
    undeliverable: bool,
) {
    if let Some(Some(entry)) = slab.get(idx) {
        drop_many(counters, &entry.stats, DropReason::SendFailed, failed);
        if undeliverable {
            drop_packet(counters, &entry.stats, DropReason::NoDestination);
        }
    }
}

/// Install the plan's media control; a transcoder masks in-band digits while DTMF is
/// blocked.
pub(super) fn set_control(e: &mut Entry, control: StreamControl) {
    if let Some(t) = e.transcoder.as_mut() {
        t.set_block_dtmf(
            control.block_dtmf,
            control.tone_freq,
            control.digit,
            control.volume,
        );
    }
    e.control = control;
}

/// NTP timestamp (RFC 3550 §4) of a Unix time in milliseconds.
fn ntp_from_unix_ms(ms: u64) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = ms / 1000 + NTP_UNIX_OFFSET;
    let frac = ((ms % 1000) << 32) / 1000;
    (secs << 32) | frac
}

/// Build, replace or remove the entry's transcoder as the plan says. Building happens here,
/// on the worker, once per stream: codec state never crosses threads.
pub(super) fn set_transcoder(
    e: &mut Entry,
    spec: Option<TranscodeSpec>,
    now: Now,
    silence_detect: Option<crate::core::transcode::SilenceDetect>,
) {
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
        Ok(mut t) => {
            t.set_silence_detect(silence_detect);
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

impl Core {
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
            let (out, fd) = s.out_for(sink, dest);
            // SRTCP toward a party that gets SRTP.
            let Ok(len) = protect(s, Route::Rtcp, &mut self.out_buf, len) else {
                self.counters.count_drop(DropReason::SendFailed);
                continue;
            };
            if len > 0 && !send(fd, out, dest, &self.out_buf[..len]) {
                self.counters.count_drop(DropReason::SendFailed);
            }
        }
    }
}
