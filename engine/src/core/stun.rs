//! STUN (RFC 5389 / RFC 8489), sans-IO, for ICE-lite (RFC 8445 §2.5): parse Binding
//! requests, check them against our short-term credentials, and write Binding responses
//! (and requests, for tests and a future full ICE agent) into caller buffers.
//!
//! Parsing borrows the datagram and never allocates; every attribute is bounds-checked
//! against the header length, which must match the datagram exactly. FINGERPRINT, when
//! present, must be last and is verified during parsing; MESSAGE-INTEGRITY is verified on
//! request with the key (for ICE, the local `a=ice-pwd`). Attributes after
//! MESSAGE-INTEGRITY other than FINGERPRINT are ignored (RFC 5389 §15.4).
//! rtpengine's equivalent is `stun.c` (`stun()`, `stun_binding_success`, `stun_error`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// STUN magic cookie (RFC 5389 §6).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Message header length.
pub const HEADER_LEN: usize = 20;
/// XOR applied to the CRC-32 in FINGERPRINT (RFC 5389 §15.5): "STUN".
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Longest USERNAME allowed (RFC 5389 §15.3).
const MAX_USERNAME: usize = 513;

/// The Binding method.
pub const METHOD_BINDING: u16 = 0x001;

/// Attribute types used here (RFC 5389 §18.2, RFC 8445 §16.1).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// A 96-bit transaction id.
pub type TransactionId = [u8; 12];

/// Why a datagram is not an acceptable STUN message, or why a Binding request was refused.
/// `Copy` so the packet path can count by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("STUN message shorter than its header")]
    TooShort,
    #[error("not a STUN message (first bits or magic cookie)")]
    NotStun,
    #[error("STUN length field does not match the datagram")]
    BadLength,
    #[error("STUN attribute {0:#06x} malformed or out of bounds")]
    BadAttribute(u16),
    #[error("STUN FINGERPRINT mismatch")]
    BadFingerprint,
    #[error("STUN MESSAGE-INTEGRITY missing")]
    NoIntegrity,
    #[error("STUN MESSAGE-INTEGRITY mismatch")]
    BadIntegrity,
    #[error("STUN USERNAME missing")]
    NoUsername,
    #[error("STUN USERNAME does not name our ufrag")]
    WrongUsername,
    #[error("STUN FINGERPRINT missing")]
    NoFingerprint,
    #[error("not a Binding request")]
    NotBindingRequest,
    #[error("unknown comprehension-required attribute {0:#06x}")]
    UnknownAttribute(u16),
    #[error("output buffer too small for the STUN message")]
    BufferTooSmall,
}

impl StunError {
    /// The error response a Binding request refused for this reason gets (RFC 5389 §10.1.2,
    /// RFC 8445 §7.3.1.1), or None when it should be dropped silently.
    pub fn response_code(self) -> Option<u16> {
        match self {
            StunError::NoIntegrity | StunError::NoUsername | StunError::BadAttribute(_) => {
                Some(400)
            }
            StunError::BadIntegrity | StunError::WrongUsername => Some(401),
            StunError::UnknownAttribute(_) => Some(420),
            _ => None,
        }
    }
}

/// Message class (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunClass {
    Request,
    Indication,
    Success,
    Error,
}

impl StunClass {
    fn bits(self) -> u16 {
        match self {
            StunClass::Request => 0x0000,
            StunClass::Indication => 0x0010,
            StunClass::Success => 0x0100,
            StunClass::Error => 0x0110,
        }
    }
}

fn message_type(class: StunClass, method: u16) -> u16 {
    (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | class.bits()
}

/// ICE role claimed in a request, with its tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    Controlling(u64),
    Controlled(u64),
}

/// A parsed STUN message borrowing the datagram (rtpengine's `struct stun_attrs`).
#[derive(Debug, Clone, Copy)]
pub struct StunMessage<'a> {
    raw: &'a [u8],
    pub class: StunClass,
    pub method: u16,
    pub transaction_id: TransactionId,
    pub username: Option<&'a [u8]>,
    pub software: Option<&'a [u8]>,
    pub priority: Option<u32>,
    pub role: Option<IceRole>,
    pub use_candidate: bool,
    pub xor_mapped_address: Option<SocketAddr>,
    /// ERROR-CODE: code (300..=699) and reason phrase bytes.
    pub error_code: Option<(u16, &'a [u8])>,
    /// First comprehension-required attribute we do not understand.
    pub unknown_required: Option<u16>,
    /// Offset of the MESSAGE-INTEGRITY attribute header.
    integrity_at: Option<usize>,
    /// A FINGERPRINT was present (and verified).
    pub has_fingerprint: bool,
}

impl<'a> StunMessage<'a> {
    /// Parse and bounds-check a whole datagram; verifies FINGERPRINT if present.
    pub fn parse(buf: &'a [u8]) -> Result<StunMessage<'a>, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::TooShort);
        }
        if buf[0] & 0xc0 != 0 || be32(&buf[4..8]) != MAGIC_COOKIE {
            return Err(StunError::NotStun);
        }
        let msg_type = be16(&buf[0..2]);
        let len = be16(&buf[2..4]) as usize;
        if len & 3 != 0 || HEADER_LEN + len != buf.len() {
            return Err(StunError::BadLength);
        }
        let class = match msg_type & 0x0110 {
            0x0000 => StunClass::Request,
            0x0010 => StunClass::Indication,
            0x0100 => StunClass::Success,
            _ => StunClass::Error,
        };
        let method = (msg_type & 0x000f) | ((msg_type & 0x00e0) >> 1) | ((msg_type & 0x3e00) >> 2);
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&buf[8..20]);
        let mut msg = StunMessage {
            raw: buf,
            class,
            method,
            transaction_id,
            username: None,
            software: None,
            priority: None,
            role: None,
            use_candidate: false,
            xor_mapped_address: None,
            error_code: None,
            unknown_required: None,
            integrity_at: None,
            has_fingerprint: false,
        };

        let mut pos = HEADER_LEN;
        while pos < buf.len() {
            if msg.has_fingerprint {
                // FINGERPRINT must be the last attribute.
                return Err(StunError::BadAttribute(attr::FINGERPRINT));
            }
            let head = buf.get(pos..pos + 4).ok_or(StunError::BadAttribute(0))?;
            let (atype, alen) = (be16(&head[0..2]), be16(&head[2..4]) as usize);
            let start = pos + 4;
            let next = start + alen.div_ceil(4) * 4;
            if next > buf.len() {
                return Err(StunError::BadAttribute(atype));
            }
            let value = &buf[start..start + alen];
            let bad = StunError::BadAttribute(atype);
            if atype == attr::FINGERPRINT {
                if alen != 4 {
                    return Err(bad);
                }
                let crc = crc32fast::hash(&buf[..pos]) ^ FINGERPRINT_XOR;
                if crc != be32(value) {
                    return Err(StunError::BadFingerprint);
                }
                msg.has_fingerprint = true;
            } else if msg.integrity_at.is_some() {
                // Ignored after MESSAGE-INTEGRITY.
            } else {
                match atype {
                    attr::MESSAGE_INTEGRITY => {
                        if alen != 20 {
                            return Err(bad);
                        }
                        msg.integrity_at = Some(pos);
                    }
                    attr::USERNAME => {
                        if alen > MAX_USERNAME {
                            return Err(bad);
                        }
                        msg.username = Some(value);
                    }
                    attr::SOFTWARE => msg.software = Some(value),
                    attr::PRIORITY => {
                        if alen != 4 {
                            return Err(bad);
                        }
                        msg.priority = Some(be32(value));
                    }
                    attr::USE_CANDIDATE => {
                        if alen != 0 {
                            return Err(bad);
                        }
                        msg.use_candidate = true;
                    }
                    attr::ICE_CONTROLLED | attr::ICE_CONTROLLING => {
                        if alen != 8 {
                            return Err(bad);
                        }
                        let tie = u64::from_be_bytes(value.try_into().map_err(|_| bad)?);
                        msg.role = Some(if atype == attr::ICE_CONTROLLING {
                            IceRole::Controlling(tie)
                        } else {
                            IceRole::Controlled(tie)
                        });
                    }
                    attr::XOR_MAPPED_ADDRESS => {
                        msg.xor_mapped_address =
                            Some(read_xor_address(value, &transaction_id).ok_or(bad)?);
                    }
                    attr::ERROR_CODE => {
                        if alen < 4 {
                            return Err(bad);
                        }
                        let code = (value[2] & 0x07) as u16 * 100 + value[3] as u16;
                        if !(300..700).contains(&code) || value[3] > 99 {
                            return Err(bad);
                        }
                        msg.error_code = Some((code, &value[4..]));
                    }
                    t if t < 0x8000
                        && msg.unknown_required.is_none()
                        && t != attr::MAPPED_ADDRESS
                        && t != attr::UNKNOWN_ATTRIBUTES =>
                    {
                        msg.unknown_required = Some(t);
                    }
                    _ => {}
                }
            }
            pos = next;
        }
        Ok(msg)
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Check MESSAGE-INTEGRITY with `key` (short-term credential: the password bytes,
    /// RFC 5389 §15.4; ICE uses the receiver's `ice-pwd`).
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity_at.ok_or(StunError::NoIntegrity)?;
        let expected = integrity(self.raw, at, key);
        let got = &self.raw[at + 4..at + 24];
        if bool::from(expected.ct_eq(got)) {
            Ok(())
        } else {
            Err(StunError::BadIntegrity)
        }
    }
}

/// HMAC-SHA1 over the message up to MESSAGE-INTEGRITY at `at`, with the header length
/// field counting up to the end of that attribute.
fn integrity(buf: &[u8], at: usize, key: &[u8]) -> [u8; 20] {
    let len = (at + 24 - HEADER_LEN) as u16;
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&buf[0..2]);
    mac.update(&len.to_be_bytes());
    mac.update(&buf[4..at]);
    mac.finalize().into_bytes().into()
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn read_xor_address(v: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let port = be16(v.get(2..4)?) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(tid);
    let ip = match (v.first()?, v.get(1)?) {
        (_, 0x01) if v.len() == 8 => {
            let mut a = [0u8; 4];
            for (i, b) in a.iter_mut().enumerate() {
                *b = v[4 + i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (_, 0x02) if v.len() == 20 => {
            let mut a = [0u8; 16];
            for (i, b) in a.iter_mut().enumerate() {
                *b = v[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A Binding request that passed the ICE-lite checks: what the caller needs to answer it
/// and to latch/nominate (rtpengine's `stun_attrs` as consumed by `ice.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceBindingRequest<'a> {
    pub transaction_id: TransactionId,
    /// The remote ufrag (after the colon in USERNAME).
    pub remote_ufrag: &'a [u8],
    pub priority: Option<u32>,
    pub role: Option<IceRole>,
    pub use_candidate: bool,
}

/// Check a parsed message as an ICE connectivity check to us: a Binding request with
/// FINGERPRINT, USERNAME `local_ufrag:remote`, and MESSAGE-INTEGRITY keyed with our
/// `local_pwd` (RFC 8445 §7.3). On error, [`StunError::response_code`] says which error
/// response to send, if any.
pub fn check_ice_binding_request<'a>(
    msg: &StunMessage<'a>,
    local_ufrag: &[u8],
    local_pwd: &[u8],
) -> Result<IceBindingRequest<'a>, StunError> {
    if msg.class != StunClass::Request || msg.method != METHOD_BINDING {
        return Err(StunError::NotBindingRequest);
    }
    if !msg.has_fingerprint {
        return Err(StunError::NoFingerprint);
    }
    let username = msg.username.ok_or(StunError::NoUsername)?;
    if !msg.has_integrity() {
        return Err(StunError::NoIntegrity);
    }
    msg.verify_integrity(local_pwd)?;
    let remote_ufrag = username
        .strip_prefix(local_ufrag)
        .and_then(|rest| rest.strip_prefix(b":"))
        .ok_or(StunError::WrongUsername)?;
    if let Some(t) = msg.unknown_required {
        return Err(StunError::UnknownAttribute(t));
    }
    Ok(IceBindingRequest {
        transaction_id: msg.transaction_id,
        remote_ufrag,
        priority: msg.priority,
        role: msg.role,
        use_candidate: msg.use_candidate,
    })
}

/// Builds one STUN message into a caller buffer. Attributes go in call order; finish with
/// [`StunWriter::integrity`] and/or [`StunWriter::fingerprint`], then [`StunWriter::len`].
pub struct StunWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Byte used to pad attribute values to 4 bytes (any value is valid; RFC 5769's
    /// vectors use 0x20).
    pub pad: u8,
}

impl<'b> StunWriter<'b> {
    pub fn new(
        buf: &'b mut [u8],
        class: StunClass,
        method: u16,
        tid: &TransactionId,
    ) -> Result<StunWriter<'b>, StunError> {
        let head = buf.get_mut(..HEADER_LEN).ok_or(StunError::BufferTooSmall)?;
        head[0..2].copy_from_slice(&message_type(class, method).to_be_bytes());
        head[2..4].fill(0);
        head[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        head[8..20].copy_from_slice(tid);
        Ok(StunWriter {
            buf,
            len: HEADER_LEN,
            pad: 0,
        })
    }

    fn transaction_id(&self) -> TransactionId {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        t
    }

    fn set_length(&mut self) {
        let l = (self.len - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&l.to_be_bytes());
    }

    /// Append an attribute with `value`.
    pub fn attr(&mut self, atype: u16, value: &[u8]) -> Result<&mut Self, StunError> {
        self.attr_with(atype, value.len(), |out| out.copy_from_slice(value))
    }

    fn attr_with(
        &mut self,
        atype: u16,
        vlen: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&mut Self, StunError> {
        let padded = vlen.div_ceil(4) * 4;
        let end = self.len + 4 + padded;
        if vlen > u16::MAX as usize || end - HEADER_LEN > u16::MAX as usize {
            return Err(StunError::BufferTooSmall);
        }
        let out = self
            .buf
            .get_mut(self.len..end)
            .ok_or(StunError::BufferTooSmall)?;
        out[0..2].copy_from_slice(&atype.to_be_bytes());
        out[2..4].copy_from_slice(&(vlen as u16).to_be_bytes());
        fill(&mut out[4..4 + vlen]);
        out[4 + vlen..].fill(self.pad);
        self.len = end;
        self.set_length();
        Ok(self)
    }

    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<&mut Self, StunError> {
        let tid = self.transaction_id();
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&tid);
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let (family, octets, n): (u8, [u8; 16], usize) = match addr.ip() {
            IpAddr::V4(ip) => {
                let mut o = [0u8; 16];
                o[..4].copy_from_slice(&ip.octets());
                (1, o, 4)
            }
            IpAddr::V6(ip) => (2, ip.octets(), 16),
        };
        self.attr_with(attr::XOR_MAPPED_ADDRESS, 4 + n, |out| {
            out[0] = 0;
            out[1] = family;
            out[2..4].copy_from_slice(&port.to_be_bytes());
            for i in 0..n {
                out[4 + i] = octets[i] ^ mask[i];
            }
        })
    }

    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<&mut Self, StunError> {
        let r = reason.as_bytes();
        self.attr_with(attr::ERROR_CODE, 4 + r.len(), |out| {
            out[0] = 0;
            out[1] = 0;
            out[2] = (code / 100) as u8 & 0x07;
            out[3] = (code % 100) as u8;
            out[4..].copy_from_slice(r);
        })
    }

    /// Append MESSAGE-INTEGRITY keyed with `key`.
    pub fn integrity(&mut self, key: &[u8]) -> Result<&mut Self, StunError> {
        let at = self.len;
        self.attr_with(attr::MESSAGE_INTEGRITY, 20, |out| out.fill(0))?;
        let mac = integrity(self.buf, at, key);
        self.buf[at + 4..at + 24].copy_from_slice(&mac);
        Ok(self)
    }

    /// Append FINGERPRINT; must be last.
    pub fn fingerprint(&mut self) -> Result<&mut Self, StunError> {
        let at = self.len;
        self.attr_with(attr::FINGERPRINT, 4, |out| out.fill(0))?;
        let crc = crc32fast::hash(&self.buf[..at]) ^ FINGERPRINT_XOR;
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(self)
    }

    /// Length of the message written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Write a Binding success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY with our
/// `ice-pwd`, FINGERPRINT) into `buf`; returns its length.
pub fn write_binding_success(
    buf: &mut [u8],
    tid: &TransactionId,
    mapped: SocketAddr,
    key: &[u8],
) -> Result<usize, StunError> {
    let mut w = StunWriter::new(buf, StunClass::Success, METHOD_BINDING, tid)?;
    w.xor_mapped_address(mapped)?
        .integrity(key)?
        .fingerprint()?;
    Ok(w.len())
}

/// Write a Binding error response with FINGERPRINT and, when `key` is given (the request
/// authenticated, e.g. 487 Role Conflict), MESSAGE-INTEGRITY; returns its length.
pub fn write_binding_error(
    buf: &mut [u8],
    tid: &TransactionId,
    code: u16,
    key: Option<&[u8]>,
) -> Result<usize, StunError> {
    let reason = match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        420 => "Unknown Attribute",
        487 => "Role Conflict",
        500 => "Server Error",
        _ => "Error",
    };
    let mut w = StunWriter::new(buf, StunClass::Error, METHOD_BINDING, tid)?;
    w.error_code(code, reason)?;
    if let Some(key) = key {
        w.integrity(key)?;
    }
    w.fingerprint()?;
    Ok(w.len())
}

/// Parameters of a Binding request we send (ICE connectivity check).
#[derive(Debug, Clone, Copy)]
pub struct BindingRequestParams<'p> {
    /// `remote_ufrag:local_ufrag`.
    pub username: &'p [u8],
    /// The remote side's `ice-pwd`.
    pub key: &'p [u8],
    pub priority: u32,
    pub role: IceRole,
    pub use_candidate: bool,
    pub software: Option<&'p [u8]>,
}

/// Write a Binding request (SOFTWARE, PRIORITY, ICE-CONTROLLING/CONTROLLED, USE-CANDIDATE,
/// USERNAME, MESSAGE-INTEGRITY, FINGERPRINT in RFC 5769's order) into `buf`.
pub fn write_binding_request(
    buf: &mut [u8],
    tid: &TransactionId,
    p: &BindingRequestParams<'_>,
    pad: u8,
) -> Result<usize, StunError> {
    let mut w = StunWriter::new(buf, StunClass::Request, METHOD_BINDING, tid)?;
    w.pad = pad;
    if let Some(s) = p.software {
        w.attr(attr::SOFTWARE, s)?;
    }
    w.attr(attr::PRIORITY, &p.priority.to_be_bytes())?;
    match p.role {
        IceRole::Controlling(t) => w.attr(attr::ICE_CONTROLLING, &t.to_be_bytes())?,
        IceRole::Controlled(t) => w.attr(attr::ICE_CONTROLLED, &t.to_be_bytes())?,
    };
    if p.use_candidate {
        w.attr(attr::USE_CANDIDATE, &[])?;
    }
    w.attr(attr::USERNAME, p.username)?
        .integrity(p.key)?
        .fingerprint()?;
    Ok(w.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];
    const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

    /// RFC 5769 §2.1: sample request (SOFTWARE "STUN test client", PRIORITY, ICE-CONTROLLED,
    /// USERNAME "evtj:h6vY", MESSAGE-INTEGRITY, FINGERPRINT; padding bytes are 0x20).
    const REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];

    /// RFC 5769 §2.2: sample IPv4 response, 192.0.2.1:32853, SOFTWARE "test vector".
    const RESPONSE_V4: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769 §2.3: sample IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    const RESPONSE_V6: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01,
        0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9,
        0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    #[test]
    fn rfc5769_request_parses_and_authenticates() {
        let msg = StunMessage::parse(&REQUEST).unwrap();
        assert_eq!(msg.class, StunClass::Request);
        assert_eq!(msg.method, METHOD_BINDING);
        assert_eq!(msg.transaction_id, TID);
        assert_eq!(msg.username, Some(&b"evtj:h6vY"[..]));
        assert_eq!(msg.software, Some(&b"STUN test client"[..]));
        assert_eq!(msg.priority, Some(0x6e0001ff));
        assert_eq!(msg.role, Some(IceRole::Controlled(0x932ff9b151263b36)));
        assert!(!msg.use_candidate && msg.has_fingerprint);
        msg.verify_integrity(PASSWORD).unwrap();
        assert_eq!(msg.verify_integrity(b"wrong"), Err(StunError::BadIntegrity));

        let ice = check_ice_binding_request(&msg, b"evtj", PASSWORD).unwrap();
        assert_eq!(ice.remote_ufrag, b"h6vY");
        assert_eq!(ice.transaction_id, TID);
        assert_eq!(
            check_ice_binding_request(&msg, b"evt", PASSWORD),
            Err(StunError::WrongUsername)
        );
        assert_eq!(
            check_ice_binding_request(&msg, b"evtj", b"nope")
                .unwrap_err()
                .response_code(),
            Some(401)
        );
    }

    #[test]
    fn rfc5769_request_is_rebuilt_byte_exact() {
        let mut buf = [0u8; 200];
        let n = write_binding_request(
            &mut buf,
            &TID,
            &BindingRequestParams {
                username: b"evtj:h6vY",
                key: PASSWORD,
                priority: 0x6e0001ff,
                role: IceRole::Controlled(0x932ff9b151263b36),
                use_candidate: false,
                software: Some(b"STUN test client"),
            },
            0x20,
        )
        .unwrap();
        assert_eq!(&buf[..n], &REQUEST[..]);
    }

    fn response(addr: SocketAddr) -> Vec<u8> {
        let mut buf = [0u8; 200];
        let mut w = StunWriter::new(&mut buf, StunClass::Success, METHOD_BINDING, &TID).unwrap();
        w.pad = 0x20;
        w.attr(attr::SOFTWARE, b"test vector")
            .unwrap()
            .xor_mapped_address(addr)
            .unwrap()
            .integrity(PASSWORD)
            .unwrap()
            .fingerprint()
            .unwrap();
        let n = w.len();
        buf[..n].to_vec()
    }

    #[test]
    fn rfc5769_responses_byte_exact() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        assert_eq!(response(v4), RESPONSE_V4);
        assert_eq!(response(v6), RESPONSE_V6);
        for (bytes, addr) in [(&RESPONSE_V4[..], v4), (&RESPONSE_V6[..], v6)] {
            let msg = StunMessage::parse(bytes).unwrap();
            assert_eq!(msg.class, StunClass::Success);
            assert_eq!(msg.xor_mapped_address, Some(addr));
            msg.verify_integrity(PASSWORD).unwrap();
        }
    }

    #[test]
    fn success_and_error_responses_round_trip() {
        let mut buf = [0u8; 128];
        let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let n = write_binding_success(&mut buf, &TID, addr, b"pwd").unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(
            (msg.class, msg.xor_mapped_address),
            (StunClass::Success, Some(addr))
        );
        msg.verify_integrity(b"pwd").unwrap();
        assert!(msg.has_fingerprint);

        for (code, key) in [(400, None), (401, None), (487, Some(&b"pwd"[..]))] {
            let n = write_binding_error(&mut buf, &TID, code, key).unwrap();
            let msg = StunMessage::parse(&buf[..n]).unwrap();
            assert_eq!(msg.class, StunClass::Error);
            assert_eq!(msg.error_code.map(|e| e.0), Some(code));
            assert_eq!(msg.has_integrity(), key.is_some());
        }
        let n = write_binding_error(&mut buf, &TID, 487, None).unwrap();
        let (_, reason) = StunMessage::parse(&buf[..n]).unwrap().error_code.unwrap();
        assert_eq!(reason, b"Role Conflict");
        // Too small a buffer is an error.
        assert_eq!(
            write_binding_success(&mut [0u8; 40], &TID, addr, b"pwd"),
            Err(StunError::BufferTooSmall)
        );
    }

    #[test]
    fn ice_checks_require_fingerprint_username_and_integrity() {
        let mut buf = [0u8; 200];
        let params = BindingRequestParams {
            username: b"ours:theirs",
            key: b"our-pwd",
            priority: 1,
            role: IceRole::Controlling(7),
            use_candidate: true,
            software: None,
        };
        let n = write_binding_request(&mut buf, &TID, &params, 0).unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        let ok = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap();
        assert!(ok.use_candidate);
        assert_eq!(ok.role, Some(IceRole::Controlling(7)));

        // No integrity, no username, no fingerprint.
        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.attr(attr::USERNAME, b"ours:theirs")
            .unwrap()
            .fingerprint()
            .unwrap();
        let n = w.len();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        let err = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap_err();
        assert_eq!(
            (err, err.response_code()),
            (StunError::NoIntegrity, Some(400))
        );

        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.integrity(b"our-pwd").unwrap().fingerprint().unwrap();
        let n = w.len();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(
            check_ice_binding_request(&msg, b"ours", b"our-pwd"),
            Err(StunError::NoUsername)
        );

        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.attr(attr::USERNAME, b"ours:theirs")
            .unwrap()
            .integrity(b"our-pwd")
            .unwrap();
        let n = w.len();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(
            check_ice_binding_request(&msg, b"ours", b"our-pwd"),
            Err(StunError::NoFingerprint)
        );

        // Unknown comprehension-required attribute -> 420.
        let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.attr(0x7777, b"x").unwrap();
        w.attr(attr::USERNAME, b"ours:theirs")
            .unwrap()
            .integrity(b"our-pwd")
            .unwrap()
            .fingerprint()
            .unwrap();
        let n = w.len();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        let err = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap_err();
        assert_eq!(err.response_code(), Some(420));
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert_eq!(
            StunMessage::parse(&REQUEST[..19]).unwrap_err(),
            StunError::TooShort
        );
        assert_eq!(
            StunMessage::parse(&REQUEST[..100]).unwrap_err(),
            StunError::BadLength
        );
        let mut long = REQUEST.to_vec();
        long.extend_from_slice(&[0; 4]);
        assert_eq!(StunMessage::parse(&long).unwrap_err(), StunError::BadLength);
        let mut bad_len = REQUEST;
        bad_len[3] = 0x57;
        assert_eq!(
            StunMessage::parse(&bad_len).unwrap_err(),
            StunError::BadLength
        );
        let mut cookie = REQUEST;
        cookie[5] ^= 1;
        assert_eq!(StunMessage::parse(&cookie).unwrap_err(), StunError::NotStun);
        let mut rtp = REQUEST;
        rtp[0] = 0x80;
        assert_eq!(StunMessage::parse(&rtp).unwrap_err(), StunError::NotStun);
        // A flipped bit in the body breaks the fingerprint...
        let mut fp = REQUEST;
        fp[30] ^= 1;
        assert_eq!(
            StunMessage::parse(&fp).unwrap_err(),
            StunError::BadFingerprint
        );
        // ...and with the fingerprint recomputed, the integrity.
        let crc = crc32fast::hash(&fp[..100]) ^ FINGERPRINT_XOR;
        fp[104..108].copy_from_slice(&crc.to_be_bytes());
        let msg = StunMessage::parse(&fp).unwrap();
        assert_eq!(msg.verify_integrity(PASSWORD), Err(StunError::BadIntegrity));
        // Attribute length running past the end.
        let mut overrun = REQUEST;
        overrun[23] = 0xff;
        assert!(matches!(
            StunMessage::parse(&overrun),
            Err(StunError::BadAttribute(_))
        ));
        // Wrong fixed-size attribute length (PRIORITY of 8 bytes would misalign; use 0).
        let mut w_buf = [0u8; 64];
        let mut w = StunWriter::new(&mut w_buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
        w.attr(attr::PRIORITY, &[1, 2]).unwrap();
        let n = w.len();
        assert_eq!(
            StunMessage::parse(&w_buf[..n]).unwrap_err(),
            StunError::BadAttribute(attr::PRIORITY)
        );
    }

    /// 10 000 mutated datagrams (bit flips, byte overwrites, truncation, extension) never
    /// panic; every outcome is Ok or a StunError.
    #[test]
    fn mutation_fuzz_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let seeds: [&[u8]; 3] = [&REQUEST, &RESPONSE_V4, &RESPONSE_V6];
        let mut parsed = 0;
        for i in 0..10_000 {
            let mut d = seeds[i % 3].to_vec();
            for _ in 0..1 + next() % 4 {
                let r = next();
                match r % 4 {
                    0 => {
                        let p = (r >> 8) as usize % d.len();
                        d[p] ^= 1 << ((r >> 40) % 8);
                    }
                    1 => {
                        let p = (r >> 8) as usize % d.len();
                        d[p] = (r >> 32) as u8;
                    }
                    2 => d.truncate((r >> 8) as usize % (d.len() + 1)),
                    _ => d.extend((0..(r >> 8) % 9).map(|k| k as u8)),
                }
                if d.is_empty() {
                    d.push(0);
                }
            }
            // Keep the header's length field consistent half the time so the attribute
            // walker is exercised rather than rejected up front.
            if i % 2 == 0 && d.len() >= HEADER_LEN {
                let l = ((d.len() - HEADER_LEN) as u16).to_be_bytes();
                d[2..4].copy_from_slice(&l);
            }
            if let Ok(msg) = StunMessage::parse(&d) {
                parsed += 1;
                let _ = msg.verify_integrity(PASSWORD);
                let _ = check_ice_binding_request(&msg, b"evtj", PASSWORD);
            }
        }
        // Some mutations (e.g. of padding bytes before a recomputed length) still parse.
        assert!(parsed < 10_000);
    }
}
