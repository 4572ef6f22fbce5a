//! Load limits on the real daemon: `--max-sessions`, `--max-load`, `--max-cpu` and
//! `--max-bandwidth` refuse offers of new calls with rtpengine's replies, existing calls go
//! on, the session limit changes at run time (`ngmedia-ctl limits`), and refusals are counted.

use std::process::Command;
use std::time::Duration;

use ngmedia_tests::daemon::ctl_binary;
use ngmedia_tests::http::metric;
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RtpEndpoint, Value};

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\n"
    )
}

/// An offer as Kamailio sends it (`supports: ["load limit"]`) or as an older client does.
fn offer(ng: &NgClient, call_id: &str, supports: bool) -> Value {
    let mut d = dict! {
        "command" => "offer",
        "call-id" => call_id,
        "from-tag" => "caller",
        "sdp" => sdp(4000).as_str(),
    };
    if supports {
        if let Value::Dict(pairs) = &mut d {
            pairs.push((
                b"supports".to_vec(),
                Value::List(vec![Value::from("load limit")]),
            ));
        }
    }
    ng.request(d).expect("a reply")
}

fn result(v: &Value) -> (&str, &str) {
    (
        v.str_at("result").unwrap_or(""),
        v.str_at("message")
            .or_else(|| v.str_at("error-reason"))
            .unwrap_or(""),
    )
}

/// A call-id never offered before: a refused offer must be a new call, not a re-offer of
/// one an earlier attempt created.
fn fresh(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn ctl(daemon: &Daemon, args: &[&str]) -> String {
    let out = Command::new(ctl_binary())
        .args(["--url", &format!("http://{}", daemon.http)])
        .args(args)
        .output()
        .expect("run ngmedia-ctl");
    assert!(
        out.status.success(),
        "ngmedia-ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn session_limit_refuses_new_calls_and_changes_at_run_time() {
    let daemon = Daemon::start(&["--max-sessions", "1", "--delete-delay", "0"]);
    let ng = daemon.client();

    assert_eq!(result(&offer(&ng, "ls-1", true)).0, "ok");
    assert_eq!(
        result(&offer(&ng, "ls-2", true)),
        ("load limit", "Parallel session limit reached")
    );
    assert_eq!(
        result(&offer(&ng, "ls-2", false)),
        ("error", "Parallel session limit reached")
    );
    // The call held goes on: re-offer and answer.
    assert_eq!(result(&offer(&ng, "ls-1", true)).0, "ok");
    let answer = ng.request(dict! {
        "command" => "answer", "call-id" => "ls-1", "from-tag" => "caller",
        "to-tag" => "callee", "sdp" => sdp(4002).as_str(),
    });
    assert_eq!(answer.unwrap().str_at("result"), Some("ok"));
    assert!(ctl(&daemon, &["limits"]).contains("refusing new calls: sessions limit reached"));

    // Lifted at run time: new calls come in again.
    assert!(ctl(&daemon, &["limits", "--max-sessions", "-1"]).contains("accepting new calls"));
    assert_eq!(result(&offer(&ng, "ls-2", true)).0, "ok");
    // Draining: nothing new, existing calls still end normally.
    ctl(&daemon, &["limits", "--max-sessions", "0"]);
    assert_eq!(result(&offer(&ng, "ls-3", true)).0, "load limit");
    let deleted = ng.request(dict! { "command" => "delete", "call-id" => "ls-1" });
    assert_eq!(deleted.unwrap().str_at("result"), Some("ok"));

    let text = daemon.http_client().metrics();
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_offers_refused_total{reason=\"sessions\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"offer\",result=\"load_limit\"}"
        ),
        Some(2.0)
    );
    let json = daemon.http_client().get("/load-limits").json();
    assert_eq!(json["max_sessions"], 0);
    assert_eq!(json["sessions"], 1);
}

#[test]
fn bandwidth_limit_follows_received_media() {
    // 4 kB/s: 20 ms PCMU packets (172 bytes with the RTP header) are 8.6 kB/s.
    let daemon = Daemon::start(&["--max-bandwidth", "4000", "--delete-delay", "0"]);
    let ng = daemon.client();
    let mut caller = RtpEndpoint::new(0x4242_0001);
    let callee = RtpEndpoint::new(0x4242_0002);
    assert_eq!(result(&offer(&ng, "bw-1", true)).0, "ok");
    let a = ng
        .request(dict! {
            "command" => "answer", "call-id" => "bw-1", "from-tag" => "caller",
            "to-tag" => "callee", "sdp" => sdp(callee.port()).as_str(),
        })
        .unwrap();
    // The answer's SDP goes to the caller: where the caller sends its media.
    let engine = ngmedia_tests::Sdp::parse(a.str_at("sdp").unwrap())
        .unwrap()
        .audio_addr();

    // Media above the limit: within a few sampling periods new calls are refused.
    let refused = wait_for(Duration::from_secs(5), || {
        for _ in 0..10 {
            caller.send_next(engine);
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = offer(&ng, &fresh("bw"), true);
        (result(&r) == ("load limit", "Bandwidth limit exceeded")).then_some(())
    });
    assert!(refused.is_some(), "{}", daemon.log_text());
    // The call held still relays.
    callee.drain();
    caller.send_next(engine);
    assert_eq!(callee.recv_many(1, Duration::from_secs(2)).len(), 1);
    // Media stops: the rate falls to zero and new calls are taken again.
    let accepted = wait_for(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(300));
        (result(&offer(&ng, &fresh("bw"), true)).0 == "ok").then_some(())
    });
    assert!(accepted.is_some(), "{}", daemon.log_text());
}

#[test]
fn cpu_and_load_limits_read_the_machine() {
    // Any CPU use at all over half a second is above 0.001 %: refused once sampled.
    let daemon = Daemon::start(&["--max-cpu", "0.001"]);
    let ng = daemon.client();
    let refused = wait_for(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(200));
        let r = offer(&ng, &fresh("cpu"), true);
        (result(&r) == ("load limit", "CPU usage limit exceeded")).then_some(())
    });
    assert!(refused.is_some(), "{}", daemon.log_text());
    let json = daemon.http_client().get("/load-limits").json();
    assert_eq!(json["refusing"], "cpu");
    assert!(json["cpu_percent"].as_f64().unwrap() > 0.0);

    // The load average only when the machine has one worth the name (it is 0.00 idle).
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    if load >= 0.05 {
        let daemon = Daemon::start(&["--max-load", "0.01"]);
        let ng = daemon.client();
        let refused = wait_for(Duration::from_secs(5), || {
            std::thread::sleep(Duration::from_millis(200));
            let r = offer(&ng, &fresh("load"), true);
            (result(&r) == ("load limit", "Load limit exceeded")).then_some(())
        });
        assert!(refused.is_some(), "{}", daemon.log_text());
    }
}
