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
//!   tracker place them. When an added codec is one B may send and we transcode into A's,
//!   codecs no transcoder handles leave B's list (rtpengine strips them "due to active
//!   transcoding": EVS, iLBC, unknown names; see `kept_when_transcoding`). The state needed
//!   by the answer is kept on B's media ([`CodecState`]).
//! * **Answer** (B's SDP → A): B's list decides. If a codec B accepted is one A offered and
//!   A was not told to keep its own (`accept`, `consume`, `always transcode`), media passes
//!   through untouched, as without options. Otherwise A gets its own preferred codec (one
//!   we can transcode; masked ones count) with its telephone-event, B keeps the codec it
//!   chose, and a transcoder is planned for each direction with each side's payload types.
//!   A forced `ptime` that differs between the sides also engages one (repacketising).
//!
//! Payload type numbers are per side: each [`CodecEnd`](crate::core::transcode::CodecEnd) carries the PT its side uses.

mod answer;
mod offer;

use self::answer::{answer, answered_codecs, plain_answer, rejected_answer};
pub(super) use self::offer::{listed_codecs, offer};

use ngmedia_codecs::{Codec as CodecInfo, CodecKind};

use super::model::{Call, LegId};
use super::negotiate::{Exchange, Role};
use crate::core::request::OfferAnswer;
use crate::core::sdp::{Codec as SdpCodec, Sdp};
use crate::core::transcode::TranscodeSpec;

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

/// Codecs rtpengine transcodes (through libavcodec) that ngmedia does not: they are neither
/// transcoded nor stripped by ngmedia, only relayed, so that an offer reads as rtpengine's.
const RELAYED_LIKE_RTPENGINE: [&str; 2] = ["GSM", "G723"];

/// Whether a codec survives in a list that gets a transcoder. rtpengine keeps a codec it
/// has a definition for with both an encoder and a decoder (`ensure_codec_def`), looked up
/// by encoding name alone; once transcoding is engaged `codec_handlers_update` strips every
/// other one ("Stripping unsupported codec ... due to active transcoding"): EVS (its
/// library is not part of rtpengine's build), iLBC (decoder only), G.726, ISAC, unknown
/// names.
fn kept_when_transcoding(c: &SdpCodec) -> bool {
    is_supplemental(c)
        || ngmedia_codecs::CODECS
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(&c.name))
        || RELAYED_LIKE_RTPENGINE
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&c.name))
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
        // G.729, G.722 and Speex are behind cargo features of the codecs crate: ask it.
        CodecKind::G729 | CodecKind::G722 | CodecKind::Speex => {
            info.decoder().is_ok().then_some(info)
        }
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

fn media_mut(call: &mut Call, leg: LegId, i: usize) -> Option<&mut super::model::Media> {
    call.leg_mut(leg).medias.get_mut(i)
}

#[cfg(test)]
mod tests;
