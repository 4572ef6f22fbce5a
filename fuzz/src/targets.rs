//! One entry point per fuzz target: raw bytes in, nothing out. Each drives the same code the
//! daemon runs on untrusted input and asserts what must hold whatever the input (our own
//! output parses again, a round trip gives back what went in); anything else it finds is a
//! panic, an overflow, a hang or unbounded memory, which libFuzzer reports.
//!
//! This file is compiled twice: by the fuzz crate (`fuzz/`, own workspace, with libFuzzer)
//! and, through `#[path]`, by the corpus replay test of the main workspace
//! (`control/tests/fuzz_corpus.rs`), so CI replays the corpus without nightly or libFuzzer.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ngmedia_control::ng::NgServer;
use ngmedia_engine::core::calls::{Calls, Now};
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::dtls::{DtlsIdentity, DtlsRole, DtlsSession};
use ngmedia_engine::core::plan::{
    CallKey, CallPlan, LocalPort, MediaPlane, PortError, PortKey, PortPair,
};
use ngmedia_engine::core::rtp::{classify, strip_rtcp_feedback, RtcpHeader, RtpHeader};
use ngmedia_engine::core::sdp::Sdp;
use ngmedia_engine::core::stats::{PacketTotals, StreamStats, WorkerCounters};
use ngmedia_engine::core::stun::{self, StunMessage};
use ngmedia_recordings::li::{task, x3};

/// Most messages or records one input is split into (keeps one execution short).
const MAX_PARTS: usize = 64;

/// A media plane that hands out port numbers and forgets plans: the control plane runs for
/// real (negotiation, SDP rewriting), no socket is bound.
#[derive(Default)]
struct Plane {
    next: Mutex<u64>,
}

impl MediaPlane for Plane {
    fn allocate_pair(&self, interface: &Interface) -> Result<PortPair, PortError> {
        let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        if *n > 1000 {
            return Err(PortError::Exhausted);
        }
        let port = 30000 + 2 * (*n as u16);
        let local = |key: u64, p: u16| LocalPort {
            key: PortKey(key),
            addr: SocketAddr::new(interface.local, p),
        };
        Ok(PortPair {
            rtp: local(2 * *n, port),
            rtcp: local(2 * *n + 1, port + 1),
        })
    }

    fn allocate_pair_at(
        &self,
        interface: &Interface,
        _rtp_port: u16,
    ) -> Result<PortPair, PortError> {
        self.allocate_pair(interface)
    }

    fn apply(&self, _plan: CallPlan) {}
    fn remove(&self, _call: CallKey) {}
    fn release(&self, _ports: &[PortKey]) {}
    fn totals(&self) -> PacketTotals {
        PacketTotals::default()
    }
}

/// A fresh server over no calls, for one input. Our DTLS certificate is made once per process
/// (generating one costs milliseconds, most of an input's time).
fn server() -> NgServer<Calls> {
    let calls = Calls::with_dtls_identity(
        Arc::new(EngineConfig::default()),
        Arc::new(Plane::default()),
        Some(identity().0.clone()),
    );
    NgServer::new(Arc::new(Mutex::new(calls)))
}

fn now(start: Instant, step: u64) -> Now {
    Now {
        mono: start + std::time::Duration::from_millis(step * 20),
        unix_us: 1_795_300_564_000_000 + step * 20_000,
    }
}

/// bencode and JSON ng requests, as datagrams (cookie, space, body) separated by two zero
/// bytes, to one server: every command, offers and answers with their SDP, retransmissions.
pub fn ng(data: &[u8]) {
    let mut s = server();
    let start = Instant::now();
    for (i, datagram) in split(data, b"\0\0").enumerate() {
        let from = Some(IpAddr::from([127, 0, 0, 1]));
        if let Some(reply) = s.handle_datagram_from(datagram, from, now(start, i as u64)) {
            assert!(reply.len() <= 65_535 || datagram.len() > 60_000);
        }
    }
}

/// SDP: parse, write, parse again (the second write must equal the first), then the SDP as
/// an offer through the engine and the engine's SDP as the answer: what we write must parse.
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = Sdp::parse(text) else {
        return;
    };
    let once = parsed.write();
    let again = Sdp::parse(&once)
        .unwrap_or_else(|e| panic!("our own SDP does not parse ({e}):\n{once}"))
        .write();
    assert_eq!(once, again, "writing is not stable");
    let mut s = server();
    let start = Instant::now();
    let offer = ng_offer_answer(&mut s, "1", "offer", text, start);
    if let Some(sdp) = offer {
        if let Err(e) = Sdp::parse(&sdp) {
            panic!("the engine's offer SDP does not parse ({e}):\n{sdp}");
        }
        if let Some(answer) = ng_offer_answer(&mut s, "2", "answer", &sdp, start) {
            if let Err(e) = Sdp::parse(&answer) {
                panic!("the engine's answer SDP does not parse ({e}):\n{answer}");
            }
        }
    }
}

/// Send an offer or answer with `sdp` and return the SDP of a successful reply.
fn ng_offer_answer(
    s: &mut NgServer<Calls>,
    cookie: &str,
    command: &str,
    sdp: &str,
    start: Instant,
) -> Option<String> {
    let mut dgram = format!("{cookie} d7:command{}:{command}", command.len()).into_bytes();
    dgram.extend_from_slice(b"7:call-id4:fuzz8:from-tag1:A");
    if command == "answer" {
        dgram.extend_from_slice(b"6:to-tag1:B");
    }
    dgram.extend_from_slice(format!("3:sdp{}:", sdp.len()).as_bytes());
    dgram.extend_from_slice(sdp.as_bytes());
    dgram.push(b'e');
    let reply = s.handle_datagram(&dgram, now(start, 1))?;
    let body = reply.splitn(2, |&b| b == b' ').nth(1)?;
    let v = ngmedia_control::bencode::decode(body).ok()?;
    if v.get(b"result")?.as_str()? != "ok" {
        return None;
    }
    Some(v.get(b"sdp")?.as_str()?.to_owned())
}

/// The media pipeline of a call (`core::stream::handle`), see its docs.
pub fn packets(data: &[u8]) {
    ngmedia_engine::core::stream::fuzz::packets(data);
}

/// SRTP/SRTCP protect/unprotect round trips and refusals, see its docs.
pub fn srtp(data: &[u8]) {
    ngmedia_engine::core::stream::fuzz::srtp(data);
}

/// STUN: parse, integrity and fingerprint checks, the ICE Binding request check with our
/// credentials, and the answers we write to it (which must parse and verify).
pub fn stun(data: &[u8]) {
    let Ok(msg) = StunMessage::parse(data) else {
        return;
    };
    let _ = msg.verify_integrity(b"fuzz-ice-password-22chr");
    let checked = stun::check_ice_binding_request(&msg, b"fuzzufrag", b"fuzz-ice-password-22chr");
    let mut buf = [0u8; 1500];
    let tid = msg.transaction_id;
    let src: SocketAddr = "203.0.113.7:61000".parse().expect("address");
    let written = match checked {
        Ok(_) => stun::write_binding_success(&mut buf, &tid, src, b"fuzz-ice-password-22chr"),
        Err(e) => match e.response_code() {
            Some(code) => stun::write_binding_error(&mut buf, &tid, code, None),
            None => return,
        },
    };
    if let Ok(n) = written {
        let answer = StunMessage::parse(&buf[..n])
            .unwrap_or_else(|e| panic!("our own STUN answer does not parse: {e:?}"));
        assert_eq!(answer.transaction_id, tid);
    }
}

/// RTP and RTCP parsing: the header and its extension, CSRCs and padding; compound RTCP
/// walked block by block; feedback stripping; the quality statistics (RTP sequence and
/// jitter, SR/RR, XR blocks) over a run of packets separated by `0xfe 0xfe`.
pub fn rtp_rtcp(data: &[u8]) {
    let stats = StreamStats::default();
    let counters = WorkerCounters::default();
    for (i, pkt) in split(data, &[0xfe, 0xfe]).enumerate() {
        let _ = classify(pkt);
        if let Ok(h) = RtpHeader::parse(pkt) {
            let _ = (
                h.payload_type(),
                h.sequence_number(),
                h.timestamp(),
                h.ssrc(),
            );
            let _ = (h.marker(), h.padding(), h.extension(), h.header_len());
            for c in 0..usize::from(h.csrc_count()) {
                let _ = h.csrc(c);
            }
            if let Ok(p) = h.payload() {
                assert!(h.header_len() + p.len() <= pkt.len());
            }
            stats
                .quality
                .record(&counters, pkt, true, i as u64 * 20_000, i as u64 * 20);
        }
        let mut rest = pkt;
        for _ in 0..MAX_PARTS {
            let Ok(h) = RtcpHeader::parse(rest) else {
                break;
            };
            let len = h.packet_len();
            let _ = (h.count(), h.packet_type(), h.ssrc());
            if len == 0 || len > rest.len() {
                break;
            }
            rest = &rest[len..];
        }
        if RtcpHeader::parse(pkt).is_ok() {
            stats
                .quality
                .record(&counters, pkt, false, i as u64 * 20_000, i as u64 * 20);
            let mut copy = pkt.to_vec();
            let n = strip_rtcp_feedback(&mut copy, pkt.len());
            assert!(n <= pkt.len(), "stripping feedback grew the packet");
        }
    }
}

/// Our DTLS identity and a peer's (generating one takes milliseconds: once per process).
fn identity() -> &'static (Arc<DtlsIdentity>, DtlsIdentity) {
    static ID: OnceLock<(Arc<DtlsIdentity>, DtlsIdentity)> = OnceLock::new();
    ID.get_or_init(|| {
        (
            Arc::new(DtlsIdentity::generate().expect("DTLS identity")),
            DtlsIdentity::generate().expect("DTLS identity"),
        )
    })
}

/// DTLS records from the network: `data[0]` chooses our role (server or client); the rest
/// is datagrams, each a two-byte length and its bytes, fed to one association, with its
/// retransmission timer run between them and what it sends drained.
pub fn dtls(data: &[u8]) {
    let Some((&role, mut rest)) = data.split_first() else {
        return;
    };
    let (ours, theirs) = identity();
    let role = if role & 1 == 0 {
        DtlsRole::Server
    } else {
        DtlsRole::Client
    };
    let Ok(mut session) = DtlsSession::new(ours, role, theirs.fingerprint().clone()) else {
        return;
    };
    let _ = session.start();
    for _ in 0..MAX_PARTS {
        let [hi, lo, tail @ ..] = rest else {
            break;
        };
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (dgram, next) = tail.split_at(len);
        rest = next;
        let _ = session.handle_datagram(dgram);
        let _ = session.handle_timeout();
        while session.poll_datagram().is_some() {}
    }
}

/// Media library uploads: WAV, MP3, OGG/Vorbis and FLAC decoded and resampled to the
/// player's rates, at most 2 s of audio.
pub fn media_decode(data: &[u8]) {
    if let Ok(audio) = ngmedia_codecs::audio_file::decode(data, 2) {
        assert!(
            audio.duration_ms <= 2_100,
            "{} ms decoded",
            audio.duration_ms
        );
    }
}

/// LI tasks as the admin API takes them (JSON): parsed, validated, written back and parsed
/// again to the same task; metadata matching on their strings.
pub fn li_task(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<task::TaskSpec>(data) else {
        return;
    };
    if let Some(m) = spec.target.metadata.as_ref() {
        let text = String::from_utf8_lossy(data);
        let _ = task::metadata_has(&text, &m.key, &m.value);
    }
    let Ok(t) = task::Task::new(spec) else {
        return;
    };
    let json = serde_json::to_vec(&t.spec).expect("a task serialises");
    let back: task::TaskSpec = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("our own task JSON does not parse: {e}"));
    assert_eq!(back, t.spec);
    let _ = t.active_at(1_795_300_564);
}

/// X3 framing: PDUs decoded back to back from the input (as the keep-alive reader does),
/// and the input's bytes as an RTP payload encoded and decoded again unchanged.
pub fn x3(data: &[u8]) {
    let mut rest = data;
    for _ in 0..MAX_PARTS {
        match x3::decode(rest) {
            Ok((pdu, len)) => {
                assert!(len >= 40 && len <= rest.len());
                assert_eq!(pdu.payload.len(), pdu.payload_len as usize);
                rest = &rest[len..];
            }
            Err(_) => break,
        }
    }
    let Ok(xid) = x3::Xid::parse("1ab7d7a5-2b2c-4e9c-9f0e-2f1d7a3c5b10") else {
        return;
    };
    let mut out = Vec::new();
    let payload = &data[..data.len().min(65_000)];
    x3::encode_x3(
        &mut out,
        &xid,
        42,
        x3::Direction::FromTarget,
        7,
        1_795_300_564_000_000_123,
        payload,
    );
    let (pdu, len) = x3::decode(&out).unwrap_or_else(|e| panic!("our own X3 PDU: {e}"));
    assert_eq!(len, out.len());
    assert_eq!(pdu.payload, payload);
    assert!(pdu.xid == xid && pdu.correlation == 42);
}

/// Parts of `data` between occurrences of `sep`, at most [`MAX_PARTS`].
fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
    .take(MAX_PARTS)
}
