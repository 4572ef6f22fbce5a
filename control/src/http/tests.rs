//! Router tests: real requests through the whole middleware stack, no sockets.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ngmedia_engine::core::calls::{CallError, DeleteReply, Now, OfferAnswerReply};
use ngmedia_engine::core::request::{Delete, List, OfferAnswer, Query};
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::ng::reply::tests::ex2_snapshot;
use crate::ng::request::CommandKind;
use crate::ng::NgResult;

/// An engine holding fixed snapshots; records deletes.
#[derive(Default)]
struct FakeCalls {
    calls: Vec<CallSnapshot>,
    deleted: Vec<Delete>,
}

impl CallControl for FakeCalls {
    fn offer(&mut self, _: &OfferAnswer, _: Now) -> Result<OfferAnswerReply, CallError> {
        unreachable!("the HTTP API sends no offer or answer")
    }
    fn answer(&mut self, _: &OfferAnswer, _: Now) -> Result<OfferAnswerReply, CallError> {
        unreachable!("the HTTP API sends no offer or answer")
    }
    fn delete(&mut self, req: &Delete, _: Now) -> Result<DeleteReply, CallError> {
        self.deleted.push(req.clone());
        let Some(at) = self.calls.iter().position(|c| c.call_id == req.call_id) else {
            return Err(CallError::NotFound);
        };
        Ok(DeleteReply {
            snapshot: Some(self.calls.remove(at)),
            warning: None,
        })
    }
    fn query(&self, req: &Query, _: Now) -> Result<CallSnapshot, CallError> {
        self.calls
            .iter()
            .find(|c| c.call_id == req.call_id)
            .cloned()
            .ok_or(CallError::UnknownCall)
    }
    fn list(&self, req: &List) -> Vec<String> {
        self.calls
            .iter()
            .take(req.limit)
            .map(|c| c.call_id.clone())
            .collect()
    }
    fn statistics(&self, _: Now) -> EngineStatistics {
        let mut s = EngineStatistics {
            calls_current: self.calls.len() as u64,
            calls_total: 4,
            ..Default::default()
        };
        s.packets.rtp_packets = 20;
        s
    }
}

struct Api {
    app: Router,
    calls: Arc<Mutex<FakeCalls>>,
    ng: Arc<NgMetrics>,
}

fn api(token: Option<&str>) -> Api {
    api_with(token, None)
}

/// A recording folder holding one finished recording `rec-1` (metadata and a WAV).
fn recording_folder() -> ngmedia_recordings::RecordingStore {
    let dir = std::env::temp_dir().join(format!(
        "ngmedia-http-rec-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rec-1.json"),
        br#"{"id":"rec-1","call_id":"c","start_ms":1,"files":{"mix":"rec-1.wav","metadata":"rec-1.json"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("rec-1.wav"), b"RIFF").unwrap();
    ngmedia_recordings::RecordingStore::new(dir)
}

fn api_with(token: Option<&str>, recordings: Option<ngmedia_recordings::RecordingStore>) -> Api {
    api_full(token, recordings, None)
}

/// A 100 ms 8 kHz mono WAV.
fn tiny_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..800).map(|i| ((i % 20) as i16 - 10) * 300).collect();
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + 1600u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(b"\x02\0\x10\0data");
    v.extend_from_slice(&1600u32.to_le_bytes());
    samples
        .iter()
        .for_each(|s| v.extend_from_slice(&s.to_le_bytes()));
    v
}

/// A media library in a fresh folder holding [`tiny_wav`].
fn media_library(tag: &str) -> (Arc<crate::media::MediaLibrary>, String) {
    let dir = std::env::temp_dir().join(format!("ngmedia-http-media-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lib = Arc::new(crate::media::MediaLibrary::open(&dir, 1 << 20, 60, &[]).unwrap());
    let (info, _) = lib.add("tiny", &tiny_wav()).unwrap();
    (lib, info.id)
}

fn api_full(
    token: Option<&str>,
    recordings: Option<ngmedia_recordings::RecordingStore>,
    media: Option<Arc<crate::media::MediaLibrary>>,
) -> Api {
    let mut second = ex2_snapshot();
    second.call_id = "a@b/c d".into();
    let calls = Arc::new(Mutex::new(FakeCalls {
        calls: vec![ex2_snapshot(), second],
        ..Default::default()
    }));
    let ng = Arc::new(NgMetrics::default());
    let state = Arc::new(ApiState {
        calls: calls.clone(),
        ng: ng.clone(),
        token: token.and_then(BearerToken::new),
        started: Instant::now(),
        recordings,
        recorder: None,
        workers: None,
        media,
        li_tasks: Some(Arc::new(std::sync::atomic::AtomicUsize::new(2))),
        ha: None,
        homer: None,
        events: None,
        mqtt: None,
        ng_http: None,
        limits: Some(Arc::new(crate::load_limits::LoadLimits::new(
            crate::load_limits::LoadLimitConfig {
                max_sessions: Some(10),
                ..Default::default()
            },
        ))),
    });
    Api {
        app: router(state),
        calls,
        ng,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// An error response in our shape, with this status and code.
    fn assert_error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/json");
        let v = self.json();
        assert_eq!(v["error"], code, "{v}");
        v["detail"].as_str().expect("detail").to_owned()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn req(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

fn authed(method: &str, uri: &str, auth: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, auth)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn health_reports_version() {
    let r = send(&api(None).app, req("GET", "/health")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["uptime_s"], 0);
}

#[tokio::test]
async fn calls_list_and_limit() {
    let api = api(None);
    let v = send(&api.app, req("GET", "/calls")).await.json();
    assert_eq!(
        (v["total"].as_u64(), v["count"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(v["calls"][0]["call_id"], "call-plain-2");
    assert_eq!(v["calls"][1]["call_id"], "a@b/c d");
    assert_eq!(v["calls"][0]["legs"][1]["tag"], "tagB");

    let v = send(&api.app, req("GET", "/calls?limit=1")).await.json();
    assert_eq!(
        (v["total"].as_u64(), v["count"].as_u64()),
        (Some(2), Some(1))
    );

    let r = send(&api.app, req("GET", "/calls?limit=abc")).await;
    let detail = r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(detail.contains("limit"), "{detail}");
    let r = send(&api.app, req("GET", "/calls?limt=1")).await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = send(&api.app, req("GET", "/calls?limit=10001")).await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST, "bad_request"),
        "limit 10001 is above the maximum of 10000"
    );
}

#[tokio::test]
async fn one_call_by_percent_encoded_id() {
    let api = api(None);
    let r = send(&api.app, req("GET", "/calls/call-plain-2")).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["call_id"], "call-plain-2");
    assert_eq!(
        v["legs"][0]["medias"][0]["streams"][0]["counters"]["packets"],
        10
    );

    // `@` may come raw or encoded; `/` and space must be encoded.
    for uri in ["/calls/a@b%2Fc%20d", "/calls/a%40b%2Fc%20d"] {
        let r = send(&api.app, req("GET", uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.json()["call_id"], "a@b/c d");
    }
    let r = send(&api.app, req("GET", "/calls/nope")).await;
    assert_eq!(
        r.assert_error(StatusCode::NOT_FOUND, "not_found"),
        "no call with call-id nope"
    );
    // Not valid UTF-8 once decoded.
    let r = send(&api.app, req("GET", "/calls/%FF")).await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn delete_needs_the_token_and_terminates_at_once() {
    let api = api(Some("s3cret"));
    let r = send(&api.app, req("DELETE", "/calls/call-plain-2")).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        r.headers.get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer realm=\"ngmedia\""
    );
    let r = send(
        &api.app,
        authed("DELETE", "/calls/call-plain-2", "Bearer nope"),
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized"),
        "invalid bearer token"
    );
    assert!(api.calls.lock().unwrap().deleted.is_empty());

    let r = send(
        &api.app,
        authed("DELETE", "/calls/call-plain-2", "Bearer s3cret"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["call_id"], "call-plain-2");
    {
        let calls = api.calls.lock().unwrap();
        let d = &calls.deleted[0];
        assert_eq!(d.call_id, "call-plain-2");
        assert_eq!(d.delete_delay, Some(Duration::ZERO));
        assert!(d.flags.fatal);
        assert_eq!((d.from_tag.as_ref(), d.to_tag.as_ref()), (None, None));
    }
    let r = send(&api.app, req("GET", "/calls/call-plain-2")).await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = send(
        &api.app,
        authed("DELETE", "/calls/call-plain-2", "Bearer s3cret"),
    )
    .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    // Reads stay open with a token configured.
    assert_eq!(
        send(&api.app, req("GET", "/calls")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_token_writes_are_open() {
    let api = api(None);
    let r = send(&api.app, req("DELETE", "/calls/a@b%2Fc%20d")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.calls.lock().unwrap().deleted[0].call_id, "a@b/c d");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let api = api(None);
    let r = send(&api.app, req("GET", "/nope")).await;
    assert_eq!(
        r.assert_error(StatusCode::NOT_FOUND, "not_found"),
        "no route for GET /nope"
    );
    let r = send(&api.app, req("POST", "/health")).await;
    let detail = r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(detail, "POST is not allowed on /health; allowed: GET, HEAD");
    assert!(r.headers.get(header::ALLOW).is_some());
    let r = send(&api.app, req("PUT", "/calls/x")).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // With a token, an unauthenticated write is refused before routing.
    let guarded = self::api(Some("t"));
    let r = send(&guarded.app, req("POST", "/nope")).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let api = api(None);
    let request = Request::builder()
        .method("DELETE")
        .uri("/calls/call-plain-2")
        .header(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string())
        .body(Body::from(vec![b'x'; MAX_BODY as usize + 1]))
        .unwrap();
    let r = send(&api.app, request).await;
    assert_eq!(
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "request body of 65537 bytes exceeds the limit of 65536 bytes"
    );
    assert!(api.calls.lock().unwrap().deleted.is_empty());
}

#[tokio::test]
async fn statistics_and_metrics() {
    let api = api(None);
    api.ng.record(
        Some(CommandKind::Offer),
        NgResult::Ok,
        Duration::from_micros(120),
    );
    let v = send(&api.app, req("GET", "/statistics")).await.json();
    assert_eq!(v["calls"]["active"], 2);
    assert_eq!(v["calls"]["total"], 4);
    assert_eq!(v["packets"]["rtp_packets"], 20);
    assert_eq!(v["ng"]["requests"]["offer"]["ok"], 1);

    let r = send(&api.app, req("GET", "/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains("\nngmedia_rtp_packets_total 20\n"), "{text}");
    assert!(text.contains("\nngmedia_calls_active 2\n"), "{text}");
    assert!(text.contains("ngmedia_ng_requests_total{command=\"offer\",result=\"ok\"} 1\n"));
    assert!(text.contains(
        "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"0.00025\"} 1\n"
    ));
}

/// The router serves exactly what the OpenAPI document lists.
#[tokio::test]
async fn openapi_lists_every_route_the_router_serves() {
    let store = recording_folder();
    let (media, media_id) = media_library("routes");
    let api = api_full(None, Some(store.clone()), Some(media));
    let r = send(&api.app, req("GET", "/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    let paths = doc["paths"].as_object().unwrap();
    for route in openapi::ROUTES {
        assert!(paths.contains_key(route.path));
        // Every documented operation is served (GET first so the DELETE finds the call).
        for method in route.methods {
            let uri = route
                .path
                .replace("{call_id}", "call-plain-2")
                .replace("{id}", "rec-1")
                .replace("{media_id}", &media_id);
            let request = if (route.path, *method) == ("/media", "post") {
                // The file stored already: 200 with the existing item.
                Request::builder()
                    .method("POST")
                    .uri("/media?name=again")
                    .body(Body::from(tiny_wav()))
                    .unwrap()
            } else if (route.path, *method) == ("/load-limits", "put") {
                json_req("PUT", "/load-limits", r#"{"max_sessions": 5}"#)
            } else {
                req(&method.to_uppercase(), &uri)
            };
            let r = send(&api.app, request).await;
            assert_eq!(r.status, StatusCode::OK, "{method} {uri}");
        }
        // And nothing else is: every other method is a 405.
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if route.methods.contains(&method.to_lowercase().as_str()) {
                continue;
            }
            let uri = route
                .path
                .replace("{call_id}", "x")
                .replace("{id}", "x")
                .replace("{media_id}", "x");
            let r = send(&api.app, req(method, &uri)).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {}",
                route.path
            );
        }
    }
    let _ = std::fs::remove_dir_all(store.dir());
}

/// `/media`: upload (raw and multipart), list, get, download, delete, and the refusals.
#[tokio::test]
async fn media_library_over_http() {
    let (media, _) = media_library("api");
    let api = api_full(Some("s3cret"), None, Some(media));
    let upload = |uri: &str, body: Vec<u8>, ct: Option<&str>, token: bool| {
        let mut b = Request::builder().method("POST").uri(uri);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        if token {
            b = b.header("authorization", "Bearer s3cret");
        }
        b.body(Body::from(body)).unwrap()
    };
    // No token: 401 before anything is read.
    let r = send(&api.app, upload("/media?name=a", tiny_wav(), None, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A different file (one sample changed), multipart.
    let mut wav = tiny_wav();
    wav[60] ^= 1;
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Hold tune.wav\"\r\nContent-Type: audio/wav\r\n\r\n".to_vec();
    body.extend_from_slice(&wav);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let r = send(
        &api.app,
        upload(
            "/media",
            body,
            Some("multipart/form-data; boundary=XyZ"),
            true,
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let item = r.json();
    assert_eq!(item["name"], "Hold tune.wav");
    assert_eq!(item["format"], "wav");
    assert_eq!(item["duration_ms"], 100);
    let id = item["id"].as_str().unwrap().to_owned();
    let r = send(&api.app, req("GET", "/media")).await;
    assert_eq!(r.json()["count"], 2);
    let r = send(&api.app, req("GET", &format!("/media/{id}/audio"))).await;
    assert_eq!(
        (r.status, r.content_type(), r.body.clone()),
        (StatusCode::OK, "audio/wav", wav)
    );
    for (body, name, status) in [
        (
            b"plain text".to_vec(),
            "?name=t",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (Vec::new(), "?name=t", StatusCode::BAD_REQUEST),
        (
            tiny_wav()[..900].to_vec(),
            "?name=t",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (tiny_wav(), "?name=..%2Fetc", StatusCode::BAD_REQUEST),
        (tiny_wav(), "", StatusCode::BAD_REQUEST),
        (
            vec![0u8; (1 << 20) + 1],
            "?name=big",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let r = send(&api.app, upload(&format!("/media{name}"), body, None, true)).await;
        assert_eq!(
            r.status,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json()["detail"].is_string());
    }
    let r = send(&api.app, req("GET", "/media/../../etc")).await;
    assert_ne!(r.status, StatusCode::OK);
    let r = send(&api.app, req("GET", "/media/zz")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &api.app,
        authed("DELETE", &format!("/media/{id}"), "Bearer s3cret"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&api.app, req("GET", &format!("/media/{id}"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

fn json_req(method: &str, uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn load_limits_read_and_drain() {
    let api = api_full(Some("tok"), None, None);
    let r = send(&api.app, req("GET", "/load-limits")).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["max_sessions"], 10);
    assert_eq!(v["max_cpu"], Value::Null);
    assert_eq!(v["cpu_percent"], Value::Null, "not sampled when off");
    assert_eq!(v["refusing"], Value::Null);

    // A write: the token is needed.
    let r = send(
        &api.app,
        json_req("PUT", "/load-limits", r#"{"max_sessions": 0}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mut drain = json_req("PUT", "/load-limits", r#"{"max_sessions": 0}"#);
    drain
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
    let r = send(&api.app, drain).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["max_sessions"], 0);
    assert_eq!(r.json()["refusing"], "sessions", "0 refuses every new call");

    for (body, status) in [
        (r#"{"max_sessions": null}"#, StatusCode::OK),
        (r#"{"max_sessions": -1}"#, StatusCode::OK),
        (r#"{"max_sessions": -2}"#, StatusCode::BAD_REQUEST),
        (r#"{"max_cpu": 5}"#, StatusCode::BAD_REQUEST),
        ("not json", StatusCode::BAD_REQUEST),
    ] {
        let mut r = json_req("PUT", "/load-limits", body);
        r.headers_mut()
            .insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        let r = send(&api.app, r).await;
        assert_eq!(r.status, status, "{body}");
        if status == StatusCode::OK {
            assert_eq!(r.json()["max_sessions"], Value::Null, "{body}");
        } else {
            r.assert_error(status, "bad_request");
        }
    }
}
