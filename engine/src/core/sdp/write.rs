//! [`Sdp`] -> text. Every line, the last one included, ends with CRLF, as rtpengine writes.

use std::fmt::{self, Write as _};

use super::model::{Line, MediaLine, Sdp};

impl fmt::Display for MediaLine {
    /// The value of the m= line: `audio 30000 RTP/AVP 0 8 101`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        if self.formats.is_empty() && self.trailing_space {
            f.write_str(" ")?;
        }
        Ok(())
    }
}

impl fmt::Display for Line {
    /// The line without its ending: `a=sendrecv`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind as char, self.value)
    }
}

impl Sdp {
    /// The SDP text with CRLF line endings.
    pub fn write(&self) -> String {
        let mut out = String::with_capacity(self.estimated_len());
        for line in &self.session {
            push_line(&mut out, line);
        }
        let mut more = self.more_sessions.iter().peekable();
        for (idx, section) in self.media.iter().enumerate() {
            while let Some(s) = more.next_if(|s| s.first_media <= idx) {
                s.lines.iter().for_each(|line| push_line(&mut out, line));
            }
            // Writing into a String cannot fail.
            let _ = write!(out, "m={}\r\n", section.m);
            for line in &section.lines {
                push_line(&mut out, line);
            }
        }
        for s in more {
            s.lines.iter().for_each(|line| push_line(&mut out, line));
        }
        out
    }

    fn estimated_len(&self) -> usize {
        let lines = self
            .session
            .iter()
            .chain(self.more_sessions.iter().flat_map(|s| s.lines.iter()))
            .chain(self.media.iter().flat_map(|m| m.lines.iter()));
        lines.map(|l| l.value.len() + 4).sum::<usize>() + self.media.len() * 64
    }
}

fn push_line(out: &mut String, line: &Line) {
    out.push(line.kind as char);
    out.push('=');
    out.push_str(&line.value);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::super::model::MediaSection;
    use super::*;

    #[test]
    fn writes_crlf_everywhere() {
        let sdp = Sdp::new(
            vec![Line::new(b'v', "0"), Line::new(b's', "-")],
            vec![MediaSection {
                m: MediaLine {
                    kind: "audio".into(),
                    port: 30000,
                    port_count: Some(2),
                    proto: "RTP/AVP".into(),
                    formats: vec!["0".into(), "101".into()],
                    trailing_space: false,
                },
                lines: vec![Line::attribute("sendrecv")],
            }],
        );
        assert_eq!(
            sdp.write(),
            "v=0\r\ns=-\r\nm=audio 30000/2 RTP/AVP 0 101\r\na=sendrecv\r\n"
        );
        assert_eq!(Line::attribute("rtcp:30001").to_string(), "a=rtcp:30001");
    }
}
