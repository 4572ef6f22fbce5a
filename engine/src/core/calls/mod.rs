//! The call registry: every call the engine handles, driven by typed requests.
//! (Skeleton: the signatures are the contract; bodies are being written.)

use std::sync::Arc;
use std::time::Instant;

use super::config::EngineConfig;
use super::plan::{MediaPlane, PortError};
use super::request::{Delete, List, OfferAnswer, Query};
use super::sdp::SdpError;
use super::snapshot::{CallSnapshot, EngineStatistics};

/// The moment a request is handled: monotonic for timers, wall clock for reports.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    /// Unix time in microseconds.
    pub unix_us: u64,
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
    TimedOut { call_id: String, reason: &'static str },
    /// A deleted call's delay ran out and its state is gone.
    Purged { call_id: String },
}

/// All calls (rtpengine's call hash).
pub struct Calls {
    _config: Arc<EngineConfig>,
    _media: Arc<dyn MediaPlane>,
}

impl Calls {
    pub fn new(config: Arc<EngineConfig>, media: Arc<dyn MediaPlane>) -> Calls {
        Calls { _config: config, _media: media }
    }

    pub fn offer(&mut self, _req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
        todo!()
    }

    pub fn answer(&mut self, _req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
        todo!()
    }

    pub fn delete(&mut self, _req: &Delete, _now: Now) -> Result<DeleteReply, CallError> {
        todo!()
    }

    pub fn query(&self, _req: &Query, _now: Now) -> Result<CallSnapshot, CallError> {
        todo!()
    }

    /// Call-ids of active calls, newest first, at most `limit`.
    pub fn list(&self, _req: &List) -> Vec<String> {
        todo!()
    }

    pub fn statistics(&self, _now: Now) -> EngineStatistics {
        todo!()
    }

    /// Timers: idle/silent/final timeouts and purging deleted calls. Call about once a second.
    pub fn tick(&mut self, _now: Now) -> Vec<CallEvent> {
        todo!()
    }

    /// Tear every call down (daemon shutdown).
    pub fn shutdown(&mut self, _now: Now) {
        todo!()
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
