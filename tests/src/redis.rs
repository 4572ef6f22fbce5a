//! A private `redis-server` on loopback for the high-availability tests, and a tiny blocking
//! RESP client to look at what the daemon stored.
//!
//! The client is deliberately minimal (no pipelining, no pub/sub): the tests only read keys
//! (`HGET`, `SMEMBERS`, `EXISTS`, `KEYS`, `TTL`) and `PING`. It shares no code with the
//! daemon's Redis client, so a protocol bug there cannot hide behind the same bug here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The server the tests run.
const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// How long a fresh server gets to answer `PING`.
const START_LIMIT: Duration = Duration::from_secs(5);
/// Read/write timeout of the test client.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on one reply; the tests never read anything near this big.
const MAX_REPLY: usize = 16 << 20;
/// Upper bound on array nesting, so a hostile reply cannot overflow the stack.
const MAX_DEPTH: usize = 8;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo` or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...` or `*-1` (nil).
    Array(Option<Vec<RespValue>>),
}

impl RespValue {
    /// A bulk or simple string as UTF-8 text (`None` for nil, errors, integers, arrays).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RespValue::Simple(s) => Some(s),
            RespValue::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array reply as text (`SMEMBERS`, `KEYS`); non-text elements are
    /// skipped.
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match self {
            RespValue::Array(Some(items)) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, RespValue::Bulk(None) | RespValue::Array(None))
    }
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("malformed RESP: {0}")]
    Malformed(&'static str),
    #[error("RESP reply larger than {MAX_REPLY} bytes")]
    TooLarge,
    #[error("redis I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before a complete reply")]
    Closed,
}

/// Parse one reply from the start of `buf`: the value and how many bytes it took, or
/// `Ok(None)` when `buf` holds only part of a reply so far.
pub fn parse(buf: &[u8]) -> Result<Option<(RespValue, usize)>, RespError> {
    parse_at(buf, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(RespValue, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::Malformed("arrays nested too deep"));
    }
    let Some(line_end) = find_crlf(buf) else {
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..line_end].split_first() else {
        return Err(RespError::Malformed("empty line"));
    };
    let after_line = line_end + 2;
    let text = std::str::from_utf8(line).map_err(|_| RespError::Malformed("line is not UTF-8"))?;
    match kind {
        b'+' => Ok(Some((RespValue::Simple(text.to_owned()), after_line))),
        b'-' => Ok(Some((RespValue::Error(text.to_owned()), after_line))),
        b':' => {
            let n = text
                .parse()
                .map_err(|_| RespError::Malformed("bad integer"))?;
            Ok(Some((RespValue::Integer(n), after_line)))
        }
        b'$' => {
            let Some(len) = length(text)? else {
                return Ok(Some((RespValue::Bulk(None), after_line)));
            };
            let end = after_line
                .checked_add(len)
                .ok_or(RespError::Malformed("bulk length overflows"))?;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(RespError::Malformed("bulk string not followed by CRLF"));
            }
            Ok(Some((
                RespValue::Bulk(Some(buf[after_line..end].to_vec())),
                end + 2,
            )))
        }
        b'*' => {
            let Some(count) = length(text)? else {
                return Ok(Some((RespValue::Array(None), after_line)));
            };
            // Each element takes at least 3 bytes; refuse counts the buffer limit rules out
            // before allocating for them.
            if count > MAX_REPLY / 3 {
                return Err(RespError::TooLarge);
            }
            let mut items = Vec::with_capacity(count.min(1024));
            let mut at = after_line;
            for _ in 0..count {
                match parse_at(&buf[at..], depth + 1)? {
                    Some((v, used)) => {
                        items.push(v);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((RespValue::Array(Some(items)), at)))
        }
        _ => Err(RespError::Malformed("unknown reply type")),
    }
}

/// A bulk or array length: `None` for `-1` (nil).
fn length(text: &str) -> Result<Option<usize>, RespError> {
    if text == "-1" {
        return Ok(None);
    }
    let n: usize = text
        .parse()
        .map_err(|_| RespError::Malformed("bad length"))?;
    if n > MAX_REPLY {
        return Err(RespError::TooLarge);
    }
    Ok(Some(n))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Encode a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A blocking connection to one Redis server.
pub struct RespClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RespClient {
    pub fn connect(addr: SocketAddr) -> Result<RespClient, RespError> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RespClient {
            stream,
            buf: Vec::with_capacity(512),
        })
    }

    /// Send one command and read its reply (a Redis error reply is `Ok(RespValue::Error)`).
    pub fn cmd(&mut self, args: &[&str]) -> Result<RespValue, RespError> {
        self.stream.write_all(&encode_command(args))?;
        loop {
            if let Some((value, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(value);
            }
            if self.buf.len() > MAX_REPLY {
                return Err(RespError::TooLarge);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(RespError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A `redis-server` child on 127.0.0.1, without persistence, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Start a server on a free loopback port and wait until it answers `PING`.
    pub fn start() -> RedisServer {
        assert!(
            Path::new(REDIS_SERVER).is_file(),
            "redis-server not installed (apt-get install redis-server)"
        );
        let port = free_tcp_port();
        let dir = std::env::temp_dir().join(format!(
            "ngmedia-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The daemon's `--redis` value for database `db`: `127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u32) -> String {
        format!("127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh client connection, switched to database `db`.
    pub fn client(&self, db: u32) -> RespClient {
        let mut c = RespClient::connect(self.addr())
            .unwrap_or_else(|e| panic!("connect to redis {}: {e}", self.addr()));
        if db != 0 {
            let r = c
                .cmd(&["SELECT", &db.to_string()])
                .unwrap_or_else(|e| panic!("SELECT {db}: {e}"));
            assert_eq!(r, RespValue::Simple("OK".into()), "SELECT {db}");
        }
        c
    }

    /// Run one command on a new connection to database `db`.
    pub fn cmd(&self, db: u32, args: &[&str]) -> RespValue {
        self.client(db)
            .cmd(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Whether the server is running (this harness started it and it has not been stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kill the server at once (SIGKILL) and reap it; the data goes with it.
    pub fn stop(&mut self) {
        crate::kill_child(&mut self.child);
    }

    /// Stop the server and start a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        std::fs::create_dir_all(&self.dir)
            .unwrap_or_else(|e| panic!("create {}: {e}", self.dir.display()));
        let mut child = Command::new(REDIS_SERVER)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server not installed (apt-get install redis-server): {e}")
            });
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "redis-server on port {} exited during startup with {status}",
                    self.port
                );
            }
            if ping(self.addr()) {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server on port {} did not answer PING within {START_LIMIT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `PING` over a plain TCP connection answers exactly `+PONG`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut got = [0u8; 7];
    s.read_exact(&mut got).is_ok() && &got == b"+PONG\r\n"
}

fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral TCP port");
    l.local_addr().expect("local address").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> (RespValue, usize) {
        parse(bytes).unwrap().expect("complete reply")
    }

    #[test]
    fn simple_error_integer() {
        assert_eq!(one(b"+PONG\r\n"), (RespValue::Simple("PONG".into()), 7));
        assert_eq!(
            one(b"-ERR unknown command\r\n"),
            (RespValue::Error("ERR unknown command".into()), 22)
        );
        assert_eq!(one(b":-42\r\n"), (RespValue::Integer(-42), 6));
        assert_eq!(one(b":1\r\n+OK\r\n"), (RespValue::Integer(1), 4));
    }

    #[test]
    fn bulk_strings_nil_and_binary() {
        assert_eq!(
            one(b"$5\r\nalpha\r\n"),
            (RespValue::Bulk(Some(b"alpha".to_vec())), 11)
        );
        assert_eq!(one(b"$0\r\n\r\n"), (RespValue::Bulk(Some(Vec::new())), 6));
        assert_eq!(one(b"$-1\r\n"), (RespValue::Bulk(None), 5));
        assert!(one(b"$-1\r\n").0.is_nil());
        // CRLF inside the payload is data, the length decides.
        assert_eq!(
            one(b"$4\r\na\r\nb\r\n"),
            (RespValue::Bulk(Some(b"a\r\nb".to_vec())), 10)
        );
    }

    #[test]
    fn arrays_nested_and_nil() {
        let (v, used) = one(b"*3\r\n$1\r\na\r\n:7\r\n*1\r\n+x\r\n");
        assert_eq!(used, 23);
        assert_eq!(
            v,
            RespValue::Array(Some(vec![
                RespValue::Bulk(Some(b"a".to_vec())),
                RespValue::Integer(7),
                RespValue::Array(Some(vec![RespValue::Simple("x".into())])),
            ]))
        );
        assert_eq!(one(b"*0\r\n"), (RespValue::Array(Some(vec![])), 4));
        assert_eq!(one(b"*-1\r\n"), (RespValue::Array(None), 5));
        let members = one(b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n").0;
        assert_eq!(
            members.as_strings(),
            Some(vec!["foo".to_owned(), "bar".to_owned()])
        );
    }

    #[test]
    fn partial_replies_need_more_bytes() {
        let full = b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n";
        for cut in 0..full.len() {
            assert!(parse(&full[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert_eq!(one(full).1, full.len());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"?x\r\n"[..],
            b":12a\r\n",
            b"$x\r\n",
            b"$-2\r\n",
            b"$3\r\nfooXY",
            b"\r\n",
            b"*99999999999\r\n",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn commands_encode_as_bulk_arrays() {
        assert_eq!(
            encode_command(&["HGET", "ngmedia:call:c1", "owner"]),
            b"*3\r\n$4\r\nHGET\r\n$15\r\nngmedia:call:c1\r\n$5\r\nowner\r\n".to_vec()
        );
        assert_eq!(encode_command(&["PING"]), b"*1\r\n$4\r\nPING\r\n".to_vec());
    }

    #[test]
    fn private_server_answers_and_restarts_empty() {
        let mut redis = RedisServer::start();
        assert_eq!(redis.cmd(0, &["PING"]), RespValue::Simple("PONG".into()));
        assert_eq!(
            redis.cmd(2, &["HSET", "k", "owner", "a"]),
            RespValue::Integer(1)
        );
        assert_eq!(redis.cmd(2, &["HGET", "k", "owner"]).as_str(), Some("a"));
        assert!(
            redis.cmd(0, &["HGET", "k", "owner"]).is_nil(),
            "db 0 is another database"
        );
        assert_eq!(redis.cmd(2, &["SADD", "s", "x", "y"]).as_int(), Some(2));
        let mut members = redis.cmd(2, &["SMEMBERS", "s"]).as_strings().unwrap();
        members.sort();
        assert_eq!(members, ["x", "y"]);
        assert_eq!(redis.cmd(2, &["KEYS", "*"]).as_strings().unwrap().len(), 2);
        assert!(matches!(redis.cmd(2, &["NOSUCHCMD"]), RespValue::Error(_)));

        let addr = redis.addr();
        redis.stop();
        assert!(!redis.is_running());
        assert!(RespClient::connect(addr)
            .and_then(|mut c| c.cmd(&["PING"]))
            .is_err());
        redis.restart();
        assert_eq!(redis.addr(), addr, "restart keeps the port");
        assert_eq!(
            redis.cmd(2, &["EXISTS", "k"]).as_int(),
            Some(0),
            "restart is empty"
        );
    }
}
