//! `ngmedia-ctl` against a live daemon: every subcommand, tables and `--json`, the bearer
//! token for `terminate`, and clear failures (unknown call, daemon not reachable).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ngmedia_tests::daemon::ctl_binary;
use ngmedia_tests::{Daemon, TwoPartyCall};

const TOKEN: &str = "ctl-test-token";

fn ctl(daemon: &Daemon, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(ctl_binary())
        .env_remove("NGMEDIA_HTTP_TOKEN")
        .env_remove("NGMEDIA_URL")
        .envs(env.iter().copied())
        .arg(format!("--url=http://{}", daemon.http))
        .arg(format!("--ng={}", daemon.ng))
        .args(["--timeout", "5"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ngmedia-ctl")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ngmedia-ctl failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn list_show_stats_ping_and_terminate() {
    let daemon = Daemon::start_with_env(&[], &[("NGMEDIA_HTTP_TOKEN", TOKEN)]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "ctl-call@example.org");
    call.exchange(10, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(100));

    // ping over ng.
    let out = stdout(&ctl(&daemon, &["ping"], &[]));
    assert!(
        out.starts_with(&format!("pong from {} in ", daemon.ng)),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&ctl(&daemon, &["--json", "ping"], &[]))).unwrap();
    assert_eq!(v["result"], "pong");

    // list: a table with the call, its tags and packet count; --json is the API's document.
    let out = stdout(&ctl(&daemon, &["list"], &[]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CALL-ID"), "{out}");
    let row = lines
        .iter()
        .find(|l| l.starts_with("ctl-call@example.org"))
        .expect(&out);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "ctl-call@example.org-a,ctl-call@example.org-b");
    assert_eq!(cells[2], "20", "{row}");
    assert_eq!(cells[4], "0.0", "loss % column: {row}");
    assert!(cells[5].parse::<f64>().unwrap() > 4.0, "MOS column: {row}");
    assert_eq!(*lines.last().unwrap(), "1 of 1 call(s)");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&ctl(&daemon, &["list", "--json"], &[]))).unwrap();
    assert_eq!(v["calls"][0]["call_id"], "ctl-call@example.org");

    // show: one row per stream with addresses, counters and quality.
    let out = stdout(&ctl(&daemon, &["show", "ctl-call@example.org"], &[]));
    assert!(out.starts_with("call ctl-call@example.org\nTAG"), "{out}");
    let rtp_a = out
        .lines()
        .find(|l| l.starts_with("ctl-call@example.org-a") && l.contains("1/rtp"))
        .expect(&out);
    let cells: Vec<&str> = rtp_a.split_whitespace().collect();
    assert_eq!(cells[2], "PCMU/8000");
    assert_eq!(cells[4], call.a.addr().to_string(), "endpoint: {rtp_a}");
    assert_eq!(cells[5], "10");
    assert_eq!(cells[7], "0", "lost: {rtp_a}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&ctl(
        &daemon,
        &["--json", "show", "ctl-call@example.org"],
        &[],
    )))
    .unwrap();
    assert_eq!(
        v["legs"][0]["medias"][0]["streams"][0]["quality"]["packets_received"],
        10
    );

    // stats.
    let out = stdout(&ctl(&daemon, &["stats"], &[]));
    let figure = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    assert_eq!(figure("calls active"), "1");
    assert_eq!(figure("RTP packets"), "20");
    assert_eq!(figure("ng offer"), "1 ok, 0 error");

    // terminate needs the token: refused without, accepted with --token or the environment.
    let o = ctl(&daemon, &["terminate", "ctl-call@example.org"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("ngmedia-ctl: 401: "), "{err}");
    let out = stdout(&ctl(
        &daemon,
        &["terminate", "ctl-call@example.org"],
        &[("NGMEDIA_HTTP_TOKEN", TOKEN)],
    ));
    assert_eq!(out, "terminated ctl-call@example.org (20 RTP packets)\n");
    assert!(stdout(&ctl(&daemon, &["list"], &[])).ends_with("0 of 0 call(s)\n"));

    // Failures name the reason and exit 1.
    let o = ctl(&daemon, &["show", "ctl-call@example.org"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ngmedia-ctl: 404: no call with call-id ctl-call@example.org\n"
    );
    let o = ctl(&daemon, &["--token", "wrong", "terminate", "x"], &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"));
    let o = Command::new(ctl_binary())
        .args(["--url", "http://127.0.0.1:9", "--timeout", "2", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach the daemon at 127.0.0.1:9"));
    let o = Command::new(ctl_binary())
        .args(["frobnicate"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn ping_reports_a_silent_daemon() {
    // A UDP port nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let o = Command::new(ctl_binary())
        .args(["--ng", &addr, "--timeout", "1", "ping"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("no ng reply from {addr}")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
