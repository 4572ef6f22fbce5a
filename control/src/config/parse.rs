//! Value parsers, shared by the command line and both file formats.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ngmedia_control::http::ng::HttpNgAccess;
use ngmedia_control::state_store::redis::{self as ha, config::RedisTarget};
use tracing::level_filters::LevelFilter;

use super::interfaces::{Host, InterfaceSpec};
use super::{invalid, InvalidValue};
use crate::logging::LogFormat;

/// Upper bound on `--num-threads`: more media threads than this only adds contention.
const MAX_THREADS: usize = 1024;

/// `HOST`, `NAME/HOST`, either with `!ADVERTISED` (rtpengine's `--interface` syntax). `HOST`
/// is an IP address, a network device name, `any` or a host name; names are resolved at
/// start-up (`interfaces::expand`).
pub(super) fn parse_interface(s: &str) -> Result<InterfaceSpec, InvalidValue> {
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
    let host = parse_host(local)?;
    let advertised = advertised.map(parse_ip).transpose()?;
    if let Some(adv) = advertised {
        if adv.is_unspecified() {
            return Err(invalid(
                "the advertised address cannot be the wildcard address",
            ));
        }
        if let Host::Addr(local) = host {
            if adv.is_ipv4() != local.is_ipv4() {
                return Err(invalid(
                    "local and advertised addresses must be of the same family",
                ));
            }
        }
    } else if matches!(host, Host::Addr(a) if a.is_unspecified()) {
        return Err(invalid(
            "the wildcard address needs an advertised address (ADDR!ADVERTISED) for SDP",
        ));
    }
    Ok(InterfaceSpec {
        name: name.to_string(),
        host,
        advertised,
    })
}

/// An IP address, or a device/host name (letters, digits, `.`, `-`, `_`, `:` for aliases
/// such as `eth0:1`).
fn parse_host(s: &str) -> Result<Host, InvalidValue> {
    let s = s.trim();
    if let Ok(ip) = parse_ip(s) {
        return Ok(Host::Addr(ip));
    }
    let name_like = !s.is_empty()
        && !s.starts_with('[')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@'));
    // Something that looks like an address but is not one (`300.1.1.1`) is a typo, not a
    // host name.
    if name_like && !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        Ok(Host::Name(s.to_string()))
    } else {
        Err(invalid(format!(
            "`{s}` is not an IP address, a network device or a host name"
        )))
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, InvalidValue> {
    let s = s.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| invalid(format!("`{bare}` is not an IP address")))
}

/// `[ADDR:]PORT` like rtpengine's `--listen-ng`: a bare port means 127.0.0.1, `localhost`
/// is 127.0.0.1, IPv6 addresses go in brackets.
pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, InvalidValue> {
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

pub(super) fn parse_port(s: &str) -> Result<u16, InvalidValue> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid("expected a port number 1-65535")),
        Ok(port) => Ok(port),
    }
}

/// Seconds, zero allowed.
pub(super) fn parse_secs(s: &str) -> Result<u64, InvalidValue> {
    // Bounded so that `Instant + Duration` can never overflow inside the engine.
    const MAX_SECS: u64 = 10 * 365 * 24 * 3600;
    match s.trim().parse::<u64>() {
        Ok(n) if n <= MAX_SECS => Ok(n),
        _ => Err(invalid(format!("expected whole seconds 0-{MAX_SECS}"))),
    }
}

/// Seconds, at least one: a zero idle timeout would end every call at the first tick.
pub(super) fn parse_positive_secs(s: &str) -> Result<u64, InvalidValue> {
    match parse_secs(s)? {
        0 => Err(invalid("must be at least 1 second")),
        n => Ok(n),
    }
}

pub(super) fn parse_threads(s: &str) -> Result<usize, InvalidValue> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= MAX_THREADS => Ok(n),
        _ => Err(invalid(format!(
            "expected a thread count 0-{MAX_THREADS} (0 = one per core)"
        ))),
    }
}

/// A TOS byte, 0-255 (rtpengine `--tos`).
pub(super) fn parse_tos(s: &str) -> Result<u8, InvalidValue> {
    s.trim()
        .parse::<u8>()
        .map_err(|_| invalid("expected a TOS value 0-255".to_string()))
}

/// rtpengine's syslog numbers or tracing level names.
pub(super) fn parse_log_level(s: &str) -> Result<LevelFilter, InvalidValue> {
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
pub(super) fn parse_log_format(s: &str) -> Result<LogFormat, InvalidValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(invalid("expected text or json")),
    }
}

/// A UDP destination `ADDR:PORT` (IPv6 in brackets).
pub(super) fn parse_destination(s: &str) -> Result<SocketAddr, InvalidValue> {
    match s.trim().parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 && !a.ip().is_unspecified() => Ok(a),
        _ => Err(invalid(
            "expected ADDR:PORT of a destination, e.g. 127.0.0.1:9000",
        )),
    }
}

pub(super) fn parse_bool(s: &str) -> Result<bool, InvalidValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(invalid("expected true or false")),
    }
}

pub(super) fn parse_redis(s: &str) -> Result<RedisTarget, InvalidValue> {
    ha::config::parse_redis_target(s).map_err(invalid)
}

pub(super) fn parse_ha_name(s: &str) -> Result<String, InvalidValue> {
    ha::config::parse_name(s).map_err(invalid)
}

/// `--max-sessions`: a count, or -1 for no limit (rtpengine's "disabled").
pub(super) fn parse_max_sessions(s: &str) -> Result<i64, InvalidValue> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|&n| n >= -1)
        .ok_or_else(|| {
            invalid("expected a number of calls (0 refuses every new call, -1: no limit)")
        })
}

/// `--max-load` / `--max-cpu`: a non-negative decimal number, 0 for no limit.
pub(super) fn parse_max_float(s: &str) -> Result<f64, InvalidValue> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| invalid("expected a non-negative number (0: no limit)"))
}

/// `--mos-alarm`: a MOS between 1 and 4.5, or 0 for off.
pub(super) fn parse_mos_alarm(s: &str) -> Result<f64, InvalidValue> {
    match s.trim().parse::<f64>() {
        Ok(v) if v == 0.0 || (1.0..=4.5).contains(&v) => Ok(v),
        _ => Err(invalid("expected a MOS from 1.0 to 4.5, or 0 (off)")),
    }
}

/// `--max-bandwidth`: bytes per second, 0 for no limit.
pub(super) fn parse_max_bandwidth(s: &str) -> Result<u64, InvalidValue> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| invalid("expected bytes per second (0: no limit)"))
}

/// `--ng-rate-limit`: requests a second, 0 for no limit.
pub(super) fn parse_ng_rate_limit(s: &str) -> Result<u32, InvalidValue> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| invalid("expected requests per second (0: no limit)"))
}

/// `--http-ng`: `open`, `token` or `off`.
pub(super) fn parse_http_ng(s: &str) -> Result<HttpNgAccess, InvalidValue> {
    HttpNgAccess::parse(s).ok_or_else(|| invalid("expected open, token or off"))
}
