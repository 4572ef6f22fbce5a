use super::*;

/// The `a=crypto` values rtpengine generated in captures/ex4.out (offer RTP/AVP ->
/// RTP/SAVP), plus the `SDES-lifetime` variant and the answer.
const EX4: [&str; 12] = [
    "1 AEAD_AES_256_GCM inline:O0ScP7smVkvskzceDJ3B0lJtGQh2ztLfmz2UeQ2gRwT11w/gTPEoa6esI+Q",
    "2 AEAD_AES_128_GCM inline:mS1eUO2fzezwBU3Nh1MZ3B1P+ShKJP1Ji+xpsg",
    "3 AES_256_CM_HMAC_SHA1_80 inline:GrBeGD5JZqVbcpY+IXFoWymeT98vgmaa1kEMtJ029+/WHaiPlfEkWm1+Ndg5hw",
    "4 AES_256_CM_HMAC_SHA1_32 inline:uqy9h8b/uMosf9WHekGFZcD8iRPHHRaf3NH8qbYxRH7GaeezuHNDoROWKFxaRw",
    "5 AES_192_CM_HMAC_SHA1_80 inline:t01Vu6cx4ynytT86I6Gl3yUhuhOri6zG1BBGh1EA20xiYfzLH4k",
    "6 AES_192_CM_HMAC_SHA1_32 inline:/ONFCBXWL6JQaG05U7HL4twvczcndzOSMibb/iwEHFKEJqaqJ3w",
    "7 AES_CM_128_HMAC_SHA1_80 inline:MsfOVG8bCsLaPfxs7oIilKBjkhLvsiNOPsBuF6IR",
    "8 AES_CM_128_HMAC_SHA1_32 inline:73fsbpRzXFUrdZwa4oqhDhn0VlfPulEQ4CgUGjSX",
    "9 F8_128_HMAC_SHA1_80 inline:02szrm1OHXGQAWYJ8LsB8cnNVt3Cyk8BcsCpZKpI",
    "10 F8_128_HMAC_SHA1_32 inline:ugyVQTvS8tJ4ENHB/GnxvcXzPHRg6mysJsY4Pqvl",
    "11 NULL_HMAC_SHA1_80 inline:mj5fZ9Aygy6REKbgjP9MN9E17Lgd/e8tA1PMCNY9",
    "12 NULL_HMAC_SHA1_32 inline:aNTJy5oVjfB8BQINh7PMiaT+DE44Bcd1h2yQcJIK",
];
const EX4_LIFETIME: &str =
    "7 AES_CM_128_HMAC_SHA1_80 inline:A+A5gu3AiguTqZ3uOX3RDNJpdDGlW253uglLA/1p|2^31";
const EX4_ANSWER: &str =
    "1 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";

#[test]
fn capture_lines_parse_and_write_back_byte_exact() {
    for (line, suite) in EX4.iter().zip(SrtpSuite::ALL) {
        let attr = CryptoAttr::parse(line).unwrap();
        assert_eq!(attr.suite, suite);
        assert_eq!(attr.key_salt.len(), suite.key_salt_len());
        assert_eq!(attr.write(WriteOptions::default()), *line);
        attr.context().unwrap();
    }
    let attr = CryptoAttr::parse(EX4_LIFETIME).unwrap();
    assert_eq!(attr.lifetime, Some(1 << 31));
    assert_eq!(attr.write(WriteOptions::default()), EX4_LIFETIME);
    let answer = CryptoAttr::parse(EX4_ANSWER).unwrap();
    assert_eq!(answer.master_key(), b"1234567890123456");
    assert_eq!(answer.master_salt(), b"78901234567890");
}

#[test]
fn padding_and_lifetime_options() {
    let attr = CryptoAttr::parse(EX4[0]).unwrap();
    let padded = attr.write(WriteOptions {
        pad: true,
        lifetime: true,
    });
    assert_eq!(
        padded,
        "1 AEAD_AES_256_GCM inline:O0ScP7smVkvskzceDJ3B0lJtGQh2ztLfmz2UeQ2gRwT11w/gTPEoa6esI+Q=|2^31"
    );
    // Padded input parses to the same key.
    assert_eq!(CryptoAttr::parse(&padded).unwrap().key_salt, attr.key_salt);
    // 30-byte keys need no padding either way.
    let cm = CryptoAttr::parse(EX4[6]).unwrap();
    assert_eq!(
        cm.write(WriteOptions {
            pad: true,
            lifetime: false
        }),
        EX4[6]
    );
}

#[test]
fn lifetime_mki_and_session_params() {
    let key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    let a = CryptoAttr::parse(&format!(
        "9 aes_cm_128_hmac_sha1_32 INLINE:{key}|1048576|1:4 UNENCRYPTED_SRTCP KDR=1"
    ))
    .unwrap();
    assert_eq!(a.tag, 9);
    assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(a.lifetime, Some(1 << 20));
    assert_eq!(a.mki, Some(Mki { value: 1, len: 4 }));
    assert!(a.unencrypted_srtcp && !a.unencrypted_srtp);
    // The MKI goes into packets: value 1 in 4 bytes.
    assert_eq!(a.mki.unwrap().bytes(), [0, 0, 0, 1]);
    assert!(a.context().is_ok());
    assert_eq!(
        a.write(WriteOptions::default()),
        format!("9 AES_CM_128_HMAC_SHA1_32 inline:{key}|2^20|1:4 UNENCRYPTED_SRTCP")
    );
    // MKI without lifetime.
    let b = CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2:1")).unwrap();
    assert_eq!((b.lifetime, b.mki), (None, Some(Mki { value: 2, len: 1 })));
    // Second key parameter ignored.
    let c = CryptoAttr::parse(&format!(
        "1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31;inline:{key}|2^31"
    ))
    .unwrap();
    assert_eq!(c.lifetime, Some(1 << 31));
}

#[test]
fn malformed_lines_are_clear_errors() {
    let key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    let cases: [(String, SdesError); 10] = [
        (String::new(), SdesError::Missing("tag")),
        (
            "x AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::BadTag("x".into()),
        ),
        ("1".into(), SdesError::Missing("crypto suite")),
        (
            "1 F8_256_HMAC_SHA1_80 inline:abc".into(),
            SdesError::UnknownSuite("F8_256_HMAC_SHA1_80".into()),
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::Missing("key parameters"),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 uri:{key}"),
            SdesError::UnknownKeyMethod,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(),
            SdesError::BadBase64,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:MTIz".into(),
            SdesError::KeyLength {
                suite: SrtpSuite::AesCm128HmacSha1_80,
                got: 3,
                expected: 30,
            },
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^0"),
            SdesError::BadLifetime("2^0".into()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:0"),
            SdesError::BadMki("1:0".into()),
        ),
    ];
    for (line, err) in cases {
        assert_eq!(CryptoAttr::parse(&line).unwrap_err(), err, "{line}");
    }
    for bad in ["2^49", "0", "281474976710657", "x"] {
        assert!(
            CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|{bad}")).is_err()
        );
    }
    assert!(CryptoAttr::parse(&format!(
        "1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4|x"
    ))
    .is_err());
}

#[test]
fn generated_offer_has_fresh_keys_in_rtpengine_order() {
    let offer = generate_offer(&SdesFlags::default()).unwrap();
    let suites: Vec<_> = offer.iter().map(|a| a.suite).collect();
    assert_eq!(suites, SrtpSuite::ALL);
    let tags: Vec<_> = offer.iter().map(|a| a.tag).collect();
    assert_eq!(tags, (1..=12).collect::<Vec<u32>>());
    for a in &offer {
        let line = a.write(WriteOptions::default());
        assert!(!line.contains('='), "unpadded: {line}");
        assert_eq!(CryptoAttr::parse(&line).unwrap(), *a);
    }
    let again = generate_offer(&SdesFlags::default()).unwrap();
    assert_ne!(offer[0].key_salt, again[0].key_salt);
    assert!(offer[0].key_salt.iter().any(|&b| b != 0));
}

#[test]
fn no_only_nonew_and_order_filters() {
    let mut f = SdesFlags::default();
    for opt in [
        "no-AEAD_AES_256_GCM",
        "no-NULL_HMAC_SHA1_80",
        "no-NULL_HMAC_SHA1_32",
        "no-F8_128_HMAC_SHA1_80",
        "no-F8_256_HMAC_SHA1_80",
    ] {
        assert!(f.apply(opt));
    }
    assert_eq!(
        offer_suites(&f)[..2],
        [SrtpSuite::AeadAes128Gcm, SrtpSuite::Aes256CmHmacSha1_80]
    );
    assert_eq!(offer_suites(&f).len(), 8);

    // only- wins over no-.
    assert!(f.apply("only-AEAD_AES_256_GCM"));
    assert!(f.apply("only-AES_CM_128_HMAC_SHA1_80"));
    assert_eq!(
        offer_suites(&f),
        [SrtpSuite::AeadAes256Gcm, SrtpSuite::AesCm128HmacSha1_80]
    );

    // order: moves named suites first, keeps tags.
    let mut g = SdesFlags::default();
    assert!(g.apply("order:AES_CM_128_HMAC_SHA1_80;AES_CM_128_HMAC_SHA1_32;F8_128_HMAC_SHA1_80"));
    let offer = generate_offer(&g).unwrap();
    let head: Vec<_> = offer.iter().take(4).map(|a| (a.tag, a.suite)).collect();
    assert_eq!(
        head,
        [
            (7, SrtpSuite::AesCm128HmacSha1_80),
            (8, SrtpSuite::AesCm128HmacSha1_32),
            (9, SrtpSuite::F8_128HmacSha1_80),
            (1, SrtpSuite::AeadAes256Gcm)
        ]
    );

    let mut n = SdesFlags::default();
    assert!(n.apply("nonew"));
    assert!(offer_suites(&n).is_empty());
    assert!(!n.apply("off"));
    assert!(n.apply("pad") && n.apply("lifetime"));
    assert_eq!(
        n.write_options(),
        WriteOptions {
            pad: true,
            lifetime: true
        }
    );
}

#[test]
fn answer_selection_matches_tag_and_suite() {
    let offered: Vec<CryptoAttr> = EX4.iter().map(|l| CryptoAttr::parse(l).unwrap()).collect();
    // ex4: the callee answers tag 1 with AES_CM_128_HMAC_SHA1_80, but our tag 1 is
    // AEAD_AES_256_GCM: suite mismatch, so nothing is acceptable.
    let answer = [CryptoAttr::parse(EX4_ANSWER).unwrap()];
    assert_eq!(
        select_answer(&offered, &answer).unwrap_err(),
        SdesError::NoAcceptableCrypto
    );
    // Against an offer whose tag 1 is that suite, it is picked.
    let ours = [CryptoAttr::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap()];
    let (o, t) = select_answer(&ours, &answer).unwrap();
    assert_eq!((o.tag, t.tag), (1, 1));
    assert_eq!(t.master_key(), b"1234567890123456");
    // Answer with tag 7 matching our 7th line.
    let key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    let mki = CryptoAttr::parse(&format!("7 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:1")).unwrap();
    // A line with an MKI is as good as any.
    let (o, t) = select_answer(&offered, std::slice::from_ref(&mki)).unwrap();
    assert_eq!(t.mki, Some(Mki { value: 1, len: 1 }));
    let good = CryptoAttr::parse(&format!("7 AES_CM_128_HMAC_SHA1_80 inline:{key}")).unwrap();
    assert_eq!(o.tag, 7);
    let (o, _) = select_answer(&offered, &[mki, good]).unwrap();
    assert_eq!(o.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(o.key_salt, CryptoAttr::parse(EX4[6]).unwrap().key_salt);
}

#[test]
fn offerer_preference() {
    let offered: Vec<CryptoAttr> = EX4.iter().map(|l| CryptoAttr::parse(l).unwrap()).collect();
    assert_eq!(select_offerer_crypto(&offered, &[]).unwrap().tag, 1);
    let pref = [
        "F8_128_HMAC_SHA1_80".to_owned(),
        "AES_CM_128_HMAC_SHA1_32".to_owned(),
    ];
    assert_eq!(select_offerer_crypto(&offered, &pref).unwrap().tag, 9);
    assert_eq!(select_offerer_crypto(&offered, &pref[1..]).unwrap().tag, 8);
    assert_eq!(
        select_offerer_crypto(&[], &pref).unwrap_err(),
        SdesError::NoAcceptableCrypto
    );
}

#[test]
fn sdes_keys_drive_srtp_end_to_end() {
    // Both sides key their contexts from the same line: what one protects the other
    // unprotects.
    let line = CryptoAttr::generate(1, SrtpSuite::AeadAes128Gcm)
        .unwrap()
        .write(WriteOptions::default());
    let attr = CryptoAttr::parse(&line).unwrap();
    let (mut tx, mut rx) = (attr.context().unwrap(), attr.context().unwrap());
    let mut buf = [0u8; 64];
    buf[..12].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
    buf[12..20].copy_from_slice(b"payload!");
    let n = tx.protect_rtp(&mut buf, 20).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(20));
    assert_eq!(&buf[12..20], b"payload!");
}

#[test]
fn offer_following_an_sdes_offerer() {
    let key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    let offerer = [
        CryptoAttr::parse(&format!("3 AES_CM_128_HMAC_SHA1_32 inline:{key}")).unwrap(),
        CryptoAttr::parse(&format!("5 AES_CM_128_HMAC_SHA1_80 inline:{key}")).unwrap(),
    ];
    let all = generate_offer_following(&offerer, &[], &SdesFlags::default()).unwrap();
    let shape: Vec<(u32, SrtpSuite)> = all.iter().map(|a| (a.tag, a.suite)).collect();
    assert_eq!(
        shape[..3],
        [
            (3, SrtpSuite::AesCm128HmacSha1_32),
            (5, SrtpSuite::AesCm128HmacSha1_80),
            (6, SrtpSuite::AeadAes256Gcm),
        ]
    );
    assert_eq!(all.len(), SrtpSuite::ALL.len());
    // The offerer's lines are passed on with their keys (rtpengine copies them); the
    // others get fresh keys.
    assert_eq!(all[0], offerer[0]);
    assert_eq!(all[1], offerer[1]);
    assert!(all[2..].iter().all(|a| a.key_salt != offerer[0].key_salt));
    // A re-offer keeps what was offered before for the suites the offerer left out,
    // with tags past the offerer's.
    let again = generate_offer_following(&offerer[1..], &all, &SdesFlags::default()).unwrap();
    assert_eq!(again[0], offerer[1]);
    let cm32 = again
        .iter()
        .find(|a| a.suite == SrtpSuite::AesCm128HmacSha1_32)
        .unwrap();
    assert_eq!((cm32.tag, &cm32.key_salt), (6, &all[0].key_salt));
    assert_eq!(again.len(), SrtpSuite::ALL.len());
    // The callee accepting a suite the offerer offered: the offerer is answered with
    // the callee's key under its own tag.
    let callee = CryptoAttr::parse(&format!(
        "9 AES_CM_128_HMAC_SHA1_80 inline:{}",
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"
    ))
    .unwrap();
    let (theirs, ours) = answer_following(&offerer, &callee).unwrap();
    assert_eq!(theirs, offerer[1]);
    assert_eq!((ours.tag, ours.suite), (5, SrtpSuite::AesCm128HmacSha1_80));
    assert_eq!(ours.key_salt, callee.key_salt);
    let gcm = CryptoAttr::generate(1, SrtpSuite::AeadAes128Gcm).unwrap();
    assert!(answer_following(&offerer, &gcm).is_none());
    let nonew = SdesFlags {
        nonew: true,
        no: vec!["AES_CM_128_HMAC_SHA1_32".into()],
        ..SdesFlags::default()
    };
    let only = generate_offer_following(&offerer, &[], &nonew).unwrap();
    assert_eq!(
        only.iter().map(|a| (a.tag, a.suite)).collect::<Vec<_>>(),
        [(5, SrtpSuite::AesCm128HmacSha1_80)]
    );
}
