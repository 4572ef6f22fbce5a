//! Offer/answer scenarios against an in-memory media plane, with fake time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::core::calls::model::LegId;
use crate::core::config::Interface;
use crate::core::plan::{CallKey, CallPlan, LocalPort, PortError, PortKey, PortPair};
use crate::core::request::{Delete, Family, IceMode, List, OfferAnswer, Query};
use crate::core::sdp::Sdp;
use crate::core::stats::PacketTotals;

/// Hands out port pairs from a list (or counting up from 30000) and records plans.
#[derive(Default)]
struct FakeMedia {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    next_key: u64,
    next_port: u16,
    scripted: VecDeque<u16>,
    limit: Option<usize>,
    live: Vec<PortKey>,
    plans: HashMap<CallKey, CallPlan>,
    removed: Vec<CallKey>,
}

impl FakeMedia {
    fn scripted(ports: &[u16]) -> Arc<FakeMedia> {
        let m = FakeMedia::default();
        m.state.lock().unwrap().scripted = ports.iter().copied().collect();
        Arc::new(m)
    }

    fn plan(&self, key: CallKey) -> CallPlan {
        self.state.lock().unwrap().plans[&key].clone()
    }

    fn live_ports(&self) -> usize {
        self.state.lock().unwrap().live.len()
    }
}

impl MediaPlane for FakeMedia {
    fn allocate_pair(&self, iface: &Interface) -> Result<PortPair, PortError> {
        let mut s = self.state.lock().unwrap();
        if s.limit.is_some_and(|l| s.live.len() + 2 > l) {
            return Err(PortError::Exhausted);
        }
        let port = match s.scripted.pop_front() {
            Some(p) => p,
            None => {
                s.next_port = if s.next_port == 0 {
                    30000
                } else {
                    s.next_port + 2
                };
                s.next_port
            }
        };
        let mut local = |p: u16| {
            s.next_key += 1;
            let key = PortKey(s.next_key);
            s.live.push(key);
            LocalPort {
                key,
                addr: SocketAddr::new(iface.local, p),
            }
        };
        Ok(PortPair {
            rtp: local(port),
            rtcp: local(port + 1),
        })
    }

    fn allocate_pair_at(&self, iface: &Interface, rtp_port: u16) -> Result<PortPair, PortError> {
        self.state.lock().unwrap().scripted.push_front(rtp_port);
        self.allocate_pair(iface)
    }

    fn apply(&self, plan: CallPlan) {
        self.state.lock().unwrap().plans.insert(plan.call, plan);
    }

    fn remove(&self, call: CallKey) {
        let mut s = self.state.lock().unwrap();
        if let Some(plan) = s.plans.remove(&call) {
            s.live
                .retain(|k| !plan.streams.iter().any(|st| st.port == *k));
        }
        s.removed.push(call);
    }

    fn release(&self, ports: &[PortKey]) {
        self.state
            .lock()
            .unwrap()
            .live
            .retain(|k| !ports.contains(k));
    }

    fn totals(&self) -> PacketTotals {
        PacketTotals::default()
    }
}

struct Clock {
    start: Instant,
    elapsed: Duration,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }
    fn now(&self) -> Now {
        Now {
            mono: self.start + self.elapsed,
            unix_us: 1_795_300_564_000_000 + self.elapsed.as_micros() as u64,
        }
    }
    fn advance(&mut self, d: Duration) {
        self.elapsed += d;
    }
}

fn calls_with(media: Arc<FakeMedia>, config: EngineConfig) -> Calls {
    Calls::new(Arc::new(config), media)
}

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

const OFFER_B: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 198.51.100.7
s=call
c=IN IP4 127.0.0.2
t=0 0
m=audio 40000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
";

const ANSWER_B: &str = "v=0
o=bob 1 1 IN IP4 203.0.113.9
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 40010 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
";

fn offer_req(call: &str, from: &str, sdp: &str) -> OfferAnswer {
    let mut r = OfferAnswer {
        call_id: call.into(),
        from_tag: from.into(),
        sdp: crlf(sdp),
        ice: IceMode::Remove,
        ..Default::default()
    };
    r.flags.trust_address = true;
    r.replace.origin = true;
    r
}

fn answer_req(call: &str, from: &str, to: &str, sdp: &str) -> OfferAnswer {
    let mut r = offer_req(call, from, sdp);
    r.to_tag = Some(to.into());
    r
}

/// rtpengine 10.5's replies to example B of the reference, with the same ports.
#[test]
fn plain_offer_answer_matches_reference_sdp() {
    let media = FakeMedia::scripted(&[30046, 30030]);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let offer = calls
        .offer(&offer_req("call-plain-2", "tagA", OFFER_B), clock.now())
        .unwrap();
    assert_eq!(
        offer.sdp,
        crlf(
            "v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=call
c=IN IP4 127.0.0.1
t=0 0
m=audio 30030 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30031
a=ptime:20
"
        )
    );
    let answer = calls
        .answer(
            &answer_req("call-plain-2", "tagA", "tagB", ANSWER_B),
            clock.now(),
        )
        .unwrap();
    assert_eq!(
        answer.sdp,
        crlf(
            "v=0
o=bob 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30046 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30047
a=ptime:20
"
        )
    );

    // The plan crosses A-facing and B-facing sockets and expects each party at its SDP address.
    let call_key = calls.calls["call-plain-2"].key;
    let plan = media.plan(call_key);
    assert_eq!(plan.streams.len(), 4);
    let by_port = |p: u16| {
        plan.streams
            .iter()
            .find(|s| {
                let c = &calls.calls["call-plain-2"];
                c.legs
                    .iter()
                    .flat_map(|l| &l.medias)
                    .filter_map(|m| m.ports)
                    .any(|pp| {
                        (pp.rtp.key == s.port && pp.rtp.addr.port() == p)
                            || (pp.rtcp.key == s.port && pp.rtcp.addr.port() == p)
                    })
            })
            .unwrap()
            .clone()
    };
    let key_of = |p: u16| by_port(p).port;
    let a_rtp = by_port(30046);
    assert_eq!(a_rtp.expected, Some("127.0.0.2:40000".parse().unwrap()));
    assert_eq!(a_rtp.rtp_sink, Some(key_of(30030)));
    assert_eq!(a_rtp.rtcp_sink, Some(key_of(30031)));
    let b_rtcp = by_port(30031);
    assert_eq!(b_rtcp.expected, Some("127.0.0.3:40011".parse().unwrap()));
    assert_eq!(b_rtcp.rtcp_sink, Some(key_of(30047)));
    assert_eq!(b_rtcp.rtp_sink, None);
}

#[test]
fn reinvite_keeps_ports_and_direction_can_reverse() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let o1 = calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let a1 = calls
        .answer(&answer_req("c1", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    let ports = media.live_ports();
    let o2 = calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let a2 = calls
        .answer(&answer_req("c1", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    assert_eq!((o1.sdp.clone(), a1.sdp.clone()), (o2.sdp, a2.sdp));
    assert_eq!(media.live_ports(), ports);
    // The callee re-INVITEs: its SDP goes to the caller, who is told the A-facing port.
    let mut rev = offer_req("c1", "B", &ANSWER_B.replace("sendrecv", "sendonly"));
    rev.to_tag = Some("A".into());
    let r = calls.offer(&rev, clock.now()).unwrap();
    let a_port = Sdp::parse(&a1.sdp).unwrap().media[0].m.port;
    assert_eq!(Sdp::parse(&r.sdp).unwrap().media[0].m.port, a_port);
    assert!(r.sdp.contains("a=sendonly\r\n"));
    assert_eq!(media.live_ports(), ports);
    assert_eq!(calls.calls["c1"].legs.len(), 2);
}

#[test]
fn reinvite_toward_a_new_tag_gets_a_new_party_and_the_former_peer_keeps_its_ports() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let a1 = calls
        .answer(&answer_req("c1", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    let a_port = Sdp::parse(&a1.sdp).unwrap().media[0].m.port;
    // The callee re-INVITEs another party (say after a transfer): "C" is a new tag.
    let mut to_c = offer_req("c1", "B", ANSWER_B);
    to_c.to_tag = Some("C".into());
    let c = calls.offer(&to_c, clock.now()).unwrap();
    assert_ne!(Sdp::parse(&c.sdp).unwrap().media[0].m.port, a_port);
    let call = &calls.calls["c1"];
    assert_eq!(call.legs.len(), 3);
    assert_eq!(call.legs[2].tag, "C");
    assert_eq!(call.legs[1].peer, Some(LegId(2)));
    // Naming the former peer again goes back to it, on the ports it had.
    let mut to_a = offer_req("c1", "B", ANSWER_B);
    to_a.to_tag = Some("A".into());
    let a = calls.offer(&to_a, clock.now()).unwrap();
    assert_eq!(Sdp::parse(&a.sdp).unwrap().media[0].m.port, a_port);
    assert_eq!(calls.calls["c1"].legs[1].peer, Some(LegId(0)));
}

#[test]
fn second_branch_answer_becomes_an_alias() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let a1 = calls
        .answer(&answer_req("c1", "A", "B1", ANSWER_B), clock.now())
        .unwrap();
    let a2 = calls
        .answer(&answer_req("c1", "A", "B2", ANSWER_B), clock.now())
        .unwrap();
    assert_eq!(a1.sdp, a2.sdp);
    let q = calls.query(
        &Query {
            call_id: "c1".into(),
            from_tag: None,
            to_tag: Some("B2".into()),
        },
        clock.now(),
    );
    assert!(q.is_ok());
}

#[test]
fn errors_and_delete_semantics() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let mut clock = Clock::new();
    let q = Query {
        call_id: "nope".into(),
        ..Default::default()
    };
    assert_eq!(calls.query(&q, clock.now()), Err(CallError::UnknownCall));
    assert_eq!(
        calls
            .answer(&answer_req("nope", "A", "B", ANSWER_B), clock.now())
            .unwrap_err()
            .to_string(),
        "Unknown call-id"
    );
    let mut del = Delete {
        call_id: "nope".into(),
        ..Default::default()
    };
    let r = calls.delete(&del, clock.now()).unwrap();
    assert_eq!(
        r.warning.as_deref(),
        Some("Call-ID not found or tags didn't match")
    );
    del.flags.fatal = true;
    assert_eq!(calls.delete(&del, clock.now()), Err(CallError::NotFound));

    // Default delete delay: the call lingers, answers queries, and is purged by the timer.
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let del = Delete {
        call_id: "c1".into(),
        from_tag: Some("A".into()),
        ..Default::default()
    };
    assert!(calls.delete(&del, clock.now()).unwrap().snapshot.is_some());
    assert!(calls.delete(&del, clock.now()).unwrap().snapshot.is_some());
    clock.advance(Duration::from_secs(29));
    assert!(calls.tick(clock.now()).is_empty());
    assert!(calls
        .query(
            &Query {
                call_id: "c1".into(),
                ..Default::default()
            },
            clock.now()
        )
        .is_ok());
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        calls.tick(clock.now()),
        vec![CallEvent::Purged {
            call_id: "c1".into()
        }]
    );
    assert_eq!(media.live_ports(), 0);

    // delete-delay 0 removes at once; a wrong tag is "not found".
    calls
        .offer(&offer_req("c2", "A", OFFER_B), clock.now())
        .unwrap();
    let wrong = Delete {
        call_id: "c2".into(),
        from_tag: Some("X".into()),
        ..Default::default()
    };
    assert!(calls.delete(&wrong, clock.now()).unwrap().warning.is_some());
    let now = Delete {
        call_id: "c2".into(),
        delete_delay: Some(Duration::ZERO),
        ..Default::default()
    };
    calls.delete(&now, clock.now()).unwrap();
    assert!(calls.is_empty());
    assert_eq!(media.live_ports(), 0);

    let mut bad = offer_req("c3", "A", OFFER_B);
    bad.sdp = "v=0\r\nm=audio x RTP/AVP 0\r\n".into();
    assert!(matches!(
        calls.offer(&bad, clock.now()),
        Err(CallError::Sdp(_))
    ));
    assert!(calls.is_empty());
}

#[test]
fn idle_calls_time_out_and_busy_ones_stay() {
    let media = Arc::new(FakeMedia::default());
    let config = EngineConfig {
        timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let mut calls = calls_with(media.clone(), config);
    let mut clock = Clock::new();
    calls
        .offer(&offer_req("idle", "A", OFFER_B), clock.now())
        .unwrap();
    calls
        .offer(&offer_req("busy", "A", OFFER_B), clock.now())
        .unwrap();
    clock.advance(Duration::from_secs(59));
    let busy = &calls.calls["busy"];
    busy.legs[0].medias[0]
        .rtp_stats
        .count_rx(172, clock.now().unix_us / 1000);
    assert!(calls.tick(clock.now()).is_empty());
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        calls.tick(clock.now()),
        vec![CallEvent::TimedOut {
            call_id: "idle".into(),
            reason: "timeout"
        }]
    );
    assert_eq!(calls.list(&List::default()), vec!["busy".to_owned()]);
    assert_eq!(calls.statistics(clock.now()).calls_timed_out, 1);
}

#[test]
fn port_exhaustion_is_an_error_and_leaks_nothing() {
    let media = Arc::new(FakeMedia::default());
    media.state.lock().unwrap().limit = Some(6);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let err = calls
        .offer(&offer_req("c2", "A", OFFER_B), clock.now())
        .unwrap_err();
    assert_eq!(err.to_string(), "Ran out of ports");
    assert_eq!(calls.len(), 1);
    assert_eq!(media.live_ports(), 4);
}

#[test]
fn ice_force_adds_our_candidates_and_remove_strips() {
    let media = FakeMedia::scripted(&[30010, 30020]);
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("c1", "A", OFFER_B);
    req.ice = IceMode::Force;
    let sdp = Sdp::parse(&calls.offer(&req, clock.now()).unwrap().sdp).unwrap();
    let m = &sdp.media[0];
    assert!(m.attribute("ice-ufrag").is_some_and(|u| u.len() == 8));
    assert!(m.attribute("ice-pwd").is_some_and(|p| p.len() >= 22));
    let cands: Vec<&str> = m
        .lines
        .iter()
        .filter(|l| l.kind == b'a' && l.value.starts_with("candidate:"))
        .map(|l| l.value.as_str())
        .collect();
    assert_eq!(cands.len(), 2);
    assert!(
        cands[0].contains(" 1 UDP ") && cands[0].contains("127.0.0.1 30020 typ host"),
        "{cands:?}"
    );
    assert!(
        cands[1].contains(" 2 UDP ") && cands[1].contains("127.0.0.1 30021 typ host"),
        "{cands:?}"
    );
}

#[test]
fn address_family_bridges_to_ipv6() {
    let media = Arc::new(FakeMedia::default());
    let config = EngineConfig {
        interfaces: vec![
            Interface {
                name: "v4".into(),
                local: "127.0.0.1".parse().unwrap(),
                advertised: None,
            },
            Interface {
                name: "v6".into(),
                local: "::1".parse().unwrap(),
                advertised: None,
            },
        ],
        ..Default::default()
    };
    let mut calls = calls_with(media, config);
    let clock = Clock::new();
    let mut req = offer_req("c1", "A", OFFER_B);
    req.address_family = Some(Family::Ip6);
    let out = calls.offer(&req, clock.now()).unwrap().sdp;
    assert!(out.contains("c=IN IP6 ::1\r\n"), "{out}");
    assert!(
        out.contains("o=alice 2890844526 2890844526 IN IP6 ::1\r\n"),
        "{out}"
    );
    // The caller stays on IPv4.
    let ans = calls
        .answer(
            &answer_req(
                "c1",
                "A",
                "B",
                &ANSWER_B.replace("IP4 127.0.0.3", "IP6 ::1"),
            ),
            clock.now(),
        )
        .unwrap();
    assert!(ans.sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{}", ans.sdp);
}

#[test]
fn asymmetric_and_strict_flags_reach_the_plan() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let mut req = offer_req("c1", "A", OFFER_B);
    req.flags.asymmetric = true;
    req.flags.strict_source = true;
    calls.offer(&req, clock.now()).unwrap();
    let plan = media.plan(calls.calls["c1"].key);
    let a_rtp = plan
        .streams
        .iter()
        .find(|s| s.expected == Some("127.0.0.2:40000".parse().unwrap()))
        .unwrap();
    assert!(!a_rtp.latch.learn && a_rtp.latch.strict_source);
    // The callee has not answered: its side has no address yet.
    assert!(plan.streams.iter().filter(|s| s.expected.is_none()).count() == 2);
}

#[test]
fn endpoint_learning_comes_from_the_request_else_the_daemon() {
    use crate::core::latch::EndpointLearning;
    let media = Arc::new(FakeMedia::default());
    let config = EngineConfig {
        endpoint_learning: EndpointLearning::Delayed,
        ..Default::default()
    };
    let mut calls = calls_with(media.clone(), config);
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    let mut req = offer_req("c2", "A", OFFER_B);
    req.flags.endpoint_learning = Some(EndpointLearning::Off);
    calls.offer(&req, clock.now()).unwrap();
    let learning = |call: &str| {
        let plan = media.plan(calls.calls[call].key);
        let a_rtp = plan.streams.iter().find(|s| s.expected.is_some()).unwrap();
        a_rtp.latch.learning
    };
    assert_eq!(learning("c1"), Some(EndpointLearning::Delayed));
    assert_eq!(learning("c2"), Some(EndpointLearning::Off));
}

#[test]
fn query_reports_counters_per_party() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "A", OFFER_B), clock.now())
        .unwrap();
    calls
        .answer(&answer_req("c1", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    let c = &calls.calls["c1"];
    let a = &c.legs[0].medias[0];
    for _ in 0..3 {
        a.rtp_stats.count_rx(172, 1);
    }
    a.rtp_stats.last_ssrc.store(0x11111111, Relaxed);
    let snap = calls
        .query(
            &Query {
                call_id: "c1".into(),
                ..Default::default()
            },
            clock.now(),
        )
        .unwrap();
    assert_eq!(snap.legs.len(), 2);
    assert_eq!(snap.legs[0].key, "A");
    assert_eq!(snap.legs[0].peers, vec!["B".to_owned()]);
    let s = &snap.legs[0].medias[0].streams[0];
    assert_eq!((s.counters.packets, s.counters.bytes), (3, 516));
    assert_eq!(s.endpoint, Some("127.0.0.2:40000".parse().unwrap()));
    assert_eq!(s.last_ssrc, Some(0x11111111));
    assert_eq!(snap.totals_rtp.packets, 3);
    assert_eq!(snap.legs[0].medias[0].codec.as_deref(), Some("PCMU/8000"));
}

mod dtls;
mod fork;
mod ice;
mod intercept;
mod party_moves;
mod persist;
mod sdp_rules;
mod srtp;
mod subscribe;
mod t38;

/// RTCP feedback belongs to AVPF: an AVPF offer bridged to an AVP party loses its
/// `a=rtcp-fb` lines, and the plan tells the workers which party takes feedback.
#[test]
fn avpf_to_avp_drops_rtcp_feedback() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let clock = Clock::new();
    let avpf = OFFER_B.replace("RTP/AVP", "RTP/AVPF").replace(
        "a=sendrecv\n",
        "a=sendrecv\na=rtcp-fb:0 nack\na=rtcp-fb:* trr-int 100\n",
    );
    let mut req = offer_req("fb", "A", &avpf);
    req.transport_protocol = Some("RTP/AVP".into());
    let offer = calls.offer(&req, clock.now()).unwrap();
    assert!(
        offer.sdp.contains("m=audio 30002 RTP/AVP 0 8 101\r\n"),
        "{}",
        offer.sdp
    );
    assert!(!offer.sdp.contains("rtcp-fb"), "{}", offer.sdp);
    let answer = calls
        .answer(&answer_req("fb", "A", "B", ANSWER_B), clock.now())
        .unwrap();
    assert!(answer.sdp.contains("RTP/AVPF"), "{}", answer.sdp);

    let plan = media.plan(calls.calls["fb"].key);
    let a = &calls.calls["fb"].legs[0].medias[0];
    let feedback_at = |key: PortKey| {
        plan.streams
            .iter()
            .find(|s| s.port == key)
            .unwrap()
            .rtcp_feedback
    };
    let (a_ports, b_ports) = (
        a.ports.unwrap(),
        calls.calls["fb"].legs[1].medias[0].ports.unwrap(),
    );
    assert!(feedback_at(a_ports.rtp.key) && feedback_at(a_ports.rtcp.key));
    assert!(!feedback_at(b_ports.rtp.key) && !feedback_at(b_ports.rtcp.key));
}
