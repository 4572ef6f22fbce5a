//! The offer's codec options on codec lists: strip, offer, mask, transcode, ptime and
//! bitrate, and the answers they lead to.

use super::*;

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
        run(&opts(|o| o.transcode = vec!["PCMA".into(), "foobar".into()])),
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

/// rtpengine's test "DTMF PT reduction": once `transcode` adds a codec that B may send and
/// we transcode into one of A's, what no transcoder handles leaves B's list.
#[test]
fn transcoding_strips_codecs_nobody_transcodes() {
    let offered = vec![
        sdp_codec(109, "EVS", 16000, None, Some("br=5.9-24.4")),
        sdp_codec(104, "speex", 16000, None, None),
        sdp_codec(102, "G722", 8000, None, None),
        sdp_codec(110, "iLBC", 8000, None, Some("mode=30")),
        sdp_codec(3, "GSM", 8000, None, None),
        sdp_codec(97, "foobar", 8000, None, None),
        sdp_codec(105, "telephone-event", 16000, None, Some("0-15")),
        sdp_codec(100, "telephone-event", 8000, None, Some("0-15")),
    ];
    let run = |codecs: &[SdpCodec], o: CodecOptions| {
        let (edit, _) = offer(codecs, None, &o, None, None);
        list(&edit.codecs.unwrap_or_else(|| codecs.to_vec()))
    };
    assert_eq!(
        run(&offered, transcode(&["PCMA", "PCMU"])),
        [
            "104:speex/16000",
            "102:G722/8000",
            "3:GSM/8000",
            "8:PCMA/8000",
            "0:PCMU/8000",
            "105:telephone-event/16000",
            "100:telephone-event/8000"
        ]
    );
    // Nothing of A's to transcode into: B's PCMA could only be relayed, nothing is stripped.
    let unsupported = vec![offered[0].clone(), offered[3].clone()];
    assert_eq!(
        run(&unsupported, transcode(&["PCMA"])),
        ["109:EVS/16000", "110:iLBC/8000", "8:PCMA/8000"]
    );
    // A masked codec of A's own coming back is relayed: no transcoding, no stripping.
    let mut mask = transcode(&["G722"]);
    mask.mask = vec!["G722".into()];
    assert_eq!(
        run(&offered, mask.clone())[..2],
        ["109:EVS/16000", "104:speex/16000"]
    );
    // Without options nothing changes at all.
    assert_eq!(run(&offered, CodecOptions::default()), list(&offered));
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
    // re-adds it from A's list); a new one gets the lowest number A does not use. iLBC,
    // which no transcoder handles, goes once opus is transcoded.
    assert_eq!(
        list(&edit.codecs.unwrap()),
        [
            "0:PCMU/8000",
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
