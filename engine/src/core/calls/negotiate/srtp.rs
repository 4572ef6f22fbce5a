//! SRTP in offer/answer: the transport profile toward each party and the SDES (`a=crypto`)
//! and DTLS (`a=setup`, `a=fingerprint`) keying settled for both parties of each m= line.

use std::sync::Arc;

use tracing::warn;

use super::{Exchange, Role};
use crate::core::calls::model::{
    Call, DtlsMediaState, Keying, Media, SdesState, Setup, TransportProfile,
};
use crate::core::calls::CallError;
use crate::core::dtls::{DtlsIdentity, DtlsRole, Fingerprint, HashFunction};
use crate::core::plan::DtlsParams;
use crate::core::request::{DtlsMode, OfferAnswer};
use crate::core::sdes::{self, CryptoAttr};
use crate::core::sdp::{MediaSection, Sdp};

/// The profile an answer gives the offerer: its own, unless the answer's
/// `transport-protocol` names another one, or says `accept` and the answerer changed the
/// profile it was offered (rtpengine passes that change on to the offerer).
fn answer_protocol(
    flag: Option<&str>,
    answered: &TransportProfile,
    offered: Option<&TransportProfile>,
    own: TransportProfile,
) -> TransportProfile {
    match flag {
        Some("accept") if offered.is_some_and(|o| o != answered) && answered.convertible() => {
            answered.clone()
        }
        _ => named_profile(flag).unwrap_or(own),
    }
}

/// The profile `transport-protocol` names, if it is one we convert to.
fn named_profile(flag: Option<&str>) -> Option<TransportProfile> {
    flag.map(TransportProfile::parse)
        .filter(TransportProfile::convertible)
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
pub(crate) fn settle_srtp(
    call: &mut Call,
    ex: Exchange,
    src: &mut Sdp,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
) -> Result<Vec<Option<TransportProfile>>, CallError> {
    (0..src.media.len())
        .map(|i| settle_media(call, ex, src, i, req, identity))
        .collect()
}

/// [`settle_srtp`] for m= line `i`: the profile toward the receiver, then the sender's keys,
/// then what the receiver is offered or answered. Returns the profile to write when it
/// differs from the sender's.
fn settle_media(
    call: &mut Call,
    ex: Exchange,
    src: &mut Sdp,
    i: usize,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
) -> Result<Option<TransportProfile>, CallError> {
    let Exchange { from, to, role } = ex;
    let in_proto = TransportProfile::parse(&src.media[i].m.proto);
    let out_proto = receiver_profile(call, ex, i, &in_proto, req);
    if let (Role::Offer, Some(m)) = (role, call.leg_mut(to).medias.get_mut(i)) {
        m.offered_protocol = Some(out_proto.clone());
    }
    let passthrough = call
        .leg(to)
        .medias
        .get(i)
        .is_some_and(|m| m.ice_passthrough);
    if passthrough
        || !in_proto.convertible()
        || !out_proto.convertible()
        || src.media[i].m.port == 0
    {
        return Ok(None);
    }
    let mut sender = SenderSrtp::read(src, i, &in_proto, role, identity, &call.leg(from).medias[i]);
    settle_sender(
        &mut call.leg_mut(from).medias[i],
        &mut sender,
        role,
        req,
        identity,
        i,
    )?;
    let receiver_media = &mut call.leg_mut(to).medias[i];
    let section = &mut src.media[i];
    settle_receiver(
        receiver_media,
        section,
        &sender,
        &out_proto,
        role,
        req,
        identity,
    )?;
    // RTCP feedback means nothing to a party without an AVPF profile (RFC 4585 §4).
    if in_proto.has_feedback() && !out_proto.has_feedback() {
        section.remove_attributes("rtcp-fb");
    }
    Ok((out_proto != in_proto).then_some(out_proto))
}

/// The profile toward the receiver of m= line `i` (the sender's `in_proto` unless changed).
fn receiver_profile(
    call: &Call,
    ex: Exchange,
    i: usize,
    in_proto: &TransportProfile,
    req: &OfferAnswer,
) -> TransportProfile {
    let Exchange { from, to, role } = ex;
    match role {
        // Without `transport-protocol`, the profile chosen toward the receiver stays
        // while the sender keeps its own (rtpengine's `__update_media_protocol`).
        Role::Offer => named_profile(req.transport_protocol.as_deref())
            .or_else(|| {
                let unchanged = call.leg(from).medias[i].protocol_before.as_ref() == Some(in_proto);
                let theirs = call.leg(to).medias.get(i).map(|m| m.protocol.clone());
                theirs.filter(|p| unchanged && p.convertible())
            })
            .unwrap_or_else(|| in_proto.clone()),
        Role::Answer => {
            let own = call
                .leg(to)
                .medias
                .get(i)
                .map(|m| m.protocol.clone())
                .filter(TransportProfile::convertible)
                .unwrap_or_else(|| in_proto.clone());
            let offered = call
                .leg(from)
                .medias
                .get(i)
                .and_then(|m| m.offered_protocol.as_ref());
            answer_protocol(req.transport_protocol.as_deref(), in_proto, offered, own)
        }
    }
}

/// What the sender's SDP says about SRTP on one m= line.
struct SenderSrtp {
    /// Its `a=crypto` lines that parse.
    lines: Vec<CryptoAttr>,
    /// Its certificate fingerprint (section, else session level).
    fingerprint: Option<Fingerprint>,
    /// Its `a=setup`.
    setup: Option<Setup>,
    /// OSRTP (RFC 8643): `a=crypto` on a plain RTP line.
    osrtp: bool,
    /// It keys with SDES.
    sdes: bool,
    /// It keys with DTLS.
    dtls: bool,
    /// In an answer, the line of our SDES offer it accepted (set by [`settle_sender`]).
    accepted: Option<CryptoAttr>,
}

impl SenderSrtp {
    fn read(
        src: &Sdp,
        i: usize,
        in_proto: &TransportProfile,
        role: Role,
        identity: Option<&Arc<DtlsIdentity>>,
        sender_media: &Media,
    ) -> SenderSrtp {
        let lines: Vec<CryptoAttr> = src.media[i]
            .attributes("crypto")
            .filter_map(|v| CryptoAttr::parse(v).ok())
            .collect();
        let fingerprint = section_or_session(src, i, "fingerprint").and_then(|v| {
            Fingerprint::parse(v)
                .map_err(|e| warn!(media = i + 1, error = %e, "ignoring a=fingerprint"))
                .ok()
        });
        let setup = section_or_session(src, i, "setup").and_then(Setup::parse);
        // OSRTP (RFC 8643): a=crypto on an RTP/AVP line offers SRTP opportunistically, as
        // rtpengine reads it (its `osrtp_proto`), with or without `OSRTP` flags; an answer
        // to our OSRTP offer says yes by carrying a=crypto.
        let osrtp = in_proto.is_plain() && !lines.is_empty();
        // DTLS when the profile says so, or on an SRTP profile that carries a fingerprint
        // but no crypto line; in an answer, a fingerprint picks DTLS from our dual offer.
        let dtls = identity.is_some()
            && fingerprint.is_some()
            && match role {
                Role::Offer => in_proto.is_dtls() || (in_proto.is_sdes() && lines.is_empty()),
                Role::Answer => sender_media.dtls.offered.is_some(),
            };
        let sdes =
            !dtls && (in_proto.is_sdes() || osrtp || (role == Role::Answer && !lines.is_empty()));
        SenderSrtp {
            lines,
            fingerprint,
            setup,
            osrtp,
            sdes,
            dtls,
            accepted: None,
        }
    }
}

/// Settle the sender's own keys from its SDP: its SDES key and ours toward it, its DTLS
/// fingerprint and our role, and the keying methods it uses; in an answer, note the SDES
/// line the answerer accepted (for the answer to an SDES offerer).
fn settle_sender(
    sender_media: &mut Media,
    sender: &mut SenderSrtp,
    role: Role,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
    i: usize,
) -> Result<(), CallError> {
    settle_sender_sdes(&mut sender_media.sdes, sender, role, req, i)?;
    // What the answerer accepted, for the answer to an SDES offerer.
    sender.accepted = match role {
        Role::Answer => sender_media.sdes.remote.clone(),
        Role::Offer => None,
    };
    settle_sender_dtls(&mut sender_media.dtls, sender, role, req, identity);
    // What the sender's own SDP says about its keying.
    sender_media.keying.dtls = sender.dtls;
    if !sender.lines.is_empty() {
        sender_media.keying.sdes = true;
    }
    Ok(())
}

/// The sender's SDES state: in an offer, its key (one of its lines) and ours with the same
/// tag and suite; in an answer, the line of our offer it accepted.
fn settle_sender_sdes(
    state: &mut SdesState,
    sender: &SenderSrtp,
    role: Role,
    req: &OfferAnswer,
    i: usize,
) -> Result<(), CallError> {
    let lines = &sender.lines;
    match role {
        Role::Offer if sender.sdes => {
            let pruned = req.sdes.prune_offered(lines);
            state.received = pruned.iter().filter(|l| l.is_usable()).cloned().collect();
            match sdes::select_offerer_crypto(&pruned, &req.sdes.offerer_pref) {
                Ok(chosen) => {
                    let same = state
                        .local
                        .as_ref()
                        .is_some_and(|l| l.tag == chosen.tag && l.suite == chosen.suite);
                    if !same {
                        state.local = Some(CryptoAttr::generate(chosen.tag, chosen.suite)?);
                    }
                    state.remote = Some(chosen.clone());
                }
                Err(e) => {
                    warn!(media = i + 1, error = %e, "SDES offer without a usable a=crypto line");
                    state.local = None;
                    state.remote = None;
                }
            }
        }
        Role::Answer if sender.sdes && !state.offered.is_empty() => {
            match sdes::select_answer(&state.offered, lines) {
                Ok((ours, theirs)) => {
                    let ours = ours.clone();
                    state.remote = Some(theirs.clone());
                    // Only the accepted line stays offered (rtpengine's `__sdes_accept`):
                    // a re-offer repeats it first and fresh keys for the other suites.
                    state.offered = vec![ours.clone()];
                    state.local = Some(ours);
                }
                Err(e) => {
                    warn!(media = i + 1, error = %e, "SDES answer does not match our offer");
                    state.local = None;
                    state.remote = None;
                }
            }
        }
        Role::Offer => {
            state.local = None;
            state.remote = None;
            state.received.clear();
        }
        _ => {
            state.local = None;
            state.remote = None;
        }
    }
    Ok(())
}

/// The sender's DTLS state: its fingerprint and our role toward it, settled into an
/// association when it answers our DTLS offer.
fn settle_sender_dtls(
    state: &mut DtlsMediaState,
    sender: &SenderSrtp,
    role: Role,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
) {
    match (role, identity, sender.fingerprint.clone()) {
        (Role::Offer, Some(id), Some(fp)) if sender.dtls => {
            let our_role = match (sender.setup, req.dtls) {
                (Some(Setup::Active), _) => DtlsRole::Server,
                (Some(Setup::Passive), _) => DtlsRole::Client,
                (_, DtlsMode::Passive) => DtlsRole::Server,
                _ if req.dtls_reverse_passive => DtlsRole::Server,
                _ => DtlsRole::Client,
            };
            let keep = state.active.as_ref().is_some_and(|p| {
                p.remote == fp && p.role == our_role && Arc::ptr_eq(&p.identity, id)
            });
            if !keep {
                state.active = None;
            }
            state.offered = None;
            state.remote = Some(fp);
            state.pending_role = Some(our_role);
        }
        (Role::Answer, Some(id), Some(fp)) if sender.dtls => {
            // No a=setup in an answer means active (RFC 4145 §4).
            let our_role = match (sender.setup, state.offered) {
                (Some(Setup::Passive), _) => DtlsRole::Client,
                (_, Some(Setup::Active)) => DtlsRole::Client,
                _ => DtlsRole::Server,
            };
            let params = DtlsParams {
                role: our_role,
                remote: fp.clone(),
                identity: id.clone(),
            };
            if state.active.as_ref() != Some(&params) {
                state.active = Some(params);
            }
            state.remote = Some(fp);
            state.pending_role = None;
        }
        _ => *state = DtlsMediaState::default(),
    }
}

/// What the receiver gets: the keying methods it is offered, our `a=crypto` lines, and our
/// `a=setup`/`a=fingerprint`, written into its `section`.
fn settle_receiver(
    receiver_media: &mut Media,
    section: &mut MediaSection,
    sender: &SenderSrtp,
    out_proto: &TransportProfile,
    role: Role,
    req: &OfferAnswer,
    identity: Option<&Arc<DtlsIdentity>>,
) -> Result<(), CallError> {
    let srtp_out = out_proto.is_sdes() || out_proto.is_dtls();
    if role == Role::Offer {
        decide_keying(&mut receiver_media.keying, srtp_out, req);
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
    // An OSRTP offer goes on as one unless `transport-protocol` names another profile.
    let osrtp_on = sender.osrtp && !sender.dtls && req.transport_protocol.is_none();
    let sdes_to_receiver = (out_proto.is_sdes() || req.osrtp.offer || osrtp_on) && sdes_allowed;
    let out_lines = receiver_crypto(
        &mut receiver_media.sdes,
        sender,
        sdes_to_receiver,
        out_proto,
        role,
        req,
    )?;
    if out_lines.is_empty() {
        section.remove_attributes("crypto");
    } else {
        let write_opts = req.sdes.write_options();
        let values: Vec<String> = out_lines.iter().map(|a| a.write(write_opts)).collect();
        section.set_attributes("crypto", &values);
    }
    let setup = receiver_setup(
        &mut receiver_media.dtls,
        receiver_identity,
        out_proto,
        role,
        req,
    );
    write_dtls_lines(receiver_media, section, setup, receiver_identity, role, req);
    Ok(())
}

/// The keying methods offered to a party that gets an SRTP profile (see [`Keying`]).
fn decide_keying(keying: &mut Keying, srtp_out: bool, req: &OfferAnswer) {
    // `DTLS=off` and `SDES=off` name the side an offer goes to (rtpengine's
    // `__generate_crypto` runs for the receiving media only), and only the first
    // offer giving it SRTP asks them. The sender's own DTLS is still accepted, and
    // answered, whatever the flags say (`__dtls_logic`), so a WebRTC browser
    // calling an SDES phone with `DTLS=off` still gets its fingerprint and a=setup.
    if !srtp_out {
        *keying = Keying::default();
    } else if keying.undecided() {
        *keying = Keying {
            dtls: req.dtls != DtlsMode::Off,
            sdes: !req.sdes_off,
        };
    }
}

/// The `a=crypto` lines the receiver gets: in an offer our offer list (when it gets SDES),
/// in an answer our one settled key line.
fn receiver_crypto(
    receiver: &mut SdesState,
    sender: &SenderSrtp,
    sdes_to_receiver: bool,
    out_proto: &TransportProfile,
    role: Role,
    req: &OfferAnswer,
) -> Result<Vec<CryptoAttr>, CallError> {
    Ok(match role {
        Role::Offer if sdes_to_receiver => {
            // An SDES offerer's own lines go on with their keys (rtpengine copies them);
            // what this party was offered (after an answer: the line it accepted) or
            // answered with before comes next with its keys; fresh keys fill the rest.
            let previous = if receiver.offered.is_empty() {
                receiver.local.iter().cloned().collect()
            } else {
                std::mem::take(&mut receiver.offered)
            };
            let offerer: &[CryptoAttr] = if sender.sdes { &sender.lines } else { &[] };
            receiver.offered = sdes::generate_offer_following(offerer, &previous, &req.sdes)?;
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
            if let (false, Some(accepted)) = (keep, &sender.accepted) {
                if let Some((theirs, ours)) = sdes::answer_following(&receiver.received, accepted) {
                    receiver.remote = Some(theirs);
                    receiver.local = Some(ours);
                }
            }
            // An OSRTP offerer whose answerer chose plain RTP is answered plain too,
            // unless `OSRTP: accept` keeps SRTP toward it (rtpengine's `osrtp_accept`).
            if out_proto.is_plain() && !sender.sdes && !sender.dtls && !req.osrtp.accept {
                receiver.local = None;
                receiver.remote = None;
            }
            match (&receiver.local, &receiver.remote) {
                (Some(local), Some(_)) => vec![local.clone()],
                _ => Vec::new(),
            }
        }
    })
}

/// The `a=setup` the receiver gets from us, if any: in an offer what `DTLS` asks (a
/// re-offer keeps a settled association until the answer), in an answer our role toward
/// an offerer that offered DTLS, which settles the association.
fn receiver_setup(
    rdtls: &mut DtlsMediaState,
    receiver_identity: Option<&Arc<DtlsIdentity>>,
    out_proto: &TransportProfile,
    role: Role,
    req: &OfferAnswer,
) -> Option<Setup> {
    match (role, receiver_identity) {
        (Role::Offer, Some(_)) if out_proto.is_dtls() || out_proto.is_sdes() => {
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
    }
}

/// Our `a=setup` and `a=fingerprint` in the receiver's section, or neither.
fn write_dtls_lines(
    receiver_media: &mut Media,
    section: &mut MediaSection,
    setup: Option<Setup>,
    receiver_identity: Option<&Arc<DtlsIdentity>>,
    role: Role,
    req: &OfferAnswer,
) {
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
}
