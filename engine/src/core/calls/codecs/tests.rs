//! Codec negotiation scenarios: offers with `codec` options, answers, and the transcoders
//! planned, against an in-memory media plane.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::answer::AnswerOutcome;
use super::offer::added_codec;
use super::*;
use crate::core::calls::{Calls, Now};
use crate::core::config::{EngineConfig, Interface};
use crate::core::plan::{CallKey, CallPlan, LocalPort, MediaPlane, PortError, PortKey, PortPair};
use crate::core::request::{CodecOptions, IceMode};
use crate::core::stats::PacketTotals;

/// Ports from a script; remembers the last plan.
#[derive(Default)]
struct Plane {
    ports: Mutex<Vec<u16>>,
    next_key: Mutex<u64>,
    plan: Mutex<Option<CallPlan>>,
}

impl MediaPlane for Plane {
    fn allocate_pair_at(&self, _iface: &Interface, _port: u16) -> Result<PortPair, PortError> {
        Err(PortError::Exhausted)
    }

    fn allocate_pair(&self, iface: &Interface) -> Result<PortPair, PortError> {
        let port = self.ports.lock().unwrap().remove(0);
        let mut k = self.next_key.lock().unwrap();
        *k += 2;
        let lp = |key, p| LocalPort {
            key: PortKey(key),
            addr: SocketAddr::new(iface.local, p),
        };
        Ok(PortPair {
            rtp: lp(*k - 1, port),
            rtcp: lp(*k, port + 1),
        })
    }
    fn apply(&self, plan: CallPlan) {
        *self.plan.lock().unwrap() = Some(plan);
    }
    fn remove(&self, _call: CallKey) {}
    fn release(&self, _ports: &[PortKey]) {}
    fn totals(&self) -> PacketTotals {
        PacketTotals::default()
    }
}

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix_us: 1_800_000_000_000_000,
    }
}

/// Example C/D's offer (captures/ex5.out).
const OFFER_C: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

const ANSWER_OPUS: &str = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

fn setup(ports: &[u16]) -> (Calls, Arc<Plane>) {
    let plane = Arc::new(Plane::default());
    *plane.ports.lock().unwrap() = ports.to_vec();
    (
        Calls::new(Arc::new(EngineConfig::default()), plane.clone()),
        plane,
    )
}

fn req(sdp: &str, to_tag: Option<&str>, codec: CodecOptions) -> OfferAnswer {
    OfferAnswer {
        call_id: "call-tc-1".into(),
        from_tag: "tagA".into(),
        to_tag: to_tag.map(Into::into),
        sdp: crlf(sdp),
        ice: IceMode::Remove,
        codec,
        ..Default::default()
    }
}

fn transcode(list: &[&str]) -> CodecOptions {
    CodecOptions {
        transcode: list.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn sdp_codec(pt: u8, name: &str, rate: u32, ch: Option<u8>, fmtp: Option<&str>) -> SdpCodec {
    SdpCodec {
        pt,
        name: name.into(),
        clock_rate: rate,
        channels: ch,
        fmtp: fmtp.map(Into::into),
    }
}

/// Example D of the reference, byte for byte: offer adds opus (PT 96) and
/// telephone-event/48000 (PT 97); the answer accepting only opus gives the caller PCMU
/// and engages a transcoder in both directions.
#[test]
fn example_d_transcode_opus() {
    let (mut calls, plane) = setup(&[30168, 30152]);
    let offer = calls
        .offer(&req(OFFER_C, None, transcode(&["opus"])), now())
        .unwrap();
    assert_eq!(
        offer.sdp,
        crlf(
            "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30152 RTP/AVP 0 96 97 101
a=rtpmap:0 PCMU/8000
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/48000
a=fmtp:97 0-15
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30153
"
        )
    );
    assert_eq!(offer.sdp.len(), 266);
    // Before the answer nothing is transcoded.
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    assert!(plan.streams.iter().all(|s| s.transcode.is_none()));

    let answer = calls
        .answer(
            &req(ANSWER_OPUS, Some("tagB"), CodecOptions::default()),
            now(),
        )
        .unwrap();
    assert_eq!(
        answer.sdp,
        crlf(
            "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30168 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30169
"
        )
    );
    assert_eq!(answer.sdp.len(), 181);
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
    // RTP and RTCP port of each side carry the spec.
    assert_eq!(specs.len(), 4);
    let a_to_b = specs.iter().find(|s| s.input.pt == 0).unwrap();
    assert_eq!(a_to_b.input.codec.name(), "PCMU");
    assert_eq!(
        (a_to_b.input.event_pt, a_to_b.input.ptime_ms),
        (Some(101), 20)
    );
    assert_eq!(a_to_b.output.codec.name(), "opus");
    // B answered telephone-event only at 8000, none at opus' 48000: tones in-band.
    assert_eq!((a_to_b.output.pt, a_to_b.output.event_pt), (96, None));
    let b_to_a = specs.iter().find(|s| s.input.pt == 96).unwrap();
    assert_eq!((b_to_a.output.pt, b_to_a.output.event_pt), (0, Some(101)));
}

/// The Kamailio capture: `codec-mask-PCMU codec-transcode-PCMA codec-transcode-G729`.
#[test]
fn kamailio_mask_and_transcode_flags() {
    let (mut calls, plane) = setup(&[30200, 30186]);
    let opts = CodecOptions {
        mask: vec!["PCMU".into()],
        transcode: vec!["PCMA".into(), "G729".into()],
        ..Default::default()
    };
    let offer = calls.offer(&req(OFFER_C, None, opts), now()).unwrap();
    assert_eq!(
        offer.sdp,
        crlf(
            "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30186 RTP/AVP 8 18 101
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=sendrecv
a=rtcp:30187
"
        )
    );
    // B picks G.729 at 10 ms: A gets its masked PCMU back, transcoded both ways.
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 18 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=ptime:10
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30200 RTP/AVP 0 101\r\n"),
        "{}",
        reply.sdp
    );
    assert!(reply.sdp.contains("a=ptime:20\r\n"));
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let a_to_b = plan
        .streams
        .iter()
        .filter_map(|s| s.transcode)
        .find(|s| s.input.pt == 0)
        .unwrap();
    assert_eq!(
        (
            a_to_b.output.codec.name(),
            a_to_b.output.pt,
            a_to_b.output.ptime_ms
        ),
        ("G729", 18, 10)
    );
    assert_eq!(a_to_b.output.event_pt, Some(101));
}

/// When the answerer picks a codec the offerer has, what the offerer sends passes through
/// and the codecs we added are dropped from the answer; the one we added that the answerer
/// also accepted is transcoded when it sends it (rtpengine: a transcoding handler for that
/// payload type, the shared ones relayed on the same output SSRC).
#[test]
fn shared_codec_means_passthrough() {
    let (mut calls, plane) = setup(&[30010, 30020]);
    calls
        .offer(&req(OFFER_C, None, transcode(&["PCMA"])), now())
        .unwrap();
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30010 RTP/AVP 0 101\r\n"),
        "{}",
        reply.sdp
    );
    assert!(!reply.sdp.contains("PCMA"));
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
    // Only B → A (RTP and RTCP port of B), PCMA into A's PCMU; PCMU and the events relayed.
    assert_eq!(specs.len(), 2, "{specs:?}");
    let b_to_a = specs[0];
    assert_eq!((b_to_a.input.codec.name(), b_to_a.input.pt), ("PCMA", 8));
    assert_eq!((b_to_a.output.codec.name(), b_to_a.output.pt), ("PCMU", 0));
    assert_eq!(b_to_a.passthrough.iter().collect::<Vec<_>>(), vec![0, 101]);
}

/// rtpengine's "add some other codec, accept second PT": the answerer takes a codec the
/// offerer has and one we added. The offerer's answer lists the shared one, then its own
/// first codec in place of the added one; each direction transcodes the codec the other
/// side lacks and relays the shared one.
#[test]
fn added_codec_accepted_beside_a_shared_one() {
    const OFFER: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 8 0
a=sendrecv
";
    let (mut calls, plane) = setup(&[30010, 30020]);
    let offer = calls
        .offer(&req(OFFER, None, transcode(&["g722"])), now())
        .unwrap();
    // The added codec is spelled as the option spelled it.
    assert!(offer.sdp.contains("RTP/AVP 8 0 9\r\n"), "{}", offer.sdp);
    assert!(
        offer.sdp.contains("a=rtpmap:9 g722/8000\r\n"),
        "{}",
        offer.sdp
    );
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 0 9
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30010 RTP/AVP 0 8\r\n"),
        "{}",
        reply.sdp
    );
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
    assert_eq!(specs.len(), 4, "{specs:?}");
    let a_to_b = specs.iter().find(|s| s.input.pt == 8).unwrap();
    assert_eq!((a_to_b.output.codec.name(), a_to_b.output.pt), ("PCMU", 0));
    let b_to_a = specs.iter().find(|s| s.input.pt == 9).unwrap();
    // Into A's first codec of its answer.
    assert_eq!((b_to_a.output.codec.name(), b_to_a.output.pt), ("PCMU", 0));
    for s in [a_to_b, b_to_a] {
        assert_eq!(s.passthrough.iter().collect::<Vec<_>>(), vec![0]);
    }
}

/// rtpengine's gh 953: the answerer takes only the codec we added and has no
/// telephone-event, so the offerer's telephone-event is dropped from its answer too.
#[test]
fn offerers_events_go_when_the_answerer_has_none() {
    let (mut calls, _plane) = setup(&[30010, 30020]);
    calls
        .offer(&req(OFFER_C, None, transcode(&["PCMA"])), now())
        .unwrap();
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 8
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30010 RTP/AVP 0\r\n"),
        "{}",
        reply.sdp
    );
    assert!(!reply.sdp.contains("telephone-event"), "{}", reply.sdp);
}

/// `detect DTMF` with a caller that has no telephone-event: the callee is offered one,
/// and the transcoder from the caller detects in-band digits toward it.
#[test]
fn detect_dtmf_offers_events_and_enables_detection() {
    const OFFER_PCMU: &str = "v=0
o=alice 100 100 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 41000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
";
    // Transcoded: PCMU caller, Opus callee with telephone-event/48000.
    let (mut calls, plane) = setup(&[30200, 30210]);
    let opts = CodecOptions {
        detect_dtmf: true,
        ..transcode(&["opus"])
    };
    let offer = calls.offer(&req(OFFER_PCMU, None, opts), now()).unwrap();
    assert!(
        offer.sdp.contains("m=audio 30210 RTP/AVP 0 96 97 98\r\n")
            && offer.sdp.contains("a=rtpmap:97 telephone-event/48000\r\n")
            && offer.sdp.contains("a=rtpmap:98 telephone-event/8000\r\n"),
        "{}",
        offer.sdp
    );
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 96 97
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/48000
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30200 RTP/AVP 0\r\n"),
        "{}",
        reply.sdp
    );
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
    let a_to_b = specs.iter().find(|s| s.input.pt == 0).unwrap();
    assert_eq!(a_to_b.output.event_pt, Some(97));
    assert!(a_to_b.detect_dtmf);
    let b_to_a = specs.iter().find(|s| s.input.pt == 96).unwrap();
    assert!(!b_to_a.detect_dtmf);

    // Same codec on both sides: detection still needs the audio decoded.
    let (mut calls, plane) = setup(&[30220, 30230]);
    let opts = CodecOptions {
        detect_dtmf: true,
        ..CodecOptions::default()
    };
    let offer = calls.offer(&req(OFFER_PCMU, None, opts), now()).unwrap();
    assert!(
        offer.sdp.contains("m=audio 30230 RTP/AVP 0 96\r\n"),
        "{}",
        offer.sdp
    );
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    // The caller never offered telephone-event: it does not get one back.
    assert!(
        reply.sdp.contains("m=audio 30220 RTP/AVP 0\r\n"),
        "{}",
        reply.sdp
    );
    assert!(!reply.sdp.contains("a=ptime"));
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let specs: Vec<TranscodeSpec> = plan.streams.iter().filter_map(|s| s.transcode).collect();
    let a_to_b = specs
        .iter()
        .find(|s| s.output.event_pt == Some(96))
        .unwrap();
    assert!(a_to_b.detect_dtmf && a_to_b.input.pt == 0 && a_to_b.output.pt == 0);
}

#[test]
fn always_transcode_keeps_the_offerers_codec() {
    let (mut calls, plane) = setup(&[30010, 30020]);
    let opts = CodecOptions {
        always_transcode: true,
        ..transcode(&["PCMA"])
    };
    calls.offer(&req(OFFER_C, None, opts), now()).unwrap();
    let answer = "v=0
o=bob 200 200 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 41010 RTP/AVP 8 0
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=sendrecv
";
    let reply = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert!(
        reply.sdp.contains("m=audio 30010 RTP/AVP 0 101\r\n"),
        "{}",
        reply.sdp
    );
    let plan = plane.plan.lock().unwrap().clone().unwrap();
    let a_to_b = plan.streams.iter().find_map(|s| s.transcode).unwrap();
    assert_eq!(a_to_b.input.codec.name(), "PCMU");
    assert_eq!(a_to_b.output.codec.name(), "PCMA");
    // B has no telephone-event: digits from A are rendered in-band.
    assert_eq!(a_to_b.output.event_pt, None);
}

fn list(v: &[SdpCodec]) -> Vec<String> {
    v.iter()
        .map(|c| format!("{}:{}/{}", c.pt, c.name, c.clock_rate))
        .collect()
}

fn offer_list() -> Vec<SdpCodec> {
    vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(18, "G729", 8000, None, None),
        sdp_codec(96, "opus", 48000, Some(2), None),
        sdp_codec(101, "telephone-event", 8000, None, Some("0-15")),
    ]
}

#[test]
fn strip_offer_except_and_all() {
    let opts = |f: fn(&mut CodecOptions)| {
        let mut o = CodecOptions::default();
        f(&mut o);
        o
    };
    let run = |o: &CodecOptions| {
        let (edit, _) = offer(&offer_list(), None, o, None, None);
        list(&edit.codecs.unwrap_or_else(offer_list))
    };
    assert_eq!(
        run(&opts(|o| o.strip = vec!["pcma".into(), "opus/48000".into()])),
        ["0:PCMU/8000", "18:G729/8000", "101:telephone-event/8000"]
    );
    assert_eq!(
        run(&opts(|o| {
            o.strip = vec!["all".into()];
            o.except = vec!["G729".into(), "PCMU".into()];
        })),
        ["0:PCMU/8000", "18:G729/8000", "101:telephone-event/8000"]
    );
    assert_eq!(
        run(&opts(|o| {
            o.strip = vec!["full".into()];
            o.offer = vec!["G729".into(), "PCMU".into()];
        })),
        ["18:G729/8000", "0:PCMU/8000", "101:telephone-event/8000"]
    );
    // `offer` alone only reorders.
    assert_eq!(
        run(&opts(|o| o.offer = vec!["opus".into()])),
        [
            "96:opus/48000",
            "0:PCMU/8000",
            "8:PCMA/8000",
            "18:G729/8000",
            "101:telephone-event/8000"
        ]
    );
    // Stripping every 8 kHz codec drops the 8 kHz telephone-event too.
    assert_eq!(
        run(&opts(
            |o| o.strip = vec!["PCMU".into(), "PCMA".into(), "G729".into()]
        )),
        ["96:opus/48000"]
    );
    // Transcode to a codec already there adds nothing; unknown codecs are ignored.
    assert_eq!(
        run(&opts(|o| o.transcode = vec!["PCMA".into(), "speex".into()])),
        list(&offer_list())
    );
    // `ignore`d codecs survive strip all.
    assert_eq!(
        run(&opts(|o| {
            o.strip = vec!["all".into()];
            o.ignore = vec!["PCMA".into()];
        })),
        ["8:PCMA/8000", "101:telephone-event/8000"]
    );
}

#[test]
fn added_codecs_avoid_used_payload_types() {
    let offered = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(96, "iLBC", 8000, None, None),
        sdp_codec(97, "telephone-event", 8000, None, None),
        sdp_codec(18, "G729", 8000, None, None),
    ];
    let opts = CodecOptions {
        strip: vec!["G729".into()],
        transcode: vec!["G729".into(), "opus".into()],
        ..Default::default()
    };
    let (edit, state) = offer(&offered, Some(20), &opts, Some(30), None);
    // A stripped codec named in `transcode` comes back under A's own number (rtpengine
    // re-adds it from A's list); a new one gets the lowest number A does not use.
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "0:PCMU/8000",
            "96:iLBC/8000",
            "18:G729/8000",
            "98:opus/48000",
            "99:telephone-event/48000",
            "97:telephone-event/8000"
        ]
    );
    assert_eq!(edit.ptime, Some(30));
    let state = state.unwrap();
    assert_eq!(state.offerer.len(), 3);
    assert_eq!((state.offerer_ptime, state.ptime), (Some(20), Some(30)));
}

/// rtpengine's test "missing codec in re-invite": `mask: [all]` and `transcode` of codecs
/// the offerer has give them back under the offerer's numbers; `strip` and `offer` of
/// telephone-event keep the offerer's event.
#[test]
fn transcode_of_a_masked_codec_keeps_its_number() {
    let offered = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(3, "GSM", 8000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, Some("0-15")),
    ];
    let opts = CodecOptions {
        mask: vec!["all".into()],
        strip: vec!["telephone-event".into()],
        transcode: vec!["PCMU".into(), "G722".into(), "t38".into()],
        offer: vec!["telephone-event".into()],
        ..Default::default()
    };
    let (edit, _) = offer(&offered, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["0:PCMU/8000", "9:G722/8000", "101:telephone-event/8000"]
    );
    // `strip: [full]` asks for fresh numbers.
    let opts = CodecOptions {
        strip: vec!["full".into()],
        transcode: vec!["PCMA".into()],
        ..Default::default()
    };
    let (edit, _) = offer(&offered[..2], None, &opts, None, None);
    assert_eq!(list(&edit.codecs.unwrap())[0], "96:PCMA/8000");
}

/// rtpengine's test "re-invite with unsupported primary codec": a telephone-event at a rate
/// no option touched (16000, with no audio codec at that rate) passes as the offerer wrote
/// it; `strip: [all]` touches every rate and drops it.
#[test]
fn stray_event_at_an_untouched_rate_is_kept() {
    let offered = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(102, "telephone-event", 8000, None, Some("0-15")),
        sdp_codec(101, "telephone-event", 16000, None, Some("0-15")),
    ];
    let opts = CodecOptions {
        transcode: vec!["PCMA".into(), "G722".into(), "PCMU".into()],
        ..Default::default()
    };
    let (edit, _) = offer(&offered, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "8:PCMA/8000",
            "9:G722/8000",
            "0:PCMU/8000",
            "102:telephone-event/8000",
            "101:telephone-event/16000"
        ]
    );
    let opts = CodecOptions {
        strip: vec!["all".into()],
        offer: vec!["PCMA".into()],
        ..Default::default()
    };
    let (edit, _) = offer(&offered, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["8:PCMA/8000", "102:telephone-event/8000"]
    );
}

#[test]
fn no_options_no_state() {
    let (edit, state) = offer(&offer_list(), None, &CodecOptions::default(), None, None);
    assert_eq!(edit, SdpEdit::default());
    assert!(state.is_none());
}

#[test]
fn forced_ptime_repacketises_a_shared_codec() {
    let (_, state) = offer(
        &offer_list(),
        Some(20),
        &CodecOptions::default(),
        Some(30),
        None,
    );
    let b = vec![sdp_codec(8, "PCMA", 8000, None, None)];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    let ab = out.from_offerer.unwrap();
    assert_eq!((ab.input.codec.name(), ab.input.ptime_ms), ("PCMA", 20));
    assert_eq!((ab.output.codec.name(), ab.output.ptime_ms), ("PCMA", 30));
    assert_eq!(out.from_answerer.unwrap().output.ptime_ms, 20);
    assert_eq!(out.edit.ptime, Some(20));
}

#[test]
fn transcoding_toward_an_answer_without_ptime_keeps_the_offers() {
    // rtpengine's `G.711 DTX ptime=30`: the offer says 30 ms, the answer nothing, so the
    // encoder toward B packs 30 ms; an answer's own a=ptime wins.
    let (_, state) = offer(
        &[sdp_codec(0, "PCMU", 8000, None, None)],
        Some(30),
        &transcode(&["PCMA"]),
        None,
        None,
    );
    let state = state.unwrap();
    let b = vec![sdp_codec(8, "PCMA", 8000, None, None)];
    let out = answer(&state, &b, None, &CodecOptions::default(), None);
    assert_eq!(out.from_offerer.unwrap().output.ptime_ms, 30);
    assert_eq!(out.from_answerer.unwrap().output.ptime_ms, 30);
    let out = answer(&state, &b, Some(20), &CodecOptions::default(), None);
    assert_eq!(out.from_offerer.unwrap().output.ptime_ms, 20);
}

#[test]
fn cn_and_events_follow_each_added_clock_rate() {
    // rtpengine's codec tracker: PCMU, telephone-event and CN, Opus added: CN/48000 and
    // telephone-event/48000 go after Opus, before the offerer's own supplementals.
    let a = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, Some("0-16")),
        sdp_codec(13, "CN", 8000, None, None),
    ];
    let (edit, _) = offer(&a, None, &transcode(&["opus"]), None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "0:PCMU/8000",
            "96:opus/48000",
            "97:CN/48000",
            "98:telephone-event/48000",
            "101:telephone-event/8000",
            "13:CN/8000"
        ]
    );
    // The callee answers Opus without CN: the caller's CN goes from its answer too, and
    // its CN is not taken from it.
    let pcmu_cn = [a[0].clone(), a[2].clone()];
    let (_, state) = offer(&pcmu_cn, None, &transcode(&["opus"]), None, None);
    let b = vec![sdp_codec(96, "opus", 48000, Some(2), None)];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    assert_eq!(list(&out.edit.codecs.unwrap()), ["0:PCMU/8000"]);
    assert_eq!(out.from_offerer.unwrap().input.cn_pt, None);
    // Masked CN is not the callee's: no CN at the new rate either.
    let opts = CodecOptions {
        mask: vec!["CN".into()],
        ..transcode(&["opus"])
    };
    let (edit, _) = offer(
        &a[..1].iter().chain(&a[2..]).cloned().collect::<Vec<_>>(),
        None,
        &opts,
        None,
        None,
    );
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["0:PCMU/8000", "96:opus/48000"]
    );
    // `transcode: [CN]` without CN at hand: the one asked for anchors, the added rate's
    // goes before it.
    let (edit, _) = offer(&a[..1], None, &transcode(&["opus", "CN"]), None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["0:PCMU/8000", "96:opus/48000", "97:CN/48000", "13:CN/8000"]
    );
}

#[test]
fn single_codec_and_set_bitrate() {
    let opts = CodecOptions {
        transcode: vec!["opus".into()],
        set: vec!["opus/48000/2/24000".into()],
        single_codec: true,
        ..Default::default()
    };
    let a = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
    ];
    let (_, state) = offer(&a, None, &opts, None, None);
    let state = state.unwrap();
    // Shared codecs, single codec: only the first one goes back.
    let b = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(0, "PCMU", 8000, None, None),
    ];
    let out = answer(&state, &b, None, &CodecOptions::default(), None);
    assert_eq!(list(&out.edit.codecs.unwrap()), ["8:PCMA/8000"]);
    assert!(out.from_offerer.is_none());
    // Opus chosen: the encoder toward B gets the bitrate from `set`.
    let b = vec![sdp_codec(96, "opus", 48000, Some(2), None)];
    let out = answer(&state, &b, None, &CodecOptions::default(), None);
    assert_eq!(out.from_offerer.unwrap().output.bitrate, Some(24000));
    assert_eq!(list(&out.edit.codecs.unwrap()), ["0:PCMU/8000"]);
}

#[test]
fn transcode_bitrate_reaches_the_encoder_toward_that_side() {
    // rtpengine's `transcode: ['AMR-WB/16000/1/23850']`: the answerer takes the added codec,
    // the encoder toward it runs at that bit rate; toward the offerer, the default.
    let opts = transcode(&["AMR-WB/16000/1/23850"]);
    let a = vec![sdp_codec(8, "PCMA", 8000, None, None)];
    let (_, state) = offer(&a, None, &opts, None, None);
    let b = vec![sdp_codec(96, "AMR-WB", 16000, None, Some("octet-align=1"))];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    let to_b = out.from_offerer.unwrap();
    assert_eq!(to_b.output.bitrate, Some(23850));
    assert_eq!(to_b.input.bitrate, None);
}

#[test]
fn strip_in_an_answer_acts_on_the_answerers_codecs() {
    // rtpengine's gh 1098: A offers PCMA and telephone-event; B answers with both, under
    // `strip: [all]`, `offer: [PCMA]`: A hears PCMA alone.
    let a = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(96, "telephone-event", 8000, None, Some("0-15")),
    ];
    // (Some codec option in the offer, as gh 1098 has, so that the call keeps codec state.)
    let g729 = CodecOptions {
        strip: vec!["G729".into()],
        ..Default::default()
    };
    let (_, state) = offer(&a, None, &g729, None, None);
    let state = state.unwrap();
    let b = a.clone();
    let strip = |offer: &[&str]| CodecOptions {
        strip: vec!["all".into()],
        offer: offer.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let out = answer(&state, &b, None, &strip(&["PCMA"]), None);
    assert_eq!(list(&out.edit.codecs.unwrap()), ["8:PCMA/8000"]);
    let out = answer(&state, &b, None, &strip(&["PCMA", "telephone-event"]), None);
    assert_eq!(out.edit.codecs, None, "both back: the answer as B wrote it");
    // Nothing left (gh 1373): the answer's list stands.
    let out = answer(&state, &b, None, &strip(&[]), None);
    assert_eq!(
        out.edit.codecs.map(|c| list(&c)),
        answer(&state, &b, None, &CodecOptions::default(), None)
            .edit
            .codecs
            .map(|c| list(&c))
    );
}

#[test]
fn amr_decoder_options_reach_the_decoder_of_that_side() {
    // rtpengine's `set: ['AMR-WB/16000/1////CMR-interval=200']` and
    // `['AMR-WB/16000/1/23850///mode-change-interval--200']`: options of the AMR side's
    // decoder, not SDP.
    for (set, cmr, mci) in [
        ("AMR-WB/16000/1////CMR-interval=200", 200, 0),
        ("AMR-WB/16000/1/23850///mode-change-interval--200", 0, 200),
    ] {
        let opts = CodecOptions {
            transcode: vec!["PCMA".into()],
            set: vec![set.into()],
            ..Default::default()
        };
        let a = vec![sdp_codec(96, "AMR-WB", 16000, None, Some("octet-align=1"))];
        let (edit, state) = offer(&a, None, &opts, None, None);
        assert_eq!(
            list(&edit.codecs.unwrap()),
            ["96:AMR-WB/16000", "8:PCMA/8000"]
        );
        let b = vec![sdp_codec(8, "PCMA", 8000, None, None)];
        let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
        let from_a = out.from_offerer.unwrap();
        assert_eq!(
            (
                from_a.input.cmr_interval_ms,
                from_a.input.mode_change_interval_ms
            ),
            (cmr, mci),
            "{set}"
        );
        assert_eq!(from_a.output.cmr_interval_ms, 0, "PCMA has none");
    }
}

#[test]
fn dtx_codec_option_reaches_the_encoder_toward_that_side() {
    // rtpengine's `transcode: ['AMR-WB/16000/1///mode-set--0,1,2/dtx--1']`.
    let opts = transcode(&["AMR-WB/16000/1///mode-set--0,1,2/dtx--1"]);
    let a = vec![sdp_codec(8, "PCMA", 8000, None, None)];
    let (edit, state) = offer(&a, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["8:PCMA/8000", "96:AMR-WB/16000"],
        "the option is not SDP"
    );
    let b = vec![sdp_codec(96, "AMR-WB", 16000, None, Some("mode-set=0,1,2"))];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    let to_b = out.from_offerer.unwrap();
    assert!(to_b.output.dtx, "AMR-WB toward B with DTX");
    assert!(!to_b.input.dtx, "PCMA toward A without");
}

#[test]
fn codec_spec_parsing() {
    // AMR added without fmtp gets rtpengine's default; with one, the option's.
    let amr = added_codec(&Spec::parse("AMR").unwrap()).unwrap();
    assert_eq!(
        (amr.name.as_str(), amr.clock_rate, amr.fmtp.as_deref()),
        ("AMR", 8000, Some("octet-align=1;mode-change-capability=2"))
    );
    let wb = added_codec(&Spec::parse("AMR-WB/16000/1///mode-set--2").unwrap()).unwrap();
    assert_eq!(
        (wb.clock_rate, wb.fmtp.as_deref()),
        (16000, Some("mode-set=2"))
    );
    // CRC payloads are relayed but not produced, so not offered for transcoding.
    assert!(added_codec(&Spec::parse("AMR/8000/1///crc--1").unwrap()).is_none());
    let s = Spec::parse("iLBC/8000/1///mode--30").unwrap();
    assert_eq!(
        (s.clock, s.channels, s.bitrate, s.ptime, s.fmtp.as_deref()),
        (Some(8000), Some(1), None, None, Some("mode=30"))
    );
    // rtpengine's seventh field holds encoder options, not fmtp.
    let s = Spec::parse("AMR-WB/16000/1///mode-set--0,1,2;mode-change-period--2/dtx--1").unwrap();
    assert_eq!(
        s.fmtp.as_deref(),
        Some("mode-set=0,1,2;mode-change-period=2")
    );
    assert!(s.dtx, "dtx--1 is the encoder's DTX");
    assert!(!Spec::parse("AMR/8000").unwrap().dtx);
    assert!(!Spec::parse("AMR/8000/1////dtx--0").unwrap().dtx);
    assert!(Spec::parse("opus/48000/2////dtx=1").unwrap().dtx);
    assert!(Spec::parse("").is_none());
    // A number that is none means "any", as rtpengine reads it as 0.
    assert_eq!(Spec::parse("PCMU/x").unwrap().clock, None);
    assert!(Spec::parse("PCMU/8000/1").unwrap().by_name);
    assert!(!Spec::parse("PCMU/8000/1/64000").unwrap().by_name);
    assert!(Spec::parse("all").unwrap().is_all());
}

/// The answer's codec list toward the offerer (B's own list when left unchanged).
fn answer_list(out: &AnswerOutcome, b: &[SdpCodec]) -> Vec<String> {
    list(out.edit.codecs.as_deref().unwrap_or(b))
}

#[test]
fn transcode_cn_adds_cn_and_engages_both_directions() {
    // rtpengine's "add CN": A offers PCMU only, `transcode: [CN]`.
    let a = vec![sdp_codec(0, "PCMU", 8000, None, None)];
    let (edit, state) = offer(&a, None, &transcode(&["CN"]), None, None);
    assert_eq!(list(&edit.codecs.unwrap()), ["0:PCMU/8000", "13:CN/8000"]);
    let state = state.unwrap();
    // B accepts CN: A's answer has none, and both directions run through a transcoder
    // (B's CN decoded for A, A's silence sent to B as CN).
    let b = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(13, "CN", 8000, None, None),
    ];
    let out = answer(&state, &b, None, &CodecOptions::default(), None);
    assert_eq!(answer_list(&out, &b), ["0:PCMU/8000"]);
    let (ab, ba) = (out.from_offerer.unwrap(), out.from_answerer.unwrap());
    assert_eq!((ab.input.cn_pt, ab.output.cn_pt), (None, Some(13)));
    assert_eq!((ba.input.cn_pt, ba.output.cn_pt), (Some(13), None));
    assert_eq!(ab.input.codec.name(), ab.output.codec.name());
    // B rejects CN: plain passthrough.
    let b = vec![sdp_codec(0, "PCMU", 8000, None, None)];
    let out = answer(&state, &b, None, &CodecOptions::default(), None);
    assert!(out.from_offerer.is_none() && out.from_answerer.is_none());
    assert_eq!(answer_list(&out, &b), ["0:PCMU/8000"]);
    // Added after a second added codec, before A's telephone-event; PT 13 taken: dynamic.
    let a = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(13, "G723", 8000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, None),
    ];
    let (edit, _) = offer(&a, None, &transcode(&["PCMU", "CN"]), None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "8:PCMA/8000",
            "13:G723/8000",
            "0:PCMU/8000",
            "96:CN/8000",
            "101:telephone-event/8000"
        ]
    );
}

#[test]
fn consumed_cn_is_answered_back_to_the_offerer() {
    // rtpengine's "consume CN": strip all, consume CN, offer PCMA, PCMU, telephone-event.
    let a = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(13, "CN", 8000, None, None),
        sdp_codec(118, "CN", 16000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, None),
    ];
    let opts = CodecOptions {
        strip: vec!["all".into()],
        consume: vec!["CN".into()],
        offer: vec!["PCMA".into(), "PCMU".into(), "telephone-event".into()],
        ..Default::default()
    };
    let (edit, state) = offer(&a, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["8:PCMA/8000", "0:PCMU/8000", "101:telephone-event/8000"]
    );
    let b = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, None),
    ];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    // CN/8000 back in A's answer, before telephone-event; CN/16000 is not ours.
    assert_eq!(
        answer_list(&out, &b),
        ["8:PCMA/8000", "13:CN/8000", "101:telephone-event/8000"]
    );
    let (ab, ba) = (out.from_offerer.unwrap(), out.from_answerer.unwrap());
    assert_eq!((ab.input.cn_pt, ab.output.cn_pt), (Some(13), None));
    assert_eq!((ba.input.cn_pt, ba.output.cn_pt), (None, Some(13)));
}

#[test]
fn always_transcode_accepts_the_offerers_cn() {
    // rtpengine's "accept CN": A offers PCMU and CN with `always transcode`, B only PCMU.
    let a = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(13, "CN", 8000, None, None),
    ];
    let opts = CodecOptions {
        always_transcode: true,
        ..Default::default()
    };
    let (edit, state) = offer(&a, None, &opts, None, None);
    assert_eq!(edit.codecs, None, "A's list reaches B unchanged");
    let b = vec![sdp_codec(0, "PCMU", 8000, None, None)];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    assert_eq!(answer_list(&out, &b), ["0:PCMU/8000", "13:CN/8000"]);
    assert_eq!(out.from_offerer.unwrap().input.cn_pt, Some(13));
    assert_eq!(out.from_answerer.unwrap().output.cn_pt, Some(13));
    // Both sides with CN: nothing to do, CN passes through with the audio.
    let b = a.clone();
    let out = answer(
        &offer(&a, None, &transcode(&["PCMA"]), None, None)
            .1
            .unwrap(),
        &b,
        None,
        &CodecOptions::default(),
        None,
    );
    assert!(out.from_offerer.is_none());
    assert_eq!(answer_list(&out, &b), ["0:PCMU/8000", "13:CN/8000"]);
}

/// The m= line of media section `n` (1-based) of an SDP.
fn m_line(sdp: &str, n: usize) -> String {
    sdp.lines()
        .filter(|l| l.starts_with("m="))
        .nth(n - 1)
        .unwrap()
        .to_owned()
}

/// rtpengine's "GH 1499" tests: with no codec options, codecs the answerer adds that it was
/// never offered (telephone-event, G722) do not reach the offerer; a rejected m= line
/// names the offerer's codec instead of one it never offered.
#[test]
fn answer_drops_codecs_the_answerer_was_never_offered() {
    let (mut calls, _) = setup(&[30400, 30410, 30420, 30430]);
    let offer = "v=0
o=alice 1 1 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 4024 RTP/AVP 0 8
m=audio 4026 RTP/AVP 8 9
";
    let answer = "v=0
o=bob 1 1 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio 4030 RTP/AVP 8 9 101
a=rtpmap:101 telephone-event/8000
m=audio 0 RTP/AVP 0
";
    calls
        .offer(&req(offer, None, CodecOptions::default()), now())
        .unwrap();
    let out = calls
        .answer(&req(answer, Some("tagB"), CodecOptions::default()), now())
        .unwrap();
    assert_eq!(m_line(&out.sdp, 1), "m=audio 30400 RTP/AVP 8");
    assert!(!out.sdp.contains("G722") && !out.sdp.contains("telephone-event"));
    assert_eq!(m_line(&out.sdp, 2), "m=audio 0 RTP/AVP 8");
}

/// `single codec` in an answer to an offer without codec options keeps the answerer's
/// first codec only.
#[test]
fn single_codec_answer_without_offer_options() {
    let (mut calls, _) = setup(&[30440, 30450]);
    let sdp = "v=0
o=alice 1 1 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=audio 4024 RTP/AVP 0 8
";
    calls
        .offer(&req(sdp, None, CodecOptions::default()), now())
        .unwrap();
    let single = CodecOptions {
        single_codec: true,
        ..Default::default()
    };
    let out = calls
        .answer(&req(sdp, Some("tagB"), single), now())
        .unwrap();
    assert_eq!(m_line(&out.sdp, 1), "m=audio 30440 RTP/AVP 0");
    assert!(!out.sdp.contains("PCMA"));

    // The helpers alone: telephone-event before the first audio codec stays.
    let b = vec![
        sdp_codec(101, "telephone-event", 8000, None, None),
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
    ];
    let cut = plain_answer(&b, true).edit.codecs.unwrap();
    assert_eq!(list(&cut), ["101:telephone-event/8000", "0:PCMU/8000"]);
    assert_eq!(plain_answer(&b, false), AnswerOutcome::default());
    // Stray codecs go by payload type; an answer of strays only is left as it is.
    let offered = vec![sdp_codec(8, "PCMA", 8000, None, None)];
    assert_eq!(list(&answered_codecs(&b, &offered)), ["8:PCMA/8000"]);
    assert_eq!(answered_codecs(&b[..2], &offered), b[..2].to_vec());
    assert_eq!(answered_codecs(&b, &[]), b);
}

/// rtpengine's "GH 1373": `strip: [all]` of the only codec is a usage error; the offer goes
/// on with its own list.
#[test]
fn options_that_leave_no_codec_keep_the_offer() {
    let pcmu = vec![sdp_codec(0, "PCMU", 8000, None, None)];
    let opts = CodecOptions {
        strip: vec!["all".into()],
        ..Default::default()
    };
    let (edit, state) = offer(&pcmu, None, &opts, None, None);
    assert_eq!(edit.codecs, None);
    assert_eq!(state.unwrap().offerer, pcmu);
}

/// A `transcode` entry of name, rate and channels names the offerer's codec of that
/// description, whatever channel count is implicit (rtpengine's "t/c and implicit number
/// of channels", "some t/c options with answer only non-t/c codec", "multi codec
/// offer/answer w single-codec and tp-event"); an entry with more fields is a codec of its
/// own and gets a new number ("dup codec number"). Mono opus is offered as `opus/48000`.
#[test]
fn transcode_entries_name_codecs_by_rate_and_channels() {
    let a = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(102, "opus", 48000, Some(1), None),
    ];
    let (edit, _) = offer(&a, None, &transcode(&["opus", "PCMA"]), None, None);
    let out = edit.codecs.unwrap();
    assert_eq!(list(&out), ["0:PCMU/8000", "102:opus/48000", "8:PCMA/8000"]);
    assert_eq!(out[1].rtpmap_value().unwrap(), "102 opus/48000");

    let masked = |codecs: &[SdpCodec], add: &[&str]| {
        let opts = CodecOptions {
            mask: vec!["all".into()],
            ..transcode(add)
        };
        let (edit, _) = offer(codecs, None, &opts, None, None);
        edit.codecs.unwrap_or_else(|| codecs.to_vec())
    };
    // The offerer's mono opus comes back under its number.
    let mono = vec![
        sdp_codec(111, "opus", 48000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
    ];
    assert_eq!(
        list(&masked(&mono, &["opus/48000/1", "PCMA"])),
        ["111:opus/48000", "8:PCMA/8000"]
    );
    // With an option field besides, it is a new codec.
    let out = masked(&mono, &["opus/48000/1//test=1", "PCMA"]);
    assert_eq!(list(&out), ["96:opus/48000", "8:PCMA/8000"]);
    assert_eq!(out[0].channels, None);
    // Mono asked of a stereo offerer: a new codec, written without channels.
    let stereo = vec![
        sdp_codec(96, "opus", 48000, Some(2), None),
        sdp_codec(8, "PCMA", 8000, None, None),
    ];
    let out = masked(&stereo, &["opus/48000/1", "PCMA"]);
    assert_eq!(list(&out), ["97:opus/48000", "8:PCMA/8000"]);
    assert_eq!(out[0].rtpmap_value().unwrap(), "97 opus/48000");
    // Mono opus is a codec we transcode.
    assert!(transcodable(&mono[0]).is_some());
}

/// Telephone-events after `mask: [all]` (rtpengine's "gh 963 w mask all", "multi codec
/// offer/answer w single-codec and tp-event"): `transcode: [telephone-event]` brings the
/// offerer's events back under their numbers; a rate with audio but no event gets a new
/// one, numbered from what the answerer's list leaves free (the masked opus' 96 is free);
/// events at rates without audio go.
#[test]
fn events_after_mask_all_follow_the_answerers_list() {
    let opts = |add: &[&str]| CodecOptions {
        mask: vec!["all".into()],
        ..transcode(add)
    };
    let asterisk = vec![
        sdp_codec(96, "opus", 48000, Some(2), None),
        sdp_codec(120, "telephone-event", 48000, None, Some("0-16")),
    ];
    let (edit, _) = offer(
        &asterisk,
        None,
        &opts(&["PCMA", "telephone-event"]),
        None,
        None,
    );
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["8:PCMA/8000", "96:telephone-event/8000"]
    );
    // `mask: [full]` asks for fresh numbers: the event is a new one.
    let full = CodecOptions {
        mask: vec!["full".into()],
        ..transcode(&["PCMA", "telephone-event"])
    };
    let (edit, _) = offer(&asterisk, None, &full, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        ["8:PCMA/8000", "97:telephone-event/8000"]
    );
    // Without events named, none go to B: masked with the rest.
    let (edit, _) = offer(&asterisk, None, &opts(&["PCMA"]), None, None);
    assert_eq!(list(&edit.codecs.unwrap()), ["8:PCMA/8000"]);
    // Two events of the offerer's come back, the first one it listed last.
    let two = vec![
        sdp_codec(96, "opus", 48000, Some(2), None),
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(102, "telephone-event", 48000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, None),
    ];
    let (edit, _) = offer(
        &two,
        None,
        &opts(&["opus/48000/1", "PCMA", "telephone-event"]),
        None,
        None,
    );
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "97:opus/48000",
            "8:PCMA/8000",
            "101:telephone-event/8000",
            "102:telephone-event/48000"
        ]
    );
    // A new rate's event goes before the first one brought back.
    let g722 = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(101, "telephone-event", 48000, None, None),
        sdp_codec(96, "telephone-event", 8000, None, None),
        sdp_codec(111, "opus", 48000, None, None),
    ];
    let (edit, _) = offer(
        &g722,
        None,
        &opts(&[
            "G722",
            "opus/48000/1//x",
            "PCMA",
            "telephone-event",
            "AMR-WB",
        ]),
        None,
        None,
    );
    let out = list(&edit.codecs.unwrap());
    assert_eq!(&out[..3], ["9:G722/8000", "97:opus/48000", "8:PCMA/8000"]);
    assert_eq!(
        out[out.len() - 3..],
        [
            "96:telephone-event/8000",
            "99:telephone-event/16000",
            "101:telephone-event/48000"
        ]
    );
}

/// rtpengine's "several clock rates input w/ transcode DTMF": `transcode:
/// [telephone-event]` toward a list without events adds one at 8000 and, since events now
/// go to B, one for every other rate with audio (numbered from B's free ones, placed
/// before the first).
#[test]
fn transcoded_events_cover_every_clock_rate() {
    let a = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(96, "opus", 48000, None, None),
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(97, "speex", 16000, None, None),
        sdp_codec(9, "G722", 8000, None, None),
    ];
    let (edit, state) = offer(&a, None, &transcode(&["telephone-event"]), None, None);
    let out = list(&edit.codecs.unwrap());
    assert_eq!(
        out[5..],
        [
            "99:telephone-event/16000",
            "100:telephone-event/48000",
            "98:telephone-event/8000"
        ]
    );
    assert!(state.unwrap().events_added);
}

/// rtpengine's "AMR-WB b2b transcoding", with opus: B chose a codec A has too, under
/// another number (new for B since the entry had options). A is answered with its own
/// version of that codec, and its events as it wrote them; both directions transcode.
#[test]
fn answer_gives_the_offerer_its_own_version_of_the_chosen_codec() {
    let a = vec![
        sdp_codec(8, "PCMA", 8000, None, None),
        sdp_codec(111, "opus", 48000, Some(2), Some("useinbandfec=1")),
        sdp_codec(96, "telephone-event", 48000, None, Some("0-15")),
    ];
    let opts = CodecOptions {
        mask: vec!["all".into()],
        ..transcode(&["PCMA", "opus/48000/2//x", "telephone-event"])
    };
    let (edit, state) = offer(&a, None, &opts, None, None);
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "8:PCMA/8000",
            "97:opus/48000",
            "98:telephone-event/8000",
            "96:telephone-event/48000"
        ]
    );
    let b = vec![
        sdp_codec(97, "opus", 48000, Some(2), None),
        sdp_codec(96, "telephone-event", 48000, None, Some("0-16")),
    ];
    let out = answer(&state.unwrap(), &b, None, &CodecOptions::default(), None);
    let to_a = out.edit.codecs.unwrap();
    assert_eq!(list(&to_a), ["111:opus/48000", "96:telephone-event/48000"]);
    assert_eq!(to_a[1].fmtp.as_deref(), Some("0-15"));
    let (ab, ba) = (out.from_offerer.unwrap(), out.from_answerer.unwrap());
    assert_eq!((ab.input.pt, ab.output.pt), (111, 97));
    assert_eq!((ba.input.pt, ba.output.pt), (97, 111));
}

/// G.711 at another clock rate is a codec of its own: `transcode: [PCMU/16000]` adds it
/// under a dynamic payload type (PT 0 is PCMU at 8000 Hz), beside the offerer's PCMU.
#[test]
fn transcode_of_g711_at_16_khz_gets_a_dynamic_number() {
    let offered = vec![
        sdp_codec(0, "PCMU", 8000, None, None),
        sdp_codec(101, "telephone-event", 8000, None, Some("0-15")),
    ];
    let (edit, _) = offer(
        &offered,
        None,
        &transcode(&["PCMU/16000", "PCMA/11025", "PCMA/8000"]),
        None,
        None,
    );
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "0:PCMU/8000",
            "96:PCMU/16000",
            "8:PCMA/8000",
            "97:telephone-event/16000",
            "101:telephone-event/8000"
        ]
    );
}
