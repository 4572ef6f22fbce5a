//! Scale-out behind one Kamailio: two ngmedia engines (`set-a`, `set-b`) sharing a Redis
//! server sit in ONE `rtpengine` set with weights 2:1. SIPp places calls through Kamailio;
//! the module spreads the offers over the set and keeps answer and delete of each call on the
//! engine its offer went to. The test checks that
//! - every call lives on exactly one engine, the one the module's weighted selection picks
//!   (its legacy Call-ID hash, pinned with `hash_algo 0`; SIPp's Call-IDs are fixed with
//!   `-cid_str`, which the hash splits exactly 8:4), and each engine counted exactly its own
//!   calls in `/metrics`;
//! - Redis says the same: `P:call:<id>` is owned by that engine and the id is in
//!   `P:calls:<that engine>` only;
//! - media of every call crosses its engine (the caller's RTP reaches the callee, which
//!   echoes it back the same way);
//! - after the BYEs (`rtpengine_delete`, `--delete-delay 0`) no call is left on either
//!   engine nor in Redis.
//!
//! Needs the Debian packages `kamailio`, `sip-tester` and `redis-server` (`.ci/run` installs
//! them). Everything runs on 127.0.0.1.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ngmedia_tests::http::metric;
use ngmedia_tests::sip::{
    find_tool, free_media_port, free_port, kamailio_config, start_kamailio, tail, uac_scenario,
    wait_listening, Guard,
};
use ngmedia_tests::{wait_for, Daemon, NgClient, RedisServer, RtpEndpoint};

/// Calls SIPp places; a multiple of 3 so weights 2:1 split them exactly.
const CALLS: usize = 12;
/// Calls per second SIPp starts: all are up within CALLS / RATE seconds.
const RATE: usize = 6;
/// How long each call stays up after its ACK: the test checks media and Redis meanwhile.
const HOLD_MS: u64 = 8000;
/// RTP packets each call sends through its engine (each must come back).
const PACKETS: usize = 5;
/// Key prefix in Redis (not the default, so `--redis-prefix` is exercised too).
const PREFIX: &str = "kset";
/// The two engines and their weights in the set, in the order the set lists them.
const ENGINES: [(&str, u32); 2] = [("set-a", 2), ("set-b", 1)];

/// The node of a weighted set the `rtpengine` module picks for a new Call-ID with
/// `hash_algo` 0: the byte sum of the Call-ID, cut to 8 bits, modulo the total weight,
/// walked over the nodes in the order the set lists them.
fn module_pick(call_id: &str, weights: &[u32]) -> usize {
    let sum = call_id.bytes().map(u32::from).sum::<u32>() & 0xff;
    let mut cut = sum % weights.iter().sum::<u32>();
    for (i, &w) in weights.iter().enumerate() {
        if cut < w {
            return i;
        }
        cut -= w;
    }
    unreachable!("cut is below the total weight")
}

/// SIPp's Call-ID of call number `n` (they count from 1) with `-cid_str CID_FORMAT`.
const CID_FORMAT: &str = "engine-set-%u";

/// The module's parameters for set 1 of both engines with their weights, its Call-ID hash
/// pinned (`hash_algo 0`) so the split is known in advance.
fn engine_set(a: SocketAddr, b: SocketAddr) -> String {
    let [(_, wa), (_, wb)] = ENGINES;
    format!(
        "modparam(\"rtpengine\", \"rtpengine_sock\", \"1 == udp:{a}={wa} udp:{b}={wb}\")\n\
         modparam(\"rtpengine\", \"hash_table_size\", 64)\n\
         modparam(\"rtpengine\", \"hash_table_tout\", 300)\n\
         modparam(\"rtpengine\", \"hash_algo\", 0)"
    )
}

fn call_id(n: usize) -> String {
    CID_FORMAT.replace("%u", &n.to_string())
}

/// Which phone (index into `phone_ports`) call `call_id` carries and the engine port that
/// phone must send to, once the call's offer and answer went through: the `local port` of
/// the stream whose peer is a phone.
fn caller_side(ng: &NgClient, call_id: &str, phone_ports: &[u16]) -> Option<(usize, u16)> {
    let q = ng.query(call_id).ok()?;
    let tags = q.get("tags")?.as_dict()?;
    tags.iter().find_map(|(_, leg)| {
        let streams = leg
            .get("medias")?
            .as_list()?
            .first()?
            .get("streams")?
            .as_list()?;
        streams.iter().find_map(|s| {
            let peer = s.get("endpoint")?.get("port")?.as_int()?;
            let phone = phone_ports.iter().position(|&p| i64::from(p) == peer)?;
            let port = s.get("local port")?.as_int()?;
            let port = u16::try_from(port).ok().filter(|&p| p != 0)?;
            Some((phone, port))
        })
    })
}

/// Send `PACKETS` packets from `phone` to `engine` and collect the echoes; each must come
/// back from `engine` unchanged. How many did.
fn round_trips(phone: &mut RtpEndpoint, engine: SocketAddr) -> usize {
    phone.drain();
    let mut sent = Vec::with_capacity(PACKETS);
    for _ in 0..PACKETS {
        sent.push(phone.send_next(engine));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut echoed = 0;
    for (packet, from) in phone.recv_many(PACKETS, Duration::from_secs(2)) {
        assert_eq!(
            from, engine,
            "echo must come back from the port the caller sends to"
        );
        assert!(
            sent.contains(&packet),
            "echoed packet differs from what was sent"
        );
        echoed += 1;
    }
    echoed
}

fn smembers(redis: &RedisServer, key: &str) -> BTreeSet<String> {
    redis
        .cmd(0, &["SMEMBERS", key])
        .as_strings()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[test]
fn kamailio_spreads_calls_over_two_engines_sharing_redis() {
    let started = Instant::now();
    let kamailio = find_tool("kamailio", "kamailio");
    let sipp = find_tool("sipp", "sip-tester");
    let dir = std::env::temp_dir().join(format!("ngmedia-engine-set-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();

    let redis = RedisServer::start();
    let url = redis.url(0);
    // Each Daemon::start reserves its own media port block: the ranges are disjoint.
    let engines = ENGINES.map(|(id, _)| {
        Daemon::start(&[
            "--delete-delay",
            "0",
            "--redis",
            &url,
            "--redis-prefix",
            PREFIX,
            "--instance-id",
            id,
        ])
    });
    assert!(
        engines[0].port_max < engines[1].port_min || engines[1].port_max < engines[0].port_min,
        "the engines' media ranges overlap"
    );
    let ng = engines.each_ref().map(Daemon::client);
    let weights = ENGINES.map(|(_, w)| w);
    let ids: Vec<String> = (1..=CALLS).map(call_id).collect();
    let expected: Vec<usize> = ids.iter().map(|id| module_pick(id, &weights)).collect();
    let per_engine = |e: usize| expected.iter().filter(|&&x| x == e).count();
    assert_eq!(
        [per_engine(0), per_engine(1)],
        [CALLS * 2 / 3, CALLS / 3],
        "the module's hash splits these call-ids 2:1 (as the weights)"
    );

    let (sip_port, uas_port, uas_media, uac_port) =
        (free_port(), free_port(), free_media_port(), free_port());
    let mut phones: Vec<RtpEndpoint> = (0..CALLS)
        .map(|i| RtpEndpoint::new(0x4b53_0000 + i as u32))
        .collect();

    let cfg = dir.join("kamailio.cfg");
    fs::write(
        &cfg,
        kamailio_config(
            sip_port,
            uas_port,
            &engine_set(engines[0].ng, engines[1].ng),
            Some(1),
        ),
    )
    .unwrap();
    let kamailio_proc = start_kamailio(&kamailio, &cfg, &dir, sip_port);
    // The callee answers every INVITE with SDP and echoes the RTP it receives.
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &uas_port.to_string()])
        .args(["-rtp_echo", "-mp", &uas_media.to_string(), "-nostdin"]);
    let uas = Guard::spawn(cmd, "sipp uas", &dir.join("uas.log"));
    assert!(
        wait_listening(uas_port, Duration::from_secs(10)),
        "sipp uas does not listen on {uas_port}:\n{}",
        uas.log_tail()
    );

    let scenario = dir.join("uac.xml");
    fs::write(&scenario, uac_scenario("[field0]", HOLD_MS)).unwrap();
    let inject = dir.join("calls.csv");
    let mut lines = String::from("SEQUENTIAL\n");
    for phone in &phones {
        lines.push_str(&format!("{};\n", phone.port()));
    }
    fs::write(&inject, lines).unwrap();
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-inf", inject.to_str().unwrap(), "-cid_str", CID_FORMAT])
        .args(["-i", "127.0.0.1", "-p", &uac_port.to_string()])
        .args([
            "-m",
            &CALLS.to_string(),
            "-r",
            &RATE.to_string(),
            "-rp",
            "1000",
        ])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"]);
    let mut uac = Guard::spawn(cmd, "sipp uac", &dir.join("uac.log"));
    let calls_started = Instant::now();

    // Every call answered, on the engine the weights give it, and on no other.
    let logs = || {
        format!(
            "---- set-a ----\n{}\n---- set-b ----\n{}\n---- kamailio ----\n{}\n---- sipp uac \
             ----\n{}\n---- sipp uas ----\n{}",
            engines[0].log_text(),
            engines[1].log_text(),
            kamailio_proc.log_tail(),
            tail(&dir.join("uac.log")),
            uas.log_tail()
        )
    };
    let all_up = Duration::from_secs((CALLS / RATE) as u64 + 5);
    let phone_ports: Vec<u16> = phones.iter().map(RtpEndpoint::port).collect();
    // Per call: its phone and the engine port that phone sends to.
    let sides: Vec<(usize, u16)> = wait_for(all_up, || {
        ids.iter()
            .zip(&expected)
            .map(|(id, &e)| caller_side(&ng[e], id, &phone_ports))
            .collect()
    })
    .unwrap_or_else(|| {
        let lists = ng.each_ref().map(NgClient::list);
        panic!(
            "not every call answered on its engine within {all_up:?}: set-a lists {:?}, set-b \
             lists {:?}, expected {expected:?} for {ids:?}\n{}",
            lists[0],
            lists[1],
            logs()
        )
    });
    let mut phones_used: Vec<usize> = sides.iter().map(|&(p, _)| p).collect();
    phones_used.sort_unstable();
    assert_eq!(
        phones_used,
        (0..CALLS).collect::<Vec<_>>(),
        "each call carries its own phone's media"
    );
    let lists = ng
        .each_ref()
        .map(|c| c.list().into_iter().collect::<BTreeSet<_>>());
    for (e, (instance, _)) in ENGINES.iter().enumerate() {
        let want: BTreeSet<String> = ids
            .iter()
            .zip(&expected)
            .filter(|&(_, &x)| x == e)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(
            lists[e], want,
            "{instance} holds exactly the calls the weights give it"
        );
    }
    let up_after = calls_started.elapsed();

    // Media of every call crosses its engine and comes back the same way.
    let media_start = Instant::now();
    for (i, &(phone, port)) in sides.iter().enumerate() {
        let engine: SocketAddr = ([127, 0, 0, 1], port).into();
        let echoed = round_trips(&mut phones[phone], engine);
        assert_eq!(
            echoed,
            PACKETS,
            "{}: RTP did not make the round trip through {} ({:?} after the calls started)\n{}",
            ids[i],
            ENGINES[expected[i]].0,
            calls_started.elapsed(),
            logs()
        );
    }
    let media_took = media_start.elapsed();

    // Redis agrees: each call is owned by its engine and listed in that engine's set only.
    let sets = ENGINES.map(|(instance, _)| format!("{PREFIX}:calls:{instance}"));
    let redis_ok = wait_for(Duration::from_secs(3), || {
        let members = sets.each_ref().map(|k| smembers(&redis, k));
        ids.iter()
            .zip(&expected)
            .all(|(id, &e)| {
                let key = format!("{PREFIX}:call:{id}");
                redis.cmd(0, &["HGET", &key, "owner"]).as_str() == Some(ENGINES[e].0)
                    && !redis.cmd(0, &["HGET", &key, "state"]).is_nil()
                    && members[e].contains(id)
                    && !members[1 - e].contains(id)
            })
            .then_some(())
    });
    assert!(
        redis_ok.is_some(),
        "Redis does not show each call owned by its engine: {:?} / {:?}, owners {:?}",
        smembers(&redis, &sets[0]),
        smembers(&redis, &sets[1]),
        ids.iter()
            .map(|id| redis.cmd(0, &["HGET", &format!("{PREFIX}:call:{id}"), "owner"]))
            .collect::<Vec<_>>()
    );

    // The BYEs (rtpengine_delete, delete-delay 0) end every call on its engine and in Redis.
    let status = wait_for(
        Duration::from_millis(HOLD_MS) + Duration::from_secs(10),
        || uac.exited(),
    )
    .expect("caller scenario did not finish");
    assert!(
        status.success(),
        "SIPp callers failed: {status}\n{}",
        logs()
    );
    for (e, (instance, _)) in ENGINES.iter().enumerate() {
        let left = wait_for(Duration::from_secs(3), || {
            let l = ng[e].list();
            l.is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "{instance} still holds {:?} after the BYEs\n{}",
            ng[e].list(),
            logs()
        );
    }
    let redis_empty = wait_for(Duration::from_secs(3), || {
        let calls = redis
            .cmd(0, &["KEYS", &format!("{PREFIX}:call:*")])
            .as_strings()?;
        let members = sets.each_ref().map(|k| smembers(&redis, k));
        (calls.is_empty() && members.iter().all(BTreeSet::is_empty)).then_some(())
    });
    assert!(
        redis_empty.is_some(),
        "calls left in Redis after the BYEs: {:?}, {:?} / {:?}",
        redis.cmd(0, &["KEYS", &format!("{PREFIX}:call:*")]),
        smembers(&redis, &sets[0]),
        smembers(&redis, &sets[1])
    );

    // Each engine counted exactly its own calls and names itself in /metrics.
    for (e, (instance, _)) in ENGINES.iter().enumerate() {
        let text = engines[e].http_client().metrics();
        assert_eq!(
            metric(&text, "ngmedia_calls_total"),
            Some(per_engine(e) as f64),
            "{instance}: ngmedia_calls_total"
        );
        assert_eq!(
            metric(
                &text,
                &format!("ngmedia_instance_info{{instance=\"{instance}\",role=\"active\"}}")
            ),
            Some(1.0),
            "{instance}: ngmedia_instance_info"
        );
    }
    eprintln!(
        "engine set: {CALLS} calls split {}:{}, all up {up_after:?} after the first INVITE, \
         media checked in {media_took:?}, test took {:?}",
        per_engine(0),
        per_engine(1),
        started.elapsed()
    );
    let _ = fs::remove_dir_all(&dir);
}
