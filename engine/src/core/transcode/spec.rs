//! What a transcoder converts and what it counts: the types negotiation builds and the
//! Opus encoder settings chosen for them.

use ngmedia_codecs::{Codec, CodecError};

/// Opus bitrate when neither `codec: {set: [opus/…/BITRATE]}` nor the receiver's
/// `maxaveragebitrate` gives one: rtpengine's default, and where PESQ stops improving
/// (narrowband speech, complexity 5: 3.04 at libopus' own 11 kbit/s, 3.56 at 16, 3.69 at
/// 24, 3.73 at 32; see the transcoding measurements in docs/performance.md).
pub const OPUS_DEFAULT_BITRATE: u32 = 32_000;

/// Opus encoder complexity for a bitrate and the PCM rate the encoder is fed, chosen by PESQ
/// against the encoder's CPU time.
///
/// Narrowband (8 kHz PCM, next to G.711, G.729, AMR-NB; P.862 narrowband, `bench/pesq.sh
/// --sweep`, two runs): at 32 kbit/s and above the bits leave the encoder's analysis little
/// to add: complexity 0 scores 3.72 / 3.69, 3 3.72 / 3.70, 5 3.73 / 3.73, for 29 µs encode
/// and decode a frame at 0 against 45 at 3 and 55 at 5; through the engine PCMU → Opus →
/// PCMU scores 3.72 at 0 as at 3 (rtpengine 3.64; `bench/pesq.sh --engines
/// ngmedia,rtpengine --codecs opus`). From 24 kbit/s complexity 3 (24 kbit/s: 3.70 / 3.67
/// against 3.61 / 3.63 at 0); below that the extra analysis of 5 is worth it (3.56 against
/// 3.44 at 16 kbit/s).
///
/// Wider (16 kHz PCM next to G.722 and AMR-WB, and above): SILK's perceptual noise shaping
/// (frequency warping, from complexity 4) and its extra delayed-decision states (6 and 8)
/// matter far more in wideband. P.862.2 wideband PESQ of 16 kHz speech through G.722 → Opus
/// (16 kHz) and AMR-WB 14.25 kbit/s → Opus, `python3 bench/pesq_wideband.py --sweep`
/// (encoder µs per 20 ms in brackets): at 32 kbit/s G.722 → Opus scores 2.69 (69 µs) at
/// complexity 3, 2.93 (91) at 4 and 5, 2.97 (123) at 6, 2.99 (182) at 8 to 10, and
/// rtpengine's way (48 kHz PCM, complexity 10) 2.90; AMR-WB → Opus 2.57, 2.69, 2.72, 2.72
/// (rtpengine's way 2.66). From 32 kbit/s on, complexity 4 scores above rtpengine's way on
/// both paths and within 0.06 MOS of the best for half the encoder time of 8 (40 kbit/s:
/// 2.99 against 3.03); below 32 kbit/s the higher complexities are worth more: 6 from 24
/// kbit/s (24 kbit/s: 2.87 against 2.80 at 4 and 2.92 at 8), 8 below (16 kbit/s: 2.74
/// against 2.62 at 6). 48 kHz PCM (Opus to Opus) follows the same rule: the sweep's rows at
/// 48 kHz rank complexities 3, 5 and 10 alike.
pub fn opus_complexity(bitrate: u32, pcm_rate: u32) -> u8 {
    if pcm_rate <= 8_000 {
        if bitrate >= 32_000 {
            0
        } else if bitrate >= 24_000 {
            3
        } else {
            5
        }
    } else if bitrate < 24_000 {
        8
    } else if bitrate < 32_000 {
        6
    } else {
        4
    }
}

/// One side of a transcoder: codec, payload types and packetisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecEnd {
    pub codec: Codec,
    /// Payload type of the audio codec on this side.
    pub pt: u8,
    /// Packet duration (output: what we produce; input: informative).
    pub ptime_ms: u32,
    /// This side's telephone-event payload type at the codec's clock rate, if it has one.
    pub event_pt: Option<u8>,
    /// Encoder bitrate from `codec: {set: [...]}` (Opus), `None` for the default.
    pub bitrate: Option<u32>,
    /// This side's RFC 3389 comfort noise payload type (CN/8000), if it has one. Input:
    /// CN packets are decoded into noise (or forwarded when the output has CN too).
    /// Output: silent frames leave as CN when silence detection is on, and input CN is
    /// forwarded under this payload type.
    pub cn_pt: Option<u8>,
    /// Output: the encoder's own discontinuous transmission (the codec option `dtx=1`,
    /// rtpengine's `/dtx--1` seventh field): Opus sends nothing for silence, AMR sends SID
    /// frames and nothing between them.
    pub dtx: bool,
    /// Input, AMR: rtpengine's decoder option `CMR-interval` in ms (0 = off): a party that
    /// sends only modes below the next one it may use is asked for that one (a CMR in what
    /// we send it). See [`ngmedia_codecs::amr::RateWatch`].
    pub cmr_interval_ms: u32,
    /// Input, AMR: rtpengine's decoder option `mode-change-interval` in ms (0 = off): no
    /// CMR from the party for this long moves our encoder toward it one mode up.
    pub mode_change_interval_ms: u32,
}

/// Silence detection toward a side with comfort noise (rtpengine's `--silence-detect` and
/// `--cn-payload`): an output frame whose every sample is within `threshold` of zero is
/// sent as a CN packet carrying `payload` instead of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceDetect {
    /// Largest absolute 16-bit sample value that counts as silence.
    pub threshold: i16,
    /// The CN payload sent for a silent frame (rtpengine's default: level 32, no
    /// coefficients).
    pub payload: ngmedia_codecs::cn::CnPayload,
}

impl SilenceDetect {
    /// From rtpengine's options: `percent` of full scale (`--silence-detect`, 0 = off) and
    /// the `--cn-payload` bytes (empty = the default `32`). `None` when off or when the
    /// payload is not a valid CN payload.
    pub fn from_options(percent: f64, cn_payload: &[u8]) -> Option<SilenceDetect> {
        if percent.is_nan() || percent <= 0.0 {
            return None;
        }
        let payload = match cn_payload {
            [] => ngmedia_codecs::cn::CnPayload::flat(32),
            bytes => ngmedia_codecs::cn::CnPayload::parse(bytes).ok()?,
        };
        // rtpengine scales the percentage to 32 bits and keeps the top 16 for 16-bit PCM.
        let scaled = (percent.min(100.0) / 100.0 * u32::MAX as f64) as u32;
        Some(SilenceDetect {
            threshold: (scaled >> 16).min(i16::MAX as u32) as i16,
            payload,
        })
    }
}

/// What a transcoder converts: built at negotiation, carried in the stream plan.
/// rtpengine: the pair of `rtp_payload_type`s a `codec_handler` is set up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscodeSpec {
    pub input: CodecEnd,
    pub output: CodecEnd,
    /// Detect DTMF tones in the decoded audio and send them as telephone-event with the
    /// output side's payload type (rtpengine: `pcm_dtmf_detect` of the `detect DTMF`
    /// flag). Takes effect only when the output side has telephone-event.
    pub detect_dtmf: bool,
    /// Payload types both sides share, relayed beside the transcoded one: only the SSRC and
    /// the sequence number change, so they join the transcoder's output line (rtpengine's
    /// `handler_func_passthrough_ssrc` next to a transcoding handler in one media).
    pub passthrough: PtSet,
}

/// A set of RTP payload types (0..=127), one bit each: `Copy`, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PtSet(u128);

impl PtSet {
    pub const NONE: PtSet = PtSet(0);

    pub fn insert(&mut self, pt: u8) {
        if pt < 128 {
            self.0 |= 1 << pt;
        }
    }

    pub fn contains(self, pt: u8) -> bool {
        pt < 128 && self.0 & (1 << pt) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The payload types in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..128u8).filter(move |&pt| self.contains(pt))
    }
}

impl FromIterator<u8> for PtSet {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> PtSet {
        let mut set = PtSet::NONE;
        for pt in iter {
            set.insert(pt);
        }
        set
    }
}

/// Counters of one transcoder (for RTCP and diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeCounters {
    /// Input packets accepted (audio and events).
    pub received: u64,
    /// Input packets that could not be decoded, or had an unknown payload type.
    pub errors: u64,
    /// Input packets too old to use (duplicates, late reordering).
    pub late: u64,
    /// Lost input packets filled by concealment.
    pub concealed: u64,
    /// Lost input packets not concealed: past the stream's concealment budget.
    pub unconcealed: u64,
    /// Output packets dropped because nobody polled the queue.
    pub overflow: u64,
    /// Output RTP packets and payload octets produced (the RTCP SR sender counts).
    pub sent_packets: u32,
    pub sent_octets: u32,
}

/// Why a transcoder could not be built (negotiation picked something the codecs cannot do).
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("{0} cannot be transcoded")]
    NotAudio(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowband_complexity_is_0_from_32_kbits_3_from_24_and_5_below() {
        assert_eq!(opus_complexity(OPUS_DEFAULT_BITRATE, 8_000), 0);
        assert_eq!(opus_complexity(31_999, 8_000), 3);
        assert_eq!(opus_complexity(24_000, 8_000), 3);
        assert_eq!(opus_complexity(23_999, 8_000), 5);
        assert_eq!(opus_complexity(6_000, 8_000), 5);
        assert_eq!(opus_complexity(510_000, 8_000), 0);
    }

    #[test]
    fn wideband_complexity_is_8_below_24_kbits_6_below_32_and_4_from_there() {
        for rate in [16_000, 24_000, 48_000] {
            assert_eq!(opus_complexity(6_000, rate), 8);
            assert_eq!(opus_complexity(16_000, rate), 8);
            assert_eq!(opus_complexity(23_999, rate), 8);
            assert_eq!(opus_complexity(24_000, rate), 6);
            assert_eq!(opus_complexity(31_999, rate), 6);
            assert_eq!(opus_complexity(OPUS_DEFAULT_BITRATE, rate), 4);
            assert_eq!(opus_complexity(40_000, rate), 4);
            assert_eq!(opus_complexity(510_000, rate), 4);
        }
    }
}
