//! `ngmedia`: the daemon around the engine.
//!
//! Startup order is chosen so that every failure an operator can cause (bad configuration,
//! ng port in use) is reported before any media thread exists: configuration, logging, the ng
//! socket, then the media workers and the call registry. The control plane runs on a
//! single-threaded tokio runtime: it only parses requests and ticks timers, while packets move
//! on the media workers' own threads.
//!
//! On SIGTERM or SIGINT the daemon stops answering ng, closes every call (final statistics,
//! ports released), stops the workers and exits 0.

mod config;
mod logging;

use std::net::UdpSocket as StdUdpSocket;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ngmedia_control::ng::server::{now, NgServer};
use ngmedia_engine::core::calls::{CallEvent, Calls};
use ngmedia_engine::io::MediaWorkers;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::config::{DisplayInterface, Settings};

/// Period of `Calls::tick` (timeouts, purging deleted calls): timeouts are whole seconds.
const TICK: Duration = Duration::from_secs(1);
/// How long the ng server may take to stop after a signal before we close calls anyway, so a
/// stuck request can never keep the daemon from exiting.
const SERVER_STOP_GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = config::Cli::parse();
    let settings = match Settings::load(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("ngmedia: {e}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(settings.log_level);
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not only a log event: RUST_LOG may filter errors out, this must always show.
            eprintln!("ngmedia: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings) -> anyhow::Result<()> {
    let ng_socket = StdUdpSocket::bind(settings.listen_ng)
        .with_context(|| format!("cannot listen for ng on {}", settings.listen_ng))?;
    ng_socket
        .set_nonblocking(true)
        .context("cannot make the ng socket non-blocking")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;

    let engine = Arc::new(settings.engine);
    let workers = MediaWorkers::start(&engine).context("cannot start the media workers")?;
    let calls = Arc::new(Mutex::new(Calls::new(engine.clone(), workers.clone())));

    let interfaces: Vec<String> = engine
        .interfaces
        .iter()
        .map(|i| DisplayInterface(i).to_string())
        .collect();
    info!(
        "ngmedia {} ready: ng on udp {}, media ports {}-{} on {}",
        env!("CARGO_PKG_VERSION"),
        settings.listen_ng,
        engine.port_min,
        engine.port_max,
        interfaces.join(", ")
    );
    if let Some(path) = &settings.config_file {
        info!("configuration read from {}", path.display());
    }
    debug!(
        "HTTP API not available in this version; listen-http {} is unused",
        settings.listen_http
    );

    let result = runtime.block_on(serve(ng_socket, calls.clone()));

    // Whether we stop on a signal or on an error: end calls cleanly so their ports are
    // released and their final statistics logged, then stop the packet path.
    let open = lock(&calls).len();
    lock(&calls).shutdown(now());
    workers.shutdown();
    let signal = result?;
    info!("stopped after {signal}: closed {open} call(s)");
    Ok(())
}

/// Answer ng and tick timers until SIGTERM or SIGINT; returns the signal's name.
async fn serve(socket: StdUdpSocket, calls: Arc<Mutex<Calls>>) -> anyhow::Result<&'static str> {
    // Handlers go in before the first ng reply: once a supervisor sees us answer `ping`, a
    // SIGTERM must take the clean path, never the default action.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let socket =
        tokio::net::UdpSocket::from_std(socket).context("cannot register the ng socket")?;

    let stop = Arc::new(Notify::new());
    let stopped = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let server = NgServer::new(calls.clone()).run(socket, stopped);
    tokio::pin!(server);

    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let signal = loop {
        tokio::select! {
            result = &mut server => {
                result.context("ng server failed")?;
                anyhow::bail!("ng server stopped unexpectedly");
            }
            _ = ticker.tick() => tick(&calls),
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        }
    };
    info!("{signal} received: no longer accepting ng requests, closing calls");
    // notify_one keeps a permit if the server is not waiting at this moment.
    stop.notify_one();
    match tokio::time::timeout(SERVER_STOP_GRACE, server).await {
        Ok(result) => result.context("ng server failed while stopping")?,
        Err(_) => {
            warn!("ng server did not stop within {SERVER_STOP_GRACE:?}; closing calls anyway")
        }
    }
    Ok(signal)
}

/// One timer pass; events are logged after the registry lock is released.
fn tick(calls: &Mutex<Calls>) {
    let events = lock(calls).tick(now());
    for event in events {
        match event {
            CallEvent::TimedOut { call_id, reason } => {
                info!(call_id = %call_id, reason, "call ended by timeout")
            }
            CallEvent::Purged { call_id } => debug!(call_id = %call_id, "deleted call purged"),
        }
    }
}

/// A panic while holding the registry must not take the whole control plane down with it:
/// the registry's own invariants are per call, so keep serving.
fn lock(calls: &Mutex<Calls>) -> MutexGuard<'_, Calls> {
    calls.lock().unwrap_or_else(PoisonError::into_inner)
}
