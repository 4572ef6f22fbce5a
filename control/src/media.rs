//! The media library (rtpengine: the `db-id` media of its media player, kept there in a
//! database; here in a folder): audio files uploaded over HTTP, played with `play media`
//! `db-id` or as music on hold, plus the `file` and `blob` sources of `play media`.
//!
//! * **On disk**, under `--media-dir`: `ID.EXT` (the file as uploaded) and `ID.json` (its
//!   metadata). Both are written to a temporary name and renamed, the metadata last, so a
//!   crash leaves either a complete item or ignorable `.tmp-*` leftovers (removed at start).
//!   The index is rebuilt from the `*.json` files at start. The id is the first 16 hex
//!   digits of the file's SHA-256: uploading the same bytes twice gives the same item.
//! * **In memory**: a file is decoded once (at upload, or at its first play after a
//!   restart) to mono PCM at 8/16/48 kHz, and encoded per codec lazily, the first time a
//!   call needs that codec; both are cached ([`MAX_DECODED`] files), so the thousandth held
//!   call playing the same music costs no decoding or encoding at all.

use ngmedia_engine::sync::lock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ngmedia_codecs::audio_file::{self, AudioFileError, AudioFormat, DecodedAudio};
use ngmedia_codecs::{Codec, CodecKind};
use ngmedia_engine::core::player::{pcm_rate_for, MediaFrames, MediaLoader};
use ngmedia_engine::core::request::MediaSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// Decoded files kept in memory (each ~5.6 MiB per minute of audio, plus its encodings).
pub const MAX_DECODED: usize = 32;
/// Longest display name of an item.
pub const MAX_NAME: usize = 128;

/// Why a media operation failed; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("file of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("invalid name: {0}")]
    BadName(String),
    #[error(transparent)]
    Audio(#[from] AudioFileError),
    #[error("no media with id {0}")]
    NotFound(String),
    #[error("file access refused: {0}")]
    Forbidden(String),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

/// What the library knows about one item (`GET /media/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaInfo {
    pub id: String,
    pub name: String,
    /// `wav`, `mp3`, `ogg` or `flac`.
    pub format: String,
    pub duration_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bytes of the stored file.
    pub size: u64,
    pub sha256: String,
    /// Unix seconds of the upload.
    pub created: u64,
}

/// Decoded audio plus its encodings, keyed by content hash.
#[derive(Default)]
struct Cache {
    decoded: HashMap<String, Arc<DecodedAudio>>,
    frames: HashMap<(String, CodecKind, u32), Arc<MediaFrames>>,
    order: VecDeque<String>,
}

impl Cache {
    fn insert(&mut self, sha: &str, audio: Arc<DecodedAudio>) {
        if self.decoded.insert(sha.to_owned(), audio).is_none() {
            self.order.push_back(sha.to_owned());
        }
        while self.order.len() > MAX_DECODED {
            if let Some(old) = self.order.pop_front() {
                self.decoded.remove(&old);
                self.frames.retain(|k, _| k.0 != old);
            }
        }
    }

    fn forget(&mut self, sha: &str) {
        self.decoded.remove(sha);
        self.frames.retain(|k, _| k.0 != sha);
        self.order.retain(|s| s != sha);
    }
}

/// The media library and the loader behind `play media`.
pub struct MediaLibrary {
    dir: PathBuf,
    max_bytes: u64,
    max_seconds: u32,
    /// `--media-play-dirs` as configured, and the canonical folders among them that exist
    /// (resolved at start and again on reload): the only places `file` may read from.
    play_dirs: Vec<PathBuf>,
    play_roots: Mutex<Vec<PathBuf>>,
    index: Mutex<BTreeMap<String, MediaInfo>>,
    cache: Mutex<Cache>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A library id: 16 lowercase hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Check a display name: printable, no path separators or `..`, not empty, not too long.
/// Names never become file names (ids do), but a name that looks like a path is refused so
/// that nobody downstream is tempted to use it as one.
pub fn check_name(name: &str) -> Result<String, MediaError> {
    let name = name.trim();
    let bad = |why: &str| Err(MediaError::BadName(format!("{why}: {name:?}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().count() > MAX_NAME {
        return bad("longer than 128 characters");
    }
    if name.contains(['/', '\\']) || name.contains("..") || name.starts_with('.') {
        return bad("looks like a path");
    }
    if name.chars().any(char::is_control) {
        return bad("control characters");
    }
    Ok(name.to_owned())
}

/// The configured play folders that exist, canonical; the others are logged and left out.
fn resolve(play_dirs: &[PathBuf]) -> Vec<PathBuf> {
    play_dirs
        .iter()
        .filter_map(|d| match d.canonicalize() {
            Ok(c) => Some(c),
            Err(e) => {
                warn!(dir = %d.display(), error = %e, "media-play-dirs: folder unusable, ignored");
                None
            }
        })
        .collect()
}

/// The library's items from the metadata files in `dir`, skipping (and logging) damaged ones.
/// At start-up (`clean`) it also removes uploads a crash left unfinished; later such a file
/// may be an upload in progress.
fn read_index(dir: &Path, clean: bool) -> Result<BTreeMap<String, MediaInfo>, MediaError> {
    let mut index = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file.starts_with(".tmp-") {
            if clean {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        let Some(id) = file.strip_suffix(".json").filter(|id| valid_id(id)) else {
            continue;
        };
        let info: MediaInfo = match fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(i) => i,
            None => {
                warn!(file, "media library: unreadable metadata, skipped");
                continue;
            }
        };
        let audio = dir.join(format!("{id}.{}", info.format));
        if info.id != id || !audio.is_file() {
            warn!(
                file,
                "media library: metadata without its audio file, skipped"
            );
            continue;
        }
        index.insert(id.to_owned(), info);
    }
    Ok(index)
}

impl MediaLibrary {
    /// Open (creating if needed) the folder and rebuild the index from it.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        max_seconds: u32,
        play_dirs: &[PathBuf],
    ) -> Result<MediaLibrary, MediaError> {
        fs::create_dir_all(dir)?;
        let index = read_index(dir, true)?;
        info!(dir = %dir.display(), items = index.len(), "media library opened");
        Ok(MediaLibrary {
            dir: dir.to_owned(),
            max_bytes,
            max_seconds,
            play_dirs: play_dirs.to_vec(),
            play_roots: Mutex::new(resolve(play_dirs)),
            index: Mutex::new(index),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// Re-read the library folder and the `--media-play-dirs` (SIGHUP): items an operator
    /// copied in or removed by hand, and play folders created since, are seen by the next
    /// `play media`; decoded audio is dropped (players already running keep theirs). On an
    /// error the old index stays.
    pub fn reload(&self) -> Result<usize, MediaError> {
        let index = read_index(&self.dir, false)?;
        let items = index.len();
        *lock(&self.index) = index;
        *lock(&self.play_roots) = resolve(&self.play_dirs);
        *lock(&self.cache) = Cache::default();
        info!(dir = %self.dir.display(), items, "media library reloaded");
        Ok(items)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn check_size(&self, size: u64) -> Result<(), MediaError> {
        if size > self.max_bytes {
            return Err(MediaError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Validate, decode and store an upload. Returns the item and whether it is new (the
    /// same bytes uploaded before give the existing item). Nothing stays on disk on error.
    pub fn add(&self, name: &str, bytes: &[u8]) -> Result<(MediaInfo, bool), MediaError> {
        let name = check_name(name)?;
        self.check_size(bytes.len() as u64)?;
        let sha = hex(&Sha256::digest(bytes));
        let id = sha[..16].to_owned();
        if let Some(existing) = lock(&self.index).get(&id) {
            return Ok((existing.clone(), false));
        }
        let audio = audio_file::decode(bytes, self.max_seconds)?;
        let info = MediaInfo {
            id: id.clone(),
            name,
            format: audio.format.name().to_owned(),
            duration_ms: audio.duration_ms,
            sample_rate: audio.sample_rate,
            channels: audio.channels,
            size: bytes.len() as u64,
            sha256: sha.clone(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let audio_path = self.dir.join(format!("{id}.{}", info.format));
        let meta_path = self.dir.join(format!("{id}.json"));
        let meta =
            serde_json::to_vec_pretty(&info).map_err(|e| std::io::Error::other(e.to_string()))?;
        write_atomic(&self.dir, &audio_path, bytes)?;
        if let Err(e) = write_atomic(&self.dir, &meta_path, &meta) {
            let _ = fs::remove_file(&audio_path);
            return Err(e.into());
        }
        lock(&self.cache).insert(&sha, Arc::new(audio));
        lock(&self.index).insert(id, info.clone());
        info!(id = %info.id, format = %info.format, duration_ms = info.duration_ms, "media stored");
        Ok((info, true))
    }

    pub fn list(&self) -> Vec<MediaInfo> {
        lock(&self.index).values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<MediaInfo> {
        lock(&self.index).get(id).cloned()
    }

    /// The stored file's bytes and MIME type.
    pub fn audio(&self, id: &str) -> Result<(Vec<u8>, &'static str), MediaError> {
        let info = self
            .get(id)
            .ok_or_else(|| MediaError::NotFound(id.to_owned()))?;
        let format = AudioFormat::from_name(&info.format).unwrap_or(AudioFormat::Wav);
        let bytes = fs::read(self.dir.join(format!("{id}.{}", info.format)))?;
        Ok((bytes, format.mime()))
    }

    /// Remove an item (metadata first, so a crash in between leaves an orphan file that the
    /// index ignores, never an entry without audio).
    pub fn delete(&self, id: &str) -> Result<MediaInfo, MediaError> {
        let info = lock(&self.index)
            .remove(id)
            .ok_or_else(|| MediaError::NotFound(id.to_owned()))?;
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
        let _ = fs::remove_file(self.dir.join(format!("{id}.{}", info.format)));
        lock(&self.cache).forget(&info.sha256);
        Ok(info)
    }

    /// Decoded audio of a source, from the cache or decoded now.
    fn decoded(&self, source: &MediaSource) -> Result<(String, Arc<DecodedAudio>), MediaError> {
        let (sha, bytes) = match source {
            MediaSource::DbId(id) => {
                let info = self
                    .get(id)
                    .ok_or_else(|| MediaError::NotFound(id.clone()))?;
                if let Some(a) = lock(&self.cache).decoded.get(&info.sha256) {
                    return Ok((info.sha256.clone(), a.clone()));
                }
                let bytes = fs::read(self.dir.join(format!("{id}.{}", info.format)))?;
                (info.sha256, bytes)
            }
            MediaSource::Blob(bytes) => {
                self.check_size(bytes.len() as u64)?;
                (hex(&Sha256::digest(bytes)), bytes.clone())
            }
            MediaSource::File(path) => {
                let bytes = self.read_play_file(path)?;
                (hex(&Sha256::digest(&bytes)), bytes)
            }
        };
        if let Some(a) = lock(&self.cache).decoded.get(&sha) {
            return Ok((sha, a.clone()));
        }
        let audio = Arc::new(audio_file::decode(&bytes, self.max_seconds)?);
        lock(&self.cache).insert(&sha, audio.clone());
        Ok((sha, audio))
    }

    /// Read a `play media` `file`, which must resolve (symlinks followed) inside one of the
    /// configured `--media-play-dirs`.
    fn read_play_file(&self, path: &str) -> Result<Vec<u8>, MediaError> {
        let roots = lock(&self.play_roots).clone();
        if roots.is_empty() {
            let why = if self.play_dirs.is_empty() {
                "no --media-play-dirs configured"
            } else {
                "none of the --media-play-dirs exists (SIGHUP looks again)"
            };
            return Err(MediaError::Forbidden(why.into()));
        }
        let real = Path::new(path)
            .canonicalize()
            .map_err(|e| MediaError::Forbidden(format!("{path}: {e}")))?;
        if !roots.iter().any(|d| real.starts_with(d)) {
            return Err(MediaError::Forbidden(format!(
                "{path} is outside --media-play-dirs"
            )));
        }
        let size = fs::metadata(&real)?.len();
        self.check_size(size)?;
        Ok(fs::read(&real)?)
    }
}

impl MediaLoader for MediaLibrary {
    fn frames(
        &self,
        source: &MediaSource,
        codec: &Codec,
    ) -> Result<(Arc<MediaFrames>, u64), String> {
        let (sha, audio) = self.decoded(source).map_err(|e| e.to_string())?;
        let key = (sha, codec.kind(), codec.clock_rate);
        if let Some(f) = lock(&self.cache).frames.get(&key) {
            return Ok((f.clone(), audio.duration_ms));
        }
        let rate = pcm_rate_for(codec);
        let pcm = audio
            .pcm_at(rate)
            .ok_or_else(|| format!("no PCM at {rate} Hz for {}", codec.name()))?;
        let frames = Arc::new(MediaFrames::encode(codec, pcm, rate).map_err(|e| e.to_string())?);
        lock(&self.cache).frames.insert(key, frames.clone());
        Ok((frames, audio.duration_ms))
    }
}

/// Write `bytes` to `path` through a temporary file in `dir` and a rename.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp-{}-{:x}", std::process::id(), rand_suffix()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn rand_suffix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(samples: usize) -> Vec<u8> {
        let data_len = (samples * 2) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        for x in [
            16u32.to_le_bytes().to_vec(),
            1u16.to_le_bytes().to_vec(),
            1u16.to_le_bytes().to_vec(),
            8000u32.to_le_bytes().to_vec(),
            16000u32.to_le_bytes().to_vec(),
            2u16.to_le_bytes().to_vec(),
            16u16.to_le_bytes().to_vec(),
        ] {
            v.extend_from_slice(&x);
        }
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..samples {
            v.extend_from_slice(&(((i % 40) as i16 - 20) * 500).to_le_bytes());
        }
        v
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ngmedia-media-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn files(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn names_that_look_like_paths_are_refused() {
        for bad in [
            "",
            "  ",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "x\0y",
            &"n".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_name(" Hold tune 1.wav ").unwrap(), "Hold tune 1.wav");
    }

    #[test]
    fn stores_lists_survives_reopen_and_deletes() {
        let d = dir("store");
        let lib = MediaLibrary::open(&d, 1 << 20, 10, &[]).unwrap();
        let bytes = wav(8000);
        let (info, new) = lib.add("tune", &bytes).unwrap();
        assert!(new);
        assert_eq!(
            (
                info.format.as_str(),
                info.duration_ms,
                info.sample_rate,
                info.channels
            ),
            ("wav", 1000, 8000, 1)
        );
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(&info.sha256[..16], info.id);
        assert_eq!(
            files(&d),
            vec![format!("{}.json", info.id), format!("{}.wav", info.id)]
        );
        // Same bytes again: the same item.
        assert_eq!(lib.add("other", &bytes).unwrap(), (info.clone(), false));
        // PCMU frames for it, cached.
        let pcmu = Codec::from_static_pt(0).unwrap();
        let (f1, dur) = lib
            .frames(&MediaSource::DbId(info.id.clone()), &pcmu)
            .unwrap();
        let (f2, _) = lib
            .frames(&MediaSource::DbId(info.id.clone()), &pcmu)
            .unwrap();
        assert!(Arc::ptr_eq(&f1, &f2));
        assert_eq!((f1.len(), dur), (50, 1000));

        fs::write(d.join(".tmp-1-2"), b"junk").unwrap();
        let lib = MediaLibrary::open(&d, 1 << 20, 10, &[]).unwrap();
        assert_eq!(lib.list(), vec![info.clone()]);
        assert!(!d.join(".tmp-1-2").exists(), "leftovers cleaned");
        let (f3, _) = lib
            .frames(&MediaSource::DbId(info.id.clone()), &pcmu)
            .unwrap();
        assert_eq!(f3.frame(7), f1.frame(7), "decoded again after restart");
        assert_eq!(lib.audio(&info.id).unwrap(), (bytes, "audio/wav"));
        lib.delete(&info.id).unwrap();
        assert!(files(&d).is_empty());
        assert!(matches!(lib.delete(&info.id), Err(MediaError::NotFound(_))));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_uploads_leave_nothing() {
        let d = dir("bad");
        let lib = MediaLibrary::open(&d, 10_000, 1, &[]).unwrap();
        assert!(matches!(
            lib.add("x", &wav(6000)),
            Err(MediaError::TooLarge { .. })
        ));
        assert!(matches!(
            lib.add("x", &wav(4000)[..3000]),
            Err(MediaError::Audio(AudioFileError::Corrupt(_)))
        ));
        assert!(matches!(
            lib.add("x", b"hello"),
            Err(MediaError::Audio(AudioFileError::UnsupportedFormat))
        ));
        assert!(matches!(
            lib.add("x", b""),
            Err(MediaError::Audio(AudioFileError::Empty))
        ));
        let lib = MediaLibrary::open(&d, 1 << 20, 1, &[]).unwrap();
        assert!(matches!(
            lib.add("x", &wav(16000)),
            Err(MediaError::Audio(AudioFileError::TooLong { .. }))
        ));
        assert!(matches!(
            lib.add("../x", &wav(100)),
            Err(MediaError::BadName(_))
        ));
        assert!(files(&d).is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn play_files_only_inside_the_play_dirs() {
        let d = dir("play");
        let allowed = d.join("allowed");
        fs::create_dir_all(&allowed).unwrap();
        fs::write(allowed.join("a.wav"), wav(800)).unwrap();
        fs::write(d.join("secret.wav"), wav(800)).unwrap();
        let lib = MediaLibrary::open(&d.join("lib"), 1 << 20, 10, std::slice::from_ref(&allowed))
            .unwrap();
        let pcma = Codec::from_static_pt(8).unwrap();
        let ok = MediaSource::File(allowed.join("a.wav").to_string_lossy().into_owned());
        assert_eq!(lib.frames(&ok, &pcma).unwrap().1, 100);
        let escape =
            MediaSource::File(allowed.join("../secret.wav").to_string_lossy().into_owned());
        assert!(lib.frames(&escape, &pcma).unwrap_err().contains("outside"));
        let none = MediaLibrary::open(&d.join("lib"), 1 << 20, 10, &[]).unwrap();
        assert!(none.frames(&ok, &pcma).is_err());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn reload_sees_new_items_and_play_folders() {
        let d = dir("reload");
        let plays = d.join("plays");
        let lib =
            MediaLibrary::open(&d.join("lib"), 1 << 20, 10, std::slice::from_ref(&plays)).unwrap();
        // An item that reaches the folder behind this library's back (an operator's copy).
        let other = MediaLibrary::open(&d.join("lib"), 1 << 20, 10, &[]).unwrap();
        let (item, _) = other.add("copied", &wav(1600)).unwrap();
        assert!(lib.list().is_empty());
        // A play folder created after start.
        fs::create_dir_all(&plays).unwrap();
        fs::write(plays.join("a.wav"), wav(2400)).unwrap();
        let pcmu = Codec::from_static_pt(0).unwrap();
        let file = MediaSource::File(plays.join("a.wav").to_string_lossy().into_owned());
        assert!(lib.frames(&file, &pcmu).is_err());
        // An upload in progress survives a reload.
        fs::write(d.join("lib").join(".tmp-9-9"), b"partial").unwrap();

        assert_eq!(lib.reload().unwrap(), 1);
        assert_eq!(lib.list(), vec![item]);
        assert_eq!(lib.frames(&file, &pcmu).unwrap().1, 300);
        assert!(d.join("lib").join(".tmp-9-9").exists());
        let _ = fs::remove_dir_all(&d);
    }
}
