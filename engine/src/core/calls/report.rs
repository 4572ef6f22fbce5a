//! Snapshots of calls for `query`, `delete` and `list` replies.

use std::sync::atomic::Ordering::Relaxed;

use super::model::{Call, Media};
use crate::core::quality::round_trip_us;
use crate::core::sdp::Direction;
use crate::core::snapshot::{
    CallSnapshot, LegSnapshot, MediaSnapshot, SrtpSnapshot, StreamSnapshot,
};
use crate::core::stats::{StreamCounters, StreamStats};

pub(super) fn snapshot(call: &Call) -> CallSnapshot {
    refresh_rtt(call);
    let mut totals_rtp = StreamCounters::default();
    let mut totals_rtcp = StreamCounters::default();
    let mut untagged = 0;
    let legs = call
        .legs
        .iter()
        .map(|leg| {
            let key = if leg.tag.is_empty() {
                untagged += 1;
                format!("<untagged {untagged}>")
            } else {
                leg.tag.clone()
            };
            let medias = leg
                .medias
                .iter()
                .map(|m| {
                    let snap = media_snapshot(m);
                    for s in &snap.streams {
                        let c = &s.counters;
                        // Muxed RTCP arrives on the RTP socket and counts as RTCP.
                        add(&mut totals_rtp, c.packets, c.bytes, c.errors);
                        add(&mut totals_rtcp, c.rtcp_packets, c.rtcp_bytes, 0);
                    }
                    snap
                })
                .collect();
            LegSnapshot {
                tag: leg.tag.clone(),
                key,
                label: leg.label.clone(),
                via_branch: leg.via_branch.clone(),
                created: leg.created,
                peers: leg
                    .peer
                    .map(|p| call.leg(p).tag.clone())
                    .into_iter()
                    .collect(),
                medias,
            }
        })
        .collect();
    CallSnapshot {
        call_id: call.id.clone(),
        created_us: call.created_us,
        last_signal: call.last_signal,
        legs,
        totals_rtp,
        totals_rtcp,
    }
}

/// The socket a party's RTCP arrives on.
fn rtcp_stats(m: &Media) -> &StreamStats {
    if m.rtcp_mux {
        &m.rtp_stats
    } else {
        &m.rtcp_stats
    }
}

/// Work out each stream's round trip from the party's RR and the SRs of its peer that we
/// relayed to it (the SR arrives on the peer's socket, hence here and not on the packet
/// path), and hand it to the stream for its MOS samples. Called on reports and every tick.
pub(super) fn refresh_rtt(call: &Call) {
    for leg in &call.legs {
        let Some(peer) = leg.peer else { continue };
        for (mi, m) in leg.medias.iter().enumerate() {
            let Some(pm) = call.leg(peer).medias.get(mi) else {
                continue;
            };
            let Some((lsr, dlsr, at)) = rtcp_stats(m).quality.rr_timing() else {
                continue;
            };
            let srs = rtcp_stats(pm).quality.sr_observations();
            if let Some(rtt) = round_trip_us(lsr, dlsr, at, srs) {
                m.rtp_stats.quality.set_rtt_hint(rtt);
            }
        }
    }
}

fn add(t: &mut StreamCounters, packets: u64, bytes: u64, errors: u64) {
    t.packets += packets;
    t.bytes += bytes;
    t.errors += errors;
}

fn media_snapshot(m: &Media) -> MediaSnapshot {
    let mut flags = Vec::new();
    if m.ports.is_some() {
        flags.push("initialized");
    }
    if matches!(m.direction, Direction::SendRecv | Direction::SendOnly) {
        flags.push("send");
    }
    if matches!(m.direction, Direction::SendRecv | Direction::RecvOnly) {
        flags.push("recv");
    }
    if m.rtcp_mux {
        flags.push("rtcp-mux");
    }
    if m.sdes.active() {
        flags.push("SDES");
    }
    if m.ice_seen {
        flags.push("ICE");
    }
    let mut streams = Vec::new();
    if let Some(ports) = m.ports {
        let mut rtp = stream_snapshot(ports.rtp.addr, m.advertised_rtp, false, &m.rtp_stats);
        // Dated by the stream's last packet: the core reads no clock.
        let at = rtp.counters.last_packet_ms;
        rtp.quality = Some(m.rtp_stats.quality.snapshot(&rtcp_stats(m).quality, at));
        streams.push(rtp);
        if !m.rtcp_mux {
            streams.push(stream_snapshot(
                ports.rtcp.addr,
                m.advertised_rtcp,
                true,
                &m.rtcp_stats,
            ));
        }
    }
    let srtp = match (&m.sdes.remote, &m.sdes.local) {
        (Some(remote), Some(local)) => Some(SrtpSnapshot {
            keying: "SDES",
            suite_in: remote.suite.name(),
            suite_out: local.suite.name(),
        }),
        _ => None,
    };
    let ice = match (m.ice_seen, m.ice_active) {
        (_, true) => Some("lite"),
        (true, false) => Some("removed"),
        (false, false) => None,
    };
    MediaSnapshot {
        index: m.index,
        kind: m.kind.clone(),
        protocol: m.protocol.to_string(),
        codec: m.codec.clone(),
        flags,
        streams,
        codecs: m
            .codecs
            .iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| format!("{}/{}", c.name, c.clock_rate))
            .collect(),
        transcode: m.codec_state.transcode_rx.as_ref().map(transcode_pair),
        srtp,
        ice,
    }
}

/// A transcoder's bounded label: codec names only (`PCMU-opus`), never rates or PTs.
pub(super) fn transcode_pair(t: &crate::core::transcode::TranscodeSpec) -> String {
    format!("{}-{}", t.input.codec.name(), t.output.codec.name())
}

fn stream_snapshot(
    local: std::net::SocketAddr,
    advertised: Option<std::net::SocketAddr>,
    rtcp: bool,
    stats: &StreamStats,
) -> StreamSnapshot {
    let latched = stats.endpoint();
    let endpoint = latched.or(advertised);
    let mut flags = vec![if rtcp { "RTCP" } else { "RTP" }];
    if endpoint.is_some() {
        flags.push("filled");
    }
    if latched.is_some() {
        flags.push("confirmed");
    }
    // rtpengine's name for a stream its kernel module forwards.
    if stats.offloaded.load(Relaxed) {
        flags.push("kernelized");
    }
    let counters = stats.snapshot();
    let ssrc = stats.last_ssrc.load(Relaxed);
    StreamSnapshot {
        local,
        endpoint,
        advertised,
        rtcp,
        flags,
        last_ssrc: (counters.packets > 0 && !rtcp).then_some(ssrc),
        counters,
        quality: None,
    }
}
