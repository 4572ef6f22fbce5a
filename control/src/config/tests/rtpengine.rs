//! rtpengine's command lines and configuration files: short options, rtpengine.conf
//! sections and values, and how they map onto ngmedia's settings.

use super::*;

#[test]
fn rtpengine_short_options_and_equals_syntax() {
    let c = cli(&[
        "-i",
        "10.0.0.1",
        "-n",
        "127.0.0.1:2224",
        "-m",
        "31000",
        "-M",
        "31999",
        "-o",
        "5",
        "-s",
        "6",
        "-a",
        "7",
        "-d",
        "8",
        "-L",
        "4",
        "-E",
        "-f",
        "--config-file=none",
    ]);
    assert_eq!(c.config.as_deref(), Some("none"));
    let s = Settings::load(&c).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![iface("default", "10.0.0.1", None)]
    );
    assert_eq!(s.listen_ng.port(), 2224);
    assert_eq!((s.engine.port_min, s.engine.port_max), (31000, 31999));
    assert_eq!(
        [
            s.engine.timeout,
            s.engine.silent_timeout,
            s.engine.final_timeout,
            s.engine.delete_delay
        ],
        [5, 6, 7, 8].map(Duration::from_secs)
    );
    assert_eq!(s.log_level, LevelFilter::WARN);
}

#[test]
fn debian_rtpengine_conf() {
    let s = resolve_file(&[], DEBIAN_CONF).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![
            iface("internal", "10.0.0.5", None),
            iface("external", "192.0.2.10", Some("198.51.100.10"))
        ]
    );
    assert_eq!(s.listen_ng, "127.0.0.1:2223".parse().unwrap());
    assert_eq!(s.listen_http, "127.0.0.1:2225".parse().unwrap());
    assert_eq!(s.engine.timeout, Duration::from_secs(60));
    assert_eq!(s.engine.silent_timeout, Duration::from_secs(3600));
    assert_eq!((s.engine.port_min, s.engine.port_max), (30000, 40000));
    assert_eq!(s.log_level, LevelFilter::INFO);
    // recording-method=proc: the recording daemon's job, done by ngmedia itself (WAV).
    assert_eq!(s.recording.format, ngmedia_recordings::RecordingFormat::Wav);
    // `table = 0` (a kernel table): the fast path where the kernel allows.
    assert_eq!(s.engine.fast_path, FastPathMode::Auto);
    assert_eq!(
        s.warnings,
        vec![
            "config file test.conf: ignoring keys ngmedia does not support: listen-cli",
            "config file test.conf: recording-method=proc: ngmedia has no recording daemon, \
                 it writes the WAV files itself"
        ]
    );
}

#[test]
fn rtpengine_conf_other_section() {
    let s = resolve_file(&["--config-section", "rtpengine-testing"], DEBIAN_CONF).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![iface("default", "10.15.20.121", None)]
    );
    assert_eq!(s.listen_ng, "127.0.0.1:2223".parse().unwrap());
    assert_eq!(s.log_level, LevelFilter::DEBUG);
    assert_eq!(s.engine.fast_path, FastPathMode::Off);
    assert_eq!(s.warnings, Vec::<String>::new());
    let e = resolve_file(&["--config-section", "nope"], DEBIAN_CONF).unwrap_err();
    assert_eq!(e.to_string(), "config file test.conf: no [nope] section");
}

#[test]
fn interfaces_by_device_name_and_any() {
    // Debian's default: every address but loopback ones.
    let s = resolve_file(&[], "[rtpengine]\ninterface = any\n");
    if let Ok(s) = s {
        assert!(!s.engine.interfaces.is_empty());
        assert!(s.engine.interfaces.iter().all(|i| !i.local.is_loopback()));
    }
    let s = resolve_file(&[], "[rtpengine]\ninterface = lo;ext/lo!203.0.113.9\n").unwrap();
    let lo4 = iface("default", "127.0.0.1", None);
    assert!(
        s.engine.interfaces.contains(&lo4),
        "{:?}",
        s.engine.interfaces
    );
    assert!(s
        .engine
        .interfaces
        .contains(&iface("ext", "127.0.0.1", Some("203.0.113.9"))));
    let e = resolve_file(&[], "[rtpengine]\ninterface = nosuchdev0\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("interface default/nosuchdev0") && e.contains("network device"),
        "{e}"
    );
    let s = Settings::resolve(&cli(&["-i", "int/lo"]), None, vec![]).unwrap();
    assert!(s
        .engine
        .interfaces
        .contains(&iface("int", "127.0.0.1", None)));
}

#[test]
fn rtpengine_command_line_verbatim() {
    // The command line of rtpengine's own daemon tests (t/auto-daemon-tests.pl).
    let c = cli(&[
        "--config-file=none",
        "-t",
        "-1",
        "-i",
        "203.0.113.1",
        "-i",
        "2001:db8:4321::1",
        "-n",
        "2223",
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
        "--log-facility=daemon",
        "--no-fallback",
        "-T",
        "184",
    ]);
    let s = Settings::load(&c).unwrap();
    assert_eq!(s.engine.tos, 184);
    assert_eq!(
        s.engine.interfaces,
        vec![
            iface("default", "203.0.113.1", None),
            iface("default", "2001:db8:4321::1", None)
        ]
    );
    assert_eq!(s.listen_ng, "127.0.0.1:2223".parse().unwrap());
    assert_eq!(s.log_level, LevelFilter::DEBUG);
    // `--silence-detect=1`: 1 % of full scale, the default CN payload.
    let sd = s.engine.silence_detect.expect("silence detection on");
    assert_eq!(sd.threshold, 655);
    assert_eq!(sd.payload, ngmedia_codecs::cn::CnPayload::flat(32));
    // One warning, each ignored option named once, with why.
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    let w = &s.warnings[0];
    assert!(!w.contains("--silence-detect"), "{w}");
    for name in [
        "--listen-cli",
        "--listen-udp",
        "--log-facility",
        "--no-fallback",
    ] {
        assert_eq!(
            w.matches(&format!("{name} ")).count() + w.matches(&format!("{name},")).count(),
            1,
            "{name}: {w}"
        );
    }
    assert!(w.contains("kernel module"), "{w}");
    // `-t -1` / `--table=-1`: no kernel forwarding.
    assert_eq!(s.engine.fast_path, FastPathMode::Off);
}

#[test]
fn rtpengine_values_map_with_a_note() {
    let s = resolve_file(
        &[],
        "[rtpengine]\nrecording-format = eth\nrecording-method = pcap\nlog-format = parsable\n",
    )
    .unwrap();
    assert_eq!(
        s.recording.format,
        ngmedia_recordings::RecordingFormat::Pcap
    );
    assert_eq!(s.log_format, LogFormat::Text);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("recording-format=eth")));
    assert!(s.warnings.iter().any(|w| w.contains("log-format=parsable")));
    // ngmedia's own value wins over the mapped method.
    let s = resolve_file(
        &["--recording-format", "both"],
        "[rtpengine]\nrecording-method = proc\n",
    )
    .unwrap();
    assert_eq!(
        s.recording.format,
        ngmedia_recordings::RecordingFormat::Both
    );
    // An ignored key with a value of the wrong kind is still an error.
    let e = resolve_file(&[], "[rtpengine]\ntable = zero\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`table`") && e.contains("whole number"), "{e}");
}

#[test]
fn ini_syntax_errors() {
    let e = resolve_file(&[], "[rtpengine]\ntimeout 60\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config file test.conf: line 2: expected `key = value`, got `timeout 60`"
    );
    let e = resolve_file(&[], "timeout = 5\n[rtpengine]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside any [section]"), "{e}");
    let e = resolve_file(&[], "[rtpengine]\nforeground = maybe\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`foreground`"), "{e}");
}

#[test]
fn ini_later_keys_win() {
    let s = resolve_file(&[], "[rtpengine]\ntimeout = 5\ntimeout = 6\n").unwrap();
    assert_eq!(s.engine.timeout, Duration::from_secs(6));
}

#[test]
fn sample_rtpengine_conf_loads() {
    let sample = include_str!("../../../../samples/rtpengine.conf");
    let s = resolve_file(&[], sample).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![
            iface("internal", "127.0.0.1", None),
            iface("external", "127.0.0.2", Some("192.0.2.10"))
        ]
    );
    assert_eq!(s.engine.final_timeout, Duration::from_secs(10800));
    assert_eq!(s.engine.fast_path, FastPathMode::Off);
    assert_eq!(s.warnings, Vec::<String>::new());
    let t = resolve_file(&["--config-section", "rtpengine-testing"], sample).unwrap();
    assert_eq!((t.engine.port_min, t.engine.port_max), (31000, 31999));
    assert_eq!(t.log_level, LevelFilter::DEBUG);
}
