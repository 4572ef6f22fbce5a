//! Rewriting an SDP for the other party, the way rtpengine does it (`sdp_replace` and
//! `print_sdp_media_section` in daemon/sdp.c, release 10.5), so that phones see byte-for-byte
//! the same SDP after the swap.
//!
//! What rtpengine does, and so what this does:
//! - Session level: o= address (and optionally username, session id, version) and the
//!   session c= address replaced; s= optionally replaced; direction attributes, ICE
//!   attributes (unless ICE is kept), a=setup, a=fingerprint, a=group:BUNDLE and, with
//!   `strip extmap`, a=extmap dropped; everything else kept in place; with `loop protect`, `a=rtpengine:<marker>` is
//!   appended after the session lines.
//! - Media level: the m= port/protocol and any c= address replaced; the attributes the engine
//!   owns are removed from where they were (rtpmap/fmtp/rtcp-fb of known codecs, ptime,
//!   direction, rtcp, rtcp-mux, mid, end-of-candidates, crypto, setup, fingerprint,
//!   ICE unless kept); every other line (b=, i=, k=, unknown a=) stays where it was; then the
//!   engine's block is appended at the end of the section, in this order:
//!   `a=mid`, per codec in m= order `a=rtpmap`/`a=fmtp`/`a=rtcp-fb`, direction,
//!   `a=rtcp`, `a=rtcp-mux`, `a=crypto`..., `a=setup`, `a=fingerprint`, `a=ptime`,
//!   `a=ice-ufrag`, `a=ice-pwd`, `a=candidate`..., and `a=end-of-candidates` if the input
//!   had it.
//! - An `m=message` section (MSRP) is copied as it is, whatever the section's rewrite says;
//!   only when it has no c= of its own does it get a copy of the input's session c= (before
//!   its first b=/k=/a= line), because the session c= now names the engine
//!   (`synth_session_connection`).
//! - A rejected section (port 0) keeps only its m= line (port 0), c=, its a=mid and the lines
//!   the engine does not own: rtpengine prints no engine block for an inactive section.
//!
//! The rewrite takes codecs, ptime and SRTP attributes from the section itself: the call
//! model edits those first ([`MediaSection::set_codecs`], [`MediaSection::set_ptime`],
//! [`MediaSection::set_attributes`] for `crypto`/`setup`/`fingerprint`) and the rewrite
//! only moves them to rtpengine's place.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::{
    parse_connection, parse_fmtp, parse_rtcp_fb_pt, parse_rtpmap, proto_is_rtp, Direction, Line,
    MediaLine, MediaSection, Origin, Sdp, SubSession, ICE_ATTRIBUTES,
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
    /// Remove `a=extmap` lines (flag `strip extmap`); rtpengine keeps them otherwise.
    pub strip_extmap: bool,
    /// Always rewrite a session-level c= (`replace: session-connection`). Without it a
    /// session's c= is rewritten only when one of its m= sections has no c= of its own and
    /// so uses it (rtpengine 10.5's rule); otherwise it is passed on as it came.
    pub session_connection: bool,
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
    /// Leave the party's c=, m= (port, protocol, formats), `a=rtcp` and `a=rtcp-mux` as
    /// they are (`ICE: force-relay`: the engine is only a relay candidate).
    pub keep_transport: bool,
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
            keep_transport: false,
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
        /// Announce trickle ICE (`a=ice-options:trickle`, then `a=end-of-candidates`).
        trickle: bool,
    },
    /// Keep the party's ICE, keying (`a=crypto`, `a=setup`, `a=fingerprint`) and extmap
    /// lines where they are and add our candidates after everything else (`ICE: optional`
    /// passthrough: the parties do ICE between themselves).
    Alongside { candidates: Vec<IceCandidate> },
}

impl IceRewrite {
    /// Whether the party's ICE attributes go.
    fn strips(&self) -> bool {
        matches!(self, IceRewrite::Remove | IceRewrite::Replace { .. })
    }
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
    /// A relay candidate (`ICE: force-relay`), its related address itself.
    pub relay: bool,
}

impl IceCandidate {
    /// The attribute value: `candidate:F C UDP P ADDR PORT typ host`, or `typ relay raddr
    /// ADDR rport PORT`.
    pub fn to_value(&self) -> String {
        let (a, p) = (self.address, self.port);
        let head = format!(
            "candidate:{} {} UDP {} {a} {p}",
            self.foundation, self.component, self.priority
        );
        if self.relay {
            format!("{head} typ relay raddr {a} rport {p}")
        } else {
            format!("{head} typ host")
        }
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
fn drop_session_attribute(name: &str, value: &str, strip_ice: bool, strip_extmap: bool) -> bool {
    if ICE_ATTRIBUTES.contains(&name) {
        return strip_ice;
    }
    match name {
        "extmap" => strip_extmap,
        "fingerprint" | "setup" => true,
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
        let strip_session_ice = rw.media.iter().any(|m| m.ice.strips());
        // rtpengine leaves the session alone when its first media passes through, and its
        // c= when the engine is only a relay candidate.
        let session_untouched = matches!(
            rw.media.first().map(|m| &m.ice),
            Some(IceRewrite::Alongside { .. })
        );
        let keep_session_c = rw.media.first().is_some_and(|m| m.keep_transport);
        // rtpengine writes a session's c= from the stream of the session's first media.
        let session_lines = |lines: &[Line], first_media: usize, end_media: usize| {
            let keep_zero = rw.media.get(first_media).is_some_and(|m| m.zero_address);
            let media = self.media.get(first_media..end_media).unwrap_or_default();
            let used_c = !keep_session_c
                && (rw.session_connection
                    || media
                        .iter()
                        .any(|m| !m.lines.iter().any(|l| l.kind == b'c')));
            let mut out = Vec::with_capacity(lines.len() + 1);
            for line in lines {
                let new = match (line.kind, line.attr()) {
                    (b'o', _) => Line::new(b'o', rewrite_origin(&line.value, &rw.origin)),
                    (b's', _) => match &rw.session_name {
                        Some(name) => Line::new(b's', name.clone()),
                        None => line.clone(),
                    },
                    (b'c', _) if used_c => Line::new(
                        b'c',
                        rewrite_connection(&line.value, rw.connection, keep_zero),
                    ),
                    (_, Some((name, value)))
                        if !session_untouched
                            && drop_session_attribute(
                                name,
                                value,
                                strip_session_ice,
                                rw.strip_extmap,
                            ) =>
                    {
                        continue
                    }
                    _ => line.clone(),
                };
                out.push(new);
            }
            if rw.loop_protect {
                out.push(Line::attribute(format!("rtpengine:{marker}")));
            }
            out
        };
        let ends: Vec<usize> = self
            .more_sessions
            .iter()
            .map(|s| s.first_media)
            .chain([self.media.len()])
            .collect();
        let session = session_lines(&self.session, 0, ends[0]);
        let more_sessions = self
            .more_sessions
            .iter()
            .zip(&ends[1..])
            .map(|(s, &end)| SubSession {
                first_media: s.first_media,
                lines: session_lines(&s.lines, s.first_media, end),
            })
            .collect();

        let fallback = MediaRewrite::rejected(rw.connection);
        let media = self
            .media
            .iter()
            .enumerate()
            .map(|(idx, section)| {
                self.rewrite_media(
                    idx,
                    section,
                    rw.media.get(idx).unwrap_or(&fallback),
                    rw.strip_extmap,
                )
            })
            .collect();
        Sdp {
            session,
            media,
            more_sessions,
        }
    }

    fn rewrite_media(
        &self,
        idx: usize,
        section: &MediaSection,
        rw: &MediaRewrite,
        strip_extmap: bool,
    ) -> MediaSection {
        if section.m.passes_untouched() {
            return self.untouched_media(idx, section);
        }
        let proto = match &rw.protocol {
            Some(p) if !rw.keep_transport => p.clone(),
            _ => section.m.proto.clone(),
        };
        let rtp = proto_is_rtp(&proto);
        let active = rw.port != 0;
        let codecs = if rtp { section.codecs() } else { Vec::new() };
        // Like rtpengine, codec lines are only regenerated when there are codecs to write.
        let own_codecs = !codecs.is_empty();
        let ptime = if rtp { section.ptime() } else { None };
        let strip_ice = rw.ice.strips();
        let passthrough = matches!(rw.ice, IceRewrite::Alongside { .. });
        let strip_extmap = strip_extmap && !passthrough;
        let keep = rw.keep_transport;

        let mut mid = None;
        let mut end_of_candidates = false;
        let mut crypto = Vec::new();
        let mut setup = Vec::new();
        let mut fingerprint = Vec::new();
        let mut lines = Vec::with_capacity(section.lines.len() + 8);

        for line in &section.lines {
            if line.kind == b'c' && keep {
                lines.push(line.clone());
                continue;
            }
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
                // The party's own relay candidates give way to the engine (force-relay).
                "candidate" if keep && value.split_ascii_whitespace().any(|t| t == "relay") => true,
                n if ICE_ATTRIBUTES.contains(&n) => strip_ice,
                "rtcp" | "rtcp-mux" => !keep,
                "extmap" => strip_extmap,
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
                "crypto" | "setup" | "fingerprint" if passthrough => false,
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

        // a=mid is written for a rejected section too (rtpengine's
        // `print_sdp_media_section`), so a BUNDLE peer can still tell the sections apart.
        if let Some(mid) = mid {
            lines.push(Line::attribute(format!("mid:{mid}")));
        }
        if active {
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
                trickle,
            } = &rw.ice
            {
                lines.push(Line::attribute(format!("ice-ufrag:{ufrag}")));
                lines.push(Line::attribute(format!("ice-pwd:{pwd}")));
                if *trickle {
                    lines.push(Line::attribute("ice-options:trickle"));
                    end_of_candidates = true;
                }
                lines.extend(candidates.iter().map(|c| Line::attribute(c.to_value())));
            }
            if let IceRewrite::Alongside { candidates } = &rw.ice {
                lines.extend(candidates.iter().map(|c| Line::attribute(c.to_value())));
            }
        }
        if end_of_candidates {
            lines.push(Line::attribute("end-of-candidates"));
        }

        MediaSection {
            m: MediaLine {
                kind: section.m.kind.clone(),
                port: if keep { section.m.port } else { rw.port },
                port_count: if active { section.m.port_count } else { None },
                proto,
                formats: section.m.formats.clone(),
                trailing_space: section.m.trailing_space,
            },
            lines,
        }
    }
}

impl Sdp {
    /// `section` as received; without a c= of its own it gets the session's original c=.
    fn untouched_media(&self, idx: usize, section: &MediaSection) -> MediaSection {
        let mut out = section.clone();
        let has_connection = section.lines.iter().any(|l| l.kind == b'c');
        let session_connection = self.session_of(idx).iter().find(|l| l.kind == b'c');
        if let (false, Some(c)) = (has_connection, session_connection) {
            let at = out
                .lines
                .iter()
                .position(|l| matches!(l.kind, b'b' | b'k' | b'a'))
                .unwrap_or(out.lines.len());
            out.lines.insert(at, c.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests;
