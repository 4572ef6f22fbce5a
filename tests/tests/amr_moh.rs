//! Music on hold toward an AMR-WB mobile leg (both parties speak only AMR-WB, octet-aligned,
//! on a dynamic payload type): the player encodes the file's 16 kHz audio as AMR-WB at the
//! default mode (14.25 kbit/s) in RFC 4867 octet-aligned payloads, 20 ms per packet on the
//! 16 kHz RTP clock, and what the phone decodes is the file.

mod transcode_common;

use std::time::Duration;

use ngmedia_codecs::amr::{self, AmrBand};
use ngmedia_codecs::audio_file;
use ngmedia_tests::{dict, Daemon};
use transcode_common::*;

#[test]
fn music_on_hold_toward_an_amr_wb_phone() {
    let daemon = Daemon::start(&[&format!("--media-play-dirs={}", media_dir().display())]);
    let ng = daemon.client();
    let fmtp = "octet-align=1";
    let call = setup(
        &ng,
        "moh-amr-wb",
        &[(96, "AMR-WB/16000", Some(fmtp))],
        &[],
        |_| vec![(96, "AMR-WB/16000".into(), Some(fmtp.into()))],
        Some(20),
    );
    let file = media_dir().join("speech-2s.wav");
    let reply = ng.ok(dict! {
        "command" => "play media", "call-id" => "moh-amr-wb", "from-tag" => "tb",
        "file" => file.to_string_lossy().as_ref(),
    });
    assert_eq!(reply.str_at("result"), Some("ok"));
    let mut rx = receive(&call.b, call.b_dest, Duration::from_secs(4));
    assert_eq!(rx.len(), 100, "2 s of 20 ms packets");
    assert_eq!(check_line(&rx, "MoH"), 320, "20 ms on the 16 kHz clock");
    assert!(rx[0].marker);
    let wb = lookup("AMR-WB", 16000, None, Some(fmtp));
    for r in &rx {
        assert_eq!(r.pt, 96);
        // CMR octet, one ToC octet, a 14.25 kbit/s frame (285 bits) in 36 octets.
        assert_eq!(r.payload.len(), 1 + 1 + 36);
        let mut fts = Vec::new();
        let cmr = amr::unpack(AmrBand::Wide, &wb.amr_params(), &r.payload, |f| {
            fts.push(amr::toc_ft(f[0]));
            Ok(())
        })
        .expect("a well-formed AMR-WB payload");
        assert_eq!((cmr, fts.as_slice()), (amr::NO_CMR, &[3u8][..]));
    }
    let first = rx[0].seq;
    rx.sort_by_key(|r| r.seq.wrapping_sub(first));
    let mut dec = wb.decoder().unwrap();
    let mut pcm = Vec::new();
    let mut buf = [0i16; 640];
    for r in &rx {
        let n = dec.decode(&r.payload, &mut buf).unwrap();
        pcm.extend_from_slice(&buf[..n]);
    }
    assert_eq!(pcm.len(), 100 * 320, "16 kHz audio");
    let want = audio_file::decode(&std::fs::read(&file).unwrap(), 60).unwrap();
    let want = want.pcm_at(16000).unwrap();
    // 0.96 measured at 14.25 kbit/s (ACELP keeps what is heard rather than the exact
    // waveform); a wrong rate, clock or packing falls near 0.
    let c = correlation(&pcm, want, 200);
    assert!(c > 0.9, "correlation with the file at 16 kHz: {c}");
}
