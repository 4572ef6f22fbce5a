//! Shared helpers of the transcoding black-box tests: build SDP for arbitrary codecs, run
//! offer (with `codec: {transcode: [...]}`) and answer through the daemon, send a sine
//! encoded with the codecs crate and check what arrives decodes back to the same tone.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_codecs::dtmf::TelephoneEvent;
use ngmedia_codecs::{Codec, EncoderOptions};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{dict, Daemon, NgClient, RtpEndpoint, Sdp, Value};

/// One payload type of an SDP we build: (pt, `name/rate[/channels]`, fmtp).
pub(crate) type Pt<'a> = (u8, &'a str, Option<&'a str>);

/// An audio SDP at 127.0.0.1:`port` with these payload types and `a=ptime` if given.
pub(crate) fn sdp(port: u16, pts: &[Pt<'_>], ptime: Option<u32>) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=tc\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.iter().map(|p| p.0.to_string()).collect::<Vec<_>>().join(" ")
    );
    for (pt, map, fmtp) in pts {
        s += &format!("a=rtpmap:{pt} {map}\r\n");
        if let Some(f) = fmtp {
            s += &format!("a=fmtp:{pt} {f}\r\n");
        }
    }
    if let Some(p) = ptime {
        s += &format!("a=ptime:{p}\r\n");
    }
    s + "a=sendrecv\r\n"
}

/// The payload type the SDP gives to `name/rate` (case-insensitive name).
pub(crate) fn pt_of(sdp: &Sdp, name: &str, rate: u32) -> Option<u8> {
    sdp.audio().attributes.iter().find_map(|a| {
        let v = a.strip_prefix("rtpmap:")?;
        let (pt, enc) = v.split_once(' ')?;
        let mut parts = enc.split('/');
        let n = parts.next()?;
        let r: u32 = parts.next()?.parse().ok()?;
        (n.eq_ignore_ascii_case(name) && r == rate).then(|| pt.parse().ok())?
    })
}

/// A call set up with transcoding: A offers `a_pts`, the engine adds `transcode`, B answers
/// with what `b_pick` chooses from the engine's offer.
pub(crate) struct TcCall {
    pub a: RtpEndpoint,
    pub b: RtpEndpoint,
    pub a_dest: SocketAddr,
    pub b_dest: SocketAddr,
    pub offer: Sdp,
    pub answer: Sdp,
    pub call_id: String,
}

pub(crate) fn setup(
    ng: &NgClient,
    call_id: &str,
    a_pts: &[Pt<'_>],
    transcode: &[&str],
    b_pick: impl FnOnce(&Sdp) -> Vec<(u8, String, Option<String>)>,
    b_ptime: Option<u32>,
) -> TcCall {
    let a = RtpEndpoint::new(0x0a0a_0001);
    let b = RtpEndpoint::new(0x0b0b_0002);
    let offer = ng.ok(dict! {
        "command" => "offer", "call-id" => call_id, "from-tag" => "ta", "sdp" => sdp(a.port(), a_pts, Some(20)),
        "ICE" => "remove", "replace" => vec!["origin"],
        "codec" => dict! { "transcode" => transcode.to_vec() },
    });
    let offer = parse_reply_sdp(&offer);
    let picked = b_pick(&offer);
    let b_pts: Vec<Pt<'_>> = picked
        .iter()
        .map(|(pt, m, f)| (*pt, m.as_str(), f.as_deref()))
        .collect();
    let answer = ng.ok(dict! {
        "command" => "answer", "call-id" => call_id, "from-tag" => "ta", "to-tag" => "tb",
        "sdp" => sdp(b.port(), &b_pts, b_ptime), "ICE" => "remove", "replace" => vec!["origin"],
    });
    let answer = parse_reply_sdp(&answer);
    TcCall {
        a_dest: answer.audio_addr(),
        b_dest: offer.audio_addr(),
        a,
        b,
        offer,
        answer,
        call_id: call_id.into(),
    }
}

/// A `samples` × `packets` sine at 8 kHz, as PCM frames.
pub(crate) fn sine_frames(freq: f64, amp: f64, samples: usize, packets: usize) -> Vec<Vec<i16>> {
    (0..packets)
        .map(|k| {
            (k * samples..(k + 1) * samples)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16
                })
                .collect()
        })
        .collect()
}

/// Encode 8 kHz PCM frames with `codec` (Opus at an 8 kHz input) for `ptime` ms packets.
pub(crate) fn encode(codec: &Codec, ptime: u32, frames: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let opts = EncoderOptions {
        pcm_rate: (codec.name() == "opus").then_some(8000),
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(ptime, &opts).expect("test encoder");
    frames
        .iter()
        .map(|f| {
            let mut out = vec![0u8; enc.max_payload_len()];
            let n = enc.encode(f, &mut out).expect("encode");
            out.truncate(n);
            out
        })
        .collect()
}

/// Send `payloads` as RTP (PT `pt`, timestamps `step` apart) from `ep` to `dest`, 2 ms apart.
pub(crate) fn send(ep: &RtpEndpoint, dest: SocketAddr, pt: u8, step: u32, payloads: &[Vec<u8>]) {
    for (k, p) in payloads.iter().enumerate() {
        let pkt = rtp_packet(pt, 1000 + k as u16, 50_000 + k as u32 * step, ep.ssrc, p);
        ep.sock.send_to(&pkt, dest).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Received RTP: (pt, marker, seq, ts, ssrc, payload), in arrival order, from `src` only.
pub(crate) struct Rx {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

pub(crate) fn receive(ep: &RtpEndpoint, src: SocketAddr, limit: Duration) -> Vec<Rx> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some((pkt, from)) = ep.recv(left.min(Duration::from_millis(300))) else {
            break;
        };
        // RTCP (our reports) and other sources are not audio.
        if from != src || pkt.len() < 12 || (64..=95).contains(&(pkt[1] & 0x7f)) {
            continue;
        }
        out.push(Rx {
            pt: pkt[1] & 0x7f,
            marker: pkt[1] & 0x80 != 0,
            seq: u16::from_be_bytes([pkt[2], pkt[3]]),
            ts: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
            ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
            payload: pkt[12..].to_vec(),
        });
    }
    out
}

/// Decode received payloads of `codec` to 8 kHz PCM, in sequence order.
pub(crate) fn decode(codec: &Codec, rx: &mut [Rx]) -> Vec<i16> {
    let base = rx.first().map_or(0, |r| r.seq);
    rx.sort_by_key(|r| r.seq.wrapping_sub(base));
    let mut dec = codec.decoder_at(8000).expect("test decoder");
    let ch = dec.channels() as usize;
    let mut pcm = Vec::new();
    let mut buf = vec![0i16; 5760 * 2];
    for r in rx.iter() {
        let n = dec.decode(&r.payload, &mut buf).expect("decodable payload");
        pcm.extend(buf[..n].chunks(ch).map(|c| c[0]));
    }
    pcm
}

/// Amplitude of `freq` in `pcm` and the share of the signal's power it holds (1.0: pure).
pub(crate) fn tone(pcm: &[i16], freq: f64) -> (f64, f64) {
    let n = pcm.len() as f64;
    let (mut re, mut im, mut power) = (0.0, 0.0, 0.0);
    for (i, &s) in pcm.iter().enumerate() {
        let s = s as f64;
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0;
        re += s * w.cos();
        im += s * w.sin();
        power += s * s;
    }
    let amp = 2.0 * (re * re + im * im).sqrt() / n;
    let rms = (power / n).sqrt();
    (amp, (amp / std::f64::consts::SQRT_2 / rms).powi(2))
}

/// SNR in dB of the tone against everything else.
pub(crate) fn snr_db(purity: f64) -> f64 {
    10.0 * (purity / (1.0 - purity).max(1e-9)).log10()
}

/// Check sequence/timestamp continuity and one SSRC; returns the timestamp step.
pub(crate) fn check_line(rx: &[Rx], what: &str) -> u32 {
    assert!(rx.len() > 2, "{what}: too few packets");
    let steps: Vec<u32> = rx
        .windows(2)
        .map(|w| w[1].ts.wrapping_sub(w[0].ts))
        .collect();
    for w in rx.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{what}: sequence gap");
        assert_eq!(w[1].ssrc, w[0].ssrc, "{what}: SSRC changed");
    }
    assert!(
        steps.iter().all(|&s| s == steps[0]),
        "{what}: uneven timestamps {steps:?}"
    );
    steps[0]
}

/// Send a digit as RFC 4733 events from `ep` (PT `pt`, seq continuing at `seq`).
pub(crate) fn send_digit(ep: &RtpEndpoint, dest: SocketAddr, pt: u8, seq: u16, ts: u32, event: u8) {
    let mut seq = seq;
    for (duration, end) in [
        (160u16, false),
        (320, false),
        (480, false),
        (800, true),
        (800, true),
        (800, true),
    ] {
        let mut payload = [0u8; 4];
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .write(&mut payload)
        .expect("event");
        let mut pkt = rtp_packet(pt, seq, ts, ep.ssrc, &payload);
        if duration == 160 {
            pkt[1] |= 0x80;
        }
        ep.sock.send_to(&pkt, dest).expect("send event");
        seq = seq.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The daemon with the given IO backend (`io_uring` or `epoll`): transcoding runs in both.
pub(crate) fn start(backend: &str) -> Daemon {
    Daemon::start_with_env(&[], &[("NGMEDIA_IO_BACKEND", backend)])
}

pub(crate) fn lookup(name: &str, rate: u32, ch: Option<u8>, fmtp: Option<&str>) -> Codec {
    Codec::lookup(name, rate, ch, fmtp).expect("known codec")
}

pub(crate) fn value_str(v: &Value) -> String {
    format!("{v:?}")
}

/// The sample media files (samples/media).
pub(crate) fn media_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/media")
}

/// Normalised correlation at the best lag in 0..=max_lag (`got` delayed against `want`).
pub(crate) fn correlation(got: &[i16], want: &[i16], max_lag: usize) -> f64 {
    (0..=max_lag)
        .map(|lag| {
            let n = want.len().min(got.len().saturating_sub(lag));
            let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
            for i in 0..n {
                let (x, y) = (got[i + lag] as f64, want[i] as f64);
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
            xy / (xx.sqrt() * yy.sqrt()).max(1.0)
        })
        .fold(f64::MIN, f64::max)
}

/// DTMF row and column frequencies (ITU-T Q.23).
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Digits by (row, column).
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Power of `freq` in `pcm` (8 kHz) as a share of the block's power (Goertzel).
pub(crate) fn share(pcm: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let energy: f64 = pcm.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    // A pure sine of any amplitude gives 1.0.
    2.0 * power / (pcm.len() as f64 * energy.max(1.0))
}

/// The DTMF digit a 20 ms block holds: the strongest row and column each clearly above
/// the others of their group, and together most of the block's power.
pub(crate) fn digit_in(pcm: &[i16]) -> Option<char> {
    let best = |group: &[f64; 4]| {
        let mut s: Vec<(usize, f64)> = group.iter().map(|&f| share(pcm, f)).enumerate().collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        (s[0].1 > 4.0 * s[1].1).then_some(s[0])
    };
    let ((r, rs), (c, cs)) = (best(&ROWS)?, best(&COLS)?);
    (rs + cs > 0.5).then_some(KEYS[r][c])
}

/// A finished two-party recording: its metadata, the WAV's rate, each party's channel and
/// how long the audio was sent for.
pub(crate) struct Recorded {
    pub meta: serde_json::Value,
    pub rate: u32,
    pub left: Vec<i16>,
    pub right: Vec<i16>,
    pub wall_ms: usize,
}

/// Record `call` (call id `call_id`, from-tag `ta`) while A sends `a_payloads` and B
/// `b_payloads` in real time, one every 20 ms (PT `pt`, timestamps `step` apart); stop and
/// fetch the WAV (stereo: caller left, callee right) over HTTP.
pub(crate) fn record_both_ways(
    daemon: &Daemon,
    call: &TcCall,
    pt: u8,
    step: u32,
    a_payloads: &[Vec<u8>],
    b_payloads: &[Vec<u8>],
) -> Recorded {
    let ng = daemon.client();
    let id = call.call_id.as_str();
    ng.ok(dict! { "command" => "start recording", "call-id" => id, "from-tag" => "ta" });
    let started = std::time::Instant::now();
    for (k, (a, b)) in a_payloads.iter().zip(b_payloads).enumerate() {
        let due = started + Duration::from_millis(k as u64 * 20);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        let ts = k as u32 * step;
        let p = rtp_packet(pt, k as u16, 10_000 + ts, call.a.ssrc, a);
        call.a.sock.send_to(&p, call.a_dest).unwrap();
        let p = rtp_packet(pt, 500 + k as u16, 90_000 + ts, call.b.ssrc, b);
        call.b.sock.send_to(&p, call.b_dest).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    ng.ok(dict! { "command" => "stop recording", "call-id" => id, "from-tag" => "ta" });
    let wall_ms = started.elapsed().as_millis() as usize;
    let http = daemon.http_client();
    let meta = ngmedia_tests::wait_for(Duration::from_secs(5), || {
        let r = http.get(&format!("/recordings?call_id={id}"));
        let list = r.json()["recordings"].as_array()?.clone();
        list.into_iter().find(|m| m["state"] == "complete")
    })
    .expect("the recording is listed once finalized");
    let wav = http
        .get(&format!(
            "/recordings/{}/audio",
            meta["id"].as_str().unwrap()
        ))
        .body;
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo WAV");
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    Recorded {
        meta,
        rate,
        left: samples.iter().step_by(2).copied().collect(),
        right: samples.iter().skip(1).step_by(2).copied().collect(),
        wall_ms,
    }
}
