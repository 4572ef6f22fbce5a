//! The gateway between spandsp's own fax machine on the audio side and UDPTL on the other,
//! driven on a fake 20 ms clock.

use ngmedia_codecs::t38::terminal::FaxTerminal;

use super::*;
use crate::core::t38::udptl::{ErrorCorrection, Recovery, UdptlPacket};
use crate::core::t38::{T38Flags, T38Options};

fn spec(flags: &T38Flags) -> GatewaySpec {
    GatewaySpec::new(T38Options::ours(flags), "PCMA", 8).unwrap()
}

/// One RTP packet of `pcm` as A-law, payload type 8.
fn rtp(seq: u16, pcm: &[i16]) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234u32.to_be_bytes());
    let mut payload = vec![0u8; pcm.len()];
    Law::Alaw.encode(pcm, &mut payload).unwrap();
    p.extend_from_slice(&payload);
    p
}

#[test]
fn an_answering_fax_machines_dis_leaves_as_udptl_with_redundancy() {
    let mut gw = FaxGateway::new(spec(&T38Flags::default()), 0, 0xfa7, 100, 1000).unwrap();
    let mut fax = FaxTerminal::audio(false).unwrap();
    let mut frame = [0i16; 160];
    let mut out = [0u8; 1500];
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    let mut audio_seq = Vec::new();
    for i in 0..300u16 {
        let now_us = u64::from(i) * 20_000;
        fax.tx_audio(&mut frame);
        gw.handle_audio(&rtp(i, &frame));
        let n = gw
            .poll_audio(now_us, &mut out)
            .expect("a packet every 20 ms");
        assert!(gw.poll_audio(now_us, &mut out).is_none(), "one per 20 ms");
        assert_eq!(n, 12 + 160);
        let h = RtpHeader::parse(&out[..n]).unwrap();
        assert_eq!((h.payload_type(), h.ssrc(), h.marker()), (8, 0xfa7, i == 0));
        assert_eq!(h.timestamp(), 1000 + u32::from(i) * 160);
        audio_seq.push(h.sequence_number());
        let mut back = [0i16; 160];
        Law::Alaw.decode(&out[12..n], &mut back).unwrap();
        fax.rx_audio(&mut back);
        while let Some(n) = gw.poll_udptl(&mut out) {
            datagrams.push(out[..n].to_vec());
        }
    }
    assert!(audio_seq.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert_eq!(audio_seq[0], 100);
    assert!(!datagrams.is_empty());
    // Sequence numbers from 0, each new one once or repeated; the redundancy carries the
    // previous three IFP packets, newest first.
    let mut ifps: Vec<Vec<u8>> = Vec::new();
    let mut last: Option<u16> = None;
    for d in &datagrams {
        let p = UdptlPacket::parse(d).unwrap();
        match last {
            Some(l) if p.seq == l => continue,
            Some(l) => assert_eq!(p.seq, l + 1),
            None => assert_eq!(p.seq, 0),
        }
        last = Some(p.seq);
        let Recovery::Secondary(entries) = p.recovery else {
            panic!("redundancy expected: {d:02x?}");
        };
        let expected: Vec<&[u8]> = ifps.iter().rev().take(3).map(Vec::as_slice).collect();
        assert_eq!(entries.collect::<Vec<_>>(), expected, "seq {}", p.seq);
        ifps.push(p.primary.to_vec());
    }
    // The DIS: V.21 preamble indicator, then HDLC data with address 0xff, control 0xc8.
    let v21 = ifps
        .iter()
        .position(|p| p.as_slice() == [3 << 1])
        .unwrap_or_else(|| panic!("no V.21 preamble in {ifps:02x?}"));
    let hdlc: Vec<u8> = ifps[v21..]
        .iter()
        .filter(|p| p[0] & 0x80 != 0 && p.len() == 6)
        .map(|p| p[5])
        .collect();
    assert_eq!(hdlc[..3], [0xff, 0xc8, 0x01], "{ifps:02x?}");
    let stats = gw.stats();
    assert_eq!((stats.audio_in, stats.audio_out), (300, 300));
    assert_eq!(gw.dropped_ifp(), 0);
}

#[test]
fn fec_settings_frame_with_parity() {
    let flags = T38Flags {
        fec: true,
        ..T38Flags::default()
    };
    assert_eq!(
        spec(&flags).options.error_correction(),
        ErrorCorrection::Fec {
            entries: 3,
            span: 3
        }
    );
    let mut gw = FaxGateway::new(spec(&flags), 0, 1, 0, 0).unwrap();
    let mut fax = FaxTerminal::audio(false).unwrap();
    let mut frame = [0i16; 160];
    let mut out = [0u8; 1500];
    let mut fec = 0;
    for i in 0..300u16 {
        fax.tx_audio(&mut frame);
        gw.handle_audio(&rtp(i, &frame));
        if let Some(n) = gw.poll_audio(u64::from(i) * 20_000, &mut out) {
            let mut back = [0i16; 160];
            Law::Alaw.decode(&out[12..n], &mut back).unwrap();
            fax.rx_audio(&mut back);
        }
        while let Some(n) = gw.poll_udptl(&mut out) {
            let p = UdptlPacket::parse(&out[..n]).unwrap();
            let Recovery::Fec { span, entries } = p.recovery else {
                panic!("FEC expected");
            };
            assert!((1..=3).contains(&span) && entries.len() <= 3);
            fec += 1;
        }
    }
    assert!(fec > 0);
}

#[test]
fn a_ced_indicator_over_udptl_becomes_an_answer_tone_and_bad_datagrams_are_counted() {
    let mut gw = FaxGateway::new(spec(&T38Flags::default()), 0, 1, 0, 0).unwrap();
    assert!(gw.handle_udptl(&[0x00]).is_err());
    // seq 0, IFP [CED indicator], redundancy with no entries.
    gw.handle_udptl(&[0x00, 0x00, 0x01, 2 << 1, 0x00, 0x00])
        .unwrap();
    let mut out = [0u8; 200];
    let mut pcm = Vec::new();
    for i in 0..30u64 {
        let n = gw.poll_audio(i * 20_000, &mut out).unwrap();
        let mut block = [0i16; 160];
        Law::Alaw.decode(&out[12..n], &mut block).unwrap();
        pcm.extend_from_slice(&block);
    }
    // Goertzel at 2100 Hz against the total energy, after the tone's start.
    let tail = &pcm[1600..];
    let w = 2.0 * std::f64::consts::PI * 2100.0 / 8000.0;
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in tail {
        let x = f64::from(x);
        let s = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
        total += x * x;
    }
    let share = (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) * 2.0 / (tail.len() as f64 * total);
    assert!(share > 0.5, "2100 Hz share {share:.2}");
    let stats = gw.stats();
    assert_eq!((stats.ifp_in, stats.udptl_bad), (1, 1));
}

#[test]
fn a_stalled_clock_restarts_instead_of_bursting() {
    let mut gw = FaxGateway::new(spec(&T38Flags::default()), 1_000_000, 1, 0, 0).unwrap();
    let mut out = [0u8; 200];
    assert!(gw.poll_audio(999_999, &mut out).is_none());
    assert!(gw.poll_audio(1_000_000, &mut out).is_some());
    assert_eq!(gw.due_us(), 1_020_000);
    // A second late: one packet, then the next 20 ms after now.
    assert!(gw.poll_audio(2_000_000, &mut out).is_some());
    assert!(gw.poll_audio(2_000_000, &mut out).is_none());
    assert_eq!(gw.due_us(), 2_020_000);
    // Audio of another payload type, or late, is not fed.
    gw.handle_audio(&rtp(5, &[0; 160]));
    gw.handle_audio(&rtp(4, &[0; 160]));
    let mut ev = rtp(6, &[0; 4]);
    ev[1] = 101;
    gw.handle_audio(&ev);
    assert_eq!((gw.stats().audio_in, gw.stats().audio_ignored), (1, 2));
    assert!(GatewaySpec::new(T38Options::ours(&T38Flags::default()), "G722", 9).is_none());
}
