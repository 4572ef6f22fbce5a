//! Statistics published to an MQTT broker (rtpengine's `--mqtt-*` options): every
//! `--mqtt-publish-interval`, the `statistics` figures and, depending on
//! `--mqtt-publish-scope`, every call or every media of a party, as JSON (see [`message`]),
//! to `--mqtt-publish-topic`.
//!
//! A small MQTT 3.1.1 client of our own ([`packet`]) on one thread, over TCP or TLS (rustls):
//! the publishing timer only queues (a bounded queue; a full queue drops and counts), so
//! neither the timer nor anything else in the daemon ever waits on the broker. A lost
//! connection is opened again with a growing pause; messages queued meanwhile go out once it
//! is back, those beyond the queue are dropped and counted.

pub mod message;
mod packet;

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ngmedia_engine::core::snapshot::CallSnapshot;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tracing::{info, warn};

pub use message::Scope;
use packet::Incoming;

/// Messages waiting for the broker; beyond this they are dropped (and counted). The call and
/// media scopes publish one message per call or media each interval: this holds one round of
/// a busy engine, and bounds what a broker that is away can cost in memory.
pub const QUEUE: usize = 4096;
/// First pause before connecting again, doubled after each failure up to [`MAX_BACKOFF`]
/// (rtpengine retries every second; a broker that is down for long gets fewer attempts).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connecting, and waiting for any answer of the broker.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one warning per this interval about a broker out of reach.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The largest remaining length MQTT can express (3.1.1, 2.2.3).
const MAX_PACKET: usize = 268_435_455;

/// `--mqtt-*`.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// `--mqtt-host`: name or address of the broker.
    pub host: String,
    pub port: u16,
    /// `--mqtt-id`; a generated one when not given.
    pub client_id: String,
    /// Seconds; 0: no keep-alive.
    pub keepalive: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: Option<MqttTls>,
    /// 0, 1 or 2.
    pub qos: u8,
    pub topic: String,
    pub interval: Duration,
    pub scope: Scope,
}

/// `--mqtt-cafile`, `--mqtt-capath`, `--mqtt-certfile`, `--mqtt-keyfile`, `--mqtt-tls-alpn`:
/// TLS when a CA file or folder is given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MqttTls {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    /// Client certificate authentication when both are given.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub alpn: Option<String>,
}

/// Why MQTT cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("MQTT TLS configuration: {0}")]
    Tls(String),
    #[error("cannot start the MQTT thread: {0}")]
    Thread(#[from] io::Error),
}

/// Messages published, dropped on a full queue or too large, and lost with a broken
/// connection; connections made.
#[derive(Debug, Default)]
pub struct MqttCounters {
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub connects: AtomicU64,
    pub connected: AtomicBool,
}

/// The publisher the statistics timer hands messages to.
pub struct Mqtt {
    queue: SyncSender<Vec<u8>>,
    counters: Arc<MqttCounters>,
    scope: Scope,
    interval: Duration,
}

impl Mqtt {
    /// Check the TLS files and start the connection thread (which connects in the
    /// background: a broker that is not up yet is tried again).
    pub fn start(config: MqttConfig) -> Result<Arc<Mqtt>, MqttError> {
        let tls = config.tls.as_ref().map(client_config).transpose()?;
        let (queue, rx) = mpsc::sync_channel(QUEUE);
        let counters = Arc::new(MqttCounters::default());
        let c = counters.clone();
        let (scope, interval) = (config.scope, config.interval);
        info!(
            broker = %format!("{}:{}", config.host, config.port),
            topic = %config.topic,
            tls = tls.is_some(),
            "statistics go to the MQTT broker"
        );
        std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || run(&config, tls, &rx, &c))?;
        Ok(Arc::new(Mqtt {
            queue,
            counters,
            scope,
            interval,
        }))
    }

    pub fn counters(&self) -> &MqttCounters {
        &self.counters
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// One round of `--mqtt-publish-scope`: `statistics` is the reply to a `statistics`
    /// request ([`crate::ng::NgHandle::statistics`]), `calls` every call held now
    /// (none needed for the summary scope), `unix_secs` the time they were read.
    pub fn publish_round(
        &self,
        rates: &mut message::SsrcRates,
        statistics: &[u8],
        calls: &[CallSnapshot],
        unix_secs: f64,
        now: Instant,
    ) {
        let stats = message::statistics_members(statistics);
        match self.scope {
            Scope::Global => {
                self.publish(&message::global(unix_secs, stats, Some(calls), rates, now));
            }
            Scope::Summary => self.publish(&message::global(unix_secs, stats, None, rates, now)),
            Scope::Call => {
                self.publish(&message::global(unix_secs, stats, None, rates, now));
                for c in calls {
                    let members = message::call(c, rates, now);
                    self.publish(&message::message(unix_secs, members));
                }
            }
            Scope::Media => {
                self.publish(&message::global(unix_secs, stats, None, rates, now));
                for c in calls {
                    for m in message::media_messages(unix_secs, c, rates, now) {
                        self.publish(&m);
                    }
                }
            }
        }
        rates.end_round();
    }

    /// Queue one message; never waits.
    fn publish(&self, message: &serde_json::Value) {
        let body = message.to_string().into_bytes();
        if body.len() > MAX_PACKET / 2 || self.queue.try_send(body).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// A client id when `--mqtt-id` is not given, as the broker would make one: unique per run.
pub fn generated_client_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (t ^ u64::from(std::process::id())).to_be_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ngmedia-{hex}")
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> MqttError {
    MqttError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, MqttError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))
}

/// The client configuration: the CA file and every certificate of the CA folder are trusted;
/// our certificate when both files are given.
fn client_config(t: &MqttTls) -> Result<Arc<ClientConfig>, MqttError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &t.cafile {
        let found = certs(ca)?;
        if found.is_empty() {
            return Err(file_err(ca, "no certificate in the file"));
        }
        for cert in found {
            roots.add(cert).map_err(|e| file_err(ca, e))?;
        }
    }
    if let Some(dir) = &t.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e))?;
        for entry in entries.flatten() {
            // Anything in the folder that is not a PEM certificate (OpenSSL's hash links
            // point at the same files) is skipped.
            for cert in certs(&entry.path()).unwrap_or_default() {
                let _ = roots.add(cert);
            }
        }
        if roots.is_empty() {
            return Err(file_err(dir, "no certificate in the folder"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&t.certfile, &t.keyfile) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                certs(cert)?,
                PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?,
            )
            .map_err(|e| file_err(key, e))?,
        _ => builder.with_no_client_auth(),
    };
    if let Some(alpn) = t.alpn.as_deref().filter(|a| !a.is_empty()) {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Ok(Arc::new(config))
}

/// TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One session with the broker.
struct Session {
    stream: Stream,
    buf: Vec<u8>,
    next_id: u16,
}

fn broken(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

impl Session {
    /// Connect, say CONNECT, and wait for the broker to accept it.
    fn open(config: &MqttConfig, tls: Option<&Arc<ClientConfig>>) -> io::Result<Session> {
        let mut last = broken("no address");
        let mut tcp = None;
        for addr in (config.host.as_str(), config.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or(last)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let stream = match tls {
            Some(tls) => {
                let name = ServerName::try_from(config.host.clone()).map_err(broken)?;
                let conn = ClientConnection::new(tls.clone(), name).map_err(broken)?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
            None => Stream::Plain(tcp),
        };
        let mut session = Session {
            stream,
            buf: Vec::with_capacity(64),
            next_id: 0,
        };
        session.send(&packet::connect(&packet::Connect {
            client_id: &config.client_id,
            keep_alive_secs: config.keepalive,
            user: config.user.as_deref(),
            password: config.password.as_deref(),
        }))?;
        match session.next()? {
            Incoming::ConnAck { code: 0 } => Ok(session),
            Incoming::ConnAck { code } => Err(broken(format_args!(
                "the broker refused the connection: {}",
                packet::connack_reason(code)
            ))),
            other => Err(broken(format_args!("expected CONNACK, got {other:?}"))),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The next packet from the broker.
    fn next(&mut self) -> io::Result<Incoming> {
        let mut chunk = [0u8; 256];
        loop {
            if let Some((packet, used)) = packet::read(&self.buf).map_err(broken)? {
                self.buf.drain(..used);
                return Ok(packet);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(broken("the broker closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait for `want`, skipping anything else (a late PINGRESP).
    fn expect(&mut self, want: Incoming) -> io::Result<()> {
        loop {
            if self.next()? == want {
                return Ok(());
            }
        }
    }

    /// PUBLISH at the configured QoS, through to its acknowledgement.
    fn publish(&mut self, topic: &str, payload: &[u8], qos: u8) -> io::Result<()> {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let id = self.next_id;
        self.send(&packet::publish(topic, payload, qos, id, false))?;
        match qos {
            0 => Ok(()),
            1 => self.expect(Incoming::PubAck { id }),
            _ => {
                self.expect(Incoming::PubRec { id })?;
                self.send(&packet::pubrel(id))?;
                self.expect(Incoming::PubComp { id })
            }
        }
    }

    fn ping(&mut self) -> io::Result<()> {
        self.send(&packet::pingreq())?;
        self.expect(Incoming::PingResp)
    }

    fn close(mut self) {
        let _ = self.send(&packet::disconnect());
    }
}

/// The connection thread: connect, publish what is queued, keep the connection alive, and
/// connect again after a failure. Ends when the publisher is dropped.
fn run(
    config: &MqttConfig,
    tls: Option<Arc<ClientConfig>>,
    rx: &Receiver<Vec<u8>>,
    counters: &MqttCounters,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut last_warning: Option<Instant> = None;
    let mut warn_limited = |what: &str, e: &io::Error| {
        let now = Instant::now();
        if last_warning.is_none_or(|t| now >= t + WARN_EVERY) {
            last_warning = Some(now);
            warn!(error = %e, broker = %format!("{}:{}", config.host, config.port), "{what}");
        }
    };
    // Half the keep-alive: a PINGREQ goes out well before the broker would give up on us.
    // Without a keep-alive, nothing needs to go out between messages.
    let ping_every = if config.keepalive > 0 {
        Duration::from_secs(u64::from(config.keepalive)) / 2
    } else {
        Duration::from_secs(3600)
    };
    // A message that could not be acknowledged at QoS 1 or 2 is sent again on the next
    // connection (at least once, as the QoS asks).
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let mut session = match Session::open(config, tls.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                warn_limited("cannot connect to the MQTT broker; trying again", &e);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Messages wait in the queue meanwhile; this only learns whether the
                // publisher is gone (the daemon stops).
                if pending.is_none() {
                    match rx.try_recv() {
                        Ok(m) => pending = Some(m),
                        Err(mpsc::TryRecvError::Disconnected) => return,
                        Err(mpsc::TryRecvError::Empty) => {}
                    }
                }
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        counters.connects.fetch_add(1, Relaxed);
        counters.connected.store(true, Relaxed);
        info!(broker = %format!("{}:{}", config.host, config.port), "connected to the MQTT broker");
        let mut last_sent = Instant::now();
        loop {
            let message = match pending.take() {
                Some(m) => m,
                None => match rx.recv_timeout(ping_every.saturating_sub(last_sent.elapsed())) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = session.ping() {
                            warn_limited("MQTT broker did not answer a ping; reconnecting", &e);
                            break;
                        }
                        last_sent = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        session.close();
                        return;
                    }
                },
            };
            match session.publish(&config.topic, &message, config.qos) {
                Ok(()) => {
                    counters.published.fetch_add(1, Relaxed);
                    last_sent = Instant::now();
                }
                Err(e) => {
                    if config.qos > 0 {
                        pending = Some(message);
                    } else {
                        counters.failed.fetch_add(1, Relaxed);
                    }
                    warn_limited("MQTT connection lost; reconnecting", &e);
                    break;
                }
            }
        }
        counters.connected.store(false, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_differ() {
        let (a, b) = (generated_client_id(), generated_client_id());
        assert!(a.starts_with("ngmedia-") && a.len() == 24, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn tls_files_are_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("ngmedia-mqtt-tls-{}", std::process::id()));
        let files = crate::tls::tests::write_pki(&dir);
        let ok = MqttTls {
            cafile: files.ca.clone(),
            certfile: Some(files.cert.clone()),
            keyfile: Some(files.key.clone()),
            alpn: Some("mqtt".into()),
            ..Default::default()
        };
        let config = client_config(&ok).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"mqtt".to_vec()]);
        let folder = MqttTls {
            capath: Some(dir.clone()),
            ..Default::default()
        };
        assert!(
            client_config(&folder).is_ok(),
            "the CA among the folder's files"
        );
        let missing = MqttTls {
            cafile: Some(dir.join("nowhere.pem")),
            ..Default::default()
        };
        let e = client_config(&missing).err().unwrap().to_string();
        assert!(e.contains("nowhere.pem"), "{e}");
        let not_a_cert = MqttTls {
            cafile: Some(files.key.clone()),
            ..Default::default()
        };
        assert!(client_config(&not_a_cert).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
