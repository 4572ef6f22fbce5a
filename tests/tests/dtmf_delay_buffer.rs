//! `delay-buffer` and `DTMF-delay` of `block DTMF` on the real binary: the party's media
//! reaches the peer only after the delay, audio shortly before a digit is masked too (it
//! left the buffer after the digit was seen), `unblock DTMF` with `delay-buffer: 0`
//! sends what was held at once, and with a DTMF delay the party's digits are silenced
//! where sent and played again later as RFC 4733 events (start with marker, growing
//! duration, the end report three times, the packets after it moved up by two). Each test runs
//! on both IO backends (epoll and io_uring).

use std::thread::sleep;
use std::time::{Duration, Instant};

use ngmedia_tests::call::TwoPartyCall;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::{dtmf_event as event, RtpView as Rtp};

/// Packet spacing the party sends at (a little under 20 ms, as rtpengine's tests do).
const GAP: Duration = Duration::from_millis(18);
const WAIT: Duration = Duration::from_millis(400);

/// rtpengine's replacement tone (400 Hz, volume 10) in PCMU, one period from phase 0.
const TONE_400: [u8; 20] = [
    0xff, 0xb5, 0xa7, 0x9f, 0x9c, 0x9b, 0x9c, 0x9f, 0xa7, 0xb5, 0xff, 0x35, 0x27, 0x1f, 0x1c, 0x1b,
    0x1c, 0x1f, 0x27, 0x35,
];

fn ok(ng: &NgClient, body: ngmedia_tests::bencode::Value) {
    let r = ng.ok(body);
    assert_eq!(r.str_at("result"), Some("ok"), "{r:?}");
    assert!(r.str_at("warning").is_none(), "nothing ignored: {r:?}");
}

/// `ts` of packet `seq` on A's line (seq 1000 at ts 3000, 20 ms each).
fn ts(seq: u16) -> u32 {
    3000 + 160 * u32::from(seq - 1000)
}

/// Both IO backends hold and release the same way.
fn start(backend: &str) -> Daemon {
    Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)])
}

#[test]
fn a_delay_buffer_holds_media_and_masks_the_audio_before_a_digit_epoll() {
    delay_buffer(start("epoll"));
}

#[test]
fn a_delay_buffer_holds_media_and_masks_the_audio_before_a_digit_io_uring() {
    delay_buffer(start("io_uring"));
}

#[test]
fn a_dtmf_delay_plays_the_digit_later_as_events_epoll() {
    dtmf_delay(start("epoll"));
}

#[test]
fn a_dtmf_delay_plays_the_digit_later_as_events_io_uring() {
    dtmf_delay(start("io_uring"));
}

fn delay_buffer(daemon: Daemon) {
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "delay-buffer");
    let (a, b, dest) = (&call.a, &call.b, call.a_dest);
    a.send_rtp(dest, 0, 1000, ts(1000), &[0; 160]);
    assert_eq!(
        b.recv_rtp(WAIT).map(|p| p.seq),
        Some(1000),
        "relayed at once"
    );
    ok(
        &ng,
        dict! {
            "command" => "block DTMF", "call-id" => "delay-buffer",
            "from-tag" => call.from_tag.as_str(), "DTMF-security" => "tone",
            "delay-buffer" => 100i64,
        },
    );
    // Held for 100 ms: nothing arrives meanwhile, then everything in order.
    let start = Instant::now();
    for seq in 1001..1004u16 {
        a.send_rtp(dest, 0, seq, ts(seq), &[0x11; 160]);
        sleep(GAP);
    }
    let first = b.recv_rtp(WAIT).expect("held packet");
    let held = start.elapsed();
    assert!(
        held >= Duration::from_millis(90),
        "left after {held:?}, not 100 ms"
    );
    assert_eq!((first.seq, first.ts), (1001, ts(1001)));
    // A digit now: the two packets still held (sent within 100 ms before it) leave as
    // the tone, as does the digit itself (an event packet turned into audio).
    for (i, ev) in [event(5, false, 160), event(5, true, 320)]
        .iter()
        .enumerate()
    {
        let seq = 1004 + i as u16;
        a.send_rtp(dest, if i == 0 { 0xe5 } else { 101 }, seq, ts(1004), ev);
        sleep(GAP);
    }
    for seq in 1002..1006u16 {
        let p = b.recv_rtp(WAIT).expect("released");
        assert_eq!((p.pt, p.seq, p.ts), (0, seq, ts(seq)), "{p:?}");
        assert_eq!(
            &p.payload[..20],
            &TONE_400,
            "packet {seq} replaced by the tone"
        );
    }
    // Audio after the digit is still within 100 ms of its end: the tone, and the
    // buffer is emptied at once by `unblock DTMF` with `delay-buffer: 0`.
    for seq in 1006..1009u16 {
        a.send_rtp(dest, 0, seq, ts(seq), &[0x22; 160]);
    }
    sleep(Duration::from_millis(20));
    ok(
        &ng,
        dict! {
            "command" => "unblock DTMF", "call-id" => "delay-buffer",
            "from-tag" => call.from_tag.as_str(), "delay-buffer" => 0i64,
        },
    );
    let flushed = Instant::now();
    for seq in 1006..1009u16 {
        let p = b.recv_rtp(WAIT).expect("flushed");
        assert_eq!(p.seq, seq);
        assert!(p.payload.iter().all(|&x| x == 0x22), "unblocked: as sent");
    }
    assert!(
        flushed.elapsed() < Duration::from_millis(80),
        "sent at once"
    );
    a.send_rtp(dest, 0, 1009, ts(1009), &[0x33; 160]);
    let p = b
        .recv_rtp(Duration::from_millis(50))
        .expect("no delay any more");
    assert_eq!((p.seq, p.payload[0]), (1009, 0x33));
}

fn dtmf_delay(daemon: Daemon) {
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "dtmf-delay");
    let (a, b, dest) = (&call.a, &call.b, call.a_dest);
    // A trigger that is never keyed: nothing is blocked, digits are only delayed.
    ok(
        &ng,
        dict! {
            "command" => "block DTMF", "call-id" => "dtmf-delay",
            "from-tag" => call.from_tag.as_str(), "trigger" => "##",
            "DTMF-security-trigger" => "silence", "delay-buffer" => 1i64,
            "DTMF-delay" => 60i64,
        },
    );
    let mut got = Vec::new();
    // Two packets of audio, a digit of 6 packets (960 units) from 1002, then audio.
    for n in 0..14u16 {
        let seq = 1000 + n;
        match n {
            2..=7 => {
                let end = n == 7;
                let pt = if n == 2 { 0xe5 } else { 101 };
                a.send_rtp(dest, pt, seq, ts(1002), &event(9, end, 160 * (n - 1)));
            }
            _ => a.send_rtp(dest, 0, seq, ts(seq), &[0; 160]),
        }
        sleep(GAP);
        while let Some(p) = b.recv_rtp(Duration::from_millis(2)) {
            got.push(p);
        }
    }
    while let Some(p) = b.recv_rtp(Duration::from_millis(100)) {
        got.push(p);
    }
    let summary: Vec<(bool, u8, u16, u32, Vec<u8>)> = got
        .iter()
        .map(|p| {
            let head = p.payload.iter().take(4).copied().collect();
            (p.marker, p.pt, p.seq, p.ts, head)
        })
        .collect();
    // The digit's own packets: silence at their place in the line.
    for s in 1002..1005u16 {
        let p = got.iter().find(|p| p.seq == s).expect("packet");
        assert_eq!((p.pt, p.ts), (0, ts(s)), "{summary:?}");
        assert!(p.payload.iter().all(|&x| x == 0xff), "{summary:?}");
    }
    // 60 ms (3 packets) later the digit again, as events from seq 1005 on.
    let events: Vec<&Rtp> = got.iter().filter(|p| p.pt == 101).collect();
    assert_eq!(events.len(), 6 + 3, "{summary:?}");
    for (i, p) in events[..6].iter().enumerate() {
        let seq = 1005 + i as u16;
        assert_eq!(
            (p.marker, p.seq, p.ts),
            (i == 0, seq, ts(1005)),
            "{summary:?}"
        );
        let want = event(9, false, 160 * (i as u16 + 1));
        assert_eq!(p.payload[..], want[..], "{summary:?}");
    }
    for (k, p) in events[6..].iter().enumerate() {
        assert_eq!((p.seq, p.ts), (1011 + k as u16, ts(1005)), "{summary:?}");
        assert_eq!(p.payload[..], event(9, true, 7 * 160)[..], "{summary:?}");
    }
    // The audio after the end reports moved up by two sequence numbers.
    let last = got.last().unwrap();
    assert_eq!(
        (last.pt, last.seq, last.ts),
        (0, 1013 + 2, ts(1013)),
        "{summary:?}"
    );
}
