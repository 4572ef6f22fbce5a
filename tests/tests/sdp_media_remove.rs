//! `sdp-media-remove` on the real binary: the offer's m= sections of the named types never
//! reach the callee, the caller's answer carries each of them back rejected (`m=TYPE 0 …`,
//! zero `c=`), media flows on the sections that remain (whatever their index), and a
//! re-INVITE from the callee is lined up the same way.

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::bencode::Value;
use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::ng::NgClient;
use ngmedia_tests::rtp::RtpEndpoint;

const WAIT: Duration = Duration::from_millis(300);

/// An SDP with one section per `(kind, port, format)`.
fn sdp(version: u32, sections: &[(&str, u16, &str)]) -> String {
    let mut s =
        format!("v=0\r\no=- 1545997027 {version} IN IP4 127.0.0.1\r\ns=tester\r\nt=0 0\r\n");
    for (kind, port, fmt) in sections {
        s.push_str(&format!(
            "m={kind} {port} RTP/AVP {fmt}\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\n"
        ));
        if *kind == "video" {
            s.push_str(&format!("a=rtpmap:{fmt} H264/90000\r\n"));
        }
    }
    s
}

/// The m= lines of an SDP, and the line after each.
fn m_lines(sdp: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = sdp.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .map(|(i, l)| {
            (
                l.to_string(),
                lines.get(i + 1).map_or(String::new(), |n| n.to_string()),
            )
        })
        .collect()
}

/// The engine address in an m= line of an engine SDP.
fn engine_addr(m: &str) -> SocketAddr {
    let port: u16 = m.split(' ').nth(1).unwrap().parse().unwrap();
    ([127, 0, 0, 1], port).into()
}

fn flows(from: &mut RtpEndpoint, engine: SocketAddr, to: &RtpEndpoint) -> bool {
    to.drain();
    from.send_next(engine);
    to.recv(WAIT).is_some()
}

fn offer(ng: &NgClient, call: &str, body: &str, remove: Vec<&str>) -> Value {
    ng.ok(dict! {
        "command" => "offer", "call-id" => call, "from-tag" => "caller",
        "sdp" => body, "sdp-media-remove" => remove,
    })
}

#[test]
fn removed_sections_skip_the_callee_and_come_back_rejected() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (mut a_audio, a_video) = (RtpEndpoint::new(0x5d01), RtpEndpoint::new(0x5d02));
    let mut b_audio = RtpEndpoint::new(0x5d03);

    // The caller offers audio and video; video is removed for the callee.
    let o = offer(
        &ng,
        "rm-video",
        &sdp(
            1,
            &[
                ("audio", a_audio.port(), "0"),
                ("video", a_video.port(), "97"),
            ],
        ),
        vec!["video"],
    );
    let to_callee = o.str_at("sdp").unwrap();
    let ms = m_lines(to_callee);
    assert_eq!(ms.len(), 1, "{to_callee}");
    assert!(ms[0].0.starts_with("m=audio "), "{to_callee}");
    assert!(!to_callee.contains("H264"), "{to_callee}");

    // The callee answers what it saw; the caller gets both sections, video rejected.
    let r = ng.ok(dict! {
        "command" => "answer", "call-id" => "rm-video", "from-tag" => "caller",
        "to-tag" => "callee", "sdp" => sdp(1, &[("audio", b_audio.port(), "0")]).as_str(),
    });
    let to_caller = r.str_at("sdp").unwrap();
    let ms = m_lines(to_caller);
    assert_eq!(ms.len(), 2, "{to_caller}");
    assert!(ms[0].0.starts_with("m=audio ") && !ms[0].0.starts_with("m=audio 0 "));
    assert_eq!(ms[1].0, "m=video 0 RTP/AVP 97", "{to_caller}");
    assert_eq!(ms[1].1, "c=IN IP4 0.0.0.0", "{to_caller}");
    assert!(
        to_caller.trim_end().ends_with("c=IN IP4 0.0.0.0"),
        "nothing else in the rejected section:\n{to_caller}"
    );

    // Audio flows both ways; nothing is bound for the removed video.
    let a_dest = engine_addr(&ms[0].0);
    let b_dest = engine_addr(&m_lines(to_callee)[0].0);
    assert!(flows(&mut a_audio, a_dest, &b_audio));
    assert!(flows(&mut b_audio, b_dest, &a_audio));
    let q = ng.query("rm-video").unwrap();
    let video = q
        .path(&["tags", "caller", "medias"])
        .and_then(Value::as_list)
        .and_then(|m| m.get(1))
        .cloned();
    let video_ports = video
        .as_ref()
        .and_then(|v| v.get("streams"))
        .and_then(Value::as_list)
        .map_or(0, |s| {
            s.iter()
                .filter(|st| st.get("local port").and_then(Value::as_int).unwrap_or(0) != 0)
                .count()
        });
    assert_eq!(video_ports, 0, "no ports for a removed section: {video:?}");
    a_video.drain();

    // A re-INVITE from the callee (audio only, as it knows the call) reaches the caller
    // with the video section rejected again, in its place.
    let r = ng.ok(dict! {
        "command" => "offer", "call-id" => "rm-video", "from-tag" => "callee",
        "to-tag" => "caller", "sdp" => sdp(2, &[("audio", b_audio.port(), "0")]).as_str(),
    });
    let reoffer = r.str_at("sdp").unwrap();
    let ms = m_lines(reoffer);
    assert_eq!(ms.len(), 2, "{reoffer}");
    assert!(ms[0].0.starts_with("m=audio "));
    assert_eq!(ms[1].0, "m=video 0 RTP/AVP 97", "{reoffer}");
    // The caller answers with both sections; the callee sees audio only.
    let r = ng.ok(dict! {
        "command" => "answer", "call-id" => "rm-video", "from-tag" => "callee",
        "to-tag" => "caller",
        "sdp" => sdp(2, &[("audio", a_audio.port(), "0"), ("video", 0, "97")]).as_str(),
    });
    let reanswer = r.str_at("sdp").unwrap();
    assert_eq!(m_lines(reanswer).len(), 1, "{reanswer}");
    assert!(flows(&mut a_audio, a_dest, &b_audio));
    assert!(flows(&mut b_audio, b_dest, &a_audio));
}

#[test]
fn removing_the_first_section_keeps_the_rest_lined_up() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (mut a_video, a_audio) = (RtpEndpoint::new(0x5e01), RtpEndpoint::new(0x5e02));
    let mut b_video = RtpEndpoint::new(0x5e03);
    let o = offer(
        &ng,
        "rm-audio",
        &sdp(
            1,
            &[
                ("audio", a_audio.port(), "0"),
                ("video", a_video.port(), "97"),
            ],
        ),
        vec!["audio"],
    );
    let to_callee = o.str_at("sdp").unwrap();
    let ms = m_lines(to_callee);
    assert_eq!(ms.len(), 1, "{to_callee}");
    assert!(ms[0].0.starts_with("m=video "), "{to_callee}");
    let b_dest = engine_addr(&ms[0].0);
    let r = ng.ok(dict! {
        "command" => "answer", "call-id" => "rm-audio", "from-tag" => "caller",
        "to-tag" => "callee", "sdp" => sdp(1, &[("video", b_video.port(), "97")]).as_str(),
    });
    let to_caller = r.str_at("sdp").unwrap();
    let ms = m_lines(to_caller);
    assert_eq!(ms.len(), 2, "{to_caller}");
    assert_eq!(ms[0].0, "m=audio 0 RTP/AVP 0");
    assert_eq!(ms[0].1, "c=IN IP4 0.0.0.0");
    assert!(ms[1].0.starts_with("m=video ") && !ms[1].0.starts_with("m=video 0 "));
    // The video RTP goes caller video ↔ callee video.
    let a_dest = engine_addr(&ms[1].0);
    assert!(flows(&mut a_video, a_dest, &b_video));
    assert!(flows(&mut b_video, b_dest, &a_video));
}

#[test]
fn other_types_warnings_and_bad_values() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let a = RtpEndpoint::new(0x5f01);
    let body = format!(
        "{}m=foobar 4000 RTP/AVP 10\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:10 blah/90000\r\n",
        sdp(
            1,
            &[("audio", a.port(), "0"), ("video", a.port() + 2, "97")]
        )
    );
    let o = offer(&ng, "rm-other", &body, vec!["other"]);
    let kinds: Vec<String> = m_lines(o.str_at("sdp").unwrap())
        .into_iter()
        .map(|(m, _)| m.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, vec!["m=audio", "m=video"]);
    assert_eq!(o.str_at("warning"), None, "{o:?}");

    // An unknown type is reported and ignored; the key on an answer is reported too.
    let o = offer(
        &ng,
        "rm-bad",
        &sdp(1, &[("audio", a.port(), "0")]),
        vec!["foo"],
    );
    assert_eq!(m_lines(o.str_at("sdp").unwrap()).len(), 1);
    assert!(
        o.str_at("warning")
            .unwrap()
            .contains("sdp-media-remove=foo"),
        "{o:?}"
    );
    let r = ng.ok(dict! {
        "command" => "answer", "call-id" => "rm-bad", "from-tag" => "caller",
        "to-tag" => "callee", "sdp" => sdp(1, &[("audio", 5000, "0")]).as_str(),
        "sdp-media-remove" => vec!["audio"],
    });
    assert!(
        r.str_at("warning").unwrap().contains("sdp-media-remove"),
        "{r:?}"
    );
    assert_eq!(m_lines(r.str_at("sdp").unwrap()).len(), 1);

    // The rtpp-flags spelling is the same request.
    let o = ng.ok(dict! {
        "command" => "offer", "call-id" => "rm-flags", "from-tag" => "caller",
        "sdp" => sdp(1, &[("audio", a.port(), "0"), ("video", a.port() + 2, "97")]).as_str(),
        "rtpp-flags" => "sdp-media-remove=[video]",
    });
    assert_eq!(m_lines(o.str_at("sdp").unwrap()).len(), 1, "{o:?}");
}
