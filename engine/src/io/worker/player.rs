//! Players on the worker (media played toward a party, rtpengine's `media_player`): start
//! and stop them, and send their packets when due.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;

use tracing::{debug, warn};

use super::transcode::{ntp_from_unix_ms, RTCP_INTERVAL_MS};
use super::{Core, Entry, Now, SRTP_TAIL_ROOM};
use crate::core::dtmf_inject::{DtmfDigit, DtmfInjector, InjectTarget};
use crate::core::plan::PortKey;
use crate::core::player::{PlaySpec, Player, SenderInfo};
use crate::core::stats::{DropReason, WorkerCounters};
use crate::core::stream::{protect, srtp_protect_parts, target, Route, Slot};
use crate::core::transcode::write_rtcp_report;
use crate::io::ports::Role;
use crate::io::sys;

/// Granularity of the players' timer (µs): 2 ms of added jitter at most, well inside any
/// receiver's jitter buffer, for 1/40th of the wake-ups of per-frame timing at 20 ms ptime.
const PLAYER_TICK_US: u64 = 2000;

impl Core {
    /// Start or stop the player toward the party of `port`.
    pub(super) fn play(&mut self, port: PortKey, spec: Option<PlaySpec>) {
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

    /// Queue a DTMF digit into what the party of `port` sends toward its peer.
    pub(super) fn play_dtmf(
        &mut self,
        port: PortKey,
        digit: DtmfDigit,
        target: InjectTarget,
        ptime_ms: u32,
    ) {
        let Some(&idx) = self.by_key.get(&port) else {
            debug!(port = port.0, "play DTMF: port not on this worker");
            return;
        };
        let Some(e) = self.slab[idx].as_mut() else {
            return;
        };
        if e.port.role != Role::Rtp {
            warn!(port = port.0, "play DTMF: not an RTP port");
            return;
        }
        let inj = match e.inject.as_deref_mut() {
            Some(inj) => {
                inj.set_target(target);
                inj
            }
            None => e.inject.insert(Box::new(DtmfInjector::new(target))),
        };
        if !inj.push(digit, ptime_ms) {
            warn!(
                port = port.0,
                "play DTMF: too many digits queued; digit dropped"
            );
        }
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

    /// How long the backend may sleep before a player or T.38 gateway packet is due:
    /// `None` = none (sleep until IO), else at most that many µs (0: due now).
    pub(crate) fn player_timeout_us(&self) -> Option<u64> {
        // Wake on a coarse tick, not at every player's own due time: hundreds of players with
        // scattered phases then share one wake-up (and one send batch) per tick instead of
        // waking the thread for each frame. A frame leaves at most one tick late.
        let next = match (self.next_player_us, self.next_gateway_us) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let due = next.div_ceil(PLAYER_TICK_US) * PLAYER_TICK_US;
        Some(due.saturating_sub(sys::clock_us(libc::CLOCK_MONOTONIC)))
    }

    /// Send every player packet due at `now`, at most `budget` of them (the rest stay due
    /// and go on the next loop iteration), through `send(fd, slot, dest, bytes)`, which
    /// returns whether it was sent or queued. Updates the next due time.
    pub(crate) fn poll_players(
        &mut self,
        now: Now,
        mut budget: usize,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        // T.38 gateways send on the same clock, first (one packet per gateway and tick);
        // the players get what is left of the budget.
        budget = budget.saturating_sub(self.poll_gateways(now, &mut send));
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
            rtcp_cname,
            ..
        } = self;
        let room = out_buf.len().saturating_sub(SRTP_TAIL_ROOM);
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < players.len() {
            let idx = players[i];
            let Some(Some(entry)) = slab.get_mut(idx) else {
                players.swap_remove(i);
                continue;
            };
            let dest = entry.latch.destination();
            let (out, fd) = dest.map_or((idx, entry.port.raw_fd()), |d| entry.out_for(idx, d));
            let e = &mut entry.stream;
            let Some(p) = e.player.as_mut() else {
                players.swap_remove(i);
                continue;
            };
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
                    Ok(len) => send(fd, out, dest, &out_buf[..len]),
                    Err(_) => false,
                };
                if !sent {
                    counters.count_drop(DropReason::SendFailed);
                }
            }
            let report = p.report_due(now.mono_us, RTCP_INTERVAL_MS * 1000);
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
            if let Some(info) = report {
                let out = &mut out_buf[..];
                send_player_report(slab, out, counters, idx, info, now, rtcp_cname, &mut send);
            }
        }
        self.next_player_us = next;
        self.count_players();
    }
}

/// Send the RTCP sender report of the player on slot `idx` to its party (rtpengine's player
/// sends one with its first packet): from the party's RTCP socket (the RTP one under
/// rtcp-mux) to its RTCP address, the party's own RTP in a report block, with the LSR and
/// DLSR of the last SR the party sent us.
#[allow(clippy::too_many_arguments)]
fn send_player_report(
    slab: &mut [Option<Entry>],
    out_buf: &mut [u8],
    counters: &WorkerCounters,
    idx: usize,
    info: SenderInfo,
    now: Now,
    cname: &[u8],
    send: &mut impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
) {
    // The party's RTCP goes out through the other side's RTCP socket, whose own RTCP
    // comes back to the party through the socket we want.
    let Some((far, _)) = target(slab, idx, Route::Rtcp) else {
        return;
    };
    let Some((sink, dest)) = target(slab, far, Route::Rtcp) else {
        return;
    };
    let report = match (&slab[idx], &slab[sink]) {
        (Some(rtp), Some(rtcp)) => (rtp.stats.quality).reception(&rtcp.stats.quality, now.mono_us),
        _ => None,
    };
    let len = write_rtcp_report(
        out_buf,
        info.ssrc,
        ntp_from_unix_ms(now.wall_ms),
        Some((info.ts, info.packets, info.octets)),
        report.as_ref(),
        cname,
    );
    let Some(s) = slab[sink].as_mut() else {
        return;
    };
    let (out, fd) = s.out_for(sink, dest);
    match protect(s, Route::Rtcp, out_buf, len) {
        Ok(len) if len > 0 => {
            if !send(fd, out, dest, &out_buf[..len]) {
                counters.count_drop(DropReason::SendFailed);
            }
        }
        Ok(_) => {}
        Err(_) => counters.count_drop(DropReason::SendFailed),
    }
}
