//! rtpengine's own command lines start ngmedia unchanged: short options, options ngmedia does
//! not act on (named once in a start-up warning), network device names for interfaces, and
//! an rtpengine.conf with keys of rtpengine's that mean something else here.

use std::time::Duration;

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::Daemon;

/// The options of rtpengine's `t/auto-daemon-tests.pl`, plus the runner's additions, with
/// this test's own ports and `lo` for the interface.
fn rtpengine_argv(ng: &str, http: &str, min: u16, max: u16, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--config-file=none",
        "-t",
        "-1",
        "-i",
        "lo",
        "-n",
        ng,
        "-c",
        "12345",
        "-f",
        "-L",
        "7",
        "-E",
        "-u",
        "2222",
        "--silence-detect=1",
        "--table=-1",
        "--foreground",
        "--log-facility=daemon",
        "--no-fallback",
        "-T",
        "184",
        "-G",
        "60",
        "--listen-http",
        http,
        "-m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(min.to_string());
    v.push("-M".into());
    v.push(max.to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn rtpengine_command_line_starts_and_answers_ng() {
    let pidfile = std::env::temp_dir().join(format!("ngmedia-rtpe-cli-{}.pid", std::process::id()));
    let pid_arg = pidfile.to_str().unwrap().to_string();
    let mut daemon = Daemon::start_verbatim(|p| {
        rtpengine_argv(
            &p.ng.to_string(),
            &p.http.to_string(),
            p.port_min,
            p.port_max,
            &["-p", &pid_arg],
        )
    });
    let ng = daemon.client();
    let reply = ng.offer(
        "rtpe-cli-1",
        "caller",
        &audio_sdp("127.0.0.1".parse().unwrap(), 4000, 1, "sendrecv"),
    );
    let sdp = parse_reply_sdp(&reply);
    assert_eq!(sdp.audio_addr().ip().to_string(), "127.0.0.1");
    assert!(sdp.audio().port >= daemon.port_min && sdp.audio().port <= daemon.port_max);

    // Every ignored option is named once, in one warning.
    let (_, warning) = daemon
        .wait_for_log("accepted and ignored", Duration::from_secs(2))
        .expect("a warning naming the ignored options");
    for name in [
        "--listen-cli",
        "--listen-udp",
        "--log-facility",
        "--no-fallback",
        "--graphite-interval",
    ] {
        let count = warning
            .split([' ', ',', ';'])
            .filter(|w| *w == name)
            .count();
        assert_eq!(count, 1, "{name} in {warning}");
    }
    let log = daemon.log_text();
    assert_eq!(log.matches("accepted and ignored").count(), 1, "{log}");
    // Acting options act: the debug level (-L 7) and the pid file (-p); -T (tos) and
    // --silence-detect act too.
    assert!(!warning.contains("--tos"), "{warning}");
    // `--table -1` is the fast path's off switch.
    assert!(!warning.contains("--table"), "{warning}");
    assert!(!warning.contains("--silence-detect"), "{warning}");
    assert!(log.contains("DEBUG"), "{log}");
    let pid = std::fs::read_to_string(&pidfile).expect("pid file written");
    assert_eq!(pid.trim(), daemon.pid().to_string());
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
    assert!(!pidfile.exists(), "pid file removed at exit");
}

#[test]
fn device_names_resolve_to_the_device_addresses() {
    // `lo` gives 127.0.0.1 (and ::1 where the host has it); a named interface on `lo` with an
    // advertised address; the same device twice under two names is two interfaces.
    let daemon = Daemon::start_verbatim(|p| {
        vec![
            "--config-file=none".into(),
            "-i".into(),
            "lo".into(),
            "-i".into(),
            "pub/lo!203.0.113.77".into(),
            "-n".into(),
            p.ng.to_string(),
            format!("--listen-http={}", p.http),
            "-m".into(),
            p.port_min.to_string(),
            "-M".into(),
            p.port_max.to_string(),
        ]
    });
    let (_, ready) = daemon
        .wait_for_log("ready", Duration::from_secs(2))
        .expect("ready line");
    assert!(ready.contains("default/127.0.0.1"), "{ready}");
    assert!(ready.contains("pub/127.0.0.1!203.0.113.77"), "{ready}");
    let ng = daemon.client();
    let offer = audio_sdp("127.0.0.1".parse().unwrap(), 4000, 1, "sendrecv");
    let plain = parse_reply_sdp(&ng.offer("dev-1", "a", &offer));
    assert_eq!(plain.audio_addr().ip().to_string(), "127.0.0.1");
    let public = parse_reply_sdp(&ng.ok(ngmedia_tests::dict! {
        "command" => "offer", "call-id" => "dev-2", "from-tag" => "a", "sdp" => offer.as_str(),
        "replace" => vec!["origin", "session-connection"], "ICE" => "remove",
        "direction" => vec!["pub", "pub"],
    }));
    assert_eq!(public.audio_addr().ip().to_string(), "203.0.113.77");
}

#[test]
fn rtpengine_conf_values_map_with_a_note_and_ignored_keys_are_named_once() {
    let dir = std::env::temp_dir().join(format!("ngmedia-rtpe-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("rtpengine.conf");
    std::fs::write(
        &conf,
        format!(
            "[rtpengine]\ntable = 0\nno-fallback = false\ninterface = lo\n\
             recording-dir = {}\nrecording-method = pcap\nrecording-format = eth\n\
             log-facility = local1\ngraphite-prefix = x\nlog-format = parsable\n",
            dir.join("rec").display()
        ),
    )
    .unwrap();
    let conf_arg = conf.to_str().unwrap().to_string();
    let daemon = Daemon::start_verbatim(|p| {
        vec![
            format!("--config-file={conf_arg}"),
            "-n".into(),
            p.ng.to_string(),
            format!("--listen-http={}", p.http),
            "-m".into(),
            p.port_min.to_string(),
            "-M".into(),
            p.port_max.to_string(),
        ]
    });
    let log = daemon.log_text();
    let ignored: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ignoring keys"))
        .collect();
    assert_eq!(ignored.len(), 1, "{log}");
    for key in ["no-fallback", "log-facility", "graphite-prefix"] {
        assert!(ignored[0].contains(key), "{key}: {}", ignored[0]);
    }
    // `table` sets the fast path (a table number is `auto`, -1 off).
    assert!(!ignored[0].contains("table"), "{}", ignored[0]);
    assert!(log.contains("recording-format=eth"), "{log}");
    assert!(log.contains("log-format=parsable"), "{log}");
    assert!(daemon
        .client()
        .request(ngmedia_tests::dict! { "command" => "ping" })
        .is_ok());
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
