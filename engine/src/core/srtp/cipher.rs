//! Session keys and the per-packet transforms: AES-CM + HMAC-SHA1 (RFC 3711 §4.1.1, §4.2),
//! AES-f8 + HMAC-SHA1 (RFC 3711 §4.1.2), NULL + HMAC-SHA1, and AES-GCM (RFC 7714 §8, §9).
//!
//! Everything expensive happens once in [`SessionKeys::derive`]: AES key schedules, the
//! HMAC inner/outer pads (a keyed `Hmac<Sha1>` that each packet clones), and the GCM hash
//! key. Per packet we copy those small states on the stack and transform the caller's
//! buffer in place; nothing here touches the heap.

use aes::cipher::BlockEncrypt;
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
use ctr::cipher::{InnerIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::kdf::{self, label};
use super::suite::CipherKind;
use super::{SrtpError, SrtpSuite};

type HmacSha1 = Hmac<Sha1>;

/// A keyed AES block cipher for counter mode.
#[derive(Clone)]
enum AesKey {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AesKey {
    fn new(key: &[u8]) -> Result<Self, SrtpError> {
        Ok(match key.len() {
            16 => AesKey::A128(KeyInit::new(key.into())),
            24 => AesKey::A192(KeyInit::new(key.into())),
            32 => AesKey::A256(KeyInit::new(key.into())),
            n => {
                return Err(SrtpError::KeyLength {
                    got: n,
                    expected: 16,
                })
            }
        })
    }

    /// XOR `data` with the AES-CM keystream starting at counter block `iv`.
    #[inline]
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            AesKey::A128(k) => keystream::<Aes128>(k, iv, data),
            AesKey::A192(k) => keystream::<Aes192>(k, iv, data),
            AesKey::A256(k) => keystream::<Aes256>(k, iv, data),
        }
    }
}

/// AES-CTR from a scheduled key: the key schedule is copied, not recomputed.
#[inline]
fn keystream<C>(key: &C, iv: &[u8; 16], data: &mut [u8])
where
    C: ctr::cipher::BlockEncryptMut
        + ctr::cipher::BlockCipher
        + ctr::cipher::BlockSizeUser<BlockSize = ctr::cipher::consts::U16>
        + Clone,
{
    let core = ctr::CtrCore::<C, ctr::flavors::Ctr128BE>::inner_iv_init(key.clone(), iv.into());
    ctr::cipher::StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// AES in f8 mode (RFC 3711 §4.1.2), 128-bit keys only, as the F8 suites define it.
#[derive(Clone)]
struct F8Key {
    /// The session key k_e: S(j) = E(k_e, IV' XOR j XOR S(j-1)).
    key: Aes128,
    /// k_e XOR m with m = k_s || 0x55..55 (§4.1.2.1): IV' = E(k_e XOR m, IV).
    iv_key: Aes128,
}

impl F8Key {
    fn new(session_key: &[u8], session_salt: &[u8]) -> Result<Self, SrtpError> {
        let key: &[u8; 16] = session_key.try_into().map_err(|_| SrtpError::KeyLength {
            got: session_key.len(),
            expected: 16,
        })?;
        if session_salt.len() > 16 {
            return Err(SrtpError::KeyLength {
                got: session_salt.len(),
                expected: 14,
            });
        }
        let mut masked = [0x55u8; 16];
        masked[..session_salt.len()].copy_from_slice(session_salt);
        for (m, k) in masked.iter_mut().zip(key) {
            *m ^= k;
        }
        Ok(F8Key {
            key: Aes128::new(key.into()),
            iv_key: Aes128::new(&masked.into()),
        })
    }

    /// XOR `data` with the f8 keystream for the packet IV `iv`.
    #[inline]
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut block = (*iv).into();
        self.iv_key.encrypt_block(&mut block);
        let iv_prime = u128::from_be_bytes(block.into());
        let mut previous = 0u128;
        for (j, chunk) in data.chunks_mut(16).enumerate() {
            let mut block = (iv_prime ^ j as u128 ^ previous).to_be_bytes().into();
            self.key.encrypt_block(&mut block);
            let stream: [u8; 16] = block.into();
            for (d, s) in chunk.iter_mut().zip(stream) {
                *d ^= s;
            }
            previous = u128::from_be_bytes(stream);
        }
    }
}

/// The confidentiality transform of an HMAC-SHA1 suite. Key schedules stay inline: one
/// per stream, read on every packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum CmCipher {
    /// NULL cipher: authentication only.
    Null,
    /// AES counter mode.
    Ctr(AesKey),
    /// AES f8 mode.
    F8(F8Key),
}

/// Keys for one of RTP or RTCP in a counter-mode, f8 or NULL suite.
#[derive(Clone)]
pub(crate) struct CmKeys {
    cipher: CmCipher,
    salt: [u8; 14],
    mac: HmacSha1,
}

impl CmKeys {
    fn derive(
        suite: SrtpSuite,
        key: &[u8],
        salt: &[u8],
        labels: [u8; 3],
    ) -> Result<Self, SrtpError> {
        let mut enc = [0u8; 32];
        let mut auth = [0u8; 20];
        kdf::derive(key, salt, labels[1], &mut auth)?;
        let mut session_salt = [0u8; 14];
        kdf::derive(key, salt, labels[2], &mut session_salt)?;
        let cipher = match suite.cipher() {
            CipherKind::AesCm(n) => {
                kdf::derive(key, salt, labels[0], &mut enc[..n])?;
                CmCipher::Ctr(AesKey::new(&enc[..n])?)
            }
            CipherKind::AesF8(n) => {
                kdf::derive(key, salt, labels[0], &mut enc[..n])?;
                CmCipher::F8(F8Key::new(&enc[..n], &session_salt)?)
            }
            _ => CmCipher::Null,
        };
        let mac = <HmacSha1 as Mac>::new_from_slice(&auth).map_err(|_| SrtpError::KeyLength {
            got: auth.len(),
            expected: 20,
        })?;
        Ok(CmKeys {
            cipher,
            salt: session_salt,
            mac,
        })
    }

    fn encrypts(&self) -> bool {
        !matches!(self.cipher, CmCipher::Null)
    }

    /// Encrypt or decrypt an RTP payload. `header` is the packet's fixed 12-byte header.
    /// AES-CM (§4.1.1): IV = (k_s << 16) XOR (SSRC << 64) XOR (index << 16).
    /// AES-f8 (§4.1.2.2): IV = 0x00 || M || PT || SEQ || TS || SSRC || ROC.
    #[inline]
    fn crypt_rtp(&self, header: &[u8; 12], ssrc: u32, index: u64, data: &mut [u8]) {
        if data.is_empty() {
            return;
        }
        match &self.cipher {
            CmCipher::Null => {}
            CmCipher::Ctr(aes) => aes.apply_keystream(&self.cm_iv(ssrc, index), data),
            CmCipher::F8(f8) => {
                let mut iv = [0u8; 16];
                iv[1..12].copy_from_slice(&header[1..]);
                iv[12..].copy_from_slice(&((index >> 16) as u32).to_be_bytes());
                f8.apply_keystream(&iv, data);
            }
        }
    }

    /// Encrypt or decrypt an RTCP compound packet past its first 8 bytes (`header`).
    /// AES-CM: the IV above with the SRTCP index. AES-f8 (§4.1.2.3):
    /// IV = 0..0 (32 bits) || E || SRTCP index || V || P || RC || PT || length || SSRC.
    #[inline]
    fn crypt_rtcp(&self, header: &[u8; 8], ssrc: u32, e_index: u32, data: &mut [u8]) {
        if data.is_empty() {
            return;
        }
        match &self.cipher {
            CmCipher::Null => {}
            CmCipher::Ctr(aes) => {
                let index = u64::from(e_index & 0x7fff_ffff);
                aes.apply_keystream(&self.cm_iv(ssrc, index), data)
            }
            CmCipher::F8(f8) => {
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&e_index.to_be_bytes());
                iv[8..].copy_from_slice(header);
                f8.apply_keystream(&iv, data);
            }
        }
    }

    #[inline]
    fn cm_iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    /// Full 20-byte HMAC-SHA1 over `data` followed by `trailer` (the ROC for SRTP).
    #[inline]
    fn mac(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }
}

/// AES-GCM keys for one of RTP or RTCP.
// Variant sizes differ (AES-256 key schedule is larger); boxing would only add a pointer
// chase per packet to a value built once per context.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum GcmCipher {
    A128(Aes128Gcm),
    A256(Aes256Gcm),
}

#[derive(Clone)]
pub(crate) struct GcmKeys {
    cipher: GcmCipher,
    salt: [u8; 12],
}

impl GcmKeys {
    fn derive(key: &[u8], salt: &[u8], labels: [u8; 3]) -> Result<Self, SrtpError> {
        let mut enc = [0u8; 32];
        let n = key.len();
        kdf::derive(key, salt, labels[0], &mut enc[..n])?;
        let mut session_salt = [0u8; 12];
        kdf::derive(key, salt, labels[2], &mut session_salt)?;
        Self::from_session(&enc[..n], &session_salt)
    }

    fn from_session(key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        let cipher = match key.len() {
            16 => GcmCipher::A128(Aes128Gcm::new(key.into())),
            32 => GcmCipher::A256(Aes256Gcm::new(key.into())),
            n => {
                return Err(SrtpError::KeyLength {
                    got: n,
                    expected: 16,
                })
            }
        };
        let salt: [u8; 12] = salt.try_into().map_err(|_| SrtpError::KeyLength {
            got: salt.len(),
            expected: 12,
        })?;
        Ok(GcmKeys { cipher, salt })
    }

    /// RFC 7714 §8.1 / §9.1: the 12-byte IV `00 00 || SSRC || hi || lo` XOR salt, where
    /// (hi, lo) is (ROC, SEQ) for SRTP and (0, SRTCP index) for SRTCP.
    #[inline]
    fn nonce(&self, ssrc: u32, hi: u32, lo: u32, lo_len: usize) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        if lo_len == 2 {
            iv[6..10].copy_from_slice(&hi.to_be_bytes());
            iv[10..12].copy_from_slice(&(lo as u16).to_be_bytes());
        } else {
            iv[8..12].copy_from_slice(&lo.to_be_bytes());
        }
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        iv
    }

    #[inline]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> Result<Tag, SrtpError> {
        let nonce = Nonce::from_slice(nonce);
        match &self.cipher {
            GcmCipher::A128(c) => c.encrypt_in_place_detached(nonce, aad, data),
            GcmCipher::A256(c) => c.encrypt_in_place_detached(nonce, aad, data),
        }
        // Only fails for plaintexts beyond 2^36 bytes, which no datagram reaches.
        .map_err(|_| SrtpError::TooLong)
    }

    /// Verify the tag, then decrypt (aes-gcm decrypts only after a constant-time tag check).
    #[inline]
    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        let nonce = Nonce::from_slice(nonce);
        let tag = Tag::from_slice(tag);
        match &self.cipher {
            GcmCipher::A128(c) => c.decrypt_in_place_detached(nonce, aad, data, tag),
            GcmCipher::A256(c) => c.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .map_err(|_| SrtpError::AuthFailed)
    }
}

/// The fixed RTP header at the start of `head` (the caller parsed at least 12 bytes).
#[inline]
fn fixed_header(head: &[u8]) -> &[u8; 12] {
    head[..12].try_into().expect("RTP header parsed")
}

/// The first 8 bytes of an RTCP packet (the caller checked the minimum length).
#[inline]
fn rtcp_header(head: &[u8]) -> &[u8; 8] {
    head[..8].try_into().expect("RTCP header parsed")
}

/// Session keys for one direction of one master key: RTP and RTCP halves.
// One per context, built once; inline keys keep the packet path free of indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum SessionKeys {
    Cm { rtp: CmKeys, rtcp: CmKeys },
    Gcm { rtp: GcmKeys, rtcp: GcmKeys },
}

impl SessionKeys {
    pub(crate) fn derive(suite: SrtpSuite, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if key.len() != suite.master_key_len() {
            return Err(SrtpError::KeyLength {
                got: key.len(),
                expected: suite.master_key_len(),
            });
        }
        if salt.len() != suite.master_salt_len() {
            return Err(SrtpError::KeyLength {
                got: salt.len(),
                expected: suite.master_salt_len(),
            });
        }
        let rtp_labels = [label::RTP_ENCRYPTION, label::RTP_AUTH, label::RTP_SALT];
        let rtcp_labels = [label::RTCP_ENCRYPTION, label::RTCP_AUTH, label::RTCP_SALT];
        Ok(if suite.is_aead() {
            SessionKeys::Gcm {
                rtp: GcmKeys::derive(key, salt, rtp_labels)?,
                rtcp: GcmKeys::derive(key, salt, rtcp_labels)?,
            }
        } else {
            SessionKeys::Cm {
                rtp: CmKeys::derive(suite, key, salt, rtp_labels)?,
                rtcp: CmKeys::derive(suite, key, salt, rtcp_labels)?,
            }
        })
    }

    /// GCM keys given directly as session key and salt (RFC 7714 §16/§17 vectors are
    /// stated below the KDF).
    #[cfg(test)]
    pub(crate) fn gcm_from_session(key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        Ok(SessionKeys::Gcm {
            rtp: GcmKeys::from_session(key, salt)?,
            rtcp: GcmKeys::from_session(key, salt)?,
        })
    }

    /// Encrypt `buf[hdr..len]` and write the tag at `buf[len..len + tag_len]`.
    /// The caller checked that the tag fits.
    #[inline]
    pub(crate) fn protect_rtp(
        &self,
        tag_len: usize,
        buf: &mut [u8],
        hdr: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<(), SrtpError> {
        let roc = (index >> 16) as u32;
        match self {
            SessionKeys::Cm { rtp, .. } => {
                let (head, body) = buf.split_at_mut(hdr);
                rtp.crypt_rtp(fixed_header(head), ssrc, index, &mut body[..len - hdr]);
                let mac = rtp.mac(&buf[..len], &roc.to_be_bytes());
                buf[len..len + tag_len].copy_from_slice(&mac[..tag_len]);
            }
            SessionKeys::Gcm { rtp, .. } => {
                let nonce = rtp.nonce(ssrc, roc, index as u32 & 0xffff, 2);
                let (aad, rest) = buf.split_at_mut(hdr);
                let tag = rtp.seal(&nonce, aad, &mut rest[..len - hdr])?;
                buf[len..len + tag_len].copy_from_slice(&tag);
            }
        }
        Ok(())
    }

    /// Check the tag at `buf[body..]` and decrypt `buf[hdr..body]` in place.
    #[inline]
    pub(crate) fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        hdr: usize,
        body: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<(), SrtpError> {
        let roc = (index >> 16) as u32;
        match self {
            SessionKeys::Cm { rtp, .. } => {
                let (authed, tag) = buf.split_at(body);
                let mac = rtp.mac(authed, &roc.to_be_bytes());
                if !bool::from(mac[..tag.len()].ct_eq(tag)) {
                    return Err(SrtpError::AuthFailed);
                }
                let (head, payload) = buf.split_at_mut(hdr);
                rtp.crypt_rtp(fixed_header(head), ssrc, index, &mut payload[..body - hdr]);
            }
            SessionKeys::Gcm { rtp, .. } => {
                let nonce = rtp.nonce(ssrc, roc, index as u32 & 0xffff, 2);
                let (head, tag) = buf.split_at_mut(body);
                let (aad, data) = head.split_at_mut(hdr);
                rtp.open(&nonce, aad, data, tag)?;
            }
        }
        Ok(())
    }

    /// SRTCP protect (RFC 3711 §3.4, RFC 7714 §9): encrypts `buf[8..len]`, appends the
    /// E flag + index word and the tag. Returns the protected length.
    #[inline]
    pub(crate) fn protect_rtcp(
        &self,
        suite: SrtpSuite,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, SrtpError> {
        let tag_len = suite.srtcp_tag_len();
        match self {
            SessionKeys::Cm { rtcp, .. } => {
                // The NULL cipher sends E = 0: nothing is encrypted.
                let e_index = if rtcp.encrypts() {
                    index | 0x8000_0000
                } else {
                    index
                };
                let (head, body) = buf.split_at_mut(8);
                rtcp.crypt_rtcp(rtcp_header(head), ssrc, e_index, &mut body[..len - 8]);
                buf[len..len + 4].copy_from_slice(&e_index.to_be_bytes());
                let mac = rtcp.mac(&buf[..len + 4], &[]);
                buf[len + 4..len + 4 + tag_len].copy_from_slice(&mac[..tag_len]);
            }
            SessionKeys::Gcm { rtcp, .. } => {
                let e_index = (index | 0x8000_0000).to_be_bytes();
                let nonce = rtcp.nonce(ssrc, 0, index, 4);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = rtcp.seal(&nonce, &aad, &mut buf[8..len])?;
                buf[len..len + tag_len].copy_from_slice(&tag);
                buf[len + tag_len..len + tag_len + 4].copy_from_slice(&e_index);
            }
        }
        Ok(len + tag_len + 4)
    }

    /// SRTCP unprotect. `buf` is the whole SRTCP packet; returns the RTCP length.
    /// For GCM with E = 0 the buffer past the returned length is scratch afterwards.
    #[inline]
    pub(crate) fn unprotect_rtcp(
        &self,
        suite: SrtpSuite,
        buf: &mut [u8],
        ssrc: u32,
        e_index: u32,
    ) -> Result<usize, SrtpError> {
        let tag_len = suite.srtcp_tag_len();
        let len = buf.len();
        let index = e_index & 0x7fff_ffff;
        let encrypted = e_index & 0x8000_0000 != 0;
        match self {
            SessionKeys::Cm { rtcp, .. } => {
                // Layout: RTCP | E+index | tag.
                let (authed, tag) = buf.split_at(len - tag_len);
                let mac = rtcp.mac(authed, &[]);
                if !bool::from(mac[..tag_len].ct_eq(tag)) {
                    return Err(SrtpError::AuthFailed);
                }
                let plain = len - tag_len - 4;
                if encrypted {
                    let (head, body) = buf.split_at_mut(8);
                    rtcp.crypt_rtcp(rtcp_header(head), ssrc, e_index, &mut body[..plain - 8]);
                }
                Ok(plain)
            }
            SessionKeys::Gcm { rtcp, .. } => {
                // Layout: RTCP header | ciphertext | tag | E+index.
                let plain = len - tag_len - 4;
                let nonce = rtcp.nonce(ssrc, 0, index, 4);
                let mut tag = [0u8; 16];
                tag.copy_from_slice(&buf[plain..plain + tag_len]);
                if encrypted {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&e_index.to_be_bytes());
                    rtcp.open(&nonce, &aad, &mut buf[8..plain], &tag)?;
                } else {
                    // Whole packet + index word is associated data (RFC 7714 §9.3): move the
                    // index next to the packet so the AAD is one contiguous slice.
                    buf[plain..plain + 4].copy_from_slice(&e_index.to_be_bytes());
                    rtcp.open(&nonce, &buf[..plain + 4], &mut [], &tag)?;
                }
                Ok(plain)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::unhex;
    use super::*;

    /// RFC 3711 appendix B.2: AES-CM keystream for session key 2B7E..., session salt
    /// F0F1...FD, SSRC 0, index 0, checked through the packet IV construction.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let keys = CmKeys {
            cipher: CmCipher::Ctr(AesKey::new(&unhex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap()),
            salt: unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            mac: <HmacSha1 as Mac>::new_from_slice(&[0; 20]).unwrap(),
        };
        let mut stream = vec![0u8; 0xff02 * 16];
        keys.crypt_rtp(&[0; 12], 0, 0, &mut stream);
        let block = |n: usize| &stream[n * 16..n * 16 + 16];
        assert_eq!(block(0), &unhex("E03EAD0935C95E80E166B16DD92B4EB4")[..]);
        assert_eq!(block(1), &unhex("D23513162B02D0F72A43A2FE4A5F97AB")[..]);
        assert_eq!(block(2), &unhex("41E95B3BB0A2E8DD477901E4FCA894C0")[..]);
        assert_eq!(
            block(0xfeff),
            &unhex("EC8CDF7398607CB0F2D21675EA9EA1E4")[..]
        );
        assert_eq!(
            block(0xff00),
            &unhex("362B7C3C6773516318A077D7FC5073AE")[..]
        );
        assert_eq!(
            block(0xff01),
            &unhex("6A2CC3787889374FBEB4C81B17BA6C44")[..]
        );
    }

    /// RFC 3711 appendix B.1: AES-f8 with session key 2348..., a 32-bit session salt
    /// (so m = 32f2870d || 0x55..55), ROC d462564a, and the RTP packet given there.
    #[test]
    fn rfc3711_b1_aes_f8_packet() {
        let keys = CmKeys {
            cipher: CmCipher::F8(
                F8Key::new(
                    &unhex("234829008467be186c3de14aae72d62c"),
                    &unhex("32f2870d"),
                )
                .unwrap(),
            ),
            salt: [0; 14],
            mac: <HmacSha1 as Mac>::new_from_slice(&[0; 20]).unwrap(),
        };
        let header: [u8; 12] = unhex("806e5cba50681de55c621599").try_into().unwrap();
        let mut payload = unhex(
            "70736575646f72616e646f6d6e657373 20697320746865206e65787420626573 74207468696e67",
        );
        let index = (0xd462_564a_u64 << 16) | 0x5cba;
        keys.crypt_rtp(&header, 0x5c62_1599, index, &mut payload);
        assert_eq!(
            payload,
            unhex(
                "019ce7a26e7854014a6366aa95d4eefd 1ad4172a14f9faf455b7f1d4b62bd08f 562c0eef7c4802"
            )
        );
        // The transform is its own inverse.
        keys.crypt_rtp(&header, 0x5c62_1599, index, &mut payload);
        assert_eq!(&payload[..4], b"pseu");
    }
}
