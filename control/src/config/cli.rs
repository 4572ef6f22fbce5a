//! The `ngmedia` command line (clap), and its values as a `Layer`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ngmedia_control::ha::config::RedisTarget;
use ngmedia_engine::core::config::Interface;
use ngmedia_recordings::RecordingFormat;
use tracing::level_filters::LevelFilter;

use super::parse::{
    parse_destination, parse_ha_name, parse_interface, parse_listen, parse_log_format,
    parse_log_level, parse_port, parse_positive_secs, parse_recording_format, parse_redis,
    parse_secs, parse_threads,
};
use super::{Layer, DEFAULT_CONFIG_SECTION};
use crate::logging::LogFormat;

/// Command line of the `ngmedia` daemon.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "ngmedia",
    version,
    about = "ngmedia: a media engine for SIP platforms, driven over rtpengine's ng protocol",
    long_about = "ngmedia: a media engine for SIP platforms, driven over rtpengine's ng protocol.\n\n\
        Option names follow rtpengine's. Values come from the command line, then the \
        configuration file (TOML, or an rtpengine.conf INI file), then the built-in defaults.",
    after_help = "Timeouts are in seconds. See README.md for the configuration file formats."
)]
pub struct Cli {
    /// Configuration file: ngmedia TOML, or an rtpengine.conf INI file (recognised by its
    /// [rtpengine] section). `none` reads no file. Default: /etc/ngmedia/ngmedia.toml if it
    /// exists.
    #[arg(long, visible_alias = "config-file", value_name = "FILE")]
    pub config: Option<String>,

    /// Section of an rtpengine.conf INI file to read.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CONFIG_SECTION)]
    pub config_section: String,

    /// Media interface: ADDR, NAME/ADDR, optionally with !ADVERTISED for 1:1 NAT
    /// (e.g. `pub/203.0.113.1!198.51.100.1`, `2001:db8::5`). Repeat for several interfaces;
    /// the name (default `default`) is what `direction` selects. Default: 127.0.0.1.
    #[arg(short = 'i', long, value_name = "[NAME/]ADDR[!ADV]", value_parser = parse_interface)]
    pub interface: Vec<Interface>,

    /// UDP address for the ng control protocol, [ADDR:]PORT; a bare port listens on
    /// 127.0.0.1. Default: 127.0.0.1:2223.
    #[arg(short = 'n', long, value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub listen_ng: Option<SocketAddr>,

    /// TCP address for the HTTP API (metrics, calls, OpenAPI at /openapi.json), [ADDR:]PORT;
    /// a bare port listens on 127.0.0.1. Any address other than loopback needs --http-token.
    /// Default: 127.0.0.1:8080.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub listen_http: Option<SocketAddr>,

    /// Bearer token that HTTP writes (POST, PUT, PATCH, DELETE) must carry in
    /// `Authorization: Bearer TOKEN`; reads stay open. Without a token the HTTP API only
    /// listens on loopback. Prefer the environment variable or the config file: a command
    /// line is visible to every local user.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NGMEDIA_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,

    /// Lowest media port (even: RTP takes the even port, RTCP the odd one above). Default: 30000.
    #[arg(short = 'm', long, value_name = "PORT", value_parser = parse_port)]
    pub port_min: Option<u16>,

    /// Highest media port. Default: 40000.
    #[arg(short = 'M', long, value_name = "PORT", value_parser = parse_port)]
    pub port_max: Option<u16>,

    /// End a call that received no media for this long. Default: 60.
    #[arg(short = 'o', long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub timeout: Option<u64>,

    /// End a call on hold that received no media for this long. Default: 3600.
    #[arg(short = 's', long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub silent_timeout: Option<u64>,

    /// End every call after this long, whatever it does; 0 = never. Default: 0.
    #[arg(short = 'a', long, value_name = "SECS", value_parser = parse_secs)]
    pub final_timeout: Option<u64>,

    /// Keep a deleted call this long for late queries and retransmitted deletes (the ng
    /// `delete delay` key overrides it per call). Default: 30.
    #[arg(short = 'd', long, value_name = "SECS", value_parser = parse_secs)]
    pub delete_delay: Option<u64>,

    /// Media worker threads; 0 = one per CPU core. Default: 0.
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub num_threads: Option<usize>,

    /// Log level: a syslog number like rtpengine's (0-3 error, 4 warn, 5-6 info, 7 debug) or
    /// error|warn|info|debug|trace. RUST_LOG, when set, overrides it. Default: 6 (info).
    #[arg(short = 'L', long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LevelFilter>,

    /// Log line format: `text` (human-readable) or `json` (one JSON object per line, for log
    /// shippers). Default: text.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,

    /// Replace call-ids, tags and addresses in logs with a short hash, stable while the
    /// daemon runs (`~1a2b3c4d`), so one call's lines still correlate. Default: off.
    #[arg(long)]
    pub log_redact: bool,

    /// Accepted for rtpengine compatibility: ngmedia always logs to stderr.
    #[arg(short = 'E', long)]
    pub log_stderr: bool,

    /// Accepted for rtpengine compatibility: ngmedia always stays in the foreground (run it
    /// under systemd or another supervisor).
    #[arg(short = 'f', long)]
    pub foreground: bool,

    /// Folder for call recordings (WAV, pcap, JSON metadata). Created if missing; if it is
    /// unusable, recordings fail and calls go on. Default: /var/lib/ngmedia/recordings.
    #[arg(long, value_name = "DIR")]
    pub recording_dir: Option<PathBuf>,

    /// What a recording writes besides its JSON metadata: `wav` (mixed stereo WAV), `pcap`
    /// (the RTP as received) or `both`. Default: wav.
    #[arg(long, value_name = "wav|pcap|both", value_parser = parse_recording_format)]
    pub recording_format: Option<RecordingFormat>,

    /// Also write one mono WAV per party of a recorded call.
    #[arg(long)]
    pub recording_per_party: bool,

    /// Folder of the media library (HTTP /media; ng `db-id`). Created if missing.
    /// Default: /var/lib/ngmedia/media.
    #[arg(long, value_name = "DIR")]
    pub media_dir: Option<PathBuf>,

    /// Largest media upload or `blob`, in bytes. Default: 20971520 (20 MiB).
    #[arg(long, value_name = "BYTES")]
    pub media_max_bytes: Option<u64>,

    /// Longest accepted media, in seconds of audio. Default: 600.
    #[arg(long, value_name = "SECONDS")]
    pub media_max_seconds: Option<u32>,

    /// Folders `play media` with `file` may read from, comma-separated; a path outside them
    /// is refused. Default: none (files only through the media library or `blob`).
    #[arg(long, value_name = "DIR,DIR", value_delimiter = ',')]
    pub media_play_dirs: Vec<PathBuf>,
    /// TCP address of the lawful-interception administration API (`/li/tasks`), ADDR:PORT.
    /// Off unless given. Needs --li-token and/or mutual TLS (--li-tls-cert, --li-tls-key,
    /// --li-tls-ca).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub listen_li: Option<SocketAddr>,

    /// Bearer token of the LI API (separate from --http-token). Prefer the environment
    /// variable or the config file.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NGMEDIA_LI_TOKEN",
        hide_env_values = true
    )]
    pub li_token: Option<String>,

    /// PEM certificate (chain) of the LI listener; also presented to X3-over-TLS collectors.
    #[arg(long, value_name = "FILE")]
    pub li_tls_cert: Option<PathBuf>,

    /// PEM private key for --li-tls-cert.
    #[arg(long, value_name = "FILE")]
    pub li_tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): LI clients must present a certificate it signed (mutual TLS),
    /// and X3-over-TLS collectors too.
    #[arg(long, value_name = "FILE")]
    pub li_tls_ca: Option<PathBuf>,

    /// Folder of the LI task file and audit log (created with mode 0700).
    /// Default: /var/lib/ngmedia/li.
    #[arg(long, value_name = "DIR")]
    pub li_dir: Option<PathBuf>,

    /// PEM certificate for DTLS-SRTP instead of one generated at start-up: engines that
    /// take over each other's calls (Redis HA) present the same fingerprint.
    #[arg(long, value_name = "FILE")]
    pub dtls_cert: Option<PathBuf>,

    /// PEM private key for --dtls-cert.
    #[arg(long, value_name = "FILE")]
    pub dtls_key: Option<PathBuf>,

    /// Destination of the ng `start forwarding` command: the call's RTP (decrypted), both
    /// directions, as UDP datagrams to ADDR:PORT. Off unless given.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_destination)]
    pub forward_to: Option<SocketAddr>,

    /// Keep every call's state in Redis (rtpengine's format): restored after a restart of
    /// this instance, taken over by a --standby instance when this one dies. Off unless given.
    #[arg(long, value_name = "[PASSWORD@]HOST:PORT[/DB]", value_parser = parse_redis)]
    pub redis: Option<RedisTarget>,

    /// Redis password; overrides one given in --redis. Prefer the environment variable.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "NGMEDIA_REDIS_PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,

    /// Prefix of every Redis key and of the events channel. Default: ngmedia.
    #[arg(long, value_name = "PREFIX", value_parser = parse_ha_name)]
    pub redis_prefix: Option<String>,

    /// This instance's name in Redis, logs and metrics. Default: the host name.
    #[arg(long, value_name = "ID", value_parser = parse_ha_name)]
    pub instance_id: Option<String>,

    /// Also follow the other instances in Redis and take their calls over when they die.
    #[arg(long)]
    pub standby: bool,

    /// TTL of this instance's Redis heartbeat, refreshed every third of it: a standby takes
    /// over about this long after a crash. Default: 3.
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub redis_heartbeat_ttl: Option<u64>,

    /// How often calls' live figures (counters, latched addresses) are written to Redis.
    /// Default: 1.
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub redis_sync_interval: Option<u64>,
}

impl Cli {
    pub(super) fn layer(&self) -> Layer {
        Layer {
            interfaces: (!self.interface.is_empty()).then(|| self.interface.clone()),
            listen_ng: self.listen_ng,
            listen_http: self.listen_http,
            http_token: self.http_token.clone(),
            port_min: self.port_min,
            port_max: self.port_max,
            timeout: self.timeout,
            silent_timeout: self.silent_timeout,
            final_timeout: self.final_timeout,
            delete_delay: self.delete_delay,
            num_threads: self.num_threads,
            log_level: self.log_level,
            log_format: self.log_format,
            log_redact: self.log_redact.then_some(true),
            recording_dir: self.recording_dir.clone(),
            recording_format: self.recording_format,
            recording_per_party: self.recording_per_party.then_some(true),
            media_dir: self.media_dir.clone(),
            media_max_bytes: self.media_max_bytes,
            media_max_seconds: self.media_max_seconds,
            media_play_dirs: (!self.media_play_dirs.is_empty())
                .then(|| self.media_play_dirs.clone()),
            listen_li: self.listen_li,
            li_token: self.li_token.clone(),
            li_tls_cert: self.li_tls_cert.clone(),
            li_tls_key: self.li_tls_key.clone(),
            li_tls_ca: self.li_tls_ca.clone(),
            li_dir: self.li_dir.clone(),
            forward_to: self.forward_to,
            dtls_cert: self.dtls_cert.clone(),
            dtls_key: self.dtls_key.clone(),
            redis: self.redis.clone(),
            redis_password: self.redis_password.clone(),
            redis_prefix: self.redis_prefix.clone(),
            instance_id: self.instance_id.clone(),
            standby: self.standby.then_some(true),
            redis_heartbeat_ttl: self.redis_heartbeat_ttl,
            redis_sync_interval: self.redis_sync_interval,
        }
    }
}
