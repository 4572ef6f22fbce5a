//! Log output: `tracing` events on stderr, as text or as JSON lines (`--log-format`), with
//! call-ids, tags and addresses optionally replaced by a short hash (`--log-redact`, see
//! `ngmedia_engine::core::pii`).
//!
//! The level comes from the configuration (`--log-level`); `RUST_LOG`, when set, replaces it
//! so a developer can turn on one module's debug output without touching the config.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), for log
    /// shippers.
    Json,
}

/// Install the global subscriber. Call once, before anything logs.
pub(crate) fn init(level: LevelFilter, format: LogFormat, redact: bool) {
    ngmedia_engine::core::pii::set_redact(redact);
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("ngmedia: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::default().add_directive(level.into())
        }),
        _ => EnvFilter::default().add_directive(level.into()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
