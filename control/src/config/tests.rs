use ngmedia_engine::core::config::FastPathMode;
use std::path::Path;
use std::time::Duration;

use super::file::parse_file;
use super::interfaces::{Host, InterfaceSpec};
use super::options::{self, Action, Value};
use super::parse::{parse_interface, parse_listen, parse_log_format, parse_log_level};
use super::reference;
use super::*;

mod ha;
mod option_docs;
mod rtpengine;
mod services;

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("ngmedia").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn cli_err(args: &[&str]) -> String {
    Cli::try_parse_from(std::iter::once("ngmedia").chain(args.iter().copied()))
        .expect_err("must be rejected")
        .to_string()
}

fn iface(name: &str, local: &str, adv: Option<&str>) -> Interface {
    Interface {
        name: name.into(),
        local: local.parse().unwrap(),
        advertised: adv.map(|a| a.parse().unwrap()),
    }
}

fn resolve_file(args: &[&str], text: &str) -> Result<Settings, ConfigError> {
    let cli = cli(args);
    let (layer, warnings) = parse_file(text, Path::new("test.conf"), &cli.config_section)?;
    Settings::resolve(&cli, Some(layer), warnings)
}

/// Debian's /etc/rtpengine/rtpengine.conf (rtpengine-daemon 10.5), comments trimmed,
/// with `interface = any` replaced by real addresses (ngmedia needs explicit addresses).
const DEBIAN_CONF: &str = "\
[rtpengine]

table = 0
# no-fallback = false
### separate multiple interfaces with semicolons:
# interface = internal/12.23.34.45;external/23.34.45.54
interface = internal/10.0.0.5;external/192.0.2.10!198.51.100.10

listen-ng = localhost:2223
# listen-tcp = 25060
listen-http = localhost:2225
listen-cli = localhost:2224

timeout = 60
silent-timeout = 3600
tos = 184
# delete-delay = 30
# final-timeout = 10800

port-min = 30000
port-max = 40000

recording-dir = /var/spool/rtpengine
recording-method = proc

[rtpengine-testing]
table = -1
interface = 10.15.20.121
listen-ng = 2223
foreground = true
log-stderr = true
log-level = 7
";

#[test]
fn defaults_without_flags_or_file() {
    let s = Settings::resolve(&cli(&[]), None, Vec::new()).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![iface("default", "127.0.0.1", None)]
    );
    assert_eq!((s.engine.port_min, s.engine.port_max), (30000, 40000));
    assert_eq!(s.engine.timeout, Duration::from_secs(60));
    assert_eq!(s.engine.silent_timeout, Duration::from_secs(3600));
    assert_eq!(s.engine.final_timeout, Duration::ZERO);
    assert_eq!(s.engine.delete_delay, Duration::from_secs(30));
    assert_eq!(s.engine.workers, 0);
    assert_eq!(s.listen_ng, "127.0.0.1:2223".parse().unwrap());
    assert_eq!(s.listen_http, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.log_level, LevelFilter::INFO);
    assert!(s.warnings.is_empty());
}

#[test]
fn every_flag_on_the_command_line() {
    let c = cli(&[
        "--interface",
        "pub/203.0.113.1!198.51.100.1",
        "-i",
        "priv/2001:db8::5",
        "--listen-ng",
        "[::1]:5060",
        "--listen-http",
        "9101",
        "--http-token",
        "cli-token",
        "--port-min",
        "20000",
        "--port-max",
        "20099",
        "--timeout",
        "2",
        "--silent-timeout",
        "30",
        "--final-timeout",
        "7200",
        "--delete-delay",
        "0",
        "--num-threads",
        "4",
        "--log-level",
        "7",
        "--log-stderr",
        "--foreground",
        "--config",
        "none",
    ]);
    let s = Settings::load(&c).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![
            iface("pub", "203.0.113.1", Some("198.51.100.1")),
            iface("priv", "2001:db8::5", None)
        ]
    );
    assert_eq!(s.listen_ng, "[::1]:5060".parse().unwrap());
    assert_eq!(s.listen_http, "127.0.0.1:9101".parse().unwrap());
    assert_eq!(s.http_token, BearerToken::new("cli-token"));
    assert_eq!((s.engine.port_min, s.engine.port_max), (20000, 20099));
    assert_eq!(s.engine.timeout, Duration::from_secs(2));
    assert_eq!(s.engine.silent_timeout, Duration::from_secs(30));
    assert_eq!(s.engine.final_timeout, Duration::from_secs(7200));
    assert_eq!(s.engine.delete_delay, Duration::ZERO);
    assert_eq!(s.engine.workers, 4);
    assert_eq!(s.log_level, LevelFilter::DEBUG);
    assert_eq!(s.config_file, None);
}

fn spec(name: &str, host: Host, adv: Option<&str>) -> InterfaceSpec {
    InterfaceSpec {
        name: name.into(),
        host,
        advertised: adv.map(|a| a.parse().unwrap()),
    }
}

fn addr(a: &str) -> Host {
    Host::Addr(a.parse().unwrap())
}

#[test]
fn interface_syntax() {
    assert_eq!(
        parse_interface("192.0.2.1").unwrap(),
        spec("default", addr("192.0.2.1"), None)
    );
    assert_eq!(
        parse_interface("ext/10.0.0.1!203.0.113.7").unwrap(),
        spec("ext", addr("10.0.0.1"), Some("203.0.113.7"))
    );
    assert_eq!(
        parse_interface("v6/[2001:db8::1]![2001:db8::2]").unwrap(),
        spec("v6", addr("2001:db8::1"), Some("2001:db8::2"))
    );
    assert_eq!(
        parse_interface("0.0.0.0!203.0.113.7").unwrap(),
        spec("default", addr("0.0.0.0"), Some("203.0.113.7"))
    );
    // Device names, `any` and host names are resolved at start-up.
    for (text, name, host) in [
        ("any", "default", "any"),
        ("eth0", "default", "eth0"),
        ("int/eth1", "int", "eth1"),
        ("pub/eth0:1", "pub", "eth0:1"),
        ("media.example.org", "default", "media.example.org"),
    ] {
        assert_eq!(
            parse_interface(text).unwrap(),
            spec(name, Host::Name(host.into()), None),
            "{text}"
        );
    }
    assert_eq!(
        parse_interface("ext/eth0!203.0.113.7").unwrap(),
        spec("ext", Host::Name("eth0".into()), Some("203.0.113.7"))
    );
    for (bad, needle) in [
        ("ext/", "not an IP address"),
        ("eth0!eth1", "not an IP address"),
        ("/10.0.0.1", "bad interface name"),
        ("10.0.0.1!", "not an IP address"),
        ("10.0.0.1!2001:db8::1", "same family"),
        ("0.0.0.0", "needs an advertised address"),
        ("10.0.0.1!0.0.0.0", "wildcard"),
        ("300.1.1.1", "not an IP address"),
        ("10.0.0.1 x", "not an IP address"),
    ] {
        let err = parse_interface(bad).expect_err(bad).to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn listen_syntax() {
    let ok = |s: &str| parse_listen(s).unwrap().to_string();
    assert_eq!(ok("2223"), "127.0.0.1:2223");
    assert_eq!(ok("localhost:2225"), "127.0.0.1:2225");
    assert_eq!(ok("0.0.0.0:22222"), "0.0.0.0:22222");
    assert_eq!(ok("[::1]:2223"), "[::1]:2223");
    for bad in [
        "0",
        "127.0.0.1",
        "127.0.0.1:0",
        "::1:2223",
        "example.org:2223",
        "70000",
        "",
    ] {
        assert!(parse_listen(bad).is_err(), "{bad}");
    }
    assert!(parse_listen("::1")
        .unwrap_err()
        .to_string()
        .contains("[ADDR]:PORT"));
}

#[test]
fn log_format_and_redaction_from_flags_and_file() {
    let s = resolve_file(&[], "").unwrap();
    assert_eq!((s.log_format, s.log_redact), (LogFormat::Text, false));
    let s = resolve_file(&[], "log-format = \"json\"\nlog-redact = true\n").unwrap();
    assert_eq!((s.log_format, s.log_redact), (LogFormat::Json, true));
    let s = resolve_file(
        &["--log-format", "TEXT", "--log-redact"],
        "log-format = \"json\"\n",
    )
    .unwrap();
    assert_eq!((s.log_format, s.log_redact), (LogFormat::Text, true));
    assert!(parse_log_format("xml").is_err());
    let err = resolve_file(&[], "log-format = \"xml\"\n").unwrap_err();
    assert!(err.to_string().contains("log-format"), "{err}");
}

#[test]
fn log_levels_map_syslog_numbers() {
    let expected = [
        LevelFilter::ERROR,
        LevelFilter::ERROR,
        LevelFilter::ERROR,
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
    ];
    for (n, want) in expected.into_iter().enumerate() {
        assert_eq!(parse_log_level(&n.to_string()).unwrap(), want, "{n}");
    }
    assert_eq!(parse_log_level("TRACE").unwrap(), LevelFilter::TRACE);
    assert_eq!(parse_log_level("warning").unwrap(), LevelFilter::WARN);
    assert!(parse_log_level("8").is_err());
    assert!(parse_log_level("loud").is_err());
}

#[test]
fn cli_rejects_bad_values_with_the_option_named() {
    let e = cli_err(&["--port-min", "abc"]);
    assert!(e.contains("--port-min") && e.contains("1-65535"), "{e}");
    let e = cli_err(&["--interface", "300.1.1.1"]);
    assert!(e.contains("--interface") && e.contains("300.1.1.1"), "{e}");
    let e = cli_err(&["--timeout", "0"]);
    assert!(e.contains("at least 1 second"), "{e}");
    let e = cli_err(&["--num-threads", "100000"]);
    assert!(e.contains("0-1024"), "{e}");
    let e = cli_err(&["--listen-ng", "::1"]);
    assert!(e.contains("[ADDR]:PORT"), "{e}");
    let e = cli_err(&["--table", "x"]);
    assert!(e.contains("--table") && e.contains("whole number"), "{e}");
    let e = cli_err(&["--no-such-option"]);
    assert!(e.contains("--no-such-option"), "{e}");
}

#[test]
fn dtx_and_jitter_buffer_options() {
    use ngmedia_engine::core::transcode::PlayoutConfig;
    let load = |args: &[&str]| Settings::resolve(&cli(args), None, Vec::new()).unwrap();
    assert_eq!(load(&[]).engine.playout, PlayoutConfig::default());
    assert!(!load(&[]).engine.playout.enabled(), "off by default");
    let p = load(&[
        "--dtx-delay=10",
        "--dtx-cn-params=10",
        "--dtx-cn-params=120",
        "--max-dtx=0",
        "--dtx-buffer=4",
        "--dtx-lag=60",
        "--dtx-shift=0",
        "--amr-dtx=CN",
        "--jitter-buffer=3",
    ])
    .engine
    .playout;
    let mut cn = ngmedia_codecs::cn::CnPayload::flat(10);
    cn.coeffs[0] = 120;
    cn.order = 1;
    assert_eq!(
        p,
        PlayoutConfig {
            dtx_delay_ms: 10,
            jitter_packets: 3,
            max_dtx_s: None,
            buffer_packets: 4,
            lag_ms: 60,
            shift_ms: 0,
            cn: Some(cn),
            amr_cn: true,
        }
    );
    // rtpengine.conf spelling: the CN bytes `;`-separated.
    let f = resolve_file(&[], "[rtpengine]\ndtx-delay = 20\ndtx-cn-params = 30;100\n").unwrap();
    assert_eq!(f.engine.playout.dtx_delay_ms, 20);
    assert_eq!(
        f.engine.playout.cn.map(|c| (c.level, c.order)),
        Some((30, 1))
    );
    let e = cli_err(&["--amr-dtx", "loud"]);
    assert!(e.contains("--amr-dtx") && e.contains("native or CN"), "{e}");
    let e = cli_err(&["--dtx-cn-params", "200"]);
    assert!(e.contains("level 0-127"), "{e}");
    let e = cli_err(&["--jitter-buffer", "-1"]);
    assert!(e.contains("packets"), "{e}");
}

#[test]
fn port_range_validation() {
    let err = |args: &[&str]| {
        Settings::resolve(&cli(args), None, Vec::new())
            .expect_err("invalid")
            .to_string()
    };
    assert_eq!(
        err(&["--port-min", "40000", "--port-max", "30000"]),
        "port-min (40000) is greater than port-max (30000)"
    );
    assert!(err(&["--port-min", "30001"]).contains("must be even"));
    assert!(err(&["--port-min", "30000", "--port-max", "30002"]).contains("too small"));
    // Exactly two pairs is the smallest usable range.
    let s = Settings::resolve(
        &cli(&["--port-min", "30000", "--port-max", "30003"]),
        None,
        vec![],
    )
    .unwrap();
    assert_eq!((s.engine.port_min, s.engine.port_max), (30000, 30003));
}

#[test]
fn duplicate_interface_rejected() {
    let e =
        Settings::resolve(&cli(&["-i", "10.0.0.1", "-i", "10.0.0.1"]), None, vec![]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "interface default/10.0.0.1 is configured twice"
    );
    // Same name, different addresses: a pool, as in rtpengine (e.g. IPv4 + IPv6).
    let s = Settings::resolve(
        &cli(&["-i", "pub/10.0.0.1", "-i", "pub/2001:db8::1"]),
        None,
        vec![],
    )
    .unwrap();
    assert_eq!(s.engine.interfaces.len(), 2);
}

#[test]
fn wildcard_interface_warns() {
    let s = Settings::resolve(&cli(&["-i", "0.0.0.0!203.0.113.7"]), None, vec![]).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0].contains("default/0.0.0.0!203.0.113.7"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn toml_file_with_every_key() {
    let text = r#"
interface = ["pub/203.0.113.1!198.51.100.1", "priv/10.1.1.1"]
listen-ng = "127.0.0.1:12223"
listen-http = "127.0.0.1:18080"
http-token = "file-token"
port-min = 32000
port-max = 32999
timeout = 10
silent-timeout = 20
final-timeout = 30
delete-delay = 5
num-threads = 2
log-level = "debug"
log-stderr = true
foreground = false
"#;
    let s = resolve_file(&[], text).unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![
            iface("pub", "203.0.113.1", Some("198.51.100.1")),
            iface("priv", "10.1.1.1", None)
        ]
    );
    assert_eq!(s.listen_ng.port(), 12223);
    assert_eq!(s.listen_http.port(), 18080);
    assert_eq!(s.http_token, BearerToken::new("file-token"));
    assert_eq!((s.engine.port_min, s.engine.port_max), (32000, 32999));
    assert_eq!(s.engine.timeout, Duration::from_secs(10));
    assert_eq!(s.engine.silent_timeout, Duration::from_secs(20));
    assert_eq!(s.engine.final_timeout, Duration::from_secs(30));
    assert_eq!(s.engine.delete_delay, Duration::from_secs(5));
    assert_eq!(s.engine.workers, 2);
    assert_eq!(s.log_level, LevelFilter::DEBUG);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn http_writes_off_loopback_need_a_token() {
    let e = resolve_file(&["--listen-http", "0.0.0.0:8080"], "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "listen-http 0.0.0.0:8080 is not a loopback address and no http-token is set: \
             anyone who can reach it could end calls. Set --http-token (or http-token in the \
             config file, or NGMEDIA_HTTP_TOKEN), or listen on 127.0.0.1"
    );
    // An empty token is no token.
    let text = "listen-http = \"192.0.2.1:8080\"\nhttp-token = \"\"\n";
    assert!(matches!(
        resolve_file(&[], text),
        Err(ConfigError::HttpWritesExposed(_))
    ));
    let s = resolve_file(&["--http-token", "t"], text).unwrap();
    assert_eq!(s.http_token, BearerToken::new("t"));
    let s = resolve_file(
        &[],
        "listen-http = \"192.0.2.1:8080\"\nhttp-token = \"f\"\n",
    )
    .unwrap();
    assert_eq!(s.http_token, BearerToken::new("f"));
    // Loopback, IPv4 or IPv6, is fine without one.
    for addr in ["127.0.0.1:8080", "127.0.0.2:1", "[::1]:8080"] {
        let s = resolve_file(&["--listen-http", addr], "").unwrap();
        assert_eq!(s.http_token, None);
    }
    // The token never shows in debug output of the settings.
    let s = resolve_file(&["--http-token", "hunter2"], "").unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn toml_single_interface_string_and_numeric_strings() {
    let s = resolve_file(&[], "interface = \"10.2.2.2\"\nport-min = \"30100\"\n").unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![iface("default", "10.2.2.2", None)]
    );
    assert_eq!(s.engine.port_min, 30100);
}

#[test]
fn unsupported_keys_are_listed_in_one_warning() {
    let s = resolve_file(
        &[],
        "table = -1\nredis-write = \"127.0.0.1:6379/5\"\ntimeout = 9\ntos = 184\n",
    )
    .unwrap();
    assert_eq!(s.engine.timeout, Duration::from_secs(9));
    assert_eq!(s.engine.tos, 184);
    // rtpengine's `table = -1` is `--fast-path=off`.
    assert_eq!(s.engine.fast_path, FastPathMode::Off);
    assert_eq!(
        s.warnings,
        vec!["config file test.conf: ignoring keys ngmedia does not support: redis-write"]
    );
}

#[test]
fn toml_errors_name_file_and_key() {
    let e = resolve_file(&[], "port-min = 70000\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config file test.conf: invalid value for `port-min`: expected a port number 1-65535"
    );
    let e = resolve_file(&[], "interface = [\"10.0.0.1\", \"10.0.0.300\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`interface`") && e.contains("10.0.0.300"), "{e}");
    // A name is looked up at start-up; one that is nothing names itself.
    let e = resolve_file(&[], "interface = [\"10.0.0.1\", \"nope\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("interface default/nope"), "{e}");
    let e = resolve_file(&[], "timeout = [1, 2]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("single value"), "{e}");
    let e = resolve_file(&[], "timeout = = 3\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config file test.conf: "), "{e}");
    let e = resolve_file(&[], "[server]\nport = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`server` must be"), "{e}");
}

#[test]
fn flags_override_file_and_file_overrides_defaults() {
    let text = "[rtpengine]\ninterface = 10.0.0.1;10.0.0.2\ntimeout = 10\nport-min = 31000\n\
                    port-max = 31999\nlisten-ng = 2300\n";
    let s = resolve_file(
        &["--timeout", "3", "-i", "10.9.9.9", "--port-max", "31500"],
        text,
    )
    .unwrap();
    assert_eq!(
        s.engine.interfaces,
        vec![iface("default", "10.9.9.9", None)]
    );
    assert_eq!(s.engine.timeout, Duration::from_secs(3));
    assert_eq!((s.engine.port_min, s.engine.port_max), (31000, 31500));
    assert_eq!(s.listen_ng.port(), 2300);
    // Untouched by both: default.
    assert_eq!(s.engine.delete_delay, Duration::from_secs(30));

    // Validation applies to the merged result: file min with flag max.
    let e = resolve_file(&["--port-max", "30000"], text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "port-min (31000) is greater than port-max (30000)"
    );
}

#[test]
fn load_reads_files_from_disk() {
    let dir = std::env::temp_dir().join(format!("ngmedia-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("ngmedia.toml");
    std::fs::write(&toml, "timeout = 11\n").unwrap();
    let s = Settings::load(&cli(&["--config", toml.to_str().unwrap()])).unwrap();
    assert_eq!(s.engine.timeout, Duration::from_secs(11));
    assert_eq!(s.config_file.as_deref(), Some(toml.as_path()));

    let conf = dir.join("rtpengine.conf");
    std::fs::write(&conf, DEBIAN_CONF).unwrap();
    let s = Settings::load(&cli(&[
        "--config-file",
        conf.to_str().unwrap(),
        "-i",
        "127.0.0.1",
    ]))
    .unwrap();
    assert_eq!(s.listen_http.port(), 2225);

    let missing = dir.join("missing.toml");
    let e = Settings::load(&cli(&["--config", missing.to_str().unwrap()])).unwrap_err();
    assert!(e
        .to_string()
        .starts_with(&format!("cannot read config file {}", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sample_toml_documents_the_defaults() {
    let sample = include_str!("../../../samples/ngmedia.toml");
    let file_keys: Vec<&str> = options::all()
        .filter(|o| matches!(o.action, Action::Set(_)))
        .map(|o| o.long)
        .collect();
    // Uncomment every `# key = value` line: the result must be exactly the defaults.
    let uncommented: String = sample
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| file_keys.iter().any(|k| l.starts_with(&format!("{k} = "))))
        .map(|l| format!("{l}\n"))
        .collect();
    let keys: Vec<&str> = uncommented
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(keys, file_keys, "sample must show every key once, in order");
    let from_sample = resolve_file(&[], &uncommented).unwrap();
    let defaults = Settings::resolve(&cli(&[]), None, Vec::new()).unwrap();
    assert_eq!(
        format!("{:?}", from_sample.engine),
        format!("{:?}", defaults.engine)
    );
    assert_eq!(from_sample.listen_ng, defaults.listen_ng);
    assert_eq!(from_sample.listen_http, defaults.listen_http);
    assert_eq!(from_sample.http_token, None);
    assert_eq!(from_sample.log_level, defaults.log_level);
    assert_eq!(from_sample.recording, defaults.recording);
    assert_eq!(from_sample.media, defaults.media);
    assert_eq!(from_sample.li, defaults.li);
    assert_eq!(from_sample.forward_to, None);
    assert_eq!(from_sample.ha, None);
    assert_eq!(from_sample.transports, defaults.transports);
    assert_eq!(from_sample.load_limits, defaults.load_limits);
    assert!(from_sample.warnings.is_empty());
    // As shipped (all commented out) it changes nothing either.
    let shipped = resolve_file(&[], sample).unwrap();
    assert_eq!(
        format!("{:?}", shipped.engine),
        format!("{:?}", defaults.engine)
    );
}
