//! The services around the media: the LI listener, ng and HTTP transports, load limits,
//! webhooks and MQTT.

use super::*;

#[test]
fn li_listener_needs_a_credential() {
    let r = |args: &[&str]| Settings::resolve(&cli(args), None, Vec::new());
    let off = r(&[]).unwrap();
    assert_eq!(off.li.listen, None);
    assert_eq!(off.li.dir, PathBuf::from(DEFAULT_LI_DIR));
    assert!(matches!(
        r(&["--listen-li", "127.0.0.1:9443"]),
        Err(ConfigError::LiWithoutCredential)
    ));
    let s = r(&["--listen-li", "127.0.0.1:9443", "--li-token", "s3cret"]).unwrap();
    assert_eq!(s.li.listen, Some("127.0.0.1:9443".parse().unwrap()));
    assert_eq!(s.li.token.as_deref(), Some("s3cret"));
    assert!(matches!(
        r(&["--li-tls-cert", "c.pem"]),
        Err(ConfigError::LiTlsIncomplete)
    ));
    assert!(matches!(
        r(&["--li-tls-ca", "ca.pem"]),
        Err(ConfigError::LiCaWithoutCert)
    ));
    // Server-side TLS alone is no credential; with a CA it is mutual TLS.
    let tls = [
        "--listen-li",
        "9443",
        "--li-tls-cert",
        "c.pem",
        "--li-tls-key",
        "k.pem",
    ];
    assert!(matches!(r(&tls), Err(ConfigError::LiWithoutCredential)));
    let m = r(&[&tls[..], &["--li-tls-ca", "ca.pem"]].concat()).unwrap();
    assert_eq!(m.li.tls.unwrap().ca, Some(PathBuf::from("ca.pem")));
    assert!(matches!(
        r(&["--dtls-cert", "c.pem"]),
        Err(ConfigError::DtlsIncomplete)
    ));
    let d = r(&["--dtls-cert", "c.pem", "--dtls-key", "k.pem"]).unwrap();
    assert_eq!(
        d.dtls,
        Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
    );
    assert_eq!(r(&[]).unwrap().dtls, None);
    let f = r(&["--forward-to", "127.0.0.1:9000"]).unwrap();
    assert_eq!(f.forward_to, Some("127.0.0.1:9000".parse().unwrap()));
    assert!(cli_err(&["--forward-to", "0.0.0.0:9000"]).contains("destination"));
}

#[test]
fn transports_and_load_limits() {
    let r = |args: &[&str]| Settings::resolve(&cli(args), None, Vec::new());
    let off = r(&[]).unwrap();
    assert_eq!(off.transports.ng_rate_limit, Some(DEFAULT_NG_RATE_LIMIT));
    assert_eq!(
        r(&["--ng-rate-limit", "0"])
            .unwrap()
            .transports
            .ng_rate_limit,
        None
    );
    assert_eq!(
        r(&["--ng-rate-limit=150"])
            .unwrap()
            .transports
            .ng_rate_limit,
        Some(150)
    );
    assert_eq!(off.transports.listen_tcp_ng, None);
    assert_eq!(off.transports.https, None);
    assert_eq!(
        off.transports.http_ng,
        ngmedia_control::http::ng::HttpNgAccess::Open
    );
    assert_eq!(off.load_limits, Default::default());

    let on = r(&[
        "--listen-tcp-ng",
        "2224",
        "--listen-https",
        "127.0.0.1:8443",
        "--https-cert",
        "/c.pem",
        "--https-key",
        "/k.pem",
        "--http-ng",
        "token",
        "--max-sessions",
        "0",
        "--max-load",
        "1.5",
        "--max-cpu",
        "90",
        "--max-bandwidth",
        "1000000",
    ])
    .unwrap();
    assert_eq!(
        on.transports.listen_tcp_ng,
        Some("127.0.0.1:2224".parse().unwrap())
    );
    let https = on.transports.https.unwrap();
    assert_eq!(https.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(https.cert, PathBuf::from("/c.pem"));
    assert_eq!(
        on.transports.http_ng,
        ngmedia_control::http::ng::HttpNgAccess::Token
    );
    assert_eq!(on.load_limits.max_sessions, Some(0));
    assert_eq!(on.load_limits.max_load, Some(1.5));
    assert_eq!(on.load_limits.max_cpu, Some(90.0));
    assert_eq!(on.load_limits.max_bandwidth, Some(1_000_000));

    // rtpengine's "no limit" values.
    let none = r(&[
        "--max-sessions",
        "-1",
        "--max-load",
        "0",
        "--max-bandwidth",
        "0",
    ])
    .unwrap();
    assert_eq!(none.load_limits, Default::default());
    assert!(matches!(
        r(&["--listen-https", "8443"]),
        Err(ConfigError::HttpsWithoutCert)
    ));
    assert!(matches!(
        r(&[
            "--listen-https",
            "0.0.0.0:8443",
            "--https-cert",
            "/c",
            "--https-key",
            "/k"
        ]),
        Err(ConfigError::HttpWritesExposed(_))
    ));
    let warned = r(&["--https-cert", "/c"]).unwrap();
    assert!(warned.warnings.iter().any(|w| w.contains("listen-https")));
    assert!(Cli::try_parse_from(["ngmedia", "--max-sessions", "-2"]).is_err());
    assert!(Cli::try_parse_from(["ngmedia", "--max-cpu", "-1"]).is_err());
    assert!(Cli::try_parse_from(["ngmedia", "--http-ng", "maybe"]).is_err());

    // The same keys in an rtpengine.conf.
    let ini = "[rtpengine]\nlisten-tcp-ng = 127.0.0.1:2224\nmax-sessions = 5\nmax-cpu = 75.5\n";
    let from_ini = resolve_file(&[], ini).unwrap();
    assert_eq!(from_ini.load_limits.max_sessions, Some(5));
    assert_eq!(from_ini.load_limits.max_cpu, Some(75.5));
    assert!(from_ini.transports.listen_tcp_ng.is_some());
}

/// docs/configuration.md carries the option reference rendered from the option table;
/// `NGMEDIA_WRITE_DOCS=1` rewrites it instead of failing.
#[test]
fn webhook_extras_without_a_webhook_url_warn() {
    let load = |args: &[&str]| Settings::resolve(&cli(args), None, Vec::new()).unwrap();
    let s = load(&["--webhook-dtmf", "--mos-alarm", "3.5"]);
    assert_eq!(
        s.warnings,
        vec![
            "webhook-dtmf ignored: webhook-url is not set".to_string(),
            "mos-alarm ignored: webhook-url is not set".to_string(),
        ]
    );
    let s = load(&[
        "--webhook-url",
        "http://127.0.0.1:9/events",
        "--webhook-dtmf",
        "--mos-alarm",
        "3.5",
    ]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(s.webhook_dtmf);
    assert_eq!(s.mos_alarm, Some(3.5));
    let s = load(&[
        "--webhook-url",
        "http://127.0.0.1:9/",
        "--webhook-ca",
        "/etc/ca.pem",
    ]);
    assert_eq!(
        s.warnings,
        vec!["webhook-ca ignored: webhook-url is not an https URL".to_string()]
    );
    let s = load(&[
        "--webhook-url",
        "https://127.0.0.1:9/",
        "--webhook-ca",
        "/etc/ca.pem",
    ]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let hook = s.webhook.expect("the webhook");
    assert_eq!(hook.ca, Some(std::path::PathBuf::from("/etc/ca.pem")));
    assert_eq!(hook.tls_name.as_deref(), Some("127.0.0.1"));
}

#[test]
fn mqtt_options_with_rtpengine_defaults_and_checks() {
    use ngmedia_control::mqtt::{MqttTls, Scope};
    let load = |args: &[&str]| Settings::resolve(&cli(args), None, Vec::new());
    assert!(load(&[]).unwrap().mqtt.is_none());
    assert!(matches!(
        load(&["--mqtt-host", "broker"]),
        Err(ConfigError::MqttWithoutTopic)
    ));
    let m = load(&[
        "--mqtt-host",
        "broker",
        "--mqtt-publish-topic",
        "rtpe/stats",
    ])
    .unwrap()
    .mqtt
    .unwrap();
    assert_eq!(
        (m.host.as_str(), m.port, m.keepalive, m.qos),
        ("broker", 1883, 30, 0)
    );
    assert_eq!(m.interval, Duration::from_millis(5000));
    assert_eq!(m.scope, Scope::Global);
    assert!(m.client_id.starts_with("ngmedia-") && m.tls.is_none() && m.user.is_none());
    // The password goes with a user only, as rtpengine's.
    let m = load(&[
        "--mqtt-host",
        "b",
        "--mqtt-publish-topic",
        "t",
        "--mqtt-pass",
        "p",
    ])
    .unwrap()
    .mqtt
    .unwrap();
    assert_eq!((m.user, m.password), (None, None));
    // An rtpengine.conf with every option.
    let f = resolve_file(
        &[],
        "[rtpengine]\nmqtt-host = 10.0.0.9\nmqtt-port = 8883\nmqtt-id = rtpe1\n\
         mqtt-keepalive = 10\nmqtt-user = u\nmqtt-pass = p\nmqtt-cafile = /etc/ca.pem\n\
         mqtt-certfile = /etc/c.pem\nmqtt-keyfile = /etc/k.pem\nmqtt-tls-alpn = mqtt\n\
         mqtt-publish-qos = 2\nmqtt-publish-topic = rtpengine\nmqtt-publish-interval = 1000\n\
         mqtt-publish-scope = media\n",
    )
    .unwrap();
    let m = f.mqtt.unwrap();
    assert_eq!(
        (m.host.as_str(), m.port, m.client_id.as_str()),
        ("10.0.0.9", 8883, "rtpe1")
    );
    assert_eq!((m.keepalive, m.qos, m.scope), (10, 2, Scope::Media));
    assert_eq!(
        (m.user.as_deref(), m.password.as_deref()),
        (Some("u"), Some("p"))
    );
    assert_eq!(m.interval, Duration::from_millis(1000));
    assert_eq!(
        m.tls,
        Some(MqttTls {
            cafile: Some("/etc/ca.pem".into()),
            capath: None,
            certfile: Some("/etc/c.pem".into()),
            keyfile: Some("/etc/k.pem".into()),
            alpn: Some("mqtt".into()),
        })
    );
    assert!(cli_err(&["--mqtt-publish-qos", "3"]).contains("expected 0, 1 or 2"));
    assert!(cli_err(&["--mqtt-publish-scope", "calls"]).contains("global, summary, call"));
    cli_err(&["--mqtt-port", "70000"]);
    cli_err(&["--mqtt-keepalive", "-1"]);
    cli_err(&["--mqtt-publish-interval", "soon"]);
    // A client certificate needs its key, and both need a CA (TLS).
    for tls in [
        &["--mqtt-certfile", "/c.pem", "--mqtt-cafile", "/ca.pem"][..],
        &["--mqtt-keyfile", "/k.pem"],
    ] {
        let mut args = vec!["--mqtt-host", "b", "--mqtt-publish-topic", "t"];
        args.extend_from_slice(tls);
        assert!(
            matches!(load(&args), Err(ConfigError::MqttTlsIncomplete)),
            "{tls:?}"
        );
    }
}
