//! Adapters of the engine's call-state store
//! ([`StateStore`](ngmedia_engine::core::store::StateStore)): where the call registry's state
//! goes so that calls outlive this process. Without one (the default) call state lives in
//! memory only; with `--redis`, [`redis`] keeps it in Redis and runs the high-availability
//! roles built on it (restore after a restart, standby takeover).

pub mod redis;
