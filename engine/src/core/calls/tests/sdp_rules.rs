//! rtpengine's rules for details of the SDP passed on (direction of a zero-address party,
//! ICE candidates, SDES flags, ...), each checked against the text rtpengine 10.5 writes for
//! the same request (the cases of its `t/auto-daemon-tests.pl` named in each test).

use super::*;
use crate::core::sdp::Direction;

/// An offer from a party at `c=` address `addr` with the given extra media lines.
fn zero_offer(conn: &str, port: u16, extra: &str) -> String {
    format!(
        "v=0\no=- 1545997027 1 IN IP4 198.51.101.40\ns=tester\nt=0 0\n\
         m=audio {port} RTP/AVP 8\nc=IN IP4 {conn}\n{extra}"
    )
}

fn plain(call: &str, sdp: &str) -> OfferAnswer {
    OfferAnswer {
        call_id: call.into(),
        from_tag: "A".into(),
        sdp: crlf(sdp),
        ..Default::default()
    }
}

fn direction_of(sdp: &str) -> Direction {
    Sdp::parse(sdp).unwrap().media_direction(0)
}

/// `null address test A`/`G`: a party at c=0.0.0.0 cannot receive, so the SDP passed on says
/// sendonly (recvonly becomes inactive); the zero address itself stays.
#[test]
fn zero_address_party_cannot_receive() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let out = calls
        .offer(&plain("z1", &zero_offer("0.0.0.0", 16478, "")), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(direction_of(&out), Direction::SendOnly, "{out}");
    assert!(out.contains("c=IN IP4 0.0.0.0\r\n"), "{out}");

    let out = calls
        .offer(
            &plain("z2", &zero_offer("0.0.0.0", 16478, "a=recvonly\n")),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(direction_of(&out), Direction::Inactive, "{out}");

    // `replace: zero-address` writes our address, the direction still says sendonly.
    let mut req = plain("z3", &zero_offer("0.0.0.0", 16478, ""));
    req.replace.zero_address = true;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(direction_of(&out), Direction::SendOnly, "{out}");
    assert!(out.contains("c=IN IP4 127.0.0.1\r\n"), "{out}");
}

/// The trickle-ICE placeholder (0.0.0.0 port 9 with ICE, or `a=ice-options:trickle`) is not
/// a hold; without ICE, port 9 is an ordinary zero address (`null address test A trickle`).
#[test]
fn trickle_placeholder_is_not_a_hold() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let ice = "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuvwx\n";
    let out = calls
        .offer(&plain("t1", &zero_offer("0.0.0.0", 9, ice)), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(direction_of(&out), Direction::SendRecv, "{out}");

    let trickle = format!("{ice}a=ice-options:trickle\n");
    let out = calls
        .offer(
            &plain("t2", &zero_offer("0.0.0.0", 16478, &trickle)),
            clock.now(),
        )
        .unwrap()
        .sdp;
    assert_eq!(direction_of(&out), Direction::SendRecv, "{out}");

    let out = calls
        .offer(&plain("t3", &zero_offer("0.0.0.0", 9, "")), clock.now())
        .unwrap()
        .sdp;
    assert_eq!(direction_of(&out), Direction::SendOnly, "{out}");
}

/// `strip extmap control`/`strip extmap`: a=extmap stays where it was unless the flag asks
/// to remove it, at media and at session level.
#[test]
fn extmap_is_kept_unless_stripped() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let sdp = "v=0\no=- 1545997027 1 IN IP4 198.51.100.1\ns=tester\nt=0 0\na=extmap:2 urn:x\n\
               m=audio 2000 RTP/AVP 0\nc=IN IP4 198.51.100.1\na=extmap:0 foobar\na=sendrecv\n";
    let out = calls.offer(&plain("x1", sdp), clock.now()).unwrap().sdp;
    assert_eq!(
        out,
        crlf(
            "v=0\no=- 1545997027 1 IN IP4 198.51.100.1\ns=tester\nt=0 0\na=extmap:2 urn:x\n\
             m=audio 30002 RTP/AVP 0\nc=IN IP4 127.0.0.1\na=extmap:0 foobar\n\
             a=rtpmap:0 PCMU/8000\na=sendrecv\na=rtcp:30003\n"
        )
    );
    let mut req = plain("x2", sdp);
    req.flags.strip_extmap = true;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(!out.contains("extmap"), "{out}");
}

/// `SDP replace everything`: `replace: username, session-name` write the o= username and s=
/// name of the first SDP the party got, not a name of ours, so later SDPs (from another
/// origin) keep what the party first saw.
#[test]
fn username_and_session_name_stay_the_first_ones() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let sdp = |user: &str, name: &str| {
        format!(
            "v=0\no={user} 1545997027 1 IN IP4 198.51.100.1\ns={name}\nt=0 0\n\
             m=audio 2000 RTP/AVP 0\nc=IN IP4 198.51.100.1\n"
        )
    };
    let origin_and_name = |out: &str| {
        let s = Sdp::parse(out).unwrap();
        (
            s.origin().unwrap().username,
            s.session_name().unwrap().to_owned(),
        )
    };
    let mut req = plain("n1", &sdp("alice", "tester"));
    req.replace.username = true;
    req.replace.session_name = true;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(origin_and_name(&out), ("alice".into(), "tester".into()));
    req.sdp = crlf(&sdp("bob", "other"));
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(origin_and_name(&out), ("alice".into(), "tester".into()));
    // Without the flags, what the sender wrote passes through.
    req.replace.username = false;
    req.replace.session_name = false;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(origin_and_name(&out), ("bob".into(), "other".into()));
}

/// `trickle ICE test A no ICE`: the trickle placeholder c=0.0.0.0 (port 9, trickle ICE) is
/// not kept like a hold address: the receiver gets our address.
#[test]
fn trickle_placeholder_address_becomes_ours() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let sdp = "v=0\no=- 1545997027 1 IN IP4 198.51.101.40\ns=tester\nc=IN IP4 0.0.0.0\nt=0 0\n\
               m=audio 9 RTP/AVP 8\na=ice-ufrag:Ci7n\na=ice-pwd:l9QndxLG6OycZRcQe9zcT95c\n\
               a=ice-options:trickle\n";
    let mut req = plain("tp1", sdp);
    req.ice = IceMode::Remove;
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert_eq!(
        out,
        crlf(
            "v=0\no=- 1545997027 1 IN IP4 198.51.101.40\ns=tester\nc=IN IP4 127.0.0.1\nt=0 0\n\
             m=audio 30002 RTP/AVP 8\na=rtpmap:8 PCMA/8000\na=sendrecv\na=rtcp:30003\n"
        )
    );
}
