use super::*;

fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

#[test]
fn renders_ha_families() {
    let mut text = String::from("ngmedia_uptime_seconds 1\n");
    render_ha(
        &mut text,
        &crate::state_store::redis::HaFigures {
            instance: "media-1".into(),
            role: "standby",
            redis_up: true,
            writes: 12,
            write_errors: 3,
            pending_calls: 4,
            restored: 5,
            restore_failed: 1,
            takeovers: 2,
        },
    );
    assert!(text.starts_with("ngmedia_uptime_seconds 1\n"));
    for (series, v) in [
        (
            "ngmedia_instance_info{instance=\"media-1\",role=\"standby\"}",
            "1",
        ),
        ("ngmedia_redis_up", "1"),
        ("ngmedia_redis_writes_total", "12"),
        ("ngmedia_redis_write_errors_total", "3"),
        ("ngmedia_redis_pending_calls", "4"),
        ("ngmedia_ha_calls_restored_total", "5"),
        ("ngmedia_ha_calls_restore_failed_total", "1"),
        ("ngmedia_ha_takeovers_total", "2"),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series}");
    }
    for family in [
        "ngmedia_redis_up gauge",
        "ngmedia_ha_takeovers_total counter",
    ] {
        assert!(text.contains(&format!("# TYPE {family}\n")), "{family}");
    }
    assert!(text.contains("# HELP ngmedia_redis_pending_calls "));
}

#[test]
fn renders_quality_counters_and_mos_histogram() {
    let mut s = EngineStatistics::default();
    s.packets.rtp_lost = 30;
    s.packets.rtp_reordered = 2;
    // Buckets (not cumulative): one sample ≤ 3.50, two ≤ 4.40.
    s.packets.mos_buckets[3] = 1;
    s.packets.mos_buckets[6] = 2;
    s.packets.mos_sum = 339 + 440 + 440;
    let text = render(&s, &NgMetrics::default(), Duration::ZERO, &Extra::default());
    for (series, v) in [
        ("ngmedia_rtp_packets_lost_total", "30"),
        ("ngmedia_rtp_packets_duplicate_total", "0"),
        ("ngmedia_rtp_packets_reordered_total", "2"),
        ("ngmedia_stream_mos_bucket{le=\"3.00\"}", "0"),
        ("ngmedia_stream_mos_bucket{le=\"3.50\"}", "1"),
        ("ngmedia_stream_mos_bucket{le=\"4.20\"}", "1"),
        ("ngmedia_stream_mos_bucket{le=\"4.40\"}", "3"),
        ("ngmedia_stream_mos_bucket{le=\"+Inf\"}", "3"),
        ("ngmedia_stream_mos_sum", "12.19"),
        ("ngmedia_stream_mos_count", "3"),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series}");
    }
    assert!(text.contains("# TYPE ngmedia_stream_mos histogram"));
}

#[test]
fn renders_engine_counters_with_exact_values() {
    let mut s = EngineStatistics {
        calls_current: 3,
        calls_total: 7,
        calls_timed_out: 1,
        calls_deleted: 2,
        ports_in_use: 8,
        ports_total: 10001,
        ..Default::default()
    };
    s.packets.rtp_packets = 20;
    s.packets.rtp_bytes = 3440;
    s.packets.relayed_packets = 19;
    s.packets.drops[DropReason::NoDestination as usize] = 1;
    let text = render(
        &s,
        &NgMetrics::default(),
        Duration::from_millis(12_345),
        &Extra::default(),
    );
    for (series, v) in [
        ("ngmedia_calls_active", "3"),
        ("ngmedia_calls_total", "7"),
        ("ngmedia_calls_timed_out_total", "1"),
        ("ngmedia_calls_deleted_total", "2"),
        ("ngmedia_ports_in_use", "8"),
        ("ngmedia_ports_total", "10001"),
        ("ngmedia_rtp_packets_total", "20"),
        ("ngmedia_rtp_bytes_total", "3440"),
        ("ngmedia_rtcp_packets_total", "0"),
        ("ngmedia_relayed_packets_total", "19"),
        ("ngmedia_packet_drops_total{reason=\"no_destination\"}", "1"),
        (
            "ngmedia_packet_drops_total{reason=\"source_mismatch\"}",
            "0",
        ),
        ("ngmedia_uptime_seconds", "12.345"),
        (
            "ngmedia_ng_requests_total{command=\"offer\",result=\"ok\"}",
            "0",
        ),
        (
            "ngmedia_ng_requests_total{command=\"block_dtmf\",result=\"error\"}",
            "0",
        ),
        (
            "ngmedia_ng_requests_total{command=\"invalid\",result=\"error\"}",
            "0",
        ),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series}\n{text}");
    }
    assert!(text.contains("# TYPE ngmedia_rtp_packets_total counter\n"));
    assert!(text.contains("# TYPE ngmedia_calls_active gauge\n"));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("ngmedia_packet_drops_total{"))
            .count(),
        DropReason::ALL.len()
    );
    // No requests yet: the histogram family is declared but has no series.
    assert!(!text.contains("ngmedia_ng_request_duration_seconds_bucket"));
}

#[test]
fn renders_streams_transcoders_workers_and_recorder() {
    let s = EngineStatistics {
        streams_current: 4,
        streams_total: 9,
        transcoders: vec![("PCMU-opus".into(), 2), ("opus-PCMU".into(), 2)],
        ..Default::default()
    };
    let extra = Extra {
        workers: vec![(1_500_000_000, 10), (250_000, 3)],
        recorder: Some(RecorderFigures {
            active: 1,
            started: 3,
            finished: 1,
            failed: 1,
            bytes: 123_456,
            discarded: 7,
        }),
    };
    let text = render(&s, &NgMetrics::default(), Duration::ZERO, &extra);
    for (series, v) in [
        ("ngmedia_streams_active", "4"),
        ("ngmedia_streams_total", "9"),
        ("ngmedia_transcoders_active{pair=\"PCMU-opus\"}", "2"),
        ("ngmedia_transcoders_active{pair=\"opus-PCMU\"}", "2"),
        (
            "ngmedia_worker_busy_seconds_total{worker=\"0\"}",
            "1.500000000",
        ),
        (
            "ngmedia_worker_busy_seconds_total{worker=\"1\"}",
            "0.000250000",
        ),
        ("ngmedia_worker_wakeups_total{worker=\"1\"}", "3"),
        ("ngmedia_recordings_active", "1"),
        ("ngmedia_recordings_total", "3"),
        ("ngmedia_recordings_finished_total", "1"),
        ("ngmedia_recordings_failed_total", "1"),
        ("ngmedia_recording_written_bytes_total", "123456"),
        ("ngmedia_recording_packets_discarded_total", "7"),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series}\n{text}");
    }
    // Without a recorder the recording families are absent, not zero.
    let bare = render(&s, &NgMetrics::default(), Duration::ZERO, &Extra::default());
    assert!(!bare.contains("ngmedia_recordings_active"));
    assert!(bare.contains("# TYPE ngmedia_transcoders_active gauge"));
}

#[test]
fn renders_ng_counters_and_histogram() {
    let ng = NgMetrics::default();
    ng.record(
        Some(CommandKind::Offer),
        NgResult::Ok,
        Duration::from_micros(80),
    );
    ng.record(
        Some(CommandKind::Offer),
        NgResult::Error,
        Duration::from_micros(700),
    );
    ng.record(
        Some(CommandKind::StartRecording),
        NgResult::Error,
        Duration::from_micros(5),
    );
    ng.record(None, NgResult::Error, Duration::from_micros(5));
    ng.count_replayed();
    let text = render(
        &EngineStatistics::default(),
        &ng,
        Duration::ZERO,
        &Extra::default(),
    );
    for (series, v) in [
        (
            "ngmedia_ng_requests_total{command=\"offer\",result=\"ok\"}",
            "1",
        ),
        (
            "ngmedia_ng_requests_total{command=\"offer\",result=\"error\"}",
            "1",
        ),
        (
            "ngmedia_ng_requests_total{command=\"start_recording\",result=\"error\"}",
            "1",
        ),
        (
            "ngmedia_ng_requests_total{command=\"invalid\",result=\"error\"}",
            "1",
        ),
        ("ngmedia_ng_retransmissions_total", "1"),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"0.00005\"}",
            "0",
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"0.0001\"}",
            "1",
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"0.0005\"}",
            "1",
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"0.001\"}",
            "2",
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"1\"}",
            "2",
        ),
        (
            "ngmedia_ng_request_duration_seconds_bucket{command=\"offer\",le=\"+Inf\"}",
            "2",
        ),
        (
            "ngmedia_ng_request_duration_seconds_sum{command=\"offer\"}",
            "0.000780",
        ),
        (
            "ngmedia_ng_request_duration_seconds_count{command=\"offer\"}",
            "2",
        ),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series}\n{text}");
    }
    assert!(!text.contains("duration_seconds_count{command=\"answer\"}"));
    // Every sample line is `name{labels} value` or `name value` with a numeric value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{line}");
        assert!(line.starts_with("ngmedia_"), "{line}");
    }
}
