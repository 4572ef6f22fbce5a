//! `DTMF-security` replacement modes and DTMF triggers on a call that is not transcoded,
//! on the real binary: the bytes the peer receives for RFC 4733 events, for audio during
//! an event and for in-band digits, and blocking switched on and off by the party's own
//! digits (`trigger`, `trigger-end`, `trigger-end-digits`, `--dtmf-digit-delay`).

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::call::TwoPartyCall;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::{rtp_packet, RtpEndpoint};

const WAIT: Duration = Duration::from_millis(300);
const SHORT: Duration = Duration::from_millis(150);

/// rtpengine's replacement tone (400 Hz, volume 10) in PCMU, one 20-sample period from
/// phase 0: the bytes its own test suite expects (`auto-daemon-tests-delay-buffer.pl`).
const TONE_400: [u8; 20] = [
    0xff, 0xb5, 0xa7, 0x9f, 0x9c, 0x9b, 0x9c, 0x9f, 0xa7, 0xb5, 0xff, 0x35, 0x27, 0x1f, 0x1c, 0x1b,
    0x1c, 0x1f, 0x27, 0x35,
];

/// Send RTP; `pt | 0x80` sets the marker.
fn send(from: &RtpEndpoint, to: SocketAddr, pt: u8, seq: u16, ts: u32, payload: &[u8]) {
    let mut p = rtp_packet(pt, seq, ts, from.ssrc, payload);
    p[1] |= pt & 0x80;
    from.sock.send_to(&p, to).unwrap();
}

struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

fn recv(ep: &RtpEndpoint, wait: Duration) -> Option<Rtp> {
    let (p, _) = ep.recv(wait)?;
    Some(Rtp {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        payload: p[12..].to_vec(),
    })
}

fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x8a } else { 0x0a }, d[0], d[1]]
}

fn block(ng: &NgClient, call: &TwoPartyCall, extra: &[(&str, &str)]) {
    let mut body = dict! {
        "command" => "block DTMF", "call-id" => call.call_id.as_str(),
        "from-tag" => call.from_tag.as_str(),
    };
    if let ngmedia_tests::bencode::Value::Dict(d) = &mut body {
        for (k, v) in extra {
            d.push((
                k.as_bytes().to_vec(),
                ngmedia_tests::bencode::Value::from(*v),
            ));
        }
    }
    let r = ng.ok(body);
    assert_eq!(r.str_at("result"), Some("ok"), "{r:?}");
    assert!(r.str_at("warning").is_none(), "{r:?}");
}

/// A sends PCMU audio (seq, ts) and B must get it unchanged.
fn audio_passes(call: &TwoPartyCall, seq: u16, ts: u32) {
    send(&call.a, call.a_dest, 0, seq, ts, &[0x00; 160]);
    let p = recv(&call.b, WAIT).expect("audio relayed");
    assert_eq!((p.pt, p.seq, p.ts), (0, seq, ts));
    assert!(p.payload.iter().all(|&b| b == 0x00));
}

#[test]
fn tone_mode_replaces_events_and_the_audio_under_them_as_rtpengine_does() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "sec-tone");
    audio_passes(&call, 1000, 3000);
    audio_passes(&call, 1001, 3160);
    block(&ng, &call, &[("DTMF-security", "tone")]);
    audio_passes(&call, 1002, 3320);
    audio_passes(&call, 1003, 3480);
    // An event at 3640 (seq 1004..1006), then a repeat of its end.
    let sts = 3640;
    for (i, ev) in [
        event(5, false, 160),
        event(5, false, 320),
        event(5, true, 480),
    ]
    .iter()
    .enumerate()
    {
        let seq = 1004 + i as u16;
        send(
            &call.a,
            call.a_dest,
            if i == 0 { 101 | 0x80 } else { 101 },
            seq,
            sts,
            ev,
        );
        let p = recv(&call.b, WAIT).expect("replacement audio");
        assert_eq!(
            (p.marker, p.pt, p.seq, p.ts),
            (false, 0, seq, 3000 + 160 * u32::from(seq - 1000)),
            "event packet {i} became audio at its place in the line"
        );
        assert_eq!(p.payload.len(), 160);
        for period in p.payload.chunks(20) {
            assert_eq!(period, TONE_400);
        }
    }
    send(&call.a, call.a_dest, 101, 1007, sts, &event(5, true, 480));
    assert!(recv(&call.b, SHORT).is_none(), "repeated end not sent");
    // The audio at the event's end is still under it; the next is not.
    send(&call.a, call.a_dest, 0, 1008, sts + 480, &[0x00; 160]);
    let p = recv(&call.b, WAIT).unwrap();
    assert_eq!((p.pt, p.seq, &p.payload[..20]), (0, 1008, &TONE_400[..]));
    audio_passes(&call, 1009, sts + 640);

    // Unblocked: events pass as they are.
    ng.ok(dict! { "command" => "unblock DTMF", "call-id" => "sec-tone", "from-tag" => call.from_tag.as_str() });
    send(&call.a, call.a_dest, 101, 1010, 5000, &event(7, false, 160));
    let p = recv(&call.b, WAIT).unwrap();
    assert_eq!((p.pt, p.payload[0]), (101, 7));
}

#[test]
fn zero_and_dtmf_modes_rewrite_the_event_code() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "sec-zero");
    audio_passes(&call, 1, 160);
    block(&ng, &call, &[("DTMF-security", "zero")]);
    send(
        &call.a,
        call.a_dest,
        101 | 0x80,
        2,
        320,
        &event(5, false, 160),
    );
    let p = recv(&call.b, WAIT).unwrap();
    assert_eq!((p.marker, p.pt, p.seq, p.ts), (true, 101, 2, 320));
    assert_eq!(p.payload, event(0, false, 160), "5 became 0");
    send(&call.a, call.a_dest, 101, 3, 320, &event(5, true, 320));
    assert_eq!(recv(&call.b, WAIT).unwrap().payload, event(0, true, 320));
    // Audio under the event: silence (the peer gets the digit as an event).
    send(&call.a, call.a_dest, 0, 4, 640, &[0x00; 160]);
    let p = recv(&call.b, WAIT).unwrap();
    assert!(p.payload.iter().all(|&b| b == 0xff));
    audio_passes(&call, 5, 800);

    block(&ng, &call, &[("DTMF-security", "DTMF"), ("digit", "#")]);
    send(&call.a, call.a_dest, 101, 6, 960, &event(1, false, 160));
    assert_eq!(recv(&call.b, WAIT).unwrap().payload, event(11, false, 160));
}

#[test]
fn silence_and_random_modes_send_audio_instead_of_events() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "sec-silence");
    block(&ng, &call, &[("DTMF-security", "silence")]);
    // Before any audio, an event becomes the party's first codec (PCMU).
    send(&call.a, call.a_dest, 101, 0, 0, &event(9, true, 160));
    let p = recv(&call.b, WAIT).unwrap();
    assert_eq!((p.pt, p.seq, p.ts), (0, 0, 0));
    assert!(p.payload.iter().all(|&b| b == 0xff), "PCMU silence");
    // A-law audio: events become A-law.
    send(&call.a, call.a_dest, 8, 1, 160, &[0x55; 160]);
    recv(&call.b, WAIT).unwrap();
    send(&call.a, call.a_dest, 101, 2, 320, &event(9, false, 160));
    let p = recv(&call.b, WAIT).unwrap();
    assert_eq!((p.pt, p.seq, p.ts), (8, 2, 320));
    assert!(p.payload.iter().all(|&b| b == 0xd5), "PCMA silence");

    block(&ng, &call, &[("DTMF-security", "random")]);
    let mut pcm = Vec::new();
    for n in 0..4u16 {
        send(
            &call.a,
            call.a_dest,
            101,
            10 + n,
            2000,
            &event(9, false, 160 * (n + 1)),
        );
        let p = recv(&call.b, WAIT).unwrap_or_else(|| panic!("{}", daemon.log_text()));
        assert_eq!(p.pt, 8);
        pcm.extend(
            p.payload
                .iter()
                .map(|&b| ngmedia_codecs::g711::alaw_decode(b)),
        );
    }
    // The peer hears some digit, and it is loud.
    let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak > 4000, "peak {peak}");
}

/// A DTMF digit as G.711 µ-law: rtpengine's level (two sines at half of
/// `32767 / 1.122018^volume` each).
fn ulaw_tone(event: u8, n: u32) -> Vec<u8> {
    let (low, high) = match event {
        3 => (697.0, 1477.0),
        _ => (941.0, 1336.0),
    };
    (0..160u32)
        .map(|i| {
            let t = f64::from(n * 160 + i) / 8000.0;
            let div = 2.0 * 1.122018f64.powi(6);
            let s = ((2.0 * std::f64::consts::PI * low * t).sin() / div
                + (2.0 * std::f64::consts::PI * high * t).sin() / div)
                * 32767.0;
            ngmedia_codecs::g711::ulaw_encode(s as i16)
        })
        .collect()
}

#[test]
fn inband_digits_of_a_g711_party_are_replaced() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "sec-inband");
    block(&ng, &call, &[("DTMF-security", "silence")]);
    let mut silent = 0;
    for n in 0..12u32 {
        let tone = ulaw_tone(3, n);
        send(&call.a, call.a_dest, 0, n as u16, n * 160, &tone);
        let p = recv(&call.b, WAIT).unwrap();
        if p.payload.iter().all(|&b| b == 0xff) {
            silent += 1;
        }
    }
    // The detector confirms a digit after two or three packets; the rest is silenced.
    assert!(silent >= 9, "{silent} of 12 packets silenced");
    // Speech-free audio after the digit passes again.
    audio_passes(&call, 20, 4000);
}

#[test]
fn a_trigger_switches_blocking_on_and_its_end_trigger_off() {
    let daemon = Daemon::start(&["--dtmf-digit-delay", "200"]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "sec-trigger");
    block(
        &ng,
        &call,
        &[
            ("trigger", "##"),
            ("trigger-end", "#"),
            ("DTMF-security-trigger", "drop"),
        ],
    );
    let mut ts = 0u32;
    let mut seq = 0u16;
    let mut digit = |call: &mut TwoPartyCall, code: u8| -> bool {
        ts += 2000;
        seq += 1;
        send(&call.a, call.a_dest, 101, seq, ts, &event(code, true, 400));
        recv(&call.b, SHORT).is_some()
    };
    // Nothing blocked before the trigger.
    assert!(digit(&mut call, 1));
    // `#`, a pause beyond --dtmf-digit-delay, `#`: no match.
    assert!(digit(&mut call, 11));
    std::thread::sleep(Duration::from_millis(400));
    assert!(digit(&mut call, 11));
    assert!(digit(&mut call, 4), "a slow trigger does not count");
    // `##` in time: blocking from the next digit on (the completing one passes).
    assert!(digit(&mut call, 11));
    assert!(digit(&mut call, 11));
    assert!(!digit(&mut call, 4), "blocked once triggered");
    assert!(!digit(&mut call, 2));
    // The end trigger (itself blocked) switches blocking off.
    assert!(!digit(&mut call, 11));
    assert!(digit(&mut call, 5));
    // The other direction was never affected.
    send(&call.b, call.b_dest, 101, 1, 100, &event(3, true, 400));
    assert!(recv(&call.a, WAIT).is_some());
}

#[test]
fn trigger_end_digits_ends_blocking_after_a_card_number() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "sec-digits");
    block(
        &ng,
        &call,
        &[
            ("trigger", "*"),
            ("trigger-end-digits", "3"),
            ("DTMF-security-trigger", "zero"),
        ],
    );
    let mut ts = 0u32;
    let mut got = Vec::new();
    for code in [7u8, 10, 1, 2, 3, 4] {
        ts += 2000;
        send(
            &call.a,
            call.a_dest,
            101,
            (ts / 2000) as u16,
            ts,
            &event(code, true, 400),
        );
        got.push(recv(&call.b, WAIT).unwrap().payload[0]);
    }
    assert_eq!(got, [7, 10, 0, 0, 0, 4], "three digits after `*` became 0");
    call.exchange(1, Duration::from_millis(1));
}
