//! Call events for applications (`--webhook-url`): when a call starts (its first offer), is
//! answered (its first answer) and ends (deleted, timed out), when a recording is finished,
//! when a stream's MOS falls below `--mos-alarm`, and (with `--webhook-dtmf`) for every DTMF
//! digit, one JSON object is POSTed to the operator's URL, so billing, CRM and monitoring
//! hear of calls without polling:
//!
//! ```json
//! {"event":"call.ended","call_id":"…","from_tag":"…","to_tag":"…","timestamp":1700000000123,
//!  "reason":"timeout","duration_ms":61234}
//! ```
//!
//! The ng thread only queues (a bounded queue; a full queue drops and counts); one thread
//! delivers in order over HTTP/1.1, plain or over TLS (an `https://` URL, the receiver's
//! certificate checked against `--webhook-ca` or the system's CAs), retrying a failed POST
//! (connection error, timeout or a non-2xx status) up to [`ATTEMPTS`] times with a growing
//! pause, then giving the event up.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::snapshot::CallSnapshot;
use ngmedia_engine::sync::lock;
use serde_json::json;
use tracing::{info, warn};

/// Events waiting for delivery; beyond this they are dropped (and counted).
pub const QUEUE: usize = 1024;
/// Delivery attempts per event.
pub const ATTEMPTS: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one warning per this interval about undeliverable events.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Where events go: an `http://` or `https://host[:port]/path` URL, resolved at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    pub path: String,
    /// Sent as `Authorization: Bearer …` when set (`--webhook-token`).
    pub token: Option<String>,
    /// `https://`: the name the receiver's certificate must carry (the URL's host, without
    /// port or brackets); `None`: plain HTTP.
    pub tls_name: Option<String>,
    /// CAs that HTTPS receivers' certificates must chain to (`--webhook-ca`); `None`: the
    /// system's.
    pub ca: Option<PathBuf>,
}

const URL_FORM: &str = "expected http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH]";

impl WebhookTarget {
    /// Parse `http[s]://host[:port][/path]`.
    pub fn parse(url: &str, token: Option<String>) -> Result<WebhookTarget, String> {
        let url = url.trim();
        let (rest, https) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (rest, true)
        } else {
            return Err(URL_FORM.into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{URL_FORM} (no user information)"));
        }
        let has_port = !authority.ends_with(']') && authority.contains(':');
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let name = if has_port {
            &authority[..authority.rfind(':').unwrap_or(authority.len())]
        } else {
            authority
        };
        let tls_name = https.then(|| {
            name.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        });
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority} has no address"))?;
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the path must not contain spaces or control characters".into());
        }
        Ok(WebhookTarget {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
            token,
            tls_name,
            ca: None,
        })
    }

    /// The URL, for logs.
    fn url(&self) -> String {
        let scheme = if self.tls_name.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{}", self.host, self.path)
    }
}

/// How to reach the receiver: its address and, for HTTPS, the TLS client and the name its
/// certificate must carry.
struct Connector {
    target: WebhookTarget,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
}

impl Connector {
    fn new(target: WebhookTarget) -> std::io::Result<Connector> {
        let Some(name) = &target.tls_name else {
            return Ok(Connector { target, tls: None });
        };
        let ca = target
            .ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::tls::SYSTEM_CA_BUNDLE));
        let config = crate::tls::trusting(&ca).map_err(std::io::Error::other)?;
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| std::io::Error::other(format!("{name}: {e}")))?;
        Ok(Connector {
            target,
            tls: Some((config, name)),
        })
    }
}

/// Events delivered, given up after every attempt failed, and dropped on a full queue.
#[derive(Debug, Default)]
pub struct EventCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Deleted,
    /// The timeout that fired (`timeout`, `silent-timeout`, `final-timeout`).
    Timeout(&'static str),
}

/// What the call registry is known to hold, to tell a new call from a re-offer.
struct Live {
    started: Instant,
    from_tag: String,
    to_tag: Option<String>,
}

/// The event publisher the ng server and the timer report to.
pub struct Events {
    queue: SyncSender<String>,
    live: Mutex<HashMap<String, Live>>,
    counters: Arc<EventCounters>,
}

impl Events {
    /// Start the delivery thread. For an `https://` URL, the CA file must load.
    pub fn start(target: WebhookTarget) -> std::io::Result<Arc<Events>> {
        let (queue, rx) = mpsc::sync_channel(QUEUE);
        let counters = Arc::new(EventCounters::default());
        let c = counters.clone();
        info!(url = %target.url(), "call events go to the webhook");
        let connector = Connector::new(target)?;
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || deliver_all(&connector, &rx, &c))?;
        Ok(Arc::new(Events {
            queue,
            live: Mutex::new(HashMap::new()),
            counters,
        }))
    }

    pub fn counters(&self) -> &EventCounters {
        &self.counters
    }

    /// A successful offer: `call.started` when the call is new here.
    pub fn offered(&self, call_id: &str, from_tag: &str) {
        let mut live = lock(&self.live);
        if live.contains_key(call_id) {
            return;
        }
        live.insert(
            call_id.to_string(),
            Live {
                started: Instant::now(),
                from_tag: from_tag.to_string(),
                to_tag: None,
            },
        );
        drop(live);
        self.publish(json!({
            "event": "call.started",
            "call_id": call_id,
            "from_tag": from_tag,
            "timestamp": unix_ms(),
        }));
    }

    /// A successful answer: `call.answered` on the call's first.
    pub fn answered(&self, call_id: &str, to_tag: &str) {
        let mut live = lock(&self.live);
        let Some(call) = live.get_mut(call_id).filter(|c| c.to_tag.is_none()) else {
            return;
        };
        call.to_tag = Some(to_tag.to_string());
        let event = json!({
            "event": "call.answered",
            "call_id": call_id,
            "from_tag": call.from_tag,
            "to_tag": to_tag,
            "timestamp": unix_ms(),
            "setup_ms": call.started.elapsed().as_millis() as u64,
        });
        drop(live);
        self.publish(event);
    }

    /// The call is gone from the registry: `call.ended`, once.
    pub fn ended(&self, call_id: &str, reason: EndReason) {
        let Some(call) = lock(&self.live).remove(call_id) else {
            return;
        };
        let reason = match reason {
            EndReason::Deleted => "deleted",
            EndReason::Timeout(which) => which,
        };
        self.publish(json!({
            "event": "call.ended",
            "call_id": call_id,
            "from_tag": call.from_tag,
            "to_tag": call.to_tag,
            "timestamp": unix_ms(),
            "reason": reason,
            "duration_ms": call.started.elapsed().as_millis() as u64,
        }));
    }

    /// A recording was finalized: `recording.finished` with its metadata's summary (`meta` is
    /// the recording's JSON sidecar).
    pub fn recording_finished(&self, meta: &serde_json::Value) {
        self.publish(json!({
            "event": "recording.finished",
            "call_id": meta["call_id"],
            "timestamp": unix_ms(),
            "recording_id": meta["id"],
            "state": meta["state"],
            "error": meta["error"],
            "start_ms": meta["start_ms"],
            "stop_ms": meta["stop_ms"],
            "duration_ms": meta["duration_ms"],
            "files": meta["files"],
            "metadata": meta["metadata"],
        }));
    }

    /// A DTMF digit, from the engine's report (rtpengine's `--dtmf-log-dest` JSON): `dtmf`.
    pub fn dtmf(&self, report: &serde_json::Value) {
        self.publish(json!({
            "event": "dtmf",
            "call_id": report["callid"],
            "timestamp": unix_ms(),
            "source_tag": report["source_tag"],
            "source_label": report["source_label"],
            "source_ip": report["source_ip"],
            "digit": report["event"].as_u64().and_then(digit),
            "event_code": report["event"],
            "duration_ms": report["duration"],
            "volume": report["volume"],
        }));
    }

    /// A stream's MOS fell below `--mos-alarm`: `quality.alarm`, once per stream.
    pub fn quality_alarm(&self, alarm: &QualityAlarm) {
        self.publish(json!({
            "event": "quality.alarm",
            "call_id": alarm.call_id,
            "timestamp": unix_ms(),
            "tag": alarm.tag,
            "label": alarm.label,
            "media_index": alarm.media_index,
            "ssrc": alarm.ssrc,
            "mos": alarm.mos,
            "threshold": alarm.threshold,
            "loss_percent": alarm.loss_percent,
            "jitter_ms": alarm.jitter_ms,
            "rtt_ms": alarm.rtt_ms,
        }));
    }

    fn publish(&self, event: serde_json::Value) {
        if self.queue.try_send(event.to_string()).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// One stream whose MOS fell below the alarm threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityAlarm {
    pub call_id: String,
    /// The party that sends the stream.
    pub tag: String,
    pub label: Option<String>,
    /// 1-based m= line of the party.
    pub media_index: u32,
    pub ssrc: Option<u32>,
    /// The lowest MOS sample of the stream, which crossed the threshold.
    pub mos: f64,
    pub threshold: f64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
}

/// Which streams are below `--mos-alarm`: [`QualityWatch::scan`] turns call snapshots into
/// the alarms not raised yet. A stream alarms once per call (its lowest MOS sample only goes
/// down); ended calls are forgotten.
#[derive(Debug)]
pub struct QualityWatch {
    threshold: f64,
    /// (call-id, tag, media index) of the streams that alarmed.
    alarmed: HashSet<(String, String, u32)>,
}

impl QualityWatch {
    pub fn new(threshold: f64) -> QualityWatch {
        QualityWatch {
            threshold,
            alarmed: HashSet::new(),
        }
    }

    /// The new alarms among `calls` (every call held now).
    pub fn scan(&mut self, calls: &[CallSnapshot]) -> Vec<QualityAlarm> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for call in calls {
            for leg in &call.legs {
                for media in &leg.medias {
                    let key = (call.call_id.clone(), leg.tag.clone(), media.index);
                    let quality = media
                        .streams
                        .iter()
                        .filter(|s| !s.rtcp)
                        .find_map(|s| s.quality.as_ref().and_then(|q| q.mos.map(|m| (q, m))));
                    let Some((q, mos)) = quality else {
                        continue;
                    };
                    seen.insert(key.clone());
                    let lowest = f64::from(mos.lowest.mos_x100) / 100.0;
                    if lowest >= self.threshold || self.alarmed.contains(&key) {
                        continue;
                    }
                    self.alarmed.insert(key);
                    out.push(QualityAlarm {
                        call_id: call.call_id.clone(),
                        tag: leg.tag.clone(),
                        label: leg.label.clone(),
                        media_index: media.index,
                        ssrc: q.ssrc,
                        mos: lowest,
                        threshold: self.threshold,
                        loss_percent: f64::from(mos.lowest.loss_x100) / 100.0,
                        jitter_ms: f64::from(mos.lowest.jitter_us) / 1000.0,
                        rtt_ms: q.rtt_us.map(|us| f64::from(us) / 1000.0),
                    });
                }
            }
        }
        self.alarmed.retain(|k| seen.contains(k));
        out
    }
}

/// The key of an RFC 4733 event code: `0`-`9`, `*`, `#`, `A`-`D`.
fn digit(code: u64) -> Option<String> {
    let c = match code {
        0..=9 => char::from(b'0' + code as u8),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + (code - 12) as u8),
        _ => return None,
    };
    Some(c.to_string())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn deliver_all(connector: &Connector, rx: &Receiver<String>, counters: &EventCounters) {
    let mut last_warning: Option<Instant> = None;
    for body in rx {
        let mut pause = FIRST_RETRY;
        let mut outcome = Err(String::new());
        for attempt in 1..=ATTEMPTS {
            outcome = post(connector, &body);
            if outcome.is_ok() || attempt == ATTEMPTS {
                break;
            }
            std::thread::sleep(pause);
            pause *= 2;
        }
        match outcome {
            Ok(()) => {
                counters.delivered.fetch_add(1, Relaxed);
            }
            Err(why) => {
                counters.failed.fetch_add(1, Relaxed);
                let now = Instant::now();
                if last_warning.is_none_or(|t| now >= t + WARN_EVERY) {
                    last_warning = Some(now);
                    warn!(error = %why, attempts = ATTEMPTS, "call event not delivered to the webhook");
                }
            }
        }
    }
}

/// One POST; `Ok` on a 2xx status.
fn post(connector: &Connector, body: &str) -> Result<(), String> {
    let target = &connector.target;
    let conn = TcpStream::connect_timeout(&target.addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    match &connector.tls {
        None => exchange(conn, target, body),
        Some((config, name)) => {
            let tls = rustls::ClientConnection::new(config.clone(), name.clone())
                .map_err(|e| e.to_string())?;
            exchange(rustls::StreamOwned::new(tls, conn), target, body)
        }
    }
}

/// Write the request on `conn` and read the status line of the reply.
fn exchange(mut conn: impl Read + Write, target: &WebhookTarget, body: &str) -> Result<(), String> {
    let auth = target
        .token
        .as_deref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nUser-Agent: ngmedia\r\n{auth}Connection: close\r\n\r\n{body}",
        target.path,
        target.host,
        body.len()
    );
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // The status line is all we need; read until it is complete.
    let mut head = Vec::with_capacity(64);
    let mut byte = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = conn.read(&mut byte).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "no HTTP status in the reply".to_string())?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        let t = WebhookTarget::parse("http://127.0.0.1:9000/hooks/calls", None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/hooks/calls")
        );
        assert_eq!(t.tls_name, None);
        let t = WebhookTarget::parse("http://[::1]", Some("s3cret".into())).unwrap();
        assert_eq!(t.addr, "[::1]:80".parse().unwrap());
        assert_eq!(t.path, "/");
        let t = WebhookTarget::parse("https://127.0.0.1/x", None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:443".parse().unwrap());
        assert_eq!(t.tls_name.as_deref(), Some("127.0.0.1"));
        let t = WebhookTarget::parse("https://[::1]:8443/", None).unwrap();
        assert_eq!(t.addr, "[::1]:8443".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.tls_name.as_deref()),
            ("[::1]:8443", Some("::1"))
        );
        assert_eq!(t.url(), "https://[::1]:8443/");
        assert!(WebhookTarget::parse("ftp://x", None).is_err());
        assert!(WebhookTarget::parse("http://user@127.0.0.1/", None).is_err());
        assert!(WebhookTarget::parse("http://127.0.0.1/a b", None).is_err());
    }
}
