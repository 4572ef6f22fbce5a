//! The transport profile of an m= line (its `<proto>` field; rtpengine's `transport_protocol`).

use std::fmt;

/// The `<proto>` of an m= line. The six RTP profiles we convert between are named; anything
/// else (`udptl`, `TCP/MSRP`, `UDP/BFCP`, ...) is kept as written and passes untouched.
/// Compared as written: `rtp/avp` is not `RTP/AVP`, as rtpengine's profile table reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransportProfile {
    /// `RTP/AVP` (RFC 3551): plain RTP.
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585): plain RTP with RTCP feedback.
    RtpAvpf,
    /// `RTP/SAVP` (RFC 3711): SRTP, keys in `a=crypto` (RFC 4568).
    RtpSavp,
    /// `RTP/SAVPF` (RFC 5124): SRTP with RTCP feedback, keys in `a=crypto`.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP` (RFC 5764 §8): SRTP keyed by DTLS.
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF`: SRTP with RTCP feedback keyed by DTLS (WebRTC).
    UdpTlsRtpSavpf,
    /// Any other profile, as written.
    Other(String),
}

impl TransportProfile {
    pub(crate) fn parse(proto: &str) -> TransportProfile {
        match proto {
            "RTP/AVP" => TransportProfile::RtpAvp,
            "RTP/AVPF" => TransportProfile::RtpAvpf,
            "RTP/SAVP" => TransportProfile::RtpSavp,
            "RTP/SAVPF" => TransportProfile::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => TransportProfile::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => TransportProfile::UdpTlsRtpSavpf,
            other => TransportProfile::Other(other.to_owned()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            TransportProfile::RtpAvp => "RTP/AVP",
            TransportProfile::RtpAvpf => "RTP/AVPF",
            TransportProfile::RtpSavp => "RTP/SAVP",
            TransportProfile::RtpSavpf => "RTP/SAVPF",
            TransportProfile::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            TransportProfile::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            TransportProfile::Other(s) => s,
        }
    }

    /// One of the RTP profiles this build converts between: plain RTP, SDES-SRTP and
    /// DTLS-SRTP, with or without feedback.
    pub(crate) fn convertible(&self) -> bool {
        !matches!(self, TransportProfile::Other(_))
    }

    /// A plain RTP profile, which carries `a=crypto` only as opportunistic SRTP (RFC 8643).
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, TransportProfile::RtpAvp | TransportProfile::RtpAvpf)
    }

    /// A profile whose keys travel in `a=crypto` lines (RFC 4568).
    pub(crate) fn is_sdes(&self) -> bool {
        matches!(self, TransportProfile::RtpSavp | TransportProfile::RtpSavpf)
    }

    /// A profile whose keys come from a DTLS handshake (RFC 5764 §8).
    pub(crate) fn is_dtls(&self) -> bool {
        matches!(
            self,
            TransportProfile::UdpTlsRtpSavp | TransportProfile::UdpTlsRtpSavpf
        )
    }

    /// An RTP profile with RTCP feedback (RFC 4585 AVPF, RFC 5124 SAVPF), named or not
    /// (`TCP/RTP/AVPF`).
    pub(crate) fn has_feedback(&self) -> bool {
        match self {
            TransportProfile::RtpAvpf
            | TransportProfile::RtpSavpf
            | TransportProfile::UdpTlsRtpSavpf => true,
            TransportProfile::Other(s) => s.ends_with("AVPF"),
            _ => false,
        }
    }
}

impl From<&str> for TransportProfile {
    fn from(proto: &str) -> TransportProfile {
        TransportProfile::parse(proto)
    }
}

impl fmt::Display for TransportProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::TransportProfile;

    #[test]
    fn profiles_read_and_write_as_in_sdp() {
        for p in [
            "RTP/AVP",
            "RTP/AVPF",
            "RTP/SAVP",
            "RTP/SAVPF",
            "UDP/TLS/RTP/SAVP",
            "UDP/TLS/RTP/SAVPF",
            "udptl",
            "TCP/MSRP",
        ] {
            assert_eq!(TransportProfile::parse(p).to_string(), p);
        }
        assert_eq!(
            TransportProfile::parse("rtp/avp"),
            TransportProfile::Other("rtp/avp".into())
        );
        assert!(!TransportProfile::parse("udptl").convertible());
    }

    #[test]
    fn feedback_follows_the_avpf_suffix() {
        assert!(TransportProfile::RtpSavpf.has_feedback());
        assert!(TransportProfile::parse("TCP/RTP/AVPF").has_feedback());
        assert!(!TransportProfile::UdpTlsRtpSavp.has_feedback());
        assert!(!TransportProfile::parse("udptl").has_feedback());
    }
}
