//! How a call turns into a forwarding plan for the media plane, and what the recording and
//! interception sinks are told about it.

use super::{Call, Echo, LegId, T38Side};
use crate::core::dtmf_security::{SecurityConfig, DEFAULT_DIGIT_DELAY_MS, DEFAULT_TONE_VOLUME};
use crate::core::media_control::{MediaControl, PayloadKind, StreamControl};
use crate::core::plan::{
    CallPlan, CopySink, FaxPlan, IceCredentials, PortKey, StreamMode, StreamPlan,
};
use crate::core::sdes::CryptoAttr;
use crate::core::t38::gateway::GatewaySpec;
use crate::core::tap::{InterceptCall, InterceptLeg, TapCall, TapCodec, TapLeg, TapStream};

impl Call {
    /// The forwarding state implied by the call: for each pair of peered legs and each m=
    /// line both have ports for, RTP crosses between the RTP ports and RTCP between the
    /// RTCP ports, or the RTP port of a side that multiplexes. Clears the `relatch` marks.
    pub(crate) fn plan(&mut self) -> CallPlan {
        let mut streams = Vec::new();
        for li in 0..self.legs.len() {
            let peer = self.legs[li].peer;
            for mi in 0..self.legs[li].medias.len() {
                let this = &self.legs[li].medias[mi];
                let Some(ports) = this.ports else { continue };
                // Where this party's packets go: the peer's sockets for the same m= line.
                let sinks = peer
                    .and_then(|p| self.legs[p.0].medias.get(mi))
                    .and_then(|pm| pm.ports.map(|pp| (pp, pm.rtcp_mux)));
                let (rtp_sink, rtcp_sink) = match sinks {
                    Some((pp, mux)) => (
                        Some(pp.rtp.key),
                        Some(if mux { pp.rtp.key } else { pp.rtcp.key }),
                    ),
                    None => (None, None),
                };
                let relatch = this.relatch;
                // Passthrough: everything relayed as it comes, STUN and DTLS included.
                let mode = if this.ice_passthrough {
                    StreamMode::Opaque
                } else {
                    StreamMode::of_protocol(this.protocol.as_str())
                };
                let [rtp_resume, rtcp_resume] = match this.resume.as_deref() {
                    Some([rtp, rtcp]) => [Some(rtp.clone()), Some(rtcp.clone())],
                    None => [None, None],
                };
                this.configure_quality();
                let (srtp_in, srtp_out) = if self.srtp_passthrough(li, mi) {
                    (None, None)
                } else {
                    this.sdes.plan_keys()
                };
                let dtls = this.dtls.active.clone();
                let ice = match (&this.ice_ufrag, &this.ice_pwd) {
                    (Some(ufrag), Some(pwd)) if this.ice_active => Some(IceCredentials {
                        ufrag: ufrag.clone(),
                        pwd: pwd.clone(),
                        full: this.full_ice_plan(),
                    }),
                    _ => None,
                };
                let stream = TapStream {
                    leg: li as u16,
                    media: mi as u16,
                };
                let tap = self.record.then_some(stream);
                let control = MediaControl::combine(&self.control, &self.legs[li].control);
                let delay_ms = control.delay_buffer.unwrap_or(0);
                let security = SecurityConfig::needed(
                    control.block_dtmf,
                    control.trigger.as_ref(),
                    delay_ms,
                    control.dtmf_delay,
                )
                .then(|| SecurityConfig {
                    mode: control.block_dtmf,
                    frequencies: if control.frequencies.is_empty() {
                        control.tone_freq.into_iter().collect()
                    } else {
                        control.frequencies.clone()
                    },
                    digit: control.digit.unwrap_or(0),
                    volume: control.volume.unwrap_or(DEFAULT_TONE_VOLUME),
                    trigger: control.trigger.clone(),
                    digit_delay_ms: DEFAULT_DIGIT_DELAY_MS,
                    delay_ms,
                    dtmf_delay_ms: control.dtmf_delay,
                    coded: this
                        .codecs
                        .iter()
                        .map(|c| PayloadKind::of_name(&c.name))
                        .filter(|k| matches!(k, PayloadKind::G729 | PayloadKind::Opus))
                        .collect(),
                    audio_pt: this
                        .codecs
                        .iter()
                        .find(|c| {
                            !matches!(
                                PayloadKind::of_name(&c.name),
                                PayloadKind::Event | PayloadKind::Other
                            )
                        })
                        .map(|c| c.pt),
                });
                let control = StreamControl {
                    block_media: control.block_media,
                    block_dtmf: control.block_dtmf,
                    silence: control.silence_media,
                    tone_freq: control.tone_freq,
                    digit: control.digit,
                    volume: control.volume,
                    payloads: if control.block_dtmf.is_on()
                        || control.silence_media
                        || security.is_some()
                        || !control.silenced_to.is_empty()
                    {
                        this.codecs
                            .iter()
                            .map(|c| {
                                (
                                    c.pt,
                                    PayloadKind::of_codec(&c.name, c.clock_rate, c.fmtp.as_deref()),
                                )
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    dtmf_log: None,
                    security,
                    block_peer: peer
                        .is_some_and(|p| control.blocked_to.contains(&self.legs[p.0].tag)),
                    silence_peer: peer
                        .is_some_and(|p| control.silenced_to.contains(&self.legs[p.0].tag)),
                };
                if control.silence {
                    crate::core::media_control::prepare_silence();
                }
                let dtmf_log = Some(std::sync::Arc::new(crate::core::dtmf_log::DtmfLogSource {
                    call_id: self.id.clone(),
                    source_tag: self.legs[li].tag.clone(),
                    source_label: self.legs[li].label.clone().unwrap_or_default(),
                    tags: self.legs.iter().map(|l| l.tag.clone()).collect(),
                    events: this
                        .codecs
                        .iter()
                        .filter(|c| c.name.eq_ignore_ascii_case("telephone-event"))
                        .map(|c| (c.pt, c.clock_rate))
                        .collect(),
                }));
                let intercept = (li < 64 && self.intercept & (1 << li) != 0).then_some(stream);
                let (rtp_copies, rtcp_copies) = self.copies_of(li, mi);
                // A subscriber sends nothing on, except RTCP back to the source with
                // `RTCP mirror`.
                let (rtp_sink, rtcp_sink) = match self.subscription_source(li, mi) {
                    Some((source, mirror)) => (None, mirror.then_some(source).flatten()),
                    None => (rtp_sink, rtcp_sink),
                };
                // `media echo`: the party's media goes back to it, untouched, or nowhere.
                let (rtp_sink, rtcp_sink, forward, transcode) = match this.echo {
                    Echo::Relay => (rtp_sink, rtcp_sink, true, this.codec_state.transcode_rx),
                    Echo::Reflect => (
                        Some(ports.rtp.key),
                        Some(if this.rtcp_mux {
                            ports.rtp.key
                        } else {
                            ports.rtcp.key
                        }),
                        true,
                        None,
                    ),
                    Echo::Blackhole => (rtp_sink, rtcp_sink, false, None),
                };
                // Behind a T.38 gateway the two parties speak different media (UDPTL and
                // RTP audio): nothing is relayed between them as it is. What each sends on
                // its RTP socket goes to the gateway once the answer settled the codec;
                // RTCP of the audio party ends here.
                let fax = self.fax_plan(li, mi);
                let (forward, rtcp_forward, transcode) = match this.t38 {
                    Some(_) => (forward && fax.is_some(), false, None),
                    None => (forward, forward, transcode),
                };
                streams.push(StreamPlan {
                    port: ports.rtp.key,
                    alternates: this.alternate_ports().map(|p| p.rtp.key).collect(),
                    expected: this.advertised_rtp,
                    latch: this.latch,
                    relatch,
                    rtp_sink,
                    rtcp_sink,
                    forward,
                    stats: this.rtp_stats.clone(),
                    transcode,
                    srtp_in: srtp_in.clone(),
                    srtp_out: srtp_out.clone(),
                    ice: ice.clone(),
                    dtls: dtls.clone(),
                    stream,
                    tap,
                    intercept,
                    rtcp_feedback: this.protocol.has_feedback(),
                    resume: rtp_resume,
                    copies: rtp_copies,
                    feed: this.feed,
                    control: StreamControl {
                        dtmf_log,
                        ..control.clone()
                    },
                    mode,
                    fax,
                });
                streams.push(StreamPlan {
                    port: ports.rtcp.key,
                    alternates: this.alternate_ports().map(|p| p.rtcp.key).collect(),
                    expected: if this.rtcp_mux {
                        None
                    } else {
                        this.advertised_rtcp
                    },
                    latch: this.latch,
                    relatch,
                    rtp_sink: None,
                    rtcp_sink,
                    forward: rtcp_forward,
                    stats: this.rtcp_stats.clone(),
                    transcode,
                    srtp_in,
                    srtp_out,
                    ice,
                    dtls,
                    stream,
                    tap: None,
                    intercept: None,
                    rtcp_feedback: this.protocol.has_feedback(),
                    resume: rtcp_resume,
                    copies: rtcp_copies,
                    feed: None,
                    control,
                    mode,
                    fax: None,
                });
            }
        }
        for leg in &mut self.legs {
            for m in &mut leg.medias {
                m.relatch = false;
                m.resume = None;
            }
        }
        CallPlan {
            call: self.key,
            call_id: self.id.as_str().into(),
            streams,
            tos: self.tos,
        }
    }

    /// The part of leg `li`'s media `mi` in a T.38 gateway, once both sides are settled:
    /// the T.38 party runs it, the audio party feeds it. `None` while the audio codec is
    /// open (before the answer) or is one the gateway cannot speak (only G.711).
    fn fax_plan(&self, li: usize, mi: usize) -> Option<FaxPlan> {
        if self.delete_at.is_some() {
            return None;
        }
        let this = self.legs[li].medias.get(mi)?;
        let peer = self.legs[li].peer?;
        let other = self.legs[peer.0].medias.get(mi)?;
        match (this.t38.as_ref()?, other.t38.as_ref()?) {
            (T38Side::Fax(opts), T38Side::Audio(Some(codec))) => {
                GatewaySpec::new(*opts, &codec.name, codec.pt).map(FaxPlan::Gateway)
            }
            (T38Side::Audio(Some(codec)), T38Side::Fax(opts)) => {
                GatewaySpec::new(*opts, &codec.name, codec.pt).map(|_| FaxPlan::Audio)
            }
            _ => None,
        }
    }

    /// Some media of the call is part of a T.38 gateway.
    pub(crate) fn has_t38_gateway(&self) -> bool {
        self.legs
            .iter()
            .any(|l| l.medias.iter().any(|m| m.t38.is_some()))
    }

    /// SRTP between leg `li` and its peer on media `mi` passes through untouched
    /// (rtpengine's `__determine_handler` without `must_recrypt`): both parties speak SDES,
    /// each was given the key the other sends with (the SDES offer copied the offerer's
    /// line and the answer carried the answerer's key), and nothing here needs the plain
    /// payload: no transcoding, recording, interception, subscribers, media control,
    /// players, echo or DTMF reports.
    pub(crate) fn srtp_passthrough(&self, li: usize, mi: usize) -> bool {
        if self.srtp_recrypt || self.record || self.intercept != 0 || !self.control.is_default() {
            return false;
        }
        let Some(peer) = self.legs[li].peer else {
            return false;
        };
        if self.legs[peer.0].peer != Some(LegId(li)) {
            return false;
        }
        let same = |a: &Option<CryptoAttr>, b: &Option<CryptoAttr>| match (a, b) {
            (Some(a), Some(b)) => a.suite == b.suite && a.key_salt == b.key_salt && a.mki == b.mki,
            _ => false,
        };
        let quiet = |l: usize| {
            let leg = &self.legs[l];
            let (rtp, rtcp) = self.copies_of(l, mi);
            leg.control.is_default()
                && leg.subscription.is_none()
                && !leg.publisher
                && rtp.is_empty()
                && rtcp.is_empty()
                && leg.medias.get(mi).is_some_and(|m| {
                    m.sdes.active()
                        && m.dtls.active.is_none()
                        && m.codec_state.transcode_rx.is_none()
                        && m.feed.is_none()
                        && m.playing.is_none()
                        && m.echo == Echo::Relay
                })
        };
        if !quiet(li) || !quiet(peer.0) {
            return false;
        }
        let (a, b) = (
            &self.legs[li].medias[mi].sdes,
            &self.legs[peer.0].medias[mi].sdes,
        );
        same(&a.remote, &b.local) && same(&b.remote, &a.local)
    }

    /// From now on SRTP is always decrypted and encrypted anew (something is injected into
    /// the call); true when some stream passed SRTP through until now and a new plan is due.
    pub(crate) fn end_srtp_passthrough(&mut self) -> bool {
        let was = (0..self.legs.len())
            .any(|l| (0..self.legs[l].medias.len()).any(|m| self.srtp_passthrough(l, m)));
        self.srtp_recrypt = true;
        was
    }

    /// The subscriber sockets that get copies of leg `li`'s media `mi`: (RTP, RTCP).
    fn copies_of(&self, li: usize, mi: usize) -> (Vec<CopySink>, Vec<CopySink>) {
        let (mut rtp, mut rtcp) = (Vec::new(), Vec::new());
        let control = &self.legs[li].control;
        for sub in &self.legs {
            let Some(s) = sub.subscription.as_ref().filter(|s| s.answered) else {
                continue;
            };
            let block = control.blocked_to.contains(&sub.tag);
            let silence = control.silenced_to.contains(&sub.tag);
            for m in &sub.medias {
                if m.source != Some((LegId(li), mi)) {
                    continue;
                }
                let Some(ports) = m.ports else { continue };
                rtp.push(CopySink {
                    port: ports.rtp.key,
                    egress: s.egress,
                    block,
                    silence,
                });
                rtcp.push(CopySink {
                    port: if m.rtcp_mux {
                        ports.rtp.key
                    } else {
                        ports.rtcp.key
                    },
                    egress: s.egress,
                    block,
                    silence: false,
                });
            }
        }
        (rtp, rtcp)
    }

    /// For a subscriber's media: where its RTCP goes back to (the source's socket, when the
    /// source has ports) and whether `RTCP mirror` asks for it.
    fn subscription_source(&self, li: usize, mi: usize) -> Option<(Option<PortKey>, bool)> {
        let leg = &self.legs[li];
        let sub = leg.subscription.as_ref()?;
        let (src, smi) = leg.medias.get(mi)?.source?;
        let back = self
            .legs
            .get(src.0)
            .and_then(|l| l.medias.get(smi))
            .and_then(|m| {
                m.ports
                    .map(|p| if m.rtcp_mux { p.rtp.key } else { p.rtcp.key })
            });
        Some((back, sub.rtcp_mirror && sub.answered))
    }

    /// The call as a recording sink needs to know it: ids, labels, codecs, metadata.
    pub(crate) fn tap_info(&self) -> TapCall {
        let mut metadata: Vec<String> = self
            .legs
            .iter()
            .filter_map(|l| l.metadata.clone())
            .collect();
        metadata.extend(self.record_metadata.iter().cloned());
        TapCall {
            call_id: self.id.clone(),
            legs: self
                .legs
                .iter()
                .map(|l| TapLeg {
                    tag: l.tag.clone(),
                    label: l.label.clone(),
                    medias: l
                        .medias
                        .iter()
                        .map(|m| {
                            m.codecs
                                .iter()
                                .map(|c| TapCodec {
                                    pt: c.pt,
                                    name: c.name.clone(),
                                    clock_rate: c.clock_rate,
                                    channels: c.channels,
                                    fmtp: c.fmtp.clone(),
                                })
                                .collect()
                        })
                        .collect(),
                })
                .collect(),
            metadata,
            output_destination: self.record_destination.clone(),
        }
    }

    /// The call as the interception sink matches it: tags, labels, metadata, peers and
    /// every media address known for each party (signalled and learned).
    pub(crate) fn intercept_info(&self) -> InterceptCall {
        InterceptCall {
            call: self.key,
            call_id: self.id.clone(),
            legs: self
                .legs
                .iter()
                .map(|l| {
                    let mut addresses = Vec::new();
                    for m in &l.medias {
                        let learned = [m.rtp_stats.endpoint(), m.rtcp_stats.endpoint()];
                        for a in [m.advertised_rtp, m.advertised_rtcp]
                            .into_iter()
                            .chain(learned)
                            .flatten()
                        {
                            if !addresses.contains(&a) {
                                addresses.push(a);
                            }
                        }
                    }
                    InterceptLeg {
                        tags: std::iter::once(&l.tag)
                            .chain(&l.aliases)
                            .filter(|t| !t.is_empty())
                            .cloned()
                            .collect(),
                        label: l.label.clone(),
                        metadata: l.metadata.clone(),
                        peer: l.peer.map(|p| p.0 as u16),
                        addresses,
                    }
                })
                .collect(),
            forwarding: self.forwarding,
        }
    }
}
