//! Every HTTP error is a JSON body `{"error": CODE, "detail": TEXT}` with the matching status.
//!
//! `error` is a stable snake_case code clients may match on; `detail` is for humans and may
//! change wording between releases.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why an HTTP request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Unknown route, or a resource (call, media) that does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Malformed query string, path parameter or JSON body.
    #[error("{0}")]
    BadRequest(String),
    /// A write without a valid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("request body of {length} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { length: u64, limit: u64 },
    /// An upload in a format we do not accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A well-formed request whose content cannot be used (a corrupt or too long file).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub error: &'a str,
    pub detail: &'a str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The `error` code for a status: its reason phrase in snake_case (`not_found`,
/// `payload_too_large`), so responses built by axum itself read like ours.
pub(crate) fn code_for(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
        .replace('\'', "")
}

/// A JSON error response with any status.
pub(crate) fn json_error(status: StatusCode, detail: &str) -> Response {
    let code = code_for(status);
    (
        status,
        Json(ErrorBody {
            error: &code,
            detail,
        }),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), &self.to_string());
        if let ApiError::Unauthorized(_) = self {
            // RFC 6750 §3: tell the client which scheme to use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ngmedia\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_reason_phrase() {
        assert_eq!(code_for(StatusCode::NOT_FOUND), "not_found");
        assert_eq!(
            code_for(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "payload_too_large");
        assert_eq!(
            code_for(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type"
        );
        assert_eq!(
            code_for(StatusCode::INTERNAL_SERVER_ERROR),
            "internal_server_error"
        );
        assert_eq!(
            ApiError::Unauthorized("x").status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
