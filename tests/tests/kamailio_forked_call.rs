//! Kamailio forks one INVITE to two SIPp callees in parallel and offers each branch to
//! ngmedia from `branch_route` with its own `via-branch` (and its own flags); the busy
//! callee's failure deletes only its branch, the other callee answers on its branch, and RTP
//! crosses the engine to it and back. BYE deletes the call.
//!
//! Needs the Debian packages `kamailio` and `sip-tester` (installed by `.ci/run`).

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_fork_config, start_kamailio, tail,
    uac_scenario, wait_listening, Guard,
};
use ngmedia_tests::{wait_for, Daemon, RtpEndpoint};

/// A callee that is busy: 486 to the INVITE, then the ACK.
const BUSY_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <recv request="ACK"/>
</scenario>
"#;

#[test]
fn kamailio_forks_to_two_callees_one_branch_per_callee() {
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    let dir = std::env::temp_dir().join(format!("ngmedia-kamailio-fork-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();

    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let ng = daemon.client();
    let (sip_port, uas1, uas2, uas_media, uac_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_media_port(),
        free_port(),
    );
    let mut phone = RtpEndpoint::new(0x464f524b);

    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_fork_config(
            sip_port,
            [uas1, uas2],
            &format!(
                "modparam(\"rtpengine\", \"rtpengine_sock\", \"udp:{}\")",
                daemon.ng
            ),
            ["ICE=remove RTP/AVP", "ICE=force RTP/AVP"],
        ),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, &dir, sip_port);
    // Callee 1 answers with SDP and echoes the RTP it receives; callee 2 is busy.
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &uas1.to_string()])
        .args([
            "-m",
            "1",
            "-rtp_echo",
            "-mp",
            &uas_media.to_string(),
            "-nostdin",
        ]);
    let callee1 = Guard::spawn(cmd, "sipp uas", &dir.join("uas1.log"));
    let busy = dir.join("busy.xml");
    fs::write(&busy, BUSY_UAS).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args(["-sf", busy.to_str().unwrap(), "-i", "127.0.0.1"])
        .args(["-p", &uas2.to_string(), "-m", "1", "-nostdin"]);
    let callee2 = Guard::spawn(cmd, "sipp busy uas", &dir.join("uas2.log"));
    for (port, who) in [(uas1, &callee1), (uas2, &callee2)] {
        assert!(
            wait_listening(port, Duration::from_secs(10)),
            "sipp does not listen on {port}:\n{}",
            who.log_tail()
        );
    }

    let scenario = dir.join("uac.xml");
    fs::write(&scenario, uac_scenario(&phone.port().to_string(), 2500)).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", scenario.to_str().unwrap(), "-i", "127.0.0.1"])
        .args(["-p", &uac_port.to_string()])
        .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));

    // Once the answer went through and the busy branch is gone: the caller and callee 1's
    // branch remain, and the caller-facing port is known.
    let (call_id, engine_port) = wait_for(Duration::from_secs(8), || {
        let call_id = ng.list().into_iter().next()?;
        let q = ng.query(&call_id).ok()?;
        let tags = q.get("tags")?.as_dict()?;
        if tags.len() != 2 {
            return None;
        }
        let branch = tags.iter().find_map(|(_, leg)| leg.str_at("via-branch"))?;
        assert!(!branch.is_empty());
        tags.iter().find_map(|(_, leg)| {
            let s = leg
                .get("medias")?
                .as_list()?
                .first()?
                .get("streams")?
                .as_list()?;
            s.iter().find_map(|s| {
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
            "no answered two-party call left\n{}\n---- kamailio ----\n{}\n---- uac ----\n{}",
            daemon.log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log"))
        )
    });
    let log = daemon.log_text();
    assert_eq!(log.matches("new branch of the call").count(), 2, "{log}");
    assert_eq!(log.matches("call branch deleted").count(), 1, "{log}");

    // RTP crosses to callee 1 (echoed) and back, through callee 1's branch.
    let engine: SocketAddr = ([127, 0, 0, 1], engine_port).into();
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(phone.send_next(engine));
        std::thread::sleep(Duration::from_millis(20));
    }
    phone
        .sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (mut echoed, mut buf) = (0, [0u8; 2048]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while echoed < sent.len() && Instant::now() < deadline {
        if let Ok((n, from)) = phone.sock.recv_from(&mut buf) {
            assert_eq!(from, engine);
            assert!(sent.iter().any(|p| p[..] == buf[..n]));
            echoed += 1;
        }
    }
    assert_eq!(echoed, sent.len(), "RTP round trip\n{}", daemon.log_text());

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
