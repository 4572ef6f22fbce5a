//! The epoll backend (the fallback when io_uring is unavailable): a level-triggered epoll
//! loop over the worker's sockets, receiving with `recvmmsg` and forwarding with `sendmmsg`.
//!
//! Per wake-up the worker first applies queued commands (so a plan applied before a packet
//! was sent governs that packet), then reads the clocks once and drains each readable socket
//! for at most [`MAX_BATCHES_PER_WAKE`] batches.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::sys::{self, Epoll, EventFd};
use super::worker::{Core, Entry, Now, Transmit, Watch, SRTP_TAIL_ROOM};
use crate::core::stats::DropReason;
use crate::core::stream::drop_many;

/// Packets per recvmmsg/sendmmsg call: 32 amortises the syscall well (rtpengine and quinn
/// use similar batch sizes) while the buffers stay in L2 (64 KiB).
pub(crate) const BATCH: usize = 32;
/// Buffer per packet. Media datagrams stay below the 1500-byte MTU; the kernel may fill all
/// but the last [`SRTP_TAIL_ROOM`] bytes (room for the SRTP tag), anything larger is
/// truncated and dropped as malformed.
pub(crate) const BUF_SIZE: usize = 2048;
/// Bytes the kernel may write per datagram.
const RECV_LEN: usize = BUF_SIZE - SRTP_TAIL_ROOM;
/// Batches read from one socket per wake-up, so one flooded socket cannot starve the others
/// (level-triggered epoll reports it again on the next wait).
pub(crate) const MAX_BATCHES_PER_WAKE: usize = 4;
/// epoll events fetched per wait.
const EVENTS: usize = 64;
/// epoll token of the worker's eventfd; sockets use their slab index.
const WAKE_TOKEN: u64 = u64::MAX;

/// Receive and send buffers with their mmsghdr/iovec arrays, allocated once per worker.
/// The headers point into the boxed slices, whose heap storage never moves.
struct Batch {
    bufs: Box<[u8]>,
    recv_addrs: Box<[libc::sockaddr_storage]>,
    recv_iov: Box<[libc::iovec]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    send_iov: Box<[libc::iovec]>,
    send_hdrs: Box<[libc::mmsghdr]>,
    dest: Box<libc::sockaddr_storage>,
    /// Where each received packet goes once the batch is handled (see [`BatchTx`]).
    pending: Pending,
    /// Receive headers the kernel wrote into by the last `recv` (only those need resetting;
    /// most calls return one packet).
    dirty: usize,
}

// SAFETY: the raw pointers in the headers only point into the Batch's own boxes; the Batch
// is created on and used by a single worker thread at a time.
unsafe impl Send for Batch {}

impl Batch {
    fn new() -> Batch {
        // SAFETY (all zeroed() below): iovec, mmsghdr and sockaddr_storage are plain C data
        // for which all-zero (null pointers, zero lengths) is a valid value.
        let zero_iov: libc::iovec = unsafe { zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        let mut b = Batch {
            bufs: vec![0u8; BATCH * BUF_SIZE].into_boxed_slice(),
            recv_addrs: vec![sys::empty_sockaddr(); BATCH].into_boxed_slice(),
            recv_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            recv_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            send_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            send_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            dest: Box::new(sys::empty_sockaddr()),
            pending: Pending {
                out: [None; BATCH],
                lens: [0; BATCH],
            },
            dirty: 0,
        };
        for i in 0..BATCH {
            b.recv_iov[i] = libc::iovec {
                iov_base: b.bufs[i * BUF_SIZE..].as_mut_ptr().cast(),
                iov_len: RECV_LEN,
            };
            let h = &mut b.recv_hdrs[i].msg_hdr;
            h.msg_name = (&mut b.recv_addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut b.recv_iov[i];
            h.msg_iovlen = 1;
            let s = &mut b.send_hdrs[i].msg_hdr;
            s.msg_name = (&mut *b.dest as *mut libc::sockaddr_storage).cast();
            s.msg_iov = &mut b.send_iov[i];
            s.msg_iovlen = 1;
        }
        b
    }

    /// Receive up to BATCH datagrams; `Ok(0)` when the socket is drained.
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        for h in self.recv_hdrs[..self.dirty].iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: the headers point at BATCH live buffers/addresses owned by `self`, set up
        // in `new()`; the kernel writes at most iov_len/msg_namelen bytes into each.
        let r = unsafe { sys::recvmmsg_raw(fd, self.recv_hdrs.as_mut_ptr(), BATCH) };
        // Headers past a short count are untouched; on error none are.
        self.dirty = r.max(0) as usize;
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize)
    }

    /// Send every pending packet of the first `n` that goes to `out` (a relay, not a reply)
    /// with one `sendmmsg`, and mark them sent. Returns (sent, failed).
    fn send(&mut self, n: usize, out: Out) -> (u64, u64) {
        let namelen = sys::write_sockaddr(&out.dest, &mut self.dest);
        let fd = out.fd;
        let mut m = 0;
        for k in 0..n {
            if self.pending.out[k] != Some(out) {
                continue;
            }
            self.pending.out[k] = None;
            self.send_iov[m] = libc::iovec {
                iov_base: self.bufs[k * BUF_SIZE..].as_mut_ptr().cast(),
                iov_len: self.pending.lens[k],
            };
            self.send_hdrs[m].msg_hdr.msg_namelen = namelen;
            m += 1;
        }
        let (mut off, mut sent, mut failed) = (0, 0u64, 0u64);
        // Each pass either sends something or skips a packet, so at most m + a few passes.
        let mut passes = 0;
        while off < m && passes <= m + 4 {
            passes += 1;
            // SAFETY: send_hdrs[off..m] point at `dest` and iovecs describing initialised
            // bytes of `bufs`, all owned by `self` and alive for the call.
            let r = unsafe { sys::sendmmsg_raw(fd, self.send_hdrs[off..].as_mut_ptr(), m - off) };
            if r > 0 {
                sent += r as u64;
                off += r as usize;
                continue;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    // Send buffer full: the rest would fail the same way.
                    failed += (m - off) as u64;
                    off = m;
                }
                _ => {
                    // Refused/unreachable is about the first packet; carry on with the rest.
                    failed += 1;
                    off += 1;
                }
            }
        }
        failed += (m - off) as u64;
        (sent, failed)
    }
}

/// A relayed packet's way out: the socket and the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Out {
    fd: RawFd,
    dest: SocketAddr,
    /// A reply (STUN response) out of the receiving socket: sent on its own, not counted
    /// as relayed.
    reply: bool,
}

/// What the batch's verdicts left to send: packet `k` goes to `out[k]` with `lens[k]` bytes.
struct Pending {
    out: [Option<Out>; BATCH],
    lens: [usize; BATCH],
}

/// [`Transmit`] for packet `k` of a batch: relayed packets wait in the batch for one
/// `sendmmsg` per destination after the whole batch is handled; packets the pipeline made
/// (copies, transcoder output) leave at once with `sendto`.
struct BatchTx<'a> {
    pending: &'a mut Pending,
    k: usize,
}

impl Transmit for BatchTx<'_> {
    fn send_received(
        &mut self,
        source: usize,
        via: usize,
        fd: RawFd,
        dest: SocketAddr,
        len: usize,
    ) {
        self.pending.out[self.k] = Some(Out {
            fd,
            dest,
            reply: source == via,
        });
        self.pending.lens[self.k] = len;
    }

    fn send_made(&mut self, fd: RawFd, _slot: usize, dest: SocketAddr, bytes: &[u8]) -> bool {
        sys::send_to(fd, bytes, &dest)
    }
}

/// [`Watch`] for epoll: sockets are registered level-triggered under their slot index.
struct EpollWatch(Epoll);

impl Watch for EpollWatch {
    fn watch(&mut self, idx: usize, fd: RawFd) -> io::Result<()> {
        self.0.add(fd, idx as u64)
    }

    fn unwatch(&mut self, _idx: usize, entry: Entry) -> Option<Entry> {
        let _ = self.0.delete(entry.port.raw_fd());
        Some(entry)
    }
}

pub(crate) struct EpollWorker {
    core: Core,
    ep: EpollWatch,
    wake: Arc<EventFd>,
    batch: Batch,
}

impl EpollWorker {
    pub(super) fn new(wake: Arc<EventFd>, core: Core) -> io::Result<EpollWorker> {
        let epoll = Epoll::new()?;
        epoll.add(wake.fd(), WAKE_TOKEN)?;
        Ok(EpollWorker {
            core,
            ep: EpollWatch(epoll),
            wake,
            batch: Batch::new(),
        })
    }

    /// Run until a `Shutdown` command arrives or the control side goes away.
    pub(super) fn run(mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        // DTLS handshake retransmission timer (rare; usually none runs).
        let mut timer: Option<Duration> = None;
        loop {
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
            let wait_ms = wait.map_or(-1, |t| {
                t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            });
            let n = match self.ep.0.wait(&mut events, wait_ms) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "media worker: epoll_wait failed, stopping");
                    return;
                }
            };
            let woke = std::time::Instant::now();
            // Commands first: a plan applied before a packet was sent must govern it.
            if events[..n].iter().any(|ev| ev.u64 == WAKE_TOKEN) {
                self.wake.drain();
                if !self.core.handle_commands(&mut self.ep) {
                    return;
                }
            }
            let now = Now::read();
            for ev in &events[..n] {
                let token = ev.u64;
                if token != WAKE_TOKEN {
                    // A command may have closed this slot (then it is skipped) or reused it
                    // for a new socket (then the read finds nothing or real packets): both
                    // harmless, the read is non-blocking.
                    self.drain_socket(token as usize, now);
                }
            }
            self.core
                .send_rtcp_reports(now, |fd, _, dest, pkt| sys::send_to(fd, pkt, &dest));
            self.core.poll_players(now, usize::MAX, |fd, _, dest, pkt| {
                sys::send_to(fd, pkt, &dest)
            });
            self.core.poll_delayed(now, usize::MAX, |fd, _, dest, pkt| {
                sys::send_to(fd, pkt, &dest)
            });
            self.core
                .poll_ice(now, |fd, _, dest, pkt| sys::send_to(fd, pkt, &dest));
            self.core
                .poll_playouts(now, |fd, _, dest, pkt| sys::send_to(fd, pkt, &dest));
            timer = self.core.handle_timers();
            self.core.counters.count_busy(woke);
        }
    }

    /// Read what the socket has, up to the per-wake-up cap.
    fn drain_socket(&mut self, idx: usize, now: Now) {
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let fd = match self.core.slab.get(idx) {
                Some(Some(e)) => e.port.raw_fd(),
                _ => return,
            };
            let n = match self.batch.recv(fd) {
                Ok(n) => n,
                Err(_) => return,
            };
            if n == 0 {
                return;
            }
            self.handle_batch(idx, n, now);
            if n < BATCH {
                return;
            }
        }
    }

    /// Run each packet of a received batch through the shared dispatch, then send what it
    /// left pending: one `sendmmsg` per destination (a batch from one socket has one or
    /// two: the RTP and the RTCP sink), STUN replies one `sendto` each.
    fn handle_batch(&mut self, idx: usize, n: usize, now: Now) {
        let EpollWorker { core, batch, .. } = self;
        for k in 0..n {
            let hdr = &batch.recv_hdrs[k];
            let len = (hdr.msg_len as usize).min(RECV_LEN);
            let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let src = sys::read_sockaddr(&batch.recv_addrs[k], hdr.msg_hdr.msg_namelen);
            let buf = &mut batch.bufs[k * BUF_SIZE..(k + 1) * BUF_SIZE];
            batch.pending.out[k] = None;
            let mut tx = BatchTx {
                pending: &mut batch.pending,
                k,
            };
            core.dispatch(idx, buf, len, src, truncated, now, &mut tx);
        }
        for k in 0..n {
            let Some(out) = batch.pending.out[k] else {
                continue;
            };
            if out.reply {
                // STUN responses are rare (a few per second per stream): one sendto each.
                let pkt = &batch.bufs[k * BUF_SIZE..k * BUF_SIZE + batch.pending.lens[k]];
                sys::send_to(out.fd, pkt, &out.dest);
                batch.pending.out[k] = None;
                continue;
            }
            let (sent, failed) = batch.send(n, out);
            core.counters.count_relayed(sent);
            if let Some(Some(source)) = core.slab.get(idx) {
                drop_many(
                    &core.counters,
                    &source.stats,
                    DropReason::SendFailed,
                    failed,
                );
            }
        }
    }
}
