//! An ng client as Kamailio's rtpengine module behaves: cookie, timeout, retransmissions of
//! the same datagram.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bencode::Value;
use crate::dict;

static NEXT_COOKIE: AtomicU64 = AtomicU64::new(1);

/// A fresh cookie, unique across the test processes running at the same time.
pub fn new_cookie() -> String {
    format!(
        "t{}_{}",
        std::process::id(),
        NEXT_COOKIE.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct NgClient {
    sock: UdpSocket,
    timeout: Duration,
    retries: u32,
}

impl NgClient {
    pub fn new(server: SocketAddr) -> NgClient {
        NgClient::with_timeout(server, Duration::from_secs(1), 2)
    }

    pub fn with_timeout(server: SocketAddr, timeout: Duration, retries: u32) -> NgClient {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind ng client socket");
        sock.connect(server).expect("connect ng client socket");
        NgClient {
            sock,
            timeout,
            retries,
        }
    }

    /// Send `body` under a new cookie; the decoded reply dictionary.
    pub fn request(&self, body: Value) -> Result<Value, String> {
        let cookie = new_cookie();
        let reply = self
            .exchange(&cookie, &body.encode())
            .ok_or_else(|| format!("no reply to {body:?}"))?;
        Value::decode(&reply).map_err(|e| {
            format!(
                "undecodable reply {:?}: {e}",
                String::from_utf8_lossy(&reply)
            )
        })
    }

    /// Send `COOKIE SP body` (retransmitting the identical datagram on timeout) and return the
    /// raw reply body, without the cookie.
    pub fn exchange(&self, cookie: &str, body: &[u8]) -> Option<Vec<u8>> {
        let mut datagram = format!("{cookie} ").into_bytes();
        datagram.extend_from_slice(body);
        for _ in 0..=self.retries {
            self.sock.send(&datagram).ok()?;
            if let Some(reply) = self.receive(cookie, self.timeout) {
                return Some(reply);
            }
        }
        None
    }

    /// Send an arbitrary datagram once; the raw reply datagram (cookie included), if any
    /// arrives within `wait`.
    pub fn send_raw(&self, datagram: &[u8], wait: Duration) -> Option<Vec<u8>> {
        self.sock.send(datagram).ok()?;
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            self.sock.set_read_timeout(Some(left)).ok()?;
            if let Ok(n) = self.sock.recv(&mut buf) {
                return Some(buf[..n].to_vec());
            }
        }
        None
    }

    /// Wait for the reply carrying `cookie`, skipping stale replies to earlier requests.
    fn receive(&self, cookie: &str, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        let prefix = format!("{cookie} ").into_bytes();
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            self.sock.set_read_timeout(Some(left)).ok()?;
            match self.sock.recv(&mut buf) {
                Ok(n) if buf[..n].starts_with(&prefix) => {
                    return Some(buf[prefix.len()..n].to_vec())
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Send and require `result: ok` (or `pong`); panics with the error reason otherwise.
    pub fn ok(&self, body: Value) -> Value {
        let reply = self.request(body.clone()).unwrap_or_else(|e| panic!("{e}"));
        match reply.str_at("result") {
            Some("ok") | Some("pong") => reply,
            _ => panic!("request {body:?} failed: {reply:?}"),
        }
    }

    pub fn offer(&self, call_id: &str, from_tag: &str, sdp: &str) -> Value {
        self.ok(dict! {
            "command" => "offer", "call-id" => call_id, "from-tag" => from_tag, "sdp" => sdp,
            "replace" => vec!["origin", "session-connection"], "ICE" => "remove",
        })
    }

    /// Re-offer from inside the dialogue (re-INVITE): carries the to-tag.
    pub fn reoffer(&self, call_id: &str, from_tag: &str, to_tag: &str, sdp: &str) -> Value {
        self.ok(dict! {
            "command" => "offer", "call-id" => call_id, "from-tag" => from_tag,
            "to-tag" => to_tag, "sdp" => sdp,
            "replace" => vec!["origin", "session-connection"], "ICE" => "remove",
        })
    }

    pub fn answer(&self, call_id: &str, from_tag: &str, to_tag: &str, sdp: &str) -> Value {
        self.ok(dict! {
            "command" => "answer", "call-id" => call_id, "from-tag" => from_tag,
            "to-tag" => to_tag, "sdp" => sdp,
            "replace" => vec!["origin", "session-connection"], "ICE" => "remove",
        })
    }

    pub fn query(&self, call_id: &str) -> Result<Value, String> {
        self.request(dict! { "command" => "query", "call-id" => call_id })
    }

    /// Call-ids the daemon lists.
    pub fn list(&self) -> Vec<String> {
        let reply = self.ok(dict! { "command" => "list", "limit" => 1000i64 });
        reply
            .get("calls")
            .and_then(Value::as_list)
            .unwrap_or_else(|| panic!("list reply without calls: {reply:?}"))
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }
}
