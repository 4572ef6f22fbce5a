//! The standby's watch: every second, check the heartbeat of every other registered
//! instance; when one expired, claim it and take its calls over.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngmedia_engine::core::calls::Calls;
use redis::aio::MultiplexedConnection;
use redis::{Client, RedisResult};
use tracing::{info, warn};

use super::conn;
use super::keys::Keys;
use super::liveness;
use super::load;
use super::metrics::HaMetrics;
use super::mirror::Mirror;

/// How often heartbeats are checked.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a standby needs to take calls over.
#[derive(Clone)]
pub(super) struct Follower {
    pub client: Client,
    pub keys: Keys,
    pub me: String,
    pub calls: Arc<Mutex<Calls>>,
    pub mirror: Arc<Mirror>,
    pub metrics: Arc<HaMetrics>,
}

/// What one takeover did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Takeover {
    pub instance: String,
    pub restored: usize,
    pub failed: usize,
}

impl Follower {
    /// Check heartbeats every second for as long as the task runs.
    pub(super) async fn watch(self) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn: Option<MultiplexedConnection> = None;
        loop {
            tick.tick().await;
            if conn.is_none() {
                conn = conn::connect(&self.client).await.ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            if self.check(c).await.is_err() {
                // Redis down: nobody's liveness can be judged; the writer reports the outage.
                conn = None;
            }
        }
    }

    /// One pass over `P:instances`; returns the takeovers done.
    pub(super) async fn check(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> RedisResult<Vec<Takeover>> {
        let instances: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.instances())
            .query_async(conn)
            .await?;
        let mut done = Vec::new();
        for instance in instances.iter().filter(|i| **i != self.me) {
            if !liveness::alive(conn, &self.keys, instance).await? {
                if let Some(t) = self.take_over(conn, instance).await? {
                    done.push(t);
                }
            }
        }
        Ok(done)
    }

    /// Claim `dead` and restore its calls here; `None` when another standby won the claim
    /// or the instance turned out to be alive (or gone) after all.
    pub(super) async fn take_over(
        &self,
        conn: &mut MultiplexedConnection,
        dead: &str,
    ) -> RedisResult<Option<Takeover>> {
        let (keys, me) = (&self.keys, self.me.as_str());
        if !liveness::claim(conn, keys, dead, me).await? {
            return Ok(None);
        }
        // Re-checked under the claim: it may have restarted, or been taken over just now.
        let (registered, beating): (bool, bool) = redis::pipe()
            .cmd("SISMEMBER")
            .arg(keys.instances())
            .arg(dead)
            .cmd("EXISTS")
            .arg(keys.heartbeat(dead))
            .query_async(conn)
            .await?;
        if !registered || beating {
            liveness::release(conn, keys, dead, me).await?;
            return Ok(None);
        }
        let started = Instant::now();
        let records = match load::read_calls(conn, keys, dead).await {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, instance = dead, "cannot read a dead instance's calls; using the mirror");
                self.mirror.calls_of(dead)
            }
        };
        let decoded = load::decode(records);
        if let Err(e) = load::drop_bad(conn, keys, dead, &decoded.bad).await {
            warn!(error = %e, "cannot delete unusable stored calls");
        }
        let restored = load::restore(&self.calls, decoded.states);
        let (ok, failed) = (
            restored.outcome.restored.len(),
            restored.outcome.failed.len(),
        );
        self.metrics.add_restored(ok, failed);
        // The restored calls are saved as ours by the engine; the dead instance goes.
        redis::pipe()
            .cmd("DEL")
            .arg(keys.calls(dead))
            .ignore()
            .cmd("SREM")
            .arg(keys.instances())
            .arg(dead)
            .ignore()
            .query_async::<()>(conn)
            .await?;
        liveness::release(conn, keys, dead, me).await?;
        self.mirror.drop_owner(dead);
        self.metrics.add_takeover();
        let ms = started.elapsed().as_millis() as u64;
        info!(
            instance = dead,
            calls = ok,
            failed,
            skipped = restored.skipped.len(),
            elapsed_ms = ms,
            "took over {ok} calls of instance {dead} in {ms} ms"
        );
        Ok(Some(Takeover {
            instance: dead.to_string(),
            restored: ok,
            failed,
        }))
    }
}
