//! `play media` / `stop media` and music on hold (rtpengine's `call_play_media_ng`,
//! `call_stop_media_ng` and the `moh` handling of `call_interfaces.c`).
//!
//! The selected party *receives* the media: the player runs on that party's RTP socket and
//! sends toward the party's address, in the first codec of the party's SDP that we can
//! encode (or the transcoder's output codec toward it), with the party's payload type.
//!
//! Music on hold: a party whose offer carried `moh` and whose later re-offer puts the other
//! party on hold (`a=sendonly`, `a=inactive` or `c=0.0.0.0` on an audio m= line) gets the
//! music played to the other party, repeated until a re-offer resumes (any audio line back
//! to sending), which stops it. `mode` and `connection` are remembered but do not change
//! the SDP: the held party receives the holder's `sendonly` as is.

use std::sync::Arc;
use std::time::Instant;

use ngmedia_codecs::{Codec, CodecKind};
use tracing::{info, warn};

use super::model::{Call, LegId, Playing};
use super::{CallError, Calls};
use crate::core::pii::Pii;
use crate::core::player::{PlayOptions, PlaySpec};
use crate::core::request::{MediaSource, PartySelector, PlayMedia, StopMedia};
use crate::core::sdp::{Direction, Sdp};
use crate::core::state::PlayingRecord;

/// Reply to `play media`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayReply {
    /// Duration of the file in ms (ng `duration`).
    pub duration_ms: u64,
}

/// Reply to `stop media`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReply {
    /// Position of the last frame played, ms (ng `last-frame-pos`), when something played.
    pub last_frame_pos_ms: Option<u64>,
}

/// One audio m= line of a party the player can send to.
struct Target {
    port: crate::core::plan::PortKey,
    media: usize,
    codec: Codec,
    pt: u8,
}

/// The parties a selector names: the party named as for the media control commands
/// (`label`, `address`, `from-tag`; `set-label` labels it), and the party of `to-tag` or
/// `to-label`. Nothing named: rtpengine's `No participant party specified`.
fn select(call: &mut Call, sel: &PartySelector) -> Result<Vec<LegId>, CallError> {
    if sel.party.all {
        return Ok((0..call.legs.len()).map(LegId).collect());
    }
    let mut out: Vec<LegId> = super::control::select(call, &sel.party)?
        .into_iter()
        .collect();
    if let Some(tag) = sel.to_tag.as_deref().filter(|t| !t.is_empty()) {
        out.push(call.leg_by_tag(tag).ok_or(CallError::NotFound)?);
    }
    if let Some(label) = sel.to_label.as_deref().filter(|t| !t.is_empty()) {
        out.push(call.leg_by_label(label).ok_or(CallError::NoLabelMatch)?);
    }
    out.dedup();
    if out.is_empty() {
        return Err(CallError::NoParty);
    }
    Ok(out)
}

/// The audio lines of `leg` with a codec the player can encode.
fn targets(call: &Call, leg: LegId) -> Vec<Target> {
    let l = call.leg(leg);
    let peer = l.peer.map(|p| call.leg(p));
    let mut out = Vec::new();
    for (mi, m) in l.medias.iter().enumerate() {
        let Some(ports) = m.ports else { continue };
        if m.kind != "audio" {
            continue;
        }
        // What the party receives when transcoding: the transcoder's output toward it.
        let transcoded = peer
            .and_then(|p| p.medias.get(mi))
            .and_then(|pm| pm.codec_state.transcode_rx)
            .map(|t| (t.output.codec, t.output.pt));
        let listed = m.codecs.iter().find_map(|c| {
            let codec = Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref()).ok()?;
            (codec.kind() != CodecKind::TelephoneEvent).then_some((codec, c.pt))
        });
        if let Some((codec, pt)) = transcoded.or(listed) {
            out.push(Target {
                port: ports.rtp.key,
                media: mi,
                codec,
                pt,
            });
        }
    }
    out
}

/// Audio m= lines of an offer that put the other party on hold.
pub(super) fn holds(sdp: &Sdp) -> bool {
    let audio: Vec<usize> = (0..sdp.media.len())
        .filter(|&i| sdp.media[i].m.kind == "audio" && sdp.media[i].m.port != 0)
        .collect();
    !audio.is_empty()
        && audio.iter().all(|&i| {
            matches!(
                sdp.media_direction(i),
                Direction::SendOnly | Direction::Inactive
            ) || sdp.media_connection(i).is_some_and(|a| a.is_unspecified())
        })
}

impl Calls {
    /// Start again what was playing toward each party of a call taken over from stored
    /// state, from where it was.
    pub(super) fn resume_players(
        &mut self,
        call_id: &str,
        players: Vec<(LegId, PlayingRecord)>,
        now: Instant,
    ) {
        for (leg, p) in players {
            let options = PlayOptions {
                repeat: p.repeat,
                start_ms: p.position_ms,
                max_ms: None,
            };
            if let Err(e) = self.start_play(call_id, &[leg], &p.source, options, p.moh, now) {
                warn!(call_id = %Pii(call_id), error = %e, "playback not resumed after takeover");
            }
        }
    }

    /// Start playing `source` toward the legs' audio lines. Returns the file's duration.
    pub(super) fn start_play(
        &mut self,
        call_id: &str,
        legs: &[LegId],
        source: &MediaSource,
        options: PlayOptions,
        moh: bool,
        now: Instant,
    ) -> Result<u64, CallError> {
        let failed = |what: &'static str, e: String| {
            warn!(call_id = %Pii(call_id), error = %e, "media playback failed");
            CallError::PlaybackFailed(what)
        };
        let what = match source {
            MediaSource::File(_) => "file",
            MediaSource::Blob(_) => "blob",
            MediaSource::DbId(_) => "database",
        };
        let loader = self
            .media_loader
            .clone()
            .ok_or_else(|| failed(what, "no media loader".into()))?;
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        // Played media is protected with our keys: SRTP passed through untouched until now
        // is decrypted and encrypted anew from here on.
        if call.end_srtp_passthrough() {
            let plan = call.plan();
            self.media.apply(plan);
        }
        let mut duration = None;
        let mut started = 0;
        for &leg in legs {
            for t in targets(call, leg) {
                let (frames, dur) = loader
                    .frames(source, &t.codec)
                    .map_err(|e| failed(what, e))?;
                duration.get_or_insert(dur);
                call.leg_mut(leg).medias[t.media].playing = Some(Playing {
                    started: now,
                    start_ms: options.start_ms,
                    duration_ms: dur,
                    repeat: options.repeat,
                    moh,
                    source: (!matches!(source, MediaSource::Blob(_)))
                        .then(|| Arc::new(source.clone())),
                });
                self.media.play(
                    call.key,
                    t.port,
                    Some(PlaySpec {
                        frames: Arc::clone(&frames),
                        pt: t.pt,
                        options,
                    }),
                );
                started += 1;
            }
        }
        if started == 0 {
            return Err(failed(what, "no audio stream with a playable codec".into()));
        }
        info!(call_id = %Pii(call_id), streams = started, moh, "media playback started");
        Ok(duration.unwrap_or(0))
    }

    /// Stop players toward the legs (only music on hold when `moh_only`); the position of
    /// the last one stopped.
    fn stop_play(
        &mut self,
        call_id: &str,
        legs: &[LegId],
        moh_only: bool,
        now: Instant,
    ) -> Option<u64> {
        let call = self.calls.get_mut(call_id)?;
        let mut pos = None;
        for &leg in legs {
            for mi in 0..call.leg(leg).medias.len() {
                let m = &mut call.leg_mut(leg).medias[mi];
                let Some(p) = &m.playing else { continue };
                if moh_only && !p.moh {
                    continue;
                }
                pos = Some(p.position_ms(now));
                m.playing = None;
                if let Some(ports) = m.ports {
                    self.media.play(call.key, ports.rtp.key, None);
                }
            }
        }
        pos
    }

    /// `play media`.
    pub fn play_media(&mut self, req: &PlayMedia, now: super::Now) -> Result<PlayReply, CallError> {
        let call = self
            .calls
            .get_mut(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let legs = select(call, &req.target)?;
        let source = req.source.as_ref().ok_or(CallError::NoMediaFile)?;
        let options = PlayOptions {
            repeat: Some(req.repeat_times.unwrap_or(1).max(1)),
            start_ms: req.start_pos_ms.unwrap_or(0),
            max_ms: req.repeat_duration_ms.filter(|&ms| ms > 0),
        };
        let duration_ms = self.start_play(&req.call_id, &legs, source, options, false, now.mono)?;
        self.persist_call(&req.call_id, now);
        Ok(PlayReply { duration_ms })
    }

    /// `stop media`.
    pub fn stop_media(&mut self, req: &StopMedia, now: super::Now) -> Result<StopReply, CallError> {
        let call = self
            .calls
            .get_mut(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let legs = match select(call, &req.target) {
            Ok(l) => l,
            // rtpengine stops every player of the call when no party is named.
            Err(CallError::NoParty) => (0..call.legs.len()).map(LegId).collect(),
            Err(e) => return Err(e),
        };
        let last_frame_pos_ms = self.stop_play(&req.call_id, &legs, false, now.mono);
        self.persist_call(&req.call_id, now);
        Ok(StopReply { last_frame_pos_ms })
    }

    /// After an offer from `from`: start music on hold toward its peer when the offer holds
    /// and `from` asked for music, stop it when the offer resumes.
    pub(super) fn hold_music(&mut self, call_id: &str, from: LegId, sdp: &Sdp, now: Instant) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let Some(peer) = call.leg(from).peer else {
            return;
        };
        let source = call.leg(from).moh.as_ref().and_then(|m| m.source.clone());
        let playing_moh = call
            .leg(peer)
            .medias
            .iter()
            .any(|m| m.playing.as_ref().is_some_and(|p| p.moh));
        if holds(sdp) {
            let Some(source) = source else { return };
            if playing_moh {
                return;
            }
            let options = PlayOptions {
                repeat: None,
                start_ms: 0,
                max_ms: None,
            };
            if let Err(e) = self.start_play(call_id, &[peer], &source, options, true, now) {
                warn!(call_id = %Pii(call_id), error = %e, "music on hold not started");
            }
        } else if playing_moh {
            self.stop_play(call_id, &[peer], true, now);
            info!(call_id = %Pii(call_id), "music on hold stopped (resumed)");
        }
    }
}
