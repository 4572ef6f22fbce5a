#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("Failed to parse SDP: line {line}: {reason}")]
pub struct SdpError {
    pub line: usize,
    pub reason: String,
}
