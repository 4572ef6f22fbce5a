//! Where the fast path runs at XDP, and what that needs around it: an interface gets the XDP
//! program when its driver runs XDP natively and it forwards (the kernel's FIB lookup, which
//! gives the next hop's L2 address, answers only there); a veth takes redirected XDP frames
//! only when its peer runs an XDP program, so the engine puts a pass-through one there (from a
//! thread in the peer's namespace, as a link that goes with the engine) unless the peer has
//! one already; and the egress devices
//! that take XDP frames are listed in `ngm_xmit`, which the program consults before a
//! redirect. Everything here runs at start, when a link appears, and once a second on the
//! link watcher's thread; nothing per packet.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::route_socket;

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_XDP: u16 = 43;
const IFLA_TARGET_NETNSID: u16 = 46;
const IFLA_XDP_ATTACHED: u16 = 2;

/// A netlink request on a link (`struct ifinfomsg` for `ifindex`), built attribute by
/// attribute.
struct LinkMsg(Vec<u8>);

impl LinkMsg {
    fn new(kind: u16, flags: u16, ifindex: u32) -> LinkMsg {
        let mut b = vec![0u8; NLMSG_HDR + IFINFOMSG];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        b[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&ifindex.to_ne_bytes());
        LinkMsg(b)
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        self.0
            .extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    /// Send it and read the one reply.
    fn exchange(mut self) -> io::Result<Vec<u8>> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        let fd = route_socket()?;
        // SAFETY: send/recv on our socket with buffers we own.
        let sent = unsafe {
            libc::send(
                fd.as_raw_fd(),
                self.0.as_ptr() as *const libc::c_void,
                self.0.len(),
                0,
            )
        };
        if sent != self.0.len() as isize {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16384];
        // SAFETY: as above.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < NLMSG_HDR as isize {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }
}

/// The attributes in `buf`: `(type without flags, value)`; anything malformed ends the walk.
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        let Some(value) = buf.get(4..len).filter(|_| len >= 4) else {
            break;
        };
        out.push((kind, value));
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    out
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

/// What the engine needs to know of a link.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct LinkInfo {
    /// `IFLA_INFO_KIND` ("veth", "bridge"...); `None` for a physical device.
    pub kind: Option<String>,
    /// The peer of a veth (its ifindex in its own namespace).
    pub peer: Option<u32>,
    /// The namespace of the peer, as this namespace numbers it; `None`: this namespace.
    pub peer_netnsid: Option<i32>,
    /// Whether an XDP program is attached.
    pub xdp: bool,
}

/// `RTM_GETLINK` for `ifindex`, in the namespace `netnsid` (`None`: this one).
pub(super) fn link_info(ifindex: u32, netnsid: Option<i32>) -> io::Result<LinkInfo> {
    let mut m = LinkMsg::new(RTM_GETLINK, 0, ifindex);
    if let Some(id) = netnsid {
        m.attr(IFLA_TARGET_NETNSID, &id.to_ne_bytes());
    }
    let reply = m.exchange()?;
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if kind == NLMSG_ERROR {
        return Err(nl_error(&reply));
    }
    if kind != RTM_NEWLINK {
        return Err(io::Error::other("unexpected netlink reply"));
    }
    let len = (u32_of(&reply).unwrap_or(0) as usize).min(reply.len());
    let mut info = LinkInfo::default();
    for (t, v) in attrs(reply.get(NLMSG_HDR + IFINFOMSG..len).unwrap_or_default()) {
        match t {
            IFLA_LINK => info.peer = u32_of(v),
            IFLA_LINK_NETNSID => info.peer_netnsid = u32_of(v).map(|x| x as i32),
            IFLA_LINKINFO => {
                for (it, iv) in attrs(v) {
                    if it == IFLA_INFO_KIND {
                        let name = iv.split(|&c| c == 0).next().unwrap_or_default();
                        info.kind = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            IFLA_XDP => {
                for (xt, xv) in attrs(v) {
                    if xt == IFLA_XDP_ATTACHED {
                        info.xdp = xv.first().is_some_and(|&a| a != 0);
                    }
                }
            }
            _ => {}
        }
    }
    if info.kind.as_deref() != Some("veth") {
        info.peer = None;
        info.peer_netnsid = None;
    }
    Ok(info)
}

/// The errno of an `NLMSG_ERROR` reply (0: an acknowledgement).
fn nl_error(reply: &[u8]) -> io::Error {
    let code = reply
        .get(NLMSG_HDR..NLMSG_HDR + 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-libc::EIO);
    io::Error::from_raw_os_error(-code)
}

/// What must happen before XDP frames can be redirected into a device.
#[derive(Debug)]
pub(super) enum EgressNeed {
    /// Nothing: a device with a native XDP driver transmits XDP frames, and a veth whose
    /// peer runs an XDP program takes them.
    Nothing,
    /// A veth whose peer (`ifindex` in namespace `netns`, `None`: this one) runs no XDP
    /// program: one must be attached there.
    PeerProgram {
        ifindex: u32,
        netns: Option<OwnedFd>,
    },
}

/// What `ifindex` needs before XDP can redirect into it, or why it cannot be made to.
pub(super) fn egress_need(ifindex: u32) -> Result<EgressNeed, String> {
    let info = link_info(ifindex, None).map_err(|e| format!("link query: {e}"))?;
    let Some(peer) = info.peer else {
        return Ok(EgressNeed::Nothing);
    };
    let nsid = info.peer_netnsid;
    let peer_info = link_info(peer, nsid).map_err(|e| format!("veth peer query: {e}"))?;
    if peer_info.xdp {
        return Ok(EgressNeed::Nothing);
    }
    let netns = match nsid {
        None => None,
        Some(id) => Some(
            netns_by_id(id)
                .ok_or_else(|| format!("the veth peer's namespace (id {id}) is not found"))?,
        ),
    };
    Ok(EgressNeed::PeerProgram {
        ifindex: peer,
        netns,
    })
}

/// A descriptor of the network namespace this one numbers `nsid`: among the named ones
/// (`ip netns`, /run/netns) and those of running processes (containers). The kernel only
/// gives the number; RTM_GETNSID on each candidate tells which one it is.
fn netns_by_id(nsid: i32) -> Option<OwnedFd> {
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    let procs = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|c| c.is_ascii_digit())
        })
        .map(|e| e.path().join("ns/net"));
    let mut seen = std::collections::HashSet::new();
    for path in named.chain(procs) {
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let Ok(meta) = f.metadata() else { continue };
        use std::os::unix::fs::MetadataExt;
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        if nsid_of(f.as_raw_fd()) == Some(nsid) {
            return Some(OwnedFd::from(f));
        }
    }
    None
}

/// The id this namespace gives the namespace of descriptor `fd` (RTM_GETNSID).
fn nsid_of(fd: i32) -> Option<i32> {
    const RTM_NEWNSID: u16 = 88;
    const RTM_GETNSID: u16 = 90;
    const NETNSA_NSID: u16 = 1;
    const NETNSA_FD: u16 = 3;
    // Header, `struct rtgenmsg` (padded to 4), then the descriptor.
    let mut m = LinkMsg::new(RTM_GETNSID, 0, 0);
    m.0.truncate(NLMSG_HDR + 4);
    m.attr(NETNSA_FD, &(fd as u32).to_ne_bytes());
    let reply = m.exchange().ok()?;
    if u16::from_ne_bytes([reply[4], reply[5]]) != RTM_NEWNSID {
        return None;
    }
    let len = (u32_of(&reply)? as usize).min(reply.len());
    attrs(reply.get(NLMSG_HDR + 4..len)?)
        .into_iter()
        .find(|(t, _)| *t == NETNSA_NSID)
        .and_then(|(_, v)| u32_of(v))
        .map(|v| v as i32)
        .filter(|&id| id >= 0)
}

/// Whether the kernel forwards packets that enter on `name` (IPv4 or IPv6): its FIB lookup
/// for XDP answers only then.
pub(super) fn forwards(name: &str) -> bool {
    let dir = name.replace('.', "/");
    ["ipv4", "ipv6"].iter().any(|fam| {
        std::fs::read_to_string(format!("/proc/sys/net/{fam}/conf/{dir}/forwarding"))
            .is_ok_and(|v| v.trim() == "1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_no_veth_and_needs_nothing_to_transmit() {
        let info = link_info(1, None).expect("lo");
        assert_eq!(info.peer, None);
        assert_ne!(info.kind.as_deref(), Some("veth"));
        assert!(matches!(egress_need(1), Ok(EgressNeed::Nothing)));
    }

    #[test]
    fn attributes_walk_stops_at_malformed_input() {
        let mut m = LinkMsg::new(0, 0, 0);
        m.attr(3, b"ve1\0");
        m.attr(5, &7u32.to_ne_bytes());
        let body = &m.0[NLMSG_HDR + IFINFOMSG..];
        let a = attrs(body);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (3, &b"ve1\0"[..]));
        assert_eq!(u32_of(a[1].1), Some(7));
        assert_eq!(attrs(&body[..6]).len(), 0);
    }
}
