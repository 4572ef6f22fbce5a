//! A standby's copy of other instances' calls, kept current from the `P:events` channel so
//! a takeover still has the calls if Redis cannot be read at that moment.

use ngmedia_engine::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use redis::{Client, RedisResult};
use tracing::debug;

use super::conn::{self, Backoff, RESPONSE_TIMEOUT};
use super::event::{self, Event};
use super::keys::Keys;
use super::load::{self, Record};

/// How often an idle subscription is pinged: a silent network failure is noticed this fast.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Call-id → (owner, state bytes).
type Owned = HashMap<String, (String, Arc<Vec<u8>>)>;

/// Other instances' calls.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    calls: Mutex<Owned>,
}

impl Mirror {
    fn lock(&self) -> MutexGuard<'_, Owned> {
        lock(&self.calls)
    }

    /// Apply one event; our own (`me`) are ignored.
    pub(super) fn apply(&self, event: Event, me: &str) {
        match event {
            Event::Save { owner, .. } | Event::Remove { owner, .. } if owner == me => {}
            Event::Save {
                owner,
                call_id,
                state,
            } => {
                self.lock().insert(call_id, (owner, Arc::new(state)));
            }
            Event::Remove { owner, call_id } => {
                let mut calls = self.lock();
                // A call moved to another owner since: that owner's state stays.
                if calls.get(&call_id).is_some_and(|(o, _)| *o == owner) {
                    calls.remove(&call_id);
                }
            }
        }
    }

    /// Replace everything with a full load: `(owner, records)` per other instance.
    pub(super) fn replace(&self, owners: Vec<(String, Vec<Record>)>) {
        let mut calls = self.lock();
        calls.clear();
        for (owner, records) in owners {
            for (id, state) in records {
                if let Some(state) = state {
                    calls.insert(id, (owner.clone(), Arc::new(state)));
                }
            }
        }
    }

    /// The calls `owner` had, as stored records.
    pub(super) fn calls_of(&self, owner: &str) -> Vec<Record> {
        self.lock()
            .iter()
            .filter(|(_, (o, _))| o == owner)
            .map(|(id, (_, s))| (id.clone(), Some(s.to_vec())))
            .collect()
    }

    /// Forget `owner`'s calls (taken over).
    pub(super) fn drop_owner(&self, owner: &str) {
        self.lock().retain(|_, (o, _)| o != owner);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Follow `P:events` into `mirror` for as long as the task runs, resubscribing (with a full
/// load each time, since events were missed) after any failure.
pub(super) async fn follow(client: Client, keys: Keys, me: String, mirror: Arc<Mirror>) {
    let mut backoff = Backoff::default();
    loop {
        if let Err(e) = subscribe_once(&client, &keys, &me, &mirror, &mut backoff).await {
            debug!(error = %e, "redis event subscription lost; resubscribing");
        }
        tokio::time::sleep(backoff.fail()).await;
    }
}

async fn subscribe_once(
    client: &Client,
    keys: &Keys,
    me: &str,
    mirror: &Mirror,
    backoff: &mut Backoff,
) -> RedisResult<()> {
    let (mut sink, mut stream) = conn::pubsub(client).await?.split();
    within(sink.subscribe(keys.events())).await?;
    // Subscribed first, loaded second: events published meanwhile wait in the stream and
    // are applied on top of the load.
    let mut conn = conn::connect(client).await?;
    mirror.replace(load_others(&mut conn, keys, me).await?);
    drop(conn);
    backoff.reset();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(conn::timed_out());
                };
                match event::decode(msg.get_payload_bytes()) {
                    Ok(event) => mirror.apply(event, me),
                    Err(e) => debug!(error = %e, "ignoring malformed redis event"),
                }
            }
            _ = ping.tick() => {
                within(sink.ping::<String>()).await?;
            }
        }
    }
}

/// Every other registered instance's calls.
pub(super) async fn load_others(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    me: &str,
) -> RedisResult<Vec<(String, Vec<Record>)>> {
    let instances: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.instances())
        .query_async(conn)
        .await?;
    let mut owners = Vec::new();
    for instance in instances.into_iter().filter(|i| i != me) {
        let records = load::read_calls(conn, keys, &instance).await?;
        owners.push((instance, records));
    }
    Ok(owners)
}

/// A pub/sub command within the response timeout.
async fn within<T>(f: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(RESPONSE_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(conn::timed_out()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(owner: &str, id: &str, state: &[u8]) -> Event {
        Event::Save {
            owner: owner.into(),
            call_id: id.into(),
            state: state.to_vec(),
        }
    }

    #[test]
    fn mirror_follows_saves_removes_and_owner_changes() {
        let m = Mirror::default();
        m.apply(save("a", "c1", b"1"), "me");
        m.apply(save("a", "c2", b"2"), "me");
        m.apply(save("me", "c3", b"3"), "me");
        assert_eq!(m.len(), 2);
        // c2 moves to b (a takeover elsewhere); a's late removal must not drop it.
        m.apply(save("b", "c2", b"2b"), "me");
        m.apply(
            Event::Remove {
                owner: "a".into(),
                call_id: "c2".into(),
            },
            "me",
        );
        assert_eq!(
            m.calls_of("b"),
            vec![("c2".to_string(), Some(b"2b".to_vec()))]
        );
        assert_eq!(
            m.calls_of("a"),
            vec![("c1".to_string(), Some(b"1".to_vec()))]
        );
        m.drop_owner("a");
        assert!(m.calls_of("a").is_empty());
        m.replace(vec![(
            "x".into(),
            vec![("c9".into(), Some(b"9".to_vec())), ("c8".into(), None)],
        )]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.calls_of("x").len(), 1);
    }
}
