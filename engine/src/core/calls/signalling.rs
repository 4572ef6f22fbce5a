//! `offer`, `answer` and `delete`: the requests of a SIP dialog that create a call, add and
//! pick its parties (forked branches included) and end it, around the negotiation itself.

use tracing::{info, warn};

use super::model::{Call, Leg, LegId};
use super::negotiate::{Exchange, Role};
use super::{control, report};
use super::{CallError, Calls, DeleteReply, Now, OfferAnswerReply};
use crate::core::pii::Pii;
use crate::core::plan::CallKey;
use crate::core::request::{Delete, OfferAnswer};
use crate::core::sdp::Sdp;

impl Calls {
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
        let to_tag = req.to_tag.as_deref().filter(|t| !t.is_empty());
        let to = match (call.leg(from).peer, to_tag, branch) {
            // An initial offer on a SIP branch: parallel forks of one INVITE each get a leg.
            (_, None, Some(branch)) => Self::branch_leg(call, from, branch, now),
            (Some(p), None, None) => p,
            (None, None, None) => {
                call.legs.push(Leg::new("", now.unix_secs(), 0));
                LegId(call.legs.len() - 1)
            }
            (peer, Some(tag), _) => Self::tagged_peer_leg(call, from, peer, tag, branch, now),
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

    /// The other side of an offer from `from` that names `to_tag` (a re-INVITE), as rtpengine
    /// picks it: the leg with that tag; else the current peer while it has no tag yet (its
    /// answer tags it); else a new leg, with its own ports: the dialogue now goes to another
    /// party (a re-tagged re-INVITE after a transfer), and the former peer keeps its ports
    /// for an offer that names it again.
    fn tagged_peer_leg(
        call: &mut Call,
        from: LegId,
        peer: Option<LegId>,
        to_tag: &str,
        branch: Option<&str>,
        now: Now,
    ) -> LegId {
        if let Some(l) = call.leg_by_tag(to_tag).filter(|&l| l != from) {
            return l;
        }
        if let Some(p) = peer.filter(|&p| call.leg(p).tag.is_empty()) {
            return p;
        }
        let mut leg = Leg::new(to_tag, now.unix_secs(), 0);
        leg.via_branch = branch.map(str::to_owned);
        call.legs.push(leg);
        info!(call_id = %Pii(&call.id), tag = %Pii(&to_tag), "offer toward a new party of the call");
        LegId(call.legs.len() - 1)
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
        let to_tag = req.to_tag.as_deref().ok_or(CallError::NoToTag)?;
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
