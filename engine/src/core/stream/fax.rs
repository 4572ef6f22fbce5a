//! T.38 gateways on the packet path: what the parties send goes in with
//! [`super::Verdict::Gateway`] ([`feed_gateway`]); what the gateway makes leaves through the
//! parties' sockets, UDPTL as soon as spandsp produces it and G.711 on the gateway's 20 ms
//! clock ([`poll_gateway`]). The gateway lives on the T.38 party's RTP socket; the audio
//! party's RTP socket is its `rtp_sink`, and the other way round.

use std::net::SocketAddr;

use super::{drop_packet, protect, Route, Slot, SRTP_TAIL_ROOM};
use crate::core::stats::{DropReason, WorkerCounters};

/// Hand `pkt`, received on slot `idx` and routed [`Route::Gateway`], to its gateway: UDPTL
/// from the T.38 party (the gateway is on `idx`) or plain RTP from the audio party (the
/// gateway is on its `rtp_sink`). UDPTL the gateway produces meanwhile goes out at once
/// through `send(socket, slot, dest, bytes)`, written in `scratch`.
pub(crate) fn feed_gateway<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    idx: usize,
    pkt: &[u8],
    scratch: &mut [u8],
    send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    let at = match slab.get(idx) {
        Some(Some(e)) if e.gateway.is_some() => idx,
        Some(Some(e)) => match e.rtp_sink {
            Some(sink) => sink,
            None => return,
        },
        _ => return,
    };
    let Some(Some(entry)) = slab.get_mut(at) else {
        return;
    };
    let entry = &mut **entry;
    let Some(gw) = entry.gateway.as_deref_mut() else {
        return;
    };
    if at == idx {
        if gw.handle_udptl(pkt).is_err() {
            drop_packet(counters, &entry.stats, DropReason::Malformed);
        }
    } else {
        gw.handle_audio(pkt);
    }
    send_udptl(slab, counters, at, scratch, send);
}

/// Send what the gateway on slot `at` has for its T.38 party. Without an address for the
/// party yet, the datagrams are lost (their IFP packets ride again in the redundancy of
/// later ones).
fn send_udptl<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    at: usize,
    scratch: &mut [u8],
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) {
    let Some(Some(entry)) = slab.get_mut(at) else {
        return;
    };
    let dest = entry.latch.destination();
    let (out, socket) = match dest {
        Some(d) => entry.out_for(at, d),
        None => (at, entry.socket()),
    };
    let entry = &mut **entry;
    let Some(gw) = entry.gateway.as_deref_mut() else {
        return;
    };
    while let Some(n) = gw.poll_udptl(scratch) {
        let Some(dest) = dest else {
            continue;
        };
        if send(socket, out, dest, &scratch[..n]) {
            counters.count_relayed(1);
        } else {
            drop_packet(counters, &entry.stats, DropReason::SendFailed);
        }
    }
}

/// Run the gateway on slot `at` up to `now_us`: the audio packets due go to the audio
/// party (its `rtp_sink`), protected for it like relayed RTP, and the UDPTL produced
/// meanwhile to the T.38 party. `buf` is scratch for one packet with SRTP tail room.
/// Returns when the gateway wants to run next (`None`: no gateway on the slot).
pub(crate) fn poll_gateway<S: Slot>(
    slab: &mut [Option<S>],
    counters: &WorkerCounters,
    at: usize,
    now_us: u64,
    buf: &mut [u8],
    mut send: impl FnMut(S::Socket, usize, SocketAddr, &[u8]) -> bool,
) -> Option<u64> {
    let room = buf.len().saturating_sub(SRTP_TAIL_ROOM);
    let audio = slab.get(at)?.as_ref()?.rtp_sink;
    loop {
        let gw = slab.get_mut(at)?.as_mut()?.gateway.as_deref_mut()?;
        let Some(n) = gw.poll_audio(now_us, &mut buf[..room]) else {
            break;
        };
        let Some(Some(party)) = audio.and_then(|a| slab.get_mut(a)) else {
            continue;
        };
        let Some(dest) = party.latch.destination() else {
            continue;
        };
        let slot = audio.unwrap_or(at);
        let (out, socket) = party.out_for(slot, dest);
        let sent = match protect(party, Route::Rtp, buf, n) {
            Ok(len) => send(socket, out, dest, &buf[..len]),
            Err(_) => false,
        };
        if sent {
            counters.count_relayed(1);
        } else {
            drop_packet(counters, &party.stats, DropReason::SendFailed);
        }
    }
    send_udptl(slab, counters, at, buf, &mut send);
    let gw = slab.get(at)?.as_ref()?.gateway.as_deref()?;
    Some(gw.due_us())
}
