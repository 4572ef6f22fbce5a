//! Calls and media: how long calls live, media workers and the kernel fast path, endpoint
//! learning, the DTLS identity, and the load limits above which new calls are refused.

use ngmedia_engine::core::latch::EndpointLearning;

use super::{invalid, opt, optional_path, InvalidValue, Layer, Opt, Value::One};
use crate::config::parse::{
    parse_max_bandwidth, parse_max_float, parse_max_sessions, parse_positive_secs, parse_secs,
    parse_threads,
};

pub(super) static OPTIONS: &[Opt] = &[
    // --- call lifetime ---
    opt(
        "timeout",
        Some('o'),
        One("SECS"),
        "End a call that received no media for this long. Default: 60.",
        |l, v| {
            l.timeout = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "silent-timeout",
        Some('s'),
        One("SECS"),
        "End a call on hold that received no media for this long. Default: 3600.",
        |l, v| {
            l.silent_timeout = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "final-timeout",
        Some('a'),
        One("SECS"),
        "End every call after this long, whatever it does; 0 = never. Default: 0.",
        |l, v| {
            l.final_timeout = Some(parse_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "delete-delay",
        Some('d'),
        One("SECS"),
        "Keep a deleted call this long for late queries and retransmitted deletes (the ng \
         `delete delay` key overrides it per call). Default: 30.",
        |l, v| {
            l.delete_delay = Some(parse_secs(v)?);
            Ok(())
        },
    ),
    // --- workers and the kernel fast path ---
    opt(
        "num-threads",
        None,
        One("N"),
        "Media worker threads; 0 = one per CPU core. Default: 0.",
        |l, v| {
            l.num_threads = Some(parse_threads(v)?);
            Ok(())
        },
    ),
    opt(
        "fast-path",
        None,
        One("auto|on|off"),
        "Forward established plain RTP streams (and SRTP passed through unchanged) in the \
         kernel with an eBPF program (at XDP where the driver runs it natively and the \
         interface forwards, at TC ingress otherwise) instead of in user space. auto: when the \
         kernel and privileges (CAP_BPF, CAP_NET_ADMIN) allow, else one log line says why \
         not; on: required; off: user space only. Default: off.",
        set_fast_path,
    ),
    opt(
        "table",
        Some('t'),
        One("INT"),
        "rtpengine's kernel table, as an alias of --fast-path: -1 is off, a table number \
         (0 and up) is auto.",
        |l, v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid("expected a whole number (-1: no kernel forwarding)"))?;
            set_fast_path(l, v)
        },
    ),
    // --- endpoint learning ---
    opt(
        "endpoint-learning",
        None,
        One("MODE"),
        "How a party's address is learned from its packets: heuristic (prefer the SDP's \
         address, confirm when the 3 s learning window ends), delayed (the last source seen \
         in the window), immediate (the first packet's source) or off (the SDP address only). \
         The ng `endpoint-learning` key overrides it per call. Default: heuristic.",
        |l, v| {
            l.endpoint_learning = Some(
                EndpointLearning::parse(v)
                    .ok_or_else(|| invalid("expected delayed, immediate, off or heuristic"))?,
            );
            Ok(())
        },
    ),
    // --- DTLS identity ---
    opt(
        "dtls-cert",
        None,
        One("FILE"),
        "PEM certificate for DTLS-SRTP instead of one generated at start-up: engines that \
         take over each other's calls (Redis HA) present the same fingerprint.",
        |l, v| {
            l.dtls_cert = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "dtls-key",
        None,
        One("FILE"),
        "PEM private key for --dtls-cert.",
        |l, v| {
            l.dtls_key = optional_path(v);
            Ok(())
        },
    ),
    // --- load limits ---
    opt(
        "max-sessions",
        None,
        One("INT"),
        "Refuse new calls while this many are held (deleted ones in their delete delay \
         included); re-offers and answers of existing calls go on. 0 refuses every new call \
         (draining), -1 is no limit. Default: no limit.",
        |l, v| {
            l.max_sessions = Some(parse_max_sessions(v)?);
            Ok(())
        },
    ),
    opt(
        "max-load",
        None,
        One("FLOAT"),
        "Refuse new calls while the 1-minute load average is at least this. 0: no limit.",
        |l, v| {
            l.max_load = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "max-cpu",
        None,
        One("FLOAT"),
        "Refuse new calls while the machine's CPU usage (percent, sampled every 0.5 s from \
         /proc/stat) is at least this. 0: no limit.",
        |l, v| {
            l.max_cpu = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "max-bandwidth",
        None,
        One("INT"),
        "Refuse new calls while media received (bytes per second, over the last second) is \
         at least this. 0: no limit.",
        |l, v| {
            l.max_bandwidth = Some(parse_max_bandwidth(v)?);
            Ok(())
        },
    ),
    opt(
        "max-transcoding-load",
        None,
        One("PERCENT"),
        "Refuse offers of new calls that ask for transcoding (codec transcode, mask, accept, \
         consume, always transcode) while the busiest media worker is busy at least this \
         share of the time (percent, sampled every 0.5 s): its transcoders could not keep \
         up. Plain calls, re-offers and answers go on. 0: no limit.",
        |l, v| {
            l.max_transcoding_load = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
];

/// `--fast-path` and its rtpengine alias `--table`.
fn set_fast_path(l: &mut Layer, v: &str) -> Result<(), InvalidValue> {
    use ngmedia_engine::core::config::FastPathMode;
    l.fast_path =
        Some(FastPathMode::parse(v).ok_or_else(|| invalid("expected auto, on, off or -1"))?);
    Ok(())
}
