//! Call recording end to end: ng `start/pause/stop recording` and `record-call`, real RTP
//! tones from both parties, the WAV downloaded over HTTP and analysed per channel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ngmedia_tests::http::{encode_segment, request};
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint, TwoPartyCall, Value};

/// A fresh folder under the system temp dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p =
            std::env::temp_dir().join(format!("ngmedia-rec-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// G.711 µ-law encoding (ITU-T G.711), kept here so the test does not share the daemon's.
fn ulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(32635) + 0x84;
    let mut exp = 7;
    let mut mask = 0x4000;
    while s & mask == 0 && exp > 0 {
        exp -= 1;
        mask >>= 1;
    }
    let mant = (s >> (exp + 3)) & 0x0f;
    !(sign | (exp << 4) as u8 | mant as u8)
}

/// One 20 ms PCMU packet of a `freq` Hz tone, phase continuous over `ts`.
fn tone_packet(seq: u16, ts: u32, ssrc: u32, freq: f64) -> Vec<u8> {
    let payload: Vec<u8> = (0..160u32)
        .map(|i| {
            let t = f64::from(ts.wrapping_add(i)) / 8000.0;
            ulaw((8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16)
        })
        .collect();
    rtp_packet(0, seq, ts, ssrc, &payload)
}

/// A parsed 16-bit PCM WAV: (channels, rate, samples per channel).
struct Wav {
    channels: u16,
    rate: u32,
    chans: Vec<Vec<i16>>,
}

/// Parse a RIFF/WAVE file strictly: sizes must match the file.
fn parse_wav(b: &[u8]) -> Wav {
    assert!(b.len() >= 44, "WAV of {} bytes", b.len());
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize,
        b.len() - 8
    );
    assert_eq!(&b[8..12], b"WAVE");
    let (mut pos, mut fmt, mut data) = (12usize, None, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &b[pos + 8..pos + 8 + len];
        match id {
            b"fmt " => fmt = Some(body.to_vec()),
            b"data" => data = Some(body.to_vec()),
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    let fmt = fmt.expect("fmt chunk");
    let data = data.expect("data chunk");
    let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
    let rate = u32::from_le_bytes(fmt[4..8].try_into().unwrap());
    assert_eq!(u16::from_le_bytes([fmt[14], fmt[15]]), 16, "16-bit PCM");
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut chans = vec![Vec::new(); usize::from(channels)];
    for (i, s) in samples.iter().enumerate() {
        chans[i % usize::from(channels)].push(*s);
    }
    Wav {
        channels,
        rate,
        chans,
    }
}

/// Goertzel power of `freq` in `x`, normalized by length squared.
fn power(x: &[i16], freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (x.len() as f64).powi(2)
}

fn ms(x: &[i16], from: usize, to: usize) -> &[i16] {
    &x[from * 8..to * 8]
}

fn silent(x: &[i16]) -> bool {
    x.iter().all(|&s| s == 0)
}

fn rec(ng: &NgClient, command: &str, call: &TwoPartyCall, extra: &[(&str, &str)]) {
    let mut d = dict! { "command" => command, "call-id" => call.call_id.as_str(), "from-tag" => call.from_tag.as_str() };
    if let Value::Dict(entries) = &mut d {
        for (k, v) in extra {
            entries.push((k.as_bytes().to_vec(), Value::from(*v)));
        }
    }
    ng.ok(d);
}

/// Send one tone packet from each side per 20 ms for `n` packets starting at packet `from`;
/// A skips packets in `a_skip` (timestamps still advance: lost on the network).
fn talk(call: &TwoPartyCall, from: u32, n: u32, a_skip: std::ops::Range<u32>, epoch: Instant) {
    for k in from..from + n {
        // Pace by absolute time so the wall clock and RTP timestamps stay together.
        let due = epoch + Duration::from_millis(u64::from(k) * 20);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if !a_skip.contains(&k) {
            let p = tone_packet(k as u16, 1000 + k * 160, call.a.ssrc, 440.0);
            call.a.sock.send_to(&p, call.a_dest).unwrap();
        }
        let p = tone_packet(500 + k as u16, 77_000 + k * 160, call.b.ssrc, 1000.0);
        call.b.sock.send_to(&p, call.b_dest).unwrap();
    }
}

fn recordings_of(http: SocketAddr, call_id: &str) -> Vec<serde_json::Value> {
    let r = request(
        http,
        "GET",
        &format!("/recordings?call_id={}", encode_segment(call_id)),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["recordings"].as_array().unwrap().clone()
}

#[test]
fn recording_has_each_party_on_its_channel_with_silence_for_loss_and_pause() {
    let dir = TempDir::new("tones");
    let daemon = Daemon::start(&[&format!("--recording-dir={}", dir.0.display())]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "rec-tones@test");
    // Latch both sides before the recording starts.
    call.a
        .sock
        .send_to(&tone_packet(0, 0, call.a.ssrc, 440.0), call.a_dest)
        .unwrap();
    call.b
        .sock
        .send_to(&tone_packet(0, 0, call.b.ssrc, 1000.0), call.b_dest)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    rec(
        &ng,
        "start recording",
        &call,
        &[
            ("metadata", "agent=7"),
            ("output-destination", "../../evil"),
        ],
    );
    let started = Instant::now();
    let epoch = started;
    // 0–1200 ms: both talk; A loses 500–700 ms.
    talk(&call, 0, 60, 25..35, epoch);
    // 1200–1600 ms: paused while both keep talking.
    rec(&ng, "pause recording", &call, &[]);
    talk(&call, 60, 20, 0..0, epoch);
    rec(&ng, "start recording", &call, &[]);
    talk(&call, 80, 20, 0..0, epoch);
    // Let the last packets through the relay before stopping.
    std::thread::sleep(Duration::from_millis(20));
    rec(&ng, "stop recording", &call, &[]);
    let wall_ms = started.elapsed().as_millis() as usize;

    let list = wait_for(Duration::from_secs(5), || {
        let l = recordings_of(daemon.http, &call.call_id);
        (!l.is_empty() && l[0]["state"] == "complete").then_some(l)
    })
    .expect("the recording is listed once finalized");
    assert_eq!(list.len(), 1);
    let meta = &list[0];
    let id = meta["id"].as_str().unwrap();
    // output-destination cannot escape the folder: it only names the file.
    assert!(id.starts_with("evil-"), "{id}");
    assert!(dir.0.join(format!("{id}.wav")).is_file());
    assert_eq!(meta["call_id"], "rec-tones@test");
    assert_eq!(meta["state"], "complete");
    assert_eq!(meta["metadata"][0], "agent=7");
    assert_eq!(meta["legs"][0]["tag"], call.from_tag.as_str());
    assert_eq!(meta["legs"][1]["tag"], call.to_tag.as_str());
    assert_eq!(meta["pauses"].as_array().unwrap().len(), 1);
    assert_eq!(meta["streams"][0]["codecs"][0], "PCMU/8000");
    assert_eq!(meta["streams"][0]["ssrcs"][0]["ssrc"], call.a.ssrc);
    assert_eq!(meta["streams"][0]["lost"], 10);

    let http = daemon.http_client();
    let full = http.get(&format!("/recordings/{id}/audio"));
    assert_eq!(full.status, 200);
    assert_eq!(full.header("content-type"), Some("audio/wav"));
    let wav = parse_wav(&full.body);
    assert_eq!((wav.channels, wav.rate), (2, 8000));
    let (left, right) = (&wav.chans[0], &wav.chans[1]);
    let dur = left.len() / 8;
    assert!(
        dur.abs_diff(wall_ms) <= 60,
        "WAV {dur} ms, wall clock {wall_ms} ms"
    );

    // Caller (440 Hz) left, callee (1 kHz) right.
    assert!(power(ms(left, 60, 460), 440.0) > 1e5);
    assert!(power(ms(left, 60, 460), 1000.0) < 1e3);
    assert!(power(ms(right, 60, 460), 1000.0) > 1e5);
    assert!(power(ms(right, 60, 460), 440.0) < 1e3);
    // A's lost packets (500–700 ms) are silence, B's channel is not.
    assert!(silent(ms(left, 540, 660)), "gap is silence");
    assert!(!silent(ms(right, 540, 660)));
    // Paused (1200–1600 ms): silence on both channels.
    assert!(
        silent(ms(left, 1250, 1550)) && silent(ms(right, 1250, 1550)),
        "pause is silence"
    );
    assert!(power(ms(left, 1660, 1960), 440.0) > 1e5);
    assert!(power(ms(right, 1660, 1960), 1000.0) > 1e5);

    // Range download returns the same bytes.
    let part = request(
        daemon.http,
        "GET",
        &format!("/recordings/{id}/audio"),
        &[("Range", "bytes=0-43")],
        &[],
    )
    .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body, full.body[..44]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-43/{}", full.body.len()).as_str())
    );
    let tail = request(
        daemon.http,
        "GET",
        &format!("/recordings/{id}/audio"),
        &[("Range", "bytes=-100")],
        &[],
    )
    .unwrap();
    assert_eq!(tail.body, full.body[full.body.len() - 100..]);

    let one = http.get(&format!("/recordings/{id}"));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], id);
    assert_eq!(http.get("/recordings/..%2Fx").status, 400);

    let deleted = http.delete(&format!("/recordings/{id}"));
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["deleted"], id);
    assert_eq!(http.get(&format!("/recordings/{id}")).status, 404);
    assert!(!dir.0.join(format!("{id}.wav")).exists());
}

#[test]
fn sigterm_mid_recording_leaves_valid_files() {
    let dir = TempDir::new("sigterm");
    let mut daemon = Daemon::start(&[
        &format!("--recording-dir={}", dir.0.display()),
        "--recording-format=both",
    ]);
    let ng = daemon.client();
    let mut a = RtpEndpoint::new(0x1111);
    let mut b = RtpEndpoint::new(0x2222);
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "rec-term", "from-tag" => "ta",
        "sdp" => audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"),
        "flags" => vec!["record-call"], "ICE" => "remove",
    });
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => "rec-term", "from-tag" => "ta", "to-tag" => "tb",
        "sdp" => audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"), "ICE" => "remove",
    });
    let b_dest = ngmedia_tests::call::parse_reply_sdp(&offer).audio_addr();
    let a_dest = ngmedia_tests::call::parse_reply_sdp(&answer).audio_addr();
    for _ in 0..25 {
        a.send_next(a_dest);
        b.send_next(b_dest);
        std::thread::sleep(Duration::from_millis(20));
    }
    // The call still relays while it is recorded.
    assert!(!b.recv_many(5, Duration::from_secs(1)).is_empty());
    let status = daemon
        .terminate(Duration::from_secs(5))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status}");

    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    let wav = names.iter().find(|n| n.ends_with(".wav")).expect("a WAV");
    let w = parse_wav(&std::fs::read(dir.0.join(wav)).unwrap());
    assert_eq!(w.channels, 2);
    // About half a second of audio on both channels, all of it written.
    assert!(w.chans[0].len() >= 8 * 400, "{} samples", w.chans[0].len());
    assert!(!silent(&w.chans[0]) && !silent(&w.chans[1]));
    let json = names
        .iter()
        .find(|n| n.ends_with(".json"))
        .expect("metadata");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join(json)).unwrap()).unwrap();
    assert_eq!(meta["call_id"], "rec-term");
    assert_eq!(meta["state"], "complete");
    let pcap = names.iter().find(|n| n.ends_with(".pcap")).expect("pcap");
    let pcap = std::fs::read(dir.0.join(pcap)).unwrap();
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    assert_eq!((pcap.len() - 24) % (16 + 20 + 8 + 12 + 160), 0);
}

#[test]
fn unusable_recording_folder_leaves_the_call_intact() {
    let dir = TempDir::new("broken");
    let file = dir.0.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let daemon = Daemon::start(&[&format!("--recording-dir={}", file.join("sub").display())]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "rec-broken");
    rec(&ng, "start recording", &call, &[]);
    let (from_a, _) = call.exchange(30, Duration::from_millis(20));
    let got = call.b.recv_many(from_a.len(), Duration::from_secs(2));
    assert_eq!(got.len(), from_a.len(), "every packet still relayed");
    rec(&ng, "stop recording", &call, &[]);
    assert!(
        wait_for(Duration::from_secs(3), || daemon
            .log_text()
            .contains("recording failed")
            .then_some(()))
        .is_some(),
        "the failure is logged"
    );
    ng.ok(dict! { "command" => "query", "call-id" => "rec-broken" });
}
