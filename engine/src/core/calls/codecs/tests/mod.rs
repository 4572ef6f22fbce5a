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

mod answers;
mod rules;
