//! `ngmedia`: the daemon around the engine.
//!
//! Startup order is chosen so that every failure an operator can cause (bad configuration,
//! ng or HTTP port in use) is reported before any media thread exists: configuration,
//! logging, the ng socket, the HTTP listener, then the media workers and the call registry.
//! The control plane runs on a single-threaded tokio runtime: it only parses requests (ng and
//! HTTP) and ticks timers, while packets move on the media workers' own threads.
//!
//! On SIGTERM or SIGINT the daemon stops answering ng and HTTP, closes every call (final
//! statistics, ports released), lets Redis HA write their removal, stops the workers and
//! exits 0.

mod config;
mod logging;
mod systemd;

use ngmedia_engine::sync::lock;
use std::net::{TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ngmedia_control::call_control::now;
use ngmedia_control::events::{EndReason, Events, QualityWatch};
use ngmedia_control::homer::Homer;
use ngmedia_control::http::ng::HttpNgAccess;
use ngmedia_control::http::{self, ApiState};
use ngmedia_control::li::{self, api::LiState};
use ngmedia_control::load_limits::LoadLimits;
use ngmedia_control::media::MediaLibrary;
use ngmedia_control::mqtt::{message::SsrcRates, Mqtt};
use ngmedia_control::ng::{NgHandle, NgServer};
use ngmedia_control::state_store::redis as ha;
use ngmedia_control::tls;
use ngmedia_engine::core::calls::{CallEvent, Calls};
use ngmedia_engine::core::dtls::DtlsIdentity;
use ngmedia_engine::core::pii::Pii;
use ngmedia_engine::core::request::{List, Query};
use ngmedia_engine::core::snapshot::CallSnapshot;
use ngmedia_engine::io::MediaWorkers;
use ngmedia_recordings::li::{Interceptor, LiSettings, KEEPALIVE as LI_KEEPALIVE};
use ngmedia_recordings::{Recorder, RecorderConfig, RecordingStore};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::config::{DisplayInterface, Settings};

/// Period of `Calls::tick` (timeouts, purging deleted calls): timeouts are whole seconds.
const TICK: Duration = Duration::from_secs(1);
/// How long the ng and HTTP servers may take to stop after a signal before we close calls
/// anyway, so a stuck request or a slow HTTP client can never keep the daemon from exiting.
const SERVER_STOP_GRACE: Duration = Duration::from_secs(2);
/// Packet copies in flight to the recorder: 4096 are ~80 ms of 1000 recorded streams, and at
/// most 6 MiB of buffers.
const RECORDING_QUEUE: usize = 4096;

fn main() -> ExitCode {
    let cli = config::Cli::parse();
    if cli.codecs {
        print_codecs();
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("ngmedia: {e}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(settings.log_level, settings.log_format, settings.log_redact);
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    let pidfile = settings.pidfile.clone();
    let result = run(settings);
    if let Some(path) = pidfile {
        // Only if it is still ours: never another daemon's that refused our start.
        let ours = format!("{}\n", std::process::id());
        if std::fs::read_to_string(&path).is_ok_and(|s| s == ours) {
            let _ = std::fs::remove_file(path);
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not only a log event: RUST_LOG may filter errors out, this must always show.
            eprintln!("ngmedia: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut settings: Settings) -> anyhow::Result<()> {
    // Certificates and keys are read before anything is bound, so a bad file fails start-up
    // without taking (even briefly) a port another daemon may want.
    let https_tls = match &settings.transports.https {
        Some(https) => {
            let files = tls::TlsFiles {
                cert: https.cert.clone(),
                key: https.key.clone(),
                ca: None,
            };
            let config = tls::server_config(&files).context("HTTPS certificate")?;
            Some((https.listen, tokio_rustls::TlsAcceptor::from(config)))
        }
        None => None,
    };
    let (li_server_tls, li_client_tls) = match &settings.li.tls {
        Some(files) => (
            Some(tls::server_config(files).context("LI TLS")?),
            tls::client_config(files).context("LI TLS")?,
        ),
        None => (None, None),
    };
    let dtls = match &settings.dtls {
        Some((cert, key)) => Some(Arc::new(load_dtls_identity(cert, key)?)),
        None => None,
    };
    // So is the CA file of an https webhook (its delivery thread waits for events).
    let events = match settings.webhook.clone() {
        Some(target) => Some(Events::start(target).context("cannot start call events")?),
        None => None,
    };
    let ng_socket = StdUdpSocket::bind(settings.listen_ng)
        .with_context(|| format!("cannot listen for ng on {}", settings.listen_ng))?;
    ng_socket
        .set_nonblocking(true)
        .context("cannot make the ng socket non-blocking")?;
    let http_listener = StdTcpListener::bind(settings.listen_http)
        .with_context(|| format!("cannot listen for HTTP on {}", settings.listen_http))?;
    http_listener
        .set_nonblocking(true)
        .context("cannot make the HTTP listener non-blocking")?;
    // ng over TCP and the HTTPS listener are bound the same way.
    let tcp_ng_listener = match settings.transports.listen_tcp_ng {
        Some(addr) => Some(bind_tcp(addr, "ng over TCP")?),
        None => None,
    };
    let https = match https_tls {
        Some((listen, acceptor)) => Some((bind_tcp(listen, "HTTPS")?, acceptor)),
        None => None,
    };
    // LI: the listener is bound like the others; its TLS material was read above.
    let li_listener = match settings.li.listen {
        Some(addr) => {
            let l = StdTcpListener::bind(addr)
                .with_context(|| format!("cannot listen for LI on {addr}"))?;
            l.set_nonblocking(true)
                .context("cannot make the LI listener non-blocking")?;
            Some(l)
        }
        None => None,
    };
    if let Some(path) = &settings.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;

    // `--webhook-dtmf`: the workers' DTMF reports come to a loopback socket of ours, which
    // passes each on to --dtmf-log-dest (if set) unchanged and publishes it as an event.
    let dtmf_relay = match (&settings.webhook, settings.webhook_dtmf) {
        (Some(_), true) => {
            let sock = StdUdpSocket::bind(("127.0.0.1", 0))
                .context("cannot bind the DTMF report socket")?;
            let onward = settings.engine.dtmf_log_dest;
            settings.engine.dtmf_log_dest = Some(sock.local_addr()?);
            Some((sock, onward))
        }
        _ => None,
    };
    let engine = Arc::new(settings.engine);
    let workers = MediaWorkers::start(&engine).context("cannot start the media workers")?;
    // The recorder runs on its own thread behind the workers' bounded tap queue; a bad
    // recording folder fails recordings, never the daemon or its calls.
    let (recorder, tap) = Recorder::start(RecorderConfig {
        dir: settings.recording.dir.clone(),
        format: settings.recording.format,
        per_party: settings.recording.per_party,
        queue: RECORDING_QUEUE,
    })
    .context("cannot start the recorder")?;
    workers.set_tap(Some(tap));
    let media = Arc::new(
        MediaLibrary::open(
            &settings.media.dir,
            settings.media.max_bytes,
            settings.media.max_seconds,
            &settings.media.play_dirs,
        )
        .with_context(|| {
            format!(
                "cannot open the media library in {}",
                settings.media.dir.display()
            )
        })?,
    );
    // Our DTLS certificate: the configured one, else one made for this run.
    let mut registry = match dtls {
        Some(identity) => {
            Calls::with_dtls_identity(engine.clone(), workers.clone(), Some(identity))
        }
        None => Calls::new(engine.clone(), workers.clone()),
    };
    registry.set_recorder(recorder.clone());
    registry.set_media_loader(media.clone());
    // Interception and forwarding share one consumer behind their own tap queue; it exists
    // only when one of them is configured.
    let interceptor = if li_listener.is_some() || settings.forward_to.is_some() {
        let (interceptor, itap) = Interceptor::start(LiSettings {
            dir: li_listener.as_ref().map(|_| settings.li.dir.clone()),
            tls_client: li_client_tls.clone(),
            forward_to: settings.forward_to,
            keepalive: LI_KEEPALIVE,
        })
        .context("cannot start lawful interception")?;
        workers.set_intercept_tap(Some(itap));
        registry.set_interceptor(interceptor.clone());
        Some(interceptor)
    } else {
        None
    };
    // Homer capture: RTCP copies from the workers, ng traces from the UDP server.
    let homer = match settings.homer.clone() {
        Some(homer_settings) => {
            let (homer, rtcp_tap) =
                Homer::start(homer_settings).context("cannot start Homer capture")?;
            workers.set_rtcp_tap(rtcp_tap);
            Some(homer)
        }
        None => None,
    };
    if let Some(events) = &events {
        let publish = events.clone();
        recorder.set_on_finished(Box::new(move |meta| publish.recording_finished(meta)));
        if let Some((sock, onward)) = dtmf_relay {
            let publish = events.clone();
            std::thread::Builder::new()
                .name("dtmf-events".into())
                .spawn(move || relay_dtmf(&sock, onward, &publish))
                .context("cannot start the DTMF event thread")?;
        }
    }
    // Before anything binds: bad TLS files stop the start; the broker itself may come later.
    let mqtt = match settings.mqtt.clone() {
        Some(config) => Some(Mqtt::start(config).context("cannot start MQTT publishing")?),
        None => None,
    };

    let calls = Arc::new(Mutex::new(registry));
    let li = match (li_listener, &interceptor) {
        (Some(listener), Some(interceptor)) => {
            let audit = li::audit::AuditLog::open(&settings.li.dir.join("audit.log"))
                .context("cannot open the LI audit log")?;
            let refresh_calls = calls.clone();
            Some(Li {
                listener,
                tls: li_server_tls.map(tokio_rustls::TlsAcceptor::from),
                state: Arc::new(LiState {
                    li: interceptor.clone(),
                    audit,
                    token: settings.li.token.as_deref().and_then(li::api::LiToken::new),
                    refresh: Arc::new(move || lock(&refresh_calls).refresh_intercepts()),
                    tls_delivery: li_client_tls.is_some(),
                }),
            })
        }
        _ => None,
    };

    // Redis HA: this instance's stored calls are restored before ng is answered.
    let ha = match settings.ha {
        Some(config) => Some(
            runtime
                .block_on(ha::start(config, calls.clone()))
                .context("cannot start high availability")?,
        ),
        None => None,
    };

    let interfaces: Vec<String> = engine
        .interfaces
        .iter()
        .map(|i| DisplayInterface(i).to_string())
        .collect();
    let mut ng_on = format!("udp {}", settings.listen_ng);
    if let Some(addr) = settings.transports.listen_tcp_ng {
        ng_on.push_str(&format!(", tcp {addr}"));
    }
    if settings.transports.http_ng != HttpNgAccess::Off {
        ng_on.push_str(&format!(
            ", http/ws ({})",
            settings.transports.http_ng.as_str()
        ));
    }
    let mut http_on = format!("http://{}", settings.listen_http);
    if let Some(https) = &settings.transports.https {
        http_on.push_str(&format!(" and https://{}", https.listen));
    }
    info!(
        "ngmedia {} ready: ng on {}, HTTP on {} (writes {}), media ports {}-{} on {}",
        env!("CARGO_PKG_VERSION"),
        ng_on,
        http_on,
        if settings.http_token.is_some() {
            "need the bearer token"
        } else {
            "open on loopback"
        },
        engine.port_min,
        engine.port_max,
        interfaces.join(", ")
    );
    if let Some(path) = &settings.config_file {
        info!("configuration read from {}", path.display());
    }

    let http = Http {
        listener: http_listener,
        token: settings.http_token,
        started,
        recordings: recorder.store().clone(),
        recorder: recorder.clone(),
        workers: workers.clone(),
        media,
        li_tasks: interceptor
            .as_ref()
            .filter(|i| i.administered())
            .map(|i| i.active_gauge()),
        ha: ha.as_ref().map(|ha| ha.metrics()),
        homer: homer.clone(),
        events: events.clone(),
        mqtt: mqtt.clone(),
        https,
        http_ng: settings.transports.http_ng,
    };
    let limits = Arc::new(LoadLimits::new(settings.load_limits));
    let ng = Ng {
        socket: ng_socket,
        tcp: tcp_ng_listener,
        limits,
        rate_limit: settings.transports.ng_rate_limit,
        homer,
        events: events.clone(),
        quality_watch: settings.mos_alarm.map(QualityWatch::new),
        mqtt: mqtt.clone(),
    };
    let result = runtime.block_on(serve(ng, http, li, calls.clone()));

    // Whether we stop on a signal or on an error: end calls cleanly so their ports are
    // released and their final statistics logged, then stop the packet path. With Redis the
    // calls are handed over instead: their final state is saved for the restarted engine or
    // a standby, which relays them on.
    let open = lock(&calls).len();
    let handed_over = lock(&calls).shutdown(now());
    if let Some(ha) = ha {
        runtime.block_on(ha.shutdown(handed_over));
    }
    workers.shutdown();
    // After the workers: every copy they queued is written before the files are closed.
    recorder.shutdown();
    if let Some(interceptor) = &interceptor {
        interceptor.shutdown();
    }
    let signal = result?;
    if handed_over > 0 {
        let closed = open - handed_over;
        info!("stopped after {signal}: handed {handed_over} call(s) over through redis, closed {closed}");
    } else {
        info!("stopped after {signal}: closed {open} call(s)");
    }
    Ok(())
}

/// What the HTTP API needs from startup.
struct Http {
    listener: StdTcpListener,
    token: Option<http::auth::BearerToken>,
    started: Instant,
    recordings: RecordingStore,
    recorder: Arc<Recorder>,
    workers: Arc<MediaWorkers>,
    media: Arc<MediaLibrary>,
    li_tasks: Option<Arc<std::sync::atomic::AtomicUsize>>,
    ha: Option<Arc<ha::HaMetrics>>,
    homer: Option<Arc<Homer>>,
    events: Option<Arc<Events>>,
    mqtt: Option<Arc<Mqtt>>,
    /// `--listen-https` and its TLS acceptor.
    https: Option<(StdTcpListener, tokio_rustls::TlsAcceptor)>,
    http_ng: HttpNgAccess,
}

/// The ng transports and load limits.
struct Ng {
    socket: StdUdpSocket,
    /// `--listen-tcp-ng`.
    tcp: Option<StdTcpListener>,
    limits: Arc<LoadLimits>,
    /// `--ng-rate-limit`.
    rate_limit: Option<u32>,
    /// `--homer-enable-ng`: requests and replies are traced here.
    homer: Option<Arc<Homer>>,
    /// `--webhook-url`: call events.
    events: Option<Arc<Events>>,
    /// `--mos-alarm`: streams checked every tick.
    quality_watch: Option<QualityWatch>,
    /// `--mqtt-host`: statistics published every `--mqtt-publish-interval`.
    mqtt: Option<Arc<Mqtt>>,
}

/// SIGHUP: re-read what an operator may have changed on disk without a restart.
fn reload(media: &MediaLibrary) {
    systemd::notify("RELOADING=1");
    if let Err(e) = media.reload() {
        warn!("SIGHUP: cannot reload the media library, keeping the old index: {e}");
    }
    systemd::notify("READY=1");
}

/// The LI listener, when configured.
struct Li {
    listener: StdTcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<LiState>,
}

/// Answer ng and HTTP and tick timers until SIGTERM or SIGINT; returns the signal's name.
/// SIGHUP reloads the media library.
async fn serve(
    ng: Ng,
    http: Http,
    li: Option<Li>,
    calls: Arc<Mutex<Calls>>,
) -> anyhow::Result<&'static str> {
    // Handlers go in before the first ng reply: once a supervisor sees us answer `ping`, a
    // SIGTERM must take the clean path, never the default action.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let media = http.media.clone();
    let socket =
        tokio::net::UdpSocket::from_std(ng.socket).context("cannot register the ng socket")?;
    let workers = http.workers.clone();
    let listener = tokio::net::TcpListener::from_std(http.listener)
        .context("cannot register the HTTP listener")?;

    let stop = Arc::new(Notify::new());
    let stopped = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let limits = ng.limits;
    let tcp = ng.tcp;
    let rate_limit = ng.rate_limit;
    let homer_ng = ng.homer;
    let events = ng.events;
    let mut quality_watch = ng.quality_watch;
    let mqtt = ng.mqtt;
    let mut ng = NgServer::new(calls.clone());
    ng.set_load_limits(limits.clone());
    ng.set_rate_limit(rate_limit);
    ng.set_homer(homer_ng);
    ng.set_events(events.clone());
    let ng_handle = ng.handle();
    let app = http::router(Arc::new(ApiState {
        calls: calls.clone(),
        ng: ng.metrics(),
        token: http.token,
        started: http.started,
        recordings: Some(http.recordings),
        recorder: Some(http.recorder),
        workers: Some(http.workers),
        media: Some(http.media),
        li_tasks: http.li_tasks,
        ha: http.ha,
        homer: http.homer,
        events: http.events,
        mqtt: http.mqtt,
        ng_http: (http.http_ng != HttpNgAccess::Off).then(|| http::ng::HttpNg {
            handle: ng_handle.clone(),
            access: http.http_ng,
        }),
        limits: Some(limits.clone()),
    }));
    let server = ng.run(socket, stopped);
    tokio::pin!(server);
    // Spawned rather than selected on: each connection is its own task anyway, and the
    // accept loop only returns once told to stop.
    let http_stop = Arc::new(Notify::new());
    let http_server = {
        let stop = http_stop.clone();
        tokio::spawn(http::serve(listener, app.clone(), None, async move {
            stop.notified().await
        }))
    };
    tokio::pin!(http_server);
    // The HTTPS listener and ng over TCP stop with the others; a failure of either is logged
    // and leaves the rest of the daemon running.
    let https_stop = Arc::new(Notify::new());
    if let Some((listener, acceptor)) = http.https {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("cannot register the HTTPS listener")?;
        let stop = https_stop.clone();
        tokio::spawn(async move {
            let served = http::serve(listener, app, Some(acceptor), async move {
                stop.notified().await
            });
            if let Err(e) = served.await {
                warn!(error = %e, "HTTPS listener failed");
            }
        });
    }
    let tcp_stop = Arc::new(Notify::new());
    if let Some(listener) = tcp {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("cannot register the ng TCP listener")?;
        let stop = tcp_stop.clone();
        let handle = ng_handle.clone();
        tokio::spawn(async move {
            let served =
                ngmedia_control::ng::tcp::serve(
                    listener,
                    handle,
                    async move { stop.notified().await },
                );
            if let Err(e) = served.await {
                warn!(error = %e, "ng TCP listener failed");
            }
        });
    }
    if let Some(mqtt) = mqtt {
        tokio::spawn(publish_mqtt(mqtt, ng_handle.clone(), calls.clone()));
    }
    if limits.samples_system() || limits.samples_bandwidth() || limits.samples_workers() {
        tokio::spawn(sample_load(limits, workers));
    }
    // The LI listener stops with the others; its failures are not logged (LI is invisible in
    // the ordinary log) and do not stop the daemon.
    let li_stop = Arc::new(Notify::new());
    if let Some(li) = li {
        let listener = tokio::net::TcpListener::from_std(li.listener)
            .context("cannot register the LI listener")?;
        let app = ngmedia_control::li::api::router(li.state.clone());
        let stop = li_stop.clone();
        tokio::spawn(ngmedia_control::li::api::serve(
            listener,
            app,
            li.tls,
            li.state,
            async move { stop.notified().await },
        ));
    }

    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Every listener is registered and the ng socket queues what arrives: ready.
    systemd::notify("READY=1");
    let signal = loop {
        tokio::select! {
            result = &mut server => {
                result.context("ng server failed")?;
                anyhow::bail!("ng server stopped unexpectedly");
            }
            result = &mut http_server => {
                result.context("HTTP server panicked")?.context("HTTP server failed")?;
                anyhow::bail!("HTTP server stopped unexpectedly");
            }
            _ = ticker.tick() => {
                tick(&calls, events.as_deref());
                if let (Some(watch), Some(events)) = (quality_watch.as_mut(), events.as_deref()) {
                    watch_quality(&calls, watch, events);
                }
            }
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => reload(&media),
        }
    };
    systemd::notify("STOPPING=1");
    info!("{signal} received: no longer accepting ng or HTTP requests, closing calls");
    // notify_one keeps a permit if the server is not waiting at this moment.
    stop.notify_one();
    http_stop.notify_one();
    https_stop.notify_one();
    tcp_stop.notify_one();
    li_stop.notify_one();
    // Both servers wind down together, within one grace period.
    let stopping = async {
        tokio::join!(server, async {
            match (&mut http_server).await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            }
        })
    };
    match tokio::time::timeout(SERVER_STOP_GRACE, stopping).await {
        Ok((ng, http)) => {
            ng.context("ng server failed while stopping")?;
            if let Err(e) = http {
                warn!("HTTP server failed while stopping: {e:#}");
            }
        }
        Err(_) => {
            http_server.abort();
            warn!("servers did not stop within {SERVER_STOP_GRACE:?}; closing calls anyway")
        }
    }
    Ok(signal)
}

/// Feed the load-limit gauge: load average, CPU usage and the media workers' busy time every
/// 0.5 s, received bandwidth every second (rtpengine's `load_thread` and per-second rates).
/// Runs for the daemon's life.
async fn sample_load(limits: Arc<LoadLimits>, workers: Arc<MediaWorkers>) {
    use ngmedia_control::load_limits::{
        parse_loadavg, BandwidthSampler, CpuSampler, WorkerLoadSampler, BANDWIDTH_SAMPLE_PERIOD,
        LOAD_SAMPLE_PERIOD,
    };
    use ngmedia_engine::core::plan::MediaPlane;
    use std::sync::atomic::Ordering::Relaxed;

    let mut cpu = CpuSampler::default();
    let mut bandwidth = BandwidthSampler::default();
    let mut worker_load = WorkerLoadSampler::default();
    let mut warned = false;
    let mut ticker = tokio::time::interval(LOAD_SAMPLE_PERIOD);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let bandwidth_every =
        (BANDWIDTH_SAMPLE_PERIOD.as_millis() / LOAD_SAMPLE_PERIOD.as_millis()).max(1) as u64;
    let mut tick: u64 = 0;
    loop {
        ticker.tick().await;
        // /proc reads are a few microseconds; no need for a blocking thread.
        if limits.samples_load() {
            match std::fs::read_to_string("/proc/loadavg")
                .ok()
                .as_deref()
                .and_then(parse_loadavg)
            {
                Some(load) => limits.gauge.load_x100.store(load, Relaxed),
                None if !warned => {
                    warned = true;
                    warn!(
                        "cannot read the load average from /proc/loadavg: --max-load has no effect"
                    )
                }
                None => {}
            }
        }
        if limits.samples_cpu() {
            let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
            if let Some(usage) = cpu.sample(&text) {
                limits.gauge.cpu_x100.store(usage, Relaxed);
            }
        }
        if limits.samples_workers() {
            let loads = workers.loads();
            let busy = loads.iter().map(|&(busy_ns, _)| busy_ns);
            if let Some(share) = worker_load.sample(Instant::now(), busy) {
                limits.gauge.worker_busy_x100.store(share, Relaxed);
            }
        }
        if limits.samples_bandwidth() && tick.is_multiple_of(bandwidth_every) {
            let t = workers.totals();
            let total = t.rtp_bytes.saturating_add(t.rtcp_bytes);
            if let Some(rate) = bandwidth.sample(Instant::now(), total) {
                limits.gauge.bandwidth.store(rate, Relaxed);
            }
        }
        tick = tick.wrapping_add(1);
    }
}

/// Bind a TCP listener for the control runtime.
fn bind_tcp(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<StdTcpListener> {
    let listener = StdTcpListener::bind(addr)
        .with_context(|| format!("cannot listen for {what} on {addr}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("cannot make the {what} listener non-blocking"))?;
    Ok(listener)
}

/// One timer pass; events are logged (and published) after the registry lock is released.
fn tick(calls: &Mutex<Calls>, publish: Option<&Events>) {
    let events = lock(calls).tick(now());
    for event in events {
        match event {
            CallEvent::TimedOut { call_id, reason } => {
                info!(call_id = %Pii(&call_id), reason, "call ended by timeout");
                if let Some(p) = publish {
                    p.ended(&call_id, EndReason::Timeout(reason));
                }
            }
            CallEvent::Purged { call_id } => {
                debug!(call_id = %Pii(&call_id), "deleted call purged");
                if let Some(p) = publish {
                    p.ended(&call_id, EndReason::Deleted);
                }
            }
        }
    }
}

/// Every call held now. The registry lock is taken per call, so signalling is never held
/// up for long.
fn call_snapshots(calls: &Mutex<Calls>) -> Vec<CallSnapshot> {
    let ids = lock(calls).list(&List { limit: usize::MAX });
    let now = now();
    ids.into_iter()
        .filter_map(|call_id| {
            lock(calls)
                .query(
                    &Query {
                        call_id,
                        ..Default::default()
                    },
                    now,
                )
                .ok()
        })
        .collect()
}

/// `--mqtt-*`: every interval, the `statistics` figures (from the ng server, which owns the
/// control counters) and the calls the scope asks for go to the MQTT thread's queue. Runs
/// until the ng server stops.
async fn publish_mqtt(mqtt: Arc<Mqtt>, ng: NgHandle, calls: Arc<Mutex<Calls>>) {
    let mut ticker = tokio::time::interval(mqtt.interval());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rates = SsrcRates::default();
    loop {
        ticker.tick().await;
        let Some(statistics) = ng.statistics().await else {
            return;
        };
        let snapshots = if mqtt.scope().needs_calls() {
            call_snapshots(&calls)
        } else {
            Vec::new()
        };
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        mqtt.publish_round(
            &mut rates,
            &statistics,
            &snapshots,
            unix_secs,
            Instant::now(),
        );
    }
}

/// `--mos-alarm`: raise `quality.alarm` for streams whose MOS fell below the threshold.
fn watch_quality(calls: &Mutex<Calls>, watch: &mut QualityWatch, events: &Events) {
    let snapshots = call_snapshots(calls);
    for alarm in watch.scan(&snapshots) {
        info!(call_id = %Pii(&alarm.call_id), mos = alarm.mos, "call quality below --mos-alarm");
        events.quality_alarm(&alarm);
    }
}

/// `--webhook-dtmf`: every DTMF report of the workers goes on to --dtmf-log-dest unchanged
/// and becomes a `dtmf` event. Runs until the process exits.
fn relay_dtmf(sock: &StdUdpSocket, onward: Option<std::net::SocketAddr>, events: &Events) {
    let out = onward.and_then(|dest| {
        let any: std::net::SocketAddr = if dest.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let out = StdUdpSocket::bind(any).and_then(|o| o.connect(dest).map(|()| o));
        if let Err(e) = &out {
            warn!(error = %e, "cannot reach --dtmf-log-dest: DTMF reports go to the webhook only");
        }
        out.ok()
    });
    let mut buf = [0u8; 4096];
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "DTMF report socket failed: no more dtmf events");
                return;
            }
        };
        if let Some(out) = &out {
            let _ = out.send(&buf[..n]);
        }
        match serde_json::from_slice::<serde_json::Value>(&buf[..n]) {
            Ok(report) => events.dtmf(&report),
            Err(e) => debug!(error = %e, "unreadable DTMF report"),
        }
    }
}

/// `--codecs`: what `codec-transcode` and friends can name, as rtpengine lists its own.
fn print_codecs() {
    let mut seen = Vec::new();
    for def in &ngmedia_codecs::CODECS {
        let line = format!("{}/{}/{}", def.name, def.clock_rate, def.channels);
        if !seen.contains(&line) {
            println!("{line}: transcoding supported");
            seen.push(line);
        }
    }
}

/// The DTLS-SRTP certificate of `--dtls-cert`/`--dtls-key`.
fn load_dtls_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<DtlsIdentity> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read DTLS file {}", p.display()))
    };
    DtlsIdentity::from_pem(&read(cert)?, &read(key)?).with_context(|| {
        format!(
            "DTLS certificate {} / key {}",
            cert.display(),
            key.display()
        )
    })
}
