//! Startup failures are reported in one line and exit with status 1.

use std::net::UdpSocket;
use std::time::Duration;

use ngmedia_tests::daemon::run_to_exit;

const LIMIT: Duration = Duration::from_secs(5);

#[test]
fn bad_port_range_exits_1_with_message() {
    let (status, stderr) = run_to_exit(
        &[
            "--config",
            "none",
            "--port-min",
            "40000",
            "--port-max",
            "30000",
        ],
        LIMIT,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("port-min (40000) is greater than port-max (30000)"),
        "{stderr}"
    );
}

#[test]
fn ng_port_in_use_exits_1_with_message() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stderr) = run_to_exit(
        &[
            "--config",
            "none",
            "--interface",
            "127.0.0.1",
            "--listen-ng",
            &addr,
        ],
        LIMIT,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for ng on {addr}")),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_exits_1() {
    let (status, stderr) = run_to_exit(&["--config", "/nonexistent/ngmedia.toml"], LIMIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read config file /nonexistent/ngmedia.toml"),
        "{stderr}"
    );
}

#[test]
fn bad_flag_value_exits_nonzero() {
    let (status, stderr) = run_to_exit(&["--interface", "10.0.0.300"], LIMIT);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("--interface"), "{stderr}");
}

#[test]
fn unknown_network_device_exits_1_with_message() {
    let (status, stderr) = run_to_exit(
        &[
            "--config-file=none",
            "-i",
            "int/nosuchdev0",
            "-n",
            "127.0.0.1:1",
        ],
        LIMIT,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interface int/nosuchdev0") && stderr.contains("network device"),
        "{stderr}"
    );
}

#[test]
fn unreadable_dtls_certificate_exits_1_with_message() {
    let dir = std::env::temp_dir().join(format!("ngmedia-dtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let cert = cert.to_str().unwrap();
    let (status, stderr) = run_to_exit(
        &["--config", "none", "--dtls-cert", cert, "--dtls-key", cert],
        LIMIT,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DTLS certificate"), "{stderr}");
    let (status, stderr) = run_to_exit(&["--config", "none", "--dtls-cert", cert], LIMIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dtls-cert and dtls-key go together"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
