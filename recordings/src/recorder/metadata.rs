//! The JSON metadata sidecar of a recording.

use std::fs::{self, File};
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::files::{part, PARTY_SUFFIXES};
use super::{CallRec, RecorderConfig};
use crate::store::{RecordingStore, META_SUFFIX, MIX_SUFFIX, PCAP_SUFFIX};
use crate::timeline::SeqCounter;
use crate::RecordingError;

impl CallRec {
    pub(super) fn write_metadata(
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
