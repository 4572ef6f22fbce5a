//! The `codec` options applied to an offer: the list the other party is offered, and the
//! state its answer is judged by (see the module above for the rules).

use ngmedia_codecs::{Codec as CodecInfo, CodecKind};
use tracing::warn;

use super::{
    any_matches, cn_codec, cn_pt, free_pt, has_all, is_cn, is_event, is_supplemental,
    kept_when_transcoding, same_codec, specs, transcodable, CodecState, SdpEdit, Spec, CN_CLOCK,
    DYNAMIC_PT_MIN, EVENTS_FMTP,
};
use crate::core::request::CodecOptions;
use crate::core::sdp::Codec as SdpCodec;

/// Apply the offer's codec options to A's list. Returns the SDP edit for B and the state
/// the answer needs (`None` when there were no options: pure passthrough).
pub(crate) fn offer(
    codecs: &[SdpCodec],
    offerer_ptime: Option<u32>,
    opts: &CodecOptions,
    ptime: Option<u32>,
    ptime_reverse: Option<u32>,
) -> (SdpEdit, Option<CodecState>) {
    if opts.is_empty() && ptime.is_none() && ptime_reverse.is_none() {
        return (SdpEdit::default(), None);
    }
    let strip = specs(&opts.strip);
    let keep = [specs(&opts.except), specs(&opts.offer)].concat();
    let reorder = specs(&opts.offer);
    let mask = [specs(&opts.mask), specs(&opts.consume)].concat();
    let ignore = specs(&opts.ignore);
    let strip_all = has_all(&strip);
    // `full` (in `strip`, or in `mask`/`consume`, which strip the answerer's list) asks for
    // fresh payload types for everything `transcode` adds.
    let strip_full = strip
        .iter()
        .chain(&mask)
        .any(|s| s.clock.is_none() && s.name.eq_ignore_ascii_case("full"));
    let mask_all = has_all(&mask);

    let mut surviving = Vec::new();
    let mut kept = Vec::new();
    // Clock rates the options touched (rtpengine's codec tracker): only there do stray
    // telephone-events go (and new ones come); touching a supplemental codec, or `all`,
    // touches every rate.
    let mut touched = Touched {
        all: strip_all || mask_all,
        rates: Vec::new(),
    };
    for c in codecs {
        if any_matches(&ignore, c) {
            surviving.push(c.clone());
            kept.push(c.clone());
            continue;
        }
        // `strip: [all]` spares codecs named in `offer`/`except`, and those named in
        // `mask`/`consume`: hidden from B, the offerer may still send them
        // (`consume: [CN]` with `strip: [all]` still answers the offerer with CN).
        // A codec named in `offer` is put back after a `strip` that named it
        // (rtpengine's `codec_store_offer` re-adds stripped codecs).
        let stripped = (any_matches(&strip, c) && !any_matches(&reorder, c))
            || (strip_all && !is_event(c) && !any_matches(&keep, c) && !any_matches(&mask, c));
        if stripped || any_matches(&strip, c) {
            touched.touch(c);
        }
        if stripped {
            continue;
        }
        surviving.push(c.clone());
        // `mask: [all]` hides telephone-event too, unless `offer` names it (rtpengine's
        // `codec_store_offer` brings it back from the offerer's list).
        let masked =
            any_matches(&mask, c) || (mask_all && !(is_event(c) && any_matches(&reorder, c)));
        if masked {
            touched.touch(c);
        } else {
            kept.push(c.clone());
        }
    }
    // `offer`: listed codecs first, in the listed order.
    if !reorder.is_empty() {
        let mut front = Vec::new();
        for spec in &reorder {
            while let Some(pos) = kept.iter().position(|c| spec.matches(c)) {
                front.push(kept.remove(pos));
            }
        }
        front.append(&mut kept);
        kept = front;
    }
    // Audio codecs, and the supplemental ones (telephone-event and CN) that follow them.
    let (mut primary, mut events): (Vec<SdpCodec>, Vec<SdpCodec>) =
        kept.into_iter().partition(|c| !is_supplemental(c));

    // `transcode`: add what is missing, under free payload types.
    let mut used: Vec<u8> = codecs.iter().map(|c| c.pt).collect();
    let mut added = Vec::new();
    // telephone-events (and CN) the options named, in their order: the offerer's own ones
    // again, or a new one when it has none.
    let mut named_events: Vec<SdpCodec> = Vec::new();
    let mut cn_added = false;
    let mut events_added = false;
    for spec in specs(&opts.transcode) {
        if spec.name.eq_ignore_ascii_case("telephone-event") {
            // The offerer's masked or stripped events come back as it wrote them
            // (rtpengine re-adds them from its list; the rates no audio codec has go again
            // below).
            let originals: Vec<&SdpCodec> = codecs
                .iter()
                .filter(|c| !strip_full && spec.names(c))
                .filter(|c| !events.iter().chain(&named_events).any(|e| e.pt == c.pt))
                .collect();
            if codecs.iter().any(|c| !strip_full && spec.names(c)) {
                named_events.extend(originals.into_iter().cloned());
                continue;
            }
            // DTMF transcoding: offer telephone-event at the named rate (8000 by default)
            // even when A has none; in-band digits of A are then sent to B as events
            // and B's events to A as tones (rtpengine's `for_transcoding` event type).
            let rate = spec.clock.unwrap_or(8000);
            let have = events
                .iter()
                .chain(&named_events)
                .any(|c| is_event(c) && c.clock_rate == rate);
            if !have {
                if let Some(pt) = free_pt(&used) {
                    used.push(pt);
                    named_events.push(event_codec(pt, rate));
                    events_added = true;
                }
            }
            continue;
        }
        if spec.name.eq_ignore_ascii_case("CN") {
            // Comfort noise toward B: we generate it from silence and decode B's. It goes
            // with the supplemental codecs (a rate without audio goes again below) and
            // touches every rate, as in rtpengine.
            let rate = spec.clock.unwrap_or(CN_CLOCK);
            let have = events
                .iter()
                .chain(&named_events)
                .any(|c| is_cn(c) && c.clock_rate == rate);
            if !have {
                if let Some(pt) = cn_pt(&used, rate) {
                    used.push(pt);
                    named_events.push(cn_codec(pt, rate));
                    touched.all = true;
                    cn_added = true;
                }
            }
            continue;
        }
        if primary.iter().chain(&added).any(|c| spec.names(c)) {
            continue;
        }
        // A codec the offerer has (masked or stripped) comes back as the offerer wrote it,
        // under its number (rtpengine's `codec_store_transcode` re-adds it from the
        // original list), unless `strip: [full]` asked for fresh ones.
        let originals: Vec<&SdpCodec> = codecs
            .iter()
            .filter(|c| !strip_full && spec.names(c))
            .collect();
        if !originals.is_empty() {
            for c in originals {
                if !added.iter().any(|a| a.pt == c.pt) {
                    added.push(c.clone());
                }
            }
            continue;
        }
        let Some(candidate) = added_codec(&spec) else {
            continue;
        };
        let pt = match candidate.pt {
            pt if pt < DYNAMIC_PT_MIN && !used.contains(&pt) => pt,
            _ => match free_pt(&used) {
                Some(pt) => pt,
                None => continue,
            },
        };
        used.push(pt);
        added.push(SdpCodec { pt, ..candidate });
    }
    // telephone-event only goes with audio of its clock rate, where the options touched
    // that rate (an offerer's event at a rate nothing was done to passes as it came). An
    // event the options named touches every rate.
    touched.rates.extend(added.iter().map(|c| c.clock_rate));
    touched.all |= named_events.iter().any(is_event);
    let audio: Vec<&SdpCodec> = primary
        .iter()
        .chain(&added)
        .filter(|c| !is_supplemental(c))
        .collect();
    let stray = |e: &SdpCodec| {
        !audio.iter().any(|a| a.clock_rate == e.clock_rate)
            && touched.rate(e.clock_rate)
            && !any_matches(&ignore, e)
    };
    // The supplemental codecs after the audio ones, in rtpengine's order: the first one
    // of the list stays last, later ones go before it.
    let mut tail: Vec<SdpCodec> = Vec::new();
    let mut last: Vec<SdpCodec> = Vec::new();
    if events.is_empty() && !named_events.is_empty() {
        last.push(named_events.remove(0));
    }
    last.append(&mut events);
    tail.append(&mut named_events);
    // rtpengine's codec tracker: a touched rate with audio but no CN gets one when CN goes
    // to B at all (before the telephone-events, lowest rate first; CN/8000 on PT 13 when
    // free), numbered from what B's list leaves free.
    if tail.iter().chain(&last).any(is_cn) {
        let mut rates: Vec<u32> = audio
            .iter()
            .map(|c| c.clock_rate)
            .filter(|&r| touched.rate(r))
            .collect();
        rates.sort_unstable();
        rates.dedup();
        for rate in rates {
            let all = || primary.iter().chain(&added).chain(&tail).chain(&last);
            if all().any(|c| is_cn(c) && c.clock_rate == rate) {
                continue;
            }
            let taken: Vec<u8> = all().map(|c| c.pt).collect();
            if let Some(pt) = cn_pt(&taken, rate) {
                used.push(pt);
                tail.push(cn_codec(pt, rate));
            }
        }
    }
    // A touched rate with audio but no telephone-event gets one when events go to B at
    // all (rtpengine's codec tracker), numbered from what B's list leaves free.
    if opts.detect_dtmf || tail.iter().chain(&last).any(is_event) {
        let mut rates: Vec<u32> = audio
            .iter()
            .map(|c| c.clock_rate)
            .filter(|&r| touched.rate(r))
            .collect();
        rates.sort_unstable();
        rates.dedup();
        for rate in rates {
            let all = || primary.iter().chain(&added).chain(&tail).chain(&last);
            if all().any(|c| is_event(c) && c.clock_rate == rate && !stray(c)) {
                continue;
            }
            let taken: Vec<u8> = all().map(|c| c.pt).collect();
            if let Some(pt) = free_pt(&taken) {
                used.push(pt);
                tail.push(event_codec(pt, rate));
            }
        }
    }
    // `detect DTMF` turns in-band digits into events: the answerer must be offered
    // telephone-event even when the offerer has none.
    if opts.detect_dtmf {
        let mut rates: Vec<u32> = primary.iter().map(|c| c.clock_rate).collect();
        rates.dedup();
        for rate in rates {
            let have = tail
                .iter()
                .chain(&last)
                .any(|c| c.clock_rate == rate && is_event(c));
            if have {
                continue;
            }
            if let Some(pt) = free_pt(&used) {
                used.push(pt);
                last.push(event_codec(pt, rate));
            }
        }
    }
    tail.append(&mut last);
    tail.retain(|e| !stray(e));
    // B may send a codec we added, which is then transcoded into one of A's: rtpengine
    // engages transcoding for B's side already at the offer, and strips what it cannot
    // transcode from B's list (see `kept_when_transcoding`). Only when A has a codec it
    // can transcode into; codecs A offered itself (re-added after a mask) are relayed.
    let transcoding = added
        .iter()
        .any(|a| !codecs.iter().any(|c| c.pt == a.pt && same_codec(c, a)))
        && codecs
            .iter()
            .any(|c| !is_supplemental(c) && kept_when_transcoding(c));
    primary.append(&mut added);
    primary.append(&mut tail);
    if transcoding {
        primary.retain(kept_when_transcoding);
    }
    // Options that leave no codec at all are a usage error: the offer goes on with its own
    // list, as rtpengine's `codec_store_check_empty` restores it.
    if primary.is_empty() {
        warn!("codec options left no codec; offering the original list");
        primary = codecs.to_vec();
    }
    if surviving.is_empty() {
        surviving = codecs.to_vec();
    }

    let edit = SdpEdit {
        codecs: (primary.as_slice() != codecs).then_some(primary),
        ptime,
    };
    let state = CodecState {
        offerer: surviving,
        offerer_ptime,
        ptime,
        ptime_reverse,
        accept: [opts.accept.clone(), opts.consume.clone()].concat(),
        always_transcode: opts.always_transcode,
        single_codec: opts.single_codec,
        detect_dtmf: opts.detect_dtmf,
        events_added,
        set: opts.set.clone(),
        transcode: opts.transcode.clone(),
        cn_added,
    };
    (edit, Some(state))
}

/// A telephone-event we add, at `rate` under `pt`.
fn event_codec(pt: u8, rate: u32) -> SdpCodec {
    SdpCodec {
        pt,
        name: "telephone-event".into(),
        clock_rate: rate,
        channels: None,
        fmtp: Some(EVENTS_FMTP.into()),
    }
}

/// The clock rates an offer's codec options touched (rtpengine's `codec_tracker`).
struct Touched {
    all: bool,
    rates: Vec<u32>,
}

impl Touched {
    fn touch(&mut self, c: &SdpCodec) {
        if is_supplemental(c) {
            self.all = true;
        } else {
            self.rates.push(c.clock_rate);
        }
    }

    fn rate(&self, rate: u32) -> bool {
        self.all || self.rates.contains(&rate)
    }
}

/// The SDP codec for a `transcode` entry, with the registry's name, rate, channels and
/// the fmtp rtpengine writes (`annexb=no` for G.729: we encode without VAD). A clock rate
/// the codec also runs at (G.711 at 16 kHz) is taken, under a dynamic payload type: the
/// static one belongs to the codec at its RFC 3551 rate (rtpengine's rule too).
pub(super) fn added_codec(spec: &Spec) -> Option<SdpCodec> {
    let def = ngmedia_codecs::CODECS.iter().find(|d| {
        d.name.eq_ignore_ascii_case(&spec.name)
            && d.kind != CodecKind::TelephoneEvent
            && spec.clock.is_none_or(|r| {
                r == d.clock_rate || CodecInfo::lookup(d.name, r, None, None).is_ok()
            })
            && spec.channels.is_none_or(|ch| d.accepts_channels(ch))
    })?;
    let clock_rate = spec.clock.unwrap_or(def.clock_rate);
    let channels = spec.channels.unwrap_or(def.channels);
    let fmtp = match def.kind {
        CodecKind::G729 => Some("annexb=no".to_owned()),
        // rtpengine's `default_fmtp` for both AMR codecs when the option gives none.
        CodecKind::Amr | CodecKind::AmrWb => Some(
            spec.fmtp
                .clone()
                .unwrap_or_else(|| "octet-align=1;mode-change-capability=2".to_owned()),
        ),
        _ => spec.fmtp.clone(),
    };
    let codec = SdpCodec {
        pt: def
            .static_pt
            .filter(|_| clock_rate == def.clock_rate)
            .unwrap_or(DYNAMIC_PT_MIN),
        // Spelled as the option gave it (`transcode: [pcma]` offers `pcma/8000`), as
        // rtpengine writes it.
        name: spec.name.clone(),
        clock_rate,
        channels: (channels > 1).then_some(channels),
        fmtp,
    };
    transcodable(&codec).map(|_| codec)
}

/// The audio codecs a `transcode` option list names, each under its static payload type or
/// the next free dynamic one, in the list's order (the codecs a T.38 gateway offers on its
/// audio side instead of PCMU and PCMA).
pub(crate) fn listed_codecs(list: &[String]) -> Vec<SdpCodec> {
    let mut used: Vec<u8> = Vec::new();
    let mut out: Vec<SdpCodec> = Vec::new();
    for spec in specs(list) {
        let Some(c) = added_codec(&spec) else {
            continue;
        };
        if out.iter().any(|o| same_codec(o, &c)) {
            continue;
        }
        let pt = match c.pt {
            pt if pt < DYNAMIC_PT_MIN && !used.contains(&pt) => pt,
            _ => match free_pt(&used) {
                Some(pt) => pt,
                None => continue,
            },
        };
        used.push(pt);
        out.push(SdpCodec { pt, ..c });
    }
    out
}
