//! `codec: {transcode: [opus]}`: a PCMU caller and an Opus-only callee (`opus/48000/2`,
//! telephone-event/48000). Tones survive both directions, the Opus side sees 20 ms packets
//! at the 48 kHz clock, and digits cross with each side's payload type and clock.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::TelephoneEvent;
use transcode_common::*;

#[test]
fn pcmu_caller_opus_callee_io_uring() {
    run("auto");
}

#[test]
fn pcmu_caller_opus_callee_epoll() {
    run("epoll");
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-opus",
        &[
            (0, "PCMU/8000", None),
            (101, "telephone-event/8000", Some("0-15")),
        ],
        &["opus"],
        |offer| {
            let opus = pt_of(offer, "opus", 48000).expect("engine offers opus");
            let te = pt_of(offer, "telephone-event", 48000).expect("engine offers te/48000");
            vec![
                (opus, "opus/48000/2".into(), None),
                (te, "telephone-event/48000".into(), Some("0-15".into())),
            ]
        },
        None,
    );
    // Example D's numbering: opus 96, telephone-event/48000 97.
    assert_eq!(call.offer.audio().formats, ["0", "96", "97", "101"]);
    assert_eq!(call.answer.audio().formats, ["0", "101"]);

    let pcmu = lookup("PCMU", 8000, None, None);
    let opus = lookup("opus", 48000, Some(2), None);
    let n = 60;
    send(
        &call.a,
        call.a_dest,
        0,
        160,
        &encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "A→B packets");
    assert!(rx
        .iter()
        .all(|r| r.pt == 96 && (8..=1275).contains(&r.payload.len())));
    assert_eq!(check_line(&rx, "A→B"), 960, "20 ms at 48 kHz");
    let pcm = decode(&opus, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 440.0);
    assert!(snr_db(purity) > 15.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((5000.0..11000.0).contains(&amp), "A→B amplitude {amp}");

    send(
        &call.b,
        call.b_dest,
        96,
        960,
        &encode(&opus, 20, &sine_frames(1000.0, 6000.0, 160, n)),
    );
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 0 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "B→A"), 160);
    let pcm = decode(&pcmu, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 1000.0);
    assert!(snr_db(purity) > 15.0, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((4000.0..8000.0).contains(&amp), "B→A amplitude {amp}");

    // Digits: A's PT 101 @ 8 kHz → B's PT 97 @ 48 kHz (durations × 6) and back.
    send_digit(&call.a, call.a_dest, 101, 3000, 200_000, 4);
    let ev = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 97));
    let last = TelephoneEvent::parse(&ev[5].payload).unwrap();
    assert_eq!((last.event, last.end, last.duration), (4, true, 4800));
    send_digit(&call.b, call.b_dest, 97, 4000, 900_000, 11);
    let ev = receive(&call.a, call.a_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 101));
    let first = TelephoneEvent::parse(&ev[0].payload).unwrap();
    assert_eq!((first.event, first.duration), (11, 26));
}
