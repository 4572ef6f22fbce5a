//! HA settings: where Redis is, under which prefix, and who we are.

use std::fmt;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisConnectionInfo};

/// Key prefix unless `--redis-prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "ngmedia";
/// Instance id when the host name cannot be read.
pub const FALLBACK_INSTANCE_ID: &str = "ngmedia";
/// Default TTL of our heartbeat key: a standby takes over within about this long.
pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(3);
/// Default period of `Calls::sync_store` (live counters, latched addresses).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Longest accepted instance id or prefix: they appear in every key.
const MAX_NAME: usize = 128;

/// A Redis server, rtpengine's `--redis [PASSWORD@]HOST:PORT[/DB]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub password: Option<String>,
}

// By hand: the password must never reach a log line or an error message.
impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `HOST:PORT/DB`, without the password.
impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl RedisTarget {
    /// What the redis crate connects with (RESP2: pub/sub needs its own connection anyway).
    pub fn connection_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            addr: ConnectionAddr::Tcp(self.host.clone(), self.port),
            redis: RedisConnectionInfo {
                db: i64::from(self.db),
                username: None,
                password: self.password.clone(),
                protocol: ProtocolVersion::RESP2,
            },
        }
    }
}

/// Parse `[PASSWORD@]HOST:PORT[/DB]`; IPv6 hosts in brackets. The password is everything
/// before the last `@`, so it may itself contain `@`.
pub fn parse_redis_target(s: &str) -> Result<RedisTarget, String> {
    let s = s.trim();
    let (password, rest) = match s.rsplit_once('@') {
        Some((pw, rest)) => (Some(pw.to_string()).filter(|p| !p.is_empty()), rest),
        None => (None, s),
    };
    let (addr, db) = match rest.rsplit_once('/') {
        Some((addr, db)) => {
            let db = db
                .parse::<u32>()
                .map_err(|_| format!("bad database number `{db}`: expected 0, 1, 2, ..."))?;
            (addr, db)
        }
        None => (rest, 0),
    };
    let (host, port) = if let Some(v6) = addr.strip_prefix('[') {
        let (host, port) = v6
            .split_once("]:")
            .ok_or("expected [IPV6]:PORT for an IPv6 address")?;
        (host, port)
    } else {
        addr.rsplit_once(':')
            .ok_or("a port is needed: [PASSWORD@]HOST:PORT[/DB]")?
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("bad host `{host}`"));
    }
    if !addr.starts_with('[') && host.contains(':') {
        return Err("put an IPv6 address in brackets: [ADDR]:PORT".into());
    }
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(format!("bad port `{port}`: expected 1-65535")),
        Ok(p) => p,
    };
    Ok(RedisTarget {
        host: host.to_string(),
        port,
        db,
        password,
    })
}

/// An instance id or key prefix: printable, no spaces (they end up in keys, log lines and
/// Prometheus labels), at most 128 bytes.
pub fn parse_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_NAME {
        return Err(format!("longer than {MAX_NAME} bytes"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
    {
        return Err("no spaces, quotes, backslashes or control characters".into());
    }
    Ok(s.to_string())
}

/// The host name, our instance id unless `--instance-id` is given.
pub fn default_instance_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most that many
    // bytes and we stop at the first NUL (or the end when the name was truncated).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return FALLBACK_INSTANCE_ID.to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .and_then(|name| parse_name(name).ok())
        .unwrap_or_else(|| FALLBACK_INSTANCE_ID.to_string())
}

/// Everything the HA side needs, resolved from the command line and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    pub redis: RedisTarget,
    /// `P` in the key names.
    pub prefix: String,
    pub instance_id: String,
    /// Follow other instances and take their calls over when they die.
    pub standby: bool,
    /// TTL of our heartbeat key; refreshed every third of it.
    pub heartbeat_ttl: Duration,
    /// Period of `Calls::sync_store`.
    pub sync_interval: Duration,
}

impl HaConfig {
    /// `active` or `standby`, as in logs and `ngmedia_instance_info`.
    pub fn role(&self) -> &'static str {
        if self.standby {
            "standby"
        } else {
            "active"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, db: u32, password: Option<&str>) -> RedisTarget {
        RedisTarget {
            host: host.into(),
            port,
            db,
            password: password.map(String::from),
        }
    }

    #[test]
    fn parses_rtpengine_redis_syntax() {
        for (text, want) in [
            ("127.0.0.1:6379", target("127.0.0.1", 6379, 0, None)),
            ("127.0.0.1:6379/5", target("127.0.0.1", 6379, 5, None)),
            (
                "secret@10.0.0.1:6380/2",
                target("10.0.0.1", 6380, 2, Some("secret")),
            ),
            (
                "p@ss@redis.example:6379",
                target("redis.example", 6379, 0, Some("p@ss")),
            ),
            ("[::1]:6379/1", target("::1", 6379, 1, None)),
            ("@localhost:6379", target("localhost", 6379, 0, None)),
        ] {
            assert_eq!(parse_redis_target(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects_bad_redis_targets() {
        for text in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "127.0.0.1:6379/x",
            "127.0.0.1:6379/-1",
            ":6379",
            "::1:6379",
            "[::1]6379",
            "pw@",
        ] {
            assert!(parse_redis_target(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn password_is_never_shown() {
        let t = parse_redis_target("hunter2@127.0.0.1:6379/3").unwrap();
        assert_eq!(t.to_string(), "127.0.0.1:6379/3");
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(target("::1", 6379, 0, None).to_string(), "[::1]:6379/0");
        let info = t.connection_info();
        assert_eq!(info.redis.db, 3);
        assert_eq!(info.redis.password.as_deref(), Some("hunter2"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_name(" media-1.dc2 ").unwrap(), "media-1.dc2");
        for bad in ["", "a b", "a\"b", "a\\b", "a\nb", &"x".repeat(129)] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
        let id = default_instance_id();
        assert!(parse_name(&id).is_ok(), "{id}");
    }
}
