//! Thin IO around the sans-IO core: media sockets and the worker threads that move packets.
//!
//! # Why dedicated threads, not tokio
//!
//! The relay path is a tight loop of receive → classify → latch → send over many mostly
//! idle sockets. rtpengine runs it on a fixed set of poller threads; we do the same. An
//! async runtime would add a waker, a task and a future per socket, move sockets between
//! threads (work stealing), and expose no batched IO; here a call's sockets all live on one
//! thread, so forwarding from one socket to another is a slab lookup with no lock, no
//! channel and no allocation.
//!
//! # Two backends
//!
//! The per-packet logic (classify, STUN/DTLS, SRTP, latch, count, taps, route, protect) is
//! the sans-IO pipeline `core::stream::handle`, which returns a `Verdict`; both backends
//! call the one dispatch `worker::Core::dispatch`, which performs the verdict through the
//! backend's `worker::Transmit`, with the socket table and command handling in
//! `worker::Core`. Only the byte moving differs:
//!
//! * **io_uring** (`uring.rs`, default when the kernel allows it): per worker one ring, the
//!   sockets in its fixed-file table, one multishot `RECVMSG` per socket drawing buffers
//!   from a provided-buffer ring, and each relayed packet sent by a `SEND` with a destination
//!   address straight out of its receive buffer. One `io_uring_enter` per loop iteration
//!   submits the previous iteration's sends and collects the next completions; receiving
//!   costs no system call per packet, and there is no epoll, no `fdget` and no
//!   `msghdr`/iovec copying from user space.
//! * **epoll** (`epoll.rs`, the fallback): level-triggered epoll, `recvmmsg` of up to 32
//!   packets per readable socket and one `sendmmsg` per destination, all as raw system calls
//!   (glibc's wrappers are cancellation points that toggle the cancel state on every call).
//!
//! [`IoOptions::backend`] chooses; `Auto` (the default) takes io_uring unless the ring
//! cannot be set up (kernel < 6.12, `kernel.io_uring_disabled`, a seccomp filter returning
//! ENOSYS/EPERM), and the [`BACKEND_ENV`] variable can force either. The choice is logged
//! once at start-up.
//!
//! IPv4 media sockets set `IP_MTU_DISCOVER = IP_PMTUDISC_PROBE`: with DF set the kernel
//! writes IP id 0 instead of hashing every datagram into its global `ip_idents` table
//! (`__ip_select_ident`, ~2% of the relay's CPU). IPv6 has no per-packet id to save.
//!
//! # What the CPU goes to (measured)
//!
//! Pinned single-thread runs, 500 calls / 50k pkt/s on loopback, `perf record -e cpu-clock`
//! of the io_uring worker: ~54% is `udp_sendmsg`, of which about half is the loopback
//! delivery into the *receiver's* socket run in the sender's context (softirq
//! `process_backlog` → `udp_rcv` → enqueue → waking the load generator, with IPIs in a VM);
//! ~21% is the receive (`io_recvmsg` → `udp_recvmsg`, copying the datagram out), ~8% waiting
//! and waking, ~6% our own code. epoll paid, per packet, one `recvmmsg` and one `sendmmsg`
//! system call (sockets mostly hold one packet per wake-up) plus `epoll_wait`, `fdget`,
//! `sock_poll` and the `msghdr` copies; io_uring removes those but not the UDP stack work,
//! which both backends (and rtpengine) pay identically. Batching wake-ups with io_uring's
//! min-wait timer was tried and cost more CPU than it saved.
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
//!   expected one but keeps the learned one), new ports start receiving, and ports the plan
//!   no longer names are closed.
//! * Closing a socket returns its port to the pool; `remove` closes all of a call's ports.
//!   With io_uring the socket is closed once its cancelled receive has completed, so a slot
//!   is never reused while an operation on it is in flight.
//!   [`MediaWorkers::flush`] waits until the workers have caught up, including such closes
//!   and the results of sends already issued (tests, shutdown paths).
//!
//! # Counting
//!
//! Valid RTP/RTCP accepted by the latch counts in the stream's `packets`/`bytes` (RTP header
//! included; muxed RTCP in `rtcp_packets`/`rtcp_bytes`) and in the worker's totals, even when
//! it is then not relayed. Every packet dropped (`Verdict::Drop(reason)`, or a send that
//! failed) counts once in the stream's `errors` and once in the worker's `drops[reason]`
//! (`ngmedia_packet_drops_total{reason}`); packets absorbed on purpose (`Verdict::Absorbed`:
//! not forwarding, blocked, terminated RTCP, replaced by a player, a DTLS record or STUN
//! response taken) count in neither. STUN checks are answered on streams with ICE
//! (ICE-lite); DTLS records feed the stream's DTLS-SRTP association
//! (`core::stream::DtlsLink`), whose handshake datagrams leave by a plain `sendto`
//! (rare, off the batched path) and whose retransmission timer bounds the backend's wait.

mod epoll;
pub(crate) mod fastpath;
mod ports;
mod sys;
mod uring;
mod worker;

use crate::sync::lock;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use crate::core::config::{EngineConfig, Interface};
use crate::core::latch::EndpointLearning;
use crate::core::plan::{CallKey, CallPlan, LocalPort, MediaPlane, PortError, PortKey, PortPair};
use crate::core::player::PlaySpec;
use crate::core::stats::{PacketTotals, WorkerCounters};
use crate::core::tap::TapSender;
use epoll::EpollWorker;
use ports::{BoundPort, PortPool, Role};
use sys::EventFd;
use uring::UringWorker;
use worker::{Command, Core};

/// Socket buffer size requested for media sockets: about 1 s of a few hundred G.711 streams'
/// worth of bursts, so a worker that is briefly descheduled does not lose packets.
pub const DEFAULT_SOCKET_BUFFER: usize = 1 << 20;

/// How long [`MediaWorkers::flush`] waits for each worker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Environment variable that forces a backend when [`IoOptions::backend`] is `Auto`:
/// `epoll`, `io_uring` or `auto`.
pub const BACKEND_ENV: &str = "NGMEDIA_IO_BACKEND";

/// How the media workers move packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// io_uring when the kernel allows it, else epoll ([`BACKEND_ENV`] can force one).
    #[default]
    Auto,
    /// epoll + `recvmmsg`/`sendmmsg`.
    Epoll,
    /// io_uring; starting fails if it is unavailable.
    IoUring,
}

impl Backend {
    /// Parse a [`BACKEND_ENV`] value.
    pub fn parse(s: &str) -> Option<Backend> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(Backend::Auto),
            "epoll" => Some(Backend::Epoll),
            "io_uring" | "io-uring" | "iouring" | "uring" => Some(Backend::IoUring),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Epoll => "epoll",
            Backend::IoUring => "io_uring",
        }
    }
}

/// Whether the io_uring backend can run on this host (kernel >= 6.12, io_uring not disabled
/// by `kernel.io_uring_disabled` or a seccomp filter).
pub fn io_uring_available() -> io::Result<()> {
    uring::probe()
}

/// IO tunables not part of [`EngineConfig`].
#[derive(Debug, Clone, Copy)]
pub struct IoOptions {
    /// Endpoint learning algorithm for every stream (rtpengine `--endpoint-learning`).
    pub learning: EndpointLearning,
    /// SO_RCVBUF/SO_SNDBUF requested per media socket.
    pub socket_buffer: usize,
    /// Packet IO backend.
    pub backend: Backend,
}

impl Default for IoOptions {
    fn default() -> Self {
        IoOptions {
            learning: EndpointLearning::default(),
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            backend: Backend::Auto,
        }
    }
}

/// What a worker thread reports once its backend is set up: the backend in use and, for a
/// fallback to epoll, why io_uring was not used.
type Ready = io::Result<(Backend, Option<io::Error>)>;

/// Body of a worker thread: set up the backend (on this thread: the ring is single-issuer),
/// report it, then run.
fn run_worker(
    core: Core,
    wake: Arc<EventFd>,
    backend: Backend,
    max_sockets: usize,
    ready: mpsc::SyncSender<Ready>,
) {
    let mut core = core;
    let mut why = None;
    if backend != Backend::Epoll {
        match UringWorker::new(wake.clone(), core, max_sockets) {
            Ok(w) => {
                let _ = ready.send(Ok((Backend::IoUring, None)));
                return w.run();
            }
            Err(failed) if backend == Backend::Auto => {
                let (e, c) = *failed;
                core = c;
                why = Some(e);
            }
            Err(failed) => {
                let (e, _) = *failed;
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    match EpollWorker::new(wake, core) {
        Ok(w) => {
            let _ = ready.send(Ok((Backend::Epoll, why)));
            w.run();
        }
        Err(e) => {
            let _ = ready.send(Err(e));
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
    backend: Backend,
    /// The kernel fast path, when loaded (`--fast-path`).
    fast: Option<Arc<fastpath::FastPath>>,
}

impl MediaWorkers {
    /// Keep a freshly bound pair until a plan hands it to a worker.
    fn hold_pair(&self, bound: [(std::os::fd::OwnedFd, std::net::SocketAddr); 2]) -> PortPair {
        let [(rtp_fd, rtp_addr), (rtcp_fd, rtcp_addr)] = bound;
        let rtp_key = PortKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        let rtcp_key = PortKey(self.next_key.fetch_add(1, Ordering::Relaxed));
        let rtp = BoundPort::new(rtp_key, rtp_addr, Role::Rtp, rtp_fd, self.pool.clone());
        let rtcp = BoundPort::new(rtcp_key, rtcp_addr, Role::Rtcp, rtcp_fd, self.pool.clone());
        let mut pending = lock(&self.pending);
        pending.insert(rtp_key, rtp);
        pending.insert(rtcp_key, rtcp);
        PortPair {
            rtp: LocalPort {
                key: rtp_key,
                addr: rtp_addr,
            },
            rtcp: LocalPort {
                key: rtcp_key,
                addr: rtcp_addr,
            },
        }
    }

    /// Start `config.workers` threads (0 = one per core) with default [`IoOptions`] but the
    /// configured endpoint learning.
    pub fn start(config: &EngineConfig) -> io::Result<Arc<MediaWorkers>> {
        let options = IoOptions {
            learning: config.endpoint_learning,
            ..IoOptions::default()
        };
        Self::start_with(config, options)
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
            backend: Backend::Epoll,
            fast: fastpath::FastPath::start(config.fast_path)?,
        };
        let backend = match (options.backend, std::env::var(BACKEND_ENV)) {
            (Backend::Auto, Ok(v)) => Backend::parse(&v).unwrap_or_else(|| {
                warn!(value = %v, "{BACKEND_ENV}: unknown backend, using auto");
                Backend::Auto
            }),
            (b, _) => b,
        };
        let max_sockets = media.pool.capacity() * config.interfaces.len().max(1);
        // One socket for every worker's DTMF reports, connected to the destination.
        let dtmf_sock = match config.dtmf_log_dest {
            Some(dest) => {
                let any: std::net::SocketAddr = if dest.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = std::net::UdpSocket::bind(any)?;
                sock.connect(dest)?;
                sock.set_nonblocking(true)?;
                Some(Arc::new(sock))
            }
            None => None,
        };
        let mut used = None;
        for i in 0..count {
            // On error, dropping `media` stops the workers started so far.
            let (tx, rx) = mpsc::channel();
            let wake = Arc::new(EventFd::new()?);
            let counters = Arc::new(WorkerCounters::default());
            let mut core = Core::new(
                rx,
                counters.clone(),
                options.learning,
                config.silence_detect,
                dtmf_sock.clone(),
                media.fast.clone(),
            );
            core.dtmf_digit_delay_ms = config.dtmf_digit_delay_ms;
            core.playout = config.playout.enabled().then_some(config.playout);
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let thread_wake = wake.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ngmedia-media-{i}"))
                .spawn(move || run_worker(core, thread_wake, backend, max_sockets, ready_tx))?;
            let ready = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("media worker died during start-up")));
            media.workers.push(WorkerHandle {
                commands: tx,
                wake,
                counters,
                thread: Mutex::new(Some(thread)),
            });
            let (kind, why) = ready?;
            if used.is_none() {
                match why {
                    Some(e) => info!("media workers: epoll backend (io_uring unavailable: {e})"),
                    None => info!(
                        "media workers: {} backend ({} {})",
                        kind.name(),
                        count,
                        if count == 1 { "thread" } else { "threads" }
                    ),
                }
                used = Some(kind);
            }
        }
        media.backend = used.unwrap_or(Backend::Epoll);
        Ok(Arc::new(media))
    }

    /// Loop utilisation of each worker, in worker order: (busy nanoseconds, wake-ups).
    pub fn loads(&self) -> Vec<(u64, u64)> {
        self.workers
            .iter()
            .map(|w| {
                (
                    w.counters.busy_ns.load(Ordering::Relaxed),
                    w.counters.wakeups.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// The kernel fast path, when it is in use.
    pub fn fast_path(&self) -> Option<&Arc<fastpath::FastPath>> {
        self.fast.as_ref()
    }

    /// The backend the workers use (never `Auto`).
    pub fn backend(&self) -> Backend {
        self.backend
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

    /// Send copies of tapped streams (plans with `tap` set) to `tap` from now on. Streams
    /// already running pick it up at their call's next plan.
    pub fn set_tap(&self, tap: Option<TapSender>) {
        for w in &self.workers {
            w.send(Command::SetTap(tap.clone()));
        }
    }

    /// Send interception copies (plans with `intercept` set) to `tap` from now on. Refused
    /// copies are counted on `tap` only, never in the engine's drop counters.
    pub fn set_intercept_tap(&self, tap: Option<TapSender>) {
        for w in &self.workers {
            w.send(Command::SetInterceptTap(tap.clone()));
        }
    }

    /// Send a copy of the RTCP every stream receives (decrypted) to `tap` from now on (the
    /// Homer sender). Streams already running pick it up at their call's next plan.
    pub fn set_rtcp_tap(&self, tap: Option<TapSender>) {
        for w in &self.workers {
            w.send(Command::SetRtcpTap(tap.clone()));
        }
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
            let handle = lock(&w.thread).take();
            if let Some(handle) = handle {
                if handle.join().is_err() {
                    warn!("media worker panicked");
                }
            }
        }
        // The workers withdrew their entries on the way out; now the program goes.
        if let Some(fast) = &self.fast {
            fast.detach();
        }
        lock(&self.pending).clear();
    }

    fn take_pending(&self, keys: impl Iterator<Item = PortKey>) -> Vec<BoundPort> {
        let mut pending = lock(&self.pending);
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
        let bound = self.pool.allocate(interface.local)?;
        Ok(self.hold_pair(bound))
    }

    fn allocate_pair_at(
        &self,
        interface: &Interface,
        rtp_port: u16,
    ) -> Result<PortPair, PortError> {
        let bound = self.pool.allocate_at(interface.local, rtp_port)?;
        Ok(self.hold_pair(bound))
    }

    fn apply(&self, plan: CallPlan) {
        let ports = self.take_pending(
            plan.streams
                .iter()
                .flat_map(|s| std::iter::once(s.port).chain(s.alternates.iter().copied())),
        );
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
            let mut pending = lock(&self.pending);
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

    fn play(&self, call: CallKey, port: PortKey, play: Option<PlaySpec>) {
        self.worker_for(call).send(Command::Play(port, play));
    }

    fn play_dtmf(
        &self,
        call: CallKey,
        port: PortKey,
        digit: crate::core::dtmf_inject::DtmfDigit,
        target: crate::core::dtmf_inject::InjectTarget,
        ptime_ms: u32,
    ) {
        self.worker_for(call).send(Command::PlayDtmf {
            port,
            digit,
            target,
            ptime_ms,
        });
    }

    fn totals(&self) -> PacketTotals {
        let mut t = PacketTotals::default();
        for w in &self.workers {
            t.add(&w.counters);
        }
        if let Some(fp) = &self.fast {
            t.fast_path_xdp_packets = fp.path_packets().0;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse() {
        assert_eq!(Backend::parse("epoll"), Some(Backend::Epoll));
        assert_eq!(Backend::parse(" IO_URING "), Some(Backend::IoUring));
        assert_eq!(Backend::parse("io-uring"), Some(Backend::IoUring));
        assert_eq!(Backend::parse("auto"), Some(Backend::Auto));
        assert_eq!(Backend::parse(""), Some(Backend::Auto));
        assert_eq!(Backend::parse("kqueue"), None);
    }
}
