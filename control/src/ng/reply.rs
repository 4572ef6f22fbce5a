//! Reply dictionaries in rtpengine's shape (rtpengine `control_ng.c`, `call_interfaces.c`
//! `ng_call_stats`), checked byte for byte against captures of rtpengine 10.5.
//!
//! Replies are written as bencode straight after the cookie. A JSON request gets the same
//! dictionary converted by [`bencode_to_json`], so both encodings share one writer and keep
//! rtpengine's key order (`sdp` before `result`, `result` last).
//!
//! Split by reply: the short replies here, `call_stats` (the `query`/`delete` body),
//! `statistics` (the `statistics` command) and `json` (JSON re-encoding).

mod call_stats;
mod json;
mod statistics;

use ngmedia_engine::core::calls::{DeleteReply, OfferAnswerReply, SubscribeReply};
use ngmedia_engine::core::snapshot::CallSnapshot;

use crate::bencode::Encoder;

pub(crate) use call_stats::write_call_stats;
pub(crate) use json::bencode_to_json;
pub(crate) use statistics::{stat_name, write_statistics, Rates, Totals, RTPENGINE_ORDER};

/// `{result: error, error-reason}`: nothing else, as rtpengine.
pub(crate) fn write_error(out: &mut Vec<u8>, reason: &str) {
    Encoder::new(out).dict(|d| {
        d.str("result", "error").str("error-reason", reason);
    });
}

/// `{result: "load limit", message}`: a new call refused by a load limit, for clients that
/// announced `supports: ["load limit"]` (rtpengine `control_ng.c`).
pub(crate) fn write_load_limit(out: &mut Vec<u8>, message: &str) {
    Encoder::new(out).dict(|d| {
        d.str("result", "load limit").str("message", message);
    });
}

/// `{result: ok}`: commands that only report success (recording control).
pub(crate) fn write_ok(out: &mut Vec<u8>) {
    Encoder::new(out).dict(|d| {
        d.str("result", "ok");
    });
}

/// `play media`: `duration` (ms) of the file, then `result`.
pub(crate) fn write_play_media(out: &mut Vec<u8>, duration_ms: u64) {
    Encoder::new(out).dict(|d| {
        d.uint("duration", duration_ms);
        d.str("result", "ok");
    });
}

/// `stop media`: `last-frame-pos` (ms) when something was playing, then `result`.
pub(crate) fn write_stop_media(out: &mut Vec<u8>, last_frame_pos_ms: Option<u64>) {
    Encoder::new(out).dict(|d| {
        if let Some(pos) = last_frame_pos_ms {
            d.uint("last-frame-pos", pos);
        }
        d.str("result", "ok");
    });
}

pub(crate) fn write_pong(out: &mut Vec<u8>) {
    Encoder::new(out).dict(|d| {
        d.str("result", "pong");
    });
}

/// `offer`/`answer`: `sdp`, then `warning` when there is one, then `result`.
pub(crate) fn write_offer_answer(out: &mut Vec<u8>, reply: &OfferAnswerReply) {
    Encoder::new(out).dict(|d| {
        d.str("sdp", &reply.sdp);
        if !reply.warnings.is_empty() {
            d.str("warning", &reply.warnings.join("; "));
        }
        d.str("result", "ok");
    });
}

/// `subscribe request` (rtpengine's `call_subscribe_request_ng`): `sdp`, `from-tag` with a
/// single source, with `SIPREC` `tag-medias` and `media-labels`, then `from-tags`,
/// `to-tag` and `result`.
pub(crate) fn write_subscribe_request(out: &mut Vec<u8>, reply: &SubscribeReply) {
    Encoder::new(out).dict(|d| {
        d.str("sdp", &reply.sdp);
        if let Some(t) = &reply.from_tag {
            d.str("from-tag", t);
        }
        if let Some(sources) = &reply.tag_medias {
            d.list("tag-medias", |l| {
                for src in sources {
                    l.dict(|e| {
                        e.str("tag", &src.tag);
                        if let Some(label) = &src.label {
                            e.str("label", label);
                        }
                        e.list("medias", |ml| {
                            for m in &src.medias {
                                ml.dict(|me| {
                                    me.uint("index", u64::from(m.index));
                                    me.str("type", &m.kind);
                                    me.str("label", &m.label);
                                    me.str("mode", m.mode);
                                });
                            }
                        });
                    });
                }
            });
            d.dict("media-labels", |labels| {
                for src in sources {
                    for m in &src.medias {
                        labels.dict(&m.label, |e| {
                            e.str("tag", &src.tag);
                            e.uint("index", u64::from(m.index));
                            e.str("type", &m.kind);
                            if let Some(label) = &src.label {
                                e.str("label", label);
                            }
                            e.str("mode", m.mode);
                        });
                    }
                }
            });
        }
        d.list("from-tags", |l| {
            for t in &reply.from_tags {
                l.str(t);
            }
        });
        d.str("to-tag", &reply.to_tag);
        d.str("result", "ok");
    });
}

/// `query`: the call's statistics, then `result`.
pub(crate) fn write_query(out: &mut Vec<u8>, call: &CallSnapshot) {
    Encoder::new(out).dict(|d| {
        write_call_stats(d, call);
        d.str("result", "ok");
    });
}

/// `delete`: the final statistics when the call was found; `warning` when it was not.
pub(crate) fn write_delete(out: &mut Vec<u8>, reply: &DeleteReply) {
    Encoder::new(out).dict(|d| {
        if let Some(call) = &reply.snapshot {
            write_call_stats(d, call);
        }
        if let Some(w) = &reply.warning {
            d.str("warning", w);
        }
        d.str("result", "ok");
    });
}

/// Add `text` to the `warning` of the reply dictionary written at `out[start..]` (after an
/// existing warning, separated by `; `), keeping `result` last. A reply that does not decode
/// (never the case for ours) is left alone.
pub(crate) fn add_warning(out: &mut Vec<u8>, start: usize, text: &str) {
    let Ok(crate::bencode::Value::Dict(entries)) = crate::bencode::decode(&out[start..]) else {
        return;
    };
    let mut warning = text.to_owned();
    if let Some(prev) = entries
        .iter()
        .find(|(k, _)| *k == b"warning")
        .and_then(|(_, v)| v.as_str())
    {
        warning = format!("{prev}; {text}");
    }
    let mut rebuilt = Vec::with_capacity(out.len() - start + warning.len() + 16);
    Encoder::new(&mut rebuilt).dict(|d| {
        for (k, v) in &entries {
            if *k != b"warning" && *k != b"result" {
                d.value(&String::from_utf8_lossy(k), v);
            }
        }
        d.str("warning", &warning);
        if let Some((_, v)) = entries.iter().find(|(k, _)| *k == b"result") {
            d.value("result", v);
        }
    });
    out.truncate(start);
    out.extend_from_slice(&rebuilt);
}

/// `list`: `calls` then `result`.
pub(crate) fn write_list(out: &mut Vec<u8>, calls: &[String]) {
    Encoder::new(out).dict(|d| {
        d.list("calls", |l| {
            for c in calls {
                l.str(c);
            }
        });
        d.str("result", "ok");
    });
}

#[cfg(test)]
pub(crate) mod tests;
