//! SDP (RFC 4566/8866) as the engine needs it: parsed losslessly into lines, typed where the
//! engine reads or rewrites, written back the way rtpengine writes it.
//!
//! Model: a session section and one section per m= line, each an ordered list of raw
//! lines; unknown lines survive untouched and in order. The call model reads the typed
//! views ([`Sdp::origin`], [`MediaSection::codecs`], ...), edits what it decides (codecs,
//! ptime, SRTP attributes) with the [`MediaSection`] editors, then [`Sdp::rewrite`] turns
//! the party's SDP into the one sent on, byte for byte as rtpengine 10.5 would.

mod manipulate;
mod model;
mod parse;
mod rewrite;
mod write;

pub use manipulate::{AttrEdits, SdpManipulations, MEDIA_LEVELS};
pub use model::*;
pub use parse::{SdpError, MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, MAX_SESSIONS};
pub use rewrite::{loop_marker, IceCandidate, IceRewrite, MediaRewrite, OriginRewrite, SdpRewrite};
