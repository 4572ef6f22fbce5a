//! Call state kept outside the process for high availability (rtpengine's Redis
//! persistence): the trait the call registry writes through. The daemon implements it
//! with Redis (`ngmedia-control`'s `state_store::redis`); the engine only says *what*
//! changed, never waits for the write.

use super::state::CallState;

/// Where the call registry sends the state of its calls. Implementations queue and return
/// at once: they run under the registry lock on the signalling path.
pub trait StateStore: Send + Sync {
    /// The call's state after a signalling change, or its live figures (counters, latched
    /// addresses, SRTP indexes) moved since the last save. Replaces any earlier state.
    fn save(&self, state: CallState);

    /// The call is gone (deleted, timed out, or could not be restored).
    fn remove(&self, call_id: &str);
}
