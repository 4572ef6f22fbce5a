//! Offer/answer: from one party's SDP to the other party's SDP and a new forwarding plan.
//!
//! Both directions are the same operation: the sender's SDP describes where the sender
//! receives; the reply SDP, delivered to the sender's peer, points the peer at the local
//! sockets facing the peer. An answer differs from an offer only in what it settles
//! (rtcp-mux, the answerer's tag) and in the `ptime` it inherits.

use std::net::SocketAddr;

use rand::distributions::{Alphanumeric, DistString};
use tracing::warn;

use std::sync::Arc;

use super::model::{
    is_avpf, AltPorts, Call, DtlsMediaState, Echo, Keying, LegId, Media, Move, Setup,
};
use super::{CallError, Calls, Now};
use crate::core::config::Interface;
use crate::core::dtls::{DtlsIdentity, DtlsRole, Fingerprint, HashFunction};
use crate::core::plan::{DtlsParams, LatchPolicy, PortKey, PortPair};
use crate::core::request::{DtlsMode, Family, IceMode, MediaEcho, OfferAnswer};
use crate::core::sdes::{self, CryptoAttr};
use crate::core::sdp::{IceRewrite, Line, MediaRewrite, OriginRewrite, Sdp, SdpRewrite};

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

/// Credentials of our ICE agent: RFC 8445 wants ≥ 24 bits of ufrag and ≥ 128 bits of pwd.
pub(super) const ICE_UFRAG_LEN: usize = 8;
pub(super) const ICE_PWD_LEN: usize = 26;
/// Length of our candidate foundations (rtpengine's `ice_foundation`: 16 alphanumerics).
pub(super) const ICE_FOUNDATION_LEN: usize = 16;

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

    /// The addresses of the logical interface `primary` belongs to (the configured
    /// interfaces of its name), in rtpengine's order: `primary` first, then the others of
    /// its address family, then those of the other family, each in configuration order.
    pub(super) fn logical_interface(&self, primary: usize) -> Vec<usize> {
        let ifs = &self.config.interfaces;
        let Some(p) = ifs.get(primary) else {
            return vec![primary];
        };
        let family = Family::of(&p.local);
        let mut out = vec![primary];
        for same_family in [true, false] {
            out.extend((0..ifs.len()).filter(|&i| {
                i != primary
                    && ifs[i].name == p.name
                    && (Family::of(&ifs[i].local) == family) == same_family
            }));
        }
        out
    }

    /// Pick an interface by logical name, preferring the address family asked for.
    pub(super) fn pick_interface(
        &self,
        name: Option<&str>,
        family: Option<Family>,
    ) -> Result<usize, CallError> {
        let ifs = &self.config.interfaces;
        let named: Vec<usize> = match name {
            // `internal`/`external` are legacy selectors that only mean something when an
            // interface carries that name; otherwise they fall back to the default.
            Some(n) if ifs.iter().any(|i| i.name == n) => {
                (0..ifs.len()).filter(|&i| ifs[i].name == n).collect()
            }
            Some(n) if n != "internal" && n != "external" => {
                return Err(CallError::Invalid(format!("Unknown interface '{n}'")));
            }
            _ => (0..ifs.len()).collect(),
        };
        let by_family = |f: Family| {
            named
                .iter()
                .copied()
                .find(|&i| Family::of(&ifs[i].local) == f)
        };
        match family {
            Some(f) => by_family(f)
                .or_else(|| {
                    // No interface of that family under this name: any interface of it.
                    (0..ifs.len()).find(|&i| Family::of(&ifs[i].local) == f)
                })
                .or(named.first().copied())
                .ok_or_else(|| CallError::Invalid("No usable interface".into())),
            None => named
                .first()
                .copied()
                .ok_or_else(|| CallError::Invalid("No usable interface".into())),
        }
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
                section.m.proto.clone(),
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

    fn build_rewrite(
        &self,
        call: &mut Call,
        ex: Exchange,
        sdp: &Sdp,
        req: &OfferAnswer,
        ice_to: &[bool],
        protocols: &[Option<String>],
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
                protocol: protocols.get(i).cloned().flatten(),
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

/// Whether the receiver of an SDP gets ICE from us (rtpengine's `__ice_offer`): as the
/// `ICE` key says, else what was settled for the receiver's media (`receiver`: its own
/// SDP's ICE, or an earlier offer's decision), and for a new media what the offerer does.
/// An answer so gives ICE to an offerer that did ICE, whatever the answerer does.
/// With `optional` an answer from a party without ICE takes ICE away from an offerer we do
/// not do ICE with ourselves (`receiver_agent`: it does ICE, and not in passthrough).
fn wants_ice(
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
fn below_their_candidates(
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
        ("host", super::model::HOST_TYPE_PREF)
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

/// `direction: [from, to]`, or `from-interface`/`to-interface`.
fn interface_names(req: &OfferAnswer) -> (Option<&str>, Option<&str>) {
    let from = req
        .from_interface
        .as_deref()
        .or(req.direction.first().map(String::as_str));
    let to = req
        .to_interface
        .as_deref()
        .or(req.direction.get(1).map(String::as_str));
    (from, to)
}

/// The profile an answer gives the offerer: its own, unless the answer's
/// `transport-protocol` names another one, or says `accept` and the answerer changed the
/// profile it was offered (rtpengine passes that change on to the offerer).
fn answer_protocol(
    flag: Option<&str>,
    answered: &str,
    offered: Option<&str>,
    own: String,
) -> String {
    match flag {
        Some("accept") if offered.is_some_and(|o| o != answered) && convertible(answered) => {
            answered.to_owned()
        }
        Some(p) if convertible(p) => p.to_owned(),
        _ => own,
    }
}

/// RTP profiles this build converts between: plain RTP, SDES-SRTP and DTLS-SRTP, with or
/// without feedback.
fn convertible(proto: &str) -> bool {
    matches!(
        proto,
        "RTP/AVP"
            | "RTP/AVPF"
            | "RTP/SAVP"
            | "RTP/SAVPF"
            | "UDP/TLS/RTP/SAVP"
            | "UDP/TLS/RTP/SAVPF"
    )
}

/// Plain RTP profiles, which carry `a=crypto` only as opportunistic SRTP (RFC 8643).
fn is_plain_rtp(proto: &str) -> bool {
    matches!(proto, "RTP/AVP" | "RTP/AVPF")
}

/// A profile whose keys travel in `a=crypto` lines (RFC 4568).
fn is_sdes_profile(proto: &str) -> bool {
    matches!(proto, "RTP/SAVP" | "RTP/SAVPF")
}

/// A profile whose keys come from a DTLS handshake (RFC 5764 §8).
fn is_dtls_profile(proto: &str) -> bool {
    matches!(proto, "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF")
}

/// An attribute of the section, else of the session (Firefox writes a=fingerprint there).
fn section_or_session<'a>(src: &'a Sdp, i: usize, name: &str) -> Option<&'a str> {
    src.media[i]
        .attribute(name)
        .or_else(|| src.session_attribute(name))
}

/// Decide SRTP for both parties of each m= line and put the `a=crypto`, `a=setup` and
/// `a=fingerprint` lines the receiver of `src` must see into it (rtpengine's
/// `__generate_crypto`, `sdes_*` and `dtls_*` handling):
///
/// * the sender offers SDES: we take one of its lines (`select_offerer_crypto`) as its key
///   and keep (or make) our own key with the same tag and suite for the answer to it;
/// * the sender offers DTLS (`UDP/TLS/…`, or an SRTP profile with `a=fingerprint` and no
///   usable `a=crypto`): we note its fingerprint and pick our role for the answer (RFC 5763
///   §5: `active` to `actpass` unless `DTLS=passive`); the association starts with the answer;
/// * the sender answers our offer: `a=fingerprint` in the answer selects DTLS (its
///   `a=setup` sets our role), else its `a=crypto` selects our offered SDES key;
/// * the receiver is to get SRTP (`transport-protocol` or the offerer's profile): an SDES
///   receiver gets our crypto offer list (kept across re-offers) and, unless `DTLS=off`,
///   our `a=setup`/`a=fingerprint` too (example C); a DTLS receiver gets setup/fingerprint
///   only; an answer gets our one key line, or our settled setup and fingerprint;
/// * OSRTP (`OSRTP: offer`/`accept`): SDES on RTP/AVP lines, offered or accepted;
/// * a plain receiver gets no crypto, setup or fingerprint lines.
///
/// Returns, per m= line, the profile to write when it differs from the sender's.
pub(super) fn settle_srtp(
    call: &mut Call,
    ex: Exchange,
    src: &mut Sdp,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
) -> Result<Vec<Option<String>>, CallError> {
    let Exchange { from, to, role } = ex;
    let rng_err = |e: sdes::SdesError| CallError::Invalid(e.to_string());
    let write_opts = req.sdes.write_options();
    let mut protocols = Vec::with_capacity(src.media.len());
    for i in 0..src.media.len() {
        let in_proto = src.media[i].m.proto.clone();
        let out_proto = match role {
            // Without `transport-protocol`, the profile chosen toward the receiver stays
            // while the sender keeps its own (rtpengine's `__update_media_protocol`).
            Role::Offer => req
                .transport_protocol
                .clone()
                .filter(|p| convertible(p))
                .or_else(|| {
                    let unchanged = call.leg(from).medias[i].protocol_before.as_deref()
                        == Some(in_proto.as_str());
                    let theirs = call.leg(to).medias.get(i).map(|m| m.protocol.clone());
                    theirs.filter(|p| unchanged && convertible(p))
                })
                .unwrap_or_else(|| in_proto.clone()),
            Role::Answer => {
                let own = call
                    .leg(to)
                    .medias
                    .get(i)
                    .map(|m| m.protocol.clone())
                    .filter(|p| convertible(p))
                    .unwrap_or_else(|| in_proto.clone());
                let offered = call
                    .leg(from)
                    .medias
                    .get(i)
                    .and_then(|m| m.offered_protocol.as_deref());
                answer_protocol(req.transport_protocol.as_deref(), &in_proto, offered, own)
            }
        };
        if let (Role::Offer, Some(m)) = (role, call.leg_mut(to).medias.get_mut(i)) {
            m.offered_protocol = Some(out_proto.clone());
        }
        let passthrough = call
            .leg(to)
            .medias
            .get(i)
            .is_some_and(|m| m.ice_passthrough);
        if passthrough
            || !convertible(&in_proto)
            || !convertible(&out_proto)
            || src.media[i].m.port == 0
        {
            protocols.push(None);
            continue;
        }
        let lines: Vec<CryptoAttr> = src.media[i]
            .attributes("crypto")
            .filter_map(|v| CryptoAttr::parse(v).ok())
            .collect();
        let sender_fp = section_or_session(src, i, "fingerprint").and_then(|v| {
            Fingerprint::parse(v)
                .map_err(|e| warn!(media = i + 1, error = %e, "ignoring a=fingerprint"))
                .ok()
        });
        let sender_setup = section_or_session(src, i, "setup").and_then(Setup::parse);

        let sender_media = &mut call.leg_mut(from).medias[i];
        // OSRTP (RFC 8643): a=crypto on an RTP/AVP line offers SRTP opportunistically, as
        // rtpengine reads it (its `osrtp_proto`), with or without `OSRTP` flags; an answer
        // to our OSRTP offer says yes by carrying a=crypto.
        let osrtp_sender = is_plain_rtp(&in_proto) && !lines.is_empty();
        let mut sender_sdes = is_sdes_profile(&in_proto)
            || osrtp_sender
            || (role == Role::Answer && !lines.is_empty());
        // DTLS when the profile says so, or on an SRTP profile that carries a fingerprint
        // but no crypto line; in an answer, a fingerprint picks DTLS from our dual offer.
        let sender_dtls = identity.is_some()
            && sender_fp.is_some()
            && match role {
                Role::Offer => {
                    is_dtls_profile(&in_proto) || (is_sdes_profile(&in_proto) && lines.is_empty())
                }
                Role::Answer => sender_media.dtls.offered.is_some(),
            };
        if sender_dtls {
            sender_sdes = false;
        }
        let sender = &mut sender_media.sdes;
        match role {
            Role::Offer if sender_sdes => {
                let pruned = req.sdes.prune_offered(&lines);
                sender.received = pruned.iter().filter(|l| l.is_usable()).cloned().collect();
                match sdes::select_offerer_crypto(&pruned, &req.sdes.offerer_pref) {
                    Ok(chosen) => {
                        let same = sender
                            .local
                            .as_ref()
                            .is_some_and(|l| l.tag == chosen.tag && l.suite == chosen.suite);
                        if !same {
                            sender.local = Some(
                                CryptoAttr::generate(chosen.tag, chosen.suite).map_err(rng_err)?,
                            );
                        }
                        sender.remote = Some(chosen.clone());
                    }
                    Err(e) => {
                        warn!(media = i + 1, error = %e, "SDES offer without a usable a=crypto line");
                        sender.local = None;
                        sender.remote = None;
                    }
                }
            }
            Role::Answer if sender_sdes && !sender.offered.is_empty() => {
                match sdes::select_answer(&sender.offered, &lines) {
                    Ok((ours, theirs)) => {
                        let ours = ours.clone();
                        sender.remote = Some(theirs.clone());
                        // Only the accepted line stays offered (rtpengine's `__sdes_accept`):
                        // a re-offer repeats it first and fresh keys for the other suites.
                        sender.offered = vec![ours.clone()];
                        sender.local = Some(ours);
                    }
                    Err(e) => {
                        warn!(media = i + 1, error = %e, "SDES answer does not match our offer");
                        sender.local = None;
                        sender.remote = None;
                    }
                }
            }
            Role::Offer => {
                sender.local = None;
                sender.remote = None;
                sender.received.clear();
            }
            _ => {
                sender.local = None;
                sender.remote = None;
            }
        }
        // What the answerer accepted, for the answer to an SDES offerer.
        let accepted = match role {
            Role::Answer => sender.remote.clone(),
            Role::Offer => None,
        };

        let sender_dtls_state = &mut sender_media.dtls;
        match (role, identity, sender_fp) {
            (Role::Offer, Some(id), Some(fp)) if sender_dtls => {
                let our_role = match (sender_setup, req.dtls) {
                    (Some(Setup::Active), _) => DtlsRole::Server,
                    (Some(Setup::Passive), _) => DtlsRole::Client,
                    (_, DtlsMode::Passive) => DtlsRole::Server,
                    _ if req.dtls_reverse_passive => DtlsRole::Server,
                    _ => DtlsRole::Client,
                };
                let keep = sender_dtls_state.active.as_ref().is_some_and(|p| {
                    p.remote == fp && p.role == our_role && Arc::ptr_eq(&p.identity, id)
                });
                if !keep {
                    sender_dtls_state.active = None;
                }
                sender_dtls_state.offered = None;
                sender_dtls_state.remote = Some(fp);
                sender_dtls_state.pending_role = Some(our_role);
            }
            (Role::Answer, Some(id), Some(fp)) if sender_dtls => {
                // No a=setup in an answer means active (RFC 4145 §4).
                let our_role = match (sender_setup, sender_dtls_state.offered) {
                    (Some(Setup::Passive), _) => DtlsRole::Client,
                    (_, Some(Setup::Active)) => DtlsRole::Client,
                    _ => DtlsRole::Server,
                };
                let params = DtlsParams {
                    role: our_role,
                    remote: fp.clone(),
                    identity: id.clone(),
                };
                if sender_dtls_state.active.as_ref() != Some(&params) {
                    sender_dtls_state.active = Some(params);
                }
                sender_dtls_state.remote = Some(fp);
                sender_dtls_state.pending_role = None;
            }
            _ => *sender_dtls_state = DtlsMediaState::default(),
        }

        // What the sender's own SDP says about its keying.
        sender_media.keying.dtls = sender_dtls;
        if !lines.is_empty() {
            sender_media.keying.sdes = true;
        }

        let receiver_media = &mut call.leg_mut(to).medias[i];
        let srtp_out = is_sdes_profile(&out_proto) || is_dtls_profile(&out_proto);
        if role == Role::Offer {
            // `DTLS=off` and `SDES=off` name the side an offer goes to (rtpengine's
            // `__generate_crypto` runs for the receiving media only), and only the first
            // offer giving it SRTP asks them. The sender's own DTLS is still accepted, and
            // answered, whatever the flags say (`__dtls_logic`), so a WebRTC browser
            // calling an SDES phone with `DTLS=off` still gets its fingerprint and a=setup.
            let keying = &mut receiver_media.keying;
            if !srtp_out {
                *keying = Keying::default();
            } else if keying.undecided() {
                *keying = Keying {
                    dtls: req.dtls != DtlsMode::Off,
                    sdes: !req.sdes_off,
                };
            }
        }
        let receiver_identity = match role {
            Role::Offer => identity.filter(|_| receiver_media.keying.dtls),
            Role::Answer => identity,
        };
        let sdes_allowed = if srtp_out {
            receiver_media.keying.sdes
        } else {
            !req.sdes_off
        };
        let receiver = &mut receiver_media.sdes;
        // An OSRTP offer goes on as one unless `transport-protocol` names another profile.
        let osrtp_on = osrtp_sender && !sender_dtls && req.transport_protocol.is_none();
        let sdes_to_receiver =
            (is_sdes_profile(&out_proto) || req.osrtp.offer || osrtp_on) && sdes_allowed;
        let out_lines: Vec<CryptoAttr> = match role {
            Role::Offer if sdes_to_receiver => {
                // An SDES offerer's own lines go on with their keys (rtpengine copies them);
                // what this party was offered (after an answer: the line it accepted) or
                // answered with before comes next with its keys; fresh keys fill the rest.
                let previous = if receiver.offered.is_empty() {
                    receiver.local.iter().cloned().collect()
                } else {
                    std::mem::take(&mut receiver.offered)
                };
                let offerer: &[CryptoAttr] = if sender_sdes { &lines } else { &[] };
                receiver.offered = sdes::generate_offer_following(offerer, &previous, &req.sdes)
                    .map_err(rng_err)?;
                receiver.offered.clone()
            }
            Role::Offer => {
                *receiver = Default::default();
                Vec::new()
            }
            Role::Answer => {
                // SRTP on both sides: the offerer is answered with the tag of its line of
                // the suite the answerer accepted, keyed with the answerer's key
                // (rtpengine's SRTP passthrough keys), unless `SDES-static` keeps the
                // line it was answered with before.
                let keep = req.sdes.keep
                    && receiver.local.as_ref().is_some_and(|l| {
                        receiver
                            .received
                            .iter()
                            .any(|r| r.tag == l.tag && r.suite == l.suite)
                    });
                if let (false, Some(accepted)) = (keep, &accepted) {
                    if let Some((theirs, ours)) =
                        sdes::answer_following(&receiver.received, accepted)
                    {
                        receiver.remote = Some(theirs);
                        receiver.local = Some(ours);
                    }
                }
                // An OSRTP offerer whose answerer chose plain RTP is answered plain too,
                // unless `OSRTP: accept` keeps SRTP toward it (rtpengine's `osrtp_accept`).
                if is_plain_rtp(&out_proto) && !sender_sdes && !sender_dtls && !req.osrtp.accept {
                    receiver.local = None;
                    receiver.remote = None;
                }
                match (&receiver.local, &receiver.remote) {
                    (Some(local), Some(_)) => vec![local.clone()],
                    _ => Vec::new(),
                }
            }
        };
        let section = &mut src.media[i];
        if out_lines.is_empty() {
            section.remove_attributes("crypto");
        } else {
            let values: Vec<String> = out_lines.iter().map(|a| a.write(write_opts)).collect();
            section.set_attributes("crypto", &values);
        }

        // DTLS towards the receiver.
        let rdtls = &mut receiver_media.dtls;
        let setup = match (role, receiver_identity) {
            (Role::Offer, Some(_))
                if is_dtls_profile(&out_proto) || is_sdes_profile(&out_proto) =>
            {
                let setup = match req.dtls {
                    DtlsMode::Passive => Setup::Passive,
                    DtlsMode::Active => Setup::Active,
                    _ => Setup::ActPass,
                };
                // A re-offer keeps a settled association until the answer says otherwise.
                rdtls.offered = Some(setup);
                rdtls.pending_role = None;
                Some(setup)
            }
            (Role::Offer, _) => {
                *rdtls = DtlsMediaState::default();
                None
            }
            (Role::Answer, Some(id)) => match (rdtls.pending_role, &rdtls.remote) {
                (Some(pending), Some(remote)) => {
                    // `DTLS=passive/active` in the answer request may still pick our role
                    // towards an offerer that left it to us.
                    let our_role = match req.dtls {
                        DtlsMode::Passive => DtlsRole::Server,
                        DtlsMode::Active => DtlsRole::Client,
                        _ => pending,
                    };
                    let params = DtlsParams {
                        role: our_role,
                        remote: remote.clone(),
                        identity: id.clone(),
                    };
                    if rdtls.active.as_ref() != Some(&params) {
                        rdtls.active = Some(params);
                    }
                    Some(Setup::of_role(our_role))
                }
                _ => None,
            },
            (Role::Answer, None) => None,
        };
        match (setup, receiver_identity) {
            (Some(setup), Some(id)) => {
                // The hash written once stays; else `DTLS-fingerprint` of an offer, else
                // the party's own, else SHA-256 (rtpengine's `insert_dtls`).
                let hash = receiver_media
                    .fp_hash
                    .or_else(|| {
                        let flag = req.dtls_fingerprint.as_deref();
                        flag.filter(|_| role == Role::Offer)
                            .and_then(HashFunction::from_name)
                    })
                    .or_else(|| receiver_media.dtls.remote.as_ref().map(|f| f.hash))
                    .unwrap_or(HashFunction::Sha256);
                receiver_media.fp_hash = Some(hash);
                section.set_attributes("setup", &[setup.as_str()]);
                section.set_attributes("fingerprint", &[id.fingerprint_with(hash).to_value()]);
            }
            _ => {
                section.remove_attributes("setup");
                section.remove_attributes("fingerprint");
            }
        }
        // RTCP feedback means nothing to a party without an AVPF profile (RFC 4585 §4).
        if is_avpf(&in_proto) && !is_avpf(&out_proto) {
            section.remove_attributes("rtcp-fb");
        }
        protocols.push((out_proto != in_proto).then_some(out_proto));
    }
    Ok(protocols)
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

/// `replace: SDP version`: the o= version we send a party goes up by one whenever the body
/// differs from the last one we sent it (every time with `force-increment-sdp-ver`).
fn bump_origin_version(out: &mut Sdp, call: &mut Call, to: LegId, force: bool) {
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

/// Whether we are a full ICE agent toward party `to` or ICE-lite, for the SDP `out` we
/// write to it with `rewrite` (rtpengine's `ICE_LITE_SELF`). Toward WebRTC (browsers) we
/// are ICE-lite unless `ICE-lite` said otherwise: we answer connectivity checks but never
/// send any (RFC 8445 §2.5), so the browser controls and nominates; `out` then says
/// `a=ice-lite`. Toward anything else we are a full agent as rtpengine is: we check the
/// party's candidates too (the only way to reach an ICE-lite peer, or one behind NAT that
/// only answers).
pub(super) fn settle_ice_agent(call: &mut Call, to: LegId, rewrite: &SdpRewrite, out: &mut Sdp) {
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

pub(super) fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
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
