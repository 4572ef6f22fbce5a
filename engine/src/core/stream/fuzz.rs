//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay: the packet
//! pipeline of a two-party call driven with arbitrary datagrams on a fake clock, and SRTP
//! round trips. Not part of the engine's API (hidden from the docs); they live here because
//! the pipeline's types are crate-private.
//!
//! Each entry point takes raw fuzzer bytes, never panics on any input of its own accord,
//! and checks what must hold whatever the input (an SRTP round trip gives back the
//! plaintext, a verdict's length fits the buffer).

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::{count_drop, handle, rekey, Latch, Now, Role, Slot, Stream, Verdict};
use crate::core::latch::EndpointLearning;
use crate::core::plan::{IceCredentials, LatchPolicy, PortKey, SrtpKeys};
use crate::core::srtp::{SrtpContext, SrtpSuite};
use crate::core::stats::{StreamStats, WorkerCounters};

/// A slab entry of the fuzzed call.
struct FuzzSlot(Box<Stream>);

impl Deref for FuzzSlot {
    type Target = Stream;
    fn deref(&self) -> &Stream {
        &self.0
    }
}

impl DerefMut for FuzzSlot {
    fn deref_mut(&mut self) -> &mut Stream {
        &mut self.0
    }
}

impl Slot for FuzzSlot {
    type Socket = ();
    fn socket(&self) {}
}

const A_SDP: &str = "192.0.2.10:5000";
const B_SDP: &str = "198.51.100.20:6000";
/// Sources a datagram may come from: the parties as signalled, and two others.
const SOURCES: [&str; 4] = [A_SDP, B_SDP, "203.0.113.7:61000", "192.0.2.66:40000"];
const KEY: [u8; 46] = [0x5a; 46];
/// Most datagrams one input feeds (keeps one run short).
const MAX_DATAGRAMS: usize = 64;
/// A master key identifier, used when bit 6 of the suite byte is set (SDES `|MKI:4`).
const MKI: [u8; 4] = [0, 0, 0, 1];

fn mki(pick: u8) -> &'static [u8] {
    if pick & 0x40 != 0 {
        &MKI
    } else {
        &[]
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("constant address")
}

/// The packet pipeline (`core::stream::handle`): classify, STUN, DTLS, SRTP unprotect, latch,
/// counters and quality (RTP, compound RTCP with XR), media control, RTCP feedback
/// stripping, SRTP protect. `data[0]` chooses the call's set-up (SRTP each way and its
/// suite, ICE, strict source, handover, learning, RTCP roles), `data[1]` the SRTP suite, an
/// MKI (bit 6) and RTCP feedback stripping (bit 7); then, from `data[1]` on, each datagram is a
/// header byte (source in bits 0–1, arrival socket in bit 2, time step in bits 3–7 × 50 ms),
/// a length byte pair and the bytes.
pub fn packets(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let suite_pick = rest.first().copied().unwrap_or(0);
    let suite = SrtpSuite::ALL[usize::from(suite_pick) % SrtpSuite::ALL.len()];
    let keys = Some(SrtpKeys {
        suite,
        key_salt: KEY[..suite.key_salt_len()].to_vec(),
        mki: mki(suite_pick).to_vec(),
    });
    let policy = LatchPolicy {
        learn: setup & 0x40 == 0,
        strict_source: setup & 0x04 != 0,
        handover: setup & 0x08 != 0,
        learning: Some(match setup >> 7 {
            0 => EndpointLearning::Heuristic,
            _ => EndpointLearning::Delayed,
        }),
    };
    let mut now = Now {
        wall_ms: 1_700_000_000_000,
        mono_ms: 1000,
        mono_us: 1_000_000,
    };
    let stream = |key: u64, local: &str, sdp: &str, sink: usize, role: Role| {
        let latch = Latch::new(Some(addr(sdp)), policy, now.mono_ms);
        let stats = Arc::new(StreamStats::default());
        let mut s = Stream::new(PortKey(key), role, addr(local), latch, stats);
        s.forward = true;
        s.rtp_sink = Some(sink);
        s.rtcp_sink = Some(sink);
        Some(FuzzSlot(Box::new(s)))
    };
    let b_role = if setup & 0x20 != 0 {
        Role::Rtcp
    } else {
        Role::Rtp
    };
    let mut slab = vec![
        stream(1, "10.0.0.1:30000", A_SDP, 1, Role::Rtp),
        stream(2, "10.0.0.1:30003", B_SDP, 0, b_role),
    ];
    if let Some(Some(a)) = slab.get_mut(0) {
        if setup & 0x01 != 0 {
            rekey(&mut a.srtp_in, keys.clone(), PortKey(1));
        }
        if setup & 0x10 != 0 {
            a.ice = Some(Box::new(IceCredentials {
                ufrag: "fuzzufrag".into(),
                pwd: "fuzz-ice-password-22chr".into(),
                full: None,
            }));
        }
    }
    if let Some(Some(b)) = slab.get_mut(1) {
        if setup & 0x02 != 0 {
            rekey(&mut b.srtp_out, keys, PortKey(2));
        }
        b.rtcp_feedback = suite_pick & 0x80 != 0;
    }
    let counters = WorkerCounters::default();
    let mut buf = vec![0u8; 1500 + super::SRTP_TAIL_ROOM];
    let mut copy_buf = vec![0u8; 1500 + super::SRTP_TAIL_ROOM];
    for _ in 0..MAX_DATAGRAMS {
        let [head, hi, lo, tail @ ..] = rest else {
            return;
        };
        let len = (usize::from(*hi) << 8 | usize::from(*lo))
            .min(tail.len())
            .min(1500);
        let (dgram, next) = tail.split_at(len);
        rest = next;
        let step = u64::from(head >> 3) * 50;
        now.mono_ms += step;
        now.wall_ms += step;
        now.mono_us += step * 1000;
        let src = addr(SOURCES[usize::from(head & 3)]);
        let arrived = usize::from(head >> 2 & 1);
        buf[..len].copy_from_slice(dgram);
        let verdict = handle(
            &mut slab,
            &counters,
            arrived,
            &mut buf,
            len,
            Some(src),
            false,
            now,
            &mut copy_buf,
            |(), _, _, bytes| !bytes.is_empty(),
        );
        match verdict {
            Verdict::Forward { len: n, .. }
            | Verdict::Reply { len: n, .. }
            | Verdict::Transcode { len: n }
            | Verdict::Gateway { len: n } => {
                assert!(n <= buf.len(), "verdict length {n} beyond the buffer");
            }
            Verdict::Drop(reason) => {
                if let Some(Some(e)) = slab.get(arrived) {
                    count_drop(&counters, e, reason);
                }
            }
            Verdict::Absorbed(_) => {}
        }
    }
}

/// SRTP and SRTCP: `data[0]` picks the suite (bit 7: SRTCP, bit 6: with an MKI); the rest is split into
/// packets at every `0xfe` byte. Each packet is protected by a fresh sender and unprotected
/// by a fresh receiver with the same key, which must give the plaintext back whatever the
/// header says (extensions, padding, CSRCs, compound RTCP); the same packets also go through
/// one long-lived sender and receiver (replay window, rollover counter), whose refusals are
/// allowed, and raw to the receiver, which must refuse them without panicking.
pub fn srtp(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let suite = SrtpSuite::ALL[usize::from(pick & 0x3f) % SrtpSuite::ALL.len()];
    let key = &KEY[..suite.key_salt_len()];
    let context = || {
        SrtpContext::from_key_salt(suite, key)
            .expect("key of the suite's length")
            .with_mki(mki(pick))
    };
    let (mut tx, mut rx) = (context(), context());
    let rtcp = pick & 0x80 != 0;
    let protect = |ctx: &mut SrtpContext, buf: &mut [u8], len: usize| {
        if rtcp {
            ctx.protect_rtcp(buf, len)
        } else {
            ctx.protect_rtp(buf, len)
        }
    };
    let unprotect = |ctx: &mut SrtpContext, buf: &mut [u8]| {
        if rtcp {
            ctx.unprotect_rtcp(buf)
        } else {
            ctx.unprotect_rtp(buf)
        }
    };
    let mut buf = vec![0u8; 2048];
    for pkt in rest.split(|&b| b == 0xfe).take(MAX_DATAGRAMS) {
        if pkt.len() > 1500 {
            continue;
        }
        buf[..pkt.len()].copy_from_slice(pkt);
        if let Ok(n) = protect(&mut context(), &mut buf, pkt.len()) {
            let mut wire = buf[..n].to_vec();
            let m = unprotect(&mut context(), &mut wire)
                .unwrap_or_else(|e| panic!("own SRTP refused: {e}"));
            assert_eq!(&wire[..m], pkt, "SRTP round trip changed the packet");
        }
        buf[..pkt.len()].copy_from_slice(pkt);
        if let Ok(n) = protect(&mut tx, &mut buf, pkt.len()) {
            let mut wire = buf[..n].to_vec();
            if let Ok(m) = unprotect(&mut rx, &mut wire) {
                assert_eq!(&wire[..m], pkt, "SRTP stream changed a packet");
            }
        }
        let mut raw = pkt.to_vec();
        let _ = unprotect(&mut rx, &mut raw);
    }
}
