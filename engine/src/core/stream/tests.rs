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

#[test]
fn stun_check_is_answered_to_its_source_and_a_nomination_moves_the_party() {
    let mut call = Call::new(LatchPolicy::default());
    with_ice(&mut call);
    let user = format!("{UFRAG}:theirs");
    let a_host = "192.0.2.10:5002";
    let (v, reply) = call.recv(TO_A, a_host, &binding_request(1, &user, PWD, false));
    assert!(
        matches!(v, Verdict::Reply { to, .. } if to == a(a_host)),
        "{v:?}"
    );
    let msg = StunMessage::parse(&reply).unwrap();
    assert_eq!(msg.class, StunClass::Success);
    assert_eq!(msg.transaction_id, [1; 12]);
    assert_eq!(msg.xor_mapped_address, Some(a(a_host)));
    // Checked but not nominated: media still goes to the signalled address.
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0
    ));
    // The nominated pair decides where A's media goes.
    call.recv(TO_A, a_host, &binding_request(2, &user, PWD, true));
    assert!(forward_to(TO_A, a_host)(
        &call.recv(TO_B, B_SDP, &rtp(0, 2, 0xb)).0
    ));
    assert_eq!(call.drops(DropReason::Stun), 0);
}

#[test]
fn stun_with_the_wrong_password_gets_an_error_answer_and_counts_as_a_drop() {
    let mut call = Call::new(LatchPolicy::default());
    with_ice(&mut call);
    let (v, reply) = call.recv(
        TO_A,
        A_SDP,
        &binding_request(3, &format!("{UFRAG}:theirs"), "wrong-password", true),
    );
    assert!(matches!(v, Verdict::Reply { .. }), "{v:?}");
    let msg = StunMessage::parse(&reply).unwrap();
    assert_eq!(msg.class, StunClass::Error);
    assert_eq!(msg.error_code.map(|(code, _)| code), Some(401));
    assert_eq!(call.drops(DropReason::Stun), 1);
    assert_eq!(call.stream(TO_A).latch.learned(), None);
    // Without ICE on the socket STUN is dropped unanswered.
    let (v, _) = call.recv(TO_B, B_SDP, &binding_request(4, "x:y", PWD, false));
    assert_eq!(v, Verdict::Drop(DropReason::Stun));
}

/// Drain every datagram `link` queued into `peer`; the keys `peer` ends up with, if any.
fn deliver_to_peer(link: &mut DtlsLink, peer: &mut DtlsSession) -> Option<DtlsKeys> {
    let mut keys = None;
    while let Some((_, d)) = link.poll_datagram(None) {
        if let Some(k) = peer.handle_datagram(&d).unwrap() {
            keys = Some(k);
        }
    }
    keys
}

#[test]
fn dtls_records_go_to_the_association_whose_keys_then_carry_srtp() {
    let mut call = Call::new(LatchPolicy::default());
    let ours = Arc::new(DtlsIdentity::generate().unwrap());
    let theirs = DtlsIdentity::generate().unwrap();
    let params = DtlsParams {
        role: DtlsRole::Server,
        remote: theirs.fingerprint().clone(),
        identity: ours.clone(),
    };
    call.stream(TO_A).dtls = DtlsLink::new(params, PortKey(1));
    // Before the handshake: no media either way.
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0,
        Verdict::Drop(DropReason::Dtls)
    );
    assert_eq!(
        call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0,
        Verdict::Drop(DropReason::Dtls),
        "plain RTP must not reach a DTLS-SRTP party before its keys"
    );
    let mut client =
        DtlsSession::new(&theirs, DtlsRole::Client, ours.fingerprint().clone()).unwrap();
    client.start().unwrap();
    let mut client_keys = None;
    for _ in 0..10 {
        let mut fed = false;
        while let Some(d) = client.poll_datagram() {
            fed = true;
            let (v, _) = call.recv(TO_A, A_SDP, &d);
            assert_eq!(v, Verdict::Absorbed(Absorbed::Dtls));
        }
        let link = call.stream(TO_A).dtls.as_deref_mut().unwrap();
        if let Some(k) = deliver_to_peer(link, &mut client) {
            client_keys = Some(k);
        }
        if !fed {
            break;
        }
    }
    let client_keys = client_keys.expect("handshake finished");
    assert!(call.stream(TO_A).srtp_in.is_some() && call.stream(TO_A).srtp_out.is_some());
    // A now sends SRTP with its exported key; B gets plain RTP.
    let mut from_a = SrtpContext::from_key_salt(client_keys.suite, &client_keys.local).unwrap();
    let plain = rtp(0, 2, 0xa);
    let mut wire = plain.clone();
    wire.resize(plain.len() + 32, 0);
    let n = from_a.protect_rtp(&mut wire, plain.len()).unwrap();
    let (v, out) = call.recv(TO_A, A_SDP, &wire[..n]);
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(out, plain);
    // A DTLS record on a socket without DTLS is dropped.
    let (v, _) = call.recv(TO_B, B_SDP, &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(v, Verdict::Drop(DropReason::Dtls));
}

fn tap(call: &mut Call, slot: usize, intercept: bool) -> TapReceiver {
    let (tx, rx) = tap_queue(8);
    let t = Some(StreamTap::new(
        CallKey(7),
        TapStream { leg: 0, media: 0 },
        &tx,
    ));
    let taps = &mut call.stream(slot).taps;
    if intercept {
        taps.intercept = t;
    } else {
        taps.record = t;
    }
    rx
}

#[test]
fn recording_and_interception_get_decrypted_copies_of_accepted_rtp_only() {
    let mut call = Call::new(LatchPolicy {
        strict_source: true,
        ..LatchPolicy::default()
    });
    let record = tap(&mut call, TO_A, false);
    let intercept = tap(&mut call, TO_A, true);
    rekey(&mut call.stream(TO_A).srtp_in, keys(&KEY_A), PortKey(1));
    let mut from_a = srtp_ctx(&KEY_A);
    let plain = rtp(0, 1, 0xa);
    let mut wire = plain.clone();
    wire.resize(plain.len() + 32, 0);
    let n = from_a.protect_rtp(&mut wire, plain.len()).unwrap();
    call.recv(TO_A, A_SDP, &wire[..n]);
    for rx in [&record, &intercept] {
        let copy = rx.try_recv().expect("a copy");
        assert_eq!(copy.bytes(), &plain[..]);
        assert_eq!((copy.src, copy.local), (a(A_SDP), a(LOCAL_A)));
        assert_eq!(copy.arrival_ms, call.now.wall_ms);
    }
    // Forged or refused packets are not copied; RTCP is not either.
    let mut forged = wire[..n].to_vec();
    forged[30] ^= 1;
    call.recv(TO_A, A_SDP, &forged);
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_A, "192.0.2.99:1", &rtp(0, 2, 0xa));
    call.recv(TO_A, A_SDP, &rtcp_rr(0xa));
    assert!(record.try_recv().is_none() && intercept.try_recv().is_none());
}

#[test]
fn a_full_recorder_queue_never_stops_the_relay() {
    let mut call = Call::new(LatchPolicy::default());
    let _record = tap(&mut call, TO_A, false);
    let mut forwarded = 0;
    for seq in 1..=20 {
        if matches!(
            call.recv(TO_A, A_SDP, &rtp(0, seq, 0xa)).0,
            Verdict::Forward { .. }
        ) {
            forwarded += 1;
        }
    }
    assert_eq!(forwarded, 20);
    assert!(call.drops(DropReason::TapFull) > 0);
    assert_eq!(call.errors(TO_A), 0, "a skipped copy is not a stream error");
}

#[test]
fn a_player_toward_a_party_replaces_what_the_other_party_sends() {
    let mut call = Call::new(LatchPolicy::default());
    let codec = Codec::from_static_pt(0).unwrap();
    let frames = MediaFrames::encode(&codec, &vec![0i16; 8000], 8000).unwrap();
    let spec = PlaySpec {
        frames: Arc::new(frames),
        pt: 0,
        options: PlayOptions::default(),
    };
    let line = call.stream(TO_B).line;
    let player = Player::new(&spec, &line, call.now.mono_us, (1, 2, 3));
    call.stream(TO_B).player = Some(Box::new(player));
    let (v, _) = call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa));
    assert_eq!(v, Verdict::Absorbed(Absorbed::Replaced));
    // Counted as received, not as an error; RTCP still flows; the other way is untouched.
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
    assert_eq!(call.errors(TO_A), 0);
    assert!(forward_to(TO_B, B_SDP)(
        &call.recv(TO_A, A_SDP, &rtcp_rr(0xa)).0
    ));
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0
    ));
    // When the player stops, the relay takes the line back.
    call.stream(TO_B).player = None;
    assert!(forward_to(TO_B, B_SDP)(
        &call.recv(TO_A, A_SDP, &rtp(0, 2, 0xa)).0
    ));
}

#[test]
fn block_media_absorbs_rtp_and_rtcp_but_still_counts_and_latches() {
    let mut call = Call::new(LatchPolicy::default());
    call.stream(TO_B).control = StreamControl {
        block_media: true,
        ..StreamControl::default()
    };
    assert_eq!(
        call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb)).0,
        Verdict::Absorbed(Absorbed::Blocked)
    );
    assert_eq!(
        call.recv(TO_B, B_NAT, &rtcp_rr(0xb)).0,
        Verdict::Absorbed(Absorbed::Blocked)
    );
    assert_eq!(call.stream(TO_B).stats.packets.load(Relaxed), 1);
    assert_eq!(call.errors(TO_B), 0);
    assert!(forward_to(TO_B, B_NAT)(
        &call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0
    ));
}

#[test]
fn silence_media_blanks_the_payload_and_block_dtmf_absorbs_events() {
    let mut call = Call::new(LatchPolicy::default());
    call.stream(TO_A).control = StreamControl {
        silence: true,
        payloads: vec![(0, PayloadKind::Pcmu), (101, PayloadKind::Event)],
        ..StreamControl::default()
    };
    let pkt = rtp(0, 1, 0xa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    assert!(forward_to(TO_B, B_SDP)(&v));
    assert_eq!(out[..12], pkt[..12], "header kept");
    assert!(out[12..].iter().all(|&b| b == 0xff), "PCMU silence");
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(101, 2, 0xa)).0,
        Verdict::Absorbed(Absorbed::Blocked),
        "a silenced party's digits are not heard either"
    );
    call.stream(TO_A).control = StreamControl {
        block_dtmf: BlockDtmf::Drop,
        payloads: vec![(0, PayloadKind::Pcmu), (101, PayloadKind::Event)],
        ..StreamControl::default()
    };
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(101, 3, 0xa)).0,
        Verdict::Absorbed(Absorbed::Blocked)
    );
    let (v, out) = call.recv(TO_A, A_SDP, &rtp(0, 4, 0xa));
    assert!(forward_to(TO_B, B_SDP)(&v));
    assert_eq!(out, rtp(0, 4, 0xa));
}

#[test]
fn a_stream_not_forwarded_is_counted_and_absorbed() {
    let mut call = Call::new(LatchPolicy::default());
    call.stream(TO_A).forward = false;
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa)).0,
        Verdict::Absorbed(Absorbed::NotForwarding)
    );
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
    assert_eq!(call.errors(TO_A), 0);
}

#[test]
fn transcoded_streams_hand_rtp_to_the_transcoder_and_terminate_rtcp() {
    let mut call = Call::new(LatchPolicy::default());
    call.stream(TO_A).terminate_rtcp = true;
    call.stream(TO_A).inject = Some(Box::new(DtmfInjector::new(InjectTarget {
        event_pt: Some(101),
        audio: vec![(0, Codec::from_static_pt(0).unwrap())],
    })));
    let inj = call.stream(TO_A).inject.as_deref_mut().unwrap();
    let digit = DtmfDigit {
        event: 5,
        volume: 10,
        duration_ms: 100,
        pause_ms: 50,
    };
    assert!(inj.push(digit, 20));
    let pkt = rtp(0, 1, 0xa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    assert_eq!(v, Verdict::Transcode { len: pkt.len() });
    assert_eq!(out, pkt);
    assert_eq!(
        call.recv(TO_A, A_SDP, &rtcp_rr(0xa)).0,
        Verdict::Absorbed(Absorbed::RtcpTerminated)
    );
}

/// PCMU from A transcoded to PCMA, as a plan would set it up.
fn pcmu_to_pcma() -> Box<Transcoder> {
    use crate::core::transcode::{CodecEnd, PtSet, TranscodeSpec};
    let end = |name, pt| CodecEnd {
        codec: Codec::lookup(name, 8000, None, None).unwrap(),
        pt,
        ptime_ms: 20,
        event_pt: None,
        bitrate: None,
        cn_pt: None,
        dtx: false,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
    };
    Box::new(
        Transcoder::new(TranscodeSpec {
            input: end("PCMU", 0),
            output: end("PCMA", 8),
            detect_dtmf: false,
            passthrough: PtSet::NONE,
        })
        .unwrap(),
    )
}

#[test]
fn a_strangers_rtp_never_reaches_a_confirmed_partys_transcoder() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    call.stream(TO_A).transcoder = Some(pcmu_to_pcma());
    const STRANGER: &str = "192.0.2.99:40000";
    // A's own address confirms at once; its RTP goes to the transcoder.
    let (v, _) = call.recv(TO_A, A_SDP, &rtp(0, 1, 0xa));
    assert!(matches!(v, Verdict::Transcode { .. }), "{v:?}");
    // A stranger's RTP would be decoded into A's stream: dropped, counted, not traffic.
    let (v, _) = call.recv(TO_A, STRANGER, &rtp(0, 9000, 0x5));
    assert_eq!(v, Verdict::Drop(DropReason::SourceMismatch));
    assert_eq!(call.drops(DropReason::SourceMismatch), 1);
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
    // A goes on as before, and the stranger moved nothing.
    let (v, _) = call.recv(TO_A, A_SDP, &rtp(0, 2, 0xa));
    assert!(matches!(v, Verdict::Transcode { .. }), "{v:?}");
    assert_eq!(call.stream(TO_A).latch.learned(), Some(a(A_SDP)));
    // On a plain stream the same stranger is relayed as rtpengine relays it.
    let (v, _) = call.recv(TO_B, STRANGER, &rtp(0, 9000, 0x5));
    assert!(forward_to(TO_A, A_SDP)(&v), "{v:?}");
}

#[test]
fn subscribers_get_copies_protected_for_their_own_party() {
    let mut call = Call::new(LatchPolicy::default());
    // A third socket, subscribed to what A sends, toward a monitoring party with SRTP.
    let latch = Latch::new(Some(a("192.0.2.30:7000")), LatchPolicy::default(), 1000);
    let mut sub = Stream::new(
        PortKey(3),
        Role::Rtp,
        a("10.0.0.1:30004"),
        latch,
        Arc::new(StreamStats::default()),
    );
    rekey(&mut sub.srtp_out, keys(&KEY_B), PortKey(3));
    call.slab.push(Some(Box::new(sub)));
    call.stream(TO_A).copies = vec![CopyTarget {
        key: PortKey(3),
        slot: Some(2),
        egress: false,
        block: false,
        silence: false,
    }];
    let pkt = rtp(0, 1, 0xa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    assert!(forward_to(TO_B, B_SDP)(&v));
    assert_eq!(out, pkt);
    assert_eq!(call.made.len(), 1);
    let (slot, dest, mut copy) = call.made.remove(0);
    assert_eq!((slot, dest), (2, a("192.0.2.30:7000")));
    let m = srtp_ctx(&KEY_B).unprotect_rtp(&mut copy).unwrap();
    assert_eq!(copy[..m], pkt[..]);
}

#[test]
fn rtcp_feedback_is_stripped_for_a_party_without_avpf() {
    let mut call = Call::new(LatchPolicy::default());
    // A PLI (RTPFB/PSFB 206, FMT 1) alone: nothing left to send B.
    let mut pli = vec![0x81, 206, 0, 2];
    pli.extend_from_slice(&0xau32.to_be_bytes());
    pli.extend_from_slice(&0xbu32.to_be_bytes());
    assert_eq!(
        call.recv(TO_A, A_SDP, &pli).0,
        Verdict::Drop(DropReason::RtcpFeedback)
    );
    call.stream(TO_B).rtcp_feedback = true;
    let (v, out) = call.recv(TO_A, A_SDP, &pli);
    assert!(forward_to(TO_B, B_SDP)(&v));
    assert_eq!(out, pli);
}

// RTP Bleed: a stranger sending to a party's media port must not get the other party's media.

/// A stranger who sprays the engine's media ports.
const STRANGER: &str = "192.0.2.66:40000";
/// B behind a NAT that kept its address but not its port (the SDP names B's address).
const B_SAME_IP: &str = "198.51.100.20:61000";

/// A sends one packet; where does it go?
fn a_media_goes_to(call: &mut Call, seq: u16) -> Verdict {
    call.recv(TO_A, A_SDP, &rtp(0, seq, 0xa)).0
}

#[test]
fn hijack_during_learning_loses_to_the_sdp_address() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    // The stranger is first: media follows it for now (nothing better is known)...
    call.recv(TO_B, STRANGER, &rtp(0, 1, 0x5));
    assert!(forward_to(TO_B, STRANGER)(&a_media_goes_to(&mut call, 1)));
    // ...until B's own packet: it comes from the SDP's address, so B is confirmed at once.
    call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb));
    assert!(call.stream(TO_B).latch.confirmed());
    for seq in 2..20 {
        call.advance_ms(20);
        call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert!(forward_to(TO_B, B_SDP)(&a_media_goes_to(&mut call, seq)));
    }
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_SDP)));
}

#[test]
fn hijack_during_learning_loses_to_the_sdp_ip_behind_nat() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    call.recv(TO_B, B_SAME_IP, &rtp(0, 1, 0xb));
    // The stranger keeps sending through the rest of the window, after B's last packet.
    for seq in 1..50 {
        call.advance_ms(20);
        call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert!(forward_to(TO_B, B_SAME_IP)(&a_media_goes_to(
            &mut call, seq
        )));
    }
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, STRANGER, &rtp(0, 60, 0x5));
    assert!(call.stream(TO_B).latch.confirmed());
    assert!(forward_to(TO_B, B_SAME_IP)(&a_media_goes_to(&mut call, 60)));
}

#[test]
fn hijack_of_a_silent_side_after_the_window_is_refused() {
    // Media flowed both ways inside the learning window, then B only listens (hold music,
    // a one-way announcement, a muted phone). Seconds later a stranger sends to B's port.
    for learning in [EndpointLearning::Heuristic, EndpointLearning::Delayed] {
        let mut call = Call::learning(LatchPolicy::default(), learning);
        for seq in 1..=10 {
            call.recv(TO_B, B_NAT, &rtp(0, seq, 0xb));
            assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, seq)));
            call.advance_ms(20);
        }
        call.advance_ms(4000);
        for seq in 1..=50 {
            let (v, _) = call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
            assert!(
                forward_to(TO_A, A_SDP)(&v),
                "without strict-source a stranger's packets are relayed, as by rtpengine"
            );
            call.advance_ms(20);
        }
        assert!(
            forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 11)),
            "{learning:?}: A's media went to the stranger"
        );
        assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_NAT)));
        assert!(call.stream(TO_B).latch.confirmed());
    }
}

#[test]
fn strict_source_refusals_are_counted_per_packet() {
    let mut call = Call::learning(
        LatchPolicy {
            strict_source: true,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS + 1000);
    for seq in 1..=100 {
        let (v, _) = call.recv(TO_B, STRANGER, &rtp(0, seq, 0x5));
        assert_eq!(v, Verdict::Drop(DropReason::SourceMismatch));
    }
    assert_eq!(call.drops(DropReason::SourceMismatch), 100);
    assert_eq!(call.errors(TO_B), 100);
    assert_eq!(call.stream(TO_B).stats.packets.load(Relaxed), 1);
    // One log line was due at the first refusal; the next one only a minute later, with
    // the 99 refusals since, this one and the one probed here.
    let now = call.now.mono_ms;
    assert_eq!(call.stream(TO_B).latch.note_refusal(now), None);
    assert_eq!(
        call.stream(TO_B).latch.note_refusal(now + LOG_INTERVAL_MS),
        Some(101)
    );
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
}

#[test]
fn srtp_stranger_is_refused_and_the_party_may_move_with_authenticated_packets() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    rekey(&mut call.stream(TO_B).srtp_in, keys(&KEY_B), PortKey(2));
    let mut from_b = srtp_ctx(&KEY_B);
    let mut protect = |seq: u16| {
        let plain = rtp(0, seq, 0xb);
        let mut wire = plain.clone();
        wire.resize(plain.len() + 32, 0);
        let n = from_b.protect_rtp(&mut wire, plain.len()).unwrap();
        wire.truncate(n);
        wire
    };
    // B's first authenticated packet confirms its source at once.
    call.recv(TO_B, B_NAT, &protect(1));
    assert!(call.stream(TO_B).latch.confirmed());
    // A stranger can neither forge nor replay its way in.
    let replay = protect(2);
    call.recv(TO_B, B_NAT, &replay);
    assert_eq!(
        call.recv(TO_B, STRANGER, &replay).0,
        Verdict::Drop(DropReason::SrtpReplay)
    );
    assert_eq!(
        call.recv(TO_B, STRANGER, &rtp(0, 3, 0xb)).0,
        Verdict::Drop(DropReason::SrtpAuth)
    );
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
    // B's NAT rebinds mid-call: its next authenticated packet moves the latch, no
    // signalling and no media-handover needed.
    call.advance_ms(60_000);
    let (v, _) = call.recv(TO_B, B_MOVED, &protect(3));
    assert!(forward_to(TO_A, A_SDP)(&v), "{v:?}");
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 2)));
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_MOVED)));
}

#[test]
fn ice_nomination_decides_and_plain_rtp_cannot_move_it() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    with_ice(&mut call);
    let user = format!("{UFRAG}:theirs");
    let a_host = "192.0.2.10:5002";
    call.recv(TO_A, a_host, &binding_request(1, &user, PWD, true));
    assert!(call.stream(TO_A).latch.nominated());
    // A stranger's RTP, and a check signed with a wrong password, move nothing.
    call.advance_ms(5000);
    call.recv(TO_A, STRANGER, &rtp(0, 1, 0x5));
    let (v, _) = call.recv(
        TO_A,
        STRANGER,
        &binding_request(2, &user, "not-the-password-at-all", true),
    );
    assert!(matches!(v, Verdict::Reply { .. }), "an error answer: {v:?}");
    assert!(forward_to(TO_A, a_host)(
        &call.recv(TO_B, B_SDP, &rtp(0, 1, 0xb)).0
    ));
    // A new valid nomination does (the party's path changed).
    call.recv(TO_A, A_SDP, &binding_request(3, &user, PWD, true));
    assert!(forward_to(TO_A, A_SDP)(
        &call.recv(TO_B, B_SDP, &rtp(0, 2, 0xb)).0
    ));
}

#[test]
fn nat_rebinding_with_media_handover_moves_a_confirmed_latch() {
    let mut call = Call::learning(
        LatchPolicy {
            handover: true,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS);
    call.recv(TO_B, B_NAT, &rtp(0, 2, 0xb));
    assert!(call.stream(TO_B).latch.confirmed());
    call.advance_ms(30_000);
    call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 1)));
}

#[test]
fn a_reinvite_to_a_new_address_learns_again() {
    let mut call = Call::learning(LatchPolicy::default(), EndpointLearning::Heuristic);
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS + 10_000);
    call.recv(TO_B, B_MOVED, &rtp(0, 2, 0xb));
    assert!(forward_to(TO_B, B_NAT)(&a_media_goes_to(&mut call, 1)));
    // B re-INVITEs from another network: a new SDP address, so the plan relatches.
    let moved_sdp = a("203.0.113.50:7000");
    let now = call.now.mono_ms;
    let latch = &mut call.stream(TO_B).latch;
    assert!(latch.update(Some(moved_sdp), LatchPolicy::default(), true, now));
    assert!(forward_to(TO_B, "203.0.113.50:7000")(&a_media_goes_to(
        &mut call, 2
    )));
    call.recv(TO_B, B_MOVED, &rtp(0, 3, 0xb));
    assert!(forward_to(TO_B, B_MOVED)(&a_media_goes_to(&mut call, 3)));
}

#[test]
fn asymmetric_ignores_every_source_for_the_destination() {
    let mut call = Call::learning(
        LatchPolicy {
            learn: false,
            ..LatchPolicy::default()
        },
        EndpointLearning::Heuristic,
    );
    call.recv(TO_B, B_NAT, &rtp(0, 1, 0xb));
    call.advance_ms(LEARNING_DELAY_MS * 2);
    call.recv(TO_B, STRANGER, &rtp(0, 2, 0xb));
    assert!(forward_to(TO_B, B_SDP)(&a_media_goes_to(&mut call, 1)));
}

/// Both parties' sockets carry an opaque protocol (`m=image … udptl t38`).
fn opaque(call: &mut Call) {
    for slot in [TO_A, TO_B] {
        call.stream(slot).mode = StreamMode::Opaque;
    }
}

/// A UDPTL datagram: sequence number `seq`, a short IFP (the primary), no redundancy.
fn udptl(seq: u16) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x02, 0x00, 0x00, 0x00]);
    p
}

#[test]
fn opaque_datagrams_that_look_like_stun_rtp_or_dtls_are_relayed_byte_for_byte() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    // Sequence numbers 0..3 start like STUN, 20..63 (×256) like DTLS, 0x80xx like RTP;
    // a 2-byte datagram is shorter than any of them.
    let mut bytes = 0;
    for (n, pkt) in [
        udptl(0),
        udptl(1),
        udptl(0x1400),
        udptl(0x8000),
        udptl(0x80c8),
        vec![0, 7],
    ]
    .into_iter()
    .enumerate()
    {
        let (v, out) = call.recv(TO_A, A_SDP, &pkt);
        // B is heard behind its NAT from its first datagram on.
        let b_at = if n == 0 { B_SDP } else { B_NAT };
        assert!(forward_to(TO_B, b_at)(&v), "datagram {n}: {v:?}");
        assert_eq!(out, pkt);
        bytes += pkt.len() as u64;
        let (v, out) = call.recv(TO_B, B_NAT, &pkt);
        assert!(forward_to(TO_A, A_SDP)(&v), "datagram {n} back: {v:?}");
        assert_eq!(out, pkt);
    }
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 6);
    assert_eq!(call.stream(TO_A).stats.bytes.load(Relaxed), bytes);
    assert_eq!(call.stream(TO_B).stats.endpoint(), Some(a(B_NAT)));
    assert_eq!(call.counters.opaque_packets.load(Relaxed), 12);
    assert_eq!(call.counters.opaque_bytes.load(Relaxed), 2 * bytes);
    assert_eq!(call.counters.rtp_packets.load(Relaxed), 0);
    assert_eq!(call.counters.rtcp_packets.load(Relaxed), 0);
    assert_eq!(call.errors(TO_A) + call.errors(TO_B), 0);
}

#[test]
fn opaque_streams_answer_stun_only_with_ice_and_are_never_offloaded() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    let user = format!("{UFRAG}:theirs");
    let check = binding_request(1, &user, PWD, false);
    // Without ICE a STUN-shaped datagram is the party's data like any other.
    let (v, out) = call.recv(TO_A, A_SDP, &check);
    assert!(forward_to(TO_B, B_SDP)(&v), "{v:?}");
    assert_eq!(out, check);
    with_ice(&mut call);
    let (v, reply) = call.recv(TO_A, A_SDP, &check);
    assert!(
        matches!(v, Verdict::Reply { to, .. } if to == a(A_SDP)),
        "{v:?}"
    );
    assert_eq!(
        StunMessage::parse(&reply).unwrap().class,
        StunClass::Success
    );
    // Past the learning window every datagram is a plain forward, yet one that happens
    // to look like RTP must not reach the kernel fast path.
    call.advance_ms(LEARNING_DELAY_MS + 1);
    let pkt = rtp(0, 1, 0xa);
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    let Verdict::Forward { via, to, .. } = v else {
        panic!("{v:?}");
    };
    assert!(!offloadable(
        &call.slab,
        TO_A,
        TO_A,
        via,
        to,
        a(A_SDP),
        &out
    ));
    for slot in [TO_A, TO_B] {
        call.stream(slot).mode = StreamMode::Rtp;
    }
    call.stream(TO_A).ice = None;
    let (v, out) = call.recv(TO_A, A_SDP, &pkt);
    let Verdict::Forward { via, to, .. } = v else {
        panic!("{v:?}");
    };
    assert!(offloadable(&call.slab, TO_A, TO_A, via, to, a(A_SDP), &out));
}

#[test]
fn block_media_absorbs_opaque_datagrams_but_still_counts_them() {
    let mut call = Call::new(LatchPolicy::default());
    opaque(&mut call);
    call.stream(TO_A).control.block_media = true;
    let (v, _) = call.recv(TO_A, A_SDP, &udptl(3));
    assert_eq!(v, Verdict::Absorbed(Absorbed::Blocked));
    assert_eq!(call.stream(TO_A).stats.packets.load(Relaxed), 1);
}
