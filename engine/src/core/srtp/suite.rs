//! The SRTP crypto suites ngmedia implements and their parameters (RFC 4568 §6.2, RFC 6188,
//! RFC 7714 §14). rtpengine keeps the same table as `crypto_suites[]` in `crypto.c`.

use std::fmt;

/// One SRTP crypto suite, named as in SDES `a=crypto` lines; rtpengine's `struct crypto_suite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SrtpSuite {
    AeadAes256Gcm,
    AeadAes128Gcm,
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    Aes192CmHmacSha1_80,
    Aes192CmHmacSha1_32,
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    F8_128HmacSha1_80,
    F8_128HmacSha1_32,
    NullHmacSha1_80,
    NullHmacSha1_32,
}

/// The cipher a suite encrypts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CipherKind {
    /// AES in counter mode (RFC 3711 §4.1.1) with the given key length in bytes.
    AesCm(usize),
    /// AES in f8 mode (RFC 3711 §4.1.2) with the given key length in bytes.
    AesF8(usize),
    /// AES-GCM AEAD (RFC 7714) with the given key length in bytes.
    AesGcm(usize),
    /// No encryption, authentication only (RFC 3711 §4.1.3).
    Null,
}

impl SrtpSuite {
    /// Every suite, in rtpengine's offer preference order (strongest first; see the
    /// `a=crypto` list rtpengine generates, reference/ng-protocol.md example C).
    pub const ALL: [SrtpSuite; 12] = [
        SrtpSuite::AeadAes256Gcm,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::Aes256CmHmacSha1_80,
        SrtpSuite::Aes256CmHmacSha1_32,
        SrtpSuite::Aes192CmHmacSha1_80,
        SrtpSuite::Aes192CmHmacSha1_32,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::F8_128HmacSha1_80,
        SrtpSuite::F8_128HmacSha1_32,
        SrtpSuite::NullHmacSha1_80,
        SrtpSuite::NullHmacSha1_32,
    ];

    /// The SDES name (RFC 4568 §6.2, RFC 6188 §6, RFC 7714 §14.1).
    pub const fn name(self) -> &'static str {
        match self {
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SrtpSuite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            SrtpSuite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80",
            SrtpSuite::F8_128HmacSha1_32 => "F8_128_HMAC_SHA1_32",
            SrtpSuite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            SrtpSuite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    /// Look a suite up by its SDES name, case-insensitively as rtpengine's
    /// `crypto_find_suite` does.
    pub fn from_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The DTLS-SRTP protection profile id (RFC 5764 §4.1.2, RFC 7714 §14.2), for the suites
    /// that have one.
    pub const fn dtls_profile(self) -> Option<u16> {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => Some(0x0001),
            SrtpSuite::AesCm128HmacSha1_32 => Some(0x0002),
            SrtpSuite::NullHmacSha1_80 => Some(0x0005),
            SrtpSuite::NullHmacSha1_32 => Some(0x0006),
            SrtpSuite::AeadAes128Gcm => Some(0x0007),
            SrtpSuite::AeadAes256Gcm => Some(0x0008),
            _ => None,
        }
    }

    /// The suite for a DTLS-SRTP protection profile id.
    pub fn from_dtls_profile(id: u16) -> Option<SrtpSuite> {
        SrtpSuite::ALL
            .into_iter()
            .find(|s| s.dtls_profile() == Some(id))
    }

    pub(crate) const fn cipher(self) -> CipherKind {
        match self {
            SrtpSuite::AeadAes256Gcm => CipherKind::AesGcm(32),
            SrtpSuite::AeadAes128Gcm => CipherKind::AesGcm(16),
            SrtpSuite::Aes256CmHmacSha1_80 | SrtpSuite::Aes256CmHmacSha1_32 => {
                CipherKind::AesCm(32)
            }
            SrtpSuite::Aes192CmHmacSha1_80 | SrtpSuite::Aes192CmHmacSha1_32 => {
                CipherKind::AesCm(24)
            }
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => {
                CipherKind::AesCm(16)
            }
            SrtpSuite::F8_128HmacSha1_80 | SrtpSuite::F8_128HmacSha1_32 => CipherKind::AesF8(16),
            SrtpSuite::NullHmacSha1_80 | SrtpSuite::NullHmacSha1_32 => CipherKind::Null,
        }
    }

    /// True for the AEAD (GCM) suites, whose tag comes from the cipher, not HMAC.
    pub const fn is_aead(self) -> bool {
        matches!(self.cipher(), CipherKind::AesGcm(_))
    }

    /// Master key length in bytes. The NULL suites use a 128-bit master key for the KDF.
    pub const fn master_key_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesCm(n) | CipherKind::AesF8(n) | CipherKind::AesGcm(n) => n,
            CipherKind::Null => 16,
        }
    }

    /// Master salt length in bytes: 112 bits, or 96 bits for GCM (RFC 7714 §12).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Length of the base64 `inline:` key material: master key followed by master salt.
    pub const fn key_salt_len(self) -> usize {
        self.master_key_len() + self.master_salt_len()
    }

    /// Authentication tag appended to SRTP packets.
    pub const fn srtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes256Gcm | SrtpSuite::AeadAes128Gcm => 16,
            SrtpSuite::Aes256CmHmacSha1_32
            | SrtpSuite::Aes192CmHmacSha1_32
            | SrtpSuite::AesCm128HmacSha1_32
            | SrtpSuite::F8_128HmacSha1_32
            | SrtpSuite::NullHmacSha1_32 => 4,
            _ => 10,
        }
    }

    /// Authentication tag appended to SRTCP packets: the `_32` suites still use 80 bits for
    /// SRTCP (RFC 4568 §6.2.2, rtpengine's `srtcp_auth_tag`).
    pub const fn srtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }

    /// Bytes protect_rtp appends: the caller's buffer needs this much tail room.
    pub const fn rtp_overhead(self) -> usize {
        self.srtp_tag_len()
    }

    /// Bytes protect_rtcp appends: SRTCP index word plus tag.
    pub const fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + self.srtcp_tag_len()
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Length of the E flag + SRTCP index word (RFC 3711 §3.4).
pub const SRTCP_INDEX_LEN: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for s in SrtpSuite::ALL {
            assert_eq!(SrtpSuite::from_name(s.name()), Some(s));
            assert_eq!(SrtpSuite::from_name(&s.name().to_lowercase()), Some(s));
        }
        assert_eq!(
            SrtpSuite::from_name("f8_128_hmac_sha1_32"),
            Some(SrtpSuite::F8_128HmacSha1_32)
        );
        assert_eq!(SrtpSuite::from_name("F8_256_HMAC_SHA1_80"), None);
    }

    #[test]
    fn lengths_match_rfc_tables() {
        // inline: key material lengths of the capture's crypto lines (ex4.out).
        assert_eq!(SrtpSuite::AeadAes256Gcm.key_salt_len(), 44);
        assert_eq!(SrtpSuite::AeadAes128Gcm.key_salt_len(), 28);
        assert_eq!(SrtpSuite::Aes256CmHmacSha1_80.key_salt_len(), 46);
        assert_eq!(SrtpSuite::Aes192CmHmacSha1_32.key_salt_len(), 38);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_80.key_salt_len(), 30);
        assert_eq!(SrtpSuite::NullHmacSha1_32.key_salt_len(), 30);
        assert_eq!(SrtpSuite::F8_128HmacSha1_80.key_salt_len(), 30);
        assert_eq!(SrtpSuite::F8_128HmacSha1_32.srtp_tag_len(), 4);
        assert_eq!(SrtpSuite::F8_128HmacSha1_32.srtcp_tag_len(), 10);
        assert_eq!(SrtpSuite::F8_128HmacSha1_80.dtls_profile(), None);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.srtp_tag_len(), 4);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.srtcp_tag_len(), 10);
        assert_eq!(SrtpSuite::AeadAes128Gcm.rtcp_overhead(), 20);
        assert_eq!(
            SrtpSuite::from_dtls_profile(7),
            Some(SrtpSuite::AeadAes128Gcm)
        );
    }
}
