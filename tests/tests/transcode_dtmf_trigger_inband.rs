//! DTMF triggers driven by in-band digits on a transcoded call: the caller (PCMU, no
//! telephone-event) keys `##` as tones; from then on its digits are masked in what the
//! callee (PCMA) receives (`DTMF-security-trigger: silence`) until it keys `*`
//! (`trigger-end`), after which digits pass again. The digits completing the trigger and
//! ending it are handled in the mode they started in. What the callee receives is decoded
//! and searched for digits with a Goertzel filter bank.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::ToneGenerator;
use ngmedia_tests::dict;
use transcode_common::*;

/// The caller's voice, quieter than any digit.
const VOICE_HZ: f64 = 300.0;

/// What the caller sends, in 20 ms packets: (first packet, packets, digit event or voice).
const SCRIPT: [(usize, usize, Option<u8>); 13] = [
    (0, 10, None),
    (10, 5, Some(11)), // '#'
    (15, 5, None),
    (20, 5, Some(11)), // '#': the trigger matches
    (25, 5, None),
    (30, 10, Some(5)), // masked
    (40, 5, None),
    (45, 5, Some(10)), // '*': the trigger ends, this digit still masked
    (50, 5, None),
    (55, 10, Some(7)), // passes again
    (65, 5, None),
    (70, 10, Some(5)), // the trigger is used up: passes
    (80, 5, None),
];

#[test]
fn in_band_digits_drive_the_trigger_epoll() {
    run("epoll", "tc-trigger-inband-e");
}

#[test]
fn in_band_digits_drive_the_trigger_io_uring() {
    run("auto", "tc-trigger-inband-u");
}

fn run(backend: &str, id: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let c = setup(
        &ng,
        id,
        &[(0, "PCMU/8000", None)],
        &["PCMA"],
        |_| vec![(8, "PCMA/8000".into(), None)],
        Some(20),
    );
    assert_eq!(c.answer.audio().formats, ["0"]);
    let r = ng.ok(dict! {
        "command" => "block DTMF", "call-id" => id, "from-tag" => "ta",
        "trigger" => "##", "trigger-end" => "*", "DTMF-security-trigger" => "silence",
    });
    assert_eq!(r.str_at("result"), Some("ok"));
    assert!(r.str_at("warning").is_none(), "{r:?}");

    let total = 85;
    let mut frames = sine_frames(VOICE_HZ, 2000.0, 160, total);
    for (first, n, digit) in SCRIPT {
        if let Some(d) = digit {
            let mut gen = ToneGenerator::new(d, 6, 8000).expect("digit");
            for f in &mut frames[first..first + n] {
                gen.fill(f);
            }
        }
    }
    let pcmu = lookup("PCMU", 8000, None, None);
    send(&c.a, c.a_dest, 0, 160, &encode(&pcmu, 20, &frames));
    let mut rx = receive(&c.b, c.b_dest, Duration::from_secs(1));
    assert_eq!(rx.len(), total, "{id}: one packet out per packet in");
    check_line(&rx, id);
    let pcma = lookup("PCMA", 8000, None, None);
    let pcm = decode(&pcma, &mut rx);
    let digits: Vec<Option<char>> = pcm.chunks(160).map(digit_in).collect();
    // Blocks of the digit starting at packet `first`, `n` long (a block of margin for the
    // transcoder's delay).
    let seen = |first: usize, n: usize, key: char| {
        digits[first..(first + n + 1).min(digits.len())]
            .iter()
            .filter(|d| **d == Some(key))
            .count()
    };
    let show = format!("{id}: {digits:?}");
    assert!(seen(10, 5, '#') >= 4, "first '#' passes: {show}");
    assert!(
        seen(20, 5, '#') >= 4,
        "the '#' completing the trigger passes: {show}"
    );
    // The masker confirms a digit after ~40 ms, as rtpengine's: two blocks at most.
    assert!(
        seen(30, 10, '5') <= 2,
        "'5' masked after the trigger: {show}"
    );
    assert!(
        seen(45, 5, '*') <= 2,
        "'*' ending the trigger masked to its end: {show}"
    );
    assert!(seen(55, 10, '7') >= 8, "'7' passes after the end: {show}");
    assert!(seen(70, 10, '5') >= 8, "the trigger is used up: {show}");
    // Nothing but those digits.
    let voice = digits
        .iter()
        .enumerate()
        .filter(|(k, d)| {
            d.is_some()
                && !SCRIPT
                    .iter()
                    .any(|(f, n, dg)| dg.is_some() && (*f..=f + n).contains(k))
        })
        .count();
    assert_eq!(voice, 0, "no digit in the voice: {show}");
}
