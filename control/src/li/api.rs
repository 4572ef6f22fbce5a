//! The LI administration listener (X1-like): `POST/GET /li/tasks`, `GET/DELETE
//! /li/tasks/{xid}`, on its own address, with its own credential (a bearer token compared in
//! constant time, and/or mutual TLS), and an audit line for every request, accepted or not.
//! Nothing of it goes to the ordinary log.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use ngmedia_recordings::li::task::{Destination, Task, TaskSpec};
use ngmedia_recordings::li::x3::Xid;
use ngmedia_recordings::li::{ActiveTask, Interceptor};

use super::audit::AuditLog;
use crate::http::error::json_error;

/// Largest request body: a task is a small JSON document.
const MAX_BODY: usize = 16 * 1024;
const MAX_CONNECTIONS: usize = 32;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The credential the listener demands.
#[derive(Clone)]
pub struct LiToken(Vec<u8>);

impl LiToken {
    pub fn new(s: &str) -> Option<LiToken> {
        (!s.is_empty()).then(|| LiToken(s.as_bytes().to_vec()))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        // Length differences are not secret; contents are compared in constant time.
        self.0.len() == presented.len() && bool::from(self.0.ct_eq(presented))
    }
}

impl std::fmt::Debug for LiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiToken(<hidden>)")
    }
}

/// What the handlers share.
pub struct LiState {
    pub li: Arc<Interceptor>,
    pub audit: AuditLog,
    pub token: Option<LiToken>,
    /// Re-evaluate every call against the tasks (takes the registry lock).
    pub refresh: Arc<dyn Fn() + Send + Sync>,
    /// X3-over-TLS destinations are possible (a CA and client certificate are configured).
    pub tls_delivery: bool,
}

#[derive(Clone, Copy)]
struct ClientAddr(SocketAddr);

/// The XID a handler acted on, for the audit line.
#[derive(Clone)]
struct AuditXid(String);

type Shared = State<Arc<LiState>>;

pub fn router(state: Arc<LiState>) -> Router {
    Router::new()
        .route("/li/tasks", get(list).post(create))
        .route("/li/tasks/{xid}", get(show).delete(remove))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such LI resource") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

fn action(method: &Method, path: &str) -> &'static str {
    let item = path.strip_prefix("/li/tasks/").filter(|r| !r.is_empty());
    match (method.as_str(), path, item) {
        ("POST", "/li/tasks", _) => "create",
        ("GET", "/li/tasks", _) => "list",
        ("GET", _, Some(_)) => "show",
        ("DELETE", _, Some(_)) => "delete",
        _ => "other",
    }
}

/// Credential check, the handler, the audit line.
async fn front(State(state): Shared, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let act = action(request.method(), request.uri().path());
    let path_xid = request
        .uri()
        .path()
        .strip_prefix("/li/tasks/")
        .map(str::to_owned);
    let refusal =
        state
            .token
            .as_ref()
            .and_then(|token| match request.headers().get(header::AUTHORIZATION) {
                None => Some((StatusCode::UNAUTHORIZED, "missing credential")),
                Some(v) => {
                    let v = v.as_bytes();
                    let presented = match v.get(..7) {
                        Some(s) if s.eq_ignore_ascii_case(b"bearer ") => v[7..].trim_ascii(),
                        _ => return Some((StatusCode::UNAUTHORIZED, "not a bearer credential")),
                    };
                    (!token.matches(presented))
                        .then_some((StatusCode::FORBIDDEN, "wrong credential"))
                }
            });
    let response = match refusal {
        Some((status, why)) => {
            let mut r = json_error(status, why);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ngmedia-li\""),
                );
            }
            r
        }
        None => next.run(request).await,
    };
    let xid = response
        .extensions()
        .get::<AuditXid>()
        .map(|x| x.0.clone())
        .or(path_xid);
    let outcome = format!(
        "{}{}",
        response.status().as_u16(),
        match refusal {
            Some((_, why)) => format!(" refused: {why}"),
            None => String::new(),
        }
    );
    if state
        .audit
        .record(client, act, xid.as_deref(), &outcome)
        .is_err()
    {
        // An unaudited change must not stand unnoticed: the client learns it.
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "audit log not writable");
    }
    response
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A task as the API shows it: the spec plus its delivery state.
fn view(state: &LiState, t: &ActiveTask) -> Value {
    let now = unix_secs();
    let s = t.link.stats();
    let status = if t.task.expired_at(now) {
        "expired"
    } else if t.task.active_at(now) {
        "active"
    } else {
        "pending"
    };
    let mut v = serde_json::to_value(&t.task.spec).expect("task spec serializes");
    v["status"] = json!({
        "state": status,
        "matched_calls": state.li.matched_calls(&t.task.xid),
        "connected": s.connected.load(Relaxed),
        "delivered": s.delivered.load(Relaxed),
        "dropped": s.dropped.load(Relaxed),
        "keepalives": s.keepalives.load(Relaxed),
        "connects": s.connects.load(Relaxed),
    });
    v
}

fn with_xid(mut r: Response, xid: &str) -> Response {
    r.extensions_mut().insert(AuditXid(xid.to_owned()));
    r
}

async fn create(State(state): Shared, body: Bytes) -> Response {
    let spec: TaskSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("task: {e}")),
    };
    let xid_text = spec.xid.clone();
    let task = match Task::new(spec) {
        Ok(t) => t,
        Err(e) => {
            return with_xid(
                json_error(StatusCode::BAD_REQUEST, &e.to_string()),
                &xid_text,
            )
        }
    };
    if matches!(task.spec.destination, Destination::X3 { tls: true, .. }) && !state.tls_delivery {
        return with_xid(
            json_error(
                StatusCode::BAD_REQUEST,
                "destination.tls needs --li-tls-cert, --li-tls-key and --li-tls-ca",
            ),
            &xid_text,
        );
    }
    let xid = task.xid.to_string();
    let r = match state.li.add(task) {
        Ok(true) => {
            (state.refresh)();
            let t = state
                .li
                .task(&Xid::parse(&xid).expect("validated"))
                .map(|t| view(&state, &t));
            (StatusCode::CREATED, Json(t)).into_response()
        }
        Ok(false) => json_error(StatusCode::CONFLICT, "a task with this xid exists"),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    with_xid(r, &xid)
}

async fn list(State(state): Shared) -> Response {
    let tasks: Vec<Value> = state.li.tasks().iter().map(|t| view(&state, t)).collect();
    Json(json!({ "tasks": tasks, "queue_drops": state.li.queue_drops() })).into_response()
}

fn parse_xid(xid: &str) -> Result<Xid, Box<Response>> {
    Xid::parse(xid).map_err(|e| Box::new(json_error(StatusCode::BAD_REQUEST, &format!("xid: {e}"))))
}

async fn show(State(state): Shared, Path(xid): Path<String>) -> Response {
    let x = match parse_xid(&xid) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match state.li.task(&x) {
        Some(t) => Json(view(&state, &t)).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "no task with this xid"),
    }
}

async fn remove(State(state): Shared, Path(xid): Path<String>) -> Response {
    let x = match parse_xid(&xid) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match state.li.remove(&x) {
        Ok(true) => {
            (state.refresh)();
            Json(json!({ "deleted": x.to_string() })).into_response()
        }
        Ok(false) => json_error(StatusCode::NOT_FOUND, "no task with this xid"),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Accept connections (TLS when `tls` is set) and serve `app` until `shutdown`. Failed TLS
/// handshakes (no or an untrusted client certificate) get an audit line too.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    state: Arc<LiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone().layer(Extension(ClientAddr(peer)));
        let builder = builder.clone();
        let tls = tls.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(app);
            match tls {
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    let accepted =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match accepted {
                        Ok(Ok(tls_stream)) => {
                            let _ = builder
                                .serve_connection(TokioIo::new(tls_stream), service)
                                .await;
                        }
                        Ok(Err(e)) => {
                            let _ = state.audit.record(
                                Some(peer),
                                "tls-handshake",
                                None,
                                &format!("refused: {e}"),
                            );
                        }
                        Err(_) => {
                            let _ = state.audit.record(
                                Some(peer),
                                "tls-handshake",
                                None,
                                "refused: timeout",
                            );
                        }
                    }
                }
            }
            drop(slot);
        });
    }
}
