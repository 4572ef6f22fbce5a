//! Redis key names (see the module documentation of [`super`] for the layout).

/// Builds every key and channel name under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// `P:call:<call-id>`: hash { owner, state }.
    pub(super) fn call(&self, call_id: &str) -> String {
        format!("{}:call:{call_id}", self.prefix)
    }

    /// `P:calls:<instance>`: set of the call-ids the instance owns.
    pub(super) fn calls(&self, instance: &str) -> String {
        format!("{}:calls:{instance}", self.prefix)
    }

    /// `P:instances`: set of instance ids.
    pub(super) fn instances(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    /// `P:heartbeat:<instance>`: unix ms of the last refresh, expires after the TTL.
    pub(super) fn heartbeat(&self, instance: &str) -> String {
        format!("{}:heartbeat:{instance}", self.prefix)
    }

    /// `P:claim:<dead instance>`: the standby taking its calls over (SET NX PX).
    pub(super) fn claim(&self, instance: &str) -> String {
        format!("{}:claim:{instance}", self.prefix)
    }

    /// `P:events`: pub/sub channel of saves and removals.
    pub(super) fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }
}

/// Hash field of `P:call:<id>` naming the owning instance.
pub(super) const FIELD_OWNER: &str = "owner";
/// Hash field of `P:call:<id>` holding `CallState::encode()` bytes.
pub(super) const FIELD_STATE: &str = "state";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        let k = Keys::new("ngmedia");
        assert_eq!(k.call("a b@host"), "ngmedia:call:a b@host");
        assert_eq!(k.calls("media-1"), "ngmedia:calls:media-1");
        assert_eq!(k.instances(), "ngmedia:instances");
        assert_eq!(k.heartbeat("media-1"), "ngmedia:heartbeat:media-1");
        assert_eq!(k.claim("media-2"), "ngmedia:claim:media-2");
        assert_eq!(k.events(), "ngmedia:events");
        assert_eq!(Keys::new("x:y").calls("i"), "x:y:calls:i");
    }
}
