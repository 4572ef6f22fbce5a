//! RTCP of a transcoded stream: the reception statistics the [`Transcoder`](super::Transcoder)
//! keeps and the compound report written from them.

/// Reception statistics of the input stream as RTCP reports them (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reception {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24 bits, signed).
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in input clock units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the sender's latest SR, 0 when none came.
    pub lsr: u32,
    /// Time since that SR arrived, 1/65536 s.
    pub dlsr: u32,
}

/// Length of the CNAME we put in the SDES of generated RTCP: 12 hex digits, as rtpengine's.
pub const CNAME_LEN: usize = 12;

/// A CNAME for the RTCP we generate, from 48 random bits (RFC 7022 allows any stable
/// random name; rtpengine writes 12 lowercase hex digits).
pub fn random_cname(bits: u64) -> [u8; CNAME_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; CNAME_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((bits >> (4 * i)) & 0xf) as usize];
    }
    out
}

/// Write a compound RTCP packet from us as the sender `ssrc`: an SR when `sender` is given
/// (packets, octets, RTP time), else an RR; one report block when `report` is given; then
/// SDES with `cname` (RFC 3550 §6.1 requires it in every compound packet). `ntp` is the
/// wall clock in NTP 32.32 format. Returns the length, 0 when `out` is too small.
pub fn write_rtcp_report(
    out: &mut [u8],
    ssrc: u32,
    ntp: u64,
    sender: Option<(u32, u32, u32)>,
    report: Option<&Reception>,
    cname: &[u8],
) -> usize {
    let blocks = report.is_some() as usize;
    let head = if sender.is_some() { 28 } else { 8 };
    let rr_len = head + 24 * blocks;
    let cname = &cname[..cname.len().min(255)];
    let sdes_items = 2 + cname.len() + 1; // type, length, text, end of list
    let sdes_len = (8 + sdes_items).div_ceil(4) * 4;
    let total = rr_len + sdes_len;
    let Some(out) = out.get_mut(..total) else {
        return 0;
    };
    out.fill(0);
    out[0] = 0x80 | blocks as u8;
    out[1] = if sender.is_some() { 200 } else { 201 };
    out[2..4].copy_from_slice(&((rr_len / 4 - 1) as u16).to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = 8;
    if let Some((rtp_ts, packets, octets)) = sender {
        out[8..16].copy_from_slice(&ntp.to_be_bytes());
        out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
        out[20..24].copy_from_slice(&packets.to_be_bytes());
        out[24..28].copy_from_slice(&octets.to_be_bytes());
        at = 28;
    }
    if let Some(r) = report {
        out[at..at + 4].copy_from_slice(&r.ssrc.to_be_bytes());
        out[at + 4] = r.fraction_lost;
        let cum = (r.cumulative_lost as u32 & 0xFF_FFFF).to_be_bytes();
        out[at + 5..at + 8].copy_from_slice(&cum[1..]);
        out[at + 8..at + 12].copy_from_slice(&r.extended_highest_seq.to_be_bytes());
        out[at + 12..at + 16].copy_from_slice(&r.jitter.to_be_bytes());
        out[at + 16..at + 20].copy_from_slice(&r.lsr.to_be_bytes());
        out[at + 20..at + 24].copy_from_slice(&r.dlsr.to_be_bytes());
        at += 24;
    }
    let s = &mut out[at..];
    s[0] = 0x81;
    s[1] = 202;
    s[2..4].copy_from_slice(&((sdes_len / 4 - 1) as u16).to_be_bytes());
    s[4..8].copy_from_slice(&ssrc.to_be_bytes());
    s[8] = 1; // CNAME
    s[9] = cname.len() as u8;
    s[10..10 + cname.len()].copy_from_slice(cname);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_sender_report_layout() {
        let r = Reception {
            ssrc: 0x0102_0304,
            fraction_lost: 25,
            cumulative_lost: 3,
            extended_highest_seq: 0x1_0005,
            jitter: 12,
            lsr: 0x5678_9abc,
            dlsr: 0x10,
        };
        let cname = random_cname(0xfedc_ba98_7654);
        assert_eq!(&cname, b"456789abcdef");
        let mut buf = [0u8; 128];
        let n = write_rtcp_report(
            &mut buf,
            0xaabb_ccdd,
            0x1122_3344_5566_7788,
            Some((9, 10, 1600)),
            Some(&r),
            &cname,
        );
        // rtpengine's layout: SR with one block, then SDES of 12 hex digits in 24 bytes.
        assert_eq!(n, 52 + 24);
        assert_eq!(&buf[..4], &[0x81, 200, 0, 12]);
        assert_eq!(&buf[4..8], &0xaabb_ccddu32.to_be_bytes());
        assert_eq!(&buf[8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(&buf[16..28], &[0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 6, 64]);
        assert_eq!(&buf[28..40], &[1, 2, 3, 4, 25, 0, 0, 3, 0, 1, 0, 5]);
        assert_eq!(&buf[44..52], &[0x56, 0x78, 0x9a, 0xbc, 0, 0, 0, 0x10]);
        assert_eq!(&buf[52..56], &[0x81, 202, 0, 5]);
        assert_eq!(&buf[60..76], b"\x01\x0c456789abcdef\x00\x00");
        // Without sending anything: an RR with no block.
        let n = write_rtcp_report(&mut buf, 1, 0, None, None, &cname);
        assert_eq!((n, buf[0], buf[1], buf[3]), (32, 0x80, 201, 1));
        assert_eq!(
            write_rtcp_report(&mut buf[..10], 1, 0, None, None, &cname),
            0
        );
    }
}
