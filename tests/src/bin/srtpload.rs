//! srtpload: load generator for SDES-SRTP ↔ RTP relay (and plain relay to compare), and for
//! transcoding between any two codecs the engine takes, driven over ng like Kamailio would.
//!
//! ```text
//! srtpload --ng HOST:PORT [--calls N] [--seconds S] [--pid PID] [--local-ports LO-HI]
//!          [--mode plain|sdes|transcode] [--caller CODEC] [--callee CODEC] [--ptime MS]
//!          [--drain S]
//! ```
//!
//! Phases, as the shared loadbench.py: (1) N sequential offer/answer pairs; in `sdes` mode the
//! caller is plain RTP/AVP and the offer carries `transport-protocol: RTP/SAVP`, and the callee
//! answers RTP/SAVP with its own key on the engine's AES_CM_128_HMAC_SHA1_80 tag. (2) Every
//! call sends RTP both ways every ptime for S seconds from non-blocking sockets (one per call
//! side, sends spread evenly over the ptime); the callee protects with its key and decrypts
//! what it receives with the engine's key, counting authentication failures. (3) All calls are
//! deleted. The engine's CPU (utime+stime of `/proc/PID/stat`) is sampled around the media
//! phase and divided by the packets it relayed. The last line of output is one JSON summary.
//!
//! `--mode transcode`: the caller offers `--caller` only (PCMU, PCMA, G722, AMR, AMR-WB or
//! opus) with `codec: {transcode: [CALLEE]}`, and the callee answers `--callee` only with the
//! payload type and fmtp the engine offered it. Each side sends the speech fixture encoded
//! beforehand by its codec (ngmedia-codecs, with the fmtp of the SDP), 20 ms per packet, so the
//! engine decodes and encodes real speech both ways. A received packet counts when it carries
//! the receiver's payload type (the engine's SSRC is its own).
//!
//! A measurement tool: one thread, one epoll loop, everything bounded in time.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ngmedia_codecs::{resample::resample_clip, Codec, EncoderOptions};
use ngmedia_engine::core::sdes::{CryptoAttr, WriteOptions};
use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_tests::{dict, NgClient, Sdp, Value};

const USAGE: &str = "usage: srtpload --ng HOST:PORT [--calls N] [--seconds S] [--pid PID] \
                     [--local-ports LO-HI] [--mode plain|sdes|transcode] [--caller CODEC] \
                     [--callee CODEC] [--ptime MS] [--drain S]";
#[path = "../../../codecs/examples/support/wav.rs"]
mod wav;

/// Safety limits: the tool must stay a short, bounded load.
const MAX_CALLS: usize = 5000;
const MAX_SECONDS: f64 = 600.0;
/// G.711 payload of one 20 ms frame (the payload size does not change with --ptime; only
/// the pacing does).
const PAYLOAD: usize = 160;
const RTP_LEN: usize = 12 + PAYLOAD;
/// Longest payload a side sends or the tool accepts back (an RTP packet in one datagram).
const MAX_PAYLOAD: usize = 1200;
/// A send more than this late counts as a late send (the generator is not keeping up).
const LATE: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Sdes,
    Transcode,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Sdes => "sdes",
            Mode::Transcode => "transcode",
        }
    }
}

struct Args {
    ng: SocketAddr,
    calls: usize,
    seconds: f64,
    pid: Option<u32>,
    local_ports: Option<(u16, u16)>,
    mode: Mode,
    caller: String,
    callee: String,
    ptime: Duration,
    drain: Duration,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        ng: ([127, 0, 0, 1], 22222).into(),
        calls: 50,
        seconds: 10.0,
        pid: None,
        local_ports: None,
        mode: Mode::Sdes,
        caller: "PCMU".into(),
        callee: "PCMA".into(),
        ptime: Duration::from_millis(20),
        drain: Duration::from_secs(1),
    };
    let mut ng_given = false;
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag}: {what} `{value}`");
        match flag.as_str() {
            "--ng" => {
                args.ng = value.parse().map_err(|_| bad("not HOST:PORT"))?;
                ng_given = true;
            }
            "--calls" => {
                args.calls = value.parse().map_err(|_| bad("not a count"))?;
                if args.calls == 0 || args.calls > MAX_CALLS {
                    return Err(bad(&format!("must be 1..={MAX_CALLS}")));
                }
            }
            "--seconds" => {
                args.seconds = value.parse().map_err(|_| bad("not a number"))?;
                if !(args.seconds > 0.0 && args.seconds <= MAX_SECONDS) {
                    return Err(bad(&format!("must be in (0, {MAX_SECONDS}]")));
                }
            }
            "--pid" => args.pid = Some(value.parse().map_err(|_| bad("not a pid"))?),
            "--local-ports" => {
                let (lo, hi) = value.split_once('-').ok_or_else(|| bad("not LO-HI"))?;
                let lo: u16 = lo.parse().map_err(|_| bad("bad low port in"))?;
                let hi: u16 = hi.parse().map_err(|_| bad("bad high port in"))?;
                if lo == 0 || lo > hi {
                    return Err(bad("empty range"));
                }
                args.local_ports = Some((lo, hi));
            }
            "--mode" => {
                args.mode = match value.as_str() {
                    "plain" => Mode::Plain,
                    "sdes" => Mode::Sdes,
                    "transcode" => Mode::Transcode,
                    _ => return Err(bad("must be plain, sdes or transcode, not")),
                }
            }
            "--caller" | "--callee" => {
                codec_line(&value).ok_or_else(|| bad("unknown codec"))?;
                if flag == "--caller" {
                    args.caller = value;
                } else {
                    args.callee = value;
                }
            }
            "--ptime" => {
                let ms: u64 = value.parse().map_err(|_| bad("not milliseconds"))?;
                if !(1..=1000).contains(&ms) {
                    return Err(bad("must be 1..=1000 ms"));
                }
                args.ptime = Duration::from_millis(ms);
            }
            "--drain" => {
                let s: f64 = value.parse().map_err(|_| bad("not seconds"))?;
                if !(0.0..=10.0).contains(&s) {
                    return Err(bad("must be 0..=10 s"));
                }
                args.drain = Duration::from_secs_f64(s);
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if !ng_given {
        return Err(format!("--ng is required\n{USAGE}"));
    }
    Ok(args)
}

/// `--caller`/`--callee` codecs: (payload type the caller offers, rtpmap, PCM rate the
/// speech is encoded at).
fn codec_line(name: &str) -> Option<(u8, &'static str, u32)> {
    Some(match name {
        "PCMU" => (0, "PCMU/8000", 8000),
        "PCMA" => (8, "PCMA/8000", 8000),
        "G722" => (9, "G722/8000", 16000),
        "AMR" => (96, "AMR/8000", 8000),
        "AMR-WB" => (96, "AMR-WB/16000", 16000),
        "opus" => (96, "opus/48000/2", 48000),
        _ => return None,
    })
}

/// What one side sends: the RTP clock step per packet and the payloads (cycled).
struct Payloads {
    ts_step: u32,
    frames: Vec<Vec<u8>>,
}

impl Payloads {
    /// Plain and SDES modes: PCMU, one 160-byte payload (the content is never looked at).
    fn relay() -> Payloads {
        Payloads {
            ts_step: PAYLOAD as u32,
            frames: vec![vec![0xff; PAYLOAD]],
        }
    }

    /// The speech fixture encoded by `name` with `fmtp` (the SDP's), 20 ms per payload.
    fn speech(name: &str, fmtp: Option<&str>) -> Result<Payloads, String> {
        let (_, rtpmap, rate) = codec_line(name).ok_or_else(|| format!("codec {name}"))?;
        let mut parts = rtpmap
            .split('/')
            .skip(1)
            .map(|v| v.parse::<u32>().unwrap_or(1));
        let clock = parts.next().unwrap_or(8000);
        let channels = parts.next().map(|c| c as u8);
        let codec = Codec::lookup(name, clock, channels, fmtp).map_err(|e| e.to_string())?;
        let opts = EncoderOptions {
            pcm_rate: Some(rate),
            ..EncoderOptions::default()
        };
        let mut enc = codec.encoder_with(20, &opts).map_err(|e| e.to_string())?;
        let wav = |f: &str| wav::read(&format!("{}/../samples/{f}", env!("CARGO_MANIFEST_DIR")));
        let pcm = if rate == 8000 {
            wav("speech-8k.wav")
        } else {
            let speech48: Vec<f32> = wav("speech-48k.wav")
                .iter()
                .map(|&v| v as f32 / 32768.0)
                .collect();
            resample_clip(&speech48, 48000, rate).map_err(|e| e.to_string())?
        };
        let mut buf = vec![0u8; enc.max_payload_len()];
        let frames = pcm
            .chunks_exact(enc.frame_samples())
            .map(|f| enc.encode(f, &mut buf).map(|n| buf[..n].to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        if frames.is_empty() || frames.iter().any(|f| f.len() > MAX_PAYLOAD) {
            return Err(format!("{name}: no usable payloads"));
        }
        Ok(Payloads {
            ts_step: enc.timestamp_step(),
            frames,
        })
    }
}

/// Hands out local UDP sockets on 127.0.0.1, from `--local-ports` when given.
struct Ports {
    next: u16,
    hi: u16,
    ranged: bool,
}

impl Ports {
    fn bind(&mut self) -> Result<UdpSocket, String> {
        let sock = if !self.ranged {
            UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?
        } else {
            loop {
                if self.next == 0 || self.next > self.hi {
                    return Err("--local-ports range exhausted".into());
                }
                let port = self.next;
                self.next = self.next.wrapping_add(1);
                if let Ok(s) = UdpSocket::bind(("127.0.0.1", port)) {
                    break s;
                }
            }
        };
        sock.set_nonblocking(true)
            .map_err(|e| format!("non-blocking: {e}"))?;
        Ok(sock)
    }
}

/// One party of a call: its socket, where the engine wants its media, its RTP state.
struct Side {
    sock: UdpSocket,
    dest: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// The payload type this side sends and expects back.
    pt: u8,
    ts_step: u32,
    /// Next payload of this side's `Payloads` to send.
    frame: usize,
    sent: u64,
    received: u64,
}

impl Side {
    fn new(sock: UdpSocket, ssrc: u32) -> Side {
        Side {
            sock,
            dest: ([127, 0, 0, 1], 0).into(),
            ssrc,
            seq: ssrc as u16,
            ts: ssrc.rotate_left(9),
            pt: 0,
            ts_step: PAYLOAD as u32,
            frame: ssrc as usize,
            sent: 0,
            received: 0,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Write the next RTP packet, carrying the next of `payloads`, into `buf`; its length.
    fn next_packet(&mut self, buf: &mut [u8], payloads: &Payloads) -> usize {
        let payload = &payloads.frames[self.frame % payloads.frames.len()];
        self.frame = self.frame.wrapping_add(1);
        buf[0] = 0x80;
        buf[1] = self.pt;
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[12..12 + payload.len()].copy_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.ts_step);
        12 + payload.len()
    }
}

/// One call: `a` the plain caller, `b` the callee (SRTP in sdes mode).
struct Call {
    id: String,
    a: Side,
    b: Side,
    /// sdes mode: the callee's context for what it sends, and the engine's key for what it
    /// receives.
    b_tx: Option<SrtpContext>,
    b_rx: Option<SrtpContext>,
    next_send: Instant,
}

/// The SDP of one side: one codec (`pt`, `rtpmap`, optional fmtp), optional a=crypto.
fn sdp(port: u16, proto: &str, codec: (u8, &str, Option<&str>), crypto: Option<&str>) -> String {
    let (pt, rtpmap, fmtp) = codec;
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=srtpload\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n"
    );
    if let Some(f) = fmtp {
        s.push_str(&format!("a=fmtp:{pt} {f}\r\n"));
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    if let Some(c) = crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

/// Send an ng request and require `result: ok`; the reply's SDP.
fn ng_sdp(ng: &NgClient, body: Value) -> Result<Sdp, String> {
    let reply = ng.request(body)?;
    if reply.str_at("result") != Some("ok") {
        return Err(format!("ng error: {reply:?}"));
    }
    let text = reply
        .str_at("sdp")
        .ok_or_else(|| format!("reply without sdp: {reply:?}"))?;
    Sdp::parse(text)
}

/// The engine's audio address and a=crypto attributes in `sdp`.
fn audio_of(sdp: &Sdp) -> Result<(SocketAddr, Vec<CryptoAttr>), String> {
    let m = sdp
        .medias
        .iter()
        .find(|m| m.kind == "audio")
        .ok_or("engine SDP without audio")?;
    let ip: IpAddr = m
        .connection
        .or(sdp.connection)
        .ok_or("engine SDP without c=")?;
    let crypto = m
        .attributes
        .iter()
        .filter_map(|a| a.strip_prefix("crypto:"))
        .map(|v| CryptoAttr::parse(v).map_err(|e| format!("engine a=crypto `{v}`: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((SocketAddr::new(ip, m.port), crypto))
}

/// The payload type and fmtp the engine gave `name` in `sdp` (rtpmap names compared
/// without case).
fn codec_of(sdp: &Sdp, name: &str) -> Option<(u8, Option<String>)> {
    let m = sdp.medias.iter().find(|m| m.kind == "audio")?;
    let pt = m.attributes.iter().find_map(|a| {
        let (pt, map) = a.strip_prefix("rtpmap:")?.split_once(' ')?;
        let enc = map.split('/').next()?;
        enc.eq_ignore_ascii_case(name)
            .then(|| pt.parse::<u8>().ok())?
    })?;
    let fmtp = m.attributes.iter().find_map(|a| {
        a.strip_prefix(&format!("fmtp:{pt} "))
            .map(|f| f.trim().to_string())
    });
    Some((pt, fmtp))
}

/// What setup learnt of the callee's codec (transcode mode): the payload type and fmtp the
/// engine offered it, which the callee answers with and encodes for.
type CalleeCodec = (u8, Option<String>);

fn setup(
    ng: &NgClient,
    ports: &mut Ports,
    args: &Args,
    i: usize,
    run: &str,
) -> Result<(Call, Option<CalleeCodec>), String> {
    let mode = args.mode;
    let id = format!("srtpload-{run}-{i}");
    let mut a = Side::new(ports.bind()?, 0x1000_0000 + 2 * i as u32);
    let mut b = Side::new(ports.bind()?, 0x1000_0001 + 2 * i as u32);
    let caller = match mode {
        Mode::Transcode => codec_line(&args.caller).ok_or("unknown --caller")?,
        _ => (0, "PCMU/8000", 8000),
    };
    let offer_sdp = sdp(a.port(), "RTP/AVP", (caller.0, caller.1, None), None);
    let offer = match mode {
        Mode::Plain => dict! {
            "command" => "offer", "call-id" => id.as_str(), "from-tag" => "A",
            "sdp" => offer_sdp, "ICE" => "remove",
        },
        Mode::Sdes => dict! {
            "command" => "offer", "call-id" => id.as_str(), "from-tag" => "A",
            "sdp" => offer_sdp, "ICE" => "remove", "transport-protocol" => "RTP/SAVP",
        },
        Mode::Transcode => dict! {
            "command" => "offer", "call-id" => id.as_str(), "from-tag" => "A",
            "sdp" => offer_sdp, "ICE" => "remove",
            "codec" => dict! { "transcode" => vec![args.callee.as_str()] },
        },
    };
    let offered_sdp = ng_sdp(ng, offer)?;
    let (to_b, offered) = audio_of(&offered_sdp)?;
    b.dest = to_b;
    let (mut b_tx, mut b_rx, mut answer_crypto) = (None, None, None);
    if mode == Mode::Sdes {
        let engine = offered
            .iter()
            .find(|c| c.suite == SrtpSuite::AesCm128HmacSha1_80)
            .ok_or("engine offered no AES_CM_128_HMAC_SHA1_80")?;
        let ours = CryptoAttr::generate(engine.tag, engine.suite).map_err(|e| e.to_string())?;
        b_tx = Some(ours.context().map_err(|e| e.to_string())?);
        b_rx = Some(engine.context().map_err(|e| e.to_string())?);
        answer_crypto = Some(ours.write(WriteOptions::default()));
    }
    let proto = if mode == Mode::Sdes {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let callee = match mode {
        Mode::Transcode => Some(
            codec_of(&offered_sdp, &args.callee)
                .ok_or_else(|| format!("engine offered the callee no {}", args.callee))?,
        ),
        _ => None,
    };
    let answer_sdp = match &callee {
        Some((pt, fmtp)) => {
            let rtpmap = codec_line(&args.callee).ok_or("unknown --callee")?.1;
            sdp(b.port(), proto, (*pt, rtpmap, fmtp.as_deref()), None)
        }
        None => sdp(
            b.port(),
            proto,
            (0, "PCMU/8000", None),
            answer_crypto.as_deref(),
        ),
    };
    let answer = dict! {
        "command" => "answer", "call-id" => id.as_str(), "from-tag" => "A", "to-tag" => "B",
        "sdp" => answer_sdp, "ICE" => "remove",
    };
    let answered_sdp = ng_sdp(ng, answer)?;
    let (to_a, answered) = audio_of(&answered_sdp)?;
    if !answered.is_empty() {
        return Err("engine sent a=crypto to the plain caller".into());
    }
    a.dest = to_a;
    if let Some((pt, _)) = &callee {
        let name = args.caller.as_str();
        let (a_pt, _) = codec_of(&answered_sdp, name)
            .ok_or_else(|| format!("engine answered the caller without {name}"))?;
        if a_pt != caller.0 {
            return Err(format!("engine answered {name} as pt {a_pt}"));
        }
        a.pt = a_pt;
        b.pt = *pt;
    }
    let call = Call {
        id,
        a,
        b,
        b_tx,
        b_rx,
        next_send: Instant::now(),
    };
    Ok((call, callee))
}

/// utime+stime of `pid` in seconds.
fn proc_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command: state is [0], utime [11], stime [12].
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// This process's user+system CPU in seconds.
fn own_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[derive(Default)]
struct MediaStats {
    auth_failures: u64,
    /// Datagrams that are not the RTP expected: the wrong SSRC or length, or in transcode
    /// mode the wrong payload type. With `--local-ports` the parties' sockets are neighbours,
    /// so the RTCP reports a transcoding engine sends to one party's RTP port + 1 land on the
    /// next party's socket and count here (one per transcoded stream at the start and every
    /// few seconds); they are not lost media.
    bad: u64,
    late_sends: u64,
    max_late: Duration,
    send_errors: u64,
    elapsed: Duration,
}

struct Epoll(i32);

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn register(ep: &Epoll, sock: &UdpSocket, token: u64) -> Result<(), String> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open; ev is a valid event.
    let rc = unsafe { libc::epoll_ctl(ep.0, libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &mut ev) };
    if rc != 0 {
        return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Receive everything waiting on one side of `call`. Relayed packets must be the other
/// side's, unchanged in length; transcoded ones must carry this side's payload type.
fn drain_socket(call: &mut Call, b_side: bool, st: &mut MediaStats, buf: &mut [u8], tc: bool) {
    loop {
        let sock = if b_side { &call.b.sock } else { &call.a.sock };
        let n = match sock.recv(buf) {
            Ok(n) => n,
            Err(_) => return, // WouldBlock, or an ICMP error for a closed port.
        };
        let (len, expect_ssrc) = if b_side {
            match call.b_rx.as_mut() {
                Some(ctx) => match ctx.unprotect_rtp(&mut buf[..n]) {
                    Ok(len) => (len, call.a.ssrc),
                    Err(_) => {
                        st.auth_failures += 1;
                        continue;
                    }
                },
                None => (n, call.a.ssrc),
            }
        } else {
            (n, call.b.ssrc)
        };
        let ok = if tc {
            let pt = if b_side { call.b.pt } else { call.a.pt };
            len > 12 && buf[1] & 0x7f == pt
        } else {
            len == RTP_LEN && buf[8..12] == expect_ssrc.to_be_bytes()
        };
        if !ok {
            st.bad += 1;
        } else if b_side {
            call.b.received += 1;
        } else {
            call.a.received += 1;
        }
    }
}

/// `pools`: what the caller and the callee send.
fn media(calls: &mut [Call], args: &Args, pools: &[Payloads; 2]) -> Result<MediaStats, String> {
    // SAFETY: plain syscall.
    let ep = Epoll(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) });
    if ep.0 < 0 {
        return Err(format!(
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        ));
    }
    for (i, c) in calls.iter().enumerate() {
        register(&ep, &c.a.sock, (i as u64) << 1)?;
        register(&ep, &c.b.sock, (i as u64) << 1 | 1)?;
    }
    let mut st = MediaStats::default();
    let start = Instant::now();
    let n = calls.len() as u32;
    for (i, c) in calls.iter_mut().enumerate() {
        c.next_send = start + args.ptime * i as u32 / n;
    }
    let stop_sending = start + Duration::from_secs_f64(args.seconds);
    let end = stop_sending + args.drain;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut pkt = [0u8; 12 + MAX_PAYLOAD + 64];
    let tc = args.mode == Mode::Transcode;
    let mut rx = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        for c in calls.iter_mut() {
            while c.next_send <= now && c.next_send < stop_sending {
                let late = now - c.next_send;
                st.max_late = st.max_late.max(late);
                st.late_sends += u64::from(late > LATE);
                let len = c.a.next_packet(&mut pkt, &pools[0]);
                match c.a.sock.send_to(&pkt[..len], c.a.dest) {
                    Ok(_) => c.a.sent += 1,
                    Err(_) => st.send_errors += 1,
                }
                let mut len = c.b.next_packet(&mut pkt, &pools[1]);
                if let Some(ctx) = c.b_tx.as_mut() {
                    len = ctx
                        .protect_rtp(&mut pkt, len)
                        .map_err(|e| format!("protect: {e}"))?;
                }
                match c.b.sock.send_to(&pkt[..len], c.b.dest) {
                    Ok(_) => c.b.sent += 1,
                    Err(_) => st.send_errors += 1,
                }
                c.next_send += args.ptime;
            }
        }
        // SAFETY: events has room for its length; ep is open.
        let ready = unsafe { libc::epoll_wait(ep.0, events.as_mut_ptr(), events.len() as i32, 1) };
        for ev in events.iter().take(ready.max(0) as usize) {
            let token = ev.u64;
            if let Some(c) = calls.get_mut((token >> 1) as usize) {
                drain_socket(c, token & 1 == 1, &mut st, &mut rx, tc);
            }
        }
    }
    st.elapsed = start.elapsed();
    Ok(st)
}

fn run(args: Args) -> Result<(), String> {
    let ng = NgClient::with_timeout(args.ng, Duration::from_secs(2), 2);
    ng.request(dict! { "command" => "ping" })
        .map_err(|e| format!("engine at {} does not answer ping: {e}", args.ng))?;
    let (lo, hi) = args.local_ports.unwrap_or((0, 0));
    let mut ports = Ports {
        next: lo,
        hi,
        ranged: args.local_ports.is_some(),
    };
    let run_id = format!("{}", std::process::id());
    let setup_start = Instant::now();
    let mut calls = Vec::with_capacity(args.calls);
    let mut callee_codec = None;
    for i in 0..args.calls {
        let (call, callee) = setup(&ng, &mut ports, &args, i, &run_id)
            .map_err(|e| format!("call {i} setup failed: {e}"))?;
        if callee_codec.is_some() && callee != callee_codec {
            return Err(format!(
                "call {i}: the callee's codec changed to {callee:?}"
            ));
        }
        callee_codec = callee;
        calls.push(call);
    }
    let pools = match (&callee_codec, args.mode) {
        (Some((_, fmtp)), Mode::Transcode) => [
            Payloads::speech(&args.caller, None)?,
            Payloads::speech(&args.callee, fmtp.as_deref())?,
        ],
        _ => [Payloads::relay(), Payloads::relay()],
    };
    for c in &mut calls {
        c.a.ts_step = pools[0].ts_step;
        c.b.ts_step = pools[1].ts_step;
    }
    let setup_s = setup_start.elapsed().as_secs_f64();
    let per_dir = 1000.0 / args.ptime.as_millis() as f64 * args.calls as f64;
    println!(
        "srtpload: mode {}{}, {} calls set up in {setup_s:.2} s; media {} s at {:.0} pkt/s each way",
        args.mode.name(),
        if args.mode == Mode::Transcode {
            format!(" {} <-> {}", args.caller, args.callee)
        } else {
            String::new()
        },
        args.calls,
        args.seconds,
        per_dir
    );

    let cpu0 = args.pid.and_then(proc_cpu);
    let own0 = own_cpu();
    let st = media(&mut calls, &args, &pools);
    let own_s = own_cpu() - own0;
    let cpu1 = args.pid.and_then(proc_cpu);

    let mut delete_errors = 0u32;
    for c in &calls {
        let reply = ng.request(dict! {
            "command" => "delete", "call-id" => c.id.as_str(), "from-tag" => "A",
        });
        if !matches!(&reply, Ok(r) if r.str_at("result") == Some("ok")) {
            delete_errors += 1;
        }
    }
    let st = st?;

    let sum = |f: fn(&Call) -> u64| calls.iter().map(f).sum::<u64>();
    let (a_sent, b_sent) = (sum(|c| c.a.sent), sum(|c| c.b.sent));
    let (a_recv, b_recv) = (sum(|c| c.a.received), sum(|c| c.b.received));
    let loss = |sent: u64, got: u64| {
        if sent == 0 {
            0.0
        } else {
            100.0 * sent.saturating_sub(got) as f64 / sent as f64
        }
    };
    let sent = a_sent + b_sent;
    let received = a_recv + b_recv;
    let media_s = st.elapsed.as_secs_f64();
    println!(
        "media: sent {sent}, received {received}, loss {:.3}% (A->B {:.3}%, B->A {:.3}%), \
         auth failures {}, bad {}, send errors {}",
        loss(sent, received),
        loss(a_sent, b_recv),
        loss(b_sent, a_recv),
        st.auth_failures,
        st.bad,
        st.send_errors
    );
    println!(
        "generator: {:.0} pkt/s sent, CPU {own_s:.2} s ({:.0}% of one core), late sends {} \
         (>{} ms), max {:.1} ms late",
        sent as f64 / args.seconds,
        100.0 * own_s / media_s,
        st.late_sends,
        LATE.as_millis(),
        st.max_late.as_secs_f64() * 1e3
    );
    let engine_cpu = cpu0.zip(cpu1).map(|(a, b)| b - a);
    let us_per_pkt = engine_cpu
        .filter(|_| received > 0)
        .map(|c| c * 1e6 / received as f64);
    if let (Some(cpu), Some(us)) = (engine_cpu, us_per_pkt) {
        println!(
            "engine pid {}: media CPU {cpu:.2} s ({:.1}% of one core), {us:.2} us/relayed packet",
            args.pid.unwrap_or(0),
            100.0 * cpu / media_s
        );
    }
    println!("delete: {} calls, {delete_errors} errors", calls.len());
    let summary = serde_json::json!({
        "mode": args.mode.name(),
        "caller": (args.mode == Mode::Transcode).then_some(args.caller.as_str()),
        "callee": (args.mode == Mode::Transcode).then_some(args.callee.as_str()),
        "calls": args.calls,
        "seconds": args.seconds,
        "setup_s": setup_s,
        "sent": sent,
        "received": received,
        "loss_pct": loss(sent, received),
        "a_to_b_loss_pct": loss(a_sent, b_recv),
        "b_to_a_loss_pct": loss(b_sent, a_recv),
        "auth_failures": st.auth_failures,
        "bad": st.bad,
        "send_errors": st.send_errors,
        "late_sends": st.late_sends,
        "max_late_ms": st.max_late.as_secs_f64() * 1e3,
        "generator_cpu_s": own_s,
        "engine_cpu_s": engine_cpu,
        "engine_us_per_pkt": us_per_pkt,
        "delete_errors": delete_errors,
    });
    println!("{summary}");
    Ok(())
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("srtpload: {e}");
            ExitCode::FAILURE
        }
    }
}
