//! Time per SRTP protect + unprotect of a 172-byte RTP packet (20 ms of G.711) for each
//! suite, and per SRTCP round trip. Plain `std::time` loop, no bench framework:
//! `cargo bench -p ngmedia-engine --bench srtp`. Each figure is the best of five batches,
//! which filters out time stolen by other processes on a shared machine.

use std::hint::black_box;
use std::time::Instant;

use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};

const PACKETS: u32 = 40_000;
const BATCHES: u32 = 5;

fn main() {
    for suite in SrtpSuite::ALL {
        let key = vec![0x42u8; suite.key_salt_len()];
        let mut tx = SrtpContext::from_key_salt(suite, &key).unwrap();
        let mut rx = SrtpContext::from_key_salt(suite, &key).unwrap();
        let mut buf = [0u8; 1500];
        buf[0] = 0x80;
        buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        let (mut rtp, mut rtcp) = (f64::MAX, f64::MAX);
        let mut seq = 0u16;
        for _ in 0..BATCHES {
            let start = Instant::now();
            for _ in 0..PACKETS {
                seq = seq.wrapping_add(1);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                let n = tx.protect_rtp(&mut buf, 172).unwrap();
                let m = rx.unprotect_rtp(black_box(&mut buf[..n])).unwrap();
                black_box(m);
            }
            rtp = rtp.min(start.elapsed().as_secs_f64() * 1e6 / PACKETS as f64);

            let start = Instant::now();
            for _ in 0..PACKETS / 4 {
                buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
                let n = tx.protect_rtcp(&mut buf, 32).unwrap();
                let m = rx.unprotect_rtcp(black_box(&mut buf[..n])).unwrap();
                black_box(m);
            }
            rtcp = rtcp.min(start.elapsed().as_secs_f64() * 1e6 / (PACKETS / 4) as f64);
        }
        println!("{suite:<24} RTP protect+unprotect {rtp:6.3} µs   RTCP {rtcp:6.3} µs");
    }
}
