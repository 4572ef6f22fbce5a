//! The io_uring backend: one ring per worker; receiving costs no system call per packet.
//!
//! * Every socket sits in the ring's fixed-file table under its slab slot, so no operation
//!   looks the descriptor up (`fdget`/`fput`) per packet.
//! * Each socket has one multishot `RECVMSG` armed with buffer select: the kernel picks a
//!   buffer from a provided-buffer ring, receives into it when the socket becomes readable
//!   (from task work on this thread, no `recvmmsg` and no epoll) and posts one completion per
//!   datagram, with the source address in the buffer's `io_uring_recvmsg_out` name area.
//! * A packet to relay is sent straight out of its receive buffer (no copy) by a `SEND` with
//!   a destination address (`sendto`), written over the name area of the same buffer so it
//!   lives as long as the operation. The buffer goes back to the ring when the send
//!   completes. Sends carry `MSG_DONTWAIT`: a full send buffer fails the packet (counted as
//!   `SendFailed`) instead of queueing it, as in the epoll backend.
//! * One `io_uring_enter` per loop iteration submits every send queued by the previous
//!   iteration and waits for the next completions; task work runs only there
//!   (`DEFER_TASKRUN`), so receive completions are batched per wake-up.
//! * Commands arrive through a multishot poll on the worker's eventfd and are handled before
//!   the packets of the same batch.
//!
//! A closed socket's slot is not reused until its multishot receive has posted its last
//! completion (it is cancelled with `ASYNC_CANCEL` and removed from the file table first),
//! so a stale completion can never be taken for a new socket's packet; its port is returned
//! to the pool only then.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, Fd, Fixed, RecvMsgOut};
use io_uring::{cqueue, opcode, squeue, IoUring};
use tracing::warn;

use super::sys::{self, EventFd};
use super::worker::{Core, Entry, Now, Transmit, Watch, SRTP_TAIL_ROOM};
use crate::core::stats::DropReason;
use crate::core::stream::drop_packet;

/// Receive buffers per worker (a power of two, at most 32768). 2048 × 2 KiB = 4 MiB: enough
/// for every socket of a busy worker to have a burst in flight.
const BUFFERS: u16 = 2048;
/// Bytes per receive buffer: `io_uring_recvmsg_out` (16) + the name area + the datagram,
/// then [`SRTP_TAIL_ROOM`] the kernel is not given, so packets can be SRTP-protected in place.
const BUF_SIZE: usize = 2048;
/// Bytes of each buffer the kernel may fill.
const RECV_LEN: usize = BUF_SIZE - SRTP_TAIL_ROOM;
/// Name area reserved in every buffer; fits IPv4 and IPv6 addresses.
const NAME_LEN: usize = size_of::<libc::sockaddr_storage>();
/// Size of `struct io_uring_recvmsg_out`, which starts every multishot receive buffer.
const RECVMSG_OUT: usize = 16;
/// Buffer group id of the provided-buffer ring.
const BGID: u16 = 0;
/// Submission queue entries; completions reaped per iteration are capped below this so the
/// sends they queue always fit.
const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 8192;
/// Completions handled per loop iteration (bounded work between submissions).
const REAP: usize = 512;

const TAG_SHIFT: u32 = 56;
const TAG_RECV: u64 = 1 << TAG_SHIFT;
const TAG_SEND: u64 = 2 << TAG_SHIFT;
const TAG_WAKE: u64 = 3 << TAG_SHIFT;
const TAG_CANCEL: u64 = 4 << TAG_SHIFT;
const TAG_GEN: u64 = 5 << TAG_SHIFT;
const TAG_MASK: u64 = 0xff << TAG_SHIFT;
/// Marks a send that answers the source (STUN) rather than relaying.
const SEND_REPLY: u64 = 1 << 32;

/// Create a ring with the flags the worker uses and check that the kernel has every feature
/// it needs. Fails with the kernel's error (ENOSYS, EPERM: io_uring disabled or filtered by
/// seccomp) or `Unsupported` on kernels older than 6.12.
fn new_ring(entries: u32) -> io::Result<IoUring> {
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .setup_clamp()
        .build(entries)?;
    // min-timeout (6.12) stands for "new enough": multishot RECVMSG with buffer rings (6.0),
    // SEND with a destination address and sparse file tables are all older.
    if !ring.params().is_feature_min_timeout() || !ring.params().is_feature_nodrop() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "kernel io_uring lacks features this engine needs (kernel >= 6.12)",
        ));
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for op in [
        opcode::RecvMsgMulti::CODE,
        opcode::Send::CODE,
        opcode::PollAdd::CODE,
        opcode::AsyncCancel::CODE,
    ] {
        if !probe.is_supported(op) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring opcode {op} not supported"),
            ));
        }
    }
    Ok(ring)
}

/// Whether the io_uring backend can run here (creates and drops a small ring).
///
/// Runs on a throw-away thread: the kernel's asynchronous teardown of a ring may post task
/// work with a signal-like notification to the tasks that used it, which makes a blocking
/// socket call with a timeout on the caller's thread fail with EINTR.
pub(super) fn probe() -> io::Result<()> {
    std::thread::Builder::new()
        .name("ngmedia-uring-probe".into())
        .spawn(|| new_ring(8).map(drop))?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("io_uring probe panicked")))
}

/// Anonymous page-aligned memory (the buffer ring must be page aligned; the buffers need
/// `sockaddr_storage` alignment for the name area).
struct Mmap {
    ptr: *mut u8,
    len: usize,
}

impl Mmap {
    fn new(len: usize) -> io::Result<Mmap> {
        // SAFETY: anonymous private mapping; no file, no fixed address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The provided-buffer ring and its buffers. `push` + `publish` give buffers to the kernel.
struct BufRing {
    ring: Mmap,
    bufs: Mmap,
    /// Local tail; published to the shared ring by `publish`.
    tail: u16,
    /// Buffers currently owned by us (between a receive completion and its recycling).
    held: usize,
}

impl BufRing {
    fn new() -> io::Result<BufRing> {
        let ring = Mmap::new(BUFFERS as usize * size_of::<BufRingEntry>())?;
        let bufs = Mmap::new(BUFFERS as usize * BUF_SIZE)?;
        let mut r = BufRing {
            ring,
            bufs,
            tail: 0,
            held: BUFFERS as usize,
        };
        for bid in 0..BUFFERS {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    #[inline]
    fn entries(&self) -> *mut BufRingEntry {
        self.ring.ptr.cast()
    }

    #[inline]
    fn buf(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid < BUFFERS, so the offset stays inside the mapping.
        unsafe { self.bufs.ptr.add(bid as usize * BUF_SIZE) }
    }

    /// Hand buffer `bid` back (visible to the kernel after `publish`).
    #[inline]
    fn push(&mut self, bid: u16) {
        let slot = (self.tail & (BUFFERS - 1)) as usize;
        // SAFETY: slot < BUFFERS entries of the mapping; the kernel only reads entries
        // between its head and the published tail, and this one is past the tail.
        let e = unsafe { &mut *self.entries().add(slot) };
        e.set_addr(self.buf(bid) as u64);
        e.set_len(RECV_LEN as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.held -= 1;
    }

    #[inline]
    fn publish(&self) {
        // SAFETY: the tail field overlays entry 0's reserved field and is only written by
        // us; the release store orders the entry writes before it, as the kernel expects.
        unsafe {
            let tail = BufRingEntry::tail(self.entries()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

/// Receive state of one slab slot.
enum SlotState {
    Free,
    /// A multishot receive is armed.
    Armed,
    /// The multishot receive ended (no buffers, CQ full, error); re-armed soon.
    Idle,
    /// Closed: cancelled, waiting for the receive's last completion; keeps the socket (and
    /// so its port) until then; dropping it closes the socket.
    Draining(#[allow(dead_code)] Box<Entry>),
}

/// The ring and per-slot receive state: the [`Watch`] side of the backend.
struct Ring {
    ring: IoUring,
    slots: Vec<SlotState>,
    /// Table size of the fixed-file table (slots beyond it cannot be watched).
    files: usize,
    /// Slots whose multishot receive must be re-armed.
    rearm: Vec<usize>,
    /// Template for multishot receives: only the name and control lengths are read (at
    /// submission), so one header serves every socket.
    msghdr: Box<libc::msghdr>,
    /// Receives and sends in flight, for an orderly shutdown.
    sends: usize,
    recvs: usize,
    /// Slots in `Draining`.
    draining: usize,
}

impl Ring {
    /// Queue an SQE, submitting first if the queue is full.
    fn push(&mut self, e: &squeue::Entry) {
        loop {
            // SAFETY: every buffer an SQE points at (msghdr, packet buffers, addresses) is
            // owned by the worker and outlives the operation (see the module docs).
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return;
            }
            if let Err(err) = self.ring.submit() {
                if err.raw_os_error() != Some(libc::EINTR)
                    && err.raw_os_error() != Some(libc::EBUSY)
                {
                    warn!(error = %err, "io_uring submit failed");
                }
            }
        }
    }

    fn arm_recv(&mut self, idx: usize) {
        let e = opcode::RecvMsgMulti::new(Fixed(idx as u32), &*self.msghdr, BGID)
            .build()
            .user_data(TAG_RECV | idx as u64);
        self.push(&e);
        self.slots[idx] = SlotState::Armed;
        self.recvs += 1;
    }

    fn arm_wake(&mut self, fd: RawFd) {
        let e = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(TAG_WAKE);
        self.push(&e);
    }

    fn set_file(&self, idx: usize, fd: RawFd) -> io::Result<()> {
        self.ring
            .submitter()
            .register_files_update(idx as u32, &[fd])
            .map(drop)
    }
}

impl Watch for Ring {
    fn watch(&mut self, idx: usize, fd: RawFd) -> io::Result<()> {
        if idx >= self.files {
            return Err(io::Error::other("io_uring file table full"));
        }
        if idx >= self.slots.len() {
            self.slots.resize_with(idx + 1, || SlotState::Free);
            // Every slot is in `rearm` at most once: no growth on the packet path.
            self.rearm
                .reserve(self.slots.len().saturating_sub(self.rearm.len()));
        }
        self.set_file(idx, fd)?;
        self.arm_recv(idx);
        Ok(())
    }

    fn unwatch(&mut self, idx: usize, entry: Entry) -> Option<Entry> {
        // New operations must not reach the socket; those in flight hold their own
        // reference to it.
        let _ = self.set_file(idx, -1);
        match std::mem::replace(&mut self.slots[idx], SlotState::Free) {
            SlotState::Armed => {
                let e = opcode::AsyncCancel::new(TAG_RECV | idx as u64)
                    .build()
                    .user_data(TAG_CANCEL);
                self.push(&e);
                self.slots[idx] = SlotState::Draining(Box::new(entry));
                self.draining += 1;
                None
            }
            _ => {
                self.rearm.retain(|&i| i != idx);
                Some(entry)
            }
        }
    }

    /// Closed sockets torn down and every send's result counted.
    fn settled(&self) -> bool {
        self.draining == 0 && self.sends == 0
    }
}

/// Send buffers for packets the worker generates (transcoder output, RTCP reports), which
/// cannot be sent from a receive buffer. A generated packet's buffer comes back when its
/// send completion is reaped, which can be behind as many receive completions as there are
/// receive buffers ([`BUFFERS`]), reaped [`REAP`] per loop iteration, each of which may make
/// a packet. With fewer buffers an overloaded worker would transcode packets only to drop
/// them for want of a buffer, and deliver less the further behind it falls. 3072 × 2 KiB:
/// 6 MiB per worker.
const GEN_BUFFERS: usize = BUFFERS as usize + 2 * REAP;
const GEN_BUF_SIZE: usize = 2048;

/// The generated-packet buffers with their destination addresses, allocated once.
struct GenPool {
    bufs: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    /// Free buffer indices (capacity GEN_BUFFERS: pushing never allocates).
    free: Vec<u16>,
}

impl GenPool {
    fn new() -> GenPool {
        GenPool {
            bufs: vec![0u8; GEN_BUFFERS * GEN_BUF_SIZE].into_boxed_slice(),
            names: vec![sys::empty_sockaddr(); GEN_BUFFERS].into_boxed_slice(),
            free: (0..GEN_BUFFERS as u16).rev().collect(),
        }
    }

    /// Queue `pkt` for `dest` out of slot `sink`'s socket; false when the pool is empty.
    fn send(&mut self, io: &mut Ring, sink: usize, dest: SocketAddr, pkt: &[u8]) -> bool {
        if pkt.len() > GEN_BUF_SIZE {
            return false;
        }
        let Some(i) = self.free.pop() else {
            return false;
        };
        let at = i as usize * GEN_BUF_SIZE;
        self.bufs[at..at + pkt.len()].copy_from_slice(pkt);
        let name = &mut self.names[i as usize];
        let name_len = sys::write_sockaddr(&dest, name);
        let e = opcode::Send::new(
            Fixed(sink as u32),
            self.bufs[at..].as_ptr(),
            pkt.len() as u32,
        )
        .dest_addr((name as *const libc::sockaddr_storage).cast())
        .dest_addr_len(name_len)
        .flags(libc::MSG_DONTWAIT)
        .build()
        .user_data(TAG_GEN | i as u64);
        io.push(&e);
        io.sends += 1;
        true
    }
}

pub(crate) struct UringWorker {
    // Field order is drop order: the ring goes before the memory it points at.
    io: Ring,
    core: Core,
    bufs: BufRing,
    gen: GenPool,
    wake: Arc<EventFd>,
    /// Sender slot and slot generation of each buffer being sent, for error accounting.
    send_src: Box<[u32]>,
    cqes: Vec<cqueue::Entry>,
}

// SAFETY: the raw pointers (mappings, msghdr) point at memory owned by the worker, which
// is used by one thread at a time.
unsafe impl Send for UringWorker {}

/// [`Transmit`] for one received datagram (in buffer `bid`, starting at `pkt`): a relayed
/// packet or reply is sent straight out of its receive buffer, which returns to the ring
/// when the send completes; packets the pipeline made go through the [`GenPool`].
struct RecvTx<'a> {
    io: &'a mut Ring,
    gen: &'a mut GenPool,
    bufs: &'a BufRing,
    send_src: &'a mut [u32],
    bid: u16,
    pkt: *const u8,
}

impl Transmit for RecvTx<'_> {
    fn send_received(
        &mut self,
        source: usize,
        via: usize,
        _fd: RawFd,
        dest: SocketAddr,
        len: usize,
    ) {
        let bid = self.bid;
        let base = self.bufs.buf(bid);
        let reply = if source == via { SEND_REPLY } else { 0 };
        // The destination goes over the name area of the same buffer, so it lives as long
        // as the send. The area starts 16 bytes into a 2 KiB-aligned buffer: aligned.
        // SAFETY: NAME_LEN bytes at offset 16 are inside the buffer we own; the payload
        // starts after them, so the two do not overlap.
        let name = unsafe { &mut *base.add(RECVMSG_OUT).cast::<libc::sockaddr_storage>() };
        let name_len = sys::write_sockaddr(&dest, name);
        let e = opcode::Send::new(Fixed(via as u32), self.pkt, len as u32)
            .dest_addr((name as *const libc::sockaddr_storage).cast())
            .dest_addr_len(name_len)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(TAG_SEND | reply | bid as u64);
        self.send_src[bid as usize] = source as u32;
        self.io.push(&e);
        self.io.sends += 1;
    }

    fn send_made(&mut self, _fd: RawFd, slot: usize, dest: SocketAddr, bytes: &[u8]) -> bool {
        self.gen.send(self.io, slot, dest, bytes)
    }
}

impl UringWorker {
    /// Set up the ring; on failure the core is handed back so the caller can fall back to
    /// epoll. Must run on the worker thread (the ring is single-issuer).
    pub(super) fn new(
        wake: Arc<EventFd>,
        core: Core,
        max_sockets: usize,
    ) -> Result<UringWorker, Box<(io::Error, Core)>> {
        match Self::setup(max_sockets) {
            Ok((io, bufs)) => {
                let mut w = UringWorker {
                    io,
                    core,
                    bufs,
                    gen: GenPool::new(),
                    wake,
                    send_src: vec![u32::MAX; BUFFERS as usize].into_boxed_slice(),
                    cqes: Vec::with_capacity(REAP),
                };
                w.io.arm_wake(w.wake.fd());
                Ok(w)
            }
            Err(e) => Err(Box::new((e, core))),
        }
    }

    fn setup(max_sockets: usize) -> io::Result<(Ring, BufRing)> {
        let ring = new_ring(SQ_ENTRIES)?;
        // The fixed-file table cannot exceed RLIMIT_NOFILE; the sockets could not anyway.
        // SAFETY: rlimit is plain data written by getrlimit.
        let mut lim: libc::rlimit = unsafe { zeroed() };
        // SAFETY: valid resource id and writable struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        let files = max_sockets.clamp(1, (lim.rlim_cur as usize).clamp(1, 1 << 20));
        ring.submitter().register_files_sparse(files as u32)?;
        let bufs = BufRing::new()?;
        // SAFETY: the ring mapping is page aligned, holds BUFFERS entries and lives as long
        // as the worker (dropped after the ring).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring.ptr as u64, BUFFERS, BGID, 0)?
        };
        // SAFETY: msghdr is plain data; all-zero is valid.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
        msghdr.msg_namelen = NAME_LEN as libc::socklen_t;
        Ok((
            Ring {
                ring,
                slots: Vec::new(),
                files,
                rearm: Vec::new(),
                msghdr,
                sends: 0,
                recvs: 0,
                draining: 0,
            },
            bufs,
        ))
    }

    /// Run until a `Shutdown` command arrives or the control side goes away.
    pub(super) fn run(mut self) {
        // DTLS handshake retransmission timer (rare; usually none runs).
        let mut timer: Option<Duration> = None;
        loop {
            // Waiting for one completion: batching wake-ups with a min-wait timer measured
            // worse (the hrtimer costs more than the wake-ups it saves at 50k pkt/s).
            // The earliest of the DTLS retransmission timer (at least 1 ms) and the next
            // media player packet (exact: players pace at 20 ms).
            // Full ICE agents' next check shares the player's deadline.
            // Transcoders playing out on a clock (DTX, jitter buffer) and delay buffers' held
            // packets too.
            let player = self.core.media_timeout_us().map(Duration::from_micros);
            let wait = match (timer.map(|t| t.max(Duration::from_millis(1))), player) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let entered = match wait {
                None => self.io.ring.submit_and_wait(1),
                Some(t) => {
                    let ts = io_uring::types::Timespec::from(t);
                    let args = io_uring::types::SubmitArgs::new().timespec(&ts);
                    self.io.ring.submitter().submit_with_args(1, &args)
                }
            };
            if let Err(e) = entered {
                match e.raw_os_error() {
                    // Interrupted, or completions overflowed: reap them below.
                    Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                    | Some(libc::ETIME) => {}
                    _ => {
                        warn!(error = %e, "media worker: io_uring_enter failed, stopping");
                        break;
                    }
                }
            }
            let woke = std::time::Instant::now();
            self.cqes.clear();
            let mut wake = false;
            for cqe in self.io.ring.completion().take(REAP) {
                wake |= cqe.user_data() & TAG_MASK == TAG_WAKE;
                self.cqes.push(cqe);
            }
            // Commands first: a plan applied before a packet was sent must govern it.
            if wake {
                self.wake.drain();
                if !self.core.handle_commands(&mut self.io) {
                    break;
                }
            }
            let now = Now::read();
            for i in 0..self.cqes.len() {
                let cqe = self.cqes[i].clone();
                self.dispatch(&cqe, now);
            }
            if !self.io.rearm.is_empty() && self.bufs.held < BUFFERS as usize / 2 {
                while let Some(idx) = self.io.rearm.pop() {
                    if matches!(self.io.slots[idx], SlotState::Idle) {
                        self.io.arm_recv(idx);
                    }
                }
            }
            let (io, gen) = (&mut self.io, &mut self.gen);
            self.core
                .send_rtcp_reports(now, |_, sink, dest, pkt| gen.send(io, sink, dest, pkt));
            // Players get the free send buffers; what does not fit goes next iteration.
            let budget = gen.free.len();
            self.core.poll_players(now, budget, |_, sink, dest, pkt| {
                gen.send(io, sink, dest, pkt)
            });
            let budget = gen.free.len();
            self.core.poll_delayed(now, budget, |_, sink, dest, pkt| {
                gen.send(io, sink, dest, pkt)
            });
            self.core
                .poll_ice(now, |_, sink, dest, pkt| gen.send(io, sink, dest, pkt));
            self.core
                .poll_playouts(now, |_, sink, dest, pkt| gen.send(io, sink, dest, pkt));
            self.bufs.publish();
            if self.core.awaiting_settle() && self.io.settled() {
                self.core.settle();
            }
            timer = self.core.handle_timers();
            self.core.counters.count_busy(woke);
        }
        self.quiesce();
    }

    fn dispatch(&mut self, cqe: &cqueue::Entry, now: Now) {
        let data = cqe.user_data();
        let res = cqe.result();
        let flags = cqe.flags();
        match data & TAG_MASK {
            TAG_RECV => self.on_recv((data & !TAG_MASK) as usize, res, flags, now),
            TAG_SEND => {
                self.io.sends -= 1;
                let bid = (data & 0xffff) as u16;
                if res >= 0 {
                    if data & SEND_REPLY == 0 {
                        self.core.counters.count_relayed(1);
                    }
                } else {
                    let src = self.send_src[bid as usize] as usize;
                    match self.core.slab.get(src) {
                        Some(Some(e)) => {
                            drop_packet(&self.core.counters, &e.stats, DropReason::SendFailed)
                        }
                        _ => self.core.counters.count_drop(DropReason::SendFailed),
                    }
                }
                self.bufs.push(bid);
            }
            TAG_GEN => {
                // Counted as relayed when queued; only failures are counted here.
                self.io.sends -= 1;
                if res < 0 {
                    self.core.counters.count_drop(DropReason::SendFailed);
                }
                self.gen.free.push((data & 0xffff) as u16);
            }
            TAG_WAKE if !cqueue::more(flags) => {
                self.io.arm_wake(self.wake.fd());
            }
            _ => {}
        }
    }

    fn on_recv(&mut self, idx: usize, res: i32, flags: u32, now: Now) {
        let more = cqueue::more(flags);
        if !more {
            self.io.recvs -= 1;
        }
        let bid = cqueue::buffer_select(flags);
        if bid.is_some() {
            self.bufs.held += 1;
        }
        match self.io.slots.get_mut(idx) {
            Some(SlotState::Armed) if !more => {
                self.io.slots[idx] = SlotState::Idle;
                self.io.rearm.push(idx);
            }
            Some(SlotState::Draining(_)) => {
                if !more {
                    // Last completion: now the socket may close and the slot be reused.
                    self.io.slots[idx] = SlotState::Free;
                    self.io.draining -= 1;
                    self.core.free_slot(idx);
                }
                if let Some(bid) = bid {
                    self.bufs.push(bid);
                }
                return;
            }
            _ => {}
        }
        let Some(bid) = bid else { return };
        if res <= 0 {
            self.bufs.push(bid);
            return;
        }
        let len = (res as usize).min(RECV_LEN);
        let base = self.bufs.buf(bid);
        // SAFETY: the kernel wrote `len` bytes into buffer `bid`, which we own until it is
        // pushed back to the ring.
        let buf = unsafe { std::slice::from_raw_parts(base, len) };
        let Ok(out) = RecvMsgOut::parse(buf, &self.io.msghdr) else {
            self.bufs.push(bid);
            return;
        };
        let src = sys::read_sockaddr_bytes(out.name_data());
        let truncated = out.is_payload_truncated();
        let payload = out.payload_data();
        let (pkt_off, pkt_len) = (payload.as_ptr() as usize - base as usize, payload.len());
        // SAFETY: the payload and the buffer's tail after it (up to BUF_SIZE) belong to
        // buffer `bid`, which we own; the shared view above is not used past this point.
        let pkt = unsafe { std::slice::from_raw_parts_mut(base.add(pkt_off), BUF_SIZE - pkt_off) };
        let mut tx = RecvTx {
            io: &mut self.io,
            gen: &mut self.gen,
            bufs: &self.bufs,
            send_src: &mut self.send_src,
            bid,
            pkt: pkt.as_ptr(),
        };
        if !self
            .core
            .dispatch(idx, pkt, pkt_len, src, truncated, now, &mut tx)
        {
            self.bufs.push(bid);
        }
    }

    /// Stop every receive and wait (bounded) for all operations, so that no kernel work
    /// touches the buffers after they are unmapped. If the kernel does not finish in time
    /// the buffers are leaked rather than freed under it.
    fn quiesce(mut self) {
        for idx in 0..self.io.slots.len() {
            if matches!(self.io.slots[idx], SlotState::Armed) {
                let e = opcode::AsyncCancel::new(TAG_RECV | idx as u64)
                    .build()
                    .user_data(TAG_CANCEL);
                self.io.push(&e);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let ts = io_uring::types::Timespec::from(Duration::from_millis(10));
        while (self.io.sends > 0 || self.io.recvs > 0) && Instant::now() < deadline {
            let args = io_uring::types::SubmitArgs::new().timespec(&ts);
            let _ = self.io.ring.submitter().submit_with_args(1, &args);
            let cqes: Vec<cqueue::Entry> = self.io.ring.completion().collect();
            for cqe in cqes {
                match cqe.user_data() & TAG_MASK {
                    TAG_SEND | TAG_GEN => self.io.sends -= 1,
                    TAG_RECV if !cqueue::more(cqe.flags()) => self.io.recvs -= 1,
                    _ => {}
                }
            }
        }
        // Drop the table's references now: the ring itself is torn down asynchronously,
        // and the sockets must be closed when the worker has stopped.
        let _ = self.io.ring.submitter().unregister_files();
        if self.io.sends > 0 || self.io.recvs > 0 {
            warn!("media worker: io_uring operations still in flight at shutdown; buffers leaked");
            std::mem::forget(self.bufs);
        }
    }
}
