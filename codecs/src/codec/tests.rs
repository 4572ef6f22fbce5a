use super::*;
use crate::test_util::{align, read_wav, snr_db};

#[test]
fn lookup_by_sdp_name_rate_channels() {
    let pcmu = Codec::lookup("pcmu", 8000, None, None).unwrap();
    assert_eq!(
        (pcmu.kind(), pcmu.def.static_pt),
        (CodecKind::Pcmu, Some(0))
    );
    assert_eq!(
        Codec::lookup("PCMA", 8000, Some(1), None)
            .unwrap()
            .def
            .static_pt,
        Some(8)
    );
    let opus = Codec::lookup("OPUS", 48000, Some(2), Some("useinbandfec=1; stereo=0")).unwrap();
    assert_eq!(opus.kind(), CodecKind::Opus);
    assert!(matches!(
        opus.params,
        CodecParams::Opus(OpusParams {
            useinbandfec: true,
            ..
        })
    ));
    assert_eq!(opus.pcm_channels(), 1);
    // `opus/48000` written with one channel is still Opus, mono (as rtpengine takes it).
    let mono = Codec::lookup("opus", 48000, Some(1), None).unwrap();
    assert_eq!((mono.kind(), mono.pcm_channels()), (CodecKind::Opus, 1));
    // G.711 at any rate it is offered at (a dynamic payload type is the SDP's business).
    let wide = Codec::lookup("PCMU", 16000, None, None).unwrap();
    assert_eq!((wide.kind(), wide.clock_rate), (CodecKind::Pcmu, 16000));
    assert!(Codec::lookup("PCMU", 11025, None, None).is_err());
    assert!(Codec::lookup("opus", 44100, Some(2), None).is_err());
    assert!(Codec::lookup("GSM", 8000, None, None).is_err());
    let te = Codec::lookup("telephone-event", 16000, None, Some("0-16")).unwrap();
    assert_eq!(
        (te.kind(), te.clock_rate),
        (CodecKind::TelephoneEvent, 16000)
    );
    assert_eq!(
        Codec::lookup("telephone-event", 48000, None, None)
            .unwrap()
            .def
            .clock_rate,
        48000
    );
    assert_eq!(Codec::from_static_pt(18).unwrap().kind(), CodecKind::G729);
    assert_eq!(Codec::from_static_pt(96), None);
}

#[test]
fn fmtp_parse_and_render() {
    let g729 = Codec::from_static_pt(18).unwrap();
    assert_eq!(g729.params, CodecParams::G729 { annexb: true });
    let g729 = Codec::lookup("G729", 8000, None, Some("annexb=no")).unwrap();
    assert_eq!(g729.fmtp().as_deref(), Some("annexb=no"));
    assert!(matches!(
        Codec::lookup("G729", 8000, None, Some("annexb=maybe")),
        Err(CodecError::Fmtp(_))
    ));
    let opus = Codec::lookup(
        "opus",
        48000,
        Some(2),
        Some("maxplaybackrate=16000;sprop-stereo=1; useinbandfec=1;x-unknown=3"),
    )
    .unwrap();
    assert_eq!(
        opus.fmtp().as_deref(),
        Some("sprop-stereo=1; useinbandfec=1; maxplaybackrate=16000")
    );
    assert_eq!(opus.pcm_channels(), 2);
    let te = Codec::lookup("telephone-event", 8000, None, Some("0-15,66,70-71")).unwrap();
    let CodecParams::TelephoneEvent { events } = te.params else {
        panic!()
    };
    assert!(events.contains(15) && events.contains(66) && !events.contains(16));
    assert_eq!(te.fmtp().as_deref(), Some("0-15,66,70-71"));
    assert!(Codec::lookup("telephone-event", 8000, None, Some("5-2")).is_err());
    assert!(Codec::lookup("telephone-event", 8000, None, Some("0-300")).is_err());
}

#[test]
fn frame_durations() {
    let pcma = Codec::from_static_pt(8).unwrap();
    assert!(pcma.supports_ptime(1) && pcma.supports_ptime(7) && pcma.supports_ptime(30));
    assert!(!pcma.supports_ptime(0));
    let g729 = Codec::from_static_pt(18).unwrap();
    assert!(g729.supports_ptime(10) && g729.supports_ptime(30) && !g729.supports_ptime(25));
    let opus = Codec::lookup("opus", 48000, Some(2), None).unwrap();
    assert!(opus.supports_ptime(20) && opus.supports_ptime(60) && !opus.supports_ptime(30));
    assert!(matches!(
        g729.encoder(25),
        Err(CodecError::UnsupportedFrameDuration {
            codec: "G729",
            ms: 25
        })
    ));
}

#[test]
fn g711_any_whole_millisecond() {
    let pcmu = Codec::from_static_pt(0).unwrap();
    let mut enc = pcmu.encoder(7).unwrap();
    assert_eq!((enc.frame_samples(), enc.timestamp_step()), (56, 56));
    let mut out = [0u8; 56];
    assert_eq!(enc.encode(&[0; 56], &mut out), Ok(56));
    assert_eq!(out, [0xFF; 56]);
    assert!(matches!(
        enc.encode(&[0; 55], &mut out),
        Err(CodecError::PcmLength { .. })
    ));
    let mut dec = pcmu.decoder().unwrap();
    let mut pcm = [1i16; 80];
    assert_eq!(dec.conceal(80, &mut pcm), Ok(80));
    assert_eq!(pcm, [0; 80]);
}

#[cfg(feature = "g729")]
#[test]
fn g729_repacketizes_10ms_frames() {
    let g729 = Codec::lookup("G729", 8000, None, Some("annexb=no")).unwrap();
    let (_, speech) = read_wav("speech-8k.wav");
    let mut enc = g729.encoder(30).unwrap();
    let mut dec = g729.decoder().unwrap();
    assert_eq!((enc.frame_samples(), enc.max_payload_len()), (240, 30));
    let mut payload = [0u8; 30];
    let mut out = vec![0i16; speech.len() / 240 * 240];
    for (inp, o) in speech.chunks_exact(240).zip(out.chunks_exact_mut(240)) {
        assert_eq!(enc.encode(inp, &mut payload), Ok(30));
        assert_eq!(dec.decode(&payload, o), Ok(240));
    }
    let (lag, corr) = align(&speech, &out, 100);
    assert!(corr > 0.78, "lag {lag} corr {corr}");
    let mut pcm = [0i16; 240];
    assert_eq!(dec.conceal(240, &mut pcm), Ok(240));
    assert!(dec.conceal(100, &mut pcm).is_err());
}

#[test]
fn opus_at_8k_pcm_skips_the_resampler() {
    let opus = Codec::lookup("opus", 48000, Some(2), Some("useinbandfec=1")).unwrap();
    let opts = EncoderOptions {
        pcm_rate: Some(8000),
        ..EncoderOptions::default()
    };
    let mut enc = opus.encoder_with(20, &opts).unwrap();
    let mut dec = opus.decoder_at(8000).unwrap();
    // 160 PCM samples at 8 kHz, but the RTP clock still advances 960 per packet.
    assert_eq!((enc.frame_samples(), enc.timestamp_step()), (160, 960));
    let (_, speech) = read_wav("speech-8k.wav");
    let mut payload = vec![0u8; enc.max_payload_len()];
    let mut out = vec![0i16; speech.len() / 160 * 160];
    for (inp, o) in speech.chunks_exact(160).zip(out.chunks_exact_mut(160)) {
        let len = enc.encode(inp, &mut payload).unwrap();
        assert_eq!(dec.decode(&payload[..len], o), Ok(160));
    }
    let (lag, corr) = align(&speech, &out, 200);
    let n = out.len() - lag;
    let snr = snr_db(&speech[..n], &out[lag..lag + n]);
    assert!(corr > 0.9 && snr > 6.0, "lag {lag} corr {corr} snr {snr}");
    assert!(matches!(
        Codec::from_static_pt(0).unwrap().decoder_at(16000),
        Err(CodecError::UnsupportedRate(16000))
    ));
    let te = Codec::lookup("telephone-event", 8000, None, None).unwrap();
    assert!(matches!(te.decoder(), Err(CodecError::Unavailable(_))));
}

#[test]
fn enums_are_send() {
    fn is_send<T: Send>() {}
    is_send::<Decoder>();
    is_send::<Encoder>();
}

#[test]
fn amr_registry_entries() {
    let nb = Codec::lookup("amr", 8000, Some(1), Some("octet-align=1; mode-set=7")).unwrap();
    assert_eq!(
        (nb.kind(), nb.name(), nb.def.static_pt),
        (CodecKind::Amr, "AMR", None)
    );
    assert_eq!(nb.fmtp().as_deref(), Some("octet-align=1; mode-set=7"));
    assert!(nb.supports_ptime(20) && nb.supports_ptime(60) && !nb.supports_ptime(30));
    assert!(!nb.supports_ptime(220));
    let wb = Codec::lookup("AMR-WB", 16000, None, None).unwrap();
    assert_eq!((wb.kind(), wb.def.pcm_rate), (CodecKind::AmrWb, 16000));
    assert_eq!(wb.fmtp(), None);
    assert!(Codec::lookup("AMR-WB", 8000, None, None).is_err());
    assert!(matches!(
        Codec::lookup("AMR", 8000, None, Some("mode-set=8")),
        Err(CodecError::Fmtp(_))
    ));
    #[cfg(feature = "amr")]
    {
        let enc = wb.encoder(60).unwrap();
        assert_eq!((enc.frame_samples(), enc.timestamp_step()), (960, 960));
        assert_eq!(wb.decoder().unwrap().pcm_rate(), 16000);
        let enc = nb.encoder(20).unwrap();
        assert_eq!((enc.frame_samples(), enc.timestamp_step()), (160, 160));
        assert!(enc.max_payload_len() >= 33);
        // Formats we decode but do not produce.
        let crc = Codec::lookup("AMR", 8000, None, Some("crc=1")).unwrap();
        assert!(crc.decoder().is_ok());
        assert!(matches!(crc.encoder(20), Err(CodecError::Unavailable(_))));
    }
}

#[test]
fn g711_runs_at_the_clock_rate_its_sdp_gives() {
    // `PCMU/16000`: one µ-law byte per sample at 16 kHz, as rtpengine takes G.711 at any rate.
    let wide = Codec::lookup("PCMU", 16000, None, None).unwrap();
    assert_eq!(
        (wide.kind(), wide.clock_rate, wide.pcm_rate()),
        (CodecKind::Pcmu, 16000, 16000)
    );
    let enc = wide.encoder(20).unwrap();
    assert_eq!((enc.frame_samples(), enc.timestamp_step()), (320, 320));
    let mut dec = wide.decoder().unwrap();
    assert_eq!(dec.pcm_rate(), 16000);
    let mut pcm = [0i16; 320];
    assert_eq!(dec.decode(&[0xff; 320], &mut pcm).unwrap(), 320);
    assert_eq!(
        Codec::lookup("PCMA", 48000, None, None).unwrap().pcm_rate(),
        48000
    );
    assert_eq!(
        Codec::lookup("PCMA", 8000, None, None).unwrap().pcm_rate(),
        8000
    );
    // Rates the resampler does not convert, and other codecs at a foreign rate, are unknown.
    assert!(Codec::lookup("PCMU", 11025, None, None).is_err());
    assert!(Codec::lookup("G729", 16000, None, None).is_err());
}

#[test]
fn speex_registry_entries() {
    for rate in [8000, 16000, 32000] {
        let c = Codec::lookup("SPEEX", rate, None, Some("mode=any")).unwrap();
        assert_eq!(
            (c.kind(), c.name(), c.def.clock_rate, c.pcm_rate()),
            (CodecKind::Speex, "speex", rate, rate)
        );
        assert_eq!(c.fmtp(), None);
        assert!(c.supports_ptime(40) && !c.supports_ptime(30));
        #[cfg(feature = "speex")]
        {
            let mut enc = c.encoder(40).unwrap();
            let step = rate * 40 / 1000;
            assert_eq!(enc.timestamp_step(), step);
            assert_eq!(enc.frame_samples(), step as usize);
            let mut dec = c.decoder().unwrap();
            assert_eq!(dec.pcm_rate(), rate);
            let pcm = vec![0i16; step as usize];
            let mut payload = vec![0u8; enc.max_payload_len()];
            let len = enc.encode(&pcm, &mut payload).unwrap();
            let mut out = vec![0i16; step as usize];
            assert_eq!(dec.decode(&payload[..len], &mut out), Ok(step as usize));
            assert_eq!(dec.conceal(step as usize, &mut out), Ok(step as usize));
        }
    }
    assert!(Codec::lookup("speex", 48000, None, None).is_err());
}

/// `codec-set`'s bitrate reaches the Speex encoder: a 20 ms wideband frame fits rtpengine's
/// default 11 kbit/s without it and grows at 24 kbit/s, never past the rate asked for.
#[cfg(feature = "speex")]
#[test]
fn speex_encoder_takes_the_set_bitrate() {
    let c = Codec::lookup("speex", 16000, None, None).unwrap();
    let pcm = crate::test_util::sine(440.0, 16000, 320, 8000.0);
    let bytes = |bitrate: Option<u32>| {
        let opts = EncoderOptions {
            bitrate,
            ..EncoderOptions::default()
        };
        let mut enc = c.encoder_with(20, &opts).unwrap();
        let mut payload = vec![0u8; enc.max_payload_len()];
        enc.encode(&pcm, &mut payload).unwrap()
    };
    let default = bytes(None);
    let high = bytes(Some(24_000));
    assert!(
        default <= 11_000 * 20 / 1000 / 8 + 1,
        "default {default} bytes"
    );
    assert!(
        high > default && high <= 24_000 * 20 / 1000 / 8 + 1,
        "{high} vs {default}"
    );
}
