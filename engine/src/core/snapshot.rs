//! Typed results of `query`, `delete`, `list` and `statistics`: what the engine knows about
//! its calls at one moment. The ng front end writes them in rtpengine's reply shape.

use std::net::SocketAddr;

use super::quality::QualitySnapshot;
use super::stats::{PacketTotals, StreamCounters};

/// One call (rtpengine `call`), as `query` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSnapshot {
    pub call_id: String,
    /// Unix time the call was created, in microseconds.
    pub created_us: u64,
    /// Unix time of the last offer/answer, in seconds.
    pub last_signal: u64,
    pub legs: Vec<LegSnapshot>,
    /// Sums over every stream of the call.
    pub totals_rtp: StreamCounters,
    pub totals_rtcp: StreamCounters,
}

/// One party (rtpengine `call_monologue`). An untagged party has an empty `tag`.
#[derive(Debug, Clone, PartialEq)]
pub struct LegSnapshot {
    pub tag: String,
    /// Key under `tags` in the reply: the tag, or `<untagged N>`.
    pub key: String,
    pub label: Option<String>,
    pub via_branch: Option<String>,
    pub created: u64,
    /// Tags of the parties this one exchanges media with.
    pub peers: Vec<String>,
    pub medias: Vec<MediaSnapshot>,
}

/// One m= line of a party (rtpengine `call_media`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSnapshot {
    /// 1-based position in the SDP.
    pub index: u32,
    /// `audio`, `video`, ...
    pub kind: String,
    pub protocol: String,
    /// First codec of the negotiated list, like `PCMU/8000`.
    pub codec: Option<String>,
    /// `initialized`, `send`, `recv`, `rtcp-mux`, `SDES`, `ICE`, ...
    pub flags: Vec<&'static str>,
    pub streams: Vec<StreamSnapshot>,
    /// Every codec of the party's m= line, `PCMU/8000` style.
    pub codecs: Vec<String>,
    /// Transcoder for RTP from this party, as `input-output` codec names (`PCMU-opus`).
    pub transcode: Option<String>,
    /// SRTP with this party, once keys are settled (rtpengine: the stream's `crypto suite`).
    pub srtp: Option<SrtpSnapshot>,
    /// ICE with this party: `lite` (we answer its checks), `removed` (its ICE attributes
    /// were stripped), `None` (no ICE in its SDP).
    pub ice: Option<&'static str>,
}

/// The SRTP state of one m= line of a party.
#[derive(Debug, Clone, PartialEq)]
pub struct SrtpSnapshot {
    /// Key exchange: `SDES` (DTLS-SRTP will add `DTLS`).
    pub keying: &'static str,
    /// Suite of what the party sends us (we unprotect with it).
    pub suite_in: &'static str,
    /// Suite of what we send the party (rtpengine's per-stream `crypto suite`).
    pub suite_out: &'static str,
}

/// One local socket facing the party (rtpengine `packet_stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSnapshot {
    pub local: SocketAddr,
    /// Where media for the party goes: the latched source, else the SDP address.
    pub endpoint: Option<SocketAddr>,
    /// What the party's SDP said.
    pub advertised: Option<SocketAddr>,
    pub rtcp: bool,
    /// `RTP`/`RTCP`, `filled`, `confirmed`.
    pub flags: Vec<&'static str>,
    pub last_ssrc: Option<u32>,
    pub counters: StreamCounters,
    /// Quality of what the party sends, on RTP streams (RTCP it sends is folded in).
    pub quality: Option<QualitySnapshot>,
}

/// Engine-wide figures for `statistics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStatistics {
    pub uptime_secs: u64,
    pub calls_current: u64,
    pub calls_total: u64,
    pub calls_timed_out: u64,
    pub calls_deleted: u64,
    pub ports_in_use: u64,
    pub ports_total: u64,
    pub packets: PacketTotals,
    /// Media streams (a party's m= line with its ports) open now and opened in total
    /// (rtpengine: `call_media`).
    pub streams_current: u64,
    pub streams_total: u64,
    /// Transcoders running now, by `input-output` codec names (`PCMU-opus`), sorted.
    pub transcoders: Vec<(String, u64)>,
    /// Calls ended by `--silent-timeout` and `--final-timeout` (also in `calls_timed_out`).
    pub calls_silent_timeout: u64,
    pub calls_final_timeout: u64,
    /// Durations of ended calls, seconds: sum and sum of squares (rtpengine's
    /// `call_duration`/`call_duration2`).
    pub call_seconds: f64,
    pub call_seconds2: f64,
    /// Per-stream average MOS of ended calls: sum, sum of squares, how many streams.
    pub mos_sum: f64,
    pub mos_sum2: f64,
    pub mos_samples: u64,
    /// Media of ended calls where neither party / only one party sent anything.
    pub zeroway_streams: u64,
    pub oneway_streams: u64,
    /// Port usage per configured interface, in configuration order, out of the range
    /// `port_min..=port_max` each interface has.
    pub interfaces: Vec<InterfacePorts>,
    pub port_min: u16,
    pub port_max: u16,
}

/// One interface's share of the media port range (rtpengine's `interfaces` statistics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfacePorts {
    pub name: String,
    pub address: std::net::IpAddr,
    /// Ports held by calls on this interface now.
    pub used: u64,
    /// The RTP port handed out last on this interface (0: none yet).
    pub last: u16,
}
