//! Framing (rtpengine `control_ng.c`): `COOKIE SP BODY`, the body's encoding, and JSON
//! bodies converted into the bencode model.

use super::NgError;
use crate::bencode::{self, Value, MAX_DEPTH, MAX_ELEMENTS};

/// How a request body is encoded; the reply uses the same encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Bencode,
    Json,
}

/// Split `COOKIE SP BODY`. `None` (drop without a reply, like rtpengine) when there is no
/// space or the datagram starts with one: without a cookie a reply could not be matched.
///
/// Trailing CR/LF after the body are ignored so that `echo 'c1 d7:command4:pinge' | nc -u`
/// works; neither a bencode dictionary nor a JSON object can end in one.
pub(crate) fn split_datagram(datagram: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = datagram.iter().position(|&b| b == b' ')?;
    if space == 0 {
        return None;
    }
    let mut body = &datagram[space + 1..];
    while let [rest @ .., b'\r' | b'\n'] = body {
        body = rest;
    }
    Some((&datagram[..space], body))
}

/// The encoding a body announces with its first byte.
pub(crate) fn detect_encoding(body: &[u8]) -> Result<Encoding, NgError> {
    match body.first() {
        Some(b'd') => Ok(Encoding::Bencode),
        Some(b'{') => Ok(Encoding::Json),
        _ => Err(NgError::InvalidFormat),
    }
}

/// Decode a bencode body that must be a dictionary.
pub(crate) fn decode_bencode(body: &[u8]) -> Result<Value<'_>, NgError> {
    match bencode::decode(body) {
        Ok(v @ Value::Dict(_)) => Ok(v),
        _ => Err(NgError::BadBencode),
    }
}

/// Parse a JSON body; convert it with [`json_to_value`].
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, NgError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(NgError::BadJson),
    }
}

/// Convert a JSON object into the bencode model, under the same limits as bencode input.
/// Numbers must be integers; `true`/`false` become 1/0; `null` entries are dropped.
pub(crate) fn json_to_value(json: &serde_json::Value) -> Result<Value<'_>, NgError> {
    let mut elements = 0;
    json_convert(json, 0, &mut elements)?.ok_or(NgError::BadJson)
}

fn json_convert<'a>(
    json: &'a serde_json::Value,
    depth: usize,
    elements: &mut usize,
) -> Result<Option<Value<'a>>, NgError> {
    use serde_json::Value as J;
    *elements += 1;
    if *elements > MAX_ELEMENTS || depth > MAX_DEPTH {
        return Err(NgError::BadJson);
    }
    Ok(Some(match json {
        J::Null => return Ok(None),
        J::Bool(b) => Value::Int(i64::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Value::Int(f as i64),
                _ => return Err(NgError::BadJson),
            },
        },
        J::String(s) => Value::Bytes(s.as_bytes()),
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len().min(64));
            for item in items {
                if let Some(v) = json_convert(item, depth + 1, elements)? {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        J::Object(map) => {
            let mut out = Vec::with_capacity(map.len().min(64));
            for (k, item) in map {
                if let Some(v) = json_convert(item, depth + 1, elements)? {
                    out.push((k.as_bytes(), v));
                }
            }
            Value::Dict(out)
        }
    }))
}
