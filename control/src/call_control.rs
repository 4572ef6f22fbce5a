//! What the front ends ask of the call registry. The ng server (`ng`) and the HTTP API
//! (`http`) both drive calls through [`CallControl`] (the engine's `Calls`, or a fake in
//! tests) and stamp each request with [`now`]. Neither front end owns these, so neither
//! depends on the other.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::calls::{
    CallError, Calls, DeleteReply, Now, OfferAnswerReply, PlayReply, StopReply, SubscribeReply,
};
use ngmedia_engine::core::request::{
    Delete, List, MediaControlRequest, OfferAnswer, PlayDtmf, PlayMedia, Query, Recording,
    StopMedia,
};
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics};

/// What a front end needs from the engine: the `Calls` registry, or a fake in tests.
pub trait CallControl: Send + 'static {
    fn offer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError>;
    fn answer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError>;
    fn delete(&mut self, req: &Delete, now: Now) -> Result<DeleteReply, CallError>;
    fn query(&self, req: &Query, now: Now) -> Result<CallSnapshot, CallError>;
    fn list(&self, req: &List) -> Vec<String>;
    fn statistics(&self, now: Now) -> EngineStatistics;
    /// `start recording` / `stop recording` / `pause recording`.
    fn recording(&mut self, _req: &Recording, _now: Now) -> Result<(), CallError> {
        Err(CallError::RecordingDisabled)
    }
    /// `play media`.
    fn play_media(&mut self, _req: &PlayMedia, _now: Now) -> Result<PlayReply, CallError> {
        Err(CallError::PlaybackDisabled)
    }
    /// `stop media`.
    fn stop_media(&mut self, _req: &StopMedia, _now: Now) -> Result<StopReply, CallError> {
        Err(CallError::PlaybackDisabled)
    }
    /// `start forwarding` / `stop forwarding`.
    fn forwarding(&mut self, _req: &Forwarding, _now: Now) -> Result<(), CallError> {
        Err(CallError::ForwardingDisabled)
    }
    /// `publish`: the answer SDP for the publisher.
    fn publish(&mut self, _req: &OfferAnswer, _now: Now) -> Result<String, CallError> {
        Err(CallError::SubscriptionsDisabled)
    }
    /// `subscribe request`.
    fn subscribe_request(
        &mut self,
        _req: &OfferAnswer,
        _now: Now,
    ) -> Result<SubscribeReply, CallError> {
        Err(CallError::SubscriptionsDisabled)
    }
    /// `subscribe answer`.
    fn subscribe_answer(&mut self, _req: &OfferAnswer, _now: Now) -> Result<(), CallError> {
        Err(CallError::SubscriptionsDisabled)
    }
    /// `unsubscribe`.
    fn unsubscribe(&mut self, _req: &OfferAnswer, _now: Now) -> Result<(), CallError> {
        Err(CallError::SubscriptionsDisabled)
    }
    /// Calls held (deleted ones in their delete delay included), for `--max-sessions`.
    fn sessions(&self) -> usize {
        0
    }
    /// Whether `call_id` is held here: a re-offer of an existing call is never refused by a
    /// load limit.
    fn has_call(&self, _call_id: &str) -> bool {
        false
    }
    /// `block DTMF`, `block media`, `silence media` and their `un…` counterparts.
    fn media_control(&mut self, _req: &MediaControlRequest, _now: Now) -> Result<(), CallError> {
        Err(CallError::UnknownCallId)
    }
    /// `play DTMF`.
    fn play_dtmf(&mut self, _req: &PlayDtmf, _now: Now) -> Result<(), CallError> {
        Err(CallError::UnknownCallId)
    }
}

impl CallControl for Calls {
    fn offer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        Calls::offer(self, req, now)
    }
    fn answer(&mut self, req: &OfferAnswer, now: Now) -> Result<OfferAnswerReply, CallError> {
        Calls::answer(self, req, now)
    }
    fn delete(&mut self, req: &Delete, now: Now) -> Result<DeleteReply, CallError> {
        Calls::delete(self, req, now)
    }
    fn query(&self, req: &Query, now: Now) -> Result<CallSnapshot, CallError> {
        Calls::query(self, req, now)
    }
    fn list(&self, req: &List) -> Vec<String> {
        Calls::list(self, req)
    }
    fn statistics(&self, now: Now) -> EngineStatistics {
        Calls::statistics(self, now)
    }
    fn recording(&mut self, req: &Recording, now: Now) -> Result<(), CallError> {
        Calls::recording(self, req, now)
    }
    fn play_media(&mut self, req: &PlayMedia, now: Now) -> Result<PlayReply, CallError> {
        Calls::play_media(self, req, now)
    }
    fn stop_media(&mut self, req: &StopMedia, now: Now) -> Result<StopReply, CallError> {
        Calls::stop_media(self, req, now)
    }
    fn media_control(&mut self, req: &MediaControlRequest, now: Now) -> Result<(), CallError> {
        Calls::media_control(self, req, now)
    }
    fn play_dtmf(&mut self, req: &PlayDtmf, now: Now) -> Result<(), CallError> {
        Calls::play_dtmf(self, req, now)
    }
    fn forwarding(&mut self, req: &Forwarding, now: Now) -> Result<(), CallError> {
        Calls::forwarding(
            self,
            &req.call_id,
            [req.from_tag.as_deref(), req.to_tag.as_deref()],
            req.start,
            now,
        )
    }
    fn publish(&mut self, req: &OfferAnswer, now: Now) -> Result<String, CallError> {
        Calls::publish(self, req, now)
    }
    fn subscribe_request(
        &mut self,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<SubscribeReply, CallError> {
        Calls::subscribe_request(self, req, now)
    }
    fn subscribe_answer(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        Calls::subscribe_answer(self, req, now)
    }
    fn unsubscribe(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        Calls::unsubscribe(self, req, now)
    }
    fn sessions(&self) -> usize {
        Calls::len(self)
    }
    fn has_call(&self, call_id: &str) -> bool {
        Calls::contains(self, call_id)
    }
}

/// `start forwarding` / `stop forwarding` (rtpengine: media forwarding of a call to the
/// configured destination, `CALL_FLAG_FORWARDING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub start: bool,
}

/// The current time for a request.
pub fn now() -> Now {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Now {
        mono: Instant::now(),
        unix_us,
    }
}
