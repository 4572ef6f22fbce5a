//! `--webhook-url`: call.started, call.answered and call.ended reach an HTTP receiver (here a
//! listener of the test) as JSON POSTs, in order, with the bearer token; a receiver that
//! fails once gets the event again; a call that times out ends with reason `timeout`. Over
//! HTTPS, the receiver's certificate must chain to `--webhook-ca`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use ngmedia_tests::http::metric;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, Daemon, TwoPartyCall};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

/// One request as the receiver saw it.
#[derive(Debug)]
struct Post {
    request_line: String,
    headers: Vec<String>,
    body: serde_json::Value,
}

/// Accept POSTs on `listener`, answering the first `fail_first` with 503 (not reported) and
/// the rest with 204 (reported on the channel).
fn receiver(listener: TcpListener, fail_first: usize) -> mpsc::Receiver<Post> {
    serve(listener, fail_first, Some)
}

/// [`receiver`] over TLS with `acceptor`; failed handshakes are counted on the second
/// channel.
fn tls_receiver(
    listener: TcpListener,
    acceptor: SslAcceptor,
) -> (mpsc::Receiver<Post>, mpsc::Receiver<String>) {
    let (failed_tx, failed) = mpsc::channel();
    let posts = serve(listener, 0, move |conn| match acceptor.accept(conn) {
        Ok(tls) => Some(tls),
        Err(e) => {
            let _ = failed_tx.send(e.to_string());
            None
        }
    });
    (posts, failed)
}

/// Accept connections on `listener`, `open` each (`None`: drop it), and read one POST from
/// each as [`receiver`] says.
fn serve<S: Read + Write>(
    listener: TcpListener,
    fail_first: usize,
    open: impl Fn(TcpStream) -> Option<S> + Send + 'static,
) -> mpsc::Receiver<Post> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let Some(conn) = open(conn) else { continue };
            let mut reader = BufReader::new(conn);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                headers.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut conn = reader.into_inner();
            seen += 1;
            if seen <= fail_first {
                let _ = conn.write_all(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            let post = Post {
                request_line: request_line.trim_end().to_string(),
                headers,
                body: serde_json::from_slice(&body).unwrap(),
            };
            if tx.send(post).is_err() {
                return;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<Post>) -> Post {
    rx.recv_timeout(Duration::from_secs(8))
        .expect("an event within 8 s")
}

#[test]
fn a_call_is_reported_from_start_to_end_with_a_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/calls", listener.local_addr().unwrap());
    let events = receiver(listener, 1);
    let daemon = Daemon::start(&["--webhook-url", &url, "--webhook-token", "s3cret"]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "hook-call");
    // A re-offer of a live call is no new call.
    let sdp = audio_sdp(call.a.addr().ip(), call.a.port(), 2, "sendrecv");
    ng.reoffer("hook-call", &call.from_tag, &call.to_tag, &sdp);
    ng.ok(dict! { "command" => "delete", "call-id" => "hook-call", "delete-delay" => 0i64 });

    let started = next(&events);
    assert_eq!(started.request_line, "POST /hooks/calls HTTP/1.1");
    assert!(started
        .headers
        .iter()
        .any(|h| h == "Authorization: Bearer s3cret"));
    assert!(started
        .headers
        .iter()
        .any(|h| h == "Content-Type: application/json"));
    assert_eq!(
        started.body["event"], "call.started",
        "delivered after the 503"
    );
    assert_eq!(started.body["call_id"], "hook-call");
    assert_eq!(started.body["from_tag"], call.from_tag);
    let answered = next(&events);
    assert_eq!(answered.body["event"], "call.answered");
    assert_eq!(answered.body["to_tag"], call.to_tag);
    assert!(answered.body["setup_ms"].as_u64().is_some());
    let ended = next(&events);
    assert_eq!(ended.body["event"], "call.ended");
    assert_eq!(ended.body["reason"], "deleted");
    assert_eq!(ended.body["from_tag"], call.from_tag);
    assert_eq!(ended.body["to_tag"], call.to_tag);
    assert!(
        ended.body["timestamp"].as_u64().unwrap() >= started.body["timestamp"].as_u64().unwrap()
    );
    assert!(
        events.recv_timeout(Duration::from_millis(500)).is_err(),
        "one event each"
    );
    let text = daemon.http_client().metrics();
    let series = |r: &str| {
        metric(
            &text,
            &format!("ngmedia_webhook_events_total{{result=\"{r}\"}}"),
        )
    };
    assert_eq!(
        (series("delivered"), series("failed"), series("dropped")),
        (Some(3.0), Some(0.0), Some(0.0))
    );
}

#[test]
fn a_timed_out_call_ends_with_reason_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let events = receiver(listener, 0);
    let daemon = Daemon::start(&["--webhook-url", &url, "--timeout", "1"]);
    let _call = TwoPartyCall::setup(&daemon.client(), "hook-idle");
    assert_eq!(next(&events).body["event"], "call.started");
    assert_eq!(next(&events).body["event"], "call.answered");
    let ended = next(&events);
    assert_eq!(ended.body["event"], "call.ended");
    assert_eq!(ended.body["reason"], "timeout");
    assert!(ended.body["duration_ms"].as_u64().unwrap() >= 900);
}

/// A P-256 key.
fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate named `cn`, valid for a day, signed by `issuer` (self-signed when `None`);
/// a CA, or a server certificate for 127.0.0.1.
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(if ca { 1 } else { 2 }).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref())
        .unwrap();
    b.set_not_after(Asn1Time::days_from_now(1).unwrap().as_ref())
        .unwrap();
    if ca {
        let bc = BasicConstraints::new().critical().ca().build().unwrap();
        b.append_extension(bc).unwrap();
        let ku = KeyUsage::new().critical().key_cert_sign().build().unwrap();
        b.append_extension(ku).unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

/// An HTTPS receiver on 127.0.0.1 whose certificate a CA signed; that CA's PEM file (in
/// `dir`) is what the daemon must trust. Returns the URL, the POSTs, the failed handshakes
/// and the CA file.
fn https_receiver(
    dir: &std::path::Path,
) -> (
    String,
    mpsc::Receiver<Post>,
    mpsc::Receiver<String>,
    std::path::PathBuf,
) {
    let ca_key = ec_key();
    let ca = cert("ngmedia test CA", &ca_key, None, true);
    let key = ec_key();
    let leaf = cert("127.0.0.1", &key, Some((&ca, &ca_key)), false);
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&leaf).unwrap();
    acceptor.add_extra_chain_cert(ca.clone()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.to_pem().unwrap()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/hooks/tls", listener.local_addr().unwrap());
    let (posts, failed) = tls_receiver(listener, acceptor.build());
    (url, posts, failed, ca_file)
}

#[test]
fn events_reach_an_https_receiver_whose_certificate_the_ca_signed() {
    let dir = temp_dir("hook-tls");
    let (url, events, failed, ca) = https_receiver(&dir);
    let ca = ca.to_str().unwrap();
    let daemon = Daemon::start(&[
        "--webhook-url",
        &url,
        "--webhook-ca",
        ca,
        "--webhook-token",
        "t",
    ]);
    let _call = TwoPartyCall::setup(&daemon.client(), "hook-tls");
    let started = next(&events);
    assert_eq!(started.request_line, "POST /hooks/tls HTTP/1.1");
    assert!(started
        .headers
        .iter()
        .any(|h| h == "Authorization: Bearer t"));
    assert_eq!(started.body["event"], "call.started");
    assert_eq!(started.body["call_id"], "hook-tls");
    assert_eq!(next(&events).body["event"], "call.answered");
    assert!(failed.try_recv().is_err(), "no failed handshake");
}

#[test]
fn an_https_receiver_the_ca_did_not_sign_gets_nothing() {
    let dir = temp_dir("hook-untrusted");
    let (url, events, failed, _ca) = https_receiver(&dir);
    // Another CA: the receiver's certificate does not chain to it.
    let other = cert("another CA", &ec_key(), None, true);
    let other_file = dir.join("other-ca.pem");
    std::fs::write(&other_file, other.to_pem().unwrap()).unwrap();
    let daemon = Daemon::start(&[
        "--webhook-url",
        &url,
        "--webhook-ca",
        other_file.to_str().unwrap(),
    ]);
    let _call = TwoPartyCall::setup(&daemon.client(), "hook-untrusted");
    // The daemon aborts each handshake (three attempts for call.started alone).
    failed
        .recv_timeout(Duration::from_secs(8))
        .expect("a refused handshake");
    assert!(events.recv_timeout(Duration::from_secs(1)).is_err());
    let gave_up = ngmedia_tests::wait_for(Duration::from_secs(10), || {
        let text = daemon.http_client().metrics();
        let failed = metric(&text, "ngmedia_webhook_events_total{result=\"failed\"}");
        (failed >= Some(1.0)).then_some(())
    });
    assert!(gave_up.is_some(), "{}", daemon.log_text());
    assert!(daemon.log_text().contains("call event not delivered"));
}

#[test]
fn an_https_url_whose_ca_file_cannot_be_read_stops_the_start() {
    // The CA file is read before anything is bound: ports the test holds do not matter.
    let ng = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ng, http) = (ng.local_addr().unwrap(), http.local_addr().unwrap());
    let out = std::process::Command::new(ngmedia_tests::daemon::binary())
        .args(["--config", "none", "--interface", "127.0.0.1"])
        .args([
            "--listen-ng",
            &ng.to_string(),
            "--listen-http",
            &http.to_string(),
        ])
        .args(["--webhook-url", "https://127.0.0.1:9/x"])
        .args(["--webhook-ca", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

/// The next event of type `kind`, skipping the others.
fn next_of(rx: &mpsc::Receiver<Post>, kind: &str) -> Post {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let post = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("a {kind} event within 10 s"));
        if post.body["event"] == kind {
            return post;
        }
    }
}

/// A fresh folder for the daemon's recordings.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ngmedia-hook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_finished_recording_is_reported_with_its_files() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let events = receiver(listener, 0);
    let dir = temp_dir("rec");
    let daemon = Daemon::start(&[
        "--webhook-url",
        &url,
        &format!("--recording-dir={}", dir.display()),
    ]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "hook-rec");
    ng.ok(
        dict! { "command" => "start recording", "call-id" => "hook-rec",
        "metadata" => "agent:17" },
    );
    call.exchange(25, Duration::from_millis(20));
    ng.ok(dict! { "command" => "delete", "call-id" => "hook-rec", "delete-delay" => 0i64 });
    let done = next_of(&events, "recording.finished");
    let body = &done.body;
    assert_eq!(body["call_id"], "hook-rec");
    assert_eq!(body["state"], "complete");
    let id = body["recording_id"].as_str().expect("recording_id");
    assert!(id.starts_with("hook-rec-"), "{id}");
    assert_eq!(body["files"]["mix"], format!("{id}.wav"));
    assert_eq!(body["metadata"], serde_json::json!(["agent:17"]));
    assert!(body["duration_ms"].as_u64().unwrap() >= 400);
    assert!(dir.join(format!("{id}.wav")).exists());
    // The same recording as the API lists it.
    let listed = daemon.http_client().get(&format!("/recordings/{id}"));
    assert_eq!(listed.json()["id"], id, "the recording in the API");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stream_below_the_mos_threshold_raises_one_alarm() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let events = receiver(listener, 0);
    let daemon = Daemon::start(&["--webhook-url", &url, "--mos-alarm", "4.2"]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "hook-mos");
    // A sends 5 s of PCMU with every fourth packet missing (25 % loss); B sends cleanly.
    for n in 0..250u16 {
        if n % 4 != 3 {
            let p = rtp_packet(0, n, u32::from(n) * 160, call.a.ssrc, &[0xff; 160]);
            call.a.sock.send_to(&p, call.a_dest).unwrap();
        }
        let p = rtp_packet(0, n, u32::from(n) * 160, call.b.ssrc, &[0xff; 160]);
        call.b.sock.send_to(&p, call.b_dest).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let alarm = next_of(&events, "quality.alarm");
    let body = &alarm.body;
    assert_eq!(body["call_id"], "hook-mos");
    assert_eq!(body["tag"], call.from_tag, "the lossy party's stream");
    assert_eq!(body["threshold"], 4.2);
    let mos = body["mos"].as_f64().unwrap();
    assert!((1.0..4.2).contains(&mos), "{mos}");
    let loss = body["loss_percent"].as_f64().unwrap();
    assert!((20.0..=30.0).contains(&loss), "{loss}");
    assert_eq!(body["ssrc"], call.a.ssrc);
    // Once per stream, and none for the clean one.
    std::thread::sleep(Duration::from_secs(3));
    while let Ok(post) = events.try_recv() {
        assert_ne!(post.body["event"], "quality.alarm", "{:?}", post.body);
    }
}

#[test]
fn dtmf_digits_are_events_and_still_reach_the_dtmf_log() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let events = receiver(listener, 0);
    let log = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    log.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let log_dest = log.local_addr().unwrap().to_string();
    let daemon = Daemon::start(&[
        "--webhook-url",
        &url,
        "--webhook-dtmf",
        "--dtmf-log-dest",
        &log_dest,
    ]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "hook-dtmf");
    // Digit # (11) at -10 dBm0 for 40 ms: one update, then the end report three times.
    let send = |seq: u16, payload: &[u8], pt: u8, ts: u32| {
        let p = rtp_packet(pt, seq, ts, call.a.ssrc, payload);
        call.a.sock.send_to(&p, call.a_dest).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    };
    send(1, &[0; 160], 0, 1000);
    send(2, &[11, 10, 0, 160], 101, 1160);
    for seq in 3..6 {
        send(seq, &[11, 0x80 | 10, 1, 64], 101, 1160);
    }
    let dtmf = next_of(&events, "dtmf");
    let body = &dtmf.body;
    assert_eq!(body["call_id"], "hook-dtmf");
    assert_eq!(body["source_tag"], call.from_tag);
    assert_eq!(body["source_ip"], "127.0.0.1");
    assert_eq!(body["digit"], "#");
    assert_eq!(body["event_code"], 11);
    assert_eq!(body["duration_ms"], 40);
    assert_eq!(body["volume"], 10);
    let mut buf = [0u8; 4096];
    let n = log
        .recv(&mut buf)
        .expect("the report at --dtmf-log-dest too");
    let report: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(
        (report["callid"].as_str(), report["event"].as_u64()),
        (Some("hook-dtmf"), Some(11))
    );
}
