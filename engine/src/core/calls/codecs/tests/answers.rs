//! Comfort noise, telephone-event and what an answer keeps of the lists offered.

use super::*;

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
