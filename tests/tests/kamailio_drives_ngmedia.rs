//! Kamailio's stock `rtpengine` module drives ngmedia unchanged: a real Kamailio proxy sits
//! between two real SIP user agents (SIPp), calls `rtpengine_offer`/`_answer`/`_delete`, and
//! RTP sent by the caller's phone crosses the engine to the callee (SIPp echoes it) and back.
//!
//! Needs the Debian packages `kamailio` and `sip-tester` (installed by `.ci/run`).

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_config, start_kamailio, tail, uac_scenario,
    wait_listening, Guard,
};
use ngmedia_tests::{wait_for, Daemon, RtpEndpoint};

#[test]
fn kamailio_rtpengine_module_sets_up_relays_and_tears_down_a_call() {
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    let dir = std::env::temp_dir().join(format!("ngmedia-kamailio-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();

    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let ng = daemon.client();
    let (sip_port, uas_port, uas_media, uac_port) =
        (free_port(), free_port(), free_media_port(), free_port());
    let mut phone = RtpEndpoint::new(0x4b414d31);

    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_config(
            sip_port,
            uas_port,
            &format!(
                "modparam(\"rtpengine\", \"rtpengine_sock\", \"udp:{}\")",
                daemon.ng
            ),
            None,
        ),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, &dir, sip_port);
    // The callee answers every INVITE with SDP and echoes the RTP it receives.
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-m",
            "1",
        ])
        .args(["-rtp_echo", "-mp", &uas_media.to_string(), "-nostdin"]);
    let uas = Guard::spawn(cmd, "sipp uas", &dir.join("uas.log"));
    assert!(
        wait_listening(uas_port, Duration::from_secs(10)),
        "sipp uas does not listen on {uas_port}:\n{}",
        uas.log_tail()
    );

    let scenario = dir.join("uac.xml");
    fs::write(&scenario, uac_scenario(&phone.port().to_string(), 2500)).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args([
            "-sf",
            scenario.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &uac_port.to_string(),
        ])
        .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));

    // Once the answer went through, the caller-facing port is in the call's query.
    let (call_id, engine_port) = wait_for(Duration::from_secs(5), || {
        let call_id = ng.list().into_iter().next()?;
        let q = ng.query(&call_id).ok()?;
        let tags = q.get("tags")?.as_dict()?;
        // The caller's leg is the one whose stream endpoint is the phone's socket.
        tags.iter().find_map(|(_, leg)| {
            let streams = leg
                .get("medias")?
                .as_list()?
                .first()?
                .get("streams")?
                .as_list()?;
            streams.iter().find_map(|s| {
                let ep = s.get("endpoint")?;
                (ep.get("port")?.as_int()? == i64::from(phone.port()))
                    .then(|| s.get("local port")?.as_int())
                    .flatten()
                    .map(|p| (call_id.clone(), p as u16))
            })
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "no call with the caller's media after the answer\n{}\n---- kamailio ----\n{}\n\
             ---- sipp uac ----\n{}",
            daemon.log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log"))
        )
    });

    // Caller's RTP crosses the engine to the callee, which echoes it back the same way.
    let engine: SocketAddr = ([127, 0, 0, 1], engine_port).into();
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(phone.send_next(engine));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut echoed = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    phone
        .sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while echoed < sent.len() && Instant::now() < deadline {
        if let Ok((n, from)) = phone.sock.recv_from(&mut buf) {
            assert_eq!(
                from, engine,
                "echo must come back from the port the caller sends to"
            );
            assert!(
                sent.iter().any(|p| p[..] == buf[..n]),
                "echoed packet differs from what was sent"
            );
            echoed += 1;
        }
    }
    assert_eq!(
        echoed,
        sent.len(),
        "RTP did not make the round trip\n{}",
        daemon.log_text()
    );

    // BYE through Kamailio deletes the call (delete-delay 0 here).
    let status =
        wait_for(Duration::from_secs(10), || uac.exited()).expect("caller scenario did not finish");
    assert!(status.success(), "SIPp caller scenario failed: {status}");
    let gone = || {
        let reply = ng.query(&call_id).ok()?;
        (reply.str_at("result") == Some("error")).then_some(())
    };
    wait_for(Duration::from_secs(3), gone)
        .unwrap_or_else(|| panic!("call still present after BYE\n{}", daemon.log_text()));
    let _ = fs::remove_dir_all(&dir);
}
