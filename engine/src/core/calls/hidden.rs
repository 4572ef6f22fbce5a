//! `sdp-media-remove` (rtpengine's `sdp_media_remove`): an offer's m= sections of the named
//! media types never reach the other party. The offerer still gets an answer for every
//! section it offered, RFC 3264 §6 style: each hidden one comes back rejected (port 0).
//!
//! The engine keeps both parties' media lists index-aligned; the offerer remembers which of
//! its sections it hid (`Leg::hidden_media`). Every SDP the other party sends is padded with
//! a rejected placeholder at those indices before it is negotiated, so the alignment holds
//! for answers and re-offers alike, and every SDP the offerer sends loses those sections on
//! the way out.

use std::net::IpAddr;

use super::model::Leg;
use crate::core::sdp::{Line, MediaLine, MediaSection, Sdp};

/// The media types rtpengine knows by name; `other` in the list means any type but these.
const KNOWN_TYPES: [&str; 6] = ["audio", "video", "image", "message", "text", "application"];

/// Whether a `sdp-media-remove` entry is valid: a known media type or `other`.
pub fn is_removable_type(name: &str) -> bool {
    name == "other" || KNOWN_TYPES.contains(&name)
}

fn named(list: &[String], kind: &str) -> bool {
    let known = KNOWN_TYPES.contains(&kind);
    list.iter()
        .any(|t| if t == "other" { !known } else { t == kind })
}

/// The sections of an offer that `list` hides from the peer.
pub(super) fn hidden_indices(sdp: &Sdp, list: &[String]) -> Vec<usize> {
    if list.is_empty() {
        return Vec::new();
    }
    (0..sdp.media.len())
        .filter(|&i| named(list, &sdp.media[i].m.kind))
        .collect()
}

/// The m= lines `owner` last sent, where it hid some of them.
fn owner_lines(owner: &Leg) -> Option<Vec<MediaLine>> {
    let sdp = Sdp::parse(owner.sdp_in.as_deref()?).ok()?;
    Some(sdp.media.into_iter().map(|s| s.m).collect())
}

/// `sdp` (from the peer of `owner`) with a rejected section at each index `owner` hid, so
/// that it lines up with `owner`'s sections; `None` when `owner` hid nothing.
pub(super) fn pad(sdp: &Sdp, owner: &Leg) -> Option<Sdp> {
    if owner.hidden_media.is_empty() {
        return None;
    }
    let lines = owner_lines(owner)?;
    let mut out = sdp.clone();
    for &i in &owner.hidden_media {
        let Some(m) = lines.get(i) else { continue };
        let placeholder = MediaSection {
            m: MediaLine {
                port: 0,
                port_count: None,
                ..m.clone()
            },
            lines: Vec::new(),
        };
        out.insert_media(i, placeholder);
    }
    Some(out)
}

/// Finish an outgoing SDP from `from` to `to`: the sections `from` hid are left out, and
/// each section `to` hid comes back as rtpengine writes a rejected one (`m=TYPE 0 PROTO
/// FORMATS` and a zero `c=`).
pub(super) fn finish(out: &mut Sdp, from: &Leg, to: &Leg, local: IpAddr) {
    if !to.hidden_media.is_empty() {
        if let Some(lines) = owner_lines(to) {
            let zero = if local.is_ipv4() {
                "IN IP4 0.0.0.0"
            } else {
                "IN IP6 ::"
            };
            for &i in &to.hidden_media {
                let (Some(m), Some(section)) = (lines.get(i), out.media.get_mut(i)) else {
                    continue;
                };
                *section = MediaSection {
                    m: MediaLine {
                        port: 0,
                        port_count: None,
                        ..m.clone()
                    },
                    lines: vec![Line::new(b'c', zero)],
                };
            }
        }
    }
    let mut drop: Vec<usize> = from
        .hidden_media
        .iter()
        .copied()
        .filter(|&i| i < out.media.len())
        .collect();
    drop.sort_unstable();
    drop.dedup();
    for i in drop.into_iter().rev() {
        out.remove_media(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(kinds: &[&str]) -> Sdp {
        let mut text = String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
        for (i, k) in kinds.iter().enumerate() {
            text.push_str(&format!(
                "m={k} {} RTP/AVP {}\r\nc=IN IP4 192.0.2.1\r\n",
                2000 + 2 * i,
                96 + i
            ));
        }
        Sdp::parse(&text).unwrap()
    }

    #[test]
    fn types_and_other() {
        let s = sdp(&["audio", "video", "foobar", "video"]);
        assert_eq!(hidden_indices(&s, &["video".into()]), vec![1, 3]);
        assert_eq!(hidden_indices(&s, &["other".into()]), vec![2]);
        assert_eq!(hidden_indices(&s, &[]), Vec::<usize>::new());
        assert!(is_removable_type("application") && !is_removable_type("foobar"));
    }

    #[test]
    fn pads_and_gives_back_rejected_sections() {
        let offer = sdp(&["audio", "video"]);
        let mut owner = Leg::new("a", 0, 0);
        owner.sdp_in = Some(offer.write());
        owner.hidden_media = vec![0];
        let answer = sdp(&["video"]);
        let padded = pad(&answer, &owner).unwrap();
        assert_eq!(padded.media.len(), 2);
        assert_eq!(
            (padded.media[0].m.kind.as_str(), padded.media[0].m.port),
            ("audio", 0)
        );
        assert_eq!(padded.media[1].m.kind, "video");

        let mut out = padded.clone();
        let peer = Leg::new("b", 0, 0);
        finish(&mut out, &peer, &owner, "203.0.113.1".parse().unwrap());
        let text = out.write();
        assert!(
            text.contains("m=audio 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nm=video"),
            "{text}"
        );

        // What the owner sends loses the hidden sections.
        let mut out = offer.clone();
        finish(&mut out, &owner, &peer, "203.0.113.1".parse().unwrap());
        assert_eq!(out.media.len(), 1);
        assert_eq!(out.media[0].m.kind, "video");
    }
}
