//! SRTP protect + unprotect allocate nothing in steady state: a counting global allocator
//! watches the test's thread while packets of every suite go through two contexts (the test
//! harness's own threads may allocate at any moment and are not counted).

use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};
use ngmedia_test_support::{allocations_in, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn fill_rtp(buf: &mut [u8], seq: u16, ssrc: u32) -> usize {
    buf[0] = 0x80;
    buf[1] = 0x00;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(seq as u32 * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..172].fill(seq as u8);
    172
}

fn fill_rtcp(buf: &mut [u8], ssrc: u32) -> usize {
    buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..32].fill(7);
    32
}

#[test]
fn steady_state_srtp_allocates_nothing() {
    let mut contexts: Vec<(SrtpContext, SrtpContext)> = SrtpSuite::ALL
        .iter()
        .map(|&suite| {
            let key = vec![0x42u8; suite.key_salt_len()];
            (
                SrtpContext::from_key_salt(suite, &key).unwrap(),
                SrtpContext::from_key_salt(suite, &key).unwrap(),
            )
        })
        .collect();
    let mut buf = [0u8; 1500];

    // Warm-up: the first packet of each SSRC fills its (preallocated) table slot.
    for (tx, rx) in &mut contexts {
        for (ssrc, seq) in [(1u32, 0u16), (2, 65000)] {
            let n = fill_rtp(&mut buf, seq, ssrc);
            let n = tx.protect_rtp(&mut buf, n).unwrap();
            rx.unprotect_rtp(&mut buf[..n]).unwrap();
            let n = fill_rtcp(&mut buf, ssrc);
            let n = tx.protect_rtcp(&mut buf, n).unwrap();
            rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        }
    }

    let mut failures = 0u32;
    let (allocated, ()) = allocations_in(|| {
        for (tx, rx) in &mut contexts {
            for i in 1..3000u32 {
                // Crosses the sequence wrap (ROC update) for SSRC 2.
                let ssrc = 1 + i % 2;
                let seq = if ssrc == 2 {
                    (65000 + i) as u16
                } else {
                    i as u16
                };
                let n = fill_rtp(&mut buf, seq, ssrc);
                let n = tx.protect_rtp(&mut buf, n).unwrap();
                if rx.unprotect_rtp(&mut buf[..n]).is_err() {
                    failures += 1;
                }
                // A tampered packet and a replay take the error paths.
                let n = fill_rtp(&mut buf, seq.wrapping_add(1), ssrc);
                let n = tx.protect_rtp(&mut buf, n).unwrap();
                buf[20] ^= 1;
                failures += rx.unprotect_rtp(&mut buf[..n]).is_ok() as u32;
                let n = fill_rtcp(&mut buf, ssrc);
                let n = tx.protect_rtcp(&mut buf, n).unwrap();
                let mut copy = [0u8; 64];
                copy[..n].copy_from_slice(&buf[..n]);
                failures += rx.unprotect_rtcp(&mut buf[..n]).is_err() as u32;
                failures += rx.unprotect_rtcp(&mut copy[..n]).is_ok() as u32;
            }
        }
    });
    assert_eq!(failures, 0);
    assert_eq!(allocated, 0, "allocations during steady-state SRTP");
}
