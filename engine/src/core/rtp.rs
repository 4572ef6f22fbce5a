//! Zero-copy views of RTP and RTCP packets and the first-byte demultiplexer that tells
//! media from STUN and DTLS on one socket (RFC 7983, RFC 5761).
//!
//! Nothing here copies or allocates: a view borrows the receive buffer and reads header
//! fields on demand, so the packet path can classify and inspect a datagram for the cost of
//! a few bounds checks. rtpengine does the same job in `rtplib.c` (`rtp_payload`,
//! `rtcp_demux_is_rtcp`) and `media_socket.c` (`stream_packet` demux on the first byte).

/// Fixed RTP header length (RFC 3550 §5.1), before CSRCs and extension.
pub const RTP_HEADER_LEN: usize = 12;
/// Smallest valid RTCP packet: the common header plus the sender SSRC (RFC 3550 §6.4).
pub const RTCP_MIN_LEN: usize = 8;
/// STUN message header length (RFC 5389 §6).
pub const STUN_HEADER_LEN: usize = 20;
/// STUN magic cookie (RFC 5389 §6), bytes 4..8 of every STUN message.
pub const STUN_MAGIC_COOKIE: u32 = 0x2112_A442;
/// DTLS record header length (RFC 6347 §4.1).
pub const DTLS_RECORD_HEADER_LEN: usize = 13;

/// What a datagram received on a media socket is (rtpengine's demux in `stream_packet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Rtp,
    Rtcp,
    Stun,
    Dtls,
    /// Anything else, including truncated RTP/RTCP/STUN/DTLS.
    Other,
}

/// Classify a datagram by its first bytes.
///
/// RTP and RTCP share version 2 (first byte 128..=191); RFC 5761 §4 separates them by the
/// second byte: with the marker bit masked off, 64..=95 (RTCP packet types 192..=223) is
/// RTCP. STUN starts with 0..=3 and carries the magic cookie; DTLS content types are
/// 20..=63 (RFC 7983 §7).
#[inline]
pub fn classify(buf: &[u8]) -> PacketKind {
    let Some(&first) = buf.first() else {
        return PacketKind::Other;
    };
    match first {
        0..=3 => {
            if buf.len() >= STUN_HEADER_LEN
                && u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) == STUN_MAGIC_COOKIE
            {
                PacketKind::Stun
            } else {
                PacketKind::Other
            }
        }
        20..=63 if buf.len() >= DTLS_RECORD_HEADER_LEN => PacketKind::Dtls,
        128..=191 => {
            let Some(&second) = buf.get(1) else {
                return PacketKind::Other;
            };
            if (64..=95).contains(&(second & 0x7f)) {
                if buf.len() >= RTCP_MIN_LEN {
                    PacketKind::Rtcp
                } else {
                    PacketKind::Other
                }
            } else if buf.len() >= RTP_HEADER_LEN {
                PacketKind::Rtp
            } else {
                PacketKind::Other
            }
        }
        _ => PacketKind::Other,
    }
}

/// Why a buffer is not a valid RTP or RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet too short: {len} bytes, need {need}")]
    TooShort { len: usize, need: usize },
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    #[error("CSRC list ({count} entries) runs past the end of the packet")]
    CsrcOverrun { count: u8 },
    #[error("header extension runs past the end of the packet")]
    ExtensionOverrun,
    #[error("padding length {padding} exceeds the payload ({payload} bytes)")]
    BadPadding { padding: u8, payload: usize },
}

/// A validated view of an RTP packet (RFC 3550 §5.1); rtpengine's `struct rtp_header` plus
/// the bounds checks of `rtp_payload()`.
#[derive(Debug, Clone, Copy)]
pub struct RtpHeader<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> RtpHeader<'a> {
    /// Check version, CSRC list and header extension against the buffer length.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: RTP_HEADER_LEN,
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let cc = buf[0] & 0x0f;
        let mut header_len = RTP_HEADER_LEN + 4 * cc as usize;
        if header_len > buf.len() {
            return Err(RtpError::CsrcOverrun { count: cc });
        }
        if buf[0] & 0x10 != 0 {
            // Extension: 16-bit profile, 16-bit length in 32-bit words, then the words.
            let ext = buf
                .get(header_len..header_len + 4)
                .ok_or(RtpError::ExtensionOverrun)?;
            let words = u16::from_be_bytes([ext[2], ext[3]]) as usize;
            header_len += 4 + 4 * words;
            if header_len > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
        }
        Ok(RtpHeader { buf, header_len })
    }

    #[inline]
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    #[inline]
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    #[inline]
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }

    #[inline]
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    #[inline]
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    #[inline]
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    #[inline]
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// The `i`-th contributing source, if present.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        if i >= self.csrc_count() as usize {
            return None;
        }
        let o = RTP_HEADER_LEN + 4 * i;
        Some(u32::from_be_bytes([
            self.buf[o],
            self.buf[o + 1],
            self.buf[o + 2],
            self.buf[o + 3],
        ]))
    }

    /// Header extension as (profile, data) — `0xBEDE` is RFC 8285 one-byte headers.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if !self.has_extension() {
            return None;
        }
        let o = RTP_HEADER_LEN + 4 * self.csrc_count() as usize;
        let profile = u16::from_be_bytes([self.buf[o], self.buf[o + 1]]);
        Some((profile, &self.buf[o + 4..self.header_len]))
    }

    /// Bytes before the payload: fixed header, CSRCs and extension.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload with padding removed (the last byte counts the padding, RFC 3550 §5.1).
    pub fn payload(&self) -> Result<&'a [u8], RtpError> {
        let body = &self.buf[self.header_len..];
        if !self.padding() {
            return Ok(body);
        }
        let padding = *body.last().ok_or(RtpError::BadPadding {
            padding: 0,
            payload: 0,
        })?;
        if padding == 0 || padding as usize > body.len() {
            return Err(RtpError::BadPadding {
                padding,
                payload: body.len(),
            });
        }
        Ok(&body[..body.len() - padding as usize])
    }
}

/// A view of the first packet of an RTCP compound (RFC 3550 §6.4); rtpengine's
/// `struct rtcp_header`.
#[derive(Debug, Clone, Copy)]
pub struct RtcpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> RtcpHeader<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTCP_MIN_LEN {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: RTCP_MIN_LEN,
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        Ok(RtcpHeader { buf })
    }

    /// Reception report count, or the subtype for APP/feedback packets.
    #[inline]
    pub fn count(&self) -> u8 {
        self.buf[0] & 0x1f
    }

    /// 200 = SR, 201 = RR, 202 = SDES, 203 = BYE, 204 = APP, 205/206 = feedback.
    #[inline]
    pub fn packet_type(&self) -> u8 {
        self.buf[1]
    }

    /// Length of this packet in bytes, from the header's 32-bit-words-minus-one field.
    #[inline]
    pub fn packet_len(&self) -> usize {
        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize + 1) * 4
    }

    /// SSRC of the sender of this packet.
    #[inline]
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
}

/// RTCP packet types of RFC 4585 feedback: transport-layer (RTPFB, e.g. NACK) and
/// payload-specific (PSFB, e.g. PLI, REMB).
const RTCP_RTPFB: u8 = 205;
const RTCP_PSFB: u8 = 206;

/// Remove RFC 4585 feedback packets from the compound RTCP packet in `buf[..len]`, in place,
/// for a party that did not negotiate AVPF. Returns the new length: 0 when nothing else was
/// in the compound. A compound whose length fields do not add up is left as it is (the
/// receiver judges it, as it would without us).
pub fn strip_rtcp_feedback(buf: &mut [u8], len: usize) -> usize {
    let len = len.min(buf.len());
    // First pass: validate, and find out whether anything is to be removed at all.
    let (mut off, mut any) = (0, false);
    while off < len {
        let Some(part) = rtcp_part_len(&buf[off..len]) else {
            return len;
        };
        any |= matches!(buf[off + 1], RTCP_RTPFB | RTCP_PSFB);
        off += part;
    }
    if !any {
        return len;
    }
    let (mut read, mut write) = (0, 0);
    while read < len {
        let part = rtcp_part_len(&buf[read..len]).expect("validated above");
        if !matches!(buf[read + 1], RTCP_RTPFB | RTCP_PSFB) {
            buf.copy_within(read..read + part, write);
            write += part;
        }
        read += part;
    }
    write
}

/// Length in bytes of the RTCP packet at the start of `buf`, if its header is sane.
fn rtcp_part_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 4 || buf[0] >> 6 != 2 {
        return None;
    }
    let words = u16::from_be_bytes([buf[2], buf[3]]) as usize + 1;
    (words * 4 <= buf.len()).then_some(words * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_stripped_from_compound_rtcp() {
        // RR (8 bytes) + PLI (PSFB fmt 1, 12 bytes) + SDES (12 bytes) + NACK (RTPFB, 16 bytes).
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 1, b'a', 0];
        let nack = [0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 5, 0, 0];
        let mut buf = [0u8; 64];
        let mut n = 0;
        for p in [&rr[..], &pli, &sdes, &nack] {
            buf[n..n + p.len()].copy_from_slice(p);
            n += p.len();
        }
        let out = strip_rtcp_feedback(&mut buf, n);
        assert_eq!(&buf[..out], [&rr[..], &sdes[..]].concat().as_slice());
        // Only feedback: nothing left.
        let mut only = pli;
        assert_eq!(strip_rtcp_feedback(&mut only, 12), 0);
        // No feedback, or a broken length field: untouched.
        let mut plain = rr;
        assert_eq!(strip_rtcp_feedback(&mut plain, 8), 8);
        let mut broken = [0x81, 206, 0, 9, 0, 0, 0, 1];
        assert_eq!(strip_rtcp_feedback(&mut broken, 8), 8);
        assert_eq!(broken, [0x81, 206, 0, 9, 0, 0, 0, 1]);
    }

    /// PCMU, seq 0x1a2b, ts 4000, SSRC 0xdeadbeef, 4 payload bytes of silence.
    const PCMU: [u8; 16] = [
        0x80, 0x00, 0x1a, 0x2b, 0x00, 0x00, 0x0f, 0xa0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff,
        0xff,
    ];

    /// Opus (PT 111) with marker, one RFC 8285 one-byte extension (ssrc-audio-level, id 1).
    const OPUS_EXT: [u8; 23] = [
        0x90, 0xef, 0x12, 0x34, 0x00, 0x00, 0x03, 0x20, 0x11, 0x22, 0x33, 0x44, // fixed
        0xbe, 0xde, 0x00, 0x01, // profile 0xBEDE, 1 word
        0x10, 0xaa, 0x00, 0x00, // id 1 len 1 = 0xaa, padding
        0xf8, 0xff, 0xfe, // Opus TOC + payload
    ];

    /// Two CSRCs (a mixer's output), PT 8.
    const PCMA_CSRC: [u8; 22] = [
        0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x03, 0xd5, 0xd5,
    ];

    /// RTCP sender report, no report blocks (28 bytes), SSRC 0x5e7b1e5f.
    const RTCP_SR: [u8; 28] = [
        0x80, 0xc8, 0x00, 0x06, 0x5e, 0x7b, 0x1e, 0x5f, 0xe9, 0x4a, 0x3b, 0x19, 0x8b, 0x43, 0x95,
        0x81, 0x00, 0x01, 0x5f, 0x90, 0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x1f, 0x40,
    ];

    /// RTCP receiver report with one report block (32 bytes).
    const RTCP_RR: [u8; 32] = [
        0x81, 0xc9, 0x00, 0x07, 0x00, 0x00, 0x12, 0x34, 0x5e, 0x7b, 0x1e, 0x5f, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ];

    /// RFC 5769 §2.1 sample STUN binding request (header and first attributes).
    const STUN_REQ: [u8; 40] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
    ];

    /// DTLS 1.2 handshake record header (ClientHello follows).
    const DTLS_HELLO: [u8; 14] = [
        0x16, 0xfe, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x01,
    ];

    #[test]
    fn classifies_real_packets() {
        assert_eq!(classify(&PCMU), PacketKind::Rtp);
        assert_eq!(classify(&OPUS_EXT), PacketKind::Rtp);
        assert_eq!(classify(&PCMA_CSRC), PacketKind::Rtp);
        assert_eq!(classify(&RTCP_SR), PacketKind::Rtcp);
        assert_eq!(classify(&RTCP_RR), PacketKind::Rtcp);
        assert_eq!(classify(&STUN_REQ), PacketKind::Stun);
        assert_eq!(classify(&DTLS_HELLO), PacketKind::Dtls);
    }

    #[test]
    fn rfc5761_boundaries() {
        let mut p = PCMU;
        // PT 63 and 96 are RTP; 64..=95 (with or without marker) are RTCP's 192..=223.
        for (second, kind) in [
            (63u8, PacketKind::Rtp),
            (64, PacketKind::Rtcp),
            (95, PacketKind::Rtcp),
            (96, PacketKind::Rtp),
            (0x80 | 72, PacketKind::Rtcp),
            (0x80 | 101, PacketKind::Rtp),
        ] {
            p[1] = second;
            assert_eq!(classify(&p), kind, "second byte {second}");
        }
    }

    #[test]
    fn classify_rejects_short_and_foreign() {
        assert_eq!(classify(&[]), PacketKind::Other);
        assert_eq!(classify(&PCMU[..11]), PacketKind::Other);
        assert_eq!(classify(&RTCP_SR[..7]), PacketKind::Other);
        assert_eq!(classify(&RTCP_SR[..8]), PacketKind::Rtcp);
        assert_eq!(classify(&STUN_REQ[..19]), PacketKind::Other);
        assert_eq!(classify(&DTLS_HELLO[..12]), PacketKind::Other);
        // Wrong cookie: not STUN.
        let mut s = STUN_REQ;
        s[4] = 0x22;
        assert_eq!(classify(&s), PacketKind::Other);
        // Version 1 and version 3 first bytes.
        assert_eq!(classify(&[0x40; 20]), PacketKind::Other);
        assert_eq!(classify(&[0xc0; 20]), PacketKind::Other);
        // ZRTP (16..19) and TURN channels (64..79) are not media for us.
        assert_eq!(classify(&[0x10; 20]), PacketKind::Other);
        assert_eq!(classify(&[0x40, 0x00, 0x00, 0x10]), PacketKind::Other);
        assert_eq!(classify(b"hello, world"), PacketKind::Other);
    }

    #[test]
    fn parses_plain_header() {
        let h = RtpHeader::parse(&PCMU).unwrap();
        assert_eq!(h.payload_type(), 0);
        assert!(!h.marker());
        assert_eq!(h.sequence_number(), 0x1a2b);
        assert_eq!(h.timestamp(), 4000);
        assert_eq!(h.ssrc(), 0xdead_beef);
        assert_eq!(h.csrc_count(), 0);
        assert_eq!(h.header_len(), 12);
        assert_eq!(h.extension(), None);
        assert_eq!(h.payload().unwrap(), &[0xff; 4]);
    }

    #[test]
    fn parses_extension_and_csrcs() {
        let h = RtpHeader::parse(&OPUS_EXT).unwrap();
        assert_eq!(h.payload_type(), 111);
        assert!(h.marker());
        assert_eq!(h.sequence_number(), 0x1234);
        assert_eq!(h.timestamp(), 800);
        assert_eq!(h.ssrc(), 0x1122_3344);
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.extension(), Some((0xbede, &[0x10, 0xaa, 0x00, 0x00][..])));
        assert_eq!(h.payload().unwrap(), &[0xf8, 0xff, 0xfe]);

        let h = RtpHeader::parse(&PCMA_CSRC).unwrap();
        assert_eq!(h.payload_type(), 8);
        assert_eq!(h.csrc_count(), 2);
        assert_eq!((h.csrc(0), h.csrc(1), h.csrc(2)), (Some(2), Some(3), None));
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.payload().unwrap(), &[0xd5, 0xd5]);
    }

    #[test]
    fn rejects_overruns() {
        assert_eq!(
            RtpHeader::parse(&PCMU[..11]).unwrap_err(),
            RtpError::TooShort { len: 11, need: 12 }
        );
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(RtpHeader::parse(&v1).unwrap_err(), RtpError::BadVersion(1));
        // CC = 15 needs 72 bytes.
        let mut cc = PCMU;
        cc[0] = 0x8f;
        assert_eq!(
            RtpHeader::parse(&cc).unwrap_err(),
            RtpError::CsrcOverrun { count: 15 }
        );
        // Extension header cut off, then extension length claiming 255 words.
        assert_eq!(
            RtpHeader::parse(&OPUS_EXT[..14]).unwrap_err(),
            RtpError::ExtensionOverrun
        );
        let mut ext = OPUS_EXT;
        ext[15] = 0xff;
        assert_eq!(
            RtpHeader::parse(&ext).unwrap_err(),
            RtpError::ExtensionOverrun
        );
        // Extension exactly filling the packet is fine (empty payload).
        let h = RtpHeader::parse(&OPUS_EXT[..20]).unwrap();
        assert_eq!(h.payload().unwrap(), &[] as &[u8]);
    }

    #[test]
    fn padding() {
        // Padding bit set, 3 bytes of payload of which the last 2 are padding.
        let mut p = [0u8; 15];
        p[..12].copy_from_slice(&PCMU[..12]);
        p[0] |= 0x20;
        p[12..].copy_from_slice(&[0x7f, 0x00, 0x02]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.padding());
        assert_eq!(h.payload().unwrap(), &[0x7f]);
        p[14] = 4;
        assert_eq!(
            h_payload_err(&p),
            RtpError::BadPadding {
                padding: 4,
                payload: 3
            }
        );
        p[14] = 0;
        assert_eq!(
            h_payload_err(&p),
            RtpError::BadPadding {
                padding: 0,
                payload: 3
            }
        );
    }

    fn h_payload_err(p: &[u8]) -> RtpError {
        RtpHeader::parse(p).unwrap().payload().unwrap_err()
    }

    #[test]
    fn rtcp_header() {
        let sr = RtcpHeader::parse(&RTCP_SR).unwrap();
        assert_eq!(
            (sr.packet_type(), sr.count(), sr.packet_len()),
            (200, 0, 28)
        );
        assert_eq!(sr.ssrc(), 0x5e7b_1e5f);
        let rr = RtcpHeader::parse(&RTCP_RR).unwrap();
        assert_eq!(
            (rr.packet_type(), rr.count(), rr.packet_len()),
            (201, 1, 32)
        );
        assert_eq!(rr.ssrc(), 0x1234);
        assert_eq!(
            RtcpHeader::parse(&RTCP_SR[..7]).unwrap_err(),
            RtpError::TooShort { len: 7, need: 8 }
        );
    }
}
