//! Minimal SDP: build an endpoint's audio offer, read back what the engine wrote.

use std::net::{IpAddr, SocketAddr};

/// One audio stream at `addr:port` with PCMU, PCMA and telephone-event, as a SIP phone
/// would offer it. `version` is the o= version (bump it for a re-INVITE); `direction` is
/// `sendrecv`, `sendonly`, `recvonly` or `inactive`.
pub fn audio_sdp(addr: IpAddr, port: u16, version: u32, direction: &str) -> String {
    let family = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\n\
         o=- 1545997027 {version} IN {family} {addr}\r\n\
         s=ngmedia-test\r\n\
         c=IN {family} {addr}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a={direction}\r\n"
    )
}

/// The parts of an SDP the tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdp {
    /// Address in the o= line.
    pub origin_addr: Option<IpAddr>,
    /// Session-level c= address.
    pub connection: Option<IpAddr>,
    pub medias: Vec<Media>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    /// Media-level c= address.
    pub connection: Option<IpAddr>,
    /// `a=` lines without the `a=`.
    pub attributes: Vec<String>,
}

impl Sdp {
    pub fn parse(text: &str) -> Result<Sdp, String> {
        let mut sdp = Sdp {
            origin_addr: None,
            connection: None,
            medias: Vec::new(),
        };
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            let (kind, value) = line
                .split_once('=')
                .ok_or_else(|| format!("bad SDP line `{line}`"))?;
            match kind {
                "o" => sdp.origin_addr = value.split(' ').nth(5).and_then(|a| a.parse().ok()),
                "c" => {
                    let addr = value.split(' ').nth(2).and_then(|a| a.parse().ok());
                    match sdp.medias.last_mut() {
                        Some(m) => m.connection = addr,
                        None => sdp.connection = addr,
                    }
                }
                "m" => {
                    let mut parts = value.split(' ');
                    let kind = parts.next().unwrap_or_default().to_string();
                    let port = parts
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| format!("bad m= line `{line}`"))?;
                    let proto = parts.next().unwrap_or_default().to_string();
                    let formats = parts.map(String::from).collect();
                    sdp.medias.push(Media {
                        kind,
                        port,
                        proto,
                        formats,
                        connection: None,
                        attributes: vec![],
                    });
                }
                "a" => {
                    if let Some(m) = sdp.medias.last_mut() {
                        m.attributes.push(value.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(sdp)
    }

    /// The first audio stream; panics if there is none.
    pub fn audio(&self) -> &Media {
        self.medias
            .iter()
            .find(|m| m.kind == "audio")
            .expect("SDP has an audio m= line")
    }

    /// Where the first audio stream must be sent (media c=, else session c=).
    pub fn audio_addr(&self) -> SocketAddr {
        let m = self.audio();
        let ip = m.connection.or(self.connection).expect("SDP has a c= line");
        SocketAddr::new(ip, m.port)
    }
}

impl Media {
    pub fn has_attr(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a == attr)
    }

    /// The direction attribute, if any.
    pub fn direction(&self) -> Option<&str> {
        self.attributes
            .iter()
            .map(String::as_str)
            .find(|a| matches!(*a, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_builds() {
        let text = audio_sdp("127.0.0.1".parse().unwrap(), 4000, 2, "sendonly");
        let sdp = Sdp::parse(&text).unwrap();
        assert_eq!(sdp.origin_addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(sdp.audio_addr(), "127.0.0.1:4000".parse().unwrap());
        let m = sdp.audio();
        assert_eq!(
            (m.proto.as_str(), m.formats.clone()),
            ("RTP/AVP", vec!["0".into(), "8".into(), "101".into()])
        );
        assert_eq!(m.direction(), Some("sendonly"));
        assert!(m.has_attr("rtpmap:0 PCMU/8000"));
    }
}
