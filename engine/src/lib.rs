//! ngmedia-engine: everything about calls.
//!
//! `core` is sans-IO: the call model (rtpengine's call → monologue → media → packet
//! stream), SDP parsing and rewriting, RTP/RTCP classification, latching and statistics.
//! It takes typed requests and returns typed results; it never touches a socket or a clock
//! of its own. `io` owns the sockets and the media worker threads that move packets.

pub mod core;
pub mod io;
pub mod sync;
