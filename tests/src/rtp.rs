//! A SIP endpoint's media socket: sends numbered RTP, receives with timeouts.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Build an RTP packet (version 2, no padding/extension/CSRC, marker clear).
pub fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.extend_from_slice(&[0x80, pt & 0x7f]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Sequence number of an RTP packet.
pub fn rtp_seq(packet: &[u8]) -> Option<u16> {
    packet.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// One party's RTP socket on 127.0.0.1 with its own SSRC, sequence and timestamp.
pub struct RtpEndpoint {
    pub sock: UdpSocket,
    pub ssrc: u32,
    seq: u16,
    ts: u32,
}

/// Payload bytes of one 20 ms G.711 frame.
pub const FRAME: usize = 160;

impl RtpEndpoint {
    pub fn new(ssrc: u32) -> RtpEndpoint {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind RTP endpoint");
        RtpEndpoint {
            sock,
            ssrc,
            seq: ssrc as u16,
            ts: ssrc.rotate_left(7),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local address")
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Send the next PCMU packet (160-byte payload derived from the sequence number) to
    /// `to`; returns the exact bytes sent.
    pub fn send_next(&mut self, to: SocketAddr) -> Vec<u8> {
        let fill = self.seq as u8;
        let payload: Vec<u8> = (0..FRAME).map(|i| fill.wrapping_add(i as u8)).collect();
        let packet = rtp_packet(0, self.seq, self.ts, self.ssrc, &payload);
        self.sock.send_to(&packet, to).expect("send RTP");
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        packet
    }

    /// Advance sequence number and timestamp as if a packet had been sent and lost.
    pub fn skip(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
    }

    /// One datagram and its source, or `None` after `wait`.
    pub fn recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 2048];
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        let (n, from) = self.sock.recv_from(&mut buf).ok()?;
        Some((buf[..n].to_vec(), from))
    }

    /// Receive until `count` datagrams arrived or `limit` passed.
    pub fn recv_many(&self, count: usize, limit: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.recv(left) {
                Some(p) => got.push(p),
                None => break,
            }
        }
        got
    }

    /// Throw away whatever is queued.
    pub fn drain(&self) -> usize {
        let mut n = 0;
        while self.recv(Duration::from_millis(1)).is_some() && n < 100_000 {
            n += 1;
        }
        n
    }
}

/// An RTP packet as received, split into the fields DTMF tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpView {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub payload: Vec<u8>,
}

impl RtpEndpoint {
    /// Send RTP from this endpoint's SSRC; `pt | 0x80` sets the marker.
    pub fn send_rtp(&self, to: SocketAddr, pt: u8, seq: u16, ts: u32, payload: &[u8]) {
        let mut p = rtp_packet(pt & 0x7f, seq, ts, self.ssrc, payload);
        p[1] |= pt & 0x80;
        self.sock.send_to(&p, to).unwrap();
    }

    /// The next RTP packet within `wait`, split up.
    pub fn recv_rtp(&self, wait: Duration) -> Option<RtpView> {
        let (p, _) = self.recv(wait)?;
        (p.len() >= 12).then(|| RtpView {
            marker: p[1] & 0x80 != 0,
            pt: p[1] & 0x7f,
            seq: u16::from_be_bytes([p[2], p[3]]),
            ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            payload: p[12..].to_vec(),
        })
    }
}

/// An RFC 4733 event report payload.
pub fn dtmf_event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x8a } else { 0x0a }, d[0], d[1]]
}
