//! Codec negotiation: the `codec` options applied to an offer, and the answer deciding
//! whether a transcoder runs (rtpengine's codec store handling in `codec.c`:
//! `codec_store_strip`/`_offer`/`_accept`/`_transcode`, `codec_handlers_update`).
//!
//! * **Offer** (A's SDP → B): A's payload types are kept as they are unless an option says
//!   otherwise. `strip` removes (with `all`/`full` everything not in `except`/`offer`),
//!   `offer` reorders to the front, `mask`/`consume` hide a codec from B while A may still
//!   use it, `transcode` adds a codec we can decode and encode under its static payload
//!   type or the lowest free dynamic one (96…127), followed by a telephone-event at its
//!   clock rate when A offered telephone-event. Order written to B: A's kept codecs, the
//!   added ones (each with its new telephone-event), then A's telephone-events, which is
//!   the order rtpengine produces (captures ex5.out). The state needed by the answer is
//!   kept on B's media ([`CodecState`]).
//! * **Answer** (B's SDP → A): B's list decides. If a codec B accepted is one A offered and
//!   A was not told to keep its own (`accept`, `consume`, `always transcode`), media passes
//!   through untouched, as without options. Otherwise A gets its own preferred codec (one
//!   we can transcode; masked ones count) with its telephone-event, B keeps the codec it
//!   chose, and a transcoder is planned for each direction with each side's payload types.
//!   A forced `ptime` that differs between the sides also engages one (repacketising).
//!
//! Payload type numbers are per side: each [`CodecEnd`] carries the PT its side uses.

use ngmedia_codecs::{Codec as CodecInfo, CodecKind};

use super::model::{Call, LegId};
use super::negotiate::{Exchange, Role};
use crate::core::request::{CodecOptions, OfferAnswer};
use crate::core::sdp::{Codec as SdpCodec, Sdp};
use crate::core::transcode::{CodecEnd, TranscodeSpec};

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
}

impl Spec {
    /// Parse a spec; empty fields mean "any". `--` in the fmtp field stands for `=`
    /// (ng flags cannot carry `=`). `None` for an empty name or a non-numeric number.
    fn parse(s: &str) -> Option<Spec> {
        let mut parts = s.trim().splitn(6, '/');
        let name = parts.next().filter(|n| !n.is_empty())?.to_owned();
        let num = |p: Option<&str>| -> Option<Option<u32>> {
            match p.map(str::trim) {
                None | Some("") => Some(None),
                Some(v) => v.parse().ok().map(Some),
            }
        };
        let clock = num(parts.next())?;
        let channels = num(parts.next())?.map(|c| c.min(255) as u8);
        let bitrate = num(parts.next())?;
        let ptime = num(parts.next())?;
        let fmtp = parts
            .next()
            .filter(|f| !f.is_empty())
            .map(|f| f.replace("--", "="));
        Some(Spec {
            name,
            clock,
            channels,
            bitrate,
            ptime,
            fmtp,
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

/// The registry entry of an SDP codec, if it is one we can decode and encode.
fn transcodable(c: &SdpCodec) -> Option<CodecInfo> {
    let info = CodecInfo::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref()).ok()?;
    match info.kind() {
        CodecKind::TelephoneEvent => None,
        // G.729 is behind a cargo feature of the codecs crate: ask it.
        CodecKind::G729 => info.decoder().is_ok().then_some(info),
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

/// What an offer's codec options left for the answer (rtpengine keeps it in the media's
/// codec store). Kept on the answerer's media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodecState {
    /// The offerer's codecs that survive `strip` (kept and masked ones), its PTs.
    offerer: Vec<SdpCodec>,
    /// `a=ptime` of the offerer's SDP.
    offerer_ptime: Option<u32>,
    /// `ptime` forced toward the answerer.
    ptime: Option<u32>,
    /// Offerer codecs the answer keeps even when the answerer chose another one.
    accept: Vec<String>,
    always_transcode: bool,
    single_codec: bool,
    /// `detect DTMF` given with the offer.
    detect_dtmf: bool,
    /// Encoder parameters (`set`).
    set: Vec<String>,
}

/// Codec state of one media (one party's view of an m= line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaCodecs {
    /// Set on the answerer's media by an offer with codec options or `ptime`.
    pub state: Option<CodecState>,
    /// Transcoder for RTP received from this party, when the answer engaged one.
    pub transcode_rx: Option<TranscodeSpec>,
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
) -> (SdpEdit, Option<CodecState>) {
    if opts.is_empty() && ptime.is_none() {
        return (SdpEdit::default(), None);
    }
    let strip = specs(&opts.strip);
    let keep = [specs(&opts.except), specs(&opts.offer)].concat();
    let reorder = specs(&opts.offer);
    let mask = [specs(&opts.mask), specs(&opts.consume)].concat();
    let ignore = specs(&opts.ignore);
    let strip_all = has_all(&strip);
    let mask_all = has_all(&mask);

    let mut surviving = Vec::new();
    let mut kept = Vec::new();
    for c in codecs {
        if any_matches(&ignore, c) {
            surviving.push(c.clone());
            kept.push(c.clone());
            continue;
        }
        let stripped =
            any_matches(&strip, c) || (strip_all && !is_event(c) && !any_matches(&keep, c));
        if stripped {
            continue;
        }
        surviving.push(c.clone());
        let masked = any_matches(&mask, c) || (mask_all && !is_event(c));
        if !masked {
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
    let (mut primary, mut events): (Vec<SdpCodec>, Vec<SdpCodec>) =
        kept.into_iter().partition(|c| !is_event(c));
    // `detect DTMF` turns in-band digits into events: the answerer must be offered
    // telephone-event even when the offerer has none.
    let offered_events = codecs.iter().any(is_event) || opts.detect_dtmf;

    // `transcode`: add what is missing, under free payload types.
    let mut used: Vec<u8> = codecs.iter().map(|c| c.pt).collect();
    let mut added = Vec::new();
    for spec in specs(&opts.transcode) {
        let Some(candidate) = added_codec(&spec) else {
            continue;
        };
        if primary
            .iter()
            .chain(&added)
            .any(|c| same_codec(c, &candidate))
        {
            continue;
        }
        let pt = match candidate.pt {
            pt if pt < DYNAMIC_PT_MIN && !used.contains(&pt) => pt,
            _ => match free_pt(&used) {
                Some(pt) => pt,
                None => continue,
            },
        };
        used.push(pt);
        let rate = candidate.clock_rate;
        added.push(SdpCodec { pt, ..candidate });
        let have_event_at_rate = events
            .iter()
            .chain(&added)
            .any(|c| is_event(c) && c.clock_rate == rate);
        if offered_events && !have_event_at_rate {
            if let Some(pt) = free_pt(&used) {
                used.push(pt);
                added.push(SdpCodec {
                    pt,
                    name: "telephone-event".into(),
                    clock_rate: rate,
                    channels: None,
                    fmtp: Some(EVENTS_FMTP.into()),
                });
            }
        }
    }
    if opts.detect_dtmf {
        let mut rates: Vec<u32> = primary.iter().map(|c| c.clock_rate).collect();
        rates.dedup();
        for rate in rates {
            let have = events
                .iter()
                .chain(&added)
                .any(|c| c.clock_rate == rate && is_event(c));
            if have {
                continue;
            }
            if let Some(pt) = free_pt(&used) {
                used.push(pt);
                events.push(SdpCodec {
                    pt,
                    name: "telephone-event".into(),
                    clock_rate: rate,
                    channels: None,
                    fmtp: Some(EVENTS_FMTP.into()),
                });
            }
        }
    }
    // telephone-event only goes with audio of its clock rate.
    let rates: Vec<u32> = primary
        .iter()
        .chain(added.iter().filter(|c| !is_event(c)))
        .map(|c| c.clock_rate)
        .collect();
    events.retain(|e| rates.contains(&e.clock_rate) || any_matches(&ignore, e));
    primary.append(&mut added);
    primary.append(&mut events);

    let edit = SdpEdit {
        codecs: (primary.as_slice() != codecs).then_some(primary),
        ptime,
    };
    let state = CodecState {
        offerer: surviving,
        offerer_ptime,
        ptime,
        accept: [opts.accept.clone(), opts.consume.clone()].concat(),
        always_transcode: opts.always_transcode,
        single_codec: opts.single_codec,
        detect_dtmf: opts.detect_dtmf,
        set: opts.set.clone(),
    };
    (edit, Some(state))
}

/// The SDP codec for a `transcode` entry, with the registry's name, rate, channels and
/// the fmtp rtpengine writes (`annexb=no` for G.729: we encode without VAD).
fn added_codec(spec: &Spec) -> Option<SdpCodec> {
    let def = ngmedia_codecs::CODECS.iter().find(|d| {
        d.name.eq_ignore_ascii_case(&spec.name)
            && d.kind != CodecKind::TelephoneEvent
            && spec.clock.is_none_or(|r| r == d.clock_rate)
            && spec.channels.is_none_or(|ch| ch == d.channels)
    })?;
    let fmtp = match def.kind {
        CodecKind::G729 => Some("annexb=no".to_owned()),
        _ => spec.fmtp.clone(),
    };
    let codec = SdpCodec {
        pt: def.static_pt.unwrap_or(DYNAMIC_PT_MIN),
        name: def.name.to_owned(),
        clock_rate: def.clock_rate,
        channels: (def.channels > 1).then_some(def.channels),
        fmtp,
    };
    transcodable(&codec).map(|_| codec)
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
    let accept = specs(
        &[
            state.accept.clone(),
            opts.accept.clone(),
            opts.consume.clone(),
        ]
        .concat(),
    );
    let always = state.always_transcode || opts.always_transcode || has_all(&accept);
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
            .find(|c| !is_event(c) && any_matches(&accept, c) && transcodable(c).is_some())
    };
    // B sends its first codec: when A has it too, media can pass through.
    let shared = answer
        .iter()
        .find(|c| !is_event(c))
        .and_then(|b| offerer.iter().find(|a| same_codec(a, b)).map(|a| (a, b)));

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
    let b_ptime_of = |c: &CodecInfo| -> u32 {
        let p = state.ptime.or(answer_ptime).unwrap_or(c.def.default_ptime);
        if c.supports_ptime(p) {
            p
        } else {
            c.def.default_ptime
        }
    };
    let bitrate_for = |c: &SdpCodec| {
        let set = specs(&[state.set.clone(), opts.set.clone()].concat());
        set.iter().find(|s| s.matches(c)).and_then(|s| s.bitrate)
    };
    let spec_pair = |a: &SdpCodec, b: &SdpCodec| -> Option<(TranscodeSpec, TranscodeSpec)> {
        let (ai, bi) = (transcodable(a)?, transcodable(b)?);
        let a_events = a_event_at(a.clock_rate).map(|e| e.pt);
        let b_events = b_event_at(b.clock_rate).map(|e| e.pt);
        let a_end = CodecEnd {
            codec: ai,
            pt: a.pt,
            ptime_ms: a_ptime_of(&ai),
            event_pt: a_events,
            bitrate: bitrate_for(a),
        };
        let b_end = CodecEnd {
            codec: bi,
            pt: b.pt,
            ptime_ms: b_ptime_of(&bi),
            event_pt: b_events,
            bitrate: bitrate_for(b),
        };
        // Detection only where the sender has no events of its own (rtpengine: `detect
        // DTMF` enables the DSP when the receiving side lacks a DTMF payload type).
        let detect_from = |from: &CodecEnd, to: &CodecEnd| {
            detect && from.event_pt.is_none() && to.event_pt.is_some()
        };
        Some((
            TranscodeSpec {
                input: a_end,
                output: b_end,
                detect_dtmf: detect_from(&a_end, &b_end),
            },
            TranscodeSpec {
                input: b_end,
                output: a_end,
                detect_dtmf: detect_from(&b_end, &a_end),
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
        // B's list minus what A never offered (codecs we added for transcoding).
        let mut list: Vec<SdpCodec> = answer
            .iter()
            .filter(|c| offerer.iter().any(|a| same_codec(a, c) && a.pt == c.pt))
            .cloned()
            .collect();
        if single {
            let first = list.iter().position(|c| !is_event(c));
            let mut i = 0;
            list.retain(|c| {
                let keep = is_event(c) || Some(i) == first;
                i += 1;
                keep
            });
        }
        // Forced ptime on either side that differs, or in-band DTMF to detect: decode.
        let repack = (state.ptime.is_some() || ptime_reverse.is_some() || detect)
            .then(|| spec_pair(a, b))
            .flatten()
            .filter(|(ab, ba)| {
                ab.input.ptime_ms != ab.output.ptime_ms || ab.detect_dtmf || ba.detect_dtmf
            });
        let (from_offerer, from_answerer) = match repack {
            Some((ab, ba)) => (Some(ab), Some(ba)),
            None => (None, None),
        };
        return AnswerOutcome {
            edit: SdpEdit {
                codecs: (list.as_slice() != answer).then_some(list),
                ptime: from_answerer
                    .filter(|s| s.input.ptime_ms != s.output.ptime_ms)
                    .map(|s| s.output.ptime_ms)
                    .or(ptime_reverse),
            },
            from_offerer,
            from_answerer,
        };
    }

    // Transcoding: A's codec (forced, else its first one we can handle), B's first one we
    // can handle.
    let a = forced.or_else(|| {
        offerer
            .iter()
            .find(|c| !is_event(c) && transcodable(c).is_some())
    });
    let b = answer
        .iter()
        .find(|c| !is_event(c) && transcodable(c).is_some());
    let pair = a.zip(b).and_then(|(a, b)| Some((a, b, spec_pair(a, b)?)));
    let Some((a, _, (ab, ba))) = pair else {
        // Nothing we can transcode between: leave the answer as it is.
        return AnswerOutcome::default();
    };
    let mut list = vec![a.clone()];
    if let Some(e) = a_event_at(a.clock_rate) {
        list.push(e);
    }
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

/// Apply codec negotiation for one exchange: update the media codec state of both parties
/// and return the sender's SDP with the codec lists and ptimes the other party must see.
pub(super) fn edit_sdp(call: &mut Call, ex: Exchange, sdp: &Sdp, req: &OfferAnswer) -> Sdp {
    let mut out = sdp.clone();
    for (i, section) in out.media.iter_mut().enumerate() {
        if section.m.port == 0 || !section.m.is_rtp() {
            continue;
        }
        let codecs = section.codecs();
        let edit = match ex.role {
            Role::Offer => {
                let (edit, state) = offer(&codecs, section.ptime(), &req.codec, req.ptime);
                if let Some(m) = media_mut(call, ex.to, i) {
                    m.codec_state.state = state;
                }
                edit
            }
            Role::Answer => {
                let state = media_mut(call, ex.from, i).and_then(|m| m.codec_state.state.clone());
                let outcome = match &state {
                    Some(state) => answer(
                        state,
                        &codecs,
                        section.ptime(),
                        &req.codec,
                        req.ptime_reverse,
                    ),
                    None => AnswerOutcome::default(),
                };
                if let Some(m) = media_mut(call, ex.to, i) {
                    m.codec_state.transcode_rx = outcome.from_offerer;
                }
                if let Some(m) = media_mut(call, ex.from, i) {
                    m.codec_state.transcode_rx = outcome.from_answerer;
                }
                outcome.edit
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

fn media_mut(call: &mut Call, leg: LegId, i: usize) -> Option<&mut super::model::Media> {
    call.leg_mut(leg).medias.get_mut(i)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;
    use crate::core::calls::{Calls, Now};
    use crate::core::config::{EngineConfig, Interface};
    use crate::core::plan::{
        CallKey, CallPlan, LocalPort, MediaPlane, PortError, PortKey, PortPair,
    };
    use crate::core::request::IceMode;
    use crate::core::stats::PacketTotals;

    /// Ports from a script; remembers the last plan.
    #[derive(Default)]
    struct Plane {
        ports: Mutex<Vec<u16>>,
        next_key: Mutex<u64>,
        plan: Mutex<Option<CallPlan>>,
    }

    impl MediaPlane for Plane {
        fn allocate_pair(&self, iface: &Interface) -> Result<PortPair, PortError> {
            let port = self.ports.lock().unwrap().remove(0);
            let mut k = self.next_key.lock().unwrap();
            *k += 2;
            let lp = |key, p| LocalPort {
                key: PortKey(key),
                addr: SocketAddr::new(iface.local, p),
            };
            Ok(PortPair {
                rtp: lp(*k - 1, port),
                rtcp: lp(*k, port + 1),
            })
        }
        fn apply(&self, plan: CallPlan) {
            *self.plan.lock().unwrap() = Some(plan);
        }
        fn remove(&self, _call: CallKey) {}
        fn release(&self, _ports: &[PortKey]) {}
        fn totals(&self) -> PacketTotals {
            PacketTotals::default()
        }
    }

    fn crlf(s: &str) -> String {
        s.lines().map(|l| format!("{l}\r\n")).collect()
    }

    fn now() -> Now {
        Now {
            mono: Instant::now(),
            unix_us: 1_800_000_000_000_000,
        }
    }

    /// Example C/D's offer (captures/ex5.out).
    const OFFER_C: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

    const ANSWER_OPUS: &str = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

    fn setup(ports: &[u16]) -> (Calls, Arc<Plane>) {
        let plane = Arc::new(Plane::default());
        *plane.ports.lock().unwrap() = ports.to_vec();
        (
            Calls::new(Arc::new(EngineConfig::default()), plane.clone()),
            plane,
        )
    }

    fn req(sdp: &str, to_tag: Option<&str>, codec: CodecOptions) -> OfferAnswer {
        OfferAnswer {
            call_id: "call-tc-1".into(),
            from_tag: "tagA".into(),
            to_tag: to_tag.map(Into::into),
            sdp: crlf(sdp),
            ice: IceMode::Remove,
            codec,
            ..Default::default()
        }
    }

    fn transcode(list: &[&str]) -> CodecOptions {
        CodecOptions {
            transcode: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn sdp_codec(pt: u8, name: &str, rate: u32, ch: Option<u8>, fmtp: Option<&str>) -> SdpCodec {
        SdpCodec {
            pt,
            name: name.into(),
            clock_rate: rate,
            channels: ch,
            fmtp: fmtp.map(Into::into),
        }
    }

    /// Example D of the reference, byte for byte: offer adds opus (PT 96) and
    /// telephone-event/48000 (PT 97); the answer accepting only opus gives the caller PCMU
    /// and engages a transcoder in both directions.
    #[test]
    fn example_d_transcode_opus() {
        let (mut calls, plane) = setup(&[30168, 30152]);
        let offer = calls
            .offer(&req(OFFER_C, None, transcode(&["opus"])), now())
            .unwrap();
        assert_eq!(
            offer.sdp,
            crlf(
                "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30152 RTP/AVP 0 96 97 101
a=rtpmap:0 PCMU/8000
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/48000
a=fmtp:97 0-15
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30153
"
            )
        );
        assert_eq!(offer.sdp.len(), 266);
        // Before the answer nothing is transcoded.
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        assert!(plan.streams.iter().all(|s| s.transcode.is_none()));

        let answer = calls
            .answer(
                &req(ANSWER_OPUS, Some("tagB"), CodecOptions::default()),
                now(),
            )
            .unwrap();
        assert_eq!(
            answer.sdp,
            crlf(
                "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30168 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30169
"
            )
        );
        assert_eq!(answer.sdp.len(), 181);
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
        // RTP and RTCP port of each side carry the spec.
        assert_eq!(specs.len(), 4);
        let a_to_b = specs.iter().find(|s| s.input.pt == 0).unwrap();
        assert_eq!(a_to_b.input.codec.name(), "PCMU");
        assert_eq!(
            (a_to_b.input.event_pt, a_to_b.input.ptime_ms),
            (Some(101), 20)
        );
        assert_eq!(a_to_b.output.codec.name(), "opus");
        // B answered telephone-event only at 8000, none at opus' 48000: tones in-band.
        assert_eq!((a_to_b.output.pt, a_to_b.output.event_pt), (96, None));
        let b_to_a = specs.iter().find(|s| s.input.pt == 96).unwrap();
        assert_eq!((b_to_a.output.pt, b_to_a.output.event_pt), (0, Some(101)));
    }

    /// The Kamailio capture: `codec-mask-PCMU codec-transcode-PCMA codec-transcode-G729`.
    #[test]
    fn kamailio_mask_and_transcode_flags() {
        let (mut calls, plane) = setup(&[30200, 30186]);
        let opts = CodecOptions {
            mask: vec!["PCMU".into()],
            transcode: vec!["PCMA".into(), "G729".into()],
            ..Default::default()
        };
        let offer = calls.offer(&req(OFFER_C, None, opts), now()).unwrap();
        assert_eq!(
            offer.sdp,
            crlf(
                "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30186 RTP/AVP 8 18 101
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30187
"
            )
        );
        // B picks G.729 at 10 ms: A gets its masked PCMU back, transcoded both ways.
        let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 18 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=ptime:10
a=sendrecv
";
        let reply = calls
            .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
            .unwrap();
        assert!(
            reply.sdp.contains("m=audio 30200 RTP/AVP 0 101\r\n"),
            "{}",
            reply.sdp
        );
        assert!(reply.sdp.contains("a=ptime:20\r\n"));
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        let a_to_b = plan
            .streams
            .iter()
            .filter_map(|s| s.transcode)
            .find(|s| s.input.pt == 0)
            .unwrap();
        assert_eq!(
            (
                a_to_b.output.codec.name(),
                a_to_b.output.pt,
                a_to_b.output.ptime_ms
            ),
            ("G729", 18, 10)
        );
        assert_eq!(a_to_b.output.event_pt, Some(101));
    }

    /// When the answerer picks a codec the offerer has, nothing is transcoded and the codecs
    /// we added are dropped from the answer.
    #[test]
    fn shared_codec_means_passthrough() {
        let (mut calls, plane) = setup(&[30010, 30020]);
        calls
            .offer(&req(OFFER_C, None, transcode(&["PCMA"])), now())
            .unwrap();
        let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";
        let reply = calls
            .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
            .unwrap();
        assert!(
            reply.sdp.contains("m=audio 30010 RTP/AVP 0 101\r\n"),
            "{}",
            reply.sdp
        );
        assert!(!reply.sdp.contains("PCMA"));
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        assert!(plan.streams.iter().all(|s| s.transcode.is_none()));
    }

    /// `detect DTMF` with a caller that has no telephone-event: the callee is offered one,
    /// and the transcoder from the caller detects in-band digits toward it.
    #[test]
    fn detect_dtmf_offers_events_and_enables_detection() {
        const OFFER_PCMU: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
";
        // Transcoded: PCMU caller, Opus callee with telephone-event/48000.
        let (mut calls, plane) = setup(&[30200, 30210]);
        let opts = CodecOptions {
            detect_dtmf: true,
            ..transcode(&["opus"])
        };
        let offer = calls.offer(&req(OFFER_PCMU, None, opts), now()).unwrap();
        assert!(
            offer.sdp.contains("m=audio 30210 RTP/AVP 0 96 97 98\r\n")
                && offer.sdp.contains("a=rtpmap:97 telephone-event/48000\r\n")
                && offer.sdp.contains("a=rtpmap:98 telephone-event/8000\r\n"),
            "{}",
            offer.sdp
        );
        let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 96 97
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/48000
a=sendrecv
";
        let reply = calls
            .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
            .unwrap();
        assert!(
            reply.sdp.contains("m=audio 30200 RTP/AVP 0\r\n"),
            "{}",
            reply.sdp
        );
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
        let a_to_b = specs.iter().find(|s| s.input.pt == 0).unwrap();
        assert_eq!(a_to_b.output.event_pt, Some(97));
        assert!(a_to_b.detect_dtmf);
        let b_to_a = specs.iter().find(|s| s.input.pt == 96).unwrap();
        assert!(!b_to_a.detect_dtmf);

        // Same codec on both sides: detection still needs the audio decoded.
        let (mut calls, plane) = setup(&[30220, 30230]);
        let opts = CodecOptions {
            detect_dtmf: true,
            ..CodecOptions::default()
        };
        let offer = calls.offer(&req(OFFER_PCMU, None, opts), now()).unwrap();
        assert!(
            offer.sdp.contains("m=audio 30230 RTP/AVP 0 96\r\n"),
            "{}",
            offer.sdp
        );
        let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
a=sendrecv
";
        let reply = calls
            .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
            .unwrap();
        // The caller never offered telephone-event: it does not get one back.
        assert!(
            reply.sdp.contains("m=audio 30220 RTP/AVP 0\r\n"),
            "{}",
            reply.sdp
        );
        assert!(!reply.sdp.contains("a=ptime"));
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
        let a_to_b = specs
            .iter()
            .find(|s| s.output.event_pt == Some(96))
            .unwrap();
        assert!(a_to_b.detect_dtmf && a_to_b.input.pt == 0 && a_to_b.output.pt == 0);
    }

    #[test]
    fn always_transcode_keeps_the_offerers_codec() {
        let (mut calls, plane) = setup(&[30010, 30020]);
        let opts = CodecOptions {
            always_transcode: true,
            ..transcode(&["PCMA"])
        };
        calls.offer(&req(OFFER_C, None, opts), now()).unwrap();
        let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 8 0
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=sendrecv
";
        let reply = calls
            .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
            .unwrap();
        assert!(
            reply.sdp.contains("m=audio 30010 RTP/AVP 0 101\r\n"),
            "{}",
            reply.sdp
        );
        let plan = plane.plan.lock().unwrap().clone().unwrap();
        let a_to_b = plan.streams.iter().find_map(|s| s.transcode).unwrap();
        assert_eq!(a_to_b.input.codec.name(), "PCMU");
        assert_eq!(a_to_b.output.codec.name(), "PCMA");
        // B has no telephone-event: digits from A are rendered in-band.
        assert_eq!(a_to_b.output.event_pt, None);
    }

    fn list(v: &[SdpCodec]) -> Vec<String> {
        v.iter()
            .map(|c| format!("{}:{}/{}", c.pt, c.name, c.clock_rate))
            .collect()
    }

    fn offer_list() -> Vec<SdpCodec> {
        vec![
            sdp_codec(0, "PCMU", 8000, None, None),
            sdp_codec(8, "PCMA", 8000, None, None),
            sdp_codec(18, "G729", 8000, None, None),
            sdp_codec(96, "opus", 48000, Some(2), None),
            sdp_codec(101, "telephone-event", 8000, None, Some("0-15")),
        ]
    }

    #[test]
    fn strip_offer_except_and_all() {
        let opts = |f: fn(&mut CodecOptions)| {
            let mut o = CodecOptions::default();
            f(&mut o);
            o
        };
        let run = |o: &CodecOptions| {
            let (edit, _) = offer(&offer_list(), None, o, None);
            list(&edit.codecs.unwrap_or_else(offer_list))
        };
        assert_eq!(
            run(&opts(|o| o.strip = vec!["pcma".into(), "opus/48000".into()])),
            ["0:PCMU/8000", "18:G729/8000", "101:telephone-event/8000"]
        );
        assert_eq!(
            run(&opts(|o| {
                o.strip = vec!["all".into()];
                o.except = vec!["G729".into(), "PCMU".into()];
            })),
            ["0:PCMU/8000", "18:G729/8000", "101:telephone-event/8000"]
        );
        assert_eq!(
            run(&opts(|o| {
                o.strip = vec!["full".into()];
                o.offer = vec!["G729".into(), "PCMU".into()];
            })),
            ["18:G729/8000", "0:PCMU/8000", "101:telephone-event/8000"]
        );
        // `offer` alone only reorders.
        assert_eq!(
            run(&opts(|o| o.offer = vec!["opus".into()])),
            [
                "96:opus/48000",
                "0:PCMU/8000",
                "8:PCMA/8000",
                "18:G729/8000",
                "101:telephone-event/8000"
            ]
        );
        // Stripping every 8 kHz codec drops the 8 kHz telephone-event too.
        assert_eq!(
            run(&opts(
                |o| o.strip = vec!["PCMU".into(), "PCMA".into(), "G729".into()]
            )),
            ["96:opus/48000"]
        );
        // Transcode to a codec already there adds nothing; unknown codecs are ignored.
        assert_eq!(
            run(&opts(|o| o.transcode = vec!["PCMA".into(), "AMR".into()])),
            list(&offer_list())
        );
        // `ignore`d codecs survive strip all.
        assert_eq!(
            run(&opts(|o| {
                o.strip = vec!["all".into()];
                o.ignore = vec!["PCMA".into()];
            })),
            ["8:PCMA/8000", "101:telephone-event/8000"]
        );
    }

    #[test]
    fn added_codecs_avoid_used_payload_types() {
        let offered = vec![
            sdp_codec(0, "PCMU", 8000, None, None),
            sdp_codec(96, "iLBC", 8000, None, None),
            sdp_codec(97, "telephone-event", 8000, None, None),
            sdp_codec(18, "G729", 8000, None, None),
        ];
        let opts = CodecOptions {
            strip: vec!["G729".into()],
            transcode: vec!["G729".into(), "opus".into()],
            ..Default::default()
        };
        let (edit, state) = offer(&offered, Some(20), &opts, Some(30));
        // A's numbers stay reserved on B's side even for a stripped codec (A may still send
        // PT 18), so the added G.729 gets a dynamic PT.
        assert_eq!(
            list(&edit.codecs.unwrap()),
            [
                "0:PCMU/8000",
                "96:iLBC/8000",
                "98:G729/8000",
                "99:opus/48000",
                "100:telephone-event/48000",
                "97:telephone-event/8000"
            ]
        );
        assert_eq!(edit.ptime, Some(30));
        let state = state.unwrap();
        assert_eq!(state.offerer.len(), 3);
        assert_eq!((state.offerer_ptime, state.ptime), (Some(20), Some(30)));
    }

    #[test]
    fn no_options_no_state() {
        let (edit, state) = offer(&offer_list(), None, &CodecOptions::default(), None);
        assert_eq!(edit, SdpEdit::default());
        assert!(state.is_none());
    }

    #[test]
    fn forced_ptime_repacketises_a_shared_codec() {
        let (_, state) = offer(&offer_list(), Some(20), &CodecOptions::default(), Some(30));
        let b = vec![sdp_codec(8, "PCMA", 8000, None, None)];
        let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
        let ab = out.from_offerer.unwrap();
        assert_eq!((ab.input.codec.name(), ab.input.ptime_ms), ("PCMA", 20));
        assert_eq!((ab.output.codec.name(), ab.output.ptime_ms), ("PCMA", 30));
        assert_eq!(out.from_answerer.unwrap().output.ptime_ms, 20);
        assert_eq!(out.edit.ptime, Some(20));
    }

    #[test]
    fn single_codec_and_set_bitrate() {
        let opts = CodecOptions {
            transcode: vec!["opus".into()],
            set: vec!["opus/48000/2/24000".into()],
            single_codec: true,
            ..Default::default()
        };
        let a = vec![
            sdp_codec(0, "PCMU", 8000, None, None),
            sdp_codec(8, "PCMA", 8000, None, None),
        ];
        let (_, state) = offer(&a, None, &opts, None);
        let state = state.unwrap();
        // Shared codecs, single codec: only the first one goes back.
        let b = vec![
            sdp_codec(8, "PCMA", 8000, None, None),
            sdp_codec(0, "PCMU", 8000, None, None),
        ];
        let out = answer(&state, &b, None, &CodecOptions::default(), None);
        assert_eq!(list(&out.edit.codecs.unwrap()), ["8:PCMA/8000"]);
        assert!(out.from_offerer.is_none());
        // Opus chosen: the encoder toward B gets the bitrate from `set`.
        let b = vec![sdp_codec(96, "opus", 48000, Some(2), None)];
        let out = answer(&state, &b, None, &CodecOptions::default(), None);
        assert_eq!(out.from_offerer.unwrap().output.bitrate, Some(24000));
        assert_eq!(list(&out.edit.codecs.unwrap()), ["0:PCMU/8000"]);
    }

    #[test]
    fn codec_spec_parsing() {
        let s = Spec::parse("iLBC/8000/1///mode--30").unwrap();
        assert_eq!(
            (s.clock, s.channels, s.bitrate, s.ptime, s.fmtp.as_deref()),
            (Some(8000), Some(1), None, None, Some("mode=30"))
        );
        assert!(Spec::parse("").is_none());
        assert!(Spec::parse("PCMU/x").is_none());
        assert!(Spec::parse("all").unwrap().is_all());
    }
}
