//! Full ICE agents on the worker: built from the plan, fed with the STUN responses the
//! socket receives (see `stun.rs`), and polled for the checks they send.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::{Core, Entry, Now};
use crate::core::stream::Slot;
use crate::core::stun::agent::IceAgent;
use crate::io::ports::Role;

/// Build, keep or drop the entry's agent as its ICE plan says (after `e.ice` was set).
/// Returns true when the entry has an agent that needs polling.
pub(super) fn set_agent(
    e: &mut Entry,
    before: Option<&crate::core::plan::FullIce>,
    now: Now,
) -> bool {
    let Some(ice) = e.ice.as_deref() else {
        e.agent = None;
        return false;
    };
    let Some(full) = ice.full.as_ref() else {
        e.agent = None;
        return false;
    };
    if e.agent.is_some() && before == Some(full) {
        return true;
    }
    let (component, candidates) = match e.port.role {
        Role::Rtp => (1, &full.rtp_candidates),
        Role::Rtcp => (2, &full.rtcp_candidates),
    };
    e.agent = Some(Box::new(IceAgent::new(
        &ice.ufrag,
        &full.remote_ufrag,
        &full.remote_pwd,
        full.controlling,
        component,
        candidates,
        now.mono_ms,
    )));
    true
}

impl Core {
    /// Send the connectivity checks that are due, through `send(fd, slot, dest, bytes)`.
    pub(crate) fn poll_ice(
        &mut self,
        now: Now,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        let Core {
            slab,
            ice_agents,
            out_buf,
            ..
        } = self;
        let mut i = 0;
        while i < ice_agents.len() {
            let idx = ice_agents[i];
            let Some(Some(e)) = slab.get_mut(idx) else {
                ice_agents.swap_remove(i);
                continue;
            };
            if e.agent.is_none() {
                ice_agents.swap_remove(i);
                continue;
            }
            // Each check leaves from the socket of the candidate's address family.
            while let Some((dest, len)) = e
                .agent
                .as_deref_mut()
                .and_then(|a| a.poll_transmit(now.mono_ms, out_buf))
            {
                let (out, fd) = e.out_for(idx, dest);
                send(fd, out, dest, &out_buf[..len]);
            }
            i += 1;
        }
    }

    /// How long the backend may sleep before a check is due, in µs (`None`: no agent
    /// has anything pending).
    pub(crate) fn ice_timeout_us(&self) -> Option<u64> {
        if self.ice_agents.is_empty() {
            return None;
        }
        let now = Now::read().mono_ms;
        self.ice_agents
            .iter()
            .filter_map(|&i| self.slab.get(i)?.as_ref()?.agent.as_deref()?.poll_timeout())
            .min()
            .map(|due| due.saturating_sub(now) * 1000)
    }
}
