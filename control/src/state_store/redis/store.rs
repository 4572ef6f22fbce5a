//! The writer: [`RedisStore`] is the engine's [`StateStore`]; [`Writer`] is the task that
//! puts what it queued into Redis.
//!
//! `save` and `remove` run under the registry lock, so they only record the latest change
//! per call in a map (bounded by the number of calls: a newer state replaces an unwritten
//! one) and wake the writer. The writer drains the map with pipelines. It also keeps the
//! latest state of every live call, so after an outage (Redis restarted empty, or writes
//! were lost) it rewrites all of them and removes the ids in `P:calls:<self>` that are no
//! longer live.

use ngmedia_engine::sync::lock;
use std::collections::{HashMap, HashSet};
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use ngmedia_engine::core::state::CallState;
use ngmedia_engine::core::store::StateStore;
use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError, RedisResult};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::conn::{self, Backoff};
use super::event;
use super::keys::{Keys, FIELD_OWNER, FIELD_STATE};
use super::metrics::HaMetrics;

/// Calls per pipeline: keeps one round trip well inside the response timeout.
const CHUNK: usize = 256;

/// How long the writer waits after a wake-up before it takes what is queued.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// One call's unwritten change.
#[derive(Debug, Clone)]
enum Pending {
    Save(Arc<Vec<u8>>),
    Remove,
}

/// A change as queued: the engine's state is encoded by the writer, off the signalling
/// path; changes put back after a failed write are already encoded.
#[derive(Debug)]
enum Queued {
    State(Box<CallState>),
    Ready(Pending),
}

/// What `save`/`remove` leave for the writer.
#[derive(Debug)]
struct Queue {
    pending: Mutex<HashMap<String, Queued>>,
    wake: Notify,
    closing: AtomicBool,
    metrics: Arc<HaMetrics>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Queued>> {
        lock(&self.pending)
    }

    fn push(&self, call_id: String, change: Queued) {
        let mut pending = self.lock();
        pending.insert(call_id, change);
        self.metrics.set_pending(pending.len());
        drop(pending);
        self.wake.notify_one();
    }

    /// Everything queued, encoded (after the lock is released).
    fn take(&self) -> HashMap<String, Pending> {
        let queued = {
            let mut pending = self.lock();
            self.metrics.set_pending(0);
            mem::take(&mut *pending)
        };
        queued
            .into_iter()
            .map(|(id, q)| {
                let change = match q {
                    Queued::State(state) => Pending::Save(Arc::new(state.encode())),
                    Queued::Ready(change) => change,
                };
                (id, change)
            })
            .collect()
    }

    /// Return unwritten changes; anything queued since is newer and wins.
    fn put_back(&self, batch: impl IntoIterator<Item = (String, Pending)>) {
        let mut pending = self.lock();
        for (id, change) in batch {
            pending.entry(id).or_insert(Queued::Ready(change));
        }
        self.metrics.set_pending(pending.len());
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The engine's state store backed by Redis (rtpengine's `redis_update_onekey` /
/// `redis_delete` path, made asynchronous). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisStore {
    queue: Arc<Queue>,
}

impl StateStore for RedisStore {
    fn save(&self, state: CallState) {
        self.queue
            .push(state.call_id.clone(), Queued::State(Box::new(state)));
    }

    fn remove(&self, call_id: &str) {
        self.queue
            .push(call_id.to_string(), Queued::Ready(Pending::Remove));
    }
}

impl RedisStore {
    /// Ask the writer to finish: it returns once everything queued is written.
    pub fn close(&self) {
        self.queue.closing.store(true, SeqCst);
        self.queue.wake.notify_one();
    }

    /// Calls whose latest change is not written yet.
    pub fn pending(&self) -> usize {
        self.queue.lock().len()
    }
}

/// Who writes, where.
#[derive(Debug, Clone)]
pub(super) struct WriterConfig {
    pub client: Client,
    pub keys: Keys,
    pub instance: String,
    pub metrics: Arc<HaMetrics>,
    /// Set once this instance's stored calls were read at start-up: until then a
    /// resynchronisation must not remove ids it does not know (they are about to be restored).
    pub loaded: Arc<AtomicBool>,
}

/// The task draining [`RedisStore`] into Redis.
pub(super) struct Writer {
    config: WriterConfig,
    queue: Arc<Queue>,
    /// Latest state of every live call of this instance.
    live: HashMap<String, Arc<Vec<u8>>>,
    conn: Option<MultiplexedConnection>,
    /// Rewrite every live call before anything else (first connection, after a failure).
    resync: bool,
    /// A warning was logged for the current outage.
    outage: bool,
    backoff: Backoff,
}

impl Writer {
    pub(super) fn new(config: WriterConfig) -> (RedisStore, Writer) {
        let queue = Arc::new(Queue {
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            metrics: config.metrics.clone(),
        });
        let writer = Writer {
            config,
            queue: queue.clone(),
            live: HashMap::new(),
            conn: None,
            resync: true,
            outage: false,
            backoff: Backoff::default(),
        };
        (RedisStore { queue }, writer)
    }

    /// Write until [`RedisStore::close`] was called and nothing is left to write.
    pub(super) async fn run(mut self) {
        loop {
            let closing = self.queue.closing.load(SeqCst);
            if closing && !self.resync && self.queue.is_empty() {
                return;
            }
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => match conn::connect(&self.config.client).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.failed(e).await;
                        continue;
                    }
                },
            };
            if self.resync {
                match self.resynchronise(&mut conn).await {
                    Ok(n) => self.reachable(n),
                    Err(e) => {
                        self.failed(e).await;
                        continue;
                    }
                }
            }
            let batch = self.queue.take();
            if batch.is_empty() {
                self.conn = Some(conn);
                if !closing {
                    self.queue.wake.notified().await;
                    // Let a burst of signalling gather into one pipeline: far fewer round
                    // trips under load, for a few milliseconds of delay nobody waits on.
                    tokio::time::sleep(LINGER).await;
                }
                continue;
            }
            self.apply(&batch);
            let (saves, removes) = split(&batch);
            match write(&mut conn, &self.config, &saves, &removes).await {
                Ok(()) => {
                    self.config.metrics.add_writes(batch.len() as u64);
                    self.conn = Some(conn);
                }
                Err(e) => {
                    self.queue.put_back(batch);
                    self.failed(e).await;
                }
            }
        }
    }

    /// Remember the latest state of every live call.
    fn apply(&mut self, batch: &HashMap<String, Pending>) {
        for (id, change) in batch {
            match change {
                Pending::Save(state) => {
                    self.live.insert(id.clone(), state.clone());
                }
                Pending::Remove => {
                    self.live.remove(id);
                }
            }
        }
    }

    /// Rewrite every live call and remove our stale ids; returns the number of live calls.
    async fn resynchronise(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<usize> {
        // Read before taking the queue: once `loaded` is set, the restored calls are queued.
        let loaded = self.config.loaded.load(SeqCst);
        let batch = self.queue.take();
        self.apply(&batch);
        let removed: Vec<String> = batch
            .into_iter()
            .filter(|(_, c)| matches!(c, Pending::Remove))
            .map(|(id, _)| id)
            .collect();
        let result = async {
            let mut stale: HashSet<String> = removed.iter().cloned().collect();
            if loaded {
                let stored: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(self.config.keys.calls(&self.config.instance))
                    .query_async(conn)
                    .await?;
                stale.extend(stored.into_iter().filter(|id| !self.live.contains_key(id)));
            }
            let saves: Vec<(&str, &[u8])> = self
                .live
                .iter()
                .map(|(id, s)| (id.as_str(), s.as_slice()))
                .collect();
            let removes: Vec<&str> = stale.iter().map(String::as_str).collect();
            write(conn, &self.config, &saves, &removes).await?;
            self.config
                .metrics
                .add_writes((saves.len() + removes.len()) as u64);
            Ok(saves.len())
        }
        .await;
        if result.is_err() {
            self.queue
                .put_back(removed.into_iter().map(|id| (id, Pending::Remove)));
        }
        result
    }

    fn reachable(&mut self, calls: usize) {
        self.resync = false;
        self.backoff.reset();
        self.config.metrics.set_up(true);
        if self.outage {
            self.outage = false;
            info!(calls, "redis reachable again, resynchronised {calls} calls");
        }
    }

    /// Drop the connection, say so once per outage, and pause before the next attempt.
    async fn failed(&mut self, e: RedisError) {
        self.conn = None;
        self.resync = true;
        self.config.metrics.set_up(false);
        self.config.metrics.add_write_error();
        if !self.outage {
            self.outage = true;
            warn!(
                error = %e,
                calls = self.live.len(),
                "redis unreachable: keeping call state in memory and retrying"
            );
        }
        tokio::time::sleep(self.backoff.fail()).await;
    }
}

fn split(batch: &HashMap<String, Pending>) -> (Vec<(&str, &[u8])>, Vec<&str>) {
    let mut saves = Vec::new();
    let mut removes = Vec::new();
    for (id, change) in batch {
        match change {
            Pending::Save(state) => saves.push((id.as_str(), state.as_slice())),
            Pending::Remove => removes.push(id.as_str()),
        }
    }
    (saves, removes)
}

/// HSET + SADD + PUBLISH per save, DEL + SREM + PUBLISH per removal, in pipelines.
async fn write(
    conn: &mut MultiplexedConnection,
    config: &WriterConfig,
    saves: &[(&str, &[u8])],
    removes: &[&str],
) -> RedisResult<()> {
    let (keys, me) = (&config.keys, config.instance.as_str());
    let (owned, events) = (keys.calls(me), keys.events());
    for chunk in saves.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for &(id, state) in chunk {
            pipe.cmd("HSET")
                .arg(keys.call(id))
                .arg(FIELD_OWNER)
                .arg(me)
                .arg(FIELD_STATE)
                .arg(state)
                .ignore();
            pipe.cmd("SADD").arg(&owned).arg(id).ignore();
            pipe.cmd("PUBLISH")
                .arg(&events)
                .arg(event::encode_save(me, id, state))
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    for chunk in removes.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for &id in chunk {
            pipe.cmd("DEL").arg(keys.call(id)).ignore();
            pipe.cmd("SREM").arg(&owned).arg(id).ignore();
            pipe.cmd("PUBLISH")
                .arg(&events)
                .arg(event::encode_remove(me, id))
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (RedisStore, Writer) {
        Writer::new(WriterConfig {
            client: Client::open("redis://127.0.0.1:1/").unwrap(),
            keys: Keys::new("t"),
            instance: "me".into(),
            metrics: Arc::new(HaMetrics::new("me", false)),
            loaded: Arc::new(AtomicBool::new(true)),
        })
    }

    fn state(id: &str) -> CallState {
        crate::state_store::redis::test_state(id)
    }

    #[test]
    fn queue_coalesces_latest_change_per_call() {
        let (store, writer) = store();
        store.save(state("a"));
        store.save(state("b"));
        store.remove("a");
        store.save(state("b"));
        assert_eq!(store.pending(), 2);
        assert_eq!(writer.config.metrics.figures().pending_calls, 2);
        let batch = writer.queue.take();
        assert!(matches!(batch["a"], Pending::Remove));
        let Pending::Save(b) = &batch["b"] else {
            panic!("b is a save")
        };
        assert_eq!(CallState::decode(b).unwrap().call_id, "b");
        assert_eq!(store.pending(), 0);
    }

    #[test]
    fn put_back_keeps_newer_changes() {
        let (store, writer) = store();
        store.save(state("a"));
        let batch = writer.queue.take();
        store.remove("a");
        writer.queue.put_back(batch);
        assert!(matches!(writer.queue.take()["a"], Pending::Remove));
    }
}
