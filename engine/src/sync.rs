//! Locking that survives a panic elsewhere.
//!
//! A thread that panics while holding a `std::sync::Mutex` poisons it, and every later
//! `lock()` fails. Everything ngmedia keeps behind a mutex (the call registry, port pools,
//! queues, caches, the recorder's and interceptor's state) keeps its invariants per
//! operation, so the data behind a poisoned lock is still the best state there is: serving
//! on with it beats failing every later ng command, HTTP request or recording for good.
//! This is the one place that makes that choice.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Lock `m`, taking the data even when a panic poisoned the mutex.
#[inline]
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `cv.wait_timeout(guard, timeout)`, taking the data even when the mutex was poisoned;
/// true when the wait timed out.
#[inline]
pub fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (g, r) = cv
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner);
    (g, r.timed_out())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_mutex_still_gives_its_data() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g = 2;
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 2);
        *lock(&m) = 3;
        assert_eq!(*lock(&m), 3);
    }
}
