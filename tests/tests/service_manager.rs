//! The daemon under a service manager, as the packaged systemd unit (`Type=notify`) runs it:
//! readiness reported on `NOTIFY_SOCKET` once ng answers, SIGHUP reloading the media library
//! (with `RELOADING=1` then `READY=1`), and `STOPPING=1` on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::http::{request, HttpClient};

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ngmedia-svc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The next report the daemon sent, or None after `limit`.
fn next_report(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn reports_readiness_reloads_on_sighup_and_reports_stopping() {
    let dir = scratch("notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let media_dir = dir.join("media");
    let media_flag = format!("--media-dir={}", media_dir.display());
    let mut daemon = Daemon::start_with_env(
        &[&media_flag],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    // Daemon::start returns once ping is answered, so READY=1 is already queued.
    assert_eq!(
        next_report(&socket, Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );

    // An item uploaded, then its files taken away by hand: the index still lists it until
    // SIGHUP makes the daemon read the folder again.
    let wav = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/media/speech-2s.wav"),
    )
    .unwrap();
    let headers = [("Content-Type", "application/octet-stream")];
    let up = request(daemon.http, "POST", "/media?name=hold", &headers, &wav).unwrap();
    assert_eq!(up.status, 201, "{}", up.text());
    let http = HttpClient::new(daemon.http);
    assert_eq!(http.get("/media").json()["count"], 1);
    for entry in std::fs::read_dir(&media_dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    assert_eq!(http.get("/media").json()["count"], 1);

    // SAFETY: kill(2) on the daemon's own pid, which this test started and still owns.
    assert_eq!(unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) }, 0);
    assert_eq!(
        next_report(&socket, Duration::from_secs(5)).as_deref(),
        Some("RELOADING=1")
    );
    assert_eq!(
        next_report(&socket, Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );
    assert_eq!(http.get("/media").json()["count"], 0);
    assert!(daemon.is_running(), "SIGHUP must not stop the daemon");
    assert!(daemon.log_text().contains("media library reloaded"));

    let status = daemon
        .terminate(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(status.success());
    assert_eq!(
        next_report(&socket, Duration::from_secs(1)).as_deref(),
        Some("STOPPING=1")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
