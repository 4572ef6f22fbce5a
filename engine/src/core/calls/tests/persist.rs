//! Stored call state: what a call looks like stored, and an engine taking it over.

use super::*;
use crate::core::plan::StreamPlan;
use crate::core::state::{CallState, STATE_VERSION};
use crate::core::store::StateStore;

/// Keeps the latest saved state of each call, like the Redis store does.
#[derive(Default)]
pub(super) struct MemoryStore {
    saved: Mutex<HashMap<String, CallState>>,
    saves: Mutex<u32>,
}

impl StateStore for MemoryStore {
    fn save(&self, state: CallState) {
        *self.saves.lock().unwrap() += 1;
        self.saved
            .lock()
            .unwrap()
            .insert(state.call_id.clone(), state);
    }
    fn remove(&self, call_id: &str) {
        self.saved.lock().unwrap().remove(call_id);
    }
}

impl MemoryStore {
    pub(super) fn get(&self, id: &str) -> Option<CallState> {
        self.saved.lock().unwrap().get(id).cloned()
    }
    fn saves(&self) -> u32 {
        *self.saves.lock().unwrap()
    }
}

fn stored_engine(ports: &[u16]) -> (Calls, Arc<FakeMedia>, Arc<MemoryStore>) {
    let media = FakeMedia::scripted(ports);
    let mut calls = calls_with(media.clone(), EngineConfig::default());
    let store = Arc::new(MemoryStore::default());
    calls.set_store(store.clone());
    (calls, media, store)
}

const SAVP_ANSWER: &str = "v=0
o=bob 1 1 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 40010 RTP/SAVP 0
a=rtpmap:0 PCMU/8000
a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw
a=sendrecv
";

/// An RTP/AVP → RTP/SAVP call on ports 30000 (A) / 30002 (B).
fn srtp_call(calls: &mut Calls, clock: &Clock) {
    let mut req = offer_req("c1", "tagA", OFFER_B);
    req.transport_protocol = Some("RTP/SAVP".into());
    calls.offer(&req, clock.now()).unwrap();
    calls
        .answer(&answer_req("c1", "tagA", "tagB", SAVP_ANSWER), clock.now())
        .unwrap();
}

fn rtp_stream<'a>(plan: &'a CallPlan, calls: &Calls, port: u16) -> &'a StreamPlan {
    let c = &calls.calls["c1"];
    let key = c
        .legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter_map(|m| m.ports)
        .find(|p| p.rtp.addr.port() == port)
        .unwrap()
        .rtp
        .key;
    plan.streams.iter().find(|s| s.port == key).unwrap()
}

#[test]
fn every_signalling_change_is_saved_and_delete_removes() {
    let (mut calls, _media, store) = stored_engine(&[30000, 30002]);
    let clock = Clock::new();
    calls
        .offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    let offered = store.get("c1").unwrap();
    assert_eq!(offered.version, STATE_VERSION);
    assert_eq!(offered.legs.len(), 2);
    assert_eq!(offered.legs[1].tag, "");
    calls
        .answer(&answer_req("c1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
    let answered = store.get("c1").unwrap();
    assert_eq!(answered.legs[1].tag, "tagB");
    assert_eq!(answered.legs[0].peer, Some(1));
    assert_eq!(
        answered.legs[0].medias[0].ports,
        Some((
            "127.0.0.1:30000".parse().unwrap(),
            "127.0.0.1:30001".parse().unwrap()
        ))
    );
    assert_eq!(store.saves(), 2);

    // Nothing moved: a sync writes nothing. Packets moved: it writes the counters.
    calls.sync_store(clock.now());
    assert_eq!(store.saves(), 2);
    let stats = calls.calls["c1"].legs[0].medias[0].rtp_stats.clone();
    stats.count_rx(172, 1_795_300_564_000);
    stats.set_endpoint(Some("127.0.0.2:40000".parse().unwrap()));
    calls.sync_store(clock.now());
    assert_eq!(store.saves(), 3);
    let live = &store.get("c1").unwrap().legs[0].medias[0].rtp;
    assert_eq!(live.counters.packets, 1);
    assert_eq!(live.counters.bytes, 172);
    assert_eq!(live.latched, Some("127.0.0.2:40000".parse().unwrap()));

    // A delete ends what a successor could take over, delay or not; the lingering call is
    // not saved again.
    let del = Delete {
        call_id: "c1".into(),
        delete_delay: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    calls.delete(&del, clock.now()).unwrap();
    assert!(store.get("c1").is_none());
    stats.count_rx(172, 1_795_300_565_000);
    calls.sync_store(clock.now());
    assert!(store.get("c1").is_none());
    assert_eq!(store.saves(), 3);
}

#[test]
fn state_survives_encoding_and_rejects_newer_versions() {
    let (mut calls, _media, store) = stored_engine(&[30000, 30002]);
    let clock = Clock::new();
    srtp_call(&mut calls, &clock);
    let state = store.get("c1").unwrap();
    let bytes = state.encode();
    assert_eq!(CallState::decode(&bytes).unwrap(), state);
    // Key material is base64, not a JSON array of numbers.
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains("\"MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw\""),
        "{text}"
    );

    let newer = text.replacen(
        &format!("\"version\":{STATE_VERSION}"),
        &format!("\"version\":{}", STATE_VERSION + 1),
        1,
    );
    assert!(matches!(
        CallState::decode(newer.as_bytes()),
        Err(crate::core::state::StateError::TooNew(_))
    ));
    assert!(CallState::decode(b"{\"version\":1}").is_err());
    assert!(CallState::decode(b"not json").is_err());
}

#[test]
fn another_engine_takes_the_call_over_on_the_same_ports() {
    let (mut a, media_a, store) = stored_engine(&[30000, 30002]);
    let clock = Clock::new();
    srtp_call(&mut a, &clock);
    // Traffic on B's side: latched, counted, SRTP positions recorded by the worker.
    let b_media = &a.calls["c1"].legs[1].medias[0];
    b_media.rtp_stats.count_rx(200, 1_795_300_564_000);
    b_media
        .rtp_stats
        .set_endpoint(Some("127.0.0.3:40010".parse().unwrap()));
    b_media
        .rtp_stats
        .srtp_in
        .store(0x1234_5678_0001_0203, Relaxed);
    b_media
        .rtp_stats
        .srtp_out
        .store(0x0bad_cafe_0000_ff00, Relaxed);
    b_media
        .rtp_stats
        .srtcp_out
        .store(0x0bad_cafe_0000_0007, Relaxed);
    let dtls_keys = crate::core::dtls::DtlsKeys {
        suite: crate::core::srtp::SrtpSuite::AesCm128HmacSha1_80,
        local: vec![1; 30],
        remote: vec![2; 30],
    };
    b_media.rtp_stats.set_dtls_keys(Some(dtls_keys.clone()));
    a.sync_store(clock.now());
    let before = rtp_stream(&media_a.plan(a.calls["c1"].key), &a, 30002).clone();
    let state = store.get("c1").unwrap();

    let (mut b, media_b, store_b) = stored_engine(&[]);
    let outcome = b.restore(vec![state.clone()], clock.now());
    assert_eq!(outcome.restored, ["c1"]);
    assert!(outcome.failed.is_empty());
    // The new owner saved it (ownership moves with the save).
    assert!(store_b.get("c1").is_some());

    let plan = media_b.plan(b.calls["c1"].key);
    let after = rtp_stream(&plan, &b, 30002);
    assert_eq!(after.srtp_in, before.srtp_in);
    assert_eq!(after.srtp_out, before.srtp_out);
    assert_eq!(after.rtp_sink.is_some(), before.rtp_sink.is_some());
    assert_eq!(
        after.resume,
        Some(crate::core::plan::StreamResume {
            latched: Some("127.0.0.3:40010".parse().unwrap()),
            srtp_in: 0x1234_5678_0001_0203,
            srtp_out: 0x0bad_cafe_0000_ff00,
            srtcp_out: 0x0bad_cafe_0000_0007,
            dtls_keys: Some(dtls_keys.clone()),
        })
    );
    // Only the first plan resumes; later plans leave the worker's state alone.
    let replan = b.calls.get_mut("c1").unwrap().plan();
    assert!(replan.streams.iter().all(|s| s.resume.is_none()));

    // Counters continue; the call answers queries and deletes like any other.
    let snap = b
        .query(
            &Query {
                call_id: "c1".into(),
                ..Default::default()
            },
            clock.now(),
        )
        .unwrap();
    let b_leg = snap.legs.iter().find(|l| l.tag == "tagB").unwrap();
    assert_eq!(b_leg.medias[0].streams[0].counters.packets, 1);
    assert_eq!(b_leg.medias[0].streams[0].counters.bytes, 200);
    // Restoring the same call again is refused: it is live here.
    let again = b.restore(vec![state], clock.now());
    assert_eq!(again.failed.len(), 1);
    assert!(again.failed[0].1.contains("already in use"));
}

#[test]
fn a_call_whose_ports_cannot_be_bound_is_dropped_from_the_store() {
    let (mut a, _media, store) = stored_engine(&[30000, 30002]);
    let clock = Clock::new();
    srtp_call(&mut a, &clock);
    let mut state = store.get("c1").unwrap();
    // Ports on an address this engine has no interface for.
    state.legs[1].medias[0].ports = Some((
        "192.0.2.1:30002".parse().unwrap(),
        "192.0.2.1:30003".parse().unwrap(),
    ));
    let (mut b, media_b, store_b) = stored_engine(&[]);
    store_b.save(state.clone());
    let outcome = b.restore(vec![state], clock.now());
    assert!(outcome.restored.is_empty());
    assert_eq!(outcome.failed[0].0, "c1");
    assert!(
        outcome.failed[0]
            .1
            .contains("no interface is configured with address 192.0.2.1"),
        "{:?}",
        outcome.failed
    );
    assert!(store_b.get("c1").is_none());
    // The ports bound for the first leg were given back.
    assert_eq!(media_b.live_ports(), 0);
    assert!(b.is_empty());
}

/// Hands out one second of PCMU silence for any source.
struct SilenceLoader;

impl crate::core::player::MediaLoader for SilenceLoader {
    fn frames(
        &self,
        _source: &crate::core::request::MediaSource,
        codec: &ngmedia_codecs::Codec,
    ) -> Result<(Arc<crate::core::player::MediaFrames>, u64), String> {
        let frames = crate::core::player::MediaFrames::encode(codec, &[0; 8000], 8000)
            .map_err(|e| e.to_string())?;
        Ok((Arc::new(frames), 1000))
    }
}

#[test]
fn a_player_resumes_where_it_was_with_the_passes_left() {
    let (mut a, _media, store) = stored_engine(&[30000, 30002]);
    a.set_media_loader(Arc::new(SilenceLoader));
    let mut clock = Clock::new();
    a.offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    a.answer(&answer_req("c1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
    let play = crate::core::request::PlayMedia {
        call_id: "c1".into(),
        target: crate::core::request::PartySelector {
            party: crate::core::request::ControlTarget {
                from_tag: Some("tagB".into()),
                ..Default::default()
            },
            ..Default::default()
        },
        source: Some(crate::core::request::MediaSource::File(
            "/srv/hold.wav".into(),
        )),
        repeat_times: Some(3),
        ..Default::default()
    };
    a.play_media(&play, clock.now()).unwrap();
    // 2.5 of 3 passes played: half a pass left, from 500 ms.
    clock.advance(Duration::from_millis(2500));
    let state = a.calls["c1"].to_state(clock.now());
    let p = state.legs[1].medias[0].playing.clone().unwrap();
    assert_eq!((p.position_ms, p.repeat, p.moh), (500, Some(1), false));
    assert!(store.get("c1").unwrap().legs[1].medias[0].playing.is_some());

    let (mut b, _media_b, _store_b) = stored_engine(&[]);
    b.set_media_loader(Arc::new(SilenceLoader));
    assert_eq!(b.restore(vec![state], clock.now()).restored, ["c1"]);
    let playing = b.calls["c1"].legs[1].medias[0].playing.clone().unwrap();
    assert_eq!((playing.start_ms, playing.repeat), (500, Some(1)));
    // The player toward tagA was never started, so none is resumed there.
    assert!(b.calls["c1"].legs[0].medias[0].playing.is_none());
    // A blob is not kept: nothing to resume from.
    let blob = crate::core::request::PlayMedia {
        source: Some(crate::core::request::MediaSource::Blob(vec![1, 2, 3])),
        ..play
    };
    b.play_media(&blob, clock.now()).unwrap();
    assert!(b.calls["c1"].to_state(clock.now()).legs[1].medias[0]
        .playing
        .is_none());
}

#[test]
fn a_media_block_survives_a_takeover() {
    use crate::core::media_control::BlockDtmf;
    use crate::core::request::{ControlAction, ControlTarget, MediaControlRequest};
    let (mut a, _media, store) = stored_engine(&[30000, 30002]);
    let clock = Clock::new();
    a.offer(&offer_req("c1", "tagA", OFFER_B), clock.now())
        .unwrap();
    a.answer(&answer_req("c1", "tagA", "tagB", ANSWER_B), clock.now())
        .unwrap();
    let ctl = |action, from_tag: Option<&str>| MediaControlRequest {
        call_id: "c1".into(),
        target: ControlTarget {
            from_tag: from_tag.map(String::from),
            ..Default::default()
        },
        action,
    };
    a.media_control(&ctl(ControlAction::BlockMedia, Some("tagA")), clock.now())
        .unwrap();
    a.media_control(&ctl(ControlAction::SilenceMedia, None), clock.now())
        .unwrap();
    a.media_control(
        &ctl(ControlAction::BlockDtmf(Default::default()), Some("tagB")),
        clock.now(),
    )
    .unwrap();
    let state = store.get("c1").unwrap();
    assert!(state.legs[0].control.block_media);
    assert_eq!(state.legs[1].control.block_dtmf, BlockDtmf::Drop);
    assert!(state.control.silence_media);

    let (mut b, media_b, _store_b) = stored_engine(&[]);
    assert_eq!(b.restore(vec![state], clock.now()).restored, ["c1"]);
    let plan = media_b.plan(b.calls["c1"].key);
    let a_rtp = rtp_stream(&plan, &b, 30000);
    assert!(a_rtp.control.block_media && a_rtp.control.silence);
    let b_rtp = rtp_stream(&plan, &b, 30002);
    assert!(!b_rtp.control.block_media && b_rtp.control.silence);
    assert_eq!(b_rtp.control.block_dtmf, BlockDtmf::Drop);
    // The unblock on the new engine clears it.
    b.media_control(
        &MediaControlRequest {
            call_id: "c1".into(),
            target: ControlTarget {
                all: true,
                ..Default::default()
            },
            action: ControlAction::UnblockMedia,
        },
        clock.now(),
    )
    .unwrap();
    let plan = media_b.plan(b.calls["c1"].key);
    assert!(!rtp_stream(&plan, &b, 30000).control.block_media);
}

#[test]
fn a_taken_over_call_is_stored_again_exactly_as_it_was() {
    // Every model field a stored call keeps, set away from its default where it has one, must
    // come back on the new owner: it saves the call at once, and that save must equal ours.
    let clock = Clock::new();
    let (mut a, _media_a, store) = stored_engine(&[30000, 30002]);
    srtp_call(&mut a, &clock);
    {
        let call = a.calls.get_mut("c1").unwrap();
        call.tos = 0xb8;
        call.srtp_recrypt = true;
        call.legs[1].delete_at = Some(clock.now().mono + Duration::from_secs(30));
        let m = &mut call.legs[0].medias[0];
        m.echo = super::super::model::Echo::Reflect;
        m.t38 = Some(super::super::model::T38Side::Fax(
            crate::core::t38::T38Options {
                version: 0,
                fec_span: 1,
                max_ec_entries: 3,
                max_ifp: 300,
                max_datagram: 400,
                local_tcf: false,
                fill_bit_removal: false,
                transcoding_mmr: false,
                transcoding_jbig: false,
                no_ecm: true,
                no_v17: false,
                no_v27ter: false,
                no_v29: false,
                no_v34: true,
                no_iaf: false,
            },
        ));
        m.protocol_before = Some("RTP/AVP".into());
        m.offered_protocol = Some("RTP/SAVP".into());
        m.ice_full = true;
        m.ice_we_offered = true;
        m.ice_lite_self = Some(false);
        m.trickle_ice = true;
        m.fp_hash = Some(crate::core::dtls::HashFunction::Sha256);
        m.keying = super::super::model::Keying {
            dtls: true,
            sdes: true,
        };
        m.remote_ice = Some(super::super::model::RemoteIce {
            ufrag: "uf".into(),
            pwd: "pw".into(),
            lite: true,
            candidates: vec![(1, "127.0.0.3:40010".parse().unwrap())],
        });
    }
    a.persist_call("c1", clock.now());
    let state = store.get("c1").unwrap();
    let media = &state.legs[0].medias[0];
    assert_eq!(state.tos, Some(0xb8));
    assert!(state.srtp_recrypt);
    assert!(state.legs[1].delete_at_ms.is_some());
    assert_eq!(media.echo.as_deref(), Some("reflect"));
    assert!(media.ice.full && media.ice.trickle && media.ice.remote.is_some());
    assert_eq!(media.keying, (true, true));

    let (mut b, _media_b, store_b) = stored_engine(&[]);
    assert_eq!(b.restore(vec![state.clone()], clock.now()).restored, ["c1"]);
    b.persist_call("c1", clock.now());
    assert_eq!(store_b.get("c1").unwrap(), state);
}
