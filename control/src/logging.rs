//! Log output: `tracing` events as text on stderr.
//!
//! The level comes from the configuration (`--log-level`); `RUST_LOG`, when set, replaces it
//! so a developer can turn on one module's debug output without touching the config.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Call once, before anything logs.
pub fn init(level: LevelFilter) {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("ngmedia: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::default().add_directive(level.into())
        }),
        _ => EnvFilter::default().add_directive(level.into()),
    };
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
