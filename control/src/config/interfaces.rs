//! `--interface` values: the syntax, and the expansion of network device names, `any` and
//! host names into addresses at start-up.
//!
//! rtpengine accepts, in place of the local address, the name of a system network device
//! (`eth0`, `int/eth1`), the keyword `any` (every address of every device except loopback
//! ones) or a DNS host name, and treats the result as if each address had been given with
//! its own `--interface` of the same logical name. Only devices that are up count, and
//! IPv6 link-local addresses are skipped (they need a scope to be reachable). Expansion is a
//! pure function of the device list so it is tested without touching the host's network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use ngmedia_engine::core::config::Interface;

/// What stands where the local address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Host {
    Addr(IpAddr),
    /// A network device, `any`, or a host name: resolved at start-up.
    Name(String),
}

/// One `--interface` value before resolution: `[NAME/]HOST[!ADVERTISED]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InterfaceSpec {
    pub name: String,
    pub host: Host,
    pub advertised: Option<IpAddr>,
}

impl InterfaceSpec {
    /// The value as it was written, for messages.
    pub(super) fn display(&self) -> String {
        let host = match &self.host {
            Host::Addr(a) => a.to_string(),
            Host::Name(n) => n.clone(),
        };
        match self.advertised {
            Some(adv) => format!("{}/{host}!{adv}", self.name),
            None => format!("{}/{host}", self.name),
        }
    }
}

/// One address of one network device, as `getifaddrs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceAddr {
    pub device: String,
    pub addr: IpAddr,
    pub up: bool,
    pub loopback: bool,
}

/// Expand one spec into interfaces. `devices` is the host's address list, `lookup` resolves
/// DNS host names (tried only when no device has that name). Returns the interfaces and, when
/// an advertised address could not apply to every resolved address, a remark for the log.
pub(super) fn expand(
    spec: &InterfaceSpec,
    devices: &[DeviceAddr],
    lookup: &dyn Fn(&str) -> Vec<IpAddr>,
) -> Result<(Vec<Interface>, Option<String>), String> {
    let addrs = match &spec.host {
        Host::Addr(a) => vec![*a],
        Host::Name(name) => {
            let any = name == "any";
            let mut found: Vec<IpAddr> = devices
                .iter()
                .filter(|d| d.up && if any { !d.loopback } else { d.device == *name })
                .map(|d| d.addr)
                .filter(|a| !is_ipv6_link_local(a))
                .collect();
            dedup(&mut found);
            if found.is_empty() && !any {
                found = lookup(name);
                dedup(&mut found);
            }
            if found.is_empty() {
                return Err(if any {
                    "`any`: no network device other than loopback has an address".to_string()
                } else {
                    format!(
                        "`{name}` is neither an IP address, nor a network device that is up \
                         with an address, nor a host name that resolves"
                    )
                });
            }
            found
        }
    };
    let mut remark = None;
    let interfaces = addrs
        .into_iter()
        .map(|local| {
            let advertised = spec.advertised.filter(|adv| {
                let same = adv.is_ipv4() == local.is_ipv4();
                if !same {
                    remark = Some(format!(
                        "interface {}: the advertised address {} is not used for {local} \
                         (another address family); {local} is advertised as it is",
                        spec.display(),
                        adv
                    ));
                }
                same
            });
            Interface {
                name: spec.name.clone(),
                local,
                advertised,
            }
        })
        .collect();
    Ok((interfaces, remark))
}

fn dedup(addrs: &mut Vec<IpAddr>) {
    let mut seen = Vec::with_capacity(addrs.len());
    addrs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
}

fn is_ipv6_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Every address of every network device of this host (empty if the kernel will not say).
pub(super) fn system_devices() -> Vec<DeviceAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free exactly once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says which struct it is.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let device = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = ifa.ifa_flags;
        out.push(DeviceAddr {
            device,
            addr,
            up: flags & libc::IFF_UP as u32 != 0,
            loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
        });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// DNS (or /etc/hosts) addresses of a host name, resolved once at start-up.
pub(super) fn lookup_host(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(device: &str, addr: &str, up: bool, loopback: bool) -> DeviceAddr {
        DeviceAddr {
            device: device.into(),
            addr: addr.parse().unwrap(),
            up,
            loopback,
        }
    }

    fn host() -> Vec<DeviceAddr> {
        vec![
            dev("lo", "127.0.0.1", true, true),
            dev("lo", "::1", true, true),
            dev("eth0", "192.0.2.10", true, false),
            dev("eth0", "fe80::1", true, false),
            dev("eth0", "2001:db8::10", true, false),
            dev("eth1", "10.0.0.5", true, false),
            dev("eth2", "10.9.9.9", false, false),
        ]
    }

    fn spec(name: &str, host: &str, adv: Option<&str>) -> InterfaceSpec {
        InterfaceSpec {
            name: name.into(),
            host: host
                .parse()
                .map(Host::Addr)
                .unwrap_or_else(|_| Host::Name(host.into())),
            advertised: adv.map(|a| a.parse().unwrap()),
        }
    }

    fn locals(r: &(Vec<Interface>, Option<String>)) -> Vec<String> {
        r.0.iter()
            .map(|i| format!("{}/{}", i.name, i.local))
            .collect()
    }

    fn no_dns(_: &str) -> Vec<IpAddr> {
        Vec::new()
    }

    #[test]
    fn device_names_give_both_families_without_link_local() {
        let r = expand(&spec("ext", "eth0", None), &host(), &no_dns).unwrap();
        assert_eq!(locals(&r), ["ext/192.0.2.10", "ext/2001:db8::10"]);
        let r = expand(&spec("default", "lo", None), &host(), &no_dns).unwrap();
        assert_eq!(locals(&r), ["default/127.0.0.1", "default/::1"]);
    }

    #[test]
    fn any_is_every_device_but_loopback_and_down_ones() {
        let r = expand(&spec("default", "any", None), &host(), &no_dns).unwrap();
        assert_eq!(
            locals(&r),
            [
                "default/192.0.2.10",
                "default/2001:db8::10",
                "default/10.0.0.5"
            ]
        );
    }

    #[test]
    fn advertised_address_applies_to_its_own_family() {
        let r = expand(&spec("ext", "eth0", Some("203.0.113.1")), &host(), &no_dns).unwrap();
        assert_eq!(r.0[0].advertised, Some("203.0.113.1".parse().unwrap()));
        assert_eq!(r.0[1].advertised, None);
        assert!(r.1.unwrap().contains("2001:db8::10"));
    }

    #[test]
    fn host_names_resolve_when_no_device_matches() {
        let dns = |n: &str| {
            if n == "media.example" {
                vec!["198.51.100.7".parse().unwrap()]
            } else {
                Vec::new()
            }
        };
        let r = expand(&spec("default", "media.example", None), &host(), &dns).unwrap();
        assert_eq!(locals(&r), ["default/198.51.100.7"]);
        let e = expand(&spec("default", "eth2", None), &host(), &dns).unwrap_err();
        assert!(e.contains("`eth2`"), "{e}");
        let e = expand(&spec("default", "any", None), &host()[..2], &dns).unwrap_err();
        assert!(e.contains("any"), "{e}");
    }

    #[test]
    fn the_hosts_loopback_device_is_found() {
        let devices = system_devices();
        assert!(
            devices
                .iter()
                .any(|d| d.loopback && d.addr == IpAddr::from([127, 0, 0, 1])),
            "{devices:?}"
        );
    }
}
