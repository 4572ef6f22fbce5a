//! Options of the process itself: those read before configuration is resolved (the
//! configuration file, `--version`, `--codecs`), logging, and how the daemon runs (foreground,
//! pidfile).

use super::{
    invalid, opt, optional_path, Action, Opt,
    Value::{Flag, One},
};
use crate::config::parse::{parse_bool, parse_log_format, parse_log_level};
use crate::logging::LogFormat;

pub(super) static OPTIONS: &[Opt] = &[
    // --- configuration and start-up ---
    Opt {
        long: "config",
        short: None,
        aliases: &["config-file"],
        hidden_aliases: &[],
        value: One("FILE"),
        env: None,
        help: "Configuration file: ngmedia TOML, or an rtpengine.conf INI file (recognised by \
               its [rtpengine] section). `none` reads no file. Default: \
               /etc/ngmedia/ngmedia.toml if it exists.",
        action: Action::Startup,
    },
    Opt {
        long: "config-section",
        short: None,
        aliases: &[],
        hidden_aliases: &[],
        value: One("NAME"),
        env: None,
        help: "Section of an rtpengine.conf INI file to read. Default: rtpengine.",
        action: Action::Startup,
    },
    Opt {
        long: "version",
        short: Some('v'),
        aliases: &[],
        hidden_aliases: &[],
        value: Flag,
        env: None,
        help: "Print the version and exit.",
        action: Action::Startup,
    },
    Opt {
        long: "codecs",
        short: None,
        aliases: &[],
        hidden_aliases: &[],
        value: Flag,
        env: None,
        help: "Print the codecs ngmedia can transcode and exit.",
        action: Action::Startup,
    },
    // --- logging ---
    opt(
        "log-level",
        Some('L'),
        One("LEVEL"),
        "Log level: a syslog number like rtpengine's (0-3 error, 4 warn, 5-6 info, 7 debug) \
         or error|warn|info|debug|trace. RUST_LOG, when set, overrides it. Default: 6 (info).",
        |l, v| {
            l.log_level = Some(parse_log_level(v)?);
            Ok(())
        },
    ),
    opt(
        "log-format",
        None,
        One("FORMAT"),
        "Log line format: `text` (human-readable) or `json` (one JSON object per line, for \
         log shippers); rtpengine's `default` and `parsable` give `text`. Default: text.",
        |l, v| {
            l.log_format = Some(match v.trim().to_ascii_lowercase().as_str() {
                "default" => LogFormat::Text,
                "parsable" => {
                    l.notes.push(
                        "log-format=parsable: ngmedia writes its own text lines (or \
                         --log-format json for machines)"
                            .to_string(),
                    );
                    LogFormat::Text
                }
                _ => parse_log_format(v)
                    .map_err(|_| invalid("expected text or json (or default|parsable)"))?,
            });
            Ok(())
        },
    ),
    opt(
        "log-redact",
        None,
        Flag,
        "Replace call-ids, tags and addresses in logs with a short hash, stable while the \
         daemon runs (`~1a2b3c4d`), so one call's lines still correlate; the hash is keyed \
         per process, so it cannot be reversed by hashing guesses. Default: off.",
        |l, v| {
            l.log_redact = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "log-stderr",
        Some('E'),
        Flag,
        "Accepted for rtpengine compatibility: ngmedia always logs to stderr.",
        |_, v| parse_bool(v).map(drop),
    ),
    opt(
        "foreground",
        Some('f'),
        Flag,
        "Accepted for rtpengine compatibility: ngmedia always stays in the foreground (run \
         it under systemd or another supervisor).",
        |_, v| parse_bool(v).map(drop),
    ),
    opt(
        "pidfile",
        Some('p'),
        One("FILE"),
        "Write the daemon's process id to FILE once the ports are bound; removed at exit.",
        |l, v| {
            l.pidfile = optional_path(v);
            Ok(())
        },
    ),
];
