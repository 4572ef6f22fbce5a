//! The LI audit log: one line per request on the LI listener, accepted or refused, appended
//! to its own file (mode 0600), never to the ordinary log.
//!
//! Line format (UTF-8, space-separated `key=value`, values without spaces):
//! `2025-01-31T12:00:00.123Z client=127.0.0.1:41234 action=create xid=<uuid|-> outcome=201`

use ngmedia_engine::sync::lock;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The append-only audit file.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line. A failing write cannot be reported anywhere but stderr's ordinary
    /// log, which must not learn about LI; the caller refuses the request instead.
    pub fn record(
        &self,
        client: Option<SocketAddr>,
        action: &str,
        xid: Option<&str>,
        outcome: &str,
    ) -> io::Result<()> {
        let line = format_line(now_ms(), client, action, xid, outcome);
        let mut f = lock(&self.file);
        // One write per line: O_APPEND keeps lines whole even with other writers.
        f.write_all(line.as_bytes())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Keep a value on one token: anything outside printable ASCII, and spaces, become `_`.
fn clean(s: &str) -> String {
    s.chars()
        .take(128)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

fn format_line(
    unix_ms: u64,
    client: Option<SocketAddr>,
    action: &str,
    xid: Option<&str>,
    outcome: &str,
) -> String {
    let client = client.map_or("-".to_owned(), |c| c.to_string());
    format!(
        "{} client={client} action={} xid={} outcome={}\n",
        rfc3339_ms(unix_ms),
        clean(action),
        xid.map_or("-".to_owned(), clean),
        clean(outcome)
    )
}

/// UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` (days-to-civil after H. Hinnant).
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn lines_are_appended_one_token_per_field() {
        let path = std::env::temp_dir().join(format!("ngmedia-audit-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = AuditLog::open(&path).unwrap();
        log.record(
            Some("127.0.0.1:5000".parse().unwrap()),
            "create",
            Some("a b"),
            "201",
        )
        .unwrap();
        log.record(None, "list", None, "401 missing token").unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        log.record(None, "delete", Some("x"), "404").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with(" client=127.0.0.1:5000 action=create xid=a_b outcome=201"));
        assert!(lines[1].ends_with(" client=- action=list xid=- outcome=401_missing_token"));
        assert!(lines[2].ends_with(" action=delete xid=x outcome=404"));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        std::fs::remove_file(&path).unwrap();
    }
}
