//! Opus through the system libopus (`audiopus` 0.2 links it via pkg-config).
//!
//! rtpengine: the `opus` codec definition of `codeclib.c` (through ffmpeg's libopus wrapper).
//! The RTP clock of Opus is always 48 kHz (RFC 7587), whatever rate the PCM side runs at;
//! libopus resamples internally when encoding or decoding at 8/12/16/24 kHz.

use audiopus::coder::{Decoder as RawDecoder, Encoder as RawEncoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};

use crate::CodecError;

/// Largest payload one Opus packet needs (RFC 6716 §3.4 recommends 1275 bytes per frame).
pub const MAX_PACKET: usize = 1275;
/// Longest packet duration in samples per channel at 48 kHz (120 ms).
pub const MAX_FRAME_48K: usize = 5760;

/// Encoder settings. rtpengine: the `opus` codec options (`complexity`, `bitrate`, fmtp
/// `useinbandfec`, `usedtx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// PCM rate: 8000, 12000, 16000, 24000 or 48000.
    pub sample_rate: u32,
    /// 1 or 2 (interleaved).
    pub channels: u8,
    /// 0 (cheapest) to 10 (best).
    pub complexity: u8,
    /// Target bits per second; `None` lets libopus choose.
    pub bitrate: Option<i32>,
    /// In-band forward error correction (LBRR), decodable from the next packet.
    pub inband_fec: bool,
    /// Expected loss percentage; steers how much FEC the encoder spends.
    pub packet_loss_perc: u8,
    /// Discontinuous transmission: near-empty packets during silence.
    pub dtx: bool,
}

impl Default for OpusConfig {
    fn default() -> Self {
        OpusConfig {
            sample_rate: 48000,
            channels: 1,
            complexity: 5,
            bitrate: None,
            inband_fec: false,
            packet_loss_perc: 0,
            dtx: false,
        }
    }
}

fn sample_rate(rate: u32) -> Result<SampleRate, CodecError> {
    Ok(match rate {
        8000 => SampleRate::Hz8000,
        12000 => SampleRate::Hz12000,
        16000 => SampleRate::Hz16000,
        24000 => SampleRate::Hz24000,
        48000 => SampleRate::Hz48000,
        other => return Err(CodecError::UnsupportedRate(other)),
    })
}

fn channels(n: u8) -> Result<Channels, CodecError> {
    match n {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        other => Err(CodecError::UnsupportedChannels(other)),
    }
}

/// An Opus encoder. rtpengine: an `encoder_t` with the opus `codec_def_t`.
pub struct OpusEncoder {
    inner: RawEncoder,
    config: OpusConfig,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish()
    }
}

impl OpusEncoder {
    /// Builds and configures an encoder (VoIP application, voice signal).
    pub fn new(config: OpusConfig) -> Result<Self, CodecError> {
        let mut inner = RawEncoder::new(
            sample_rate(config.sample_rate)?,
            channels(config.channels)?,
            Application::Voip,
        )?;
        inner.set_complexity(config.complexity.min(10))?;
        inner.set_bitrate(match config.bitrate {
            Some(bps) => Bitrate::BitsPerSecond(bps),
            None => Bitrate::Auto,
        })?;
        inner.set_inband_fec(config.inband_fec)?;
        inner.set_packet_loss_perc(config.packet_loss_perc.min(100))?;
        inner.set_signal(audiopus::Signal::Voice)?;
        // audiopus 0.2 has no DTX setter; OPUS_SET_DTX is a plain integer CTL.
        inner.set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, config.dtx as i32)?;
        Ok(OpusEncoder { inner, config })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// CELT frames only (libopus' restricted low-delay application), set before the first
    /// frame is encoded. For frames spliced into another encoder's stream: a decoder that
    /// switches from that stream's SILK frames to these resets the mode it leaves, where
    /// SILK frames of a second encoder would run on the first one's long-term prediction
    /// state (a tone can then grow to clipping).
    pub fn celt_only(&mut self) -> Result<(), CodecError> {
        self.inner.set_encoder_ctl_request(
            audiopus::ffi::OPUS_SET_APPLICATION_REQUEST,
            audiopus::ffi::OPUS_APPLICATION_RESTRICTED_LOWDELAY,
        )?;
        Ok(())
    }

    /// Encodes one frame of interleaved PCM (2.5 to 60 ms at the configured rate) into `out`;
    /// returns the payload length. With DTX, silence yields 1 to 2 byte packets.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let per_ms = self.config.sample_rate as usize / 1000 * self.config.channels as usize;
        // Opus frames are 2.5, 5, 10, 20, 40 or 60 ms.
        let valid = [5, 10, 20, 40, 80, 120]
            .iter()
            .any(|&half_ms| pcm.len() * 2 == half_ms * per_ms);
        if !valid {
            return Err(CodecError::PcmLength {
                expected: 20 * per_ms,
                got: pcm.len(),
            });
        }
        if out.is_empty() {
            return Err(CodecError::OutputTooSmall {
                needed: MAX_PACKET,
                got: 0,
            });
        }
        Ok(self.inner.encode(pcm, out)?)
    }
}

/// An Opus decoder. rtpengine: a `decoder_t` with the opus `codec_def_t`.
pub struct OpusDecoder {
    inner: RawDecoder,
    sample_rate: u32,
    channels: u8,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish()
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` interleaved channels at `sample_rate`.
    pub fn new(sample_rate: u32, channel_count: u8) -> Result<Self, CodecError> {
        let inner = RawDecoder::new(self::sample_rate(sample_rate)?, channels(channel_count)?)?;
        Ok(OpusDecoder {
            inner,
            sample_rate,
            channels: channel_count,
        })
    }

    /// PCM rate of the output.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Output channels.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Decodes a packet; returns samples per channel written (interleaved) into `out`, which
    /// must hold the packet's duration (up to 120 ms).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::PayloadLength {
                codec: "opus",
                len: 0,
            });
        }
        Ok(self.inner.decode(Some(payload), out, false)?)
    }

    /// Packet loss concealment for a missing packet of `samples` per channel.
    pub fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        let out = crate::take_out(out, samples * self.channels as usize)?;
        Ok(self.inner.decode(None::<&[u8]>, out, false)?)
    }

    /// Recovers a missing packet of `samples` per channel from the in-band FEC data carried in
    /// `next` (the packet after the lost one). Falls back to PLC inside libopus when `next`
    /// carries no FEC. Decode `next` itself afterwards as usual.
    pub fn decode_fec(
        &mut self,
        next: &[u8],
        samples: usize,
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        if next.is_empty() {
            return self.conceal(samples, out);
        }
        let out = crate::take_out(out, samples * self.channels as usize)?;
        Ok(self.inner.decode(Some(next), out, true)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{align, dominant_frequency, read_wav, sine, snr_db};

    fn round_trip(pcm: &[i16], config: OpusConfig, frame: usize) -> Vec<i16> {
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut dec = OpusDecoder::new(config.sample_rate, config.channels).unwrap();
        let mut payload = [0u8; MAX_PACKET];
        let mut out = vec![0i16; pcm.len() / frame * frame];
        for (inp, outp) in pcm.chunks_exact(frame).zip(out.chunks_exact_mut(frame)) {
            let len = enc.encode(inp, &mut payload).unwrap();
            assert_eq!(dec.decode(&payload[..len], outp).unwrap(), frame);
        }
        out
    }

    #[test]
    fn speech_round_trip_48k() {
        let (rate, pcm) = read_wav("speech-48k.wav");
        assert_eq!(rate, 48000);
        let config = OpusConfig {
            bitrate: Some(32000),
            ..OpusConfig::default()
        };
        let out = round_trip(&pcm, config, 960);
        let (lag, corr) = align(&pcm, &out, 960);
        let n = out.len() - lag;
        let snr = snr_db(&pcm[..n], &out[lag..lag + n]);
        eprintln!("opus speech 48k: delay {lag}, correlation {corr:.3}, SNR {snr:.2} dB");
        // Measured with libopus 1.3.1, complexity 5, 32 kbit/s: delay 309 samples (6.5 ms),
        // correlation 0.955, SNR 10.5 dB.
        assert!((250..=400).contains(&lag), "delay {lag}");
        assert!(corr > 0.93, "correlation {corr}");
        assert!(snr > 8.0, "SNR {snr}");
    }

    #[test]
    fn sine_keeps_frequency_at_every_rate() {
        for rate in [8000, 12000, 16000, 24000, 48000] {
            let frame = rate as usize / 50;
            let pcm = sine(1000.0, rate, frame * 50, 10000.0);
            let config = OpusConfig {
                sample_rate: rate,
                complexity: 10,
                ..OpusConfig::default()
            };
            let out = round_trip(&pcm, config, frame);
            let tail = &out[frame * 10..];
            let f = dominant_frequency(tail, rate, 200.0, 3000.0, 10.0);
            assert!((f - 1000.0).abs() <= 10.0, "{rate} Hz: dominant {f}");
            let (lag, _) = align(&pcm, &out, frame);
            let n = out.len() - lag - frame * 10;
            let snr = snr_db(&pcm[frame * 10..][..n], &out[frame * 10 + lag..][..n]);
            eprintln!("opus 1 kHz sine @ {rate}: delay {lag}, SNR {snr:.1} dB");
            // Measured: 16.6 dB at 8 kHz up to 31.5 dB at 48 kHz.
            assert!(snr > 12.0, "{rate} Hz: SNR {snr}");
        }
    }

    #[test]
    fn stereo_and_frame_sizes() {
        let config = OpusConfig {
            channels: 2,
            ..OpusConfig::default()
        };
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut dec = OpusDecoder::new(48000, 2).unwrap();
        let mut payload = [0u8; MAX_PACKET];
        let mut out = [0i16; MAX_FRAME_48K * 2];
        for ms in [10usize, 20, 40, 60] {
            let pcm = vec![0i16; 48 * ms * 2];
            let len = enc.encode(&pcm, &mut payload).unwrap();
            assert_eq!(dec.decode(&payload[..len], &mut out).unwrap(), 48 * ms);
        }
        assert!(matches!(
            enc.encode(&[0; 1000], &mut payload),
            Err(CodecError::PcmLength { .. })
        ));
        assert!(matches!(
            OpusDecoder::new(44100, 1),
            Err(CodecError::UnsupportedRate(44100))
        ));
        assert!(matches!(
            OpusDecoder::new(48000, 3),
            Err(CodecError::UnsupportedChannels(3))
        ));
        assert!(dec.decode(&[], &mut out).is_err());
    }

    #[test]
    fn plc_and_fec_recover_a_lost_packet() {
        let (_, pcm) = read_wav("speech-48k.wav");
        let config = OpusConfig {
            inband_fec: true,
            packet_loss_perc: 20,
            bitrate: Some(32000),
            ..OpusConfig::default()
        };
        let mut enc = OpusEncoder::new(config).unwrap();
        let packets: Vec<Vec<u8>> = pcm
            .chunks_exact(960)
            .map(|f| {
                let mut p = [0u8; MAX_PACKET];
                let n = enc.encode(f, &mut p).unwrap();
                p[..n].to_vec()
            })
            .collect();
        // Reference decode, then the same with packet 60 lost, concealed by PLC or by FEC.
        let decode_with = |lost: Option<bool>| {
            let mut dec = OpusDecoder::new(48000, 1).unwrap();
            let mut out = vec![0i16; packets.len() * 960];
            for (i, frame) in out.chunks_exact_mut(960).enumerate() {
                let n = match (i, lost) {
                    (60, Some(true)) => dec.decode_fec(&packets[61], 960, frame).unwrap(),
                    (60, Some(false)) => dec.conceal(960, frame).unwrap(),
                    _ => dec.decode(&packets[i], frame).unwrap(),
                };
                assert_eq!(n, 960);
            }
            out
        };
        let reference = decode_with(None);
        let lost = &reference[60 * 960..61 * 960];
        let plc = decode_with(Some(false));
        let fec = decode_with(Some(true));
        let snr_plc = snr_db(lost, &plc[60 * 960..61 * 960]);
        let snr_fec = snr_db(lost, &fec[60 * 960..61 * 960]);
        eprintln!("opus lost packet: PLC SNR {snr_plc:.1} dB, FEC SNR {snr_fec:.1} dB");
        // Measured: PLC -0.9 dB, FEC 4.5 dB (FEC is a low-rate copy, PLC a guess).
        assert!(snr_fec > snr_plc + 3.0, "FEC {snr_fec} vs PLC {snr_plc}");
    }

    #[test]
    fn dtx_shrinks_silence() {
        let config = OpusConfig {
            dtx: true,
            ..OpusConfig::default()
        };
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut payload = [0u8; MAX_PACKET];
        let silence = [0i16; 960];
        let sizes: Vec<usize> = (0..30)
            .map(|_| enc.encode(&silence, &mut payload).unwrap())
            .collect();
        assert!(sizes[20..].iter().all(|&n| n <= 2), "{sizes:?}");
    }

    #[test]
    fn codecs_are_send() {
        fn is_send<T: Send>() {}
        is_send::<OpusEncoder>();
        is_send::<OpusDecoder>();
    }
}
