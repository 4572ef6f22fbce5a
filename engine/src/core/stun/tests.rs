use super::*;

const TID: TransactionId = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1: sample request (SOFTWARE "STUN test client", PRIORITY, ICE-CONTROLLED,
/// USERNAME "evtj:h6vY", MESSAGE-INTEGRITY, FINGERPRINT; padding bytes are 0x20).
const REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// RFC 5769 §2.2: sample IPv4 response, 192.0.2.1:32853, SOFTWARE "test vector".
const RESPONSE_V4: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

/// RFC 5769 §2.3: sample IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const RESPONSE_V6: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

#[test]
fn rfc5769_request_parses_and_authenticates() {
    let msg = StunMessage::parse(&REQUEST).unwrap();
    assert_eq!(msg.class, StunClass::Request);
    assert_eq!(msg.method, METHOD_BINDING);
    assert_eq!(msg.transaction_id, TID);
    assert_eq!(msg.username, Some(&b"evtj:h6vY"[..]));
    assert_eq!(msg.software, Some(&b"STUN test client"[..]));
    assert_eq!(msg.priority, Some(0x6e0001ff));
    assert_eq!(msg.role, Some(IceRole::Controlled(0x932ff9b151263b36)));
    assert!(!msg.use_candidate && msg.has_fingerprint);
    msg.verify_integrity(PASSWORD).unwrap();
    assert_eq!(msg.verify_integrity(b"wrong"), Err(StunError::BadIntegrity));

    let ice = check_ice_binding_request(&msg, b"evtj", PASSWORD).unwrap();
    assert_eq!(ice.remote_ufrag, b"h6vY");
    assert_eq!(ice.transaction_id, TID);
    assert_eq!(
        check_ice_binding_request(&msg, b"evt", PASSWORD),
        Err(StunError::WrongUsername)
    );
    assert_eq!(
        check_ice_binding_request(&msg, b"evtj", b"nope")
            .unwrap_err()
            .response_code(),
        Some(401)
    );
}

#[test]
fn rfc5769_request_is_rebuilt_byte_exact() {
    let mut buf = [0u8; 200];
    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.pad = 0x20;
    w.attr(attr::SOFTWARE, b"STUN test client")
        .unwrap()
        .attr(attr::PRIORITY, &0x6e0001ffu32.to_be_bytes())
        .unwrap()
        .attr(attr::ICE_CONTROLLED, &0x932ff9b151263b36u64.to_be_bytes())
        .unwrap()
        .attr(attr::USERNAME, b"evtj:h6vY")
        .unwrap()
        .integrity(PASSWORD)
        .unwrap()
        .fingerprint()
        .unwrap();
    let n = w.len();
    assert_eq!(&buf[..n], &REQUEST[..]);
}

/// The attribute types of a STUN message, in order.
fn attribute_types(bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut at = 20;
    while at + 4 <= bytes.len() {
        out.push(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 4 + len.div_ceil(4) * 4;
    }
    out
}

#[test]
fn our_checks_carry_attributes_in_rtpengine_order() {
    // rtpengine's `stun_binding_request`: SOFTWARE, USERNAME, the role, PRIORITY,
    // USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT (its tests match the bytes in order).
    let mut buf = [0u8; 200];
    for (role, use_candidate, role_attr) in [
        (IceRole::Controlled(1), false, attr::ICE_CONTROLLED),
        (IceRole::Controlling(2), true, attr::ICE_CONTROLLING),
    ] {
        let params = BindingRequestParams {
            username: b"q2758e93:abcdefgh",
            key: b"bd5e845657ecb8d6dd8e1bc6",
            priority: 0x6eff_ffff,
            role,
            use_candidate,
            software: Some(b"rtpengine-compatible"),
        };
        let n = write_binding_request(&mut buf, &TID, &params, 0).unwrap();
        let mut want = vec![attr::SOFTWARE, attr::USERNAME, role_attr, attr::PRIORITY];
        if use_candidate {
            want.push(attr::USE_CANDIDATE);
        }
        want.extend([attr::MESSAGE_INTEGRITY, attr::FINGERPRINT]);
        assert_eq!(attribute_types(&buf[..n]), want);
        // USERNAME padded with zeros, then the role.
        let user = 20 + 4 + 20 + 4;
        assert_eq!(&buf[user..user + 17], b"q2758e93:abcdefgh");
        assert_eq!(&buf[user + 17..user + 20], &[0, 0, 0]);
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        msg.verify_integrity(b"bd5e845657ecb8d6dd8e1bc6").unwrap();
        assert_eq!((msg.role, msg.priority), (Some(role), Some(0x6eff_ffff)));
    }
}

fn response(addr: SocketAddr) -> Vec<u8> {
    let mut buf = [0u8; 200];
    let mut w = StunWriter::new(&mut buf, StunClass::Success, METHOD_BINDING, &TID).unwrap();
    w.pad = 0x20;
    w.attr(attr::SOFTWARE, b"test vector")
        .unwrap()
        .xor_mapped_address(addr)
        .unwrap()
        .integrity(PASSWORD)
        .unwrap()
        .fingerprint()
        .unwrap();
    let n = w.len();
    buf[..n].to_vec()
}

#[test]
fn rfc5769_responses_byte_exact() {
    let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(response(v4), RESPONSE_V4);
    assert_eq!(response(v6), RESPONSE_V6);
    for (bytes, addr) in [(&RESPONSE_V4[..], v4), (&RESPONSE_V6[..], v6)] {
        let msg = StunMessage::parse(bytes).unwrap();
        assert_eq!(msg.class, StunClass::Success);
        assert_eq!(msg.xor_mapped_address, Some(addr));
        msg.verify_integrity(PASSWORD).unwrap();
    }
}

#[test]
fn success_and_error_responses_round_trip() {
    let mut buf = [0u8; 128];
    let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let n = write_binding_success(&mut buf, &TID, addr, b"pwd").unwrap();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    assert_eq!(
        (msg.class, msg.xor_mapped_address),
        (StunClass::Success, Some(addr))
    );
    msg.verify_integrity(b"pwd").unwrap();
    assert!(msg.has_fingerprint);

    for (code, key) in [(400, None), (401, None), (487, Some(&b"pwd"[..]))] {
        let n = write_binding_error(&mut buf, &TID, code, key).unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class, StunClass::Error);
        assert_eq!(msg.error_code.map(|e| e.0), Some(code));
        assert_eq!(msg.has_integrity(), key.is_some());
    }
    let n = write_binding_error(&mut buf, &TID, 487, None).unwrap();
    let (_, reason) = StunMessage::parse(&buf[..n]).unwrap().error_code.unwrap();
    assert_eq!(reason, b"Role Conflict");
    // Too small a buffer is an error.
    assert_eq!(
        write_binding_success(&mut [0u8; 40], &TID, addr, b"pwd"),
        Err(StunError::BufferTooSmall)
    );
}

#[test]
fn ice_checks_require_fingerprint_username_and_integrity() {
    let mut buf = [0u8; 200];
    let params = BindingRequestParams {
        username: b"ours:theirs",
        key: b"our-pwd",
        priority: 1,
        role: IceRole::Controlling(7),
        use_candidate: true,
        software: None,
    };
    let n = write_binding_request(&mut buf, &TID, &params, 0).unwrap();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    let ok = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap();
    assert!(ok.use_candidate);
    assert_eq!(ok.role, Some(IceRole::Controlling(7)));

    // No integrity, no username, no fingerprint.
    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.attr(attr::USERNAME, b"ours:theirs")
        .unwrap()
        .fingerprint()
        .unwrap();
    let n = w.len();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    let err = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap_err();
    assert_eq!(
        (err, err.response_code()),
        (StunError::NoIntegrity, Some(400))
    );

    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.integrity(b"our-pwd").unwrap().fingerprint().unwrap();
    let n = w.len();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    assert_eq!(
        check_ice_binding_request(&msg, b"ours", b"our-pwd"),
        Err(StunError::NoUsername)
    );

    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.attr(attr::USERNAME, b"ours:theirs")
        .unwrap()
        .integrity(b"our-pwd")
        .unwrap();
    let n = w.len();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    assert_eq!(
        check_ice_binding_request(&msg, b"ours", b"our-pwd"),
        Err(StunError::NoFingerprint)
    );

    // Unknown comprehension-required attribute -> 420.
    let mut w = StunWriter::new(&mut buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.attr(0x7777, b"x").unwrap();
    w.attr(attr::USERNAME, b"ours:theirs")
        .unwrap()
        .integrity(b"our-pwd")
        .unwrap()
        .fingerprint()
        .unwrap();
    let n = w.len();
    let msg = StunMessage::parse(&buf[..n]).unwrap();
    let err = check_ice_binding_request(&msg, b"ours", b"our-pwd").unwrap_err();
    assert_eq!(err.response_code(), Some(420));
}

#[test]
fn malformed_messages_are_errors() {
    assert_eq!(
        StunMessage::parse(&REQUEST[..19]).unwrap_err(),
        StunError::TooShort
    );
    assert_eq!(
        StunMessage::parse(&REQUEST[..100]).unwrap_err(),
        StunError::BadLength
    );
    let mut long = REQUEST.to_vec();
    long.extend_from_slice(&[0; 4]);
    assert_eq!(StunMessage::parse(&long).unwrap_err(), StunError::BadLength);
    let mut bad_len = REQUEST;
    bad_len[3] = 0x57;
    assert_eq!(
        StunMessage::parse(&bad_len).unwrap_err(),
        StunError::BadLength
    );
    let mut cookie = REQUEST;
    cookie[5] ^= 1;
    assert_eq!(StunMessage::parse(&cookie).unwrap_err(), StunError::NotStun);
    let mut rtp = REQUEST;
    rtp[0] = 0x80;
    assert_eq!(StunMessage::parse(&rtp).unwrap_err(), StunError::NotStun);
    // A flipped bit in the body breaks the fingerprint...
    let mut fp = REQUEST;
    fp[30] ^= 1;
    assert_eq!(
        StunMessage::parse(&fp).unwrap_err(),
        StunError::BadFingerprint
    );
    // ...and with the fingerprint recomputed, the integrity.
    let crc = crc32fast::hash(&fp[..100]) ^ FINGERPRINT_XOR;
    fp[104..108].copy_from_slice(&crc.to_be_bytes());
    let msg = StunMessage::parse(&fp).unwrap();
    assert_eq!(msg.verify_integrity(PASSWORD), Err(StunError::BadIntegrity));
    // Attribute length running past the end.
    let mut overrun = REQUEST;
    overrun[23] = 0xff;
    assert!(matches!(
        StunMessage::parse(&overrun),
        Err(StunError::BadAttribute(_))
    ));
    // Wrong fixed-size attribute length (PRIORITY of 8 bytes would misalign; use 0).
    let mut w_buf = [0u8; 64];
    let mut w = StunWriter::new(&mut w_buf, StunClass::Request, METHOD_BINDING, &TID).unwrap();
    w.attr(attr::PRIORITY, &[1, 2]).unwrap();
    let n = w.len();
    assert_eq!(
        StunMessage::parse(&w_buf[..n]).unwrap_err(),
        StunError::BadAttribute(attr::PRIORITY)
    );
}

/// 10 000 mutated datagrams (bit flips, byte overwrites, truncation, extension) never
/// panic; every outcome is Ok or a StunError.
#[test]
fn mutation_fuzz_never_panics() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let seeds: [&[u8]; 3] = [&REQUEST, &RESPONSE_V4, &RESPONSE_V6];
    let mut parsed = 0;
    for i in 0..10_000 {
        let mut d = seeds[i % 3].to_vec();
        for _ in 0..1 + next() % 4 {
            let r = next();
            match r % 4 {
                0 => {
                    let p = (r >> 8) as usize % d.len();
                    d[p] ^= 1 << ((r >> 40) % 8);
                }
                1 => {
                    let p = (r >> 8) as usize % d.len();
                    d[p] = (r >> 32) as u8;
                }
                2 => d.truncate((r >> 8) as usize % (d.len() + 1)),
                _ => d.extend((0..(r >> 8) % 9).map(|k| k as u8)),
            }
            if d.is_empty() {
                d.push(0);
            }
        }
        // Keep the header's length field consistent half the time so the attribute
        // walker is exercised rather than rejected up front.
        if i % 2 == 0 && d.len() >= HEADER_LEN {
            let l = ((d.len() - HEADER_LEN) as u16).to_be_bytes();
            d[2..4].copy_from_slice(&l);
        }
        if let Ok(msg) = StunMessage::parse(&d) {
            parsed += 1;
            let _ = msg.verify_integrity(PASSWORD);
            let _ = check_ice_binding_request(&msg, b"evtj", PASSWORD);
        }
    }
    // Some mutations (e.g. of padding bytes before a recomputed length) still parse.
    assert!(parsed < 10_000);
}
