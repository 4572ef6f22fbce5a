//! The call model: `Call` → `Leg` → `Media` → streams (how a call turns into a forwarding
//! plan is in `plan`).

mod ice;
mod keying;
mod plan;
mod profile;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codecs::MediaCodecs;
use crate::core::media_control::MediaControl;
use crate::core::plan::{CallKey, LatchPolicy, PortKey, PortPair, StreamResume};
use crate::core::sdp::{Codec, Direction};
use crate::core::stats::StreamStats;
use crate::core::tap::LegMask;

#[cfg(test)]
pub(super) use self::ice::candidate_priority;
pub(super) use self::ice::{CandidateBase, RemoteIce, HOST_TYPE_PREF};
pub(super) use self::keying::{DtlsMediaState, Keying, SdesState, Setup};
pub(super) use self::profile::TransportProfile;

/// Index of a leg within its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct LegId(pub usize);

/// One call (rtpengine's `call`): every party that shares a SIP Call-ID.
#[derive(Debug)]
pub(super) struct Call {
    pub key: CallKey,
    pub id: String,
    pub created: Instant,
    pub created_us: u64,
    /// Unix seconds of the last offer/answer.
    pub last_signal: u64,
    pub last_signal_at: Instant,
    pub legs: Vec<Leg>,
    /// `delete delay` carried by an offer, used by a later plain `delete`.
    pub delete_delay: Option<Duration>,
    /// Set by `delete` with a delay: media keeps flowing and queries answer until then.
    pub delete_at: Option<Instant>,
    /// Media of the call is copied to the recorder (`record call`, `start recording`).
    pub record: bool,
    /// Recording paused: the recorder writes silence until `start recording`.
    pub record_paused: bool,
    /// `metadata` of recording requests, most recent last.
    pub record_metadata: Vec<String>,
    /// `output-destination` of the last recording request that had one.
    pub record_destination: Option<String>,
    /// Legs whose streams are copied to the interception sink (bit i = leg i), as the sink
    /// last decided. Never reported anywhere.
    pub intercept: LegMask,
    /// `start forwarding` is on (rtpengine's `CALL_FLAG_FORWARDING`).
    pub forwarding: bool,
    /// [`Call::packets_seen`] when the call was last handed to the state store.
    pub saved_packets: u64,
    /// TOS byte of the call's media sockets (`TOS` key of the last offer, else `--tos`).
    pub tos: u8,
    /// Whole-call `block DTMF` / `block media` / `silence media` (no party named).
    pub control: MediaControl,
    /// SRTP is always decrypted and encrypted anew, even between two parties that were
    /// given each other's keys (see [`Call::srtp_passthrough`]): DTMF reports are on, or
    /// media or DTMF was injected into the call.
    pub srtp_recrypt: bool,
}

/// One party of a call (rtpengine's `call_monologue`), known by its SIP tag. A leg created by
/// an offer for the party that has not answered yet is untagged (`tag` empty).
#[derive(Debug)]
pub(super) struct Leg {
    pub tag: String,
    /// Further to-tags that answered for this leg (forked branches).
    pub aliases: Vec<String>,
    pub label: Option<String>,
    /// Indices of this party's m= sections its peer never saw (`sdp-media-remove` on the
    /// party's offer): left out of what goes to the peer, given back rejected in what comes
    /// from it.
    pub hidden_media: Vec<usize>,
    /// The SIP branch this party was offered on (rtpengine: a monologue's `viabranch`). Set
    /// on the callee side of an initial offer that names a `via-branch`: parallel forks of
    /// one INVITE each get their own leg, found again by branch in the answer or `delete`.
    pub via_branch: Option<String>,
    /// A `delete` for this branch alone, with a delay: the leg is removed then.
    pub delete_at: Option<Instant>,
    pub metadata: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// The party this one exchanges media with.
    pub peer: Option<LegId>,
    /// Index into the configured interfaces of the sockets facing this party.
    pub interface: usize,
    pub medias: Vec<Media>,
    /// Version we last wrote into an o= line sent to this party, for `replace: SDP version`.
    pub sdp_version_out: Option<u64>,
    /// Digest of the last SDP sent to this party (written with `sdp_version_out` as its
    /// version): whether the next one differs.
    pub sdp_body_out: Option<u64>,
    /// The o= username and s= name of the first SDP sent to this party: what `replace:
    /// username` and `replace: session-name` write (rtpengine's `sdp_username`,
    /// `sdp_session_name` of a monologue).
    pub sdp_username: Option<String>,
    pub sdp_session_name: Option<String>,
    /// `moh` options this party gave: played to its peer when it puts the peer on hold.
    pub moh: Option<crate::core::request::MohOptions>,
    /// The last SDP this party sent (offer, answer or `publish`): what a subscription to it
    /// mirrors (rtpengine keeps the parsed streams of a monologue for the same purpose).
    pub sdp_in: Option<String>,
    /// Set on a leg created by `subscribe request`: it receives copies of other parties'
    /// media and sends nothing to anyone (rtpengine: a monologue with `subscriptions`).
    pub subscription: Option<Subscription>,
    /// Created by `publish`: media goes to subscribers only, the leg has no peer.
    pub publisher: bool,
    /// `block DTMF` / `block media` / `silence media` of what this party sends.
    pub control: MediaControl,
}

/// What a subscriber leg receives (rtpengine's `call_subscription` list of a monologue with
/// its `attrs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Subscription {
    /// The parties whose media the subscriber receives, in the order of its m= lines.
    pub sources: Vec<LegId>,
    /// Copies are taken after transcoding toward the source's peer (`egress` flag).
    pub egress: bool,
    /// RTCP from the subscriber goes back to the source (`RTCP mirror` flag).
    pub rtcp_mirror: bool,
    /// `subscribe answer` arrived: media flows.
    pub answered: bool,
}

impl Leg {
    pub(super) fn new(tag: &str, created: u64, interface: usize) -> Leg {
        Leg {
            tag: tag.to_owned(),
            aliases: Vec::new(),
            label: None,
            hidden_media: Vec::new(),
            via_branch: None,
            delete_at: None,
            metadata: None,
            created,
            peer: None,
            interface,
            medias: Vec::new(),
            sdp_version_out: None,
            sdp_body_out: None,
            sdp_username: None,
            sdp_session_name: None,
            moh: None,
            sdp_in: None,
            subscription: None,
            publisher: false,
            control: MediaControl::default(),
        }
    }

    pub(super) fn answers_to(&self, tag: &str) -> bool {
        self.tag == tag || self.aliases.iter().any(|a| a == tag)
    }
}

/// One m= line as seen from one party (rtpengine's `call_media`): the sockets facing the
/// party and what the party's SDP said about it.
#[derive(Debug)]
pub(super) struct Media {
    /// 1-based position in the SDP.
    pub index: u32,
    pub kind: String,
    pub protocol: TransportProfile,
    /// The profile the party's previous SDP gave, when it gave one: a re-offer whose
    /// profile did not change keeps the one we chose toward the peer.
    pub protocol_before: Option<TransportProfile>,
    /// The transport profile the last offer toward this party carried (its answer may
    /// change it: `transport-protocol: accept` passes such a change on).
    pub offered_protocol: Option<TransportProfile>,
    /// Local sockets facing this party; `None` while the m= line is rejected (port 0).
    pub ports: Option<PortPair>,
    /// While we write ICE to this party: sockets on the other addresses of the leg's
    /// logical interface, in candidate order (rtpengine binds a stream on every address of
    /// the interface when the media does ICE, one `stream_fd` each). They receive for the
    /// same streams as `ports`; empty without ICE.
    pub alt_ports: Vec<AltPorts>,
    /// The other party's address (from its SDP) that `ports` were opened for; `None` until
    /// an SDP from the other party names one (rtpengine's `endpoint_map` of the media, a
    /// wildcard map until the answer fills it in). When the other party moves, this party
    /// gets new ports (see `Calls::negotiate`).
    pub ports_for: Option<SocketAddr>,
    /// Earlier `ports` of this media and the address each was opened for, newest last: they
    /// still receive for the media's streams (the party sends there until it takes the SDP
    /// with the new ports) and are taken up again when the other party moves back
    /// (rtpengine keeps every `endpoint_map` of a media for the call's lifetime; we keep
    /// [`MAX_RETIRED_PORTS`]).
    pub retired_ports: Vec<(Option<SocketAddr>, PortPair)>,
    /// Where the party's SDP says it receives RTP and RTCP (`None`: not yet known, port 0,
    /// or a zero address meaning hold).
    pub advertised_rtp: Option<SocketAddr>,
    pub advertised_rtcp: Option<SocketAddr>,
    /// The party offered or accepted RTP/RTCP multiplexing.
    pub sdp_rtcp_mux: bool,
    /// RTCP to and from this party travels on the RTP port.
    pub rtcp_mux: bool,
    /// We offered rtcp-mux to this party; its answer decides `rtcp_mux`.
    pub rtcp_mux_offered: bool,
    /// The offer to this party said to multiplex towards its offerer whatever this party
    /// answers (`rtcp-mux: accept/demux/require`; rtpengine's `RTCP_MUX_OVERRIDE`). Kept
    /// per receiver, so each branch of a forked offer has its own.
    pub rtcp_mux_accept: bool,
    pub direction: Direction,
    /// First codec of the party's list, `PCMU/8000` style.
    pub codec: Option<String>,
    /// Every codec of the party's m= line, for decoding copies (recording).
    pub codecs: Vec<Codec>,
    pub ptime: Option<u32>,
    /// Whether the party's SDP carried ICE attributes.
    pub ice_seen: bool,
    /// ICE with this party (rtpengine's `MEDIA_ICE` of the `call_media`): what its own
    /// last SDP said, or what the `ICE` key of an offer toward it decided; an offer without
    /// the key keeps it once the media exists (the first offer copies the offerer's).
    pub ice: bool,
    /// Our ICE credentials towards this party, created once and kept across re-INVITEs.
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// The last SDP we wrote to this party carried our ICE credentials: we answer its STUN
    /// connectivity checks (ICE-lite).
    pub ice_active: bool,
    /// That SDP did not say `a=ice-lite`: we are a full ICE agent toward this party and
    /// check its candidates ourselves (rtpengine's default; lite toward WebRTC).
    pub ice_full: bool,
    /// We sent the offer to this party (it answers us): we control ICE toward it.
    pub ice_we_offered: bool,
    /// `ICE-lite` settled whether we are lite toward this party (rtpengine's
    /// `ICE_LITE_SELF`); `None`: lite toward WebRTC (`UDP/TLS/…`), full elsewhere.
    pub ice_lite_self: Option<bool>,
    /// Trickle ICE with this party (its SDP said so, or `trickle ICE` in an offer toward
    /// it): our ICE comes with `a=ice-options:trickle` and `a=end-of-candidates`.
    pub trickle_ice: bool,
    /// `ICE: optional` found both parties doing ICE: they do it between themselves, their
    /// ICE and keying pass to each other, ours only adds candidates below theirs, and the
    /// media is relayed untouched (rtpengine's PASSTHRU media flag; it stays).
    pub ice_passthrough: bool,
    /// The party's own ICE: credentials, `a=ice-lite`, UDP candidates.
    pub remote_ice: Option<RemoteIce>,
    pub latch: LatchPolicy,
    /// The advertised address changed: the next plan asks the worker to learn again.
    pub relatch: bool,
    /// SDES keys facing this party.
    pub sdes: SdesState,
    /// DTLS-SRTP facing this party.
    pub dtls: DtlsMediaState,
    /// The hash of the fingerprint we wrote to this party, kept for every later SDP to it
    /// (rtpengine's `fp_hash_func` of a `call_media`).
    pub fp_hash: Option<crate::core::dtls::HashFunction>,
    /// Which SRTP keying this party does with us (rtpengine's `DTLS` and `SDES` media
    /// flags): set by its own SDP, and by the first offer that gives it SRTP.
    pub keying: Keying,
    /// The party's `a=mid`, echoed in an answer to it that lacks one.
    pub mid: Option<String>,
    pub rtp_stats: Arc<StreamStats>,
    pub rtcp_stats: Arc<StreamStats>,
    /// Codec negotiation state and the transcoder for RTP from this party.
    pub codec_state: MediaCodecs,
    /// Media being played toward this party (control-plane record of the worker's player).
    pub playing: Option<Playing>,
    /// Set when the media was rebuilt from stored state: where its RTP and RTCP streams
    /// resume. Taken by the next plan.
    pub resume: Option<Box<[StreamResume; 2]>>,
    /// On a subscriber's media: the source leg and the index of its media copied here.
    pub source: Option<(LegId, usize)>,
    /// On a subscriber's media: transcoder for the copies (the subscriber accepted another
    /// codec than the source sends).
    pub feed: Option<crate::core::transcode::TranscodeSpec>,
    /// What happens to the party's media instead of relaying it (`media echo`).
    pub echo: Echo,
    /// This media's part in a T.38 fax gateway (`T.38: decode`/`force`); `None`: relayed.
    pub t38: Option<T38Side>,
}

/// One party's side of a T.38 gateway (rtpengine: the `t38_gateway` shared by the
/// `t38_media` and the `pcm_media` of a call).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum T38Side {
    /// The party speaks T.38 over UDPTL; the gateway runs with these options.
    Fax(crate::core::t38::T38Options),
    /// The party faxes over audio; the gateway sends and receives this codec (settled by
    /// the answer).
    Audio(Option<Codec>),
}

/// `media echo` on one party's media (rtpengine's `ECHO`/`BLACKHOLE` media flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Echo {
    /// Relayed to the peer, the normal case.
    #[default]
    Relay,
    /// Sent back to the party itself.
    Reflect,
    /// Counted and dropped.
    Blackhole,
}

/// What a player toward a party was started with, to answer `stop media` with the position,
/// to stop music on hold on resume, and to resume playing after a takeover.
#[derive(Debug, Clone)]
pub(super) struct Playing {
    pub started: Instant,
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Passes of the file (`None`: until stopped).
    pub repeat: Option<u32>,
    /// Started by hold detection (stopped by the resume).
    pub moh: bool,
    /// What is played; blobs are not kept (they travel in the request and can be large).
    pub source: Option<Arc<crate::core::request::MediaSource>>,
}

impl Playing {
    /// Where playback stands at `now`: position in the file (ms) and the passes left
    /// including the current one (`None`: until stopped), or `None` when it has ended.
    pub(super) fn progress(&self, now: Instant) -> Option<(u64, Option<u32>)> {
        if self.duration_ms == 0 {
            return None;
        }
        let played = self.start_ms + now.saturating_duration_since(self.started).as_millis() as u64;
        let passes = played / self.duration_ms;
        let left = match self.repeat {
            Some(r) => Some(u64::from(r.max(1)).checked_sub(passes).filter(|&l| l > 0)? as u32),
            None => None,
        };
        Some((played % self.duration_ms, left))
    }

    /// Position in the file now, ms (the worker paces in real time from `started`).
    pub(super) fn position_ms(&self, now: Instant) -> u64 {
        if self.duration_ms == 0 {
            return 0;
        }
        let played = self.start_ms + now.saturating_duration_since(self.started).as_millis() as u64;
        let end = self.repeat.map(|r| u64::from(r.max(1)) * self.duration_ms);
        match end {
            Some(end) if played >= end => self.duration_ms,
            _ => played % self.duration_ms,
        }
    }
}

/// A media's sockets on another address of its logical interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AltPorts {
    /// Index of that address in the configured interfaces.
    pub interface: usize,
    pub ports: PortPair,
}

/// What an SDP from the other party does to a media's ports (see `Media::move_for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    Stay,
    /// Back to `retired_ports[k]`.
    Back(usize),
    New,
}

/// The same party address for the ports' sake: a zero address (hold) compares by port only.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    if a.ip().is_unspecified() || b.ip().is_unspecified() {
        a.port() == b.port()
    } else {
        a == b
    }
}

/// Earlier port pairs a media keeps after the other party moved (`Media::retired_ports`):
/// enough for a party that moves and comes back, or a re-INVITE glare, while a call whose
/// party keeps moving does not pile up sockets (rtpengine keeps them all until the call
/// ends).
pub(super) const MAX_RETIRED_PORTS: usize = 2;

impl Media {
    pub(super) fn new(index: u32, kind: &str, protocol: &str) -> Media {
        Media {
            index,
            kind: kind.to_owned(),
            protocol: TransportProfile::parse(protocol),
            protocol_before: None,
            fp_hash: None,
            keying: Keying::default(),
            offered_protocol: None,
            ports: None,
            alt_ports: Vec::new(),
            ports_for: None,
            retired_ports: Vec::new(),
            advertised_rtp: None,
            advertised_rtcp: None,
            sdp_rtcp_mux: false,
            rtcp_mux: false,
            rtcp_mux_offered: false,
            rtcp_mux_accept: false,
            direction: Direction::SendRecv,
            codec: None,
            codecs: Vec::new(),
            ptime: None,
            ice_seen: false,
            ice: false,
            ice_ufrag: None,
            ice_pwd: None,
            ice_active: false,
            ice_full: false,
            ice_we_offered: false,
            ice_lite_self: None,
            trickle_ice: false,
            ice_passthrough: false,
            remote_ice: None,
            latch: LatchPolicy::default(),
            relatch: false,
            sdes: SdesState::default(),
            dtls: DtlsMediaState::default(),
            mid: None,
            rtp_stats: Arc::default(),
            rtcp_stats: Arc::default(),
            codec_state: MediaCodecs::default(),
            playing: None,
            resume: None,
            source: None,
            feed: None,
            echo: Echo::Relay,
            t38: None,
        }
    }

    /// What an SDP from the other party that receives at `ep` does to this media's ports
    /// (rtpengine's `__get_endpoint_map`): they stay while the other party stays, or when
    /// `latched`; earlier ports come back when it returns to where they were opened for;
    /// else new ports.
    pub(super) fn move_for(&self, ep: SocketAddr, latched: bool) -> Move {
        let (Some(_), Some(old)) = (self.ports, self.ports_for) else {
            return Move::Stay;
        };
        if latched || same_endpoint(old, ep) {
            return Move::Stay;
        }
        match self
            .retired_ports
            .iter()
            .rposition(|(e, _)| e.is_some_and(|e| same_endpoint(e, ep)))
        {
            Some(k) => Move::Back(k),
            None => Move::New,
        }
    }

    /// Carry out `mv` (see [`Media::move_for`]); after [`Move::New`] the caller puts the new
    /// pair in `ports`. New sockets toward a party doing ICE are an ICE restart: new
    /// credentials, and the sockets on the other addresses are opened again.
    pub(super) fn move_ports(&mut self, mv: Move) {
        let back = match mv {
            Move::Stay => return,
            Move::Back(k) => Some(self.retired_ports.remove(k)),
            Move::New => None,
        };
        if let Some(old) = self.ports.take() {
            self.retired_ports.push((self.ports_for.take(), old));
        }
        if let Some((ep, pair)) = back {
            self.ports = Some(pair);
            self.ports_for = ep;
        }
        let excess = self.retired_ports.len().saturating_sub(MAX_RETIRED_PORTS);
        self.retired_ports.drain(..excess);
        self.alt_ports.clear();
        self.ice_ufrag = None;
        self.ice_pwd = None;
    }

    /// The other party's SDP says it receives at `ep`: ports not yet opened for an address
    /// (the offerer's, until the answer) are now for that one; a zero address learns the
    /// real one.
    pub(super) fn opened_for(&mut self, ep: SocketAddr) {
        if self.ports.is_none() {
            return;
        }
        match self.ports_for {
            None => self.ports_for = Some(ep),
            Some(old) if old.ip().is_unspecified() && same_endpoint(old, ep) => {
                self.ports_for = Some(ep);
            }
            Some(_) => {}
        }
    }

    /// The sockets that receive for this media's streams besides `ports`: those on the
    /// other addresses of the interface (ICE), then the retired ones.
    fn alternate_ports(&self) -> impl Iterator<Item = PortPair> + '_ {
        self.alt_ports
            .iter()
            .map(|a| a.ports)
            .chain(self.retired_ports.iter().map(|(_, p)| *p))
    }

    /// Tell the quality counters the negotiated codec (clock rate, E-model impairment).
    fn configure_quality(&self) {
        for stats in [&self.rtp_stats, &self.rtcp_stats] {
            stats.quality.configure(self.codec.as_deref());
        }
    }
}

impl Call {
    pub(super) fn leg_by_tag(&self, tag: &str) -> Option<LegId> {
        self.legs.iter().position(|l| l.answers_to(tag)).map(LegId)
    }

    /// The party labelled `label` (rtpengine's `call->labels`): the one labelled last when
    /// an offer and an answer gave the same label.
    pub(super) fn leg_by_label(&self, label: &str) -> Option<LegId> {
        self.legs
            .iter()
            .rposition(|l| l.label.as_deref() == Some(label))
            .map(LegId)
    }

    /// Label party `id` (`set-label`); a label names one party, so another party that had
    /// it loses it, as the label table of rtpengine points at the newest party only.
    pub(super) fn set_label(&mut self, id: LegId, label: &str) {
        for (i, l) in self.legs.iter_mut().enumerate() {
            if i != id.0 && l.label.as_deref() == Some(label) {
                l.label = None;
            }
        }
        self.leg_mut(id).label = Some(label.to_owned());
    }

    /// The leg offered on SIP branch `branch` (rtpengine's `call->viabranches`).
    pub(super) fn leg_by_branch(&self, branch: &str) -> Option<LegId> {
        self.legs
            .iter()
            .position(|l| l.via_branch.as_deref() == Some(branch))
            .map(LegId)
    }

    /// Take leg `id` out of the call (one branch of a forked call is deleted). Every
    /// reference to a later leg moves down by one; references to `id` itself are dropped, and
    /// a leg that was peered with it turns to another leg still peered with it, if any.
    /// The caller applies a new plan, which closes the leg's sockets.
    pub(super) fn remove_leg(&mut self, id: LegId) -> Leg {
        let leg = self.legs.remove(id.0);
        let fix = |l: LegId| match l.0.cmp(&id.0) {
            std::cmp::Ordering::Less => Some(l),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(LegId(l.0 - 1)),
        };
        for l in &mut self.legs {
            l.peer = l.peer.and_then(fix);
            if let Some(s) = &mut l.subscription {
                s.sources = s.sources.iter().filter_map(|&x| fix(x)).collect();
            }
            for m in &mut l.medias {
                m.source = m.source.and_then(|(x, mi)| fix(x).map(|x| (x, mi)));
            }
        }
        // A party left without a peer falls back to another branch that still points at it
        // (the most recent one), so early media of the remaining forks keeps reaching it.
        for i in 0..self.legs.len() {
            if self.legs[i].peer.is_none() && leg.peer.and_then(fix) == Some(LegId(i)) {
                self.legs[i].peer = (0..self.legs.len())
                    .rev()
                    .find(|&j| j != i && self.legs[j].peer == Some(LegId(i)))
                    .map(LegId);
            }
        }
        if id.0 < 64 {
            let below = self.intercept & ((1u64 << id.0) - 1);
            let above = self.intercept.checked_shr(id.0 as u32 + 1).unwrap_or(0) << id.0;
            self.intercept = below | above;
        }
        leg
    }

    pub(super) fn leg(&self, id: LegId) -> &Leg {
        &self.legs[id.0]
    }

    pub(super) fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        &mut self.legs[id.0]
    }

    /// Every local port the call holds.
    pub(super) fn port_keys(&self) -> Vec<PortKey> {
        self.legs
            .iter()
            .flat_map(|l| l.medias.iter())
            .flat_map(|m| {
                m.ports
                    .iter()
                    .chain(m.alt_ports.iter().map(|a| &a.ports))
                    .chain(m.retired_ports.iter().map(|(_, p)| p))
            })
            .flat_map(|p| [p.rtp.key, p.rtcp.key])
            .collect()
    }

    /// Unix milliseconds of the most recent packet on any stream, 0 if none.
    pub(super) fn last_packet_ms(&self) -> u64 {
        self.legs
            .iter()
            .flat_map(|l| l.medias.iter())
            .flat_map(|m| [&m.rtp_stats, &m.rtcp_stats])
            .map(|s| s.last_packet_ms.load(std::sync::atomic::Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// True when the call is on hold: no party both sends and receives at a known address.
    pub(super) fn all_on_hold(&self) -> bool {
        !self.legs.iter().flat_map(|l| l.medias.iter()).any(|m| {
            m.ports.is_some() && m.direction == Direction::SendRecv && m.advertised_rtp.is_some()
        })
    }
}
