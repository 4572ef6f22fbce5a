//! Recording through SRTP, through transcoding and through packet loss, end to end: each
//! party sends a known tone in real time, the WAV is downloaded over HTTP and each channel
//! is checked for the right tone in its time windows, silence where packets were lost, and
//! the right duration.

mod transcode_common;

use std::time::{Duration, Instant};

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::SrtpContext;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::http::encode_segment;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint, Value};
use transcode_common::{encode, lookup, setup, sine_frames};

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key + salt of the SRTP caller.
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";

/// A fresh folder under the system temp dir, removed at the end.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "ngmedia-recmedia-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 20 ms of a `freq` Hz tone at 8 kHz, phase continuous over the packet index `k`.
fn tone(freq: f64, k: u32) -> Vec<i16> {
    (k * 160..(k + 1) * 160)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * freq * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect()
}

/// µ-law payload of [`tone`], with the codecs crate's encoder (the daemon decodes with its
/// own copy of it; what matters here is the timeline, not G.711).
fn ulaw_tone(freq: f64, k: u32) -> Vec<u8> {
    tone(freq, k)
        .into_iter()
        .map(ngmedia_codecs::g711::ulaw_encode)
        .collect()
}

/// A parsed 16-bit PCM WAV: rate and samples per channel.
struct Wav {
    rate: u32,
    chans: Vec<Vec<i16>>,
}

impl Wav {
    fn parse(b: &[u8]) -> Wav {
        assert!(b.len() >= 44, "WAV of {} bytes", b.len());
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize,
            b.len() - 8
        );
        assert_eq!(&b[8..12], b"WAVE");
        let (mut pos, mut fmt, mut data) = (12usize, None, None);
        while pos + 8 <= b.len() {
            let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
            match &b[pos..pos + 4] {
                b"fmt " => fmt = Some(b[pos + 8..pos + 8 + len].to_vec()),
                b"data" => data = Some(b[pos + 8..pos + 8 + len].to_vec()),
                _ => {}
            }
            pos += 8 + len + (len & 1);
        }
        let (fmt, data) = (fmt.expect("fmt chunk"), data.expect("data chunk"));
        let channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]]));
        assert_eq!(channels, 2, "stereo");
        let mut chans = vec![Vec::new(); channels];
        for (i, c) in data.chunks_exact(2).enumerate() {
            chans[i % channels].push(i16::from_le_bytes([c[0], c[1]]));
        }
        Wav {
            rate: u32::from_le_bytes(fmt[4..8].try_into().unwrap()),
            chans,
        }
    }

    fn ms(&self) -> usize {
        self.chans[0].len() * 1000 / self.rate as usize
    }

    /// `from..to` ms of a channel, counted from sample `origin`.
    fn window(&self, ch: usize, origin: usize, from_ms: usize, to_ms: usize) -> &[i16] {
        let per_ms = self.rate as usize / 1000;
        &self.chans[ch][origin + from_ms * per_ms..origin + to_ms * per_ms]
    }

    /// First sample of a channel that is not silence.
    fn onset(&self, ch: usize) -> usize {
        self.chans[ch]
            .iter()
            .position(|&s| s != 0)
            .unwrap_or_else(|| panic!("channel {ch} is all silence"))
    }
}

/// Goertzel power of `freq` in `x` at `rate`, normalized by length squared.
fn power(x: &[i16], rate: u32, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (x.len() as f64).powi(2)
}

/// Left carries `left` Hz and not `right` Hz from 100 ms after its onset for 800 ms, and the
/// right channel the other way round.
fn assert_tones(wav: &Wav, left: f64, right: f64) {
    for (ch, want, other) in [(0, left, right), (1, right, left)] {
        let w = wav.window(ch, wav.onset(ch), 100, 900);
        let (p, q) = (power(w, wav.rate, want), power(w, wav.rate, other));
        assert!(p > 1e5, "channel {ch}: {want} Hz power {p}");
        assert!(
            q < p / 1000.0,
            "channel {ch}: {other} Hz power {q} against {p}"
        );
    }
}

fn ng_recording(ng: &NgClient, command: &str, call_id: &str, from_tag: &str) {
    ng.ok(dict! { "command" => command, "call-id" => call_id, "from-tag" => from_tag });
}

/// The finished recording of `call_id` (metadata) and its mixed WAV, over HTTP.
fn finished_recording(daemon: &Daemon, call_id: &str) -> (serde_json::Value, Wav) {
    let http = daemon.http_client();
    let meta = wait_for(Duration::from_secs(5), || {
        let list = http.get(&format!("/recordings?call_id={}", encode_segment(call_id)));
        let first = list.json()["recordings"][0].clone();
        (first["state"] == "complete").then_some(first)
    })
    .expect("the recording is finalized");
    let audio = http.get(&format!(
        "/recordings/{}/audio",
        meta["id"].as_str().unwrap()
    ));
    assert_eq!(audio.status, 200);
    (meta, Wav::parse(&audio.body))
}

/// Wait until `k` × 20 ms after `epoch`.
fn pace(epoch: Instant, k: u32) {
    let due = epoch + Duration::from_millis(u64::from(k) * 20);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

#[test]
fn recording_of_an_sdes_srtp_leg_is_decrypted_and_on_its_channel() {
    let dir = TempDir::new("srtp");
    let daemon = Daemon::start(&[&format!("--recording-dir={}", dir.0.display())]);
    let ng = daemon.client();
    let (a, b) = (RtpEndpoint::new(0xa1a1), RtpEndpoint::new(0xb2b2));
    let sdp = |ep: &RtpEndpoint, proto: &str, extra: &str| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n{extra}",
            ep.port()
        )
    };
    let crypto = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}\r\n");
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => "rec-srtp", "from-tag" => "A",
        "sdp" => sdp(&a, "RTP/SAVP", &crypto), "ICE" => "remove", "flags" => vec!["record-call"],
    });
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => "rec-srtp", "from-tag" => "A", "to-tag" => "B",
        "sdp" => sdp(&b, "RTP/AVP", ""), "ICE" => "remove",
    });
    let b_dest = parse_reply_sdp(&offer).audio_addr();
    let a_dest = parse_reply_sdp(&answer).audio_addr();
    let mut tx: SrtpContext = CryptoAttr::parse(&format!("1 {SUITE} inline:{PEER_KEY}"))
        .unwrap()
        .context()
        .unwrap();

    // A (SRTP) sends 440 Hz, B (plain) 1 kHz, for 1.2 s.
    let epoch = Instant::now();
    for k in 0..60u32 {
        pace(epoch, k);
        let plain = rtp_packet(0, k as u16, k * 160, a.ssrc, &ulaw_tone(440.0, k));
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        a.sock.send_to(&buf[..n], a_dest).unwrap();
        let pb = rtp_packet(
            0,
            1000 + k as u16,
            50_000 + k * 160,
            b.ssrc,
            &ulaw_tone(1000.0, k),
        );
        b.sock.send_to(&pb, b_dest).unwrap();
    }
    // The relay decrypted A's media for B too.
    assert!(!b.recv_many(5, Duration::from_secs(1)).is_empty());

    // The SRTP state is reported: `crypto suite` per stream in `query`, `srtp` in /calls.
    let q = ng.query("rec-srtp").unwrap();
    let stream = q
        .path(&["tags", "A", "medias"])
        .and_then(Value::as_list)
        .and_then(|m| m[0].get("streams"))
        .and_then(Value::as_list)
        .map(|s| s[0].clone())
        .unwrap();
    assert_eq!(
        stream.get("crypto suite").and_then(Value::as_str),
        Some(SUITE)
    );
    let view = daemon.http_client().get("/calls/rec-srtp").json();
    let media_a = &view["legs"][0]["medias"][0];
    assert_eq!(media_a["srtp"]["keying"], "SDES");
    assert_eq!(media_a["srtp"]["suite_in"], SUITE);
    assert_eq!(media_a["codecs"][0], "PCMU/8000");
    assert!(view["legs"][1]["medias"][0]["srtp"].is_null());

    ng_recording(&ng, "stop recording", "rec-srtp", "A");
    let (meta, wav) = finished_recording(&daemon, "rec-srtp");
    assert_eq!(wav.rate, 8000);
    assert_eq!(meta["streams"][0]["codecs"][0], "PCMU/8000");
    assert_eq!(
        meta["streams"][0]["discarded"], 0,
        "every SRTP packet decoded"
    );
    assert_tones(&wav, 440.0, 1000.0);
}

#[test]
fn recording_of_a_pcmu_opus_transcoded_call_is_48khz_with_both_tones() {
    let dir = TempDir::new("opus");
    let daemon = Daemon::start(&[&format!("--recording-dir={}", dir.0.display())]);
    let ng = daemon.client();
    let call = setup(
        &ng,
        "rec-opus",
        &[(0, "PCMU/8000", None)],
        &["opus"],
        |offer| {
            let pt = transcode_common::pt_of(offer, "opus", 48000).expect("opus offered");
            vec![(pt, "opus/48000/2".into(), None)]
        },
        None,
    );
    let opus_pt = transcode_common::pt_of(&call.offer, "opus", 48000).unwrap();
    ng_recording(&ng, "start recording", "rec-opus", "ta");
    let opus = lookup("opus", 48000, Some(2), None);
    let from_b = encode(&opus, 20, &sine_frames(1000.0, 8000.0, 160, 60));

    let epoch = Instant::now();
    for k in 0..60u32 {
        pace(epoch, k);
        let pa = rtp_packet(0, k as u16, k * 160, call.a.ssrc, &ulaw_tone(440.0, k));
        call.a.sock.send_to(&pa, call.a_dest).unwrap();
        let pb = rtp_packet(
            opus_pt,
            500 + k as u16,
            9_000 + k * 960,
            call.b.ssrc,
            &from_b[k as usize],
        );
        call.b.sock.send_to(&pb, call.b_dest).unwrap();
    }
    std::thread::sleep(Duration::from_millis(40));
    ng_recording(&ng, "stop recording", "rec-opus", "ta");
    let (meta, wav) = finished_recording(&daemon, "rec-opus");
    assert_eq!(wav.rate, 48000, "wideband: an Opus party");
    assert_eq!(meta["sample_rate"], 48000);
    let codecs: Vec<&str> = meta["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codecs"][0].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["PCMU/8000", "opus/48000"]);
    assert_tones(&wav, 440.0, 1000.0);

    // The transcoder pair is visible to operators while the call lasts.
    let scrape = daemon.http_client().get("/metrics");
    let metrics = scrape.text();
    assert!(
        metrics.contains("ngmedia_transcoders_active{pair=\"PCMU-opus\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ngmedia_transcoders_active{pair=\"opus-PCMU\"} 1"));
    let view = daemon.http_client().get("/calls/rec-opus").json();
    assert_eq!(view["legs"][0]["medias"][0]["transcode"], "PCMU-opus");
}

/// A deterministic "random" 10 % loss pattern (xorshift; the first and last packets arrive).
fn loss_pattern(n: u32) -> Vec<bool> {
    let mut x = 0x2545_f491_u32;
    (0..n)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            k != 0 && k != n - 1 && x.is_multiple_of(10)
        })
        .collect()
}

#[test]
fn recording_with_ten_percent_random_loss_has_silence_exactly_where_packets_were_lost() {
    let dir = TempDir::new("loss");
    let daemon = Daemon::start(&[&format!("--recording-dir={}", dir.0.display())]);
    let ng = daemon.client();
    let call = ngmedia_tests::TwoPartyCall::setup(&ng, "rec-loss");
    let n = 150u32;
    let lost = loss_pattern(n);
    let lost_count = lost.iter().filter(|&&l| l).count();
    assert!((10..=20).contains(&lost_count), "{lost_count} of {n}");

    let started = Instant::now();
    ng_recording(&ng, "start recording", &call.call_id, &call.from_tag);
    // The workers apply the tap right after the reply; packet 0 must not race it, since its
    // position is where the test counts from.
    std::thread::sleep(Duration::from_millis(100));
    let epoch = Instant::now();
    for k in 0..n {
        pace(epoch, k);
        if !lost[k as usize] {
            let pa = rtp_packet(
                0,
                k as u16,
                1000 + k * 160,
                call.a.ssrc,
                &ulaw_tone(440.0, k),
            );
            call.a.sock.send_to(&pa, call.a_dest).unwrap();
        }
        let pb = rtp_packet(
            0,
            k as u16,
            7000 + k * 160,
            call.b.ssrc,
            &ulaw_tone(1000.0, k),
        );
        call.b.sock.send_to(&pb, call.b_dest).unwrap();
    }
    pace(epoch, n);
    ng_recording(&ng, "stop recording", &call.call_id, &call.from_tag);
    let wall_ms = started.elapsed().as_millis() as usize;

    let (meta, wav) = finished_recording(&daemon, "rec-loss");
    assert_eq!(wav.rate, 8000);
    assert_eq!(meta["streams"][0]["lost"], lost_count as u64);
    assert_eq!(meta["streams"][1]["lost"], 0);
    // Duration: the recorded interval, within one packet time.
    let duration_ms = meta["duration_ms"].as_u64().unwrap() as usize;
    assert!(
        wav.ms().abs_diff(duration_ms) <= 20,
        "WAV {} ms, recorded {duration_ms} ms",
        wav.ms()
    );
    assert!(
        duration_ms.abs_diff(wall_ms) <= 20,
        "recorded {duration_ms} ms, wall clock {wall_ms} ms"
    );

    // Packet k of A occupies samples [onset + 160 k, onset + 160 (k + 1)); the onset is the
    // first audible sample, at most a few samples after packet 0's first (a zero crossing).
    let (left, right) = (&wav.chans[0], &wav.chans[1]);
    let onset = wav.onset(0);
    for k in 0..n as usize {
        let w = &left[onset + 160 * k + 4..onset + 160 * (k + 1) - 4];
        if lost[k] {
            assert!(
                w.iter().all(|&s| s == 0),
                "packet {k} was lost: its 20 ms must be silence"
            );
        } else {
            assert!(
                w.iter().filter(|&&s| s != 0).count() > 100,
                "packet {k} arrived: audio"
            );
        }
    }
    // B's channel has no holes, and the tones stay on their own channels.
    let b_onset = wav.onset(1);
    for k in 0..n as usize {
        let w = &right[b_onset + 160 * k + 4..b_onset + 160 * (k + 1) - 4];
        assert!(w.iter().filter(|&&s| s != 0).count() > 100, "B packet {k}");
    }
    assert_tones(&wav, 440.0, 1000.0);
}
