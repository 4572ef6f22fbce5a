//! Full ICE agent for one component of one m= line (RFC 8445 §6.1.4, §7.2, §7.3, §8),
//! sans-IO: rtpengine's `ice_agent` (`ice.c`) reduced to what a media relay needs.
//!
//! We run it where rtpengine is a full agent: toward a peer that does full ICE when we
//! are not ICE-lite (`ICE=force`, or ICE kept toward a non-WebRTC peer). Toward browsers
//! we stay ICE-lite (they are always the ones to check and nominate).
//!
//! * Every remote candidate of the component is paired with our one host candidate (the
//!   socket the agent belongs to) and checked in priority order, one new check every
//!   [`TA_MS`]; checks are retransmitted after [`RTO_MS`], doubling, [`MAX_RETRANSMITS`]
//!   times, then the pair fails.
//! * A valid check from an address we do not know adds a peer-reflexive pair (§7.3.1.3),
//!   and every valid check received queues a triggered check on its pair (§7.3.1.4),
//!   sent before anything else: this is how a peer behind NAT, or an ICE-lite peer that
//!   only answers, becomes reachable.
//! * Controlling, we nominate the first pair that succeeds with a triggered check carrying
//!   USE-CANDIDATE (regular nomination, §8.1.1); its success selects it. Controlled, the
//!   pair is selected once our check on it succeeded and the peer nominated it.
//! * A check claiming our own role is a role conflict (§7.3.1.1): the larger tie-breaker
//!   controls, the other side switches or is answered 487 (rtpengine's `ice_request`); a
//!   487 to our check makes us switch (§7.2.5.1).
//!
//! Our requests start with SOFTWARE (rtpengine's tests look for it there) and are
//! authenticated with the peer's password; responses must carry MESSAGE-INTEGRITY with
//! it. Everything is allocated when the agent is built; handling and polling allocate
//! nothing.

use std::net::SocketAddr;

use super::{
    write_binding_request, BindingRequestParams, IceRole, StunClass, StunError, StunMessage,
    TransactionId,
};

/// Pacing of new checks (RFC 8445 §14.2 allows 5 ms and more; rtpengine checks at the
/// same rate). 20 ms: a handful of candidates is checked within 100 ms.
pub const TA_MS: u64 = 20;
/// First retransmission of a check (rtpengine's `STUN_RETRANSMIT_INTERVAL`).
pub const RTO_MS: u64 = 100;
/// Retransmissions before a pair fails (rtpengine's `STUN_MAX_RETRANSMITS`): 100 ms
/// doubling seven times is about 25 s of trying.
pub const MAX_RETRANSMITS: u32 = 7;
/// Pairs per component: the peer's candidates plus the peer-reflexive ones it shows us.
/// More are ignored (a peer with more than a dozen candidates per component is unusual).
pub const MAX_PAIRS: usize = 12;
/// Our SOFTWARE attribute. It starts with "rtpengine" because rtpengine's test suite (and
/// possibly tooling written against it) recognises our checks by it.
pub const SOFTWARE: &[u8] = b"rtpengine-compatible ngmedia";

/// Type preference of a peer-reflexive candidate (RFC 8445 §5.1.2.2), used for the
/// PRIORITY we announce in checks.
const PRFLX_TYPE_PREF: u32 = 110;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    remote: SocketAddr,
    state: PairState,
    tid: TransactionId,
    /// When the current transaction is next due for (re)transmission.
    due_ms: u64,
    rto_ms: u64,
    retransmits: u32,
    /// The current transaction carries USE-CANDIDATE.
    nominating: bool,
    /// The peer sent USE-CANDIDATE for this pair.
    peer_nominated: bool,
    triggered: bool,
}

/// What [`IceAgent::handle_response`] made of a STUN response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// Not for one of our transactions.
    Unknown,
    /// A check succeeded; `selected` when it settled the selected pair.
    Succeeded { selected: bool },
    /// The peer refused the check (the pair failed).
    Failed,
}

/// What [`IceAgent::handle_request`] made of a peer's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Answer with success.
    Accepted,
    /// The peer claims our role and we keep it: answer 487 (Role Conflict).
    RoleConflict,
}

/// Full ICE agent for one component. rtpengine: `ice_agent` with its candidate pairs.
#[derive(Debug)]
pub struct IceAgent {
    /// `remote_ufrag:local_ufrag`, the USERNAME of our checks.
    username: String,
    remote_pwd: String,
    controlling: bool,
    tie_breaker: u64,
    component: u16,
    pairs: Vec<Pair>,
    next_check_ms: u64,
    selected: Option<SocketAddr>,
}

impl IceAgent {
    /// An agent for `component` (1 RTP, 2 RTCP) checking `candidates` (the peer's
    /// addresses for this component) from `now_ms` on.
    pub fn new(
        local_ufrag: &str,
        remote_ufrag: &str,
        remote_pwd: &str,
        controlling: bool,
        component: u16,
        candidates: &[SocketAddr],
        now_ms: u64,
    ) -> IceAgent {
        let mut agent = IceAgent {
            username: format!("{remote_ufrag}:{local_ufrag}"),
            remote_pwd: remote_pwd.to_owned(),
            controlling,
            tie_breaker: rand::random(),
            component,
            pairs: Vec::with_capacity(MAX_PAIRS),
            next_check_ms: now_ms,
            selected: None,
        };
        for &c in candidates {
            agent.add_pair(c, now_ms);
        }
        agent
    }

    /// The pair media should use, once ICE settled it.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// State of the pair toward `remote`, if there is one.
    pub fn pair_state(&self, remote: SocketAddr) -> Option<PairState> {
        self.pairs
            .iter()
            .find(|p| p.remote == remote)
            .map(|p| p.state)
    }

    fn add_pair(&mut self, remote: SocketAddr, now_ms: u64) -> Option<usize> {
        if let Some(i) = self.pairs.iter().position(|p| p.remote == remote) {
            return Some(i);
        }
        if self.pairs.len() == MAX_PAIRS {
            return None;
        }
        self.pairs.push(Pair {
            remote,
            state: PairState::Waiting,
            tid: [0; 12],
            due_ms: now_ms,
            rto_ms: RTO_MS,
            retransmits: 0,
            nominating: false,
            peer_nominated: false,
            triggered: false,
        });
        Some(self.pairs.len() - 1)
    }

    /// A valid (authenticated) Binding request from `src` arrived on our socket, the peer
    /// claiming `peer_role`. A peer claiming our own role is a role conflict (RFC 8445
    /// §7.3.1.1, as rtpengine's `ice_request`): the larger tie-breaker controls; when that
    /// is us, the request is refused ([`RequestOutcome::RoleConflict`]: answer 487), else
    /// we switch roles. Otherwise learns a peer-reflexive pair if needed and queues a
    /// triggered check on it; a nomination by a controlling peer selects the pair once our
    /// check on it succeeded.
    pub fn handle_request(
        &mut self,
        now_ms: u64,
        src: SocketAddr,
        use_candidate: bool,
        peer_role: Option<IceRole>,
    ) -> RequestOutcome {
        match (peer_role, self.controlling) {
            (Some(IceRole::Controlling(theirs)), true) => {
                if self.tie_breaker >= theirs {
                    return RequestOutcome::RoleConflict;
                }
                self.controlling = false;
            }
            (Some(IceRole::Controlled(theirs)), false) => {
                if self.tie_breaker < theirs {
                    return RequestOutcome::RoleConflict;
                }
                self.controlling = true;
                self.nominate_valid_pair(now_ms);
            }
            _ => {}
        }
        let Some(i) = self.add_pair(src, now_ms) else {
            return RequestOutcome::Accepted;
        };
        let p = &mut self.pairs[i];
        if use_candidate && !self.controlling {
            p.peer_nominated = true;
            if p.state == PairState::Succeeded {
                self.selected = Some(src);
                return RequestOutcome::Accepted;
            }
        }
        if matches!(p.state, PairState::Waiting | PairState::Failed) {
            p.triggered = true;
            p.state = PairState::Waiting;
        }
        RequestOutcome::Accepted
    }

    /// Controlling now: nominate the first pair whose check already succeeded, unless a
    /// pair is selected or being nominated (regular nomination, RFC 8445 §8.1.1).
    fn nominate_valid_pair(&mut self, now_ms: u64) {
        if self.selected.is_some() || self.pairs.iter().any(|p| p.nominating) {
            return;
        }
        if let Some(p) = self
            .pairs
            .iter_mut()
            .find(|p| p.state == PairState::Succeeded)
        {
            p.nominating = true;
            p.triggered = true;
            p.state = PairState::Waiting;
            p.due_ms = now_ms;
        }
    }

    /// A STUN response arrived from `src`. Responses to our transactions are checked for
    /// the peer's MESSAGE-INTEGRITY; a success completes the pair's check.
    pub fn handle_response(
        &mut self,
        now_ms: u64,
        src: SocketAddr,
        msg: &StunMessage<'_>,
    ) -> Result<ResponseOutcome, StunError> {
        let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.state == PairState::InProgress && p.tid == msg.transaction_id)
        else {
            return Ok(ResponseOutcome::Unknown);
        };
        msg.verify_integrity(self.remote_pwd.as_bytes())?;
        let p = &mut self.pairs[i];
        if msg.class == StunClass::Error {
            if msg.error_code.is_some_and(|(code, _)| code == 487) {
                // Role conflict (§7.2.5.1): take the other role and check again.
                self.controlling = !self.controlling;
                p.state = PairState::Waiting;
                p.triggered = true;
                return Ok(ResponseOutcome::Failed);
            }
            p.state = PairState::Failed;
            return Ok(ResponseOutcome::Failed);
        }
        if msg.class != StunClass::Success || p.remote != src {
            // A response from elsewhere than we sent to is not symmetric: no success.
            p.state = PairState::Failed;
            return Ok(ResponseOutcome::Failed);
        }
        p.state = PairState::Succeeded;
        let was_nominating = p.nominating;
        p.nominating = false;
        let remote = p.remote;
        let peer_nominated = p.peer_nominated;
        let mut selected = false;
        if self.controlling {
            if was_nominating {
                self.selected = Some(remote);
                selected = true;
            } else if self.selected.is_none() && !self.pairs.iter().any(|p| p.nominating) {
                // Regular nomination of the first valid pair: check it again with
                // USE-CANDIDATE, ahead of anything else.
                let p = &mut self.pairs[i];
                p.nominating = true;
                p.triggered = true;
                p.state = PairState::Waiting;
                p.due_ms = now_ms;
            }
        } else if peer_nominated {
            self.selected = Some(remote);
            selected = true;
        }
        Ok(ResponseOutcome::Succeeded { selected })
    }

    /// The next check to send, written into `buf`: triggered checks first, then due
    /// retransmissions, then (paced by [`TA_MS`]) the next waiting pair. Call until
    /// `None`.
    pub fn poll_transmit(&mut self, now_ms: u64, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let i = self
            .pairs
            .iter()
            .position(|p| p.triggered)
            .or_else(|| {
                self.pairs
                    .iter()
                    .position(|p| p.state == PairState::InProgress && p.due_ms <= now_ms)
            })
            .or_else(|| {
                if now_ms < self.next_check_ms || self.selected.is_some() {
                    return None;
                }
                let i = self
                    .pairs
                    .iter()
                    .position(|p| p.state == PairState::Waiting)?;
                self.next_check_ms = now_ms + TA_MS;
                Some(i)
            })?;
        let p = &mut self.pairs[i];
        if p.triggered || p.state == PairState::Waiting {
            p.triggered = false;
            p.state = PairState::InProgress;
            p.tid = rand::random();
            p.rto_ms = RTO_MS;
            p.retransmits = 0;
        } else if p.retransmits >= MAX_RETRANSMITS {
            p.state = PairState::Failed;
            return self.poll_transmit(now_ms, buf);
        } else {
            p.retransmits += 1;
            p.rto_ms *= 2;
        }
        p.due_ms = now_ms + p.rto_ms;
        let (remote, tid, nominating) = (p.remote, p.tid, p.nominating);
        let priority = (PRFLX_TYPE_PREF << 24) | (65_535 << 8) | (256 - self.component as u32);
        let role = if self.controlling {
            IceRole::Controlling(self.tie_breaker)
        } else {
            IceRole::Controlled(self.tie_breaker)
        };
        let params = BindingRequestParams {
            username: self.username.as_bytes(),
            key: self.remote_pwd.as_bytes(),
            priority,
            role,
            use_candidate: nominating && self.controlling,
            software: Some(SOFTWARE),
        };
        let len = write_binding_request(buf, &tid, &params, 0).ok()?;
        Some((remote, len))
    }

    /// Milliseconds (monotonic) when [`poll_transmit`](Self::poll_transmit) next has
    /// something to send, `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut at = |v: u64| t = Some(t.map_or(v, |x| x.min(v)));
        for p in &self.pairs {
            if p.triggered {
                at(0);
            } else if p.state == PairState::InProgress {
                at(p.due_ms);
            } else if p.state == PairState::Waiting && self.selected.is_none() {
                at(self.next_check_ms);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests;
