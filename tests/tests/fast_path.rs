//! `--fast-path`: the eBPF program relays established plain RTP in the kernel, with real
//! packets across veth pairs: caller, engine and callee each in a network namespace of the
//! test's own (caller 10.71.0.2 — engine 10.71.0.1 | 10.72.0.1 — callee 10.72.0.2, and the
//! same over IPv6 in fd71::/64 and fd72::/64). The engine's media address is 10.71.0.1 (or
//! fd71::1); the callee reaches it through the engine's second veth (its default route), so
//! what the kernel relays enters on one veth and leaves on the other.
//!
//! Needs root (namespaces, BPF); without it, or on a kernel without BPF for us, each test
//! says why and passes without checking anything. A program the kernel's verifier rejects
//! fails the test: that is ngmedia's bug.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::http::{metric, HttpClient};
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, Value};

const ENGINE: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);
const CALLER: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 2);
const CALLEE: Ipv4Addr = Ipv4Addr::new(10, 72, 0, 2);
const ENGINE6: Ipv6Addr = Ipv6Addr::new(0xfd71, 0, 0, 0, 0, 0, 0, 1);
const CALLER6: Ipv6Addr = Ipv6Addr::new(0xfd71, 0, 0, 0, 0, 0, 0, 2);
const CALLEE6: Ipv6Addr = Ipv6Addr::new(0xfd72, 0, 0, 0, 0, 0, 0, 2);

/// The addresses of one family's test: engine, caller, callee.
#[derive(Clone, Copy)]
struct Hosts {
    engine: IpAddr,
    caller: IpAddr,
    callee: IpAddr,
}

const V4: Hosts = Hosts {
    engine: IpAddr::V4(ENGINE),
    caller: IpAddr::V4(CALLER),
    callee: IpAddr::V4(CALLEE),
};
const V6: Hosts = Hosts {
    engine: IpAddr::V6(ENGINE6),
    caller: IpAddr::V6(CALLER6),
    callee: IpAddr::V6(CALLEE6),
};

/// Three namespaces joined by two veth pairs; deleted (with their links) on drop.
struct Net {
    names: [String; 3],
}

impl Net {
    /// `None` (with the reason printed) when the test cannot build namespaces here.
    fn new(tag: &str) -> Option<Net> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (network namespaces, BPF)");
            return None;
        }
        let id = format!("{}{}", tag, std::process::id());
        let names = [
            format!("fpc-{id}"),
            format!("fpe-{id}"),
            format!("fpb-{id}"),
        ];
        let net = Net { names };
        let [c, e, b] = &net.names;
        let steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", c],
            vec!["netns", "add", e],
            vec!["netns", "add", b],
            vec![
                "-n", e, "link", "add", "ve1", "type", "veth", "peer", "name", "vc", "netns", c,
            ],
            vec![
                "-n", e, "link", "add", "ve2", "type", "veth", "peer", "name", "vb", "netns", b,
            ],
            vec!["-n", e, "addr", "add", "10.71.0.1/24", "dev", "ve1"],
            vec!["-n", e, "addr", "add", "10.72.0.1/24", "dev", "ve2"],
            vec!["-n", c, "addr", "add", "10.71.0.2/24", "dev", "vc"],
            vec!["-n", b, "addr", "add", "10.72.0.2/24", "dev", "vb"],
            // nodad: usable at once, without waiting for duplicate address detection.
            vec!["-n", e, "addr", "add", "fd71::1/64", "dev", "ve1", "nodad"],
            vec!["-n", e, "addr", "add", "fd72::1/64", "dev", "ve2", "nodad"],
            vec!["-n", c, "addr", "add", "fd71::2/64", "dev", "vc", "nodad"],
            vec!["-n", b, "addr", "add", "fd72::2/64", "dev", "vb", "nodad"],
            vec!["-n", e, "link", "set", "lo", "up"],
            vec!["-n", c, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
            vec!["-n", e, "link", "set", "ve1", "up"],
            vec!["-n", e, "link", "set", "ve2", "up"],
            vec!["-n", c, "link", "set", "vc", "up"],
            vec!["-n", b, "link", "set", "vb", "up"],
            vec!["-n", c, "route", "add", "default", "via", "10.71.0.1"],
            vec!["-n", b, "route", "add", "default", "via", "10.72.0.1"],
            vec!["-n", c, "-6", "route", "add", "default", "via", "fd71::1"],
            vec!["-n", b, "-6", "route", "add", "default", "via", "fd72::1"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect();
        if let Err(why) = ip_steps(&steps) {
            eprintln!("skipped: {why}");
            return None;
        }
        Some(net)
    }

    /// A third veth pair between the engine (10.73.0.1, `ve3`) and the callee (10.73.0.2),
    /// made now, with the callee's route to the engine's media address through it: what the
    /// callee sends the engine enters on `ve3`.
    fn add_late_link(&self) {
        let [_, e, b] = &self.names;
        let steps: Vec<Vec<String>> = vec![
            vec![
                "-n", e, "link", "add", "ve3", "type", "veth", "peer", "name", "vb3", "netns", b,
            ],
            vec!["-n", e, "addr", "add", "10.73.0.1/24", "dev", "ve3"],
            vec!["-n", b, "addr", "add", "10.73.0.2/24", "dev", "vb3"],
            vec!["-n", e, "link", "set", "ve3", "up"],
            vec!["-n", b, "link", "set", "vb3", "up"],
            vec!["-n", b, "route", "add", "10.71.0.1/32", "via", "10.73.0.1"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect();
        ip_steps(&steps).expect("a veth pair added after start");
    }

    /// Move the calling thread (and the threads and processes it starts from now on) into
    /// namespace `i` (0 caller, 1 engine, 2 callee).
    fn enter(&self, i: usize) {
        let path = format!("/var/run/netns/{}", self.names[i]);
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a namespace file we hold open; affects this thread only.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
    }

    /// A UDP socket bound in namespace `i` on `ip` (any port).
    fn udp(&self, i: usize, ip: IpAddr) -> UdpSocket {
        let path = format!("/var/run/netns/{}", self.names[i]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let f = std::fs::File::open(&path).expect("netns file");
                use std::os::fd::AsRawFd;
                // SAFETY: as in `enter`, on this short-lived thread.
                let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {path}");
                UdpSocket::bind((ip, 0)).expect("bind in namespace")
            })
            .join()
            .expect("socket thread")
        })
    }
}

impl Net {
    /// Turn off transmit checksum offload on `dev` in namespace `i` (ethtool's `tx off`):
    /// what it sends then carries a full UDP checksum.
    fn tx_checksum_off(&self, i: usize, dev: &str) {
        const SIOCETHTOOL: libc::c_ulong = 0x8946;
        const ETHTOOL_STXCSUM: u32 = 0x17;
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        #[repr(C)]
        struct IfReq {
            name: [u8; 16],
            data: *mut EthtoolValue,
            _pad: [u8; 16],
        }
        let path = format!("/var/run/netns/{}", self.names[i]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let f = std::fs::File::open(&path).expect("netns file");
                use std::os::fd::AsRawFd;
                // SAFETY: as in `enter`, on this short-lived thread.
                let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {path}");
                let mut v = EthtoolValue {
                    cmd: ETHTOOL_STXCSUM,
                    data: 0,
                };
                let mut req = IfReq {
                    name: [0; 16],
                    data: &mut v,
                    _pad: [0; 16],
                };
                req.name[..dev.len()].copy_from_slice(dev.as_bytes());
                // SAFETY: a socket we close below; the ioctl reads the request we own.
                unsafe {
                    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                    assert!(sock >= 0, "socket");
                    let r = libc::ioctl(sock, SIOCETHTOOL as _, &mut req);
                    libc::close(sock);
                    assert_eq!(
                        r,
                        0,
                        "ETHTOOL_STXCSUM {dev}: {}",
                        std::io::Error::last_os_error()
                    );
                }
            })
            .join()
            .expect("ethtool thread")
        })
    }
}

/// Run `ip` with each set of arguments in turn; the first failure says what failed.
fn ip_steps(steps: &[Vec<String>]) -> Result<(), String> {
    for args in steps {
        match Command::new("ip").args(args).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            Err(e) => return Err(format!("cannot run ip (iproute2): {e}")),
        }
    }
    Ok(())
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// The engine in the engine namespace (the calling thread must be in it), on 10.71.0.1.
/// `mode` "on" runs `--fast-path=auto` and gives `None` (printing the daemon's reason) when
/// the kernel has no BPF for us.
fn engine(mode: &str, extra: &[&str]) -> Option<Daemon> {
    engine_on(V4.engine, mode, extra)
}

/// [`engine`], with its media address at `at`.
fn engine_on(at: IpAddr, mode: &str, extra: &[&str]) -> Option<Daemon> {
    let want = mode == "on";
    let mode = if want { "auto" } else { mode };
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mode = mode.to_owned();
    let daemon = Daemon::start_verbatim(move |p| {
        let mut v: Vec<String> = ["--config", "none", "--log-level", "debug"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(format!("--interface={at}"));
        v.push(format!("--listen-ng={}", p.ng));
        v.push(format!("--listen-http={}", p.http));
        v.push(format!("--port-min={}", p.port_min));
        v.push(format!("--port-max={}", p.port_max));
        v.push(format!("--fast-path={mode}"));
        v.extend(extra);
        v
    });
    if want {
        let attached = wait_for(Duration::from_secs(3), || {
            let log = daemon.log_text();
            if log.contains("eBPF program attached") {
                Some(true)
            } else if let Some(l) = log.lines().find(|l| l.contains("fast path unavailable")) {
                assert!(
                    !l.contains("Verifier output"),
                    "the kernel's verifier rejected the program: {l}"
                );
                eprintln!("skipped: {l}");
                Some(false)
            } else {
                None
            }
        });
        if attached != Some(true) {
            return None;
        }
    }
    Some(daemon)
}

/// One party: a socket in its namespace, sending numbered PCMU packets on a thread until
/// stopped, and a receiver thread recording every sequence number that arrives (with the
/// source it came from).
struct Party {
    sock: Arc<UdpSocket>,
    ssrc: u32,
}

struct Flow {
    stop: Arc<AtomicBool>,
    sender: JoinHandle<u16>,
    receiver: JoinHandle<(HashMap<u16, u32>, Vec<SocketAddr>)>,
}

impl Party {
    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Send to `dest` every `gap` from sequence 0 (on a thread), and receive what the other
    /// party sends this one (on another thread).
    fn flow(&self, dest: SocketAddr, gap: Duration) -> Flow {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, ssrc) = (self.sock.clone(), stop.clone(), self.ssrc);
        let sender = std::thread::spawn(move || {
            let mut seq: u16 = 0;
            let payload = [0x55u8; 160];
            // Bounded: at most 60 s of packets.
            let limit = Instant::now() + Duration::from_secs(60);
            while !st.load(Ordering::Relaxed) && Instant::now() < limit {
                let p = rtp_packet(0, seq, u32::from(seq) * 160, ssrc, &payload);
                s.send_to(&p, dest).expect("send");
                seq += 1;
                std::thread::sleep(gap);
            }
            seq
        });
        let (r, st) = (self.sock.clone(), stop.clone());
        r.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let receiver = std::thread::spawn(move || {
            let mut seen: HashMap<u16, u32> = HashMap::new();
            let mut sources = Vec::new();
            let mut buf = [0u8; 2048];
            let mut quiet_since: Option<Instant> = None;
            let limit = Instant::now() + Duration::from_secs(70);
            while Instant::now() < limit {
                match r.recv_from(&mut buf) {
                    Ok((n, from)) if n >= 12 => {
                        quiet_since = None;
                        *seen
                            .entry(u16::from_be_bytes([buf[2], buf[3]]))
                            .or_default() += 1;
                        if !sources.contains(&from) {
                            sources.push(from);
                        }
                    }
                    _ => {
                        // After the sender stopped, 500 ms of silence ends the flow.
                        if st.load(Ordering::Relaxed) {
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > Duration::from_millis(500) {
                                break;
                            }
                        }
                    }
                }
            }
            (seen, sources)
        });
        Flow {
            stop,
            sender,
            receiver,
        }
    }
}

/// What one direction carried: packets sent, the sequence numbers the other party received
/// (with how often), and the sources they came from.
struct Carried {
    sent: u16,
    seen: HashMap<u16, u32>,
    sources: Vec<SocketAddr>,
}

/// Stop both parties' flows; what A sent (and B received), what B sent (and A received).
fn finish(a: Flow, b: Flow) -> (Carried, Carried) {
    a.stop.store(true, Ordering::Relaxed);
    b.stop.store(true, Ordering::Relaxed);
    let sent_a = a.sender.join().expect("sender");
    let sent_b = b.sender.join().expect("sender");
    let (seen_at_a, src_at_a) = a.receiver.join().expect("receiver");
    let (seen_at_b, src_at_b) = b.receiver.join().expect("receiver");
    (
        Carried {
            sent: sent_a,
            seen: seen_at_b,
            sources: src_at_b,
        },
        Carried {
            sent: sent_b,
            seen: seen_at_a,
            sources: src_at_a,
        },
    )
}

/// Every packet sent arrived exactly once.
fn assert_exactly_once(what: &str, c: &Carried) {
    let (sent, seen) = (c.sent, &c.seen);
    let missing: Vec<u16> = (0..sent).filter(|s| !seen.contains_key(s)).collect();
    let dup: Vec<(u16, u32)> = seen
        .iter()
        .filter(|(_, &n)| n != 1)
        .map(|(&s, &n)| (s, n))
        .collect();
    assert!(
        missing.is_empty() && dup.is_empty() && seen.len() == usize::from(sent),
        "{what}: sent {sent}, received {} distinct; missing {missing:?}, duplicated {dup:?}",
        seen.len()
    );
}

struct Call {
    id: String,
    a: Party,
    b: Party,
    /// Where A and B send (the engine's ports for each).
    a_dest: SocketAddr,
    b_dest: SocketAddr,
}

fn offer_answer(
    ng: &NgClient,
    id: &str,
    a: &Party,
    b: &Party,
    version: u32,
) -> (SocketAddr, SocketAddr) {
    let from_tag = format!("{id}-a");
    let offer = ng.offer(
        id,
        &from_tag,
        &audio_sdp(a.addr().ip(), a.addr().port(), version, "sendrecv"),
    );
    let b_dest = parse_reply_sdp(&offer).audio_addr();
    let answer = ng.answer(
        id,
        &from_tag,
        &format!("{id}-b"),
        &audio_sdp(b.addr().ip(), b.addr().port(), version, "sendrecv"),
    );
    let a_dest = parse_reply_sdp(&answer).audio_addr();
    (a_dest, b_dest)
}

fn setup(net: &Net, ng: &NgClient, id: &str) -> Call {
    setup_on(net, ng, id, V4)
}

fn setup_on(net: &Net, ng: &NgClient, id: &str, hosts: Hosts) -> Call {
    setup_between(net, ng, id, hosts, hosts.callee)
}

/// [`setup_on`], with the callee at `callee`.
fn setup_between(net: &Net, ng: &NgClient, id: &str, hosts: Hosts, callee: IpAddr) -> Call {
    let a = Party {
        sock: Arc::new(net.udp(0, hosts.caller)),
        ssrc: 0x0A0A_0001,
    };
    let b = Party {
        sock: Arc::new(net.udp(2, callee)),
        ssrc: 0x0B0B_0002,
    };
    let (a_dest, b_dest) = offer_answer(ng, id, &a, &b, 1);
    assert_eq!(a_dest.ip(), hosts.engine);
    assert_eq!(b_dest.ip(), hosts.engine);
    Call {
        id: id.to_owned(),
        a,
        b,
        a_dest,
        b_dest,
    }
}

/// The `flags` of the call's RTP streams in `query`, one list per stream.
fn stream_flags(ng: &NgClient, id: &str) -> Vec<Vec<String>> {
    let q = ng.query(id).expect("query");
    let mut out = Vec::new();
    let Some(tags) = q.get("tags").and_then(Value::as_dict) else {
        return out;
    };
    for (_, tag) in tags {
        for media in tag.get("medias").and_then(Value::as_list).unwrap_or(&[]) {
            for s in media.get("streams").and_then(Value::as_list).unwrap_or(&[]) {
                let flags: Vec<String> = s
                    .get("flags")
                    .and_then(Value::as_list)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect();
                if flags.iter().any(|f| f == "RTP") {
                    out.push(flags);
                }
            }
        }
    }
    out
}

fn kernelized(ng: &NgClient, id: &str) -> usize {
    stream_flags(ng, id)
        .iter()
        .filter(|f| f.iter().any(|x| x == "kernelized"))
        .count()
}

/// Packets and bytes of the RTP stream whose endpoint is `party` in `query`.
fn stream_counts(ng: &NgClient, id: &str, party: SocketAddr) -> Option<(i64, i64)> {
    let q = ng.query(id).ok()?;
    for (_, tag) in q.get("tags")?.as_dict()? {
        for media in tag.get("medias")?.as_list()? {
            for s in media.get("streams")?.as_list()? {
                let ep = s.get("endpoint")?;
                let port = ep.get("port")?.as_int()?;
                if port == i64::from(party.port()) {
                    let st = s.get("stats")?;
                    return Some((st.get("packets")?.as_int()?, st.get("bytes")?.as_int()?));
                }
            }
        }
    }
    None
}

fn fast_packets(http: &HttpClient) -> f64 {
    metric(&http.metrics(), "ngmedia_fast_path_packets_total").unwrap_or(0.0)
}

fn xdp_packets(http: &HttpClient) -> f64 {
    metric(&http.metrics(), "ngmedia_fast_path_xdp_packets_total").unwrap_or(0.0)
}

/// The `interfaces=` field of the engine's start line: `name=xdp` or `name=tc(why)` each.
fn hooks(daemon: &Daemon) -> Vec<String> {
    let log = daemon.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("eBPF program attached"))
        .unwrap_or_default();
    let list = line.split("interfaces=").nth(1).unwrap_or_default();
    let list = list.split(" capacity=").next().unwrap_or_default();
    list.split(", ").map(str::to_owned).collect()
}

/// How interface `name` was hooked, per [`hooks`].
fn hook_of(hooks: &[String], name: &str) -> String {
    let prefix = format!("{name}=");
    hooks
        .iter()
        .find_map(|h| h.strip_prefix(&prefix))
        .unwrap_or_default()
        .to_owned()
}

/// Whether `dev` in namespace `ns` has an XDP program attached (per `ip link`).
fn has_xdp(ns: &str, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "link", "show", "dev", dev])
        .output()
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

fn fast_entries(http: &HttpClient) -> f64 {
    metric(&http.metrics(), "ngmedia_fast_path_entries").unwrap_or(-1.0)
}

#[test]
fn kernel_relays_established_rtp_across_veth_and_counts_it() {
    relays_and_counts("r", V4);
}

#[test]
fn kernel_relays_established_rtp_over_ipv6_and_counts_it() {
    relays_and_counts("r6", V6);
}

fn relays_and_counts(tag: &str, hosts: Hosts) {
    let Some(net) = Net::new(tag) else { return };
    net.enter(1);
    let Some(daemon) = engine_on(hosts.engine, "on", &[]) else {
        return;
    };
    let ng = daemon.client();
    let http = daemon.http_client();
    let call = setup_on(&net, &ng, "fp-relay", hosts);
    let gap = Duration::from_millis(5);
    let fa = call.a.flow(call.a_dest, gap);
    let fb = call.b.flow(call.b_dest, gap);
    // The latch confirms after the 3 s learning window; then both directions go to the
    // kernel.
    let both = wait_for(Duration::from_secs(8), || {
        (kernelized(&ng, &call.id) == 2).then_some(())
    });
    assert!(
        both.is_some(),
        "not offloaded: {:?}",
        stream_flags(&ng, &call.id)
    );
    assert_eq!(fast_entries(&http), 2.0);
    // These interfaces do not forward: XDP's route lookup would refuse, TC relays.
    let line = hooks(&daemon);
    assert_eq!(hook_of(&line, "ve1"), "tc(does not forward)", "{line:?}");
    let before = fast_packets(&http);
    std::thread::sleep(Duration::from_secs(2));
    let (ab, ba) = finish(fa, fb);
    let (sent_a, sent_b) = (ab.sent, ba.sent);
    // Media flowed, exactly once, from the engine's ports.
    assert_exactly_once("A→B", &ab);
    assert_exactly_once("B→A", &ba);
    assert_eq!(
        ab.sources,
        vec![call.b_dest],
        "B hears the engine's port it sends to"
    );
    assert_eq!(
        ba.sources,
        vec![call.a_dest],
        "A hears the engine's port it sends to"
    );
    // The kernel carried the last 2 s: ~400 packets each way at 5 ms (the counters are
    // folded in every 0.5 s).
    std::thread::sleep(Duration::from_millis(700));
    let carried = fast_packets(&http) - before;
    assert!(carried >= 500.0, "kernel relayed only {carried} packets");
    assert_eq!(
        xdp_packets(&http),
        0.0,
        "XDP forwarded without forwarding on"
    );
    // The stream counters are user space's and the kernel's together, to the packet.
    let (pa, ba) = stream_counts(&ng, &call.id, call.a.addr()).expect("A's stream");
    let (pb, bb) = stream_counts(&ng, &call.id, call.b.addr()).expect("B's stream");
    assert_eq!((pa, ba), (i64::from(sent_a), i64::from(sent_a) * 172));
    assert_eq!((pb, bb), (i64::from(sent_b), i64::from(sent_b) * 172));
    // Nothing was lost, and no error was counted.
    let m = http.metrics();
    assert_eq!(
        metric(&m, "ngmedia_rtp_packets_lost_total"),
        Some(0.0),
        "{m}"
    );
    // Delete: the entries go with the call.
    ng.ok(dict! { "command" => "delete", "call-id" => call.id.as_str(), "delete-delay" => 0i64 });
    let gone = wait_for(Duration::from_secs(2), || {
        (fast_entries(&http) == 0.0).then_some(())
    });
    assert!(gone.is_some(), "entries left after delete");
}

#[test]
fn xdp_relays_where_the_driver_runs_it_and_loopback_stays_at_tc() {
    xdp_relays("x", V4);
}

#[test]
fn xdp_relays_over_ipv6() {
    xdp_relays("x6", V6);
}

/// With forwarding on in the engine's namespace, the veths get the program at XDP (veth
/// runs XDP natively), their peers a pass-through program (so that frames redirected into
/// the veth are taken), and the media goes through XDP: its counter, not TC's, grows, with
/// the same per-stream figures. Loopback has no native XDP: TC ingress there.
fn xdp_relays(tag: &str, hosts: Hosts) {
    let Some(net) = Net::new(tag) else { return };
    net.enter(1);
    for fam in ["ipv4", "ipv6"] {
        std::fs::write(format!("/proc/sys/net/{fam}/conf/all/forwarding"), "1")
            .expect("forwarding on in the engine's namespace");
    }
    let Some(mut daemon) = engine_on(hosts.engine, "on", &[]) else {
        return;
    };
    let line = hooks(&daemon);
    assert_eq!(hook_of(&line, "ve1"), "xdp", "{line:?}");
    assert_eq!(hook_of(&line, "ve2"), "xdp", "{line:?}");
    assert!(
        hook_of(&line, "lo").starts_with("tc(no native XDP"),
        "{line:?}"
    );
    // The veths' far ends got a pass-through program.
    let [c, _, b] = &net.names.clone();
    // The caller's veth sends full checksums, as a network would deliver them (XDP updates
    // those incrementally); the callee's leaves them to the hardware that a veth does not
    // have (XDP computes those).
    net.tx_checksum_off(0, "vc");
    assert!(
        has_xdp(c, "vc") && has_xdp(b, "vb"),
        "no XDP on the veth peers"
    );
    let ng = daemon.client();
    let http = daemon.http_client();
    let call = setup_on(&net, &ng, "fp-xdp", hosts);
    let gap = Duration::from_millis(5);
    let fa = call.a.flow(call.a_dest, gap);
    let fb = call.b.flow(call.b_dest, gap);
    let both = wait_for(Duration::from_secs(8), || {
        (kernelized(&ng, &call.id) == 2).then_some(())
    });
    assert!(
        both.is_some(),
        "not offloaded: {:?}",
        stream_flags(&ng, &call.id)
    );
    let (xdp_before, all_before) = (xdp_packets(&http), fast_packets(&http));
    std::thread::sleep(Duration::from_secs(2));
    let (ab, ba) = finish(fa, fb);
    assert_exactly_once("A→B", &ab);
    assert_exactly_once("B→A", &ba);
    assert_eq!(ab.sources, vec![call.b_dest]);
    assert_eq!(ba.sources, vec![call.a_dest]);
    std::thread::sleep(Duration::from_millis(700));
    // ~400 packets each way in 2 s, all of them at XDP once offloaded.
    let xdp = xdp_packets(&http) - xdp_before;
    let all = fast_packets(&http) - all_before;
    assert!(
        xdp >= 500.0,
        "XDP forwarded only {xdp} packets (fast path {all})"
    );
    assert!(all >= xdp, "XDP {xdp} packets, fast path in all {all}");
    let (pa, ba_bytes) = stream_counts(&ng, &call.id, call.a.addr()).expect("A's stream");
    let (pb, _) = stream_counts(&ng, &call.id, call.b.addr()).expect("B's stream");
    assert_eq!(
        (pa, ba_bytes),
        (i64::from(ab.sent), i64::from(ab.sent) * 172)
    );
    assert_eq!(pb, i64::from(ba.sent));
    // A clean stop takes the pass-through programs off the peers.
    assert!(daemon.terminate(Duration::from_secs(5)).is_some());
    assert!(
        !has_xdp(c, "vc") && !has_xdp(b, "vb"),
        "XDP left on the veth peers"
    );
}

#[test]
fn an_interface_added_after_start_gets_the_program() {
    let Some(net) = Net::new("l") else { return };
    net.enter(1);
    let Some(daemon) = engine("on", &[]) else {
        return;
    };
    net.add_late_link();
    let attached = wait_for(Duration::from_secs(5), || {
        daemon
            .log_text()
            .lines()
            .any(|l| l.contains("attached to a new interface") && l.contains("ve3"))
            .then_some(())
    });
    assert!(attached.is_some(), "{}", daemon.log_text());
    // The callee now sends the engine through ve3: both directions still go to the kernel.
    let ng = daemon.client();
    let http = daemon.http_client();
    let callee = IpAddr::V4(Ipv4Addr::new(10, 73, 0, 2));
    let call = setup_between(&net, &ng, "fp-late", V4, callee);
    let gap = Duration::from_millis(5);
    let fa = call.a.flow(call.a_dest, gap);
    let fb = call.b.flow(call.b_dest, gap);
    let both = wait_for(Duration::from_secs(8), || {
        (kernelized(&ng, &call.id) == 2).then_some(())
    });
    assert!(both.is_some(), "{:?}", stream_flags(&ng, &call.id));
    let before = fast_packets(&http);
    std::thread::sleep(Duration::from_secs(2));
    let (ab, ba) = finish(fa, fb);
    assert_exactly_once("A→B", &ab);
    assert_exactly_once("B→A", &ba);
    std::thread::sleep(Duration::from_millis(700));
    // ~400 packets a direction in 2 s: more than 500 only if B→A, which enters on ve3, was
    // relayed by the kernel too.
    let carried = fast_packets(&http) - before;
    assert!(carried >= 500.0, "kernel relayed only {carried} packets");
}

#[test]
fn recording_and_reinvite_move_the_stream_back_without_loss_or_duplicates() {
    let Some(net) = Net::new("m") else { return };
    net.enter(1);
    let dir = std::env::temp_dir().join(format!("ngmedia-fp-rec-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let rec = format!("--recording-dir={}", dir.display());
    let Some(daemon) = engine("on", &[&rec]) else {
        return;
    };
    let ng = daemon.client();
    let http = daemon.http_client();
    let call = setup(&net, &ng, "fp-move");
    let gap = Duration::from_millis(4);
    let fa = call.a.flow(call.a_dest, gap);
    let fb = call.b.flow(call.b_dest, gap);
    let offloaded = |n: usize, limit: u64| {
        wait_for(Duration::from_secs(limit), || {
            (kernelized(&ng, &call.id) == n).then_some(())
        })
        .is_some()
    };
    assert!(
        offloaded(2, 8),
        "not offloaded: {:?}",
        stream_flags(&ng, &call.id)
    );
    std::thread::sleep(Duration::from_millis(500));
    let cmd = |c: &str| {
        ng.ok(dict! { "command" => c, "call-id" => call.id.as_str(), "from-tag" => format!("{}-a", call.id) });
    };
    // Recording needs every packet in user space: the entries go before it starts.
    cmd("start recording");
    assert!(offloaded(0, 1), "still kernelized while recording");
    let user_before = fast_packets(&http);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        kernelized(&ng, &call.id),
        0,
        "offloaded again while recording"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        fast_packets(&http),
        user_before,
        "the kernel relayed packets while recording"
    );
    cmd("stop recording");
    assert!(offloaded(2, 3), "not offloaded after the recording stopped");
    std::thread::sleep(Duration::from_millis(500));
    // A re-INVITE (same ports, new SDP version) while the kernel relays.
    let (a2, b2) = offer_answer(&ng, &call.id, &call.a, &call.b, 2);
    assert_eq!((a2, b2), (call.a_dest, call.b_dest));
    std::thread::sleep(Duration::from_millis(300));
    assert!(offloaded(2, 3), "not offloaded after the re-INVITE");
    std::thread::sleep(Duration::from_millis(500));
    let (ab, ba) = finish(fa, fb);
    let (sent_a, sent_b) = (ab.sent, ba.sent);
    assert_exactly_once("A→B", &ab);
    assert_exactly_once("B→A", &ba);
    std::thread::sleep(Duration::from_millis(700));
    let (pa, _) = stream_counts(&ng, &call.id, call.a.addr()).expect("A's stream");
    let (pb, _) = stream_counts(&ng, &call.id, call.b.addr()).expect("B's stream");
    assert_eq!((pa, pb), (i64::from(sent_a), i64::from(sent_b)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_timeout_sees_kernel_traffic_and_ends_the_call_when_it_stops() {
    let Some(net) = Net::new("t") else { return };
    net.enter(1);
    let Some(daemon) = engine("on", &["--timeout", "2"]) else {
        return;
    };
    let ng = daemon.client();
    let http = daemon.http_client();
    let call = setup(&net, &ng, "fp-idle");
    let fa = call.a.flow(call.a_dest, Duration::from_millis(10));
    let fb = call.b.flow(call.b_dest, Duration::from_millis(10));
    assert!(
        wait_for(Duration::from_secs(8), || (kernelized(&ng, &call.id) == 2)
            .then_some(()))
        .is_some(),
        "not offloaded"
    );
    // Twice the timeout with only the kernel relaying: the call stays.
    let before = fast_packets(&http);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        ng.list().contains(&call.id),
        "call ended while the kernel relayed its media"
    );
    assert!(fast_packets(&http) - before > 500.0);
    let stopped = Instant::now();
    let _ = finish(fa, fb);
    let gone = wait_for(Duration::from_secs(8), || {
        (!ng.list().contains(&call.id)).then(Instant::now)
    })
    .expect("call still listed 8 s after its media stopped");
    let after = gone - stopped;
    assert!(
        after >= Duration::from_millis(1000),
        "ended {after:?} after media stopped, before the 2 s timeout"
    );
    // Its entries went with it.
    assert_eq!(fast_entries(&http), 0.0);
}

#[test]
fn fast_path_off_relays_in_user_space_as_before() {
    let Some(net) = Net::new("o") else { return };
    net.enter(1);
    let Some(daemon) = engine("off", &[]) else {
        return;
    };
    let ng = daemon.client();
    let http = daemon.http_client();
    let call = setup(&net, &ng, "fp-off");
    let fa = call.a.flow(call.a_dest, Duration::from_millis(5));
    let fb = call.b.flow(call.b_dest, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(kernelized(&ng, &call.id), 0);
    let (ab, ba) = finish(fa, fb);
    assert_exactly_once("A→B", &ab);
    assert_exactly_once("B→A", &ba);
    let m = http.metrics();
    assert_eq!(metric(&m, "ngmedia_fast_path_packets_total"), Some(0.0));
    assert_eq!(metric(&m, "ngmedia_fast_path_entries"), Some(0.0));
    assert!(!daemon.log_text().contains("eBPF program attached"));
    let (pa, _) = stream_counts(&ng, &call.id, call.a.addr()).expect("A's stream");
    assert_eq!(pa, i64::from(ab.sent));
}

#[test]
fn a_killed_engine_leaves_nothing_forwarding() {
    let Some(net) = Net::new("k") else { return };
    net.enter(1);
    let Some(mut daemon) = engine("on", &[]) else {
        return;
    };
    let ng = daemon.client();
    let call = setup(&net, &ng, "fp-kill");
    let fa = call.a.flow(call.a_dest, Duration::from_millis(5));
    let fb = call.b.flow(call.b_dest, Duration::from_millis(5));
    assert!(
        wait_for(Duration::from_secs(8), || (kernelized(&ng, &call.id) == 2)
            .then_some(()))
        .is_some(),
        "not offloaded"
    );
    // SIGKILL: no clean-up code runs; the kernel drops the program with the process's links.
    daemon.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let _ = finish(fa, fb);
    // Media sent now reaches nobody: B's socket still exists and hears nothing.
    let b = call.b.sock.clone();
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while b.recv_from(&mut buf).is_ok() {}
    for seq in 0..20u16 {
        let p = rtp_packet(0, 60000 + seq, 0, 0x0A0A_0001, &[0u8; 160]);
        call.a.sock.send_to(&p, call.a_dest).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = b.recv_from(&mut buf).ok();
    assert!(
        got.is_none(),
        "a packet was relayed after the engine died: {got:?}"
    );
}
