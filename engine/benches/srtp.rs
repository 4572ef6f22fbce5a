//! Time per SRTP protect + unprotect of a 172-byte RTP packet (20 ms of G.711) for each
//! suite, and per SRTCP round trip. Plain `std::time` loop, no bench framework:
//! `cargo bench -p ngmedia-engine --bench srtp`.

use std::hint::black_box;
use std::time::Instant;

use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};

const PACKETS: u32 = 200_000;

fn main() {
    for suite in SrtpSuite::ALL {
        let key = vec![0x42u8; suite.key_salt_len()];
        let mut tx = SrtpContext::from_key_salt(suite, &key).unwrap();
        let mut rx = SrtpContext::from_key_salt(suite, &key).unwrap();
        let mut buf = [0u8; 1500];
        buf[0] = 0x80;
        buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        let start = Instant::now();
        for i in 0..PACKETS {
            buf[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            let n = tx.protect_rtp(&mut buf, 172).unwrap();
            let m = rx.unprotect_rtp(black_box(&mut buf[..n])).unwrap();
            black_box(m);
        }
        let rtp = start.elapsed().as_secs_f64() * 1e6 / PACKETS as f64;

        let start = Instant::now();
        for _ in 0..PACKETS / 4 {
            buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
            let n = tx.protect_rtcp(&mut buf, 32).unwrap();
            let m = rx.unprotect_rtcp(black_box(&mut buf[..n])).unwrap();
            black_box(m);
        }
        let rtcp = start.elapsed().as_secs_f64() * 1e6 / (PACKETS / 4) as f64;
        println!("{suite:<24} RTP protect+unprotect {rtp:6.3} µs   RTCP {rtcp:6.3} µs");
    }
}
