//! Thin IO around the sans-IO core: media sockets and the worker threads that move packets.
//!
//! # Why dedicated threads and raw epoll, not tokio
//!
//! The relay path is a tight loop of `recvmmsg` → classify → latch → `sendmmsg` over many
//! mostly idle sockets. rtpengine runs it on a fixed set of poller threads, each owning an
//! epoll set; we do the same. An async runtime would add a waker, a task and a future per
//! socket, move sockets between threads (work stealing), and expose no batched
//! `recvmmsg`/`sendmmsg`; here a call's sockets all live on one thread, so forwarding from
//! one socket to another is a slab lookup with no lock, no channel and no allocation, and
//! one wake-up serves a batch of up to 32 packets per syscall.
//!
//! # Threads and ownership
//!
//! * The control plane calls [`MediaWorkers`] (the [`MediaPlane`] trait). `allocate_pair`
//!   binds sockets on the calling thread and parks them in a pending map; they are not
//!   watched yet, so datagrams that arrive before the first plan wait in the kernel buffer
//!   and are handled once the plan is applied.
//! * `apply` moves the pending sockets of the call into a command for the call's worker
//!   (`CallKey % workers`), wakes it through an eventfd, and returns without waiting.
//!   The worker diffs the plan against what it has: ports it already holds keep their
//!   socket and latch (`relatch` forgets the learned address; a new SDP address replaces the
//!   expected one but keeps the learned one), new ports are registered in epoll, and ports
//!   the plan no longer names are closed.
//! * Closing a socket returns its port to the pool; `remove` closes all of a call's ports.
//!   [`MediaWorkers::flush`] waits until the workers have caught up (tests, shutdown paths).
//!
//! # Counting
//!
//! Valid RTP/RTCP accepted by the latch counts in the stream's `packets`/`bytes` (RTP header
//! included; muxed RTCP in `rtcp_packets`/`rtcp_bytes`) and in the worker's totals, even when
//! it is then not relayed. Every packet not relayed for a reason other than `forward == false`
//! counts once in the stream's `errors` and once in the worker's `drops[reason]`. STUN and
//! DTLS are not handled yet and are dropped as `Malformed`.

mod ports;
mod sys;
mod worker;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

use crate::core::config::{EngineConfig, Interface};
use crate::core::latch::EndpointLearning;
use crate::core::plan::{CallKey, CallPlan, LocalPort, MediaPlane, PortError, PortKey, PortPair};
use crate::core::stats::{PacketTotals, WorkerCounters};
use ports::{BoundPort, PortPool, Role};
use sys::EventFd;
use worker::{Command, Worker};

/// Socket buffer size requested for media sockets: about 1 s of a few hundred G.711 streams'
/// worth of bursts, so a worker that is briefly descheduled does not lose packets.
pub const DEFAULT_SOCKET_BUFFER: usize = 1 << 20;

/// How long [`MediaWorkers::flush`] waits for each worker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// IO tunables not part of [`EngineConfig`].
#[derive(Debug, Clone, Copy)]
pub struct IoOptions {
    /// Endpoint learning algorithm for every stream (rtpengine `--endpoint-learning`).
    pub learning: EndpointLearning,
    /// SO_RCVBUF/SO_SNDBUF requested per media socket.
    pub socket_buffer: usize,
}

impl Default for IoOptions {
    fn default() -> Self {
        IoOptions {
            learning: EndpointLearning::Delayed,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
        }
    }
}

struct WorkerHandle {
    commands: Sender<Command>,
    wake: Arc<EventFd>,
    counters: Arc<WorkerCounters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    fn send(&self, cmd: Command) -> bool {
        if self.commands.send(cmd).is_err() {
            return false;
        }
        self.wake.notify();
        true
    }
}

/// The media plane: port pool plus one packet-moving thread per core (rtpengine's poller
/// threads with their `stream_fd`s).
pub struct MediaWorkers {
    workers: Vec<WorkerHandle>,
    pool: Arc<PortPool>,
    /// Sockets allocated but not yet named by an applied plan.
    pending: Mutex<HashMap<PortKey, BoundPort>>,
    next_key: AtomicU64,
    stopped: AtomicBool,
}

impl MediaWorkers {
    /// Start `config.workers` threads (0 = one per core) with default [`IoOptions`].
    pub fn start(config: &EngineConfig) -> io::Result<Arc<MediaWorkers>> {
        Self::start_with(config, IoOptions::default())
    }

    pub fn start_with(config: &EngineConfig, options: IoOptions) -> io::Result<Arc<MediaWorkers>> {
        let pool = Arc::new(PortPool::new(
            config.port_min,
            config.port_max,
            options.socket_buffer,
        )?);
        let count = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut media = MediaWorkers {
            workers: Vec::with_capacity(count),
            pool,
            pending: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
        };
        for i in 0..count {
            // On error, dropping `media` stops the workers started so far.
            let (tx, rx) = mpsc::channel();
            let wake = Arc::new(EventFd::new()?);
            let counters = Arc::new(WorkerCounters::default());
            let worker = Worker::new(wake.clone(), rx, counters.clone(), options.learning)?;
            let thread = std::thread::Builder::new()
                .name(format!("ngmedia-media-{i}"))
                .spawn(move || worker.run())?;
            media.workers.push(WorkerHandle {
                commands: tx,
                wake,
                counters,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(Arc::new(media))
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    fn worker_for(&self, call: CallKey) -> &WorkerHandle {
        &self.workers[(call.0 % self.workers.len() as u64) as usize]
    }

    /// Wait (bounded) until every worker has handled the commands sent before this call.
    /// Returns false if a worker did not answer in time or is gone.
    pub fn flush(&self) -> bool {
        let mut acks = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            let (tx, rx) = mpsc::sync_channel(1);
            if !w.send(Command::Barrier(tx)) {
                return false;
            }
            acks.push(rx);
        }
        acks.iter().all(|rx| rx.recv_timeout(FLUSH_TIMEOUT).is_ok())
    }

    /// Stop and join the worker threads; every socket is closed. Idempotent.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        for w in &self.workers {
            w.send(Command::Shutdown);
        }
        for w in &self.workers {
            let handle = w.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(handle) = handle {
                if handle.join().is_err() {
                    warn!("media worker panicked");
                }
            }
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn take_pending(&self, keys: impl Iterator<Item = PortKey>) -> Vec<BoundPort> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        keys.filter_map(|k| pending.remove(&k)).collect()
    }
}

impl Drop for MediaWorkers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl MediaPlane for MediaWorkers {
    fn allocate_pair(&self, interface: &Interface) -> Result<PortPair, PortError> {
        let [(rtp_fd, rtp_addr), (rtcp_fd, rtcp_addr)] = self.pool.allocate(interface.local)?;
        let rtp_key = PortKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        let rtcp_key = PortKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        let rtp = BoundPort::new(rtp_key, rtp_addr, Role::Rtp, rtp_fd, self.pool.clone());
        let rtcp = BoundPort::new(rtcp_key, rtcp_addr, Role::Rtcp, rtcp_fd, self.pool.clone());
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.insert(rtp_key, rtp);
        pending.insert(rtcp_key, rtcp);
        Ok(PortPair {
            rtp: LocalPort {
                key: rtp_key,
                addr: rtp_addr,
            },
            rtcp: LocalPort {
                key: rtcp_key,
                addr: rtcp_addr,
            },
        })
    }

    fn apply(&self, plan: CallPlan) {
        let ports = self.take_pending(plan.streams.iter().map(|s| s.port));
        // If the worker is gone (shutdown), the command and its sockets are dropped.
        self.worker_for(plan.call)
            .send(Command::Apply { plan, ports });
    }

    fn remove(&self, call: CallKey) {
        self.worker_for(call).send(Command::Remove(call));
    }

    fn release(&self, ports: &[PortKey]) {
        let mut elsewhere = Vec::new();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for key in ports {
                if pending.remove(key).is_none() {
                    elsewhere.push(*key);
                }
            }
        }
        // Ports already handed to a worker: we do not know which one, and this is rare.
        if !elsewhere.is_empty() {
            for w in &self.workers {
                w.send(Command::Release(elsewhere.clone()));
            }
        }
    }

    fn totals(&self) -> PacketTotals {
        let mut t = PacketTotals::default();
        for w in &self.workers {
            t.add(&w.counters);
        }
        t
    }
}
