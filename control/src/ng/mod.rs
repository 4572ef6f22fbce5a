//! The ng control protocol (rtpengine `control_ng.c` + `call_interfaces.c`): Kamailio's
//! `rtpengine` module sends `COOKIE SP BENCODE-DICT` datagrams; we answer with the same cookie
//! and a reply dictionary.
//!
//! The pipeline is sans-IO and split by concern:
//! `request` (framing, key/flag normalisation, typed engine requests) → `dispatch` (the
//! command run on the call registry through `crate::call_control`, the load limits of
//! `crate::load_limits`, counters in `counters`) → `reply` (rtpengine's reply shapes) → bytes, with `cookie` (retransmission
//! cache) in front and `server` (the UDP loop, framing, cache and rate limit) around it. The
//! stream transports (`tcp`, and HTTP/WebSocket in `crate::http::ng`) reach the server
//! through `handle`.

pub(crate) mod cookie;
pub(crate) mod counters;
pub(crate) mod dispatch;
pub(crate) mod handle;
pub(crate) mod metrics;
pub(crate) mod rate;
pub(crate) mod reply;
pub(crate) mod request;
pub mod server;
pub(crate) mod stream;
pub mod tcp;

use ngmedia_engine::core::calls::CallError;

pub use counters::{ControlCounters, IntervalCounters, ProxyCounters};
pub use handle::{Framing, NgHandle};
pub use metrics::{NgMetrics, NgResult};
pub use server::NgServer;

/// Why an ng request failed. `Display` is the `error-reason` sent back; texts Kamailio or
/// operators may match are worded exactly as rtpengine words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NgError {
    /// Body neither bencode (`d`) nor JSON (`{`).
    #[error("Invalid NG data format")]
    InvalidFormat,
    /// Body starts like bencode but does not decode to a dictionary.
    #[error("Could not decode bencode dictionary")]
    BadBencode,
    /// Body starts like JSON but is not a valid JSON object.
    #[error("Could not decode JSON object")]
    BadJson,
    #[error("Dictionary contains no key \"command\"")]
    NoCommand,
    #[error("Unrecognized command")]
    UnknownCommand,
    /// An ng command this build recognises but does not implement yet.
    #[error("Command '{0}' is not supported by this engine yet")]
    NotSupported(&'static str),
    #[error("No SDP body in message")]
    NoSdp,
    #[error("No call-id in message")]
    NoCallId,
    #[error("No from-tag in message")]
    NoFromTag,
    #[error("No to-tag in message")]
    NoToTag,
    /// A load limit refused a new call and the client did not announce `supports: ["load
    /// limit"]`: rtpengine's legacy error, whatever the limit (Kamailio tries the next
    /// engine on this exact text too).
    #[error("Parallel session limit reached")]
    LoadLimit(crate::load_limits::LoadLimit),
    /// The encoded reply would not fit in one UDP datagram.
    #[error("Reply too large for a UDP datagram")]
    ReplyTooLarge,
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Personal data in logs (call-ids, tags, addresses): redacted at run time by `--log-redact`.
pub use ngmedia_engine::core::pii::Pii;
