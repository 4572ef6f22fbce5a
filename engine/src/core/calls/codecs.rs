//! Codec negotiation: the `codec` options applied to an offer, and the answer deciding
//! whether a transcoder runs (rtpengine's codec store handling in `codec.c`:
//! `codec_store_strip`/`_offer`/`_accept`/`_transcode`, `codec_handlers_update`).
//!
//! * **Offer** (A's SDP → B): A's payload types are kept as they are unless an option says
//!   otherwise. `strip` removes (with `all`/`full` everything not in `except`/`offer`),
//!   `offer` reorders to the front, `mask`/`consume` hide a codec from B while A may still
//!   use it, `transcode` adds a codec we can decode and encode under its static payload
//!   type or the lowest free dynamic one (96…127); a clock rate that gains a codec gains
//!   the CN (when the list has one) and the telephone-event (when it has events) of that
//!   rate. Order written to B: A's kept audio codecs, the added ones, then the
//!   supplemental codecs (telephone-event, CN) as rtpengine's codec store and codec
//!   tracker place them. The state needed by the answer is kept on B's media
//!   ([`CodecState`]).
//! * **Answer** (B's SDP → A): B's list decides. If a codec B accepted is one A offered and
//!   A was not told to keep its own (`accept`, `consume`, `always transcode`), media passes
//!   through untouched, as without options. Otherwise A gets its own preferred codec (one
//!   we can transcode; masked ones count) with its telephone-event, B keeps the codec it
//!   chose, and a transcoder is planned for each direction with each side's payload types.
//!   A forced `ptime` that differs between the sides also engages one (repacketising).
//!
//! Payload type numbers are per side: each [`CodecEnd`] carries the PT its side uses.

use ngmedia_codecs::{Codec as CodecInfo, CodecKind};
use tracing::warn;

use super::model::{Call, LegId};
use super::negotiate::{Exchange, Role};
use crate::core::request::{CodecOptions, OfferAnswer};
use crate::core::sdp::{Codec as SdpCodec, MediaSection as SdpMedia, Sdp};
use crate::core::transcode::{CodecEnd, PtSet, TranscodeSpec};

/// First dynamic RTP payload type (RFC 3551 §3).
const DYNAMIC_PT_MIN: u8 = 96;
/// DTMF events we offer for an added telephone-event (RFC 4733 §3.2).
const EVENTS_FMTP: &str = "0-15";

/// One codec spec from an option list: `name[/clock[/channels[/bitrate[/ptime[/fmtp]]]]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    clock: Option<u32>,
    channels: Option<u8>,
    bitrate: Option<u32>,
    ptime: Option<u32>,
    fmtp: Option<String>,
    /// Encoder option `dtx` of the seventh field (`dtx--1`): the encoder's own DTX.
    dtx: bool,
    /// AMR decoder options of the seventh field: `CMR-interval`, `mode-change-interval` (ms).
    cmr_interval: u32,
    mode_change_interval: u32,
    /// At most `name/clock/channels`: the spec names codecs of an SDP by those alone.
    /// One with more fields is a codec of its own (rtpengine looks the whole string up
    /// among the names of the offered codecs, which carry no more than these three).
    by_name: bool,
}

impl Spec {
    /// Parse a spec; empty fields mean "any", as do numbers that are not numbers
    /// (rtpengine reads them as 0). `--` in the fmtp field stands for `=` (ng flags cannot
    /// carry `=`). `None` for an empty name.
    fn parse(s: &str) -> Option<Spec> {
        let s = s.trim();
        let by_name = s.split('/').count() <= 3;
        let mut parts = s.splitn(6, '/');
        let name = parts.next().filter(|n| !n.is_empty())?.to_owned();
        let num = |p: Option<&str>| -> Option<u32> {
            p.map(str::trim)
                .and_then(|v| v.parse().ok())
                .filter(|&v| v != 0)
        };
        let clock = num(parts.next());
        let channels = num(parts.next()).map(|c| c.min(255) as u8);
        let bitrate = num(parts.next());
        let ptime = num(parts.next());
        // rtpengine's seventh field (after another `/`) holds encoder options such as
        // `dtx--1`: not fmtp, so not written into SDP.
        let (fmtp, options) = match parts.next() {
            Some(f) => f.split_once('/').map_or((f, ""), |(f, o)| (f, o)),
            None => ("", ""),
        };
        let fmtp = Some(fmtp)
            .filter(|f| !f.is_empty())
            .map(|f| f.replace("--", "="));
        let option = |key: &str| {
            options.split(';').find_map(|o| {
                let o = o.trim().replace("--", "=");
                o.split_once('=')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        let dtx = option("dtx").is_some_and(|v| v != "0");
        let ms = |key: &str| option(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        let (cmr_interval, mode_change_interval) = (ms("CMR-interval"), ms("mode-change-interval"));
        Some(Spec {
            name,
            clock,
            channels,
            bitrate,
            ptime,
            fmtp,
            dtx,
            cmr_interval,
            mode_change_interval,
            by_name,
        })
    }

    fn is_all(&self) -> bool {
        self.clock.is_none()
            && (self.name.eq_ignore_ascii_case("all") || self.name.eq_ignore_ascii_case("full"))
    }

    fn matches(&self, c: &SdpCodec) -> bool {
        self.name.eq_ignore_ascii_case(&c.name)
            && self.clock.is_none_or(|r| r == c.clock_rate)
            && self.channels.is_none_or(|ch| ch == c.channels.unwrap_or(1))
    }

    /// Whether this `transcode` entry names `c` itself (so it is not added again).
    fn names(&self, c: &SdpCodec) -> bool {
        self.by_name && self.matches(c)
    }
}

fn specs(list: &[String]) -> Vec<Spec> {
    list.iter().filter_map(|s| Spec::parse(s)).collect()
}

fn any_matches(list: &[Spec], c: &SdpCodec) -> bool {
    list.iter().any(|s| s.matches(c))
}

fn has_all(list: &[Spec]) -> bool {
    list.iter().any(Spec::is_all)
}

fn is_event(c: &SdpCodec) -> bool {
    c.name.eq_ignore_ascii_case("telephone-event")
}

/// RFC 3389 comfort noise, at any clock rate (its payload does not depend on it: each
/// audio codec goes with the CN of its own clock rate, as telephone-event does).
fn is_cn(c: &SdpCodec) -> bool {
    c.name.eq_ignore_ascii_case("CN")
}

/// A codec that goes with the audio codecs rather than being one (rtpengine's
/// "supplemental" codecs): telephone-event and CN.
fn is_supplemental(c: &SdpCodec) -> bool {
    is_event(c) || c.name.eq_ignore_ascii_case("CN")
}

/// Clock rate of the CN `transcode: [CN]` adds when it names none (static PT 13 is CN/8000).
const CN_CLOCK: u32 = 8000;

/// A payload type for CN at `rate`: the static 13 for 8000 Hz when free, else the lowest
/// free dynamic one.
fn cn_pt(used: &[u8], rate: u32) -> Option<u8> {
    if rate == CN_CLOCK {
        free_static(used, ngmedia_codecs::cn::STATIC_PT)
    } else {
        free_pt(used)
    }
}

/// A CN we add, at `rate` under `pt`.
fn cn_codec(pt: u8, rate: u32) -> SdpCodec {
    SdpCodec {
        pt,
        name: "CN".into(),
        clock_rate: rate,
        channels: None,
        fmtp: None,
    }
}

/// The registry entry of an SDP codec, if it is one we can decode and encode.
pub(super) fn transcodable(c: &SdpCodec) -> Option<CodecInfo> {
    let info = CodecInfo::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref()).ok()?;
    match info.kind() {
        CodecKind::TelephoneEvent => None,
        // G.729 and G.722 are behind cargo features of the codecs crate: ask it.
        CodecKind::G729 | CodecKind::G722 => info.decoder().is_ok().then_some(info),
        // AMR too; and its CRC, robust-sorting and interleaving formats are decoded but not
        // produced, so they are relayed only.
        CodecKind::Amr | CodecKind::AmrWb => {
            (info.decoder().is_ok() && info.amr_params().encodable()).then_some(info)
        }
        _ => Some(info),
    }
}

fn same_codec(a: &SdpCodec, b: &SdpCodec) -> bool {
    a.name.eq_ignore_ascii_case(&b.name)
        && a.clock_rate == b.clock_rate
        && a.channels.unwrap_or(1) == b.channels.unwrap_or(1)
}

/// Lowest payload type not in `used`, dynamic range first (static PTs stay free for codecs
/// that own them).
fn free_pt(used: &[u8]) -> Option<u8> {
    (DYNAMIC_PT_MIN..=127).find(|pt| !used.contains(pt))
}

/// A codec's static payload type when free, else the lowest free dynamic one.
fn free_static(used: &[u8], pt: u8) -> Option<u8> {
    if used.contains(&pt) {
        free_pt(used)
    } else {
        Some(pt)
    }
}

/// What an offer's codec options left for the answer (rtpengine keeps it in the media's
/// codec store). Kept on the answerer's media.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodecState {
    /// The offerer's codecs that survive `strip` (kept and masked ones), its PTs.
    offerer: Vec<SdpCodec>,
    /// `a=ptime` of the offerer's SDP.
    offerer_ptime: Option<u32>,
    /// `ptime` forced toward the answerer.
    ptime: Option<u32>,
    /// `ptime-reverse` given with the offer: the packetisation the offerer gets.
    #[serde(default)]
    ptime_reverse: Option<u32>,
    /// Offerer codecs the answer keeps even when the answerer chose another one.
    accept: Vec<String>,
    always_transcode: bool,
    single_codec: bool,
    /// `detect DTMF` given with the offer.
    detect_dtmf: bool,
    /// telephone-event was offered to the answerer by `transcode` although the offerer
    /// has none: DTMF is translated between in-band tones and events.
    #[serde(default)]
    events_added: bool,
    /// Encoder parameters (`set`).
    set: Vec<String>,
    /// The offer's `transcode` list, for the encoder options of the codecs it added.
    #[serde(default)]
    transcode: Vec<String>,
    /// The offer's `transcode: [CN]` added CN toward the answerer.
    #[serde(default)]
    cn_added: bool,
}

/// Codec state of one media (one party's view of an m= line).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct MediaCodecs {
    /// Set on the answerer's media by an offer with codec options or `ptime`.
    pub state: Option<CodecState>,
    /// Transcoder for RTP received from this party, when the answer engaged one.
    pub transcode_rx: Option<TranscodeSpec>,
    /// The codecs the last offer toward this party listed, its payload types (rtpengine:
    /// the answerer's codec store). Empty when unknown (a call restored from an older
    /// record): the answer is then taken as it comes.
    pub offered: Vec<SdpCodec>,
}

/// The codec list and ptime to send on for one m= line; `None` = leave as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SdpEdit {
    pub codecs: Option<Vec<SdpCodec>>,
    pub ptime: Option<u32>,
}

/// Apply the offer's codec options to A's list. Returns the SDP edit for B and the state
/// the answer needs (`None` when there were no options: pure passthrough).
pub(super) fn offer(
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
    primary.append(&mut added);
    primary.append(&mut tail);
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
fn added_codec(spec: &Spec) -> Option<SdpCodec> {
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
pub(super) fn listed_codecs(list: &[String]) -> Vec<SdpCodec> {
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

/// Result of an answer for one m= line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct AnswerOutcome {
    /// Edit of B's SDP before it goes to A.
    pub edit: SdpEdit,
    /// Transcoder for packets from the offerer (A → B).
    pub from_offerer: Option<TranscodeSpec>,
    /// Transcoder for packets from the answerer (B → A).
    pub from_answerer: Option<TranscodeSpec>,
}

/// Decide the answer for one m= line. `answer` is B's list (B's PTs).
pub(super) fn answer(
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

/// Builds the transcoder pair for an A codec and a B codec (`true`: both are the same codec).
type SpecPair<'a> =
    dyn Fn(&SdpCodec, &SdpCodec, bool) -> Option<(TranscodeSpec, TranscodeSpec)> + 'a;

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

/// Apply codec negotiation for one exchange: update the media codec state of both parties
/// and return the sender's SDP with the codec lists and ptimes the other party must see.
pub(super) fn edit_sdp(call: &mut Call, ex: Exchange, sdp: &Sdp, req: &OfferAnswer) -> Sdp {
    let mut out = sdp.clone();
    for (i, section) in out.media.iter_mut().enumerate() {
        if !section.m.is_rtp() {
            continue;
        }
        if section.m.port == 0 {
            if ex.role == Role::Answer {
                rejected_answer(call, ex, i, section);
            }
            continue;
        }
        let codecs = section.codecs();
        let edit = match ex.role {
            Role::Offer => {
                let (edit, state) = offer(
                    &codecs,
                    section.ptime(),
                    &req.codec,
                    req.ptime,
                    req.ptime_reverse,
                );
                if let Some(m) = media_mut(call, ex.to, i) {
                    m.codec_state.state = state;
                    m.codec_state.offered = edit.codecs.clone().unwrap_or_else(|| codecs.clone());
                }
                edit
            }
            Role::Answer => {
                let state = media_mut(call, ex.from, i).and_then(|m| m.codec_state.state.clone());
                let offered = media_mut(call, ex.from, i)
                    .map(|m| m.codec_state.offered.clone())
                    .unwrap_or_default();
                // Codecs the answerer was never offered do not reach the offerer
                // (rtpengine drops "stray answer codecs" by payload type); an answer left
                // with none keeps its own list (rtpengine's `codec_store_check_empty`).
                let answered = answered_codecs(&codecs, &offered);
                let outcome = match &state {
                    Some(state) => answer(
                        state,
                        &answered,
                        section.ptime(),
                        &req.codec,
                        req.ptime_reverse,
                    ),
                    None => plain_answer(&answered, req.codec.single_codec),
                };
                if let Some(m) = media_mut(call, ex.to, i) {
                    m.codec_state.transcode_rx = outcome.from_offerer;
                }
                if let Some(m) = media_mut(call, ex.from, i) {
                    m.codec_state.transcode_rx = outcome.from_answerer;
                }
                let mut edit = outcome.edit;
                if edit.codecs.is_none() && answered != codecs {
                    edit.codecs = Some(answered);
                }
                edit
            }
        };
        if let Some(list) = &edit.codecs {
            section.set_codecs(list);
        }
        if let Some(p) = edit.ptime {
            section.set_ptime(Some(p));
        }
    }
    out
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

fn answered_codecs(answer: &[SdpCodec], offered: &[SdpCodec]) -> Vec<SdpCodec> {
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
fn plain_answer(answer: &[SdpCodec], single: bool) -> AnswerOutcome {
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
fn rejected_answer(call: &mut Call, ex: Exchange, i: usize, section: &mut SdpMedia) {
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

fn media_mut(call: &mut Call, leg: LegId, i: usize) -> Option<&mut super::model::Media> {
    call.leg_mut(leg).medias.get_mut(i)
}

#[cfg(test)]
mod tests;
