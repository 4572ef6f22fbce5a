//! `--mqtt-*` against a real broker (mosquitto on a loopback port, started here): the
//! statistics and the calls reach a subscriber as rtpengine's JSON, in each scope; the
//! broker's credentials are used; a broker that starts late or restarts gets the messages
//! once it is back, and the daemon never waits for it.

use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::mqtt::{Broker, Subscriber};
use ngmedia_tests::{dict, Daemon, TwoPartyCall};
use serde_json::Value;

const TOPIC: &str = "ngmedia/stats";

fn daemon(broker_port: u16, scope: &str, extra: &[&str]) -> Daemon {
    let port = broker_port.to_string();
    let mut args = vec![
        "--mqtt-host",
        "127.0.0.1",
        "--mqtt-port",
        &port,
        "--mqtt-publish-topic",
        TOPIC,
        "--mqtt-publish-interval",
        "300",
        "--mqtt-publish-scope",
        scope,
    ];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// Media both ways, so each party's ingress has counters and an SSRC.
fn media(call: &mut TwoPartyCall, packets: usize) {
    for _ in 0..packets {
        call.a.send_next(call.a_dest);
        call.b.send_next(call.b_dest);
        std::thread::sleep(Duration::from_millis(5));
    }
    call.a.drain();
    call.b.drain();
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The SSRC entry of a media's ingress, when it has counted `packets`.
fn ingress_ssrc(media: &Value, ssrc: u32, packets: u64) -> Option<Value> {
    media["ingress"]["SSRC"]
        .as_array()?
        .iter()
        .find(|s| s["SSRC"] == ssrc && s["metrics"]["packets"].as_u64() >= Some(packets))
        .cloned()
}

fn wait<T>(
    sub: &Subscriber,
    what: &str,
    daemon: &Daemon,
    broker: &Broker,
    pick: impl FnMut(&Value) -> Option<T>,
) -> T {
    sub.find(Duration::from_secs(15), pick).unwrap_or_else(|| {
        panic!(
            "no message with {what}\n-- daemon --\n{}\n-- broker --\n{}",
            daemon.log_text(),
            broker.log()
        )
    })
}

#[test]
fn global_scope_publishes_statistics_and_every_call_with_credentials_at_qos_1() {
    let broker = Broker::start_on(
        ngmedia_tests::mqtt::free_port(),
        Some(("ngmedia", "s3cret")),
    );
    let sub = broker.subscribe(TOPIC);
    let d = daemon(
        broker.port(),
        "global",
        &[
            "--mqtt-user",
            "ngmedia",
            "--mqtt-pass",
            "s3cret",
            "--mqtt-publish-qos",
            "1",
            "--mqtt-id",
            "ngmedia-test",
        ],
    );
    let ng = d.client();
    let mut call = TwoPartyCall::setup(&ng, "mqtt-global");
    media(&mut call, 20);
    let (a_ssrc, b_ssrc) = (call.a.ssrc, call.b.ssrc);

    let msg = wait(&sub, "the call and its media", &d, &broker, |m| {
        let c = m["calls"]
            .as_array()?
            .iter()
            .find(|c| c["call_id"] == "mqtt-global")?;
        let legs = c["legs"].as_array()?;
        let leg = |tag: &str| legs.iter().find(|l| l["tag"] == tag).cloned();
        let (a, b) = (leg(&call.from_tag)?, leg(&call.to_tag)?);
        ingress_ssrc(&a["medias"][0], a_ssrc, 20)?;
        ingress_ssrc(&b["medias"][0], b_ssrc, 20)?;
        Some(m.clone())
    });
    // The statistics are the `statistics` reply's members, numbers as numbers.
    let t = msg["timestamp"].as_f64().expect("timestamp");
    assert!((t - now_secs()).abs() < 60.0, "timestamp {t}");
    assert_eq!(msg["currentstatistics"]["sessionsown"], 1, "{msg}");
    // A party's media as rtpengine describes it.
    let c = msg["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == "mqtt-global")
        .unwrap();
    let a = c["legs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tag"] == call.from_tag.as_str())
        .unwrap();
    let m = &a["medias"][0];
    assert_eq!(m["media_index"], 1);
    assert_eq!(m["type"], "audio");
    assert_eq!(m["protocol"], "RTP/AVP");
    assert_eq!(m["status"], "sendrecv");
    assert_eq!(m["transcoding"], false);
    assert_eq!(m["port"], call.a_dest.port(), "the port A sends to");
    assert_eq!(
        m["endpoint_port"],
        call.a.sock.local_addr().unwrap().port(),
        "A's address"
    );
    assert!(m["ingress"]["packets"].as_u64().unwrap() >= 20);
    let ssrc = ingress_ssrc(m, a_ssrc, 20).unwrap();
    assert_eq!(ssrc["codec"], "PCMU");
    assert_eq!(ssrc["clock_rate"], 8000);
    assert!(
        ssrc["metrics"]["bytes"].as_u64().unwrap() >= 20 * 160,
        "{ssrc}"
    );
    assert_eq!(ssrc["metrics"]["lost"], 0);
    assert!(ssrc["metrics"]["jitter"].is_number());

    // A later round has per-second figures; the counters are on /metrics.
    media(&mut call, 10);
    wait(&sub, "per-second figures", &d, &broker, |m| {
        let c = m["calls"]
            .as_array()?
            .iter()
            .find(|c| c["call_id"] == "mqtt-global")?
            .clone();
        c["legs"][0]["medias"][0]["ingress"]["SSRC"][0]["metrics"]["packets_per_second"]
            .is_number()
            .then_some(c)
    });
    let text = d.http_client().metrics();
    assert!(metric(&text, "ngmedia_mqtt_messages_total{result=\"published\"}").unwrap() >= 2.0);
    assert_eq!(metric(&text, "ngmedia_mqtt_connected"), Some(1.0));
    assert!(
        broker.log().contains("ngmedia-test"),
        "the client id: {}",
        broker.log()
    );
}

#[test]
fn call_and_media_scopes_publish_one_message_each_after_the_summary() {
    let broker = Broker::start();
    let sub = broker.subscribe(TOPIC);
    let d = daemon(broker.port(), "media", &[]);
    let ng = d.client();
    let mut call = TwoPartyCall::setup(&ng, "mqtt-media");
    media(&mut call, 10);
    let b_ssrc = call.b.ssrc;
    let per_media = wait(&sub, "B's media", &d, &broker, |m| {
        (m["call_id"] == "mqtt-media" && m["tag"] == call.to_tag.as_str())
            .then(|| ingress_ssrc(m, b_ssrc, 10).map(|_| m.clone()))
            .flatten()
    });
    assert_eq!(per_media["media_index"], 1);
    assert!(per_media.get("legs").is_none() && per_media.get("calls").is_none());
    let summary = wait(&sub, "the summary", &d, &broker, |m| {
        m.get("currentstatistics").map(|_| m.clone())
    });
    assert!(
        summary.get("calls").is_none(),
        "the media scope lists no calls: {summary}"
    );
    drop(d);

    let d = daemon(broker.port(), "call", &[]);
    let ng = d.client();
    let mut call = TwoPartyCall::setup(&ng, "mqtt-call");
    media(&mut call, 10);
    let per_call = wait(&sub, "the call", &d, &broker, |m| {
        (m["call_id"] == "mqtt-call" && m["legs"].as_array()?.len() == 2).then(|| m.clone())
    });
    assert!(per_call["timestamp"].is_number());
    assert!(per_call.get("currentstatistics").is_none());
}

#[test]
fn a_late_broker_and_a_restarted_one_get_the_messages() {
    // Nothing listens on the port yet: the daemon starts and serves anyway.
    let port = ngmedia_tests::mqtt::free_port();
    let d = daemon(port, "summary", &["--mqtt-keepalive", "2"]);
    let ng = d.client();
    let _call = TwoPartyCall::setup(&ng, "mqtt-late");
    let text = d.http_client().metrics();
    assert_eq!(metric(&text, "ngmedia_mqtt_connected"), Some(0.0));

    let mut broker = Broker::start_on(port, None);
    let sub = broker.subscribe(TOPIC);
    let first = wait(&sub, "a summary from the late broker", &d, &broker, |m| {
        (m["currentstatistics"]["sessionsown"] == 1).then(|| m.clone())
    });
    assert!(first.get("calls").is_none());

    // The broker goes away and comes back on the same port: publishing resumes.
    broker.restart();
    let started = Instant::now();
    let sub = broker.subscribe(TOPIC);
    wait(&sub, "a summary after the restart", &d, &broker, |m| {
        m.get("currentstatistics").map(|_| ())
    });
    assert!(started.elapsed() < Duration::from_secs(15));
    let text = d.http_client().metrics();
    assert!(
        metric(&text, "ngmedia_mqtt_connects_total").unwrap() >= 2.0,
        "{text}"
    );
    // ng answered all along.
    let pong = ng.request(dict! { "command" => "ping" }).expect("ping");
    assert_eq!(pong.str_at("result"), Some("pong"));
}

#[test]
fn tls_with_a_client_certificate() {
    let broker = Broker::start_tls();
    let sub = broker.subscribe(TOPIC);
    let pki = broker.pki().clone();
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let d = daemon(
        broker.port(),
        "summary",
        &[
            "--mqtt-cafile",
            &ca,
            "--mqtt-certfile",
            &cert,
            "--mqtt-keyfile",
            &key,
            "--mqtt-publish-qos",
            "2",
        ],
    );
    wait(&sub, "a summary over TLS", &d, &broker, |m| {
        m.get("currentstatistics").map(|_| ())
    });
    let text = d.http_client().metrics();
    assert_eq!(metric(&text, "ngmedia_mqtt_connected"), Some(1.0));
}
