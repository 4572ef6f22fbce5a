//! `query`, `list` and `statistics`: what the registry tells about its calls, and the
//! lifetime counters behind `statistics`.

use super::model::{Call, Media};
use super::{report, CallError, Calls, Now};
use crate::core::request::{List, Query};
use crate::core::snapshot::{CallSnapshot, EngineStatistics, InterfacePorts};

impl Calls {
    pub fn query(&self, req: &Query, _now: Now) -> Result<CallSnapshot, CallError> {
        let call = self.calls.get(&req.call_id).ok_or(CallError::UnknownCall)?;
        for tag in [&req.from_tag, &req.to_tag]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
        {
            if call.leg_by_tag(tag).is_none() {
                return Err(CallError::NotFound);
            }
        }
        Ok(report::snapshot(call))
    }

    /// Call-ids of calls, newest first, at most `limit`.
    pub fn list(&self, req: &List) -> Vec<String> {
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.key.cmp(&a.key)));
        calls
            .into_iter()
            .take(req.limit)
            .map(|c| c.id.clone())
            .collect()
    }

    pub fn statistics(&self, now: Now) -> EngineStatistics {
        EngineStatistics {
            uptime_secs: self
                .started
                .map_or(0, |s| now.mono.saturating_duration_since(s).as_secs()),
            calls_current: self.calls.len() as u64,
            calls_total: self.totals.created,
            calls_timed_out: self.totals.timed_out,
            calls_deleted: self.totals.deleted,
            ports_in_use: self
                .calls
                .values()
                .map(|c| c.port_keys().len() as u64)
                .sum(),
            ports_total: u64::from(self.config.port_max.saturating_sub(self.config.port_min)) + 1,
            packets: self.media.totals(),
            streams_current: self
                .calls
                .values()
                .flat_map(|c| c.legs.iter())
                .flat_map(|l| l.medias.iter())
                .filter(|m| m.ports.is_some())
                .count() as u64,
            streams_total: self.totals.streams,
            transcoders: {
                let mut by_pair = std::collections::BTreeMap::<String, u64>::new();
                for m in self
                    .calls
                    .values()
                    .filter(|c| c.delete_at.is_none())
                    .flat_map(|c| c.legs.iter())
                    .flat_map(|l| l.medias.iter())
                    .filter(|m| m.ports.is_some())
                {
                    if let Some(t) = &m.codec_state.transcode_rx {
                        *by_pair.entry(report::transcode_pair(t)).or_default() += 1;
                    }
                }
                by_pair.into_iter().collect()
            },
            calls_silent_timeout: self.totals.silent_timeout,
            calls_final_timeout: self.totals.final_timeout,
            call_seconds: self.totals.call_seconds,
            call_seconds2: self.totals.call_seconds2,
            mos_sum: self.totals.mos_sum,
            mos_sum2: self.totals.mos_sum2,
            mos_samples: self.totals.mos_samples,
            zeroway_streams: self.totals.zeroway,
            oneway_streams: self.totals.oneway,
            port_min: self.config.port_min,
            port_max: self.config.port_max,
            interfaces: self
                .config
                .interfaces
                .iter()
                .enumerate()
                .map(|(i, iface)| InterfacePorts {
                    name: iface.name.clone(),
                    address: iface.local,
                    used: self
                        .calls
                        .values()
                        .flat_map(|c| c.legs.iter())
                        .filter(|l| l.interface == i)
                        .flat_map(|l| l.medias.iter())
                        .filter(|m| m.ports.is_some())
                        .count() as u64
                        * 2,
                    last: self.totals.last_port.get(i).copied().unwrap_or(0),
                })
                .collect(),
        }
    }
}

/// Lifetime counters for `statistics`.
#[derive(Debug, Default, Clone)]
pub(super) struct Totals {
    pub(super) created: u64,
    pub(super) timed_out: u64,
    pub(super) deleted: u64,
    /// Media streams (a party's m= line with its ports) opened.
    pub(super) streams: u64,
    pub(super) silent_timeout: u64,
    pub(super) final_timeout: u64,
    pub(super) call_seconds: f64,
    pub(super) call_seconds2: f64,
    pub(super) mos_sum: f64,
    pub(super) mos_sum2: f64,
    pub(super) mos_samples: u64,
    pub(super) zeroway: u64,
    pub(super) oneway: u64,
    /// Last RTP port handed out, per interface index.
    pub(super) last_port: Vec<u16>,
}

impl Totals {
    /// Account a call that ends now (deleted or timed out): its duration, the average MOS
    /// of each stream that has one, and streams that carried media one way or not at all.
    pub(super) fn ended(&mut self, call: &Call, now: Now) {
        let secs = now
            .mono
            .saturating_duration_since(call.created)
            .as_secs_f64();
        self.call_seconds += secs;
        self.call_seconds2 += secs * secs;
        let wall_ms = now.unix_us / 1000;
        for (li, leg) in call.legs.iter().enumerate() {
            for (mi, m) in leg.medias.iter().enumerate() {
                if m.ports.is_none() {
                    continue;
                }
                let rtcp = if m.rtcp_mux {
                    &m.rtp_stats
                } else {
                    &m.rtcp_stats
                };
                let q = m.rtp_stats.quality.snapshot(&rtcp.quality, wall_ms);
                if let Some(mos) = q.mos.filter(|s| s.average.mos_x100 > 0) {
                    let v = f64::from(mos.average.mos_x100) / 100.0;
                    self.mos_sum += v;
                    self.mos_sum2 += v * v;
                    self.mos_samples += 1;
                }
                // Each pair of media once: from the leg with the lower index.
                let Some(peer) = leg.peer.filter(|p| p.0 > li) else {
                    continue;
                };
                let Some(pm) = call.legs[peer.0]
                    .medias
                    .get(mi)
                    .filter(|pm| pm.ports.is_some())
                else {
                    continue;
                };
                let sent = |x: &Media| {
                    x.rtp_stats
                        .packets
                        .load(std::sync::atomic::Ordering::Relaxed)
                        > 0
                };
                match (sent(m), sent(pm)) {
                    (false, false) => self.zeroway += 1,
                    (true, false) | (false, true) => self.oneway += 1,
                    _ => {}
                }
            }
        }
    }
}
