//! The output line: sequence numbers and timestamps across repacketisation, resets, loss,
//! new SSRCs and relayed payload types.

use super::*;

/// Feed `(seq, ts, samples)` PCMU packets of silence and collect `(seq, ts, payload len)`
/// of what comes out after each one.
fn run_line(t: &mut Transcoder, input: &[(u16, u32, usize)]) -> Vec<Vec<(u16, u32, usize)>> {
    input
        .iter()
        .map(|&(seq, ts, n)| {
            t.handle_rtp(0, &rtp(0, false, seq, ts, 0x1234, &vec![0xff; n]));
            drain(t)
                .iter()
                .map(|o| {
                    assert!(!o.marker);
                    (o.seq, o.ts, o.payload.len())
                })
                .collect()
        })
        .collect()
}

#[test]
fn repacketised_output_keeps_the_input_numbering() {
    // rtpengine's "default ptime in, ptime=30 out": 20 ms in, 30 ms out.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcmu(), 0, 30, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let out = run_line(
        &mut t,
        &[
            (1000, 3000, 160),
            (1001, 3160, 160),
            (1002, 3320, 160),
            (1003, 3480, 160),
            (1004, 3640, 160),
            // A sequence and timestamp reset: the output carries on regardless.
            (8000, 500_000, 480),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![],
            vec![(1000, 3000, 240)],
            vec![(1001, 3240, 240)],
            vec![],
            vec![(1002, 3480, 240)],
            vec![(1003, 3720, 240), (1004, 3960, 240)],
        ]
    );
    // The other direction: 60 ms in as three 20 ms, then 10 ms in with reordering.
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let out = run_line(
        &mut t,
        &[
            (4000, 5000, 480),
            (4001, 5480, 480),
            (4002, 5960, 80),
            (4003, 6040, 80),
            (4005, 6200, 80),
            (4004, 6120, 80),
            (4006, 6280, 80),
            (4007, 6360, 80),
        ],
    );
    assert_eq!(
        out,
        vec![
            vec![(4000, 5000, 160), (4001, 5160, 160), (4002, 5320, 160)],
            vec![(4003, 5480, 160), (4004, 5640, 160), (4005, 5800, 160)],
            vec![],
            vec![(4006, 5960, 160)],
            vec![],
            vec![(4007, 6120, 160)],
            vec![],
            vec![(4008, 6280, 160)],
        ]
    );
    assert_eq!(t.counters().concealed, 0);
}

#[test]
fn input_sequence_reset_keeps_the_output_numbering() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcma(), 8, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut seqs = Vec::new();
    for (seq, ts) in [
        (2011u16, 5760u32),
        (62011, 5920),
        (62012, 6080),
        (62013, 6240),
    ] {
        t.handle_rtp(0, &rtp(8, false, seq, ts, 0x5678, &[0xd5; 160]));
        seqs.extend(drain(&mut t).iter().map(|o| (o.seq, o.ts)));
    }
    assert_eq!(
        seqs,
        vec![(2011, 5760), (2012, 5920), (2013, 6080), (2014, 6240)]
    );
}

#[test]
fn missing_packet_given_up_after_60_ms_and_concealed_in_its_place() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    // 11 lost; 12 waits for it; 13 is 60 ms past 10: 11 is given up.
    for (i, seq) in [10u16, 12, 13, 14].into_iter().enumerate() {
        let ts = 800 + (seq as u32 - 10) * 160;
        t.handle_rtp(0, &rtp(0, false, seq, ts, 1, &[0xff; 160]));
        let got = drain(&mut t);
        if i == 1 {
            assert!(got.is_empty(), "{seq} held");
        }
        out.extend(got.iter().map(|o| (o.seq, o.ts)));
    }
    assert_eq!(
        out,
        vec![(10, 800), (11, 960), (12, 1120), (13, 1280), (14, 1440)]
    );
    assert_eq!(t.counters().concealed, 1);
}

#[test]
fn new_input_ssrc_starts_a_new_output_stream() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    t.handle_rtp(0, &rtp(0, false, 5, 100, 1, &[0xff; 160]));
    let a = drain(&mut t);
    t.handle_rtp(0, &rtp(0, false, 900, 7000, 2, &[0xff; 160]));
    let b = drain(&mut t);
    assert_eq!((a[0].seq, a[0].ts, b[0].seq, b[0].ts), (5, 100, 900, 7000));
    assert_ne!(a[0].ssrc, b[0].ssrc);
}

/// A shared payload type beside the transcoded one (rtpengine's "one codec with one for
/// transcoding"): relayed packets keep their timestamp, payload and marker, take our SSRC
/// and the shifted sequence number, duplicates included; the transcoded ones follow the
/// same numbering, through a sequence reset of the sender.
#[test]
fn shared_payload_type_is_relayed_on_the_output_line() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcma(), 8, 20, None),
        output: end(pcmu(), 0, 20, None),
        detect_dtmf: false,
        passthrough: [0].into_iter().collect(),
    })
    .unwrap();
    let silence_u = [0u8; 160];
    let mut sent = Vec::new();
    let mut feed = |t: &mut Transcoder, k: u64, pt: u8, seq: u16, ts: u32| {
        t.handle_rtp(k * 20, &rtp(pt, false, seq, ts, 0x5678, &silence_u));
        sent.extend(drain(t));
    };
    feed(&mut t, 0, 0, 2000, 4000);
    feed(&mut t, 1, 0, 2000, 4000);
    feed(&mut t, 2, 0, 2001, 4160);
    feed(&mut t, 3, 0, 2010, 5600);
    feed(&mut t, 4, 8, 2011, 5760);
    feed(&mut t, 5, 8, 62011, 5920);
    feed(&mut t, 6, 8, 62012, 6080);
    feed(&mut t, 7, 0, 62013, 6240);
    let line: Vec<(u8, u16, u32)> = sent.iter().map(|o| (o.pt, o.seq, o.ts)).collect();
    assert_eq!(
        line,
        vec![
            (0, 2000, 4000),
            (0, 2000, 4000),
            (0, 2001, 4160),
            (0, 2010, 5600),
            (0, 2011, 5760),
            (0, 2012, 5920),
            (0, 2013, 6080),
            (0, 2014, 6240),
        ]
    );
    assert!(sent.iter().all(|o| o.ssrc == t.ssrc() && o.ssrc != 0x5678));
    // Relayed payloads are untouched; the A-law ones are re-encoded in µ-law.
    assert_eq!(sent[0].payload, silence_u);
    assert_eq!(sent[7].payload, silence_u);
    let expect: Vec<u8> = [0u8; 160]
        .iter()
        .map(|&c| ulaw_encode(alaw_decode(c)))
        .collect();
    assert_eq!(sent[4].payload, expect);
    assert_eq!(t.counters().sent_packets, 8);
}
