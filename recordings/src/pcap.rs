//! A pcap (libpcap classic format) of the recorded RTP, as received after SRTP unprotect
//! (rtpengine's recording daemon `output-pcap`). Link type RAW: each record is an IPv4 or
//! IPv6 packet with a UDP header rebuilt from the source and the local socket, so Wireshark
//! decodes the RTP with "Decode as RTP".

use std::io::{self, Write};
use std::net::SocketAddr;

/// LINKTYPE_RAW: the record starts with the IP header, version in the first nibble.
const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65_535;

/// Writes the global header on creation and one record per [`PcapWriter::write_packet`].
pub struct PcapWriter<W: Write> {
    out: W,
    /// IP/UDP header scratch, reused for every record.
    head: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            head: Vec::with_capacity(48),
        })
    }

    /// One UDP datagram `payload` from `src` to `dst`, captured at Unix time `at_ms`.
    /// Mixed address families (cannot happen on one socket) are written as IPv6-mapped.
    pub fn write_packet(
        &mut self,
        at_ms: u64,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        self.head.clear();
        let udp_len = (8 + payload.len()) as u16;
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                let total = 20 + udp_len;
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = 64;
                ip[9] = 17;
                ip[12..16].copy_from_slice(&s.ip().octets());
                ip[16..20].copy_from_slice(&d.ip().octets());
                let sum = checksum(&ip);
                ip[10..12].copy_from_slice(&sum.to_be_bytes());
                self.head.extend_from_slice(&ip);
            }
            _ => {
                let v6 = |a: SocketAddr| match a {
                    SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
                    SocketAddr::V6(v6) => *v6.ip(),
                };
                let mut ip = [0u8; 40];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
                ip[6] = 17;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&v6(src).octets());
                ip[24..40].copy_from_slice(&v6(dst).octets());
                self.head.extend_from_slice(&ip);
            }
        }
        self.head.extend_from_slice(&src.port().to_be_bytes());
        self.head.extend_from_slice(&dst.port().to_be_bytes());
        self.head.extend_from_slice(&udp_len.to_be_bytes());
        // UDP checksum 0: "not computed" (allowed for IPv4; Wireshark accepts it for v6).
        self.head.extend_from_slice(&[0, 0]);
        let len = (self.head.len() + payload.len()) as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((at_ms / 1000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&(((at_ms % 1000) * 1000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.head)?;
        self.out.write_all(payload)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// RFC 791 header checksum.
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_and_ipv4_record() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:30000".parse().unwrap();
        w.write_packet(1_700_000_000_250, src, dst, &[0x80, 0, 0, 1])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 101);
        let rec = &b[24..40];
        assert_eq!(
            u32::from_le_bytes(rec[0..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_le_bytes(rec[4..8].try_into().unwrap()), 250_000);
        assert_eq!(u32::from_le_bytes(rec[8..12].try_into().unwrap()), 32);
        let ip = &b[40..60];
        assert_eq!((ip[0], ip[9]), (0x45, 17));
        assert_eq!(&ip[2..4], &32u16.to_be_bytes());
        assert_eq!(checksum(ip), 0, "header checksum verifies");
        assert_eq!(&b[60..62], &4000u16.to_be_bytes());
        assert_eq!(&b[62..64], &30000u16.to_be_bytes());
        assert_eq!(&b[64..66], &12u16.to_be_bytes());
        assert_eq!(&b[68..], &[0x80, 0, 0, 1]);
    }

    #[test]
    fn ipv6_record() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let src: SocketAddr = "[::1]:4000".parse().unwrap();
        w.write_packet(0, src, src, &[1, 2]).unwrap();
        let b = w.into_inner();
        assert_eq!(b[40] >> 4, 6);
        assert_eq!(b.len(), 24 + 16 + 40 + 8 + 2);
    }
}
