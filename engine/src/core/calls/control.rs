//! Media control commands and `play DTMF` (rtpengine's `call_block_dtmf_ng`,
//! `call_block_media_ng`, `call_silence_media_ng`, their `un…` counterparts and
//! `call_play_dtmf_ng` in `call_interfaces.c`).
//!
//! A command names one party (`label`, `address` or `from-tag`: what *that party sends* is
//! affected) or, with none of them or with `all`, the whole call. The setting is recorded
//! on the leg or on the call ([`MediaControl`]), stored with the call (so a standby that
//! takes over keeps it), and reaches the packet path through the next plan.

use std::net::IpAddr;

use ngmedia_codecs::{Codec, CodecKind};
use tracing::info;

use super::model::{Call, LegId};
use super::{CallError, Calls, Now};
use crate::core::dtmf_inject::{DtmfDigit, InjectTarget};
use crate::core::media_control::{BlockDtmf, MediaControl};
use crate::core::pii::Pii;
use crate::core::request::{
    ControlAction, ControlTarget, FlowSet, MediaControlRequest, OfferAnswer, PlayDtmf,
};

/// The party a command names, `None` for the whole call (rtpengine's `media_block_match`);
/// a `set-label` labels the party named.
pub(super) fn select(call: &mut Call, t: &ControlTarget) -> Result<Option<LegId>, CallError> {
    let leg = find(call, t)?;
    if let (Some(leg), Some(label)) = (leg, t.set_label.as_deref().filter(|l| !l.is_empty())) {
        call.set_label(leg, label);
    }
    Ok(leg)
}

fn find(call: &Call, t: &ControlTarget) -> Result<Option<LegId>, CallError> {
    if t.all {
        return Ok(None);
    }
    if let Some(label) = t.label.as_deref().filter(|l| !l.is_empty()) {
        return call
            .leg_by_label(label)
            .map(Some)
            .ok_or(CallError::NoLabelMatch);
    }
    if let Some(address) = t.address.as_deref().filter(|a| !a.is_empty()) {
        let ip: IpAddr = address.trim().parse().map_err(|_| CallError::BadAddress)?;
        return call
            .legs
            .iter()
            .position(|l| {
                l.medias
                    .first()
                    .and_then(|m| m.advertised_rtp)
                    .is_some_and(|a| a.ip() == ip)
            })
            .map(|i| Some(LegId(i)))
            .ok_or(CallError::NoAddressMatch);
    }
    if let Some(tag) = t.from_tag.as_deref().filter(|t| !t.is_empty()) {
        return call
            .leg_by_tag(tag)
            .map(Some)
            .ok_or(CallError::NoSuchFromTag);
    }
    Ok(None)
}

/// Apply `action` to one setting (a leg's or the call's).
fn set(control: &mut MediaControl, action: &ControlAction) {
    match action {
        ControlAction::BlockDtmf(o) => {
            // With a trigger, nothing is blocked until it matches unless a mode is given
            // (rtpengine's `call_set_dtmf_block`).
            let default = if o.trigger.is_some() {
                BlockDtmf::Off
            } else {
                BlockDtmf::Drop
            };
            let mode = o.mode.unwrap_or(default);
            control.block_dtmf = mode;
            // rtpengine sets the delays (and resets `DTMF-delay` when not given) only with
            // a replacing mode, a `delay-buffer` or a trigger.
            let replace = !matches!(mode, BlockDtmf::Off | BlockDtmf::Drop);
            if replace || o.delay_buffer.is_some() || o.trigger.is_some() {
                if o.delay_buffer.is_some() {
                    control.delay_buffer = o.delay_buffer;
                }
                control.dtmf_delay = o.dtmf_delay.unwrap_or(0);
            }
            if o.frequency.is_some() {
                control.tone_freq = o.frequency;
            }
            if !o.frequencies.is_empty() {
                control.frequencies = o.frequencies.clone();
            }
            if o.trigger.is_some() {
                control.trigger = o.trigger.clone();
            }
            if o.digit.is_some() {
                control.digit = o.digit;
            }
            if o.volume.is_some() {
                control.volume = o.volume;
            }
        }
        ControlAction::UnblockDtmf { delay_buffer } => {
            control.block_dtmf = BlockDtmf::Off;
            control.trigger = None;
            if delay_buffer.is_some() {
                control.delay_buffer = *delay_buffer;
            }
        }
        ControlAction::BlockMedia => control.block_media = true,
        ControlAction::UnblockMedia => control.block_media = false,
        ControlAction::SilenceMedia => control.silence_media = true,
        ControlAction::UnsilenceMedia => control.silence_media = false,
    }
}

/// The parties receiving the media flows of `from` that a `block`/`silence media` names
/// (`to-tag`, `to-label`, or `all` with a flow keyword), `None` when it names none (the
/// party as a whole is meant). rtpengine's `call_block_silence_media` and its errors.
fn flow_sinks(
    call: &Call,
    from: LegId,
    t: &ControlTarget,
) -> Result<Option<Vec<String>>, CallError> {
    // Who receives what `from` sends: its peer (offer/answer) and its subscribers.
    let peer = call.leg(from).peer;
    let subscribers: Vec<LegId> = call
        .legs
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.subscription.is_some()
                && l.medias
                    .iter()
                    .any(|m| m.source.is_some_and(|s| s.0 == from))
        })
        .map(|(i, _)| LegId(i))
        .collect();
    let receives = |sink: LegId| peer == Some(sink) || subscribers.contains(&sink);
    let sink = if let Some(tag) = t.to_tag.as_deref() {
        Some(call.leg_by_tag(tag).ok_or(CallError::FlowToTagNotFound)?)
    } else if let Some(label) = t.to_label.as_deref() {
        Some(
            call.leg_by_label(label)
                .ok_or(CallError::FlowToLabelNotFound)?,
        )
    } else {
        None
    };
    if let Some(sink) = sink {
        if !receives(sink) {
            return Err(CallError::FlowNotSubscribed);
        }
        return Ok(Some(vec![call.leg(sink).tag.clone()]));
    }
    let Some(set) = t.flows else {
        return Ok(None);
    };
    let mut sinks: Vec<LegId> = Vec::new();
    if matches!(set, FlowSet::OfferAnswer | FlowSet::All) {
        sinks.extend(peer);
    }
    if matches!(set, FlowSet::ExceptOfferAnswer | FlowSet::All) {
        sinks.extend(subscribers.iter().copied());
    }
    if sinks.is_empty() {
        return Err(CallError::NoEligibleSubscription);
    }
    Ok(Some(
        sinks.into_iter().map(|l| call.leg(l).tag.clone()).collect(),
    ))
}

/// Apply a `block`/`silence media` to the flows toward `sinks` (tags) only.
fn set_flows(control: &mut MediaControl, action: &ControlAction, sinks: Vec<String>) {
    let (list, on) = match action {
        ControlAction::BlockMedia => (&mut control.blocked_to, true),
        ControlAction::UnblockMedia => (&mut control.blocked_to, false),
        ControlAction::SilenceMedia => (&mut control.silenced_to, true),
        ControlAction::UnsilenceMedia => (&mut control.silenced_to, false),
        other => return set(control, other),
    };
    for tag in sinks {
        if on && !list.contains(&tag) {
            list.push(tag);
        } else if !on {
            list.retain(|t| *t != tag);
        }
    }
}

/// The `block-DTMF` flag of an offer or answer blocks what the sending party (`from`)
/// sends, in the `DTMF-security` mode given (rtpengine's `call_set_dtmf_block`).
pub(super) fn on_offer_answer(call: &mut Call, from: LegId, req: &OfferAnswer) {
    if let Some(o) = &req.block_dtmf {
        set(
            &mut call.leg_mut(from).control,
            &ControlAction::BlockDtmf(o.clone()),
        );
    }
}

/// An event code from ng `code`/`digit`: a code 0–15 as is, else a character's byte.
pub fn dtmf_code(code: i64) -> Option<u8> {
    match code {
        0..=15 => Some(code as u8),
        _ => {
            let c = u8::try_from(code).ok()? as char;
            ngmedia_codecs::dtmf::char_to_event(c.to_ascii_uppercase())
        }
    }
}

/// Default and bounds of `duration` and `pause` (ms), rtpengine's.
fn clamp_ms(v: Option<i64>, default: i64) -> u32 {
    match v.unwrap_or(0) {
        0 => default as u32,
        v => v.clamp(100, 5000) as u32,
    }
}

/// `volume` when the request has none (-dBm0). rtpengine plays at its quietest level
/// then; a digit nobody hears helps nobody.
pub const DEFAULT_DTMF_VOLUME: u8 = 10;

impl Calls {
    /// `block DTMF`, `unblock DTMF`, `block media`, `unblock media`, `silence media`,
    /// `unsilence media`.
    pub fn media_control(&mut self, req: &MediaControlRequest, now: Now) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&req.call_id)
            .ok_or(CallError::UnknownCallId)?;
        let leg = select(call, &req.target)?;
        let flows = match leg {
            Some(l) => flow_sinks(call, l, &req.target)?,
            None => None,
        };
        match (leg, flows) {
            (Some(l), Some(sinks)) => set_flows(&mut call.leg_mut(l).control, &req.action, sinks),
            (Some(l), None) => set(&mut call.leg_mut(l).control, &req.action),
            (None, _) => {
                set(&mut call.control, &req.action);
                // `unblock …` with `all` also clears what was set per party.
                let clears = matches!(
                    req.action,
                    ControlAction::UnblockDtmf { .. }
                        | ControlAction::UnblockMedia
                        | ControlAction::UnsilenceMedia
                );
                if clears && req.target.all {
                    for l in &mut call.legs {
                        set(&mut l.control, &req.action);
                        match req.action {
                            ControlAction::UnblockMedia => l.control.blocked_to.clear(),
                            ControlAction::UnsilenceMedia => l.control.silenced_to.clear(),
                            _ => {}
                        }
                    }
                }
            }
        }
        info!(
            call_id = %Pii(&req.call_id),
            party = ?leg.map(|l| Pii(call.leg(l).tag.clone())),
            action = ?req.action,
            "media control"
        );
        let plan = call.plan();
        self.media.apply(plan);
        Self::save(&self.store, call, now);
        Ok(())
    }

    /// `play DTMF`: queue the digit into what the selected party sends to its peer.
    pub fn play_dtmf(&mut self, req: &PlayDtmf, now: Now) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&req.call_id)
            .ok_or(CallError::UnknownCallId)?;
        let selected = select(call, &req.target)?;
        if selected.is_some() && req.target.set_label.is_some() {
            Self::save(&self.store, call, now);
        }
        let call = &*call;
        let legs: Vec<LegId> = match selected {
            Some(l) => vec![l],
            None if req.target.all => (0..call.legs.len()).map(LegId).collect(),
            None => return Err(CallError::NoParty),
        };
        let event = req
            .code
            .and_then(dtmf_code)
            .ok_or(CallError::DtmfCodeOutOfRange)?;
        let volume = match req.volume {
            None => DEFAULT_DTMF_VOLUME,
            Some(v) => v.unsigned_abs().min(63) as u8,
        };
        let digit = DtmfDigit {
            event,
            volume,
            duration_ms: clamp_ms(req.duration_ms, 250),
            pause_ms: clamp_ms(req.pause_ms, 100),
        };
        let mut jobs = Vec::new();
        for leg in legs {
            let l = call.leg(leg);
            let Some(mi) = l
                .medias
                .iter()
                .position(|m| m.kind == "audio" && m.ports.is_some())
            else {
                return Err(CallError::NoDtmfMedia);
            };
            let sink = l
                .peer
                .map(|p| call.leg(p))
                .and_then(|p| p.medias.get(mi))
                .filter(|m| m.kind == "audio" && m.ports.is_some())
                .ok_or(CallError::NoDtmfSink)?;
            let media = &l.medias[mi];
            let (target, ptime) = match media.codec_state.transcode_rx {
                // Transcoded: digits go into the transcoder's output.
                Some(spec) => (
                    InjectTarget {
                        event_pt: spec.output.event_pt,
                        audio: vec![(spec.output.pt, spec.output.codec)],
                    },
                    spec.output.ptime_ms,
                ),
                // Passthrough: what the peer's SDP says it receives.
                None => {
                    let audio: Vec<(u8, Codec)> = sink
                        .codecs
                        .iter()
                        .filter_map(|c| {
                            let codec =
                                Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref())
                                    .ok()?;
                            (codec.kind() != CodecKind::TelephoneEvent).then_some((c.pt, codec))
                        })
                        .collect();
                    let clock = audio.first().map_or(8000, |(_, c)| c.clock_rate);
                    let event_pt = sink
                        .codecs
                        .iter()
                        .find(|c| {
                            c.name.eq_ignore_ascii_case("telephone-event") && c.clock_rate == clock
                        })
                        .map(|c| c.pt);
                    (
                        InjectTarget { event_pt, audio },
                        sink.ptime.or(media.ptime).unwrap_or(20),
                    )
                }
            };
            let Some(ports) = media.ports else { continue };
            jobs.push((ports.rtp.key, target, ptime));
        }
        let key = call.key;
        if let Some(call) = self.calls.get_mut(&req.call_id) {
            if call.end_srtp_passthrough() {
                let plan = call.plan();
                self.media.apply(plan);
            }
        }
        for (port, target, ptime) in jobs {
            info!(
                call_id = %Pii(&req.call_id),
                event = digit.event,
                rfc4733 = target.event_pt.is_some(),
                "DTMF digit queued"
            );
            self.media.play_dtmf(key, port, digit, target, ptime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_as_rtpengine_reads_them() {
        assert_eq!(dtmf_code(0), Some(0));
        assert_eq!(dtmf_code(15), Some(15));
        assert_eq!(dtmf_code(i64::from(b'0')), Some(0));
        assert_eq!(dtmf_code(i64::from(b'*')), Some(10));
        assert_eq!(dtmf_code(i64::from(b'#')), Some(11));
        assert_eq!(dtmf_code(i64::from(b'D')), Some(15));
        assert_eq!(dtmf_code(16), None);
        assert_eq!(dtmf_code(-1), None);
        assert_eq!(dtmf_code(i64::from(b'X')), None);
    }

    #[test]
    fn duration_and_pause_bounds() {
        assert_eq!(clamp_ms(None, 250), 250);
        assert_eq!(clamp_ms(Some(0), 250), 250);
        assert_eq!(clamp_ms(Some(20), 250), 100);
        assert_eq!(clamp_ms(Some(9000), 100), 5000);
        assert_eq!(clamp_ms(Some(120), 100), 120);
    }
}
