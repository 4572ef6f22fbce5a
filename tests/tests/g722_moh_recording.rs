//! Music on hold toward a G.722 phone and recordings of a G.722 call: the player encodes the
//! file's 16 kHz audio as G.722 on the 8000 Hz RTP clock (160 timestamp units per 20 ms),
//! and the recorder decodes G.722 to a 16 kHz WAV whose length follows the wall clock (the
//! RTP clock is 8000, not the sample rate).

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::{audio_file, Codec};
use ngmedia_tests::{dict, Daemon};
use transcode_common::*;

fn g722() -> Codec {
    lookup("G722", 8000, None, None)
}

/// A call where both parties speak only G.722 (static PT 9) and telephone-event/8000.
fn g722_call(ng: &ngmedia_tests::NgClient, call_id: &str) -> TcCall {
    setup(
        ng,
        call_id,
        &[
            (9, "G722/8000", None),
            (101, "telephone-event/8000", Some("0-15")),
        ],
        &[],
        |_| {
            vec![
                (9, "G722/8000".into(), None),
                (101, "telephone-event/8000".into(), Some("0-15".into())),
            ]
        },
        Some(20),
    )
}

#[test]
fn music_on_hold_toward_a_g722_phone() {
    let daemon = Daemon::start(&[&format!("--media-play-dirs={}", media_dir().display())]);
    let ng = daemon.client();
    let call = g722_call(&ng, "moh-g722");
    let file = media_dir().join("speech-2s.wav");
    let reply = ng.ok(dict! {
        "command" => "play media", "call-id" => "moh-g722", "from-tag" => "tb",
        "file" => file.to_string_lossy().as_ref(),
    });
    assert_eq!(reply.str_at("result"), Some("ok"));
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(4));
    assert_eq!(rx.len(), 100, "2 s of 20 ms packets");
    assert!(
        rx.iter().all(|r| r.pt == 9 && r.payload.len() == 160),
        "G.722 20 ms: 160 bytes"
    );
    assert_eq!(check_line(&rx, "MoH"), 160, "20 ms on the 8000 Hz clock");
    assert!(rx[0].marker);
    let mut dec = g722().decoder().unwrap();
    let mut pcm = Vec::new();
    let mut buf = [0i16; 640];
    let first = rx[0].seq;
    rx.sort_by_key(|r| r.seq.wrapping_sub(first));
    for r in &rx {
        let n = dec.decode(&r.payload, &mut buf).unwrap();
        pcm.extend_from_slice(&buf[..n]);
    }
    let want = audio_file::decode(&std::fs::read(&file).unwrap(), 60).unwrap();
    let want = want.pcm_at(16000).unwrap();
    // The decoder's QMF delays by 22 samples; the 16 kHz audio comes through whole.
    let c = correlation(&pcm, want, 40);
    assert!(c > 0.95, "correlation with the file at 16 kHz: {c}");
}

/// One 20 ms G.722 packet per party per 20 ms: A a 5 kHz tone (only a wideband path carries
/// it), B 1 kHz.
#[test]
fn recording_of_a_g722_call_is_wideband_and_in_time() {
    let dir = std::env::temp_dir().join(format!("ngmedia-rec-g722-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let daemon = Daemon::start(&[&format!("--recording-dir={}", dir.display())]);
    let ng = daemon.client();
    let call = g722_call(&ng, "rec-g722");
    let tones = |freq: f64| -> Vec<Vec<u8>> {
        let mut enc = g722().encoder(20).unwrap();
        (0..75)
            .map(|k| {
                let pcm: Vec<i16> = (k * 320..(k + 1) * 320)
                    .map(|i| {
                        (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin())
                            as i16
                    })
                    .collect();
                let mut out = vec![0u8; 160];
                enc.encode(&pcm, &mut out).unwrap();
                out
            })
            .collect()
    };
    let rec = record_both_ways(&daemon, &call, 9, 160, &tones(5000.0), &tones(1000.0));
    assert_eq!(rec.meta["streams"][0]["codecs"][0], "G722/8000");
    assert_eq!(rec.rate, 16000, "wideband WAV");
    let (left, right, wall_ms) = (rec.left, rec.right, rec.wall_ms);
    // The caller's 75 packets are 1500 ms of audio at 16 kHz; a recorder that took the RTP
    // clock (8000) for the sample rate would place them over half or twice that.
    let lead = |x: &[i16]| x.iter().take_while(|&&v| v == 0).count();
    let trail = |x: &[i16]| x.iter().rev().take_while(|&&v| v == 0).count();
    let audio_ms = (left.len() - lead(&left) - trail(&left)) / 16;
    assert!(
        audio_ms.abs_diff(1500) <= 30,
        "{audio_ms} ms of the caller's audio in the WAV"
    );
    let dur = left.len() / 16;
    assert!(
        dur.abs_diff(wall_ms) <= 150,
        "WAV {dur} ms, wall clock {wall_ms} ms"
    );
    // Caller's 5 kHz left, callee's 1 kHz right (tone() assumes 8 kHz: halve the frequency).
    let mid = |x: &[i16]| x[4000..20000.min(x.len())].to_vec();
    let (_, purity) = tone(&mid(&left), 2500.0);
    assert!(
        snr_db(purity) > 15.0,
        "left 5 kHz SNR {:.1}",
        snr_db(purity)
    );
    let (_, purity) = tone(&mid(&right), 500.0);
    assert!(
        snr_db(purity) > 15.0,
        "right 1 kHz SNR {:.1}",
        snr_db(purity)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
