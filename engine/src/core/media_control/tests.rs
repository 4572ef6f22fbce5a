use super::*;

fn rtp(pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 160, 0, 0, 0x12, 0x34];
    p.extend_from_slice(payload);
    p
}

fn control(silence: bool, block_dtmf: BlockDtmf) -> StreamControl {
    StreamControl {
        block_media: false,
        block_dtmf,
        silence,
        tone_freq: None,
        digit: None,
        volume: None,
        payloads: vec![
            (0, PayloadKind::Pcmu),
            (8, PayloadKind::Pcma),
            (18, PayloadKind::G729),
            (96, PayloadKind::Opus),
            (101, PayloadKind::Event),
        ],
        dtmf_log: None,
        security: None,
        block_peer: false,
        silence_peer: false,
    }
}

#[test]
fn block_mode_names_are_rtpengines() {
    for (s, m) in [
        ("off", BlockDtmf::Off),
        ("drop", BlockDtmf::Drop),
        ("silence", BlockDtmf::Silence),
        ("tone", BlockDtmf::Tone),
        ("random", BlockDtmf::Random),
        ("zero", BlockDtmf::Zero),
        ("DTMF", BlockDtmf::Dtmf),
    ] {
        assert_eq!(BlockDtmf::parse(s), Some(m));
    }
    assert_eq!(BlockDtmf::parse("loud"), None);
}

#[test]
fn call_wide_block_mode_wins() {
    let call = MediaControl {
        block_dtmf: BlockDtmf::Silence,
        ..MediaControl::default()
    };
    let leg = MediaControl {
        block_dtmf: BlockDtmf::Drop,
        block_media: true,
        ..MediaControl::default()
    };
    let c = MediaControl::combine(&call, &leg);
    assert_eq!((c.block_dtmf, c.block_media), (BlockDtmf::Silence, true));
    let c = MediaControl::combine(&MediaControl::default(), &leg);
    assert_eq!(c.block_dtmf, BlockDtmf::Drop);
}

#[test]
fn g711_silence_keeps_the_length() {
    let c = control(true, BlockDtmf::Off);
    let mut p = rtp(0, &[0x12; 160]);
    assert_eq!(c.apply_rtp(&mut p), ControlVerdict::Forward(172));
    assert!(p[12..].iter().all(|&b| b == 0xFF));
    let mut p = rtp(8, &[0x12; 80]);
    assert_eq!(c.apply_rtp(&mut p), ControlVerdict::Forward(92));
    assert!(p[12..].iter().all(|&b| b == 0xD5));
    // Unknown payload types pass untouched.
    let mut p = rtp(99, &[0x12; 20]);
    assert_eq!(c.apply_rtp(&mut p), ControlVerdict::Forward(32));
    assert!(p[12..].iter().all(|&b| b == 0x12));
}

#[test]
fn padding_is_removed() {
    let c = control(true, BlockDtmf::Off);
    let mut payload = vec![0x12; 160];
    payload.extend_from_slice(&[0, 0, 0, 4]);
    let mut p = rtp(0, &payload);
    p[0] |= 0x20;
    assert_eq!(c.apply_rtp(&mut p), ControlVerdict::Forward(172));
    assert_eq!(p[0] & 0x20, 0);
}

#[test]
fn g729_silence_decodes_to_silence() {
    let c = control(true, BlockDtmf::Off);
    let loud: Vec<u8> = (0..20).map(|i| (i * 37) as u8).collect();
    let mut p = rtp(18, &loud);
    let ControlVerdict::Forward(n) = c.apply_rtp(&mut p) else {
        panic!("blocked");
    };
    assert_eq!(n, 32);
    let codec = Codec::lookup("G729", 8000, Some(1), None).unwrap();
    let mut dec = codec.decoder().unwrap();
    let mut pcm = [0i16; 160];
    let mut peak = 0;
    for _ in 0..5 {
        let got = dec.decode(&p[12..n], &mut pcm).unwrap();
        peak = pcm[..got].iter().map(|s| s.unsigned_abs()).max().unwrap();
    }
    assert!(peak < 100, "peak {peak}");
}

#[test]
fn opus_silence_keeps_the_duration() {
    let c = control(true, BlockDtmf::Off);
    // TOC: CELT fullband 20 ms (config 31), one frame; arbitrary payload.
    let mut payload = vec![31 << 3];
    payload.extend((0..120).map(|i| i as u8));
    let mut p = rtp(96, &payload);
    let ControlVerdict::Forward(n) = c.apply_rtp(&mut p) else {
        panic!("blocked");
    };
    assert!(n > 12 && n < p.len(), "{n}");
    assert_eq!(opus_packet_samples(&p[12..n]), Some(960));
    // SILK 60 ms (config 3).
    let mut p = rtp(
        96,
        &[3 << 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    );
    let ControlVerdict::Forward(n) = c.apply_rtp(&mut p) else {
        panic!("blocked");
    };
    assert_eq!(opus_packet_samples(&p[12..n]), Some(2880));
}

#[test]
fn events_dropped_when_blocked_or_silenced() {
    let ev = [1, 0x0a, 0, 160];
    let mut p = rtp(101, &ev);
    assert_eq!(
        control(false, BlockDtmf::Drop).apply_rtp(&mut p),
        ControlVerdict::Block
    );
    assert_eq!(
        control(true, BlockDtmf::Off).apply_rtp(&mut p),
        ControlVerdict::Block
    );
    assert_eq!(
        control(false, BlockDtmf::Off).apply_rtp(&mut p),
        ControlVerdict::Forward(16)
    );
    // Audio passes a DTMF block untouched.
    let mut p = rtp(0, &[0x12; 160]);
    assert_eq!(
        control(false, BlockDtmf::Drop).apply_rtp(&mut p),
        ControlVerdict::Forward(172)
    );
    assert_eq!(p[12], 0x12);
}

#[test]
fn block_media_blocks_everything() {
    let mut c = control(false, BlockDtmf::Off);
    c.block_media = true;
    assert_eq!(c.apply_rtp(&mut rtp(0, &[0; 160])), ControlVerdict::Block);
}

#[test]
fn persisted_shape_is_stable() {
    let c = MediaControl {
        block_dtmf: BlockDtmf::Dtmf,
        block_media: true,
        silence_media: false,
        tone_freq: None,
        digit: Some(3),
        volume: None,
        frequencies: Vec::new(),
        trigger: None,
        blocked_to: Vec::new(),
        silenced_to: Vec::new(),
        delay_buffer: Some(100),
        dtmf_delay: 60,
    };
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"delay_buffer\":100"), "{json}");
    assert!(json.contains("\"block_dtmf\":\"dtmf\""), "{json}");
    assert_eq!(serde_json::from_str::<MediaControl>(&json).unwrap(), c);
    assert_eq!(
        serde_json::from_str::<MediaControl>("{}").unwrap(),
        MediaControl::default()
    );
}

/// An AMR payload of `frames` 20 ms frames of a 500 Hz tone, in `fmtp`'s format.
fn amr_tone(name: &str, rate: u32, fmtp: &str, frames: usize) -> (Codec, Vec<u8>) {
    let codec = Codec::lookup(name, rate, None, Some(fmtp)).unwrap();
    let mut enc = codec.encoder(20 * frames as u32).unwrap();
    let n = enc.frame_samples();
    let mut out = vec![0u8; enc.max_payload_len()];
    let mut len = 0;
    for k in 0..5 {
        let pcm: Vec<i16> = (k * n..(k + 1) * n)
            .map(|i| {
                (8000.0 * (i as f64 * 500.0 / rate as f64 * std::f64::consts::TAU).sin()) as i16
            })
            .collect();
        len = enc.encode(&pcm, &mut out).unwrap();
    }
    out.truncate(len);
    (codec, out)
}

fn band_of(codec: &Codec) -> AmrBand {
    match codec.kind() {
        CodecKind::AmrWb => AmrBand::Wide,
        _ => AmrBand::Narrow,
    }
}

fn energy(codec: &Codec, payload: &[u8]) -> f64 {
    let mut dec = codec.decoder().unwrap();
    let mut pcm = vec![0i16; 320 * 4];
    let n = dec.decode(payload, &mut pcm).unwrap();
    pcm[..n].iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / n as f64
}

#[test]
fn amr_silence_keeps_mode_cmr_and_format() {
    for (name, rate, fmtp) in [
        ("AMR-WB", 16000, "octet-align=1"),
        ("AMR-WB", 16000, "octet-align=0"),
        ("AMR", 8000, "octet-align=1"),
        ("AMR", 8000, "octet-align=0"),
    ] {
        let (codec, payload) = amr_tone(name, rate, fmtp, 2);
        let kind = PayloadKind::of_codec(name, rate, Some(fmtp));
        assert!(matches!(kind, PayloadKind::Amr(..)), "{kind:?}");
        let mut pkt = rtp(97, &payload);
        let len = silence_payload(&mut pkt, kind);
        assert_eq!(len, pkt.len(), "{name} {fmtp}: same size");
        let silenced = &pkt[12..len];
        assert_ne!(silenced, &payload[..]);
        assert_eq!(silenced[0] >> 4, payload[0] >> 4, "CMR kept");
        // The same frame types, now decoding to (almost) nothing.
        let fts = |p: &[u8]| {
            let mut v = Vec::new();
            amr::unpack(band_of(&codec), &codec.amr_params(), p, |f| {
                v.push(amr::toc_ft(f[0]));
                Ok(())
            })
            .unwrap();
            v
        };
        assert_eq!(fts(silenced), fts(&payload));
        assert_eq!(fts(silenced).len(), 2);
        let (before, after) = (energy(&codec, &payload), energy(&codec, silenced));
        assert!(
            before > 1000.0 && after < before / 100.0,
            "{name} {fmtp}: {before} → {after}"
        );
    }
    // A SID frame becomes NO_DATA; the other codecs' patterns.
    let params = AmrParams {
        octet_align: true,
        ..AmrParams::default()
    };
    let mut sid = [0u8; STORAGE_MAX];
    sid[0] = 9 << 3 | 0x04;
    let mut payload = [0u8; 16];
    let n = amr::pack(AmrBand::Wide, &params, 15, &[sid], &mut payload).unwrap();
    let mut pkt = rtp(97, &payload[..n]);
    let len = silence_payload(&mut pkt, PayloadKind::Amr(AmrBand::Wide, params));
    assert_eq!(&pkt[12..len], [0xf0, 15 << 3 | 0x04]);
    let mut pkt = rtp(9, &[0x12; 160]);
    assert_eq!(
        silence_payload(&mut pkt, PayloadKind::of_codec("G722", 8000, None)),
        172
    );
    assert!(pkt[12..].iter().all(|&b| b == 0xfa));
}
