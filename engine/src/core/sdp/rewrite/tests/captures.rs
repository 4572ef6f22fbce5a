//! The offers and answers captured from rtpengine (the ng protocol reference's examples),
//! rewritten as rtpengine rewrote them. Both sides are fixtures in the wire form (CRLF):
//! `test-support/fixtures/sdp/rtpengine-exN-{offer,answer}.sdp` what was sent, `….rewritten*.sdp`
//! what rtpengine answered.

use super::*;

pub(super) const EX2_OFFER: &str = sdp_fixture!("rtpengine-ex2-offer");

#[test]
fn capture_ex2_offer() {
    let out = rewrite_text(EX2_OFFER, &rewrite_for(true, 30030));
    assert_eq!(out, sdp_fixture!("rtpengine-ex2-offer.rewritten"));
    assert_eq!(out.len(), 253, "length in the captured bencode");
}

#[test]
fn capture_ex2_answer() {
    let input = sdp_fixture!("rtpengine-ex2-answer");
    let mut sdp = Sdp::parse(input).unwrap();
    // rtpengine copies the offer's ptime into the answer; the call model does that here.
    sdp.media[0].set_ptime(Some(20));
    let out = sdp.rewrite(&rewrite_for(true, 30046)).write();
    assert_eq!(out, sdp_fixture!("rtpengine-ex2-answer.rewritten"));
    assert_eq!(out.len(), 206);
}

// ---- captures: ex1.out ----

#[test]
fn capture_ex1_offer_and_answer() {
    let offer = sdp_fixture!("rtpengine-ex1-offer");
    let out = rewrite_text(offer, &rewrite_for(true, 30000));
    assert_eq!(
        out,
        offer.replace("40000", "30000").replace(
            "0-15\r\na=sendrecv\r\n",
            "0-15\r\na=sendrecv\r\na=rtcp:30001\r\n"
        )
    );
    assert_eq!(out.len(), 238);

    let answer = sdp_fixture!("rtpengine-ex1-answer");
    let out = rewrite_text(answer, &rewrite_for(true, 30012));
    assert_eq!(out, sdp_fixture!("rtpengine-ex1-answer.rewritten"));
    assert_eq!(out.len(), 194);
}

// ---- captures: kamailio-5.6-to-rtpengine.log ----

#[test]
fn capture_kamailio_offer_with_codec_mask() {
    let input = sdp_fixture!("kamailio-offer-pcmu-pcma");
    let mut sdp = Sdp::parse(input).unwrap();
    // codec-mask-PCMU (codec-transcode-PCMA already present): the call model drops PT 0.
    let codecs: Vec<Codec> = sdp.media[0]
        .codecs()
        .into_iter()
        .filter(|c| c.name != "PCMU")
        .collect();
    sdp.media[0].set_codecs(&codecs);
    let out = sdp.rewrite(&rewrite_for(true, 30244)).write();
    assert_eq!(
        out,
        sdp_fixture!("kamailio-offer-pcmu-pcma.codec-mask-pcmu")
    );
    assert_eq!(out.len(), 183);
}

// ---- captures: ex4.out (SDES bridging) ----

const PLAIN_C: &str = sdp_fixture!("rtpengine-ex4-offer");

const EX4_CRYPTO: [&str; 12] = [
        "1 AEAD_AES_256_GCM inline:O0ScP7smVkvskzceDJ3B0lJtGQh2ztLfmz2UeQ2gRwT11w/gTPEoa6esI+Q",
        "2 AEAD_AES_128_GCM inline:mS1eUO2fzezwBU3Nh1MZ3B1P+ShKJP1Ji+xpsg",
        "3 AES_256_CM_HMAC_SHA1_80 inline:GrBeGD5JZqVbcpY+IXFoWymeT98vgmaa1kEMtJ029+/WHaiPlfEkWm1+Ndg5hw",
        "4 AES_256_CM_HMAC_SHA1_32 inline:uqy9h8b/uMosf9WHekGFZcD8iRPHHRaf3NH8qbYxRH7GaeezuHNDoROWKFxaRw",
        "5 AES_192_CM_HMAC_SHA1_80 inline:t01Vu6cx4ynytT86I6Gl3yUhuhOri6zG1BBGh1EA20xiYfzLH4k",
        "6 AES_192_CM_HMAC_SHA1_32 inline:/ONFCBXWL6JQaG05U7HL4twvczcndzOSMibb/iwEHFKEJqaqJ3w",
        "7 AES_CM_128_HMAC_SHA1_80 inline:MsfOVG8bCsLaPfxs7oIilKBjkhLvsiNOPsBuF6IR",
        "8 AES_CM_128_HMAC_SHA1_32 inline:73fsbpRzXFUrdZwa4oqhDhn0VlfPulEQ4CgUGjSX",
        "9 F8_128_HMAC_SHA1_80 inline:02szrm1OHXGQAWYJ8LsB8cnNVt3Cyk8BcsCpZKpI",
        "10 F8_128_HMAC_SHA1_32 inline:ugyVQTvS8tJ4ENHB/GnxvcXzPHRg6mysJsY4Pqvl",
        "11 NULL_HMAC_SHA1_80 inline:mj5fZ9Aygy6REKbgjP9MN9E17Lgd/e8tA1PMCNY9",
        "12 NULL_HMAC_SHA1_32 inline:aNTJy5oVjfB8BQINh7PMiaT+DE44Bcd1h2yQcJIK",
    ];
const EX4_FINGERPRINT: &str = "sha-256 8F:BC:02:BA:48:E0:48:70:04:8A:6D:55:3E:EA:01:27:3B:FA:38:39:2F:16:61:12:CB:E7:99:C4:F5:60:8B:E5";

#[test]
fn capture_ex4_offer_rtp_to_sdes() {
    let mut sdp = Sdp::parse(PLAIN_C).unwrap();
    // The call model puts the engine's keys and DTLS parameters into the section; added
    // in an order different from rtpengine's on purpose: the rewrite orders them.
    sdp.media[0].set_attributes("fingerprint", &[EX4_FINGERPRINT]);
    sdp.media[0].set_attributes("setup", &["actpass"]);
    sdp.media[0].set_attributes("crypto", &EX4_CRYPTO);
    let mut rw = rewrite_for(true, 30054);
    rw.media[0].protocol = Some("RTP/SAVP".into());
    let out = sdp.rewrite(&rw).write();
    assert_eq!(out, sdp_fixture!("rtpengine-ex4-offer.rewritten-sdes"));
    assert_eq!(out.len(), 1380);
}

#[test]
fn capture_ex4_answer_sdes_to_rtp() {
    let input = sdp_fixture!("rtpengine-ex4-answer");
    let mut sdp = Sdp::parse(input).unwrap();
    // The engine terminates SRTP towards bob: his key is consumed, not passed on.
    sdp.media[0].remove_attributes("crypto");
    let mut rw = rewrite_for(true, 30062);
    rw.media[0].protocol = Some("RTP/AVP".into());
    let out = sdp.rewrite(&rw).write();
    assert_eq!(out, sdp_fixture!("rtpengine-ex4-answer.rewritten-rtp"));
    assert_eq!(out.len(), 181);
}

// ---- captures: ex5.out (transcoding) ----

#[test]
fn capture_ex5_offer_adds_opus() {
    let mut sdp = Sdp::parse(PLAIN_C).unwrap();
    let mut codecs = sdp.media[0].codecs();
    let opus = Codec {
        pt: 96,
        name: "opus".into(),
        clock_rate: 48000,
        channels: Some(2),
        fmtp: None,
    };
    let te48 = Codec {
        pt: 97,
        name: "telephone-event".into(),
        clock_rate: 48000,
        channels: None,
        fmtp: Some("0-15".into()),
    };
    codecs.insert(1, opus);
    codecs.insert(2, te48);
    sdp.media[0].set_codecs(&codecs);
    let out = sdp.rewrite(&rewrite_for(false, 30152)).write();
    assert_eq!(out, sdp_fixture!("rtpengine-ex5-offer.rewritten-opus"));
    assert_eq!(out.len(), 266);
}

#[test]
fn capture_ex5_answer_back_to_pcmu() {
    let input = sdp_fixture!("rtpengine-ex5-answer");
    let mut sdp = Sdp::parse(input).unwrap();
    let pcmu = Codec::from_static(0).unwrap();
    let te = sdp.media[0]
        .codecs()
        .into_iter()
        .find(|c| c.pt == 101)
        .unwrap();
    sdp.media[0].set_codecs(&[pcmu, te]);
    let out = sdp.rewrite(&rewrite_for(false, 30168)).write();
    assert_eq!(out, sdp_fixture!("rtpengine-ex5-answer.rewritten-pcmu"));
    assert_eq!(out.len(), 181);
}

#[test]
fn capture_ex5_unchanged_codecs_without_origin_replace() {
    let out = rewrite_text(PLAIN_C, &rewrite_for(false, 30216));
    assert_eq!(
        out,
        PLAIN_C
            .replace("c=IN IP4 127.0.0.2", "c=IN IP4 127.0.0.1")
            .replace("41000", "30216")
            .replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp:30217\r\n")
    );
    assert_eq!(out.len(), 183);
}

// ---- behaviour beyond the captures ----
