//! The `rtpp-flags` key: Kamailio's whole flag string parsed by the daemon (rtpengine master,
//! `control_ng_flags_parser.c`), into exactly the keys, flags, lists and dictionaries the
//! bencoded form carries.
//!
//! Grammar, as rtpengine reads it: tokens are separated by spaces. A bare token is an entry
//! of the `flags` list (`trust-address`, `replace-origin`, `codec-strip-PCMU`,
//! `sdp-attr-add-audio-foo`). `key=value` is a dictionary key; a value that starts with `[`
//! is a list (`direction=[foo bar]`) or, when its first element is itself `key=value`, a
//! dictionary (`codec=[accept=[PCMU]]`, `sdp-attr=[audio=[add=[foo bar]]]`); closing
//! brackets may stick to the last token (`[test]]]`). `key=` with nothing after it is read as
//! the bare flag `key`. A few tokens have meanings of their own:
//! - transport words, combinable: `RTP`, `AVP`, `SRTP`, `AVPF`, `DTLS` and the full
//!   `RTP/AVP` … `UDP/TLS/RTP/SAVPF` settle `transport-protocol` once the string is read;
//! - `internal`, `external` and `direction=NAME` fill the `direction` pair in turn;
//! - `from-tag=X` also sets `directional` (the tag selects one party);
//! - `transcode=X`/`transcode-X`, `codec-transcode=X`, `codec-strip=X`, `codec-offer=X`,
//!   `codec-mask=X`, `codec-set=X`, `codec-accept=X`, `codec-except=X` add to the `codec`
//!   lists.
//!
//! Nothing here fails a request: what cannot be read is reported like an unknown key.

use crate::bencode::Value;

use super::values::normalize;
use super::Fields;

/// Space-separated tokens of an rtpp-flags string, with one token of push-back so a token
/// can be split (`[foo` → `[` + `foo`, `bar]]` → `bar` + `]]`). Every token is a slice of
/// the input, so parsed values borrow from the request like bencoded ones do.
struct Tokens<'a> {
    rest: &'a [u8],
    pending: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a [u8]) -> Tokens<'a> {
        Tokens {
            rest: s,
            pending: None,
        }
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(t) = self.pending.take() {
            return Some(t);
        }
        let start = self.rest.iter().position(|&b| !is_space(b))?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }

    fn push_back(&mut self, t: &'a [u8]) {
        if !t.is_empty() {
            debug_assert!(self.pending.is_none());
            self.pending = Some(t);
        }
    }

    /// The next token without consuming it.
    fn peek(&mut self) -> Option<&'a [u8]> {
        let t = self.next()?;
        self.pending = Some(t);
        Some(t)
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// How deep lists and dictionaries may nest; deeper input is flattened into strings, so a
/// hostile string cannot exhaust the stack.
const MAX_DEPTH: usize = 8;

/// `token` split into its text and the closing brackets stuck to its end (`bar]]`).
fn split_closing(token: &[u8]) -> (&[u8], &[u8]) {
    let n = token.iter().rev().take_while(|&&b| b == b']').count();
    token.split_at(token.len() - n)
}

/// A value: a string, or the list/dictionary that `[` opens (reading further tokens).
fn parse_value<'a>(v: &'a [u8], tokens: &mut Tokens<'a>, depth: usize) -> Value<'a> {
    let Some(inner) = v.strip_prefix(b"[") else {
        return Value::Bytes(v);
    };
    if depth >= MAX_DEPTH {
        return Value::Bytes(v);
    }
    tokens.push_back(inner);
    // rtpengine's rule: a dictionary when the first element is `key=value` with a value.
    let is_dict = tokens.peek().is_some_and(|first| {
        !first.starts_with(b"[")
            && first
                .iter()
                .position(|&b| b == b'=')
                .is_some_and(|eq| eq > 0 && eq + 1 < first.len())
    });
    if is_dict {
        Value::Dict(parse_dict(tokens, depth + 1))
    } else {
        Value::List(parse_list(tokens, depth + 1))
    }
}

/// List elements up to the matching `]`; an unterminated list ends with the string.
fn parse_list<'a>(tokens: &mut Tokens<'a>, depth: usize) -> Vec<Value<'a>> {
    let mut items = Vec::new();
    while let Some(t) = tokens.next() {
        if let Some(after) = t.strip_prefix(b"]") {
            // Closes this list; further brackets close the enclosing ones.
            tokens.push_back(after);
            break;
        }
        if t.starts_with(b"[") {
            items.push(parse_value(t, tokens, depth));
            continue;
        }
        let (text, closing) = split_closing(t);
        if !text.is_empty() {
            items.push(Value::Bytes(text));
        }
        if !closing.is_empty() {
            tokens.push_back(&closing[1..]);
            break;
        }
    }
    items
}

/// Dictionary entries up to the matching `]`. An entry without `=` ends the dictionary
/// (rtpengine aborts it there too); the token is dropped.
fn parse_dict<'a>(tokens: &mut Tokens<'a>, depth: usize) -> Vec<(&'a [u8], Value<'a>)> {
    let mut entries = Vec::new();
    while let Some(t) = tokens.next() {
        if let Some(after) = t.strip_prefix(b"]") {
            tokens.push_back(after);
            break;
        }
        let Some(eq) = t.iter().position(|&b| b == b'=') else {
            break;
        };
        let (key, v) = (&t[..eq], &t[eq + 1..]);
        if v.starts_with(b"[") {
            entries.push((key, parse_value(v, tokens, depth)));
            continue;
        }
        let (text, closing) = split_closing(v);
        entries.push((key, Value::Bytes(text)));
        if !closing.is_empty() {
            tokens.push_back(&closing[1..]);
            break;
        }
    }
    entries
}

/// Transport words seen so far, as rtpengine accumulates them: bit 0 SRTP, bit 1 AVPF,
/// bit 2 DTLS, bit 8 "something was said".
#[derive(Default)]
struct Transport(u16);

impl Transport {
    /// True when `token` (exact spelling, as rtpengine compares it) was a transport word.
    fn word(&mut self, token: &[u8]) -> bool {
        let t = &mut self.0;
        match token {
            b"RTP" => *t = (*t | 0x100) & !0x001,
            b"AVP" => *t = (*t | 0x100) & !0x002,
            b"SRTP" => *t |= 0x101,
            b"AVPF" => *t |= 0x102,
            b"DTLS" => *t |= 0x104,
            b"RTP/AVP" => *t = 0x100,
            b"RTP/SAVP" => *t = 0x101,
            b"RTP/AVPF" => *t = 0x102,
            b"RTP/SAVPF" => *t = 0x103,
            b"UDP/TLS/RTP/SAVP" => *t = 0x104,
            b"UDP/TLS/RTP/SAVPF" => *t = 0x106,
            _ => return false,
        }
        true
    }

    /// The profile the words add up to; combinations rtpengine has no name for give none.
    fn protocol(&self) -> Option<&'static str> {
        if self.0 == 0 {
            return None;
        }
        match self.0 & 0x007 {
            0 => Some("RTP/AVP"),
            1 => Some("RTP/SAVP"),
            2 => Some("RTP/AVPF"),
            3 => Some("RTP/SAVPF"),
            4 => Some("UDP/TLS/RTP/SAVP"),
            6 => Some("UDP/TLS/RTP/SAVPF"),
            _ => None,
        }
    }
}

/// The codec list a `codec-…`/`transcode` key or flag names, with its argument:
/// `transcode-PCMA`, `transcode=PCMA`, `codec-strip=PCMU`. The bare-flag forms of the other
/// lists (`codec-ignore-X`, `codec-consume-X`) are ordinary flags.
fn codec_target<'a>(key: &'a [u8], value: Option<&'a [u8]>) -> Option<(&'static [u8], &'a [u8])> {
    const LISTS: &[(&[u8], &[u8])] = &[
        (b"transcode", b"transcode"),
        (b"codec-transcode", b"transcode"),
        (b"codec-strip", b"strip"),
        (b"codec-offer", b"offer"),
        (b"codec-mask", b"mask"),
        (b"codec-set", b"set"),
        (b"codec-accept", b"accept"),
        (b"codec-except", b"except"),
    ];
    for (prefix, list) in LISTS {
        if key == *prefix {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                return Some((list, v));
            }
            continue;
        }
        if value.is_none() {
            if let Some(arg) = key.strip_prefix(*prefix).and_then(|r| r.strip_prefix(b"-")) {
                if !arg.is_empty() {
                    return Some((list, arg));
                }
            }
        }
    }
    None
}

impl Fields {
    /// Apply an `rtpp-flags` string, in place, as if its keys and flags had been sent
    /// bencoded at this point of the dictionary.
    pub(super) fn rtpp_flags(&mut self, s: &[u8]) {
        let mut tokens = Tokens::new(s);
        let mut transport = Transport::default();
        while let Some(token) = tokens.next() {
            let (key, value) = match token.iter().position(|&b| b == b'=') {
                Some(eq) => (&token[..eq], Some(&token[eq + 1..])),
                None => (token, None),
            };
            // `key=` reads as the flag `key`.
            let value = value.filter(|v| !v.is_empty());

            if let Some((list, arg)) = codec_target(key, value) {
                let item = parse_value(arg, &mut tokens, 0);
                let items: Vec<&[u8]> = match &item {
                    Value::Bytes(b) => vec![b],
                    Value::List(l) => l.iter().filter_map(Value::as_bytes).collect(),
                    _ => Vec::new(),
                };
                self.codec_list(list, &items);
                continue;
            }
            match value {
                None if transport.word(key) => {}
                None if matches!(normalize(key).as_slice(), b"internal" | b"external") => {
                    self.oa.direction.push(super::values::lossy(key));
                }
                None => self.flag(key),
                Some(v) => {
                    let norm = normalize(key);
                    if norm == b"from tag" {
                        // Selecting a party by tag in a flag string is directional.
                        self.flag(b"directional");
                    }
                    if norm == b"internal" || norm == b"external" {
                        self.oa.direction.push(super::values::lossy(key));
                        continue;
                    }
                    let value = parse_value(v, &mut tokens, 0);
                    self.key(key, &value);
                }
            }
        }
        if let Some(p) = transport.protocol() {
            self.key(b"transport-protocol", &Value::Bytes(p.as_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &str) -> Vec<(String, String)> {
        // (key, value rendered) for every top-level `key=value` token.
        let mut tokens = Tokens::new(s.as_bytes());
        let mut out = Vec::new();
        while let Some(t) = tokens.next() {
            if let Some(eq) = t.iter().position(|&b| b == b'=') {
                let v = parse_value(&t[eq + 1..], &mut tokens, 0);
                out.push((String::from_utf8_lossy(&t[..eq]).into_owned(), render(&v)));
            } else {
                out.push((String::from_utf8_lossy(t).into_owned(), String::new()));
            }
        }
        out
    }

    fn render(v: &Value<'_>) -> String {
        match v {
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(i) => i.to_string(),
            Value::List(l) => format!("[{}]", l.iter().map(render).collect::<Vec<_>>().join(",")),
            Value::Dict(d) => format!(
                "{{{}}}",
                d.iter()
                    .map(|(k, v)| format!("{}:{}", String::from_utf8_lossy(k), render(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn lists_and_dictionaries() {
        assert_eq!(
            values("direction=[foo bar]"),
            vec![kv("direction", "[foo,bar]")]
        );
        assert_eq!(
            values("codec=[accept=[PCMU]] replace-origin"),
            vec![kv("codec", "{accept:[PCMU]}"), kv("replace-origin", "")]
        );
        assert_eq!(
            values("SDP-attr=[audio=[remove=[test] add=[foo bar]] global=[remove=[quux]]] rtcp-mux=[offer]"),
            vec![
                kv("SDP-attr", "{audio:{remove:[test],add:[foo,bar]},global:{remove:[quux]}}"),
                kv("rtcp-mux", "[offer]"),
            ]
        );
        assert_eq!(
            values("x=[[a b] [c]] y"),
            vec![kv("x", "[[a,b],[c]]"), kv("y", "")]
        );
        assert_eq!(
            values("x=[ a  b ]  y=1"),
            vec![kv("x", "[a,b]"), kv("y", "1")]
        );
        assert_eq!(
            values("frequencies=[123]"),
            vec![kv("frequencies", "[123]")]
        );
        // Unterminated: the list ends with the string.
        assert_eq!(values("x=[a b"), vec![kv("x", "[a,b]")]);
        assert_eq!(values("x=[]"), vec![kv("x", "[]")]);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("x={}a{}", "[".repeat(10_000), "]".repeat(10_000));
        // Parses without recursing 10 000 deep.
        let v = values(&deep);
        assert_eq!(v[0].0, "x");
    }

    #[test]
    fn transports() {
        let proto = |s: &str| {
            let mut t = Transport::default();
            for w in s.split(' ') {
                assert!(t.word(w.as_bytes()), "{w}");
            }
            t.protocol()
        };
        assert_eq!(proto("RTP AVP"), Some("RTP/AVP"));
        assert_eq!(proto("SRTP"), Some("RTP/SAVP"));
        assert_eq!(proto("SRTP AVPF"), Some("RTP/SAVPF"));
        assert_eq!(proto("AVPF"), Some("RTP/AVPF"));
        assert_eq!(proto("DTLS AVPF"), Some("UDP/TLS/RTP/SAVPF"));
        assert_eq!(proto("SRTP RTP"), Some("RTP/AVP"));
        assert_eq!(proto("RTP/SAVPF"), Some("RTP/SAVPF"));
        assert_eq!(proto("RTP/SAVPF AVP"), Some("RTP/SAVP"));
        assert_eq!(Transport::default().protocol(), None);
    }

    #[test]
    fn codec_targets() {
        assert_eq!(
            codec_target(b"transcode-PCMA", None),
            Some((&b"transcode"[..], &b"PCMA"[..]))
        );
        assert_eq!(
            codec_target(b"transcode", Some(b"opus/48000/2")),
            Some((&b"transcode"[..], &b"opus/48000/2"[..]))
        );
        assert_eq!(
            codec_target(b"codec-strip", Some(b"all")),
            Some((&b"strip"[..], &b"all"[..]))
        );
        assert_eq!(
            codec_target(b"codec-mask-G722", None),
            Some((&b"mask"[..], &b"G722"[..]))
        );
        assert_eq!(codec_target(b"transcode", None), None);
        assert_eq!(codec_target(b"transcode-", None), None);
        assert_eq!(codec_target(b"codec-ignore-PCMU", None), None);
    }
}

#[cfg(test)]
mod equivalence;
