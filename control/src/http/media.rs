//! `/media`: the media library (music on hold, announcements) over HTTP; see
//! [`crate::media`]. Uploads are a raw body with `?name=` or `multipart/form-data` with a
//! `file` part (and optionally a `name` part). Decoding and disk IO run on the blocking
//! pool, so a large upload never stalls the control runtime that also answers ng.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ngmedia_codecs::audio_file::AudioFileError;
use serde_json::json;

use super::error::ApiError;
use crate::media::{valid_id, MediaError, MediaLibrary};

/// Room for multipart framing and the other form fields on top of `--media-max-bytes`.
pub(super) const MULTIPART_OVERHEAD: u64 = 64 * 1024;

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> ApiError {
        let text = e.to_string();
        match e {
            MediaError::TooLarge { size, limit } => ApiError::PayloadTooLarge {
                length: size,
                limit,
            },
            MediaError::BadName(_) => ApiError::BadRequest(text),
            MediaError::NotFound(_) => ApiError::NotFound(text),
            MediaError::Forbidden(_) => ApiError::BadRequest(text),
            MediaError::Io(_) => ApiError::Internal(text),
            MediaError::Audio(a) => match a {
                AudioFileError::Empty => ApiError::BadRequest(text),
                AudioFileError::UnsupportedFormat | AudioFileError::UnsupportedCodec => {
                    ApiError::UnsupportedMediaType(text)
                }
                AudioFileError::Corrupt(_)
                | AudioFileError::NoAudio
                | AudioFileError::TooLong { .. }
                | AudioFileError::Resample(_) => ApiError::Unprocessable(text),
            },
        }
    }
}

fn library(lib: Option<&Arc<MediaLibrary>>) -> Result<Arc<MediaLibrary>, ApiError> {
    lib.cloned()
        .ok_or_else(|| ApiError::NotFound("the media library is not enabled".into()))
}

fn checked_id(id: String) -> Result<String, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::BadRequest(format!(
            "malformed media id {id:?} (16 hex digits expected)"
        )));
    }
    Ok(id)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// The `name` query parameter, percent-decoded.
fn query_name(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "name").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match (bytes[i], pair) {
            (b'+', _) => out.push(b' '),
            (b'%', Some((hi, lo))) => {
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /media`.
pub(super) async fn upload(
    lib: Option<&Arc<MediaLibrary>>,
    request: Request,
) -> Result<Response, ApiError> {
    let lib = library(lib)?;
    let mut name = query_name(&request);
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let too_large = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        if text.contains("length limit") || text.contains("too large") {
            ApiError::PayloadTooLarge {
                length: lib.max_bytes() + 1,
                limit: lib.max_bytes(),
            }
        } else {
            ApiError::BadRequest(text)
        }
    };
    let bytes: Bytes = if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(|e| too_large(&e))? {
            match field.name() {
                Some("name") => {
                    let v = field.text().await.map_err(|e| too_large(&e))?;
                    name.get_or_insert(v);
                }
                Some("file") | None => {
                    let filename = field.file_name().map(str::to_owned);
                    let data = field.bytes().await.map_err(|e| too_large(&e))?;
                    if let Some(f) = filename {
                        name.get_or_insert(f);
                    }
                    file = Some(data);
                }
                Some(_) => {}
            }
        }
        file.ok_or_else(|| ApiError::BadRequest("multipart upload without a `file` part".into()))?
    } else {
        Bytes::from_request(request, &())
            .await
            .map_err(|e| too_large(&e.body_text()))?
    };
    let name = name.ok_or_else(|| {
        ApiError::BadRequest("a name is required (`?name=` or a multipart `name`/filename)".into())
    })?;
    let limit = lib.max_bytes();
    if bytes.len() as u64 > limit {
        return Err(ApiError::PayloadTooLarge {
            length: bytes.len() as u64,
            limit,
        });
    }
    let (info, new) = blocking(move || lib.add(&name, &bytes)).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(&info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/media/{}", info.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `GET /media`.
pub(super) async fn list(lib: Option<&Arc<MediaLibrary>>) -> Result<Response, ApiError> {
    let lib = library(lib)?;
    let items = lib.list();
    Ok(Json(json!({"count": items.len(), "media": items})).into_response())
}

/// `GET /media/{id}`.
pub(super) async fn get(lib: Option<&Arc<MediaLibrary>>, id: String) -> Result<Response, ApiError> {
    let lib = library(lib)?;
    let id = checked_id(id)?;
    let info = lib.get(&id).ok_or(MediaError::NotFound(id))?;
    Ok(Json(info).into_response())
}

/// `GET /media/{id}/audio`: the file as uploaded.
pub(super) async fn audio(
    lib: Option<&Arc<MediaLibrary>>,
    id: String,
) -> Result<Response, ApiError> {
    let lib = library(lib)?;
    let id = checked_id(id)?;
    let (bytes, mime) = blocking(move || lib.audio(&id)).await?;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

/// `DELETE /media/{id}`.
pub(super) async fn delete(
    lib: Option<&Arc<MediaLibrary>>,
    id: String,
) -> Result<Response, ApiError> {
    let lib = library(lib)?;
    let id = checked_id(id)?;
    let info = blocking(move || lib.delete(&id)).await?;
    Ok(Json(json!({"deleted": info.id})).into_response())
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn names_in_queries_are_percent_decoded() {
        assert_eq!(percent_decode("hold+tune%201.wav"), "hold tune 1.wav");
        assert_eq!(percent_decode("%2e%2e%2Fx"), "../x");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }
}
