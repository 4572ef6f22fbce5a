//! Configuration files: ngmedia's TOML or an rtpengine.conf INI section, read into a
//! `Layer` of the same option names as the command line.

use std::path::Path;

use super::options::{self, Action, Value};
use super::{invalid, ConfigError, InvalidValue, Layer, DEFAULT_CONFIG_SECTION};

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
        let acted = apply_key(&mut layer, &key, &values).map_err(|reason| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.clone(),
            reason,
        })?;
        if !acted && !unsupported.contains(&key) {
            unsupported.push(key);
        }
    }
    if !unsupported.is_empty() {
        warnings.push(format!(
            "config file {}: ignoring keys ngmedia does not support: {}",
            path.display(),
            unsupported.join(", ")
        ));
    }
    let notes = std::mem::take(&mut layer.notes);
    warnings.extend(
        notes
            .into_iter()
            .map(|n| format!("config file {}: {n}", path.display())),
    );
    Ok((layer, warnings))
}

/// Store one file key through the option table; `values` has one entry except for options
/// that may repeat. Returns whether ngmedia acts on the key (false: unknown or ignored).
fn apply_key(layer: &mut Layer, key: &str, values: &[String]) -> Result<bool, InvalidValue> {
    let Some(opt) = options::find(key) else {
        return Ok(false);
    };
    if values.len() != 1 && !matches!(opt.value, Value::Many(_)) {
        return Err(invalid("expected a single value, not a list"));
    }
    match opt.action {
        Action::Set(set) => {
            for v in values {
                set(layer, v)?;
            }
            Ok(true)
        }
        Action::Ignore(_) => {
            for v in values {
                opt.check_ignored(v)?;
            }
            Ok(false)
        }
        Action::Startup => Ok(false),
    }
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
/// `#` comments; options that may repeat, such as `interface`, separate their values by `;`).
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
        let many = options::find(&key).is_some_and(|o| matches!(o.value, Value::Many(_)));
        let values = if many {
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
