//! Offer/answer: from one party's SDP to the other party's SDP and a new forwarding plan.
//!
//! Both directions are the same operation: the sender's SDP describes where the sender
//! receives; the reply SDP, delivered to the sender's peer, points the peer at the local
//! sockets facing the peer. An answer differs from an offer only in what it settles
//! (rtcp-mux, the answerer's tag) and in the `ptime` it inherits.
//!
//! The steps live beside this file: `interfaces` (where each party's media is bound),
//! `srtp` (profiles and keying), `ice` (our agent toward each party) and `rewrite` (the SDP
//! passed on).

mod ice;
mod interfaces;
mod rewrite;
mod srtp;

use std::net::SocketAddr;

use self::ice::wants_ice;
pub(super) use self::ice::{
    random_token, settle_ice_agent, ICE_FOUNDATION_LEN, ICE_PWD_LEN, ICE_UFRAG_LEN,
};
use self::interfaces::interface_names;
use self::rewrite::bump_origin_version;
pub(super) use self::srtp::settle_srtp;
use super::model::{AltPorts, Call, Echo, LegId, Media, Move, TransportProfile};
use super::{CallError, Calls, Now};
use crate::core::plan::{LatchPolicy, PortKey, PortPair};
use crate::core::request::{Family, MediaEcho, OfferAnswer};
use crate::core::sdp::Sdp;

/// Which half of the exchange a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Offer,
    Answer,
}

/// One offer or answer: `from` sent the SDP, the reply goes to `to`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    pub from: LegId,
    pub to: LegId,
    pub role: Role,
}

impl Calls {
    /// Run one offer or answer on `call`.
    pub(super) fn negotiate(
        &mut self,
        call: &mut Call,
        ex: Exchange,
        sdp: &Sdp,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<String, CallError> {
        let Exchange { from, to, role } = ex;
        // `sdp-media-remove`: an offer decides what its sender hides from the peer; an SDP
        // from the peer gets placeholders where the other party hid sections.
        if role == Role::Offer {
            call.leg_mut(from).hidden_media =
                super::hidden::hidden_indices(sdp, &req.sdp_media_remove);
        }
        let padded = super::hidden::pad(sdp, call.leg(to));
        let sdp = padded.as_ref().unwrap_or(sdp);
        let from_family = sdp
            .media
            .iter()
            .enumerate()
            .find_map(|(i, _)| sdp.media_connection(i))
            .map(|a| Family::of(&a));
        let (from_if_name, to_if_name) = interface_names(req);
        if call.leg(from).medias.iter().all(|m| m.ports.is_none()) {
            call.leg_mut(from).interface = self.pick_interface(from_if_name, from_family)?;
        }
        if call.leg(to).medias.iter().all(|m| m.ports.is_none()) {
            let family = req.address_family.or(from_family);
            call.leg_mut(to).interface = self.pick_interface(to_if_name, family)?;
        }

        // Whether the receiver of this SDP gets ICE from us, per m= line: then its media is
        // bound on every address of its logical interface, one candidate each.
        let ice_to: Vec<bool> = sdp
            .media
            .iter()
            .enumerate()
            .map(|(i, section)| {
                let receiver = call.leg(to).medias.get(i);
                wants_ice(
                    req.ice,
                    role,
                    section.has_ice(),
                    receiver.map(|m| m.ice),
                    receiver.is_some_and(|m| m.ice && !m.ice_passthrough),
                )
            })
            .collect();
        let to_logical = self.logical_interface(call.leg(to).interface);
        // The receiver's ports belong to the sender's address (rtpengine's endpoint maps):
        // a sender that moved gets the receiver new ports, or earlier ones back.
        let endpoints: Vec<Option<SocketAddr>> = (0..sdp.media.len())
            .map(|i| sender_endpoint(sdp, i, req))
            .collect();
        let moves: Vec<Move> = (0..sdp.media.len())
            .map(|i| match (call.leg(to).medias.get(i), endpoints[i]) {
                (Some(md), Some(ep))
                    if !call.leg(from).hidden_media.contains(&i)
                        && !sdp.media[i].m.passes_untouched() =>
                {
                    // `port latching`, or ICE toward the receiver (unless `no port
                    // latching`): the ports stay whatever the sender's address.
                    let latched =
                        req.flags.port_latching || (ice_to[i] && !req.flags.no_port_latching);
                    md.move_for(ep, latched)
                }
                _ => Move::Stay,
            })
            .collect();

        // Allocate everything first, so a failure leaves the call as it was.
        // (leg, m= index, `Some(interface)` for a socket on another address.)
        let mut wanted: Vec<(LegId, usize, Option<usize>)> = Vec::new();
        for (i, m) in sdp.media.iter().enumerate() {
            // MSRP runs over TCP between the parties themselves: no sockets of ours.
            if m.m.port == 0 || m.m.passes_untouched() || call.leg(from).hidden_media.contains(&i) {
                continue;
            }
            for leg in [from, to] {
                let has = call
                    .leg(leg)
                    .medias
                    .get(i)
                    .is_some_and(|md| md.ports.is_some());
                if !has || (leg == to && moves[i] == Move::New) {
                    wanted.push((leg, i, None));
                }
            }
            if ice_to[i] {
                for &iface in &to_logical[1..] {
                    let has =
                        moves[i] == Move::Stay
                            && call.leg(to).medias.get(i).is_some_and(|md| {
                                md.alt_ports.iter().any(|a| a.interface == iface)
                            });
                    if !has {
                        wanted.push((to, i, Some(iface)));
                    }
                }
            }
        }
        let mut got: Vec<(LegId, usize, Option<usize>, PortPair)> =
            Vec::with_capacity(wanted.len());
        for &(leg, i, alt) in &wanted {
            let iface = &self.config.interfaces[alt.unwrap_or(call.leg(leg).interface)];
            match self.media.allocate_pair(iface) {
                Ok(pair) => got.push((leg, i, alt, pair)),
                Err(e) => {
                    let keys: Vec<PortKey> = got
                        .iter()
                        .flat_map(|(_, _, _, p)| [p.rtp.key, p.rtcp.key])
                        .collect();
                    self.media.release(&keys);
                    return Err(e.into());
                }
            }
        }

        for leg in [from, to] {
            let medias = &mut call.leg_mut(leg).medias;
            for (i, m) in sdp.media.iter().enumerate() {
                if medias.len() <= i {
                    medias.push(Media::new(i as u32 + 1, &m.m.kind, &m.m.proto));
                }
            }
        }
        for (i, mv) in moves.iter().enumerate() {
            if let Some(md) = call.leg_mut(to).medias.get_mut(i) {
                md.move_ports(*mv);
            }
            // `ICE: optional` between two parties that both do ICE: they do it between
            // themselves and the media passes through us untouched (rtpengine's PASSTHRU,
            // which stays for the rest of the call).
            let section = &sdp.media[i];
            if req.ice.passes_through() && ice_to[i] && section.has_ice() && section.m.port != 0 {
                for leg in [from, to] {
                    if let Some(md) = call.leg_mut(leg).medias.get_mut(i) {
                        md.ice_passthrough = true;
                    }
                }
            }
        }
        self.totals.streams += got.iter().filter(|g| g.2.is_none()).count() as u64;
        for (leg, i, alt, pair) in got {
            if let Some(interface) = alt {
                let alts = &mut call.leg_mut(leg).medias[i].alt_ports;
                alts.push(AltPorts {
                    interface,
                    ports: pair,
                });
                // Candidate order: the logical interface's order.
                alts.sort_by_key(|a| to_logical.iter().position(|&x| x == a.interface));
                continue;
            }
            let iface = call.leg(leg).interface;
            let last = &mut self.totals.last_port;
            if last.len() <= iface {
                last.resize(iface + 1, 0);
            }
            last[iface] = pair.rtp.addr.port();
            call.leg_mut(leg).medias[i].ports = Some(pair);
        }
        for (i, ep) in endpoints.iter().enumerate() {
            if let (Some(md), Some(ep)) = (call.leg_mut(to).medias.get_mut(i), ep) {
                md.opened_for(*ep);
            }
        }

        self.learn_from_sdp(call, from, sdp, req);
        if let Some(echo) = req.media_echo {
            // rtpengine's `media echo`: "forward" is towards the receiver of this SDP.
            let (sender, receiver) = match echo {
                MediaEcho::Blackhole => (Echo::Blackhole, Echo::Blackhole),
                MediaEcho::Forward => (Echo::Blackhole, Echo::Reflect),
                MediaEcho::Backward => (Echo::Reflect, Echo::Blackhole),
                MediaEcho::Both => (Echo::Reflect, Echo::Reflect),
            };
            for i in 0..sdp.media.len() {
                call.leg_mut(from).medias[i].echo = sender;
                call.leg_mut(to).medias[i].echo = receiver;
            }
        }
        call.leg_mut(from).sdp_in = Some(req.sdp.clone());
        self.settle_rtcp_mux(call, from, to, sdp, req, role);

        // Codec options, transcoding decisions and ptime (see `codecs`).
        let mut src = super::codecs::edit_sdp(call, ex, sdp, req);
        // A T.38 gateway rewrites the sections it converts (`T.38` flags).
        super::t38::settle(call, ex, sdp, &mut src, req);
        let protocols = settle_srtp(call, ex, &mut src, req, self.dtls.as_ref())?;
        settle_mid(call, ex, &mut src, req);
        if role == Role::Offer && req.flags.trickle_ice {
            // `trickle ICE`: the receiver of the offer is told we trickle (rtpengine's
            // TRICKLE_ICE of its media), from now on.
            for m in call.leg_mut(to).medias.iter_mut() {
                m.trickle_ice = true;
            }
        }
        let rewrite = self.build_rewrite(call, ex, &src, req, &ice_to, &protocols);
        // Without ICE toward the receiver, its sockets on the other addresses go (the plan
        // no longer names them, so the workers close them).
        for (i, want) in ice_to.iter().enumerate() {
            if let Some(m) = call.leg_mut(to).medias.get_mut(i) {
                if !want {
                    m.alt_ports.clear();
                }
            }
        }
        if role == Role::Answer {
            // An answer without ptime inherits the offerer's, as rtpengine's codec handling does.
            for (i, section) in src.media.iter_mut().enumerate() {
                if section.ptime().is_none() {
                    section.set_ptime(call.leg(to).medias.get(i).and_then(|m| m.ptime));
                }
            }
        }
        let mut out = src.rewrite_with_marker(&rewrite, &self.loop_marker);
        if role == Role::Offer {
            if let Some(mode) = req.ice_lite {
                let (receiver, offerer) = mode.sides();
                for m in call.leg_mut(to).medias.iter_mut() {
                    m.ice_lite_self = Some(receiver);
                }
                for m in call.leg_mut(from).medias.iter_mut() {
                    m.ice_lite_self = Some(offerer);
                }
            }
        }
        settle_ice_agent(call, to, &rewrite, &mut out);
        let local = self.config.interfaces[call.leg(to).interface].public();
        super::hidden::finish(&mut out, call.leg(from), call.leg(to), local);
        // The proxy's own attribute edits come last, so they reach our attributes too.
        out.manipulate(&req.sdp_attr);
        if req.replace.sdp_version || req.replace.force_increment_sdp_ver {
            bump_origin_version(&mut out, call, to, req.replace.force_increment_sdp_ver);
        }
        call.last_signal = now.unix_us / 1_000_000;
        call.last_signal_at = now.mono;
        let plan = call.plan();
        self.media.apply(plan);
        Ok(out.write())
    }

    /// Take what the sender's SDP says about where it receives.
    pub(super) fn learn_from_sdp(
        &self,
        call: &mut Call,
        from: LegId,
        sdp: &Sdp,
        req: &OfferAnswer,
    ) {
        let flags = &req.flags;
        let sip_source = flags.sip_source_address && !flags.trust_address;
        let latch = LatchPolicy {
            learn: !flags.asymmetric,
            strict_source: flags.strict_source,
            handover: flags.media_handover,
            learning: Some(
                flags
                    .endpoint_learning
                    .unwrap_or(self.config.endpoint_learning),
            ),
        };
        let leg = call.leg_mut(from);
        if let Some(l) = &req.label {
            leg.label = Some(l.clone());
        }
        if let Some(m) = &req.metadata {
            leg.metadata = Some(m.clone());
        }
        for (i, section) in sdp.media.iter().enumerate() {
            let media = &mut leg.medias[i];
            media.kind = section.m.kind.clone();
            media.protocol_before = Some(std::mem::replace(
                &mut media.protocol,
                TransportProfile::parse(&section.m.proto),
            ));
            media.direction = sdp.media_direction(i);
            media.codec = section
                .codecs()
                .first()
                .map(|c| format!("{}/{}", c.name, c.clock_rate));
            media.codecs = section.codecs();
            media.ptime = section.ptime();
            media.ice_seen = section.has_ice();
            if section.m.port != 0 {
                media.ice = media.ice_seen;
                media.trickle_ice = section.trickle_ice(sdp.session_of(i), sdp.media_connection(i));
            }
            let remote_ice = super::model::RemoteIce::from_sdp(sdp, i);
            let restarted = match (&media.remote_ice, &remote_ice) {
                (Some(old), Some(new)) => old.ufrag != new.ufrag || old.pwd != new.pwd,
                _ => false,
            };
            if restarted {
                // The party restarted ICE (RFC 8445 §9): our side restarts too, with new
                // credentials in the SDP that answers it.
                media.ice_ufrag = None;
                media.ice_pwd = None;
            }
            media.remote_ice = remote_ice;
            media.mid = section.mid().map(str::to_owned);
            // `a=rtcp` naming the RTP port itself multiplexes too (rtpengine's SDP parser),
            // except a trickle-ICE placeholder (port 9 on 0.0.0.0).
            let trickle_placeholder =
                section.m.port == 9 && sdp.media_connection(i).is_some_and(|a| a.is_unspecified());
            media.sdp_rtcp_mux = section.rtcp_mux()
                || (section.m.port != 0
                    && !trickle_placeholder
                    && section.rtcp().is_some_and(|(p, _)| p == section.m.port));
            media.latch = latch;
            let addr = req
                .media_address
                .or(if sip_source { req.received_from } else { None })
                .or_else(|| sdp.media_connection(i))
                .filter(|a| !a.is_unspecified());
            let port = section.m.port;
            let (rtp, rtcp) = match addr {
                Some(a) if port != 0 => {
                    let rtcp = match section.rtcp() {
                        Some((p, rtcp_addr)) => SocketAddr::new(rtcp_addr.unwrap_or(a), p),
                        None => SocketAddr::new(a, port.wrapping_add(1)),
                    };
                    (Some(SocketAddr::new(a, port)), Some(rtcp))
                }
                _ => (None, None),
            };
            // A party that moved (new address in a re-INVITE) must be learned again, unless
            // the proxy pinned the latch with `port latching`.
            if media.advertised_rtp.is_some() && rtp.is_some() && media.advertised_rtp != rtp {
                media.relatch = !req.flags.port_latching;
            }
            media.advertised_rtp = rtp;
            media.advertised_rtcp = rtcp;
        }
    }

    /// Decide rtcp-mux for both parties (RFC 5761; rtpengine's `rtcp-mux` options).
    fn settle_rtcp_mux(
        &self,
        call: &mut Call,
        from: LegId,
        to: LegId,
        sdp: &Sdp,
        req: &OfferAnswer,
        role: Role,
    ) {
        let opt = req.rtcp_mux;
        for i in 0..sdp.media.len() {
            let sender_mux = call.leg(from).medias[i].sdp_rtcp_mux;
            match role {
                Role::Offer => {
                    let offer_to_peer =
                        !opt.reject && !opt.demux && (sender_mux || opt.offer || opt.require);
                    // Kept on the receiver's media: each branch of a forked offer has its
                    // own, and the one that answers decides.
                    let m = &mut call.leg_mut(to).medias[i];
                    m.rtcp_mux_offered = offer_to_peer;
                    m.rtcp_mux_accept =
                        sender_mux && !opt.reject && (opt.accept || opt.demux || opt.require);
                    let s = &mut call.leg_mut(from).medias[i];
                    // Until the answer, the offerer multiplexes only if it said so.
                    if !sender_mux {
                        s.rtcp_mux = false;
                    }
                }
                Role::Answer => {
                    let answerer = &mut call.leg_mut(from).medias[i];
                    answerer.rtcp_mux = sender_mux && answerer.rtcp_mux_offered;
                    let keep = answerer.rtcp_mux || answerer.rtcp_mux_accept;
                    let offerer = &mut call.leg_mut(to).medias[i];
                    offerer.rtcp_mux = offerer.sdp_rtcp_mux && keep;
                }
            }
        }
    }
}

/// Where the sender of an SDP receives the RTP of m= line `i` as far as the receiver's ports
/// are concerned (rtpengine's `rtp_endpoint` of the stream): the SDP's address and port, or
/// the address the proxy gave (`media address`, SIP source). `None` for a rejected line.
fn sender_endpoint(sdp: &Sdp, i: usize, req: &OfferAnswer) -> Option<SocketAddr> {
    let port = sdp.media.get(i)?.m.port;
    if port == 0 {
        return None;
    }
    let sip_source = req.flags.sip_source_address && !req.flags.trust_address;
    let addr = req
        .media_address
        .or(if sip_source { req.received_from } else { None })
        .or_else(|| sdp.media_connection(i))?;
    Some(SocketAddr::new(addr, port))
}

/// `a=mid`: `generate-mid` gives every section of an offer one (its index, as rtpengine
/// numbers them), and an answer carries the offerer's own mid, whatever the answerer wrote
/// (RFC 5888 §9.1: the mids of an answer are those of the offer, and a WebRTC offerer
/// rejects an answer without them): none when the offerer gave none.
fn settle_mid(call: &Call, ex: Exchange, src: &mut Sdp, req: &OfferAnswer) {
    for (i, section) in src.media.iter_mut().enumerate() {
        match ex.role {
            Role::Offer => {
                if section.m.port != 0 && section.mid().is_none() && req.flags.generate_mid {
                    section.set_attributes("mid", &[i.to_string()]);
                }
            }
            Role::Answer => match call.leg(ex.to).medias.get(i).and_then(|m| m.mid.clone()) {
                Some(mid) => section.set_attributes("mid", &[mid]),
                None => section.remove_attributes("mid"),
            },
        }
    }
}
