//! ngmedia-recordings: sinks that take copies of media off the packet path.
//!
//! [`Recorder`] implements the engine's [`RecordingSink`](ngmedia_engine::core::tap::RecordingSink):
//! it runs on its own thread, reads packet copies from the engine's bounded tap queue and
//! call events from the registry, and writes per call a mixed stereo WAV (caller left,
//! callee right), optionally per-party WAVs and a pcap, and a JSON metadata sidecar, into a
//! [`RecordingStore`] folder.
//!
//! [`li::Interceptor`] implements the engine's
//! [`InterceptSink`](ngmedia_engine::core::tap::InterceptSink): lawful interception and
//! `start forwarding`, with its own tap queue, task registry and delivery threads (X3 over
//! TCP/TLS, raw RTP over UDP). Its administration (HTTP listener, audit log) stays in the
//! daemon.

pub mod li;
pub mod pcap;
mod rate;
mod recorder;
pub mod store;
pub mod timeline;

use std::path::PathBuf;

pub use recorder::{Recorder, RecorderConfig, RecorderStats, RecordingFormat};
pub use store::{ListFilter, RecordingStore};

/// Why a recording (or a store operation) failed. A failure stops that recording only.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
    #[error("WAV writer: {0}")]
    Wav(String),
    #[error("{path}: unreadable metadata: {why}", path = .0.display(), why = .1)]
    BadMetadata(PathBuf, String),
}
