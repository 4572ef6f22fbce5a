//! SDP (RFC 4566/8866) as the engine needs it: parsed losslessly into lines, typed where the
//! engine reads or rewrites, written back the way rtpengine writes it.
//!
//! Model: a session section and one section per m= line, each an ordered list of raw
//! lines; unknown lines survive untouched and in order.

mod model;
mod parse;
mod rewrite;
mod write;

pub use model::*;
pub use parse::SdpError;
pub use rewrite::{IceCandidate, IceRewrite, MediaRewrite, OriginRewrite, SdpRewrite};
