//! The recorder thread (rtpengine: `rtpengine-recording`, fed here in-process instead of
//! through the kernel's recording spool).
//!
//! One thread owns every recording: it takes packet copies from the engine's tap queue and
//! events from the call registry, decodes each stream, places the audio on the call's
//! timeline by RTP timestamp ([`crate::timeline`]), and writes audio a short jitter window
//! behind real time, so reordered packets still land in place. Nothing here can slow the
//! packet path: when this thread falls behind, the workers skip copies and count them.
//!
//! This file holds the public types and the state of the thread and its recordings; the
//! work is in submodules: `worker` (the thread's loop and events), `call` (decoding and
//! mixing a call's packets), `files` (writing, closing and renaming a recording's files) and
//! `metadata` (the JSON sidecar).

use ngmedia_engine::sync::lock;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ngmedia_codecs::Decoder;
use ngmedia_engine::core::plan::CallKey;
use ngmedia_engine::core::tap::{
    tap_queue, RecordingEvent, RecordingSink, TapCall, TapSender, TapStream,
};
use serde_json::Value;
use tracing::warn;

use crate::pcap::PcapWriter;
use crate::rate::StreamRate;
use crate::store::RecordingStore;
use crate::timeline::{SeqCounter, StreamTimeline};

mod call;
mod files;
mod metadata;
mod worker;

/// Largest decoded packet: 120 ms of 48 kHz stereo.
const MAX_DECODED: usize = 48 * 120 * 2;

/// Which files a recording produces besides the JSON sidecar (`--recording-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingFormat {
    #[default]
    Wav,
    Pcap,
    Both,
}

impl RecordingFormat {
    pub fn parse(s: &str) -> Option<RecordingFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wav" => Some(RecordingFormat::Wav),
            "pcap" => Some(RecordingFormat::Pcap),
            "both" => Some(RecordingFormat::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::Pcap => "pcap",
            RecordingFormat::Both => "both",
        }
    }

    fn wav(self) -> bool {
        self != RecordingFormat::Pcap
    }

    fn pcap(self) -> bool {
        self != RecordingFormat::Wav
    }
}

/// How the recorder runs.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub dir: PathBuf,
    pub format: RecordingFormat,
    /// Also write one mono WAV per party (`ID-caller.wav`, `ID-callee.wav`).
    pub per_party: bool,
    /// Capacity of the tap queue (packet copies in flight).
    pub queue: usize,
}

/// Lifetime counters, readable while the recorder runs.
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    /// Recordings stopped by a write error (disk full, permissions).
    pub failed: AtomicU64,
    pub packets: AtomicU64,
    /// Copies of calls the recorder does not record (arrived after the stop).
    pub unknown: AtomicU64,
    /// Packets too late for the jitter window, or undecodable.
    pub discarded: AtomicU64,
    /// Bytes written to recording files (WAV, pcap, metadata).
    pub bytes: AtomicU64,
    /// Recordings open now (recording, paused, or closing after a stop).
    pub active: AtomicU64,
}

enum Ctl {
    Event(RecordingEvent),
    Shutdown,
}

/// The recording sink the binary wires into the registry and the media workers.
pub struct Recorder {
    ctl: Mutex<Sender<Ctl>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<RecorderStats>,
    store: RecordingStore,
    live: Live,
    on_finished: Hook,
}

/// Called by the recorder thread with the metadata of every recording it finalizes
/// (`--webhook-url`'s `recording.finished`).
pub(crate) type FinishedHook = Box<dyn Fn(&Value) + Send>;

/// Where the recorder thread finds the hook, set once the daemon wired its events.
type Hook = Arc<Mutex<Option<FinishedHook>>>;

/// Summaries of the recordings in progress, republished by the recorder thread on every
/// start/pause/stop/close (never per packet) for `GET /recordings`.
type Live = Arc<Mutex<Vec<Value>>>;

impl RecordingSink for Recorder {
    fn event(&self, event: RecordingEvent) {
        let _ = lock(&self.ctl).send(Ctl::Event(event));
    }
}

impl Recorder {
    /// Start the recorder thread; the returned sender goes to the media workers.
    pub fn start(config: RecorderConfig) -> io::Result<(Arc<Recorder>, TapSender)> {
        if let Err(e) = fs::create_dir_all(&config.dir) {
            // Not fatal: recordings will fail (and say why) while calls go on.
            warn!(dir = %config.dir.display(), error = %e, "recording folder unusable");
        }
        let (tap_tx, tap_rx) = tap_queue(config.queue);
        let (ctl_tx, ctl_rx) = mpsc::channel();
        let stats = Arc::new(RecorderStats::default());
        let store = RecordingStore::new(&config.dir);
        let live = Live::default();
        let on_finished = Hook::default();
        let mut worker = Worker {
            live: live.clone(),
            on_finished: on_finished.clone(),
            config,
            store: store.clone(),
            stats: stats.clone(),
            calls: HashMap::new(),
            scratch: vec![0; MAX_DECODED],
            mono: Vec::with_capacity(MAX_DECODED),
            out: Vec::with_capacity(MAX_DECODED * 6),
            stopping: false,
        };
        let thread = std::thread::Builder::new()
            .name("ngmedia-recorder".into())
            .spawn(move || worker.run(tap_rx, ctl_rx))?;
        Ok((
            Arc::new(Recorder {
                ctl: Mutex::new(ctl_tx),
                thread: Mutex::new(Some(thread)),
                stats,
                store,
                live,
                on_finished,
            }),
            tap_tx,
        ))
    }

    /// Call `hook` with the metadata (the JSON sidecar) of every recording finalized from
    /// now on, finished or failed, on the recorder thread.
    pub fn set_on_finished(&self, hook: FinishedHook) {
        *lock(&self.on_finished) = Some(hook);
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    pub fn store(&self) -> &RecordingStore {
        &self.store
    }

    /// The recordings not finalized yet: `id`, `call_id`, `state` (`recording`, `paused`,
    /// `stopping`), `start_ms`, `sample_rate` (once known), `error` if one stopped it.
    pub fn in_progress(&self) -> Vec<Value> {
        lock(&self.live).clone()
    }

    /// Write every queued copy, finalize every recording and stop the thread. Call after the
    /// media workers stopped. Idempotent.
    pub fn shutdown(&self) {
        let _ = lock(&self.ctl).send(Ctl::Shutdown);
        let handle = lock(&self.thread).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                warn!("recorder thread panicked");
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The recorder thread's state.
struct Worker {
    config: RecorderConfig,
    store: RecordingStore,
    stats: Arc<RecorderStats>,
    calls: HashMap<CallKey, CallRec>,
    scratch: Vec<i16>,
    mono: Vec<i16>,
    out: Vec<i16>,
    /// Shutdown was asked for while handling a packet.
    stopping: bool,
    live: Live,
    /// `Recorder::set_on_finished`.
    on_finished: Hook,
}

/// One stream (party × m= line) of a recorded call.
struct StreamRec {
    timeline: StreamTimeline,
    /// Decoders by payload type; `None`: not audio we can decode (events, CN, unknown).
    decoders: Vec<(u8, Option<(Decoder, String)>)>,
    ssrcs: BTreeMap<u32, SeqCounter>,
    codecs: BTreeSet<String>,
    packets: u64,
    discarded: u64,
    /// Conversion to the output rate at the current decoder rate.
    rate: Option<StreamRate>,
    /// The converter of the previous decoder rate until its tail is mixed in.
    old_rate: Option<StreamRate>,
}

/// The open files of a recording.
struct Files {
    mix: Option<hound::WavWriter<BufWriter<File>>>,
    parties: Vec<hound::WavWriter<BufWriter<File>>>,
}

/// One recorded call (rtpengine: a recording daemon `metafile`).
struct CallRec {
    id: String,
    info: TapCall,
    start_ms: u64,
    /// Output sample rate, fixed at the first packet.
    rate: Option<u32>,
    paused_since: Option<u64>,
    pauses: Vec<(u64, u64)>,
    stop_ms: Option<u64>,
    close_at: Option<Instant>,
    streams: BTreeMap<TapStream, StreamRec>,
    /// Pending audio per channel (left = caller, right = callee) from `written` on.
    pending: [Vec<i16>; 2],
    /// Output samples already written to the files.
    written: i64,
    files: Option<Files>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    pcap_failed: bool,
    failed: Option<String>,
    stats: Arc<RecorderStats>,
}

#[cfg(test)]
mod tests;
