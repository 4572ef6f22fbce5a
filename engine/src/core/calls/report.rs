//! Snapshots of calls for `query`, `delete` and `list` replies.

use std::sync::atomic::Ordering::Relaxed;

use super::model::{Call, Media};
use crate::core::sdp::Direction;
use crate::core::snapshot::{CallSnapshot, LegSnapshot, MediaSnapshot, StreamSnapshot};
use crate::core::stats::{StreamCounters, StreamStats};

pub(super) fn snapshot(call: &Call) -> CallSnapshot {
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
    if m.ice_seen {
        flags.push("ICE");
    }
    let mut streams = Vec::new();
    if let Some(ports) = m.ports {
        streams.push(stream_snapshot(
            ports.rtp.addr,
            m.advertised_rtp,
            false,
            &m.rtp_stats,
        ));
        if !m.rtcp_mux {
            streams.push(stream_snapshot(
                ports.rtcp.addr,
                m.advertised_rtcp,
                true,
                &m.rtcp_stats,
            ));
        }
    }
    MediaSnapshot {
        index: m.index,
        kind: m.kind.clone(),
        protocol: m.protocol.clone(),
        codec: m.codec.clone(),
        flags,
        streams,
    }
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
    }
}
