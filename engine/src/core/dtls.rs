//! DTLS-SRTP (RFC 5763, RFC 5764): our certificate, `a=fingerprint` values, and one
//! handshake per stream as a sans-IO state machine over OpenSSL (rtpengine's `dtls.c`:
//! `dtls_cert`, `dtls_connection`, `dtls_setup_crypto`).
//!
//! The session never touches a socket: datagrams go in with [`DtlsSession::handle_datagram`],
//! what OpenSSL wants to send comes out of [`DtlsSession::poll_datagram`], and the worker
//! drives retransmissions with [`DtlsSession::timeout`] / [`DtlsSession::handle_timeout`].
//! OpenSSL talks to a memory "BIO" that keeps datagram boundaries, so one handshake record
//! flight maps onto UDP datagrams exactly as OpenSSL cut them (at most [`DTLS_MTU`] bytes).
//!
//! Handshakes are rare (one per call leg) and may allocate; once the SRTP keys are exported
//! the worker protects and unprotects media with its own SRTP contexts and the session only
//! sees the odd retransmitted handshake record or alert.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use foreign_types::ForeignTypeRef;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509NameBuilder, X509Ref, X509};

use super::srtp::SrtpSuite;

/// RFC 5764 §4.2 exporter label for the SRTP master keys and salts.
pub const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// use_srtp profiles we offer and accept, in preference order (RFC 5764 §4.1.2,
/// RFC 7714 §14.2); the three every WebRTC stack speaks.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// Largest handshake datagram: 1200 bytes fit any path that carries media (what WebRTC
/// stacks use), so a certificate flight is fragmented rather than dropped.
pub const DTLS_MTU: usize = 1200;

/// First retransmission timeout. RFC 6347 §4.2.4.1 suggests 1 s; media setup is
/// interactive, so we start at half that (browsers start lower still).
const INITIAL_TIMEOUT_US: u32 = 500_000;
/// Retransmission backoff doubles up to this.
const MAX_TIMEOUT_US: u32 = 4_000_000;
/// Retransmissions before the handshake is declared failed: with the backoff above about
/// 0.5+1+2+4×5 ≈ 23 s of silence from the peer.
pub const MAX_RETRANSMISSIONS: u32 = 8;

/// Validity of the generated certificate. Peers authenticate it by fingerprint only (RFC
/// 8827 §6.5), but some check the dates; it is regenerated at every start.
const CERT_DAYS: u32 = 30;

/// What went wrong with a certificate, a fingerprint or a handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    #[error("OpenSSL: {0}")]
    Ssl(String),
    #[error("invalid a=fingerprint value '{0}'")]
    BadFingerprint(String),
    #[error("unsupported fingerprint hash function '{0}'")]
    UnsupportedHash(String),
    #[error("peer certificate does not match the a=fingerprint in its SDP")]
    FingerprintMismatch,
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    #[error("no SRTP protection profile was negotiated (use_srtp)")]
    NoSrtpProfile,
    #[error("handshake timed out after {0} retransmissions")]
    Timeout(u32),
    #[error("cannot load certificate or key: {0}")]
    Load(String),
}

impl From<openssl::error::ErrorStack> for DtlsError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        DtlsError::Ssl(e.to_string())
    }
}

/// Hash functions of `a=fingerprint` (RFC 8122 §5, the ones rtpengine knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HashFunction {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashFunction {
    pub const fn name(self) -> &'static str {
        match self {
            HashFunction::Sha1 => "sha-1",
            HashFunction::Sha224 => "sha-224",
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha384 => "sha-384",
            HashFunction::Sha512 => "sha-512",
        }
    }

    /// Case-insensitive, with or without the dash (`SHA-256`, `sha256`), as the ng
    /// `DTLS-fingerprint` key and SDP from various stacks spell it.
    pub fn from_name(name: &str) -> Option<HashFunction> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match n.as_str() {
            "sha1" => HashFunction::Sha1,
            "sha224" => HashFunction::Sha224,
            "sha256" => HashFunction::Sha256,
            "sha384" => HashFunction::Sha384,
            "sha512" => HashFunction::Sha512,
            _ => return None,
        })
    }

    const fn len(self) -> usize {
        match self {
            HashFunction::Sha1 => 20,
            HashFunction::Sha224 => 28,
            HashFunction::Sha256 => 32,
            HashFunction::Sha384 => 48,
            HashFunction::Sha512 => 64,
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            HashFunction::Sha1 => MessageDigest::sha1(),
            HashFunction::Sha224 => MessageDigest::sha224(),
            HashFunction::Sha256 => MessageDigest::sha256(),
            HashFunction::Sha384 => MessageDigest::sha384(),
            HashFunction::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// A certificate fingerprint as in `a=fingerprint:sha-256 AB:CD:…` (RFC 8122 §5;
/// rtpengine's `dtls_fingerprint`).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub hash: HashFunction,
    #[serde(with = "crate::core::state::b64")]
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parse the value of an `a=fingerprint` attribute.
    pub fn parse(value: &str) -> Result<Fingerprint, DtlsError> {
        let bad = || DtlsError::BadFingerprint(value.to_owned());
        let mut it = value.split_whitespace();
        let (Some(name), Some(hex), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad());
        };
        let hash =
            HashFunction::from_name(name).ok_or_else(|| DtlsError::UnsupportedHash(name.into()))?;
        let digest = hex
            .split(':')
            .map(|b| {
                (b.len() == 2)
                    .then(|| u8::from_str_radix(b, 16).ok())
                    .flatten()
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        if digest.len() != hash.len() {
            return Err(bad());
        }
        Ok(Fingerprint { hash, digest })
    }

    /// The fingerprint of a certificate (of its DER encoding) with `hash`.
    pub fn of_certificate(cert: &X509Ref, hash: HashFunction) -> Result<Fingerprint, DtlsError> {
        Ok(Fingerprint {
            hash,
            digest: cert.digest(hash.digest())?.to_vec(),
        })
    }

    /// The attribute value: hash name, a space, upper-case hex pairs joined by colons.
    pub fn to_value(&self) -> String {
        let mut s = String::with_capacity(self.hash.name().len() + 1 + self.digest.len() * 3);
        s.push_str(self.hash.name());
        s.push(' ');
        for (i, b) in self.digest.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push_str(&format!("{b:02X}"));
        }
        s
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_value())
    }
}

/// The engine's DTLS certificate and private key with a ready OpenSSL context
/// (rtpengine's `dtls_cert`). Made once at start-up and shared by every stream.
pub struct DtlsIdentity {
    ctx: SslContext,
    cert: X509,
    fingerprint: Fingerprint,
}

impl fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// A fresh self-signed EC P-256 certificate (what browsers generate for WebRTC).
    pub fn generate() -> Result<DtlsIdentity, DtlsError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "ngmedia")?;
        let name = name.build();
        let mut serial = BigNum::new()?;
        serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
        let mut b = X509::builder()?;
        b.set_version(2)?;
        b.set_serial_number(serial.to_asn1_integer()?.as_ref())?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        // Back-dated a day so peers with a slightly slow clock accept it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        b.set_not_before(Asn1Time::from_unix(now - 86_400)?.as_ref())?;
        b.set_not_after(Asn1Time::days_from_now(CERT_DAYS)?.as_ref())?;
        b.sign(&key, MessageDigest::sha256())?;
        DtlsIdentity::new(b.build(), key)
    }

    /// A certificate and key from PEM files' contents (`--dtls-cert`, `--dtls-key`).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<DtlsIdentity, DtlsError> {
        let cert = X509::from_pem(cert_pem).map_err(|e| DtlsError::Load(e.to_string()))?;
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|e| DtlsError::Load(e.to_string()))?;
        DtlsIdentity::new(cert, key)
    }

    fn new(cert: X509, key: PKey<Private>) -> Result<DtlsIdentity, DtlsError> {
        let mut b = SslContextBuilder::new(SslMethod::dtls())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_certificate(&cert)?;
        b.set_private_key(&key)?;
        b.check_private_key()
            .map_err(|e| DtlsError::Load(format!("key does not match certificate: {e}")))?;
        b.set_tlsext_use_srtp(SRTP_PROFILES)?;
        // Peers use self-signed certificates: accept any chain here, then compare the
        // certificate with the SDP fingerprint once the handshake is done (RFC 5763 §5).
        b.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            |_, _| true,
        );
        // The memory BIO cannot answer MTU queries; the MTU is set per session.
        b.set_options(SslOptions::NO_QUERY_MTU);
        let fingerprint = Fingerprint::of_certificate(&cert, HashFunction::Sha256)?;
        Ok(DtlsIdentity {
            ctx: b.build(),
            cert,
            fingerprint,
        })
    }

    /// The sha-256 fingerprint written into `a=fingerprint`.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The fingerprint with another hash function (ng `DTLS-fingerprint`).
    pub fn fingerprint_with(&self, hash: HashFunction) -> Fingerprint {
        if hash == self.fingerprint.hash {
            return self.fingerprint.clone();
        }
        Fingerprint::of_certificate(&self.cert, hash).unwrap_or_else(|_| self.fingerprint.clone())
    }
}

/// Which end of the handshake we are (RFC 5763 §5: `a=setup:active` is the DTLS client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DtlsRole {
    Client,
    Server,
}

/// SRTP master keys from a finished handshake (RFC 5764 §4.2), each master key followed
/// by its master salt, as [`crate::core::srtp::SrtpContext::from_key_salt`] takes them.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DtlsKeys {
    pub suite: SrtpSuite,
    /// What we protect with (our write key).
    #[serde(with = "crate::core::state::b64")]
    pub local: Vec<u8>,
    /// What the peer protects with (we unprotect with it).
    #[serde(with = "crate::core::state::b64")]
    pub remote: Vec<u8>,
}

impl fmt::Debug for DtlsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The memory BIO: one datagram in at a time, datagrams out as OpenSSL wrote them.
#[derive(Default)]
struct Datagrams {
    incoming: Vec<u8>,
    pending: bool,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.pending = false;
        // OpenSSL reads DTLS with a buffer larger than any datagram; a shorter read would
        // truncate, as a datagram socket does.
        let n = self.incoming.len().min(buf.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Bounded: a flight is a handful of datagrams; a peer that never reads cannot make
        // us queue more than this.
        if self.outgoing.len() >= 64 {
            self.outgoing.pop_front();
        }
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsState {
    /// Client not yet started (no ClientHello sent), or server waiting for one.
    New,
    Handshaking,
    /// Keys exported; media flows.
    Established,
    /// Failed for good (bad fingerprint, alert, timeout); the stream carries no media.
    Failed,
}

/// One DTLS association on one media socket (rtpengine's `dtls_connection`).
pub struct DtlsSession {
    stream: SslStream<Datagrams>,
    role: DtlsRole,
    remote: Fingerprint,
    state: DtlsState,
    retransmissions: u32,
}

impl fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsSession")
            .field("role", &self.role)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

// DTLSv1_get_timeout / DTLSv1_handle_timeout are macros over SSL_ctrl (ssl.h).
const DTLS_CTRL_GET_TIMEOUT: libc::c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: libc::c_int = 74;

extern "C" {
    // OpenSSL >= 1.1.1; openssl-sys does not declare it.
    fn DTLS_set_timer_cb(
        s: *mut openssl_sys::SSL,
        cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, libc::c_uint) -> libc::c_uint>,
    );
}

/// Retransmission backoff: [`INITIAL_TIMEOUT_US`], doubling up to [`MAX_TIMEOUT_US`].
unsafe extern "C" fn timer_cb(
    _ssl: *mut openssl_sys::SSL,
    previous_us: libc::c_uint,
) -> libc::c_uint {
    if previous_us == 0 {
        INITIAL_TIMEOUT_US
    } else {
        previous_us.saturating_mul(2).min(MAX_TIMEOUT_US)
    }
}

impl DtlsSession {
    /// A session in `role` that will accept only a peer certificate matching `remote`.
    pub fn new(
        identity: &DtlsIdentity,
        role: DtlsRole,
        remote: Fingerprint,
    ) -> Result<DtlsSession, DtlsError> {
        let mut ssl = Ssl::new(&identity.ctx)?;
        ssl.set_mtu(DTLS_MTU as u32)?;
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        // SAFETY: the pointer is the live SSL object owned by `ssl`; the callback is a
        // plain function with the signature OpenSSL expects.
        unsafe { DTLS_set_timer_cb(ssl.as_ptr(), Some(timer_cb)) };
        let stream = SslStream::new(ssl, Datagrams::default())?;
        Ok(DtlsSession {
            stream,
            role,
            remote,
            state: DtlsState::New,
            retransmissions: 0,
        })
    }

    pub fn role(&self) -> DtlsRole {
        self.role
    }

    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// The fingerprint the peer must present.
    pub fn remote_fingerprint(&self) -> &Fingerprint {
        &self.remote
    }

    /// Start the handshake: a client queues its ClientHello; a server has nothing to do
    /// until one arrives. Does nothing once started.
    pub fn start(&mut self) -> Result<Option<DtlsKeys>, DtlsError> {
        if self.state != DtlsState::New || self.role == DtlsRole::Server {
            return Ok(None);
        }
        self.state = DtlsState::Handshaking;
        self.drive()
    }

    /// Feed one received DTLS datagram. Returns the SRTP keys when this datagram completed
    /// the handshake (and the peer's certificate matched its fingerprint).
    pub fn handle_datagram(&mut self, data: &[u8]) -> Result<Option<DtlsKeys>, DtlsError> {
        if self.state == DtlsState::Failed {
            return Ok(None);
        }
        let io = self.stream.get_mut();
        io.incoming.clear();
        io.incoming.extend_from_slice(data);
        io.pending = true;
        match self.state {
            DtlsState::New | DtlsState::Handshaking => {
                self.state = DtlsState::Handshaking;
                self.drive()
            }
            DtlsState::Established => {
                // Post-handshake records: a peer's retransmitted last flight (OpenSSL answers
                // it), an alert, or application data nobody uses on a media path.
                let mut scratch = [0u8; 256];
                match self.stream.ssl_read(&mut scratch) {
                    Ok(_) => Ok(None),
                    Err(e) => match e.code() {
                        ErrorCode::WANT_READ | ErrorCode::WANT_WRITE | ErrorCode::ZERO_RETURN => {
                            Ok(None)
                        }
                        _ => Ok(None),
                    },
                }
            }
            DtlsState::Failed => Ok(None),
        }
    }

    /// Time until OpenSSL wants to retransmit, while a handshake is in progress.
    pub fn timeout(&self) -> Option<Duration> {
        if self.state != DtlsState::Handshaking {
            return None;
        }
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: DTLSv1_get_timeout writes one timeval through the pointer.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&mut tv as *mut libc::timeval).cast(),
            )
        };
        (running == 1).then(|| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.max(0) as u64)
        })
    }

    /// Retransmit the last flight if OpenSSL's timer has expired. Fails the session after
    /// [`MAX_RETRANSMISSIONS`].
    pub fn handle_timeout(&mut self) -> Result<(), DtlsError> {
        if self.state != DtlsState::Handshaking {
            return Ok(());
        }
        // SAFETY: DTLSv1_handle_timeout takes no argument pointer.
        let r = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        };
        if r > 0 {
            self.retransmissions += 1;
            if self.retransmissions > MAX_RETRANSMISSIONS {
                self.state = DtlsState::Failed;
                return Err(DtlsError::Timeout(MAX_RETRANSMISSIONS));
            }
        } else if r < 0 {
            self.state = DtlsState::Failed;
            return Err(DtlsError::Ssl("retransmission failed".into()));
        }
        Ok(())
    }

    /// Handshake retransmissions so far.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// The next datagram to send to the peer.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().outgoing.pop_front()
    }

    fn drive(&mut self) -> Result<Option<DtlsKeys>, DtlsError> {
        match self.stream.do_handshake() {
            Ok(()) => match self.finish() {
                Ok(keys) => {
                    self.state = DtlsState::Established;
                    Ok(Some(keys))
                }
                Err(e) => {
                    self.state = DtlsState::Failed;
                    Err(e)
                }
            },
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => Ok(None),
            Err(e) => {
                self.state = DtlsState::Failed;
                Err(DtlsError::Ssl(match e.ssl_error() {
                    Some(stack) => stack.to_string(),
                    None => e.to_string(),
                }))
            }
        }
    }

    /// Check the peer's certificate against its SDP fingerprint and export the SRTP keys.
    fn finish(&mut self) -> Result<DtlsKeys, DtlsError> {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().ok_or(DtlsError::NoPeerCertificate)?;
        if Fingerprint::of_certificate(&cert, self.remote.hash)? != self.remote {
            return Err(DtlsError::FingerprintMismatch);
        }
        let profile = ssl
            .selected_srtp_profile()
            .ok_or(DtlsError::NoSrtpProfile)?;
        let suite = u16::try_from(profile.id().as_raw())
            .ok()
            .and_then(SrtpSuite::from_dtls_profile)
            .ok_or(DtlsError::NoSrtpProfile)?;
        let (k, s) = (suite.master_key_len(), suite.master_salt_len());
        let mut material = vec![0u8; 2 * (k + s)];
        ssl.export_keying_material(&mut material, EXPORTER_LABEL, None)?;
        // RFC 5764 §4.2: client key, server key, client salt, server salt.
        let client = [&material[..k], &material[2 * k..2 * k + s]].concat();
        let server = [&material[k..2 * k], &material[2 * k + s..]].concat();
        let (local, remote) = match self.role {
            DtlsRole::Client => (client, server),
            DtlsRole::Server => (server, client),
        };
        Ok(DtlsKeys {
            suite,
            local,
            remote,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Move every queued datagram from one session into the other; returns the keys the
    /// receiver got, and how many datagrams moved.
    fn pump(from: &mut DtlsSession, to: &mut DtlsSession) -> (Option<DtlsKeys>, usize) {
        let mut keys = None;
        let mut n = 0;
        while let Some(d) = from.poll_datagram() {
            assert!(d.len() <= DTLS_MTU, "datagram of {} bytes", d.len());
            n += 1;
            if let Some(k) = to.handle_datagram(&d).expect("handshake step") {
                keys = Some(k);
            }
        }
        (keys, n)
    }

    fn pair() -> (DtlsSession, DtlsSession) {
        let a = DtlsIdentity::generate().unwrap();
        let b = DtlsIdentity::generate().unwrap();
        let client = DtlsSession::new(&a, DtlsRole::Client, b.fingerprint().clone()).unwrap();
        let server = DtlsSession::new(&b, DtlsRole::Server, a.fingerprint().clone()).unwrap();
        (client, server)
    }

    #[test]
    fn fingerprint_round_trips_and_rejects_garbage() {
        let v = "sha-256 8F:BC:02:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:8B:E5";
        let fp = Fingerprint::parse(v).unwrap();
        assert_eq!(fp.hash, HashFunction::Sha256);
        assert_eq!(fp.digest[..3], [0x8f, 0xbc, 0x02]);
        assert_eq!(fp.to_value(), v);
        // Lower case hex and upper case hash names are accepted.
        assert_eq!(
            Fingerprint::parse(&v.to_lowercase().replace("sha-256", "SHA-256")).unwrap(),
            fp
        );
        assert!(matches!(
            Fingerprint::parse("sha-256 8F:BC"),
            Err(DtlsError::BadFingerprint(_))
        ));
        assert!(matches!(
            Fingerprint::parse("md5 8F:BC"),
            Err(DtlsError::UnsupportedHash(_))
        ));
        assert!(Fingerprint::parse("sha-1").is_err());
        assert!(Fingerprint::parse(
            "sha-1 ZZ:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00"
        )
        .is_err());
        assert_eq!(
            HashFunction::from_name("SHA256"),
            Some(HashFunction::Sha256)
        );
    }

    #[test]
    fn identity_fingerprint_is_sha256_of_the_certificate() {
        let id = DtlsIdentity::generate().unwrap();
        assert_eq!(id.fingerprint().digest.len(), 32);
        assert_eq!(
            id.fingerprint().digest,
            id.cert.digest(MessageDigest::sha256()).unwrap().to_vec()
        );
        assert_eq!(id.fingerprint_with(HashFunction::Sha1).digest.len(), 20);
        let pem = id.cert.to_pem().unwrap();
        assert!(matches!(
            DtlsIdentity::from_pem(&pem, b"junk"),
            Err(DtlsError::Load(_))
        ));
    }

    #[test]
    fn handshake_exports_crosswise_keys() {
        let (mut client, mut server) = pair();
        assert_eq!(server.start().unwrap(), None);
        assert!(
            server.poll_datagram().is_none(),
            "a server speaks only when spoken to"
        );
        assert_eq!(client.start().unwrap(), None);
        let mut client_keys = None;
        let mut server_keys = None;
        for _ in 0..4 {
            let (k, _) = pump(&mut client, &mut server);
            server_keys = server_keys.or(k);
            let (k, _) = pump(&mut server, &mut client);
            client_keys = client_keys.or(k);
        }
        let (c, s) = (client_keys.unwrap(), server_keys.unwrap());
        assert_eq!(
            c.suite,
            SrtpSuite::AeadAes128Gcm,
            "first profile in our list"
        );
        assert_eq!(c.local.len(), 16 + 12);
        assert_eq!(c.local, s.remote);
        assert_eq!(c.remote, s.local);
        assert_ne!(c.local, c.remote);
        assert_eq!(client.state(), DtlsState::Established);
        assert_eq!(client.timeout(), None);
    }

    #[test]
    fn wrong_fingerprint_fails_the_handshake() {
        let a = DtlsIdentity::generate().unwrap();
        let b = DtlsIdentity::generate().unwrap();
        let other = DtlsIdentity::generate().unwrap();
        let mut client =
            DtlsSession::new(&a, DtlsRole::Client, other.fingerprint().clone()).unwrap();
        let mut server = DtlsSession::new(&b, DtlsRole::Server, a.fingerprint().clone()).unwrap();
        client.start().unwrap();
        let mut failed = None;
        'outer: for _ in 0..4 {
            pump(&mut client, &mut server);
            while let Some(d) = server.poll_datagram() {
                if let Err(e) = client.handle_datagram(&d) {
                    failed = Some(e);
                    break 'outer;
                }
            }
        }
        assert_eq!(failed, Some(DtlsError::FingerprintMismatch));
        assert_eq!(client.state(), DtlsState::Failed);
    }

    #[test]
    fn lost_flight_is_retransmitted_after_the_timer() {
        let (mut client, mut server) = pair();
        client.start().unwrap();
        // The ClientHello is lost.
        assert!(client.poll_datagram().is_some());
        let t = client.timeout().expect("timer running");
        assert!(
            t <= Duration::from_micros(INITIAL_TIMEOUT_US as u64),
            "{t:?}"
        );
        client.handle_timeout().unwrap();
        assert!(
            client.poll_datagram().is_none(),
            "not expired yet: nothing resent"
        );
        std::thread::sleep(t + Duration::from_millis(20));
        client.handle_timeout().unwrap();
        assert_eq!(client.retransmissions(), 1);
        let (_, n) = pump(&mut client, &mut server);
        assert_eq!(n, 1, "the ClientHello again");
        let (_, n) = pump(&mut server, &mut client);
        assert!(n >= 1, "the server answered the retransmission");
    }
}
