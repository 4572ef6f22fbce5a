//! Endpoint learning ("latching") for one stream: where to send media for a party, and
//! whether a packet claiming to come from that party is accepted.
//!
//! Parties behind NAT announce a private or otherwise unreachable address in SDP; the only
//! address that works is the one their packets come from (symmetric RTP). rtpengine therefore
//! learns the return address from received packets (its `media_packet_address_check`), and
//! so does [`Latch`]. Learning from packets is also how media gets stolen (the "RTP Bleed"
//! class): whoever sends to a media port at the right moment is taken for the party. The
//! rules below keep what NAT traversal needs and close what an outsider could use:
//!
//! * **A learning window, ended by a timer.** After signalling (a plan applied) the latch
//!   learns for [`LEARNING_DELAY_MS`] (rtpengine's fixed 3 s). Media for the party follows
//!   the best source seen so far, and when the window ends the latch is *confirmed* on that
//!   source: the decision uses only what arrived inside the window, never the next packet
//!   that happens to arrive afterwards (which, on a side that fell silent, may be a
//!   stranger's). A window in which nothing arrived opens again at the party's first packet.
//! * **Confirmed means fixed.** A confirmed latch never moves because of unsolicited
//!   packets. It moves only on signalling (a new SDP address: `relatch`), with
//!   `media-handover`, on a packet that proves it comes from the party (SRTP/SRTCP whose
//!   authentication tag checked, see [`Proof`]), or when ICE nominates a pair
//!   ([`Latch::nominate`], a STUN check signed with our password). Without `strict-source`
//!   packets from other sources are still relayed, as rtpengine does, but never change where
//!   media goes; with it they are dropped ([`DropReason::SourceMismatch`]), and so is RTP
//!   toward a transcoder (see `core::stream`), which would decode it into the party's audio.
//! * **Which source is best** depends on rtpengine's `--endpoint-learning`
//!   ([`EndpointLearning`]): `heuristic` (the default, as in rtpengine) prefers the SDP's
//!   address: a source equal to it confirms at once, then one with the SDP's IP, then one
//!   with the SDP's port, then any; `delayed` takes the last source seen; `immediate`
//!   confirms the first source at once; `off` never learns (media goes to the SDP address).
//!   With `strict-source` a source ranked below one already seen is dropped while learning.
//! * **`asymmetric`** (`learn == false`): media always goes to the SDP address; the source
//!   of received packets is still tracked, so `strict-source` checks it after confirmation
//!   (rtpengine behaves the same: asymmetric + strict source drops foreign sources).
//! * **ICE**: once a pair is nominated the address is ICE's; plain RTP from elsewhere does not
//!   move it (only another nomination or authenticated SRTP does).
//!
//! A new plan restarts the learning window of an unconfirmed latch (rtpengine counts it from
//! the last signal); `relatch` forgets the learned address and learns again. A changed SDP
//! address alone is what sets `relatch` (see `core::calls::negotiate`).
//!
//! Refusals are counted by the caller; [`Latch::note_refusal`] rate-limits their log lines
//! to one per stream per [`LOG_INTERVAL_MS`].

use std::net::SocketAddr;

use super::plan::LatchPolicy;
use super::stats::DropReason;

/// How long after signalling a latch learns before it is confirmed (rtpengine waits 3 s
/// after the last offer/answer before committing to an address; it has no option for it).
pub const LEARNING_DELAY_MS: u64 = 3000;

/// At most one log line per stream per this long about refused sources (a stranger spraying
/// a media port must not flood the log); the lines in between are counted in the next one.
pub const LOG_INTERVAL_MS: u64 = 60_000;

/// rtpengine's `--endpoint-learning` algorithms (also the ng `endpoint-learning` key and the
/// `endpoint-learning-…` flags, per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointLearning {
    /// Learn during the window, confirm the last source seen in it when it ends.
    Delayed,
    /// Confirm the first source seen.
    Immediate,
    /// Never learn from packets: media goes to the SDP address.
    Off,
    /// As `delayed`, but sources are ranked against the SDP address (rtpengine's default).
    #[default]
    Heuristic,
}

impl EndpointLearning {
    /// rtpengine's names (`no-learning` is taken for `off` too).
    pub fn parse(s: &str) -> Option<EndpointLearning> {
        let s = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match s.as_str() {
            "delayed" => Some(EndpointLearning::Delayed),
            "immediate" => Some(EndpointLearning::Immediate),
            "off" | "no-learning" => Some(EndpointLearning::Off),
            "heuristic" => Some(EndpointLearning::Heuristic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointLearning::Delayed => "delayed",
            EndpointLearning::Immediate => "immediate",
            EndpointLearning::Off => "off",
            EndpointLearning::Heuristic => "heuristic",
        }
    }
}

/// What vouches for a packet's source besides its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Nothing: plain RTP/RTCP, which anyone can send.
    None,
    /// SRTP/SRTCP whose authentication tag checked with the party's key (and which was not a
    /// replay): only the party can have sent it.
    Authenticated,
}

/// Outcome of checking one packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// Relay the packet; the return address did not change.
    Accept,
    /// Relay the packet; the return address is now this (the packet's source, or while
    /// learning the best source seen).
    AcceptAndLatched(SocketAddr),
    /// Do not relay.
    Drop(DropReason),
}

/// Number of preference ranks of [`EndpointLearning::Heuristic`].
const RANKS: usize = 4;

/// Latching state of one stream (rtpengine's `packet_stream` endpoint, `learned_endpoint`,
/// `detected_endpoints` and the `stream_fd`'s `confirmed`).
#[derive(Debug, Clone)]
pub struct Latch {
    expected: Option<SocketAddr>,
    learned: Option<SocketAddr>,
    confirmed: bool,
    /// ICE nominated `learned`: plain packets from elsewhere do not move it.
    nominated: bool,
    policy: LatchPolicy,
    /// The algorithm when the policy names none (the daemon's `--endpoint-learning`).
    default_learning: EndpointLearning,
    /// Start of the current learning window (monotonic ms).
    window_ms: u64,
    /// Sources seen in the current window, by preference rank (0 best); the last one seen
    /// of each rank is kept.
    candidates: [Option<SocketAddr>; RANKS],
    /// Refusal log limiter: when the next line may be written, and how many refusals since
    /// the last one.
    log_next_ms: u64,
    log_suppressed: u64,
    /// The same for moves of a confirmed latch.
    move_log_next_ms: u64,
}

impl Latch {
    /// A fresh latch for a stream whose plan was applied at `now_ms` (monotonic milliseconds).
    pub fn new(expected: Option<SocketAddr>, policy: LatchPolicy, now_ms: u64) -> Latch {
        let mut l = Latch {
            expected,
            learned: None,
            confirmed: false,
            nominated: false,
            policy,
            default_learning: EndpointLearning::default(),
            window_ms: now_ms,
            candidates: [None; RANKS],
            log_next_ms: 0,
            log_suppressed: 0,
            move_log_next_ms: 0,
        };
        l.settle_off();
        l
    }

    /// The algorithm for streams whose policy names none.
    pub fn with_learning(mut self, learning: EndpointLearning) -> Latch {
        self.default_learning = learning;
        self.settle_off();
        self
    }

    /// The algorithm in force.
    pub fn learning(&self) -> EndpointLearning {
        self.policy.learning.unwrap_or(self.default_learning)
    }

    /// `off`: nothing is learned; the SDP address is the party's, confirmed from the start.
    fn settle_off(&mut self) {
        if self.learning() == EndpointLearning::Off && self.expected.is_some() {
            self.learned = self.expected;
            self.confirmed = true;
        }
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
        let was_off = self.learning() == EndpointLearning::Off;
        self.expected = expected;
        self.policy = policy;
        self.window_ms = now_ms;
        self.candidates = [None; RANKS];
        let forget = relatch && (self.learned.is_some() || self.confirmed);
        if relatch || (was_off && self.learning() != EndpointLearning::Off) {
            self.learned = None;
            self.confirmed = false;
            self.nominated = false;
        }
        if self.learning() == EndpointLearning::Off {
            self.learned = None;
            self.confirmed = false;
            self.nominated = false;
            self.settle_off();
        }
        forget
    }

    /// The learning window ends at `now_ms` or before: confirm the best source it saw. A
    /// window that saw nothing confirms nothing (see [`Latch::on_packet`]). Called for
    /// every packet before its source is looked at; callers that want the state without a
    /// packet (a timer, a query) may call it too.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.confirmed || now_ms < self.deadline() {
            return;
        }
        if let Some(best) = self.best() {
            self.learned = Some(best.1);
            self.confirmed = true;
        }
    }

    /// When the learning window ends (monotonic ms); `None` once confirmed.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.confirmed).then(|| self.deadline())
    }

    fn deadline(&self) -> u64 {
        self.window_ms.saturating_add(LEARNING_DELAY_MS)
    }

    /// Check the source of a packet received at `now_ms` that `proof` vouches for.
    pub fn on_packet(&mut self, src: SocketAddr, now_ms: u64, proof: Proof) -> LatchVerdict {
        self.handle_timeout(now_ms);
        if self.confirmed {
            if self.learned == Some(src) {
                return LatchVerdict::Accept;
            }
            let proven = proof == Proof::Authenticated && self.learning() != EndpointLearning::Off;
            if proven || self.policy.handover {
                self.nominated = false;
                return self.learn(src);
            }
            if self.policy.strict_source {
                return LatchVerdict::Drop(DropReason::SourceMismatch);
            }
            return LatchVerdict::Accept;
        }
        let learning = self.learning();
        if learning == EndpointLearning::Immediate
            || learning == EndpointLearning::Off
            || proof == Proof::Authenticated
        {
            // `off` without an SDP address: the first source is all there is.
            return self.confirm(src);
        }
        if now_ms >= self.deadline() {
            // The window passed without a packet (handle_timeout confirmed nothing): the
            // party's first packet opens a new one.
            self.window_ms = now_ms;
        }
        let rank = match learning {
            EndpointLearning::Heuristic => self.rank(src),
            _ => RANKS - 1,
        };
        self.candidates[rank] = Some(src);
        if rank == 0 {
            // Exactly the address the SDP names: nothing can be better.
            return self.confirm(src);
        }
        let Some((best_rank, best)) = self.best() else {
            return LatchVerdict::Accept;
        };
        if self.policy.strict_source && best_rank < rank {
            return LatchVerdict::Drop(DropReason::SourceMismatch);
        }
        if self.learned == Some(best) {
            LatchVerdict::Accept
        } else {
            self.learn(best)
        }
    }

    /// ICE nominated the pair whose remote end is `src` (a USE-CANDIDATE check to us, signed
    /// with our password): media for the party goes there from now on, whatever was learned
    /// before, and only ICE or authenticated SRTP moves it again. Returns true when the
    /// address changed.
    pub fn nominate(&mut self, src: SocketAddr) -> bool {
        let changed = self.learned != Some(src);
        self.learned = Some(src);
        self.confirmed = true;
        self.nominated = true;
        changed && self.policy.learn
    }

    /// A packet from a source this latch refused (or will not follow) at `now_ms`: `Some(n)`
    /// when a log line is due, `n` being the refusals since the last line (this one
    /// included); `None` while the stream's line of this interval was written.
    pub fn note_refusal(&mut self, now_ms: u64) -> Option<u64> {
        self.log_suppressed += 1;
        if now_ms < self.log_next_ms {
            return None;
        }
        self.log_next_ms = now_ms.saturating_add(LOG_INTERVAL_MS);
        Some(std::mem::take(&mut self.log_suppressed))
    }

    /// A confirmed latch moved at `now_ms` (proof, handover): whether a log line is due (one
    /// per stream per [`LOG_INTERVAL_MS`], so a handover flip-flop cannot flood the log).
    pub fn note_move(&mut self, now_ms: u64) -> bool {
        if now_ms < self.move_log_next_ms {
            return false;
        }
        self.move_log_next_ms = now_ms.saturating_add(LOG_INTERVAL_MS);
        true
    }

    /// Preference of `src` against the SDP address (rtpengine's `heuristic`): 0 the same
    /// address and port, 1 the same address, 2 the same port, 3 neither (or no SDP address).
    fn rank(&self, src: SocketAddr) -> usize {
        let Some(sdp) = self.expected else {
            return RANKS - 1;
        };
        let mut rank = 0;
        if src.port() != sdp.port() {
            rank |= 1;
        }
        if src.ip() != sdp.ip() {
            rank |= 2;
        }
        rank
    }

    /// The best source seen in this window, with its rank.
    fn best(&self) -> Option<(usize, SocketAddr)> {
        self.candidates
            .iter()
            .enumerate()
            .find_map(|(rank, c)| c.map(|a| (rank, a)))
    }

    fn confirm(&mut self, src: SocketAddr) -> LatchVerdict {
        self.confirmed = true;
        if self.learned == Some(src) {
            LatchVerdict::Accept
        } else {
            self.learn(src)
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

    /// The party's address as learned (with `asymmetric`: the source tracked for
    /// `strict-source`).
    pub fn learned(&self) -> Option<SocketAddr> {
        self.learned
    }

    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// ICE settled the address.
    pub fn nominated(&self) -> bool {
        self.nominated
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
    /// The party behind a NAT that kept its address but not its port.
    const SAME_IP: &str = "10.0.0.5:61000";
    const NAT: &str = "203.0.113.7:61000";
    const OTHER: &str = "198.51.100.9:5000";
    const SAME_PORT: &str = "198.51.100.9:4000";
    const W: u64 = LEARNING_DELAY_MS;

    fn policy(learn: bool, strict_source: bool, handover: bool) -> LatchPolicy {
        LatchPolicy {
            learn,
            strict_source,
            handover,
            learning: None,
        }
    }

    fn latch(expected: Option<&str>, p: LatchPolicy, learning: EndpointLearning) -> Latch {
        Latch::new(expected.map(a), p, 1000).with_learning(learning)
    }

    fn plain(l: &mut Latch, src: &str, now: u64) -> LatchVerdict {
        l.on_packet(a(src), now, Proof::None)
    }

    #[test]
    fn delayed_follows_sources_in_the_window_then_the_timer_confirms() {
        let mut l = latch(Some(SDP), LatchPolicy::default(), EndpointLearning::Delayed);
        assert_eq!(l.destination(), Some(a(SDP)));
        assert_eq!(l.poll_timeout(), Some(1000 + W));
        // The first packet (through NAT) moves the return address at once.
        assert_eq!(plain(&mut l, NAT, 1100), AcceptAndLatched(a(NAT)));
        assert_eq!(plain(&mut l, NAT, 1120), Accept);
        // A rebinding inside the window moves it again; the last source seen is taken.
        assert_eq!(plain(&mut l, OTHER, 3000), AcceptAndLatched(a(OTHER)));
        assert_eq!(plain(&mut l, NAT, 3999), AcceptAndLatched(a(NAT)));
        assert!(!l.confirmed());
        // The window ends by the clock, on what it saw.
        l.handle_timeout(1000 + W);
        assert!(l.confirmed());
        assert_eq!(l.poll_timeout(), None);
        // Whatever arrives afterwards is relayed but moves nothing.
        assert_eq!(plain(&mut l, OTHER, 4020), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn a_stranger_after_the_window_cannot_take_an_unconfirmed_silent_side() {
        // The party sent during the window, then fell silent (hold music, a muted phone);
        // nothing looked at the latch until a stranger's packet arrived long after.
        let mut l = latch(Some(SDP), LatchPolicy::default(), EndpointLearning::Delayed);
        assert_eq!(plain(&mut l, NAT, 1500), AcceptAndLatched(a(NAT)));
        assert_eq!(plain(&mut l, OTHER, 1000 + W + 1000), Accept);
        assert!(l.confirmed());
        assert_eq!(l.destination(), Some(a(NAT)));
        assert_eq!(l.learned(), Some(a(NAT)));
    }

    #[test]
    fn a_window_that_saw_nothing_opens_again_at_the_first_packet() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Heuristic,
        );
        let t = 1000 + 10 * W;
        assert_eq!(plain(&mut l, NAT, t), AcceptAndLatched(a(NAT)));
        assert!(!l.confirmed(), "one late packet does not confirm");
        assert_eq!(l.poll_timeout(), Some(t + W));
        // A better source in the new window wins it.
        assert_eq!(
            plain(&mut l, SAME_IP, t + 100),
            AcceptAndLatched(a(SAME_IP))
        );
        assert_eq!(plain(&mut l, NAT, t + 200), Accept);
        assert_eq!(plain(&mut l, NAT, t + W), Accept);
        assert!(l.confirmed());
        assert_eq!(l.destination(), Some(a(SAME_IP)));
    }

    #[test]
    fn heuristic_prefers_the_sdp_address_then_its_ip_then_its_port() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Heuristic,
        );
        assert_eq!(plain(&mut l, OTHER, 1010), AcceptAndLatched(a(OTHER)));
        assert_eq!(
            plain(&mut l, SAME_PORT, 1020),
            AcceptAndLatched(a(SAME_PORT))
        );
        assert_eq!(plain(&mut l, SAME_IP, 1030), AcceptAndLatched(a(SAME_IP)));
        // Worse sources later in the window do not take it back.
        assert_eq!(plain(&mut l, SAME_PORT, 1040), Accept);
        assert_eq!(plain(&mut l, NAT, 1050), Accept);
        assert_eq!(l.destination(), Some(a(SAME_IP)));
        assert!(!l.confirmed());
        // The SDP address itself confirms at once.
        assert_eq!(plain(&mut l, SDP, 1060), AcceptAndLatched(a(SDP)));
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, SAME_IP, 1070), Accept);
        assert_eq!(l.destination(), Some(a(SDP)));
    }

    #[test]
    fn heuristic_strict_source_drops_worse_sources_while_learning() {
        let mut l = latch(
            Some(SDP),
            policy(true, true, false),
            EndpointLearning::Heuristic,
        );
        assert_eq!(plain(&mut l, SAME_IP, 1010), AcceptAndLatched(a(SAME_IP)));
        assert_eq!(plain(&mut l, NAT, 1020), Drop(DropReason::SourceMismatch));
        assert_eq!(plain(&mut l, SAME_IP, 1030), Accept);
        l.handle_timeout(1000 + W);
        assert_eq!(
            plain(&mut l, SDP, 1000 + W),
            Drop(DropReason::SourceMismatch)
        );
        assert_eq!(plain(&mut l, SAME_IP, 1000 + W), Accept);
    }

    #[test]
    fn immediate_confirms_first_source() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Immediate,
        );
        assert_eq!(plain(&mut l, NAT, 1001), AcceptAndLatched(a(NAT)));
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, OTHER, 1002), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn off_sends_to_the_sdp_address_only() {
        let mut l = latch(Some(SDP), LatchPolicy::default(), EndpointLearning::Off);
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, NAT, 1001), Accept);
        assert_eq!(
            l.on_packet(a(NAT), 1002, Proof::Authenticated),
            Accept,
            "off learns from nothing"
        );
        assert_eq!(l.destination(), Some(a(SDP)));
        // strict source then means: from the SDP address only.
        let mut l = latch(Some(SDP), policy(true, true, false), EndpointLearning::Off);
        assert_eq!(plain(&mut l, NAT, 1001), Drop(DropReason::SourceMismatch));
        assert_eq!(plain(&mut l, SDP, 1002), Accept);
        // The policy's own algorithm wins over the daemon's.
        let p = LatchPolicy {
            learning: Some(EndpointLearning::Off),
            ..LatchPolicy::default()
        };
        let mut l = latch(Some(SDP), p, EndpointLearning::Immediate);
        assert_eq!(plain(&mut l, NAT, 1001), Accept);
        assert_eq!(l.destination(), Some(a(SDP)));
    }

    #[test]
    fn no_expected_address_until_first_packet() {
        for learning in [
            EndpointLearning::Heuristic,
            EndpointLearning::Delayed,
            EndpointLearning::Off,
        ] {
            let mut l = latch(None, LatchPolicy::default(), learning);
            assert_eq!(l.destination(), None);
            assert_eq!(plain(&mut l, NAT, 1001), AcceptAndLatched(a(NAT)));
            assert_eq!(l.destination(), Some(a(NAT)), "{learning:?}");
        }
    }

    #[test]
    fn confirmed_latch_moves_only_for_proof_handover_or_ice() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Heuristic,
        );
        plain(&mut l, NAT, 1010);
        l.handle_timeout(1000 + W);
        assert_eq!(plain(&mut l, OTHER, 5000), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
        // Authenticated SRTP from a new address: the party moved (NAT rebinding).
        assert_eq!(
            l.on_packet(a(OTHER), 5010, Proof::Authenticated),
            AcceptAndLatched(a(OTHER))
        );
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, NAT, 5020), Accept);
        assert_eq!(l.destination(), Some(a(OTHER)));
        // An ICE nomination.
        assert!(l.nominate(a(SAME_IP)));
        assert!(l.nominated());
        assert_eq!(plain(&mut l, OTHER, 5030), Accept);
        assert_eq!(l.destination(), Some(a(SAME_IP)));
        assert!(!l.nominate(a(SAME_IP)));
    }

    #[test]
    fn authenticated_packets_confirm_while_learning() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Heuristic,
        );
        assert_eq!(
            l.on_packet(a(NAT), 1010, Proof::Authenticated),
            AcceptAndLatched(a(NAT))
        );
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, SDP, 1020), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn strict_source_drops_others_after_confirmation() {
        let mut l = latch(
            Some(SDP),
            policy(true, true, false),
            EndpointLearning::Delayed,
        );
        assert_eq!(plain(&mut l, NAT, 1010), AcceptAndLatched(a(NAT)));
        // Still learning (delayed ranks nothing): another source is accepted and taken.
        assert_eq!(plain(&mut l, OTHER, 1020), AcceptAndLatched(a(OTHER)));
        assert_eq!(plain(&mut l, NAT, 3000), AcceptAndLatched(a(NAT)));
        assert_eq!(plain(&mut l, NAT, 1000 + W), Accept);
        assert!(l.confirmed());
        assert_eq!(
            plain(&mut l, OTHER, 1000 + W + 10),
            Drop(DropReason::SourceMismatch)
        );
        assert_eq!(
            plain(&mut l, SDP, 1000 + W + 20),
            Drop(DropReason::SourceMismatch)
        );
        assert_eq!(plain(&mut l, NAT, 1000 + W + 30), Accept);
        assert_eq!(l.destination(), Some(a(NAT)));
    }

    #[test]
    fn media_handover_follows_each_new_source() {
        let mut l = latch(
            Some(SDP),
            policy(true, false, true),
            EndpointLearning::Immediate,
        );
        assert_eq!(plain(&mut l, NAT, 1001), AcceptAndLatched(a(NAT)));
        assert_eq!(plain(&mut l, OTHER, 1002), AcceptAndLatched(a(OTHER)));
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, OTHER, 1003), Accept);
        assert_eq!(plain(&mut l, NAT, 1004), AcceptAndLatched(a(NAT)));
        assert_eq!(l.destination(), Some(a(NAT)));
        // Handover wins over strict source.
        let mut l = latch(None, policy(true, true, true), EndpointLearning::Immediate);
        plain(&mut l, NAT, 1001);
        assert_eq!(plain(&mut l, OTHER, 1002), AcceptAndLatched(a(OTHER)));
    }

    #[test]
    fn asymmetric_never_moves_destination() {
        let mut l = latch(
            Some(SDP),
            policy(false, false, false),
            EndpointLearning::Heuristic,
        );
        assert_eq!(plain(&mut l, NAT, 1001), Accept);
        assert_eq!(plain(&mut l, OTHER, 1000 + W), Accept);
        assert_eq!(
            l.on_packet(a(OTHER), 1000 + W, Proof::Authenticated),
            Accept
        );
        assert_eq!(l.destination(), Some(a(SDP)));
        // No SDP address: nowhere to send.
        let mut l = latch(
            None,
            policy(false, false, false),
            EndpointLearning::Heuristic,
        );
        assert_eq!(plain(&mut l, NAT, 1001), Accept);
        assert_eq!(l.destination(), None);
    }

    #[test]
    fn asymmetric_strict_source_checks_the_source_seen_in_the_window() {
        let mut l = latch(
            Some(SDP),
            policy(false, true, false),
            EndpointLearning::Heuristic,
        );
        assert_eq!(plain(&mut l, NAT, 1010), Accept);
        assert_eq!(
            plain(&mut l, OTHER, 1000 + W),
            Drop(DropReason::SourceMismatch)
        );
        assert!(l.confirmed());
        assert_eq!(plain(&mut l, NAT, 1000 + W + 10), Accept);
        assert_eq!(l.destination(), Some(a(SDP)));
    }

    #[test]
    fn new_plan_keeps_learned_address_and_relatch_forgets_it() {
        let p = LatchPolicy::default();
        let mut l = latch(Some(SDP), p, EndpointLearning::Immediate);
        plain(&mut l, NAT, 1001);
        // A re-INVITE with the same party: keep what packets told us.
        assert!(!l.update(Some(a(SDP)), p, false, 1100));
        assert_eq!(l.destination(), Some(a(NAT)));
        assert!(l.confirmed());
        // relatch (the SDP address changed): back to the SDP address until a packet arrives.
        assert!(l.update(Some(a(OTHER)), p, true, 1200));
        assert_eq!(l.destination(), Some(a(OTHER)));
        assert!(!l.confirmed());
        assert!(!l.update(Some(a(OTHER)), p, true, 1201));
        assert_eq!(plain(&mut l, SDP, 1300), AcceptAndLatched(a(SDP)));
    }

    #[test]
    fn relatch_forgets_an_ice_nomination() {
        let p = LatchPolicy::default();
        let mut l = latch(Some(SDP), p, EndpointLearning::Heuristic);
        l.nominate(a(NAT));
        assert!(l.update(Some(a(OTHER)), p, true, 1200));
        assert!(!l.nominated() && !l.confirmed());
        assert_eq!(l.destination(), Some(a(OTHER)));
    }

    #[test]
    fn new_plan_restarts_the_learning_window() {
        let mut l = latch(None, LatchPolicy::default(), EndpointLearning::Delayed);
        plain(&mut l, NAT, 1010);
        l.update(None, LatchPolicy::default(), false, 3500);
        // Past the first window but inside the second one: still learning.
        assert_eq!(plain(&mut l, OTHER, 4000 + 100), AcceptAndLatched(a(OTHER)));
        assert!(!l.confirmed());
        assert_eq!(plain(&mut l, OTHER, 3500 + W), Accept);
        assert!(l.confirmed());
    }

    #[test]
    fn refusals_are_logged_once_a_minute() {
        let mut l = latch(
            Some(SDP),
            LatchPolicy::default(),
            EndpointLearning::Heuristic,
        );
        assert_eq!(l.note_refusal(5000), Some(1));
        for t in 5001..5100 {
            assert_eq!(l.note_refusal(t), None);
        }
        assert_eq!(l.note_refusal(5000 + LOG_INTERVAL_MS - 1), None);
        assert_eq!(l.note_refusal(5000 + LOG_INTERVAL_MS), Some(101));
        assert_eq!(l.note_refusal(5000 + LOG_INTERVAL_MS + 1), None);
    }

    #[test]
    fn learning_names_are_rtpengines() {
        for (s, l) in [
            ("delayed", EndpointLearning::Delayed),
            ("immediate", EndpointLearning::Immediate),
            ("off", EndpointLearning::Off),
            ("no-learning", EndpointLearning::Off),
            ("heuristic", EndpointLearning::Heuristic),
            ("Heuristic", EndpointLearning::Heuristic),
        ] {
            assert_eq!(EndpointLearning::parse(s), Some(l));
        }
        assert_eq!(EndpointLearning::parse("sometimes"), None);
        assert_eq!(EndpointLearning::default(), EndpointLearning::Heuristic);
        assert_eq!(EndpointLearning::Off.as_str(), "off");
    }
}
