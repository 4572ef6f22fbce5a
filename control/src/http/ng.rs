//! ng over HTTP and WebSocket (rtpengine `websocket.c`), on the HTTP (and HTTPS) listener:
//!
//! - `POST /ng` with `Content-Type: application/x-rtpengine-ng`: one `COOKIE SP BODY` message,
//!   the reply in the response body (same content type);
//! - `POST /ng-plain` with `application/x-rtpengine-ng` or `application/json`: the body alone,
//!   no cookie; the reply comes back in the request's content type;
//! - a WebSocket upgrade asking for subprotocol `ng.rtpengine.com` (cookie framing; what
//!   Kamailio's `ws://` and `wss://` `rtpengine_sock` entries use) or
//!   `ng-plain.rtpengine.com` (no cookie), on any path as with rtpengine: each text or binary
//!   message is one request, each reply one binary message.
//!
//! Every message goes through the [`NgHandle`] to the one ng server: the same dispatch,
//! cookie cache and counters as UDP. ng errors (bad bencode, unknown command, …) are ng
//! replies with status 200, as over UDP; what is not ng at all gets an HTTP 4xx.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use tracing::{debug, info};

use super::error::ApiError;
use super::MAX_BODY;
use crate::ng::stream::MAX_MESSAGE;
use crate::ng::Pii;
use crate::ng::{Framing, NgHandle};

/// Content type of bencoded ng messages over HTTP (rtpengine's).
pub const CONTENT_TYPE_NG: &str = "application/x-rtpengine-ng";
/// WebSocket subprotocol of ng messages with a cookie (rtpengine's; Kamailio asks for it).
pub const PROTOCOL_NG: &str = "ng.rtpengine.com";
/// WebSocket subprotocol of ng messages without a cookie.
pub const PROTOCOL_NG_PLAIN: &str = "ng-plain.rtpengine.com";

/// Who may send ng over HTTP and WebSocket (`--http-ng`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpNgAccess {
    /// Anyone who reaches the listener, like the ng UDP port (and rtpengine's HTTP
    /// listener): Kamailio's WebSocket client cannot send a bearer token.
    #[default]
    Open,
    /// Only with the HTTP bearer token (`POST /ng`, and the WebSocket upgrade request).
    Token,
    /// No ng on the HTTP listener.
    Off,
}

impl HttpNgAccess {
    pub fn parse(s: &str) -> Option<HttpNgAccess> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" | "yes" | "on" => Some(HttpNgAccess::Open),
            "token" => Some(HttpNgAccess::Token),
            "off" | "no" => Some(HttpNgAccess::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpNgAccess::Open => "open",
            HttpNgAccess::Token => "token",
            HttpNgAccess::Off => "off",
        }
    }
}

/// ng on the HTTP listener: the server's handle and who may use it.
#[derive(Clone)]
pub struct HttpNg {
    pub handle: NgHandle,
    pub access: HttpNgAccess,
}

/// The peer of an HTTP connection, put into each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Whether the request is an ng request: `POST /ng`, `POST /ng-plain`, or a WebSocket
/// upgrade asking for one of the ng subprotocols (whatever its path).
pub fn is_ng_request(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    (*method == Method::POST && (path == "/ng" || path == "/ng-plain"))
        || ws_framing(headers).is_some()
}

/// The framing a WebSocket upgrade asks for through its subprotocols, `None` when it asks for
/// neither ng subprotocol. `ng.rtpengine.com` wins when both are offered.
fn ws_framing(headers: &HeaderMap) -> Option<Framing> {
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return None;
    }
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if offered.contains(&PROTOCOL_NG) {
        Some(Framing::Cookie)
    } else if offered.contains(&PROTOCOL_NG_PLAIN) {
        Some(Framing::Plain)
    } else {
        None
    }
}

fn peer_ip(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<Peer>().map(|p| p.0.ip())
}

/// Answer an ng request (see [`is_ng_request`]); the caller has checked access.
pub async fn handle(ng: &HttpNg, request: Request) -> Result<Response, ApiError> {
    if let Some(framing) = ws_framing(request.headers()) {
        return upgrade(ng, framing, request).await;
    }
    let framing = if request.uri().path() == "/ng" {
        Framing::Cookie
    } else {
        Framing::Plain
    };
    post(ng, framing, request).await
}

/// `POST /ng`, `POST /ng-plain`.
async fn post(ng: &HttpNg, framing: Framing, request: Request) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json = match (framing, content_type.as_str()) {
        (_, CONTENT_TYPE_NG) => false,
        (Framing::Plain, "application/json") => true,
        _ => {
            let accepted = match framing {
                Framing::Cookie => CONTENT_TYPE_NG.to_owned(),
                Framing::Plain => format!("{CONTENT_TYPE_NG} or application/json"),
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "ng over HTTP takes Content-Type {accepted}, not `{content_type}`"
            )));
        }
    };
    let from = peer_ip(&request);
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY as usize)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            length: MAX_BODY + 1,
            limit: MAX_BODY,
        })?;
    let Some(reply) = ng.handle.request(body.to_vec(), framing, from).await else {
        return Err(match framing {
            Framing::Cookie => ApiError::BadRequest(
                "an ng message is `COOKIE SP BODY`: no cookie before a space".into(),
            ),
            Framing::Plain => ApiError::Internal("the ng server has stopped".into()),
        });
    };
    let content_type = if json {
        "application/json"
    } else {
        CONTENT_TYPE_NG
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        reply,
    )
        .into_response())
}

/// The WebSocket upgrade; the connection then runs in [`session`].
async fn upgrade(ng: &HttpNg, framing: Framing, request: Request) -> Result<Response, ApiError> {
    let from = request.extensions().get::<Peer>().map(|p| p.0);
    let (mut parts, _body) = request.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("WebSocket upgrade: {}", e.body_text())))?;
    let handle = ng.handle.clone();
    let ws = ws
        .protocols([PROTOCOL_NG, PROTOCOL_NG_PLAIN])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    Ok(ws.on_upgrade(move |socket| session(socket, handle, framing, from)))
}

/// One WebSocket connection: each message is a request, answered in order.
async fn session(mut socket: WebSocket, ng: NgHandle, framing: Framing, from: Option<SocketAddr>) {
    let protocol = match framing {
        Framing::Cookie => PROTOCOL_NG,
        Framing::Plain => PROTOCOL_NG_PLAIN,
    };
    let peer = from.map_or_else(|| "-".to_owned(), |a| Pii(a).to_string());
    info!(peer, protocol, "ng WebSocket connection opened");
    let ip = from.map(|a| a.ip());
    while let Some(message) = socket.recv().await {
        let bytes = match message {
            Ok(Message::Text(text)) => text.as_bytes().to_vec(),
            Ok(Message::Binary(data)) => data.to_vec(),
            // Pings are answered by the library; pongs need nothing.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => break,
            Err(e) => {
                debug!(error = %e, "ng WebSocket receive failed");
                break;
            }
        };
        // No reply (a message without a cookie) is dropped and counted, as over UDP.
        if let Some(reply) = ng.request(bytes, framing, ip).await {
            if socket.send(Message::Binary(reply.into())).await.is_err() {
                break;
            }
        }
    }
    info!(peer, protocol, "ng WebSocket connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn subprotocols_choose_the_framing() {
        let ng = headers(&[
            ("upgrade", "WebSocket"),
            ("sec-websocket-protocol", "ng.rtpengine.com"),
        ]);
        assert_eq!(ws_framing(&ng), Some(Framing::Cookie));
        let both = headers(&[
            ("upgrade", "websocket"),
            (
                "sec-websocket-protocol",
                "ng-plain.rtpengine.com, ng.rtpengine.com",
            ),
        ]);
        assert_eq!(ws_framing(&both), Some(Framing::Cookie));
        let plain = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-protocol", "ng-plain.rtpengine.com"),
        ]);
        assert_eq!(ws_framing(&plain), Some(Framing::Plain));
        let other = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "janus-protocol"),
        ]);
        assert_eq!(ws_framing(&other), None);
        let no_upgrade = headers(&[("sec-websocket-protocol", "ng.rtpengine.com")]);
        assert_eq!(ws_framing(&no_upgrade), None);
        assert!(is_ng_request(&Method::GET, "/", &ng));
        assert!(is_ng_request(&Method::POST, "/ng-plain", &HeaderMap::new()));
        assert!(!is_ng_request(&Method::GET, "/ng", &HeaderMap::new()));
    }

    #[test]
    fn access_modes_parse() {
        assert_eq!(HttpNgAccess::parse("Open"), Some(HttpNgAccess::Open));
        assert_eq!(HttpNgAccess::parse("token"), Some(HttpNgAccess::Token));
        assert_eq!(HttpNgAccess::parse("off"), Some(HttpNgAccess::Off));
        assert_eq!(HttpNgAccess::parse("maybe"), None);
    }
}
