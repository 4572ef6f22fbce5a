//! SRTP key derivation (RFC 3711 §4.3) with the AES-CM PRF, key derivation rate 0.
//!
//! With a rate of 0 the index term `r` is zero, so each session key is the AES-CM
//! keystream under the master key for the IV `(master_salt XOR label << 48) << 16`. The
//! PRF uses AES with the master key's own length (RFC 6188 §3 for 192/256 bits). GCM's
//! 96-bit master salt is left-aligned and zero-padded to 112 bits, as libsrtp and rtpengine
//! do (RFC 7714 §11). rtpengine: `crypto_gen_session_key` in `crypto.c`.

use aes::{Aes128, Aes192, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher};

use super::SrtpError;

/// Key derivation labels (RFC 3711 §4.3.2).
pub(crate) mod label {
    pub(crate) const RTP_ENCRYPTION: u8 = 0x00;
    pub(crate) const RTP_AUTH: u8 = 0x01;
    pub(crate) const RTP_SALT: u8 = 0x02;
    pub(crate) const RTCP_ENCRYPTION: u8 = 0x03;
    pub(crate) const RTCP_AUTH: u8 = 0x04;
    pub(crate) const RTCP_SALT: u8 = 0x05;
}

/// Fill `out` with the session key for `label`.
///
/// `master_key` must be 16, 24 or 32 bytes and `master_salt` at most 14; anything else is a
/// `KeyLength` error (callers check suite lengths first, so this is a second line).
pub(crate) fn derive(
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    if master_salt.len() > 14 {
        return Err(SrtpError::KeyLength {
            got: master_salt.len(),
            expected: 14,
        });
    }
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    // key_id = label || r (48 bits, zero) sits in bytes 7..14 of the 112-bit x.
    iv[7] ^= label;
    out.fill(0);
    match master_key.len() {
        16 => ctr::Ctr128BE::<Aes128>::new(master_key.into(), &iv.into()).apply_keystream(out),
        24 => ctr::Ctr128BE::<Aes192>::new(master_key.into(), &iv.into()).apply_keystream(out),
        32 => ctr::Ctr128BE::<Aes256>::new(master_key.into(), &iv.into()).apply_keystream(out),
        n => {
            return Err(SrtpError::KeyLength {
                got: n,
                expected: 16,
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::unhex;
    use super::*;

    fn derived(key: &str, salt: &str, label: u8, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        derive(&unhex(key), &unhex(salt), label, &mut out).unwrap();
        out
    }

    /// RFC 3711 appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let (k, s) = (
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        assert_eq!(
            derived(k, s, label::RTP_ENCRYPTION, 16),
            unhex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            derived(k, s, label::RTP_SALT, 14),
            unhex("30CBBC08863D8C85D49DB34A9AE1")
        );
        // The RFC lists 94 octets of auth keystream; the first 20 are the HMAC-SHA1 key.
        assert_eq!(
            derived(k, s, label::RTP_AUTH, 94),
            unhex(
                "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
                 E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25\
                 6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    /// RFC 6188 §7.2 (AES_256_CM_PRF).
    #[test]
    fn rfc6188_aes256_key_derivation() {
        let (k, s) = (
            "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
            "3b04803de51ee7c96423ab5b78d2",
        );
        assert_eq!(
            derived(k, s, label::RTP_ENCRYPTION, 32),
            unhex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
        );
        assert_eq!(
            derived(k, s, label::RTP_SALT, 14),
            unhex("fa31791685ca444a9e07c6c64e93")
        );
        assert_eq!(
            derived(k, s, label::RTP_AUTH, 20),
            unhex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
        );
    }

    /// RFC 6188 §7.4 (AES_192_CM_PRF).
    #[test]
    fn rfc6188_aes192_key_derivation() {
        let (k, s) = (
            "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1",
            "c8522f3acd4ce86d5add78edbb11",
        );
        assert_eq!(
            derived(k, s, label::RTP_ENCRYPTION, 24),
            unhex("31874736a8f1143870c26e4857d8a5b2c4a354407faadabb")
        );
        assert_eq!(
            derived(k, s, label::RTP_SALT, 14),
            unhex("2372b82d639b6d8503a47adc0a6c")
        );
        assert_eq!(
            derived(k, s, label::RTP_AUTH, 20),
            unhex("355b10973cd95b9eacf4061c7e1a7151e7cfbfcb")
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        let mut out = [0u8; 16];
        assert!(derive(&[0; 15], &[0; 14], 0, &mut out).is_err());
        assert!(derive(&[0; 16], &[0; 15], 0, &mut out).is_err());
    }
}
