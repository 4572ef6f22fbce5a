//! `--ng-rate-limit`: a source that floods ng gets no reply beyond its limit (counted,
//! logged once), while its retransmissions are still answered from the cookie cache, other
//! sources are served as usual, and the source is served again once its bucket refills.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::Daemon;

const LIMIT: usize = 20;

/// Replies that arrive on `sock` within `wait` (stopping early at `enough`), by cookie.
fn collect(sock: &UdpSocket, wait: Duration, enough: usize) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut cookies = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|_| cookies.len() < enough)
    {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(text.contains("pong"), "{text}");
                cookies.push(text.split(' ').next().unwrap().to_owned());
            }
            Err(_) => break,
        }
    }
    cookies
}

fn ping(sock: &UdpSocket, ng: std::net::SocketAddr, cookie: &str) {
    sock.send_to(format!("{cookie} d7:command4:pinge").as_bytes(), ng)
        .unwrap();
}

#[test]
fn a_flooding_source_is_cut_to_its_limit_and_others_are_served() {
    let limit = LIMIT.to_string();
    let daemon = Daemon::start(&["--ng-rate-limit", &limit]);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 * LIMIT {
        ping(&flood, daemon.ng, &format!("flood-{i}"));
    }
    let answered = collect(&flood, Duration::from_millis(500), usize::MAX);
    // One second's burst (less the harness's start-up pings, from the same address), plus
    // what refilled while the datagrams were on their way.
    assert!(
        (LIMIT - 2..=LIMIT + 5).contains(&answered.len()),
        "{} of {} answered",
        answered.len(),
        3 * LIMIT
    );

    // A retransmission of an answered request still gets its reply, bucket empty or not.
    for _ in 0..3 {
        ping(&flood, daemon.ng, &answered[0]);
    }
    assert_eq!(
        collect(&flood, Duration::from_millis(300), usize::MAX),
        vec![answered[0].clone(); 3]
    );

    // Another client address has its own budget.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    ping(&other, daemon.ng, "other-1");
    assert_eq!(collect(&other, Duration::from_secs(2), 1), vec!["other-1"]);

    let text = daemon.http_client().metrics();
    let refused = metric(&text, "ngmedia_ng_rate_limited_total").unwrap();
    assert_eq!(refused as usize, 3 * LIMIT - answered.len());
    let log = daemon.log_text();
    assert_eq!(
        log.matches("ng requests over --ng-rate-limit").count(),
        1,
        "logged once a minute per source:\n{log}"
    );

    // A second later the source is served again.
    std::thread::sleep(Duration::from_millis(1100));
    ping(&flood, daemon.ng, "flood-again");
    assert_eq!(
        collect(&flood, Duration::from_secs(2), 1),
        vec!["flood-again"]
    );
}

#[test]
fn no_limit_with_zero() {
    let daemon = Daemon::start(&["--ng-rate-limit", "0"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200 {
        ping(&sock, daemon.ng, &format!("n-{i}"));
        // Paced a little so the socket buffers never drop a datagram.
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(collect(&sock, Duration::from_secs(2), 200).len(), 200);
}
