//! SRTP and SRTCP (RFC 3711; AES-192/256 from RFC 6188; AEAD AES-GCM from RFC 7714),
//! sans-IO and in place.
//!
//! A [`SrtpContext`] holds the session keys derived from one master key and salt, plus the
//! per-SSRC rollover counters and replay windows. `protect_*` and `unprotect_*` transform
//! the caller's buffer in place: protect needs tail room for the tag (and the SRTCP index
//! word), unprotect returns the plaintext length. They never allocate: the ciphers come
//! from RustCrypto (`aes`, `ctr`, `hmac`/`sha1`, `aes-gcm`) with keys scheduled once, and
//! the per-SSRC table is preallocated.
//!
//! Receive-side rules: replays and packets older than the 128-packet window are rejected
//! before authentication; a packet that fails authentication changes nothing (no ROC
//! update, no window update, no new SSRC entry), so forged traffic cannot desynchronise
//! or evict a real stream.
//!
//! MKI (RFC 3711 §3.1): a context keyed from an SDES line with `|MKI:LEN` writes those
//! bytes into every packet it protects, where rtpengine writes them (`rtp_append_mki`):
//! right before the HMAC tag (after the SRTCP index word), or at the very end for the AEAD
//! suites, whose tag is part of the ciphertext; it is not authenticated. On receipt the
//! same number of bytes is taken out there and not checked, as rtpengine does: one
//! master key per direction is all SDES negotiates.
//!
//! rtpengine equivalent: `struct crypto_context` with `crypto.c` (`crypto_encrypt_rtp`,
//! `crypto_decrypt_rtp`) and `rtp.c` (`rtp_avp2savp`, `rtp_savp2avp`, `rtcp_avp2savp`).

mod cipher;
mod kdf;
mod state;
mod suite;

pub use state::{MAX_SSRCS, REPLAY_WINDOW};
pub use suite::{SrtpSuite, SRTCP_INDEX_LEN};

use crate::core::rtp::{RtcpHeader, RtpError, RtpHeader, RTCP_MIN_LEN};

use cipher::SessionKeys;
use state::{ReplayWindow, RtpIndex, SsrcTable};

/// Why an SRTP operation failed. `Copy` so the packet path can count drops by kind
/// (rtpengine logs "SRTP output wanted, but no crypto suite was negotiated" / "... auth
/// failed" and counts `errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("wrong SRTP key or salt length: {got} bytes, expected {expected}")]
    KeyLength { got: usize, expected: usize },
    #[error("packet too short for SRTP")]
    TooShort,
    #[error("packet too long for SRTP")]
    TooLong,
    #[error("malformed packet: {0}")]
    Malformed(RtpError),
    #[error("buffer has no tail room for the SRTP authentication tag")]
    NoTailRoom,
    #[error("SRTP authentication failed")]
    AuthFailed,
    #[error("SRTP replay")]
    Replay,
    #[error("SRTP packet older than the replay window")]
    TooOld,
    #[error("SRTP packet index space exhausted; re-keying required")]
    KeyExhausted,
}

/// Which side of a context a piece of state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpDirection {
    /// Packets we protect and send.
    Outbound,
    /// Packets we receive and unprotect.
    Inbound,
}

#[derive(Debug, Clone, Copy, Default)]
struct TxState {
    rtp: RtpIndex,
    /// Next SRTCP index to send (31 bits).
    rtcp_index: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct RxState {
    rtp: RtpIndex,
    rtp_window: ReplayWindow,
    rtcp_window: ReplayWindow,
}

/// SRTP/SRTCP state for one master key: rtpengine's `struct crypto_context` plus the
/// per-SSRC `ssrc_ctx` indices. Use one context per direction and key (the keys a peer
/// sends with differ from the ones we send with), though one context can both protect and
/// unprotect, as tests do.
pub struct SrtpContext {
    suite: SrtpSuite,
    keys: SessionKeys,
    tx: SsrcTable<TxState>,
    rx: SsrcTable<RxState>,
    /// Where the stream stands, for persisting it (see [`SrtpContext::position`]).
    position: SrtpPosition,
    /// The master key identifier written into each packet; empty: none.
    mki: Box<[u8]>,
}

/// The last packet index a context handled in each direction, packed for an atomic:
/// RTP as `ssrc << 32 | roc << 16 | seq`, SRTCP as `ssrc << 32 | index`; 0 = none yet.
/// A rollover counter past 16 bits (2^32 packets of one SSRC) is not recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpPosition {
    pub rx_rtp: u64,
    pub tx_rtp: u64,
    pub tx_rtcp: u64,
}

fn pack_rtp(ssrc: u32, index: u64) -> u64 {
    if index >> 16 > 0xffff {
        return 0;
    }
    (u64::from(ssrc) << 32) | index
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("tx_ssrcs", &self.tx.len())
            .field("rx_ssrcs", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derive session keys from a master key and salt (key derivation rate 0).
    pub fn new(
        suite: SrtpSuite,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<SrtpContext, SrtpError> {
        Ok(Self::with_keys(
            suite,
            SessionKeys::derive(suite, master_key, master_salt)?,
        ))
    }

    /// Like [`SrtpContext::new`] with key and salt concatenated, as SDES `inline:` and
    /// DTLS-SRTP keying material deliver them.
    pub fn from_key_salt(suite: SrtpSuite, key_salt: &[u8]) -> Result<SrtpContext, SrtpError> {
        if key_salt.len() != suite.key_salt_len() {
            return Err(SrtpError::KeyLength {
                got: key_salt.len(),
                expected: suite.key_salt_len(),
            });
        }
        let (key, salt) = key_salt.split_at(suite.master_key_len());
        Self::new(suite, key, salt)
    }

    fn with_keys(suite: SrtpSuite, keys: SessionKeys) -> SrtpContext {
        SrtpContext {
            suite,
            keys,
            tx: SsrcTable::new(),
            rx: SsrcTable::new(),
            position: SrtpPosition::default(),
            mki: Box::default(),
        }
    }

    /// Carry this master key identifier in every packet (see the module notes on MKI).
    pub fn with_mki(mut self, mki: &[u8]) -> SrtpContext {
        self.mki = mki.into();
        self
    }

    /// Bytes after the MKI: the HMAC tag, none for AEAD suites (their tag is inside).
    fn after_mki(&self, rtcp: bool) -> usize {
        match (self.suite.is_aead(), rtcp) {
            (true, _) => 0,
            (false, false) => self.suite.srtp_tag_len(),
            (false, true) => self.suite.srtcp_tag_len(),
        }
    }

    /// Put the MKI into a protected packet of `out` bytes: before its last `after` bytes.
    fn insert_mki(&self, buf: &mut [u8], out: usize, rtcp: bool) -> usize {
        let m = self.mki.len();
        if m == 0 {
            return out;
        }
        let at = out - self.after_mki(rtcp);
        buf.copy_within(at..out, at + m);
        buf[at..at + m].copy_from_slice(&self.mki);
        out + m
    }

    /// Take the MKI out of a received packet; its length without it.
    fn remove_mki(&self, buf: &mut [u8], rtcp: bool) -> Result<usize, SrtpError> {
        let (m, n) = (self.mki.len(), buf.len());
        if m == 0 {
            return Ok(n);
        }
        let after = self.after_mki(rtcp);
        let at = n.checked_sub(after + m).ok_or(SrtpError::TooShort)?;
        buf.copy_within(at + m..n, at);
        Ok(n - m)
    }

    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Protect the RTP packet in `buf[..len]` in place and return the SRTP length
    /// (`len + suite.rtp_overhead()`); `buf` must have that much room.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::TooShort);
        }
        if buf.len() < len + self.suite.rtp_overhead() + self.mki.len() {
            return Err(SrtpError::NoTailRoom);
        }
        let out = self.protect_rtp_keyed(buf, len)?;
        Ok(self.insert_mki(buf, out, false))
    }

    fn protect_rtp_keyed(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let header = RtpHeader::parse(packet).map_err(SrtpError::Malformed)?;
        let (hdr, ssrc, seq) = (header.header_len(), header.ssrc(), header.sequence_number());
        let tag_len = self.suite.srtp_tag_len();
        let out_len = len + tag_len;
        if buf.len() < out_len {
            return Err(SrtpError::NoTailRoom);
        }
        let state = self.tx.get_or_insert_with(ssrc, TxState::default);
        let index = state.rtp.estimate_outbound(seq)?;
        self.keys.protect_rtp(tag_len, buf, hdr, len, ssrc, index)?;
        state.rtp.update(index);
        self.position.tx_rtp = pack_rtp(ssrc, index);
        Ok(out_len)
    }

    /// Authenticate and decrypt the SRTP packet that fills `buf`; returns the RTP length.
    /// On any error the packet must be dropped; the context is unchanged.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let n = self.remove_mki(buf, false)?;
        self.unprotect_rtp_keyed(&mut buf[..n])
    }

    fn unprotect_rtp_keyed(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtp_tag_len();
        let body = buf
            .len()
            .checked_sub(tag_len)
            .filter(|&b| b >= crate::core::rtp::RTP_HEADER_LEN)
            .ok_or(SrtpError::TooShort)?;
        let header = RtpHeader::parse(&buf[..body]).map_err(SrtpError::Malformed)?;
        let (hdr, ssrc, seq) = (header.header_len(), header.ssrc(), header.sequence_number());
        let known = self.rx.get(ssrc).copied();
        let rtp_index = known.map_or_else(RtpIndex::default, |s| s.rtp);
        let index = rtp_index.estimate(seq)?;
        if let Some(state) = &known {
            state.rtp_window.check(index)?;
        }
        self.keys.unprotect_rtp(buf, hdr, body, ssrc, index)?;
        let state = self.rx.get_or_insert_with(ssrc, || RxState {
            rtp: rtp_index,
            ..RxState::default()
        });
        state.rtp.update(index);
        state.rtp_window.accept(index);
        self.position.rx_rtp = pack_rtp(ssrc, index);
        Ok(body)
    }

    /// Protect the RTCP compound packet in `buf[..len]` in place (E = 1, next SRTCP index)
    /// and return the SRTCP length (`len + suite.rtcp_overhead()`).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::TooShort);
        }
        if buf.len() < len + self.suite.rtcp_overhead() + self.mki.len() {
            return Err(SrtpError::NoTailRoom);
        }
        let out = self.protect_rtcp_keyed(buf, len)?;
        Ok(self.insert_mki(buf, out, true))
    }

    fn protect_rtcp_keyed(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let ssrc = RtcpHeader::parse(packet)
            .map_err(SrtpError::Malformed)?
            .ssrc();
        if buf.len() < len + self.suite.rtcp_overhead() {
            return Err(SrtpError::NoTailRoom);
        }
        let state = self.tx.get_or_insert_with(ssrc, TxState::default);
        let index = state.rtcp_index;
        if index > 0x7fff_ffff {
            return Err(SrtpError::KeyExhausted);
        }
        let out = self.keys.protect_rtcp(self.suite, buf, len, ssrc, index)?;
        state.rtcp_index = index + 1;
        self.position.tx_rtcp = (u64::from(ssrc) << 32) | u64::from(index);
        Ok(out)
    }

    /// Authenticate and decrypt the SRTCP packet that fills `buf`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let n = self.remove_mki(buf, true)?;
        self.unprotect_rtcp_keyed(&mut buf[..n])
    }

    fn unprotect_rtcp_keyed(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.suite.rtcp_overhead();
        if buf.len() < RTCP_MIN_LEN + overhead {
            return Err(SrtpError::TooShort);
        }
        let ssrc = RtcpHeader::parse(buf).map_err(SrtpError::Malformed)?.ssrc();
        // The index word ends the authenticated part for HMAC suites and ends the packet
        // for GCM (RFC 7714 §9: tag before index).
        let at = if self.suite.is_aead() {
            buf.len() - SRTCP_INDEX_LEN
        } else {
            buf.len() - overhead
        };
        let e_index = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let index = (e_index & 0x7fff_ffff) as u64;
        if let Some(state) = self.rx.get(ssrc) {
            state.rtcp_window.check(index)?;
        }
        let plain = self.keys.unprotect_rtcp(self.suite, buf, ssrc, e_index)?;
        self.rx
            .get_or_insert_with(ssrc, RxState::default)
            .rtcp_window
            .accept(index);
        Ok(plain)
    }

    /// The last packet handled in each direction, to persist the stream (Redis hand-over).
    #[inline]
    pub fn position(&self) -> SrtpPosition {
        self.position
    }

    /// Continue from a persisted [`SrtpPosition`]: the next packet of each recorded SSRC is
    /// taken to follow the recorded one (RFC 3711 index estimation from there), and SRTCP
    /// indexes continue past the recorded one so the party's replay check accepts them.
    pub fn resume(&mut self, position: SrtpPosition) {
        if position.rx_rtp != 0 {
            let ssrc = (position.rx_rtp >> 32) as u32;
            let s = self.rx.get_or_insert_with(ssrc, RxState::default);
            s.rtp = RtpIndex::at(position.rx_rtp & 0xffff_ffff);
            s.rtp_window = ReplayWindow::default();
        }
        if position.tx_rtp != 0 {
            let ssrc = (position.tx_rtp >> 32) as u32;
            self.tx.get_or_insert_with(ssrc, TxState::default).rtp =
                RtpIndex::at(position.tx_rtp & 0xffff_ffff);
        }
        if position.tx_rtcp != 0 {
            let ssrc = (position.tx_rtcp >> 32) as u32;
            let next = (position.tx_rtcp & 0x7fff_ffff) as u32 + 1;
            let s = self.tx.get_or_insert_with(ssrc, TxState::default);
            s.rtcp_index = s.rtcp_index.max(next);
        }
        self.position = position;
    }

    /// The rollover counter for `ssrc`, to persist stream state (e.g. a Redis hand-over).
    pub fn rollover_counter(&self, direction: SrtpDirection, ssrc: u32) -> Option<u32> {
        match direction {
            SrtpDirection::Outbound => self.tx.get(ssrc).map(|s| s.rtp.roc()),
            SrtpDirection::Inbound => self.rx.get(ssrc).map(|s| s.rtp.roc()),
        }
    }

    /// Restore a rollover counter: the next packet of `ssrc` is taken to be in that ROC
    /// epoch. Resets the stream's RTP replay window.
    pub fn set_rollover_counter(&mut self, direction: SrtpDirection, ssrc: u32, roc: u32) {
        match direction {
            SrtpDirection::Outbound => {
                self.tx.get_or_insert_with(ssrc, TxState::default).rtp = RtpIndex::with_roc(roc)
            }
            SrtpDirection::Inbound => {
                let s = self.rx.get_or_insert_with(ssrc, RxState::default);
                s.rtp = RtpIndex::with_roc(roc);
                s.rtp_window = ReplayWindow::default();
            }
        }
    }

    /// The next SRTCP index this context will send for `ssrc`.
    pub fn srtcp_index(&self, ssrc: u32) -> Option<u32> {
        self.tx.get(ssrc).map(|s| s.rtcp_index)
    }

    /// Restore the next SRTCP index to send for `ssrc` (31 bits; higher bits are dropped).
    pub fn set_srtcp_index(&mut self, ssrc: u32, index: u32) {
        self.tx
            .get_or_insert_with(ssrc, TxState::default)
            .rtcp_index = index & 0x7fff_ffff;
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// Hex string (whitespace allowed) to bytes; test-only helper.
    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }
}

#[cfg(test)]
mod tests;
