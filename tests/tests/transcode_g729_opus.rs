//! `codec: {transcode: [opus]}` between a G.729-only caller (a SIP trunk) and an Opus-only
//! callee (a WebRTC-style client): neither side shares a codec, so both directions cross two
//! codecs inside the engine (G.729 ↔ PCM ↔ Opus), each keeping its own clock and PTs.

mod transcode_common;

use std::time::Duration;

use transcode_common::*;

#[test]
fn g729_caller_opus_callee_io_uring() {
    run("auto");
}

#[test]
fn g729_caller_opus_callee_epoll() {
    run("epoll");
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-g729-opus",
        &[(18, "G729/8000", Some("annexb=no"))],
        &["opus"],
        |offer| {
            let opus = pt_of(offer, "opus", 48000).expect("engine offers opus");
            vec![(opus, "opus/48000/2".into(), None)]
        },
        None,
    );
    let opus_pt = pt_of(&call.offer, "opus", 48000).unwrap();
    assert_eq!(call.answer.audio().formats, ["18"], "the trunk keeps G.729");

    let g729 = lookup("G729", 8000, None, Some("annexb=no"));
    let opus = lookup("opus", 48000, Some(2), None);
    let n = 60;
    // Trunk → client: 20 ms G.729 packets (two frames each) arrive as 20 ms Opus.
    send(
        &call.a,
        call.a_dest,
        18,
        160,
        &encode(&g729, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "A→B packets");
    assert!(rx
        .iter()
        .all(|r| r.pt == opus_pt && (1..=1275).contains(&r.payload.len())));
    assert_eq!(check_line(&rx, "A→B"), 960, "20 ms at 48 kHz");
    let pcm = decode(&opus, &mut rx);
    let (_, purity) = tone(&pcm[1600..], 440.0);
    assert!(snr_db(purity) > 10.0, "A→B SNR {:.1} dB", snr_db(purity));

    // Client → trunk: Opus arrives as G.729 on the trunk's PT 18.
    send(
        &call.b,
        call.b_dest,
        opus_pt,
        960,
        &encode(&opus, 20, &sine_frames(1000.0, 6000.0, 160, n)),
    );
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "B→A packets");
    assert!(
        rx.iter().all(|r| r.pt == 18 && r.payload.len() == 20),
        "two 10-byte G.729 frames per packet"
    );
    assert_eq!(check_line(&rx, "B→A"), 160);
    let pcm = decode(&g729, &mut rx);
    let (_, purity) = tone(&pcm[1600..], 1000.0);
    assert!(snr_db(purity) > 10.0, "B→A SNR {:.1} dB", snr_db(purity));
}
