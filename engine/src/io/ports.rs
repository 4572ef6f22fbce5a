//! Media port allocation (rtpengine's `port_pool`): RTP/RTCP pairs on even/odd ports of the
//! configured range, per local address, with every port in use tracked so an exhausted
//! range is detected without binding anything.
//!
//! Allocation runs on the control path and holds the pool lock while binding, so two offers
//! never race for the same pair; the packet path never touches the pool. A [`BoundPort`]
//! gives its port back when dropped, after its socket is closed, so a port is reusable
//! exactly when nothing can receive on it any more.

use crate::sync::lock;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use super::sys;
use crate::core::plan::{PortError, PortKey};

pub(crate) use crate::core::stream::Role;

/// Ports 0..=65535 as a bitmap: 1024 words of 64 bits.
const BITMAP_WORDS: usize = 65536 / 64;

/// Even RTP ports in `[min, max]` that have their RTCP port in range too; `None` if none.
pub(crate) fn rtp_port_range(port_min: u16, port_max: u16) -> Option<(u16, u16)> {
    // Port 0 means "any port" to bind(), so the lowest usable pair is 2/3.
    let first = port_min.max(2).checked_add(port_min.max(2) & 1)?;
    let last_rtcp = if port_max & 1 == 1 {
        port_max
    } else {
        port_max.checked_sub(1)?
    };
    let last = last_rtcp.checked_sub(1)?;
    (first <= last).then_some((first, last))
}

/// How long after start-up binding a given port waits for it to come free: the sockets of a
/// predecessor killed just before (restart recovery) can stay bound for a few tens of
/// milliseconds after it exited (io_uring releases its registered files asynchronously).
const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct PortPool {
    first_rtp: u16,
    last_rtp: u16,
    buffer_bytes: usize,
    used: Mutex<HashMap<IpAddr, Box<[u64; BITMAP_WORDS]>>>,
    /// Until then [`PortPool::allocate_at`] waits for ports held by someone else.
    grace_until: Instant,
}

impl PortPool {
    pub(super) fn new(port_min: u16, port_max: u16, buffer_bytes: usize) -> io::Result<PortPool> {
        let (first_rtp, last_rtp) = rtp_port_range(port_min, port_max).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("media port range {port_min}-{port_max} holds no even/odd RTP/RTCP pair"),
            )
        })?;
        Ok(PortPool {
            first_rtp,
            last_rtp,
            buffer_bytes,
            used: Mutex::new(HashMap::new()),
            grace_until: Instant::now() + TAKEOVER_GRACE,
        })
    }

    /// Ports in the range usable for pairs (the most sockets one address can hold).
    pub(super) fn capacity(&self) -> usize {
        (self.last_rtp - self.first_rtp) as usize + 2
    }

    /// Bind an RTP/RTCP pair on `ip`, starting at a random even port and walking up with
    /// wrap-around. Ports held by other processes are skipped.
    pub(super) fn allocate(&self, ip: IpAddr) -> Result<[(OwnedFd, SocketAddr); 2], PortError> {
        let pairs = (self.last_rtp - self.first_rtp) as usize / 2 + 1;
        let start = rand::thread_rng().gen_range(0..pairs);
        let mut used = lock(&self.used);
        let bits = used
            .entry(ip)
            .or_insert_with(|| Box::new([0; BITMAP_WORDS]));
        for i in 0..pairs {
            let rtp = self.first_rtp + 2 * ((start + i) % pairs) as u16;
            if is_set(bits, rtp) || is_set(bits, rtp + 1) {
                continue;
            }
            let Some(rtp_fd) = self.bind(ip, rtp)? else {
                continue;
            };
            let Some(rtcp_fd) = self.bind(ip, rtp + 1)? else {
                continue;
            };
            set(bits, rtp, true);
            set(bits, rtp + 1, true);
            return Ok([
                (rtp_fd, SocketAddr::new(ip, rtp)),
                (rtcp_fd, SocketAddr::new(ip, rtp + 1)),
            ]);
        }
        Err(PortError::Exhausted)
    }

    /// Bind the pair `rtp`/`rtp + 1` on `ip`: a stored call taken over on the ports its
    /// parties know. The pair must lie in the range and be free.
    pub(super) fn allocate_at(
        &self,
        ip: IpAddr,
        rtp: u16,
    ) -> Result<[(OwnedFd, SocketAddr); 2], PortError> {
        if !rtp.is_multiple_of(2) || rtp < self.first_rtp || rtp > self.last_rtp {
            return Err(PortError::Bind {
                addr: ip,
                reason: format!(
                    "port {rtp} is not an RTP port of the range {}-{}",
                    self.first_rtp,
                    self.last_rtp + 1
                ),
            });
        }
        let in_use = || PortError::Bind {
            addr: ip,
            reason: format!("port {rtp} or {} is in use", rtp + 1),
        };
        let mut used = lock(&self.used);
        let bits = used
            .entry(ip)
            .or_insert_with(|| Box::new([0; BITMAP_WORDS]));
        if is_set(bits, rtp) || is_set(bits, rtp + 1) {
            return Err(in_use());
        }
        let rtp_fd = self.bind_waiting(ip, rtp)?.ok_or_else(in_use)?;
        let rtcp_fd = self.bind_waiting(ip, rtp + 1)?.ok_or_else(in_use)?;
        set(bits, rtp, true);
        set(bits, rtp + 1, true);
        Ok([
            (rtp_fd, SocketAddr::new(ip, rtp)),
            (rtcp_fd, SocketAddr::new(ip, rtp + 1)),
        ])
    }

    /// [`PortPool::bind`], retrying a port taken by someone else during the start-up grace
    /// period (a killed predecessor's socket about to be released).
    fn bind_waiting(&self, ip: IpAddr, port: u16) -> Result<Option<OwnedFd>, PortError> {
        loop {
            match self.bind(ip, port)? {
                Some(fd) => return Ok(Some(fd)),
                None if Instant::now() < self.grace_until => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                None => return Ok(None),
            }
        }
    }

    /// `Ok(None)` when the port is taken by someone else.
    fn bind(&self, ip: IpAddr, port: u16) -> Result<Option<OwnedFd>, PortError> {
        match sys::bind_udp(SocketAddr::new(ip, port), self.buffer_bytes) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
            Err(e) => Err(PortError::Bind {
                addr: ip,
                reason: e.to_string(),
            }),
        }
    }

    fn release(&self, addr: SocketAddr) {
        let mut used = lock(&self.used);
        if let Some(bits) = used.get_mut(&addr.ip()) {
            set(bits, addr.port(), false);
        }
    }

    /// Ports currently held on `ip`.
    #[cfg(test)]
    pub(super) fn in_use(&self, ip: IpAddr) -> usize {
        let used = lock(&self.used);
        used.get(&ip)
            .map_or(0, |b| b.iter().map(|w| w.count_ones() as usize).sum())
    }
}

fn is_set(bits: &[u64; BITMAP_WORDS], port: u16) -> bool {
    bits[port as usize / 64] & (1 << (port % 64)) != 0
}

fn set(bits: &mut [u64; BITMAP_WORDS], port: u16, on: bool) {
    let w = &mut bits[port as usize / 64];
    if on {
        *w |= 1 << (port % 64);
    } else {
        *w &= !(1 << (port % 64));
    }
}

/// One bound media socket (rtpengine's `stream_fd`). Dropping it closes the socket and then
/// returns the port to the pool.
#[derive(Debug)]
pub(crate) struct BoundPort {
    pub key: PortKey,
    pub addr: SocketAddr,
    pub role: Role,
    fd: Option<OwnedFd>,
    pool: Arc<PortPool>,
}

impl BoundPort {
    pub(super) fn new(
        key: PortKey,
        addr: SocketAddr,
        role: Role,
        fd: OwnedFd,
        pool: Arc<PortPool>,
    ) -> Self {
        BoundPort {
            key,
            addr,
            role,
            fd: Some(fd),
            pool,
        }
    }

    #[inline]
    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }
}

impl Drop for BoundPort {
    fn drop(&mut self) {
        drop(self.fd.take());
        self.pool.release(self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_math() {
        assert_eq!(rtp_port_range(30000, 40000), Some((30000, 39998)));
        assert_eq!(rtp_port_range(30001, 40001), Some((30002, 40000)));
        assert_eq!(rtp_port_range(30000, 30001), Some((30000, 30000)));
        assert_eq!(rtp_port_range(30000, 30000), None);
        assert_eq!(rtp_port_range(30001, 30002), None);
        assert_eq!(rtp_port_range(40000, 30000), None);
        assert_eq!(rtp_port_range(0, 3), Some((2, 2)));
        assert_eq!(rtp_port_range(65534, 65535), Some((65534, 65534)));
        assert_eq!(rtp_port_range(65535, 65535), None);
    }

    /// The first block of `len` ports from `from` up, below the kernel's ephemeral range
    /// (where any process's outgoing sockets may sit), that nothing on loopback holds now.
    /// Each test starts from its own `from`, so tests running at once take different blocks.
    fn free_block(from: u16, len: u16) -> u16 {
        (from..32_000)
            .step_by(usize::from(len))
            .find(|&base| {
                (base..base + len).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
            })
            .expect("a free block of loopback ports for the test")
    }

    #[test]
    fn allocates_pairs_until_exhausted_and_reuses_released() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = free_block(30_000, 4);
        let pool = Arc::new(PortPool::new(base, base + 3, 1 << 16).unwrap());
        let a = pool.allocate(ip).unwrap();
        let b = pool.allocate(ip).unwrap();
        for [(_, rtp), (_, rtcp)] in [&a, &b] {
            assert_eq!(rtp.port() % 2, 0);
            assert_eq!(rtcp.port(), rtp.port() + 1);
        }
        assert_ne!(a[0].1, b[0].1);
        assert_eq!(pool.in_use(ip), 4);
        assert_eq!(pool.allocate(ip).unwrap_err(), PortError::Exhausted);
        let freed = a[0].1.port();
        let ports: Vec<BoundPort> = a
            .into_iter()
            .enumerate()
            .map(|(i, (fd, addr))| {
                BoundPort::new(PortKey(i as u64), addr, Role::Rtp, fd, pool.clone())
            })
            .collect();
        drop(ports);
        assert_eq!(pool.in_use(ip), 2);
        let c = pool.allocate(ip).unwrap();
        assert_eq!(c[0].1.port(), freed);
    }

    #[test]
    fn allocates_a_given_pair_once() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = free_block(30_500, 8);
        let pool = PortPool::new(base, base + 7, 1 << 16).unwrap();
        let [(_, rtp), (_, rtcp)] = pool.allocate_at(ip, base + 2).unwrap();
        assert_eq!((rtp.port(), rtcp.port()), (base + 2, base + 3));
        assert_eq!(pool.in_use(ip), 2);
        assert!(matches!(
            pool.allocate_at(ip, base + 2),
            Err(PortError::Bind { .. })
        ));
        // Odd, or outside the range.
        assert!(matches!(
            pool.allocate_at(ip, base + 1),
            Err(PortError::Bind { .. })
        ));
        assert!(matches!(
            pool.allocate_at(ip, base + 8),
            Err(PortError::Bind { .. })
        ));
        // Random allocation never hands out the taken pair.
        for _ in 0..3 {
            let [(_, r), _] = pool.allocate(ip).unwrap();
            assert_ne!(r.port(), base + 2);
        }
        assert_eq!(pool.allocate(ip).unwrap_err(), PortError::Exhausted);
    }

    #[test]
    fn a_given_pair_held_briefly_by_someone_else_is_waited_for() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = free_block(31_000, 4);
        let pool = PortPool::new(base, base + 3, 1 << 16).unwrap();
        let squatter = std::net::UdpSocket::bind(("127.0.0.1", base)).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(squatter);
        });
        let [(_, rtp), _] = pool.allocate_at(ip, base).unwrap();
        assert_eq!(rtp.port(), base);
        release.join().unwrap();
        // Past the grace period a held port fails at once.
        let pool = PortPool {
            grace_until: Instant::now(),
            ..PortPool::new(base, base + 3, 1 << 16).unwrap()
        };
        let _held = std::net::UdpSocket::bind(("127.0.0.1", base + 2)).unwrap();
        assert!(matches!(
            pool.allocate_at(ip, base + 2),
            Err(PortError::Bind { .. })
        ));
    }

    #[test]
    fn foreign_address_is_a_bind_error() {
        let pool = PortPool::new(31_500, 31_503, 1 << 16).unwrap();
        // TEST-NET-3 is not configured on this host.
        let err = pool.allocate("203.0.113.1".parse().unwrap()).unwrap_err();
        assert!(matches!(err, PortError::Bind { .. }), "{err:?}");
    }
}
