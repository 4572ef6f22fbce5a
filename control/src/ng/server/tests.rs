use ngmedia_engine::core::calls::{CallError, DeleteReply, OfferAnswerReply};
use ngmedia_engine::core::request::{Delete, List, OfferAnswer, Query};
use ngmedia_engine::core::snapshot::{CallSnapshot, EngineStatistics};

use super::*;
use crate::bencode::{self, Encoder, Value};
use crate::ng::dispatch::MAX_REPLY;
use crate::ng::metrics::NgResult;
use crate::ng::reply::tests::{ex2_snapshot, EX2_QUERY};
use crate::ng::request::CommandKind;
use ngmedia_engine::core::config::{EngineConfig, Interface};
use ngmedia_engine::core::plan::{CallKey, CallPlan, MediaPlane, PortError, PortKey, PortPair};
use ngmedia_engine::core::stats::PacketTotals;
use ngmedia_test_support::Rng;

/// An engine that knows one call, `call-plain-2`, and records what it was asked.
#[derive(Default)]
struct FakeCalls {
    offers: usize,
    answers: usize,
    deletes: usize,
    list: Vec<String>,
    sdp_size: usize,
    stats: EngineStatistics,
}

const KNOWN: &str = "call-plain-2";

impl CallControl for FakeCalls {
    fn offer(&mut self, req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
        if req.call_id == "no-ports" {
            return Err(PortError::Exhausted.into());
        }
        self.offers += 1;
        let mut sdp = format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", 30000 + 2 * self.offers);
        sdp.extend(std::iter::repeat_n('x', self.sdp_size));
        Ok(OfferAnswerReply {
            sdp,
            warnings: vec![],
        })
    }
    fn answer(&mut self, req: &OfferAnswer, _now: Now) -> Result<OfferAnswerReply, CallError> {
        self.answers += 1;
        if req.call_id != KNOWN {
            return Err(CallError::UnknownCall);
        }
        Ok(OfferAnswerReply {
            sdp: "v=0\r\n".into(),
            warnings: vec!["careful".into()],
        })
    }
    fn delete(&mut self, req: &Delete, _now: Now) -> Result<DeleteReply, CallError> {
        self.deletes += 1;
        match (req.call_id == KNOWN, req.flags.fatal) {
            (true, _) => Ok(DeleteReply {
                snapshot: Some(ex2_snapshot()),
                warning: None,
            }),
            (false, true) => Err(CallError::NotFound),
            (false, false) => Ok(DeleteReply {
                snapshot: None,
                warning: Some(CallError::NotFound.to_string()),
            }),
        }
    }
    fn query(&self, req: &Query, _now: Now) -> Result<CallSnapshot, CallError> {
        if req.call_id == KNOWN {
            Ok(ex2_snapshot())
        } else {
            Err(CallError::UnknownCall)
        }
    }
    fn list(&self, req: &List) -> Vec<String> {
        self.list.iter().take(req.limit).cloned().collect()
    }
    fn statistics(&self, _now: Now) -> EngineStatistics {
        self.stats.clone()
    }
    fn sessions(&self) -> usize {
        self.offers
    }
    fn has_call(&self, call_id: &str) -> bool {
        call_id == KNOWN
    }
}

fn server() -> (NgServer<FakeCalls>, Arc<Mutex<FakeCalls>>) {
    let calls = Arc::new(Mutex::new(FakeCalls::default()));
    (NgServer::new(Arc::clone(&calls)), calls)
}

fn at(t0: Instant, secs: u64) -> Now {
    Now {
        mono: t0 + Duration::from_secs(secs),
        unix_us: 1_795_300_564_000_000 + secs * 1_000_000,
    }
}

fn ask(s: &mut NgServer<FakeCalls>, datagram: &[u8]) -> Vec<u8> {
    s.handle_datagram(datagram, at(Instant::now(), 0))
        .expect("a reply")
}

fn body(reply: &[u8]) -> Value<'_> {
    let (_, b) = request::split_datagram(reply).unwrap();
    bencode::decode(b).unwrap()
}

#[test]
fn fixed_replies_match_captures() {
    let (mut s, _) = server();
    assert_eq!(
        ask(&mut s, b"5323_1 d7:command4:pinge"),
        b"5323_1 d6:result4:ponge"
    );
    assert_eq!(
        ask(&mut s, b"8f1a2b_7 d7:call-id1:xe"),
        b"8f1a2b_7 d6:result5:error12:error-reason36:Dictionary contains no key \"command\"e"
            .to_vec()
    );
    assert_eq!(
        ask(&mut s, b"e2 d7:command3:fooe"),
        b"e2 d6:result5:error12:error-reason20:Unrecognized commande".to_vec()
    );
    assert_eq!(
        ask(&mut s, b"e3 d7:command4:pin"),
        b"e3 d6:result5:error12:error-reason35:Could not decode bencode dictionarye".to_vec()
    );
    assert_eq!(
        ask(&mut s, b"e4 \xff\xfe garbage {json?}"),
        b"e4 d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
    );
    assert_eq!(
        ask(&mut s, b"e5 "),
        b"e5 d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
    );
    assert_eq!(
        s.handle_datagram(b"nocookiehere", at(Instant::now(), 0)),
        None
    );
    assert_eq!(s.handle_datagram(&[0u8; 64], at(Instant::now(), 0)), None);
    assert_eq!(
        s.handle_datagram(b" d7:command4:pinge", at(Instant::now(), 0)),
        None
    );
    assert_eq!(s.control_counters().dropped(), 3);
}

/// captures/ex3.out and ex2.out, through the whole pipeline.
#[test]
fn delete_and_query_replies_match_captures() {
    let (mut s, _) = server();
    assert_eq!(
        ask(
            &mut s,
            b"c3_1 d7:command6:delete7:call-id12:no-such-call8:from-tag1:xe"
        ),
        b"c3_1 d7:warning38:Call-ID not found or tags didn't match6:result2:oke".to_vec()
    );
    assert_eq!(
        ask(
            &mut s,
            b"c3_2 d7:command6:delete7:call-id12:no-such-call8:from-tag1:x5:flagsl5:fatalee"
        ),
        b"c3_2 d6:result5:error12:error-reason38:Call-ID not found or tags didn't matche".to_vec()
    );
    assert_eq!(
        ask(&mut s, b"c3_4 d7:command5:query7:call-id12:call-plain-1e"),
        b"c3_4 d6:result5:error12:error-reason15:Unknown call-ide".to_vec()
    );
    let reply = ask(
        &mut s,
        b"8f1a2b_3 d7:command5:query7:call-id12:call-plain-2e",
    );
    assert_eq!(reply, [&b"8f1a2b_3 "[..], EX2_QUERY].concat());
    let reply = ask(
        &mut s,
        b"8f1a2b_4 d7:command6:delete7:call-id12:call-plain-28:from-tag4:tagAe",
    );
    assert_eq!(reply, [&b"8f1a2b_4 "[..], EX2_QUERY].concat());
}

#[test]
fn offer_answer_and_engine_errors() {
    let (mut s, calls) = server();
    let r = ask(
        &mut s,
        b"o1 d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
    );
    assert_eq!(
        r,
        b"o1 d3:sdp30:v=0\r\nm=audio 30002 RTP/AVP 0\r\n6:result2:oke".to_vec()
    );
    let r = ask(
        &mut s,
        b"o2 d7:command6:answer3:sdp3:v=07:call-id12:call-plain-28:from-tag1:f6:to-tag1:te",
    );
    assert_eq!(
        r,
        b"o2 d3:sdp5:v=0\r\n7:warning7:careful6:result2:oke".to_vec()
    );
    let r = ask(
        &mut s,
        b"o3 d7:command5:offer3:sdp3:v=07:call-id8:no-ports8:from-tag1:fe",
    );
    assert_eq!(
        r,
        b"o3 d6:result5:error12:error-reason16:Ran out of portse".to_vec()
    );
    let r = ask(
        &mut s,
        b"o4 d7:command6:answer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
    );
    assert_eq!(
        r,
        b"o4 d6:result5:error12:error-reason20:No to-tag in messagee".to_vec()
    );
    let r = ask(&mut s, b"o5 d7:command10:block DTMF7:call-id1:ce");
    assert_eq!(body(&r).get(b"result"), Some(&Value::Bytes(b"error")));
    let c = calls.lock().unwrap();
    assert_eq!((c.offers, c.answers), (1, 1));
}

#[test]
fn duplicate_cookie_replays_without_executing() {
    let (mut s, calls) = server();
    let t0 = Instant::now();
    let offer = b"dup_1 d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe";
    let first = s.handle_datagram(offer, at(t0, 0)).unwrap();
    let again = s.handle_datagram(offer, at(t0, 1)).unwrap();
    assert_eq!(first, again);
    // Same cookie, different body: still the cached offer reply (rtpengine behaviour).
    let ping = s
        .handle_datagram(b"dup_1 d7:command4:pinge", at(t0, 2))
        .unwrap();
    assert_eq!(first, ping);
    assert_eq!(calls.lock().unwrap().offers, 1);
    assert_eq!(s.control_counters().replayed(), 2);
    assert_eq!(s.control_counters().command_count(CommandKind::Offer), 1);

    // Error replies are cached too.
    let e1 = s
        .handle_datagram(b"dup_2 d7:command3:fooe", at(t0, 3))
        .unwrap();
    let e2 = s
        .handle_datagram(b"dup_2 d7:command4:pinge", at(t0, 4))
        .unwrap();
    assert_eq!(e1, e2);

    // After 60 s the cookie is forgotten and the request runs again.
    let later = s.handle_datagram(offer, at(t0, 61)).unwrap();
    assert_ne!(first, later);
    assert_eq!(calls.lock().unwrap().offers, 2);

    // The shared metrics saw the same: executed requests by result, replays apart.
    let m = s.metrics();
    assert_eq!(m.requests(CommandKind::Offer, NgResult::Ok), 2);
    assert_eq!(m.requests(CommandKind::Offer, NgResult::Error), 0);
    assert_eq!(m.invalid(NgResult::Error), 1);
    assert_eq!(m.replayed(), 3);
    assert_eq!(m.latency(CommandKind::Offer).count(), 2);
    assert!(s.handle_datagram(b"nocookie", at(t0, 62)).is_none());
    assert_eq!(m.dropped(), 1);
}

#[test]
fn json_requests_get_json_replies() {
    let (mut s, _) = server();
    assert_eq!(
        ask(&mut s, br#"x {"command":"ping"}"#),
        br#"x {"result":"pong"}"#.to_vec()
    );
    assert_eq!(
        ask(&mut s, br#"y {"command":"query","call-id":"nope"}"#),
        br#"y {"result":"error","error-reason":"Unknown call-id"}"#.to_vec()
    );
    assert_eq!(
        ask(&mut s, br#"z {"command":"#),
        br#"z {"result":"error","error-reason":"Could not decode JSON object"}"#.to_vec()
    );
    let r = ask(&mut s, br#"q {"command":"query","call-id":"call-plain-2"}"#);
    let (_, b) = request::split_datagram(&r).unwrap();
    let v: serde_json::Value = serde_json::from_slice(b).unwrap();
    assert_eq!(v["tags"]["tagA"]["medias"][0]["codec"], "PCMU/8000");
    assert_eq!(v["result"], "ok");
}

#[test]
fn oversized_replies_are_bounded() {
    let (mut s, calls) = server();
    calls.lock().unwrap().list = (0..5000).map(|i| format!("call-{i:036}")).collect();
    let r = ask(&mut s, b"l1 d7:command4:list5:limiti5000ee");
    assert!(r.len() <= MAX_REPLY, "{}", r.len());
    let v = body(&r);
    let n = v.get(b"calls").and_then(Value::as_list).unwrap().len();
    assert!(n > 1000 && n < 5000, "{n}");
    assert_eq!(v.get(b"result"), Some(&Value::Bytes(b"ok")));
    // Default limit of 32.
    let v = ask(&mut s, b"l2 d7:command4:liste");
    assert_eq!(
        body(&v)
            .get(b"calls")
            .and_then(Value::as_list)
            .unwrap()
            .len(),
        32
    );

    // A cookie so long that even an error reply would not fit: dropped.
    let mut huge = vec![b'k'; 65_000];
    huge.extend_from_slice(b" d7:command4:pinge");
    assert_eq!(s.handle_datagram(&huge, at(Instant::now(), 0)), None);

    calls.lock().unwrap().sdp_size = 70_000;
    let r = ask(
        &mut s,
        b"big d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
    );
    assert_eq!(
        r,
        b"big d6:result5:error12:error-reason34:Reply too large for a UDP datagrame".to_vec()
    );
}

#[test]
fn statistics_counts_commands_per_proxy() {
    let (mut s, calls) = server();
    calls.lock().unwrap().stats = EngineStatistics {
        uptime_secs: 5,
        calls_current: 1,
        packets: PacketTotals {
            rtp_packets: 100,
            rtp_bytes: 10_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let t0 = Instant::now();
    let kam: IpAddr = "127.0.0.1".parse().unwrap();
    s.handle_datagram_from(b"a d7:command4:pinge", Some(kam), at(t0, 0));
    s.handle_datagram_from(
        b"b d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
        Some(kam),
        at(t0, 0),
    );
    s.handle_datagram_from(b"c d7:command5:offere", Some(kam), at(t0, 0));
    s.handle_datagram_from(b"d d7:command10:statisticse", Some(kam), at(t0, 0));
    calls.lock().unwrap().stats.packets.rtp_packets = 300;
    let r = s
        .handle_datagram_from(b"e d7:command10:statisticse", Some(kam), at(t0, 2))
        .unwrap();
    let v = body(&r);
    let st = v.get(b"statistics").unwrap();
    assert_eq!(
        st.get(b"currentstatistics")
            .and_then(|c| c.get(b"packetrate")),
        Some(&Value::Int(100))
    );
    let ctl = st.get(b"controlstatistics").unwrap();
    assert_eq!(ctl.get(b"totaloffercount"), Some(&Value::Int(2)));
    assert_eq!(ctl.get(b"totalpingcount"), Some(&Value::Int(1)));
    assert_eq!(ctl.get(b"totalstatscount"), Some(&Value::Int(2)));
    assert_eq!(ctl.get(b"totalerrorcount"), Some(&Value::Int(1)));
    let proxy = &ctl.get(b"proxies").and_then(Value::as_list).unwrap()[0];
    assert_eq!(proxy.get(b"proxy"), Some(&Value::Bytes(b"127.0.0.1")));
    assert_eq!(proxy.get(b"offercount"), Some(&Value::Int(2)));
}

#[test]
fn published_statistics_leave_the_proxies_figures_alone() {
    let (mut s, calls) = server();
    let t0 = Instant::now();
    let kam: IpAddr = "127.0.0.1".parse().unwrap();
    calls.lock().unwrap().stats.packets.rtp_packets = 100;
    s.handle_datagram_from(b"b d7:command10:statisticse", Some(kam), at(t0, 0));
    assert!(!s.dispatch.published_statistics(at(t0, 0)).is_empty());
    s.handle_datagram_from(b"a d7:command4:pinge", Some(kam), at(t0, 1));
    calls.lock().unwrap().stats.packets.rtp_packets = 300;
    // The publisher's rate is over its own second; the proxy's over its two.
    let published = s.dispatch.published_statistics(at(t0, 1));
    let v = crate::bencode::decode(&published).unwrap();
    let st = v.get(b"statistics").unwrap();
    fn rate(st: &Value<'_>) -> Option<i64> {
        match st.get(b"currentstatistics")?.get(b"packetrate")? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    assert_eq!(rate(st), Some(200));
    let ctl = st.get(b"controlstatistics").unwrap();
    assert_eq!(
        ctl.get(b"totalstatscount"),
        Some(&Value::Int(1)),
        "not a request"
    );
    let r = s
        .handle_datagram_from(b"c d7:command10:statisticse", Some(kam), at(t0, 2))
        .unwrap();
    let v = body(&r);
    let st = v.get(b"statistics").unwrap();
    assert_eq!(rate(st), Some(100));
    // The ping is still in the proxy's interval: publishing did not start a new one.
    let interval = st.get(b"intervalstatistics").unwrap();
    assert_eq!(
        interval.get(b"maxpingrequestrate"),
        Some(&Value::Bytes(b"1"))
    );
}

/// Thousands of random and mutated datagrams: never a panic, and every reply is
/// `cookie SP dictionary-with-result`.
#[test]
fn survives_random_and_mutated_input() {
    let mut seeds: Vec<Vec<u8>> = vec![
            b"c d7:command4:pinge".to_vec(),
            b"c d7:command5:offer3:sdp3:v=07:call-id1:c8:from-tag1:f5:flagsl13:trust-addresse7:replacel6:origine13:received-froml3:IP49:127.0.0.1e3:ICE6:removee".to_vec(),
            b"c d7:command6:answer3:sdp3:v=07:call-id12:call-plain-28:from-tag1:f6:to-tag1:t3:ICEl5:forceee".to_vec(),
            b"c d7:command6:delete7:call-id12:call-plain-25:flagsl5:fatal4:faste12:delete delayi0ee".to_vec(),
            b"c d7:command5:query7:call-id12:call-plain-2e".to_vec(),
            b"c d7:command4:list5:limit2:10e".to_vec(),
            b"c d7:command10:statisticse".to_vec(),
            br#"c {"command":"offer","sdp":"v=0","call-id":"c","from-tag":"f","flags":["SDES-off"],"ICE":"remove"}"#.to_vec(),
        ];
    let mut body = Vec::new();
    Encoder::new(&mut body).dict(|d| {
        d.str("command", "offer")
            .str("sdp", "v=0")
            .str("call-id", "k")
            .str("from-tag", "f");
        d.dict("codec", |c| {
            c.list("transcode", |l| {
                l.str("PCMA").int(-1).dict(|_| {});
            });
        });
    });
    seeds.push([&b"c "[..], &body].concat());

    let (mut s, calls) = server();
    calls.lock().unwrap().list = vec!["a".into(), "b".into()];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = Instant::now();
    let alphabet = b"dlie0123456789:-_ {}[]\",ab";
    for i in 0..6000u64 {
        let mut d = if rng.below(5) == 0 {
            (0..rng.below(200))
                .map(|_| rng.next_u64() as u8)
                .collect::<Vec<u8>>()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..=rng.below(4) {
            if d.is_empty() {
                break;
            }
            let pos = rng.below(d.len());
            match rng.below(5) {
                0 => d[pos] = rng.next_u64() as u8,
                1 => d[pos] = alphabet[rng.below(alphabet.len())],
                2 => d.truncate(pos),
                3 => d.insert(pos, alphabet[rng.below(alphabet.len())]),
                _ => {
                    let end = (pos + rng.below(8)).min(d.len());
                    d.drain(pos..end);
                }
            }
        }
        // A fresh cookie each time so every datagram is really handled.
        let cookie = format!("f{i}");
        let datagram = match d.iter().position(|&b| b == b' ') {
            Some(sp) if rng.below(10) != 0 => [cookie.as_bytes(), &d[sp..]].concat(),
            _ => d,
        };
        let Some(reply) = s.handle_datagram(&datagram, at(t0, i / 100)) else {
            continue;
        };
        assert!(reply.len() <= MAX_REPLY);
        let (rc, rb) = request::split_datagram(&reply).expect("reply has a cookie");
        let (dc, _) = request::split_datagram(&datagram).unwrap();
        assert_eq!(rc, dc);
        if rb.first() == Some(&b'{') {
            let v: serde_json::Value = serde_json::from_slice(rb).expect("valid JSON reply");
            assert!(v.get("result").is_some());
        } else {
            let v = bencode::decode(rb).expect("valid bencode reply");
            assert!(
                v.get(b"result").is_some(),
                "{}",
                String::from_utf8_lossy(rb)
            );
        }
    }
}

/// A media plane with no ports: enough to build the real `Calls` for type checks and for
/// commands that do not reach it.
struct NoPorts;
impl MediaPlane for NoPorts {
    fn allocate_pair(&self, _interface: &Interface) -> Result<PortPair, PortError> {
        Err(PortError::Exhausted)
    }
    fn allocate_pair_at(&self, _interface: &Interface, _port: u16) -> Result<PortPair, PortError> {
        Err(PortError::Exhausted)
    }
    fn apply(&self, _plan: CallPlan) {}
    fn remove(&self, _call: CallKey) {}
    fn release(&self, _ports: &[PortKey]) {}
    fn totals(&self) -> PacketTotals {
        PacketTotals::default()
    }
}

fn real_server() -> NgServer {
    let calls = Calls::new(Arc::new(EngineConfig::default()), Arc::new(NoPorts));
    NgServer::new(Arc::new(Mutex::new(calls)))
}

#[test]
fn works_with_the_real_calls_type() {
    let mut s = real_server();
    let r = s.handle_datagram(b"p d7:command4:pinge", now()).unwrap();
    assert_eq!(r, b"p d6:result4:ponge");
    let r = s.handle_datagram(b"q d7:command5:querye", now()).unwrap();
    assert_eq!(
        r,
        b"q d6:result5:error12:error-reason21:No call-id in messagee".to_vec()
    );
}

#[tokio::test]
async fn udp_loop_answers_and_stops_on_shutdown() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(real_server().run(socket, async {
        let _ = stop_rx.await;
    }));
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A cookie-less datagram gets no reply; the following ping still does.
    client.send_to(b"nocookiehere", addr).await.unwrap();
    client
        .send_to(b"5323_1 d7:command4:pinge", addr)
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .unwrap();
    assert_eq!(&buf[..n], b"5323_1 d6:result4:ponge");
    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop stops")
        .unwrap();
    assert!(result.is_ok());
}

/// An offer of `call_id`, with Kamailio's `supports: ["load limit"]` when `supports`.
fn offer(cookie: &str, call_id: &str, supports: bool) -> Vec<u8> {
    let mut out = format!("{cookie} ").into_bytes();
    Encoder::new(&mut out).dict(|d| {
        if supports {
            d.list("supports", |l| {
                l.str("load limit");
            });
        }
        d.str("sdp", "v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
            .str("call-id", call_id)
            .str("from-tag", "ft")
            .str("command", "offer");
    });
    out
}

#[test]
fn load_limits_refuse_new_calls_only() {
    use crate::load_limits::{LoadLimit, LoadLimitConfig, LoadLimits};
    let (mut s, calls) = server();
    let limits = Arc::new(LoadLimits::new(LoadLimitConfig {
        max_sessions: Some(1),
        ..Default::default()
    }));
    s.set_load_limits(limits.clone());
    let metrics = s.metrics();

    // Below the limit: a new call is taken.
    let r = ask(&mut s, &offer("a1", "new-1", true));
    assert_eq!(body(&r).get(b"result").unwrap().as_str(), Some("ok"));
    // At the limit: a client that supports it gets `load limit` and rtpengine's reason.
    let r = ask(&mut s, &offer("a2", "new-2", true));
    assert_eq!(
        r,
        b"a2 d6:result10:load limit7:message30:Parallel session limit reachede".to_vec()
    );
    // A re-offer of a call held here goes on.
    let r = ask(&mut s, &offer("a3", KNOWN, true));
    assert_eq!(body(&r).get(b"result").unwrap().as_str(), Some("ok"));
    // A client that does not announce the feature gets the legacy error.
    let r = ask(&mut s, &offer("a4", "new-3", false));
    assert_eq!(
        r,
        b"a4 d6:result5:error12:error-reason30:Parallel session limit reachede".to_vec()
    );
    assert_eq!(
        calls.lock().unwrap().offers,
        2,
        "refused offers never reach the engine"
    );
    assert_eq!(metrics.refused(LoadLimit::Sessions), 2);
    assert_eq!(metrics.requests(CommandKind::Offer, NgResult::LoadLimit), 1);
    assert_eq!(metrics.requests(CommandKind::Offer, NgResult::Error), 1);
    assert_eq!(metrics.requests(CommandKind::Offer, NgResult::Ok), 2);
    // Only the legacy reply counts as an error in `statistics`.
    assert_eq!(s.control_counters().errors(), 1);

    // Lifting the limit at run time lets new calls in again; other limits read the gauge.
    limits.set_max_sessions(None);
    let r = ask(&mut s, &offer("a5", "new-4", true));
    assert_eq!(body(&r).get(b"result").unwrap().as_str(), Some("ok"));
    let cpu = Arc::new(LoadLimits::new(LoadLimitConfig {
        max_cpu: Some(50.0),
        ..Default::default()
    }));
    cpu.gauge
        .cpu_x100
        .store(9_000, std::sync::atomic::Ordering::Relaxed);
    s.set_load_limits(cpu);
    let r = ask(&mut s, &offer("a6", "new-5", true));
    assert_eq!(
        r,
        b"a6 d6:result10:load limit7:message24:CPU usage limit exceedede".to_vec()
    );
    assert_eq!(metrics.refused(LoadLimit::Cpu), 1);
}

#[test]
fn plain_messages_have_no_cookie_and_no_cache() {
    let (mut s, calls) = server();
    let t = at(Instant::now(), 0);
    let msg = offer("", "plain-1", true);
    let plain = &msg[1..];
    let r1 = s.handle_message(plain, Framing::Plain, None, t).unwrap();
    let r2 = s.handle_message(plain, Framing::Plain, None, t).unwrap();
    assert!(
        r1.starts_with(b"d3:sdp"),
        "{}",
        String::from_utf8_lossy(&r1)
    );
    assert_ne!(r1, r2, "each plain message is executed");
    assert_eq!(calls.lock().unwrap().offers, 2);
    let r = s
        .handle_message(b"d7:command4:pinge\r\n", Framing::Plain, None, t)
        .unwrap();
    assert_eq!(r, b"d6:result4:ponge");
    let r = s
        .handle_message(b"garbage", Framing::Plain, None, t)
        .unwrap();
    assert_eq!(
        r,
        b"d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
    );
    // Cookie framing through the same entry point is the datagram path.
    let r = s
        .handle_message(b"c d7:command4:pinge", Framing::Cookie, None, t)
        .unwrap();
    assert_eq!(r, b"c d6:result4:ponge");
    assert_eq!(
        s.handle_message(b"nocookie", Framing::Cookie, None, t),
        None
    );
}

#[tokio::test]
async fn handles_reach_the_running_server_between_datagrams() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = real_server();
    let handle = server.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(socket, async {
        let _ = stop_rx.await;
    }));
    let from = Some(IpAddr::from([127, 0, 0, 1]));
    let r = handle
        .request(b"t1 d7:command4:pinge".to_vec(), Framing::Cookie, from)
        .await;
    assert_eq!(r.as_deref(), Some(&b"t1 d6:result4:ponge"[..]));
    let r = handle
        .request(b"d7:command4:pinge".to_vec(), Framing::Plain, from)
        .await;
    assert_eq!(r.as_deref(), Some(&b"d6:result4:ponge"[..]));
    assert_eq!(
        handle
            .request(b"nocookie".to_vec(), Framing::Cookie, from)
            .await,
        None
    );
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    // Once the server is gone, requests get no reply rather than hanging.
    assert_eq!(
        tokio::time::timeout(
            Duration::from_secs(5),
            handle.request(b"t2 d7:command4:pinge".to_vec(), Framing::Cookie, from)
        )
        .await
        .expect("no hang"),
        None
    );
}
