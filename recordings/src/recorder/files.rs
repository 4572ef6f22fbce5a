//! A recording's files: opened on the first audio, written up to a position, and on stop
//! flushed, closed and renamed to their final names (or removed after a failure).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use ngmedia_engine::core::tap::TapStream;

use super::{CallRec, Files, RecorderConfig};
use crate::store::{RecordingStore, META_SUFFIX, MIX_SUFFIX, PCAP_SUFFIX};
use crate::RecordingError;

/// Audio written past the stop time at most (the last packet's duration and clock skew).
const STOP_SLACK_MS: u64 = 200;

/// Suffixes of the per-party WAVs (left/caller first).
pub(super) const PARTY_SUFFIXES: [&str; 2] = ["-caller.wav", "-callee.wav"];

impl CallRec {
    /// Write audio up to wall-clock `upto_ms`.
    pub(super) fn flush_to_ms(
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
    pub(super) fn finish(
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
    pub(super) fn cleanup(&mut self, store: &RecordingStore) {
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
}

pub(super) fn part(store: &RecordingStore, id: &str, suffix: &str) -> PathBuf {
    store
        .part_path(id, suffix)
        .expect("recording ids are valid")
}

pub(super) fn create_new(path: &PathBuf) -> Result<File, RecordingError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| RecordingError::Io(path.clone(), e))
}
