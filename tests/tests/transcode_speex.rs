//! rtpengine's "DTMF PT reduction" call on the real binary: the caller offers EVS, Speex
//! wideband (twice) and G.722 with telephone-event at 16000 and 8000 Hz, `codec: {transcode:
//! [PCMA, PCMU]}` adds G.711, and the callee answers PCMA with telephone-event/8000.
//!
//! The engine strips EVS (it cannot transcode it) from the callee's offer, answers the
//! caller with its first codec, `speex/16000`, and the telephone-event of that rate, and
//! transcodes Speex wideband (20 ms, RTP clock 16000) ↔ PCMA both ways. Tones are checked by
//! SNR after decoding, digits cross with each side's payload type and clock.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::TelephoneEvent;
use ngmedia_codecs::Codec;
use transcode_common::*;

#[test]
fn speex_wideband_caller_pcma_callee() {
    let daemon = start("auto");
    let ng = daemon.client();
    let call = setup(
        &ng,
        "tc-speex-pcma",
        &[
            (109, "EVS/16000", Some("br=5.9-24.4; bw=nb-swb")),
            (104, "speex/16000", None),
            (110, "speex/16000", Some("octet-align=1")),
            (102, "G722/8000", None),
            (105, "telephone-event/16000", Some("0-15")),
            (100, "telephone-event/8000", Some("0-15")),
        ],
        &["PCMA", "PCMU"],
        |_| {
            vec![
                (8, "PCMA/8000".into(), None),
                (100, "telephone-event/8000".into(), Some("0-15".into())),
            ]
        },
        None,
    );
    assert_eq!(
        call.offer.audio().formats,
        ["104", "110", "102", "8", "0", "105", "100"],
        "EVS stripped, G.711 added: {:?}",
        call.offer
    );
    assert_eq!(call.answer.audio().formats, ["104", "105"]);
    assert!(call.answer.audio().has_attr("rtpmap:104 speex/16000"));
    assert!(call
        .answer
        .audio()
        .has_attr("rtpmap:105 telephone-event/16000"));

    let speex = lookup("speex", 16000, None, None);
    let pcma = lookup("PCMA", 8000, None, None);
    let n = 60;
    // The 16 kHz ↔ 8 kHz resampler's delay is not sent: one packet less each way.
    let held = 1;

    // Caller → callee: Speex wideband in, PCMA out.
    send(&call.a, call.a_dest, 104, 320, &encode16(&speex, 440.0, n));
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n - held, "A→B packets");
    assert!(rx.iter().all(|r| r.pt == 8 && r.payload.len() == 160));
    assert_eq!(check_line(&rx, "A→B"), 160);
    let pcm = decode(&pcma, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 440.0);
    assert!(snr_db(purity) > 15.0, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((3000.0..9000.0).contains(&amp), "A→B amplitude {amp}");

    // Callee → caller: PCMA in, Speex wideband out on a 320-unit timestamp step.
    send(
        &call.b,
        call.b_dest,
        8,
        160,
        &encode(&pcma, 20, &sine_frames(1000.0, 6000.0, 160, n)),
    );
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n - held, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == 104));
    assert_eq!(check_line(&rx, "B→A"), 320);
    let pcm = decode16(&speex, &mut rx);
    assert_eq!(pcm.len(), (n - held) * 320);
    // A 16 kHz signal at twice the frequency looks the same to `tone`, which assumes 8 kHz.
    let (amp, purity) = tone(&pcm[3200..], 500.0);
    assert!(snr_db(purity) > 15.0, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((3000.0..9000.0).contains(&amp), "B→A amplitude {amp}");

    // Digits: telephone-event/16000 ↔ telephone-event/8000.
    send_digit(&call.a, call.a_dest, 105, 3000, 200_000, 4);
    let ev = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 100));
    let last = TelephoneEvent::parse(&ev[5].payload).unwrap();
    assert_eq!((last.event, last.end, last.duration), (4, true, 400));
    send_digit(&call.b, call.b_dest, 100, 4000, 900_000, 11);
    let ev = receive(&call.a, call.a_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 105));
    let last = TelephoneEvent::parse(&ev[5].payload).unwrap();
    assert_eq!((last.event, last.end, last.duration), (11, true, 1600));
}

/// `packets` 20 ms Speex payloads of a `freq` Hz sine at 16 kHz.
fn encode16(codec: &Codec, freq: f64, packets: usize) -> Vec<Vec<u8>> {
    let mut enc = codec.encoder(20).expect("speex encoder");
    (0..packets)
        .map(|k| {
            let pcm: Vec<i16> = (k * 320..(k + 1) * 320)
                .map(|i| {
                    (6000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
                })
                .collect();
            let mut out = vec![0u8; enc.max_payload_len()];
            let len = enc.encode(&pcm, &mut out).expect("encode");
            out.truncate(len);
            out
        })
        .collect()
}

/// Decode Speex wideband payloads (in sequence order) to 16 kHz PCM.
fn decode16(codec: &Codec, rx: &mut [Rx]) -> Vec<i16> {
    let base = rx.first().map_or(0, |r| r.seq);
    rx.sort_by_key(|r| r.seq.wrapping_sub(base));
    let mut dec = codec.decoder().expect("speex decoder");
    let mut pcm = Vec::new();
    let mut buf = vec![0i16; 3200];
    for r in rx.iter() {
        let n = dec.decode(&r.payload, &mut buf).expect("speex payload");
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}
