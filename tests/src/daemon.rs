//! Start and stop the real `ngmedia` binary on loopback.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngmedia_engine::sync;

use crate::http::HttpClient;
use crate::ng::NgClient;

/// Media ports are handed out in blocks so daemons of parallel tests never share ports:
/// 50 blocks of 200 over 20000–29999 (below the kernel's ephemeral range, where the test
/// endpoints live).
const MEDIA_BASE: u16 = 20000;
const MEDIA_BLOCK: u16 = 200;
const MEDIA_BLOCKS: usize = 50;
/// Block `i` is owned by whoever holds UDP 127.0.0.1:(LOCK_BASE + i). Binding that port is an
/// exclusive lock that works across the separate processes nextest runs tests in, and the
/// kernel releases it if a test process dies.
const LOCK_BASE: u16 = 19900;
/// How long the daemon gets to answer its first `ping`.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long SIGTERM gets before SIGKILL when a test drops its daemon.
const STOP_LIMIT: Duration = Duration::from_secs(5);

static NEXT_BLOCK: AtomicUsize = AtomicUsize::new(0);

/// A running `ngmedia`, killed when dropped.
pub struct Daemon {
    child: Child,
    /// Where the daemon listens for ng.
    pub ng: SocketAddr,
    /// Where the daemon serves its HTTP API.
    pub http: SocketAddr,
    pub port_min: u16,
    pub port_max: u16,
    /// Every stderr line with the moment the harness read it.
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Holds this daemon's media port block (see [`LOCK_BASE`]); daemons started beside
    /// another one share its lock.
    _block_lock: Option<UdpSocket>,
}

/// Where a daemon listens: ng and HTTP sockets and its media port range (on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonPorts {
    pub ng: SocketAddr,
    pub http: SocketAddr,
    pub port_min: u16,
    pub port_max: u16,
}

/// The binary under test: `NGMEDIA_BIN`, else `ngmedia` in the target directory this test
/// executable was built into.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NGMEDIA_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/ngmedia
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join("ngmedia");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --bins` first (or set NGMEDIA_BIN)",
        bin.display()
    );
    bin
}

/// The `ngmedia-ctl` binary next to the daemon (`NGMEDIA_CTL_BIN` overrides it).
pub fn ctl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NGMEDIA_CTL_BIN") {
        return PathBuf::from(path);
    }
    let bin = binary().with_file_name("ngmedia-ctl");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --bins` first (or set NGMEDIA_CTL_BIN)",
        bin.display()
    );
    bin
}

fn lock_media_block() -> (usize, UdpSocket) {
    let start = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize;
    for n in 0..MEDIA_BLOCKS {
        let block = (start + n) % MEDIA_BLOCKS;
        if let Ok(sock) = UdpSocket::bind(("127.0.0.1", LOCK_BASE + block as u16)) {
            return (block, sock);
        }
    }
    panic!("all {MEDIA_BLOCKS} media port blocks are in use by other tests");
}

fn free_udp_port() -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    sock.local_addr().expect("local address").port()
}

pub(crate) fn free_tcp_port() -> u16 {
    let sock = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral TCP port");
    sock.local_addr().expect("local address").port()
}

impl Daemon {
    /// Start with loopback defaults plus `extra` flags (which may override them), and wait
    /// until it answers `ping`.
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_with(MEDIA_BLOCK, extra, &[])
    }

    /// Like [`Daemon::start`], with only the first `ports` media ports of the block.
    pub fn start_with_ports(ports: u16, extra: &[&str]) -> Daemon {
        Daemon::start_with(ports, extra, &[])
    }

    /// As [`start`](Self::start), with environment variables set for the daemon. Nothing
    /// `NGMEDIA_*` is inherited from the test's own environment.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(MEDIA_BLOCK, extra, env)
    }

    fn start_with(ports: u16, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        assert!(
            (4..=MEDIA_BLOCK).contains(&ports),
            "a daemon needs 4 to {MEDIA_BLOCK} ports"
        );
        let (block, lock) = lock_media_block();
        let port_min = MEDIA_BASE + block as u16 * MEDIA_BLOCK;
        let port_max = port_min + ports - 1;
        let ng: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        // The HTTP API always listens, so parallel daemons need their own ports too; a test
        // that passes --listen-http itself keeps its own.
        let http_flag = extra
            .iter()
            .position(|a| *a == "--listen-http" || a.starts_with("--listen-http="));
        let http: SocketAddr = match http_flag {
            Some(i) => {
                let value = match extra[i].split_once('=') {
                    Some((_, v)) => v,
                    None => extra.get(i + 1).copied().unwrap_or_default(),
                };
                value.parse().expect("--listen-http ADDR:PORT in tests")
            }
            None => ([127, 0, 0, 1], free_tcp_port()).into(),
        };
        let ports = DaemonPorts {
            ng,
            http,
            port_min,
            port_max,
        };
        Daemon::spawn(ports, http_flag.is_none(), Some(lock), extra, env)
    }

    /// Start with exactly the arguments `argv` builds from a fresh set of ports (nothing
    /// added: no `--config none`, no interface), e.g. an rtpengine command line verbatim; wait
    /// until it answers `ping` on `ports.ng`.
    pub fn start_verbatim(argv: impl FnOnce(&DaemonPorts) -> Vec<String>) -> Daemon {
        let (block, lock) = lock_media_block();
        let port_min = MEDIA_BASE + block as u16 * MEDIA_BLOCK;
        let ports = DaemonPorts {
            ng: ([127, 0, 0, 1], free_udp_port()).into(),
            http: ([127, 0, 0, 1], free_tcp_port()).into(),
            port_min,
            port_max: port_min + MEDIA_BLOCK - 1,
        };
        let args = argv(&ports);
        let mut cmd = Command::new(binary());
        cmd.env_remove("NGMEDIA_HTTP_TOKEN").args(&args);
        Daemon::launch(cmd, ports, Some(lock))
    }

    /// Start on exactly `ports` (nothing is reserved for it: the caller owns these ports,
    /// typically because another daemon of the same test used them before), and wait until
    /// it answers `ping`. `--listen-http` in `extra` is not allowed here.
    pub fn start_at(ports: DaemonPorts, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        assert!(
            !extra
                .iter()
                .any(|a| *a == "--listen-http" || a.starts_with("--listen-http=")),
            "start_at takes the HTTP address from `ports`"
        );
        Daemon::spawn(ports, true, None, extra, env)
    }

    /// Start a second engine on the same interface (127.0.0.1) and media port range as this
    /// one, with its own fresh ng and HTTP ports: a restarted engine after a crash, or a
    /// standby. It keeps this daemon's port block reserved even if this one is dropped first.
    pub fn start_beside(&self, extra: &[&str]) -> Daemon {
        let ports = DaemonPorts {
            ng: ([127, 0, 0, 1], free_udp_port()).into(),
            http: ([127, 0, 0, 1], free_tcp_port()).into(),
            port_min: self.port_min,
            port_max: self.port_max,
        };
        let lock = self._block_lock.as_ref().and_then(|l| l.try_clone().ok());
        let mut daemon = Daemon::start_at(ports, extra, &[]);
        daemon._block_lock = lock;
        daemon
    }

    /// This daemon's ng, HTTP and media ports.
    pub fn ports(&self) -> DaemonPorts {
        DaemonPorts {
            ng: self.ng,
            http: self.http,
            port_min: self.port_min,
            port_max: self.port_max,
        }
    }

    fn spawn(
        ports: DaemonPorts,
        add_http_flag: bool,
        lock: Option<UdpSocket>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let DaemonPorts {
            ng,
            http,
            port_min,
            port_max,
        } = ports;
        let mut cmd = Command::new(binary());
        cmd.env_remove("NGMEDIA_HTTP_TOKEN")
            .envs(env.iter().copied());
        if add_http_flag {
            cmd.arg(format!("--listen-http={http}"));
        }
        cmd.args([
            "--config",
            "none",
            "--interface",
            "127.0.0.1",
            "--log-level",
            "debug",
        ])
        .arg(format!("--listen-ng={ng}"))
        .arg(format!("--port-min={port_min}"))
        .arg(format!("--port-max={port_max}"))
        .args(extra);
        Daemon::launch(cmd, ports, lock)
    }

    fn launch(mut cmd: Command, ports: DaemonPorts, lock: Option<UdpSocket>) -> Daemon {
        let DaemonPorts {
            ng,
            http,
            port_min,
            port_max,
        } = ports;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", binary()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sync::lock(&sink).push((Instant::now(), line));
            }
        });
        let mut daemon = Daemon {
            child,
            ng,
            http,
            port_min,
            port_max,
            log,
            _block_lock: lock,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let client = NgClient::with_timeout(self.ng, Duration::from_millis(100), 0);
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ngmedia exited during startup with {status}\n{}",
                    self.log_text()
                );
            }
            if let Ok(reply) = client.request(crate::dict! { "command" => "ping" }) {
                assert_eq!(reply.str_at("result"), Some("pong"), "ping reply {reply:?}");
                return;
            }
        }
        panic!(
            "ngmedia did not answer ping within {START_LIMIT:?}\n{}",
            self.log_text()
        );
    }

    /// An ng client for this daemon (1 s timeout, 2 retries, like a patient Kamailio).
    pub fn client(&self) -> NgClient {
        NgClient::new(self.ng)
    }

    /// An HTTP client for this daemon's API, without a token.
    pub fn http_client(&self) -> HttpClient {
        HttpClient::new(self.http)
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        let log = sync::lock(&self.log);
        let lines: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
        lines.join("\n")
    }

    /// The first log line containing `needle` and when the harness read it, waiting up to
    /// `limit` for it to appear.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> Option<(Instant, String)> {
        self.wait_for_log_line(limit, |l| l.contains(needle))
    }

    /// The first log line `matches` accepts and when the harness read it, waiting up to
    /// `limit` for it to appear.
    pub fn wait_for_log_line(
        &self,
        limit: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<(Instant, String)> {
        crate::wait_for(limit, || {
            let log = sync::lock(&self.log);
            log.iter().find(|(_, l)| matches(l)).cloned()
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill the daemon with SIGKILL (a crash: nothing is flushed or cleaned up) and reap it.
    pub fn kill9(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Child::kill sends SIGKILL on Unix.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait up to `limit` for the exit; `None` if it is still running.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.terminate(STOP_LIMIT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- ngmedia log (ng {}) ----\n{}\n----",
                self.ng,
                self.log_text()
            );
        }
    }
}

/// Run the binary with `args` (nothing added) and wait up to `limit` for it to exit by
/// itself; the exit status and everything it wrote to stderr. Panics if it is still running
/// after `limit` (it is killed first).
pub fn run_to_exit(args: &[&str], limit: Duration) -> (ExitStatus, String) {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", binary()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ngmedia {args:?} still running after {limit:?}: {}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}
