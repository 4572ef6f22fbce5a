//! The T.38 gateway end to end: a real fax session through the daemon between spandsp's
//! analogue fax machine (G.711 A-law RTP on one leg) and spandsp's T.38 terminal (UDPTL on
//! the other), in real time, both ways, as rtpengine's `t/auto-daemon-tests-t38.pl` runs
//! its gateway. The page must arrive: spandsp's phase E status is OK on both machines and
//! each counts one page. Then `delete` (or `T.38: stop`) ends the gateway: nothing more
//! comes from the engine.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_codecs::g711::Law;
use ngmedia_codecs::t38::terminal::{write_test_page, FaxOutcome, FaxTerminal};
use ngmedia_engine::core::t38::udptl::{
    ErrorCorrection, Recovery, UdptlPacket, UdptlReceiver, UdptlSender,
};
use ngmedia_tests::bencode::Value;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::sdp::Sdp;

/// A fax session with a short page takes 15-25 s of real time; a hung one ends here.
const SESSION_LIMIT: Duration = Duration::from_secs(90);
const PCMA: u8 = 8;

fn t38_sdp(port: u16, ec: &str) -> String {
    format!(
        "v=0\r\n\
         o=- 1545997027 1 IN IP4 127.0.0.1\r\n\
         s=tester\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=image {port} udptl t38\r\n\
         a=sendrecv\r\n\
         a=T38FaxVersion:0\r\n\
         a=T38MaxBitRate:14400\r\n\
         a=T38FaxRateManagement:transferredTCF\r\n\
         a=T38FaxMaxBuffer:262\r\n\
         a=T38FaxMaxDatagram:300\r\n\
         a=T38FaxUdpEC:{ec}\r\n"
    )
}

fn audio_sdp(port: u16) -> String {
    format!(
        "v=0\r\n\
         o=- 1545997027 1 IN IP4 127.0.0.1\r\n\
         s=tester\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 8\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=sendrecv\r\n"
    )
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

/// Where to send to the engine for the party that got `sdp`.
fn engine_addr(sdp: &Sdp) -> SocketAddr {
    let m = &sdp.medias[0];
    SocketAddr::new(m.connection.or(sdp.connection).unwrap(), m.port)
}

fn offer(
    ng: &NgClient,
    call: &str,
    sdp: &str,
    t38: Vec<&str>,
    extra: Option<(&str, Value)>,
) -> Sdp {
    let mut req = dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "caller", "sdp" => sdp,
        "ICE" => "remove", "T.38" => t38,
    };
    if let (Value::Dict(d), Some((k, v))) = (&mut req, extra) {
        d.push((k.as_bytes().to_vec(), v));
    }
    parse_reply_sdp(&ng.ok(req))
}

fn answer(ng: &NgClient, call: &str, sdp: &str) -> Sdp {
    parse_reply_sdp(&ng.ok(dict! {
        "command" => "answer", "call-id" => call, "from-tag" => "caller", "to-tag" => "callee",
        "sdp" => sdp, "ICE" => "remove",
    }))
}

/// What the T.38 side saw of the engine's UDPTL.
#[derive(Debug, Default)]
struct UdptlSeen {
    datagrams: usize,
    redundancy: usize,
    fec: usize,
    /// The largest FEC span and entry count seen.
    fec_span: u8,
    fec_entries: usize,
    /// Sequence numbers that went backwards (a repeat has the same number, which is fine).
    out_of_order: usize,
}

/// The two machines and their sockets: `audio` speaks G.711 RTP to `audio_to`, `t38`
/// speaks UDPTL to `t38_to`.
struct Session {
    audio: FaxTerminal,
    audio_sock: UdpSocket,
    audio_to: SocketAddr,
    t38: FaxTerminal,
    t38_sock: UdpSocket,
    t38_to: SocketAddr,
    /// How the T.38 terminal frames what it sends.
    t38_ec: ErrorCorrection,
}

struct Ended {
    audio: FaxOutcome,
    t38: FaxOutcome,
    seen: UdptlSeen,
    audio_packets: usize,
}

impl Session {
    /// Run the session in 20 ms steps until both machines reached phase E.
    fn run(mut self) -> Ended {
        let mut tx = UdptlSender::new(self.t38_ec, 300);
        let mut rx = UdptlReceiver::new();
        let mut seen = UdptlSeen::default();
        let mut last_seq: Option<u16> = None;
        let (mut rtp_seq, mut rtp_ts) = (1000u16, 3000u32);
        let mut audio_packets = 0;
        let mut pcm = [0i16; 160];
        let mut buf = [0u8; 1500];
        let start = Instant::now();
        let mut tick = start;
        loop {
            assert!(
                start.elapsed() < SESSION_LIMIT,
                "fax session not finished in {SESSION_LIMIT:?}: audio {:?}, T.38 {:?}, {seen:?}, {audio_packets} audio packets",
                self.audio.outcome(),
                self.t38.outcome()
            );
            // The audio machine: 20 ms of A-law to the engine.
            let n = self.audio.tx_audio(&mut pcm);
            pcm[n..].fill(0);
            let mut pkt = vec![0x80, PCMA];
            pkt.extend_from_slice(&rtp_seq.to_be_bytes());
            pkt.extend_from_slice(&rtp_ts.to_be_bytes());
            pkt.extend_from_slice(&0x5ca1ab1eu32.to_be_bytes());
            let mut payload = [0u8; 160];
            Law::Alaw.encode(&pcm, &mut payload).unwrap();
            pkt.extend_from_slice(&payload);
            self.audio_sock.send_to(&pkt, self.audio_to).unwrap();
            (rtp_seq, rtp_ts) = (rtp_seq.wrapping_add(1), rtp_ts.wrapping_add(160));
            // What the engine sent it.
            while let Ok((n, _)) = self.audio_sock.recv_from(&mut buf) {
                assert!(
                    n > 12 && buf[0] == 0x80 && buf[1] & 0x7f == PCMA,
                    "{:02x?}",
                    &buf[..n.min(16)]
                );
                let mut samples = [0i16; 480];
                let got = Law::Alaw.decode(&buf[12..n], &mut samples).unwrap();
                self.audio.rx_audio(&mut samples[..got]);
                audio_packets += 1;
            }
            // The T.38 terminal: its clock, what it sends, what it receives.
            self.t38.advance(160);
            while let Some((ifp, count)) = self.t38.poll_ifp() {
                let n = tx.write(ifp, &mut buf).unwrap();
                for _ in 0..count {
                    self.t38_sock.send_to(&buf[..n], self.t38_to).unwrap();
                }
            }
            while let Ok((n, _)) = self.t38_sock.recv_from(&mut buf) {
                let p = UdptlPacket::parse(&buf[..n]).expect("the engine sends UDPTL");
                seen.datagrams += 1;
                if last_seq.is_some_and(|l| (p.seq.wrapping_sub(l) as i16) < 0) {
                    seen.out_of_order += 1;
                }
                last_seq = Some(p.seq);
                match p.recovery {
                    Recovery::Secondary(_) => seen.redundancy += 1,
                    Recovery::Fec { span, entries } => {
                        seen.fec += 1;
                        seen.fec_span = seen.fec_span.max(span);
                        seen.fec_entries = seen.fec_entries.max(entries.len());
                    }
                }
                let t38 = &mut self.t38;
                rx.handle(&p, |seq, ifp| t38.rx_ifp(ifp, seq));
            }
            if let (Some(audio), Some(t38)) = (self.audio.outcome(), self.t38.outcome()) {
                return Ended {
                    audio,
                    t38,
                    seen,
                    audio_packets,
                };
            }
            tick += Duration::from_millis(20);
            if let Some(wait) = tick.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
}

/// Fax a one-page document through the engine: from the audio machine to the T.38
/// terminal when `audio_sends`, else the other way; `t38_ec` is how the T.38 terminal
/// frames its UDPTL. Asserts that the page arrived (phase E OK on both machines, one page
/// each, a received TIFF) and returns what the T.38 side saw and how many audio packets
/// the audio machine got.
fn fax_page(
    name: &str,
    audio_sends: bool,
    (audio_sock, audio_to): (&UdpSocket, SocketAddr),
    (t38_sock, t38_to): (&UdpSocket, SocketAddr),
    t38_ec: ErrorCorrection,
) -> (UdptlSeen, usize) {
    let dir = std::env::temp_dir().join(format!("ngmedia-t38-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (tx_file, rx_file) = (dir.join("page.tif"), dir.join("received.tif"));
    write_test_page(&tx_file, 300, 2).unwrap();
    let mut audio = FaxTerminal::audio(audio_sends).unwrap();
    let mut t38 = FaxTerminal::t38(!audio_sends).unwrap();
    let (sender, receiver) = if audio_sends {
        (&mut audio, &mut t38)
    } else {
        (&mut t38, &mut audio)
    };
    sender.send_file(&tx_file).unwrap();
    receiver.receive_file(&rx_file).unwrap();
    let ended = Session {
        audio,
        audio_sock: audio_sock.try_clone().unwrap(),
        audio_to,
        t38,
        t38_sock: t38_sock.try_clone().unwrap(),
        t38_to,
        t38_ec,
    }
    .run();
    let received = std::fs::metadata(&rx_file).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    let (sent, got) = if audio_sends {
        (ended.audio, ended.t38)
    } else {
        (ended.t38, ended.audio)
    };
    assert!(sent.ok() && got.ok(), "sender {sent:?}, receiver {got:?}");
    assert_eq!((sent.pages_tx, got.pages_rx), (1, 1));
    assert!(received > 1000, "received TIFF of {received} bytes");
    (ended.seen, ended.audio_packets)
}

/// After `delete`, neither party hears from the engine any more.
fn assert_silent(audio: &UdpSocket, t38: &UdpSocket) {
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = [0u8; 1500];
    while audio.recv_from(&mut buf).is_ok() || t38.recv_from(&mut buf).is_ok() {}
    std::thread::sleep(Duration::from_millis(300));
    assert!(audio.recv_from(&mut buf).is_err(), "audio after delete");
    assert!(t38.recv_from(&mut buf).is_err(), "UDPTL after delete");
}

/// `T.38: decode`: the T.38 party offers, the audio machine answers and sends a page to
/// the T.38 terminal. The T.38 party asked for redundancy: that is what it gets.
#[test]
fn decode_a_page_from_the_audio_machine_reaches_the_t38_terminal() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (t38_sock, audio_sock) = (socket(), socket());
    let call = "t38-decode";
    let to_audio = offer(
        &ng,
        call,
        &t38_sdp(port(&t38_sock), "t38UDPRedundancy"),
        vec!["decode"],
        Some(("codec", dict! { "transcode" => vec!["PCMA"] })),
    );
    assert_eq!(to_audio.medias[0].kind, "audio");
    assert_eq!(to_audio.medias[0].formats, ["8"]);
    let to_t38 = answer(&ng, call, &audio_sdp(port(&audio_sock)));
    let image = &to_t38.medias[0];
    assert_eq!(
        (image.kind.as_str(), image.proto.as_str()),
        ("image", "udptl")
    );
    assert!(image.has_attr("T38FaxUdpEC:t38UDPRedundancy"), "{image:?}");

    let (seen, audio_packets) = fax_page(
        "decode",
        true,
        (&audio_sock, engine_addr(&to_audio)),
        (&t38_sock, engine_addr(&to_t38)),
        ErrorCorrection::Redundancy { entries: 3 },
    );
    assert!(seen.redundancy > 20 && seen.fec == 0, "{seen:?}");
    assert_eq!(seen.out_of_order, 0);
    assert!(audio_packets > 500, "{audio_packets} audio packets");

    ng.ok(dict! { "command" => "delete", "call-id" => call, "from-tag" => "caller" });
    assert_silent(&audio_sock, &t38_sock);
}

/// `T.38: force` with `FEC`: the audio party offers, the T.38 party answers with FEC and
/// sends a page to the audio machine; the gateway protects its UDPTL with FEC over three
/// packets. A re-INVITE with `T.38: stop` and audio on both sides ends the gateway: audio
/// is relayed as it is again.
#[test]
fn force_a_page_from_the_t38_terminal_reaches_the_audio_machine_then_stop() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (audio_sock, t38_sock) = (socket(), socket());
    let call = "t38-force";
    let to_t38 = offer(
        &ng,
        call,
        &audio_sdp(port(&audio_sock)),
        vec!["force", "FEC"],
        None,
    );
    let image = &to_t38.medias[0];
    assert_eq!(
        (image.kind.as_str(), image.proto.as_str()),
        ("image", "udptl")
    );
    assert!(image.has_attr("T38FaxUdpEC:t38UDPFEC"), "{image:?}");
    let to_audio = answer(&ng, call, &t38_sdp(port(&t38_sock), "t38UDPFEC"));
    assert_eq!(to_audio.medias[0].kind, "audio");
    assert_eq!(to_audio.medias[0].formats, ["8"]);

    let (seen, _) = fax_page(
        "force",
        false,
        (&audio_sock, engine_addr(&to_audio)),
        (&t38_sock, engine_addr(&to_t38)),
        ErrorCorrection::Fec {
            entries: 3,
            span: 3,
        },
    );
    assert!(seen.fec > 20 && seen.redundancy == 0, "{seen:?}");
    assert_eq!((seen.fec_span, seen.fec_entries), (3, 3));

    // Back to voice: `T.38: stop`, audio both ways, RTP relayed unchanged.
    let reoffer = parse_reply_sdp(&ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "caller", "to-tag" => "callee",
        "sdp" => audio_sdp(port(&audio_sock)), "ICE" => "remove", "T.38" => vec!["stop"],
    }));
    assert_eq!(reoffer.medias[0].kind, "audio");
    let reanswer = answer(&ng, call, &audio_sdp(port(&t38_sock)));
    assert_eq!(reanswer.medias[0].kind, "audio");
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = [0u8; 1500];
    while audio_sock.recv_from(&mut buf).is_ok() || t38_sock.recv_from(&mut buf).is_ok() {}
    let mut rtp = vec![0x80, PCMA, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    rtp.extend_from_slice(&[0xd5; 160]);
    audio_sock.send_to(&rtp, engine_addr(&reanswer)).unwrap();
    t38_sock.set_nonblocking(false).unwrap();
    t38_sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let n = loop {
        assert!(Instant::now() < deadline, "RTP not relayed after T.38 stop");
        let n = t38_sock
            .recv(&mut buf)
            .expect("RTP relayed after T.38 stop");
        // A gateway packet still in flight from before the re-INVITE is not the relay.
        if buf[..n] == rtp[..] {
            break n;
        }
    };
    assert_eq!(&buf[..n], &rtp[..]);
}
