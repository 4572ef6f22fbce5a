//! `/recordings`: finished call recordings in the recording folder (rtpengine has no HTTP
//! equivalent; its recording daemon leaves files in a spool directory).
//!
//! Files are read with blocking calls on the blocking pool, so a slow disk never stalls the
//! control runtime that also answers ng.

use std::io::{Read, Seek, SeekFrom};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ngmedia_recordings::store::valid_id;
use ngmedia_recordings::{ListFilter, RecordingStore};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;

/// Longest byte range served in one response: a client downloads a longer recording in
/// several ranges (or gets the whole file when it asks for no range and it is small).
pub(super) const MAX_CHUNK: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    call_id: Option<String>,
    /// Unix milliseconds: recordings that started at or after.
    from: Option<u64>,
    /// Unix milliseconds: recordings that started before.
    to: Option<u64>,
    limit: Option<usize>,
}

fn store_or_404(store: Option<&RecordingStore>) -> Result<RecordingStore, ApiError> {
    store
        .cloned()
        .ok_or_else(|| ApiError::NotFound("recording is not enabled".into()))
}

fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !valid_id(&id) {
        return Err(ApiError::BadRequest(format!(
            "malformed recording id {id:?}"
        )));
    }
    Ok(id)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn no_recording(id: &str) -> ApiError {
    ApiError::NotFound(format!("no recording with id {id}"))
}

/// `GET /recordings`: the recordings in progress (`state`: `recording`, `paused`,
/// `stopping`; newest last) followed by the finished ones from the folder (`state`:
/// `complete` or `failed`, with their full metadata).
pub(super) async fn list(
    store: Option<&RecordingStore>,
    live: Vec<serde_json::Value>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let store = store_or_404(store)?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(super::DEFAULT_LIST).min(super::MAX_LIST);
    let live: Vec<serde_json::Value> = live
        .into_iter()
        .filter(|r| {
            let start = r["start_ms"].as_u64().unwrap_or(0);
            p.call_id.as_deref().is_none_or(|c| r["call_id"] == c)
                && p.from.is_none_or(|f| start >= f)
                && p.to.is_none_or(|t| start < t)
        })
        .take(limit)
        .collect();
    let filter = ListFilter {
        call_id: p.call_id,
        from_ms: p.from,
        to_ms: p.to,
        limit: Some(limit - live.len()),
    };
    let done = blocking(move || store.list(&filter).map_err(internal)).await?;
    // A recording finalized between the two reads is listed once, finished.
    let mut list: Vec<serde_json::Value> = live
        .into_iter()
        .filter(|r| !done.iter().any(|d| d["id"] == r["id"]))
        .collect();
    list.extend(done);
    Ok(Json(json!({"count": list.len(), "recordings": list})).into_response())
}

pub(super) async fn get(
    store: Option<&RecordingStore>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let store = store_or_404(store)?;
    let id = id_of(path)?;
    let meta = blocking(move || match store.get(&id) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(no_recording(&id)),
        Err(e) => Err(internal(e)),
    })
    .await?;
    Ok(Json(meta).into_response())
}

pub(super) async fn delete(
    store: Option<&RecordingStore>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let store = store_or_404(store)?;
    let id = id_of(path)?;
    let id = blocking(move || match store.delete(&id) {
        Ok(true) => Ok(id),
        Ok(false) => Err(no_recording(&id)),
        Err(e) => Err(internal(e)),
    })
    .await?;
    Ok(Json(json!({ "deleted": id })).into_response())
}

/// A byte range asked for with `Range: bytes=…` (one range; RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeAsk {
    /// No (usable) Range header: the whole file.
    Whole,
    /// Inclusive first and last byte.
    Bytes(u64, u64),
    /// Cannot be satisfied for a file of this size: 416.
    Unsatisfiable,
}

/// Interpret a `Range` header value for a file of `size` bytes. Several ranges, other units
/// and garbage are answered with the whole file, which RFC 9110 allows.
pub(super) fn parse_range(value: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(first), Ok(last)) if first <= last => (first, last.min(size.saturating_sub(1))),
        (Ok(first), Err(_)) if b.is_empty() => (first, size.saturating_sub(1)),
        (Err(_), Ok(suffix)) if a.is_empty() => {
            if suffix == 0 {
                return RangeAsk::Unsatisfiable;
            }
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        _ => return RangeAsk::Whole,
    };
    if size == 0 || range.0 >= size {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Bytes(range.0, range.1)
}

pub(super) async fn audio(
    store: Option<&RecordingStore>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = store_or_404(store)?;
    let id = id_of(path)?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    blocking(move || {
        let file_path = match store.audio(&id) {
            Ok(Some(p)) => p,
            Ok(None) => return Err(ApiError::NotFound(format!("no audio for recording {id}"))),
            Err(e) => return Err(internal(e)),
        };
        let mut file = std::fs::File::open(&file_path).map_err(internal)?;
        let size = file.metadata().map_err(internal)?.len();
        let ask = parse_range(range.as_deref(), size);
        let (status, first, last) = match ask {
            RangeAsk::Unsatisfiable => {
                let mut r = ApiError::BadRequest(format!("range not satisfiable for {size} bytes"))
                    .into_response();
                *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).map_err(internal)?,
                );
                return Ok(r);
            }
            RangeAsk::Whole => (StatusCode::OK, 0, size.saturating_sub(1)),
            RangeAsk::Bytes(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        };
        let len = if size == 0 { 0 } else { last - first + 1 };
        if len > MAX_CHUNK {
            return Err(ApiError::BadRequest(format!(
                "{len} bytes asked for; download in ranges of at most {MAX_CHUNK} bytes"
            )));
        }
        let mut body = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(first)).map_err(internal)?;
        file.read_exact(&mut body).map_err(internal)?;
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")).map_err(internal)?,
            );
        }
        Ok(r)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), RangeAsk::Bytes(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), RangeAsk::Bytes(90, 99));
        assert_eq!(
            parse_range(Some("bytes=90-500"), 100),
            RangeAsk::Bytes(90, 99)
        );
        assert_eq!(parse_range(Some("bytes=-10"), 100), RangeAsk::Bytes(90, 99));
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            RangeAsk::Bytes(0, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeAsk::Unsatisfiable);
    }
}
