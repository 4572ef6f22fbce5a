//! The SDP data model: ordered raw lines, with typed views where the engine reads them and a
//! few editors the call model uses before [`Sdp::rewrite`](super::Sdp::rewrite).
//!
//! Every line keeps its value text exactly as received, so anything the engine does not
//! understand (b=, k=, i=, unknown a= lines) survives a parse/write round trip untouched.

use std::net::IpAddr;

/// One `x=value` line: `kind` is the type letter (`b'a'`, `b'c'`, ...), `value` the text after
/// `=` without the line ending. rtpengine keeps the same raw slice per attribute
/// (`struct sdp_attribute`, `full_line` / `line_value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: u8,
    pub value: String,
}

impl Line {
    pub fn new(kind: u8, value: impl Into<String>) -> Line {
        Line {
            kind,
            value: value.into(),
        }
    }

    /// An `a=` line.
    pub fn attribute(value: impl Into<String>) -> Line {
        Line::new(b'a', value)
    }

    /// For an `a=` line: its name and value, split at the first `:` (`""` for flags such as
    /// `a=sendrecv`). `None` for other line kinds.
    pub fn attr(&self) -> Option<(&str, &str)> {
        if self.kind != b'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((name, value)) => (name, value),
            None => (self.value.as_str(), ""),
        })
    }

    /// True for `a=name` or `a=name:...`.
    pub fn is_attribute(&self, name: &str) -> bool {
        self.attr().is_some_and(|(n, _)| n == name)
    }
}

/// Media direction attribute (`a=sendrecv` and friends); rtpengine keeps it as the
/// `SEND`/`RECV` flags of a `call_media` and prints it with `print_sendrecv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name, as written after `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parse an attribute name (`sendrecv`, ...); case-sensitive like rtpengine.
    pub fn from_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction as seen from the other party (sendonly <-> recvonly).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The same direction without the receiving half (sendrecv -> sendonly, recvonly ->
    /// inactive): what a party that cannot receive (c= zero address) really offers.
    pub fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// An `m=` line (rtpengine: the head of `struct sdp_media`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `audio`, `video`, `image`, ...
    pub kind: String,
    pub port: u16,
    /// The `/N` after the port, if present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, ...
    pub proto: String,
    /// The format list: payload type numbers for RTP, free tokens otherwise. Empty is
    /// accepted as rtpengine accepts it (`m=application 0 *`, GH 1461).
    pub formats: Vec<String>,
    /// An m= line without formats that ended in a space after the protocol: rtpengine copies
    /// the line up to its (empty) format list, so the space survives the rewrite.
    pub trailing_space: bool,
}

impl MediaLine {
    /// True if the protocol carries RTP (rtpengine's `proto_is_rtp`): RTP/AVP, RTP/SAVPF,
    /// UDP/TLS/RTP/SAVP, ... Only then are payload types codecs and a=rtcp meaningful.
    pub fn is_rtp(&self) -> bool {
        proto_is_rtp(&self.proto)
    }

    /// True for `m=message` (MSRP over TCP, RFC 4975), which rtpengine (`MT_MESSAGE`) passes
    /// on untouched: its port, protocol, c= and attributes are the party's own, because the
    /// session runs over TCP end to end and never through the engine.
    pub fn passes_untouched(&self) -> bool {
        self.kind == "message"
    }
}

pub(crate) fn proto_is_rtp(proto: &str) -> bool {
    proto
        .split('/')
        .any(|part| part.eq_ignore_ascii_case("RTP"))
}

/// One media section: its m= line and the lines after it, in order (rtpengine's
/// `struct sdp_media`; the engine's `Media` is built from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub m: MediaLine,
    pub lines: Vec<Line>,
}

/// A whole session description (rtpengine's `struct sdp_session`). `session` holds the
/// session-level lines in order (v=, o=, s=, c=, t=, a=, ...), `media` the m= sections.
///
/// A body may hold several sessions (several `v=` lines; rtpengine accepts them and treats
/// their media as one list): `media` then holds the m= sections of all of them in order,
/// `session` the session lines of the first, and `more_sessions` those of the others, each
/// with the index of its first m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub session: Vec<Line>,
    pub media: Vec<MediaSection>,
    pub more_sessions: Vec<SubSession>,
}

/// The session-level lines of a further session in a body with several `v=` lines; its m=
/// sections are `Sdp::media[first_media..]` up to the next session's `first_media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubSession {
    pub first_media: usize,
    pub lines: Vec<Line>,
}

/// The parsed `o=` line (rtpengine's `struct sdp_origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub version: String,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Origin {
    /// Parse the value of an `o=` line. rtpengine accepts at least six space-separated
    /// tokens; anything after the sixth belongs to the address.
    pub fn parse(value: &str) -> Option<Origin> {
        let mut it = value.splitn(6, ' ');
        let mut next = || it.next().filter(|t| !t.is_empty()).map(str::to_owned);
        Some(Origin {
            username: next()?,
            session_id: next()?,
            version: next()?,
            net_type: next()?,
            addr_type: next()?,
            address: next()?,
        })
    }

    /// The value of an `o=` line.
    pub fn to_value(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

/// One payload type of a media section (rtpengine's `struct rtp_payload_type`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Codec {
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`); empty for a dynamic
    /// payload type without a=rtpmap, which the engine cannot name (no a=rtpmap is written
    /// for it, like rtpengine).
    pub name: String,
    pub clock_rate: u32,
    /// The third rtpmap field, when the SDP gave one (`opus/48000/2`).
    pub channels: Option<u8>,
    /// The a=fmtp parameters for this payload type.
    pub fmtp: Option<String>,
}

impl Codec {
    /// The value of this codec's `a=rtpmap` line (`0 PCMU/8000`), `None` when unnamed.
    pub fn rtpmap_value(&self) -> Option<String> {
        if self.name.is_empty() {
            return None;
        }
        // One channel is the default and goes unwritten, as rtpengine writes it.
        Some(match self.channels.filter(|&ch| ch != 1) {
            Some(ch) => format!("{} {}/{}/{}", self.pt, self.name, self.clock_rate, ch),
            None => format!("{} {}/{}", self.pt, self.name, self.clock_rate),
        })
    }

    /// The static payload type of RFC 3551 with this number, as rtpengine knows it
    /// (`rfc_rtp_payload_types` in lib/rtplib.c: the rtpmap it writes is `NAME/RATE`).
    pub fn from_static(pt: u8) -> Option<Codec> {
        let (name, clock_rate) = static_payload_type(pt)?;
        Some(Codec {
            pt,
            name: name.to_owned(),
            clock_rate,
            channels: None,
            fmtp: None,
        })
    }
}

/// RFC 3551 static payload types (name, clock rate).
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

/// A payload type number as used in m= lines and rtpmap/fmtp/rtcp-fb (0..=127).
pub(crate) fn parse_pt(s: &str) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

/// `a=rtpmap` value `PT NAME/RATE[/CHANNELS]`; `None` if malformed (rtpengine then treats the
/// line as an unknown attribute and leaves it in place).
pub(crate) fn parse_rtpmap(value: &str) -> Option<Codec> {
    let (pt, encoding) = value.split_once(' ')?;
    let pt = parse_pt(pt)?;
    let mut parts = encoding.trim().splitn(3, '/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock_rate = parts.next()?.parse::<u32>().ok()?;
    let channels = match parts.next() {
        Some(ch) => Some(ch.parse::<u8>().ok()?),
        None => None,
    };
    Some(Codec {
        pt,
        name: name.to_owned(),
        clock_rate,
        channels,
        fmtp: None,
    })
}

/// `a=fmtp` value `PT PARAMS` -> (PT, PARAMS).
pub(crate) fn parse_fmtp(value: &str) -> Option<(u8, &str)> {
    let (pt, params) = value.split_once(' ')?;
    Some((parse_pt(pt)?, params))
}

/// `a=rtcp-fb` value `PT ...` -> PT; `None` for the wildcard `*` form.
pub(crate) fn parse_rtcp_fb_pt(value: &str) -> Option<u8> {
    let pt = value.split(' ').next()?;
    parse_pt(pt)
}

/// The address of a `c=` value (`IN IP4 192.0.2.1`, multicast `/ttl` ignored). The address
/// type must match the address, as rtpengine requires.
pub(crate) fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut it = value.split_ascii_whitespace();
    let net = it.next()?;
    let family = it.next()?;
    let addr = it.next()?;
    if it.next().is_some() || !net.eq_ignore_ascii_case("IN") {
        return None;
    }
    let addr = addr.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    let family_ok = if family.eq_ignore_ascii_case("IP4") {
        ip.is_ipv4()
    } else if family.eq_ignore_ascii_case("IP6") {
        ip.is_ipv6()
    } else {
        false
    };
    family_ok.then_some(ip)
}

/// Attributes that make up ICE (rtpengine: `ATTR_ICE*`, `ATTR_CANDIDATE`).
pub(crate) const ICE_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "remote-candidates",
    "candidate",
];

fn attribute_in<'a>(lines: &'a [Line], name: &str) -> Option<&'a str> {
    lines
        .iter()
        .filter_map(Line::attr)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn direction_in(lines: &[Line]) -> Option<Direction> {
    lines
        .iter()
        .filter_map(Line::attr)
        .find_map(|(n, _)| Direction::from_name(n))
}

impl Sdp {
    /// An SDP of one session.
    pub fn new(session: Vec<Line>, media: Vec<MediaSection>) -> Sdp {
        Sdp {
            session,
            media,
            more_sessions: Vec::new(),
        }
    }

    /// The session-level lines of the session media section `idx` belongs to.
    pub fn session_of(&self, idx: usize) -> &[Line] {
        self.more_sessions
            .iter()
            .rev()
            .find(|s| s.first_media <= idx)
            .map_or(&self.session, |s| &s.lines)
    }

    /// Insert a media section at `idx`; it belongs to the session of the section it goes
    /// before (the last session when appended).
    pub fn insert_media(&mut self, idx: usize, section: MediaSection) {
        let idx = idx.min(self.media.len());
        for s in &mut self.more_sessions {
            if s.first_media > idx {
                s.first_media += 1;
            }
        }
        self.media.insert(idx, section);
    }

    /// Remove media section `idx` (no-op when out of range); session boundaries follow.
    pub fn remove_media(&mut self, idx: usize) {
        if idx >= self.media.len() {
            return;
        }
        for s in &mut self.more_sessions {
            if s.first_media > idx {
                s.first_media -= 1;
            }
        }
        self.media.remove(idx);
    }

    /// The session-level `o=` line (of the first session), parsed.
    pub fn origin(&self) -> Option<Origin> {
        let line = self.session.iter().find(|l| l.kind == b'o')?;
        Origin::parse(&line.value)
    }

    /// Overwrite the version field of the `o=` line of every session (rtpengine writes one
    /// version into all of them).
    pub fn set_origin_version(&mut self, version: u64) {
        let sessions = std::iter::once(&mut self.session)
            .chain(self.more_sessions.iter_mut().map(|s| &mut s.lines));
        for lines in sessions {
            let Some(line) = lines.iter_mut().find(|l| l.kind == b'o') else {
                continue;
            };
            if let Some(mut origin) = Origin::parse(&line.value) {
                origin.version = version.to_string();
                line.value = origin.to_value();
            }
        }
    }

    /// The session-level `s=` value.
    pub fn session_name(&self) -> Option<&str> {
        self.session
            .iter()
            .find(|l| l.kind == b's')
            .map(|l| l.value.as_str())
    }

    /// The address of the session-level `c=` line.
    pub fn connection_address(&self) -> Option<IpAddr> {
        let line = self.session.iter().find(|l| l.kind == b'c')?;
        parse_connection(&line.value)
    }

    /// The connection address that applies to media section `idx`: its own `c=`, else the
    /// session-level one of its session.
    pub fn media_connection(&self, idx: usize) -> Option<IpAddr> {
        self.media
            .get(idx)
            .and_then(MediaSection::connection_address)
            .or_else(|| {
                let line = self.session_of(idx).iter().find(|l| l.kind == b'c')?;
                parse_connection(&line.value)
            })
    }

    /// The direction that applies to media section `idx`: its own attribute, else the
    /// session-level one of its session, else sendrecv (rtpengine's `attr_get_by_id_m_s`).
    pub fn media_direction(&self, idx: usize) -> Direction {
        self.media
            .get(idx)
            .and_then(MediaSection::direction)
            .or_else(|| direction_in(self.session_of(idx)))
            .unwrap_or(Direction::SendRecv)
    }

    /// The session-level direction attribute, if any.
    pub fn session_direction(&self) -> Option<Direction> {
        direction_in(&self.session)
    }

    /// First session-level `a=name[:value]` -> value (`""` for flags).
    pub fn session_attribute(&self, name: &str) -> Option<&str> {
        attribute_in(&self.session, name)
    }

    /// True if `a=name` appears at session level or in any media section.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.session.iter().any(|l| l.is_attribute(name))
            || self
                .more_sessions
                .iter()
                .any(|s| s.lines.iter().any(|l| l.is_attribute(name)))
            || self.media.iter().any(|m| m.has_attribute(name))
    }

    /// True if a session-level `a=rtpengine:<marker>` carries this marker: the SDP already
    /// went through this engine (flag `loop protect`; rtpengine's `sdp_is_duplicate`).
    pub fn has_loop_marker(&self, marker: &str) -> bool {
        self.session
            .iter()
            .filter_map(Line::attr)
            .any(|(n, v)| n == "rtpengine" && v == marker)
    }
}

impl MediaSection {
    /// First `a=name` or `a=name:value` -> value (`""` for flags).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        attribute_in(&self.lines, name)
    }

    /// Values of every `a=name` line, in order.
    pub fn attributes<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter_map(Line::attr)
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.lines.iter().any(|l| l.is_attribute(name))
    }

    /// The address of this section's own `c=` line.
    pub fn connection_address(&self) -> Option<IpAddr> {
        let line = self.lines.iter().find(|l| l.kind == b'c')?;
        parse_connection(&line.value)
    }

    /// `a=rtcp:PORT [IN IP4 ADDR]` (RFC 3605). A port outside 1..=65535 or an unparsable
    /// address makes the attribute invalid, as in rtpengine.
    pub fn rtcp(&self) -> Option<(u16, Option<IpAddr>)> {
        let value = self.attribute("rtcp")?;
        let (port, rest) = match value.split_once(' ') {
            Some((port, rest)) => (port, rest.trim()),
            None => (value, ""),
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        if rest.is_empty() {
            return Some((port, None));
        }
        Some((port, Some(parse_connection(rest)?)))
    }

    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.lines)
    }

    /// `a=ptime:N` in milliseconds (non-zero).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")?
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p != 0)
    }

    /// `a=mid:X`.
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
    }

    /// The payload types of this section in m= order with their a=rtpmap / a=fmtp, falling
    /// back to the RFC 3551 static table. Non-numeric formats (non-RTP media) are skipped.
    pub fn codecs(&self) -> Vec<Codec> {
        let mut out = Vec::with_capacity(self.m.formats.len());
        for format in &self.m.formats {
            let Some(pt) = parse_pt(format) else { continue };
            if out.iter().any(|c: &Codec| c.pt == pt) {
                continue;
            }
            let mut codec = self
                .attributes("rtpmap")
                .filter_map(parse_rtpmap)
                .find(|c| c.pt == pt)
                .or_else(|| Codec::from_static(pt))
                .unwrap_or(Codec {
                    pt,
                    name: String::new(),
                    clock_rate: 0,
                    channels: None,
                    fmtp: None,
                });
            codec.fmtp = self
                .attributes("fmtp")
                .filter_map(parse_fmtp)
                .find(|(p, _)| *p == pt)
                .map(|(_, params)| params.to_owned());
            out.push(codec);
        }
        out
    }

    /// True if the party announces trickle ICE here (rtpengine's `__sdp_ice`): the section
    /// does ICE (an `a=ice-ufrag` here or at session level) and its own `a=ice-options`
    /// lists `trickle`, or, without `a=ice-options`, its address is the trickle placeholder
    /// (zero address, port 9; RFC 8840 §4.1).
    pub fn trickle_ice(&self, session: &[Line], address: Option<IpAddr>) -> bool {
        let ice =
            self.has_attribute("ice-ufrag") || session.iter().any(|l| l.is_attribute("ice-ufrag"));
        if !ice {
            return false;
        }
        match self.attribute("ice-options") {
            Some(options) => options.contains("trickle"),
            None => self.m.port == 9 && address.is_some_and(|a| a.is_unspecified()),
        }
    }

    /// True if the section carries ICE (ice-ufrag, ice-pwd or candidates).
    pub fn has_ice(&self) -> bool {
        self.lines.iter().any(|l| {
            l.is_attribute("ice-ufrag") || l.is_attribute("ice-pwd") || l.is_attribute("candidate")
        })
    }

    /// Replace the payload types of this section: the m= format list becomes `codecs` in
    /// order, their a=rtpmap/a=fmtp lines are rewritten, and a=rtcp-fb lines of dropped
    /// payload types go away. The call model uses this for codec strip/mask/transcode before
    /// [`Sdp::rewrite`](super::Sdp::rewrite).
    pub fn set_codecs(&mut self, codecs: &[Codec]) {
        let keep = |pt: u8| codecs.iter().any(|c| c.pt == pt);
        let mut insert_at = None;
        let mut i = 0;
        while i < self.lines.len() {
            let drop = match self.lines[i].attr() {
                Some(("rtpmap", v)) => parse_rtpmap(v).is_some(),
                Some(("fmtp", v)) => parse_fmtp(v).is_some(),
                Some(("rtcp-fb", v)) => parse_rtcp_fb_pt(v).is_some_and(|pt| !keep(pt)),
                _ => false,
            };
            if drop {
                insert_at.get_or_insert(i);
                self.lines.remove(i);
            } else {
                i += 1;
            }
        }
        // New codec lines go where the old ones were, else before the first attribute.
        let mut at = insert_at
            .or_else(|| self.lines.iter().position(|l| l.kind == b'a'))
            .unwrap_or(self.lines.len());
        for codec in codecs {
            if let Some(rtpmap) = codec.rtpmap_value() {
                self.lines
                    .insert(at, Line::attribute(format!("rtpmap:{rtpmap}")));
                at += 1;
            }
            if let Some(fmtp) = &codec.fmtp {
                self.lines
                    .insert(at, Line::attribute(format!("fmtp:{} {}", codec.pt, fmtp)));
                at += 1;
            }
        }
        self.m.formats = codecs.iter().map(|c| c.pt.to_string()).collect();
    }

    /// Set or remove `a=ptime` (the call model copies the offerer's ptime into an answer that
    /// has none, as rtpengine does).
    pub fn set_ptime(&mut self, ptime: Option<u32>) {
        let values: Vec<String> = ptime.map(|p| p.to_string()).into_iter().collect();
        self.set_attributes("ptime", &values);
    }

    /// Replace every `a=name` line with one `a=name:value` line per value (`a=name` for an
    /// empty value), at the position of the first old line, else at the end.
    pub fn set_attributes<S: AsRef<str>>(&mut self, name: &str, values: &[S]) {
        // Lines before the first match are untouched by the removal, so its index stays valid.
        let first = self.lines.iter().position(|l| l.is_attribute(name));
        self.lines.retain(|l| !l.is_attribute(name));
        let at = first.unwrap_or(self.lines.len());
        let new_lines = values.iter().map(|value| match value.as_ref() {
            "" => Line::attribute(name),
            value => Line::attribute(format!("{name}:{value}")),
        });
        self.lines.splice(at..at, new_lines);
    }

    /// Remove every `a=name` line.
    pub fn remove_attributes(&mut self, name: &str) {
        self.lines.retain(|l| !l.is_attribute(name));
    }
}

#[cfg(test)]
mod tests;
