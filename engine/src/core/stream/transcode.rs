//! Transcoded RTP on its way to the sink: a packet handed over with
//! [`super::Verdict::Transcode`] goes through the stream's transcoder (or its DTMF
//! injector alone), and every packet that comes out is protected for the sink's party and
//! handed to the IO layer's `send`.

use std::net::SocketAddr;

use super::{
    drop_many, drop_packet, fan_out, protect, replaced, target, CopyKind, Now, Route, Slot,
    SRTP_TAIL_ROOM,
};
use crate::core::dtmf_inject::Injected;
use crate::core::stats::{DropReason, WorkerCounters};

/// Feed a packet routed [`Route::Transcode`] (plain RTP, SRTP already removed) to slot
/// `idx`'s transcoder (or, on a stream that is not transcoded but has DTMF to inject, take
/// it as it is) and hand every packet that results, through the DTMF injector when the
/// stream has one and SRTP-protected for the sink's party where it gets SRTP, to
/// `send(sink_socket, sink_slot, dest, bytes)`, which returns whether the packet was sent or
/// queued (counted as relayed) or failed (counted as a drop). `buf` is the worker's
/// scratch for one output packet (with SRTP tail room); `copy_buf` the one for copies of
/// it to `egress` subscribers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transcode<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    pkt: &[u8],
    now: Now,
    buf: &mut [u8],
    copy_buf: &mut [u8],
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    let has_copies = matches!(slab.get(idx), Some(Some(e)) if !e.copies.is_empty());
    let dest = target(slab, idx, Route::Rtp).and_then(|(sink, dest)| {
        let (out, socket) = slab[sink].as_ref()?.out_for(sink, dest);
        Some((socket, out, sink, dest))
    });
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return;
    };
    let room = buf.len().saturating_sub(SRTP_TAIL_ROOM);
    let (mut failed, mut undeliverable) = (0, false);
    let entry: &mut super::Stream = entry;
    match entry.transcoder.as_mut() {
        Some(t) => {
            // Precise milliseconds: a transcoder playing out on a clock schedules from the
            // arrival time (the coarse clock lags by up to a jiffy).
            t.handle_rtp(now.mono_us / 1000, pkt);
            // In-band digits drive the party's DTMF triggers; the transcoder's mask
            // follows the mode they set.
            while let Some(digit) = t.poll_digit() {
                let Some(g) = entry.guard.as_deref_mut() else {
                    break;
                };
                g.on_inband_digit(digit, now.mono_ms);
                if g.take_mode_change() {
                    let c = &entry.control;
                    t.set_block_dtmf(g.mode(), c.tone_freq, c.digit, c.volume);
                }
                if !g.wants_inband_digits() {
                    t.watch_digits(false);
                }
            }
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
    drain(slab, counters, idx, dest, now, buf, copy_buf, &mut send);
}

/// Run the playout ticks of slot `idx`'s transcoder due at `now` (see
/// `core::transcode::playout`) and send what they made, as [`transcode`] does.
pub(crate) fn transcode_tick<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    now: Now,
    buf: &mut [u8],
    copy_buf: &mut [u8],
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    let dest = target(slab, idx, Route::Rtp).and_then(|(sink, dest)| {
        let (out, socket) = slab[sink].as_ref()?.out_for(sink, dest);
        Some((socket, out, sink, dest))
    });
    let Some(Some(entry)) = slab.get_mut(idx) else {
        return;
    };
    let Some(t) = entry.transcoder.as_mut() else {
        return;
    };
    t.handle_timeout(now.mono_us / 1000);
    drain(slab, counters, idx, dest, now, buf, copy_buf, &mut send);
}

/// Send every packet slot `idx`'s transcoder has queued (with copies to its egress
/// subscribers), then count what could not be sent.
#[allow(clippy::too_many_arguments)]
fn drain<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    dest: Option<(S::Socket, usize, usize, SocketAddr)>,
    now: Now,
    buf: &mut [u8],
    copy_buf: &mut [u8],
    send: &mut impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    // An AMR codec mode request from this party is for what it receives: the encoder of
    // the other direction (the sink's transcoder) switches mode.
    let cmr = match slab.get_mut(idx) {
        Some(Some(e)) => e.transcoder.as_mut().and_then(|t| t.take_cmr()),
        _ => None,
    };
    if let (Some(cmr), Some((_, _, sink, _))) = (cmr, dest) {
        if let Some(t) = slab
            .get_mut(sink)
            .and_then(|s| s.as_mut())
            .and_then(|s| s.transcoder.as_mut())
        {
            t.request_mode(cmr);
        }
    }
    let has_copies = matches!(slab.get(idx), Some(Some(e)) if !e.copies.is_empty());
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
                &mut *send,
            );
        }
        emit(slab, idx, dest, buf, room, n, &mut *send, counters)
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
fn emit<S: Slot>(
    slab: &mut [Option<S>],
    idx: usize,
    dest: Option<(S::Socket, usize, usize, SocketAddr)>,
    buf: &mut [u8],
    room: usize,
    n: usize,
    send: &mut impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
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
    let mut one = |slab: &mut [Option<S>], buf: &mut [u8], len: usize| {
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

fn finish<S: Slot>(
    slab: &[Option<S>],
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
