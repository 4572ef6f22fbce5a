//! HEP version 3 framing (the Homer Encapsulation Protocol): a `HEP3` header and its total
//! length, then typed chunks (vendor 0, type, length including the 6-byte chunk header,
//! value), all in network byte order. What a Homer collector (heplify-server, homer-app)
//! indexes a packet by: addresses and ports, time, the capture protocol, the capture agent
//! id and the correlation id that ties it to its SIP dialog (the Call-ID).

use std::net::{IpAddr, SocketAddr};

/// Capture protocol of RTCP reports in Homer's JSON form.
pub const PROTO_RTCP_JSON: u8 = 0x05;
/// Capture protocol of traced ng messages by default (the first value HEP leaves free).
pub const PROTO_NG_DEFAULT: u8 = 0x3d;

const CHUNK_IP_FAMILY: u16 = 0x0001;
const CHUNK_IP_PROTO: u16 = 0x0002;
const CHUNK_SRC_IP4: u16 = 0x0003;
const CHUNK_DST_IP4: u16 = 0x0004;
const CHUNK_SRC_IP6: u16 = 0x0005;
const CHUNK_DST_IP6: u16 = 0x0006;
const CHUNK_SRC_PORT: u16 = 0x0007;
const CHUNK_DST_PORT: u16 = 0x0008;
const CHUNK_TIME_SEC: u16 = 0x0009;
const CHUNK_TIME_USEC: u16 = 0x000a;
const CHUNK_PROTO_TYPE: u16 = 0x000b;
const CHUNK_CAPTURE_ID: u16 = 0x000c;
const CHUNK_PAYLOAD: u16 = 0x000f;
const CHUNK_CORRELATION: u16 = 0x0011;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_UDP: u8 = 17;

/// Largest frame: the 16-bit total length.
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Where and when a captured message went, and how Homer should file it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HepMeta {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Unix time in microseconds.
    pub time_us: u64,
    /// Capture protocol type ([`PROTO_RTCP_JSON`], or the ng tracing type).
    pub proto: u8,
    /// Capture agent id (`--homer-id`).
    pub capture_id: u32,
}

/// One HEP3 frame with `correlation` (the Call-ID) and `payload`; `None` when it would
/// exceed [`MAX_FRAME`].
pub fn encode(meta: &HepMeta, correlation: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(96 + correlation.len() + payload.len());
    out.extend_from_slice(b"HEP3\0\0");
    // Both addresses in one family: an IPv4 side next to an IPv6 one is written mapped.
    let (family, src_ip, dst_ip) = match (meta.src.ip(), meta.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (AF_INET, s.octets().to_vec(), d.octets().to_vec()),
        (s, d) => (AF_INET6, v6(s).to_vec(), v6(d).to_vec()),
    };
    chunk(&mut out, CHUNK_IP_FAMILY, &[family]);
    chunk(&mut out, CHUNK_IP_PROTO, &[IPPROTO_UDP]);
    let (src_type, dst_type) = if family == AF_INET {
        (CHUNK_SRC_IP4, CHUNK_DST_IP4)
    } else {
        (CHUNK_SRC_IP6, CHUNK_DST_IP6)
    };
    chunk(&mut out, src_type, &src_ip);
    chunk(&mut out, dst_type, &dst_ip);
    chunk(&mut out, CHUNK_SRC_PORT, &meta.src.port().to_be_bytes());
    chunk(&mut out, CHUNK_DST_PORT, &meta.dst.port().to_be_bytes());
    let secs = (meta.time_us / 1_000_000) as u32;
    let usecs = (meta.time_us % 1_000_000) as u32;
    chunk(&mut out, CHUNK_TIME_SEC, &secs.to_be_bytes());
    chunk(&mut out, CHUNK_TIME_USEC, &usecs.to_be_bytes());
    chunk(&mut out, CHUNK_PROTO_TYPE, &[meta.proto]);
    chunk(&mut out, CHUNK_CAPTURE_ID, &meta.capture_id.to_be_bytes());
    chunk(&mut out, CHUNK_CORRELATION, correlation);
    chunk(&mut out, CHUNK_PAYLOAD, payload);
    let total = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Some(out)
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn chunk(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    // A value too long for a chunk makes the whole frame too long: `encode` refuses it.
    let len = (6 + value.len()).min(u16::MAX as usize) as u16;
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// A decoded frame: chunk type → value, in frame order (for tests and diagnostics).
pub fn decode(frame: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let rest = frame.strip_prefix(b"HEP3")?;
    let total = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    if total != frame.len() {
        return None;
    }
    let mut rest = &rest[2..];
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let header = rest.get(..6)?;
        let kind = u16::from_be_bytes([header[2], header[3]]);
        let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let value = rest.get(6..len)?;
        chunks.push((kind, value.to_vec()));
        rest = &rest[len..];
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(src: &str, dst: &str) -> HepMeta {
        HepMeta {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            time_us: 1_700_000_000_123_456,
            proto: PROTO_RTCP_JSON,
            capture_id: 2001,
        }
    }

    #[test]
    fn ipv4_frame_bytes() {
        let frame = encode(&meta("192.0.2.1:5000", "198.51.100.2:30001"), b"abc", b"{}").unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &b"HEP3"[..], &[0, 110],
            &[0, 0, 0, 1, 0, 7, 2],
            &[0, 0, 0, 2, 0, 7, 17],
            &[0, 0, 0, 3, 0, 10, 192, 0, 2, 1],
            &[0, 0, 0, 4, 0, 10, 198, 51, 100, 2],
            &[0, 0, 0, 7, 0, 8, 0x13, 0x88],
            &[0, 0, 0, 8, 0, 8, 0x75, 0x31],
            &[0, 0, 0, 9, 0, 10], &1_700_000_000u32.to_be_bytes(),
            &[0, 0, 0, 10, 0, 10], &123_456u32.to_be_bytes(),
            &[0, 0, 0, 11, 0, 7, 5],
            &[0, 0, 0, 12, 0, 10, 0, 0, 0x07, 0xd1],
            &[0, 0, 0, 0x11, 0, 9], b"abc",
            &[0, 0, 0, 0x0f, 0, 8], b"{}",
        ]
        .concat();
        assert_eq!(frame, expected);
        let chunks = decode(&frame).unwrap();
        assert_eq!(chunks.len(), 12);
        assert_eq!(chunks[10], (CHUNK_CORRELATION, b"abc".to_vec()));
    }

    #[test]
    fn mixed_families_are_written_as_ipv6() {
        let frame = encode(&meta("192.0.2.1:5000", "[2001:db8::1]:6000"), b"", b"x").unwrap();
        let chunks = decode(&frame).unwrap();
        assert_eq!(chunks[0], (CHUNK_IP_FAMILY, vec![AF_INET6]));
        assert_eq!(chunks[2].0, CHUNK_SRC_IP6);
        assert_eq!(
            chunks[2].1,
            "::ffff:192.0.2.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(chunks[3].0, CHUNK_DST_IP6);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let big = vec![b'x'; MAX_FRAME];
        assert!(encode(&meta("192.0.2.1:1", "192.0.2.2:2"), b"id", &big).is_none());
    }

    #[test]
    fn decode_rejects_lying_lengths() {
        let mut frame = encode(&meta("192.0.2.1:1", "192.0.2.2:2"), b"id", b"p").unwrap();
        frame[5] += 1;
        assert!(decode(&frame).is_none());
        assert!(decode(b"HEP2\0\x06").is_none());
    }
}
