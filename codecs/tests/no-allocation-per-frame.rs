//! A steady-state transcoding loop (PCMU -> 48k Opus -> G.729 -> G.722 -> AMR (DTX) and
//! AMR-WB (two frames per packet, CMR) -> Speex (a lost packet now and then) -> PCMA, with
//! resampling and DTMF) performs no heap allocation per frame: the codecs write into caller
//! buffers and all scratch is allocated when they are built.

use ngmedia_codecs::dtmf::{DtmfDetector, ToneGenerator};
use ngmedia_codecs::{Codec, Resampler};
use ngmedia_test_support::{allocations_in, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn steady_state_transcoding_allocates_nothing() {
    let pcmu = Codec::from_static_pt(0).unwrap();
    let pcma = Codec::from_static_pt(8).unwrap();
    let opus = Codec::lookup("opus", 48000, Some(2), Some("useinbandfec=1")).unwrap();
    let mut pcmu_enc = pcmu.encoder(20).unwrap();
    let mut pcmu_dec = pcmu.decoder().unwrap();
    let mut opus_enc = opus.encoder(20).unwrap();
    let mut opus_dec = opus.decoder().unwrap();
    let mut pcma_enc = pcma.encoder(20).unwrap();
    let mut up = Resampler::new(8000, 48000, 20).unwrap();
    let mut down = Resampler::new(48000, 8000, 20).unwrap();
    #[cfg(feature = "g729")]
    let g729 = Codec::lookup("G729", 8000, None, None).unwrap();
    #[cfg(feature = "g729")]
    let (mut g729_enc, mut g729_dec) = (g729.encoder(20).unwrap(), g729.decoder().unwrap());
    #[cfg(feature = "g722")]
    let g722 = Codec::from_static_pt(9).unwrap();
    #[cfg(feature = "g722")]
    let (mut g722_enc, mut g722_dec) = (g722.encoder(20).unwrap(), g722.decoder().unwrap());
    #[cfg(feature = "g722")]
    let (mut up16, mut down16) = (
        Resampler::new(8000, 16000, 20).unwrap(),
        Resampler::new(16000, 8000, 20).unwrap(),
    );
    #[cfg(feature = "g722")]
    let mut pcm16 = [0i16; 320];
    // AMR-NB bandwidth-efficient with DTX, AMR-WB octet-aligned with a CMR every tenth frame.
    #[cfg(feature = "amr")]
    let amr = Codec::lookup("AMR", 8000, None, Some("mode-set=0,2,5,7")).unwrap();
    #[cfg(feature = "amr")]
    let amr_wb = Codec::lookup("AMR-WB", 16000, None, Some("octet-align=1")).unwrap();
    #[cfg(feature = "amr")]
    let amr_opts = ngmedia_codecs::EncoderOptions {
        amr_dtx: true,
        ..Default::default()
    };
    #[cfg(feature = "amr")]
    let (mut amr_enc, mut amr_dec) = (
        amr.encoder_with(20, &amr_opts).unwrap(),
        amr.decoder().unwrap(),
    );
    #[cfg(feature = "amr")]
    let (mut amr_wb_enc, mut amr_wb_dec) = (amr_wb.encoder(40).unwrap(), amr_wb.decoder().unwrap());
    #[cfg(feature = "amr")]
    let (mut up16b, mut down16b) = (
        Resampler::new(8000, 16000, 20).unwrap(),
        Resampler::new(16000, 8000, 20).unwrap(),
    );
    #[cfg(feature = "amr")]
    let (mut pcm8x2, mut pcm16x2) = ([0i16; 160], [0i16; 640]);
    #[cfg(feature = "speex")]
    let speex = Codec::lookup("speex", 8000, None, None).unwrap();
    #[cfg(feature = "speex")]
    let (mut speex_enc, mut speex_dec) = (speex.encoder(20).unwrap(), speex.decoder().unwrap());
    let mut tone = ToneGenerator::new(5, 10, 8000).unwrap();
    let mut detector = DtmfDetector::new(8000).unwrap();

    let mut pcm8 = [0i16; 160];
    let mut pcm48 = [0i16; 960];
    let mut payload = [0u8; 1500];
    let mut transitions = 0;
    let mut frame = |n: usize| {
        tone.fill(&mut pcm8);
        let len = pcmu_enc.encode(&pcm8, &mut payload).unwrap();
        pcmu_dec.decode(&payload[..len], &mut pcm8).unwrap();
        detector.process(&pcm8, |_, _| transitions += 1);
        up.process(&pcm8, &mut pcm48).unwrap();
        let len = opus_enc.encode(&pcm48, &mut payload).unwrap();
        if n % 10 == 3 {
            opus_dec.conceal(960, &mut pcm48).unwrap();
        } else {
            opus_dec.decode(&payload[..len], &mut pcm48).unwrap();
        }
        down.process(&pcm48, &mut pcm8).unwrap();
        #[cfg(feature = "g729")]
        {
            let len = g729_enc.encode(&pcm8, &mut payload).unwrap();
            if len > 0 {
                g729_dec.decode(&payload[..len], &mut pcm8).unwrap();
            }
        }
        #[cfg(feature = "g722")]
        {
            up16.process(&pcm8, &mut pcm16).unwrap();
            let len = g722_enc.encode(&pcm16, &mut payload).unwrap();
            g722_dec.decode(&payload[..len], &mut pcm16).unwrap();
            down16.process(&pcm16, &mut pcm8).unwrap();
        }
        #[cfg(feature = "amr")]
        {
            let len = amr_enc.encode(&pcm8, &mut payload).unwrap();
            if len > 0 {
                amr_dec.decode(&payload[..len], &mut pcm8).unwrap();
            } else {
                amr_dec.conceal(160, &mut pcm8).unwrap();
            }
            // Two 20 ms frames per AMR-WB packet.
            let half = n % 2;
            up16b
                .process(&pcm8, &mut pcm16x2[half * 320..half * 320 + 320])
                .unwrap();
            if n % 2 == 1 {
                if let ngmedia_codecs::EncoderKind::Amr(e) = &mut amr_wb_enc.kind {
                    e.request_mode(if n % 20 == 1 { 8 } else { 2 });
                }
                let len = amr_wb_enc.encode(&pcm16x2, &mut payload).unwrap();
                amr_wb_dec.decode(&payload[..len], &mut pcm16x2).unwrap();
                down16b.process(&pcm16x2[..320], &mut pcm8x2).unwrap();
            }
        }
        #[cfg(feature = "speex")]
        {
            let len = speex_enc.encode(&pcm8, &mut payload).unwrap();
            if n % 10 == 7 {
                speex_dec.conceal(160, &mut pcm8).unwrap();
            } else {
                speex_dec.decode(&payload[..len], &mut pcm8).unwrap();
            }
        }
        pcma_enc.encode(&pcm8, &mut payload).unwrap();
    };
    for n in 0..50 {
        frame(n); // warm-up: lazily initialised state, if any
    }
    let (allocated, ()) = allocations_in(|| {
        for n in 0..500 {
            frame(n);
        }
    });
    assert_eq!(allocated, 0, "allocations in 500 steady-state frames");
    assert_eq!(transitions, 1, "the digit is detected once and held");
}
