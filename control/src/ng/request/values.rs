//! Readers for ng values: the normal form of keys and flags, and lenient conversions of
//! the values Kamailio and other clients send.

use std::net::IpAddr;

use ngmedia_engine::core::request::{MediaSource, MohMode, MohOptions};

use crate::bencode::Value;

/// Normal form of a key or flag: ASCII lowercase, `-` and `_` as space, same length.
pub(crate) fn normalize(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&b| match b {
            b'-' | b'_' => b' ',
            _ => b.to_ascii_lowercase(),
        })
        .collect()
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A string value; integers are accepted and written in decimal.
pub(super) fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(lossy(b)),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// An integer given as an integer or as a numeric string (Kamailio sends `duration: "200"`).
pub(crate) fn int_lenient(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// `yes|no|on|off|true|false|1|0`.
pub(super) fn boolean(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        Value::Bytes(b) => match normalize(b).as_slice() {
            b"yes" | b"on" | b"true" | b"1" => Some(true),
            b"no" | b"off" | b"false" | b"0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Items of a value that may be a list of strings or a single string.
pub(super) fn strings<'a>(v: &Value<'a>) -> Vec<&'a [u8]> {
    match v {
        Value::Bytes(b) => vec![b],
        Value::List(items) => items.iter().filter_map(Value::as_bytes).collect(),
        _ => Vec::new(),
    }
}

/// The `moh` dictionary of an offer: `file`/`blob`/`db-id`, `mode`, `connection`.
pub(super) fn moh_options(value: &Value<'_>) -> Option<MohOptions> {
    let mut moh = MohOptions::default();
    for (k, v) in value.as_dict()? {
        match normalize(k).as_slice() {
            b"file" => moh.source = Some(MediaSource::File(lossy(v.as_bytes()?))),
            b"blob" => moh.source = Some(MediaSource::Blob(v.as_bytes()?.to_vec())),
            b"db id" => moh.source = Some(MediaSource::DbId(text(v)?)),
            b"mode" => {
                moh.mode = match normalize(v.as_bytes()?).as_slice() {
                    b"sendonly" => MohMode::SendOnly,
                    b"sendrecv" => MohMode::SendRecv,
                    b"reflect" => MohMode::Reflect,
                    _ => return None,
                }
            }
            b"connection" => moh.connection_zero = normalize(v.as_bytes()?) == b"zero",
            _ => {}
        }
    }
    Some(moh)
}

/// `received-from: [IP4|IP6, address]`; the family is informative, the address decides.
pub(super) fn received_from(v: &Value<'_>) -> Option<IpAddr> {
    let items = v.as_list()?;
    let addr = match items {
        [_, addr] => addr,
        [addr] => addr,
        _ => return None,
    };
    addr.as_str()?.trim().parse().ok()
}
