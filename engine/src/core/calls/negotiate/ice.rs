//! ICE in offer/answer: whether a party gets ICE from us, our candidates' priorities and
//! credentials, and whether we are a full or lite agent toward it.

use rand::distributions::{Alphanumeric, DistString};

use super::Role;
use crate::core::calls::model::{Call, LegId, HOST_TYPE_PREF};
use crate::core::request::IceMode;
use crate::core::sdp::{IceRewrite, Line, Sdp, SdpRewrite};

/// Credentials of our ICE agent: RFC 8445 wants ≥ 24 bits of ufrag and ≥ 128 bits of pwd.
pub(crate) const ICE_UFRAG_LEN: usize = 8;
pub(crate) const ICE_PWD_LEN: usize = 26;
/// Length of our candidate foundations (rtpengine's `ice_foundation`: 16 alphanumerics).
pub(crate) const ICE_FOUNDATION_LEN: usize = 16;

/// Whether the receiver of an SDP gets ICE from us (rtpengine's `__ice_offer`): as the
/// `ICE` key says, else what was settled for the receiver's media (`receiver`: its own
/// SDP's ICE, or an earlier offer's decision), and for a new media what the offerer does.
/// An answer so gives ICE to an offerer that did ICE, whatever the answerer does.
/// With `optional` an answer from a party without ICE takes ICE away from an offerer we do
/// not do ICE with ourselves (`receiver_agent`: it does ICE, and not in passthrough).
pub(super) fn wants_ice(
    mode: IceMode,
    role: Role,
    sender_ice: bool,
    receiver: Option<bool>,
    receiver_agent: bool,
) -> bool {
    match mode {
        IceMode::Remove => false,
        IceMode::Force => true,
        IceMode::Optional | IceMode::ForceRelay => {
            role == Role::Offer || sender_ice || receiver_agent
        }
        IceMode::Default => match role {
            Role::Offer => receiver.unwrap_or(sender_ice),
            Role::Answer => receiver.unwrap_or(false),
        },
    }
}

/// Our candidates go below the party's own (rtpengine's `new_priority` for a media in
/// passthrough): under the lowest-priority candidate of its RTP component of our type (host,
/// or relay with `force-relay`), a local
/// preference one less, or the type preference one less when that was 0; from there the
/// local preference counts up per socket (in rtpengine's unsigned arithmetic, so a second
/// address after a wrap gets priority 2^32 - 1 - … as rtpengine writes it).
pub(super) fn below_their_candidates(
    ours: &mut [crate::core::sdp::IceCandidate],
    section: &crate::core::sdp::MediaSection,
    relay: bool,
) {
    let prio = |t: u32, l: u32, c: u32| {
        (t << 24) | (65535u32.wrapping_sub(l) << 8) | 256u32.wrapping_sub(c)
    };
    let (kind, type_pref) = if relay {
        ("relay", 0)
    } else {
        ("host", HOST_TYPE_PREF)
    };
    let (mut tpref, mut lpref) = (type_pref, 0u32);
    let mut floor = prio(tpref, lpref, 1);
    for value in section.attributes("candidate") {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let (Some(comp), Some(p)) = (f.get(1), f.get(3).and_then(|p| p.parse::<u32>().ok())) else {
            continue;
        };
        let same_type = f.windows(2).any(|w| w[0] == "typ" && w[1] == kind);
        if *comp != "1" || !same_type || p > floor {
            continue;
        }
        tpref = p >> 24;
        lpref = 65535 - ((p & 0x00ff_ff00) >> 8);
        if lpref > 0 {
            lpref -= 1;
        } else {
            tpref = tpref.saturating_sub(1);
            lpref = 65535;
        }
        floor = prio(tpref, lpref, 1);
    }
    let mut seen = [0u32; 3];
    for c in ours.iter_mut() {
        let k = usize::from(c.component.min(2));
        c.priority = prio(tpref, lpref.wrapping_add(seen[k]), u32::from(c.component));
        seen[k] += 1;
    }
}

/// Whether we are a full ICE agent toward party `to` or ICE-lite, for the SDP `out` we
/// write to it with `rewrite` (rtpengine's `ICE_LITE_SELF`). Toward WebRTC (browsers) we
/// are ICE-lite unless `ICE-lite` said otherwise: we answer connectivity checks but never
/// send any (RFC 8445 §2.5), so the browser controls and nominates; `out` then says
/// `a=ice-lite`. Toward anything else we are a full agent as rtpengine is: we check the
/// party's candidates too (the only way to reach an ICE-lite peer, or one behind NAT that
/// only answers).
pub(crate) fn settle_ice_agent(call: &mut Call, to: LegId, rewrite: &SdpRewrite, out: &mut Sdp) {
    let ice_lite = rewrite
        .media
        .iter()
        .zip(&out.media)
        .enumerate()
        .any(|(i, (m, section))| {
            let lite = call
                .leg(to)
                .medias
                .get(i)
                .and_then(|md| md.ice_lite_self)
                .unwrap_or_else(|| section.m.proto.contains("TLS"));
            matches!(m.ice, IceRewrite::Replace { .. }) && lite
        });
    for (i, m) in rewrite.media.iter().enumerate() {
        if let Some(media) = call.leg_mut(to).medias.get_mut(i) {
            media.ice_full = matches!(m.ice, IceRewrite::Replace { .. }) && !ice_lite;
        }
    }
    if ice_lite {
        // Say so, so the peer takes the controlling role and nominates.
        let at = out
            .session
            .iter()
            .position(|l| l.attr().is_some_and(|(n, _)| n == "rtpengine"))
            .unwrap_or(out.session.len());
        out.session.insert(at, Line::attribute("ice-lite"));
    }
}

pub(crate) fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}
