//! Endpoint learning ("latching") for one stream: where to send media for a party, and
//! whether a packet claiming to come from that party is accepted.
//!
//! Parties behind NAT announce a private or otherwise unreachable address in SDP; the only
//! address that works is the one their packets come from (symmetric RTP). rtpengine therefore
//! learns the return address from received packets (`media_socket.c`,
//! `media_packet_address_check`), and so does [`Latch`]:
//!
//! * **Default (`endpoint-learning=delayed`)**: until the stream is *confirmed*, every packet
//!   is accepted and the return address follows its source, so the first packet already
//!   fixes where media goes. For [`LEARNING_DELAY_MS`] after the last signalling (plan
//!   applied) the latch stays unconfirmed and moves to each new source; the first packet
//!   after that window confirms the source it came from. Once confirmed, packets from other
//!   sources are still relayed but do not move the latch.
//! * **`immediate`** ([`EndpointLearning::Immediate`]): the first packet confirms.
//! * **`strict source`**: once confirmed, packets from any other source are dropped
//!   ([`DropReason::SourceMismatch`]). Before confirmation they are accepted, as in
//!   rtpengine (its tests relay every source during the learning window).
//! * **`media handover`**: once confirmed, a packet from a new source moves the latch there
//!   (and stays confirmed). With both flags, handover wins: the new source is accepted.
//! * **`asymmetric`** (`learn == false`): media always goes to the SDP address; the source of
//!   received packets is still tracked, so `strict source` checks it after confirmation
//!   (rtpengine behaves the same: asymmetric + strict source drops foreign sources).
//!
//! A new plan restarts the learning window (rtpengine counts it from the last signal);
//! `relatch` forgets the learned address. A changed SDP address alone keeps what was learned:
//! a NATed party re-INVITEing with the same private address must not lose its media.

use std::net::SocketAddr;

use super::plan::LatchPolicy;
use super::stats::DropReason;

/// How long after signalling an unconfirmed latch keeps following new sources (rtpengine
/// waits 3 s after the last offer/answer before committing to an address).
pub const LEARNING_DELAY_MS: u64 = 3000;

/// rtpengine's `--endpoint-learning` algorithms that [`Latch`] implements (`off` is
/// `LatchPolicy::learn == false`; `heuristic` is not implemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointLearning {
    /// Confirm the first source seen [`LEARNING_DELAY_MS`] after signalling (rtpengine default).
    #[default]
    Delayed,
    /// Confirm the first source seen.
    Immediate,
}

/// Outcome of checking one packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// Relay the packet; the return address did not change.
    Accept,
    /// Relay the packet; the return address is now this (the packet's source).
    AcceptAndLatched(SocketAddr),
    /// Do not relay.
    Drop(DropReason),
}

/// Latching state of one stream (rtpengine's `packet_stream` endpoint, `learned_endpoint`
/// and `PS_FLAG_CONFIRMED`).
#[derive(Debug, Clone)]
pub struct Latch {
    expected: Option<SocketAddr>,
    learned: Option<SocketAddr>,
    confirmed: bool,
    policy: LatchPolicy,
    learning: EndpointLearning,
    signal_ms: u64,
}

impl Latch {
    /// A fresh latch for a stream whose plan was applied at `now_ms` (monotonic milliseconds).
    pub fn new(expected: Option<SocketAddr>, policy: LatchPolicy, now_ms: u64) -> Latch {
        Latch {
            expected,
            learned: None,
            confirmed: false,
            policy,
            learning: EndpointLearning::Delayed,
            signal_ms: now_ms,
        }
    }

    pub fn with_learning(mut self, learning: EndpointLearning) -> Latch {
        self.learning = learning;
        self
    }

    /// Continue a stream taken over from stored state: `addr` was learned and confirmed
    /// before, so media goes there at once and the latch behaves as it did.
    pub fn resume(&mut self, addr: SocketAddr) {
        self.learned = Some(addr);
        self.confirmed = true;
    }

    /// A new plan for the stream was applied at `now_ms`. Returns true when the learned
    /// address was forgotten (`relatch`).
    pub fn update(
        &mut self,
        expected: Option<SocketAddr>,
        policy: LatchPolicy,
        relatch: bool,
        now_ms: u64,
    ) -> bool {
        self.expected = expected;
        self.policy = policy;
        self.signal_ms = now_ms;
        let forget = relatch && (self.learned.is_some() || self.confirmed);
        if relatch {
            self.learned = None;
            self.confirmed = false;
        }
        forget
    }

    /// Check the source of a packet received at `now_ms`.
    pub fn on_packet(&mut self, src: SocketAddr, now_ms: u64) -> LatchVerdict {
        if self.learned == Some(src) {
            if !self.confirmed && !self.in_window(now_ms) {
                self.confirmed = true;
            }
            return LatchVerdict::Accept;
        }
        if self.confirmed {
            if self.policy.handover {
                return self.learn(src);
            }
            if self.policy.strict_source {
                return LatchVerdict::Drop(DropReason::SourceMismatch);
            }
            return LatchVerdict::Accept;
        }
        if !self.in_window(now_ms) {
            self.confirmed = true;
        }
        self.learn(src)
    }

    /// ICE nominated the pair whose remote end is `src` (a USE-CANDIDATE check to us):
    /// media for the party goes there from now on, whatever was learned before. Returns
    /// true when the address changed.
    pub fn nominate(&mut self, src: SocketAddr) -> bool {
        let changed = self.learned != Some(src);
        self.learned = Some(src);
        self.confirmed = true;
        changed && self.policy.learn
    }

    fn in_window(&self, now_ms: u64) -> bool {
        match self.learning {
            EndpointLearning::Immediate => false,
            EndpointLearning::Delayed => now_ms < self.signal_ms.saturating_add(LEARNING_DELAY_MS),
        }
    }

    fn learn(&mut self, src: SocketAddr) -> LatchVerdict {
        self.learned = Some(src);
        if self.policy.learn {
            LatchVerdict::AcceptAndLatched(src)
        } else {
            LatchVerdict::Accept
        }
    }

    /// Where media for the party goes: the learned address, else the SDP one; always the
    /// SDP one with `asymmetric`.
    #[inline]
    pub fn destination(&self) -> Option<SocketAddr> {
        if self.policy.learn {
            self.learned.or(self.expected)
        } else {
            self.expected
        }
    }

    pub fn expected(&self) -> Option<SocketAddr> {
        self.expected
    }

    pub fn learned(&self) -> Option<SocketAddr> {
        self.learned
    }

    pub fn confirmed(&self) -> bool {
        self.confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LatchVerdict::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SDP: &str = "10.0.0.5:4000";
    const NAT: &str = "203.0.113.7:61000";
    const OTHER: &str = "198.51.100.9:5000";

    fn policy(learn: bool, strict_source: bool, handover: bool) -> LatchPolicy {
        LatchPolicy {
            learn,
            strict_source,
            handover,
        }
    }

    #[test]
    fn default_learns_first_packet_then_confirms_after_delay() {
        let mut l = Latch::new(Some(a(SDP)), LatchPolicy::default(), 1000);
        assert_eq!(l.destination(), Some(a(SDP)));
        // First packet (through NAT) moves the return address at once.
        assert_eq!(l.on_packet(a(NAT), 1100), AcceptAndLatched(a(NAT)));
        assert_eq!(l.destination(), Some(a(NAT)));
        assert!(!l.confirmed());
        assert_eq!(l.on_packet(a(NAT), 1120), Accept);
        // Within the window a new source still moves it (e.g. a NAT rebinding during setup).
        assert_eq!(l.on_packet(a(OTHER), 3999), AcceptAndLatched(a(OTHER)));
        assert_eq!(l.on_packet(a(NAT), 3999), AcceptAndLatched(a(NAT)));
        // First packet after the window confirms its source.
        assert_eq!(l.on_packet(a(NAT), 4000), Accept);
        assert!(l.confirmed());
        // Confirmed: other sources are relayed but do not move the latch.
        assert_eq!(l.on_packet(a(OTHER), 4020), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn default_confirms_new_source_seen_after_window() {
        let mut l = Latch::new(Some(a(SDP)), LatchPolicy::default(), 0);
        assert_eq!(l.on_packet(a(NAT), 10), AcceptAndLatched(a(NAT)));
        assert_eq!(l.on_packet(a(OTHER), 5000), AcceptAndLatched(a(OTHER)));
        assert!(l.confirmed());
        assert_eq!(l.on_packet(a(NAT), 5020), Accept);
        assert_eq!(l.destination(), Some(a(OTHER)));
    }

    #[test]
    fn immediate_confirms_first_source() {
        let mut l = Latch::new(Some(a(SDP)), LatchPolicy::default(), 0)
            .with_learning(EndpointLearning::Immediate);
        assert_eq!(l.on_packet(a(NAT), 1), AcceptAndLatched(a(NAT)));
        assert!(l.confirmed());
        assert_eq!(l.on_packet(a(OTHER), 2), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn no_expected_address_until_first_packet() {
        let mut l = Latch::new(None, LatchPolicy::default(), 0);
        assert_eq!(l.destination(), None);
        assert_eq!(l.on_packet(a(NAT), 1), AcceptAndLatched(a(NAT)));
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn strict_source_drops_others_after_confirmation() {
        let mut l = Latch::new(Some(a(SDP)), policy(true, true, false), 0);
        assert_eq!(l.on_packet(a(NAT), 10), AcceptAndLatched(a(NAT)));
        // Still learning: another source is accepted and taken.
        assert_eq!(l.on_packet(a(OTHER), 20), AcceptAndLatched(a(OTHER)));
        assert_eq!(l.on_packet(a(NAT), 3000), AcceptAndLatched(a(NAT)));
        assert!(l.confirmed());
        assert_eq!(
            l.on_packet(a(OTHER), 3010),
            Drop(DropReason::SourceMismatch)
        );
        assert_eq!(l.on_packet(a(SDP), 3020), Drop(DropReason::SourceMismatch));
        assert_eq!(l.on_packet(a(NAT), 3030), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn media_handover_follows_each_new_source() {
        let mut l = Latch::new(Some(a(SDP)), policy(true, false, true), 0)
            .with_learning(EndpointLearning::Immediate);
        assert_eq!(l.on_packet(a(NAT), 1), AcceptAndLatched(a(NAT)));
        assert_eq!(l.on_packet(a(OTHER), 2), AcceptAndLatched(a(OTHER)));
        assert!(l.confirmed());
        assert_eq!(l.on_packet(a(OTHER), 3), Accept);
        assert_eq!(l.on_packet(a(NAT), 4), AcceptAndLatched(a(NAT)));
        assert_eq!(l.destination(), Some(a(NAT)));
        // Handover wins over strict source.
        let mut l = Latch::new(None, policy(true, true, true), 0)
            .with_learning(EndpointLearning::Immediate);
        l.on_packet(a(NAT), 1);
        assert_eq!(l.on_packet(a(OTHER), 2), AcceptAndLatched(a(OTHER)));
    }

    #[test]
    fn asymmetric_never_moves_destination() {
        let mut l = Latch::new(Some(a(SDP)), policy(false, false, false), 0);
        assert_eq!(l.on_packet(a(NAT), 1), Accept);
        assert_eq!(l.on_packet(a(OTHER), 5000), Accept);
        assert_eq!(l.on_packet(a(NAT), 5001), Accept);
        assert_eq!(l.destination(), Some(a(SDP)));
        // No SDP address: nowhere to send.
        let mut l = Latch::new(None, policy(false, false, false), 0);
        assert_eq!(l.on_packet(a(NAT), 1), Accept);
        assert_eq!(l.destination(), None);
    }

    #[test]
    fn asymmetric_strict_source_checks_confirmed_source() {
        let mut l = Latch::new(Some(a(SDP)), policy(false, true, false), 0);
        assert_eq!(l.on_packet(a(OTHER), 10), Accept);
        assert_eq!(l.on_packet(a(NAT), 3500), Accept);
        assert!(l.confirmed());
        assert_eq!(l.on_packet(a(SDP), 3510), Drop(DropReason::SourceMismatch));
        assert_eq!(l.on_packet(a(NAT), 3520), Accept);
        assert_eq!(l.destination(), Some(a(SDP)));
    }

    #[test]
    fn new_plan_keeps_learned_address_and_relatch_forgets_it() {
        let mut l = Latch::new(Some(a(SDP)), LatchPolicy::default(), 0)
            .with_learning(EndpointLearning::Immediate);
        l.on_packet(a(NAT), 1);
        // Re-INVITE with another SDP address: keep what packets told us.
        assert!(!l.update(Some(a(OTHER)), LatchPolicy::default(), false, 100));
        assert_eq!(l.expected(), Some(a(OTHER)));
        assert_eq!(l.destination(), Some(a(NAT)));
        assert!(l.confirmed());
        // relatch: back to the SDP address until a packet arrives.
        assert!(l.update(Some(a(OTHER)), LatchPolicy::default(), true, 200));
        assert_eq!(l.destination(), Some(a(OTHER)));
        assert!(!l.confirmed());
        assert!(!l.update(Some(a(OTHER)), LatchPolicy::default(), true, 201));
        assert_eq!(l.on_packet(a(SDP), 300), AcceptAndLatched(a(SDP)));
    }

    #[test]
    fn new_plan_restarts_learning_window() {
        let mut l = Latch::new(None, LatchPolicy::default(), 0);
        l.on_packet(a(NAT), 10);
        l.update(None, LatchPolicy::default(), false, 2500);
        // 4000 is past the first window but inside the second one: still learning.
        assert_eq!(l.on_packet(a(OTHER), 4000), AcceptAndLatched(a(OTHER)));
        assert!(!l.confirmed());
        assert_eq!(l.on_packet(a(OTHER), 5500), Accept);
        assert!(l.confirmed());
    }
}
