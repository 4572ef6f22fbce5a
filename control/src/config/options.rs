//! The option table: every option ngmedia takes, on the command line and in a configuration
//! file, in one place. `--help`, the command-line parser (`cli`), the file reader (`file`) and
//! the option reference in docs/configuration.md are all made from it or checked against it,
//! so they cannot drift apart.
//!
//! The table holds ngmedia's own options and every option rtpengine (10.5 and current) has, so
//! an rtpengine command line or rtpengine.conf works unchanged. An option either
//! - **acts** (`Action::Set`): its setter parses the value into a [`Layer`] (one layer for the
//!   command line, one for the file; `resolve` merges them), or
//! - is **ignored** (`Action::Ignore`): the value is checked (numbers must be numbers) and the
//!   option is named in one warning at start-up, with the reason ngmedia does not act on it, or
//! - is used **before** the layers exist (`Action::Startup`: config file, version, codecs).
//!
//! To make an ignored rtpengine option act: add a field to [`Layer`], replace its
//! `ignored(…)` entry with an `Opt { action: Action::Set(|l, v| …), … }`, then read the field
//! in `resolve`. The file key and the command-line flag then both work. Its help text goes to
//! `--help` and to the option reference of docs/configuration.md, which is rendered from this
//! table (`reference.rs`; a new option is listed under the section that names it there, else
//! under "Other options"): run `NGMEDIA_WRITE_DOCS=1 cargo test -p ngmedia-control
//! configuration_reference` to rewrite the page; the test fails while it is stale.
//!
//! Short options are rtpengine's own (its source, which differs from its manual in places:
//! `-T` is `--tos`, `-N` is `--listen-tcp-ng`, `-G` is `--graphite-interval`).

use std::path::PathBuf;

use ngmedia_control::events::WebhookTarget;
use ngmedia_control::mqtt::Scope;
use ngmedia_engine::core::latch::EndpointLearning;
use ngmedia_recordings::RecordingFormat;

use super::parse::{
    parse_bool, parse_destination, parse_ha_name, parse_http_ng, parse_interface, parse_listen,
    parse_log_format, parse_log_level, parse_max_bandwidth, parse_max_float, parse_max_sessions,
    parse_mos_alarm, parse_ng_rate_limit, parse_port, parse_positive_secs, parse_redis, parse_secs,
    parse_threads, parse_tos,
};
use super::{invalid, InvalidValue, Layer};
use crate::logging::LogFormat;

/// Stores one value of an acting option into a layer. Flags get `true`/`false`; options
/// that may repeat get one call per value.
pub(super) type Setter = fn(&mut Layer, &str) -> Result<(), InvalidValue>;

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    /// Present or not; `true`/`false` in a file.
    Flag,
    /// One value (the placeholder shown in `--help`); given twice, the last one wins.
    One(&'static str),
    /// May be repeated; `;`-separated in an rtpengine.conf, an array in TOML.
    Many(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    Set(Setter),
    /// Accepted for rtpengine compatibility, not acted on; the text says why.
    Ignore(&'static str),
    /// Read by the daemon itself before configuration is resolved.
    Startup,
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// Other long names for the same option (shown in `--help`).
    pub aliases: &'static [&'static str],
    /// Long names accepted but not shown (misspellings in rtpengine's manual).
    pub hidden_aliases: &'static [&'static str],
    pub value: Value,
    /// Environment variable that supplies the value when the flag is absent.
    pub env: Option<&'static str>,
    pub help: &'static str,
    pub action: Action,
}

impl Opt {
    /// Does `key` (a long option name, as in a file) name this option?
    pub(super) fn is_named(&self, key: &str) -> bool {
        self.long == key || self.aliases.contains(&key) || self.hidden_aliases.contains(&key)
    }

    /// For an ignored option: is the value of the kind rtpengine expects?
    pub(super) fn check_ignored(&self, value: &str) -> Result<(), InvalidValue> {
        let v = value.trim();
        match self.value {
            Value::One("INT") | Value::Many("INT") => v
                .parse::<i64>()
                .map(drop)
                .map_err(|_| invalid("expected a whole number")),
            Value::One("FLOAT") => v
                .parse::<f64>()
                .map(drop)
                .map_err(|_| invalid("expected a number")),
            Value::Flag => parse_bool(v).map(drop),
            _ => Ok(()),
        }
    }
}

/// The start-up remark for ignored options (long names, in table order): grouped by reason.
pub(super) fn ignored_summary(names: &[&'static str]) -> String {
    let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
    for name in names {
        let Some(Opt {
            action: Action::Ignore(why),
            ..
        }) = find(name)
        else {
            continue;
        };
        match groups.iter_mut().find(|(w, _)| w == why) {
            Some((_, list)) => list.push(format!("--{name}")),
            None => groups.push((why, vec![format!("--{name}")])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(why, list)| format!("{} ({why})", list.join(", ")))
        .collect();
    parts.join("; ")
}

/// `--fast-path` and its rtpengine alias `--table`.
fn set_fast_path(l: &mut Layer, v: &str) -> Result<(), InvalidValue> {
    use ngmedia_engine::core::config::FastPathMode;
    l.fast_path =
        Some(FastPathMode::parse(v).ok_or_else(|| invalid("expected auto, on, off or -1"))?);
    Ok(())
}

/// Find an option by long name or alias.
pub(super) fn find(key: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.is_named(key))
}

const fn opt(
    long: &'static str,
    short: Option<char>,
    value: Value,
    help: &'static str,
    set: Setter,
) -> Opt {
    Opt {
        long,
        short,
        aliases: &[],
        hidden_aliases: &[],
        value,
        env: None,
        help,
        action: Action::Set(set),
    }
}

const fn ignored(long: &'static str, short: Option<char>, value: Value, why: &'static str) -> Opt {
    Opt {
        long,
        short,
        aliases: &[],
        hidden_aliases: &[],
        value,
        env: None,
        help: why,
        action: Action::Ignore(why),
    }
}

const fn with_env(mut o: Opt, env: &'static str) -> Opt {
    o.env = Some(env);
    o
}

const fn with_hidden(mut o: Opt, names: &'static [&'static str]) -> Opt {
    o.hidden_aliases = names;
    o
}

use Value::{Flag, Many, One};

// Why rtpengine options are ignored (shown in --help and in the start-up warning).
const KERNEL: &str = "rtpengine kernel module settings and firewall rules: the eBPF fast path (--fast-path) needs neither";
const CONTROL: &str = "other control protocols: ngmedia speaks ng (UDP, TCP, HTTP, WebSocket)";
const SYSLOG: &str = "syslog and log layout: ngmedia logs to stderr";
const EXPORT: &str = "statistics export: ngmedia serves Prometheus /metrics on its HTTP API";
const REDIS: &str = "Redis tuning beyond ngmedia's HA (--redis, --standby)";
const TUNING: &str = "threading and scheduling tuning: ngmedia sizes its workers itself";
const DB: &str = "media from a database or cache: ngmedia keeps a media library (HTTP /media)";
const NOT_YET: &str = "not implemented by ngmedia";
const JB: &str = "rtpengine's adaptive jitter buffer tuning: ngmedia's jitter buffer (--jitter-buffer) holds a fixed number of packet times";
const EVS: &str = "EVS: ngmedia has no EVS codec";
const TLS: &str = "DTLS/HTTPS tuning: ngmedia uses fixed, modern settings";
const RECORDING: &str = "recording daemon hand-off: ngmedia writes its own recordings";

/// Every option, ngmedia's and rtpengine's.
pub(super) static OPTIONS: &[Opt] = &[
    // --- configuration and start-up ---
    Opt {
        long: "config",
        short: None,
        aliases: &["config-file"],
        hidden_aliases: &[],
        value: One("FILE"),
        env: None,
        help: "Configuration file: ngmedia TOML, or an rtpengine.conf INI file (recognised by \
               its [rtpengine] section). `none` reads no file. Default: \
               /etc/ngmedia/ngmedia.toml if it exists.",
        action: Action::Startup,
    },
    Opt {
        long: "config-section",
        short: None,
        aliases: &[],
        hidden_aliases: &[],
        value: One("NAME"),
        env: None,
        help: "Section of an rtpengine.conf INI file to read. Default: rtpengine.",
        action: Action::Startup,
    },
    Opt {
        long: "version",
        short: Some('v'),
        aliases: &[],
        hidden_aliases: &[],
        value: Flag,
        env: None,
        help: "Print the version and exit.",
        action: Action::Startup,
    },
    Opt {
        long: "codecs",
        short: None,
        aliases: &[],
        hidden_aliases: &[],
        value: Flag,
        env: None,
        help: "Print the codecs ngmedia can transcode and exit.",
        action: Action::Startup,
    },
    // --- network ---
    opt(
        "interface",
        Some('i'),
        Many("[NAME/]ADDR[!ADV]"),
        "Media interface: ADDR, NAME/ADDR, optionally with !ADVERTISED for 1:1 NAT \
         (e.g. `pub/203.0.113.1!198.51.100.1`, `2001:db8::5`). ADDR may also be a network \
         device (`eth0`: its IPv4 and IPv6 addresses, link-local ones left out, as if each had \
         its own --interface), `any` (every address of every device that is up but loopback) \
         or a host name (resolved once at start-up); !ADVERTISED then applies to the \
         addresses of its own family. Repeat for several interfaces; the name (default \
         `default`) is what the ng `direction` and `interface` keys select. Given on the \
         command line, the list replaces the file's whole list. Default: 127.0.0.1.",
        |l, v| {
            l.interfaces
                .get_or_insert_with(Vec::new)
                .push(parse_interface(v)?);
            Ok(())
        },
    ),
    opt(
        "listen-ng",
        Some('n'),
        Many("[ADDR:]PORT"),
        "UDP address for the ng control protocol, [ADDR:]PORT; a bare port listens on \
         127.0.0.1, IPv6 as `[::1]:2223`. Default: 127.0.0.1:2223.",
        |l, v| {
            let addr = parse_listen(v)?;
            match l.listen_ng {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-ng: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_ng = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "listen-http",
        None,
        Many("[ADDR:]PORT"),
        "TCP address for the HTTP API (metrics, calls, OpenAPI at /openapi.json), \
         [ADDR:]PORT; a bare port listens on 127.0.0.1. Any address other than loopback needs \
         --http-token. Default: 127.0.0.1:8080.",
        |l, v| {
            let addr = parse_listen(v)?;
            match l.listen_http {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-http: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_http = Some(addr),
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "http-token",
            None,
            One("TOKEN"),
            "Bearer token that HTTP writes (POST, PUT, PATCH, DELETE) must carry in \
             `Authorization: Bearer TOKEN`; reads stay open. Without a token the HTTP API only \
             listens on loopback. The environment variable wins over the file. Prefer it or \
             the config file: a command line is visible to every local user.",
            |l, v| {
                l.http_token = Some(v.to_string());
                Ok(())
            },
        ),
        "NGMEDIA_HTTP_TOKEN",
    ),
    opt(
        "port-min",
        Some('m'),
        One("PORT"),
        "Lowest media port (even: RTP takes the even port, RTCP the odd one above). \
         Default: 30000.",
        |l, v| {
            l.port_min = Some(parse_port(v)?);
            Ok(())
        },
    ),
    opt(
        "port-max",
        Some('M'),
        One("PORT"),
        "Highest media port; the range must hold at least 4 ports. Default: 40000.",
        |l, v| {
            l.port_max = Some(parse_port(v)?);
            Ok(())
        },
    ),
    // --- call lifetime ---
    opt(
        "timeout",
        Some('o'),
        One("SECS"),
        "End a call that received no media for this long. Default: 60.",
        |l, v| {
            l.timeout = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "silent-timeout",
        Some('s'),
        One("SECS"),
        "End a call on hold that received no media for this long. Default: 3600.",
        |l, v| {
            l.silent_timeout = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "final-timeout",
        Some('a'),
        One("SECS"),
        "End every call after this long, whatever it does; 0 = never. Default: 0.",
        |l, v| {
            l.final_timeout = Some(parse_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "delete-delay",
        Some('d'),
        One("SECS"),
        "Keep a deleted call this long for late queries and retransmitted deletes (the ng \
         `delete delay` key overrides it per call). Default: 30.",
        |l, v| {
            l.delete_delay = Some(parse_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "num-threads",
        None,
        One("N"),
        "Media worker threads; 0 = one per CPU core. Default: 0.",
        |l, v| {
            l.num_threads = Some(parse_threads(v)?);
            Ok(())
        },
    ),
    opt(
        "tos",
        Some('T'),
        One("TOS"),
        "TOS byte (DSCP << 2) on media sockets, e.g. 184 for EF; the ng `TOS` key of an \
         offer overrides it per call, and an offer without the key goes back to this value. \
         Default: 0 (the kernel's default).",
        |l, v| {
            l.tos = Some(parse_tos(v)?);
            Ok(())
        },
    ),
    // --- logging ---
    opt(
        "log-level",
        Some('L'),
        One("LEVEL"),
        "Log level: a syslog number like rtpengine's (0-3 error, 4 warn, 5-6 info, 7 debug) \
         or error|warn|info|debug|trace. RUST_LOG, when set, overrides it. Default: 6 (info).",
        |l, v| {
            l.log_level = Some(parse_log_level(v)?);
            Ok(())
        },
    ),
    opt(
        "log-format",
        None,
        One("FORMAT"),
        "Log line format: `text` (human-readable) or `json` (one JSON object per line, for \
         log shippers); rtpengine's `default` and `parsable` give `text`. Default: text.",
        |l, v| {
            l.log_format = Some(match v.trim().to_ascii_lowercase().as_str() {
                "default" => LogFormat::Text,
                "parsable" => {
                    l.notes.push(
                        "log-format=parsable: ngmedia writes its own text lines (or \
                         --log-format json for machines)"
                            .to_string(),
                    );
                    LogFormat::Text
                }
                _ => parse_log_format(v)
                    .map_err(|_| invalid("expected text or json (or default|parsable)"))?,
            });
            Ok(())
        },
    ),
    opt(
        "log-redact",
        None,
        Flag,
        "Replace call-ids, tags and addresses in logs with a short hash, stable while the \
         daemon runs (`~1a2b3c4d`), so one call's lines still correlate; the hash is keyed \
         per process, so it cannot be reversed by hashing guesses. Default: off.",
        |l, v| {
            l.log_redact = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "log-stderr",
        Some('E'),
        Flag,
        "Accepted for rtpengine compatibility: ngmedia always logs to stderr.",
        |_, v| parse_bool(v).map(drop),
    ),
    opt(
        "foreground",
        Some('f'),
        Flag,
        "Accepted for rtpengine compatibility: ngmedia always stays in the foreground (run \
         it under systemd or another supervisor).",
        |_, v| parse_bool(v).map(drop),
    ),
    opt(
        "pidfile",
        Some('p'),
        One("FILE"),
        "Write the daemon's process id to FILE once the ports are bound; removed at exit.",
        |l, v| {
            l.pidfile = optional_path(v);
            Ok(())
        },
    ),
    // --- recording ---
    opt(
        "recording-dir",
        None,
        One("DIR"),
        "Folder for call recordings (WAV, pcap, JSON metadata). Created if missing; if it is \
         unusable, recordings fail and calls go on. Default: /var/lib/ngmedia/recordings.",
        |l, v| {
            l.recording_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
    opt(
        "recording-format",
        None,
        One("wav|pcap|both"),
        "What a recording writes besides its JSON metadata: `wav` (mixed stereo WAV), `pcap` \
         (the RTP as received) or `both`. rtpengine's pcap framings `raw` and `eth` are \
         accepted: ngmedia's pcaps are raw IP. Default: wav.",
        |l, v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "raw" => {}
                "eth" => l.notes.push(
                    "recording-format=eth: ngmedia's pcap files are raw IP, without Ethernet \
                     headers"
                        .to_string(),
                ),
                _ => {
                    l.recording_format = Some(
                        RecordingFormat::parse(v)
                            .ok_or_else(|| invalid("expected wav, pcap or both (or raw|eth)"))?,
                    )
                }
            }
            Ok(())
        },
    ),
    opt(
        "recording-method",
        None,
        One("pcap|proc|all"),
        "rtpengine's recording method, mapped to the nearest --recording-format: `pcap` \
         writes pcap, `proc` (hand-off to a recording daemon) writes WAV, `all` both. \
         --recording-format, when given, wins.",
        |l, v| {
            let format = match v.trim().to_ascii_lowercase().as_str() {
                "" => return Ok(()),
                "pcap" => RecordingFormat::Pcap,
                "proc" => {
                    l.notes.push(
                        "recording-method=proc: ngmedia has no recording daemon, it writes \
                         the WAV files itself"
                            .to_string(),
                    );
                    RecordingFormat::Wav
                }
                "all" => RecordingFormat::Both,
                _ => return Err(invalid("expected pcap, proc or all")),
            };
            l.recording_method = Some(format);
            Ok(())
        },
    ),
    opt(
        "recording-per-party",
        None,
        Flag,
        "Also write one mono WAV per party of a recorded call.",
        |l, v| {
            l.recording_per_party = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    // --- media library ---
    opt(
        "media-dir",
        None,
        One("DIR"),
        "Folder of the media library (HTTP /media; ng `db-id`). Created if missing. \
         Default: /var/lib/ngmedia/media.",
        |l, v| {
            l.media_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
    opt(
        "media-max-bytes",
        None,
        One("BYTES"),
        "Largest media upload or `blob`, in bytes. Default: 20971520 (20 MiB).",
        |l, v| {
            l.media_max_bytes = Some(
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of bytes"))?,
            );
            Ok(())
        },
    ),
    opt(
        "media-max-seconds",
        None,
        One("SECONDS"),
        "Longest accepted media, in seconds of audio. Default: 600.",
        |l, v| {
            l.media_max_seconds = Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of seconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "media-play-dirs",
        None,
        Many("DIR,DIR"),
        "Folders `play media` with `file` may read from, comma-separated; a path outside them \
         is refused. Default: none (files only through the media library or `blob`).",
        |l, v| {
            l.media_play_dirs.get_or_insert_with(Vec::new).extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            );
            Ok(())
        },
    ),
    // --- lawful interception ---
    opt(
        "listen-li",
        None,
        One("ADDR:PORT"),
        "TCP address of the lawful-interception administration API (`/li/tasks`), \
         ADDR:PORT. Off unless given. Needs --li-token and/or mutual TLS (--li-tls-cert, \
         --li-tls-key, --li-tls-ca).",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if !v.trim().is_empty() {
                l.listen_li = Some(parse_listen(v)?);
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "li-token",
            None,
            One("TOKEN"),
            "Bearer token of the LI API (separate from --http-token). Prefer the environment \
             variable or the config file.",
            |l, v| {
                l.li_token = Some(v.to_string());
                Ok(())
            },
        ),
        "NGMEDIA_LI_TOKEN",
    ),
    opt(
        "li-tls-cert",
        None,
        One("FILE"),
        "PEM certificate (chain) of the LI listener; also presented to X3-over-TLS \
         collectors.",
        |l, v| {
            l.li_tls_cert = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-tls-key",
        None,
        One("FILE"),
        "PEM private key for --li-tls-cert.",
        |l, v| {
            l.li_tls_key = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-tls-ca",
        None,
        One("FILE"),
        "PEM CA certificate(s): LI clients must present a certificate it signed (mutual \
         TLS), and X3-over-TLS collectors too.",
        |l, v| {
            l.li_tls_ca = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-dir",
        None,
        One("DIR"),
        "Folder of the LI task file and audit log (created with mode 0700). \
         Default: /var/lib/ngmedia/li.",
        |l, v| {
            l.li_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
    // --- DTLS, forwarding ---
    opt(
        "dtls-cert",
        None,
        One("FILE"),
        "PEM certificate for DTLS-SRTP instead of one generated at start-up: engines that \
         take over each other's calls (Redis HA) present the same fingerprint.",
        |l, v| {
            l.dtls_cert = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "dtls-key",
        None,
        One("FILE"),
        "PEM private key for --dtls-cert.",
        |l, v| {
            l.dtls_key = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "forward-to",
        None,
        One("ADDR:PORT"),
        "Destination of the ng `start forwarding` command: the call's RTP (decrypted), both \
         directions, as UDP datagrams to ADDR:PORT. Off unless given.",
        |l, v| {
            if !v.trim().is_empty() {
                l.forward_to = Some(parse_destination(v)?);
            }
            Ok(())
        },
    ),
    // --- Redis HA ---
    opt(
        "redis",
        Some('r'),
        One("[PASSWORD@]HOST:PORT[/DB]"),
        "Keep every call's state in Redis (the address in rtpengine's syntax; the stored state \
         is ngmedia's own, not rtpengine's): restored after a restart of \
         this instance, taken over by a --standby instance when this one dies. Off unless \
         given.",
        |l, v| {
            if !v.trim().is_empty() {
                l.redis = Some(parse_redis(v)?);
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "redis-password",
            None,
            One("PASSWORD"),
            "Redis password; overrides one given in --redis. Prefer the environment variable.",
            |l, v| {
                // Empty: not given (the one in `redis` stays).
                if !v.is_empty() {
                    l.redis_password = Some(v.to_string());
                }
                Ok(())
            },
        ),
        "NGMEDIA_REDIS_PASSWORD",
    ),
    opt(
        "redis-prefix",
        None,
        One("PREFIX"),
        "Prefix of every Redis key and of the events channel. Default: ngmedia.",
        |l, v| {
            l.redis_prefix = Some(parse_ha_name(v)?);
            Ok(())
        },
    ),
    opt(
        "instance-id",
        None,
        One("ID"),
        "This instance's name in Redis, logs and metrics. Default: the host name.",
        |l, v| {
            if !v.is_empty() {
                l.instance_id = Some(parse_ha_name(v)?);
            }
            Ok(())
        },
    ),
    opt(
        "standby",
        None,
        Flag,
        "Also follow the other instances in Redis and take their calls over when they die.",
        |l, v| {
            l.standby = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "redis-heartbeat-ttl",
        None,
        One("SECS"),
        "TTL of this instance's Redis heartbeat, refreshed every third of it: a standby takes \
         over about this long after a crash. Default: 3.",
        |l, v| {
            l.redis_heartbeat_ttl = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "redis-sync-interval",
        None,
        One("SECS"),
        "How often calls' live figures (counters, latched addresses) are written to Redis. \
         Default: 1.",
        |l, v| {
            l.redis_sync_interval = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "listen-tcp-ng",
        Some('N'),
        Many("[ADDR:]PORT"),
        "TCP address for the ng protocol over TCP (messages back to back, as over UDP), \
         [ADDR:]PORT; a bare port listens on 127.0.0.1. Off unless given.",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if v.trim().is_empty() {
                return Ok(());
            }
            let addr = parse_listen(v)?;
            match l.listen_tcp_ng {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-tcp-ng: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_tcp_ng = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "ng-rate-limit",
        None,
        One("INT"),
        "Most ng requests a second from one client address, over every transport; requests \
         beyond it get no reply (counted in ngmedia_ng_rate_limited_total, logged once a \
         minute per source), while retransmissions answered from the cookie cache always \
         pass. A client may burst one second's worth. 0: no limit. Default: 20000.",
        |l, v| {
            l.ng_rate_limit = Some(parse_ng_rate_limit(v)?);
            Ok(())
        },
    ),
    opt(
        "listen-https",
        None,
        Many("[ADDR:]PORT"),
        "TCP address of an HTTPS listener: the HTTP API, POST /ng and ng over secure \
         WebSocket (Kamailio's wss://), over TLS. Needs --https-cert and --https-key, and like \
         --listen-http an --http-token unless on loopback. Off unless given.",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if v.trim().is_empty() {
                return Ok(());
            }
            let addr = parse_listen(v)?;
            match l.listen_https {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-https: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_https = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "https-cert",
        None,
        One("FILE"),
        "PEM certificate (chain) of the HTTPS listener.",
        |l, v| {
            l.https_cert = (!v.is_empty()).then(|| PathBuf::from(v));
            Ok(())
        },
    ),
    opt(
        "https-key",
        None,
        One("FILE"),
        "PEM private key for --https-cert.",
        |l, v| {
            l.https_key = (!v.is_empty()).then(|| PathBuf::from(v));
            Ok(())
        },
    ),
    opt(
        "http-ng",
        None,
        One("open|token|off"),
        "ng over HTTP(S) and WebSocket (POST /ng, /ng-plain, subprotocols ng.rtpengine.com \
         and ng-plain.rtpengine.com): `open` (no credential, like the ng UDP port and \
         rtpengine; Kamailio's WebSocket client cannot send one), `token` (needs the \
         --http-token bearer token) or `off`. Default: open.",
        |l, v| {
            l.http_ng = Some(parse_http_ng(v)?);
            Ok(())
        },
    ),
    opt(
        "max-sessions",
        None,
        One("INT"),
        "Refuse new calls while this many are held (deleted ones in their delete delay \
         included); re-offers and answers of existing calls go on. 0 refuses every new call \
         (draining), -1 is no limit. Default: no limit.",
        |l, v| {
            l.max_sessions = Some(parse_max_sessions(v)?);
            Ok(())
        },
    ),
    opt(
        "max-load",
        None,
        One("FLOAT"),
        "Refuse new calls while the 1-minute load average is at least this. 0: no limit.",
        |l, v| {
            l.max_load = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "max-cpu",
        None,
        One("FLOAT"),
        "Refuse new calls while the machine's CPU usage (percent, sampled every 0.5 s from \
         /proc/stat) is at least this. 0: no limit.",
        |l, v| {
            l.max_cpu = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "max-bandwidth",
        None,
        One("INT"),
        "Refuse new calls while media received (bytes per second, over the last second) is \
         at least this. 0: no limit.",
        |l, v| {
            l.max_bandwidth = Some(parse_max_bandwidth(v)?);
            Ok(())
        },
    ),
    opt(
        "max-transcoding-load",
        None,
        One("PERCENT"),
        "Refuse offers of new calls that ask for transcoding (codec transcode, mask, accept, \
         consume, always transcode) while the busiest media worker is busy at least this \
         share of the time (percent, sampled every 0.5 s): its transcoders could not keep \
         up. Plain calls, re-offers and answers go on. 0: no limit.",
        |l, v| {
            l.max_transcoding_load = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    // --- rtpengine options ngmedia accepts and does not act on ---
    opt(
        "fast-path",
        None,
        One("auto|on|off"),
        "Forward established plain RTP streams (and SRTP passed through unchanged) in the \
         kernel with an eBPF program at TC ingress instead of in user space. auto: when the \
         kernel and privileges (CAP_BPF, CAP_NET_ADMIN) allow, else one log line says why \
         not; on: required; off: user space only. Default: off.",
        set_fast_path,
    ),
    opt(
        "table",
        Some('t'),
        One("INT"),
        "rtpengine's kernel table, as an alias of --fast-path: -1 is off, a table number \
         (0 and up) is auto.",
        |l, v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid("expected a whole number (-1: no kernel forwarding)"))?;
            set_fast_path(l, v)
        },
    ),
    ignored("no-fallback", Some('F'), Flag, KERNEL),
    ignored("iptables-chain", None, One("STRING"), KERNEL),
    ignored("nftables-chain", None, One("CHAIN"), KERNEL),
    ignored("nftables-base-chain", None, One("CHAIN"), KERNEL),
    ignored("nftables-append", None, Flag, KERNEL),
    ignored("nftables-family", None, One("FAMILY"), KERNEL),
    ignored("nftables-start", None, Flag, KERNEL),
    ignored("nftables-stop", None, Flag, KERNEL),
    ignored("nftables-status", None, Flag, KERNEL),
    ignored("xtables", None, Flag, KERNEL),
    ignored("kernel-slots", None, One("INT"), KERNEL),
    ignored("kernel-num-threads", None, One("INT"), KERNEL),
    ignored("kernel-player", None, One("INT"), KERNEL),
    ignored("kernel-player-media", None, One("INT"), KERNEL),
    ignored("templates", None, One("STRING"), NOT_YET),
    ignored("interfaces-config", None, One("STRING"), NOT_YET),
    ignored("save-interface-ports", Some('S'), Flag, NOT_YET),
    ignored("listen-tcp", Some('l'), Many("[ADDR:]PORT"), CONTROL),
    ignored("listen-udp", Some('u'), Many("[ADDR:]PORT"), CONTROL),
    ignored(
        "listen-cli",
        Some('c'),
        Many("[ADDR:]PORT"),
        "rtpengine-ctl's port: use ngmedia-ctl and the HTTP API",
    ),
    ignored("http-threads", None, One("INT"), TUNING),
    ignored("http-buf-size", None, One("INT"), TUNING),
    ignored("http-idle-timeout", None, One("INT"), TUNING),
    ignored("janus-secret", None, One("STRING"), CONTROL),
    ignored("ng-client-timeout", None, One("INT"), CONTROL),
    ignored("ng-client-retries", None, One("INT"), CONTROL),
    ignored("graphite", Some('g'), One("ADDR:PORT"), EXPORT),
    ignored("graphite-interval", Some('G'), One("INT"), EXPORT),
    ignored("graphite-prefix", None, One("STRING"), EXPORT),
    ignored("graphite-timeout", None, One("INT"), EXPORT),
    ignored("control-tos", None, One("INT"), NOT_YET),
    ignored("control-pmtu", None, One("want|dont"), NOT_YET),
    ignored("offer-timeout", None, One("INT"), NOT_YET),
    with_hidden(
        ignored("log-facility", None, One("FACILITY"), SYSLOG),
        &["log-facilty"],
    ),
    with_hidden(
        ignored("log-facility-cdr", None, One("FACILITY"), SYSLOG),
        &["log-facilty-cdr"],
    ),
    with_hidden(
        ignored("log-facility-rtcp", None, One("FACILITY"), SYSLOG),
        &["log-facilty-rtcp"],
    ),
    with_hidden(
        ignored("log-facility-dtmf", None, One("FACILITY"), SYSLOG),
        &["log-facilty-dtmf"],
    ),
    ignored("log-level-core", None, One("INT"), SYSLOG),
    ignored("log-level-spandsp", None, One("INT"), SYSLOG),
    ignored("log-level-ffmpeg", None, One("INT"), SYSLOG),
    ignored("log-level-transcoding", None, One("INT"), SYSLOG),
    ignored("log-level-codec", None, One("INT"), SYSLOG),
    ignored("log-level-rtcp", None, One("INT"), SYSLOG),
    ignored("log-level-ice", None, One("INT"), SYSLOG),
    ignored("log-level-crypto", None, One("INT"), SYSLOG),
    ignored("log-level-srtp", None, One("INT"), SYSLOG),
    ignored("log-level-internals", None, One("INT"), SYSLOG),
    ignored("log-level-http", None, One("INT"), SYSLOG),
    ignored("log-level-control", None, One("INT"), SYSLOG),
    ignored("log-level-dtx", None, One("INT"), SYSLOG),
    ignored("split-logs", None, Flag, SYSLOG),
    ignored("max-log-line-length", None, One("INT"), SYSLOG),
    ignored("no-log-timestamps", None, Flag, SYSLOG),
    ignored("log-name", None, One("STRING"), SYSLOG),
    ignored("log-mark-prefix", None, One("STRING"), SYSLOG),
    ignored("log-mark-suffix", None, One("STRING"), SYSLOG),
    ignored("log-srtp-keys", None, Flag, NOT_YET),
    ignored("debug-srtp", None, Flag, NOT_YET),
    opt(
        "dtmf-log-dest",
        None,
        One("ADDR:PORT"),
        "Report every DTMF digit a party sends (RFC 4733 events, or detected in transcoded \
         audio) as rtpengine's JSON object in a UDP datagram to ADDR:PORT (IP or host name), \
         e.g. Kamailio's rtpengine dtmf_event_sock. Default: off (empty).",
        |l, v| {
            l.dtmf_log_dest = if v.trim().is_empty() {
                None
            } else {
                Some(parse_socket_addr(v)?)
            };
            Ok(())
        },
    ),
    ignored("dtmf-log-ng-tcp", None, Flag, NOT_YET),
    ignored("dtmf-no-log-injects", None, Flag, NOT_YET),
    ignored("dtmf-no-suppress", None, Flag, NOT_YET),
    opt(
        "dtmf-digit-delay",
        None,
        One("INT"),
        "Longest pause in ms between two digits of a DTMF trigger (block DTMF `trigger`, \
         `trigger-end`); after a longer one the match starts over. Default: 2500.",
        |l, v| {
            l.dtmf_digit_delay = Some(
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| invalid("expected milliseconds"))?,
            );
            Ok(())
        },
    ),
    ignored("media-num-threads", None, One("INT"), TUNING),
    ignored("codec-num-threads", None, One("INT"), TUNING),
    ignored("poller-size", None, One("INT"), TUNING),
    ignored("poller-per-thread", None, Flag, TUNING),
    ignored("thread-stack", None, One("INT"), TUNING),
    ignored("scheduling", None, One("POLICY"), TUNING),
    ignored("priority", None, One("INT"), TUNING),
    ignored("idle-scheduling", None, One("POLICY"), TUNING),
    ignored("idle-priority", None, One("INT"), TUNING),
    ignored("timer-accuracy", None, One("INT"), TUNING),
    ignored("io-uring", None, Flag, TUNING),
    ignored("io-uring-buffers", None, One("INT"), TUNING),
    ignored("max-recv-iters", None, One("INT"), TUNING),
    ignored("socket-cpu-affinity", None, One("INT"), TUNING),
    ignored("evs-lib-path", None, One("FILE"), NOT_YET),
    ignored("codec-chain-lib-path", None, One("FILE"), NOT_YET),
    ignored("codec-chain-runners", None, One("INT"), NOT_YET),
    ignored("codec-chain-concurrency", None, One("INT"), NOT_YET),
    ignored("codec-chain-async", None, One("INT"), NOT_YET),
    ignored("codec-chain-interval", None, One("INT"), NOT_YET),
    ignored("codec-chain-nonblock", None, Flag, NOT_YET),
    ignored("codec-chain-opus-application", None, One("STRING"), NOT_YET),
    ignored("codec-chain-opus-complexity", None, One("INT"), NOT_YET),
    ignored("sip-source", None, Flag, NOT_YET),
    ignored("dtls-passive", None, Flag, NOT_YET),
    ignored("redis-write", Some('w'), One("[PW@]IP:PORT/INT"), REDIS),
    ignored("redis-subscribe", None, One("[PW@]IP:PORT[/INT]"), REDIS),
    ignored("subscribe-keyspace", Some('k'), Many("INT"), REDIS),
    ignored("redis-num-threads", None, One("INT"), REDIS),
    ignored("redis-expires", None, One("INT"), REDIS),
    ignored("active-switchover", None, Flag, REDIS),
    ignored("no-redis-required", Some('q'), Flag, REDIS),
    ignored("redis-allowed-errors", None, One("INT"), REDIS),
    ignored("redis-disable-time", None, One("INT"), REDIS),
    ignored("redis-cmd-timeout", None, One("INT"), REDIS),
    ignored("redis-connect-timeout", None, One("INT"), REDIS),
    ignored("redis-delete-async", Some('y'), One("INT"), REDIS),
    ignored("redis-delete-async-interval", None, One("INT"), REDIS),
    ignored("redis-resolve-on-reconnect", None, Flag, REDIS),
    ignored("redis-format", None, One("bencode|JSON"), REDIS),
    ignored("redis-tcp-keepalive-time", None, One("INT"), REDIS),
    ignored("redis-tcp-keepalive-intvl", None, One("INT"), REDIS),
    ignored("redis-tcp-keepalive-probes", None, One("INT"), REDIS),
    ignored("b2b-url", Some('b'), One("URL"), CONTROL),
    ignored("xmlrpc-format", Some('x'), One("INT"), CONTROL),
    // --- Homer capture ---
    opt(
        "homer",
        None,
        One("ADDR:PORT"),
        "Send every RTCP packet a party sends, as Homer's RTCP JSON in HEP version 3 frames \
         tagged with the Call-ID, to the Homer capture server at ADDR:PORT (IP or host \
         name). Default: off (empty).",
        |l, v| {
            l.homer = if v.trim().is_empty() {
                None
            } else {
                Some(parse_socket_addr(v)?)
            };
            Ok(())
        },
    ),
    opt(
        "homer-protocol",
        None,
        One("udp|tcp"),
        "Transport to the Homer capture server. Over TCP a lost connection is retried every \
         30 s, with up to 200 frames kept meanwhile. Default: udp.",
        |l, v| {
            l.homer_tcp = Some(match v.trim().to_ascii_lowercase().as_str() {
                "udp" => false,
                "tcp" => true,
                _ => return Err(invalid("expected udp or tcp")),
            });
            Ok(())
        },
    ),
    opt(
        "homer-id",
        None,
        One("INT"),
        "The capture agent id (HEP chunk 12) Homer files ngmedia's frames under. Default: 2001.",
        |l, v| {
            l.homer_id = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected 0-4294967295"))?,
            );
            Ok(())
        },
    ),
    opt(
        "homer-disable-rtcp-stats",
        None,
        Flag,
        "Send no RTCP to Homer (with --homer-enable-ng: only the ng traffic). Default: off.",
        |l, v| {
            l.homer_no_rtcp = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "homer-enable-ng",
        None,
        Flag,
        "Also send every ng request received over UDP and its reply (`cookie body`, pings \
         aside) to Homer, tagged with the request's Call-ID. Default: off.",
        |l, v| {
            l.homer_ng = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "homer-ng-capture-proto",
        None,
        One("INT"),
        "Capture protocol type (HEP chunk 11) of the ng frames, 0-255. Default: 61 (0x3d).",
        |l, v| {
            l.homer_ng_proto = Some(v.trim().parse().map_err(|_| invalid("expected 0-255"))?);
            Ok(())
        },
    ),
    // --- call events ---
    opt(
        "webhook-url",
        None,
        One("URL"),
        "POST call events (call.started, call.answered, call.ended, recording.finished, \
         quality.alarm with --mos-alarm, dtmf with --webhook-dtmf) as JSON to this \
         http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH] URL, with retries and a \
         bounded queue. Default: off (empty).",
        |l, v| {
            l.webhook = if v.trim().is_empty() {
                None
            } else {
                Some(WebhookTarget::parse(v, None).map_err(invalid)?)
            };
            Ok(())
        },
    ),
    opt(
        "webhook-token",
        None,
        One("TOKEN"),
        "Sent with every webhook POST as `Authorization: Bearer TOKEN`. Default: none.",
        |l, v| {
            l.webhook_token = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            Ok(())
        },
    ),
    opt(
        "webhook-ca",
        None,
        One("FILE"),
        "PEM file of the CAs an https --webhook-url receiver's certificate must chain to (its \
         name or IP address checked too). Default: the system's CAs \
         (/etc/ssl/certs/ca-certificates.crt).",
        |l, v| {
            l.webhook_ca = Some(PathBuf::from(v.trim())).filter(|p| !p.as_os_str().is_empty());
            Ok(())
        },
    ),
    opt(
        "webhook-dtmf",
        None,
        Flag,
        "Also POST every DTMF digit a party sends (`dtmf` events, from the same reports as \
         --dtmf-log-dest, which keeps working). The digits are read in user space, so calls \
         leave the kernel fast path, as with --dtmf-log-dest. Default: off.",
        |l, v| {
            l.webhook_dtmf = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "mos-alarm",
        None,
        One("MOS"),
        "POST a `quality.alarm` webhook event, once per stream, when a stream's MOS \
         estimate falls below this value (1.0 to 4.5, e.g. 3.5); checked every second. \
         Default: 0 (off).",
        |l, v| {
            l.mos_alarm = Some(parse_mos_alarm(v)?);
            Ok(())
        },
    ),
    // --- MQTT (rtpengine's names and defaults) ---
    opt(
        "mqtt-host",
        None,
        One("HOST"),
        "Publish statistics to the MQTT broker at this host name or address (with \
         --mqtt-publish-topic), every --mqtt-publish-interval, as rtpengine publishes them \
         (MQTT 3.1.1; reconnects after a failure; a bounded queue, never waited on). \
         Default: off.",
        |l, v| {
            l.mqtt.host = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-port",
        None,
        One("INT"),
        "Port of the MQTT broker. Default: 1883.",
        |l, v| {
            l.mqtt.port = Some(parse_port(v)?);
            Ok(())
        },
    ),
    opt(
        "mqtt-id",
        None,
        One("STRING"),
        "MQTT client id. Default: `ngmedia-` and 16 random hex digits.",
        |l, v| {
            l.mqtt.id = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-keepalive",
        None,
        One("INT"),
        "MQTT keep-alive in seconds: a ping goes out after half of it without a message; \
         0: none. Default: 30.",
        |l, v| {
            l.mqtt.keepalive = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected seconds, 0-65535"))?,
            );
            Ok(())
        },
    ),
    opt(
        "mqtt-user",
        None,
        One("USERNAME"),
        "User name for the MQTT broker; authentication is on when it is given. Default: none.",
        |l, v| {
            l.mqtt.user = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-pass",
        None,
        One("PASSWORD"),
        "Password for the MQTT broker, with --mqtt-user. Default: none.",
        |l, v| {
            l.mqtt.pass = Some(v.to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-cafile",
        None,
        One("FILE"),
        "PEM file of the CA certificates that sign the broker's: TLS to the broker. \
         Default: none (plain TCP).",
        |l, v| {
            l.mqtt.cafile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-capath",
        None,
        One("PATH"),
        "Folder of PEM CA certificates that sign the broker's: TLS to the broker. \
         Default: none.",
        |l, v| {
            l.mqtt.capath = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-certfile",
        None,
        One("FILE"),
        "PEM certificate (chain) we present to the broker, with --mqtt-keyfile and a CA. \
         Default: none.",
        |l, v| {
            l.mqtt.certfile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-keyfile",
        None,
        One("FILE"),
        "PEM private key (not password-protected) of --mqtt-certfile. Default: none.",
        |l, v| {
            l.mqtt.keyfile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-tls-alpn",
        None,
        One("STRING"),
        "ALPN protocol offered in the TLS handshake with the broker (e.g. mqtt, for \
         services that share the TLS port between protocols). Default: none.",
        |l, v| {
            l.mqtt.tls_alpn = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-qos",
        None,
        One("0|1|2"),
        "MQTT QoS of the messages: 0 (at most once), 1 (at least once: a message not \
         acknowledged is sent again after reconnecting), 2 (exactly once to the broker). \
         Default: 0.",
        |l, v| {
            l.mqtt.qos = Some(match v.trim() {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                _ => return Err(invalid("expected 0, 1 or 2")),
            });
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-topic",
        None,
        One("STRING"),
        "Topic of every message; required with --mqtt-host. Default: none.",
        |l, v| {
            l.mqtt.topic = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-interval",
        None,
        One("MILLISECONDS"),
        "How often the statistics are published. Default: 5000.",
        |l, v| {
            l.mqtt.interval = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected milliseconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-scope",
        None,
        One("global|summary|call|media"),
        "What each round publishes: summary (one message with the statistics), global (the \
         same with every call in a `calls` list), call (the summary, and one message per \
         call), media (the summary, and one message per media of each party). \
         Default: global.",
        |l, v| {
            l.mqtt.scope = Some(
                Scope::parse(v)
                    .ok_or_else(|| invalid("expected global, summary, call or media"))?,
            );
            Ok(())
        },
    ),
    ignored("record-egress", None, Flag, RECORDING),
    ignored("record-both", None, Flag, RECORDING),
    ignored("vsc-start-rec", None, One("STRING"), NOT_YET),
    ignored("vsc-stop-rec", None, One("STRING"), NOT_YET),
    ignored("vsc-start-stop-rec", None, One("STRING"), NOT_YET),
    ignored("vsc-pause-rec", None, One("STRING"), NOT_YET),
    ignored("vsc-pause-resume-rec", None, One("STRING"), NOT_YET),
    ignored("vsc-start-pause-resume-rec", None, One("STRING"), NOT_YET),
    ignored("mysql-host", None, One("HOST"), DB),
    ignored("mysql-port", None, One("INT"), DB),
    ignored("mysql-user", None, One("USERNAME"), DB),
    ignored("mysql-pass", None, One("PASSWORD"), DB),
    ignored("mysql-query", None, One("STRING"), DB),
    ignored("player-cache", None, Flag, DB),
    ignored("preload-media-files", None, Many("FILE"), DB),
    ignored("media-files-reload", None, One("INT"), DB),
    ignored("preload-db-media", None, Many("STRING"), DB),
    ignored("db-media-reload", None, One("INT"), DB),
    ignored("db-media-cache", None, One("PATH"), DB),
    ignored("preload-db-cache", None, Many("STRING"), DB),
    ignored("db-cache-reload", None, One("INT"), DB),
    ignored("cache-media-reload", None, One("INT"), DB),
    ignored("expiry-timer", None, One("INT"), DB),
    ignored("media-files-expire", None, One("INT"), DB),
    ignored("db-media-expire", None, One("INT"), DB),
    ignored("db-cache-expire", None, One("INT"), DB),
    ignored("moh-max-duration", None, One("INT"), NOT_YET),
    ignored("moh-max-repeats", None, One("INT"), NOT_YET),
    ignored("moh-attr-name", None, One("STRING"), NOT_YET),
    ignored("moh-prevent-double-hold", None, Flag, NOT_YET),
    ignored("audio-buffer-length", None, One("INT"), NOT_YET),
    ignored("audio-buffer-delay", None, One("INT"), NOT_YET),
    ignored("audio-player", None, One("MODE"), NOT_YET),
    opt(
        "endpoint-learning",
        None,
        One("MODE"),
        "How a party's address is learned from its packets: heuristic (prefer the SDP's \
         address, confirm when the 3 s learning window ends), delayed (the last source seen \
         in the window), immediate (the first packet's source) or off (the SDP address only). \
         The ng `endpoint-learning` key overrides it per call. Default: heuristic.",
        |l, v| {
            l.endpoint_learning = Some(
                EndpointLearning::parse(v)
                    .ok_or_else(|| invalid("expected delayed, immediate, off or heuristic"))?,
            );
            Ok(())
        },
    ),
    opt(
        "jitter-buffer",
        None,
        One("INT"),
        "Jitter buffer for transcoded streams, in packets: each received packet is held \
         this many packet times and decoded on a clock, so reordering within that time is \
         undone and a packet still missing when its time comes is concealed by the decoder \
         (Opus PLC, G.729 and AMR erasure, silence for G.711 and G.722). Streams relayed \
         without transcoding are not delayed. Default: 0 (off).",
        |l, v| {
            l.jitter_buffer = Some(parse_count(v, "packets")?);
            Ok(())
        },
    ),
    ignored("jb-clock-drift", None, Flag, JB),
    ignored("jb-adaptive", None, Flag, JB),
    ignored("jb-adaptive-min", None, One("INT"), JB),
    ignored("jb-adaptive-max", None, One("INT"), JB),
    ignored("reject-invalid-sdp", None, Flag, NOT_YET),
    ignored("software-id", None, One("STRING"), NOT_YET),
    opt(
        "dtx-delay",
        None,
        One("INT"),
        "DTX handling for transcoded streams: hold each received packet this many ms and \
         decode on a clock, one packet time per tick; when the sender pauses (DTX, silence \
         suppression) the tick sends a packet time of silence, of comfort noise \
         (--dtx-cn-params) or, for AMR, the codec's own comfort noise, so the receiver \
         hears an unbroken stream. Should exceed the expected jitter. Default: 0 (off).",
        |l, v| {
            l.dtx_delay = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "max-dtx",
        None,
        One("INT"),
        "Stop DTX handling this many seconds after the last received packet (the clock \
         restarts with the next one); zero or negative: never stop. Default: 30.",
        |l, v| {
            l.max_dtx = Some(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| invalid("expected seconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "dtx-buffer",
        None,
        One("INT"),
        "DTX clock overflow: when more than this many packets are held and they span \
         --dtx-lag ms, the clock is sped up by --dtx-shift. Default: 10.",
        |l, v| {
            l.dtx_buffer = Some(parse_count(v, "packets")?);
            Ok(())
        },
    ),
    opt(
        "dtx-lag",
        None,
        One("INT"),
        "DTX clock overflow: ms of audio held (see --dtx-buffer). Default: 100.",
        |l, v| {
            l.dtx_lag = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "dtx-shift",
        None,
        One("INT"),
        "ms the DTX clock moves when packets come faster (earlier) or slower (later) than \
         it ticks; 0: drop a packet or step the clock's timestamp back instead. \
         Default: 5.",
        |l, v| {
            l.dtx_shift = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "dtx-cn-params",
        None,
        Many("INT"),
        "Fill DTX pauses with comfort noise of this RFC 3389 payload instead of silence \
         (noise level in -dBov, then reflection coefficients); repeat once per byte. \
         Default: none (silence).",
        |l, v| {
            let bytes = l.dtx_cn_params.get_or_insert_with(Vec::new);
            let max = if bytes.is_empty() { 127 } else { 254 };
            let byte = v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| invalid("expected a level 0-127, then coefficients 0-254"))?;
            bytes.push(byte);
            Ok(())
        },
    ),
    opt(
        "amr-dtx",
        None,
        One("native|CN"),
        "How AMR and AMR-WB DTX pauses are filled: native (the decoder continues the \
         comfort noise of the sender's last SID frame) or CN (silence or --dtx-cn-params \
         noise, as for other codecs). Default: native.",
        |l, v| {
            l.amr_dtx_cn = Some(match v.trim() {
                s if s.eq_ignore_ascii_case("native") => false,
                s if s.eq_ignore_ascii_case("CN") => true,
                _ => return Err(invalid("expected native or CN")),
            });
            Ok(())
        },
    ),
    ignored("evs-dtx", None, One("native|CN"), EVS),
    opt(
        "silence-detect",
        None,
        One("PERCENT"),
        "Toward a party that negotiated comfort noise (CN) and receives transcoded audio, \
         send a frame whose samples all stay within this percentage of full scale as a CN \
         packet instead of audio (rtpengine's silence detection). Default: 0 (off).",
        |l, v| {
            l.silence_detect = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "cn-payload",
        None,
        Many("INT"),
        "Bytes of the CN payload sent for silence (RFC 3389: noise level in -dBov, then \
         reflection coefficients); repeat once per byte. Default: 32 (-32 dBov, flat).",
        |l, v| {
            let byte = v
                .trim()
                .parse::<u8>()
                .map_err(|_| invalid("expected a byte value 0-255"))?;
            l.cn_payload.get_or_insert_with(Vec::new).push(byte);
            Ok(())
        },
    ),
    ignored("dtls-cert-cipher", None, One("prime256v1|RSA"), TLS),
    ignored("dtls-signature", None, One("SHA-256|SHA-1"), TLS),
    ignored("dtls-rsa-key-size", None, One("INT"), TLS),
    ignored("dtls-ciphers", None, One("STRING"), TLS),
    ignored("dtls-mtu", None, One("INT"), TLS),
    ignored("mos", None, Many("CQ|LQ"), NOT_YET),
    ignored("measure-rtp", None, Flag, NOT_YET),
    ignored("ssrc-reporting", None, One("MODE"), NOT_YET),
    ignored("rtcp-interval", None, One("INT"), NOT_YET),
    ignored("transcode-config", None, One("STRING"), NOT_YET),
];

/// A non-negative whole number of `unit`.
fn parse_count(v: &str, unit: &'static str) -> Result<u32, InvalidValue> {
    v.trim().parse::<u32>().map_err(|_| match unit {
        "packets" => invalid("expected a number of packets"),
        _ => invalid("expected milliseconds"),
    })
}

/// `IP:PORT` or `HOST:PORT` (resolved once, at start), with a port.
fn parse_socket_addr(v: &str) -> Result<std::net::SocketAddr, InvalidValue> {
    use std::net::ToSocketAddrs;
    v.trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .filter(|a| a.port() != 0)
        .ok_or_else(|| invalid("expected IP:PORT or HOST:PORT"))
}

fn nonempty_path(v: &str) -> Result<PathBuf, InvalidValue> {
    if v.is_empty() {
        Err(invalid("empty file or folder name"))
    } else {
        Ok(PathBuf::from(v))
    }
}

/// Empty means "not set" (the sample files list such keys with empty values).
fn optional_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}
