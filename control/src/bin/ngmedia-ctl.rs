//! `ngmedia-ctl`: look at and steer a running ngmedia daemon from a shell.
//!
//! It talks to the daemon's HTTP API (`list`, `show`, `terminate`, `stats`) and to its ng
//! socket (`ping`, exactly as Kamailio checks an engine). The HTTP client is a few lines of
//! HTTP/1.1 over a std `TcpStream` (one request per connection, `Connection: close`): the API
//! is on loopback or behind a TLS-terminating proxy, and a client library would pull in an
//! async runtime for four GETs.
//!
//! Output is a human-readable table, or the API's JSON unchanged with `--json`. Exit status:
//! 0 success, 1 the daemon answered with an error or could not be reached, 2 bad usage.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::Value;

/// Largest HTTP response read: a `list` of 10,000 calls is a few MB.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "ngmedia-ctl",
    version,
    about = "Inspect and control a running ngmedia daemon (HTTP API and ng)"
)]
struct Cli {
    /// Base URL of the daemon's HTTP API.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "NGMEDIA_URL"
    )]
    url: String,
    /// Bearer token for writes (`terminate`).
    #[arg(
        long,
        global = true,
        env = "NGMEDIA_HTTP_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// ng address for `ping` (host:port, UDP).
    #[arg(long, global = true, default_value = "127.0.0.1:2223")]
    ng: String,
    /// Print the daemon's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the daemon.
    #[arg(long, global = true, default_value_t = 5.0, value_parser = parse_timeout)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Active calls with their parties, packets and quality.
    List {
        /// Show at most this many calls (newest first).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// One call: parties, streams, addresses, counters and quality.
    Show { call_id: String },
    /// End a call now (needs the token when the daemon has one).
    Terminate { call_id: String },
    /// Engine statistics: calls, ports, packets, drops, ng requests.
    Stats,
    /// Load limits and the figures they are checked against; with --max-sessions, change the
    /// session limit (rtpengine-ctl's `set maxsessions`; needs the token when the daemon has
    /// one).
    Limits {
        /// New session limit: a number of calls (0 drains: calls in progress go on, new ones
        /// are refused), or -1 for no limit.
        #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..))]
        max_sessions: Option<i64>,
    },
    /// Check the daemon answers ng (`ping` → `pong`) and report the round trip.
    Ping,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err("expected seconds between 0 and 3600".into()),
    }
}

/// Why a command failed; printed after `ngmedia-ctl: `.
#[derive(Debug, thiserror::Error)]
enum CtlError {
    #[error("invalid --url {0:?}: expected http://HOST:PORT[/PREFIX]")]
    BadUrl(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot reach the daemon at {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("HTTP exchange with {addr} failed: {source}")]
    Io { addr: String, source: io::Error },
    #[error("malformed HTTP response: {0}")]
    BadResponse(String),
    #[error("{status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("no ng reply from {addr} within {timeout:?}")]
    NgTimeout { addr: String, timeout: Duration },
    #[error("ng: {0}")]
    Ng(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ngmedia-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<String, CtlError> {
    let timeout = Duration::from_secs_f64(cli.timeout);
    if let Command::Ping = cli.command {
        return ping(&cli.ng, timeout, cli.json);
    }
    let api = Api::new(&cli.url, cli.token.clone(), timeout)?;
    let (json, table): (Value, fn(&Value) -> String) = match &cli.command {
        Command::List { limit } => {
            let path = match limit {
                Some(n) => format!("/calls?limit={n}"),
                None => "/calls".to_owned(),
            };
            (api.request("GET", &path)?, list_table)
        }
        Command::Show { call_id } => (
            api.request("GET", &format!("/calls/{}", encode_segment(call_id)))?,
            call_table,
        ),
        Command::Terminate { call_id } => (
            api.request("DELETE", &format!("/calls/{}", encode_segment(call_id)))?,
            terminated,
        ),
        Command::Stats => (api.request("GET", "/statistics")?, stats_table),
        Command::Limits { max_sessions } => {
            let json = match max_sessions {
                Some(n) => api.request_body(
                    "PUT",
                    "/load-limits",
                    Some(&serde_json::json!({ "max_sessions": n }).to_string()),
                )?,
                None => api.request("GET", "/load-limits")?,
            };
            (json, limits_table)
        }
        Command::Ping => unreachable!("handled above"),
    };
    Ok(if cli.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        )
    } else {
        table(&json)
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client.

struct Api {
    host: String,
    port: u16,
    prefix: String,
    token: Option<String>,
    timeout: Duration,
}

impl Api {
    fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Api, CtlError> {
        let bad = || CtlError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Api {
            host: host.to_owned(),
            port,
            prefix: prefix.to_owned(),
            token: token.filter(|t| !t.is_empty()),
            timeout,
        })
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// One request; the JSON body of a 2xx response, or the API's error as `CtlError::Api`.
    fn request(&self, method: &str, path: &str) -> Result<Value, CtlError> {
        self.request_body(method, path, None)
    }

    /// As [`request`](Self::request), with a JSON body.
    fn request_body(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Value, CtlError> {
        let addr = self.addr();
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let target: SocketAddr = (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CtlError::Resolve(addr.clone()))?;
        let mut stream = TcpStream::connect_timeout(&target, self.timeout).map_err(|source| {
            CtlError::Connect {
                addr: addr.clone(),
                source,
            }
        })?;
        let io_err = |source| CtlError::Io {
            addr: addr.clone(),
            source,
        };
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(io_err)?;
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\
             User-Agent: ngmedia-ctl/{}\r\nConnection: close\r\n",
            self.prefix,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(token) = &self.token {
            let _ = write!(req, "Authorization: Bearer {token}\r\n");
        }
        match body {
            Some(body) => {
                let _ = write!(
                    req,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            None => req.push_str("Content-Length: 0\r\n\r\n"),
        }
        stream.write_all(req.as_bytes()).map_err(io_err)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(io_err)?;
        let (status, body) = parse_response(&raw)?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !(200..300).contains(&status) {
            let detail = json
                .as_ref()
                .and_then(|j| j.get("detail")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(CtlError::Api { status, detail });
        }
        json.ok_or_else(|| CtlError::BadResponse("body is not JSON".into()))
    }
}

/// Status code and body of a complete HTTP/1.1 response (`Content-Length`, chunked, or
/// delimited by the connection closing).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), CtlError> {
    let bad = |m: &str| CtlError::BadResponse(m.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or_else(|| bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Percent-encode a path segment (call-ids may hold `@`, `/`, spaces...).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ng ping.

fn ping(addr: &str, timeout: Duration, json: bool) -> Result<String, CtlError> {
    let target: SocketAddr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CtlError::Resolve(addr.to_owned()))?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let io_err = |source| CtlError::Io {
        addr: addr.to_owned(),
        source,
    };
    let socket = UdpSocket::bind(bind).map_err(io_err)?;
    socket.connect(target).map_err(io_err)?;
    let cookie = format!("ctl{:08x}", std::process::id() ^ rand_u32());
    let request = format!("{cookie} d7:command4:pinge");
    let started = Instant::now();
    let deadline = started + timeout;
    let mut buf = [0u8; 2048];
    // Resend every 500 ms like Kamailio, until the deadline.
    while Instant::now() < deadline {
        socket.send(request.as_bytes()).map_err(io_err)?;
        let resend_at = (Instant::now() + Duration::from_millis(500)).min(deadline);
        loop {
            let left = resend_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left)).map_err(io_err)?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // ICMP port unreachable from an earlier send: nobody listens yet.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(io_err(e)),
            };
            let reply = &buf[..n];
            let Some(body) = reply
                .strip_prefix(cookie.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            else {
                continue; // a late reply to another request
            };
            let rtt = started.elapsed();
            let text = String::from_utf8_lossy(body);
            if !text.contains("6:result4:pong") {
                return Err(CtlError::Ng(format!("unexpected reply {text}")));
            }
            let ms = rtt.as_secs_f64() * 1000.0;
            return Ok(if json {
                format!("{{\"result\":\"pong\",\"address\":\"{target}\",\"rtt_ms\":{ms:.3}}}\n")
            } else {
                format!("pong from {target} in {ms:.3} ms\n")
            });
        }
        if started.elapsed() > timeout {
            break;
        }
        std::thread::sleep(
            Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    Err(CtlError::NgTimeout {
        addr: target.to_string(),
        timeout,
    })
}

/// A little entropy for the ng cookie without a dependency.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

// ---------------------------------------------------------------------------------------------
// Tables.

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{cell:<w$}", w = widths[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn fixed(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |f| format!("{f:.digits$}"))
}

fn list_table(v: &Value) -> String {
    let calls = v["calls"].as_array().map(Vec::as_slice).unwrap_or_default();
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            let legs = c["legs"].as_array().map(Vec::as_slice).unwrap_or_default();
            let tags: Vec<String> = legs.iter().map(|l| s(&l["tag"])).collect();
            let streams = legs.iter().flat_map(|l| {
                l["streams"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            });
            let (mut worst_mos, mut worst_loss) = (None::<f64>, None::<f64>);
            for st in streams {
                if let Some(m) = st["mos"].as_f64() {
                    worst_mos = Some(worst_mos.map_or(m, |w| w.min(m)));
                }
                if let Some(l) = st["loss_percent"].as_f64() {
                    worst_loss = Some(worst_loss.map_or(l, |w| w.max(l)));
                }
            }
            vec![
                s(&c["call_id"]),
                tags.join(","),
                s(&c["packets"]),
                s(&c["errors"]),
                worst_loss.map_or("-".into(), |l| format!("{l:.1}")),
                worst_mos.map_or("-".into(), |m| format!("{m:.2}")),
            ]
        })
        .collect();
    let mut out = table(
        &["CALL-ID", "TAGS", "PACKETS", "ERRORS", "LOSS%", "MOS"],
        &rows,
    );
    let _ = writeln!(out, "{} of {} call(s)", s(&v["count"]), s(&v["total"]));
    out
}

fn call_table(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "call {}", s(&v["call_id"]));
    let mut rows = Vec::new();
    for leg in v["legs"].as_array().map(Vec::as_slice).unwrap_or_default() {
        for media in leg["medias"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for st in media["streams"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let q = &st["quality"];
                rows.push(vec![
                    s(&leg["tag"]),
                    format!("{}/{}", s(&media["index"]), s(&st["component"])),
                    s(&media["codec"]),
                    s(&st["local"]),
                    s(&st["endpoint"]),
                    s(&st["counters"]["packets"]),
                    s(&st["counters"]["errors"]),
                    if q.is_null() {
                        "-".into()
                    } else {
                        s(&q["packets_lost"])
                    },
                    fixed(&q["loss_percent"], 1),
                    fixed(&q["jitter_ms"], 1),
                    fixed(&q["rtt_ms"], 1),
                    fixed(&q["mos"]["average"]["mos"], 2),
                ]);
            }
        }
    }
    out.push_str(&table(
        &[
            "TAG",
            "MEDIA",
            "CODEC",
            "LOCAL",
            "ENDPOINT",
            "PACKETS",
            "ERRORS",
            "LOST",
            "LOSS%",
            "JITTER-MS",
            "RTT-MS",
            "MOS",
        ],
        &rows,
    ));
    out
}

fn terminated(v: &Value) -> String {
    let packets = s(&v["totals"]["rtp"]["packets"]);
    format!("terminated {} ({packets} RTP packets)\n", s(&v["call_id"]))
}

fn limits_table(v: &Value) -> String {
    let limit = |v: &Value| match v {
        Value::Null => "off".to_owned(),
        other => s(other),
    };
    let rows = [
        ("max sessions", limit(&v["max_sessions"]), s(&v["sessions"])),
        ("max load", limit(&v["max_load"]), s(&v["load"])),
        ("max cpu (%)", limit(&v["max_cpu"]), s(&v["cpu_percent"])),
        (
            "max bandwidth (B/s)",
            limit(&v["max_bandwidth"]),
            s(&v["bandwidth_bytes_per_s"]),
        ),
        (
            "max transcoding (%)",
            limit(&v["max_transcoding_load"]),
            s(&v["transcoding_load_percent"]),
        ),
    ];
    let mut out = format!("{:<20} {:>10} {:>10}\n", "limit", "value", "now");
    for (name, value, now) in rows {
        out.push_str(&format!("{name:<20} {value:>10} {now:>10}\n"));
    }
    out.push_str(&match &v["refusing"] {
        Value::String(reason) => format!("refusing new calls: {reason} limit reached\n"),
        _ => "accepting new calls\n".to_owned(),
    });
    out
}

fn stats_table(v: &Value) -> String {
    let p = &v["packets"];
    let mut rows = vec![
        ("uptime (s)", s(&v["engine_uptime_s"])),
        ("calls active", s(&v["calls"]["active"])),
        ("calls total", s(&v["calls"]["total"])),
        ("calls timed out", s(&v["calls"]["timed_out"])),
        ("calls deleted", s(&v["calls"]["deleted"])),
        (
            "ports in use",
            format!(
                "{} of {}",
                s(&v["ports"]["in_use"]),
                s(&v["ports"]["total"])
            ),
        ),
        ("RTP packets", s(&p["rtp_packets"])),
        ("RTP bytes", s(&p["rtp_bytes"])),
        ("RTCP packets", s(&p["rtcp_packets"])),
        ("relayed packets", s(&p["relayed_packets"])),
        ("RTP lost", s(&p["rtp_lost"])),
    ];
    let drops: Vec<(String, String)> = p["drops"]
        .as_object()
        .map(|d| {
            d.iter()
                .map(|(k, n)| (format!("drops {k}"), s(n)))
                .collect()
        })
        .unwrap_or_default();
    let requests: Vec<(String, String)> = v["ng"]["requests"]
        .as_object()
        .map(|r| {
            r.iter()
                .map(|(k, c)| {
                    (
                        format!("ng {k}"),
                        format!("{} ok, {} error", s(&c["ok"]), s(&c["error"])),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut all: Vec<Vec<String>> = rows.drain(..).map(|(k, v)| vec![k.to_owned(), v]).collect();
    all.extend(drops.into_iter().chain(requests).map(|(k, v)| vec![k, v]));
    table(&["FIGURE", "VALUE"], &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls() {
        let t = Duration::from_secs(1);
        let a = Api::new("http://127.0.0.1:8080", None, t).unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.prefix.as_str()),
            ("127.0.0.1", 8080, "")
        );
        let a = Api::new("http://[::1]:9/ngmedia/", Some(String::new()), t).unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.prefix.as_str()),
            ("[::1]", 9, "/ngmedia")
        );
        assert!(a.token.is_none());
        let a = Api::new("http://localhost", None, t).unwrap();
        assert_eq!(a.port, 80);
        assert!(Api::new("https://x:1", None, t).is_err());
        assert!(Api::new("http://:80", None, t).is_err());
        assert!(Api::new("http://h:port", None, t).is_err());
    }

    #[test]
    fn responses() {
        let (st, body) =
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}garbage").unwrap();
        assert_eq!((st, body.as_slice()), (200, &b"{}"[..]));
        let (st, body) = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((st, body.as_slice()), (404, &b"abcde"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SMTP 200\r\n\r\n").is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("a b/c@d~e"), "a%20b%2Fc%40d~e");
    }

    #[test]
    fn list_shows_worst_quality() {
        let v = json!({"total": 1, "count": 1, "calls": [{"call_id": "c1", "packets": 10,
            "errors": 0, "legs": [{"tag": "a", "streams": [
                {"mos": 4.4, "loss_percent": 0.0}, {"mos": 3.39, "loss_percent": 10.0}]},
                {"tag": "", "streams": []}]}]});
        let t = list_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CALL-ID  TAGS  PACKETS  ERRORS  LOSS%  MOS");
        assert_eq!(lines[1], "c1       a,-   10       0       10.0   3.39");
        assert_eq!(lines[2], "1 of 1 call(s)");
    }
}
