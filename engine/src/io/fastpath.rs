//! The kernel fast path (rtpengine's kernel module, without a module): an eBPF program on
//! every interface forwards the RTP of streams that need no per-packet work in user space,
//! so those packets never wake a media worker. It runs at XDP, in the driver, where the
//! driver supports it natively and the interface forwards (see [`xdp`]), and at TC ingress
//! everywhere (loopback, and behind XDP for what XDP passes up).
//!
//! The program (`engine/bpf/fastpath.bpf.c`, built by `build.rs` with the system clang and
//! embedded here) matches a datagram's 5-tuple in the `ngm_fwd` hash map, rewrites the
//! addresses and ports as the sink socket would have sent it (checksums included), sends it
//! out of the egress interface (or up the stack when the destination is local) and counts
//! packets, bytes, the last arrival and the RTP sequence in the entry. Everything else goes
//! up the stack unchanged to the engine's socket, which stays the reference and the fallback.
//!
//! Policy stays in user space: the worker installs an entry once the stream's verdicts are a
//! plain forward (`core::stream::offloadable`), and withdraws it — folding the map's
//! counters into the stream's own — before anything changes (see `io::worker`). This module
//! only loads, attaches and talks to the maps, through plain `bpf(2)` calls on the map file
//! descriptors: workers use them concurrently without a lock, and nothing here runs per
//! packet.
//!
//! Nothing outlives the engine: the program is attached through TCX and XDP links (kernel
//! 6.6+), which the kernel removes when the process exits, however it exits (the pass-through
//! program on a veth's peer, attached by netlink, forwards nothing and is removed at a clean
//! exit); and every entry
//! forwards only while the engine's heartbeat (`ngm_ctl`, pushed forward by the workers) is
//! fresh, so even a hung engine stops forwarding within [`HEARTBEAT_TTL`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::core::config::FastPathMode;

mod xdp;

/// The program, built by `build.rs` (empty when this build has none).
#[cfg(ngmedia_bpf)]
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fastpath.bpf.o"));

/// How long the program keeps forwarding after the last heartbeat: workers refresh it every
/// [`SYNC_INTERVAL_MS`]; a few missed beats (a worker busy applying a big plan) must not
/// bounce streams to user space, and an engine that hangs must not leave media flowing for
/// long (always below the idle timeout, 60 s by default).
pub(crate) const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

/// How often a worker folds the map's counters into its streams' (and beats the heart):
/// `query`, `/calls`, `/metrics` and the idle timeout see fast-path traffic at most this late.
pub(crate) const SYNC_INTERVAL_MS: u64 = 500;

/// `fp_target.flags`: RTCP (PT 192-223) goes up to user space, which reads its reports.
const FP_RTP_ONLY: u8 = 1;

/// The 5-tuple an entry matches, network byte order (`struct fp_key`); IPv4 addresses in
/// their IPv4-mapped IPv6 form, so one map holds both families.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FpKey {
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
}

impl FpKey {
    /// Packets from `src` to the engine's socket at `local`: `None` when the two are not of
    /// one family on the wire.
    pub fn new(src: SocketAddr, local: SocketAddr) -> Option<FpKey> {
        let (saddr, daddr) = same_family(src.ip(), local.ip())?;
        Some(FpKey {
            saddr,
            daddr,
            sport: src.port().to_be(),
            dport: local.port().to_be(),
        })
    }
}

/// The first 12 bytes of an IPv4-mapped IPv6 address (`::ffff:0:0/96`).
const MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// Whether the program's form of an address is IPv4.
fn is_mapped(a: &[u8; 16]) -> bool {
    a[..12] == MAPPED_PREFIX
}

/// The addresses as the program holds them (IPv4 mapped into IPv6), when both are of one
/// family on the wire: an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
/// peer) counts as IPv4, since that is what its packets carry.
fn same_family(a: IpAddr, b: IpAddr) -> Option<([u8; 16], [u8; 16])> {
    let (a, b) = (a.to_canonical(), b.to_canonical());
    if a.is_ipv4() != b.is_ipv4() {
        return None;
    }
    let wire = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    Some((wire(a), wire(b)))
}

/// What the program counted for an entry (`struct fp_counters`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FpCounters {
    pub packets: u64,
    /// UDP payload bytes, as the engine counts them.
    pub bytes: u64,
    /// CLOCK_MONOTONIC nanoseconds of the last packet.
    pub last_ns: u64,
    /// SSRC of the last RTP packet.
    pub ssrc: u32,
    /// Highest RTP sequence number, wrap cycles in the upper 16 bits.
    pub ext_seq: u32,
    /// RTP packets of `ssrc` counted since it started.
    pub seq_packets: u32,
    /// RTP timestamp of the packet that set `ext_seq`.
    pub last_ts: u32,
}

/// One entry (`struct fp_target`): where matched packets go, and their counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct FpTarget {
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
    ifindex: u32,
    tos: u8,
    flags: u8,
    _pad: u16,
    _pad2: u32,
    c: FpCounters,
}

/// `struct fp_control`, the single element of `ngm_ctl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct FpControl {
    alive_until_ns: u64,
    passed: u64,
}

/// A forwarding entry to install: packets matching `key` leave from `from` to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub key: FpKey,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub tos: u8,
}

/// The loaded program and its maps, shared by every worker.
pub struct FastPath {
    /// Owns the program and its TCX links: dropping it detaches everything.
    ebpf: std::sync::Mutex<Option<aya::Ebpf>>,
    fwd: aya::maps::MapData,
    ctl: aya::maps::MapData,
    /// Entries installed right now (a gauge for `/metrics`).
    entries: AtomicU64,
    /// Entries installed and withdrawn since start.
    installed: AtomicU64,
    withdrawn: AtomicU64,
    /// Interfaces the program is attached to; grows as links appear after start.
    interfaces: std::sync::Mutex<Vec<String>>,
    /// Egress devices that take XDP frames (`ngm_xmit`), and packets by program (`ngm_path`).
    xmit: aya::maps::MapData,
    path: aya::maps::MapData,
    /// Whether the XDP programs (`ngm_xdp`, `ngm_xdp_pass`) loaded.
    xdp: bool,
    /// Interfaces with `ngm_xdp` (name, ifindex).
    xdp_links: std::sync::Mutex<Vec<(String, u32)>>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("interfaces", &*crate::sync::lock(&self.interfaces))
            .field("entries", &self.entries.load(Relaxed))
            .finish()
    }
}

impl FastPath {
    /// Load and attach the program as `mode` asks. `Off` and `Auto` without a usable kernel
    /// give `Ok(None)` (`Auto` says why in one log line); `On` without one is an error.
    pub fn start(mode: FastPathMode) -> io::Result<Option<Arc<FastPath>>> {
        if mode == FastPathMode::Off {
            return Ok(None);
        }
        match FastPath::load() {
            Ok(fp) => {
                info!(
                    interfaces = %crate::sync::lock(&fp.interfaces).join(", "),
                    capacity = MAX_ENTRIES,
                    "kernel fast path: eBPF program attached (XDP where the driver runs it \
                     natively and the interface forwards, TC ingress otherwise)"
                );
                let fp = Arc::new(fp);
                watch_links(Arc::downgrade(&fp));
                Ok(Some(fp))
            }
            Err(why) if mode == FastPathMode::Auto => {
                info!("kernel fast path unavailable, relaying in user space: {why}");
                Ok(None)
            }
            Err(why) => Err(io::Error::other(format!(
                "--fast-path=on: kernel fast path unavailable: {why}"
            ))),
        }
    }

    #[cfg(not(ngmedia_bpf))]
    fn load() -> Result<FastPath, String> {
        Err("this build has no eBPF program (clang was missing when it was built)".into())
    }

    #[cfg(ngmedia_bpf)]
    fn load() -> Result<FastPath, String> {
        let mut ebpf = aya::Ebpf::load(OBJECT).map_err(|e| format!("cannot load: {e}"))?;
        program(&mut ebpf)?
            .load()
            .map_err(|e| format!("the kernel refused the program: {e}"))?;
        // XDP is a bonus: a kernel that refuses it leaves TC ingress everywhere.
        let xdp = match load_xdp(&mut ebpf) {
            Ok(()) => true,
            Err(e) => {
                warn!("kernel fast path: no XDP, TC ingress everywhere: {e}");
                false
            }
        };
        let take = |ebpf: &mut aya::Ebpf, name: &str| -> Result<aya::maps::MapData, String> {
            match ebpf.take_map(name) {
                Some(aya::maps::Map::HashMap(m))
                | Some(aya::maps::Map::Array(m))
                | Some(aya::maps::Map::PerCpuArray(m)) => Ok(m),
                _ => Err(format!("the object has no map {name}")),
            }
        };
        let fwd = take(&mut ebpf, "ngm_fwd")?;
        let ctl = take(&mut ebpf, "ngm_ctl")?;
        let xmit = take(&mut ebpf, "ngm_xmit")?;
        let path = take(&mut ebpf, "ngm_path")?;
        let fp = FastPath {
            ebpf: std::sync::Mutex::new(None),
            fwd,
            ctl,
            entries: AtomicU64::new(0),
            installed: AtomicU64::new(0),
            withdrawn: AtomicU64::new(0),
            interfaces: std::sync::Mutex::new(Vec::new()),
            xmit,
            path,
            xdp,
            xdp_links: std::sync::Mutex::new(Vec::new()),
        };
        let mut interfaces = Vec::new();
        for name in interface_names() {
            match fp.hook(&mut ebpf, &name) {
                Ok(how) => interfaces.push(how),
                Err(e) => warn!(interface = %name, error = %e, "kernel fast path: cannot attach"),
            }
        }
        if interfaces.is_empty() {
            return Err("could not attach to any interface".into());
        }
        *crate::sync::lock(&fp.interfaces) = interfaces;
        *crate::sync::lock(&fp.ebpf) = Some(ebpf);
        fp.heartbeat();
        Ok(fp)
    }

    /// Attach to interface `name`: at TC ingress always, and at XDP in front of it where the
    /// driver runs XDP natively and the interface forwards. Gives `name=xdp` or
    /// `name=tc(why not XDP)` for the log.
    #[cfg(ngmedia_bpf)]
    fn hook(&self, ebpf: &mut aya::Ebpf, name: &str) -> Result<String, String> {
        use aya::programs::XdpMode;
        attach(ebpf, name)?;
        if !self.xdp {
            return Ok(format!("{name}=tc"));
        }
        if !xdp::forwards(name) {
            return Ok(format!("{name}=tc(does not forward)"));
        }
        if let Err(e) = xdp_program(ebpf, "ngm_xdp")?.attach(name, XdpMode::Driver) {
            return Ok(format!("{name}=tc(no native XDP: {e})"));
        }
        let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated name we own.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        crate::sync::lock(&self.xdp_links).push((name.to_owned(), ifindex));
        match self.egress_ready(ebpf, ifindex) {
            Ok(()) => Ok(format!("{name}=xdp")),
            Err(why) => Ok(format!(
                "{name}=xdp(what leaves through it goes via TC: {why})"
            )),
        }
    }

    /// Make `ifindex` an XDP egress if it can be (a veth's peer gets the pass-through
    /// program) and list it in `ngm_xmit`, or take it off.
    #[cfg(ngmedia_bpf)]
    fn egress_ready(&self, ebpf: &mut aya::Ebpf, ifindex: u32) -> Result<(), String> {
        let fd = self.xmit.fd().as_fd().as_raw_fd();
        let ready = match xdp::egress_need(ifindex) {
            Ok(xdp::EgressNeed::Nothing) => Ok(()),
            Ok(xdp::EgressNeed::PeerProgram { ifindex, netns }) => {
                attach_pass(ebpf, ifindex, netns)
            }
            Err(why) => Err(why),
        };
        match ready {
            Ok(()) => map_op(
                BPF_MAP_UPDATE_ELEM,
                fd,
                &ifindex,
                (&1u32 as *const u32).cast_mut(),
                0,
            )
            .map_err(|e| format!("ngm_xmit: {e}")),
            Err(why) => {
                let _ = map_op(
                    BPF_MAP_DELETE_ELEM,
                    fd,
                    &ifindex,
                    std::ptr::null_mut::<u32>(),
                    0,
                );
                Err(why)
            }
        }
    }

    /// Check again that what XDP redirects can leave (a veth peer's program may have gone
    /// with its device, or another may have come): on the link watcher's thread, once a
    /// second.
    #[cfg(ngmedia_bpf)]
    fn refresh_egress(&self) {
        let links = crate::sync::lock(&self.xdp_links).clone();
        if links.is_empty() {
            return;
        }
        let mut ebpf = crate::sync::lock(&self.ebpf);
        let Some(ebpf) = ebpf.as_mut() else { return };
        for (name, ifindex) in links {
            if let Err(why) = self.egress_ready(ebpf, ifindex) {
                tracing::debug!(interface = %name, %why, "kernel fast path: no XDP egress");
            }
        }
    }

    /// Packets forwarded since start: `(at XDP, at TC)`.
    pub fn path_packets(&self) -> (u64, u64) {
        let cpus = aya::util::nr_cpus().unwrap_or(1).max(1);
        let mut v = vec![0u64; 2 * cpus];
        let fd = self.path.fd().as_fd().as_raw_fd();
        if map_op(BPF_MAP_LOOKUP_ELEM, fd, &0u32, v.as_mut_ptr(), 0).is_err() {
            return (0, 0);
        }
        v.chunks(2).fold((0, 0), |(x, t), c| {
            (x + c[0], t + c.get(1).copied().unwrap_or(0))
        })
    }

    fn fwd_fd(&self) -> RawFd {
        self.fwd.fd().as_fd().as_raw_fd()
    }

    /// Install the entry for `route`. False when the map is full, the kernel refused, or the
    /// route changes family (IPv4 in, IPv6 out: user space bridges those).
    pub fn install(&self, route: &Route) -> bool {
        let Some((saddr, daddr)) = same_family(route.from.ip(), route.to.ip()) else {
            return false;
        };
        if is_mapped(&saddr) != is_mapped(&route.key.saddr) {
            return false;
        }
        let Some((ifindex, _local)) = egress(route.to.ip().to_canonical()) else {
            return false;
        };
        let target = FpTarget {
            saddr,
            daddr,
            sport: route.from.port().to_be(),
            dport: route.to.port().to_be(),
            ifindex,
            tos: route.tos,
            flags: FP_RTP_ONLY,
            ..FpTarget::default()
        };
        match map_op(
            BPF_MAP_UPDATE_ELEM,
            self.fwd_fd(),
            &route.key,
            (&target as *const FpTarget).cast_mut(),
            0,
        ) {
            Ok(()) => {
                self.entries.fetch_add(1, Relaxed);
                self.installed.fetch_add(1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Remove the entry for `key` and return its final counters (`None`: it was not there).
    /// Atomic: a packet is either counted here or reaches the engine's socket.
    pub fn withdraw(&self, key: &FpKey) -> Option<FpCounters> {
        let mut t = FpTarget::default();
        map_op(
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            self.fwd_fd(),
            key,
            &mut t,
            0,
        )
        .ok()?;
        self.entries.fetch_sub(1, Relaxed);
        self.withdrawn.fetch_add(1, Relaxed);
        Some(t.c)
    }

    /// The counters of the entry for `key`.
    pub fn read(&self, key: &FpKey) -> Option<FpCounters> {
        let mut t = FpTarget::default();
        map_op(BPF_MAP_LOOKUP_ELEM, self.fwd_fd(), key, &mut t, 0).ok()?;
        Some(t.c)
    }

    /// Keep the entries forwarding for another [`HEARTBEAT_TTL`].
    pub fn heartbeat(&self) {
        let until = mono_ns().saturating_add(HEARTBEAT_TTL.as_nanos() as u64);
        let mut ctl = FpControl::default();
        let fd = self.ctl.fd().as_fd().as_raw_fd();
        let _ = map_op(BPF_MAP_LOOKUP_ELEM, fd, &0u32, &mut ctl, 0);
        ctl.alive_until_ns = until;
        let _ = map_op(
            BPF_MAP_UPDATE_ELEM,
            fd,
            &0u32,
            (&ctl as *const FpControl).cast_mut(),
            0,
        );
    }

    /// Entries forwarding right now.
    pub fn entries(&self) -> u64 {
        self.entries.load(Relaxed)
    }

    /// `(installed, withdrawn)` since start.
    pub fn churn(&self) -> (u64, u64) {
        (self.installed.load(Relaxed), self.withdrawn.load(Relaxed))
    }

    /// Interfaces the program is attached to right now, each as `name=xdp` or `name=tc(why)`.
    pub fn interfaces(&self) -> Vec<String> {
        crate::sync::lock(&self.interfaces).clone()
    }

    /// Detach the programs now, the pass-through ones on veth peers included (at shutdown;
    /// the kernel also does it when the process exits).
    pub fn detach(&self) {
        crate::sync::lock(&self.ebpf).take();
    }

    /// A link appeared (or changed): attach to it unless already attached. False: the
    /// program was detached, stop watching.
    #[cfg(ngmedia_bpf)]
    fn link_added(&self, name: &str) -> bool {
        let mut ebpf = crate::sync::lock(&self.ebpf);
        let Some(ebpf) = ebpf.as_mut() else {
            return false;
        };
        let mut interfaces = crate::sync::lock(&self.interfaces);
        if interfaces.iter().any(|n| hooked_name(n) == name) {
            return true;
        }
        match self.hook(ebpf, name) {
            Ok(how) => {
                info!(interface = %how, "kernel fast path: attached to a new interface");
                interfaces.push(how);
            }
            Err(e) => warn!(interface = %name, error = %e, "kernel fast path: cannot attach"),
        }
        true
    }

    /// A link went away, and its attachment with it: a link of that name that comes back
    /// is attached again.
    #[cfg(ngmedia_bpf)]
    fn link_removed(&self, name: &str) {
        crate::sync::lock(&self.interfaces).retain(|n| hooked_name(n) != name);
        let mut links = crate::sync::lock(&self.xdp_links);
        let fd = self.xmit.fd().as_fd().as_raw_fd();
        for (_, ifindex) in links.iter().filter(|(n, _)| n == name) {
            let _ = map_op(
                BPF_MAP_DELETE_ELEM,
                fd,
                ifindex,
                std::ptr::null_mut::<u32>(),
                0,
            );
        }
        links.retain(|(n, _)| n != name);
    }
}

/// The loaded object's classifier.
#[cfg(ngmedia_bpf)]
fn program(ebpf: &mut aya::Ebpf) -> Result<&mut aya::programs::SchedClassifier, String> {
    ebpf.program_mut("ngm_tc")
        .ok_or("the object has no ngm_tc program")?
        .try_into()
        .map_err(|e| format!("ngm_tc: {e}"))
}

/// The interface name of an [`FastPath::interfaces`] item.
fn hooked_name(how: &str) -> &str {
    how.split('=').next().unwrap_or(how)
}

/// Load the XDP programs (the forwarding one and the pass-through one).
#[cfg(ngmedia_bpf)]
fn load_xdp(ebpf: &mut aya::Ebpf) -> Result<(), String> {
    for name in ["ngm_xdp", "ngm_xdp_pass"] {
        xdp_program(ebpf, name)?
            .load()
            .map_err(|e| format!("the kernel refused {name}: {e}"))?;
    }
    Ok(())
}

/// Attach the pass-through program to interface `ifindex` of namespace `netns` (`None`: this
/// one), from a thread of its own that enters the namespace: a link, which goes with the
/// object (at detach) or the process.
#[cfg(ngmedia_bpf)]
fn attach_pass(
    ebpf: &mut aya::Ebpf,
    ifindex: u32,
    netns: Option<std::os::fd::OwnedFd>,
) -> Result<(), String> {
    use aya::programs::XdpMode;
    let prog = xdp_program(ebpf, "ngm_xdp_pass")?;
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = netns {
                // SAFETY: setns on a namespace descriptor we own; this thread only.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let e = io::Error::last_os_error();
                    return Err(format!("cannot enter the veth peer's namespace: {e}"));
                }
            }
            prog.attach_to_if_index(ifindex, XdpMode::Driver)
                .map(|_| ())
                .map_err(|e| format!("its veth peer has no XDP program and takes none: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the attaching thread panicked".into()))
    })
}

/// One of the object's XDP programs.
#[cfg(ngmedia_bpf)]
fn xdp_program<'a>(
    ebpf: &'a mut aya::Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::Xdp, String> {
    ebpf.program_mut(name)
        .ok_or_else(|| format!("the object has no {name} program"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))
}

/// Attach the classifier at TC ingress of interface `name`.
#[cfg(ngmedia_bpf)]
fn attach(ebpf: &mut aya::Ebpf, name: &str) -> Result<(), String> {
    use aya::programs::{tc, TcAttachType};
    let prog = program(ebpf)?;
    prog.attach(name, TcAttachType::Ingress)
        .or_else(|_| {
            // Kernels before 6.6 have no TCX: a clsact qdisc carries the filter.
            let _ = tc::qdisc_add_clsact(name);
            prog.attach(name, TcAttachType::Ingress)
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Follow the namespace's links (netlink `RTMGRP_LINK`) on a thread of its own, so that an
/// interface added after start (a VLAN, a container's veth, a NIC brought up later) gets the
/// program too. The thread ends once the fast path is dropped or detached.
#[cfg(ngmedia_bpf)]
fn watch_links(fp: std::sync::Weak<FastPath>) {
    let sock = match link_socket() {
        Ok(sock) => sock,
        Err(e) => {
            warn!(error = %e, "kernel fast path: cannot follow new interfaces");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("fastpath-links".into())
        .spawn(move || {
            let mut buf = [0u8; 16384];
            let mut next_refresh = std::time::Instant::now();
            loop {
                // SAFETY: recv into a buffer we own; the socket times out every second.
                let n = unsafe {
                    libc::recv(
                        sock.as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        0,
                    )
                };
                let Some(fp) = fp.upgrade() else { return };
                if std::time::Instant::now() >= next_refresh {
                    fp.refresh_egress();
                    next_refresh = std::time::Instant::now() + Duration::from_secs(1);
                }
                if n <= 0 {
                    if crate::sync::lock(&fp.ebpf).is_none() {
                        return;
                    }
                    continue;
                }
                for (added, name) in link_events(&buf[..n as usize]) {
                    if !added {
                        fp.link_removed(&name);
                    } else if !fp.link_added(&name) {
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "kernel fast path: cannot follow new interfaces");
    }
}

#[cfg(not(ngmedia_bpf))]
fn watch_links(_fp: std::sync::Weak<FastPath>) {}

/// A netlink socket subscribed to link events.
#[cfg(ngmedia_bpf)]
fn link_socket() -> io::Result<std::os::fd::OwnedFd> {
    const RTMGRP_LINK: u32 = 1;
    let fd = route_socket()?;
    // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = RTMGRP_LINK;
    // SAFETY: bind reads the address we pass, of the size we give.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A NETLINK_ROUTE socket whose reads give up after a second, so that a blocked caller
/// gets to look around.
fn route_socket() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: a plain socket call; the descriptor is owned by OwnedFd below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads the timeval we pass.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

/// The link events in one netlink datagram: `(true, name)` for RTM_NEWLINK (a new link, or
/// a change to one), `(false, name)` for RTM_DELLINK. Anything malformed ends the walk.
#[cfg(any(ngmedia_bpf, test))]
fn link_events(buf: &[u8]) -> Vec<(bool, String)> {
    const RTM_NEWLINK: u16 = 16;
    const RTM_DELLINK: u16 = 17;
    const IFLA_IFNAME: u16 = 3;
    const NLMSG_HDR: usize = 16;
    const IFINFOMSG: usize = 16;
    let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(hdr) = buf.get(at..at + NLMSG_HDR) {
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
        let Some(msg) = buf.get(at..at + len).filter(|_| len >= NLMSG_HDR) else {
            break;
        };
        if kind == RTM_NEWLINK || kind == RTM_DELLINK {
            let mut a = NLMSG_HDR + IFINFOMSG;
            while let (Some(alen), Some(atype)) = (u16_at(msg, a), u16_at(msg, a + 2)) {
                let alen = alen as usize;
                let Some(value) = msg.get(a + 4..a + alen).filter(|_| alen >= 4) else {
                    break;
                };
                if atype == IFLA_IFNAME {
                    let name = value.split(|&c| c == 0).next().unwrap_or_default();
                    if !name.is_empty() {
                        let name = String::from_utf8_lossy(name).into_owned();
                        events.push((kind == RTM_NEWLINK, name));
                    }
                    break;
                }
                a += (alen + 3) & !3;
            }
        }
        at += (len + 3) & !3;
    }
    events
}

/// Capacity of `ngm_fwd` (`FP_MAX_ENTRIES` in the program): one entry per direction of an
/// offloaded call, so 32,768 calls.
pub(crate) const MAX_ENTRIES: u32 = 65536;

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;

/// The `bpf_attr` of the map element commands.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// One map element command. `value` is read (update) or written (lookup).
fn map_op<K, V>(cmd: libc::c_long, fd: RawFd, key: &K, value: *mut V, flags: u64) -> io::Result<()>
where
    V: Copy,
{
    let attr = MapElemAttr {
        map_fd: fd as u32,
        _pad: 0,
        key: key as *const K as u64,
        value: value as u64,
        flags,
    };
    // SAFETY: the attribute points at a key and a value of the map's sizes (the `repr(C)`
    // twins of the program's structs), alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            &attr as *const MapElemAttr,
            std::mem::size_of::<MapElemAttr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Names of the network interfaces of the engine's namespace.
#[cfg(ngmedia_bpf)]
fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns a list terminated by a zero entry, freed below.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name);
            names.push(name.to_string_lossy().into_owned());
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

/// Where the kernel routes packets for `dst`: `(egress ifindex, false)`, or `(0, true)` when
/// `dst` is one of this host's addresses (the rewritten packet goes up the stack). One
/// RTM_GETROUTE over netlink, on installing an entry only.
pub(crate) fn egress(dst: IpAddr) -> Option<(u32, bool)> {
    const RTM_GETROUTE: u16 = 26;
    const RTM_NEWROUTE: u16 = 24;
    const RTA_DST: u16 = 1;
    const RTA_OIF: u16 = 4;
    const RTN_LOCAL: u8 = 2;
    const NLMSG_HDR: usize = 16;
    const RTMSG: usize = 12;
    let fd = route_socket().ok()?;
    let (family, octets): (libc::c_int, &[u8]) = match &dst {
        IpAddr::V4(v4) => (libc::AF_INET, &v4.octets()[..]),
        IpAddr::V6(v6) => (libc::AF_INET6, &v6.octets()[..]),
    };
    let len = NLMSG_HDR + RTMSG + 4 + octets.len();
    let mut req = [0u8; NLMSG_HDR + RTMSG + 4 + 16];
    req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
    req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[NLMSG_HDR] = family as u8;
    req[NLMSG_HDR + 1] = (octets.len() * 8) as u8; // rtm_dst_len
    let a = NLMSG_HDR + RTMSG;
    req[a..a + 2].copy_from_slice(&((4 + octets.len()) as u16).to_ne_bytes());
    req[a + 2..a + 4].copy_from_slice(&RTA_DST.to_ne_bytes());
    req[a + 4..a + 4 + octets.len()].copy_from_slice(octets);
    let req = &req[..len];
    // SAFETY: send/recv on our socket with buffers we own.
    let sent = unsafe {
        libc::send(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
        )
    };
    if sent != req.len() as isize {
        return None;
    }
    let mut buf = [0u8; 4096];
    // SAFETY: as above.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
        )
    };
    if n < (NLMSG_HDR + RTMSG) as isize {
        return None;
    }
    let n = n as usize;
    let msg_len = u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes(buf[4..6].try_into().ok()?);
    if kind != RTM_NEWROUTE || msg_len > n {
        return None;
    }
    if buf[NLMSG_HDR + 7] == RTN_LOCAL {
        return Some((0, true));
    }
    let mut at = NLMSG_HDR + RTMSG;
    while at + 4 <= msg_len {
        let alen = u16::from_ne_bytes(buf[at..at + 2].try_into().ok()?) as usize;
        let atype = u16::from_ne_bytes(buf[at + 2..at + 4].try_into().ok()?);
        if alen < 4 || at + alen > msg_len {
            return None;
        }
        if atype == RTA_OIF && alen >= 8 {
            let oif = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().ok()?);
            return Some((oif, false));
        }
        at += (alen + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn layouts_match_the_program() {
        assert_eq!(std::mem::size_of::<FpKey>(), 36);
        assert_eq!(std::mem::size_of::<FpCounters>(), 40);
        assert_eq!(std::mem::size_of::<FpTarget>(), 88);
        assert_eq!(std::mem::size_of::<FpControl>(), 16);
    }

    #[test]
    fn link_events_name_new_and_removed_links() {
        // One RTM_NEWLINK for "veth9" (an MTU attribute before its name) and one RTM_DELLINK
        // for "old0", as the kernel batches them.
        fn msg(kind: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
            let mut body = vec![0u8; 16]; // ifinfomsg
            for (t, v) in attrs {
                let len = 4 + v.len();
                body.extend_from_slice(&(len as u16).to_ne_bytes());
                body.extend_from_slice(&t.to_ne_bytes());
                body.extend_from_slice(v);
                body.resize(body.len().next_multiple_of(4), 0);
            }
            let mut m = Vec::new();
            m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m.extend_from_slice(&body);
            m
        }
        let mut buf = msg(16, &[(4, &1500u32.to_ne_bytes()), (3, b"veth9\0")]);
        buf.extend(msg(17, &[(3, b"old0\0")]));
        buf.extend(msg(20, &[(3, b"addr\0")])); // RTM_NEWADDR: not a link
        assert_eq!(
            link_events(&buf),
            vec![(true, "veth9".to_owned()), (false, "old0".to_owned())]
        );
        // A truncated message ends the walk without a panic.
        assert_eq!(link_events(&buf[..20]), vec![]);
        assert_eq!(link_events(&[]), vec![]);
    }

    #[test]
    fn loopback_routes_locally() {
        assert_eq!(egress(Ipv4Addr::LOCALHOST.into()), Some((0, true)));
        assert_eq!(egress(Ipv6Addr::LOCALHOST.into()), Some((0, true)));
    }

    #[test]
    fn keys_are_in_network_order() {
        let k = FpKey::new(
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:30000".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(k.saddr[..12], MAPPED_PREFIX);
        assert_eq!(k.saddr[12..], [10, 0, 0, 1]);
        assert_eq!(k.daddr[12..], [10, 0, 0, 2]);
        assert_eq!(k.sport.to_ne_bytes(), 4000u16.to_be_bytes());
        let v6 = FpKey::new(
            "[2001:db8::1]:4000".parse().unwrap(),
            "[2001:db8::2]:30000".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(
            v6.saddr,
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(v6.dport.to_ne_bytes(), 30000u16.to_be_bytes());
        // A dual-stack socket's view of an IPv4 peer is IPv4 on the wire.
        let dual = FpKey::new(
            "[::ffff:10.0.0.1]:4000".parse().unwrap(),
            "10.0.0.2:30000".parse().unwrap(),
        );
        assert_eq!(dual, Some(k));
        assert!(FpKey::new("[::1]:1".parse().unwrap(), "10.0.0.2:3".parse().unwrap()).is_none());
    }
}
