//! Dashboards work against `/metrics`: the series rtpengine 10.5 exposes (captured from
//! Debian's rtpengine after one offer, tests/fixtures/rtpengine-10.5-metrics-series.txt) are
//! all there, with the figures the ng `statistics` command reports, so a dashboard made for
//! rtpengine works unchanged; and the sample Grafana dashboard for ngmedia's own families asks
//! only for series the daemon has.

use std::path::Path;

use ngmedia_tests::http::metric;
use ngmedia_tests::{dict, Daemon};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 5000 RTP/AVP 0\r\n";

#[test]
fn exposes_every_rtpengine_series_with_the_statistics_figures() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    ng.offer("metrics-1", "alice", SDP);
    let stats = ng.ok(dict! { "command" => "statistics" });
    let text = daemon.http_client().metrics();

    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rtpengine-10.5-metrics-series.txt");
    let reference = std::fs::read_to_string(&fixture).unwrap();
    let series: Vec<&str> = reference
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(series.len() > 80, "fixture read: {}", series.len());
    for s in &series {
        assert!(
            metric(&text, s).is_some(),
            "rtpengine series {s} missing from /metrics:\n{text}"
        );
    }

    let stat = |path: &[&str]| {
        stats
            .path(path)
            .and_then(|v| v.as_int())
            .unwrap_or_else(|| panic!("statistics {path:?} in {stats:?}"))
    };
    let ports = &stats
        .path(&["statistics", "interfaces"])
        .unwrap()
        .as_list()
        .unwrap()[0];
    let used = ports.path(&["ports", "used"]).unwrap().as_int().unwrap();
    assert!(used >= 2, "the offer holds ports");
    for (series, value) in [
        (
            "rtpengine_sessions{type=\"own\"}",
            stat(&["statistics", "currentstatistics", "sessionsown"]),
        ),
        (
            "rtpengine_sessions_total",
            stat(&["statistics", "totalstatistics", "managedsessions"]),
        ),
        (
            "rtpengine_mediastreams{type=\"userspace\"}",
            stat(&["statistics", "currentstatistics", "media_userspace"]),
        ),
        (
            "rtpengine_ports_used{name=\"default\",address=\"127.0.0.1\"}",
            used,
        ),
        (
            "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"offer\"}",
            1,
        ),
        (
            "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"statistics\"}",
            1,
        ),
        ("rtpengine_errors_total{proxy=\"127.0.0.1\"}", 0),
    ] {
        assert_eq!(metric(&text, series), Some(value as f64), "{series}");
    }
    assert_eq!(metric(&text, "rtpengine_sessions{type=\"own\"}"), Some(1.0));
}

/// The sample Grafana dashboard asks only for series the daemon exposes.
#[test]
fn sample_dashboard_uses_only_exposed_families() {
    let daemon = Daemon::start(&[]);
    let text = daemon.http_client().metrics();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/grafana-ngmedia.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("ngmedia_") {
                let name: String = expr[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = name.strip_suffix("_bucket").unwrap_or(&name);
                assert!(
                    families.contains(&family),
                    "panel {:?} asks for {name}, which /metrics does not have",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} series checked");
}
