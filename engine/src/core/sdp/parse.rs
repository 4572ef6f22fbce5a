//! SDP text -> [`Sdp`]. Accepts CRLF or bare LF line endings and keeps every line's text, so
//! [`Sdp::write`] gives the input back (with CRLF endings). Validation follows rtpengine's
//! `sdp_parse`: the lines the engine depends on (v=, o=, c=, m=) must be well formed, the
//! rest is carried as opaque text. Size and section count are bounded because the body comes
//! straight from the network.

use super::model::{parse_connection, Line, MediaLine, MediaSection, Origin, Sdp, SubSession};

/// Largest SDP body accepted. Kamailio reads ng replies into a 256 KiB buffer and a UDP
/// datagram carries at most ~64 KiB, so no legitimate body comes near this.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Most m= sections accepted: far above any real call (audio + video + data + a few
/// more), low enough that one body cannot make the engine allocate ports without bound.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Most sessions (v= lines) in one body; real bodies have one.
pub const MAX_SESSIONS: usize = 16;

/// Longest excerpt of an offending line quoted in an error.
const EXCERPT_CHARS: usize = 60;

/// rtpengine rejects an m= port count above this ("unsupported").
const MAX_PORT_COUNT: u16 = 10;

/// Why an SDP body was rejected. `line` is 1-based (0 when the body as a whole is at fault),
/// `content` an excerpt of the offending line with control characters escaped.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("Failed to parse SDP: {}", describe(*.line, .reason, .content))]
pub struct SdpError {
    pub line: usize,
    pub reason: String,
    pub content: String,
}

fn describe(line: usize, reason: &str, content: &str) -> String {
    if line == 0 {
        reason.to_owned()
    } else {
        format!("line {line}: {reason} ({content})")
    }
}

impl SdpError {
    fn whole(reason: impl Into<String>) -> SdpError {
        SdpError {
            line: 0,
            reason: reason.into(),
            content: String::new(),
        }
    }

    fn at(line: usize, text: &str, reason: impl Into<String>) -> SdpError {
        SdpError {
            line,
            reason: reason.into(),
            content: excerpt(text),
        }
    }
}

/// The first [`EXCERPT_CHARS`] characters, with control characters escaped so a NUL or an
/// escape sequence in a hostile body cannot reach a log verbatim.
fn excerpt(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Line types of RFC 8866 section 5; rtpengine rejects any other.
const KNOWN_KINDS: &[u8] = b"vosiuepcbtrzkam";

impl Sdp {
    /// Parse an SDP body. Errors name the offending line.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        if text.len() > MAX_SDP_BYTES {
            return Err(SdpError::whole(format!(
                "SDP too large ({} bytes, limit {MAX_SDP_BYTES})",
                text.len()
            )));
        }
        // Line endings and blank lines at the very end are not content.
        let body = text.trim_end_matches(['\r', '\n']);
        if body.is_empty() {
            return Err(SdpError::whole("empty SDP"));
        }

        let mut sdp = Sdp::new(Vec::new(), Vec::new());
        // Per-session and per-section "already seen" state for lines that may appear once.
        let mut session_c = false;
        let mut session_o = false;
        let mut media_c = false;
        // Inside an m= section of the current session.
        let mut in_media = false;

        for (idx, raw) in body.split('\n').enumerate() {
            let n = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            check_chars(n, line)?;
            let bytes = line.as_bytes();
            if bytes.is_empty() {
                return Err(SdpError::at(n, line, "empty line"));
            }
            if bytes.len() < 2 || bytes[1] != b'=' {
                return Err(SdpError::at(n, line, "missing '=' after the line type"));
            }
            let kind = bytes[0];
            if !KNOWN_KINDS.contains(&kind) {
                return Err(SdpError::at(
                    n,
                    line,
                    format!("unknown line type '{}'", kind as char),
                ));
            }
            let value = &line[2..];

            if n == 1 && kind != b'v' {
                return Err(SdpError::at(n, line, "SDP must start with a v= line"));
            }

            match kind {
                b'v' => {
                    if value != "0" {
                        return Err(SdpError::at(n, line, "unsupported SDP version (only v=0)"));
                    }
                    // A further v= line starts another session (rtpengine's `sdp_parse`
                    // keeps a list of sessions and handles their media as one list).
                    if n > 1 {
                        if sdp.more_sessions.len() + 1 == MAX_SESSIONS {
                            return Err(SdpError::at(
                                n,
                                line,
                                format!("more than {MAX_SESSIONS} sessions"),
                            ));
                        }
                        sdp.more_sessions.push(SubSession {
                            first_media: sdp.media.len(),
                            lines: Vec::new(),
                        });
                    }
                    session_c = false;
                    session_o = false;
                    media_c = false;
                    in_media = false;
                }
                b'o' | b's' if in_media => {
                    return Err(SdpError::at(
                        n,
                        line,
                        format!("{}= line inside a media section", kind as char),
                    ))
                }
                b'o' => {
                    if session_o {
                        return Err(SdpError::at(n, line, "more than one o= line"));
                    }
                    session_o = true;
                    if Origin::parse(value).is_none() {
                        return Err(SdpError::at(
                            n,
                            line,
                            "o= line needs username, session id, version, network type, address type and address",
                        ));
                    }
                }
                b'c' => {
                    let seen = if in_media {
                        &mut media_c
                    } else {
                        &mut session_c
                    };
                    if *seen {
                        return Err(SdpError::at(n, line, "more than one c= line in a section"));
                    }
                    *seen = true;
                    if parse_connection(value).is_none() {
                        return Err(SdpError::at(
                            n,
                            line,
                            "c= line must be 'IN IP4|IP6 <address>' with a literal address of that family",
                        ));
                    }
                }
                b'm' => {
                    if sdp.media.len() == MAX_MEDIA_SECTIONS {
                        return Err(SdpError::at(
                            n,
                            line,
                            format!("more than {MAX_MEDIA_SECTIONS} media sections"),
                        ));
                    }
                    let m =
                        parse_media_line(value).map_err(|reason| SdpError::at(n, line, reason))?;
                    sdp.media.push(MediaSection {
                        m,
                        lines: Vec::new(),
                    });
                    media_c = false;
                    in_media = true;
                    continue;
                }
                _ => {}
            }

            let target = match (in_media, sdp.media.last_mut(), sdp.more_sessions.last_mut()) {
                (true, Some(section), _) => &mut section.lines,
                (_, _, Some(more)) => &mut more.lines,
                _ => &mut sdp.session,
            };
            target.push(Line::new(kind, value));
        }
        Ok(sdp)
    }
}

/// Reject control characters other than tab: NUL and friends have no place in SDP text
/// (RFC 8866 excludes NUL, CR and LF from every field).
fn check_chars(n: usize, line: &str) -> Result<(), SdpError> {
    match line.chars().find(|c| c.is_ascii_control() && *c != '\t') {
        Some(c) => Err(SdpError::at(
            n,
            line,
            format!("control character U+{:04X} in line", c as u32),
        )),
        None => Ok(()),
    }
}

/// `<media> <port>[/<count>] <proto> <fmt> ...`
fn parse_media_line(value: &str) -> Result<MediaLine, String> {
    let mut it = value.split_ascii_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err("m= line needs media type, port and protocol".to_owned());
    };
    // rtpengine takes an empty format list as it is (`m=application 0 *`).
    let formats: Vec<String> = it.map(str::to_owned).collect();
    let trailing_space = formats.is_empty() && value.ends_with(' ');
    let (port, count) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port = parse_u16(port).ok_or_else(|| format!("invalid port '{port}' in m= line"))?;
    let port_count = match count {
        None => None,
        Some(c) => Some(
            parse_u16(c)
                .filter(|c| (1..=MAX_PORT_COUNT).contains(c))
                .ok_or_else(|| {
                    format!("invalid port count '{c}' in m= line (1-{MAX_PORT_COUNT})")
                })?,
        ),
    };
    Ok(MediaLine {
        kind: kind.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        trailing_space,
    })
}

fn parse_u16(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngmedia_test_support::sdp_fixture;
    use std::net::IpAddr;

    const BASIC: &str = sdp_fixture!("minimal-audio");

    fn err(text: &str) -> SdpError {
        Sdp::parse(text).unwrap_err()
    }

    #[test]
    fn lossless_round_trip_of_unknown_lines() {
        let text = sdp_fixture!("every-line-kind");
        let sdp = Sdp::parse(text).unwrap();
        assert_eq!(sdp.session.len(), 15);
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.media[0].lines.len(), 8);
        assert_eq!(sdp.media[0].lines[3], Line::new(b'k', "clear:abc"));
        assert_eq!(sdp.media[1].m.proto, "RTP/AVPF");
        assert_eq!(sdp.write(), text);
    }

    #[test]
    fn bare_lf_and_missing_final_newline() {
        let lf = BASIC.replace("\r\n", "\n");
        assert_eq!(Sdp::parse(&lf).unwrap().write(), BASIC);
        let no_final = BASIC.trim_end();
        assert_eq!(Sdp::parse(no_final).unwrap().write(), BASIC);
        let extra_blank = format!("{BASIC}\r\n\r\n");
        assert_eq!(Sdp::parse(&extra_blank).unwrap().write(), BASIC);
    }

    #[test]
    fn media_level_connection_overrides_session() {
        let text = sdp_fixture!("connection-per-section");
        let sdp = Sdp::parse(text).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(sdp.connection_address(), Some(ip("192.0.2.1")));
        assert_eq!(sdp.media_connection(0), Some(ip("198.51.100.5")));
        assert_eq!(sdp.media_connection(1), Some(ip("192.0.2.1")));
        assert_eq!(sdp.media_connection(2), Some(ip("2001:db8::7")));
        assert_eq!(sdp.media[2].m.port_count, Some(2));
        assert_eq!(sdp.media_connection(9), Some(ip("192.0.2.1")));
        assert_eq!(sdp.write(), text);
    }

    #[test]
    fn origin_and_directions() {
        let text = sdp_fixture!("directions-session-and-media");
        let sdp = Sdp::parse(text).unwrap();
        let o = sdp.origin().unwrap();
        assert_eq!(o.username, "alice");
        assert_eq!(o.session_id, "2890844526");
        assert_eq!(o.version, "2890844527");
        assert_eq!((o.net_type.as_str(), o.addr_type.as_str()), ("IN", "IP4"));
        assert_eq!(o.address, "198.51.100.7");
        assert_eq!(sdp.connection_address(), None);
        assert_eq!(sdp.media_direction(0), Direction::SendOnly);
        assert_eq!(sdp.media_direction(1), Direction::RecvOnly);
        assert_eq!(sdp.media[1].direction(), None);
        assert!(sdp.has_attribute("sendonly"));
        assert!(sdp.has_attribute("recvonly"));
        assert!(!sdp.has_attribute("inactive"));
        let plain = Sdp::parse(BASIC).unwrap();
        assert_eq!(plain.media_direction(0), Direction::SendRecv);
    }

    use super::super::model::Direction;

    #[test]
    fn errors_name_the_line() {
        let e = err("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n");
        assert_eq!(
            (e.line, e.reason.as_str()),
            (1, "SDP must start with a v= line")
        );
        assert_eq!(
            e.to_string(),
            "Failed to parse SDP: line 1: SDP must start with a v= line (o=- 1 1 IN IP4 192.0.2.1)"
        );

        let e = err("v=1\r\n");
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("version"));

        let e = err(&BASIC.replace("m=audio 4000", "m=audio 70000"));
        assert_eq!(e.line, 6);
        assert_eq!(
            e.to_string(),
            "Failed to parse SDP: line 6: invalid port '70000' in m= line (m=audio 70000 RTP/AVP 0)"
        );
        assert_eq!(err(&BASIC.replace("m=audio 4000", "m=audio x")).line, 6);
        assert_eq!(
            err(&BASIC.replace("m=audio 4000", "m=audio 4000/0")).line,
            6
        );
        assert_eq!(
            err(&BASIC.replace("m=audio 4000", "m=audio 4000/11")).line,
            6
        );

        let e = err(&BASIC.replace("m=audio 4000 RTP/AVP 0", "m=audio 4000"));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (6, "m= line needs media type, port and protocol")
        );
        assert_eq!(
            err(&BASIC.replace("m=audio 4000 RTP/AVP 0", "m=audio")).line,
            6
        );

        let e = err(&BASIC.replace("t=0 0", "this line has no equals"));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (5, "missing '=' after the line type")
        );
        assert!(e.to_string().ends_with("(this line has no equals)"));

        let e = err(&BASIC.replace("t=0 0", "x=foo"));
        assert_eq!((e.line, e.reason.as_str()), (5, "unknown line type 'x'"));

        let e = err(&BASIC.replace("s=-", "s=a\0b"));
        assert_eq!(e.line, 3);
        assert_eq!(e.reason, "control character U+0000 in line");
        assert_eq!(e.content, "s=a\\u{0}b");

        let e = err(&BASIC.replace("s=-", "s=a\rb"));
        assert_eq!(e.line, 3);

        let e = err(&BASIC.replace("t=0 0\r\n", "\r\nt=0 0\r\n"));
        assert_eq!((e.line, e.reason.as_str()), (5, "empty line"));

        assert_eq!(
            err(&BASIC.replace("IN IP4 192.0.2.1\r\nt", "IN IP6 192.0.2.1\r\nt")).line,
            4
        );
        assert_eq!(
            err(&BASIC.replace("c=IN IP4 192.0.2.1", "c=IN IP4 pbx.example.com")).line,
            4
        );
        assert_eq!(
            err(&BASIC.replace("o=- 1 1 IN IP4 192.0.2.1", "o=- 1 1")).line,
            2
        );
        assert_eq!(err(&format!("{BASIC}o=- 1 1 IN IP4 192.0.2.1\r\n")).line, 7);
        assert_eq!(
            err(&format!("{BASIC}s=x\r\n")).reason,
            "s= line inside a media section"
        );
        assert_eq!(
            err(&format!("{BASIC}v=1\r\n")).reason,
            "unsupported SDP version (only v=0)"
        );
        assert_eq!(
            err(&format!("{BASIC}v=0\r\nm=audio 4002 RTP/AVP 0\r\ns=x\r\n")).reason,
            "s= line inside a media section"
        );
        assert_eq!(
            err(&format!(
                "{BASIC}c=IN IP4 192.0.2.9\r\nc=IN IP4 192.0.2.9\r\n"
            ))
            .line,
            8
        );
    }

    /// rtpengine takes an m= line without formats as it is (its test "GH #1461"), a space
    /// after the protocol included.
    #[test]
    fn media_line_without_formats() {
        for tail in ["*", "* "] {
            let text = format!("{BASIC}m=application 0 RTP/AVP 124\r\nm=application 0 {tail}\r\n");
            let sdp = Sdp::parse(&text).unwrap();
            assert_eq!(sdp.media.len(), 3);
            assert_eq!(sdp.media[2].m.proto, "*");
            assert!(sdp.media[2].m.formats.is_empty());
            assert_eq!(sdp.write(), text);
        }
    }

    /// Several sessions (v= lines) in one body: one media list, each session's lines kept
    /// before its first m= section; the once-only checks apply per session.
    #[test]
    fn several_sessions() {
        let second = "v=0\r\no=- 1 2 IN IP4 192.0.2.9\r\ns=two\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\na=recvonly\r\n";
        let text = format!(
            "{BASIC}{second}m=audio 5000 RTP/AVP 8\r\nm=audio 5002 RTP/AVP 8\r\nc=IN IP4 192.0.2.10\r\n"
        );
        let sdp = Sdp::parse(&text).unwrap();
        assert_eq!(sdp.media.len(), 3);
        assert_eq!(sdp.more_sessions.len(), 1);
        assert_eq!(sdp.more_sessions[0].first_media, 1);
        assert_eq!(sdp.more_sessions[0].lines.len(), 6);
        assert_eq!(sdp.write(), text);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(sdp.media_connection(0), Some(ip("192.0.2.1")));
        assert_eq!(sdp.media_connection(1), Some(ip("192.0.2.9")));
        assert_eq!(sdp.media_connection(2), Some(ip("192.0.2.10")));
        assert_eq!(sdp.media_direction(0), Direction::SendRecv);
        assert_eq!(sdp.media_direction(1), Direction::RecvOnly);
        assert_eq!(sdp.origin().unwrap().version, "1");

        // A session without media, then one with: the lines stay in order.
        let text = format!("{BASIC}{second}{second}m=audio 5000 RTP/AVP 8\r\n");
        let sdp = Sdp::parse(&text).unwrap();
        assert_eq!(sdp.more_sessions.len(), 2);
        assert_eq!(sdp.write(), text);
        // Trailing session without media.
        let text = format!("{BASIC}{second}");
        assert_eq!(Sdp::parse(&text).unwrap().write(), text);

        // One version for all sessions.
        let mut sdp = Sdp::parse(&format!("{BASIC}{second}")).unwrap();
        sdp.set_origin_version(7);
        assert_eq!(sdp.write().matches(" 7 IN IP4 ").count(), 2);

        // Insert and remove keep each section in its session.
        let mut sdp = Sdp::parse(&format!("{BASIC}{second}m=audio 5000 RTP/AVP 8\r\n")).unwrap();
        let extra = sdp.media[0].clone();
        sdp.insert_media(0, extra);
        assert_eq!(sdp.more_sessions[0].first_media, 2);
        sdp.remove_media(0);
        sdp.remove_media(0);
        assert_eq!(sdp.more_sessions[0].first_media, 0);
        assert_eq!(sdp.media.len(), 1);

        // Once-only lines are counted per session.
        assert_eq!(
            err(&format!(
                "{BASIC}v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
            ))
            .reason,
            "more than one o= line"
        );
        let mut many = BASIC.to_owned();
        for _ in 1..MAX_SESSIONS {
            many.push_str(second);
        }
        assert_eq!(
            Sdp::parse(&many).unwrap().more_sessions.len(),
            MAX_SESSIONS - 1
        );
        many.push_str(second);
        assert_eq!(
            err(&many).reason,
            format!("more than {MAX_SESSIONS} sessions")
        );
    }

    #[test]
    fn whole_body_errors() {
        let e = err("");
        assert_eq!(
            (e.line, e.to_string().as_str()),
            (0, "Failed to parse SDP: empty SDP")
        );
        assert_eq!(err("\r\n\r\n").reason, "empty SDP");

        let mut big = BASIC.to_owned();
        while big.len() <= MAX_SDP_BYTES {
            big.push_str("a=x-padding:0123456789012345678901234567890123456789\r\n");
        }
        let e = err(&big);
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("too large"), "{e}");
    }

    #[test]
    fn media_section_limit() {
        let mut text =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n".to_owned();
        for i in 0..MAX_MEDIA_SECTIONS {
            text.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 4000 + 2 * i));
        }
        assert_eq!(Sdp::parse(&text).unwrap().media.len(), MAX_MEDIA_SECTIONS);
        text.push_str("m=audio 9000 RTP/AVP 0\r\n");
        let e = err(&text);
        assert_eq!(e.line, 5 + MAX_MEDIA_SECTIONS + 1);
        assert_eq!(e.reason, "more than 64 media sections");
    }

    #[test]
    fn long_lines_are_truncated_in_errors() {
        let long = format!("s={}", "y".repeat(500));
        let e = err(&format!("{long}\r\n"));
        assert_eq!(e.content.chars().count(), EXCERPT_CHARS + 3);
        assert!(e.content.ends_with("..."));
    }
}
