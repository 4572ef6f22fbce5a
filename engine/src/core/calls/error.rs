//! Why a call request failed: one variant per reason, whose `Display` is the ng
//! `error-reason` rtpengine sends for it.

use crate::core::plan::PortError;
use crate::core::sdes::SdesError;
use crate::core::sdp::SdpError;

/// Why a request failed. `Display` is the ng `error-reason`, worded exactly as rtpengine
/// words it (`call_interfaces.c`), since Kamailio and operators match on the text.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CallError {
    // The call and its parties.
    #[error("Unknown call-id")]
    UnknownCall,
    /// rtpengine's wording for the media control commands and `play DTMF`.
    #[error("Unknown call-ID")]
    UnknownCallId,
    #[error("Call-ID not found or tags didn't match")]
    NotFound,
    #[error("No to-tag in message")]
    NoToTag,
    #[error("No participant party specified")]
    NoParty,
    #[error("No call participant specified")]
    NoParticipant,
    #[error("No monologue matching the given label")]
    NoLabelMatch,
    #[error("From-tag given, but no such tag exists")]
    NoSuchFromTag,
    #[error("Failed to parse network address")]
    BadAddress,
    #[error("Failed to match address to any tag")]
    NoAddressMatch,
    #[error("No monologues matched")]
    NoMonologueMatch,

    // Features this daemon runs without.
    #[error("Recording is not enabled")]
    RecordingDisabled,
    #[error("Forwarding is not enabled")]
    ForwardingDisabled,
    #[error("Media playback is not enabled")]
    PlaybackDisabled,
    #[error("Subscriptions are not enabled")]
    SubscriptionsDisabled,

    // Offer/answer.
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// SDES keys could not be made.
    #[error(transparent)]
    Sdes(#[from] SdesError),
    #[error("Unknown interface '{0}'")]
    UnknownInterface(String),
    #[error("No usable interface")]
    NoUsableInterface,

    // Media control, DTMF and playback.
    #[error("Media flow not found (to-tag not found)")]
    FlowToTagNotFound,
    #[error("Media flow not found (to-label not found)")]
    FlowToLabelNotFound,
    #[error("Media flow not found (to-tag not subscribed)")]
    FlowNotSubscribed,
    #[error("No eligible media subscriptions found")]
    NoEligibleSubscription,
    #[error("Out of range 'code' specified")]
    DtmfCodeOutOfRange,
    #[error("Monologue has no media capable of DTMF injection")]
    NoDtmfMedia,
    #[error("Sink monologue has no media capable of DTMF playback")]
    NoDtmfSink,
    #[error("No media file specified")]
    NoMediaFile,
    /// The player could not start; the source kind is `file`, `blob` or `database`.
    #[error("Failed to start media playback from {0}")]
    PlaybackFailed(&'static str),

    // Publish and subscribe.
    #[error("To-tag belongs to a party of the call, not to a subscription")]
    ToTagNotSubscriber,
    #[error("Cannot subscribe a party to itself")]
    SubscribeToSelf,
    #[error("No media to subscribe to")]
    NoMediaToSubscribe,
    #[error("To-tag not found")]
    ToTagNotFound,
    #[error("No subscription for this to-tag")]
    NoSubscription,
    #[error("Answer SDP does not match the subscription's media")]
    SubscriptionMediaMismatch,
    #[error("Failed to process subscription answer")]
    SubscriptionAnswerRefused,
    #[error("Failed to process subscription answer: no codec to transcode to")]
    NoCodecToTranscodeTo,
    #[error("From-tag belongs to a party of an offer/answer dialogue")]
    FromTagInDialogue,
    #[error("Publish offer contains no supported codec")]
    NoPublishCodec,
}

#[cfg(test)]
mod tests {
    use super::CallError;

    /// The texts ng clients see, as rtpengine sends them.
    #[test]
    fn error_reasons_are_rtpengines() {
        let cases = [
            (CallError::UnknownCall, "Unknown call-id"),
            (CallError::UnknownCallId, "Unknown call-ID"),
            (
                CallError::NotFound,
                "Call-ID not found or tags didn't match",
            ),
            (CallError::NoToTag, "No to-tag in message"),
            (
                CallError::UnknownInterface("lan".into()),
                "Unknown interface 'lan'",
            ),
            (
                CallError::PlaybackFailed("file"),
                "Failed to start media playback from file",
            ),
            (
                CallError::NoCodecToTranscodeTo,
                "Failed to process subscription answer: no codec to transcode to",
            ),
            (
                CallError::DtmfCodeOutOfRange,
                "Out of range 'code' specified",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
