//! From datagram to typed engine request (rtpengine `control_ng.c` framing and
//! `call_interfaces.c` `call_ng_process_flags`).
//!
//! Kamailio and other clients spell keys and flags in several ways (`call-id`, `call id`,
//! `call_id`; `trust-address`, `trust address`; `SIP-source-address`), so every key and flag
//! is compared in a normal form: ASCII lowercase with `-` and `_` read as a space. The
//! normal form is byte-for-byte the same length as the original, so a prefix flag such as
//! `codec-strip-PCMU` or `SDES-no-AES_CM_128_HMAC_SHA1_80` is recognised on its normalised
//! prefix while its argument is kept verbatim.
//!
//! Nothing here rejects a request for an unknown key, flag or value: those are collected in
//! [`NgRequest`] so the server can log them, as rtpengine does. Only a missing command or a
//! missing required key is an error.

use std::net::IpAddr;
use std::time::Duration;

use ngmedia_engine::core::request::{
    Delete, DtlsMode, Family, IceMode, List, MediaSource, MohMode, MohOptions, OfferAnswer,
    PartySelector, PlayMedia, Query, Recording, RecordingAction, StopMedia,
};

use super::NgError;
use crate::bencode::{self, Value, MAX_DEPTH, MAX_ELEMENTS};

/// How a request body is encoded; the reply uses the same encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Bencode,
    Json,
}

/// Split `COOKIE SP BODY`. `None` (drop without a reply, like rtpengine) when there is no
/// space or the datagram starts with one: without a cookie a reply could not be matched.
///
/// Trailing CR/LF after the body are ignored so that `echo 'c1 d7:command4:pinge' | nc -u`
/// works; neither a bencode dictionary nor a JSON object can end in one.
pub fn split_datagram(datagram: &[u8]) -> Option<(&[u8], &[u8])> {
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
pub fn detect_encoding(body: &[u8]) -> Result<Encoding, NgError> {
    match body.first() {
        Some(b'd') => Ok(Encoding::Bencode),
        Some(b'{') => Ok(Encoding::Json),
        _ => Err(NgError::InvalidFormat),
    }
}

/// Decode a bencode body that must be a dictionary.
pub fn decode_bencode(body: &[u8]) -> Result<Value<'_>, NgError> {
    match bencode::decode(body) {
        Ok(v @ Value::Dict(_)) => Ok(v),
        _ => Err(NgError::BadBencode),
    }
}

/// Parse a JSON body; convert it with [`json_to_value`].
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, NgError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(NgError::BadJson),
    }
}

/// Convert a JSON object into the bencode model, under the same limits as bencode input.
/// Numbers must be integers; `true`/`false` become 1/0; `null` entries are dropped.
pub fn json_to_value(json: &serde_json::Value) -> Result<Value<'_>, NgError> {
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

/// Every ng command rtpengine knows (rtpengine `enum call_opmode` / `ng_command_strings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Ping,
    Offer,
    Answer,
    Delete,
    Query,
    List,
    Statistics,
    StartRecording,
    StopRecording,
    PauseRecording,
    StartForwarding,
    StopForwarding,
    BlockDtmf,
    UnblockDtmf,
    BlockMedia,
    UnblockMedia,
    SilenceMedia,
    UnsilenceMedia,
    PlayMedia,
    StopMedia,
    PlayDtmf,
    Publish,
    SubscribeRequest,
    SubscribeAnswer,
    Unsubscribe,
    Connect,
}

impl CommandKind {
    pub const ALL: [CommandKind; 26] = [
        CommandKind::Ping,
        CommandKind::Offer,
        CommandKind::Answer,
        CommandKind::Delete,
        CommandKind::Query,
        CommandKind::List,
        CommandKind::Statistics,
        CommandKind::StartRecording,
        CommandKind::StopRecording,
        CommandKind::PauseRecording,
        CommandKind::StartForwarding,
        CommandKind::StopForwarding,
        CommandKind::BlockDtmf,
        CommandKind::UnblockDtmf,
        CommandKind::BlockMedia,
        CommandKind::UnblockMedia,
        CommandKind::SilenceMedia,
        CommandKind::UnsilenceMedia,
        CommandKind::PlayMedia,
        CommandKind::StopMedia,
        CommandKind::PlayDtmf,
        CommandKind::Publish,
        CommandKind::SubscribeRequest,
        CommandKind::SubscribeAnswer,
        CommandKind::Unsubscribe,
        CommandKind::Connect,
    ];

    /// The command as rtpengine spells it.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Ping => "ping",
            CommandKind::Offer => "offer",
            CommandKind::Answer => "answer",
            CommandKind::Delete => "delete",
            CommandKind::Query => "query",
            CommandKind::List => "list",
            CommandKind::Statistics => "statistics",
            CommandKind::StartRecording => "start recording",
            CommandKind::StopRecording => "stop recording",
            CommandKind::PauseRecording => "pause recording",
            CommandKind::StartForwarding => "start forwarding",
            CommandKind::StopForwarding => "stop forwarding",
            CommandKind::BlockDtmf => "block DTMF",
            CommandKind::UnblockDtmf => "unblock DTMF",
            CommandKind::BlockMedia => "block media",
            CommandKind::UnblockMedia => "unblock media",
            CommandKind::SilenceMedia => "silence media",
            CommandKind::UnsilenceMedia => "unsilence media",
            CommandKind::PlayMedia => "play media",
            CommandKind::StopMedia => "stop media",
            CommandKind::PlayDtmf => "play DTMF",
            CommandKind::Publish => "publish",
            CommandKind::SubscribeRequest => "subscribe request",
            CommandKind::SubscribeAnswer => "subscribe answer",
            CommandKind::Unsubscribe => "unsubscribe",
            CommandKind::Connect => "connect",
        }
    }

    /// Look a command up in any spelling (`block DTMF`, `block_DTMF`, `block-dtmf`).
    pub fn from_name(name: &[u8]) -> Option<CommandKind> {
        let n = normalize(name);
        CommandKind::ALL
            .into_iter()
            .find(|c| normalize(c.name().as_bytes()) == n)
    }

    /// Position in [`CommandKind::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A decoded ng request, ready for the engine.
#[derive(Debug, Clone)]
pub enum Command {
    Ping,
    Offer(Box<OfferAnswer>),
    Answer(Box<OfferAnswer>),
    Delete(Delete),
    Query(Query),
    List(List),
    Statistics,
    /// `start recording`, `stop recording`, `pause recording`.
    Recording(CommandKind, Recording),
    PlayMedia(PlayMedia),
    StopMedia(StopMedia),
    /// `start forwarding`, `stop forwarding`.
    Forwarding(Forwarding),
}

/// `start forwarding` / `stop forwarding` (rtpengine: media forwarding of a call to the
/// configured destination, `CALL_FLAG_FORWARDING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub start: bool,
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Ping => CommandKind::Ping,
            Command::Offer(_) => CommandKind::Offer,
            Command::Answer(_) => CommandKind::Answer,
            Command::Delete(_) => CommandKind::Delete,
            Command::Query(_) => CommandKind::Query,
            Command::List(_) => CommandKind::List,
            Command::Statistics => CommandKind::Statistics,
            Command::Recording(kind, _) => *kind,
            Command::PlayMedia(_) => CommandKind::PlayMedia,
            Command::StopMedia(_) => CommandKind::StopMedia,
            Command::Forwarding(f) if f.start => CommandKind::StartForwarding,
            Command::Forwarding(_) => CommandKind::StopForwarding,
        }
    }

    /// The call the request is about, for logs.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Command::Offer(oa) | Command::Answer(oa) => Some(&oa.call_id),
            Command::Delete(d) => Some(&d.call_id),
            Command::Query(q) => Some(&q.call_id),
            Command::Recording(_, r) => Some(&r.call_id),
            Command::PlayMedia(p) => Some(&p.call_id),
            Command::StopMedia(p) => Some(&p.call_id),
            Command::Forwarding(f) => Some(&f.call_id),
            Command::Ping | Command::List(_) | Command::Statistics => None,
        }
    }
}

/// A request plus what the parser noticed but did not act on; the server logs the lists.
#[derive(Debug, Clone)]
pub struct NgRequest {
    pub command: Command,
    /// Keys no version of the protocol we know defines.
    pub unknown_keys: Vec<String>,
    /// Flags (and list values such as `replace` entries) we do not know.
    pub unknown_flags: Vec<String>,
    /// Keys, flags and values that are part of the protocol but not acted on by this build.
    pub unsupported: Vec<String>,
    /// Values of known keys that could not be understood and were ignored.
    pub invalid: Vec<String>,
}

/// The `moh` dictionary of an offer: `file`/`blob`/`db-id`, `mode`, `connection`.
fn moh_options(value: &Value<'_>) -> Option<MohOptions> {
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

/// Normal form of a key or flag: ASCII lowercase, `-` and `_` as space, same length.
pub fn normalize(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&b| match b {
            b'-' | b'_' => b' ',
            _ => b.to_ascii_lowercase(),
        })
        .collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A string value; integers are accepted and written in decimal.
fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(lossy(b)),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// An integer given as an integer or as a numeric string (Kamailio sends `duration: "200"`).
pub fn int_lenient(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// `yes|no|on|off|true|false|1|0`.
fn boolean(v: &Value<'_>) -> Option<bool> {
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
fn strings<'a>(v: &Value<'a>) -> Vec<&'a [u8]> {
    match v {
        Value::Bytes(b) => vec![b],
        Value::List(items) => items.iter().filter_map(Value::as_bytes).collect(),
        _ => Vec::new(),
    }
}

/// Keys of §4 that this build recognises but does not act on yet.
const UNSUPPORTED_KEYS: &[&[u8]] = &[
    b"dtls reverse",
    b"ice lite",
    b"t.38",
    b"t38",
    b"recording file",
    b"recording dir",
    b"recording path",
    b"recording pattern",
    b"media echo",
    b"drop traffic",
    b"generate rtcp",
    b"audio player",
    b"delay buffer",
    b"dtmf delay",
    b"dtmf security",
    b"dtmf security trigger",
    b"dtmf security trigger end",
    b"trigger",
    b"trigger end",
    b"frequency",
    b"volume",
    b"dtmf log dest",
    b"extmap",
    b"bundle",
    b"sdp attr",
    b"sdp media remove",
    b"alias key",
    b"xmlrpc callback",
    b"sip message type",
    b"sip code",
    b"template",
    b"rtpp flags",
    b"endpoint learning",
    b"from tags",
    b"to call id",
    b"repacketize",
    b"recording meta data",
];

/// Flags of §4 that this build recognises but does not act on yet.
const UNSUPPORTED_FLAGS: &[&[u8]] = &[
    b"force transcoding",
    b"inject dtmf",
    b"block dtmf",
    b"block egress",
    b"early media",
    b"reuse codecs",
    b"static codecs",
    b"allow asymmetric codecs",
    b"allow no codec media",
    b"allow transcoding",
    b"reject ice",
    b"trickle ice",
    b"fragment",
    b"nat wait",
    b"pierce nat",
    b"recrypt",
    b"provisional",
    b"directional",
    b"bidirectional",
    b"inactive",
    b"mix",
    b"rtcp mirror",
    b"unidirectional",
    b"debug",
    b"no jitter buffer",
    b"exclude recording",
    b"discard recording",
    b"skip recording db",
    b"recording announcement",
    b"to tag",
    b"siprec",
    b"egress",
    b"ice lite",
    b"no codec renegotiation",
    b"passthrough",
    b"no passthrough",
    b"strict source address",
];

/// Prefix flags (`codec-strip-PCMU`, `SDES-no-…`) whose features this build does not act on.
const UNSUPPORTED_FLAG_PREFIXES: &[&[u8]] = &[
    b"bundle ",
    b"endpoint learning ",
    b"from tags ",
    b"t38 ",
    b"t.38 ",
    b"sdp attr ",
    b"dtls ",
    b"extmap ",
    b"ice lite ",
];

const TRANSPORT_PROTOCOLS: &[&[u8]] = &[
    b"rtp/avp",
    b"rtp/avpf",
    b"rtp/savp",
    b"rtp/savpf",
    b"udp/tls/rtp/savp",
    b"udp/tls/rtp/savpf",
];

/// Everything the dictionary said, before the command decides what it needs
/// (rtpengine's `sdp_ng_flags`).
#[derive(Default)]
struct Fields {
    call_id: Option<String>,
    from_tag: Option<String>,
    to_tag: Option<String>,
    via_branch: Option<String>,
    sdp: Option<String>,
    limit: Option<usize>,
    delete_delay: Option<Duration>,
    /// `output-destination` (recording commands).
    output_destination: Option<String>,
    /// `pause` flag: `stop recording` pauses instead.
    pause: bool,
    /// `file` / `blob` / `blob64` / `db-id` (play media).
    media_source: Option<MediaSource>,
    repeat_times: Option<u32>,
    start_pos: Option<u64>,
    repeat_duration: Option<u64>,
    /// The `all` key (`all: all`) of media commands.
    all: bool,
    /// Holds every offer/answer option; ids above are copied in at the end.
    oa: OfferAnswer,
    unknown_keys: Vec<String>,
    unknown_flags: Vec<String>,
    unsupported: Vec<String>,
    invalid: Vec<String>,
}

impl Fields {
    fn invalid(&mut self, key: &[u8], value: &Value<'_>) {
        let shown = match value {
            Value::Bytes(b) => lossy(b),
            Value::Int(i) => i.to_string(),
            Value::List(_) => "<list>".into(),
            Value::Dict(_) => "<dictionary>".into(),
        };
        self.invalid.push(format!("{}={}", lossy(key), shown));
    }

    fn key(&mut self, raw_key: &[u8], value: &Value<'_>) {
        let key = normalize(raw_key);
        match key.as_slice() {
            b"command" => {}
            b"call id" => self.call_id = text(value),
            b"from tag" => self.from_tag = text(value),
            b"to tag" => self.to_tag = text(value),
            b"via branch" => self.via_branch = text(value),
            b"sdp" => self.sdp = value.as_bytes().map(lossy),
            b"file" => match value.as_bytes() {
                Some(b) if !b.is_empty() => self.media_source = Some(MediaSource::File(lossy(b))),
                _ => self.invalid(raw_key, value),
            },
            b"blob" => match value.as_bytes() {
                Some(b) if !b.is_empty() => self.media_source = Some(MediaSource::Blob(b.to_vec())),
                _ => self.invalid(raw_key, value),
            },
            b"blob64" => {
                use base64::Engine as _;
                let decoded = value
                    .as_bytes()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .filter(|b| !b.is_empty());
                match decoded {
                    Some(b) => self.media_source = Some(MediaSource::Blob(b)),
                    None => self.invalid(raw_key, value),
                }
            }
            b"db id" => match text(value).filter(|t| !t.is_empty()) {
                Some(id) => self.media_source = Some(MediaSource::DbId(id)),
                None => self.invalid(raw_key, value),
            },
            b"repeat times" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.repeat_times = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"start pos" => match int_lenient(value).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => self.start_pos = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"repeat duration" => match int_lenient(value).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => self.repeat_duration = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"all" => self.all = true,
            b"moh" => match moh_options(value) {
                Some(m) => self.oa.moh = Some(m),
                None => self.invalid(raw_key, value),
            },
            b"flags" => {
                for flag in strings(value) {
                    self.flag(flag);
                }
            }
            b"replace" => {
                for item in strings(value) {
                    self.replace(item);
                }
            }
            b"direction" => {
                self.oa
                    .direction
                    .extend(strings(value).into_iter().map(lossy));
            }
            b"received from" => match received_from(value) {
                Some(addr) => self.oa.received_from = Some(addr),
                None => self.invalid(raw_key, value),
            },
            b"media address" => {
                match value.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()) {
                    Some(addr) => self.oa.media_address = Some(addr),
                    None => self.invalid(raw_key, value),
                }
            }
            b"address family" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"ip4") => self.oa.address_family = Some(Family::Ip4),
                Some(b"ip6") => self.oa.address_family = Some(Family::Ip6),
                _ => self.invalid(raw_key, value),
            },
            b"ice" => {
                for item in strings(value) {
                    self.ice(item);
                }
            }
            b"rtcp mux" => {
                for item in strings(value) {
                    self.rtcp_mux(item);
                }
            }
            b"transport protocol" => match value.as_bytes() {
                Some(p) if !p.is_empty() => self.oa.transport_protocol = Some(lossy(p)),
                _ => self.invalid(raw_key, value),
            },
            b"sdes" => {
                for item in strings(value) {
                    self.sdes(item);
                }
            }
            b"osrtp" => {
                for item in strings(value) {
                    self.osrtp(item);
                }
            }
            b"dtls" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"off" | b"no" | b"disable") => self.oa.dtls = DtlsMode::Off,
                Some(b"passive") => self.oa.dtls = DtlsMode::Passive,
                Some(b"active") => self.oa.dtls = DtlsMode::Active,
                _ => self.invalid(raw_key, value),
            },
            b"dtls fingerprint" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"sha 1" | b"sha 224" | b"sha 256" | b"sha 384" | b"sha 512") => {
                    self.oa.dtls_fingerprint = text(value)
                }
                _ => self.invalid(raw_key, value),
            },
            b"label" | b"from label" => self.oa.label = text(value),
            b"set label" => self.oa.set_label = text(value),
            b"to label" => self.oa.to_label = text(value),
            b"metadata" => self.oa.metadata = text(value),
            b"output destination" => self.output_destination = text(value),
            b"from interface" => self.oa.from_interface = text(value),
            b"to interface" => self.oa.to_interface = text(value),
            b"interface" => {
                self.oa.from_interface = text(value);
                self.oa.to_interface = text(value);
            }
            b"delete delay" => match int_lenient(value).and_then(|s| u64::try_from(s).ok()) {
                Some(secs) => self.delete_delay = Some(Duration::from_secs(secs)),
                None => self.invalid(raw_key, value),
            },
            b"ptime" => match int_lenient(value).and_then(|p| u32::try_from(p).ok()) {
                Some(p) if p > 0 => self.oa.ptime = Some(p),
                _ => self.invalid(raw_key, value),
            },
            b"ptime reverse" => match int_lenient(value).and_then(|p| u32::try_from(p).ok()) {
                Some(p) if p > 0 => self.oa.ptime_reverse = Some(p),
                _ => self.invalid(raw_key, value),
            },
            b"codec" => match value.as_dict() {
                Some(entries) => {
                    for (k, v) in entries {
                        let items = strings(v);
                        if !self.codec_list(&normalize(k), &items) {
                            self.unknown_keys.push(format!("codec.{}", lossy(k)));
                        }
                    }
                }
                None => self.invalid(raw_key, value),
            },
            // `codec-strip=PCMU` (a flag with a value, or a key of its own).
            k if k.starts_with(b"codec ") && self.codec_list(&k[6..], &strings(value)) => {}
            b"tos" => match int_lenient(value).and_then(|t| u8::try_from(t).ok()) {
                Some(t) => self.oa.tos = Some(t),
                None => self.invalid(raw_key, value),
            },
            b"record call" => match boolean(value) {
                Some(b) => self.oa.record_call = Some(b),
                None => self.invalid(raw_key, value),
            },
            b"limit" => match int_lenient(value).and_then(|l| usize::try_from(l).ok()) {
                Some(l) => self.limit = Some(l),
                None => self.invalid(raw_key, value),
            },
            // Kamailio always sends `supports: ["load limit"]`; we never reply "load limit".
            b"supports" => {}
            k if UNSUPPORTED_KEYS.contains(&k) => self.unsupported.push(lossy(raw_key)),
            _ => self.unknown_keys.push(lossy(raw_key)),
        }
    }

    fn flag(&mut self, raw: &[u8]) {
        // `key=value` inside `flags` (rtpp-flags style) is treated as the key itself.
        if let Some(eq) = raw.iter().position(|&b| b == b'=') {
            if eq > 0 {
                self.key(&raw[..eq], &Value::Bytes(&raw[eq + 1..]));
                return;
            }
        }
        let norm = normalize(raw);
        if self.codec_flag(&norm, raw) {
            return;
        }
        let f = &mut self.oa.flags;
        match norm.as_slice() {
            b"trust address" => f.trust_address = true,
            b"sip source address" | b"sip source" => f.sip_source_address = true,
            // Legacy: symmetric is what every version does by default.
            b"symmetric" => {}
            b"asymmetric" => f.asymmetric = true,
            b"strict source" => f.strict_source = true,
            b"media handover" => f.media_handover = true,
            b"port latching" => f.port_latching = true,
            b"no port latching" => f.no_port_latching = true,
            b"record call" => f.record_call = true,
            b"loop protect" => f.loop_protect = true,
            b"fatal" => f.fatal = true,
            b"fast" => f.fast = true,
            b"new branch" => f.new_branch = true,
            b"original sendrecv" => f.original_sendrecv = true,
            b"full rtcp attribute" => f.full_rtcp_attribute = true,
            b"no rtcp attribute" => f.no_rtcp_attribute = true,
            b"all" => f.all = true,
            b"reset" => f.reset = true,
            b"generate mid" => f.generate_mid = true,
            b"strip extmap" => f.strip_extmap = true,
            b"always transcode" => self.oa.codec.always_transcode = true,
            b"single codec" => self.oa.codec.single_codec = true,
            b"detect dtmf" => self.oa.codec.detect_dtmf = true,
            b"pad crypto" => self.oa.sdes.pad = true,
            b"webrtc" => self.webrtc(),
            b"pause" => self.pause = true,
            b"internal" | b"external" => self.oa.direction.push(lossy(raw)),
            p if TRANSPORT_PROTOCOLS.contains(&p) => self.oa.transport_protocol = Some(lossy(raw)),
            n if n.starts_with(b"replace ") => self.replace(&raw[8..]),
            n if n.starts_with(b"rtcp mux ") => self.rtcp_mux(&raw[9..]),
            n if n.starts_with(b"sdes ") => self.sdes(&raw[5..]),
            n if n.starts_with(b"osrtp ") => self.osrtp(&raw[6..]),
            n if UNSUPPORTED_FLAGS.contains(&n)
                || UNSUPPORTED_FLAG_PREFIXES.iter().any(|p| n.starts_with(p)) =>
            {
                f.other.push(lossy(raw));
                self.unsupported.push(lossy(raw));
            }
            _ => {
                f.other.push(lossy(raw));
                self.unknown_flags.push(lossy(raw));
            }
        }
    }

    /// `codec-strip-PCMU`, `codec-transcode-opus`, `transcode-G729`, ...: the argument is
    /// taken verbatim from `raw`. True when the flag was one of those.
    fn codec_flag(&mut self, norm: &[u8], raw: &[u8]) -> bool {
        if norm.starts_with(b"transcode ") {
            return self.codec_list(b"transcode", &[&raw[10..]]);
        }
        let Some(rest) = norm.strip_prefix(b"codec ") else {
            return false;
        };
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            return false;
        };
        self.codec_list(&rest[..sp], &[&raw[6 + sp + 1..]])
    }

    /// Add `items` to the codec option list named `list` (normalised: `strip`, `offer`,
    /// `except`, `transcode`, `mask`, `accept`, `consume`, `set`, `ignore`). False for an
    /// unknown list name.
    fn codec_list(&mut self, list: &[u8], items: &[&[u8]]) -> bool {
        let c = &mut self.oa.codec;
        let target = match list {
            b"strip" => &mut c.strip,
            b"offer" => &mut c.offer,
            b"except" => &mut c.except,
            b"transcode" => &mut c.transcode,
            b"mask" => &mut c.mask,
            b"accept" => &mut c.accept,
            b"consume" => &mut c.consume,
            b"set" => &mut c.set,
            b"ignore" => &mut c.ignore,
            _ => return false,
        };
        target.extend(items.iter().filter(|i| !i.is_empty()).map(|i| lossy(i)));
        true
    }

    fn replace(&mut self, item: &[u8]) {
        let r = &mut self.oa.replace;
        match normalize(item).as_slice() {
            b"origin" => r.origin = true,
            b"origin full" => r.origin_full = true,
            b"username" => r.username = true,
            b"session name" => r.session_name = true,
            b"sdp version" => r.sdp_version = true,
            b"force increment sdp ver" | b"force increment sdp version" => {
                r.force_increment_sdp_ver = true
            }
            b"zero address" => r.zero_address = true,
            // Obsolete: c= is always rewritten. Kamailio configs still send it.
            b"session connection" => {}
            _ => self.unknown_flags.push(format!("replace-{}", lossy(item))),
        }
    }

    fn rtcp_mux(&mut self, item: &[u8]) {
        let m = &mut self.oa.rtcp_mux;
        match normalize(item).as_slice() {
            b"offer" => m.offer = true,
            b"require" => m.require = true,
            b"demux" => m.demux = true,
            b"accept" => m.accept = true,
            b"reject" => m.reject = true,
            _ => self.unknown_flags.push(format!("rtcp-mux-{}", lossy(item))),
        }
    }

    /// One `SDES` list entry (or what follows `SDES-` in a flag). Suite names stay verbatim.
    fn sdes(&mut self, item: &[u8]) {
        let raw = lossy(item);
        if self.oa.sdes.apply(&raw) {
            return;
        }
        match normalize(item).as_slice() {
            b"off" | b"no" | b"disable" => self.oa.sdes_off = true,
            // Session parameters and key reuse policies this build does not implement.
            b"unencrypted srtp"
            | b"unencrypted srtcp"
            | b"unauthenticated srtp"
            | b"encrypted srtp"
            | b"encrypted srtcp"
            | b"authenticated srtp"
            | b"static"
            | b"prefer" => {
                let s = format!("SDES-{raw}");
                self.oa.flags.other.push(s.clone());
                self.unsupported.push(s);
            }
            _ => self.unknown_flags.push(format!("SDES-{raw}")),
        }
    }

    /// One `OSRTP` list entry (RFC 8643): the `-RFC`/`-legacy` variants are read as the
    /// plain forms (legacy OSRTP uses two m= lines, which this build does not write).
    fn osrtp(&mut self, item: &[u8]) {
        match normalize(item).as_slice() {
            b"offer" | b"offer rfc" | b"offer legacy" => self.oa.osrtp.offer = true,
            b"accept" | b"accept rfc" | b"accept legacy" => self.oa.osrtp.accept = true,
            _ => self.unknown_flags.push(format!("OSRTP-{}", lossy(item))),
        }
    }

    /// `WebRTC`: UDP/TLS/RTP/SAVPF with ICE, rtcp-mux, no a=rtcp, no SDES and a=mid.
    fn webrtc(&mut self) {
        self.oa.transport_protocol = Some("UDP/TLS/RTP/SAVPF".into());
        self.oa.ice = IceMode::Force;
        self.oa.rtcp_mux.offer = true;
        self.oa.rtcp_mux.require = true;
        self.oa.flags.no_rtcp_attribute = true;
        self.oa.sdes_off = true;
        self.oa.flags.generate_mid = true;
    }

    fn ice(&mut self, item: &[u8]) {
        match normalize(item).as_slice() {
            b"remove" => self.oa.ice = IceMode::Remove,
            b"force" => self.oa.ice = IceMode::Force,
            b"default" => self.oa.ice = IceMode::Default,
            b"force relay" | b"optional" | b"trickle" | b"ice2" | b"lite" | b"lite forward"
            | b"lite backward" | b"lite both" | b"lite off" => {
                let s = format!("ICE={}", lossy(item));
                self.oa.flags.other.push(s.clone());
                self.unsupported.push(s);
            }
            _ => self.unknown_flags.push(format!("ICE={}", lossy(item))),
        }
    }
}

/// `received-from: [IP4|IP6, address]`; the family is informative, the address decides.
fn received_from(v: &Value<'_>) -> Option<IpAddr> {
    let items = v.as_list()?;
    let addr = match items {
        [_, addr] => addr,
        [addr] => addr,
        _ => return None,
    };
    addr.as_str()?.trim().parse().ok()
}

/// The command a dictionary asks for (the last `command` key, as every key: later wins).
pub fn command_kind(dict: &Value<'_>) -> Result<CommandKind, NgError> {
    let entries = dict.as_dict().ok_or(NgError::BadBencode)?;
    let mut command = None;
    for (k, v) in entries {
        if normalize(k) == b"command" {
            command = Some(v.as_bytes().ok_or(NgError::NoCommand)?);
        }
    }
    let command = command.ok_or(NgError::NoCommand)?;
    CommandKind::from_name(command).ok_or(NgError::UnknownCommand)
}

/// Convert a decoded dictionary into a typed request.
pub fn parse_request(dict: &Value<'_>) -> Result<NgRequest, NgError> {
    let kind = command_kind(dict)?;
    let entries = dict.as_dict().ok_or(NgError::BadBencode)?;

    let mut f = Fields::default();
    for (k, v) in entries {
        f.key(k, v);
    }

    let command = match kind {
        CommandKind::Ping => Command::Ping,
        CommandKind::Statistics => Command::Statistics,
        CommandKind::List => Command::List(List {
            limit: f.limit.unwrap_or(List::default().limit),
        }),
        CommandKind::Offer | CommandKind::Answer => {
            // The order of checks is rtpengine's: SDP, call-id, from-tag, to-tag.
            let sdp = f
                .sdp
                .take()
                .filter(|s| !s.is_empty())
                .ok_or(NgError::NoSdp)?;
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let from_tag = f.from_tag.take().ok_or(NgError::NoFromTag)?;
            let to_tag = f.to_tag.take().filter(|t| !t.is_empty());
            if kind == CommandKind::Answer && to_tag.is_none() {
                return Err(NgError::NoToTag);
            }
            let mut oa = std::mem::take(&mut f.oa);
            oa.sdp = sdp;
            oa.call_id = call_id;
            oa.from_tag = from_tag;
            oa.to_tag = to_tag;
            oa.via_branch = f.via_branch.take();
            oa.delete_delay = f.delete_delay;
            if kind == CommandKind::Offer {
                Command::Offer(Box::new(oa))
            } else {
                Command::Answer(Box::new(oa))
            }
        }
        CommandKind::Delete => Command::Delete(Delete {
            call_id: f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?,
            from_tag: f.from_tag.take(),
            to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
            via_branch: f.via_branch.take(),
            delete_delay: f.delete_delay,
            flags: std::mem::take(&mut f.oa.flags),
        }),
        CommandKind::Query => Command::Query(Query {
            call_id: f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?,
            from_tag: f.from_tag.take(),
            to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
        }),
        CommandKind::StartRecording | CommandKind::StopRecording | CommandKind::PauseRecording => {
            let action = match kind {
                CommandKind::StartRecording => RecordingAction::Start,
                CommandKind::StopRecording if !f.pause => RecordingAction::Stop,
                _ => RecordingAction::Pause,
            };
            Command::Recording(
                kind,
                Recording {
                    call_id: f
                        .call_id
                        .take()
                        .filter(|c| !c.is_empty())
                        .ok_or(NgError::NoCallId)?,
                    from_tag: f.from_tag.take().filter(|t| !t.is_empty()),
                    to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                    action,
                    metadata: f.oa.metadata.take(),
                    output_destination: f.output_destination.take(),
                },
            )
        }
        CommandKind::PlayMedia | CommandKind::StopMedia => {
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let target = PartySelector {
                from_tag: f.from_tag.take().filter(|t| !t.is_empty()),
                to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                all: f.all || f.oa.flags.all,
            };
            if kind == CommandKind::PlayMedia {
                Command::PlayMedia(PlayMedia {
                    call_id,
                    target,
                    source: f.media_source.take(),
                    repeat_times: f.repeat_times,
                    start_pos_ms: f.start_pos,
                    repeat_duration_ms: f.repeat_duration,
                })
            } else {
                Command::StopMedia(StopMedia { call_id, target })
            }
        }
        CommandKind::StartForwarding | CommandKind::StopForwarding => {
            Command::Forwarding(Forwarding {
                call_id: f
                    .call_id
                    .take()
                    .filter(|c| !c.is_empty())
                    .ok_or(NgError::NoCallId)?,
                from_tag: f.from_tag.take().filter(|t| !t.is_empty()),
                to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                start: kind == CommandKind::StartForwarding,
            })
        }
        other => return Err(NgError::NotSupported(other.name())),
    };
    Ok(NgRequest {
        command,
        unknown_keys: f.unknown_keys,
        unknown_flags: f.unknown_flags,
        unsupported: f.unsupported,
        invalid: f.invalid,
    })
}

#[cfg(test)]
mod tests;
