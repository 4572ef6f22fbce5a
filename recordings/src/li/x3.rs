//! X2/X3 PDUs (ETSI TS 103 221-2): the framing lawful-interception content is delivered in.
//!
//! We follow the PDU layout of TS 103 221-2 V1.4.1 (2021-04), clause 5: a fixed big-endian
//! header (version 16 bits, PDU type 16, header length 32, payload length 32, payload format
//! 16, payload direction 16, XID 128-bit UUID, correlation id 64), then conditional
//! attributes as TLVs (type 16, length 16, contents), then the payload. The version field
//! carries [`VERSION`] (5), the value deployed X2/X3 receivers write and accept. Every X3 PDU
//! carries the sequence number (attribute 8, 32 bits, per XID) and the timestamp
//! (attribute 9: 32-bit POSIX seconds, 32-bit nanoseconds); keep-alives carry a sequence
//! number, which the acknowledgement echoes.

use std::fmt;

/// Value of the version field.
pub const VERSION: u16 = 5;
/// Length of the fixed header.
pub const FIXED_HEADER: usize = 40;

/// PDU type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum PduType {
    X2 = 1,
    X3 = 2,
    KeepAlive = 3,
    KeepAliveAck = 4,
}

/// Payload format: RTP packet.
pub const FORMAT_RTP: u16 = 8;

/// Payload direction field, relative to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Direction {
    /// Keep-alives.
    Reserved = 0,
    /// Sent to (received by) the target.
    ToTarget = 2,
    /// Sent by the target.
    FromTarget = 3,
}

/// Conditional attribute types used here.
pub const ATTR_SEQUENCE: u16 = 8;
pub const ATTR_TIMESTAMP: u16 = 9;

/// A task's XID: a UUID (RFC 4122 text form in the API, 16 bytes on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xid(pub [u8; 16]);

/// Why a text is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID (expected 8-4-4-4-12 hexadecimal digits)")]
pub struct BadUuid;

impl Xid {
    /// Parse `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    pub fn parse(s: &str) -> Result<Xid, BadUuid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return Err(BadUuid);
        }
        let mut out = [0u8; 16];
        let mut digits = b.iter().filter(|&&c| c != b'-');
        for byte in &mut out {
            let (Some(&h), Some(&l)) = (digits.next(), digits.next()) else {
                return Err(BadUuid);
            };
            let nibble = |c: u8| (c as char).to_digit(16).ok_or(BadUuid);
            *byte = (nibble(h)? << 4 | nibble(l)?) as u8;
        }
        Ok(Xid(out))
    }
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xid({self})")
    }
}

/// Header length of an X3 PDU: fixed part, sequence number TLV (4+4), timestamp TLV (4+8).
pub const X3_HEADER: usize = FIXED_HEADER + 8 + 12;

#[allow(clippy::too_many_arguments)] // one argument per header field, in wire order
fn fixed(
    out: &mut Vec<u8>,
    kind: PduType,
    header_len: usize,
    payload_len: usize,
    format: u16,
    dir: Direction,
    xid: &Xid,
    correlation: u64,
) {
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(kind as u16).to_be_bytes());
    out.extend_from_slice(&(header_len as u32).to_be_bytes());
    out.extend_from_slice(&(payload_len as u32).to_be_bytes());
    out.extend_from_slice(&format.to_be_bytes());
    out.extend_from_slice(&(dir as u16).to_be_bytes());
    out.extend_from_slice(&xid.0);
    out.extend_from_slice(&correlation.to_be_bytes());
}

fn sequence_tlv(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(&ATTR_SEQUENCE.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// Append one X3 PDU carrying `rtp` to `out`. `unix_ns` is when the packet was received.
pub fn encode_x3(
    out: &mut Vec<u8>,
    xid: &Xid,
    correlation: u64,
    dir: Direction,
    seq: u32,
    unix_ns: u64,
    rtp: &[u8],
) {
    out.reserve(X3_HEADER + rtp.len());
    fixed(
        out,
        PduType::X3,
        X3_HEADER,
        rtp.len(),
        FORMAT_RTP,
        dir,
        xid,
        correlation,
    );
    sequence_tlv(out, seq);
    out.extend_from_slice(&ATTR_TIMESTAMP.to_be_bytes());
    out.extend_from_slice(&8u16.to_be_bytes());
    out.extend_from_slice(&((unix_ns / 1_000_000_000) as u32).to_be_bytes());
    out.extend_from_slice(&((unix_ns % 1_000_000_000) as u32).to_be_bytes());
    out.extend_from_slice(rtp);
}

/// Append a keep-alive PDU (no payload, zero XID and correlation, a sequence number).
pub fn encode_keepalive(out: &mut Vec<u8>, seq: u32) {
    fixed(
        out,
        PduType::KeepAlive,
        FIXED_HEADER + 8,
        0,
        0,
        Direction::Reserved,
        &Xid([0; 16]),
        0,
    );
    sequence_tlv(out, seq);
}

/// One decoded PDU (tests and the keep-alive acknowledgement reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub version: u16,
    pub kind: u16,
    pub header_len: u32,
    pub payload_len: u32,
    pub format: u16,
    pub direction: u16,
    pub xid: Xid,
    pub correlation: u64,
    /// (type, contents) in order.
    pub attributes: Vec<(u16, &'a [u8])>,
    pub payload: &'a [u8],
}

/// Why bytes are not (yet) a PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("incomplete PDU: {0} more bytes needed")]
    Incomplete(usize),
    #[error("malformed PDU: {0}")]
    Malformed(&'static str),
}

/// Decode the PDU at the start of `buf`; returns it and its total length.
pub fn decode(buf: &[u8]) -> Result<(Pdu<'_>, usize), PduError> {
    if buf.len() < FIXED_HEADER {
        return Err(PduError::Incomplete(FIXED_HEADER - buf.len()));
    }
    let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let header_len = u32_at(4);
    let payload_len = u32_at(8);
    if (header_len as usize) < FIXED_HEADER {
        return Err(PduError::Malformed("header length below 40"));
    }
    let total = header_len as usize + payload_len as usize;
    if buf.len() < total {
        return Err(PduError::Incomplete(total - buf.len()));
    }
    let mut attributes = Vec::new();
    let mut at = FIXED_HEADER;
    while at < header_len as usize {
        if at + 4 > header_len as usize {
            return Err(PduError::Malformed("truncated attribute header"));
        }
        let (kind, len) = (u16_at(at), u16_at(at + 2) as usize);
        let end = at + 4 + len;
        if end > header_len as usize {
            return Err(PduError::Malformed("attribute overruns the header"));
        }
        attributes.push((kind, &buf[at + 4..end]));
        at = end;
    }
    let mut xid = [0u8; 16];
    xid.copy_from_slice(&buf[16..32]);
    Ok((
        Pdu {
            version: u16_at(0),
            kind: u16_at(2),
            header_len,
            payload_len,
            format: u16_at(12),
            direction: u16_at(14),
            xid: Xid(xid),
            correlation: u64::from_be_bytes(buf[32..40].try_into().expect("8 bytes")),
            attributes,
            payload: &buf[header_len as usize..total],
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XID: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

    #[test]
    fn uuid_round_trip_and_errors() {
        let x = Xid::parse(XID).unwrap();
        assert_eq!(x.0[0], 0x1b);
        assert_eq!(x.0[15], 0x27);
        assert_eq!(x.to_string(), XID);
        assert_eq!(
            Xid::parse("1B4E28BA-2FA1-11D2-883F-0016D3CCA427").unwrap(),
            x
        );
        for bad in [
            "",
            "1b4e28ba2fa111d2883f0016d3cca427",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca42",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca42g",
            "1b4e28ba-2fa1-11d2-883f_0016d3cca427",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca4277",
        ] {
            assert_eq!(Xid::parse(bad), Err(BadUuid), "{bad}");
        }
    }

    #[test]
    fn x3_pdu_exact_bytes() {
        let mut out = Vec::new();
        let rtp = [0x80, 0x00, 0x00, 0x01, 0xaa, 0xbb];
        encode_x3(
            &mut out,
            &Xid::parse(XID).unwrap(),
            0x0102_0304_0506_0708,
            Direction::FromTarget,
            0x0000_0105,
            1_700_000_000_123_456_789,
            &rtp,
        );
        let expected: Vec<u8> = [
            &[0x00, 0x05, 0x00, 0x02][..], // version 5, X3
            &[0x00, 0x00, 0x00, 60],       // header length
            &[0x00, 0x00, 0x00, 6],        // payload length
            &[0x00, 0x08, 0x00, 0x03],     // RTP, from target
            &[0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x11, 0xd2],
            &[0x88, 0x3f, 0x00, 0x16, 0xd3, 0xcc, 0xa4, 0x27],
            &[1, 2, 3, 4, 5, 6, 7, 8],             // correlation id
            &[0x00, 0x08, 0x00, 0x04, 0, 0, 1, 5], // sequence number
            &[0x00, 0x09, 0x00, 0x08],             // timestamp
            &[0x65, 0x53, 0xf1, 0x00],             // 1700000000 s
            &[0x07, 0x5b, 0xcd, 0x15],             // 123456789 ns
            &rtp,
        ]
        .concat();
        assert_eq!(out, expected);
        let (pdu, len) = decode(&out).unwrap();
        assert_eq!(len, out.len());
        assert_eq!(
            (pdu.version, pdu.kind, pdu.format, pdu.direction),
            (5, 2, 8, 3)
        );
        assert_eq!(pdu.attributes.len(), 2);
        assert_eq!(pdu.payload, &rtp);
        assert_eq!(
            decode(&out[..50]),
            Err(PduError::Incomplete(out.len() - 50))
        );
    }

    #[test]
    fn keepalive_exact_bytes() {
        let mut out = Vec::new();
        encode_keepalive(&mut out, 7);
        let mut expected = vec![0, 5, 0, 3, 0, 0, 0, 48, 0, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(&[0; 24]);
        expected.extend_from_slice(&[0, 8, 0, 4, 0, 0, 0, 7]);
        assert_eq!(out, expected);
        let (pdu, _) = decode(&out).unwrap();
        assert_eq!((pdu.kind, pdu.payload_len), (PduType::KeepAlive as u16, 0));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let mut out = Vec::new();
        encode_keepalive(&mut out, 1);
        out[7] = 39;
        assert_eq!(
            decode(&out),
            Err(PduError::Malformed("header length below 40"))
        );
        out[7] = 48;
        out[43] = 9; // attribute length beyond the header
        assert_eq!(
            decode(&out),
            Err(PduError::Malformed("attribute overruns the header"))
        );
    }
}
