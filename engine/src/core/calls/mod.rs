//! The call registry: every call the engine handles, driven by typed requests
//! (rtpengine's call hash and `call_interfaces.c`).
//!
//! Control-plane only: the daemon keeps it behind one mutex that the packet path never
//! touches. Each request ends by handing the media plane a complete plan for the call.

mod codecs;
mod control;
mod hidden;
mod model;
mod negotiate;
mod persist;
mod play;
mod report;
mod subscribe;
mod t38;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::{debug, info, warn};

pub use self::codecs::CodecState;
pub use self::control::{dtmf_code, DEFAULT_DTMF_VOLUME};
pub use self::hidden::is_removable_type;
use self::model::{Call, CandidateBase, Leg, LegId, Media};
use self::negotiate::{Exchange, Role};
pub use self::play::{PlayReply, StopReply};
pub use self::subscribe::{MediaLabel, SubscribeReply, TagMedias};
use super::config::EngineConfig;
use super::dtls::DtlsIdentity;
use super::pii::Pii;
use super::plan::{CallKey, MediaPlane, PortError};
use super::player::MediaLoader;
use super::request::{Delete, List, OfferAnswer, Query, Recording, RecordingAction};
use super::sdp::{Sdp, SdpError};
use super::snapshot::{CallSnapshot, EngineStatistics, InterfacePorts};
use super::store::StateStore;
use super::tap::{InterceptSink, RecordingEvent, RecordingSink};

/// The moment a request is handled: monotonic for timers, wall clock for reports.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    /// Unix time in microseconds.
    pub unix_us: u64,
}

impl Now {
    fn unix_secs(&self) -> u64 {
        self.unix_us / 1_000_000
    }
}

/// Why a request failed. `Display` is the ng `error-reason`, worded as rtpengine words it
/// where Kamailio or operators depend on the text.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CallError {
    #[error("Unknown call-id")]
    UnknownCall,
    #[error("Call-ID not found or tags didn't match")]
    NotFound,
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error("{0}")]
    Invalid(String),
}

/// Reply to `offer`/`answer`.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferAnswerReply {
    /// The rewritten SDP for the other party.
    pub sdp: String,
    /// Non-fatal remarks for the ng `warning` key.
    pub warnings: Vec<String>,
}

/// Reply to `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteReply {
    /// The call's final statistics, `None` when it was not found.
    pub snapshot: Option<CallSnapshot>,
    /// `Call-ID not found or tags didn't match` when the call was unknown and `fatal` not set.
    pub warning: Option<String>,
}

/// Something that happened to a call outside a request, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// No media for `--timeout` (or `--silent-timeout`, `--final-timeout`).
    TimedOut {
        call_id: String,
        reason: &'static str,
    },
    /// A deleted call's delay ran out and its state is gone.
    Purged { call_id: String },
}

/// What [`Calls::restore`] did with stored calls.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RestoreOutcome {
    /// Call-ids now relayed by this engine.
    pub restored: Vec<String>,
    /// Call-ids that could not be taken over, with why. Those whose state is unusable here
    /// (ports that cannot be bound, an unknown codec) were removed from the store; a call-id
    /// already live here keeps its stored state, which is this engine's.
    pub failed: Vec<(String, String)>,
}

/// Lifetime counters for `statistics`.
#[derive(Debug, Default, Clone)]
struct Totals {
    created: u64,
    timed_out: u64,
    deleted: u64,
    /// Media streams (a party's m= line with its ports) opened.
    streams: u64,
    silent_timeout: u64,
    final_timeout: u64,
    call_seconds: f64,
    call_seconds2: f64,
    mos_sum: f64,
    mos_sum2: f64,
    mos_samples: u64,
    zeroway: u64,
    oneway: u64,
    /// Last RTP port handed out, per interface index.
    last_port: Vec<u16>,
}

impl Totals {
    /// Account a call that ends now (deleted or timed out): its duration, the average MOS
    /// of each stream that has one, and streams that carried media one way or not at all.
    fn ended(&mut self, call: &Call, now: Now) {
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

/// All calls (rtpengine's call hash).
pub struct Calls {
    config: Arc<EngineConfig>,
    media: Arc<dyn MediaPlane>,
    calls: HashMap<String, Call>,
    next_key: u64,
    started: Option<Instant>,
    totals: Totals,
    /// Value of our `a=rtpengine:` loop-protection marker, unique per daemon run.
    loop_marker: String,
    /// Our DTLS certificate; `None` (generation failed) means no DTLS-SRTP is offered or
    /// accepted.
    dtls: Option<Arc<DtlsIdentity>>,
    /// Told about recorded calls; `None`: recording requests are refused.
    recorder: Option<Arc<dyn RecordingSink>>,
    /// Loads media for `play media` and music on hold; `None`: playback is refused.
    media_loader: Option<Arc<dyn MediaLoader>>,
    /// Decides which streams are copied for interception and forwarding; `None`: none are.
    interceptor: Option<Arc<dyn InterceptSink>>,
    /// Receives the state of every call after each change (Redis HA); `None`: in memory only.
    store: Option<Arc<dyn StateStore>>,
    /// Per configured interface address: what our ICE candidates on it say.
    ice_bases: Vec<CandidateBase>,
}

impl Calls {
    pub fn new(config: Arc<EngineConfig>, media: Arc<dyn MediaPlane>) -> Calls {
        // 12 hex digits, the length of rtpengine's instance id.
        let loop_marker = format!("{:012x}", rand::thread_rng().gen::<u64>() >> 16);
        let dtls = match DtlsIdentity::generate() {
            Ok(id) => Some(Arc::new(id)),
            Err(e) => {
                warn!(error = %e, "cannot create a DTLS certificate; DTLS-SRTP disabled");
                None
            }
        };
        let ice_bases = config
            .interfaces
            .iter()
            .map(|i| CandidateBase {
                address: i.public(),
                foundation: negotiate::random_token(negotiate::ICE_FOUNDATION_LEN),
            })
            .collect();
        Calls {
            ice_bases,
            dtls,
            config,
            media,
            calls: HashMap::new(),
            next_key: 1,
            started: None,
            totals: Totals::default(),
            loop_marker,
            recorder: None,
            media_loader: None,
            interceptor: None,
            store: None,
        }
    }

    /// Keep the state of every call in `store` from now on.
    pub fn set_store(&mut self, store: Arc<dyn StateStore>) {
        self.store = Some(store);
    }

    /// Attach the media source for `play media` and music on hold.
    pub fn set_media_loader(&mut self, loader: Arc<dyn MediaLoader>) {
        self.media_loader = Some(loader);
    }

    /// Attach the interception sink (the media plane must have its interception queue).
    pub fn set_interceptor(&mut self, interceptor: Arc<dyn InterceptSink>) {
        self.interceptor = Some(interceptor);
    }

    /// Ask the interceptor which streams of `call` to copy; a changed answer goes to the
    /// media plane as a new plan (nothing else about the call changes). Returns whether a
    /// plan was applied.
    fn update_intercept(
        interceptor: &Option<Arc<dyn InterceptSink>>,
        media: &Arc<dyn MediaPlane>,
        call: &mut Call,
    ) -> bool {
        let Some(sink) = interceptor else {
            return false;
        };
        let mask = sink.update(&call.intercept_info());
        if mask == call.intercept {
            return false;
        }
        call.intercept = mask;
        let plan = call.plan();
        media.apply(plan);
        true
    }

    /// Re-evaluate interception for every call (tasks changed). Silent by design.
    pub fn refresh_intercepts(&mut self) {
        for call in self.calls.values_mut() {
            Self::update_intercept(&self.interceptor, &self.media, call);
        }
    }

    fn intercept_ended(&self, call: &Call) {
        if let Some(sink) = &self.interceptor {
            sink.ended(call.key);
        }
    }

    /// `start forwarding` / `stop forwarding` (rtpengine's media forwarding of a call).
    pub fn forwarding(
        &mut self,
        call_id: &str,
        tags: [Option<&str>; 2],
        start: bool,
        now: Now,
    ) -> Result<(), CallError> {
        if !self
            .interceptor
            .as_ref()
            .is_some_and(|i| i.forwarding_enabled())
        {
            return Err(CallError::Invalid("Forwarding is not enabled".into()));
        }
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        if !tags
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .all(|t| call.leg_by_tag(t).is_some())
        {
            return Err(CallError::NotFound);
        }
        call.forwarding = start;
        Self::update_intercept(&self.interceptor, &self.media, call);
        Self::save(&self.store, call, now);
        info!(call_id = %call_id, "forwarding {}", if start { "started" } else { "stopped" });
        Ok(())
    }

    /// Use this certificate for DTLS-SRTP from now on (`--dtls-cert`/`--dtls-key`) instead
    /// of the one generated at start-up. Running associations keep theirs.
    pub fn set_dtls_identity(&mut self, identity: Arc<DtlsIdentity>) {
        self.dtls = Some(identity);
    }

    /// Our DTLS certificate, if DTLS-SRTP is available.
    pub fn dtls_identity(&self) -> Option<&Arc<DtlsIdentity>> {
        self.dtls.as_ref()
    }

    /// Attach the recording sink (the media plane must have its tap queue already).
    pub fn set_recorder(&mut self, recorder: Arc<dyn RecordingSink>) {
        self.recorder = Some(recorder);
    }

    /// Tell the recorder what a recorded call looks like now (after offer/answer or a
    /// recording request). A paused call stays paused.
    fn report_recording(&self, call: &Call, now: Now) {
        if let (Some(rec), true) = (&self.recorder, call.record) {
            let info = call.tap_info();
            rec.event(RecordingEvent::Start {
                call: call.key,
                info,
                at_us: now.unix_us,
            });
            if call.record_paused {
                rec.event(RecordingEvent::Pause {
                    call: call.key,
                    at_us: now.unix_us,
                });
            }
        }
    }

    /// Finalize the recording of a call that ends or stops recording.
    fn stop_recording(recorder: &Option<Arc<dyn RecordingSink>>, call: &mut Call, now: Now) {
        if !call.record {
            return;
        }
        call.record = false;
        call.record_paused = false;
        if let Some(rec) = recorder {
            rec.event(RecordingEvent::Stop {
                call: call.key,
                at_us: now.unix_us,
            });
        }
    }

    /// `start recording`, `stop recording`, `pause recording`.
    pub fn recording(&mut self, req: &Recording, now: Now) -> Result<(), CallError> {
        if self.recorder.is_none() {
            return Err(CallError::Invalid("Recording is not enabled".into()));
        }
        let mut call = self
            .calls
            .remove(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let tags_ok = [&req.from_tag, &req.to_tag]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .all(|t| call.leg_by_tag(t).is_some());
        if !tags_ok {
            self.calls.insert(req.call_id.clone(), call);
            return Err(CallError::NotFound);
        }
        if let Some(m) = &req.metadata {
            call.record_metadata.push(m.clone());
        }
        if req.output_destination.is_some() {
            call.record_destination = req.output_destination.clone();
        }
        match req.action {
            RecordingAction::Start => {
                let was = call.record;
                call.record = true;
                call.record_paused = false;
                self.report_recording(&call, now);
                if !was {
                    let plan = call.plan();
                    self.media.apply(plan);
                }
                info!(call_id = %req.call_id, "recording started");
            }
            RecordingAction::Pause => {
                if !call.record {
                    // rtpengine starts a recording in the paused state in this case.
                    call.record = true;
                    call.record_paused = true;
                    self.report_recording(&call, now);
                    let plan = call.plan();
                    self.media.apply(plan);
                } else if !call.record_paused {
                    call.record_paused = true;
                    if let Some(rec) = &self.recorder {
                        rec.event(RecordingEvent::Pause {
                            call: call.key,
                            at_us: now.unix_us,
                        });
                    }
                }
                info!(call_id = %req.call_id, "recording paused");
            }
            RecordingAction::Stop => {
                if call.record {
                    Self::stop_recording(&self.recorder, &mut call, now);
                    let plan = call.plan();
                    self.media.apply(plan);
                    info!(call_id = %req.call_id, "recording stopped");
                }
            }
        }
        Self::save(&self.store, &mut call, now);
        self.calls.insert(req.call_id.clone(), call);
        Ok(())
    }

    pub fn offer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        self.started.get_or_insert(now.mono);
        let sdp = Sdp::parse(&req.sdp)?;
        if let Some(reply) = self.looped(&sdp, &req.sdp) {
            return Ok(reply);
        }
        let mut call = match self.calls.remove(&req.call_id) {
            Some(c) => c,
            None => {
                let key = CallKey(self.next_key);
                self.next_key += 1;
                info!(call_id = %Pii(&req.call_id), from_tag = %Pii(&req.from_tag), "new call");
                self.totals.created += 1;
                Call {
                    key,
                    id: req.call_id.clone(),
                    created: now.mono,
                    created_us: now.unix_us,
                    last_signal: now.unix_secs(),
                    last_signal_at: now.mono,
                    legs: Vec::new(),
                    delete_delay: None,
                    delete_at: None,
                    record: false,
                    record_paused: false,
                    record_metadata: Vec::new(),
                    record_destination: None,
                    intercept: 0,
                    forwarding: false,
                    saved_packets: 0,
                    tos: self.config.tos,
                    control: Default::default(),
                    srtp_recrypt: self.config.dtmf_log_dest.is_some(),
                }
            }
        };
        let fresh = call.legs.is_empty();
        let result = self.offer_on(&mut call, &sdp, req, now);
        match &result {
            Err(e) if fresh => {
                // Nothing was set up: forget the call entirely.
                warn!(call_id = %Pii(&req.call_id), error = %e, "offer failed");
                self.media.remove(call.key);
                self.totals.created -= 1;
            }
            _ => {
                if result.is_ok() {
                    self.report_recording(&call, now);
                    Self::update_intercept(&self.interceptor, &self.media, &mut call);
                }
                let from = call.leg_by_tag(&req.from_tag);
                self.calls.insert(req.call_id.clone(), call);
                if let (Ok(_), Some(from)) = (&result, from) {
                    self.hold_music(&req.call_id, from, &sdp, now.mono);
                }
                if result.is_ok() {
                    self.persist_call(&req.call_id, now);
                }
            }
        }
        result.map(|sdp| OfferAnswerReply {
            sdp,
            warnings: Vec::new(),
        })
    }

    fn offer_on(
        &mut self,
        call: &mut Call,
        sdp: &Sdp,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<String, CallError> {
        let from = match call.leg_by_tag(&req.from_tag) {
            Some(l) => l,
            None => {
                call.legs.push(Leg::new(&req.from_tag, now.unix_secs(), 0));
                LegId(call.legs.len() - 1)
            }
        };
        let branch = req.via_branch.as_deref().filter(|b| !b.is_empty());
        let initial = req.to_tag.as_deref().is_none_or(str::is_empty);
        let to = match (call.leg(from).peer, branch) {
            // An initial offer on a SIP branch: parallel forks of one INVITE each get a leg.
            (_, Some(branch)) if initial => Self::branch_leg(call, from, branch, now),
            (Some(p), _) => p,
            (None, _) => {
                let existing = req
                    .to_tag
                    .as_deref()
                    .and_then(|t| call.leg_by_tag(t))
                    .filter(|&l| l != from);
                match existing {
                    Some(l) => l,
                    None => {
                        let tag = req.to_tag.as_deref().unwrap_or("");
                        call.legs.push(Leg::new(tag, now.unix_secs(), 0));
                        LegId(call.legs.len() - 1)
                    }
                }
            }
        };
        call.leg_mut(from).peer = Some(to);
        call.leg_mut(to).peer = Some(from);
        if req.moh.is_some() {
            call.leg_mut(from).moh = req.moh.clone();
        }
        control::on_offer_answer(call, from, req);
        if let Some(l) = &req.to_label {
            call.leg_mut(to).label = Some(l.clone());
        }
        if req.delete_delay.is_some() {
            call.delete_delay = req.delete_delay;
        }
        if self.recorder.is_some() {
            call.record |= req.flags.record_call || req.record_call == Some(true);
            if req.output_destination.is_some() {
                call.record_destination = req.output_destination.clone();
            }
        }
        // A new offer revives a call that was deleted with a delay (rtpengine does the same).
        call.delete_at = None;
        // `TOS` is taken from offers only, for both directions; an offer without it goes back
        // to the configured value (rtpengine's `__tos_change`).
        call.tos = req.tos.unwrap_or(self.config.tos);
        let out = self.negotiate(
            call,
            Exchange {
                from,
                to,
                role: Role::Offer,
            },
            sdp,
            req,
            now,
        )?;
        info!(call_id = %Pii(&req.call_id), from_tag = %Pii(&req.from_tag), medias = sdp.media.len(), "offer");
        Ok(out)
    }

    /// The callee-side leg of an initial offer from `from` on SIP branch `branch`, as
    /// rtpengine picks it: the current peer if it is that branch or has no branch yet (then
    /// it becomes that branch), else the leg already offered on that branch, else a new one.
    /// Each branch keeps its own ports and negotiation; the offerer follows the latest one
    /// until an answer picks the winner.
    fn branch_leg(call: &mut Call, from: LegId, branch: &str, now: Now) -> LegId {
        if let Some(p) = call.leg(from).peer {
            match call.leg(p).via_branch.as_deref() {
                None => {
                    call.leg_mut(p).via_branch = Some(branch.to_owned());
                    return p;
                }
                Some(b) if b == branch => return p,
                Some(_) => {}
            }
        }
        if let Some(l) = call.leg_by_branch(branch).filter(|&l| l != from) {
            call.leg_mut(l).delete_at = None;
            return l;
        }
        let mut leg = Leg::new("", now.unix_secs(), 0);
        leg.via_branch = Some(branch.to_owned());
        call.legs.push(leg);
        info!(call_id = %Pii(&call.id), branch = %Pii(&branch), "new branch of the call");
        LegId(call.legs.len() - 1)
    }

    pub fn answer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        let sdp = Sdp::parse(&req.sdp)?;
        if let Some(reply) = self.looped(&sdp, &req.sdp) {
            return Ok(reply);
        }
        let to_tag = req
            .to_tag
            .as_deref()
            .ok_or_else(|| CallError::Invalid("No to-tag in message".into()))?;
        let mut call = self
            .calls
            .remove(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        if self.recorder.is_some() && (req.flags.record_call || req.record_call == Some(true)) {
            call.record = true;
        }
        let result = self.answer_on(&mut call, to_tag, &sdp, req, now);
        if result.is_ok() {
            self.report_recording(&call, now);
            Self::update_intercept(&self.interceptor, &self.media, &mut call);
            Self::save(&self.store, &mut call, now);
        }
        self.calls.insert(req.call_id.clone(), call);
        result.map(|sdp| OfferAnswerReply {
            sdp,
            warnings: Vec::new(),
        })
    }

    fn answer_on(
        &mut self,
        call: &mut Call,
        to_tag: &str,
        sdp: &Sdp,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<String, CallError> {
        let offerer = call.leg_by_tag(&req.from_tag).ok_or(CallError::NotFound)?;
        // The branch that answers: by its tag, else by the SIP branch it was offered on.
        let by_branch = req
            .via_branch
            .as_deref()
            .filter(|b| !b.is_empty())
            .and_then(|b| call.leg_by_branch(b))
            .filter(|&l| l != offerer);
        let answerer = match call.leg_by_tag(to_tag).filter(|&l| l != offerer) {
            Some(l) => l,
            None if by_branch.is_some() => {
                let l = by_branch.expect("checked");
                let leg = call.leg_mut(l);
                if leg.tag.is_empty() {
                    leg.tag = to_tag.to_owned();
                } else {
                    leg.aliases.push(to_tag.to_owned());
                }
                l
            }
            None => {
                let peer = call.leg(offerer).peer.ok_or(CallError::NotFound)?;
                let call_id = call.id.clone();
                let leg = call.leg_mut(peer);
                if leg.tag.is_empty() {
                    leg.tag = to_tag.to_owned();
                } else {
                    // Another branch of a forked INVITE answered: same media, one more tag.
                    info!(call_id = %Pii(&call_id), tag = %Pii(&to_tag), "answer from another branch");
                    leg.aliases.push(to_tag.to_owned());
                }
                peer
            }
        };
        call.leg_mut(offerer).peer = Some(answerer);
        call.leg_mut(answerer).peer = Some(offerer);
        control::on_offer_answer(call, answerer, req);
        if self.recorder.is_some() && req.output_destination.is_some() {
            call.record_destination = req.output_destination.clone();
        }
        if let Some(l) = &req.to_label {
            call.leg_mut(offerer).label = Some(l.clone());
        }
        let out = self.negotiate(
            call,
            Exchange {
                from: answerer,
                to: offerer,
                role: Role::Answer,
            },
            sdp,
            req,
            now,
        )?;
        info!(call_id = %Pii(&req.call_id), to_tag = %Pii(&to_tag), "answer");
        Ok(out)
    }

    /// `loop protect`: an SDP carrying our own marker has already been through us; it goes
    /// back untouched.
    fn looped(&self, sdp: &Sdp, raw: &str) -> Option<OfferAnswerReply> {
        sdp.has_loop_marker(&self.loop_marker)
            .then(|| OfferAnswerReply {
                sdp: raw.to_owned(),
                warnings: Vec::new(),
            })
    }

    pub fn delete(&mut self, req: &Delete, now: Now) -> Result<DeleteReply, CallError> {
        let not_found = |fatal: bool| {
            if fatal {
                Err(CallError::NotFound)
            } else {
                Ok(DeleteReply {
                    snapshot: None,
                    warning: Some(CallError::NotFound.to_string()),
                })
            }
        };
        let Some(call) = self.calls.get_mut(&req.call_id) else {
            return not_found(req.flags.fatal);
        };
        if let Some(leg) = branch_to_delete(call, req) {
            let delay = req
                .delete_delay
                .or(call.delete_delay)
                .unwrap_or(self.config.delete_delay);
            // The last branch with the last party: the whole call goes, as below.
            let remaining = call.legs.iter().enumerate().filter(|&(i, _)| i != leg.0);
            let (tagged, branches) = remaining.fold((0, 0), |(t, b), (_, l)| {
                (
                    t + usize::from(!l.tag.is_empty()),
                    b + usize::from(l.via_branch.is_some()),
                )
            });
            if tagged >= 2 || branches > 0 {
                let snapshot = report::snapshot(call);
                let branch = req.via_branch.clone().unwrap_or_default();
                if delay.is_zero() {
                    call.remove_leg(leg);
                    let plan = call.plan();
                    self.media.apply(plan);
                    Self::save(&self.store, call, now);
                    info!(call_id = %Pii(&req.call_id), branch = %Pii(&branch), "call branch deleted");
                } else {
                    call.leg_mut(leg).delete_at = Some(now.mono + delay);
                    info!(call_id = %Pii(&req.call_id), branch = %Pii(&branch), delay_s = delay.as_secs(), "call branch deleted, lingering");
                }
                return Ok(DeleteReply {
                    snapshot: Some(snapshot),
                    warning: None,
                });
            }
        }
        let tags_match = [&req.from_tag, &req.to_tag]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .all(|t| call.leg_by_tag(t).is_some());
        if !tags_match {
            return not_found(req.flags.fatal);
        }
        let delay = req
            .delete_delay
            .or(call.delete_delay)
            .unwrap_or(self.config.delete_delay);
        let snapshot = report::snapshot(call);
        if call.record {
            // The recording ends with the call's signalling, even if media lingers.
            Self::stop_recording(&self.recorder, call, now);
            if !delay.is_zero() {
                let plan = call.plan();
                self.media.apply(plan);
            }
        }
        if delay.is_zero() {
            let call = self.calls.remove(&req.call_id).expect("call present");
            self.intercept_ended(&call);
            self.media.remove(call.key);
            if call.delete_at.is_none() {
                self.totals.deleted += 1;
                self.totals.ended(&call, now);
            }
            self.unpersist(&req.call_id);
            info!(call_id = %Pii(&req.call_id), "call deleted");
        } else if call.delete_at.is_none() {
            call.delete_at = Some(now.mono + delay);
            if call.has_t38_gateway() {
                // A T.38 gateway stops with the signalling (rtpengine's `media_stop`),
                // while the call itself lingers.
                let plan = call.plan();
                self.media.apply(plan);
            }
            self.totals.deleted += 1;
            self.totals.ended(call, now);
            // Signalling is over: a successor has nothing to take over.
            self.unpersist(&req.call_id);
            info!(call_id = %Pii(&req.call_id), delay_s = delay.as_secs(), "call deleted, lingering");
        }
        Ok(DeleteReply {
            snapshot: Some(snapshot),
            warning: None,
        })
    }

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

    /// Timers: idle/silent/final timeouts and purging deleted calls. Call about once a second.
    pub fn tick(&mut self, now: Now) -> Vec<CallEvent> {
        self.started.get_or_insert(now.mono);
        let now_ms = now.unix_us / 1000;
        let mut ended = Vec::new();
        for (id, call) in &mut self.calls {
            report::refresh_rtt(call);
            // Branches deleted with a delay whose time has come.
            let due: Vec<LegId> = (0..call.legs.len())
                .rev()
                .map(LegId)
                .filter(|&l| call.leg(l).delete_at.is_some_and(|at| now.mono >= at))
                .collect();
            if !due.is_empty() {
                for leg in due {
                    call.remove_leg(leg);
                }
                let plan = call.plan();
                self.media.apply(plan);
                Self::save(&self.store, call, now);
                debug!(call_id = %Pii(id), "deleted call branch purged");
            }
            if let Some(at) = call.delete_at {
                if now.mono >= at {
                    ended.push((id.clone(), None));
                }
                continue;
            }
            let age = now.mono.saturating_duration_since(call.created);
            if !self.config.final_timeout.is_zero() && age >= self.config.final_timeout {
                ended.push((id.clone(), Some("final timeout")));
                continue;
            }
            // Idle time: since the last packet, or since the last signalling if none came later.
            let since_packet = match call.last_packet_ms() {
                0 => Duration::MAX,
                ms => Duration::from_millis(now_ms.saturating_sub(ms)),
            };
            let idle = since_packet.min(now.mono.saturating_duration_since(call.last_signal_at));
            let (limit, reason) = if call.all_on_hold() {
                (self.config.silent_timeout, "silent timeout")
            } else {
                (self.config.timeout, "timeout")
            };
            if !limit.is_zero() && idle >= limit {
                ended.push((id.clone(), Some(reason)));
            }
        }
        let mut events = Vec::with_capacity(ended.len());
        for (id, reason) in ended {
            let mut call = self.calls.remove(&id).expect("listed above");
            Self::stop_recording(&self.recorder, &mut call, now);
            self.intercept_ended(&call);
            self.media.remove(call.key);
            match reason {
                Some(reason) => {
                    self.unpersist(&id);
                    self.totals.timed_out += 1;
                    match reason {
                        "silent timeout" => self.totals.silent_timeout += 1,
                        "final timeout" => self.totals.final_timeout += 1,
                        _ => {}
                    }
                    self.totals.ended(&call, now);
                    info!(call_id = %Pii(&id), reason, "call ended by timer");
                    events.push(CallEvent::TimedOut {
                        call_id: id,
                        reason,
                    });
                }
                None => events.push(CallEvent::Purged { call_id: id }),
            }
        }
        events
    }

    /// Tear every call down (daemon shutdown). With a store the calls are not ended: their
    /// final state is saved for the engine that takes them over (restart, standby). Returns
    /// how many calls were left in the store that way.
    pub fn shutdown(&mut self, now: Now) -> usize {
        let calls: Vec<(String, Call)> = self.calls.drain().collect();
        let mut handed_over = 0;
        for (id, mut call) in calls {
            let hand_over = self.store.is_some() && call.delete_at.is_none();
            if hand_over {
                Self::save(&self.store, &mut call, now);
                handed_over += 1;
            }
            Self::stop_recording(&self.recorder, &mut call, now);
            self.intercept_ended(&call);
            self.media.remove(call.key);
            if hand_over {
                info!(call_id = %Pii(&id), "call left in the store at shutdown");
            } else {
                info!(call_id = %Pii(&id), "call closed at shutdown");
            }
        }
        handed_over
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Whether `call_id` is a call held here (deleted ones in their delete delay included).
    pub fn contains(&self, call_id: &str) -> bool {
        self.calls.contains_key(call_id)
    }
}

/// The leg a `delete` names by SIP branch alone (rtpengine's `call_delete_branch`): with a
/// from-tag and a `via-branch` but no to-tag, the branch is tried first; with tags that are
/// not (or no longer) known, the branch is the last resort.
fn branch_to_delete(call: &Call, req: &Delete) -> Option<LegId> {
    let branch = req.via_branch.as_deref().filter(|b| !b.is_empty())?;
    req.from_tag.as_deref().filter(|t| !t.is_empty())?;
    let to = req.to_tag.as_deref().filter(|t| !t.is_empty());
    let by_branch = call.leg_by_branch(branch);
    match to {
        None => by_branch,
        Some(to) if call.leg_by_tag(to).is_none() => by_branch,
        Some(_) => None,
    }
}
