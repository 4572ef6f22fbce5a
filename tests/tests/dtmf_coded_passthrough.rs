//! DTMF on a call that is **not transcoded** and carries G.729 or Opus: `play DTMF` toward a
//! peer without telephone-event puts an in-band digit, encoded in the stream's own codec,
//! into the party's RTP line (one SSRC, no sequence or timestamp break), and `block DTMF`
//! in `tone` mode turns the party's RFC 4733 events into audio packets of that codec
//! carrying the replacement tone. The peer's packets are decoded with the codecs crate and
//! the digit or tone found with a Goertzel filter bank written here.

mod transcode_common;

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_codecs::Codec;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::{dtmf_event, rtp_packet};
use ngmedia_tests::{dict, Daemon, NgClient, RtpEndpoint};
use transcode_common::*;

/// The party's own audio: a quiet 300 Hz sine, nothing like a digit.
const VOICE_HZ: f64 = 300.0;

/// A one-codec SDP at `port` (plus telephone-event 101 if `events`).
fn sdp_for(port: u16, codec: (u8, &str, Option<&str>), events: bool) -> String {
    let mut pts = vec![codec];
    if events {
        pts.push((101, "telephone-event/8000", Some("0-15")));
    }
    sdp(port, &pts, Some(20))
}

struct Call {
    a: RtpEndpoint,
    b: RtpEndpoint,
    a_dest: SocketAddr,
    b_dest: SocketAddr,
}

/// A plain offer/answer: both parties have the same single codec, nothing is transcoded.
fn call(ng: &NgClient, id: &str, codec: (u8, &str, Option<&str>), events: bool) -> Call {
    let a = RtpEndpoint::new(0x0a0a_0001);
    let b = RtpEndpoint::new(0x0b0b_0002);
    let offer = parse_reply_sdp(&ng.offer(id, "ta", &sdp_for(a.port(), codec, events)));
    let answer = parse_reply_sdp(&ng.answer(id, "ta", "tb", &sdp_for(b.port(), codec, events)));
    assert_eq!(
        offer.audio().formats[0],
        codec.0.to_string(),
        "no transcoding"
    );
    Call {
        a,
        b,
        a_dest: answer.audio_addr(),
        b_dest: offer.audio_addr(),
    }
}

/// The codecs crate's codec for an SDP `(pt, name/rate[/channels], fmtp)`.
fn codec_of(codec: (u8, &str, Option<&str>)) -> Codec {
    let mut parts = codec.1.split('/');
    let name = parts.next().expect("name");
    let rate = parts.next().and_then(|r| r.parse().ok()).expect("rate");
    let channels = parts.next().and_then(|c| c.parse().ok());
    lookup(name, rate, channels, codec.2)
}

/// Packets of 20 ms of the party's voice in `codec`.
fn voice(codec: &Codec, packets: usize) -> Vec<Vec<u8>> {
    encode(codec, 20, &sine_frames(VOICE_HZ, 3000.0, 160, packets))
}

fn send_one(c: &Call, pt: u8, seq: u16, ts: u32, payload: &[u8]) {
    let pkt = rtp_packet(pt, seq, ts, c.a.ssrc, payload);
    c.a.sock.send_to(&pkt, c.a_dest).expect("send");
    std::thread::sleep(Duration::from_millis(2));
}

/// Decoded 20 ms blocks of what B received, in sequence order.
fn blocks(codec: &Codec, rx: &mut [Rx]) -> Vec<Vec<i16>> {
    decode(codec, rx).chunks(160).map(<[i16]>::to_vec).collect()
}

/// `play DTMF` (digit 5, 200 ms, 100 ms pause) into A's line toward B, who has no
/// telephone-event: B gets one line in `codec` whose audio holds the digit for ~200 ms,
/// with A's voice before and after.
fn play_dtmf(backend: &str, id: &str, codec: (u8, &str, Option<&str>), clock: u32) {
    let daemon = start(backend);
    let ng = daemon.client();
    let c = call(&ng, id, codec, false);
    let coded = codec_of(codec);
    let payloads = voice(&coded, 40);
    let step = clock / 50;
    for (k, p) in payloads[..5].iter().enumerate() {
        send_one(&c, codec.0, 1000 + k as u16, 8000 + step * k as u32, p);
    }
    let mut rx = receive(&c.b, c.b_dest, Duration::from_millis(300));
    assert_eq!(rx.len(), 5, "A's voice reaches B");
    ng.ok(dict! {
        "command" => "play DTMF", "call-id" => id, "from-tag" => "ta",
        "code" => "5", "duration" => 200i64, "pause" => 100i64, "volume" => 8i64,
    });
    for (k, p) in payloads.iter().enumerate().skip(5) {
        send_one(&c, codec.0, 1000 + k as u16, 8000 + step * k as u32, p);
    }
    rx.extend(receive(&c.b, c.b_dest, Duration::from_millis(500)));
    assert_eq!(rx.len(), 40, "one packet out per packet in");
    assert!(rx.iter().all(|r| r.pt == codec.0), "audio only");
    assert_eq!(check_line(&rx, id), step, "one line, no break");
    let blocks = blocks(&coded, &mut rx);
    let digits: Vec<Option<char>> = blocks.iter().map(|b| digit_in(b)).collect();
    let first = digits
        .iter()
        .position(|d| d.is_some())
        .unwrap_or_else(|| panic!("{id}: no digit in what B decodes: {digits:?}"));
    assert!(first >= 5, "{id}: nothing before the command: {digits:?}");
    let held = digits[first..]
        .iter()
        .take_while(|d| **d == Some('5'))
        .count();
    assert!(
        (8..=11).contains(&held),
        "{id}: digit 5 for ~200 ms: {digits:?}"
    );
    assert!(
        digits[first + held..].iter().all(Option::is_none),
        "{id}: one digit: {digits:?}"
    );
    // A's voice again after the digit and its pause.
    for b in &blocks[first + 18..] {
        assert!(share(b, VOICE_HZ) > 0.5, "{id}: A's voice after the digit");
    }
}

#[test]
fn play_dtmf_into_a_g729_line_epoll() {
    play_dtmf(
        "epoll",
        "coded-play-g729-e",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn play_dtmf_into_a_g729_line_io_uring() {
    play_dtmf(
        "auto",
        "coded-play-g729-u",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn play_dtmf_into_an_opus_line_epoll() {
    play_dtmf(
        "epoll",
        "coded-play-opus-e",
        (96, "opus/48000/2", None),
        48000,
    );
}

#[test]
fn play_dtmf_into_an_opus_line_io_uring() {
    play_dtmf(
        "auto",
        "coded-play-opus-u",
        (96, "opus/48000/2", None),
        48000,
    );
}

/// `block DTMF` with `DTMF-security: tone` (1000 Hz): A's digit, sent as RFC 4733 events,
/// reaches B as audio packets in `codec` that decode to the tone, at the events' place in
/// A's line.
fn tone_mode(backend: &str, id: &str, codec: (u8, &str, Option<&str>), clock: u32) {
    let daemon: Daemon = start(backend);
    let ng = daemon.client();
    let c = call(&ng, id, codec, true);
    let r = ng.ok(dict! {
        "command" => "block DTMF", "call-id" => id, "from-tag" => "ta",
        "DTMF-security" => "tone", "frequency" => 1000i64,
    });
    assert!(r.str_at("warning").is_none(), "{r:?}");
    let coded = codec_of(codec);
    let payloads = voice(&coded, 30);
    let step = clock / 50;
    let ts = |k: u32| 8000 + step * k;
    for k in 0..10u16 {
        send_one(
            &c,
            codec.0,
            1000 + k,
            ts(u32::from(k)),
            &payloads[usize::from(k)],
        );
    }
    // Eight event packets of one digit (160 ms), the end sent three times.
    for n in 0..10u16 {
        let end = n >= 7;
        let duration = (u32::from(n.min(7)) + 1) * step;
        let mut pkt = rtp_packet(
            101,
            1010 + n,
            ts(10),
            c.a.ssrc,
            &dtmf_event(4, end, duration as u16),
        );
        if n == 0 {
            pkt[1] |= 0x80;
        }
        c.a.sock.send_to(&pkt, c.a_dest).expect("send event");
        std::thread::sleep(Duration::from_millis(2));
    }
    for k in 18..30u16 {
        send_one(
            &c,
            codec.0,
            1002 + k,
            ts(u32::from(k)),
            &payloads[usize::from(k)],
        );
    }
    let mut rx = receive(&c.b, c.b_dest, Duration::from_millis(500));
    assert!(
        rx.iter().all(|r| r.pt == codec.0),
        "{id}: no events reach B"
    );
    assert_eq!(
        rx.len(),
        30,
        "{id}: each event packet but the repeats as audio"
    );
    let replaced: Vec<&Rx> = rx
        .iter()
        .filter(|r| r.seq >= 1010 && r.seq < 1018)
        .collect();
    for (n, r) in replaced.iter().enumerate() {
        assert_eq!(r.ts, ts(10 + n as u32), "{id}: at its place in A's line");
        assert!(!r.marker);
    }
    let blocks = blocks(&coded, &mut rx);
    let voice: Vec<f64> = blocks.iter().map(|b| share(b, VOICE_HZ)).collect();
    let tone: Vec<f64> = blocks.iter().map(|b| share(b, 1000.0)).collect();
    // Blocks 10-17 are the events, 18 the audio at the event's end (replaced as well, as
    // rtpengine does). The first replaced block is the decoder's way into the tone.
    for k in 11..=18 {
        assert!(
            tone[k] > 0.5,
            "{id}: block {k} carries the tone: {tone:.2?}"
        );
    }
    // A's voice before, and again once the peer's decoder (predictive in both codecs)
    // has left the spliced-in frames behind: within 100 ms.
    for k in (2..10).chain(24..blocks.len()) {
        assert!(
            voice[k] > 0.5,
            "{id}: A's voice around the digit: {voice:.2?}"
        );
    }
}

#[test]
fn tone_mode_in_a_g729_line_epoll() {
    tone_mode(
        "epoll",
        "coded-tone-g729-e",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn tone_mode_in_a_g729_line_io_uring() {
    tone_mode(
        "auto",
        "coded-tone-g729-u",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn tone_mode_in_an_opus_line_epoll() {
    tone_mode(
        "epoll",
        "coded-tone-opus-e",
        (96, "opus/48000/2", None),
        48000,
    );
}

#[test]
fn tone_mode_in_an_opus_line_io_uring() {
    tone_mode(
        "auto",
        "coded-tone-opus-u",
        (96, "opus/48000/2", None),
        48000,
    );
}

/// `block DTMF` with `DTMF-security: tone` (1000 Hz) on a party without telephone-event:
/// its in-band digit, sent in `codec`, is found in its decoded audio and replaced by the
/// tone encoded in `codec`, after the ~40 ms the detector needs; its voice around the digit
/// passes untouched (the packets are the party's own).
fn inband_masked(backend: &str, id: &str, codec: (u8, &str, Option<&str>), clock: u32) {
    let daemon = start(backend);
    let ng = daemon.client();
    let c = call(&ng, id, codec, false);
    let r = ng.ok(dict! {
        "command" => "block DTMF", "call-id" => id, "from-tag" => "ta",
        "DTMF-security" => "tone", "frequency" => 1000i64,
    });
    assert!(r.str_at("warning").is_none(), "{r:?}");
    let coded = codec_of(codec);
    let mut frames = sine_frames(VOICE_HZ, 3000.0, 160, 35);
    let mut gen = ngmedia_codecs::dtmf::ToneGenerator::new(5, 6, 8000).expect("digit");
    for f in &mut frames[10..22] {
        gen.fill(f);
    }
    let sent = encode(&coded, 20, &frames);
    let step = clock / 50;
    for (k, p) in sent.iter().enumerate() {
        send_one(&c, codec.0, 1000 + k as u16, 8000 + step * k as u32, p);
    }
    let mut rx = receive(&c.b, c.b_dest, Duration::from_millis(500));
    assert_eq!(rx.len(), 35, "{id}: one packet out per packet in");
    check_line(&rx, id);
    // Packets outside the digit are A's own.
    for r in rx.iter().filter(|r| r.seq < 1010 || r.seq >= 1025) {
        assert_eq!(
            r.payload,
            sent[usize::from(r.seq - 1000)],
            "{id}: seq {}",
            r.seq
        );
    }
    let blocks = blocks(&coded, &mut rx);
    let digits: Vec<Option<char>> = blocks.iter().map(|b| digit_in(b)).collect();
    let tone: Vec<f64> = blocks.iter().map(|b| share(b, 1000.0)).collect();
    let fives = digits.iter().filter(|d| **d == Some('5')).count();
    assert!(
        fives <= 3,
        "{id}: the digit is masked after detection: {digits:?}"
    );
    let toned = tone[10..23].iter().filter(|&&t| t > 0.5).count();
    assert!(toned >= 8, "{id}: the tone replaces the digit: {tone:.2?}");
}

#[test]
fn inband_digit_masked_in_a_g729_line_epoll() {
    inband_masked(
        "epoll",
        "coded-inband-g729-e",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn inband_digit_masked_in_a_g729_line_io_uring() {
    inband_masked(
        "auto",
        "coded-inband-g729-u",
        (18, "G729/8000", Some("annexb=no")),
        8000,
    );
}

#[test]
fn inband_digit_masked_in_an_opus_line_epoll() {
    inband_masked(
        "epoll",
        "coded-inband-opus-e",
        (96, "opus/48000/2", None),
        48000,
    );
}

#[test]
fn inband_digit_masked_in_an_opus_line_io_uring() {
    inband_masked(
        "auto",
        "coded-inband-opus-u",
        (96, "opus/48000/2", None),
        48000,
    );
}
