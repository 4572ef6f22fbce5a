//! The recording folder: names, temporary files, finished recordings (rtpengine: the spool
//! directory of `rtpengine-recording`).
//!
//! A recording `ID` is made of `[A-Za-z0-9_-]` only and every file of it is `ID` plus a
//! fixed suffix inside the folder, so no call-id, tag or `output-destination` can name a file
//! elsewhere. Files are written as `.ID.suffix.part` and renamed when finalized; the JSON
//! sidecar is renamed last, so a recording is listed only once all its files are complete.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::RecordingError;

/// Suffixes of the files of one recording.
pub const MIX_SUFFIX: &str = ".wav";
pub const META_SUFFIX: &str = ".json";
pub const PCAP_SUFFIX: &str = ".pcap";
const PART: &str = ".part";
/// Longest ID; file names stay far below NAME_MAX.
pub const MAX_ID: usize = 128;
/// Characters of a call-id or `output-destination` kept in an ID.
const STEM_LEN: usize = 48;

/// True for a well-formed recording ID (safe as a file name stem).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !id.starts_with('-')
}

/// `s` reduced to ID characters: anything else becomes `_`, at most [`STEM_LEN`] kept.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .take(STEM_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('-').to_owned();
    if out.is_empty() {
        "call".to_owned()
    } else {
        out
    }
}

/// Filters of `GET /recordings`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub call_id: Option<String>,
    /// Recordings that started at or after this Unix time (ms).
    pub from_ms: Option<u64>,
    /// Recordings that started before this Unix time (ms).
    pub to_ms: Option<u64>,
    pub limit: Option<usize>,
}

/// The recording folder.
#[derive(Debug, Clone)]
pub struct RecordingStore {
    dir: PathBuf,
}

impl RecordingStore {
    pub fn new(dir: impl Into<PathBuf>) -> RecordingStore {
        RecordingStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Final path of `id` + `suffix`; `None` for a malformed ID.
    pub fn path(&self, id: &str, suffix: &str) -> Option<PathBuf> {
        valid_id(id).then(|| self.dir.join(format!("{id}{suffix}")))
    }

    /// Temporary path of `id` + `suffix` while it is written.
    pub fn part_path(&self, id: &str, suffix: &str) -> Option<PathBuf> {
        valid_id(id).then(|| self.dir.join(format!(".{id}{suffix}{PART}")))
    }

    /// A new ID that no finished or unfinished recording uses: `STEM-UNIXMS-RANDOM`.
    pub fn new_id(&self, stem: &str, start_ms: u64) -> String {
        let stem = sanitize(stem);
        loop {
            let id = format!("{stem}-{start_ms}-{:08x}", rand::random::<u32>());
            let taken = [MIX_SUFFIX, META_SUFFIX].iter().any(|s| {
                self.path(&id, s).is_some_and(|p| p.exists())
                    || self.part_path(&id, s).is_some_and(|p| p.exists())
            });
            if !taken {
                return id;
            }
        }
    }

    /// Metadata of finished recordings matching `filter`, oldest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Value>, RecordingError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RecordingError::Io(self.dir.clone(), e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = name.strip_suffix(META_SUFFIX) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let Ok(Some(meta)) = self.get(id) else {
                continue;
            };
            let start = meta["start_ms"].as_u64().unwrap_or(0);
            if filter
                .call_id
                .as_deref()
                .is_some_and(|c| meta["call_id"].as_str() != Some(c))
                || filter.from_ms.is_some_and(|f| start < f)
                || filter.to_ms.is_some_and(|t| start >= t)
            {
                continue;
            }
            out.push(meta);
        }
        out.sort_by(|a, b| {
            (a["start_ms"].as_u64(), a["id"].as_str())
                .cmp(&(b["start_ms"].as_u64(), b["id"].as_str()))
        });
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Metadata of one finished recording; `Ok(None)` when there is none by that ID.
    pub fn get(&self, id: &str) -> Result<Option<Value>, RecordingError> {
        let Some(path) = self.path(id, META_SUFFIX) else {
            return Ok(None);
        };
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RecordingError::BadMetadata(path, e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RecordingError::Io(path, e)),
        }
    }

    /// Path of the mixed WAV of a finished recording.
    pub fn audio(&self, id: &str) -> Result<Option<PathBuf>, RecordingError> {
        if self.get(id)?.is_none() {
            return Ok(None);
        }
        Ok(self.path(id, MIX_SUFFIX).filter(|p| p.is_file()))
    }

    /// Remove every file of a finished recording; false when there is none by that ID.
    pub fn delete(&self, id: &str) -> Result<bool, RecordingError> {
        let Some(meta) = self.get(id)? else {
            return Ok(false);
        };
        // Files named in the sidecar, checked to be this recording's own.
        let mut names: Vec<String> = meta["files"]
            .as_object()
            .map(|files| {
                files
                    .values()
                    .flat_map(|v| match v {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(a) => a
                            .iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect(),
                        _ => Vec::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| {
            n.strip_prefix(id)
                .is_some_and(|rest| rest.starts_with(['.', '-']) && !n.contains('/'))
        });
        for name in names {
            let path = self.dir.join(&name);
            if path.extension().is_some_and(|e| e == "json") {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(RecordingError::Io(path, e)),
            }
        }
        let meta_path = self.path(id, META_SUFFIX).expect("valid id");
        fs::remove_file(&meta_path).map_err(|e| RecordingError::Io(meta_path, e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_folder() {
        assert!(valid_id("abc-123_X"));
        for bad in [
            "",
            "../etc",
            "a/b",
            "a.b",
            "-rf",
            &"x".repeat(MAX_ID + 1),
            "ä",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(sanitize("../../etc/passwd"), "______etc_passwd");
        assert_eq!(sanitize("abc@host"), "abc_host");
        assert_eq!(sanitize(""), "call");
        assert_eq!(sanitize("--x"), "x");
        let store = RecordingStore::new("/tmp/r");
        assert_eq!(store.path("../x", ".wav"), None);
        let id = store.new_id("a/b@c", 5);
        assert!(valid_id(&id) && id.starts_with("a_b_c-5-"), "{id}");
        assert_ne!(store.new_id("a", 5), store.new_id("a", 5));
    }
}
