//! Kamailio's `rtpengine` module drives ngmedia over WebSocket: `rtpengine_sock` entries
//! `ws://` (the HTTP listener) and `wss://` (the HTTPS listener, a self-signed certificate as
//! Kamailio's `lwsc` client accepts), subprotocol `ng.rtpengine.com`. A real call goes through
//! Kamailio (SIPp caller and callee): offer, answer and delete travel over the WebSocket, the
//! caller's RTP crosses the engine and comes back, and the BYE removes the call. The ng UDP
//! port is not in Kamailio's configuration at all.
//!
//! Needs the Debian packages `kamailio`, `kamailio-lwsc-modules` and `sip-tester`
//! (`.ci/run` installs them). Everything runs on 127.0.0.1.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_config, kamailio_modules, start_kamailio, tail,
    uac_scenario, wait_listening, Guard,
};
use ngmedia_tests::{wait_for, Daemon, RtpEndpoint};

/// How long the call stays up after its ACK.
const HOLD_MS: u64 = 2500;

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The module's parameters for one WebSocket engine at `url`.
fn websocket_engine(url: &str) -> String {
    assert!(
        kamailio_modules().join("lwsc.so").is_file(),
        "Kamailio's lwsc module is missing: install the Debian package kamailio-lwsc-modules"
    );
    format!(
        "loadmodule \"lwsc.so\"\n\
         modparam(\"rtpengine\", \"wsapi\", \"lwsc\")\n\
         modparam(\"rtpengine\", \"rtpengine_sock\", \"{url}\")"
    )
}

/// One call through Kamailio configured with `rtpengine_params`; checks media and teardown.
fn call_through_kamailio(daemon: &Daemon, rtpengine_params: &str, dir: &Path) {
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    fs::create_dir_all(dir).unwrap();
    let ng = daemon.client();
    let (sip_port, uas_port, uas_media, uac_port) =
        (free_port(), free_port(), free_media_port(), free_port());
    let mut phone = RtpEndpoint::new(0x5753_0001);

    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_config(sip_port, uas_port, rtpengine_params, None),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, dir, sip_port);
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(dir)
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &uas_port.to_string()])
        .args([
            "-m",
            "1",
            "-rtp_echo",
            "-mp",
            &uas_media.to_string(),
            "-nostdin",
        ]);
    let uas = Guard::spawn(cmd, "sipp uas", &dir.join("uas.log"));
    assert!(
        wait_listening(uas_port, Duration::from_secs(10)),
        "sipp uas does not listen on {uas_port}:\n{}",
        uas.log_tail()
    );
    let scenario = dir.join("uac.xml");
    fs::write(&scenario, uac_scenario(&phone.port().to_string(), HOLD_MS)).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &uac_port.to_string()])
        .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));
    let logs = || {
        format!(
            "{}\n---- kamailio ----\n{}\n---- sipp uac ----\n{}",
            daemon.log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log"))
        )
    };

    // Once the answer went through, the caller-facing port is in the call's query.
    let (call_id, engine_port) = wait_for(Duration::from_secs(8), || {
        let call_id = ng.list().into_iter().next()?;
        let q = ng.query(&call_id).ok()?;
        let tags = q.get("tags")?.as_dict()?;
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
    .unwrap_or_else(|| panic!("no answered call with the caller's media\n{}", logs()));

    // The caller's RTP crosses the engine to the callee, which echoes it back.
    let engine: SocketAddr = ([127, 0, 0, 1], engine_port).into();
    phone.drain();
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(phone.send_next(engine));
        std::thread::sleep(Duration::from_millis(10));
    }
    let echoed = phone.recv_many(sent.len(), Duration::from_secs(2));
    assert_eq!(echoed.len(), sent.len(), "RTP round trip\n{}", logs());
    for (packet, from) in echoed {
        assert_eq!(from, engine);
        assert!(sent.contains(&packet));
    }

    // The BYE's delete ends the call (delete-delay 0).
    let status = wait_for(
        Duration::from_millis(HOLD_MS) + Duration::from_secs(10),
        || uac.exited(),
    )
    .expect("caller scenario did not finish");
    assert!(status.success(), "SIPp caller failed: {status}\n{}", logs());
    let gone = wait_for(Duration::from_secs(3), || {
        let reply = ng.query(&call_id).ok()?;
        (reply.str_at("result") == Some("error")).then_some(())
    });
    assert!(gone.is_some(), "call still present after BYE\n{}", logs());

    // All three commands came over the WebSocket (Kamailio knows no other way here).
    let text = daemon.http_client().metrics();
    for command in ["offer", "answer", "delete"] {
        assert_eq!(
            metric(
                &text,
                &format!("ngmedia_ng_requests_total{{command=\"{command}\",result=\"ok\"}}")
            ),
            Some(1.0),
            "{command}\n{}",
            logs()
        );
    }
    assert!(
        daemon.log_text().contains("ng WebSocket connection opened"),
        "{}",
        logs()
    );
}

#[test]
fn kamailio_drives_a_call_over_websocket() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("ngmedia-kamailio-ws-{}", std::process::id()));
    let daemon = Daemon::start(&["--delete-delay", "0"]);
    let params = websocket_engine(&format!("ws://{}/ng", daemon.http));
    call_through_kamailio(&daemon, &params, &dir);
    eprintln!("ws:// call took {:?}", started.elapsed());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn kamailio_drives_a_call_over_secure_websocket() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("ngmedia-kamailio-wss-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let (cert, key) = ngmedia_tests::dtls::certificate("ngmedia-wss");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let https: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let daemon = Daemon::start(&[
        "--delete-delay",
        "0",
        "--listen-https",
        &https.to_string(),
        "--https-cert",
        cert_path.to_str().unwrap(),
        "--https-key",
        key_path.to_str().unwrap(),
    ]);
    let params = websocket_engine(&format!("wss://{https}/"));
    call_through_kamailio(&daemon, &params, &dir.join("sip"));
    eprintln!("wss:// call took {:?}", started.elapsed());
    let _ = fs::remove_dir_all(&dir);
}
