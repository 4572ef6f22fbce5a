//! Thin safe wrappers over the Linux calls the media workers use: UDP sockets with explicit
//! options, epoll, eventfd, coarse clocks and `sockaddr` conversion. Every `unsafe` block is
//! a single libc call or a plain-data reinterpretation, with its invariant stated.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Turn a libc return value into `io::Result`, reading errno on -1.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed matches it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Set the TOS byte of what a UDP socket sends: `IP_TOS` on IPv4, the traffic class
/// (`IPV6_TCLASS`) on IPv6. 0 is the kernel's default.
pub(super) fn set_tos(fd: RawFd, ipv6: bool, tos: u8) -> io::Result<()> {
    if ipv6 {
        set_opt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            libc::c_int::from(tos),
        )
    } else {
        set_opt(fd, libc::IPPROTO_IP, libc::IP_TOS, libc::c_int::from(tos))
    }
}

/// Create a non-blocking, close-on-exec UDP socket bound to `addr`. IPv6 sockets are
/// v6-only so an IPv4 interface can use the same port number. Buffer sizes are requests:
/// the kernel caps them at `net.core.{r,w}mem_max`, which is fine.
pub(super) fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if addr.is_ipv6() {
        set_opt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    } else {
        // DF set and the path MTU ignored: with DF the kernel writes IP id 0 (RFC 6864)
        // instead of hashing into the global `ip_idents` table for every datagram
        // (`__ip_select_ident`, ~2% of the relay's CPU), and media datagrams never need
        // fragmenting. Best effort: without it only that saving is lost.
        let _ = set_opt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        );
    }
    let size = buffer_bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // Best effort: a smaller buffer only means earlier drops under bursts.
    let _ = set_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, size);
    let _ = set_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, size);
    let mut storage = empty_sockaddr();
    let len = write_sockaddr(&addr, &mut storage);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the socket's family.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    Ok(fd)
}

/// The local address a socket is bound to.
#[cfg(test)]
pub(super) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = empty_sockaddr();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage`/`len` describe a writable sockaddr_storage.
    cvt(unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    read_sockaddr(&storage, len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

pub(super) fn empty_sockaddr() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid (AF_UNSPEC) value.
    unsafe { zeroed() }
}

/// Decode a kernel-filled socket address; `None` for families other than IPv4/IPv6.
#[inline]
pub(super) fn read_sockaddr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // and alignment-compatible with sockaddr_storage.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Decode a socket address the kernel wrote into a byte buffer (io_uring's name area);
/// `None` for other families or short input.
#[inline]
pub(super) fn read_sockaddr_bytes(name: &[u8]) -> Option<SocketAddr> {
    let mut storage = empty_sockaddr();
    let len = name.len().min(size_of::<libc::sockaddr_storage>());
    // SAFETY: copies `len` bytes into the plain-data storage, which is at least that large.
    unsafe {
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            len,
        )
    };
    read_sockaddr(&storage, len as libc::socklen_t)
}

/// Encode `addr` into `storage`, returning the length to pass to the kernel.
#[inline]
pub(super) fn write_sockaddr(
    addr: &SocketAddr,
    storage: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage and all-zero is valid for it.
            let sin = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            *sin = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            *sin6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Milliseconds of a clock; `CLOCK_*_COARSE` are vDSO reads at tick resolution (1–4 ms),
/// plenty for "last packet" stamps and a 3 s learning window.
#[inline]
pub(super) fn clock_ms(clock: libc::clockid_t) -> u64 {
    // SAFETY: timespec is plain data; clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: valid clock id and a writable timespec; cannot fail for these clocks.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec as u64 / 1_000_000)
}

/// Microseconds of `clock` (a vDSO call for the fine clocks, no syscall).
pub(super) fn clock_us(clock: libc::clockid_t) -> u64 {
    // SAFETY: timespec is plain data; clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: valid clock id and a writable timespec; cannot fail for these clocks.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1000)
}

/// An epoll instance (level-triggered).
#[derive(Debug)]
pub(super) struct Epoll(OwnedFd);

impl Epoll {
    pub(super) fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; we own the returned descriptor.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watch `fd` for readability, reporting `token`.
    pub(super) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
            .map(drop)
    }

    pub(super) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as above; the event is ignored by DEL but must be non-null on old kernels.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })
            .map(drop)
    }

    /// Wait for events; `Ok(0)` on timeout or signal interruption.
    pub(super) fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout_ms: i32,
    ) -> io::Result<usize> {
        let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // Raw syscall, not glibc's wrapper: the wrapper is a pthread cancellation point and
        // toggles the cancel state around every call, which we never use.
        // SAFETY: `events` is writable for `max` entries.
        let r = unsafe {
            libc::syscall(
                libc::SYS_epoll_wait,
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                max,
                timeout_ms,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(r as usize)
    }
}

/// `recvmmsg(fd, hdrs, vlen, MSG_DONTWAIT, NULL)` as a raw syscall (see [`Epoll::wait`] for
/// why not glibc's wrapper). Returns the kernel's result: a count or -1 with errno set.
///
/// # Safety
/// `hdrs` must point at `vlen` valid `mmsghdr`s whose buffers and names are writable for
/// the lengths they state.
#[inline]
pub(super) unsafe fn recvmmsg_raw(fd: RawFd, hdrs: *mut libc::mmsghdr, vlen: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe {
        libc::syscall(
            libc::SYS_recvmmsg,
            fd,
            hdrs,
            vlen as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut::<libc::timespec>(),
        ) as isize
    }
}

/// `sendmmsg(fd, hdrs, vlen, MSG_DONTWAIT)` as a raw syscall.
///
/// # Safety
/// `hdrs` must point at `vlen` valid `mmsghdr`s whose buffers and names are readable for
/// the lengths they state.
#[inline]
pub(super) unsafe fn sendmmsg_raw(fd: RawFd, hdrs: *mut libc::mmsghdr, vlen: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe {
        libc::syscall(
            libc::SYS_sendmmsg,
            fd,
            hdrs,
            vlen as libc::c_uint,
            libc::MSG_DONTWAIT,
        ) as isize
    }
}

/// `sendto(fd, buf, MSG_DONTWAIT, addr)`: one generated packet (transcoder output, our
/// RTCP) on the epoll backend. Returns whether the kernel took it.
pub(super) fn send_to(fd: RawFd, buf: &[u8], addr: &SocketAddr) -> bool {
    let mut storage = empty_sockaddr();
    let len = write_sockaddr(addr, &mut storage);
    // SAFETY: buf and storage are valid for the lengths passed; the kernel only reads them.
    let r = unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    r >= 0
}

/// An eventfd used to wake a worker blocked in `epoll_wait` when a command is queued.
#[derive(Debug)]
pub(super) struct EventFd(OwnedFd);

impl EventFd {
    pub(super) fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; we own the returned descriptor.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(super) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub(super) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) still leaves the
        // fd readable, so the wake-up is not lost and the error can be ignored.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(super) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN (already drained) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for s in ["127.0.0.1:30000", "[::1]:40002", "[fe80::1%3]:5"] {
            let a: SocketAddr = s.parse().unwrap();
            let mut st = empty_sockaddr();
            let len = write_sockaddr(&a, &mut st);
            assert_eq!(read_sockaddr(&st, len), Some(a));
        }
        let a: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        let mut st = empty_sockaddr();
        let len = write_sockaddr(&a, &mut st) as usize;
        // SAFETY: viewing plain data as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts((&st as *const libc::sockaddr_storage).cast::<u8>(), len)
        };
        assert_eq!(read_sockaddr_bytes(bytes), Some(a));
        assert_eq!(read_sockaddr_bytes(&bytes[..4]), None);
        let st = empty_sockaddr();
        assert_eq!(
            read_sockaddr(&st, size_of::<libc::sockaddr_storage>() as _),
            None
        );
    }

    #[test]
    fn binds_v6_only_and_reports_address() {
        let fd = bind_udp("[::1]:0".parse().unwrap(), 1 << 20).unwrap();
        let a = local_addr(fd.as_raw_fd()).unwrap();
        assert!(a.is_ipv6() && a.port() != 0);
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid fd, writable int.
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(v, 1);
    }

    #[test]
    fn ipv4_sockets_set_df_without_pmtu() {
        let fd = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 16).unwrap();
        let mut v: libc::c_int = -1;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid fd, writable int.
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(v, libc::IP_PMTUDISC_PROBE);
    }

    #[test]
    fn eventfd_wakes_epoll() {
        let ep = Epoll::new().unwrap();
        let ev = EventFd::new().unwrap();
        ep.add(ev.fd(), 7).unwrap();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        assert_eq!(ep.wait(&mut events, 0).unwrap(), 0);
        ev.notify();
        assert_eq!(ep.wait(&mut events, 100).unwrap(), 1);
        assert_eq!({ events[0].u64 }, 7);
        ev.drain();
        assert_eq!(ep.wait(&mut events, 0).unwrap(), 0);
    }
}
