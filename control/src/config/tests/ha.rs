//! Redis high availability and the DTLS certificate shared by an HA group.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

#[test]
fn redis_ha_is_off_by_default_and_standby_needs_redis() {
    let s = Settings::resolve(&cli(&[]), None, Vec::new()).unwrap();
    assert_eq!(s.ha, None);
    let e = Settings::resolve(&cli(&["--standby"]), None, Vec::new()).unwrap_err();
    assert!(matches!(e, ConfigError::StandbyWithoutRedis), "{e}");
}

#[test]
fn redis_ha_options_from_the_command_line() {
    let s = Settings::resolve(
        &cli(&[
            "--redis",
            "old@10.0.0.9:6380/4",
            "--redis-password",
            "new",
            "--redis-prefix",
            "media",
            "--instance-id",
            "m-1",
            "--standby",
            "--redis-heartbeat-ttl",
            "6",
            "--redis-sync-interval",
            "2",
        ]),
        None,
        Vec::new(),
    )
    .unwrap();
    let ha = s.ha.unwrap();
    assert_eq!(ha.redis.host, "10.0.0.9");
    assert_eq!((ha.redis.port, ha.redis.db), (6380, 4));
    assert_eq!(ha.redis.password.as_deref(), Some("new"));
    assert_eq!(ha.prefix, "media");
    assert_eq!(ha.instance_id, "m-1");
    assert!(ha.standby);
    assert_eq!(ha.role(), "standby");
    assert_eq!(ha.heartbeat_ttl, Duration::from_secs(6));
    assert_eq!(ha.sync_interval, Duration::from_secs(2));
}

#[test]
fn redis_ha_defaults() {
    let s = Settings::resolve(&cli(&["--redis", "127.0.0.1:6379"]), None, Vec::new()).unwrap();
    let ha = s.ha.unwrap();
    assert_eq!(ha.redis.db, 0);
    assert_eq!(ha.redis.password, None);
    assert_eq!(ha.prefix, "ngmedia");
    assert_eq!(
        ha.instance_id,
        ngmedia_control::state_store::redis::config::default_instance_id()
    );
    assert!(!ha.standby);
    assert_eq!(ha.heartbeat_ttl, Duration::from_secs(3));
    assert_eq!(ha.sync_interval, Duration::from_secs(1));
}

#[test]
fn redis_ha_bad_values_are_rejected() {
    assert!(cli_err(&["--redis", "127.0.0.1"]).contains("port"));
    assert!(cli_err(&["--redis", "127.0.0.1:6379/x"]).contains("database"));
    assert!(cli_err(&["--redis-heartbeat-ttl", "0"]).contains("at least 1"));
    assert!(cli_err(&["--redis-sync-interval", "0"]).contains("at least 1"));
    assert!(cli_err(&["--instance-id", "a b"]).contains("spaces"));
    assert!(cli_err(&["--redis-prefix", ""]).contains("empty"));
}

#[test]
fn redis_ha_from_toml_and_rtpengine_conf() {
    let toml = "redis = \"pw@127.0.0.1:6379/2\"\nredis-prefix = \"p\"\ninstance-id = \"t1\"\n\
                standby = true\nredis-heartbeat-ttl = 4\nredis-sync-interval = 3\n";
    let ha = resolve_file(&[], toml).unwrap().ha.unwrap();
    assert_eq!(ha.redis.password.as_deref(), Some("pw"));
    assert_eq!(ha.redis.db, 2);
    assert_eq!((ha.prefix.as_str(), ha.instance_id.as_str()), ("p", "t1"));
    assert!(ha.standby);
    assert_eq!(ha.heartbeat_ttl, Duration::from_secs(4));
    assert_eq!(ha.sync_interval, Duration::from_secs(3));
    // The command line wins over the file.
    let ha = resolve_file(&["--instance-id", "cli", "--redis-password", "x"], toml)
        .unwrap()
        .ha
        .unwrap();
    assert_eq!(ha.instance_id, "cli");
    assert_eq!(ha.redis.password.as_deref(), Some("x"));

    let conf = "[rtpengine]\ninterface = 10.0.0.5\nredis = 192.0.2.7:6379/5\nredis-write = 192.0.2.7:6379/6\n";
    let s = resolve_file(&[], conf).unwrap();
    let ha = s.ha.unwrap();
    assert_eq!((ha.redis.host.as_str(), ha.redis.db), ("192.0.2.7", 5));
    assert!(
        s.warnings.iter().any(|w| w.contains("redis-write")),
        "{:?}",
        s.warnings
    );
    let e = resolve_file(&[], "[rtpengine]\ninterface = 10.0.0.5\nredis = nowhere\n").unwrap_err();
    assert!(e.to_string().contains("`redis`"), "{e}");
    // Empty means off.
    assert_eq!(resolve_file(&[], "redis = \"\"\n").unwrap().ha, None);
}

#[test]
fn dtls_certificate_from_the_file() {
    let toml = "dtls-cert = \"/etc/ngmedia/dtls.pem\"\ndtls-key = \"/etc/ngmedia/dtls.key\"\n";
    let s = resolve_file(&[], toml).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(
        s.dtls,
        Some((
            PathBuf::from("/etc/ngmedia/dtls.pem"),
            PathBuf::from("/etc/ngmedia/dtls.key")
        ))
    );
    assert!(matches!(
        resolve_file(&[], "dtls-key = \"k.pem\"\n"),
        Err(ConfigError::DtlsIncomplete)
    ));
    assert_eq!(resolve_file(&[], "dtls-cert = \"\"\n").unwrap().dtls, None);
}
