//! Bearer-token protection of writes (RFC 6750 `Authorization: Bearer <token>`).
//!
//! Reads stay open: they are what monitoring scrapes, and the listener is loopback unless an
//! operator chose otherwise. Every method that can change state (anything but GET, HEAD,
//! OPTIONS) needs the token when one is configured. When none is configured the daemon only
//! starts on a loopback listener (checked at startup), so writes are then local-only.

use std::fmt;

use axum::http::{header, HeaderMap, Method};

use super::error::ApiError;

/// The shared secret for writes. `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// `None` for an empty string: an empty token would protect nothing.
    pub fn new(token: impl Into<String>) -> Option<BearerToken> {
        let token = token.into();
        (!token.is_empty()).then_some(BearerToken(token))
    }

    /// Compare in time that depends only on the lengths, so response timing does not reveal
    /// how many leading bytes of a guess were right.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = u8::from(expected.len() != candidate.len());
        for (i, &e) in expected.iter().enumerate() {
            // Compare against something of the expected length even on a length mismatch.
            diff |= e ^ candidate.get(i).copied().unwrap_or(!e);
        }
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<hidden>)")
    }
}

/// Whether a request with this method may change state.
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Accept or reject one request.
pub fn check(
    token: Option<&BearerToken>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    if !is_write(method) {
        return Ok(());
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "this request changes state and needs an `Authorization: Bearer <token>` header",
        ));
    };
    let value = value.as_bytes();
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let presented = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii(),
        _ => {
            return Err(ApiError::Unauthorized(
                "the Authorization header must use the Bearer scheme",
            ))
        }
    };
    if token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid bearer token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn token_comparison() {
        let t = BearerToken::new("s3cret").unwrap();
        assert!(t.matches(b"s3cret"));
        assert!(!t.matches(b"s3cre"));
        assert!(!t.matches(b"s3crett"));
        assert!(!t.matches(b"S3cret"));
        assert!(!t.matches(b""));
        assert!(BearerToken::new("").is_none());
        assert_eq!(format!("{t:?}"), "BearerToken(<hidden>)");
    }

    #[test]
    fn writes_need_the_token_reads_do_not() {
        let t = BearerToken::new("s3cret").unwrap();
        let t = Some(&t);
        assert_eq!(check(t, &Method::GET, &headers(None)), Ok(()));
        assert_eq!(check(t, &Method::HEAD, &headers(None)), Ok(()));
        assert!(matches!(
            check(t, &Method::DELETE, &headers(None)),
            Err(ApiError::Unauthorized(m)) if m.contains("Authorization: Bearer")
        ));
        assert_eq!(
            check(t, &Method::DELETE, &headers(Some("Bearer wrong"))),
            Err(ApiError::Unauthorized("invalid bearer token"))
        );
        assert!(check(t, &Method::POST, &headers(Some("Basic czNjcmV0"))).is_err());
        assert!(check(t, &Method::PUT, &headers(Some("Bearer"))).is_err());
        assert_eq!(
            check(t, &Method::DELETE, &headers(Some("Bearer s3cret"))),
            Ok(())
        );
        assert_eq!(
            check(t, &Method::PATCH, &headers(Some("bearer  s3cret "))),
            Ok(())
        );
        // No token configured: the loopback-only startup rule is the protection.
        assert_eq!(check(None, &Method::DELETE, &headers(None)), Ok(()));
    }
}
