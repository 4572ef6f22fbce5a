//! Replacement audio in a G.729 or Opus line that is not transcoded: the tone, digit or
//! silence a `DTMF-security` mode asks for is rendered at 8 kHz and encoded by encoders the
//! guard owns, and the party's audio is decoded for the in-band digit detector (rtpengine
//! gets the same by forcing such a stream through its transcoder; ngmedia keeps the
//! passthrough and rewrites only the packets that carry a digit).
//!
//! The codec state is built with the guard, on the control plane, only for the codecs the
//! party's SDP lists: decoders when in-band digits matter (a replacing mode or a trigger),
//! encoders when a mode could replace audio with something other than silence. Encoding
//! and decoding allocate nothing. The encoders' state runs on from one replaced packet to
//! the next, which is what the peer's decoder sees as well; the decoders see every audio
//! packet the party sends.

use ngmedia_codecs::{Codec, CodecParams, Decoder, Encoder, EncoderKind, EncoderOptions};

use crate::core::media_control::{opus_packet_samples, PayloadKind};

/// PCM rate the replacement is rendered at (the tones are rtpengine's 8 kHz ones).
const RATE: u32 = 8000;
/// Opus' RTP clock against the rendering rate.
const OPUS_CLOCK_RATIO: u32 = 48_000 / RATE;
/// Bit rate of the replacement Opus frames: a plain tone needs little, and the packets stay
/// far below any MTU.
const OPUS_BITRATE: i32 = 24_000;
/// Samples of one G.729 frame (10 ms) and its bytes.
const G729_FRAME: usize = 80;
const G729_BYTES: usize = 10;

/// Encoders for the coded payload kinds of a party (see the module docs).
pub(super) struct CodedAudio {
    /// 10 ms frames, Annex B off (speech frames only, valid for either annexb setting).
    g729: Option<Encoder>,
    /// Mono at 8 kHz in, any Opus frame length.
    opus: Option<Encoder>,
    /// The party's audio, decoded to 8 kHz mono for the DTMF detector.
    g729_dec: Option<Decoder>,
    opus_dec: Option<Decoder>,
}

impl std::fmt::Debug for CodedAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodedAudio")
            .field("g729", &self.g729.is_some())
            .field("opus", &self.opus.is_some())
            .field(
                "decoders",
                &(self.g729_dec.is_some() || self.opus_dec.is_some()),
            )
            .finish()
    }
}

impl CodedAudio {
    /// No encoders: coded payloads get encoded silence.
    pub(super) fn none() -> CodedAudio {
        CodedAudio {
            g729: None,
            opus: None,
            g729_dec: None,
            opus_dec: None,
        }
    }

    /// Decoders for the coded kinds among `kinds` (in-band digit detection).
    pub(super) fn with_decoders(mut self, kinds: &[PayloadKind]) -> CodedAudio {
        let decoder = |name: &str, rate: u32, channels: u8| {
            Codec::lookup(name, rate, Some(channels), None)
                .ok()?
                .decoder_at(RATE)
                .ok()
        };
        if kinds.contains(&PayloadKind::G729) {
            self.g729_dec = decoder("G729", RATE, 1);
        }
        if kinds.contains(&PayloadKind::Opus) {
            self.opus_dec = decoder("opus", 48_000, 2);
        }
        self
    }

    /// Decode the party's payload of kind `k` into `pcm` (8 kHz mono); the samples
    /// written, `None` without a decoder or when the payload does not decode (or does not
    /// fit).
    pub(super) fn decode(
        &mut self,
        k: PayloadKind,
        payload: &[u8],
        pcm: &mut [i16],
    ) -> Option<usize> {
        let dec = match k {
            PayloadKind::G729 => self.g729_dec.as_mut()?,
            PayloadKind::Opus => self.opus_dec.as_mut()?,
            _ => return None,
        };
        if dec.channels() != 1 || Self::samples_of(k, payload) > pcm.len() {
            return None;
        }
        dec.decode(payload, pcm).ok().filter(|&n| n > 0)
    }

    /// Encoders for the coded kinds among `kinds`.
    pub(super) fn new(kinds: &[PayloadKind]) -> CodedAudio {
        let g729 = kinds
            .contains(&PayloadKind::G729)
            .then(|| {
                Codec::lookup("G729", RATE, Some(1), Some("annexb=no"))
                    .ok()?
                    .encoder(10)
                    .ok()
            })
            .flatten();
        let opus = kinds
            .contains(&PayloadKind::Opus)
            .then(|| {
                let mut codec = Codec::lookup("opus", 48_000, Some(2), None).ok()?;
                if let CodecParams::Opus(p) = &mut codec.params {
                    p.stereo = false;
                    p.sprop_stereo = false;
                    p.usedtx = false;
                    p.useinbandfec = false;
                }
                let opts = EncoderOptions {
                    pcm_rate: Some(RATE),
                    opus_bitrate: Some(OPUS_BITRATE),
                    ..EncoderOptions::default()
                };
                let mut enc = codec.encoder_with(20, &opts).ok()?;
                // Spliced into the party's own Opus stream (see `celt_only`).
                match &mut enc.kind {
                    EncoderKind::Opus(o) => o.celt_only().ok()?,
                    #[allow(unreachable_patterns)]
                    _ => return None,
                }
                Some(enc)
            })
            .flatten();
        CodedAudio {
            g729,
            opus,
            g729_dec: None,
            opus_dec: None,
        }
    }

    /// Whether packets of kind `k` can carry rendered audio.
    pub(super) fn can(&self, k: PayloadKind) -> bool {
        match k {
            PayloadKind::G729 => self.g729.is_some(),
            PayloadKind::Opus => self.opus.is_some(),
            _ => false,
        }
    }

    /// 8 kHz samples an audio payload of kind `k` stands for (G.729: its speech frames;
    /// a trailing SID frame is dropped with the replacement).
    pub(super) fn samples_of(k: PayloadKind, payload: &[u8]) -> usize {
        match k {
            PayloadKind::G729 => payload.len() / G729_BYTES * G729_FRAME,
            PayloadKind::Opus => {
                opus_packet_samples(payload).unwrap_or(0) as usize / OPUS_CLOCK_RATIO as usize
            }
            _ => 0,
        }
    }

    /// 8 kHz samples of `step` units of the RTP clock of kind `k` (an event packet turned
    /// into audio stands for one packet of the line).
    pub(super) fn samples_per_step(k: PayloadKind, step: u32) -> usize {
        match k {
            PayloadKind::G729 => step as usize / G729_FRAME * G729_FRAME,
            PayloadKind::Opus => (step / OPUS_CLOCK_RATIO) as usize,
            _ => step as usize,
        }
    }

    /// The 8 kHz sample index of RTP timestamp `ts` (the tone's phase).
    pub(super) fn phase_of(k: PayloadKind, ts: u32) -> u32 {
        if k == PayloadKind::Opus {
            ts / OPUS_CLOCK_RATIO
        } else {
            ts
        }
    }

    /// Bytes the payload of `samples` may need in `k` (room to check before writing).
    pub(super) fn room_for(k: PayloadKind, samples: usize) -> usize {
        match k {
            PayloadKind::G729 => samples / G729_FRAME * G729_BYTES,
            // A 60 ms frame at the bit rate above is 180 bytes; libopus never exceeds the
            // room it is given.
            PayloadKind::Opus => 200,
            _ => samples,
        }
    }

    /// Encode `pcm` (8 kHz mono) as one payload of kind `k` into `out`; its length, or
    /// `None` when that cannot be done (no encoder, a length the codec has no frame for).
    pub(super) fn encode(&mut self, k: PayloadKind, pcm: &[i16], out: &mut [u8]) -> Option<usize> {
        match k {
            PayloadKind::G729 => {
                let enc = self.g729.as_mut()?;
                if pcm.is_empty() || !pcm.len().is_multiple_of(G729_FRAME) {
                    return None;
                }
                let mut n = 0;
                for frame in pcm.chunks_exact(G729_FRAME) {
                    let dst = out.get_mut(n..n + G729_BYTES)?;
                    n += enc.encode(frame, dst).ok()?;
                }
                Some(n)
            }
            PayloadKind::Opus => match &mut self.opus.as_mut()?.kind {
                EncoderKind::Opus(enc) => enc.encode(pcm, out).ok().filter(|&n| n > 0),
                #[allow(unreachable_patterns)]
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dtmf_inject::tone_sample;

    fn tone(samples: usize) -> Vec<i16> {
        (0..samples as u32)
            .map(|i| tone_sample(5, 8, RATE, i))
            .collect()
    }

    #[test]
    fn g729_and_opus_payloads_decode_to_the_tone() {
        let mut c = CodedAudio::new(&[PayloadKind::G729, PayloadKind::Opus]);
        assert!(c.can(PayloadKind::G729) && c.can(PayloadKind::Opus));
        let mut out = [0u8; 400];
        let n = c.encode(PayloadKind::G729, &tone(160), &mut out).unwrap();
        assert_eq!(n, 20);
        assert_eq!(CodedAudio::samples_of(PayloadKind::G729, &out[..n]), 160);
        let n = c.encode(PayloadKind::Opus, &tone(160), &mut out).unwrap();
        assert!(n <= CodedAudio::room_for(PayloadKind::Opus, 160));
        assert_eq!(CodedAudio::samples_of(PayloadKind::Opus, &out[..n]), 160);
        let opus = Codec::lookup("opus", 48_000, Some(2), None).unwrap();
        let mut dec = opus.decoder_at(8000).unwrap();
        let mut pcm = vec![0i16; 960];
        let got = dec.decode(&out[..n], &mut pcm).unwrap();
        assert_eq!(got, 160);
        assert!(
            pcm[..got].iter().any(|s| s.unsigned_abs() > 1000),
            "audible"
        );
        // No frame of that length.
        assert_eq!(c.encode(PayloadKind::G729, &tone(100), &mut out), None);
        assert!(!CodedAudio::none().can(PayloadKind::G729));
    }
}
