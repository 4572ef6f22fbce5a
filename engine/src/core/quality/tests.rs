use super::*;

const T0: u64 = 1_000_000_000;

/// Feed `seqs` as 20 ms PCMU packets with perfect timing from `start`.
fn feed(q: &QualityStats, c: &WorkerCounters, seqs: &[u16]) -> Vec<Observed> {
    seqs.iter()
        .map(|&s| {
            let n = u64::from(s);
            let o = q.on_rtp(
                0x1234,
                s,
                (n * 160) as u32,
                T0 + n * 20_000,
                1_700_000_000_000,
                c,
            );
            c.count_quality(o);
            o
        })
        .collect()
}

#[test]
fn emodel_reference_points() {
    // Clean G.711, no RTT: d = 20 ms → Id 0.48 → R 92.72 → MOS 4.40.
    let r = r_factor(0.0, 0.0, 0.0, CodecImpairment::G711);
    assert!((r - 92.72).abs() < 1e-9);
    assert!((mos_from_r(r) - 4.4).abs() < 0.01);
    // 10 % random loss on G.711: Ie_eff = 95·10/35.1 = 27.07 → R 65.65 → MOS 3.39.
    let m = mos(10.0, 0.0, 0.0, CodecImpairment::G711);
    assert!((m - 3.39).abs() < 0.01, "{m}");
    // G.729 starts at Ie 11.
    assert!((r_factor(0.0, 0.0, 0.0, CodecImpairment::G729) - 81.72).abs() < 1e-9);
    // 400 ms RTT + 50 ms jitter: d = 320 → Id = 7.68 + 15.697 = 23.377.
    let r = r_factor(0.0, 50.0, 400.0, CodecImpairment::G711);
    assert!((r - (93.2 - 23.377)).abs() < 1e-9);
    assert_eq!(mos_from_r(-5.0), 1.0);
    assert_eq!(mos_from_r(120.0), 4.5);
}

#[test]
fn clock_rates_from_codec_strings() {
    assert_eq!(clock_rate_of(Some("PCMU/8000")), 8000);
    assert_eq!(clock_rate_of(Some("opus/48000/2")), 48000);
    assert_eq!(clock_rate_of(Some("G722")), 8000);
    assert_eq!(clock_rate_of(None), 8000);
}

#[test]
fn in_order_stream_without_loss() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    let seqs: Vec<u16> = (0..50).collect();
    let obs = feed(&q, &c, &seqs);
    assert!(obs.iter().all(|o| *o == Observed::default()));
    let s = q.snapshot(&q, 0);
    assert_eq!((s.expected, s.received, s.lost), (50, 50, 0));
    assert_eq!(s.jitter_us, 0);
    assert_eq!(s.ssrc, Some(0x1234));
}

#[test]
fn gaps_duplicates_and_reordering() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    // 3 lost (3, 4, 7), 5 arrives late after 6, 2 duplicated, 6 duplicated late.
    let obs = feed(&q, &c, &[0, 1, 2, 2, 6, 5, 8, 6, 9]);
    assert!(obs[3].duplicate);
    assert_eq!(obs[4].gap, 3);
    assert!(obs[5].reordered);
    assert_eq!(obs[6].gap, 1);
    assert!(obs[7].duplicate);
    let s = q.snapshot(&q, 0);
    assert_eq!(s.expected, 10);
    assert_eq!(s.received, 7);
    assert_eq!(s.lost, 3);
    assert_eq!((s.duplicates, s.reordered), (2, 1));
    assert!((s.loss_percent() - 30.0).abs() < 1e-9);
    // The worker counts the gaps as they are seen: 3 + 1 (5 later arrived late).
    let t = c.quality_totals();
    assert_eq!((t.0, t.1, t.2), (4, 2, 1));
}

#[test]
fn sequence_wrap_keeps_counting() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    let mut seqs: Vec<u16> = (65530..=65535).collect();
    seqs.extend([0, 2, 3]); // 1 lost across the wrap
    for &s in &seqs {
        q.on_rtp(7, s, 0, T0, 0, &c);
    }
    let s = q.snapshot(&q, 0);
    assert_eq!((s.expected, s.received, s.lost), (10, 9, 1));
}

#[test]
fn big_jump_restarts_after_two_packets() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    feed(&q, &c, &[0, 1, 2]);
    // 20000 is far ahead: ignored once, accepted when 20001 confirms it.
    for s in [20000u16, 20001, 20002] {
        q.on_rtp(0x1234, s, 0, T0, 0, &c);
    }
    let s = q.snapshot(&q, 0);
    // 3 of the first run, then the run 20001..=20002 (the probe 20000 is not counted).
    assert_eq!((s.expected, s.received, s.lost), (5, 5, 0));
}

#[test]
fn new_ssrc_folds_previous_totals() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    feed(&q, &c, &[0, 1, 3]);
    q.on_rtp(0x9999, 500, 0, T0, 0, &c);
    q.on_rtp(0x9999, 501, 0, T0, 0, &c);
    let s = q.snapshot(&q, 0);
    assert_eq!((s.expected, s.received, s.lost), (6, 5, 1));
    assert_eq!(s.ssrc, Some(0x9999));
}

#[test]
fn jitter_follows_rfc3550_a8() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    // Arrivals alternate 10 ms early/late around a 20 ms grid: |D| = 20 ms = 160 units
    // from the second packet on; J converges to 160 units = 20 ms.
    for n in 0..400u64 {
        let jitter = if n % 2 == 0 { 0 } else { 20_000 };
        q.on_rtp(
            1,
            n as u16,
            (n * 160) as u32,
            T0 + n * 20_000 + jitter,
            0,
            &c,
        );
    }
    let j = q.snapshot(&q, 0).jitter_us;
    assert!((19_000..=20_000).contains(&j), "{j}");
    // One step by hand: J16 = 0 + 160 - (0 + 8) / 16 = 160 → J = 10 units = 1250 µs.
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    q.on_rtp(1, 0, 0, T0, 0, &c);
    q.on_rtp(1, 1, 160, T0 + 40_000, 0, &c);
    assert_eq!(q.snapshot(&q, 0).jitter_us, 1250);
}

#[test]
fn clock_rate_scales_jitter() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    q.configure(Some("opus/48000/2"));
    q.on_rtp(1, 0, 0, T0, 0, &c);
    // 20 ms late at 48 kHz = 960 units → J16 = 960 → J = 60 units = 1250 µs.
    q.on_rtp(1, 1, 960, T0 + 40_000, 0, &c);
    assert_eq!(q.snapshot(&q, 0).jitter_us, 1250);
}

#[test]
fn mos_samples_per_interval() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    // 6 s of 20 ms packets, every 10th lost: intervals of 2 s see 10 % loss.
    let seqs: Vec<u16> = (0..300).filter(|n| n % 10 != 5).collect();
    feed(&q, &c, &seqs);
    let s = q.snapshot(&q, 1_700_000_006_000);
    let m = s.mos.expect("samples");
    assert_eq!(m.samples, 2);
    assert_eq!(m.lowest.loss_x100, 1000);
    assert!((335..=343).contains(&m.average.mos_x100), "{:?}", m);
    assert_eq!(m.lowest.reported_at, 1_700_000_000);
    assert_eq!(c.mos_histogram().1, 2);
    // A clean stream scores higher.
    let (q2, c2) = (QualityStats::default(), WorkerCounters::default());
    feed(&q2, &c2, &(0..300).collect::<Vec<_>>());
    let m2 = q2.snapshot(&q2, 0).mos.unwrap();
    assert_eq!(m2.average.mos_x100, 440);
    assert_eq!(m2.average.loss_x100, 0);
}

#[test]
fn live_sample_before_first_interval() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    let seqs: Vec<u16> = (0..20).filter(|n| *n != 10).collect();
    feed(&q, &c, &seqs);
    let m = q.snapshot(&q, 5_000).mos.unwrap();
    assert_eq!(m.samples, 1);
    assert_eq!(m.average.loss_x100, 500);
    assert_eq!(m.average.reported_at, 5);
}

/// SR from 0xAAAA with NTP 0x83AA7E80.8000_0000 and one report block about 0x1234:
/// fraction 64/256, cumulative lost 3, jitter 80, LSR 0x7E80_8000... (RFC 3550 §6.4.1).
const SR: [u8; 52] = [
    0x81, 200, 0x00, 0x0c, 0x00, 0x00, 0xaa, 0xaa, // V=2 RC=1 PT=SR len=12, SSRC
    0x83, 0xaa, 0x7e, 0x80, 0x80, 0x00, 0x00, 0x00, // NTP timestamp
    0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x0a, // RTP ts, packet count 10
    0x00, 0x00, 0x06, 0x40, // octet count 1600
    0x00, 0x00, 0x12, 0x34, 0x40, 0x00, 0x00, 0x03, // block: SSRC, fraction, cum lost
    0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x50, // ext highest seq, jitter 80
    0x11, 0x22, 0x33, 0x44, 0x00, 0x01, 0x00, 0x00, // LSR, DLSR 1 s
];

#[test]
fn parses_sr_report_block_and_xr_voip() {
    let q = QualityStats::default();
    // SR followed by an XR with a VoIP metrics block in the same compound.
    let mut pkt = SR.to_vec();
    let mut xr = vec![0x80, 207, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xaa];
    xr.extend([7, 0, 0x00, 0x08, 0x00, 0x00, 0x12, 0x34]);
    let mut metrics = [0u8; 28];
    metrics[0] = 26; // loss rate 26/256
    metrics[8..10].copy_from_slice(&150u16.to_be_bytes()); // round trip 150 ms
    metrics[19] = 38; // MOS-CQ 3.8
    xr.extend(metrics);
    pkt.extend(xr);
    q.on_rtcp(&pkt, T0);
    let s = q.snapshot(&q, 0);
    assert_eq!((s.sr_count, s.rr_count, s.xr_count), (1, 0, 1));
    assert_eq!(
        s.reported,
        Some(PeerReport {
            ssrc: 0x1234,
            fraction_lost: 64,
            cumulative_lost: 3,
            jitter_us: 10_000,
        })
    );
    assert_eq!(
        s.xr,
        Some(XrVoip {
            loss_rate: 26,
            rtt_ms: 150,
            mos_cq_x10: 38,
        })
    );
    assert_eq!(q.sr_observations()[0].0, 0x7e80_8000);
    assert_eq!(
        q.rr_timing(),
        Some((0x1122_3344, 0x0001_0000, ntp_short(T0)))
    );
}

#[test]
fn truncated_rtcp_is_ignored() {
    let q = QualityStats::default();
    q.on_rtcp(&SR[..40], T0); // length field says 52 bytes
    q.on_rtcp(&[0x81, 201, 0x00, 0x07, 0, 0, 0, 1], T0); // RR claiming 32 bytes
    let s = q.snapshot(&q, 0);
    assert_eq!((s.sr_count, s.rr_count, s.reported), (0, 0, None));
    // A zero length field (4-byte packet) ends the walk without reading past it.
    q.on_rtcp(&[0x80, 207, 0x00, 0x00, 0x80, 201, 0x00, 0x00], T0);
    assert_eq!(q.snapshot(&q, 0).xr_count, 1);
}

#[test]
fn negative_cumulative_loss() {
    let q = QualityStats::default();
    let mut rr = vec![0x81, 201, 0x00, 0x07, 0, 0, 0, 9];
    rr.extend([0, 0, 0x12, 0x34, 0x00, 0xff, 0xff, 0xfe]); // cumulative lost -2
    rr.extend([0u8; 16]);
    q.on_rtcp(&rr, T0);
    assert_eq!(q.snapshot(&q, 0).reported.unwrap().cumulative_lost, -2);
}

#[test]
fn round_trip_from_lsr_and_dlsr() {
    // SR relayed at 10.0 s, RR back at 10.3 s after a 0.25 s hold → 50 ms.
    let sr_at = ntp_short(10_000_000);
    let rr_at = ntp_short(10_300_000);
    let dlsr = 1 << 14; // 0.25 s
    let rtt = round_trip_us(0xabcd, dlsr, rr_at, [(1, 2), (0xabcd, sr_at)]).unwrap();
    // NTP short units are 15 µs.
    assert!((49_950..=50_050).contains(&rtt), "{rtt}");
    assert_eq!(round_trip_us(0xabcd, dlsr, rr_at, [(1, 2)]), None);
    assert_eq!(round_trip_us(0, 0, rr_at, [(0, 0)]), None);
    // RR "before" the SR: implausible.
    assert_eq!(round_trip_us(5, 0, sr_at, [(5, rr_at)]), None);
}

#[test]
fn rtt_hint_lowers_mos() {
    let (q, c) = (QualityStats::default(), WorkerCounters::default());
    q.set_rtt_hint(600_000);
    feed(&q, &c, &(0..10).collect::<Vec<_>>());
    let m = q.snapshot(&q, 0).mos.unwrap();
    assert_eq!(m.average.rtt_us, 600_000);
    assert!(m.average.mos_x100 < 420, "{m:?}");
}

/// The report block we write about a party's RTP: its sequence state and, from the RTCP
/// socket's stats, the party's latest SR and how long ago it came (rtpengine's "RTCP
/// player w/ previous SR").
#[test]
fn reception_reports_sequence_loss_and_the_last_sr() {
    let (rtp, rtcp, c) = (
        QualityStats::default(),
        QualityStats::default(),
        WorkerCounters::default(),
    );
    assert_eq!(rtp.reception(&rtcp, T0), None, "nothing received yet");
    feed(&rtp, &c, &[1000, 1001, 1003]);
    let r = rtp.reception(&rtcp, T0).unwrap();
    assert_eq!(
        (
            r.ssrc,
            r.cumulative_lost,
            r.extended_highest_seq,
            r.fraction_lost
        ),
        (0x1234, 1, 1003, 64)
    );
    assert_eq!((r.lsr, r.dlsr), (0, 0), "no SR yet");
    // SR with NTP 0x00005678_9abc0000: LSR is its middle 32 bits.
    let sr = [
        0x80, 200, 0, 6, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78, 0x9a, 0xbc, 0, 0, 0, 0, 0x0b, 0xb8, 0,
        0, 0, 1, 0, 0, 0, 0xac,
    ];
    rtcp.on_rtcp(&sr, T0);
    let r = rtp.reception(&rtcp, T0 + 500_000).unwrap();
    assert_eq!(
        (r.lsr, r.dlsr),
        (0x5678_9abc, 0x8000),
        "half a second later"
    );
}
