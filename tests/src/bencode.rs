//! Bencode for the tests: enough to build ng requests and read replies.

use std::fmt;

/// A bencoded value. Dictionaries keep their key order (rtpengine does not sort).
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

/// `dict! { "command" => "ping", "call-id" => id }` builds a [`Value::Dict`].
#[macro_export]
macro_rules! dict {
    ($($k:expr => $v:expr),* $(,)?) => {
        $crate::bencode::Value::Dict(vec![
            $(($k.as_bytes().to_vec(), $crate::bencode::Value::from($v))),*
        ])
    };
}

impl Value {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|v| v.encode_into(out));
                out.push(b'e');
            }
            Value::Dict(pairs) => {
                out.push(b'd');
                for (k, v) in pairs {
                    Value::Bytes(k.clone()).encode_into(out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decode exactly one value spanning all of `input`.
    pub fn decode(input: &[u8]) -> Result<Value, String> {
        let mut pos = 0;
        let v = decode_at(input, &mut pos, 0)?;
        if pos != input.len() {
            return Err(format!("{} trailing bytes", input.len() - pos));
        }
        Ok(v)
    }

    /// Dictionary lookup; `None` for missing keys and non-dicts.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follow a path of dictionary keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().try_fold(self, |v, k| v.get(k))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Integers, or numeric strings (replies may carry either).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bytes(_) => self.as_str()?.parse().ok(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Vec<u8>, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The string at `key`, for assertions.
    pub fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// Nesting bound: replies are a few levels deep; anything deeper is a daemon bug.
const MAX_DEPTH: usize = 32;

fn decode_at(input: &[u8], pos: &mut usize, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("nesting too deep".into());
    }
    let at = *pos;
    match input.get(at) {
        None => Err("unexpected end".into()),
        Some(b'i') => {
            let end = find(input, at + 1, b'e')?;
            let text = std::str::from_utf8(&input[at + 1..end]).map_err(|e| e.to_string())?;
            *pos = end + 1;
            text.parse()
                .map(Value::Int)
                .map_err(|_| format!("bad integer `{text}` at {at}"))
        }
        Some(b'l') => {
            *pos += 1;
            let mut items = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                items.push(decode_at(input, pos, depth + 1)?);
            }
            *pos += 1;
            Ok(Value::List(items))
        }
        Some(b'd') => {
            *pos += 1;
            let mut pairs = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                let Value::Bytes(key) = decode_at(input, pos, depth + 1)? else {
                    return Err(format!("non-string dictionary key at {at}"));
                };
                pairs.push((key, decode_at(input, pos, depth + 1)?));
            }
            *pos += 1;
            Ok(Value::Dict(pairs))
        }
        Some(b'0'..=b'9') => {
            let colon = find(input, at, b':')?;
            let len: usize = std::str::from_utf8(&input[at..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad string length at {at}"))?;
            let start = colon + 1;
            let end = start.checked_add(len).filter(|&e| e <= input.len());
            let end = end.ok_or_else(|| format!("string at {at} runs past the end"))?;
            *pos = end;
            Ok(Value::Bytes(input[start..end].to_vec()))
        }
        Some(c) => Err(format!("unexpected byte {:?} at {at}", *c as char)),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, String> {
    input[from.min(input.len())..]
        .iter()
        .position(|&b| b == byte)
        .map(|p| p + from)
        .ok_or_else(|| format!("missing {:?}", byte as char))
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Bytes(s.into_bytes())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::from(s.as_str())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl From<Vec<&str>> for Value {
    fn from(l: Vec<&str>) -> Value {
        Value::List(l.into_iter().map(Value::from).collect())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_bytes_and_order() {
        let v = dict! { "sdp" => "v=0\r\n", "command" => "offer", "n" => -3i64, "flags" => vec!["a", "b"] };
        let bytes = v.encode();
        assert_eq!(
            bytes,
            b"d3:sdp5:v=0\r\n7:command5:offer1:ni-3e5:flagsl1:a1:bee".to_vec()
        );
        assert_eq!(Value::decode(&bytes).unwrap(), v);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"d3:abc"[..],
            b"5:ab",
            b"i1x",
            b"di1e1:ae",
            b"x",
            b"",
            b"1:ab",
            b"99999999999999999999:a",
        ] {
            assert!(
                Value::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lookups() {
        let v = Value::decode(b"d6:resultd1:ai5e1:b2:42ee").unwrap();
        assert_eq!(v.path(&["result", "a"]).and_then(Value::as_int), Some(5));
        assert_eq!(v.path(&["result", "b"]).and_then(Value::as_int), Some(42));
        assert!(v.path(&["result", "c"]).is_none());
    }
}
