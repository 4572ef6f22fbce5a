//! High availability through Redis (rtpengine's `--redis` persistence), black-box:
//!
//! - an engine killed with SIGKILL and started again with the same `--redis`,
//!   `--instance-id` and port range relays its calls again on the same ports, SDES-SRTP
//!   included (keys and rollover counters carry over), and its counters continue;
//! - a `--standby` engine takes over the calls of an active one whose heartbeat expired;
//! - Redis going away mid-call loses nothing: media and signalling go on, and once Redis is
//!   back (empty) the engine writes all its calls again.
//!
//! Every test runs its own `redis-server` (see `ngmedia_tests::redis`) and daemons on
//! 127.0.0.1; the endpoints are real UDP sockets.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ngmedia_engine::core::sdes::CryptoAttr;
use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::http::metric;
use ngmedia_tests::rtp::rtp_packet;
use ngmedia_tests::{
    dict, wait_for, Daemon, NgClient, RedisServer, RespValue, RtpEndpoint, Sdp, TwoPartyCall, Value,
};

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key + salt of the SRTP party ("1234567890123456" + "78901234567890").
const PEER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
/// How long one relayed packet may take on loopback.
const WAIT: Duration = Duration::from_secs(2);
/// The SRTP call starts its sequence numbers just below the wrap, so the rollover counter
/// is 1 before the engine dies: an engine that lost it would fail to authenticate.
const SRTP_FIRST_SEQ: u16 = 0xfff8;
/// Packets each way before the kill (crosses the sequence wrap on the SRTP call).
const BEFORE: usize = 20;
/// Packets each way after the restore, beyond the first one that got through.
const AFTER: usize = 10;
/// `--redis-sync-interval` in these tests, and how long the tests let the live figures
/// (counters, SRTP indexes, latched peers) settle in Redis before they kill an engine.
const SYNC_INTERVAL: &str = "1";
const SYNC_SETTLE: Duration = Duration::from_millis(2500);

// ---------------------------------------------------------------------------------------
// Helpers

/// Flags for an engine keeping its calls in `redis` database `db`.
fn redis_flags(redis: &RedisServer, db: u32, instance: &str, more: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--redis".to_owned(),
        redis.url(db),
        "--instance-id".to_owned(),
        instance.to_owned(),
        "--redis-sync-interval".to_owned(),
        SYNC_INTERVAL.to_owned(),
    ];
    v.extend(more.iter().map(|s| (*s).to_owned()));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The number right after `prefix` in `line` when a word starting with `call` follows it
/// (`restored 2 calls in 3 ms` → 2 for `restored `).
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    line.match_indices(prefix).find_map(|(at, _)| {
        let rest = &line[at + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        rest[digits.len()..]
            .starts_with(" call")
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// Wait up to `limit` for the log line `<prefix><N> call...`; N, when it was logged, and
/// the line.
fn logged_count(daemon: &Daemon, prefix: &str, limit: Duration) -> (u64, Instant, String) {
    let (at, line) = daemon
        .wait_for_log_line(limit, |l| number_after(l, prefix).is_some())
        .unwrap_or_else(|| {
            panic!(
                "no `{prefix}N calls` log line within {limit:?}:\n{}",
                daemon.log_text()
            )
        });
    let n = number_after(&line, prefix).unwrap_or_default();
    (n, at, line)
}

/// Packets the engine received from party `tag`, summed over its streams.
fn party_packets(reply: &Value, tag: &str) -> Option<u64> {
    let medias = reply.path(&["tags", tag, "medias"])?.as_list()?;
    let mut sum = 0;
    for media in medias {
        for stream in media.get("streams")?.as_list()? {
            sum += stream.path(&["stats", "packets"])?.as_int()? as u64;
        }
    }
    Some(sum)
}

/// Poll `query` until both parties' packet counts are at least `min`; the counts.
fn counts_reaching(ng: &NgClient, call: &str, tags: [&str; 2], min: [u64; 2]) -> [u64; 2] {
    let mut last = None;
    let got = wait_for(WAIT, || {
        let reply = ng.query(call).ok()?;
        let counts = [
            party_packets(&reply, tags[0])?,
            party_packets(&reply, tags[1])?,
        ];
        last = Some(reply);
        (counts[0] >= min[0] && counts[1] >= min[1]).then_some(counts)
    });
    got.unwrap_or_else(|| panic!("{call}: counters never reached {min:?}: {last:?}"))
}

/// Keep sending (a fresh packet each time, 100 ms apart) until one arrives and `accept`s,
/// or `deadline` passes. Whether one got through.
fn until_relayed(
    deadline: Instant,
    mut send: impl FnMut() -> Vec<u8>,
    rx: &UdpSocket,
    mut accept: impl FnMut(&[u8], &[u8]) -> bool,
) -> bool {
    let mut buf = [0u8; 2048];
    for _ in 0..200 {
        if Instant::now() >= deadline {
            return false;
        }
        let sent = send();
        let window = (Instant::now() + Duration::from_millis(100)).min(deadline);
        while let Some(left) = window
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            if rx.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match rx.recv_from(&mut buf) {
                Ok((n, _)) if accept(&sent, &buf[..n]) => return true,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    false
}

/// Send `n` packets each way on a plain call and check every one arrives unchanged and in
/// order. Returns how many crossed each way.
fn assert_plain_media(call: &mut TwoPartyCall, n: usize, what: &str) -> usize {
    call.a.drain();
    call.b.drain();
    let (from_a, from_b) = call.exchange(n, Duration::from_millis(2));
    let at_b: Vec<Vec<u8>> = call
        .b
        .recv_many(n, WAIT)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(at_b, from_a, "{}: A->B {what}", call.call_id);
    let at_a: Vec<Vec<u8>> = call
        .a
        .recv_many(n, WAIT)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(at_a, from_b, "{}: B->A {what}", call.call_id);
    n
}

/// After a restore or takeover: one packet each way must get through before `deadline`
/// (the engine may still be binding when the first tries go out), then `n` more each way
/// arrive exactly. Returns the packets known to have crossed each way.
fn plain_relays_again(call: &mut TwoPartyCall, deadline: Instant, n: usize, what: &str) -> usize {
    let (a_dest, b_dest) = (call.a_dest, call.b_dest);
    let a_ok = {
        let TwoPartyCall { a, b, .. } = &mut *call;
        until_relayed(deadline, || a.send_next(a_dest), &b.sock, |s, g| s == g)
    };
    assert!(a_ok, "{}: A->B not relayed {what} in time", call.call_id);
    let b_ok = {
        let TwoPartyCall { a, b, .. } = &mut *call;
        until_relayed(deadline, || b.send_next(b_dest), &a.sock, |s, g| s == g)
    };
    assert!(b_ok, "{}: B->A not relayed {what} in time", call.call_id);
    // Late copies of earlier tries must not confuse the exact comparison below.
    std::thread::sleep(Duration::from_millis(50));
    1 + assert_plain_media(call, n, what)
}

fn sdp(ep: &RtpEndpoint, proto: &str, extra: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ep.port()
    );
    for l in extra {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

fn crypto(sdp: &Sdp) -> Vec<CryptoAttr> {
    sdp.audio()
        .attributes
        .iter()
        .filter_map(|a| a.strip_prefix("crypto:"))
        .map(|v| CryptoAttr::parse(v).expect("engine a=crypto parses"))
        .collect()
}

fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect();
    rtp_packet(0, seq, 160u32.wrapping_mul(u32::from(seq)), ssrc, &payload)
}

/// An SDES-SRTP caller (tag `sA`, RTP/SAVP with one a=crypto) bridged to a plain RTP callee
/// (tag `sB`), with the test's own SRTP contexts that live on across engine restarts: the
/// same SRTP session must continue through the new engine.
struct SdesCall {
    call_id: String,
    srtp: RtpEndpoint,
    plain: RtpEndpoint,
    srtp_dest: SocketAddr,
    plain_dest: SocketAddr,
    /// Protects what the SRTP party sends; checks what the engine sends it.
    tx: SrtpContext,
    rx: SrtpContext,
    /// Next sequence number each side sends.
    srtp_seq: u16,
    plain_seq: u16,
}

const SRTP_SSRC: u32 = 0x5a5a_0001;
const PLAIN_SSRC: u32 = 0x6b6b_0002;

impl SdesCall {
    fn setup(ng: &NgClient, call_id: &str) -> SdesCall {
        let (srtp, plain) = (RtpEndpoint::new(SRTP_SSRC), RtpEndpoint::new(PLAIN_SSRC));
        let line = format!("a=crypto:1 {SUITE} inline:{PEER_KEY}");
        let offer = ng.ok(dict! {
            "command" => "offer", "call-id" => call_id, "from-tag" => "sA",
            "sdp" => sdp(&srtp, "RTP/SAVP", &[line]), "ICE" => "remove",
            "transport-protocol" => "RTP/AVP",
        });
        let offer_sdp = parse_reply_sdp(&offer);
        assert_eq!(offer_sdp.audio().proto, "RTP/AVP");
        let answer = ng.answer(call_id, "sA", "sB", &sdp(&plain, "RTP/AVP", &[]));
        let answer_sdp = parse_reply_sdp(&answer);
        assert_eq!(answer_sdp.audio().proto, "RTP/SAVP");
        let ours = crypto(&answer_sdp);
        assert_eq!(ours.len(), 1, "one a=crypto line towards the SDES caller");
        assert_eq!(ours[0].suite, SrtpSuite::AesCm128HmacSha1_80);
        let tx = CryptoAttr::parse(&format!("1 {SUITE} inline:{PEER_KEY}"))
            .and_then(|c| c.context())
            .expect("test SRTP context");
        SdesCall {
            call_id: call_id.to_owned(),
            srtp,
            plain,
            srtp_dest: answer_sdp.audio_addr(),
            plain_dest: offer_sdp.audio_addr(),
            tx,
            rx: ours[0].context().expect("engine key makes a context"),
            srtp_seq: SRTP_FIRST_SEQ,
            plain_seq: SRTP_FIRST_SEQ,
        }
    }

    /// SRTP party → engine; the plaintext that should come out at the plain party.
    fn send_srtp(&mut self) -> Vec<u8> {
        send_srtp(
            &mut self.tx,
            &mut self.srtp_seq,
            &self.srtp.sock,
            self.srtp_dest,
        )
    }

    /// Plain party → engine; the plaintext the SRTP party should decrypt.
    fn send_plain(&mut self) -> Vec<u8> {
        send_plain(&mut self.plain_seq, &self.plain.sock, self.plain_dest)
    }

    /// Decrypt what the engine sent the SRTP party; panics when it does not authenticate
    /// (wrong key or rollover counter: the SRTP session did not continue).
    fn open(rx: &mut SrtpContext, srtp: &[u8], what: &str) -> Vec<u8> {
        let mut buf = srtp.to_vec();
        let n = rx
            .unprotect_rtp(&mut buf)
            .unwrap_or_else(|e| panic!("SRTP from the engine does not authenticate {what}: {e:?}"));
        buf.truncate(n);
        buf
    }

    /// `n` packets each way, each checked end to end.
    fn assert_media(&mut self, n: usize, what: &str) -> usize {
        self.srtp.drain();
        self.plain.drain();
        for _ in 0..n {
            let sent = self.send_srtp();
            let (got, _) = self
                .plain
                .recv(WAIT)
                .unwrap_or_else(|| panic!("{}: SRTP->RTP lost {what}", self.call_id));
            assert_eq!(
                got, sent,
                "{}: plain side gets the plaintext {what}",
                self.call_id
            );

            let sent = self.send_plain();
            let (got, _) = self
                .srtp
                .recv(WAIT)
                .unwrap_or_else(|| panic!("{}: RTP->SRTP lost {what}", self.call_id));
            assert_eq!(got.len(), sent.len() + 10, "80-bit tag {what}");
            assert_eq!(Self::open(&mut self.rx, &got, what), sent, "{what}");
        }
        n
    }

    /// As [`plain_relays_again`] for this call.
    fn relays_again(&mut self, deadline: Instant, n: usize, what: &str) -> usize {
        let srtp_ok = {
            let (tx, seq, sock, dest) = (
                &mut self.tx,
                &mut self.srtp_seq,
                &self.srtp.sock,
                self.srtp_dest,
            );
            until_relayed(
                deadline,
                || send_srtp(tx, seq, sock, dest),
                &self.plain.sock,
                |s, g| s == g,
            )
        };
        assert!(
            srtp_ok,
            "{}: SRTP->RTP not relayed {what} in time",
            self.call_id
        );
        let plain_ok = {
            let (seq, sock, dest, rx) = (
                &mut self.plain_seq,
                &self.plain.sock,
                self.plain_dest,
                &mut self.rx,
            );
            until_relayed(
                deadline,
                || send_plain(seq, sock, dest),
                &self.srtp.sock,
                |s, g| Self::open(rx, g, what) == s,
            )
        };
        assert!(
            plain_ok,
            "{}: RTP->SRTP not relayed {what} in time",
            self.call_id
        );
        std::thread::sleep(Duration::from_millis(50));
        1 + self.assert_media(n, what)
    }
}

fn send_srtp(tx: &mut SrtpContext, seq: &mut u16, sock: &UdpSocket, dest: SocketAddr) -> Vec<u8> {
    let plain = packet(*seq, SRTP_SSRC);
    *seq = seq.wrapping_add(1);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
    sock.send_to(&buf[..n], dest).expect("send SRTP");
    plain
}

fn send_plain(seq: &mut u16, sock: &UdpSocket, dest: SocketAddr) -> Vec<u8> {
    let plain = packet(*seq, PLAIN_SSRC);
    *seq = seq.wrapping_add(1);
    sock.send_to(&plain, dest).expect("send RTP");
    plain
}

/// Wait until Redis holds call `call_id` of `instance` under `prefix`: the hash with the
/// right owner and a state, and the call in the instance's set.
fn stored(redis: &RedisServer, db: u32, prefix: &str, instance: &str, call_id: &str) -> bool {
    let key = format!("{prefix}:call:{call_id}");
    let set = format!("{prefix}:calls:{instance}");
    redis.cmd(db, &["HGET", &key, "owner"]).as_str() == Some(instance)
        && !redis.cmd(db, &["HGET", &key, "state"]).is_nil()
        && redis
            .cmd(db, &["SMEMBERS", &set])
            .as_strings()
            .is_some_and(|m| m.iter().any(|c| c == call_id))
}

fn wait_stored(redis: &RedisServer, db: u32, prefix: &str, instance: &str, calls: &[&str]) {
    let ok = wait_for(Duration::from_secs(5), || {
        calls
            .iter()
            .all(|c| stored(redis, db, prefix, instance, c))
            .then_some(())
    });
    assert!(
        ok.is_some(),
        "calls {calls:?} of {instance} not in redis: {:?}",
        redis.cmd(db, &["KEYS", "*"])
    );
}

fn redis_up(daemon: &Daemon) -> Option<f64> {
    metric(&daemon.http_client().metrics(), "ngmedia_redis_up")
}

fn wait_redis_up(daemon: &Daemon, want: f64) {
    let ok = wait_for(Duration::from_secs(5), || {
        (redis_up(daemon) == Some(want)).then_some(())
    });
    assert!(
        ok.is_some(),
        "ngmedia_redis_up never became {want}: {:?}",
        redis_up(daemon)
    );
}

/// Wait (≤ 5 s) for `restored N calls in X ms` from `daemon`; N and when it was logged.
fn restored(daemon: &Daemon) -> (u64, Instant) {
    let (n, at, line) = logged_count(daemon, "restored ", Duration::from_secs(5));
    assert!(line.contains(" ms"), "{line}");
    (n, at)
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn kill9_restart_restores_calls() {
    let redis = RedisServer::start();
    let flags = redis_flags(&redis, 0, "ha-a", &[]);
    let mut first = Daemon::start(&refs(&flags));
    let ng = first.client();

    let mut plain = TwoPartyCall::setup(&ng, "ha-restore-plain");
    let mut sdes = SdesCall::setup(&ng, "ha-restore-sdes");
    assert_plain_media(&mut plain, BEFORE, "before the kill");
    sdes.assert_media(BEFORE, "before the kill");
    let (from_tag, to_tag) = (plain.from_tag.clone(), plain.to_tag.clone());
    let plain_tags = [from_tag.as_str(), to_tag.as_str()];
    let n = BEFORE as u64;
    let plain_before = counts_reaching(&ng, &plain.call_id, plain_tags, [n, n]);
    let sdes_before = counts_reaching(&ng, &sdes.call_id, ["sA", "sB"], [n, n]);

    wait_stored(
        &redis,
        0,
        "ngmedia",
        "ha-a",
        &[&plain.call_id, &sdes.call_id],
    );
    // The live figures (counters, SRTP rollover counters) reach Redis on the sync timer.
    std::thread::sleep(SYNC_SETTLE);
    first.kill9();

    let second = first.start_beside(&refs(&flags));
    let (count, at) = restored(&second);
    assert_eq!(count, 2, "{}", second.log_text());
    let deadline = at + Duration::from_secs(1);
    let plain_after = plain_relays_again(&mut plain, deadline, AFTER, "after the restart");
    let sdes_after = sdes.relays_again(deadline, AFTER, "after the restart");

    // The counters went on from where they were.
    let ng = second.client();
    let a = plain_after as u64;
    counts_reaching(
        &ng,
        &plain.call_id,
        plain_tags,
        [plain_before[0] + a, plain_before[1] + a],
    );
    let s = sdes_after as u64;
    counts_reaching(
        &ng,
        &sdes.call_id,
        ["sA", "sB"],
        [sdes_before[0] + s, sdes_before[1] + s],
    );
}

#[test]
fn standby_takes_over() {
    let redis = RedisServer::start();
    let ttl = ["--redis-heartbeat-ttl", "1"];
    let mut active = Daemon::start(&refs(&redis_flags(&redis, 0, "ha-active", &ttl)));
    let standby = active.start_beside(&refs(&redis_flags(
        &redis,
        0,
        "ha-standby",
        // No delete delay: a deleted call leaves Redis at once.
        &[
            "--standby",
            "--redis-heartbeat-ttl",
            "1",
            "--delete-delay",
            "0",
        ],
    )));

    let mut call = TwoPartyCall::setup(&active.client(), "ha-takeover");
    assert_plain_media(&mut call, BEFORE, "through the active engine");
    wait_stored(&redis, 0, "ngmedia", "ha-active", &[&call.call_id]);
    assert_eq!(
        redis
            .cmd(0, &["EXISTS", "ngmedia:heartbeat:ha-active"])
            .as_int(),
        Some(1),
        "the active engine keeps a heartbeat"
    );
    std::thread::sleep(SYNC_SETTLE);
    active.kill9();

    let (count, at, line) = logged_count(&standby, "took over ", Duration::from_secs(6));
    assert_eq!(count, 1, "{line}");
    assert!(line.contains("ha-active"), "{line}");
    // The endpoints still send to the ports in the SDP they have; the standby now owns them.
    plain_relays_again(
        &mut call,
        at + Duration::from_secs(1),
        AFTER,
        "through the standby",
    );
    wait_stored(&redis, 0, "ngmedia", "ha-standby", &[&call.call_id]);

    let ng = standby.client();
    ng.ok(dict! {
        "command" => "delete", "call-id" => call.call_id.as_str(),
        "from-tag" => call.from_tag.as_str(),
    });
    let key = format!("ngmedia:call:{}", call.call_id);
    let gone = wait_for(WAIT, || {
        (redis.cmd(0, &["EXISTS", &key]) == RespValue::Integer(0)).then_some(())
    });
    assert!(gone.is_some(), "{key} still stored after delete");
}

#[test]
fn redis_restart_loses_no_call() {
    const DB: u32 = 1;
    const PREFIX: &str = "hatest";
    let mut redis = RedisServer::start();
    let flags = redis_flags(&redis, DB, "ha-r", &["--redis-prefix", PREFIX]);
    let mut engine = Daemon::start(&refs(&flags));
    let ng = engine.client();

    let mut first = TwoPartyCall::setup(&ng, "ha-outage-1");
    assert_plain_media(&mut first, 5, "before the outage");
    wait_stored(&redis, DB, PREFIX, "ha-r", &[&first.call_id]);
    wait_redis_up(&engine, 1.0);

    redis.stop();
    assert_plain_media(&mut first, 20, "while redis is down");
    let started = Instant::now();
    let mut second = TwoPartyCall::setup(&ng, "ha-outage-2");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "signalling waited for redis: {:?}",
        started.elapsed()
    );
    assert_plain_media(&mut second, 5, "new call while redis is down");
    wait_redis_up(&engine, 0.0);
    assert_plain_media(&mut first, 5, "while redis is down");

    redis.restart();
    wait_stored(
        &redis,
        DB,
        PREFIX,
        "ha-r",
        &[&first.call_id, &second.call_id],
    );
    wait_redis_up(&engine, 1.0);
    std::thread::sleep(SYNC_SETTLE);

    engine.kill9();
    let again = engine.start_beside(&refs(&flags));
    let (count, at) = restored(&again);
    assert_eq!(count, 2, "{}", again.log_text());
    let deadline = at + Duration::from_secs(1);
    plain_relays_again(&mut first, deadline, 5, "after the restart");
    plain_relays_again(&mut second, deadline, 5, "after the restart");
}

#[test]
fn number_after_reads_the_count() {
    assert_eq!(
        number_after("INFO ngmedia: restored 1000 calls in 87 ms", "restored "),
        Some(1000)
    );
    assert_eq!(
        number_after("took over 3 calls of instance a", "took over "),
        Some(3)
    );
    assert_eq!(number_after("restored no calls", "restored "), None);
    assert_eq!(
        number_after(
            "stream restored 2 ports; restored 5 calls in 1 ms",
            "restored "
        ),
        Some(5)
    );
    assert_eq!(
        number_after("restored 1 call in 0.4 ms", "restored "),
        Some(1)
    );
    assert_eq!(number_after("nothing here", "restored "), None);
}

/// SIGTERM with Redis hands the calls over instead of ending them: the engine exits 0 and
/// says so, and a standby takes them over at once (its heartbeat is deleted, no TTL wait).
#[test]
fn sigterm_hands_calls_over_to_the_standby() {
    let redis = RedisServer::start();
    // A long TTL: only the deleted heartbeat can explain a quick takeover.
    let ttl = ["--redis-heartbeat-ttl", "30"];
    let mut active = Daemon::start(&refs(&redis_flags(&redis, 0, "ha-leaving", &ttl)));
    let standby = active.start_beside(&refs(&redis_flags(
        &redis,
        0,
        "ha-staying",
        &["--standby", "--redis-heartbeat-ttl", "30"],
    )));
    let mut call = TwoPartyCall::setup(&active.client(), "ha-handover");
    assert_plain_media(&mut call, BEFORE, "through the engine that stops");
    wait_stored(&redis, 0, "ngmedia", "ha-leaving", &[&call.call_id]);

    let stopped = Instant::now();
    let status = active
        .terminate(Duration::from_secs(5))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{}", active.log_text());
    assert!(
        active
            .log_text()
            .contains("handed 1 call(s) over through redis, closed 0"),
        "{}",
        active.log_text()
    );
    let (count, at, line) = logged_count(&standby, "took over ", Duration::from_secs(5));
    assert_eq!(count, 1, "{line}");
    assert!(
        at.duration_since(stopped) < Duration::from_secs(5),
        "takeover waited for the heartbeat TTL"
    );
    plain_relays_again(
        &mut call,
        at + Duration::from_secs(1),
        AFTER,
        "through the standby",
    );
}
