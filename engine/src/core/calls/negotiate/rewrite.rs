//! The SDP passed on to the receiver of an offer or answer: our addresses, ports, ICE,
//! rtcp-mux, direction and origin in place of the sender's.

use super::ice::{below_their_candidates, random_token, ICE_PWD_LEN, ICE_UFRAG_LEN};
use super::{Exchange, Role};
use crate::core::calls::model::{Call, LegId, TransportProfile};
use crate::core::calls::Calls;
use crate::core::config::Interface;
use crate::core::request::{IceMode, OfferAnswer};
use crate::core::sdp::{IceRewrite, MediaRewrite, OriginRewrite, Sdp, SdpRewrite};

impl Calls {
    pub(super) fn build_rewrite(
        &self,
        call: &mut Call,
        ex: Exchange,
        sdp: &Sdp,
        req: &OfferAnswer,
        ice_to: &[bool],
        protocols: &[Option<TransportProfile>],
    ) -> SdpRewrite {
        let Exchange { to, role, .. } = ex;
        let to_interface = call.leg(to).interface;
        let iface: Interface = self.config.interfaces[to_interface].clone();
        let public = iface.public();
        let mut media = Vec::with_capacity(sdp.media.len());
        for (i, section) in sdp.media.iter().enumerate() {
            let target = &mut call.leg_mut(to).medias[i];
            let Some(ports) = target.ports.filter(|_| section.m.port != 0) else {
                media.push(MediaRewrite::rejected(public));
                continue;
            };
            let mux = match role {
                Role::Offer => target.rtcp_mux_offered,
                Role::Answer => target.rtcp_mux,
            };
            let relay = req.ice == IceMode::ForceRelay;
            // As a relay candidate only, the party's own a=rtcp stays; ours is written only
            // where rtcp-mux is settled (rtpengine's `insert_rtcp_attr` cases).
            let settled_mux = mux && (role == Role::Answer || req.rtcp_mux.require);
            let rtcp_port = if req.flags.no_rtcp_attribute || (relay && !settled_mux) {
                None
            } else if mux && (role == Role::Answer || req.rtcp_mux.require) {
                Some(ports.rtp.addr.port())
            } else {
                Some(ports.rtcp.addr.port())
            };
            let want_ice = ice_to.get(i).copied().unwrap_or(false);
            target.ice = want_ice;
            // In passthrough the parties check each other; we answer no checks.
            target.ice_active = want_ice && !target.ice_passthrough;
            target.ice_we_offered = role == Role::Offer;
            let ice = if want_ice && target.ice_passthrough {
                let mut candidates = target.ice_candidates(to_interface, &self.ice_bases);
                if mux && (role == Role::Answer || req.rtcp_mux.require) {
                    candidates.retain(|c| c.component == 1);
                }
                for c in &mut candidates {
                    c.relay = relay;
                }
                below_their_candidates(&mut candidates, section, relay);
                IceRewrite::Alongside { candidates }
            } else if want_ice {
                let ufrag = target
                    .ice_ufrag
                    .get_or_insert_with(|| random_token(ICE_UFRAG_LEN))
                    .clone();
                let pwd = target
                    .ice_pwd
                    .get_or_insert_with(|| random_token(ICE_PWD_LEN))
                    .clone();
                let mut candidates = target.ice_candidates(to_interface, &self.ice_bases);
                if mux && (role == Role::Answer || req.rtcp_mux.require) {
                    // RTCP will share the RTP port: no candidate for component 2.
                    candidates.retain(|c| c.component == 1);
                }
                if relay {
                    // Type preference 0 (RFC 8445 §5.1.2.2 leaves relay lowest).
                    for c in &mut candidates {
                        c.relay = true;
                        c.priority &= 0x00ff_ffff;
                    }
                }
                IceRewrite::Replace {
                    ufrag,
                    pwd,
                    candidates,
                    trickle: target.trickle_ice,
                }
            } else {
                IceRewrite::Remove
            };
            media.push(MediaRewrite {
                address: public,
                port: ports.rtp.addr.port(),
                rtcp_port,
                full_rtcp_attribute: req.flags.full_rtcp_attribute,
                rtcp_mux: if relay { settled_mux } else { mux },
                protocol: protocols.get(i).cloned().flatten().map(|p| p.to_string()),
                ice,
                direction: cannot_receive(sdp, i, req)
                    .then(|| sdp.media_direction(i).without_receive()),
                zero_address: !req.replace.zero_address && !trickle_placeholder(sdp, i, req),
                keep_transport: relay,
            });
        }
        // The first o= username and s= name sent to a party stay the ones it sees when the
        // proxy asks to replace them (rtpengine keeps both per monologue in `sdp_replace`),
        // so a re-INVITE from a different origin does not look like a new session.
        let receiver = call.leg_mut(to);
        if receiver.sdp_username.is_none() {
            receiver.sdp_username = sdp.origin().map(|o| o.username);
        }
        if receiver.sdp_session_name.is_none() {
            receiver.sdp_session_name = sdp.session_name().map(str::to_owned);
        }
        let username = if req.replace.origin_full {
            Some("-".to_owned())
        } else if req.replace.username {
            receiver.sdp_username.clone()
        } else {
            None
        };
        let origin = OriginRewrite {
            address: ((req.replace.origin || req.replace.origin_full)
                && req.ice != IceMode::ForceRelay)
                .then_some(public),
            username,
            session_id: None,
            bump_version: false,
        };
        SdpRewrite {
            origin,
            session_name: receiver
                .sdp_session_name
                .clone()
                .filter(|_| req.replace.session_name),
            connection: public,
            media,
            loop_protect: req.flags.loop_protect,
            strip_extmap: req.flags.strip_extmap,
            session_connection: req.replace.session_connection,
        }
    }
}

/// A party whose media address is the zero address (the pre-RFC 3264 hold) cannot receive:
/// its direction loses the receiving half in the SDP passed on, unless the zero address is
/// only the trickle-ICE placeholder (rtpengine's `monologue_offer_answer`). A `media address`
/// given by the proxy replaces the SDP's.
fn cannot_receive(sdp: &Sdp, i: usize, req: &OfferAnswer) -> bool {
    if req.flags.original_sendrecv {
        // The proxy wants the party's own direction attributes passed on unchanged.
        return false;
    }
    let address = req.media_address.or_else(|| sdp.media_connection(i));
    address.is_some_and(|a| a.is_unspecified())
        && !sdp.media[i].trickle_ice(sdp.session_of(i), address)
}

/// The sender's zero address is the trickle-ICE placeholder (port 9, trickle announced): its
/// real addresses come later as candidates, so the receiver gets our address in c=, not the
/// zero one (rtpengine's `ZERO_ADDR` rule in `__init_streams`).
fn trickle_placeholder(sdp: &Sdp, i: usize, req: &OfferAnswer) -> bool {
    let address = req.media_address.or_else(|| sdp.media_connection(i));
    sdp.media[i].m.port == 9
        && address.is_some_and(|a| a.is_unspecified())
        && sdp.media[i].trickle_ice(sdp.session_of(i), address)
}

/// `replace: SDP version`: the o= version we send a party goes up by one whenever the body
/// differs from the last one we sent it (every time with `force-increment-sdp-ver`).
pub(super) fn bump_origin_version(out: &mut Sdp, call: &mut Call, to: LegId, force: bool) {
    let Some(origin) = out.origin() else { return };
    let Ok(version) = origin.version.parse::<u64>() else {
        return;
    };
    let leg = call.leg_mut(to);
    let next = match leg.sdp_version_out {
        Some(prev) => {
            out.set_origin_version(prev);
            let changed = leg.sdp_body_out != Some(body_digest(&out.write()));
            if force || changed {
                // The body is remembered with the version it goes out with, so the next
                // SDP like it keeps that version (rtpengine's `sdp_version_check`).
                out.set_origin_version(prev + 1);
                leg.sdp_body_out = Some(body_digest(&out.write()));
                prev + 1
            } else {
                prev
            }
        }
        None => {
            // Every session of the body gets the first one's version (rtpengine keeps one
            // version per party), before the body is remembered.
            out.set_origin_version(version);
            leg.sdp_body_out = Some(body_digest(&out.write()));
            version
        }
    };
    leg.sdp_version_out = Some(next);
    out.set_origin_version(next);
}

/// FNV-1a over an SDP body: tells whether it changed, stable across builds (it is stored
/// with the call for a successor engine), without keeping the body itself.
fn body_digest(body: &str) -> u64 {
    body.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod digest_tests {
    use super::body_digest;

    /// FNV-1a 64 reference values (the digest is stored, so it must never change).
    #[test]
    fn body_digest_is_fnv1a_64() {
        assert_eq!(body_digest(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(body_digest("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(body_digest("foobar"), 0x8594_4171_f739_67e8);
    }
}
