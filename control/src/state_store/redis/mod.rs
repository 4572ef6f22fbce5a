//! The Redis state store and the high availability built on it (rtpengine's `--redis`
//! persistence): [`RedisStore`] implements the engine's
//! [`StateStore`](ngmedia_engine::core::store::StateStore), so every call's state is kept in
//! Redis; this instance restores its calls from there after a restart, and a standby
//! instance takes them over when this one dies.
//!
//! # Keys (`P` = `--redis-prefix`, default `ngmedia`)
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `P:call:<call-id>` | hash | `owner` = instance id, `state` = `CallState::encode()` JSON |
//! | `P:calls:<instance>` | set | call-ids the instance owns |
//! | `P:instances` | set | instance ids (added with every heartbeat) |
//! | `P:heartbeat:<instance>` | string | unix ms, `SET ... PX ttl`, refreshed every ttl/3 |
//! | `P:claim:<instance>` | string | the standby taking over a dead instance (`SET NX PX 10000`) |
//! | `P:events` | pub/sub channel | `save`/`del` messages, framed as in [`event`] |
//!
//! # Tasks (all on the control runtime)
//!
//! - the [writer](store::Writer): drains what the engine queued through [`RedisStore`],
//!   resynchronises after outages;
//! - the [heartbeat](liveness::run);
//! - `Calls::sync_store` every `--redis-sync-interval`;
//! - standby only: the [event mirror](mirror::follow) and the [watch](follow::Follower).

pub mod config;
mod conn;
mod event;
mod follow;
mod keys;
mod liveness;
mod load;
mod metrics;
mod mirror;
mod store;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngmedia_engine::core::calls::Calls;
use redis::aio::MultiplexedConnection;
use redis::{Client, RedisResult};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

pub use self::config::HaConfig;
use self::conn::Backoff;
use self::keys::Keys;
pub use self::metrics::{HaFigures, HaMetrics};
pub use self::store::RedisStore;
use self::store::{Writer, WriterConfig};

/// How long the writer gets at shutdown to write the final state of the calls.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// How long start-up waits for a standby that is taking our calls over (see
/// [`liveness::CLAIM_TTL`]) before reading what is left.
const CLAIM_WAIT: Duration = Duration::from_secs(11);

/// Why HA could not start.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("invalid redis address: {0}")]
    Client(#[from] redis::RedisError),
    #[error("cannot start the redis writer thread: {0}")]
    Thread(std::io::Error),
}

/// The running HA side; [`Ha::shutdown`] after the calls were closed.
pub struct Ha {
    config: HaConfig,
    client: Client,
    keys: Keys,
    metrics: Arc<HaMetrics>,
    store: RedisStore,
    /// Fires when the writer thread finished (everything written after `close`).
    writer: oneshot::Receiver<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// Start HA: attach the store to the registry, restore this instance's calls (before the ng
/// server answers), then run the writer, the heartbeat, the sync timer and, for a standby,
/// the mirror and the watch. Redis being down is not an error: we start with no calls and
/// restore them once it is back.
pub async fn start(config: HaConfig, calls: Arc<Mutex<Calls>>) -> Result<Ha, HaError> {
    let client = Client::open(config.redis.connection_info())?;
    let keys = Keys::new(&config.prefix);
    let me = config.instance_id.clone();
    let metrics = Arc::new(HaMetrics::new(&me, config.standby));
    let loaded = Arc::new(AtomicBool::new(false));
    let (store, writer) = Writer::new(WriterConfig {
        client: client.clone(),
        keys: keys.clone(),
        instance: me.clone(),
        metrics: metrics.clone(),
        loaded: loaded.clone(),
    });
    load::lock(&calls).set_store(Arc::new(store.clone()));
    info!(
        instance = %me,
        role = config.role(),
        redis = %config.redis,
        prefix = %config.prefix,
        "high availability: instance {me} ({}), call state in redis {}",
        config.role(),
        config.redis
    );

    let startup = Startup {
        client: client.clone(),
        keys: keys.clone(),
        me: me.clone(),
        ttl: config.heartbeat_ttl,
        calls: calls.clone(),
        metrics: metrics.clone(),
        loaded,
    };
    let mut tasks = Vec::new();
    match startup.attempt().await {
        Ok(()) => {}
        Err(e) => {
            warn!(
                error = %e,
                "redis unreachable at start: starting with no calls; this instance's stored \
                 calls are restored once redis is back"
            );
            tasks.push(tokio::spawn(startup.retry()));
        }
    }

    let writer = spawn_writer(writer)?;
    tasks.push(tokio::spawn(liveness::run(
        client.clone(),
        keys.clone(),
        me.clone(),
        config.heartbeat_ttl,
    )));
    tasks.push(tokio::spawn(sync(calls.clone(), config.sync_interval)));
    if config.standby {
        let mirror = Arc::new(mirror::Mirror::default());
        tasks.push(tokio::spawn(mirror::follow(
            client.clone(),
            keys.clone(),
            me.clone(),
            mirror.clone(),
        )));
        let follower = follow::Follower {
            client: client.clone(),
            keys: keys.clone(),
            me,
            calls,
            mirror,
            metrics: metrics.clone(),
        };
        tasks.push(tokio::spawn(follower.watch()));
    }
    Ok(Ha {
        config,
        client,
        keys,
        metrics,
        store,
        writer,
        tasks,
    })
}

impl Ha {
    pub fn metrics(&self) -> Arc<HaMetrics> {
        self.metrics.clone()
    }

    /// Stop following and heartbeating, write what is queued (the final state of the calls
    /// the registry handed over) within [`DRAIN_LIMIT`], then delete our heartbeat so a
    /// standby takes the calls over at once instead of after the TTL; with no calls left,
    /// also leave `P:instances`. Call it after `Calls::shutdown`; `calls` is how many it
    /// handed over.
    pub async fn shutdown(self, calls: usize) {
        for task in &self.tasks {
            task.abort();
        }
        self.store.close();
        if tokio::time::timeout(DRAIN_LIMIT, self.writer)
            .await
            .is_err()
        {
            // The thread ends with the process.
            warn!(
                calls = self.store.pending(),
                "redis unreachable at exit: changes to {} calls not written; this \
                 instance's heartbeat expires on its own",
                self.store.pending()
            );
            return;
        }
        let me = &self.config.instance_id;
        let done = tokio::time::timeout(DRAIN_LIMIT, async {
            let mut conn = conn::connect(&self.client).await?;
            if calls == 0 {
                liveness::deregister(&mut conn, &self.keys, me).await
            } else {
                liveness::step_down(&mut conn, &self.keys, me).await
            }
        })
        .await;
        match done {
            Ok(Ok(())) if calls == 0 => info!(instance = %me, "redis: instance deregistered"),
            Ok(Ok(())) => info!(
                instance = %me,
                calls,
                "redis: {calls} calls left for a restart or a standby to take over"
            ),
            Ok(Err(e)) => {
                warn!(error = %e, "redis: cannot step down: the heartbeat expires on its own")
            }
            Err(_) => {
                warn!("redis: cannot step down (timed out): the heartbeat expires on its own")
            }
        }
    }
}

/// Run the writer on a thread of its own: encoding states and talking to Redis never take
/// time from the ng server on the control runtime.
fn spawn_writer(writer: Writer) -> Result<oneshot::Receiver<()>, HaError> {
    let (done, finished) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HaError::Thread)?;
    std::thread::Builder::new()
        .name("redis-writer".into())
        .spawn(move || {
            runtime.block_on(writer.run());
            let _ = done.send(());
        })
        .map_err(HaError::Thread)?;
    Ok(finished)
}

/// Start-up restore of this instance's own calls.
struct Startup {
    client: Client,
    keys: Keys,
    me: String,
    ttl: Duration,
    calls: Arc<Mutex<Calls>>,
    metrics: Arc<HaMetrics>,
    loaded: Arc<AtomicBool>,
}

impl Startup {
    /// Register, read our stored calls and restore them; once.
    async fn attempt(&self) -> RedisResult<()> {
        let mut conn = conn::connect(&self.client).await?;
        // Heartbeat first: no standby starts a takeover of us while we read.
        liveness::beat(&mut conn, &self.keys, &self.me, self.ttl).await?;
        self.wait_for_claim(&mut conn).await?;
        let started = Instant::now();
        let records = load::read_calls(&mut conn, &self.keys, &self.me).await?;
        let decoded = load::decode(records);
        load::drop_bad(&mut conn, &self.keys, &self.me, &decoded.bad).await?;
        liveness::release(&mut conn, &self.keys, &self.me, &self.me).await?;
        let restored = load::restore(&self.calls, decoded.states);
        // After the restore: the restored calls are queued for the writer by now.
        self.loaded.store(true, SeqCst);
        let (ok, failed) = (
            restored.outcome.restored.len(),
            restored.outcome.failed.len(),
        );
        self.metrics.add_restored(ok, failed);
        let ms = started.elapsed().as_millis() as u64;
        info!(
            restored = ok,
            failed,
            skipped = restored.skipped.len(),
            unusable = decoded.bad.len(),
            newer = decoded.newer.len(),
            elapsed_ms = ms,
            "restored {ok} calls in {ms} ms ({failed} failed)"
        );
        Ok(())
    }

    /// Claim ourselves; if a standby holds the claim it is taking our calls over right now:
    /// wait (bounded) until it is done, then read whatever it left.
    async fn wait_for_claim(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let deadline = Instant::now() + CLAIM_WAIT;
        loop {
            if liveness::claim(conn, &self.keys, &self.me, &self.me).await? {
                break;
            }
            // Held by ourselves: an earlier attempt (or run) that failed half-way.
            let holder: Option<String> = redis::cmd("GET")
                .arg(self.keys.claim(&self.me))
                .query_async(conn)
                .await?;
            if holder.as_deref() == Some(self.me.as_str()) {
                break;
            }
            if Instant::now() >= deadline {
                warn!("a standby holds the claim on this instance; reading our calls anyway");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Retry [`Startup::attempt`] until it succeeds once.
    async fn retry(self) {
        let mut backoff = Backoff::default();
        loop {
            tokio::time::sleep(backoff.fail()).await;
            if self.attempt().await.is_ok() {
                return;
            }
        }
    }
}

/// `Calls::sync_store` every `period`: live figures (counters, latching) reach Redis.
async fn sync(calls: Arc<Mutex<Calls>>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        load::lock(&calls).sync_store(crate::call_control::now());
    }
}

/// A minimal valid stored call, for tests (the one place that knows what the smallest
/// `CallState` JSON looks like).
#[cfg(test)]
pub(crate) fn test_state(call_id: &str) -> ngmedia_engine::core::state::CallState {
    let json = serde_json::json!({
        "version": 1,
        "call_id": call_id,
        "created_us": 0,
        "last_signal_us": 0,
        "legs": [],
    });
    ngmedia_engine::core::state::CallState::decode(json.to_string().as_bytes())
        .expect("minimal call state decodes")
}
