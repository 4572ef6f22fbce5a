//! G.722 (ITU-T G.722, 64 kbit/s sub-band ADPCM) through the system `libspandsp`.
//!
//! rtpengine runs G.722 through libavcodec; spandsp's coder was chosen here by measurement
//! (docs/transcoding.md, "G.722"): both produce the same bitstream and the same decoded samples for the
//! same input (bit-exact), libavcodec is about 10 % faster per frame, but it hands out
//! reference-counted frames and packets that it allocates per call, while spandsp encodes
//! and decodes straight into the caller's buffers, which the packet path needs. Debian ships
//! it as libspandsp-dev (also the library Asterisk and FreeSWITCH use for fax and G.722).
//!
//! Framing (RFC 3551 §4.5.2): G.722 carries 16 kHz audio, one byte per two samples (64
//! kbit/s), but its RTP clock is 8000 Hz "for historical reasons": SDP says `G722/8000` and a
//! 20 ms packet holds 320 samples in 160 bytes and advances the timestamp by 160. Any number
//! of bytes is a valid payload; there is no frame boundary, no comfort noise and no
//! concealment in the codec (a lost packet is played as silence, as rtpengine does).

use std::ptr::NonNull;

use crate::CodecError;

/// PCM rate of G.722 audio.
pub const PCM_RATE: u32 = 16_000;
/// Bit rate we encode and decode at (the only one RTP/AVP uses: RFC 3551 §4.5.2).
const BIT_RATE: i32 = 64_000;
/// PCM samples per payload byte.
pub const SAMPLES_PER_BYTE: usize = 2;
/// The payload byte digital silence encodes to (rtpengine's `silence_pattern` for G.722).
pub const SILENCE: u8 = 0xFA;

mod ffi {
    #[repr(C)]
    pub(super) struct EncodeState {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct DecodeState {
        _private: [u8; 0],
    }

    // /usr/include/spandsp/g722.h (spandsp 0.0.6). A NULL state asks the library to allocate
    // one; `*_free` releases what it allocated.
    extern "C" {
        pub(super) fn g722_encode_init(
            s: *mut EncodeState,
            rate: i32,
            options: i32,
        ) -> *mut EncodeState;
        pub(super) fn g722_encode_free(s: *mut EncodeState) -> i32;
        pub(super) fn g722_encode(
            s: *mut EncodeState,
            g722_data: *mut u8,
            amp: *const i16,
            len: i32,
        ) -> i32;
        pub(super) fn g722_decode_init(
            s: *mut DecodeState,
            rate: i32,
            options: i32,
        ) -> *mut DecodeState;
        pub(super) fn g722_decode_free(s: *mut DecodeState) -> i32;
        pub(super) fn g722_decode(
            s: *mut DecodeState,
            amp: *mut i16,
            g722_data: *const u8,
            len: i32,
        ) -> i32;
    }
}

/// One spandsp G.722 encoder (64 kbit/s, 16 kHz input). rtpengine: the G.722 `encoder_t`.
#[derive(Debug)]
pub struct G722Encoder {
    state: NonNull<ffi::EncodeState>,
}

// SAFETY: the state is plain heap memory owned exclusively by this value; spandsp's G.722
// coder keeps no global or thread-local state. All calls take `&mut self`.
unsafe impl Send for G722Encoder {}

impl G722Encoder {
    pub fn new() -> Result<Self, CodecError> {
        // SAFETY: a NULL state makes spandsp allocate one; NULL back means malloc failed.
        let state = unsafe { ffi::g722_encode_init(std::ptr::null_mut(), BIT_RATE, 0) };
        NonNull::new(state)
            .map(|state| G722Encoder { state })
            .ok_or(CodecError::G722Init)
    }

    /// Encodes 16 kHz PCM (an even number of samples) into `pcm.len() / 2` bytes of `out`;
    /// returns that length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if !pcm.len().is_multiple_of(SAMPLES_PER_BYTE) || pcm.len() > i32::MAX as usize {
            return Err(CodecError::PcmLength {
                expected: pcm.len() & !1,
                got: pcm.len(),
            });
        }
        let out = crate::take_out(out, pcm.len() / SAMPLES_PER_BYTE)?;
        // SAFETY: state is live; spandsp reads `len` samples and writes len/2 bytes, both
        // buffers hold that much.
        let n = unsafe {
            ffi::g722_encode(
                self.state.as_ptr(),
                out.as_mut_ptr(),
                pcm.as_ptr(),
                pcm.len() as i32,
            )
        };
        Ok(n.max(0) as usize)
    }
}

impl Drop for G722Encoder {
    fn drop(&mut self) {
        // SAFETY: the state came from g722_encode_init(NULL, ..) and is freed exactly once.
        unsafe { ffi::g722_encode_free(self.state.as_ptr()) };
    }
}

/// One spandsp G.722 decoder (64 kbit/s, 16 kHz output). rtpengine: the G.722 `decoder_t`.
#[derive(Debug)]
pub struct G722Decoder {
    state: NonNull<ffi::DecodeState>,
}

// SAFETY: as for `G722Encoder`.
unsafe impl Send for G722Decoder {}

impl G722Decoder {
    pub fn new() -> Result<Self, CodecError> {
        // SAFETY: as in G722Encoder::new.
        let state = unsafe { ffi::g722_decode_init(std::ptr::null_mut(), BIT_RATE, 0) };
        NonNull::new(state)
            .map(|state| G722Decoder { state })
            .ok_or(CodecError::G722Init)
    }

    /// Decodes a payload into `2 * payload.len()` samples of 16 kHz PCM; returns that count.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() || payload.len() > i32::MAX as usize / 2 {
            return Err(CodecError::PayloadLength {
                codec: "G722",
                len: payload.len(),
            });
        }
        let out = crate::take_out(out, payload.len() * SAMPLES_PER_BYTE)?;
        // SAFETY: state is live; spandsp reads `len` bytes and writes 2 * len samples, both
        // buffers hold that much.
        let n = unsafe {
            ffi::g722_decode(
                self.state.as_ptr(),
                out.as_mut_ptr(),
                payload.as_ptr(),
                payload.len() as i32,
            )
        };
        Ok(n.max(0) as usize)
    }
}

impl Drop for G722Decoder {
    fn drop(&mut self) {
        // SAFETY: the state came from g722_decode_init(NULL, ..) and is freed exactly once.
        unsafe { ffi::g722_decode_free(self.state.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{align, read_wav, rms, sine, snr_db};

    /// Samples of delay through encoder and decoder: the 24-tap analysis and synthesis QMF.
    const QMF_DELAY: usize = 22;

    fn round_trip(pcm: &[i16], frame: usize) -> (Vec<u8>, Vec<i16>) {
        let mut enc = G722Encoder::new().unwrap();
        let mut dec = G722Decoder::new().unwrap();
        let mut bits = vec![0u8; pcm.len() / 2];
        let mut out = vec![0i16; pcm.len() / frame * frame];
        for (i, chunk) in pcm.chunks_exact(frame).enumerate() {
            let b = &mut bits[i * frame / 2..(i + 1) * frame / 2];
            assert_eq!(enc.encode(chunk, b).unwrap(), frame / 2);
            let n = dec.decode(b, &mut out[i * frame..(i + 1) * frame]).unwrap();
            assert_eq!(n, frame);
        }
        (bits, out)
    }

    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        })
    }

    #[test]
    fn tone_round_trip_snr() {
        // 1 kHz and 6 kHz (upper sub-band) tones at 16 kHz, half scale, 1 s each.
        for freq in [1000.0, 6000.0] {
            let pcm = sine(freq, PCM_RATE, 16_000, 16_000.0);
            let (_, out) = round_trip(&pcm, 320);
            // A tone is periodic, so alignment would be ambiguous: use the codec's delay
            // (measured on speech below).
            let lag = QMF_DELAY;
            let n = out.len() - lag - 1600;
            let snr = snr_db(&pcm[1600..1600 + n], &out[1600 + lag..1600 + lag + n]);
            eprintln!("G.722 {freq} Hz: SNR {snr:.2} dB");
            // Measured with spandsp 0.0.6: 47.6 dB at 1 kHz, 27.5 dB at 6 kHz (2 bits per
            // sample in the upper band).
            let floor = if freq < 4000.0 { 40.0 } else { 20.0 };
            assert!(snr > floor, "{freq} Hz SNR {snr}");
        }
    }

    #[test]
    fn speech_round_trip_snr_and_frame_independence() {
        let (rate, speech) = read_wav("speech-8k.wav");
        assert_eq!(rate, 8000);
        // The coder has no frame structure: 10 ms, 20 ms and 30 ms chunks give the same
        // bitstream as one call over everything.
        let pcm: Vec<i16> = speech.iter().flat_map(|&s| [s, s]).collect();
        let pcm = &pcm[..pcm.len() / 960 * 960];
        let (whole, _) = round_trip(pcm, pcm.len());
        for frame in [160, 320, 480] {
            assert_eq!(round_trip(pcm, frame).0, whole, "{frame}-sample chunks");
        }
        let (_, out) = round_trip(pcm, 320);
        let (lag, _) = align(pcm, &out, 64);
        let n = out.len() - lag;
        let snr = snr_db(&pcm[..n], &out[lag..lag + n]);
        eprintln!("G.722 speech: delay {lag}, SNR {snr:.2} dB");
        // Measured with spandsp 0.0.6: 22.1 dB.
        assert_eq!(lag, QMF_DELAY, "analysis + synthesis QMF delay");
        assert!(snr > 20.0, "speech SNR {snr}");
    }

    /// A known bitstream: G.722 is specified bit-exactly, so any correct coder turns the
    /// same input into the same bytes. These were produced by spandsp 0.0.6 and checked
    /// byte for byte against libavcodec 5.1's encoder (and its decoder's samples against
    /// spandsp's) over the committed speech fixture.
    #[test]
    fn known_bitstream() {
        // Digital silence starts as the silence byte (the adaptive quantisers then settle
        // into their idle pattern).
        let mut enc = G722Encoder::new().unwrap();
        let mut bits = [0u8; 160];
        enc.encode(&[0; 320], &mut bits).unwrap();
        assert!(bits[..40].iter().all(|&b| b == SILENCE), "{bits:x?}");
        // The first 16 bytes of a 1 kHz tone at 16 kHz, amplitude 8000, and a digest of
        // one second of it.
        let pcm = sine(1000.0, PCM_RATE, 16_000, 8000.0);
        let (bits, out) = round_trip(&pcm, 320);
        assert_eq!(&bits[..16], &KNOWN_1K_HEAD, "{:02x?}", &bits[..16]);
        assert_eq!(fnv1a(&bits), KNOWN_1K_FNV, "{:#x}", fnv1a(&bits));
        let pcm_bytes: Vec<u8> = out.iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(
            fnv1a(&pcm_bytes),
            KNOWN_1K_DECODED_FNV,
            "{:#x}",
            fnv1a(&pcm_bytes)
        );
        assert!(rms(&out[1000..]) > 5000.0);
    }

    const KNOWN_1K_HEAD: [u8; 16] = [
        0xfa, 0x94, 0x25, 0x88, 0x21, 0x91, 0xa0, 0xa0, 0x60, 0xaf, 0xc8, 0xc6, 0xd1, 0xde, 0xf0,
        0xeb,
    ];
    const KNOWN_1K_FNV: u64 = 0x2721_942d_c185_1f23;
    const KNOWN_1K_DECODED_FNV: u64 = 0x1844_6d12_e9fb_27ae;

    #[test]
    fn bad_lengths() {
        let mut enc = G722Encoder::new().unwrap();
        let mut dec = G722Decoder::new().unwrap();
        assert!(matches!(
            enc.encode(&[0; 3], &mut [0; 8]),
            Err(CodecError::PcmLength { .. })
        ));
        assert!(matches!(
            enc.encode(&[0; 320], &mut [0; 100]),
            Err(CodecError::OutputTooSmall {
                needed: 160,
                got: 100
            })
        ));
        assert!(matches!(
            dec.decode(&[], &mut [0; 8]),
            Err(CodecError::PayloadLength { .. })
        ));
        assert!(matches!(
            dec.decode(&[0; 160], &mut [0; 319]),
            Err(CodecError::OutputTooSmall {
                needed: 320,
                got: 319
            })
        ));
    }

    #[test]
    fn wrappers_are_send() {
        fn is_send<T: Send>() {}
        is_send::<G722Encoder>();
        is_send::<G722Decoder>();
    }
}
