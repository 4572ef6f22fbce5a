//! Configuration files: ngmedia's TOML or an rtpengine.conf INI section, read into a
//! `Layer` of the same option names as the command line.

use std::path::{Path, PathBuf};

use super::parse::{
    parse_bool, parse_destination, parse_ha_name, parse_interface, parse_listen, parse_log_format,
    parse_log_level, parse_port, parse_positive_secs, parse_recording_format, parse_redis,
    parse_secs, parse_threads,
};
use super::{invalid, ConfigError, InvalidValue, Layer, DEFAULT_CONFIG_SECTION};

/// Keys understood in a configuration file (TOML or rtpengine.conf), as long option names.
pub(super) const FILE_KEYS: &[&str] = &[
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
    "dtls-cert",
    "dtls-key",
    "forward-to",
    "redis",
    "redis-password",
    "redis-prefix",
    "instance-id",
    "standby",
    "redis-heartbeat-ttl",
    "redis-sync-interval",
];

/// Parse a configuration file: an rtpengine.conf when it has the INI section we read (or the
/// default `[rtpengine]` one), TOML otherwise. Returns the values and the warnings.
pub(super) fn parse_file(
    text: &str,
    path: &Path,
    section: &str,
) -> Result<(Layer, Vec<String>), ConfigError> {
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
        "dtls-cert" | "dtls-key" if value.is_empty() => {}
        "dtls-cert" => layer.dtls_cert = Some(PathBuf::from(value)),
        "dtls-key" => layer.dtls_key = Some(PathBuf::from(value)),
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
