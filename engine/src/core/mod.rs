//! Sans-IO core of the engine: nothing in here opens a socket, spawns a thread or reads
//! the clock; callers pass `now` in and apply the plans that come out.

pub mod calls;
pub mod config;
pub mod delay_buffer;
pub mod dtls;
pub(crate) mod dtmf_inject;
pub(crate) mod dtmf_log;
pub mod dtmf_security;
pub mod latch;
pub mod media_control;
pub mod pii;
pub mod plan;
pub mod player;
pub mod quality;
pub mod request;
pub mod rtp;
pub mod sdes;
pub mod sdp;
pub mod snapshot;
pub mod srtp;
pub mod state;
pub mod stats;
pub mod store;
pub mod stream;
pub mod stun;
pub mod t38;
pub mod tap;
pub mod transcode;
