//! Publish and subscribe (rtpengine's `publish`, `subscribe request`, `subscribe answer`,
//! `unsubscribe`: `monologue_publish`, `monologue_subscribe_request/answer` in `call.c`).
//!
//! A subscription is one more leg of the call with no peer: each of its m= lines copies one
//! m= line of a source leg. The subscriber gets an offer (`subscribe request`) that mirrors
//! the source's last SDP, pointed at new sockets facing the subscriber and made `sendonly`;
//! its answer (`subscribe answer`) says where it receives and which codec it takes. From then
//! on every packet the source sends is also sent to the subscriber (see `Call::plan`: the
//! source's streams list the subscriber's sockets as copies), through a transcoder when the
//! subscriber took another codec than the source sends.
//!
//! A publisher (`publish`) is a leg with no peer at all: we answer its offer with one codec
//! per m= line and its media only ever goes to subscribers (see `publish`).

mod party_ports;
mod publish;

use rand::Rng;
use tracing::info;

use super::codecs::transcodable;
use super::model::{Call, Leg, LegId, Media, Subscription};
use super::negotiate::{
    random_token, settle_ice_agent, settle_srtp, Exchange, Role, ICE_PWD_LEN, ICE_UFRAG_LEN,
};
use super::{CallError, Calls, Now};
use crate::core::pii::Pii;
use crate::core::request::{IceMode, OfferAnswer};
use crate::core::sdp::{
    Codec as SdpCodec, Direction, IceRewrite, Line, MediaRewrite, MediaSection, OriginRewrite, Sdp,
    SdpRewrite,
};
use crate::core::transcode::{CodecEnd, PtSet, TranscodeSpec};

/// Session name of the SDP we write ourselves (rtpengine writes `rtpengine-VERSION`).
const SESSION_NAME: &str = concat!("rtpengine-ngmedia-", env!("CARGO_PKG_VERSION"));

/// Reply to `subscribe request`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeReply {
    /// The offer for the subscriber.
    pub sdp: String,
    /// The source's tag when there is exactly one source.
    pub from_tag: Option<String>,
    /// Every source's tag, in the order of the SDP's m= lines.
    pub from_tags: Vec<String>,
    /// The subscriber's tag (given or generated).
    pub to_tag: String,
    /// With `SIPREC`: each source and its media with their labels (`tag-medias`).
    pub tag_medias: Option<Vec<TagMedias>>,
}

/// One source of a SIPREC subscription (an entry of `tag-medias`).
#[derive(Debug, Clone, PartialEq)]
pub struct TagMedias {
    pub tag: String,
    pub label: Option<String>,
    pub medias: Vec<MediaLabel>,
}

/// One m= line of a SIPREC source.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaLabel {
    /// 1-based position in the source's SDP.
    pub index: u32,
    pub kind: String,
    /// The `a=label` value written into the subscriber's SDP for this media.
    pub label: String,
    /// The direction of the media as we send it to the source (`sendrecv`, or `sendonly`
    /// toward a source that only receives), as rtpengine reports it.
    pub mode: &'static str,
}

/// The codec a party actually sends on one m= line: its transcoder's input when one runs,
/// else the first codec of its list its peer also has, else its first codec.
fn sent_codec(call: &Call, leg: LegId, mi: usize) -> Option<SdpCodec> {
    let m = call.leg(leg).medias.get(mi)?;
    let audio = |c: &&SdpCodec| !c.name.eq_ignore_ascii_case("telephone-event");
    if let Some(t) = &m.codec_state.transcode_rx {
        if let Some(c) = m.codecs.iter().find(|c| c.pt == t.input.pt) {
            return Some(c.clone());
        }
    }
    let peer_codecs = call
        .leg(leg)
        .peer
        .and_then(|p| call.leg(p).medias.get(mi))
        .map(|pm| pm.codecs.as_slice())
        .unwrap_or(&[]);
    m.codecs
        .iter()
        .filter(audio)
        .find(|c| peer_codecs.iter().any(|p| same_codec(p, c)))
        .or_else(|| m.codecs.iter().find(audio))
        .cloned()
}

fn same_codec(a: &SdpCodec, b: &SdpCodec) -> bool {
    a.name.eq_ignore_ascii_case(&b.name)
        && a.clock_rate == b.clock_rate
        && a.channels.unwrap_or(1) == b.channels.unwrap_or(1)
}

fn is_event(c: &SdpCodec) -> bool {
    c.name.eq_ignore_ascii_case("telephone-event")
}

/// One side of a subscription transcoder.
fn codec_end(c: &SdpCodec, list: &[SdpCodec], ptime: Option<u32>) -> Option<CodecEnd> {
    let codec = transcodable(c)?;
    let ptime_ms = ptime
        .filter(|&p| codec.supports_ptime(p))
        .unwrap_or(codec.def.default_ptime);
    Some(CodecEnd {
        codec,
        pt: c.pt,
        ptime_ms,
        event_pt: list
            .iter()
            .find(|e| is_event(e) && e.clock_rate == c.clock_rate)
            .map(|e| e.pt),
        bitrate: None,
        // Comfort noise of this side: decoded for a subscriber without it, passed on to one
        // with it.
        cn_pt: list
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case("CN") && e.clock_rate == 8000)
            .map(|e| e.pt),
        dtx: false,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
    })
}

/// Media labels of SIPREC subscriptions: rtpengine numbers every `call_media` of a call in
/// creation order, and an offer creates the answerer's side of each m= line before the
/// offerer's; we number the same way so the labels match.
fn media_label(leg: LegId, mi: usize) -> String {
    match leg.0 {
        0 => (2 * mi + 1).to_string(),
        1 => (2 * mi).to_string(),
        l => (2 * l * 16 + mi).to_string(),
    }
}

/// A fresh o= line for SDP we write ourselves.
fn generated_session(address: std::net::IpAddr) -> Vec<Line> {
    let id: u32 = rand::thread_rng().gen_range(1_000_000_000..2_000_000_000);
    let family = if address.is_ipv4() { "IP4" } else { "IP6" };
    vec![
        Line::new(b'v', "0"),
        Line::new(b'o', format!("- {id} {id} IN {family} {address}")),
        Line::new(b's', SESSION_NAME),
        Line::new(b't', "0 0"),
    ]
}

/// A media section built from what we know of a media (a source without a stored SDP).
fn section_from_media(m: &Media) -> MediaSection {
    let mut section = MediaSection {
        m: crate::core::sdp::MediaLine {
            kind: m.kind.clone(),
            port: m.advertised_rtp.map_or(9, |a| a.port()),
            port_count: None,
            proto: m.protocol.to_string(),
            formats: Vec::new(),
            trailing_space: false,
        },
        lines: vec![Line::new(b'c', "IN IP4 0.0.0.0")],
    };
    section.set_codecs(&m.codecs);
    section
}

impl Calls {
    /// `subscribe request`: a new (or renewed) subscriber leg receiving copies of the media
    /// of the selected parties; the reply carries the offer for it.
    pub fn subscribe_request(
        &mut self,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<SubscribeReply, CallError> {
        let mut call = self
            .calls
            .remove(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let result = self.subscribe_request_on(&mut call, req, now);
        if result.is_ok() {
            Self::save(&self.store, &mut call, now);
        }
        self.calls.insert(req.call_id.clone(), call);
        result
    }

    fn subscribe_request_on(
        &mut self,
        call: &mut Call,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<SubscribeReply, CallError> {
        let sources = select_sources(call, req)?;
        let to_tag = req
            .to_tag
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{:032x}", rand::thread_rng().gen::<u128>()));
        let sub = match call.leg_by_tag(&to_tag) {
            Some(l) if call.leg(l).subscription.is_some() => l,
            Some(_) => return Err(CallError::ToTagNotSubscriber),
            None => {
                let interface = call.leg(sources[0]).interface;
                call.legs
                    .push(Leg::new(&to_tag, now.unix_secs(), interface));
                LegId(call.legs.len() - 1)
            }
        };
        if sources.contains(&sub) {
            return Err(CallError::SubscribeToSelf);
        }
        // The m= lines of the subscriber: every m= line of every source, in order.
        let mut wanted: Vec<(LegId, usize)> = Vec::new();
        for &s in &sources {
            for mi in 0..call.leg(s).medias.len() {
                wanted.push((s, mi));
            }
        }
        if wanted.is_empty() {
            return Err(CallError::NoMediaToSubscribe);
        }
        // Sockets: keep the subscriber's (a renewed subscription keeps its ports), add what
        // is missing; allocate first so a failure changes nothing.
        let sub_interface = call.leg(sub).interface;
        let iface = self.config.interfaces[sub_interface].clone();
        // ICE toward the subscriber (`ICE` key, else as the source does) also binds the
        // other addresses of its logical interface, one candidate each.
        let want_ice: Vec<bool> = wanted
            .iter()
            .map(|&(s, mi)| match req.ice {
                IceMode::Remove => false,
                IceMode::Force | IceMode::Optional | IceMode::ForceRelay => true,
                IceMode::Default => call.leg(s).medias[mi].ice_seen,
            })
            .collect();
        let needs: Vec<Option<bool>> = want_ice.iter().map(|&ice| Some(ice)).collect();
        let got = self.allocate_party_ports(call, sub, &needs)?;
        let label = req.set_label.clone().or_else(|| req.to_label.clone());
        {
            let leg = call.leg_mut(sub);
            if let Some(l) = label {
                leg.label = Some(l);
            }
            leg.subscription = Some(Subscription {
                sources: sources.clone(),
                egress: req.flags.egress,
                rtcp_mirror: req.flags.rtcp_mirror,
                answered: false,
            });
            leg.medias.truncate(wanted.len());
        }
        // Ports of m= lines the subscriber no longer has are given back by the next plan.
        for (k, &(s, mi)) in wanted.iter().enumerate() {
            let (kind, proto) = {
                let m = &call.leg(s).medias[mi];
                (m.kind.clone(), m.protocol.clone())
            };
            let medias = &mut call.leg_mut(sub).medias;
            if medias.len() <= k {
                medias.push(Media::new(k as u32 + 1, &kind, proto.as_str()));
            }
            let m = &mut medias[k];
            m.kind = kind;
            m.protocol = proto;
            m.source = Some((s, mi));
            m.feed = None;
            m.direction = Direction::RecvOnly;
            if !want_ice[k] {
                // Without ICE its sockets on the other addresses go with the next plan.
                m.alt_ports.clear();
            }
            // rtpengine makes only an offer controlling: toward a subscriber it is the
            // controlled agent, unless the subscriber is lite.
            m.ice_we_offered = false;
            if let Some(mode) = req.ice_lite {
                m.ice_lite_self = Some(mode.sides().0);
            }
        }
        self.install_party_ports(call, sub, got);

        let single = sources.len() == 1;
        let mut src = subscriber_offer(call, &sources, iface.public());
        offer_codecs(call, sub, &wanted, &mut src, req);
        // SRTP toward the subscriber, as an offer from the source would get it. The
        // source's own keys are not the subscription's business: kept as they were.
        let protocols = if single {
            let s = sources[0];
            let saved: Vec<_> = call
                .leg(s)
                .medias
                .iter()
                .map(|m| (m.sdes.clone(), m.dtls.clone()))
                .collect();
            let r = settle_srtp(
                call,
                Exchange {
                    from: s,
                    to: sub,
                    role: Role::Offer,
                },
                &mut src,
                req,
                self.dtls.as_ref(),
            );
            for (m, (sdes, dtls)) in call.leg_mut(s).medias.iter_mut().zip(saved) {
                m.sdes = sdes;
                m.dtls = dtls;
            }
            r?
        } else {
            vec![None; src.media.len()]
        };
        let public = iface.public();
        let mut media = Vec::with_capacity(wanted.len());
        for (k, &(s, mi)) in wanted.iter().enumerate() {
            let source = &call.leg(s).medias[mi];
            let sends = source.ports.is_some() && source.direction.sends();
            let target = &mut call.leg_mut(sub).medias[k];
            let Some(ports) = target.ports.filter(|_| src.media[k].m.port != 0) else {
                media.push(MediaRewrite::rejected(public));
                continue;
            };
            target.ice_active = want_ice[k];
            let ice = if want_ice[k] {
                let ufrag = target
                    .ice_ufrag
                    .get_or_insert_with(|| random_token(ICE_UFRAG_LEN))
                    .clone();
                let pwd = target
                    .ice_pwd
                    .get_or_insert_with(|| random_token(ICE_PWD_LEN))
                    .clone();
                IceRewrite::Replace {
                    trickle: false,
                    ufrag,
                    pwd,
                    candidates: target.ice_candidates(sub_interface, &self.ice_bases),
                }
            } else {
                IceRewrite::Remove
            };
            media.push(MediaRewrite {
                address: public,
                port: ports.rtp.addr.port(),
                rtcp_port: (!req.flags.no_rtcp_attribute).then_some(ports.rtcp.addr.port()),
                full_rtcp_attribute: req.flags.full_rtcp_attribute,
                rtcp_mux: false,
                protocol: protocols.get(k).cloned().flatten().map(|p| p.to_string()),
                ice,
                direction: Some(if sends {
                    Direction::SendOnly
                } else {
                    Direction::Inactive
                }),
                zero_address: false,
                keep_transport: false,
            });
        }
        let rewrite = SdpRewrite {
            origin: OriginRewrite::default(),
            session_name: None,
            connection: public,
            media,
            loop_protect: false,
            strip_extmap: false,
            session_connection: true,
        };
        let mut out = src.rewrite_with_marker(&rewrite, &self.loop_marker);
        settle_ice_agent(call, sub, &rewrite, &mut out);
        call.last_signal = now.unix_secs();
        call.last_signal_at = now.mono;
        let plan = call.plan();
        self.media.apply(plan);
        info!(call_id = %Pii(&call.id), to_tag = %Pii(&to_tag), sources = sources.len(), "subscribe request");

        let from_tags: Vec<String> = sources.iter().map(|&s| call.leg(s).tag.clone()).collect();
        let tag_medias = req.flags.siprec.then(|| tag_medias(call, &sources));
        Ok(SubscribeReply {
            sdp: out.write(),
            from_tag: single.then(|| from_tags[0].clone()),
            from_tags,
            to_tag,
            tag_medias,
        })
    }

    /// `subscribe answer`: the subscriber's SDP says where it receives and what codec it
    /// takes; media starts flowing to it.
    pub fn subscribe_answer(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        let sdp = Sdp::parse(&req.sdp)?;
        let to_tag = req.to_tag.as_deref().ok_or(CallError::NoToTag)?;
        let mut call = self
            .calls
            .remove(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let result = self.subscribe_answer_on(&mut call, to_tag, &sdp, req, now);
        if result.is_ok() {
            Self::save(&self.store, &mut call, now);
        }
        self.calls.insert(req.call_id.clone(), call);
        result
    }

    fn subscribe_answer_on(
        &mut self,
        call: &mut Call,
        to_tag: &str,
        sdp: &Sdp,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<(), CallError> {
        let sub = call
            .leg_by_tag(to_tag)
            .filter(|&l| call.leg(l).subscription.is_some())
            .ok_or(CallError::ToTagNotFound)?;
        let count = call.leg(sub).medias.len();
        if count == 0 {
            return Err(CallError::NoSubscription);
        }
        if sdp.media.len() != count {
            return Err(CallError::SubscriptionMediaMismatch);
        }
        // Codecs first: nothing changes if the answer is refused.
        let mut feeds = Vec::with_capacity(count);
        for (k, section) in sdp.media.iter().enumerate() {
            let Some((s, mi)) = call.leg(sub).medias[k].source else {
                feeds.push(None);
                continue;
            };
            if section.m.port == 0 || !section.m.is_rtp() {
                feeds.push(None);
                continue;
            }
            let answer = section.codecs();
            let Some(sent) = sent_codec(call, s, mi) else {
                feeds.push(None);
                continue;
            };
            if answer.iter().any(|c| same_codec(c, &sent)) {
                feeds.push(None);
                continue;
            }
            let offered = &call.leg(sub).medias[k].codecs;
            let added_for_transcoding = offered.iter().any(|c| same_codec(c, &sent))
                && offered.len() > call.leg(s).medias[mi].codecs.len();
            if !req.flags.allow_transcoding && !added_for_transcoding {
                return Err(CallError::SubscriptionAnswerRefused);
            }
            let source = &call.leg(s).medias[mi];
            let input = codec_end(&sent, &source.codecs, source.ptime);
            let output = answer
                .iter()
                .filter(|c| !is_event(c))
                .find_map(|c| codec_end(c, &answer, section.ptime()));
            match input.zip(output) {
                Some((input, output)) => feeds.push(Some(TranscodeSpec {
                    input,
                    output,
                    detect_dtmf: false,
                    passthrough: PtSet::NONE,
                })),
                None => return Err(CallError::NoCodecToTranscodeTo),
            }
        }
        let single = call
            .leg(sub)
            .subscription
            .as_ref()
            .is_some_and(|s| s.sources.len() == 1);
        // Where the subscriber receives.
        let fake = OfferAnswer {
            label: req.label.clone(),
            ..req.clone()
        };
        self.learn_from_sdp(call, sub, sdp, &fake);
        call.leg_mut(sub).sdp_in = Some(req.sdp.clone());
        for (k, feed) in feeds.into_iter().enumerate() {
            let m = &mut call.leg_mut(sub).medias[k];
            m.feed = feed;
            m.rtcp_mux = false;
        }
        if single {
            // SRTP keys the subscriber chose from our offer.
            let source = call.leg(sub).subscription.as_ref().map(|s| s.sources[0]);
            if let Some(s) = source.filter(|&s| call.leg(s).medias.len() == count) {
                let saved: Vec<_> = call
                    .leg(s)
                    .medias
                    .iter()
                    .map(|m| (m.sdes.clone(), m.dtls.clone(), m.protocol.clone()))
                    .collect();
                let mut src = sdp.clone();
                let r = settle_srtp(
                    call,
                    Exchange {
                        from: sub,
                        to: s,
                        role: Role::Answer,
                    },
                    &mut src,
                    req,
                    self.dtls.as_ref(),
                );
                for (m, (sdes, dtls, proto)) in call.leg_mut(s).medias.iter_mut().zip(saved) {
                    m.sdes = sdes;
                    m.dtls = dtls;
                    m.protocol = proto;
                }
                r?;
            }
        }
        if let Some(s) = call.leg_mut(sub).subscription.as_mut() {
            s.answered = true;
        }
        call.last_signal = now.unix_secs();
        call.last_signal_at = now.mono;
        let plan = call.plan();
        self.media.apply(plan);
        info!(call_id = %Pii(&call.id), to_tag = %Pii(&to_tag), "subscribe answer");
        Ok(())
    }

    /// `unsubscribe`: the subscription of `to-tag` ends; its sockets are closed.
    pub fn unsubscribe(&mut self, req: &OfferAnswer, now: Now) -> Result<(), CallError> {
        let to_tag = req.to_tag.as_deref().ok_or(CallError::NoToTag)?;
        let call = self
            .calls
            .get_mut(&req.call_id)
            .ok_or(CallError::UnknownCall)?;
        let sub = call
            .leg_by_tag(to_tag)
            .filter(|&l| call.leg(l).subscription.is_some())
            .ok_or(CallError::ToTagNotFound)?;
        let leg = call.leg_mut(sub);
        leg.medias.clear();
        leg.sdp_in = None;
        if let Some(s) = leg.subscription.as_mut() {
            s.sources.clear();
            s.answered = false;
        }
        let plan = call.plan();
        self.media.apply(plan);
        Self::save(&self.store, call, now);
        info!(call_id = %Pii(&req.call_id), to_tag = %Pii(&to_tag), "unsubscribed");
        Ok(())
    }
}

/// The parties a `subscribe request` selects: `all` (every party of the offer/answer
/// dialogue and every publisher), a `label`, a `from-tag`, or a `from-tags` list.
fn select_sources(call: &Call, req: &OfferAnswer) -> Result<Vec<LegId>, CallError> {
    let eligible = |l: &Leg| l.subscription.is_none() && !l.tag.is_empty();
    if req.flags.all {
        let all: Vec<LegId> = (0..call.legs.len())
            .filter(|&i| eligible(&call.legs[i]))
            .map(LegId)
            .collect();
        if all.is_empty() {
            return Err(CallError::NoParticipant);
        }
        return Ok(all);
    }
    if let Some(label) = req.label.as_deref().filter(|l| !l.is_empty()) {
        return call
            .legs
            .iter()
            .position(|l| l.label.as_deref() == Some(label))
            .map(|i| vec![LegId(i)])
            .ok_or(CallError::NoLabelMatch);
    }
    if !req.from_tag.is_empty() {
        return call
            .leg_by_tag(&req.from_tag)
            .map(|l| vec![l])
            .ok_or(CallError::NoSuchFromTag);
    }
    if req.from_tags.is_empty() {
        return Err(CallError::NoParticipant);
    }
    let mut out = Vec::new();
    for t in &req.from_tags {
        if let Some(l) = call.leg_by_tag(t) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    if out.is_empty() {
        return Err(CallError::NoMonologueMatch);
    }
    Ok(out)
}

/// The SDP the subscriber is offered, before our rewrite: the single source's own SDP, or
/// one we write with every source's m= lines (rtpengine: `sdp_replace` of the source's last
/// SDP, else `sdp_create`).
fn subscriber_offer(call: &Call, sources: &[LegId], address: std::net::IpAddr) -> Sdp {
    let stored: Vec<Option<Sdp>> = sources
        .iter()
        .map(|&s| {
            call.leg(s)
                .sdp_in
                .as_deref()
                .and_then(|t| Sdp::parse(t).ok())
                .filter(|p| p.media.len() == call.leg(s).medias.len())
        })
        .collect();
    match (sources.len() == 1, &stored[0]) {
        (true, Some(sdp)) => sdp.clone(),
        _ => {
            let mut media = Vec::new();
            for (si, &s) in sources.iter().enumerate() {
                for mi in 0..call.leg(s).medias.len() {
                    let section = match &stored[si] {
                        Some(sdp) => {
                            let mut section = sdp.media[mi].clone();
                            // The session c= does not come along: give the section one.
                            if !section.lines.iter().any(|l| l.kind == b'c') {
                                if let Some(c) = sdp.session_of(mi).iter().find(|l| l.kind == b'c')
                                {
                                    section.lines.insert(0, c.clone());
                                }
                            }
                            section
                        }
                        None => section_from_media(&call.leg(s).medias[mi]),
                    };
                    media.push(section);
                }
            }
            Sdp::new(generated_session(address), media)
        }
    }
}

/// Codec options shape the list offered to the subscriber; what was offered is kept to
/// judge the answer.
fn offer_codecs(
    call: &mut Call,
    sub: LegId,
    wanted: &[(LegId, usize)],
    src: &mut Sdp,
    req: &OfferAnswer,
) {
    for (k, &(s, mi)) in wanted.iter().enumerate() {
        let section = &mut src.media[k];
        if section.m.port == 0 || !section.m.is_rtp() {
            continue;
        }
        let codecs = section.codecs();
        let (edit, state) =
            super::codecs::offer(&codecs, section.ptime(), &req.codec, req.ptime, None);
        if let Some(list) = &edit.codecs {
            section.set_codecs(list);
        }
        if let Some(p) = edit.ptime {
            section.set_ptime(Some(p));
        }
        if req.flags.siprec {
            section.set_attributes("label", &[media_label(s, mi)]);
        }
        let offered = section.codecs();
        let m = &mut call.leg_mut(sub).medias[k];
        m.codec_state.state = state;
        m.codecs = offered;
    }
}

/// Each source and its media with their labels, for a SIPREC subscriber (`tag-medias`).
fn tag_medias(call: &Call, sources: &[LegId]) -> Vec<TagMedias> {
    sources
        .iter()
        .map(|&s| {
            let leg = call.leg(s);
            TagMedias {
                tag: leg.tag.clone(),
                label: leg.label.clone(),
                medias: leg
                    .medias
                    .iter()
                    .enumerate()
                    .map(|(mi, m)| MediaLabel {
                        index: m.index,
                        kind: m.kind.clone(),
                        label: media_label(s, mi),
                        mode: m.direction.reversed().as_str(),
                    })
                    .collect(),
            }
        })
        .collect()
}
