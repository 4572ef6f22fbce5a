//! Personal data in logs: call-ids, tags and addresses identify subscribers. Wrapped in
//! [`Pii`], they are written as they are, or, once [`set_redact`] turned redaction on
//! (`--log-redact`), as a short hash (`~1a2b3c4d`) that is stable for the life of the process,
//! so the lines of one call still correlate without naming it.
//!
//! The switch is one process-wide flag rather than configuration passed around: it governs
//! how every log line is rendered, like the global `tracing` subscriber it sits next to, and
//! is set once at startup before anything logs. Nothing on the packet path formats `Pii`.

use std::fmt::{self, Write};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;

static REDACT: AtomicBool = AtomicBool::new(false);

/// Turn redaction of [`Pii`] values on or off for the whole process.
pub fn set_redact(on: bool) {
    REDACT.store(on, Relaxed);
}

pub fn redacting() -> bool {
    REDACT.load(Relaxed)
}

/// Key of the hash: random per process, so a hash cannot be reversed by hashing guessed
/// values (an IPv4 address space is small enough to try in full).
fn hasher() -> std::collections::hash_map::DefaultHasher {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEY.get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher()
}

/// Feeds formatted text into a hasher without building the string.
struct HashWriter<H>(H);

impl<H: Hasher> Write for HashWriter<H> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// The short hash `Pii` shows for `value` while redacting.
pub fn redacted(value: &impl fmt::Display) -> String {
    let mut w = HashWriter(hasher());
    let _ = write!(w, "{value}");
    format!("~{:08x}", w.0.finish() as u32)
}

/// A value that identifies a subscriber, for log fields (str0m's `Pii`).
pub struct Pii<T>(pub T);

impl<T: fmt::Display> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if redacting() {
            let mut w = HashWriter(hasher());
            // Formatting into a hasher cannot fail.
            let _ = write!(w, "{}", self.0);
            write!(f, "~{:08x}", w.0.finish() as u32)
        } else {
            self.0.fmt(f)
        }
    }
}

impl<T: fmt::Display> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_then_stable_hash() {
        // One test touches the process-wide switch, so tests cannot race on it.
        set_redact(false);
        assert_eq!(Pii("call-1@host").to_string(), "call-1@host");
        set_redact(true);
        let a = Pii("call-1@host").to_string();
        assert!(a.starts_with('~') && a.len() == 9, "{a}");
        assert!(!a.contains("call-1"));
        assert_eq!(Pii("call-1@host").to_string(), a, "stable");
        assert_ne!(Pii("call-2@host").to_string(), a);
        assert_eq!(redacted(&"call-1@host"), a);
        let addr: std::net::SocketAddr = "192.0.2.7:4000".parse().unwrap();
        assert_eq!(format!("{:?}", Pii(addr)), redacted(&addr));
        set_redact(false);
    }
}
