//! The recorder thread (rtpengine: `rtpengine-recording`, fed here in-process instead of
//! through the kernel's recording spool).
//!
//! One thread owns every recording: it takes packet copies from the engine's tap queue and
//! events from the call registry, decodes each stream, places the audio on the call's
//! timeline by RTP timestamp ([`crate::timeline`]), and writes audio a short jitter window
//! behind real time, so reordered packets still land in place. Nothing here can slow the
//! packet path: when this thread falls behind, the workers skip copies and count them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngmedia_codecs::{Codec, CodecKind, Decoder};
use ngmedia_engine::core::plan::CallKey;
use ngmedia_engine::core::tap::{
    tap_queue, RecordingEvent, RecordingSink, TapCall, TapCodec, TapPacket, TapReceiver, TapSender, TapStream,
};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::pcap::PcapWriter;
use crate::rate::StreamRate;
use crate::store::{RecordingStore, META_SUFFIX, MIX_SUFFIX, PCAP_SUFFIX};
use crate::timeline::{SeqCounter, StreamTimeline};
use crate::RecordingError;

/// Audio is written this far behind the newest arrival, so packets up to this late still
/// land in place; later ones are counted and dropped.
const JITTER_MS: u64 = 300;
/// After `Stop`, packets already on their way (queued by a worker that had not yet applied
/// the plan without tap) are still taken for this long before the files are closed.
const STOP_GRACE: Duration = Duration::from_millis(150);
/// Audio written past the stop time at most (the last packet's duration and clock skew).
const STOP_SLACK_MS: u64 = 200;
/// How often the thread writes audio when no packets arrive.
const TICK: Duration = Duration::from_millis(20);
/// A packet placed this far beyond the written position is bogus (a stream timestamp jump
/// the timeline did not catch); it is dropped instead of allocating a huge buffer.
const MAX_AHEAD_MS: u64 = 10_000;
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
}

/// Summaries of the recordings in progress, republished by the recorder thread on every
/// start/pause/stop/close (never per packet) for `GET /recordings`.
type Live = Arc<Mutex<Vec<Value>>>;

impl RecordingSink for Recorder {
    fn event(&self, event: RecordingEvent) {
        let _ = self
            .ctl
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Ctl::Event(event));
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
        let mut worker = Worker {
            live: live.clone(),
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
            }),
            tap_tx,
        ))
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
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Write every queued copy, finalize every recording and stop the thread. Call after the
    /// media workers stopped. Idempotent.
    pub fn shutdown(&self) {
        let _ = self
            .ctl
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Ctl::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
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
}

impl Worker {
    fn run(&mut self, tap: TapReceiver, ctl: Receiver<Ctl>) {
        let mut tap_open = true;
        let mut last_tick = Instant::now();
        loop {
            if self.stopping || !self.handle_ctl(&ctl) {
                break;
            }
            if tap_open {
                match tap.recv_timeout(TICK) {
                    Ok(p) => self.packet_or_events(p, &ctl),
                    Err(true) => tap_open = false,
                    Err(false) => {}
                }
            } else {
                match ctl.recv_timeout(TICK) {
                    Ok(Ctl::Event(e)) => self.event(e),
                    Ok(Ctl::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick(unix_ms(), Instant::now());
            }
        }
        // Shutdown: every queued copy is written, then every recording finalized.
        while let Ok(Ctl::Event(e)) = ctl.try_recv() {
            self.event(e);
        }
        while let Some(p) = tap.try_recv() {
            self.packet(p);
        }
        let now = unix_ms();
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            if let Some(mut rec) = self.calls.remove(&key) {
                let stop = rec.stop_ms.unwrap_or(now);
                self.finalize(&mut rec, stop);
            }
        }
        self.publish();
    }

    /// Apply queued control events; false on shutdown.
    fn handle_ctl(&mut self, ctl: &Receiver<Ctl>) -> bool {
        loop {
            match ctl.try_recv() {
                Ok(Ctl::Event(e)) => self.event(e),
                Ok(Ctl::Shutdown) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// A packet of a call not known yet may have overtaken its `Start` event.
    fn packet_or_events(&mut self, p: Box<TapPacket>, ctl: &Receiver<Ctl>) {
        if !self.calls.contains_key(&p.call) {
            while let Ok(c) = ctl.try_recv() {
                match c {
                    Ctl::Event(e) => self.event(e),
                    Ctl::Shutdown => self.stopping = true,
                }
            }
        }
        self.packet(p);
    }

    fn event(&mut self, event: RecordingEvent) {
        self.apply(event);
        self.publish();
    }

    /// Republish the in-progress list and the active gauge.
    fn publish(&self) {
        let mut list: Vec<Value> = self
            .calls
            .values()
            .map(|r| {
                let state = if r.stop_ms.is_some() {
                    "stopping"
                } else if r.paused_since.is_some() {
                    "paused"
                } else {
                    "recording"
                };
                json!({
                    "id": r.id,
                    "call_id": r.info.call_id,
                    "state": state,
                    "start_ms": r.start_ms,
                    "sample_rate": r.rate,
                    "error": r.failed,
                })
            })
            .collect();
        list.sort_by(|a, b| a["start_ms"].as_u64().cmp(&b["start_ms"].as_u64()));
        self.stats.active.store(list.len() as u64, Relaxed);
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = list;
    }

    fn apply(&mut self, event: RecordingEvent) {
        match event {
            RecordingEvent::Start { call, info, at_us } => {
                let at = at_us / 1000;
                if self.calls.get(&call).is_some_and(|r| r.stop_ms.is_some()) {
                    // Restarted while the previous recording was closing: close it now.
                    if let Some(mut old) = self.calls.remove(&call) {
                        let stop = old.stop_ms.unwrap_or(at);
                        self.finalize(&mut old, stop);
                    }
                }
                match self.calls.get_mut(&call) {
                    Some(rec) => {
                        if let Some(since) = rec.paused_since.take() {
                            rec.pauses.push((since, at));
                        }
                        rec.info = info;
                    }
                    None => {
                        let stem = info
                            .output_destination
                            .as_deref()
                            .map(|d| d.rsplit('/').next().unwrap_or(d))
                            .filter(|d| !d.is_empty())
                            .unwrap_or(&info.call_id)
                            .to_owned();
                        let id = self.store.new_id(&stem, at);
                        info!(call_id = %info.call_id, id = %id, "recording started");
                        self.stats.started.fetch_add(1, Relaxed);
                        self.calls
                            .insert(call, CallRec::new(id, info, at, self.stats.clone()));
                    }
                }
            }
            RecordingEvent::Pause { call, at_us } => {
                if let Some(rec) = self.calls.get_mut(&call) {
                    if rec.paused_since.is_none() && rec.stop_ms.is_none() {
                        rec.paused_since = Some(at_us / 1000);
                    }
                }
            }
            RecordingEvent::Stop { call, at_us } => {
                if let Some(rec) = self.calls.get_mut(&call) {
                    if rec.stop_ms.is_none() {
                        rec.stop_ms = Some(at_us / 1000);
                        rec.close_at = Some(Instant::now() + STOP_GRACE);
                    }
                }
            }
        }
    }

    fn packet(&mut self, p: Box<TapPacket>) {
        self.stats.packets.fetch_add(1, Relaxed);
        let Some(rec) = self.calls.get_mut(&p.call) else {
            self.stats.unknown.fetch_add(1, Relaxed);
            p.recycle();
            return;
        };
        // Counted even while paused: loss in the metadata is network loss.
        rec.count(&p);
        let paused = rec.paused_since.is_some_and(|s| p.arrival_ms >= s)
            || rec.stop_ms.is_some_and(|s| p.arrival_ms > s)
            || p.arrival_ms < rec.start_ms;
        if rec.failed.is_none() && !paused {
            if let Err(e) = rec.take(
                &p,
                &self.config,
                &self.store,
                &mut self.scratch,
                &mut self.mono,
                &mut self.out,
                &self.stats,
            ) {
                rec.fail(e, &self.stats);
            }
        }
        p.recycle();
    }

    /// Write what is out of the jitter window; close recordings whose grace ran out.
    fn tick(&mut self, now_ms: u64, now: Instant) {
        let mut closing = Vec::new();
        for (key, rec) in self.calls.iter_mut() {
            if rec.close_at.is_some_and(|t| now >= t) {
                closing.push(*key);
                continue;
            }
            if rec.failed.is_some() {
                continue;
            }
            let upto = now_ms.saturating_sub(JITTER_MS);
            if let Err(e) = rec.flush_to_ms(upto, &self.config, &self.store) {
                rec.fail(e, &self.stats);
            }
        }
        let closed = !closing.is_empty();
        for key in closing {
            if let Some(mut rec) = self.calls.remove(&key) {
                let stop = rec.stop_ms.unwrap_or(now_ms);
                self.finalize(&mut rec, stop);
            }
        }
        if closed {
            self.publish();
        }
    }

    fn finalize(&mut self, rec: &mut CallRec, stop_ms: u64) {
        match rec.finish(stop_ms, &self.config, &self.store) {
            Ok(()) if rec.failed.is_none() => {
                self.stats.finished.fetch_add(1, Relaxed);
                info!(call_id = %rec.info.call_id, id = %rec.id, "recording finished");
            }
            Ok(()) => {}
            Err(e) => {
                rec.fail(e, &self.stats);
                rec.cleanup(&self.store);
                // Best effort: say why in a sidecar, which also makes it listable.
                let _ = rec.write_metadata(stop_ms, &self.config, &self.store);
            }
        }
    }
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

impl CallRec {
    fn new(id: String, info: TapCall, start_ms: u64, stats: Arc<RecorderStats>) -> CallRec {
        CallRec {
            id,
            info,
            start_ms,
            rate: None,
            paused_since: None,
            pauses: Vec::new(),
            stop_ms: None,
            close_at: None,
            streams: BTreeMap::new(),
            pending: [Vec::new(), Vec::new()],
            written: 0,
            files: None,
            pcap: None,
            pcap_failed: false,
            failed: None,
            stats,
        }
    }

    fn fail(&mut self, e: RecordingError, stats: &RecorderStats) {
        if self.failed.is_none() {
            warn!(call_id = %self.info.call_id, id = %self.id, error = %e, "recording failed; the call goes on");
            stats.failed.fetch_add(1, Relaxed);
            self.failed = Some(e.to_string());
            self.files = None;
            self.pcap = None;
            self.pending = [Vec::new(), Vec::new()];
        }
    }

    /// The output rate: the highest PCM rate of the codec each party uses (its first codec
    /// the other party also has), so 8 kHz for G.711/G.729 calls and 48 kHz once a party
    /// uses Opus (decoded natively at 48 kHz). A 16 kHz codec (G.722, L16/16000) would give a
    /// 16 kHz recording through the same rule, but the codecs registry has none yet, so
    /// wideband recordings are 48 kHz today. Unknown codecs count as 8 kHz.
    fn choose_rate(&self) -> u32 {
        // Events and comfort noise say nothing about the audio's rate.
        let audio = |c: &&TapCodec| {
            !c.name.eq_ignore_ascii_case("telephone-event") && !c.name.eq_ignore_ascii_case("CN")
        };
        // The party's first codec its peer also has (an offer lists several); in a
        // transcoded call the lists do not meet, and the party's first audio codec is used.
        let used = |leg: usize| -> Option<&TapCodec> {
            let list = self.info.legs.get(leg)?.medias.first()?;
            let peer: Vec<String> = self
                .info
                .legs
                .get(1 - leg.min(1))
                .and_then(|o| o.medias.first())
                .map(|m| m.iter().filter(audio).map(|c| c.name.to_ascii_lowercase()).collect())
                .unwrap_or_default();
            list.iter()
                .filter(audio)
                .find(|c| peer.contains(&c.name.to_ascii_lowercase()))
                .or_else(|| list.iter().find(audio))
        };
        let pcm_rate = |c: &TapCodec| {
            Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref())
                .ok()
                .filter(|k| k.kind() != CodecKind::TelephoneEvent)
                .map_or(8_000, |k| k.def.pcm_rate)
        };
        let best = (0..self.info.legs.len().min(2))
            .filter_map(used)
            .map(pcm_rate)
            .max()
            .unwrap_or(8_000);
        // Snap to a rate the resampler and WAV players handle.
        match best {
            0..=8_000 => 8_000,
            8_001..=16_000 => 16_000,
            _ => 48_000,
        }
    }

    fn rate(&mut self) -> u32 {
        let r = match self.rate {
            Some(r) => r,
            None => self.choose_rate(),
        };
        self.rate = Some(r);
        r
    }

    /// Output position of a wall-clock time.
    fn pos_of_ms(&self, ms: u64, rate: u32) -> i64 {
        (ms.saturating_sub(self.start_ms) as i64) * i64::from(rate) / 1000
    }

    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        p: &TapPacket,
        config: &RecorderConfig,
        store: &RecordingStore,
        scratch: &mut [i16],
        mono: &mut Vec<i16>,
        out: &mut Vec<i16>,
        stats: &RecorderStats,
    ) -> Result<(), RecordingError> {
        if config.format.pcap() && !self.pcap_failed {
            if self.pcap.is_none() {
                let path = part(store, &self.id, PCAP_SUFFIX);
                let file = create_new(&path)?;
                self.pcap = Some(
                    PcapWriter::new(BufWriter::new(file))
                        .map_err(|e| RecordingError::Io(path, e))?,
                );
            }
            if let Some(w) = &mut self.pcap {
                self.stats
                    .bytes
                    .fetch_add(PCAP_RECORD_OVERHEAD + p.bytes().len() as u64, Relaxed);
                w.write_packet(p.arrival_ms, p.src, p.local, p.bytes())
                    .map_err(|e| RecordingError::Io(part(store, &self.id, PCAP_SUFFIX), e))?;
            }
        }
        let Some(rtp) = p.rtp() else {
            return Ok(());
        };
        let rate = self.rate();
        let arrival_pos = self.pos_of_ms(p.arrival_ms, rate);
        let info = &self.info;
        let Some(s) = self.streams.get_mut(&p.stream) else {
            return Ok(());
        };
        if !config.format.wav() {
            return Ok(());
        }
        let pt = rtp.payload_type();
        let idx = match s.decoders.iter().position(|(t, _)| *t == pt) {
            Some(i) => i,
            None => {
                s.decoders
                    .push((pt, build_decoder(info, p.stream, pt, rate)));
                s.decoders.len() - 1
            }
        };
        let Some((decoder, name)) = &mut s.decoders[idx].1 else {
            s.discarded += 1;
            stats.discarded.fetch_add(1, Relaxed);
            return Ok(());
        };
        s.codecs.insert(name.clone());
        let clock = match decoder {
            Decoder::Opus(_) => 48_000,
            _ => 8_000,
        };
        let payload = rtp.payload().unwrap_or(&[]);
        let n = match decoder.decode(payload, scratch) {
            Ok(n) => n,
            Err(_) => {
                s.discarded += 1;
                stats.discarded.fetch_add(1, Relaxed);
                return Ok(());
            }
        };
        let channels = usize::from(decoder.channels().max(1));
        let dec_rate = decoder.pcm_rate();
        mono.clear();
        mono.extend(
            scratch[..n]
                .chunks(channels)
                .map(|f| (f.iter().map(|&x| i32::from(x)).sum::<i32>() / channels as i32) as i16),
        );
        let pos = s
            .timeline
            .place(rtp.ssrc(), rtp.timestamp(), clock, arrival_pos);
        s.timeline.wrote(pos, mono.len() * rate as usize / dec_rate.max(1) as usize);
        if s.rate.as_ref().is_none_or(|r| r.input_rate() != dec_rate) {
            if let Some(old) = s.rate.as_mut() {
                old.end_run();
            }
            let old = s.rate.replace(StreamRate::new(dec_rate, rate));
            s.old_rate = old;
        }
        let conv = s.rate.as_mut().expect("set above");
        let out_pos = conv.convert(mono, pos, out);
        let channel = usize::from(p.stream.leg.min(1));
        self.mix_tails(p.stream, channel, rate, mono);
        if !self.mix_in(channel, out_pos, out, rate) {
            if let Some(s) = self.streams.get_mut(&p.stream) {
                s.discarded += 1;
            }
            stats.discarded.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Mix in the last samples of a stream's finished resampler run (see [`StreamRate`]);
    /// `buf` is scratch.
    fn mix_tails(&mut self, stream: TapStream, channel: usize, rate: u32, buf: &mut Vec<i16>) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let mut pieces: [Option<i64>; 2] = [None, None];
        let mut bufs = [Vec::new(), std::mem::take(buf)];
        if let Some(old) = s.old_rate.as_mut() {
            old.end_run();
            pieces[0] = old.take_tail(&mut bufs[0]);
            s.old_rate = None;
        }
        if let Some(r) = s.rate.as_mut() {
            pieces[1] = r.take_tail(&mut bufs[1]);
        }
        for (at, samples) in pieces.iter().zip(&bufs) {
            if let Some(at) = at {
                // Too late for the window: nothing to do, the run's body was written.
                let _ = self.mix_in(channel, *at, samples, rate);
            }
        }
        *buf = std::mem::take(&mut bufs[1]);
    }

    /// Count a packet of a stream in the metadata (packets, SSRCs, loss).
    fn count(&mut self, p: &TapPacket) {
        let Some(rtp) = p.rtp() else { return };
        let rate = self.rate();
        let s = self.streams.entry(p.stream).or_insert_with(|| StreamRec {
            timeline: StreamTimeline::new(rate),
            decoders: Vec::new(),
            ssrcs: BTreeMap::new(),
            codecs: BTreeSet::new(),
            packets: 0,
            discarded: 0,
            rate: None,
            old_rate: None,
        });
        s.packets += 1;
        s.ssrcs
            .entry(rtp.ssrc())
            .or_default()
            .count(rtp.sequence_number());
    }

    /// Add samples at `pos` into a channel; false when they are too late or absurdly early.
    fn mix_in(&mut self, channel: usize, pos: i64, samples: &[i16], rate: u32) -> bool {
        let mut pos = pos;
        let mut samples = samples;
        if pos < self.written {
            let skip = (self.written - pos) as usize;
            if skip >= samples.len() {
                return false;
            }
            samples = &samples[skip..];
            pos = self.written;
        }
        let at = (pos - self.written) as usize;
        if at as u64 > MAX_AHEAD_MS * u64::from(rate) / 1000 {
            return false;
        }
        let buf = &mut self.pending[channel];
        if buf.len() < at + samples.len() {
            buf.resize(at + samples.len(), 0);
        }
        for (d, &s) in buf[at..].iter_mut().zip(samples) {
            *d = d.saturating_add(s);
        }
        true
    }

    /// Write audio up to wall-clock `upto_ms`.
    fn flush_to_ms(
        &mut self,
        upto_ms: u64,
        config: &RecorderConfig,
        store: &RecordingStore,
    ) -> Result<(), RecordingError> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let upto = self.pos_of_ms(upto_ms, rate);
        self.flush_to(upto, config, store)
    }

    fn open_files(
        &mut self,
        config: &RecorderConfig,
        store: &RecordingStore,
    ) -> Result<(), RecordingError> {
        if self.files.is_some() || !config.format.wav() {
            return Ok(());
        }
        let rate = self.rate();
        let wav = |suffix: &str, channels: u16| -> Result<_, RecordingError> {
            let path = part(store, &self.id, suffix);
            let file = create_new(&path)?;
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            hound::WavWriter::new(BufWriter::new(file), spec)
                .map_err(|e| RecordingError::Wav(e.to_string()))
        };
        let mix = wav(MIX_SUFFIX, 2)?;
        let mut parties = Vec::new();
        if config.per_party {
            for suffix in PARTY_SUFFIXES {
                parties.push(wav(suffix, 1)?);
            }
        }
        self.files = Some(Files {
            mix: Some(mix),
            parties,
        });
        Ok(())
    }

    /// Write pending audio up to output position `upto` (silence where nothing arrived).
    fn flush_to(
        &mut self,
        upto: i64,
        config: &RecorderConfig,
        store: &RecordingStore,
    ) -> Result<(), RecordingError> {
        if upto <= self.written || !config.format.wav() {
            return Ok(());
        }
        self.open_files(config, store)?;
        let n = (upto - self.written) as usize;
        let files = self.files.as_mut().expect("opened");
        let wav_err = |e: hound::Error| match e {
            hound::Error::IoError(e) => RecordingError::Io(part(store, &self.id, MIX_SUFFIX), e),
            e => RecordingError::Wav(e.to_string()),
        };
        let sample = |buf: &Vec<i16>, i: usize| buf.get(i).copied().unwrap_or(0);
        if let Some(mix) = files.mix.as_mut() {
            let mut w = mix.get_i16_writer((n * 2) as u32);
            for i in 0..n {
                w.write_sample(sample(&self.pending[0], i));
                w.write_sample(sample(&self.pending[1], i));
            }
            w.flush().map_err(wav_err)?;
        }
        for (ch, party) in files.parties.iter_mut().enumerate() {
            let mut w = party.get_i16_writer(n as u32);
            for i in 0..n {
                w.write_sample(sample(&self.pending[ch], i));
            }
            w.flush().map_err(wav_err)?;
        }
        for buf in &mut self.pending {
            buf.drain(..n.min(buf.len()));
        }
        self.written = upto;
        let per_sample = if files.mix.is_some() { 4 } else { 0 } + 2 * files.parties.len() as u64;
        self.stats.bytes.fetch_add(n as u64 * per_sample, Relaxed);
        Ok(())
    }

    /// Write the rest, close and rename the files, write the sidecar.
    fn finish(
        &mut self,
        stop_ms: u64,
        config: &RecorderConfig,
        store: &RecordingStore,
    ) -> Result<(), RecordingError> {
        if let Some(since) = self.paused_since.take() {
            self.pauses.push((since, stop_ms.max(since)));
        }
        if self.failed.is_some() {
            self.cleanup(store);
            return self.write_metadata(stop_ms, config, store);
        }
        let rate = self.rate();
        if config.format.wav() {
            // Push out what the resamplers still hold.
            let keys: Vec<TapStream> = self.streams.keys().copied().collect();
            let mut buf = Vec::new();
            for k in keys {
                if let Some(r) = self.streams.get_mut(&k).and_then(|s| s.rate.as_mut()) {
                    r.end_run();
                }
                self.mix_tails(k, usize::from(k.leg.min(1)), rate, &mut buf);
            }
            let stop_pos = self.pos_of_ms(stop_ms, rate);
            let data_end =
                self.written + self.pending.iter().map(Vec::len).max().unwrap_or(0) as i64;
            let slack = (STOP_SLACK_MS * u64::from(rate) / 1000) as i64;
            let end = stop_pos.max(data_end.min(stop_pos + slack));
            self.flush_to(end, config, store)?;
            self.open_files(config, store)?;
            if let Some(files) = self.files.take() {
                let mut all = Vec::new();
                all.extend(files.mix);
                all.extend(files.parties);
                for w in all {
                    w.finalize().map_err(|e| match e {
                        hound::Error::IoError(e) => RecordingError::Io(store.dir().to_owned(), e),
                        e => RecordingError::Wav(e.to_string()),
                    })?;
                }
            }
        }
        if let Some(w) = self.pcap.take() {
            let path = part(store, &self.id, PCAP_SUFFIX);
            let mut out = w.into_inner();
            out.flush()
                .map_err(|e| RecordingError::Io(path.clone(), e))?;
            out.get_ref()
                .sync_data()
                .map_err(|e| RecordingError::Io(path, e))?;
        }
        for suffix in self.file_suffixes(config) {
            if suffix == META_SUFFIX {
                continue;
            }
            let from = part(store, &self.id, suffix);
            if !from.exists() {
                continue;
            }
            let to = store.path(&self.id, suffix).expect("valid id");
            fs::rename(&from, &to).map_err(|e| RecordingError::Io(to, e))?;
        }
        self.write_metadata(stop_ms, config, store)
    }

    fn file_suffixes(&self, config: &RecorderConfig) -> Vec<&'static str> {
        let mut s = Vec::new();
        if config.format.wav() {
            s.push(MIX_SUFFIX);
            if config.per_party {
                s.extend(PARTY_SUFFIXES);
            }
        }
        if config.format.pcap() && !self.pcap_failed {
            s.push(PCAP_SUFFIX);
        }
        s.push(META_SUFFIX);
        s
    }

    /// Remove the temporary files of a failed recording.
    fn cleanup(&mut self, store: &RecordingStore) {
        self.files = None;
        self.pcap = None;
        for suffix in [
            MIX_SUFFIX,
            PCAP_SUFFIX,
            PARTY_SUFFIXES[0],
            PARTY_SUFFIXES[1],
        ] {
            let _ = fs::remove_file(part(store, &self.id, suffix));
        }
    }

    fn write_metadata(
        &self,
        stop_ms: u64,
        config: &RecorderConfig,
        store: &RecordingStore,
    ) -> Result<(), RecordingError> {
        let mut files = serde_json::Map::new();
        files.insert(
            "metadata".into(),
            json!(format!("{}{META_SUFFIX}", self.id)),
        );
        if self.failed.is_none() {
            if config.format.wav() {
                files.insert("mix".into(), json!(format!("{}{MIX_SUFFIX}", self.id)));
                if config.per_party {
                    files.insert(
                        "parties".into(),
                        json!(PARTY_SUFFIXES
                            .iter()
                            .map(|s| format!("{}{s}", self.id))
                            .collect::<Vec<_>>()),
                    );
                }
            }
            if config.format.pcap()
                && store
                    .path(&self.id, PCAP_SUFFIX)
                    .is_some_and(|p| p.exists())
            {
                files.insert("pcap".into(), json!(format!("{}{PCAP_SUFFIX}", self.id)));
            }
        }
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|(k, s)| {
                json!({
                    "leg": k.leg,
                    "media": k.media,
                    "channel": if k.leg == 0 { "left" } else { "right" },
                    "codecs": s.codecs.iter().collect::<Vec<_>>(),
                    "ssrcs": s.ssrcs.iter().map(|(ssrc, c)| json!({
                        "ssrc": ssrc,
                        "packets": c.received,
                        "lost": c.lost(),
                    })).collect::<Vec<_>>(),
                    "packets": s.packets,
                    "lost": s.ssrcs.values().map(SeqCounter::lost).sum::<u64>(),
                    "discarded": s.discarded,
                    "resyncs": s.timeline.resyncs,
                })
            })
            .collect();
        let legs: Vec<Value> = self
            .info
            .legs
            .iter()
            .enumerate()
            .map(|(i, l)| {
                json!({
                    "tag": l.tag,
                    "label": l.label,
                    "channel": if i == 0 { "left" } else { "right" },
                    "codecs": l.medias.iter().map(|m| m.iter().map(|c| format!("{}/{}", c.name, c.clock_rate)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut recorded = Vec::new();
        let mut from = self.start_ms;
        for &(p, r) in &self.pauses {
            if p > from {
                recorded.push(json!({"start_ms": from, "stop_ms": p}));
            }
            from = r;
        }
        if stop_ms > from {
            recorded.push(json!({"start_ms": from, "stop_ms": stop_ms}));
        }
        let meta = json!({
            "id": self.id,
            "call_id": self.info.call_id,
            "state": if self.failed.is_some() { "failed" } else { "complete" },
            "error": self.failed,
            "start_ms": self.start_ms,
            "stop_ms": stop_ms,
            "duration_ms": stop_ms.saturating_sub(self.start_ms),
            "sample_rate": self.rate.unwrap_or(8000),
            "channels": 2,
            "format": config.format.as_str(),
            "legs": legs,
            "metadata": self.info.metadata,
            "output_destination": self.info.output_destination,
            "recorded": recorded,
            "pauses": self.pauses.iter().map(|(a, b)| json!({"start_ms": a, "stop_ms": b})).collect::<Vec<_>>(),
            "streams": streams,
            "files": files,
        });
        let path = part(store, &self.id, META_SUFFIX);
        let body = serde_json::to_vec_pretty(&meta).expect("JSON values serialize");
        let mut f = File::create(&path).map_err(|e| RecordingError::Io(path.clone(), e))?;
        self.stats.bytes.fetch_add(body.len() as u64, Relaxed);
        f.write_all(&body)
            .and_then(|()| f.sync_data())
            .map_err(|e| RecordingError::Io(path.clone(), e))?;
        let to = store.path(&self.id, META_SUFFIX).expect("valid id");
        fs::rename(&path, &to).map_err(|e| RecordingError::Io(to, e))
    }
}

/// Bytes a pcap record adds to the packet: record header, IPv4 and UDP headers (IPv6 adds
/// 20 more; the byte counter is an operator's estimate, not an audit).
const PCAP_RECORD_OVERHEAD: u64 = 16 + 20 + 8;

/// Suffixes of the per-party WAVs (left/caller first).
const PARTY_SUFFIXES: [&str; 2] = ["-caller.wav", "-callee.wav"];

fn part(store: &RecordingStore, id: &str, suffix: &str) -> PathBuf {
    store
        .part_path(id, suffix)
        .expect("recording ids are valid")
}

fn create_new(path: &PathBuf) -> Result<File, RecordingError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| RecordingError::Io(path.clone(), e))
}

/// The decoder for `pt` of a stream: the party's own SDP, then its peer's, then static PTs.
fn build_decoder(
    info: &TapCall,
    stream: TapStream,
    pt: u8,
    rate: u32,
) -> Option<(Decoder, String)> {
    let leg = usize::from(stream.leg);
    let media = usize::from(stream.media);
    let declared = [leg, 1 - leg.min(1)].into_iter().find_map(|l| {
        info.legs
            .get(l)?
            .medias
            .get(media)?
            .iter()
            .find(|c| c.pt == pt)
            .cloned()
    });
    let codec = match declared {
        Some(c) => Codec::lookup(&c.name, c.clock_rate, c.channels, c.fmtp.as_deref()).ok()?,
        None => Codec::from_static_pt(pt)?,
    };
    let decoder = match codec.kind() {
        CodecKind::TelephoneEvent => return None,
        CodecKind::Opus if [8000, 12000, 16000, 24000, 48000].contains(&rate) => {
            codec.decoder_at(rate).ok()?
        }
        _ => codec.decoder().ok()?,
    };
    Some((decoder, format!("{}/{}", codec.name(), codec.clock_rate)))
}

#[cfg(test)]
mod tests;
