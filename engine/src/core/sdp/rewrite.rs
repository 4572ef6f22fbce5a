//! Rewriting an SDP for the other party, the way rtpengine does it (`sdp_replace` and
//! `print_sdp_media_section` in daemon/sdp.c, release 10.5), so that phones see byte-for-byte
//! the same SDP after the swap.
//!
//! What rtpengine does, and so what this does:
//! - Session level: o= address (and optionally username, session id, version) and the
//!   session c= address replaced; s= optionally replaced; direction attributes, ICE
//!   attributes (unless ICE is kept), a=extmap, a=setup, a=fingerprint and a=group:BUNDLE
//!   dropped; everything else kept in place; with `loop protect`, `a=rtpengine:<marker>` is
//!   appended after the session lines.
//! - Media level: the m= port/protocol and any c= address replaced; the attributes the engine
//!   owns are removed from where they were (rtpmap/fmtp/rtcp-fb of known codecs, ptime,
//!   direction, rtcp, rtcp-mux, mid, end-of-candidates, extmap, crypto, setup, fingerprint,
//!   ICE unless kept); every other line (b=, i=, k=, unknown a=) stays where it was; then the
//!   engine's block is appended at the end of the section, in this order:
//!   `a=mid`, per codec in m= order `a=rtpmap`/`a=fmtp`/`a=rtcp-fb`, direction,
//!   `a=rtcp`, `a=rtcp-mux`, `a=crypto`..., `a=setup`, `a=fingerprint`, `a=ptime`,
//!   `a=ice-ufrag`, `a=ice-pwd`, `a=candidate`..., and `a=end-of-candidates` if the input
//!   had it.
//! - A rejected section (port 0) keeps only its m= line (port 0), c= and the lines the
//!   engine does not own: rtpengine prints no engine block for an inactive section.
//!
//! The rewrite takes codecs, ptime and SRTP attributes from the section itself: the call
//! model edits those first ([`MediaSection::set_codecs`], [`MediaSection::set_ptime`],
//! [`MediaSection::set_attributes`] for `crypto`/`setup`/`fingerprint`) and the rewrite
//! only moves them to rtpengine's place.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::{
    parse_connection, parse_fmtp, parse_rtcp_fb_pt, parse_rtpmap, proto_is_rtp, Direction, Line,
    MediaLine, MediaSection, Origin, Sdp, ICE_ATTRIBUTES,
};

/// How to rewrite one SDP (rtpengine derives the same from `sdp_ng_flags` and the call
/// state: `replace` flags, the selected interface, the allocated ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpRewrite {
    pub origin: OriginRewrite,
    /// Replace the s= value (`replace: session-name`).
    pub session_name: Option<String>,
    /// The engine address written into the session-level c= line, if the SDP has one.
    pub connection: IpAddr,
    /// One per m= section, same order. A section without an entry is written as rejected
    /// (port 0) on `connection`, so no party address can leak through.
    pub media: Vec<MediaRewrite>,
    /// Append `a=rtpengine:<marker>` (flag `loop protect`) so a looped SDP is recognised by
    /// [`Sdp::has_loop_marker`].
    pub loop_protect: bool,
}

/// Changes to the o= line (`replace: origin`, `origin-full`, `username`, `SDP version`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginRewrite {
    pub address: Option<IpAddr>,
    pub username: Option<String>,
    pub session_id: Option<String>,
    /// Add one to the version (left alone if it is not a number or would overflow).
    pub bump_version: bool,
}

/// How to rewrite one m= section (rtpengine: the `call_media` and its `packet_stream`s
/// facing the receiver of this SDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRewrite {
    /// The engine address for this section's c= line (and the full a=rtcp form).
    pub address: IpAddr,
    /// The engine's RTP port; 0 = rejected m= line: port 0 and no engine attributes at all.
    pub port: u16,
    /// `Some(p)` writes `a=rtcp:p`; `None` writes no a=rtcp (rtcp-mux answer with
    /// `no rtcp attribute`, or non-RTP media).
    pub rtcp_port: Option<u16>,
    /// Write `a=rtcp:PORT IN IP4 ADDR` instead of `a=rtcp:PORT` (flag `full rtcp attribute`).
    pub full_rtcp_attribute: bool,
    /// Write `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Replace the m= protocol (`transport-protocol`).
    pub protocol: Option<String>,
    pub ice: IceRewrite,
    /// `None` keeps the section's direction (its own attribute, else the session's, else
    /// sendrecv), always written out.
    pub direction: Option<Direction>,
    /// A zero c= address (0.0.0.0 or ::, the old way to signal hold) stays zero instead of
    /// becoming `address`. rtpengine keeps zero addresses unless `replace: zero-address` is
    /// given, so the ng default corresponds to `true`.
    pub zero_address: bool,
}

impl MediaRewrite {
    /// Plain RTP relay on `address`/`port` with RTCP on `port + 1`, ICE removed, direction
    /// and zero addresses kept: what rtpengine does with no options.
    pub fn new(address: IpAddr, port: u16) -> MediaRewrite {
        MediaRewrite {
            address,
            port,
            rtcp_port: if port == 0 { None } else { port.checked_add(1) },
            full_rtcp_attribute: false,
            rtcp_mux: false,
            protocol: None,
            ice: IceRewrite::Remove,
            direction: None,
            zero_address: true,
        }
    }

    /// A rejected section (port 0) on `address`.
    pub fn rejected(address: IpAddr) -> MediaRewrite {
        MediaRewrite::new(address, 0)
    }
}

/// What happens to ICE in a section (ng key `ICE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceRewrite {
    /// Leave the party's ICE attributes as they are.
    Keep,
    /// Strip every ICE attribute (`ICE: remove`).
    Remove,
    /// Strip theirs and write the engine's (`ICE: force`).
    Replace {
        ufrag: String,
        pwd: String,
        candidates: Vec<IceCandidate>,
    },
}

/// One host candidate of the engine (rtpengine's `insert_candidate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    pub foundation: String,
    /// 1 = RTP, 2 = RTCP.
    pub component: u8,
    pub priority: u32,
    pub address: IpAddr,
    pub port: u16,
}

impl IceCandidate {
    /// The attribute value: `candidate:F C UDP P ADDR PORT typ host`.
    pub fn to_value(&self) -> String {
        format!(
            "candidate:{} {} UDP {} {} {} typ host",
            self.foundation, self.component, self.priority, self.address, self.port
        )
    }
}

/// A stable marker for `a=rtpengine:` derived from the engine address: 12 hex digits like
/// rtpengine's instance id, the same on every rewrite by an engine on that address, different
/// for another engine in the signalling path. Callers with a configured instance id use
/// [`Sdp::rewrite_with_marker`].
pub fn loop_marker(engine_address: IpAddr) -> String {
    // FNV-1a: tiny, dependency-free and stable across builds (unlike std's hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let octets = match engine_address {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    for byte in octets {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:012x}", hash & 0xffff_ffff_ffff)
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

fn unspecified_like(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "0.0.0.0"
    } else {
        "::"
    }
}

/// New c= value: the network type as written, then the engine family and address, or the
/// engine family's zero address when the input was zero and zeros are kept
/// (rtpengine's `call_stream_address46` with `keep_unspec`).
fn rewrite_connection(value: &str, engine: IpAddr, keep_zero: bool) -> String {
    let net = value.split_ascii_whitespace().next().unwrap_or("IN");
    let was_zero = parse_connection(value).is_some_and(|ip| ip.is_unspecified());
    if was_zero && keep_zero {
        format!("{net} {} {}", family(engine), unspecified_like(engine))
    } else {
        format!("{net} {} {engine}", family(engine))
    }
}

fn rewrite_origin(value: &str, rw: &OriginRewrite) -> String {
    if rw.address.is_none() && rw.username.is_none() && rw.session_id.is_none() && !rw.bump_version
    {
        return value.to_owned();
    }
    let Some(mut origin) = Origin::parse(value) else {
        return value.to_owned();
    };
    if let Some(username) = &rw.username {
        origin.username.clone_from(username);
    }
    if let Some(session_id) = &rw.session_id {
        origin.session_id.clone_from(session_id);
    }
    if rw.bump_version {
        if let Some(next) = origin
            .version
            .parse::<u64>()
            .ok()
            .and_then(|v| v.checked_add(1))
        {
            origin.version = next.to_string();
        }
    }
    if let Some(addr) = rw.address {
        origin.addr_type = family(addr).to_owned();
        origin.address = addr.to_string();
    }
    origin.to_value()
}

/// Session attributes rtpengine drops (`process_session_attributes`).
fn drop_session_attribute(name: &str, value: &str, strip_ice: bool) -> bool {
    if ICE_ATTRIBUTES.contains(&name) {
        return strip_ice;
    }
    match name {
        "extmap" | "fingerprint" | "setup" => true,
        "group" => value == "BUNDLE" || value.starts_with("BUNDLE "),
        _ => Direction::from_name(name).is_some(),
    }
}

impl Sdp {
    /// The SDP to send on, rewritten as rtpengine would (see the module docs), with the
    /// loop-protect marker from [`loop_marker`] of `rw.connection`.
    pub fn rewrite(&self, rw: &SdpRewrite) -> Sdp {
        self.rewrite_with_marker(rw, &loop_marker(rw.connection))
    }

    /// [`Sdp::rewrite`] with an explicit loop-protect marker.
    pub fn rewrite_with_marker(&self, rw: &SdpRewrite, marker: &str) -> Sdp {
        let strip_session_ice = rw.media.iter().any(|m| m.ice != IceRewrite::Keep);
        // rtpengine writes the session c= from the first media's stream.
        let keep_session_zero = rw.media.first().is_some_and(|m| m.zero_address);

        let mut session = Vec::with_capacity(self.session.len() + 1);
        for line in &self.session {
            let out = match (line.kind, line.attr()) {
                (b'o', _) => Line::new(b'o', rewrite_origin(&line.value, &rw.origin)),
                (b's', _) => match &rw.session_name {
                    Some(name) => Line::new(b's', name.clone()),
                    None => line.clone(),
                },
                (b'c', _) => Line::new(
                    b'c',
                    rewrite_connection(&line.value, rw.connection, keep_session_zero),
                ),
                (_, Some((name, value)))
                    if drop_session_attribute(name, value, strip_session_ice) =>
                {
                    continue
                }
                _ => line.clone(),
            };
            session.push(out);
        }
        if rw.loop_protect {
            session.push(Line::attribute(format!("rtpengine:{marker}")));
        }

        let fallback = MediaRewrite::rejected(rw.connection);
        let media = self
            .media
            .iter()
            .enumerate()
            .map(|(idx, section)| {
                self.rewrite_media(idx, section, rw.media.get(idx).unwrap_or(&fallback))
            })
            .collect();
        Sdp { session, media }
    }

    fn rewrite_media(&self, idx: usize, section: &MediaSection, rw: &MediaRewrite) -> MediaSection {
        let proto = rw
            .protocol
            .clone()
            .unwrap_or_else(|| section.m.proto.clone());
        let rtp = proto_is_rtp(&proto);
        let active = rw.port != 0;
        let codecs = if rtp { section.codecs() } else { Vec::new() };
        // Like rtpengine, codec lines are only regenerated when there are codecs to write.
        let own_codecs = !codecs.is_empty();
        let ptime = if rtp { section.ptime() } else { None };
        let strip_ice = rw.ice != IceRewrite::Keep;

        let mut mid = None;
        let mut end_of_candidates = false;
        let mut crypto = Vec::new();
        let mut setup = Vec::new();
        let mut fingerprint = Vec::new();
        let mut lines = Vec::with_capacity(section.lines.len() + 8);

        for line in &section.lines {
            if line.kind == b'c' {
                lines.push(Line::new(
                    b'c',
                    rewrite_connection(&line.value, rw.address, rw.zero_address),
                ));
                continue;
            }
            let Some((name, value)) = line.attr() else {
                lines.push(line.clone());
                continue;
            };
            let owned = match name {
                n if ICE_ATTRIBUTES.contains(&n) => strip_ice,
                "rtcp" | "rtcp-mux" | "extmap" => true,
                "sendrecv" | "sendonly" | "recvonly" | "inactive" => true,
                "end-of-candidates" => {
                    end_of_candidates = true;
                    true
                }
                "mid" => {
                    mid.get_or_insert(value);
                    true
                }
                "rtpmap" => own_codecs && parse_rtpmap(value).is_some(),
                "fmtp" => own_codecs && parse_fmtp(value).is_some(),
                "rtcp-fb" => own_codecs && parse_rtcp_fb_pt(value).is_some(),
                "ptime" => ptime.is_some(),
                "crypto" => {
                    crypto.push(line.clone());
                    true
                }
                "setup" => {
                    setup.push(line.clone());
                    true
                }
                "fingerprint" => {
                    fingerprint.push(line.clone());
                    true
                }
                _ => false,
            };
            if !owned {
                lines.push(line.clone());
            }
        }

        if active {
            if let Some(mid) = mid {
                lines.push(Line::attribute(format!("mid:{mid}")));
            }
            for codec in &codecs {
                let Some(rtpmap) = codec.rtpmap_value() else {
                    continue;
                };
                lines.push(Line::attribute(format!("rtpmap:{rtpmap}")));
                if let Some(fmtp) = &codec.fmtp {
                    lines.push(Line::attribute(format!("fmtp:{} {fmtp}", codec.pt)));
                }
                for fb in section.attributes("rtcp-fb") {
                    if parse_rtcp_fb_pt(fb) == Some(codec.pt) {
                        lines.push(Line::attribute(format!("rtcp-fb:{fb}")));
                    }
                }
            }
            let direction = rw.direction.unwrap_or_else(|| self.media_direction(idx));
            lines.push(Line::attribute(direction.as_str()));
            if rtp {
                if let Some(port) = rw.rtcp_port {
                    let mut value = format!("rtcp:{port}");
                    if rw.full_rtcp_attribute {
                        let _ = write!(value, " IN {} {}", family(rw.address), rw.address);
                    }
                    lines.push(Line::attribute(value));
                }
                if rw.rtcp_mux {
                    lines.push(Line::attribute("rtcp-mux"));
                }
            }
            lines.extend(crypto);
            lines.extend(setup);
            lines.extend(fingerprint);
            if let Some(ptime) = ptime {
                lines.push(Line::attribute(format!("ptime:{ptime}")));
            }
            if let IceRewrite::Replace {
                ufrag,
                pwd,
                candidates,
            } = &rw.ice
            {
                lines.push(Line::attribute(format!("ice-ufrag:{ufrag}")));
                lines.push(Line::attribute(format!("ice-pwd:{pwd}")));
                lines.extend(candidates.iter().map(|c| Line::attribute(c.to_value())));
            }
        }
        if end_of_candidates {
            lines.push(Line::attribute("end-of-candidates"));
        }

        MediaSection {
            m: MediaLine {
                kind: section.m.kind.clone(),
                port: rw.port,
                port_count: if active { section.m.port_count } else { None },
                proto,
                formats: section.m.formats.clone(),
            },
            lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Codec;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The captures show SDP with bare newlines; the wire form has CRLF.
    fn crlf(text: &str) -> String {
        text.lines().map(|l| format!("{l}\r\n")).collect()
    }

    fn engine() -> IpAddr {
        ip("127.0.0.1")
    }

    /// What the captured requests asked for: `replace: [origin]` or not, ICE removed,
    /// one audio stream on the ports rtpengine chose.
    fn rewrite_for(replace_origin: bool, port: u16) -> SdpRewrite {
        SdpRewrite {
            origin: OriginRewrite {
                address: replace_origin.then(engine),
                ..OriginRewrite::default()
            },
            session_name: None,
            connection: engine(),
            media: vec![MediaRewrite::new(engine(), port)],
            loop_protect: false,
        }
    }

    fn rewrite_text(input: &str, rw: &SdpRewrite) -> String {
        Sdp::parse(&crlf(input)).unwrap().rewrite(rw).write()
    }

    // ---- captures: reference/captures/ex2.out (ng-protocol.md example B) ----

    const EX2_OFFER: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 198.51.100.7
s=call
c=IN IP4 127.0.0.2
t=0 0
m=audio 40000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
";

    #[test]
    fn capture_ex2_offer() {
        let out = rewrite_text(EX2_OFFER, &rewrite_for(true, 30030));
        assert_eq!(
            out,
            crlf(
                "v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=call
c=IN IP4 127.0.0.1
t=0 0
m=audio 30030 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30031
a=ptime:20
"
            )
        );
        assert_eq!(out.len(), 253, "length in the captured bencode");
    }

    #[test]
    fn capture_ex2_answer() {
        let input = "v=0
o=bob 1 1 IN IP4 203.0.113.9
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 40010 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
";
        let mut sdp = Sdp::parse(&crlf(input)).unwrap();
        // rtpengine copies the offer's ptime into the answer; the call model does that here.
        sdp.media[0].set_ptime(Some(20));
        let out = sdp.rewrite(&rewrite_for(true, 30046)).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=bob 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30046 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30047
a=ptime:20
"
            )
        );
        assert_eq!(out.len(), 206);
    }

    // ---- captures: ex1.out ----

    #[test]
    fn capture_ex1_offer_and_answer() {
        let offer = "v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 40000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
";
        let out = rewrite_text(offer, &rewrite_for(true, 30000));
        assert_eq!(
            out,
            crlf(
                &offer
                    .replace("40000", "30000")
                    .replace("0-15\na=sendrecv\n", "0-15\na=sendrecv\na=rtcp:30001\n")
            )
        );
        assert_eq!(out.len(), 238);

        let answer = "v=0
o=bob 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 40010 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
";
        let out = rewrite_text(answer, &rewrite_for(true, 30012));
        assert_eq!(
            out,
            crlf(
                "v=0
o=bob 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30012 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30013
"
            )
        );
        assert_eq!(out.len(), 194);
    }

    // ---- captures: kamailio-5.6-to-rtpengine.log ----

    #[test]
    fn capture_kamailio_offer_with_codec_mask() {
        let input = "v=0
o=alice 100 100 IN IP4 198.51.100.7
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";
        let mut sdp = Sdp::parse(&crlf(input)).unwrap();
        // codec-mask-PCMU (codec-transcode-PCMA already present): the call model drops PT 0.
        let codecs: Vec<Codec> = sdp.media[0]
            .codecs()
            .into_iter()
            .filter(|c| c.name != "PCMU")
            .collect();
        sdp.media[0].set_codecs(&codecs);
        let out = sdp.rewrite(&rewrite_for(true, 30244)).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=alice 100 100 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30244 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30245
"
            )
        );
        assert_eq!(out.len(), 183);
    }

    // ---- captures: ex4.out (SDES bridging) ----

    const PLAIN_C: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

    const EX4_CRYPTO: [&str; 12] = [
        "1 AEAD_AES_256_GCM inline:O0ScP7smVkvskzceDJ3B0lJtGQh2ztLfmz2UeQ2gRwT11w/gTPEoa6esI+Q",
        "2 AEAD_AES_128_GCM inline:mS1eUO2fzezwBU3Nh1MZ3B1P+ShKJP1Ji+xpsg",
        "3 AES_256_CM_HMAC_SHA1_80 inline:GrBeGD5JZqVbcpY+IXFoWymeT98vgmaa1kEMtJ029+/WHaiPlfEkWm1+Ndg5hw",
        "4 AES_256_CM_HMAC_SHA1_32 inline:uqy9h8b/uMosf9WHekGFZcD8iRPHHRaf3NH8qbYxRH7GaeezuHNDoROWKFxaRw",
        "5 AES_192_CM_HMAC_SHA1_80 inline:t01Vu6cx4ynytT86I6Gl3yUhuhOri6zG1BBGh1EA20xiYfzLH4k",
        "6 AES_192_CM_HMAC_SHA1_32 inline:/ONFCBXWL6JQaG05U7HL4twvczcndzOSMibb/iwEHFKEJqaqJ3w",
        "7 AES_CM_128_HMAC_SHA1_80 inline:MsfOVG8bCsLaPfxs7oIilKBjkhLvsiNOPsBuF6IR",
        "8 AES_CM_128_HMAC_SHA1_32 inline:73fsbpRzXFUrdZwa4oqhDhn0VlfPulEQ4CgUGjSX",
        "9 F8_128_HMAC_SHA1_80 inline:02szrm1OHXGQAWYJ8LsB8cnNVt3Cyk8BcsCpZKpI",
        "10 F8_128_HMAC_SHA1_32 inline:ugyVQTvS8tJ4ENHB/GnxvcXzPHRg6mysJsY4Pqvl",
        "11 NULL_HMAC_SHA1_80 inline:mj5fZ9Aygy6REKbgjP9MN9E17Lgd/e8tA1PMCNY9",
        "12 NULL_HMAC_SHA1_32 inline:aNTJy5oVjfB8BQINh7PMiaT+DE44Bcd1h2yQcJIK",
    ];
    const EX4_FINGERPRINT: &str = "sha-256 8F:BC:02:BA:48:E0:48:70:04:8A:6D:55:3E:EA:01:27:3B:FA:38:39:2F:16:61:12:CB:E7:99:C4:F5:60:8B:E5";

    #[test]
    fn capture_ex4_offer_rtp_to_sdes() {
        let mut sdp = Sdp::parse(&crlf(PLAIN_C)).unwrap();
        // The call model puts the engine's keys and DTLS parameters into the section; added
        // in an order different from rtpengine's on purpose: the rewrite orders them.
        sdp.media[0].set_attributes("fingerprint", &[EX4_FINGERPRINT]);
        sdp.media[0].set_attributes("setup", &["actpass"]);
        sdp.media[0].set_attributes("crypto", &EX4_CRYPTO);
        let mut rw = rewrite_for(true, 30054);
        rw.media[0].protocol = Some("RTP/SAVP".into());
        let out = sdp.rewrite(&rw).write();
        let mut expected = "v=0
o=alice 100 100 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30054 RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30055
"
        .to_owned();
        for c in EX4_CRYPTO {
            expected.push_str(&format!("a=crypto:{c}\n"));
        }
        expected.push_str(&format!(
            "a=setup:actpass\na=fingerprint:{EX4_FINGERPRINT}\n"
        ));
        assert_eq!(out, crlf(&expected));
        assert_eq!(out.len(), 1380);
    }

    #[test]
    fn capture_ex4_answer_sdes_to_rtp() {
        let input = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw
a=sendrecv
";
        let mut sdp = Sdp::parse(&crlf(input)).unwrap();
        // The engine terminates SRTP towards bob: his key is consumed, not passed on.
        sdp.media[0].remove_attributes("crypto");
        let mut rw = rewrite_for(true, 30062);
        rw.media[0].protocol = Some("RTP/AVP".into());
        let out = sdp.rewrite(&rw).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=bob 200 200 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30062 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30063
"
            )
        );
        assert_eq!(out.len(), 181);
    }

    // ---- captures: ex5.out (transcoding) ----

    #[test]
    fn capture_ex5_offer_adds_opus() {
        let mut sdp = Sdp::parse(&crlf(PLAIN_C)).unwrap();
        let mut codecs = sdp.media[0].codecs();
        let opus = Codec {
            pt: 96,
            name: "opus".into(),
            clock_rate: 48000,
            channels: Some(2),
            fmtp: None,
        };
        let te48 = Codec {
            pt: 97,
            name: "telephone-event".into(),
            clock_rate: 48000,
            channels: None,
            fmtp: Some("0-15".into()),
        };
        codecs.insert(1, opus);
        codecs.insert(2, te48);
        sdp.media[0].set_codecs(&codecs);
        let out = sdp.rewrite(&rewrite_for(false, 30152)).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30152 RTP/AVP 0 96 97 101
a=rtpmap:0 PCMU/8000
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/48000
a=fmtp:97 0-15
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30153
"
            )
        );
        assert_eq!(out.len(), 266);
    }

    #[test]
    fn capture_ex5_answer_back_to_pcmu() {
        let input = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
a=sendrecv
";
        let mut sdp = Sdp::parse(&crlf(input)).unwrap();
        let pcmu = Codec::from_static(0).unwrap();
        let te = sdp.media[0]
            .codecs()
            .into_iter()
            .find(|c| c.pt == 101)
            .unwrap();
        sdp.media[0].set_codecs(&[pcmu, te]);
        let out = sdp.rewrite(&rewrite_for(false, 30168)).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30168 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30169
"
            )
        );
        assert_eq!(out.len(), 181);
    }

    #[test]
    fn capture_ex5_unchanged_codecs_without_origin_replace() {
        let out = rewrite_text(PLAIN_C, &rewrite_for(false, 30216));
        assert_eq!(
            out,
            crlf(
                &PLAIN_C
                    .replace("c=IN IP4 127.0.0.2", "c=IN IP4 127.0.0.1")
                    .replace("41000", "30216")
                    .replace("a=sendrecv\n", "a=sendrecv\na=rtcp:30217\n")
            )
        );
        assert_eq!(out.len(), 183);
    }

    // ---- behaviour beyond the captures ----

    const MULTI: &str = "v=0
o=- 7 7 IN IP4 192.0.2.10
s=conf
c=IN IP4 192.0.2.10
b=AS:700
t=0 0
a=x-session-tag:abc
a=sendrecv
m=audio 5000 RTP/AVP 0 9 96
i=voice
c=IN IP4 192.0.2.11
b=AS:80
a=x-vendor:1
a=ptime:20
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
k=prompt
a=maxptime:60
m=video 5002 RTP/AVPF 97
b=TIAS:512000
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack pli
a=rtcp-fb:* ccm fir
a=extmap:1 urn:ietf:params:rtp-hdrext:toffset
a=content:main
a=recvonly
a=rtcp:5003
";

    fn two_media(a: MediaRewrite, v: MediaRewrite) -> SdpRewrite {
        SdpRewrite {
            origin: OriginRewrite {
                address: Some(ip("203.0.113.1")),
                ..OriginRewrite::default()
            },
            session_name: None,
            connection: ip("203.0.113.1"),
            media: vec![a, v],
            loop_protect: false,
        }
    }

    #[test]
    fn several_media_sections_keep_unknown_lines_in_place() {
        let e = ip("203.0.113.1");
        let out = rewrite_text(
            MULTI,
            &two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002)),
        );
        assert_eq!(
            out,
            crlf(
                "v=0
o=- 7 7 IN IP4 203.0.113.1
s=conf
c=IN IP4 203.0.113.1
b=AS:700
t=0 0
a=x-session-tag:abc
m=audio 30000 RTP/AVP 0 9 96
i=voice
c=IN IP4 203.0.113.1
b=AS:80
a=x-vendor:1
k=prompt
a=maxptime:60
a=rtpmap:0 PCMU/8000
a=rtpmap:9 G722/8000
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=sendrecv
a=rtcp:30001
a=ptime:20
m=video 30002 RTP/AVPF 97
b=TIAS:512000
a=rtcp-fb:* ccm fir
a=content:main
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack pli
a=recvonly
a=rtcp:30003
"
            )
        );
    }

    #[test]
    fn media_level_connection_is_rewritten_per_section() {
        let input = "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
m=audio 5000 RTP/AVP 8
c=IN IP4 192.0.2.2
m=audio 5002 RTP/AVP 8
c=IN IP4 192.0.2.3
";
        let rw = two_media(
            MediaRewrite::new(ip("203.0.113.1"), 30000),
            MediaRewrite::new(ip("203.0.113.2"), 30010),
        );
        let sdp = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
        assert_eq!(sdp.media[0].lines[0], Line::new(b'c', "IN IP4 203.0.113.1"));
        assert_eq!(sdp.media[1].lines[0], Line::new(b'c', "IN IP4 203.0.113.2"));
        assert_eq!(sdp.connection_address(), None, "no session c= is invented");
        assert_eq!(sdp.media_connection(1), Some(ip("203.0.113.2")));
    }

    #[test]
    fn ipv6_bridging() {
        let e6 = ip("2001:db8::1");
        let rw = SdpRewrite {
            origin: OriginRewrite {
                address: Some(e6),
                ..OriginRewrite::default()
            },
            session_name: None,
            connection: e6,
            media: vec![MediaRewrite {
                full_rtcp_attribute: true,
                ..MediaRewrite::new(e6, 30000)
            }],
            loop_protect: false,
        };
        let out = rewrite_text(EX2_OFFER, &rw);
        assert_eq!(
            out,
            crlf(
                "v=0
o=alice 2890844526 2890844526 IN IP6 2001:db8::1
s=call
c=IN IP6 2001:db8::1
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30001 IN IP6 2001:db8::1
a=ptime:20
"
            )
        );
        // and back: an IPv6 party bridged to IPv4
        let v6_input = "v=0\no=- 1 1 IN IP6 2001:db8::9\ns=-\nc=IN IP6 2001:db8::9\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
        let out = Sdp::parse(v6_input)
            .unwrap()
            .rewrite(&rewrite_for(true, 30000));
        assert_eq!(out.origin().unwrap().addr_type, "IP4");
        assert_eq!(out.connection_address(), Some(engine()));
    }

    #[test]
    fn hold_with_zero_address_and_sendonly() {
        let input = "v=0
o=alice 1 2 IN IP4 192.0.2.5
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 4000 RTP/AVP 8
c=IN IP4 0.0.0.0
a=sendonly
";
        let kept = rewrite_text(input, &rewrite_for(true, 30000));
        assert_eq!(
            kept,
            crlf(
                "v=0
o=alice 1 2 IN IP4 127.0.0.1
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 30000 RTP/AVP 8
c=IN IP4 0.0.0.0
a=rtpmap:8 PCMA/8000
a=sendonly
a=rtcp:30001
"
            )
        );
        // replace zero-address: the engine address goes in
        let mut rw = rewrite_for(true, 30000);
        rw.media[0].zero_address = false;
        let replaced = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw);
        assert_eq!(replaced.connection_address(), Some(engine()));
        assert_eq!(replaced.media_connection(0), Some(engine()));
        // zero kept across families: written as the engine family's zero
        let mut rw6 = rewrite_for(false, 30000);
        rw6.connection = ip("::1");
        rw6.media[0].address = ip("::1");
        let bridged = Sdp::parse(&crlf(input)).unwrap().rewrite(&rw6);
        assert_eq!(bridged.session[3], Line::new(b'c', "IN IP6 ::"));
    }

    const WEBRTC: &str = "v=0
o=- 4611 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=ice-options:trickle
a=fingerprint:sha-256 AA:BB
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
c=IN IP4 198.51.100.20
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Fx1e
a=ice-pwd:3bJs8Kq7Vl1nS4cdd2b4MxyZ
a=candidate:1 1 udp 2122260223 198.51.100.20 51000 typ host generation 0
a=candidate:2 1 udp 1686052607 203.0.113.77 51000 typ srflx raddr 198.51.100.20 rport 51000
a=remote-candidates:1 198.51.100.20 51000
a=end-of-candidates
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:s1 t1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=ssrc:1001 cname:xyz
";

    #[test]
    fn ice_remove() {
        let mut rw = rewrite_for(true, 30000);
        rw.media[0].protocol = Some("RTP/AVP".into());
        let mut sdp = Sdp::parse(&crlf(WEBRTC)).unwrap();
        // Plain RTP towards the receiver: the call model drops the DTLS role.
        sdp.media[0].remove_attributes("setup");
        let out = sdp.rewrite(&rw).write();
        assert_eq!(
            out,
            crlf(
                "v=0
o=- 4611 2 IN IP4 127.0.0.1
s=-
t=0 0
a=msid-semantic: WMS
m=audio 30000 RTP/AVP 111 0
c=IN IP4 127.0.0.1
a=msid:s1 t1
a=ssrc:1001 cname:xyz
a=mid:0
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtcp-fb:111 transport-cc
a=rtpmap:0 PCMU/8000
a=sendrecv
a=rtcp:30001
a=end-of-candidates
"
            )
        );
        let sdp = Sdp::parse(&out).unwrap();
        assert!(!sdp.media[0].has_ice());
        for name in [
            "ice-ufrag",
            "ice-pwd",
            "ice-options",
            "candidate",
            "remote-candidates",
            "extmap",
        ] {
            assert!(!sdp.has_attribute(name), "{name} left over");
        }
    }

    #[test]
    fn ice_replace_and_rtcp_mux() {
        let e = engine();
        let mut rw = rewrite_for(false, 30000);
        rw.media[0] = MediaRewrite {
            rtcp_port: Some(30000),
            rtcp_mux: true,
            ice: IceRewrite::Replace {
                ufrag: "Ab12".into(),
                pwd: "0123456789abcdefghijkl".into(),
                candidates: vec![IceCandidate {
                    foundation: "f1".into(),
                    component: 1,
                    priority: 2130706431,
                    address: e,
                    port: 30000,
                }],
            },
            ..MediaRewrite::new(e, 30000)
        };
        let sdp = Sdp::parse(&crlf(WEBRTC)).unwrap();
        let mut sdp_in = sdp.clone();
        sdp_in.media[0].set_attributes("fingerprint", &["sha-256 CC:DD"]);
        let out = sdp_in.rewrite(&rw);
        let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            media,
            vec![
                "c=IN IP4 127.0.0.1",
                "a=msid:s1 t1",
                "a=ssrc:1001 cname:xyz",
                "a=mid:0",
                "a=rtpmap:111 opus/48000/2",
                "a=fmtp:111 minptime=10;useinbandfec=1",
                "a=rtcp-fb:111 transport-cc",
                "a=rtpmap:0 PCMU/8000",
                "a=sendrecv",
                "a=rtcp:30000",
                "a=rtcp-mux",
                "a=setup:actpass",
                "a=fingerprint:sha-256 CC:DD",
                "a=ice-ufrag:Ab12",
                "a=ice-pwd:0123456789abcdefghijkl",
                "a=candidate:f1 1 UDP 2130706431 127.0.0.1 30000 typ host",
                "a=end-of-candidates",
            ]
        );
        assert_eq!(
            out.media[0].m.to_string(),
            "audio 30000 UDP/TLS/RTP/SAVPF 111 0"
        );
        assert!(out.media[0].has_ice());
        // session-level ICE, BUNDLE and fingerprint are gone, the rest stays
        let session: Vec<String> = out.session.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            session,
            vec![
                "v=0",
                "o=- 4611 2 IN IP4 127.0.0.1",
                "s=-",
                "t=0 0",
                "a=msid-semantic: WMS"
            ]
        );
    }

    #[test]
    fn ice_keep_leaves_candidates() {
        let mut rw = rewrite_for(false, 30000);
        rw.media[0].ice = IceRewrite::Keep;
        let out = Sdp::parse(&crlf(WEBRTC)).unwrap().rewrite(&rw);
        assert!(out.media[0].has_ice());
        assert_eq!(out.media[0].attributes("candidate").count(), 2);
        assert_eq!(out.session_attribute("ice-options"), Some("trickle"));
    }

    #[test]
    fn rejected_media_gets_port_zero_and_no_engine_lines() {
        let e = ip("203.0.113.1");
        let out = rewrite_text(
            MULTI,
            &two_media(MediaRewrite::new(e, 30000), MediaRewrite::rejected(e)),
        );
        let sdp = Sdp::parse(&out).unwrap();
        assert_eq!(sdp.media[1].m.to_string(), "video 0 RTP/AVPF 97");
        let video: Vec<String> = sdp.media[1].lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            video,
            vec!["b=TIAS:512000", "a=rtcp-fb:* ccm fir", "a=content:main"]
        );
        // a section the rewrite has no entry for is rejected too
        let one = SdpRewrite {
            media: vec![MediaRewrite::new(e, 30000)],
            ..two_media(MediaRewrite::new(e, 1), MediaRewrite::new(e, 1))
        };
        let sdp = Sdp::parse(&crlf(MULTI)).unwrap().rewrite(&one);
        assert_eq!(sdp.media[1].m.port, 0);
        assert!(sdp.media[1].rtcp().is_none());
    }

    #[test]
    fn static_payload_types_get_rtpmap_and_session_direction_moves_to_media() {
        let input = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=inactive\nm=audio 4000 RTP/AVP 18 0 13 99\na=fmtp:18 annexb=no\n";
        let out = Sdp::parse(input)
            .unwrap()
            .rewrite(&rewrite_for(false, 30000));
        assert!(!out.session.iter().any(|l| l.is_attribute("inactive")));
        let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            media,
            vec![
                "a=rtpmap:18 G729/8000",
                "a=fmtp:18 annexb=no",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:13 CN/8000",
                "a=inactive",
                "a=rtcp:30001"
            ]
        );
        // explicit direction wins
        let mut rw = rewrite_for(false, 30000);
        rw.media[0].direction = Some(Direction::RecvOnly);
        assert_eq!(
            Sdp::parse(input).unwrap().rewrite(&rw).media[0].direction(),
            Some(Direction::RecvOnly)
        );
    }

    #[test]
    fn non_rtp_media_keeps_its_format_lines_and_gets_no_rtcp() {
        let input = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=image 4000 udptl t38\na=T38FaxVersion:0\na=T38FaxMaxDatagram:316\na=sendrecv\n";
        let out = Sdp::parse(input)
            .unwrap()
            .rewrite(&rewrite_for(false, 30000));
        let media: Vec<String> = out.media[0].lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            media,
            vec!["a=T38FaxVersion:0", "a=T38FaxMaxDatagram:316", "a=sendrecv"]
        );
        assert_eq!(out.media[0].m.to_string(), "image 30000 udptl t38");
    }

    #[test]
    fn origin_session_name_and_loop_marker() {
        let rw = SdpRewrite {
            origin: OriginRewrite {
                address: Some(engine()),
                username: Some("ngmedia".into()),
                session_id: Some("42".into()),
                bump_version: true,
            },
            session_name: Some("relayed".into()),
            connection: engine(),
            media: vec![MediaRewrite::new(engine(), 30030)],
            loop_protect: true,
        };
        let sdp = Sdp::parse(&crlf(EX2_OFFER)).unwrap();
        let out = sdp.rewrite(&rw);
        assert_eq!(
            out.session[1],
            Line::new(b'o', "ngmedia 42 2890844527 IN IP4 127.0.0.1")
        );
        assert_eq!(out.session_name(), Some("relayed"));
        let marker = loop_marker(engine());
        assert_eq!(marker.len(), 12);
        assert!(marker.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            out.session.last(),
            Some(&Line::attribute(format!("rtpengine:{marker}")))
        );
        assert!(out.has_loop_marker(&marker));
        assert!(!sdp.has_loop_marker(&marker));
        assert_ne!(marker, loop_marker(ip("127.0.0.2")));
        // the marker survives a second pass through a parse/write
        assert!(Sdp::parse(&out.write()).unwrap().has_loop_marker(&marker));
        let explicit = sdp.rewrite_with_marker(&rw, "0123456789ab");
        assert!(explicit.has_loop_marker("0123456789ab"));
        // version that cannot be bumped stays as it is
        assert_eq!(
            rewrite_origin(
                "- 1 18446744073709551615 IN IP4 192.0.2.1",
                &OriginRewrite {
                    bump_version: true,
                    ..OriginRewrite::default()
                }
            ),
            "- 1 18446744073709551615 IN IP4 192.0.2.1"
        );
    }

    #[test]
    fn rewrite_output_round_trips() {
        let e = ip("203.0.113.1");
        let out = rewrite_text(
            MULTI,
            &two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002)),
        );
        assert_eq!(Sdp::parse(&out).unwrap().write(), out);
    }

    /// Cheap deterministic fuzzing: mutated bodies never panic, and whatever parses can be
    /// rewritten into SDP that parses again.
    #[test]
    fn mutated_input_never_panics_and_rewrites_reparse() {
        const ALPHABET: &[u8] = b"am=:/ 0123456789\nIPc.-*xv";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let e = ip("203.0.113.1");
        let rw = two_media(MediaRewrite::new(e, 30000), MediaRewrite::new(e, 30002));
        let mut parsed = 0;
        for base in [MULTI, WEBRTC, EX2_OFFER] {
            for _ in 0..3000 {
                let mut bytes = crlf(base).into_bytes();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
                }
                let text = String::from_utf8(bytes).expect("ASCII mutations keep UTF-8");
                if let Ok(sdp) = Sdp::parse(&text) {
                    parsed += 1;
                    let out = sdp.rewrite(&rw).write();
                    assert!(
                        Sdp::parse(&out).is_ok(),
                        "rewrite of {text:?} gave unparsable {out:?}"
                    );
                }
            }
        }
        assert!(
            parsed > 1000,
            "mutations too destructive to test anything ({parsed})"
        );
    }
}
