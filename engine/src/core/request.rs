//! Typed requests the engine executes. The ng front end (bencode, Kamailio flag strings)
//! turns datagrams into these; so can any other front end or a test.

use std::net::IpAddr;
use std::time::Duration;

/// Address family selector (`address family: IP4|IP6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ip4,
    Ip6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::Ip4
        } else {
            Family::Ip6
        }
    }
}

/// `ICE` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IceMode {
    /// Keep ICE if the offer had it (ours replaces theirs); the default.
    #[default]
    Default,
    /// Strip all ICE attributes.
    Remove,
    /// Strip theirs and add ours even if the offer had none.
    Force,
    /// `optional`: ours even if the SDP had none; when it had some, the party's ICE is kept
    /// and ours goes below it, and the media passes through us untouched (rtpengine's
    /// passthrough mode: ICE between the parties themselves, we are one candidate).
    Optional,
    /// `force-relay`: as `optional`, but our candidates are relay candidates and the
    /// party's c=, m=, `a=rtcp` and `a=rtcp-mux` stay as they are: media goes through us
    /// only where ICE picks our candidate.
    ForceRelay,
}

impl IceMode {
    /// `optional` and `force-relay`: the parties' own ICE passes through when both do it.
    pub fn passes_through(self) -> bool {
        matches!(self, IceMode::Optional | IceMode::ForceRelay)
    }
}

/// `ICE-lite` key (rtpengine's `ice_lite_option`): the sides of an offer toward which we
/// are ICE-lite. `forward` is the side the offer goes to, `backward` the offerer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceLite {
    /// Full agent toward both sides.
    Off,
    Forward,
    Backward,
    Both,
}

impl IceLite {
    /// Parse a value of the key (`forward`, `backward`, `both`, `off`).
    pub fn parse(s: &str) -> Option<IceLite> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(IceLite::Off),
            "forward" => Some(IceLite::Forward),
            "backward" => Some(IceLite::Backward),
            "both" => Some(IceLite::Both),
            _ => None,
        }
    }

    /// Whether we are lite toward (the receiver of the offer, the offerer).
    pub fn sides(self) -> (bool, bool) {
        match self {
            IceLite::Off => (false, false),
            IceLite::Forward => (true, false),
            IceLite::Backward => (false, true),
            IceLite::Both => (true, true),
        }
    }
}

/// `DTLS` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsMode {
    /// Offer DTLS (`a=setup:actpass`) towards SRTP sides and answer as RFC 5763 says.
    #[default]
    Default,
    /// `off`/`no`/`disable`: no DTLS-SRTP at all.
    Off,
    /// Take the passive role (`a=setup:passive`, we are the DTLS server).
    Passive,
    /// Take the active role (`a=setup:active`, we are the DTLS client).
    Active,
}

/// `OSRTP` key (RFC 8643 opportunistic SRTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Osrtp {
    /// `offer`/`offer-RFC`/`offer-legacy`: offer SRTP on an RTP/AVP m= line.
    pub offer: bool,
    /// `accept`/`accept-RFC`/`accept-legacy`: treat an RTP/AVP offer with a=crypto as SRTP.
    pub accept: bool,
}

/// `replace` list entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replace {
    /// `origin`: o= address becomes the engine's.
    pub origin: bool,
    /// `origin-full`: o= username, session id and address replaced.
    pub origin_full: bool,
    /// `username`: o= username replaced.
    pub username: bool,
    /// `session-name`: s= replaced.
    pub session_name: bool,
    /// `SDP version`: bump o= version when the SDP changed.
    pub sdp_version: bool,
    /// `force-increment-sdp-ver`: bump o= version always.
    pub force_increment_sdp_ver: bool,
    /// `zero-address`: replace a c=0.0.0.0 (old-style hold) with the engine's address;
    /// without it the zero address is passed on.
    pub zero_address: bool,
    /// `session-connection`: always rewrite the session-level c= (without it, as in rtpengine
    /// 10.5, only when a media section of that session has no c= of its own).
    pub session_connection: bool,
}

/// `rtcp-mux` list entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpMux {
    pub offer: bool,
    pub require: bool,
    pub demux: bool,
    pub accept: bool,
    pub reject: bool,
}

/// Flags from the `flags` list that change how the engine behaves for plain RTP calls.
/// Flags that belong to features handled elsewhere are kept as strings in `other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub trust_address: bool,
    pub sip_source_address: bool,
    pub asymmetric: bool,
    pub strict_source: bool,
    pub media_handover: bool,
    /// `endpoint-learning` (key, or an `endpoint-learning-…` flag): how this party's
    /// address is learned; `None`: the daemon's `--endpoint-learning`.
    pub endpoint_learning: Option<crate::core::latch::EndpointLearning>,
    pub port_latching: bool,
    pub no_port_latching: bool,
    /// `trickle ICE`: announce trickle ICE toward the receiver of an offer.
    pub trickle_ice: bool,
    pub record_call: bool,
    pub loop_protect: bool,
    pub fatal: bool,
    pub fast: bool,
    pub new_branch: bool,
    pub original_sendrecv: bool,
    pub full_rtcp_attribute: bool,
    pub no_rtcp_attribute: bool,
    pub all: bool,
    pub reset: bool,
    pub generate_mid: bool,
    pub strip_extmap: bool,
    /// `egress` (`subscribe request`): copy what the source's peer receives.
    pub egress: bool,
    /// `RTCP mirror` (`subscribe request`): the subscriber's RTCP goes back to the source.
    pub rtcp_mirror: bool,
    /// `SIPREC` (`subscribe request`): label the media and list them in the reply.
    pub siprec: bool,
    /// `allow transcoding` (`subscribe answer`): accept an answer that needs a transcoder.
    pub allow_transcoding: bool,
    /// Recognised flags of features this build does not act on yet, and unknown flags;
    /// the front end logs them once per request.
    pub other: Vec<String>,
}

/// The `codec` dictionary and the `codec-*` flags (rtpengine's codec options in
/// `sdp_ng_flags`). Every list holds codec specs as given:
/// `name[/clock[/channels[/bitrate[/ptime[/fmtp]]]]]`, or `all`/`full` where meaningful.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodecOptions {
    /// Remove from the SDP passed on (`all`/`full`: every codec not in `except`/`offer`).
    pub strip: Vec<String>,
    /// Keep these (exempt from `strip: all`) and move them to the front in this order.
    pub offer: Vec<String>,
    /// Keep these (exempt from `strip: all`), original order.
    pub except: Vec<String>,
    /// Add these if missing and transcode to them (offer only).
    pub transcode: Vec<String>,
    /// Hide from the answerer but still accept from the offerer for transcoding (offer only).
    pub mask: Vec<String>,
    /// Offerer codecs the answer keeps (transcoding) even if the answerer chose another.
    pub accept: Vec<String>,
    /// `mask` plus `accept`.
    pub consume: Vec<String>,
    /// Encoder parameters (bitrate, ptime) for codecs we encode to.
    pub set: Vec<String>,
    /// Left alone by codec handling.
    pub ignore: Vec<String>,
    /// `always transcode` flag: the answer gives the offerer its own preferred codec and
    /// transcodes (= `accept: [all]`).
    pub always_transcode: bool,
    /// `single codec` flag: the answer carries only the chosen codec (plus telephone-event).
    pub single_codec: bool,
    /// `detect DTMF` flag: in-band DTMF from a side without telephone-event is detected
    /// and sent as telephone-event to a side that has it (offered to it if missing).
    pub detect_dtmf: bool,
}

impl CodecOptions {
    /// True when no codec option was given (SDP codecs pass through untouched).
    pub fn is_empty(&self) -> bool {
        *self == CodecOptions::default()
    }

    /// Whether the offer asks for a transcoder (codecs added, masked or accepted for
    /// transcoding, or `always transcode`): what `--max-transcoding-load` refuses.
    pub fn asks_for_transcoding(&self) -> bool {
        self.always_transcode
            || !self.transcode.is_empty()
            || !self.mask.is_empty()
            || !self.accept.is_empty()
            || !self.consume.is_empty()
    }
}

/// `offer` / `answer` (rtpengine's `sdp_ng_flags` for those commands).
#[derive(Debug, Clone, Default)]
pub struct OfferAnswer {
    pub call_id: String,
    pub from_tag: String,
    /// `from-tags` list (and `from-tags-…` flags): the parties a `subscribe request` selects.
    pub from_tags: Vec<String>,
    /// Required for `answer`; on an `offer` it marks a re-INVITE from inside the dialogue.
    pub to_tag: Option<String>,
    pub via_branch: Option<String>,
    /// The SDP body exactly as received.
    pub sdp: String,
    pub flags: Flags,
    pub replace: Replace,
    /// `direction`: interface names (or `internal`/`external`), first = the sender's side.
    pub direction: Vec<String>,
    /// `from-interface` / `to-interface` / `interface`.
    pub from_interface: Option<String>,
    pub to_interface: Option<String>,
    /// `received-from`: the SIP source address.
    pub received_from: Option<IpAddr>,
    /// `media address`: overrides SDP and SIP addresses.
    pub media_address: Option<IpAddr>,
    pub address_family: Option<Family>,
    pub ice: IceMode,
    /// `ICE-lite` (offers only): on which side we are an ICE-lite agent from now on;
    /// `None` keeps what was settled (by default lite toward WebRTC, full elsewhere).
    pub ice_lite: Option<IceLite>,
    pub rtcp_mux: RtcpMux,
    /// `transport-protocol`, verbatim (`RTP/AVP`, `RTP/SAVP`, ...).
    pub transport_protocol: Option<String>,
    pub label: Option<String>,
    pub set_label: Option<String>,
    pub to_label: Option<String>,
    pub metadata: Option<String>,
    /// `delete delay` from an offer applies to the call's eventual delete.
    pub delete_delay: Option<Duration>,
    /// `moh` dictionary: music the engine plays to the other party when this one holds.
    pub moh: Option<MohOptions>,
    /// `ptime` (ms): packetisation toward the answerer (repacketised when it differs).
    pub ptime: Option<u32>,
    /// `ptime-reverse` (ms): packetisation toward the offerer.
    pub ptime_reverse: Option<u32>,
    /// `codec` dictionary and `codec-*` / `always transcode` / `single codec` flags.
    pub codec: CodecOptions,
    /// `TOS` for the media sockets.
    pub tos: Option<u8>,
    /// `sdp-attr` dictionary and `sdp-attr-…` flags: attribute edits on the SDP sent on.
    pub sdp_attr: crate::core::sdp::SdpManipulations,
    /// `sdp-media-remove` (offers): m= sections of these media types (`audio`, `video`,
    /// …, or `other` for any type not in that list) are left out of the SDP passed on; the
    /// answer gives them back to the offerer rejected (port 0).
    pub sdp_media_remove: Vec<String>,
    /// `output-destination`: the file name stem of the call's recording.
    pub output_destination: Option<String>,
    /// `media echo`: reflect or drop media instead of relaying it.
    pub media_echo: Option<MediaEcho>,
    /// `record call: yes|no` key (the flag form sets `flags.record_call`).
    pub record_call: Option<bool>,
    /// `SDES` list entries / `SDES-…` flags that shape the crypto lists.
    pub sdes: crate::core::sdes::SdesFlags,
    /// `SDES: off` (`SDES-off`): offer no `a=crypto` lines.
    pub sdes_off: bool,
    pub dtls: DtlsMode,
    /// `DTLS-fingerprint` hash name as given (`sha-256` is what this build writes).
    pub dtls_fingerprint: Option<String>,
    /// `DTLS-reverse: passive`: toward the party sending this SDP (an offerer that leaves
    /// the role to us with `actpass`), take the passive role instead of the active one.
    pub dtls_reverse_passive: bool,
    pub osrtp: Osrtp,
    /// `block-DTMF` flag (with the `DTMF-security` mode, if given): DTMF from the party
    /// sending this SDP is blocked.
    pub block_dtmf: Option<BlockDtmfOptions>,
    /// `inject-DTMF` flag: accepted; `play DTMF` works on every call without it.
    pub inject_dtmf: bool,
    /// `T.38` list and `T.38-…` flags (offers only): the fax gateway.
    pub t38: crate::core::t38::T38Flags,
}

/// `media echo` (rtpengine `enum media_echo_opt`): what happens to the media of the two
/// parties of an offer. "Forward" is the offer's direction: the offerer's media goes to the
/// answerer, so `forward` reflects the answerer's media back to the answerer (and drops the
/// offerer's), `backward` reflects the offerer's media back to the offerer (and drops the
/// answerer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaEcho {
    /// `blackhole`/`sinkhole`: both parties' media is dropped.
    Blackhole,
    /// `forward`/`fwd`/`fw`: the receiver of the SDP hears itself, the sender's media is dropped.
    Forward,
    /// `backward(s)`/`reverse`/`back`/`bkw`/`bk`: the sender of the SDP hears itself, the
    /// receiver's media is dropped.
    Backward,
    /// `both`: each party hears itself.
    Both,
}

/// What `start recording`, `stop recording` and `pause recording` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingAction {
    /// Start, or resume after a pause.
    #[default]
    Start,
    /// Finalize the files.
    Stop,
    /// Keep the timeline, write silence (`pause recording`, or `stop recording` with the
    /// `pause` flag).
    Pause,
}

/// Where played media comes from (ng `file`, `blob`/`blob64`, `db-id`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaSource {
    /// A path on the daemon's host.
    File(String),
    /// The file's bytes, carried in the request.
    #[serde(with = "crate::core::state::b64")]
    Blob(Vec<u8>),
    /// A media library id (HTTP `POST /media`).
    DbId(String),
}

/// Which parties `play media` / `stop media` address: the party a media control command
/// would name (`label`/`from-label`, `address`, `from-tag`, or `all`), and also the party
/// of `to-tag` / `to-label` (ngmedia plays to both when both are named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartySelector {
    pub party: ControlTarget,
    pub to_tag: Option<String>,
    pub to_label: Option<String>,
}

/// `play media` (rtpengine's `call_play_media_ng`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayMedia {
    pub call_id: String,
    /// The selected parties receive the media.
    pub target: PartySelector,
    pub source: Option<MediaSource>,
    /// `repeat-times`: how often to play the file (default once).
    pub repeat_times: Option<u32>,
    /// `start-pos` (ms into the file).
    pub start_pos_ms: Option<u64>,
    /// `repeat-duration` (ms): stop after this long.
    pub repeat_duration_ms: Option<u64>,
}

/// `stop media`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopMedia {
    pub call_id: String,
    pub target: PartySelector,
}

/// How music on hold is signalled (`moh.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MohMode {
    #[default]
    SendOnly,
    SendRecv,
    Reflect,
}

/// The `moh` dictionary of an offer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MohOptions {
    pub source: Option<MediaSource>,
    pub mode: MohMode,
    /// `connection: zero`.
    pub connection_zero: bool,
}

/// `start recording` / `stop recording` / `pause recording`.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub action: RecordingAction,
    /// `metadata`: free text stored in the recording's metadata.
    pub metadata: Option<String>,
    /// `output-destination`: file name stem for the recording.
    pub output_destination: Option<String>,
}

/// `delete`.
#[derive(Debug, Clone, Default)]
pub struct Delete {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub via_branch: Option<String>,
    /// `delete delay` in the request; `None` = the configured default, zero = now.
    pub delete_delay: Option<Duration>,
    pub flags: Flags,
}

/// `query`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
}

/// `list`.
#[derive(Debug, Clone)]
pub struct List {
    /// Maximum number of call-ids returned (rtpengine default 32).
    pub limit: usize,
}

impl Default for List {
    fn default() -> Self {
        List { limit: 32 }
    }
}

/// Which party a media control command addresses (rtpengine's `media_block_match`):
/// `label`, else `address`, else `from-tag`; none of them (or `all`) means the whole call.
/// A `to-tag` is not a selector for these commands, as in rtpengine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlTarget {
    pub from_tag: Option<String>,
    pub label: Option<String>,
    /// `address`: the party whose first media stream is advertised at this address.
    pub address: Option<String>,
    /// `all` key or flag: explicitly the whole call (and, for the `un…` commands, every
    /// party's own setting too).
    pub all: bool,
    /// `set-label` (or `to-label` on the commands that do not read it as a selector): the
    /// new label of the party selected (rtpengine's `media_block_match`).
    pub set_label: Option<String>,
    /// `block`/`silence media` of one media flow: the party receiving it, by `to-tag` or
    /// `to-label` (only with a selected party).
    pub to_tag: Option<String>,
    pub to_label: Option<String>,
    /// `all` with `offer-answer`, `except-offer-answer` or `flows`: the selected party's
    /// flows of that kind.
    pub flows: Option<FlowSet>,
}

/// The media flows of one party an `all=` keyword names (rtpengine's `ALL_OFFER_ANSWER`,
/// `ALL_NON_OFFER_ANSWER`, `ALL_FLOWS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSet {
    /// The flow toward the peer of the offer/answer.
    OfferAnswer,
    /// The flows toward subscribers.
    ExceptOfferAnswer,
    /// Both.
    All,
}

/// `block DTMF` options (the `DTMF-security` key and the replacement's parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDtmfOptions {
    /// `DTMF-security` (default `drop`).
    pub mode: Option<crate::core::media_control::BlockDtmf>,
    /// `frequency`: the replacement tone of mode `tone`.
    pub frequency: Option<u32>,
    /// `digit`/`code`: the replacement digit of mode `DTMF` (event code).
    pub digit: Option<u8>,
    /// `volume`: level of the replacement tone or digit, -dBm0 (0–63).
    pub volume: Option<u8>,
    /// `frequencies` (or `frequency` as a list): tones used in turn, one per digit.
    pub frequencies: Vec<u32>,
    /// `trigger` and its companions: blocking switched on and off by digits.
    pub trigger: Option<crate::core::dtmf_security::DtmfTrigger>,
    /// `delay-buffer` (ms): the party's media is held this long (0 ends the delay).
    pub delay_buffer: Option<u32>,
    /// `DTMF-delay` (ms): the party's digits are played this much later.
    pub dtmf_delay: Option<u32>,
}

/// The media control commands (rtpengine's `call_block_dtmf_ng` and siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAction {
    BlockDtmf(BlockDtmfOptions),
    /// `delay-buffer` may change the party's delay (0 ends it, sending what it holds).
    UnblockDtmf {
        delay_buffer: Option<u32>,
    },
    BlockMedia,
    UnblockMedia,
    SilenceMedia,
    UnsilenceMedia,
}

/// `block DTMF`, `unblock DTMF`, `block media`, `unblock media`, `silence media`,
/// `unsilence media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaControlRequest {
    pub call_id: String,
    pub target: ControlTarget,
    pub action: ControlAction,
}

/// `play DTMF` (rtpengine's `call_play_dtmf_ng`): the selected party is the one that
/// "presses" the digit; its peer receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayDtmf {
    pub call_id: String,
    pub target: ControlTarget,
    /// `code`/`digit`: a one-character string (`0`–`9`, `*`, `#`, `A`–`D`) or an event
    /// code 0–15, as given (`None`: missing).
    pub code: Option<i64>,
    /// `duration` in ms (default 250, clamped to 100–5000).
    pub duration_ms: Option<i64>,
    /// `volume` in dBm0, either sign (default -10 dBm0 here).
    pub volume: Option<i64>,
    /// `pause` in ms after the digit (default 100, clamped to 100–5000).
    pub pause_ms: Option<i64>,
}
