//! `GET /metrics`, second part: the families rtpengine's own `/metrics` exposes
//! (`rtpengine_*`, with its names, types and labels), so that dashboards and alerts built for
//! rtpengine work unchanged. Figures are the ones the ng `statistics` command reports (one
//! computation, [`Totals`]); what has no counterpart here (kernel forwarding, foreign
//! sessions, offer timeouts, forced terminations) is the zero it truly is. The `proxy` label
//! is the ng client's address, bounded to the first 256 clients as in `statistics`.

use ngmedia_engine::core::snapshot::EngineStatistics;

use super::metrics::{label_value, Out};
use crate::load_limits::LoadLimit;
use crate::ng::reply::{stat_name, Totals, RTPENGINE_ORDER};
use crate::ng::NgMetrics;
use crate::ng::ProxyCounters;

const P: &str = "rtpengine_";

/// Append the `rtpengine_*` families to a scrape.
pub(super) fn render(text: &mut String, engine: &EngineStatistics, ng: &NgMetrics) {
    let mut o = Out(std::mem::take(text));
    let totals = Totals::of(engine);
    let p = &engine.packets;
    let rejected: u64 = LoadLimit::ALL.iter().map(|&l| ng.refused(l)).sum();

    family(&mut o, "sessions", "gauge", "Sessions, by ownership.");
    o.sample(&name("sessions"), "type=\"own\"", engine.calls_current);
    o.sample(&name("sessions"), "type=\"foreign\"", 0);
    single(
        &mut o,
        "transcoded_media",
        "gauge",
        "Transcoded media.",
        totals.transcoded_media,
    );
    family(
        &mut o,
        "mediastreams",
        "gauge",
        "Media streams, by where they are forwarded.",
    );
    o.sample(
        &name("mediastreams"),
        "type=\"userspace\"",
        engine.streams_current,
    );
    o.sample(&name("mediastreams"), "type=\"kernel\"", 0);
    o.sample(&name("mediastreams"), "type=\"mixed\"", 0);
    single(
        &mut o,
        "uptime_seconds",
        "gauge",
        "Uptime.",
        engine.uptime_secs,
    );
    single(
        &mut o,
        "sessions_total",
        "counter",
        "Total managed sessions.",
        engine.calls_total,
    );

    family(
        &mut o,
        "closed_sessions_total",
        "counter",
        "Sessions ended, by reason.",
    );
    for (reason, value) in [
        ("rejected", rejected),
        ("timeout", totals.timeout_sessions),
        ("silent_timeout", engine.calls_silent_timeout),
        ("final_timeout", engine.calls_final_timeout),
        ("offer_timeout", 0),
        ("terminated", engine.calls_deleted),
        ("force_terminated", 0),
    ] {
        o.sample(
            &name("closed_sessions_total"),
            &format!("reason=\"{reason}\""),
            value,
        );
    }

    for (family_name, help, user) in [
        ("packets_total", "Relayed packets.", p.relayed_packets),
        (
            "packet_errors_total",
            "Relayed packet errors.",
            totals.packet_errors,
        ),
        ("bytes_total", "Relayed bytes.", totals.relayed_bytes),
    ] {
        family(&mut o, family_name, "counter", help);
        o.sample(&name(family_name), "type=\"userspace\"", user);
        o.sample(&name(family_name), "type=\"kernel\"", 0);
    }
    single(
        &mut o,
        "zero_packet_streams_total",
        "counter",
        "Streams with no relayed packets.",
        engine.zeroway_streams,
    );
    single(
        &mut o,
        "one_way_sessions_total",
        "counter",
        "One-way streams.",
        engine.oneway_streams,
    );
    family(
        &mut o,
        "call_duration_avg",
        "gauge",
        "Average call duration, seconds.",
    );
    o.sample(&name("call_duration_avg"), "", f6(totals.call_seconds_avg));
    family(
        &mut o,
        "call_duration_total",
        "counter",
        "Total call duration, seconds.",
    );
    o.sample(&name("call_duration_total"), "", f6(engine.call_seconds));
    family(
        &mut o,
        "call_duration2_total",
        "counter",
        "Total call duration squared.",
    );
    o.sample(&name("call_duration2_total"), "", f6(engine.call_seconds2));

    family(
        &mut o,
        "mos_total",
        "counter",
        "Sum of the MOS values sampled.",
    );
    o.sample(&name("mos_total"), "", f6(engine.mos_sum));
    family(
        &mut o,
        "mos2_total",
        "counter",
        "Sum of the squared MOS values sampled.",
    );
    o.sample(&name("mos2_total"), "", f6(engine.mos_sum2));
    single(
        &mut o,
        "mos_samples_total",
        "counter",
        "MOS samples.",
        engine.mos_samples,
    );

    let proxies = ng.proxies();
    if !proxies.is_empty() {
        type Figure = fn(&ProxyCounters, usize) -> String;
        let figures: [(&str, &str, Figure); 2] = [
            (
                "requests_total",
                "ng requests, by client and command.",
                |p, i| p.commands[i].to_string(),
            ),
            (
                "request_seconds_total",
                "Seconds spent on ng requests, by client and command.",
                |p, i| f6(p.seconds[i]),
            ),
        ];
        for (family_name, help, figure) in figures {
            family(&mut o, family_name, "counter", help);
            for proxy in &proxies {
                for kind in RTPENGINE_ORDER.iter().filter(|k| stat_name(**k).is_some()) {
                    let labels = request_labels(&proxy.address.to_string(), kind.name());
                    o.sample(&name(family_name), &labels, figure(proxy, kind.index()));
                }
            }
        }
        family(
            &mut o,
            "errors_total",
            "counter",
            "ng error replies, by client.",
        );
        for proxy in &proxies {
            let labels = format!("proxy=\"{}\"", label_value(&proxy.address.to_string()));
            o.sample(&name("errors_total"), &labels, proxy.errors);
        }
    }

    let range = u64::from(engine.port_max.saturating_sub(engine.port_min)) + 1;
    for (family_name, help) in [
        ("ports_used", "Media ports in use, by interface address."),
        ("ports_free", "Media ports free, by interface address."),
        ("ports", "Media ports, by interface address."),
    ] {
        family(&mut o, family_name, "gauge", help);
        for iface in &engine.interfaces {
            let used = iface.used.min(range);
            let value = match family_name {
                "ports_used" => used,
                "ports_free" => range - used,
                _ => range,
            };
            let labels = format!(
                "name=\"{}\",address=\"{}\"",
                label_value(&iface.name),
                label_value(&iface.address.to_string())
            );
            o.sample(&name(family_name), &labels, value);
        }
    }

    if !engine.transcoders.is_empty() {
        family(
            &mut o,
            "transcoders",
            "gauge",
            "Active transcoders, by codec chain.",
        );
        for (chain, n) in &engine.transcoders {
            o.sample(
                &name("transcoders"),
                &format!("chain=\"{}\"", label_value(chain)),
                n,
            );
        }
    }
    *text = o.0;
}

fn name(family: &str) -> String {
    format!("{P}{family}")
}

fn family(o: &mut Out, family: &str, kind: &str, help: &str) {
    o.family(&name(family), kind, help);
}

fn single(o: &mut Out, family_name: &str, kind: &str, help: &str, value: u64) {
    family(o, family_name, kind, help);
    o.sample(&name(family_name), "", value);
}

fn request_labels(proxy: &str, request: &str) -> String {
    format!(
        "proxy=\"{}\",request=\"{}\"",
        label_value(proxy),
        label_value(request)
    )
}

/// rtpengine prints its floating-point figures with six decimals.
fn f6(v: f64) -> String {
    format!("{v:.6}")
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ngmedia_engine::core::snapshot::InterfacePorts;
    use ngmedia_engine::core::stats::PacketTotals;

    use super::*;
    use crate::ng::request::CommandKind;

    #[test]
    fn renders_rtpengine_names_labels_and_values() {
        let engine = EngineStatistics {
            uptime_secs: 18,
            calls_current: 2,
            calls_total: 7,
            calls_timed_out: 3,
            calls_silent_timeout: 1,
            calls_deleted: 4,
            streams_current: 4,
            port_min: 30000,
            port_max: 30099,
            interfaces: vec![InterfacePorts {
                name: "default".into(),
                address: "2001:db8::1".parse().unwrap(),
                used: 8,
                last: 30010,
            }],
            transcoders: vec![("PCMA/8000 -> PCMU/8000".into(), 1)],
            call_seconds: 13.0,
            call_seconds2: 35.0,
            mos_sum: 8.0,
            mos_sum2: 32.08,
            mos_samples: 2,
            packets: PacketTotals {
                rtp_bytes: 17200,
                rtcp_bytes: 112,
                relayed_packets: 99,
                drops: [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ..Default::default()
            },
            ..Default::default()
        };
        let ng = NgMetrics::default();
        let address: IpAddr = "192.0.2.5".parse().unwrap();
        let mut proxy = ProxyCounters {
            address,
            commands: [0; CommandKind::ALL.len()],
            seconds: [0.0; CommandKind::ALL.len()],
            errors: 1,
        };
        proxy.commands[CommandKind::Offer.index()] = 3;
        proxy.seconds[CommandKind::Offer.index()] = 0.0015;
        proxy.commands[CommandKind::StartRecording.index()] = 1;
        ng.publish_proxy(&proxy);
        ng.count_refused(LoadLimit::ALL[0]);

        let mut text = String::new();
        render(&mut text, &engine, &ng);
        for line in [
            "# TYPE rtpengine_sessions gauge",
            "rtpengine_sessions{type=\"own\"} 2",
            "rtpengine_sessions{type=\"foreign\"} 0",
            "rtpengine_transcoded_media 1",
            "rtpengine_mediastreams{type=\"userspace\"} 4",
            "rtpengine_uptime_seconds 18",
            "# TYPE rtpengine_sessions_total counter",
            "rtpengine_sessions_total 7",
            "rtpengine_closed_sessions_total{reason=\"rejected\"} 1",
            "rtpengine_closed_sessions_total{reason=\"timeout\"} 2",
            "rtpengine_closed_sessions_total{reason=\"silent_timeout\"} 1",
            "rtpengine_closed_sessions_total{reason=\"terminated\"} 4",
            "rtpengine_packets_total{type=\"userspace\"} 99",
            "rtpengine_packets_total{type=\"kernel\"} 0",
            "rtpengine_packet_errors_total{type=\"userspace\"} 3",
            "rtpengine_bytes_total{type=\"userspace\"} 17312",
            "rtpengine_call_duration_avg 1.857143",
            "rtpengine_call_duration_total 13.000000",
            "rtpengine_mos_samples_total 2",
            "rtpengine_requests_total{proxy=\"192.0.2.5\",request=\"offer\"} 3",
            "rtpengine_requests_total{proxy=\"192.0.2.5\",request=\"start recording\"} 1",
            "rtpengine_request_seconds_total{proxy=\"192.0.2.5\",request=\"offer\"} 0.001500",
            "rtpengine_errors_total{proxy=\"192.0.2.5\"} 1",
            "rtpengine_ports_used{name=\"default\",address=\"2001:db8::1\"} 8",
            "rtpengine_ports_free{name=\"default\",address=\"2001:db8::1\"} 92",
            "rtpengine_ports{name=\"default\",address=\"2001:db8::1\"} 100",
            "rtpengine_transcoders{chain=\"PCMA/8000 -> PCMU/8000\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // One HELP and TYPE per family, as the exposition format requires.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut unique = types.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(types.len(), unique.len());
    }

    #[test]
    fn no_request_families_before_the_first_request() {
        let mut text = String::new();
        render(
            &mut text,
            &EngineStatistics::default(),
            &NgMetrics::default(),
        );
        assert!(!text.contains("rtpengine_requests_total"));
        assert!(!text.contains("rtpengine_transcoders"));
        assert!(text.contains("rtpengine_sessions{type=\"own\"} 0"));
    }
}
