//! The T.38 gateway in offer/answer, against the SDP rtpengine 10.5 writes for the same
//! requests (`T.38 forward re-invite`, `T.38 reverse re-invite`, `T.38 FEC invite` of its
//! `t/auto-daemon-tests.pl`), and MSRP sections that pass untouched.

use super::*;
use crate::core::calls::model::T38Side;

const AUDIO_A: &str = "v=0\no=- 1545997027 1 IN IP4 198.51.100.3\ns=tester\nt=0 0\n\
m=audio 6000 RTP/AVP 8 0\nc=IN IP4 198.51.100.3\na=sendrecv\n";
const IMAGE_B: &str = "v=0\no=- 1545997027 1 IN IP4 198.51.100.1\ns=tester\nt=0 0\n\
m=image 4018 udptl t38\nc=IN IP4 198.51.100.1\na=sendrecv\na=T38FaxVersion:0\n\
a=T38MaxBitRate:14400\na=T38FaxRateManagement:transferredTCF\na=T38FaxMaxBuffer:262\n\
a=T38FaxMaxDatagram:300\na=T38FaxUdpEC:t38UDPRedundancy\n";

fn media_lines(sdp: &str) -> Vec<&str> {
    let at = sdp.find("m=").unwrap();
    sdp[at..].lines().collect()
}

#[test]
fn force_turns_audio_into_t38_and_the_answer_back_into_the_offerers_codec() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let mut offer = offer_req("fax1", "A", AUDIO_A);
    offer.t38.force = true;
    let out = calls.offer(&offer, clock.now()).unwrap().sdp;
    let lines = media_lines(&out);
    assert!(
        lines[0].starts_with("m=image ") && lines[0].ends_with(" udptl t38"),
        "{out}"
    );
    assert_eq!(
        lines[1..],
        [
            "c=IN IP4 127.0.0.1",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:1800",
            "a=T38FaxMaxDatagram:512",
            "a=T38FaxUdpEC:t38UDPRedundancy",
            "a=sendrecv",
        ]
    );
    let out = calls
        .answer(&answer_req("fax1", "A", "B", IMAGE_B), clock.now())
        .unwrap()
        .sdp;
    let lines = media_lines(&out);
    assert!(
        lines[0].starts_with("m=audio ") && lines[0].ends_with(" RTP/AVP 8"),
        "{out}"
    );
    assert_eq!(lines[2..4], ["a=rtpmap:8 PCMA/8000", "a=sendrecv"]);
    assert!(lines[4].starts_with("a=rtcp:"), "{out}");
    let call = &calls.calls["fax1"];
    assert!(matches!(
        &call.legs[0].medias[0].t38,
        Some(T38Side::Audio(Some(c))) if c.name == "PCMA"
    ));
    assert!(matches!(&call.legs[1].medias[0].t38, Some(T38Side::Fax(_))));

    // A re-offer from the T.38 side keeps the gateway; `stop` ends it.
    let mut reoffer = offer_req("fax1", "B", IMAGE_B);
    reoffer.to_tag = Some("A".into());
    let out = calls.offer(&reoffer, clock.now()).unwrap().sdp;
    assert!(out.contains(" RTP/AVP 8 0\r\n"), "{out}");
    reoffer.t38.stop = true;
    let out = calls.offer(&reoffer, clock.now()).unwrap().sdp;
    assert!(
        out.contains(" udptl t38\r\n") && out.contains("a=T38FaxMaxDatagram:300"),
        "{out}"
    );
    assert!(calls.calls["fax1"].legs[0].medias[0].t38.is_none());
}

#[test]
fn decode_offers_pcmu_and_pcma_and_answers_t38_with_fec_when_asked() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let mut offer = offer_req("fax2", "B", IMAGE_B);
    offer.t38.decode = true;
    let out = calls.offer(&offer, clock.now()).unwrap().sdp;
    let lines = media_lines(&out);
    assert!(lines[0].ends_with(" RTP/AVP 0 8"), "{out}");
    assert_eq!(
        lines[2..5],
        ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=sendrecv"]
    );
    let answer = AUDIO_A.replace("RTP/AVP 8 0", "RTP/AVP 0");
    let out = calls
        .answer(&answer_req("fax2", "B", "A", &answer), clock.now())
        .unwrap()
        .sdp;
    assert!(
        out.contains("a=T38FaxMaxDatagram:512\r\na=T38FaxUdpEC:t38UDPRedundancy\r\na=sendrecv\r\n"),
        "{out}"
    );

    let mut offer = offer_req("fax3", "A", AUDIO_A);
    offer.t38.force = true;
    offer.t38.fec = true;
    let out = calls.offer(&offer, clock.now()).unwrap().sdp;
    assert!(out.contains("a=T38FaxUdpEC:t38UDPFEC\r\n"), "{out}");
}

#[test]
fn msrp_sections_get_no_ports() {
    let media = Arc::new(FakeMedia::default());
    let mut calls = calls_with(media, EngineConfig::default());
    let clock = Clock::new();
    let sdp = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\n\
               m=audio 27998 RTP/AVP 0\nm=message 28000 TCP/MSRP *\na=setup:active\n";
    let out = calls
        .offer(&offer_req("msrp", "A", sdp), clock.now())
        .unwrap()
        .sdp;
    assert!(
        out.ends_with("m=message 28000 TCP/MSRP *\r\nc=IN IP4 1.2.3.4\r\na=setup:active\r\n"),
        "{out}"
    );
    let call = &calls.calls["msrp"];
    assert!(call.legs.iter().all(|l| l.medias[1].ports.is_none()));
}
