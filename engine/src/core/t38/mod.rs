//! T.38 fax gateway: what the ng `T.38` flags ask for, the options a gateway runs with and
//! the SDP attributes it advertises (rtpengine: `struct t38_options`, `__sdp_t38` in
//! daemon/sdp.c, `t38_gateway_pair` in daemon/t38.c), and UDPTL framing ([`udptl`]).
//!
//! A gateway sits between a party that speaks T.38 (an `m=image … udptl t38` section, IFP
//! packets over UDPTL) and one that faxes over plain audio (T.30 modem tones in G.711 RTP).
//! `T.38: force` on an offer from an audio party turns its section into a T.38 one toward
//! the other party; `T.38: decode` on an offer from a T.38 party turns its section into
//! audio. The gateway stays for the media until `T.38: stop` or until a party changes
//! the media type it sends.

pub mod gateway;
pub mod udptl;

use crate::core::sdp::MediaSection;
use udptl::ErrorCorrection;

/// The `T.38` list of an offer (and `T.38-…` flags); rtpengine's `t38_*` bits of
/// `sdp_ng_flags`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct T38Flags {
    /// An `m=image … udptl t38` section from the offerer becomes audio toward the answerer.
    pub decode: bool,
    /// An audio section from the offerer becomes T.38 toward the answerer.
    pub force: bool,
    /// Stop a gateway engaged earlier; the media passes through again.
    pub stop: bool,
    pub no_ecm: bool,
    pub no_v17: bool,
    pub no_v27ter: bool,
    pub no_v29: bool,
    pub no_v34: bool,
    pub no_iaf: bool,
    /// Offer UDPTL FEC instead of redundancy (with `force`).
    pub fec: bool,
}

impl T38Flags {
    /// Set the flag named `name` (rtpengine's spellings, case as it accepts them; `-`/`_`
    /// already folded to spaces by the caller is fine too). False for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        let n: String = name
            .chars()
            .map(|c| if c == '_' || c == ' ' { '-' } else { c })
            .collect::<String>()
            .to_ascii_lowercase();
        let f = match n.as_str() {
            "decode" => &mut self.decode,
            "force" => &mut self.force,
            "stop" => &mut self.stop,
            "no-ecm" => &mut self.no_ecm,
            "no-v17" | "no-v.17" => &mut self.no_v17,
            "no-v27ter" | "no-v.27ter" => &mut self.no_v27ter,
            "no-v29" | "no-v.29" => &mut self.no_v29,
            "no-v34" | "no-v.34" => &mut self.no_v34,
            "no-iaf" => &mut self.no_iaf,
            "fec" => &mut self.fec,
            _ => return false,
        };
        *f = true;
        true
    }

    pub fn any(&self) -> bool {
        *self != T38Flags::default()
    }
}

/// How a gateway runs (rtpengine's `struct t38_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct T38Options {
    /// `T38FaxVersion`.
    pub version: u8,
    /// Packets per FEC entry; 1 = redundancy instead of FEC.
    pub fec_span: u8,
    /// Redundancy or FEC entries per packet (0: no error correction).
    pub max_ec_entries: u8,
    /// Largest IFP packet the gateway produces (`T38FaxMaxIFP`).
    pub max_ifp: u16,
    /// Largest UDPTL datagram the party accepts (`T38FaxMaxDatagram`).
    pub max_datagram: u16,
    /// `T38FaxRateManagement:localTCF` (else transferredTCF).
    pub local_tcf: bool,
    pub fill_bit_removal: bool,
    pub transcoding_mmr: bool,
    pub transcoding_jbig: bool,
    pub no_ecm: bool,
    pub no_v17: bool,
    pub no_v27ter: bool,
    pub no_v29: bool,
    pub no_v34: bool,
    pub no_iaf: bool,
}

/// Largest value rtpengine accepts for the IFP and datagram sizes (then the default).
const MAX_SIZE: u16 = 0x3fff;
/// Redundancy/FEC entries when nothing else is said (rtpengine's default).
const DEFAULT_EC_ENTRIES: u8 = 3;

impl T38Options {
    /// Our own options, for a T.38 side we create (`T.38: force`): three redundancy entries,
    /// or FEC over spans of three with `FEC`.
    pub fn ours(flags: &T38Flags) -> T38Options {
        let mut o = T38Options {
            version: 0,
            fec_span: if flags.fec { 3 } else { 1 },
            max_ec_entries: DEFAULT_EC_ENTRIES,
            max_ifp: MAX_SIZE,
            max_datagram: MAX_SIZE,
            local_tcf: false,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
            no_ecm: false,
            no_v17: false,
            no_v27ter: false,
            no_v29: false,
            no_v34: false,
            no_iaf: false,
        };
        o.apply_flags(flags);
        o
    }

    /// The options a T.38 party's SDP section announces (rtpengine's `__sdp_t38`), with the
    /// modem restrictions of `flags`.
    pub fn from_sdp(section: &MediaSection, flags: &T38Flags) -> T38Options {
        let mut o = T38Options::ours(&T38Flags::default());
        let int = |name: &str| -> Option<i64> {
            section
                .attribute(name)
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let size = |v: i64| -> u16 {
            if v <= 0 || v >= i64::from(MAX_SIZE) {
                MAX_SIZE
            } else {
                v as u16
            }
        };
        let entries = |v: i64| v.clamp(0, 0x7f) as u8;
        if let Some(v) = int("T38FaxVersion") {
            o.version = v.clamp(0, 255) as u8;
        }
        match section.attribute("T38FaxUdpEC").map(str::trim) {
            Some("t38UDPRedundancy") | None => {}
            Some("t38UDPFEC") => o.fec_span = 3,
            Some(_) => o.max_ec_entries = 0,
        }
        if let Some(depth) = section.attribute("T38FaxUdpECDepth") {
            // `min [max]`: the maximum counts.
            let mut parts = depth.split_ascii_whitespace();
            let min = parts.next().and_then(|v| v.parse::<i64>().ok());
            let max = parts.next().and_then(|v| v.parse::<i64>().ok()).or(min);
            if let Some(max) = max {
                o.max_ec_entries = entries(max);
            }
        }
        if let Some(v) = int("T38FaxUdpFECMaxSpan") {
            o.fec_span = v.clamp(1, 0x7f) as u8;
        }
        if let Some(v) = int("T38FaxMaxDatagram") {
            o.max_datagram = size(v);
        }
        if let Some(v) = int("T38FaxMaxIFP") {
            o.max_ifp = size(v);
        }
        let on = |name: &str| section.attribute(name).is_some_and(|v| v.trim() != "0");
        o.fill_bit_removal = on("T38FaxFillBitRemoval");
        o.transcoding_mmr = on("T38FaxTranscodingMMR");
        o.transcoding_jbig = on("T38FaxTranscodingJBIG");
        o.local_tcf = section
            .attribute("T38FaxRateManagement")
            .is_some_and(|v| v.trim() == "localTCF");
        o.apply_flags(flags);
        o
    }

    /// The modem and ECM restrictions these options were made with, as flags.
    pub fn restrictions(&self) -> T38Flags {
        T38Flags {
            no_ecm: self.no_ecm,
            no_v17: self.no_v17,
            no_v27ter: self.no_v27ter,
            no_v29: self.no_v29,
            no_v34: self.no_v34,
            no_iaf: self.no_iaf,
            ..T38Flags::default()
        }
    }

    fn apply_flags(&mut self, flags: &T38Flags) {
        self.no_ecm = flags.no_ecm;
        self.no_v17 = flags.no_v17;
        self.no_v27ter = flags.no_v27ter;
        self.no_v29 = flags.no_v29;
        self.no_v34 = flags.no_v34;
        self.no_iaf = flags.no_iaf;
    }

    /// The error correction the gateway sends with.
    pub fn error_correction(&self) -> ErrorCorrection {
        match (self.max_ec_entries, self.fec_span) {
            (0, _) => ErrorCorrection::None,
            (entries, 0 | 1) => ErrorCorrection::Redundancy { entries },
            (entries, span) => ErrorCorrection::Fec { entries, span },
        }
    }

    /// The attributes the gateway's T.38 side advertises, in rtpengine's order and values
    /// (what its gateway accepts, not what the party asked for: 1800-byte buffer and
    /// 512-byte datagrams).
    pub fn sdp_attributes(&self) -> Vec<String> {
        let ec = match self.error_correction() {
            ErrorCorrection::None => "t38UDPNoEC",
            ErrorCorrection::Redundancy { .. } => "t38UDPRedundancy",
            ErrorCorrection::Fec { .. } => "t38UDPFEC",
        };
        vec![
            format!("T38FaxVersion:{}", self.version),
            "T38MaxBitRate:14400".to_owned(),
            format!(
                "T38FaxRateManagement:{}",
                if self.local_tcf {
                    "localTCF"
                } else {
                    "transferredTCF"
                }
            ),
            "T38FaxMaxBuffer:1800".to_owned(),
            "T38FaxMaxDatagram:512".to_owned(),
            format!("T38FaxUdpEC:{ec}"),
        ]
    }
}

/// True for an `m=image … udptl t38` section (rtpengine: `MT_IMAGE`, `PROTO_UDPTL`, format
/// `t38`).
pub fn is_t38_section(section: &MediaSection) -> bool {
    section.m.kind == "image"
        && section.m.proto.eq_ignore_ascii_case("udptl")
        && section
            .m
            .formats
            .iter()
            .any(|f| f.eq_ignore_ascii_case("t38"))
}

/// True for an audio section over RTP, which a gateway can turn into T.38.
pub fn is_audio_rtp_section(section: &MediaSection) -> bool {
    section.m.kind == "audio" && section.m.is_rtp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sdp::Sdp;

    fn section(text: &str) -> MediaSection {
        let sdp = Sdp::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n{}",
            text.lines().map(|l| format!("{l}\r\n")).collect::<String>()
        ))
        .unwrap();
        sdp.media.into_iter().next().unwrap()
    }

    #[test]
    fn flags_take_rtpengine_spellings() {
        let mut f = T38Flags::default();
        for name in ["decode", "no-V.17", "no_ecm", "FEC", "no-v27ter", "no-IAF"] {
            assert!(f.set(name), "{name}");
        }
        assert!(!f.set("no-fill-bit-removal"));
        assert!(f.decode && f.no_v17 && f.no_ecm && f.fec && f.no_v27ter && f.no_iaf);
        assert!(!f.force && !f.no_v29);
    }

    #[test]
    fn our_options_advertise_rtpengines_attributes() {
        let ours = T38Options::ours(&T38Flags::default());
        assert_eq!(
            ours.sdp_attributes(),
            [
                "T38FaxVersion:0",
                "T38MaxBitRate:14400",
                "T38FaxRateManagement:transferredTCF",
                "T38FaxMaxBuffer:1800",
                "T38FaxMaxDatagram:512",
                "T38FaxUdpEC:t38UDPRedundancy"
            ]
        );
        let fec = T38Options::ours(&T38Flags {
            fec: true,
            ..T38Flags::default()
        });
        assert_eq!(
            fec.error_correction(),
            ErrorCorrection::Fec {
                entries: 3,
                span: 3
            }
        );
        assert_eq!(fec.sdp_attributes()[5], "T38FaxUdpEC:t38UDPFEC");
    }

    #[test]
    fn options_from_a_partys_sdp() {
        let s = section(
            "m=image 6000 udptl t38\nc=IN IP4 192.0.2.1\na=T38FaxVersion:1\na=T38MaxBitRate:14400\n\
             a=T38FaxRateManagement:localTCF\na=T38FaxMaxBuffer:262\na=T38FaxMaxDatagram:300\n\
             a=T38FaxUdpEC:t38UDPFEC\na=T38FaxFillBitRemoval\na=T38FaxTranscodingMMR:0",
        );
        assert!(is_t38_section(&s));
        let o = T38Options::from_sdp(
            &s,
            &T38Flags {
                no_v34: true,
                ..T38Flags::default()
            },
        );
        assert_eq!(o.version, 1);
        assert!(o.local_tcf && o.fill_bit_removal && !o.transcoding_mmr && o.no_v34);
        assert_eq!(o.max_datagram, 300);
        assert_eq!(o.max_ifp, MAX_SIZE);
        assert_eq!(
            o.error_correction(),
            ErrorCorrection::Fec {
                entries: 3,
                span: 3
            }
        );
        assert_eq!(o.sdp_attributes()[2], "T38FaxRateManagement:localTCF");
        let none = section("m=image 6000 udptl t38\na=T38FaxUdpEC:t38UDPNoEC");
        assert_eq!(
            T38Options::from_sdp(&none, &T38Flags::default()).error_correction(),
            ErrorCorrection::None
        );
        let audio = section("m=audio 6000 RTP/AVP 0");
        assert!(!is_t38_section(&audio) && is_audio_rtp_section(&audio));
    }
}
