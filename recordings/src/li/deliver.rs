//! Delivery links: one per task (and one for `start forwarding`), each a thread with a bounded
//! queue of encoded PDUs. The consumer of the interception queue only ever appends to a
//! queue without waiting; when a link falls behind (collector slow or gone) new PDUs are
//! dropped and counted for the task. Nothing here can slow the media path.
//!
//! X3 over TCP (optionally TLS): connect, send PDUs in order, a keep-alive PDU after
//! [`LinkConfig::keepalive`] without traffic (acknowledgements are read and discarded),
//! reconnect with exponential backoff. Raw mode sends each RTP packet as one UDP datagram.

use ngmedia_engine::sync::{lock, wait_timeout};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::x3::{self, Direction, Xid};

/// PDUs waiting per link: ~20 s of one intercepted call (both directions, 20 ms packets).
pub(super) const LINK_QUEUE: usize = 2048;
/// PDUs written per wake-up.
const BATCH: usize = 64;
/// Kernel send buffer asked for on X3 connections: keeps what sits in the kernel for a stalled
/// collector small, so the bounded queue above is what decides drops.
const SEND_BUFFER: libc::c_int = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a link delivers.
#[derive(Clone)]
pub enum LinkKind {
    X3 {
        address: SocketAddr,
        /// `Some`: TLS with this client configuration.
        tls: Option<Arc<rustls::ClientConfig>>,
    },
    Udp {
        address: SocketAddr,
    },
}

#[derive(Clone)]
pub struct LinkConfig {
    pub kind: LinkKind,
    /// Idle time after which an X3 link sends a keep-alive.
    pub keepalive: Duration,
    /// Queue bound in PDUs.
    pub queue: usize,
}

/// Counters of one link, shown on the LI API only.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub connected: AtomicBool,
    pub keepalives: AtomicU64,
    pub connects: AtomicU64,
}

struct Shared {
    queue: Mutex<VecDeque<Vec<u8>>>,
    free: Mutex<Vec<Vec<u8>>>,
    ready: Condvar,
    stop: AtomicBool,
    /// The current TCP connection, so `stop` can break a blocked write.
    socket: Mutex<Option<TcpStream>>,
    stats: LinkStats,
    seq: AtomicU32,
    bound: usize,
}

/// A delivery link and its thread; stopped when dropped.
pub struct Link {
    shared: Arc<Shared>,
}

impl Link {
    pub fn start(config: LinkConfig) -> io::Result<Link> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::with_capacity(64)),
            free: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            socket: Mutex::new(None),
            stats: LinkStats::default(),
            seq: AtomicU32::new(0),
            bound: config.queue.max(1),
        });
        let s = shared.clone();
        thread::Builder::new()
            .name("ngmedia-li-link".into())
            .spawn(move || match config.kind {
                LinkKind::X3 { address, tls } => run_x3(&s, address, tls, config.keepalive),
                LinkKind::Udp { address } => run_udp(&s, address),
            })?;
        Ok(Link { shared })
    }

    pub fn stats(&self) -> &LinkStats {
        &self.shared.stats
    }

    /// Queue one X3 PDU for `rtp`; false (counted) when the queue is full.
    pub fn push_x3(
        &self,
        xid: &Xid,
        correlation: u64,
        dir: Direction,
        unix_ns: u64,
        rtp: &[u8],
    ) -> bool {
        self.push(|buf| {
            let seq = self.shared.seq.fetch_add(1, Relaxed);
            x3::encode_x3(buf, xid, correlation, dir, seq, unix_ns, rtp);
        })
    }

    /// Queue one raw RTP packet; false (counted) when the queue is full.
    pub fn push_raw(&self, rtp: &[u8]) -> bool {
        self.push(|buf| buf.extend_from_slice(rtp))
    }

    fn push(&self, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        let s = &self.shared;
        if s.stop.load(Relaxed) {
            return false;
        }
        // Buffers come back from the link thread, so steady state does not allocate.
        let mut buf = lock(&s.free).pop().unwrap_or_default();
        let mut q = lock(&s.queue);
        if q.len() >= s.bound {
            drop(q);
            s.stats.dropped.fetch_add(1, Relaxed);
            lock(&s.free).push(buf);
            return false;
        }
        buf.clear();
        fill(&mut buf);
        q.push_back(buf);
        drop(q);
        s.ready.notify_one();
        true
    }

    /// Stop delivering at once: queued PDUs are discarded, a blocked write is broken off.
    pub fn stop(&self) {
        let s = &self.shared;
        s.stop.store(true, Relaxed);
        if let Some(sock) = lock(&s.socket).as_ref() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        lock(&s.queue).clear();
        s.ready.notify_all();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait up to `limit` for PDUs (or stop); take at most [`BATCH`].
fn next_batch(s: &Shared, limit: Duration, out: &mut Vec<Vec<u8>>) {
    let deadline = Instant::now() + limit;
    let mut q = lock(&s.queue);
    while q.is_empty() && !s.stop.load(Relaxed) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        q = wait_timeout(&s.ready, q, left).0;
    }
    let n = q.len().min(BATCH);
    out.extend(q.drain(..n));
}

fn recycle(s: &Shared, batch: &mut Vec<Vec<u8>>) {
    let mut free = lock(&s.free);
    for buf in batch.drain(..) {
        if free.len() < s.bound {
            free.push(buf);
        }
    }
}

/// Sleep up to `d`, waking early on stop.
fn pause(s: &Shared, d: Duration) {
    let q = lock(&s.queue);
    if !s.stop.load(Relaxed) {
        let _ = s.ready.wait_timeout(q, d);
    }
}

fn run_udp(s: &Shared, address: SocketAddr) {
    let bind: SocketAddr = if address.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = loop {
        match UdpSocket::bind(bind) {
            Ok(sock) => break sock,
            Err(_) if !s.stop.load(Relaxed) => pause(s, BACKOFF_MAX),
            Err(_) => return,
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    while !s.stop.load(Relaxed) {
        next_batch(s, Duration::from_secs(1), &mut batch);
        for pkt in &batch {
            match sock.send_to(pkt, address) {
                Ok(_) => s.stats.delivered.fetch_add(1, Relaxed),
                Err(_) => s.stats.dropped.fetch_add(1, Relaxed),
            };
        }
        recycle(s, &mut batch);
    }
}

/// A connected X3 stream: plain TCP or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(t) => t.write_all(b),
            Conn::Tls(t) => t.write_all(b).and_then(|()| t.flush()),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::Tls(t) => &t.sock,
        }
    }

    /// Discard whatever the collector sent (keep-alive acknowledgements). Err when it closed.
    fn drain(&mut self) -> io::Result<()> {
        self.tcp()
            .set_read_timeout(Some(Duration::from_millis(1)))?;
        let mut scratch = [0u8; 512];
        for _ in 0..16 {
            let r = match self {
                Conn::Plain(t) => t.read(&mut scratch),
                Conn::Tls(t) => t.read(&mut scratch),
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        self.tcp().set_read_timeout(None)
    }
}

fn connect(address: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Conn> {
    let tcp = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
    tcp.set_nodelay(true)?;
    // SAFETY: setsockopt on a socket we own with a pointer to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&SEND_BUFFER as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let Some(config) = tls else {
        return Ok(Conn::Plain(tcp));
    };
    let name = ServerName::IpAddress(address.ip().into());
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now (bounded), so a collector with a bad certificate counts as a
    // failed connect rather than a failed write.
    stream.sock.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.sock.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    stream.sock.set_read_timeout(None)?;
    stream.sock.set_write_timeout(None)?;
    Ok(Conn::Tls(Box::new(stream)))
}

fn run_x3(
    s: &Shared,
    address: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    keepalive: Duration,
) {
    let mut backoff = BACKOFF_MIN;
    let mut batch = Vec::with_capacity(BATCH);
    let mut ka = Vec::with_capacity(64);
    let mut ka_seq = 0u32;
    while !s.stop.load(Relaxed) {
        let mut conn = match connect(address, tls.as_ref()) {
            Ok(c) => c,
            Err(_) => {
                pause(s, backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if let Ok(clone) = conn.tcp().try_clone() {
            *lock(&s.socket) = Some(clone);
        }
        if s.stop.load(Relaxed) {
            break;
        }
        s.stats.connects.fetch_add(1, Relaxed);
        s.stats.connected.store(true, Relaxed);
        backoff = BACKOFF_MIN;
        let mut idle_since = Instant::now();
        loop {
            let wait = keepalive.saturating_sub(idle_since.elapsed());
            next_batch(s, wait, &mut batch);
            if s.stop.load(Relaxed) {
                break;
            }
            let result = if batch.is_empty() {
                ka.clear();
                x3::encode_keepalive(&mut ka, ka_seq);
                ka_seq = ka_seq.wrapping_add(1);
                s.stats.keepalives.fetch_add(1, Relaxed);
                conn.write_all(&ka).and_then(|()| conn.drain())
            } else {
                let mut r = Ok(());
                let mut sent = 0;
                for pdu in &batch {
                    r = conn.write_all(pdu);
                    if r.is_err() {
                        break;
                    }
                    sent += 1;
                }
                s.stats.delivered.fetch_add(sent, Relaxed);
                // PDUs taken off the queue but not written are lost with the connection.
                s.stats
                    .dropped
                    .fetch_add(batch.len() as u64 - sent, Relaxed);
                recycle(s, &mut batch);
                r
            };
            idle_since = Instant::now();
            if result.is_err() {
                break;
            }
        }
        s.stats.connected.store(false, Relaxed);
        *lock(&s.socket) = None;
        let _ = conn.tcp().shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn read_pdu(stream: &mut TcpStream) -> Vec<u8> {
        let mut head = [0u8; x3::FIXED_HEADER];
        stream.read_exact(&mut head).unwrap();
        let hl = u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize;
        let pl = u32::from_be_bytes(head[8..12].try_into().unwrap()) as usize;
        let mut rest = vec![0u8; hl + pl - x3::FIXED_HEADER];
        stream.read_exact(&mut rest).unwrap();
        [&head[..], &rest].concat()
    }

    #[test]
    fn x3_link_delivers_keeps_alive_and_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let link = Link::start(LinkConfig {
            kind: LinkKind::X3 {
                address: listener.local_addr().unwrap(),
                tls: None,
            },
            keepalive: Duration::from_millis(100),
            queue: 16,
        })
        .unwrap();
        let xid = Xid([7; 16]);
        assert!(link.push_x3(&xid, 5, Direction::ToTarget, 1_000_000_000, &[0x80, 1, 2]));
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let pdu = read_pdu(&mut c);
        let (p, _) = x3::decode(&pdu).unwrap();
        assert_eq!((p.kind, p.direction, p.correlation), (2, 2, 5));
        assert_eq!(p.payload, &[0x80, 1, 2]);
        // Idle: a keep-alive follows.
        let ka = read_pdu(&mut c);
        assert_eq!(x3::decode(&ka).unwrap().0.kind, 3);
        // The collector goes away; the link reconnects and goes on with the next sequence.
        drop(c);
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(link.push_x3(&xid, 5, Direction::FromTarget, 0, &[0x80]));
        let mut pdu = read_pdu(&mut c);
        while x3::decode(&pdu).unwrap().0.kind == 3 {
            pdu = read_pdu(&mut c);
        }
        let (p, _) = x3::decode(&pdu).unwrap();
        assert_eq!(p.direction, 3);
        assert_eq!(p.attributes[0], (x3::ATTR_SEQUENCE, &[0u8, 0, 0, 1][..]));
        assert!(link.stats().connects.load(Relaxed) >= 2);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        // Nobody listens at this address: everything stays queued.
        let link = Link::start(LinkConfig {
            kind: LinkKind::X3 {
                address: "127.0.0.1:9".parse().unwrap(),
                tls: None,
            },
            keepalive: Duration::from_secs(10),
            queue: 3,
        })
        .unwrap();
        let xid = Xid([0; 16]);
        let pushed = (0..5)
            .filter(|_| link.push_x3(&xid, 0, Direction::ToTarget, 0, &[0x80]))
            .count();
        assert_eq!(pushed, 3);
        assert_eq!(link.stats().dropped.load(Relaxed), 2);
        link.stop();
        assert!(!link.push_raw(&[0x80]));
    }

    #[test]
    fn udp_link_sends_raw_packets() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let link = Link::start(LinkConfig {
            kind: LinkKind::Udp {
                address: rx.local_addr().unwrap(),
            },
            keepalive: Duration::from_secs(1),
            queue: 8,
        })
        .unwrap();
        assert!(link.push_raw(&[0x80, 0, 0, 9]));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x80, 0, 0, 9]);
    }
}
