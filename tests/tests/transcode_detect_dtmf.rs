//! `detect DTMF` on a transcoded call: the caller has no telephone-event and sends a digit
//! as an in-band tone in PCMU; the callee (PCMA with telephone-event) receives the digit as
//! RFC 4733 events with its own payload type, and audio around it as PCMA.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::{TelephoneEvent, ToneGenerator};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::{dict, RtpEndpoint};
use transcode_common::*;

#[test]
fn in_band_digit_reaches_the_callee_as_events_io_uring() {
    run("auto");
}

#[test]
fn in_band_digit_reaches_the_callee_as_events_epoll() {
    run("epoll");
}

fn run(backend: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x0a0a_0001);
    let b = RtpEndpoint::new(0x0b0b_0002);
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "tc-detect", "from-tag" => "ta",
        "sdp" => sdp(a.port(), &[(0, "PCMU/8000", None)], Some(20)),
        "ICE" => "remove", "flags" => vec!["detect-DTMF"],
        "codec" => dict! { "transcode" => vec!["PCMA"] },
    });
    let offer = parse_reply_sdp(&offer);
    let te = pt_of(&offer, "telephone-event", 8000).expect("callee is offered telephone-event");
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => "tc-detect", "from-tag" => "ta", "to-tag" => "tb",
        "sdp" => sdp(b.port(), &[(8, "PCMA/8000", None), (te, "telephone-event/8000", Some("0-15"))], Some(20)),
        "ICE" => "remove",
    });
    let answer = parse_reply_sdp(&answer);
    assert_eq!(
        answer.audio().formats,
        ["0"],
        "the caller keeps PCMU without events"
    );
    let (a_dest, b_dest) = (answer.audio_addr(), offer.audio_addr());

    // 200 ms of 440 Hz, 200 ms of digit 9 at -10 dBm0, 200 ms of 440 Hz, in PCMU.
    let mut frames = sine_frames(440.0, 6000.0, 160, 30);
    let mut gen = ToneGenerator::new(9, 10, 8000).expect("digit");
    for f in &mut frames[10..20] {
        gen.fill(f);
    }
    let pcmu = lookup("PCMU", 8000, None, None);
    send(&a, a_dest, 0, 160, &encode(&pcmu, 20, &frames));
    let rx = receive(&b, b_dest, Duration::from_secs(2));

    for w in rx.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "one sequence line");
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
    assert!(rx.iter().all(|r| r.pt == 8 || r.pt == te));
    let events: Vec<(u32, bool, TelephoneEvent)> = rx
        .iter()
        .filter(|r| r.pt == te)
        .map(|r| {
            (
                r.ts,
                r.marker,
                TelephoneEvent::parse(&r.payload).expect("event"),
            )
        })
        .collect();
    assert!(events.len() >= 8, "{} event packets", events.len());
    assert!(events
        .iter()
        .all(|(ts, _, e)| e.event == 9 && *ts == events[0].0));
    assert!(events[0].1, "marker on the first report");
    let ends: Vec<u16> = events
        .iter()
        .filter(|(_, _, e)| e.end)
        .map(|(_, _, e)| e.duration)
        .collect();
    assert_eq!(ends.len(), 3, "end reported three times");
    assert!((1120..=1920).contains(&ends[0]), "digit lasted {}", ends[0]);
    // One packet per 20 ms frame (audio or event report; the end report replaces a frame)
    // plus the end report's two repeats.
    let audio = rx.iter().filter(|r| r.pt == 8).count();
    assert_eq!(audio + events.len(), 32);
    assert!(audio >= 18, "{audio} audio packets");
    ng.ok(dict! { "command" => "delete", "call-id" => "tc-detect", "from-tag" => "ta" });
}
