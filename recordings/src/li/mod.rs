//! Lawful interception (LI) delivery, a sink beside the recorder: the registry of
//! interception tasks ([`task`], persisted by the task store), their matching against calls,
//! and delivery of the targets' call content to collectors as X3 PDUs ([`x3`]) over TCP/TLS or
//! as raw RTP over UDP (the delivery links). The same machinery serves the ng
//! `start forwarding` / `stop forwarding` commands, with their own destination. Tasks are
//! administered only through the daemon's LI listener (`ngmedia-control`, `li::api`), which
//! calls [`Interceptor::add`] and [`Interceptor::remove`].
//!
//! Invisibility is the design rule: the call registry only learns, per call, which legs'
//! streams to copy ([`InterceptSink`]); the media workers copy into a queue of their own
//! whose refusals are not engine drops; nothing here logs to the ordinary log, and the only
//! trace outside the LI listener is the anonymous `ngmedia_li_tasks_active` gauge.
//!
//! Content flow: media worker → interception queue (bounded, pooled copies) → one consumer
//! thread that looks the packet's call up in the routing table filled by
//! [`InterceptSink::update`] and appends a PDU to each matching task's link (bounded, never
//! waits) → the link's thread writes to the collector.

mod deliver;
mod store;
pub mod task;
pub mod x3;

use ngmedia_engine::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::plan::CallKey;
use ngmedia_engine::core::tap::{
    tap_queue, InterceptCall, InterceptSink, LegMask, TapPacket, TapReceiver, TapSender,
};

use self::deliver::{Link, LinkConfig, LinkKind, LINK_QUEUE};
use self::store::{StoreError, TaskStore};
use self::task::{copy_mask, Destination, Task};
use self::x3::{Direction, Xid};

/// Copies in flight from the workers to the consumer.
pub const INTERCEPT_QUEUE: usize = 8192;
/// Idle time before an X3 link sends a keep-alive.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// How the interceptor is set up.
#[derive(Clone, Default)]
pub struct LiSettings {
    /// Folder of the task file (`None`: LI administration is off; only forwarding works).
    pub dir: Option<PathBuf>,
    /// TLS client configuration for X3-over-TLS destinations.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Destination of `start forwarding` (raw RTP over UDP).
    pub forward_to: Option<SocketAddr>,
    pub keepalive: Duration,
}

/// Why the interceptor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start an LI delivery thread: {0}")]
    Thread(std::io::Error),
}

/// A task with its delivery link.
pub struct ActiveTask {
    pub task: Task,
    pub link: Link,
}

/// Per call: which tasks target which legs, and each leg's peer.
struct Route {
    peers: Vec<Option<u16>>,
    tasks: Vec<(Arc<ActiveTask>, LegMask)>,
    forward: bool,
}

/// The interception module (no rtpengine equivalent; rtpengine's forwarding is the
/// `start forwarding` part).
pub struct Interceptor {
    settings: LiSettings,
    store: Option<TaskStore>,
    tasks: Mutex<BTreeMap<Xid, Arc<ActiveTask>>>,
    routes: Mutex<HashMap<CallKey, Route>>,
    forward: Option<Link>,
    queue: TapSender,
    stop: AtomicBool,
    consumer: Mutex<Option<JoinHandle<()>>>,
    /// Tasks configured, for the anonymous metric.
    active: Arc<AtomicUsize>,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Interceptor {
    /// Load persisted tasks, start their links and the consumer. Returns the interceptor and
    /// the sender the media workers copy into.
    pub fn start(settings: LiSettings) -> Result<(Arc<Interceptor>, TapSender), LiError> {
        let store = settings.dir.as_deref().map(TaskStore::open).transpose()?;
        let forward = settings
            .forward_to
            .map(|address| {
                Link::start(LinkConfig {
                    kind: LinkKind::Udp { address },
                    keepalive: settings.keepalive,
                    queue: LINK_QUEUE,
                })
            })
            .transpose()
            .map_err(LiError::Thread)?;
        let (tx, rx) = tap_queue(INTERCEPT_QUEUE);
        let li = Arc::new(Interceptor {
            settings,
            store,
            tasks: Mutex::new(BTreeMap::new()),
            routes: Mutex::new(HashMap::new()),
            forward,
            queue: tx.clone(),
            stop: AtomicBool::new(false),
            consumer: Mutex::new(None),
            active: Arc::default(),
        });
        if let Some(store) = &li.store {
            for task in store.load()? {
                let active = li.activate(task).map_err(LiError::Thread)?;
                lock(&li.tasks).insert(active.task.xid, active);
            }
            li.active.store(lock(&li.tasks).len(), Relaxed);
        }
        let consumer = li.clone();
        let handle = std::thread::Builder::new()
            .name("ngmedia-li".into())
            .spawn(move || consumer.consume(rx))
            .map_err(LiError::Thread)?;
        *lock(&li.consumer) = Some(handle);
        Ok((li, tx))
    }

    /// Whether the task administration is on (a task folder is configured).
    pub fn administered(&self) -> bool {
        self.store.is_some()
    }

    /// The count behind `ngmedia_li_tasks_active`.
    pub fn active_gauge(&self) -> Arc<AtomicUsize> {
        self.active.clone()
    }

    /// Copies the media workers could not queue (interception queue full).
    pub fn queue_drops(&self) -> u64 {
        self.queue.refused()
    }

    fn activate(&self, task: Task) -> std::io::Result<Arc<ActiveTask>> {
        let kind = match &task.spec.destination {
            Destination::X3 { address, tls } => LinkKind::X3 {
                address: *address,
                tls: if *tls {
                    self.settings.tls_client.clone()
                } else {
                    None
                },
            },
            Destination::Udp { address } => LinkKind::Udp { address: *address },
        };
        let link = Link::start(LinkConfig {
            kind,
            keepalive: self.settings.keepalive,
            queue: LINK_QUEUE,
        })?;
        Ok(Arc::new(ActiveTask { task, link }))
    }

    /// Every task, in XID order.
    pub fn tasks(&self) -> Vec<Arc<ActiveTask>> {
        lock(&self.tasks).values().cloned().collect()
    }

    pub fn task(&self, xid: &Xid) -> Option<Arc<ActiveTask>> {
        lock(&self.tasks).get(xid).cloned()
    }

    /// Calls a task currently matches.
    pub fn matched_calls(&self, xid: &Xid) -> usize {
        lock(&self.routes)
            .values()
            .filter(|r| r.tasks.iter().any(|(t, _)| t.task.xid == *xid))
            .count()
    }

    fn persist(&self, tasks: &BTreeMap<Xid, Arc<ActiveTask>>) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.save(tasks.values().map(|t| &t.task.spec)),
            None => Ok(()),
        }
    }

    /// Add a task (persisted before it takes effect). `Ok(false)`: the XID exists already.
    /// The caller re-evaluates the calls afterwards.
    pub fn add(&self, task: Task) -> Result<bool, LiError> {
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&task.xid) {
            return Ok(false);
        }
        let active = self.activate(task).map_err(LiError::Thread)?;
        tasks.insert(active.task.xid, active.clone());
        if let Err(e) = self.persist(&tasks) {
            tasks.remove(&active.task.xid);
            active.link.stop();
            return Err(e.into());
        }
        self.active.store(tasks.len(), Relaxed);
        Ok(true)
    }

    /// Remove a task and stop its delivery at once. `Ok(false)`: unknown XID.
    pub fn remove(&self, xid: &Xid) -> Result<bool, LiError> {
        let mut tasks = lock(&self.tasks);
        let Some(active) = tasks.remove(xid) else {
            return Ok(false);
        };
        if let Err(e) = self.persist(&tasks) {
            tasks.insert(*xid, active);
            return Err(e.into());
        }
        active.link.stop();
        self.active.store(tasks.len(), Relaxed);
        drop(tasks);
        // Routes still naming it are replaced by the caller's re-evaluation; until then the
        // stopped link refuses everything.
        for route in lock(&self.routes).values_mut() {
            route.tasks.retain(|(t, _)| t.task.xid != *xid);
        }
        Ok(true)
    }

    /// Stop the consumer and every link (daemon shutdown, after the media workers).
    pub fn shutdown(&self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = lock(&self.consumer).take() {
            let _ = h.join();
        }
        for t in lock(&self.tasks).values() {
            t.link.stop();
        }
        if let Some(f) = &self.forward {
            f.stop();
        }
    }

    fn consume(&self, rx: TapReceiver) {
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(pkt) => {
                    self.dispatch(&pkt);
                    pkt.recycle();
                }
                Err(true) => return,
                Err(false) if self.stop.load(Relaxed) => return,
                Err(false) => {}
            }
        }
    }

    fn dispatch(&self, pkt: &TapPacket) {
        let routes = lock(&self.routes);
        let Some(route) = routes.get(&pkt.call) else {
            return;
        };
        let leg = pkt.stream.leg;
        let bit = |l: u16| if l < 64 { 1u64 << l } else { 0 };
        let peer = route.peers.get(leg as usize).copied().flatten();
        let secs = pkt.arrival_ms / 1000;
        let unix_ns = pkt.arrival_ms.saturating_mul(1_000_000);
        for (t, targets) in &route.tasks {
            if !t.task.active_at(secs) {
                continue;
            }
            // A packet is the target's own when its sender is a target leg, else it is what
            // the target (the sender's peer) receives.
            let dir = if targets & bit(leg) != 0 {
                Direction::FromTarget
            } else if peer.is_some_and(|p| targets & bit(p) != 0) {
                Direction::ToTarget
            } else {
                continue;
            };
            match t.task.spec.destination {
                Destination::X3 { .. } => t.link.push_x3(
                    &t.task.xid,
                    t.task.spec.correlation_id,
                    dir,
                    unix_ns,
                    pkt.bytes(),
                ),
                // Raw mode: the packets as they are, both directions on one socket.
                Destination::Udp { .. } => t.link.push_raw(pkt.bytes()),
            };
        }
        if route.forward {
            if let Some(f) = &self.forward {
                f.push_raw(pkt.bytes());
            }
        }
    }
}

impl InterceptSink for Interceptor {
    fn update(&self, call: &InterceptCall) -> LegMask {
        let now = unix_secs();
        let mut matched = Vec::new();
        let mut mask = 0;
        for t in lock(&self.tasks).values() {
            if t.task.expired_at(now) {
                continue;
            }
            let targets = t.task.targets(call);
            if targets != 0 {
                mask |= copy_mask(call, targets);
                matched.push((t.clone(), targets));
            }
        }
        let forward = call.forwarding && self.forward.is_some();
        if forward {
            mask |= match call.legs.len() {
                n if n >= 64 => u64::MAX,
                n => (1u64 << n) - 1,
            };
        }
        let mut routes = lock(&self.routes);
        if matched.is_empty() && !forward {
            routes.remove(&call.call);
        } else {
            routes.insert(
                call.call,
                Route {
                    peers: call.legs.iter().map(|l| l.peer).collect(),
                    tasks: matched,
                    forward,
                },
            );
        }
        mask
    }

    fn ended(&self, call: CallKey) {
        lock(&self.routes).remove(&call);
    }

    fn forwarding_enabled(&self) -> bool {
        self.forward.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::li::task::{Target, TaskSpec};
    use ngmedia_engine::core::tap::{InterceptLeg, StreamTap, TapStream};
    use std::net::UdpSocket;

    fn call(forwarding: bool) -> InterceptCall {
        let leg = |tag: &str, peer| InterceptLeg {
            tags: vec![tag.into()],
            peer: Some(peer),
            ..Default::default()
        };
        InterceptCall {
            call: CallKey(3),
            call_id: "c".into(),
            legs: vec![leg("a", 1), leg("b", 0)],
            forwarding,
        }
    }

    #[test]
    fn routes_directions_and_forwarding() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let fwd = UdpSocket::bind("127.0.0.1:0").unwrap();
        fwd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (li, tx) = Interceptor::start(LiSettings {
            dir: None,
            tls_client: None,
            forward_to: Some(fwd.local_addr().unwrap()),
            keepalive: KEEPALIVE,
        })
        .unwrap();
        assert_eq!(li.update(&call(false)), 0, "no task, no forwarding");
        let task = Task::new(TaskSpec {
            xid: "00000000-0000-0000-0000-0000000000aa".into(),
            target: Target {
                tag: Some("b".into()),
                ..Default::default()
            },
            destination: Destination::Udp {
                address: collector.local_addr().unwrap(),
            },
            correlation_id: 1,
            valid_from: None,
            valid_until: None,
        })
        .unwrap();
        assert!(li.add(task.clone()).unwrap());
        assert!(!li.add(task).unwrap(), "duplicate XID");
        assert_eq!(li.update(&call(false)), 0b11);
        assert_eq!(li.matched_calls(&Xid([0; 16])), 0);
        // A's packet reaches the UDP collector (what B receives).
        let mut tap = StreamTap::new(CallKey(3), TapStream { leg: 0, media: 0 }, &tx);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(tap.copy(&[0x80, 0, 0, 1], addr, addr, 0));
        let mut buf = [0u8; 64];
        let n = collector.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x80, 0, 0, 1]);
        // Forwarding copies every leg.
        assert_eq!(li.update(&call(true)), 0b11);
        assert!(tap.copy(&[0x80, 0, 0, 2], addr, addr, 0));
        let n = fwd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x80, 0, 0, 2]);
        let xid = Xid::parse("00000000-0000-0000-0000-0000000000aa").unwrap();
        assert!(li.remove(&xid).unwrap());
        assert!(!li.remove(&xid).unwrap());
        assert_eq!(li.update(&call(false)), 0);
        li.ended(CallKey(3));
        li.shutdown();
    }
}
