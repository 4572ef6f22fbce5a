//! `play media` / `stop media` and music on hold into live calls: the receiving endpoint
//! decodes the RTP, the audio matches the source file, and sequence numbers and timestamps
//! stay continuous across every switch between relayed and played media.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ngmedia_codecs::audio_file;
use ngmedia_codecs::g711::ulaw_decode;
use ngmedia_tests::bencode::Value;
use ngmedia_tests::call::{parse_reply_sdp, TwoPartyCall};
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::http::request;
use ngmedia_tests::rtp::RtpEndpoint;
use ngmedia_tests::sdp::audio_sdp;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/media")
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join(name)).unwrap()
}

fn start(tag: &str) -> (Daemon, PathBuf) {
    let dir = std::env::temp_dir().join(format!("ngmedia-moh-play-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let daemon = Daemon::start(&[
        &format!("--media-dir={}", dir.display()),
        &format!("--media-play-dirs={}", samples_dir().display()),
    ]);
    (daemon, dir)
}

fn upload(daemon: &Daemon, file: &str) -> String {
    let r = request(
        daemon.http,
        "POST",
        &format!("/media?name={file}"),
        &[],
        &sample(file),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn parse(p: &[u8]) -> Rtp {
    Rtp {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload: p[12..].to_vec(),
    }
}

/// B's packets for `count` packets or `limit`.
fn receive(call: &TwoPartyCall, count: usize, limit: Duration) -> Vec<Rtp> {
    call.b
        .recv_many(count, limit)
        .iter()
        .map(|(p, _)| parse(p))
        .collect()
}

/// Every packet continues the previous one: seq + 1, timestamp + 160, one SSRC.
fn assert_continuous(all: &[Rtp]) {
    for w in all.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc, "one SSRC line");
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "seq after {}", w[0].seq);
        assert_eq!(
            w[1].ts,
            w[0].ts.wrapping_add(160),
            "ts after seq {}",
            w[0].seq
        );
    }
}

/// Normalised correlation of `got` against `want` at the best lag in 0..=max_lag.
fn correlation(got: &[i16], want: &[i16], max_lag: usize) -> f64 {
    (0..=max_lag)
        .map(|lag| {
            let n = got.len().min(want.len().saturating_sub(lag));
            let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
            for i in 0..n {
                let (x, y) = (got[i] as f64, want[i + lag] as f64);
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
            xy / (xx.sqrt() * yy.sqrt()).max(1.0)
        })
        .fold(f64::MIN, f64::max)
}

fn play(
    daemon: &Daemon,
    call: &TwoPartyCall,
    source: (&str, Value),
    extra: &[(&str, Value)],
) -> Value {
    let mut pairs = vec![
        (b"command".to_vec(), Value::from("play media")),
        (b"call-id".to_vec(), Value::from(call.call_id.as_str())),
        (b"from-tag".to_vec(), Value::from(call.to_tag.as_str())),
        (source.0.as_bytes().to_vec(), source.1),
    ];
    for (k, v) in extra {
        pairs.push((k.as_bytes().to_vec(), v.clone()));
    }
    daemon.client().ok(Value::Dict(pairs))
}

#[test]
fn each_source_plays_decodable_audio_matching_the_file() {
    let (daemon, dir) = start("sources");
    let id = upload(&daemon, "speech-2s.wav");
    let want = audio_file::decode(&sample("speech-2s.wav"), 60).unwrap();
    let want = want.pcm_at(8000).unwrap().to_vec();
    let file = samples_dir()
        .join("speech-2s.wav")
        .to_string_lossy()
        .into_owned();
    let sources: Vec<(&str, Value)> = vec![
        ("db-id", Value::from(id.as_str())),
        ("blob", Value::Bytes(sample("speech-2s.wav"))),
        ("file", Value::from(file.as_str())),
    ];
    for (n, source) in sources.into_iter().enumerate() {
        let kind = source.0;
        let call = TwoPartyCall::setup(&daemon.client(), &format!("moh-src-{n}"));
        let reply = play(&daemon, &call, source, &[]);
        assert_eq!(reply.str_at("result"), Some("ok"));
        let duration = reply.get("duration").and_then(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        });
        assert_eq!(duration, Some(2000), "{kind}: duration in ms");
        let started = Instant::now();
        let got = receive(&call, 100, Duration::from_secs(4));
        assert_eq!(got.len(), 100, "{kind}: 2 s of 20 ms packets");
        // Paced in real time, not bursted.
        assert!(
            started.elapsed() >= Duration::from_millis(1800),
            "{kind}: {:?}",
            started.elapsed()
        );
        assert!(
            got[0].marker && got[1..].iter().all(|p| !p.marker),
            "{kind}: marker on the first only"
        );
        assert!(
            got.iter().all(|p| p.pt == 0 && p.payload.len() == 160),
            "{kind}: PCMU 20 ms"
        );
        assert_continuous(&got);
        let pcm: Vec<i16> = got
            .iter()
            .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b)))
            .collect();
        let c = correlation(&pcm, &want, 0);
        assert!(c > 0.98, "{kind}: correlation {c}");
        // End of file: nothing more.
        assert!(
            call.b.recv(Duration::from_millis(200)).is_none(),
            "{kind}: stops at the end"
        );
    }
    // Errors in rtpengine's words.
    let call = TwoPartyCall::setup(&daemon.client(), "moh-src-err");
    let r = daemon.client().request(dict! {
        "command" => "play media", "call-id" => call.call_id.as_str(), "from-tag" => call.to_tag.as_str(),
    }).unwrap();
    assert_eq!(r.str_at("error-reason"), Some("No media file specified"));
    let r = daemon.client().request(dict! {
        "command" => "play media", "call-id" => call.call_id.as_str(), "from-tag" => call.to_tag.as_str(),
        "file" => "/etc/passwd",
    }).unwrap();
    assert_eq!(
        r.str_at("error-reason"),
        Some("Failed to start media playback from file")
    );
    let r = daemon.client().request(dict! {
        "command" => "play media", "call-id" => call.call_id.as_str(), "from-tag" => call.to_tag.as_str(),
        "db-id" => "0123456789abcdef",
    }).unwrap();
    assert_eq!(
        r.str_at("error-reason"),
        Some("Failed to start media playback from database")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seq_and_timestamps_continue_across_play_and_stop() {
    let (daemon, dir) = start("continuity");
    let id = upload(&daemon, "speech-2s.wav");
    let mut call = TwoPartyCall::setup(&daemon.client(), "moh-cont");
    let mut log: Vec<Rtp> = Vec::new();
    let relay = |call: &mut TwoPartyCall, n: usize, log: &mut Vec<Rtp>| {
        for _ in 0..n {
            call.a.send_next(call.a_dest);
            let (p, _) = call.b.recv(Duration::from_secs(1)).expect("relayed packet");
            log.push(parse(&p));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    relay(&mut call, 5, &mut log);
    let relayed_ssrc = log[0].ssrc;
    // 1) Play the last 300 ms; it ends by itself, then the relay takes over again.
    play(
        &daemon,
        &call,
        ("db-id", Value::from(id.as_str())),
        &[("start-pos", Value::Int(1700))],
    );
    let played = receive(&call, 15, Duration::from_secs(2));
    assert_eq!(played.len(), 15);
    assert!(played[0].marker);
    log.extend(played);
    relay(&mut call, 5, &mut log);
    // 2) Play for good, with A still sending (replaced, not mixed); stop media ends it.
    play(
        &daemon,
        &call,
        ("db-id", Value::from(id.as_str())),
        &[("repeat-times", Value::Int(5))],
    );
    let mut during = Vec::new();
    for _ in 0..10 {
        call.a.send_next(call.a_dest);
        during.extend(receive(&call, 2, Duration::from_millis(60)));
    }
    assert!(during.len() >= 8, "{} played packets", during.len());
    // A's payloads are a counting pattern; none may reach B while the file plays.
    for p in &during {
        let counting = p.payload.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
        assert!(!counting, "relayed packet leaked into the playback");
    }
    log.extend(during);
    let players = |daemon: &Daemon| {
        let text = daemon.http_client().metrics();
        text.lines()
            .find_map(|l| l.strip_prefix("ngmedia_players_active ").map(str::to_owned))
    };
    assert_eq!(
        players(&daemon).as_deref(),
        Some("1"),
        "one player while the file plays"
    );
    let stop = daemon.client().ok(dict! {
        "command" => "stop media", "call-id" => call.call_id.as_str(), "from-tag" => call.to_tag.as_str(),
    });
    assert!(stop.get("last-frame-pos").is_some(), "{stop:?}");
    // Packets already on their way before the stop.
    log.extend(receive(&call, 10, Duration::from_millis(100)));
    relay(&mut call, 5, &mut log);
    assert_eq!(
        players(&daemon).as_deref(),
        Some("0"),
        "no player after stop media"
    );
    assert_continuous(&log);
    assert!(log.iter().all(|p| p.ssrc == relayed_ssrc));
    // The marker bit flags each switch.
    assert_eq!(
        log.iter().filter(|p| p.marker).count(),
        4,
        "two plays, two resumes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A re-offer from A carrying the `moh` dictionary; `sendonly` holds B.
fn reoffer(
    ng: &ngmedia_tests::NgClient,
    call: &TwoPartyCall,
    id: &str,
    direction: &str,
    version: u32,
) -> Value {
    let sdp = audio_sdp(call.a.addr().ip(), call.a.port(), version, direction);
    ng.ok(Value::Dict(vec![
        (b"command".to_vec(), Value::from("offer")),
        (b"call-id".to_vec(), Value::from(call.call_id.as_str())),
        (b"from-tag".to_vec(), Value::from(call.from_tag.as_str())),
        (b"to-tag".to_vec(), Value::from(call.to_tag.as_str())),
        (b"sdp".to_vec(), Value::from(sdp)),
        (
            b"moh".to_vec(),
            Value::Dict(vec![(b"db-id".to_vec(), Value::from(id))]),
        ),
    ]))
}

#[test]
fn hold_plays_music_and_resume_stops_it() {
    let (daemon, dir) = start("hold");
    let id = upload(&daemon, "hold-tune.wav");
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "moh-hold");
    call.exchange(3, Duration::from_millis(5));
    call.b.drain();
    reoffer(&ng, &call, &id, "sendonly", 2);
    let music = receive(&call, 80, Duration::from_secs(3));
    assert_eq!(music.len(), 80, "1.6 s of music (the 1.2 s tune repeats)");
    assert_continuous(&music);
    let tune: Vec<i16> = audio_file::decode(&sample("hold-tune.wav"), 60)
        .unwrap()
        .pcm_at(8000)
        .unwrap()
        .to_vec();
    let pcm: Vec<i16> = music[..60]
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b)))
        .collect();
    assert!(correlation(&pcm, &tune, 0) > 0.98);
    // Second pass starts over.
    let second: Vec<i16> = music[60..80]
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b)))
        .collect();
    assert!(correlation(&second, &tune, 0) > 0.98);
    // Resume: the music stops, A's media flows again on the same line.
    reoffer(&ng, &call, &id, "sendrecv", 3);
    let tail = receive(&call, 10, Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(50));
    call.b.drain();
    let last = tail.last().unwrap_or(&music[79]);
    let (last_seq, last_ssrc) = (last.seq, last.ssrc);
    let sent = call.a.send_next(call.a_dest);
    let (p, _) = call
        .b
        .recv(Duration::from_secs(1))
        .expect("relay after resume");
    let p = parse(&p);
    assert_eq!(p.payload, sent[12..], "A's audio again");
    assert_eq!(p.ssrc, last_ssrc);
    assert!(p.marker);
    assert!(
        p.seq.wrapping_sub(last_seq) <= 3,
        "seq continues: {} after {}",
        p.seq,
        last_seq
    );
    assert!(
        call.b.recv(Duration::from_millis(100)).is_none(),
        "no more music"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// rtpengine's player reports itself: right after its first packet the party gets an RTCP
/// SR on its RTCP port (here named by `a=rtcp`) from the player's SSRC, with that packet's
/// RTP time, one packet of 172 octets, a report block on the party's own RTP and a 12-digit
/// hex CNAME.
#[test]
fn player_sends_a_sender_report_with_its_first_packet() {
    let (daemon, dir) = start("rtcp");
    let id = upload(&daemon, "speech-2s.wav");
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x1111_0000);
    let mut b = RtpEndpoint::new(0x2222_0000);
    let b_rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    b_rtcp
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let (call_id, from_tag, to_tag) = ("moh-rtcp", "moh-rtcp-a", "moh-rtcp-b");
    let offer = ng.offer(
        call_id,
        from_tag,
        &audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"),
    );
    let b_dest = parse_reply_sdp(&offer).audio_addr();
    let b_sdp = format!(
        "{}a=rtcp:{}\r\n",
        audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"),
        b_rtcp.local_addr().unwrap().port()
    );
    ng.answer(call_id, from_tag, to_tag, &b_sdp);
    // B talks first: the report block is about its RTP.
    for _ in 0..3 {
        b.send_next(b_dest);
    }
    let mut pairs = vec![
        (b"command".to_vec(), Value::from("play media")),
        (b"call-id".to_vec(), Value::from(call_id)),
        (b"from-tag".to_vec(), Value::from(to_tag)),
        (b"db-id".to_vec(), Value::from(id.as_str())),
    ];
    pairs.push((b"repeat-times".to_vec(), Value::Int(1)));
    daemon.client().ok(Value::Dict(pairs));
    let (first, _) = b.recv(Duration::from_secs(2)).expect("first played packet");
    let first = parse(&first);
    let mut buf = [0u8; 1500];
    let n = b_rtcp.recv(&mut buf).expect("an SR after the first packet");
    let sr = &buf[..n];
    let word = |i: usize| u32::from_be_bytes([sr[i], sr[i + 1], sr[i + 2], sr[i + 3]]);
    assert_eq!((sr[0], sr[1], sr[3]), (0x81, 200, 12), "SR with one block");
    assert_eq!(word(4), first.ssrc, "from the player's SSRC");
    assert_eq!((word(16), word(20), word(24)), (first.ts, 1, 172));
    assert_eq!(word(28), b.ssrc, "a block about B's RTP");
    assert_eq!(
        word(36),
        u32::from(b.ssrc as u16) + 2,
        "B's highest sequence number"
    );
    assert_eq!((sr[52], sr[53], sr[55]), (0x81, 202, 5), "SDES");
    assert_eq!(sr[61], 12);
    assert!(sr[62..74]
        .iter()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let _ = std::fs::remove_dir_all(&dir);
}
