//! An SDP body with several sessions (several `v=` lines), as rtpengine takes it: the media of
//! all sessions are one list, every session is rewritten in place (its o=, its c=), with
//! `replace: SDP version` all o= lines carry one version, and media flows on the sections
//! of every session. Also rtpengine's GH 1461 body: rejected m= lines without formats pass
//! untouched.

use std::net::SocketAddr;
use std::time::Duration;

use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::dict;
use ngmedia_tests::rtp::RtpEndpoint;

const WAIT: Duration = Duration::from_millis(300);

/// One session per `(o= version, port)`, each with one PCMU section.
fn body(sessions: &[(u64, u16)]) -> String {
    sessions
        .iter()
        .map(|(version, port)| {
            format!(
                "v=0\r\no=- 1545997027 {version} IN IP4 127.0.0.1\r\ns=tester\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n"
            )
        })
        .collect()
}

/// The body with the engine's ports written as `PORT`, and the ports.
fn ports_out(sdp: &str) -> (String, Vec<u16>) {
    let mut ports = Vec::new();
    let text = sdp
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("m=audio ") {
                let (port, tail) = rest.split_once(' ').unwrap();
                ports.push(port.parse().unwrap());
                format!("m=audio PORT {tail}\n")
            } else if l.starts_with("a=rtcp:") {
                "a=rtcp:PORT\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    (text, ports)
}

fn expected(version: u64, sessions: usize) -> String {
    format!(
        "v=0\no=- 1545997027 {version} IN IP4 127.0.0.1\ns=tester\nt=0 0\nm=audio PORT RTP/AVP 0\n\
         c=IN IP4 127.0.0.1\na=rtpmap:0 PCMU/8000\na=sendrecv\na=rtcp:PORT\n"
    )
    .repeat(sessions)
}

#[test]
fn several_sessions_in_one_body() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut a = [RtpEndpoint::new(0x7a01), RtpEndpoint::new(0x7a02)];
    let mut b = [RtpEndpoint::new(0x7b01), RtpEndpoint::new(0x7b02)];

    let offer = |sdp: &str| {
        ng.ok(dict! {
            "command" => "offer", "call-id" => "multi", "from-tag" => "a",
            "sdp" => sdp, "replace" => vec!["SDP version"],
        })
        .str_at("sdp")
        .unwrap()
        .to_owned()
    };
    let first = body(&[(999, a[0].port()), (1000, a[1].port())]);
    let (text, to_b) = ports_out(&offer(&first));
    assert_eq!(text, expected(999, 2));
    // The same offer again (a re-INVITE that changes nothing): the same version.
    let (text, again) = ports_out(&offer(&first));
    assert_eq!(text, expected(999, 2));
    assert_eq!(again, to_b);

    let answer = ng
        .ok(dict! {
            "command" => "answer", "call-id" => "multi", "from-tag" => "a", "to-tag" => "b",
            "sdp" => body(&[(5, b[0].port()), (6, b[1].port())]).as_str(),
        })
        .str_at("sdp")
        .unwrap()
        .to_owned();
    let (text, to_a) = ports_out(&answer);
    assert_eq!(text.matches("v=0\n").count(), 2, "{answer}");
    assert!(
        text.contains(" 5 IN IP4") && text.contains(" 6 IN IP4"),
        "{answer}"
    );

    // Media of both sessions flows, each on its own pair of ports.
    let engine = |port: u16| -> SocketAddr { ([127, 0, 0, 1], port).into() };
    for i in 0..2 {
        b[i].drain();
        a[i].send_next(engine(to_a[i]));
        let (_, from) = b[i].recv(WAIT).expect("a -> b");
        assert_eq!(from, engine(to_b[i]));
        a[i].drain();
        b[i].send_next(engine(to_b[i]));
        assert!(a[i].recv(WAIT).is_some(), "b -> a on session {i}");
    }
}

#[test]
fn rejected_sections_without_formats_pass_untouched() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    for tail in ["*", "* "] {
        let sdp = format!(
            "v=0\r\no=- 1545997027 1 IN IP4 127.0.0.1\r\ns=tester\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 2000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\nm=application 0 RTP/AVP 124\r\n\
             m=application 0 {tail}\r\n"
        );
        let out = ng
            .ok(dict! {
                "command" => "offer", "call-id" => format!("gh1461-{}", tail.len()).as_str(),
                "from-tag" => "a", "sdp" => sdp.as_str(),
            })
            .str_at("sdp")
            .unwrap()
            .to_owned();
        assert!(
            out.ends_with(&format!(
                "a=rtcp:{}\r\nm=application 0 RTP/AVP 124\r\nm=application 0 {tail}\r\n",
                ports_out(&out).1[0] + 1
            )),
            "{out:?}"
        );
    }
}
