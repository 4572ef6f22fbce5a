//! ngmedia-codecs: audio codecs, frames in, frames out.
//!
//! Pure, frame-based building blocks for transcoding (rtpengine: `codeclib.c` and the
//! codec handlers of `codec.c`): no sockets, no clocks, no engine types. Every encode/decode
//! writes into a buffer the caller owns, and every codec/resampler state is allocated once
//! when it is built, so a per-stream `Transcoder` runs without heap allocation per packet.
pub mod amr;
pub mod audio_file;
pub mod cn;
mod codec;
pub mod dtmf;
pub mod error;
pub mod g711;
pub mod opus;
pub mod resample;
pub use codec::{
    Codec, CodecDef, CodecKind, CodecParams, Decoder, Encoder, EncoderKind, EncoderOptions,
    EventSet, FrameDurations, OpusParams, CODECS,
};
pub use error::CodecError;
pub use resample::Resampler;

/// The first `needed` elements of a caller buffer, or `OutputTooSmall`.
pub(crate) fn take_out<T>(out: &mut [T], needed: usize) -> Result<&mut [T], CodecError> {
    let got = out.len();
    out.get_mut(..needed)
        .ok_or(CodecError::OutputTooSmall { needed, got })
}

#[cfg(feature = "g722")]
pub mod g722;
#[cfg(feature = "g729")]
mod g729;
#[cfg(feature = "speex")]
pub mod speex;
#[cfg(feature = "t38")]
pub mod t38;
#[cfg(test)]
pub(crate) mod test_util;
