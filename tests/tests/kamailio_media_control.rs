//! Every media control function of Kamailio's stock `rtpengine` module, called by a real
//! Kamailio against ngmedia in a live call between two SIPp user agents: `block_dtmf`,
//! `unblock_dtmf`, `block_media`, `unblock_media`, `silence_media`, `unsilence_media`,
//! `play_dtmf`, `start_forwarding`, `stop_forwarding`, `play_media` and `stop_media`.
//!
//! As an operator would (an application server or an agent's phone asking for DTMF masking
//! or a mute), the test sends in-dialog SIP INFO requests to Kamailio; its config calls the
//! module function the `X-Media-Control` header names for that dialog and answers 200 when
//! the function succeeded. The SDP of both SIPp agents points at the test's own UDP sockets,
//! so the test sees exactly what each party receives: nothing while blocked, 0xFF while
//! silenced (PCMU), RFC 4733 events from `play_dtmf`, no events while DTMF is blocked, copies
//! at the forwarding destination, the file from `play_media`. The engine's per-command
//! counters show that each function reached it.
//!
//! Needs the Debian packages `kamailio` and `sip-tester` (installed by `.ci/run`).

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::bencode::Value;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_modules, start_kamailio, tail, wait_listening,
    Guard,
};
use ngmedia_tests::{dict, wait_for, Daemon, RtpEndpoint};

const WAIT: Duration = Duration::from_millis(300);

/// The module function each `X-Media-Control` value calls. `directional` makes the module
/// send the INFO's From tag: that party alone is affected.
fn functions(file: &str) -> Vec<(&'static str, String)> {
    let f = |name: &'static str, call: &str| (name, call.to_owned());
    vec![
        f("block_dtmf", "block_dtmf()"),
        f("unblock_dtmf", "unblock_dtmf()"),
        f("block_dtmf_from", "block_dtmf(\"directional\")"),
        f("unblock_dtmf_from", "unblock_dtmf(\"directional\")"),
        f("block_media", "block_media()"),
        f("unblock_media", "unblock_media()"),
        f("block_media_from", "block_media(\"directional\")"),
        f("unblock_media_from", "unblock_media(\"directional\")"),
        f("silence_media", "silence_media()"),
        f("unsilence_media", "unsilence_media()"),
        f("silence_media_from", "silence_media(\"directional\")"),
        f("unsilence_media_from", "unsilence_media(\"directional\")"),
        f("start_forwarding", "start_forwarding()"),
        f("stop_forwarding", "stop_forwarding()"),
        f("play_dtmf", "play_dtmf(\"code=$hdr(X-Code) duration=100\")"),
        ("play_media", format!("play_media(\"file={file}\")")),
        f("stop_media", "stop_media()"),
    ]
}

/// Kamailio: INVITE through `rtpengine_offer`/`_answer` to the callee, BYE deletes, and an
/// in-dialog INFO with `X-Media-Control` calls that function and is answered locally.
fn kamailio_config(sip_port: u16, uas_port: u16, ng: SocketAddr, file: &str) -> String {
    let flags = "replace-origin replace-session-connection ICE=remove RTP/AVP trust-address";
    let mut dispatch = String::new();
    for (name, call) in functions(file) {
        dispatch.push_str(&format!(
            "  if ($var(f) == \"{name}\") {{ if ({call}) {{ $var(ok) = 1; }} }}\n"
        ));
    }
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:{ng}")
request_route {{
  if (is_method("INFO") && is_present_hf("X-Media-Control")) {{
    route(MEDIA_CONTROL);
    exit;
  }}
  if (has_totag()) {{
    loose_route();
    if (is_method("BYE")) {{ rtpengine_delete(); }}
    t_relay();
    exit;
  }}
  if (is_method("INVITE")) {{
    record_route();
    if (!rtpengine_offer("{flags}")) {{ sl_send_reply("503", "offer failed"); exit; }}
    t_on_reply("REPLY");
    $du = "sip:127.0.0.1:{uas_port}";
    t_relay();
    exit;
  }}
  sl_send_reply("405", "Method Not Allowed");
}}
onreply_route[REPLY] {{
  if (has_body("application/sdp")) {{ rtpengine_answer("{flags}"); }}
}}
route[MEDIA_CONTROL] {{
  $var(f) = $hdr(X-Media-Control);
  $var(ok) = 0;
{dispatch}  if ($var(ok) == 1) {{ sl_send_reply("200", "OK"); }}
  else {{ sl_send_reply("500", "Media Control Failed"); }}
}}
"#,
        modules = kamailio_modules().display()
    )
}

/// The caller's SDP (PCMU and telephone-event) at `media`.
fn sdp(user: &str, media: &str) -> String {
    format!(
        "v=0\n\
o={user} 1 1 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio {media} RTP/AVP 0 101\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=sendrecv\n"
    )
}

/// SIPp caller: INVITE with media at `media`, ACK, then wait (at most a minute) for the
/// test's MESSAGE, answer it and hang up.
fn uac_scenario(media: u16) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">
  <send retrans="500"><![CDATA[
INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:callee@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv request="MESSAGE" timeout="60000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
"#,
        sdp = sdp("caller", &media.to_string())
    )
}

/// SIPp callee: answers the INVITE with media at `media`, then waits for the BYE.
fn uas_scenario(media: u16) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:callee@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv request="ACK"/>
  <recv request="BYE" timeout="90000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"#,
        sdp = sdp("callee", &media.to_string())
    )
}

/// One party as the engine sees it: its tag and the engine port it sends to.
struct Party {
    tag: String,
    engine: SocketAddr,
}

/// The party whose media endpoint is `port`, from a `query` reply.
fn party(q: &Value, port: u16) -> Option<Party> {
    q.get("tags")?.as_dict()?.iter().find_map(|(tag, leg)| {
        let stream = leg
            .get("medias")?
            .as_list()?
            .first()?
            .get("streams")?
            .as_list()?
            .first()?
            .clone();
        if stream.path(&["endpoint", "port"])?.as_int()? != i64::from(port) {
            return None;
        }
        Some(Party {
            tag: String::from_utf8_lossy(tag).into_owned(),
            engine: ([127, 0, 0, 1], stream.get("local port")?.as_int()? as u16).into(),
        })
    })
}

fn packets_from(ng: &NgClient, call_id: &str, tag: &str) -> i64 {
    let q = ng.query(call_id).unwrap();
    let medias = q.path(&["tags", tag, "medias"]).and_then(Value::as_list);
    medias.unwrap()[0]
        .get("streams")
        .and_then(Value::as_list)
        .unwrap()[0]
        .path(&["stats", "packets"])
        .and_then(Value::as_int)
        .unwrap()
}

/// The in-dialog side of the test: sends INFO requests into the dialog through Kamailio.
struct Operator {
    sock: UdpSocket,
    kamailio: SocketAddr,
    uas_port: u16,
    call_id: String,
    cseq: u32,
}

impl Operator {
    /// Ask Kamailio to call `function` for the dialog, on behalf of the party `from` (its
    /// tag in From, the other's in To); the status code of Kamailio's answer.
    fn request(&mut self, function: &str, from: &str, to: &str, extra: &str) -> u16 {
        self.cseq += 1;
        let port = self.sock.local_addr().unwrap().port();
        let msg = format!(
            "INFO sip:callee@127.0.0.1:{uas} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ctl-{cseq}\r\n\
             From: <sip:party@127.0.0.1>;tag={from}\r\n\
             To: <sip:party@127.0.0.1>;tag={to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INFO\r\n\
             Max-Forwards: 70\r\n\
             X-Media-Control: {function}\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n",
            uas = self.uas_port,
            cseq = self.cseq,
            call_id = self.call_id,
        );
        let branch = format!("branch=z9hG4bK-ctl-{};", self.cseq);
        let mut buf = [0u8; 4096];
        for _ in 0..3 {
            self.sock.send_to(msg.as_bytes(), self.kamailio).unwrap();
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                self.sock.set_read_timeout(Some(left)).unwrap();
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                    break;
                };
                let reply = String::from_utf8_lossy(&buf[..n]);
                if reply.contains(&branch) || reply.contains(branch.trim_end_matches(';')) {
                    return reply[8..11].parse().unwrap_or(0);
                }
            }
        }
        panic!("no answer from Kamailio to INFO {function}");
    }

    fn call(&mut self, function: &str, from: &Party, to: &Party) {
        let status = self.request(function, &from.tag, &to.tag, "");
        assert_eq!(status, 200, "Kamailio's {function} failed");
    }
}

/// What `to` receives of one audio packet from `from`: `None` if nothing.
fn relay(from: &mut RtpEndpoint, engine: SocketAddr, to: &RtpEndpoint) -> Option<Vec<u8>> {
    to.drain();
    let sent = from.send_next(engine);
    let got = to.recv(WAIT).map(|(p, _)| p);
    if let Some(p) = &got {
        assert_eq!(p.len(), sent.len());
    }
    got
}

/// Send a telephone-event (event 3) from `from`; the payload types `to` receives of it and
/// of one audio packet after it.
fn event_then_audio(
    from: &mut RtpEndpoint,
    seq: &mut u16,
    engine: SocketAddr,
    to: &RtpEndpoint,
) -> Vec<u8> {
    to.drain();
    *seq += 1;
    let ev = rtp_packet(101, *seq, 0x1000, from.ssrc, &[3, 10, 0, 160]);
    from.sock.send_to(&ev, engine).unwrap();
    from.send_next(engine);
    let mut pts = Vec::new();
    while let Some((p, _)) = to.recv(WAIT) {
        pts.push(p[1] & 0x7f);
    }
    pts
}

fn total_count(ng: &NgClient, stem: &str) -> i64 {
    let r = ng.ok(dict! { "command" => "statistics" });
    r.path(&[
        "statistics",
        "controlstatistics",
        &format!("total{stem}count"),
    ])
    .and_then(Value::as_int)
    .unwrap_or(-1)
}

#[test]
fn kamailio_module_media_control_functions_act_on_a_live_call() {
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    let dir = std::env::temp_dir().join(format!("ngmedia-kam-mctl-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/media");
    let file = samples.join("announcement.wav");

    let forward = UdpSocket::bind("127.0.0.1:0").unwrap();
    let daemon = Daemon::start(&[
        "--delete-delay",
        "0",
        &format!("--forward-to={}", forward.local_addr().unwrap()),
        &format!("--media-play-dirs={}", samples.display()),
    ]);
    let ng = daemon.client();
    let mut a = RtpEndpoint::new(0x4b41_0001);
    let mut b = RtpEndpoint::new(0x4b41_0002);
    let (sip_port, uas_port, uac_port) = (free_port(), free_port(), free_port());

    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_config(sip_port, uas_port, daemon.ng, file.to_str().unwrap()),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, &dir, sip_port);

    let uas_xml = dir.join("uas.xml");
    fs::write(&uas_xml, uas_scenario(b.port())).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args(["-sf", uas_xml.to_str().unwrap(), "-i", "127.0.0.1"])
        .args(["-p", &uas_port.to_string(), "-m", "1", "-nostdin"])
        .args(["-mp", &free_media_port().to_string()]);
    let uas = Guard::spawn(cmd, "sipp uas", &dir.join("uas.log"));
    assert!(
        wait_listening(uas_port, Duration::from_secs(10)),
        "sipp uas does not listen on {uas_port}:\n{}",
        uas.log_tail()
    );
    let uac_xml = dir.join("uac.xml");
    fs::write(&uac_xml, uac_scenario(a.port())).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", uac_xml.to_str().unwrap(), "-i", "127.0.0.1"])
        .args(["-p", &uac_port.to_string(), "-m", "1", "-nostdin"])
        .args(["-mp", &free_media_port().to_string()])
        .args(["-timeout", "90s", "-timeout_error"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));

    // Once the answer went through, both parties are in the call.
    let (call_id, caller, callee) = wait_for(Duration::from_secs(10), || {
        let call_id = ng.list().into_iter().next()?;
        let q = ng.query(&call_id).ok()?;
        Some((call_id, party(&q, a.port())?, party(&q, b.port())?))
    })
    .unwrap_or_else(|| {
        panic!(
            "no answered call\n{}\n---- kamailio ----\n{}\n---- uac ----\n{}",
            daemon.log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log"))
        )
    });
    let mut op = Operator {
        sock: UdpSocket::bind("127.0.0.1:0").unwrap(),
        kamailio: ([127, 0, 0, 1], sip_port).into(),
        uas_port,
        call_id: call_id.clone(),
        cseq: 10,
    };
    let (a_dest, b_dest) = (caller.engine, callee.engine);
    assert!(relay(&mut a, a_dest, &b).is_some(), "caller to callee");
    assert!(relay(&mut b, b_dest, &a).is_some(), "callee to caller");

    // block_media(): the whole call; streams stay latched and counted.
    let before = packets_from(&ng, &call_id, &caller.tag);
    op.call("block_media", &caller, &callee);
    assert!(relay(&mut a, a_dest, &b).is_none(), "blocked: caller");
    assert!(relay(&mut b, b_dest, &a).is_none(), "blocked: callee");
    let counted = wait_for(Duration::from_secs(2), || {
        (packets_from(&ng, &call_id, &caller.tag) == before + 1).then_some(())
    });
    assert!(counted.is_some(), "blocked packets are counted");
    op.call("unblock_media", &caller, &callee);
    assert!(relay(&mut a, a_dest, &b).is_some());
    assert!(relay(&mut b, b_dest, &a).is_some());

    // block_media("directional") from the caller: only what the caller sends.
    op.call("block_media_from", &caller, &callee);
    assert!(relay(&mut a, a_dest, &b).is_none(), "caller blocked");
    assert!(relay(&mut b, b_dest, &a).is_some(), "callee still heard");
    op.call("unblock_media_from", &caller, &callee);
    assert!(relay(&mut a, a_dest, &b).is_some());

    // silence_media(): PCMU silence (0xFF) both ways, same length.
    op.call("silence_media", &caller, &callee);
    let p = relay(&mut a, a_dest, &b).expect("silenced packets still flow");
    assert!(
        p[12..].iter().all(|&x| x == 0xFF),
        "caller's audio is silence"
    );
    let p = relay(&mut b, b_dest, &a).expect("silenced packets still flow");
    assert!(
        p[12..].iter().all(|&x| x == 0xFF),
        "callee's audio is silence"
    );
    op.call("unsilence_media", &caller, &callee);
    let p = relay(&mut a, a_dest, &b).unwrap();
    assert!(p[12..].iter().any(|&x| x != 0xFF), "audio again");
    // silence_media("directional") from the callee.
    op.call("silence_media_from", &callee, &caller);
    let p = relay(&mut b, b_dest, &a).unwrap();
    assert!(p[12..].iter().all(|&x| x == 0xFF), "callee silenced");
    let p = relay(&mut a, a_dest, &b).unwrap();
    assert!(p[12..].iter().any(|&x| x != 0xFF), "caller not silenced");
    op.call("unsilence_media_from", &callee, &caller);
    let p = relay(&mut b, b_dest, &a).unwrap();
    assert!(p[12..].iter().any(|&x| x != 0xFF));

    // block_dtmf(): telephone-events dropped, audio passes; unblock_dtmf() lets them by.
    let (mut seq_a, mut seq_b) = (100u16, 200u16);
    assert_eq!(
        event_then_audio(&mut a, &mut seq_a, a_dest, &b),
        vec![101, 0]
    );
    op.call("block_dtmf", &caller, &callee);
    assert_eq!(event_then_audio(&mut a, &mut seq_a, a_dest, &b), vec![0]);
    assert_eq!(event_then_audio(&mut b, &mut seq_b, b_dest, &a), vec![0]);
    op.call("unblock_dtmf", &caller, &callee);
    assert_eq!(
        event_then_audio(&mut a, &mut seq_a, a_dest, &b),
        vec![101, 0]
    );
    // block_dtmf("directional") from the caller (a card number being read).
    op.call("block_dtmf_from", &caller, &callee);
    assert_eq!(event_then_audio(&mut a, &mut seq_a, a_dest, &b), vec![0]);
    assert_eq!(
        event_then_audio(&mut b, &mut seq_b, b_dest, &a),
        vec![101, 0]
    );
    op.call("unblock_dtmf_from", &caller, &callee);
    assert_eq!(
        event_then_audio(&mut a, &mut seq_a, a_dest, &b),
        vec![101, 0]
    );

    // play_dtmf("code=… duration=100"): the INFO's sender (the caller) presses 9; the callee
    // receives RFC 4733 events in place of the caller's audio: marker on the first, one
    // timestamp, a growing duration, then the end (sent three times).
    let status = op.request("play_dtmf", &caller.tag, &callee.tag, "X-Code: 9\r\n");
    assert_eq!(status, 200, "Kamailio's play_dtmf failed");
    let mut events = Vec::new();
    for _ in 0..8 {
        b.drain();
        a.send_next(a_dest);
        while let Some((p, _)) = b.recv(WAIT) {
            if p[1] & 0x7f == 101 {
                events.push(p);
            }
        }
        if events.last().is_some_and(|p| p[13] & 0x80 != 0) {
            break;
        }
    }
    assert!(events.len() >= 4, "{} events", events.len());
    assert!(events.iter().all(|p| p[12] == 9), "event 9");
    assert!(events[0][1] & 0x80 != 0, "marker on the first event");
    assert!(
        events.iter().all(|p| p[4..8] == events[0][4..8]),
        "one timestamp"
    );
    let ends = events.iter().filter(|p| p[13] & 0x80 != 0).count();
    assert_eq!(ends, 3, "the end report three times");
    let durations: Vec<u16> = events
        .iter()
        .map(|p| u16::from_be_bytes([p[14], p[15]]))
        .collect();
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");

    // start_forwarding(): copies of both parties' RTP reach the forwarding destination.
    forward
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut fbuf = [0u8; 2048];
    assert!(relay(&mut a, a_dest, &b).is_some());
    assert!(forward.recv_from(&mut fbuf).is_err(), "nothing before");
    op.call("start_forwarding", &caller, &callee);
    let mut copied = false;
    for _ in 0..5 {
        let sent = a.send_next(a_dest);
        if let Ok((n, _)) = forward.recv_from(&mut fbuf) {
            assert_eq!(&fbuf[12..n], &sent[12..], "the caller's audio");
            copied = true;
            break;
        }
    }
    assert!(copied, "forwarded copies arrive");
    op.call("stop_forwarding", &caller, &callee);
    while forward.recv_from(&mut fbuf).is_ok() {}
    assert!(relay(&mut a, a_dest, &b).is_some());
    assert!(forward.recv_from(&mut fbuf).is_err(), "nothing after");

    // play_media("file=…"): the INFO's sender (the caller) hears the file while the callee
    // says nothing; stop_media() ends it.
    a.drain();
    op.call("play_media", &caller, &callee);
    let played = a.recv_many(10, Duration::from_secs(2));
    assert_eq!(played.len(), 10, "the caller hears the file");
    assert!(played
        .iter()
        .all(|(p, from)| *from == a_dest && p[1] & 0x7f == 0));
    op.call("stop_media", &caller, &callee);
    std::thread::sleep(Duration::from_millis(100));
    a.drain();
    assert!(a.recv(WAIT).is_none(), "playback stopped");

    // Each function reached the engine as its ng command, as often as it was called.
    for (stem, calls) in [
        ("blkmedia", 2),
        ("unblkmedia", 2),
        ("slnmedia", 2),
        ("unslnmedia", 2),
        ("blkdtmf", 2),
        ("unblkdtmf", 2),
        ("playdtmf", 1),
        ("startfwd", 1),
        ("stopfwd", 1),
        ("playmedia", 1),
        ("stopmedia", 1),
    ] {
        assert_eq!(total_count(&ng, stem), calls, "{stem}");
    }

    // A function that fails in the engine fails in Kamailio too.
    let status = op.request("play_dtmf", &caller.tag, &callee.tag, "X-Code: X\r\n");
    assert_eq!(status, 500, "invalid code");

    // Hang up: the caller's SIPp sends BYE on the test's MESSAGE.
    let uac_sip: SocketAddr = ([127, 0, 0, 1], uac_port).into();
    let message = format!(
        "MESSAGE sip:caller@127.0.0.1:{uac_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bK-end\r\n\
         From: <sip:callee@127.0.0.1>;tag={}\r\n\
         To: <sip:caller@127.0.0.1>;tag={}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 99 MESSAGE\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        op.sock.local_addr().unwrap(),
        callee.tag,
        caller.tag,
    );
    op.sock.send_to(message.as_bytes(), uac_sip).unwrap();
    let status =
        wait_for(Duration::from_secs(15), || uac.exited()).expect("caller scenario did not end");
    assert!(
        status.success(),
        "SIPp caller failed: {status}\n{}",
        tail(&dir.join("uac.log"))
    );
    let gone = wait_for(Duration::from_secs(3), || {
        let r = ng.query(&call_id).ok()?;
        (r.str_at("result") == Some("error")).then_some(())
    });
    assert!(gone.is_some(), "call deleted after BYE");
    let _ = fs::remove_dir_all(&dir);
}
