//! Recording and interception of calls: what the recording and interception sinks are told
//! about a call, and `start`/`stop`/`pause recording` and `start`/`stop forwarding`.

use std::sync::Arc;

use tracing::info;

use super::model::Call;
use super::{CallError, Calls, Now};
use crate::core::plan::MediaPlane;
use crate::core::request::{Recording, RecordingAction};
use crate::core::tap::{InterceptSink, RecordingEvent, RecordingSink};

impl Calls {
    /// Ask the interceptor which streams of `call` to copy; a changed answer goes to the
    /// media plane as a new plan (nothing else about the call changes). Returns whether a
    /// plan was applied.
    pub(super) fn update_intercept(
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

    pub(super) fn intercept_ended(&self, call: &Call) {
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
            return Err(CallError::ForwardingDisabled);
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

    /// Tell the recorder what a recorded call looks like now (after offer/answer or a
    /// recording request). A paused call stays paused.
    pub(super) fn report_recording(&self, call: &Call, now: Now) {
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
    pub(super) fn stop_recording(
        recorder: &Option<Arc<dyn RecordingSink>>,
        call: &mut Call,
        now: Now,
    ) {
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
            return Err(CallError::RecordingDisabled);
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
}
