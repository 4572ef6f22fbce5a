//! Arbitrary attribute edits asked for by the proxy (ng `sdp-attr` dictionary and the
//! `sdp-attr-add|remove|substitute-<level>-…` flags; rtpengine's `sdp_manipulations`,
//! applied as its `__attr_manip` and `sdp_manipulations_add` do).
//!
//! Edits run on the SDP as it leaves the engine, so they also reach attributes the engine
//! wrote itself (`a=rtpmap`, `a=fmtp`, `a=rtcp`, …):
//! - `remove` and `substitute` match an attribute (the text after `a=`, case-insensitively)
//!   at the points rtpengine checks while writing it: its name (`fmtp`), for the
//!   payload-tagged attributes `rtpmap`, `fmtp` and `rtcp-fb` also `name:PT` (`fmtp:101`),
//!   and the whole attribute (`fmtp:101 0-16`). A removed line disappears; a substituted
//!   one is replaced whole by the new text.
//! - `add` appends `a=<text>` lines at the end of the level (after the session attributes,
//!   or at the end of each m= section of that media type), in the order given.
//!
//! Levels: the session (`none`/`global`), and the media types `audio`, `video`, `image`,
//! `message`, `text`, `application` (each edit applies to every m= section of that type).

use super::model::{Line, Sdp};

/// The edits for one level (rtpengine `struct sdp_manipulations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrEdits {
    /// Attribute texts to append, without `a=` (a leading `a=` is accepted and dropped).
    pub add: Vec<String>,
    /// Attributes to drop (name, `name:PT` or the whole text).
    pub remove: Vec<String>,
    /// `(from, to)`: an attribute matching `from` is written as `a=<to>`.
    pub substitute: Vec<(String, String)>,
}

impl AttrEdits {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.substitute.is_empty()
    }
}

/// Media types a media-level edit may name (rtpengine `codec_get_type`).
pub const MEDIA_LEVELS: [&str; 6] = ["audio", "video", "image", "message", "text", "application"];

/// Edits per level for one offer or answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpManipulations {
    /// Session level (`none` / `global`).
    pub session: AttrEdits,
    /// Media level, by media type (one of [`MEDIA_LEVELS`]), each type at most once.
    pub media: Vec<(String, AttrEdits)>,
}

impl SdpManipulations {
    pub fn is_empty(&self) -> bool {
        self.session.is_empty() && self.media.iter().all(|(_, e)| e.is_empty())
    }

    /// The edits of a level by its ng name: `none`/`global` (or empty) for the session,
    /// a media type otherwise. `None` for a name rtpengine does not know.
    pub fn level_mut(&mut self, name: &str) -> Option<&mut AttrEdits> {
        if name.is_empty() || name == "none" || name == "global" {
            return Some(&mut self.session);
        }
        let kind = MEDIA_LEVELS.iter().find(|m| **m == name)?;
        match self.media.iter().position(|(k, _)| k == kind) {
            Some(i) => Some(&mut self.media[i].1),
            None => {
                self.media.push(((*kind).to_owned(), AttrEdits::default()));
                self.media.last_mut().map(|(_, e)| e)
            }
        }
    }

    fn media_level(&self, kind: &str) -> Option<&AttrEdits> {
        self.media
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(kind))
            .map(|(_, e)| e)
    }
}

/// The prefixes of `text` (an attribute without `a=`) at which rtpengine looks for a match,
/// shortest first.
fn match_points(text: &str) -> impl Iterator<Item = &str> {
    let (name, value) = match text.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (text, None),
    };
    let tagged = match value {
        Some(v) if matches!(name, "rtpmap" | "fmtp" | "rtcp-fb") => {
            v.find(' ').map(|sp| &text[..name.len() + 1 + sp])
        }
        _ => None,
    };
    std::iter::once(name)
        .chain(tagged)
        .chain(value.is_some().then_some(text))
}

fn edit_lines(lines: &mut Vec<Line>, edits: &AttrEdits) {
    if !edits.remove.is_empty() || !edits.substitute.is_empty() {
        lines.retain_mut(|line| {
            if line.kind != b'a' {
                return true;
            }
            let mut substitute = None;
            for point in match_points(&line.value) {
                if edits.remove.iter().any(|r| r.eq_ignore_ascii_case(point)) {
                    return false;
                }
                if let Some((_, to)) = edits
                    .substitute
                    .iter()
                    .find(|(from, _)| from.eq_ignore_ascii_case(point))
                {
                    substitute = Some(to);
                    break;
                }
            }
            if let Some(to) = substitute {
                line.value.clone_from(to);
            }
            true
        });
    }
    for add in &edits.add {
        let text = add.strip_prefix("a=").unwrap_or(add);
        lines.push(Line::attribute(text));
    }
}

impl Sdp {
    /// Apply the proxy's attribute edits to this (outgoing) SDP.
    pub fn manipulate(&mut self, m: &SdpManipulations) {
        if m.is_empty() {
            return;
        }
        edit_lines(&mut self.session, &m.session);
        for section in &mut self.media {
            if let Some(edits) = m.media_level(&section.m.kind) {
                edit_lines(&mut section.lines, edits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngmedia_test_support::sdp_fixture;

    const SDP: &str = sdp_fixture!("sdp-attr-audio-video");

    fn edited(m: &SdpManipulations) -> String {
        let mut sdp = Sdp::parse(SDP).unwrap();
        sdp.manipulate(m);
        sdp.write()
    }

    #[test]
    fn match_points_are_rtpengines() {
        fn p(t: &str) -> Vec<&str> {
            match_points(t).collect()
        }
        assert_eq!(p("sendrecv"), ["sendrecv"]);
        assert_eq!(p("test:x y"), ["test", "test:x y"]);
        assert_eq!(p("fmtp:101 0-16"), ["fmtp", "fmtp:101", "fmtp:101 0-16"]);
        assert_eq!(
            p("rtpmap:0 PCMU/8000"),
            ["rtpmap", "rtpmap:0", "rtpmap:0 PCMU/8000"]
        );
        assert_eq!(p("fmtp:101"), ["fmtp", "fmtp:101"]);
    }

    #[test]
    fn remove_add_substitute_per_level() {
        let mut m = SdpManipulations::default();
        m.level_mut("global").unwrap().remove.push("quux".into());
        let audio = m.level_mut("audio").unwrap();
        audio.remove.push("TEST".into());
        audio.remove.push("fmtp:101".into());
        audio.add.push("foo".into());
        audio.add.push("a=bar:1".into());
        m.level_mut("none")
            .unwrap()
            .substitute
            .push(("test1".into(), "test2".into()));
        let out = edited(&m);
        assert!(out.contains("t=0 0\r\na=test2\r\nm=audio"), "{out}");
        assert!(!out.contains("a=fmtp"), "{out}");
        assert!(!out.contains("a=test:"), "{out}");
        assert!(
            out.contains("a=quux\r\na=sendrecv\r\na=foo\r\na=bar:1\r\nm=video"),
            "{out}"
        );
        // The video section is another level: untouched.
        assert!(
            out.ends_with("a=rtpmap:96 VP8/90000\r\na=quux\r\n"),
            "{out}"
        );
        assert_eq!(m.level_mut("other"), None);
    }

    #[test]
    fn whole_attribute_and_tag_matches() {
        let mut m = SdpManipulations::default();
        let audio = m.level_mut("audio").unwrap();
        audio
            .substitute
            .push(("fmtp:101 0-16".into(), "fmtp:101 0-15,32,36".into()));
        audio
            .substitute
            .push(("rtpmap:0".into(), "rtpmap:0 PCMU/8000/1".into()));
        let out = edited(&m);
        assert!(out.contains("a=fmtp:101 0-15,32,36\r\n"), "{out}");
        assert!(out.contains("a=rtpmap:0 PCMU/8000/1\r\n"), "{out}");
        // A partial value that is not a match point matches nothing.
        let mut m = SdpManipulations::default();
        m.level_mut("audio").unwrap().remove.push("test:x".into());
        assert!(edited(&m).contains("a=test:x y\r\n"));
    }

    #[test]
    fn nothing_to_do() {
        let m = SdpManipulations::default();
        assert!(m.is_empty());
        let mut sdp = Sdp::parse(SDP).unwrap();
        sdp.manipulate(&m);
        assert_eq!(sdp.write(), Sdp::parse(SDP).unwrap().write());
    }
}
