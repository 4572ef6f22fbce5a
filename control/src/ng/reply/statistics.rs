//! The `statistics` command (rtpengine's `list jsonstats` content) and the per-proxy command
//! counter names it shares with rtpengine.

use std::time::Instant;

use ngmedia_engine::core::snapshot::EngineStatistics;

use crate::bencode::Encoder;
use crate::ng::counters::{ControlCounters, IntervalCounters};
use crate::ng::request::CommandKind;

/// Per-second rates for `currentstatistics` and interval figures, measured by the caller
/// between two `statistics` requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Seconds of the calls that ended in the interval.
    pub call_seconds: f64,
    /// Fewest and most sessions seen at the two ends of the interval.
    pub sessions_min: u64,
    pub sessions_max: u64,
    /// New calls refused by a load limit since start (`rejectedsessions`).
    pub rejected_sessions: u64,
}

/// rtpengine's per-proxy counter stem for a command (`statistics` → `controlstatistics`:
/// `<stem>count`, `<stem>duration`, `total<stem>count`). Commands rtpengine 10.5 has no
/// counter for return `None` and are only counted internally.
pub(crate) fn stat_name(kind: CommandKind) -> Option<&'static str> {
    Some(match kind {
        CommandKind::Ping => "ping",
        CommandKind::Offer => "offer",
        CommandKind::Answer => "answer",
        CommandKind::Delete => "delete",
        CommandKind::Query => "query",
        CommandKind::List => "list",
        CommandKind::StartRecording => "startrec",
        CommandKind::StopRecording => "stoprec",
        CommandKind::StartForwarding => "startfwd",
        CommandKind::StopForwarding => "stopfwd",
        CommandKind::BlockDtmf => "blkdtmf",
        CommandKind::UnblockDtmf => "unblkdtmf",
        CommandKind::BlockMedia => "blkmedia",
        CommandKind::UnblockMedia => "unblkmedia",
        CommandKind::PlayMedia => "playmedia",
        CommandKind::StopMedia => "stopmedia",
        CommandKind::PlayDtmf => "playdtmf",
        CommandKind::Statistics => "stats",
        CommandKind::SilenceMedia => "slnmedia",
        CommandKind::UnsilenceMedia => "unslnmedia",
        CommandKind::Publish => "pub",
        CommandKind::SubscribeRequest => "subreq",
        CommandKind::SubscribeAnswer => "subans",
        CommandKind::Unsubscribe => "unsub",
        CommandKind::PauseRecording | CommandKind::Connect => return None,
    })
}

/// The commands in rtpengine 10.5's order (`ng_command_strings`), which its statistics use.
pub(crate) const RTPENGINE_ORDER: [CommandKind; 24] = [
    CommandKind::Ping,
    CommandKind::Offer,
    CommandKind::Answer,
    CommandKind::Delete,
    CommandKind::Query,
    CommandKind::List,
    CommandKind::StartRecording,
    CommandKind::StopRecording,
    CommandKind::StartForwarding,
    CommandKind::StopForwarding,
    CommandKind::BlockDtmf,
    CommandKind::UnblockDtmf,
    CommandKind::BlockMedia,
    CommandKind::UnblockMedia,
    CommandKind::PlayMedia,
    CommandKind::StopMedia,
    CommandKind::PlayDtmf,
    CommandKind::Statistics,
    CommandKind::SilenceMedia,
    CommandKind::UnsilenceMedia,
    CommandKind::Publish,
    CommandKind::SubscribeRequest,
    CommandKind::SubscribeAnswer,
    CommandKind::Unsubscribe,
];

/// rtpengine writes its floating-point figures as strings with six decimals.
fn f6(v: f64) -> String {
    format!("{v:.6}")
}

/// Mean and standard deviation from a sum and a sum of squares.
fn mean_stddev(sum: f64, sum2: f64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    (mean, (sum2 / n as f64 - mean * mean).abs().sqrt())
}

/// rtpengine's derived session and packet figures, shared by `statistics` and the
/// rtpengine-named Prometheus families so that both always agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Totals {
    /// Calls ended by the plain idle timeout (not silent, not final).
    pub timeout_sessions: u64,
    pub packet_errors: u64,
    /// Bytes received on relayed streams, RTP and RTCP.
    pub relayed_bytes: u64,
    pub transcoded_media: u64,
    pub call_seconds_avg: f64,
    pub call_seconds_stddev: f64,
    pub mos_avg: f64,
    pub mos_stddev: f64,
}

impl Totals {
    pub(crate) fn of(engine: &EngineStatistics) -> Totals {
        let p = &engine.packets;
        let ended = engine.calls_timed_out + engine.calls_deleted;
        let (call_seconds_avg, call_seconds_stddev) =
            mean_stddev(engine.call_seconds, engine.call_seconds2, ended);
        let (mos_avg, mos_stddev) =
            mean_stddev(engine.mos_sum, engine.mos_sum2, engine.mos_samples);
        Totals {
            timeout_sessions: engine
                .calls_timed_out
                .saturating_sub(engine.calls_silent_timeout)
                .saturating_sub(engine.calls_final_timeout),
            packet_errors: p.drops.iter().sum(),
            relayed_bytes: p.rtp_bytes.saturating_add(p.rtcp_bytes),
            transcoded_media: engine.transcoders.iter().map(|(_, n)| n).sum(),
            call_seconds_avg,
            call_seconds_stddev,
            mos_avg,
            mos_stddev,
        }
    }
}

/// `statistics` (rtpengine's `list jsonstats` content), every section rtpengine 10.5
/// returns, in its order. Kernel forwarding does not exist here, so the `_kernel` figures
/// are the zero they truly are and the `_user` ones are the totals; no Redis peers, so no
/// foreign sessions; no offer timeout, so no offer-timeout sessions. `intervalstatistics`
/// covers the time since the previous `statistics` request (rtpengine: its graphite interval).
pub(crate) fn write_statistics(
    out: &mut Vec<u8>,
    engine: &EngineStatistics,
    control: &ControlCounters,
    rates: Rates,
    interval: &IntervalCounters,
    now: Instant,
) {
    let p = &engine.packets;
    let totals = Totals::of(engine);
    let drops = totals.packet_errors;
    let relayed_bytes = totals.relayed_bytes;
    Encoder::new(out).dict(|d| {
        d.dict("statistics", |s| {
            s.dict("currentstatistics", |c| {
                c.uint("sessionsown", engine.calls_current)
                    .uint("sessionsforeign", 0)
                    .uint("sessionstotal", engine.calls_current)
                    .uint("transcodedmedia", totals.transcoded_media)
                    .uint("packetrate_user", rates.packets)
                    .uint("byterate_user", rates.bytes)
                    .uint("errorrate_user", rates.errors)
                    .uint("packetrate_kernel", 0)
                    .uint("byterate_kernel", 0)
                    .uint("errorrate_kernel", 0)
                    .uint("packetrate", rates.packets)
                    .uint("byterate", rates.bytes)
                    .uint("errorrate", rates.errors)
                    .uint("media_userspace", engine.streams_current)
                    .uint("media_kernel", 0)
                    .uint("media_mixed", 0);
            });
            s.dict("totalstatistics", |t| {
                // rtpengine sends uptime as a string.
                t.str("uptime", &engine.uptime_secs.to_string())
                    .uint("managedsessions", engine.calls_total)
                    .uint("rejectedsessions", rates.rejected_sessions)
                    .uint("timeoutsessions", totals.timeout_sessions)
                    .uint("silenttimeoutsessions", engine.calls_silent_timeout)
                    .uint("finaltimeoutsessions", engine.calls_final_timeout)
                    .uint("offertimeoutsessions", 0)
                    .uint("regularterminatedsessions", engine.calls_deleted)
                    .uint("forcedterminatedsessions", 0)
                    .uint("relayedpackets_user", p.relayed_packets)
                    .uint("relayedpacketerrors_user", drops)
                    // Bytes received on relayed streams, RTP and RTCP.
                    .uint("relayedbytes_user", relayed_bytes)
                    .uint("relayedpackets_kernel", 0)
                    .uint("relayedpacketerrors_kernel", 0)
                    .uint("relayedbytes_kernel", 0)
                    .uint("relayedpackets", p.relayed_packets)
                    .uint("relayedpacketerrors", drops)
                    .uint("relayedbytes", relayed_bytes)
                    .uint("zerowaystreams", engine.zeroway_streams)
                    .uint("onewaystreams", engine.oneway_streams)
                    .str("avgcallduration", &f6(totals.call_seconds_avg))
                    .str("totalcallsduration", &f6(engine.call_seconds))
                    .str("totalcallsduration2", &f6(engine.call_seconds2))
                    .str("totalcallsduration_stddev", &f6(totals.call_seconds_stddev));
            });
            s.dict("intervalstatistics", |iv| {
                iv.str("totalcallsduration", &f6(rates.call_seconds))
                    .uint("minmanagedsessions", rates.sessions_min)
                    .uint("maxmanagedsessions", rates.sessions_max);
                for kind in RTPENGINE_ORDER {
                    let i = kind.index();
                    let n = interval.requests[i];
                    let avg = if n == 0 {
                        0.0
                    } else {
                        interval.delay_sum[i].as_secs_f64() / n as f64
                    };
                    let name = kind.name();
                    let min = interval.delay_min[i].unwrap_or_default().as_secs_f64();
                    iv.str(&format!("min{name}delay"), &f6(min))
                        .str(
                            &format!("max{name}delay"),
                            &f6(interval.delay_max[i].as_secs_f64()),
                        )
                        .str(&format!("avg{name}delay"), &f6(avg));
                }
                let secs = interval
                    .since
                    .map_or(0, |s| now.saturating_duration_since(s).as_secs())
                    .max(1);
                for kind in RTPENGINE_ORDER {
                    let i = kind.index();
                    let name = kind.name();
                    iv.str(
                        &format!("min{name}requestrate"),
                        &interval.rate_min[i].unwrap_or(0).to_string(),
                    )
                    .str(
                        &format!("max{name}requestrate"),
                        &interval.rate_max[i].to_string(),
                    )
                    .str(
                        &format!("avg{name}requestrate"),
                        &(interval.requests[i] / secs).to_string(),
                    );
                }
            });
            s.dict("mos", |m| {
                m.str("mos_total", &f6(engine.mos_sum))
                    .str("mos2_total", &f6(engine.mos_sum2))
                    .uint("mos_samples_total", engine.mos_samples)
                    .str("mos_average", &f6(totals.mos_avg))
                    .str("mos_stddev", &f6(totals.mos_stddev));
            });
            s.dict("controlstatistics", |c| {
                c.list("proxies", |l| {
                    for proxy in control.proxies() {
                        l.dict(|pd| {
                            pd.str("proxy", &proxy.address.to_string());
                            for kind in RTPENGINE_ORDER {
                                if let Some(name) = stat_name(kind) {
                                    pd.uint(&format!("{name}count"), proxy.commands[kind.index()]);
                                    pd.str(
                                        &format!("{name}duration"),
                                        &f6(proxy.seconds[kind.index()]),
                                    );
                                }
                            }
                            pd.uint("errorcount", proxy.errors);
                        });
                    }
                });
                for kind in RTPENGINE_ORDER {
                    if let Some(name) = stat_name(kind) {
                        c.uint(&format!("total{name}count"), control.command_count(kind));
                    }
                }
                c.uint("totalerrorcount", control.errors());
            });
            s.list("interfaces", |l| {
                let total = u64::from(engine.port_max.saturating_sub(engine.port_min)) + 1;
                for iface in &engine.interfaces {
                    l.dict(|i| {
                        i.str("name", &iface.name)
                            .str("address", &iface.address.to_string())
                            .dict("ports", |p| {
                                let used = iface.used.min(total);
                                p.uint("min", u64::from(engine.port_min))
                                    .uint("max", u64::from(engine.port_max))
                                    .uint("used", used)
                                    .str(
                                        "used_pct",
                                        &format!("{:.2}", used as f64 * 100.0 / total as f64),
                                    )
                                    .uint("free", total - used)
                                    .uint("totals", total)
                                    .uint("last", u64::from(iface.last));
                            });
                    });
                }
            });
            s.list("transcoders", |l| {
                for (chain, n) in &engine.transcoders {
                    l.dict(|t| {
                        t.str("chain", chain).uint("num", *n);
                    });
                }
            });
        });
        d.str("result", "ok");
    });
}

#[cfg(test)]
mod tests {
    use ngmedia_engine::core::stats::PacketTotals;

    use super::*;
    use crate::bencode::{self, Value};

    #[test]
    fn statistics_shape() {
        let engine = EngineStatistics {
            uptime_secs: 18,
            calls_current: 2,
            calls_total: 7,
            calls_timed_out: 1,
            calls_deleted: 4,
            ports_in_use: 8,
            ports_total: 100,
            port_min: 30000,
            port_max: 30099,
            interfaces: vec![ngmedia_engine::core::snapshot::InterfacePorts {
                name: "default".into(),
                address: "127.0.0.1".parse().unwrap(),
                used: 8,
                last: 30010,
            }],
            call_seconds: 13.0,
            call_seconds2: 35.0,
            mos_sum: 8.0,
            mos_sum2: 32.08,
            mos_samples: 2,
            packets: PacketTotals {
                rtp_packets: 100,
                rtp_bytes: 17200,
                rtcp_packets: 2,
                rtcp_bytes: 112,
                relayed_packets: 99,
                drops: [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut control = ControlCounters::default();
        let proxy = "127.0.0.1".parse().unwrap();
        control.count(Some(proxy), CommandKind::Offer);
        control.count(Some(proxy), CommandKind::Offer);
        control.count(Some(proxy), CommandKind::Ping);
        control.count_error(Some(proxy));
        let at = Instant::now();
        control.time(
            Some(proxy),
            CommandKind::Offer,
            std::time::Duration::from_millis(2),
            at,
        );
        control.time(
            Some(proxy),
            CommandKind::Offer,
            std::time::Duration::from_millis(4),
            at,
        );
        let interval = control.take_interval(at + std::time::Duration::from_secs(2));
        let mut out = Vec::new();
        write_statistics(
            &mut out,
            &engine,
            &control,
            Rates {
                packets: 50,
                bytes: 8600,
                errors: 0,
                call_seconds: 12.5,
                sessions_min: 1,
                sessions_max: 2,
                rejected_sessions: 3,
            },
            &interval,
            at + std::time::Duration::from_secs(2),
        );
        let v = bencode::decode(&out).unwrap();
        assert_eq!(v.get(b"result").and_then(Value::as_str), Some("ok"));
        let s = v.get(b"statistics").unwrap();
        let cur = s.get(b"currentstatistics").unwrap();
        assert_eq!(cur.get(b"sessionsown"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"sessionstotal"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"packetrate"), Some(&Value::Int(50)));
        assert_eq!(cur.get(b"packetrate_user"), Some(&Value::Int(50)));
        assert_eq!(cur.get(b"packetrate_kernel"), Some(&Value::Int(0)));
        assert_eq!(cur.get(b"transcodedmedia"), Some(&Value::Int(0)));
        let tot = s.get(b"totalstatistics").unwrap();
        assert_eq!(tot.get(b"uptime"), Some(&Value::Bytes(b"18")));
        assert_eq!(tot.get(b"managedsessions"), Some(&Value::Int(7)));
        assert_eq!(tot.get(b"timeoutsessions"), Some(&Value::Int(1)));
        assert_eq!(tot.get(b"regularterminatedsessions"), Some(&Value::Int(4)));
        assert_eq!(tot.get(b"relayedpackets"), Some(&Value::Int(99)));
        assert_eq!(tot.get(b"relayedpacketerrors"), Some(&Value::Int(3)));
        assert_eq!(tot.get(b"rejectedsessions"), Some(&Value::Int(3)));
        // Five ended calls of 2 and 3 seconds: 2,2,3,3,3 → sum 13, sum² 35.
        assert_eq!(
            tot.get(b"avgcallduration"),
            Some(&Value::Bytes(b"2.600000"))
        );
        assert_eq!(
            tot.get(b"totalcallsduration_stddev"),
            Some(&Value::Bytes(b"0.489898"))
        );
        let iv = s.get(b"intervalstatistics").unwrap();
        assert_eq!(
            iv.get(b"totalcallsduration"),
            Some(&Value::Bytes(b"12.500000"))
        );
        assert_eq!(iv.get(b"minofferdelay"), Some(&Value::Bytes(b"0.002000")));
        assert_eq!(iv.get(b"maxofferdelay"), Some(&Value::Bytes(b"0.004000")));
        assert_eq!(iv.get(b"avgofferdelay"), Some(&Value::Bytes(b"0.003000")));
        assert_eq!(iv.get(b"maxofferrequestrate"), Some(&Value::Bytes(b"2")));
        assert_eq!(iv.get(b"avgofferrequestrate"), Some(&Value::Bytes(b"1")));
        let mos = s.get(b"mos").unwrap();
        assert_eq!(mos.get(b"mos_samples_total"), Some(&Value::Int(2)));
        assert_eq!(mos.get(b"mos_average"), Some(&Value::Bytes(b"4.000000")));
        assert_eq!(mos.get(b"mos_stddev"), Some(&Value::Bytes(b"0.200000")));
        let ifs = s.get(b"interfaces").and_then(Value::as_list).unwrap();
        let ports = ifs[0].get(b"ports").unwrap();
        assert_eq!(ports.get(b"used"), Some(&Value::Int(8)));
        assert_eq!(ports.get(b"totals"), Some(&Value::Int(100)));
        assert_eq!(ports.get(b"free"), Some(&Value::Int(92)));
        assert_eq!(ports.get(b"used_pct"), Some(&Value::Bytes(b"8.00")));
        assert_eq!(ports.get(b"last"), Some(&Value::Int(30010)));
        let ctl = s.get(b"controlstatistics").unwrap();
        assert_eq!(ctl.get(b"totaloffercount"), Some(&Value::Int(2)));
        assert_eq!(ctl.get(b"totalstatscount"), Some(&Value::Int(0)));
        assert_eq!(ctl.get(b"totalpingcount"), Some(&Value::Int(1)));
        assert_eq!(ctl.get(b"totalerrorcount"), Some(&Value::Int(1)));
        let proxies = ctl.get(b"proxies").and_then(Value::as_list).unwrap();
        assert_eq!(proxies.len(), 1);
        assert_eq!(
            proxies[0].get(b"proxy").and_then(Value::as_str),
            Some("127.0.0.1")
        );
        assert_eq!(proxies[0].get(b"offercount"), Some(&Value::Int(2)));
        assert_eq!(
            proxies[0].get(b"offerduration"),
            Some(&Value::Bytes(b"0.006000"))
        );
        assert_eq!(proxies[0].get(b"errorcount"), Some(&Value::Int(1)));
        // rtpengine's order inside a proxy entry.
        let keys: Vec<&[u8]> = proxies[0]
            .as_dict()
            .unwrap()
            .iter()
            .map(|(k, _)| *k)
            .take(4)
            .collect();
        assert_eq!(
            keys,
            vec![&b"proxy"[..], b"pingcount", b"pingduration", b"offercount"]
        );
    }
}
