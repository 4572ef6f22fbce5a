//! Against a real `redis-server` (/usr/bin/redis-server): the writer, its recovery after an
//! outage, the event framing through a real subscription, heartbeat expiry and the claim.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ngmedia_engine::core::calls::Calls;
use ngmedia_engine::core::config::EngineConfig;
use ngmedia_engine::core::store::StateStore;
use ngmedia_engine::io::MediaWorkers;
use redis::aio::MultiplexedConnection;
use redis::Client;

use super::event::{self, Event};
use super::follow::Follower;
use super::keys::Keys;
use super::metrics::HaMetrics;
use super::mirror::Mirror;
use super::store::{RedisStore, Writer, WriterConfig};
use super::{conn, liveness, test_state};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// Upper bound of every wait in these tests.
const PATIENCE: Duration = Duration::from_secs(5);

/// A private redis-server on a free loopback port, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!("ngmedia-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis test folder");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.restart();
        server
    }

    /// (Re)start on the same port, empty (no persistence).
    fn restart(&mut self) {
        assert!(
            std::path::Path::new(REDIS_SERVER).exists(),
            "{REDIS_SERVER} is missing: these tests need a real Redis (apt-get install redis-server)"
        );
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REDIS_SERVER}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self) -> Client {
        Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn writer(client: Client, me: &str) -> (RedisStore, Writer, Arc<HaMetrics>) {
    let metrics = Arc::new(HaMetrics::new(me, false));
    let (store, writer) = Writer::new(WriterConfig {
        client,
        keys: Keys::new("t"),
        instance: me.into(),
        metrics: metrics.clone(),
        loaded: Arc::new(AtomicBool::new(true)),
    });
    (store, writer, metrics)
}

/// Poll `check` every 20 ms until it holds; false after [`PATIENCE`].
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn hget(conn: &mut MultiplexedConnection, key: &str, field: &str) -> Option<Vec<u8>> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .unwrap()
}

async fn is_member(conn: &mut MultiplexedConnection, set: &str, member: &str) -> bool {
    redis::cmd("SISMEMBER")
        .arg(set)
        .arg(member)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn save_writes_hash_and_set_remove_deletes_them() {
    let redis = RedisServer::start();
    let (store, writer, metrics) = writer(redis.client(), "m1");
    let task = tokio::spawn(writer.run());
    let mut conn = conn::connect(&redis.client()).await.unwrap();
    let keys = Keys::new("t");
    let id = "call one@host";
    let bytes = test_state(id).encode();

    store.save(test_state(id));
    assert!(
        eventually(|| {
            let mut c = conn.clone();
            let k = keys.call(id);
            async move { hget(&mut c, &k, "state").await.is_some() }
        })
        .await
    );
    assert_eq!(hget(&mut conn, &keys.call(id), "state").await, Some(bytes));
    assert_eq!(
        hget(&mut conn, &keys.call(id), "owner").await,
        Some(b"m1".to_vec())
    );
    assert!(is_member(&mut conn, &keys.calls("m1"), id).await);
    assert!(metrics.figures().redis_up);

    store.remove(id);
    assert!(
        eventually(|| {
            let mut c = conn.clone();
            let k = keys.calls("m1");
            async move { !is_member(&mut c, &k, id).await }
        })
        .await
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.call(id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists);
    assert_eq!(metrics.figures().writes, 2);
    assert_eq!(metrics.figures().pending_calls, 0);

    // Closing drains and ends the task.
    store.save(test_state("last"));
    store.close();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert!(is_member(&mut conn, &keys.calls("m1"), "last").await);
}

#[tokio::test]
async fn writes_made_during_an_outage_arrive_after_it() {
    let mut redis = RedisServer::start();
    let (store, writer, metrics) = writer(redis.client(), "m1");
    let task = tokio::spawn(writer.run());
    store.save(test_state("before"));
    assert!(eventually(|| async { metrics.figures().writes == 1 }).await);
    assert!(metrics.figures().redis_up);

    redis.stop();
    for id in ["a", "b", "c"] {
        store.save(test_state(id));
    }
    assert!(
        eventually(|| async { !metrics.figures().redis_up }).await,
        "redis_up never went 0"
    );
    assert!(metrics.figures().write_errors >= 1);
    assert_eq!(store.pending(), 3);
    assert_eq!(metrics.figures().pending_calls, 3);

    // Back, empty: everything live is rewritten, the earlier call included.
    redis.restart();
    let restarted = Instant::now();
    let mut conn = conn::connect(&redis.client()).await.unwrap();
    let keys = Keys::new("t");
    let all_there = eventually(|| {
        let mut c = conn.clone();
        let set = keys.calls("m1");
        async move {
            let ids: std::collections::BTreeSet<String> = redis::cmd("SMEMBERS")
                .arg(&set)
                .query_async(&mut c)
                .await
                .unwrap();
            ids.into_iter().collect::<Vec<_>>() == ["a", "b", "before", "c"]
        }
    })
    .await;
    assert!(all_there, "not resynchronised within {PATIENCE:?}");
    assert!(restarted.elapsed() < PATIENCE);
    for id in ["a", "b", "c", "before"] {
        assert_eq!(
            hget(&mut conn, &keys.call(id), "state").await,
            Some(test_state(id).encode())
        );
    }
    assert!(eventually(|| async { metrics.figures().redis_up }).await);
    assert_eq!(store.pending(), 0);
    task.abort();
}

#[tokio::test]
async fn resync_removes_ids_that_are_no_longer_live() {
    let redis = RedisServer::start();
    let mut conn = conn::connect(&redis.client()).await.unwrap();
    let keys = Keys::new("t");
    // Left over from an earlier run: not live here.
    redis::cmd("SADD")
        .arg(keys.calls("m1"))
        .arg("stale")
        .exec_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(keys.call("stale"))
        .arg("owner")
        .arg("m1")
        .exec_async(&mut conn)
        .await
        .unwrap();
    let (store, writer, _) = writer(redis.client(), "m1");
    store.save(test_state("live"));
    let task = tokio::spawn(writer.run());
    let ok = eventually(|| {
        let mut c = conn.clone();
        let set = keys.calls("m1");
        async move {
            let ids: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&set)
                .query_async(&mut c)
                .await
                .unwrap();
            ids == ["live"]
        }
    })
    .await;
    assert!(ok);
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.call("stale"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists);
    task.abort();
}

#[tokio::test]
async fn events_round_trip_through_a_real_subscription() {
    let redis = RedisServer::start();
    let keys = Keys::new("t");
    let mut pubsub = conn::pubsub(&redis.client()).await.unwrap();
    pubsub.subscribe(keys.events()).await.unwrap();
    let (store, writer, _) = writer(redis.client(), "m1");
    let task = tokio::spawn(writer.run());
    let id = "id with spaces\nand a newline";
    store.save(test_state(id));
    let mut messages = pubsub.on_message();
    let msg = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.get_channel_name(), "t:events");
    assert_eq!(
        event::decode(msg.get_payload_bytes()).unwrap(),
        Event::Save {
            owner: "m1".into(),
            call_id: id.into(),
            state: test_state(id).encode(),
        }
    );
    store.remove(id);
    let msg = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event::decode(msg.get_payload_bytes()).unwrap(),
        Event::Remove {
            owner: "m1".into(),
            call_id: id.into()
        }
    );
    task.abort();
}

#[tokio::test]
async fn mirror_loads_and_follows_other_instances() {
    let redis = RedisServer::start();
    let keys = Keys::new("t");
    let mut conn = conn::connect(&redis.client()).await.unwrap();
    liveness::beat(&mut conn, &keys, "other", Duration::from_secs(5))
        .await
        .unwrap();
    let (store, writer, _) = writer(redis.client(), "other");
    store.save(test_state("early"));
    let task = tokio::spawn(writer.run());
    assert!(
        eventually(|| {
            let mut c = conn.clone();
            let k = keys.calls("other");
            async move { is_member(&mut c, &k, "early").await }
        })
        .await
    );

    let mirror = Arc::new(Mirror::default());
    let follow = tokio::spawn(super::mirror::follow(
        redis.client(),
        keys.clone(),
        "me".into(),
        mirror.clone(),
    ));
    assert!(
        eventually(|| async { mirror.len() == 1 }).await,
        "full load"
    );
    store.save(test_state("late"));
    assert!(
        eventually(|| async { mirror.calls_of("other").len() == 2 }).await,
        "event"
    );
    store.remove("early");
    assert!(
        eventually(|| async { mirror.calls_of("other").len() == 1 }).await,
        "removal"
    );
    follow.abort();
    task.abort();
}

#[tokio::test]
async fn expired_heartbeat_is_detected_and_claimed_by_one_standby() {
    let redis = RedisServer::start();
    let keys = Keys::new("t");
    let mut conn = conn::connect(&redis.client()).await.unwrap();
    liveness::beat(&mut conn, &keys, "dead", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(liveness::alive(&mut conn, &keys, "dead").await.unwrap());
    for id in ["x1", "x2"] {
        redis::cmd("HSET")
            .arg(keys.call(id))
            .arg("owner")
            .arg("dead")
            .arg("state")
            .arg(test_state(id).encode())
            .exec_async(&mut conn)
            .await
            .unwrap();
        redis::cmd("SADD")
            .arg(keys.calls("dead"))
            .arg(id)
            .exec_async(&mut conn)
            .await
            .unwrap();
    }
    assert!(
        eventually(|| {
            let mut c = conn.clone();
            let k = keys.clone();
            async move { !liveness::alive(&mut c, &k, "dead").await.unwrap() }
        })
        .await
    );

    // Two standbys race: exactly one claim wins.
    assert!(liveness::claim(&mut conn, &keys, "dead", "s1")
        .await
        .unwrap());
    assert!(!liveness::claim(&mut conn, &keys, "dead", "s2")
        .await
        .unwrap());
    liveness::release(&mut conn, &keys, "dead", "s2")
        .await
        .unwrap();
    let holder: Option<String> = redis::cmd("GET")
        .arg(keys.claim("dead"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("s1"), "a non-holder cannot release");
    liveness::release(&mut conn, &keys, "dead", "s1")
        .await
        .unwrap();

    let engine = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let workers = MediaWorkers::start(&engine).unwrap();
    let calls = Arc::new(Mutex::new(Calls::new(Arc::new(engine), workers.clone())));
    let metrics = Arc::new(HaMetrics::new("s1", true));
    let follower = Follower {
        client: redis.client(),
        keys: keys.clone(),
        me: "s1".into(),
        calls,
        mirror: Arc::new(Mirror::default()),
        metrics: metrics.clone(),
    };
    let done = follower.check(&mut conn).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].instance, "dead");
    assert_eq!(metrics.figures().takeovers, 1);
    assert!(!is_member(&mut conn, &keys.instances(), "dead").await);
    let left: bool = redis::cmd("EXISTS")
        .arg(keys.calls("dead"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!left);
    // Nothing left to take over.
    assert!(follower.check(&mut conn).await.unwrap().is_empty());
    workers.shutdown();
}
