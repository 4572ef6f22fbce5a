//! The recorder thread's logic driven directly with fake time: packets with chosen arrival
//! times and timestamps in, WAV and metadata files out.

use super::*;
use ngmedia_codecs::g711::ulaw_encode;
use ngmedia_engine::core::tap::{TapCodec, TapLeg, TapPacket};
use std::sync::atomic::Ordering::Relaxed;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "ngmedia-rec-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn worker(dir: &Dir, format: RecordingFormat, per_party: bool) -> Worker {
    let config = RecorderConfig {
        dir: dir.0.clone(),
        format,
        per_party,
        queue: 16,
    };
    Worker {
        store: RecordingStore::new(&config.dir),
        config,
        stats: Arc::default(),
        calls: HashMap::new(),
        scratch: vec![0; MAX_DECODED],
        mono: Vec::new(),
        out: Vec::new(),
        stopping: false,
        live: Live::default(),
        on_finished: Hook::default(),
    }
}

fn pcmu() -> Vec<TapCodec> {
    vec![TapCodec {
        pt: 0,
        name: "PCMU".into(),
        clock_rate: 8000,
        channels: None,
        fmtp: None,
    }]
}

fn info() -> TapCall {
    TapCall {
        call_id: "call-1@example".into(),
        legs: vec![
            TapLeg {
                tag: "a".into(),
                label: Some("caller".into()),
                medias: vec![pcmu()],
            },
            TapLeg {
                tag: "b".into(),
                label: None,
                medias: vec![pcmu()],
            },
        ],
        metadata: vec!["k=v".into()],
        output_destination: None,
    }
}

const T0: u64 = 1_700_000_000_000;
const CALL: CallKey = CallKey(3);

/// A 20 ms PCMU packet of a `freq` Hz sine (phase continuous by timestamp).
fn packet(leg: u16, ssrc: u32, seq: u16, ts: u32, freq: f64, arrival_ms: u64) -> Box<TapPacket> {
    let mut b = vec![0x80, 0];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..160u32 {
        let t = f64::from(ts.wrapping_add(i)) / 8000.0;
        b.push(ulaw_encode(
            (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16,
        ));
    }
    let mut p = TapPacket::new_boxed();
    p.call = CALL;
    p.stream = TapStream { leg, media: 0 };
    p.src = "127.0.0.1:4000".parse().unwrap();
    p.local = "127.0.0.1:30000".parse().unwrap();
    p.arrival_ms = arrival_ms;
    assert!(p.fill(&b));
    p
}

fn start(w: &mut Worker, at_ms: u64) {
    w.event(RecordingEvent::Start {
        call: CALL,
        info: info(),
        at_us: at_ms * 1000,
    });
}

fn stop_and_close(w: &mut Worker, at_ms: u64) -> String {
    w.event(RecordingEvent::Stop {
        call: CALL,
        at_us: at_ms * 1000,
    });
    let mut rec = w.calls.remove(&CALL).expect("recording");
    let id = rec.id.clone();
    w.finalize(&mut rec, at_ms);
    id
}

/// Goertzel power of `freq` in `x`, normalized by length.
fn power(x: &[i16], rate: f64, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (x.len() as f64).powi(2)
}

fn read_wav(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("valid WAV");
    let spec = r.spec();
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    if spec.channels == 1 {
        return (spec, s, Vec::new());
    }
    let l = s.iter().step_by(2).copied().collect();
    let rr = s.iter().skip(1).step_by(2).copied().collect();
    (spec, l, rr)
}

fn window(x: &[i16], from_ms: usize, to_ms: usize) -> &[i16] {
    &x[from_ms * 8..to_ms * 8]
}

fn silent(x: &[i16]) -> bool {
    x.iter().all(|&s| s == 0)
}

#[test]
fn late_start_loss_and_pause_keep_the_timeline() {
    let dir = Dir::new("timeline");
    let mut w = worker(&dir, RecordingFormat::Both, true);
    start(&mut w, T0);
    let live = |w: &Worker| w.live.lock().unwrap().clone();
    assert_eq!(live(&w)[0]["state"], "recording");
    assert_eq!(live(&w)[0]["call_id"], "call-1@example");
    assert_eq!(w.stats.active.load(Relaxed), 1);
    // A: 440 Hz from 0 to 3000 ms, packets 50..=54 (1000–1100 ms) lost.
    // B: 1 kHz joins at 500 ms. Pause from 1500 to 2000 ms. Arrival jitter of up to 7 ms.
    let mut pause_sent = false;
    let mut resume_sent = false;
    for n in 0..150u32 {
        let at = T0 + u64::from(n) * 20 + u64::from(n % 3) * 3;
        if !pause_sent && at >= T0 + 1500 {
            w.event(RecordingEvent::Pause {
                call: CALL,
                at_us: (T0 + 1500) * 1000,
            });
            pause_sent = true;
            assert_eq!(live(&w)[0]["state"], "paused");
        }
        if !resume_sent && at >= T0 + 2000 {
            start(&mut w, T0 + 2000);
            resume_sent = true;
        }
        if !(50..55).contains(&n) {
            w.packet(packet(0, 0xa, 100 + n as u16, 7000 + n * 160, 440.0, at));
        }
        if n >= 25 {
            let m = n - 25;
            w.packet(packet(1, 0xb, m as u16, 90_000 + m * 160, 1000.0, at + 2));
        }
        w.tick(at, Instant::now());
    }
    let id = stop_and_close(&mut w, T0 + 3000);

    let (spec, left, right) = read_wav(&dir.0.join(format!("{id}.wav")));
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    // Every byte written is counted, except the three WAV headers and the pcap header.
    let on_disk: u64 = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(w.stats.bytes.load(Relaxed), on_disk - 3 * 44 - 24);
    // The wall-clock duration, plus at most the last packet B sent just before the stop.
    assert!(
        (24_000..=24_000 + 160).contains(&left.len()),
        "{}",
        left.len()
    );
    // Left: the tone, a 100 ms hole exactly where packets were lost, silence while paused.
    assert!(power(window(&left, 100, 900), 8000.0, 440.0) > 1e5);
    assert!(power(window(&left, 100, 900), 8000.0, 1000.0) < 1e3);
    assert!(
        silent(window(&left, 1000, 1100)),
        "lost packets are silence"
    );
    assert!(!silent(window(&left, 980, 1000)) && !silent(window(&left, 1100, 1120)));
    assert!(
        silent(window(&left, 1505, 2000)),
        "paused interval is silence"
    );
    assert!(power(window(&left, 2100, 2900), 8000.0, 440.0) > 1e5);
    // Right: silent before it joined, then 1 kHz from its arrival offset.
    assert!(silent(window(&right, 0, 500)));
    assert!(!silent(window(&right, 502, 520)));
    assert!(power(window(&right, 600, 1400), 8000.0, 1000.0) > 1e5);
    assert!(power(window(&right, 600, 1400), 8000.0, 440.0) < 1e3);
    assert!(silent(window(&right, 1505, 2000)));

    // Per-party files carry the same channel.
    let (_, caller, _) = read_wav(&dir.0.join(format!("{id}-caller.wav")));
    assert_eq!(caller, left);

    let meta: Value =
        serde_json::from_slice(&fs::read(dir.0.join(format!("{id}.json"))).unwrap()).unwrap();
    assert_eq!(meta["call_id"], "call-1@example");
    assert_eq!(meta["state"], "complete");
    assert_eq!(meta["duration_ms"], 3000);
    assert_eq!(meta["metadata"][0], "k=v");
    assert_eq!(meta["legs"][0]["label"], "caller");
    assert_eq!(meta["pauses"][0]["start_ms"], T0 + 1500);
    assert_eq!(meta["pauses"][0]["stop_ms"], T0 + 2000);
    assert_eq!(meta["recorded"].as_array().unwrap().len(), 2);
    let a = &meta["streams"][0];
    assert_eq!(a["codecs"][0], "PCMU/8000");
    assert_eq!(a["ssrcs"][0]["ssrc"], 0xa);
    assert_eq!(a["lost"], 5);
    assert_eq!(meta["files"]["mix"], format!("{id}.wav"));
    assert_eq!(meta["files"]["pcap"], format!("{id}.pcap"));
    // Nothing temporary is left behind.
    let names: Vec<String> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    // The pcap holds every packet received outside the pause (not the lost ones).
    let pcap = fs::read(dir.0.join(format!("{id}.pcap"))).unwrap();
    let records = (pcap.len() - 24) / (16 + 20 + 8 + 12 + 160);
    assert_eq!(records, 145 + 125 - 2 * 25);
    assert_eq!(
        RecordingStore::new(&dir.0)
            .list(&Default::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn ssrc_change_continues_at_its_arrival_time() {
    let dir = Dir::new("ssrc");
    let mut w = worker(&dir, RecordingFormat::Wav, false);
    start(&mut w, T0);
    for n in 0..25u32 {
        w.packet(packet(
            0,
            1,
            n as u16,
            n * 160,
            440.0,
            T0 + u64::from(n) * 20,
        ));
    }
    // Re-INVITE: new SSRC, unrelated timestamps, 200 ms later.
    for n in 0..25u32 {
        let at = T0 + 700 + u64::from(n) * 20;
        w.packet(packet(
            0,
            2,
            5000 + n as u16,
            3_000_000 + n * 160,
            440.0,
            at,
        ));
    }
    let id = stop_and_close(&mut w, T0 + 1200);
    let (_, left, right) = read_wav(&dir.0.join(format!("{id}.wav")));
    assert_eq!(left.len(), 1200 * 8);
    assert!(!silent(window(&left, 0, 500)));
    assert!(
        silent(window(&left, 500, 700)),
        "the gap between the SSRCs stays"
    );
    assert!(!silent(window(&left, 700, 720)));
    assert!(power(window(&left, 720, 1180), 8000.0, 440.0) > 1e5);
    assert!(silent(&right));
    let meta = RecordingStore::new(&dir.0).get(&id).unwrap().unwrap();
    assert_eq!(meta["streams"][0]["ssrcs"].as_array().unwrap().len(), 2);
    assert_eq!(meta["streams"][0]["resyncs"], 1);
}

#[test]
fn wav_header_is_valid_even_without_media() {
    let dir = Dir::new("empty");
    let mut w = worker(&dir, RecordingFormat::Wav, false);
    start(&mut w, T0);
    let id = stop_and_close(&mut w, T0 + 500);
    let bytes = fs::read(dir.0.join(format!("{id}.wav"))).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
        bytes.len() - 8
    );
    assert_eq!(&bytes[8..12], b"WAVE");
    let (spec, left, _) = read_wav(&dir.0.join(format!("{id}.wav")));
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    assert_eq!(left.len(), 500 * 8);
    assert!(silent(&left));
}

#[test]
fn unusable_folder_fails_only_that_recording() {
    let dir = Dir::new("fail");
    let blocker = dir.0.join("file");
    fs::write(&blocker, b"x").unwrap();
    let config = RecorderConfig {
        dir: blocker.join("sub"),
        format: RecordingFormat::Wav,
        per_party: false,
        queue: 4,
    };
    let mut w = worker(&dir, RecordingFormat::Wav, false);
    w.store = RecordingStore::new(&config.dir);
    w.config = config;
    start(&mut w, T0);
    for n in 0..30u32 {
        w.packet(packet(
            0,
            1,
            n as u16,
            n * 160,
            440.0,
            T0 + u64::from(n) * 20,
        ));
        w.tick(T0 + u64::from(n) * 20 + 400, Instant::now());
    }
    assert!(w.calls[&CALL].failed.is_some());
    assert_eq!(w.stats.failed.load(Relaxed), 1);
    stop_and_close(&mut w, T0 + 600);
    assert_eq!(w.stats.finished.load(Relaxed), 0);
}

#[test]
fn threaded_recorder_writes_everything_queued_at_shutdown() {
    let dir = Dir::new("thread");
    let (rec, tap) = Recorder::start(RecorderConfig {
        dir: dir.0.clone(),
        format: RecordingFormat::Wav,
        per_party: false,
        queue: 256,
    })
    .unwrap();
    let now = unix_ms() - 2000;
    rec.event(RecordingEvent::Start {
        call: CALL,
        info: info(),
        at_us: now * 1000,
    });
    let mut st =
        ngmedia_engine::core::tap::StreamTap::new(CALL, TapStream { leg: 1, media: 0 }, &tap);
    for n in 0..50u32 {
        let p = packet(1, 9, n as u16, n * 160, 1000.0, now + u64::from(n) * 20);
        assert!(st.copy(p.bytes(), p.src, p.local, now + u64::from(n) * 20) || n >= 40);
    }
    rec.shutdown();
    let list = rec.store().list(&Default::default()).unwrap();
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().unwrap();
    let (_, _, right) = read_wav(&dir.0.join(format!("{id}.wav")));
    // Every queued packet made it into the file (up to 1 s of audio).
    assert!(right.len() >= 8000 - 160, "{}", right.len());
    assert!(power(&right[..7000], 8000.0, 1000.0) > 1e5);
}

#[test]
fn output_rate_follows_the_codec_each_party_uses() {
    let codec = |pt: u8, name: &str, rate: u32, channels: Option<u8>| TapCodec {
        pt,
        name: name.into(),
        clock_rate: rate,
        channels,
        fmtp: None,
    };
    let te8 = codec(101, "telephone-event", 8000, None);
    let te48 = codec(97, "telephone-event", 48000, None);
    let opus = codec(96, "opus", 48000, Some(2));
    let mut call = info();
    // Narrowband both sides.
    let rec = CallRec::new("x".into(), call.clone(), T0, Arc::default());
    assert_eq!(rec.choose_rate(), 8000);
    // Transcoded PCMU ↔ Opus: the lists share only telephone-event, which does not count.
    call.legs[0].medias = vec![vec![pcmu()[0].clone(), te8.clone()]];
    call.legs[1].medias = vec![vec![opus.clone(), te48]];
    let rec = CallRec::new("x".into(), call.clone(), T0, Arc::default());
    assert_eq!(rec.choose_rate(), 48000);
    // An offer listing Opus second, answered with PCMU: narrowband.
    call.legs[0].medias = vec![vec![pcmu()[0].clone(), opus, te8]];
    call.legs[1].medias = vec![pcmu()];
    let rec = CallRec::new("x".into(), call, T0, Arc::default());
    assert_eq!(rec.choose_rate(), 8000);
}

#[test]
fn the_finished_hook_gets_the_metadata_of_each_finalized_recording() {
    let dir = Dir::new("hook");
    let mut w = worker(&dir, RecordingFormat::Wav, false);
    let (tx, rx) = std::sync::mpsc::channel();
    *w.on_finished.lock().unwrap() = Some(Box::new(move |meta: &Value| {
        tx.send(meta.clone()).unwrap();
    }));
    start(&mut w, T0);
    for n in 0..10u32 {
        let at = T0 + u64::from(n) * 20;
        w.packet(packet(0, 0xa, n as u16, n * 160, 440.0, at));
        w.tick(at, Instant::now());
    }
    let id = stop_and_close(&mut w, T0 + 200);
    let meta = rx.try_recv().expect("the hook ran");
    assert_eq!(meta["id"], id);
    assert_eq!(meta["call_id"], "call-1@example");
    assert_eq!(meta["state"], "complete");
    assert_eq!(meta["duration_ms"], 200);
    assert_eq!(meta["files"]["mix"], format!("{id}.wav"));
    assert!(rx.try_recv().is_err(), "one call per recording");
}
