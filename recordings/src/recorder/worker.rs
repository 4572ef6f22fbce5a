//! The recorder thread's loop: control events and packet copies in, recordings started,
//! paused, written a jitter window behind real time, and finalized.

use ngmedia_engine::sync::lock;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ngmedia_engine::core::plan::CallKey;
use ngmedia_engine::core::tap::{RecordingEvent, TapPacket, TapReceiver};
use serde_json::{json, Value};
use tracing::info;

use super::{unix_ms, CallRec, Ctl, Worker};

/// Audio is written this far behind the newest arrival, so packets up to this late still
/// land in place; later ones are counted and dropped.
const JITTER_MS: u64 = 300;
/// After `Stop`, packets already on their way (queued by a worker that had not yet applied
/// the plan without tap) are still taken for this long before the files are closed.
const STOP_GRACE: Duration = Duration::from_millis(150);
/// How often the thread writes audio when no packets arrive.
const TICK: Duration = Duration::from_millis(20);

impl Worker {
    pub(super) fn run(&mut self, tap: TapReceiver, ctl: Receiver<Ctl>) {
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

    pub(super) fn event(&mut self, event: RecordingEvent) {
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
        *lock(&self.live) = list;
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

    pub(super) fn packet(&mut self, p: Box<TapPacket>) {
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
    pub(super) fn tick(&mut self, now_ms: u64, now: Instant) {
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

    pub(super) fn finalize(&mut self, rec: &mut CallRec, stop_ms: u64) {
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
        if let Some(hook) = lock(&self.on_finished).as_ref() {
            if let Ok(Some(meta)) = self.store.get(&rec.id) {
                hook(&meta);
            }
        }
    }
}
