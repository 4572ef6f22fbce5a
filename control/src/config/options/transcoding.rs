//! Transcoding and DTMF: the jitter buffer, silence detection and comfort noise, DTX, and
//! where DTMF digits are reported.

use super::{
    invalid, opt, parse_socket_addr, InvalidValue, Opt,
    Value::{Many, One},
};
use crate::config::parse::parse_max_float;

pub(super) static OPTIONS: &[Opt] = &[
    // --- jitter buffer and DTX ---
    opt(
        "jitter-buffer",
        None,
        One("INT"),
        "Jitter buffer for transcoded streams, in packets: each received packet is held \
         this many packet times and decoded on a clock, so reordering within that time is \
         undone and a packet still missing when its time comes is concealed by the decoder \
         (Opus PLC, G.729 and AMR erasure, silence for G.711 and G.722). Streams relayed \
         without transcoding are not delayed. Default: 0 (off).",
        |l, v| {
            l.jitter_buffer = Some(parse_count(v, "packets")?);
            Ok(())
        },
    ),
    opt(
        "dtx-delay",
        None,
        One("INT"),
        "DTX handling for transcoded streams: hold each received packet this many ms and \
         decode on a clock, one packet time per tick; when the sender pauses (DTX, silence \
         suppression) the tick sends a packet time of silence, of comfort noise \
         (--dtx-cn-params) or, for AMR, the codec's own comfort noise, so the receiver \
         hears an unbroken stream. Should exceed the expected jitter. Default: 0 (off).",
        |l, v| {
            l.dtx_delay = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "max-dtx",
        None,
        One("INT"),
        "Stop DTX handling this many seconds after the last received packet (the clock \
         restarts with the next one); zero or negative: never stop. Default: 30.",
        |l, v| {
            l.max_dtx = Some(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| invalid("expected seconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "dtx-buffer",
        None,
        One("INT"),
        "DTX clock overflow: when more than this many packets are held and they span \
         --dtx-lag ms, the clock is sped up by --dtx-shift. Default: 10.",
        |l, v| {
            l.dtx_buffer = Some(parse_count(v, "packets")?);
            Ok(())
        },
    ),
    opt(
        "dtx-lag",
        None,
        One("INT"),
        "DTX clock overflow: ms of audio held (see --dtx-buffer). Default: 100.",
        |l, v| {
            l.dtx_lag = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "dtx-shift",
        None,
        One("INT"),
        "ms the DTX clock moves when packets come faster (earlier) or slower (later) than \
         it ticks; 0: drop a packet or step the clock's timestamp back instead. \
         Default: 5.",
        |l, v| {
            l.dtx_shift = Some(parse_count(v, "milliseconds")?);
            Ok(())
        },
    ),
    opt(
        "dtx-cn-params",
        None,
        Many("INT"),
        "Fill DTX pauses with comfort noise of this RFC 3389 payload instead of silence \
         (noise level in -dBov, then reflection coefficients); repeat once per byte. \
         Default: none (silence).",
        |l, v| {
            let bytes = l.dtx_cn_params.get_or_insert_with(Vec::new);
            let max = if bytes.is_empty() { 127 } else { 254 };
            let byte = v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| invalid("expected a level 0-127, then coefficients 0-254"))?;
            bytes.push(byte);
            Ok(())
        },
    ),
    opt(
        "amr-dtx",
        None,
        One("native|CN"),
        "How AMR and AMR-WB DTX pauses are filled: native (the decoder continues the \
         comfort noise of the sender's last SID frame) or CN (silence or --dtx-cn-params \
         noise, as for other codecs). Default: native.",
        |l, v| {
            l.amr_dtx_cn = Some(match v.trim() {
                s if s.eq_ignore_ascii_case("native") => false,
                s if s.eq_ignore_ascii_case("CN") => true,
                _ => return Err(invalid("expected native or CN")),
            });
            Ok(())
        },
    ),
    // --- silence and comfort noise ---
    opt(
        "silence-detect",
        None,
        One("PERCENT"),
        "Toward a party that negotiated comfort noise (CN) and receives transcoded audio, \
         send a frame whose samples all stay within this percentage of full scale as a CN \
         packet instead of audio (rtpengine's silence detection). Default: 0 (off).",
        |l, v| {
            l.silence_detect = Some(parse_max_float(v)?);
            Ok(())
        },
    ),
    opt(
        "cn-payload",
        None,
        Many("INT"),
        "Bytes of the CN payload sent for silence (RFC 3389: noise level in -dBov, then \
         reflection coefficients); repeat once per byte. Default: 32 (-32 dBov, flat).",
        |l, v| {
            let byte = v
                .trim()
                .parse::<u8>()
                .map_err(|_| invalid("expected a byte value 0-255"))?;
            l.cn_payload.get_or_insert_with(Vec::new).push(byte);
            Ok(())
        },
    ),
    // --- DTMF ---
    opt(
        "dtmf-log-dest",
        None,
        One("ADDR:PORT"),
        "Report every DTMF digit a party sends (RFC 4733 events, or detected in transcoded \
         audio) as rtpengine's JSON object in a UDP datagram to ADDR:PORT (IP or host name), \
         e.g. Kamailio's rtpengine dtmf_event_sock. Default: off (empty).",
        |l, v| {
            l.dtmf_log_dest = if v.trim().is_empty() {
                None
            } else {
                Some(parse_socket_addr(v)?)
            };
            Ok(())
        },
    ),
    opt(
        "dtmf-digit-delay",
        None,
        One("INT"),
        "Longest pause in ms between two digits of a DTMF trigger (block DTMF `trigger`, \
         `trigger-end`); after a longer one the match starts over. Default: 2500.",
        |l, v| {
            l.dtmf_digit_delay = Some(
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| invalid("expected milliseconds"))?,
            );
            Ok(())
        },
    ),
];

/// A non-negative whole number of `unit`.
fn parse_count(v: &str, unit: &'static str) -> Result<u32, InvalidValue> {
    v.trim().parse::<u32>().map_err(|_| match unit {
        "packets" => invalid("expected a number of packets"),
        _ => invalid("expected milliseconds"),
    })
}
