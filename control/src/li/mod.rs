//! Lawful interception (LI) administration: the separate, separately authenticated listener
//! operators create and withdraw interception tasks on (X1-like, [`api`]) and the audit log of
//! every request it receives ([`audit`]).
//!
//! The tasks themselves, their matching against calls and the delivery of the targets' call
//! content to collectors (X3 PDUs over TCP/TLS, raw RTP over UDP) are a media sink beside the
//! recorder: [`ngmedia_recordings::li`]. The daemon (`main.rs`) starts that interceptor, hands
//! its tap to the media workers and the call registry, and serves this listener on top of it.

pub mod api;
pub mod audit;
