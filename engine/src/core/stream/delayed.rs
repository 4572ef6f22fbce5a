//! Packets leaving a party's delay buffer (`delay-buffer`): the stream's DTMF guard
//! decides what replaces a digit now that it knows what followed the packet
//! (`DtmfGuard::release`), then the packet takes the way every other one takes (copies,
//! transcoder or sink), and a DTMF end report goes out three times.

use std::net::SocketAddr;

use super::{count_drop, relay, transcode, Now, Route, Slot, Verdict, SRTP_TAIL_ROOM};
use crate::core::dtmf_security::Released;
use crate::core::media_control::PayloadKind;
use crate::core::stats::{DropReason, WorkerCounters};

/// Scratch buffers of [`release_delayed`], allocated once per worker.
pub(crate) struct DelayScratch<'a> {
    /// The packet as it left the buffer (kept for the repeats of an end report).
    pub held: &'a mut [u8],
    /// The copy on its way (protected in place).
    pub pkt: &'a mut [u8],
    /// A transcoder's output.
    pub out: &'a mut [u8],
    /// Copies for subscribers.
    pub copy: &'a mut [u8],
}

/// Send on every packet of slot `idx`'s delay buffer that is due at `now` (every packet
/// when `flush`), at most `budget` of them, through `send(socket, slot, dest, bytes)`,
/// which returns whether it was sent or queued. Returns how many were sent and when the
/// next one is due (`None`: the buffer is empty, or gone).
#[allow(clippy::too_many_arguments)]
pub(crate) fn release_delayed<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    now: Now,
    flush: bool,
    mut budget: usize,
    scratch: DelayScratch<'_>,
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) -> (usize, Option<u64>) {
    let DelayScratch {
        held,
        pkt,
        out,
        copy,
    } = scratch;
    let room = held.len().min(pkt.len()).saturating_sub(SRTP_TAIL_ROOM);
    let mut sent = 0;
    loop {
        let Some(Some(entry)) = slab.get_mut(idx) else {
            return (sent, None);
        };
        let entry: &mut super::Stream = entry;
        let Some(d) = entry.delay.as_deref_mut() else {
            return (sent, None);
        };
        if budget == 0 {
            return (sent, d.next_due_us());
        }
        let popped = if flush {
            d.pop(&mut held[..room])
        } else {
            d.pop_due(now.mono_us, &mut held[..room])
        };
        let n = match popped {
            None => return (sent, d.next_due_us()),
            Some(0) => continue,
            Some(n) => n,
        };
        budget -= 1;
        sent += 1;
        let te = entry
            .control
            .payloads
            .iter()
            .find(|p| p.1 == PayloadKind::Event)
            .map(|p| p.0);
        let released = match entry.guard.as_deref_mut() {
            Some(g) => {
                let c = &entry.control;
                g.release(&mut held[..room], n, |pt| c.kind(pt), te)
            }
            None => Released { len: n, repeats: 0 },
        };
        let route = if entry.transcoder.is_some() || entry.inject.as_ref().is_some_and(|i| i.busy())
        {
            Route::Transcode
        } else {
            Route::Rtp
        };
        let len = released.len;
        for k in 0..=u16::from(released.repeats) {
            pkt[..len].copy_from_slice(&held[..len]);
            if k > 0 {
                // The repeats of an end report take the next sequence numbers.
                let seq = u16::from_be_bytes([pkt[2], pkt[3]]).wrapping_add(k);
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            }
            let verdict = relay(slab, counters, idx, route, pkt, len, now, copy, &mut send);
            match verdict {
                Verdict::Forward { via, to, len } => {
                    let Some(Some(sink)) = slab.get(via) else {
                        continue;
                    };
                    if send(sink.socket(), via, to, &pkt[..len]) {
                        counters.count_relayed(1);
                    } else if let Some(Some(e)) = slab.get(idx) {
                        count_drop(counters, e, DropReason::SendFailed);
                    }
                }
                Verdict::Transcode { len } => {
                    transcode(slab, counters, idx, &pkt[..len], now, out, copy, &mut send);
                }
                Verdict::Drop(reason) => {
                    if let Some(Some(e)) = slab.get(idx) {
                        count_drop(counters, e, reason);
                    }
                }
                // A gateway's packets are never delayed (see `handle`).
                Verdict::Reply { .. } | Verdict::Gateway { .. } | Verdict::Absorbed(_) => {}
            }
        }
        if released.repeats > 0 {
            // What follows on the sink's line moves up past the repeats.
            let sink = slab
                .get(idx)
                .and_then(|e| e.as_ref())
                .and_then(|e| e.rtp_sink);
            if let Some(Some(s)) = sink.and_then(|s| slab.get_mut(s)) {
                s.line.shift_seq(u16::from(released.repeats));
            }
        }
    }
}
