//! The HTTP API (axum, HTTP/1.1, JSON): the daemon's one HTTP surface, for monitoring
//! (`/metrics`, `/statistics`, `/calls`) and for operations that do not belong in the ng
//! protocol (terminating a call by hand; later the media library and recordings).
//!
//! It runs on the control runtime next to the ng server and shares the call registry with it
//! through the same mutex; handlers hold the lock only while copying a snapshot out, never
//! across an await. One middleware in front of every route ([`front`]) enforces the rules
//! that hold for all of them: body size limit, bearer token for writes, JSON error bodies,
//! and one log line per request.

pub mod auth;
mod calls;
pub(crate) mod error;
mod media;
mod metrics;
pub mod ng;
mod openapi;
mod recordings;
mod rtpengine_metrics;
mod ui;

use ngmedia_engine::sync::lock;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ngmedia_engine::core::calls::{CallError, Calls};
use ngmedia_engine::core::request::{Delete, Flags, List, Query as CallQuery};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use self::auth::BearerToken;
use self::calls::{CallList, CallSummary, CallView, StatisticsView};
use self::error::{json_error, ApiError};
use crate::call_control::{now, CallControl};
use crate::ng::{NgMetrics, Pii};

/// Largest request body accepted. No route takes a body yet; writes to come (call control)
/// are small JSON documents. Routes that accept uploads raise it for themselves.
pub const MAX_BODY: u64 = 64 * 1024;
/// `GET /calls` without `limit`: enough for a dashboard, small enough to answer in
/// milliseconds while holding the registry lock.
pub const DEFAULT_LIST: usize = 1_000;
/// Upper bound of `limit`: the registry lock is held while the snapshots are copied.
pub const MAX_LIST: usize = 10_000;
/// Open HTTP connections at most; further clients wait in the listen backlog. Monitoring and
/// operators need a handful, this leaves room for a busy dashboard.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client gets to send a request's headers (hyper's default once a timer is set).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head buffered: our routes need a path and a few headers.
const MAX_HEADER_BUF: usize = 64 * 1024;
/// How long requests in flight get to finish once shutdown begins.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// Pause after a failed accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Time a client gets to complete the TLS handshake on the HTTPS listener.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of an axum-generated error body kept as the JSON `detail`.
const MAX_DETAIL: usize = 1024;

/// Everything the handlers need (rtpengine has no equivalent: its HTTP side is a
/// websocket/janus listener).
pub struct ApiState<E: CallControl = Calls> {
    pub calls: Arc<Mutex<E>>,
    pub ng: Arc<NgMetrics>,
    /// Required for writes when set.
    pub token: Option<BearerToken>,
    /// Daemon start, for `uptime`.
    pub started: Instant,
    /// The recording folder; `None`: `/recordings` answers 404.
    pub recordings: Option<ngmedia_recordings::RecordingStore>,
    /// The running recorder: its counters in `/metrics`, its open recordings in
    /// `GET /recordings`.
    pub recorder: Option<Arc<ngmedia_recordings::Recorder>>,
    /// The media workers, for loop utilisation in `/metrics`.
    pub workers: Option<Arc<ngmedia_engine::io::MediaWorkers>>,
    /// The media library; `None`: `/media` answers 404.
    pub media: Option<Arc<crate::media::MediaLibrary>>,
    /// Number of lawful-interception tasks, exposed as an anonymous gauge (`None`: LI off,
    /// no such series).
    pub li_tasks: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// Redis HA figures (`None`: HA off, no such series).
    pub ha: Option<Arc<crate::state_store::redis::HaMetrics>>,
    /// Homer capture counters (`None`: `--homer` off, no such series).
    pub homer: Option<Arc<crate::homer::Homer>>,
    /// Webhook delivery counters (`None`: `--webhook-url` off, no such series).
    pub events: Option<Arc<crate::events::Events>>,
    /// `--mqtt-host`: its counters on `/metrics`.
    pub mqtt: Option<Arc<crate::mqtt::Mqtt>>,
    /// ng over HTTP and WebSocket (`None`: not served).
    pub ng_http: Option<ng::HttpNg>,
    /// The load limits (`None`: `/load-limits` answers 404).
    pub limits: Option<Arc<crate::load_limits::LoadLimits>>,
}

type Shared<E> = State<Arc<ApiState<E>>>;

/// The API's routes, middleware included.
pub fn router<E: CallControl>(state: Arc<ApiState<E>>) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/status.js", get(ui::script))
        .route("/ui/status.css", get(ui::stylesheet))
        .route("/health", get(health::<E>))
        .route("/calls", get(list_calls::<E>))
        .route(
            "/calls/{call_id}",
            get(get_call::<E>).delete(delete_call::<E>),
        )
        .route("/recordings", get(list_recordings::<E>))
        .route(
            "/recordings/{id}",
            get(get_recording::<E>).delete(delete_recording::<E>),
        )
        .route("/recordings/{id}/audio", get(recording_audio::<E>))
        .route(
            "/media",
            get(list_media::<E>).post(upload_media::<E>).layer(
                axum::extract::DefaultBodyLimit::max(upload_limit(&state) as usize),
            ),
        )
        .route(
            "/media/{media_id}",
            get(get_media::<E>).delete(delete_media::<E>),
        )
        .route("/media/{media_id}/audio", get(media_audio::<E>))
        .route("/statistics", get(statistics::<E>))
        .route(
            "/load-limits",
            get(get_load_limits::<E>).put(put_load_limits::<E>),
        )
        .route("/metrics", get(prometheus::<E>))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), front::<E>))
        .with_state(state)
}

/// Serve `app` on `listener` (over TLS with `tls`: `--listen-https`) until `shutdown`
/// resolves, then let the requests in flight finish (the caller bounds how long it waits for
/// that).
///
/// Our own accept loop rather than `axum::serve`: it adds a header read timeout, so a client
/// that opens a connection and sends nothing useful cannot hold it (or shutdown) forever,
/// and a cap on open connections, so a burst cannot exhaust the daemon's file descriptors.
/// Connections may be upgraded to WebSocket (ng over WebSocket): the session then runs in a
/// task of its own and the connection's slot is free again.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // hyper-util's GracefulShutdown cannot watch connections that may be upgraded, so each
    // connection task watches this flag itself, and the slots tell when all have ended.
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUF);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: nothing to do but wait for descriptors to free up,
                    // without spinning.
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(ng::Peer(peer))));
        let builder = builder.clone();
        let stopped = stopped.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => drive(stream, service, &builder, stopped, peer).await,
                // The handshake runs in the connection's task, so a slow client cannot hold
                // up the accept loop.
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            drive(tls_stream, service, &builder, stopped, peer).await
                        }
                        Ok(Err(e)) => {
                            debug!(error = %e, peer = %Pii(peer), "TLS handshake failed")
                        }
                        Err(_) => debug!(peer = %Pii(peer), "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Our handlers answer in microseconds: whatever is still open after this is a client that
    // stalled mid-request or an idle connection, and is dropped with the runtime.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(all))
        .await
        .is_err()
    {
        debug!("HTTP connections still open after {DRAIN_LIMIT:?}; closing them");
    }
    Ok(())
}

/// Serve one connection until it ends, is upgraded (WebSocket: the session goes on in a task
/// of its own), or `stopped` turns true (then the request in progress is finished).
async fn drive<I>(
    io: I,
    service: TowerToHyperService<Router>,
    builder: &http1::Builder,
    mut stopped: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stop = async move {
        // The guard `wait_for` returns must not live across an await (it is not `Send`).
        let _ = stopped.wait_for(|&s| s).await.map(|_| ());
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, peer = %Pii(peer), "HTTP connection ended with an error");
    }
}

/// Rules common to every request, in order: size limit, token, the handler, JSON errors,
/// one log line.
async fn front<E: CallControl>(State(state): Shared<E>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());

    let ng_http = state.ng_http.as_ref().filter(|ng| {
        ng.access != ng::HttpNgAccess::Off && ng::is_ng_request(&method, &path, request.headers())
    });
    let (route, response) = match ng_http {
        Some(ng_http) => {
            let response = match admit_ng(&state, ng_http.access, &request) {
                Ok(()) => ng::handle(ng_http, request)
                    .await
                    .unwrap_or_else(IntoResponse::into_response),
                Err(e) => e.into_response(),
            };
            (Some("ng".to_owned()), response)
        }
        None => {
            let response = match admit(&state, &request) {
                Ok(()) => json_errors(&method, &path, next.run(request).await).await,
                Err(e) => e.into_response(),
            };
            (route, response)
        }
    };

    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let route = route.as_deref().unwrap_or("-");
    // Call-ids travel in paths: the path is personal data, the route template is not.
    let path = Pii(path);
    if response.status().is_server_error() {
        warn!(%method, route, %path, status, latency_ms, "http request");
    } else if auth::is_write(&method) || response.status().is_client_error() {
        info!(%method, route, %path, status, latency_ms, "http request");
    } else {
        debug!(%method, route, %path, status, latency_ms, "http request");
    }
    response
}

/// Largest body `POST /media` takes: the library's limit plus multipart framing.
fn upload_limit<E: CallControl>(state: &ApiState<E>) -> u64 {
    state.media.as_ref().map_or(MAX_BODY, |m| {
        m.max_bytes().saturating_add(media::MULTIPART_OVERHEAD)
    })
}

fn admit<E: CallControl>(state: &ApiState<E>, request: &Request) -> Result<(), ApiError> {
    // The token first: an unauthenticated client learns nothing about size limits.
    auth::check(state.token.as_ref(), request.method(), request.headers())?;
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = if request.method() == Method::POST && request.uri().path() == "/media" {
        upload_limit(state)
    } else {
        MAX_BODY
    };
    if let Some(length) = length.filter(|&l| l > limit) {
        return Err(ApiError::PayloadTooLarge { length, limit });
    }
    Ok(())
}

/// The rules for ng over HTTP and WebSocket: the token only in `token` mode (where a
/// WebSocket upgrade, a GET, needs it too), and the body size limit.
fn admit_ng<E: CallControl>(
    state: &ApiState<E>,
    access: ng::HttpNgAccess,
    request: &Request,
) -> Result<(), ApiError> {
    if access == ng::HttpNgAccess::Token {
        auth::check(state.token.as_ref(), &Method::POST, request.headers())?;
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = length.filter(|&l| l > MAX_BODY) {
        return Err(ApiError::PayloadTooLarge {
            length,
            limit: MAX_BODY,
        });
    }
    Ok(())
}

/// Rewrite error responses axum builds itself (405, extractor rejections) into our JSON
/// shape; ours are already JSON and pass through.
async fn json_errors(method: &Method, path: &str, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), MAX_DETAIL * 4)
        .await
        .unwrap_or_default();
    let mut detail = String::from_utf8_lossy(&body).trim().to_owned();
    // axum's own 405 has an empty body and gets its Allow header after this middleware.
    let route = openapi::route_for(path);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(route) = route {
            let mut allowed: Vec<String> = route
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect();
            if route.methods.contains(&"get") {
                allowed.push("HEAD".into());
            }
            detail = format!(
                "{method} is not allowed on {path}; allowed: {}",
                allowed.join(", ")
            );
        }
    }
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("error").to_owned();
    }
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    json_error(status, &detail)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn health<E: CallControl>(State(state): Shared<E>) -> Response {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<usize>,
}

async fn list_calls<E: CallControl>(
    State(state): Shared<E>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIST);
    if limit > MAX_LIST {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is above the maximum of {MAX_LIST}"
        )));
    }
    let now = now();
    let (total, snapshots) = {
        let calls = lock(&state.calls);
        let ids = calls.list(&List { limit: usize::MAX });
        let total = ids.len();
        let snapshots: Vec<_> = ids
            .into_iter()
            .take(limit)
            .filter_map(|call_id| {
                calls
                    .query(
                        &CallQuery {
                            call_id,
                            ..Default::default()
                        },
                        now,
                    )
                    .ok()
            })
            .collect();
        (total, snapshots)
    };
    let calls: Vec<CallSummary> = snapshots.iter().map(CallSummary::new).collect();
    Ok(Json(CallList {
        total,
        count: calls.len(),
        calls,
    })
    .into_response())
}

fn call_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if id.is_empty() {
        return Err(ApiError::BadRequest("empty call-id".into()));
    }
    Ok(id)
}

/// The client's own call-id goes back to it as is (`Pii` is for logs, not replies).
fn unknown_call(call_id: &str) -> ApiError {
    ApiError::NotFound(format!("no call with call-id {call_id}"))
}

fn engine_error(call_id: &str, e: CallError) -> ApiError {
    match e {
        CallError::UnknownCall | CallError::NotFound => unknown_call(call_id),
        other => ApiError::Internal(other.to_string()),
    }
}

async fn get_call<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let call_id = call_id(path)?;
    let query = CallQuery {
        call_id,
        ..Default::default()
    };
    let snapshot = lock(&state.calls)
        .query(&query, now())
        .map_err(|e| engine_error(&query.call_id, e))?;
    Ok(Json(CallView::new(&snapshot)).into_response())
}

async fn delete_call<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let call_id = call_id(path)?;
    // As ng `delete` with `delete delay` 0 and `fatal`: gone at once, and an unknown call is
    // an error rather than a warning.
    let request = Delete {
        call_id,
        from_tag: None,
        to_tag: None,
        via_branch: None,
        delete_delay: Some(Duration::ZERO),
        flags: Flags {
            fatal: true,
            ..Default::default()
        },
    };
    let reply = lock(&state.calls)
        .delete(&request, now())
        .map_err(|e| engine_error(&request.call_id, e))?;
    let Some(snapshot) = reply.snapshot else {
        return Err(unknown_call(&request.call_id));
    };
    info!(call_id = %Pii(&request.call_id), "call terminated over HTTP");
    Ok(Json(CallView::new(&snapshot)).into_response())
}

/// `GET /load-limits`: the limits in force, the figures they are checked against, and the
/// limit that refuses new calls right now, if any.
async fn get_load_limits<E: CallControl>(State(state): Shared<E>) -> Result<Response, ApiError> {
    let Some(limits) = state.limits.as_ref() else {
        return Err(ApiError::NotFound("load limits are not available".into()));
    };
    let sessions = lock(&state.calls).sessions();
    Ok(Json(load_limits_view(limits, sessions)).into_response())
}

fn load_limits_view(limits: &crate::load_limits::LoadLimits, sessions: usize) -> serde_json::Value {
    use std::sync::atomic::Ordering::Relaxed;
    let config = limits.config();
    let g = &limits.gauge;
    json!({
        "max_sessions": config.max_sessions,
        "max_load": config.max_load,
        "max_cpu": config.max_cpu,
        "max_bandwidth": config.max_bandwidth,
        "max_transcoding_load": config.max_transcoding_load,
        "sessions": sessions,
        "load": limits.samples_load().then(|| g.load_x100.load(Relaxed) as f64 / 100.0),
        "cpu_percent": limits.samples_cpu().then(|| g.cpu_x100.load(Relaxed) as f64 / 100.0),
        "bandwidth_bytes_per_s": limits.samples_bandwidth().then(|| g.bandwidth.load(Relaxed)),
        "transcoding_load_percent": limits
            .samples_workers()
            .then(|| g.worker_busy_x100.load(Relaxed) as f64 / 100.0),
        "refusing": limits.check(sessions).map(|l| l.label()),
        "refusing_transcoding": limits
            .check(sessions)
            .or_else(|| limits.check_transcoding())
            .map(|l| l.label()),
    })
}

/// The body of `PUT /load-limits`: what can change while running (rtpengine-ctl's
/// `set maxsessions`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadLimitsUpdate {
    /// A number of calls (0 drains), or `null` / -1 for no limit.
    max_sessions: Option<i64>,
}

/// `PUT /load-limits`: change the session limit at run time (drain an engine with 0).
async fn put_load_limits<E: CallControl>(
    State(state): Shared<E>,
    body: Result<Json<LoadLimitsUpdate>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Some(limits) = state.limits.as_ref() else {
        return Err(ApiError::NotFound("load limits are not available".into()));
    };
    let Json(update) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let max = match update.max_sessions {
        None | Some(-1) => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            ApiError::BadRequest(format!(
                "max_sessions {n}: expected a number of calls, or null / -1 for no limit"
            ))
        })?),
    };
    limits.set_max_sessions(max);
    info!(
        max_sessions = ?max,
        "session limit changed over HTTP"
    );
    let sessions = lock(&state.calls).sessions();
    Ok(Json(load_limits_view(limits, sessions)).into_response())
}

async fn statistics<E: CallControl>(State(state): Shared<E>) -> Response {
    let engine = lock(&state.calls).statistics(now());
    Json(StatisticsView::new(&engine, &state.ng)).into_response()
}

async fn prometheus<E: CallControl>(State(state): Shared<E>) -> Response {
    let engine = lock(&state.calls).statistics(now());
    let extra = metrics::Extra {
        workers: state
            .workers
            .as_ref()
            .map(|w| w.loads())
            .unwrap_or_default(),
        recorder: state
            .recorder
            .as_ref()
            .map(|r| metrics::RecorderFigures::read(r.stats())),
    };
    let mut text = metrics::render(&engine, &state.ng, state.started.elapsed(), &extra);
    rtpengine_metrics::render(&mut text, &engine, &state.ng);
    if let Some(n) = &state.li_tasks {
        metrics::render_li_tasks(&mut text, n.load(std::sync::atomic::Ordering::Relaxed));
    }
    if let Some(ha) = &state.ha {
        metrics::render_ha(&mut text, &ha.figures());
    }
    if let Some(homer) = &state.homer {
        metrics::render_homer(&mut text, homer.counters());
    }
    if let Some(events) = &state.events {
        metrics::render_events(&mut text, events.counters());
    }
    if let Some(mqtt) = &state.mqtt {
        metrics::render_mqtt(&mut text, mqtt.counters());
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}

async fn list_media<E: CallControl>(State(state): Shared<E>) -> Result<Response, ApiError> {
    media::list(state.media.as_ref()).await
}

async fn upload_media<E: CallControl>(
    State(state): Shared<E>,
    request: Request,
) -> Result<Response, ApiError> {
    media::upload(state.media.as_ref(), request).await
}

fn media_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn get_media<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    media::get(state.media.as_ref(), media_id(path)?).await
}

async fn media_audio<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    media::audio(state.media.as_ref(), media_id(path)?).await
}

async fn delete_media<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    media::delete(state.media.as_ref(), media_id(path)?).await
}

async fn list_recordings<E: CallControl>(
    State(state): Shared<E>,
    params: Result<Query<recordings::ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let live = state
        .recorder
        .as_ref()
        .map(|r| r.in_progress())
        .unwrap_or_default();
    recordings::list(state.recordings.as_ref(), live, params).await
}

async fn get_recording<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    recordings::get(state.recordings.as_ref(), path).await
}

async fn delete_recording<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    recordings::delete(state.recordings.as_ref(), path).await
}

async fn recording_audio<E: CallControl>(
    State(state): Shared<E>,
    path: Result<Path<String>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    recordings::audio(state.recordings.as_ref(), path, headers).await
}

async fn openapi_json() -> Response {
    Json(openapi::document()).into_response()
}

#[cfg(test)]
mod tests;
