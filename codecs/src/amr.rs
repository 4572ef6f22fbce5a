//! AMR-NB and AMR-WB (3GPP TS 26.071 / 26.171) and their RTP payload format (RFC 4867),
//! through Debian's libopencore-amrnb (narrowband encode and decode), libopencore-amrwb
//! (wideband decode) and libvo-amrwbenc (wideband encode).
//!
//! rtpengine runs the same three libraries through libavcodec (`codeclib.c`: the `AMR` and
//! `AMR-WB` codec definitions, `amr_decoder_input`, `packetizer_amr`). Their plain C entry
//! points take and give one 20 ms frame in the "storage" layout (RFC 4867 §5: a ToC byte
//! `0 FT(4) Q 0 0`, then the frame's bits, most significant first, padded to an octet), which
//! is exactly an octet-aligned payload's frame: this module converts between that layout and
//! the two RTP payload formats without allocating.
//!
//! RFC 4867 §4.3 payload: a 4-bit codec mode request (CMR, 15 = none), then (octet-aligned
//! only) 4 reserved bits and, with `interleaving`, an ILL/ILP octet; a table of contents of
//! one entry per frame (F = more entries follow, FT = frame type, Q = frame good), 6 bits in
//! the bandwidth-efficient format and an octet each in the octet-aligned one; with `crc` one
//! CRC octet per frame that carries data; then the frames, octet-padded each in the aligned
//! format, back to back and padded once at the end in the bandwidth-efficient one.
//!
//! Frame types: the speech modes (NB 0-7, 4.75-12.2 kbit/s; WB 0-8, 6.6-23.85 kbit/s), the
//! SID frame of the codec's own comfort noise (NB 8, WB 9), other SIDs the narrowband table
//! reserves (9-11, decoded as no data), SPEECH_LOST (14, WB) and NO_DATA (15), which carry no
//! bits: DTX leaves gaps filled with NO_DATA, which the decoders turn into comfort noise or
//! concealment.

#[cfg(feature = "amr")]
use std::ptr::NonNull;

use crate::CodecError;

mod payload;
mod rate;
pub use payload::{pack, unpack};
pub use rate::{RateRequest, RateWatch, CMR_SEND_PACKETS};

/// Milliseconds of audio in one AMR frame.
pub const FRAME_MS: u32 = 20;
/// The most frames one payload may carry: 200 ms, the longest packet the registry allows
/// (RFC 4867 sets no limit; the bound keeps the ToC in a fixed array).
pub const MAX_FRAMES: usize = 10;
/// Bytes of the largest storage-layout frame: ToC byte + ceil(477 / 8) (WB mode 8).
pub const STORAGE_MAX: usize = 61;
/// The CMR value meaning "no mode request".
pub const NO_CMR: u8 = 15;

/// Frame type of a frame that carries nothing (DTX gap, or no frame at all).
pub const FT_NO_DATA: u8 = 15;
/// Frame type of an AMR-WB frame lost before the radio interface.
pub const FT_SPEECH_LOST: u8 = 14;

/// Bits of each frame type, narrowband (TS 26.101 table 1a; RFC 4867 §3.6). 9-11 are
/// other systems' SIDs, 12-14 reserved.
const NB_BITS: [Option<u16>; 16] = [
    Some(95),
    Some(103),
    Some(118),
    Some(134),
    Some(148),
    Some(159),
    Some(204),
    Some(244),
    Some(39),
    Some(43),
    Some(38),
    Some(37),
    None,
    None,
    None,
    Some(0),
];
/// Bits of each frame type, wideband (TS 26.201 table 1a). 10-13 reserved.
const WB_BITS: [Option<u16>; 16] = [
    Some(132),
    Some(177),
    Some(253),
    Some(285),
    Some(317),
    Some(365),
    Some(397),
    Some(461),
    Some(477),
    Some(40),
    None,
    None,
    None,
    None,
    Some(0),
    Some(0),
];
const NB_BITRATES: [u32; 8] = [4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200];
const WB_BITRATES: [u32; 9] = [6600, 8850, 12650, 14250, 15850, 18250, 19850, 23050, 23850];

/// Narrowband or wideband AMR. rtpengine: the `AMR` and `AMR-WB` `codec_def_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmrBand {
    /// AMR-NB: 8 kHz, 160 samples per frame.
    Narrow,
    /// AMR-WB: 16 kHz, 320 samples per frame.
    Wide,
}

impl AmrBand {
    /// SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            AmrBand::Narrow => "AMR",
            AmrBand::Wide => "AMR-WB",
        }
    }

    /// PCM rate (also the RTP clock).
    pub fn pcm_rate(self) -> u32 {
        match self {
            AmrBand::Narrow => 8000,
            AmrBand::Wide => 16000,
        }
    }

    /// PCM samples per 20 ms frame.
    pub fn frame_samples(self) -> usize {
        (self.pcm_rate() * FRAME_MS / 1000) as usize
    }

    /// Bits of a frame of type `ft`; `None` for a type with no defined size.
    pub fn frame_bits(self, ft: u8) -> Option<u16> {
        let table = match self {
            AmrBand::Narrow => &NB_BITS,
            AmrBand::Wide => &WB_BITS,
        };
        table.get(ft as usize).copied().flatten()
    }

    /// The speech modes' bit rates, mode 0 first.
    pub fn bitrates(self) -> &'static [u32] {
        match self {
            AmrBand::Narrow => &NB_BITRATES,
            AmrBand::Wide => &WB_BITRATES,
        }
    }

    /// Number of speech modes (NB 8, WB 9).
    pub fn modes(self) -> u8 {
        self.bitrates().len() as u8
    }

    /// Frame type of the codec's own SID (comfort noise) frame.
    pub fn sid_ft(self) -> u8 {
        self.modes()
    }

    /// The bit rate rtpengine encodes at when nothing else is asked (`default_bitrate`).
    pub fn default_bitrate(self) -> u32 {
        match self {
            AmrBand::Narrow => 6700,
            AmrBand::Wide => 14250,
        }
    }

    /// The mode to start encoding at for a wanted bit rate: the highest mode of `mode_set`
    /// (bit N = mode N; 0 = every mode) not above `bitrate`, else the lowest of the set.
    /// rtpengine: the mode-set loop of `amr_set_enc_options`.
    pub fn initial_mode(self, bitrate: u32, mode_set: u16) -> u8 {
        let allowed = |m: u8| mode_set == 0 || mode_set & (1 << m) != 0;
        let mut pick = None;
        for (m, &br) in self.bitrates().iter().enumerate() {
            let m = m as u8;
            if !allowed(m) {
                continue;
            }
            if br > bitrate && pick.is_some() {
                break;
            }
            pick = Some(m);
            if br > bitrate {
                break;
            }
        }
        pick.unwrap_or(0)
    }
}

/// AMR `a=fmtp` parameters (RFC 4867 §8.1). rtpengine: `codec_options_t.amr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmrParams {
    /// `octet-align=1`: the octet-aligned payload format (else bandwidth-efficient).
    pub octet_align: bool,
    /// `crc=1` (implies octet-aligned): a CRC octet per frame.
    pub crc: bool,
    /// `robust-sorting=1` (implies octet-aligned).
    pub robust_sorting: bool,
    /// `interleaving=N` (implies octet-aligned): the ILL/ILP octet is present; 0 = absent.
    pub interleaving: u16,
    /// `mode-set`: bit N set = mode N allowed; 0 = no restriction.
    pub mode_set: u16,
    /// `mode-change-period` (1 or 2; 0 = not given).
    pub mode_change_period: u8,
    /// `mode-change-neighbor=1`: change only to a neighbouring mode of the set.
    pub mode_change_neighbor: bool,
    /// `mode-change-capability` (1 or 2; 0 = not given).
    pub mode_change_capability: u8,
    /// `max-red` in ms, if given.
    pub max_red: Option<u16>,
}

impl AmrParams {
    /// Parses one fmtp `key=value`; unknown keys are ignored. rtpengine:
    /// `amr_set_encdec_options_cb` (values other than 0/1 for the flags are errors here).
    pub(crate) fn set(&mut self, key: &str, value: &str, band: AmrBand) -> Result<(), CodecError> {
        let bad = || CodecError::Fmtp(format!("{key}={value}"));
        let flag = || match value {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad()),
        };
        let num = || value.parse::<u16>().map_err(|_| bad());
        match key.to_ascii_lowercase().as_str() {
            "octet-align" => self.octet_align = flag()?,
            "crc" => self.crc = flag()?,
            "robust-sorting" => self.robust_sorting = flag()?,
            "interleaving" => self.interleaving = num()?,
            "mode-set" => {
                let mut set = 0u16;
                for m in value.split(',').map(str::trim) {
                    let m: u8 = m.parse().map_err(|_| bad())?;
                    if m >= band.modes() {
                        return Err(bad());
                    }
                    set |= 1 << m;
                }
                self.mode_set = set;
            }
            "mode-change-period" => self.mode_change_period = num()?.min(255) as u8,
            "mode-change-neighbor" => self.mode_change_neighbor = flag()?,
            "mode-change-capability" => self.mode_change_capability = num()?.min(255) as u8,
            "max-red" => self.max_red = Some(num()?),
            _ => {}
        }
        Ok(())
    }

    /// Whether the octet-aligned format is in use (`crc`, `robust-sorting` and
    /// `interleaving` all imply it: RFC 4867 §8.1).
    pub fn octet_aligned(&self) -> bool {
        self.octet_align || self.crc || self.robust_sorting || self.interleaving > 0
    }

    /// Whether ngmedia can encode this format: CRC, robust sorting and interleaving are
    /// decoded (CRC octets skipped, ILL = 0 accepted) but never produced.
    pub fn encodable(&self) -> bool {
        !self.crc && !self.robust_sorting && self.interleaving == 0
    }

    /// Whether `mode` may be used.
    pub fn allows(&self, mode: u8) -> bool {
        self.mode_set == 0 || self.mode_set & (1 << mode) != 0
    }

    /// The canonical fmtp value (`None` when every parameter has its default).
    pub fn fmtp(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if self.octet_align {
            parts.push("octet-align=1".into());
        }
        if self.crc {
            parts.push("crc=1".into());
        }
        if self.robust_sorting {
            parts.push("robust-sorting=1".into());
        }
        if self.interleaving > 0 {
            parts.push(format!("interleaving={}", self.interleaving));
        }
        if self.mode_set != 0 {
            let modes: Vec<String> = (0..16)
                .filter(|m| self.mode_set & (1 << m) != 0)
                .map(|m: u16| m.to_string())
                .collect();
            parts.push(format!("mode-set={}", modes.join(",")));
        }
        if self.mode_change_period > 0 {
            parts.push(format!("mode-change-period={}", self.mode_change_period));
        }
        if self.mode_change_neighbor {
            parts.push("mode-change-neighbor=1".into());
        }
        if self.mode_change_capability > 0 {
            parts.push(format!(
                "mode-change-capability={}",
                self.mode_change_capability
            ));
        }
        if let Some(r) = self.max_red {
            parts.push(format!("max-red={r}"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One frame in storage layout: `buf[0]` is the ToC byte `0 FT Q 0 0`, then the frame's
/// bits, octet-padded.
pub type StorageFrame = [u8; STORAGE_MAX];

/// Frame type of a storage-layout ToC byte.
pub fn toc_ft(toc: u8) -> u8 {
    (toc >> 3) & 0x0f
}

/// Bytes a storage-layout frame of type `ft` occupies (ToC byte included).
fn storage_len(band: AmrBand, ft: u8) -> Option<usize> {
    band.frame_bits(ft).map(|b| 1 + (b as usize).div_ceil(8))
}

#[cfg(feature = "amr")]
mod ffi {
    use std::os::raw::{c_int, c_short, c_uchar, c_void};

    // /usr/include/opencore-amrnb/interf_{enc,dec}.h (opencore-amr 0.1.6)
    extern "C" {
        pub(super) fn Encoder_Interface_init(dtx: c_int) -> *mut c_void;
        pub(super) fn Encoder_Interface_exit(state: *mut c_void);
        pub(super) fn Encoder_Interface_Encode(
            state: *mut c_void,
            mode: c_int,
            speech: *mut c_short,
            out: *mut c_uchar,
            force_speech: c_int,
        ) -> c_int;
        pub(super) fn Decoder_Interface_init() -> *mut c_void;
        pub(super) fn Decoder_Interface_exit(state: *mut c_void);
        pub(super) fn Decoder_Interface_Decode(
            state: *mut c_void,
            input: *const c_uchar,
            out: *mut c_short,
            bfi: c_int,
        );
    }
    // /usr/include/opencore-amrwb/dec_if.h (opencore-amr 0.1.6)
    extern "C" {
        pub(super) fn D_IF_init() -> *mut c_void;
        pub(super) fn D_IF_decode(
            state: *mut c_void,
            bits: *const c_uchar,
            synth: *mut c_short,
            bfi: c_int,
        );
        pub(super) fn D_IF_exit(state: *mut c_void);
    }
    // /usr/include/vo-amrwbenc/enc_if.h (vo-amrwbenc 0.1.3)
    extern "C" {
        pub(super) fn E_IF_init() -> *mut c_void;
        pub(super) fn E_IF_encode(
            state: *mut c_void,
            mode: c_int,
            speech: *const c_short,
            out: *mut c_uchar,
            dtx: c_int,
        ) -> c_int;
        pub(super) fn E_IF_exit(state: *mut c_void);
    }
}

#[cfg(feature = "amr")]
/// One AMR decoder (storage frames in, 20 ms of PCM out each) with the payload unpacker.
/// rtpengine: the AMR `decoder_t` and `amr_decoder_input`.
#[derive(Debug)]
pub struct AmrDecoder {
    band: AmrBand,
    params: AmrParams,
    state: NonNull<std::os::raw::c_void>,
    last_cmr: u8,
    /// Bit N set: the last payload had a frame of type N.
    last_fts: u16,
}

#[cfg(feature = "amr")]
// SAFETY: the state is heap memory owned exclusively by this value; the opencore decoders
// keep no global or thread-local state. Every call takes `&mut self`.
unsafe impl Send for AmrDecoder {}

#[cfg(feature = "amr")]
impl AmrDecoder {
    pub fn new(band: AmrBand, params: AmrParams) -> Result<Self, CodecError> {
        // SAFETY: plain constructors; NULL back means malloc failed.
        let state = unsafe {
            match band {
                AmrBand::Narrow => ffi::Decoder_Interface_init(),
                AmrBand::Wide => ffi::D_IF_init(),
            }
        };
        let state = NonNull::new(state).ok_or(CodecError::AmrInit(band.name()))?;
        Ok(AmrDecoder {
            band,
            params,
            state,
            last_cmr: NO_CMR,
            last_fts: 0,
        })
    }

    pub fn band(&self) -> AmrBand {
        self.band
    }

    /// The CMR of the last payload decoded ([`NO_CMR`] when it asked for nothing).
    pub fn last_cmr(&self) -> u8 {
        self.last_cmr
    }

    /// The frame types of the last payload decoded: bit N set for a frame of type N.
    pub fn last_frame_types(&self) -> u16 {
        self.last_fts
    }

    /// Decodes one storage-layout frame into `frame_samples()` of `out`.
    fn decode_frame(&mut self, frame: &StorageFrame, out: &mut [i16]) {
        let ft = toc_ft(frame[0]);
        // Other systems' SIDs (NB 9-11) mean nothing to this decoder: play them as no data.
        let no_data = [(FT_NO_DATA << 3) | 4, 0];
        let input = if self.band == AmrBand::Narrow && (9..=11).contains(&ft) {
            &no_data[..]
        } else {
            &frame[..]
        };
        // SAFETY: state is live; `input` holds a whole storage frame for its FT (the library
        // reads at most that many bytes) and `out` holds a frame's samples.
        unsafe {
            match self.band {
                AmrBand::Narrow => ffi::Decoder_Interface_Decode(
                    self.state.as_ptr(),
                    input.as_ptr(),
                    out.as_mut_ptr(),
                    0,
                ),
                AmrBand::Wide => {
                    ffi::D_IF_decode(self.state.as_ptr(), input.as_ptr(), out.as_mut_ptr(), 0)
                }
            }
        }
    }

    /// Decodes an RFC 4867 payload; returns the samples written (`frame_samples` per frame
    /// of the ToC, NO_DATA frames included: they become comfort noise or concealment).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let n = self.band.frame_samples();
        // Check the room first, so a frame is never half decoded.
        let mut frames = 0;
        let params = self.params;
        unpack(self.band, &params, payload, |_| {
            frames += 1;
            Ok(())
        })?;
        crate::take_out(out, frames * n)?;
        let mut done = 0;
        self.last_fts = 0;
        let cmr = unpack(self.band, &params, payload, |f| {
            self.last_fts |= 1 << (toc_ft(f[0]) & 0x0f);
            self.decode_frame(f, &mut out[done..done + n]);
            done += n;
            Ok(())
        })?;
        self.last_cmr = cmr;
        Ok(done)
    }

    /// Conceals `samples` of lost audio (a multiple of the frame length) by feeding NO_DATA
    /// frames: the decoder repeats and fades the last speech, or continues comfort noise.
    pub fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        let n = self.band.frame_samples();
        if !samples.is_multiple_of(n) {
            return Err(CodecError::PcmLength {
                expected: samples.div_ceil(n) * n,
                got: samples,
            });
        }
        let mut frame: StorageFrame = [0; STORAGE_MAX];
        frame[0] = (FT_NO_DATA << 3) | 4;
        for chunk in crate::take_out(out, samples)?.chunks_exact_mut(n) {
            self.decode_frame(&frame, chunk);
        }
        Ok(samples)
    }
}

#[cfg(feature = "amr")]
impl Drop for AmrDecoder {
    fn drop(&mut self) {
        // SAFETY: the state came from the matching init and is freed exactly once.
        unsafe {
            match self.band {
                AmrBand::Narrow => ffi::Decoder_Interface_exit(self.state.as_ptr()),
                AmrBand::Wide => ffi::D_IF_exit(self.state.as_ptr()),
            }
        }
    }
}

#[cfg(feature = "amr")]
/// One AMR encoder with the payload packer and the mode-change logic (RFC 4867 §4.3.1
/// CMR, `mode-set`, `mode-change-period`, `mode-change-neighbor`). rtpengine: the AMR
/// `encoder_t`, `amr_encoder_mode_change` and `packetizer_amr`.
#[derive(Debug)]
pub struct AmrEncoder {
    band: AmrBand,
    params: AmrParams,
    state: NonNull<std::os::raw::c_void>,
    dtx: bool,
    mode: u8,
    /// Mode a CMR asked for, reached step by step under `mode-change-neighbor`.
    target: Option<u8>,
    /// Frames encoded, for `mode-change-period`.
    frames_done: u64,
    /// CMR written into outgoing payloads.
    cmr_out: u8,
    /// A CMR to ask of the peer ([`AmrEncoder::send_cmr`]) not yet written.
    cmr_send: Option<u8>,
    /// Payloads still to carry `cmr_send_mode`.
    cmr_send_left: u8,
    cmr_send_mode: u8,
    frames: Box<[StorageFrame; MAX_FRAMES]>,
    /// The frame handed to the library: opencore's AMR-NB encoder pre-processes (high-pass
    /// filters and masks) its input in place despite the `const` in its header, so the
    /// caller's PCM is copied here first.
    speech: Box<[i16; 320]>,
}

#[cfg(feature = "amr")]
// SAFETY: as for `AmrDecoder` (vo-amrwbenc and opencore's encoder keep all state in it).
unsafe impl Send for AmrEncoder {}

#[cfg(feature = "amr")]
impl AmrEncoder {
    /// An encoder starting at the mode [`AmrBand::initial_mode`] picks for `bitrate`
    /// (`None` = rtpengine's default rate), with DTX (SID and NO_DATA frames) if asked.
    pub fn new(
        band: AmrBand,
        params: AmrParams,
        bitrate: Option<u32>,
        dtx: bool,
    ) -> Result<Self, CodecError> {
        // SAFETY: plain constructors; NULL back means malloc failed.
        let state = unsafe {
            match band {
                AmrBand::Narrow => ffi::Encoder_Interface_init(dtx as i32),
                AmrBand::Wide => ffi::E_IF_init(),
            }
        };
        let state = NonNull::new(state).ok_or(CodecError::AmrInit(band.name()))?;
        let mode = band.initial_mode(bitrate.unwrap_or(band.default_bitrate()), params.mode_set);
        Ok(AmrEncoder {
            band,
            params,
            state,
            dtx,
            mode,
            target: None,
            frames_done: 0,
            cmr_out: NO_CMR,
            cmr_send: None,
            cmr_send_left: 0,
            cmr_send_mode: NO_CMR,
            frames: Box::new([[0; STORAGE_MAX]; MAX_FRAMES]),
            speech: Box::new([0; 320]),
        })
    }

    pub fn band(&self) -> AmrBand {
        self.band
    }

    /// The speech mode frames are encoded at.
    pub fn mode(&self) -> u8 {
        self.mode
    }

    /// Sets the CMR sent to the peer ([`NO_CMR`] for none).
    pub fn set_cmr_out(&mut self, cmr: u8) {
        self.cmr_out = cmr & 0x0f;
    }

    /// Applies a codec mode request from the peer: a mode outside the mode set or the
    /// codec's range (and CMR 15) is ignored. The mode changes after a frame is encoded, so
    /// the frame after the request still has the old mode (rtpengine: `amr_encoder_got_packet`
    /// runs the mode change once the encoder has produced its packet); only after a frame
    /// whose index the `mode-change-period` allows (even ones for period 2), and one
    /// neighbouring mode at a time with `mode-change-neighbor`.
    pub fn request_mode(&mut self, cmr: u8) {
        if cmr < self.band.modes() && self.params.allows(cmr) {
            self.target = Some(cmr);
        }
    }

    /// After frame number `frames_done` (from 0) is encoded: moves toward the requested mode.
    /// Asks the peer for `mode` in the CMR of the next [`CMR_SEND_PACKETS`] payloads
    /// (rtpengine: `CE_AMR_SEND_CMR`, written by `packetizer_amr` three times). A request
    /// while those are still going out only changes the mode they ask for.
    pub fn send_cmr(&mut self, mode: u8) {
        if mode < self.band.modes() {
            self.cmr_send = Some(mode);
        }
    }

    /// Moves to the next mode up that the mode set allows, under the same rules as a CMR
    /// (rtpengine: `mode-change-interval` passing without a CMR,
    /// `amr_encoder_find_next_mode`): one above the current mode, however often asked before
    /// the change. Nothing when the encoder is at the top already.
    pub fn step_up(&mut self) {
        let from = self.mode;
        if let Some(next) = (from + 1..self.band.modes()).find(|&m| self.params.allows(m)) {
            self.target = Some(next);
        }
    }

    /// The CMR of the next payload.
    fn next_cmr(&mut self) -> u8 {
        if self.cmr_send_left == 0 {
            if let Some(mode) = self.cmr_send.take() {
                self.cmr_send_left = CMR_SEND_PACKETS;
                self.cmr_send_mode = mode;
            }
        } else if let Some(mode) = self.cmr_send.take() {
            self.cmr_send_mode = mode;
        }
        if self.cmr_send_left > 0 {
            self.cmr_send_left -= 1;
            return self.cmr_send_mode;
        }
        self.cmr_out
    }

    fn step_mode(&mut self) {
        let Some(target) = self.target else { return };
        let period = self.params.mode_change_period.max(1) as u64;
        if !self.frames_done.is_multiple_of(period) {
            return;
        }
        if !self.params.mode_change_neighbor {
            self.mode = target;
        } else if target > self.mode {
            self.mode = (self.mode + 1..=target)
                .find(|&m| self.params.allows(m))
                .unwrap_or(target);
        } else if target < self.mode {
            self.mode = (target..self.mode)
                .rev()
                .find(|&m| self.params.allows(m))
                .unwrap_or(target);
        }
        if self.mode == target {
            self.target = None;
        }
    }

    /// Encodes one frame into `self.frames[i]`; returns its frame type.
    fn encode_frame(&mut self, pcm: &[i16], i: usize) -> Result<u8, CodecError> {
        let ft = self.encode_frame_at_mode(pcm, i);
        self.step_mode();
        self.frames_done += 1;
        ft
    }

    fn encode_frame_at_mode(&mut self, pcm: &[i16], i: usize) -> Result<u8, CodecError> {
        let out = &mut self.frames[i];
        let speech = &mut self.speech[..pcm.len()];
        speech.copy_from_slice(pcm);
        // SAFETY: state is live; `speech` holds one frame of samples, which the library may
        // overwrite; `out` holds the largest storage frame the library writes (61 bytes for
        // WB mode 8, 32 for NB 12.2).
        let n = unsafe {
            match self.band {
                AmrBand::Narrow => ffi::Encoder_Interface_Encode(
                    self.state.as_ptr(),
                    self.mode as i32,
                    speech.as_mut_ptr(),
                    out.as_mut_ptr(),
                    0,
                ),
                AmrBand::Wide => ffi::E_IF_encode(
                    self.state.as_ptr(),
                    self.mode as i32,
                    speech.as_mut_ptr(),
                    out.as_mut_ptr(),
                    self.dtx as i32,
                ),
            }
        };
        let ft = toc_ft(out[0]);
        if n < 1 || storage_len(self.band, ft) != Some(n as usize) {
            // Not a frame we can send: mark it NO_DATA rather than send garbage.
            out[0] = (FT_NO_DATA << 3) | 4;
            return Ok(FT_NO_DATA);
        }
        Ok(ft)
    }

    /// Encodes `pcm` (a whole number of 20 ms frames, at most [`MAX_FRAMES`]) into one
    /// payload; returns its length, 0 when every frame is NO_DATA (DTX: send nothing).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let n = self.band.frame_samples();
        let count = pcm.len() / n;
        if pcm.is_empty() || !pcm.len().is_multiple_of(n) || count > MAX_FRAMES {
            return Err(CodecError::PcmLength {
                expected: count.clamp(1, MAX_FRAMES) * n,
                got: pcm.len(),
            });
        }
        let mut any = false;
        for (i, frame) in pcm.chunks_exact(n).enumerate() {
            any |= self.encode_frame(frame, i)? != FT_NO_DATA;
        }
        if !any {
            return Ok(0);
        }
        let cmr = self.next_cmr();
        pack(self.band, &self.params, cmr, &self.frames[..count], out)
    }

    /// A payload buffer size that always suffices for `frames` frames.
    pub fn max_payload_len(frames: usize) -> usize {
        2 + frames * STORAGE_MAX
    }
}

#[cfg(feature = "amr")]
impl Drop for AmrEncoder {
    fn drop(&mut self) {
        // SAFETY: the state came from the matching init and is freed exactly once.
        unsafe {
            match self.band {
                AmrBand::Narrow => ffi::Encoder_Interface_exit(self.state.as_ptr()),
                AmrBand::Wide => ffi::E_IF_exit(self.state.as_ptr()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
