//! JSON views of the engine's call snapshots and statistics.
//!
//! Field names are ngmedia's own (snake_case, units in the name) rather than the ng reply's
//! rtpengine shapes: HTTP clients are dashboards and scripts, not Kamailio.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ngmedia_engine::core::quality::{MosSample, QualitySnapshot};
use ngmedia_engine::core::snapshot::{
    CallSnapshot, EngineStatistics, LegSnapshot, MediaSnapshot, StreamSnapshot,
};
use ngmedia_engine::core::stats::{DropReason, StreamCounters};
use serde::Serialize;

use crate::ng::request::CommandKind;
use crate::ng::{NgMetrics, NgResult};

/// `GET /calls/{call_id}`: everything `query` knows about one call.
#[derive(Debug, Serialize)]
pub(super) struct CallView<'a> {
    pub call_id: &'a str,
    pub created_unix_us: u64,
    pub last_signal_unix_s: u64,
    pub legs: Vec<LegView<'a>>,
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub(super) struct Totals {
    pub rtp: CountersView,
    pub rtcp: CountersView,
}

/// One party (rtpengine `call_monologue`).
#[derive(Debug, Serialize)]
pub(super) struct LegView<'a> {
    /// SIP tag; empty for a party not tagged yet.
    pub tag: &'a str,
    pub label: Option<&'a str>,
    pub via_branch: Option<&'a str>,
    pub created_unix_s: u64,
    pub peers: &'a [String],
    pub medias: Vec<MediaView<'a>>,
}

/// One m= line (rtpengine `call_media`).
#[derive(Debug, Serialize)]
pub(super) struct MediaView<'a> {
    pub index: u32,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub protocol: &'a str,
    pub codec: Option<&'a str>,
    /// Every codec of the party's m= line.
    pub codecs: &'a [String],
    /// Transcoder for RTP from this party (`PCMU-opus`), `null` when relayed as is.
    pub transcode: Option<&'a str>,
    /// SRTP with this party (`null`: plain RTP or keys not settled).
    pub srtp: Option<SrtpView>,
    /// `lite` (we answer its ICE checks), `removed` (ICE stripped), `null` (no ICE).
    pub ice: Option<&'static str>,
    pub flags: &'a [&'static str],
    pub streams: Vec<StreamView<'a>>,
}

/// SRTP state of one m= line.
#[derive(Debug, Serialize)]
pub(super) struct SrtpView {
    /// `SDES`.
    pub keying: &'static str,
    /// Suite of what the party sends (we unprotect).
    pub suite_in: &'static str,
    /// Suite of what we send it.
    pub suite_out: &'static str,
}

/// One local socket (rtpengine `packet_stream`).
#[derive(Debug, Serialize)]
pub(super) struct StreamView<'a> {
    /// `rtp` or `rtcp`.
    pub component: &'static str,
    pub local: SocketAddr,
    pub endpoint: Option<SocketAddr>,
    pub advertised: Option<SocketAddr>,
    pub flags: &'a [&'static str],
    pub last_ssrc: Option<u32>,
    pub counters: CountersView,
    /// Quality of what the party sends (RTP streams only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityView>,
}

/// Call quality of one received stream: RFC 3550 statistics measured here, what the party
/// reports in RTCP, and the E-model MOS estimate.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub(super) struct QualityView {
    pub ssrc: Option<u32>,
    pub clock_rate: u32,
    pub packets_expected: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    pub loss_percent: f64,
    pub duplicates: u64,
    pub reordered: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter_ms: f64,
    /// Round trip between us and the party, from its RTCP RR; `null` until known.
    pub rtt_ms: Option<f64>,
    pub mos: Option<MosView>,
    pub rtcp: RtcpView,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub(super) struct MosView {
    pub samples: u64,
    pub average: MosSampleView,
    pub lowest: MosSampleView,
    pub highest: MosSampleView,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq)]
pub(super) struct MosSampleView {
    pub mos: f64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: f64,
    pub reported_unix_s: u64,
}

impl From<&MosSample> for MosSampleView {
    fn from(m: &MosSample) -> Self {
        MosSampleView {
            mos: f64::from(m.mos_x100) / 100.0,
            loss_percent: f64::from(m.loss_x100) / 100.0,
            jitter_ms: f64::from(m.jitter_us) / 1000.0,
            rtt_ms: f64::from(m.rtt_us) / 1000.0,
            reported_unix_s: m.reported_at,
        }
    }
}

/// RTCP the party sent: counts, its latest report block and XR VoIP metrics.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub(super) struct RtcpView {
    pub sender_reports: u64,
    pub receiver_reports: u64,
    pub extended_reports: u64,
    /// What the party says about the media it receives (first report block).
    pub reported: Option<ReportedView>,
    pub xr_voip: Option<XrVoipView>,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub(super) struct ReportedView {
    pub ssrc: u32,
    /// Fraction lost since its previous report, 0..1.
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    pub jitter_ms: f64,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub(super) struct XrVoipView {
    pub loss_fraction: f64,
    pub rtt_ms: u32,
    /// `null` when the party marks it unavailable (127).
    pub mos_cq: Option<f64>,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl From<&QualitySnapshot> for QualityView {
    fn from(q: &QualitySnapshot) -> Self {
        QualityView {
            ssrc: q.ssrc,
            clock_rate: q.clock_rate,
            packets_expected: q.expected,
            packets_received: q.received,
            packets_lost: q.lost,
            loss_percent: round3(q.loss_percent()),
            duplicates: q.duplicates,
            reordered: q.reordered,
            jitter_ms: f64::from(q.jitter_us) / 1000.0,
            rtt_ms: q.rtt_us.map(|r| f64::from(r) / 1000.0),
            mos: q.mos.as_ref().map(|m| MosView {
                samples: m.samples,
                average: (&m.average).into(),
                lowest: (&m.lowest).into(),
                highest: (&m.highest).into(),
            }),
            rtcp: RtcpView {
                sender_reports: q.sr_count,
                receiver_reports: q.rr_count,
                extended_reports: q.xr_count,
                reported: q.reported.map(|r| ReportedView {
                    ssrc: r.ssrc,
                    fraction_lost: round3(f64::from(r.fraction_lost) / 256.0),
                    cumulative_lost: r.cumulative_lost,
                    jitter_ms: f64::from(r.jitter_us) / 1000.0,
                }),
                xr_voip: q.xr.map(|x| XrVoipView {
                    loss_fraction: round3(f64::from(x.loss_rate) / 256.0),
                    rtt_ms: x.rtt_ms,
                    mos_cq: (x.mos_cq_x10 != 127).then(|| f64::from(x.mos_cq_x10) / 10.0),
                }),
            },
        }
    }
}

/// Packets received from the party on one stream (or summed).
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
pub(super) struct CountersView {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    /// RTCP multiplexed on this RTP socket (`rtcp-mux`).
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    /// Unix time in milliseconds of the last packet received; `null` if none yet.
    pub last_packet_unix_ms: Option<u64>,
}

impl From<&StreamCounters> for CountersView {
    fn from(c: &StreamCounters) -> Self {
        CountersView {
            packets: c.packets,
            bytes: c.bytes,
            errors: c.errors,
            rtcp_packets: c.rtcp_packets,
            rtcp_bytes: c.rtcp_bytes,
            last_packet_unix_ms: (c.last_packet_ms != 0).then_some(c.last_packet_ms),
        }
    }
}

fn component(s: &StreamSnapshot) -> &'static str {
    if s.rtcp {
        "rtcp"
    } else {
        "rtp"
    }
}

impl<'a> CallView<'a> {
    pub(super) fn new(call: &'a CallSnapshot) -> CallView<'a> {
        CallView {
            call_id: &call.call_id,
            created_unix_us: call.created_us,
            last_signal_unix_s: call.last_signal,
            legs: call.legs.iter().map(LegView::new).collect(),
            totals: Totals {
                rtp: (&call.totals_rtp).into(),
                rtcp: (&call.totals_rtcp).into(),
            },
        }
    }
}

impl<'a> LegView<'a> {
    fn new(leg: &'a LegSnapshot) -> LegView<'a> {
        LegView {
            tag: &leg.tag,
            label: leg.label.as_deref(),
            via_branch: leg.via_branch.as_deref(),
            created_unix_s: leg.created,
            peers: &leg.peers,
            medias: leg.medias.iter().map(MediaView::new).collect(),
        }
    }
}

impl<'a> MediaView<'a> {
    fn new(m: &'a MediaSnapshot) -> MediaView<'a> {
        MediaView {
            index: m.index,
            kind: &m.kind,
            protocol: &m.protocol,
            codec: m.codec.as_deref(),
            codecs: &m.codecs,
            transcode: m.transcode.as_deref(),
            srtp: m.srtp.as_ref().map(|s| SrtpView {
                keying: s.keying,
                suite_in: s.suite_in,
                suite_out: s.suite_out,
            }),
            ice: m.ice,
            flags: &m.flags,
            streams: m
                .streams
                .iter()
                .map(|s| StreamView {
                    component: component(s),
                    local: s.local,
                    endpoint: s.endpoint,
                    advertised: s.advertised,
                    flags: &s.flags,
                    last_ssrc: s.last_ssrc,
                    counters: (&s.counters).into(),
                    quality: s.quality.as_ref().map(Into::into),
                })
                .collect(),
        }
    }
}

/// One entry of `GET /calls`.
#[derive(Debug, Serialize)]
pub(super) struct CallSummary<'a> {
    pub call_id: &'a str,
    pub created_unix_us: u64,
    pub legs: Vec<LegSummary<'a>>,
    /// RTP and RTCP received over every stream of the call.
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct LegSummary<'a> {
    pub tag: &'a str,
    pub label: Option<&'a str>,
    pub streams: Vec<StreamSummary>,
}

#[derive(Debug, Serialize)]
pub(super) struct StreamSummary {
    /// 1-based m= line the stream belongs to.
    pub media: u32,
    pub component: &'static str,
    pub local: SocketAddr,
    pub endpoint: Option<SocketAddr>,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Quality figures for RTP streams (`null` on RTCP streams and before media).
    pub loss_percent: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// Average MOS estimate.
    pub mos: Option<f64>,
}

impl<'a> CallSummary<'a> {
    pub(super) fn new(call: &'a CallSnapshot) -> CallSummary<'a> {
        let (rtp, rtcp) = (&call.totals_rtp, &call.totals_rtcp);
        CallSummary {
            call_id: &call.call_id,
            created_unix_us: call.created_us,
            legs: call
                .legs
                .iter()
                .map(|leg| LegSummary {
                    tag: &leg.tag,
                    label: leg.label.as_deref(),
                    streams: leg
                        .medias
                        .iter()
                        .flat_map(|m| m.streams.iter().map(move |s| (m.index, s)))
                        .map(|(media, s)| StreamSummary {
                            media,
                            component: component(s),
                            local: s.local,
                            endpoint: s.endpoint,
                            packets: s.counters.packets + s.counters.rtcp_packets,
                            bytes: s.counters.bytes + s.counters.rtcp_bytes,
                            errors: s.counters.errors,
                            loss_percent: s
                                .quality
                                .filter(|q| q.expected > 0)
                                .map(|q| round3(q.loss_percent())),
                            jitter_ms: s
                                .quality
                                .filter(|q| q.expected > 0)
                                .map(|q| f64::from(q.jitter_us) / 1000.0),
                            mos: s
                                .quality
                                .and_then(|q| q.mos)
                                .map(|m| f64::from(m.average.mos_x100) / 100.0),
                        })
                        .collect(),
                })
                .collect(),
            packets: rtp.packets + rtcp.packets,
            bytes: rtp.bytes + rtcp.bytes,
            errors: rtp.errors + rtcp.errors,
        }
    }
}

/// `GET /calls`.
#[derive(Debug, Serialize)]
pub(super) struct CallList<'a> {
    /// Calls the engine holds, including deleted ones still lingering for late queries.
    pub total: usize,
    /// Calls in this reply (newest first), at most `limit`.
    pub count: usize,
    pub calls: Vec<CallSummary<'a>>,
}

/// `GET /statistics`.
#[derive(Debug, Serialize)]
pub(super) struct StatisticsView {
    /// Seconds since the engine handled its first request or timer.
    pub engine_uptime_s: u64,
    pub calls: CallStats,
    pub ports: PortStats,
    pub packets: PacketStats,
    pub ng: NgStats,
}

#[derive(Debug, Serialize)]
pub(super) struct CallStats {
    pub active: u64,
    pub total: u64,
    pub timed_out: u64,
    pub deleted: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct PortStats {
    pub in_use: u64,
    pub total: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct PacketStats {
    pub rtp_packets: u64,
    pub rtp_bytes: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    pub relayed_packets: u64,
    /// RTP sequence numbers found missing, duplicated, or late (see `/metrics`).
    pub rtp_lost: u64,
    pub rtp_duplicates: u64,
    pub rtp_reordered: u64,
    /// By [`DropReason`] name; every reason is present.
    pub drops: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
pub(super) struct NgStats {
    /// Executed requests by command name (as in the ng protocol) and result; commands never
    /// requested are left out. Requests without a readable command are under `invalid`.
    pub requests: BTreeMap<&'static str, NgCounts>,
    pub retransmissions: u64,
    pub dropped: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(super) struct NgCounts {
    pub ok: u64,
    pub error: u64,
}

impl StatisticsView {
    pub(super) fn new(s: &EngineStatistics, ng: &NgMetrics) -> StatisticsView {
        let p = &s.packets;
        let mut requests = BTreeMap::new();
        let counts = |ok, error| NgCounts { ok, error };
        for kind in CommandKind::ALL {
            let c = counts(
                ng.requests(kind, NgResult::Ok),
                ng.requests(kind, NgResult::Error),
            );
            if c.ok + c.error > 0 {
                requests.insert(kind.name(), c);
            }
        }
        let invalid = counts(ng.invalid(NgResult::Ok), ng.invalid(NgResult::Error));
        if invalid.ok + invalid.error > 0 {
            requests.insert("invalid", invalid);
        }
        StatisticsView {
            engine_uptime_s: s.uptime_secs,
            calls: CallStats {
                active: s.calls_current,
                total: s.calls_total,
                timed_out: s.calls_timed_out,
                deleted: s.calls_deleted,
            },
            ports: PortStats {
                in_use: s.ports_in_use,
                total: s.ports_total,
            },
            packets: PacketStats {
                rtp_packets: p.rtp_packets,
                rtp_bytes: p.rtp_bytes,
                rtcp_packets: p.rtcp_packets,
                rtcp_bytes: p.rtcp_bytes,
                relayed_packets: p.relayed_packets,
                rtp_lost: p.rtp_lost,
                rtp_duplicates: p.rtp_duplicates,
                rtp_reordered: p.rtp_reordered,
                drops: DropReason::ALL
                    .iter()
                    .map(|&r| (r.as_str(), p.drops[r as usize]))
                    .collect(),
            },
            ng: NgStats {
                requests,
                retransmissions: ng.replayed(),
                dropped: ng.dropped(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ng::reply::tests::ex2_snapshot;
    use serde_json::json;

    #[test]
    fn full_call_view_of_the_ex2_call() {
        let call = ex2_snapshot();
        let v = serde_json::to_value(CallView::new(&call)).unwrap();
        assert_eq!(v["call_id"], "call-plain-2");
        assert_eq!(v["created_unix_us"], 1795300564312128u64);
        assert_eq!(v["legs"].as_array().unwrap().len(), 2);
        let a = &v["legs"][0];
        assert_eq!(a["tag"], "tagA");
        assert_eq!(a["peers"], json!(["tagB"]));
        assert_eq!(a["medias"][0]["type"], "audio");
        assert_eq!(a["medias"][0]["codec"], "PCMU/8000");
        assert_eq!(
            a["medias"][0]["flags"],
            json!(["initialized", "send", "recv"])
        );
        assert_eq!(
            a["medias"][0]["streams"][0],
            json!({
                "component": "rtp",
                "local": "127.0.0.1:30046",
                "endpoint": "127.0.0.2:40000",
                "advertised": "127.0.0.2:40000",
                "flags": ["RTP", "filled"],
                "last_ssrc": 286331153,
                "counters": {
                    "packets": 10, "bytes": 1720, "errors": 0,
                    "rtcp_packets": 0, "rtcp_bytes": 0,
                    "last_packet_unix_ms": 1795300564500u64
                }
            })
        );
        assert_eq!(a["medias"][0]["streams"][1]["component"], "rtcp");
        assert_eq!(
            a["medias"][0]["streams"][1]["counters"]["last_packet_unix_ms"],
            json!(null)
        );
        assert_eq!(v["legs"][1]["via_branch"], "z9hG4bK-2");
    }

    #[test]
    fn summary_sums_rtp_and_rtcp() {
        let call = ex2_snapshot();
        let v = serde_json::to_value(CallSummary::new(&call)).unwrap();
        assert_eq!(v["call_id"], "call-plain-2");
        let expected_packets = call.totals_rtp.packets + call.totals_rtcp.packets;
        assert_eq!(v["packets"], expected_packets);
        assert_eq!(v["legs"][0]["tag"], "tagA");
        assert_eq!(v["legs"][0]["label"], json!(null));
        assert_eq!(
            v["legs"][0]["streams"][0],
            json!({"media": 1, "component": "rtp", "local": "127.0.0.1:30046",
                   "endpoint": "127.0.0.2:40000", "packets": 10, "bytes": 1720, "errors": 0,
                   "loss_percent": null, "jitter_ms": null, "mos": null})
        );
    }

    #[test]
    fn statistics_lists_every_drop_reason_and_used_commands() {
        let mut s = EngineStatistics {
            calls_current: 2,
            calls_total: 5,
            ..Default::default()
        };
        s.packets.drops[DropReason::Malformed as usize] = 3;
        let ng = NgMetrics::default();
        ng.record(Some(CommandKind::Offer), NgResult::Ok, Default::default());
        ng.record(None, NgResult::Error, Default::default());
        let v = serde_json::to_value(StatisticsView::new(&s, &ng)).unwrap();
        assert_eq!(
            v["calls"],
            json!({"active": 2, "total": 5, "timed_out": 0, "deleted": 0})
        );
        assert_eq!(
            v["packets"]["drops"],
            json!({"malformed": 3, "no_destination": 0, "no_stream": 0,
                   "send_failed": 0, "source_mismatch": 0, "srtp_auth": 0,
                   "srtp_failed": 0, "srtp_replay": 0, "stun": 0, "tap_full": 0, "dtls": 0, "rtcp_feedback": 0})
        );
        assert_eq!(
            v["ng"]["requests"],
            json!({"offer": {"ok": 1, "error": 0}, "invalid": {"ok": 0, "error": 1}})
        );
    }
}
