//! Delay buffers on the worker (`delay-buffer` of `block DTMF`): packets a party sent are
//! held in its stream's buffer and sent on when due, on the same timer wake-ups as the
//! players.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::{Core, Now};
use crate::core::stream::{release_delayed, DelayScratch};
use crate::io::sys;

impl Core {
    /// Slot `idx` has a delay buffer: look at it on every timer wake-up.
    pub(super) fn watch_delay(&mut self, idx: usize) {
        if !self.delayed.contains(&idx) {
            self.delayed.push(idx);
        }
        // Held packets may have become due at once (settings changed).
        self.next_delay_us = Some(0);
    }

    /// How long the backend may sleep before a held packet is due: `None` = nothing held,
    /// else at most that many µs (0: due now).
    pub(crate) fn delay_timeout_us(&self) -> Option<u64> {
        let due = self.next_delay_us?;
        Some(due.saturating_sub(sys::clock_us(libc::CLOCK_MONOTONIC)))
    }

    /// How long the backend may sleep before a packet we originate or hold is due: the
    /// earliest of the players', the ICE agents', the transcoders' playing out on a clock
    /// and the delay buffers' (`None`: none).
    pub(crate) fn media_timeout_us(&self) -> Option<u64> {
        [
            self.player_timeout_us(),
            self.ice_timeout_us(),
            self.playout_timeout_us(),
            self.delay_timeout_us(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Send every held packet due at `now`, at most `budget` of them (the rest stay due
    /// and go on the next loop iteration), through `send(fd, slot, dest, bytes)`, which
    /// returns whether it was sent or queued. Updates the next due time; a buffer whose
    /// settings went away is dropped once it is empty.
    pub(crate) fn poll_delayed(
        &mut self,
        now: Now,
        mut budget: usize,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        match self.next_delay_us {
            Some(due) if due <= now.mono_us => {}
            _ => return,
        }
        let Core {
            slab,
            delayed,
            counters,
            out_buf,
            copy_buf,
            delay_held,
            delay_pkt,
            ..
        } = self;
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < delayed.len() {
            let idx = delayed[i];
            let flush = match slab.get(idx) {
                Some(Some(e)) if e.delay.is_some() => {
                    !e.guard.as_ref().is_some_and(|g| g.config().delayed())
                }
                _ => {
                    delayed.swap_remove(i);
                    continue;
                }
            };
            let scratch = DelayScratch {
                held: delay_held,
                pkt: delay_pkt,
                out: out_buf,
                copy: copy_buf,
            };
            let (sent, due) =
                release_delayed(slab, counters, idx, now, flush, budget, scratch, &mut send);
            budget = budget.saturating_sub(sent);
            match due {
                Some(d) => {
                    next = Some(next.map_or(d, |t| t.min(d)));
                    i += 1;
                }
                None => {
                    if flush {
                        // Emptied after the delay was switched off: no buffer any more.
                        if let Some(Some(e)) = slab.get_mut(idx) {
                            e.delay = None;
                        }
                        delayed.swap_remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
        }
        self.next_delay_us = next;
    }
}
