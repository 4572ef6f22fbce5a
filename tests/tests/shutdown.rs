//! SIGTERM ends the daemon cleanly (exit status 0) within a bound, even with calls up.

use std::time::{Duration, Instant};

use ngmedia_tests::{Daemon, TwoPartyCall};

#[test]
fn sigterm_exits_zero_promptly_with_calls_up() {
    let mut daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "shutdown-1");
    call.exchange(5, Duration::from_millis(2));
    let started = Instant::now();
    let status = daemon
        .terminate(Duration::from_secs(5))
        .expect("still running 5 s after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}\n{}",
        daemon.log_text()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The ng port is free again: a new daemon could take it.
    std::net::UdpSocket::bind(daemon.ng).expect("ng port released");
}
