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

pub mod agent;

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

/// Write a Binding request (SOFTWARE, USERNAME, ICE-CONTROLLING/CONTROLLED, PRIORITY,
/// USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT: rtpengine's order, which its tests match
/// byte by byte) into `buf`.
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
    w.attr(attr::USERNAME, p.username)?;
    match p.role {
        IceRole::Controlling(t) => w.attr(attr::ICE_CONTROLLING, &t.to_be_bytes())?,
        IceRole::Controlled(t) => w.attr(attr::ICE_CONTROLLED, &t.to_be_bytes())?,
    };
    w.attr(attr::PRIORITY, &p.priority.to_be_bytes())?;
    if p.use_candidate {
        w.attr(attr::USE_CANDIDATE, &[])?;
    }
    w.integrity(p.key)?.fingerprint()?;
    Ok(w.len())
}

#[cfg(test)]
mod tests;
