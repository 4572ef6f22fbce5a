//! Daemon configuration: command-line flags, an optional configuration file, built-in defaults.
//!
//! Option names follow rtpengine's so an operator can move an existing command line or
//! `rtpengine.conf` over unchanged. The file may be ngmedia's own TOML (same keys, kebab-case)
//! or an rtpengine.conf INI file; keys we do not act on are reported together in one warning
//! rather than failing, because real rtpengine.conf files carry many kernel, Redis and
//! recording settings that have no meaning here yet. The same holds on the command line:
//! every rtpengine option is accepted, and those ngmedia does not act on are named in one
//! warning at start-up.
//!
//! Precedence: a flag given on the command line wins over the file, the file wins over the
//! defaults. A repeated `--interface` replaces the file's interface list as a whole.
//!
//! Split by concern: `options` (the table of every option: the one source of truth for
//! `--help`, the command line and the file reader), `cli` (the command line), `file` (TOML and
//! rtpengine.conf into a `Layer`), `resolve` (command line over file over defaults, then
//! validation), `interfaces` (device names and `any` into addresses) and `parse` (value
//! parsers shared by the command line and both file formats).

mod cli;
mod file;
mod interfaces;
mod options;
mod parse;
#[cfg(test)]
mod reference;
mod resolve;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ngmedia_control::http::auth::BearerToken;
use ngmedia_control::http::ng::HttpNgAccess;
use ngmedia_control::load_limits::LoadLimitConfig;
use ngmedia_control::state_store::redis::{config::RedisTarget, HaConfig};
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_recordings::RecordingFormat;
use tracing::level_filters::LevelFilter;

use crate::logging::LogFormat;

pub(crate) use cli::Cli;

/// Read when no `--config` is given, and only if it exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/ngmedia/ngmedia.toml";
/// INI section read from an rtpengine.conf file unless `--config-section` names another.
pub(crate) const DEFAULT_CONFIG_SECTION: &str = "rtpengine";
pub(crate) const DEFAULT_LISTEN_NG: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2223);
pub(crate) const DEFAULT_LISTEN_HTTP: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// One call needs two RTP/RTCP pairs (one per party); a range that cannot hold a single call
/// is certainly a typo.
const MIN_PORT_PAIRS: u32 = 2;
/// Where recordings go unless configured (rtpengine's spool directory is configured too).
pub(crate) const DEFAULT_RECORDING_DIR: &str = "/var/lib/ngmedia/recordings";
/// Where the media library (music on hold, announcements) keeps uploaded files.
pub(crate) const DEFAULT_MEDIA_DIR: &str = "/var/lib/ngmedia/media";
/// Largest accepted upload: 20 MiB holds ~20 min of 128 kbit/s MP3 or 2 min of CD-quality WAV.
pub(crate) const DEFAULT_MEDIA_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Longest accepted audio: 10 minutes of hold music; every minute costs ~5.6 MiB of decoded
/// PCM (8+16+48 kHz) in memory while the file is in use.
pub(crate) const DEFAULT_MEDIA_MAX_SECONDS: u32 = 600;
/// Where LI tasks (and, by default, the LI audit log) are kept.
pub(crate) const DEFAULT_LI_DIR: &str = "/var/lib/ngmedia/li";
/// Most ng requests a second from one client address (`--ng-rate-limit`): above what one
/// client sends even back to back (a load generator setting up calls), bounding a flood.
pub(crate) const DEFAULT_NG_RATE_LIMIT: u32 = 20_000;

/// The lawful-interception listener and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiSettings {
    /// `None`: LI administration is off.
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    pub tls: Option<ngmedia_control::tls::TlsFiles>,
    pub dir: PathBuf,
}

/// The media library and `play media` file access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub max_seconds: u32,
    pub play_dirs: Vec<PathBuf>,
}

/// How calls are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordingSettings {
    pub dir: PathBuf,
    pub format: RecordingFormat,
    pub per_party: bool,
}

/// Everything the daemon needs to start, resolved from flags, file and defaults.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
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
    /// `--homer`: where RTCP (and ng) captures go; `None`: off.
    pub homer: Option<ngmedia_control::homer::HomerSettings>,
    /// `--webhook-url`: where call events go; `None`: off.
    pub webhook: Option<ngmedia_control::events::WebhookTarget>,
    /// `--webhook-dtmf`: DTMF digits are webhook events too.
    pub webhook_dtmf: bool,
    /// `--mos-alarm`: the MOS below which a stream raises `quality.alarm`; `None`: off.
    pub mos_alarm: Option<f64>,
    /// `--mqtt-host` and the other `--mqtt-*` options; `None`: off.
    pub mqtt: Option<ngmedia_control::mqtt::MqttConfig>,
    /// Destination of `start forwarding`.
    pub forward_to: Option<SocketAddr>,
    /// DTLS certificate and key files; `None`: generated at start-up.
    pub dtls: Option<(PathBuf, PathBuf)>,
    /// Redis high availability; `None`: calls live in memory only.
    pub ha: Option<HaConfig>,
    /// Where to write the process id (rtpengine's `--pidfile`).
    pub pidfile: Option<PathBuf>,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// ng over TCP, HTTP, WebSocket and HTTPS.
    pub transports: TransportSettings,
    /// Load limits for new calls.
    pub load_limits: LoadLimitConfig,
    /// Remarks to log once logging is up (unsupported keys, ignored options).
    pub warnings: Vec<String>,
}

/// ng beyond UDP (rtpengine `--listen-tcp-ng`, `--listen-http`'s `/ng` and WebSocket,
/// `--listen-https`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportSettings {
    /// ng over TCP; `None`: off.
    pub listen_tcp_ng: Option<SocketAddr>,
    /// The HTTPS listener (same API, `/ng` and WebSocket as the HTTP one, over TLS).
    pub https: Option<HttpsSettings>,
    /// Who may send ng over HTTP(S) and WebSocket.
    pub http_ng: HttpNgAccess,
    /// Most ng requests a second from one client address; `None`: no limit.
    pub ng_rate_limit: Option<u32>,
}

/// `--listen-https` with its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsSettings {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a value could not be used; shown after the option or key it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidValue(String);

fn invalid(reason: impl Into<String>) -> InvalidValue {
    InvalidValue(reason.into())
}

/// Why the configuration cannot be used. Every variant names the option or file at fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
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
    #[error("interface {spec}: {reason}")]
    Interface { spec: String, reason: String },
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
    #[error("dtls-cert and dtls-key go together")]
    DtlsIncomplete,
    #[error("li-tls-cert and li-tls-key go together")]
    LiTlsIncomplete,
    #[error("li-tls-ca needs li-tls-cert and li-tls-key (our side of mutual TLS)")]
    LiCaWithoutCert,
    #[error("standby needs redis: a standby follows the other instances through Redis")]
    StandbyWithoutRedis,
    #[error("listen-https needs https-cert and https-key (PEM certificate chain and its key)")]
    HttpsWithoutCert,
    #[error("mqtt-host needs mqtt-publish-topic: the topic the statistics are published to")]
    MqttWithoutTopic,
    #[error("mqtt-certfile and mqtt-keyfile go together, with mqtt-cafile or mqtt-capath")]
    MqttTlsIncomplete,
}

/// The `--mqtt-*` values of one source.
#[derive(Debug, Default, Clone, PartialEq)]
struct MqttLayer {
    host: Option<String>,
    port: Option<u16>,
    id: Option<String>,
    keepalive: Option<u16>,
    user: Option<String>,
    pass: Option<String>,
    cafile: Option<PathBuf>,
    capath: Option<PathBuf>,
    certfile: Option<PathBuf>,
    keyfile: Option<PathBuf>,
    tls_alpn: Option<String>,
    qos: Option<u8>,
    topic: Option<String>,
    /// Milliseconds.
    interval: Option<u64>,
    scope: Option<ngmedia_control::mqtt::Scope>,
}

/// Values from one source (command line or file); `None` = not given there.
#[derive(Debug, Default, Clone, PartialEq)]
struct Layer {
    interfaces: Option<Vec<interfaces::InterfaceSpec>>,
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
    tos: Option<u8>,
    /// `--silence-detect` percent of full scale.
    silence_detect: Option<f64>,
    /// `--cn-payload` bytes (repeatable).
    cn_payload: Option<Vec<u8>>,
    /// `--dtx-delay`, `--max-dtx`, `--dtx-buffer`, `--dtx-lag`, `--dtx-shift` (ms, s,
    /// packets, ms, ms), `--dtx-cn-params` bytes, `--amr-dtx=CN`, `--jitter-buffer`
    /// (packets).
    dtx_delay: Option<u32>,
    max_dtx: Option<i64>,
    dtx_buffer: Option<u32>,
    dtx_lag: Option<u32>,
    dtx_shift: Option<u32>,
    dtx_cn_params: Option<Vec<u8>>,
    amr_dtx_cn: Option<bool>,
    jitter_buffer: Option<u32>,
    /// `--dtmf-log-dest`.
    dtmf_log_dest: Option<SocketAddr>,
    /// `--homer` and its companions.
    homer: Option<SocketAddr>,
    homer_tcp: Option<bool>,
    homer_id: Option<u32>,
    homer_no_rtcp: Option<bool>,
    homer_ng: Option<bool>,
    homer_ng_proto: Option<u8>,
    /// `--webhook-url` and `--webhook-token`.
    webhook: Option<ngmedia_control::events::WebhookTarget>,
    webhook_token: Option<String>,
    webhook_ca: Option<PathBuf>,
    webhook_dtmf: Option<bool>,
    mos_alarm: Option<f64>,
    mqtt: MqttLayer,
    /// `--fast-path` (or rtpengine's `--table`).
    fast_path: Option<ngmedia_engine::core::config::FastPathMode>,
    /// `--dtmf-digit-delay` (ms).
    dtmf_digit_delay: Option<u32>,
    /// `--endpoint-learning`.
    endpoint_learning: Option<ngmedia_engine::core::latch::EndpointLearning>,
    log_level: Option<LevelFilter>,
    log_format: Option<LogFormat>,
    log_redact: Option<bool>,
    recording_dir: Option<PathBuf>,
    recording_format: Option<RecordingFormat>,
    recording_per_party: Option<bool>,
    /// rtpengine's `recording-method`, as the format it maps to; `recording_format` wins.
    recording_method: Option<RecordingFormat>,
    pidfile: Option<PathBuf>,
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
    dtls_cert: Option<PathBuf>,
    dtls_key: Option<PathBuf>,
    redis: Option<RedisTarget>,
    redis_password: Option<String>,
    redis_prefix: Option<String>,
    instance_id: Option<String>,
    standby: Option<bool>,
    redis_heartbeat_ttl: Option<u64>,
    redis_sync_interval: Option<u64>,
    listen_tcp_ng: Option<SocketAddr>,
    listen_https: Option<SocketAddr>,
    https_cert: Option<PathBuf>,
    https_key: Option<PathBuf>,
    http_ng: Option<HttpNgAccess>,
    /// 0: no limit.
    ng_rate_limit: Option<u32>,
    /// -1: no limit.
    max_sessions: Option<i64>,
    /// 0: no limit.
    max_load: Option<f64>,
    max_cpu: Option<f64>,
    max_bandwidth: Option<u64>,
    /// 0: no limit.
    max_transcoding_load: Option<f64>,
    /// Remarks about values mapped to ngmedia's nearest behaviour, logged at start-up.
    notes: Vec<String>,
}

/// Writes an interface back in `--interface` syntax.
pub(crate) struct DisplayInterface<'a>(pub &'a Interface);

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

#[cfg(test)]
mod tests;
