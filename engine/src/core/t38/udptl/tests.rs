use super::*;

/// Every IFP delivered, as (seq, bytes).
fn run(rx: &mut UdptlReceiver, datagram: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let pkt = UdptlPacket::parse(datagram).unwrap();
    let mut got = Vec::new();
    rx.handle(&pkt, |s, b| got.push((s, b.to_vec())));
    got
}

// Hand-built from T.38 §9.1 (PER aligned): seq 0x0102, primary IFP `02` (a CNG
// indicator), redundancy with two earlier packets `00` and `04 05`.
const REDUNDANT: &[u8] = &[
    0x01, 0x02, 0x01, 0x02, 0x00, 0x02, 0x01, 0x00, 0x02, 0x04, 0x05,
];

#[test]
fn parses_a_redundancy_packet() {
    let p = UdptlPacket::parse(REDUNDANT).unwrap();
    assert_eq!(p.seq, 0x0102);
    assert_eq!(p.primary, &[0x02]);
    let Recovery::Secondary(e) = p.recovery else {
        panic!("not redundancy: {:?}", p.recovery);
    };
    assert_eq!(e.len(), 2);
    assert_eq!(e.collect::<Vec<_>>(), vec![&[0x00][..], &[0x04, 0x05][..]]);
}

#[test]
fn parses_a_fec_packet_and_long_lengths() {
    // seq 7, a 200-byte primary (two-byte length 0x80C8), FEC span 3 with one entry.
    let mut d = vec![0x00, 0x07, 0x80, 0xC8];
    d.extend(std::iter::repeat_n(0xAA, 200));
    d.extend([0x80, 0x01, 0x03, 0x01, 0x02, 0x11, 0x22]);
    let p = UdptlPacket::parse(&d).unwrap();
    assert_eq!(p.seq, 7);
    assert_eq!(p.primary.len(), 200);
    let Recovery::Fec { span, entries } = p.recovery else {
        panic!("not FEC");
    };
    assert_eq!(span, 3);
    assert_eq!(entries.collect::<Vec<_>>(), vec![&[0x11, 0x22][..]]);
}

#[test]
fn refuses_bad_datagrams() {
    assert_eq!(UdptlPacket::parse(&[0, 1, 2]), Err(UdptlError::Truncated));
    // Primary claims 5 bytes, has 2.
    assert_eq!(
        UdptlPacket::parse(&[0, 1, 5, 1, 2, 0]),
        Err(UdptlError::Truncated)
    );
    // Fragmented length determinant.
    assert_eq!(
        UdptlPacket::parse(&[0, 1, 0xC1, 0, 0]),
        Err(UdptlError::Fragmented)
    );
    // FEC with a zero span.
    assert_eq!(
        UdptlPacket::parse(&[0, 1, 1, 2, 0x80, 1, 0, 0]),
        Err(UdptlError::BadRecovery)
    );
    // A truncated redundancy entry ends the iteration instead of reading past the end.
    let p = UdptlPacket::parse(&[0, 1, 1, 2, 0x00, 2, 3, 1, 2]).unwrap();
    let Recovery::Secondary(e) = p.recovery else {
        panic!()
    };
    assert_eq!(e.count(), 0);
}

#[test]
fn sender_writes_redundancy_from_its_history() {
    let mut tx = UdptlSender::new(ErrorCorrection::Redundancy { entries: 3 }, 512);
    let mut out = [0u8; 64];
    let n = tx.write(&[0x02], &mut out).unwrap();
    assert_eq!(&out[..n], &[0, 0, 1, 0x02, 0x00, 0x00]);
    let n = tx.write(&[0x04, 0x05], &mut out).unwrap();
    assert_eq!(&out[..n], &[0, 1, 2, 0x04, 0x05, 0x00, 1, 1, 0x02]);
    tx.write(&[0x06], &mut out).unwrap();
    tx.write(&[0x08], &mut out).unwrap();
    // Only three earlier packets, newest first; an empty IFP is one zero byte.
    let n = tx.write(&[], &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &[0, 4, 1, 0, 0x00, 3, 1, 0x08, 1, 0x06, 2, 0x04, 0x05]
    );
    assert_eq!(tx.next_seq(), 5);
}

#[test]
fn sender_keeps_datagrams_under_the_limit() {
    let mut tx = UdptlSender::new(ErrorCorrection::Redundancy { entries: 3 }, 40);
    let mut out = [0u8; 128];
    tx.write(&[1; 20], &mut out).unwrap();
    // 2 + 21 + 1 + 1 = 25 bytes before redundancy; the earlier 21-byte entry would make 46.
    let n = tx.write(&[2; 20], &mut out).unwrap();
    assert_eq!(n, 25);
    assert_eq!(out[24], 0, "no redundancy entry fits");
    // No room in the caller's buffer is an error, not a panic.
    assert_eq!(tx.write(&[3; 20], &mut [0u8; 8]), Err(UdptlError::NoRoom));
}

#[test]
fn receiver_fills_a_gap_from_redundancy() {
    let mut tx = UdptlSender::new(ErrorCorrection::Redundancy { entries: 3 }, 512);
    let mut rx = UdptlReceiver::new();
    let mut d = [0u8; 64];
    let mut sent = Vec::new();
    for i in 0u8..6 {
        let n = tx.write(&[i, i], &mut d).unwrap();
        sent.push(d[..n].to_vec());
    }
    assert_eq!(run(&mut rx, &sent[0]), vec![(0, vec![0, 0])]);
    // 1 and 2 are lost; 3 carries them.
    assert_eq!(
        run(&mut rx, &sent[3]),
        vec![(1, vec![1, 1]), (2, vec![2, 2]), (3, vec![3, 3])]
    );
    // A late duplicate is dropped.
    assert!(run(&mut rx, &sent[2]).is_empty());
    assert_eq!(run(&mut rx, &sent[4]), vec![(4, vec![4, 4])]);
}

#[test]
fn fec_round_trip_recovers_one_lost_packet_per_entry() {
    let mut tx = UdptlSender::new(
        ErrorCorrection::Fec {
            entries: 3,
            span: 3,
        },
        512,
    );
    let mut rx = UdptlReceiver::new();
    let mut d = [0u8; 128];
    let ifp = |i: u8| vec![i; 1 + usize::from(i) % 4];
    let mut sent = Vec::new();
    for i in 0u8..12 {
        let n = tx.write(&ifp(i), &mut d).unwrap();
        sent.push(d[..n].to_vec());
    }
    // Packet 9 covers 0..9 in three entries: {0,3,6}, {1,4,7}, {2,5,8}.
    let p = UdptlPacket::parse(&sent[9]).unwrap();
    let Recovery::Fec { span, entries } = p.recovery else {
        panic!()
    };
    assert_eq!((span, entries.len()), (3, 3));
    let mut got = Vec::new();
    for i in [0usize, 1, 2, 3, 4, 5, 6] {
        got.extend(run(&mut rx, &sent[i]));
    }
    // 7 and 8 are lost, each in a different entry: packet 9 brings both back.
    got.extend(run(&mut rx, &sent[9]));
    let want: Vec<(u16, Vec<u8>)> = (0u8..10).map(|i| (u16::from(i), ifp(i))).collect();
    // Recovered packets may carry the zero padding of their parity entry.
    assert_eq!(got.len(), want.len());
    for ((gs, gb), (ws, wb)) in got.iter().zip(&want) {
        assert_eq!(gs, ws);
        assert_eq!(&gb[..wb.len()], &wb[..], "seq {gs}");
        assert!(gb[wb.len()..].iter().all(|&b| b == 0));
    }
}

#[test]
fn sequence_numbers_wrap() {
    let mut rx = UdptlReceiver::new();
    assert_eq!(run(&mut rx, &[0xff, 0xff, 1, 9, 0, 0]).len(), 1);
    assert_eq!(run(&mut rx, &[0, 0, 1, 9, 0, 0]), vec![(0, vec![9])]);
    assert!(run(&mut rx, &[0xff, 0xfe, 1, 9, 0, 0]).is_empty());
}
