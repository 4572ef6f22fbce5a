//! What the pipeline hands to taps, players, media blocking and transcoders.

use super::*;

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
