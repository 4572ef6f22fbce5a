//! Black-box test harness for the `ngmedia` binary.
//!
//! The tests in `tests/tests/` start the real daemon on loopback and talk to it the way
//! Kamailio and SIP endpoints do: ng requests over UDP, real RTP, and HTTP for the API.
//! The harness carries its own small bencode, SDP, RTP and HTTP helpers so a bug in the
//! daemon's codecs cannot hide behind the same bug in the test; only the DTLS peer
//! ([`dtls`]) borrows the engine's SRTP transform, its handshake being OpenSSL's own.
//!
//! Build the binary first (`cargo build --bins`); `NGMEDIA_BIN` points at another one.

pub mod bencode;
pub mod call;
pub mod daemon;
pub mod dtls;
pub mod http;
pub mod li;
pub mod mqtt;
pub mod ng;
pub mod redis;
pub mod rtp;
pub mod sdp;
pub mod sip;

pub use bencode::Value;
pub use call::TwoPartyCall;
pub use daemon::Daemon;
pub use http::{HttpClient, HttpResponse};
pub use ng::NgClient;
pub use redis::{RedisServer, RespValue};
pub use rtp::RtpEndpoint;
pub use sdp::Sdp;

use std::time::{Duration, Instant};

/// Kill a server child of a harness at once (SIGKILL) and reap it; `None` afterwards.
pub(crate) fn kill_child(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Poll `f` every 50 ms until it returns `Some` or `limit` has passed.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
