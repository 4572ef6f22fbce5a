//! The T.38 gateway in offer/answer (rtpengine: the T.38 branches of
//! `__update_media_protocol` in daemon/call.c, `codec_store_synthesise` and the synthetic
//! T.38 answer of `codec_store_answer` in daemon/codec.c).
//!
//! An offer with `T.38: force` from an audio party engages a gateway: the other party is
//! offered `m=image … udptl t38` with our T.38 attributes. `T.38: decode` from a T.38 party
//! does the reverse: the other party is offered audio, PCMU and PCMA (or the codecs it used
//! before in this call, or those of a `transcode` list). The answer settles the codec the
//! gateway speaks on the audio side: the offerer's first codec we support when the offerer
//! is the audio party, the answerer's otherwise. Like rtpengine's generator media, the
//! sections the gateway writes carry none of the sender's attributes (only its direction),
//! so no T.38 parameter or codec of one side leaks to the other.
//!
//! The gateway stays through re-INVITEs while each party keeps sending its kind of media,
//! and goes with `T.38: stop` or when a party changes kind (media passes through again).

use super::codecs::{listed_codecs, transcodable};
use super::model::{Call, LegId, T38Side};
use super::negotiate::{Exchange, Role};
use crate::core::request::OfferAnswer;
use crate::core::sdp::{Codec, Direction, Line, MediaLine, MediaSection, Sdp};
use crate::core::t38::{is_audio_rtp_section, is_t38_section, T38Options};

/// PCMU then PCMA: what a gateway offers an audio party by default (rtpengine's
/// `codec_store_synthesise`).
fn default_codecs() -> Vec<Codec> {
    [0u8, 8]
        .into_iter()
        .filter_map(Codec::from_static)
        .collect()
}

fn side(call: &Call, leg: LegId, i: usize) -> Option<&T38Side> {
    call.leg(leg).medias.get(i).and_then(|m| m.t38.as_ref())
}

fn set_side(call: &mut Call, leg: LegId, i: usize, t38: Option<T38Side>) {
    if let Some(m) = call.leg_mut(leg).medias.get_mut(i) {
        m.t38 = t38;
        // The gateway replaces any transcoder of the media (and the end of one ends it).
        m.codec_state.transcode_rx = None;
    }
}

/// Decide the gateway for every section of this exchange and replace, in `src` (the
/// sender's SDP after codec negotiation), the sections the gateway rewrites. `sdp` is the
/// sender's SDP as received.
pub(super) fn settle(call: &mut Call, ex: Exchange, sdp: &Sdp, src: &mut Sdp, req: &OfferAnswer) {
    let Exchange { from, to, role } = ex;
    for (i, section) in sdp.media.iter().enumerate() {
        if section.m.port == 0 || i >= src.media.len() {
            continue;
        }
        match role {
            Role::Offer => offer(call, from, to, i, section, req),
            Role::Answer => answer(call, from, to, i, section),
        }
        let out = match side(call, to, i) {
            Some(T38Side::Fax(opts)) => image_section(section, opts),
            Some(T38Side::Audio(codec)) => {
                let codecs = match (role, codec) {
                    (Role::Answer, Some(c)) => vec![c.clone()],
                    _ => offered_codecs(call, to, i, req),
                };
                audio_section(section, &codecs)
            }
            None => continue,
        };
        src.media[i] = out;
    }
}

fn offer(
    call: &mut Call,
    from: LegId,
    to: LegId,
    i: usize,
    section: &MediaSection,
    req: &OfferAnswer,
) {
    let flags = &req.t38;
    if flags.stop {
        set_side(call, from, i, None);
        set_side(call, to, i, None);
        return;
    }
    if flags.decode && is_t38_section(section) {
        let opts = T38Options::from_sdp(section, flags);
        set_side(call, from, i, Some(T38Side::Fax(opts)));
        set_side(call, to, i, Some(T38Side::Audio(None)));
        return;
    }
    if flags.force && is_audio_rtp_section(section) {
        set_side(call, from, i, Some(T38Side::Audio(None)));
        set_side(call, to, i, Some(T38Side::Fax(T38Options::ours(flags))));
        return;
    }
    // A re-offer keeps the gateway while the sender sends what it sent before.
    let keeps = match side(call, from, i) {
        Some(T38Side::Fax(_)) => is_t38_section(section),
        Some(T38Side::Audio(_)) => is_audio_rtp_section(section),
        None => return,
    };
    if !keeps {
        set_side(call, from, i, None);
        set_side(call, to, i, None);
    }
}

/// `from` answers the offer `to` made through the gateway.
fn answer(call: &mut Call, from: LegId, to: LegId, i: usize, section: &MediaSection) {
    match side(call, to, i) {
        // The offerer faxes over audio and the answerer took T.38: the offerer gets its own
        // first codec we support.
        // The gateway sends the answerer what its SDP asks for (error correction, datagram
        // size), with the modem restrictions of the offer's flags.
        Some(T38Side::Audio(_)) if is_t38_section(section) => {
            let codec = supported_first(&call.leg(to).medias[i].codecs);
            let restrictions = match side(call, from, i) {
                Some(T38Side::Fax(opts)) => opts.restrictions(),
                _ => Default::default(),
            };
            let opts = T38Options::from_sdp(section, &restrictions);
            set_side(call, from, i, Some(T38Side::Fax(opts)));
            set_side(call, to, i, Some(T38Side::Audio(codec)));
        }
        // The offerer speaks T.38 and the answerer took audio: the gateway speaks the
        // answerer's first codec we support.
        Some(T38Side::Fax(_)) if is_audio_rtp_section(section) => {
            let codec = supported_first(&section.codecs());
            set_side(call, from, i, Some(T38Side::Audio(codec)));
        }
        // The answerer refused the conversion (answered with the offerer's kind of media):
        // no gateway, the media passes through.
        Some(_) => {
            set_side(call, from, i, None);
            set_side(call, to, i, None);
        }
        None => {}
    }
}

/// The first codec of `codecs` the gateway can decode and encode.
fn supported_first(codecs: &[Codec]) -> Option<Codec> {
    codecs.iter().find(|c| transcodable(c).is_some()).cloned()
}

/// The codecs offered to the audio party `to`: a `transcode` list if given, else the
/// supported codecs the party used before in this call, else PCMU and PCMA.
fn offered_codecs(call: &Call, to: LegId, i: usize, req: &OfferAnswer) -> Vec<Codec> {
    let listed = listed_codecs(&req.codec.transcode);
    if !listed.is_empty() {
        return listed;
    }
    let known: Vec<Codec> = call
        .leg(to)
        .medias
        .get(i)
        .map(|m| {
            m.codecs
                .iter()
                .filter(|c| transcodable(c).is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if known.is_empty() {
        default_codecs()
    } else {
        known
    }
}

/// The sender's lines a generated section keeps: everything but attributes (c=, b=, i=,
/// k=), and the direction attributes.
fn kept_lines(section: &MediaSection) -> Vec<Line> {
    section
        .lines
        .iter()
        .filter(|l| match l.attr() {
            None => true,
            Some((name, _)) => Direction::from_name(name).is_some(),
        })
        .cloned()
        .collect()
}

/// The T.38 section the gateway offers or answers with.
fn image_section(section: &MediaSection, opts: &T38Options) -> MediaSection {
    let mut lines = kept_lines(section);
    let at = lines
        .iter()
        .position(|l| l.kind == b'a')
        .unwrap_or(lines.len());
    lines.splice(
        at..at,
        opts.sdp_attributes().into_iter().map(Line::attribute),
    );
    MediaSection {
        m: MediaLine {
            kind: "image".to_owned(),
            port: section.m.port,
            port_count: None,
            proto: "udptl".to_owned(),
            formats: vec!["t38".to_owned()],
            trailing_space: false,
        },
        lines,
    }
}

/// The audio section the gateway offers or answers with.
fn audio_section(section: &MediaSection, codecs: &[Codec]) -> MediaSection {
    let mut out = MediaSection {
        m: MediaLine {
            kind: "audio".to_owned(),
            port: section.m.port,
            port_count: None,
            proto: "RTP/AVP".to_owned(),
            formats: Vec::new(),
            trailing_space: false,
        },
        lines: kept_lines(section),
    };
    out.set_codecs(codecs);
    out
}
