//! The `srtpload` tool against a test daemon: one call for one second relays every packet in
//! both modes, and in sdes mode every SRTP packet from the engine authenticates.

use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::Daemon;

fn run(mode: &str) -> serde_json::Value {
    let daemon = Daemon::start(&[]);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_srtpload"))
        .args([
            "--ng",
            &daemon.ng.to_string(),
            "--calls",
            "1",
            "--seconds",
            "1",
        ])
        .args([
            "--drain",
            "0.5",
            "--mode",
            mode,
            "--pid",
            &daemon.pid().to_string(),
        ])
        .output()
        .expect("run srtpload");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "srtpload {mode} failed: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded run time"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary line `{last}`: {e}"))
}

fn check(mode: &str) {
    let s = run(mode);
    assert_eq!(s["mode"], mode, "{s}");
    // 1 s at 20 ms both ways.
    let sent = s["sent"].as_u64().unwrap();
    assert!((96..=102).contains(&sent), "{s}");
    assert_eq!(s["received"].as_u64(), Some(sent), "{s}");
    assert_eq!(s["auth_failures"], 0, "{s}");
    assert_eq!(s["bad"], 0, "{s}");
    assert_eq!(s["delete_errors"], 0, "{s}");
    assert!(s["engine_us_per_pkt"].is_number(), "{s}");
}

#[test]
fn srtpload_plain_one_call_no_loss() {
    check("plain");
}

#[test]
fn srtpload_sdes_one_call_no_loss() {
    check("sdes");
}
