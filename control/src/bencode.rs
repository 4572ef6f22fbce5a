//! Bencode, the encoding of rtpengine's ng protocol (rtpengine `bencode.c`).
//!
//! The decoder is strict and zero-copy: byte strings borrow from the datagram, so an SDP body
//! is never copied until the request is converted into the engine's typed form. It is hardened
//! for hostile input: nesting depth and element count are capped, every string length is
//! checked against the bytes that remain before anything is allocated, and integers must be
//! canonical (`i0e`, `i-5e`; not `i05e`, `i-0e`, `ie`).
//!
//! One deliberate difference from rtpengine: rtpengine accepts a top-level dictionary whose
//! final `e` is missing (`d7:command4:ping` gets `pong`), an artefact of its parser stopping at
//! the end of the buffer. We reject it (`UnexpectedEnd`): a UDP datagram arrives whole, so a
//! missing terminator means a broken client, and executing an `offer` that may have lost its
//! trailing keys is worse than an error reply. The conformance harness accepts either.
//!
//! The encoder is a small builder writing straight into a `Vec<u8>`; dictionary keys are
//! emitted in the order given because rtpengine does not sort them either (`sdp` comes before
//! `result` in its replies) and clients accept any order.

/// Maximum nesting of lists and dictionaries. ng requests nest three levels at most
/// (`codec` → `transcode` → list); 32 leaves room and bounds the decoder's recursion.
pub const MAX_DEPTH: usize = 32;

/// Maximum number of values in one document. A 64 KiB datagram of `le` pairs holds about
/// 32k lists; the cap bounds the allocation of any input, including JSON converted to bencode.
pub const MAX_ELEMENTS: usize = 100_000;

/// A decoded bencode value borrowing its byte strings from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    List(Vec<Value<'a>>),
    /// Entries in the order they appeared; duplicate keys are kept.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The first entry with this exact key, if this is a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if it is one.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Encode this value (used for round trips and to re-encode converted JSON).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bytes(b) => write_bytes(out, b),
            Value::Int(i) => write_int(out, *i),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    write_bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Why a document could not be decoded. Offsets are byte positions in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input at offset {0}")]
    UnexpectedEnd(usize),
    #[error("unexpected byte 0x{byte:02x} at offset {offset}")]
    UnexpectedByte { offset: usize, byte: u8 },
    #[error("malformed integer at offset {0}")]
    BadInteger(usize),
    #[error("malformed string length at offset {0}")]
    BadLength(usize),
    #[error("string at offset {0} is longer than the remaining input")]
    StringTooLong(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels at offset {0}")]
    TooDeep(usize),
    #[error("more than {MAX_ELEMENTS} values")]
    TooManyElements,
    #[error("trailing data after the value at offset {0}")]
    TrailingData(usize),
}

/// Decode exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut d = Decoder {
        input,
        pos: 0,
        elements: 0,
    };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingData(d.pos));
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    elements: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::UnexpectedEnd(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(DecodeError::TooManyElements);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.int().map(Value::Int)
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(self.pos));
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(self.pos));
                }
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek()? {
                        b'e' => break,
                        b'0'..=b'9' => {}
                        byte => {
                            return Err(DecodeError::UnexpectedByte {
                                offset: self.pos,
                                byte,
                            })
                        }
                    }
                    let key = self.bytes()?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            byte => Err(DecodeError::UnexpectedByte {
                offset: self.pos,
                byte,
            }),
        }
    }

    /// `<digits>e` after the `i`; canonical form only, must fit an i64.
    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let end = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or(DecodeError::UnexpectedEnd(self.input.len()))?;
        let text = &rest[..end];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.len() == 1)
            && text != b"-0";
        if !canonical {
            return Err(DecodeError::BadInteger(start));
        }
        // All ASCII digits (and maybe a sign), so the UTF-8 check cannot fail; parse catches overflow.
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(DecodeError::BadInteger(start))?;
        self.pos = start + end + 1;
        Ok(n)
    }

    /// `<len>:<bytes>`; the length is checked against the remaining input before slicing.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let mut len: usize = 0;
        let mut digits = 0;
        loop {
            let b = *self
                .input
                .get(self.pos)
                .ok_or(DecodeError::UnexpectedEnd(self.pos))?;
            match b {
                b'0'..=b'9' => {
                    if digits == 1 && len == 0 {
                        // Leading zero ("03:abc") is not canonical.
                        return Err(DecodeError::BadLength(start));
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .ok_or(DecodeError::BadLength(start))?;
                    digits += 1;
                    self.pos += 1;
                }
                b':' if digits > 0 => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(DecodeError::BadLength(start)),
            }
        }
        let remaining = self.input.len() - self.pos;
        if len > remaining {
            return Err(DecodeError::StringTooLong(start));
        }
        let s = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_usize(out, b.len());
    out.push(b':');
    out.extend_from_slice(b);
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    out.push(b'i');
    if i < 0 {
        out.push(b'-');
    }
    write_u64(out, i.unsigned_abs());
    out.push(b'e');
}

fn write_usize(out: &mut Vec<u8>, n: usize) {
    write_u64(out, n as u64);
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes one dictionary's entries; created by [`Encoder::dict`] and nested builders, closed
/// automatically when the closure returns.
pub struct DictWriter<'b> {
    out: &'b mut Vec<u8>,
}

impl DictWriter<'_> {
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.bytes(key, value.as_bytes())
    }

    pub fn bytes(&mut self, key: &str, value: &[u8]) -> &mut Self {
        write_bytes(self.out, key.as_bytes());
        write_bytes(self.out, value);
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        write_bytes(self.out, key.as_bytes());
        write_int(self.out, value);
        self
    }

    /// Unsigned counters saturate at `i64::MAX` (bencode integers are signed here).
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.int(key, i64::try_from(value).unwrap_or(i64::MAX))
    }

    pub fn dict(&mut self, key: &str, f: impl FnOnce(&mut DictWriter<'_>)) -> &mut Self {
        write_bytes(self.out, key.as_bytes());
        write_dict(self.out, f);
        self
    }

    pub fn list(&mut self, key: &str, f: impl FnOnce(&mut ListWriter<'_>)) -> &mut Self {
        write_bytes(self.out, key.as_bytes());
        write_list(self.out, f);
        self
    }

    pub fn value(&mut self, key: &str, value: &Value<'_>) -> &mut Self {
        write_bytes(self.out, key.as_bytes());
        value.encode(self.out);
        self
    }
}

/// Writes one list's items; see [`DictWriter`].
pub struct ListWriter<'b> {
    out: &'b mut Vec<u8>,
}

impl ListWriter<'_> {
    pub fn str(&mut self, value: &str) -> &mut Self {
        write_bytes(self.out, value.as_bytes());
        self
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        write_bytes(self.out, value);
        self
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        write_int(self.out, value);
        self
    }

    pub fn dict(&mut self, f: impl FnOnce(&mut DictWriter<'_>)) -> &mut Self {
        write_dict(self.out, f);
        self
    }

    pub fn list(&mut self, f: impl FnOnce(&mut ListWriter<'_>)) -> &mut Self {
        write_list(self.out, f);
        self
    }
}

fn write_dict(out: &mut Vec<u8>, f: impl FnOnce(&mut DictWriter<'_>)) {
    out.push(b'd');
    f(&mut DictWriter { out: &mut *out });
    out.push(b'e');
}

fn write_list(out: &mut Vec<u8>, f: impl FnOnce(&mut ListWriter<'_>)) {
    out.push(b'l');
    f(&mut ListWriter { out: &mut *out });
    out.push(b'e');
}

/// Entry point of the builder: appends one top-level value to a buffer, so a reply can be
/// written right after its cookie without copying.
pub struct Encoder<'b> {
    out: &'b mut Vec<u8>,
}

impl<'b> Encoder<'b> {
    pub fn new(out: &'b mut Vec<u8>) -> Self {
        Encoder { out }
    }

    pub fn dict(self, f: impl FnOnce(&mut DictWriter<'_>)) {
        write_dict(self.out, f);
    }

    pub fn list(self, f: impl FnOnce(&mut ListWriter<'_>)) {
        write_list(self.out, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    #[test]
    fn decodes_scalars_and_containers() {
        assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
        assert_eq!(decode(b"i-42e"), Ok(Value::Int(-42)));
        assert_eq!(decode(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
        assert_eq!(decode(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
        assert_eq!(decode(b"0:"), Ok(Value::Bytes(b"")));
        assert_eq!(decode(b"4:spam"), Ok(Value::Bytes(b"spam")));
        assert_eq!(decode(b"le"), Ok(Value::List(vec![])));
        assert_eq!(decode(b"de"), Ok(Value::Dict(vec![])));
        assert_eq!(
            decode(b"l4:spami7ee"),
            Ok(Value::List(vec![Value::Bytes(b"spam"), Value::Int(7)]))
        );
    }

    #[test]
    fn dict_keeps_order_and_duplicates() {
        let v = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap();
        let d = v.as_dict().unwrap();
        let keys: Vec<&[u8]> = d.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![&b"b"[..], b"a", b"b"]);
        assert_eq!(v.get(b"b"), Some(&Value::Int(1)));
        assert_eq!(v.get(b"zz"), None);
    }

    #[test]
    fn rejects_non_canonical_integers() {
        for bad in [
            &b"i03e"[..],
            b"i-0e",
            b"ie",
            b"i-e",
            b"i+1e",
            b"i1.5e",
            b"i 1e",
            b"i--1e",
        ] {
            assert!(
                matches!(decode(bad), Err(DecodeError::BadInteger(1))),
                "{:?}",
                bad
            );
        }
        assert_eq!(
            decode(b"i9223372036854775808e"),
            Err(DecodeError::BadInteger(1))
        );
        assert_eq!(decode(b"i12"), Err(DecodeError::UnexpectedEnd(3)));
    }

    #[test]
    fn rejects_bad_strings() {
        assert_eq!(decode(b"5:abc"), Err(DecodeError::StringTooLong(0)));
        assert_eq!(decode(b"03:abc"), Err(DecodeError::BadLength(0)));
        assert_eq!(decode(b"3abc"), Err(DecodeError::BadLength(0)));
        assert_eq!(
            decode(b"99999999999999999999999:x"),
            Err(DecodeError::BadLength(0))
        );
        assert_eq!(
            decode(b"-1:x"),
            Err(DecodeError::UnexpectedByte {
                offset: 0,
                byte: b'-'
            })
        );
    }

    #[test]
    fn rejects_structure_errors() {
        assert_eq!(decode(b""), Err(DecodeError::UnexpectedEnd(0)));
        assert_eq!(decode(b"l"), Err(DecodeError::UnexpectedEnd(1)));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::TrailingData(3)));
        assert_eq!(decode(b"dei"), Err(DecodeError::TrailingData(2)));
        // Dictionary keys must be byte strings.
        assert_eq!(
            decode(b"di1ei2ee"),
            Err(DecodeError::UnexpectedByte {
                offset: 1,
                byte: b'i'
            })
        );
        // A key without a value.
        assert_eq!(
            decode(b"d3:keye"),
            Err(DecodeError::UnexpectedByte {
                offset: 6,
                byte: b'e'
            })
        );
        assert_eq!(
            decode(b"x"),
            Err(DecodeError::UnexpectedByte {
                offset: 0,
                byte: b'x'
            })
        );
    }

    #[test]
    fn missing_final_e_is_rejected_deliberately() {
        // rtpengine answers this with pong; we refuse it (see module docs).
        assert_eq!(
            decode(b"d7:command4:ping"),
            Err(DecodeError::UnexpectedEnd(16))
        );
    }

    #[test]
    fn limits_depth_and_element_count() {
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(decode(&ok).is_ok());
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep(MAX_DEPTH)));
        // Deep nesting far past the limit stops at the limit, without recursing further.
        let very_deep = vec![b'l'; 1_000_000];
        assert_eq!(decode(&very_deep), Err(DecodeError::TooDeep(MAX_DEPTH)));

        let mut many = vec![b'l'];
        many.extend(std::iter::repeat_n(&b"i1e"[..], MAX_ELEMENTS).flatten());
        many.push(b'e');
        assert_eq!(decode(&many), Err(DecodeError::TooManyElements));
        let mut fits = vec![b'l'];
        fits.extend(std::iter::repeat_n(&b"i1e"[..], MAX_ELEMENTS - 1).flatten());
        fits.push(b'e');
        assert!(decode(&fits).is_ok());
    }

    /// Requests from reference/ng-protocol.md §5 (Kamailio 5.6.3) and §7 E, byte for byte.
    #[test]
    fn decodes_reference_requests() {
        let kamailio = b"d8:supportsl10:load limite3:sdp4:v=0\n3:ICE6:remove5:label6:caller11:record-call3:yes9:directionl8:internale5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione5:codecd9:transcodel4:PCMAe4:maskl4:PCMUee18:transport-protocol7:RTP/AVP7:call-id19:kamcall-1@127.0.0.110:via-branch18:z9hG4bK-kam-INVITE13:received-froml3:IP49:127.0.0.1e8:from-tag8:fromtag17:command5:offere";
        let v = decode(kamailio).unwrap();
        assert_eq!(v.get(b"command").and_then(Value::as_str), Some("offer"));
        assert_eq!(
            v.get(b"call-id").and_then(Value::as_str),
            Some("kamcall-1@127.0.0.1")
        );
        assert_eq!(
            v.get(b"codec").and_then(|c| c.get(b"mask")),
            Some(&Value::List(vec![Value::Bytes(b"PCMU")]))
        );
        assert_eq!(
            v.get(b"received-from"),
            Some(&Value::List(vec![
                Value::Bytes(b"IP4"),
                Value::Bytes(b"127.0.0.1")
            ]))
        );
        assert_eq!(v.as_dict().unwrap().len(), 15);
        // Re-encoding reproduces the input exactly (order preserved, nothing sorted).
        assert_eq!(enc(&v), kamailio.to_vec());

        let no_command = decode(b"d7:call-id1:xe").unwrap();
        assert_eq!(no_command.get(b"command"), None);
    }

    /// The offer of captures/ex2.out with its CRLF SDP, exactly as sent.
    #[test]
    fn decodes_captured_offer_with_crlf_sdp() {
        let sdp = ngmedia_test_support::sdp_fixture!("rtpengine-ex2-offer");
        assert_eq!(sdp.len(), 242);
        let body = format!(
            "d7:command5:offer7:call-id12:call-plain-28:from-tag4:tagA10:via-branch9:z9hG4bK-23:sdp242:{sdp}5:flagsl13:trust-addresse7:replacel6:origine13:received-froml3:IP49:127.0.0.2e3:ICE6:removee"
        );
        let v = decode(body.as_bytes()).unwrap();
        assert_eq!(v.get(b"sdp").and_then(Value::as_str), Some(sdp));
        assert_eq!(v.get(b"ICE").and_then(Value::as_str), Some("remove"));
    }

    /// Bodies of `sc_malformed` in shared/harness/conformance.py.
    #[test]
    fn conformance_malformed_bodies() {
        assert!(decode(b"d7:command4:pin").is_err());
        assert_eq!(decode(b"i42e"), Ok(Value::Int(42))); // valid bencode, not a dict: caller rejects
        assert!(decode(b"\xff\xfe garbage {json?}").is_err());
        assert_eq!(
            decode(b"d7:command999999:pinge"),
            Err(DecodeError::StringTooLong(10))
        );
        // `d4:fooo3:bare` is a well-formed dictionary without a command.
        assert_eq!(
            decode(b"d4:fooo3:bare"),
            Ok(Value::Dict(vec![(&b"fooo"[..], Value::Bytes(b"bar"))]))
        );
        assert_eq!(
            decode(b"d7:commandi5ee"),
            Ok(Value::Dict(vec![(&b"command"[..], Value::Int(5))]))
        );
        assert!(decode(b"").is_err());
        assert!(decode(b"d7:command4:ping").is_err());
    }

    #[test]
    fn builder_writes_keys_in_given_order() {
        let mut out = b"5323_1 ".to_vec();
        Encoder::new(&mut out).dict(|d| {
            d.str("result", "pong");
        });
        assert_eq!(out, b"5323_1 d6:result4:ponge");

        let mut out = Vec::new();
        Encoder::new(&mut out).dict(|d| {
            d.str("warning", "Call-ID not found or tags didn't match")
                .str("result", "ok");
        });
        assert_eq!(
            out,
            b"d7:warning38:Call-ID not found or tags didn't match6:result2:oke".to_vec()
        );

        let mut out = Vec::new();
        Encoder::new(&mut out).dict(|d| {
            d.int("neg", -7)
                .uint("big", u64::MAX)
                .bytes("bin", b"\x00\xff")
                .list("l", |l| {
                    l.str("a").int(0).dict(|_| {}).list(|_| {});
                })
                .dict("SSRC", |_| {});
        });
        assert_eq!(
            out,
            b"d3:negi-7e3:bigi9223372036854775807e3:bin2:\x00\xff1:ll1:ai0edelee4:SSRCdee".to_vec()
        );
        assert_eq!(
            decode(&out).map(|v| v.as_dict().map(<[_]>::len)),
            Ok(Some(5))
        );
    }

    #[test]
    fn round_trips_integers() {
        for i in [0, 1, -1, 10, 99, -100, i64::MAX, i64::MIN] {
            let v = Value::Int(i);
            assert_eq!(decode(&enc(&v)), Ok(v));
        }
    }
}
