//! The persisted form of a call: everything another engine (or this one after a restart)
//! needs to relay it on the same ports — legs, media, local ports, latched peers, SRTP keys
//! and indexes, codec choices, counters. Versioned JSON, kept apart from the in-memory model
//! (`calls::persist` converts) so the model can change without breaking stored calls.
//!
//! Interception state is deliberately absent: which streams are tapped is decided again by
//! the interception sink of whichever engine holds the call.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::calls::CodecState;
use super::dtls::{DtlsKeys, DtlsRole, Fingerprint, HashFunction};
use super::media_control::MediaControl;
use super::plan::LatchPolicy;
use super::request::{MediaSource, MohOptions};
use super::sdes::CryptoAttr;
use super::sdp::{Codec, Direction};
use super::stats::StreamCounters;
use super::t38::T38Options;

/// Format version written by this build. A reader accepts every version up to its own.
pub const STATE_VERSION: u32 = 1;

/// Why a stored call could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("malformed call state: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("call state version {0} is newer than this build understands ({STATE_VERSION})")]
    TooNew(u32),
}

/// One call as stored (rtpengine: the `json` call object it keeps in Redis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    pub version: u32,
    pub call_id: String,
    /// Unix microseconds the call was created.
    pub created_us: u64,
    /// Unix microseconds of the last offer/answer.
    pub last_signal_us: u64,
    /// Unix milliseconds when a delayed `delete` ends the call.
    #[serde(default)]
    pub delete_at_ms: Option<u64>,
    #[serde(default)]
    pub delete_delay_ms: Option<u64>,
    #[serde(default)]
    pub record: bool,
    #[serde(default)]
    pub record_paused: bool,
    #[serde(default)]
    pub record_metadata: Vec<String>,
    #[serde(default)]
    pub record_destination: Option<String>,
    #[serde(default)]
    pub forwarding: bool,
    /// Whole-call media control (`block DTMF`, `block media`, `silence media`).
    #[serde(default, skip_serializing_if = "MediaControl::is_default")]
    pub control: MediaControl,
    /// The call's own `TOS` (an offer's key); `None`: the engine's `--tos`.
    #[serde(default)]
    pub tos: Option<u8>,
    /// SRTP is decrypted and encrypted anew on every stream (something was injected).
    #[serde(default)]
    pub srtp_recrypt: bool,
    pub legs: Vec<LegState>,
}

/// One party (rtpengine `call_monologue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegState {
    pub tag: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// m= sections the peer never saw (`sdp-media-remove`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_media: Vec<usize>,
    #[serde(default)]
    pub via_branch: Option<String>,
    /// Unix milliseconds when a delayed `delete` of this branch ends it.
    #[serde(default)]
    pub delete_at_ms: Option<u64>,
    #[serde(default)]
    pub metadata: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Index of the peer leg in [`CallState::legs`].
    pub peer: Option<usize>,
    /// Index of the configured interface the sockets face.
    pub interface: usize,
    #[serde(default)]
    pub sdp_version_out: Option<u64>,
    /// Digest of the last SDP sent to the party (`replace: SDP version`).
    #[serde(default)]
    pub sdp_body_out: Option<u64>,
    /// o= username and s= name of the first SDP sent to the party (`replace: username`,
    /// `replace: session-name`).
    #[serde(default)]
    pub sdp_username: Option<String>,
    #[serde(default)]
    pub sdp_session_name: Option<String>,
    #[serde(default)]
    pub moh: Option<MohOptions>,
    /// Media control of what the party sends.
    #[serde(default, skip_serializing_if = "MediaControl::is_default")]
    pub control: MediaControl,
    pub medias: Vec<MediaState>,
    /// The last SDP the party sent (what a subscription to it mirrors).
    #[serde(default)]
    pub sdp_in: Option<String>,
    /// The leg is a subscription (`subscribe request`) to these legs.
    #[serde(default)]
    pub subscription: Option<SubscriptionRecord>,
    /// The leg was created by `publish`.
    #[serde(default)]
    pub publisher: bool,
}

/// A subscriber leg's subscription (rtpengine: the monologue's `subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Indexes of the source legs in [`CallState::legs`].
    pub sources: Vec<usize>,
    pub egress: bool,
    pub rtcp_mirror: bool,
    pub answered: bool,
}

/// One m= line of a party (rtpengine `call_media`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaState {
    pub index: u32,
    pub kind: String,
    pub protocol: String,
    /// Local RTP and RTCP addresses; `None` while the m= line is rejected.
    pub ports: Option<(SocketAddr, SocketAddr)>,
    pub advertised_rtp: Option<SocketAddr>,
    pub advertised_rtcp: Option<SocketAddr>,
    pub sdp_rtcp_mux: bool,
    pub rtcp_mux: bool,
    pub rtcp_mux_offered: bool,
    pub rtcp_mux_accept: bool,
    pub direction: Direction,
    pub codec: Option<String>,
    pub codecs: Vec<Codec>,
    pub ptime: Option<u32>,
    pub ice_seen: bool,
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    pub ice_active: bool,
    /// `ICE: optional` passthrough (absent in state written before it existed).
    #[serde(default)]
    pub ice_passthrough: bool,
    pub latch: LatchPolicy,
    pub sdes: SdesRecord,
    pub dtls: DtlsRecord,
    pub mid: Option<String>,
    pub codec_state: Option<CodecState>,
    pub transcode_rx: Option<TranscodeRecord>,
    pub rtp: StreamLive,
    pub rtcp: StreamLive,
    /// Media being played toward the party when the state was saved.
    #[serde(default)]
    pub playing: Option<PlayingRecord>,
    /// On a subscriber's media: the source leg index and the index of its media.
    #[serde(default)]
    pub source: Option<(usize, usize)>,
    /// On a subscriber's media: the transcoder of the copies.
    #[serde(default)]
    pub feed: Option<TranscodeRecord>,
    /// The profile the party's previous SDP gave, and the one the last offer toward it
    /// carried (see `model::Media`).
    #[serde(default)]
    pub protocol_before: Option<String>,
    #[serde(default)]
    pub offered_protocol: Option<String>,
    /// ICE with this party and our role toward it.
    #[serde(default)]
    pub ice: IceRecord,
    /// The fingerprint hash we write to this party.
    #[serde(default)]
    pub fp_hash: Option<HashFunction>,
    /// The SRTP keying the party does with us: DTLS, SDES.
    #[serde(default)]
    pub keying: (bool, bool),
    /// `media echo`: `reflect` or `blackhole`; `None`: relayed.
    #[serde(default)]
    pub echo: Option<String>,
    /// The media's part in a T.38 fax gateway.
    #[serde(default)]
    pub t38: Option<T38Record>,
}

/// ICE toward a party beyond its credentials (see `model::Media`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IceRecord {
    pub on: bool,
    pub full: bool,
    pub we_offered: bool,
    pub lite_self: Option<bool>,
    pub trickle: bool,
    /// The party's credentials, `a=ice-lite` and UDP candidates.
    pub remote: Option<RemoteIceRecord>,
}

/// A party's own ICE (see `model::RemoteIce`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteIceRecord {
    pub ufrag: String,
    pub pwd: String,
    pub lite: bool,
    pub candidates: Vec<(u16, SocketAddr)>,
}

/// A media's side of a T.38 gateway (see `model::T38Side`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum T38Record {
    Fax(T38Options),
    Audio(Option<Codec>),
}

/// A player toward a party, to start again where it was (blob sources are not kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayingRecord {
    pub source: MediaSource,
    /// Position in the file, ms.
    pub position_ms: u64,
    /// Passes left including the current one; `None`: until stopped.
    pub repeat: Option<u32>,
    /// Music on hold (stopped when the holder resumes).
    pub moh: bool,
}

/// SDES keys of a media (see `model::SdesState`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdesRecord {
    pub offered: Vec<CryptoAttr>,
    #[serde(default)]
    pub received: Vec<CryptoAttr>,
    pub local: Option<CryptoAttr>,
    pub remote: Option<CryptoAttr>,
}

/// DTLS-SRTP settings of a media (see `model::DtlsMediaState`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DtlsRecord {
    pub offered: Option<String>,
    pub remote: Option<Fingerprint>,
    pub pending_role: Option<DtlsRole>,
    pub active: Option<(DtlsRole, Fingerprint)>,
}

/// A transcoder's input and output (see `transcode::TranscodeSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodeRecord {
    pub input: CodecEndRecord,
    pub output: CodecEndRecord,
    pub detect_dtmf: bool,
    /// Payload types relayed beside the transcoded one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passthrough: Vec<u8>,
}

/// One side of a transcoder: the codec as SDP names it plus what the side uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecEndRecord {
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
    pub pt: u8,
    pub ptime_ms: u32,
    pub event_pt: Option<u8>,
    pub bitrate: Option<u32>,
    /// Comfort noise payload type (absent in state saved before CN support).
    #[serde(default)]
    pub cn_pt: Option<u8>,
    /// Encoder DTX (absent in state saved before the `dtx` codec option).
    #[serde(default)]
    pub dtx: bool,
    /// AMR decoder options `CMR-interval` and `mode-change-interval` (ms; absent before
    /// them: 0, off).
    #[serde(default)]
    pub cmr_interval_ms: u32,
    #[serde(default)]
    pub mode_change_interval_ms: u32,
}

/// What the packet path knew about one local socket's stream when the state was saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamLive {
    pub counters: StreamCounters,
    /// The learned return address of the party.
    pub latched: Option<SocketAddr>,
    /// Last SRTP packet authenticated from the party: SSRC, ROC and sequence number packed
    /// as `ssrc << 32 | roc << 16 | seq` (0: none).
    #[serde(default)]
    pub srtp_in: u64,
    /// Last SRTP packet protected towards the party, packed the same way.
    #[serde(default)]
    pub srtp_out: u64,
    /// Last SRTCP packet protected towards the party: `ssrc << 32 | index`.
    #[serde(default)]
    pub srtcp_out: u64,
    /// Keys of the finished DTLS-SRTP handshake with the party: a successor keys the
    /// stream from them instead of asking the party for a new handshake.
    #[serde(default)]
    pub dtls_keys: Option<DtlsKeys>,
}

impl CallState {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("call state always serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<CallState, StateError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(bytes)?;
        if v.version > STATE_VERSION {
            return Err(StateError::TooNew(v.version));
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Serde for key material: base64 instead of a JSON array of numbers.
pub(crate) mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
