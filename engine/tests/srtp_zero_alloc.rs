//! SRTP protect + unprotect allocate nothing in steady state: a counting global allocator
//! watches the whole process while packets of every suite go through two contexts.
//!
//! Only allocations made by the measuring thread count: the test harness's own threads (slow
//! test reports, output capture) may allocate at any moment on a busy machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ngmedia_engine::core::srtp::{SrtpContext, SrtpSuite};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread whose allocations are being counted.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if MEASURING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    MEASURING.with(|m| m.set(true));
    let before = ALLOCATIONS.load(Relaxed);
    let mut failures = 0u32;
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
    let after = ALLOCATIONS.load(Relaxed);
    MEASURING.with(|m| m.set(false));
    assert_eq!(failures, 0);
    assert_eq!(after - before, 0, "allocations during steady-state SRTP");
}
