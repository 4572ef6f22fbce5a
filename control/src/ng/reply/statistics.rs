//! The `statistics` command (rtpengine's `list jsonstats` content) and the per-proxy command
//! counter names it shares with rtpengine.

use ngmedia_engine::core::snapshot::EngineStatistics;

use crate::bencode::Encoder;
use crate::ng::request::CommandKind;
use crate::ng::server::ControlCounters;

/// Per-second rates for `currentstatistics`, measured by the caller between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// rtpengine's per-proxy counter name for a command (`statistics` → `controlstatistics`).
/// Commands rtpengine has no counter for return `None` and are only counted internally.
pub fn stat_name(kind: CommandKind) -> Option<&'static str> {
    Some(match kind {
        CommandKind::Ping => "pingcount",
        CommandKind::Offer => "offercount",
        CommandKind::Answer => "answercount",
        CommandKind::Delete => "deletecount",
        CommandKind::Query => "querycount",
        CommandKind::List => "listcount",
        CommandKind::StartRecording => "startreccount",
        CommandKind::StopRecording => "stopreccount",
        CommandKind::StartForwarding => "startfwdcount",
        CommandKind::StopForwarding => "stopfwdcount",
        CommandKind::BlockDtmf => "blkdtmfcount",
        CommandKind::UnblockDtmf => "unblkdtmfcount",
        CommandKind::BlockMedia => "blkmedia",
        CommandKind::UnblockMedia => "unblkmedia",
        CommandKind::PlayMedia => "playmedia",
        CommandKind::StopMedia => "stopmedia",
        CommandKind::PlayDtmf => "playdtmf",
        CommandKind::Statistics => "statistics",
        _ => return None,
    })
}

/// `statistics` (rtpengine's `list jsonstats` content). Only figures the engine really has
/// are reported: keys for things it cannot know yet (transcoded media, per-kind timeouts,
/// interval statistics, average call duration) are left out rather than filled with zeros;
/// foreign and rejected sessions are reported as the zero they truly are (no Redis peers, no
/// load limits).
pub fn write_statistics(
    out: &mut Vec<u8>,
    engine: &EngineStatistics,
    control: &ControlCounters,
    rates: Rates,
) {
    let p = &engine.packets;
    let drops: u64 = p.drops.iter().sum();
    Encoder::new(out).dict(|d| {
        d.dict("statistics", |s| {
            s.dict("currentstatistics", |c| {
                c.uint("sessionsown", engine.calls_current)
                    .uint("sessionsforeign", 0)
                    .uint("sessionstotal", engine.calls_current)
                    .uint("packetrate", rates.packets)
                    .uint("byterate", rates.bytes)
                    .uint("errorrate", rates.errors);
            });
            s.dict("totalstatistics", |t| {
                // rtpengine sends uptime as a string.
                t.str("uptime", &engine.uptime_secs.to_string())
                    .uint("managedsessions", engine.calls_total)
                    .uint("rejectedsessions", 0)
                    .uint("timeoutsessions", engine.calls_timed_out)
                    .uint("regularterminatedsessions", engine.calls_deleted)
                    .uint("relayedpackets", p.relayed_packets)
                    .uint("relayedpacketerrors", drops)
                    // Bytes received on relayed streams, RTP and RTCP.
                    .uint("relayedbytes", p.rtp_bytes.saturating_add(p.rtcp_bytes));
            });
            s.dict("controlstatistics", |c| {
                c.list("proxies", |l| {
                    for proxy in control.proxies() {
                        l.dict(|pd| {
                            pd.str("proxy", &proxy.address.to_string());
                            for kind in CommandKind::ALL {
                                if let Some(name) = stat_name(kind) {
                                    pd.uint(name, proxy.commands[kind.index()]);
                                }
                            }
                            pd.uint("errorcount", proxy.errors);
                        });
                    }
                });
                for kind in CommandKind::ALL {
                    if let Some(name) = stat_name(kind) {
                        c.uint(&format!("total{name}"), control.command_count(kind));
                    }
                }
                c.uint("totalerrorcount", control.errors());
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
            ports_total: 5000,
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
        let mut out = Vec::new();
        write_statistics(
            &mut out,
            &engine,
            &control,
            Rates {
                packets: 50,
                bytes: 8600,
                errors: 0,
            },
        );
        let v = bencode::decode(&out).unwrap();
        assert_eq!(v.get(b"result").and_then(Value::as_str), Some("ok"));
        let s = v.get(b"statistics").unwrap();
        let cur = s.get(b"currentstatistics").unwrap();
        assert_eq!(cur.get(b"sessionsown"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"sessionstotal"), Some(&Value::Int(2)));
        assert_eq!(cur.get(b"packetrate"), Some(&Value::Int(50)));
        let tot = s.get(b"totalstatistics").unwrap();
        assert_eq!(tot.get(b"uptime"), Some(&Value::Bytes(b"18")));
        assert_eq!(tot.get(b"managedsessions"), Some(&Value::Int(7)));
        assert_eq!(tot.get(b"timeoutsessions"), Some(&Value::Int(1)));
        assert_eq!(tot.get(b"regularterminatedsessions"), Some(&Value::Int(4)));
        assert_eq!(tot.get(b"relayedpackets"), Some(&Value::Int(99)));
        assert_eq!(tot.get(b"relayedpacketerrors"), Some(&Value::Int(3)));
        let ctl = s.get(b"controlstatistics").unwrap();
        assert_eq!(ctl.get(b"totaloffercount"), Some(&Value::Int(2)));
        assert_eq!(ctl.get(b"totalpingcount"), Some(&Value::Int(1)));
        assert_eq!(ctl.get(b"totalerrorcount"), Some(&Value::Int(1)));
        let proxies = ctl.get(b"proxies").and_then(Value::as_list).unwrap();
        assert_eq!(proxies.len(), 1);
        assert_eq!(
            proxies[0].get(b"proxy").and_then(Value::as_str),
            Some("127.0.0.1")
        );
        assert_eq!(proxies[0].get(b"offercount"), Some(&Value::Int(2)));
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
            vec![&b"proxy"[..], b"pingcount", b"offercount", b"answercount"]
        );
    }
}
