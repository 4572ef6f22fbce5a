//! UDPTL, the transport of T.38 fax over UDP (ITU-T T.38 §9.1, ASN.1 `UDPTLPacket` in PER
//! aligned encoding): a 16-bit sequence number, the primary IFP packet, then error
//! recovery, either earlier IFP packets again (redundancy) or XOR parity of earlier packets
//! (FEC). rtpengine frames and unframes it in `daemon/t38.c`; this is the same wire format.
//!
//! ```text
//! seq(2) | len primary-IFP | 0x00 | count | (len IFP(seq-1)) (len IFP(seq-2)) ...
//! seq(2) | len primary-IFP | 0x80 | 0x01 span | count | (len FEC(0)) (len FEC(1)) ...
//! ```
//! `len` is a PER length determinant: one byte below 128, two bytes `0x8000 | len` below
//! 16384; longer (fragmented) open types are not used by T.38 gateways and are refused. An
//! empty open type is written as one zero byte (X.691 §10.2), as rtpengine does.
//!
//! Sans-IO and allocation-free per packet: [`UdptlPacket::parse`] borrows the datagram,
//! [`UdptlSender`] writes into the caller's buffer and keeps its history in buffers it
//! reuses, [`UdptlReceiver`] hands IFP packets in sequence to a callback.

/// Largest length a two-byte determinant carries (and so the largest IFP we frame).
pub const MAX_IFP_LEN: usize = 0x3fff;
/// Error-recovery entries kept and sent at most (rtpengine normalises to below 0x80; three
/// is what both ends use by default, `T38FaxUdpECDepth` may ask for more).
pub const MAX_EC_ENTRIES: usize = 16;
/// FEC spans accepted (each FEC entry covers `span` packets).
pub const MAX_FEC_SPAN: usize = 16;
/// Received IFP packets remembered for FEC recovery: enough for the largest
/// `entries × span` a sender may cover.
const RX_HISTORY: usize = 64;
/// Room reserved up front for each remembered IFP packet, so that a fax session allocates
/// nothing after setup: 512 bytes is the `T38FaxMaxDatagram` we advertise, so a conforming
/// peer's IFP packets fit. A longer one grows its buffer once, and the buffer stays.
const IFP_RESERVE: usize = 512;

/// `count` empty buffers with room for an IFP packet each.
fn ifp_buffers(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| Vec::with_capacity(IFP_RESERVE))
        .collect()
}

/// Why a datagram is not a UDPTL packet we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UdptlError {
    #[error("UDPTL packet too short")]
    Truncated,
    #[error("fragmented UDPTL open type (not supported)")]
    Fragmented,
    #[error("invalid UDPTL error recovery")]
    BadRecovery,
    #[error("output buffer too small for the UDPTL packet")]
    NoRoom,
}

/// Which error recovery a sender uses (SDP `T38FaxUdpEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorCorrection {
    /// `t38UDPNoEC`: the primary packet only (an empty redundancy list on the wire).
    None,
    /// `t38UDPRedundancy`: up to `entries` earlier IFP packets repeated.
    Redundancy { entries: u8 },
    /// `t38UDPFEC`: `entries` parity packets, each the XOR of `span` earlier packets.
    Fec { entries: u8, span: u8 },
}

/// The error-recovery part of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery<'a> {
    /// Earlier IFP packets: the first is `seq - 1`, the next `seq - 2`, ...
    Secondary(Entries<'a>),
    /// Parity packets: entry `k` is the XOR of packets `seq - span·n + k + i·n` for
    /// `i < span`, where `n` is the number of entries.
    Fec { span: u8, entries: Entries<'a> },
}

/// A sequence of open types (length + bytes), read lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entries<'a> {
    count: usize,
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    /// The number of entries the packet announces.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        match read_open(self.rest) {
            Ok((piece, rest)) => {
                self.rest = rest;
                Some(piece)
            }
            Err(_) => {
                self.count = 0;
                None
            }
        }
    }
}

/// A received UDPTL datagram, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdptlPacket<'a> {
    pub seq: u16,
    /// The primary IFP packet.
    pub primary: &'a [u8],
    pub recovery: Recovery<'a>,
}

/// Read a PER length determinant: the length and the bytes after it.
fn read_len(buf: &[u8]) -> Result<(usize, &[u8]), UdptlError> {
    let (&first, rest) = buf.split_first().ok_or(UdptlError::Truncated)?;
    if first & 0x80 == 0 {
        return Ok((usize::from(first), rest));
    }
    if first & 0x40 != 0 {
        return Err(UdptlError::Fragmented);
    }
    let (&second, rest) = rest.split_first().ok_or(UdptlError::Truncated)?;
    Ok((usize::from(first & 0x3f) << 8 | usize::from(second), rest))
}

/// Read one open type (or octet string): its bytes and what follows.
fn read_open(buf: &[u8]) -> Result<(&[u8], &[u8]), UdptlError> {
    let (len, rest) = read_len(buf)?;
    if rest.len() < len {
        return Err(UdptlError::Truncated);
    }
    Ok(rest.split_at(len))
}

impl<'a> UdptlPacket<'a> {
    /// Read a datagram. Only the header, the primary packet and the recovery header are
    /// checked here; recovery entries are read as they are iterated.
    pub fn parse(buf: &'a [u8]) -> Result<UdptlPacket<'a>, UdptlError> {
        if buf.len() < 4 {
            return Err(UdptlError::Truncated);
        }
        let seq = u16::from_be_bytes([buf[0], buf[1]]);
        let (primary, rest) = read_open(&buf[2..])?;
        let (&choice, rest) = rest.split_first().ok_or(UdptlError::Truncated)?;
        let recovery = if choice & 0x80 == 0 {
            let (count, rest) = read_len(rest)?;
            Recovery::Secondary(Entries { count, rest })
        } else {
            // fec-npackets: an INTEGER with its one-byte length, then the count of entries.
            let (len, rest) = read_len(rest)?;
            if len != 1 || rest.is_empty() {
                return Err(UdptlError::BadRecovery);
            }
            let span = rest[0];
            if span == 0 || usize::from(span) > MAX_FEC_SPAN {
                return Err(UdptlError::BadRecovery);
            }
            let (count, rest) = read_len(&rest[1..])?;
            Recovery::Fec {
                span,
                entries: Entries { count, rest },
            }
        };
        Ok(UdptlPacket {
            seq,
            primary,
            recovery,
        })
    }
}

/// Writes into a caller's buffer, failing with [`UdptlError::NoRoom`] instead of panicking.
struct Writer<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) -> Result<(), UdptlError> {
        *self.out.get_mut(self.at).ok_or(UdptlError::NoRoom)? = b;
        self.at += 1;
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), UdptlError> {
        let end = self.at + b.len();
        self.out
            .get_mut(self.at..end)
            .ok_or(UdptlError::NoRoom)?
            .copy_from_slice(b);
        self.at = end;
        Ok(())
    }

    fn len(&mut self, len: usize) -> Result<(), UdptlError> {
        if len < 0x80 {
            self.byte(len as u8)
        } else if len <= MAX_IFP_LEN {
            self.bytes(&(0x8000 | len as u16).to_be_bytes())
        } else {
            Err(UdptlError::Fragmented)
        }
    }

    /// An open type; empty becomes one zero byte.
    fn open(&mut self, b: &[u8]) -> Result<(), UdptlError> {
        if b.is_empty() {
            return self.bytes(&[1, 0]);
        }
        self.len(b.len())?;
        self.bytes(b)
    }
}

/// Bytes an open type of `len` bytes takes on the wire.
fn open_size(len: usize) -> usize {
    match len {
        0 => 2,
        1..=0x7f => 1 + len,
        _ => 2 + len,
    }
}

/// The sending half of a UDPTL stream (rtpengine: the `seqnum` and `udptl_ec_out` of its
/// `t38_gateway`): numbers IFP packets and adds error recovery from its history.
#[derive(Debug)]
pub struct UdptlSender {
    ec: ErrorCorrection,
    /// Datagrams stay at most this long: recovery entries that would not fit are left out.
    max_datagram: usize,
    seq: u16,
    /// Earlier IFP packets, most recent first (`history[0]` is `seq - 1`); the buffers are
    /// reserved at construction and reused, so a stream allocates nothing.
    history: Vec<Vec<u8>>,
    filled: usize,
    /// Scratch for FEC parity entries.
    parity: Vec<Vec<u8>>,
}

impl UdptlSender {
    pub fn new(ec: ErrorCorrection, max_datagram: usize) -> UdptlSender {
        let keep = match ec {
            ErrorCorrection::None => 0,
            ErrorCorrection::Redundancy { entries } => usize::from(entries).min(MAX_EC_ENTRIES),
            ErrorCorrection::Fec { entries, span } => {
                usize::from(entries).min(MAX_EC_ENTRIES) * usize::from(span).min(MAX_FEC_SPAN)
            }
        };
        let parity = match ec {
            ErrorCorrection::Fec { entries, .. } => usize::from(entries).min(MAX_EC_ENTRIES),
            _ => 0,
        };
        UdptlSender {
            ec,
            max_datagram: max_datagram.clamp(16, MAX_IFP_LEN),
            seq: 0,
            history: ifp_buffers(keep),
            filled: 0,
            parity: ifp_buffers(parity),
        }
    }

    /// Frame `ifp` as the next packet into `out`; returns the datagram's length.
    pub fn write(&mut self, ifp: &[u8], out: &mut [u8]) -> Result<usize, UdptlError> {
        if ifp.len() > MAX_IFP_LEN {
            return Err(UdptlError::Fragmented);
        }
        let mut w = Writer { out, at: 0 };
        w.bytes(&self.seq.to_be_bytes())?;
        w.open(ifp)?;
        match self.ec {
            ErrorCorrection::None | ErrorCorrection::Redundancy { .. } => {
                w.byte(0x00)?;
                // As many earlier packets as fit in the datagram (count byte included).
                let mut size = w.at + 1;
                let mut count = 0;
                for h in &self.history[..self.filled] {
                    size += open_size(h.len());
                    if size > self.max_datagram {
                        break;
                    }
                    count += 1;
                }
                w.len(count)?;
                for h in &self.history[..count] {
                    w.open(h)?;
                }
            }
            ErrorCorrection::Fec { entries, span } => {
                let n = usize::from(entries).min(self.parity.len());
                // Use as many whole spans as the history holds.
                let span = usize::from(span).min(self.filled / n.max(1)).max(1);
                let n = n.min(self.filled / span);
                for p in &mut self.parity[..n] {
                    p.clear();
                }
                // history[j] is packet seq-1-j; start = seq - n·span, entry k covers
                // start + k + i·n, so packet seq-1-j is in entry (n·span - 1 - j) mod n.
                for j in 0..n * span {
                    let h = &self.history[j];
                    let p = &mut self.parity[(n * span - 1 - j) % n];
                    if p.len() < h.len() {
                        p.resize(h.len(), 0);
                    }
                    for (d, s) in p.iter_mut().zip(h) {
                        *d ^= s;
                    }
                }
                w.byte(0x80)?;
                w.byte(0x01)?;
                w.byte(span as u8)?;
                let mut size = w.at + 1;
                let mut count = 0;
                for p in &self.parity[..n] {
                    size += open_size(p.len());
                    if size > self.max_datagram {
                        break;
                    }
                    count += 1;
                }
                // Entries that do not fit are dropped whole: the receiver then cannot use
                // this packet's FEC (its start sequence depends on the count), as with
                // rtpengine.
                let count = if count == n { n } else { 0 };
                w.len(count)?;
                for p in &self.parity[..count] {
                    w.open(p)?;
                }
            }
        }
        self.seq = self.seq.wrapping_add(1);
        if !self.history.is_empty() {
            self.history.rotate_right(1);
            let slot = &mut self.history[0];
            slot.clear();
            slot.extend_from_slice(ifp);
            self.filled = (self.filled + 1).min(self.history.len());
        }
        Ok(w.at)
    }

    /// The sequence number the next packet gets.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }
}

/// One remembered received IFP packet.
#[derive(Debug, Default)]
struct Held {
    seq: Option<u16>,
    ifp: Vec<u8>,
}

/// The receiving half (rtpengine: the `sequencer` and `udptl_fec` of its `t38_gateway`):
/// hands IFP packets to the T.38 engine in sequence, filling gaps from the redundancy or
/// FEC of later packets. Packets older than the last delivered one (late or duplicate) are
/// dropped; a gap nothing can fill is skipped (the T.38 engine sees the sequence jump).
#[derive(Debug)]
pub struct UdptlReceiver {
    /// The next sequence number expected; `None` before the first packet.
    next: Option<u16>,
    held: Vec<Held>,
    /// Scratch for a recovered packet.
    scratch: Vec<u8>,
}

impl Default for UdptlReceiver {
    fn default() -> Self {
        UdptlReceiver::new()
    }
}

/// `a` is before `b` in 16-bit sequence space.
fn before(a: u16, b: u16) -> bool {
    (b.wrapping_sub(a) as i16) > 0
}

impl UdptlReceiver {
    pub fn new() -> UdptlReceiver {
        UdptlReceiver {
            next: None,
            held: ifp_buffers(RX_HISTORY)
                .into_iter()
                .map(|ifp| Held { seq: None, ifp })
                .collect(),
            scratch: Vec::with_capacity(IFP_RESERVE),
        }
    }

    fn remember(&mut self, seq: u16, ifp: &[u8]) {
        let h = &mut self.held[usize::from(seq) % RX_HISTORY];
        h.seq = Some(seq);
        h.ifp.clear();
        h.ifp.extend_from_slice(ifp);
    }

    fn known(&self, seq: u16) -> Option<&[u8]> {
        let h = &self.held[usize::from(seq) % RX_HISTORY];
        (h.seq == Some(seq)).then_some(h.ifp.as_slice())
    }

    /// Take one datagram; `deliver(seq, ifp)` is called for each IFP packet now due, in
    /// sequence order. Returns how many were delivered.
    pub fn handle(&mut self, pkt: &UdptlPacket<'_>, mut deliver: impl FnMut(u16, &[u8])) -> usize {
        let seq = pkt.seq;
        let next = *self.next.get_or_insert(seq);
        if before(seq, next) {
            return 0;
        }
        let mut delivered = 0;
        if seq != next {
            // A gap: next ..= seq-1 are missing. Fill what the recovery carries.
            let missing = seq.wrapping_sub(next);
            match pkt.recovery {
                Recovery::Secondary(entries) => {
                    // Entry i is seq-1-i; deliver oldest first.
                    let have = entries.len().min(usize::from(missing));
                    for back in (0..have).rev() {
                        let Some(ifp) = entries.clone().nth(back) else {
                            continue;
                        };
                        let s = seq.wrapping_sub(1 + back as u16);
                        deliver(s, ifp);
                        delivered += 1;
                    }
                }
                Recovery::Fec { span, entries } => {
                    self.remember(seq, pkt.primary);
                    delivered += self.recover_fec(seq, next, span, entries, &mut deliver);
                }
            }
        }
        self.remember(seq, pkt.primary);
        deliver(seq, pkt.primary);
        self.next = Some(seq.wrapping_add(1));
        delivered + 1
    }

    /// Recover packets in `next .. seq` from FEC entries and deliver them in order.
    fn recover_fec(
        &mut self,
        seq: u16,
        next: u16,
        span: u8,
        entries: Entries<'_>,
        deliver: &mut impl FnMut(u16, &[u8]),
    ) -> usize {
        let n = entries.len();
        let span = usize::from(span);
        if n == 0 || n * span > RX_HISTORY {
            return 0;
        }
        let start = seq.wrapping_sub((n * span) as u16);
        // Recover each entry's one missing packet, if it has exactly one.
        let mut recovered: [Option<u16>; MAX_EC_ENTRIES] = [None; MAX_EC_ENTRIES];
        for (k, parity) in entries.enumerate().take(MAX_EC_ENTRIES) {
            let covered = (0..span).map(|i| start.wrapping_add((k + i * n) as u16));
            let mut lost = None;
            let mut count = 0;
            for s in covered.clone() {
                if self.known(s).is_none() {
                    lost = Some(s);
                    count += 1;
                }
            }
            let Some(lost) = lost.filter(|_| count == 1) else {
                continue;
            };
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            out.extend_from_slice(parity);
            for s in covered.filter(|&s| s != lost) {
                if let Some(ifp) = self.known(s) {
                    if out.len() < ifp.len() {
                        out.resize(ifp.len(), 0);
                    }
                    for (d, b) in out.iter_mut().zip(ifp) {
                        *d ^= b;
                    }
                }
            }
            self.remember(lost, &out);
            self.scratch = out;
            recovered[k] = Some(lost);
        }
        // Deliver the recovered ones of the gap, oldest first.
        let mut delivered = 0;
        let mut s = next;
        while s != seq {
            if recovered.iter().flatten().any(|&r| r == s) {
                if let Some(ifp) = self.known(s) {
                    deliver(s, ifp);
                    delivered += 1;
                }
            }
            s = s.wrapping_add(1);
        }
        delivered
    }
}

#[cfg(test)]
mod tests;
