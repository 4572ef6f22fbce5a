//! The registry's side of the state store (Redis HA): when calls are saved, how the
//! in-memory model converts to its persisted form ([`CallState`]) and back, and taking stored
//! calls over — ports bound again at the same addresses, latches and SRTP indexes resumed,
//! counters continued.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use ngmedia_codecs::Codec as CodecInfo;
use tracing::{info, warn};

use super::model::{Call, DtlsMediaState, Leg, Media, SdesState, Setup};
use super::{Calls, Now, RestoreOutcome};
use crate::core::config::Interface;
use crate::core::pii::Pii;
use crate::core::plan::{CallKey, MediaPlane, PortKey, PortPair, StreamResume};
use crate::core::request::MediaSource;
use crate::core::state::{
    CallState, CodecEndRecord, DtlsRecord, LegState, MediaState, PlayingRecord, SdesRecord,
    StreamLive, SubscriptionRecord, TranscodeRecord, STATE_VERSION,
};
use crate::core::stats::StreamStats;
use crate::core::store::StateStore;
use crate::core::transcode::{CodecEnd, TranscodeSpec};

/// `now` minus how long ago `then` was, in Unix microseconds.
fn unix_us_of(now: Now, then: std::time::Instant) -> u64 {
    let ago = now.mono.saturating_duration_since(then).as_micros() as u64;
    now.unix_us.saturating_sub(ago)
}

/// The monotonic instant of a Unix time in microseconds (clamped to `now`).
fn instant_of(now: Now, unix_us: u64) -> std::time::Instant {
    let ago = Duration::from_micros(now.unix_us.saturating_sub(unix_us));
    now.mono.checked_sub(ago).unwrap_or(now.mono)
}

impl Call {
    /// The call as it is stored, live figures read from the streams' counters now.
    pub(super) fn to_state(&self, now: Now) -> CallState {
        CallState {
            version: STATE_VERSION,
            call_id: self.id.clone(),
            created_us: self.created_us,
            last_signal_us: unix_us_of(now, self.last_signal_at),
            delete_at_ms: self.delete_at.map(|at| {
                let left = at.saturating_duration_since(now.mono).as_millis() as u64;
                now.unix_us / 1000 + left
            }),
            delete_delay_ms: self.delete_delay.map(|d| d.as_millis() as u64),
            record: self.record,
            record_paused: self.record_paused,
            record_metadata: self.record_metadata.clone(),
            record_destination: self.record_destination.clone(),
            forwarding: self.forwarding,
            control: self.control.clone(),
            legs: self.legs.iter().map(|l| leg_state(l, now)).collect(),
        }
    }

    /// Sum of packets received on every stream: a cheap "did anything move" figure.
    pub(super) fn packets_seen(&self) -> u64 {
        self.legs
            .iter()
            .flat_map(|l| l.medias.iter())
            .flat_map(|m| [&m.rtp_stats, &m.rtcp_stats])
            .map(|s| s.packets.load(Relaxed) + s.rtcp_packets.load(Relaxed))
            .sum()
    }
}

fn leg_state(leg: &Leg, now: Now) -> LegState {
    LegState {
        tag: leg.tag.clone(),
        aliases: leg.aliases.clone(),
        label: leg.label.clone(),
        hidden_media: leg.hidden_media.clone(),
        via_branch: leg.via_branch.clone(),
        metadata: leg.metadata.clone(),
        created: leg.created,
        peer: leg.peer.map(|p| p.0),
        interface: leg.interface,
        sdp_version_out: leg.sdp_version_out,
        sdp_body_out: leg.sdp_body_out,
        sdp_username: leg.sdp_username.clone(),
        sdp_session_name: leg.sdp_session_name.clone(),
        moh: leg.moh.clone().map(|mut moh| {
            // A blob can be megabytes, re-saved with every sync: not kept.
            if matches!(moh.source, Some(MediaSource::Blob(_))) {
                moh.source = None;
            }
            moh
        }),
        control: leg.control.clone(),
        medias: leg.medias.iter().map(|m| media_state(m, now)).collect(),
        sdp_in: leg.sdp_in.clone(),
        subscription: leg.subscription.as_ref().map(|s| SubscriptionRecord {
            sources: s.sources.iter().map(|l| l.0).collect(),
            egress: s.egress,
            rtcp_mirror: s.rtcp_mirror,
            answered: s.answered,
        }),
        publisher: leg.publisher,
    }
}

fn transcode_record(t: &TranscodeSpec) -> TranscodeRecord {
    TranscodeRecord {
        input: end_record(&t.input),
        output: end_record(&t.output),
        detect_dtmf: t.detect_dtmf,
        passthrough: t.passthrough.iter().collect(),
    }
}

fn transcode_spec(t: &TranscodeRecord) -> Result<TranscodeSpec, String> {
    Ok(TranscodeSpec {
        input: codec_end(&t.input)?,
        output: codec_end(&t.output)?,
        detect_dtmf: t.detect_dtmf,
        passthrough: t.passthrough.iter().copied().collect(),
    })
}

fn media_state(m: &Media, now: Now) -> MediaState {
    MediaState {
        index: m.index,
        kind: m.kind.clone(),
        protocol: m.protocol.clone(),
        ports: m.ports.map(|p| (p.rtp.addr, p.rtcp.addr)),
        advertised_rtp: m.advertised_rtp,
        advertised_rtcp: m.advertised_rtcp,
        sdp_rtcp_mux: m.sdp_rtcp_mux,
        rtcp_mux: m.rtcp_mux,
        rtcp_mux_offered: m.rtcp_mux_offered,
        rtcp_mux_accept: m.rtcp_mux_accept,
        direction: m.direction,
        codec: m.codec.clone(),
        codecs: m.codecs.clone(),
        ptime: m.ptime,
        ice_seen: m.ice_seen,
        ice_ufrag: m.ice_ufrag.clone(),
        ice_pwd: m.ice_pwd.clone(),
        ice_active: m.ice_active,
        latch: m.latch,
        sdes: SdesRecord {
            offered: m.sdes.offered.clone(),
            received: m.sdes.received.clone(),
            local: m.sdes.local.clone(),
            remote: m.sdes.remote.clone(),
        },
        dtls: DtlsRecord {
            offered: m.dtls.offered.map(|s| s.as_str().to_owned()),
            remote: m.dtls.remote.clone(),
            pending_role: m.dtls.pending_role,
            active: m.dtls.active.as_ref().map(|a| (a.role, a.remote.clone())),
        },
        mid: m.mid.clone(),
        codec_state: m.codec_state.state.clone(),
        transcode_rx: m.codec_state.transcode_rx.as_ref().map(transcode_record),
        source: m.source.map(|(l, mi)| (l.0, mi)),
        feed: m.feed.as_ref().map(transcode_record),
        rtp: stream_live(&m.rtp_stats),
        rtcp: stream_live(&m.rtcp_stats),
        playing: m.playing.as_ref().and_then(|p| {
            let source = p.source.as_deref()?.clone();
            let (position_ms, repeat) = p.progress(now.mono)?;
            Some(PlayingRecord {
                source,
                position_ms,
                repeat,
                moh: p.moh,
            })
        }),
    }
}

/// What was playing toward each party of a stored call, one player per party.
pub(super) fn players(state: &CallState) -> Vec<(super::LegId, PlayingRecord)> {
    state
        .legs
        .iter()
        .enumerate()
        .filter_map(|(li, l)| {
            let p = l.medias.iter().find_map(|m| m.playing.clone())?;
            Some((super::LegId(li), p))
        })
        .collect()
}

fn stream_live(stats: &StreamStats) -> StreamLive {
    StreamLive {
        counters: stats.snapshot(),
        latched: stats.endpoint(),
        srtp_in: stats.srtp_in.load(Relaxed),
        srtp_out: stats.srtp_out.load(Relaxed),
        srtcp_out: stats.srtcp_out.load(Relaxed),
        dtls_keys: stats.dtls_keys(),
    }
}

fn end_record(end: &CodecEnd) -> CodecEndRecord {
    CodecEndRecord {
        name: end.codec.name().to_owned(),
        clock_rate: end.codec.clock_rate,
        channels: end.codec.def.channels,
        fmtp: end.codec.fmtp(),
        pt: end.pt,
        ptime_ms: end.ptime_ms,
        event_pt: end.event_pt,
        bitrate: end.bitrate,
        cn_pt: end.cn_pt,
        dtx: end.dtx,
    }
}

fn codec_end(r: &CodecEndRecord) -> Result<CodecEnd, String> {
    let codec = CodecInfo::lookup(&r.name, r.clock_rate, Some(r.channels), r.fmtp.as_deref())
        .map_err(|e| format!("transcoder codec {}: {e}", r.name))?;
    Ok(CodecEnd {
        codec,
        pt: r.pt,
        ptime_ms: r.ptime_ms,
        event_pt: r.event_pt,
        bitrate: r.bitrate,
        cn_pt: r.cn_pt,
        dtx: r.dtx,
    })
}

/// Rebuilds calls from stored state, binding their ports through the media plane.
pub(super) struct Rebuilder<'a> {
    pub media: &'a dyn MediaPlane,
    pub interfaces: &'a [Interface],
    pub dtls: Option<&'a std::sync::Arc<crate::core::dtls::DtlsIdentity>>,
    /// TOS of rebuilt calls (the configured one: a call's own `TOS` is not stored).
    pub tos: u8,
    /// [`Call::srtp_recrypt`] of rebuilt calls (DTMF reports are configured).
    pub srtp_recrypt: bool,
}

impl Rebuilder<'_> {
    /// The call of `state` with every port bound again, or why it cannot be. Ports bound
    /// before a failure are released.
    pub(super) fn call(&self, state: &CallState, key: CallKey, now: Now) -> Result<Call, String> {
        let mut bound: Vec<PortKey> = Vec::new();
        let result = self.build(state, key, now, &mut bound);
        if result.is_err() && !bound.is_empty() {
            self.media.release(&bound);
        }
        result
    }

    fn build(
        &self,
        state: &CallState,
        key: CallKey,
        now: Now,
        bound: &mut Vec<PortKey>,
    ) -> Result<Call, String> {
        let mut legs = Vec::with_capacity(state.legs.len());
        for (li, ls) in state.legs.iter().enumerate() {
            if ls.peer.is_some_and(|p| p >= state.legs.len() || p == li) {
                return Err(format!("leg {li} names a peer that does not exist"));
            }
            let index = self.interface_of(ls)?;
            let interface = &self.interfaces[index];
            let mut leg = Leg::new(&ls.tag, ls.created, index);
            leg.aliases = ls.aliases.clone();
            leg.label = ls.label.clone();
            leg.hidden_media = ls.hidden_media.clone();
            leg.via_branch = ls.via_branch.clone();
            leg.metadata = ls.metadata.clone();
            leg.peer = ls.peer.map(super::LegId);
            leg.sdp_version_out = ls.sdp_version_out;
            leg.sdp_body_out = ls.sdp_body_out;
            leg.sdp_username = ls.sdp_username.clone();
            leg.sdp_session_name = ls.sdp_session_name.clone();
            leg.moh = ls.moh.clone();
            leg.sdp_in = ls.sdp_in.clone();
            leg.publisher = ls.publisher;
            if let Some(s) = &ls.subscription {
                if s.sources.iter().any(|&l| l >= state.legs.len() || l == li) {
                    return Err(format!("leg {li} subscribes to a leg that does not exist"));
                }
                leg.subscription = Some(super::model::Subscription {
                    sources: s.sources.iter().map(|&l| super::LegId(l)).collect(),
                    egress: s.egress,
                    rtcp_mirror: s.rtcp_mirror,
                    answered: s.answered,
                });
            }
            leg.control = ls.control.clone();
            for ms in &ls.medias {
                leg.medias.push(self.media_of(ms, interface, bound)?);
            }
            legs.push(leg);
        }
        Ok(Call {
            key,
            id: state.call_id.clone(),
            created: instant_of(now, state.created_us),
            created_us: state.created_us,
            last_signal: state.last_signal_us / 1_000_000,
            last_signal_at: instant_of(now, state.last_signal_us),
            legs,
            delete_delay: state.delete_delay_ms.map(Duration::from_millis),
            delete_at: state.delete_at_ms.map(|ms| {
                let left = ms.saturating_sub(now.unix_us / 1000);
                now.mono + Duration::from_millis(left)
            }),
            record: state.record,
            record_paused: state.record_paused,
            record_metadata: state.record_metadata.clone(),
            record_destination: state.record_destination.clone(),
            intercept: 0,
            forwarding: state.forwarding,
            saved_packets: 0,
            tos: self.tos,
            control: state.control.clone(),
            srtp_recrypt: self.srtp_recrypt,
        })
    }

    /// The configured interface a stored leg's sockets belong to: the one with the address
    /// they were bound to (a standby lists the active engine's floating address as one of
    /// its interfaces), else the same position in the list.
    fn interface_of(&self, leg: &LegState) -> Result<usize, String> {
        let bound = leg
            .medias
            .iter()
            .find_map(|m| m.ports)
            .map(|(rtp, _)| rtp.ip());
        if let Some(ip) = bound {
            return self
                .interfaces
                .iter()
                .position(|i| i.local == ip)
                .ok_or_else(|| format!("no interface is configured with address {ip}"));
        }
        if leg.interface < self.interfaces.len() {
            Ok(leg.interface)
        } else {
            Ok(0)
        }
    }

    fn media_of(
        &self,
        ms: &MediaState,
        interface: &Interface,
        bound: &mut Vec<PortKey>,
    ) -> Result<Media, String> {
        let mut m = Media::new(ms.index, &ms.kind, &ms.protocol);
        if let Some((rtp, rtcp)) = ms.ports {
            m.ports = Some(self.bind(interface, rtp, rtcp, bound)?);
        }
        m.advertised_rtp = ms.advertised_rtp;
        m.advertised_rtcp = ms.advertised_rtcp;
        m.sdp_rtcp_mux = ms.sdp_rtcp_mux;
        m.rtcp_mux = ms.rtcp_mux;
        m.rtcp_mux_offered = ms.rtcp_mux_offered;
        m.rtcp_mux_accept = ms.rtcp_mux_accept;
        m.direction = ms.direction;
        m.codec = ms.codec.clone();
        m.codecs = ms.codecs.clone();
        m.ptime = ms.ptime;
        m.ice_seen = ms.ice_seen;
        m.ice_ufrag = ms.ice_ufrag.clone();
        m.ice_pwd = ms.ice_pwd.clone();
        m.ice_active = ms.ice_active;
        // Not stored: ICE was on with the party if it did ICE or we wrote ICE to it.
        m.ice = ms.ice_active || ms.ice_seen;
        m.latch = ms.latch;
        m.sdes = SdesState {
            offered: ms.sdes.offered.clone(),
            received: ms.sdes.received.clone(),
            local: ms.sdes.local.clone(),
            remote: ms.sdes.remote.clone(),
        };
        m.dtls = self.dtls_of(&ms.dtls)?;
        m.mid = ms.mid.clone();
        m.codec_state.state = ms.codec_state.clone();
        m.codec_state.transcode_rx = ms.transcode_rx.as_ref().map(transcode_spec).transpose()?;
        m.feed = ms.feed.as_ref().map(transcode_spec).transpose()?;
        m.source = ms.source.map(|(l, mi)| (super::LegId(l), mi));
        m.rtp_stats.restore(&ms.rtp.counters, ms.rtp.latched);
        m.rtcp_stats.restore(&ms.rtcp.counters, ms.rtcp.latched);
        m.rtp_stats.set_dtls_keys(ms.rtp.dtls_keys.clone());
        m.rtcp_stats.set_dtls_keys(ms.rtcp.dtls_keys.clone());
        m.resume = Some(Box::new([resume_of(&ms.rtp), resume_of(&ms.rtcp)]));
        Ok(m)
    }

    fn dtls_of(&self, r: &DtlsRecord) -> Result<DtlsMediaState, String> {
        let offered = match &r.offered {
            Some(s) => Some(Setup::parse(s).ok_or_else(|| format!("bad DTLS setup {s:?}"))?),
            None => None,
        };
        let active = match (&r.active, self.dtls) {
            (Some((role, remote)), Some(identity)) => Some(crate::core::plan::DtlsParams {
                role: *role,
                remote: remote.clone(),
                identity: identity.clone(),
            }),
            (Some(_), None) => return Err("DTLS-SRTP is not available".into()),
            (None, _) => None,
        };
        Ok(DtlsMediaState {
            offered,
            remote: r.remote.clone(),
            pending_role: r.pending_role,
            active,
        })
    }

    fn bind(
        &self,
        interface: &Interface,
        rtp: SocketAddr,
        rtcp: SocketAddr,
        bound: &mut Vec<PortKey>,
    ) -> Result<PortPair, String> {
        if rtp.ip() != interface.local || rtcp.ip() != rtp.ip() || rtcp.port() != rtp.port() + 1 {
            return Err(format!(
                "ports {rtp}/{rtcp} do not fit interface {} ({})",
                interface.name, interface.local
            ));
        }
        let pair = self
            .media
            .allocate_pair_at(interface, rtp.port())
            .map_err(|e| format!("cannot bind {rtp}: {e}"))?;
        bound.extend([pair.rtp.key, pair.rtcp.key]);
        Ok(pair)
    }
}

fn resume_of(live: &StreamLive) -> StreamResume {
    StreamResume {
        latched: live.latched,
        srtp_in: live.srtp_in,
        srtp_out: live.srtp_out,
        srtcp_out: live.srtcp_out,
        dtls_keys: live.dtls_keys.clone(),
    }
}

impl Calls {
    /// Take over stored calls: bind their ports again, resume latching and SRTP where they
    /// were, and relay. Calls that cannot be taken over are logged and removed from the store.
    pub fn restore(&mut self, states: Vec<CallState>, now: Now) -> RestoreOutcome {
        self.started.get_or_insert(now.mono);
        let mut outcome = RestoreOutcome::default();
        for state in states {
            let id = state.call_id.clone();
            if self.calls.contains_key(&id) {
                // The call is live here already (signalled again meanwhile): keep ours.
                outcome
                    .failed
                    .push((id, "call-id already in use here".into()));
                continue;
            }
            let key = CallKey(self.next_key);
            let rebuilt = Rebuilder {
                media: self.media.as_ref(),
                interfaces: &self.config.interfaces,
                dtls: self.dtls.as_ref(),
                tos: self.config.tos,
                srtp_recrypt: self.config.dtmf_log_dest.is_some(),
            }
            .call(&state, key, now);
            let mut call = match rebuilt {
                Ok(call) => call,
                Err(reason) => {
                    warn!(call_id = %Pii(&id), %reason, "cannot take over stored call");
                    if let Some(store) = &self.store {
                        store.remove(&id);
                    }
                    outcome.failed.push((id, reason));
                    continue;
                }
            };
            self.next_key += 1;
            self.totals.streams += call
                .legs
                .iter()
                .flat_map(|l| l.medias.iter())
                .filter(|m| m.ports.is_some())
                .count() as u64;
            let plan = call.plan();
            self.media.apply(plan);
            self.report_recording(&call, now);
            Self::update_intercept(&self.interceptor, &self.media, &mut call);
            info!(call_id = %Pii(&id), "call taken over from stored state");
            self.calls.insert(id.clone(), call);
            self.resume_players(&id, players(&state), now.mono);
            self.persist_call(&id, now);
            outcome.restored.push(id);
        }
        outcome
    }

    /// Save every call whose packet counters moved since its last save, so counters,
    /// latches and SRTP indexes are at most one interval old (deleted calls lingering for
    /// their delete delay are no longer stored). Call periodically.
    pub fn sync_store(&mut self, now: Now) {
        if self.store.is_none() {
            return;
        }
        let ids: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.delete_at.is_none() && c.packets_seen() != c.saved_packets)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.persist_call(&id, now);
        }
    }

    /// [`Calls::save`] for a call in the registry.
    pub(super) fn persist_call(&mut self, call_id: &str, now: Now) {
        if let Some(call) = self.calls.get_mut(call_id) {
            Self::save(&self.store, call, now);
        }
    }

    /// Hand the call's current state to the store, if there is one.
    pub(super) fn save(store: &Option<Arc<dyn StateStore>>, call: &mut Call, now: Now) {
        if let Some(store) = store {
            call.saved_packets = call.packets_seen();
            store.save(call.to_state(now));
        }
    }

    /// Tell the store a call is gone.
    pub(super) fn unpersist(&self, call_id: &str) {
        if let Some(store) = &self.store {
            store.remove(call_id);
        }
    }
}
