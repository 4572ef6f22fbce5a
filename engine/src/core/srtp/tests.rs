//! SRTP context tests: RFC 7714 packet vectors, a cross-check against the harness's
//! pure-Python SRTP, round trips for every suite, tamper, replay and ROC wrap.

use super::cipher::SessionKeys;
use super::testing::unhex;
use super::*;

// RFC 7714 §16 and §17: session key 00..0f (or 00..1f), session salt "Quid pro quo".
const GCM_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const GCM_KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const GCM_SALT: &str = "517569642070726f2071756f";

/// RFC 7714 §16: header 8040f17b 8041f8d3 5501a0b2 (seq 0xf17b, SSRC 0x5501a0b2), payload
/// "Gallia est omnis divisa in partes tres".
const GCM_RTP: &str = "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e697320646976\
     69736120696e207061727465732074726573";
/// §16.1.1 (AEAD_AES_128_GCM).
const GCM_SRTP_128: &str = "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd5\
     0d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee439\
     0cce";
/// §16.2.1 (AEAD_AES_256_GCM).
const GCM_SRTP_256: &str = "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab1801238\
     9a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a7\
     6c13";
/// §17: the RTCP packet the SRTCP vectors protect (SSRC "Mars"), index 0x5d4.
const GCM_RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61\
     deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const GCM_SRTCP_INDEX: u32 = 0x5d4;
/// §17.1 (AEAD_AES_128_GCM, E = 1).
const GCM_SRTCP_128: &str = "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d\
     c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf872\
     45d9eade800005d4";
/// §17.2 (AEAD_AES_256_GCM, E = 1).
const GCM_SRTCP_256: &str = "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50\
     a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6c\
     b26ac3be800005d4";
/// §17.3 (AEAD_AES_128_GCM, E = 0: authenticated only).
const GCM_SRTCP_128_AUTH_ONLY: &str =
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61\
     deadbeefdeadbeefdeadbeefdeadbeefdeadbeef841dd9683dd78ec92ae58790\
     125f62b3000005d4";

fn gcm_context(suite: SrtpSuite, key: &str) -> SrtpContext {
    SrtpContext::with_keys(
        suite,
        SessionKeys::gcm_from_session(&unhex(key), &unhex(GCM_SALT)).unwrap(),
    )
}

fn with_room(packet: &[u8]) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + 64, 0);
    buf
}

#[test]
fn rfc7714_srtp_vectors() {
    for (suite, key, expected) in [
        (SrtpSuite::AeadAes128Gcm, GCM_KEY_128, GCM_SRTP_128),
        (SrtpSuite::AeadAes256Gcm, GCM_KEY_256, GCM_SRTP_256),
    ] {
        let plain = unhex(GCM_RTP);
        let expected = unhex(expected);
        let mut buf = with_room(&plain);
        let n = gcm_context(suite, key)
            .protect_rtp(&mut buf, plain.len())
            .unwrap();
        assert_eq!(&buf[..n], &expected[..], "{suite} protect");

        let mut buf = expected.clone();
        let n = gcm_context(suite, key).unprotect_rtp(&mut buf).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{suite} unprotect");
    }
}

#[test]
fn rfc7714_srtcp_vectors() {
    for (suite, key, expected) in [
        (SrtpSuite::AeadAes128Gcm, GCM_KEY_128, GCM_SRTCP_128),
        (SrtpSuite::AeadAes256Gcm, GCM_KEY_256, GCM_SRTCP_256),
    ] {
        let plain = unhex(GCM_RTCP);
        let expected = unhex(expected);
        let mut tx = gcm_context(suite, key);
        tx.set_srtcp_index(0x4d61_7273, GCM_SRTCP_INDEX);
        let mut buf = with_room(&plain);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(&buf[..n], &expected[..], "{suite} protect");
        assert_eq!(tx.srtcp_index(0x4d61_7273), Some(GCM_SRTCP_INDEX + 1));

        let mut buf = expected.clone();
        let n = gcm_context(suite, key).unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{suite} unprotect");
    }
    // §17.3: E = 0, the whole packet is associated data.
    let mut buf = unhex(GCM_SRTCP_128_AUTH_ONLY);
    let n = gcm_context(SrtpSuite::AeadAes128Gcm, GCM_KEY_128)
        .unprotect_rtcp(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &unhex(GCM_RTCP)[..]);
}

// Produced by /work/shared/harness/ngclient.py `SrtpContext(key=01..10, salt=20..2d, suite)`
// protecting RTP packets (PT 0, ts 160*seq, SSRC deadbeef, payload (i*7)&0xff for i<160)
// with seq 65535 then 0, so the second is in ROC 1.
const PY_CM80_SEQ_65535: &str = "8000ffff009fff60deadbeefa509d5e15b4fba4721702aae1a986d2fac4624a0\
     d2fd49fb4c40908d711eaac44002a82a1a2810e195ea38b9fc7f779dc99ddb77\
     6693d6e10c8c54e32d5b9095a1411c207f6f589af852c45474ba8ea35aeb14ea\
     e3646e52896e2109abd2093674b4d6040c341f848e763b93842760800c4a2f78\
     a0e826a944dcefd6a3166d4aa91b734506edb849f0457b2a3458c145942d0f73\
     f33f59394cc2e0124d823444d1ed15c9c5d2850a1ca6";
const PY_CM80_SEQ_0: &str = "8000000000000000deadbeeff8320c104721c6631752c03a832cc17e1f7ba146\
     e9097c5e6dcfca2fff54cd079326048d6348ff5465e24a621d14f5afbf2e5670\
     12305027fb0a5dbc9855042fa4c9a3f01b20c5fbf56fc3613c192c1c6e5f1f41\
     11d5819336dd716f0ca8d7f7a63260b8a5163a35e1c19fede3084707f9b3bf88\
     e8d2617840aa24576ed074cf956964ac0d80ed38f1d8fcecb9f563234f435aa0\
     adcde5993d9c499dc5f6a112ec9cbaccc5bb02a62d53";
const PY_CM32_SEQ_65535: &str = "8000ffff009fff60deadbeefa509d5e15b4fba4721702aae1a986d2fac4624a0\
     d2fd49fb4c40908d711eaac44002a82a1a2810e195ea38b9fc7f779dc99ddb77\
     6693d6e10c8c54e32d5b9095a1411c207f6f589af852c45474ba8ea35aeb14ea\
     e3646e52896e2109abd2093674b4d6040c341f848e763b93842760800c4a2f78\
     a0e826a944dcefd6a3166d4aa91b734506edb849f0457b2a3458c145942d0f73\
     f33f59394cc2e0124d823444d1ed15c9";
const PY_CM32_SEQ_0: &str = "8000000000000000deadbeeff8320c104721c6631752c03a832cc17e1f7ba146\
     e9097c5e6dcfca2fff54cd079326048d6348ff5465e24a621d14f5afbf2e5670\
     12305027fb0a5dbc9855042fa4c9a3f01b20c5fbf56fc3613c192c1c6e5f1f41\
     11d5819336dd716f0ca8d7f7a63260b8a5163a35e1c19fede3084707f9b3bf88\
     e8d2617840aa24576ed074cf956964ac0d80ed38f1d8fcecb9f563234f435aa0\
     adcde5993d9c499dc5f6a112ec9cbacc";

fn py_rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(160u32.wrapping_mul(seq as u32)).to_be_bytes());
    p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.extend((0..160u32).map(|i| (i * 7) as u8));
    p
}

#[test]
fn matches_the_python_harness_srtp() {
    let key: Vec<u8> = (1..=16).collect();
    let salt: Vec<u8> = (0x20..0x2e).collect();
    for (suite, vectors) in [
        (
            SrtpSuite::AesCm128HmacSha1_80,
            [(65535u16, PY_CM80_SEQ_65535), (0, PY_CM80_SEQ_0)],
        ),
        (
            SrtpSuite::AesCm128HmacSha1_32,
            [(65535, PY_CM32_SEQ_65535), (0, PY_CM32_SEQ_0)],
        ),
    ] {
        let mut tx = SrtpContext::new(suite, &key, &salt).unwrap();
        let mut rx = SrtpContext::new(suite, &key, &salt).unwrap();
        for (seq, expected) in vectors {
            let plain = py_rtp(seq);
            let expected = unhex(expected);
            let mut buf = with_room(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(&buf[..n], &expected[..], "{suite} seq {seq}");
            let mut buf = expected.clone();
            let n = rx.unprotect_rtp(&mut buf).unwrap();
            assert_eq!(&buf[..n], &plain[..]);
        }
        assert_eq!(
            tx.rollover_counter(SrtpDirection::Outbound, 0xdead_beef),
            Some(1)
        );
        assert_eq!(
            rx.rollover_counter(SrtpDirection::Inbound, 0xdead_beef),
            Some(1)
        );
    }
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seq as u8)));
    p
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    // RR with one report block: 8 + 24 bytes, length field 7.
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..24).map(|i| i as u8));
    p
}

fn pair(suite: SrtpSuite) -> (SrtpContext, SrtpContext) {
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|b| b ^ 0x5a)
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8).collect();
    (
        SrtpContext::new(suite, &key, &salt).unwrap(),
        SrtpContext::new(suite, &key, &salt).unwrap(),
    )
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp() {
    for suite in SrtpSuite::ALL {
        let (mut tx, mut rx) = pair(suite);
        for seq in [1u16, 2, 3] {
            let plain = rtp(seq, 0x1234_5678, 160);
            let mut buf = with_room(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(n, plain.len() + suite.rtp_overhead());
            if !matches!(
                suite,
                SrtpSuite::NullHmacSha1_80 | SrtpSuite::NullHmacSha1_32
            ) {
                assert_ne!(&buf[12..plain.len()], &plain[12..], "{suite} encrypts");
            }
            assert_eq!(&buf[..12], &plain[..12], "{suite} header stays clear");
            let n = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(&buf[..n], &plain[..], "{suite}");
        }
        let plain = rtcp_rr(0x1234_5678);
        let mut buf = with_room(&plain);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(n, plain.len() + suite.rtcp_overhead());
        let n = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{suite} rtcp");
    }
}

#[test]
fn csrc_and_extension_stay_in_the_clear() {
    let (mut tx, mut rx) = pair(SrtpSuite::AesCm128HmacSha1_80);
    // CC = 1, X = 1 with one extension word.
    let mut plain = vec![
        0x91, 0x00, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd,
    ];
    plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
    plain.extend_from_slice(&[9u8; 20]);
    let mut buf = with_room(&plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(&buf[..24], &plain[..24]);
    assert_ne!(&buf[24..44], &plain[24..]);
    let n = rx.unprotect_rtp(&mut buf[..n]).unwrap();
    assert_eq!(&buf[..n], &plain[..]);
}

#[test]
fn tampering_fails_authentication_and_changes_nothing() {
    for suite in SrtpSuite::ALL {
        let (mut tx, mut rx) = pair(suite);
        let plain = rtp(100, 7, 40);
        let mut buf = with_room(&plain);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let good = buf[..n].to_vec();
        for pos in [1, 13, n - 1] {
            let mut bad = good.clone();
            bad[pos] ^= 0x01;
            assert_eq!(
                rx.unprotect_rtp(&mut bad),
                Err(SrtpError::AuthFailed),
                "{suite}"
            );
        }
        // A forged packet claiming a far-ahead sequence must not move the ROC.
        let mut forged = good.clone();
        forged[2..4].copy_from_slice(&40000u16.to_be_bytes());
        assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
        assert_eq!(rx.rollover_counter(SrtpDirection::Inbound, 7), None);
        let mut ok = good.clone();
        assert_eq!(rx.unprotect_rtp(&mut ok), Ok(plain.len()));

        let plain = rtcp_rr(7);
        let mut buf = with_room(&plain);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        let mut bad = buf[..n].to_vec();
        bad[10] ^= 0x80;
        assert_eq!(
            rx.unprotect_rtcp(&mut bad),
            Err(SrtpError::AuthFailed),
            "{suite}"
        );
        assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Ok(plain.len()));
    }
}

#[test]
fn replays_and_old_packets_are_rejected() {
    let (mut tx, mut rx) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let mut sent = Vec::new();
    for seq in 0..300u16 {
        let plain = rtp(seq, 9, 20);
        let mut buf = with_room(&plain);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        sent.push(buf[..n].to_vec());
    }
    // Deliver 0..=199 except 150, which arrives late.
    for (seq, pkt) in sent.iter().enumerate().take(200) {
        if seq != 150 {
            rx.unprotect_rtp(&mut pkt.clone()).unwrap();
        }
    }
    assert_eq!(
        rx.unprotect_rtp(&mut sent[199].clone()),
        Err(SrtpError::Replay)
    );
    assert_eq!(
        rx.unprotect_rtp(&mut sent[10].clone()),
        Err(SrtpError::TooOld)
    );
    assert!(rx.unprotect_rtp(&mut sent[150].clone()).is_ok());
    assert_eq!(
        rx.unprotect_rtp(&mut sent[150].clone()),
        Err(SrtpError::Replay)
    );

    // SRTCP has its own window.
    let plain = rtcp_rr(9);
    let mut buf = with_room(&plain);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    let pkt = buf[..n].to_vec();
    assert!(rx.unprotect_rtcp(&mut pkt.clone()).is_ok());
    assert_eq!(rx.unprotect_rtcp(&mut pkt.clone()), Err(SrtpError::Replay));
}

#[test]
fn seventy_thousand_packets_cross_the_sequence_wrap() {
    for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm] {
        let (mut tx, mut rx) = pair(suite);
        let start = 60000u16;
        let mut buf = [0u8; 128];
        for i in 0..70_000u32 {
            let seq = start.wrapping_add(i as u16);
            let plain = rtp(seq, 0xabc, 32);
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(&buf[..m], &plain[..], "{suite} packet {i}");
        }
        // 60000 + 70000 = 130000 = 1 * 65536 + 64464: one wrap.
        assert_eq!(tx.rollover_counter(SrtpDirection::Outbound, 0xabc), Some(1));
        assert_eq!(rx.rollover_counter(SrtpDirection::Inbound, 0xabc), Some(1));
    }
}

#[test]
fn reordering_across_the_wrap_keeps_the_right_roc() {
    let (mut tx, mut rx) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let seqs = [65533u16, 65534, 65535, 0, 1, 2];
    let pkts: Vec<Vec<u8>> = seqs
        .iter()
        .map(|&seq| {
            let plain = rtp(seq, 5, 10);
            let mut buf = with_room(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            buf[..n].to_vec()
        })
        .collect();
    // Receive 65533, 0, 65535, 1, 65534, 2.
    for i in [0usize, 3, 2, 4, 1, 5] {
        let mut p = pkts[i].clone();
        let n = rx.unprotect_rtp(&mut p).unwrap();
        assert_eq!(&p[..n], &rtp(seqs[i], 5, 10)[..]);
    }
    assert_eq!(rx.rollover_counter(SrtpDirection::Inbound, 5), Some(1));
}

#[test]
fn restored_rollover_counter_decrypts_mid_stream() {
    let (mut tx, _) = pair(SrtpSuite::AesCm128HmacSha1_80);
    tx.set_rollover_counter(SrtpDirection::Outbound, 3, 5);
    let plain = rtp(1000, 3, 10);
    let mut buf = with_room(&plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();

    let (_, mut fresh) = pair(SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(
        fresh.unprotect_rtp(&mut buf[..n].to_vec()),
        Err(SrtpError::AuthFailed)
    );
    let (_, mut restored) = pair(SrtpSuite::AesCm128HmacSha1_80);
    restored.set_rollover_counter(SrtpDirection::Inbound, 3, 5);
    assert_eq!(restored.unprotect_rtp(&mut buf[..n]), Ok(plain.len()));
}

/// A stream handed over mid-call (engine restart) continues from its persisted position:
/// the successor's packets across the sequence wrap are the ones the first engine would
/// have sent, the receiving side accepts them, and SRTCP indexes keep rising.
#[test]
fn resumed_position_continues_across_the_wrap() {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let (mut first_tx, mut first_rx) = pair(suite);
    let protect = |ctx: &mut SrtpContext, seq: u16| {
        let plain = rtp(seq, 0xabc, 40);
        let mut buf = with_room(&plain);
        let n = ctx.protect_rtp(&mut buf, plain.len()).unwrap();
        buf.truncate(n);
        buf
    };
    for seq in [65530u16, 65531, 65532] {
        let mut p = protect(&mut first_tx, seq);
        first_rx.unprotect_rtp(&mut p).unwrap();
    }
    let mut rr = with_room(&rtcp_rr(0xabc));
    let n = first_tx
        .protect_rtcp(&mut rr, rtcp_rr(0xabc).len())
        .unwrap();
    first_rx.unprotect_rtcp(&mut rr[..n]).unwrap();
    let tx_pos = first_tx.position();
    let rx_pos = first_rx.position();
    assert_eq!(tx_pos.tx_rtp, 0xabc << 32 | 65532);
    assert_eq!(rx_pos.rx_rtp, 0xabc << 32 | 65532);
    assert_eq!(tx_pos.tx_rtcp, 0xabc << 32);

    let (mut next_tx, mut next_rx) = pair(suite);
    next_tx.resume(tx_pos);
    next_rx.resume(rx_pos);
    // Past the wrap: ROC 1, exactly what the first context produces.
    for seq in [65533u16, 2, 3] {
        let expected = protect(&mut first_tx, seq);
        let mut got = protect(&mut next_tx, seq);
        assert_eq!(got, expected, "seq {seq}");
        assert!(next_rx.unprotect_rtp(&mut got).is_ok(), "seq {seq}");
    }
    assert_eq!(next_tx.position().tx_rtp, 0xabc << 32 | 1 << 16 | 3);
    // A fresh context without the position cannot follow past the wrap.
    let (_, mut fresh) = pair(suite);
    let mut p = protect(&mut first_tx, 4);
    assert_eq!(fresh.unprotect_rtp(&mut p), Err(SrtpError::AuthFailed));
    // SRTCP continues with index 1, which the first receiver accepts (no replay).
    let mut rr = with_room(&rtcp_rr(0xabc));
    let n = next_tx.protect_rtcp(&mut rr, rtcp_rr(0xabc).len()).unwrap();
    assert_eq!(next_tx.position().tx_rtcp, 0xabc << 32 | 1);
    assert!(first_rx.unprotect_rtcp(&mut rr[..n]).is_ok());
}

#[test]
fn more_ssrcs_than_the_table_holds_still_work() {
    let (mut tx, mut rx) = pair(SrtpSuite::AeadAes128Gcm);
    for round in 0..3u16 {
        for ssrc in 0..(MAX_SSRCS as u32 + 4) {
            let plain = rtp(round, ssrc, 10);
            let mut buf = with_room(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(plain.len()));
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (mut tx, mut rx) = pair(SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(
        SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &[0; 15], &[0; 14]).unwrap_err(),
        SrtpError::KeyLength {
            got: 15,
            expected: 16
        }
    );
    assert!(SrtpContext::from_key_salt(SrtpSuite::AeadAes256Gcm, &[0; 44]).is_ok());
    assert!(SrtpContext::from_key_salt(SrtpSuite::AeadAes256Gcm, &[0; 46]).is_err());
    // No tail room.
    let plain = rtp(1, 1, 10);
    let mut buf = plain.clone();
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::NoTailRoom)
    );
    // len beyond the buffer.
    assert_eq!(tx.protect_rtp(&mut buf, 1000), Err(SrtpError::TooShort));
    // Not version 2.
    let mut v1 = with_room(&plain);
    v1[0] = 0x40;
    assert!(matches!(
        tx.protect_rtp(&mut v1, plain.len()),
        Err(SrtpError::Malformed(_))
    ));
    // Truncated and junk inputs of every short length.
    for len in 0..40 {
        let mut junk: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        assert!(rx.unprotect_rtp(&mut junk.clone()).is_err());
        assert!(rx.unprotect_rtcp(&mut junk).is_err());
    }
    // CSRC count that runs past the end.
    let mut cc = vec![0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    cc.extend_from_slice(&[0; 12]);
    assert!(matches!(
        rx.unprotect_rtp(&mut cc),
        Err(SrtpError::Malformed(_))
    ));
}

/// MKI on the wire, where rtpengine puts it: the packet without MKI with the MKI bytes
/// inserted before the HMAC tag (after the SRTCP index), or appended for AEAD suites; the
/// receiver takes it out again.
#[test]
fn mki_sits_before_the_tag_and_round_trips() {
    let mki = [0u8, 0, 0, 1];
    for suite in SrtpSuite::ALL {
        let (mut plain_tx, _) = pair(suite);
        let (tx, rx) = pair(suite);
        let (mut tx, mut rx) = (tx.with_mki(&mki), rx.with_mki(&mki));
        let after = |rtcp: bool| match (suite.is_aead(), rtcp) {
            (true, _) => 0,
            (false, false) => suite.srtp_tag_len(),
            (false, true) => suite.srtcp_tag_len(),
        };
        for seq in [1u16, 2] {
            let plain = rtp(seq, 0x1234_5678, 160);
            let mut without = with_room(&plain);
            let n0 = plain_tx.protect_rtp(&mut without, plain.len()).unwrap();
            let mut buf = with_room(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(n, n0 + mki.len(), "{suite}");
            let at = n0 - after(false);
            let mut expected = without[..at].to_vec();
            expected.extend_from_slice(&mki);
            expected.extend_from_slice(&without[at..n0]);
            assert_eq!(&buf[..n], &expected[..], "{suite} rtp layout");
            let n = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(&buf[..n], &plain[..], "{suite}");
        }
        let plain = rtcp_rr(0x1234_5678);
        let mut without = with_room(&plain);
        let n0 = plain_tx.protect_rtcp(&mut without, plain.len()).unwrap();
        let mut buf = with_room(&plain);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        let at = n0 - after(true);
        let mut expected = without[..at].to_vec();
        expected.extend_from_slice(&mki);
        expected.extend_from_slice(&without[at..n0]);
        assert_eq!(&buf[..n], &expected[..], "{suite} rtcp layout");
        let n = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{suite} rtcp");
        // No tail room for the MKI: an error, nothing written past the buffer.
        let mut tight = plain.clone();
        tight.resize(plain.len() + suite.rtcp_overhead(), 0);
        assert_eq!(
            tx.protect_rtcp(&mut tight, plain.len()),
            Err(SrtpError::NoTailRoom)
        );
        // Too short to hold the MKI and tag.
        assert!(rx.unprotect_rtp(&mut [0x80u8; 8][..]).is_err());
    }
}
