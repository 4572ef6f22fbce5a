//! The codec registry and the per-stream `Decoder` / `Encoder` built from it.
//!
//! rtpengine: `codec_def_t` and the `__codec_defs` table of `codeclib.c`, looked up by SDP
//! encoding name, clock rate and channels; `decoder_t`/`encoder_t` for the running state.
//! Decoders and encoders are enums, chosen once at negotiation, so the packet path does a
//! `match` and never a virtual call or an allocation.

use crate::amr::{AmrBand, AmrParams};
use crate::g711::Law;
use crate::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use crate::CodecError;

/// The codecs ngmedia can transcode. rtpengine: a `codec_def_t` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
    /// G.729 Annex A (Annex B per fmtp), static PT 18.
    G729,
    /// G.722, static PT 9: 16 kHz audio under an 8000 Hz RTP clock (RFC 3551 §4.5.2).
    G722,
    /// Opus, dynamic PT, always `opus/48000/2` in SDP (RFC 7587).
    Opus,
    /// AMR-NB, dynamic PT, `AMR/8000` (RFC 4867).
    Amr,
    /// AMR-WB, dynamic PT, `AMR-WB/16000` (RFC 4867).
    AmrWb,
    /// Speex, dynamic PT, `speex/8000`, `/16000` or `/32000` (RFC 5574).
    Speex,
    /// RFC 4733 events, dynamic PT, at the clock rate of the audio it goes with.
    TelephoneEvent,
}

/// Which packet durations a codec can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDurations {
    /// Any multiple of `step` milliseconds up to `max`.
    MultipleOf { step: u32, max: u32 },
    /// Exactly these millisecond values.
    OneOf(&'static [u32]),
    /// Not audio frames (telephone-event).
    NotApplicable,
}

/// Static facts about one codec. rtpengine: `codec_def_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecDef {
    pub kind: CodecKind,
    /// SDP encoding name as ngmedia writes it.
    pub name: &'static str,
    /// RTP clock rate written in SDP (telephone-event: the default one).
    pub clock_rate: u32,
    /// Channels written in SDP.
    pub channels: u8,
    /// Static RTP payload type (RFC 3551), if any.
    pub static_pt: Option<u8>,
    pub frames: FrameDurations,
    /// Packet duration used when the SDP has no `a=ptime`.
    pub default_ptime: u32,
    /// PCM rate the decoder produces and the encoder takes, unless asked otherwise.
    pub pcm_rate: u32,
}

impl CodecDef {
    /// Whether an SDP line with this many channels is this codec. Opus is: mono
    /// `opus/48000` (or `/1`) is the same codec as RFC 7587's `opus/48000/2`, since every
    /// Opus packet says whether it is stereo and decoders take either.
    pub fn accepts_channels(&self, channels: u8) -> bool {
        self.channels == channels || (self.kind == CodecKind::Opus && channels == 1)
    }
}

/// Every codec ngmedia knows.
pub static CODECS: [CodecDef; 12] = [
    CodecDef {
        kind: CodecKind::Pcmu,
        name: "PCMU",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(0),
        frames: FrameDurations::MultipleOf { step: 1, max: 200 },
        default_ptime: 20,
        pcm_rate: 8000,
    },
    CodecDef {
        kind: CodecKind::Pcma,
        name: "PCMA",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(8),
        frames: FrameDurations::MultipleOf { step: 1, max: 200 },
        default_ptime: 20,
        pcm_rate: 8000,
    },
    CodecDef {
        kind: CodecKind::G729,
        name: "G729",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(18),
        frames: FrameDurations::MultipleOf { step: 10, max: 200 },
        default_ptime: 20,
        pcm_rate: 8000,
    },
    CodecDef {
        kind: CodecKind::G722,
        name: "G722",
        // The RTP clock SDP and timestamps use; the audio itself is 16 kHz (`pcm_rate`):
        // rtpengine's `clockrate_mult = 2`.
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(9),
        frames: FrameDurations::MultipleOf { step: 1, max: 200 },
        default_ptime: 20,
        pcm_rate: 16000,
    },
    CodecDef {
        kind: CodecKind::Opus,
        name: "opus",
        clock_rate: 48000,
        channels: 2,
        static_pt: None,
        // 2.5 and 5 ms frames exist but are not whole milliseconds of RTP ptime.
        frames: FrameDurations::OneOf(&[10, 20, 40, 60]),
        default_ptime: 20,
        pcm_rate: 48000,
    },
    CodecDef {
        kind: CodecKind::Amr,
        name: "AMR",
        clock_rate: 8000,
        channels: 1,
        static_pt: None,
        // Whole 20 ms frames, at most `amr::MAX_FRAMES` of them per payload.
        frames: FrameDurations::MultipleOf { step: 20, max: 200 },
        default_ptime: 20,
        pcm_rate: 8000,
    },
    CodecDef {
        kind: CodecKind::AmrWb,
        name: "AMR-WB",
        clock_rate: 16000,
        channels: 1,
        static_pt: None,
        frames: FrameDurations::MultipleOf { step: 20, max: 200 },
        default_ptime: 20,
        pcm_rate: 16000,
    },
    // Speex: rtpengine's definition defaults to 16000 Hz (the first entry of the name).
    speex_def(16000),
    speex_def(8000),
    speex_def(32000),
    CodecDef {
        kind: CodecKind::TelephoneEvent,
        name: "telephone-event",
        clock_rate: 8000,
        channels: 1,
        static_pt: None,
        frames: FrameDurations::NotApplicable,
        default_ptime: 20,
        pcm_rate: 8000,
    },
    CodecDef {
        kind: CodecKind::TelephoneEvent,
        name: "telephone-event",
        clock_rate: 48000,
        channels: 1,
        static_pt: None,
        frames: FrameDurations::NotApplicable,
        default_ptime: 20,
        pcm_rate: 48000,
    },
];

/// The Speex entry of one band: whole 20 ms frames, at most `speex::MAX_FRAMES` per payload.
const fn speex_def(rate: u32) -> CodecDef {
    CodecDef {
        kind: CodecKind::Speex,
        name: "speex",
        clock_rate: rate,
        channels: 1,
        static_pt: None,
        frames: FrameDurations::MultipleOf { step: 20, max: 200 },
        default_ptime: 20,
        pcm_rate: rate,
    }
}

/// Opus `a=fmtp` parameters (RFC 7587 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    pub useinbandfec: bool,
    pub usedtx: bool,
    /// The receiver prefers stereo.
    pub stereo: bool,
    /// The sender is likely to send stereo.
    pub sprop_stereo: bool,
    pub maxplaybackrate: u32,
    pub maxaveragebitrate: Option<u32>,
    pub cbr: bool,
}

impl Default for OpusParams {
    fn default() -> Self {
        OpusParams {
            useinbandfec: false,
            usedtx: false,
            stereo: false,
            sprop_stereo: false,
            maxplaybackrate: 48000,
            maxaveragebitrate: None,
            cbr: false,
        }
    }
}

/// Set of telephone-event codes (the `0-15` of its fmtp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet([u64; 4]);

impl EventSet {
    /// The DTMF events 0-15, the default when no fmtp is given (RFC 4733 §7.1.1).
    pub const DTMF: EventSet = EventSet([0xFFFF, 0, 0, 0]);

    /// Whether `event` is in the set.
    pub fn contains(&self, event: u8) -> bool {
        self.0[event as usize / 64] & (1 << (event % 64)) != 0
    }

    fn insert(&mut self, event: u8) {
        self.0[event as usize / 64] |= 1 << (event % 64);
    }
}

/// Codec-specific `a=fmtp` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecParams {
    None,
    /// `annexb=yes|no`; absent means yes (RFC 4856 §2.1.9).
    G729 {
        annexb: bool,
    },
    Opus(OpusParams),
    /// AMR and AMR-WB (RFC 4867 §8.1).
    Amr(AmrParams),
    TelephoneEvent {
        events: EventSet,
    },
}

/// A codec as negotiated in SDP: registry entry, clock rate, channels and fmtp.
/// rtpengine: `rtp_payload_type` (without the payload type number, which is per leg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub def: &'static CodecDef,
    /// The clock rate from SDP (differs from `def.clock_rate` only for telephone-event and
    /// G.711 at another rate).
    pub clock_rate: u32,
    pub params: CodecParams,
}

/// Options for building an encoder beyond what SDP says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// PCM rate fed to the encoder; `None` = the codec's native rate. Opus accepts 8, 12,
    /// 16, 24 and 48 kHz directly, which saves a resampler next to G.711.
    pub pcm_rate: Option<u32>,
    /// Opus complexity 0-10.
    pub opus_complexity: u8,
    /// Opus bitrate in bit/s; `None` = `maxaveragebitrate` from fmtp, else libopus' choice.
    pub opus_bitrate: Option<i32>,
    /// Bit rate of a codec with selectable rates (rtpengine's `codec-set` bitrate): AMR
    /// starts at the highest mode of the mode set not above it, Speex takes the best mode
    /// not above it. `None` = rtpengine's defaults (AMR 6.7 kbit/s NB, 14.25 kbit/s WB;
    /// Speex 11 kbit/s).
    pub bitrate: Option<u32>,
    /// AMR discontinuous transmission: SID frames in silence, nothing between them.
    pub amr_dtx: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            pcm_rate: None,
            opus_complexity: 5,
            opus_bitrate: None,
            bitrate: None,
            amr_dtx: false,
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, CodecError> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ if value.eq_ignore_ascii_case("yes") => Ok(true),
        _ if value.eq_ignore_ascii_case("no") => Ok(false),
        _ => Err(CodecError::Fmtp(format!("{key}={value}"))),
    }
}

fn parse_num(key: &str, value: &str) -> Result<u32, CodecError> {
    value
        .parse()
        .map_err(|_| CodecError::Fmtp(format!("{key}={value}")))
}

/// `key=value` pairs of an fmtp line (separated by `;`, whitespace tolerated).
fn fmtp_pairs(fmtp: &str) -> impl Iterator<Item = (&str, &str)> {
    fmtp.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p, ""),
        })
}

impl Codec {
    /// Looks a codec up by SDP `a=rtpmap` name (case-insensitive), clock rate and channels
    /// (`None` when the rtpmap has none, meaning 1), and parses its `a=fmtp` value.
    pub fn lookup(
        name: &str,
        clock_rate: u32,
        channels: Option<u8>,
        fmtp: Option<&str>,
    ) -> Result<Codec, CodecError> {
        let channels = channels.unwrap_or(1);
        let is_event = name.eq_ignore_ascii_case("telephone-event");
        let def = CODECS
            .iter()
            .find(|d| {
                d.name.eq_ignore_ascii_case(name)
                    && d.accepts_channels(channels)
                    && (d.clock_rate == clock_rate
                        || is_event
                        || (is_g711(d.kind) && G711_RATES.contains(&clock_rate)))
            })
            .ok_or_else(|| CodecError::UnknownCodec {
                name: name.to_string(),
                clock_rate,
                channels,
            })?;
        // telephone-event may run at any audio rate; prefer the entry with the same rate.
        let def = CODECS
            .iter()
            .find(|d| d.kind == def.kind && d.clock_rate == clock_rate)
            .unwrap_or(def);
        if clock_rate == 0 {
            return Err(CodecError::UnsupportedRate(0));
        }
        let params = Self::parse_params(def.kind, fmtp.unwrap_or(""))?;
        Ok(Codec {
            def,
            clock_rate,
            params,
        })
    }

    /// The codec of a static payload type with no rtpmap (PT 0, 8, 18).
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        let def = CODECS.iter().find(|d| d.static_pt == Some(pt))?;
        let params = Self::parse_params(def.kind, "").ok()?;
        Some(Codec {
            def,
            clock_rate: def.clock_rate,
            params,
        })
    }

    fn parse_params(kind: CodecKind, fmtp: &str) -> Result<CodecParams, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 | CodecKind::Speex => {
                CodecParams::None
            }
            CodecKind::G729 => {
                let mut annexb = true;
                for (k, v) in fmtp_pairs(fmtp) {
                    if k.eq_ignore_ascii_case("annexb") {
                        annexb = parse_bool(k, v)?;
                    }
                }
                CodecParams::G729 { annexb }
            }
            CodecKind::Opus => {
                let mut p = OpusParams::default();
                for (k, v) in fmtp_pairs(fmtp) {
                    match k.to_ascii_lowercase().as_str() {
                        "useinbandfec" => p.useinbandfec = parse_bool(k, v)?,
                        "usedtx" => p.usedtx = parse_bool(k, v)?,
                        "stereo" => p.stereo = parse_bool(k, v)?,
                        "sprop-stereo" => p.sprop_stereo = parse_bool(k, v)?,
                        "cbr" => p.cbr = parse_bool(k, v)?,
                        "maxplaybackrate" => p.maxplaybackrate = parse_num(k, v)?,
                        "maxaveragebitrate" => p.maxaveragebitrate = Some(parse_num(k, v)?),
                        _ => {}
                    }
                }
                CodecParams::Opus(p)
            }
            CodecKind::Amr | CodecKind::AmrWb => {
                let band = amr_band(kind);
                let mut p = AmrParams::default();
                for (k, v) in fmtp_pairs(fmtp) {
                    p.set(k, v, band)?;
                }
                CodecParams::Amr(p)
            }
            CodecKind::TelephoneEvent => {
                let fmtp = fmtp.trim();
                if fmtp.is_empty() {
                    return Ok(CodecParams::TelephoneEvent {
                        events: EventSet::DTMF,
                    });
                }
                let mut events = EventSet([0; 4]);
                for part in fmtp.split(',').map(str::trim) {
                    let bad = || CodecError::Fmtp(part.to_string());
                    let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                    let lo: u8 = lo.trim().parse().map_err(|_| bad())?;
                    let hi: u8 = hi.trim().parse().map_err(|_| bad())?;
                    if lo > hi {
                        return Err(bad());
                    }
                    (lo..=hi).for_each(|e| events.insert(e));
                }
                CodecParams::TelephoneEvent { events }
            }
        })
    }

    pub fn kind(&self) -> CodecKind {
        self.def.kind
    }

    /// PCM rate the decoder produces and the encoder takes by default: the registry's,
    /// except for G.711 at another clock rate, whose samples run at that rate.
    pub fn pcm_rate(&self) -> u32 {
        if is_g711(self.kind()) {
            self.clock_rate
        } else {
            self.def.pcm_rate
        }
    }

    /// SDP encoding name.
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// Whether packets of `ms` milliseconds are possible.
    pub fn supports_ptime(&self, ms: u32) -> bool {
        match self.def.frames {
            FrameDurations::MultipleOf { step, max } => {
                ms > 0 && ms.is_multiple_of(step) && ms <= max
            }
            FrameDurations::OneOf(list) => list.contains(&ms),
            FrameDurations::NotApplicable => false,
        }
    }

    /// PCM channels the decoder produces / the encoder takes. Opus is mono unless the fmtp
    /// asks for stereo (its SDP always says 2 channels, RFC 7587 §7).
    pub fn pcm_channels(&self) -> u8 {
        match self.params {
            CodecParams::Opus(p) if p.stereo || p.sprop_stereo => 2,
            _ => 1,
        }
    }

    /// The `a=fmtp` value ngmedia writes for this codec, if any (negotiation time only).
    pub fn fmtp(&self) -> Option<String> {
        match self.params {
            CodecParams::None => None,
            CodecParams::G729 { annexb } => {
                Some(format!("annexb={}", if annexb { "yes" } else { "no" }))
            }
            CodecParams::Opus(p) => {
                let mut s = String::new();
                let mut add = |k: &str, v: String| {
                    if !s.is_empty() {
                        s.push_str("; ");
                    }
                    s.push_str(k);
                    s.push('=');
                    s.push_str(&v);
                };
                if p.stereo {
                    add("stereo", "1".into());
                }
                if p.sprop_stereo {
                    add("sprop-stereo", "1".into());
                }
                if p.useinbandfec {
                    add("useinbandfec", "1".into());
                }
                if p.usedtx {
                    add("usedtx", "1".into());
                }
                if p.cbr {
                    add("cbr", "1".into());
                }
                if p.maxplaybackrate != 48000 {
                    add("maxplaybackrate", p.maxplaybackrate.to_string());
                }
                if let Some(b) = p.maxaveragebitrate {
                    add("maxaveragebitrate", b.to_string());
                }
                (!s.is_empty()).then_some(s)
            }
            CodecParams::Amr(p) => p.fmtp(),
            CodecParams::TelephoneEvent { events } => {
                let mut s = String::new();
                let mut e = 0u16;
                while e < 256 {
                    if events.contains(e as u8) {
                        let start = e;
                        while e < 255 && events.contains(e as u8 + 1) {
                            e += 1;
                        }
                        if !s.is_empty() {
                            s.push(',');
                        }
                        if start == e {
                            s.push_str(&start.to_string());
                        } else {
                            s.push_str(&format!("{start}-{e}"));
                        }
                    }
                    e += 1;
                }
                Some(s)
            }
        }
    }

    /// The AMR fmtp parameters (defaults for any other codec).
    pub fn amr_params(&self) -> AmrParams {
        match self.params {
            CodecParams::Amr(p) => p,
            _ => AmrParams::default(),
        }
    }

    /// A decoder producing PCM at the codec's native rate.
    pub fn decoder(&self) -> Result<Decoder, CodecError> {
        self.decoder_at(self.pcm_rate())
    }

    /// A decoder producing PCM at `pcm_rate` (only Opus may differ from its native rate).
    pub fn decoder_at(&self, pcm_rate: u32) -> Result<Decoder, CodecError> {
        if self.kind() != CodecKind::Opus && pcm_rate != self.pcm_rate() {
            return Err(CodecError::UnsupportedRate(pcm_rate));
        }
        Ok(match self.kind() {
            CodecKind::Pcmu => Decoder::G711(Law::Ulaw, pcm_rate),
            CodecKind::Pcma => Decoder::G711(Law::Alaw, pcm_rate),
            #[cfg(feature = "g729")]
            CodecKind::G729 => Decoder::G729(crate::g729::G729Decoder::new()?),
            #[cfg(not(feature = "g729"))]
            CodecKind::G729 => return Err(CodecError::Unavailable("G729")),
            #[cfg(feature = "g722")]
            CodecKind::G722 => Decoder::G722(Box::default()),
            #[cfg(not(feature = "g722"))]
            CodecKind::G722 => return Err(CodecError::Unavailable("G722")),
            CodecKind::Opus => Decoder::Opus(OpusDecoder::new(pcm_rate, self.pcm_channels())?),
            #[cfg(feature = "amr")]
            CodecKind::Amr | CodecKind::AmrWb => Decoder::Amr(crate::amr::AmrDecoder::new(
                amr_band(self.kind()),
                self.amr_params(),
            )?),
            #[cfg(not(feature = "amr"))]
            CodecKind::Amr | CodecKind::AmrWb => return Err(CodecError::Unavailable(self.name())),
            #[cfg(feature = "speex")]
            CodecKind::Speex => Decoder::Speex(crate::speex::SpeexDecoder::new(
                crate::speex::SpeexBand::of_rate(self.clock_rate)?,
            )?),
            #[cfg(not(feature = "speex"))]
            CodecKind::Speex => return Err(CodecError::Unavailable("speex")),
            CodecKind::TelephoneEvent => {
                return Err(CodecError::Unavailable("telephone-event audio"))
            }
        })
    }

    /// An encoder packing `ptime_ms` of audio per payload, with default options.
    pub fn encoder(&self, ptime_ms: u32) -> Result<Encoder, CodecError> {
        self.encoder_with(ptime_ms, &EncoderOptions::default())
    }

    /// An encoder packing `ptime_ms` of audio per payload.
    pub fn encoder_with(
        &self,
        ptime_ms: u32,
        opts: &EncoderOptions,
    ) -> Result<Encoder, CodecError> {
        if !self.supports_ptime(ptime_ms) {
            return Err(CodecError::UnsupportedFrameDuration {
                codec: self.name(),
                ms: ptime_ms,
            });
        }
        let pcm_rate = opts.pcm_rate.unwrap_or(self.pcm_rate());
        if self.kind() != CodecKind::Opus && pcm_rate != self.pcm_rate() {
            return Err(CodecError::UnsupportedRate(pcm_rate));
        }
        let channels = self.pcm_channels();
        let frame_samples = (pcm_rate * ptime_ms / 1000) as usize * channels as usize;
        let kind = match self.kind() {
            CodecKind::Pcmu => EncoderKind::G711(Law::Ulaw),
            CodecKind::Pcma => EncoderKind::G711(Law::Alaw),
            #[cfg(feature = "g729")]
            CodecKind::G729 => {
                let vad = matches!(self.params, CodecParams::G729 { annexb: true });
                EncoderKind::G729(crate::g729::G729Encoder::new(vad)?)
            }
            #[cfg(not(feature = "g729"))]
            CodecKind::G729 => return Err(CodecError::Unavailable("G729")),
            #[cfg(feature = "g722")]
            CodecKind::G722 => EncoderKind::G722(Box::default()),
            #[cfg(not(feature = "g722"))]
            CodecKind::G722 => return Err(CodecError::Unavailable("G722")),
            CodecKind::Opus => {
                let p = match self.params {
                    CodecParams::Opus(p) => p,
                    _ => OpusParams::default(),
                };
                let bitrate = opts
                    .opus_bitrate
                    .or(p.maxaveragebitrate.map(|b| b.min(510_000) as i32));
                EncoderKind::Opus(OpusEncoder::new(OpusConfig {
                    sample_rate: pcm_rate,
                    channels,
                    complexity: opts.opus_complexity,
                    bitrate,
                    inband_fec: p.useinbandfec,
                    packet_loss_perc: if p.useinbandfec { 10 } else { 0 },
                    dtx: p.usedtx,
                })?)
            }
            #[cfg(feature = "amr")]
            CodecKind::Amr | CodecKind::AmrWb => {
                let params = self.amr_params();
                if !params.encodable() {
                    return Err(CodecError::Unavailable(
                        "AMR with crc, robust-sorting or interleaving",
                    ));
                }
                EncoderKind::Amr(crate::amr::AmrEncoder::new(
                    amr_band(self.kind()),
                    params,
                    opts.bitrate,
                    opts.amr_dtx,
                )?)
            }
            #[cfg(not(feature = "amr"))]
            CodecKind::Amr | CodecKind::AmrWb => return Err(CodecError::Unavailable(self.name())),
            #[cfg(feature = "speex")]
            CodecKind::Speex => EncoderKind::Speex(crate::speex::SpeexEncoder::new(
                crate::speex::SpeexBand::of_rate(self.clock_rate)?,
                opts.bitrate.map_or(crate::speex::DEFAULT_BITRATE, |b| {
                    b.min(i32::MAX as u32) as i32
                }),
            )?),
            #[cfg(not(feature = "speex"))]
            CodecKind::Speex => return Err(CodecError::Unavailable("speex")),
            CodecKind::TelephoneEvent => {
                return Err(CodecError::Unavailable("telephone-event audio"))
            }
        };
        Ok(Encoder {
            kind,
            frame_samples,
            pcm_rate,
            channels,
            timestamp_step: self.clock_rate * ptime_ms / 1000,
        })
    }
}

/// Clock rates G.711 is taken at besides 8000 Hz (rtpengine's G.711 codecs take any rate;
/// these are the ones the resampler converts between).
const G711_RATES: [u32; 4] = [16000, 24000, 32000, 48000];

fn is_g711(kind: CodecKind) -> bool {
    matches!(kind, CodecKind::Pcmu | CodecKind::Pcma)
}

fn amr_band(kind: CodecKind) -> AmrBand {
    if kind == CodecKind::AmrWb {
        AmrBand::Wide
    } else {
        AmrBand::Narrow
    }
}

/// A running decoder: RTP payload in, PCM out. rtpengine: `decoder_t`.
#[derive(Debug)]
pub enum Decoder {
    /// G.711 of either law, at its PCM (and RTP clock) rate.
    G711(Law, u32),
    #[cfg(feature = "g729")]
    G729(crate::g729::G729Decoder),
    /// Boxed: the coder's state (264 bytes) would make every decoder that large.
    #[cfg(feature = "g722")]
    G722(Box<crate::g722::G722Decoder>),
    Opus(OpusDecoder),
    #[cfg(feature = "amr")]
    Amr(crate::amr::AmrDecoder),
    #[cfg(feature = "speex")]
    Speex(crate::speex::SpeexDecoder),
}

impl Decoder {
    /// PCM sample rate of the output.
    pub fn pcm_rate(&self) -> u32 {
        match self {
            Decoder::G711(_, rate) => *rate,
            #[cfg(feature = "g729")]
            Decoder::G729(_) => 8000,
            #[cfg(feature = "g722")]
            Decoder::G722(_) => crate::g722::PCM_RATE,
            Decoder::Opus(d) => d.sample_rate(),
            #[cfg(feature = "amr")]
            Decoder::Amr(d) => d.band().pcm_rate(),
            #[cfg(feature = "speex")]
            Decoder::Speex(d) => d.band().pcm_rate(),
        }
    }

    /// Interleaved PCM channels of the output.
    pub fn channels(&self) -> u8 {
        match self {
            Decoder::Opus(d) => d.channels(),
            _ => 1,
        }
    }

    /// Decodes one payload into `out`; returns the number of samples written (all channels).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            Decoder::G711(law, _) => law.decode(payload, out),
            #[cfg(feature = "g729")]
            Decoder::G729(d) => d.decode_payload(payload, out),
            #[cfg(feature = "g722")]
            Decoder::G722(d) => d.decode(payload, out),
            Decoder::Opus(d) => Ok(d.decode(payload, out)? * d.channels() as usize),
            #[cfg(feature = "amr")]
            Decoder::Amr(d) => d.decode(payload, out),
            #[cfg(feature = "speex")]
            Decoder::Speex(d) => d.decode(payload, out),
        }
    }

    /// Fills `samples` per channel for a lost packet: G.711 and G.722 write silence (neither
    /// has a concealment of its own, and rtpengine plays nothing either), G.729, AMR and Speex
    /// conceal (or continue comfort noise) frame by frame, Opus runs its PLC. Returns samples
    /// written.
    pub fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            Decoder::G711(..) => {
                crate::take_out(out, samples)?.fill(0);
                Ok(samples)
            }
            #[cfg(feature = "g722")]
            Decoder::G722(_) => {
                crate::take_out(out, samples)?.fill(0);
                Ok(samples)
            }
            #[cfg(feature = "g729")]
            Decoder::G729(d) => {
                use crate::g729::FRAME_SAMPLES;
                if !samples.is_multiple_of(FRAME_SAMPLES) {
                    return Err(CodecError::PcmLength {
                        expected: samples.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES,
                        got: samples,
                    });
                }
                for frame in crate::take_out(out, samples)?.chunks_exact_mut(FRAME_SAMPLES) {
                    d.conceal_frame(frame)?;
                }
                Ok(samples)
            }
            Decoder::Opus(d) => Ok(d.conceal(samples, out)? * d.channels() as usize),
            #[cfg(feature = "amr")]
            Decoder::Amr(d) => d.conceal(samples, out),
            #[cfg(feature = "speex")]
            Decoder::Speex(d) => d.conceal(samples, out),
        }
    }

    /// Recovers a lost packet of `samples` per channel from `next` (the following packet):
    /// Opus decodes its in-band FEC; the others conceal as [`Decoder::conceal`].
    pub fn decode_fec(
        &mut self,
        next: &[u8],
        samples: usize,
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        match self {
            Decoder::Opus(d) => Ok(d.decode_fec(next, samples, out)? * d.channels() as usize),
            _ => self.conceal(samples, out),
        }
    }
}

/// The codec state inside an [`Encoder`].
#[derive(Debug)]
pub enum EncoderKind {
    G711(Law),
    #[cfg(feature = "g729")]
    G729(crate::g729::G729Encoder),
    /// Boxed: the coder's state (264 bytes) would make every encoder that large.
    #[cfg(feature = "g722")]
    G722(Box<crate::g722::G722Encoder>),
    Opus(OpusEncoder),
    #[cfg(feature = "amr")]
    Amr(crate::amr::AmrEncoder),
    #[cfg(feature = "speex")]
    Speex(crate::speex::SpeexEncoder),
}

/// A running encoder for one packet duration: PCM in, RTP payload out. rtpengine:
/// `encoder_t` plus the packetizer of `codec.c`.
#[derive(Debug)]
pub struct Encoder {
    pub kind: EncoderKind,
    frame_samples: usize,
    pcm_rate: u32,
    channels: u8,
    timestamp_step: u32,
}

impl Encoder {
    /// PCM samples (all channels, interleaved) one `encode` call takes.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// PCM rate the encoder takes.
    pub fn pcm_rate(&self) -> u32 {
        self.pcm_rate
    }

    /// PCM channels the encoder takes.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// RTP timestamp advance per packet (in the codec's RTP clock, e.g. 960 for 20 ms Opus).
    pub fn timestamp_step(&self) -> u32 {
        self.timestamp_step
    }

    /// A payload buffer size that always suffices.
    pub fn max_payload_len(&self) -> usize {
        match self.kind {
            EncoderKind::G711(_) => self.frame_samples,
            #[cfg(feature = "g729")]
            EncoderKind::G729(_) => self.frame_samples / 8,
            #[cfg(feature = "g722")]
            EncoderKind::G722(_) => self.frame_samples / crate::g722::SAMPLES_PER_BYTE,
            EncoderKind::Opus(_) => crate::opus::MAX_PACKET,
            #[cfg(feature = "amr")]
            EncoderKind::Amr(ref e) => crate::amr::AmrEncoder::max_payload_len(
                self.frame_samples / e.band().frame_samples(),
            ),
            #[cfg(feature = "speex")]
            EncoderKind::Speex(ref e) => crate::speex::SpeexEncoder::max_payload_len(
                self.frame_samples / e.band().frame_samples(),
            ),
        }
    }

    /// Encodes exactly `frame_samples()` of PCM into one payload; returns its length, which
    /// may be 0 when DTX decides nothing needs sending.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if pcm.len() != self.frame_samples {
            return Err(CodecError::PcmLength {
                expected: self.frame_samples,
                got: pcm.len(),
            });
        }
        match &mut self.kind {
            EncoderKind::G711(law) => law.encode(pcm, out),
            #[cfg(feature = "g729")]
            EncoderKind::G729(enc) => crate::g729::encode_packet(enc, pcm, out),
            #[cfg(feature = "g722")]
            EncoderKind::G722(enc) => enc.encode(pcm, out),
            EncoderKind::Opus(enc) => {
                let len = enc.encode(pcm, out)?;
                // libopus documents that packets of 2 bytes or less need not be transmitted:
                // that is its DTX signalling silence.
                Ok(if enc.config().dtx && len <= 2 { 0 } else { len })
            }
            #[cfg(feature = "amr")]
            EncoderKind::Amr(enc) => enc.encode(pcm, out),
            #[cfg(feature = "speex")]
            EncoderKind::Speex(enc) => enc.encode(pcm, out),
        }
    }
}

#[cfg(test)]
mod tests;
