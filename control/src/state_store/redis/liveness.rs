//! Heartbeats and claims: how instances tell each other they are alive, and how one standby
//! (and only one) gets a dead instance's calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{Client, RedisResult};

use super::conn::{self, Backoff};
use super::keys::Keys;

/// How long a claim on a dead instance holds: ample for reading and restoring its calls.
pub(super) const CLAIM_TTL: Duration = Duration::from_secs(10);

/// Releases a claim only if we still hold it (it may have expired and been taken since).
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Refresh our heartbeat and (re-)register in `P:instances`, in that order: a standby must
/// never see us registered without a heartbeat.
pub(super) async fn beat(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &str,
    ttl: Duration,
) -> RedisResult<()> {
    redis::pipe()
        .cmd("SET")
        .arg(keys.heartbeat(me))
        .arg(unix_ms())
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .ignore()
        .cmd("SADD")
        .arg(keys.instances())
        .arg(me)
        .ignore()
        .query_async(conn)
        .await
}

/// Keep our heartbeat alive every third of its TTL, reconnecting as needed (the writer
/// reports outages; this task stays quiet).
pub(super) async fn run(client: Client, keys: Keys, me: String, ttl: Duration) {
    let period = ttl / 3;
    let mut conn = None;
    let mut backoff = Backoff::default();
    loop {
        if conn.is_none() {
            conn = conn::connect(&client).await.ok();
        }
        let ok = match conn.as_mut() {
            Some(c) => beat(c, &keys, &me, ttl).await.is_ok(),
            None => false,
        };
        let pause = if ok {
            backoff.reset();
            period
        } else {
            conn = None;
            backoff.fail().min(period)
        };
        tokio::time::sleep(pause).await;
    }
}

/// Delete our heartbeat but stay in `P:instances`: a standby sees us gone at once and takes
/// our calls over (clean shutdown with calls left for a successor).
pub(super) async fn step_down(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &str,
) -> RedisResult<()> {
    redis::cmd("DEL")
        .arg(keys.heartbeat(me))
        .query_async::<i64>(conn)
        .await
        .map(drop)
}

/// Delete our heartbeat and leave `P:instances` (clean shutdown, no calls left).
pub(super) async fn deregister(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &str,
) -> RedisResult<()> {
    redis::pipe()
        .cmd("SREM")
        .arg(keys.instances())
        .arg(me)
        .ignore()
        .cmd("DEL")
        .arg(keys.heartbeat(me))
        .ignore()
        .query_async(conn)
        .await
}

/// Whether `instance` refreshed its heartbeat within its TTL.
pub(super) async fn alive(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
) -> RedisResult<bool> {
    redis::cmd("EXISTS")
        .arg(keys.heartbeat(instance))
        .query_async(conn)
        .await
}

/// Claim `instance` for `me` (SET NX PX); false: someone else holds the claim.
pub(super) async fn claim(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
    me: &str,
) -> RedisResult<bool> {
    let reply: Option<String> = redis::cmd("SET")
        .arg(keys.claim(instance))
        .arg(me)
        .arg("NX")
        .arg("PX")
        .arg(CLAIM_TTL.as_millis() as u64)
        .query_async(conn)
        .await?;
    Ok(reply.is_some())
}

/// Release our claim on `instance`.
pub(super) async fn release(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
    me: &str,
) -> RedisResult<()> {
    redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(keys.claim(instance))
        .arg(me)
        .query_async::<i64>(conn)
        .await
        .map(drop)
}
