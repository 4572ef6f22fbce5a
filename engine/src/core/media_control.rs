//! Media control of one party (rtpengine's `block DTMF`, `block media`, `silence media` and
//! their `un…` counterparts, `call_interfaces.c`): what the control plane records, what a
//! stream's plan carries, and the in-place packet rewrite the worker applies.
//!
//! * [`MediaControl`] is the one shape of the setting: kept on the call (whole-call
//!   commands) and on each leg (directional commands, `from-tag`), persisted as is, so a
//!   takeover keeps a block. A call-wide DTMF block mode wins over a leg's, as in rtpengine.
//! * [`StreamControl`] is what one RTP/RTCP socket applies to what its party sends: block
//!   everything (counted and latched, nothing forwarded), drop telephone-event packets,
//!   or rewrite the payload to silence in the party's own codec ([`silence_payload`]).
//!   It is plain data built at plan time; the packet path reads it and allocates nothing.
//! * In-band digits of a transcoded stream are masked by its transcoder (see
//!   `transcode::Transcoder::set_block_dtmf`).

use std::sync::OnceLock;

use ngmedia_codecs::amr::{self, AmrBand, AmrParams, StorageFrame, MAX_FRAMES, STORAGE_MAX};
use ngmedia_codecs::{Codec, CodecKind, CodecParams, EncoderOptions};
use serde::{Deserialize, Serialize};

use super::dtmf_security::{DtmfTrigger, SecurityConfig};
use super::rtp::RtpHeader;

/// How DTMF from a party is blocked (rtpengine's `enum block_dtmf_mode`, the
/// `DTMF-security` key). Every mode drops RFC 4733 events; they differ in what replaces
/// in-band digits where audio is decoded (a transcoded stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockDtmf {
    /// Not blocked.
    #[default]
    Off,
    /// Events dropped; in-band digits replaced by silence.
    Drop,
    /// Events dropped; in-band digits replaced by silence.
    Silence,
    /// Events dropped; in-band digits replaced by a plain tone (`frequency`, 400 Hz).
    Tone,
    /// Events dropped; in-band digits replaced by a random DTMF digit.
    Random,
    /// Events dropped; in-band digits replaced by the digit 0.
    Zero,
    /// Events dropped; in-band digits replaced by the digit given in `digit`/`code`.
    Dtmf,
}

impl BlockDtmf {
    /// A `DTMF-security` value as rtpengine spells it.
    pub fn parse(value: &str) -> Option<BlockDtmf> {
        Some(match value.trim() {
            "off" => BlockDtmf::Off,
            "drop" => BlockDtmf::Drop,
            "silence" => BlockDtmf::Silence,
            "tone" => BlockDtmf::Tone,
            "random" => BlockDtmf::Random,
            "zero" => BlockDtmf::Zero,
            "DTMF" | "dtmf" => BlockDtmf::Dtmf,
            _ => return None,
        })
    }

    pub fn is_on(self) -> bool {
        self != BlockDtmf::Off
    }
}

/// The media control state of a call or of one party (rtpengine: `block_dtmf`,
/// `block_media` and `silence_media` of `struct call` and `struct call_monologue`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaControl {
    #[serde(default)]
    pub block_dtmf: BlockDtmf,
    #[serde(default)]
    pub block_media: bool,
    #[serde(default)]
    pub silence_media: bool,
    /// Frequency (Hz) of the replacement tone of [`BlockDtmf::Tone`].
    #[serde(default)]
    pub tone_freq: Option<u32>,
    /// Replacement digit of [`BlockDtmf::Dtmf`] (event code 0–15).
    #[serde(default)]
    pub digit: Option<u8>,
    /// Level (-dBm0) of the replacement tone or digit (`volume`; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    /// Every replacement tone frequency (`frequencies`), used in turn, one per digit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frequencies: Vec<u32>,
    /// DTMF trigger (`trigger` and its companions of `block DTMF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<DtmfTrigger>,
    /// Tags of the parties toward which this party's media is blocked, or silenced, one
    /// media flow each (`block media`/`silence media` with `to-tag`; rtpengine's
    /// `sink_attrs` of a media subscription).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silenced_to: Vec<String>,
    /// `delay-buffer` (ms): the party's media is held this long before it goes on
    /// (rtpengine's `buffer_delay` of the party's medias); `None`: never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_buffer: Option<u32>,
    /// `DTMF-delay` (ms): the party's digits are silenced and played this much later
    /// (rtpengine's `dtmf_delay` of a monologue).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dtmf_delay: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl MediaControl {
    pub fn is_default(&self) -> bool {
        *self == MediaControl::default()
    }

    /// What applies to a party: the call's setting combined with the party's own.
    pub fn combine(call: &MediaControl, leg: &MediaControl) -> MediaControl {
        let (block_dtmf, src) = if call.block_dtmf.is_on() {
            (call.block_dtmf, call)
        } else {
            (leg.block_dtmf, leg)
        };
        MediaControl {
            block_dtmf,
            block_media: call.block_media || leg.block_media,
            silence_media: call.silence_media || leg.silence_media,
            tone_freq: src.tone_freq,
            digit: src.digit,
            volume: src.volume,
            frequencies: src.frequencies.clone(),
            // A party's trigger, else the call's.
            trigger: leg.trigger.clone().or_else(|| call.trigger.clone()),
            blocked_to: leg.blocked_to.clone(),
            silenced_to: leg.silenced_to.clone(),
            delay_buffer: leg.delay_buffer.or(call.delay_buffer),
            dtmf_delay: if leg.dtmf_delay > 0 {
                leg.dtmf_delay
            } else {
                call.dtmf_delay
            },
        }
    }
}

/// What kind of payload a payload type of a party's stream carries, as far as media
/// control cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// telephone-event (RFC 4733).
    Event,
    Pcmu,
    Pcma,
    G729,
    Opus,
    /// G.722: silenced as rtpengine does (its `silence_pattern`, every byte 0xFA).
    G722,
    /// AMR or AMR-WB in this payload format: speech frames become encoded silence of the
    /// same mode, SID frames NO_DATA (rtpengine leaves AMR as it is).
    Amr(AmrBand, AmrParams),
    /// Anything else: passed on untouched by `silence media`.
    Other,
}

impl PayloadKind {
    /// The kind of an SDP codec (`a=rtpmap` name).
    pub fn of_name(name: &str) -> PayloadKind {
        match name.to_ascii_lowercase().as_str() {
            "telephone-event" => PayloadKind::Event,
            "pcmu" => PayloadKind::Pcmu,
            "pcma" => PayloadKind::Pcma,
            "g729" | "g729a" => PayloadKind::G729,
            "opus" => PayloadKind::Opus,
            _ => PayloadKind::Other,
        }
    }

    /// The kind of an SDP codec for `silence media`: as [`PayloadKind::of_name`], and
    /// G.722 and AMR (with the payload format its fmtp gives) too.
    pub fn of_codec(name: &str, rate: u32, fmtp: Option<&str>) -> PayloadKind {
        let kind = PayloadKind::of_name(name);
        if kind != PayloadKind::Other {
            return kind;
        }
        let Ok(codec) = Codec::lookup(name, rate, None, fmtp) else {
            return kind;
        };
        match codec.kind() {
            CodecKind::G722 => PayloadKind::G722,
            CodecKind::Amr => PayloadKind::Amr(AmrBand::Narrow, codec.amr_params()),
            CodecKind::AmrWb => PayloadKind::Amr(AmrBand::Wide, codec.amr_params()),
            _ => kind,
        }
    }
}

/// Media control of one socket, applied to what its party sends (carried in the plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamControl {
    /// Nothing the party sends is forwarded (RTP and RTCP; still counted and latched).
    pub block_media: bool,
    /// Telephone-event packets of the party are dropped.
    pub block_dtmf: BlockDtmf,
    /// The party's RTP payloads are replaced by silence in its codec.
    pub silence: bool,
    /// Replacement tone (Hz), digit and level (-dBm0) for in-band digits of a transcoded
    /// stream.
    pub tone_freq: Option<u32>,
    pub digit: Option<u8>,
    pub volume: Option<u8>,
    /// Payload types of the party's stream and what they carry.
    pub payloads: Vec<(u8, PayloadKind)>,
    /// Who sends here, for DTMF reports (`--dtmf-log-dest`); the RTP port only.
    pub dtmf_log: Option<std::sync::Arc<super::dtmf_log::DtmfLogSource>>,
    /// A replacement mode or a trigger: the stream's `dtmf_security::DtmfGuard` handles
    /// telephone-event and in-band digits instead of the plain drop above.
    pub security: Option<SecurityConfig>,
    /// Only the flow toward the peer is blocked or silenced (`to-tag`); subscribers still
    /// get the party's media as sent.
    pub block_peer: bool,
    pub silence_peer: bool,
}

/// What the media control of a stream does with one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlVerdict {
    /// Forward the packet, now `len` bytes long.
    Forward(usize),
    /// Do not forward it (counted as received, not as an error).
    Block,
}

impl StreamControl {
    /// Whether anything is to be done per packet.
    #[inline]
    pub fn active(&self) -> bool {
        self.block_media
            || self.block_dtmf.is_on()
            || self.silence
            || self.security.is_some()
            || self.block_peer
            || self.silence_peer
    }

    /// What the flow toward the peer (only) does with an RTP packet whose payload type is
    /// `pt`, after the subscribers got their copies: `None` to forward it as is, `Some(len)`
    /// with the length after silencing it in place, or `Some(0)` to block it.
    #[inline]
    pub fn peer_flow(&self, pkt: &mut [u8], rtp: bool) -> Option<usize> {
        if self.block_peer {
            return Some(0);
        }
        if !self.silence_peer || !rtp {
            return None;
        }
        let kind =
            RtpHeader::parse(pkt).map_or(PayloadKind::Other, |h| self.kind(h.payload_type()));
        match kind {
            PayloadKind::Event => Some(0),
            k => Some(silence_payload(pkt, k)),
        }
    }

    /// The kind of payload type `pt` (`Other` when the SDP did not list it).
    #[inline]
    pub fn kind(&self, pt: u8) -> PayloadKind {
        self.payloads
            .iter()
            .find(|(p, _)| *p == pt)
            .map_or(PayloadKind::Other, |(_, k)| *k)
    }

    /// Apply the control to a plain RTP packet `pkt` (rewritten in place).
    #[inline]
    pub fn apply_rtp(&self, pkt: &mut [u8]) -> ControlVerdict {
        if self.block_media {
            return ControlVerdict::Block;
        }
        let Ok(h) = RtpHeader::parse(pkt) else {
            return ControlVerdict::Forward(pkt.len());
        };
        let kind = self.kind(h.payload_type());
        if kind == PayloadKind::Event {
            // A silenced party's events would give the digits away just the same. With
            // a guard, the guard has decided already.
            if (self.block_dtmf.is_on() && self.security.is_none()) || self.silence {
                return ControlVerdict::Block;
            }
            return ControlVerdict::Forward(pkt.len());
        }
        if self.silence {
            return ControlVerdict::Forward(silence_payload(pkt, kind));
        }
        ControlVerdict::Forward(pkt.len())
    }
}

/// Encoded silence of the codecs that are not sample-per-byte, computed once.
struct SilenceFrames {
    /// One 10 ms G.729 frame of silence.
    g729: [u8; 10],
    /// Opus packets of silence for 10, 20, 40 and 60 ms (mono, 48 kHz clock).
    opus: [(u32, Vec<u8>); 4],
    /// One AMR-NB frame of silence per mode (storage layout), empty if no encoder.
    amr_nb: Vec<StorageFrame>,
    /// The same for AMR-WB.
    amr_wb: Vec<StorageFrame>,
}

/// One silent frame (storage layout) of each mode of `band`: the last of a few frames of
/// zeros each mode's encoder gives. Empty when the encoder is not built in.
fn amr_silence(band: AmrBand) -> Vec<StorageFrame> {
    let (name, rate) = match band {
        AmrBand::Narrow => ("AMR", 8000),
        AmrBand::Wide => ("AMR-WB", 16000),
    };
    let frame_of = |mode: u8, bitrate: u32| -> Option<StorageFrame> {
        let codec = Codec::lookup(name, rate, None, Some("octet-align=1")).ok()?;
        let opts = EncoderOptions {
            bitrate: Some(bitrate),
            ..EncoderOptions::default()
        };
        let mut enc = codec.encoder_with(20, &opts).ok()?;
        let pcm = vec![0i16; enc.frame_samples()];
        let mut out = vec![0u8; enc.max_payload_len()];
        let mut last = None;
        for _ in 0..4 {
            let n = enc.encode(&pcm, &mut out).ok()?;
            amr::unpack(band, &codec.amr_params(), &out[..n], |f| {
                last = Some(*f);
                Ok(())
            })
            .ok()?;
        }
        last.filter(|f| amr::toc_ft(f[0]) == mode)
    };
    let frames: Option<Vec<StorageFrame>> = band
        .bitrates()
        .iter()
        .enumerate()
        .map(|(mode, &b)| frame_of(mode as u8, b))
        .collect();
    frames.unwrap_or_default()
}

fn silence_frames() -> &'static SilenceFrames {
    static FRAMES: OnceLock<SilenceFrames> = OnceLock::new();
    FRAMES.get_or_init(|| {
        // The last of a few frames of zeros: the encoders' steady state for silence.
        let mut g729 = [0u8; 10];
        if let Ok(codec) = Codec::lookup("G729", 8000, Some(1), Some("annexb=no")) {
            if let Ok(mut enc) = codec.encoder(10) {
                let pcm = vec![0i16; enc.frame_samples()];
                let mut out = vec![0u8; enc.max_payload_len().max(10)];
                for _ in 0..4 {
                    if let Ok(10) = enc.encode(&pcm, &mut out) {
                        g729.copy_from_slice(&out[..10]);
                    }
                }
            }
        }
        let opus_at = |ms: u32| -> (u32, Vec<u8>) {
            let samples = 48 * ms;
            let encoded = (|| {
                let mut codec = Codec::lookup("opus", 48000, Some(2), None).ok()?;
                if let CodecParams::Opus(p) = &mut codec.params {
                    p.stereo = false;
                    p.sprop_stereo = false;
                    p.usedtx = false;
                }
                let opts = EncoderOptions {
                    pcm_rate: Some(48_000),
                    ..EncoderOptions::default()
                };
                let mut enc = codec.encoder_with(ms, &opts).ok()?;
                let pcm = vec![0i16; enc.frame_samples()];
                let mut out = vec![0u8; enc.max_payload_len()];
                let mut last = None;
                for _ in 0..4 {
                    let n = enc.encode(&pcm, &mut out).ok()?;
                    if n > 0 {
                        last = Some(out[..n].to_vec());
                    }
                }
                last
            })();
            (samples, encoded.unwrap_or_default())
        };
        SilenceFrames {
            g729,
            opus: [opus_at(10), opus_at(20), opus_at(40), opus_at(60)],
            amr_nb: amr_silence(AmrBand::Narrow),
            amr_wb: amr_silence(AmrBand::Wide),
        }
    })
}

/// Compute the encoded silence frames now (call on the control plane, so the packet path
/// never does).
pub fn prepare_silence() {
    let _ = silence_frames();
}

/// Samples (48 kHz) of an Opus packet from its TOC (RFC 6716 §3.1); `None` if malformed.
pub(crate) fn opus_packet_samples(payload: &[u8]) -> Option<u32> {
    let toc = *payload.first()?;
    let config = toc >> 3;
    // Frame size in units of 2.5 ms.
    let frame = match config {
        0..=11 => [4, 8, 16, 24][(config % 4) as usize],
        12..=15 => [4, 8][(config % 2) as usize],
        _ => [1, 2, 4, 8][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*payload.get(1)? & 0x3f),
    };
    Some(frame * frames * 120)
}

/// Replace the payload of the plain RTP packet `pkt` by silence of the same duration in
/// codec `kind` (PCMU 0xFF, PCMA 0xD5, G.722 0xFA, G.729, Opus and AMR encoded silence);
/// returns the new length. Padding is removed. Payloads of other codecs are left as they
/// are.
pub fn silence_payload(pkt: &mut [u8], kind: PayloadKind) -> usize {
    let Ok(h) = RtpHeader::parse(pkt) else {
        return pkt.len();
    };
    let Ok(payload) = h.payload() else {
        return pkt.len();
    };
    let (start, plen) = (h.header_len(), payload.len());
    let end = start + plen;
    let fill = match kind {
        PayloadKind::Pcmu => Some(ngmedia_codecs::g711::ULAW_SILENCE),
        PayloadKind::Pcma => Some(ngmedia_codecs::g711::ALAW_SILENCE),
        PayloadKind::G722 => Some(G722_SILENCE),
        _ => None,
    };
    let new_end = match (kind, fill) {
        (_, Some(byte)) => {
            pkt[start..end].fill(byte);
            end
        }
        (PayloadKind::G729, _) => {
            let frame = &silence_frames().g729;
            // 10-byte speech frames; a trailing 2-byte SID frame is kept out.
            let speech = plen / 10 * 10;
            for chunk in pkt[start..start + speech].chunks_exact_mut(10) {
                chunk.copy_from_slice(frame);
            }
            start + speech
        }
        (PayloadKind::Opus, _) => {
            let samples = opus_packet_samples(&pkt[start..end]).unwrap_or(960);
            let frames = &silence_frames().opus;
            let (_, silent) = frames
                .iter()
                .find(|(s, p)| *s == samples && !p.is_empty())
                .or_else(|| frames.iter().find(|(s, _)| *s == 960))
                .expect("20 ms entry");
            if silent.is_empty() || start + silent.len() > pkt.len() {
                return pkt.len();
            }
            pkt[start..start + silent.len()].copy_from_slice(silent);
            start + silent.len()
        }
        (PayloadKind::Amr(band, params), _) => {
            match amr_silence_payload(band, &params, pkt, start, end) {
                Some(len) => start + len,
                None => return pkt.len(),
            }
        }
        _ => return pkt.len(),
    };
    // Padding, if any, is gone.
    pkt[0] &= !0x20;
    new_end
}

/// rtpengine's `silence_pattern` of G.722: every byte 0xFA.
const G722_SILENCE: u8 = 0xFA;

/// Rewrite the AMR payload `pkt[start..end]` in place: each speech frame becomes the silent
/// frame of its mode, each SID frame a NO_DATA frame; the CMR and the payload format stay.
/// Returns the new payload length, `None` when the payload is not one we rewrite (CRC,
/// robust sorting or interleaving, malformed, or no encoder).
fn amr_silence_payload(
    band: AmrBand,
    params: &AmrParams,
    pkt: &mut [u8],
    start: usize,
    end: usize,
) -> Option<usize> {
    if params.crc || params.robust_sorting || params.interleaving > 0 {
        return None;
    }
    let table = match band {
        AmrBand::Narrow => &silence_frames().amr_nb,
        AmrBand::Wide => &silence_frames().amr_wb,
    };
    if table.is_empty() {
        return None;
    }
    let mut frames: [StorageFrame; MAX_FRAMES] = [[0; STORAGE_MAX]; MAX_FRAMES];
    let mut n = 0;
    let cmr = amr::unpack(band, params, &pkt[start..end], |f| {
        let ft = amr::toc_ft(f[0]);
        frames[n] = match table.get(ft as usize) {
            Some(silent) => *silent,
            None if ft == band.sid_ft() => {
                let mut no_data = [0; STORAGE_MAX];
                no_data[0] = amr::FT_NO_DATA << 3 | 0x04;
                no_data
            }
            None => *f,
        };
        n += 1;
        Ok(())
    })
    .ok()?;
    let mut out = [0u8; 2 + MAX_FRAMES * STORAGE_MAX];
    let len = amr::pack(band, params, cmr, &frames[..n], &mut out).ok()?;
    pkt.get_mut(start..start + len)?
        .copy_from_slice(&out[..len]);
    Some(len)
}

/// The kind of an encoder-side codec, for a transcoder's output.
pub fn kind_of_codec(codec: &Codec) -> PayloadKind {
    match codec.kind() {
        CodecKind::Pcmu => PayloadKind::Pcmu,
        CodecKind::Pcma => PayloadKind::Pcma,
        CodecKind::G729 => PayloadKind::G729,
        CodecKind::Opus => PayloadKind::Opus,
        CodecKind::G722 => PayloadKind::G722,
        CodecKind::Amr => PayloadKind::Amr(AmrBand::Narrow, codec.amr_params()),
        CodecKind::AmrWb => PayloadKind::Amr(AmrBand::Wide, codec.amr_params()),
        CodecKind::TelephoneEvent => PayloadKind::Event,
        #[allow(unreachable_patterns)]
        _ => PayloadKind::Other,
    }
}

#[cfg(test)]
mod tests;
