//! Recording (where, in which format and how calls are recorded) and forwarding of a call's
//! media to other destinations.

use ngmedia_recordings::RecordingFormat;

use super::{
    invalid, nonempty_path, opt, Opt,
    Value::{Flag, One},
};
use crate::config::parse::{parse_bool, parse_destination};

pub(super) static OPTIONS: &[Opt] = &[
    // --- recording ---
    opt(
        "recording-dir",
        None,
        One("DIR"),
        "Folder for call recordings (WAV, pcap, JSON metadata). Created if missing; if it is \
         unusable, recordings fail and calls go on. Default: /var/lib/ngmedia/recordings.",
        |l, v| {
            l.recording_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
    opt(
        "recording-format",
        None,
        One("wav|pcap|both"),
        "What a recording writes besides its JSON metadata: `wav` (mixed stereo WAV), `pcap` \
         (the RTP as received) or `both`. rtpengine's pcap framings `raw` and `eth` are \
         accepted: ngmedia's pcaps are raw IP. Default: wav.",
        |l, v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "raw" => {}
                "eth" => l.notes.push(
                    "recording-format=eth: ngmedia's pcap files are raw IP, without Ethernet \
                     headers"
                        .to_string(),
                ),
                _ => {
                    l.recording_format = Some(
                        RecordingFormat::parse(v)
                            .ok_or_else(|| invalid("expected wav, pcap or both (or raw|eth)"))?,
                    )
                }
            }
            Ok(())
        },
    ),
    opt(
        "recording-method",
        None,
        One("pcap|proc|all"),
        "rtpengine's recording method, mapped to the nearest --recording-format: `pcap` \
         writes pcap, `proc` (hand-off to a recording daemon) writes WAV, `all` both. \
         --recording-format, when given, wins.",
        |l, v| {
            let format = match v.trim().to_ascii_lowercase().as_str() {
                "" => return Ok(()),
                "pcap" => RecordingFormat::Pcap,
                "proc" => {
                    l.notes.push(
                        "recording-method=proc: ngmedia has no recording daemon, it writes \
                         the WAV files itself"
                            .to_string(),
                    );
                    RecordingFormat::Wav
                }
                "all" => RecordingFormat::Both,
                _ => return Err(invalid("expected pcap, proc or all")),
            };
            l.recording_method = Some(format);
            Ok(())
        },
    ),
    opt(
        "recording-per-party",
        None,
        Flag,
        "Also write one mono WAV per party of a recorded call.",
        |l, v| {
            l.recording_per_party = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    // --- forwarding ---
    opt(
        "forward-to",
        None,
        One("ADDR:PORT"),
        "Destination of the ng `start forwarding` command: the call's RTP (decrypted), both \
         directions, as UDP datagrams to ADDR:PORT. Off unless given.",
        |l, v| {
            if !v.trim().is_empty() {
                l.forward_to = Some(parse_destination(v)?);
            }
            Ok(())
        },
    ),
];
