//! The call registry: every call the engine handles, driven by typed requests
//! (rtpengine's call hash and `call_interfaces.c`).
//!
//! Control-plane only: the daemon keeps it behind one mutex that the packet path never
//! touches. Each request ends by handing the media plane a complete plan for the call.
//!
//! [`Calls`] is the registry and its attachments (this file). Its requests live by
//! responsibility:
//! * `signalling`: `offer`, `answer`, `delete`, which run `negotiate` (interfaces, `codecs`,
//!   `t38`, SRTP, ICE and the SDP rewrite, one file each) on the call model (`model`);
//! * `subscribe`: `publish`, `subscribe request`/`answer`, `unsubscribe`;
//! * `control` and `play`: media control, DTMF, `play`/`stop media` and music on hold;
//! * `recording`: recording and interception; `persist`: the state store and takeovers;
//! * `queries` and `report`: `query`, `list`, `statistics`; `timers`: timeouts, shutdown;
//! * `error`: [`CallError`], the ng `error-reason` of every failure.

mod codecs;
mod control;
mod error;
mod hidden;
mod model;
mod negotiate;
mod persist;
mod play;
mod queries;
mod recording;
mod report;
mod signalling;
mod subscribe;
mod t38;
#[cfg(test)]
mod tests;
mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use tracing::warn;

pub use self::codecs::CodecState;
pub use self::control::{dtmf_code, DEFAULT_DTMF_VOLUME};
pub use self::error::CallError;
pub use self::hidden::is_removable_type;
use self::model::{Call, CandidateBase};
pub use self::play::{PlayReply, StopReply};
use self::queries::Totals;
pub use self::subscribe::{MediaLabel, SubscribeReply, TagMedias};
use super::config::EngineConfig;
use super::dtls::DtlsIdentity;
use super::plan::MediaPlane;
use super::player::MediaLoader;
use super::snapshot::CallSnapshot;
use super::store::StateStore;
use super::tap::{InterceptSink, RecordingSink};

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
    /// No calls yet, with a DTLS certificate of our own made for this run.
    pub fn new(config: Arc<EngineConfig>, media: Arc<dyn MediaPlane>) -> Calls {
        let dtls = match DtlsIdentity::generate() {
            Ok(id) => Some(Arc::new(id)),
            Err(e) => {
                warn!(error = %e, "cannot create a DTLS certificate; DTLS-SRTP disabled");
                None
            }
        };
        Calls::with_dtls_identity(config, media, dtls)
    }

    /// No calls yet, with `dtls` as our certificate (`--dtls-cert`, or one shared by many
    /// registries: generating one costs milliseconds); `None`: no DTLS-SRTP is offered or
    /// accepted.
    pub fn with_dtls_identity(
        config: Arc<EngineConfig>,
        media: Arc<dyn MediaPlane>,
        dtls: Option<Arc<DtlsIdentity>>,
    ) -> Calls {
        // 12 hex digits, the length of rtpengine's instance id.
        let loop_marker = format!("{:012x}", rand::thread_rng().gen::<u64>() >> 16);
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

    /// Our DTLS certificate, if DTLS-SRTP is available.
    pub fn dtls_identity(&self) -> Option<&Arc<DtlsIdentity>> {
        self.dtls.as_ref()
    }

    /// Attach the recording sink (the media plane must have its tap queue already).
    pub fn set_recorder(&mut self, recorder: Arc<dyn RecordingSink>) {
        self.recorder = Some(recorder);
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
