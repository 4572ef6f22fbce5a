//! `codec: {transcode: [G729]}`: a PCMU caller and a G.729-only callee that wants 10 ms
//! packets and has no telephone-event. The engine offers `G729/8000` with `annexb=no`,
//! repacketises 20 ms PCMU into 10 ms G.729 frames and back. The caller's answer has no
//! telephone-event, since the callee accepted none (as rtpengine answers); digits the caller
//! sends as events anyway are rendered in-band for the callee.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::{DtmfDetector, DtmfTransition};
use transcode_common::*;

#[test]
fn pcmu_caller_g729_callee_io_uring() {
    run("auto");
}

#[test]
fn pcmu_caller_g729_callee_epoll() {
    run("epoll");
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-g729",
        &[
            (0, "PCMU/8000", None),
            (101, "telephone-event/8000", Some("0-15")),
        ],
        &["G729"],
        |offer| {
            assert!(offer.audio().has_attr("fmtp:18 annexb=no"), "{offer:?}");
            vec![(18, "G729/8000".into(), Some("annexb=no".into()))]
        },
        Some(10),
    );
    assert_eq!(call.offer.audio().formats, ["0", "18", "101"]);
    assert_eq!(call.answer.audio().formats, ["0"]);
    // The caller gets the ptime we send it, not the callee's 10 ms.
    assert!(call.answer.audio().has_attr("ptime:20"));

    let pcmu = lookup("PCMU", 8000, None, None);
    let g729 = lookup("G729", 8000, None, Some("annexb=no"));
    let n = 50;
    send(
        &call.a,
        call.a_dest,
        0,
        160,
        &encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(
        rx.len(),
        2 * n,
        "two 10 ms G.729 packets per 20 ms PCMU packet"
    );
    assert!(rx.iter().all(|r| r.pt == 18 && r.payload.len() == 10));
    assert_eq!(check_line(&rx, "A→B"), 80);
    let pcm = decode(&g729, &mut rx);
    let (_, purity) = tone(&pcm[1600..], 440.0);
    assert!(snr_db(purity) > 10.0, "A→B SNR {:.1} dB", snr_db(purity));

    // B sends 20 ms G.729 packets (two frames each).
    send(
        &call.b,
        call.b_dest,
        18,
        160,
        &encode(&g729, 20, &sine_frames(1000.0, 6000.0, 160, n)),
    );
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    check_line(&rx, "B→A");
    let pcm = decode(&pcmu, &mut rx);
    let (_, purity) = tone(&pcm[1600..], 1000.0);
    assert!(snr_db(purity) > 10.0, "B→A SNR {:.1} dB", snr_db(purity));

    // A's digit (sent with its offered payload type all the same) has nowhere to go as an
    // event: B hears it as a DTMF tone in G.729.
    send_digit(&call.a, call.a_dest, 101, 3000, 300_000, 9);
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert!(rx.iter().all(|r| r.pt == 18), "no telephone-event toward B");
    assert_eq!(rx.len(), 10, "100 ms of tone in 10 ms packets");
    let pcm = decode(&g729, &mut rx);
    let mut det = DtmfDetector::new(8000).unwrap();
    let mut seen = Vec::new();
    det.process(&pcm, |t, _| seen.push(t));
    assert_eq!(seen.first(), Some(&DtmfTransition::Start(9)), "{seen:?}");
}
