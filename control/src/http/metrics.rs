//! `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! Built by hand: the format is a few lines per family and a client library would bring a
//! registry and global state we do not need. Label values are bounded sets only (command
//! names, results, drop reasons): never call-ids, tags or addresses, whose cardinality is
//! unbounded. The rtpengine-named families ([`super::rtpengine_metrics`]) follow rtpengine's
//! labels instead, which name ng clients and interface addresses (a bounded few).

use std::fmt::Write;
use std::time::Duration;

use ngmedia_engine::core::quality::MOS_BUCKETS;
use ngmedia_engine::core::snapshot::EngineStatistics;
use ngmedia_engine::core::stats::DropReason;

use crate::load_limits::LoadLimit;
use crate::ng::metrics::LATENCY_BUCKETS_US;
use crate::ng::request::CommandKind;
use crate::ng::{NgMetrics, NgResult};

/// `Content-Type` of the text exposition format.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label value for an ng command: its ng name in snake_case (`start recording` →
/// `start_recording`), easier to write in PromQL.
pub(super) fn command_label(kind: CommandKind) -> String {
    kind.name().to_ascii_lowercase().replace(' ', "_")
}

/// Figures that live outside the call registry: the media workers and the recorder.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Extra {
    /// (busy nanoseconds, wake-ups) of each media worker, in worker order.
    pub workers: Vec<(u64, u64)>,
    /// `None`: no recorder running (the families are left out).
    pub recorder: Option<RecorderFigures>,
}

/// A copy of the recorder's counters for one scrape.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct RecorderFigures {
    pub active: u64,
    pub started: u64,
    pub finished: u64,
    pub failed: u64,
    pub bytes: u64,
    pub discarded: u64,
}

impl RecorderFigures {
    pub(super) fn read(s: &ngmedia_recordings::RecorderStats) -> RecorderFigures {
        use std::sync::atomic::Ordering::Relaxed;
        RecorderFigures {
            active: s.active.load(Relaxed),
            started: s.started.load(Relaxed),
            finished: s.finished.load(Relaxed),
            failed: s.failed.load(Relaxed),
            bytes: s.bytes.load(Relaxed),
            discarded: s.discarded.load(Relaxed),
        }
    }
}

pub(super) struct Out(pub(super) String);

impl Out {
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub(super) fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }
}

/// A label value with `\\`, `"` and newlines escaped (text format 0.0.4).
pub(super) fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Append the anonymous LI gauge: how many interception tasks exist, nothing else.
pub(super) fn render_li_tasks(text: &mut String, tasks: usize) {
    use std::fmt::Write;
    let _ = write!(
        text,
        "# HELP ngmedia_li_tasks_active Lawful-interception tasks configured.\n\
         # TYPE ngmedia_li_tasks_active gauge\nngmedia_li_tasks_active {tasks}\n"
    );
}

/// Append the Homer capture family: frames sent to the capture server, and dropped (queue
/// full, too large, or lost with the connection).
pub(super) fn render_homer(text: &mut String, c: &crate::homer::HomerCounters) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let _ = write!(
        text,
        "# HELP ngmedia_homer_frames_total HEP frames for the Homer capture server.\n\
         # TYPE ngmedia_homer_frames_total counter\n\
         ngmedia_homer_frames_total{{result=\"sent\"}} {}\n\
         ngmedia_homer_frames_total{{result=\"dropped\"}} {}\n",
        c.sent.load(Relaxed),
        c.dropped.load(Relaxed)
    );
}

/// Append the MQTT families: messages published, dropped (a full queue) and lost with a
/// broken connection; connections made; whether connected now.
pub(super) fn render_mqtt(text: &mut String, c: &crate::mqtt::MqttCounters) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let _ = write!(
        text,
        "# HELP ngmedia_mqtt_messages_total Statistics messages for the MQTT broker.\n\
         # TYPE ngmedia_mqtt_messages_total counter\n\
         ngmedia_mqtt_messages_total{{result=\"published\"}} {}\n\
         ngmedia_mqtt_messages_total{{result=\"failed\"}} {}\n\
         ngmedia_mqtt_messages_total{{result=\"dropped\"}} {}\n\
         # HELP ngmedia_mqtt_connects_total Connections made to the MQTT broker.\n\
         # TYPE ngmedia_mqtt_connects_total counter\n\
         ngmedia_mqtt_connects_total {}\n\
         # HELP ngmedia_mqtt_connected Whether the MQTT broker is connected now.\n\
         # TYPE ngmedia_mqtt_connected gauge\n\
         ngmedia_mqtt_connected {}\n",
        c.published.load(Relaxed),
        c.failed.load(Relaxed),
        c.dropped.load(Relaxed),
        c.connects.load(Relaxed),
        u8::from(c.connected.load(Relaxed)),
    );
}

/// Append the webhook family: call events delivered, given up after every retry, and
/// dropped on a full queue.
pub(super) fn render_events(text: &mut String, c: &crate::events::EventCounters) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let _ = write!(
        text,
        "# HELP ngmedia_webhook_events_total Call events for the webhook.\n\
         # TYPE ngmedia_webhook_events_total counter\n\
         ngmedia_webhook_events_total{{result=\"delivered\"}} {}\n\
         ngmedia_webhook_events_total{{result=\"failed\"}} {}\n\
         ngmedia_webhook_events_total{{result=\"dropped\"}} {}\n",
        c.delivered.load(Relaxed),
        c.failed.load(Relaxed),
        c.dropped.load(Relaxed)
    );
}

/// Append the HA families: which instance this is and how its Redis side is doing.
pub(super) fn render_ha(text: &mut String, ha: &crate::state_store::redis::HaFigures) {
    let mut o = Out(std::mem::take(text));
    o.family(
        "ngmedia_instance_info",
        "gauge",
        "This instance's HA identity: its id and role (active or standby).",
    );
    o.sample(
        "ngmedia_instance_info",
        &format!(
            "instance=\"{}\",role=\"{}\"",
            label_value(&ha.instance),
            ha.role
        ),
        1,
    );
    o.single(
        "ngmedia_redis_up",
        "gauge",
        "1 while call state reaches Redis, 0 during an outage.",
        u64::from(ha.redis_up),
    );
    o.single(
        "ngmedia_redis_writes_total",
        "counter",
        "Call saves and removals written to Redis.",
        ha.writes,
    );
    o.single(
        "ngmedia_redis_write_errors_total",
        "counter",
        "Failed Redis connection or write attempts (each retried).",
        ha.write_errors,
    );
    o.single(
        "ngmedia_redis_pending_calls",
        "gauge",
        "Calls whose latest change is not yet written to Redis.",
        ha.pending_calls,
    );
    o.single(
        "ngmedia_ha_calls_restored_total",
        "counter",
        "Calls restored from Redis (at start-up or by a takeover).",
        ha.restored,
    );
    o.single(
        "ngmedia_ha_calls_restore_failed_total",
        "counter",
        "Stored calls that could not be restored (ports taken, call-id in use).",
        ha.restore_failed,
    );
    o.single(
        "ngmedia_ha_takeovers_total",
        "counter",
        "Dead instances whose calls this standby took over.",
        ha.takeovers,
    );
    *text = o.0;
}

/// The whole exposition for one scrape.
pub(super) fn render(
    engine: &EngineStatistics,
    ng: &NgMetrics,
    uptime: Duration,
    extra: &Extra,
) -> String {
    let mut o = Out(String::with_capacity(8 * 1024));
    let p = &engine.packets;

    o.family(
        "ngmedia_build_info",
        "gauge",
        "Version of the running daemon.",
    );
    o.sample(
        "ngmedia_build_info",
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        1,
    );
    o.family(
        "ngmedia_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    o.sample(
        "ngmedia_uptime_seconds",
        "",
        format_args!("{:.3}", uptime.as_secs_f64()),
    );

    o.single(
        "ngmedia_calls_active",
        "gauge",
        "Calls held by the engine, including deleted calls kept for delete-delay.",
        engine.calls_current,
    );
    o.single(
        "ngmedia_calls_total",
        "counter",
        "Calls created.",
        engine.calls_total,
    );
    o.single(
        "ngmedia_calls_timed_out_total",
        "counter",
        "Calls ended by the idle, silent or final timeout.",
        engine.calls_timed_out,
    );
    o.single(
        "ngmedia_calls_deleted_total",
        "counter",
        "Calls ended by a delete request.",
        engine.calls_deleted,
    );
    o.single(
        "ngmedia_ports_in_use",
        "gauge",
        "Media ports (RTP and RTCP) held by calls.",
        engine.ports_in_use,
    );
    o.single(
        "ngmedia_ports_total",
        "gauge",
        "Media ports in the configured range.",
        engine.ports_total,
    );

    o.single(
        "ngmedia_streams_active",
        "gauge",
        "Media streams (a party's m= line with its ports) held by calls.",
        engine.streams_current,
    );
    o.single(
        "ngmedia_streams_total",
        "counter",
        "Media streams opened.",
        engine.streams_total,
    );
    o.family(
        "ngmedia_transcoders_active",
        "gauge",
        "Transcoders running, by codec pair (input-output codec names).",
    );
    for (pair, n) in &engine.transcoders {
        o.sample(
            "ngmedia_transcoders_active",
            &format!("pair=\"{}\"", label_value(pair)),
            n,
        );
    }
    o.family(
        "ngmedia_worker_busy_seconds_total",
        "counter",
        "Time each media worker spent handling wake-ups (not waiting); rate() is its loop utilisation.",
    );
    for (i, (busy_ns, _)) in extra.workers.iter().enumerate() {
        o.sample(
            "ngmedia_worker_busy_seconds_total",
            &format!("worker=\"{i}\""),
            format_args!("{:.9}", *busy_ns as f64 / 1e9),
        );
    }
    o.family(
        "ngmedia_worker_wakeups_total",
        "counter",
        "Wake-ups of each media worker's IO loop.",
    );
    for (i, (_, wakeups)) in extra.workers.iter().enumerate() {
        o.sample(
            "ngmedia_worker_wakeups_total",
            &format!("worker=\"{i}\""),
            wakeups,
        );
    }
    if let Some(r) = &extra.recorder {
        o.single(
            "ngmedia_recordings_active",
            "gauge",
            "Recordings open (recording, paused, or closing).",
            r.active,
        );
        o.single(
            "ngmedia_recordings_total",
            "counter",
            "Recordings started.",
            r.started,
        );
        o.single(
            "ngmedia_recordings_finished_total",
            "counter",
            "Recordings finalized with valid files.",
            r.finished,
        );
        o.single(
            "ngmedia_recordings_failed_total",
            "counter",
            "Recordings stopped by a write error (disk full, permissions); their calls went on.",
            r.failed,
        );
        o.single(
            "ngmedia_recording_written_bytes_total",
            "counter",
            "Bytes written to recording files (audio, pcap, metadata).",
            r.bytes,
        );
        o.single(
            "ngmedia_recording_packets_discarded_total",
            "counter",
            "Recorded packets not written: too late for the jitter window, or undecodable.",
            r.discarded,
        );
    }

    o.single(
        "ngmedia_rtp_packets_total",
        "counter",
        "RTP packets received.",
        p.rtp_packets,
    );
    o.single(
        "ngmedia_rtp_bytes_total",
        "counter",
        "RTP bytes received, RTP header included.",
        p.rtp_bytes,
    );
    o.single(
        "ngmedia_rtcp_packets_total",
        "counter",
        "RTCP packets received.",
        p.rtcp_packets,
    );
    o.single(
        "ngmedia_rtcp_bytes_total",
        "counter",
        "RTCP bytes received.",
        p.rtcp_bytes,
    );
    o.single(
        "ngmedia_opaque_packets_total",
        "counter",
        "Datagrams received on media that is not RTP (T.38 UDPTL, other UDP protocols), relayed as they are.",
        p.opaque_packets,
    );
    o.single(
        "ngmedia_opaque_bytes_total",
        "counter",
        "Bytes of datagrams received on media that is not RTP.",
        p.opaque_bytes,
    );
    o.single(
        "ngmedia_relayed_packets_total",
        "counter",
        "Packets sent on to a peer.",
        p.relayed_packets,
    );
    o.single(
        "ngmedia_fast_path_entries",
        "gauge",
        "Streams the kernel fast path (eBPF) forwards right now.",
        p.fast_path_entries,
    );
    o.single(
        "ngmedia_fast_path_packets_total",
        "counter",
        "RTP packets relayed by the kernel fast path (also in ngmedia_rtp_packets_total).",
        p.fast_path_packets,
    );
    o.single(
        "ngmedia_fast_path_xdp_packets_total",
        "counter",
        "Packets the kernel fast path forwarded at XDP, in the driver (the rest at TC ingress).",
        p.fast_path_xdp_packets,
    );
    o.single(
        "ngmedia_players_active",
        "gauge",
        "Media players sending to a party (music on hold, play media).",
        p.players_active,
    );
    o.family(
        "ngmedia_packet_drops_total",
        "counter",
        "Packets received and not relayed, by reason.",
    );
    for reason in DropReason::ALL {
        o.sample(
            "ngmedia_packet_drops_total",
            &format!("reason=\"{}\"", reason.as_str()),
            p.drops[reason as usize],
        );
    }

    o.single(
        "ngmedia_rtp_packets_lost_total",
        "counter",
        "RTP sequence numbers skipped when the gap was seen (late arrivals not subtracted).",
        p.rtp_lost,
    );
    o.single(
        "ngmedia_rtp_packets_duplicate_total",
        "counter",
        "RTP packets received twice.",
        p.rtp_duplicates,
    );
    o.single(
        "ngmedia_rtp_packets_reordered_total",
        "counter",
        "RTP packets that arrived after a higher sequence number.",
        p.rtp_reordered,
    );
    o.family(
        "ngmedia_stream_mos",
        "histogram",
        "MOS estimates (simplified ITU-T G.107 E-model), one per stream and 2 s of media.",
    );
    let mut cumulative = 0;
    for (i, bound) in MOS_BUCKETS.iter().enumerate() {
        cumulative += p.mos_buckets[i];
        o.sample(
            "ngmedia_stream_mos_bucket",
            &format!("le=\"{:.2}\"", f64::from(*bound) / 100.0),
            cumulative,
        );
    }
    cumulative += p.mos_buckets[MOS_BUCKETS.len()];
    o.sample("ngmedia_stream_mos_bucket", "le=\"+Inf\"", cumulative);
    o.sample(
        "ngmedia_stream_mos_sum",
        "",
        format_args!("{:.2}", p.mos_sum as f64 / 100.0),
    );
    o.sample("ngmedia_stream_mos_count", "", cumulative);

    o.family(
        "ngmedia_ng_requests_total",
        "counter",
        "ng requests executed, by command and result (command=\"invalid\": unreadable request).",
    );
    for kind in CommandKind::ALL {
        let command = command_label(kind);
        for result in NgResult::ALL {
            if result == NgResult::LoadLimit && kind != CommandKind::Offer {
                // Only offers are refused by load limits: no series of zeros for the rest.
                continue;
            }
            o.sample(
                "ngmedia_ng_requests_total",
                &format!("command=\"{command}\",result=\"{}\"", result.as_str()),
                ng.requests(kind, result),
            );
        }
    }
    for result in [NgResult::Ok, NgResult::Error] {
        o.sample(
            "ngmedia_ng_requests_total",
            &format!("command=\"invalid\",result=\"{}\"", result.as_str()),
            ng.invalid(result),
        );
    }
    o.family(
        "ngmedia_ng_offers_refused_total",
        "counter",
        "Offers of new calls refused by a load limit (--max-sessions, --max-load, --max-cpu, \
         --max-bandwidth, --max-transcoding-load), by the limit reached.",
    );
    for limit in LoadLimit::ALL {
        o.sample(
            "ngmedia_ng_offers_refused_total",
            &format!("reason=\"{}\"", limit.label()),
            ng.refused(limit),
        );
    }
    o.single(
        "ngmedia_ng_retransmissions_total",
        "counter",
        "ng retransmissions answered from the cookie cache.",
        ng.replayed(),
    );
    o.single(
        "ngmedia_ng_dropped_total",
        "counter",
        "ng datagrams dropped without a reply (no cookie, reply too large).",
        ng.dropped(),
    );
    o.single(
        "ngmedia_ng_rate_limited_total",
        "counter",
        "ng requests dropped without a reply by --ng-rate-limit (over the limit of their source).",
        ng.rate_limited(),
    );

    // Only commands that were requested: 26 commands x 14 series of zeros would dwarf the
    // rest of the exposition.
    o.family(
        "ngmedia_ng_request_duration_seconds",
        "histogram",
        "Time to handle an ng request, from decoding to the encoded reply.",
    );
    for kind in CommandKind::ALL {
        let latency = ng.latency(kind);
        if latency.count() == 0 {
            continue;
        }
        let command = command_label(kind);
        let name = "ngmedia_ng_request_duration_seconds_bucket";
        for (le_us, count) in LATENCY_BUCKETS_US.iter().zip(latency.cumulative) {
            let le = *le_us as f64 / 1e6;
            o.sample(name, &format!("command=\"{command}\",le=\"{le}\""), count);
        }
        o.sample(
            name,
            &format!("command=\"{command}\",le=\"+Inf\""),
            latency.count(),
        );
        let labels = format!("command=\"{command}\"");
        o.sample(
            "ngmedia_ng_request_duration_seconds_sum",
            &labels,
            format_args!("{:.6}", latency.sum_secs),
        );
        o.sample(
            "ngmedia_ng_request_duration_seconds_count",
            &labels,
            latency.count(),
        );
    }
    o.0
}

#[cfg(test)]
mod tests;
