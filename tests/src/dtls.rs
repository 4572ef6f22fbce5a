//! A DTLS-SRTP party written directly on OpenSSL (not the engine's DTLS code), for the
//! black-box DTLS tests: a self-signed certificate as browsers make one, the handshake on a
//! media port in either role, the SRTP keys derived from RFC 5764 §4.2 keying material, and
//! helpers that send and check SRTP both ways through the daemon.
//!
//! The SRTP transform itself is the engine's `SrtpContext` (known-answer tested there); what
//! this module checks independently is the DTLS side: OpenSSL's handshake and key export.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::{X509NameBuilder, X509};

use crate::rtp::rtp_packet;
use crate::{RtpEndpoint, Sdp};

/// How long one relayed packet may take on loopback.
pub const WAIT: Duration = Duration::from_secs(2);
/// Bound on one handshake, retransmissions included.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// Whether a datagram is a DTLS record by its first byte (RFC 7983 §7: 20..=63).
pub fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..64).contains(b))
}

/// A self-signed EC P-256 certificate named `cn`, as a browser makes one.
pub fn certificate(cn: &str) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref())
        .unwrap();
    b.set_not_after(Asn1Time::days_from_now(1).unwrap().as_ref())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// The value of `a=fingerprint` for `cert`: `sha-256 AB:CD:...`.
pub fn fingerprint(cert: &X509) -> String {
    let d = cert.digest(MessageDigest::sha256()).unwrap();
    let hex: Vec<String> = d.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

/// The peer's media socket seen by OpenSSL: one datagram per read, from the engine only,
/// DTLS records only (RTP that arrives early is left out), and the first `lose` records
/// from the engine thrown away to simulate loss.
struct PeerIo {
    sock: UdpSocket,
    engine: SocketAddr,
    lose: usize,
    lost: usize,
}

impl Read for PeerIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.sock.recv_from(buf) {
                Ok((n, from)) if from == self.engine && is_dtls(&buf[..n]) => {
                    if self.lost < self.lose {
                        self.lost += 1;
                        continue;
                    }
                    return Ok(n);
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for PeerIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_to(buf, self.engine)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A DTLS-SRTP party: an RTP endpoint with a certificate.
pub struct DtlsPeer {
    pub ep: RtpEndpoint,
    pub cert: X509,
    key: PKey<Private>,
}

/// The result of a handshake: SRTP contexts for both directions.
pub struct Keyed {
    /// Protects what the peer sends.
    pub tx: SrtpContext,
    /// Unprotects what the engine sends the peer.
    pub rx: SrtpContext,
    pub suite: SrtpSuite,
}

impl DtlsPeer {
    pub fn new(ssrc: u32) -> DtlsPeer {
        let (cert, key) = certificate("peer");
        DtlsPeer {
            ep: RtpEndpoint::new(ssrc),
            cert,
            key,
        }
    }

    /// `a=fingerprint:sha-256 ...` for the peer's certificate.
    pub fn fingerprint_line(&self) -> String {
        format!("a=fingerprint:{}", fingerprint(&self.cert))
    }

    /// Run the handshake with the engine at `engine` (as client when `client`), offering
    /// `profiles`; check the engine's certificate against `engine_fp` (its SDP fingerprint)
    /// and derive the SRTP keys. `lose` engine records are dropped first.
    pub fn handshake(
        &self,
        engine: SocketAddr,
        client: bool,
        profiles: &str,
        engine_fp: &str,
        lose: usize,
    ) -> Result<Keyed, String> {
        let mut b = SslContext::builder(SslMethod::dtls()).unwrap();
        b.set_certificate(&self.cert).unwrap();
        b.set_private_key(&self.key).unwrap();
        b.set_tlsext_use_srtp(profiles).unwrap();
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        let mut ssl = Ssl::new(&b.build()).unwrap();
        ssl.set_mtu(1200).unwrap();
        if client {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        let sock = self.ep.sock.try_clone().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let io = PeerIo {
            sock,
            engine,
            lose,
            lost: 0,
        };
        let mut stream = SslStream::new(ssl, io).unwrap();
        let deadline = Instant::now() + HANDSHAKE_LIMIT;
        loop {
            match stream.do_handshake() {
                Ok(()) => break,
                Err(e) if e.code() == ErrorCode::WANT_READ && Instant::now() < deadline => {}
                Err(e) => return Err(format!("handshake: {e:?}")),
            }
        }
        self.ep.sock.set_read_timeout(None).unwrap();
        let cert = stream
            .ssl()
            .peer_certificate()
            .ok_or("no engine certificate")?;
        assert_eq!(
            fingerprint(&cert),
            engine_fp,
            "engine's certificate matches its a=fingerprint"
        );
        let profile = stream.ssl().selected_srtp_profile().ok_or("no use_srtp")?;
        let suite = match profile.name() {
            "SRTP_AES128_CM_SHA1_80" => SrtpSuite::AesCm128HmacSha1_80,
            "SRTP_AES128_CM_SHA1_32" => SrtpSuite::AesCm128HmacSha1_32,
            "SRTP_AEAD_AES_128_GCM" => SrtpSuite::AeadAes128Gcm,
            other => return Err(format!("unexpected profile {other}")),
        };
        let (k, s) = (suite.master_key_len(), suite.master_salt_len());
        let mut m = vec![0u8; 2 * (k + s)];
        stream
            .ssl()
            .export_keying_material(&mut m, "EXTRACTOR-dtls_srtp", None)
            .unwrap();
        // RFC 5764 §4.2: client key | server key | client salt | server salt.
        let client_ks = [&m[..k], &m[2 * k..2 * k + s]].concat();
        let server_ks = [&m[k..2 * k], &m[2 * k + s..]].concat();
        let (mine, theirs) = if client {
            (client_ks, server_ks)
        } else {
            (server_ks, client_ks)
        };
        Ok(Keyed {
            tx: SrtpContext::from_key_salt(suite, &mine).unwrap(),
            rx: SrtpContext::from_key_salt(suite, &theirs).unwrap(),
            suite,
        })
    }
}

/// An SDP body with one PCMU audio stream on 127.0.0.1:`port` and `extra` media attributes.
pub fn sdp(port: u16, proto: &str, extra: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    for l in extra {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

/// The value of the audio stream's attribute `name` (`a=name:value`).
pub fn attr<'a>(sdp: &'a Sdp, name: &str) -> Option<&'a str> {
    sdp.audio()
        .attributes
        .iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix(':'))
}

/// A PCMU packet whose payload and timestamp follow from `seq`.
pub fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect();
    rtp_packet(0, seq, 160 * u32::from(seq), ssrc, &payload)
}

pub fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 32, 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

/// Decrypt what the engine sent; panics when it does not authenticate.
pub fn unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Vec<u8> {
    let mut buf = srtp.to_vec();
    let n = ctx
        .unprotect_rtp(&mut buf)
        .unwrap_or_else(|e| panic!("SRTP from the engine does not authenticate: {e:?}"));
    buf.truncate(n);
    buf
}

/// A packet that is not DTLS (the peer's socket also sees the engine's handshake), within
/// `wait`; DTLS records met on the way are counted in `dtls_seen`.
pub fn recv_media_counting(
    ep: &RtpEndpoint,
    wait: Duration,
    dtls_seen: &mut usize,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let (p, _) = ep.recv(left)?;
        if !is_dtls(&p) {
            return Some(p);
        }
        *dtls_seen += 1;
    }
    None
}

/// A packet that is not DTLS, within [`WAIT`].
pub fn recv_media(ep: &RtpEndpoint) -> Option<Vec<u8>> {
    recv_media_counting(ep, WAIT, &mut 0)
}

/// SRTP from the DTLS peer reaches the other side as `plain_out` (plain RTP, or SRTP that
/// `other_rx` unprotects), and the other side's media reaches the peer encrypted, once per
/// sequence number in `seqs`. Returns how many DTLS records the peer received meanwhile.
pub fn check_both_ways(
    peer: &RtpEndpoint,
    keys: &mut Keyed,
    peer_dest: SocketAddr,
    other: &RtpEndpoint,
    other_dest: SocketAddr,
    mut other_srtp: Option<(&mut SrtpContext, &mut SrtpContext)>,
    seqs: impl IntoIterator<Item = u16>,
) -> usize {
    let mut dtls_seen = 0;
    for seq in seqs {
        let plain = packet(seq, 0x5a5a);
        peer.sock
            .send_to(&protect(&mut keys.tx, &plain), peer_dest)
            .unwrap();
        let got = recv_media(other)
            .unwrap_or_else(|| panic!("the peer's media (seq {seq}) reaches the other side"));
        let got = match other_srtp.as_mut() {
            Some((_, rx)) => unprotect(rx, &got),
            None => got,
        };
        assert_eq!(got, plain, "the other side gets the peer's plaintext");

        let back = packet(seq, 0x6b6b);
        let wire = match other_srtp.as_mut() {
            Some((tx, _)) => protect(tx, &back),
            None => back.clone(),
        };
        other.sock.send_to(&wire, other_dest).unwrap();
        let srtp = recv_media_counting(peer, WAIT, &mut dtls_seen)
            .unwrap_or_else(|| panic!("media (seq {seq}) reaches the DTLS peer"));
        assert_eq!(srtp.len(), back.len() + keys.suite.srtp_tag_len());
        assert_ne!(srtp[12..back.len()], back[12..], "payload is encrypted");
        assert_eq!(unprotect(&mut keys.rx, &srtp), back);
    }
    dtls_seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtls_records_by_first_byte() {
        assert!(is_dtls(&[22, 254, 253]));
        assert!(is_dtls(&[20]));
        assert!(is_dtls(&[63]));
        assert!(!is_dtls(&[19]));
        assert!(!is_dtls(&[64]));
        assert!(!is_dtls(&[0x80, 0]));
        assert!(!is_dtls(&[]));
    }

    #[test]
    fn fingerprint_is_sha256_of_the_der() {
        let (cert, _) = certificate("x");
        let fp = fingerprint(&cert);
        let hex = fp.strip_prefix("sha-256 ").unwrap();
        assert_eq!(hex.len(), 32 * 3 - 1);
        let der = openssl::sha::sha256(&cert.to_der().unwrap());
        let want: Vec<String> = der.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, want.join(":"));
    }
}
