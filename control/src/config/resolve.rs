//! Resolution into [`Settings`]: the command line over the file over the defaults, one
//! resolver per area, then validation.

use std::path::PathBuf;
use std::time::Duration;

use ngmedia_control::homer::HomerSettings;
use ngmedia_control::http::auth::BearerToken;
use ngmedia_control::load_limits::LoadLimitConfig;
use ngmedia_control::mqtt::{MqttConfig, MqttTls};
use ngmedia_control::state_store::redis::{self as ha, HaConfig};
use ngmedia_engine::core::config::{EngineConfig, Interface};
use tracing::level_filters::LevelFilter;

use super::file::parse_file;
use super::interfaces::{expand, lookup_host, system_devices, Host, InterfaceSpec};
use super::{
    Cli, ConfigError, DisplayInterface, HttpsSettings, Layer, LiSettings, MediaSettings, MqttLayer,
    RecordingSettings, Settings, TransportSettings, DEFAULT_CONFIG_FILE, DEFAULT_LISTEN_HTTP,
    DEFAULT_LISTEN_NG, DEFAULT_LI_DIR, DEFAULT_MEDIA_DIR, DEFAULT_MEDIA_MAX_BYTES,
    DEFAULT_MEDIA_MAX_SECONDS, DEFAULT_NG_RATE_LIMIT, DEFAULT_RECORDING_DIR, MIN_PORT_PAIRS,
};

impl Settings {
    /// Read the configuration file the command line points at (if any) and resolve.
    pub(crate) fn load(cli: &Cli) -> Result<Settings, ConfigError> {
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
    pub(super) fn resolve(
        cli: &Cli,
        file: Option<Layer>,
        mut warnings: Vec<String>,
    ) -> Result<Settings, ConfigError> {
        let file = file.unwrap_or_default();
        warnings.extend(cli.ignored_warning());
        let cli = cli.layer();
        warnings.extend(cli.notes.iter().cloned());
        let li = resolve_li(&cli, &file)?;
        let homer = resolve_homer(&cli, &file);
        let transports = resolve_transports(&cli, &file, &mut warnings)?;
        let load_limits = resolve_load_limits(&cli, &file);
        let ha = resolve_ha(&cli, &file)?;
        let defaults = EngineConfig::default();
        let secs = |c: Option<u64>, f: Option<u64>, d: Duration| {
            c.or(f).map(Duration::from_secs).unwrap_or(d)
        };
        let playout = playout(&cli, &file);
        let engine = EngineConfig {
            interfaces: match cli.interfaces.or(file.interfaces) {
                Some(specs) => expand_interfaces(&specs, &mut warnings)?,
                None => defaults.interfaces,
            },
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
            tos: cli.tos.or(file.tos).unwrap_or(defaults.tos),
            silence_detect: ngmedia_engine::core::transcode::SilenceDetect::from_options(
                cli.silence_detect.or(file.silence_detect).unwrap_or(0.0),
                &cli.cn_payload.or(file.cn_payload).unwrap_or_default(),
            ),
            playout,
            dtmf_log_dest: cli.dtmf_log_dest.or(file.dtmf_log_dest),
            fast_path: cli
                .fast_path
                .or(file.fast_path)
                .unwrap_or(defaults.fast_path),
            dtmf_digit_delay_ms: cli
                .dtmf_digit_delay
                .or(file.dtmf_digit_delay)
                .unwrap_or(ngmedia_engine::core::dtmf_security::DEFAULT_DIGIT_DELAY_MS),
            endpoint_learning: cli
                .endpoint_learning
                .or(file.endpoint_learning)
                .unwrap_or(defaults.endpoint_learning),
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
        if let Some(https) = transports.https.as_ref() {
            if http_token.is_none() && !https.listen.ip().is_loopback() {
                return Err(ConfigError::HttpWritesExposed(https.listen));
            }
        }

        let webhook = cli.webhook.clone().or(file.webhook.clone()).map(|mut w| {
            w.token = cli.webhook_token.clone().or(file.webhook_token.clone());
            w.ca = cli.webhook_ca.clone().or(file.webhook_ca.clone());
            w
        });
        let webhook_dtmf = cli.webhook_dtmf.or(file.webhook_dtmf).unwrap_or(false);
        let mos_alarm = cli.mos_alarm.or(file.mos_alarm).filter(|v| *v > 0.0);
        if webhook.is_none() {
            if webhook_dtmf {
                warnings.push("webhook-dtmf ignored: webhook-url is not set".into());
            }
            if mos_alarm.is_some() {
                warnings.push("mos-alarm ignored: webhook-url is not set".into());
            }
        }
        let webhook_ca = cli.webhook_ca.is_some() || file.webhook_ca.is_some();
        if webhook_ca && webhook.as_ref().is_none_or(|w| w.tls_name.is_none()) {
            warnings.push("webhook-ca ignored: webhook-url is not an https URL".into());
        }

        let mqtt = resolve_mqtt(&cli.mqtt, &file.mqtt)?;

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
                    .or(cli.recording_method)
                    .or(file.recording_method)
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
            homer,
            webhook,
            webhook_dtmf,
            mos_alarm,
            mqtt,
            forward_to: cli.forward_to.or(file.forward_to),
            dtls: match (
                cli.dtls_cert.or(file.dtls_cert),
                cli.dtls_key.or(file.dtls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => return Err(ConfigError::DtlsIncomplete),
            },
            ha,
            pidfile: cli.pidfile.or(file.pidfile),
            transports,
            load_limits,
            config_file: None,
            warnings,
        })
    }
}

/// ng over TCP, HTTP(S) and WebSocket.
fn resolve_transports(
    cli: &Layer,
    file: &Layer,
    warnings: &mut Vec<String>,
) -> Result<TransportSettings, ConfigError> {
    let cert = cli.https_cert.clone().or(file.https_cert.clone());
    let key = cli.https_key.clone().or(file.https_key.clone());
    let https = match (cli.listen_https.or(file.listen_https), cert, key) {
        (Some(listen), Some(cert), Some(key)) => Some(HttpsSettings { listen, cert, key }),
        (Some(_), _, _) => return Err(ConfigError::HttpsWithoutCert),
        (None, cert, key) => {
            if cert.is_some() || key.is_some() {
                warnings.push("https-cert/https-key ignored: listen-https is not set".into());
            }
            None
        }
    };
    Ok(TransportSettings {
        listen_tcp_ng: cli.listen_tcp_ng.or(file.listen_tcp_ng),
        https,
        http_ng: cli.http_ng.or(file.http_ng).unwrap_or_default(),
        ng_rate_limit: match cli.ng_rate_limit.or(file.ng_rate_limit) {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(DEFAULT_NG_RATE_LIMIT),
        },
    })
}

/// rtpengine's values for "no limit" (-1 sessions, 0 for the others) become `None`.
/// `--mqtt-*`: publishing is on when `mqtt-host` is given (rtpengine's defaults: port
/// 1883, keep-alive 30 s, every 5000 ms, the global scope, QoS 0).
fn resolve_mqtt(cli: &MqttLayer, file: &MqttLayer) -> Result<Option<MqttConfig>, ConfigError> {
    let pick = |f: fn(&MqttLayer) -> Option<String>| f(cli).or_else(|| f(file));
    let path = |f: fn(&MqttLayer) -> Option<PathBuf>| f(cli).or_else(|| f(file));
    let Some(host) = pick(|l| l.host.clone()).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let topic = pick(|l| l.topic.clone())
        .filter(|t| !t.is_empty())
        .ok_or(ConfigError::MqttWithoutTopic)?;
    let (cafile, capath) = (path(|l| l.cafile.clone()), path(|l| l.capath.clone()));
    let (certfile, keyfile) = (path(|l| l.certfile.clone()), path(|l| l.keyfile.clone()));
    let tls = if cafile.is_some() || capath.is_some() {
        if certfile.is_some() != keyfile.is_some() {
            return Err(ConfigError::MqttTlsIncomplete);
        }
        Some(MqttTls {
            cafile,
            capath,
            certfile,
            keyfile,
            alpn: pick(|l| l.tls_alpn.clone()),
        })
    } else if certfile.is_some() || keyfile.is_some() {
        return Err(ConfigError::MqttTlsIncomplete);
    } else {
        None
    };
    let user = pick(|l| l.user.clone()).filter(|u| !u.is_empty());
    Ok(Some(MqttConfig {
        host,
        port: cli.port.or(file.port).unwrap_or(1883),
        client_id: pick(|l| l.id.clone())
            .filter(|i| !i.is_empty())
            .unwrap_or_else(ngmedia_control::mqtt::generated_client_id),
        keepalive: cli.keepalive.or(file.keepalive).unwrap_or(30),
        password: user.is_some().then(|| pick(|l| l.pass.clone())).flatten(),
        user,
        tls,
        qos: cli.qos.or(file.qos).unwrap_or(0),
        topic,
        interval: Duration::from_millis(cli.interval.or(file.interval).unwrap_or(5000).max(1)),
        scope: cli.scope.or(file.scope).unwrap_or_default(),
    }))
}

fn resolve_load_limits(cli: &Layer, file: &Layer) -> LoadLimitConfig {
    let positive = |v: Option<f64>| v.filter(|v| *v > 0.0);
    LoadLimitConfig {
        max_sessions: cli
            .max_sessions
            .or(file.max_sessions)
            .and_then(|n| u64::try_from(n).ok()),
        max_load: positive(cli.max_load.or(file.max_load)),
        max_cpu: positive(cli.max_cpu.or(file.max_cpu)),
        max_bandwidth: cli.max_bandwidth.or(file.max_bandwidth).filter(|&b| b > 0),
        max_transcoding_load: positive(cli.max_transcoding_load.or(file.max_transcoding_load)),
    }
}

/// Interfaces as configured, device names, `any` and host names replaced by their addresses.
fn expand_interfaces(
    specs: &[InterfaceSpec],
    warnings: &mut Vec<String>,
) -> Result<Vec<Interface>, ConfigError> {
    let needs_devices = specs.iter().any(|s| matches!(s.host, Host::Name(_)));
    let devices = if needs_devices {
        system_devices()
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let (list, remark) =
            expand(spec, &devices, &lookup_host).map_err(|reason| ConfigError::Interface {
                spec: spec.display(),
                reason,
            })?;
        warnings.extend(remark);
        out.extend(list);
    }
    Ok(out)
}

/// The LI listener: off unless `listen-li`; then a token and/or mutual TLS are required.
fn resolve_homer(cli: &Layer, file: &Layer) -> Option<HomerSettings> {
    use ngmedia_control::homer::{hep::PROTO_NG_DEFAULT, HomerTransport};
    Some(HomerSettings {
        target: cli.homer.or(file.homer)?,
        transport: if cli.homer_tcp.or(file.homer_tcp).unwrap_or(false) {
            HomerTransport::Tcp
        } else {
            HomerTransport::Udp
        },
        capture_id: cli.homer_id.or(file.homer_id).unwrap_or(2001),
        rtcp: !cli.homer_no_rtcp.or(file.homer_no_rtcp).unwrap_or(false),
        ng: cli.homer_ng.or(file.homer_ng).unwrap_or(false),
        ng_proto: cli
            .homer_ng_proto
            .or(file.homer_ng_proto)
            .unwrap_or(PROTO_NG_DEFAULT),
    })
}

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
        (Some(cert), Some(key)) => Some(ngmedia_control::tls::TlsFiles { cert, key, ca }),
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
    let secs =
        |c: Option<u64>, f: Option<u64>, d: Duration| c.or(f).map(Duration::from_secs).unwrap_or(d);
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

/// The playout of decoded streams from rtpengine's DTX and jitter buffer options (unset
/// ones at rtpengine's defaults).
fn playout(cli: &Layer, file: &Layer) -> ngmedia_engine::core::transcode::PlayoutConfig {
    let d = ngmedia_engine::core::transcode::PlayoutConfig::default();
    let cn = cli
        .dtx_cn_params
        .as_ref()
        .or(file.dtx_cn_params.as_ref())
        .and_then(|b| ngmedia_codecs::cn::CnPayload::parse(b).ok());
    ngmedia_engine::core::transcode::PlayoutConfig {
        dtx_delay_ms: cli.dtx_delay.or(file.dtx_delay).unwrap_or(d.dtx_delay_ms),
        jitter_packets: cli
            .jitter_buffer
            .or(file.jitter_buffer)
            .unwrap_or(d.jitter_packets),
        max_dtx_s: match cli.max_dtx.or(file.max_dtx) {
            None => d.max_dtx_s,
            Some(s) if s <= 0 => None,
            Some(s) => Some(s.min(u32::MAX as i64) as u32),
        },
        buffer_packets: cli
            .dtx_buffer
            .or(file.dtx_buffer)
            .unwrap_or(d.buffer_packets),
        lag_ms: cli.dtx_lag.or(file.dtx_lag).unwrap_or(d.lag_ms),
        shift_ms: cli.dtx_shift.or(file.dtx_shift).unwrap_or(d.shift_ms),
        cn,
        amr_cn: cli.amr_dtx_cn.or(file.amr_dtx_cn).unwrap_or(d.amr_cn),
    }
}
