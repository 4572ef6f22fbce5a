//! ng over TCP, HTTP, WebSocket and secure WebSocket, against the real daemon: each transport
//! reaches the same dispatch as UDP (a call made over one is seen over the others, a
//! retransmitted cookie is answered from the one cache), and bad input on each gets an ng
//! error or an HTTP 4xx, never a crash.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ngmedia_tests::http::{metric, request};
use ngmedia_tests::{dict, Daemon, HttpClient, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(5);
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\n";

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn offer_body(call_id: &str) -> Vec<u8> {
    dict! {
        "command" => "offer",
        "call-id" => call_id,
        "from-tag" => "caller",
        "sdp" => SDP,
        "supports" => Value::List(vec![Value::from("load limit")]),
    }
    .encode()
}

fn message(cookie: &str, body: &[u8]) -> Vec<u8> {
    [format!("{cookie} ").as_bytes(), body].concat()
}

/// Read from `stream` until `buf` holds a complete reply to `cookie` at its start; that reply's
/// body, decoded, with the bytes it took removed from `buf`.
fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>, cookie: &str) -> Value {
    let prefix = format!("{cookie} ");
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if buf.len() > prefix.len() {
            assert!(
                buf.starts_with(prefix.as_bytes()),
                "reply to {cookie} expected, got {:?}",
                String::from_utf8_lossy(buf)
            );
            for end in prefix.len() + 1..=buf.len() {
                if let Ok(v) = Value::decode(&buf[prefix.len()..end]) {
                    buf.drain(..end);
                    return v;
                }
            }
        }
        let n = stream.read(&mut chunk).expect("reply in time");
        assert!(n > 0, "connection closed before the reply to {cookie}");
        buf.extend_from_slice(&chunk[..n]);
    }
    panic!("no complete reply to {cookie}");
}

fn result(v: &Value) -> &str {
    v.get("result").and_then(Value::as_str).unwrap_or("")
}

#[test]
fn tcp_messages_back_to_back_share_the_udp_dispatch() {
    let port = free_tcp_port();
    let daemon = Daemon::start(&["--listen-tcp-ng", &format!("127.0.0.1:{port}")]);
    let udp = daemon.client();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = Vec::new();

    // Three messages in one write, then one split over three writes with pauses.
    let ping = dict! { "command" => "ping" }.encode();
    let mut burst = message("a1", &ping);
    burst.extend_from_slice(b"\r\n");
    burst.extend(message("a2", &offer_body("tcp-call-1")));
    burst.extend(message("a3", &ping));
    tcp.write_all(&burst).unwrap();
    assert_eq!(result(&read_reply(&mut tcp, &mut buf, "a1")), "pong");
    let offered = read_reply(&mut tcp, &mut buf, "a2");
    assert_eq!(result(&offered), "ok", "{offered:?}");
    assert_eq!(result(&read_reply(&mut tcp, &mut buf, "a3")), "pong");
    let split = message("a4", &offer_body("tcp-call-2"));
    for part in split.chunks(split.len() / 3 + 1) {
        tcp.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(result(&read_reply(&mut tcp, &mut buf, "a4")), "ok");

    // The calls are the engine's, seen over UDP; a retransmitted cookie is answered from the
    // cache, not executed again (same SDP, same ports).
    let mut listed = udp.list();
    listed.sort();
    assert_eq!(listed, ["tcp-call-1", "tcp-call-2"]);
    tcp.write_all(&message("a2", &offer_body("tcp-call-1")))
        .unwrap();
    let again = read_reply(&mut tcp, &mut buf, "a2");
    assert_eq!(
        again, offered,
        "retransmission answered from the cookie cache"
    );

    // An ng error keeps the connection; the next message is still answered.
    tcp.write_all(&message(
        "a5",
        &dict! { "command" => "frobnicate" }.encode(),
    ))
    .unwrap();
    let e = read_reply(&mut tcp, &mut buf, "a5");
    assert_eq!(result(&e), "error");
    assert_eq!(
        e.get("error-reason").and_then(Value::as_str),
        Some("Unrecognized command")
    );
    tcp.write_all(&message("a6", &ping)).unwrap();
    assert_eq!(result(&read_reply(&mut tcp, &mut buf, "a6")), "pong");

    // A body that is not ng: answered with an error under its cookie, then closed.
    tcp.write_all(b"a7 hello world\n").unwrap();
    let e = read_reply(&mut tcp, &mut buf, "a7");
    assert_eq!(
        e.get("error-reason").and_then(Value::as_str),
        Some("Invalid NG data format")
    );
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the error: {rest:?}");

    // No cookie at all: closed without a reply.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.write_all(&[b'x'; 300]).unwrap();
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    // A client that disappears mid-message hurts nobody.
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(&split[..split.len() / 2]).unwrap();
    drop(half);

    // Every request above was counted with the UDP ones.
    let text = daemon.http_client().metrics();
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"offer\",result=\"ok\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "ngmedia_ng_requests_total{command=\"invalid\",result=\"error\"}"
        ),
        Some(2.0)
    );
    assert!(udp.request(dict! { "command" => "ping" }).is_ok());
}

fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let r = request(addr, "POST", path, &[("Content-Type", content_type)], body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let ct = r.header("content-type").unwrap_or("").to_owned();
    (r.status, ct, r.body)
}

#[test]
fn http_post_ng_and_ng_plain() {
    let daemon = Daemon::start(&[]);
    let addr = daemon.http;
    let ng = "application/x-rtpengine-ng";

    let (status, ct, body) = post(addr, "/ng", ng, b"h1 d7:command4:pinge");
    assert_eq!((status, ct.as_str()), (200, ng));
    assert_eq!(body, b"h1 d6:result4:ponge");
    let (status, _, body) = post(addr, "/ng", ng, &message("h2", &offer_body("http-call")));
    assert_eq!(status, 200);
    let reply = Value::decode(&body[3..]).unwrap();
    assert_eq!(result(&reply), "ok", "{reply:?}");
    assert_eq!(daemon.client().list(), ["http-call"]);

    // The body alone on /ng-plain, in bencode or JSON; the reply in the same type.
    let (status, ct, body) = post(addr, "/ng-plain", ng, b"d7:command4:pinge");
    assert_eq!(
        (status, ct.as_str(), body.as_slice()),
        (200, ng, &b"d6:result4:ponge"[..])
    );
    let (status, ct, body) = post(
        addr,
        "/ng-plain",
        "application/json",
        br#"{"command":"list"}"#,
    );
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["result"], "ok");
    assert_eq!(json["calls"][0], "http-call");

    // ng errors are ng replies; what is not ng at all is an HTTP error in the API's shape.
    let (status, _, body) = post(addr, "/ng", ng, b"h3 d7:command");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        b"h3 d6:result5:error12:error-reason35:Could not decode bencode dictionarye"
    );
    let (status, _, body) = post(addr, "/ng", ng, b"nocookie");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"], "bad_request");
    let (status, _, _) = post(addr, "/ng", "application/json", b"h4 {}");
    assert_eq!(status, 415);
    let (status, _, _) = post(addr, "/ng-plain", "text/plain", b"d7:command4:pinge");
    assert_eq!(status, 415);
    let big = vec![b'x'; 70 * 1024];
    let (status, _, _) = post(addr, "/ng", ng, &big);
    assert_eq!(status, 413);
    assert_eq!(daemon.http_client().get("/ng").status, 404);
    assert!(daemon
        .client()
        .request(dict! { "command" => "ping" })
        .is_ok());
}

#[test]
fn http_ng_access_modes() {
    let ping = b"m1 d7:command4:pinge";
    let ng = "application/x-rtpengine-ng";
    // Open (the default) even with a token: Kamailio's WebSocket client cannot send one.
    let open = Daemon::start(&["--http-token", "s3cret"]);
    assert_eq!(post(open.http, "/ng", ng, ping).0, 200);
    assert_eq!(open.http_client().delete("/calls/x").status, 401);
    // `token`: ng needs it too.
    let token = Daemon::start(&["--http-token", "s3cret", "--http-ng", "token"]);
    assert_eq!(post(token.http, "/ng", ng, ping).0, 401);
    let r = request(
        token.http,
        "POST",
        "/ng",
        &[("Content-Type", ng), ("Authorization", "Bearer s3cret")],
        ping,
    )
    .unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"m1 d6:result4:ponge"[..])
    );
    // `off`: no ng on HTTP.
    let off = Daemon::start(&["--http-ng", "off"]);
    assert_eq!(post(off.http, "/ng", ng, ping).0, 404);
}

type Ws<S> = tungstenite::WebSocket<S>;

fn ws_connect<S: Read + Write>(stream: S, url: &str, protocol: &str) -> Ws<S> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, response) = tungstenite::client(req, stream).expect("WebSocket handshake");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol)
    );
    ws
}

fn ws_ask<S: Read + Write>(ws: &mut Ws<S>, msg: Message) -> Vec<u8> {
    ws.send(msg).unwrap();
    loop {
        match ws.read().expect("reply") {
            Message::Binary(b) => return b.to_vec(),
            Message::Text(t) => return t.as_bytes().to_vec(),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(c) => panic!("closed: {c:?}"),
        }
    }
}

fn tcp_to(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

#[test]
fn websocket_ng_and_ng_plain_subprotocols() {
    let daemon = Daemon::start(&[]);
    let url = format!("ws://{}/", daemon.http);

    // Kamailio's framing: cookie, text frames; replies are binary.
    let mut ws = ws_connect(tcp_to(daemon.http), &url, "ng.rtpengine.com");
    assert_eq!(
        ws_ask(&mut ws, Message::text("w1 d7:command4:pinge")),
        b"w1 d6:result4:ponge"
    );
    let r = ws_ask(
        &mut ws,
        Message::binary(message("w2", &offer_body("ws-call"))),
    );
    assert_eq!(result(&Value::decode(&r[3..]).unwrap()), "ok");
    assert_eq!(daemon.client().list(), ["ws-call"]);
    // No cookie: dropped as over UDP; the connection goes on, in order.
    ws.send(Message::text("nocookie")).unwrap();
    assert_eq!(
        ws_ask(&mut ws, Message::text("w3 d7:command5:querye")),
        b"w3 d6:result5:error12:error-reason21:No call-id in messagee"
    );
    assert_eq!(
        ws_ask(&mut ws, Message::text("w4 {\"command\":\"ping\"}")),
        b"w4 {\"result\":\"pong\"}"
    );
    ws.close(None).unwrap();

    // Any path, and the plain variant: the body alone.
    let mut plain = ws_connect(
        tcp_to(daemon.http),
        &format!("ws://{}/ng", daemon.http),
        "ng-plain.rtpengine.com",
    );
    assert_eq!(
        ws_ask(&mut plain, Message::text("d7:command4:pinge")),
        b"d6:result4:ponge"
    );
    assert_eq!(
        ws_ask(&mut plain, Message::binary(b"\xff\xfe".to_vec())),
        b"d6:result5:error12:error-reason22:Invalid NG data formate"
    );
    // A message beyond the limit closes the connection, nothing else.
    let _ = plain.send(Message::binary(vec![b'd'; 300 * 1024]));
    let closed = (0..10).any(|_| !matches!(plain.read(), Ok(Message::Binary(_))));
    assert!(closed, "oversized message must end the connection");

    // Another subprotocol is not ng: the route answers as a plain GET.
    let r = request(
        daemon.http,
        "GET",
        "/health",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Protocol", "janus-protocol"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    // An ng upgrade without the WebSocket headers is a 400, not an upgrade.
    let r = request(
        daemon.http,
        "GET",
        "/",
        &[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Protocol", "ng.rtpengine.com"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(daemon
        .client()
        .request(dict! { "command" => "ping" })
        .is_ok());
}

/// A self-signed certificate and key for the HTTPS listener, written to `dir`.
fn write_cert(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = ngmedia_tests::dtls::certificate("ngmedia-test");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn https_and_secure_websocket() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let dir = std::env::temp_dir().join(format!("ngmedia-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = write_cert(&dir);
    let port = free_tcp_port();
    let daemon = Daemon::start(&[
        "--listen-https",
        &format!("127.0.0.1:{port}"),
        "--https-cert",
        &cert,
        "--https-key",
        &key,
    ]);
    let tls = |stream: TcpStream| {
        let mut c = SslConnector::builder(SslMethod::tls_client()).unwrap();
        // Self-signed, as Kamailio's lwsc accepts it.
        c.set_verify(SslVerifyMode::NONE);
        c.build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("127.0.0.1", stream)
            .expect("TLS handshake")
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let mut ws = ws_connect(
        tls(tcp_to(addr)),
        &format!("wss://{addr}/"),
        "ng.rtpengine.com",
    );
    let r = ws_ask(
        &mut ws,
        Message::text(String::from_utf8(message("s1", &offer_body("wss-call"))).unwrap()),
    );
    assert_eq!(result(&Value::decode(&r[3..]).unwrap()), "ok");
    assert_eq!(daemon.client().list(), ["wss-call"]);

    // POST /ng and the API over HTTPS.
    let mut s = tls(tcp_to(addr));
    let body = b"s2 d7:command4:pinge";
    write!(
        s,
        "POST /ng HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: \
         application/x-rtpengine-ng\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = ngmedia_tests::http::parse(&raw).unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"s2 d6:result4:ponge"[..])
    );

    // Plain text on the TLS port is refused without harm.
    let mut plain = tcp_to(addr);
    plain.write_all(b"GET /health HTTP/1.1\r\n\r\n").unwrap();
    let mut junk = Vec::new();
    let _ = plain.read_to_end(&mut junk);
    assert!(!String::from_utf8_lossy(&junk).contains("200 OK"));
    assert_eq!(HttpClient::new(daemon.http).get("/health").status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
