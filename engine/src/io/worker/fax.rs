//! T.38 gateways on the worker (rtpengine: `t38_gateway_pair`, `t38_gateway_start`,
//! `t38_gateway_stop` and the gateway's PCM player): built, kept or stopped as each plan
//! says, and run on the players' clock.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use tracing::{info, warn};

use super::{Core, Entry, Now};
use crate::core::plan::FaxPlan;
use crate::core::stream;
use crate::core::t38::gateway::FaxGateway;
use crate::io::ports::Role;

/// Build, keep or stop the entry's part in a T.38 gateway as the plan says. Returns true
/// when a new gateway was started (the worker then runs it on its clock).
pub(super) fn set_gateway(e: &mut Entry, fax: Option<FaxPlan>, now: Now) -> bool {
    let fax = fax.filter(|_| e.port.role == Role::Rtp);
    e.feeds_gateway = fax == Some(FaxPlan::Audio);
    let Some(FaxPlan::Gateway(spec)) = fax else {
        stop(e);
        return false;
    };
    if e.gateway.as_ref().is_some_and(|g| *g.spec() == spec) {
        return false;
    }
    stop(e);
    let (ssrc, seq, ts) = (rand::random(), rand::random(), rand::random());
    match FaxGateway::new(spec, now.mono_us, ssrc, seq, ts) {
        Ok(g) => {
            info!(
                port = e.key.0,
                error_correction = ?g.spec().options.error_correction(),
                codec = ?g.spec().law,
                "T.38 gateway started"
            );
            e.gateway = Some(Box::new(g));
            true
        }
        Err(err) => {
            warn!(port = e.key.0, error = %err, "cannot start a T.38 gateway; fax media is dropped");
            false
        }
    }
}

/// Stop the entry's gateway, if it has one.
fn stop(e: &mut Entry) {
    if let Some(g) = e.gateway.take() {
        let s = g.stats();
        info!(
            port = e.key.0,
            audio_in = s.audio_in,
            audio_out = s.audio_out,
            ifp_in = s.ifp_in,
            udptl_out = s.udptl_out,
            udptl_bad = s.udptl_bad,
            "T.38 gateway stopped"
        );
    }
}

impl Core {
    /// Run every gateway due at `now`: audio to the audio parties, UDPTL to the T.38
    /// parties, through `send(fd, slot, dest, bytes)`. Updates the next due time and
    /// returns how many packets were handed to `send`.
    pub(super) fn poll_gateways(
        &mut self,
        now: Now,
        send: &mut impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) -> usize {
        let Core {
            slab,
            gateways,
            out_buf,
            counters,
            next_gateway_us,
            ..
        } = self;
        let mut next: Option<u64> = None;
        let mut handed = 0;
        let mut i = 0;
        while i < gateways.len() {
            let idx = gateways[i];
            let due = stream::poll_gateway(
                slab,
                counters,
                idx,
                now.mono_us,
                out_buf,
                |fd, slot, dest, b| {
                    handed += 1;
                    send(fd, slot, dest, b)
                },
            );
            match due {
                Some(due) => {
                    next = Some(next.map_or(due, |t| t.min(due)));
                    i += 1;
                }
                None => {
                    gateways.swap_remove(i);
                }
            }
        }
        *next_gateway_us = next;
        handed
    }

    /// Run the gateway now on slot `idx` from now on.
    pub(super) fn start_gateway(&mut self, idx: usize, now: Now) {
        if !self.gateways.contains(&idx) {
            self.gateways.push(idx);
        }
        self.next_gateway_us = Some(
            self.next_gateway_us
                .map_or(now.mono_us, |t| t.min(now.mono_us)),
        );
    }
}
