//! Daemon configuration: command-line flags, an optional configuration file, built-in defaults.
//!
//! Option names follow rtpengine's so an operator can move an existing command line or
//! `rtpengine.conf` over unchanged. The file may be ngmedia's own TOML (same keys, kebab-case)
//! or an rtpengine.conf INI file; keys we do not act on are reported together in one warning
//! rather than failing, because real rtpengine.conf files carry many kernel, Redis and
//! recording settings that have no meaning here yet.
//!
//! Precedence: a flag given on the command line wins over the file, the file wins over the
//! defaults. A repeated `--interface` replaces the file's interface list as a whole.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ngmedia_control::ha::{self, config::RedisTarget, HaConfig};
use ngmedia_control::http::auth::BearerToken;
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_recordings::RecordingFormat;
use tracing::level_filters::LevelFilter;

use crate::logging::LogFormat;

/// Read when no `--config` is given, and only if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/ngmedia/ngmedia.toml";
/// INI section read from an rtpengine.conf file unless `--config-section` names another.
pub const DEFAULT_CONFIG_SECTION: &str = "rtpengine";
pub const DEFAULT_LISTEN_NG: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2223);
pub const DEFAULT_LISTEN_HTTP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// One call needs two RTP/RTCP pairs (one per party); a range that cannot hold a single call
/// is certainly a typo.
const MIN_PORT_PAIRS: u32 = 2;
/// Where recordings go unless configured (rtpengine's spool directory is configured too).
pub const DEFAULT_RECORDING_DIR: &str = "/var/lib/ngmedia/recordings";
/// Where the media library (music on hold, announcements) keeps uploaded files.
pub const DEFAULT_MEDIA_DIR: &str = "/var/lib/ngmedia/media";
/// Largest accepted upload: 20 MiB holds ~20 min of 128 kbit/s MP3 or 2 min of CD-quality WAV.
pub const DEFAULT_MEDIA_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Longest accepted audio: 10 minutes of hold music; every minute costs ~5.6 MiB of decoded
/// PCM (8+16+48 kHz) in memory while the file is in use.
pub const DEFAULT_MEDIA_MAX_SECONDS: u32 = 600;
/// Where LI tasks (and, by default, the LI audit log) are kept.
pub const DEFAULT_LI_DIR: &str = "/var/lib/ngmedia/li";
/// Upper bound on `--num-threads`: more media threads than this only adds contention.
const MAX_THREADS: usize = 1024;

/// Keys understood in a configuration file (TOML or rtpengine.conf), as long option names.
const FILE_KEYS: &[&str] = &[
    "interface",
    "listen-ng",
    "listen-http",
    "http-token",
    "port-min",
    "port-max",
    "timeout",
    "silent-timeout",
    "final-timeout",
    "delete-delay",
    "num-threads",
    "log-level",
    "log-format",
    "log-redact",
    "log-stderr",
    "foreground",
    "recording-dir",
    "recording-format",
    "recording-per-party",
    "media-dir",
    "media-max-bytes",
    "media-max-seconds",
    "media-play-dirs",
    "listen-li",
    "li-token",
    "li-tls-cert",
    "li-tls-key",
    "li-tls-ca",
    "li-dir",
    "forward-to",
    "redis",
    "redis-password",
    "redis-prefix",
    "instance-id",
    "standby",
    "redis-heartbeat-ttl",
    "redis-sync-interval",
];

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
    #[arg(long, value_name = "TOKEN", env = "NGMEDIA_LI_TOKEN", hide_env_values = true)]
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

/// The lawful-interception listener and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiSettings {
    /// `None`: LI administration is off.
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    pub tls: Option<ngmedia_control::li::tls::TlsFiles>,
    pub dir: PathBuf,
}

/// The media library and `play media` file access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub max_seconds: u32,
    pub play_dirs: Vec<PathBuf>,
}

/// How calls are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    pub format: RecordingFormat,
    pub per_party: bool,
}

/// Everything the daemon needs to start, resolved from flags, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: EngineConfig,
    pub listen_ng: SocketAddr,
    pub listen_http: SocketAddr,
    /// Required for HTTP writes; `None` only with a loopback `listen_http`.
    pub http_token: Option<BearerToken>,
    pub log_level: LevelFilter,
    pub log_format: LogFormat,
    pub log_redact: bool,
    pub recording: RecordingSettings,
    pub media: MediaSettings,
    pub li: LiSettings,
    /// Destination of `start forwarding`.
    pub forward_to: Option<SocketAddr>,
    /// Redis high availability; `None`: calls live in memory only.
    pub ha: Option<HaConfig>,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Remarks to log once logging is up (unsupported keys, ignored options).
    pub warnings: Vec<String>,
}

/// Why a value could not be used; shown after the option or key it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

fn invalid(reason: impl Into<String>) -> InvalidValue {
    InvalidValue(reason.into())
}

/// Why the configuration cannot be used. Every variant names the option or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("config file {}: no [{section}] section", path.display())]
    MissingSection { path: PathBuf, section: String },
    #[error("config file {}: invalid value for `{key}`: {reason}", path.display())]
    Value {
        path: PathBuf,
        key: String,
        reason: InvalidValue,
    },
    #[error("port-min ({min}) is greater than port-max ({max})")]
    PortOrder { min: u16, max: u16 },
    #[error("port-min ({0}) must be even: RTP takes the even port of each pair, RTCP the odd one above it")]
    OddPortMin(u16),
    #[error("media port range {min}-{max} is too small: one call needs {} ports", MIN_PORT_PAIRS * 2)]
    RangeTooSmall { min: u16, max: u16 },
    #[error("no media interface configured: give --interface ADDR")]
    NoInterface,
    #[error("interface {0} is configured twice")]
    DuplicateInterface(String),
    #[error(
        "listen-http {0} is not a loopback address and no http-token is set: anyone who can \
         reach it could end calls. Set --http-token (or http-token in the config file, or \
         NGMEDIA_HTTP_TOKEN), or listen on 127.0.0.1"
    )]
    HttpWritesExposed(SocketAddr),
    #[error(
        "listen-li needs a credential: li-token, or mutual TLS (li-tls-cert, li-tls-key and \
         li-tls-ca)"
    )]
    LiWithoutCredential,
    #[error("li-tls-cert and li-tls-key go together")]
    LiTlsIncomplete,
    #[error("li-tls-ca needs li-tls-cert and li-tls-key (our side of mutual TLS)")]
    LiCaWithoutCert,
    #[error("standby needs redis: a standby follows the other instances through Redis")]
    StandbyWithoutRedis,
}

/// Values from one source (command line or file); `None` = not given there.
#[derive(Debug, Default, Clone, PartialEq)]
struct Layer {
    interfaces: Option<Vec<Interface>>,
    listen_ng: Option<SocketAddr>,
    listen_http: Option<SocketAddr>,
    http_token: Option<String>,
    port_min: Option<u16>,
    port_max: Option<u16>,
    timeout: Option<u64>,
    silent_timeout: Option<u64>,
    final_timeout: Option<u64>,
    delete_delay: Option<u64>,
    num_threads: Option<usize>,
    log_level: Option<LevelFilter>,
    log_format: Option<LogFormat>,
    log_redact: Option<bool>,
    recording_dir: Option<PathBuf>,
    recording_format: Option<RecordingFormat>,
    recording_per_party: Option<bool>,
    media_dir: Option<PathBuf>,
    media_max_bytes: Option<u64>,
    media_max_seconds: Option<u32>,
    media_play_dirs: Option<Vec<PathBuf>>,
    listen_li: Option<SocketAddr>,
    li_token: Option<String>,
    li_tls_cert: Option<PathBuf>,
    li_tls_key: Option<PathBuf>,
    li_tls_ca: Option<PathBuf>,
    li_dir: Option<PathBuf>,
    forward_to: Option<SocketAddr>,
    redis: Option<RedisTarget>,
    redis_password: Option<String>,
    redis_prefix: Option<String>,
    instance_id: Option<String>,
    standby: Option<bool>,
    redis_heartbeat_ttl: Option<u64>,
    redis_sync_interval: Option<u64>,
}

impl Cli {
    fn layer(&self) -> Layer {
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
            media_play_dirs: (!self.media_play_dirs.is_empty()).then(|| self.media_play_dirs.clone()),
            listen_li: self.listen_li,
            li_token: self.li_token.clone(),
            li_tls_cert: self.li_tls_cert.clone(),
            li_tls_key: self.li_tls_key.clone(),
            li_tls_ca: self.li_tls_ca.clone(),
            li_dir: self.li_dir.clone(),
            forward_to: self.forward_to,
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

impl Settings {
    /// Read the configuration file the command line points at (if any) and resolve.
    pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
        let path = match cli.config.as_deref() {
            Some("none") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Settings::resolve(cli, None, Vec::new());
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let (file, warnings) = parse_file(&text, &path, &cli.config_section)?;
        let mut settings = Settings::resolve(cli, Some(file), warnings)?;
        settings.config_file = Some(path);
        Ok(settings)
    }

    /// Merge the command line over the file over the defaults, then validate.
    fn resolve(
        cli: &Cli,
        file: Option<Layer>,
        mut warnings: Vec<String>,
    ) -> Result<Settings, ConfigError> {
        let file = file.unwrap_or_default();
        let cli = cli.layer();
        let li = resolve_li(&cli, &file)?;
        let ha = resolve_ha(&cli, &file)?;
        let defaults = EngineConfig::default();
        let secs = |c: Option<u64>, f: Option<u64>, d: Duration| {
            c.or(f).map(Duration::from_secs).unwrap_or(d)
        };
        let engine = EngineConfig {
            interfaces: cli
                .interfaces
                .or(file.interfaces)
                .unwrap_or(defaults.interfaces),
            port_min: cli.port_min.or(file.port_min).unwrap_or(defaults.port_min),
            port_max: cli.port_max.or(file.port_max).unwrap_or(defaults.port_max),
            timeout: secs(cli.timeout, file.timeout, defaults.timeout),
            silent_timeout: secs(
                cli.silent_timeout,
                file.silent_timeout,
                defaults.silent_timeout,
            ),
            final_timeout: secs(
                cli.final_timeout,
                file.final_timeout,
                defaults.final_timeout,
            ),
            delete_delay: secs(cli.delete_delay, file.delete_delay, defaults.delete_delay),
            workers: cli
                .num_threads
                .or(file.num_threads)
                .unwrap_or(defaults.workers),
        };
        validate(&engine)?;
        if let Some(unspecified) = engine.interfaces.iter().find(|i| i.local.is_unspecified()) {
            warnings.push(format!(
                "interface {} binds the wildcard address; replies leave from whatever source \
                 address the kernel picks, which breaks symmetric RTP on multi-homed hosts",
                DisplayInterface(unspecified)
            ));
        }
        let listen_http = cli
            .listen_http
            .or(file.listen_http)
            .unwrap_or(DEFAULT_LISTEN_HTTP);
        // An empty token (`http-token = ""`, the documented default) means none.
        let http_token = cli
            .http_token
            .or(file.http_token)
            .and_then(BearerToken::new);
        if http_token.is_none() && !listen_http.ip().is_loopback() {
            return Err(ConfigError::HttpWritesExposed(listen_http));
        }

        Ok(Settings {
            engine,
            listen_ng: cli
                .listen_ng
                .or(file.listen_ng)
                .unwrap_or(DEFAULT_LISTEN_NG),
            listen_http,
            http_token,
            log_level: cli
                .log_level
                .or(file.log_level)
                .unwrap_or(LevelFilter::INFO),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            log_redact: cli.log_redact.or(file.log_redact).unwrap_or(false),
            recording: RecordingSettings {
                dir: cli
                    .recording_dir
                    .or(file.recording_dir)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_RECORDING_DIR)),
                format: cli
                    .recording_format
                    .or(file.recording_format)
                    .unwrap_or_default(),
                per_party: cli
                    .recording_per_party
                    .or(file.recording_per_party)
                    .unwrap_or(false),
            },
            media: MediaSettings {
                dir: cli
                    .media_dir
                    .or(file.media_dir)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_MEDIA_DIR)),
                max_bytes: cli
                    .media_max_bytes
                    .or(file.media_max_bytes)
                    .unwrap_or(DEFAULT_MEDIA_MAX_BYTES),
                max_seconds: cli
                    .media_max_seconds
                    .or(file.media_max_seconds)
                    .unwrap_or(DEFAULT_MEDIA_MAX_SECONDS),
                play_dirs: cli
                    .media_play_dirs
                    .or(file.media_play_dirs)
                    .unwrap_or_default(),
            },
            li,
            forward_to: cli.forward_to.or(file.forward_to),
            ha,
            config_file: None,
            warnings,
        })
    }
}

/// The LI listener: off unless `listen-li`; then a token and/or mutual TLS are required.
fn resolve_li(cli: &Layer, file: &Layer) -> Result<LiSettings, ConfigError> {
    let token = cli
        .li_token
        .clone()
        .or(file.li_token.clone())
        .filter(|t| !t.is_empty());
    let cert = cli.li_tls_cert.clone().or(file.li_tls_cert.clone());
    let key = cli.li_tls_key.clone().or(file.li_tls_key.clone());
    let ca = cli.li_tls_ca.clone().or(file.li_tls_ca.clone());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(ngmedia_control::li::tls::TlsFiles { cert, key, ca }),
        (None, None) if ca.is_some() => return Err(ConfigError::LiCaWithoutCert),
        (None, None) => None,
        _ => return Err(ConfigError::LiTlsIncomplete),
    };
    let listen = cli.listen_li.or(file.listen_li);
    let mutual = tls.as_ref().is_some_and(|t| t.ca.is_some());
    if listen.is_some() && token.is_none() && !mutual {
        return Err(ConfigError::LiWithoutCredential);
    }
    Ok(LiSettings {
        listen,
        token,
        tls,
        dir: cli
            .li_dir
            .clone()
            .or(file.li_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LI_DIR)),
    })
}

/// Redis HA: off unless `redis`; the password option (or environment) overrides the one in
/// the address.
fn resolve_ha(cli: &Layer, file: &Layer) -> Result<Option<HaConfig>, ConfigError> {
    let standby = cli.standby.or(file.standby).unwrap_or(false);
    let Some(mut redis) = cli.redis.clone().or(file.redis.clone()) else {
        if standby {
            return Err(ConfigError::StandbyWithoutRedis);
        }
        return Ok(None);
    };
    if let Some(pw) = cli.redis_password.clone().or(file.redis_password.clone()) {
        redis.password = Some(pw).filter(|p| !p.is_empty());
    }
    let secs = |c: Option<u64>, f: Option<u64>, d: Duration| {
        c.or(f).map(Duration::from_secs).unwrap_or(d)
    };
    Ok(Some(HaConfig {
        redis,
        prefix: cli
            .redis_prefix
            .clone()
            .or(file.redis_prefix.clone())
            .unwrap_or_else(|| ha::config::DEFAULT_PREFIX.to_string()),
        instance_id: cli
            .instance_id
            .clone()
            .or(file.instance_id.clone())
            .unwrap_or_else(ha::config::default_instance_id),
        standby,
        heartbeat_ttl: secs(
            cli.redis_heartbeat_ttl,
            file.redis_heartbeat_ttl,
            ha::config::DEFAULT_HEARTBEAT_TTL,
        ),
        sync_interval: secs(
            cli.redis_sync_interval,
            file.redis_sync_interval,
            ha::config::DEFAULT_SYNC_INTERVAL,
        ),
    }))
}

fn parse_redis(s: &str) -> Result<RedisTarget, InvalidValue> {
    ha::config::parse_redis_target(s).map_err(invalid)
}

fn parse_ha_name(s: &str) -> Result<String, InvalidValue> {
    ha::config::parse_name(s).map_err(invalid)
}

fn validate(engine: &EngineConfig) -> Result<(), ConfigError> {
    let (min, max) = (engine.port_min, engine.port_max);
    if min > max {
        return Err(ConfigError::PortOrder { min, max });
    }
    if min % 2 == 1 {
        return Err(ConfigError::OddPortMin(min));
    }
    if u32::from(max) + 1 - u32::from(min) < 2 * MIN_PORT_PAIRS {
        return Err(ConfigError::RangeTooSmall { min, max });
    }
    if engine.interfaces.is_empty() {
        return Err(ConfigError::NoInterface);
    }
    for (n, a) in engine.interfaces.iter().enumerate() {
        if engine.interfaces[..n]
            .iter()
            .any(|b| b.name == a.name && b.local == a.local)
        {
            return Err(ConfigError::DuplicateInterface(
                DisplayInterface(a).to_string(),
            ));
        }
    }
    Ok(())
}

/// Writes an interface back in `--interface` syntax.
pub struct DisplayInterface<'a>(pub &'a Interface);

impl fmt::Display for DisplayInterface<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.0;
        write!(f, "{}/{}", i.name, i.local)?;
        if let Some(adv) = i.advertised {
            write!(f, "!{adv}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Value parsers, shared by the command line and both file formats.

/// `ADDR`, `NAME/ADDR`, either with `!ADVERTISED` (rtpengine's `--interface` syntax).
pub fn parse_interface(s: &str) -> Result<Interface, InvalidValue> {
    let s = s.trim();
    let (name, rest) = match s.split_once('/') {
        Some((name, rest)) => (name.trim(), rest),
        None => ("default", s),
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '!') {
        return Err(invalid(format!("bad interface name `{name}`")));
    }
    let (local, advertised) = match rest.split_once('!') {
        Some((local, adv)) => (local, Some(adv)),
        None => (rest, None),
    };
    let local = parse_ip(local)?;
    let advertised = advertised.map(parse_ip).transpose()?;
    if let Some(adv) = advertised {
        if adv.is_unspecified() {
            return Err(invalid(
                "the advertised address cannot be the wildcard address",
            ));
        }
        if adv.is_ipv4() != local.is_ipv4() {
            return Err(invalid(
                "local and advertised addresses must be of the same family",
            ));
        }
    } else if local.is_unspecified() {
        return Err(invalid(
            "the wildcard address needs an advertised address (ADDR!ADVERTISED) for SDP",
        ));
    }
    Ok(Interface {
        name: name.to_string(),
        local,
        advertised,
    })
}

fn parse_ip(s: &str) -> Result<IpAddr, InvalidValue> {
    let s = s.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse().map_err(|_| {
        if bare == "any"
            || bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            invalid(format!(
                "`{bare}` is not an IP address: ngmedia needs the address itself \
                 (network device names and `any` are not supported)"
            ))
        } else {
            invalid(format!("`{bare}` is not an IP address"))
        }
    })
}

/// `[ADDR:]PORT` like rtpengine's `--listen-ng`: a bare port means 127.0.0.1, `localhost`
/// is 127.0.0.1, IPv6 addresses go in brackets.
pub fn parse_listen(s: &str) -> Result<SocketAddr, InvalidValue> {
    let s = s.trim();
    let nonzero = |port: u16| {
        if port == 0 {
            Err(invalid("port 0 is not a port to listen on"))
        } else {
            Ok(port)
        }
    };
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), nonzero(port)?));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        nonzero(addr.port())?;
        return Ok(addr);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port = port
            .parse()
            .map_err(|_| invalid(format!("bad port `{port}`")))?;
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), nonzero(port)?));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Err(invalid("a port is needed: ADDR:PORT (IPv6 as [ADDR]:PORT)"));
    }
    Err(invalid(
        "expected [ADDR:]PORT, e.g. 127.0.0.1:2223, [::1]:2223 or 2223",
    ))
}

pub fn parse_port(s: &str) -> Result<u16, InvalidValue> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid("expected a port number 1-65535")),
        Ok(port) => Ok(port),
    }
}

/// Seconds, zero allowed.
pub fn parse_secs(s: &str) -> Result<u64, InvalidValue> {
    // Bounded so that `Instant + Duration` can never overflow inside the engine.
    const MAX_SECS: u64 = 10 * 365 * 24 * 3600;
    match s.trim().parse::<u64>() {
        Ok(n) if n <= MAX_SECS => Ok(n),
        _ => Err(invalid(format!("expected whole seconds 0-{MAX_SECS}"))),
    }
}

/// Seconds, at least one: a zero idle timeout would end every call at the first tick.
pub fn parse_positive_secs(s: &str) -> Result<u64, InvalidValue> {
    match parse_secs(s)? {
        0 => Err(invalid("must be at least 1 second")),
        n => Ok(n),
    }
}

pub fn parse_threads(s: &str) -> Result<usize, InvalidValue> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= MAX_THREADS => Ok(n),
        _ => Err(invalid(format!(
            "expected a thread count 0-{MAX_THREADS} (0 = one per core)"
        ))),
    }
}

/// rtpengine's syslog numbers or tracing level names.
pub fn parse_log_level(s: &str) -> Result<LevelFilter, InvalidValue> {
    let level = match s.trim().to_ascii_lowercase().as_str() {
        "0" | "1" | "2" | "3" | "error" | "err" => LevelFilter::ERROR,
        "4" | "warn" | "warning" => LevelFilter::WARN,
        "5" | "6" | "notice" | "info" => LevelFilter::INFO,
        "7" | "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return Err(invalid("expected 0-7 or error|warn|info|debug|trace")),
    };
    Ok(level)
}

/// `text` or `json`.
pub fn parse_log_format(s: &str) -> Result<LogFormat, InvalidValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(invalid("expected text or json")),
    }
}

fn parse_recording_format(s: &str) -> Result<RecordingFormat, InvalidValue> {
    RecordingFormat::parse(s).ok_or_else(|| invalid("expected wav, pcap or both"))
}

/// A UDP destination `ADDR:PORT` (IPv6 in brackets).
fn parse_destination(s: &str) -> Result<SocketAddr, InvalidValue> {
    match s.trim().parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 && !a.ip().is_unspecified() => Ok(a),
        _ => Err(invalid("expected ADDR:PORT of a destination, e.g. 127.0.0.1:9000")),
    }
}

fn parse_bool(s: &str) -> Result<bool, InvalidValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(invalid("expected true or false")),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration files.

/// Parse a configuration file: an rtpengine.conf when it has the INI section we read (or the
/// default `[rtpengine]` one), TOML otherwise. Returns the values and the warnings.
fn parse_file(text: &str, path: &Path, section: &str) -> Result<(Layer, Vec<String>), ConfigError> {
    let is_ini = text.lines().map(str::trim).any(|line| {
        line == format!("[{DEFAULT_CONFIG_SECTION}]") || line == format!("[{section}]")
    });
    let entries = if is_ini {
        ini_entries(text, path, section)?
    } else {
        toml_entries(text, path)?
    };
    let mut warnings = Vec::new();
    if !is_ini && section != DEFAULT_CONFIG_SECTION {
        warnings.push(format!(
            "--config-section {section} ignored: {} is a TOML file",
            path.display()
        ));
    }
    let mut layer = Layer::default();
    let mut unsupported = Vec::new();
    for (key, values) in entries {
        if !FILE_KEYS.contains(&key.as_str()) {
            if !unsupported.contains(&key) {
                unsupported.push(key);
            }
            continue;
        }
        apply_key(&mut layer, &key, &values).map_err(|reason| ConfigError::Value {
            path: path.to_path_buf(),
            key,
            reason,
        })?;
    }
    if !unsupported.is_empty() {
        warnings.push(format!(
            "config file {}: ignoring keys ngmedia does not support: {}",
            path.display(),
            unsupported.join(", ")
        ));
    }
    Ok((layer, warnings))
}

/// Store one file key. `values` has one entry except for `interface`, which may list several.
fn apply_key(layer: &mut Layer, key: &str, values: &[String]) -> Result<(), InvalidValue> {
    if key == "interface" {
        let list = values
            .iter()
            .map(|v| parse_interface(v).map_err(|e| invalid(format!("`{v}`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        layer.interfaces = Some(list);
        return Ok(());
    }
    let [value] = values else {
        return Err(invalid("expected a single value, not a list"));
    };
    match key {
        "listen-ng" => layer.listen_ng = Some(parse_listen(value)?),
        "listen-http" => layer.listen_http = Some(parse_listen(value)?),
        "http-token" => layer.http_token = Some(value.clone()),
        "port-min" => layer.port_min = Some(parse_port(value)?),
        "port-max" => layer.port_max = Some(parse_port(value)?),
        "timeout" => layer.timeout = Some(parse_positive_secs(value)?),
        "silent-timeout" => layer.silent_timeout = Some(parse_positive_secs(value)?),
        "final-timeout" => layer.final_timeout = Some(parse_secs(value)?),
        "delete-delay" => layer.delete_delay = Some(parse_secs(value)?),
        "num-threads" => layer.num_threads = Some(parse_threads(value)?),
        "log-level" => layer.log_level = Some(parse_log_level(value)?),
        "log-format" => layer.log_format = Some(parse_log_format(value)?),
        "log-redact" => layer.log_redact = Some(parse_bool(value)?),
        "recording-dir" if value.is_empty() => return Err(invalid("empty folder name")),
        "recording-dir" => layer.recording_dir = Some(PathBuf::from(value)),
        "recording-format" => layer.recording_format = Some(parse_recording_format(value)?),
        "recording-per-party" => layer.recording_per_party = Some(parse_bool(value)?),
        "media-dir" if value.is_empty() => return Err(invalid("empty folder name")),
        "media-dir" => layer.media_dir = Some(PathBuf::from(value)),
        "media-max-bytes" => {
            layer.media_max_bytes = Some(
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of bytes"))?,
            )
        }
        "media-max-seconds" => {
            layer.media_max_seconds = Some(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of seconds"))?,
            )
        }
        "media-play-dirs" => {
            layer.media_play_dirs = Some(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            )
        }
        // Empty values stand for "off" (the sample file documents them so).
        "listen-li" if value.is_empty() => {}
        "listen-li" => layer.listen_li = Some(parse_listen(value)?),
        "li-token" => layer.li_token = Some(value.clone()),
        "li-tls-cert" | "li-tls-key" | "li-tls-ca" if value.is_empty() => {}
        "li-tls-cert" => layer.li_tls_cert = Some(PathBuf::from(value)),
        "li-tls-key" => layer.li_tls_key = Some(PathBuf::from(value)),
        "li-tls-ca" => layer.li_tls_ca = Some(PathBuf::from(value)),
        "li-dir" if value.is_empty() => return Err(invalid("empty folder name")),
        "li-dir" => layer.li_dir = Some(PathBuf::from(value)),
        "forward-to" if value.is_empty() => {}
        "forward-to" => layer.forward_to = Some(parse_destination(value)?),
        // Empty: off, like the other addresses.
        "redis" if value.is_empty() => {}
        "redis" => layer.redis = Some(parse_redis(value)?),
        // Empty: not given (the one in `redis` stays), the host name.
        "redis-password" | "instance-id" if value.is_empty() => {}
        "redis-password" => layer.redis_password = Some(value.clone()),
        "redis-prefix" => layer.redis_prefix = Some(parse_ha_name(value)?),
        "instance-id" => layer.instance_id = Some(parse_ha_name(value)?),
        "standby" => layer.standby = Some(parse_bool(value)?),
        "redis-heartbeat-ttl" => layer.redis_heartbeat_ttl = Some(parse_positive_secs(value)?),
        "redis-sync-interval" => layer.redis_sync_interval = Some(parse_positive_secs(value)?),
        // Accepted for compatibility; validated so typos still surface.
        "log-stderr" | "foreground" => {
            parse_bool(value)?;
        }
        _ => unreachable!("apply_key called with a key outside FILE_KEYS: {key}"),
    }
    Ok(())
}

/// Top-level keys of a TOML file, each value rendered as the text a flag would carry.
fn toml_entries(text: &str, path: &Path) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let syntax = |message: String| ConfigError::Syntax {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax(e.to_string()))?;
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(syntax(format!(
                "`{key}` must be a string, an integer or a boolean"
            ))),
        };
        let values = match &value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
            other => vec![scalar(other)?],
        };
        entries.push((key, values));
    }
    Ok(entries)
}

/// Keys of one section of an rtpengine.conf (GLib key file: `[section]`, `key = value`,
/// `#` comments; `interface` lists several interfaces separated by `;`).
fn ini_entries(
    text: &str,
    path: &Path,
    section: &str,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut current: Option<&str> = None;
    let mut found = false;
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim());
            found |= current == Some(section);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                message: format!("line {}: expected `key = value`, got `{line}`", n + 1),
            });
        };
        if current.is_none() {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                message: format!("line {}: `{}` is outside any [section]", n + 1, key.trim()),
            });
        }
        if current != Some(section) {
            continue;
        }
        let (key, value) = (key.trim().to_string(), value.trim());
        let values = if key == "interface" {
            value
                .split(';')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect()
        } else {
            vec![value.to_string()]
        };
        // Later lines win, as in GLib's key file parser.
        entries.retain(|(k, _)| *k != key);
        entries.push((key, values));
    }
    if !found {
        return Err(ConfigError::MissingSection {
            path: path.to_path_buf(),
            section: section.to_string(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
