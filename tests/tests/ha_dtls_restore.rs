//! High availability of a DTLS-SRTP call, black-box: an engine with `--redis` and a
//! configured certificate (`--dtls-cert`/`--dtls-key`) relays a WebRTC-style caller (our
//! OpenSSL peer, `UDP/TLS/RTP/SAVP`) to a plain RTP callee; it is killed with SIGKILL and
//! started again with the same flags. The restored engine must key the stream from the
//! handshake stored in Redis — the peer starts no new handshake, as a browser would not — and
//! continue SRTP where it was (the sequence numbers cross the 16-bit wrap before the kill, so
//! a lost rollover counter fails authentication). A re-INVITE after the restore gets the same
//! `a=fingerprint` (the configured certificate) and media goes on without a handshake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ngmedia_engine::core::srtp::SrtpSuite;
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::dtls::{
    attr, certificate, check_both_ways, fingerprint, is_dtls, packet, protect, sdp, DtlsPeer, Keyed,
};
use ngmedia_tests::{dict, wait_for, Daemon, NgClient, RedisServer, RtpEndpoint, Value};

const INSTANCE: &str = "ha-dtls";
const CALL: &str = "ha-dtls-call";
/// `--redis-sync-interval`, and how long the live figures (SRTP positions) get to reach
/// Redis before the kill.
const SYNC_INTERVAL: &str = "1";
const SYNC_SETTLE: Duration = Duration::from_millis(2500);
/// Sequence numbers start just below the wrap, so both SRTP directions have a rollover
/// counter of 1 when the engine dies.
const FIRST_SEQ: u16 = 0xfff0;
/// Packets each way before the kill (crosses the wrap).
const BEFORE: u16 = 24;
/// Packets each way checked after the restore and after the re-INVITE.
const AFTER: u16 = 10;
/// SSRCs `check_both_ways` sends with (peer, plain side).
const PEER_SSRC: u32 = 0x5a5a;
const PLAIN_SSRC: u32 = 0x6b6b;
const SRTP_PROFILES: &str = "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// The engine's certificate and key as PEM files in a directory of their own, removed when
/// dropped.
struct CertFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// What the engine must put in `a=fingerprint`.
    fingerprint: String,
}

impl CertFiles {
    fn generate() -> CertFiles {
        let dir = std::env::temp_dir().join(format!("ngmedia-ha-dtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (cert, key) = certificate("ngmedia-ha");
        let files = CertFiles {
            cert: dir.join("dtls.pem"),
            key: dir.join("dtls.key"),
            fingerprint: fingerprint(&cert),
            dir,
        };
        std::fs::write(&files.cert, cert.to_pem().unwrap()).unwrap();
        std::fs::write(&files.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        files
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn engine_flags(redis: &RedisServer, certs: &CertFiles) -> Vec<String> {
    let path = |p: &PathBuf| p.to_str().expect("UTF-8 temp path").to_owned();
    vec![
        "--redis".to_owned(),
        redis.url(0),
        "--instance-id".to_owned(),
        INSTANCE.to_owned(),
        "--redis-sync-interval".to_owned(),
        SYNC_INTERVAL.to_owned(),
        "--dtls-cert".to_owned(),
        path(&certs.cert),
        "--dtls-key".to_owned(),
        path(&certs.key),
    ]
}

/// The number in `restored N calls` (also `restored 1 call`), if `line` says it.
fn restored_count(line: &str) -> Option<u64> {
    line.match_indices("restored ").find_map(|(at, m)| {
        let rest = &line[at + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        rest[digits.len()..]
            .starts_with(" call")
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// Wait until Redis holds the call, owned by this instance.
fn wait_stored(redis: &RedisServer) {
    let key = format!("ngmedia:call:{CALL}");
    let ok = wait_for(Duration::from_secs(5), || {
        (redis.cmd(0, &["HGET", &key, "owner"]).as_str() == Some(INSTANCE)).then_some(())
    });
    assert!(
        ok.is_some(),
        "{key} not in redis: {:?}",
        redis.cmd(0, &["KEYS", "*"])
    );
}

/// The peer's side of the call and the packets crossing it since the kill.
struct Peer<'a> {
    ep: &'a RtpEndpoint,
    keys: Keyed,
    /// Engine address the peer sends to, and the one the plain side sends to.
    peer_dest: SocketAddr,
    plain_dest: SocketAddr,
    /// Next sequence number either side sends (one counter: gaps are harmless).
    seq: u16,
    /// DTLS records the peer received from the restored engine.
    dtls_seen: usize,
    /// SRTP the peer received from the restored engine that did not authenticate.
    bad_srtp: usize,
}

impl Peer<'_> {
    /// After the restore: keep sending fresh SRTP from the peer (100 ms apart) until one
    /// arrives at `plain` as its plaintext, or `deadline` passes.
    fn first_to_plain(&mut self, plain: &RtpEndpoint, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            let sent = packet(self.seq, PEER_SSRC);
            self.seq = self.seq.wrapping_add(1);
            self.ep
                .sock
                .send_to(&protect(&mut self.keys.tx, &sent), self.peer_dest)
                .expect("send SRTP");
            let window = (Instant::now() + Duration::from_millis(100)).min(deadline);
            while let Some(left) = window.checked_duration_since(Instant::now()) {
                match plain.recv(left) {
                    Some((got, _)) if got == sent => return true,
                    Some(_) => continue,
                    None => break,
                }
            }
        }
        false
    }

    /// After the restore: keep sending fresh RTP from `plain` until the peer gets one as
    /// SRTP that decrypts to it, or `deadline` passes. DTLS records and SRTP that does not
    /// authenticate are counted on the way.
    fn first_to_peer(&mut self, plain: &RtpEndpoint, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            let sent = packet(self.seq, PLAIN_SSRC);
            self.seq = self.seq.wrapping_add(1);
            plain
                .sock
                .send_to(&sent, self.plain_dest)
                .expect("send RTP");
            let window = (Instant::now() + Duration::from_millis(100)).min(deadline);
            while let Some(left) = window.checked_duration_since(Instant::now()) {
                let Some((got, _)) = self.ep.recv(left) else {
                    break;
                };
                if is_dtls(&got) {
                    self.dtls_seen += 1;
                    continue;
                }
                let mut buf = got.clone();
                match self.keys.rx.unprotect_rtp(&mut buf) {
                    Ok(n) if buf[..n] == sent[..] => return true,
                    Ok(_) => continue,
                    Err(_) => self.bad_srtp += 1,
                }
            }
        }
        false
    }

    /// `n` packets each way, each checked end to end (see `check_both_ways`).
    fn both_ways(&mut self, plain: &RtpEndpoint, n: u16) {
        self.ep.drain_counting(&mut self.dtls_seen);
        plain.drain();
        let seqs = (0..n).map(|i| self.seq.wrapping_add(i));
        self.dtls_seen += check_both_ways(
            self.ep,
            &mut self.keys,
            self.peer_dest,
            plain,
            self.plain_dest,
            None,
            seqs,
        );
        self.seq = self.seq.wrapping_add(n);
    }
}

/// Reading what is queued on the peer's socket, counting the DTLS records.
trait DrainCounting {
    fn drain_counting(&self, dtls_seen: &mut usize);
}

impl DrainCounting for RtpEndpoint {
    fn drain_counting(&self, dtls_seen: &mut usize) {
        for _ in 0..10_000 {
            match self.recv(Duration::from_millis(1)) {
                Some((p, _)) if is_dtls(&p) => *dtls_seen += 1,
                Some(_) => {}
                None => return,
            }
        }
    }
}

/// Offer from the DTLS caller (tag A, `actpass`) and answer from the plain callee (tag B);
/// the engine's answer towards A.
fn offer_answer(ng: &NgClient, a: &DtlsPeer, b: &RtpEndpoint, version: u32) -> (Value, Value) {
    let bump = |s: String| s.replace("o=- 1 1 ", &format!("o=- 1 {version} "));
    let mut offer = dict! {
        "command" => "offer", "call-id" => CALL, "from-tag" => "A",
        "sdp" => bump(sdp(a.ep.port(), "UDP/TLS/RTP/SAVP", &["a=setup:actpass".into(), a.fingerprint_line()])),
        "ICE" => "remove", "transport-protocol" => "RTP/AVP",
    };
    if version > 1 {
        // A re-INVITE: the dialog has its to-tag.
        if let Value::Dict(d) = &mut offer {
            d.push((b"to-tag".to_vec(), Value::from("B")));
        }
    }
    let offer = ng.ok(offer);
    let answer = ng.answer(CALL, "A", "B", &bump(sdp(b.port(), "RTP/AVP", &[])));
    (offer, answer)
}

#[test]
fn dtls_call_survives_kill9_without_a_new_handshake() {
    let redis = RedisServer::start();
    let certs = CertFiles::generate();
    let flags = engine_flags(&redis, &certs);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut first = Daemon::start(&flag_refs);
    let (a, b) = (DtlsPeer::new(0xa1), RtpEndpoint::new(0xb2));

    // The call and its handshake: the engine answers `active`, so it is the DTLS client.
    let (offer, answer) = offer_answer(&first.client(), &a, &b, 1);
    let (offer_sdp, answer_sdp) = (parse_reply_sdp(&offer), parse_reply_sdp(&answer));
    assert_eq!(offer_sdp.audio().proto, "RTP/AVP");
    assert_eq!(answer_sdp.audio().proto, "UDP/TLS/RTP/SAVP");
    assert_eq!(attr(&answer_sdp, "setup"), Some("active"));
    let engine_fp = attr(&answer_sdp, "fingerprint")
        .expect("a=fingerprint towards the DTLS caller")
        .to_owned();
    assert_eq!(engine_fp, certs.fingerprint, "the --dtls-cert certificate");
    let keys = a
        .handshake(answer_sdp.audio_addr(), false, SRTP_PROFILES, &engine_fp, 0)
        .expect("handshake with the first engine");
    assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_80);
    let mut peer = Peer {
        ep: &a.ep,
        keys,
        peer_dest: answer_sdp.audio_addr(),
        plain_dest: offer_sdp.audio_addr(),
        seq: FIRST_SEQ,
        dtls_seen: 0,
        bad_srtp: 0,
    };
    peer.both_ways(&b, BEFORE);
    assert!(
        peer.seq < FIRST_SEQ,
        "the sequence numbers wrapped before the kill"
    );

    wait_stored(&redis);
    // The DTLS keys and SRTP positions reach Redis on the sync timer.
    std::thread::sleep(SYNC_SETTLE);
    first.kill9();
    // Whatever is still queued came from the first engine.
    a.ep.drain();
    b.drain();
    peer.dtls_seen = 0;

    let second = first.start_beside(&flag_refs);
    let (at, line) = second
        .wait_for_log_line(Duration::from_secs(5), |l| restored_count(l).is_some())
        .unwrap_or_else(|| panic!("no `restored N calls` line:\n{}", second.log_text()));
    assert_eq!(restored_count(&line), Some(1), "{line}");

    // No handshake from the peer: the restored keys must carry the call, within 1 s.
    let deadline = at + Duration::from_secs(1);
    assert!(
        peer.first_to_plain(&b, deadline),
        "peer SRTP -> plain RTP not relayed within 1 s of the restore"
    );
    assert!(
        peer.first_to_peer(&b, deadline),
        "plain RTP -> peer SRTP not relayed within 1 s of the restore \
         ({} DTLS records, {} unauthenticated SRTP packets at the peer)",
        peer.dtls_seen,
        peer.bad_srtp
    );
    // Late copies of earlier tries must not confuse the exact checks below.
    std::thread::sleep(Duration::from_millis(50));
    peer.both_ways(&b, AFTER);
    assert_eq!(
        peer.bad_srtp, 0,
        "SRTP at the peer that did not authenticate"
    );
    assert_eq!(
        peer.dtls_seen, 0,
        "the restored engine sent the peer DTLS records"
    );

    // A re-INVITE from the DTLS side with the same certificate: same fingerprint, same
    // ports, same roles, so no new handshake and media goes on.
    let (reoffer, reanswer) = offer_answer(&second.client(), &a, &b, 2);
    let (reoffer_sdp, reanswer_sdp) = (parse_reply_sdp(&reoffer), parse_reply_sdp(&reanswer));
    assert_eq!(reoffer_sdp.audio_addr(), peer.plain_dest);
    assert_eq!(reanswer_sdp.audio_addr(), peer.peer_dest);
    assert_eq!(reanswer_sdp.audio().proto, "UDP/TLS/RTP/SAVP");
    assert_eq!(
        attr(&reanswer_sdp, "fingerprint"),
        Some(engine_fp.as_str()),
        "the restored engine presents the configured certificate"
    );
    assert_eq!(attr(&reanswer_sdp, "setup"), Some("active"));
    peer.both_ways(&b, AFTER);
    // Anything the engine sent after the last packet (a late ClientHello) counts too.
    std::thread::sleep(Duration::from_millis(300));
    a.ep.drain_counting(&mut peer.dtls_seen);
    assert_eq!(
        peer.dtls_seen, 0,
        "the engine started a DTLS handshake after the re-INVITE"
    );
}

#[test]
fn restored_count_reads_the_log_line() {
    assert_eq!(
        restored_count("INFO ngmedia: restored 1 calls in 3 ms (0 failed)"),
        Some(1)
    );
    assert_eq!(restored_count("restored 12 call(s)"), Some(12));
    assert_eq!(restored_count("restored no calls"), None);
    assert_eq!(restored_count("nothing"), None);
}
