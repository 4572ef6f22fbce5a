//! `codec: {transcode: [PCMA]}` with a PCMU-only caller and a PCMA-only callee: each side
//! gets its own codec and payload types, a 440 Hz / 1 kHz sine survives both directions,
//! and telephone-event crosses the transcoded call with the callee's payload type.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::TelephoneEvent;
use transcode_common::*;

#[test]
fn pcmu_caller_pcma_callee_io_uring() {
    run("auto");
}

#[test]
fn pcmu_caller_pcma_callee_epoll() {
    run("epoll");
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-pcma",
        &[
            (0, "PCMU/8000", None),
            (101, "telephone-event/8000", Some("0-15")),
        ],
        &["PCMA"],
        |offer| {
            let pcma = pt_of(offer, "PCMA", 8000).expect("engine offers PCMA");
            let te = pt_of(offer, "telephone-event", 8000).expect("engine offers te");
            vec![
                (pcma, "PCMA/8000".into(), None),
                (te, "telephone-event/8000".into(), Some("0-15".into())),
            ]
        },
        None,
    );
    assert_eq!(call.offer.audio().formats, ["0", "8", "101"]);
    // The caller only knows PCMU: the answer gives it PCMU, with its telephone-event.
    assert_eq!(call.answer.audio().formats, ["0", "101"]);

    let pcmu = lookup("PCMU", 8000, None, None);
    let pcma = lookup("PCMA", 8000, None, None);
    let n = 50;
    // A → B: PCMU 440 Hz in, PCMA out.
    send(
        &call.a,
        call.a_dest,
        0,
        160,
        &encode(&pcmu, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "A→B packets");
    assert!(rx.iter().all(|r| r.pt == 8 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "A→B"), 160);
    // rtpengine's output line: the input's sequence numbers and timestamps, no marker.
    assert!(rx.iter().all(|r| !r.marker));
    assert_eq!((rx[0].seq, rx[0].ts), (1000, 50_000));
    assert_ne!(
        rx[0].ssrc, call.a.ssrc,
        "transcoded stream has our own SSRC"
    );
    let pcm = decode(&pcma, &mut rx);
    let (amp, purity) = tone(&pcm[160..], 440.0);
    assert!(snr_db(purity) > 30.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((7000.0..9000.0).contains(&amp), "A→B amplitude {amp}");

    // B → A: PCMA 1 kHz in, PCMU out.
    send(
        &call.b,
        call.b_dest,
        8,
        160,
        &encode(&pcma, 20, &sine_frames(1000.0, 6000.0, 160, n)),
    );
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 0));
    check_line(&rx, "B→A");
    let pcm = decode(&pcmu, &mut rx);
    let (amp, purity) = tone(&pcm[160..], 1000.0);
    assert!(snr_db(purity) > 30.0, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((5000.0..7000.0).contains(&amp), "B→A amplitude {amp}");

    // A digit from A reaches B as telephone-event with B's PT, on B's timeline.
    send_digit(&call.a, call.a_dest, 101, 2000, 90_000, 7);
    let ev = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6, "event packets");
    assert!(ev.iter().all(|e| e.pt == 101));
    assert!(ev[0].marker);
    let parsed: Vec<TelephoneEvent> = ev
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap())
        .collect();
    assert_eq!(parsed[0].event, 7);
    assert_eq!(parsed[3].duration, 800);
    assert!(parsed[3].end && !parsed[0].end);
    assert!(ev.iter().all(|e| e.ts == ev[0].ts));
}
