//! Speex (narrowband 8 kHz, wideband 16 kHz, ultra-wideband 32 kHz) and its RTP payload
//! format (RFC 5574), through Debian's `libspeex`.
//!
//! rtpengine reaches the same library through libavcodec (`codeclib.c`: the `speex` codec
//! definition, 16000 Hz by default, 11 kbit/s, 20 ms, libavcodec's `libspeex` coder in
//! constant bit rate with the library's default complexity and the decoder's perceptual
//! enhancer on). The handful of entry points are declared by hand from
//! `/usr/include/speex/{speex,speex_bits}.h` (version 1.2.x).
//!
//! Framing (RFC 5574 §3): a payload holds one or more 20 ms frames back to back, bit-packed
//! without alignment, padded to an octet by a terminator pattern (`speex_bits_write` adds
//! it). Frames are 160, 320 or 640 samples (narrowband, wideband, ultra-wideband).

use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;

use crate::CodecError;

/// Milliseconds of audio in one Speex frame.
pub const FRAME_MS: u32 = 20;
/// rtpengine's default bit rate for Speex (`default_bitrate` of its codec definition).
pub const DEFAULT_BITRATE: i32 = 11_000;
/// Bytes reserved per frame in the encoder's bit buffer: the largest ultra-wideband mode
/// (about 44 kbit/s, 110 bytes per 20 ms) with room to spare.
const FRAME_BYTES_MAX: usize = 128;
/// The most frames one payload carries: 200 ms, the longest packet the registry allows.
pub const MAX_FRAMES: usize = 10;
/// Encoder bit buffer size: a whole payload of the largest frames.
const BITS_BUF: usize = FRAME_BYTES_MAX * MAX_FRAMES;

// speex.h request numbers.
const SPEEX_GET_FRAME_SIZE: c_int = 3;
const SPEEX_SET_BITRATE: c_int = 18;

mod ffi {
    use super::{c_char, c_int, c_void};

    /// `SpeexBits` of speex_bits.h.
    #[repr(C)]
    pub(super) struct SpeexBits {
        pub(super) chars: *mut c_char,
        pub(super) nb_bits: c_int,
        pub(super) char_ptr: c_int,
        pub(super) bit_ptr: c_int,
        pub(super) owner: c_int,
        pub(super) overflow: c_int,
        pub(super) buf_size: c_int,
        pub(super) reserved1: c_int,
        pub(super) reserved2: *mut c_void,
    }

    /// Opaque `SpeexMode`.
    #[repr(C)]
    pub(super) struct SpeexMode {
        _private: [u8; 0],
    }

    extern "C" {
        pub(super) static speex_nb_mode: SpeexMode;
        pub(super) static speex_wb_mode: SpeexMode;
        pub(super) static speex_uwb_mode: SpeexMode;
        pub(super) fn speex_encoder_init(mode: *const SpeexMode) -> *mut c_void;
        pub(super) fn speex_encoder_destroy(state: *mut c_void);
        pub(super) fn speex_encode_int(
            state: *mut c_void,
            input: *mut i16,
            bits: *mut SpeexBits,
        ) -> c_int;
        pub(super) fn speex_encoder_ctl(
            state: *mut c_void,
            request: c_int,
            ptr: *mut c_void,
        ) -> c_int;
        pub(super) fn speex_decoder_init(mode: *const SpeexMode) -> *mut c_void;
        pub(super) fn speex_decoder_destroy(state: *mut c_void);
        pub(super) fn speex_decode_int(
            state: *mut c_void,
            bits: *mut SpeexBits,
            out: *mut i16,
        ) -> c_int;
        pub(super) fn speex_decoder_ctl(
            state: *mut c_void,
            request: c_int,
            ptr: *mut c_void,
        ) -> c_int;
        pub(super) fn speex_bits_init_buffer(bits: *mut SpeexBits, buff: *mut c_void, size: c_int);
        pub(super) fn speex_bits_set_bit_buffer(
            bits: *mut SpeexBits,
            buff: *mut c_void,
            size: c_int,
        );
        pub(super) fn speex_bits_reset(bits: *mut SpeexBits);
        pub(super) fn speex_bits_write(bits: *mut SpeexBits, out: *mut c_char, max: c_int)
            -> c_int;
        pub(super) fn speex_bits_nbytes(bits: *mut SpeexBits) -> c_int;
        pub(super) fn speex_bits_remaining(bits: *mut SpeexBits) -> c_int;
    }

    impl SpeexBits {
        pub(super) const fn empty() -> SpeexBits {
            SpeexBits {
                chars: std::ptr::null_mut(),
                nb_bits: 0,
                char_ptr: 0,
                bit_ptr: 0,
                owner: 0,
                overflow: 0,
                buf_size: 0,
                reserved1: 0,
                reserved2: std::ptr::null_mut(),
            }
        }
    }
}

/// The three Speex bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeexBand {
    /// 8 kHz.
    Narrow,
    /// 16 kHz.
    Wide,
    /// 32 kHz.
    UltraWide,
}

impl SpeexBand {
    /// The band of an SDP clock rate.
    pub fn of_rate(rate: u32) -> Result<SpeexBand, CodecError> {
        match rate {
            8000 => Ok(SpeexBand::Narrow),
            16000 => Ok(SpeexBand::Wide),
            32000 => Ok(SpeexBand::UltraWide),
            _ => Err(CodecError::UnsupportedRate(rate)),
        }
    }

    /// PCM (and RTP clock) rate.
    pub fn pcm_rate(self) -> u32 {
        match self {
            SpeexBand::Narrow => 8000,
            SpeexBand::Wide => 16000,
            SpeexBand::UltraWide => 32000,
        }
    }

    /// Samples per 20 ms frame.
    pub fn frame_samples(self) -> usize {
        (self.pcm_rate() * FRAME_MS / 1000) as usize
    }

    fn mode(self) -> *const ffi::SpeexMode {
        // The addresses of the library's immutable mode descriptors.
        match self {
            SpeexBand::Narrow => &raw const ffi::speex_nb_mode,
            SpeexBand::Wide => &raw const ffi::speex_wb_mode,
            SpeexBand::UltraWide => &raw const ffi::speex_uwb_mode,
        }
    }
}

/// Checks that the library's frame size for `band` is the 20 ms this module assumes.
fn check_frame_size(size: c_int, band: SpeexBand) -> Result<(), CodecError> {
    if usize::try_from(size) == Ok(band.frame_samples()) {
        Ok(())
    } else {
        Err(CodecError::SpeexInit("unexpected frame size"))
    }
}

/// One libspeex encoder. rtpengine: the `encoder_t` of its `speex` codec (libavcodec's
/// `libspeex` encoder).
#[derive(Debug)]
pub struct SpeexEncoder {
    state: NonNull<c_void>,
    band: SpeexBand,
    /// Points into `buf` (non-owning: libspeex never reallocates it).
    bits: Box<ffi::SpeexBits>,
    buf: Box<[u8; BITS_BUF]>,
}

impl std::fmt::Debug for ffi::SpeexBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeexBits")
            .field("bits", &self.nb_bits)
            .finish()
    }
}

// SAFETY: the coder state and bit buffer are heap memory owned exclusively by this value;
// libspeex keeps no global mutable or thread-local state, so moving it to another thread is
// sound. It is not `Sync`: all calls take `&mut self`.
unsafe impl Send for SpeexEncoder {}

impl SpeexEncoder {
    /// A new encoder for `band` at `bitrate` bit/s (constant bit rate: libspeex takes the
    /// best mode not above it).
    pub fn new(band: SpeexBand, bitrate: i32) -> Result<Self, CodecError> {
        // SAFETY: the mode pointer is one of the library's descriptors.
        let state = unsafe { ffi::speex_encoder_init(band.mode()) };
        let state = NonNull::new(state).ok_or(CodecError::SpeexInit("encoder"))?;
        let mut enc = SpeexEncoder {
            state,
            band,
            bits: Box::new(ffi::SpeexBits::empty()),
            buf: Box::new([0; BITS_BUF]),
        };
        let mut size: c_int = 0;
        let mut rate: c_int = bitrate;
        // SAFETY: state is live; both requests take a pointer to an int; the bit buffer is
        // ours, BITS_BUF bytes, and lives as long as `bits` (both owned by `enc`).
        unsafe {
            ffi::speex_encoder_ctl(
                enc.state.as_ptr(),
                SPEEX_GET_FRAME_SIZE,
                (&raw mut size).cast(),
            );
            ffi::speex_encoder_ctl(
                enc.state.as_ptr(),
                SPEEX_SET_BITRATE,
                (&raw mut rate).cast(),
            );
            ffi::speex_bits_init_buffer(
                &mut *enc.bits,
                enc.buf.as_mut_ptr().cast(),
                BITS_BUF as c_int,
            );
        }
        check_frame_size(size, band)?;
        Ok(enc)
    }

    pub fn band(&self) -> SpeexBand {
        self.band
    }

    /// Bytes a payload of `frames` frames never exceeds.
    pub fn max_payload_len(frames: usize) -> usize {
        frames * FRAME_BYTES_MAX
    }

    /// Encodes a whole number of 20 ms frames (1 to [`MAX_FRAMES`]) of PCM at the band's
    /// rate into one payload; returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let fs = self.band.frame_samples();
        if pcm.is_empty() || !pcm.len().is_multiple_of(fs) || pcm.len() / fs > MAX_FRAMES {
            return Err(CodecError::PcmLength {
                expected: pcm.len().div_ceil(fs).clamp(1, MAX_FRAMES) * fs,
                got: pcm.len(),
            });
        }
        // libspeex takes a mutable input pointer (it does not write through it for the
        // integer entry point, but the prototype says so): copy the frame to a scratch array.
        let mut frame = [0i16; 640];
        // SAFETY: bits points into our own buffer, reset between payloads.
        unsafe { ffi::speex_bits_reset(&mut *self.bits) };
        for chunk in pcm.chunks_exact(fs) {
            frame[..fs].copy_from_slice(chunk);
            // SAFETY: state is live; frame holds at least the band's frame size; bits holds
            // MAX_FRAMES of the largest frames, so it cannot overflow.
            unsafe {
                ffi::speex_encode_int(self.state.as_ptr(), frame.as_mut_ptr(), &mut *self.bits)
            };
        }
        // SAFETY: bits is initialised.
        let needed = unsafe { ffi::speex_bits_nbytes(&mut *self.bits) } as usize;
        let out = crate::take_out(out, needed)?;
        // SAFETY: out holds `needed` bytes, the most speex_bits_write writes.
        let len = unsafe {
            ffi::speex_bits_write(&mut *self.bits, out.as_mut_ptr().cast(), needed as c_int)
        };
        // SAFETY: as above.
        unsafe { ffi::speex_bits_reset(&mut *self.bits) };
        Ok(len.max(0) as usize)
    }
}

impl Drop for SpeexEncoder {
    fn drop(&mut self) {
        // SAFETY: state came from speex_encoder_init and is destroyed exactly once; the bit
        // buffer is not owned by libspeex, so there is nothing to free there.
        unsafe { ffi::speex_encoder_destroy(self.state.as_ptr()) }
    }
}

/// One libspeex decoder (perceptual enhancer on, the library's default and rtpengine's).
#[derive(Debug)]
pub struct SpeexDecoder {
    state: NonNull<c_void>,
    band: SpeexBand,
    bits: Box<ffi::SpeexBits>,
    /// Where a frame goes when the caller's buffer has no room left, to tell "no more
    /// frames" (fine) from "another frame" (the buffer is too small).
    scratch: Box<[i16; 640]>,
}

// SAFETY: as for `SpeexEncoder`.
unsafe impl Send for SpeexDecoder {}

impl SpeexDecoder {
    pub fn new(band: SpeexBand) -> Result<Self, CodecError> {
        // SAFETY: the mode pointer is one of the library's descriptors.
        let state = unsafe { ffi::speex_decoder_init(band.mode()) };
        let state = NonNull::new(state).ok_or(CodecError::SpeexInit("decoder"))?;
        let dec = SpeexDecoder {
            state,
            band,
            bits: Box::new(ffi::SpeexBits::empty()),
            scratch: Box::new([0; 640]),
        };
        let mut size: c_int = 0;
        // SAFETY: state is live; the request takes a pointer to an int.
        unsafe {
            ffi::speex_decoder_ctl(
                dec.state.as_ptr(),
                SPEEX_GET_FRAME_SIZE,
                (&raw mut size).cast(),
            )
        };
        check_frame_size(size, band)?;
        Ok(dec)
    }

    pub fn band(&self) -> SpeexBand {
        self.band
    }

    /// Decodes every frame of a payload into `out`; returns the samples written (a whole
    /// number of frames). A payload with no frame, a corrupt frame or bits missing at its
    /// end is an error.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let bad = CodecError::PayloadLength {
            codec: "speex",
            len: payload.len(),
        };
        if payload.is_empty() || payload.len() > FRAME_BYTES_MAX * MAX_FRAMES * 4 {
            return Err(bad);
        }
        let fs = self.band.frame_samples();
        // SAFETY: libspeex only reads the buffer while decoding (the pointer is mutable in
        // the prototype because the same struct serves the encoder); the payload outlives
        // every use of `bits` below, and `bits` is repointed before each payload.
        unsafe {
            ffi::speex_bits_set_bit_buffer(
                &mut *self.bits,
                payload.as_ptr().cast_mut().cast(),
                payload.len() as c_int,
            )
        };
        let mut written = 0;
        // Every frame consumes at least 5 bits, so the payload bounds the loop.
        for _ in 0..=payload.len() * 8 / 5 {
            let room = out.len() >= written + fs;
            let dst = if room {
                out[written..written + fs].as_mut_ptr()
            } else {
                self.scratch.as_mut_ptr()
            };
            // SAFETY: state is live; dst holds a frame (the caller's slice or scratch); bits
            // reads within the payload (libspeex flags reads past the end as overflow).
            let ret = unsafe { ffi::speex_decode_int(self.state.as_ptr(), &mut *self.bits, dst) };
            // SAFETY: bits is initialised.
            let remaining = unsafe { ffi::speex_bits_remaining(&mut *self.bits) };
            match ret {
                -1 => break,
                0 if remaining >= 0 => {}
                _ => return Err(bad),
            }
            if !room {
                return Err(CodecError::OutputTooSmall {
                    needed: written + fs,
                    got: out.len(),
                });
            }
            written += fs;
        }
        if written == 0 {
            return Err(bad);
        }
        Ok(written)
    }

    /// Fills `samples` (a whole number of frames) for lost audio with the decoder's
    /// concealment. Returns samples written.
    pub fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        let fs = self.band.frame_samples();
        if !samples.is_multiple_of(fs) {
            return Err(CodecError::PcmLength {
                expected: samples.div_ceil(fs) * fs,
                got: samples,
            });
        }
        for frame in crate::take_out(out, samples)?.chunks_exact_mut(fs) {
            // SAFETY: a NULL bit stream asks libspeex to conceal one frame into `frame`,
            // which holds exactly one frame.
            unsafe {
                ffi::speex_decode_int(
                    self.state.as_ptr(),
                    std::ptr::null_mut(),
                    frame.as_mut_ptr(),
                )
            };
        }
        Ok(samples)
    }
}

impl Drop for SpeexDecoder {
    fn drop(&mut self) {
        // SAFETY: state came from speex_decoder_init and is destroyed exactly once.
        unsafe { ffi::speex_decoder_destroy(self.state.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{align, sine, snr_db};

    const BANDS: [SpeexBand; 3] = [SpeexBand::Narrow, SpeexBand::Wide, SpeexBand::UltraWide];

    fn round_trip(band: SpeexBand, pcm: &[i16], frames: usize) -> (Vec<i16>, Vec<usize>) {
        let mut enc = SpeexEncoder::new(band, DEFAULT_BITRATE).unwrap();
        let mut dec = SpeexDecoder::new(band).unwrap();
        let n = band.frame_samples() * frames;
        let mut out = vec![0i16; pcm.len() / n * n];
        let mut payload = vec![0u8; SpeexEncoder::max_payload_len(frames)];
        let mut sizes = Vec::new();
        for (inp, outp) in pcm.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let len = enc.encode(inp, &mut payload).unwrap();
            sizes.push(len);
            assert_eq!(dec.decode(&payload[..len], outp).unwrap(), n);
        }
        (out, sizes)
    }

    #[test]
    fn tone_round_trip_per_band() {
        // Measured with libspeex 1.2.1 at 11 kbit/s (28, 25 and 24 bytes per frame): SNR
        // 23.7, 21.3 and 12.8 dB; the floors leave margin for other library builds.
        for (band, floor) in BANDS.into_iter().zip([20.0, 18.0, 10.0]) {
            let rate = band.pcm_rate();
            let pcm = sine(440.0, rate, rate as usize, 8000.0);
            let (out, sizes) = round_trip(band, &pcm, 1);
            let (lag, corr) = align(&pcm, &out, band.frame_samples());
            let skip = band.frame_samples() * 5;
            let n = out.len() - lag - skip;
            let snr = snr_db(&pcm[skip..skip + n], &out[skip + lag..skip + lag + n]);
            eprintln!(
                "speex {band:?}: {} bytes/frame, delay {lag}, correlation {corr:.3}, SNR {snr:.2} dB",
                sizes[10]
            );
            // Constant bit rate: every frame the same size.
            assert!(sizes.iter().all(|&s| s == sizes[0]), "{sizes:?}");
            assert!(corr > 0.95, "{band:?} correlation {corr}");
            assert!(snr > floor, "{band:?} SNR {snr}");
        }
    }

    #[test]
    fn several_frames_per_payload() {
        let band = SpeexBand::Wide;
        let pcm = sine(700.0, 16000, 16000, 6000.0);
        let (out, sizes) = round_trip(band, &pcm, 3);
        let (single, one) = round_trip(band, &pcm[..out.len()], 1);
        // Three frames cost about three single frames (bit-packed, one pad at the end).
        assert!(
            sizes[0] <= 3 * one[0] && sizes[0] + 3 >= 3 * one[0],
            "{sizes:?} {one:?}"
        );
        // The same bit stream, packed differently: identical audio.
        assert_eq!(out, single);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        for band in BANDS {
            let mut dec = SpeexDecoder::new(band).unwrap();
            let mut out = vec![0i16; band.frame_samples() * MAX_FRAMES];
            assert!(dec.decode(&[], &mut out).is_err());
            // A lone terminator (mode 15): no frame.
            assert!(dec.decode(&[0x7f], &mut out).is_err());
            // Pseudo-random garbage of every length: an error or whole frames, never a panic.
            let mut seed = 7u32;
            for len in 1..300 {
                let payload: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect();
                if let Ok(n) = dec.decode(&payload, &mut out) {
                    assert!(n > 0 && n.is_multiple_of(band.frame_samples()));
                }
            }
        }
    }

    #[test]
    fn output_too_small_and_pcm_length() {
        let band = SpeexBand::Narrow;
        let mut enc = SpeexEncoder::new(band, DEFAULT_BITRATE).unwrap();
        let mut payload = [0u8; 256];
        assert!(matches!(
            enc.encode(&[0; 100], &mut payload),
            Err(CodecError::PcmLength { got: 100, .. })
        ));
        assert!(enc.encode(&[0; 160 * 11], &mut payload).is_err());
        let len = enc
            .encode(&sine(500.0, 8000, 320, 5000.0), &mut payload)
            .unwrap();
        assert!(matches!(
            enc.encode(&[0; 320], &mut payload[..2]),
            Err(CodecError::OutputTooSmall { .. })
        ));
        let mut dec = SpeexDecoder::new(band).unwrap();
        let mut out = [0i16; 160];
        assert_eq!(
            dec.decode(&payload[..len], &mut out),
            Err(CodecError::OutputTooSmall {
                needed: 320,
                got: 160
            })
        );
        assert!(dec.conceal(100, &mut out).is_err());
        assert_eq!(dec.conceal(160, &mut out), Ok(160));
    }

    #[test]
    fn bands_by_rate() {
        assert_eq!(SpeexBand::of_rate(16000), Ok(SpeexBand::Wide));
        assert_eq!(SpeexBand::of_rate(32000), Ok(SpeexBand::UltraWide));
        assert_eq!(
            SpeexBand::of_rate(44100),
            Err(CodecError::UnsupportedRate(44100))
        );
    }

    #[test]
    fn wrappers_are_send() {
        fn is_send<T: Send>() {}
        is_send::<SpeexEncoder>();
        is_send::<SpeexDecoder>();
    }
}
