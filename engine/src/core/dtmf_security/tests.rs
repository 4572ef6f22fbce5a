use super::*;

fn cfg(mode: BlockDtmf, trigger: Option<DtmfTrigger>) -> SecurityConfig {
    SecurityConfig {
        mode,
        frequencies: Vec::new(),
        digit: 7,
        volume: DEFAULT_TONE_VOLUME,
        trigger,
        digit_delay_ms: DEFAULT_DIGIT_DELAY_MS,
        audio_pt: Some(0),
        delay_ms: 0,
        dtmf_delay_ms: 0,
        coded: Vec::new(),
    }
}

fn kind(pt: u8) -> PayloadKind {
    match pt {
        0 => PayloadKind::Pcmu,
        8 => PayloadKind::Pcma,
        101 => PayloadKind::Event,
        _ => PayloadKind::Other,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(payload);
    p.resize(1500, 0);
    p
}

fn ev(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x8a } else { 0x0a }, d[0], d[1]]
}

fn run(g: &mut DtmfGuard, p: &mut [u8], len: usize, now: u64) -> GuardVerdict {
    g.apply(p, len, kind, true, true, now)
}

/// rtpengine's expected bytes for 400 Hz at volume 10, PCMU, phase 0 (20-sample period).
const TONE_400: [u8; 20] = [
    0xff, 0xb5, 0xa7, 0x9f, 0x9c, 0x9b, 0x9c, 0x9f, 0xa7, 0xb5, 0xff, 0x35, 0x27, 0x1f, 0x1c, 0x1b,
    0x1c, 0x1f, 0x27, 0x35,
];

#[test]
fn tone_mode_turns_events_into_rtpengines_tone() {
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Tone, None));
    for seq in 0..2u16 {
        let mut p = rtp(0, 1000 + seq, 3000 + 160 * u32::from(seq), &[0; 160]);
        assert_eq!(run(&mut g, &mut p, 172, 0), GuardVerdict::Forward(172));
        assert!(p[12..172].iter().all(|&b| b == 0));
    }
    let sseq = 2u32;
    for (i, e) in [ev(5, false, 160), ev(5, false, 320), ev(5, true, 480)]
        .iter()
        .enumerate()
    {
        let seq = 1002 + i as u16;
        let mut p = rtp(101 | 0x80, seq, 3000 + 160 * sseq, e);
        assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(172));
        assert_eq!(p[1], 0, "audio PT, no marker");
        let ts = u32::from_be_bytes(p[4..8].try_into().unwrap());
        assert_eq!(ts, 3000 + 160 * (sseq + i as u32));
        for chunk in p[12..172].chunks(20) {
            assert_eq!(chunk, TONE_400);
        }
    }
    // A repeated end packet goes nowhere.
    let mut p = rtp(101, 1005, 3000 + 160 * sseq, &ev(5, true, 480));
    assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Block);
    // The audio at the event's end is still replaced, the next is not.
    let mut p = rtp(0, 1006, 3000 + 160 * 5, &[0; 160]);
    assert_eq!(run(&mut g, &mut p, 172, 0), GuardVerdict::Forward(172));
    assert_eq!(&p[12..32], TONE_400);
    let mut p = rtp(0, 1007, 3000 + 160 * 6, &[0; 160]);
    run(&mut g, &mut p, 172, 0);
    assert!(p[12..172].iter().all(|&b| b == 0));
}

#[test]
fn zero_mode_rewrites_the_event_code() {
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Zero, None));
    let mut p = rtp(0, 1, 160, &[0; 160]);
    run(&mut g, &mut p, 172, 0);
    let mut p = rtp(101, 2, 320, &ev(5, false, 160));
    assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(16));
    assert_eq!(p[12], 0);
    // Audio within the event: silence (the party has telephone-event).
    let mut p = rtp(0, 3, 480, &[0; 160]);
    run(&mut g, &mut p, 172, 0);
    assert!(p[12..172].iter().all(|&b| b == 0xff));
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Dtmf, None));
    let mut p = rtp(101, 2, 320, &ev(5, true, 160));
    run(&mut g, &mut p, 16, 0);
    assert_eq!(p[12], 7);
}

#[test]
fn silence_and_random_modes() {
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Silence, None));
    let mut p = rtp(8, 1, 160, &[0x55; 160]);
    run(&mut g, &mut p, 172, 0);
    let mut p = rtp(101, 2, 320, &ev(1, false, 160));
    assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(172));
    assert_eq!(p[1], 8);
    assert!(p[12..172].iter().all(|&b| b == 0xd5));
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Random, None));
    let mut p = rtp(0, 1, 160, &[0xff; 160]);
    run(&mut g, &mut p, 172, 0);
    // A digit tone, continuous across packets: detected as some digit 0-9.
    let mut pcm = Vec::new();
    for n in 0..4u16 {
        let mut p = rtp(101, 2 + n, 320, &ev(1, false, 160 * (n + 1)));
        assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(172));
        pcm.extend(p[12..172].iter().map(|&b| g711::ulaw_decode(b)));
    }
    let mut det = DtmfDetector::new(8000).unwrap();
    det.process(&pcm, |_, _| {});
    assert!(det.current().is_some_and(|d| d <= 9), "{:?}", det.current());
}

#[test]
fn reconfiguring_keeps_the_line() {
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Silence, None));
    let mut p = rtp(8, 1, 160, &[0x55; 160]);
    run(&mut g, &mut p, 172, 0);
    let mut p = rtp(101, 2, 320, &ev(9, false, 160));
    assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(172));
    g.reconfigure(cfg(BlockDtmf::Random, None));
    let mut p = rtp(101, 10, 2000, &ev(9, false, 160));
    assert_eq!(run(&mut g, &mut p, 16, 0), GuardVerdict::Forward(172));
    assert_eq!(p[1], 8);
}

#[test]
fn inband_digits_are_replaced() {
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Tone, None));
    let mut replaced = 0;
    for n in 0..10u32 {
        let payload: Vec<u8> = (0..160)
            .map(|i| g711::ulaw_encode(tone_sample(3, 6, 8000, n * 160 + i)))
            .collect();
        let mut p = rtp(0, n as u16, n * 160, &payload);
        run(&mut g, &mut p, 172, 0);
        if p[12..32] == TONE_400 || p[12..172] != payload[..] {
            replaced += 1;
        }
    }
    // The detector needs a few blocks; the rest of the digit is replaced.
    assert!(replaced >= 7, "{replaced}");
}

#[test]
fn trigger_switches_blocking_on_and_off() {
    let t = DtmfTrigger {
        trigger: "##".into(),
        end: "#".into(),
        mode: Some(BlockDtmf::Drop),
        ..DtmfTrigger::default()
    };
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Off, Some(t)));
    let mut ts = 0;
    let mut send = |g: &mut DtmfGuard, code: u8, now: u64| {
        ts += 1000;
        let mut p = rtp(101, 1, ts, &ev(code, true, 160));
        run(g, &mut p, 16, now)
    };
    assert_eq!(send(&mut g, 11, 0), GuardVerdict::Forward(16));
    // `#` then a long pause: the match starts over.
    assert_eq!(send(&mut g, 11, 3000), GuardVerdict::Forward(16));
    // The digit completing the trigger still passes.
    assert_eq!(send(&mut g, 11, 3100), GuardVerdict::Forward(16));
    assert_eq!(g.mode(), BlockDtmf::Drop);
    assert_eq!(send(&mut g, 4, 3200), GuardVerdict::Block);
    // The end trigger: its own digit is blocked, then everything passes again.
    assert_eq!(send(&mut g, 11, 3300), GuardVerdict::Block);
    assert_eq!(g.mode(), BlockDtmf::Off);
    assert_eq!(send(&mut g, 4, 3400), GuardVerdict::Forward(16));
    // The trigger is used up.
    send(&mut g, 11, 3500);
    send(&mut g, 11, 3600);
    assert_eq!(send(&mut g, 4, 3700), GuardVerdict::Forward(16));
}

#[test]
fn trigger_ends_after_digits_or_time() {
    let t = DtmfTrigger {
        trigger: "*".into(),
        mode: Some(BlockDtmf::Drop),
        end_digits: 2,
        ..DtmfTrigger::default()
    };
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Off, Some(t)));
    let mut ts = 0;
    let mut send = |g: &mut DtmfGuard, code: u8, now: u64| {
        ts += 1000;
        let mut p = rtp(101, 1, ts, &ev(code, true, 160));
        run(g, &mut p, 16, now)
    };
    send(&mut g, 10, 0);
    assert_eq!(send(&mut g, 1, 10), GuardVerdict::Block);
    assert_eq!(send(&mut g, 2, 20), GuardVerdict::Block);
    assert_eq!(send(&mut g, 3, 30), GuardVerdict::Forward(16));
    let t = DtmfTrigger {
        trigger: "*".into(),
        mode: Some(BlockDtmf::Drop),
        end_ms: 500,
        end_mode: Some(BlockDtmf::Zero),
        ..DtmfTrigger::default()
    };
    let mut g = DtmfGuard::new(cfg(BlockDtmf::Off, Some(t)));
    send(&mut g, 10, 1000);
    assert_eq!(send(&mut g, 1, 1400), GuardVerdict::Block);
    assert_eq!(send(&mut g, 1, 1600), GuardVerdict::Forward(16));
    assert_eq!(g.mode(), BlockDtmf::Zero);
}

#[test]
fn partial_matches_restart_at_the_right_place() {
    let mut m = Matcher::new(codes("1213"));
    let digits = [1, 2, 1, 2, 1, 3];
    let done: Vec<bool> = digits.iter().map(|&d| m.push(d)).collect();
    assert_eq!(done, [false, false, false, false, false, true]);
    let mut m = Matcher::new(codes("##"));
    assert!(!m.push(11));
    assert!(m.push(11));
}
