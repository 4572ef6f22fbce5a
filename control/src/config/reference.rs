//! The option reference of docs/configuration.md, rendered from the option table — the same
//! source as `--help` — so the two cannot drift apart. The test `configuration_reference`
//! compares the committed page with this rendering; `NGMEDIA_WRITE_DOCS=1` makes it rewrite
//! the page instead.

use std::fmt::Write;

use super::options::{self, Action, Opt, Value};

/// The lines that enclose the generated part of docs/configuration.md.
pub(super) const BEGIN: &str = "<!-- BEGIN generated option reference: edit the help texts in \
                         control/src/config/options/, then run \
                         `NGMEDIA_WRITE_DOCS=1 cargo test -p ngmedia-control configuration_reference` -->";
pub(super) const END: &str = "<!-- END generated option reference -->";

/// The sections of the reference: a title, the guide that explains the feature, and the
/// acting options it lists, in that order. Names of options that do not act (yet) are
/// allowed: they join their section once they act. Acting options of no section are listed
/// under "Other options".
const SECTIONS: &[(&str, &str, &[&str])] = &[
    (
        "Start-up",
        "",
        &["config", "config-section", "version", "codecs"],
    ),
    (
        "Network and the ng protocol",
        "ng-reference.md#ng-over-tcp-http-and-websocket",
        &[
            "interface",
            "listen-ng",
            "listen-tcp-ng",
            "listen-http",
            "listen-https",
            "https-cert",
            "https-key",
            "http-token",
            "http-ng",
            "ng-rate-limit",
            "port-min",
            "port-max",
            "tos",
        ],
    ),
    (
        "Calls and media",
        "relay-and-nat.md",
        &[
            "timeout",
            "silent-timeout",
            "final-timeout",
            "delete-delay",
            "endpoint-learning",
            "num-threads",
            "fast-path",
            "table",
        ],
    ),
    (
        "Load limits",
        "high-availability.md#load-limits",
        &["max-sessions", "max-load", "max-cpu", "max-bandwidth"],
    ),
    (
        "Logging and the process",
        "",
        &[
            "log-level",
            "log-format",
            "log-redact",
            "log-stderr",
            "foreground",
            "pidfile",
        ],
    ),
    (
        "Transcoding",
        "transcoding.md",
        &[
            "silence-detect",
            "cn-payload",
            "dtx-delay",
            "max-dtx",
            "dtx-buffer",
            "dtx-lag",
            "dtx-shift",
            "dtx-cn-params",
            "amr-dtx",
            "jitter-buffer",
        ],
    ),
    (
        "DTMF",
        "media-control-and-dtmf.md",
        &[
            "dtmf-log-dest",
            "dtmf-digit-delay",
            "dtmf-log-ng-tcp",
            "dtmf-no-suppress",
        ],
    ),
    (
        "SRTP and WebRTC",
        "srtp-and-webrtc.md",
        &["dtls-cert", "dtls-key"],
    ),
    (
        "Recording",
        "recording.md",
        &[
            "recording-dir",
            "recording-format",
            "recording-method",
            "recording-per-party",
        ],
    ),
    (
        "Music on hold and the media library",
        "music-on-hold.md",
        &[
            "media-dir",
            "media-max-bytes",
            "media-max-seconds",
            "media-play-dirs",
        ],
    ),
    (
        "Lawful interception and forwarding",
        "lawful-interception.md",
        &[
            "listen-li",
            "li-token",
            "li-tls-cert",
            "li-tls-key",
            "li-tls-ca",
            "li-dir",
            "forward-to",
        ],
    ),
    (
        "High availability (Redis)",
        "high-availability.md",
        &[
            "redis",
            "redis-password",
            "redis-prefix",
            "instance-id",
            "standby",
            "redis-heartbeat-ttl",
            "redis-sync-interval",
        ],
    ),
    (
        "Homer, call events and MQTT",
        "homer-and-events.md",
        &[
            "homer",
            "homer-protocol",
            "homer-id",
            "homer-disable-rtcp-stats",
            "homer-enable-ng",
            "homer-ng-capture-proto",
            "webhook-url",
            "webhook-token",
            "webhook-dtmf",
            "mos-alarm",
            "mqtt-host",
            "mqtt-port",
            "mqtt-id",
            "mqtt-keepalive",
            "mqtt-user",
            "mqtt-pass",
            "mqtt-cafile",
            "mqtt-capath",
            "mqtt-certfile",
            "mqtt-keyfile",
            "mqtt-tls-alpn",
            "mqtt-publish-qos",
            "mqtt-publish-topic",
            "mqtt-publish-interval",
            "mqtt-publish-scope",
        ],
    ),
];

fn acts(o: &Opt) -> bool {
    !matches!(o.action, Action::Ignore(_))
}

/// Text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// How an option is written: short form, long form with its value, other names.
fn spelling(o: &Opt) -> String {
    let mut s = String::new();
    if let Some(c) = o.short {
        let _ = write!(s, "`-{c}`, ");
    }
    match o.value {
        Value::Flag => {
            let _ = write!(s, "`--{}`", o.long);
        }
        Value::One(v) | Value::Many(v) => {
            let _ = write!(s, "`--{} {v}`", o.long);
        }
    }
    for a in o.aliases {
        let _ = write!(s, ", `--{a}`");
    }
    cell(&s)
}

fn row(out: &mut String, o: &Opt) {
    let mut meaning = o.help.to_owned();
    if let Some(env) = o.env {
        let _ = write!(meaning, " Environment: `{env}`.");
    }
    let _ = writeln!(out, "| {} | {} |", spelling(o), cell(&meaning));
}

fn table(out: &mut String, opts: &[&Opt]) {
    out.push_str("| option | meaning |\n|---|---|\n");
    for o in opts {
        row(out, o);
    }
}

/// The generated part of docs/configuration.md, between [`BEGIN`] and [`END`].
pub(super) fn markdown() -> String {
    let mut out = String::new();
    let mut placed: Vec<&str> = Vec::new();
    for (title, guide, names) in SECTIONS {
        let opts: Vec<&Opt> = names
            .iter()
            .filter_map(|n| options::all().find(|o| o.long == *n))
            .filter(|o| acts(o))
            .collect();
        if opts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        if !guide.is_empty() {
            let _ = writeln!(out, "Explained in [this guide]({guide}).\n");
        }
        table(&mut out, &opts);
        out.push('\n');
        placed.extend(opts.iter().map(|o| o.long));
    }
    let rest: Vec<&Opt> = options::all()
        .filter(|o| acts(o) && !placed.contains(&o.long))
        .collect();
    if !rest.is_empty() {
        out.push_str("### Other options\n\n");
        table(&mut out, &rest);
        out.push('\n');
    }
    out.push_str(
        "### rtpengine options accepted and ignored\n\n\
         These are accepted on the command line and in a file (a value of the wrong kind is \
         still an error), named in one warning at start-up with the reason, and otherwise \
         ignored. `ngmedia --help` lists them under their own heading.\n\n\
         | reason | options |\n|---|---|\n",
    );
    let mut reasons: Vec<(&str, Vec<String>)> = Vec::new();
    for o in options::all() {
        let Action::Ignore(why) = o.action else {
            continue;
        };
        let name = match o.short {
            Some(c) => format!("`--{}` (`-{c}`)", o.long),
            None => format!("`--{}`", o.long),
        };
        match reasons.iter_mut().find(|(w, _)| *w == why) {
            Some((_, list)) => list.push(name),
            None => reasons.push((why, vec![name])),
        }
    }
    for (why, names) in reasons {
        let _ = writeln!(out, "| {} | {} |", cell(why), names.join(", "));
    }
    out
}

#[test]
fn sections_name_options_of_the_table_once() {
    let mut seen: Vec<&str> = Vec::new();
    for (title, _, names) in SECTIONS {
        for name in *names {
            assert!(
                options::all().any(|o| o.long == *name),
                "section {title:?} names --{name}, which is not in the option table"
            );
            assert!(!seen.contains(name), "--{name} is in two sections");
            seen.push(name);
        }
    }
}
