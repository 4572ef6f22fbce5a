//! `statistics` carries every section and key rtpengine 10.5 returns (checked against the
//! reply of Debian's rtpengine 10.5.3.5 after one offer, key by key and in order), with the
//! figures of real calls: ended-call durations, one-way and zero-way streams, per-interface
//! port usage, per-proxy command counts and durations, transcoded media.

use std::time::Duration;

use ngmedia_tests::{dict, Daemon, TwoPartyCall, Value};

/// Key paths of rtpengine 10.5.3.5's `statistics` reply (first list element for lists),
/// captured with `--interface=127.0.0.1` after one offer.
const REFERENCE: &[&str] = &[
    "currentstatistics.sessionsown",
    "currentstatistics.sessionsforeign",
    "currentstatistics.sessionstotal",
    "currentstatistics.transcodedmedia",
    "currentstatistics.packetrate_user",
    "currentstatistics.byterate_user",
    "currentstatistics.errorrate_user",
    "currentstatistics.packetrate_kernel",
    "currentstatistics.byterate_kernel",
    "currentstatistics.errorrate_kernel",
    "currentstatistics.packetrate",
    "currentstatistics.byterate",
    "currentstatistics.errorrate",
    "currentstatistics.media_userspace",
    "currentstatistics.media_kernel",
    "currentstatistics.media_mixed",
    "totalstatistics.uptime",
    "totalstatistics.managedsessions",
    "totalstatistics.rejectedsessions",
    "totalstatistics.timeoutsessions",
    "totalstatistics.silenttimeoutsessions",
    "totalstatistics.finaltimeoutsessions",
    "totalstatistics.offertimeoutsessions",
    "totalstatistics.regularterminatedsessions",
    "totalstatistics.forcedterminatedsessions",
    "totalstatistics.relayedpackets_user",
    "totalstatistics.relayedpacketerrors_user",
    "totalstatistics.relayedbytes_user",
    "totalstatistics.relayedpackets_kernel",
    "totalstatistics.relayedpacketerrors_kernel",
    "totalstatistics.relayedbytes_kernel",
    "totalstatistics.relayedpackets",
    "totalstatistics.relayedpacketerrors",
    "totalstatistics.relayedbytes",
    "totalstatistics.zerowaystreams",
    "totalstatistics.onewaystreams",
    "totalstatistics.avgcallduration",
    "totalstatistics.totalcallsduration",
    "totalstatistics.totalcallsduration2",
    "totalstatistics.totalcallsduration_stddev",
    "intervalstatistics.totalcallsduration",
    "intervalstatistics.minmanagedsessions",
    "intervalstatistics.maxmanagedsessions",
    "intervalstatistics.minofferdelay",
    "intervalstatistics.avgunsubscribedelay",
    "intervalstatistics.minpingrequestrate",
    "intervalstatistics.avgunsubscriberequestrate",
    "intervalstatistics.maxsubscribe answerrequestrate",
    "mos.mos_total",
    "mos.mos2_total",
    "mos.mos_samples_total",
    "mos.mos_average",
    "mos.mos_stddev",
    "controlstatistics.proxies",
    "controlstatistics.proxies[0].proxy",
    "controlstatistics.proxies[0].pingcount",
    "controlstatistics.proxies[0].pingduration",
    "controlstatistics.proxies[0].statscount",
    "controlstatistics.proxies[0].unsubduration",
    "controlstatistics.proxies[0].errorcount",
    "controlstatistics.totalpingcount",
    "controlstatistics.totalstatscount",
    "controlstatistics.totalunsubcount",
    "interfaces",
    "interfaces[0].name",
    "interfaces[0].address",
    "interfaces[0].ports",
    "interfaces[0].ports.min",
    "interfaces[0].ports.max",
    "interfaces[0].ports.used",
    "interfaces[0].ports.used_pct",
    "interfaces[0].ports.free",
    "interfaces[0].ports.totals",
    "interfaces[0].ports.last",
    "transcoders",
];

fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Dict(entries) => {
            for (k, x) in entries {
                let p = format!("{prefix}{}", String::from_utf8_lossy(k));
                out.push(p.clone());
                paths(x, &format!("{p}."), out);
            }
        }
        Value::List(items) => {
            if let Some(first) = items.first() {
                let p = format!("{}[0]", prefix.trim_end_matches('.'));
                out.push(p.clone());
                paths(first, &format!("{p}."), out);
            }
        }
        _ => {}
    }
}

fn section<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("no {name}: {stats:?}"))
}

#[test]
fn every_rtpengine_section_with_real_figures() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    // A relayed call, ended after both sides sent; a call where only A sends, ended too.
    let mut both = TwoPartyCall::setup(&ng, "stats-both");
    both.exchange(5, Duration::from_millis(5));
    let got = both.b.recv_many(5, Duration::from_secs(2));
    assert_eq!(got.len(), 5);
    let mut one = TwoPartyCall::setup(&ng, "stats-one");
    for _ in 0..3 {
        one.a.send_next(one.a_dest);
    }
    let _ = one.b.recv_many(3, Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(300));
    for id in ["stats-both", "stats-one"] {
        ng.ok(dict! { "command" => "delete", "call-id" => id, "delete delay" => 0i64 });
    }
    // A live call holding ports on the interface.
    let live = TwoPartyCall::setup(&ng, "stats-live");

    let reply = ng.ok(dict! { "command" => "statistics" });
    let stats = reply.get("statistics").expect("statistics");
    let mut have = Vec::new();
    paths(stats, "", &mut have);
    for key in REFERENCE {
        assert!(
            have.iter().any(|h| h == key),
            "{key} missing; have {have:?}"
        );
    }

    let total = section(stats, "totalstatistics");
    assert_eq!(total.get("managedsessions"), Some(&Value::Int(3)));
    assert_eq!(total.get("regularterminatedsessions"), Some(&Value::Int(2)));
    assert_eq!(total.get("onewaystreams"), Some(&Value::Int(1)));
    assert_eq!(total.get("zerowaystreams"), Some(&Value::Int(0)));
    let avg: f64 = total.str_at("avgcallduration").unwrap().parse().unwrap();
    assert!(avg > 0.2 && avg < 10.0, "{avg}");
    assert!(matches!(total.get("relayedpackets_user"), Some(Value::Int(n)) if *n >= 10));
    assert_eq!(total.get("relayedpackets_kernel"), Some(&Value::Int(0)));

    let mos = section(stats, "mos");
    assert!(
        matches!(mos.get("mos_samples_total"), Some(Value::Int(n)) if *n >= 2),
        "{mos:?}"
    );
    let mos_avg: f64 = mos.str_at("mos_average").unwrap().parse().unwrap();
    assert!(mos_avg > 3.0 && mos_avg <= 5.0, "{mos_avg}");

    let ifs = stats.get("interfaces").and_then(Value::as_list).unwrap();
    let ports = ifs[0].get("ports").unwrap();
    // The live call: two parties, one m= line each, RTP and RTCP.
    assert_eq!(ports.get("used"), Some(&Value::Int(4)), "{ports:?}");
    assert_eq!(
        ports.get("totals"),
        Some(&Value::Int(
            i64::from(daemon.port_max - daemon.port_min) + 1
        ))
    );
    let last = match ports.get("last") {
        Some(Value::Int(n)) => *n as u16,
        other => panic!("{other:?}"),
    };
    assert!(
        last == live.b_dest.port() || last == live.a_dest.port(),
        "{last}"
    );

    let control = section(stats, "controlstatistics");
    assert_eq!(control.get("totaloffercount"), Some(&Value::Int(3)));
    assert_eq!(control.get("totaldeletecount"), Some(&Value::Int(2)));
    let proxy = &control.get("proxies").and_then(Value::as_list).unwrap()[0];
    let secs: f64 = proxy.str_at("offerduration").unwrap().parse().unwrap();
    assert!(secs > 0.0, "{proxy:?}");

    let interval = section(stats, "intervalstatistics");
    let max_offer: f64 = interval.str_at("maxofferdelay").unwrap().parse().unwrap();
    assert!(max_offer > 0.0 && max_offer < 5.0, "{interval:?}");
    // A second request starts a new interval: no offers in it.
    let again = ng.ok(dict! { "command" => "statistics" });
    let interval = section(again.get("statistics").unwrap(), "intervalstatistics");
    assert_eq!(interval.str_at("maxofferdelay"), Some("0.000000"));
}
