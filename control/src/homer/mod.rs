//! Homer capture (rtpengine's `--homer`): every RTCP packet a party sends, in Homer's RTCP
//! JSON, and optionally every ng request and reply (`--homer-enable-ng`), sent as HEP
//! version 3 frames over UDP or TCP to a capture server, each tagged with the call's
//! Call-ID so Homer shows it beside the SIP dialog.
//!
//! Nothing here runs on the packet path: the media workers copy received RTCP into a bounded
//! tap queue ([`ngmedia_engine::core::tap`]) and go on; one thread turns the copies into
//! frames, another sends them. Over TCP a lost connection is retried every 30 s and up to
//! [`SEND_QUEUE`] frames wait meanwhile; what does not fit is dropped and counted.

pub mod hep;
mod rtcp_json;

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_engine::core::tap::{tap_queue, TapReceiver, TapSender};
use tracing::{info, warn};

use crate::ng::request::{self, CommandKind, Encoding};
use hep::{HepMeta, PROTO_RTCP_JSON};

/// Frames waiting for a TCP connection (rtpengine keeps as many).
pub const SEND_QUEUE: usize = 200;
/// Frames between the producers and the sending thread.
const FRAME_QUEUE: usize = 4096;
/// RTCP copies between the media workers and the formatting thread.
const RTCP_QUEUE: usize = 4096;
/// Pause before a new connection after a TCP failure.
const RETRY: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// At most one warning per this interval about frames that could not be sent.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomerTransport {
    Udp,
    Tcp,
}

/// The `--homer*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomerSettings {
    /// The capture server (`--homer`).
    pub target: SocketAddr,
    pub transport: HomerTransport,
    /// `--homer-id`: the capture agent id Homer files frames under.
    pub capture_id: u32,
    /// RTCP reports are sent (not `--homer-disable-rtcp-stats`).
    pub rtcp: bool,
    /// ng requests and replies are sent (`--homer-enable-ng`).
    pub ng: bool,
    /// `--homer-ng-capture-proto`: the capture protocol type of ng frames.
    pub ng_proto: u8,
}

/// Frames handed to the sender, and those that never reached the capture server.
#[derive(Debug, Default)]
pub struct HomerCounters {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
}

/// The running capture: what the ng servers trace through, and its counters.
pub struct Homer {
    settings: HomerSettings,
    frames: SyncSender<Vec<u8>>,
    counters: Arc<HomerCounters>,
}

impl Homer {
    /// Start the sending thread (and the RTCP formatting thread when RTCP is captured). The
    /// returned tap queue is for the media workers (`MediaWorkers::set_rtcp_tap`).
    pub fn start(settings: HomerSettings) -> std::io::Result<(Arc<Homer>, Option<TapSender>)> {
        let counters = Arc::new(HomerCounters::default());
        let (frames, rx) = mpsc::sync_channel(FRAME_QUEUE);
        let sender = Sender::new(&settings, counters.clone())?;
        std::thread::Builder::new()
            .name("homer-send".into())
            .spawn(move || sender.run(rx))?;
        let homer = Arc::new(Homer {
            settings: settings.clone(),
            frames,
            counters,
        });
        let tap = if settings.rtcp {
            let (tx, rx) = tap_queue(RTCP_QUEUE);
            let h = homer.clone();
            std::thread::Builder::new()
                .name("homer-rtcp".into())
                .spawn(move || h.format_rtcp(rx))?;
            Some(tx)
        } else {
            None
        };
        info!(
            target = %settings.target,
            transport = ?settings.transport,
            capture_id = settings.capture_id,
            rtcp = settings.rtcp,
            ng = settings.ng,
            "sending captures to Homer"
        );
        Ok((homer, tap))
    }

    pub fn counters(&self) -> &HomerCounters {
        &self.counters
    }

    /// Trace one ng exchange (`--homer-enable-ng`): the request datagram as received and the
    /// reply as sent, each `cookie SP body`, filed under the request's Call-ID. Pings and
    /// datagrams without a command are not traced.
    pub fn trace_ng(
        &self,
        datagram: &[u8],
        reply: Option<&[u8]>,
        peer: SocketAddr,
        local: SocketAddr,
    ) {
        if !self.settings.ng {
            return;
        }
        let Some(call_id) = ng_call_id(datagram) else {
            return;
        };
        let time_us = unix_us();
        let meta = |src, dst| HepMeta {
            src,
            dst,
            time_us,
            proto: self.settings.ng_proto,
            capture_id: self.settings.capture_id,
        };
        self.queue(hep::encode(
            &meta(peer, local),
            call_id.as_bytes(),
            datagram,
        ));
        if let Some(reply) = reply {
            self.queue(hep::encode(&meta(local, peer), call_id.as_bytes(), reply));
        }
    }

    fn queue(&self, frame: Option<Vec<u8>>) {
        let Some(frame) = frame else {
            self.counters.dropped.fetch_add(1, Relaxed);
            return;
        };
        match self.frames.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Turn RTCP copies into frames until every worker has let go of the queue.
    fn format_rtcp(&self, rx: TapReceiver) {
        loop {
            let pkt = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(pkt) => pkt,
                Err(true) => return,
                Err(false) => continue,
            };
            if let Some(json) = rtcp_json::to_json(pkt.bytes()) {
                let meta = HepMeta {
                    src: pkt.src,
                    dst: pkt.local,
                    time_us: pkt.arrival_ms.saturating_mul(1000),
                    proto: PROTO_RTCP_JSON,
                    capture_id: self.settings.capture_id,
                };
                let id = pkt.call_id.as_deref().unwrap_or_default();
                self.queue(hep::encode(&meta, id.as_bytes(), json.as_bytes()));
            }
            pkt.recycle();
        }
    }
}

/// The Call-ID of a traced request; `None` for pings and what does not decode.
fn ng_call_id(datagram: &[u8]) -> Option<String> {
    let (_, body) = request::split_datagram(datagram)?;
    let json;
    let dict = match request::detect_encoding(body).ok()? {
        Encoding::Bencode => request::decode_bencode(body).ok()?,
        Encoding::Json => {
            json = request::parse_json(body).ok()?;
            request::json_to_value(&json).ok()?
        }
    };
    if request::command_kind(&dict).ok()? == CommandKind::Ping {
        return None;
    }
    let id = dict.get(b"call-id").and_then(|v| v.as_str()).unwrap_or("");
    Some(id.to_string())
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The sending thread's end of the connection.
struct Sender {
    target: SocketAddr,
    link: Link,
    counters: Arc<HomerCounters>,
    last_warning: Option<Instant>,
}

enum Link {
    Udp(UdpSocket),
    Tcp {
        stream: Option<TcpStream>,
        retry_at: Instant,
        waiting: VecDeque<Vec<u8>>,
    },
}

impl Sender {
    fn new(settings: &HomerSettings, counters: Arc<HomerCounters>) -> std::io::Result<Sender> {
        let link = match settings.transport {
            HomerTransport::Udp => {
                let any: SocketAddr = if settings.target.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)?;
                socket.connect(settings.target)?;
                Link::Udp(socket)
            }
            HomerTransport::Tcp => Link::Tcp {
                stream: None,
                retry_at: Instant::now(),
                waiting: VecDeque::new(),
            },
        };
        Ok(Sender {
            target: settings.target,
            link,
            counters,
            last_warning: None,
        })
    }

    fn run(mut self, rx: Receiver<Vec<u8>>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(frame) => self.send(frame),
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn send(&mut self, frame: Vec<u8>) {
        match &mut self.link {
            Link::Udp(socket) => match socket.send(&frame) {
                Ok(_) => {
                    self.counters.sent.fetch_add(1, Relaxed);
                }
                Err(e) => self.failed(&e.to_string()),
            },
            Link::Tcp { waiting, .. } => {
                if waiting.len() >= SEND_QUEUE {
                    waiting.pop_front();
                    self.counters.dropped.fetch_add(1, Relaxed);
                }
                waiting.push_back(frame);
                self.flush();
            }
        }
    }

    /// Over TCP: connect when due and write what waits.
    fn flush(&mut self) {
        let Link::Tcp {
            stream,
            retry_at,
            waiting,
        } = &mut self.link
        else {
            return;
        };
        if waiting.is_empty() {
            return;
        }
        if stream.is_none() && Instant::now() >= *retry_at {
            match TcpStream::connect_timeout(&self.target, CONNECT_TIMEOUT)
                .and_then(|s| s.set_write_timeout(Some(WRITE_TIMEOUT)).map(|()| s))
            {
                Ok(s) => {
                    info!(target = %self.target, "connected to Homer");
                    *stream = Some(s);
                }
                Err(e) => {
                    *retry_at = Instant::now() + RETRY;
                    let why = format!("cannot connect: {e}");
                    self.failed(&why);
                    return;
                }
            }
        }
        let Some(s) = stream.as_mut() else {
            return;
        };
        while let Some(frame) = waiting.front() {
            if let Err(e) = s.write_all(frame) {
                // The frame is sent again, whole, on the next connection.
                *stream = None;
                *retry_at = Instant::now() + RETRY;
                let why = format!("write failed: {e}");
                self.failed(&why);
                return;
            }
            waiting.pop_front();
            self.counters.sent.fetch_add(1, Relaxed);
        }
    }

    fn failed(&mut self, why: &str) {
        if matches!(self.link, Link::Udp(_)) {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
        let now = Instant::now();
        if self.last_warning.is_none_or(|t| now >= t + WARN_EVERY) {
            self.last_warning = Some(now);
            warn!(target = %self.target, error = why, "Homer capture not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ng_call_ids() {
        assert_eq!(
            ng_call_id(b"c1 d7:call-id3:abc7:command6:deletee").as_deref(),
            Some("abc")
        );
        assert_eq!(
            ng_call_id(br#"c2 {"command":"query","call-id":"x y"}"#).as_deref(),
            Some("x y")
        );
        assert_eq!(
            ng_call_id(b"c3 d7:command4:pinge"),
            None,
            "pings are not traced"
        );
        assert_eq!(ng_call_id(b"c4 d7:command4:liste").as_deref(), Some(""));
        assert_eq!(ng_call_id(b"garbage"), None);
    }
}
