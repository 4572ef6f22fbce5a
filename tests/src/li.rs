//! Lawful-interception helpers: a loopback X3 collector with its own PDU parser (written from
//! ETSI TS 103 221-2, independent of the daemon's encoder) and a client for the LI API.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{request, HttpResponse};

/// One parsed PDU with every header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X3Pdu {
    pub version: u16,
    pub pdu_type: u16,
    pub header_length: u32,
    pub payload_length: u32,
    pub payload_format: u16,
    pub payload_direction: u16,
    pub xid: [u8; 16],
    pub correlation_id: u64,
    /// Conditional attributes (type, contents) in order.
    pub attributes: Vec<(u16, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl X3Pdu {
    fn attr(&self, kind: u16) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// Attribute 8 (32-bit sequence number).
    pub fn sequence(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.attr(8)?.try_into().ok()?))
    }

    /// Attribute 9 (seconds, nanoseconds).
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        let v = self.attr(9)?;
        (v.len() == 8).then(|| {
            (
                u32::from_be_bytes(v[..4].try_into().unwrap()),
                u32::from_be_bytes(v[4..].try_into().unwrap()),
            )
        })
    }
}

/// Read one PDU from a stream; `None` at EOF or on a read error.
pub fn read_pdu(stream: &mut impl Read) -> Option<X3Pdu> {
    let mut head = [0u8; 40];
    stream.read_exact(&mut head).ok()?;
    let u16_at = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap());
    let header_length = u32_at(4);
    let payload_length = u32_at(8);
    assert!(
        header_length >= 40,
        "header length {header_length} below 40"
    );
    let mut rest = vec![0u8; header_length as usize - 40];
    stream.read_exact(&mut rest).ok()?;
    let mut attributes = Vec::new();
    let mut at = 0;
    while at < rest.len() {
        let kind = u16::from_be_bytes([rest[at], rest[at + 1]]);
        let len = u16::from_be_bytes([rest[at + 2], rest[at + 3]]) as usize;
        attributes.push((kind, rest[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    assert_eq!(at, rest.len(), "attributes fill the header exactly");
    let mut payload = vec![0u8; payload_length as usize];
    stream.read_exact(&mut payload).ok()?;
    Some(X3Pdu {
        version: u16_at(0),
        pdu_type: u16_at(2),
        header_length,
        payload_length,
        payload_format: u16_at(12),
        payload_direction: u16_at(14),
        xid: head[16..32].try_into().unwrap(),
        correlation_id: u64::from_be_bytes(head[32..40].try_into().unwrap()),
        attributes,
        payload,
    })
}

/// A TCP X3 collector on loopback: accepts every connection and records every PDU, or
/// (stalled) accepts and never reads.
pub struct Collector {
    pub addr: SocketAddr,
    pub pdus: Arc<Mutex<Vec<X3Pdu>>>,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Collector {
    pub fn start() -> Collector {
        Collector::new(false)
    }

    /// Accepts connections but never reads from them.
    pub fn stalled() -> Collector {
        Collector::new(true)
    }

    fn new(stalled: bool) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let pdus = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (p, s, h) = (pdus.clone(), stop.clone(), held.clone());
        std::thread::spawn(move || {
            // Bounded: the collector lives at most as long as a test.
            for _ in 0..(120_000 / 5) {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        if stalled {
                            h.lock().unwrap().push(stream);
                            continue;
                        }
                        let (p, s) = (p.clone(), s.clone());
                        std::thread::spawn(move || {
                            let mut stream = stream;
                            stream
                                .set_read_timeout(Some(Duration::from_secs(60)))
                                .unwrap();
                            while !s.load(Ordering::Relaxed) {
                                match read_pdu(&mut stream) {
                                    Some(pdu) => p.lock().unwrap().push(pdu),
                                    None => return,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Collector {
            addr,
            pdus,
            stop,
            held,
        }
    }

    /// X3 PDUs (type 2) received so far.
    pub fn x3(&self) -> Vec<X3Pdu> {
        self.pdus
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.pdu_type == 2)
            .cloned()
            .collect()
    }

    pub fn connections_held(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A client of the LI API.
pub struct LiClient {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl LiClient {
    pub fn send(&self, method: &str, path: &str, body: &str) -> HttpResponse {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        request(self.addr, method, path, &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path} to LI {}: {e}", self.addr))
    }

    /// `POST /li/tasks`; panics unless 201.
    pub fn create(&self, body: &serde_json::Value) -> serde_json::Value {
        let r = self.send("POST", "/li/tasks", &body.to_string());
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }
}

/// A UUID's 16 bytes from its text.
pub fn uuid_bytes(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The LI token the test daemons use.
pub const TOKEN: &str = "li-test-token-7f3a";

/// A fresh folder for a daemon's LI state.
pub fn li_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ngmedia-li-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Start a daemon with the LI listener on a free loopback port and `dir` as LI folder.
pub fn start_daemon(dir: &std::path::Path, extra: &[&str]) -> (crate::Daemon, LiClient) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut args = vec![
        format!("--listen-li={addr}"),
        format!("--li-token={TOKEN}"),
        format!("--li-dir={}", dir.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = crate::Daemon::start(&args);
    (
        daemon,
        LiClient {
            addr,
            token: Some(TOKEN.to_owned()),
        },
    )
}

/// A task body: X3 to `collector`, target given as JSON.
pub fn x3_task(
    xid: &str,
    target: serde_json::Value,
    collector: SocketAddr,
    correlation: u64,
) -> serde_json::Value {
    serde_json::json!({
        "xid": xid,
        "target": target,
        "destination": { "type": "x3", "address": collector.to_string() },
        "correlation_id": correlation,
    })
}
