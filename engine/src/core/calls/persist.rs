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

use super::model::{
    Call, DtlsMediaState, Echo, Leg, Media, SdesState, Setup, T38Side, TransportProfile,
};
use super::{Calls, Now, RestoreOutcome};
use crate::core::config::Interface;
use crate::core::pii::Pii;
use crate::core::plan::{CallKey, MediaPlane, PortKey, PortPair, StreamResume};
use crate::core::request::MediaSource;
use crate::core::state::{
    CallState, CodecEndRecord, DtlsRecord, IceRecord, LegState, MediaState, PlayingRecord,
    RemoteIceRecord, SdesRecord, StreamLive, SubscriptionRecord, T38Record, TranscodeRecord,
    STATE_VERSION,
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
    ///
    /// Every field of the model is named here, stored or not, so that a field added to the
    /// model does not compile until it is stored or said to be rebuilt (the same holds in
    /// [`leg_state`] and [`media_state`]): nothing is lost silently on a takeover.
    pub(super) fn to_state(&self, now: Now) -> CallState {
        let Call {
            key: _,           // this engine's handle, given anew on restore
            created: _,       // restored from created_us
            last_signal: _,   // restored from last_signal_at
            intercept: _,     // decided again by the interception sink of the new owner
            saved_packets: _, // when this engine last saved: a new owner saves at once
            id,
            created_us,
            last_signal_at,
            legs,
            delete_delay,
            delete_at,
            record,
            record_paused,
            record_metadata,
            record_destination,
            forwarding,
            control,
            tos,
            srtp_recrypt,
        } = self;
        CallState {
            version: STATE_VERSION,
            call_id: id.clone(),
            created_us: *created_us,
            last_signal_us: unix_us_of(now, *last_signal_at),
            delete_at_ms: delete_at.map(|at| unix_ms_of(now, at)),
            delete_delay_ms: delete_delay.map(|d| d.as_millis() as u64),
            record: *record,
            record_paused: *record_paused,
            record_metadata: record_metadata.clone(),
            record_destination: record_destination.clone(),
            forwarding: *forwarding,
            control: control.clone(),
            tos: Some(*tos),
            srtp_recrypt: *srtp_recrypt,
            legs: legs.iter().map(|l| leg_state(l, now)).collect(),
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

/// When `at` comes, in Unix milliseconds.
fn unix_ms_of(now: Now, at: std::time::Instant) -> u64 {
    let left = at.saturating_duration_since(now.mono).as_millis() as u64;
    now.unix_us / 1000 + left
}

/// The monotonic instant of Unix milliseconds `ms` (now, when it has passed).
fn instant_of_ms(now: Now, ms: u64) -> std::time::Instant {
    now.mono + Duration::from_millis(ms.saturating_sub(now.unix_us / 1000))
}

fn leg_state(leg: &Leg, now: Now) -> LegState {
    let Leg {
        tag,
        aliases,
        label,
        hidden_media,
        via_branch,
        delete_at,
        metadata,
        created,
        peer,
        interface,
        medias,
        sdp_version_out,
        sdp_body_out,
        sdp_username,
        sdp_session_name,
        moh,
        sdp_in,
        subscription,
        publisher,
        control,
    } = leg;
    LegState {
        tag: tag.clone(),
        aliases: aliases.clone(),
        label: label.clone(),
        hidden_media: hidden_media.clone(),
        via_branch: via_branch.clone(),
        delete_at_ms: delete_at.map(|at| unix_ms_of(now, at)),
        metadata: metadata.clone(),
        created: *created,
        peer: peer.map(|p| p.0),
        interface: *interface,
        sdp_version_out: *sdp_version_out,
        sdp_body_out: *sdp_body_out,
        sdp_username: sdp_username.clone(),
        sdp_session_name: sdp_session_name.clone(),
        moh: moh.clone().map(|mut moh| {
            // A blob can be megabytes, re-saved with every sync: not kept.
            if matches!(moh.source, Some(MediaSource::Blob(_))) {
                moh.source = None;
            }
            moh
        }),
        control: control.clone(),
        medias: medias.iter().map(|m| media_state(m, now)).collect(),
        sdp_in: sdp_in.clone(),
        subscription: subscription.as_ref().map(|s| SubscriptionRecord {
            sources: s.sources.iter().map(|l| l.0).collect(),
            egress: s.egress,
            rtcp_mirror: s.rtcp_mirror,
            answered: s.answered,
        }),
        publisher: *publisher,
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
    let Media {
        ports_for: _,     // where the other party's SDP last was: the next SDP names it again
        retired_ports: _, // ports kept for a party that moves back: freed on takeover
        alt_ports: _,     // ICE ports on the interface's other addresses: bound again when the
        // next offer or answer writes candidates (the stored call keeps its main ports)
        rtp_stats: _,  // stored as `rtp` below, its counters and keys
        rtcp_stats: _, // stored as `rtcp`
        resume: _,     // how a restored call resumes: made from `rtp` and `rtcp`
        relatch: _,    // cleared by the plan made right after the SDP that set it: never
        // pending when the call is saved
        index,
        kind,
        protocol,
        protocol_before,
        offered_protocol,
        ports,
        advertised_rtp,
        advertised_rtcp,
        sdp_rtcp_mux,
        rtcp_mux,
        rtcp_mux_offered,
        rtcp_mux_accept,
        direction,
        codec,
        codecs,
        ptime,
        ice_seen,
        ice_passthrough,
        ice,
        ice_ufrag,
        ice_pwd,
        ice_active,
        ice_full,
        ice_we_offered,
        ice_lite_self,
        trickle_ice,
        remote_ice,
        latch,
        sdes,
        dtls,
        fp_hash,
        keying,
        mid,
        codec_state,
        playing,
        source,
        feed,
        echo,
        t38,
    } = m;
    MediaState {
        index: *index,
        kind: kind.clone(),
        protocol: protocol.to_string(),
        ports: ports.map(|p| (p.rtp.addr, p.rtcp.addr)),
        advertised_rtp: *advertised_rtp,
        advertised_rtcp: *advertised_rtcp,
        sdp_rtcp_mux: *sdp_rtcp_mux,
        rtcp_mux: *rtcp_mux,
        rtcp_mux_offered: *rtcp_mux_offered,
        rtcp_mux_accept: *rtcp_mux_accept,
        direction: *direction,
        codec: codec.clone(),
        codecs: codecs.clone(),
        ptime: *ptime,
        ice_seen: *ice_seen,
        ice_passthrough: *ice_passthrough,
        ice_ufrag: ice_ufrag.clone(),
        ice_pwd: ice_pwd.clone(),
        ice_active: *ice_active,
        latch: *latch,
        sdes: SdesRecord {
            offered: sdes.offered.clone(),
            received: sdes.received.clone(),
            local: sdes.local.clone(),
            remote: sdes.remote.clone(),
        },
        dtls: DtlsRecord {
            offered: dtls.offered.map(|s| s.as_str().to_owned()),
            remote: dtls.remote.clone(),
            pending_role: dtls.pending_role,
            active: dtls.active.as_ref().map(|a| (a.role, a.remote.clone())),
        },
        mid: mid.clone(),
        codec_state: codec_state.state.clone(),
        transcode_rx: codec_state.transcode_rx.as_ref().map(transcode_record),
        source: source.map(|(l, mi)| (l.0, mi)),
        feed: feed.as_ref().map(transcode_record),
        rtp: stream_live(&m.rtp_stats),
        rtcp: stream_live(&m.rtcp_stats),
        playing: playing.as_ref().and_then(|p| {
            let source = p.source.as_deref()?.clone();
            let (position_ms, repeat) = p.progress(now.mono)?;
            Some(PlayingRecord {
                source,
                position_ms,
                repeat,
                moh: p.moh,
            })
        }),
        protocol_before: protocol_before.as_ref().map(ToString::to_string),
        offered_protocol: offered_protocol.as_ref().map(ToString::to_string),
        ice: IceRecord {
            on: *ice,
            full: *ice_full,
            we_offered: *ice_we_offered,
            lite_self: *ice_lite_self,
            trickle: *trickle_ice,
            remote: remote_ice.as_ref().map(|r| RemoteIceRecord {
                ufrag: r.ufrag.clone(),
                pwd: r.pwd.clone(),
                lite: r.lite,
                candidates: r.candidates.clone(),
            }),
        },
        fp_hash: *fp_hash,
        keying: (keying.dtls, keying.sdes),
        echo: match echo {
            Echo::Relay => None,
            Echo::Reflect => Some("reflect".into()),
            Echo::Blackhole => Some("blackhole".into()),
        },
        t38: t38.as_ref().map(|side| match side {
            T38Side::Fax(o) => T38Record::Fax(*o),
            T38Side::Audio(c) => T38Record::Audio(c.clone()),
        }),
    }
}

/// What was playing toward each party of a stored call, one player per party.
pub(super) fn players(state: &CallState) -> Vec<(super::model::LegId, PlayingRecord)> {
    state
        .legs
        .iter()
        .enumerate()
        .filter_map(|(li, l)| {
            let p = l.medias.iter().find_map(|m| m.playing.clone())?;
            Some((super::model::LegId(li), p))
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
        cmr_interval_ms: end.cmr_interval_ms,
        mode_change_interval_ms: end.mode_change_interval_ms,
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
        cmr_interval_ms: r.cmr_interval_ms,
        mode_change_interval_ms: r.mode_change_interval_ms,
    })
}

/// Rebuilds calls from stored state, binding their ports through the media plane.
pub(super) struct Rebuilder<'a> {
    pub media: &'a dyn MediaPlane,
    pub interfaces: &'a [Interface],
    pub dtls: Option<&'a std::sync::Arc<crate::core::dtls::DtlsIdentity>>,
    /// TOS of rebuilt calls stored without their own.
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
            leg.delete_at = ls.delete_at_ms.map(|ms| instant_of_ms(now, ms));
            leg.metadata = ls.metadata.clone();
            leg.peer = ls.peer.map(super::model::LegId);
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
                    sources: s.sources.iter().map(|&l| super::model::LegId(l)).collect(),
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
            delete_at: state.delete_at_ms.map(|ms| instant_of_ms(now, ms)),
            record: state.record,
            record_paused: state.record_paused,
            record_metadata: state.record_metadata.clone(),
            record_destination: state.record_destination.clone(),
            intercept: 0,
            forwarding: state.forwarding,
            saved_packets: 0,
            tos: state.tos.unwrap_or(self.tos),
            control: state.control.clone(),
            srtp_recrypt: state.srtp_recrypt || self.srtp_recrypt,
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
        m.ice_passthrough = ms.ice_passthrough;
        m.ice_ufrag = ms.ice_ufrag.clone();
        m.ice_pwd = ms.ice_pwd.clone();
        m.ice_active = ms.ice_active;
        // Calls stored before `ice` was: ICE was on if the party did ICE or we wrote ICE to it.
        m.ice = ms.ice.on || ms.ice_active || ms.ice_seen;
        m.ice_full = ms.ice.full;
        m.ice_we_offered = ms.ice.we_offered;
        m.ice_lite_self = ms.ice.lite_self;
        m.trickle_ice = ms.ice.trickle;
        m.remote_ice = ms.ice.remote.as_ref().map(|r| super::model::RemoteIce {
            ufrag: r.ufrag.clone(),
            pwd: r.pwd.clone(),
            lite: r.lite,
            candidates: r.candidates.clone(),
        });
        m.protocol_before = ms.protocol_before.as_deref().map(TransportProfile::parse);
        m.offered_protocol = ms.offered_protocol.as_deref().map(TransportProfile::parse);
        m.fp_hash = ms.fp_hash;
        m.keying = super::model::Keying {
            dtls: ms.keying.0,
            sdes: ms.keying.1,
        };
        m.echo = match ms.echo.as_deref() {
            None => Echo::Relay,
            Some("reflect") => Echo::Reflect,
            Some("blackhole") => Echo::Blackhole,
            Some(other) => return Err(format!("unknown media echo {other:?}")),
        };
        m.t38 = ms.t38.as_ref().map(|r| match r {
            T38Record::Fax(o) => T38Side::Fax(*o),
            T38Record::Audio(c) => T38Side::Audio(c.clone()),
        });
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
        m.source = ms.source.map(|(l, mi)| (super::model::LegId(l), mi));
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
