//! The answer's codecs: passthrough, or a transcoder in each direction with each side's
//! payload types (see the module above for the rules).

use ngmedia_codecs::Codec as CodecInfo;

use super::{
    any_matches, has_all, is_cn, is_event, is_supplemental, media_mut, same_codec, specs,
    transcodable, CodecState, SdpEdit, CN_CLOCK,
};
use crate::core::calls::model::Call;
use crate::core::calls::negotiate::Exchange;
use crate::core::request::CodecOptions;
use crate::core::sdp::{Codec as SdpCodec, MediaSection as SdpMedia};
use crate::core::transcode::{CodecEnd, PtSet, TranscodeSpec};

/// Builds the transcoder pair for an A codec and a B codec (`true`: both are the same codec).
type SpecPair<'a> =
    dyn Fn(&SdpCodec, &SdpCodec, bool) -> Option<(TranscodeSpec, TranscodeSpec)> + 'a;

/// Result of an answer for one m= line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AnswerOutcome {
    /// Edit of B's SDP before it goes to A.
    pub edit: SdpEdit,
    /// Transcoder for packets from the offerer (A → B).
    pub from_offerer: Option<TranscodeSpec>,
    /// Transcoder for packets from the answerer (B → A).
    pub from_answerer: Option<TranscodeSpec>,
}

/// Decide the answer for one m= line. `answer` is B's list (B's PTs).
pub(crate) fn answer(
    state: &CodecState,
    answer: &[SdpCodec],
    answer_ptime: Option<u32>,
    opts: &CodecOptions,
    ptime_reverse: Option<u32>,
) -> AnswerOutcome {
    let sdp = answer;
    let kept = answer_after_strip(answer, opts);
    let answer = kept.as_deref().unwrap_or(answer);
    let accept = specs(
        &[
            state.accept.clone(),
            opts.accept.clone(),
            opts.consume.clone(),
        ]
        .concat(),
    );
    let always = state.always_transcode || opts.always_transcode || has_all(&accept);
    // `ptime-reverse` may come with the offer or the answer.
    let ptime_reverse = ptime_reverse.or(state.ptime_reverse);
    let single = state.single_codec || opts.single_codec;
    let detect = state.detect_dtmf || opts.detect_dtmf;
    let offerer = &state.offerer;
    let a_event_at = |rate: u32| {
        offerer
            .iter()
            .find(|c| is_event(c) && c.clock_rate == rate)
            .cloned()
    };
    let b_event_at = |rate: u32| {
        answer
            .iter()
            .find(|c| is_event(c) && c.clock_rate == rate)
            .cloned()
    };

    // A's codec when A's own choice is forced (accept / consume / always transcode).
    let forced = if always {
        offerer.iter().find(|c| transcodable(c).is_some())
    } else {
        offerer
            .iter()
            .find(|c| !is_supplemental(c) && any_matches(&accept, c) && transcodable(c).is_some())
    };
    // B sends its first codec: when A has it too, media can pass through.
    let shared = answer
        .iter()
        .find(|c| !is_supplemental(c))
        .and_then(|b| offerer.iter().find(|a| same_codec(a, b)).map(|a| (a, b)));
    // Comfort noise on each side, and whether it is ours to handle: A's when A's CN was
    // consumed or accepted (or everything is transcoded), B's when the offer added it
    // (rtpengine: the CN payload types of receiver and sink, `for_transcoding`).
    // Each codec goes with the CN of its clock rate (rtpengine's `__supp_payload_type`): the
    // rates are those of the codecs that will carry the audio.
    let a_cn_at = |rate: u32| offerer.iter().find(|c| is_cn(c) && c.clock_rate == rate);
    let b_cn_at = |rate: u32| answer.iter().find(|c| is_cn(c) && c.clock_rate == rate);
    let a_main = forced.or_else(|| {
        offerer
            .iter()
            .find(|c| !is_supplemental(c) && transcodable(c).is_some())
    });
    let b_main = answer
        .iter()
        .find(|c| !is_supplemental(c) && transcodable(c).is_some());
    let (a_rate, b_rate) = match (shared, forced) {
        (Some((a, b)), f) if f.is_none_or(|f| same_codec(a, f)) => (a.clock_rate, b.clock_rate),
        _ => (
            a_main.map_or(CN_CLOCK, |c| c.clock_rate),
            b_main.map_or(CN_CLOCK, |c| c.clock_rate),
        ),
    };
    let a_cn = a_cn_at(a_rate);
    let b_cn = b_cn_at(b_rate);
    let a_cn_ours = a_cn.is_some_and(|c| always || any_matches(&accept, c));
    let b_cn_ours = b_cn.is_some() && state.cn_added;
    // A's answer keeps A's CN when B answered one or A's is ours (rtpengine rejects on one
    // side a supplemental codec the other side's answer rejected).
    let a_cn_kept = answer.iter().any(is_cn) || a_cn_ours;
    // One side has CN the other lacks: its CN is decoded into noise for the other, and the
    // other's silence becomes CN toward it. Same codec on both sides still needs a
    // transcoder for that.
    let cn_transcode = (a_cn.is_none() && b_cn_ours) || (a_cn_ours && b_cn.is_none());

    let a_ptime_of = |c: &CodecInfo| -> u32 {
        let p = ptime_reverse
            .or(state.offerer_ptime)
            .unwrap_or(c.def.default_ptime);
        if c.supports_ptime(p) {
            p
        } else {
            c.def.default_ptime
        }
    };
    // Repacketising one codec, what A sends is what B gets unless `ptime` changes it: B's
    // a=ptime alone does not (rtpengine keeps the offer's packetisation). Transcoding
    // encodes for B, at the ptime B asked for, else the offer's (rtpengine gives both
    // sides the ptime of the offer's SDP until an answer carries its own).
    let b_ptime_of = |c: &CodecInfo, same_codec: bool| -> u32 {
        let wanted = if same_codec {
            state.ptime.or(state.offerer_ptime).or(answer_ptime)
        } else {
            state.ptime.or(answer_ptime).or(state.offerer_ptime)
        };
        let p = wanted.unwrap_or(c.def.default_ptime);
        if c.supports_ptime(p) {
            p
        } else {
            c.def.default_ptime
        }
    };
    // Encoder DTX for a codec a `set` or `transcode` entry gives `dtx--1` (rtpengine: the
    // codec options of the encoder toward that side).
    let dtx_for = |c: &SdpCodec| {
        specs(&[state.set.clone(), state.transcode.clone(), opts.set.clone()].concat())
            .iter()
            .any(|s| s.dtx && s.matches(c))
    };
    // The encoder's bit rate toward a side: the fourth field of the `set` or `transcode`
    // entry naming the codec (rtpengine: a codec added by `transcode` keeps the bit rate of
    // its format, and the answerer accepting it gets that encoder).
    // AMR decoder options of the side that sends `c` (rtpengine: the codec options of its
    // decoder).
    let intervals_for = |c: &SdpCodec| {
        specs(&[state.set.clone(), state.transcode.clone(), opts.set.clone()].concat())
            .iter()
            .filter(|s| s.matches(c))
            .fold((0, 0), |(ci, mi), s| {
                (ci.max(s.cmr_interval), mi.max(s.mode_change_interval))
            })
    };
    let bitrate_for = |c: &SdpCodec| {
        let set = specs(&[state.set.clone(), state.transcode.clone(), opts.set.clone()].concat());
        set.iter().find(|s| s.matches(c)).and_then(|s| s.bitrate)
    };
    // DTMF transcoding (rtpengine README, "DTMF transcoding"): forward, telephone-event
    // was added to the offer by `transcode` and B accepted it; reverse, A offered
    // telephone-event, `always transcode` is set and B rejected it. Either way all audio
    // goes through a transcoder, B's or A's events become tones and the other side's
    // in-band digits are detected and sent as events.
    let dtmf_forward =
        |rate: u32| state.events_added && a_event_at(rate).is_none() && b_event_at(rate).is_some();
    let dtmf_reverse =
        |rate: u32| always && a_event_at(rate).is_some() && b_event_at(rate).is_none();
    let spec_pair =
        |a: &SdpCodec, b: &SdpCodec, same: bool| -> Option<(TranscodeSpec, TranscodeSpec)> {
            let (ai, bi) = (transcodable(a)?, transcodable(b)?);
            let a_events = a_event_at(a.clock_rate).map(|e| e.pt);
            let b_events = b_event_at(b.clock_rate).map(|e| e.pt);
            let a_end = CodecEnd {
                codec: ai,
                pt: a.pt,
                ptime_ms: a_ptime_of(&ai),
                event_pt: a_events,
                bitrate: bitrate_for(a),
                cn_pt: a_cn_at(a.clock_rate).filter(|_| a_cn_kept).map(|c| c.pt),
                dtx: dtx_for(a),
                cmr_interval_ms: intervals_for(a).0,
                mode_change_interval_ms: intervals_for(a).1,
            };
            let b_end = CodecEnd {
                codec: bi,
                pt: b.pt,
                ptime_ms: b_ptime_of(&bi, same),
                event_pt: b_events,
                bitrate: bitrate_for(b),
                cn_pt: b_cn_at(b.clock_rate).map(|c| c.pt),
                dtx: dtx_for(b),
                cmr_interval_ms: intervals_for(b).0,
                mode_change_interval_ms: intervals_for(b).1,
            };
            // Detection only where the sender has no events of its own (rtpengine: `detect
            // DTMF` enables the DSP when the receiving side lacks a DTMF payload type).
            // Transcoding toward a side whose telephone-event the sender lacks: in-band
            // digits become events (rtpengine: `pcm_dtmf_detect` for a sink event type
            // kept `for_transcoding`).
            let xlate = state.events_added || !same || dtmf_reverse(a.clock_rate);
            let detect_from = |from: &CodecEnd, to: &CodecEnd| {
                (detect || xlate) && from.event_pt.is_none() && to.event_pt.is_some()
            };
            Some((
                TranscodeSpec {
                    input: a_end,
                    output: b_end,
                    detect_dtmf: detect_from(&a_end, &b_end),
                    passthrough: PtSet::NONE,
                },
                TranscodeSpec {
                    input: b_end,
                    output: a_end,
                    detect_dtmf: detect_from(&b_end, &a_end),
                    passthrough: PtSet::NONE,
                },
            ))
        };

    let passthrough = match (shared, forced) {
        (Some((a, _)), Some(f)) => same_codec(a, f),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if passthrough {
        let (a, b) = shared.expect("passthrough has a shared codec");
        // B's list, audio codecs before telephone-events, minus what A never offered; a
        // codec we added for transcoding that B accepted stands for A's preferred codec
        // (A may send that one: it is transcoded to B's).
        let offered = |c: &SdpCodec| offerer.iter().any(|a| same_codec(a, c) && a.pt == c.pt);
        let a_pref = offerer
            .iter()
            .find(|c| !is_supplemental(c) && transcodable(c).is_some());
        let mut list: Vec<SdpCodec> = Vec::new();
        let mut b_added: Option<&SdpCodec> = None;
        for c in answer.iter().filter(|c| !is_supplemental(c)) {
            if offered(c) {
                list.push(c.clone());
            } else if !single && transcodable(c).is_some() {
                b_added = b_added.or(Some(c));
                // A's own version of the codec B chose, else A's preferred one.
                let own = offerer
                    .iter()
                    .find(|a| same_codec(a, c) && transcodable(a).is_some());
                if let Some(p) = own
                    .or(a_pref)
                    .filter(|p| !list.iter().any(|l| l.pt == p.pt))
                {
                    list.push(p.clone());
                }
            }
        }
        // Events and CN as A wrote them (its fmtp), under the numbers both share.
        list.extend(
            answer
                .iter()
                .filter(|c| is_supplemental(c))
                .filter_map(|c| {
                    offerer
                        .iter()
                        .find(|a| same_codec(a, c) && a.pt == c.pt)
                        .cloned()
                }),
        );
        // A's CN we consume stays in A's answer even when B has none.
        if let Some(cn) = a_cn.filter(|_| a_cn_ours) {
            if !list.iter().any(is_cn) {
                insert_supplemental(&mut list, cn.clone());
            }
        }
        if single {
            let first = list.iter().position(|c| !is_supplemental(c));
            let mut i = 0;
            list.retain(|c| {
                let keep = is_event(c) || Some(i) == first;
                i += 1;
                keep
            });
        }
        let dtmf_xlate = dtmf_forward(a.clock_rate) || dtmf_reverse(a.clock_rate);
        if dtmf_reverse(a.clock_rate) {
            // A keeps its telephone-event: its digits are rendered in-band for B.
            if let Some(e) = a_event_at(a.clock_rate) {
                list.push(e);
            }
        }
        // Forced ptime on either side that differs, in-band DTMF to detect, CN one side
        // lacks, or DTMF transcoding: decode.
        let repack = (state.ptime.is_some()
            || ptime_reverse.is_some()
            || detect
            || cn_transcode
            || dtmf_xlate)
            .then(|| spec_pair(a, b, true))
            .flatten()
            .filter(|(ab, ba)| {
                ab.input.ptime_ms != ab.output.ptime_ms
                    || ab.detect_dtmf
                    || ba.detect_dtmf
                    || cn_transcode
                    || dtmf_xlate
            });
        let (from_offerer, from_answerer) = match repack {
            Some((ab, ba)) => (Some(ab), Some(ba)),
            None => mixed(&list, answer, b_added, &spec_pair),
        };
        return AnswerOutcome {
            edit: SdpEdit {
                codecs: (list.as_slice() != sdp).then_some(list),
                // A gets a=ptime only for a packetisation it asked for (its offer's
                // a=ptime) or was given (`ptime-reverse`), as rtpengine answers.
                ptime: from_answerer
                    .filter(|s| {
                        s.input.ptime_ms != s.output.ptime_ms
                            && (ptime_reverse.is_some() || state.offerer_ptime.is_some())
                    })
                    .map(|s| s.output.ptime_ms)
                    .or(ptime_reverse),
            },
            from_offerer,
            from_answerer,
        };
    }

    // Transcoding: A's codec (forced, else its first one we can handle), B's first one we
    // can handle.
    let (a, b) = (a_main, b_main);
    let pair = a
        .zip(b)
        .and_then(|(a, b)| Some((a, b, spec_pair(a, b, false)?)));
    let Some((a, _, (ab, ba))) = pair else {
        // Nothing we can transcode between: leave the answer as it is.
        return AnswerOutcome::default();
    };
    let mut list = vec![a.clone()];
    // A's CN: decoded, or passed on to B's.
    if let Some(cn) = a_cn.filter(|_| a_cn_kept) {
        list.push(cn.clone());
    }
    // A keeps its telephone-event only when B accepted one or every codec of A's is
    // transcoded anyway (rtpengine drops a DTMF payload type the answerer rejected unless
    // it was added for transcoding).
    if let Some(e) = a_event_at(a.clock_rate).filter(|_| always || answer.iter().any(is_event)) {
        list.push(e);
    }
    // What both sides still share is relayed beside the transcoded codec.
    let shared = shared_pts(&list, answer);
    let (ab, ba) = (relaying(ab, shared, false), relaying(ba, shared, false));
    AnswerOutcome {
        edit: SdpEdit {
            codecs: Some(list),
            // B's ptime means nothing to A: A gets the packetisation we send it.
            ptime: Some(ba.output.ptime_ms).filter(|_| {
                answer_ptime.is_some() || ptime_reverse.is_some() || state.offerer_ptime.is_some()
            }),
        },
        from_offerer: Some(ab),
        from_answerer: Some(ba),
    }
}

/// Put a supplemental codec after the audio codecs and before the telephone-events.
fn insert_supplemental(list: &mut Vec<SdpCodec>, c: SdpCodec) {
    let at = list.iter().position(is_event).unwrap_or(list.len());
    list.insert(at, c);
}

/// Transcoders beside passthrough, when the answer shares a codec with the offer but
/// either side may also send one the other lacks: B a codec we added for transcoding
/// (`b_added`), A the codec of its own that stands for it in `to_a` (A's answer). Each
/// direction decodes that one codec into the receiver's first codec and relays the payload
/// types both share (rtpengine: a transcoding handler for that payload type, the others
/// passthrough with the new SSRC). `None` where a direction has nothing to transcode.
fn mixed(
    to_a: &[SdpCodec],
    answer: &[SdpCodec],
    b_added: Option<&SdpCodec>,
    spec_pair: &SpecPair<'_>,
) -> (Option<TranscodeSpec>, Option<TranscodeSpec>) {
    let shared = shared_pts(to_a, answer);
    let first = |list: &[SdpCodec]| list.iter().find(|c| !is_supplemental(c)).cloned();
    // A → B: A's codec that B does not have, into B's first.
    let from_a = to_a
        .iter()
        .find(|a| !is_supplemental(a) && !shared.contains(a.pt))
        .zip(first(answer))
        .and_then(|(a, b)| spec_pair(a, &b, false))
        .map(|(ab, _)| relaying(ab, shared, true));
    // B → A: the codec B accepted for transcoding, into A's first.
    let from_b = b_added
        .zip(first(to_a))
        .and_then(|(b, a)| spec_pair(&a, b, false))
        .map(|(_, ba)| relaying(ba, shared, true));
    (from_a, from_b)
}

/// Payload types of `to_a` (A's answer) that B's answer has too, for the same codec.
fn shared_pts(to_a: &[SdpCodec], answer: &[SdpCodec]) -> PtSet {
    to_a.iter()
        .filter(|a| answer.iter().any(|b| same_codec(a, b) && a.pt == b.pt))
        .map(|c| c.pt)
        .collect()
}

/// `spec` relaying the `shared` payload types other than the codec it decodes, and other
/// than its telephone-event and CN unless `events` (beside passthrough audio, these keep
/// the sender's timestamps; beside transcoded audio they move onto the output timeline).
fn relaying(mut spec: TranscodeSpec, shared: PtSet, events: bool) -> TranscodeSpec {
    spec.passthrough = shared
        .iter()
        .filter(|&pt| {
            pt != spec.input.pt
                && (events || (Some(pt) != spec.input.event_pt && Some(pt) != spec.input.cn_pt))
        })
        .collect();
    spec
}

/// The answerer's codecs that it was offered (by payload type, as rtpengine's answer
/// matches them), or all of them when none was (or the offer is unknown).
/// The answerer's codecs after the answer's own `strip` (with `except`) and `offer`
/// (rtpengine's answer: `codec_store_strip`, `codec_store_offer`, `codec_store_check_empty`
/// on the answerer's list): `strip: [all]` takes everything, telephone-event included,
/// `offer` puts the codecs it names back, and a list left empty is the SDP's whole list
/// again. `None` when the answer strips nothing.
fn answer_after_strip(answer: &[SdpCodec], opts: &CodecOptions) -> Option<Vec<SdpCodec>> {
    let strip = specs(&opts.strip);
    if strip.is_empty() {
        return None;
    }
    let (except, offer) = (specs(&opts.except), specs(&opts.offer));
    let kept: Vec<SdpCodec> = answer
        .iter()
        .filter(|c| {
            let stripped = (has_all(&strip) && !any_matches(&except, c)) || any_matches(&strip, c);
            !stripped || any_matches(&offer, c)
        })
        .cloned()
        .collect();
    (!kept.is_empty()).then_some(kept)
}

pub(super) fn answered_codecs(answer: &[SdpCodec], offered: &[SdpCodec]) -> Vec<SdpCodec> {
    if offered.is_empty() {
        return answer.to_vec();
    }
    let kept: Vec<SdpCodec> = answer
        .iter()
        .filter(|c| offered.iter().any(|o| o.pt == c.pt))
        .cloned()
        .collect();
    if kept.is_empty() {
        answer.to_vec()
    } else {
        kept
    }
}

/// The answer when the offer gave no codec options: the answerer's list as it is, or with
/// `single codec` cut after its first audio codec (telephone-event and CN before it stay,
/// as rtpengine keeps passthrough codecs until one audio codec is counted).
pub(super) fn plain_answer(answer: &[SdpCodec], single: bool) -> AnswerOutcome {
    if !single {
        return AnswerOutcome::default();
    }
    let cut = answer
        .iter()
        .position(|c| !is_supplemental(c))
        .map_or(answer.len(), |p| p + 1);
    AnswerOutcome {
        edit: SdpEdit {
            codecs: (cut < answer.len()).then(|| answer[..cut].to_vec()),
            ptime: None,
        },
        ..AnswerOutcome::default()
    }
}

/// A rejected m= line (port 0) in an answer still names formats: each one the offerer does
/// not have becomes the offerer's first codec, the one rtpengine would transcode it to.
pub(super) fn rejected_answer(call: &mut Call, ex: Exchange, i: usize, section: &mut SdpMedia) {
    let Some(media) = media_mut(call, ex.from, i) else {
        return;
    };
    let offerer: &[SdpCodec] = match &media.codec_state.state {
        Some(state) => &state.offerer,
        None => &media.codec_state.offered,
    };
    let Some(first) = offerer.iter().find(|c| !is_supplemental(c)) else {
        return;
    };
    let mut formats: Vec<String> = Vec::with_capacity(section.m.formats.len());
    for f in &section.m.formats {
        let known = f
            .parse::<u8>()
            .is_ok_and(|pt| offerer.iter().any(|c| c.pt == pt));
        let f = if known {
            f.clone()
        } else {
            first.pt.to_string()
        };
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    section.m.formats = formats;
}
