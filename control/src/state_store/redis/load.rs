//! Reading an instance's stored calls and handing them to the engine: at start-up (our own
//! calls, rtpengine's `redis_restore`) and at a takeover (a dead instance's calls).

pub(super) use ngmedia_engine::sync::lock;
use std::collections::HashSet;
use std::sync::Mutex;

use ngmedia_engine::core::calls::{Calls, RestoreOutcome};
use ngmedia_engine::core::pii::Pii;
use ngmedia_engine::core::request::List;
use ngmedia_engine::core::state::{CallState, StateError};
use redis::aio::MultiplexedConnection;
use redis::RedisResult;
use tracing::warn;

use super::keys::{Keys, FIELD_STATE};
use crate::call_control::now;

/// Calls read per pipeline.
const CHUNK: usize = 256;

/// One stored call: its id and its `state` field (`None`: the hash is gone or has none).
pub(super) type Record = (String, Option<Vec<u8>>);

/// The ids in `P:calls:<instance>` with the state of each.
pub(super) async fn read_calls(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
) -> RedisResult<Vec<Record>> {
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.calls(instance))
        .query_async(conn)
        .await?;
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("HGET").arg(keys.call(id)).arg(FIELD_STATE);
        }
        let states: Vec<Option<Vec<u8>>> = pipe.query_async(conn).await?;
        records.extend(chunk.iter().cloned().zip(states));
    }
    Ok(records)
}

/// Stored calls split into those the engine can take and those it cannot.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub states: Vec<CallState>,
    /// Call-id and why it is unusable (malformed, missing): deleted.
    pub bad: Vec<(String, String)>,
    /// Written by a newer build (a rolling upgrade): left for an engine that reads them.
    pub newer: Vec<String>,
}

pub(super) fn decode(records: Vec<Record>) -> Decoded {
    let mut out = Decoded::default();
    for (id, bytes) in records {
        let Some(bytes) = bytes else {
            out.bad.push((id, "no state stored".into()));
            continue;
        };
        match CallState::decode(&bytes) {
            Ok(state) if state.call_id == id => out.states.push(state),
            Ok(state) => {
                let why = format!("state is for another call-id ({})", Pii(&state.call_id));
                out.bad.push((id, why));
            }
            Err(e @ StateError::TooNew(_)) => {
                warn!(call_id = %Pii(&id), reason = %e, "stored call left alone");
                out.newer.push(id);
            }
            Err(e) => out.bad.push((id, e.to_string())),
        }
    }
    out
}

/// Warn about and delete unusable records of `instance`.
pub(super) async fn drop_bad(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
    bad: &[(String, String)],
) -> RedisResult<()> {
    if bad.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (id, why) in bad {
        warn!(call_id = %Pii(id), instance, reason = %why, "deleting unusable stored call");
        pipe.cmd("DEL").arg(keys.call(id)).ignore();
        pipe.cmd("SREM").arg(keys.calls(instance)).arg(id).ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// What a restore did.
#[derive(Debug, Default)]
pub(super) struct Restored {
    pub outcome: RestoreOutcome,
    /// Call-ids already in use here: left alone (restoring would replace, and then remove,
    /// the live call's state).
    pub skipped: Vec<String>,
}

/// Hand stored calls to the engine, except those whose call-id is already in use.
pub(super) fn restore(calls: &Mutex<Calls>, mut states: Vec<CallState>) -> Restored {
    let mut calls = lock(calls);
    let in_use: HashSet<String> = calls
        .list(&List { limit: usize::MAX })
        .into_iter()
        .collect();
    let mut skipped = Vec::new();
    states.retain(|s| {
        let keep = !in_use.contains(&s.call_id);
        if !keep {
            skipped.push(s.call_id.clone());
        }
        keep
    });
    let outcome = if states.is_empty() {
        RestoreOutcome::default()
    } else {
        calls.restore(states, now())
    };
    drop(calls);
    for (id, why) in &outcome.failed {
        warn!(call_id = %Pii(id), reason = %why, "stored call could not be restored");
    }
    Restored { outcome, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_sorts_good_and_bad_records() {
        let good = crate::state_store::redis::test_state("a").encode();
        let other = crate::state_store::redis::test_state("z").encode();
        let d = decode(vec![
            ("a".into(), Some(good)),
            ("b".into(), None),
            ("c".into(), Some(b"{not json".to_vec())),
            (
                "d".into(),
                Some(br#"{"version":999,"call_id":"d"}"#.to_vec()),
            ),
            ("e".into(), Some(other)),
        ]);
        assert_eq!(d.states.len(), 1);
        assert_eq!(d.states[0].call_id, "a");
        let bad: Vec<&str> = d.bad.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(bad, ["b", "c", "e"]);
        // A newer build's state is not ours to delete (rolling upgrades).
        assert_eq!(d.newer, ["d"]);
    }
}
