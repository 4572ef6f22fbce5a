//! The crate's one error type. Hot-path failures (bad payload length, output too small) carry
//! only `Copy` data so that returning them allocates nothing.

/// Errors from building or running a codec, resampler or DTMF helper.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// No codec in the registry matches the SDP encoding name / clock rate / channels.
    #[error("unknown codec {name}/{clock_rate}/{channels}")]
    UnknownCodec {
        name: String,
        clock_rate: u32,
        channels: u8,
    },
    /// The codec is known but this build cannot run it (cargo feature off).
    #[error("codec {0} is not available in this build")]
    Unavailable(&'static str),
    /// The codec cannot pack frames of this duration into one packet.
    #[error("{codec} cannot use a frame duration of {ms} ms")]
    UnsupportedFrameDuration { codec: &'static str, ms: u32 },
    /// Sample rate not supported by this codec or resampler.
    #[error("unsupported sample rate {0} Hz")]
    UnsupportedRate(u32),
    /// Channel count not supported.
    #[error("unsupported channel count {0}")]
    UnsupportedChannels(u8),
    /// PCM input has the wrong number of samples for the configured frame.
    #[error("PCM frame has {got} samples, expected {expected}")]
    PcmLength { expected: usize, got: usize },
    /// Encoded payload length impossible for the codec.
    #[error("{codec} payload of {len} bytes is malformed")]
    PayloadLength { codec: &'static str, len: usize },
    /// Caller's output buffer cannot hold the result.
    #[error("output buffer holds {got}, needs {needed}")]
    OutputTooSmall { needed: usize, got: usize },
    /// Telephone-event (RFC 4733) event code outside the DTMF range where a tone is needed.
    #[error("telephone-event {0} has no DTMF tone")]
    NotDtmf(u8),
    /// Telephone-event volume above 63 (-63 dBm0 is the quietest level).
    #[error("telephone-event volume {0} is above 63")]
    EventVolume(u8),
    /// A bad `a=fmtp` parameter value.
    #[error("bad fmtp parameter {0}")]
    Fmtp(String),
    /// libbcg729 could not allocate a channel.
    #[error("libbcg729 channel allocation failed")]
    G729Init,
    /// libspandsp could not allocate a T.38 gateway.
    #[error("libspandsp T.38 gateway allocation failed")]
    T38Init,
    /// An AMR coder state could not be allocated.
    #[error("{0} coder state allocation failed")]
    AmrInit(&'static str),
    /// A libspeex coder state could not be set up.
    #[error("libspeex {0} setup failed")]
    SpeexInit(&'static str),
    /// libopus reported an error.
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
    /// rubato refused the resampler parameters.
    #[error("resampler setup: {0}")]
    ResamplerSetup(#[from] rubato::ResamplerConstructionError),
    /// rubato failed while processing (a buffer size bug on our side).
    #[error("resampler: {0}")]
    Resample(#[from] rubato::ResampleError),
}
