//! `publish` (rtpengine's `monologue_publish`): a party that offers media to the engine
//! alone, answered with one codec per m= line, whose media only ever goes to subscribers.

use tracing::info;

use super::{generated_session, is_event, transcodable};
use crate::core::calls::model::{Call, Leg, LegId, Media};
use crate::core::calls::negotiate::{random_token, settle_ice_agent, ICE_PWD_LEN, ICE_UFRAG_LEN};
use crate::core::calls::{CallError, Calls, Now};
use crate::core::pii::Pii;
use crate::core::plan::CallKey;
use crate::core::request::{CodecOptions, IceMode, OfferAnswer};
use crate::core::sdp::{
    Codec as SdpCodec, Direction, IceRewrite, Line, MediaRewrite, OriginRewrite, Sdp, SdpRewrite,
};

impl Calls {
    /// `publish`: a party offers media to the engine alone (no peer); we answer with one
    /// codec per m= line and `recvonly`, and its media goes to whoever subscribes.
    pub fn publish(&mut self, req: &OfferAnswer, now: Now) -> Result<String, CallError> {
        self.started.get_or_insert(now.mono);
        let sdp = Sdp::parse(&req.sdp)?;
        let fresh = !self.calls.contains_key(&req.call_id);
        let mut call = match self.calls.remove(&req.call_id) {
            Some(c) => c,
            None => {
                let key = CallKey(self.next_key);
                self.next_key += 1;
                self.totals.created += 1;
                info!(call_id = %Pii(&req.call_id), from_tag = %Pii(&req.from_tag), "new call (publish)");
                new_call(key, &req.call_id, now, self.config.tos)
            }
        };
        let result = self.publish_on(&mut call, &sdp, req, now);
        match &result {
            Err(_) if fresh => {
                self.media.remove(call.key);
                self.totals.created -= 1;
            }
            _ => {
                if result.is_ok() {
                    Self::save(&self.store, &mut call, now);
                }
                self.calls.insert(req.call_id.clone(), call);
            }
        }
        result
    }

    fn publish_on(
        &mut self,
        call: &mut Call,
        sdp: &Sdp,
        req: &OfferAnswer,
        now: Now,
    ) -> Result<String, CallError> {
        let leg = match call.leg_by_tag(&req.from_tag) {
            Some(l) if call.leg(l).peer.is_none() && call.leg(l).subscription.is_none() => l,
            Some(_) => return Err(CallError::FromTagInDialogue),
            None => {
                call.legs.push(Leg::new(&req.from_tag, now.unix_secs(), 0));
                LegId(call.legs.len() - 1)
            }
        };
        if call.leg(leg).medias.iter().all(|m| m.ports.is_none()) {
            let family = sdp
                .media
                .iter()
                .enumerate()
                .find_map(|(i, _)| sdp.media_connection(i))
                .map(|a| crate::core::request::Family::of(&a));
            let name = req
                .from_interface
                .as_deref()
                .or(req.direction.first().map(String::as_str));
            call.leg_mut(leg).interface = self.pick_interface(name, family)?;
        }
        // One codec per m= line: the first of `accept` the publisher has, else its first
        // one we can transcode, else (`accept: any`) its first one.
        let mut chosen: Vec<Option<SdpCodec>> = Vec::with_capacity(sdp.media.len());
        for section in &sdp.media {
            if section.m.port == 0 || !section.m.is_rtp() {
                chosen.push(None);
                continue;
            }
            let codecs = section.codecs();
            match publish_codec(&codecs, &req.codec) {
                Some(c) => chosen.push(Some(c)),
                None => return Err(CallError::NoPublishCodec),
            }
        }
        let leg_interface = call.leg(leg).interface;
        let iface = self.config.interfaces[leg_interface].clone();
        let want_ice: Vec<bool> = sdp
            .media
            .iter()
            .map(|section| match req.ice {
                IceMode::Remove => false,
                IceMode::Force | IceMode::Optional | IceMode::ForceRelay => true,
                IceMode::Default => section.has_ice(),
            })
            .collect();
        // A rejected m= line gets no sockets.
        let needs: Vec<Option<bool>> = sdp
            .media
            .iter()
            .zip(&want_ice)
            .map(|(section, &ice)| (section.m.port != 0).then_some(ice))
            .collect();
        let got = self.allocate_party_ports(call, leg, &needs)?;
        {
            let l = call.leg_mut(leg);
            l.publisher = true;
            for (i, section) in sdp.media.iter().enumerate() {
                if l.medias.len() <= i {
                    l.medias
                        .push(Media::new(i as u32 + 1, &section.m.kind, &section.m.proto));
                }
            }
        }
        for (m, &ice) in call.leg_mut(leg).medias.iter_mut().zip(&want_ice) {
            if !ice {
                m.alt_ports.clear();
            }
        }
        self.install_party_ports(call, leg, got);
        // What subscribers mirror: the publisher's SDP with the chosen codec only.
        let mut kept = sdp.clone();
        for (i, c) in chosen.iter().enumerate() {
            if let Some(c) = c {
                kept.media[i].set_codecs(std::slice::from_ref(c));
            }
        }
        self.learn_from_sdp(call, leg, &kept, req);
        call.leg_mut(leg).sdp_in = Some(kept.write());

        let public = iface.public();
        let mut answer = Sdp::new(generated_session(public), kept.media.clone());
        let mut media = Vec::with_capacity(answer.media.len());
        for (i, section) in answer.media.iter_mut().enumerate() {
            let m = &mut call.leg_mut(leg).medias[i];
            let Some(ports) = m.ports.filter(|_| section.m.port != 0) else {
                media.push(MediaRewrite::rejected(public));
                continue;
            };
            // Only the codec lines and our own attributes: the publisher's other
            // attributes describe its side.
            section.lines.retain(|l| l.kind == b'c' || l.kind == b'b');
            if !section.lines.iter().any(|l| l.kind == b'c') {
                // Our address goes on the media's own c= line (the rewrite fills it in).
                section.lines.insert(0, Line::new(b'c', "IN IP4 0.0.0.0"));
            }
            if let Some(c) = &chosen[i] {
                section.set_codecs(std::slice::from_ref(c));
            }
            m.ice_active = want_ice[i];
            let ice = if want_ice[i] {
                let ufrag = m
                    .ice_ufrag
                    .get_or_insert_with(|| random_token(ICE_UFRAG_LEN))
                    .clone();
                let pwd = m
                    .ice_pwd
                    .get_or_insert_with(|| random_token(ICE_PWD_LEN))
                    .clone();
                IceRewrite::Replace {
                    trickle: false,
                    ufrag,
                    pwd,
                    candidates: m.ice_candidates(leg_interface, &self.ice_bases),
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
                protocol: None,
                ice,
                direction: Some(Direction::RecvOnly),
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
        let mut out = answer.rewrite_with_marker(&rewrite, &self.loop_marker);
        // The publisher offered: it controls ICE, as with any offerer.
        settle_ice_agent(call, leg, &rewrite, &mut out);
        call.last_signal = now.unix_secs();
        call.last_signal_at = now.mono;
        let plan = call.plan();
        self.media.apply(plan);
        info!(call_id = %Pii(&req.call_id), from_tag = %Pii(&req.from_tag), "publish");
        Ok(out.write())
    }
}

/// The codec a publish answer takes (rtpengine's `accept` preference list; `any` lets an
/// unsupported first codec through).
fn publish_codec(codecs: &[SdpCodec], opts: &CodecOptions) -> Option<SdpCodec> {
    let audio: Vec<&SdpCodec> = codecs.iter().filter(|c| !is_event(c)).collect();
    for want in &opts.accept {
        if want.eq_ignore_ascii_case("any") {
            return audio.first().map(|c| (*c).clone());
        }
        let name = want.split('/').next().unwrap_or("");
        if let Some(c) = audio.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
            return Some((*c).clone());
        }
    }
    audio
        .iter()
        .find(|c| transcodable(c).is_some())
        .map(|c| (*c).clone())
}

/// A call created by `publish` (an offer creates its calls the same way).
fn new_call(key: CallKey, id: &str, now: Now, tos: u8) -> Call {
    Call {
        key,
        id: id.to_owned(),
        created: now.mono,
        created_us: now.unix_us,
        last_signal: now.unix_secs(),
        last_signal_at: now.mono,
        legs: Vec::new(),
        delete_delay: None,
        delete_at: None,
        record: false,
        record_paused: false,
        record_metadata: Vec::new(),
        record_destination: None,
        intercept: 0,
        forwarding: false,
        saved_packets: 0,
        tos,
        control: Default::default(),
        srtp_recrypt: false,
    }
}
