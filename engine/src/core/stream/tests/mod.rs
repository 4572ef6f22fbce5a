//! Scenario tests of the packet pipeline: two parties' sockets in a slab, datagrams fed to
//! [`handle`] on a fake clock, verdicts and counters checked. No sockets, no sleeps (as
//! str0m's `tests/common.rs` and quinn's `tests/util.rs` drive their protocol cores).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::*;
use ngmedia_codecs::Codec;

use crate::core::dtls::{DtlsIdentity, DtlsKeys, DtlsRole, DtlsSession};
use crate::core::dtmf_inject::{DtmfDigit, InjectTarget};
use crate::core::latch::{EndpointLearning, LEARNING_DELAY_MS, LOG_INTERVAL_MS};
use crate::core::media_control::{BlockDtmf, PayloadKind};
use crate::core::plan::{CallKey, DtlsParams, IceCredentials, LatchPolicy, SrtpKeys};
use crate::core::player::{MediaFrames, PlayOptions, PlaySpec};
use crate::core::srtp::{SrtpContext, SrtpSuite};
use crate::core::stun::{self, BindingRequestParams, IceRole, StunClass, StunMessage};
use crate::core::tap::{tap_queue, StreamTap, TapReceiver, TapStream};

/// The test slab holds bare streams; the socket handle is nothing.
impl Slot for Box<Stream> {
    type Socket = ();
    fn socket(&self) {}
}

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Caller A and callee B as the offer/answer signalled them, and our two sockets.
const A_SDP: &str = "192.0.2.10:5000";
const B_SDP: &str = "198.51.100.20:6000";
/// B's real source: behind a NAT that rewrote the port.
const B_NAT: &str = "203.0.113.7:61000";
/// Where B appears after a NAT rebinding (or a handover to another network).
const B_MOVED: &str = "203.0.113.7:62000";
const LOCAL_A: &str = "10.0.0.1:30000";
const LOCAL_B: &str = "10.0.0.1:30002";
/// Slots of the sockets facing A and B.
const TO_A: usize = 0;
const TO_B: usize = 1;

const KEY_A: [u8; 30] = [0xa1; 30];
const KEY_B: [u8; 30] = [0xb2; 30];

/// A call between A and B on one worker, with a clock that only moves when told.
struct Call {
    slab: Vec<Option<Box<Stream>>>,
    counters: WorkerCounters,
    now: Now,
    /// What went out through `send` (subscriber copies, transcoder output): slot, address,
    /// bytes.
    made: Vec<(usize, SocketAddr, Vec<u8>)>,
    copy_buf: Vec<u8>,
}

impl Call {
    /// A relayed call: each socket's RTP goes to the other, learning `delayed` (the last
    /// source seen in the window); the plan was applied at t = 1000 ms.
    fn new(policy: LatchPolicy) -> Call {
        Call::learning(policy, EndpointLearning::Delayed)
    }

    /// The same with another learning algorithm.
    fn learning(policy: LatchPolicy, learning: EndpointLearning) -> Call {
        let now = Now {
            wall_ms: 1_700_000_000_000,
            mono_ms: 1000,
            mono_us: 1_000_000,
        };
        let stream = |key, local, sdp, sink| {
            let latch = Latch::new(Some(a(sdp)), policy, now.mono_ms).with_learning(learning);
            let stats = Arc::new(StreamStats::default());
            let mut s = Stream::new(PortKey(key), Role::Rtp, a(local), latch, stats);
            s.forward = true;
            s.rtp_sink = Some(sink);
            s.rtcp_sink = Some(sink);
            Some(Box::new(s))
        };
        Call {
            slab: vec![
                stream(1, LOCAL_A, A_SDP, TO_B),
                stream(2, LOCAL_B, B_SDP, TO_A),
            ],
            counters: WorkerCounters::default(),
            now,
            made: Vec::new(),
            copy_buf: vec![0; 2048],
        }
    }

    fn stream(&mut self, slot: usize) -> &mut Stream {
        self.slab[slot].as_mut().unwrap()
    }

    fn advance_ms(&mut self, ms: u64) {
        self.now.mono_ms += ms;
        self.now.wall_ms += ms;
        self.now.mono_us += ms * 1000;
    }

    /// Receive `pkt` from `src` on slot `idx`: the verdict and the bytes it names, with a
    /// dropped packet counted as the IO layer counts it.
    fn recv(&mut self, idx: usize, src: &str, pkt: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; 2048];
        buf[..pkt.len()].copy_from_slice(pkt);
        let made = &mut self.made;
        let verdict = handle(
            &mut self.slab,
            &self.counters,
            idx,
            &mut buf,
            pkt.len(),
            Some(a(src)),
            false,
            self.now,
            &mut self.copy_buf,
            |(), slot, dest, bytes| {
                made.push((slot, dest, bytes.to_vec()));
                true
            },
        );
        if let Verdict::Drop(reason) = verdict {
            count_drop(&self.counters, self.slab[idx].as_ref().unwrap(), reason);
        }
        let len = match verdict {
            Verdict::Forward { len, .. } | Verdict::Reply { len, .. } => len,
            Verdict::Transcode { len } => len,
            _ => 0,
        };
        (verdict, buf[..len].to_vec())
    }

    fn drops(&self, reason: DropReason) -> u64 {
        self.counters.drops[reason as usize].load(Relaxed)
    }

    fn errors(&mut self, slot: usize) -> u64 {
        self.stream(slot).stats.errors.load(Relaxed)
    }
}

/// A PCMU packet: version 2, `pt`, `seq`, timestamp 160 × seq, `ssrc`, 160 payload bytes.
fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seq as u8)));
    p
}

/// A minimal RTCP receiver report (no report blocks).
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn forward_to(via: usize, to: &str) -> impl Fn(&Verdict) -> bool {
    let to = a(to);
    move |v| matches!(v, Verdict::Forward { via: v_via, to: v_to, .. } if *v_via == via && *v_to == to)
}

fn srtp_ctx(key: &[u8]) -> SrtpContext {
    SrtpContext::from_key_salt(SrtpSuite::AesCm128HmacSha1_80, key).unwrap()
}

fn keys(key: &[u8]) -> Option<SrtpKeys> {
    Some(SrtpKeys {
        suite: SrtpSuite::AesCm128HmacSha1_80,
        key_salt: key.to_vec(),
        mki: Vec::new(),
    })
}

#[test]
fn rtp_is_relayed_unchanged_to_the_peers_signalled_address() {
    let mut call = Call::new(LatchPolicy::default());
    let pkt = rtp(0, 1, 0xaaaa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(out, pkt);
    let (v, _) = call.recv(TO_A, A_SDP, &rtcp_rr(0xaaaa));
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(call.counters.rtp_packets.load(Relaxed), 1);
    assert_eq!(call.counters.rtcp_packets.load(Relaxed), 1);
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
}

#[test]
fn latch_follows_the_real_source_then_holds_after_the_learning_window() {
    let mut call = Call::new(LatchPolicy::default());
    // B's first packet comes through its NAT: A's media goes there at once.
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb)).0
    ));
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_NAT)));
    assert!(forward_to(TO_B, B_NAT)(
        &call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0
    ));
    // Inside the window a rebinding moves the latch again.
    call.advance_ms(LEARNING_DELAY_MS - 100);
    call.recv(TO_B, B_MOVED, &rtp(0, 2, 0xb));
    assert!(forward_to(TO_B, B_MOVED)(
        &call.recv(TO_A, A_SDP, &rtp(0, 2, 0xa)).0
    ));
    // After it the latch is confirmed: other sources are relayed but do not move it.
    call.advance_ms(200);
    call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    let (v, _) = call.recv(TO_B, B_NAT, &rtp(0, 4, 0xb));
    assert!(
        forward_to(TO_A, A_SDP)(&v),
        "other sources still relayed: {v:?}"
    );
    assert!(forward_to(TO_B, B_MOVED)(
        &call.recv(TO_A, A_SDP, &rtp(0, 3, 0xa)).0
    ));
    assert_eq!(call.drops(DropReason::SourceMismatch), 0);
}

#[test]
fn strict_source_drops_other_sources_once_the_latch_is_confirmed() {
    let mut call = Call::new(LatchPolicy {
        strict_source: true,
        ..LatchPolicy::default()
    });
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, B_NAT, &rtp(0, 2, 0xb));
    let (v, _) = call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert_eq!(v, Verdict::Drop(DropReason::SourceMismatch));
    assert_eq!(call.drops(DropReason::SourceMismatch), 1);
    assert_eq!(call.errors(TO_B), 1);
    // The dropped packet is not counted as traffic and did not move the latch.
    assert_eq!(call.stream(TO_B).stats.packets.load(Relaxed), 2);
    assert!(forward_to(TO_B, B_NAT)(
        &call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0
    ));
}

#[test]
fn media_handover_follows_each_new_source_after_the_window() {
    let mut call = Call::new(LatchPolicy {
        handover: true,
        ..LatchPolicy::default()
    });
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, B_NAT, &rtp(0, 2, 0xb));
    // The party moves networks mid-call: its media follows.
    call.advance_ms(60_000);
    let (v, _) = call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert!(forward_to(TO_A, A_SDP)(&v));
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_MOVED)));
    assert!(forward_to(TO_B, B_MOVED)(
        &call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0
    ));
}

#[test]
fn asymmetric_keeps_sending_to_the_signalled_address() {
    let mut call = Call::new(LatchPolicy {
        learn: false,
        ..LatchPolicy::default()
    });
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    assert!(forward_to(TO_B, B_SDP)(
        &call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0
    ));
}

#[test]
fn no_destination_until_the_peer_is_known() {
    let mut call = Call::new(LatchPolicy::default());
    call.stream(TO_B).latch = Latch::new(None, LatchPolicy::default(), 1000);
    let (v, _) = call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa));
    assert_eq!(v, Verdict::Drop(DropReason::NoDestination));
    assert_eq!(call.drops(DropReason::NoDestination), 1);
    // Its first packet makes B known.
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    assert!(forward_to(TO_B, B_NAT)(
        &call.recv(TO_A, A_SDP, &rtp(0, 2, 0xa)).0
    ));
}

#[test]
fn malformed_datagrams_and_rtp_on_an_rtcp_port_are_dropped() {
    let mut call = Call::new(LatchPolicy::default());
    assert_eq!(
        call.recv(TO_A, A_SDP, &[0x80, 0]).0,
        Verdict::Drop(DropReason::Malformed)
    );
    call.stream(TO_A).role = Role::Rtcp;
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(call.drops(DropReason::Malformed), 2);
    // Nothing malformed latched anything.
    assert_eq!(call.stream(TO_A).latch.learned(), None);
}

#[test]
fn srtp_is_removed_from_one_party_and_added_for_the_other() {
    let mut call = Call::new(LatchPolicy::default());
    rekey(&mut call.stream(TO_A).srtp_in, keys(&KEY_A), PortKey(1));
    rekey(&mut call.stream(TO_B).srtp_out, keys(&KEY_B), PortKey(2));
    let (mut from_a, mut at_b) = (srtp_ctx(&KEY_A), srtp_ctx(&KEY_B));
    for seq in 1..=3 {
        let plain = rtp(0, seq, 0xa);
        let mut wire = plain.clone();
        wire.resize(plain.len() + 32, 0);
        let n = from_a.protect_rtp(&mut wire, plain.len()).unwrap();
        let (v, mut out) = call.recv(TO_A, A_SDP, &wire[..n]);
        assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
        assert_eq!(out.len(), plain.len() + 10, "B gets SRTP with its own key");
        let m = at_b.unprotect_rtp(&mut out).unwrap();
        assert_eq!(out[..m], plain[..]);
    }
    // Wire bytes are counted, as received.
    assert_eq!(call.counters.rtp_bytes.load(Relaxed), 3 * (172 + 10));
}

#[test]
fn forged_and_replayed_srtp_is_dropped_before_it_can_move_the_latch() {
    let mut call = Call::new(LatchPolicy::default());
    rekey(&mut call.stream(TO_B).srtp_in, keys(&KEY_B), PortKey(2));
    let mut from_b = srtp_ctx(&KEY_B);
    let plain = rtp(0, 1, 0xb);
    let mut wire = plain.clone();
    wire.resize(plain.len() + 32, 0);
    let n = from_b.protect_rtp(&mut wire, plain.len()).unwrap();
    let mut forged = wire[..n].to_vec();
    forged[20] ^= 1;
    let (v, _) = call.recv(TO_B, B_MOVED, &forged);
    assert_eq!(v, Verdict::Drop(DropReason::SrtpAuth));
    assert_eq!(
        call.stream(TO_B).latch.learned(),
        None,
        "forgery moved the latch"
    );
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_NAT, &wire[..n]).0
    ));
    let (v, _) = call.recv(TO_B, B_NAT, &wire[..n]);
    assert_eq!(v, Verdict::Drop(DropReason::SrtpReplay));
    assert_eq!(call.errors(TO_B), 2);
    // Plain RTP where SRTP was negotiated fails authentication too.
    assert_eq!(
        call.recv(TO_B, B_NAT, &rtp(0, 5, 0xb)).0,
        Verdict::Drop(DropReason::SrtpAuth)
    );
}

/// Our ICE credentials on A's socket, and a check from A signed with them.
const UFRAG: &str = "ourufrag";
const PWD: &str = "our-ice-password-22chars";

fn binding_request(tid: u8, username: &str, key: &str, use_candidate: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let params = BindingRequestParams {
        username: username.as_bytes(),
        key: key.as_bytes(),
        priority: 0x6e00_1eff,
        role: IceRole::Controlling(42),
        use_candidate,
        software: None,
    };
    let n = stun::write_binding_request(&mut buf, &[tid; 12], &params, 0).unwrap();
    buf.truncate(n);
    buf
}

fn with_ice(call: &mut Call) {
    call.stream(TO_A).ice = Some(Box::new(IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
        full: None,
    }));
}

mod hijack;
mod ice_dtls;
mod media;
mod opaque;
