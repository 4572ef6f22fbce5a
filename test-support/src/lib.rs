//! Helpers for the workspace's own tests; a dev-dependency only, never part of the daemon.
//!
//! [`sdp_fixture!`] gives the SDP bodies the tests of several crates share, from
//! `test-support/fixtures/sdp/` (see its README).
//!
//! [`CountingAllocator`] backs the zero-allocation tests ("no heap allocation per packet",
//! STYLE.md §3). A test binary installs it with
//! `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;` and measures
//! a section with one of:
//! - [`allocations_in`]: allocations made by the calling thread while it runs `f`, for
//!   sans-IO code that runs on the test's own thread;
//! - [`allocations_in_threads`]: the same plus those of the threads whose name starts with a
//!   given prefix (the engine's media workers, `ngmedia-media-N`), for code that runs on
//!   worker threads.
//!
//! Neither counts anything else: the test harness's threads (progress reports, output
//! capture) allocate whenever they like and must not fail a test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// The global allocator of a zero-allocation test binary: the system allocator, counting
/// the allocations (and reallocations) of the threads being measured.
pub struct CountingAllocator;

/// Allocations of the named threads, counted while [`allocations_in_threads`] runs.
static NAMED: AtomicU64 = AtomicU64::new(0);
/// Set while [`allocations_in_threads`] runs: threads named after [`PREFIX`] count.
static NAMED_ARMED: AtomicBool = AtomicBool::new(false);
/// The thread-name prefix of [`allocations_in_threads`] (a `&'static str`, in two parts).
static PREFIX: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PREFIX_LEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on a thread that is measuring itself. Both locals are const-initialised and
    /// have no destructor, so using them never allocates.
    static MEASURED: Cell<bool> = const { Cell::new(false) };
    /// The allocations this thread made while [`MEASURED`] was set.
    static OWN: Cell<u64> = const { Cell::new(0) };
}

/// Allocations the calling thread makes while it runs `f`, and what `f` returned. Other
/// threads' allocations are not counted.
pub fn allocations_in<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = OWN.with(Cell::get);
    let was = MEASURED.with(|m| m.replace(true));
    let out = f();
    MEASURED.with(|m| m.set(was));
    (OWN.with(Cell::get) - before, out)
}

/// Allocations made while `f` runs by the calling thread and by every thread whose name
/// starts with `prefix` (the name given to `std::thread::Builder`, as the kernel keeps it:
/// its first 15 bytes), and what `f` returned. Threads of any other name are not counted.
/// One such section at a time per process; a thread of that name must be running when it
/// starts (a renamed worker would otherwise go uncounted and the test pass for nothing).
pub fn allocations_in_threads<T>(prefix: &'static str, f: impl FnOnce() -> T) -> (u64, T) {
    assert!(
        !prefix.is_empty() && prefix.len() <= 15,
        "a thread-name prefix of 1 to 15 bytes (the kernel keeps 15)"
    );
    assert!(
        thread_names().iter().any(|n| n.starts_with(prefix)),
        "no thread named {prefix}… is running: {:?}",
        thread_names()
    );
    PREFIX.store(prefix.as_ptr().cast_mut(), Ordering::SeqCst);
    PREFIX_LEN.store(prefix.len(), Ordering::SeqCst);
    let before = NAMED.load(Ordering::SeqCst);
    assert!(
        !NAMED_ARMED.swap(true, Ordering::SeqCst),
        "one allocations_in_threads section at a time"
    );
    let (own, out) = allocations_in(f);
    NAMED_ARMED.store(false, Ordering::SeqCst);
    (own + NAMED.load(Ordering::SeqCst) - before, out)
}

/// The engine's media worker threads (`ngmedia-media-N`, named in `engine/src/io/mod.rs`).
pub const MEDIA_WORKERS: &str = "ngmedia-media-";

/// The kernel names of this process's threads.
fn thread_names() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_owned())
        .collect()
}

/// Whether the calling thread's kernel name starts with the armed prefix. `prctl` copies the
/// name into a stack buffer: no allocation, so this is safe inside the allocator.
fn named_thread() -> bool {
    let (ptr, len) = (
        PREFIX.load(Ordering::SeqCst),
        PREFIX_LEN.load(Ordering::SeqCst),
    );
    if ptr.is_null() {
        return false;
    }
    // SAFETY: `ptr` and `len` come from a `&'static str` stored by `allocations_in_threads`.
    let prefix = unsafe { std::slice::from_raw_parts(ptr, len) };
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (its NUL included) into the buffer.
    if unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } != 0 {
        return false;
    }
    name.starts_with(prefix)
}

fn count() {
    // Gone while the thread's locals are torn down: such a thread is not measuring itself.
    if MEASURED.try_with(Cell::get).unwrap_or(false) {
        let _ = OWN.try_with(|c| c.set(c.get() + 1));
    } else if NAMED_ARMED.load(Ordering::SeqCst) && named_thread() {
        NAMED.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
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

/// The text of `test-support/fixtures/sdp/<name>.sdp` as a `&'static str`, byte for byte
/// (most are in the wire form, CRLF), from any crate of the workspace:
/// `sdp_fixture!("rtpengine-ex2-offer")`.
#[macro_export]
macro_rules! sdp_fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../test-support/fixtures/sdp/",
            $name,
            ".sdp"
        ))
    };
}

/// A tiny deterministic generator (xorshift64*) for random test inputs, so a failure
/// reproduces from its seed. The seed must not be 0.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static GLOBAL: CountingAllocator = CountingAllocator;

    /// Spawns a thread named `name` that allocates 100 times, and waits for it.
    fn hundred_allocations_on(name: &str) {
        let allocate = || {
            for _ in 0..100 {
                std::hint::black_box(vec![0u8; 64]);
            }
        };
        let thread = std::thread::Builder::new().name(name.into());
        thread.spawn(allocate).unwrap().join().unwrap();
    }

    #[test]
    fn a_thread_counts_its_own_allocations_only() {
        assert_eq!(allocations_in(|| std::hint::black_box(vec![1u8])).0, 1);
        assert_eq!(allocations_in(|| 7).0, 0);
        // Spawning allocates on this thread too, never 100 times.
        let (n, ()) = allocations_in(|| hundred_allocations_on("alloc-worker-1"));
        assert!(n < 100, "{n}: the other thread's allocations were counted");
    }

    #[test]
    fn threads_of_the_given_name_count_too() {
        let (started_tx, started) = std::sync::mpsc::channel();
        let running = std::thread::Builder::new()
            .name("alloc-worker-0".into())
            .spawn(move || {
                started_tx.send(()).unwrap();
                std::thread::park_timeout(std::time::Duration::from_secs(10));
            })
            .unwrap();
        // The thread's name is set before its closure runs.
        started.recv().unwrap();
        let (others, ()) = allocations_in_threads("alloc-worker", || {
            hundred_allocations_on("elsewhere-abcd");
            hundred_allocations_on("elsewhere-efgh");
        });
        assert!(
            others < 100,
            "{others}: threads of other names were counted"
        );
        let (named, ()) = allocations_in_threads("alloc-worker", || {
            hundred_allocations_on("alloc-worker-1");
            hundred_allocations_on("elsewhere-abcd");
        });
        assert!(
            (100..200).contains(&(named - others)),
            "{named} with a named thread, {others} without"
        );
        running.thread().unpark();
        running.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "no thread named")]
    fn a_prefix_no_thread_has_is_refused() {
        allocations_in_threads("no-such-thread", || ());
    }
}
