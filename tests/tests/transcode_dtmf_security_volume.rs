//! `block DTMF` with `DTMF-security: tone` on a transcoded call: an in-band digit of the
//! caller reaches the callee replaced by a plain tone of `frequency` Hz at `volume` -dBm0.
//! Two calls, 20 dB apart, show that the level follows `volume`.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::ToneGenerator;
use ngmedia_tests::dict;
use transcode_common::*;

/// Amplitude of the 1 kHz replacement tone the callee hears with `volume`.
fn replacement_amplitude(call_id: &str, volume: i64) -> f64 {
    let daemon = start("auto");
    let ng = daemon.client();
    let call = setup(
        &ng,
        call_id,
        &[(0, "PCMU/8000", None)],
        &["PCMA"],
        |_| vec![(8, "PCMA/8000".into(), None)],
        Some(20),
    );
    ng.ok(dict! {
        "command" => "block DTMF", "call-id" => call_id, "from-tag" => "ta",
        "DTMF-security" => "tone", "frequency" => 1000i64, "volume" => volume,
    });
    // 200 ms of 440 Hz, 400 ms of digit 5 at -10 dBm0, 200 ms of 440 Hz, in PCMU.
    let mut frames = sine_frames(440.0, 6000.0, 160, 40);
    let mut gen = ToneGenerator::new(5, 10, 8000).expect("digit");
    for f in &mut frames[10..30] {
        gen.fill(f);
    }
    let pcmu = lookup("PCMU", 8000, None, None);
    send(&call.a, call.a_dest, 0, 160, &encode(&pcmu, 20, &frames));
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), 40, "{call_id}: every frame arrives");
    let pcm = decode(&lookup("PCMA", 8000, None, None), &mut rx);
    // Well inside the digit, after the detector confirmed it.
    let (amp, purity) = tone(&pcm[16 * 160..28 * 160], 1000.0);
    assert!(purity > 0.9, "{call_id}: a plain 1 kHz tone ({purity})");
    amp
}

#[test]
fn replacement_tone_follows_volume() {
    let loud = replacement_amplitude("sec-vol-10", -10);
    let quiet = replacement_amplitude("sec-vol-30", -30);
    let ratio = loud / quiet;
    assert!(
        (8.0..12.5).contains(&ratio),
        "-10 dBm0 vs -30 dBm0: amplitude ratio {ratio} ({loud} / {quiet})"
    );
}
