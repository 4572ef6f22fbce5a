//! G.729 Annex A with Annex B (VAD/DTX/comfort noise) through the system `libbcg729`.
//!
//! rtpengine reaches bcg729 the same way (`codeclib.c`, `bcg729_*`). The six entry points
//! are declared by hand from `/usr/include/bcg729/{encoder,decoder}.h` (version 1.1.x): they
//! take opaque channel pointers and fixed-size arrays, so no bindgen is needed.
//!
//! Framing (RFC 3551 §4.5.6): one 10 ms frame is 80 samples at 8 kHz and 10 bytes; an Annex B
//! SID (comfort-noise update) frame is 2 bytes and may only end a packet; a frame the encoder
//! chose not to send under DTX is 0 bytes.

use std::ptr::NonNull;

use crate::CodecError;

/// Samples per G.729 frame (10 ms at 8 kHz).
pub(crate) const FRAME_SAMPLES: usize = 80;
/// Bytes of a voice frame.
pub(crate) const FRAME_BYTES: usize = 10;
/// Bytes of an Annex B SID frame.
pub(crate) const SID_BYTES: usize = 2;

mod ffi {
    #[repr(C)]
    pub(super) struct EncoderCtx {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct DecoderCtx {
        _private: [u8; 0],
    }

    extern "C" {
        pub(super) fn initBcg729EncoderChannel(enable_vad: u8) -> *mut EncoderCtx;
        pub(super) fn closeBcg729EncoderChannel(ctx: *mut EncoderCtx);
        pub(super) fn bcg729Encoder(
            ctx: *mut EncoderCtx,
            input_frame: *const i16,
            bit_stream: *mut u8,
            bit_stream_length: *mut u8,
        );
        pub(super) fn initBcg729DecoderChannel() -> *mut DecoderCtx;
        pub(super) fn closeBcg729DecoderChannel(ctx: *mut DecoderCtx);
        pub(super) fn bcg729Decoder(
            ctx: *mut DecoderCtx,
            bit_stream: *const u8,
            bit_stream_length: u8,
            frame_erasure_flag: u8,
            sid_frame_flag: u8,
            rfc3389_payload_flag: u8,
            signal: *mut i16,
        );
    }
}

/// What one 10 ms frame became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G729Frame {
    /// A 10-byte voice frame.
    Voice,
    /// A 2-byte Annex B SID frame (comfort-noise parameters).
    Sid,
    /// Nothing to send (DTX: the noise has not changed).
    Untransmitted,
}

impl G729Frame {
    /// Bytes the frame occupies in a payload.
    pub fn len(self) -> usize {
        match self {
            G729Frame::Voice => FRAME_BYTES,
            G729Frame::Sid => SID_BYTES,
            G729Frame::Untransmitted => 0,
        }
    }

    /// True for an untransmitted frame.
    pub fn is_empty(self) -> bool {
        self == G729Frame::Untransmitted
    }
}

/// One bcg729 encoder channel. rtpengine: the bcg729 `encoder_t` of `codeclib.c`.
#[derive(Debug)]
pub struct G729Encoder {
    ctx: NonNull<ffi::EncoderCtx>,
    vad: bool,
}

// SAFETY: the channel context is plain heap memory owned exclusively by this value; bcg729
// keeps no global or thread-local state, so moving it to another thread is sound. It is not
// `Sync`: all calls take `&mut self`.
unsafe impl Send for G729Encoder {}

impl G729Encoder {
    /// A new channel; `vad` enables Annex B (VAD, DTX, SID frames).
    pub fn new(vad: bool) -> Result<Self, CodecError> {
        // SAFETY: no preconditions; returns NULL only when malloc fails.
        let ctx = unsafe { ffi::initBcg729EncoderChannel(vad as u8) };
        NonNull::new(ctx)
            .map(|ctx| G729Encoder { ctx, vad })
            .ok_or(CodecError::G729Init)
    }

    /// Whether Annex B VAD/DTX is on.
    pub fn vad(&self) -> bool {
        self.vad
    }

    /// Encodes exactly one 10 ms frame (`pcm.len() == 80`) into `out[..10]`.
    pub fn encode_frame(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<G729Frame, CodecError> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(CodecError::PcmLength {
                expected: FRAME_SAMPLES,
                got: pcm.len(),
            });
        }
        let out = crate::take_out(out, FRAME_BYTES)?;
        let mut len = 0u8;
        // SAFETY: ctx is live; pcm holds 80 samples and out 10 bytes, the sizes bcg729 reads
        // and writes.
        unsafe { ffi::bcg729Encoder(self.ctx.as_ptr(), pcm.as_ptr(), out.as_mut_ptr(), &mut len) };
        Ok(match len as usize {
            FRAME_BYTES => G729Frame::Voice,
            SID_BYTES => G729Frame::Sid,
            _ => G729Frame::Untransmitted,
        })
    }
}

impl Drop for G729Encoder {
    fn drop(&mut self) {
        // SAFETY: ctx came from initBcg729EncoderChannel and is closed exactly once.
        unsafe { ffi::closeBcg729EncoderChannel(self.ctx.as_ptr()) }
    }
}

/// One bcg729 decoder channel. rtpengine: the bcg729 `decoder_t` of `codeclib.c`.
#[derive(Debug)]
pub struct G729Decoder {
    ctx: NonNull<ffi::DecoderCtx>,
}

// SAFETY: as for `G729Encoder`.
unsafe impl Send for G729Decoder {}

impl G729Decoder {
    /// A new channel.
    pub fn new() -> Result<Self, CodecError> {
        // SAFETY: no preconditions; returns NULL only when malloc fails.
        let ctx = unsafe { ffi::initBcg729DecoderChannel() };
        NonNull::new(ctx)
            .map(|ctx| G729Decoder { ctx })
            .ok_or(CodecError::G729Init)
    }

    /// Decodes one frame: 10 bytes (voice) or 2 bytes (SID), into `out[..80]`.
    pub fn decode_frame(&mut self, frame: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        let sid = match frame.len() {
            FRAME_BYTES => 0,
            SID_BYTES => 1,
            len => return Err(CodecError::PayloadLength { codec: "G729", len }),
        };
        let out = crate::take_out(out, FRAME_SAMPLES)?;
        // SAFETY: ctx is live; frame holds the length passed; out holds 80 samples.
        unsafe {
            ffi::bcg729Decoder(
                self.ctx.as_ptr(),
                frame.as_ptr(),
                frame.len() as u8,
                0,
                sid,
                0,
                out.as_mut_ptr(),
            )
        };
        Ok(())
    }

    /// Fills `out[..80]` for a lost or untransmitted frame. bcg729 follows G.729 B.27: after
    /// voice it conceals (repeats and fades the last excitation), after a SID it keeps
    /// generating comfort noise.
    pub fn conceal_frame(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        let out = crate::take_out(out, FRAME_SAMPLES)?;
        // SAFETY: bcg729 accepts a NULL bit stream when the erasure flag is set; out holds 80.
        unsafe {
            ffi::bcg729Decoder(
                self.ctx.as_ptr(),
                std::ptr::null(),
                0,
                1,
                0,
                0,
                out.as_mut_ptr(),
            )
        };
        Ok(())
    }

    /// Decodes an RTP payload: any number of 10-byte voice frames, optionally ended by one
    /// 2-byte SID frame (RFC 3551 §4.5.6). Returns the samples written (80 per frame).
    pub fn decode_payload(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let frames = frames_in_payload(payload.len())?;
        let out = crate::take_out(out, frames * FRAME_SAMPLES)?;
        let mut frames_in = payload.chunks(FRAME_BYTES);
        for pcm in out.chunks_exact_mut(FRAME_SAMPLES) {
            // frames_in_payload() guarantees one chunk per 80 output samples.
            let frame = frames_in.next().unwrap_or(&[]);
            self.decode_frame(frame, pcm)?;
        }
        Ok(frames * FRAME_SAMPLES)
    }
}

/// Number of frames (voice plus a trailing SID) in a payload of `len` bytes.
pub(crate) fn frames_in_payload(len: usize) -> Result<usize, CodecError> {
    match len % FRAME_BYTES {
        0 if len > 0 => Ok(len / FRAME_BYTES),
        SID_BYTES => Ok(len / FRAME_BYTES + 1),
        _ => Err(CodecError::PayloadLength { codec: "G729", len }),
    }
}

impl Drop for G729Decoder {
    fn drop(&mut self) {
        // SAFETY: ctx came from initBcg729DecoderChannel and is closed exactly once.
        unsafe { ffi::closeBcg729DecoderChannel(self.ctx.as_ptr()) }
    }
}

/// Packs several 10 ms frames into one RTP payload (RFC 3551 §4.5.6), DTX aware.
///
/// Voice frames are appended in order. A SID frame may only end a payload, so a SID followed
/// by voice (or by a newer SID) in the same packet is dropped; the receiver conceals those
/// 10 ms, which happens only in the packet where a talk spurt starts.
pub(crate) fn encode_packet(
    enc: &mut G729Encoder,
    pcm: &[i16],
    out: &mut [u8],
) -> Result<usize, CodecError> {
    if pcm.is_empty() || !pcm.len().is_multiple_of(FRAME_SAMPLES) {
        return Err(CodecError::PcmLength {
            expected: pcm.len().div_ceil(FRAME_SAMPLES).max(1) * FRAME_SAMPLES,
            got: pcm.len(),
        });
    }
    let frames = pcm.len() / FRAME_SAMPLES;
    crate::take_out(out, frames * FRAME_BYTES)?;
    let mut len = 0;
    // True while the payload ends with a SID frame at `len - SID_BYTES`.
    let mut sid_last = false;
    for frame in pcm.chunks_exact(FRAME_SAMPLES) {
        // Fits: at most 10 * (frames - 1) + 2 bytes precede it.
        let kind = enc.encode_frame(frame, &mut out[len..len + FRAME_BYTES])?;
        let written = kind.len();
        if sid_last && written > 0 {
            // Voice (or a newer SID) supersedes the SID, which may not sit mid-payload.
            out.copy_within(len..len + written, len - SID_BYTES);
            len -= SID_BYTES;
        }
        if written > 0 {
            sid_last = kind == G729Frame::Sid;
        }
        len += written;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{align, read_wav, rms, snr_db};

    fn round_trip(pcm: &[i16], vad: bool) -> (Vec<i16>, Vec<usize>) {
        let mut enc = G729Encoder::new(vad).unwrap();
        let mut dec = G729Decoder::new().unwrap();
        let mut out = vec![0i16; pcm.len() / 160 * 160];
        let mut sizes = Vec::new();
        let mut payload = [0u8; 20];
        for (inp, outp) in pcm.chunks_exact(160).zip(out.chunks_exact_mut(160)) {
            let len = encode_packet(&mut enc, inp, &mut payload).unwrap();
            sizes.push(len);
            if len == 0 {
                dec.conceal_frame(&mut outp[..80]).unwrap();
                dec.conceal_frame(&mut outp[80..]).unwrap();
            } else {
                let n = dec.decode_payload(&payload[..len], outp).unwrap();
                // A SID-only payload covers one frame; the untransmitted rest is comfort noise.
                for rest in outp[n..].chunks_exact_mut(80) {
                    dec.conceal_frame(rest).unwrap();
                }
            }
        }
        (out, sizes)
    }

    #[test]
    fn speech_round_trip_reaches_snr_floor() {
        let (rate, pcm) = read_wav("speech-8k.wav");
        assert_eq!(rate, 8000);
        let (out, sizes) = round_trip(&pcm, false);
        assert!(
            sizes.iter().all(|&s| s == 20),
            "two voice frames per 20 ms packet"
        );
        let (lag, corr) = align(&pcm, &out, 200);
        let n = out.len() - lag;
        let snr = snr_db(&pcm[..n], &out[lag..lag + n]);
        eprintln!("G.729 speech: delay {lag} samples, correlation {corr:.3}, SNR {snr:.2} dB");
        // Measured with libbcg729 1.1.1: delay 40 samples (the 5 ms look-ahead), correlation
        // 0.837, SNR 5.16 dB. The adaptive postfilter shifts phase, so waveform SNR is modest
        // for any G.729 implementation; the floors leave margin for other library builds.
        assert!((30..=50).contains(&lag), "delay {lag}");
        assert!(corr > 0.78, "correlation {corr}");
        assert!(snr > 4.0, "SNR {snr}");
    }

    #[test]
    fn annex_b_sends_sid_and_decodes_comfort_noise() {
        let (_, speech) = read_wav("speech-8k.wav");
        // Speech, then 2 s of faint noise: VAD must switch to SID/untransmitted frames.
        let mut pcm = speech[..8000].to_vec();
        let mut seed = 1u32;
        pcm.extend((0..16000).map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((seed >> 16) as i16) >> 12
        }));
        let (out, sizes) = round_trip(&pcm, true);
        let tail = &sizes[sizes.len() - 25..];
        assert!(
            tail.iter().all(|&s| s <= 2),
            "DTX in the silent part: {tail:?}"
        );
        assert!(sizes.contains(&2), "at least one SID payload: {sizes:?}");
        assert!(sizes[..40].iter().filter(|&&s| s == 20).count() > 30);
        eprintln!("G.729B payload sizes {sizes:?}");
        // Comfort noise is quiet but not digital silence.
        let cn = rms(&out[out.len() - 4000..]);
        assert!(cn > 1.0 && cn < 500.0, "comfort noise rms {cn}");
    }

    #[test]
    fn erasure_conceals_then_recovers() {
        let (_, pcm) = read_wav("speech-8k.wav");
        let mut enc = G729Encoder::new(false).unwrap();
        let mut dec = G729Decoder::new().unwrap();
        let mut frame = [0u8; FRAME_BYTES];
        let mut out = [0i16; FRAME_SAMPLES];
        // Lose the three frames after the loudest one.
        let loudest = pcm
            .chunks_exact(80)
            .enumerate()
            .max_by(|a, b| rms(a.1).total_cmp(&rms(b.1)))
            .unwrap()
            .0;
        let mut concealed_rms = 0.0;
        for (i, chunk) in pcm.chunks_exact(80).take(loudest + 4).enumerate() {
            assert_eq!(
                enc.encode_frame(chunk, &mut frame).unwrap(),
                G729Frame::Voice
            );
            if (loudest + 1..loudest + 4).contains(&i) {
                dec.conceal_frame(&mut out).unwrap();
                concealed_rms += rms(&out);
            } else {
                dec.decode_frame(&frame, &mut out).unwrap();
            }
        }
        // Concealment extrapolates the voice instead of emitting silence (measured: mean rms
        // 3190 over the three lost frames).
        assert!(concealed_rms / 3.0 > 300.0, "concealed rms {concealed_rms}");
    }

    #[test]
    fn framing_errors() {
        assert_eq!(frames_in_payload(20), Ok(2));
        assert_eq!(frames_in_payload(22), Ok(3));
        assert_eq!(frames_in_payload(2), Ok(1));
        for bad in [0, 1, 5, 11, 19] {
            assert_eq!(
                frames_in_payload(bad),
                Err(CodecError::PayloadLength {
                    codec: "G729",
                    len: bad
                })
            );
        }
        let mut enc = G729Encoder::new(false).unwrap();
        let mut out = [0u8; 10];
        assert!(matches!(
            enc.encode_frame(&[0; 79], &mut out),
            Err(CodecError::PcmLength {
                expected: 80,
                got: 79
            })
        ));
        let mut dec = G729Decoder::new().unwrap();
        let mut pcm = [0i16; 80];
        assert!(dec.decode_frame(&[0; 3], &mut pcm).is_err());
        assert!(matches!(
            dec.decode_payload(&[0; 20], &mut pcm),
            Err(CodecError::OutputTooSmall {
                needed: 160,
                got: 80
            })
        ));
    }

    #[test]
    fn wrappers_are_send() {
        fn is_send<T: Send>() {}
        is_send::<G729Encoder>();
        is_send::<G729Decoder>();
    }
}
