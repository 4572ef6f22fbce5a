//! `codec: {transcode: [G722]}` between a caller on each of the other codecs (PCMU, PCMA,
//! G.729, Opus) and a G.722-only callee (a wideband desk phone) that wants 30 ms packets.
//!
//! G.722 is 16 kHz audio under an 8000 Hz RTP clock (RFC 3551 §4.5.2): the engine offers
//! `G722/8000` on static PT 9, sends 30 ms as 240 bytes with the timestamp advancing by 240,
//! and its telephone-event runs at 8000 Hz. Tones are checked by SNR after decoding in both
//! directions, and digits cross with each side's payload type and clock.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::dtmf::TelephoneEvent;
use ngmedia_codecs::Codec;
use transcode_common::*;

/// The caller's codec: rtpmap, fmtp, payload type, RTP clock, telephone-event PT.
struct Caller {
    map: &'static str,
    fmtp: Option<&'static str>,
    pt: u8,
    clock: u32,
    event_pt: u8,
}

const PCMU: Caller = Caller {
    map: "PCMU/8000",
    fmtp: None,
    pt: 0,
    clock: 8000,
    event_pt: 101,
};
const PCMA: Caller = Caller {
    map: "PCMA/8000",
    fmtp: None,
    pt: 8,
    clock: 8000,
    event_pt: 101,
};
const G729: Caller = Caller {
    map: "G729/8000",
    fmtp: Some("annexb=no"),
    pt: 18,
    clock: 8000,
    event_pt: 101,
};
const OPUS: Caller = Caller {
    map: "opus/48000/2",
    fmtp: None,
    pt: 111,
    clock: 48000,
    event_pt: 110,
};

#[test]
fn pcmu_caller_g722_callee_io_uring() {
    run("auto", PCMU, "tc-g722-pcmu");
}

#[test]
fn pcma_caller_g722_callee_epoll() {
    run("epoll", PCMA, "tc-g722-pcma");
}

#[test]
fn g729_caller_g722_callee_io_uring() {
    run("auto", G729, "tc-g722-g729");
}

#[test]
fn opus_caller_g722_callee_epoll() {
    run("epoll", OPUS, "tc-g722-opus");
}

/// A `ms` × `packets` sine at 16 kHz.
fn sine16(freq: f64, amp: f64, ms: usize, packets: usize) -> Vec<Vec<i16>> {
    let n = ms * 16;
    (0..packets)
        .map(|k| {
            (k * n..(k + 1) * n)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
                })
                .collect()
        })
        .collect()
}

fn g722() -> Codec {
    lookup("G722", 8000, None, None)
}

/// Decode G.722 payloads (in sequence order) to 16 kHz PCM.
fn decode_g722(rx: &mut [Rx]) -> Vec<i16> {
    let base = rx.first().map_or(0, |r| r.seq);
    rx.sort_by_key(|r| r.seq.wrapping_sub(base));
    let mut dec = g722().decoder().expect("G.722 decoder");
    let mut pcm = Vec::new();
    let mut buf = vec![0i16; 4096];
    for r in rx.iter() {
        let n = dec.decode(&r.payload, &mut buf).expect("G.722 payload");
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}

/// `tone` of the common helpers at 16 kHz: a 16 kHz signal at half the frequency looks the
/// same to a detector that assumes 8 kHz.
fn tone16(pcm: &[i16], freq: f64) -> (f64, f64) {
    tone(pcm, freq / 2.0)
}

fn run(backend: &str, caller: Caller, call_id: &str) {
    let daemon = start(backend);
    let ng = daemon.client();
    let event_map = format!("telephone-event/{}", caller.clock);
    let call = setup(
        &ng,
        call_id,
        &[
            (caller.pt, caller.map, caller.fmtp),
            (caller.event_pt, &event_map, Some("0-15")),
        ],
        &["G722"],
        |offer| {
            assert!(offer.audio().has_attr("rtpmap:9 G722/8000"), "{offer:?}");
            let te = pt_of(offer, "telephone-event", 8000).expect("engine offers te/8000");
            vec![
                (9, "G722/8000".into(), None),
                (te, "telephone-event/8000".into(), Some("0-15".into())),
            ]
        },
        Some(30),
    );
    let te_b = pt_of(&call.offer, "telephone-event", 8000).unwrap();
    assert!(call.offer.audio().formats.contains(&"9".to_string()));
    assert_eq!(
        call.answer.audio().formats,
        [caller.pt.to_string(), caller.event_pt.to_string()],
        "the caller keeps its codec"
    );
    let other = lookup(
        caller.map.split('/').next().unwrap(),
        caller.clock,
        caller.map.split('/').nth(2).map(|c| c.parse().unwrap()),
        caller.fmtp,
    );
    let n = 60;
    let step = caller.clock / 50;
    // An 8 kHz caller goes through the resampler, whose delay is not sent: one packet less
    // each way (Opus is decoded and encoded at 16 kHz directly).
    let held = usize::from(caller.clock == 8000);

    // Caller → phone: 20 ms in, 30 ms G.722 out: 240 bytes on a 240-unit timestamp step.
    send(
        &call.a,
        call.a_dest,
        caller.pt,
        step,
        &encode(&other, 20, &sine_frames(440.0, 8000.0, 160, n)),
    );
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n * 2 / 3 - held, "A→B packets");
    assert!(rx.iter().all(|r| r.pt == 9 && r.payload.len() == 240));
    assert_eq!(check_line(&rx, "A→B"), 240, "30 ms on the 8000 Hz clock");
    let pcm = decode_g722(&mut rx);
    assert_eq!(pcm.len(), (n * 2 / 3 - held) * 480);
    let (amp, purity) = tone16(&pcm[3200..], 440.0);
    let floor = if caller.pt == 18 { 10.0 } else { 20.0 };
    assert!(snr_db(purity) > floor, "A→B SNR {:.1} dB", snr_db(purity));
    assert!((3000.0..11000.0).contains(&amp), "A→B amplitude {amp}");

    // Phone → caller: 30 ms G.722 in (240 units apart), 20 ms of the caller's codec out.
    let mut enc = g722().encoder(30).unwrap();
    let payloads: Vec<Vec<u8>> = sine16(1000.0, 6000.0, 30, 40)
        .iter()
        .map(|f| {
            let mut out = vec![0u8; enc.max_payload_len()];
            let len = enc.encode(f, &mut out).unwrap();
            out.truncate(len);
            out
        })
        .collect();
    send(&call.b, call.b_dest, 9, 240, &payloads);
    let mut rx = receive(&call.a, call.a_dest, Duration::from_secs(2));
    assert_eq!(rx.len(), n - held, "B→A packets");
    assert!(rx.iter().all(|r| r.pt == caller.pt));
    assert_eq!(check_line(&rx, "B→A"), step);
    let pcm = decode(&other, &mut rx);
    let (amp, purity) = tone(&pcm[1600..], 1000.0);
    assert!(snr_db(purity) > floor, "B→A SNR {:.1} dB", snr_db(purity));
    assert!((3000.0..8000.0).contains(&amp), "B→A amplitude {amp}");

    // Digits: the caller's clock ↔ G.722's 8000 Hz telephone-event.
    send_digit(&call.a, call.a_dest, caller.event_pt, 3000, 200_000, 4);
    let ev = receive(&call.b, call.b_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == te_b));
    let last = TelephoneEvent::parse(&ev[5].payload).unwrap();
    assert_eq!(
        (last.event, last.end, last.duration as u32),
        (4, true, 800 * 8000 / caller.clock)
    );
    send_digit(&call.b, call.b_dest, te_b, 4000, 900_000, 11);
    let ev = receive(&call.a, call.a_dest, Duration::from_secs(1));
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == caller.event_pt));
    let last = TelephoneEvent::parse(&ev[5].payload).unwrap();
    assert_eq!(
        (last.event, last.end, last.duration as u32),
        (11, true, 800 * caller.clock / 8000)
    );
}
