//! Audio files for the media player (music on hold, announcements): WAV, MP3, OGG/Vorbis and
//! FLAC decoded with symphonia into mono PCM, then resampled to the rates the player encodes
//! from (rtpengine: `media_player.c` opening files through libavformat).
//!
//! Decoding happens once per file (upload, or the first `play media` of a path or blob), off
//! the packet path; it allocates freely. Everything an untrusted upload can do wrong ends in
//! an [`AudioFileError`]: an unknown container or codec, a file that decodes to nothing, a
//! stream that stops early or fails mid-way, or audio longer than the caller's limit.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    DecoderOptions, CODEC_TYPE_FLAC, CODEC_TYPE_MP3, CODEC_TYPE_NULL, CODEC_TYPE_VORBIS,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::resample::resample_clip;

/// The rates the player encodes from: 8 kHz (G.711, G.729, narrowband Opus), 16 kHz and
/// 48 kHz (Opus).
pub const PLAYER_RATES: [u32; 3] = [8_000, 16_000, 48_000];

/// Container/codec of an accepted audio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    Wav,
    Mp3,
    OggVorbis,
    Flac,
}

impl AudioFormat {
    /// Short name used in the HTTP API and on disk (file extension).
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::OggVorbis => "ogg",
            AudioFormat::Flac => "flac",
        }
    }

    pub fn from_name(s: &str) -> Option<AudioFormat> {
        match s {
            "wav" => Some(AudioFormat::Wav),
            "mp3" => Some(AudioFormat::Mp3),
            "ogg" => Some(AudioFormat::OggVorbis),
            "flac" => Some(AudioFormat::Flac),
            _ => None,
        }
    }

    /// MIME type for downloads.
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::OggVorbis => "audio/ogg",
            AudioFormat::Flac => "audio/flac",
        }
    }
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioFileError {
    #[error("empty file")]
    Empty,
    #[error("not a WAV, MP3, OGG/Vorbis or FLAC file")]
    UnsupportedFormat,
    #[error("unsupported audio codec in the file")]
    UnsupportedCodec,
    #[error("the file is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("the file contains no audio")]
    NoAudio,
    #[error("audio longer than the limit of {limit_s} s")]
    TooLong { limit_s: u32 },
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// A decoded file: what it was, and its audio as mono 16-bit PCM at each of [`PLAYER_RATES`].
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    pub format: AudioFormat,
    /// The file's own sample rate and channel count.
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
    /// Mono PCM at 8, 16 and 48 kHz (same order as [`PLAYER_RATES`]).
    pub pcm: [Vec<i16>; 3],
}

impl DecodedAudio {
    /// Mono PCM at `rate` (one of [`PLAYER_RATES`]).
    pub fn pcm_at(&self, rate: u32) -> Option<&[i16]> {
        PLAYER_RATES
            .iter()
            .position(|&r| r == rate)
            .map(|i| self.pcm[i].as_slice())
    }
}

/// Decode `bytes` into mono PCM at the player's rates, refusing more than `max_seconds` of
/// audio (checked against the header up front and while decoding, so a huge file costs no
/// more than the limit).
pub fn decode(bytes: &[u8], max_seconds: u32) -> Result<DecodedAudio, AudioFileError> {
    let (format, sample_rate, channels, mono) = decode_mono(bytes, max_seconds)?;
    let duration_ms = mono.len() as u64 * 1000 / u64::from(sample_rate);
    let mut pcm: [Vec<i16>; 3] = Default::default();
    for (slot, &rate) in pcm.iter_mut().zip(PLAYER_RATES.iter()) {
        *slot = resample_clip(&mono, sample_rate, rate)
            .map_err(|e| AudioFileError::Resample(e.to_string()))?;
    }
    Ok(DecodedAudio {
        format,
        sample_rate,
        channels,
        duration_ms,
        pcm,
    })
}

/// The sample rates of the `fmt ` chunks of a RIFF/WAVE file, walking its chunks as the WAV
/// reader does (even-aligned, up to the `data` chunk); nothing for other files. The reader
/// panics on a rate of 0 (symphonia 0.5: `TimeBase cannot have 0 numerator or
/// denominator`), so such uploads are refused before it sees them (found by fuzzing).
fn wav_rates(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let wave = bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE";
    let mut at = if wave { 12 } else { bytes.len() };
    std::iter::from_fn(move || loop {
        at += at & 1;
        let header = bytes.get(at..at + 8)?;
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = at + 8;
        at = body.saturating_add(len);
        match &header[..4] {
            b"data" => return None,
            b"fmt " => {
                let rate = bytes.get(body + 4..body + 8)?;
                return Some(u32::from_le_bytes([rate[0], rate[1], rate[2], rate[3]]));
            }
            _ => {}
        }
    })
}

/// Decode to mono f32 at the file's own rate.
fn decode_mono(
    bytes: &[u8],
    max_seconds: u32,
) -> Result<(AudioFormat, u32, u16, Vec<f32>), AudioFileError> {
    if bytes.is_empty() {
        return Err(AudioFileError::Empty);
    }
    if wav_rates(bytes).any(|rate| rate == 0) {
        return Err(AudioFileError::UnsupportedCodec);
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(_) => AudioFileError::UnsupportedFormat,
            SymError::IoError(_) => AudioFileError::UnsupportedFormat,
            other => AudioFileError::Corrupt(other.to_string()),
        })?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(AudioFileError::NoAudio)?;
    let params = track.codec_params.clone();
    let track_id = track.id;
    let format = match params.codec {
        CODEC_TYPE_MP3 => AudioFormat::Mp3,
        CODEC_TYPE_FLAC => AudioFormat::Flac,
        CODEC_TYPE_VORBIS => AudioFormat::OggVorbis,
        // Only the RIFF/WAV reader produces PCM codecs in this build.
        _ => AudioFormat::Wav,
    };
    let sample_rate = params.sample_rate.ok_or(AudioFileError::UnsupportedCodec)?;
    if !(4_000..=192_000).contains(&sample_rate) {
        return Err(AudioFileError::UnsupportedCodec);
    }
    let max_frames = u64::from(max_seconds) * u64::from(sample_rate);
    if params.n_frames.is_some_and(|n| n > max_frames) {
        return Err(AudioFileError::TooLong {
            limit_s: max_seconds,
        });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|_| AudioFileError::UnsupportedCodec)?;
    let mut channels = params.channels.map_or(0, |c| c.count() as u16);
    let mut mono: Vec<f32> = Vec::new();
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(AudioFileError::Corrupt(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(e) => return Err(AudioFileError::Corrupt(e.to_string())),
        };
        let spec = *decoded.spec();
        if spec.rate != sample_rate {
            return Err(AudioFileError::Corrupt(
                "sample rate changes mid-stream".into(),
            ));
        }
        let ch = spec.channels.count().max(1);
        channels = ch as u16;
        let needed = decoded.capacity() as u64;
        let buf = match &mut sample_buf {
            Some(b) if b.capacity() as u64 >= needed * ch as u64 => b,
            _ => sample_buf.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let samples = buf.samples();
        mono.extend(
            samples
                .chunks_exact(ch)
                .map(|frame| frame.iter().sum::<f32>() / ch as f32),
        );
        if mono.len() as u64 > max_frames {
            return Err(AudioFileError::TooLong {
                limit_s: max_seconds,
            });
        }
    }
    if mono.is_empty() {
        return Err(AudioFileError::NoAudio);
    }
    // A header that announced more frames than the stream held: cut off (a partial upload).
    // Codecs with priming/padding (MP3, Vorbis) may differ by a frame or two, hence the slack.
    if let Some(n) = params.n_frames {
        let slack = match format {
            AudioFormat::Wav | AudioFormat::Flac => 16,
            AudioFormat::Mp3 | AudioFormat::OggVorbis => u64::from(sample_rate) / 10 + 2304,
        };
        if (mono.len() as u64) + slack < n {
            return Err(AudioFileError::Corrupt(format!(
                "{} of {} samples present",
                mono.len(),
                n
            )));
        }
    }
    Ok((format, sample_rate, channels, mono))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file of 16-bit PCM.
    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
        v.extend_from_slice(&(2 * channels).to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            v.extend_from_slice(&s.to_le_bytes());
        }
        v
    }

    fn tone(rate: u32, ms: u32) -> Vec<i16> {
        (0..rate * ms / 1000)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 500.0 / rate as f32).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn wav_decodes_to_all_player_rates() {
        let a = decode(&wav(16_000, 1, &tone(16_000, 500)), 10).unwrap();
        assert_eq!(a.format, AudioFormat::Wav);
        assert_eq!((a.sample_rate, a.channels, a.duration_ms), (16_000, 1, 500));
        assert_eq!(a.pcm_at(16_000).unwrap().len(), 8000);
        assert!((a.pcm_at(8_000).unwrap().len() as i64 - 4000).abs() <= 2);
        assert!((a.pcm_at(48_000).unwrap().len() as i64 - 24000).abs() <= 2);
        // Same samples at the file's own rate.
        assert_eq!(a.pcm_at(16_000).unwrap()[100], tone(16_000, 500)[100]);
    }

    #[test]
    fn stereo_is_mixed_to_mono() {
        let frames: Vec<i16> = (0..800).flat_map(|_| [1000i16, 3000]).collect();
        let a = decode(&wav(8_000, 2, &frames), 10).unwrap();
        assert_eq!(a.channels, 2);
        assert_eq!(a.pcm_at(8_000).unwrap()[10], 2000);
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(decode(b"", 10).unwrap_err(), AudioFileError::Empty);
        assert_eq!(
            decode(b"this is plain text, not audio at all", 10).unwrap_err(),
            AudioFileError::UnsupportedFormat
        );
        let long = wav(8_000, 1, &tone(8_000, 3000));
        assert_eq!(
            decode(&long, 2).unwrap_err(),
            AudioFileError::TooLong { limit_s: 2 }
        );
        // Half of the data chunk missing.
        let cut = &long[..long.len() / 2];
        assert!(
            matches!(decode(cut, 10).unwrap_err(), AudioFileError::Corrupt(_)),
            "{:?}",
            decode(cut, 10)
        );
        // Header only.
        assert!(decode(&long[..44], 10).is_err());
        // A sample rate of 0 (the WAV reader would panic on it).
        let mut zero = wav(8_000, 1, &tone(8_000, 100));
        zero[24..28].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decode(&zero, 10).unwrap_err(),
            AudioFileError::UnsupportedCodec
        );
    }
}
